/* xport_proxy: see xport_proxy.h. The bytes are codec/proxy_proto.h's;
 * this file moves them. Every request is built once, in the proxy_conf
 * (they are the same for every connection of a client), and sent from
 * there; SOCKS5 replies are read exactly as far as the decoder needs, so
 * no byte of the tunnel is ever taken; an HTTP response collects in a
 * HTTP_CONNECT_HEAD_MAX buffer that exists only while it is read. Once
 * open, the layer holds nothing. */
#include "xport/xport_proxy.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "base/err.h"
#include "base/log.h"
#include "base/loop.h"
#include "codec/proxy_proto.h"

struct proxy_conf {
	unsigned refs;
	bool http;                                /* else SOCKS5 */
	struct proxy_creds creds;                 /* decoded; wiped on free */
	struct proxy_target target;
	char dial[PROXY_AUTHORITY_MAX + 1];       /* the proxy's "host:port" */
	char name[PROXY_AUTHORITY_MAX + 16];      /* "socks5://host:port", for log lines */
	char user_shown[72];                      /* the user name, printable, for log lines */
	/* the requests, built once */
	uint8_t greeting[SOCKS5_GREETING_MAX];
	size_t greeting_len;
	uint8_t auth[SOCKS5_AUTH_MAX];            /* holds the password: wiped on free */
	size_t auth_len;
	char connect[HTTP_CONNECT_REQ_MAX];       /* SOCKS5 or HTTP CONNECT (its Basic too) */
	size_t connect_len;
};

_Static_assert(HTTP_CONNECT_REQ_MAX >= SOCKS5_CONNECT_MAX, "one buffer holds either CONNECT");

/* ---------------------------------------------------------------- proxy_conf */

/* Printable ASCII of the first bytes of b, for a log line. */
static void shown(char *out, size_t cap, const uint8_t *b, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n && k + 4 < cap; i++)
		out[k++] = b[i] >= 0x20 && b[i] < 0x7f && b[i] != '"' ? (char)b[i] : '?';
	if (k < n && k + 4 <= cap) {
		memcpy(out + k, "...", 3);
		k += 3;
	}
	out[k] = '\0';
}

struct proxy_conf *proxy_conf_new(const struct conf_url *u, const char *remote_addr)
{
	static const char *const key = "client.transport.tcp.proxy";
	bool http = u->scheme && !strcmp(u->scheme, "http");
	if (!u->scheme || (!http && strcmp(u->scheme, "socks5"))) {
		log_error("%s: the scheme \"%s\" is not a proxy molerat knows; use socks5:// or http://", key,
			  u->scheme ? u->scheme : "");
		return NULL;
	}
	if (!u->host || !u->host[0]) {
		log_error("%s: the proxy URL has no host; write \"%s://host:port\"", key, u->scheme);
		return NULL;
	}
	struct proxy_conf *pc = calloc(1, sizeof(*pc));
	if (!pc) {
		log_error("%s: out of memory", key);
		return NULL;
	}
	pc->refs = 1;
	pc->http = http;
	/* rathole panics without a port (protocol.md#q12); molerat takes the
	 * usual ones: 80 for http, 1080 for socks5 */
	unsigned port = u->has_port ? u->port : http ? 80 : 1080;
	int n1 = snprintf(pc->dial, sizeof(pc->dial), "%s:%u", u->host, port);
	int n2 = snprintf(pc->name, sizeof(pc->name), "%s://%s", u->scheme, pc->dial);
	if (n1 < 0 || (size_t)n1 >= sizeof(pc->dial) || n2 < 0 || (size_t)n2 >= sizeof(pc->name)) {
		log_error("%s: the proxy's host name is longer than %d bytes", key, PROXY_HOST_MAX);
		goto fail;
	}
	if (proxy_target_parse(remote_addr, &pc->target) != 0) {
		log_error("client.remote_addr = \"%s\" cannot be asked of a proxy: write host:port (a name of "
			  "at most %d bytes)", remote_addr, PROXY_HOST_MAX);
		goto fail;
	}
	const char *which = NULL;
	if (proxy_creds_set(&pc->creds, u->username, u->password, &which) != 0) {
		log_error("%s: the %s is longer than %d bytes once percent-decoded", key, which, PROXY_CRED_MAX);
		goto fail;
	}
	shown(pc->user_shown, sizeof(pc->user_shown), pc->creds.user, pc->creds.user_len);
	if (http) {
		pc->connect_len = http_connect_request(&pc->target, &pc->creds, pc->connect);
	} else {
		pc->greeting_len = socks5_greeting(pc->creds.present, pc->greeting);
		if (pc->creds.present)
			pc->auth_len = socks5_auth_request(&pc->creds, pc->auth);
		pc->connect_len = socks5_connect_request(&pc->target, (uint8_t *)pc->connect);
	}
	return pc;
fail:
	proxy_conf_unref(pc);
	return NULL;
}

