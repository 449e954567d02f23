/* dial: resolve, then connect to each address in turn (protocol.md#q19 fixed:
 * rathole tries only the first). One io watcher waits for the connect, one
 * timer bounds it (and, before the first attempt of dial_start_addrs,
 * moves the start out of the caller's stack frame). */
#include "xport/dial.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "base/log.h"

enum dial_state {
	DIAL_RESOLVING = 0, /* dns request outstanding */
	DIAL_STARTING,      /* addresses known; the timer (0 ms) starts the first attempt */
	DIAL_CONNECTING,    /* fd connecting, watcher waits for writable, timer bounds it */
	DIAL_DONE,          /* the callback ran or the dial was cancelled; memory deferred */
};

enum { DIAL_HOST_MAX = DNS_MAX_NAME + 1 };

struct dial {
	struct loop *loop;
	struct dns_req *req;
	enum dial_state state;
	dial_cb cb;
	void *arg;
	unsigned timeout_ms;
	int fd;                 /* the socket of the current attempt, or -1 */
	int last_err;
	struct io_watcher w;
	struct timer timer;
	size_t n, next;         /* addresses, and the index of the next to try */
	struct addr *addrs;     /* &one, or an array of n when there are several
				 * (a dial in flight costs ~0.3 KiB, not 2) */
	struct addr one;
	char target[];          /* what was asked for, for log messages */
};

static void try_next(struct dial *d);

static void dial_free(void *arg)
{
	struct dial *d = arg;
	if (d->addrs != &d->one)
		free(d->addrs);
	free(d);
}

/* Keeps a copy of the n (<= DNS_MAX_ADDRS) addresses to try. Returns 0 or
 * -ENOMEM. */
static int set_addrs(struct dial *d, const struct addr *addrs, size_t n)
{
	if (d->addrs != &d->one)
		free(d->addrs);
	d->addrs = &d->one;
	if (n > 1) {
		d->addrs = malloc(n * sizeof(*addrs));
		if (!d->addrs) {
			d->addrs = &d->one;
			return -ENOMEM;
		}
	}
	if (n)
		memcpy(d->addrs, addrs, n * sizeof(*addrs));
	d->n = n;
	d->next = 0;
	return 0;
}

static void stop_attempt(struct dial *d)
{
	loop_io_stop(d->loop, &d->w);
	loop_timer_stop(d->loop, &d->timer);
	if (d->fd >= 0) {
		close(d->fd);
		d->fd = -1;
	}
}

/* Hands the result over; d's memory lives until the deferred free, so peer
 * (inside d) stays valid during the callback. */
static void finish(struct dial *d, int fd, int err, const struct addr *peer)
{
	d->state = DIAL_DONE;
	loop_defer(d->loop, dial_free, d);
	d->cb(d->arg, fd, err, peer);
}

static void on_writable(struct loop *loop, struct io_watcher *w, unsigned revents)
{
	struct dial *d = w->data;
	const struct addr *a = &d->addrs[d->next - 1];
	int r = sock_connect_result(d->fd);
	if (r == -EAGAIN) {
		/* a hang-up with no error and no peer: the socket is dead (a
		 * connecting socket reports nothing until it connects or fails),
		 * so do not wait for a writability that never ends */
		if (!(revents & LOOP_ERROR))
			return;
		r = -ECONNABORTED;
	}
	if (r == 0) {
		int fd = d->fd;
		d->fd = -1;
		stop_attempt(d);
		finish(d, fd, 0, a);
		return;
	}
	if (log_enabled(LOGL_DEBUG)) {
		char s[ADDR_STRLEN];
		log_debug("dial: %s: connect to %s failed: %s", d->target,
			  addr_str(a, s, sizeof(s)), mr_strerror(r));
	}
	d->last_err = r;
	try_next(d);
}

static void on_timer(struct loop *loop, struct timer *t)
{
	struct dial *d = t->data;
	if (d->state == DIAL_STARTING) {
		try_next(d);
		return;
	}
	if (log_enabled(LOGL_DEBUG)) {
		char s[ADDR_STRLEN];
		log_debug("dial: %s: connect to %s timed out after %u ms", d->target,
			  addr_str(&d->addrs[d->next - 1], s, sizeof(s)), d->timeout_ms);
	}
	d->last_err = -ETIMEDOUT;
	try_next(d);
}

static void try_next(struct dial *d)
{
	stop_attempt(d);
	while (d->next < d->n) {
		const struct addr *a = &d->addrs[d->next++];
		char s[ADDR_STRLEN];
		int fd = sock_connect_start(a);
		if (fd < 0) {
			log_debug("dial: %s: connect to %s failed: %s", d->target,
				  addr_str(a, s, sizeof(s)), mr_strerror(fd));
			d->last_err = fd;
			continue;
		}
		int r = loop_io_start(d->loop, &d->w, fd, LOOP_WRITE);
		if (r < 0) {
			log_debug("dial: %s: cannot watch the socket for %s: %s", d->target,
				  addr_str(a, s, sizeof(s)), mr_strerror(r));
			close(fd);
			d->last_err = r;
			continue;
		}
		log_trace("dial: %s: connecting to %s", d->target, addr_str(a, s, sizeof(s)));
		d->fd = fd;
		d->state = DIAL_CONNECTING;
		if (d->timeout_ms)
			loop_timer_start(d->loop, &d->timer, d->timeout_ms);
		return;
	}
	int err = d->last_err ? d->last_err : MR_EDNS;
	log_debug("dial: %s: no address could be connected (%zu tried): %s", d->target, d->n,
		  mr_strerror(err));
	finish(d, -1, err, NULL);
}

