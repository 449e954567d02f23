/* proto: rathole 0.5 wire messages (protocol.md#p-encoding, protocol.md#p-messages). Pure functions over byte
 * buffers: no sockets, no allocation. A decoder never reads past len.
 *
 * Every message but the UDP frame has a fixed size: the reader gathers
 * exactly that many bytes and then decodes. */
#ifndef MOLERAT_PROTO_H
#define MOLERAT_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "codec/addr.h"

enum {
	PROTO_VERSION = 1,
	PROTO_DIGEST_LEN = 32,
	PROTO_HELLO_LEN = 37,
	PROTO_AUTH_LEN = 32,
	PROTO_CMD_LEN = 4,          /* Ack, ControlChannelCmd, DataChannelCmd */
	PROTO_UDP_HDR_V4 = 12,
	PROTO_UDP_HDR_V6 = 24,
	PROTO_UDP_HDR_MAX = 255,    /* the length byte's range */
	PROTO_TCP_POOL_SIZE = 8,
	PROTO_UDP_POOL_SIZE = 2,
};

enum proto_hello_kind { PROTO_HELLO_CONTROL = 0, PROTO_HELLO_DATA = 1 };
enum proto_ack { PROTO_ACK_OK = 0, PROTO_ACK_SERVICE_NOT_EXIST = 1, PROTO_ACK_AUTH_FAILED = 2 };
enum proto_ctrl_cmd { PROTO_CMD_CREATE_DATA_CHANNEL = 0, PROTO_CMD_HEARTBEAT = 1 };
enum proto_data_cmd { PROTO_DATA_START_TCP = 0, PROTO_DATA_START_UDP = 1 };

/* Hello: kind, version 1, 32-byte digest. */
void proto_encode_hello(uint8_t out[PROTO_HELLO_LEN], enum proto_hello_kind kind,
			const uint8_t digest[PROTO_DIGEST_LEN]);
/* 0, or MR_EPROTO_SHORT (len < 37) / MR_EPROTO_TAG (tag not 0 or 1) /
 * MR_EPROTO_VERSION (version byte not 1), checked in that order. Bytes past
 * the first 37 are ignored. kind and digest are written only on success. */
int proto_decode_hello(const uint8_t *in, size_t len, enum proto_hello_kind *kind,
		       uint8_t digest[PROTO_DIGEST_LEN]);

/* 4-byte u32 little-endian tags. decode returns 0 or MR_EPROTO_SHORT /
 * MR_EPROTO_TAG (tag outside the enum's range); bytes past the first 4 are
 * ignored; *out is written only on success. */
void proto_encode_u32(uint8_t out[4], uint32_t v);
int proto_decode_ack(const uint8_t *in, size_t len, enum proto_ack *out);
int proto_decode_ctrl_cmd(const uint8_t *in, size_t len, enum proto_ctrl_cmd *out);
int proto_decode_data_cmd(const uint8_t *in, size_t len, enum proto_data_cmd *out);

/* SHA-256 helpers: the service digest SHA-256(name) and the session key
 * SHA-256(token || nonce). They cannot report failure: if OpenSSL fails
 * (allocation), out is filled with random bytes so that it matches nothing
 * (fail closed) and an error is logged. */
void proto_service_digest(const char *name, size_t len, uint8_t out[PROTO_DIGEST_LEN]);
void proto_session_key(const char *token, size_t token_len, const uint8_t nonce[PROTO_DIGEST_LEN],
		       uint8_t out[PROTO_DIGEST_LEN]);
/* Constant-time comparison of two digests: 1 when equal. */
int proto_digest_equal(const uint8_t a[PROTO_DIGEST_LEN], const uint8_t b[PROTO_DIGEST_LEN]);
/* len bytes (32 for a nonce) from the kernel's CSPRNG (getrandom).
 * 0, or MR_ECRYPTO. */
int proto_random(uint8_t *out, size_t len);

/* UDP frame header (protocol.md#p-udp-frame): hlen byte + SocketAddr + u16 len.
 * encode writes 1 + 12 or 1 + 24 bytes into out (cap >= 25) and returns
 * that size, or MR_EFORMAT for an address family other than v4/v6, or
 * MR_ELIMIT when cap is too small. Only the family, address and port of
 * from are used (v6 flowinfo and scope_id are not on the wire); a v4-mapped
 * v6 address stays v6, as rathole sends it.
 * decode_udp_hdr takes the hlen header bytes that follow the length byte
 * (trailing bytes allowed and ignored) and fills from (whole struct
 * overwritten; v6 flowinfo/scope_id 0; from->len = sizeof sockaddr_in/in6)
 * and *payload_len; MR_EPROTO_SHORT when hlen is too small for the
 * address, MR_EPROTO_TAG on a tag other than 0 (v4) or 1 (v6). Outputs
 * are written only on success. */
int proto_encode_udp_hdr(uint8_t *out, size_t cap, const struct addr *from, uint16_t payload_len);
int proto_decode_udp_hdr(const uint8_t *hdr, size_t hlen, struct addr *from, uint16_t *payload_len);
/* The header size (without the length byte) for from's family:
 * PROTO_UDP_HDR_V4 or PROTO_UDP_HDR_V6, or MR_EFORMAT. */
int proto_udp_hdr_len(const struct addr *from);

#endif
