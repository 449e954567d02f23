/* proxy_proto: the bytes of the proxy step (src/codec/proxy_proto.c):
 * byte-exact requests, every reply path of the SOCKS5 decoder and of the
 * HTTP CONNECT check, fed whole and one byte at a time. Pure: links
 * molerat_codec alone. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include <string.h>

#include "base/err.h"
#include "codec/proxy_proto.h"

#define BYTES(...) ((const uint8_t[]){ __VA_ARGS__ }), sizeof((const uint8_t[]){ __VA_ARGS__ })

static void assert_bytes(const void *got, size_t got_len, const uint8_t *want, size_t want_len)
{
	assert_int_equal(got_len, want_len);
	assert_memory_equal(got, want, want_len);
}

/* ---- target */

static void test_target(void **state)
{
	struct proxy_target t;
	assert_int_equal(proxy_target_parse("example.com:2333", &t), 0);
	assert_string_equal(t.host, "example.com");
	assert_int_equal(t.port, 2333);
	assert_int_equal(t.atyp, SOCKS5_ATYP_DOMAIN);
	assert_string_equal(t.authority, "example.com:2333");

	assert_int_equal(proxy_target_parse("1.2.3.4:80", &t), 0);
	assert_int_equal(t.atyp, SOCKS5_ATYP_IPV4);
	assert_memory_equal(t.addr, ((uint8_t[]){ 1, 2, 3, 4 }), 4);
	assert_string_equal(t.authority, "1.2.3.4:80");

	assert_int_equal(proxy_target_parse("[::1]:443", &t), 0);
	assert_int_equal(t.atyp, SOCKS5_ATYP_IPV6);
	assert_string_equal(t.host, "::1");
	assert_int_equal(t.addr[15], 1);
	assert_string_equal(t.authority, "[::1]:443");
	/* the last ':' splits, the authority gets its brackets */
	assert_int_equal(proxy_target_parse("::1:443", &t), 0);
	assert_int_equal(t.atyp, SOCKS5_ATYP_IPV6);
	assert_string_equal(t.authority, "[::1]:443");
	/* not a strict dotted quad: a name for the proxy to resolve */
	assert_int_equal(proxy_target_parse("127.1:80", &t), 0);
	assert_int_equal(t.atyp, SOCKS5_ATYP_DOMAIN);
	assert_int_equal(proxy_target_parse("h:0080", &t), 0);
	assert_string_equal(t.authority, "h:80");

	assert_int_equal(proxy_target_parse("noport", &t), MR_EFORMAT);
	assert_int_equal(proxy_target_parse("h:", &t), MR_EFORMAT);
	assert_int_equal(proxy_target_parse(":80", &t), MR_EFORMAT);
	assert_int_equal(proxy_target_parse("h:65536", &t), MR_EFORMAT);
	char longname[300];
	memset(longname, 'a', 255);
	strcpy(longname + 255, ":1");
	assert_int_equal(proxy_target_parse(longname, &t), 0);
	assert_int_equal(strlen(t.host), 255);
	memset(longname, 'a', 256);
	strcpy(longname + 256, ":1");
	assert_int_equal(proxy_target_parse(longname, &t), MR_EFORMAT);
}

/* ---- credentials */

static void pct(const char *in, const char *want, size_t want_len)
{
	uint8_t out[64];
	ssize_t n = proxy_pct_decode(in, out, sizeof(out));
	if (n != (ssize_t)want_len)
		fail_msg("decode \"%s\": %zd bytes, expected %zu", in, n, want_len);
	assert_memory_equal(out, want, want_len);
}

static void test_pct_decode(void **state)
{
	pct("", "", 0);
	pct("plain", "plain", 5);
	pct("us%40er", "us@er", 5);
	pct("%3a%3A", "::", 2);
	pct("a%00b", "a\0b", 3);
	pct("%ff", "\xff", 1);
	/* a '%' that does not start an escape stays */
	pct("%", "%", 1);
	pct("%4", "%4", 2);
	pct("%zz", "%zz", 3);
	pct("%%41", "%A", 2);
	pct("100%", "100%", 4);
	uint8_t out[3];
	assert_int_equal(proxy_pct_decode("abc", out, 3), 3);
	assert_int_equal(proxy_pct_decode("abcd", out, 3), MR_ELIMIT);
	assert_int_equal(proxy_pct_decode("ab%41", out, 3), 3);
}

