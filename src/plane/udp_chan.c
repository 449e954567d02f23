/* udp_chan: the data channel side of UDP forwarding, shared by both roles.
 * See udp_chan.h for the contract.
 *
 * A datagram read from a UDP socket is received straight into the tail of
 * the output queue, behind the room for its header (the header size is
 * known before the receive: the socket's family on the server, the
 * visitor's on a client mapping), so it is copied once on its way to the
 * channel. The queue is flushed once per loop iteration (loop_defer), and
 * on writability after an -EAGAIN. Reads are bounded per wake-up
 * (UDP_READ_BUDGET), and after a burst of frames handed to the sockets the
 * channel rests (see udp_chan_read). */
#include "plane/udp_chan.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/err.h"
#include "base/log.h"
#include "codec/proto.h"

enum {
	UDP_WARN_EVERY_MS = 10000,      /* rate limit of drop warnings */
	UDP_RBUF = 64 * 1024,           /* data channel read buffer */
	UDP_BURST_FRAMES = 16,          /* datagrams out of one read that make a burst */
	UDP_BURST_US_PER_FRAME = 3,     /* after a burst the data channel rests this per datagram */
	UDP_OUTQ_KEEP = 256 * 1024,     /* an empty queue larger than this is released */
};

/* ---------------------------------------------------------------- common */

void udp_common_init(struct udp_common *cm, const struct udp_env *env)
{
	cm->loop = env->loop;
	snprintf(cm->label, sizeof(cm->label), "%s", env->label ? env->label : "?");
	cm->counters = relay_counters_ref(env->counters);
	cm->lost = env->lost;
	cm->arg = env->arg;
}

/* The warning: at most once per UDP_WARN_EVERY_MS, with the count since. */
void udp_common_count_drops(struct udp_common *cm, const struct addr *who, enum udp_drop_reason reason,
			    const char *why, unsigned n)
{
	cm->st.dropped += n;
	if (cm->counters && (unsigned)reason < UDP_DROP_N)
		cm->counters->udp_drops[reason] += n;
	char buf[ADDR_STRLEN] = "?";
	if (who)
		addr_str(who, buf, sizeof(buf));
	uint64_t now = loop_now(cm->loop);
	if (cm->last_warn == 0 || now - cm->last_warn >= UDP_WARN_EVERY_MS) {
		log_warn("udp service %s: dropped a datagram of %s: %s (%llu dropped since the last warning)",
			 cm->label, buf, why, (unsigned long long)(cm->st.dropped - cm->warned_drops));
		cm->last_warn = now ? now : 1;
		cm->warned_drops = cm->st.dropped;
	} else {
		log_debug("udp service %s: dropped a datagram of %s: %s", cm->label, buf, why);
	}
}

void udp_common_count_drop(struct udp_common *cm, const struct addr *who, enum udp_drop_reason reason,
			   const char *why)
{
	udp_common_count_drops(cm, who, reason, why, 1);
}

/* After a read wake-up of a UDP socket (taken datagrams; full: the batch
 * limit was reached): pauses the watcher for rxmod's nap, if any; the nap
 * timer's callback watches the socket again. */
void udp_common_moderate(struct loop *loop, struct io_watcher *w, struct rxmod *rm,
			 struct timer *nap, unsigned taken, bool full)
{
	uint64_t us = rxmod_after_read(rm, loop_now_us(loop), taken, full);
	if (us) {
		loop_io_set(loop, w, 0);
		loop_timer_start_us(loop, nap, us);
	}
}

/* recvfrom with MSG_TRUNC: the datagram's real size (larger than cap when
 * cut), -EAGAIN, or -errno. buf NULL with cap 0 discards one datagram. */
ssize_t udp_common_recv(int fd, void *buf, size_t cap, struct addr *from)
{
	for (;;) {
		if (from)
			from->len = sizeof(from->ss);
		ssize_t n = recvfrom(fd, buf, cap, MSG_TRUNC, from ? (struct sockaddr *)&from->ss : NULL,
				     from ? &from->len : NULL);
		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return -EAGAIN;
		return -errno;
	}
}

/* ---------------------------------------------------------------- output queue */

/* Room for n more bytes at the tail: a pointer to it, or NULL on
 * out-of-memory. Moves the unwritten bytes to the front or grows, doubling
 * up to limit (never below len + n), so the buffer stays within about
 * max(limit, len + n). */
static uint8_t *udp_outq_reserve(struct udp_outq *q, size_t n, size_t limit)
{
	if (q->cap - q->off - q->len >= n)
		return q->buf + q->off + q->len;
	if (q->off && q->cap - q->len >= n) {
		memmove(q->buf, q->buf + q->off, q->len);
		q->off = 0;
		return q->buf + q->len;
	}
	size_t cap = q->cap ? q->cap * 2 : n;
	if (cap > limit)
		cap = limit;
	if (cap < q->len + n)
		cap = q->len + n;
	uint8_t *b = malloc(cap);
	if (!b)
		return NULL;
	if (q->len)
		memcpy(b, q->buf + q->off, q->len);
	free(q->buf);
	q->buf = b;
	q->cap = cap;
	q->off = 0;
	return q->buf + q->len;
}

