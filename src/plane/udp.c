/* udp: UDP services over a stream data channel. See udp.h for the
 * contract.
 *
 * Shape: both roles share a struct udp_chan, the data channel side: one io
 * watcher on the xport, a pure frame parser fed from a read buffer, and one
 * bounded output queue of encoded frames. A datagram read from a UDP socket
 * is received straight into the tail of that queue, behind the room for its
 * header (the header size is known before the receive: the socket's family
 * on the server, the visitor's on a client mapping), so a datagram is
 * copied once on its way to the channel. The queue is flushed once per loop
 * iteration (loop_defer), and on writability after an -EAGAIN.
 *
 * The server owns one unconnected socket; the client owns a hash table of
 * mappings (visitor address -> connected socket towards local_addr), each
 * with a lazily re-armed idle timer. Per-packet failures drop the packet,
 * failures of a mapping's socket drop the mapping; only the data channel's
 * own failures (read, write, EOF, a malformed frame) end the channel and
 * call lost(). */
#include "plane/udp.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/err.h"
#include "base/log.h"
#include "plane/rxmod.h"
#include "plane/udp_sendq.h"
#include "base/util.h"

enum {
	UDP_LABEL_MAX = 128,
	UDP_WARN_EVERY_MS = 10000,      /* rate limit of drop warnings */
	UDP_RBUF = 64 * 1024,           /* data channel read buffer */
	UDP_BURST_FRAMES = 16,          /* datagrams out of one read that make a burst */
	UDP_BURST_US_PER_FRAME = 3,     /* after a burst the data channel rests this per datagram */
	UDP_OUTQ_KEEP = 256 * 1024,     /* an empty queue larger than this is released */
	UDP_IDLE_ENV_MAX = 24 * 3600 * 1000,
};

/* ---------------------------------------------------------------- parser */

void udp_parser_init(struct udp_parser *p)
{
	p->state = UDP_PARSE_HLEN;
	p->err = 0;
	p->hlen = 0;
	p->len = 0;
	p->got = 0;
}

ssize_t udp_parser_feed(struct udp_parser *p, const uint8_t *in, size_t len, struct udp_frame *f,
			bool *done)
{
	size_t pos = 0;
	*done = false;
	for (;;) {
		switch (p->state) {
		case UDP_PARSE_HLEN:
			if (pos == len)
				return (ssize_t)pos;
			p->hlen = in[pos++];
			p->got = 0;
			p->state = UDP_PARSE_HDR;
			continue;
		case UDP_PARSE_HDR: {
			size_t n = p->hlen - p->got;
			if (n > len - pos)
				n = len - pos;
			if (n) {
				memcpy(p->hdr + p->got, in + pos, n);
				p->got += n;
				pos += n;
			}
			if (p->got < p->hlen)
				return (ssize_t)pos;
			int r = proto_decode_udp_hdr(p->hdr, p->hlen, &p->from, &p->len);
			if (r < 0) {
				p->state = UDP_PARSE_FAILED;
				p->err = r;
				return r;
			}
			p->got = 0;
			if (p->len == 0) {
				f->from = p->from;
				f->payload = p->buf;
				f->len = 0;
				p->state = UDP_PARSE_HLEN;
				*done = true;
				return (ssize_t)pos;
			}
			p->state = UDP_PARSE_PAYLOAD;
			continue;
		}
		case UDP_PARSE_PAYLOAD: {
			size_t need = (size_t)p->len - p->got;
			if (p->got == 0 && len - pos >= need) {
				/* the whole payload is in the input: no copy */
				f->payload = in + pos;
				pos += need;
			} else {
				size_t n = need < len - pos ? need : len - pos;
				if (n) {
					memcpy(p->buf + p->got, in + pos, n);
					p->got += n;
					pos += n;
				}
				if (p->got < p->len)
					return (ssize_t)pos;
				f->payload = p->buf;
			}
			f->from = p->from;
			f->len = p->len;
			p->got = 0;
			p->state = UDP_PARSE_HLEN;
			*done = true;
			return (ssize_t)pos;
		}
		case UDP_PARSE_FAILED:
		default:
			return p->err ? p->err : MR_EPROTO_TAG;
		}
	}
}

/* ---------------------------------------------------------------- common */

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

static void common_init(struct udp_common *cm, const struct udp_env *env)
{
	cm->loop = env->loop;
	snprintf(cm->label, sizeof(cm->label), "%s", env->label ? env->label : "?");
	cm->counters = relay_counters_ref(env->counters);
	cm->lost = env->lost;
	cm->arg = env->arg;
}

/* UDP GSO (udp_sendq.h) unless MOLERAT_UDP_GSO=0: for comparisons, and a
 * way out should a kernel or NIC mishandle it. */
static bool gso_wanted(void)
{
	const char *v = getenv("MOLERAT_UDP_GSO");
	return !(v && strcmp(v, "0") == 0);
}

/* Counts n dropped datagrams of one visitor. The reason is logged at warn
 * level at most once per UDP_WARN_EVERY_MS (with the count since), else at
 * debug. */