static void on_resolved(void *arg, int err, const struct addr *addrs, size_t n)
{
	struct dial *d = arg;
	d->req = NULL;
	if (err) {
		d->last_err = err;
		finish(d, -1, err, NULL);
		return;
	}
	if (n > DNS_MAX_ADDRS)
		n = DNS_MAX_ADDRS;
	if (set_addrs(d, addrs, n) < 0) {
		finish(d, -1, -ENOMEM, NULL);
		return;
	}
	try_next(d);
}

static struct dial *dial_alloc(struct loop *loop, const char *target, unsigned timeout_ms,
			       dial_cb cb, void *arg)
{
	size_t len = strlen(target);
	if (len > 300)
		len = 300;
	struct dial *d = calloc(1, sizeof(*d) + len + 1);
	if (!d)
		return NULL;
	memcpy(d->target, target, len);
	d->target[len] = '\0';
	d->loop = loop;
	d->cb = cb;
	d->arg = arg;
	d->timeout_ms = timeout_ms;
	d->fd = -1;
	d->addrs = &d->one;
	loop_io_init(&d->w, on_writable, d);
	loop_timer_init(&d->timer, on_timer, d);
	return d;
}

/* Copies the addresses and starts connecting the first at once (the
 * result still comes from the loop: a connect in progress reports when the
 * socket becomes writable). Only when that first attempt cannot even start
 * does a 0 ms timer take over, so the callback never runs inside the
 * caller's dial_start. Starting at once spares a loop iteration on every
 * new tunnelled connection (local_addr is usually a literal). */
static void start_with(struct dial *d, const struct addr *addrs, size_t n)
{
	if (n > DNS_MAX_ADDRS)
		n = DNS_MAX_ADDRS;
	if (set_addrs(d, addrs, n) < 0)
		n = 0;   /* the timer's try_next then reports the failure */
	d->state = DIAL_STARTING;
	if (n) {
		int fd = sock_connect_start(&d->addrs[0]);
		if (fd >= 0 && loop_io_start(d->loop, &d->w, fd, LOOP_WRITE) == 0) {
			d->fd = fd;
			d->next = 1;
			d->state = DIAL_CONNECTING;
			if (d->timeout_ms)
				loop_timer_start(d->loop, &d->timer, d->timeout_ms);
			return;
		}
		if (fd >= 0)
			close(fd);
		/* try_next, from the timer, tries it again and reports */
	}
	loop_timer_start(d->loop, &d->timer, 0);
}

struct dial *dial_start(struct loop *loop, struct dns *dns, const char *addr,
			unsigned timeout_ms, dial_cb cb, void *arg, int *err)
{
	char host[DIAL_HOST_MAX];
	uint16_t port;
	int r = addr_split_host_port(addr, host, sizeof(host), &port);
	if (r < 0) {
		log_debug("dial: bad address \"%s\": %s", addr, mr_strerror(r));
		*err = r;
		return NULL;
	}
	struct dial *d = dial_alloc(loop, addr, timeout_ms, cb, arg);
	if (!d) {
		*err = -ENOMEM;
		return NULL;
	}
	struct addr lit;
	if (addr_from_literal(host, port, &lit) == 0) {
		start_with(d, &lit, 1);
		return d;
	}
	if (!dns) {
		log_debug("dial: \"%s\" needs a resolver and none was given", addr);
		dial_free(d);
		*err = -EINVAL;
		return NULL;
	}
	d->state = DIAL_RESOLVING;
	d->req = dns_resolve(dns, host, port, on_resolved, d);
	if (!d->req) {
		dial_free(d);
		*err = -ENOMEM;
		return NULL;
	}
	return d;
}

struct dial *dial_start_addrs(struct loop *loop, const struct addr *addrs, size_t n,
			      unsigned timeout_ms, dial_cb cb, void *arg, int *err)
{
	char target[ADDR_STRLEN];
	if (n)
		addr_str(&addrs[0], target, sizeof(target));
	else
		strcpy(target, "(no address)");
	struct dial *d = dial_alloc(loop, target, timeout_ms, cb, arg);
	if (!d) {
		*err = -ENOMEM;
		return NULL;
	}
	start_with(d, addrs, n);
	return d;
}

void dial_cancel(struct dial *d)
{
	if (!d || d->state == DIAL_DONE)
		return;
	if (d->req) {
		dns_cancel(d->req);
		d->req = NULL;
	}
	stop_attempt(d);
	d->state = DIAL_DONE;
	loop_defer(d->loop, dial_free, d);
}
