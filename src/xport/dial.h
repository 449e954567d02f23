/* dial: an outbound TCP connection to "host:port": resolve (dns), then try
 * every resolved address in turn, each with a connect timeout, until one
 * connects (protocol.md#q19 fixed). Later the proxy steps (socks5, http CONNECT)
 * slot in here too, before the transport handshake.
 *
 * Ownership: the dial is owned by dial until its callback has run or it was
 * cancelled; after dial_cancel() the callback never runs. The fd handed to
 * the callback belongs to the callee. A dial uses the dns it was started
 * with until it completes: cancel the dials before dns_free (dns_free does
 * not know them; a dial still resolving would wait for ever and its
 * dial_cancel would touch the freed request).
 *
 * The connected socket gets no options here: the caller applies keepalive
 * and TCP_NODELAY (protocol.md#p-transport-common) after the callback. */
#ifndef MOLERAT_DIAL_H
#define MOLERAT_DIAL_H

#include "base/dns.h"
#include "base/loop.h"
#include "base/sock.h"

struct dial;

/* fd >= 0 on success (connected, non-blocking) with err == 0 and the peer
 * address; fd == -1 with err < 0 on failure (after trying every address). */
typedef void (*dial_cb)(void *arg, int fd, int err, const struct addr *peer);

/* addr is "host:port" (host may be [IPv6]; split by addr_split_host_port).
 * An IP literal host skips the resolver (dns may then be NULL; a name with
 * a NULL dns fails with -EINVAL).
 * timeout_ms bounds each connect attempt (0 = the OS default); a timed-out
 * attempt counts as -ETIMEDOUT and the next address is tried. When every
 * address fails, err is the last attempt's error (-ECONNREFUSED, ...), or
 * the resolver's (MR_EDNS). The callback runs from the loop, never inside
 * dial_start, exactly once unless cancelled; it may call dial_cancel on
 * this dial (a no-op), start or cancel other dials, or free the dns.
 * Returns the dial, or NULL with *err set (MR_EFORMAT when addr is
 * malformed, -ENOMEM) and the callback never runs. */
struct dial *dial_start(struct loop *loop, struct dns *dns, const char *addr,
			unsigned timeout_ms, dial_cb cb, void *arg, int *err);
/* Like dial_start with the addresses already resolved (the client reuses the
 * control channel's address for its data channels, protocol.md#p-control-client; tests use it
 * to prove that every address is tried). Takes a copy of the first
 * DNS_MAX_ADDRS of addrs[0..n). n == 0 fails from the loop with MR_EDNS. */
struct dial *dial_start_addrs(struct loop *loop, const struct addr *addrs, size_t n,
			      unsigned timeout_ms, dial_cb cb, void *arg, int *err);
/* Stops everything (resolution, connect attempt, timer) and closes the
 * socket being connected; the callback never runs. d must not be used
 * afterwards. Its memory is freed via loop_defer, so it may be called from
 * any callback. */
void dial_cancel(struct dial *d);

#endif
