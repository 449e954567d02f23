/* loop: timers, I/O watchers, the deferred queue, the stale-event guard,
 * signals. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/loop.h"

struct rec {
	struct loop *loop;
	int order[16];
	int n;
};

static void push(struct rec *r, int v)
{
	if (r->n < 16)
		r->order[r->n++] = v;
}

/* timers: deadline order, FIFO among equal deadlines */
struct tmark {
	struct timer t;
	struct rec *r;
	int id;
	bool stop_loop;
};

static void on_tmark(struct loop *loop, struct timer *t)
{
	struct tmark *m = t->data;
	push(m->r, m->id);
	if (m->stop_loop)
		loop_stop(loop);
}

static void test_timer_order(void **state)
{
	(void)state;
	struct loop *loop;
	assert_int_equal(loop_new(&loop), 0);
	struct rec r = { .loop = loop };
	struct tmark m[5];
	for (int i = 0; i < 5; i++) {
		m[i] = (struct tmark){ .r = &r, .id = i };
		loop_timer_init(&m[i].t, on_tmark, &m[i]);
		assert_false(loop_timer_active(&m[i].t));
	}
	loop_timer_start(loop, &m[0].t, 30);
	loop_timer_start(loop, &m[1].t, 10);
	loop_timer_start(loop, &m[2].t, 10);   /* same deadline as 1: after it */
	loop_timer_start(loop, &m[3].t, 20);
	loop_timer_start(loop, &m[4].t, 5);
	loop_timer_stop(loop, &m[4].t);        /* never fires */
	assert_false(loop_timer_active(&m[4].t));
	loop_timer_start(loop, &m[3].t, 1);    /* re-arming moves it */
	m[0].stop_loop = true;
	uint64_t t0 = loop_now(loop);
	assert_int_equal(loop_run(loop), 0);
	assert_true(loop_now(loop) - t0 >= 30);
	assert_int_equal(r.n, 4);
	assert_int_equal(r.order[0], 3);
	assert_int_equal(r.order[1], 1);
	assert_int_equal(r.order[2], 2);
	assert_int_equal(r.order[3], 0);
	loop_free(loop);
}

/* microsecond timers keep their order among millisecond ones and never
 * fire early */
static void test_timer_us(void **state)
{
	(void)state;
	struct loop *loop;
	assert_int_equal(loop_new(&loop), 0);
	struct rec r = { .loop = loop };
	struct tmark m[3];
	for (int i = 0; i < 3; i++) {
		m[i] = (struct tmark){ .r = &r, .id = i };
		loop_timer_init(&m[i].t, on_tmark, &m[i]);
	}
	loop_timer_start(loop, &m[0].t, 2);          /* 2,000 us */
	loop_timer_start_us(loop, &m[1].t, 1500);
	loop_timer_start_us(loop, &m[2].t, 300);
	m[0].stop_loop = true;
	uint64_t t0 = loop_now_us(loop);
	assert_int_equal(loop_run(loop), 0);
	assert_true(loop_now_us(loop) - t0 >= 2000);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.order[0], 2);
	assert_int_equal(r.order[1], 1);
	assert_int_equal(r.order[2], 0);
	loop_free(loop);
}

/* a timer that re-arms itself with no delay must not starve I/O */
struct spin {
	struct timer t;
	struct io_watcher w;
	int fires;
	int peer;       /* written to on the first fire: I/O arrives mid-spin */
	bool io_seen;
};

static void on_spin_timer(struct loop *loop, struct timer *t)
{
	struct spin *s = t->data;
	s->fires++;
	if (s->fires == 1)
		assert_int_equal(write(s->peer, "x", 1), 1);
	if (s->fires > 100000) {   /* the I/O never came: fail, but stop */
		loop_stop(loop);
		return;
	}
	loop_timer_start(loop, t, 0);
}

static void on_spin_io(struct loop *loop, struct io_watcher *w, unsigned revents)
{
	struct spin *s = w->data;
	s->io_seen = true;
	loop_stop(loop);
}

