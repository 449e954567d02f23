/* Unit tests for xport_tls: a server layer and a client layer built through
 * tls_ctx_new over loopback TCP pairs, handshakes driven non-blocking with
 * poll(), bytes both ways, half-close, pending(), partial writes, and each
 * failure with its MR_ETLS and last_error line. Certificates are made with
 * the openssl command into a mkdtemp directory under /tmp, removed at the
 * end. Raw OpenSSL peers stand in for other implementations where a test
 * needs to see the other side (SNI, versions). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <errno.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "base/err.h"
#include "base/log.h"
#include "base/loop.h"
#include "xport/xport.h"
#include "xport/xport_tls.h"

static char dir[64];

/* dir/name, in one of a few rotating buffers */
static char *P(const char *name)
{
	static char bufs[8][256];
	static int i;
	char *b = bufs[i++ % 8];
	snprintf(b, 256, "%s/%s", dir, name);
	return b;
}

static const char *gen_script =
	"set -e\n"
	"O='openssl'\n"
	"EC='-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes'\n"
	"CAEXT='-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign'\n"
	"$O req -x509 $EC -keyout ca.key -out ca.pem -subj '/CN=molerat test CA' -days 30 $CAEXT\n"
	"$O req -x509 $EC -keyout other.key -out other.pem -subj '/CN=unrelated CA' -days 30 $CAEXT\n"
	"$O req $EC -keyout leaf.key -out leaf.csr -subj '/CN=localhost'\n"
	"printf 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\\n' > san.ext\n"
	"printf 'subjectAltName=DNS:other.example\\n' > other.ext\n"
	"$O x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -days 30 -extfile san.ext -out leaf.pem\n"
	"$O x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -days -1 -extfile san.ext -out expired.pem\n"
	"$O x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -days 30 -extfile other.ext -out wrongname.pem\n"
	"$O req -x509 $EC -keyout self.key -out self.pem -subj '/CN=localhost' -days 30 "
	"-addext subjectAltName=DNS:localhost,IP:127.0.0.1\n"
	"$O req -x509 $EC -keyout long.key -out long.pem -subj "
	"'/CN=xa-very-long-common-name-that-goes-on-and-on-and-on-for-64-chars' -days 30 "
	"-addext subjectAltName=DNS:localhost\n"
	"P12='-passout pass:pw'\n"
	"$O pkcs12 -export -inkey leaf.key -in leaf.pem -certfile ca.pem $P12 -out good.p12\n"
	"$O pkcs12 -export -legacy -inkey leaf.key -in leaf.pem -certfile ca.pem $P12 -out legacy.p12\n"
	"$O pkcs12 -export -inkey leaf.key -in expired.pem -certfile ca.pem $P12 -out expired.p12\n"
	"$O pkcs12 -export -inkey leaf.key -in wrongname.pem -certfile ca.pem $P12 -out wrongname.p12\n"
	"$O pkcs12 -export -inkey self.key -in self.pem $P12 -out self.p12\n"
	"$O pkcs12 -export -in leaf.pem -nokeys $P12 -out nokey.p12\n"
	"$O pkcs12 -export -inkey long.key -in long.pem $P12 -out long.p12\n"
	"cat other.pem ca.pem > other_then_ca.pem\n"
	"cat ca.pem other.pem > ca_then_other.pem\n"
	"printf 'garbage, not a certificate\\n' > garbage.txt\n"
	": > empty.bin\n";

static int group_teardown(void **state);

