/* Unit tests for proto: every hex example of protocol.md#p-messages and protocol.md#p-test-vectors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "codec/proto.h"

/* Hex string (no separators) to bytes; returns the length. */
static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = strlen(hex);
	assert_int_equal(n % 2, 0);
	assert_true(n / 2 <= cap);
	for (size_t i = 0; i < n / 2; i++) {
		unsigned v;
		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
	return n / 2;
}

static void assert_hex(const uint8_t *got, size_t len, const char *want)
{
	char buf[1024];
	assert_true(len * 2 < sizeof(buf));
	for (size_t i = 0; i < len; i++)
		snprintf(buf + 2 * i, 3, "%02x", got[i]);
	buf[len * 2] = '\0';
	assert_string_equal(buf, want);
}

/* An exact-size heap copy, so ASan catches any read past the end. */
static uint8_t *exact_copy(const uint8_t *p, size_t n)
{
	uint8_t *c = malloc(n ? n : 1);
	assert_non_null(c);
	memcpy(c, p, n);
	return c;
}

#define NONCE_HEX "6b1f0e3a9c2d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7"
#define SVC_HEX "e20655976b0b281da642b3acc136a6ede1ab2c7428bf8b3f3b3e99364c327594"
#define SKEY_HEX "b185aa077d741280eec9abc34982ba6cf433eec9a1fc523c2aeba06613c0c247"

