/* udp_frame: the reader of UDP frames on a data channel (protocol.md#p-udp-frame), pure:
 * no I/O, no allocation, no loop. Both UDP roles (plane/udp_chan.c) feed
 * it what they read from the data channel, and the fuzz target
 * (fuzz/fuzz_udp_frames.c) checks it against a reference decode.
 *
 * A frame is hlen:u8 | SocketAddr + len:u16 (proto.h's UDP header, hlen
 * bytes; trailing header bytes are allowed) | len payload bytes. The data
 * channel is a byte stream: the transport splits or merges frames anyhow,
 * so the reader gathers a frame across any number of feeds and completes
 * one frame per call at most.
 *
 * Ownership: a struct udp_parser is a plain value of about 66 KiB (it holds
 * the largest payload when that arrives in pieces): embed it in a heap
 * object. A completed frame's payload points into the input or into the
 * parser (see struct udp_frame); nothing is copied out. Contract: after a
 * header fails to decode the parser stays failed; udp_parser_init resets
 * it. */
#ifndef MOLERAT_UDP_FRAME_H
#define MOLERAT_UDP_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "codec/addr.h"
#include "codec/proto.h"

enum {
	UDP_FRAME_PAYLOAD_MAX = 65535,  /* len is a u16 */
	UDP_FRAME_MAX = 1 + PROTO_UDP_HDR_MAX + UDP_FRAME_PAYLOAD_MAX, /* the largest frame on the wire */
};

enum udp_parse_state {
	UDP_PARSE_HLEN = 0,  /* waiting for the length byte */
	UDP_PARSE_HDR,       /* gathering hlen header bytes */
	UDP_PARSE_PAYLOAD,   /* gathering len payload bytes (len > 0 here) */
	UDP_PARSE_FAILED,    /* a header did not decode: for good */
};

/* One decoded frame. payload points either into the input given to
 * udp_parser_feed (when the whole payload was in it) or into the parser;
 * it is valid until the next feed on the same parser and, in the first
 * case, while the input is. */
struct udp_frame {
	struct addr from;
	const uint8_t *payload;
	size_t len;
};

/* About 66 KiB: embed it in a heap object. */
struct udp_parser {
	enum udp_parse_state state;
	int err;                      /* the decode error once FAILED */
	uint8_t hlen;
	uint16_t len;
	size_t got;                   /* bytes gathered of the current part */
	struct addr from;
	uint8_t hdr[PROTO_UDP_HDR_MAX];
	uint8_t buf[UDP_FRAME_PAYLOAD_MAX]; /* payload gathered across feeds */
};

/* Resets p to wait for a frame's first byte. */
void udp_parser_init(struct udp_parser *p);
/* Consumes bytes of in[0..len) until one frame completes or the input
 * ends; never reads past len. Returns the bytes consumed with *done set
 * when *f holds a complete frame (call again with the rest of the input),
 * or the decode error (MR_EPROTO_SHORT: hlen too small for the address;
 * MR_EPROTO_TAG: an address tag other than 0 or 1), after which every
 * call returns it again. A call with len > 0 consumes at least one byte
 * or completes a frame. */
ssize_t udp_parser_feed(struct udp_parser *p, const uint8_t *in, size_t len, struct udp_frame *f,
			bool *done);

#endif
