/* xport_ws: see xport_ws.h. The wire is protocol.md#p-websocket.
 *
 * State: WS_HANDSHAKE (the lower layer's handshake, then the upgrade's
 * heads in hbuf, which is freed after) -> WS_OPEN -> WS_FAILED (every
 * call fails from then on). The two directions end apart: rd_eof (a Close
 * or a FIN was read), close_sent / wr_shut (our Close, then the lower
 * layer's shutdown_wr).
 *
 * Receiving: when the caller asks for at least DIRECT_MIN bytes and
 * nothing is buffered, the lower layer reads straight into the caller's
 * buffer and the frames are decoded there in place: payloads moved down
 * over the headers between them and unmasked in the same pass (one pass
 * over every byte). Smaller
 * reads (a control channel's few bytes) and the bytes that followed the
 * 101 go through rbuf (allocated while it holds something).
 *
 * Sending: one Binary frame per write. A server's frame is its header and
 * the caller's buffers in one writev (no copy); a client masks the
 * payload behind its header into a stack buffer (the one copy masking
 * needs) and writes it in one call. When the lower layer takes part of a
 * frame, or says -EAGAIN but may have taken it (tls: the record is queued
 * in OpenSSL and the retry must start with the same bytes), the rest of
 * the frame is committed to wbuf and the call says -EAGAIN: as with
 * SSL_write, the owner calls again (with the same bytes) and that call
 * returns them as taken once the frame is out. So a frame never waits in
 * wbuf while its owner waits for something else. Over a plain socket
 * (XPORT_F_SHORT_IO_EXACT) an -EAGAIN took nothing and nothing is kept.
 *
 * Ping: answered with a Pong of the same payload at a frame boundary of
 * our output: from the read that found it when no frame of ours is in
 * flight, else in front of the next write (only the latest Ping is
 * answered; none after our Close). rathole never pings; browsers' and
 * python websockets' keepalives do. */
#include "xport/xport_ws.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "base/err.h"
#include "base/log.h"
#include "base/loop.h"
#include "codec/http_head.h"
#include "codec/keygen.h"
#include "codec/ws_frame.h"

enum {
	HEAD_MAX = 8192,             /* an upgrade request or response, blank line included */
	RBUF_CAP = 16 * 1024,
	DIRECT_MIN = 4096,           /* reads this big go straight to the caller's buffer */
	WRITE_MAX = 64 * 1024,       /* payload bytes in one frame */
	SERVER_IOV = 16,             /* caller's buffers in one server frame */
	KEY_POOL = 64,               /* masking keys drawn from the CSPRNG at once: 16 frames */
	CTRL_FRAME_MAX = WS_HDR_MAX + WS_CTRL_MAX,
};

enum ws_state {
	WS_HANDSHAKE = 0,  /* the lower layer's handshake, then the upgrade */
	WS_OPEN,           /* frames both ways (each direction may have ended) */
	WS_FAILED,         /* the upgrade or a frame failed; every call fails */
};

struct xport_ws {
	struct xport base;
	enum ws_state state;
	bool server;
	bool lower_exact;              /* the lower layer takes nothing on -EAGAIN */
	int failed;                    /* WS_FAILED: the code every call returns */
	unsigned want;                 /* what the last -EAGAIN waits for */
	/* the upgrade (WS_HANDSHAKE only) */
	char *host;                    /* client: the Host value */
	char *hbuf;                    /* HEAD_MAX + 1 bytes: our head to send, then theirs */
	size_t hoff, hlen;             /* sending: hbuf[hoff, hlen); receiving: hbuf[0, hlen) */
	bool head_sent;                /* client: the request is out */
	char key[WS_KEY_B64_LEN + 1];  /* client: the Sec-WebSocket-Key sent */
	/* receiving */
	struct ws_decoder dec;
	uint8_t *rbuf;                 /* RBUF_CAP bytes while it holds anything */
	size_t roff, rlen;
	bool rd_eof;                   /* a Close or the end of the stream was read */
	bool eof_told;                 /* a read returned 0 for it */
	bool pong_due;
	uint8_t pong[WS_CTRL_MAX];
	size_t pong_len;
	/* sending */
	uint8_t *wbuf;                 /* the unsent rest of a committed frame */
	size_t woff, wlen;
	size_t committed;              /* payload bytes of that frame, owed to the next write */
	bool close_sent;               /* our Close frame is committed */
	bool wr_shut;                  /* and the lower layer's write side ended */
	uint8_t keys[KEY_POOL];        /* client: masking keys from the CSPRNG */
	unsigned keys_used;
	char err[320];                 /* last_error */
};