static void udp_outq_consume(struct udp_outq *q, size_t n)
{
	q->off += n;
	q->len -= n;
	if (q->len == 0) {
		q->off = 0;
		if (q->cap > UDP_OUTQ_KEEP) {
			free(q->buf);
			q->buf = NULL;
			q->cap = 0;
		}
	}
}

static void udp_outq_clear(struct udp_outq *q)
{
	free(q->buf);
	q->buf = NULL;
	q->cap = q->off = q->len = 0;
}

/* ---------------------------------------------------------------- data channel */

static void udp_chan_on_io(struct loop *loop, struct io_watcher *w, unsigned revents);
static void udp_chan_on_resume(struct loop *loop, struct timer *t);

int udp_chan_init(struct udp_chan *ch, struct udp_common *cm, size_t max_queued,
		  void (*on_frame)(void *, const struct udp_frame *), void (*on_burst)(void *),
		  void (*on_fail)(void *, int), void *owner)
{
	ch->on_burst = on_burst;
	ch->loop = cm->loop;
	ch->cm = cm;
	ch->x = NULL;
	loop_io_init(&ch->w, udp_chan_on_io, ch);
	loop_timer_init(&ch->resume, udp_chan_on_resume, ch);
	ch->max_queued = max_queued;
	ch->on_frame = on_frame;
	ch->on_fail = on_fail;
	ch->owner = owner;
	ch->rbuf = malloc(UDP_RBUF);
	ch->parser = malloc(sizeof(*ch->parser));
	if (!ch->rbuf || !ch->parser)
		return -ENOMEM;
	udp_parser_init(ch->parser);
	return 0;
}

/* Stops watching and closes the xport (if any); queued bytes are dropped. */
void udp_chan_detach(struct udp_chan *ch)
{
	ch->starved = false;
	ch->rd_nap = false;
	loop_io_stop(ch->loop, &ch->w);
	loop_timer_stop(ch->loop, &ch->resume);
	xport_close(ch->x);
	ch->x = NULL;
	ch->wr_blocked = false;
	udp_outq_clear(&ch->out);
}

/* Memory only (after udp_chan_detach). */
void udp_chan_release(struct udp_chan *ch)
{
	udp_outq_clear(&ch->out);
	free(ch->rbuf);
	free(ch->parser);
}

int udp_chan_attach(struct udp_chan *ch, struct xport *x)
{
	udp_chan_detach(ch);
	udp_parser_init(ch->parser);
	ch->rd_want = LOOP_READ;
	ch->wr_want = LOOP_WRITE;
	ch->wr_blocked = false;
	int r = loop_io_start(ch->loop, &ch->w, x->fd, LOOP_READ);
	if (r < 0) {
		xport_close(x);
		return r;
	}
	ch->x = x;
	/* bytes the transport read ahead (TLS records) wake no fd */
	if (xport_pending(x))
		loop_timer_start(ch->loop, &ch->resume, 0);
	return 0;
}

/* Ends the channel and tells the owner; the owner may free or re-attach
 * inside on_fail, so the caller returns at once. */
static void udp_chan_fail(struct udp_chan *ch, int err)
{
	udp_chan_detach(ch);
	ch->on_fail(ch->owner, err);
}

static int udp_chan_update_interest(struct udp_chan *ch)
{
	unsigned ev = (ch->rd_nap ? 0 : ch->rd_want) | (ch->wr_blocked ? ch->wr_want : 0);
	return loop_io_set(ch->loop, &ch->w, ev);
}

/* Writes what is queued. 0 (all written, or blocked: wr_blocked set), or a
 * negative error. */
static int udp_chan_flush(struct udp_chan *ch)
{
	while (ch->out.len) {
		ssize_t n = xport_write(ch->x, ch->out.buf + ch->out.off, ch->out.len);
		if (n > 0) {
			udp_outq_consume(&ch->out, (size_t)n);
			if (ch->starved && ch->out.len <= ch->max_queued / 2) {
				ch->starved = false;
				if (ch->on_room)
					ch->on_room(ch->owner);
			}
			continue;
		}
		if (n == -EAGAIN) {
			ch->wr_blocked = true;
			ch->wr_want = xport_want(ch->x);
			return udp_chan_update_interest(ch);
		}
		return n == 0 ? -EIO : (int)n;
	}
	if (ch->wr_blocked) {
		ch->wr_blocked = false;
		return udp_chan_update_interest(ch);
	}
	return 0;
}

static void udp_chan_flush_deferred(void *arg)
{
	struct udp_chan *ch = arg;
	ch->flush_scheduled = false;
	if (!ch->x || ch->wr_blocked)
		return;
	int r = udp_chan_flush(ch);
	if (r < 0)
		udp_chan_fail(ch, r);
}

