/* stack: builds transport stacks, and is the only place outside tests that
 * calls a transport's constructor. The config's transport section becomes
 * a struct xport_stack once (at start); each connection then gets its stack
 * from it: outbound on the client (the socket the dial connected to the
 * server), inbound on the server (a socket accepted on bind_addr), and
 * plain for a local stream (a visitor on the server, the local service on
 * the client), which is tcp with no options, whatever the transport.
 *
 * Today every stack is the tcp layer alone: the types the config may name
 * but this build lacks are refused before start (role/conf_check.h) and by
 * xport_stack_init. The layers to come (a proxy step, then tls or noise,
 * then websocket: docs/internals/transports.md) are added here.
 *
 * Ownership: a struct xport_stack is a value the role keeps; it borrows
 * nothing. Every constructor takes the fd (closed also on failure) and
 * returns the top layer, owned by the caller (xport_close), or NULL on
 * out-of-memory. */
#ifndef MOLERAT_XPORT_STACK_H
#define MOLERAT_XPORT_STACK_H

#include "codec/conf.h"
#include "xport/xport.h"

struct xport_stack {
	enum conf_xport_type type;
	struct tcp_opts tcp;       /* [*.transport.tcp], applied to every socket of the tunnel */
	unsigned user_timeout_ms;  /* TCP_USER_TIMEOUT of every socket of the tunnel */
};

/* From a validated transport section. user_timeout_ms bounds how long a
 * tunnel socket may go without its peer acknowledging anything while it
 * has data in flight or keepalive probes unanswered (a path that went dark
 * without FIN or RST): the role passes its liveness window (see
 * docs/internals/transports.md). Returns 0, or MR_EUNSUPPORTED when this
 * build lacks the type (the stack is then unusable). */
int xport_stack_init(struct xport_stack *st, const struct conf_transport *t, unsigned user_timeout_ms);

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