static int group_setup(void **state)
{
	signal(SIGPIPE, SIG_IGN);
	log_set_level(LOGL_WARN);
	snprintf(dir, sizeof(dir), "/tmp/mr-tls-test.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	char *script = P("gen.sh");
	FILE *f = fopen(script, "w");
	if (!f)
		return -1;
	fputs(gen_script, f);
	fclose(f);
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "cd '%s' && sh gen.sh > gen.log 2>&1", dir);
	if (system(cmd) != 0) {
		snprintf(cmd, sizeof(cmd), "cat '%s/gen.log' >&2", dir);
		(void)system(cmd);
		group_teardown(state);
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	/* only the directory this test made */
	if (strncmp(dir, "/tmp/mr-tls-test.", 17) == 0 && !strchr(dir, '\'')) {
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", dir);
		(void)system(cmd);
	}
	return 0;
}

/* ---- contexts ---- */

static struct tls_ctx *server_ctx_pw(const char *p12, const char *pw)
{
	struct conf_tls t = { .present = true, .pkcs12 = P(p12), .pkcs12_password = (char *)pw };
	return tls_ctx_new(&t, true, NULL, "server");
}

static struct tls_ctx *server_ctx(const char *p12)
{
	return server_ctx_pw(p12, "pw");
}

/* trusted: a file in dir or NULL; remote: client.remote_addr */
static struct tls_ctx *client_ctx(const char *trusted, const char *hostname, const char *remote)
{
	struct conf_tls t = { .present = true, .trusted_root = trusted ? P(trusted) : NULL,
			      .hostname = (char *)hostname };
	return tls_ctx_new(&t, false, remote, "client");
}

/* Runs tls_ctx_new with stderr captured; returns what was logged. */
static const char *ctx_log(const struct conf_tls *t, bool server, const char *remote, struct tls_ctx **out)
{
	static char buf[4096];
	fflush(stderr);
	int saved = dup(2);
	FILE *tmp = tmpfile();
	assert_non_null(tmp);
	dup2(fileno(tmp), 2);
	*out = tls_ctx_new(t, server, remote, server ? "server" : "client");
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(tmp);
	size_t n = fread(buf, 1, sizeof(buf) - 1, tmp);
	buf[n] = 0;
	fclose(tmp);
	return buf;
}

static size_t count_lines(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* ---- driving both ends ---- */

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

/* One end of a handshake: an xport, or a raw OpenSSL peer. */
struct end {
	struct xport *x;
	SSL *ssl;
	int fd;
	unsigned want;
	int r;           /* -EAGAIN while running, 0 done, < 0 failed */
};

static void end_step(struct end *e)
{
	if (e->x) {
		e->r = xport_handshake(e->x);
		if (e->r == -EAGAIN)
			e->want = xport_want(e->x);
		return;
	}
	ERR_clear_error();
	int r = SSL_do_handshake(e->ssl);
	if (r == 1) {
		e->r = 0;
		return;
	}
	int c = SSL_get_error(e->ssl, r);
	ERR_clear_error();
	if (c == SSL_ERROR_WANT_READ || c == SSL_ERROR_WANT_WRITE) {
		e->want = c == SSL_ERROR_WANT_READ ? LOOP_READ : LOOP_WRITE;
		e->r = -EAGAIN;
		return;
	}
	e->r = -1;
}

/* Steps both ends until each is done or failed (5 s at most). A failed end
 * shuts its socket down so the other end sees the end of stream after
 * whatever alert was sent. */
static void handshake2(struct end *a, struct end *b)
{
	a->r = b->r = -EAGAIN;
	uint64_t deadline = now_ms() + 5000;
	bool shut_a = false, shut_b = false;
	while (now_ms() < deadline) {
		if (a->r == -EAGAIN)
			end_step(a);
		if (b->r == -EAGAIN)
			end_step(b);
		if (a->r < 0 && a->r != -EAGAIN && !shut_a) {
			shutdown(a->fd, SHUT_WR);
			shut_a = true;
		}
		if (b->r < 0 && b->r != -EAGAIN && !shut_b) {
			shutdown(b->fd, SHUT_WR);
			shut_b = true;
		}
		if (a->r != -EAGAIN && b->r != -EAGAIN)
			return;
		struct pollfd p[2];
		int n = 0;
		if (a->r == -EAGAIN)
			p[n++] = (struct pollfd){ .fd = a->fd, .events = poll_events(a->want) };
		if (b->r == -EAGAIN)
			p[n++] = (struct pollfd){ .fd = b->fd, .events = poll_events(b->want) };
		poll(p, (nfds_t)n, 50);
	}
	fail_msg("handshake did not finish within 5 s (a %d, b %d)", a->r, b->r);
}

struct pair {
	int fds[2];
	struct xport *c, *s;   /* client on fds[0], server on fds[1] */
	int rc, rs;
};

static void pair_open(struct pair *p, struct tls_ctx *cc, struct tls_ctx *sc, int bufsz)
{
	tcp_pair_bufs(p->fds, bufsz);
	p->c = xport_tls_new(cc, xport_tcp_new(p->fds[0]));
	p->s = xport_tls_new(sc, xport_tcp_new(p->fds[1]));
	assert_non_null(p->c);
	assert_non_null(p->s);
	struct end a = { .x = p->c, .fd = p->fds[0] }, b = { .x = p->s, .fd = p->fds[1] };
	handshake2(&a, &b);
	p->rc = a.r;
	p->rs = b.r;
}

static void pair_close(struct pair *p)
{
	xport_close(p->c);
	xport_close(p->s);
}

/* Reads at least want bytes (or to the end of stream) from x within 5 s.
 * Returns the bytes read, or the first error. */
static ssize_t read_n(struct xport *x, void *buf, size_t want, size_t cap)
{
	size_t got = 0;
	uint64_t deadline = now_ms() + 5000;
	while (got < want && now_ms() < deadline) {
		ssize_t n = xport_read(x, (char *)buf + got, cap - got);
		if (n == -EAGAIN) {
			struct pollfd p = { .fd = x->fd, .events = poll_events(xport_want(x)) };
			poll(&p, 1, 50);
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
			struct pollfd p = { .fd = x->fd, .events = poll_events(xport_want(x)) };
			poll(&p, 1, 50);
			continue;
		}
		assert_true(n > 0);
		off += (size_t)n;
	}
}

/* Reads until the end of stream (or an error) and returns what the last
 * read said: 0 for the end of stream. */
static ssize_t read_to_end(struct xport *x)
{
	char buf[4096];
	uint64_t deadline = now_ms() + 5000;
	while (now_ms() < deadline) {
		ssize_t n = xport_read(x, buf, sizeof(buf));
		if (n == -EAGAIN) {
			struct pollfd p = { .fd = x->fd, .events = poll_events(xport_want(x)) };
			poll(&p, 1, 50);
			continue;
		}
		if (n <= 0)
			return n;
	}
	fail_msg("no end of stream within 5 s");
	return -1;
}

static bool contains(const char *s, const char *sub)
{
	return s && strstr(s, sub);
}

#define assert_contains(s, sub)                                                              \
	do {                                                                                 \
		const char *s_ = (s);                                                        \
		if (!contains(s_, (sub)))                                                    \
			fail_msg("\"%s\" does not contain \"%s\"", s_ ? s_ : "(null)", (sub)); \
	} while (0)

/* ---- tests: working connections ---- */

static void test_handshake_and_exchange(void **state)
{
	struct tls_ctx *sc = server_ctx("good.p12"), *cc = client_ctx("ca.pem", NULL, "127.0.0.1:2333");
	assert_non_null(sc);
	assert_non_null(cc);
	struct pair p;
	pair_open(&p, cc, sc, 0);
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.rs, 0);
	assert_string_equal(p.c->ops->name, "tls");
	assert_int_equal(p.c->fd, p.fds[0]);
	assert_int_equal(p.c->splice_fd, -1);
	assert_int_equal(p.c->flags & XPORT_F_SHORT_IO_EXACT, 0);
	assert_null(xport_last_error(p.c));
	assert_int_equal(xport_handshake(p.c), 0);   /* done stays done */

	char buf[256];
	write_all(p.c, "hello from the client", 21);
	assert_int_equal(read_n(p.s, buf, 21, sizeof(buf)), 21);
	assert_memory_equal(buf, "hello from the client", 21);
	write_all(p.s, "and back", 8);
	assert_int_equal(read_n(p.c, buf, 8, sizeof(buf)), 8);
	assert_memory_equal(buf, "and back", 8);
	/* nothing more: -EAGAIN, wanting the socket readable */
	assert_int_equal(xport_read(p.s, buf, sizeof(buf)), -EAGAIN);
	assert_int_equal(xport_want(p.s), LOOP_READ);
	assert_int_equal(xport_pending(p.s), 0);
	pair_close(&p);
	tls_ctx_free(sc);
	tls_ctx_free(cc);
	assert_int_equal(ERR_peek_error(), 0);
}

static void test_context_freed_while_connections_run(void **state)
{
	struct tls_ctx *sc = server_ctx("good.p12"), *cc = client_ctx("ca.pem", "localhost", "127.0.0.1:1");
	struct pair p;
	pair_open(&p, cc, sc, 0);
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.rs, 0);
	tls_ctx_free(sc);
	tls_ctx_free(cc);
	char buf[16];
	write_all(p.c, "still here", 10);
	assert_int_equal(read_n(p.s, buf, 10, sizeof(buf)), 10);
	pair_close(&p);
}

