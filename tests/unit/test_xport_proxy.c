/* xport_proxy: the proxy step as a layer (src/xport/xport_proxy.c), over a
 * loopback TCP pair whose other end is a fake proxy scripted here: each
 * step expects the exact bytes of a request and answers. Every script also
 * runs over a lower layer that moves one byte per call and says -EAGAIN
 * every other call, so each state resumes where it stopped. Failures give
 * MR_EPROXY and one line naming the proxy, never the password; success
 * leaves the tunnel's bytes alone and makes the tcp layer's splice_fd and
 * flags the layer's. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "testutil.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/loop.h"
#include "codec/conf_url.h"
#include "xport/xport.h"
#include "xport/xport_proxy.h"

#define B(...) ((const uint8_t[]){ __VA_ARGS__ }), sizeof((const uint8_t[]){ __VA_ARGS__ })
#define S(s) ((const uint8_t *)(s)), (sizeof(s) - 1)

/* ---- a lower layer that trickles: one byte per call, -EAGAIN every other */

struct trickle {
	struct xport base;
	unsigned calls;
	unsigned want;
};

static ssize_t tr_read(struct xport *x, void *buf, size_t len)
{
	struct trickle *t = (struct trickle *)x;
	t->want = LOOP_READ;
	if (t->calls++ % 2 == 0)
		return -EAGAIN;
	ssize_t n = xport_read(x->lower, buf, len ? 1 : 0);
	if (n == -EAGAIN)
		t->want = xport_want(x->lower);
	return n;
}

static ssize_t tr_write(struct xport *x, const void *buf, size_t len)
{
	struct trickle *t = (struct trickle *)x;
	t->want = LOOP_WRITE;
	if (t->calls++ % 2 == 0)
		return -EAGAIN;
	return xport_write(x->lower, buf, len ? 1 : 0);
}

static int tr_shutdown(struct xport *x) { return xport_shutdown_wr(x->lower); }
static unsigned tr_want(struct xport *x) { return ((struct trickle *)x)->want; }

static void tr_close(struct xport *x)
{
	xport_close(x->lower);
	free(x);
}

static const struct xport_ops trickle_ops = {
	.name = "trickle", .read = tr_read, .write = tr_write, .shutdown_wr = tr_shutdown,
	.want = tr_want, .close = tr_close,
};

static struct xport *trickle_new(struct xport *lower)
{
	struct trickle *t = calloc(1, sizeof(*t));
	assert_non_null(t);
	t->base.ops = &trickle_ops;
	t->base.lower = lower;
	t->base.fd = lower->fd;
	t->base.splice_fd = -1;
	t->want = LOOP_WRITE;
	return &t->base;
}

/* ---- the fake proxy */

enum step_end {
	END_NONE = 0,
	END_CLOSE,   /* FIN after the reply */
	END_RESET,   /* RST after the reply */
};

struct step {
	const uint8_t *expect;       /* the request, exactly */
	size_t expect_len;
	const uint8_t *reply;        /* what the proxy answers (may be none) */
	size_t reply_len;
	enum step_end end;
};

struct run {
	struct xport *x;
	int proxy;     /* the fake proxy's end; -1 once closed */
	int client;    /* the layer's socket */
};

static struct proxy_conf *conf(const char *url, const char *remote)
{
	struct conf_url u;
	const char *why = NULL;
	assert_int_equal(conf_url_parse(url, strlen(url), &u, &why), 0);
	struct proxy_conf *pc = proxy_conf_new(&u, remote);
	conf_url_free(&u);
	return pc;
}

static void wait_fd(int fd, short events)
{
	struct pollfd p = { .fd = fd, .events = events };
	poll(&p, 1, 10);
}

static short poll_events(unsigned want)
{
	return (short)((want & LOOP_READ ? POLLIN : 0) | (want & LOOP_WRITE ? POLLOUT : 0));
}

/* Runs the script; returns the handshake's last result with the layer in
 * rn (close it with run_end). */
