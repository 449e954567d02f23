/* dns: c-ares on the loop.
 *
 * The channel tells us which sockets it wants watched through its socket
 * state callback; each gets an io watcher (struct dns_sock). One timer
 * follows ares_timeout(). Answers are never handed to the caller from
 * inside c-ares: the c-ares callback stores the result in the request and
 * arms the request's zero-delay timer, and that timer calls the caller.
 *
 * c-ares cannot cancel one query of a channel, so a request cancelled while
 * its query is outstanding becomes an orphan: it stays allocated (no
 * callback) until c-ares reports back, at most the query's timeouts later,
 * and is freed then (or by dns_free). */
#include "base/dns.h"

#include <ares.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/list.h"
#include "base/log.h"

enum dns_req_state {
	DNS_REQ_RESOLVING = 0, /* c-ares query outstanding */
	DNS_REQ_READY,         /* answer stored, delivery timer armed */
	DNS_REQ_ORPHAN,        /* cancelled while the query is outstanding */
	DNS_REQ_DELIVERING,    /* transient: the callback is running */
};

struct dns_sock {
	struct io_watcher w;
	struct dns *dns;
	struct list_link link;     /* in dns->socks */
};

struct dns_req {
	struct dns *dns;       /* NULL once unlinked for delivery */
	struct list_link link; /* in dns->reqs */
	enum dns_req_state state;
	dns_cb cb;
	void *arg;
	uint16_t port;
	int err;
	size_t n;
	struct timer deliver;
	struct addr addrs[DNS_MAX_ADDRS];
	char host[];           /* for log messages */
};

struct dns {
	struct loop *loop;
	ares_channel channel;
	bool destroying;
	struct timer timer;        /* c-ares timeouts */
	struct list socks;         /* of struct dns_sock: the watched c-ares sockets */
	struct list reqs;          /* of struct dns_req: every request not yet freed */
};

/* ---- requests ---- */

static void req_link(struct dns *d, struct dns_req *r)
{
	r->dns = d;
	list_push_front(&d->reqs, &r->link);
}

static void req_unlink(struct dns_req *r)
{
	struct dns *d = r->dns;
	if (!d)
		return;
	list_remove(&d->reqs, &r->link);
	r->dns = NULL;
}

static void on_deliver(struct loop *loop, struct timer *t)
{
	struct dns_req *r = t->data;
	/* unlinked first: the callback may free the dns or start new requests */
	req_unlink(r);
	r->state = DNS_REQ_DELIVERING;
	r->cb(r->arg, r->err, r->n ? r->addrs : NULL, r->n);
	free(r);
}

static void req_ready(struct dns_req *r, int err)
{
	r->err = err;
	if (err)
		r->n = 0;
	r->state = DNS_REQ_READY;
	loop_timer_start(r->dns->loop, &r->deliver, 0);
}

/* Keeps AF_INET/AF_INET6 addresses, distinct, at most DNS_MAX_ADDRS. */
static void req_add(struct dns_req *r, const struct sockaddr *sa, socklen_t len)
{
	struct addr a;
	if (r->n >= DNS_MAX_ADDRS)
		return;
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in))
		len = sizeof(struct sockaddr_in);
	else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6))
		len = sizeof(struct sockaddr_in6);
	else
		return;
	memset(&a, 0, sizeof(a));
	memcpy(&a.ss, sa, len);
	a.len = len;
	addr_set_port(&a, r->port);
	for (size_t i = 0; i < r->n; i++) {
		if (addr_equal(&r->addrs[i], &a))
			return;
	}
	r->addrs[r->n++] = a;
}

/* ---- the c-ares side ---- */

static void update_timer(struct dns *d)
{
	struct timeval tv;
	if (d->destroying || !ares_timeout(d->channel, NULL, &tv)) {
		loop_timer_stop(d->loop, &d->timer);
		return;
	}
	/* round up, and at least 1 ms: the loop's clock is cached, so a 0 ms
	 * re-arm while c-ares still sees time left would spin */
	uint64_t ms = (uint64_t)tv.tv_sec * 1000u + ((uint64_t)tv.tv_usec + 999u) / 1000u;
	if (ms == 0)
		ms = 1;
	loop_timer_start(d->loop, &d->timer, ms);
}

