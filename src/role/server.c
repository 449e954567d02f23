#include "role/server.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/backoff.h"
#include "base/err.h"
#include "base/list.h"
#include "base/log.h"
#include "base/sock.h"
#include "base/srcmap.h"
#include "base/util.h"
#include "codec/proto.h"
#include "plane/udp.h"
#include "role/chan.h"
#include "xport/stack.h"

/* Bounds (protocol.md#q30: rathole has none). */
enum {
	MAX_HANDSHAKES = 1024,       /* connections on bind_addr not yet authenticated;
				      * past it the oldest is evicted */
	MAX_HANDSHAKES_PER_SOURCE = 512, /* of them from one IP address; past it,
				      * that address's oldest, once it has stalled 1 s */
	HANDSHAKE_MS = 10000,        /* transport handshake + Hello + Auth, unloaded */
	HANDSHAKE_MIN_MS = 1000,     /* the same with every slot taken (it shrinks
				      * from half the slots taken on) */
	HANDSHAKE_GRACE_MS = 25,     /* a handshake is never evicted younger, nor
				      * while its peer's message is in the socket:
				      * a real peer (even a slow one) has sent its
				      * Hello by then; a flood turns a slot over
				      * every 25 ms at most */
	POOL_REPLACE_PER_S = 8,      /* pooled channels that died replaced per second */
	MAX_VISITORS_WAITING = 2048, /* per service (rathole's CHAN_SIZE) */
	MAX_POOLED_CHANNELS = 4096,  /* per service (rathole: 2 x CHAN_SIZE) */
	VISITOR_WAIT_MS = 10000,     /* a visitor waiting longer for a data channel is closed */
	ACCEPT_BATCH = 64,           /* accepts per wake-up */
	LOG_EVERY_MS = 1000,         /* rate limit of repeated warnings */
	RESOURCE_RETRY_MS = 100,     /* accept paused after EMFILE, ENFILE, ENOBUFS, ENOMEM */
	TRIM_AFTER_PEAK = 64,        /* handshakes in flight that make an idle server
				      * give freed memory back to the system */
};

struct session;

/* One configured service. */
struct svc {
	struct server *srv;
	const struct conf_service *cfg;  /* borrowed: name, token, bind_addr, type, nodelay */
	uint8_t digest[PROTO_DIGEST_LEN];
	struct session *session;       /* the live control channel's session, or NULL */
	struct relay_counters *counters;
	struct svc_stats *st;          /* control-plane counters (role/metrics.h) */
};

/* A visitor accepted on a service listener, waiting for a data channel. */
struct visitor {
	struct list_link link;         /* in session's visitors */
	struct session *sess;
	int fd;
	struct timer wait;
	struct io_watcher w;           /* while it waits: did it leave? */
};

/* An authenticated data channel: waiting in the pool, or (paired or
 * udp_start set) on the draining list while its 4-byte command is written. */
struct pooled {
	struct list_link link;         /* in session's pool or draining */
	struct session *sess;
	struct chan *chan;
	struct visitor *paired;        /* set while StartForwardTcp drains */
	bool udp_start;                /* set while StartForwardUdp drains */
};

enum listener_state {
	LST_RESOLVING = 0,  /* waiting for the bind address */
	LST_BOUND,          /* accepting */
	LST_BIND_RETRY,     /* the bind failed; retrying after a backoff */
	LST_ACCEPT_PAUSE,   /* accept failed (EMFILE...); paused for a backoff */
	LST_FULL,           /* MAX_VISITORS_WAITING wait: not accepting (the
			     * kernel's backlog holds newcomers) until one is paired */
};

/* One authenticated control channel and everything tied to it (protocol.md#p-control-replace). */
struct session {
	struct server *srv;
	struct svc *svc;
	uint8_t key[PROTO_DIGEST_LEN];
	struct chan *ctrl;
	struct timer heartbeat;
	enum listener_state lst;
	struct dns_req *dreq;
	struct addr bind;
	struct io_watcher lw;
	struct timer retry;
	struct backoff bo;
	uint64_t last_warn;
	struct list visitors;           /* of struct visitor, oldest first */
	struct list pool;              /* of struct pooled, oldest first */
	struct list draining;          /* of struct pooled: StartForwardTcp/Udp still being written */
	struct udp_server *udp;        /* UDP services: owns the bound socket */
	uint64_t replace_window_ms;    /* start of the second replacements are counted in */
	unsigned replaced;             /* dead pooled channels replaced in it */
	unsigned owed;                 /* replacements held back by the rate */
	struct timer replace;          /* asks for the owed ones in the next second */
	bool ending;
};

enum hs_state {
	HS_HELLO = 0,  /* waiting for the 37-byte Hello */
	HS_AUTH,       /* control channel: nonce sent, waiting for Auth */
	HS_CLOSING,    /* a failure Ack is draining; close when written */
};

/* A connection on bind_addr before it is a control or data channel. */
struct handshake {
	struct list_link link;         /* in server's handshakes */
	struct list_link src_link;     /* in its source's items */
	struct src_entry *src;         /* NULL: not grouped (out of memory) */
	uint64_t born_ms;              /* accepted at (loop clock) */
	struct server *srv;
	struct chan *chan;
	struct timer timeout;
	enum hs_state state;
	struct svc *svc;
	uint8_t nonce[PROTO_DIGEST_LEN];
	char peer[ADDR_STRLEN];
};

struct server {
	struct runtime env;
	const struct conf_server *cfg;   /* borrowed: bind_addr, ... */
	struct xport_stack stack;        /* from cfg->transport */
	uint64_t heartbeat_ms;
	struct dns_req *dreq;
	struct io_watcher lw;
	struct timer accept_retry;
	struct backoff accept_bo;
	uint64_t last_warn;
	struct list handshakes;        /* of struct handshake, oldest first */
	struct srcmap *sources;        /* the handshakes by source address */
	unsigned max_handshakes;   /* MAX_HANDSHAKES; lower in tests */
	size_t hs_peak;            /* most handshakes in flight since the last trim */
	/* repeated lines, one a second each (log_limited) */
	struct log_limit log_hs_failed, log_hs_evicted, log_hs_wait, log_bad_hello, log_stale_key;
	struct svc **svcs;
	size_t n_svcs;
};

static void session_end(struct session *s, const char *why);
static void session_pair(struct session *s);
static void session_udp_feed(struct session *s);
static void session_request(struct session *s);

/* accept(2) errors that concern only the connection being accepted (the
 * man page's "treat as EAGAIN and retry" list): go on accepting. */