static void test_service_digests(void **state)
{
	(void)state;
	static const struct { const char *name, *hex; } v[] = {
		{ "my_nas_ssh", SVC_HEX },
		{ "echo", "092c79e8f80e559e404bcf660c48f3522b67aba9ff1484b0367e1a4ddef7431d" },
		{ "foo1", "bb4eca334f61af3b67b5d528907d30285151610200539302f4c8cabe66225b53" },
		{ "default", "37a8eec1ce19687d132fe29051dca629d164e2c4958ba141d5f4133a33f0688f" },
		{ "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		uint8_t d[PROTO_DIGEST_LEN];
		proto_service_digest(v[i].name, strlen(v[i].name), d);
		assert_hex(d, sizeof(d), v[i].hex);
	}
}

static void test_session_keys(void **state)
{
	(void)state;
	uint8_t nonce[PROTO_DIGEST_LEN], key[PROTO_DIGEST_LEN];
	unhex(NONCE_HEX, nonce, sizeof(nonce));
	const char *tok = "example-token-123";
	proto_session_key(tok, strlen(tok), nonce, key);
	assert_hex(key, sizeof(key), SKEY_HEX);

	for (int i = 0; i < 32; i++)
		nonce[i] = (uint8_t)i;
	tok = "use_a_secret_that_only_you_know";
	proto_session_key(tok, strlen(tok), nonce, key);
	assert_hex(key, sizeof(key), "bef2b5e63e0497c6e46d2ea0bd43f4caa99183f6ede0bd91f75e5baa61ea661d");
}

static void test_digest_equal_and_random(void **state)
{
	(void)state;
	uint8_t a[PROTO_DIGEST_LEN], b[PROTO_DIGEST_LEN];
	unhex(SKEY_HEX, a, sizeof(a));
	memcpy(b, a, sizeof(a));
	assert_int_equal(proto_digest_equal(a, b), 1);
	b[31] ^= 1;
	assert_int_equal(proto_digest_equal(a, b), 0);
	b[31] ^= 1;
	b[0] ^= 0x80;
	assert_int_equal(proto_digest_equal(a, b), 0);

	uint8_t r1[PROTO_DIGEST_LEN], r2[PROTO_DIGEST_LEN];
	assert_int_equal(proto_random(r1, sizeof(r1)), 0);
	assert_int_equal(proto_random(r2, sizeof(r2)), 0);
	assert_int_equal(proto_digest_equal(r1, r2), 0);
}

static void test_hello_encode(void **state)
{
	(void)state;
	uint8_t d[PROTO_DIGEST_LEN], out[PROTO_HELLO_LEN];

	proto_service_digest("my_nas_ssh", 10, d);
	proto_encode_hello(out, PROTO_HELLO_CONTROL, d);
	assert_hex(out, sizeof(out), "00000000" "01" SVC_HEX);

	unhex(NONCE_HEX, d, sizeof(d));
	proto_encode_hello(out, PROTO_HELLO_CONTROL, d);
	assert_hex(out, sizeof(out), "00000000" "01" NONCE_HEX);

	unhex(SKEY_HEX, d, sizeof(d));
	proto_encode_hello(out, PROTO_HELLO_DATA, d);
	assert_hex(out, sizeof(out), "01000000" "01" SKEY_HEX);
}

static void test_hello_decode(void **state)
{
	(void)state;
	uint8_t raw[64], d[PROTO_DIGEST_LEN], want[PROTO_DIGEST_LEN];
	enum proto_hello_kind kind = (enum proto_hello_kind)99;

	size_t n = unhex("0000000001" SVC_HEX, raw, sizeof(raw));
	assert_int_equal(n, PROTO_HELLO_LEN);
	uint8_t *c = exact_copy(raw, n);
	assert_int_equal(proto_decode_hello(c, n, &kind, d), 0);
	free(c);
	assert_int_equal(kind, PROTO_HELLO_CONTROL);
	unhex(SVC_HEX, want, sizeof(want));
	assert_memory_equal(d, want, sizeof(want));

	n = unhex("0100000001" SKEY_HEX, raw, sizeof(raw));
	c = exact_copy(raw, n);
	assert_int_equal(proto_decode_hello(c, n, &kind, d), 0);
	free(c);
	assert_int_equal(kind, PROTO_HELLO_DATA);
	unhex(SKEY_HEX, want, sizeof(want));
	assert_memory_equal(d, want, sizeof(want));

	/* trailing bytes are ignored */
	raw[37] = 0xaa;
	assert_int_equal(proto_decode_hello(raw, 38, &kind, d), 0);
	assert_int_equal(kind, PROTO_HELLO_DATA);
}

static void test_hello_reject(void **state)
{
	(void)state;
	uint8_t raw[PROTO_HELLO_LEN], d[PROTO_DIGEST_LEN], before[PROTO_DIGEST_LEN];
	enum proto_hello_kind kind = PROTO_HELLO_DATA;
	unhex("0000000001" SVC_HEX, raw, sizeof(raw));
	memset(d, 0x5a, sizeof(d));
	memcpy(before, d, sizeof(d));

	/* every short length */
	for (size_t n = 0; n < PROTO_HELLO_LEN; n++) {
		uint8_t *c = exact_copy(raw, n);
		assert_int_equal(proto_decode_hello(c, n, &kind, d), MR_EPROTO_SHORT);
		free(c);
	}
	/* versions 0 and 2 */
	raw[4] = 0;
	assert_int_equal(proto_decode_hello(raw, sizeof(raw), &kind, d), MR_EPROTO_VERSION);
	raw[4] = 2;
	assert_int_equal(proto_decode_hello(raw, sizeof(raw), &kind, d), MR_EPROTO_VERSION);
	raw[4] = 0xff;
	assert_int_equal(proto_decode_hello(raw, sizeof(raw), &kind, d), MR_EPROTO_VERSION);
	raw[4] = 1;
	/* tags 2, 0x100, and "GET " (0x20544547 = 542393671) */
	raw[0] = 2;
	assert_int_equal(proto_decode_hello(raw, sizeof(raw), &kind, d), MR_EPROTO_TAG);
	raw[0] = 0;
	raw[1] = 1;
	assert_int_equal(proto_decode_hello(raw, sizeof(raw), &kind, d), MR_EPROTO_TAG);
	memcpy(raw, "GET ", 4);
	assert_int_equal(proto_decode_hello(raw, sizeof(raw), &kind, d), MR_EPROTO_TAG);
	/* the tag is checked before the version (bincode order) */
	raw[4] = 7;
	assert_int_equal(proto_decode_hello(raw, sizeof(raw), &kind, d), MR_EPROTO_TAG);
	/* outputs untouched on failure */
	assert_int_equal(kind, PROTO_HELLO_DATA);
	assert_memory_equal(d, before, sizeof(d));
}

static void test_cmds(void **state)
{
	(void)state;
	uint8_t b[4];
	proto_encode_u32(b, PROTO_ACK_OK);
	assert_hex(b, 4, "00000000");
	proto_encode_u32(b, PROTO_ACK_SERVICE_NOT_EXIST);
	assert_hex(b, 4, "01000000");
	proto_encode_u32(b, PROTO_ACK_AUTH_FAILED);
	assert_hex(b, 4, "02000000");
	proto_encode_u32(b, PROTO_CMD_CREATE_DATA_CHANNEL);
	assert_hex(b, 4, "00000000");
	proto_encode_u32(b, PROTO_CMD_HEARTBEAT);
	assert_hex(b, 4, "01000000");
	proto_encode_u32(b, PROTO_DATA_START_TCP);
	assert_hex(b, 4, "00000000");
	proto_encode_u32(b, PROTO_DATA_START_UDP);
	assert_hex(b, 4, "01000000");
	proto_encode_u32(b, 0x04030201u);
	assert_hex(b, 4, "01020304");

	enum proto_ack ack;
	enum proto_ctrl_cmd cc;
	enum proto_data_cmd dc;
	static const uint8_t v0[4] = { 0, 0, 0, 0 }, v1[4] = { 1, 0, 0, 0 }, v2[4] = { 2, 0, 0, 0 },
			     v3[4] = { 3, 0, 0, 0 };
	assert_int_equal(proto_decode_ack(v0, 4, &ack), 0);
	assert_int_equal(ack, PROTO_ACK_OK);
	assert_int_equal(proto_decode_ack(v1, 4, &ack), 0);
	assert_int_equal(ack, PROTO_ACK_SERVICE_NOT_EXIST);
	assert_int_equal(proto_decode_ack(v2, 4, &ack), 0);
	assert_int_equal(ack, PROTO_ACK_AUTH_FAILED);
	assert_int_equal(proto_decode_ack(v3, 4, &ack), MR_EPROTO_TAG);
	assert_int_equal(ack, PROTO_ACK_AUTH_FAILED);

	assert_int_equal(proto_decode_ctrl_cmd(v0, 4, &cc), 0);
	assert_int_equal(cc, PROTO_CMD_CREATE_DATA_CHANNEL);
	assert_int_equal(proto_decode_ctrl_cmd(v1, 4, &cc), 0);
	assert_int_equal(cc, PROTO_CMD_HEARTBEAT);
	assert_int_equal(proto_decode_ctrl_cmd(v2, 4, &cc), MR_EPROTO_TAG);

	assert_int_equal(proto_decode_data_cmd(v0, 4, &dc), 0);
	assert_int_equal(dc, PROTO_DATA_START_TCP);
	assert_int_equal(proto_decode_data_cmd(v1, 4, &dc), 0);
	assert_int_equal(dc, PROTO_DATA_START_UDP);
	assert_int_equal(proto_decode_data_cmd(v2, 4, &dc), MR_EPROTO_TAG);

	/* "GET " and high bytes: unknown tags */
	const uint8_t *get = (const uint8_t *)"GET ";
	assert_int_equal(proto_decode_ack(get, 4, &ack), MR_EPROTO_TAG);
	assert_int_equal(proto_decode_ctrl_cmd(get, 4, &cc), MR_EPROTO_TAG);
	assert_int_equal(proto_decode_data_cmd(get, 4, &dc), MR_EPROTO_TAG);
	static const uint8_t hi[4] = { 0, 0, 0, 1 };
	assert_int_equal(proto_decode_ack(hi, 4, &ack), MR_EPROTO_TAG);

	/* short inputs, each length on an exact-size buffer */
	for (size_t n = 0; n < 4; n++) {
		uint8_t *c = exact_copy(v0, n);
		assert_int_equal(proto_decode_ack(c, n, &ack), MR_EPROTO_SHORT);
		assert_int_equal(proto_decode_ctrl_cmd(c, n, &cc), MR_EPROTO_SHORT);
		assert_int_equal(proto_decode_data_cmd(c, n, &dc), MR_EPROTO_SHORT);
		free(c);
	}
	/* trailing bytes ignored */
	static const uint8_t v1x[6] = { 1, 0, 0, 0, 9, 9 };
	assert_int_equal(proto_decode_ctrl_cmd(v1x, sizeof(v1x), &cc), 0);
	assert_int_equal(cc, PROTO_CMD_HEARTBEAT);
}

static void addr_v4(struct addr *a, const char *ip, uint16_t port)
{
	struct sockaddr_in sin;
	memset(a, 0, sizeof(*a));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	assert_int_equal(inet_pton(AF_INET, ip, &sin.sin_addr), 1);
	memcpy(&a->ss, &sin, sizeof(sin));
	a->len = sizeof(sin);
}

static void addr_v6(struct addr *a, const char *ip, uint16_t port, uint32_t scope, uint32_t flow)
{
	struct sockaddr_in6 sin6;
	memset(a, 0, sizeof(*a));
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(port);
	sin6.sin6_scope_id = scope;
	sin6.sin6_flowinfo = htonl(flow);
	assert_int_equal(inet_pton(AF_INET6, ip, &sin6.sin6_addr), 1);
	memcpy(&a->ss, &sin6, sizeof(sin6));
	a->len = sizeof(sin6);
}

/* Encodes a whole frame (header + payload) like a rathole writer would. */
static size_t udp_frame(uint8_t *out, size_t cap, const struct addr *a, const uint8_t *payload,
			uint16_t plen)
{
	int n = proto_encode_udp_hdr(out, cap, a, plen);
	assert_true(n > 0);
	assert_true((size_t)n + plen <= cap);
	memcpy(out + n, payload, plen);
	return (size_t)n + plen;
}

static void test_udp_encode(void **state)
{
	(void)state;
	uint8_t buf[128];
	struct addr a;

	addr_v4(&a, "203.0.113.7", 51820);
	assert_int_equal(proto_udp_hdr_len(&a), PROTO_UDP_HDR_V4);
	size_t n = udp_frame(buf, sizeof(buf), &a, (const uint8_t *)"hello", 5);
	assert_hex(buf, n, "0c00000000cb0071076cca050068656c6c6f");

	addr_v6(&a, "2001:db8::1", 443, 0, 0);
	assert_int_equal(proto_udp_hdr_len(&a), PROTO_UDP_HDR_V6);
	static const uint8_t p3[3] = { 1, 2, 3 };
	n = udp_frame(buf, sizeof(buf), &a, p3, 3);
	assert_hex(buf, n, "180100000020010db8000000000000000000000001bb010300010203");

	/* [fe80::1%3]:443 with a flow label: scope and flowinfo are lost */
	addr_v6(&a, "fe80::1", 443, 3, 0x12345);
	assert_int_equal(proto_encode_udp_hdr(buf, sizeof(buf), &a, 1), 25);
	assert_int_equal(buf[0], 0x18);
	assert_hex(buf + 1, 24, "01000000fe800000000000000000000000000001bb010100");

	/* 1.2.3.4:5 with len 65535 */
	addr_v4(&a, "1.2.3.4", 5);
	assert_int_equal(proto_encode_udp_hdr(buf, sizeof(buf), &a, 65535), 13);
	assert_int_equal(buf[0], 0x0c);
	assert_hex(buf + 1, 12, "00000000010203040500ffff");

	/* cap exactly enough, and one short */
	assert_int_equal(proto_encode_udp_hdr(buf, 13, &a, 0), 13);
	assert_int_equal(proto_encode_udp_hdr(buf, 12, &a, 0), MR_ELIMIT);
	addr_v6(&a, "::1", 1, 0, 0);
	assert_int_equal(proto_encode_udp_hdr(buf, 25, &a, 0), 25);
	assert_int_equal(proto_encode_udp_hdr(buf, 24, &a, 0), MR_ELIMIT);

	/* other families */
	memset(&a, 0, sizeof(a));
	a.ss.ss_family = AF_UNIX;
	assert_int_equal(proto_encode_udp_hdr(buf, sizeof(buf), &a, 0), MR_EFORMAT);
	assert_int_equal(proto_udp_hdr_len(&a), MR_EFORMAT);
	a.ss.ss_family = AF_UNSPEC;
	assert_int_equal(proto_encode_udp_hdr(buf, sizeof(buf), &a, 0), MR_EFORMAT);
}

static void test_udp_decode(void **state)
{
	(void)state;
	uint8_t raw[64];
	struct addr a;
	uint16_t plen = 0;

	/* v4 frame: length byte, header, payload */
	size_t n = unhex("0c00000000cb0071076cca050068656c6c6f", raw, sizeof(raw));
	assert_int_equal(n, 18);
	assert_int_equal(raw[0], 12);
	uint8_t *c = exact_copy(raw + 1, raw[0]);
	memset(&a, 0xee, sizeof(a));
	assert_int_equal(proto_decode_udp_hdr(c, raw[0], &a, &plen), 0);
	free(c);
	assert_int_equal(plen, 5);
	assert_int_equal(a.len, sizeof(struct sockaddr_in));
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)&a.ss;
	assert_int_equal(s4->sin_family, AF_INET);
	assert_int_equal(ntohs(s4->sin_port), 51820);
	assert_memory_equal(&s4->sin_addr, "\xcb\x00\x71\x07", 4);
	assert_memory_equal(raw + 1 + 12, "hello", 5);

	/* v6 frame */
	n = unhex("180100000020010db8000000000000000000000001bb010300010203", raw, sizeof(raw));
	assert_int_equal(raw[0], 24);
	c = exact_copy(raw + 1, raw[0]);
	memset(&a, 0xee, sizeof(a));
	assert_int_equal(proto_decode_udp_hdr(c, raw[0], &a, &plen), 0);
	free(c);
	assert_int_equal(plen, 3);
	assert_int_equal(a.len, sizeof(struct sockaddr_in6));
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a.ss;
	assert_int_equal(s6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(s6->sin6_port), 443);
	assert_int_equal(s6->sin6_flowinfo, 0);
	assert_int_equal(s6->sin6_scope_id, 0);
	struct in6_addr want6;
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", &want6), 1);
	assert_memory_equal(&s6->sin6_addr, &want6, 16);
	assert_int_equal(n, 1 + 24 + 3);

	/* scoped example decodes with scope 0 */
	n = unhex("01000000fe800000000000000000000000000001bb010100", raw, sizeof(raw));
	assert_int_equal(proto_decode_udp_hdr(raw, n, &a, &plen), 0);
	assert_int_equal(plen, 1);
	assert_int_equal(s6->sin6_scope_id, 0);
	assert_int_equal(ntohs(s6->sin6_port), 443);
	assert_int_equal(inet_pton(AF_INET6, "fe80::1", &want6), 1);
	assert_memory_equal(&s6->sin6_addr, &want6, 16);

	/* 65535 header */
	n = unhex("00000000010203040500ffff", raw, sizeof(raw));
	assert_int_equal(proto_decode_udp_hdr(raw, n, &a, &plen), 0);
	assert_int_equal(plen, 65535);
	assert_int_equal(ntohs(s4->sin_port), 5);
	assert_memory_equal(&s4->sin_addr, "\x01\x02\x03\x04", 4);
}