static void on_timer(struct loop *loop, struct timer *t)
{
	struct dns *d = t->data;
	ares_process_fd(d->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	update_timer(d);
}

static void on_sock(struct loop *loop, struct io_watcher *w, unsigned revents)
{
	struct dns_sock *s = w->data;
	struct dns *d = s->dns;
	int fd = w->fd;
	unsigned want = w->events;
	/* s may be freed (deferred) by the state callback inside */
	ares_process_fd(d->channel, (revents & LOOP_READ) && (want & LOOP_READ) ? fd : ARES_SOCKET_BAD,
			(revents & LOOP_WRITE) && (want & LOOP_WRITE) ? fd : ARES_SOCKET_BAD);
	update_timer(d);
}

static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns *d = data;
	struct dns_sock *s = list_first_entry(&d->socks, struct dns_sock, link);
	while (s && s->w.fd != fd)
		s = list_next_entry(s, struct dns_sock, link);
	unsigned ev = (readable ? LOOP_READ : 0) | (writable ? LOOP_WRITE : 0);

	if (!ev) {
		if (s) {
			list_remove(&d->socks, &s->link);
			loop_io_stop(d->loop, &s->w);
			loop_defer(d->loop, free, s);
		}
		return;
	}
	if (s) {
		int r = loop_io_set(d->loop, &s->w, ev);
		if (r < 0)
			log_error("dns: cannot watch resolver socket %d: %s", fd, mr_strerror(r));
		return;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		/* the query then fails by its timeout */
		log_error("dns: out of memory watching resolver socket %d", fd);
		return;
	}
	s->dns = d;
	loop_io_init(&s->w, on_sock, s);
	int r = loop_io_start(d->loop, &s->w, fd, ev);
	if (r < 0) {
		log_error("dns: cannot watch resolver socket %d: %s", fd, mr_strerror(r));
		free(s);
		return;
	}
	list_push_front(&d->socks, &s->link);
}

static void on_ares(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
	struct dns_req *r = arg;
	struct dns *d = r->dns;

	if (r->state == DNS_REQ_ORPHAN || d->destroying) {
		req_unlink(r);
		free(r);
		ares_freeaddrinfo(res);
		return;
	}
	if (status == ARES_SUCCESS && res) {
		for (struct ares_addrinfo_node *n = res->nodes; n; n = n->ai_next) {
			if (n->ai_addr)
				req_add(r, n->ai_addr, (socklen_t)n->ai_addrlen);
		}
	}
	ares_freeaddrinfo(res);

	int err = 0;
	if (status == ARES_ENOMEM) {
		err = -ENOMEM;
		log_debug("dns: resolving \"%s\": out of memory", r->host);
	} else if (status != ARES_SUCCESS) {
		err = MR_EDNS;
		log_debug("dns: resolving \"%s\" failed: %s (%d)", r->host, ares_strerror(status), status);
	} else if (r->n == 0) {
		err = MR_EDNS;
		log_debug("dns: \"%s\" has no IPv4 or IPv6 address", r->host);
	} else {
		log_trace("dns: \"%s\" resolved to %zu address(es)", r->host, r->n);
	}
	req_ready(r, err);
}

/* ---- API ---- */