static bool accept_transient(int err)
{
	switch (-err) {
	case ECONNABORTED: case EINTR: case EPROTO: case ENETDOWN: case ENOPROTOOPT:
	case EHOSTDOWN: case ENONET: case EHOSTUNREACH: case EOPNOTSUPP: case ENETUNREACH:
	case EPERM:
		return true;
	default:
		return false;
	}
}

static bool warn_ok(struct loop *loop, uint64_t *last)
{
	uint64_t now = loop_now(loop);
	if (*last && now - *last < LOG_EVERY_MS)
		return false;
	*last = now;
	return true;
}

/* One accept on listener w (bound to what). Returns the fd (bo reset);
 * -EAGAIN when nobody waits; -EINTR after an error that concerned only the
 * connection being accepted (go on); another error (EMFILE...) after the
 * listener was paused for bo's next delay, logged at most once a second,
 * never a busy loop: the timer resume re-arms it. */
static int listener_accept(struct loop *loop, struct io_watcher *w, struct backoff *bo,
			   struct timer *resume, uint64_t *last_warn, const char *what,
			   struct addr *peer)
{
	int fd = sock_accept(w->fd, peer);
	if (fd >= 0) {
		backoff_reset(bo, loop_now(loop));
		return fd;
	}
	if (fd == -EAGAIN)
		return fd;
	if (accept_transient(fd))
		return -EINTR;
	uint64_t delay = 500;
	if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM)
		/* out of descriptors or memory: try again soon, so full
		 * service is back within RESOURCE_RETRY_MS of some being freed
		 * (an accept that fails again costs one system call) */
		delay = RESOURCE_RETRY_MS;
	else
		backoff_next(bo, loop_now(loop), &delay);
	if (warn_ok(loop, last_warn))
		log_error("accept on %s failed: %s; pausing accepts for %llu ms (raise the file limit?)",
			  what, mr_strerror(fd), (unsigned long long)delay);
	loop_io_set(loop, w, 0);
	loop_timer_start(loop, resume, delay);
	return fd;
}

static const char *svc_label(const struct svc *v) { return v->cfg->name; }

/* ---------------------------------------------------------------- services */

static void hs_free(struct handshake *h, bool close_chan);

static void svc_free(struct svc *v, const char *why)
{
	if (!v)
		return;
	if (v->session)
		session_end(v->session, why);
	/* handshakes waiting for this service's Auth cannot finish */
	struct handshake *h = list_first_entry(&v->srv->handshakes, struct handshake, link);
	while (h) {
		struct handshake *next = list_next_entry(h, struct handshake, link);
		if (h->svc == v)
			hs_free(h, true);
		h = next;
	}
	if (v->counters && v->srv->env.retire)
		v->srv->env.retire(v->srv->env.arg, v->counters, v->cfg->name);
	relay_counters_unref(v->counters);
	svc_stats_unref(v->st);
	free(v);
}

static struct svc *svc_new(struct server *srv, const struct conf_service *c)
{
	struct svc *v = calloc(1, sizeof(*v));
	if (!v)
		return NULL;
	v->srv = srv;
	v->cfg = c;
	v->counters = relay_counters_new();
	v->st = svc_stats_new();
	if (!v->counters || !v->st) {
		svc_free(v, "out of memory");
		return NULL;
	}
	proto_service_digest(c->name, c->name_len, v->digest);
	return v;
}

static struct svc *svc_by_digest(struct server *srv, const uint8_t d[PROTO_DIGEST_LEN])
{
	for (size_t i = 0; i < srv->n_svcs; i++)
		if (memcmp(srv->svcs[i]->digest, d, PROTO_DIGEST_LEN) == 0)
			return srv->svcs[i];
	return NULL;
}

static struct session *session_by_key(struct server *srv, const uint8_t key[PROTO_DIGEST_LEN])
{
	for (size_t i = 0; i < srv->n_svcs; i++) {
		struct session *s = srv->svcs[i]->session;
		if (s && !s->ending && proto_digest_equal(s->key, key))
			return s;
	}
	return NULL;
}

/* ---------------------------------------------------------------- visitors */

static void visitor_unlink(struct session *s, struct visitor *v)
{
	list_remove(&s->visitors, &v->link);
	if (s->lst == LST_FULL && !s->ending) {
		s->lst = LST_BOUND;
		loop_io_set(s->srv->env.loop, &s->lw, LOOP_READ);
	}
}

static void visitor_free(struct loop *loop, struct visitor *v)
{
	loop_timer_stop(loop, &v->wait);
	if (v->fd >= 0) {
		loop_io_forget(loop, &v->w);   /* the close takes it out of the set */
		close(v->fd);
	}
	free(v);
}

/* A waiting visitor's peer ended its side. With nothing sent, it has left
 * (a closed connection looks the same as a half-closed one on the wire,
 * and a visitor that sends nothing and then waits for the service to
 * speak first is the only one mistaken for gone): it is dropped now, not
 * when its wait runs out, so its descriptor and its place are free for
 * those still there. With bytes waiting, it stays (a request, then FIN)
 * and is not watched any more. */
static void visitor_on_peer_end(struct loop *loop, struct io_watcher *w, unsigned revents)
{
	struct visitor *v = w->data;
	char b;
	ssize_t n = recv(v->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0) {
		loop_io_stop(loop, &v->w);
		return;
	}
	struct session *s = v->sess;
	log_debug("service %s: a waiting visitor left", svc_label(s->svc));
	visitor_unlink(s, v);
	visitor_free(loop, v);
}

/* Takes v off the loop before its socket goes to a relay. */
static void visitor_unwatch(struct loop *loop, struct visitor *v)
{
	if (loop_io_active(&v->w))
		loop_io_stop(loop, &v->w);
}

static void visitor_on_timeout(struct loop *loop, struct timer *t)
{
	struct visitor *v = t->data;
	struct session *s = v->sess;
	log_warn("service %s: visitor waited %d s for a data channel; closing it (is the client able to reach this server?)",
		 svc_label(s->svc), VISITOR_WAIT_MS / 1000);
	svc_stats_error(s->svc->st, "a visitor waited %d s for a data channel and was closed", VISITOR_WAIT_MS / 1000);
	visitor_unlink(s, v);
	visitor_free(loop, v);
}

/* ---------------------------------------------------------------- pool */

/* The pool's size at rest: what the Ack asks for (protocol.md#p-pool). A
 * burst asks for one more channel per visitor; those that arrive once
 * their visitors are served or gone are closed, so the pool keeps this
 * size. */
static size_t pool_target(const struct session *s)
{
	return s->svc->cfg->type == CONF_SVC_UDP ? PROTO_UDP_POOL_SIZE : PROTO_TCP_POOL_SIZE;
}

