/* http_head: see http_head.h. A line-by-line parser over a complete head
 * (http_head_end found its blank line first), as strict as httparse,
 * rathole's parser, on what a websocket upgrade or a proxy reply holds:
 * single spaces between the parts of the first line, header names that
 * are tokens, values without control characters, CRLF or a bare LF. */
#include "codec/http_head.h"

#include <string.h>

#include "base/err.h"

/* RFC 9110 tchar: "!#$%&'*+-.^_`|~", digits, letters. */
static bool is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* A byte a request target or a reason phrase may hold (obs-text too). */
static bool is_vchar(unsigned char c)
{
	return c > 0x20 && c != 0x7f;
}

static unsigned char lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

ssize_t http_head_end(const char *buf, size_t len, size_t max)
{
	size_t lim = len < max ? len : max;
	/* the blank line follows a line end: "\n\n" or "\n\r\n" */
	for (size_t i = 0; i < lim; i++) {
		if (buf[i] != '\n')
			continue;
		if (i + 1 < lim && buf[i + 1] == '\n')
			return (ssize_t)(i + 2);
		if (i + 2 < lim && buf[i + 1] == '\r' && buf[i + 2] == '\n')
			return (ssize_t)(i + 3);
	}
	return len >= max ? MR_ELIMIT : 0;
}

/* The next line of buf[*pos, len), without its line end. false when no
 * line end follows, or a CR stands anywhere but before the LF. */
static bool next_line(const char *buf, size_t len, size_t *pos, struct http_slice *line)
{
	const char *p = buf + *pos;
	const char *nl = memchr(p, '\n', len - *pos);
	if (!nl)
		return false;
	size_t n = (size_t)(nl - p);
	*pos += n + 1;
	if (n && p[n - 1] == '\r')
		n--;
	if (memchr(p, '\r', n))
		return false;
	line->p = p;
	line->n = n;
	return true;
}

/* "HTTP/d.d" at s[0, 8). */
static bool parse_version(const char *s, size_t n, struct http_head *h)
{
	if (n < 8 || memcmp(s, "HTTP/", 5) != 0 || s[6] != '.')
		return false;
	if (s[5] < '0' || s[5] > '9' || s[7] < '0' || s[7] > '9')
		return false;
	h->version_major = s[5] - '0';
	h->version_minor = s[7] - '0';
	return true;
}

static int fail(const char **why, const char *reason, int err)
{
	if (why)
		*why = reason;
	return err;
}

/* Header lines up to the blank line. */
static int parse_headers(const char *buf, size_t len, size_t pos, struct http_head *h, const char **why)
{
	h->nheaders = 0;
	for (;;) {
		struct http_slice line;
		if (!next_line(buf, len, &pos, &line))
			return fail(why, "bad line ending", MR_EFORMAT);
		if (!line.n)
			break;
		const unsigned char *p = (const unsigned char *)line.p;
		if (p[0] == ' ' || p[0] == '\t')
			return fail(why, "folded header line", MR_EFORMAT);
		size_t i = 0;
		while (i < line.n && is_tchar(p[i]))
			i++;
		if (i == 0 || i == line.n || p[i] != ':')
			return fail(why, "bad header name", MR_EFORMAT);
		size_t v = i + 1, e = line.n;
		while (v < e && (p[v] == ' ' || p[v] == '\t'))
			v++;
		while (e > v && (p[e - 1] == ' ' || p[e - 1] == '\t'))
			e--;
		for (size_t k = v; k < e; k++)
			if ((p[k] < 0x20 && p[k] != '\t') || p[k] == 0x7f)
				return fail(why, "bad header value", MR_EFORMAT);
		if (h->nheaders == HTTP_HEADERS_MAX)
			return fail(why, "too many header lines", MR_ELIMIT);
		struct http_header *hd = &h->headers[h->nheaders++];
		hd->name = (struct http_slice){ line.p, i };
		hd->value = (struct http_slice){ line.p + v, e - v };
	}
	h->head_len = pos;
	return 0;
}

