/* xport_noise: see xport_noise.h. The framing is protocol.md#p-noise:
 *
 *   +----------------------+------------------------------+
 *   | len: u16 little-end. | len bytes of Noise message   |
 *   +----------------------+------------------------------+
 *
 * Receiving: bytes from the lower layer collect in rbuf (allocated while
 * it holds something: an idle connection keeps no buffer); a complete
 * frame is decrypted straight into the caller's buffer when it fits, else
 * in place and served from there (pt). Sending: one frame per write,
 * encrypted into wbuf behind its length, and written to the lower layer
 * in one call; what the lower layer does not take stays in wbuf and is
 * flushed before anything else. */
#include "xport/xport_noise.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "base/err.h"
#include "base/log.h"
#include "base/loop.h"
#include "codec/keygen.h"
#include "codec/noise.h"

enum {
	FRAME_HDR = 2,
	FRAME_MAX = NOISE_MSG_MAX,                       /* ciphertext bytes in one frame */
	PLAIN_MAX = NOISE_MSG_MAX - NOISE_TAG_LEN,       /* 65,519 */
	FRAMES_PER_CALL = 2,                             /* a 64 KiB relay write is 65,519 + 17 */
	RBUF_CAP = FRAMES_PER_CALL * (FRAME_HDR + FRAME_MAX) + 16 * 1024, /* whole frames and the start of more */
	WBUF_CAP = RBUF_CAP,                             /* one size, so both share the spares */
	SPARE_BUFS = 8,                                  /* idle buffers an identity keeps */
};

struct noise_ident {
	unsigned refs;
	struct noise_protocol proto;
	enum noise_role role;
	bool has_s, has_rs;
	uint8_t s_priv[NOISE_DH_MAX];
	uint8_t rs[NOISE_DH_MAX];
	/* Frame buffers its connections gave back, for the next to take: a
	 * busy connection takes and returns one per burst, and without these
	 * every burst would cost the allocator a trim and the kernel fresh
	 * zeroed pages. Owned here; at most SPARE_BUFS. */
	void *spare[SPARE_BUFS];
	unsigned n_spare;
};

enum nx_state {
	NX_HANDSHAKE = 0,  /* Noise messages in frames until Split() */
	NX_OPEN,           /* transport frames both ways */
	NX_EOF,            /* the peer ended its direction (FIN, or an empty frame) */
	NX_FAILED,         /* a frame or the handshake failed; every call fails */
};

struct xport_noise {
	struct xport base;
	struct noise_ident *id;        /* one reference */
	struct noise_hs *hs;           /* NX_HANDSHAKE only */
	struct noise_cipher *tx, *rx;  /* after Split() */
	enum nx_state state;
	unsigned hs_read;              /* handshake messages read */
	unsigned want;                 /* what the last -EAGAIN waits for */
	uint8_t *rbuf;                 /* RBUF_CAP bytes while it holds anything */
	size_t roff, rlen;             /* unconsumed raw bytes: rbuf[roff, roff + rlen) */
	uint8_t *pt;                   /* decrypted plaintext not yet returned (in rbuf) */
	size_t pt_len;
	uint8_t *wbuf;                 /* WBUF_CAP bytes while a frame is unsent */
	size_t woff, wlen;             /* unsent: wbuf[woff, wlen) */
	size_t committed;              /* plaintext bytes in the unsent frame, owed
					* to the caller's next write (nx_writev) */
	char err[320];                 /* last_error */
};

static struct xport_noise *to_nx(struct xport *x) { return (struct xport_noise *)x; }

/* ---------------------------------------------------------------- identity */

static const char *const B64_HINT = "use a key printed by `molerat --genkey` (or `rathole --genkey`)";

/* Decodes a configured key into out (dhlen bytes). Logs and fails otherwise. */
static int ident_key(const char *sec, const char *key, const char *b64, uint8_t *out, size_t dhlen)
{
	uint8_t buf[NOISE_DH_MAX + 8];
	int n = keygen_b64_decode(b64, strlen(b64), buf, sizeof(buf));
	if (n >= 0 && (size_t)n == dhlen)
		memcpy(out, buf, dhlen);
	OPENSSL_cleanse(buf, sizeof(buf));
	if (n >= 0 && (size_t)n == dhlen)
		return 0;
	if (n == MR_EFORMAT)
		log_error("%s.transport.noise.%s: the key is not valid standard base64; %s", sec, key, B64_HINT);
	else if (n >= 0)
		log_error("%s.transport.noise.%s: the key decodes to %d bytes, the pattern's DH needs %zu; %s",
			  sec, key, n, dhlen, B64_HINT);
	else
		log_error("%s.transport.noise.%s: the key decodes to more than %zu bytes, the pattern's DH "
			  "needs %zu; %s", sec, key, sizeof(buf), dhlen, B64_HINT);
	return MR_ECONFIG;
}

