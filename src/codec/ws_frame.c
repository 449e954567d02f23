/* ws_frame: see ws_frame.h. The decoder is a state machine over a frame's
 * two parts (header, payload); a header is gathered in d->hdr and checked
 * as soon as its first two bytes are known, so a stream that is not
 * websocket fails on its first bytes. */
#include "codec/ws_frame.h"

#include <arpa/inet.h>
#include <string.h>

#include <openssl/evp.h>

#include "base/err.h"
#include "codec/addr.h"
#include "codec/keygen.h"

/* ---------------------------------------------------------------- encoding */

size_t ws_frame_header(uint8_t out[WS_HDR_MAX], bool fin, enum ws_opcode op, uint64_t len,
		       const uint8_t *mask)
{
	size_t n = 2;
	out[0] = (uint8_t)((fin ? 0x80 : 0) | (op & 0x0f));
	uint8_t m = mask ? 0x80 : 0;
	if (len < 126) {
		out[1] = (uint8_t)(m | len);
	} else if (len <= 0xffff) {
		out[1] = m | 126;
		out[2] = (uint8_t)(len >> 8);
		out[3] = (uint8_t)len;
		n = 4;
	} else {
		out[1] = m | 127;
		for (int i = 0; i < 8; i++)
			out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
		n = 10;
	}
	if (mask) {
		memcpy(out + n, mask, 4);
		n += 4;
	}
	return n;
}

unsigned ws_mask_copy(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4], unsigned phase)
{
	uint8_t k[8];
	for (unsigned i = 0; i < 8; i++)
		k[i] = key[(phase + i) & 3];
	uint64_t k64;
	memcpy(&k64, k, 8);
	size_t i = 0;
	/* 32, then 8 bytes at a time: each block is loaded whole before it is
	 * stored, so a dst that trails src never overwrites bytes not yet read */
	for (; i + 32 <= n; i += 32) {
		uint64_t v[4];
		memcpy(v, src + i, 32);
		v[0] ^= k64;
		v[1] ^= k64;
		v[2] ^= k64;
		v[3] ^= k64;
		memcpy(dst + i, v, 32);
	}
	for (; i + 8 <= n; i += 8) {
		uint64_t v;
		memcpy(&v, src + i, 8);
		v ^= k64;
		memcpy(dst + i, &v, 8);
	}
	for (; i < n; i++)
		dst[i] = src[i] ^ k[i & 7];
	return (unsigned)((phase + n) & 3);
}

unsigned ws_mask(uint8_t *buf, size_t n, const uint8_t key[4], unsigned phase)
{
	return ws_mask_copy(buf, buf, n, key, phase);
}

/* ---------------------------------------------------------------- decoding */

void ws_decoder_init(struct ws_decoder *d, bool expect_masked)
{
	memset(d, 0, sizeof(*d));
	d->state = WS_DEC_HEADER;
	d->expect_masked = expect_masked;
	d->hdr_need = 2;
}

static ssize_t dec_fail(struct ws_decoder *d, const char *why, uint64_t bad_len)
{
	d->state = WS_DEC_FAILED;
	d->why = why;
	d->bad_len = bad_len;
	return MR_EWS;
}

static bool is_control(enum ws_opcode op)
{
	return op & 0x8;
}

/* The first two bytes are in: checks what they say and sets hdr_need. */
static ssize_t dec_first_two(struct ws_decoder *d)
{
	uint8_t b0 = d->hdr[0], b1 = d->hdr[1];
	d->fin = b0 & 0x80;
	d->op = (enum ws_opcode)(b0 & 0x0f);
	d->masked = b1 & 0x80;
	unsigned len7 = b1 & 0x7f;
	if (b0 & 0x70)
		return dec_fail(d, "a frame with reserved bits set (an extension that was not negotiated)", 0);
	switch (d->op) {
	case WS_OP_BINARY:
		if (d->in_message)
			return dec_fail(d, "a new message inside a fragmented one", 0);
		break;
	case WS_OP_CONT:
		if (!d->in_message)
			return dec_fail(d, "a continuation frame with no message to continue", 0);
		break;
	case WS_OP_TEXT:
		return dec_fail(d, "a Text frame (the tunnel carries Binary frames only)", 0);
	case WS_OP_CLOSE:
	case WS_OP_PING:
	case WS_OP_PONG:
		if (!d->fin)
			return dec_fail(d, "a fragmented control frame", 0);
		if (len7 > WS_CTRL_MAX)
			return dec_fail(d, "a control frame longer than 125 bytes", 0);
		break;
	default:
		return dec_fail(d, "a frame with a reserved opcode", 0);
	}
	if (d->masked != d->expect_masked)
		return dec_fail(d, d->masked ? "a masked frame" : "an unmasked frame", 0);
	d->hdr_need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + (d->masked ? 4 : 0);
	return 0;
}

