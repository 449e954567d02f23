/* Fuzz target for the noise transport's stream side (xport/xport_noise.c):
 * the handshake reader and the frame reader, over an in-memory lower
 * layer. xport_noise.c is compiled into this target (it needs only the
 * codec and base's pure helpers: no loop, no sockets).
 *
 * The first byte picks a mode:
 *   even: the input is the raw stream a server (NK responder) reads from
 *         its first byte: the handshake decoder on garbage;
 *   odd:  a real NK handshake first, then the input is cut into chunks:
 *         a chunk with a low tag byte is sent through the client's layer
 *         (valid frames of any size), one with a high tag byte is written
 *         raw (garbage frames, cut lengths); the server reads with sizes
 *         the input picks. What it returns must equal what the client
 *         wrote, in order, until the first raw chunk; after an error every
 *         call fails; at the end of the input the stream ends (FIN), which
 *         must give 0 or an error, never -EAGAIN for ever (protocol.md#q18). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "codec/conf.h"
#include "xport/xport_noise.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

/* ------------------------------------------------ an in-memory lower layer */

struct memx {
	struct xport base;
	uint8_t *in;            /* bytes to read */
	size_t in_len, in_off;
	bool in_eof;
	size_t read_max;        /* largest read returned (short reads) */
	struct memx *peer;      /* writes land in peer->in; NULL: discarded */
};

static struct memx *to_memx(struct xport *x) { return (struct memx *)x; }

static ssize_t mem_read(struct xport *x, void *buf, size_t len)
{
	struct memx *m = to_memx(x);
	size_t n = m->in_len - m->in_off;
	if (!n)
		return m->in_eof ? 0 : -EAGAIN;
	if (n > len)
		n = len;
	if (n > m->read_max)
		n = m->read_max;
	memcpy(buf, m->in + m->in_off, n);
	m->in_off += n;
	return (ssize_t)n;
}

static void mem_push(struct memx *m, const void *buf, size_t len)
{
	uint8_t *p = realloc(m->in, m->in_len + len + 1);
	CHECK(p);
	m->in = p;
	memcpy(m->in + m->in_len, buf, len);
	m->in_len += len;
}

static ssize_t mem_write(struct xport *x, const void *buf, size_t len)
{
	struct memx *m = to_memx(x);
	if (m->peer)
		mem_push(m->peer, buf, len);
	return (ssize_t)len;
}

static int mem_shutdown(struct xport *x) { return 0; }
static unsigned mem_want(struct xport *x) { return 1; }
static void mem_close(struct xport *x) { }

static const struct xport_ops mem_ops = {
	.name = "mem", .read = mem_read, .write = mem_write, .shutdown_wr = mem_shutdown,
	.want = mem_want, .close = mem_close,
};

static void memx_init(struct memx *m)
{
	memset(m, 0, sizeof(*m));
	m->base.ops = &mem_ops;
	m->base.fd = -1;
	m->base.splice_fd = -1;
	m->read_max = 1 << 20;
}

/* ------------------------------------------------ identities */

/* a fixed NK pair: private 0x01.. (32 bytes), its public key */
static const char *const PRIV = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";
static const char *const PUB = "B6N8vBQgk8i3VdwbEOhstCY3StFqqFPtC9/AsrhtHHw=";

static struct noise_ident *ident(bool server)
{
	struct conf_noise n = { .present = true };
	n.pattern = (char *)"Noise_NK_25519_ChaChaPoly_BLAKE2s";
	if (server)
		n.local_private_key = (char *)PRIV;
	else
		n.remote_public_key = (char *)PUB;
	struct noise_ident *id = noise_ident_new(&n, server, server ? "server" : "client");
	CHECK(id);
	return id;
}

/* Runs both handshakes to the end over the two memx. */
static void handshake_pair(struct xport *cx, struct xport *sx)
{
	int rc = -EAGAIN, rs = -EAGAIN;
	for (int i = 0; i < 8 && (rc || rs); i++) {
		if (rc)
			rc = xport_handshake(cx);
		if (rs)
			rs = xport_handshake(sx);
		CHECK(rc == 0 || rc == -EAGAIN);
		CHECK(rs == 0 || rs == -EAGAIN);
	}
	CHECK(rc == 0 && rs == 0);
}

/* Reads whatever the server layer returns until -EAGAIN, 0 or an error;
 * checks it against expect[*got..). Returns the last result. */
