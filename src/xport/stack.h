/* stack: builds transport stacks, and is the only place outside tests that
 * calls a transport's constructor. The config's transport section becomes
 * a struct xport_stack once (at start); each connection then gets its stack
 * from it: outbound on the client (the socket the dial connected to the
 * server), inbound on the server (a socket accepted on bind_addr), and
 * plain for a local stream (a visitor on the server, the local service on
 * the client), which is tcp with no options, whatever the transport.
 *
 * Stacks (docs/internals/transports.md), bottom first:
 *   tcp -> [proxy] -> (nothing | tls | noise | websocket | tls -> websocket)
 * The proxy step exists only on a client with [client.transport.tcp]
 * proxy; the client then dials the proxy (xport_stack_dial_addr) and the
 * proxy layer asks it for a tunnel to remote_addr.
 *
 * Ownership: a struct xport_stack is owned by the role that initialised it
 * and released with xport_stack_fini; it borrows nothing from the conf
 * after init. It owns the transport's shared state (the TLS context, the
 * Noise identity); every connection's stack takes its own reference, so a
 * stack may be finished while its connections still run. Every
 * constructor takes the fd (closed also on failure) and returns the top
 * layer, owned by the caller (xport_close), or NULL on out-of-memory. */
#ifndef MOLERAT_XPORT_STACK_H
#define MOLERAT_XPORT_STACK_H

#include <stdbool.h>

#include "codec/conf.h"
#include "xport/xport.h"

struct tls_ctx;
struct noise_ident;
struct proxy_conf;

enum { XPORT_STACK_HOST_MAX = 264 };  /* a Host value: a 253-byte name, brackets, ":65535" */

struct xport_stack {
	enum conf_xport_type type;
	bool server;               /* inbound stacks answer handshakes */
	struct tcp_opts tcp;       /* [*.transport.tcp], applied to every socket of the tunnel */
	unsigned user_timeout_ms;  /* TCP_USER_TIMEOUT of every socket of the tunnel */
	struct tls_ctx *tls;       /* type tls: owned */
	struct noise_ident *noise; /* type noise: owned (one reference) */
	struct proxy_conf *proxy;  /* a client with a proxy: owned (one reference) */
	bool ws;                   /* type websocket: a websocket layer on top */
	char ws_host[XPORT_STACK_HOST_MAX]; /* client: the upgrade's Host value */
};

/* From a validated transport section of the role's section: server true
 * for [server], false for [client] (remote_addr then names the server, the
 * default TLS name). user_timeout_ms bounds how long a tunnel socket may
 * go without its peer acknowledging anything while it has data in flight
 * or keepalive probes unanswered (a path that went dark without FIN or
 * RST): the role passes its liveness window (see
 * docs/internals/transports.md). Loads what the transport needs (the
 * PKCS#12 identity, the trust roots, the Noise keys). Returns 0, or a
 * negative error after logging one line that says what and what to do
 * (MR_EUNSUPPORTED when this build lacks the type); the stack is then
 * unusable but xport_stack_fini is still safe. */
int xport_stack_init(struct xport_stack *st, const struct conf_transport *t, bool server,
		     const char *remote_addr, unsigned user_timeout_ms);
/* Releases what init loaded (idempotent; a zeroed stack is fine). */
void xport_stack_fini(struct xport_stack *st);
/* Hot reload (a key file's content changed): r is what xport_stack_init
 * returned for fresh. On success *st is finished and replaced by fresh
 * (connections of the old one keep their references); on failure fresh is
 * finished and *st stays. Returns r. */
int xport_stack_swap(struct xport_stack *st, struct xport_stack *fresh, int r);

/* Client: the "host:port" to dial for a connection to the server:
 * remote_addr itself, or the proxy's address when there is a proxy. */
const char *xport_stack_dial_addr(const struct xport_stack *st, const char *remote_addr);

/* Client: fd is connected to the server. nodelay < 0 keeps the transport's
 * TCP_NODELAY, else overrides it (1 for a control channel, a service's own
 * nodelay for its data channels). */
struct xport *xport_stack_outbound(const struct xport_stack *st, int fd, int nodelay);
/* Server: fd was accepted on bind_addr (a control or data channel, not yet
 * known which: the caller may override nodelay later, xport_set_nodelay). */
struct xport *xport_stack_inbound(const struct xport_stack *st, int fd);
/* A local stream (a visitor; the local service): tcp, options untouched. */
struct xport *xport_stack_plain(int fd);

#endif
