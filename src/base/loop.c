/* loop: epoll (level-triggered), timer heap, deferred queue, signalfd.
 * The only file that includes <sys/epoll.h>: a kqueue backend replaces
 * this file alone. */
#include "base/loop.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"

enum { LOOP_MAX_EVENTS = 256 };

struct deferred_item {
	deferred_fn fn;
	void *arg;
};

struct loop {
	int epfd;
	bool stop;
	bool no_pwait2;          /* the kernel lacks epoll_pwait2: ms timeouts */
	uint64_t now_us;         /* monotonic, cached once per iteration */
	uint64_t timer_seq;
	/* min-heap of armed timers */
	struct timer **heap;
	size_t heap_len, heap_cap;
	/* deferred calls: run after each batch */
	struct deferred_item *defer;
	size_t defer_len, defer_cap;
	/* the current batch, so a stopped watcher's pending events are dropped */
	struct epoll_event events[LOOP_MAX_EVENTS];
	int nevents;
	/* signals */
	struct io_watcher sigw;
	signal_cb sig_cb;
	void *sig_data;
};

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n);
	if (!q) {
		fputs("molerat: out of memory\n", stderr);
		abort();
	}
	return q;
}

static uint64_t monotonic_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int loop_new(struct loop **out)
{
	struct loop *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		int e = -errno;
		free(l);
		return e;
	}
	l->now_us = monotonic_us();
	loop_io_init(&l->sigw, NULL, NULL);
	*out = l;
	return 0;
}

static void run_deferred(struct loop *l)
{
	/* a deferred call may defer more: loop until empty */
	while (l->defer_len) {
		size_t n = l->defer_len;
		struct deferred_item *items = l->defer;
		l->defer = NULL;
		l->defer_len = l->defer_cap = 0;
		for (size_t i = 0; i < n; i++)
			items[i].fn(items[i].arg);
		free(items);
	}
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	run_deferred(l);
	if (l->sigw.fd >= 0) {
		close(l->sigw.fd);
	}
	close(l->epfd);
	free(l->heap);
	free(l->defer);
	free(l);
}

uint64_t loop_now(const struct loop *l) { return l->now_us / 1000u; }
uint64_t loop_now_us(const struct loop *l) { return l->now_us; }
void loop_update_time(struct loop *l) { l->now_us = monotonic_us(); }
void loop_stop(struct loop *l) { l->stop = true; }

void loop_defer(struct loop *l, deferred_fn fn, void *arg)
{
	if (l->defer_len == l->defer_cap) {
		l->defer_cap = l->defer_cap ? l->defer_cap * 2 : 16;
		l->defer = xrealloc(l->defer, l->defer_cap * sizeof(*l->defer));
	}
	l->defer[l->defer_len++] = (struct deferred_item){ fn, arg };
}

/* ---- I/O watchers ---- */

static uint32_t to_epoll(unsigned ev)
{
	return ((ev & LOOP_READ) ? EPOLLIN | EPOLLRDHUP : 0) | ((ev & LOOP_WRITE) ? EPOLLOUT : 0) |
	       ((ev & LOOP_PEER_END) ? EPOLLRDHUP : 0);
}

void loop_io_init(struct io_watcher *w, io_cb cb, void *data)
{
	w->fd = -1;
	w->events = 0;
	w->cb = cb;
	w->data = data;
}

int loop_io_start(struct loop *l, struct io_watcher *w, int fd, unsigned events)
{
	struct epoll_event ev = { .events = to_epoll(events), .data.ptr = w };
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
		return -errno;
	w->fd = fd;
	w->events = events & (LOOP_READ | LOOP_WRITE);
	return 0;
}

int loop_io_set(struct loop *l, struct io_watcher *w, unsigned events)
{
	events &= LOOP_READ | LOOP_WRITE;
	if (w->fd < 0)
		return -EBADF;
	if (events == w->events)
		return 0;
	struct epoll_event ev = { .events = to_epoll(events), .data.ptr = w };
	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, w->fd, &ev) != 0)
		return -errno;
	w->events = events;
	return 0;
}

static void io_unwatch(struct loop *l, struct io_watcher *w, bool del)
{
	if (w->fd < 0)
		return;
	if (del)
		epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	w->fd = -1;
	w->events = 0;
	/* stale-event guard: forget events for w still in this batch */
	for (int i = 0; i < l->nevents; i++) {
		if (l->events[i].data.ptr == w)
			l->events[i].data.ptr = NULL;
	}
}

void loop_io_stop(struct loop *l, struct io_watcher *w)
{
	io_unwatch(l, w, true);
}

void loop_io_forget(struct loop *l, struct io_watcher *w)
{
	/* the close that follows takes the fd out of the epoll set */
	io_unwatch(l, w, false);
}

/* ---- timers: binary min-heap on (deadline, seq) ---- */

static bool timer_less(const struct timer *a, const struct timer *b)
{
	return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static void heap_set(struct loop *l, size_t i, struct timer *t)
{
	l->heap[i] = t;
	t->heap_idx = i;
}

static void heap_up(struct loop *l, size_t i)
{
	struct timer *t = l->heap[i];
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!timer_less(t, l->heap[p]))
			break;
		heap_set(l, i, l->heap[p]);
		i = p;
	}
	heap_set(l, i, t);
}

static void heap_down(struct loop *l, size_t i)
{
	struct timer *t = l->heap[i];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= l->heap_len)
			break;
		if (c + 1 < l->heap_len && timer_less(l->heap[c + 1], l->heap[c]))
			c++;
		if (!timer_less(l->heap[c], t))
			break;
		heap_set(l, i, l->heap[c]);
		i = c;
	}
	heap_set(l, i, t);
}