/* The whole header is in: its length and key. */
static ssize_t dec_header_done(struct ws_decoder *d)
{
	unsigned len7 = d->hdr[1] & 0x7f, off = 2;
	uint64_t len = len7;
	if (len7 == 126) {
		len = (uint64_t)d->hdr[2] << 8 | d->hdr[3];
		off = 4;
	} else if (len7 == 127) {
		len = 0;
		for (int i = 0; i < 8; i++)
			len = len << 8 | d->hdr[2 + i];
		off = 10;
		if (len >> 63)
			return dec_fail(d, "a frame length with its top bit set", 0);
	}
	if (d->masked)
		memcpy(d->key, d->hdr + off, 4);
	if (len > WS_FRAME_MAX)
		return dec_fail(d, "a frame over the 16 MiB limit", len);
	if (!is_control(d->op)) {
		uint64_t total = (d->op == WS_OP_CONT ? d->message_len : 0) + len;
		if (total > WS_MESSAGE_MAX)
			return dec_fail(d, "a message over the 64 MiB limit", total);
		d->message_len = total;
		d->in_message = !d->fin;
	}
	d->frame_len = d->remaining = len;
	d->ctrl_len = 0;
	d->hdr_len = 0;
	d->hdr_need = 2;
	d->state = WS_DEC_PAYLOAD;
	return 0;
}

/* A frame's payload is all in: a control frame becomes its event. */
static enum ws_event_kind dec_frame_done(struct ws_decoder *d)
{
	d->state = WS_DEC_HEADER;
	switch (d->op) {
	case WS_OP_PING: return WS_EV_PING;
	case WS_OP_PONG: return WS_EV_PONG;
	case WS_OP_CLOSE:
		d->state = WS_DEC_CLOSED;
		return WS_EV_CLOSE;
	default: return WS_EV_NONE;
	}
}

ssize_t ws_decode(struct ws_decoder *d, uint8_t *in, size_t len, struct ws_event *ev)
{
	size_t pos = 0;
	ev->kind = WS_EV_NONE;
	ev->data = NULL;
	ev->len = 0;
	ev->key = NULL;
	ev->phase = 0;
	for (;;) {
		switch (d->state) {
		case WS_DEC_FAILED:
			return MR_EWS;
		case WS_DEC_CLOSED:
			return (ssize_t)len;
		case WS_DEC_HEADER: {
			if (pos == len)
				return (ssize_t)pos;
			size_t n = d->hdr_need - d->hdr_len;
			if (n > len - pos)
				n = len - pos;
			memcpy(d->hdr + d->hdr_len, in + pos, n);
			d->hdr_len += (unsigned)n;
			pos += n;
			if (d->hdr_len < d->hdr_need)
				return (ssize_t)pos;
			ssize_t r;
			if (d->hdr_need == 2 && (r = dec_first_two(d)) < 0)
				return r;
			if (d->hdr_len < d->hdr_need)
				continue;  /* the extended length, the key */
			if ((r = dec_header_done(d)) < 0)
				return r;
			if (d->remaining)
				continue;
			if ((ev->kind = dec_frame_done(d)) != WS_EV_NONE) {
				ev->data = d->ctrl;
				return (ssize_t)pos;
			}
			continue;  /* an empty data frame */
		}
		case WS_DEC_PAYLOAD: {
			if (pos == len)
				return (ssize_t)pos;
			size_t n = len - pos;
			if (n > d->remaining)
				n = (size_t)d->remaining;
			unsigned phase = (unsigned)((d->frame_len - d->remaining) & 3);
			uint8_t *p = in + pos;
			bool control = is_control(d->op);
			if (d->masked && (control || !d->leave_masked))
				ws_mask(p, n, d->key, phase);
			else if (d->masked) {
				ev->key = d->key;
				ev->phase = phase;
			}
			pos += n;
			d->remaining -= n;
			if (control) {
				memcpy(d->ctrl + d->ctrl_len, p, n);
				d->ctrl_len += (unsigned)n;
				if (d->remaining)
					continue;
				ev->kind = dec_frame_done(d);
				ev->data = d->ctrl;
				ev->len = d->ctrl_len;
				return (ssize_t)pos;
			}
			if (!d->remaining)
				d->state = WS_DEC_HEADER;
			ev->kind = WS_EV_DATA;
			ev->data = p;
			ev->len = n;
			return (ssize_t)pos;
		}
		}
	}
}