/* Clears h and takes the first line. */
static bool head_start(const char *buf, size_t len, struct http_head *h, enum http_head_kind kind,
		       size_t *pos, struct http_slice *line)
{
	memset(h, 0, sizeof(*h));
	h->kind = kind;
	*pos = 0;
	return next_line(buf, len, pos, line);
}

int http_parse_request(const char *buf, size_t len, struct http_head *h, const char **why)
{
	size_t pos;
	struct http_slice line;
	if (!head_start(buf, len, h, HTTP_HEAD_REQUEST, &pos, &line))
		return fail(why, "bad request line", MR_EFORMAT);
	const unsigned char *p = (const unsigned char *)line.p;
	size_t i = 0;
	while (i < line.n && is_tchar(p[i]))
		i++;
	if (i == 0 || i == line.n || p[i] != ' ')
		return fail(why, "bad request method", MR_EFORMAT);
	h->method = (struct http_slice){ line.p, i };
	size_t t = ++i;
	while (i < line.n && is_vchar(p[i]))
		i++;
	if (i == t || i == line.n || p[i] != ' ')
		return fail(why, "bad request target", MR_EFORMAT);
	h->target = (struct http_slice){ line.p + t, i - t };
	i++;
	if (line.n - i != 8 || !parse_version(line.p + i, 8, h))
		return fail(why, "bad HTTP version", MR_EFORMAT);
	return parse_headers(buf, len, pos, h, why);
}

int http_parse_response(const char *buf, size_t len, struct http_head *h, const char **why)
{
	size_t pos;
	struct http_slice line;
	if (!head_start(buf, len, h, HTTP_HEAD_RESPONSE, &pos, &line))
		return fail(why, "bad status line", MR_EFORMAT);
	const char *p = line.p;
	if (!parse_version(p, line.n, h) || line.n < 12 || p[8] != ' ')
		return fail(why, "bad status line", MR_EFORMAT);
	int code = 0;
	for (size_t i = 9; i < 12; i++) {
		if (p[i] < '0' || p[i] > '9')
			return fail(why, "bad status code", MR_EFORMAT);
		code = code * 10 + (p[i] - '0');
	}
	if (code < 100)
		return fail(why, "bad status code", MR_EFORMAT);
	h->status = code;
	h->reason = (struct http_slice){ p + line.n, 0 };
	if (line.n > 12) {
		if (p[12] != ' ')
			return fail(why, "bad status code", MR_EFORMAT);
		for (size_t i = 13; i < line.n; i++) {
			unsigned char c = (unsigned char)p[i];
			if ((c < 0x20 && c != '\t') || c == 0x7f)
				return fail(why, "bad reason phrase", MR_EFORMAT);
		}
		h->reason = (struct http_slice){ p + 13, line.n - 13 };
	}
	return parse_headers(buf, len, pos, h, why);
}

bool http_slice_eq_ci(struct http_slice s, const char *lit)
{
	size_t n = strlen(lit);
	if (s.n != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (lower((unsigned char)s.p[i]) != lower((unsigned char)lit[i]))
			return false;
	return true;
}

const struct http_slice *http_header_get(const struct http_head *h, const char *name)
{
	for (size_t i = 0; i < h->nheaders; i++)
		if (http_slice_eq_ci(h->headers[i].name, name))
			return &h->headers[i].value;
	return NULL;
}

bool http_header_has_token(const struct http_head *h, const char *name, const char *token)
{
	for (size_t i = 0; i < h->nheaders; i++) {
		if (!http_slice_eq_ci(h->headers[i].name, name))
			continue;
		struct http_slice v = h->headers[i].value;
		size_t k = 0;
		while (k < v.n) {
			while (k < v.n && (v.p[k] == ',' || v.p[k] == ' ' || v.p[k] == '\t'))
				k++;
			size_t s = k;
			while (k < v.n && v.p[k] != ',' && v.p[k] != ' ' && v.p[k] != '\t')
				k++;
			if (k > s && http_slice_eq_ci((struct http_slice){ v.p + s, k - s }, token))
				return true;
		}
	}
	return false;
}
