/* dns: name resolution that never blocks the loop (c-ares).
 *
 * Numeric literals ("127.0.0.1", "::1") are answered without c-ares. Every
 * answer, also an immediate one, is delivered from the loop (never from
 * inside dns_resolve), so callers need no re-entrancy care.
 *
 * Ownership: struct dns belongs to the role (server or client instance).
 * A request is owned by dns until its callback has returned or it was
 * cancelled; after dns_cancel() the callback never runs. */
#ifndef MOLERAT_DNS_H
#define MOLERAT_DNS_H

#include <stddef.h>
#include <stdint.h>

#include "loop.h"
#include "sock.h"

struct dns;
struct dns_req;

int dns_new(struct loop *loop, struct dns **out);
void dns_free(struct dns *d);   /* cancels everything pending */

/* err is 0 with n >= 1 addresses (in resolver order, IPv4 and IPv6 as the
 * system returns them), or negative (MR_EDNS, ...) with n == 0. addrs is
 * valid only during the callback. */
typedef void (*dns_cb)(void *arg, int err, const struct sock_addr *addrs, size_t n);

/* Resolves host (a name or literal, no brackets) for port. Returns the
 * request, or NULL on out-of-memory (callback never runs). */
struct dns_req *dns_resolve(struct dns *d, const char *host, uint16_t port, dns_cb cb, void *arg);
void dns_cancel(struct dns_req *r);

#endif