static void test_udp_decode_lengths(void **state)
{
	(void)state;
	uint8_t v4[PROTO_UDP_HDR_V4], v6[PROTO_UDP_HDR_V6], big[PROTO_UDP_HDR_MAX];
	struct addr a, before;
	uint16_t plen = 7;
	unhex("00000000010203040500ffff", v4, sizeof(v4));
	unhex("01000000fe800000000000000000000000000001bb010100", v6, sizeof(v6));
	memset(&before, 0x11, sizeof(before));

	/* short headers: every length below the address's size */
	for (size_t n = 0; n < sizeof(v4); n++) {
		uint8_t *c = exact_copy(v4, n);
		memcpy(&a, &before, sizeof(a));
		assert_int_equal(proto_decode_udp_hdr(c, n, &a, &plen), MR_EPROTO_SHORT);
		free(c);
		assert_memory_equal(&a, &before, sizeof(a));
		assert_int_equal(plen, 7);
	}
	for (size_t n = 0; n < sizeof(v6); n++) {
		uint8_t *c = exact_copy(v6, n);
		assert_int_equal(proto_decode_udp_hdr(c, n, &a, &plen), MR_EPROTO_SHORT);
		free(c);
	}
	/* a v6 tag with a v4-sized header is short */
	uint8_t v6short[PROTO_UDP_HDR_V4];
	memcpy(v6short, v6, sizeof(v6short));
	assert_int_equal(proto_decode_udp_hdr(v6short, sizeof(v6short), &a, &plen), MR_EPROTO_SHORT);

	/* over-long headers decode, the extra bytes are ignored */
	memset(big, 0xab, sizeof(big));
	memcpy(big, v4, sizeof(v4));
	for (size_t n = sizeof(v4); n <= sizeof(big); n += 13) {
		uint8_t *c = exact_copy(big, n);
		assert_int_equal(proto_decode_udp_hdr(c, n, &a, &plen), 0);
		free(c);
		assert_int_equal(plen, 65535);
		assert_int_equal(a.ss.ss_family, AF_INET);
	}
	memcpy(big, v6, sizeof(v6));
	assert_int_equal(proto_decode_udp_hdr(big, sizeof(big), &a, &plen), 0);
	assert_int_equal(a.ss.ss_family, AF_INET6);
	assert_int_equal(plen, 1);

	/* bad tags */
	uint8_t bad[PROTO_UDP_HDR_V6];
	memcpy(bad, v6, sizeof(bad));
	bad[0] = 2;
	assert_int_equal(proto_decode_udp_hdr(bad, sizeof(bad), &a, &plen), MR_EPROTO_TAG);
	bad[0] = 0;
	bad[3] = 0x80;
	assert_int_equal(proto_decode_udp_hdr(bad, sizeof(bad), &a, &plen), MR_EPROTO_TAG);
	memcpy(bad, "GET ", 4);
	assert_int_equal(proto_decode_udp_hdr(bad, sizeof(bad), &a, &plen), MR_EPROTO_TAG);
	/* a bad tag with only the tag present is a tag error (bincode order) */
	assert_int_equal(proto_decode_udp_hdr(bad, 4, &a, &plen), MR_EPROTO_TAG);
}

