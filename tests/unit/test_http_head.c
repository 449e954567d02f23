/* http_head: the HTTP/1.1 head parser (codec/http_head.h): finding the end
 * of a head within a bound, rathole's exact upgrade request and 101,
 * proxy replies, bare LF line ends, every rejection with its reason, the
 * header limit, and the token and case-insensitive helpers. Links
 * molerat_codec alone. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "codec/http_head.h"

static const char REQ[] =
	"GET / HTTP/1.1\r\n"
	"Host: example.com:2333\r\n"
	"Connection: Upgrade\r\n"
	"Upgrade: websocket\r\n"
	"Sec-WebSocket-Version: 13\r\n"
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	"\r\n";

static const char RESP[] =
	"HTTP/1.1 101 Switching Protocols\r\n"
	"connection: Upgrade\r\n"
	"upgrade: websocket\r\n"
	"sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
	"\r\n";

static bool slice_is(struct http_slice s, const char *lit)
{
	return s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0;
}

static void test_head_end(void **state)
{
	size_t n = strlen(REQ);
	assert_int_equal(http_head_end(REQ, n, 8192), (ssize_t)n);
	/* every prefix is incomplete */
	for (size_t i = 0; i < n; i++)
		assert_int_equal(http_head_end(REQ, i, 8192), 0);
	/* bytes after the head are not part of it */
	char buf[512];
	snprintf(buf, sizeof(buf), "%s\x82\x04junk", REQ);
	assert_int_equal(http_head_end(buf, strlen(buf), 8192), (ssize_t)n);
	/* bare LF, mixed */
	assert_int_equal(http_head_end("GET / HTTP/1.1\nA: b\n\nX", 22, 100), 21);
	assert_int_equal(http_head_end("GET / HTTP/1.1\nA: b\n\r\nX", 23, 100), 22);
	/* the bound: no end within max */
	assert_int_equal(http_head_end(REQ, n, 20), MR_ELIMIT);
	assert_int_equal(http_head_end(REQ, n - 1, n - 1), MR_ELIMIT);
	assert_int_equal(http_head_end(REQ, n, n), (ssize_t)n);
	assert_int_equal(http_head_end(REQ, 10, 20), 0);
	assert_int_equal(http_head_end("", 0, 8), 0);
}

static void test_request_rathole(void **state)
{
	struct http_head h;
	const char *why = NULL;
	size_t n = strlen(REQ);
	assert_int_equal(http_parse_request(REQ, n, &h, &why), 0);
	assert_int_equal(h.kind, HTTP_HEAD_REQUEST);
	assert_true(slice_is(h.method, "GET"));
	assert_true(slice_is(h.target, "/"));
	assert_int_equal(h.version_major, 1);
	assert_int_equal(h.version_minor, 1);
	assert_int_equal(h.nheaders, 5);
	assert_int_equal(h.head_len, n);
	assert_true(slice_is(h.headers[0].name, "Host"));
	assert_true(slice_is(h.headers[0].value, "example.com:2333"));
	const struct http_slice *k = http_header_get(&h, "sec-websocket-key");
	assert_non_null(k);
	assert_true(slice_is(*k, "dGhlIHNhbXBsZSBub25jZQ=="));
	assert_null(http_header_get(&h, "Origin"));
	assert_true(http_header_has_token(&h, "connection", "upgrade"));
	assert_true(http_slice_eq_ci(*http_header_get(&h, "UPGRADE"), "WebSocket"));
}

