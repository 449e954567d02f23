/* Unit tests for xport_tcp: the plain TCP transport over real loopback
 * sockets (and AF_UNIX stream pairs). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/loop.h"
#include "xport/xport.h"


static int getint(int fd, int level, int name)
{
	int v = -1;
	socklen_t l = sizeof(v);
	assert_int_equal(getsockopt(fd, level, name, &v, &l), 0);
	return v;
}

static void test_new_fields(void **state)
{
	int fds[2];
	tcp_pair(fds);
	struct xport *x = xport_tcp_new(fds[1]);
	assert_non_null(x);
	assert_int_equal(x->fd, fds[1]);
	assert_int_equal(x->splice_fd, fds[1]);
	assert_string_equal(x->ops->name, "tcp");
	assert_int_equal(xport_handshake(x), 0);
	assert_int_equal(xport_pending(x), 0);
	xport_close(x);
	/* close closed the fd: the peer sees EOF */
	char c;
	ssize_t n;
	do {
		n = recv(fds[0], &c, 1, 0);
	} while (n < 0 && errno == EAGAIN);
	assert_int_equal(n, 0);
	assert_int_equal(fcntl(fds[1], F_GETFD), -1);
	close(fds[0]);
}

static void test_read_write_eagain_want(void **state)
{
	int fds[2];
	tcp_pair(fds);
	struct xport *a = xport_tcp_new(fds[0]);
	struct xport *b = xport_tcp_new(fds[1]);
	char buf[256];

	/* nothing to read: -EAGAIN and want = read */
	assert_int_equal(xport_read(b, buf, sizeof(buf)), -EAGAIN);
	assert_int_equal(xport_want(b), LOOP_READ);

	assert_int_equal(xport_write(a, "hello", 5), 5);
	ssize_t n;
	do {
		n = xport_read(b, buf, sizeof(buf));
	} while (n == -EAGAIN);
	assert_int_equal(n, 5);
	assert_memory_equal(buf, "hello", 5);

	/* fill a's send path until it blocks: -EAGAIN and want = write */
	static char big[65536];
	memset(big, 'x', sizeof(big));
	size_t total = 0;
	for (;;) {
		n = xport_write(a, big, sizeof(big));
		if (n == -EAGAIN)
			break;
		assert_true(n > 0);
		total += (size_t)n;
		assert_true(total < (size_t)1 << 30);
	}
	assert_int_equal(xport_want(a), LOOP_WRITE);
	/* a read that blocks afterwards switches it back */
	assert_int_equal(xport_read(a, buf, sizeof(buf)), -EAGAIN);
	assert_int_equal(xport_want(a), LOOP_READ);

	/* drain b: exactly total bytes arrive */
	size_t got = 0;
	static char sink[65536];
	while (got < total) {
		n = xport_read(b, sink, sizeof(sink));
		if (n == -EAGAIN)
			continue;
		assert_true(n > 0);
		got += (size_t)n;
	}
	assert_int_equal(got, total);
	xport_close(a);
	xport_close(b);
}

static void test_shutdown_eof_and_reverse(void **state)
{
	int fds[2];
	tcp_pair(fds);
	struct xport *a = xport_tcp_new(fds[0]);
	struct xport *b = xport_tcp_new(fds[1]);
	char buf[16];
	assert_int_equal(xport_write(a, "abc", 3), 3);
	assert_int_equal(xport_shutdown_wr(a), 0);
	/* b reads the bytes, then end of stream */
	size_t got = 0;
	ssize_t n;
	for (;;) {
		n = xport_read(b, buf + got, sizeof(buf) - got);
		if (n == -EAGAIN)
			continue;
		if (n == 0)
			break;
		assert_true(n > 0);
		got += (size_t)n;
	}
	assert_int_equal(got, 3);
	assert_memory_equal(buf, "abc", 3);
	/* the other direction still works after the half-close */
	assert_int_equal(xport_write(b, "xyz", 3), 3);
	do {
		n = xport_read(a, buf, sizeof(buf));
	} while (n == -EAGAIN);
	assert_int_equal(n, 3);
	assert_memory_equal(buf, "xyz", 3);
	/* writing after shutdown fails with -EPIPE (and no SIGPIPE) */
	assert_int_equal(xport_write(a, "q", 1), -EPIPE);
	xport_close(a);
	xport_close(b);
}