static struct xport_ws *to_ws(struct xport *x) { return (struct xport_ws *)x; }

static const char *peer_name(const struct xport_ws *ws)
{
	return ws->server ? "client" : "server";
}

/* ---------------------------------------------------------------- errors */

__attribute__((format(printf, 2, 3)))
static int ws_fail(struct xport_ws *ws, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ws->err, sizeof(ws->err), fmt, ap);
	va_end(ap);
	ws->state = WS_FAILED;
	ws->failed = MR_EWS;
	return MR_EWS;
}

/* A frame the decoder refused. */
static int frame_failed(struct xport_ws *ws)
{
	const struct ws_decoder *d = &ws->dec;
	if (d->bad_len)
		return ws_fail(ws, "websocket: %s from the %s (%llu bytes)", d->why, peer_name(ws),
			       (unsigned long long)d->bad_len);
	return ws_fail(ws, "websocket: %s from the %s", d->why, peer_name(ws));
}

static const char *ws_last_error(struct xport *x)
{
	struct xport_ws *ws = to_ws(x);
	return ws->err[0] ? ws->err : xport_last_error(x->lower);
}

/* 0 when the layer is open; else what an operation returns: the failure,
 * or -EAGAIN during the upgrade (waiting for want). */
static int not_open(struct xport_ws *ws, unsigned want)
{
	if (ws->state == WS_FAILED)
		return ws->failed;
	if (ws->state == WS_HANDSHAKE) {
		ws->want = want;
		return -EAGAIN;
	}
	return 0;
}

/* ---------------------------------------------------------------- masking keys */

/* A fresh key (client frames): the CSPRNG is asked for KEY_POOL bytes at
 * once. Returns 0 or MR_ECRYPTO. */
static int next_key(struct xport_ws *ws, uint8_t key[4])
{
	if (ws->keys_used + 4 > KEY_POOL) {
		if (RAND_bytes(ws->keys, KEY_POOL) != 1)
			return MR_ECRYPTO;
		ws->keys_used = 0;
	}
	memcpy(key, ws->keys + ws->keys_used, 4);
	ws->keys_used += 4;
	return 0;
}

/* ---------------------------------------------------------------- sending */

/* Writes buf[*off, len) to the lower layer. 0 when all is out, -EAGAIN
 * (want set) or an error. */
static int send_rest(struct xport_ws *ws, const void *buf, size_t *off, size_t len)
{
	while (*off < len) {
		ssize_t n = xport_write(ws->base.lower, (const uint8_t *)buf + *off, len - *off);
		if (n < 0) {
			if (n == -EAGAIN)
				ws->want = xport_want(ws->base.lower);
			return (int)n;
		}
		*off += (size_t)n;
	}
	return 0;
}

/* Writes wbuf's unsent bytes. 0 when all are out (wbuf freed), -EAGAIN
 * (want set) or an error. */
static int wbuf_flush(struct xport_ws *ws)
{
	int r = send_rest(ws, ws->wbuf, &ws->woff, ws->wlen);
	if (r != 0)
		return r;
	free(ws->wbuf);
	ws->wbuf = NULL;
	ws->woff = ws->wlen = 0;
	return 0;
}

/* After the lower layer said n to a frame of flen bytes (iov): the whole
 * frame went out (1); nothing was taken (0: -EAGAIN over an exact lower
 * layer); or the rest, from what was taken, is committed to wbuf and
 * flushed as far as it goes (-EAGAIN, or the flush's error). Other errors
 * are returned as they are. */
