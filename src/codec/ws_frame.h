/* ws_frame: RFC 6455 frames as protocol.md#p-websocket uses them, and the
 * two values of the opening handshake that are computed (the accept key,
 * the client's Host). Pure: no I/O, no allocation.
 *
 * Frame layout (lengths big-endian):
 *
 *   byte 0: FIN | RSV1-3 | opcode (4 bits)
 *   byte 1: MASK | len7   len7 126: a u16 follows, 127: a u64 (top bit 0)
 *   [mask key: 4 bytes when MASK]  then the payload, XORed with the key
 *
 * The decoder is incremental: it takes any cut of the stream, keeps a
 * header that arrives in pieces (14 bytes at most) and streams a frame's
 * payload out in chunks that point into the caller's input, unmasked in
 * place; it never holds a data frame's payload, so its limits cost no
 * memory. Control frames (payload <= 125 bytes) are gathered in the
 * decoder and reported whole.
 *
 * Ownership: a struct ws_decoder is a plain value (no resources); a data
 * event's bytes lie in the input just given, a control event's in the
 * decoder, valid until the next call. */
#ifndef MOLERAT_WS_FRAME_H
#define MOLERAT_WS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum ws_opcode {
	WS_OP_CONT = 0x0,
	WS_OP_TEXT = 0x1,
	WS_OP_BINARY = 0x2,
	WS_OP_CLOSE = 0x8,
	WS_OP_PING = 0x9,
	WS_OP_PONG = 0xa,
};

enum {
	WS_HDR_MAX = 14,                     /* 2 + 8 (u64 length) + 4 (mask key) */
	WS_CTRL_MAX = 125,                   /* a control frame's payload */
	WS_KEY_B64_LEN = 24,                 /* Sec-WebSocket-Key: base64 of 16 bytes */
	WS_ACCEPT_LEN = 28,                  /* Sec-WebSocket-Accept: base64 of a SHA-1 */
};

/* rathole's (tungstenite's) limits, protocol.md#p-websocket */
#define WS_FRAME_MAX ((uint64_t)16 << 20)
#define WS_MESSAGE_MAX ((uint64_t)64 << 20)

/* Writes the header of a frame with len payload bytes into out, with the
 * shortest length form; mask: the 4-byte key, or NULL for an unmasked
 * frame. Returns the header's length (2 to 14). */
size_t ws_frame_header(uint8_t out[WS_HDR_MAX], bool fin, enum ws_opcode op, uint64_t len,
		       const uint8_t *mask);

/* XORs buf[0..n) with key, starting at byte phase (0..3) of the key (the
 * payload offset mod 4). Returns the phase after the last byte. */
unsigned ws_mask(uint8_t *buf, size_t n, const uint8_t key[4], unsigned phase);
/* The same from src into dst: dst == src, or dst before src (the copy
 * runs forward), or no overlap. */
unsigned ws_mask_copy(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4], unsigned phase);

enum ws_dec_state {
	WS_DEC_HEADER = 0,   /* collecting a frame header (hdr, hdr_len) */
	WS_DEC_PAYLOAD,      /* inside a frame's payload (remaining > 0) */
	WS_DEC_CLOSED,       /* a Close frame was read: later input is dropped */
	WS_DEC_FAILED,       /* an error was reported: every call fails */
};

enum ws_event_kind {
	WS_EV_NONE = 0,      /* the input ran out (all of it consumed) */
	WS_EV_DATA,          /* data, len > 0: payload of a Binary message */
	WS_EV_PING,          /* a whole Ping: data, len <= 125 */
	WS_EV_PONG,          /* a whole Pong */
	WS_EV_CLOSE,         /* a whole Close (its payload, maybe empty) */
};

struct ws_event {
	enum ws_event_kind kind;
	uint8_t *data;
	size_t len;
	/* a data event of a decoder with leave_masked: the bytes are still
	 * masked with key from byte phase on (ws_mask_copy unmasks them where
	 * they go); NULL when they are plain */
	const uint8_t *key;
	unsigned phase;
};

struct ws_decoder {
	enum ws_dec_state state;
	bool expect_masked;          /* a server reads masked frames, a client unmasked */
	bool leave_masked;           /* data events leave the unmasking to the caller
				      * (who unmasks while it moves the bytes) */
	uint8_t hdr[WS_HDR_MAX];
	unsigned hdr_len, hdr_need;  /* bytes held; the header's size once known */
	/* the frame being read */
	enum ws_opcode op;
	bool fin, masked;
	uint8_t key[4];
	uint64_t frame_len, remaining;
	/* the message being read */
	bool in_message;             /* a fragmented Binary message awaits its FIN */
	uint64_t message_len;
	uint8_t ctrl[WS_CTRL_MAX];   /* a control frame's payload, gathered */
	unsigned ctrl_len;
	/* after an error */
	const char *why;             /* static reason ("a Text frame", ...) */
	uint64_t bad_len;            /* the frame or message size over a limit, else 0 */
};

/* expect_masked: true for a server (client frames are masked). */
void ws_decoder_init(struct ws_decoder *d, bool expect_masked);

/* Consumes in[0..len) up to the next event. Returns the bytes consumed
 * (all of them when ev->kind is WS_EV_NONE), or MR_EWS on a protocol
 * error (d->why says which; d->bad_len the size over a limit; nothing of
 * the bad frame is delivered). A data event's bytes are unmasked in place
 * in in[] (unless d->leave_masked: see struct ws_event) and are the last of
 * the bytes consumed. Empty Binary frames and
 * messages give no event; a Text frame, a reserved opcode or RSV bit, a
 * wrong mask bit, a fragmented or long control frame, a continuation out
 * of place, a length with the top bit set, a frame over WS_FRAME_MAX or a
 * message over WS_MESSAGE_MAX are errors. */
ssize_t ws_decode(struct ws_decoder *d, uint8_t *in, size_t len, struct ws_event *ev);

/* Bytes of the current frame's payload still to come (0 outside one). */
static inline uint64_t ws_decoder_remaining(const struct ws_decoder *d)
{
	return d->state == WS_DEC_PAYLOAD ? d->remaining : 0;
}

/* Sec-WebSocket-Accept for key[0..len): base64(SHA-1(key ||
 * "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")), NUL-terminated in out.
 * Returns 0 or MR_ECRYPTO. */
int ws_accept_key(const char *key, size_t len, char out[WS_ACCEPT_LEN + 1]);

/* The Host value rathole's client sends for remote_addr ("host:port"): the
 * authority of ws://<remote_addr>/ as the url crate normalises it: a
 * domain lower-cased (ASCII only here: a non-ASCII name is refused), an
 * IPv4 host in WHATWG forms ("127.1") as a dotted quad, a bracketed IPv6
 * address in its RFC 5952 form, the port without leading zeros and
 * dropped when it is 80. "Example.COM:2333" -> "example.com:2333",
 * "example.com:80" -> "example.com", "[::1]:2333" -> "[::1]:2333".
 * Returns the length written to out (NUL-terminated), or MR_EFORMAT when
 * remote_addr cannot form such a URL (rathole panics on it, protocol.md#q10),
 * MR_ELIMIT when out is too small. */
int ws_host_header(const char *remote_addr, char *out, size_t cap);

#endif
