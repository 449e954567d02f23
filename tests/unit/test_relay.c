/* Unit tests for the relay: a real loop (loop.c), real sockets (loopback TCP
 * and AF_UNIX stream pairs), peers driven by threads with poll(2). Every
 * data test runs in both modes: RELAY_AUTO (splice) and RELAY_COPY.
 *
 * Topology of one relay under test:
 *
 *   peer A  <-- pair 1 -->  [xport a | relay | xport b]  <-- pair 2 -->  peer B
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <dirent.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "base/loop.h"
#include "plane/relay.h"
#include "xport/xport.h"

#include "testutil.h"

#if defined(__SANITIZE_ADDRESS__)
/* from libasan (<sanitizer/allocator_interface.h> is not always installed) */
size_t __sanitizer_get_current_allocated_bytes(void);
#define HEAP_IN_USE() __sanitizer_get_current_allocated_bytes()
#else
#define HEAP_IN_USE() mallinfo2().uordblks
#endif

enum { MiB = 1024 * 1024 };
enum { TRANSPORT_TCP, TRANSPORT_UNIX };

/* ---- sockets ---- */

/* A connected pair, both non-blocking: loopback TCP or AF_UNIX. bufsz > 0
 * pins the socket buffers (no autotuning). */
static void make_pair(int kind, int fds[2], int bufsz)
{
	if (kind == TRANSPORT_UNIX) {
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
					    fds), 0);
		if (bufsz) {
			set_bufs(fds[0], bufsz);
			set_bufs(fds[1], bufsz);
		}
		return;
	}
	tcp_pair_bufs(fds, bufsz);
}

/* Open pipe fds of this process: the pool keeps returned pipes, so after a
 * splice relay there are some, after copy relays none. */
static int count_pipe_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		char path[300], target[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		ssize_t l = readlink(path, target, sizeof(target) - 1);
		if (l > 0) {
			target[l] = '\0';
			if (strncmp(target, "pipe:", 5) == 0)
				n++;
		}
	}
	closedir(d);
	return n;
}

/* ---- the deterministic byte stream peers send ---- */

struct pattern {
	uint64_t s;
};

static void pattern_fill(struct pattern *p, unsigned char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		p->s = p->s * 6364136223846793005ull + 1442695040888963407ull;
		buf[i] = (unsigned char)(p->s >> 56);
	}
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- a peer: a thread that sends and receives at the same time ---- */

struct peer {
	/* setup */
	int fd;
	size_t send_len;
	uint64_t seed;
	bool shut_after_send;        /* shutdown(SHUT_WR) once everything is sent */
	bool recv_eof_before_send;   /* half-close test: read to EOF, then send */
	const atomic_bool *done_flag; /* read when EOF arrives (half-close test) */
	atomic_bool recv_go;         /* false: do not read until set (backpressure) */
	/* results */
	atomic_size_t sent;
	size_t received;
	bool got_eof;
	bool done_before_eof;
	int err;                     /* 0, an errno, or ETIMEDOUT */
	unsigned char sent_md[32], recv_md[32];
	pthread_t th;
};

static void *peer_main(void *arg)
{
	struct peer *p = arg;
	EVP_MD_CTX *tx = EVP_MD_CTX_new(), *rx = EVP_MD_CTX_new();
	EVP_DigestInit_ex(tx, EVP_sha256(), NULL);
	EVP_DigestInit_ex(rx, EVP_sha256(), NULL);
	struct pattern pat = { p->seed };
	static _Thread_local unsigned char out[65536], in[65536];
	size_t out_len = 0, out_off = 0, queued = 0;
	bool shut = false;
	uint64_t deadline = now_ms() + 60000;

	for (;;) {
		bool may_send = !p->recv_eof_before_send || p->got_eof;
		bool to_send = queued < p->send_len || out_off < out_len;
		if (may_send && !to_send && p->shut_after_send && !shut) {
			shutdown(p->fd, SHUT_WR);
			shut = true;
		}
		if (p->got_eof && !(may_send && to_send))
			break; /* everything sent and the other side ended */
		struct pollfd pfd = { .fd = p->fd, .events = 0 };
		if (!p->got_eof && atomic_load(&p->recv_go))
			pfd.events |= POLLIN;
		if (may_send && to_send)
			pfd.events |= POLLOUT;
		int pr = poll(&pfd, 1, 10); /* no events: a 10 ms nap */
		if (now_ms() > deadline) {
			p->err = ETIMEDOUT;
			break;
		}
		if (pr < 0 && errno != EINTR) {
			p->err = errno;
			break;
		}
		if ((pfd.events & POLLIN) && (pfd.revents & (POLLIN | POLLHUP | POLLERR))) {
			ssize_t n = recv(p->fd, in, sizeof(in), 0);
			if (n > 0) {
				EVP_DigestUpdate(rx, in, (size_t)n);
				p->received += (size_t)n;
			} else if (n == 0) {
				p->got_eof = true;
				if (p->done_flag && atomic_load(p->done_flag))
					p->done_before_eof = true;
			} else if (errno != EAGAIN) {
				p->err = errno;
				break;
			}
		}
		if ((pfd.events & POLLOUT) && (pfd.revents & (POLLOUT | POLLERR | POLLHUP))) {
			if (out_off == out_len) {
				size_t n = p->send_len - queued;
				if (n > sizeof(out))
					n = sizeof(out);
				pattern_fill(&pat, out, n);
				EVP_DigestUpdate(tx, out, n);
				queued += n;
				out_len = n;
				out_off = 0;
			}
			ssize_t n = send(p->fd, out + out_off, out_len - out_off, MSG_NOSIGNAL);
			if (n > 0) {
				out_off += (size_t)n;
				atomic_fetch_add(&p->sent, (size_t)n);
			} else if (n < 0 && errno != EAGAIN) {
				p->err = errno;
				break;
			}
		}
	}
	EVP_DigestFinal_ex(tx, p->sent_md, NULL);
	EVP_DigestFinal_ex(rx, p->recv_md, NULL);
	EVP_MD_CTX_free(tx);
	EVP_MD_CTX_free(rx);
	return NULL;
}

