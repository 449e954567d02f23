/* dial: an outbound TCP connection to "host:port": resolve (dns), then try
 * every resolved address in turn, each with a connect timeout, until one
 * connects (spec Q19 fixed). Later the proxy steps (socks5, http CONNECT)
 * slot in here too, before the transport handshake.
 *
 * Ownership: the dial is owned by dial until its callback has run or it was
 * cancelled; after dial_cancel() the callback never runs. The fd handed to
 * the callback belongs to the callee. */
#ifndef MOLERAT_DIAL_H
#define MOLERAT_DIAL_H

#include "dns.h"
#include "loop.h"
#include "sock.h"

struct dial;

/* fd >= 0 on success (connected, non-blocking) with err == 0 and the peer
 * address; fd == -1 with err < 0 on failure (after trying every address). */
typedef void (*dial_cb)(void *arg, int fd, int err, const struct sock_addr *peer);

/* addr is "host:port" (host may be [IPv6]). timeout_ms bounds each connect
 * attempt (0 = the OS default). Returns the dial, or NULL with *err set when
 * addr is malformed or memory is short (callback never runs). */
struct dial *dial_start(struct loop *loop, struct dns *dns, const char *addr,
			unsigned timeout_ms, dial_cb cb, void *arg, int *err);
void dial_cancel(struct dial *d);

#endif