struct noise_ident *noise_ident_new(const struct conf_noise *n, bool server, const char *sec)
{
	const char *name = n->pattern ? n->pattern : "Noise_NK_25519_ChaChaPoly_BLAKE2s";
	struct noise_ident *id = calloc(1, sizeof(*id));
	if (!id) {
		log_error("%s.transport.noise: out of memory", sec);
		return NULL;
	}
	id->refs = 1;
	id->role = server ? NOISE_RESPONDER : NOISE_INITIATOR;
	const char *why = NULL;
	if (noise_protocol_parse(name, &id->proto, &why) < 0 || id->proto.one_way) {
		log_error("%s.transport.noise.pattern: \"%s\" is not usable: %s; e.g. pattern = "
			  "\"Noise_NK_25519_ChaChaPoly_BLAKE2s\"", sec, name,
			  why ? why : "a one-way pattern cannot carry traffic both ways");
		goto fail;
	}
	size_t dhlen = id->proto.dhlen;
	if (n->local_private_key) {
		if (ident_key(sec, "local_private_key", n->local_private_key, id->s_priv, dhlen) < 0)
			goto fail;
	} else {
		/* protocol.md#p-noise: a random static pair made at start and
		 * shared by every connection of this instance */
		uint8_t pub[NOISE_DH_MAX];
		if (noise_dh_generate(id->proto.dh, id->s_priv, pub) < 0) {
			log_error("%s.transport.noise: cannot make a static key pair", sec);
			goto fail;
		}
	}
	id->has_s = true;
	if (n->remote_public_key) {
		if (ident_key(sec, "remote_public_key", n->remote_public_key, id->rs, dhlen) < 0)
			goto fail;
		id->has_rs = true;
	} else if (noise_needs_remote_static(&id->proto, id->role)) {
		log_error("%s.transport.noise: %s needs remote_public_key, the %s's public key; add "
			  "remote_public_key = \"...\" (the Public Key `molerat --genkey` printed for it)",
			  sec, name, server ? "client" : "server");
		goto fail;
	}
	return id;
fail:
	noise_ident_unref(id);
	return NULL;
}

static struct noise_ident *ident_ref(struct noise_ident *id)
{
	id->refs++;
	return id;
}

void noise_ident_unref(struct noise_ident *id)
{
	if (!id || --id->refs)
		return;
	for (unsigned i = 0; i < id->n_spare; i++)
		free(id->spare[i]);
	OPENSSL_cleanse(id, sizeof(*id));
	free(id);
}

/* A frame buffer (RBUF_CAP bytes): a spare, else a new one. */
static uint8_t *buf_get(struct noise_ident *id)
{
	return id->n_spare ? id->spare[--id->n_spare] : malloc(RBUF_CAP);
}

static void buf_put(struct noise_ident *id, uint8_t *b)
{
	if (id->n_spare < SPARE_BUFS)
		id->spare[id->n_spare++] = b;
	else
		free(b);
}

/* ---------------------------------------------------------------- errors */

__attribute__((format(printf, 2, 3)))
static int nx_fail(struct xport_noise *nx, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(nx->err, sizeof(nx->err), fmt, ap);
	va_end(ap);
	nx->state = NX_FAILED;
	return MR_ENOISE;
}

static const char *nx_last_error(struct xport *x)
{
	struct xport_noise *nx = to_nx(x);
	return nx->err[0] ? nx->err : NULL;
}

/* ---------------------------------------------------------------- buffers */

static void rbuf_release(struct xport_noise *nx)
{
	if (nx->rbuf && !nx->rlen && !nx->pt_len) {
		buf_put(nx->id, nx->rbuf);
		nx->rbuf = NULL;
		nx->roff = 0;
		nx->pt = NULL;
	}
}

/* Reads what the lower layer has into rbuf. Returns > 0 bytes, 0 at the
 * end of the stream, -EAGAIN (want set) or an error. */