/* ---------------------------------------------------------------- handshake values */

int ws_accept_key(const char *key, size_t len, char out[WS_ACCEPT_LEN + 1])
{
	static const char GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	bool ok = c && EVP_DigestInit_ex(c, EVP_sha1(), NULL) && EVP_DigestUpdate(c, key, len) &&
		  EVP_DigestUpdate(c, GUID, sizeof(GUID) - 1) && EVP_DigestFinal_ex(c, md, &mdlen) &&
		  mdlen == 20;
	EVP_MD_CTX_free(c);
	if (!ok || keygen_b64_encode(md, 20, out, WS_ACCEPT_LEN + 1) != WS_ACCEPT_LEN)
		return MR_ECRYPTO;
	return 0;
}

/* An IPv6 address in RFC 5952 form, as the url crate writes it: lower-case
 * hex groups, the first longest run of two or more zero groups as "::",
 * never a dotted IPv4 tail. */
static size_t ipv6_str(const uint8_t a[16], char *out)
{
	unsigned g[8];
	for (int i = 0; i < 8; i++)
		g[i] = (unsigned)a[2 * i] << 8 | a[2 * i + 1];
	int best = -1, best_len = 1;
	for (int i = 0; i < 8;) {
		int j = i;
		while (j < 8 && g[j] == 0)
			j++;
		if (j - i > best_len) {
			best = i;
			best_len = j - i;
		}
		i = j > i ? j : i + 1;
	}
	size_t n = 0;
	for (int i = 0; i < 8; i++) {
		if (i == best) {
			out[n++] = ':';
			out[n++] = ':';
			i += best_len - 1;
			continue;
		}
		if (i && i != best + best_len)
			out[n++] = ':';
		static const char hex[] = "0123456789abcdef";
		bool lead = true;
		for (int s = 12; s >= 0; s -= 4) {
			unsigned v = (g[i] >> s) & 0xf;
			if (lead && v == 0 && s)
				continue;
			lead = false;
			out[n++] = hex[v];
		}
	}
	out[n] = '\0';
	return n;
}

/* WHATWG: a host whose last label (a final empty one aside) is a number
 * is an IPv4 address. */
static bool ends_in_number(const char *h)
{
	size_t n = strlen(h);
	if (n && h[n - 1] == '.')
		n--;
	size_t s = n;
	while (s && h[s - 1] != '.')
		s--;
	if (s == n)
		return false;
	if (n - s >= 2 && h[s] == '0' && (h[s + 1] == 'x' || h[s + 1] == 'X'))
		return true;
	for (size_t i = s; i < n; i++)
		if (h[i] < '0' || h[i] > '9')
			return false;
	return true;
}

/* Code points WHATWG forbids in a domain (after percent-decoding, which
 * is not done here: '%' is refused too). */
static bool forbidden_domain_char(unsigned char c)
{
	return c <= 0x20 || c >= 0x7f || strchr("#%/:<>?@[\\]^|", c) != NULL;
}

int ws_host_header(const char *remote_addr, char *out, size_t cap)
{
	char host[256];
	uint16_t port;
	if (addr_split_host_port(remote_addr, host, sizeof(host), &port) < 0)
		return MR_EFORMAT;
	char norm[256];
	size_t n;
	if (remote_addr[0] == '[') {
		uint8_t a6[16];
		if (inet_pton(AF_INET6, host, a6) != 1)
			return MR_EFORMAT;
		norm[0] = '[';
		n = 1 + ipv6_str(a6, norm + 1);
		norm[n++] = ']';
		norm[n] = '\0';
	} else if (ends_in_number(host)) {
		size_t hl = strlen(host);
		if (host[hl - 1] == '.')
			host[hl - 1] = '\0';  /* "127.0.0.1." is the same address */
		for (size_t i = 0; host[i]; i++)
			if (forbidden_domain_char((unsigned char)host[i]))
				return MR_EFORMAT;
		struct in_addr a4;
		if (inet_aton(host, &a4) != 1 || !inet_ntop(AF_INET, &a4, norm, sizeof(norm)))
			return MR_EFORMAT;
		n = strlen(norm);
	} else {
		for (n = 0; host[n]; n++) {
			unsigned char c = (unsigned char)host[n];
			if (forbidden_domain_char(c))
				return MR_EFORMAT;
			norm[n] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
		}
		norm[n] = '\0';
	}
	int w = port == 80 ? snprintf(out, cap, "%s", norm) : snprintf(out, cap, "%s:%u", norm, port);
	if (w < 0 || (size_t)w >= cap)
		return MR_ELIMIT;
	return w;
}