static void peer_init(struct peer *p, int fd, size_t send_len, uint64_t seed)
{
	memset(p, 0, sizeof(*p));
	p->fd = fd;
	p->send_len = send_len;
	p->seed = seed;
	p->shut_after_send = true;
	atomic_init(&p->recv_go, true);
	atomic_init(&p->sent, 0);
}

static void peer_start(struct peer *p)
{
	assert_int_equal(pthread_create(&p->th, NULL, peer_main, p), 0);
}

static void peer_join(struct peer *p)
{
	assert_int_equal(pthread_join(p->th, NULL), 0);
}

/* ---- the relay under test ---- */

struct fixture {
	struct loop *loop;
	struct pipe_pool *pipes;
	struct relay_counters *counters;
	struct timer guard;
	bool timed_out;
	unsigned done_calls;
	int done_err;
	uint64_t done_bytes[2];
	atomic_bool done_flag;
	bool stop_on_done;
};

static void on_done(void *arg, int err, const uint64_t bytes[2])
{
	struct fixture *f = arg;
	f->done_calls++;
	f->done_err = err;
	f->done_bytes[0] = bytes[0];
	f->done_bytes[1] = bytes[1];
	atomic_store(&f->done_flag, true);
	if (f->stop_on_done)
		loop_stop(f->loop);
}

static void on_guard(struct loop *loop, struct timer *t)
{
	struct fixture *f = t->data;
	f->timed_out = true;
	loop_stop(loop);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(loop_new(&f->loop), 0);
	f->pipes = pipe_pool_new(8);
	assert_non_null(f->pipes);
	f->counters = relay_counters_new();
	assert_non_null(f->counters);
	loop_timer_init(&f->guard, on_guard, f);
	atomic_init(&f->done_flag, false);
	f->stop_on_done = true;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	loop_timer_stop(f->loop, &f->guard);
	assert_int_equal(pipe_pool_in_use(f->pipes), 0);
	pipe_pool_free(f->pipes);
	loop_free(f->loop);
	assert_int_equal(f->counters->refs, 1);
	relay_counters_unref(f->counters);
	free(f);
	return 0;
}

static struct relay_cfg cfg_for(struct fixture *f, enum relay_mode mode)
{
	struct relay_cfg c = {
		.loop = f->loop,
		.pipes = f->pipes,
		.mode = mode,
		.counters = f->counters,
		.done = on_done,
		.arg = f,
		.label = "test",
	};
	return c;
}

/* Runs the loop until done() or ms milliseconds. */
static void fx_run(struct fixture *f, uint64_t ms)
{
	f->timed_out = false;
	loop_update_time(f->loop);
	loop_timer_start(f->loop, &f->guard, ms);
	assert_int_equal(loop_run(f->loop), 0);
	loop_timer_stop(f->loop, &f->guard);
}

/* Builds peer A <-> relay <-> peer B; returns the test ends. */
static void start_relay(struct fixture *f, int kind, enum relay_mode mode, int bufsz,
			int *pa, int *pb)
{
	int p1[2], p2[2];
	make_pair(kind, p1, bufsz);
	make_pair(kind, p2, bufsz);
	struct xport *a = xport_tcp_new(p1[1]);
	struct xport *b = xport_tcp_new(p2[0]);
	assert_non_null(a);
	assert_non_null(b);
	struct relay_cfg c = cfg_for(f, mode);
	assert_int_equal(relay_start(&c, a, b), 0);
	*pa = p1[0];
	*pb = p2[1];
}

/* Runs a peer at each test end (na bytes from fa, nb from fb, content
 * from seed) until the relay ends or ms pass, and checks that both streams
 * arrived whole. A and B are left for further checks. */
static void exchange(struct fixture *f, int fa, int fb, size_t na, size_t nb, uint64_t seed, uint64_t ms,
		     struct peer *A, struct peer *B)
{
	peer_init(A, fa, na, seed);
	peer_init(B, fb, nb, seed + 1);
	peer_start(A);
	peer_start(B);
	fx_run(f, ms);
	peer_join(A);
	peer_join(B);
	assert_false(f->timed_out);
	assert_int_equal(f->done_err, 0);
	assert_memory_equal(A->sent_md, B->recv_md, 32);
	assert_memory_equal(B->sent_md, A->recv_md, 32);
}

/* ---- bulk: 16 MiB each way at the same time ---- */