static ssize_t rbuf_fill(struct xport_noise *nx)
{
	if (!nx->rbuf) {
		nx->rbuf = buf_get(nx->id);
		if (!nx->rbuf)
			return -ENOMEM;
		nx->roff = 0;
	}
	if (nx->roff && RBUF_CAP - nx->roff - nx->rlen < FRAME_HDR + FRAME_MAX) {
		/* rbuf is filled only when it holds no whole frame (less than
		 * FRAME_HDR + FRAME_MAX bytes) and no plaintext (pt is served
		 * first): the move leaves room for at least the rest of a frame */
		memmove(nx->rbuf, nx->rbuf + nx->roff, nx->rlen);
		nx->roff = 0;
	}
	size_t room = RBUF_CAP - nx->roff - nx->rlen;
	ssize_t n = xport_read(nx->base.lower, nx->rbuf + nx->roff + nx->rlen, room);
	if (n == -EAGAIN)
		nx->want = xport_want(nx->base.lower);
	if (n > 0)
		nx->rlen += (size_t)n;
	return n;
}

/* The length of the complete frame at the front of rbuf: > 0 when the
 * whole frame is there, 0 when more bytes are needed. */
static size_t frame_ready(const struct xport_noise *nx, size_t *flen)
{
	if (nx->rlen < FRAME_HDR)
		return 0;
	const uint8_t *p = nx->rbuf + nx->roff;
	*flen = (size_t)p[0] | (size_t)p[1] << 8;
	return nx->rlen >= FRAME_HDR + *flen ? FRAME_HDR + *flen : 0;
}

static void rbuf_consume(struct xport_noise *nx, size_t n)
{
	nx->roff += n;
	nx->rlen -= n;
	if (!nx->rlen)
		nx->roff = 0;
}

/* Writes wbuf's unsent bytes. 0 when all are out, -EAGAIN (want set), or
 * an error. */
static int wbuf_flush(struct xport_noise *nx)
{
	while (nx->woff < nx->wlen) {
		ssize_t n = xport_write(nx->base.lower, nx->wbuf + nx->woff, nx->wlen - nx->woff);
		if (n < 0) {
			if (n == -EAGAIN)
				nx->want = xport_want(nx->base.lower);
			return (int)n;
		}
		nx->woff += (size_t)n;
	}
	buf_put(nx->id, nx->wbuf);
	nx->wbuf = NULL;
	nx->woff = nx->wlen = 0;
	return 0;
}

static uint8_t *wbuf_frame(struct xport_noise *nx)
{
	if (!nx->wbuf)
		nx->wbuf = buf_get(nx->id);
	return nx->wbuf;
}

static void put_len(uint8_t *p, size_t len)
{
	p[0] = (uint8_t)(len & 0xff);
	p[1] = (uint8_t)(len >> 8);
}

/* ---------------------------------------------------------------- handshake */

static const char *peer_name(const struct xport_noise *nx)
{
	return nx->id->role == NOISE_INITIATOR ? "server" : "client";
}

/* Why a handshake message did not read, for the one line a user sees. */
static int hs_read_failed(struct xport_noise *nx, int r, size_t flen)
{
	const char *peer = peer_name(nx);
	const struct noise_protocol *p = &nx->id->proto;
	if (r == MR_ECRYPTO) {
		if (nx->id->role == NOISE_RESPONDER)
			return nx_fail(nx, "the Noise handshake did not decrypt: the %s does not use this "
					   "server's key or the same pattern (%s); check its remote_public_key "
					   "against the Public Key of this server's local_private_key", peer, p->name);
		return nx_fail(nx, "the Noise handshake did not decrypt: the server's key is not the one "
				   "configured in remote_public_key, or it uses another pattern than %s", p->name);
	}
	if (r == MR_EPROTO_SHORT)
		return nx_fail(nx, "the %s sent a %zu-byte Noise handshake message, too short for %s: it "
				   "does not speak Noise with this pattern (is its transport.type tcp or tls, "
				   "or its pattern another?)", peer, flen, p->name);
	return nx_fail(nx, "the Noise handshake failed reading the %s's message (%s)", peer, mr_strerror(r));
}

/* The connection failed under the handshake (a reset, most often: a peer
 * of another transport closing on bytes it cannot read). */
static int hs_lost(struct xport_noise *nx, int err)
{
	return nx_fail(nx, "the %s ended the connection during the Noise handshake (%s): does it use "
			   "transport.type = \"noise\" with the same pattern and keys? (its log says why)",
		       peer_name(nx), mr_strerror(err));
}

/* Reads one handshake frame. 0 when a message was processed, -EAGAIN, or
 * an error. */