static void test_half_close(void **state)
{
	struct tls_ctx *sc = server_ctx("good.p12"), *cc = client_ctx("ca.pem", NULL, "127.0.0.1:2333");
	struct pair p;
	pair_open(&p, cc, sc, 0);
	assert_int_equal(p.rc, 0);
	char buf[64];
	write_all(p.c, "request", 7);
	int r;
	while ((r = xport_shutdown_wr(p.c)) == -EAGAIN)
		;
	assert_int_equal(r, 0);
	assert_int_equal(xport_shutdown_wr(p.c), 0);  /* once is enough */
	/* the server reads the request, then the close_notify as 0 */
	assert_int_equal(read_n(p.s, buf, 7, sizeof(buf)), 7);
	assert_int_equal(read_to_end(p.s), 0);
	assert_int_equal(xport_read(p.s, buf, sizeof(buf)), 0);   /* and stays at 0 */
	assert_int_equal(xport_pending(p.s), 0);
	/* the other direction still works */
	write_all(p.s, "reply after EOF", 15);
	assert_int_equal(read_n(p.c, buf, 15, sizeof(buf)), 15);
	assert_memory_equal(buf, "reply after EOF", 15);
	while ((r = xport_shutdown_wr(p.s)) == -EAGAIN)
		;
	assert_int_equal(r, 0);
	assert_int_equal(read_to_end(p.c), 0);
	pair_close(&p);
	tls_ctx_free(sc);
	tls_ctx_free(cc);
}

static void test_eof_without_close_notify_is_eof(void **state)
{
	struct tls_ctx *sc = server_ctx("good.p12"), *cc = client_ctx("ca.pem", NULL, "127.0.0.1:2333");
	struct pair p;
	pair_open(&p, cc, sc, 0);
	assert_int_equal(p.rs, 0);
	char buf[16];
	write_all(p.c, "bye", 3);
	/* a bare FIN, as a peer that never sends close_notify */
	shutdown(p.fds[0], SHUT_WR);
	assert_int_equal(read_n(p.s, buf, 3, sizeof(buf)), 3);
	assert_int_equal(read_to_end(p.s), 0);
	pair_close(&p);
	tls_ctx_free(sc);
	tls_ctx_free(cc);
}

