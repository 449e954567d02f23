/* Unit tests for xport_ws: a client layer and a server layer over loopback
 * TCP pairs, driven non-blocking with poll(): the upgrade, several MiB
 * both ways at once with odd write and read sizes (over tcp, and over a
 * pass-through layer that is not "exact", so committed frames are kept),
 * half-close both ways, Ping answered with Pong; and against a raw socket
 * standing in for rathole: the client's request byte for byte, rathole's
 * exact 101, masked frames, the Close; every failure with MR_EWS and its
 * last_error line. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "base/loop.h"
#include "codec/ws_frame.h"
#include "xport/xport.h"
#include "xport/xport_ws.h"

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static short poll_events(unsigned want)
{
	return (short)((want & LOOP_READ ? POLLIN : 0) | (want & LOOP_WRITE ? POLLOUT : 0));
}

static void wait_for(struct xport *x)
{
	struct pollfd p = { .fd = x->fd, .events = poll_events(xport_want(x)) };
	poll(&p, 1, 50);
}

static bool contains(const char *s, const char *sub)
{
	return s && strstr(s, sub) != NULL;
}

/* ---- a pass-through layer that is not XPORT_F_SHORT_IO_EXACT ---- */

struct shim {
	struct xport base;
};

static ssize_t shim_read(struct xport *x, void *b, size_t n) { return xport_read(x->lower, b, n); }
static ssize_t shim_write(struct xport *x, const void *b, size_t n)
{
	/* at most 3000 bytes a call: partial writes on every frame */
	return xport_write(x->lower, b, n < 3000 ? n : 3000);
}
static int shim_shutdown(struct xport *x) { return xport_shutdown_wr(x->lower); }
static unsigned shim_want(struct xport *x) { return xport_want(x->lower); }
static void shim_close(struct xport *x) { xport_close(x->lower); free(x); }

static const struct xport_ops shim_ops = {
	.name = "shim", .read = shim_read, .write = shim_write, .shutdown_wr = shim_shutdown,
	.want = shim_want, .close = shim_close,
};

static struct xport *shim_new(struct xport *lower)
{
	struct shim *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	s->base.ops = &shim_ops;
	s->base.lower = lower;
	s->base.fd = lower->fd;
	s->base.splice_fd = -1;
	return &s->base;
}

/* ---- pairs ---- */

struct pair {
	int fds[2];
	struct xport *c, *s;   /* client on fds[0], server on fds[1] */
	int rc, rs;
};

/* Steps both handshakes until each is done or failed (5 s at most). */
static void handshake2(struct xport *c, struct xport *s, int *rc, int *rs)
{
	*rc = *rs = -EAGAIN;
	uint64_t deadline = now_ms() + 5000;
	while (now_ms() < deadline) {
		if (*rc == -EAGAIN)
			*rc = xport_handshake(c);
		if (*rs == -EAGAIN)
			*rs = xport_handshake(s);
		if (*rc != -EAGAIN && *rs != -EAGAIN)
			return;
		struct pollfd p[2];
		int n = 0;
		if (*rc == -EAGAIN)
			p[n++] = (struct pollfd){ .fd = c->fd, .events = poll_events(xport_want(c)) };
		if (*rs == -EAGAIN)
			p[n++] = (struct pollfd){ .fd = s->fd, .events = poll_events(xport_want(s)) };
		poll(p, (nfds_t)n, 50);
	}
	fail_msg("handshake did not finish within 5 s (%d, %d)", *rc, *rs);
}

static void pair_open(struct pair *p, int bufsz, bool shim)
{
	tcp_pair_bufs(p->fds, bufsz);
	struct xport *lc = xport_tcp_new(p->fds[0]), *ls = xport_tcp_new(p->fds[1]);
	if (shim) {
		lc = shim_new(lc);
		ls = shim_new(ls);
	}
	p->c = xport_ws_new(false, "127.0.0.1:2333", lc);
	p->s = xport_ws_new(true, NULL, ls);
	assert_non_null(p->c);
	assert_non_null(p->s);
	assert_string_equal(p->c->ops->name, "websocket");
	assert_int_equal(p->c->splice_fd, -1);
	assert_int_equal(p->c->flags, 0);
	handshake2(p->c, p->s, &p->rc, &p->rs);
}