void proxy_conf_ref(struct proxy_conf *pc)
{
	pc->refs++;
}

void proxy_conf_unref(struct proxy_conf *pc)
{
	if (!pc || --pc->refs)
		return;
	OPENSSL_cleanse(pc, sizeof(*pc));
	free(pc);
}

const char *proxy_conf_dial_addr(const struct proxy_conf *pc)
{
	return pc->dial;
}

/* ---------------------------------------------------------------- the layer */

enum px_state {
	PX_SEND_GREETING = 0,  /* SOCKS5: 05 01 00 | 05 02 00 02 */
	PX_READ_METHOD,        /* SOCKS5: the method chosen */
	PX_SEND_AUTH,          /* SOCKS5 method 02: user and password */
	PX_READ_AUTH,          /* SOCKS5: its status */
	PX_SEND_CONNECT,       /* SOCKS5 CONNECT */
	PX_READ_CONNECT,       /* SOCKS5: its reply, bound address and all */
	PX_SEND_HTTP,          /* HTTP CONNECT */
	PX_READ_HTTP,          /* HTTP: the response head */
	PX_OPEN,               /* the tunnel: everything passes to the lower layer */
	PX_FAILED,             /* see err; every call fails */
};

struct xport_proxy {
	struct xport base;
	struct proxy_conf *pc;         /* one reference */
	enum px_state state;
	unsigned want;                 /* what the last -EAGAIN waits for (handshake) */
	size_t off;                    /* bytes of the current request sent */
	struct socks5_dec dec;         /* the SOCKS5 reply being read */
	char *head;                    /* PX_READ_HTTP: HTTP_CONNECT_HEAD_MAX bytes */
	size_t head_len;
	char err[640];                 /* last_error: the proxy's name, a target, the text */
};

static struct xport_proxy *to_px(struct xport *x) { return (struct xport_proxy *)x; }

__attribute__((format(printf, 2, 3)))
static int px_fail(struct xport_proxy *px, const char *fmt, ...)
{
	int n = snprintf(px->err, sizeof(px->err), "proxy %s ", px->pc->name);
	va_list ap;
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof(px->err))
		vsnprintf(px->err + n, sizeof(px->err) - (size_t)n, fmt, ap);
	va_end(ap);
	px->state = PX_FAILED;
	free(px->head);
	px->head = NULL;
	return MR_EPROXY;
}

/* What the proxy was being asked when the connection ended. */
static const char *stage(const struct xport_proxy *px)
{
	switch (px->state) {
	case PX_SEND_GREETING:
	case PX_READ_METHOD:
		return "the SOCKS5 greeting";
	case PX_SEND_AUTH:
	case PX_READ_AUTH:
		return "the SOCKS5 user name/password exchange";
	case PX_SEND_CONNECT:
	case PX_READ_CONNECT:
		return "the SOCKS5 CONNECT to";
	default:
		return "the HTTP CONNECT to";
	}
}

static bool stage_has_target(const struct xport_proxy *px)
{
	return px->state >= PX_SEND_CONNECT;
}

/* The connection under the handshake failed (err < 0) or ended (0). */
static int px_lost(struct xport_proxy *px, int err)
{
	const char *t = stage_has_target(px) ? px->pc->target.authority : "";
	const char *sp = stage_has_target(px) ? " " : "";
	if (err == 0)
		return px_fail(px, "closed the connection during %s%s%s%s", stage(px), sp, t,
			       px->state == PX_READ_AUTH ? " (a wrong user name or password?)" : "");
	return px_fail(px, "lost the connection during %s%s%s (%s)", stage(px), sp, t, mr_strerror(err));
}

/* Sends req[off, len) to the lower layer. 0 when all of it is out. */
static int send_req(struct xport_proxy *px, const void *req, size_t len)
{
	while (px->off < len) {
		ssize_t n = xport_write(px->base.lower, (const uint8_t *)req + px->off, len - px->off);
		if (n == -EAGAIN) {
			px->want = xport_want(px->base.lower);
			return -EAGAIN;
		}
		if (n < 0)
			return n == -ENOMEM ? -ENOMEM : px_lost(px, (int)n);
		px->off += (size_t)n;
	}
	px->off = 0;
	return 0;
}

/* Reads the SOCKS5 reply being decoded, never past its end. 0 when it is
 * whole and says yes. */
