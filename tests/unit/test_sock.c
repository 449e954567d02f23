/* sock: real sockets on 127.0.0.1 / ::1 (listen, connect, accept, options,
 * UDP). The pure address tests (splitting, literals, formatting) are in
 * test_addr.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/err.h"
#include "base/sock.h"

/* ---- real sockets ---- */

static void assert_nonblock_cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	assert_true(fl >= 0);
	assert_true(fl & O_NONBLOCK);
	int fdfl = fcntl(fd, F_GETFD);
	assert_true(fdfl >= 0);
	assert_true(fdfl & FD_CLOEXEC);
}

static int getint(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);
	assert_int_equal(getsockopt(fd, level, name, &v, &len), 0);
	return v;
}

/* Waits (bounded) until fd is writable. */
static void wait_writable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	assert_int_equal(poll(&p, 1, 5000), 1);
}

static int v6_available(void)
{
	int fd = socket(AF_INET6, SOCK_STREAM, 0);
	if (fd < 0)
		return 0;
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	int ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

static void listen_connect_accept(const char *lit)
{
	struct addr la, bound, peer, cl;
	assert_int_equal(addr_from_literal(lit, 0, &la), 0);
	int lfd = sock_listen_tcp(&la);
	assert_true(lfd >= 0);
	assert_nonblock_cloexec(lfd);
	assert_int_equal(getint(lfd, SOL_SOCKET, SO_REUSEADDR), 1);
	assert_int_equal(getint(lfd, SOL_SOCKET, SO_ACCEPTCONN), 1);
	assert_int_equal(sock_local_addr(lfd, &bound), 0);
	assert_int_equal(bound.ss.ss_family, la.ss.ss_family);
	assert_int_not_equal(addr_port(&bound), 0);

	/* nothing waiting yet */
	assert_int_equal(sock_accept(lfd, &peer), -EAGAIN);

	int cfd = sock_connect_start(&bound);
	assert_true(cfd >= 0);
	assert_nonblock_cloexec(cfd);
	wait_writable(cfd);
	assert_int_equal(sock_connect_result(cfd), 0);
	struct addr cpeer;
	assert_int_equal(sock_peer_addr(cfd, &cpeer), 0);
	assert_true(addr_equal(&cpeer, &bound));

	struct pollfd p = { .fd = lfd, .events = POLLIN };
	assert_int_equal(poll(&p, 1, 5000), 1);
	int afd = sock_accept(lfd, &peer);
	assert_true(afd >= 0);
	assert_nonblock_cloexec(afd);
	assert_int_equal(sock_local_addr(cfd, &cl), 0);
	assert_true(addr_equal(&peer, &cl));

	/* bytes flow both ways */
	assert_int_equal(write(cfd, "ping", 4), 4);
	char buf[8];
	assert_int_equal(poll(&(struct pollfd){ .fd = afd, .events = POLLIN }, 1, 5000), 1);
	assert_int_equal(read(afd, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "ping", 4);

	/* a NULL peer is fine */
	int c2 = sock_connect_start(&bound);
	assert_true(c2 >= 0);
	assert_int_equal(poll(&p, 1, 5000), 1);
	int a2 = sock_accept(lfd, NULL);
	assert_true(a2 >= 0);

	close(a2);
	close(c2);
	close(afd);
	close(cfd);
	close(lfd);
}

static void test_listen_connect_accept_v4(void **state)
{
	listen_connect_accept("127.0.0.1");
}

static void test_listen_connect_accept_v6(void **state)
{
	if (!v6_available())
		skip();
	listen_connect_accept("::1");
}

/* A port that nothing listens on: bound and closed again. */
static struct addr closed_port(const char *lit)
{
	struct addr a;
	assert_int_equal(addr_from_literal(lit, 0, &a), 0);
	int fd = sock_listen_tcp(&a);
	assert_true(fd >= 0);
	assert_int_equal(sock_local_addr(fd, &a), 0);
	close(fd);
	return a;
}

static void test_connect_refused(void **state)
{
	struct addr a = closed_port("127.0.0.1");
	int fd = sock_connect_start(&a);
	if (fd < 0) {
		assert_int_equal(fd, -ECONNREFUSED);
		return;
	}
	wait_writable(fd);
	assert_int_equal(sock_connect_result(fd), -ECONNREFUSED);
	close(fd);
}

static void test_connect_in_progress(void **state)
{
	/* a listener with a full accept queue leaves the next connect hanging
	 * (Linux drops the SYN): sock_connect_result reports -EAGAIN */
	struct addr a;
	assert_int_equal(addr_from_literal("127.0.0.1", 0, &a), 0);
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&a.ss, a.len), 0);
	assert_int_equal(listen(lfd, 0), 0);
	assert_int_equal(sock_local_addr(lfd, &a), 0);
	int fds[16], n = 0, hanging = -1;
	for (; n < 16 && hanging < 0; n++) {
		fds[n] = sock_connect_start(&a);
		assert_true(fds[n] >= 0);
		struct pollfd p = { .fd = fds[n], .events = POLLOUT };
		if (poll(&p, 1, 200) == 0)
			hanging = fds[n];
	}
	if (hanging >= 0)
		assert_int_equal(sock_connect_result(hanging), -EAGAIN);
	for (int i = 0; i < n; i++)
		close(fds[i]);
	close(lfd);
	if (hanging < 0)
		skip();
}

static void test_listen_addr_in_use(void **state)
{
	struct addr a;
	assert_int_equal(addr_from_literal("127.0.0.1", 0, &a), 0);
	int l1 = sock_listen_tcp(&a);
	assert_true(l1 >= 0);
	assert_int_equal(sock_local_addr(l1, &a), 0);
	assert_int_equal(sock_listen_tcp(&a), -EADDRINUSE);
	close(l1);
	/* SO_REUSEADDR: the port is free again at once */
	int l2 = sock_listen_tcp(&a);
	assert_true(l2 >= 0);
	close(l2);
}

