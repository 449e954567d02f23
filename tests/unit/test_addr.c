/* addr: host:port splitting, IP literals, formatting and comparison of
 * socket addresses as values (src/codec/addr.c). Pure: no socket is
 * opened, so this test links molerat_codec alone. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "base/err.h"
#include "codec/addr.h"

/* ---- addr_split_host_port ---- */

static void split_ok(const char *in, const char *host, uint16_t port)
{
	char h[256];
	uint16_t p = 1;
	memset(h, 'x', sizeof(h));
	int r = addr_split_host_port(in, h, sizeof(h), &p);
	if (r != 0)
		fail_msg("split \"%s\": %d", in, r);
	assert_string_equal(h, host);
	assert_int_equal(p, port);
}

static void split_bad(const char *in)
{
	char h[256] = "untouched";
	uint16_t p = 4242;
	int r = addr_split_host_port(in, h, sizeof(h), &p);
	if (r != MR_EFORMAT)
		fail_msg("split \"%s\": expected MR_EFORMAT, got %d (host \"%s\")", in, r, h);
	assert_string_equal(h, "untouched");
	assert_int_equal(p, 4242);
}

static void test_split_valid(void **state)
{
	split_ok("127.0.0.1:80", "127.0.0.1", 80);
	split_ok("example.com:2333", "example.com", 2333);
	split_ok("[::1]:80", "::1", 80);
	split_ok("[fe80::1%2]:443", "fe80::1%2", 443);
	/* last ':' wins, as rathole's resolver splits */
	split_ok("::1:80", "::1", 80);
	split_ok("a:b:7", "a:b", 7);
	split_ok("h:0", "h", 0);
	split_ok("h:65535", "h", 65535);
	split_ok("h:0080", "h", 80);
	split_ok("h:000000000000000000000001", "h", 1);
	split_ok("0.0.0.0:2333", "0.0.0.0", 2333);
	split_ok("x:1", "x", 1);
}

static void test_split_invalid(void **state)
{
	split_bad("");
	split_bad("noport");
	split_bad("[::1]");
	split_bad("h:");
	split_bad(":");
	split_bad(":80");
	split_bad("[]:80");
	split_bad("h:65536");
	split_bad("h:99999999999999999999999");
	split_bad("h:8x");
	split_bad("h:x8");
	split_bad("h: 80");
	split_bad("h:80 ");
	split_bad("h:+80");
	split_bad("h:-1");
	split_bad("h:0x50");
	split_bad("[::1:80");
	split_bad("::1]:80");
	split_bad("[::1]x:80");
	split_bad("a[b]:80");
	split_bad("[a]b]:80");
	split_bad("[[::1]]:80");
}

static void test_split_hostcap(void **state)
{
	char h[5];
	uint16_t p = 0;
	assert_int_equal(addr_split_host_port("abcd:1", h, sizeof(h), &p), 0);
	assert_string_equal(h, "abcd");
	assert_int_equal(p, 1);
	assert_int_equal(addr_split_host_port("abcde:1", h, sizeof(h), &p), MR_EFORMAT);
	assert_int_equal(addr_split_host_port("[abcd]:2", h, sizeof(h), &p), 0);
	assert_string_equal(h, "abcd");
	assert_int_equal(p, 2);
	assert_int_equal(addr_split_host_port("[abcde]:2", h, sizeof(h), &p), MR_EFORMAT);
	assert_int_equal(addr_split_host_port("a:1", h, 1, &p), MR_EFORMAT);
	assert_int_equal(addr_split_host_port("a:1", h, 0, &p), MR_EFORMAT);
}

/* ---- literals and formatting ---- */

static void test_literal_v4(void **state)
{
	struct addr a;
	assert_int_equal(addr_from_literal("127.0.0.1", 8080, &a), 0);
	assert_int_equal(a.ss.ss_family, AF_INET);
	assert_int_equal(a.len, sizeof(struct sockaddr_in));
	const struct sockaddr_in *in4 = (const struct sockaddr_in *)&a.ss;
	assert_int_equal(ntohl(in4->sin_addr.s_addr), 0x7f000001);
	assert_int_equal(ntohs(in4->sin_port), 8080);
	assert_int_equal(addr_port(&a), 8080);

	assert_int_equal(addr_from_literal("0.0.0.0", 0, &a), 0);
	assert_int_equal(a.ss.ss_family, AF_INET);
	assert_int_equal(addr_from_literal("255.255.255.255", 65535, &a), 0);
	assert_int_equal(addr_port(&a), 65535);
}

static void test_literal_v6(void **state)
{
	struct addr a;
	assert_int_equal(addr_from_literal("::1", 443, &a), 0);
	assert_int_equal(a.ss.ss_family, AF_INET6);
	assert_int_equal(a.len, sizeof(struct sockaddr_in6));
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&a.ss;
	assert_true(IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr));
	assert_int_equal(ntohs(in6->sin6_port), 443);
	assert_int_equal(in6->sin6_scope_id, 0);

	assert_int_equal(addr_from_literal("fe80::1%2", 1, &a), 0);
	assert_int_equal(in6->sin6_scope_id, 2);
	assert_int_equal(addr_from_literal("::ffff:1.2.3.4", 1, &a), 0);
	assert_int_equal(a.ss.ss_family, AF_INET6);
	assert_int_equal(addr_from_literal("2001:db8:0:0:0:0:0:1", 1, &a), 0);
}

