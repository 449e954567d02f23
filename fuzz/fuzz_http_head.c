/* Fuzz target for the HTTP/1.1 head parser (codec/http_head.h).
 *
 * The input is a head's bytes; the first byte picks the bound given to
 * http_head_end. Checks: http_head_end returns a length within both the
 * input and the bound, whose last bytes are a line end and a blank line;
 * the same input with a byte cut gives 0 or MR_ELIMIT or a shorter end;
 * both parsers either fail with a reason or give slices that lie inside
 * the head, a status in 100..999, at most HTTP_HEADERS_MAX headers, names
 * of tchars and values without CR or LF; every lookup helper runs over
 * the result. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "codec/http_head.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

static void check_slice(struct http_slice s, const char *buf, size_t len)
{
	if (!s.n)
		return;
	CHECK(s.p >= buf && s.p + s.n <= buf + len);
	CHECK(!memchr(s.p, '\n', s.n) && !memchr(s.p, '\r', s.n));
}

static void check_head(const struct http_head *h, const char *buf, size_t len)
{
	CHECK(h->nheaders <= HTTP_HEADERS_MAX);
	CHECK(h->head_len <= len);
	CHECK(h->version_major >= 0 && h->version_major <= 9);
	if (h->kind == HTTP_HEAD_RESPONSE) {
		CHECK(h->status >= 100 && h->status <= 999);
		check_slice(h->reason, buf, len);
	} else {
		CHECK(h->method.n > 0 && h->target.n > 0);
		check_slice(h->method, buf, len);
		check_slice(h->target, buf, len);
	}
	for (size_t i = 0; i < h->nheaders; i++) {
		CHECK(h->headers[i].name.n > 0);
		check_slice(h->headers[i].name, buf, len);
		check_slice(h->headers[i].value, buf, len);
		CHECK(!memchr(h->headers[i].name.p, ':', h->headers[i].name.n));
	}
	(void)http_header_has_token(h, "connection", "upgrade");
	(void)http_header_get(h, "upgrade");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t max = (size_t)data[0] * 64 + 1;
	const char *buf = (const char *)data + 1;
	size_t len = size - 1;
	ssize_t end = http_head_end(buf, len, max);
	CHECK(end == 0 || end == MR_ELIMIT || end > 0);
	if (end == 0)
		CHECK(len < max);
	if (end == MR_ELIMIT)
		CHECK(len >= max);
	if (end > 0) {
		CHECK((size_t)end <= len && (size_t)end <= max && end >= 2);
		CHECK(buf[end - 1] == '\n');
		/* one byte less cannot hold the same end */
		ssize_t e2 = http_head_end(buf, (size_t)end - 1, max);
		CHECK(e2 == 0 || (e2 > 0 && e2 < end));
	}
	/* parse as a head whatever the end said: the parsers must stay
	 * within len (the replay gives an exact-size copy) */
	size_t plen = end > 0 ? (size_t)end : len;
	struct http_head h;
	const char *why = NULL;
	int r = http_parse_request(buf, plen, &h, &why);
	if (r == 0)
		check_head(&h, buf, plen);
	else
		CHECK((r == MR_EFORMAT || r == MR_ELIMIT) && why);
	why = NULL;
	r = http_parse_response(buf, plen, &h, &why);
	if (r == 0)
		check_head(&h, buf, plen);
	else
		CHECK((r == MR_EFORMAT || r == MR_ELIMIT) && why);
	return 0;
}