static void bulk(void **state, int kind, enum relay_mode mode)
{
	struct fixture *f = *state;
	int fa, fb;
	int pipes_before = count_pipe_fds();
	start_relay(f, kind, mode, 0, &fa, &fb);
	assert_int_equal(f->counters->relays_active, 1);
	assert_int_equal(f->counters->relays_total, 1);

	struct peer A, B;
	peer_init(&A, fa, 16 * MiB, 1);
	peer_init(&B, fb, 16 * MiB + 12345, 2);
	peer_start(&A);
	peer_start(&B);
	fx_run(f, 120000);
	peer_join(&A);
	peer_join(&B);
	assert_false(f->timed_out);

	assert_int_equal(A.err, 0);
	assert_int_equal(B.err, 0);
	assert_int_equal(f->done_calls, 1);
	assert_int_equal(f->done_err, 0);
	assert_int_equal(f->done_bytes[0], 16 * MiB);
	assert_int_equal(f->done_bytes[1], 16 * MiB + 12345);
	assert_int_equal(B.received, 16 * MiB);
	assert_int_equal(A.received, 16 * MiB + 12345);
	assert_true(A.got_eof);
	assert_true(B.got_eof);
	assert_memory_equal(A.sent_md, B.recv_md, 32);
	assert_memory_equal(B.sent_md, A.recv_md, 32);
	assert_int_equal(f->counters->bytes[0], 16 * MiB);
	assert_int_equal(f->counters->bytes[1], 16 * MiB + 12345);
	assert_int_equal(f->counters->relays_active, 0);
	assert_int_equal(f->counters->relays_total, 1);
	assert_int_equal(f->counters->bytes_buffered, 0);
	assert_int_equal(pipe_pool_in_use(f->pipes), 0);
	/* splice really was used (the pool kept the pipes), copy used none */
	if (mode == RELAY_AUTO)
		assert_true(count_pipe_fds() >= pipes_before + 2);
	else
		assert_int_equal(count_pipe_fds(), pipes_before);
	close(fa);
	close(fb);
}

/* Small messages in auto mode are copied (splice pays off only for bulk):
 * no pipe is ever made. */
static void test_small_messages_are_copied(void **state)
{
	struct fixture *f = *state;
	int fa, fb;
	int pipes_before = count_pipe_fds();
	start_relay(f, TRANSPORT_TCP, RELAY_AUTO, 0, &fa, &fb);
	struct peer A, B;
	exchange(f, fa, fb, 3000, 1500, 11, 30000, &A, &B);
	assert_int_equal(count_pipe_fds(), pipes_before);
	close(fa);
	close(fb);
}

/* Bytes waiting on an end when the relay starts are moved before
 * relay_start returns, without a loop iteration; but a side named in
 * idle_at_start is not read then: what waits there crosses on the loop's
 * first report. */
static void waiting_at_start(void **state, unsigned idle_at_start)
{
	struct fixture *f = *state;
	int p1[2], p2[2];
	make_pair(TRANSPORT_TCP, p1, 0);
	make_pair(TRANSPORT_TCP, p2, 0);
	assert_int_equal(write(p1[0], "hello", 5), 5);
	assert_int_equal(write(p2[1], "world!", 6), 6);
	usleep(10000); /* loopback delivery */
	struct relay_cfg c = cfg_for(f, RELAY_AUTO);
	c.idle_at_start = idle_at_start;
	assert_int_equal(relay_start(&c, xport_tcp_new(p1[1]), xport_tcp_new(p2[0])), 0);
	usleep(10000);
	char got[16];
	assert_int_equal(recv(p2[1], got, sizeof(got), MSG_DONTWAIT), 5);
	assert_memory_equal(got, "hello", 5);
	if (idle_at_start & RELAY_SIDE_B) {
		assert_int_equal(recv(p1[0], got, sizeof(got), MSG_DONTWAIT), -1);
		assert_int_equal(errno, EAGAIN);
		f->stop_on_done = false;
		fx_run(f, 50);
		f->stop_on_done = true;
	}
	assert_int_equal(recv(p1[0], got, sizeof(got), MSG_DONTWAIT), 6);
	assert_memory_equal(got, "world!", 6);
	close(p1[0]);
	close(p2[1]);
	fx_run(f, 5000); /* both ends closed: the relay ends */
	assert_int_equal(f->done_calls, 1);
}

static void test_waiting_bytes_move_at_start(void **state) { waiting_at_start(state, 0); }
static void test_idle_at_start_waits_for_loop(void **state) { waiting_at_start(state, RELAY_SIDE_B); }

/* A plain tcp xport that counts its reads, to see the relay's syscalls. */
struct counting_xport {
	struct xport base;
	struct xport *inner;
	unsigned reads, eagain;
};

static ssize_t cnt_read(struct xport *x, void *buf, size_t len)
{
	struct counting_xport *c = (struct counting_xport *)x;
	ssize_t n = xport_read(c->inner, buf, len);
	c->reads++;
	c->eagain += n == -EAGAIN;
	return n;
}
static ssize_t cnt_write(struct xport *x, const void *b, size_t n)
{
	return xport_write(((struct counting_xport *)x)->inner, b, n);
}
static int cnt_shutdown(struct xport *x) { return xport_shutdown_wr(((struct counting_xport *)x)->inner); }
static unsigned cnt_want(struct xport *x) { return xport_want(((struct counting_xport *)x)->inner); }
static void cnt_close(struct xport *x)
{
	struct counting_xport *c = (struct counting_xport *)x;
	xport_close(c->inner);
	c->inner = NULL;
}

static const struct xport_ops cnt_ops = {
	.name = "counting", .read = cnt_read, .write = cnt_write, .shutdown_wr = cnt_shutdown,
	.want = cnt_want, .close = cnt_close,
};

/* A read from a plain socket that returns less than it asked for emptied
 * the socket, so the relay waits for the loop instead of reading again just
 * to be told EAGAIN: each small message costs one read. */