/* Asks for a channel in place of a pooled one that died while idle (the
 * network reset it, a NAT forgot it), as rathole does; at most
 * POOL_REPLACE_PER_S a second, so a client that keeps losing them (or
 * closes each one) cannot make it a busy loop. */
static void session_replace(struct session *s)
{
	struct loop *loop = s->srv->env.loop;
	uint64_t now = loop_now(loop);
	if (now - s->replace_window_ms >= 1000) {
		s->replace_window_ms = now;
		s->replaced = 0;
	}
	if (s->pool.n >= pool_target(s))
		return;
	if (s->replaced >= POOL_REPLACE_PER_S) {
		/* held back, not forgotten: asked for when the second ends */
		if (s->owed < pool_target(s))
			s->owed++;
		if (!loop_timer_active(&s->replace))
			loop_timer_start(loop, &s->replace, 1000 - (now - s->replace_window_ms));
		return;
	}
	s->replaced++;
	session_request(s);
}

static void session_on_replace(struct loop *loop, struct timer *t)
{
	struct session *s = t->data;
	unsigned owed = s->owed;
	s->owed = 0;
	for (unsigned i = 0; i < owed && !s->ending; i++)
		session_replace(s);
}

static void pooled_unlink(struct session *s, struct pooled *p)
{
	list_remove(&s->pool, &p->link);
}

static void draining_add(struct session *s, struct pooled *p)
{
	list_push_front(&s->draining, &p->link);
}

static void draining_remove(struct session *s, struct pooled *p)
{
	list_remove(&s->draining, &p->link);
}

static void pooled_on_error(struct chan *c, void *owner, int err)
{
	struct pooled *p = owner;
	struct session *s = p->sess;
	struct loop *loop = s->srv->env.loop;
	log_debug("service %s: pooled data channel closed: %s", svc_label(s->svc), mr_strerror(err));
	s->svc->st->dc_failures[DCF_CLOSED]++;
	if (!p->paired && !p->udp_start) {
		pooled_unlink(s, p);
		chan_close(c);
		free(p);
		session_replace(s);
		return;
	}
	draining_remove(s, p);
	struct visitor *v = p->paired;
	chan_close(c);
	free(p);
	if (v) {
		/* StartForwardTcp could not be written: the visitor goes back to
		 * the front, waits afresh, and one more channel is asked for
		 * (protocol.md#p-pool) */
		list_push_front(&s->visitors, &v->link);
		loop_timer_start(loop, &v->wait, VISITOR_WAIT_MS);
		loop_io_start(loop, &v->w, v->fd, LOOP_PEER_END);
	}
	session_request(s);
	if (v)
		session_pair(s);
	else
		session_udp_feed(s);
}

static void start_tcp_relay(struct session *s, struct pooled *p)
{
	struct visitor *v = p->paired;
	draining_remove(s, p);
	struct xport *dx = chan_detach(p->chan);
	struct xport *vx = xport_stack_plain(v->fd);
	v->fd = -1;
	visitor_free(s->srv->env.loop, v);
	free(p);
	if (!vx) {
		xport_close(dx);
		return;
	}
	struct relay_cfg rc = {
		.loop = s->srv->env.loop,
		.pipes = s->srv->env.pipes,
		.mode = s->srv->env.relay_mode,
		.set = s->srv->env.relays,
		.counters = s->svc->counters,
		.label = s->svc->cfg->name,
		/* the client sends nothing before StartForwardTcp */
		.idle_at_start = RELAY_SIDE_A,
		.half_close_ms = secs_to_ms(s->srv->cfg->half_close_timeout),
	};
	int r = relay_start(&rc, dx, vx);
	if (r < 0)
		log_warn("service %s: cannot start relay: %s", svc_label(s->svc), mr_strerror(r));
}

static void start_udp(struct session *s, struct pooled *p)
{
	draining_remove(s, p);
	struct xport *dx = chan_detach(p->chan);
	free(p);
	int r = udp_server_attach(s->udp, dx);
	if (r < 0)
		log_warn("service %s: cannot attach the UDP data channel: %s", svc_label(s->svc), mr_strerror(r));
	else
		log_debug("service %s: UDP data channel attached", svc_label(s->svc));
}

static void pooled_on_drain(struct chan *c, void *owner)
{
	struct pooled *p = owner;
	if (p->paired)
		start_tcp_relay(p->sess, p);
	else if (p->udp_start)
		start_udp(p->sess, p);
}

static const struct chan_cbs pooled_cbs = {
	.on_error = pooled_on_error,
	.on_drain = pooled_on_drain,
};

/* Requests one more data channel from the client (protocol.md#p-pool). */
static void session_request(struct session *s)
{
	if (!s->ctrl)
		return;
	uint8_t cmd[4];
	proto_encode_u32(cmd, PROTO_CMD_CREATE_DATA_CHANNEL);
	int r = chan_send(s->ctrl, cmd, sizeof(cmd));
	if (r < 0) {
		/* a failed write ends the control channel (protocol.md#p-control-server step 7); a
		 * full queue means the client stopped reading */
		if (r == -EPIPE || r == -ECONNRESET)
			log_info("service %s: the control channel ended (%s)", svc_label(s->svc), mr_strerror(r));
		else
			log_warn("service %s: cannot request a data channel: %s", svc_label(s->svc),
				 mr_strerror(r));
		session_end(s, "cannot write to the control channel");
		return;
	}
	if (s->srv->heartbeat_ms)
		loop_timer_start(s->srv->env.loop, &s->heartbeat, s->srv->heartbeat_ms);
}

/* Writes StartForwardTcp (p->paired set) or StartForwardUdp (p->udp_start)
 * on a channel taken off the pool; once the command is out, the relay or
 * the UDP forwarder takes the channel (pooled_on_drain). */
static void pooled_start(struct session *s, struct pooled *p)
{
	draining_add(s, p);
	uint8_t cmd[4];
	proto_encode_u32(cmd, p->udp_start ? PROTO_DATA_START_UDP : PROTO_DATA_START_TCP);
	int r = chan_send(p->chan, cmd, sizeof(cmd));
	if (r < 0)
		pooled_on_error(p->chan, p, r);
	else if (chan_queued(p->chan) == 0)
		pooled_on_drain(p->chan, p);
}

/* Pairs waiting visitors with pooled data channels, oldest first (protocol.md#p-tcp-pairing). */
static void session_pair(struct session *s)
{
	while (list_first(&s->visitors) && list_first(&s->pool) && !s->ending) {
		struct visitor *v = list_first_entry(&s->visitors, struct visitor, link);
		struct pooled *p = list_first_entry(&s->pool, struct pooled, link);
		visitor_unlink(s, v);
		pooled_unlink(s, p);
		loop_timer_stop(s->srv->env.loop, &v->wait);
		visitor_unwatch(s->srv->env.loop, v);
		p->paired = v;
		pooled_start(s, p);
	}
}