static int hs_read_step(struct xport_noise *nx)
{
	/* rathole's handshake payloads are empty: every message has the
	 * pattern's exact size, known before the frame arrives */
	size_t expect = noise_hs_next_len(nx->hs), flen = 0, whole = 0;
	for (;;) {
		if (nx->rlen >= FRAME_HDR) {
			const uint8_t *p = nx->rbuf + nx->roff;
			flen = (size_t)p[0] | (size_t)p[1] << 8;
			if (flen != expect)
				return nx_fail(nx, "the %s sent a %zu-byte Noise handshake message where %s "
						   "has %zu: it does not speak Noise with this pattern (is its "
						   "transport.type tcp or tls, or its pattern another?)",
					       peer_name(nx), flen, nx->id->proto.name, expect);
			if ((whole = frame_ready(nx, &flen)))
				break;
		}
		ssize_t n = rbuf_fill(nx);
		if (n == 0 && !nx->rlen && !nx->hs_read && nx->id->role == NOISE_RESPONDER) {
			/* closed before sending anything: a port probe, not a
			 * Noise problem */
			nx->state = NX_FAILED;
			return MR_EEOF;
		}
		if (n == 0)
			return nx_fail(nx, nx->rlen ? "the %s closed the connection inside a Noise handshake "
						      "message"
						    : "the %s closed the connection during the Noise handshake: "
						      "does it use transport.type = \"noise\" with the same pattern "
						      "and keys? (its log says why)", peer_name(nx));
		if (n < 0)
			return n == -EAGAIN || n == -ENOMEM ? (int)n : hs_lost(nx, (int)n);
	}
	uint8_t payload[256];  /* rathole's payloads are empty; a longer one fails */
	int r = noise_hs_read(nx->hs, nx->rbuf + nx->roff + FRAME_HDR, flen, payload, sizeof(payload));
	OPENSSL_cleanse(payload, sizeof(payload));
	if (r < 0)
		return hs_read_failed(nx, r, flen);
	rbuf_consume(nx, whole);
	nx->hs_read++;
	return 0;
}

static int nx_handshake(struct xport *x)
{
	struct xport_noise *nx = to_nx(x);
	if (nx->state != NX_HANDSHAKE)
		return nx->state == NX_FAILED ? MR_ENOISE : 0;
	int r = xport_handshake(x->lower);  /* a proxy step below, one day */
	if (r != 0) {
		if (r == -EAGAIN)
			nx->want = xport_want(x->lower);
		return r;
	}
	for (;;) {
		if (nx->wlen && (r = wbuf_flush(nx)) != 0)
			return r == -EAGAIN || r == -ENOMEM ? r : hs_lost(nx, r);
		switch (noise_hs_action(nx->hs)) {
		case NOISE_ACTION_WRITE: {
			uint8_t *f = wbuf_frame(nx);
			if (!f)
				return -ENOMEM;
			int n = noise_hs_write(nx->hs, NULL, 0, f + FRAME_HDR, WBUF_CAP - FRAME_HDR);
			if (n < 0)
				return nx_fail(nx, "cannot write a Noise handshake message (%s)", mr_strerror(n));
			put_len(f, (size_t)n);
			nx->woff = 0;
			nx->wlen = FRAME_HDR + (size_t)n;
			break;
		}
		case NOISE_ACTION_READ:
			if ((r = hs_read_step(nx)) != 0)
				return r;
			break;
		case NOISE_ACTION_SPLIT: {
			if ((r = noise_hs_split(nx->hs, &nx->tx, &nx->rx)) < 0)
				return nx_fail(nx, "the Noise handshake cannot split (%s)", mr_strerror(r));
			noise_hs_free(nx->hs);
			nx->hs = NULL;
			nx->state = NX_OPEN;
			/* bytes after the last handshake message are transport
			 * frames: pending() reports them */
			rbuf_release(nx);
			return 0;
		}
		default:
			return nx->err[0] ? MR_ENOISE : nx_fail(nx, "the Noise handshake failed");
		}
	}
}

/* ---------------------------------------------------------------- transport */

/* Decrypts the whole frames rbuf holds into buf while they fit (so one
 * call may return several frames), reading the lower layer only when
 * nothing was returned yet. */