static void udp_chan_schedule_flush(struct udp_chan *ch)
{
	if (!ch->x || ch->wr_blocked || ch->flush_scheduled)
		return;
	ch->flush_scheduled = true;
	loop_defer(ch->loop, udp_chan_flush_deferred, ch);
}

/* Room for a frame with a 1 + hlen byte header and up to UDP_RECV_MAX
 * payload bytes; the payload goes at the result + 1 + hlen. NULL when no
 * channel is attached, the queue is over its bound or out of memory. */
uint8_t *udp_chan_frame_space(struct udp_chan *ch, int hlen)
{
	if (!ch->x)
		return NULL;
	if (ch->out.len + 1 + (size_t)hlen > ch->max_queued) {
		ch->starved = true;
		return NULL;
	}
	return udp_outq_reserve(&ch->out, 1 + (size_t)hlen + UDP_RECV_MAX,
				ch->max_queued + 1 + PROTO_UDP_HDR_V6 + UDP_RECV_MAX);
}

/* The header goes in front of the payload the owner received at p + 1 +
 * hlen. */
bool udp_chan_frame_commit(struct udp_chan *ch, uint8_t *p, int hlen, const struct addr *from,
			   size_t n)
{
	size_t total = 1 + (size_t)hlen + n;
	if (n > UINT16_MAX || ch->out.len + total > ch->max_queued)
		return false;
	if (proto_encode_udp_hdr(p, 1 + (size_t)hlen, from, (uint16_t)n) != 1 + hlen)
		return false;
	ch->out.len += total;
	udp_chan_schedule_flush(ch);
	return true;
}

/* Reads up to UDP_READ_BUDGET bytes and hands every complete frame to the
 * owner. 0, or a negative error that ends the channel. */
static int udp_chan_read(struct udp_chan *ch)
{
	size_t budget = UDP_READ_BUDGET;
	while (budget) {
		ssize_t n = xport_read(ch->x, ch->rbuf, UDP_RBUF);
		if (n == -EAGAIN) {
			ch->rd_want = xport_want(ch->x);
			return 0;
		}
		if (n == 0)
			return MR_EEOF;
		if (n < 0)
			return (int)n;
		size_t pos = 0, len = (size_t)n;
		unsigned frames = 0;
		while (pos < len) {
			struct udp_frame f;
			bool done;
			ssize_t r = udp_parser_feed(ch->parser, ch->rbuf + pos, len - pos, &f, &done);
			if (r < 0) {
				log_warn("udp service %s: malformed frame on the data channel: %s",
					 ch->cm->label, mr_strerror((int)r));
				ch->on_burst(ch->owner);
				return (int)r;
			}
			pos += (size_t)r;
			if (done) {
				ch->on_frame(ch->owner, &f);
				frames++;
			}
			/* on_frame never ends the channel (only udp_chan_fail does) */
		}
		budget -= len < budget ? len : budget;
		ch->on_burst(ch->owner);
		/* A UDP receiver has no backpressure: bursts sent faster than
		 * it drains overflow its socket buffer (about 90 datagrams of
		 * 1,400 bytes by default). After a burst, give it time to drain
		 * (a few us per datagram, its cost on loopback) before reading
		 * more; the data channel's TCP buffers hold the rest meanwhile,
		 * losing nothing. This caps one channel at about 330,000
		 * datagrams a second (3.7 Gbit/s of 1,400-byte ones). With
		 * sched_yield here instead, loss at the final receiver at
		 * 1 Gbit/s offered was about 2.5%; with this pause, under 1%. */
		if (frames >= UDP_BURST_FRAMES) {
			ch->rd_nap = true;
			loop_timer_start_us(ch->loop, &ch->resume, (uint64_t)frames * UDP_BURST_US_PER_FRAME);
			return 0;
		}
	}
	/* more may be waiting: a readable fd wakes us again (level-triggered);
	 * bytes held inside the transport do not */
	if (xport_pending(ch->x))
		loop_timer_start(ch->loop, &ch->resume, ch->in_resume ? 1 : 0);
	return 0;
}

static void udp_chan_on_io(struct loop *loop, struct io_watcher *w, unsigned revents)
{
	struct udp_chan *ch = w->data;
	int r = 0;
	if (ch->wr_blocked && (revents & (ch->wr_want | LOOP_ERROR))) {
		r = udp_chan_flush(ch);
		if (r < 0)
			goto fail;
	}
	if (revents & (ch->rd_want | LOOP_ERROR)) {
		r = udp_chan_read(ch);
		if (r < 0)
			goto fail;
	}
	r = udp_chan_update_interest(ch);
	if (r < 0)
		goto fail;
	return;
fail:
	udp_chan_fail(ch, r);
}

static void udp_chan_on_resume(struct loop *loop, struct timer *t)
{
	struct udp_chan *ch = t->data;
	if (!ch->x)
		return;
	ch->rd_nap = false;
	ch->in_resume = true;
	int r = udp_chan_read(ch);
	ch->in_resume = false;
	if (r == 0)
		r = udp_chan_update_interest(ch);
	if (r < 0)
		udp_chan_fail(ch, r);
}
