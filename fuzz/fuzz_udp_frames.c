/* Fuzz target for the UDP frame reader (udp_parser_feed, protocol.md#p-udp-frame).
 *
 * Input: 4 bytes that seed the chunking, then the byte stream of a UDP data
 * channel. The stream is fed to the parser in pseudo-random chunk sizes
 * (1 byte up to the whole rest) and the result must equal a one-shot
 * reference decode written here from docs/protocol.md, whatever the chunking:
 * - the same frames (address, port, payload bytes) in the same order;
 * - the same error (MR_EPROTO_SHORT / MR_EPROTO_TAG) after the same frames,
 *   and the parser stays failed;
 * - no call consumes more than it was given, and every call with input
 *   consumes a byte or completes a frame;
 * - a payload points into the chunk just given or into the parser. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>

#include "base/err.h"
#include "codec/udp_frame.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

/* One reference frame: where its payload starts in the stream. */
struct ref_frame {
	int family;
	uint8_t addr[16];
	uint16_t port;
	size_t off, len;
};

static uint32_t get_u32le(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Decodes complete frames from the whole stream; returns how many (up to
 * max) and sets *err when a header fails to decode (0 otherwise: the stream
 * ended, possibly in the middle of a frame). */
static size_t ref_decode(const uint8_t *in, size_t len, struct ref_frame *out, size_t max, int *err)
{
	size_t pos = 0, n = 0;
	*err = 0;
	while (pos < len && n < max) {
		size_t hlen = in[pos];
		if (len - pos - 1 < hlen)
			return n;
		const uint8_t *h = in + pos + 1;
		struct ref_frame f;
		memset(&f, 0, sizeof(f));
		if (hlen < 4) {
			*err = MR_EPROTO_SHORT;
			return n;
		}
		uint32_t tag = get_u32le(h);
		size_t alen;
		if (tag == 0) {
			f.family = AF_INET;
			alen = 4;
		} else if (tag == 1) {
			f.family = AF_INET6;
			alen = 16;
		} else {
			*err = MR_EPROTO_TAG;
			return n;
		}
		if (hlen < 4 + alen + 4) {
			*err = MR_EPROTO_SHORT;
			return n;
		}
		memcpy(f.addr, h + 4, alen);
		f.port = (uint16_t)(h[4 + alen] | h[4 + alen + 1] << 8);
		f.len = (size_t)h[4 + alen + 2] | (size_t)h[4 + alen + 3] << 8;
		f.off = pos + 1 + hlen;
		if (len - f.off < f.len)
			return n;
		out[n++] = f;
		pos = f.off + f.len;
	}
	return n;
}

static bool same_frame(const struct udp_frame *f, const struct ref_frame *r, const uint8_t *stream)
{
	if (f->len != r->len || f->from.ss.ss_family != r->family)
		return false;
	if (r->family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)&f->from.ss;
		if (memcmp(&a->sin_addr, r->addr, 4) != 0 || ntohs(a->sin_port) != r->port)
			return false;
	} else {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&f->from.ss;
		if (memcmp(&a->sin6_addr, r->addr, 16) != 0 || ntohs(a->sin6_port) != r->port)
			return false;
		if (a->sin6_scope_id != 0 || a->sin6_flowinfo != 0)
			return false;
	}
	return f->len == 0 || memcmp(f->payload, stream + r->off, f->len) == 0;
}

enum { MAX_FRAMES = 4096 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 4)
		return 0;
	uint32_t rng = get_u32le(data) | 1;
	const uint8_t *in = data + 4;
	size_t len = size - 4;

	static struct ref_frame ref[MAX_FRAMES];
	int ref_err;
	size_t nref = ref_decode(in, len, ref, MAX_FRAMES, &ref_err);
	bool capped = nref == MAX_FRAMES;

	struct udp_parser *p = malloc(sizeof(*p));
	if (!p)
		return 0;
	udp_parser_init(p);
	size_t pos = 0, got = 0;
	int err = 0;
	while (pos < len && !err && got < MAX_FRAMES) {
		/* xorshift32: chunk sizes from 1 byte to the whole rest */
		rng ^= rng << 13;
		rng ^= rng >> 17;
		rng ^= rng << 5;
		size_t rest = len - pos, chunk;
		switch (rng & 3) {
		case 0: chunk = 1; break;
		case 1: chunk = 1 + (rng >> 8) % 16; break;
		case 2: chunk = 1 + (rng >> 8) % 4096; break;
		default: chunk = rest; break;
		}
		if (chunk > rest)
			chunk = rest;
		/* an exact-size copy of the chunk: reading past it is caught */
		uint8_t *c = malloc(chunk);
		if (!c)
			break;
		memcpy(c, in + pos, chunk);
		size_t used = 0;
		while (used < chunk) {
			struct udp_frame f;
			bool done = false;
			ssize_t r = udp_parser_feed(p, c + used, chunk - used, &f, &done);
			if (r < 0) {
				CHECK(r == MR_EPROTO_SHORT || r == MR_EPROTO_TAG);
				CHECK(p->state == UDP_PARSE_FAILED);
				err = (int)r;
				/* failed for good */
				CHECK(udp_parser_feed(p, c, chunk, &f, &done) == r);
				break;
			}
			CHECK((size_t)r <= chunk - used);
			CHECK(r > 0 || done);
			used += (size_t)r;
			if (done) {
				CHECK(f.len <= 65535);
				CHECK(f.len == 0 || (f.payload >= c && f.payload + f.len <= c + used) ||
				      (f.payload >= p->buf && f.payload + f.len <= p->buf + sizeof(p->buf)));
				CHECK(got < nref);
				CHECK(same_frame(&f, &ref[got], in));
				got++;
				if (got == MAX_FRAMES)
					break;
			}
		}
		free(c);
		pos += chunk;
	}
	if (!capped) {
		CHECK(got == nref);
		CHECK(err == ref_err);
		/* the stream ended inside a frame or between frames */
		if (!err)
			CHECK(p->state != UDP_PARSE_FAILED);
	}
	free(p);
	return 0;
}