/* Gives the UDP forwarder a data channel when it has none: the oldest
 * pooled one gets StartForwardUdp (protocol.md#p-udp). The other pooled channel stays as
 * the spare that replaces a broken one without a reconnect. */
static void session_udp_feed(struct session *s)
{
	if (!s->udp || s->ending || udp_server_attached(s->udp) || !list_first(&s->pool))
		return;
	for (struct pooled *q = list_first_entry(&s->draining, struct pooled, link); q;
	     q = list_next_entry(q, struct pooled, link))
		if (q->udp_start)
			return;   /* one is on its way */
	struct pooled *p = list_first_entry(&s->pool, struct pooled, link);
	pooled_unlink(s, p);
	p->udp_start = true;
	pooled_start(s, p);
}

static void session_add_channel(struct session *s, struct chan *c)
{
	if (s->pool.n >= MAX_POOLED_CHANNELS) {
		if (warn_ok(s->srv->env.loop, &s->last_warn))
			log_warn("service %s: %zu data channels already pooled; closing a new one",
				 svc_label(s->svc), s->pool.n);
		s->svc->st->dc_failures[DCF_LIMIT]++;
		chan_close(c);
		return;
	}
	struct pooled *p = calloc(1, sizeof(*p));
	if (!p) {
		chan_close(c);
		return;
	}
	p->sess = s;
	p->chan = c;
	chan_set_owner(c, &pooled_cbs, p);
	chan_expect(c, 0);
	list_push_back(&s->pool, &p->link);
	if (s->svc->cfg->type == CONF_SVC_UDP)
		session_udp_feed(s);
	else
		session_pair(s);
	/* what a burst asked for beyond the visitors it served: back to the
	 * pool's size at rest, the oldest going first */
	while (!s->ending && s->pool.n > pool_target(s)) {
		struct pooled *old = list_first_entry(&s->pool, struct pooled, link);
		pooled_unlink(s, old);
		chan_close(old->chan);
		free(old);
		log_debug("service %s: a data channel beyond the pool's %zu closed", svc_label(s->svc),
			  pool_target(s));
	}
}

/* ---------------------------------------------------------------- service listener */

static void session_listen(struct session *s);

static void listener_retry(struct loop *loop, struct timer *t)
{
	struct session *s = t->data;
	if (s->lst == LST_ACCEPT_PAUSE) {
		s->lst = LST_BOUND;
		loop_io_set(loop, &s->lw, LOOP_READ);
		return;
	}
	session_listen(s);
}

static void session_accept(struct loop *loop, struct io_watcher *w, unsigned revents)
{
	struct session *s = w->data;
	for (int i = 0; i < ACCEPT_BATCH && !s->ending; i++) {
		if (s->visitors.n >= MAX_VISITORS_WAITING) {
			/* backpressure, as rathole's bounded queue: newcomers wait
			 * in the listen backlog */
			if (warn_ok(loop, &s->last_warn))
				log_warn("service %s: %zu visitors already wait for a data channel; accepting no more until they are served",
					 svc_label(s->svc), s->visitors.n);
			s->lst = LST_FULL;
			loop_io_set(loop, w, 0);
			return;
		}
		struct addr peer;
		int fd = listener_accept(loop, w, &s->bo, &s->retry, &s->last_warn, s->svc->cfg->bind_addr, &peer);
		if (fd == -EINTR)
			continue;
		if (fd < 0) {
			if (fd != -EAGAIN)
				s->lst = LST_ACCEPT_PAUSE;
			return;
		}
		struct visitor *v = calloc(1, sizeof(*v));
		if (!v) {
			close(fd);
			continue;
		}
		v->sess = s;
		v->fd = fd;
		s->svc->st->visitors_total++;
		loop_timer_init(&v->wait, visitor_on_timeout, v);
		loop_timer_start(loop, &v->wait, VISITOR_WAIT_MS);
		loop_io_init(&v->w, visitor_on_peer_end, v);
		list_push_back(&s->visitors, &v->link);
		if (log_enabled(LOGL_DEBUG)) {
			char buf[ADDR_STRLEN];
			log_debug("service %s: visitor %s", svc_label(s->svc), addr_str(&peer, buf, sizeof(buf)));
		}
		/* pair first: the visitor's StartForwardTcp goes out before the
		 * CreateDataChannel that refills the pool, so the client serves
		 * the visitor before it opens the next channel */
		session_pair(s);
		if (s->visitors.tail == &v->link)
			/* not paired (pairing takes from the head, and v may
			 * be gone if it was): notice if it leaves while it
			 * waits (one epoll registration, only for visitors
			 * that queue) */
			loop_io_start(loop, &v->w, fd, LOOP_PEER_END);
		session_request(s);
	}
}

static void session_udp_lost(void *arg, int err)
{
	struct session *s = arg;
	log_warn("service %s: UDP data channel lost (%s); switching to a spare one", svc_label(s->svc),
		 mr_strerror(err));
	session_request(s);
	session_udp_feed(s);
}

static void session_bind(struct session *s)
{
	struct loop *loop = s->srv->env.loop;
	bool udp = s->svc->cfg->type == CONF_SVC_UDP;
	int fd = udp ? sock_bind_udp(&s->bind) : sock_listen_tcp(&s->bind);
	if (fd < 0) {
		uint64_t delay = 1000;
		backoff_next(&s->bo, loop_now(loop), &delay);
		char buf[ADDR_STRLEN];
		log_error("service %s: cannot listen on %s: %s; retrying in %llu ms",
			  svc_label(s->svc), addr_str(&s->bind, buf, sizeof(buf)), mr_strerror(fd),
			  (unsigned long long)delay);
		svc_stats_error(s->svc->st, "cannot listen on %s: %s", buf, mr_strerror(fd));
		s->lst = LST_BIND_RETRY;
		loop_timer_start(loop, &s->retry, delay);
		return;
	}
	char buf[ADDR_STRLEN];
	s->lst = LST_BOUND;
	if (udp) {
		struct udp_env ue = {
			.loop = loop,
			.dns = s->srv->env.dns,
			.label = s->svc->cfg->name,
			.counters = s->svc->counters,
			.lost = session_udp_lost,
			.arg = s,
			.no_gso = s->srv->env.udp_no_gso,
		};
		int r = udp_server_new(&ue, fd, &s->udp);
		if (r < 0) {
			session_end(s, "cannot start UDP forwarding");
			return;
		}
		log_info("service %s: UDP on %s", svc_label(s->svc), addr_str(&s->bind, buf, sizeof(buf)));
		session_udp_feed(s);
		return;
	}
	int r = loop_io_start(loop, &s->lw, fd, LOOP_READ);
	if (r < 0) {
		close(fd);
		session_end(s, "cannot watch the listener");
		return;
	}
	struct backoff_params bp = backoff_params_service_accept();
	backoff_init(&s->bo, &bp, loop_now(loop), NULL, NULL);
	log_info("service %s: listening on %s", svc_label(s->svc), addr_str(&s->bind, buf, sizeof(buf)));
}

