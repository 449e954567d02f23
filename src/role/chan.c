#include "role/chan.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "base/sock.h"

enum chan_state {
	CHAN_HANDSHAKE = 0,  /* transport handshake in progress */
	CHAN_OPEN,           /* messages flow */
	CHAN_DEAD,           /* closed or detached; waiting to be freed */
};

struct chan {
	struct loop *loop;
	struct xport *x;
	struct io_watcher w;
	enum chan_state state;
	const struct chan_cbs *cbs;
	void *owner;
	bool in_io;                   /* inside chan_on_io: chan_send and chan_expect
				       * leave the events to its end (one epoll_ctl
				       * instead of one per call) */
	size_t need, have;            /* reader: wants need bytes, has have */
	bool hs_started;              /* the handshake was stepped at least once */
	bool failed;                  /* on_error ran: watched for nothing any more */
	bool watch;                   /* need == 0: watch for EOF and stray bytes
				       * (chan_expect(0)); else idle between messages */
	uint8_t in[CHAN_MSG_MAX];
	size_t out_off, out_len;
	uint8_t *out;                 /* out_inline, or a CHAN_OUT_MAX heap buffer
				       * while more than fits inline is queued */
	uint8_t out_inline[CHAN_OUT_INLINE];
};

static void chan_update(struct chan *c);

/* Back to the inline output buffer once the queue is empty. */
static void out_shrink(struct chan *c)
{
	if (c->out != c->out_inline) {
		free(c->out);
		c->out = c->out_inline;
	}
}

static void chan_free(void *arg)
{
	struct chan *c = arg;
	out_shrink(c);
	free(c);
}

static void chan_fail(struct chan *c, int err)
{
	if (c->state == CHAN_DEAD || c->failed)
		return;
	c->failed = true;
	loop_io_set(c->loop, &c->w, 0);
	c->cbs->on_error(c, c->owner, err);
}

/* Writes what is queued. Returns 0, or a negative error. */
static int chan_flush(struct chan *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = xport_write(c->x, c->out + c->out_off, c->out_len - c->out_off);
		if (n == -EAGAIN)
			return 0;
		if (n < 0)
			return (int)n;
		c->out_off += (size_t)n;
	}
	c->out_off = c->out_len = 0;
	out_shrink(c);
	return 0;
}

static void chan_read(struct chan *c)
{
	for (;;) {
		if (c->state != CHAN_OPEN)
			return;
		if (c->need == 0) {
			if (!c->watch)
				return;   /* idle until the owner's next chan_expect */
			/* nothing expected: only EOF or stray bytes can come */
			uint8_t junk[256];
			ssize_t n = xport_read(c->x, junk, sizeof(junk));
			if (n == -EAGAIN)
				return;
			chan_fail(c, n == 0 ? MR_EEOF : n < 0 ? (int)n : MR_EPROTO_UNEXPECTED);
			return;
		}
		ssize_t n = xport_read(c->x, c->in + c->have, c->need - c->have);
		if (n == -EAGAIN)
			return;
		if (n <= 0) {
			chan_fail(c, n == 0 ? MR_EEOF : (int)n);
			return;
		}
		c->have += (size_t)n;
		if (c->have < c->need)
			continue;
		uint8_t msg[CHAN_MSG_MAX];
		size_t len = c->need;
		memcpy(msg, c->in, len);
		c->need = c->have = 0;
		c->watch = false;
		if (c->cbs->on_msg)
			c->cbs->on_msg(c, c->owner, msg, len);
		/* the callback may have asked for more, closed or detached */
	}
}

static void chan_on_io_steps(struct chan *c, unsigned revents);

static void chan_on_io(struct loop *loop, struct io_watcher *w, unsigned revents)
{
	struct chan *c = w->data;
	c->in_io = true;
	chan_on_io_steps(c, revents);
	c->in_io = false;
	/* what the owner's calls asked for, and what the steps left */
	chan_update(c);
}

static void chan_on_io_steps(struct chan *c, unsigned revents)
{
	if (c->state == CHAN_HANDSHAKE) {
		c->hs_started = true;
		int r = xport_handshake(c->x);
		if (r == -EAGAIN)
			return;
		if (r < 0) {
			chan_fail(c, r);
			return;
		}
		c->state = CHAN_OPEN;
		if (c->cbs->on_open)
			c->cbs->on_open(c, c->owner);
		if (c->state != CHAN_OPEN)
			return;
	}
	if (c->out_len) {
		int r = chan_flush(c);
		if (r < 0) {
			chan_fail(c, r);
			return;
		}
		if (!c->out_len && c->cbs->on_drain) {
			c->cbs->on_drain(c, c->owner);
			if (c->state != CHAN_OPEN)
				return;
		}
	}
	chan_read(c);
	if (c->state == CHAN_OPEN && (revents & LOOP_ERROR) && !c->need && !c->watch && !c->out_len) {
		/* a hang-up cannot be masked in level-triggered epoll: an idle
		 * chan reports it rather than spin */
		chan_fail(c, MR_EEOF);
		return;
	}
}

