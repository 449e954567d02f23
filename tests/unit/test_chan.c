/* chan: fixed-size reads, bounded writes, EOF and stray bytes, detach and
 * close from inside callbacks. Over AF_UNIX socket pairs and xport_tcp. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/err.h"
#include "base/loop.h"
#include "role/chan.h"
#include "xport/xport.h"

struct fix {
	struct loop *loop;
	int peer;               /* the other end, blocking */
	struct chan *c;
	struct timer guard;     /* ends a test that hangs */
	/* what happened */
	bool opened;
	int msgs;
	uint8_t msg[CHAN_MSG_MAX];
	size_t msg_len;
	int drains;
	int err;
	bool errored;
	int errors;
	/* what to do in callbacks */
	size_t next_expect;     /* after a message: expect this many (0: nothing) */
	bool close_on_msg;
	bool stop_on_msg;
	bool keep_on_error;     /* on_error leaves the chan open */
};

static void on_guard(struct loop *loop, struct timer *t) { loop_stop(loop); }

static void cb_open(struct chan *c, void *owner)
{
	struct fix *f = owner;
	f->opened = true;
}

static void cb_msg(struct chan *c, void *owner, const uint8_t *msg, size_t len)
{
	struct fix *f = owner;
	f->msgs++;
	memcpy(f->msg, msg, len);
	f->msg_len = len;
	if (f->close_on_msg) {
		chan_close(c);
		f->c = NULL;
		loop_stop(f->loop);
		return;
	}
	if (f->next_expect)
		chan_expect(c, f->next_expect);
	if (f->stop_on_msg)
		loop_stop(f->loop);
}

static void cb_drain(struct chan *c, void *owner)
{
	struct fix *f = owner;
	f->drains++;
}

static void cb_error(struct chan *c, void *owner, int err)
{
	struct fix *f = owner;
	f->errored = true;
	f->errors++;
	f->err = err;
	if (f->keep_on_error)
		return;
	chan_close(c);
	f->c = NULL;
	loop_stop(f->loop);
}

static const struct chan_cbs cbs = { cb_open, cb_msg, cb_drain, cb_error };

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	assert_int_equal(loop_new(&f->loop), 0);
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	int fl = fcntl(sv[0], F_GETFL);
	assert_int_equal(fcntl(sv[0], F_SETFL, fl | O_NONBLOCK), 0);
	f->peer = sv[1];
	struct xport *x = xport_tcp_new(sv[0]);
	assert_non_null(x);
	f->c = chan_new(f->loop, x, &cbs, f);
	assert_non_null(f->c);
	loop_timer_init(&f->guard, on_guard, NULL);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	if (f->c)
		chan_close(f->c);
	loop_timer_stop(f->loop, &f->guard);
	loop_free(f->loop);
	close(f->peer);
	free(f);
	return 0;
}

static void run(struct fix *f, unsigned ms)
{
	loop_timer_start(f->loop, &f->guard, ms);
	assert_int_equal(loop_run(f->loop), 0);
	loop_timer_stop(f->loop, &f->guard);
}

static void test_open_and_exact_message(void **state)
{
	struct fix *f = *state;
	chan_expect(f->c, 37);
	f->stop_on_msg = true;
	/* the 37 bytes arrive in three pieces, with the next message's first
	 * bytes behind them: exactly 37 are delivered */
	uint8_t buf[41];
	for (int i = 0; i < 41; i++)
		buf[i] = (uint8_t)i;
	assert_int_equal(write(f->peer, buf, 10), 10);
	run(f, 50);
	assert_true(f->opened);
	assert_int_equal(f->msgs, 0);
	assert_int_equal(write(f->peer, buf + 10, 20), 20);
	assert_int_equal(write(f->peer, buf + 30, 11), 11);
	run(f, 2000);
	assert_int_equal(f->msgs, 1);
	assert_int_equal(f->msg_len, 37);
	assert_memory_equal(f->msg, buf, 37);
	/* the next 4 are still there for the next expect */
	chan_expect(f->c, 4);
	run(f, 2000);
	assert_int_equal(f->msgs, 2);
	assert_int_equal(f->msg_len, 4);
	assert_memory_equal(f->msg, buf + 37, 4);
}

static void test_send_and_drain(void **state)
{
	struct fix *f = *state;
	chan_expect(f->c, 0);
	run(f, 20);   /* open */
	assert_int_equal(chan_send(f->c, "abcd", 4), 0);
	assert_int_equal(chan_send(f->c, "efgh", 4), 0);
	char got[8];
	size_t have = 0;
	while (have < 8) {
		ssize_t n = read(f->peer, got + have, sizeof(got) - have);
		assert_true(n > 0);
		have += (size_t)n;
	}
	assert_memory_equal(got, "abcdefgh", 8);
	assert_int_equal(chan_queued(f->c), 0);
}

