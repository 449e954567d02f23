/* proto: rathole 0.5 wire messages (protocol.md#p-encoding, protocol.md#p-messages).
 *
 * bincode 1.x legacy encoding: enum tags are u32 little-endian, fixed-size
 * arrays have no length prefix, integers are fixed width little-endian, and
 * trailing bytes after a complete value are ignored. Decoders check the
 * length first, then fields in bincode's order (tag, then contents). */
#include "codec/proto.h"

#include <errno.h>

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

/* SHA-256 through OpenSSL's low-level interface: the EVP interface would
 * load the default provider, which maps about 2 MiB more of libcrypto into
 * every process for the same two hashes per connection. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <sys/random.h>

#include "base/err.h"
#include "base/log.h"

/* Offsets inside the messages. */
enum {
	HELLO_OFF_VERSION = 4,
	HELLO_OFF_DIGEST = 5,
	UDP_TAG_V4 = 0,
	UDP_TAG_V6 = 1,
	UDP_V4_ADDR_LEN = 4,
	UDP_V6_ADDR_LEN = 16,
};

static void put_u32le(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_u32le(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_u16le(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static uint16_t get_u16le(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

void proto_encode_hello(uint8_t out[PROTO_HELLO_LEN], enum proto_hello_kind kind,
			const uint8_t digest[PROTO_DIGEST_LEN])
{
	put_u32le(out, (uint32_t)kind);
	out[HELLO_OFF_VERSION] = PROTO_VERSION;
	memcpy(out + HELLO_OFF_DIGEST, digest, PROTO_DIGEST_LEN);
}

int proto_decode_hello(const uint8_t *in, size_t len, enum proto_hello_kind *kind,
		       uint8_t digest[PROTO_DIGEST_LEN])
{
	if (len < PROTO_HELLO_LEN)
		return MR_EPROTO_SHORT;
	uint32_t tag = get_u32le(in);
	if (tag > PROTO_HELLO_DATA)
		return MR_EPROTO_TAG;
	if (in[HELLO_OFF_VERSION] != PROTO_VERSION)
		return MR_EPROTO_VERSION;
	*kind = (enum proto_hello_kind)tag;
	memcpy(digest, in + HELLO_OFF_DIGEST, PROTO_DIGEST_LEN);
	return 0;
}

void proto_encode_u32(uint8_t out[4], uint32_t v)
{
	put_u32le(out, v);
}

/* A 4-byte tag whose value must be <= max. */
static int decode_tag(const uint8_t *in, size_t len, uint32_t max, uint32_t *out)
{
	if (len < PROTO_CMD_LEN)
		return MR_EPROTO_SHORT;
	uint32_t tag = get_u32le(in);
	if (tag > max)
		return MR_EPROTO_TAG;
	*out = tag;
	return 0;
}

int proto_decode_ack(const uint8_t *in, size_t len, enum proto_ack *out)
{
	uint32_t tag;
	int r = decode_tag(in, len, PROTO_ACK_AUTH_FAILED, &tag);
	if (r == 0)
		*out = (enum proto_ack)tag;
	return r;
}

int proto_decode_ctrl_cmd(const uint8_t *in, size_t len, enum proto_ctrl_cmd *out)
{
	uint32_t tag;
	int r = decode_tag(in, len, PROTO_CMD_HEARTBEAT, &tag);
	if (r == 0)
		*out = (enum proto_ctrl_cmd)tag;
	return r;
}

int proto_decode_data_cmd(const uint8_t *in, size_t len, enum proto_data_cmd *out)
{
	uint32_t tag;
	int r = decode_tag(in, len, PROTO_DATA_START_UDP, &tag);
	if (r == 0)
		*out = (enum proto_data_cmd)tag;
	return r;
}

void proto_service_digest(const char *name, size_t len, uint8_t out[PROTO_DIGEST_LEN])
{
	SHA256_CTX c;
	SHA256_Init(&c);
	SHA256_Update(&c, name, len);
	SHA256_Final(out, &c);
	OPENSSL_cleanse(&c, sizeof(c));
}

void proto_session_key(const char *token, size_t token_len, const uint8_t nonce[PROTO_DIGEST_LEN],
		       uint8_t out[PROTO_DIGEST_LEN])
{
	SHA256_CTX c;
	SHA256_Init(&c);
	SHA256_Update(&c, token, token_len);
	SHA256_Update(&c, nonce, PROTO_DIGEST_LEN);
	SHA256_Final(out, &c);
	OPENSSL_cleanse(&c, sizeof(c));   /* it held the token */
}

int proto_digest_equal(const uint8_t a[PROTO_DIGEST_LEN], const uint8_t b[PROTO_DIGEST_LEN])
{
	return CRYPTO_memcmp(a, b, PROTO_DIGEST_LEN) == 0;
}

/* The kernel's CSPRNG (getrandom(2)), as rathole's thread_rng is seeded:
 * no user-space DRBG to initialise in every process. */
int proto_random(uint8_t *out, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = getrandom(out + got, len - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return MR_ECRYPTO;
		}
		got += (size_t)n;
	}
	return 0;
}

int proto_udp_hdr_len(const struct addr *from)
{
	switch (from->ss.ss_family) {
	case AF_INET: return PROTO_UDP_HDR_V4;
	case AF_INET6: return PROTO_UDP_HDR_V6;
	default: return MR_EFORMAT;
	}
}

int proto_encode_udp_hdr(uint8_t *out, size_t cap, const struct addr *from, uint16_t payload_len)
{
	int hlen = proto_udp_hdr_len(from);
	if (hlen < 0)
		return hlen;
	if (cap < 1 + (size_t)hlen)
		return MR_ELIMIT;
	out[0] = (uint8_t)hlen;
	uint8_t *p = out + 1;
	if (from->ss.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)&from->ss;
		put_u32le(p, UDP_TAG_V4);
		memcpy(p + 4, &a->sin_addr, UDP_V4_ADDR_LEN);
		put_u16le(p + 4 + UDP_V4_ADDR_LEN, ntohs(a->sin_port));
		put_u16le(p + 4 + UDP_V4_ADDR_LEN + 2, payload_len);
	} else {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&from->ss;
		put_u32le(p, UDP_TAG_V6);
		memcpy(p + 4, &a->sin6_addr, UDP_V6_ADDR_LEN);
		put_u16le(p + 4 + UDP_V6_ADDR_LEN, ntohs(a->sin6_port));
		put_u16le(p + 4 + UDP_V6_ADDR_LEN + 2, payload_len);
	}
	return 1 + hlen;
}

int proto_decode_udp_hdr(const uint8_t *hdr, size_t hlen, struct addr *from, uint16_t *payload_len)
{
	if (hlen < 4)
		return MR_EPROTO_SHORT;
	uint32_t tag = get_u32le(hdr);
	if (tag == UDP_TAG_V4) {
		if (hlen < PROTO_UDP_HDR_V4)
			return MR_EPROTO_SHORT;
		struct sockaddr_in a;
		memset(&a, 0, sizeof(a));
		a.sin_family = AF_INET;
		memcpy(&a.sin_addr, hdr + 4, UDP_V4_ADDR_LEN);
		a.sin_port = htons(get_u16le(hdr + 4 + UDP_V4_ADDR_LEN));
		memset(from, 0, sizeof(*from));
		memcpy(&from->ss, &a, sizeof(a));
		from->len = sizeof(a);
		*payload_len = get_u16le(hdr + 4 + UDP_V4_ADDR_LEN + 2);
		return 0;
	}
	if (tag == UDP_TAG_V6) {
		if (hlen < PROTO_UDP_HDR_V6)
			return MR_EPROTO_SHORT;
		struct sockaddr_in6 a;
		memset(&a, 0, sizeof(a)); /* flowinfo and scope_id are not on the wire: 0 */
		a.sin6_family = AF_INET6;
		memcpy(&a.sin6_addr, hdr + 4, UDP_V6_ADDR_LEN);
		a.sin6_port = htons(get_u16le(hdr + 4 + UDP_V6_ADDR_LEN));
		memset(from, 0, sizeof(*from));
		memcpy(&from->ss, &a, sizeof(a));
		from->len = sizeof(a);
		*payload_len = get_u16le(hdr + 4 + UDP_V6_ADDR_LEN + 2);
		return 0;
	}
	return MR_EPROTO_TAG;
}
