/* proxy_proto: see proxy_proto.h. Pure: no I/O. */
#include "codec/proxy_proto.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "base/err.h"
#include "base/util.h"
#include "codec/addr.h"
#include "codec/http_head.h"
#include "codec/keygen.h"

/* ---------------------------------------------------------------- target */

int proxy_target_parse(const char *remote_addr, struct proxy_target *t)
{
	memset(t, 0, sizeof(*t));
	if (addr_split_host_port(remote_addr, t->host, sizeof(t->host), &t->port) != 0)
		return MR_EFORMAT;
	if (inet_pton(AF_INET, t->host, t->addr) == 1)
		t->atyp = SOCKS5_ATYP_IPV4;
	else if (inet_pton(AF_INET6, t->host, t->addr) == 1)
		t->atyp = SOCKS5_ATYP_IPV6;
	else
		t->atyp = SOCKS5_ATYP_DOMAIN;
	/* a host with a ':' (an IPv6 literal, or a scoped one the proxy will
	 * refuse) needs its brackets in an authority */
	bool brackets = strchr(t->host, ':') != NULL;
	snprintf(t->authority, sizeof(t->authority), brackets ? "[%s]:%u" : "%s:%u", t->host,
		 (unsigned)t->port);
	return 0;
}

/* ---------------------------------------------------------------- credentials */

ssize_t proxy_pct_decode(const char *s, uint8_t *out, size_t cap)
{
	size_t n = 0;
	for (size_t i = 0; s[i]; i++) {
		int b = (unsigned char)s[i];
		if (b == '%' && s[i + 1] && s[i + 2]) {
			int hi = mr_hex_digit(s[i + 1]), lo = mr_hex_digit(s[i + 2]);
			if (hi >= 0 && lo >= 0) {
				b = hi << 4 | lo;
				i += 2;
			}
		}
		if (n == cap)
			return MR_ELIMIT;
		out[n++] = (uint8_t)b;
	}
	return (ssize_t)n;
}

int proxy_creds_set(struct proxy_creds *c, const char *user, const char *pass, const char **which)
{
	OPENSSL_cleanse(c, sizeof(*c));
	c->present = (user && user[0]) || pass;
	ssize_t n = proxy_pct_decode(user ? user : "", c->user, sizeof(c->user));
	if (n < 0) {
		*which = "user name";
		OPENSSL_cleanse(c, sizeof(*c));
		return MR_ELIMIT;
	}
	c->user_len = (size_t)n;
	n = proxy_pct_decode(pass ? pass : "", c->pass, sizeof(c->pass));
	if (n < 0) {
		*which = "password";
		OPENSSL_cleanse(c, sizeof(*c));
		return MR_ELIMIT;
	}
	c->pass_len = (size_t)n;
	return 0;
}

/* ---------------------------------------------------------------- SOCKS5 requests */

size_t socks5_greeting(bool creds, uint8_t out[static SOCKS5_GREETING_MAX])
{
	out[0] = 5;
	if (!creds) {
		out[1] = 1;
		out[2] = 0;
		return 3;
	}
	out[1] = 2;
	out[2] = 0;
	out[3] = 2;
	return 4;
}

size_t socks5_auth_request(const struct proxy_creds *c, uint8_t out[static SOCKS5_AUTH_MAX])
{
	size_t n = 0;
	out[n++] = 1;
	out[n++] = (uint8_t)c->user_len;
	memcpy(out + n, c->user, c->user_len);
	n += c->user_len;
	out[n++] = (uint8_t)c->pass_len;
	memcpy(out + n, c->pass, c->pass_len);
	return n + c->pass_len;
}

size_t socks5_connect_request(const struct proxy_target *t, uint8_t out[static SOCKS5_CONNECT_MAX])
{
	size_t n = 0;
	out[n++] = 5;
	out[n++] = 1;  /* CONNECT */
	out[n++] = 0;
	out[n++] = (uint8_t)t->atyp;
	if (t->atyp == SOCKS5_ATYP_DOMAIN) {
		size_t hl = strlen(t->host);
		out[n++] = (uint8_t)hl;
		memcpy(out + n, t->host, hl);
		n += hl;
	} else {
		size_t al = t->atyp == SOCKS5_ATYP_IPV4 ? 4 : 16;
		memcpy(out + n, t->addr, al);
		n += al;
	}
	out[n++] = (uint8_t)(t->port >> 8);
	out[n++] = (uint8_t)(t->port & 0xff);
	return n;
}

/* ---------------------------------------------------------------- SOCKS5 replies */

static size_t head_len(enum socks5_reply_kind kind)
{
	return kind == SOCKS5_CONNECT_REPLY ? 4 : 2;
}

void socks5_dec_init(struct socks5_dec *d, enum socks5_reply_kind kind, bool creds_offered)
{
	memset(d, 0, sizeof(*d));
	d->kind = kind;
	d->state = S5D_HEAD;
	d->creds_offered = creds_offered;
}