static void test_pending_reads_without_the_socket(void **state)
{
	struct tls_ctx *sc = server_ctx("good.p12"), *cc = client_ctx("ca.pem", NULL, "127.0.0.1:2333");
	struct pair p;
	pair_open(&p, cc, sc, 0);
	assert_int_equal(p.rs, 0);
	char msg[100], buf[1000];
	for (int i = 0; i < 3; i++) {
		memset(msg, 'a' + i, sizeof(msg));
		write_all(p.c, msg, sizeof(msg));   /* three records */
	}
	/* wait until all three are in the server's socket (3 x 100 bytes,
	 * each with at least 21 bytes of record overhead; Nagle may hold the
	 * last two until the first is acknowledged) */
	struct pollfd pf = { .fd = p.fds[1], .events = POLLIN };
	assert_int_equal(poll(&pf, 1, 2000), 1);
	int queued = 0;
	for (int i = 0; i < 200 && queued < 3 * 121; i++) {
		usleep(10000);
		assert_int_equal(ioctl(p.fds[1], FIONREAD, &queued), 0);
	}
	assert_int_equal(read_n(p.s, buf, 10, 10), 10);
	assert_int_equal(xport_pending(p.s), 90);
	assert_int_equal(read_n(p.s, buf, 90, 90), 90);
	assert_int_equal(buf[0], 'a');
	assert_int_equal(buf[89], 'a');
	/* the two other records were read ahead: the socket is empty, yet a
	 * read gets them */
	assert_true(xport_pending(p.s) > 0);
	pf.revents = 0;
	assert_int_equal(poll(&pf, 1, 0), 0);
	ssize_t n = xport_read(p.s, buf, sizeof(buf));
	assert_int_equal(n, 200);
	assert_int_equal(buf[0], 'b');
	assert_int_equal(buf[199], 'c');
	assert_int_equal(xport_pending(p.s), 0);
	/* the end of stream read together with bytes: the bytes first, then
	 * pending() says a read returns without the socket, and it says 0 */
	write_all(p.c, "last", 4);
	int r;
	while ((r = xport_shutdown_wr(p.c)) == -EAGAIN)
		;
	usleep(20000);
	n = read_n(p.s, buf, 4, sizeof(buf));
	assert_int_equal(n, 4);
	if (xport_pending(p.s) > 0)
		assert_int_equal(xport_read(p.s, buf, sizeof(buf)), 0);
	else
		assert_int_equal(read_to_end(p.s), 0);
	assert_int_equal(xport_pending(p.s), 0);
	pair_close(&p);
	tls_ctx_free(sc);
	tls_ctx_free(cc);
}

static void test_large_writes_partial_and_moving(void **state)
{
	struct tls_ctx *sc = server_ctx("good.p12"), *cc = client_ctx("ca.pem", NULL, "127.0.0.1:2333");
	struct pair p;
	pair_open(&p, cc, sc, 65536);
	assert_int_equal(p.rs, 0);
	size_t total = 4 << 20;
	unsigned char *src = malloc(total), *dst = malloc(total), *alt = malloc(total);
	assert_non_null(src);
	assert_non_null(dst);
	assert_non_null(alt);
	for (size_t i = 0; i < total; i++)
		src[i] = (unsigned char)(i * 2654435761u >> 13);
	/* nobody reads: a write takes fewer bytes than asked, then -EAGAIN */
	ssize_t n = xport_write(p.c, src, total);
	assert_true(n > 0 && (size_t)n < total);
	size_t off = (size_t)n;
	while ((n = xport_write(p.c, src + off, total - off)) > 0)
		off += (size_t)n;
	assert_int_equal(n, -EAGAIN);
	assert_int_equal(xport_want(p.c), LOOP_WRITE);
	/* from now on, every retry comes from another copy of the rest (the
	 * buffer moves) while the server reads */
	size_t got = 0;
	bool flip = false;
	uint64_t deadline = now_ms() + 10000;
	while (got < total) {
		assert_true(now_ms() < deadline);
		if (off < total) {
			const unsigned char *from = src + off;
			if (flip) {
				memcpy(alt + off, src + off, total - off);
				from = alt + off;
			}
			flip = !flip;
			n = xport_write(p.c, from, total - off);
			if (n > 0)
				off += (size_t)n;
			else
				assert_int_equal(n, -EAGAIN);
		}
		n = xport_read(p.s, dst + got, total - got);
		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		assert_int_equal(n, -EAGAIN);
		struct pollfd pf[2] = { { .fd = p.fds[1], .events = POLLIN },
					{ .fd = p.fds[0], .events = off < total ? POLLOUT : 0 } };
		poll(pf, 2, 50);
	}
	assert_int_equal(off, total);
	assert_memory_equal(src, dst, total);
	free(src);
	free(dst);
	free(alt);
	pair_close(&p);
	tls_ctx_free(sc);
	tls_ctx_free(cc);
}

static void test_writev_gathers_one_record(void **state)
{
	struct tls_ctx *sc = server_ctx("good.p12"), *cc = client_ctx("ca.pem", NULL, "127.0.0.1:2333");
	struct pair p;
	pair_open(&p, cc, sc, 0);
	assert_int_equal(p.rs, 0);
	struct iovec iov[4] = { { "", 0 }, { "abc", 3 }, { "defgh", 5 }, { "ij", 2 } };
	assert_int_equal(xport_writev(p.c, iov, 4), 10);
	char buf[64];
	struct pollfd pf = { .fd = p.fds[1], .events = POLLIN };
	assert_int_equal(poll(&pf, 1, 2000), 1);
	/* one record: one read returns all of it */
	ssize_t n;
	while ((n = xport_read(p.s, buf, sizeof(buf))) == -EAGAIN)
		poll(&pf, 1, 50);
	assert_int_equal(n, 10);
	assert_memory_equal(buf, "abcdefghij", 10);
	pair_close(&p);
	tls_ctx_free(sc);
	tls_ctx_free(cc);
}