static int frame_sent(struct xport_ws *ws, ssize_t n, const struct iovec *iov, int iovcnt, size_t flen)
{
	if (n >= 0 && (size_t)n == flen)
		return 1;
	if (n == -EAGAIN && ws->lower_exact) {
		ws->want = xport_want(ws->base.lower);
		return 0;
	}
	if (n < 0 && n != -EAGAIN)
		return (int)n;
	size_t skip = n > 0 ? (size_t)n : 0;
	ws->wbuf = malloc(flen - skip);
	if (!ws->wbuf)
		return -ENOMEM;
	ws->woff = 0;
	ws->wlen = 0;
	for (int i = 0; i < iovcnt; i++) {
		size_t l = iov[i].iov_len;
		if (skip >= l) {
			skip -= l;
			continue;
		}
		memcpy(ws->wbuf + ws->wlen, (const uint8_t *)iov[i].iov_base + skip, l - skip);
		ws->wlen += l - skip;
		skip = 0;
	}
	if (n == -EAGAIN) {
		ws->want = xport_want(ws->base.lower);
		return -EAGAIN;
	}
	if (ws->lower_exact) {
		/* a short write on a plain socket: its send buffer is full */
		ws->want = LOOP_WRITE;
		return -EAGAIN;
	}
	int r = wbuf_flush(ws);
	return r == 0 ? 1 : r;
}

/* Writes a control frame (op, payload p[0..n)) on its own, at a frame
 * boundary (nothing in wbuf). 1 sent or committed, 0 nothing taken,
 * -EAGAIN committed but not out, or an error. */
static int send_control(struct xport_ws *ws, enum ws_opcode op, const uint8_t *p, size_t n)
{
	uint8_t f[CTRL_FRAME_MAX], key[4];
	int r;
	if (!ws->server && (r = next_key(ws, key)) < 0)
		return r;
	size_t hl = ws_frame_header(f, true, op, n, ws->server ? NULL : key);
	if (n && ws->server)
		memcpy(f + hl, p, n);
	else if (n)
		ws_mask_copy(f + hl, p, n, key, 0);
	struct iovec iov = { .iov_base = f, .iov_len = hl + n };
	ssize_t w = xport_write(ws->base.lower, f, hl + n);
	return frame_sent(ws, w, &iov, 1, hl + n);
}

/* Sends a due Pong from a read when no frame of ours is in flight. Its
 * errors are left for the next write to meet. */
static void pong_from_read(struct xport_ws *ws)
{
	if (!ws->pong_due || ws->wlen || ws->close_sent)
		return;
	int r = send_control(ws, WS_OP_PONG, ws->pong, ws->pong_len);
	if (r != 0)
		ws->pong_due = false;  /* out, committed, or the connection failed */
}

/* What a data write returns after frame_sent said r about its frame of
 * take payload bytes (and the Pong in front, if one was due). */
static ssize_t data_sent(struct xport_ws *ws, int r, size_t take)
{
	if (r == 0)
		return -EAGAIN;  /* nothing taken: the Pong stays due */
	ws->pong_due = false;
	if (r == -EAGAIN)
		ws->committed = take;
	return r < 0 ? r : (ssize_t)take;
}

/* The payload bytes a frame takes from the iovecs: at most WRITE_MAX. */
static size_t iov_take(const struct iovec *iov, int iovcnt)
{
	size_t total = 0;
	for (int i = 0; i < iovcnt && total < WRITE_MAX; i++)
		total += iov[i].iov_len;
	return total < WRITE_MAX ? total : WRITE_MAX;
}

/* Server: [pong] header, then the caller's buffers (up to SERVER_IOV of
 * them), in one writev. */
static ssize_t server_writev(struct xport_ws *ws, const struct iovec *iov, int iovcnt, size_t take)
{
	uint8_t ctrl[CTRL_FRAME_MAX], hdr[WS_HDR_MAX];
	struct iovec v[2 + SERVER_IOV];
	int nv = 0;
	if (ws->pong_due) {
		size_t hl = ws_frame_header(ctrl, true, WS_OP_PONG, ws->pong_len, NULL);
		memcpy(ctrl + hl, ws->pong, ws->pong_len);
		v[nv++] = (struct iovec){ .iov_base = ctrl, .iov_len = hl + ws->pong_len };
	}
	int hi = nv++;
	size_t left = take;
	for (int i = 0; i < iovcnt && left && nv < (int)(sizeof(v) / sizeof(v[0])); i++) {
		if (!iov[i].iov_len)
			continue;
		size_t l = iov[i].iov_len < left ? iov[i].iov_len : left;
		v[nv++] = (struct iovec){ .iov_base = iov[i].iov_base, .iov_len = l };
		left -= l;
	}
	take -= left;
	v[hi] = (struct iovec){ .iov_base = hdr, .iov_len = ws_frame_header(hdr, true, WS_OP_BINARY, take, NULL) };
	size_t flen = 0;
	for (int i = 0; i < nv; i++)
		flen += v[i].iov_len;
	ssize_t n = xport_writev(ws->base.lower, v, nv);
	return data_sent(ws, frame_sent(ws, n, v, nv, flen), take);
}