static int run_script(struct run *rn, const char *url, const char *remote, const struct step *steps, size_t n,
		      bool trickle)
{
	struct proxy_conf *pc = conf(url, remote);
	assert_non_null(pc);
	int fds[2];
	tcp_pair(fds);
	struct xport *low = xport_tcp_new(fds[0]);
	assert_non_null(low);
	if (trickle)
		low = trickle_new(low);
	rn->x = xport_proxy_new(pc, low);
	/* the layer holds its own reference */
	proxy_conf_unref(pc);
	assert_non_null(rn->x);
	rn->client = fds[0];
	rn->proxy = fds[1];
	assert_int_equal(rn->x->splice_fd, -1);
	assert_int_equal(rn->x->flags, 0);
	assert_int_equal(rn->x->fd, fds[0]);
	int r = -EAGAIN;
	for (size_t i = 0; i < n; i++) {
		uint8_t got[2048];
		size_t have = 0;
		for (int k = 0; have < steps[i].expect_len && k < 3000; k++) {
			if (r == -EAGAIN)
				r = xport_handshake(rn->x);
			ssize_t m = recv(rn->proxy, got + have, sizeof(got) - have, 0);
			if (m > 0)
				have += (size_t)m;
			else if (r == -EAGAIN && xport_want(rn->x) == LOOP_WRITE)
				continue;
			else
				wait_fd(rn->proxy, POLLIN);
		}
		if (have != steps[i].expect_len || memcmp(got, steps[i].expect, have) != 0)
			fail_msg("step %zu: the proxy got %zu bytes, expected %zu (handshake %d)", i, have,
				 steps[i].expect_len, r);
		if (steps[i].reply_len)
			assert_int_equal(send(rn->proxy, steps[i].reply, steps[i].reply_len, MSG_NOSIGNAL),
					 (ssize_t)steps[i].reply_len);
		if (steps[i].end == END_RESET) {
			struct linger lg = { .l_onoff = 1, .l_linger = 0 };
			setsockopt(rn->proxy, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		}
		if (steps[i].end != END_NONE) {
			close(rn->proxy);
			rn->proxy = -1;
		}
	}
	for (int k = 0; r == -EAGAIN && k < 20000; k++) {
		r = xport_handshake(rn->x);
		if (r == -EAGAIN)
			wait_fd(rn->client, poll_events(xport_want(rn->x)));
	}
	return r;
}

static void run_end(struct run *rn)
{
	xport_close(rn->x);
	if (rn->proxy >= 0)
		close(rn->proxy);
}

/* The script ends in a failure whose line holds want (and never "secret"). */
static void expect_fail(const char *url, const char *remote, const struct step *steps, size_t n,
			const char *want)
{
	for (int trickle = 0; trickle < 2; trickle++) {
		struct run rn;
		int r = run_script(&rn, url, remote, steps, n, trickle);
		const char *e = xport_last_error(rn.x);
		if (r != MR_EPROXY || !e || !strstr(e, want))
			fail_msg("%s (trickle %d): %d \"%s\", expected MR_EPROXY with \"%s\"", url, trickle, r,
				 e ? e : "(none)", want);
		if (strstr(e, "secret") || strchr(e, '\n'))
			fail_msg("the line shows the password or spans lines: %s", e);
		/* failed for good */
		char c;
		assert_int_equal(xport_handshake(rn.x), MR_EPROXY);
		assert_int_equal(xport_read(rn.x, &c, 1), MR_EPROXY);
		assert_int_equal(xport_write(rn.x, "x", 1), MR_EPROXY);
		assert_int_equal(xport_pending(rn.x), 0);
		assert_int_equal(rn.x->splice_fd, -1);
		run_end(&rn);
	}
}

/* Reads exactly len bytes from the layer (bounded wait). */
static void layer_recv(struct xport *x, const char *want, size_t len)
{
	char buf[64];
	size_t have = 0;
	for (int k = 0; have < len && k < 400; k++) {
		ssize_t n = xport_read(x, buf + have, len - have);
		if (n > 0)
			have += (size_t)n;
		else if (n == -EAGAIN)
			wait_fd(x->fd, POLLIN);
		else
			fail_msg("read: %zd", n);
	}
	assert_int_equal(have, len);
	assert_memory_equal(buf, want, len);
}

static void proxy_recv(int fd, const char *want, size_t len)
{
	char buf[64];
	size_t have = 0;
	for (int k = 0; have < len && k < 400; k++) {
		ssize_t n = recv(fd, buf + have, len - have, 0);
		if (n > 0)
			have += (size_t)n;
		else
			wait_fd(fd, POLLIN);
	}
	assert_int_equal(have, len);
	assert_memory_equal(buf, want, len);
}

/* After the handshake: the tunnel's bytes pass both ways, untouched; the
 * first of them (pre, pre_len) came with the proxy's last reply. */
static void tunnel_works(struct run *rn, bool trickle, const char *pre, size_t pre_len)
{
	if (!trickle) {
		assert_int_equal(rn->x->splice_fd, rn->client);
		assert_int_equal(rn->x->flags, XPORT_F_SHORT_IO_EXACT);
	}
	assert_null(xport_last_error(rn->x));
	if (pre_len)
		layer_recv(rn->x, pre, pre_len);
	assert_int_equal(send(rn->proxy, "hello", 5, 0), 5);
	layer_recv(rn->x, "hello", 5);
	size_t put = 0;
	for (int k = 0; put < 5 && k < 400; k++) {
		ssize_t n = xport_write(rn->x, "world" + put, 5 - put);
		if (n > 0)
			put += (size_t)n;
		else
			wait_fd(rn->client, POLLOUT);
	}
	struct iovec iov[2] = { { .iov_base = "ab", .iov_len = 2 }, { .iov_base = "cd", .iov_len = 2 } };
	ssize_t n;
	do
		n = xport_writev(rn->x, iov, 2);
	while (n == -EAGAIN);
	assert_true(n >= 1);
	proxy_recv(rn->proxy, "worldab", 5 + (n >= 2 ? 2 : 1));
	int r;
	do
		r = xport_shutdown_wr(rn->x);
	while (r == -EAGAIN);
	assert_int_equal(r, 0);
}

static void expect_open(const char *url, const char *remote, const struct step *steps, size_t n, const char *pre,
			size_t pre_len)
{
	for (int trickle = 0; trickle < 2; trickle++) {
		struct run rn;
		int r = run_script(&rn, url, remote, steps, n, trickle);
		if (r != 0)
			fail_msg("%s (trickle %d): %d \"%s\"", url, trickle, r,
				 xport_last_error(rn.x) ? xport_last_error(rn.x) : "");
		assert_int_equal(xport_handshake(rn.x), 0);
		tunnel_works(&rn, trickle, pre, pre_len);
		run_end(&rn);
	}
}

/* ---- proxy_conf */

static void test_conf(void **state)
{
	struct proxy_conf *pc = conf("socks5://127.0.0.1:1081", "example.com:2333");
	assert_string_equal(proxy_conf_dial_addr(pc), "127.0.0.1:1081");
	proxy_conf_ref(pc);
	proxy_conf_unref(pc);
	proxy_conf_unref(pc);
	proxy_conf_unref(NULL);
	/* no port: 1080 for socks5, 80 for http (rathole panics) */
	pc = conf("socks5://127.0.0.1", "example.com:2333");
	assert_string_equal(proxy_conf_dial_addr(pc), "127.0.0.1:1080");
	proxy_conf_unref(pc);
	pc = conf("http://Proxy.Example", "example.com:2333");
	assert_string_equal(proxy_conf_dial_addr(pc), "proxy.example:80");
	proxy_conf_unref(pc);
	pc = conf("http://proxy.example:80/", "example.com:2333");
	assert_string_equal(proxy_conf_dial_addr(pc), "proxy.example:80");
	proxy_conf_unref(pc);
	pc = conf("socks5://[::1]:9050", "[::1]:2333");
	assert_string_equal(proxy_conf_dial_addr(pc), "[::1]:9050");
	proxy_conf_unref(pc);
	/* refused, one logged line each */
	assert_null(conf("https://127.0.0.1:1080", "example.com:2333"));
	assert_null(conf("socks4://127.0.0.1:1080", "example.com:2333"));
	assert_null(conf("socks5://127.0.0.1:1080", "noport"));
	char url[400];
	char longname[300];
	memset(longname, 'n', 256);
	strcpy(longname + 256, ":1");
	assert_null(conf("socks5://127.0.0.1:1080", longname));
	memset(url, 0, sizeof(url));
	strcpy(url, "socks5://u:");
	memset(url + strlen(url), 'p', 256);
	strcat(url, "@127.0.0.1:1080");
	assert_null(conf(url, "example.com:2333"));
}

/* ---- SOCKS5 */

static void test_socks5_open(void **state)
{
	/* no credentials, a name: atyp 3; the tunnel's first bytes come with
	 * the reply and are left to the layer above */
	const struct step name[] = {
		{ B(5, 1, 0), B(5, 0), END_NONE },
		{ B(5, 1, 0, 3, 11, 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'c', 'o', 'm', 0x09, 0x1d),
		  B(5, 0, 0, 1, 10, 0, 0, 1, 0x04, 0x38, 'p', 'r', 'e'), END_NONE },
	};
	expect_open("socks5://127.0.0.1:1080", "example.com:2333", name, 2, "pre", 3);
	/* credentials, percent-decoded; an IPv4 target: atyp 1; a bound
	 * address given as a name */
	const struct step creds[] = {
		{ B(5, 2, 0, 2), B(5, 2), END_NONE },
		{ B(1, 7, 'm', 'y', '@', 'u', 's', 'e', 'r', 6, 's', 'e', 'c', 'r', ':', 't'), B(1, 0), END_NONE },
		{ B(5, 1, 0, 1, 127, 0, 0, 1, 0x09, 0x1d), B(5, 0, 0, 3, 4, 'h', 'o', 's', 't', 0, 1), END_NONE },
	};
	expect_open("socks5://my%40user:secr%3At@127.0.0.1:1080", "127.0.0.1:2333", creds, 3, NULL, 0);
	/* credentials offered, the proxy wants none */
	const struct step none[] = {
		{ B(5, 2, 0, 2), B(5, 0), END_NONE },
		{ B(5, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x09, 0x1d),
		  B(5, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1), END_NONE },
	};
	expect_open("socks5://user@127.0.0.1:1080", "[::1]:2333", none, 2, NULL, 0);
}

static void test_socks5_failures(void **state)
{
	const char *url = "socks5://127.0.0.1:1080", *cred = "socks5://alice:secret@127.0.0.1:1080";
	const char *target = "example.com:2333";
	const uint8_t conn[] = { 5, 1, 0, 3, 11, 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'c', 'o', 'm', 0x09, 0x1d };

	const struct step closed[] = { { B(5, 1, 0), NULL, 0, END_CLOSE } };
	expect_fail(url, target, closed, 1,
		    "proxy socks5://127.0.0.1:1080 closed the connection during the SOCKS5 greeting");
	const struct step reset[] = { { B(5, 1, 0), NULL, 0, END_RESET } };
	expect_fail(url, target, reset, 1, "proxy socks5://127.0.0.1:1080 lost the connection during the SOCKS5 "
					  "greeting (");
	const struct step half[] = { { B(5, 1, 0), B(5), END_CLOSE } };
	expect_fail(url, target, half, 1, "closed the connection during the SOCKS5 greeting");
	const struct step ff[] = { { B(5, 1, 0), B(5, 0xff), END_NONE } };
	expect_fail(url, target, ff, 1, "proxy socks5://127.0.0.1:1080 accepts none of the authentication methods "
					"offered (none; does it need a user name and password in the URL?)");
	const struct step need[] = { { B(5, 1, 0), B(5, 2), END_NONE } };
	expect_fail(url, target, need, 1, "asks for a user name and password; put them in the proxy URL");
	const struct step http[] = { { B(5, 1, 0), S("HTTP/1.1 400 Bad Request\r\n\r\n"), END_NONE } };
	expect_fail(url, target, http, 1, "answered the SOCKS5 greeting with version byte 0x48 (expected 0x05): "
					  "it does not speak SOCKS5 (it looks like an HTTP proxy: use http://)");
	const struct step denied[] = {
		{ B(5, 2, 0, 2), B(5, 2), END_NONE },
		{ B(1, 5, 'a', 'l', 'i', 'c', 'e', 6, 's', 'e', 'c', 'r', 'e', 't'), B(1, 1), END_CLOSE },
	};
	expect_fail(cred, target, denied, 2, "proxy socks5://127.0.0.1:1080 rejected the user name and password "
					     "(status 0x01) for user \"alice\"");
	const struct step auth_eof[] = {
		{ B(5, 2, 0, 2), B(5, 2), END_NONE },
		{ B(1, 5, 'a', 'l', 'i', 'c', 'e', 6, 's', 'e', 'c', 'r', 'e', 't'), NULL, 0, END_CLOSE },
	};
	expect_fail(cred, target, auth_eof, 2, "closed the connection during the SOCKS5 user name/password "
					       "exchange (a wrong user name or password?)");
	const struct step refused[] = {
		{ B(5, 1, 0), B(5, 0), END_NONE },
		{ conn, sizeof(conn), B(5, 5, 0, 1, 0, 0, 0, 0, 0, 0), END_NONE },
	};
	expect_fail(url, target, refused, 2, "proxy socks5://127.0.0.1:1080 refused the connection to "
					     "example.com:2333: connection refused (reply 5)");
	const struct step ruleset[] = {
		{ B(5, 1, 0), B(5, 0), END_NONE },
		{ conn, sizeof(conn), B(5, 2, 0, 1), END_CLOSE },
	};
	expect_fail(url, target, ruleset, 2, "refused the connection to example.com:2333: connection not allowed "
					     "by ruleset (reply 2)");
	const struct step cut[] = {
		{ B(5, 1, 0), B(5, 0), END_NONE },
		{ conn, sizeof(conn), B(5, 0, 0, 3, 9, 'x'), END_CLOSE },
	};
	expect_fail(url, target, cut, 2, "closed the connection during the SOCKS5 CONNECT to example.com:2333");
	const struct step atyp[] = {
		{ B(5, 1, 0), B(5, 0), END_NONE },
		{ conn, sizeof(conn), B(5, 0, 0, 7, 1, 1, 1, 1, 0, 0), END_NONE },
	};
	expect_fail(url, target, atyp, 2, "answered the CONNECT with the unknown address type 0x07");
}

/* ---- HTTP CONNECT */

#define REQ(auth) "CONNECT example.com:2333 HTTP/1.1\r\nHost: example.com:2333\r\n" \
		  "Proxy-Connection: Keep-Alive\r\n" auth "\r\n"

static void test_http_open(void **state)
{
	const struct step plain[] = { { S(REQ("")), S("HTTP/1.1 200 Connection established\r\n\r\n"), END_NONE } };
	expect_open("http://127.0.0.1:3128", "example.com:2333", plain, 1, NULL, 0);
	/* "alice:s@cret" */
	const struct step basic[] = {
		{ S(REQ("Proxy-Authorization: Basic YWxpY2U6c0BjcmV0\r\n")),
		  S("HTTP/1.0 200 OK\r\nProxy-agent: tinyproxy/1.11.1\r\n\r\n"), END_NONE },
	};
	expect_open("http://alice:s%40cret@127.0.0.1:3128", "example.com:2333", basic, 1, NULL, 0);
	const struct step v6[] = {
		{ S("CONNECT [::1]:2333 HTTP/1.1\r\nHost: [::1]:2333\r\nProxy-Connection: Keep-Alive\r\n\r\n"),
		  S("HTTP/1.1 200 OK\n\n"), END_NONE },
	};
	expect_open("http://127.0.0.1:3128", "[::1]:2333", v6, 1, NULL, 0);
}

static void test_http_failures(void **state)
{
	const char *url = "http://127.0.0.1:3128", *target = "example.com:2333";
	const struct step closed[] = { { S(REQ("")), NULL, 0, END_CLOSE } };
	expect_fail(url, target, closed, 1, "proxy http://127.0.0.1:3128 closed the connection during the HTTP "
					    "CONNECT to example.com:2333");
	const struct step inside[] = { { S(REQ("")), S("HTTP/1.1 200 OK\r\n"), END_CLOSE } };
	expect_fail(url, target, inside, 1, "closed the connection inside its response to the HTTP CONNECT to "
					    "example.com:2333 (after 17 bytes)");
	const struct step forbidden[] = {
		{ S(REQ("")), S("HTTP/1.0 403 Access violation\r\nContent-Length: 3\r\n\r\nno\n"), END_CLOSE },
	};
	expect_fail(url, target, forbidden, 1, "proxy http://127.0.0.1:3128 refused the connection to "
					       "example.com:2333: 403 Access violation");
	const struct step need[] = {
		{ S(REQ("")), S("HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n"), END_NONE },
	};
	expect_fail(url, target, need, 1, "asks for credentials (407 Proxy Authentication Required); put them "
					  "in the proxy URL");
	const struct step wrong[] = {
		{ S(REQ("Proxy-Authorization: Basic Ym9iOnNlY3JldA==\r\n")),
		  S("HTTP/1.1 407 Proxy Authentication Required\r\n\r\n"), END_NONE },
	};
	expect_fail("http://bob:secret@127.0.0.1:3128", target, wrong, 1,
		    "rejected the credentials of user \"bob\" (407 Proxy Authentication Required)");
	/* tinyproxy's answer to a wrong password */
	const struct step tiny[] = {
		{ S(REQ("Proxy-Authorization: Basic Ym9iOnNlY3JldA==\r\n")),
		  S("HTTP/1.0 401 Unauthorized\r\nServer: tinyproxy/1.11.1\r\nWWW-Authenticate: Basic "
		    "realm=\"Tinyproxy\"\r\nConnection: close\r\n\r\n<html/>"), END_CLOSE },
	};
	expect_fail("http://bob:secret@127.0.0.1:3128", target, tiny, 1,
		    "rejected the credentials of user \"bob\" (401 Unauthorized)");
	const struct step garbage[] = { { S(REQ("")), S("SSH-2.0-OpenSSH_9.2\r\n"), END_NONE } };
	expect_fail(url, target, garbage, 1, "answered the HTTP CONNECT to example.com:2333 with garbage (not an "
					     "HTTP response): does it speak HTTP?");
	const struct step socks[] = { { S(REQ("")), B(5, 0xff), END_NONE } };
	expect_fail(url, target, socks, 1, "with garbage (not an HTTP response)");
	static char big[5000];
	memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
	memset(big + 20, 'v', sizeof(big) - 20);
	const struct step huge[] = { { S(REQ("")), (const uint8_t *)big, sizeof(big), END_NONE } };
	expect_fail(url, target, huge, 1, "with a response head longer than 4096 bytes");
}

static void test_http_bytes_after_head(void **state)
{
	/* in one segment, the layer reads the head and what follows */
	struct run rn;
	const struct step early[] = { { S(REQ("")), S("HTTP/1.1 200 OK\r\n\r\nSSH-2.0"), END_NONE } };
	int r = run_script(&rn, "http://127.0.0.1:3128", "example.com:2333", early, 1, false);
	assert_int_equal(r, MR_EPROXY);
	assert_string_equal(xport_last_error(rn.x), "proxy http://127.0.0.1:3128 sent 7 bytes after its 200 "
						    "response to the HTTP CONNECT to example.com:2333, before "
						    "the client spoke");
	run_end(&rn);
}

static void test_eagain_before_reply(void **state)
{
	struct proxy_conf *pc = conf("socks5://127.0.0.1:1080", "example.com:2333");
	int fds[2];
	tcp_pair(fds);
	struct xport *x = xport_proxy_new(pc, xport_tcp_new(fds[0]));
	proxy_conf_unref(pc);
	assert_int_equal(xport_want(x), LOOP_WRITE);
	assert_int_equal(xport_handshake(x), -EAGAIN);
	assert_int_equal(xport_want(x), LOOP_READ);
	assert_int_equal(xport_handshake(x), -EAGAIN);
	char c;
	assert_int_equal(xport_read(x, &c, 1), -EAGAIN);
	assert_int_equal(xport_write(x, "x", 1), -EAGAIN);
	assert_int_equal(xport_pending(x), 0);
	/* for an owner whose deadline runs out now */
	assert_string_equal(xport_last_error(x), "proxy socks5://127.0.0.1:1080 has not answered the SOCKS5 greeting");
	assert_string_equal(x->ops->name, "proxy");
	/* the greeting went out once */
	uint8_t g[8];
	assert_int_equal(recv(fds[1], g, sizeof(g), 0), 3);
	xport_close(x);
	close(fds[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conf),
		cmocka_unit_test(test_eagain_before_reply),
		cmocka_unit_test(test_socks5_open),
		cmocka_unit_test(test_socks5_failures),
		cmocka_unit_test(test_http_open),
		cmocka_unit_test(test_http_failures),
		cmocka_unit_test(test_http_bytes_after_head),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