static void test_literal_invalid(void **state)
{
	static const char *const bad[] = {
		"", "localhost", "example.com", "127.1", "0x7f.0.0.1", "1.2.3.4.5",
		"256.1.1.1", " 1.2.3.4", "1.2.3.4 ", "[::1]", "::1%", "::1%eth0",
		"::1%-1", "::1%99999999999", "%1", ":::", "1::2::3", "::1%1%2",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct addr a;
		memset(&a, 0xAB, sizeof(a));
		int r = addr_from_literal(bad[i], 80, &a);
		if (r != MR_EFORMAT)
			fail_msg("literal \"%s\": expected MR_EFORMAT, got %d", bad[i], r);
	}
}

static void test_addr_str(void **state)
{
	struct addr a;
	char buf[ADDR_STRLEN];
	assert_int_equal(addr_from_literal("1.2.3.4", 5, &a), 0);
	assert_ptr_equal(addr_str(&a, buf, sizeof(buf)), buf);
	assert_string_equal(buf, "1.2.3.4:5");
	assert_int_equal(addr_from_literal("::1", 5, &a), 0);
	assert_string_equal(addr_str(&a, buf, sizeof(buf)), "[::1]:5");
	assert_int_equal(addr_from_literal("fe80::1%2", 65535, &a), 0);
	assert_string_equal(addr_str(&a, buf, sizeof(buf)), "[fe80::1%2]:65535");
	assert_int_equal(addr_from_literal("255.255.255.255", 65535, &a), 0);
	assert_string_equal(addr_str(&a, buf, sizeof(buf)), "255.255.255.255:65535");
	/* the longest IPv6 text still fits */
	assert_int_equal(addr_from_literal("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff%4294967295", 65535, &a), 0);
	addr_str(&a, buf, sizeof(buf));
	assert_true(strlen(buf) < sizeof(buf));
	assert_string_equal(buf, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff%4294967295]:65535");

	/* a short buffer is truncated, NUL-terminated */
	char small[6];
	assert_int_equal(addr_from_literal("1.2.3.4", 5, &a), 0);
	assert_string_equal(addr_str(&a, small, sizeof(small)), "1.2.3");

	/* another family */
	memset(&a, 0, sizeof(a));
	a.ss.ss_family = AF_UNIX;
	a.len = sizeof(struct sockaddr_un);
	assert_string_equal(addr_str(&a, buf, sizeof(buf)), "<family 1>");
}

static void test_addr_roundtrip(void **state)
{
	static const char *const in[] = { "10.0.0.1:1", "[::]:0", "[2001:db8::5]:2333", "[fe80::a%7]:80" };
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		char host[64], buf[ADDR_STRLEN];
		uint16_t port;
		struct addr a, b;
		assert_int_equal(addr_split_host_port(in[i], host, sizeof(host), &port), 0);
		assert_int_equal(addr_from_literal(host, port, &a), 0);
		assert_string_equal(addr_str(&a, buf, sizeof(buf)), in[i]);
		assert_int_equal(addr_split_host_port(buf, host, sizeof(host), &port), 0);
		assert_int_equal(addr_from_literal(host, port, &b), 0);
		assert_true(addr_equal(&a, &b));
	}
}

static void test_addr_port_equal(void **state)
{
	struct addr a, b;
	assert_int_equal(addr_from_literal("127.0.0.1", 1, &a), 0);
	assert_int_equal(addr_from_literal("127.0.0.1", 2, &b), 0);
	assert_false(addr_equal(&a, &b));
	addr_set_port(&b, 1);
	assert_int_equal(addr_port(&b), 1);
	assert_true(addr_equal(&a, &b));
	assert_int_equal(addr_from_literal("127.0.0.2", 1, &b), 0);
	assert_false(addr_equal(&a, &b));
	assert_int_equal(addr_from_literal("::1", 1, &b), 0);
	assert_false(addr_equal(&a, &b));
	assert_int_equal(addr_from_literal("::1", 1, &a), 0);
	assert_true(addr_equal(&a, &b));
	assert_int_equal(addr_from_literal("::1%3", 1, &a), 0);
	assert_false(addr_equal(&a, &b));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_valid),
		cmocka_unit_test(test_split_invalid),
		cmocka_unit_test(test_split_hostcap),
		cmocka_unit_test(test_literal_v4),
		cmocka_unit_test(test_literal_v6),
		cmocka_unit_test(test_literal_invalid),
		cmocka_unit_test(test_addr_str),
		cmocka_unit_test(test_addr_roundtrip),
		cmocka_unit_test(test_addr_port_equal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