static ssize_t drain(struct xport *sx, const uint8_t *expect, size_t expect_len, size_t *got,
		     bool exact, size_t rsz)
{
	static uint8_t buf[70000];
	for (;;) {
		ssize_t n = xport_read(sx, buf, rsz);
		if (n <= 0)
			return n;
		if (exact) {
			CHECK(*got + (size_t)n <= expect_len);
			CHECK(memcmp(buf, expect + *got, (size_t)n) == 0);
		}
		*got += (size_t)n;
	}
}

static void fuzz_handshake(const uint8_t *in, size_t len)
{
	struct noise_ident *sid = ident(true);
	struct memx m;
	memx_init(&m);
	mem_push(&m, in, len);
	m.in_eof = true;
	m.read_max = len % 7 + 1 + (len & 64 ? 65536 : 0);
	struct xport *sx = xport_noise_new(sid, &m.base);
	CHECK(sx);
	int r = -EAGAIN;
	for (size_t i = 0; i < len + 4 && r == -EAGAIN; i++)
		r = xport_handshake(sx);
	/* the input is finite and ends with EOF: never stuck waiting */
	CHECK(r != -EAGAIN);
	if (r < 0)
		CHECK(xport_handshake(sx) < 0);
	uint8_t b[64];
	if (r == 0)
		(void)xport_read(sx, b, sizeof(b));
	xport_close(sx);
	noise_ident_unref(sid);
	free(m.in);
}

static void fuzz_frames(const uint8_t *in, size_t len)
{
	struct noise_ident *sid = ident(true), *cid = ident(false);
	struct memx cm, sm;
	memx_init(&cm);
	memx_init(&sm);
	cm.peer = &sm;
	sm.peer = &cm;
	struct xport *cx = xport_noise_new(cid, &cm.base);
	struct xport *sx = xport_noise_new(sid, &sm.base);
	CHECK(cx && sx);
	handshake_pair(cx, sx);
	sm.peer = NULL;  /* the server's replies are not read */
	uint8_t *sent = malloc(len + 1);
	CHECK(sent);
	size_t sent_len = 0, got = 0;
	bool exact = true;
	ssize_t last = -EAGAIN;
	size_t pos = 0;
	while (pos + 2 <= len && last == -EAGAIN) {
		uint8_t tag = in[pos], n = in[pos + 1];
		pos += 2;
		size_t take = n < len - pos ? n : len - pos;
		if (tag < 200) {
			/* valid frames; a big one now and then (up to 70,000 bytes
			 * of zeros), so several frames and the 65,519 split occur */
			if (tag == 7 && take) {
				size_t big = (size_t)in[pos] * 300;
				uint8_t *z = calloc(1, big + 1);
				CHECK(z);
				for (size_t off = 0; off < big;) {
					ssize_t w = xport_write(cx, z + off, big - off);
					CHECK(w > 0);
					off += (size_t)w;
				}
				uint8_t *s2 = realloc(sent, sent_len + big + len + 1);
				CHECK(s2);
				sent = s2;
				memset(sent + sent_len, 0, big);
				sent_len += big;
				free(z);
			}
			for (size_t off = 0; off < take;) {
				ssize_t w = xport_write(cx, in + pos + off, take - off);
				CHECK(w > 0);
				off += (size_t)w;
			}
			memcpy(sent + sent_len, in + pos, take);
			sent_len += take;
		} else {
			mem_push(&sm, in + pos, take);
			exact = false;
		}
		pos += take;
		sm.read_max = (size_t)(tag % 5) * 7000 + 1;
		last = drain(sx, sent, sent_len, &got, exact, (size_t)(n % 3 == 0 ? 65536 : n + 1));
	}
	sm.in_eof = true;
	if (last == -EAGAIN)
		last = drain(sx, sent, sent_len, &got, exact, 65536);
	CHECK(last != -EAGAIN);   /* EOF is reported, never waited on */
	if (last < 0)
		CHECK(xport_read(sx, sent, 1) < 0);
	else if (exact)
		CHECK(got == sent_len);
	xport_close(cx);
	xport_close(sx);
	noise_ident_unref(sid);
	noise_ident_unref(cid);
	free(sent);
	free(cm.in);
	free(sm.in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool quiet;
	if (!quiet) {
		log_set_level(LOGL_OFF);
		quiet = true;
	}
	if (size < 1)
		return 0;
	if (data[0] & 1)
		fuzz_frames(data + 1, size - 1);
	else
		fuzz_handshake(data + 1, size - 1);
	return 0;
}