/* Client: [pong] header and the masked payload, gathered into one buffer
 * on the stack. */
static ssize_t client_writev(struct xport_ws *ws, const struct iovec *iov, int iovcnt, size_t take)
{
	uint8_t f[CTRL_FRAME_MAX + WS_HDR_MAX + WRITE_MAX], key[4];
	size_t flen = 0;
	int r;
	if (ws->pong_due) {
		if ((r = next_key(ws, key)) < 0)
			return r;
		flen = ws_frame_header(f, true, WS_OP_PONG, ws->pong_len, key);
		ws_mask_copy(f + flen, ws->pong, ws->pong_len, key, 0);
		flen += ws->pong_len;
	}
	if ((r = next_key(ws, key)) < 0)
		return r;
	flen += ws_frame_header(f + flen, true, WS_OP_BINARY, take, key);
	unsigned phase = 0;
	size_t left = take;
	for (int i = 0; i < iovcnt && left; i++) {
		size_t l = iov[i].iov_len < left ? iov[i].iov_len : left;
		phase = ws_mask_copy(f + flen, iov[i].iov_base, l, key, phase);
		flen += l;
		left -= l;
	}
	struct iovec v = { .iov_base = f, .iov_len = flen };
	ssize_t n = xport_write(ws->base.lower, f, flen);
	return data_sent(ws, frame_sent(ws, n, &v, 1, flen), take);
}

static ssize_t ws_writev(struct xport *x, const struct iovec *iov, int iovcnt)
{
	struct xport_ws *ws = to_ws(x);
	int r = not_open(ws, LOOP_WRITE);
	if (r)
		return r;
	if (ws->close_sent)
		return -EPIPE;
	if (ws->wlen) {
		if ((r = wbuf_flush(ws)) != 0)
			return r;
		size_t done = ws->committed;
		ws->committed = 0;
		if (done)
			return (ssize_t)done;
	}
	size_t take = iov_take(iov, iovcnt);
	if (!take)
		return 0;  /* an empty frame would say nothing */
	return ws->server ? server_writev(ws, iov, iovcnt, take) : client_writev(ws, iov, iovcnt, take);
}

static ssize_t ws_write(struct xport *x, const void *buf, size_t len)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	return ws_writev(x, &iov, 1);
}

static int ws_shutdown_wr(struct xport *x)
{
	struct xport_ws *ws = to_ws(x);
	int r = not_open(ws, LOOP_WRITE);
	if (r)
		return r;
	if (ws->wr_shut)
		return 0;
	if (ws->wlen && (r = wbuf_flush(ws)) != 0)
		return r;
	ws->committed = 0;
	if (!ws->close_sent) {
		/* protocol.md#p-websocket: a Close with an empty payload, as
		 * rathole sends it; our reading direction stays open */
		r = send_control(ws, WS_OP_CLOSE, NULL, 0);
		if (r == 0)
			return -EAGAIN;
		ws->close_sent = true;
		ws->pong_due = false;
		if (r < 0)
			return r;
	}
	r = xport_shutdown_wr(x->lower);
	if (r == -EAGAIN)
		ws->want = xport_want(x->lower);
	if (r == 0)
		ws->wr_shut = true;
	return r;
}

/* ---------------------------------------------------------------- receiving */

/* What a decoded event means for the reader; data is the caller's. 1 to
 * go on, 0 at a Close, or an error. */
static int on_control(struct xport_ws *ws, const struct ws_event *ev)
{
	switch (ev->kind) {
	case WS_EV_PING:
		if (!ws->close_sent) {
			memcpy(ws->pong, ev->data, ev->len);
			ws->pong_len = ev->len;
			ws->pong_due = true;
		}
		return 1;
	case WS_EV_CLOSE:
		ws->rd_eof = true;
		return 0;
	default:
		return 1;  /* a Pong: nothing was asked */
	}
}