static int read_socks(struct xport_proxy *px)
{
	uint8_t buf[PROXY_HOST_MAX + 2];
	size_t need;
	while ((need = socks5_dec_need(&px->dec)) > 0) {
		ssize_t n = xport_read(px->base.lower, buf, need < sizeof(buf) ? need : sizeof(buf));
		if (n == -EAGAIN) {
			px->want = xport_want(px->base.lower);
			return -EAGAIN;
		}
		if (n <= 0)
			return n == -ENOMEM ? -ENOMEM : px_lost(px, (int)n);
		if (socks5_dec_feed(&px->dec, buf, (size_t)n) < 0) {
			char what[320];
			socks5_dec_strerror(&px->dec, px->pc->target.authority, what, sizeof(what));
			if (px->dec.err == S5E_AUTH_DENIED)
				return px_fail(px, "%s for user \"%s\"", what, px->pc->user_shown);
			return px_fail(px, "%s", what);
		}
	}
	return 0;
}

/* The HTTP response's verdict, once the head is whole (or cannot be). */
static int http_verdict(struct xport_proxy *px, enum http_connect_res res, const struct http_connect_reply *r)
{
	const struct proxy_conf *pc = px->pc;
	switch (res) {
	case HCR_STATUS:
		/* 407 is the proxy's "who are you"; tinyproxy answers wrong
		 * credentials with 401 */
		if ((r->status == 407 || r->status == 401) && pc->creds.present)
			return px_fail(px, "rejected the credentials of user \"%s\" (%d %s)", pc->user_shown,
				       r->status, r->reason);
		if (r->status == 407 || r->status == 401)
			return px_fail(px, "asks for credentials (%d %s); put them in the proxy URL "
					   "(http://USER:PASSWORD@host:port)", r->status, r->reason);
		return px_fail(px, "refused the connection to %s: %d %s", pc->target.authority, r->status,
			       r->reason);
	case HCR_TOO_BIG:
		return px_fail(px, "answered the HTTP CONNECT to %s with %s", pc->target.authority, r->why);
	case HCR_GARBAGE:
		if (r->extra)
			return px_fail(px, "sent %zu bytes after its %d response to the HTTP CONNECT to %s, "
					   "before the client spoke", r->extra, r->status, pc->target.authority);
		return px_fail(px, "answered the HTTP CONNECT to %s with garbage (%s): does it speak HTTP?",
			       pc->target.authority, r->why);
	default:
		return px_fail(px, "answered the HTTP CONNECT to %s in a way molerat does not understand",
			       pc->target.authority);
	}
}

/* Reads the HTTP response head. 0 when it is whole and says 2xx. */
static int read_http(struct xport_proxy *px)
{
	if (!px->head) {
		px->head = malloc(HTTP_CONNECT_HEAD_MAX);
		if (!px->head)
			return -ENOMEM;
		px->head_len = 0;
	}
	for (;;) {
		ssize_t n = xport_read(px->base.lower, px->head + px->head_len, HTTP_CONNECT_HEAD_MAX - px->head_len);
		if (n == -EAGAIN) {
			px->want = xport_want(px->base.lower);
			return -EAGAIN;
		}
		if (n == 0 && px->head_len)
			return px_fail(px, "closed the connection inside its response to the HTTP CONNECT to %s "
					   "(after %zu bytes)", px->pc->target.authority, px->head_len);
		if (n <= 0)
			return n == -ENOMEM ? -ENOMEM : px_lost(px, (int)n);
		px->head_len += (size_t)n;
		struct http_connect_reply r;
		enum http_connect_res res = http_connect_check(px->head, px->head_len, &r);
		if (res == HCR_OPEN) {
			free(px->head);
			px->head = NULL;
			return 0;
		}
		if (res != HCR_MORE)
			return http_verdict(px, res, &r);
	}
}

/* Makes the lower layer's I/O properties this layer's. */
static int px_open(struct xport_proxy *px)
{
	px->state = PX_OPEN;
	px->base.splice_fd = px->base.lower->splice_fd;
	px->base.flags = px->base.lower->flags;
	log_debug("proxy %s: tunnel to %s open", px->pc->name, px->pc->target.authority);
	return 0;
}

