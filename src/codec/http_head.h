/* http_head: the head of an HTTP/1.1 message (request line or status line,
 * then header fields, then an empty line), parsed in place. Pure: no I/O,
 * no allocation. Used by the websocket upgrade (both sides), the HTTP
 * CONNECT proxy step, and later the admin endpoint. Every input is hostile:
 * sizes are bounded by the caller (max) and by HTTP_HEADERS_MAX.
 *
 * Line endings: CRLF, or a bare LF (as httparse, rathole's parser, also
 * accepts). Obsolete line folding (a header line starting with a space or
 * tab) is rejected. Header names are tokens (RFC 9110 tchar); values have
 * leading and trailing spaces and tabs trimmed, and may not hold control
 * characters other than tab.
 *
 * Ownership: a struct http_head holds slices that point into the buffer it
 * was parsed from; it is valid only while that buffer is unchanged. */
#ifndef MOLERAT_HTTP_HEAD_H
#define MOLERAT_HTTP_HEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

enum {
	HTTP_HEADERS_MAX = 32,   /* more header lines than this: MR_ELIMIT */
};

struct http_slice {
	const char *p;
	size_t n;
};

struct http_header {
	struct http_slice name;
	struct http_slice value;
};

enum http_head_kind {
	HTTP_HEAD_REQUEST = 0,
	HTTP_HEAD_RESPONSE,
};

struct http_head {
	enum http_head_kind kind;
	/* request line: method SP target SP HTTP/x.y */
	struct http_slice method;
	struct http_slice target;
	/* status line: HTTP/x.y SP code [SP reason] */
	int status;                    /* 100..999 */
	struct http_slice reason;      /* may be empty */
	int version_major;             /* both lines: HTTP/1.1 gives 1, 1 */
	int version_minor;
	size_t nheaders;
	struct http_header headers[HTTP_HEADERS_MAX];
	size_t head_len;               /* bytes of the head, blank line included */
};

/* Looks for the end of a head in buf[0..len). Returns the head's length
 * (through the blank line) when it is complete, 0 when more bytes are
 * needed and len < max, MR_ELIMIT when no end is within the first max
 * bytes. */
ssize_t http_head_end(const char *buf, size_t len, size_t max);

/* Parse a complete head (buf[0..len) with len as http_head_end returned;
 * bytes after it are not looked at). Returns 0 with *h filled,
 * MR_EFORMAT for a malformed head, MR_ELIMIT for too many header lines.
 * *why (when why is not NULL) gets a static reason on failure ("bad
 * request line", "bad header name", ...). */
int http_parse_request(const char *buf, size_t len, struct http_head *h, const char **why);
int http_parse_response(const char *buf, size_t len, struct http_head *h, const char **why);

/* The value of the first header named name (ASCII case-insensitive), or
 * NULL. */
const struct http_slice *http_header_get(const struct http_head *h, const char *name);
/* s equals the NUL-terminated lit, ASCII case-insensitive. */
bool http_slice_eq_ci(struct http_slice s, const char *lit);
/* Some header named name holds token in its value, the value split on
 * commas and spaces (empty elements skipped), ASCII case-insensitive:
 * "keep-alive, Upgrade" has the token "upgrade". */
bool http_header_has_token(const struct http_head *h, const char *name, const char *token);

#endif