static void test_legacy_pkcs12_and_name_forms(void **state)
{
	/* a PKCS#12 file of the legacy algorithms (OpenSSL 1.x's export) */
	struct tls_ctx *sc = server_ctx("legacy.p12");
	assert_non_null(sc);
	/* the IP of remote_addr (IP SAN), hostname, a bracketed IPv6 literal
	 * (brackets stripped), the CA in SSL_CERT_FILE instead of trusted_root */
	struct tls_ctx *ccs[3] = { client_ctx("ca.pem", NULL, "127.0.0.1:2333"),
				   client_ctx("ca.pem", "localhost", "127.0.0.1:2333"),
				   client_ctx("ca.pem", NULL, "[::1]:2333") };
	for (int i = 0; i < 3; i++) {
		assert_non_null(ccs[i]);
		struct pair p;
		pair_open(&p, ccs[i], sc, 0);
		if (p.rc)
			fail_msg("client %d: %s", i, xport_last_error(p.c));
		assert_int_equal(p.rs, 0);
		pair_close(&p);
		tls_ctx_free(ccs[i]);
	}
	setenv("SSL_CERT_FILE", P("ca.pem"), 1);
	struct tls_ctx *cc = client_ctx(NULL, NULL, "127.0.0.1:2333");
	unsetenv("SSL_CERT_FILE");
	struct pair p;
	pair_open(&p, cc, sc, 0);
	assert_int_equal(p.rc, 0);
	pair_close(&p);
	tls_ctx_free(cc);
	tls_ctx_free(sc);
}

static void test_trusted_root_first_certificate_only(void **state)
{
	struct tls_ctx *sc = server_ctx("good.p12");
	struct tls_ctx *right = client_ctx("ca_then_other.pem", NULL, "127.0.0.1:2333");
	struct tls_ctx *wrong = client_ctx("other_then_ca.pem", NULL, "127.0.0.1:2333");
	struct pair p;
	pair_open(&p, right, sc, 0);
	assert_int_equal(p.rc, 0);
	pair_close(&p);
	pair_open(&p, wrong, sc, 0);
	assert_int_equal(p.rc, MR_ETLS);
	assert_contains(xport_last_error(p.c), "set trusted_root to the CA that signed the server's certificate");
	pair_close(&p);
	tls_ctx_free(right);
	tls_ctx_free(wrong);
	tls_ctx_free(sc);
}

/* A raw OpenSSL server from PEM files (min and max version), run against
 * our client; returns the SNI it saw (static) or "" and its version. */
static SSL_CTX *raw_server_ctx(const char *cert, const char *key, int minv, int maxv)
{
	SSL_CTX *s = SSL_CTX_new(TLS_server_method());
	assert_non_null(s);
	SSL_CTX_set_security_level(s, 0);
	SSL_CTX_set_cipher_list(s, "DEFAULT@SECLEVEL=0");
	assert_int_equal(SSL_CTX_set_min_proto_version(s, minv), 1);
	assert_int_equal(SSL_CTX_set_max_proto_version(s, maxv), 1);
	assert_int_equal(SSL_CTX_use_certificate_chain_file(s, P(cert)), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey_file(s, P(key), SSL_FILETYPE_PEM), 1);
	return s;
}

static void raw_vs_xport(SSL_CTX *raw, bool raw_is_server, struct tls_ctx *ours, struct end *r, struct end *x,
			 int fds[2])
{
	tcp_pair(fds);
	SSL *ssl = SSL_new(raw);
	assert_non_null(ssl);
	int rfd = raw_is_server ? fds[1] : fds[0], xfd = raw_is_server ? fds[0] : fds[1];
	SSL_set_fd(ssl, rfd);
	if (raw_is_server)
		SSL_set_accept_state(ssl);
	else
		SSL_set_connect_state(ssl);
	*r = (struct end){ .ssl = ssl, .fd = rfd };
	*x = (struct end){ .x = xport_tls_new(ours, xport_tcp_new(xfd)), .fd = xfd };
	assert_non_null(x->x);
	handshake2(r, x);
}

static void raw_end_free(struct end *r)
{
	int fd = SSL_get_fd(r->ssl);
	SSL_free(r->ssl);
	close(fd);
}

static void test_sni_and_versions_against_openssl(void **state)
{
	SSL_CTX *raw = raw_server_ctx("leaf.pem", "leaf.key", TLS1_2_VERSION, TLS1_3_VERSION);
	SSL_CTX *raw12 = raw_server_ctx("leaf.pem", "leaf.key", TLS1_2_VERSION, TLS1_2_VERSION);
	struct tls_ctx *by_ip = client_ctx("ca.pem", NULL, "127.0.0.1:2333");
	struct tls_ctx *by_name = client_ctx("ca.pem", "localhost", "127.0.0.1:2333");
	struct end r, x;
	int fds[2];
	/* a name is sent as SNI, an IP literal is not; TLS 1.3 by default */
	raw_vs_xport(raw, true, by_name, &r, &x, fds);
	assert_int_equal(r.r, 0);
	assert_int_equal(x.r, 0);
	assert_string_equal(SSL_get_servername(r.ssl, TLSEXT_NAMETYPE_host_name), "localhost");
	assert_int_equal(SSL_version(r.ssl), TLS1_3_VERSION);
	raw_end_free(&r);
	xport_close(x.x);
	raw_vs_xport(raw, true, by_ip, &r, &x, fds);
	assert_int_equal(x.r, 0);
	assert_null(SSL_get_servername(r.ssl, TLSEXT_NAMETYPE_host_name));
	raw_end_free(&r);
	xport_close(x.x);
	/* a TLS 1.2-only server (as rathole's) is fine */
	raw_vs_xport(raw12, true, by_ip, &r, &x, fds);
	assert_int_equal(x.r, 0);
	assert_int_equal(SSL_version(r.ssl), TLS1_2_VERSION);
	char buf[16];
	write_all(x.x, "over 1.2", 8);
	size_t got = 0;
	while (got < 8) {
		ERR_clear_error();
		int n = SSL_read(r.ssl, buf + got, (int)(sizeof(buf) - got));
		if (n > 0)
			got += (size_t)n;
		else
			usleep(1000);
	}
	assert_memory_equal(buf, "over 1.2", 8);
	raw_end_free(&r);
	xport_close(x.x);
	SSL_CTX_free(raw);
	SSL_CTX_free(raw12);

	/* our server: a TLS 1.3-only and a TLS 1.2-only client both work */
	struct tls_ctx *sc = server_ctx("good.p12");
	for (int v = TLS1_2_VERSION; v <= TLS1_3_VERSION; v++) {
		SSL_CTX *rc = SSL_CTX_new(TLS_client_method());
		SSL_CTX_set_min_proto_version(rc, v);
		SSL_CTX_set_max_proto_version(rc, v);
		raw_vs_xport(rc, false, sc, &r, &x, fds);
		assert_int_equal(r.r, 0);
		assert_int_equal(x.r, 0);
		assert_int_equal(SSL_version(r.ssl), v);
		raw_end_free(&r);
		xport_close(x.x);
		SSL_CTX_free(rc);
	}
	tls_ctx_free(sc);
	tls_ctx_free(by_ip);
	tls_ctx_free(by_name);
}