static void test_creds(void **state)
{
	struct proxy_creds c;
	const char *which = NULL;
	assert_int_equal(proxy_creds_set(&c, "", NULL, &which), 0);
	assert_false(c.present);
	assert_int_equal(proxy_creds_set(&c, NULL, NULL, &which), 0);
	assert_false(c.present);
	/* any password counts, even empty; a user alone too */
	assert_int_equal(proxy_creds_set(&c, "", "", &which), 0);
	assert_true(c.present);
	assert_int_equal(proxy_creds_set(&c, "u", NULL, &which), 0);
	assert_true(c.present);
	assert_int_equal(c.pass_len, 0);
	assert_int_equal(proxy_creds_set(&c, "my%40user", "p%3Ass", &which), 0);
	assert_true(c.present);
	assert_bytes(c.user, c.user_len, (const uint8_t *)"my@user", 7);
	assert_bytes(c.pass, c.pass_len, (const uint8_t *)"p:ss", 4);

	char big[256 * 3 + 1];
	memset(big, 'x', 255);
	big[255] = '\0';
	assert_int_equal(proxy_creds_set(&c, big, big, &which), 0);
	assert_int_equal(c.user_len, 255);
	big[255] = 'x';
	big[256] = '\0';
	assert_int_equal(proxy_creds_set(&c, "u", big, &which), MR_ELIMIT);
	assert_string_equal(which, "password");
	assert_int_equal(proxy_creds_set(&c, big, "p", &which), MR_ELIMIT);
	assert_string_equal(which, "user name");
	assert_false(c.present);
	/* the limit is on the decoded bytes */
	for (int i = 0; i < 255; i++)
		memcpy(big + 3 * i, "%41", 3);
	big[3 * 255] = '\0';
	assert_int_equal(proxy_creds_set(&c, big, NULL, &which), 0);
	assert_int_equal(c.user_len, 255);
}

/* ---- SOCKS5 requests */

static void test_socks5_requests(void **state)
{
	uint8_t g[SOCKS5_GREETING_MAX];
	assert_bytes(g, socks5_greeting(false, g), BYTES(5, 1, 0));
	assert_bytes(g, socks5_greeting(true, g), BYTES(5, 2, 0, 2));

	/* protocol.md#p-proxy's example */
	struct proxy_creds c;
	const char *which;
	assert_int_equal(proxy_creds_set(&c, "myuser", "mypass", &which), 0);
	uint8_t a[SOCKS5_AUTH_MAX];
	assert_bytes(a, socks5_auth_request(&c, a),
		     BYTES(1, 6, 'm', 'y', 'u', 's', 'e', 'r', 6, 'm', 'y', 'p', 'a', 's', 's'));
	assert_int_equal(proxy_creds_set(&c, "", "", &which), 0);
	assert_bytes(a, socks5_auth_request(&c, a), BYTES(1, 0, 0));
	char big[256];
	memset(big, 'z', 255);
	big[255] = '\0';
	assert_int_equal(proxy_creds_set(&c, big, big, &which), 0);
	size_t n = socks5_auth_request(&c, a);
	assert_int_equal(n, SOCKS5_AUTH_MAX);
	assert_int_equal(a[1], 255);
	assert_int_equal(a[257], 255);

	struct proxy_target t;
	uint8_t r[SOCKS5_CONNECT_MAX];
	assert_int_equal(proxy_target_parse("example.com:2333", &t), 0);
	assert_bytes(r, socks5_connect_request(&t, r),
		     BYTES(5, 1, 0, 3, 11, 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'c', 'o', 'm', 0x09, 0x1d));
	assert_int_equal(proxy_target_parse("1.2.3.4:80", &t), 0);
	assert_bytes(r, socks5_connect_request(&t, r), BYTES(5, 1, 0, 1, 1, 2, 3, 4, 0, 80));
	assert_int_equal(proxy_target_parse("[2001:db8::7]:65535", &t), 0);
	assert_bytes(r, socks5_connect_request(&t, r),
		     BYTES(5, 1, 0, 4, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0xff, 0xff));
	char longname[300];
	memset(longname, 'n', 255);
	strcpy(longname + 255, ":258");
	assert_int_equal(proxy_target_parse(longname, &t), 0);
	n = socks5_connect_request(&t, r);
	assert_int_equal(n, SOCKS5_CONNECT_MAX);
	assert_int_equal(r[4], 255);
	assert_int_equal(r[n - 2], 1);
	assert_int_equal(r[n - 1], 2);
}