static void test_short_read_waits_for_loop(void **state)
{
	struct fixture *f = *state;
	int p1[2], p2[2];
	make_pair(TRANSPORT_TCP, p1, 0);
	make_pair(TRANSPORT_TCP, p2, 0);
	struct counting_xport cx = { .inner = xport_tcp_new(p1[1]) };
	assert_non_null(cx.inner);
	cx.base = (struct xport){ .ops = &cnt_ops, .fd = p1[1], .splice_fd = p1[1],
				  .flags = XPORT_F_SHORT_IO_EXACT };
	assert_int_equal(write(p1[0], "one", 3), 3);
	usleep(10000);
	struct relay_cfg c = cfg_for(f, RELAY_COPY);
	c.idle_at_start = RELAY_SIDE_B;
	assert_int_equal(relay_start(&c, &cx.base, xport_tcp_new(p2[0])), 0);
	assert_int_equal(cx.reads, 1);
	assert_int_equal(cx.eagain, 0);
	f->stop_on_done = false;
	char got[16];
	for (int i = 0; i < 3; i++) {
		assert_int_equal(write(p1[0], "more", 4), 4);
		usleep(10000);
		fx_run(f, 20);
	}
	assert_int_equal(recv(p2[1], got, sizeof(got), MSG_DONTWAIT), 15);
	assert_memory_equal(got, "onemoremoremore", 15);
	assert_int_equal(cx.reads, 4);
	assert_int_equal(cx.eagain, 0);
	close(p1[0]);
	close(p2[1]);
	f->stop_on_done = true;
	fx_run(f, 5000);
	assert_int_equal(f->done_calls, 1);
	assert_null(cx.inner);
}

static void test_bulk_tcp_splice(void **state) { bulk(state, TRANSPORT_TCP, RELAY_AUTO); }
static void test_bulk_tcp_copy(void **state) { bulk(state, TRANSPORT_TCP, RELAY_COPY); }
static void test_bulk_unix_splice(void **state) { bulk(state, TRANSPORT_UNIX, RELAY_AUTO); }
static void test_bulk_unix_copy(void **state) { bulk(state, TRANSPORT_UNIX, RELAY_COPY); }

/* ---- half-close ---- */

static void half_close(void **state, int kind, enum relay_mode mode)
{
	struct fixture *f = *state;
	int fa, fb;
	start_relay(f, kind, mode, 0, &fa, &fb);
	/* A sends a request and shuts its write side; B reads to EOF, then
	 * answers with 3 MiB and shuts. A must get the whole answer, and
	 * done() must not have fired when B saw EOF. */
	struct peer A, B;
	peer_init(&A, fa, 1000, 3);
	peer_init(&B, fb, 3 * MiB + 1, 4);
	B.recv_eof_before_send = true;
	B.done_flag = &f->done_flag;
	peer_start(&A);
	peer_start(&B);
	fx_run(f, 60000);
	peer_join(&A);
	peer_join(&B);
	assert_false(f->timed_out);
	assert_int_equal(A.err, 0);
	assert_int_equal(B.err, 0);
	assert_true(B.got_eof);
	assert_false(B.done_before_eof);
	assert_int_equal(B.received, 1000);
	assert_int_equal(A.received, 3 * MiB + 1);
	assert_memory_equal(A.sent_md, B.recv_md, 32);
	assert_memory_equal(B.sent_md, A.recv_md, 32);
	assert_int_equal(f->done_calls, 1);
	assert_int_equal(f->done_err, 0);
	assert_int_equal(f->done_bytes[0], 1000);
	assert_int_equal(f->done_bytes[1], 3 * MiB + 1);
	close(fa);
	close(fb);
}

static void test_half_close_tcp_splice(void **state) { half_close(state, TRANSPORT_TCP, RELAY_AUTO); }
static void test_half_close_tcp_copy(void **state) { half_close(state, TRANSPORT_TCP, RELAY_COPY); }
static void test_half_close_unix_splice(void **state) { half_close(state, TRANSPORT_UNIX, RELAY_AUTO); }
static void test_half_close_unix_copy(void **state) { half_close(state, TRANSPORT_UNIX, RELAY_COPY); }

/* Half-close with nothing sent: both EOFs propagate, done reports 0 bytes. */
static void empty(void **state, enum relay_mode mode)
{
	struct fixture *f = *state;
	int fa, fb;
	start_relay(f, TRANSPORT_TCP, mode, 0, &fa, &fb);
	assert_int_equal(shutdown(fa, SHUT_WR), 0);
	assert_int_equal(shutdown(fb, SHUT_WR), 0);
	fx_run(f, 10000);
	assert_false(f->timed_out);
	assert_int_equal(f->done_calls, 1);
	assert_int_equal(f->done_err, 0);
	assert_int_equal(f->done_bytes[0], 0);
	assert_int_equal(f->done_bytes[1], 0);
	char c;
	assert_int_equal(recv(fa, &c, 1, 0), 0);
	assert_int_equal(recv(fb, &c, 1, 0), 0);
	close(fa);
	close(fb);
}

static void test_empty_splice(void **state) { empty(state, RELAY_AUTO); }
static void test_empty_copy(void **state) { empty(state, RELAY_COPY); }

/* ---- reset ---- */

static void rst_close(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	close(fd);
}

/* The other side sees EOF or a reset: never data, never "would block" for
 * long. */
static void expect_closed(int fd)
{
	char buf[4096];
	for (int i = 0; i < 2000; i++) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n == 0)
			return;
		if (n < 0 && errno == ECONNRESET)
			return;
		if (n > 0)
			continue; /* bytes relayed before the reset */
		assert_int_equal(errno, EAGAIN);
		usleep(1000);
	}
	fail_msg("the other side was not closed");
}

static void reset_idle(void **state, enum relay_mode mode)
{
	struct fixture *f = *state;
	int fa, fb;
	start_relay(f, TRANSPORT_TCP, mode, 0, &fa, &fb);
	fx_run(f, 20); /* let it settle idle */
	assert_int_equal(f->done_calls, 0);
	assert_int_equal(f->counters->relays_active, 1);
	rst_close(fa);
	fx_run(f, 10000);
	assert_false(f->timed_out);
	assert_int_equal(f->done_calls, 1);
	assert_int_equal(f->done_err, -ECONNRESET);
	expect_closed(fb);
	assert_int_equal(f->counters->relays_active, 0);
	close(fb);
}

static void test_reset_idle_splice(void **state) { reset_idle(state, RELAY_AUTO); }
static void test_reset_idle_copy(void **state) { reset_idle(state, RELAY_COPY); }

