/* udp_client: the client side of UDP forwarding. See udp.h for the
 * contract.
 *
 * One forwarder per data channel (udp_chan.h): a hash table of mappings
 * (visitor address -> a connected UDP socket towards local_addr), each
 * with a lazily re-armed idle timer. Frames from the channel go to their
 * mapping's socket through a send queue (udp_sendq.h), or wait in the
 * mapping while local_addr resolves; replies are received straight into
 * the channel's output queue (the frame header size is the visitor's
 * family). Per-packet failures drop the packet, failures of a mapping's
 * socket drop the mapping; only the data channel's own failures end the
 * channel, close every mapping and call lost(). */
#include "plane/udp.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/dns.h"
#include "base/err.h"
#include "base/log.h"
#include "base/sock.h"
#include "codec/addr.h"
#include "codec/proto.h"
#include "codec/udp_frame.h"
#include "plane/rxmod.h"
#include "plane/udp_chan.h"
#include "plane/udp_sendq.h"

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

static void ucli_on_frame(void *owner, const struct udp_frame *f);
static void ucli_on_burst(void *owner);
static void ucli_on_fail(void *owner, int err);
static void map_on_io(struct loop *loop, struct io_watcher *w, unsigned revents);
static void map_on_idle(struct loop *loop, struct timer *t);
static void map_on_nap(struct loop *loop, struct timer *t);

static size_t map_hash(const struct udp_client *c, const struct addr *a)
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
	for (struct udp_map *m = c->buckets[map_hash(c, a)]; m; m = m->next)
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
		udp_common_count_drop(&c->cm, &m->visitor, UDP_DROP_UNREACHABLE, why);
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
	struct udp_map **pp = &c->buckets[map_hash(c, &m->visitor)];
	while (*pp && *pp != m)
		pp = &(*pp)->next;
	if (*pp)
		*pp = m->next;
	c->n_maps--;
	if (c->cm.counters)
		c->cm.counters->udp_mappings_active--;
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
		udp_common_count_drop(&c->cm, &m->visitor, UDP_DROP_SEND_FAILED, why);
		if (e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS || e == ENOMEM || e == EMSGSIZE)
			return 0;
		/* an error of the socket itself (ICMP): the mapping goes */
		map_close(m, why);
		return -1;
	}
	udp_common_count_dgrams(&c->cm, 0, 1);
	udp_common_count_bytes(&c->cm, 0, len);
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
		udp_common_count_drop(&c->cm, visitor, UDP_DROP_LIMIT, "too many visitor mappings");
		return NULL;
	}
	int hlen = proto_udp_hdr_len(visitor);
	struct udp_map *m = hlen > 0 ? calloc(1, sizeof(*m)) : NULL;
	if (!m) {
		udp_common_count_drop(&c->cm, visitor, hlen > 0 ? UDP_DROP_LIMIT : UDP_DROP_UNREACHABLE,
				      hlen > 0 ? "out of memory" : "bad address family");
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
	size_t b = map_hash(c, visitor);
	m->next = c->buckets[b];
	c->buckets[b] = m;
	c->n_maps++;
	if (c->cm.counters) {
		c->cm.counters->udp_mappings_active++;
		c->cm.counters->udp_mappings_total++;
	}
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
			udp_common_count_drop(&c->cm, visitor, UDP_DROP_UNREACHABLE, why);
			map_close(m, why);
			return NULL;
		}
		return m;
	}
	m->req = dns_resolve(c->dns, c->host, c->port, map_on_resolved, m);
	if (!m->req) {
		udp_common_count_drop(&c->cm, visitor, UDP_DROP_LIMIT, "out of memory");
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
		udp_common_count_drop(&c->cm, &m->visitor, UDP_DROP_QUEUE_FULL,
				      "too many datagrams wait for local_addr to resolve");
		return;
	}
	struct udp_pkt *p = malloc(sizeof(*p) + len);
	if (!p) {
		udp_common_count_drop(&c->cm, &m->visitor, UDP_DROP_LIMIT, "out of memory");
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

static bool ucli_send_err(void *owner, const struct udp_sendq *q, unsigned i, int err,
			  unsigned ndrop)
{
	struct udp_client *c = owner;
	struct udp_map *m = c->sq_map;
	char why[96];
	snprintf(why, sizeof(why), "send to local_addr: %s", strerror(err));
	udp_common_count_drops(&c->cm, &m->visitor, UDP_DROP_SEND_FAILED, why, ndrop);
	if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS || err == ENOMEM || err == EMSGSIZE)
		return true;
	/* an error of the socket itself (ICMP): the mapping goes, and with
	 * it what was queued for it (flush counts those) */
	map_close(m, why);
	return false;
}