static ssize_t nx_read(struct xport *x, void *buf, size_t len)
{
	struct xport_noise *nx = to_nx(x);
	if (nx->state != NX_OPEN)
		return nx->state == NX_EOF ? 0 : nx->state == NX_FAILED ? MR_ENOISE : -EAGAIN;
	if (!len)
		return 0;
	if (nx->pt_len) {
		size_t n = len < nx->pt_len ? len : nx->pt_len;
		memcpy(buf, nx->pt, n);
		nx->pt += n;
		nx->pt_len -= n;
		rbuf_release(nx);
		return (ssize_t)n;
	}
	uint8_t *out = buf;
	size_t got = 0;
	for (;;) {
		size_t flen = 0, whole = frame_ready(nx, &flen);
		if (whole) {
			if (flen < NOISE_TAG_LEN)
				return got ? (ssize_t)got
					   : nx_fail(nx, "the %s sent a %zu-byte Noise frame, shorter than its "
							 "tag", peer_name(nx), flen);
			size_t plen = flen - NOISE_TAG_LEN;
			if (got && (plen == 0 || plen > len - got))
				break;  /* the next call takes it */
			uint8_t *frame = nx->rbuf + nx->roff + FRAME_HDR;
			bool direct = plen <= len - got;
			int r = noise_cipher_decrypt(nx->rx, frame, flen, direct ? out + got : frame);
			if (r < 0)
				return got ? (ssize_t)got
					   : nx_fail(nx, "a Noise frame from the %s did not decrypt (corrupted "
							 "or forged); connection dropped", peer_name(nx));
			rbuf_consume(nx, whole);
			if (plen == 0) {
				/* protocol.md#p-noise: an empty plaintext reads as
				 * the end of the stream, as rathole reads it */
				nx->state = NX_EOF;
				rbuf_release(nx);
				return 0;
			}
			if (direct) {
				got += plen;
				continue;
			}
			/* the first frame and bigger than buf: serve len bytes
			 * now, the rest from pt; the frame's bytes stay put
			 * (rbuf is not refilled before pt is empty) */
			memcpy(out, frame, len);
			nx->pt = frame + len;
			nx->pt_len = plen - len;
			return (ssize_t)len;
		}
		if (got)
			break;
		ssize_t n = rbuf_fill(nx);
		if (n == 0) {
			if (nx->rlen) {
				/* protocol.md#q18: rathole spins for ever on a
				 * lone length byte; this ends the connection */
				nx->rlen = 0;
				return nx_fail(nx, "the %s closed the connection inside a Noise frame",
					       peer_name(nx));
			}
			nx->state = NX_EOF;
			rbuf_release(nx);
			return 0;
		}
		if (n < 0) {
			if (n == -EAGAIN)
				rbuf_release(nx);
			return n;
		}
	}
	rbuf_release(nx);
	return (ssize_t)got;
}

/* Where the plaintext at offset off of the iovecs continues for n bytes
 * in one buffer; NULL when it spans buffers. */
static const uint8_t *iov_span(const struct iovec *iov, int iovcnt, size_t off, size_t n)
{
	for (int i = 0; i < iovcnt; i++) {
		if (off < iov[i].iov_len)
			return iov[i].iov_len - off >= n ? (const uint8_t *)iov[i].iov_base + off : NULL;
		off -= iov[i].iov_len;
	}
	return NULL;
}

/* Copies n bytes at offset off of the iovecs to dst. */
static void iov_gather(const struct iovec *iov, int iovcnt, size_t off, size_t n, uint8_t *dst)
{
	for (int i = 0; i < iovcnt && n; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		size_t k = iov[i].iov_len - off < n ? iov[i].iov_len - off : n;
		memcpy(dst, (const uint8_t *)iov[i].iov_base + off, k);
		dst += k;
		n -= k;
		off = 0;
	}
}

/* Encrypts the iovecs as frames of at most PLAIN_MAX bytes (up to
 * FRAMES_PER_CALL of them) into wbuf, each behind its length, and sends
 * them in one call to the lower layer. Returns the plaintext bytes taken,
 * once their frames are all with the lower layer. When the lower layer
 * takes only part, the call returns -EAGAIN with the frames committed
 * (nx->committed): as with SSL_write, the caller calls again with the same
 * bytes first, and that call returns them as taken when the rest is out.
 * So frames never wait in wbuf without their owner waiting to write. */