static void test_connect_bad_family(void **state)
{
	struct addr a;
	memset(&a, 0, sizeof(a));
	struct sockaddr_un *un = (struct sockaddr_un *)&a.ss;
	un->sun_family = AF_UNIX;
	strcpy(un->sun_path, "/nonexistent-molerat-test/sock");
	a.len = sizeof(*un);
	assert_int_equal(sock_connect_start(&a), -ENOENT);
}

static void test_options(void **state)
{
	struct addr a;
	assert_int_equal(addr_from_literal("127.0.0.1", 0, &a), 0);
	int lfd = sock_listen_tcp(&a);
	assert_true(lfd >= 0);
	assert_int_equal(sock_local_addr(lfd, &a), 0);
	int fd = sock_connect_start(&a);
	assert_true(fd >= 0);

	assert_int_equal(sock_set_nodelay(fd, 1), 0);
	assert_int_equal(getint(fd, IPPROTO_TCP, TCP_NODELAY), 1);
	assert_int_equal(sock_set_nodelay(fd, 0), 0);
	assert_int_equal(getint(fd, IPPROTO_TCP, TCP_NODELAY), 0);

	int cnt = getint(fd, IPPROTO_TCP, TCP_KEEPCNT);
	assert_int_equal(getint(fd, SOL_SOCKET, SO_KEEPALIVE), 0);
	assert_int_equal(sock_set_keepalive(fd, 20, 8), 0);
	assert_int_equal(getint(fd, SOL_SOCKET, SO_KEEPALIVE), 1);
	assert_int_equal(getint(fd, IPPROTO_TCP, TCP_KEEPIDLE), 20);
	assert_int_equal(getint(fd, IPPROTO_TCP, TCP_KEEPINTVL), 8);
	assert_int_equal(getint(fd, IPPROTO_TCP, TCP_KEEPCNT), cnt);

	/* refused values: reported, the others still applied */
	assert_int_equal(sock_set_keepalive(fd, 0, 9), -EINVAL);
	assert_int_equal(getint(fd, IPPROTO_TCP, TCP_KEEPINTVL), 9);
	assert_int_equal(sock_set_keepalive(fd, 4000000000u, 10), -EINVAL);
	assert_int_equal(getint(fd, IPPROTO_TCP, TCP_KEEPINTVL), 10);
	assert_int_equal(getint(fd, IPPROTO_TCP, TCP_KEEPIDLE), 20);

	assert_int_equal(sock_set_nodelay(-1, 1), -EBADF);
	assert_int_equal(sock_set_keepalive(-1, 1, 1), -EBADF);
	close(fd);
	close(lfd);
}

static void test_udp_bind(void **state)
{
	struct addr a, b;
	assert_int_equal(addr_from_literal("127.0.0.1", 0, &a), 0);
	int fd = sock_bind_udp(&a);
	assert_true(fd >= 0);
	assert_nonblock_cloexec(fd);
	assert_int_equal(getint(fd, SOL_SOCKET, SO_TYPE), SOCK_DGRAM);
	assert_int_equal(sock_local_addr(fd, &b), 0);
	assert_int_not_equal(addr_port(&b), 0);
	/* a datagram to itself arrives */
	assert_int_equal(sendto(fd, "x", 1, 0, (struct sockaddr *)&b.ss, b.len), 1);
	assert_int_equal(poll(&(struct pollfd){ .fd = fd, .events = POLLIN }, 1, 5000), 1);
	char c;
	assert_int_equal(recv(fd, &c, 1, 0), 1);
	assert_int_equal(c, 'x');
	/* same port again: in use (no SO_REUSEADDR) */
	assert_int_equal(sock_bind_udp(&b), -EADDRINUSE);
	/* buffers of SOCK_UDP_BUF, as far as net.core.rmem_max / wmem_max
	 * allow (the kernel reports twice the value set) */
	static const struct { const char *path; int opt; } bufs[] = {
		{ "/proc/sys/net/core/rmem_max", SO_RCVBUF },
		{ "/proc/sys/net/core/wmem_max", SO_SNDBUF },
	};
	for (size_t i = 0; i < 2; i++) {
		FILE *f = fopen(bufs[i].path, "r");
		long max = 0;
		if (!f || fscanf(f, "%ld", &max) != 1)
			max = 0;
		if (f)
			fclose(f);
		if (max > 0) {
			long want = max < SOCK_UDP_BUF ? max : SOCK_UDP_BUF;
			assert_int_equal(getint(fd, SOL_SOCKET, bufs[i].opt), 2 * want);
		}
	}
	close(fd);
}

static void test_raise_nofile(void **state)
{
	struct rlimit before, after;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &before), 0);
	long r = sock_raise_nofile();
	assert_true(r > 0);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &after), 0);
	assert_int_equal((long)after.rlim_cur, r);
	assert_true(after.rlim_cur >= before.rlim_cur);
	if (before.rlim_max != RLIM_INFINITY)
		assert_int_equal(after.rlim_cur, before.rlim_max);
	/* idempotent */
	assert_int_equal(sock_raise_nofile(), r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_listen_connect_accept_v4),
		cmocka_unit_test(test_listen_connect_accept_v6),
		cmocka_unit_test(test_connect_refused),
		cmocka_unit_test(test_connect_in_progress),
		cmocka_unit_test(test_listen_addr_in_use),
		cmocka_unit_test(test_connect_bad_family),
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_udp_bind),
		cmocka_unit_test(test_raise_nofile),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