/* ---- tests: failures ---- */

static void test_untrusted_self_signed(void **state)
{
	struct tls_ctx *sc = server_ctx("self.p12"), *cc = client_ctx(NULL, NULL, "127.0.0.1:2333");
	struct pair p;
	pair_open(&p, cc, sc, 0);
	assert_int_equal(p.rc, MR_ETLS);
	assert_int_equal(p.rs, MR_ETLS);
	const char *ce = xport_last_error(p.c), *se = xport_last_error(p.s);
	assert_contains(ce, "certificate verify failed: self-signed certificate (CN=localhost is self-signed); set trusted_root");
	assert_contains(ce, "set trusted_root to the CA that signed the server's certificate");
	assert_contains(se, "the client does not trust our certificate");
	assert_contains(se, "unknown CA");
	assert_null(strchr(ce, '\n'));
	/* failures stick */
	assert_int_equal(xport_handshake(p.c), MR_ETLS);
	char b[4];
	assert_int_equal(xport_read(p.c, b, 4), MR_ETLS);
	assert_int_equal(xport_write(p.c, b, 4), MR_ETLS);
	assert_int_equal(ERR_peek_error(), 0);
	pair_close(&p);
	/* a long name is cut: the advice stays within a log line's reach */
	struct tls_ctx *longc = server_ctx("long.p12");
	pair_open(&p, cc, longc, 0);
	assert_int_equal(p.rc, MR_ETLS);
	assert_contains(xport_last_error(p.c), "(CN=xa-very-long-common-name-that-goes-on-an... is self-signed)");
	assert_contains(xport_last_error(p.c), "set trusted_root to the CA that signed the server's certificate");
	assert_true(strlen(xport_last_error(p.c)) < 200);
	pair_close(&p);
	tls_ctx_free(longc);
	/* unknown CA: a leaf of a CA that is not trusted */
	struct tls_ctx *other = client_ctx("other.pem", NULL, "127.0.0.1:2333"), *good = server_ctx("good.p12");
	pair_open(&p, other, good, 0);
	assert_int_equal(p.rc, MR_ETLS);
	assert_contains(xport_last_error(p.c), "self-signed certificate in certificate chain");
	assert_contains(xport_last_error(p.c), "(CN=localhost chains to CN=molerat test CA, not trusted here); set trusted_root");
	assert_contains(xport_last_error(p.c), "set trusted_root");
	pair_close(&p);
	/* the errors of one connection never reach the next */
	struct tls_ctx *cc2 = client_ctx("ca.pem", NULL, "127.0.0.1:2333");
	pair_open(&p, cc2, good, 0);
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.rs, 0);
	assert_null(xport_last_error(p.c));
	assert_null(xport_last_error(p.s));
	pair_close(&p);
	tls_ctx_free(sc);
	tls_ctx_free(cc);
	tls_ctx_free(cc2);
	tls_ctx_free(other);
	tls_ctx_free(good);
}

static void test_expired(void **state)
{
	struct tls_ctx *sc = server_ctx("expired.p12"), *cc = client_ctx("ca.pem", NULL, "127.0.0.1:2333");
	struct pair p;
	pair_open(&p, cc, sc, 0);
	assert_int_equal(p.rc, MR_ETLS);
	assert_int_equal(p.rs, MR_ETLS);
	assert_contains(xport_last_error(p.c), "certificate verify failed: certificate has expired");
	assert_contains(xport_last_error(p.c), "the server's certificate CN=localhost is valid until");
	assert_contains(xport_last_error(p.s), "the client says our certificate has expired");
	pair_close(&p);
	tls_ctx_free(sc);
	tls_ctx_free(cc);
}