static void session_on_resolved(void *arg, int err, const struct addr *addrs, size_t n)
{
	struct session *s = arg;
	s->dreq = NULL;
	if (err < 0 || n == 0) {
		uint64_t delay = 1000;
		backoff_next(&s->bo, loop_now(s->srv->env.loop), &delay);
		log_error("service %s: cannot resolve bind_addr \"%s\": %s; retrying in %llu ms",
			  svc_label(s->svc), s->svc->cfg->bind_addr, mr_strerror(err), (unsigned long long)delay);
		s->lst = LST_BIND_RETRY;
		loop_timer_start(s->srv->env.loop, &s->retry, delay);
		return;
	}
	s->bind = addrs[0];
	session_bind(s);
}

static void session_listen(struct session *s)
{
	char host[256];
	uint16_t port;
	int r = addr_split_host_port(s->svc->cfg->bind_addr, host, sizeof(host), &port);
	if (r < 0) {
		log_error("service %s: bind_addr \"%s\" is not host:port", svc_label(s->svc), s->svc->cfg->bind_addr);
		session_end(s, "bad bind_addr");
		return;
	}
	/* a literal binds at once, so the port is open before the Ack */
	if (addr_from_literal(host, port, &s->bind) == 0) {
		session_bind(s);
		return;
	}
	s->lst = LST_RESOLVING;
	s->dreq = dns_resolve(s->srv->env.dns, host, port, session_on_resolved, s);
	if (!s->dreq)
		session_end(s, "out of memory");
}

/* ---------------------------------------------------------------- session */

static void session_free_mem(void *arg) { free(arg); }

static void session_end(struct session *s, const char *why)
{
	if (s->ending)
		return;
	struct loop *loop = s->srv->env.loop;
	s->ending = true;
	log_info("service %s: control channel ended: %s", svc_label(s->svc), why);
	if (s->svc->session == s) {
		s->svc->session = NULL;
		s->svc->st->since = metrics_unix_now();
		s->svc->st->peer[0] = '\0';
		svc_stats_error(s->svc->st, "control channel ended: %s", why);
	}
	if (s->ctrl)
		chan_close(s->ctrl);
	s->ctrl = NULL;
	loop_timer_stop(loop, &s->heartbeat);
	loop_timer_stop(loop, &s->retry);
	loop_timer_stop(loop, &s->replace);
	if (s->dreq)
		dns_cancel(s->dreq);
	if (loop_io_active(&s->lw)) {
		int fd = s->lw.fd;
		loop_io_stop(loop, &s->lw);
		close(fd);
	}
	if (s->udp)
		udp_server_free(s->udp);
	s->udp = NULL;
	while (list_first(&s->visitors)) {
		struct visitor *v = list_first_entry(&s->visitors, struct visitor, link);
		visitor_unlink(s, v);
		visitor_free(loop, v);
	}
	while (list_first(&s->pool)) {
		struct pooled *p = list_first_entry(&s->pool, struct pooled, link);
		pooled_unlink(s, p);
		chan_close(p->chan);
		free(p);
	}
	while (list_first(&s->draining)) {
		struct pooled *p = list_first_entry(&s->draining, struct pooled, link);
		draining_remove(s, p);
		if (p->paired)
			visitor_free(loop, p->paired);
		chan_close(p->chan);
		free(p);
	}
	loop_defer(loop, session_free_mem, s);
}

static void ctrl_on_error(struct chan *c, void *owner, int err)
{
	struct session *s = owner;
	session_end(s, err == MR_EEOF ? "closed by the client" : mr_strerror(err));
}

static const struct chan_cbs ctrl_cbs = { .on_error = ctrl_on_error };

static void session_heartbeat(struct loop *loop, struct timer *t)
{
	struct session *s = t->data;
	uint8_t cmd[4];
	proto_encode_u32(cmd, PROTO_CMD_HEARTBEAT);
	int r = chan_send(s->ctrl, cmd, sizeof(cmd));
	if (r < 0) {
		session_end(s, "cannot write a heartbeat");
		return;
	}
	s->svc->st->last_heartbeat = metrics_unix_now();
	loop_timer_start(loop, &s->heartbeat, s->srv->heartbeat_ms);
}

static void session_start(struct server *srv, struct svc *v, struct chan *ctrl, const uint8_t key[PROTO_DIGEST_LEN],
			  const char *peer)
{
	struct loop *loop = srv->env.loop;
	if (v->session) {
		log_warn("service %s: a new control channel replaces the old one", svc_label(v));
		session_end(v->session, "replaced by a newer control channel");
	}
	struct session *s = calloc(1, sizeof(*s));
	if (!s) {
		chan_close(ctrl);
		return;
	}
	s->srv = srv;
	s->svc = v;
	memcpy(s->key, key, PROTO_DIGEST_LEN);
	s->ctrl = ctrl;
	loop_timer_init(&s->heartbeat, session_heartbeat, s);
	loop_timer_init(&s->retry, listener_retry, s);
	loop_timer_init(&s->replace, session_on_replace, s);
	loop_io_init(&s->lw, session_accept, s);
	struct backoff_params bp = backoff_params_listener_bind();
	backoff_init(&s->bo, &bp, loop_now(loop), NULL, NULL);
	v->session = s;
	v->st->connects_ok++;
	v->st->since = metrics_unix_now();
	v->st->last_heartbeat = 0;
	snprintf(v->st->peer, sizeof(v->st->peer), "%s", peer);
	chan_set_owner(ctrl, &ctrl_cbs, s);
	chan_expect(ctrl, 0);   /* read, so a client that went away is noticed (protocol.md#q3) */
	session_listen(s);
	if (s->ending)
		return;

	uint8_t ack[4];
	proto_encode_u32(ack, PROTO_ACK_OK);
	chan_send(ctrl, ack, sizeof(ack));
	unsigned pool = v->cfg->type == CONF_SVC_UDP ? PROTO_UDP_POOL_SIZE : PROTO_TCP_POOL_SIZE;
	for (unsigned i = 0; i < pool && !s->ending; i++)
		session_request(s);
	if (s->ending)
		return;
	if (srv->heartbeat_ms)
		loop_timer_start(loop, &s->heartbeat, srv->heartbeat_ms);
	log_info("service %s: control channel established", svc_label(v));
}