int dns_new_opts(struct loop *loop, const struct dns_opts *o, struct dns **out)
{
	int st = ares_library_init(ARES_LIB_INIT_ALL);
	if (st != ARES_SUCCESS) {
		log_error("dns: cannot initialise c-ares: %s", ares_strerror(st));
		return st == ARES_ENOMEM ? -ENOMEM : MR_EDNS;
	}
	struct dns *d = calloc(1, sizeof(*d));
	if (!d) {
		ares_library_cleanup();
		return -ENOMEM;
	}
	d->loop = loop;
	loop_timer_init(&d->timer, on_timer, d);

	struct ares_options opts;
	memset(&opts, 0, sizeof(opts));
	int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TRIES;
	opts.sock_state_cb = on_sock_state;
	opts.sock_state_cb_data = d;
	opts.tries = o && o->tries ? (int)(o->tries > 100 ? 100 : o->tries) : DNS_TRIES;
	if (o && o->timeout_ms) {
		opts.timeout = (int)(o->timeout_ms > 600000 ? 600000 : o->timeout_ms);
		mask |= ARES_OPT_TIMEOUTMS;
	}
	char lookups[] = "b";
	if (o && o->no_hosts_file) {
		opts.lookups = lookups;
		mask |= ARES_OPT_LOOKUPS;
	}
	st = ares_init_options(&d->channel, &opts, mask);
	if (st != ARES_SUCCESS) {
		log_error("dns: cannot create the resolver: %s", ares_strerror(st));
		free(d);
		ares_library_cleanup();
		return st == ARES_ENOMEM ? -ENOMEM : MR_EDNS;
	}
	if (o && o->servers) {
		st = ares_set_servers_ports_csv(d->channel, o->servers);
		if (st != ARES_SUCCESS) {
			log_error("dns: bad resolver list \"%s\": %s", o->servers, ares_strerror(st));
			ares_destroy(d->channel);
			free(d);
			ares_library_cleanup();
			return st == ARES_ENOMEM ? -ENOMEM : MR_EDNS;
		}
	}
	*out = d;
	return 0;
}

int dns_new(struct loop *loop, struct dns **out)
{
	return dns_new_opts(loop, NULL, out);
}

void dns_free(struct dns *d)
{
	if (!d)
		return;
	d->destroying = true;
	loop_timer_stop(d->loop, &d->timer);
	/* calls back every outstanding query (ARES_EDESTRUCTION): on_ares frees
	 * those requests, and the state callback drops every socket */
	ares_destroy(d->channel);
	while (list_first(&d->reqs)) {
		struct dns_req *r = list_first_entry(&d->reqs, struct dns_req, link);
		loop_timer_stop(d->loop, &r->deliver);
		req_unlink(r);
		free(r);
	}
	while (list_first(&d->socks)) {
		struct dns_sock *s = list_first_entry(&d->socks, struct dns_sock, link);
		list_remove(&d->socks, &s->link);
		loop_io_stop(d->loop, &s->w);
		free(s);
	}
	free(d);
	ares_library_cleanup();
}

struct dns_req *dns_resolve(struct dns *d, const char *host, uint16_t port, dns_cb cb, void *arg)
{
	size_t hlen = strlen(host);
	size_t keep = hlen > DNS_MAX_NAME ? DNS_MAX_NAME : hlen;
	struct dns_req *r = calloc(1, sizeof(*r) + keep + 1);
	if (!r)
		return NULL;
	memcpy(r->host, host, keep);
	r->host[keep] = '\0';
	r->cb = cb;
	r->arg = arg;
	r->port = port;
	loop_timer_init(&r->deliver, on_deliver, r);
	req_link(d, r);

	if (hlen == 0 || hlen > DNS_MAX_NAME) {
		log_debug("dns: cannot resolve \"%s\": %s", r->host,
			  hlen ? "name too long" : "empty name");
		req_ready(r, MR_EDNS);
		return r;
	}
	if (addr_from_literal(host, port, &r->addrs[0]) == 0) {
		r->n = 1;
		req_ready(r, 0);
		return r;
	}

	struct ares_addrinfo_hints hints;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	r->state = DNS_REQ_RESOLVING;
	/* may call on_ares before returning (hosts file, bad name): that only
	 * stores the answer and arms the delivery timer */
	ares_getaddrinfo(d->channel, host, NULL, &hints, on_ares, r);
	update_timer(d);
	return r;
}

void dns_cancel(struct dns_req *r)
{
	if (!r)
		return;
	switch (r->state) {
	case DNS_REQ_RESOLVING:
		r->state = DNS_REQ_ORPHAN;
		break;
	case DNS_REQ_READY:
		loop_timer_stop(r->dns->loop, &r->deliver);
		req_unlink(r);
		free(r);
		break;
	case DNS_REQ_ORPHAN:
	case DNS_REQ_DELIVERING:
		break;
	}
}