static void ucli_on_burst(void *owner)
{
	struct udp_client *c = owner;
	if (!c->sq.n)
		return;
	size_t bytes = 0;
	uint64_t left = 0;
	udp_common_count_dgrams(&c->cm, 0, udp_sendq_flush(&c->sq, ucli_send_err, c, &bytes, &left));
	udp_common_count_flush_drops(&c->cm, left);
	udp_common_count_bytes(&c->cm, 0, bytes);
	c->sq_map = NULL;
}

static void ucli_on_frame(void *owner, const struct udp_frame *f)
{
	struct udp_client *c = owner;
	struct udp_map *m = map_find(c, &f->from);
	if (!m && !(m = map_new(c, &f->from)))
		return;
	m->last = loop_now(c->cm.loop);
	if (m->state == MAP_CLOSED) {
		udp_common_count_drop(&c->cm, &f->from, UDP_DROP_UNREACHABLE, "its mapping ended");
	} else if (m->state == MAP_RESOLVING) {
		map_enqueue(m, f->payload, f->len);
	} else {
		if (!udp_sendq_add(&c->sq, m->fd, NULL, f->payload, f->len)) {
			ucli_on_burst(c);   /* full or another mapping's: send it, then it fits */
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
		uint8_t *p = udp_chan_frame_space(&c->ch, m->hlen);
		ssize_t n = udp_common_recv(m->fd, p ? p + 1 + m->hlen : NULL, p ? UDP_RECV_MAX : 0, NULL);
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
		    !udp_chan_frame_commit(&c->ch, p, m->hlen, &m->visitor, (size_t)n)) {
			udp_common_count_drop(&c->cm, &m->visitor,
					      (size_t)n > UDP_RECV_MAX ? UDP_DROP_TOO_LARGE : UDP_DROP_QUEUE_FULL,
					      (size_t)n > UDP_RECV_MAX ? "too large" :
					      "the data channel's queue is full");
			continue;
		}
		udp_common_count_dgrams(&c->cm, 1, 1);
		udp_common_count_bytes(&c->cm, 1, (size_t)n);
	}
	udp_common_moderate(loop, w, &m->rxm, &m->nap, taken, i == UDP_BATCH);
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

static void ucli_close_maps(struct udp_client *c)
{
	for (size_t i = 0; i < c->nbuckets; i++)
		while (c->buckets[i])
			map_close(c->buckets[i], "the data channel ended");
}

static void ucli_on_fail(void *owner, int err)
{
	struct udp_client *c = owner;
	log_debug("udp service %s: data channel ended: %s", c->cm.label, mr_strerror(err));
	c->state = UCLI_LOST;
	ucli_close_maps(c);
	if (c->cm.lost)
		c->cm.lost(c->cm.arg, err);
}

static void ucli_free_mem(void *arg)
{
	struct udp_client *c = arg;
	udp_chan_release(&c->ch);
	free(c->buckets);
	free(c);
}

int udp_client_new(const struct udp_env *env, const char *local_addr, struct xport *dc,
		   struct udp_client **out)
{
	struct udp_client *c = calloc(1, sizeof(*c));
	if (!c) {
		xport_close(dc);
		return -ENOMEM;
	}
	udp_common_init(&c->cm, env);
	udp_sendq_init(&c->sq, !env->no_gso);
	c->dns = env->dns;
	c->idle_ms = env->idle_ms ? env->idle_ms : UDP_IDLE_MS;
	c->max_mappings = env->max_mappings ? env->max_mappings : UDP_MAX_MAPPINGS;
	size_t maxq = env->max_queued_bytes ? env->max_queued_bytes : UDP_MAX_QUEUED_BYTES;
	int r = udp_chan_init(&c->ch, &c->cm, maxq, ucli_on_frame, ucli_on_burst, ucli_on_fail, c);
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
		r = udp_chan_attach(&c->ch, dc);
		dc = NULL; /* taken by udp_chan_attach, also on failure */
	}
	if (r < 0) {
		xport_close(dc);
		relay_counters_unref(c->cm.counters);
		udp_chan_release(&c->ch);
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
	ucli_close_maps(c);
	udp_chan_detach(&c->ch);
	relay_counters_unref(c->cm.counters);
	c->cm.counters = NULL;
	loop_defer(c->cm.loop, ucli_free_mem, c);
}