static void test_name_mismatch(void **state)
{
	struct tls_ctx *sc = server_ctx("wrongname.p12"), *cc = client_ctx("ca.pem", NULL, "127.0.0.1:2333");
	struct pair p;
	pair_open(&p, cc, sc, 0);
	assert_int_equal(p.rc, MR_ETLS);
	assert_contains(xport_last_error(p.c), "the certificate is for DNS:other.example, not 127.0.0.1; set hostname");
	assert_contains(xport_last_error(p.s), "the client rejected our certificate");
	pair_close(&p);
	struct tls_ctx *good = server_ctx("good.p12"), *named = client_ctx("ca.pem", "example.org", "127.0.0.1:1");
	pair_open(&p, named, good, 0);
	assert_int_equal(p.rc, MR_ETLS);
	assert_contains(xport_last_error(p.c),
			"the certificate is for DNS:localhost, IP:127.0.0.1, IP:::1, not example.org");
	pair_close(&p);
	/* hostname fixes it */
	struct tls_ctx *fixed = client_ctx("ca.pem", "other.example", "127.0.0.1:2333");
	pair_open(&p, fixed, sc, 0);
	assert_int_equal(p.rc, 0);
	pair_close(&p);
	tls_ctx_free(sc);
	tls_ctx_free(cc);
	tls_ctx_free(good);
	tls_ctx_free(named);
	tls_ctx_free(fixed);
}

static void test_plain_client_on_tls_server(void **state)
{
	struct tls_ctx *sc = server_ctx("good.p12");
	int fds[2];
	tcp_pair(fds);
	struct xport *s = xport_tls_new(sc, xport_tcp_new(fds[1]));
	/* a rathole Hello (control channel, protocol version 1) over tcp */
	unsigned char hello[37] = { 0, 0, 0, 0, 1 };
	assert_int_equal(send(fds[0], hello, sizeof(hello), 0), 37);
	struct end e = { .x = s, .fd = fds[1] };
	uint64_t deadline = now_ms() + 3000;
	do {
		end_step(&e);
		if (e.r == -EAGAIN) {
			struct pollfd pf = { .fd = fds[1], .events = poll_events(e.want) };
			poll(&pf, 1, 50);
		}
	} while (e.r == -EAGAIN && now_ms() < deadline);
	assert_int_equal(e.r, MR_ETLS);
	assert_contains(xport_last_error(s), "the client is not speaking TLS");
	assert_contains(xport_last_error(s), "is its transport.type \"tcp\"?");
	xport_close(s);
	close(fds[0]);
	tls_ctx_free(sc);
}

/* Our client against a plain tcp peer that reads the TLS hello and then
 * closes (how: 0 FIN after reading all, 1 RST, 2 answers with a rathole
 * Hello). Returns the client's last_error (static copy). */
static const char *client_vs_plain(int how)
{
	static char msg[512];
	struct tls_ctx *cc = client_ctx("ca.pem", NULL, "127.0.0.1:2333");
	int fds[2];
	tcp_pair(fds);
	struct xport *c = xport_tls_new(cc, xport_tcp_new(fds[0]));
	int r = xport_handshake(c);
	assert_int_equal(r, -EAGAIN);
	struct pollfd pf = { .fd = fds[1], .events = POLLIN };
	assert_int_equal(poll(&pf, 1, 2000), 1);
	char buf[4096];
	if (how != 1)
		assert_true(recv(fds[1], buf, sizeof(buf), 0) > 0);
	if (how == 2) {
		unsigned char hello[37] = { 0, 0, 0, 0, 1 };
		assert_int_equal(send(fds[1], hello, sizeof(hello), 0), 37);
	} else {
		close(fds[1]);   /* how 1: the hello unread: a reset */
		fds[1] = -1;
	}
	uint64_t deadline = now_ms() + 3000;
	while ((r = xport_handshake(c)) == -EAGAIN && now_ms() < deadline) {
		struct pollfd p2 = { .fd = fds[0], .events = poll_events(xport_want(c)) };
		poll(&p2, 1, 50);
	}
	assert_int_equal(r, MR_ETLS);
	snprintf(msg, sizeof(msg), "%s", xport_last_error(c));
	xport_close(c);
	if (fds[1] >= 0)
		close(fds[1]);
	tls_ctx_free(cc);
	return msg;
}

static void test_tls_client_on_plain_server(void **state)
{
	const char *m = client_vs_plain(0);
	assert_contains(m, "the server closed the connection during the TLS handshake; is its transport.type \"tls\"?");
	m = client_vs_plain(1);
	assert_contains(m, "Connection reset by peer");
	assert_contains(m, "is its transport.type \"tls\"?");
	m = client_vs_plain(2);
	assert_contains(m, "the server is not speaking TLS (wrong version number)");
	assert_int_equal(ERR_peek_error(), 0);
}

static void test_protocol_version_refused(void **state)
{
	struct end r, x;
	int fds[2];
	/* a TLS 1.1-only client against our server */
	struct tls_ctx *sc = server_ctx("good.p12");
	SSL_CTX *old = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_security_level(old, 0);
	SSL_CTX_set_cipher_list(old, "DEFAULT@SECLEVEL=0");
	SSL_CTX_set_min_proto_version(old, TLS1_VERSION);
	SSL_CTX_set_max_proto_version(old, TLS1_1_VERSION);
	raw_vs_xport(old, false, sc, &r, &x, fds);
	assert_int_equal(x.r, MR_ETLS);
	assert_contains(xport_last_error(x.x), "the client offers no TLS version we accept");
	assert_contains(xport_last_error(x.x), "TLS 1.2 or 1.3");
	raw_end_free(&r);
	xport_close(x.x);
	SSL_CTX_free(old);
	/* our client against a TLS 1.1-only server */
	SSL_CTX *olds = raw_server_ctx("leaf.pem", "leaf.key", TLS1_VERSION, TLS1_1_VERSION);
	struct tls_ctx *cc = client_ctx("ca.pem", NULL, "127.0.0.1:2333");
	raw_vs_xport(olds, true, cc, &r, &x, fds);
	assert_int_equal(x.r, MR_ETLS);
	assert_contains(xport_last_error(x.x), "TLS 1.2");
	assert_contains(xport_last_error(x.x), "version");
	raw_end_free(&r);
	xport_close(x.x);
	SSL_CTX_free(olds);
	tls_ctx_free(sc);
	tls_ctx_free(cc);
	assert_int_equal(ERR_peek_error(), 0);
}

