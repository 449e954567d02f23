/* dns: name resolution that never blocks the loop (c-ares).
 *
 * Numeric literals ("127.0.0.1", "::1") are answered without c-ares. Every
 * answer, also an immediate one, is delivered from the loop (never from
 * inside dns_resolve), so callers need no re-entrancy care.
 *
 * Ownership: struct dns belongs to the role (server or client instance).
 * A request is owned by dns until its callback has returned or it was
 * cancelled; after dns_cancel() the callback never runs.
 *
 * Resolution uses ares_getaddrinfo(AF_UNSPEC) on one c-ares channel per
 * struct dns: /etc/hosts first, then the servers of /etc/resolv.conf, the
 * answer sorted by RFC 6724 as getaddrinfo(3) does. The channel's sockets
 * are watched by the loop (one io watcher per c-ares socket) and its
 * timeouts by one loop timer. c-ares creates its own sockets (non-blocking,
 * close-on-exec): the one exception to "every socket call in sock.c".
 * Each query is tried at most DNS_TRIES times per server (glibc's default
 * "attempts:2"; c-ares would try 4 times with doubling timeouts, over a
 * minute against a dead server); the per-try timeout comes from
 * resolv.conf ("timeout:", default 5 s).
 *
 * ares_library_init() is called by dns_new and ares_library_cleanup() by
 * dns_free: c-ares keeps the reference count itself (its only process-wide
 * state, a no-op on Linux); this module keeps no global state. Not
 * thread-safe: create and free every struct dns on one thread. */
#ifndef MOLERAT_DNS_H
#define MOLERAT_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/loop.h"
#include "base/sock.h"

struct dns;
struct dns_req;

enum {
	DNS_MAX_ADDRS = 16,   /* addresses kept per answer, the rest dropped */
	DNS_MAX_NAME = 255,   /* longer names fail with MR_EDNS */
	DNS_TRIES = 2,
};

/* Creates the resolver on loop (reads /etc/resolv.conf and /etc/hosts
 * settings now). Returns 0, -ENOMEM, or MR_EDNS when c-ares cannot start
 * (the reason is logged). */
int dns_new(struct loop *loop, struct dns **out);
/* Settings that differ from the system's, for tests (and a future config
 * key): every field is optional (NULL / 0 = the system's or the default). */
struct dns_opts {
	const char *servers;   /* "127.0.0.1:5353,[::1]:53" replaces resolv.conf's */
	unsigned timeout_ms;   /* first try's timeout (c-ares doubles it per round) */
	unsigned tries;        /* tries per server; 0 = DNS_TRIES */
	bool no_hosts_file;    /* skip /etc/hosts (lookups "b" only) */
};
/* dns_new with opts (NULL = dns_new). Returns 0, -ENOMEM, or MR_EDNS (also
 * for a malformed servers list). */
int dns_new_opts(struct loop *loop, const struct dns_opts *opts, struct dns **out);
/* Cancels everything pending (no callback runs) and destroys the channel.
 * May be called from inside a dns or dial callback; not from inside a
 * c-ares callback (there are none outside this module). NULL is a no-op.
 * Call it before loop_free. */
void dns_free(struct dns *d);

/* err is 0 with 1 <= n <= DNS_MAX_ADDRS distinct addresses (in resolver
 * order, IPv4 and IPv6 as the system returns them, each with the port set),
 * or negative (MR_EDNS for every resolver failure, with the c-ares reason
 * logged at debug level; -ENOMEM) with n == 0 and addrs NULL. addrs is
 * valid only during the callback. The callback may call dns_resolve,
 * dns_cancel (on other requests) and dns_free. */
typedef void (*dns_cb)(void *arg, int err, const struct addr *addrs, size_t n);

/* Resolves host (a name or literal, no brackets) for port. The callback
 * runs later from the loop, exactly once unless cancelled. Returns the
 * request, or NULL on out-of-memory (callback never runs). */
struct dns_req *dns_resolve(struct dns *d, const char *host, uint16_t port, dns_cb cb, void *arg);
/* Cancels r: its callback never runs. r must not be used afterwards. A
 * no-op when called from inside r's own callback (r is already done). */
void dns_cancel(struct dns_req *r);

#endif