static void test_response_rathole(void **state)
{
	struct http_head h;
	assert_int_equal(http_parse_response(RESP, strlen(RESP), &h, NULL), 0);
	assert_int_equal(h.kind, HTTP_HEAD_RESPONSE);
	assert_int_equal(h.status, 101);
	assert_true(slice_is(h.reason, "Switching Protocols"));
	assert_int_equal(h.nheaders, 3);
	assert_true(slice_is(*http_header_get(&h, "Sec-WebSocket-Accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
	assert_int_equal(h.head_len, strlen(RESP));
}

static void test_proxy_replies(void **state)
{
	struct http_head h;
	const char *r1 = "HTTP/1.0 200 Connection established\r\n\r\n";
	assert_int_equal(http_parse_response(r1, strlen(r1), &h, NULL), 0);
	assert_int_equal(h.status, 200);
	assert_int_equal(h.version_major, 1);
	assert_int_equal(h.version_minor, 0);
	assert_int_equal(h.nheaders, 0);
	const char *r2 = "HTTP/1.1 407 Proxy Authentication Required\nProxy-Authenticate: Basic realm=\"x\"\n"
			 "Content-Length: 0\n\n";
	assert_int_equal(http_parse_response(r2, strlen(r2), &h, NULL), 0);
	assert_int_equal(h.status, 407);
	assert_true(slice_is(*http_header_get(&h, "proxy-authenticate"), "Basic realm=\"x\""));
	/* no reason phrase, with and without its space */
	const char *r3 = "HTTP/1.1 200\r\n\r\n";
	assert_int_equal(http_parse_response(r3, strlen(r3), &h, NULL), 0);
	assert_int_equal(h.reason.n, 0);
	const char *r4 = "HTTP/1.1 200 \r\n\r\n";
	assert_int_equal(http_parse_response(r4, strlen(r4), &h, NULL), 0);
	assert_int_equal(h.reason.n, 0);
	/* values are trimmed; empty values allowed */
	const char *r5 = "HTTP/1.1 403 Forbidden\r\nX-A:  \t v w \t\r\nX-B:\r\n\r\n";
	assert_int_equal(http_parse_response(r5, strlen(r5), &h, NULL), 0);
	assert_true(slice_is(*http_header_get(&h, "x-a"), "v w"));
	assert_true(slice_is(*http_header_get(&h, "x-b"), ""));
}

static void test_tokens(void **state)
{
	struct http_head h;
	const char *r = "GET /x HTTP/1.1\r\nConnection: keep-alive\r\nconnection: , Keep-Alive,UPGRADE \r\n"
			"Upgrade: websocket2\r\n\r\n";
	assert_int_equal(http_parse_request(r, strlen(r), &h, NULL), 0);
	assert_true(http_header_has_token(&h, "Connection", "upgrade"));
	assert_true(http_header_has_token(&h, "Connection", "keep-alive"));
	assert_false(http_header_has_token(&h, "Connection", "close"));
	assert_false(http_header_has_token(&h, "Upgrade", "websocket"));
	assert_false(http_header_has_token(&h, "Missing", "x"));
	/* the first header of a name */
	assert_true(slice_is(*http_header_get(&h, "CONNECTION"), "keep-alive"));
	struct http_slice s = { "Upgrade", 7 };
	assert_true(http_slice_eq_ci(s, "upgrade"));
	assert_false(http_slice_eq_ci(s, "upgrad"));
	assert_false(http_slice_eq_ci(s, "upgrades"));
}

static void expect_bad(bool request, const char *head, int err, const char *reason)
{
	struct http_head h;
	const char *why = NULL;
	int r = request ? http_parse_request(head, strlen(head), &h, &why)
			: http_parse_response(head, strlen(head), &h, &why);
	if (r != err || !why || strcmp(why, reason) != 0)
		fail_msg("%s: got %d (%s), expected %d (%s)", head, r, why ? why : "-", err, reason);
}

static void test_rejects(void **state)
{
	expect_bad(true, "GET  / HTTP/1.1\r\n\r\n", MR_EFORMAT, "bad request target");
	expect_bad(true, " GET / HTTP/1.1\r\n\r\n", MR_EFORMAT, "bad request method");
	expect_bad(true, "GE(T / HTTP/1.1\r\n\r\n", MR_EFORMAT, "bad request method");
	expect_bad(true, "GET / HTTP/1.1 \r\n\r\n", MR_EFORMAT, "bad HTTP version");
	expect_bad(true, "GET / HTTP/11\r\n\r\n", MR_EFORMAT, "bad HTTP version");
	expect_bad(true, "GET / http/1.1\r\n\r\n", MR_EFORMAT, "bad HTTP version");
	expect_bad(true, "GET /\r\n\r\n", MR_EFORMAT, "bad request target");
	expect_bad(true, "\r\n\r\n", MR_EFORMAT, "bad request method");
	expect_bad(true, "\x01\x02\x03 / HTTP/1.1\r\n\r\n", MR_EFORMAT, "bad request method");
	expect_bad(true, "GET / HTTP/1.1\r\n folded: x\r\n\r\n", MR_EFORMAT, "folded header line");
	expect_bad(true, "GET / HTTP/1.1\r\nA : x\r\n\r\n", MR_EFORMAT, "bad header name");
	expect_bad(true, "GET / HTTP/1.1\r\n: x\r\n\r\n", MR_EFORMAT, "bad header name");
	expect_bad(true, "GET / HTTP/1.1\r\nnocolon\r\n\r\n", MR_EFORMAT, "bad header name");
	expect_bad(true, "GET / HTTP/1.1\r\nA: x\x01y\r\n\r\n", MR_EFORMAT, "bad header value");
	expect_bad(true, "GET / HTTP/1.1\r\nA: x\ry\r\n\r\n", MR_EFORMAT, "bad line ending");
	expect_bad(true, "GET / HTTP/1.1\rA: b\r\n\r\n", MR_EFORMAT, "bad request line");
	expect_bad(true, "GET / HTTP/1.1\r\nA: b\r\n", MR_EFORMAT, "bad line ending");
	expect_bad(false, "HTTP/1.1 20 OK\r\n\r\n", MR_EFORMAT, "bad status code");
	expect_bad(false, "HTTP/1.1 099 OK\r\n\r\n", MR_EFORMAT, "bad status code");
	expect_bad(false, "HTTP/1.1 2000 OK\r\n\r\n", MR_EFORMAT, "bad status code");
	expect_bad(false, "HTTP/1.1  200 OK\r\n\r\n", MR_EFORMAT, "bad status code");
	expect_bad(false, "HTTP/1.1 200 O\x7fK\r\n\r\n", MR_EFORMAT, "bad reason phrase");
	expect_bad(false, "HTTP/1.1200 OK\r\n\r\n", MR_EFORMAT, "bad status line");
	expect_bad(false, "ICY 200 OK\r\n\r\n", MR_EFORMAT, "bad status line");
	expect_bad(false, "GET / HTTP/1.1\r\n\r\n", MR_EFORMAT, "bad status line");
}

static void test_header_limit(void **state)
{
	char buf[4096];
	size_t n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\n");
	for (int i = 0; i < HTTP_HEADERS_MAX; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "X-%d: %d\r\n", i, i);
	snprintf(buf + n, sizeof(buf) - n, "\r\n");
	struct http_head h;
	assert_int_equal(http_parse_request(buf, strlen(buf), &h, NULL), 0);
	assert_int_equal(h.nheaders, HTTP_HEADERS_MAX);
	snprintf(buf + n, sizeof(buf) - n, "One-More: x\r\n\r\n");
	const char *why = NULL;
	assert_int_equal(http_parse_request(buf, strlen(buf), &h, &why), MR_ELIMIT);
	assert_string_equal(why, "too many header lines");
}

/* A parse never reads past len: every head, cut anywhere, parses or
 * fails cleanly (ASan checks the reads). */
static void test_cut_anywhere(void **state)
{
	size_t n = strlen(RESP);
	for (size_t i = 0; i <= n; i++) {
		char *cut = test_malloc(i ? i : 1);
		memcpy(cut, RESP, i);
		struct http_head h;
		int r = http_parse_response(cut, i, &h, NULL);
		assert_int_equal(r, i == n ? 0 : MR_EFORMAT);
		test_free(cut);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_head_end),
		cmocka_unit_test(test_request_rathole),
		cmocka_unit_test(test_response_rathole),
		cmocka_unit_test(test_proxy_replies),
		cmocka_unit_test(test_tokens),
		cmocka_unit_test(test_rejects),
		cmocka_unit_test(test_header_limit),
		cmocka_unit_test(test_cut_anywhere),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
