/* Fuzz target for proto decoders. The first byte picks a decoder:
 *   0 hello, 1 ack, 2 ctrl cmd, 3 data cmd, 4 udp header, 5 digests
 * (selector mod 6); the rest is that decoder's input. Whatever decodes is
 * re-encoded and must give back the bytes it was decoded from (all the
 * encodings are canonical for the bytes a decoder consumes). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>

#include "base/err.h"
#include "codec/proto.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

static void fuzz_hello(const uint8_t *in, size_t len)
{
	enum proto_hello_kind kind;
	uint8_t d[PROTO_DIGEST_LEN], out[PROTO_HELLO_LEN];
	int r = proto_decode_hello(in, len, &kind, d);
	if (r != 0) {
		CHECK(r == MR_EPROTO_SHORT || r == MR_EPROTO_TAG || r == MR_EPROTO_VERSION);
		CHECK(r != MR_EPROTO_SHORT || len < PROTO_HELLO_LEN);
		return;
	}
	CHECK(len >= PROTO_HELLO_LEN);
	CHECK(kind == PROTO_HELLO_CONTROL || kind == PROTO_HELLO_DATA);
	proto_encode_hello(out, kind, d);
	CHECK(memcmp(out, in, PROTO_HELLO_LEN) == 0);
}

static void check_tag(const uint8_t *in, size_t len, int r, uint32_t v, uint32_t max)
{
	uint8_t out[4];
	if (r != 0) {
		CHECK(r == MR_EPROTO_SHORT || r == MR_EPROTO_TAG);
		CHECK((r == MR_EPROTO_SHORT) == (len < 4));
		return;
	}
	CHECK(len >= 4 && v <= max);
	proto_encode_u32(out, v);
	CHECK(memcmp(out, in, 4) == 0);
}

static void fuzz_udp(const uint8_t *in, size_t len)
{
	struct addr a;
	uint16_t plen;
	uint8_t out[1 + PROTO_UDP_HDR_V6];
	int r = proto_decode_udp_hdr(in, len, &a, &plen);
	if (r != 0) {
		CHECK(r == MR_EPROTO_SHORT || r == MR_EPROTO_TAG);
		return;
	}
	int n = proto_encode_udp_hdr(out, sizeof(out), &a, plen);
	CHECK(n == 1 + PROTO_UDP_HDR_V4 || n == 1 + PROTO_UDP_HDR_V6);
	CHECK((size_t)out[0] == (size_t)n - 1 && (size_t)out[0] <= len);
	CHECK(memcmp(out + 1, in, out[0]) == 0);
	if (a.ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a.ss;
		CHECK(s6->sin6_flowinfo == 0 && s6->sin6_scope_id == 0);
		CHECK(a.len == sizeof(struct sockaddr_in6));
	} else {
		CHECK(a.ss.ss_family == AF_INET && a.len == sizeof(struct sockaddr_in));
	}
	/* decoding the re-encoding gives the same address */
	struct addr b;
	uint16_t plen2;
	CHECK(proto_decode_udp_hdr(out + 1, out[0], &b, &plen2) == 0);
	CHECK(plen2 == plen && b.len == a.len && memcmp(&b.ss, &a.ss, a.len) == 0);
}

static void fuzz_digests(const uint8_t *in, size_t len)
{
	uint8_t d1[PROTO_DIGEST_LEN], d2[PROTO_DIGEST_LEN], nonce[PROTO_DIGEST_LEN] = { 0 };
	proto_service_digest((const char *)in, len, d1);
	proto_service_digest((const char *)in, len, d2);
	CHECK(proto_digest_equal(d1, d2));
	memcpy(nonce, in, len < sizeof(nonce) ? len : sizeof(nonce));
	proto_session_key((const char *)in, len, nonce, d1);
	proto_session_key((const char *)in, len, nonce, d2);
	CHECK(proto_digest_equal(d1, d2));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const uint8_t *in = data + 1;
	size_t len = size - 1;
	uint32_t v = 0;
	int r;
	switch (data[0] % 6) {
	case 0:
		fuzz_hello(in, len);
		break;
	case 1: {
		enum proto_ack a;
		r = proto_decode_ack(in, len, &a);
		if (r == 0)
			v = (uint32_t)a;
		check_tag(in, len, r, v, PROTO_ACK_AUTH_FAILED);
		break;
	}
	case 2: {
		enum proto_ctrl_cmd c;
		r = proto_decode_ctrl_cmd(in, len, &c);
		if (r == 0)
			v = (uint32_t)c;
		check_tag(in, len, r, v, PROTO_CMD_HEARTBEAT);
		break;
	}
	case 3: {
		enum proto_data_cmd c;
		r = proto_decode_data_cmd(in, len, &c);
		if (r == 0)
			v = (uint32_t)c;
		check_tag(in, len, r, v, PROTO_DATA_START_UDP);
		break;
	}
	case 4:
		fuzz_udp(in, len);
		break;
	default:
		fuzz_digests(in, len);
		break;
	}
	return 0;
}