static void count_drops(struct udp_common *cm, const struct addr *who, const char *why, unsigned n)
{
	cm->st.dropped += n;
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

/* After a read wake-up of a UDP socket (taken datagrams; full: the batch
 * limit was reached): pauses the watcher for rxmod's nap, if any; the nap
 * timer's callback watches the socket again. */
static void moderate(struct loop *loop, struct io_watcher *w, struct rxmod *rm, struct timer *nap,
		     unsigned taken, bool full)
{
	uint64_t us = rxmod_after_read(rm, loop_now_us(loop), taken, full);
	if (us) {
		loop_io_set(loop, w, 0);
		loop_timer_start_us(loop, nap, us);
	}
}

static void count_drop(struct udp_common *cm, const struct addr *who, const char *why)
{
	count_drops(cm, who, why, 1);
}

static void count_bytes(struct udp_common *cm, int dir, size_t n)
{
	if (cm->counters)
		cm->counters->bytes[dir] += n;
}

/* recvfrom with MSG_TRUNC: the datagram's real size (larger than cap when
 * cut), -EAGAIN, or -errno. buf NULL with cap 0 discards one datagram. */
static ssize_t udp_recv(int fd, void *buf, size_t cap, struct addr *from)
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

struct udp_outq {
	uint8_t *buf;
	size_t cap;
	size_t off;   /* first unwritten byte */
	size_t len;   /* unwritten bytes from off */
};

/* Room for n more bytes at the tail: a pointer to it, or NULL on
 * out-of-memory. Moves the unwritten bytes to the front or grows, doubling
 * up to limit (never below len + n), so the buffer stays within about
 * max(limit, len + n). */
static uint8_t *outq_reserve(struct udp_outq *q, size_t n, size_t limit)
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

static void outq_consume(struct udp_outq *q, size_t n)
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

static void outq_clear(struct udp_outq *q)
{
	free(q->buf);
	q->buf = NULL;
	q->cap = q->off = q->len = 0;
}

/* ---------------------------------------------------------------- data channel */

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
	uint8_t *rbuf;                 /* UDP_RBUF bytes */
	struct udp_parser *parser;
	void (*on_frame)(void *owner, const struct udp_frame *f);
	void (*on_burst)(void *owner);   /* the frames of one read were handed over */
	void (*on_room)(void *owner);    /* the queue, once refused, has room again */
	bool starved;                    /* chan_frame_space refused for want of room */
	void (*on_fail)(void *owner, int err);
	void *owner;
};

static void chan_on_io(struct loop *loop, struct io_watcher *w, unsigned revents);
static void chan_on_resume(struct loop *loop, struct timer *t);