static void test_zero_timer_does_not_starve_io(void **state)
{
	(void)state;
	struct loop *loop;
	assert_int_equal(loop_new(&loop), 0);
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	struct spin s = { .peer = sv[1] };
	loop_timer_init(&s.t, on_spin_timer, &s);
	loop_io_init(&s.w, on_spin_io, &s);
	assert_int_equal(loop_io_start(loop, &s.w, sv[0], LOOP_READ), 0);
	loop_timer_start(loop, &s.t, 0);
	assert_int_equal(loop_run(loop), 0);
	assert_true(s.io_seen);
	assert_true(s.fires < 10);
	loop_io_stop(loop, &s.w);
	loop_timer_stop(loop, &s.t);
	close(sv[0]);
	close(sv[1]);
	loop_free(loop);
}

/* two readable fds in one batch: the first callback stops (and closes)
 * the second's watcher; the second callback must not run */
struct guard {
	struct io_watcher w[2];
	int fds[2][2];
	int calls[2];
	struct loop *loop;
	struct timer done;
};

static void on_guard_io(struct loop *loop, struct io_watcher *w, unsigned revents)
{
	struct guard *g = w->data;
	int i = w == &g->w[1];
	g->calls[i]++;
	int other = !i;
	if (loop_io_active(&g->w[other])) {
		int fd = g->w[other].fd;
		loop_io_stop(loop, &g->w[other]);
		close(fd);
	}
	char b[8];
	while (read(w->fd, b, sizeof(b)) > 0)
		;
}

static void on_guard_done(struct loop *loop, struct timer *t)
{
	loop_stop(loop);
}

static void test_stale_event_guard(void **state)
{
	(void)state;
	struct loop *loop;
	assert_int_equal(loop_new(&loop), 0);
	struct guard g = { .loop = loop };
	for (int i = 0; i < 2; i++) {
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, g.fds[i]), 0);
		loop_io_init(&g.w[i], on_guard_io, &g);
		assert_int_equal(loop_io_start(loop, &g.w[i], g.fds[i][0], LOOP_READ), 0);
		assert_int_equal(write(g.fds[i][1], "x", 1), 1);
	}
	loop_timer_init(&g.done, on_guard_done, NULL);
	loop_timer_start(loop, &g.done, 50);
	assert_int_equal(loop_run(loop), 0);
	/* exactly one of the two ran, once: the other was stopped in the
	 * same batch before its (already fetched) event was delivered */
	assert_int_equal(g.calls[0] + g.calls[1], 1);
	for (int i = 0; i < 2; i++) {
		if (loop_io_active(&g.w[i])) {
			close(g.w[i].fd);
			loop_io_stop(loop, &g.w[i]);
		}
		close(g.fds[i][1]);
	}
	loop_free(loop);
}

/* deferred calls run after the batch, in order, and may defer more */
static struct rec *g_rec;
static void deferred_b(void *arg) { push(g_rec, (int)(intptr_t)arg); }
static void deferred_a(void *arg)
{
	push(g_rec, (int)(intptr_t)arg);
	loop_defer(g_rec->loop, deferred_b, (void *)(intptr_t)3);
}

static void on_defer_timer(struct loop *loop, struct timer *t)
{
	struct rec *r = t->data;
	loop_defer(loop, deferred_a, (void *)(intptr_t)1);
	loop_defer(loop, deferred_b, (void *)(intptr_t)2);
	push(r, 0);   /* the callback finishes before any deferred call */
	loop_stop(loop);
}

static void test_deferred(void **state)
{
	(void)state;
	struct loop *loop;
	assert_int_equal(loop_new(&loop), 0);
	struct rec r = { .loop = loop };
	g_rec = &r;
	struct timer t;
	loop_timer_init(&t, on_defer_timer, &r);
	loop_timer_start(loop, &t, 0);
	assert_int_equal(loop_run(loop), 0);
	loop_free(loop);   /* runs what is still deferred */
	assert_int_equal(r.n, 4);
	assert_int_equal(r.order[0], 0);
	assert_int_equal(r.order[1], 1);
	assert_int_equal(r.order[2], 2);
	assert_int_equal(r.order[3], 3);
}

