/* Fuzz target for the websocket frame decoder (codec/ws_frame.h).
 *
 * Input: 2 bytes that seed the chunking, then a byte stream. The stream is
 * decoded with both roles (a server expects masked frames, a client
 * unmasked), once whole and once in pseudo-random chunks (1 byte up to the
 * rest). Checks: no call consumes more than it was given; a call that
 * returns no event consumes everything; data events are non-empty, lie in
 * the chunk just given and end where the consumed bytes end; the payload
 * delivered is never more than the input; control payloads are at most
 * 125 bytes; after an error every call fails; and both feeds give the same
 * data, the same control events and the same error. Each frame found is
 * also encoded again with ws_frame_header, which must give the header the
 * stream held when its length form was minimal. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "codec/ws_frame.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

struct result {
	uint8_t *data;
	size_t len;
	uint8_t ctrl[64];     /* kinds of the first 64 control events */
	size_t nctrl;
	size_t ctrl_bytes;
	int err;
	const char *why;
};

static void run(bool server, const uint8_t *in, size_t len, uint16_t seed, struct result *res)
{
	uint8_t *copy = malloc(len ? len : 1);
	CHECK(copy);
	memcpy(copy, in, len);
	memset(res, 0, sizeof(*res));
	res->data = malloc(len ? len : 1);
	CHECK(res->data);
	struct ws_decoder d;
	ws_decoder_init(&d, server);
	uint32_t rng = seed ? seed : 1;
	size_t pos = 0;
	while (pos < len) {
		size_t n = len - pos;
		if (seed) {
			rng = rng * 1103515245u + 12345u;
			n = 1 + (rng >> 8) % n;
		}
		uint8_t *p = copy + pos;
		size_t used = 0;
		while (used < n) {
			struct ws_event ev;
			ssize_t r = ws_decode(&d, p + used, n - used, &ev);
			if (r < 0) {
				CHECK(r == MR_EWS && d.why && d.state == WS_DEC_FAILED);
				CHECK(ws_decode(&d, p, n, &ev) == MR_EWS);
				res->err = (int)r;
				res->why = d.why;
				goto out;
			}
			CHECK((size_t)r <= n - used);
			switch (ev.kind) {
			case WS_EV_NONE:
				CHECK((size_t)r == n - used);
				break;
			case WS_EV_DATA:
				CHECK(ev.len > 0);
				CHECK(ev.data >= p + used && ev.data + ev.len == p + used + (size_t)r);
				CHECK(res->len + ev.len <= len);
				memcpy(res->data + res->len, ev.data, ev.len);
				res->len += ev.len;
				break;
			default:
				CHECK(ev.len <= WS_CTRL_MAX);
				CHECK(r > 0);
				if (res->nctrl < sizeof(res->ctrl))
					res->ctrl[res->nctrl] = (uint8_t)ev.kind;
				res->nctrl++;
				res->ctrl_bytes += ev.len;
				if (ev.kind == WS_EV_CLOSE)
					CHECK(d.state == WS_DEC_CLOSED);
				break;
			}
			used += (size_t)r;
		}
		pos += n;
	}
out:
	CHECK(res->len + res->ctrl_bytes <= len);
	free(copy);
}

/* The first header of the stream, when complete and minimal, encodes
 * back to itself. */
static void check_header(const uint8_t *in, size_t len)
{
	if (len < 2)
		return;
	unsigned len7 = in[1] & 0x7f;
	size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0, need = 2 + ext + (in[1] & 0x80 ? 4 : 0);
	if (len < need)
		return;
	uint64_t l = len7;
	if (ext) {
		l = 0;
		for (size_t i = 0; i < ext; i++)
			l = l << 8 | in[2 + i];
	}
	bool minimal = ext == 0 || (ext == 2 && l >= 126) || (ext == 8 && l > 0xffff);
	if (!minimal || (in[0] & 0x70) || (l >> 63))
		return;
	uint8_t h[WS_HDR_MAX];
	size_t hl = ws_frame_header(h, in[0] & 0x80, (enum ws_opcode)(in[0] & 0x0f), l,
				    in[1] & 0x80 ? in + 2 + ext : NULL);
	CHECK(hl == need && memcmp(h, in, hl) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	uint16_t seed = (uint16_t)(data[0] | data[1] << 8);
	const uint8_t *in = data + 2;
	size_t len = size - 2;
	check_header(in, len);
	for (int role = 0; role < 2; role++) {
		struct result a, b;
		run(role, in, len, 0, &a);
		run(role, in, len, seed | 1, &b);
		CHECK(a.err == b.err && a.len == b.len && a.nctrl == b.nctrl);
		CHECK(a.ctrl_bytes == b.ctrl_bytes);
		CHECK(memcmp(a.data, b.data, a.len) == 0);
		size_t nc = a.nctrl < sizeof(a.ctrl) ? a.nctrl : sizeof(a.ctrl);
		CHECK(memcmp(a.ctrl, b.ctrl, nc) == 0);
		CHECK(a.why == b.why);
		free(a.data);
		free(b.data);
	}
	return 0;
}