static void test_send_bound(void **state)
{
	struct fix *f = *state;
	chan_expect(f->c, 0);
	run(f, 20);
	/* the peer reads nothing: the socket buffer fills, then the queue,
	 * then chan_send says MR_ELIMIT instead of growing */
	uint8_t block[1024];
	memset(block, 7, sizeof(block));
	int r = 0;
	size_t total = 0;
	for (int i = 0; i < 100000 && r == 0; i++) {
		r = chan_send(f->c, block, sizeof(block));
		if (r == 0)
			total += sizeof(block);
	}
	assert_int_equal(r, MR_ELIMIT);
	assert_true(chan_queued(f->c) <= CHAN_OUT_MAX);
	assert_true(total > 0);
	/* once the peer reads, the queue drains and on_drain fires */
	uint8_t sink[65536];
	size_t got = 0;
	while (got < total) {
		ssize_t n = read(f->peer, sink, sizeof(sink));
		assert_true(n > 0);
		got += (size_t)n;
		loop_timer_start(f->loop, &f->guard, 1);
		loop_run(f->loop);
	}
	assert_int_equal(got, total);
	assert_int_equal(chan_queued(f->c), 0);
	assert_true(f->drains >= 1);
}

static void test_eof_mid_message(void **state)
{
	struct fix *f = *state;
	chan_expect(f->c, 37);
	assert_int_equal(write(f->peer, "0123456789", 10), 10);
	shutdown(f->peer, SHUT_WR);
	run(f, 2000);
	assert_true(f->errored);
	assert_int_equal(f->err, MR_EEOF);
	assert_int_equal(f->msgs, 0);
}

/* An owner that keeps the chan after on_error hears of the error once: the
 * chan watches for nothing any more (no second report, no busy loop on the
 * socket that stays readable at EOF), also when the error came up inside
 * the chan's own event handling, which re-registers at its end. */
static void test_error_reported_once(void **state)
{
	struct fix *f = *state;
	f->keep_on_error = true;
	chan_expect(f->c, 37);
	assert_int_equal(write(f->peer, "0123", 4), 4);
	shutdown(f->peer, SHUT_WR);
	run(f, 100);
	assert_int_equal(f->errors, 1);
	assert_int_equal(f->err, MR_EEOF);
	/* nor after the owner asks for more; and the loop sleeps meanwhile */
	chan_expect(f->c, 4);
	struct timespec t0, t1;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
	run(f, 200);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
	double cpu_ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	assert_true(cpu_ms < 100);
	assert_int_equal(f->errors, 1);
}

static void test_stray_bytes(void **state)
{
	struct fix *f = *state;
	chan_expect(f->c, 0);   /* nothing expected: bytes are a protocol error */
	assert_int_equal(write(f->peer, "?", 1), 1);
	run(f, 2000);
	assert_true(f->errored);
	assert_int_equal(f->err, MR_EPROTO_UNEXPECTED);
}

static void test_close_inside_callback(void **state)
{
	struct fix *f = *state;
	chan_expect(f->c, 4);
	f->close_on_msg = true;
	assert_int_equal(write(f->peer, "abcdefgh", 8), 8);   /* a second message waits */
	run(f, 2000);
	assert_int_equal(f->msgs, 1);   /* nothing after the close */
	assert_null(f->c);
	/* the peer sees the close */
	char b[8];
	ssize_t n;
	while ((n = read(f->peer, b, sizeof(b))) > 0)
		;
	assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
}

static void test_detach(void **state)
{
	struct fix *f = *state;
	chan_expect(f->c, 4);
	f->stop_on_msg = true;
	assert_int_equal(write(f->peer, "abcdXYZ", 7), 7);
	run(f, 2000);
	assert_int_equal(f->msgs, 1);
	struct xport *x = chan_detach(f->c);
	f->c = NULL;
	assert_non_null(x);
	/* the rest is in the socket for the new owner, untouched */
	char b[8];
	ssize_t n = xport_read(x, b, sizeof(b));
	assert_int_equal(n, 3);
	assert_memory_equal(b, "XYZ", 3);
	/* and the loop does not call the chan any more */
	assert_int_equal(write(f->peer, "more", 4), 4);
	run(f, 30);
	assert_int_equal(f->msgs, 1);
	assert_false(f->errored);
	xport_close(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_and_exact_message, setup, teardown),
		cmocka_unit_test_setup_teardown(test_send_and_drain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_send_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eof_mid_message, setup, teardown),
		cmocka_unit_test_setup_teardown(test_error_reported_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stray_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_inside_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_detach, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