static void test_udp_roundtrip(void **state)
{
	(void)state;
	static const char *v4s[] = { "0.0.0.0", "127.0.0.1", "255.255.255.255", "10.1.2.3" };
	static const char *v6s[] = { "::", "::1", "::ffff:1.2.3.4", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" };
	static const uint16_t ports[] = { 0, 1, 443, 51820, 65535 };
	uint8_t buf[32];
	struct addr a, b;
	uint16_t plen;
	for (size_t i = 0; i < 4; i++) {
		for (size_t j = 0; j < 5; j++) {
			addr_v4(&a, v4s[i], ports[j]);
			int n = proto_encode_udp_hdr(buf, sizeof(buf), &a, ports[4 - j]);
			assert_int_equal(n, 13);
			assert_int_equal(proto_decode_udp_hdr(buf + 1, buf[0], &b, &plen), 0);
			assert_int_equal(plen, ports[4 - j]);
			assert_int_equal(b.len, a.len);
			assert_memory_equal(&b.ss, &a.ss, sizeof(struct sockaddr_in));

			addr_v6(&a, v6s[i], ports[j], 0, 0);
			n = proto_encode_udp_hdr(buf, sizeof(buf), &a, ports[j]);
			assert_int_equal(n, 25);
			assert_int_equal(proto_decode_udp_hdr(buf + 1, buf[0], &b, &plen), 0);
			assert_int_equal(plen, ports[j]);
			assert_int_equal(b.len, a.len);
			assert_memory_equal(&b.ss, &a.ss, sizeof(struct sockaddr_in6));
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_service_digests),
		cmocka_unit_test(test_session_keys),
		cmocka_unit_test(test_digest_equal_and_random),
		cmocka_unit_test(test_hello_encode),
		cmocka_unit_test(test_hello_decode),
		cmocka_unit_test(test_hello_reject),
		cmocka_unit_test(test_cmds),
		cmocka_unit_test(test_udp_encode),
		cmocka_unit_test(test_udp_decode),
		cmocka_unit_test(test_udp_decode_lengths),
		cmocka_unit_test(test_udp_roundtrip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