/* ---- SOCKS5 replies */

/* Feeds in whole, then one byte at a time; both must agree. Returns the
 * decoder after the whole feed; *used gets its consumption. */
static void feed_both(enum socks5_reply_kind kind, bool creds, const uint8_t *in, size_t len,
		      struct socks5_dec *out, ssize_t *ret)
{
	struct socks5_dec d, e;
	socks5_dec_init(&d, kind, creds);
	*ret = socks5_dec_feed(&d, in, len);
	socks5_dec_init(&e, kind, creds);
	ssize_t total = 0, r = 0;
	for (size_t i = 0; i < len; i++) {
		size_t need = socks5_dec_need(&e);
		r = socks5_dec_feed(&e, in + i, 1);
		if (r < 0)
			break;
		assert_true(r <= 1);
		assert_true(r == 0 || need >= 1);
		total += r;
		if (r == 0)
			break;
	}
	assert_int_equal(e.state, d.state);
	assert_int_equal(e.err, d.err);
	assert_int_equal(e.code, d.code);
	if (*ret >= 0)
		assert_int_equal(total, *ret);
	else
		assert_int_equal(r, MR_EPROXY);
	*out = d;
}

static void reply_ok(enum socks5_reply_kind kind, bool creds, const uint8_t *in, size_t len, size_t whole,
		     uint8_t code)
{
	struct socks5_dec d;
	ssize_t r;
	feed_both(kind, creds, in, len, &d, &r);
	assert_int_equal(r, whole);
	assert_int_equal(d.state, S5D_DONE);
	assert_int_equal(d.code, code);
	assert_int_equal(socks5_dec_need(&d), 0);
	/* a whole reply cut short is not done */
	struct socks5_dec s;
	socks5_dec_init(&s, kind, creds);
	assert_int_equal(socks5_dec_feed(&s, in, whole - 1), whole - 1);
	assert_int_equal(socks5_dec_need(&s), 1);
	assert_true(s.state != S5D_DONE && s.state != S5D_FAILED);
	/* done: more bytes are not its */
	assert_int_equal(socks5_dec_feed(&d, in, len), 0);
}

static void reply_bad(enum socks5_reply_kind kind, bool creds, const uint8_t *in, size_t len,
		      enum socks5_dec_err err, const char *text)
{
	struct socks5_dec d;
	ssize_t r;
	feed_both(kind, creds, in, len, &d, &r);
	assert_int_equal(r, MR_EPROXY);
	assert_int_equal(d.state, S5D_FAILED);
	assert_int_equal(d.err, err);
	assert_int_equal(socks5_dec_need(&d), 0);
	assert_int_equal(socks5_dec_feed(&d, in, len), MR_EPROXY);
	char buf[256];
	socks5_dec_strerror(&d, "example.com:2333", buf, sizeof(buf));
	if (!strstr(buf, text))
		fail_msg("\"%s\" does not hold \"%s\"", buf, text);
	/* a short buffer gets a terminated text */
	char tiny[8];
	memset(tiny, 'x', sizeof(tiny));
	socks5_dec_strerror(&d, "example.com:2333", tiny, sizeof(tiny));
	assert_int_equal(strlen(tiny), 7);
}

static void test_socks5_method_reply(void **state)
{
	uint8_t ok0[] = { 5, 0, 0xaa };
	reply_ok(SOCKS5_METHOD_REPLY, false, ok0, sizeof(ok0), 2, 0);
	reply_ok(SOCKS5_METHOD_REPLY, true, ok0, sizeof(ok0), 2, 0);
	uint8_t ok2[] = { 5, 2 };
	reply_ok(SOCKS5_METHOD_REPLY, true, ok2, sizeof(ok2), 2, 2);
	reply_bad(SOCKS5_METHOD_REPLY, false, BYTES(5, 2), S5E_NEED_AUTH, "asks for a user name and password");
	reply_bad(SOCKS5_METHOD_REPLY, false, BYTES(5, 0xff), S5E_NO_METHOD,
		  "accepts none of the authentication methods offered (none; does it need");
	reply_bad(SOCKS5_METHOD_REPLY, true, BYTES(5, 0xff), S5E_NO_METHOD,
		  "(none, user name/password)");
	reply_bad(SOCKS5_METHOD_REPLY, true, BYTES(5, 1), S5E_BAD_METHOD, "method 0x01, which was not offered");
	reply_bad(SOCKS5_METHOD_REPLY, false, BYTES(4, 0), S5E_VERSION, "version byte 0x04 (expected 0x05)");
	reply_bad(SOCKS5_METHOD_REPLY, false, BYTES('H', 'T', 'T', 'P'), S5E_VERSION, "use http://");
	struct socks5_dec d;
	socks5_dec_init(&d, SOCKS5_METHOD_REPLY, false);
	assert_int_equal(socks5_dec_need(&d), 2);
	assert_int_equal(socks5_dec_feed(&d, NULL, 0), 0);
}