static void test_errors_map_to_negative_errno(void **state)
{
	int fds[2];
	tcp_pair(fds);
	struct xport *b = xport_tcp_new(fds[1]);
	/* the peer resets: RST via SO_LINGER 0 */
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	assert_int_equal(setsockopt(fds[0], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	close(fds[0]);
	char buf[8];
	ssize_t n;
	for (int i = 0; i < 1000; i++) {
		n = xport_read(b, buf, sizeof(buf));
		if (n != -EAGAIN)
			break;
		usleep(1000);
	}
	assert_int_equal(n, -ECONNRESET);
	/* writing after the reset: an error, never a signal */
	n = xport_write(b, "x", 1);
	assert_true(n == -EPIPE || n == -ECONNRESET);
	xport_close(b);
}

static void test_unix_socketpair(void **state)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	struct xport *a = xport_tcp_new(sv[0]);
	struct xport *b = xport_tcp_new(sv[1]);
	char buf[8];
	assert_int_equal(xport_write(a, "hi", 2), 2);
	assert_int_equal(xport_read(b, buf, sizeof(buf)), 2);
	assert_memory_equal(buf, "hi", 2);
	assert_int_equal(xport_shutdown_wr(a), 0);
	assert_int_equal(xport_read(b, buf, sizeof(buf)), 0);
	xport_close(a);
	xport_close(b);
}

static void test_apply_opts(void **state)
{
	int fds[2];
	tcp_pair(fds);
	struct tcp_opts o = { .nodelay = 1, .keepalive_secs = 20, .keepalive_interval = 8 };
	xport_tcp_apply_opts(fds[0], &o);
	assert_int_equal(getint(fds[0], SOL_SOCKET, SO_KEEPALIVE), 1);
	assert_int_equal(getint(fds[0], IPPROTO_TCP, TCP_KEEPIDLE), 20);
	assert_int_equal(getint(fds[0], IPPROTO_TCP, TCP_KEEPINTVL), 8);
	assert_true(getint(fds[0], IPPROTO_TCP, TCP_NODELAY) != 0);

	struct tcp_opts o2 = { .nodelay = 0, .keepalive_secs = 7, .keepalive_interval = 3 };
	xport_tcp_apply_opts(fds[0], &o2);
	assert_int_equal(getint(fds[0], SOL_SOCKET, SO_KEEPALIVE), 1);
	assert_int_equal(getint(fds[0], IPPROTO_TCP, TCP_KEEPIDLE), 7);
	assert_int_equal(getint(fds[0], IPPROTO_TCP, TCP_KEEPINTVL), 3);
	assert_int_equal(getint(fds[0], IPPROTO_TCP, TCP_NODELAY), 0);

	/* refused values are only logged; keepalive stays on, nodelay is set */
	struct tcp_opts bad = { .nodelay = 1, .keepalive_secs = 0, .keepalive_interval = 0 };
	xport_tcp_apply_opts(fds[1], &bad);
	assert_int_equal(getint(fds[1], SOL_SOCKET, SO_KEEPALIVE), 1);
	assert_true(getint(fds[1], IPPROTO_TCP, TCP_NODELAY) != 0);
	/* a non-socket: no crash */
	int p[2];
	assert_int_equal(pipe(p), 0);
	xport_tcp_apply_opts(p[0], &o);
	close(p[0]);
	close(p[1]);
	close(fds[0]);
	close(fds[1]);
}

static void test_new_bad_fd_closes(void **state)
{
	/* xport_tcp_new takes the fd: a later close through the xport closes it */
	int p[2];
	assert_int_equal(pipe(p), 0);
	struct xport *x = xport_tcp_new(p[0]);
	assert_non_null(x);
	char c;
	assert_true(xport_read(x, &c, 1) < 0); /* recv on a pipe: -ENOTSOCK */
	xport_close(x);
	assert_int_equal(fcntl(p[0], F_GETFD), -1);
	close(p[1]);
	xport_close(NULL); /* allowed no-op */
}

int main(void)
{
	/* SIGPIPE left at its default: a write must never raise it */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_fields),
		cmocka_unit_test(test_read_write_eagain_want),
		cmocka_unit_test(test_shutdown_eof_and_reverse),
		cmocka_unit_test(test_errors_map_to_negative_errno),
		cmocka_unit_test(test_unix_socketpair),
		cmocka_unit_test(test_apply_opts),
		cmocka_unit_test(test_new_bad_fd_closes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