/* Decodes in[0..n) in place: payloads are moved down to out (out <= in)
 * in order. Returns the payload bytes at out, or MR_EWS. Stops at a Close
 * (rd_eof; later bytes are dropped). */
static ssize_t decode_into(struct xport_ws *ws, uint8_t *in, size_t n, uint8_t *out)
{
	size_t pos = 0, got = 0;
	while (pos < n && !ws->rd_eof) {
		struct ws_event ev;
		ssize_t r = ws_decode(&ws->dec, in + pos, n - pos, &ev);
		if (r < 0)
			return frame_failed(ws);
		pos += (size_t)r;
		if (ev.kind == WS_EV_DATA) {
			/* unmasked while moved down: one pass (out + got <= ev.data) */
			if (ev.key)
				ws_mask_copy(out + got, ev.data, ev.len, ev.key, ev.phase);
			else if (ev.data != out + got)
				memmove(out + got, ev.data, ev.len);
			got += ev.len;
		} else if (ev.kind != WS_EV_NONE) {
			on_control(ws, &ev);
		}
	}
	return (ssize_t)got;
}

static void rbuf_release(struct xport_ws *ws)
{
	if (ws->rbuf && !ws->rlen) {
		free(ws->rbuf);
		ws->rbuf = NULL;
		ws->roff = 0;
	}
}

/* Serves buf from rbuf: each decode is given at most the room left, so a
 * data event always fits. Returns the payload bytes copied, or MR_EWS. */
static ssize_t read_buffered(struct xport_ws *ws, uint8_t *buf, size_t len)
{
	size_t got = 0;
	while (ws->rlen && got < len && !ws->rd_eof) {
		size_t n = ws->rlen < len - got ? ws->rlen : len - got;
		struct ws_event ev;
		ssize_t r = ws_decode(&ws->dec, ws->rbuf + ws->roff, n, &ev);
		if (r < 0)
			return frame_failed(ws);
		ws->roff += (size_t)r;
		ws->rlen -= (size_t)r;
		if (ev.kind == WS_EV_DATA) {
			if (ev.key)
				ws_mask_copy(buf + got, ev.data, ev.len, ev.key, ev.phase);
			else
				memcpy(buf + got, ev.data, ev.len);
			got += ev.len;
		} else if (ev.kind != WS_EV_NONE) {
			on_control(ws, &ev);
		}
	}
	if (ws->rd_eof)
		ws->rlen = 0;  /* nothing follows a Close */
	if (!ws->rlen)
		ws->roff = 0;
	rbuf_release(ws);
	return (ssize_t)got;
}

/* The lower layer's end of stream: clean between frames, an error inside
 * one. */
static ssize_t read_eof(struct xport_ws *ws)
{
	const struct ws_decoder *d = &ws->dec;
	if (d->state == WS_DEC_PAYLOAD || d->hdr_len || d->in_message)
		return ws_fail(ws, "websocket: the %s closed the connection inside a frame", peer_name(ws));
	/* rathole reads this as an error; molerat as the end of the stream */
	log_debug("websocket: the %s ended its stream without a Close frame", peer_name(ws));
	ws->rd_eof = true;
	ws->eof_told = true;
	return 0;
}

static ssize_t read_frames(struct xport_ws *ws, uint8_t *out, size_t len)
{
	struct xport *x = &ws->base;
	int r = not_open(ws, LOOP_READ);
	if (r)
		return r;
	if (!len)
		return 0;
	ssize_t got = 0;
	for (;;) {
		if (ws->rd_eof) {
			if (got)
				break;
			ws->eof_told = true;
			return 0;
		}
		if (ws->rlen) {
			got = read_buffered(ws, out, len);
			if (got != 0)
				break;
			continue;
		}
		ssize_t n;
		if (len >= DIRECT_MIN) {
			n = xport_read(x->lower, out, len);
			if (n > 0) {
				got = decode_into(ws, out, (size_t)n, out);
				if (got != 0)
					break;
				continue;
			}
		} else {
			if (!ws->rbuf && !(ws->rbuf = malloc(RBUF_CAP)))
				return -ENOMEM;
			n = xport_read(x->lower, ws->rbuf, RBUF_CAP);
			if (n > 0) {
				ws->roff = 0;
				ws->rlen = (size_t)n;
				continue;
			}
			rbuf_release(ws);
		}
		if (n == 0)
			return read_eof(ws);
		if (n == -EAGAIN)
			ws->want = xport_want(x->lower);
		return n;
	}
	return got;
}