/* B resets while A streams into it: the relay ends with an error and A is
 * closed too. */
static void reset_busy(void **state, enum relay_mode mode)
{
	struct fixture *f = *state;
	int fa, fb;
	start_relay(f, TRANSPORT_TCP, mode, 0, &fa, &fb);
	struct peer A;
	peer_init(&A, fa, 64 * MiB, 5);
	peer_start(&A);
	/* B reads a little, then resets */
	char buf[65536];
	size_t got = 0;
	uint64_t deadline = now_ms() + 10000;
	f->stop_on_done = false;
	while (got < 1 * MiB && now_ms() < deadline) {
		fx_run(f, 1);
		ssize_t n = recv(fb, buf, sizeof(buf), 0);
		if (n > 0)
			got += (size_t)n;
	}
	assert_true(got >= 1 * MiB);
	rst_close(fb);
	f->stop_on_done = true;
	fx_run(f, 10000);
	peer_join(&A);
	assert_false(f->timed_out);
	assert_int_equal(f->done_calls, 1);
	assert_true(f->done_err == -ECONNRESET || f->done_err == -EPIPE);
	/* A's sending failed (reset) or it saw EOF: it did not time out */
	assert_true(A.err == ECONNRESET || A.err == EPIPE || A.got_eof);
	assert_true(A.sent < 64 * MiB);
	assert_int_equal(pipe_pool_in_use(f->pipes), 0);
	assert_int_equal(f->counters->bytes_buffered, 0);
	close(fa);
}

static void test_reset_busy_splice(void **state) { reset_busy(state, RELAY_AUTO); }
static void test_reset_busy_copy(void **state) { reset_busy(state, RELAY_COPY); }

/* ---- backpressure ---- */

static void backpressure(void **state, int kind, enum relay_mode mode)
{
	struct fixture *f = *state;
	int fa, fb;
	/* small fixed socket buffers: what the sockets can hold is known */
	start_relay(f, kind, mode, 64 * 1024, &fa, &fb);
	struct peer A, B;
	peer_init(&A, fa, 16 * MiB, 6);
	peer_init(&B, fb, 0, 7);
	atomic_store(&B.recv_go, false); /* B does not read */
	peer_start(&A);
	peer_start(&B);
	f->stop_on_done = false;
	size_t max_buffered = 0;
	for (int i = 0; i < 50; i++) {
		fx_run(f, 10);
		if (f->counters->bytes_buffered > max_buffered)
			max_buffered = f->counters->bytes_buffered;
		assert_true(pipe_pool_in_use(f->pipes) <= 1);
	}
	/* the relay holds at most one pipe or one copy buffer */
	assert_true(max_buffered > 0);
	assert_true(max_buffered <= 1 * MiB);
	if (mode == RELAY_COPY)
		assert_true(max_buffered <= 64 * 1024);
	/* A is stuck: far less than everything went out */
	size_t stuck = atomic_load(&A.sent);
	assert_true(stuck < 4 * MiB);
	fx_run(f, 100);
	assert_true(atomic_load(&A.sent) - stuck < 512 * 1024);
	assert_int_equal(f->done_calls, 0);
	/* now B reads: everything arrives intact */
	atomic_store(&B.recv_go, true);
	f->stop_on_done = true;
	fx_run(f, 60000);
	peer_join(&A);
	peer_join(&B);
	assert_false(f->timed_out);
	assert_int_equal(A.err, 0);
	assert_int_equal(B.err, 0);
	assert_int_equal(B.received, 16 * MiB);
	assert_memory_equal(A.sent_md, B.recv_md, 32);
	assert_int_equal(f->done_err, 0);
	close(fa);
	close(fb);
}

static void test_backpressure_tcp_splice(void **state) { backpressure(state, TRANSPORT_TCP, RELAY_AUTO); }
static void test_backpressure_tcp_copy(void **state) { backpressure(state, TRANSPORT_TCP, RELAY_COPY); }
static void test_backpressure_unix_splice(void **state) { backpressure(state, TRANSPORT_UNIX, RELAY_AUTO); }
static void test_backpressure_unix_copy(void **state) { backpressure(state, TRANSPORT_UNIX, RELAY_COPY); }

/* ---- many relays: pipes, idle cost, counters ---- */

struct many {
	int fa, fb;
};

/* Starts n relays over AF_UNIX pairs; each test end pair goes to m[i]. */
static void start_many(struct fixture *f, enum relay_mode mode, struct many *m, size_t n)
{
	f->stop_on_done = false;
	for (size_t i = 0; i < n; i++)
		start_relay(f, TRANSPORT_UNIX, mode, 0, &m[i].fa, &m[i].fb);
}

static void ping_all(struct fixture *f, struct many *m, size_t n)
{
	/* one byte each way through every relay */
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(send(m[i].fa, "a", 1, 0), 1);
		assert_int_equal(send(m[i].fb, "b", 1, 0), 1);
	}
	size_t left = 2 * n;
	char c;
	uint64_t deadline = now_ms() + 10000;
	bool *got = calloc(2 * n, 1);
	while (left && now_ms() < deadline) {
		fx_run(f, 1);
		for (size_t i = 0; i < n; i++) {
			if (!got[2 * i] && recv(m[i].fb, &c, 1, 0) == 1) {
				assert_int_equal(c, 'a');
				got[2 * i] = true;
				left--;
			}
			if (!got[2 * i + 1] && recv(m[i].fa, &c, 1, 0) == 1) {
				assert_int_equal(c, 'b');
				got[2 * i + 1] = true;
				left--;
			}
		}
	}
	free(got);
	assert_int_equal(left, 0);
}