size_t socks5_dec_need(const struct socks5_dec *d)
{
	switch (d->state) {
	case S5D_HEAD:
		return head_len(d->kind) - d->have;
	case S5D_NAME_LEN:
		return 1;
	case S5D_TAIL:
		return d->left;
	default:
		return 0;
	}
}

static ssize_t dec_fail(struct socks5_dec *d, enum socks5_dec_err err, uint8_t code)
{
	d->state = S5D_FAILED;
	d->err = err;
	d->code = code;
	return MR_EPROXY;
}

/* The head is whole: decides. Returns 0 (state moved on) or MR_EPROXY. */
static ssize_t dec_head(struct socks5_dec *d)
{
	d->ver = d->head[0];
	uint8_t b = d->head[1];
	switch (d->kind) {
	case SOCKS5_METHOD_REPLY:
		if (d->ver != 5)
			return dec_fail(d, S5E_VERSION, b);
		if (b == 0xff)
			return dec_fail(d, S5E_NO_METHOD, b);
		if (b == 2 && !d->creds_offered)
			return dec_fail(d, S5E_NEED_AUTH, b);
		if (b != 0 && b != 2)
			return dec_fail(d, S5E_BAD_METHOD, b);
		d->code = b;
		d->state = S5D_DONE;
		return 0;
	case SOCKS5_AUTH_REPLY:
		if (d->ver != 1)  /* RFC 1929: the subnegotiation's version */
			return dec_fail(d, S5E_VERSION, b);
		if (b != 0)
			return dec_fail(d, S5E_AUTH_DENIED, b);
		d->code = b;
		d->state = S5D_DONE;
		return 0;
	case SOCKS5_CONNECT_REPLY:
		if (d->ver != 5)
			return dec_fail(d, S5E_VERSION, b);
		if (b != 0)
			return dec_fail(d, S5E_REFUSED, b);
		d->code = b;
		/* head[2] is RSV: ignored, as rathole's library does */
		switch (d->head[3]) {
		case SOCKS5_ATYP_IPV4:
			d->left = 4 + 2;
			d->state = S5D_TAIL;
			return 0;
		case SOCKS5_ATYP_IPV6:
			d->left = 16 + 2;
			d->state = S5D_TAIL;
			return 0;
		case SOCKS5_ATYP_DOMAIN:
			d->state = S5D_NAME_LEN;
			return 0;
		default:
			return dec_fail(d, S5E_ATYP, d->head[3]);
		}
	}
	return dec_fail(d, S5E_VERSION, b);
}

ssize_t socks5_dec_feed(struct socks5_dec *d, const uint8_t *in, size_t len)
{
	size_t used = 0;
	while (used < len) {
		size_t k;
		switch (d->state) {
		case S5D_HEAD:
			k = head_len(d->kind) - d->have;
			if (k > len - used)
				k = len - used;
			memcpy(d->head + d->have, in + used, k);
			d->have += k;
			used += k;
			if (d->have == head_len(d->kind) && dec_head(d) < 0)
				return MR_EPROXY;
			break;
		case S5D_NAME_LEN:
			d->left = (size_t)in[used++] + 2;
			d->state = S5D_TAIL;
			break;
		case S5D_TAIL:
			k = d->left < len - used ? d->left : len - used;
			d->left -= k;
			used += k;
			if (!d->left)
				d->state = S5D_DONE;
			break;
		case S5D_DONE:
			return (ssize_t)used;
		case S5D_FAILED:
		default:
			return MR_EPROXY;
		}
	}
	return d->state == S5D_FAILED ? MR_EPROXY : (ssize_t)used;
}

const char *socks5_reply_name(uint8_t rep)
{
	static const char *const names[] = {
		[1] = "general SOCKS server failure",
		[2] = "connection not allowed by ruleset",
		[3] = "network unreachable",
		[4] = "host unreachable",
		[5] = "connection refused",
		[6] = "TTL expired",
		[7] = "command not supported",
		[8] = "address type not supported",
	};
	return rep < sizeof(names) / sizeof(names[0]) ? names[rep] : NULL;
}