/* signals arrive through the loop */
static void on_sig(struct loop *loop, int signo, void *data)
{
	*(int *)data = signo;
	loop_stop(loop);
}

static void test_signals(void **state)
{
	(void)state;
	struct loop *loop;
	assert_int_equal(loop_new(&loop), 0);
	int got = 0;
	static const int sigs[] = { SIGUSR1 };
	assert_int_equal(loop_signals(loop, sigs, 1, on_sig, &got), 0);
	assert_int_equal(raise(SIGUSR1), 0);   /* blocked: delivered through the signalfd */
	assert_int_equal(loop_run(loop), 0);
	assert_int_equal(got, SIGUSR1);
	loop_free(loop);
}

/* io_set changes interest; events 0 keeps the fd registered but quiet */
struct wr {
	struct io_watcher w;
	int writable;
};

static void on_wr(struct loop *loop, struct io_watcher *w, unsigned revents)
{
	struct wr *x = w->data;
	if (revents & LOOP_WRITE)
		x->writable++;
	loop_io_set(loop, w, 0);
}

static void on_stop(struct loop *loop, struct timer *t) { loop_stop(loop); }

static void test_io_set(void **state)
{
	(void)state;
	struct loop *loop;
	assert_int_equal(loop_new(&loop), 0);
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	struct wr x = { 0 };
	loop_io_init(&x.w, on_wr, &x);
	assert_false(loop_io_active(&x.w));
	assert_int_equal(loop_io_start(loop, &x.w, sv[0], LOOP_WRITE), 0);
	assert_true(loop_io_active(&x.w));
	struct timer t;
	loop_timer_init(&t, on_stop, NULL);
	loop_timer_start(loop, &t, 30);
	assert_int_equal(loop_run(loop), 0);
	assert_int_equal(x.writable, 1);   /* then quiet: events 0 */
	assert_int_equal(loop_io_set(loop, &x.w, LOOP_WRITE), 0);
	loop_timer_start(loop, &t, 30);
	assert_int_equal(loop_run(loop), 0);
	assert_int_equal(x.writable, 2);
	loop_io_stop(loop, &x.w);
	assert_false(loop_io_active(&x.w));
	assert_int_equal(loop_io_set(loop, &x.w, LOOP_READ), -EBADF);
	close(sv[0]);
	close(sv[1]);
	loop_free(loop);
}

/* loop_io_forget then close: the close took the fd out of the epoll set,
 * so the same fd number, now another socket, can be watched afresh (ADD
 * would say EEXIST if the old registration were left) and only its new
 * watcher hears of it. */
static void test_io_forget(void **state)
{
	(void)state;
	struct loop *loop;
	assert_int_equal(loop_new(&loop), 0);
	int a[2], b[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, a), 0);
	struct wr old = { 0 }, fresh = { 0 };
	loop_io_init(&old.w, on_wr, &old);
	loop_io_init(&fresh.w, on_wr, &fresh);
	int num = a[0];
	assert_int_equal(loop_io_start(loop, &old.w, num, LOOP_WRITE), 0);
	loop_io_forget(loop, &old.w);
	assert_false(loop_io_active(&old.w));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, b), 0);
	close(num);
	close(a[1]);
	assert_int_equal(dup2(b[0], num), num);   /* the same number, another socket */
	close(b[0]);
	assert_int_equal(loop_io_start(loop, &fresh.w, num, LOOP_WRITE), 0);
	struct timer t;
	loop_timer_init(&t, on_stop, NULL);
	loop_timer_start(loop, &t, 30);
	assert_int_equal(loop_run(loop), 0);
	assert_int_equal(fresh.writable, 1);
	assert_int_equal(old.writable, 0);
	loop_io_stop(loop, &fresh.w);
	close(num);
	close(b[1]);
	loop_free(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timer_order),
		cmocka_unit_test(test_timer_us),
		cmocka_unit_test(test_zero_timer_does_not_starve_io),
		cmocka_unit_test(test_stale_event_guard),
		cmocka_unit_test(test_deferred),
		cmocka_unit_test(test_signals),
		cmocka_unit_test(test_io_set),
		cmocka_unit_test(test_io_forget),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