static void close_all(struct fixture *f, struct many *m, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		close(m[i].fa);
		close(m[i].fb);
	}
	uint64_t deadline = now_ms() + 10000;
	while (f->counters->relays_active && now_ms() < deadline)
		fx_run(f, 5);
	assert_int_equal(f->counters->relays_active, 0);
}

static void idle_relays(void **state, enum relay_mode mode)
{
	struct fixture *f = *state;
	enum { N = 100 };
	struct many m[N];
	start_many(f, mode, m, N);
	assert_int_equal(f->counters->relays_active, N);
	fx_run(f, 20);
	assert_int_equal(pipe_pool_in_use(f->pipes), 0);
	ping_all(f, m, N);
	fx_run(f, 5);
	/* idle again: no pipe is held */
	assert_int_equal(pipe_pool_in_use(f->pipes), 0);
	assert_int_equal(f->counters->bytes_buffered, 0);
	assert_int_equal(f->counters->bytes[0], N);
	assert_int_equal(f->counters->bytes[1], N);
	assert_int_equal(f->done_calls, 0);
	close_all(f, m, N);
	assert_int_equal(f->done_calls, N);
	assert_int_equal(f->counters->relays_total, N);
	assert_int_equal(pipe_pool_in_use(f->pipes), 0);
}

static void test_idle_relays_splice(void **state) { idle_relays(state, RELAY_AUTO); }
static void test_idle_relays_copy(void **state) { idle_relays(state, RELAY_COPY); }

/* 1,000 idle relays cost little memory beyond their sockets. */
static void test_idle_memory(void **state)
{
	struct fixture *f = *state;
	enum { N = 1000 };
	struct rlimit rl;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < 4 * N + 64) {
		struct rlimit want = rl;
		want.rlim_cur = rl.rlim_max;
		if (want.rlim_cur < 4 * N + 64 || setrlimit(RLIMIT_NOFILE, &want) != 0)
			skip();
	}
	struct many *m = calloc(N, sizeof(*m));
	assert_non_null(m);
	size_t before = HEAP_IN_USE();
	start_many(f, RELAY_AUTO, m, N);
	ping_all(f, m, N);
	fx_run(f, 5);
	size_t after = HEAP_IN_USE();
	assert_int_equal(pipe_pool_in_use(f->pipes), 0);
	size_t cost = after > before ? after - before : 0;
	print_message("1000 idle relays: %zu bytes of heap\n", cost);
	assert_true(cost < 2 * MiB);
	close_all(f, m, N);
	free(m);
	setrlimit(RLIMIT_NOFILE, &rl);
}

/* Many relays that moved data in parallel: all pipes come back. */
static void test_pipes_return(void **state)
{
	struct fixture *f = *state;
	enum { N = 20 };
	struct many m[N];
	struct peer pa[N], pb[N];
	start_many(f, RELAY_AUTO, m, N);
	for (size_t i = 0; i < N; i++) {
		peer_init(&pa[i], m[i].fa, 256 * 1024 + i, 100 + i);
		peer_init(&pb[i], m[i].fb, 128 * 1024 + i, 200 + i);
		peer_start(&pa[i]);
		peer_start(&pb[i]);
	}
	uint64_t deadline = now_ms() + 60000;
	while (f->done_calls < N && now_ms() < deadline)
		fx_run(f, 5);
	for (size_t i = 0; i < N; i++) {
		peer_join(&pa[i]);
		peer_join(&pb[i]);
		assert_int_equal(pa[i].err, 0);
		assert_int_equal(pb[i].err, 0);
		assert_memory_equal(pa[i].sent_md, pb[i].recv_md, 32);
		assert_memory_equal(pb[i].sent_md, pa[i].recv_md, 32);
		close(m[i].fa);
		close(m[i].fb);
	}
	assert_int_equal(f->done_calls, N);
	assert_int_equal(f->counters->relays_active, 0);
	assert_int_equal(pipe_pool_in_use(f->pipes), 0);
	uint64_t want0 = 0, want1 = 0;
	for (size_t i = 0; i < N; i++) {
		want0 += 256 * 1024 + i;
		want1 += 128 * 1024 + i;
	}
	assert_int_equal(f->counters->bytes[0], want0);
	assert_int_equal(f->counters->bytes[1], want1);
}

/* ---- fallbacks ---- */

/* No descriptors left for pipes (EMFILE): the relay copies instead. */
static void test_splice_falls_back_on_emfile(void **state)
{
	struct fixture *f = *state;
	int fa, fb;
	start_relay(f, TRANSPORT_TCP, RELAY_AUTO, 0, &fa, &fb);
	struct rlimit rl, tight;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	/* the lowest free fd number becomes the limit: pipe2() must fail */
	int probe = dup(0);
	assert_true(probe >= 0);
	close(probe);
	tight = rl;
	tight.rlim_cur = (rlim_t)probe;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &tight), 0);
	int p[2];
	assert_int_equal(pipe(p), -1);
	assert_int_equal(errno, EMFILE);

	struct peer A, B;
	peer_init(&A, fa, 2 * MiB, 8);
	peer_init(&B, fb, 2 * MiB + 7, 9);
	peer_start(&A);
	peer_start(&B);
	fx_run(f, 60000);
	peer_join(&A);
	peer_join(&B);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	assert_false(f->timed_out);
	assert_int_equal(f->done_err, 0);
	assert_memory_equal(A.sent_md, B.recv_md, 32);
	assert_memory_equal(B.sent_md, A.recv_md, 32);
	assert_int_equal(B.received, 2 * MiB);
	assert_int_equal(A.received, 2 * MiB + 7);
	assert_int_equal(pipe_pool_in_use(f->pipes), 0);
	close(fa);
	close(fb);
}