/* ---------------------------------------------------------------- handshakes */

/* After a flood of handshakes, an idle server gives the memory it freed
 * back to the system (glibc keeps freed heap pages otherwise). */
static void trim_after_peak(struct server *srv)
{
	if (srv->handshakes.n || srv->hs_peak < TRIM_AFTER_PEAK)
		return;
	srv->hs_peak = 0;
	mr_trim_heap();
}

static void hs_free(struct handshake *h, bool close_chan)
{
	struct server *srv = h->srv;
	loop_timer_stop(srv->env.loop, &h->timeout);
	list_remove(&srv->handshakes, &h->link);
	if (h->src) {
		list_remove(&h->src->items, &h->src_link);
		srcmap_put(srv->sources, h->src);
	}
	if (close_chan && h->chan)
		chan_close(h->chan);
	free(h);
	trim_after_peak(srv);
}

/* The handshake timeout for one starting now: HANDSHAKE_MS while fewer
 * than half the slots are taken, then shrinking to HANDSHAKE_MIN_MS with
 * every slot taken, so under a flood of connections that never finish,
 * slots turn over faster (a real peer needs one round trip). */
static uint64_t hs_timeout_ms(const struct server *srv)
{
	size_t n = srv->handshakes.n, half = srv->max_handshakes / 2;
	if (n < half || half == 0)
		return HANDSHAKE_MS;
	uint64_t t = (uint64_t)HANDSHAKE_MS * (srv->max_handshakes - (n < srv->max_handshakes ? n : srv->max_handshakes)) / half;
	return t < HANDSHAKE_MIN_MS ? HANDSHAKE_MIN_MS : t;
}

/* Makes room by closing h, the oldest unfinished handshake (of all, or of
 * one source), so a flood of connections that never finish cannot keep a
 * real peer out: its handshake needs one round trip, and the newest are the
 * last to go. Returns false, evicting nothing, when h is younger than
 * HANDSHAKE_GRACE_MS: it has not had its turn yet (a burst of real data
 * channels arrives faster than the loop reads their Hellos); the caller
 * then waits that long before accepting more. */
static bool hs_evict(struct server *srv, struct handshake *h, uint64_t grace_ms, const char *why)
{
	if (loop_now(srv->env.loop) - h->born_ms < grace_ms)
		return false;
	/* a peer whose message is already in the socket, waiting for this
	 * busy loop to read it, is not stalling: it stays (the caller waits) */
	if (h->state != HS_CLOSING && h->chan && chan_msg_arrived(h->chan))
		return false;
	log_limited(&srv->log_hs_evicted, loop_now(srv->env.loop), LOGL_WARN,
		    "connection from %s: handshake unfinished while %s; closing it to make room", h->peer, why);
	runtime_count_hs(&srv->env, HSF_EVICTED);
	hs_free(h, true);
	return true;
}

static void hs_on_timeout(struct loop *loop, struct timer *t)
{
	struct handshake *h = t->data;
	log_limited(&h->srv->log_hs_failed, loop_now(loop), LOGL_WARN,
		    "connection from %s: handshake not finished in time; closing it", h->peer);
	runtime_count_hs(&h->srv->env, HSF_TIMEOUT);
	hs_free(h, true);
}

static void hs_on_error(struct chan *c, void *owner, int err)
{
	struct handshake *h = owner;
	if (h->state == HS_CLOSING)
		log_debug("connection from %s: closed after a failed handshake", h->peer);
	else if (err == MR_EEOF && h->state == HS_HELLO)
		/* a port probe (connect, close): worth no warning, and it must
		 * not take the rate-limited line from a real failure */
		log_debug("connection from %s: closed before its Hello", h->peer);
	else {
		log_limited(&h->srv->log_hs_failed, loop_now(h->srv->env.loop), LOGL_WARN,
			    "connection from %s: handshake failed: %s", h->peer, chan_strerror(c, err));
		runtime_count_hs(&h->srv->env, HSF_TRANSPORT);
	}
	hs_free(h, true);
}

static void hs_on_drain(struct chan *c, void *owner)
{
	struct handshake *h = owner;
	if (h->state == HS_CLOSING)
		hs_free(h, true);
}

static void hs_fail(struct handshake *h, enum proto_ack ack)
{
	uint8_t b[4];
	proto_encode_u32(b, ack);
	h->state = HS_CLOSING;
	chan_expect(h->chan, 0);
	if (chan_send(h->chan, b, sizeof(b)) < 0 || chan_queued(h->chan) == 0)
		hs_free(h, true);
}

static void hs_on_hello(struct handshake *h, const uint8_t *msg, size_t len)
{
	struct server *srv = h->srv;
	enum proto_hello_kind kind;
	uint8_t digest[PROTO_DIGEST_LEN];
	int r = proto_decode_hello(msg, len, &kind, digest);
	if (r < 0) {
		uint32_t tag = (uint32_t)msg[0] | (uint32_t)msg[1] << 8 | (uint32_t)msg[2] << 16 | (uint32_t)msg[3] << 24;
		log_limited(&srv->log_bad_hello, loop_now(srv->env.loop), LOGL_ERROR,
			    "connection from %s: not a rathole Hello (%s; first 4 bytes read as %u); dropped",
			    h->peer, mr_strerror(r), tag);
		runtime_count_hs(&srv->env, HSF_PROTOCOL);
		hs_free(h, true);
		return;
	}
	if (kind == PROTO_HELLO_DATA) {
		struct session *s = session_by_key(srv, digest);
		if (!s) {
			log_limited(&srv->log_stale_key, loop_now(srv->env.loop), LOGL_WARN,
				    "connection from %s: data channel with an unknown session key (incorrect nonce or stale control channel); closed",
				    h->peer);
			runtime_count_hs(&srv->env, HSF_STALE_KEY);
			hs_free(h, true);
			return;
		}
		struct chan *c = h->chan;
		h->chan = NULL;
		hs_free(h, false);
		if (s->svc->cfg->nodelay >= 0)
			xport_set_nodelay(chan_xport(c), s->svc->cfg->nodelay);
		session_add_channel(s, c);
		return;
	}
	/* control channel: nonce first, then the lookup (protocol.md#p-control-server, protocol.md#q2) */
	xport_set_nodelay(chan_xport(h->chan), 1);
	if (proto_random(h->nonce, sizeof(h->nonce)) < 0) {
		log_error("connection from %s: no random bytes for a nonce; closed", h->peer);
		hs_free(h, true);
		return;
	}
	uint8_t hello[PROTO_HELLO_LEN];
	proto_encode_hello(hello, PROTO_HELLO_CONTROL, h->nonce);
	chan_send(h->chan, hello, sizeof(hello));
	h->svc = svc_by_digest(srv, digest);
	if (!h->svc) {
		char hex[17];
		for (int i = 0; i < 8; i++)
			snprintf(hex + 2 * i, 3, "%02x", digest[i]);
		log_error("connection from %s: control channel for a service that does not exist (digest %s...); Ack ServiceNotExist",
			  h->peer, hex);
		runtime_count_hs(&srv->env, HSF_UNKNOWN_SERVICE);
		hs_fail(h, PROTO_ACK_SERVICE_NOT_EXIST);
		return;
	}
	h->state = HS_AUTH;
	chan_expect(h->chan, PROTO_AUTH_LEN);
}