static int px_handshake(struct xport *x)
{
	struct xport_proxy *px = to_px(x);
	const struct proxy_conf *pc = px->pc;
	if (px->state == PX_OPEN)
		return 0;
	if (px->state == PX_FAILED)
		return MR_EPROXY;
	int r = xport_handshake(x->lower);
	if (r != 0) {
		if (r == -EAGAIN)
			px->want = xport_want(x->lower);
		return r;
	}
	for (;;) {
		switch (px->state) {
		case PX_SEND_GREETING:
			if ((r = send_req(px, pc->greeting, pc->greeting_len)) != 0)
				return r;
			socks5_dec_init(&px->dec, SOCKS5_METHOD_REPLY, pc->creds.present);
			px->state = PX_READ_METHOD;
			break;
		case PX_READ_METHOD:
			if ((r = read_socks(px)) != 0)
				return r;
			px->state = px->dec.code == 2 ? PX_SEND_AUTH : PX_SEND_CONNECT;
			break;
		case PX_SEND_AUTH:
			if ((r = send_req(px, pc->auth, pc->auth_len)) != 0)
				return r;
			socks5_dec_init(&px->dec, SOCKS5_AUTH_REPLY, true);
			px->state = PX_READ_AUTH;
			break;
		case PX_READ_AUTH:
			if ((r = read_socks(px)) != 0)
				return r;
			px->state = PX_SEND_CONNECT;
			break;
		case PX_SEND_CONNECT:
			if ((r = send_req(px, pc->connect, pc->connect_len)) != 0)
				return r;
			socks5_dec_init(&px->dec, SOCKS5_CONNECT_REPLY, pc->creds.present);
			px->state = PX_READ_CONNECT;
			break;
		case PX_READ_CONNECT:
			if ((r = read_socks(px)) != 0)
				return r;
			return px_open(px);
		case PX_SEND_HTTP:
			if ((r = send_req(px, pc->connect, pc->connect_len)) != 0)
				return r;
			px->state = PX_READ_HTTP;
			break;
		case PX_READ_HTTP:
			if ((r = read_http(px)) != 0)
				return r;
			return px_open(px);
		default:
			return MR_EPROXY;
		}
	}
}

/* ---------------------------------------------------------------- the tunnel */

static ssize_t px_read(struct xport *x, void *buf, size_t len)
{
	struct xport_proxy *px = to_px(x);
	if (px->state != PX_OPEN)
		return px->state == PX_FAILED ? MR_EPROXY : -EAGAIN;
	return xport_read(x->lower, buf, len);
}

static ssize_t px_write(struct xport *x, const void *buf, size_t len)
{
	struct xport_proxy *px = to_px(x);
	if (px->state != PX_OPEN)
		return px->state == PX_FAILED ? MR_EPROXY : -EAGAIN;
	return xport_write(x->lower, buf, len);
}

static ssize_t px_writev(struct xport *x, const struct iovec *iov, int iovcnt)
{
	struct xport_proxy *px = to_px(x);
	if (px->state != PX_OPEN)
		return px->state == PX_FAILED ? MR_EPROXY : -EAGAIN;
	return xport_writev(x->lower, iov, iovcnt);
}

static int px_shutdown_wr(struct xport *x)
{
	struct xport_proxy *px = to_px(x);
	if (px->state == PX_FAILED)
		return MR_EPROXY;
	return xport_shutdown_wr(x->lower);
}

static unsigned px_want(struct xport *x)
{
	struct xport_proxy *px = to_px(x);
	return px->state == PX_OPEN ? xport_want(x->lower) : px->want;
}

static size_t px_pending(struct xport *x)
{
	struct xport_proxy *px = to_px(x);
	return px->state == PX_OPEN ? xport_pending(x->lower) : 0;
}

/* While the handshake waits: where it stands, for an owner whose deadline
 * ran out ("proxy socks5://h:p has not answered the SOCKS5 greeting"). */
static const char *px_waiting(struct xport_proxy *px)
{
	bool reading = px->state == PX_READ_METHOD || px->state == PX_READ_AUTH || px->state == PX_READ_CONNECT ||
		       px->state == PX_READ_HTTP;
	snprintf(px->err, sizeof(px->err), "proxy %s has not %s %s%s%s", px->pc->name,
		 reading ? "answered" : "taken", stage(px), stage_has_target(px) ? " " : "",
		 stage_has_target(px) ? px->pc->target.authority : "");
	return px->err;
}

static const char *px_last_error(struct xport *x)
{
	struct xport_proxy *px = to_px(x);
	if (px->state == PX_OPEN)
		return xport_last_error(x->lower);
	if (px->state != PX_FAILED)
		return px_waiting(px);
	return px->err;
}

static void px_close(struct xport *x)
{
	struct xport_proxy *px = to_px(x);
	free(px->head);
	proxy_conf_unref(px->pc);
	xport_close(x->lower);
	free(px);
}

static const struct xport_ops proxy_ops = {
	.name = "proxy",
	.handshake = px_handshake,
	.read = px_read,
	.write = px_write,
	.writev = px_writev,
	.shutdown_wr = px_shutdown_wr,
	.want = px_want,
	.pending = px_pending,
	.close = px_close,
	.last_error = px_last_error,
};

struct xport *xport_proxy_new(struct proxy_conf *pc, struct xport *lower)
{
	struct xport_proxy *px = calloc(1, sizeof(*px));
	if (!px) {
		xport_close(lower);
		return NULL;
	}
	proxy_conf_ref(pc);
	px->pc = pc;
	px->base.ops = &proxy_ops;
	px->base.lower = lower;
	px->base.fd = lower->fd;
	px->base.splice_fd = -1;
	px->base.flags = 0;
	px->state = pc->http ? PX_SEND_HTTP : PX_SEND_GREETING;
	px->want = LOOP_WRITE;  /* the client speaks first */
	return &px->base;
}