/* A transport that cannot splice (splice_fd = -1), in AUTO mode: copy. */
static void test_auto_with_unspliceable_end(void **state)
{
	struct fixture *f = *state;
	int p1[2], p2[2];
	make_pair(TRANSPORT_TCP, p1, 0);
	make_pair(TRANSPORT_TCP, p2, 0);
	struct xport *a = xport_tcp_new(p1[1]);
	struct xport *b = xport_tcp_new(p2[0]);
	b->splice_fd = -1;
	struct relay_cfg c = cfg_for(f, RELAY_AUTO);
	assert_int_equal(relay_start(&c, a, b), 0);
	struct peer A, B;
	exchange(f, p1[0], p2[1], 1 * MiB, 1 * MiB, 10, 60000, &A, &B);
	close(p1[0]);
	close(p2[1]);
}

/* ---- a transport with internal buffering: xport_pending ---- */

/* A source whose bytes all sit inside the transport: its fd (one end of an
 * AF_UNIX pair nobody writes to) never becomes readable, so only
 * xport_pending() can keep the relay reading. Writes are swallowed. */
struct gen_xport {
	struct xport base;
	int peer_fd;
	struct pattern pat;
	size_t left;
	size_t swallowed;
	bool *closed;
};

static ssize_t gen_read(struct xport *x, void *buf, size_t len)
{
	struct gen_xport *g = (struct gen_xport *)x;
	if (g->left == 0)
		return 0;
	size_t n = len < 1000 ? len : 1000;
	if (n > g->left)
		n = g->left;
	pattern_fill(&g->pat, buf, n);
	g->left -= n;
	return (ssize_t)n;
}

static ssize_t gen_write(struct xport *x, const void *buf, size_t len)
{
	((struct gen_xport *)x)->swallowed += len;
	return (ssize_t)len;
}

static int gen_shutdown(struct xport *x) { return 0; }
static unsigned gen_want(struct xport *x) { return LOOP_READ; }
static size_t gen_pending(struct xport *x) { return ((struct gen_xport *)x)->left ? 1 : 0; }

static void gen_close(struct xport *x)
{
	struct gen_xport *g = (struct gen_xport *)x;
	*g->closed = true;
	close(g->base.fd);
	close(g->peer_fd);
	free(g);
}

static const struct xport_ops gen_ops = {
	.name = "gen", .read = gen_read, .write = gen_write, .shutdown_wr = gen_shutdown,
	.want = gen_want, .pending = gen_pending, .close = gen_close,
};

static void test_pending_bytes_are_read(void **state)
{
	struct fixture *f = *state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	bool closed = false;
	struct gen_xport *g = calloc(1, sizeof(*g));
	g->base.ops = &gen_ops;
	g->base.fd = sv[0];
	g->base.splice_fd = -1;
	g->peer_fd = sv[1];
	g->pat.s = 12;
	g->left = 3 * MiB + 3; /* far more than one wake-up's budget */
	g->closed = &closed;
	int p2[2];
	make_pair(TRANSPORT_TCP, p2, 0);
	struct xport *b = xport_tcp_new(p2[0]);
	struct relay_cfg c = cfg_for(f, RELAY_AUTO);
	assert_int_equal(relay_start(&c, &g->base, b), 0);
	struct peer B;
	peer_init(&B, p2[1], 5000, 13);
	peer_start(&B);
	fx_run(f, 60000);
	peer_join(&B);
	assert_false(f->timed_out);
	assert_int_equal(B.err, 0);
	assert_int_equal(B.received, 3 * MiB + 3);
	/* the same stream as generated */
	struct peer ref;
	peer_init(&ref, -1, 0, 0);
	{
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();
		EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
		struct pattern pat = { 12 };
		unsigned char chunk[1000];
		size_t left = 3 * MiB + 3;
		while (left) {
			size_t n = left < 1000 ? left : 1000;
			pattern_fill(&pat, chunk, n);
			EVP_DigestUpdate(ctx, chunk, n);
			left -= n;
		}
		EVP_DigestFinal_ex(ctx, ref.recv_md, NULL);
		EVP_MD_CTX_free(ctx);
	}
	assert_memory_equal(ref.recv_md, B.recv_md, 32);
	assert_int_equal(f->done_err, 0);
	assert_int_equal(f->done_bytes[0], 3 * MiB + 3);
	assert_int_equal(f->done_bytes[1], 5000);
	assert_true(closed);
	close(p2[1]);
}

/* ---- small things ---- */

static void test_start_failure_closes_both(void **state)
{
	struct fixture *f = *state;
	int p1[2], p2[2];
	make_pair(TRANSPORT_UNIX, p1, 0);
	make_pair(TRANSPORT_UNIX, p2, 0);
	/* the same fd already watched by someone else: epoll ADD fails */
	struct io_watcher other;
	loop_io_init(&other, NULL, NULL);
	assert_int_equal(loop_io_start(f->loop, &other, p1[1], LOOP_READ), 0);
	struct xport *a = xport_tcp_new(p1[1]);
	struct xport *b = xport_tcp_new(p2[0]);
	struct relay_cfg c = cfg_for(f, RELAY_AUTO);
	assert_int_equal(relay_start(&c, a, b), -EEXIST);
	loop_io_stop(f->loop, &other);
	assert_int_equal(f->done_calls, 0);
	assert_int_equal(f->counters->relays_total, 0);
	assert_int_equal(f->counters->refs, 1);
	/* both were closed */
	assert_int_equal(fcntl(p1[1], F_GETFD), -1);
	assert_int_equal(fcntl(p2[0], F_GETFD), -1);
	close(p1[0]);
	close(p2[1]);
}