static ssize_t ws_read(struct xport *x, void *buf, size_t len)
{
	struct xport_ws *ws = to_ws(x);
	ssize_t n = read_frames(ws, buf, len);
	if (ws->pong_due && ws->state == WS_OPEN) {
		unsigned want = ws->want;
		pong_from_read(ws);
		ws->want = want;  /* the read's, not the Pong's */
	}
	return n;
}

static size_t ws_pending(struct xport *x)
{
	struct xport_ws *ws = to_ws(x);
	if (ws->state != WS_OPEN)
		return 0;
	if (ws->rd_eof)
		return ws->eof_told ? 0 : 1;  /* a read reports the end */
	/* an upper bound: a read with rbuf non-empty returns data, the end,
	 * or an error, or empties rbuf before it asks the lower layer */
	return ws->rlen + xport_pending(x->lower);
}

/* ---------------------------------------------------------------- the upgrade */

static const char RESPONSE_FMT[] =
	"HTTP/1.1 101 Switching Protocols\r\n"
	"connection: Upgrade\r\n"
	"upgrade: websocket\r\n"
	"sec-websocket-accept: %s\r\n"
	"\r\n";

static const char REQUEST_FMT[] =
	"GET / HTTP/1.1\r\n"
	"Host: %s\r\n"
	"Connection: Upgrade\r\n"
	"Upgrade: websocket\r\n"
	"Sec-WebSocket-Version: 13\r\n"
	"Sec-WebSocket-Key: %s\r\n"
	"\r\n";

static int upgrade_lost(struct xport_ws *ws, int err)
{
	return ws_fail(ws, "websocket upgrade: the connection to the %s failed (%s)", peer_name(ws),
		       mr_strerror(err));
}

/* Reads the peer's head into hbuf. Returns its length, -EAGAIN, or an
 * error. A server fails at once when the first bytes cannot start "GET ":
 * another transport's bytes (a plain rathole Hello) are not waited on. */
static ssize_t head_read(struct xport_ws *ws)
{
	for (;;) {
		ssize_t end = http_head_end(ws->hbuf, ws->hlen, HEAD_MAX);
		if (end > 0)
			return end;
		if (end < 0)
			return ws_fail(ws, ws->server ? "websocket upgrade: the client's request is over %d bytes"
						      : "websocket upgrade: the server's response is over %d bytes",
				       HEAD_MAX);
		ssize_t n = xport_read(ws->base.lower, ws->hbuf + ws->hlen, HEAD_MAX - ws->hlen);
		if (n == 0) {
			if (ws->server && !ws->hlen) {
				/* closed before sending anything: a port probe */
				ws->state = WS_FAILED;
				ws->failed = MR_EEOF;
				return MR_EEOF;
			}
			return ws_fail(ws, ws->server ? "websocket upgrade: the client closed the connection "
							"inside its request"
						      : "websocket upgrade: the server closed the connection "
							"before its response was complete (is it a websocket "
							"server? its log says why)");
		}
		if (n < 0) {
			if (n == -EAGAIN)
				ws->want = xport_want(ws->base.lower);
			return n == -EAGAIN || n == -ENOMEM ? n : upgrade_lost(ws, (int)n);
		}
		size_t have = ws->hlen + (size_t)n;
		if (ws->server && memcmp(ws->hbuf, "GET ", have < 4 ? have : 4) != 0)
			return ws_fail(ws, "websocket upgrade: the client sent no HTTP GET request (its first "
					   "bytes are not \"GET \"): does it use transport.type = \"websocket\"?");
		ws->hlen = have;
	}
}

/* The server's checks on the request (rathole's, through tungstenite);
 * on success the 101 replaces it in hbuf. */