static void test_socks5_auth_reply(void **state)
{
	uint8_t ok[] = { 1, 0 };
	reply_ok(SOCKS5_AUTH_REPLY, true, ok, sizeof(ok), 2, 0);
	reply_bad(SOCKS5_AUTH_REPLY, true, BYTES(1, 1), S5E_AUTH_DENIED,
		  "rejected the user name and password (status 0x01)");
	reply_bad(SOCKS5_AUTH_REPLY, true, BYTES(1, 0xff), S5E_AUTH_DENIED, "(status 0xff)");
	reply_bad(SOCKS5_AUTH_REPLY, true, BYTES(5, 0), S5E_VERSION, "the SOCKS5 user name and password with "
								     "version byte 0x05 (expected 0x01)");
}

static void test_socks5_connect_reply(void **state)
{
	uint8_t v4[] = { 5, 0, 0, 1, 127, 0, 0, 1, 0x1f, 0x90, 0xee };
	reply_ok(SOCKS5_CONNECT_REPLY, false, v4, sizeof(v4), 10, 0);
	uint8_t v6[4 + 16 + 2 + 1] = { 5, 0, 0, 4 };
	reply_ok(SOCKS5_CONNECT_REPLY, false, v6, sizeof(v6), 22, 0);
	uint8_t name[] = { 5, 0, 0, 3, 5, 'h', 'e', 'l', 'l', 'o', 0, 80, 'X', 'Y' };
	reply_ok(SOCKS5_CONNECT_REPLY, true, name, sizeof(name), 12, 0);
	uint8_t empty_name[] = { 5, 0, 0, 3, 0, 0, 80 };
	reply_ok(SOCKS5_CONNECT_REPLY, true, empty_name, sizeof(empty_name), 7, 0);
	uint8_t long_name[4 + 1 + 255 + 2] = { 5, 0, 0, 3, 255 };
	reply_ok(SOCKS5_CONNECT_REPLY, true, long_name, sizeof(long_name), sizeof(long_name), 0);
	/* RSV is not checked */
	uint8_t rsv[] = { 5, 0, 9, 1, 1, 1, 1, 1, 0, 1 };
	reply_ok(SOCKS5_CONNECT_REPLY, false, rsv, sizeof(rsv), 10, 0);

	static const char *const names[] = {
		NULL, "general SOCKS server failure", "connection not allowed by ruleset", "network unreachable",
		"host unreachable", "connection refused", "TTL expired", "command not supported",
		"address type not supported",
	};
	for (uint8_t rep = 1; rep <= 8; rep++) {
		uint8_t in[] = { 5, rep, 0, 1, 0, 0, 0, 0, 0, 0 };
		char want[128];
		snprintf(want, sizeof(want), "refused the connection to example.com:2333: %s (reply %u)", names[rep],
			 rep);
		reply_bad(SOCKS5_CONNECT_REPLY, false, in, sizeof(in), S5E_REFUSED, want);
		assert_string_equal(socks5_reply_name(rep), names[rep]);
	}
	assert_null(socks5_reply_name(0));
	assert_null(socks5_reply_name(9));
	assert_null(socks5_reply_name(0xff));
	reply_bad(SOCKS5_CONNECT_REPLY, false, BYTES(5, 9, 0, 1), S5E_REFUSED, "unknown reply code 0x09");
	reply_bad(SOCKS5_CONNECT_REPLY, false, BYTES(5, 0, 0, 2, 1, 2), S5E_ATYP, "unknown address type 0x02");
	reply_bad(SOCKS5_CONNECT_REPLY, false, BYTES(0, 0, 0, 0), S5E_VERSION, "version byte 0x00");
	/* the decision comes with the byte that makes it: a bad version is
	 * known only once the head is whole */
	struct socks5_dec d;
	socks5_dec_init(&d, SOCKS5_CONNECT_REPLY, false);
	assert_int_equal(socks5_dec_need(&d), 4);
	assert_int_equal(socks5_dec_feed(&d, (const uint8_t *)"\x05\x00\x00", 3), 3);
	assert_int_equal(socks5_dec_need(&d), 1);
	assert_int_equal(socks5_dec_feed(&d, (const uint8_t *)"\x03", 1), 1);
	assert_int_equal(d.state, S5D_NAME_LEN);
	assert_int_equal(socks5_dec_feed(&d, (const uint8_t *)"\x02", 1), 1);
	assert_int_equal(socks5_dec_need(&d), 4);
}

