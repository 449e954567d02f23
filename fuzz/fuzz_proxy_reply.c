/* fuzz_proxy_reply: the proxy step's reply decoders (codec/proxy_proto.h)
 * on any bytes, fed in pieces.
 *
 * Input: byte 0 picks the decoder (low two bits: SOCKS5 method, auth,
 * connect reply, or the HTTP CONNECT check) and whether credentials were
 * offered (bit 2); byte 1 seeds the piece sizes; the rest is what the
 * proxy sent.
 *
 * Invariants, SOCKS5: a feed consumes at most what it was given and never
 * a byte past the reply; need bytes make the next decision; need is 0
 * exactly in DONE and FAILED, which are final; the same bytes fed whole
 * and in pieces reach the same state, error and code, and DONE consumes
 * the same number of bytes; a reply that is DONE has the length the
 * reference says (2, or 4 + address + 2) and says yes; the error text is
 * terminated inside its buffer. HTTP: MORE only
 * below HTTP_CONNECT_HEAD_MAX bytes; a verdict other than MORE and OPEN on
 * a prefix is the verdict on every longer input (the head is decided);
 * OPEN (or bytes after the head) on a prefix of length L is GARBAGE with
 * len - L more extra bytes on the whole input; a reason is printable and
 * terminated. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "codec/proxy_proto.h"

enum { MAX_INPUT = 8192 };

/* The length of a whole SOCKS5 reply of that kind starting at in, or 0
 * when it cannot be known from len bytes (or is not a good reply). */
static size_t ref_len(enum socks5_reply_kind kind, const uint8_t *in, size_t len)
{
	if (kind != SOCKS5_CONNECT_REPLY)
		return 2;
	if (len < 4)
		return 0;
	switch (in[3]) {
	case SOCKS5_ATYP_IPV4:
		return 4 + 4 + 2;
	case SOCKS5_ATYP_IPV6:
		return 4 + 16 + 2;
	case SOCKS5_ATYP_DOMAIN:
		return len < 5 ? 0 : 4 + 1 + (size_t)in[4] + 2;
	default:
		return 0;
	}
}

static void check_text(const struct socks5_dec *d)
{
	char buf[96];
	memset(buf, 'Z', sizeof(buf));
	socks5_dec_strerror(d, "target.example:1", buf, sizeof(buf));
	if (!memchr(buf, '\0', sizeof(buf)))
		abort();
}

static void fuzz_socks(enum socks5_reply_kind kind, bool creds, uint8_t seed, const uint8_t *in, size_t len)
{
	struct socks5_dec whole, d;
	socks5_dec_init(&whole, kind, creds);
	ssize_t rw = socks5_dec_feed(&whole, in, len);
	if (rw != MR_EPROXY && (rw < 0 || (size_t)rw > len))
		abort();
	if ((rw == MR_EPROXY) != (whole.state == S5D_FAILED))
		abort();

	socks5_dec_init(&d, kind, creds);
	size_t off = 0, step = (size_t)(seed % 7) + 1;
	ssize_t r = 0;
	while (off < len) {
		size_t need = socks5_dec_need(&d);
		if ((need == 0) != (d.state == S5D_DONE || d.state == S5D_FAILED))
			abort();
		size_t k = step < len - off ? step : len - off;
		enum socks5_dec_state before = d.state;
		r = socks5_dec_feed(&d, in + off, k);
		if (r == MR_EPROXY) {
			if (d.state != S5D_FAILED || d.err == S5E_NONE)
				abort();
			break;
		}
		if (r < 0 || (size_t)r > k)
			abort();
		if (k >= need && d.state == before && before != S5D_TAIL)
			abort();  /* need bytes make the next decision */
		if ((before == S5D_DONE || before == S5D_FAILED) && r != 0)
			abort();
		off += (size_t)r;
		if (d.state == S5D_DONE)
			break;
		if ((size_t)r < k)
			abort();  /* only a finished reply leaves bytes */
		step = (step * 5 + seed) % 11 + 1;
	}
	if (d.state != whole.state || d.err != whole.err || d.code != whole.code || d.ver != whole.ver)
		abort();
	if (d.state == S5D_DONE) {
		if (off != (size_t)rw || off != ref_len(kind, in, len))
			abort();
		/* a DONE reply says yes */
		if (kind == SOCKS5_METHOD_REPLY ? !(d.code == 0 || (d.code == 2 && creds)) : d.code != 0)
			abort();
		if (socks5_dec_feed(&d, in, len) != 0)
			abort();
	}
	if (d.state == S5D_FAILED) {
		check_text(&d);
		if (socks5_dec_feed(&d, in, len) != MR_EPROXY || socks5_dec_need(&d) != 0)
			abort();
	}
}

static void check_reply(enum http_connect_res res, const struct http_connect_reply *r, size_t len)
{
	if (res == HCR_MORE && len >= HTTP_CONNECT_HEAD_MAX)
		abort();
	if ((res == HCR_GARBAGE || res == HCR_TOO_BIG) && !r->why)
		abort();
	if (res == HCR_OPEN && (r->status < 200 || r->status > 299))
		abort();
	if (res == HCR_STATUS && (r->status < 100 || r->status > 999 || (r->status >= 200 && r->status <= 299)))
		abort();
	const char *z = memchr(r->reason, '\0', sizeof(r->reason));
	if (!z)
		abort();
	for (const char *p = r->reason; p < z; p++)
		if (*p < 0x20 || *p > 0x7e)
			abort();
}

static void fuzz_http(uint8_t seed, const uint8_t *in, size_t len)
{
	const char *s = (const char *)in;
	struct http_connect_reply full, r;
	enum http_connect_res fres = http_connect_check(s, len, &full);
	check_reply(fres, &full, len);
	size_t step = (size_t)seed % 97 + 1;
	for (size_t l = 0; l < len; l += step) {
		enum http_connect_res res = http_connect_check(s, l, &r);
		check_reply(res, &r, l);
		if (res == HCR_MORE)
			continue;
		if (res == HCR_OPEN) {
			if (fres != HCR_GARBAGE || full.extra != len - l || full.status != r.status)
				abort();
		} else if (res == HCR_GARBAGE && r.extra) {
			if (fres != HCR_GARBAGE || full.extra != r.extra + (len - l))
				abort();
		} else if (res != fres || r.status != full.status || r.extra != full.extra) {
			abort();
		}
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2 || size > MAX_INPUT)
		return 0;
	/* a copy of exactly the bytes, so ASan sees any over-read */
	size_t len = size - 2;
	uint8_t *in = malloc(len ? len : 1);
	if (!in)
		return 0;
	memcpy(in, data + 2, len);
	unsigned pick = data[0] & 3;
	bool creds = data[0] & 4;
	if (pick == 3)
		fuzz_http(data[1], in, len);
	else
		fuzz_socks((enum socks5_reply_kind)pick, creds, data[1], in, len);
	free(in);
	return 0;
}