static int server_answer(struct xport_ws *ws, size_t end)
{
	if (end < ws->hlen)
		return ws_fail(ws, "websocket upgrade: junk after the client's request (%zu bytes sent "
				   "before the 101)", ws->hlen - end);
	struct http_head h;
	const char *why = NULL;
	if (http_parse_request(ws->hbuf, end, &h, &why) < 0)
		return ws_fail(ws, "websocket upgrade: a malformed request from the client (%s)", why);
	const struct http_slice *up = http_header_get(&h, "Upgrade");
	const struct http_slice *ver = http_header_get(&h, "Sec-WebSocket-Version");
	const struct http_slice *key = http_header_get(&h, "Sec-WebSocket-Key");
	const char *what = NULL;
	if (!http_slice_eq_ci(h.method, "GET"))
		what = "its method is not GET";
	else if (h.version_major < 1 || (h.version_major == 1 && h.version_minor < 1))
		what = "it is older than HTTP/1.1";
	else if (!http_header_has_token(&h, "Connection", "upgrade"))
		what = "no Connection: Upgrade";
	else if (!up || !http_slice_eq_ci(*up, "websocket"))
		what = "no Upgrade: websocket";
	else if (!ver || !http_slice_eq_ci(*ver, "13"))
		what = "no Sec-WebSocket-Version: 13";
	else if (!key)
		what = "no Sec-WebSocket-Key";
	if (what)
		return ws_fail(ws, "websocket upgrade: the client's request is not a websocket upgrade (%s)", what);
	char accept[WS_ACCEPT_LEN + 1];
	if (ws_accept_key(key->p, key->n, accept) < 0)
		return ws_fail(ws, "websocket upgrade: cannot compute the accept key");
	int n = snprintf(ws->hbuf, HEAD_MAX + 1, RESPONSE_FMT, accept);
	ws->hoff = 0;
	ws->hlen = (size_t)n;
	ws->head_sent = true;
	return 0;
}

/* The client's checks on the response. Bytes after it are frames: they
 * move to rbuf. */
static int client_check(struct xport_ws *ws, size_t end)
{
	struct http_head h;
	const char *why = NULL;
	if (http_parse_response(ws->hbuf, end, &h, &why) < 0)
		return ws_fail(ws, "websocket upgrade: a malformed response from the server (%s): is it a "
				   "websocket server?", why);
	if (h.status != 101)
		return ws_fail(ws, "websocket upgrade refused: HTTP %d %.*s from the server (is it a "
				   "websocket server? is a proxy in between?)", h.status,
			       (int)(h.reason.n < 80 ? h.reason.n : 80), h.reason.p);
	const struct http_slice *up = http_header_get(&h, "Upgrade");
	const struct http_slice *conn = http_header_get(&h, "Connection");
	const struct http_slice *acc = http_header_get(&h, "Sec-WebSocket-Accept");
	char want[WS_ACCEPT_LEN + 1];
	if (!up || !http_slice_eq_ci(*up, "websocket"))
		return ws_fail(ws, "websocket upgrade: the server's 101 has no Upgrade: websocket");
	/* rathole wants exactly "Upgrade"; a list holding it is accepted here */
	if (!conn || !http_header_has_token(&h, "Connection", "upgrade"))
		return ws_fail(ws, "websocket upgrade: the server's 101 has no Connection: Upgrade");
	if (ws_accept_key(ws->key, strlen(ws->key), want) < 0)
		return ws_fail(ws, "websocket upgrade: cannot compute the accept key");
	if (!acc || !http_slice_eq_ci(*acc, want) || memcmp(acc->p, want, WS_ACCEPT_LEN) != 0)
		return ws_fail(ws, "websocket upgrade: the server's Sec-WebSocket-Accept is %s (not a "
				   "websocket server, or a proxy changed the request)", acc ? "wrong" : "missing");
	size_t extra = ws->hlen - end;
	if (extra) {
		if (!(ws->rbuf = malloc(RBUF_CAP)))
			return -ENOMEM;
		memcpy(ws->rbuf, ws->hbuf + end, extra);
		ws->roff = 0;
		ws->rlen = extra;
	}
	return 0;
}

static int client_request(struct xport_ws *ws)
{
	uint8_t raw[16];
	if (RAND_bytes(raw, sizeof(raw)) != 1 ||
	    keygen_b64_encode(raw, sizeof(raw), ws->key, sizeof(ws->key)) != WS_KEY_B64_LEN)
		return ws_fail(ws, "websocket upgrade: cannot make a key");
	int n = snprintf(ws->hbuf, HEAD_MAX + 1, REQUEST_FMT, ws->host, ws->key);
	if (n < 0 || n > HEAD_MAX)
		return ws_fail(ws, "websocket upgrade: the Host value is too long");
	ws->hoff = 0;
	ws->hlen = (size_t)n;
	return 0;
}

