/* Unit tests for udp_sendq: what is coalesced into one UDP_SEGMENT message
 * and what is not, datagram boundaries as the receiver sees them, the
 * datagram-by-datagram fallback when the path refuses a coalesced run, and
 * error counting. Real UDP sockets on 127.0.0.1 and ::1. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "plane/udp_sendq.h"
#include "testutil.h"

/* A bound receiver and a sender connected to it (family AF_INET or
 * AF_INET6, on loopback). r[0] receiver, r[1] sender. */
static void udp_pair(int family, int r[2], struct addr *dst)
{
	int rx = socket(family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	assert_true(rx >= 0);
	int big = 4 << 20;
	setsockopt(rx, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	struct addr a;
	memset(&a, 0, sizeof(a));
	if (family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&a.ss;
		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		a.len = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a.ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_loopback;
		a.len = sizeof(*s6);
	}
	assert_int_equal(bind(rx, (struct sockaddr *)&a.ss, a.len), 0);
	socklen_t sl = sizeof(a.ss);
	assert_int_equal(getsockname(rx, (struct sockaddr *)&a.ss, &sl), 0);
	a.len = sl;
	int tx = socket(family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	assert_true(tx >= 0);
	r[0] = rx;
	r[1] = tx;
	*dst = a;
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed * 31 + i * 7);
}

/* Receives one datagram and checks its size and content. */
static void expect_dgram(int fd, size_t len, unsigned seed)
{
	static uint8_t got[70000], want[70000];
	ssize_t n = recv(fd, got, sizeof(got), MSG_TRUNC);
	assert_int_equal(n, (ssize_t)len);
	fill(want, len, seed);
	assert_memory_equal(got, want, len);
}

/* Receives n datagrams of sizes[] (content seeded by index, as add_all). */
static void expect_all(int fd, const size_t *sizes, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		expect_dgram(fd, sizes[i], i);
}

static void expect_none(int fd)
{
	uint8_t b[16];
	assert_int_equal(recv(fd, b, sizeof(b), 0), -1);
	assert_int_equal(errno, EAGAIN);
}

struct errlog {
	unsigned calls, ndrop;
	int last_err;
	bool give_up;
};

static bool on_err(void *owner, const struct udp_sendq *q, unsigned i, int err, unsigned ndrop)
{
	struct errlog *e = owner;
	e->calls++;
	e->ndrop += ndrop;
	e->last_err = err;
	return !e->give_up;
}

static struct udp_sendq q; /* about 70 KiB: not on the stack */

/* Adds the datagrams of sizes[] (content seeded by index) to dst. */
static void add_all(int fd, const struct addr *to, const size_t *sizes, unsigned n)
{
	static uint8_t b[70000];
	for (unsigned i = 0; i < n; i++) {
		fill(b, sizes[i], i);
		assert_true(udp_sendq_add(&q, fd, to, b, sizes[i]));
	}
}

static void test_runs_coalesce_and_keep_boundaries(void **state)
{
	int fds[2];
	struct addr dst;
	udp_pair(AF_INET, fds, &dst);
	udp_sendq_init(&q, true);
	/* a run of 5 x 1400 ending with a short one, then a bigger one
	 * (new run), an empty one (never coalesced), two of 10 */
	size_t sizes[] = { 1400, 1400, 1400, 1400, 1400, 300, 2000, 0, 10, 10 };
	unsigned n = sizeof(sizes) / sizeof(sizes[0]);
	add_all(fds[1], &dst, sizes, n);
	assert_int_equal(q.dgrams, n);
	assert_int_equal(q.n, 4); /* [6 x], [2000], [0], [10, 10] */
	assert_int_equal(q.nseg[0], 6);
	assert_int_equal(q.nseg[3], 2);
	struct errlog e = { 0 };
	size_t bytes = 0;
	uint64_t dropped = 0;
	assert_int_equal(udp_sendq_flush(&q, on_err, &e, &bytes, &dropped), n);
	assert_int_equal(e.calls, 0);
	assert_int_equal(dropped, 0);
	assert_int_equal(bytes, 5 * 1400 + 300 + 2000 + 0 + 20);
	assert_int_equal(q.gso_max, UINT16_MAX); /* the kernel took the runs whole */
	expect_all(fds[0], sizes, n);
	expect_none(fds[0]);
	assert_int_equal(q.n, 0);
	close(fds[0]);
	close(fds[1]);
}

static void test_no_gso_sends_one_message_each(void **state)
{
	int fds[2];
	struct addr dst;
	udp_pair(AF_INET, fds, &dst);
	udp_sendq_init(&q, false);
	size_t sizes[] = { 100, 100, 100 };
	add_all(fds[1], &dst, sizes, 3);
	assert_int_equal(q.n, 3);
	struct errlog e = { 0 };
	size_t bytes = 0;
	uint64_t dropped = 0;
	assert_int_equal(udp_sendq_flush(&q, on_err, &e, &bytes, &dropped), 3);
	for (unsigned i = 0; i < 3; i++)
		expect_dgram(fds[0], 100, i);
	close(fds[0]);
	close(fds[1]);
}

static void test_runs_are_bounded(void **state)
{
	int fds[2];
	struct addr dst, other;
	udp_pair(AF_INET, fds, &dst);
	udp_sendq_init(&q, true);
	/* 70 equal datagrams: a run holds at most UDP_SENDQ_GSO_SEGS */
	static size_t sizes[70];
	for (unsigned i = 0; i < 70; i++)
		sizes[i] = 500;
	add_all(fds[1], &dst, sizes, 70);
	assert_int_equal(q.n, 2);
	assert_int_equal(q.nseg[0], UDP_SENDQ_GSO_SEGS);
	/* another address starts a new message */
	other = dst;
	((struct sockaddr_in *)&other.ss)->sin_port ^= htons(1);
	uint8_t b[500] = { 0 };
	assert_true(udp_sendq_add(&q, fds[1], &other, b, 500));
	assert_int_equal(q.n, 3);
	/* another socket does not fit a queue that holds datagrams */
	assert_false(udp_sendq_add(&q, fds[0], &dst, b, 500));
	struct errlog e = { 0 };
	size_t bytes = 0;
	uint64_t dropped = 0;
	unsigned sent = udp_sendq_flush(&q, on_err, &e, &bytes, &dropped);
	assert_int_equal(sent + e.ndrop, 71); /* the stray one may be refused (nobody listens) */
	for (unsigned i = 0; i < 70; i++)
		expect_dgram(fds[0], 500, i);
	expect_none(fds[0]);
	close(fds[0]);
	close(fds[1]);
}

static void test_full_queue_refuses_and_empty_queue_takes_the_largest(void **state)
{
	int fds[2];
	struct addr dst;
	udp_pair(AF_INET, fds, &dst);
	udp_sendq_init(&q, true);
	static uint8_t big[65507];
	assert_true(udp_sendq_add(&q, fds[1], &dst, big, 60000));
	assert_false(udp_sendq_add(&q, fds[1], &dst, big, 6000));
	struct errlog e = { 0 };
	size_t bytes = 0;
	uint64_t dropped = 0;
	assert_int_equal(udp_sendq_flush(&q, on_err, &e, &bytes, &dropped), 1);
	assert_true(udp_sendq_add(&q, fds[1], &dst, big, sizeof(big)));
	assert_int_equal(udp_sendq_flush(&q, on_err, &e, &bytes, &dropped), 1);
	assert_int_equal(bytes, 60000 + sizeof(big));
	close(fds[0]);
	close(fds[1]);
}

/* A path whose MTU is below the run's segment size refuses the coalesced
 * message: the run goes out datagram by datagram (IP fragments them, as it
 * would have without GSO) and that size is not coalesced again. */
static void test_refused_run_is_sent_singly(void **state)
{
	int fds[2];
	struct addr dst;
	udp_pair(AF_INET6, fds, &dst);
	int mtu = 1280;
	assert_int_equal(connect(fds[1], (struct sockaddr *)&dst.ss, dst.len), 0);
	assert_int_equal(setsockopt(fds[1], IPPROTO_IPV6, IPV6_MTU, &mtu, sizeof(mtu)), 0);
	udp_sendq_init(&q, true);
	size_t sizes[] = { 1400, 1400, 1400, 700, 100, 100 };
	add_all(fds[1], NULL, sizes, 6);
	assert_int_equal(q.n, 2);
	struct errlog e = { 0 };
	size_t bytes = 0;
	uint64_t dropped = 0;
	assert_int_equal(udp_sendq_flush(&q, on_err, &e, &bytes, &dropped), 6);
	assert_int_equal(e.calls, 0);
	expect_all(fds[0], sizes, 6);
	expect_none(fds[0]);
	assert_int_equal(q.gso_max, 1399);
	/* runs of 1,400 are no longer coalesced; smaller ones still are */
	add_all(fds[1], NULL, sizes, 6);
	assert_int_equal(q.n, 5);
	assert_int_equal(udp_sendq_flush(&q, on_err, &e, &bytes, &dropped), 6);
	expect_all(fds[0], sizes, 6);
	close(fds[0]);
	close(fds[1]);
}

/* A socket error (ICMP port unreachable on a connected socket) fails the
 * whole run; the owner is told how many datagrams it lost, and when it
 * gives up, the rest of the queue is counted as dropped. */
static void test_errors_count_datagrams(void **state)
{
	int fds[2];
	struct addr dst;
	udp_pair(AF_INET, fds, &dst);
	assert_int_equal(connect(fds[1], (struct sockaddr *)&dst.ss, dst.len), 0);
	close(fds[0]); /* nobody listens any more: ICMP port unreachable */
	uint8_t b[10] = { 0 };
	assert_int_equal(send(fds[1], b, sizeof(b), 0), (ssize_t)sizeof(b));
	usleep(20000); /* the ICMP error is now pending on the socket */
	udp_sendq_init(&q, true);
	size_t sizes[] = { 200, 200, 200, 50, 300, 300 };
	add_all(fds[1], NULL, sizes, 6);
	assert_int_equal(q.n, 2);
	struct errlog e = { .give_up = true };
	size_t bytes = 0;
	uint64_t dropped = 0;
	assert_int_equal(udp_sendq_flush(&q, on_err, &e, &bytes, &dropped), 0);
	assert_int_equal(e.calls, 1);
	assert_int_equal(e.last_err, ECONNREFUSED);
	assert_int_equal(e.ndrop, 4);
	assert_int_equal(dropped, 2);
	close(fds[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_runs_coalesce_and_keep_boundaries),
		cmocka_unit_test(test_no_gso_sends_one_message_each),
		cmocka_unit_test(test_runs_are_bounded),
		cmocka_unit_test(test_full_queue_refuses_and_empty_queue_takes_the_largest),
		cmocka_unit_test(test_refused_run_is_sent_singly),
		cmocka_unit_test(test_errors_count_datagrams),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