static void test_ctx_failures_log_one_line(void **state)
{
	struct tls_ctx *c;
	const char *out;
	struct conf_tls t = { .present = true, .pkcs12 = P("missing.p12"), .pkcs12_password = "pw" };
	out = ctx_log(&t, true, NULL, &c);
	assert_null(c);
	assert_contains(out, "server.transport.tls.pkcs12: cannot read ");
	assert_contains(out, "missing.p12: No such file or directory; ");
	assert_int_equal(count_lines(out), 1);

	t.pkcs12 = P("good.p12");
	t.pkcs12_password = "wrong";
	out = ctx_log(&t, true, NULL, &c);
	assert_null(c);
	assert_contains(out, "server.transport.tls.pkcs12_password: wrong password for ");
	assert_int_equal(count_lines(out), 1);

	t.pkcs12_password = NULL;
	out = ctx_log(&t, true, NULL, &c);
	assert_null(c);
	assert_contains(out, "server.transport.tls.pkcs12_password: not set, and ");

	t.pkcs12_password = "pw";
	t.pkcs12 = P("garbage.txt");
	out = ctx_log(&t, true, NULL, &c);
	assert_null(c);
	assert_contains(out, "garbage.txt is not a PKCS#12 file");
	assert_int_equal(count_lines(out), 1);

	t.pkcs12 = P("empty.bin");
	out = ctx_log(&t, true, NULL, &c);
	assert_null(c);
	assert_contains(out, "server.transport.tls.pkcs12: ");
	assert_contains(out, "empty.bin is empty");

	t.pkcs12 = dir;
	out = ctx_log(&t, true, NULL, &c);
	assert_null(c);
	assert_contains(out, "Is a directory");

	t.pkcs12 = P("nokey.p12");
	out = ctx_log(&t, true, NULL, &c);
	assert_null(c);
	assert_contains(out, "holds no private key");

	/* a server's trusted_root must be readable and hold a certificate */
	t.pkcs12 = P("good.p12");
	t.trusted_root = P("missing.pem");
	out = ctx_log(&t, true, NULL, &c);
	assert_null(c);
	assert_contains(out, "server.transport.tls.trusted_root: cannot read ");
	t.trusted_root = P("garbage.txt");
	out = ctx_log(&t, true, NULL, &c);
	assert_null(c);
	assert_contains(out, "server.transport.tls.trusted_root: ");
	assert_contains(out, "holds no PEM certificate");
	assert_int_equal(count_lines(out), 1);
	t.trusted_root = P("ca.pem");
	out = ctx_log(&t, true, NULL, &c);
	assert_non_null(c);
	assert_string_equal(out, "");
	tls_ctx_free(c);

	/* client: trusted_root */
	struct conf_tls ct = { .present = true, .trusted_root = P("missing.pem") };
	out = ctx_log(&ct, false, "127.0.0.1:2333", &c);
	assert_null(c);
	assert_contains(out, "client.transport.tls.trusted_root: cannot read ");
	ct.trusted_root = P("empty.bin");
	out = ctx_log(&ct, false, "127.0.0.1:2333", &c);
	assert_null(c);
	assert_contains(out, "empty.bin is empty");
	ct.trusted_root = P("leaf.key");   /* PEM, but no certificate */
	out = ctx_log(&ct, false, "127.0.0.1:2333", &c);
	assert_null(c);
	assert_contains(out, "holds no PEM certificate");
	/* no host to check */
	ct.trusted_root = NULL;
	out = ctx_log(&ct, false, ":2333", &c);
	assert_null(c);
	assert_contains(out, "client.transport.tls.hostname: not set");
	/* a client's pkcs12, even without a password or a file: ignored */
	ct.pkcs12 = P("missing.p12");
	out = ctx_log(&ct, false, "127.0.0.1:2333", &c);
	assert_non_null(c);
	tls_ctx_free(c);
	assert_int_equal(ERR_peek_error(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handshake_and_exchange),
		cmocka_unit_test(test_context_freed_while_connections_run),
		cmocka_unit_test(test_half_close),
		cmocka_unit_test(test_eof_without_close_notify_is_eof),
		cmocka_unit_test(test_pending_reads_without_the_socket),
		cmocka_unit_test(test_large_writes_partial_and_moving),
		cmocka_unit_test(test_writev_gathers_one_record),
		cmocka_unit_test(test_legacy_pkcs12_and_name_forms),
		cmocka_unit_test(test_trusted_root_first_certificate_only),
		cmocka_unit_test(test_sni_and_versions_against_openssl),
		cmocka_unit_test(test_untrusted_self_signed),
		cmocka_unit_test(test_expired),
		cmocka_unit_test(test_name_mismatch),
		cmocka_unit_test(test_plain_client_on_tls_server),
		cmocka_unit_test(test_tls_client_on_plain_server),
		cmocka_unit_test(test_protocol_version_refused),
		cmocka_unit_test(test_ctx_failures_log_one_line),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
