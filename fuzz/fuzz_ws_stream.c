/* Fuzz target for the websocket layer's stream side (xport/xport_ws.c):
 * the server's upgrade reader and the frame readers, over an in-memory
 * lower layer. xport_ws.c is compiled into this target (it needs only the
 * codecs and base's pure helpers: no loop, no sockets).
 *
 * The first byte picks a mode:
 *   even: the input is the raw stream a server reads from its first byte
 *         (the upgrade parser on anything), then its frames;
 *   odd:  a real upgrade first, then the input is cut into chunks: a chunk
 *         with a low tag byte is written through the client's layer
 *         (valid frames), a middle tag pushes raw bytes to the server, a
 *         high tag a masked frame of any opcode and FIN bit around the
 *         chunk; the server reads with sizes the input picks and writes
 *         now and then (a due Pong goes in front). What it returns must
 *         equal what the client wrote, in order, until the first other
 *         chunk; after an error every call fails; at the end of the input
 *         the stream ends (FIN), which gives 0 or an error, never -EAGAIN. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "codec/ws_frame.h"
#include "xport/xport_ws.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

#include "mem_xport.h"

static void fuzz_upgrade(const uint8_t *in, size_t len)
{
	struct memx m;
	memx_init(&m);
	mem_push(&m, in, len);
	m.in_eof = true;
	m.read_max = len % 7 + 1 + (len & 64 ? 65536 : 0);
	struct xport *sx = xport_ws_new(true, NULL, &m.base);
	CHECK(sx);
	int r = -EAGAIN;
	for (size_t i = 0; i < len + 4 && r == -EAGAIN; i++)
		r = xport_handshake(sx);
	CHECK(r != -EAGAIN);  /* a finite input that ends: never stuck */
	if (r < 0) {
		CHECK(xport_handshake(sx) < 0);
		CHECK(r == MR_EWS ? xport_last_error(sx) != NULL : r == MR_EEOF);
	} else {
		size_t got = 0;
		ssize_t last = drain(sx, NULL, 0, &got, false, 4096);
		CHECK(last != -EAGAIN);
		CHECK(got <= len);
	}
	xport_close(sx);
	free(m.in);
}

static void fuzz_frames(const uint8_t *in, size_t len)
{
	struct memx cm, sm;
	memx_init(&cm);
	memx_init(&sm);
	cm.peer = &sm;
	sm.peer = &cm;
	struct xport *cx = xport_ws_new(false, "example.com:2333", &cm.base);
	struct xport *sx = xport_ws_new(true, NULL, &sm.base);
	CHECK(cx && sx);
	int rc = -EAGAIN, rs = -EAGAIN;
	for (int i = 0; i < 8 && (rc || rs); i++) {
		if (rc)
			rc = xport_handshake(cx);
		if (rs)
			rs = xport_handshake(sx);
	}
	CHECK(rc == 0 && rs == 0);
	sm.peer = NULL;  /* the server's replies are not read */
	uint8_t *sent = malloc(len + 1);
	CHECK(sent);
	size_t sent_len = 0, got = 0;
	bool exact = true;
	ssize_t last = -EAGAIN;
	size_t pos = 0;
	while (pos + 2 <= len && last == -EAGAIN) {
		uint8_t tag = in[pos], n = in[pos + 1];
		pos += 2;
		size_t take = n < len - pos ? n : len - pos;
		if (tag < 160) {
			for (size_t off = 0; off < take;) {
				ssize_t w = xport_write(cx, in + pos + off, take - off);
				CHECK(w > 0);
				off += (size_t)w;
			}
			memcpy(sent + sent_len, in + pos, take);
			sent_len += take;
		} else if (tag < 208) {
			mem_push(&sm, in + pos, take);
			exact = false;
		} else {
			/* a masked frame: opcode and FIN from the tag */
			uint8_t h[WS_HDR_MAX], key[4] = { tag, n, 0x5a, 0xa5 };
			size_t hl = ws_frame_header(h, tag & 16, (enum ws_opcode)(tag & 15), take, key);
			mem_push(&sm, h, hl);
			uint8_t *p = malloc(take + 1);
			CHECK(p);
			ws_mask_copy(p, in + pos, take, key, 0);
			mem_push(&sm, p, take);
			free(p);
			exact = false;
		}
		pos += take;
		sm.read_max = (size_t)(tag % 5) * 7000 + 1;
		last = drain(sx, sent, sent_len, &got, exact, (size_t)(n % 3 == 0 ? 65536 : n + 1));
		if (last == -EAGAIN && (tag & 32)) {
			ssize_t w = xport_write(sx, "r", 1);
			CHECK(w == 1 || w < 0);
		}
	}
	sm.in_eof = true;
	if (last == -EAGAIN)
		last = drain(sx, sent, sent_len, &got, exact, 65536);
	CHECK(last != -EAGAIN);   /* the end is reported, never waited on */
	if (last < 0) {
		CHECK(xport_read(sx, sent, 1) < 0);
		CHECK(xport_last_error(sx) != NULL || last != MR_EWS);
	} else if (exact) {
		CHECK(got == sent_len);
	}
	CHECK(xport_pending(sx) <= 1);
	xport_close(cx);
	xport_close(sx);
	free(sent);
	free(cm.in);
	free(sm.in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool quiet;
	if (!quiet) {
		log_set_level(LOGL_OFF);
		quiet = true;
	}
	if (size < 1)
		return 0;
	if (data[0] & 1)
		fuzz_frames(data + 1, size - 1);
	else
		fuzz_upgrade(data + 1, size - 1);
	return 0;
}