static void pair_close(struct pair *p)
{
	xport_close(p->c);
	xport_close(p->s);
}

/* Reads at least want bytes (or to the end of stream) within 5 s. */
static ssize_t read_n(struct xport *x, void *buf, size_t want, size_t cap)
{
	size_t got = 0;
	uint64_t deadline = now_ms() + 5000;
	while (got < want && now_ms() < deadline) {
		ssize_t n = xport_read(x, (char *)buf + got, cap - got);
		if (n == -EAGAIN) {
			wait_for(x);
			continue;
		}
		if (n < 0)
			return n;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

static void write_all(struct xport *x, const void *buf, size_t len)
{
	size_t off = 0;
	uint64_t deadline = now_ms() + 5000;
	while (off < len) {
		assert_true(now_ms() < deadline);
		ssize_t n = xport_write(x, (const char *)buf + off, len - off);
		if (n == -EAGAIN) {
			wait_for(x);
			continue;
		}
		assert_true(n > 0);
		off += (size_t)n;
	}
}

static void shutdown_all(struct xport *x)
{
	uint64_t deadline = now_ms() + 5000;
	int r;
	while ((r = xport_shutdown_wr(x)) == -EAGAIN) {
		assert_true(now_ms() < deadline);
		wait_for(x);
	}
	assert_int_equal(r, 0);
}

/* Reads until the end of stream or an error; returns what the last read
 * said (0: the end). */
static ssize_t read_to_end(struct xport *x)
{
	char buf[4096];
	uint64_t deadline = now_ms() + 5000;
	while (now_ms() < deadline) {
		ssize_t n = xport_read(x, buf, sizeof(buf));
		if (n == -EAGAIN) {
			wait_for(x);
			continue;
		}
		if (n <= 0)
			return n;
	}
	fail_msg("no end of stream within 5 s");
	return -1;
}

/* ---- both directions at once ---- */

struct flow {
	struct xport *w, *r;
	const uint8_t *src;
	uint8_t *dst;
	size_t n, woff, roff;
	unsigned wstep, rstep;
	bool shut, eof;
};

static const size_t WSIZES[] = { 1, 7, 65536, 1000, 70000, 3, 4095, 4096, 125, 126, 65535, 200000, 33 };
static const size_t RSIZES[] = { 65536, 1, 100, 4096, 5000, 13, 70000, 4095 };

/* One step of a flow; true when it made progress. */
static bool flow_step(struct flow *f)
{
	bool moved = false;
	if (f->woff < f->n) {
		size_t k = WSIZES[f->wstep % (sizeof(WSIZES) / sizeof(WSIZES[0]))];
		if (k > f->n - f->woff)
			k = f->n - f->woff;
		/* a retry after -EAGAIN passes the same bytes */
		ssize_t w = xport_write(f->w, f->src + f->woff, k);
		if (w > 0) {
			assert_true((size_t)w <= k);
			f->woff += (size_t)w;
			f->wstep++;
			moved = true;
		} else {
			assert_int_equal(w, -EAGAIN);
		}
	} else if (!f->shut) {
		int r = xport_shutdown_wr(f->w);
		if (r == 0) {
			f->shut = true;
			moved = true;
		} else {
			assert_int_equal(r, -EAGAIN);
		}
	}
	while (!f->eof) {
		size_t k = RSIZES[f->rstep++ % (sizeof(RSIZES) / sizeof(RSIZES[0]))];
		uint8_t *buf = malloc(k);
		ssize_t r = xport_read(f->r, buf, k);
		if (r == -EAGAIN) {
			free(buf);
			break;
		}
		assert_true(r >= 0);
		if (r == 0) {
			f->eof = true;
		} else {
			assert_true(f->roff + (size_t)r <= f->n);
			memcpy(f->dst + f->roff, buf, (size_t)r);
			f->roff += (size_t)r;
		}
		free(buf);
		moved = true;
	}
	return moved;
}

static void both_ways(struct pair *p, size_t n)
{
	uint8_t *a = malloc(n), *b = malloc(n);
	struct flow f[2] = {
		{ .w = p->c, .r = p->s, .src = a, .dst = malloc(n), .n = n },
		{ .w = p->s, .r = p->c, .src = b, .dst = malloc(n), .n = n },
	};
	uint32_t x = 12345;
	for (size_t i = 0; i < n; i++) {
		x = x * 1103515245u + 12345u;
		a[i] = (uint8_t)(x >> 16);
		b[i] = (uint8_t)(x >> 24);
	}
	uint64_t deadline = now_ms() + 20000;
	while (!(f[0].eof && f[1].eof)) {
		assert_true(now_ms() < deadline);
		bool moved = flow_step(&f[0]);
		moved |= flow_step(&f[1]);
		if (!moved && !xport_pending(p->c) && !xport_pending(p->s)) {
			struct pollfd pf[2] = {
				{ .fd = p->c->fd, .events = POLLIN | (f[0].woff < n || !f[0].shut ? POLLOUT : 0) },
				{ .fd = p->s->fd, .events = POLLIN | (f[1].woff < n || !f[1].shut ? POLLOUT : 0) },
			};
			poll(pf, 2, 50);
		}
	}
	for (int i = 0; i < 2; i++) {
		assert_int_equal(f[i].roff, n);
		assert_memory_equal(f[i].dst, f[i].src, n);
		free(f[i].dst);
	}
	free(a);
	free(b);
}

static void test_upgrade_and_data_both_ways(void **state)
{
	struct pair p;
	pair_open(&p, 0, false);
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.rs, 0);
	assert_null(xport_last_error(p.c));
	both_ways(&p, 6 << 20);
	pair_close(&p);
}

static void test_small_buffers_partial_writes(void **state)
{
	struct pair p;
	pair_open(&p, 16 * 1024, false);
	assert_int_equal(p.rc, 0);
	both_ways(&p, 3 << 20);
	pair_close(&p);
}

static void test_committed_frames_over_a_layer(void **state)
{
	/* the lower layer takes 3000 bytes a call and is not exact: frames
	 * are committed and owed to the retry */
	struct pair p;
	pair_open(&p, 32 * 1024, true);
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.rs, 0);
	both_ways(&p, 2 << 20);
	pair_close(&p);
}