void loop_timer_init(struct timer *t, timer_cb cb, void *data)
{
	t->deadline = 0;
	t->seq = 0;
	t->heap_idx = (size_t)-1;
	t->cb = cb;
	t->data = data;
}

void loop_timer_stop(struct loop *l, struct timer *t)
{
	size_t i = t->heap_idx;
	if (i == (size_t)-1)
		return;
	t->heap_idx = (size_t)-1;
	struct timer *last = l->heap[--l->heap_len];
	if (i == l->heap_len)
		return;
	heap_set(l, i, last);
	if (i > 0 && timer_less(last, l->heap[(i - 1) / 2]))
		heap_up(l, i);
	else
		heap_down(l, i);
}

void loop_timer_start(struct loop *l, struct timer *t, uint64_t delay_ms)
{
	loop_timer_start_us(l, t, delay_ms > UINT64_MAX / 1000u ? UINT64_MAX : delay_ms * 1000u);
}

void loop_timer_start_us(struct loop *l, struct timer *t, uint64_t delay_us)
{
	loop_timer_stop(l, t);
	if (l->heap_len == l->heap_cap) {
		l->heap_cap = l->heap_cap ? l->heap_cap * 2 : 64;
		l->heap = xrealloc(l->heap, l->heap_cap * sizeof(*l->heap));
	}
	t->deadline = delay_us > UINT64_MAX - l->now_us ? UINT64_MAX : l->now_us + delay_us;
	t->seq = l->timer_seq++;
	heap_set(l, l->heap_len, t);
	heap_up(l, l->heap_len++);
}

/* Runs the timers due now that were armed before this pass: one re-armed
 * with no delay from its own callback waits for the next iteration, so
 * I/O is never starved. */
static void run_timers(struct loop *l)
{
	uint64_t seq_limit = l->timer_seq;
	while (l->heap_len && l->heap[0]->deadline <= l->now_us && l->heap[0]->seq < seq_limit && !l->stop) {
		struct timer *t = l->heap[0];
		loop_timer_stop(l, t);
		t->cb(l, t);
	}
}

/* How long epoll may wait, in us: -1 for no timer, at most 60 s. */
static int64_t next_timeout_us(const struct loop *l)
{
	if (l->defer_len)
		return 0;
	if (!l->heap_len)
		return -1;
	uint64_t d = l->heap[0]->deadline;
	if (d <= l->now_us)
		return 0;
	uint64_t us = d - l->now_us;
	return us > 60000000u ? 60000000 : (int64_t)us;
}

/* epoll_pwait2 keeps sub-millisecond timers precise; without it (Linux
 * before 5.11) the wait is rounded up to whole milliseconds. */
static int wait_events(struct loop *l, int64_t timeout_us)
{
	if (!l->no_pwait2) {
		struct timespec ts = { .tv_sec = timeout_us / 1000000, .tv_nsec = (timeout_us % 1000000) * 1000 };
		int n = epoll_pwait2(l->epfd, l->events, LOOP_MAX_EVENTS, timeout_us < 0 ? NULL : &ts, NULL);
		if (n >= 0 || errno != ENOSYS)
			return n;
		l->no_pwait2 = true;
	}
	int ms = timeout_us < 0 ? -1 : (int)((timeout_us + 999) / 1000);
	return epoll_wait(l->epfd, l->events, LOOP_MAX_EVENTS, ms);
}

/* ---- signals ---- */

static void on_signal(struct loop *l, struct io_watcher *w, unsigned revents)
{
	struct signalfd_siginfo si;
	while (read(w->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (l->sig_cb)
			l->sig_cb(l, (int)si.ssi_signo, l->sig_data);
	}
}

int loop_signals(struct loop *l, const int *signos, size_t n, signal_cb cb, void *data)
{
	sigset_t set;
	sigemptyset(&set);
	for (size_t i = 0; i < n; i++)
		sigaddset(&set, signos[i]);
	if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
		return -errno;
	int fd = signalfd(l->sigw.fd, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	l->sig_cb = cb;
	l->sig_data = data;
	if (l->sigw.fd < 0) {
		loop_io_init(&l->sigw, on_signal, NULL);
		int r = loop_io_start(l, &l->sigw, fd, LOOP_READ);
		if (r < 0) {
			close(fd);
			return r;
		}
	}
	return 0;
}

/* ---- the loop ---- */

int loop_run(struct loop *l)
{
	l->stop = false;
	while (!l->stop) {
		int n = wait_events(l, next_timeout_us(l));
		l->now_us = monotonic_us();
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		l->nevents = n;
		for (int i = 0; i < n && !l->stop; i++) {
			struct io_watcher *w = l->events[i].data.ptr;
			if (!w || w->fd < 0)
				continue;
			uint32_t e = l->events[i].events;
			unsigned rev = 0;
			if (e & (EPOLLIN | EPOLLRDHUP))
				rev |= LOOP_READ;
			if (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
				rev |= LOOP_PEER_END;
			if (e & EPOLLOUT)
				rev |= LOOP_WRITE;
			if (e & (EPOLLERR | EPOLLHUP))
				rev |= LOOP_ERROR | LOOP_READ | LOOP_WRITE;
			w->cb(l, w, rev);
		}
		l->nevents = 0;
		run_deferred(l);
		run_timers(l);
		run_deferred(l);
	}
	return 0;
}