static void hs_on_auth(struct handshake *h, const uint8_t *msg)
{
	uint8_t want[PROTO_DIGEST_LEN];
	proto_session_key(h->svc->cfg->token, h->svc->cfg->token_len, h->nonce, want);
	if (!proto_digest_equal(want, msg)) {
		log_error("connection from %s: service %s: incorrect token; Ack AuthFailed", h->peer, svc_label(h->svc));
		h->svc->st->connects_failed++;
		if (h->srv->env.stats)
			h->srv->env.stats->auth_failures++;
		svc_stats_error(h->svc->st, "incorrect token from %s", h->peer);
		hs_fail(h, PROTO_ACK_AUTH_FAILED);
		return;
	}
	struct chan *c = h->chan;
	struct svc *v = h->svc;
	char peer[ADDR_STRLEN];
	memcpy(peer, h->peer, sizeof(peer));
	h->chan = NULL;
	hs_free(h, false);
	session_start(v->srv, v, c, want, peer);
}

static void hs_on_msg(struct chan *c, void *owner, const uint8_t *msg, size_t len)
{
	struct handshake *h = owner;
	if (h->state == HS_HELLO)
		hs_on_hello(h, msg, len);
	else if (h->state == HS_AUTH)
		hs_on_auth(h, msg);
}

static void hs_on_open(struct chan *c, void *owner)
{
	chan_expect(c, PROTO_HELLO_LEN);
}

static const struct chan_cbs hs_cbs = {
	.on_open = hs_on_open,
	.on_msg = hs_on_msg,
	.on_drain = hs_on_drain,
	.on_error = hs_on_error,
};

static void server_accept(struct loop *loop, struct io_watcher *w, unsigned revents)
{
	struct server *srv = w->data;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		/* room first (protocol.md#q30: never refuse; the oldest
		 * unfinished go), or wait for the youngest to have had a turn */
		if (srv->handshakes.n >= srv->max_handshakes &&
		    !hs_evict(srv, list_first_entry(&srv->handshakes, struct handshake, link),
			      HANDSHAKE_GRACE_MS, "every handshake slot is taken")) {
			log_limited(&srv->log_hs_wait, loop_now(loop), LOGL_DEBUG,
				    "%zu handshakes in progress on %s, none older than %d ms; accepting more in %d ms",
				    srv->handshakes.n, srv->cfg->bind_addr, HANDSHAKE_GRACE_MS, HANDSHAKE_GRACE_MS);
			loop_io_set(loop, w, 0);
			loop_timer_start(loop, &srv->accept_retry, HANDSHAKE_GRACE_MS);
			return;
		}
		struct addr peer;
		int fd = listener_accept(loop, w, &srv->accept_bo, &srv->accept_retry, &srv->last_warn,
					 srv->cfg->bind_addr, &peer);
		if (fd == -EINTR)
			continue;
		if (fd < 0)
			return;
		/* and a slot of this source: its oldest goes once it has
		 * waited HANDSHAKE_MIN_MS for nothing; a younger one stays and
		 * the newcomer is let in over the bound (the global bound still
		 * holds): one busy client's burst of data channels is never
		 * cut, only a source whose connections stall for a second */
		struct src_entry *src = srcmap_get(srv->sources, &peer);
		if (src && src->items.n >= MAX_HANDSHAKES_PER_SOURCE) {
			struct handshake *old = list_entry(src->items.head, struct handshake, src_link);
			if (hs_evict(srv, old, HANDSHAKE_MIN_MS, "its address has too many in progress"))
				src = srcmap_get(srv->sources, &peer);   /* the eviction may have freed it */
		}
		char pbuf[ADDR_STRLEN];
		addr_str(&peer, pbuf, sizeof(pbuf));
		struct xport *x = xport_stack_inbound(&srv->stack, fd);
		struct handshake *h = x ? calloc(1, sizeof(*h)) : NULL;
		if (!h) {
			xport_close(x);
			srcmap_put(srv->sources, src);
			continue;
		}
		h->srv = srv;
		memcpy(h->peer, pbuf, sizeof(pbuf));
		h->chan = chan_new(loop, x, &hs_cbs, h);
		if (!h->chan) {
			free(h);
			srcmap_put(srv->sources, src);
			continue;
		}
		/* what it waits for from the start (on_open asks again), so an
		 * eviction can tell a Hello already in the socket */
		chan_expect(h->chan, PROTO_HELLO_LEN);
		loop_timer_init(&h->timeout, hs_on_timeout, h);
		loop_timer_start(loop, &h->timeout, hs_timeout_ms(srv));
		h->born_ms = loop_now(loop);
		list_push_back(&srv->handshakes, &h->link);
		h->src = src;
		if (src)
			list_push_back(&src->items, &h->src_link);
		if (srv->handshakes.n > srv->hs_peak)
			srv->hs_peak = srv->handshakes.n;
		log_debug("connection from %s", pbuf);
	}
}

static void server_accept_resume(struct loop *loop, struct timer *t)
{
	struct server *srv = t->data;
	loop_io_set(loop, &srv->lw, LOOP_READ);
}

static void server_on_resolved(void *arg, int err, const struct addr *addrs, size_t n)
{
	struct server *srv = arg;
	srv->dreq = NULL;
	if (err < 0 || n == 0) {
		log_error("cannot resolve server.bind_addr \"%s\": %s", srv->cfg->bind_addr, mr_strerror(err));
		srv->env.fatal(srv->env.arg, err < 0 ? err : MR_EDNS);
		return;
	}
	int fd = sock_listen_tcp(&addrs[0]);
	if (fd < 0) {
		log_error("cannot listen on server.bind_addr \"%s\": %s; is another process using the port?",
			  srv->cfg->bind_addr, mr_strerror(fd));
		srv->env.fatal(srv->env.arg, fd);
		return;
	}
	int r = loop_io_start(srv->env.loop, &srv->lw, fd, LOOP_READ);
	if (r < 0) {
		close(fd);
		srv->env.fatal(srv->env.arg, r);
		return;
	}
	char buf[ADDR_STRLEN];
	struct addr local;
	if (sock_local_addr(fd, &local) == 0)
		log_info("server listening on %s (%zu service%s)", addr_str(&local, buf, sizeof(buf)),
			 srv->n_svcs, srv->n_svcs == 1 ? "" : "s");
	if (srv->env.started)
		srv->env.started(srv->env.arg);
}

