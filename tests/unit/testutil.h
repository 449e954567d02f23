/* testutil: helpers shared by the unit tests (after <cmocka.h>). */
#ifndef MOLERAT_TESTUTIL_H
#define MOLERAT_TESTUTIL_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/loop.h"

static inline void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	assert_true(fl >= 0);
	assert_int_equal(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

/* Pins a socket's buffers (no autotuning). */
static inline void set_bufs(int fd, int bytes)
{
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes)), 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes)), 0);
}

/* A connected loopback TCP pair, both ends non-blocking: fds[0] the
 * connecting end, fds[1] the accepted one. bufsz > 0 pins the socket
 * buffers of both. */
static inline void tcp_pair_bufs(int fds[2], int bufsz)
{
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(l >= 0);
	if (bufsz)
		set_bufs(l, bufsz);
	struct sockaddr_in a = { .sin_family = AF_INET };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(l, 4), 0);
	socklen_t al = sizeof(a);
	assert_int_equal(getsockname(l, (struct sockaddr *)&a, &al), 0);
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(c >= 0);
	if (bufsz)
		set_bufs(c, bufsz);
	assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
	int s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	assert_true(s >= 0);
	close(l);
	set_nonblock(c);
	set_nonblock(s);
	fds[0] = c;
	fds[1] = s;
}

static inline void tcp_pair(int fds[2])
{
	tcp_pair_bufs(fds, 0);
}

struct run_guard {
	struct timer t;
	int fired;
};

static inline void run_guard_fire(struct loop *loop, struct timer *t)
{
	struct run_guard *g = t->data;
	g->fired = 1;
	loop_stop(loop);
}

/* Runs the loop until something stops it or ms pass; returns 1 when the
 * time ran out. */
static inline int run_for(struct loop *loop, unsigned ms)
{
	struct run_guard g = { .fired = 0 };
	loop_timer_init(&g.t, run_guard_fire, &g);
	loop_update_time(loop);
	loop_timer_start(loop, &g.t, ms);
	assert_int_equal(loop_run(loop), 0);
	loop_timer_stop(loop, &g.t);
	return g.fired;
}

#endif
