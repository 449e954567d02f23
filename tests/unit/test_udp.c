/* udp: both roles over a real loop (the frame parser alone is in
 * test_udp_frame.c), with a loopback TCP pair standing in for the data
 * channel (our end wrapped by xport_tcp_new, the test's end read and
 * written raw), UDP sockets on 127.0.0.1 and ::1. Frames are built and
 * checked here byte by byte from the layout of protocol.md#p-udp-frame, independently of
 * proto.c. Every loop run is bounded in time. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

/* A loopback TCP pair: fds[0] for the module, fds[1] for the test
 * (TCP_NODELAY, so single bytes go out alone). */
static void tcp_pair_nodelay(int fds[2])
{
	tcp_pair(fds);
	int one = 1;
	setsockopt(fds[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/dns.h"
#include "base/err.h"
#include "base/loop.h"
#include "base/sock.h"
#include "plane/udp.h"
#include "xport/xport.h"

#include "udp_frame_testutil.h"

/* ---------------------------------------------------------------- helpers */

/* A UDP socket bound to host:0 (non-blocking); *a gets its address. */
static int udp_socket(const char *host, struct addr *a)
{
	struct addr b = addr_of(host, 0);
	int fd = sock_bind_udp(&b);
	assert_true(fd >= 0);
	assert_int_equal(sock_local_addr(fd, a), 0);
	return fd;
}

/* ---- the loop: bounded runs ---- */

struct tick {
	struct timer t;
	bool (*pred)(void *);
	void *arg;
	uint64_t deadline;
	bool ok;
};

static void tick_cb(struct loop *l, struct timer *t)
{
	struct tick *k = t->data;
	if (k->pred && k->pred(k->arg)) {
		k->ok = true;
		loop_stop(l);
		return;
	}
	if (loop_now(l) >= k->deadline) {
		loop_stop(l);
		return;
	}
	loop_timer_start(l, t, 2);
}

/* Runs the loop until pred(arg) holds (checked every 2 ms) or ms pass;
 * pred NULL runs for ms. Returns whether pred held. */
static bool run_until(struct loop *l, bool (*pred)(void *), void *arg, uint64_t ms)
{
	struct tick k = { .pred = pred, .arg = arg };
	loop_update_time(l);
	k.deadline = loop_now(l) + ms;
	loop_timer_init(&k.t, tick_cb, &k);
	loop_timer_start(l, &k.t, 0);
	assert_int_equal(loop_run(l), 0);
	loop_timer_stop(l, &k.t);
	return k.ok;
}

static void run_ms(struct loop *l, uint64_t ms)
{
	run_until(l, NULL, NULL, ms);
}

/* ---- the test's end of the data channel ---- */

struct peer {
	struct loop *loop;
	int fd;
	uint8_t *in;
	size_t len, cap, pos;   /* received bytes; pos: parsed up to */
	bool eof;
};

static void peer_init(struct peer *p, struct loop *l, int fd)
{
	memset(p, 0, sizeof(*p));
	p->loop = l;
	p->fd = fd;
	p->cap = 1 << 20;
	p->in = malloc(p->cap);
	assert_non_null(p->in);
}

static void peer_done(struct peer *p)
{
	if (p->fd >= 0)
		close(p->fd);
	free(p->in);
}

static void peer_pump(struct peer *p)
{
	for (;;) {
		if (p->len == p->cap) {
			p->cap *= 2;
			p->in = realloc(p->in, p->cap);
			assert_non_null(p->in);
		}
		ssize_t n = recv(p->fd, p->in + p->len, p->cap - p->len, 0);
		if (n > 0) {
			p->len += (size_t)n;
			continue;
		}
		if (n == 0)
			p->eof = true;
		return;
	}
}

/* Writes all of buf, running the loop while the socket is full. */
static void peer_write(struct peer *p, const uint8_t *buf, size_t len)
{
	size_t off = 0;
	int spins = 0;
	while (off < len) {
		ssize_t n = send(p->fd, buf + off, len - off, MSG_NOSIGNAL);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		assert_true(n < 0 && errno == EAGAIN);
		assert_true(++spins < 2000);
		run_ms(p->loop, 2);
	}
}

/* Takes the next complete frame from what the peer received (parsed here
 * by hand). Returns false when none is complete yet. */
static bool peer_frame(struct peer *p, struct addr *from, const uint8_t **payload, size_t *n)
{
	size_t avail = p->len - p->pos;
	const uint8_t *b = p->in + p->pos;
	if (avail < 1)
		return false;
	size_t hlen = b[0];
	assert_true(hlen == 12 || hlen == 24);
	if (avail < 1 + hlen)
		return false;
	size_t plen = (size_t)b[hlen - 1] | (size_t)b[hlen] << 8;
	if (avail < 1 + hlen + plen)
		return false;
	memset(from, 0, sizeof(*from));
	uint16_t port = (uint16_t)(b[hlen - 3] | b[hlen - 2] << 8);
	if (hlen == 12) {
		assert_memory_equal(b + 1, "\0\0\0\0", 4);
		struct sockaddr_in *s = (struct sockaddr_in *)&from->ss;
		s->sin_family = AF_INET;
		memcpy(&s->sin_addr, b + 5, 4);
		s->sin_port = htons(port);
		from->len = sizeof(*s);
	} else {
		assert_memory_equal(b + 1, "\1\0\0\0", 4);
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&from->ss;
		s->sin6_family = AF_INET6;
		memcpy(&s->sin6_addr, b + 5, 16);
		s->sin6_port = htons(port);
		from->len = sizeof(*s);
	}
	*payload = b + 1 + hlen;
	*n = plen;
	p->pos += 1 + hlen + plen;
	return true;
}

/* Complete frames received but not yet taken. */
static size_t peer_count_frames(struct peer *p)
{
	size_t save = p->pos, k = 0;
	struct addr a;
	const uint8_t *pl = NULL;
	size_t n;
	while (peer_frame(p, &a, &pl, &n))
		k++;
	p->pos = save;
	return k;
}

struct want_frames {
	struct peer *p;
	size_t n;
};

static bool pred_frames(void *arg)
{
	struct want_frames *w = arg;
	peer_pump(w->p);
	return peer_count_frames(w->p) >= w->n;
}

static bool wait_frames(struct peer *p, size_t n, uint64_t ms)
{
	struct want_frames w = { p, n };
	return run_until(p->loop, pred_frames, &w, ms);
}

/* ---- an echo service on the loop ---- */

struct echo {
	struct io_watcher w;
	int fd;
	struct addr addr;
	unsigned received;
	unsigned nsrcs;
	struct addr srcs[128];   /* distinct sources, in order of first sight */
	uint8_t buf[65536];
};

static void echo_cb(struct loop *l, struct io_watcher *w, unsigned rev)
{
	struct echo *e = w->data;
	for (;;) {
		struct addr src;
		src.len = sizeof(src.ss);
		ssize_t n = recvfrom(e->fd, e->buf, sizeof(e->buf), 0, (struct sockaddr *)&src.ss, &src.len);
		if (n < 0)
			return;
		e->received++;
		bool seen = false;
		for (unsigned i = 0; i < e->nsrcs; i++)
			seen |= addr_equal(&e->srcs[i], &src);
		if (!seen && e->nsrcs < 128)
			e->srcs[e->nsrcs++] = src;
		assert_int_equal(sendto(e->fd, e->buf, (size_t)n, 0, (struct sockaddr *)&src.ss, src.len), n);
	}
}

static void echo_start_fd(struct loop *l, struct echo *e, int fd)
{
	memset(e, 0, sizeof(*e));
	e->fd = fd;
	assert_int_equal(sock_local_addr(fd, &e->addr), 0);
	int big = 4 << 20;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	loop_io_init(&e->w, echo_cb, e);
	assert_int_equal(loop_io_start(l, &e->w, fd, LOOP_READ), 0);
}

static void echo_start(struct loop *l, struct echo *e, const char *host)
{
	struct addr a;
	echo_start_fd(l, e, udp_socket(host, &a));
}

static void echo_stop(struct loop *l, struct echo *e)
{
	loop_io_stop(l, &e->w);
	close(e->fd);
	e->fd = -1;
}

/* ---- a visitor: a plain UDP socket ---- */

static ssize_t visitor_recv(int fd, uint8_t *buf, size_t cap)
{
	return recv(fd, buf, cap, 0);
}

struct want_dgram {
	int fd;
	uint8_t *buf;
	size_t cap;
	ssize_t got;
};

static bool pred_dgram(void *arg)
{
	struct want_dgram *w = arg;
	w->got = visitor_recv(w->fd, w->buf, w->cap);
	return w->got >= 0;
}

/* Waits for one datagram on fd; returns its size or -1. */
static ssize_t wait_dgram(struct loop *l, int fd, uint8_t *buf, size_t cap, uint64_t ms)
{
	struct want_dgram w = { fd, buf, cap, -1 };
	if (!run_until(l, pred_dgram, &w, ms))
		return -1;
	return w.got;
}

/* ---- the fixture ---- */

struct fx {
	struct loop *loop;
	struct dns *dns;
	int lost_calls;
	int lost_err;
	/* server: what lost() does */
	struct udp_server *srv;
	int reattach_fd;      /* >= 0: attach it inside lost() */
	struct udp_client *cli;
	bool free_in_lost;
};

static void on_lost(void *arg, int err)
{
	struct fx *f = arg;
	f->lost_calls++;
	f->lost_err = err;
	if (f->srv && f->reattach_fd >= 0) {
		struct xport *x = xport_tcp_new(f->reattach_fd);
		f->reattach_fd = -1;
		assert_int_equal(udp_server_attach(f->srv, x), 0);
	}
	if (f->cli && f->free_in_lost) {
		udp_client_free(f->cli);
		f->cli = NULL;
	}
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(loop_new(&f->loop), 0);
	f->reattach_fd = -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	udp_server_free(f->srv);
	udp_client_free(f->cli);
	dns_free(f->dns);
	loop_free(f->loop);
	if (f->reattach_fd >= 0)
		close(f->reattach_fd);
	free(f);
	return 0;
}

static struct udp_env env_of(struct fx *f)
{
	struct udp_env e = {
		.loop = f->loop,
		.dns = f->dns,
		.label = "test",
		.lost = on_lost,
		.arg = f,
	};
	return e;
}

/* A server on host:0 with a data channel attached; *vis_to gets the
 * service address. */
static void server_up(struct fx *f, const struct udp_env *e, const char *host, struct peer *p,
		      struct addr *svc)
{
	int sfd = udp_socket(host, svc);
	assert_int_equal(udp_server_new(e, sfd, &f->srv), 0);
	assert_int_equal(udp_server_attached(f->srv), 0);
	int fds[2];
	tcp_pair_nodelay(fds);
	assert_int_equal(udp_server_attach(f->srv, xport_tcp_new(fds[0])), 0);
	assert_int_equal(udp_server_attached(f->srv), 1);
	peer_init(p, f->loop, fds[1]);
}

static void client_up(struct fx *f, const struct udp_env *e, const char *local, struct peer *p)
{
	int fds[2];
	tcp_pair_nodelay(fds);
	assert_int_equal(udp_client_new(e, local, xport_tcp_new(fds[0]), &f->cli), 0);
	peer_init(p, f->loop, fds[1]);
}

/* An echo service on host (a literal) and a UDP client forwarding to it
 * with env e; p is the test's end of the data channel. The caller stops
 * and frees the echo. */
static struct echo *client_to_echo(struct fx *f, const char *host, const struct udp_env *e, struct peer *p)
{
	struct echo *ec = malloc(sizeof(*ec));
	assert_non_null(ec);
	echo_start(f->loop, ec, host);
	char local[64];
	if (strchr(host, ':'))
		snprintf(local, sizeof(local), "[%s]:%u", host, addr_port(&ec->addr));
	else
		snprintf(local, sizeof(local), "%s:%u", host, addr_port(&ec->addr));
	client_up(f, e, local, p);
	return ec;
}

static const size_t sizes[] = { 0, 1, 1472, 2049, 8192, 65507 };
enum { NSIZES = sizeof(sizes) / sizeof(sizes[0]) };

/* ---------------------------------------------------------------- server */

static void test_server_visitor_frames_v4(void **state)
{
	struct fx *f = *state;
	struct udp_env e = env_of(f);
	struct relay_counters *rc = relay_counters_new();
	e.counters = rc;
	struct peer p;
	struct addr svc, va;
	server_up(f, &e, "127.0.0.1", &p, &svc);
	relay_counters_unref(rc); /* the server holds its own reference */
	int v = udp_socket("127.0.0.1", &va);
	uint8_t *buf = malloc(65536), *exp = malloc(65536 + 64);
	size_t total = 0;
	for (size_t i = 0; i < NSIZES; i++) {
		fill(buf, sizes[i], (unsigned)i);
		assert_int_equal(sendto(v, buf, sizes[i], 0, (struct sockaddr *)&svc.ss, svc.len),
				 (ssize_t)sizes[i]);
		total += sizes[i];
		assert_true(wait_frames(&p, 1, 3000));
		/* the exact bytes: 0c 00000000 7f000001 port:u16le len:u16le payload */
		size_t en = 0;
		exp[en++] = 0x0c;
		memcpy(exp + en, "\0\0\0\0\x7f\0\0\x01", 8);
		en += 8;
		uint16_t port = addr_port(&va);
		exp[en++] = (uint8_t)port;
		exp[en++] = (uint8_t)(port >> 8);
		exp[en++] = (uint8_t)sizes[i];
		exp[en++] = (uint8_t)(sizes[i] >> 8);
		memcpy(exp + en, buf, sizes[i]);
		en += sizes[i];
		assert_int_equal(p.len - p.pos, en);
		assert_memory_equal(p.in + p.pos, exp, en);
		p.pos = p.len;
	}
	struct udp_stats st;
	udp_server_stats(f->srv, &st);
	assert_int_equal(st.datagrams_in, NSIZES);
	assert_int_equal(st.dropped, 0);
	assert_int_equal(st.queued_bytes, 0);
	assert_int_equal(rc->bytes[0], total);
	assert_int_equal(f->lost_calls, 0);
	close(v);
	free(buf);
	free(exp);
	peer_done(&p);
}

static void test_server_frames_to_visitor(void **state)
{
	struct fx *f = *state;
	struct udp_env e = env_of(f);
	struct peer p;
	struct addr svc, va, vb;
	server_up(f, &e, "127.0.0.1", &p, &svc);
	int v = udp_socket("127.0.0.1", &va);
	int w = udp_socket("127.0.0.1", &vb);
	uint8_t *buf = malloc(65536), *fr = malloc(65536 + 64), *got = malloc(65536);
	for (size_t i = 0; i < NSIZES; i++) {
		fill(buf, sizes[i], (unsigned)i + 10);
		size_t n = frame(fr, &va, buf, sizes[i]);
		peer_write(&p, fr, n);
		ssize_t g = wait_dgram(f->loop, v, got, 65536, 3000);
		assert_int_equal(g, (ssize_t)sizes[i]);
		assert_memory_equal(got, buf, sizes[i]);
	}
	/* a v6 address on a v4 socket: dropped and counted, not fatal */
	struct addr six = addr_of("::1", 9);
	size_t n = frame(fr, &six, (const uint8_t *)"zz", 2);
	peer_write(&p, fr, n);
	/* a closed port: sendto succeeds, ICMP is not reported on the
	 * unconnected socket; the service keeps going */
	struct addr gone;
	int tmp = udp_socket("127.0.0.1", &gone);
	close(tmp);
	n = frame(fr, &gone, (const uint8_t *)"lost", 4);
	peer_write(&p, fr, n);
	/* a v4-mapped v6 address on a v4 socket reaches the v4 visitor */
	struct sockaddr_in6 m6 = { .sin6_family = AF_INET6 };
	m6.sin6_addr.s6_addr[10] = m6.sin6_addr.s6_addr[11] = 0xff;
	memcpy(&m6.sin6_addr.s6_addr[12], &((struct sockaddr_in *)&vb.ss)->sin_addr, 4);
	m6.sin6_port = htons(addr_port(&vb));
	struct addr mapped = { .len = sizeof(m6) };
	memcpy(&mapped.ss, &m6, sizeof(m6));
	n = frame(fr, &mapped, (const uint8_t *)"mapped", 6);
	peer_write(&p, fr, n);
	n = frame(fr, &va, (const uint8_t *)"after", 5);
	peer_write(&p, fr, n);
	assert_int_equal(wait_dgram(f->loop, w, got, 65536, 3000), 6);
	assert_memory_equal(got, "mapped", 6);
	assert_int_equal(wait_dgram(f->loop, v, got, 65536, 3000), 5);
	assert_memory_equal(got, "after", 5);
	struct udp_stats st;
	udp_server_stats(f->srv, &st);
	assert_int_equal(st.dropped, 1);
	assert_int_equal(st.datagrams_out, NSIZES + 3);
	assert_int_equal(f->lost_calls, 0);
	assert_int_equal(udp_server_attached(f->srv), 1);
	close(v);
	close(w);
	free(buf);
	free(fr);
	free(got);
	peer_done(&p);
}

static void test_server_v6(void **state)
{
	struct fx *f = *state;
	struct udp_env e = env_of(f);
	struct peer p;
	struct addr svc, va;
	server_up(f, &e, "::1", &p, &svc);
	int v = udp_socket("::1", &va);
	assert_int_equal(sendto(v, "abc", 3, 0, (struct sockaddr *)&svc.ss, svc.len), 3);
	assert_true(wait_frames(&p, 1, 3000));
	uint8_t exp[64];
	size_t en = frame(exp, &va, (const uint8_t *)"abc", 3);
	assert_int_equal(en, 1 + 24 + 3);
	assert_int_equal(p.in[0], 0x18);
	assert_int_equal(p.len, en);
	assert_memory_equal(p.in, exp, en);
	/* and back */
	uint8_t fr[64], got[16];
	size_t n = frame(fr, &va, (const uint8_t *)"xyz!", 4);
	peer_write(&p, fr, n);
	assert_int_equal(wait_dgram(f->loop, v, got, sizeof(got), 3000), 4);
	assert_memory_equal(got, "xyz!", 4);
	close(v);
	peer_done(&p);
}

static void test_server_split_byte_by_byte(void **state)
{
	struct fx *f = *state;
	struct udp_env e = env_of(f);
	struct peer p;
	struct addr svc, va;
	server_up(f, &e, "127.0.0.1", &p, &svc);
	int v = udp_socket("127.0.0.1", &va);
	uint8_t fr[128], got[64];
	size_t n = frame(fr, &va, (const uint8_t *)"one byte at a time", 18);
	n += frame(fr + n, &va, NULL, 0);
	for (size_t i = 0; i < n; i++) {
		peer_write(&p, fr + i, 1);
		run_ms(f->loop, 1);
	}
	assert_int_equal(wait_dgram(f->loop, v, got, sizeof(got), 3000), 18);
	assert_memory_equal(got, "one byte at a time", 18);
	assert_int_equal(wait_dgram(f->loop, v, got, sizeof(got), 3000), 0);
	assert_int_equal(f->lost_calls, 0);
	close(v);
	peer_done(&p);
}

static void test_server_malformed_and_reattach(void **state)
{
	struct fx *f = *state;
	struct udp_env e = env_of(f);
	struct peer p;
	struct addr svc, va;
	server_up(f, &e, "127.0.0.1", &p, &svc);
	int v = udp_socket("127.0.0.1", &va);
	/* lost() attaches the spare channel at once, as the session does */
	int fds[2];
	tcp_pair_nodelay(fds);
	f->reattach_fd = fds[0];
	struct peer p2;
	peer_init(&p2, f->loop, fds[1]);
	uint8_t bad[16];
	size_t n = unhex("0c 02000000 7f000001 3930 0000", bad, sizeof(bad));
	peer_write(&p, bad, n);
	for (int i = 0; i < 500 && f->lost_calls == 0; i++)
		run_ms(f->loop, 2);
	assert_int_equal(f->lost_calls, 1);
	assert_int_equal(f->lost_err, MR_EPROTO_TAG);
	assert_int_equal(udp_server_attached(f->srv), 1);
	/* the old channel was closed */
	run_ms(f->loop, 5);
	peer_pump(&p);
	assert_true(p.eof);
	/* visitors flow on the new one */
	assert_int_equal(sendto(v, "again", 5, 0, (struct sockaddr *)&svc.ss, svc.len), 5);
	assert_true(wait_frames(&p2, 1, 3000));
	struct addr from;
	const uint8_t *pl = NULL;
	size_t pn;
	assert_true(peer_frame(&p2, &from, &pl, &pn));
	assert_int_equal(pn, 5);
	assert_memory_equal(pl, "again", 5);
	assert_true(addr_equal(&from, &va));
	/* EOF on the second: lost(MR_EEOF), now nothing attached */
	close(p2.fd);
	p2.fd = -1;
	for (int i = 0; i < 500 && f->lost_calls == 1; i++)
		run_ms(f->loop, 2);
	assert_int_equal(f->lost_calls, 2);
	assert_int_equal(f->lost_err, MR_EEOF);
	assert_int_equal(udp_server_attached(f->srv), 0);
	/* while detached a visitor datagram waits in the kernel and flows
	 * once a channel is attached */
	assert_int_equal(sendto(v, "held", 4, 0, (struct sockaddr *)&svc.ss, svc.len), 4);
	run_ms(f->loop, 20);
	tcp_pair_nodelay(fds);
	struct peer p3;
	peer_init(&p3, f->loop, fds[1]);
	assert_int_equal(udp_server_attach(f->srv, xport_tcp_new(fds[0])), 0);
	assert_true(wait_frames(&p3, 1, 3000));
	assert_true(peer_frame(&p3, &from, &pl, &pn));
	assert_int_equal(pn, 4);
	assert_memory_equal(pl, "held", 4);
	close(v);
	peer_done(&p);
	peer_done(&p2);
	peer_done(&p3);
}

static void test_server_queue_bound(void **state)
{
	struct fx *f = *state;
	struct udp_env e = env_of(f);
	e.max_queued_bytes = 16384;
	struct addr svc, va;
	int sfd = udp_socket("127.0.0.1", &svc);
	int big = 4 << 20;
	setsockopt(sfd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	assert_int_equal(udp_server_new(&e, sfd, &f->srv), 0);
	int fds[2];
	tcp_pair_nodelay(fds);
	int small = 4096;
	setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	setsockopt(fds[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	assert_int_equal(udp_server_attach(f->srv, xport_tcp_new(fds[0])), 0);
	struct peer p;
	peer_init(&p, f->loop, fds[1]);
	int v = udp_socket("127.0.0.1", &va);
	uint8_t buf[1000];
	unsigned sent = 0;
	struct udp_stats st;
	/* the peer does not read: the kernel buffers fill, then the queue */
	for (int round = 0; round < 40; round++) {
		for (int i = 0; i < 25; i++) {
			fill(buf, sizeof(buf), sent);
			memcpy(buf, &sent, sizeof(sent));
			if (sendto(v, buf, sizeof(buf), 0, (struct sockaddr *)&svc.ss, svc.len) == sizeof(buf))
				sent++;
		}
		run_ms(f->loop, 2);
		udp_server_stats(f->srv, &st);
		assert_true(st.queued_bytes <= 16384);
	}
	udp_server_stats(f->srv, &st);
	assert_true(st.dropped > 0);
	assert_true(st.queued_bytes > 0);
	assert_int_equal(f->lost_calls, 0);
	/* now drain: every frame that was queued arrives whole, in order */
	uint64_t in = st.datagrams_in;
	assert_true(wait_frames(&p, in, 5000));
	unsigned last = 0;
	for (uint64_t k = 0; k < in; k++) {
		struct addr from;
		const uint8_t *pl = NULL;
		size_t n;
		assert_true(peer_frame(&p, &from, &pl, &n));
		assert_int_equal(n, sizeof(buf));
		unsigned idx;
		memcpy(&idx, pl, sizeof(idx));
		assert_true(k == 0 || idx > last);
		last = idx;
		fill(buf, sizeof(buf), idx);
		assert_memory_equal(pl + sizeof(idx), buf + sizeof(idx), sizeof(buf) - sizeof(idx));
	}
	run_ms(f->loop, 20);
	peer_pump(&p);
	assert_int_equal(p.len, p.pos);
	udp_server_stats(f->srv, &st);
	assert_int_equal(st.queued_bytes, 0);
	assert_int_equal(st.datagrams_in + st.dropped, sent);
	close(v);
	peer_done(&p);
}


/* ---- a transport that holds bytes inside (as TLS does): its fd never
 * becomes readable, the bytes come only through pending() ---- */

struct memx {
	struct xport base;
	int peer;            /* the socketpair's other end (kept open) */
	uint8_t *buf;
	size_t len, off;
};

static ssize_t memx_read(struct xport *x, void *b, size_t n)
{
	struct memx *m = (struct memx *)x;
	if (m->off == m->len)
		return -EAGAIN;
	size_t k = m->len - m->off;
	if (k > n)
		k = n;
	if (k > 4093)
		k = 4093;   /* odd pieces: frames split anywhere */
	memcpy(b, m->buf + m->off, k);
	m->off += k;
	return (ssize_t)k;
}

static ssize_t memx_write(struct xport *x, const void *b, size_t n)
{
	return (ssize_t)n;   /* swallowed */
}

static int memx_shutdown(struct xport *x) { return 0; }
static unsigned memx_want(struct xport *x) { return LOOP_READ; }

static size_t memx_pending(struct xport *x)
{
	struct memx *m = (struct memx *)x;
	return m->len - m->off;
}

static void memx_close(struct xport *x)
{
	struct memx *m = (struct memx *)x;
	close(m->base.fd);
	close(m->peer);
	free(m->buf);
	free(m);
}

static const struct xport_ops memx_ops = {
	.name = "mem",
	.read = memx_read,
	.write = memx_write,
	.shutdown_wr = memx_shutdown,
	.want = memx_want,
	.pending = memx_pending,
	.close = memx_close,
};

static void test_server_pending_bytes_resume(void **state)
{
	struct fx *f = *state;
	struct udp_env e = env_of(f);
	struct addr svc, va;
	int sfd = udp_socket("127.0.0.1", &svc);
	assert_int_equal(udp_server_new(&e, sfd, &f->srv), 0);
	int v = udp_socket("127.0.0.1", &va);
	/* 600 frames of 1000 bytes: more than one wake-up's read budget */
	enum { N = 600, SZ = 1000 };
	struct memx *m = calloc(1, sizeof(*m));
	m->buf = malloc(N * (SZ + 16));
	uint8_t pl[SZ];
	for (unsigned i = 0; i < N; i++) {
		fill(pl, SZ, i);
		m->len += frame(m->buf + m->len, &va, pl, SZ);
	}
	assert_true(m->len > 2 * UDP_READ_BUDGET);
	int sp[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sp), 0);
	m->base.ops = &memx_ops;
	m->base.fd = sp[0];
	m->base.splice_fd = -1;
	m->peer = sp[1];
	assert_int_equal(udp_server_attach(f->srv, &m->base), 0);
	struct udp_stats st;
	for (int i = 0; i < 500; i++) {
		run_ms(f->loop, 2);
		udp_server_stats(f->srv, &st);
		if (st.datagrams_out + st.dropped == N)
			break;
	}
	udp_server_stats(f->srv, &st);
	assert_int_equal(st.datagrams_out + st.dropped, N);
	assert_int_equal(f->lost_calls, 0);
	close(v);
}

/* ---------------------------------------------------------------- client */

static void test_client_echo_sizes(void **state)
{
	struct fx *f = *state;
	struct udp_env e = env_of(f);
	struct peer p;
	struct echo *ec = client_to_echo(f, "127.0.0.1", &e, &p);
	struct addr vis = addr_of("203.0.113.7", 51820);
	uint8_t *buf = malloc(65536), *fr = malloc(65536 + 64);
	/* protocol.md#p-udp's transcript first: the reply frame is the request frame */
	uint8_t hello[32];
	size_t hn = unhex("0c00000000cb0071076cca050068656c6c6f", hello, sizeof(hello));
	peer_write(&p, hello, hn);
	assert_true(wait_frames(&p, 1, 3000));
	assert_int_equal(p.len, hn);
	assert_memory_equal(p.in, hello, hn);
	p.pos = p.len;
	for (size_t i = 0; i < NSIZES; i++) {
		fill(buf, sizes[i], (unsigned)i + 20);
		size_t n = frame(fr, &vis, buf, sizes[i]);
		peer_write(&p, fr, n);
		assert_true(wait_frames(&p, 1, 3000));
		assert_int_equal(p.len - p.pos, n);
		assert_memory_equal(p.in + p.pos, fr, n);
		p.pos = p.len;
	}
	struct udp_stats st;
	udp_client_stats(f->cli, &st);
	assert_int_equal(st.mappings_active, 1);
	assert_int_equal(st.mappings_total, 1);
	assert_int_equal(st.datagrams_in, NSIZES + 1);
	assert_int_equal(st.datagrams_out, NSIZES + 1);
	assert_int_equal(st.dropped, 0);
	assert_int_equal(ec->nsrcs, 1);
	assert_int_equal(f->lost_calls, 0);
	echo_stop(f->loop, ec);
	free(ec);
	free(buf);
	free(fr);
	peer_done(&p);
}

static void test_client_50_visitors(void **state)
{
	struct fx *f = *state;
	struct udp_env e = env_of(f);
	struct peer p;
	struct echo *ec = client_to_echo(f, "127.0.0.1", &e, &p);
	enum { N = 50 };
	struct addr vis[N];
	uint8_t fr[128];
	/* all 50 in one write: half v4, half v6 */
	uint8_t all[N * 64];
	size_t an = 0;
	for (int i = 0; i < N; i++) {
		char host[64];
		if (i % 2)
			snprintf(host, sizeof(host), "198.51.100.%d", i);
		else
			snprintf(host, sizeof(host), "2001:db8::%x", i);
		vis[i] = addr_of(host, (uint16_t)(40000 + i));
		char msg[16];
		int ml = snprintf(msg, sizeof(msg), "visitor %d", i);
		an += frame(all + an, &vis[i], (const uint8_t *)msg, (size_t)ml);
	}
	peer_write(&p, all, an);
	assert_true(wait_frames(&p, N, 5000));
	bool seen[N] = { false };
	for (int k = 0; k < N; k++) {
		struct addr from;
		const uint8_t *pl = NULL;
		size_t n;
		assert_true(peer_frame(&p, &from, &pl, &n));
		int idx = -1;
		char msg[16];
		assert_true(n < sizeof(msg));
		memcpy(msg, pl, n);
		msg[n] = 0;
		assert_int_equal(sscanf(msg, "visitor %d", &idx), 1);
		assert_true(idx >= 0 && idx < N);
		assert_false(seen[idx]);
		seen[idx] = true;
		assert_true(addr_equal(&from, &vis[idx]));
	}
	struct udp_stats st;
	udp_client_stats(f->cli, &st);
	assert_int_equal(st.mappings_active, N);
	assert_int_equal(ec->nsrcs, N);
	/* a second round: replies still routed to the right visitor, through
	 * the same 50 mappings */
	for (int i = N - 1; i >= 0; i--) {
		char msg[16];
		int ml = snprintf(msg, sizeof(msg), "again %d", i);
		size_t n = frame(fr, &vis[i], (const uint8_t *)msg, (size_t)ml);
		peer_write(&p, fr, n);
	}
	assert_true(wait_frames(&p, N, 5000));
	for (int k = 0; k < N; k++) {
		struct addr from;
		const uint8_t *pl = NULL;
		size_t n;
		assert_true(peer_frame(&p, &from, &pl, &n));
		char msg[16];
		memcpy(msg, pl, n);
		msg[n] = 0;
		int idx = -1;
		assert_int_equal(sscanf(msg, "again %d", &idx), 1);
		assert_true(idx >= 0 && idx < N);
		assert_true(addr_equal(&from, &vis[idx]));
	}
	udp_client_stats(f->cli, &st);
	assert_int_equal(st.mappings_total, N);
	assert_int_equal(ec->nsrcs, N);
	echo_stop(f->loop, ec);
	free(ec);
	peer_done(&p);
}

struct want_maps {
	struct udp_client *c;
	uint64_t n;
};

static bool pred_maps(void *arg)
{
	struct want_maps *w = arg;
	struct udp_stats st;
	udp_client_stats(w->c, &st);
	return st.mappings_active == w->n;
}

static void test_client_idle_expiry(void **state)
{
	struct fx *f = *state;
	struct udp_env e = env_of(f);
	e.idle_ms = 200;
	struct peer p;
	struct echo *ec = client_to_echo(f, "127.0.0.1", &e, &p);
	struct addr vis = addr_of("192.0.2.1", 1000);
	uint8_t fr[64];
	size_t n = frame(fr, &vis, (const uint8_t *)"ping", 4);
	/* traffic every 50 ms keeps the mapping alive past 200 ms */
	for (int i = 0; i < 8; i++) {
		peer_write(&p, fr, n);
		assert_true(wait_frames(&p, (size_t)i + 1, 3000));
		if (i < 7)
			run_ms(f->loop, 50);
	}
	struct udp_stats st;
	udp_client_stats(f->cli, &st);
	assert_int_equal(st.mappings_active, 1);
	assert_int_equal(st.mappings_total, 1);
	assert_int_equal(ec->nsrcs, 1);
	/* idle from the last reply on: gone after 200 ms (not much later) */
	loop_update_time(f->loop);
	uint64_t t0 = loop_now(f->loop);
	struct want_maps w = { f->cli, 0 };
	assert_true(run_until(f->loop, pred_maps, &w, 2000));
	loop_update_time(f->loop);
	uint64_t took = loop_now(f->loop) - t0;
	if (took < 150 || took > 1000)
		fail_msg("the idle mapping went after %llu ms, idle timeout 200 ms", (unsigned long long)took);
	/* a later datagram makes a fresh mapping: a new source port */
	peer_write(&p, fr, n);
	assert_true(wait_frames(&p, 9, 3000));
	udp_client_stats(f->cli, &st);
	assert_int_equal(st.mappings_active, 1);
	assert_int_equal(st.mappings_total, 2);
	assert_int_equal(ec->nsrcs, 2);
	assert_int_not_equal(addr_port(&ec->srcs[0]), addr_port(&ec->srcs[1]));
	assert_int_equal(f->lost_calls, 0);
	echo_stop(f->loop, ec);
	free(ec);
	peer_done(&p);
}

struct want_total {
	struct udp_client *c;
};

static bool pred_refused(void *arg)
{
	struct want_total *w = arg;
	struct udp_stats st;
	udp_client_stats(w->c, &st);
	return st.mappings_total == 1 && st.mappings_active == 0;
}

static void test_client_local_absent(void **state)
{
	struct fx *f = *state;
	struct addr gone;
	int tmp = udp_socket("127.0.0.1", &gone);
	close(tmp);
	struct udp_env e = env_of(f);
	char local[64];
	snprintf(local, sizeof(local), "127.0.0.1:%u", addr_port(&gone));
	struct peer p;
	client_up(f, &e, local, &p);
	struct addr va = addr_of("192.0.2.1", 1000), vb = addr_of("192.0.2.2", 2000);
	uint8_t fr[64];
	size_t n = frame(fr, &va, (const uint8_t *)"anyone?", 7);
	peer_write(&p, fr, n);
	/* a mapping was made, and the ICMP port unreachable -> ECONNREFUSED
	 * took it away again */
	struct want_total w = { f->cli };
	assert_true(run_until(f->loop, pred_refused, &w, 2000));
	assert_int_equal(f->lost_calls, 0);
	peer_pump(&p);
	assert_int_equal(p.len, 0);
	assert_false(p.eof);
	/* the service is still up: once something listens there, both the
	 * refused visitor and a new one get through */
	int efd = sock_bind_udp(&gone);
	assert_true(efd >= 0);
	struct echo *ec = malloc(sizeof(*ec));
	echo_start_fd(f->loop, ec, efd);
	n = frame(fr, &vb, (const uint8_t *)"b", 1);
	peer_write(&p, fr, n);
	n = frame(fr, &va, (const uint8_t *)"a", 1);
	peer_write(&p, fr, n);
	assert_true(wait_frames(&p, 2, 3000));
	struct addr from;
	const uint8_t *pl = NULL;
	size_t pn;
	int got_a = 0, got_b = 0;
	for (int k = 0; k < 2; k++) {
		assert_true(peer_frame(&p, &from, &pl, &pn));
		assert_int_equal(pn, 1);
		if (pl[0] == 'a') {
			got_a++;
			assert_true(addr_equal(&from, &va));
		} else {
			got_b++;
			assert_true(addr_equal(&from, &vb));
		}
	}
	assert_int_equal(got_a, 1);
	assert_int_equal(got_b, 1);
	struct udp_stats st;
	udp_client_stats(f->cli, &st);
	assert_int_equal(st.mappings_active, 2);
	assert_int_equal(st.mappings_total, 3);
	assert_int_equal(f->lost_calls, 0);
	echo_stop(f->loop, ec);
	free(ec);
	peer_done(&p);
}

static void test_client_v6_local(void **state)
{
	struct fx *f = *state;
	struct udp_env e = env_of(f);
	struct peer p;
	struct echo *ec = client_to_echo(f, "::1", &e, &p);
	uint8_t in[64];
	size_t n = unhex("180100000020010db8000000000000000000000001bb010300010203", in, sizeof(in));
	peer_write(&p, in, n);
	uint8_t v4[64];
	size_t n4 = unhex("0c00000000cb0071076cca050068656c6c6f", v4, sizeof(v4));
	peer_write(&p, v4, n4);
	assert_true(wait_frames(&p, 2, 3000));
	/* replies, whatever their order, are the request frames */
	bool six_first = p.in[0] == 0x18;
	if (six_first) {
		assert_memory_equal(p.in, in, n);
		assert_memory_equal(p.in + n, v4, n4);
	} else {
		assert_memory_equal(p.in, v4, n4);
		assert_memory_equal(p.in + n4, in, n);
	}
	assert_int_equal(ec->nsrcs, 2);
	assert_int_equal(ec->srcs[0].ss.ss_family, AF_INET6);
	echo_stop(f->loop, ec);
	free(ec);
	peer_done(&p);
}

static void test_client_split_byte_by_byte(void **state)
{
	struct fx *f = *state;
	struct udp_env e = env_of(f);
	struct peer p;
	struct echo *ec = client_to_echo(f, "127.0.0.1", &e, &p);
	struct addr vis = addr_of("2001:db8::1", 443);
	uint8_t fr[128];
	size_t n = frame(fr, &vis, (const uint8_t *)"split", 5);
	for (size_t i = 0; i < n; i++) {
		peer_write(&p, fr + i, 1);
		run_ms(f->loop, 1);
	}
	assert_true(wait_frames(&p, 1, 3000));
	assert_int_equal(p.len, n);
	assert_memory_equal(p.in, fr, n);
	assert_int_equal(f->lost_calls, 0);
	echo_stop(f->loop, ec);
	free(ec);
	peer_done(&p);
}

static void client_malformed(struct fx *f, const char *hex, int want)
{
	struct udp_env e = env_of(f);
	struct peer p;
	struct echo *ec = client_to_echo(f, "127.0.0.1", &e, &p);
	f->free_in_lost = true;
	/* one good frame first: its mapping is closed with the channel */
	struct addr vis = addr_of("192.0.2.9", 9);
	uint8_t fr[64];
	size_t n = frame(fr, &vis, (const uint8_t *)"ok", 2);
	peer_write(&p, fr, n);
	assert_true(wait_frames(&p, 1, 3000));
	if (hex) {
		n = unhex(hex, fr, sizeof(fr));
		peer_write(&p, fr, n);
	} else {
		assert_int_equal(shutdown(p.fd, SHUT_WR), 0);
	}
	for (int i = 0; i < 500 && f->lost_calls == 0; i++)
		run_ms(f->loop, 2);
	assert_int_equal(f->lost_calls, 1);
	assert_int_equal(f->lost_err, want);
	assert_null(f->cli); /* freed inside lost() */
	/* the channel was closed at once */
	run_ms(f->loop, 5);
	peer_pump(&p);
	assert_true(p.eof);
	echo_stop(f->loop, ec);
	free(ec);
	peer_done(&p);
}

static void test_client_malformed_tag(void **state)
{
	client_malformed(*state, "0c 02000000 7f000001 3930 0000", MR_EPROTO_TAG);
}

static void test_client_malformed_short(void **state)
{
	client_malformed(*state, "04 00000000", MR_EPROTO_SHORT);
}

static void test_client_eof(void **state)
{
	client_malformed(*state, NULL, MR_EEOF);
}

static void test_client_mapping_cap(void **state)
{
	struct fx *f = *state;
	struct udp_env e = env_of(f);
	e.max_mappings = 5;
	struct peer p;
	struct echo *ec = client_to_echo(f, "127.0.0.1", &e, &p);
	uint8_t all[8 * 32];
	size_t an = 0;
	struct addr vis[8];
	for (int i = 0; i < 8; i++) {
		char host[32];
		snprintf(host, sizeof(host), "192.0.2.%d", i + 1);
		vis[i] = addr_of(host, 7);
		uint8_t b = (uint8_t)i;
		an += frame(all + an, &vis[i], &b, 1);
	}
	peer_write(&p, all, an);
	assert_true(wait_frames(&p, 5, 3000));
	run_ms(f->loop, 30);
	peer_pump(&p);
	assert_int_equal(peer_count_frames(&p), 5);
	for (int k = 0; k < 5; k++) {
		struct addr from;
		const uint8_t *pl = NULL;
		size_t n;
		assert_true(peer_frame(&p, &from, &pl, &n));
		assert_int_equal(n, 1);
		assert_true(pl[0] < 5);
		assert_true(addr_equal(&from, &vis[pl[0]]));
	}
	struct udp_stats st;
	udp_client_stats(f->cli, &st);
	assert_int_equal(st.mappings_active, 5);
	assert_int_equal(st.dropped, 3);
	assert_int_equal(ec->nsrcs, 5);
	echo_stop(f->loop, ec);
	free(ec);
	peer_done(&p);
}

static void test_client_resolving_queue(void **state)
{
	struct fx *f = *state;
	assert_int_equal(dns_new(f->loop, &f->dns), 0);
	/* a dual-stack echo on [::]: "localhost" may resolve to either */
	struct echo *ec = malloc(sizeof(*ec));
	struct addr any = addr_of("::", 0);
	int efd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(efd >= 0);
	int zero = 0;
	assert_int_equal(setsockopt(efd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)), 0);
	assert_int_equal(bind(efd, (struct sockaddr *)&any.ss, any.len), 0);
	echo_start_fd(f->loop, ec, efd);
	struct udp_env e = env_of(f);
	char local[64];
	snprintf(local, sizeof(local), "localhost:%u", addr_port(&ec->addr));
	struct peer p;
	client_up(f, &e, local, &p);
	/* 300 frames in one write reach the client before the name resolves:
	 * 256 wait, 44 are dropped */
	enum { N = 300 };
	struct addr vis = addr_of("192.0.2.1", 1);
	uint8_t *all = malloc(N * 32);
	size_t an = 0;
	for (int i = 0; i < N; i++) {
		uint8_t b[2] = { (uint8_t)i, (uint8_t)(i >> 8) };
		an += frame(all + an, &vis, b, 2);
	}
	peer_write(&p, all, an);
	assert_true(wait_frames(&p, UDP_MAX_QUEUED_PER_MAPPING, 5000));
	run_ms(f->loop, 30);
	peer_pump(&p);
	assert_int_equal(peer_count_frames(&p), UDP_MAX_QUEUED_PER_MAPPING);
	/* in order, the first 256 */
	for (int k = 0; k < UDP_MAX_QUEUED_PER_MAPPING; k++) {
		struct addr from;
		const uint8_t *pl = NULL;
		size_t n;
		assert_true(peer_frame(&p, &from, &pl, &n));
		assert_int_equal(n, 2);
		assert_int_equal(pl[0] | pl[1] << 8, k);
	}
	struct udp_stats st;
	udp_client_stats(f->cli, &st);
	assert_int_equal(st.dropped, N - UDP_MAX_QUEUED_PER_MAPPING);
	assert_int_equal(st.mappings_active, 1);
	free(all);
	echo_stop(f->loop, ec);
	free(ec);
	peer_done(&p);
}

static void test_client_bad_args(void **state)
{
	struct fx *f = *state;
	struct udp_env e = env_of(f);
	int fds[2];
	tcp_pair_nodelay(fds);
	struct udp_client *c = NULL;
	/* not host:port: the xport is closed, nothing created */
	assert_int_equal(udp_client_new(&e, "no-port", xport_tcp_new(fds[0]), &c), MR_EFORMAT);
	assert_null(c);
	char b;
	ssize_t n;
	for (int i = 0; i < 100 && (n = recv(fds[1], &b, 1, 0)) < 0; i++)
		usleep(1000);
	assert_int_equal(n, 0);
	close(fds[1]);
	/* a name without a resolver */
	tcp_pair_nodelay(fds);
	assert_int_equal(udp_client_new(&e, "localhost:53", xport_tcp_new(fds[0]), &c), MR_EFORMAT);
	close(fds[1]);
	/* free(NULL) is a no-op */
	udp_client_free(NULL);
	udp_server_free(NULL);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_server_visitor_frames_v4, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_frames_to_visitor, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_v6, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_split_byte_by_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_malformed_and_reattach, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_queue_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_pending_bytes_resume, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_echo_sizes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_50_visitors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_idle_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_local_absent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_v6_local, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_split_byte_by_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_malformed_tag, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_malformed_short, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_eof, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_mapping_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_resolving_queue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_bad_args, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