static void upgrade_done(struct xport_ws *ws)
{
	free(ws->hbuf);
	ws->hbuf = NULL;
	free(ws->host);
	ws->host = NULL;
	ws->hoff = ws->hlen = 0;
	ws->state = WS_OPEN;
}

static int ws_handshake(struct xport *x)
{
	struct xport_ws *ws = to_ws(x);
	if (ws->state != WS_HANDSHAKE)
		return ws->state == WS_FAILED ? ws->failed : 0;
	int r = xport_handshake(x->lower);
	if (r != 0) {
		if (r == -EAGAIN)
			ws->want = xport_want(x->lower);
		return r;
	}
	if (!ws->hbuf) {
		if (!(ws->hbuf = malloc(HEAD_MAX + 1)))
			return -ENOMEM;
		if (!ws->server && (r = client_request(ws)) < 0)
			return r;
	}
	if (!ws->server && !ws->head_sent) {
		/* nothing else is sent before the 101 (no early data) */
		if ((r = send_rest(ws, ws->hbuf, &ws->hoff, ws->hlen)) != 0)
			return r == -EAGAIN || r == -ENOMEM ? r : upgrade_lost(ws, r);
		ws->head_sent = true;
		ws->hlen = 0;
	}
	if (ws->server && ws->head_sent) {
		if ((r = send_rest(ws, ws->hbuf, &ws->hoff, ws->hlen)) != 0)
			return r == -EAGAIN || r == -ENOMEM ? r : upgrade_lost(ws, r);
		upgrade_done(ws);
		return 0;
	}
	ssize_t end = head_read(ws);
	if (end < 0)
		return (int)end;
	if (ws->server) {
		if ((r = server_answer(ws, (size_t)end)) < 0)
			return r;
		return ws_handshake(x);
	}
	if ((r = client_check(ws, (size_t)end)) < 0)
		return r;
	upgrade_done(ws);
	return 0;
}

/* ---------------------------------------------------------------- the layer */

static unsigned ws_want(struct xport *x)
{
	return to_ws(x)->want;
}

static void ws_close(struct xport *x)
{
	struct xport_ws *ws = to_ws(x);
	/* after the peer's Close, what follows it (a TLS close_notify) may
	 * still sit unread: read it, so that closing does not reset the
	 * connection and cut what the peer has not read yet */
	if (ws->rd_eof) {
		uint8_t drain[512];
		for (int i = 0; i < 8 && xport_read(x->lower, drain, sizeof(drain)) > 0; i++)
			;
	}
	free(ws->hbuf);
	free(ws->host);
	free(ws->rbuf);
	free(ws->wbuf);
	xport_close(x->lower);
	free(ws);
}

static const struct xport_ops ws_ops = {
	.name = "websocket",
	.handshake = ws_handshake,
	.read = ws_read,
	.write = ws_write,
	.writev = ws_writev,
	.shutdown_wr = ws_shutdown_wr,
	.want = ws_want,
	.pending = ws_pending,
	.close = ws_close,
	.last_error = ws_last_error,
};

struct xport *xport_ws_new(bool server, const char *host, struct xport *lower)
{
	struct xport_ws *ws = calloc(1, sizeof(*ws));
	if (ws && !server && !(ws->host = strdup(host ? host : ""))) {
		free(ws);
		ws = NULL;
	}
	if (!ws) {
		xport_close(lower);
		return NULL;
	}
	ws->base.ops = &ws_ops;
	ws->base.lower = lower;
	ws->base.fd = lower->fd;
	ws->base.splice_fd = -1;
	ws->base.flags = 0;
	ws->server = server;
	ws->lower_exact = xport_short_write_full(lower);
	ws->state = WS_HANDSHAKE;
	ws->keys_used = KEY_POOL;  /* drawn at the first frame */
	ws_decoder_init(&ws->dec, server);
	ws->dec.leave_masked = true;
	/* the client writes first; the server waits for its request */
	ws->want = server ? LOOP_READ : LOOP_WRITE;
	return &ws->base;
}