static int chan_init(struct udp_chan *ch, struct udp_common *cm, size_t max_queued,
		     void (*on_frame)(void *, const struct udp_frame *), void (*on_burst)(void *),
		     void (*on_fail)(void *, int), void *owner)
{
	ch->on_burst = on_burst;
	ch->loop = cm->loop;
	ch->cm = cm;
	ch->x = NULL;
	loop_io_init(&ch->w, chan_on_io, ch);
	loop_timer_init(&ch->resume, chan_on_resume, ch);
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
static void chan_detach(struct udp_chan *ch)
{
	ch->starved = false;
	ch->rd_nap = false;
	loop_io_stop(ch->loop, &ch->w);
	loop_timer_stop(ch->loop, &ch->resume);
	xport_close(ch->x);
	ch->x = NULL;
	ch->wr_blocked = false;
	outq_clear(&ch->out);
}

/* Memory only (after chan_detach). */
static void chan_release(struct udp_chan *ch)
{
	outq_clear(&ch->out);
	free(ch->rbuf);
	free(ch->parser);
}

static int chan_attach(struct udp_chan *ch, struct xport *x)
{
	chan_detach(ch);
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
static void chan_fail(struct udp_chan *ch, int err)
{
	chan_detach(ch);
	ch->on_fail(ch->owner, err);
}

static int chan_update_interest(struct udp_chan *ch)
{
	unsigned ev = (ch->rd_nap ? 0 : ch->rd_want) | (ch->wr_blocked ? ch->wr_want : 0);
	return loop_io_set(ch->loop, &ch->w, ev);
}

/* Writes what is queued. 0 (all written, or blocked: wr_blocked set), or a
 * negative error. */
static int chan_flush(struct udp_chan *ch)
{
	while (ch->out.len) {
		ssize_t n = xport_write(ch->x, ch->out.buf + ch->out.off, ch->out.len);
		if (n > 0) {
			outq_consume(&ch->out, (size_t)n);
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
			return chan_update_interest(ch);
		}
		return n == 0 ? -EIO : (int)n;
	}
	if (ch->wr_blocked) {
		ch->wr_blocked = false;
		return chan_update_interest(ch);
	}
	return 0;
}

static void chan_flush_deferred(void *arg)
{
	struct udp_chan *ch = arg;
	ch->flush_scheduled = false;
	if (!ch->x || ch->wr_blocked)
		return;
	int r = chan_flush(ch);
	if (r < 0)
		chan_fail(ch, r);
}

static void chan_schedule_flush(struct udp_chan *ch)
{
	if (!ch->x || ch->wr_blocked || ch->flush_scheduled)
		return;
	ch->flush_scheduled = true;
	loop_defer(ch->loop, chan_flush_deferred, ch);
}

/* Room for a frame with a 1 + hlen byte header and up to UDP_RECV_MAX
 * payload bytes; the payload goes at the result + 1 + hlen. NULL when no
 * channel is attached, the queue is over its bound or out of memory. */
static uint8_t *chan_frame_space(struct udp_chan *ch, int hlen)
{
	if (!ch->x)
		return NULL;
	if (ch->out.len + 1 + (size_t)hlen > ch->max_queued) {
		ch->starved = true;
		return NULL;
	}
	return outq_reserve(&ch->out, 1 + (size_t)hlen + UDP_RECV_MAX,
			    ch->max_queued + 1 + PROTO_UDP_HDR_V6 + UDP_RECV_MAX);
}

/* Queues the frame whose payload (n bytes) was placed by chan_frame_space
 * at p: writes its header for from. false (nothing queued) when it would
 * pass the bound or from's header size is not hlen. */
static bool chan_frame_commit(struct udp_chan *ch, uint8_t *p, int hlen, const struct addr *from,
			      size_t n)
{
	size_t total = 1 + (size_t)hlen + n;
	if (n > UINT16_MAX || ch->out.len + total > ch->max_queued)
		return false;
	if (proto_encode_udp_hdr(p, 1 + (size_t)hlen, from, (uint16_t)n) != 1 + hlen)
		return false;
	ch->out.len += total;
	chan_schedule_flush(ch);
	return true;
}

/* Reads up to UDP_READ_BUDGET bytes and hands every complete frame to the
 * owner. 0, or a negative error that ends the channel. */
static int chan_read(struct udp_chan *ch)
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
			/* on_frame never ends the channel (only chan_fail does) */
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

static void chan_on_io(struct loop *loop, struct io_watcher *w, unsigned revents)
{
	struct udp_chan *ch = w->data;
	int r = 0;
	if (ch->wr_blocked && (revents & (ch->wr_want | LOOP_ERROR))) {
		r = chan_flush(ch);
		if (r < 0)
			goto fail;
	}
	if (revents & (ch->rd_want | LOOP_ERROR)) {
		r = chan_read(ch);
		if (r < 0)
			goto fail;
	}
	r = chan_update_interest(ch);
	if (r < 0)
		goto fail;
	return;
fail:
	chan_fail(ch, r);
}

static void chan_on_resume(struct loop *loop, struct timer *t)
{
	struct udp_chan *ch = t->data;
	if (!ch->x)
		return;
	ch->rd_nap = false;
	ch->in_resume = true;
	int r = chan_read(ch);
	ch->in_resume = false;
	if (r == 0)
		r = chan_update_interest(ch);
	if (r < 0)
		chan_fail(ch, r);
}

/* ---------------------------------------------------------------- server */

enum udp_server_state {
	USRV_DETACHED = 0,  /* no channel: the socket is not read */
	USRV_ATTACHED,      /* forwarding */
	USRV_CLOSED,        /* freed: memory deferred */
};

struct udp_server {
	struct udp_common cm;
	enum udp_server_state state;
	int fd;
	int family;              /* the socket's: AF_INET or AF_INET6 */
	int hlen;                /* header size of the frames it produces */
	struct io_watcher sw;
	struct rxmod rxm;             /* receive moderation of the socket */
	struct timer nap;             /* its pause: the socket is read again after it */
	struct udp_chan ch;
	struct udp_sendq sq;          /* replies towards visitors */
};

static void srv_on_sock(struct loop *loop, struct io_watcher *w, unsigned revents);
static void srv_on_nap(struct loop *loop, struct timer *t);
static void srv_on_frame(void *owner, const struct udp_frame *f);
static void srv_on_burst(void *owner);
static void srv_on_room(void *owner);
static void srv_on_fail(void *owner, int err);

static void srv_free_mem(void *arg)
{
	struct udp_server *u = arg;
	chan_release(&u->ch);
	free(u);
}

int udp_server_new(const struct udp_env *env, int sock_fd, struct udp_server **out)
{
	struct udp_server *u = calloc(1, sizeof(*u));
	if (!u) {
		close(sock_fd);
		return -ENOMEM;
	}
	common_init(&u->cm, env);
	udp_sendq_init(&u->sq, gso_wanted());
	u->fd = sock_fd;
	loop_io_init(&u->sw, srv_on_sock, u);
	loop_timer_init(&u->nap, srv_on_nap, u);
	size_t maxq = env->max_queued_bytes ? env->max_queued_bytes : UDP_MAX_QUEUED_BYTES;
	int r = chan_init(&u->ch, &u->cm, maxq, srv_on_frame, srv_on_burst, srv_on_fail, u);
	u->ch.on_room = srv_on_room;
	struct addr local;
	if (r == 0)
		r = sock_local_addr(sock_fd, &local);
	if (r == 0) {
		u->family = local.ss.ss_family;
		r = proto_udp_hdr_len(&local);
	}
	if (r < 0) {
		close(sock_fd);
		relay_counters_unref(u->cm.counters);
		chan_release(&u->ch);
		free(u);
		return r;
	}
	u->hlen = r;
	u->state = USRV_DETACHED;
	*out = u;
	return 0;
}

int udp_server_attach(struct udp_server *u, struct xport *dc)
{
	if (u->state == USRV_CLOSED) {
		xport_close(dc);
		return MR_ECLOSED;
	}
	int r = chan_attach(&u->ch, dc);
	if (r == 0 && !loop_io_active(&u->sw)) {
		r = loop_io_start(u->cm.loop, &u->sw, u->fd, LOOP_READ);
		if (r < 0)
			chan_detach(&u->ch);
	} else if (r == 0) {
		loop_io_set(u->cm.loop, &u->sw, LOOP_READ);   /* paused while the old one was behind */
	}
	if (r < 0) {
		u->state = USRV_DETACHED;
		loop_io_stop(u->cm.loop, &u->sw);
		return r;
	}
	u->state = USRV_ATTACHED;
	return 0;
}

int udp_server_attached(const struct udp_server *u)
{
	return u->state == USRV_ATTACHED;
}

void udp_server_stats(const struct udp_server *u, struct udp_stats *st)
{
	*st = u->cm.st;
	st->queued_bytes = u->ch.out.len;
}

void udp_server_free(struct udp_server *u)
{
	if (!u || u->state == USRV_CLOSED)
		return;
	u->state = USRV_CLOSED;
	chan_detach(&u->ch);
	loop_io_stop(u->cm.loop, &u->sw);
	loop_timer_stop(u->cm.loop, &u->nap);
	close(u->fd);
	u->fd = -1;
	relay_counters_unref(u->cm.counters);
	u->cm.counters = NULL;
	loop_defer(u->cm.loop, srv_free_mem, u);
}

static void srv_on_fail(void *owner, int err)
{
	struct udp_server *u = owner;
	log_debug("udp service %s: data channel ended: %s", u->cm.label, mr_strerror(err));
	u->state = USRV_DETACHED;
	loop_io_stop(u->cm.loop, &u->sw);
	loop_timer_stop(u->cm.loop, &u->nap);
	if (u->cm.lost)
		u->cm.lost(u->cm.arg, err);
}

/* Visitor datagrams become frames. */
static void srv_on_sock(struct loop *loop, struct io_watcher *w, unsigned revents)
{
	struct udp_server *u = w->data;
	unsigned taken = 0;
	int i;
	for (i = 0; i < UDP_BATCH && u->state == USRV_ATTACHED; i++) {
		uint8_t *p = chan_frame_space(&u->ch, u->hlen);
		if (!p && u->ch.starved) {
			/* the data channel is behind: leave the datagrams in the
			 * socket's buffer (SOCK_UDP_BUF) until the queue has room
			 * again (srv_on_room); the kernel drops only past both */
			loop_io_set(loop, w, 0);
			return;
		}
		struct addr from;
		ssize_t n = udp_recv(u->fd, p ? p + 1 + u->hlen : NULL, p ? UDP_RECV_MAX : 0, &from);
		if (n == -EAGAIN)
			break;
		taken++;
		if (n < 0) {
			/* a pending socket error, read and so cleared */
			log_debug("udp service %s: receive error: %s", u->cm.label, mr_strerror((int)n));
			continue;
		}
		if (!p) {
			count_drop(&u->cm, &from, "the data channel's queue is full");
			continue;
		}
		if ((size_t)n > UDP_RECV_MAX || !chan_frame_commit(&u->ch, p, u->hlen, &from, (size_t)n)) {
			count_drop(&u->cm, &from, (size_t)n > UDP_RECV_MAX ? "too large" :
				   "the data channel's queue is full");
			continue;
		}
		u->cm.st.datagrams_in++;
		count_bytes(&u->cm, 0, (size_t)n);
	}
	if (u->state == USRV_ATTACHED)
		moderate(loop, w, &u->rxm, &u->nap, taken, i == UDP_BATCH);
}

static void srv_on_nap(struct loop *loop, struct timer *t)
{
	struct udp_server *u = t->data;
	if (u->state == USRV_ATTACHED && loop_io_active(&u->sw))
		loop_io_set(loop, &u->sw, LOOP_READ);
}

/* The address to send to on the server's socket: v4-mapped addresses and
 * plain v4 convert as the socket's family needs. false when it cannot be
 * reached from this socket. */
static bool srv_dest(const struct udp_server *u, const struct addr *from, struct addr *to)
{
	memset(to, 0, sizeof(*to));
	int fam = from->ss.ss_family;
	if (fam == u->family) {
		*to = *from;
		return true;
	}
	if (u->family == AF_INET && fam == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&from->ss;
		if (!IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			return false;
		struct sockaddr_in *s4 = (struct sockaddr_in *)&to->ss;
		s4->sin_family = AF_INET;
		s4->sin_port = s6->sin6_port;
		memcpy(&s4->sin_addr, &s6->sin6_addr.s6_addr[12], 4);
		to->len = sizeof(*s4);
		return true;
	}
	if (u->family == AF_INET6 && fam == AF_INET) {
		/* reaches v4 visitors when the socket is dual-stack; a V6ONLY
		 * socket's sendto fails and the packet is dropped */
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)&from->ss;
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&to->ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = s4->sin_port;
		s6->sin6_addr.s6_addr[10] = 0xff;
		s6->sin6_addr.s6_addr[11] = 0xff;
		memcpy(&s6->sin6_addr.s6_addr[12], &s4->sin_addr, 4);
		to->len = sizeof(*s6);
		return true;
	}
	return false;
}

/* Frames from the client go to the visitor they name (rathole trusts the
 * address: the protocol, Q8). */
static bool srv_send_err(void *owner, const struct udp_sendq *q, unsigned i, int err, unsigned ndrop)
{
	struct udp_server *u = owner;
	struct addr who;
	memcpy(&who.ss, &q->to[i], sizeof(who.ss));
	who.len = q->msg[i].msg_hdr.msg_namelen;
	char why[96];
	snprintf(why, sizeof(why), "sendto: %s", strerror(err));
	count_drops(&u->cm, &who, why, ndrop);
	return true;   /* one visitor's error: the others still get theirs */
}

static void srv_on_room(void *owner)
{
	struct udp_server *u = owner;
	if (loop_io_active(&u->sw))
		loop_io_set(u->cm.loop, &u->sw, LOOP_READ);
}

static void srv_on_burst(void *owner)
{
	struct udp_server *u = owner;
	if (!u->sq.n)
		return;
	size_t bytes = 0;
	u->cm.st.datagrams_out += udp_sendq_flush(&u->sq, srv_send_err, u, &bytes, &u->cm.st.dropped);
	count_bytes(&u->cm, 1, bytes);
}

static void srv_on_frame(void *owner, const struct udp_frame *f)
{
	struct udp_server *u = owner;
	struct addr to;
	if (!srv_dest(u, &f->from, &to)) {
		count_drop(&u->cm, &f->from, "its address family does not match the service socket's");
		return;
	}
	if (!udp_sendq_add(&u->sq, u->fd, &to, f->payload, f->len)) {
		srv_on_burst(u);   /* full: send what is queued, then it fits */
		udp_sendq_add(&u->sq, u->fd, &to, f->payload, f->len);
	}
}

/* ---------------------------------------------------------------- client */

struct udp_pkt {
	struct udp_pkt *next;
	size_t len;
	uint8_t data[];
};

enum udp_map_state {
	MAP_RESOLVING = 0,  /* local_addr is being resolved; packets wait in q */
	MAP_ACTIVE,         /* connected socket open */
	MAP_CLOSED,         /* unlinked; memory deferred */
};

struct udp_map {
	struct udp_client *c;
	struct udp_map *next;        /* hash chain */
	enum udp_map_state state;
	struct addr visitor;
	int hlen;                    /* header size of frames for this visitor */
	int fd;                      /* -1 until ACTIVE */
	struct io_watcher w;
	struct timer idle;
	struct rxmod rxm;            /* receive moderation of fd */
	struct timer nap;            /* its pause: fd is read again after it */
	uint64_t last;               /* loop time of the last packet either way */
	struct dns_req *req;         /* while RESOLVING */
	struct udp_pkt *q_head, *q_tail;
	unsigned q_n;
	size_t q_bytes;
};

enum udp_client_state {
	UCLI_RUNNING = 0,   /* channel attached, mappings live */
	UCLI_LOST,          /* the channel ended: no mappings, waiting for free */
	UCLI_CLOSED,        /* freed: memory deferred */
};

struct udp_client {
	struct udp_common cm;
	enum udp_client_state state;
	struct dns *dns;
	char host[DNS_MAX_NAME + 1];
	uint16_t port;
	bool literal;                /* host is numeric: local is the address */
	struct addr local;
	uint64_t idle_ms;
	unsigned max_mappings;
	unsigned n_maps;
	size_t pending_bytes;        /* queued in RESOLVING mappings */
	uint64_t seed;
	size_t nbuckets;             /* a power of two */
	struct udp_map **buckets;
	struct udp_chan ch;
	struct udp_sendq sq;          /* datagrams towards the local service */
	struct udp_map *sq_map;       /* the mapping whose socket sq holds */
};

static void cli_on_frame(void *owner, const struct udp_frame *f);
static void cli_on_burst(void *owner);
static void cli_on_fail(void *owner, int err);
static void map_on_io(struct loop *loop, struct io_watcher *w, unsigned revents);
static void map_on_idle(struct loop *loop, struct timer *t);
static void map_on_nap(struct loop *loop, struct timer *t);

static size_t addr_hash(const struct udp_client *c, const struct addr *a)
{
	/* FNV-1a over family, port and address, from a per-forwarder seed */
	uint64_t h = 0xcbf29ce484222325ull ^ c->seed;
	uint8_t key[2 + 2 + 16];
	size_t n = 4;
	memset(key, 0, sizeof(key));
	key[0] = (uint8_t)a->ss.ss_family;
	uint16_t port = addr_port(a);
	key[2] = (uint8_t)(port >> 8);
	key[3] = (uint8_t)port;
	if (a->ss.ss_family == AF_INET) {
		memcpy(key + 4, &((const struct sockaddr_in *)&a->ss)->sin_addr, 4);
		n += 4;
	} else if (a->ss.ss_family == AF_INET6) {
		memcpy(key + 4, &((const struct sockaddr_in6 *)&a->ss)->sin6_addr, 16);
		n += 16;
	}
	for (size_t i = 0; i < n; i++) {
		h ^= key[i];
		h *= 0x100000001b3ull;
	}
	h ^= h >> 29;
	return (size_t)h & (c->nbuckets - 1);
}

static struct udp_map *map_find(const struct udp_client *c, const struct addr *a)
{
	for (struct udp_map *m = c->buckets[addr_hash(c, a)]; m; m = m->next)
		if (addr_equal(&m->visitor, a))
			return m;
	return NULL;
}

static void map_free_mem(void *arg)
{
	free(arg);
}

static void map_drop_queue(struct udp_map *m, const char *why)
{
	struct udp_client *c = m->c;
	while (m->q_head) {
		struct udp_pkt *p = m->q_head;
		m->q_head = p->next;
		count_drop(&c->cm, &m->visitor, why);
		free(p);
	}
	m->q_tail = NULL;
	c->pending_bytes -= m->q_bytes;
	m->q_n = 0;
	m->q_bytes = 0;
}

/* Ends a mapping: socket closed, entry removed, waiting packets dropped. */
static void map_close(struct udp_map *m, const char *why)
{
	struct udp_client *c = m->c;
	if (m->state == MAP_CLOSED)
		return;
	char buf[ADDR_STRLEN];
	log_debug("udp service %s: mapping for visitor %s ends: %s", c->cm.label,
		  addr_str(&m->visitor, buf, sizeof(buf)), why);
	struct udp_map **pp = &c->buckets[addr_hash(c, &m->visitor)];
	while (*pp && *pp != m)
		pp = &(*pp)->next;
	if (*pp)
		*pp = m->next;
	c->n_maps--;
	m->state = MAP_CLOSED;
	loop_timer_stop(c->cm.loop, &m->idle);
	loop_timer_stop(c->cm.loop, &m->nap);
	loop_io_stop(c->cm.loop, &m->w);
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
	if (m->req)
		dns_cancel(m->req);
	m->req = NULL;
	map_drop_queue(m, "its mapping ended before local_addr resolved");
	loop_defer(c->cm.loop, map_free_mem, m);
}

/* Sends one payload to the local service. 0, or -1 when the mapping was
 * closed (the socket reported an error, e.g. ECONNREFUSED from an ICMP
 * port unreachable). */
static int map_send(struct udp_map *m, const uint8_t *buf, size_t len)
{
	struct udp_client *c = m->c;
	for (;;) {
		ssize_t n = send(m->fd, buf, len, MSG_NOSIGNAL);
		if (n >= 0)
			break;
		int e = errno;
		if (e == EINTR)
			continue;
		char why[96];
		snprintf(why, sizeof(why), "send to local_addr: %s", strerror(e));
		count_drop(&c->cm, &m->visitor, why);
		if (e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS || e == ENOMEM || e == EMSGSIZE)
			return 0;
		/* an error of the socket itself (ICMP): the mapping goes */
		map_close(m, why);
		return -1;
	}
	c->cm.st.datagrams_in++;
	count_bytes(&c->cm, 0, len);
	return 0;
}

/* Opens the mapping's connected socket towards addr and sends what waited. */
static int map_open(struct udp_map *m, const struct addr *addr)
{
	struct udp_client *c = m->c;
	struct addr any;
	memset(&any, 0, sizeof(any));
	any.ss.ss_family = addr->ss.ss_family;
	any.len = addr->ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	int fd = sock_bind_udp(&any);
	if (fd < 0)
		return fd;
	if (connect(fd, (const struct sockaddr *)&addr->ss, addr->len) != 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	int r = loop_io_start(c->cm.loop, &m->w, fd, LOOP_READ);
	if (r < 0) {
		close(fd);
		return r;
	}
	m->fd = fd;
	m->state = MAP_ACTIVE;
	while (m->q_head && m->state == MAP_ACTIVE) {
		struct udp_pkt *p = m->q_head;
		m->q_head = p->next;
		if (!m->q_head)
			m->q_tail = NULL;
		m->q_n--;
		m->q_bytes -= p->len;
		c->pending_bytes -= p->len;
		map_send(m, p->data, p->len);
		free(p);
	}
	return 0;
}

static void map_on_resolved(void *arg, int err, const struct addr *addrs, size_t n)
{
	struct udp_map *m = arg;
	struct udp_client *c = m->c;
	m->req = NULL;
	char why[DNS_MAX_NAME + 160];
	if (err < 0 || n == 0) {
		snprintf(why, sizeof(why), "cannot resolve local_addr %s: %s", c->host,
			 mr_strerror(err < 0 ? err : MR_EDNS));
		map_drop_queue(m, why);
		map_close(m, why);
		return;
	}
	int r = map_open(m, &addrs[0]);
	if (r < 0) {
		char buf[ADDR_STRLEN];
		snprintf(why, sizeof(why), "cannot open a socket to %s: %s",
			 addr_str(&addrs[0], buf, sizeof(buf)), mr_strerror(r));
		map_drop_queue(m, why);
		map_close(m, why);
	}
}

/* A new mapping for visitor, or NULL (the datagram is dropped; counted
 * here). */
static struct udp_map *map_new(struct udp_client *c, const struct addr *visitor)
{
	if (c->n_maps >= c->max_mappings) {
		count_drop(&c->cm, visitor, "too many visitor mappings");
		return NULL;
	}
	int hlen = proto_udp_hdr_len(visitor);
	struct udp_map *m = hlen > 0 ? calloc(1, sizeof(*m)) : NULL;
	if (!m) {
		count_drop(&c->cm, visitor, hlen > 0 ? "out of memory" : "bad address family");
		return NULL;
	}
	m->c = c;
	m->visitor = *visitor;
	m->hlen = hlen;
	m->fd = -1;
	m->state = MAP_RESOLVING;
	loop_io_init(&m->w, map_on_io, m);
	loop_timer_init(&m->idle, map_on_idle, m);
	loop_timer_init(&m->nap, map_on_nap, m);
	size_t b = addr_hash(c, visitor);
	m->next = c->buckets[b];
	c->buckets[b] = m;
	c->n_maps++;
	c->cm.st.mappings_total++;
	m->last = loop_now(c->cm.loop);
	loop_timer_start(c->cm.loop, &m->idle, c->idle_ms);
	char buf[ADDR_STRLEN];
	log_debug("udp service %s: new mapping for visitor %s (%u live)", c->cm.label,
		  addr_str(visitor, buf, sizeof(buf)), c->n_maps);
	if (c->literal) {
		int r = map_open(m, &c->local);
		if (r < 0) {
			char why[96];
			snprintf(why, sizeof(why), "cannot open a socket to local_addr: %s", mr_strerror(r));
			count_drop(&c->cm, visitor, why);
			map_close(m, why);
			return NULL;
		}
		return m;
	}
	m->req = dns_resolve(c->dns, c->host, c->port, map_on_resolved, m);
	if (!m->req) {
		count_drop(&c->cm, visitor, "out of memory");
		map_close(m, "out of memory");
		return NULL;
	}
	return m;
}

/* A payload for a mapping whose local_addr is still resolving. */
static void map_enqueue(struct udp_map *m, const uint8_t *buf, size_t len)
{
	struct udp_client *c = m->c;
	if (m->q_n >= UDP_MAX_QUEUED_PER_MAPPING || c->pending_bytes + len > UDP_MAX_PENDING_BYTES) {
		count_drop(&c->cm, &m->visitor, "too many datagrams wait for local_addr to resolve");
		return;
	}
	struct udp_pkt *p = malloc(sizeof(*p) + len);
	if (!p) {
		count_drop(&c->cm, &m->visitor, "out of memory");
		return;
	}
	p->next = NULL;
	p->len = len;
	if (len)
		memcpy(p->data, buf, len);
	if (m->q_tail)
		m->q_tail->next = p;
	else
		m->q_head = p;
	m->q_tail = p;
	m->q_n++;
	m->q_bytes += len;
	c->pending_bytes += len;
}

static bool cli_send_err(void *owner, const struct udp_sendq *q, unsigned i, int err, unsigned ndrop)
{
	struct udp_client *c = owner;
	struct udp_map *m = c->sq_map;
	char why[96];
	snprintf(why, sizeof(why), "send to local_addr: %s", strerror(err));
	count_drops(&c->cm, &m->visitor, why, ndrop);
	if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS || err == ENOMEM || err == EMSGSIZE)
		return true;
	/* an error of the socket itself (ICMP): the mapping goes, and with
	 * it what was queued for it (flush counts those) */
	map_close(m, why);
	return false;
}

static void cli_on_burst(void *owner)
{
	struct udp_client *c = owner;
	if (!c->sq.n)
		return;
	size_t bytes = 0;
	c->cm.st.datagrams_in += udp_sendq_flush(&c->sq, cli_send_err, c, &bytes, &c->cm.st.dropped);
	count_bytes(&c->cm, 0, bytes);
	c->sq_map = NULL;
}

static void cli_on_frame(void *owner, const struct udp_frame *f)
{
	struct udp_client *c = owner;
	struct udp_map *m = map_find(c, &f->from);
	if (!m && !(m = map_new(c, &f->from)))
		return;
	m->last = loop_now(c->cm.loop);
	if (m->state == MAP_CLOSED) {
		count_drop(&c->cm, &f->from, "its mapping ended");
	} else if (m->state == MAP_RESOLVING) {
		map_enqueue(m, f->payload, f->len);
	} else {
		if (!udp_sendq_add(&c->sq, m->fd, NULL, f->payload, f->len)) {
			cli_on_burst(c);   /* full or another mapping's: send it, then it fits */
			udp_sendq_add(&c->sq, m->fd, NULL, f->payload, f->len);
		}
		c->sq_map = m;
	}
}

/* Replies from the local service become frames for the mapping's visitor. */
static void map_on_io(struct loop *loop, struct io_watcher *w, unsigned revents)
{
	struct udp_map *m = w->data;
	struct udp_client *c = m->c;
	unsigned taken = 0;
	int i;
	for (i = 0; i < UDP_BATCH; i++) {
		uint8_t *p = chan_frame_space(&c->ch, m->hlen);
		ssize_t n = udp_recv(m->fd, p ? p + 1 + m->hlen : NULL, p ? UDP_RECV_MAX : 0, NULL);
		if (n == -EAGAIN)
			break;
		if (n < 0) {
			/* ECONNREFUSED: ICMP port unreachable from local_addr */
			char why[96];
			snprintf(why, sizeof(why), "receive from local_addr: %s", mr_strerror((int)n));
			map_close(m, why);
			return;
		}
		m->last = loop_now(loop);
		taken++;
		if (!p || (size_t)n > UDP_RECV_MAX ||
		    !chan_frame_commit(&c->ch, p, m->hlen, &m->visitor, (size_t)n)) {
			count_drop(&c->cm, &m->visitor, (size_t)n > UDP_RECV_MAX ? "too large" :
				   "the data channel's queue is full");
			continue;
		}
		c->cm.st.datagrams_out++;
		count_bytes(&c->cm, 1, (size_t)n);
	}
	moderate(loop, w, &m->rxm, &m->nap, taken, i == UDP_BATCH);
}

static void map_on_nap(struct loop *loop, struct timer *t)
{
	struct udp_map *m = t->data;
	if (m->state == MAP_ACTIVE && loop_io_active(&m->w))
		loop_io_set(loop, &m->w, LOOP_READ);
}

static void map_on_idle(struct loop *loop, struct timer *t)
{
	struct udp_map *m = t->data;
	struct udp_client *c = m->c;
	uint64_t now = loop_now(loop), idle = now - m->last;
	if (idle >= c->idle_ms) {
		map_close(m, "idle");
		return;
	}
	loop_timer_start(loop, &m->idle, c->idle_ms - idle);
}

static void cli_close_maps(struct udp_client *c)
{
	for (size_t i = 0; i < c->nbuckets; i++)
		while (c->buckets[i])
			map_close(c->buckets[i], "the data channel ended");
}

static void cli_on_fail(void *owner, int err)
{
	struct udp_client *c = owner;
	log_debug("udp service %s: data channel ended: %s", c->cm.label, mr_strerror(err));
	c->state = UCLI_LOST;
	cli_close_maps(c);
	if (c->cm.lost)
		c->cm.lost(c->cm.arg, err);
}

static void cli_free_mem(void *arg)
{
	struct udp_client *c = arg;
	chan_release(&c->ch);
	free(c->buckets);
	free(c);
}

/* The idle timeout: the env's, else UDP_IDLE_MS; MOLERAT_TEST_UDP_IDLE_MS
 * (tests only) overrides both. */
static uint64_t idle_ms_from(const struct udp_env *env)
{
	return mr_test_env_u64("MOLERAT_TEST_UDP_IDLE_MS", env->idle_ms ? env->idle_ms : UDP_IDLE_MS,
			       UDP_IDLE_ENV_MAX);
}

int udp_client_new(const struct udp_env *env, const char *local_addr, struct xport *dc,
		   struct udp_client **out)
{
	struct udp_client *c = calloc(1, sizeof(*c));
	if (!c) {
		xport_close(dc);
		return -ENOMEM;
	}
	common_init(&c->cm, env);
	udp_sendq_init(&c->sq, gso_wanted());
	c->dns = env->dns;
	c->idle_ms = idle_ms_from(env);
	c->max_mappings = env->max_mappings ? env->max_mappings : UDP_MAX_MAPPINGS;
	size_t maxq = env->max_queued_bytes ? env->max_queued_bytes : UDP_MAX_QUEUED_BYTES;
	int r = chan_init(&c->ch, &c->cm, maxq, cli_on_frame, cli_on_burst, cli_on_fail, c);
	if (r == 0 && addr_split_host_port(local_addr, c->host, sizeof(c->host), &c->port) != 0) {
		log_error("udp service %s: local_addr \"%s\" is not host:port", c->cm.label, local_addr);
		r = MR_EFORMAT;
	}
	if (r == 0) {
		c->literal = addr_from_literal(c->host, c->port, &c->local) == 0;
		if (!c->literal && !c->dns) {
			log_error("udp service %s: local_addr \"%s\" needs a resolver", c->cm.label, local_addr);
			r = MR_EFORMAT;
		}
	}
	if (r == 0) {
		c->nbuckets = 16;
		while (c->nbuckets < c->max_mappings / 2 && c->nbuckets < (1u << 20))
			c->nbuckets *= 2;
		c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
		if (!c->buckets)
			r = -ENOMEM;
	}
	if (r == 0) {
		if (proto_random((uint8_t *)&c->seed, sizeof(c->seed)) != 0)
			c->seed = (uint64_t)(uintptr_t)c ^ loop_now(env->loop);
		r = chan_attach(&c->ch, dc);
		dc = NULL; /* taken by chan_attach, also on failure */
	}
	if (r < 0) {
		xport_close(dc);
		relay_counters_unref(c->cm.counters);
		chan_release(&c->ch);
		free(c->buckets);
		free(c);
		return r;
	}
	c->state = UCLI_RUNNING;
	*out = c;
	return 0;
}

void udp_client_stats(const struct udp_client *c, struct udp_stats *st)
{
	*st = c->cm.st;
	st->mappings_active = c->n_maps;
	st->queued_bytes = c->ch.out.len;
}

void udp_client_free(struct udp_client *c)
{
	if (!c || c->state == UCLI_CLOSED)
		return;
	c->state = UCLI_CLOSED;
	cli_close_maps(c);
	chan_detach(&c->ch);
	relay_counters_unref(c->cm.counters);
	c->cm.counters = NULL;
	loop_defer(c->cm.loop, cli_free_mem, c);
}