/* Registers the events the chan waits for now. */
static void chan_update(struct chan *c)
{
	if (c->state == CHAN_DEAD || c->failed || c->in_io)
		return;
	unsigned ev;
	if (c->state == CHAN_HANDSHAKE) {
		/* before the first step, writability starts the handshake (tcp
		 * has none); afterwards the transport names what it waits for */
		ev = c->hs_started ? xport_want(c->x) : LOOP_WRITE;
		if (!ev)
			ev = LOOP_WRITE;
	}
	else
		ev = (c->need || c->watch ? LOOP_READ : 0) | (c->out_len ? LOOP_WRITE : 0);
	loop_io_set(c->loop, &c->w, ev);
}

struct chan *chan_new(struct loop *loop, struct xport *x, const struct chan_cbs *cbs, void *owner)
{
	struct chan *c = calloc(1, sizeof(*c));
	if (!c) {
		xport_close(x);
		return NULL;
	}
	c->loop = loop;
	c->x = x;
	c->out = c->out_inline;
	c->cbs = cbs;
	c->owner = owner;
	loop_io_init(&c->w, chan_on_io, c);
	/* start with write interest: the handshake (or on_open) runs from the
	 * loop on the first event, never from inside chan_new */
	if (loop_io_start(loop, &c->w, x->fd, LOOP_WRITE) < 0) {
		xport_close(x);
		free(c);
		return NULL;
	}
	return c;
}

void chan_expect(struct chan *c, size_t n)
{
	if (n > CHAN_MSG_MAX)
		n = CHAN_MSG_MAX;
	c->need = n;
	c->have = 0;
	c->watch = n == 0;
	if (c->state == CHAN_OPEN && xport_pending(c->x) > 0 && n) {
		chan_read(c);
		return;
	}
	chan_update(c);
}

int chan_send(struct chan *c, const void *buf, size_t len)
{
	if (c->state == CHAN_DEAD)
		return MR_ECLOSED;
	size_t cap = c->out == c->out_inline ? CHAN_OUT_INLINE : CHAN_OUT_MAX;
	if (c->out_off && c->out_len + len > cap) {
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
	if (c->out_len + len > cap && cap < CHAN_OUT_MAX && c->out_len + len <= CHAN_OUT_MAX) {
		uint8_t *big = malloc(CHAN_OUT_MAX);
		if (!big)
			return -ENOMEM;
		memcpy(big, c->out, c->out_len);
		c->out = big;
		cap = CHAN_OUT_MAX;
	}
	if (c->out_len + len > cap)
		return MR_ELIMIT;
	memcpy(c->out + c->out_len, buf, len);
	c->out_len += len;
	if (c->state == CHAN_OPEN) {
		int r = chan_flush(c);
		if (r < 0)
			return r;
	}
	chan_update(c);
	return 0;
}

size_t chan_queued(const struct chan *c) { return c->out_len - c->out_off; }

bool chan_msg_arrived(struct chan *c)
{
	if (c->state == CHAN_DEAD || c->need == 0)
		return false;
	long n = sock_unread(xport_bottom(c->x)->fd);
	return n >= 0 && (size_t)n >= c->need - c->have;
}
struct xport *chan_xport(struct chan *c) { return c->x; }

void chan_set_owner(struct chan *c, const struct chan_cbs *cbs, void *owner)
{
	c->cbs = cbs;
	c->owner = owner;
}

static struct xport *chan_release(struct chan *c, bool closing)
{
	struct xport *x = c->x;
	if (closing)
		loop_io_forget(c->loop, &c->w);
	else
		loop_io_stop(c->loop, &c->w);
	c->state = CHAN_DEAD;
	c->x = NULL;
	loop_defer(c->loop, chan_free, c);
	return x;
}

struct xport *chan_detach(struct chan *c)
{
	return chan_release(c, false);
}

void chan_close(struct chan *c)
{
	xport_close(chan_release(c, true));
}

const char *chan_strerror(struct chan *c, int err)
{
	const char *why = NULL;
	if (err == MR_ETLS || err == MR_ENOISE || err == MR_EWS || err == MR_EPROXY || err == MR_ETIMEDOUT_HS)
		why = xport_last_error(c->x);
	return why ? why : mr_strerror(err);
}