static ssize_t nx_writev(struct xport *x, const struct iovec *iov, int iovcnt)
{
	struct xport_noise *nx = to_nx(x);
	if (nx->state == NX_FAILED)
		return MR_ENOISE;
	if (nx->state == NX_HANDSHAKE)
		return -EAGAIN;
	int r;
	if (nx->wlen) {
		if ((r = wbuf_flush(nx)) != 0)
			return r;
		size_t done = nx->committed;
		nx->committed = 0;
		if (done)
			return (ssize_t)done;
	}
	size_t total = 0;
	for (int i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	if (!total)
		return 0;  /* never an empty frame: it reads as the end of the stream */
	uint8_t *f = wbuf_frame(nx);
	if (!f)
		return -ENOMEM;
	size_t taken = 0;
	nx->woff = nx->wlen = 0;
	for (unsigned k = 0; k < FRAMES_PER_CALL && taken < total; k++) {
		size_t take = total - taken < PLAIN_MAX ? total - taken : PLAIN_MAX;
		uint8_t *slot = f + nx->wlen + FRAME_HDR;
		const uint8_t *src = iov_span(iov, iovcnt, taken, take);
		if (!src) {  /* gather, then encrypt in place */
			iov_gather(iov, iovcnt, taken, take, slot);
			src = slot;
		}
		int n = noise_cipher_encrypt(nx->tx, src, take, slot);
		if (n < 0)
			return nx_fail(nx, "cannot encrypt a Noise frame (%s)", mr_strerror(n));
		put_len(slot - FRAME_HDR, (size_t)n);
		nx->wlen += FRAME_HDR + (size_t)n;
		taken += take;
	}
	if ((r = wbuf_flush(nx)) != 0) {
		if (r == -EAGAIN)
			nx->committed = taken;
		return r;
	}
	return (ssize_t)taken;
}

static ssize_t nx_write(struct xport *x, const void *buf, size_t len)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	return nx_writev(x, &iov, 1);
}

static int nx_shutdown_wr(struct xport *x)
{
	struct xport_noise *nx = to_nx(x);
	if (nx->state == NX_FAILED)
		return MR_ENOISE;
	int r;
	if (nx->wlen && (r = wbuf_flush(nx)) != 0)
		return r;
	/* protocol.md#p-noise: no Noise close message; half-close is a FIN */
	return xport_shutdown_wr(x->lower);
}

static unsigned nx_want(struct xport *x)
{
	return to_nx(x)->want;
}

static size_t nx_pending(struct xport *x)
{
	struct xport_noise *nx = to_nx(x);
	if (nx->state == NX_FAILED)
		return 0;
	if (nx->pt_len)
		return nx->pt_len;
	size_t flen = 0;
	if (nx->state == NX_OPEN && frame_ready(nx, &flen))
		/* a whole frame waits: its plaintext, or an empty frame (end of
		 * stream) or a bad one, which a read reports */
		return flen > NOISE_TAG_LEN ? flen - NOISE_TAG_LEN : 1;
	return 0;
}

static void nx_close(struct xport *x)
{
	struct xport_noise *nx = to_nx(x);
	noise_hs_free(nx->hs);
	noise_cipher_free(nx->tx);
	noise_cipher_free(nx->rx);
	if (nx->rbuf)
		buf_put(nx->id, nx->rbuf);
	if (nx->wbuf)
		buf_put(nx->id, nx->wbuf);
	noise_ident_unref(nx->id);
	xport_close(x->lower);
	free(nx);
}

static const struct xport_ops noise_ops = {
	.name = "noise",
	.handshake = nx_handshake,
	.read = nx_read,
	.write = nx_write,
	.writev = nx_writev,
	.shutdown_wr = nx_shutdown_wr,
	.want = nx_want,
	.pending = nx_pending,
	.close = nx_close,
	.last_error = nx_last_error,
};

struct xport *xport_noise_new(struct noise_ident *id, struct xport *lower)
{
	struct xport_noise *nx = calloc(1, sizeof(*nx));
	int err = 0;
	if (nx)
		nx->hs = noise_hs_new(&id->proto, id->role, NULL, 0,
				      noise_needs_local_static(&id->proto, id->role) ? id->s_priv : NULL,
				      noise_needs_remote_static(&id->proto, id->role) ? id->rs : NULL, &err);
	if (!nx || !nx->hs) {
		if (nx && err != -ENOMEM)
			log_error("noise: cannot start a handshake (%s)", mr_strerror(err));
		free(nx);
		xport_close(lower);
		return NULL;
	}
	nx->id = ident_ref(id);
	nx->base.ops = &noise_ops;
	nx->base.lower = lower;
	nx->base.fd = lower->fd;
	nx->base.splice_fd = -1;
	nx->base.flags = 0;
	nx->state = NX_HANDSHAKE;
	/* the initiator writes first; the responder waits for it */
	nx->want = id->role == NOISE_INITIATOR ? LOOP_WRITE : LOOP_READ;
	return &nx->base;
}