static void test_half_close(void **state)
{
	struct pair p;
	pair_open(&p, 0, false);
	assert_int_equal(p.rc, 0);
	write_all(p.c, "question", 8);
	shutdown_all(p.c);
	/* the server gets the bytes, then the end */
	char buf[64];
	assert_int_equal(read_n(p.s, buf, 8, sizeof(buf)), 8);
	assert_memory_equal(buf, "question", 8);
	assert_int_equal(read_to_end(p.s), 0);
	assert_int_equal(xport_read(p.s, buf, sizeof(buf)), 0);
	assert_int_equal(xport_pending(p.s), 0);
	/* the other way still flows, after the client's Close */
	write_all(p.s, "the answer", 10);
	assert_int_equal(read_n(p.c, buf, 10, sizeof(buf)), 10);
	assert_memory_equal(buf, "the answer", 10);
	/* writing after our own Close is refused */
	assert_int_equal(xport_write(p.c, "x", 1), -EPIPE);
	shutdown_all(p.s);
	assert_int_equal(read_to_end(p.c), 0);
	assert_int_equal(xport_shutdown_wr(p.s), 0);
	pair_close(&p);
}

/* ---- against a raw socket ---- */

/* A layer on fds[0] or fds[1]; the raw peer is the other fd. */
struct rawpair {
	int fds[2];
	struct xport *x;
	int raw;
};