/* ---- HTTP CONNECT */

static void test_http_request(void **state)
{
	struct proxy_target t;
	struct proxy_creds c;
	const char *which;
	char out[HTTP_CONNECT_REQ_MAX];
	assert_int_equal(proxy_target_parse("example.com:2333", &t), 0);
	size_t n = http_connect_request(&t, NULL, out);
	const char *want = "CONNECT example.com:2333 HTTP/1.1\r\nHost: example.com:2333\r\n"
			   "Proxy-Connection: Keep-Alive\r\n\r\n";
	assert_int_equal(n, strlen(want));
	assert_memory_equal(out, want, n);
	assert_int_equal(proxy_creds_set(&c, "", NULL, &which), 0);
	assert_int_equal(http_connect_request(&t, &c, out), strlen(want));

	/* protocol.md#p-proxy's example */
	assert_int_equal(proxy_creds_set(&c, "myuser", "mypass", &which), 0);
	n = http_connect_request(&t, &c, out);
	want = "CONNECT example.com:2333 HTTP/1.1\r\nHost: example.com:2333\r\nProxy-Connection: Keep-Alive\r\n"
	       "Proxy-Authorization: Basic bXl1c2VyOm15cGFzcw==\r\n\r\n";
	assert_int_equal(n, strlen(want));
	assert_memory_equal(out, want, n);

	/* decoded credentials: "us@er:p:w" */
	assert_int_equal(proxy_creds_set(&c, "us%40er", "p%3Aw", &which), 0);
	assert_int_equal(proxy_target_parse("[::1]:80", &t), 0);
	n = http_connect_request(&t, &c, out);
	want = "CONNECT [::1]:80 HTTP/1.1\r\nHost: [::1]:80\r\nProxy-Connection: Keep-Alive\r\n"
	       "Proxy-Authorization: Basic dXNAZXI6cDp3\r\n\r\n";
	assert_int_equal(n, strlen(want));
	assert_memory_equal(out, want, n);

	/* the largest request fits */
	char big[256], longname[300];
	memset(big, 'q', 255);
	big[255] = '\0';
	memset(longname, 'n', 253);
	strcpy(longname + 253, "::65535");  /* a host with a ':' gets brackets */
	assert_int_equal(proxy_target_parse(longname, &t), 0);
	assert_int_equal(strlen(t.authority), PROXY_AUTHORITY_MAX - 1);
	assert_int_equal(proxy_creds_set(&c, big, big, &which), 0);
	n = http_connect_request(&t, &c, out);
	assert_true(n <= HTTP_CONNECT_REQ_MAX);
	assert_true(n > 2 * 255 + 684);
}

/* Checks every prefix of s: MORE until the head is whole, then res. */
static void http_res(const char *s, size_t len, enum http_connect_res res, int status)
{
	struct http_connect_reply r;
	enum http_connect_res got = http_connect_check(s, len, &r);
	if (got != res)
		fail_msg("\"%.*s\": %d, expected %d (%s)", (int)len, s, got, res, r.why ? r.why : "");
	if (res == HCR_OPEN || res == HCR_STATUS)
		assert_int_equal(r.status, status);
	else if (res != HCR_MORE)
		assert_non_null(r.why);
}

