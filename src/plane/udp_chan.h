/* udp_chan: what both UDP roles share (internal to udp_server.c and
 * udp_client.c; the public header is udp.h): the data channel side of a
 * forwarder, its output queue, and the per-forwarder bookkeeping.
 *
 * - struct udp_common: a forwarder's label, counters, lost() callback and
 *   statistics; drop accounting with rate-limited warnings; the receive and
 *   receive-moderation helpers for the UDP sockets of both roles.
 * - struct udp_outq: one bounded buffer of encoded frames towards the data
 *   channel, written from its front, filled at its tail.
 * - struct udp_chan: one io watcher on the data channel's xport, a frame
 *   parser (codec/udp_frame.h) fed from a read buffer, and the output
 *   queue. Frames read are handed to the owner (on_frame, then on_burst
 *   once per read); the owner places a datagram straight into the queue
 *   (udp_chan_frame_space, receive into it, udp_chan_frame_commit), so a
 *   datagram is copied once on its way to the channel. The queue is
 *   flushed once per loop iteration (loop_defer), and on writability after
 *   an -EAGAIN.
 *
 * Ownership: the structs are embedded in the owner (udp_server,
 * udp_client). udp_chan_attach takes the xport (closed also on failure);
 * udp_chan_detach closes it and drops what is queued; udp_chan_release
 * frees the memory (after udp_chan_detach, from the owner's deferred
 * free). Contract: only the channel's own failures (read, write, EOF, a
 * malformed frame) end it: the channel is detached first, then on_fail
 * runs, from the loop, never from inside a udp_chan_* call; the owner may
 * free itself or attach another xport inside on_fail. on_frame and
 * on_burst never end the channel. */
#ifndef MOLERAT_UDP_CHAN_H
#define MOLERAT_UDP_CHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/loop.h"
#include "codec/addr.h"
#include "codec/udp_frame.h"
#include "plane/relay.h"
#include "plane/rxmod.h"
#include "plane/udp.h"
#include "xport/xport.h"

enum {
	UDP_LABEL_MAX = 128,
};

/* ---- what a forwarder of either role keeps ---- */

struct udp_common {
	struct loop *loop;
	char label[UDP_LABEL_MAX];
	struct relay_counters *counters;   /* our own reference, or NULL */
	void (*lost)(void *arg, int err);
	void *arg;
	struct udp_stats st;
	uint64_t last_warn;                /* loop time of the last drop warning */
	uint64_t warned_drops;             /* st.dropped at that warning */
};

/* Copies env's loop, label, callback, and takes a counters reference (the
 * owner drops it with relay_counters_unref). cm is zeroed beforehand. */
void udp_common_init(struct udp_common *cm, const struct udp_env *env);
/* Counts n dropped datagrams of one visitor (who may be NULL), in the
 * forwarder's statistics and the service's counters (by reason). why is
 * logged at warn level at most once per 10 s (with the count since),
 * else at debug. */
void udp_common_count_drops(struct udp_common *cm, const struct addr *who, enum udp_drop_reason reason,
			    const char *why, unsigned n);
void udp_common_count_drop(struct udp_common *cm, const struct addr *who, enum udp_drop_reason reason,
			   const char *why);

/* Counts n datagrams forwarded (dir 0: visitor -> service, 1: back). */
static inline void udp_common_count_dgrams(struct udp_common *cm, int dir, uint64_t n)
{
	if (dir == 0)
		cm->st.datagrams_in += n;
	else
		cm->st.datagrams_out += n;
	if (cm->counters)
		cm->counters->udp_datagrams[dir] += n;
}

/* Counts n datagrams a send queue dropped without an error callback (what
 * was left after one gave up): reason send_failed. */
static inline void udp_common_count_flush_drops(struct udp_common *cm, uint64_t n)
{
	cm->st.dropped += n;
	if (cm->counters)
		cm->counters->udp_drops[UDP_DROP_SEND_FAILED] += n;
}