const char *socks5_dec_strerror(const struct socks5_dec *d, const char *target, char *buf, size_t cap)
{
	static const char *const what[] = {
		[SOCKS5_METHOD_REPLY] = "greeting",
		[SOCKS5_AUTH_REPLY] = "user name and password",
		[SOCKS5_CONNECT_REPLY] = "CONNECT request",
	};
	const char *name;
	switch (d->err) {
	case S5E_NONE:
		snprintf(buf, cap, "no error");
		break;
	case S5E_VERSION:
		snprintf(buf, cap, "answered the SOCKS5 %s with version byte 0x%02x (expected 0x%02x): "
			 "it does not speak SOCKS5%s", what[d->kind], d->ver, d->kind == SOCKS5_AUTH_REPLY ? 1 : 5,
			 d->ver == 'H' ? " (it looks like an HTTP proxy: use http://)" : "");
		break;
	case S5E_NO_METHOD:
		snprintf(buf, cap, "accepts none of the authentication methods offered (%s)",
			 d->creds_offered ? "none, user name/password" : "none; does it need a user name and "
									"password in the URL?");
		break;
	case S5E_NEED_AUTH:
		snprintf(buf, cap, "asks for a user name and password; put them in the proxy URL "
			 "(socks5://USER:PASSWORD@host:port)");
		break;
	case S5E_BAD_METHOD:
		snprintf(buf, cap, "chose authentication method 0x%02x, which was not offered", d->code);
		break;
	case S5E_AUTH_DENIED:
		snprintf(buf, cap, "rejected the user name and password (status 0x%02x)", d->code);
		break;
	case S5E_REFUSED:
		name = socks5_reply_name(d->code);
		if (name)
			snprintf(buf, cap, "refused the connection to %s: %s (reply %u)", target, name, d->code);
		else
			snprintf(buf, cap, "refused the connection to %s with the unknown reply code 0x%02x",
				 target, d->code);
		break;
	case S5E_ATYP:
		snprintf(buf, cap, "answered the CONNECT with the unknown address type 0x%02x", d->code);
		break;
	}
	return buf;
}

/* ---------------------------------------------------------------- HTTP CONNECT */

static size_t put(char *out, size_t n, const void *s, size_t len)
{
	memcpy(out + n, s, len);
	return n + len;
}

static size_t puts_(char *out, size_t n, const char *s)
{
	return put(out, n, s, strlen(s));
}

size_t http_connect_request(const struct proxy_target *t, const struct proxy_creds *c,
			    char out[static HTTP_CONNECT_REQ_MAX])
{
	size_t n = 0;
	n = puts_(out, n, "CONNECT ");
	n = puts_(out, n, t->authority);
	n = puts_(out, n, " HTTP/1.1\r\nHost: ");
	n = puts_(out, n, t->authority);
	n = puts_(out, n, "\r\nProxy-Connection: Keep-Alive\r\n");
	if (c && c->present) {
		uint8_t up[2 * PROXY_CRED_MAX + 1];
		char b64[KEYGEN_B64_ENCODED_LEN(sizeof(up)) + 1];
		size_t ul = 0;
		memcpy(up, c->user, c->user_len);
		ul += c->user_len;
		up[ul++] = ':';
		memcpy(up + ul, c->pass, c->pass_len);
		ul += c->pass_len;
		int bl = keygen_b64_encode(up, ul, b64, sizeof(b64));
		n = puts_(out, n, "Proxy-Authorization: Basic ");
		n = put(out, n, b64, bl > 0 ? (size_t)bl : 0);
		n = puts_(out, n, "\r\n");
		OPENSSL_cleanse(up, sizeof(up));
		OPENSSL_cleanse(b64, sizeof(b64));
	}
	return puts_(out, n, "\r\n");
}

static enum http_connect_res garbage(struct http_connect_reply *r, const char *why)
{
	r->why = why;
	return HCR_GARBAGE;
}

enum http_connect_res http_connect_check(const char *buf, size_t len, struct http_connect_reply *r)
{
	static const char prefix[] = "HTTP/";
	memset(r, 0, sizeof(*r));
	size_t pl = len < sizeof(prefix) - 1 ? len : sizeof(prefix) - 1;
	if (memcmp(buf, prefix, pl) != 0)
		return garbage(r, "not an HTTP response");
	ssize_t end = http_head_end(buf, len, HTTP_CONNECT_HEAD_MAX);
	if (end == 0)
		return HCR_MORE;
	if (end < 0) {
		r->why = "a response head longer than 4096 bytes";
		return HCR_TOO_BIG;
	}
	struct http_head h;
	const char *why = NULL;
	int e = http_parse_response(buf, (size_t)end, &h, &why);
	if (e == MR_ELIMIT || (e == 0 && h.nheaders > HTTP_CONNECT_LINES_MAX)) {
		r->why = "a response head with more than 16 header lines";
		return HCR_TOO_BIG;
	}
	if (e < 0)
		return garbage(r, why ? why : "a malformed response head");
	r->status = h.status;
	size_t k = 0;
	for (size_t i = 0; i < h.reason.n && k + 1 < sizeof(r->reason); i++) {
		char c = h.reason.p[i];
		r->reason[k++] = c >= 0x20 && c < 0x7f ? c : '?';
	}
	r->reason[k] = '\0';
	if (h.status < 200 || h.status > 299)
		return HCR_STATUS;
	if ((size_t)end < len) {
		/* the client speaks first after CONNECT: a proxy (or a server
		 * behind it) that sends more is not one to trust with it */
		r->extra = len - (size_t)end;
		return garbage(r, "bytes after the response head, before the client spoke");
	}
	return HCR_OPEN;
}