static void test_no_counters_no_done(void **state)
{
	struct fixture *f = *state;
	int p1[2], p2[2];
	make_pair(TRANSPORT_UNIX, p1, 0);
	make_pair(TRANSPORT_UNIX, p2, 0);
	struct relay_cfg c = { .loop = f->loop, .pipes = NULL, .mode = RELAY_AUTO };
	assert_int_equal(relay_start(&c, xport_tcp_new(p1[1]), xport_tcp_new(p2[0])), 0);
	assert_int_equal(send(p1[0], "xyz", 3, 0), 3);
	shutdown(p1[0], SHUT_WR);
	shutdown(p2[1], SHUT_WR);
	char buf[8];
	size_t got = 0;
	uint64_t deadline = now_ms() + 10000;
	for (;;) {
		fx_run(f, 1);
		ssize_t n = recv(p2[1], buf + got, sizeof(buf) - got, 0);
		if (n > 0)
			got += (size_t)n;
		if (n == 0 || now_ms() > deadline)
			break;
	}
	assert_int_equal(got, 3);
	assert_memory_equal(buf, "xyz", 3);
	/* the relay closed its ends: p1[0] sees EOF */
	deadline = now_ms() + 10000;
	ssize_t n;
	do {
		fx_run(f, 1);
		n = recv(p1[0], buf, sizeof(buf), 0);
	} while (n < 0 && errno == EAGAIN && now_ms() < deadline);
	assert_int_equal(n, 0);
	close(p1[0]);
	close(p2[1]);
}

static void test_counters_refcount(void **state)
{
	struct relay_counters *c = relay_counters_new();
	assert_non_null(c);
	assert_int_equal(c->refs, 1);
	assert_int_equal(c->bytes[0], 0);
	assert_int_equal(c->relays_total, 0);
	assert_ptr_equal(relay_counters_ref(c), c);
	assert_int_equal(c->refs, 2);
	relay_counters_unref(c);
	assert_int_equal(c->refs, 1);
	relay_counters_unref(c); /* freed: ASan would flag a leak otherwise */
	relay_counters_unref(NULL);
	assert_null(relay_counters_ref(NULL));
}

/* The counters outlive the service that made them: the relay's reference
 * keeps them alive until it ends. */
static void test_counters_outlive_owner(void **state)
{
	struct fixture *f = *state;
	struct relay_counters *mine = relay_counters_new();
	int p1[2], p2[2];
	make_pair(TRANSPORT_UNIX, p1, 0);
	make_pair(TRANSPORT_UNIX, p2, 0);
	struct relay_cfg c = cfg_for(f, RELAY_COPY);
	c.counters = mine;
	assert_int_equal(relay_start(&c, xport_tcp_new(p1[1]), xport_tcp_new(p2[0])), 0);
	assert_int_equal(mine->refs, 2);
	relay_counters_unref(mine); /* the service goes away */
	assert_int_equal(send(p1[0], "q", 1, 0), 1);
	close(p1[0]);
	close(p2[1]);
	fx_run(f, 10000);
	assert_false(f->timed_out);
	assert_int_equal(f->done_calls, 1);
	/* the relay wrote nothing (p2 gone: a reset or EPIPE may end it) and
	 * dropped the last reference without a use-after-free (ASan) */
}

static void test_pool_reuse_and_cap(void **state)
{
	struct fixture *f = *state;
	/* sequential relays reuse the same pipes: in_use back to 0 each time */
	for (int i = 0; i < 30; i++) {
		int fa, fb;
		f->done_calls = 0;
		start_relay(f, TRANSPORT_UNIX, RELAY_AUTO, 0, &fa, &fb);
		struct peer A, B;
		peer_init(&A, fa, 100000, 20 + (uint64_t)i);
		peer_init(&B, fb, 100, 40 + (uint64_t)i);
		peer_start(&A);
		peer_start(&B);
		fx_run(f, 60000);
		peer_join(&A);
		peer_join(&B);
		assert_false(f->timed_out);
		assert_int_equal(f->done_calls, 1);
		assert_memory_equal(A.sent_md, B.recv_md, 32);
		assert_int_equal(pipe_pool_in_use(f->pipes), 0);
		close(fa);
		close(fb);
	}
	struct pipe_pool *p = pipe_pool_new(0);
	assert_non_null(p);
	assert_int_equal(pipe_pool_in_use(p), 0);
	pipe_pool_free(p);
	pipe_pool_free(NULL);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	/* splice(2) into a socket whose peer is gone raises SIGPIPE: the
	 * daemon ignores it, so does this test */
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		T(test_bulk_tcp_splice),
		T(test_small_messages_are_copied),
		T(test_waiting_bytes_move_at_start),
		T(test_idle_at_start_waits_for_loop),
		T(test_short_read_waits_for_loop),
		T(test_bulk_tcp_copy),
		T(test_bulk_unix_splice),
		T(test_bulk_unix_copy),
		T(test_half_close_tcp_splice),
		T(test_half_close_tcp_copy),
		T(test_half_close_unix_splice),
		T(test_half_close_unix_copy),
		T(test_empty_splice),
		T(test_empty_copy),
		T(test_reset_idle_splice),
		T(test_reset_idle_copy),
		T(test_reset_busy_splice),
		T(test_reset_busy_copy),
		T(test_backpressure_tcp_splice),
		T(test_backpressure_tcp_copy),
		T(test_backpressure_unix_splice),
		T(test_backpressure_unix_copy),
		T(test_idle_relays_splice),
		T(test_idle_relays_copy),
		T(test_idle_memory),
		T(test_pipes_return),
		T(test_splice_falls_back_on_emfile),
		T(test_auto_with_unspliceable_end),
		T(test_pending_bytes_are_read),
		T(test_start_failure_closes_both),
		T(test_no_counters_no_done),
		T(test_counters_refcount),
		T(test_counters_outlive_owner),
		T(test_pool_reuse_and_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
