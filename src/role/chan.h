/* chan: one control-plane connection (a control channel, or a data channel
 * before it is handed to the relay). It drives the transport handshake,
 * reads fixed-size messages (the reader asks for exactly n bytes), and
 * queues small writes in a bounded buffer.
 *
 * Ownership: chan_new takes the xport. The owner (server or client code)
 * holds the struct chan * and ends it with chan_close() (closes the xport)
 * or chan_detach() (gives the xport back, for the relay). Either frees the
 * chan after the current batch of events, so both may be called from inside
 * a chan callback; no callback runs after them.
 *
 * Callbacks (all optional but on_error):
 *   on_open:  the transport handshake finished;
 *   on_msg:   the n bytes asked for by chan_expect() arrived (the reader is
 *             then idle until the next chan_expect());
 *   on_drain: everything queued has been written;
 *   on_error: EOF (MR_EEOF), a read/write error, or bytes arriving while
 *             nothing was expected (MR_EPROTO_UNEXPECTED). The owner must
 *             close the chan. */
#ifndef MOLERAT_CHAN_H
#define MOLERAT_CHAN_H

#include <stddef.h>
#include <stdint.h>

#include "base/loop.h"
#include "xport/xport.h"

struct chan;

struct chan_cbs {
	void (*on_open)(struct chan *c, void *owner);
	void (*on_msg)(struct chan *c, void *owner, const uint8_t *msg, size_t len);
	void (*on_drain)(struct chan *c, void *owner);
	void (*on_error)(struct chan *c, void *owner, int err);
};

enum {
	CHAN_MSG_MAX = 64,      /* the largest fixed-size message (Hello is 37) */
	CHAN_OUT_INLINE = 64,   /* output held inside the chan: a Hello, an Ack, a command */
	CHAN_OUT_MAX = 4096,    /* queued output bound: 1024 four-byte commands; past
				 * CHAN_OUT_INLINE it is allocated, only while needed,
				 * so a flood of handshakes costs little memory */
};

/* Starts the transport handshake at once (on_open fires from the loop). */
struct chan *chan_new(struct loop *loop, struct xport *x, const struct chan_cbs *cbs, void *owner);
/* Ask for exactly n (1..CHAN_MSG_MAX) bytes; on_msg fires when they are in.
 * n == 0: expect nothing, but keep watching so EOF or stray bytes are seen
 * (on_error). */
void chan_expect(struct chan *c, size_t n);
/* Queue bytes for writing. 0, or MR_ELIMIT when the queue is full (the
 * peer is not reading), or the pending write error. */
int chan_send(struct chan *c, const void *buf, size_t len);
/* Bytes still queued. */
size_t chan_queued(const struct chan *c);
/* Stop watching, give the xport back (nothing may be queued). */
struct xport *chan_detach(struct chan *c);
void chan_close(struct chan *c);
/* True when the reader waits for a message and all of it has already
 * arrived in the socket, unread (the loop has not run this chan yet):
 * the peer has done its part. Only for a plain socket underneath (the
 * count is of the bottom socket's bytes). */
bool chan_msg_arrived(struct chan *c);
void chan_set_owner(struct chan *c, const struct chan_cbs *cbs, void *owner);
struct xport *chan_xport(struct chan *c);
/* The text for err, a failure of c: the transport's own line for a TLS
 * or Noise failure (xport_last_error: what went wrong and what to do),
 * else mr_strerror(err). Valid until the next call on c. */
const char *chan_strerror(struct chan *c, int err);

#endif