/* Adds n payload bytes to the env's counters (dir 0: in, 1: out). */
static inline void udp_common_count_bytes(struct udp_common *cm, int dir, size_t n)
{
	if (cm->counters)
		cm->counters->bytes[dir] += n;
}

/* recvfrom with MSG_TRUNC: the datagram's real size (larger than cap when
 * cut), -EAGAIN, or -errno. buf NULL with cap 0 discards one datagram;
 * from may be NULL. */
ssize_t udp_common_recv(int fd, void *buf, size_t cap, struct addr *from);
/* After a read wake-up of a UDP socket (taken datagrams; full: the batch
 * limit was reached): pauses the watcher for rxmod's nap, if any; the nap
 * timer's callback watches the socket again. */
void udp_common_moderate(struct loop *loop, struct io_watcher *w, struct rxmod *rm,
			 struct timer *nap, unsigned taken, bool full);

/* ---- the output queue: frames towards the data channel ---- */

struct udp_outq {
	uint8_t *buf;
	size_t cap;
	size_t off;   /* first unwritten byte */
	size_t len;   /* unwritten bytes from off */
};

/* ---- the data channel ---- */

struct udp_chan {
	struct loop *loop;
	struct udp_common *cm;
	struct xport *x;               /* NULL when none is attached */
	struct io_watcher w;
	struct timer resume;           /* reads again: bytes the transport holds, or after a nap */
	bool rd_nap;                   /* reading paused after a burst; resume is armed */
	unsigned rd_want;              /* events a read waits for */
	unsigned wr_want;              /* events a blocked write waits for */
	bool wr_blocked;               /* the last write said -EAGAIN */
	bool flush_scheduled;          /* a deferred flush is queued */
	bool in_resume;
	size_t max_queued;
	struct udp_outq out;
	uint8_t *rbuf;                 /* the read buffer */
	struct udp_parser *parser;
	void (*on_frame)(void *owner, const struct udp_frame *f);
	void (*on_burst)(void *owner);   /* the frames of one read were handed over */
	void (*on_room)(void *owner);    /* optional: the queue, once refused, has room again */
	bool starved;                    /* udp_chan_frame_space refused for want of room */
	void (*on_fail)(void *owner, int err);
	void *owner;
};

/* Sets up ch (zeroed beforehand, embedded in owner) with no xport; queued
 * bytes are bounded by max_queued. on_room is left NULL: the owner sets it
 * if it wants it. 0, or -ENOMEM (call udp_chan_release all the same). */
int udp_chan_init(struct udp_chan *ch, struct udp_common *cm, size_t max_queued,
		  void (*on_frame)(void *, const struct udp_frame *), void (*on_burst)(void *),
		  void (*on_fail)(void *, int), void *owner);
/* Detaches any xport, then watches x (taken, closed also on failure) with
 * a fresh parser. 0, or -errno from the loop. */
int udp_chan_attach(struct udp_chan *ch, struct xport *x);
/* Stops watching and closes the xport (if any); queued bytes are
 * dropped. */
void udp_chan_detach(struct udp_chan *ch);
/* Memory only (after udp_chan_detach). */
void udp_chan_release(struct udp_chan *ch);
/* Room for a frame with a 1 + hlen byte header and up to UDP_RECV_MAX
 * payload bytes; the payload goes at the result + 1 + hlen. NULL when no
 * channel is attached, the queue is over its bound (starved is set then)
 * or out of memory. */
uint8_t *udp_chan_frame_space(struct udp_chan *ch, int hlen);
/* Queues the frame whose payload (n bytes) was placed by
 * udp_chan_frame_space at p: writes its header for from, and schedules a
 * flush. false (nothing queued) when it would pass the bound or from's
 * header size is not hlen. */
bool udp_chan_frame_commit(struct udp_chan *ch, uint8_t *p, int hlen, const struct addr *from,
			   size_t n);

#endif