static void http_res_split(const char *s, enum http_connect_res res, int status)
{
	size_t len = strlen(s);
	for (size_t i = 1; i < len; i++) {
		struct http_connect_reply r;
		enum http_connect_res got = http_connect_check(s, i, &r);
		if (got != HCR_MORE && !(res == HCR_GARBAGE && got == HCR_GARBAGE))
			fail_msg("\"%.*s\" (prefix %zu): %d, expected MORE", (int)i, s, i, got);
	}
	http_res(s, len, res, status);
}

static void test_http_response(void **state)
{
	http_res_split("HTTP/1.1 200 Connection established\r\n\r\n", HCR_OPEN, 200);
	http_res_split("HTTP/1.0 200 OK\r\nProxy-agent: tinyproxy/1.11.1\r\n\r\n", HCR_OPEN, 200);
	http_res_split("HTTP/1.1 204 No Content\n\n", HCR_OPEN, 204);
	http_res_split("HTTP/1.1 200\r\n\r\n", HCR_OPEN, 200);
	http_res_split("HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"x\"\r\n\r\n",
		       HCR_STATUS, 407);
	struct http_connect_reply r;
	const char *s = "HTTP/1.1 403 Access violation\r\nContent-Length: 5\r\n\r\nhello";
	assert_int_equal(http_connect_check(s, strlen(s), &r), HCR_STATUS);
	assert_int_equal(r.status, 403);
	assert_string_equal(r.reason, "Access violation");

	/* bytes after a 200 head: garbage */
	s = "HTTP/1.1 200 OK\r\n\r\nSSH-2.0";
	assert_int_equal(http_connect_check(s, strlen(s), &r), HCR_GARBAGE);
	assert_int_equal(r.extra, 7);
	assert_int_equal(r.status, 200);

	/* not HTTP: known at the first byte that differs */
	http_res("S", 1, HCR_GARBAGE, 0);
	http_res("HTTX", 4, HCR_GARBAGE, 0);
	http_res("\x05\x00", 2, HCR_GARBAGE, 0);
	http_res("HTTP", 4, HCR_MORE, 0);
	http_res("", 0, HCR_MORE, 0);
	http_res_split("HTTP/1.1 abc\r\n\r\n", HCR_GARBAGE, 0);
	http_res_split("HTTP/1.1 200 OK\r\n bad: fold\r\n\r\n", HCR_GARBAGE, 0);

	/* sizes: 4096 bytes of head at most, 16 header lines */
	static char big[HTTP_CONNECT_HEAD_MAX + 64];
	size_t n = (size_t)snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\nX: ");
	memset(big + n, 'v', HTTP_CONNECT_HEAD_MAX - n - 6);
	n = HTTP_CONNECT_HEAD_MAX - 6;
	memcpy(big + n, "\r\n\r\n", 4);
	http_res(big, n + 4, HCR_OPEN, 200);
	memset(big + n, 'v', 4);
	memcpy(big + n + 2, "\r\n\r\n", 4);  /* a head of exactly 4096 */
	http_res(big, HTTP_CONNECT_HEAD_MAX, HCR_OPEN, 200);
	memset(big + n, 'v', 6);
	http_res(big, HTTP_CONNECT_HEAD_MAX - 1, HCR_MORE, 0);
	http_res(big, HTTP_CONNECT_HEAD_MAX, HCR_TOO_BIG, 0);

	n = (size_t)snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\n");
	for (int i = 0; i < 16; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "H%d: v\r\n", i);
	memcpy(big + n, "\r\n", 2);
	http_res(big, n + 2, HCR_OPEN, 200);
	n += (size_t)snprintf(big + n, sizeof(big) - n, "H16: v\r\n\r\n");
	http_res(big, n, HCR_TOO_BIG, 0);
	n = (size_t)snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\n");
	for (int i = 0; i < 40; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "H%d: v\r\n", i);
	n += (size_t)snprintf(big + n, sizeof(big) - n, "\r\n");
	http_res(big, n, HCR_TOO_BIG, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_target),
		cmocka_unit_test(test_pct_decode),
		cmocka_unit_test(test_creds),
		cmocka_unit_test(test_socks5_requests),
		cmocka_unit_test(test_socks5_method_reply),
		cmocka_unit_test(test_socks5_auth_reply),
		cmocka_unit_test(test_socks5_connect_reply),
		cmocka_unit_test(test_http_request),
		cmocka_unit_test(test_http_response),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