int server_add_service(struct server *srv, const struct conf_service *c)
{
	struct svc *v = svc_new(srv, c);
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < srv->n_svcs; i++) {
		if (memcmp(srv->svcs[i]->digest, v->digest, PROTO_DIGEST_LEN) == 0) {
			svc_free(srv->svcs[i], "service changed");
			srv->svcs[i] = v;
			return 0;
		}
	}
	struct svc **nv = realloc(srv->svcs, (srv->n_svcs + 1) * sizeof(*nv));
	if (!nv) {
		svc_free(v, "out of memory");
		return -ENOMEM;
	}
	srv->svcs = nv;
	srv->svcs[srv->n_svcs++] = v;
	return 0;
}

void server_remove_service(struct server *srv, const struct conf_service *c)
{
	uint8_t d[PROTO_DIGEST_LEN];
	proto_service_digest(c->name, c->name_len, d);
	for (size_t i = 0; i < srv->n_svcs; i++) {
		if (memcmp(srv->svcs[i]->digest, d, PROTO_DIGEST_LEN) == 0) {
			svc_free(srv->svcs[i], "service removed");
			srv->svcs[i] = srv->svcs[--srv->n_svcs];
			return;
		}
	}
}

void server_rebind(struct server *srv, const struct conf_server *cfg)
{
	srv->cfg = cfg;
	for (size_t i = 0; i < srv->n_svcs; i++) {
		struct svc *v = srv->svcs[i];
		const struct conf_service *c = conf_service_find(cfg->services, cfg->n_services,
								 v->cfg->name, v->cfg->name_len);
		if (c)
			v->cfg = c;
	}
}

/* The transport stack of srv->cfg: heartbeats leave every interval, so a
 * path that acknowledges none for one interval and 10 s is dead. */
static int server_stack_init(const struct server *srv, struct xport_stack *st)
{
	return xport_stack_init(st, &srv->cfg->transport, true, NULL,
				tunnel_user_timeout_ms(srv->cfg->heartbeat_interval, 10000));
}

int server_renew_stack(struct server *srv)
{
	struct xport_stack st;
	return xport_stack_swap(&srv->stack, &st, server_stack_init(srv, &st));
}

int server_new(const struct runtime *rt, const struct conf_server *cfg, struct server **out)
{
	struct server *srv = calloc(1, sizeof(*srv));
	if (!srv)
		return -ENOMEM;
	srv->env = *rt;
	srv->cfg = cfg;
	srv->heartbeat_ms = secs_to_ms(cfg->heartbeat_interval);
	srv->max_handshakes = rt->max_handshakes && rt->max_handshakes < MAX_HANDSHAKES ? rt->max_handshakes
										 : MAX_HANDSHAKES;
	loop_io_init(&srv->lw, server_accept, srv);
	loop_timer_init(&srv->accept_retry, server_accept_resume, srv);
	struct backoff_params bp = backoff_params_server_accept();
	backoff_init(&srv->accept_bo, &bp, loop_now(rt->loop), NULL, NULL);
	srv->sources = srcmap_new();
	int r = srv->sources ? server_stack_init(srv, &srv->stack) : -ENOMEM;
	for (size_t i = 0; r == 0 && i < cfg->n_services; i++)
		r = server_add_service(srv, &cfg->services[i]);
	char host[256];
	uint16_t port;
	if (r == 0 && addr_split_host_port(cfg->bind_addr, host, sizeof(host), &port) < 0) {
		log_error("server.bind_addr \"%s\" is not host:port", cfg->bind_addr);
		r = MR_EFORMAT;
	}
	if (r == 0) {
		srv->dreq = dns_resolve(rt->dns, host, port, server_on_resolved, srv);
		if (!srv->dreq)
			r = -ENOMEM;
	}
	if (r < 0) {
		server_free(srv);
		return r;
	}
	*out = srv;
	return 0;
}

void server_free(struct server *srv)
{
	if (!srv)
		return;
	struct loop *loop = srv->env.loop;
	if (srv->dreq)
		dns_cancel(srv->dreq);
	if (loop_io_active(&srv->lw)) {
		int fd = srv->lw.fd;
		loop_io_stop(loop, &srv->lw);
		close(fd);
	}
	loop_timer_stop(loop, &srv->accept_retry);
	while (list_first(&srv->handshakes))
		hs_free(list_first_entry(&srv->handshakes, struct handshake, link), true);
	srcmap_free(srv->sources);
	for (size_t i = 0; i < srv->n_svcs; i++)
		svc_free(srv->svcs[i], "server stopping");
	free(srv->svcs);
	xport_stack_fini(&srv->stack);
	free(srv);
}

size_t server_status(const struct server *srv, struct svc_status *out, size_t cap)
{
	size_t n = 0;
	for (size_t i = 0; i < srv->n_svcs && n < cap; i++) {
		const struct svc *v = srv->svcs[i];
		const struct session *s = v->session && !v->session->ending ? v->session : NULL;
		const struct relay_counters *rc = v->counters;
		struct svc_status *o = &out[n++];
		memset(o, 0, sizeof(*o));
		o->name = v->cfg->name;
		o->name_len = v->cfg->name_len;
		o->udp = v->cfg->type == CONF_SVC_UDP;
		o->state = s ? SVC_UP : SVC_DOWN;
		o->pooled = s ? s->pool.n : 0;
		o->st = v->st;
		o->rc = rc;
		if (o->udp) {
			/* the UDP forwarder counts [0] visitor -> service */
			o->bytes_to_service = rc->bytes[0];
			o->bytes_to_visitor = rc->bytes[1];
		} else {
			/* relay side a is the data channel, b the visitor */
			o->bytes_to_service = rc->bytes[1];
			o->bytes_to_visitor = rc->bytes[0];
			o->visitors_active = rc->relays_active + (s ? s->visitors.n + s->draining.n : 0);
			o->visitors_total = v->st->visitors_total;
		}
	}
	return n;
}

size_t server_n_services(const struct server *srv)
{
	return srv->n_svcs;
}