static void raw_open(struct rawpair *rp, bool server)
{
	tcp_pair(rp->fds);
	int mine = server ? rp->fds[1] : rp->fds[0];
	rp->raw = server ? rp->fds[0] : rp->fds[1];
	rp->x = xport_ws_new(server, "example.com:2333", xport_tcp_new(mine));
	assert_non_null(rp->x);
}

static void raw_close(struct rawpair *rp)
{
	xport_close(rp->x);
	close(rp->raw);
}

static void raw_send(int fd, const void *b, size_t n)
{
	assert_int_equal(send(fd, b, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Reads exactly n bytes from a raw fd (5 s). */
static void raw_recv(int fd, void *b, size_t n)
{
	size_t got = 0;
	uint64_t deadline = now_ms() + 5000;
	while (got < n) {
		assert_true(now_ms() < deadline);
		ssize_t r = recv(fd, (char *)b + got, n - got, 0);
		if (r < 0 && errno == EAGAIN) {
			struct pollfd p = { .fd = fd, .events = POLLIN };
			poll(&p, 1, 50);
			continue;
		}
		assert_true(r > 0);
		got += (size_t)r;
	}
}

/* Reads from a raw fd until a head's blank line; returns its length. */
static size_t raw_recv_head(int fd, char *b, size_t cap)
{
	size_t got = 0;
	while (got < 4 || memcmp(b + got - 4, "\r\n\r\n", 4) != 0) {
		assert_true(got < cap - 1);
		raw_recv(fd, b + got, 1);
		got++;
	}
	b[got] = '\0';
	return got;
}

/* Steps a handshake until done or failed (5 s). */
static int hs_run(struct xport *x)
{
	uint64_t deadline = now_ms() + 5000;
	int r;
	while ((r = xport_handshake(x)) == -EAGAIN) {
		if (now_ms() >= deadline)
			return -ETIMEDOUT;
		wait_for(x);
	}
	return r;
}

static const char RATHOLE_101_FMT[] =
	"HTTP/1.1 101 Switching Protocols\r\n"
	"connection: Upgrade\r\n"
	"upgrade: websocket\r\n"
	"sec-websocket-accept: %s\r\n"
	"\r\n";

/* The client's request; returns the key it sent (in key). */
static void client_request(struct rawpair *rp, char key[WS_KEY_B64_LEN + 1])
{
	assert_int_equal(xport_handshake(rp->x), -EAGAIN);
	char head[1024];
	size_t n = raw_recv_head(rp->raw, head, sizeof(head));
	const char *k = strstr(head, "Sec-WebSocket-Key: ");
	assert_non_null(k);
	memcpy(key, k + 19, WS_KEY_B64_LEN);
	key[WS_KEY_B64_LEN] = '\0';
	char want[1024];
	snprintf(want, sizeof(want),
		 "GET / HTTP/1.1\r\n"
		 "Host: example.com:2333\r\n"
		 "Connection: Upgrade\r\n"
		 "Upgrade: websocket\r\n"
		 "Sec-WebSocket-Version: 13\r\n"
		 "Sec-WebSocket-Key: %s\r\n"
		 "\r\n", key);
	assert_int_equal(n, strlen(want));
	assert_string_equal(head, want);
	/* 16 random bytes */
	assert_int_equal(key[22], '=');
	assert_int_equal(key[23], '=');
}

static void test_client_against_rathole_bytes(void **state)
{
	struct rawpair rp;
	raw_open(&rp, false);
	char key[WS_KEY_B64_LEN + 1], acc[WS_ACCEPT_LEN + 1];
	client_request(&rp, key);
	/* the client sends nothing more before the 101 */
	char c;
	assert_int_equal(recv(rp.raw, &c, 1, 0), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(ws_accept_key(key, strlen(key), acc), 0);
	/* the 101 and the first frame (Ack Ok) in one segment */
	char resp[512];
	int n = snprintf(resp, sizeof(resp), RATHOLE_101_FMT, acc);
	memcpy(resp + n, "\x82\x04\x00\x00\x00\x00", 6);
	raw_send(rp.raw, resp, (size_t)n + 6);
	assert_int_equal(hs_run(rp.x), 0);
	assert_true(xport_pending(rp.x) > 0);
	uint8_t buf[64];
	assert_int_equal(xport_read(rp.x, buf, 4), 4);
	assert_memory_equal(buf, "\0\0\0\0", 4);
	/* a write is one masked Binary frame */
	write_all(rp.x, "hello", 5);
	uint8_t f[11];
	raw_recv(rp.raw, f, sizeof(f));
	assert_int_equal(f[0], 0x82);
	assert_int_equal(f[1], 0x85);
	ws_mask(f + 6, 5, f + 2, 0);
	assert_memory_equal(f + 6, "hello", 5);
	/* a fresh key per frame */
	write_all(rp.x, "hello", 5);
	uint8_t g[11];
	raw_recv(rp.raw, g, sizeof(g));
	assert_memory_not_equal(g + 2, f + 2, 4);
	/* the Close: 88 80 and a key, then FIN */
	shutdown_all(rp.x);
	uint8_t cl[6];
	raw_recv(rp.raw, cl, sizeof(cl));
	assert_int_equal(cl[0], 0x88);
	assert_int_equal(cl[1], 0x80);
	assert_int_equal(recv(rp.raw, cl, 1, 0), 0);
	/* rathole keeps writing after our Close: still delivered */
	raw_send(rp.raw, "\x82\x03" "abc\x88\x00", 7);
	assert_int_equal(read_n(rp.x, buf, 3, sizeof(buf)), 3);
	assert_memory_equal(buf, "abc", 3);
	assert_int_equal(read_to_end(rp.x), 0);
	raw_close(&rp);
}

static void test_server_against_rathole_bytes(void **state)
{
	struct rawpair rp;
	raw_open(&rp, true);
	static const char req[] =
		"GET / HTTP/1.1\r\n"
		"Host: example.com:2333\r\n"
		"Connection: Upgrade\r\n"
		"Upgrade: websocket\r\n"
		"Sec-WebSocket-Version: 13\r\n"
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		"\r\n";
	assert_int_equal(xport_handshake(rp.x), -EAGAIN);
	assert_int_equal(xport_want(rp.x), LOOP_READ);
	/* in two pieces */
	raw_send(rp.raw, req, 20);
	assert_int_equal(xport_handshake(rp.x), -EAGAIN);
	raw_send(rp.raw, req + 20, sizeof(req) - 21);
	assert_int_equal(hs_run(rp.x), 0);
	char head[512];
	raw_recv_head(rp.raw, head, sizeof(head));
	char want[512];
	snprintf(want, sizeof(want), RATHOLE_101_FMT, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	assert_string_equal(head, want);
	/* protocol.md's masked Hello */
	uint8_t hello[43];
	static const char hx[] = "82a537fa213d37fa213d36182768a0912a152a5c638e9b3b179bda1b8a1143d29eb608c11fa401b61348a3";
	for (size_t i = 0; i < sizeof(hello); i++) {
		unsigned v;
		sscanf(hx + 2 * i, "%2x", &v);
		hello[i] = (uint8_t)v;
	}
	raw_send(rp.raw, hello, sizeof(hello));
	uint8_t buf[64];
	assert_int_equal(read_n(rp.x, buf, 37, sizeof(buf)), 37);
	uint8_t plain[37];
	memcpy(plain, hello + 6, 37);
	ws_mask(plain, 37, hello + 2, 0);
	assert_memory_equal(buf, plain, 37);
	/* the Ack: 82 04 00000000, unmasked */
	write_all(rp.x, "\0\0\0\0", 4);
	uint8_t ack[6];
	raw_recv(rp.raw, ack, 6);
	assert_memory_equal(ack, "\x82\x04\0\0\0\0", 6);
	/* a Ping is answered with its payload, at the next read */
	raw_send(rp.raw, "\x89\x82\x01\x02\x03\x04" "\x71\x6b" "\x82\x81\0\0\0\0" "z", 15);
	assert_int_equal(read_n(rp.x, buf, 1, sizeof(buf)), 1);
	assert_int_equal(buf[0], 'z');
	uint8_t pong[4];
	raw_recv(rp.raw, pong, 4);
	assert_memory_equal(pong, "\x8a\x02pi", 4);
	/* a Pong is ignored; a Close ends the stream */
	raw_send(rp.raw, "\x8a\x80\0\0\0\0" "\x88\x80\0\0\0\0", 12);
	assert_int_equal(read_to_end(rp.x), 0);
	/* the server's Close is unmasked and empty */
	shutdown_all(rp.x);
	raw_recv(rp.raw, pong, 2);
	assert_memory_equal(pong, "\x88\x00", 2);
	raw_close(&rp);
}

/* A client handshake against a raw server that answers resp ("%s" in it
 * stands for the right accept value). */
static void client_fails(const char *resp, const char *line)
{
	struct rawpair rp;
	raw_open(&rp, false);
	char key[WS_KEY_B64_LEN + 1], acc[WS_ACCEPT_LEN + 1];
	client_request(&rp, key);
	assert_int_equal(ws_accept_key(key, strlen(key), acc), 0);
	/* resp with its "%s" (if any) replaced by the right accept value */
	char *text = malloc(strlen(resp) + WS_ACCEPT_LEN + 1);
	const char *at = strstr(resp, "%s");
	size_t pre = at ? (size_t)(at - resp) : strlen(resp);
	memcpy(text, resp, pre);
	text[pre] = '\0';
	if (at) {
		strcat(text, acc);
		strcat(text, at + 2);
	}
	raw_send(rp.raw, text, strlen(text));
	shutdown(rp.raw, SHUT_WR);
	free(text);
	int r = hs_run(rp.x);
	if (r != MR_EWS || !contains(xport_last_error(rp.x), line))
		fail_msg("got %d, \"%s\"; expected MR_EWS and \"%s\"", r,
			 xport_last_error(rp.x) ? xport_last_error(rp.x) : "-", line);
	/* failed for good */
	char b[4];
	assert_int_equal(xport_read(rp.x, b, 4), MR_EWS);
	assert_int_equal(xport_write(rp.x, b, 4), MR_EWS);
	raw_close(&rp);
}

static void test_client_failures(void **state)
{
	client_fails("HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n",
		     "websocket upgrade refused: HTTP 403 Forbidden from the server (is it a websocket server?");
	client_fails("HTTP/1.1 200 OK\r\n\r\n", "HTTP 200 OK");
	client_fails("HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: websocket\r\n"
		     "sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
		     "Sec-WebSocket-Accept is wrong");
	client_fails("HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\r\n",
		     "Sec-WebSocket-Accept is missing");
	client_fails("HTTP/1.1 101 Switching Protocols\r\nconnection: close\r\nupgrade: websocket\r\n"
		     "sec-websocket-accept: %s\r\n\r\n", "no Connection: Upgrade");
	client_fails("HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\n"
		     "sec-websocket-accept: %s\r\n\r\n", "no Upgrade: websocket");
	client_fails("SSH-2.0-OpenSSH_9.2\r\n\r\n", "a malformed response from the server");
	client_fails("HTTP/1.1 101 Switching", "closed the connection before its response was complete");
	/* over 8 KiB without a blank line */
	static char big[9000];
	memset(big, 'a', sizeof(big) - 1);
	memcpy(big, "HTTP/1.1 101 x\r\nX: ", 19);
	client_fails(big, "response is over 8192 bytes");
}

static void test_client_lenient_connection_list(void **state)
{
	/* rathole's client wants "Upgrade" exactly; molerat takes a list */
	struct rawpair rp;
	raw_open(&rp, false);
	char key[WS_KEY_B64_LEN + 1], acc[WS_ACCEPT_LEN + 1], text[512];
	client_request(&rp, key);
	assert_int_equal(ws_accept_key(key, strlen(key), acc), 0);
	int n = snprintf(text, sizeof(text), "HTTP/1.1 101 OK\nConnection: keep-alive, upgrade\n"
			 "Upgrade: WebSocket\nSec-WebSocket-Accept: %s\n\n", acc);
	raw_send(rp.raw, text, (size_t)n);
	assert_int_equal(hs_run(rp.x), 0);
	raw_close(&rp);
}

/* A client that upgraded, then receives frames raw. */
static void client_open(struct rawpair *rp)
{
	raw_open(rp, false);
	char key[WS_KEY_B64_LEN + 1], acc[WS_ACCEPT_LEN + 1], text[512];
	client_request(rp, key);
	assert_int_equal(ws_accept_key(key, strlen(key), acc), 0);
	int n = snprintf(text, sizeof(text), RATHOLE_101_FMT, acc);
	raw_send(rp->raw, text, (size_t)n);
	assert_int_equal(hs_run(rp->x), 0);
}

static void client_frame_fails(const void *bytes, size_t n, bool eof, const char *line)
{
	struct rawpair rp;
	client_open(&rp);
	raw_send(rp.raw, bytes, n);
	if (eof)
		shutdown(rp.raw, SHUT_WR);
	char buf[8192];
	ssize_t r;
	uint64_t deadline = now_ms() + 5000;
	while ((r = xport_read(rp.x, buf, sizeof(buf))) == -EAGAIN || r > 0) {
		assert_true(now_ms() < deadline);
		if (r == -EAGAIN)
			wait_for(rp.x);
	}
	if (r != MR_EWS || !contains(xport_last_error(rp.x), line))
		fail_msg("got %zd, \"%s\"; expected MR_EWS and \"%s\"", r,
			 xport_last_error(rp.x) ? xport_last_error(rp.x) : "-", line);
	raw_close(&rp);
}

static void test_client_frame_failures(void **state)
{
	client_frame_fails("\x81\x02hi", 4, false, "websocket: a Text frame");
	client_frame_fails("\x82\x82\0\0\0\0hi", 8, false, "websocket: a masked frame from the server");
	client_frame_fails("\x82\x05hi", 4, true, "websocket: the server closed the connection inside a frame");
	client_frame_fails("\x82\x7f\0\0\0\0\x01\x31\x2d\x00", 10, false,
			   "a frame over the 16 MiB limit from the server (20000000 bytes)");
	client_frame_fails("\xc2\x00", 2, false, "reserved bits");
}

static void test_client_eof_without_close_is_end(void **state)
{
	struct rawpair rp;
	client_open(&rp);
	raw_send(rp.raw, "\x82\x02ok", 4);
	shutdown(rp.raw, SHUT_WR);
	char buf[16];
	assert_int_equal(read_n(rp.x, buf, 2, sizeof(buf)), 2);
	assert_int_equal(read_to_end(rp.x), 0);
	raw_close(&rp);
}

/* A server handshake against raw bytes; returns its result. */
static int server_given(struct rawpair *rp, const void *bytes, size_t n, bool eof)
{
	raw_open(rp, true);
	if (n)
		raw_send(rp->raw, bytes, n);
	if (eof)
		shutdown(rp->raw, SHUT_WR);
	return hs_run(rp->x);
}

static void server_fails(const char *req, const char *line)
{
	struct rawpair rp;
	int r = server_given(&rp, req, strlen(req), false);
	if (r != MR_EWS || !contains(xport_last_error(rp.x), line))
		fail_msg("got %d, \"%s\"; expected MR_EWS and \"%s\"", r,
			 xport_last_error(rp.x) ? xport_last_error(rp.x) : "-", line);
	raw_close(&rp);
}

#define UPGRADE_HDRS "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"

static void test_server_failures(void **state)
{
	server_fails("GET / HTTP/1.1\r\n" UPGRADE_HDRS "Sec-WebSocket-Key: a\r\n\r\n\x82\x80",
		     "junk after the client's request (2 bytes");
	server_fails("POST / HTTP/1.1\r\n\r\n", "no HTTP GET request");
	server_fails("GET / HTTP/1.0\r\n" UPGRADE_HDRS "Sec-WebSocket-Key: a\r\n\r\n", "older than HTTP/1.1");
	server_fails("GET / HTTP/1.1\r\nConnection: keep-alive\r\nUpgrade: websocket\r\n"
		     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: a\r\n\r\n", "no Connection: Upgrade");
	server_fails("GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n"
		     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: a\r\n\r\n", "no Upgrade: websocket");
	server_fails("GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
		     "Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: a\r\n\r\n", "no Sec-WebSocket-Version: 13");
	server_fails("GET / HTTP/1.1\r\n" UPGRADE_HDRS "\r\n", "no Sec-WebSocket-Key");
	server_fails("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", "a malformed request from the client (bad header name)");
	/* over 8 KiB */
	static char big[9000];
	memset(big, 'a', sizeof(big) - 1);
	memcpy(big, "GET /", 5);
	server_fails(big, "request is over 8192 bytes");
}

static void test_server_plain_hello_fails_fast(void **state)
{
	/* a plain-tcp rathole ControlChannelHello: fails on its first bytes,
	 * without waiting for more */
	static const uint8_t hello[] = { 0x00, 0x00, 0x00, 0x00, 0x01, 0x00 };
	struct rawpair rp;
	uint64_t t0 = now_ms();
	int r = server_given(&rp, hello, sizeof(hello), false);
	assert_int_equal(r, MR_EWS);
	assert_true(now_ms() - t0 < 1000);
	assert_true(contains(xport_last_error(rp.x), "does it use transport.type = \"websocket\"?"));
	raw_close(&rp);
	/* a lone 'G' waits; "GX" fails */
	raw_open(&rp, true);
	raw_send(rp.raw, "G", 1);
	struct pollfd pf = { .fd = rp.x->fd, .events = POLLIN };
	assert_int_equal(poll(&pf, 1, 1000), 1);
	assert_int_equal(xport_handshake(rp.x), -EAGAIN);
	assert_int_equal(xport_want(rp.x), LOOP_READ);
	raw_send(rp.raw, "X", 1);
	assert_int_equal(hs_run(rp.x), MR_EWS);
	raw_close(&rp);
}

static void test_server_probe_is_eof(void **state)
{
	struct rawpair rp;
	assert_int_equal(server_given(&rp, NULL, 0, true), MR_EEOF);
	assert_null(xport_last_error(rp.x));
	raw_close(&rp);
	/* a request cut short is a websocket failure */
	assert_int_equal(server_given(&rp, "GET / HT", 8, true), MR_EWS);
	assert_true(contains(xport_last_error(rp.x), "closed the connection inside its request"));
	raw_close(&rp);
}

static void test_server_refuses_unmasked(void **state)
{
	struct rawpair rp;
	static const char req[] = "GET / HTTP/1.1\r\n" UPGRADE_HDRS "Sec-WebSocket-Key: a\r\n\r\n";
	assert_int_equal(server_given(&rp, req, sizeof(req) - 1, false), 0);
	raw_send(rp.raw, "\x82\x01x", 3);
	char buf[16];
	assert_int_equal(read_n(rp.x, buf, 1, sizeof(buf)), MR_EWS);
	assert_string_equal(xport_last_error(rp.x), "websocket: an unmasked frame from the client");
	raw_close(&rp);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_upgrade_and_data_both_ways),
		cmocka_unit_test(test_small_buffers_partial_writes),
		cmocka_unit_test(test_committed_frames_over_a_layer),
		cmocka_unit_test(test_half_close),
		cmocka_unit_test(test_client_against_rathole_bytes),
		cmocka_unit_test(test_server_against_rathole_bytes),
		cmocka_unit_test(test_client_failures),
		cmocka_unit_test(test_client_lenient_connection_list),
		cmocka_unit_test(test_client_frame_failures),
		cmocka_unit_test(test_client_eof_without_close_is_end),
		cmocka_unit_test(test_server_failures),
		cmocka_unit_test(test_server_plain_hello_fails_fast),
		cmocka_unit_test(test_server_probe_is_eof),
		cmocka_unit_test(test_server_refuses_unmasked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
