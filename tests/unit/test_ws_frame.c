/* ws_frame: RFC 6455 frames (codec/ws_frame.h). Known answers: the RFC's
 * worked examples, read from SHARED_DIR "/testdata/websocket/
 * rfc6455-examples.json" (each frame encoded from its fields, decoded
 * whole and one byte at a time), protocol.md#p-websocket's three frames,
 * the accept key; then every length form, the decoder's errors with their
 * reasons, control frames, masking at every phase, and the client's Host
 * value. Links molerat_codec alone.
 *
 * Exit status: cmocka's; then 1 when a frame of the RFC file fails. When
 * the file is absent the built-in known answers still run and the test
 * passes, unless CI=true (then 1: CI must have the file). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "codec/ws_frame.h"

#define RFC_FILE SHARED_DIR "/testdata/websocket/rfc6455-examples.json"

static size_t unhex(const char *h, uint8_t *out, size_t cap)
{
	size_t n = 0;
	while (h[0] && h[1] && h[0] != '"') {
		if (h[0] == ' ') {
			h++;
			continue;
		}
		unsigned v;
		sscanf(h, "%2x", &v);
		assert_true(n < cap);
		out[n++] = (uint8_t)v;
		h += 2;
	}
	return n;
}

/* What a stream decodes to: data concatenated, control events in order. */
struct decoded {
	uint8_t data[1 << 17];
	size_t len;
	int ctrl[8];          /* WS_EV_PING, ... */
	uint8_t ctrl_data[8][WS_CTRL_MAX];
	size_t ctrl_len[8];
	unsigned nctrl;
	int err;
	const char *why;
};

/* Decodes in[0..len) fed in pieces of chunk bytes (the input is copied
 * first: the decoder unmasks in place). */
static void decode(bool server, const uint8_t *in, size_t len, size_t chunk, struct decoded *out)
{
	struct ws_decoder d;
	ws_decoder_init(&d, server);
	memset(out, 0, sizeof(*out));
	uint8_t *copy = malloc(len ? len : 1);
	assert_non_null(copy);
	memcpy(copy, in, len);
	size_t pos = 0;
	while (pos < len) {
		size_t n = len - pos < chunk ? len - pos : chunk;
		uint8_t *p = copy + pos;
		size_t used = 0;
		while (used < n) {
			struct ws_event ev;
			ssize_t r = ws_decode(&d, p + used, n - used, &ev);
			if (r < 0) {
				out->err = (int)r;
				out->why = d.why;
				/* a failed decoder stays failed */
				assert_int_equal(ws_decode(&d, p, n, &ev), MR_EWS);
				free(copy);
				return;
			}
			assert_true((size_t)r <= n - used);
			if (ev.kind == WS_EV_NONE)
				assert_int_equal((size_t)r, n - used);
			if (ev.kind == WS_EV_DATA) {
				assert_true(ev.len > 0);
				assert_true(ev.data >= p + used && ev.data + ev.len == p + used + (size_t)r);
				assert_true(out->len + ev.len <= sizeof(out->data));
				memcpy(out->data + out->len, ev.data, ev.len);
				out->len += ev.len;
			} else if (ev.kind != WS_EV_NONE) {
				assert_true(out->nctrl < 8 && ev.len <= WS_CTRL_MAX);
				out->ctrl[out->nctrl] = ev.kind;
				memcpy(out->ctrl_data[out->nctrl], ev.data, ev.len);
				out->ctrl_len[out->nctrl++] = ev.len;
			}
			used += (size_t)r;
		}
		pos += n;
	}
	free(copy);
}

/* Whole and one byte at a time must agree. */
static void decode_both(bool server, const uint8_t *in, size_t len, struct decoded *out)
{
	static struct decoded one;
	decode(server, in, len, len ? len : 1, out);
	decode(server, in, len, 1, &one);
	assert_int_equal(one.err, out->err);
	assert_int_equal(one.len, out->len);
	assert_memory_equal(one.data, out->data, out->len);
	assert_int_equal(one.nctrl, out->nctrl);
	for (unsigned i = 0; i < out->nctrl; i++) {
		assert_int_equal(one.ctrl[i], out->ctrl[i]);
		assert_int_equal(one.ctrl_len[i], out->ctrl_len[i]);
	}
}

/* ------------------------------------------------------------ the RFC file */

static const char *field(const char *obj, const char *end, const char *key)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	const char *p = strstr(obj, pat);
	if (!p || p > end)
		return NULL;
	p += strlen(pat);
	while (*p == ' ')
		p++;
	return p;
}

static struct decoded file_out;

/* One frame object obj..end (flat JSON): encode it from its fields, and
 * decode its wire bytes with the role that reads it. Text frames are
 * refused by policy: they are checked refused, then decoded again as
 * Binary. Returns 0 or 1 (a failure, printed). */
static int rfc_frame(const char *obj, const char *end, unsigned *count)
{
	static uint8_t wire[70000], payload[70000];
	const char *wh = field(obj, end, "wire_hex"), *hh = field(obj, end, "header_hex");
	const char *ph = field(obj, end, "payload_hex"), *kh = field(obj, end, "masking_key_hex");
	const char *oph = field(obj, end, "opcode"), *fh = field(obj, end, "fin");
	const char *lh = field(obj, end, "payload_length");
	if ((!wh && !hh) || !oph || !fh || !lh || !kh || !ph) {
		printf("rfc6455: a frame without its fields\n");
		return 1;
	}
	int op = atoi(oph);
	bool fin = strncmp(fh, "true", 4) == 0;
	size_t plen = (size_t)strtoul(lh, NULL, 10);
	uint8_t key[4];
	bool masked = *kh == '"';
	if (masked)
		unhex(kh + 1, key, 4);
	size_t wlen = unhex((wh ? wh : hh) + 1, wire, sizeof(wire));
	if (*ph == '"') {
		assert_int_equal(unhex(ph + 1, payload, sizeof(payload)), plen);
	} else {
		for (size_t i = 0; i < plen; i++)
			payload[i] = (uint8_t)(i * 7 + 3);
	}
	uint8_t hdr[WS_HDR_MAX];
	size_t hl = ws_frame_header(hdr, fin, (enum ws_opcode)op, plen, masked ? key : NULL);
	if (hh) {
		/* the header alone is given: the wire is it and the payload */
		if (hl != wlen || memcmp(hdr, wire, hl) != 0) {
			printf("rfc6455: header of a %zu-byte frame differs\n", plen);
			return 1;
		}
		memcpy(wire + wlen, payload, plen);
		if (masked)
			ws_mask(wire + wlen, plen, key, 0);
		wlen += plen;
	} else {
		uint8_t enc[256];
		memcpy(enc, hdr, hl);
		memcpy(enc + hl, payload, plen);
		if (masked)
			ws_mask(enc + hl, plen, key, 0);
		if (hl + plen != wlen || memcmp(enc, wire, wlen) != 0) {
			printf("rfc6455: encoding %.*s differs\n", (int)(wlen * 2), wh + 1);
			return 1;
		}
	}
	if (op == WS_OP_TEXT) {
		decode(masked, wire, wlen, wlen, &file_out);
		if (file_out.err != MR_EWS || strstr(file_out.why, "Text") == NULL) {
			printf("rfc6455: a Text frame was not refused\n");
			return 1;
		}
		wire[0] = (uint8_t)((wire[0] & 0xf0) | WS_OP_BINARY);
	}
	bool cont_start = !fin && op != WS_OP_CONT;
	if (op == WS_OP_CONT) {
		/* a continuation needs its start: the same payload as Binary first */
		static uint8_t two[70100];
		size_t h2 = ws_frame_header(two, false, WS_OP_BINARY, 0, masked ? key : NULL);
		memcpy(two + h2, wire, wlen);
		memcpy(wire, two, h2 + wlen);
		wlen += h2;
	}
	decode_both(masked, wire, wlen, &file_out);
	int want_ev = op == WS_OP_PING ? WS_EV_PING : op == WS_OP_PONG ? WS_EV_PONG
		    : op == WS_OP_CLOSE ? WS_EV_CLOSE : WS_EV_DATA;
	bool ok = file_out.err == 0;
	if (ok && want_ev == WS_EV_DATA)
		ok = file_out.len == plen && memcmp(file_out.data, payload, plen) == 0 && !file_out.nctrl;
	else if (ok)
		ok = file_out.nctrl == 1 && file_out.ctrl[0] == want_ev && file_out.ctrl_len[0] == plen &&
		     memcmp(file_out.ctrl_data[0], payload, plen) == 0;
	if (!ok) {
		printf("rfc6455: decoding a frame (opcode %d, %zu bytes%s) failed: %s\n", op, plen,
		       cont_start ? ", message start" : "", file_out.why ? file_out.why : "wrong output");
		return 1;
	}
	(*count)++;
	return 0;
}

/* 0 passed, 1 failed, -1 no file. */
static int run_rfc_file(void)
{
	FILE *f = fopen(RFC_FILE, "rb");
	if (!f)
		return -1;
	static char text[1 << 16];
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	int bad = 0;
	unsigned frames = 0;
	const char *hk = strstr(text, "\"sec_websocket_key\":"), *ha = strstr(text, "\"sec_websocket_accept\":");
	if (!hk || !ha) {
		printf("rfc6455: no handshake values\n");
		bad = 1;
	} else {
		const char *k = strchr(hk + 20, '"') + 1, *a = strchr(ha + 23, '"') + 1;
		char acc[WS_ACCEPT_LEN + 1];
		size_t kl = (size_t)(strchr(k, '"') - k);
		if (ws_accept_key(k, kl, acc) != 0 || strncmp(acc, a, WS_ACCEPT_LEN) != 0) {
			printf("rfc6455: the accept key differs\n");
			bad = 1;
		}
	}
	for (const char *p = text; (p = strstr(p, "\"fin\":")) != NULL; p++) {
		const char *obj = p, *end = strchr(p, '}');
		while (obj > text && *obj != '{')
			obj--;
		bad |= rfc_frame(obj, end, &frames);
	}
	printf("rfc6455-examples.json: %u frames passed%s\n", frames, bad ? ", FAILURES above" : "");
	if (frames < 8)
		bad = 1;
	return bad;
}

/* ------------------------------------------------------------ built-in cases */

static void test_spec_examples(void **state)
{
	/* protocol.md#p-websocket: a client's Hello, masked 37fa213d */
	static const char hello_hex[] =
		"82a537fa213d37fa213d36182768a0912a152a5c638e9b3b179bda1b8a1143d29eb608c11fa401b61348a3";
	uint8_t wire[64], hello[37];
	size_t wl = unhex(hello_hex, wire, sizeof(wire));
	assert_int_equal(wl, 6 + 37);
	memcpy(hello, wire + 6, 37);
	ws_mask(hello, 37, wire + 2, 0);
	uint8_t enc[64];
	size_t hl = ws_frame_header(enc, true, WS_OP_BINARY, 37, (const uint8_t *)"\x37\xfa\x21\x3d");
	assert_int_equal(hl, 6);
	ws_mask_copy(enc + hl, hello, 37, enc + 2, 0);
	assert_memory_equal(enc, wire, wl);
	struct decoded *out = malloc(sizeof(*out));
	decode_both(true, wire, wl, out);
	assert_int_equal(out->err, 0);
	assert_int_equal(out->len, 37);
	assert_memory_equal(out->data, hello, 37);
	/* the same frame is refused by a client: masked from a server */
	decode(false, wire, wl, wl, out);
	assert_int_equal(out->err, MR_EWS);
	assert_string_equal(out->why, "a masked frame");

	/* the server's Ack Ok */
	uint8_t ack[] = { 0x82, 0x04, 0, 0, 0, 0 };
	assert_int_equal(ws_frame_header(enc, true, WS_OP_BINARY, 4, NULL), 2);
	assert_memory_equal(enc, ack, 2);
	decode_both(false, ack, sizeof(ack), out);
	assert_int_equal(out->err, 0);
	assert_int_equal(out->len, 4);
	decode(true, ack, sizeof(ack), 6, out);
	assert_string_equal(out->why, "an unmasked frame");

	/* the client's Close: 88 80 37fa213d */
	uint8_t close_f[] = { 0x88, 0x80, 0x37, 0xfa, 0x21, 0x3d };
	assert_int_equal(ws_frame_header(enc, true, WS_OP_CLOSE, 0, close_f + 2), 6);
	assert_memory_equal(enc, close_f, 6);
	decode_both(true, close_f, sizeof(close_f), out);
	assert_int_equal(out->err, 0);
	assert_int_equal(out->nctrl, 1);
	assert_int_equal(out->ctrl[0], WS_EV_CLOSE);
	assert_int_equal(out->ctrl_len[0], 0);
	free(out);
}

static void test_accept_key(void **state)
{
	char out[WS_ACCEPT_LEN + 1];
	assert_int_equal(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, out), 0);
	assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	/* RFC 6455 4.1's other example key (python: base64(sha1(k + GUID))) */
	assert_int_equal(ws_accept_key("x3JJHMbDL1EzLkh9GBhXDw==", 24, out), 0);
	assert_string_equal(out, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
}

static void test_length_forms(void **state)
{
	static const struct { uint64_t len; size_t hl; const char *hex; } cases[] = {
		{ 0, 2, "8200" }, { 1, 2, "8201" }, { 125, 2, "827d" }, { 126, 4, "827e007e" },
		{ 65535, 4, "827effff" }, { 65536, 10, "827f0000000000010000" },
		{ (uint64_t)16 << 20, 10, "827f0000000001000000" },
		{ 0x7fffffffffffffffull, 10, "827f7fffffffffffffff" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t h[WS_HDR_MAX], want[WS_HDR_MAX];
		assert_int_equal(ws_frame_header(h, true, WS_OP_BINARY, cases[i].len, NULL), cases[i].hl);
		unhex(cases[i].hex, want, sizeof(want));
		assert_memory_equal(h, want, cases[i].hl);
		/* masked: the key follows the length, the mask bit is set */
		assert_int_equal(ws_frame_header(h, true, WS_OP_BINARY, cases[i].len,
						 (const uint8_t *)"abcd"), cases[i].hl + 4);
		assert_true(h[1] & 0x80);
		assert_memory_equal(h + cases[i].hl, "abcd", 4);
	}
	/* every form round trips, masked at each phase, whole and byte by byte */
	static const size_t lens[] = { 0, 1, 7, 8, 9, 125, 126, 127, 1000, 65535, 65536, 70000 };
	struct decoded *out = malloc(sizeof(*out));
	uint8_t *wire = malloc(2 * (70000 + WS_HDR_MAX)), *pl = malloc(70000);
	for (size_t i = 0; i < 70000; i++)
		pl[i] = (uint8_t)(i ^ (i >> 8));
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		const uint8_t key[4] = { 0x11, 0x22, (uint8_t)i, 0x88 };
		size_t n = ws_frame_header(wire, true, WS_OP_BINARY, lens[i], key);
		ws_mask_copy(wire + n, pl, lens[i], key, 0);
		n += lens[i];
		/* and a second, unmasked-length frame after it */
		size_t m = ws_frame_header(wire + n, true, WS_OP_BINARY, 3, key);
		ws_mask_copy(wire + n + m, (const uint8_t *)"xyz", 3, key, 0);
		n += m + 3;
		decode_both(true, wire, n, out);
		assert_int_equal(out->err, 0);
		assert_int_equal(out->len, lens[i] + 3);
		assert_memory_equal(out->data, pl, lens[i]);
		assert_memory_equal(out->data + lens[i], "xyz", 3);
		decode(true, wire, n, 13, out);
		assert_int_equal(out->len, lens[i] + 3);
	}
	free(wire);
	free(pl);
	free(out);
}

static void test_fragments_and_control(void **state)
{
	/* a client reads: Binary "ab" (FIN=0), Ping "p", empty Cont, Pong,
	 * Cont "cd" (FIN), empty Binary, Binary "e", Close "\x03\xe8", data */
	static const uint8_t s[] = {
		0x02, 0x02, 'a', 'b',
		0x89, 0x01, 'p',
		0x00, 0x00,
		0x8a, 0x00,
		0x80, 0x02, 'c', 'd',
		0x82, 0x00,
		0x82, 0x01, 'e',
		0x88, 0x02, 0x03, 0xe8,
		0x82, 0x01, 'z', 0xff, 0xff,
	};
	struct decoded *out = malloc(sizeof(*out));
	decode_both(false, s, sizeof(s), out);
	assert_int_equal(out->err, 0);
	assert_int_equal(out->len, 5);
	assert_memory_equal(out->data, "abcde", 5);
	assert_int_equal(out->nctrl, 3);
	assert_int_equal(out->ctrl[0], WS_EV_PING);
	assert_int_equal(out->ctrl_len[0], 1);
	assert_int_equal(out->ctrl_data[0][0], 'p');
	assert_int_equal(out->ctrl[1], WS_EV_PONG);
	assert_int_equal(out->ctrl[2], WS_EV_CLOSE);
	assert_int_equal(out->ctrl_len[2], 2);
	free(out);
}

static void expect_error(bool server, const char *hex, const char *why)
{
	uint8_t in[64];
	size_t n = unhex(hex, in, sizeof(in));
	struct decoded *out = malloc(sizeof(*out));
	decode_both(server, in, n, out);
	if (out->err != MR_EWS || !out->why || strcmp(out->why, why) != 0)
		fail_msg("%s: got %d (%s), expected \"%s\"", hex, out->err, out->why ? out->why : "-", why);
	free(out);
}

static void test_errors(void **state)
{
	expect_error(false, "c200", "a frame with reserved bits set (an extension that was not negotiated)");
	expect_error(false, "9200", "a frame with reserved bits set (an extension that was not negotiated)");
	expect_error(false, "8300", "a frame with a reserved opcode");
	expect_error(false, "8b00", "a frame with a reserved opcode");
	expect_error(false, "8100", "a Text frame (the tunnel carries Binary frames only)");
	expect_error(false, "0100", "a Text frame (the tunnel carries Binary frames only)");
	expect_error(false, "0900", "a fragmented control frame");
	expect_error(false, "887e0080", "a control frame longer than 125 bytes");
	expect_error(false, "8880aabbccdd", "a masked frame");
	expect_error(true, "8200", "an unmasked frame");
	expect_error(false, "8000", "a continuation frame with no message to continue");
	expect_error(false, "0201618201", "a new message inside a fragmented one");
	expect_error(false, "827f8000000000000000", "a frame length with its top bit set");
	expect_error(false, "827f0000000001000001", "a frame over the 16 MiB limit");
	/* a header cut short is no error: more may come */
	uint8_t in[] = { 0x82, 0x7f, 0, 0 };
	struct decoded *out = malloc(sizeof(*out));
	decode_both(false, in, sizeof(in), out);
	assert_int_equal(out->err, 0);
	/* the size over the limit is reported */
	struct ws_decoder d;
	struct ws_event ev;
	uint8_t big[] = { 0x82, 0x7f, 0, 0, 0, 0, 0x01, 0x31, 0x2d, 0x00 };
	ws_decoder_init(&d, false);
	assert_int_equal(ws_decode(&d, big, sizeof(big), &ev), MR_EWS);
	assert_int_equal(d.bad_len, 20000000);
	free(out);
}

static void test_message_limit(void **state)
{
	/* four 16 MiB fragments fill the 64 MiB; one byte more is refused */
	size_t frag = (size_t)16 << 20;
	uint8_t *buf = calloc(1, frag);
	assert_non_null(buf);
	struct ws_decoder d;
	struct ws_event ev;
	ws_decoder_init(&d, false);
	uint64_t got = 0;
	for (int i = 0; i < 5; i++) {
		uint8_t h[WS_HDR_MAX];
		size_t hl = ws_frame_header(h, false, i ? WS_OP_CONT : WS_OP_BINARY, i < 4 ? frag : 1, NULL);
		ssize_t r = ws_decode(&d, h, hl, &ev);
		if (i == 4) {
			assert_int_equal(r, MR_EWS);
			assert_string_equal(d.why, "a message over the 64 MiB limit");
			assert_int_equal(d.bad_len, ((uint64_t)64 << 20) + 1);
			break;
		}
		assert_int_equal(r, (ssize_t)hl);
		assert_int_equal(ws_decoder_remaining(&d), frag);
		size_t pos = 0;
		while (pos < frag) {
			r = ws_decode(&d, buf + pos, frag - pos, &ev);
			assert_true(r > 0);
			assert_int_equal(ev.kind, WS_EV_DATA);
			pos += (size_t)r;
			got += ev.len;
		}
	}
	assert_int_equal(got, (uint64_t)64 << 20);
	free(buf);
}

static void test_after_close(void **state)
{
	uint8_t s[] = { 0x88, 0x00, 0x82, 0x01, 'x', 0x81, 0x00 };
	struct ws_decoder d;
	struct ws_event ev;
	ws_decoder_init(&d, false);
	assert_int_equal(ws_decode(&d, s, sizeof(s), &ev), 2);
	assert_int_equal(ev.kind, WS_EV_CLOSE);
	assert_int_equal(d.state, WS_DEC_CLOSED);
	/* later bytes are dropped, never delivered or refused */
	assert_int_equal(ws_decode(&d, s + 2, sizeof(s) - 2, &ev), (ssize_t)sizeof(s) - 2);
	assert_int_equal(ev.kind, WS_EV_NONE);
}

static void test_mask(void **state)
{
	const uint8_t key[4] = { 0x37, 0xfa, 0x21, 0x3d };
	uint8_t src[100], a[100], b[112];
	for (int i = 0; i < 100; i++)
		src[i] = (uint8_t)(i * 31 + 5);
	for (unsigned phase = 0; phase < 4; phase++) {
		for (size_t n = 0; n <= 100; n++) {
			memcpy(a, src, n);
			unsigned ph = ws_mask(a, n, key, phase);
			assert_int_equal(ph, (phase + n) & 3);
			for (size_t i = 0; i < n; i++)
				assert_int_equal(a[i], src[i] ^ key[(phase + i) & 3]);
			/* in pieces: the phase carries over */
			memcpy(b, src, n);
			unsigned p2 = ws_mask(b, n / 3, key, phase);
			ws_mask(b + n / 3, n - n / 3, key, p2);
			assert_memory_equal(a, b, n);
			/* a copy whose dst trails src by 1..12 bytes */
			for (size_t back = 1; back <= 12; back++) {
				memcpy(b + back, src, n);
				ws_mask_copy(b, b + back, n, key, phase);
				assert_memory_equal(b, a, n);
			}
		}
	}
}

static void expect_host(const char *in, const char *want)
{
	char out[300];
	int r = ws_host_header(in, out, sizeof(out));
	if (want == NULL) {
		if (r != MR_EFORMAT)
			fail_msg("%s: got %d (%s), expected a refusal", in, r, r >= 0 ? out : "-");
		return;
	}
	if (r < 0 || strcmp(out, want) != 0 || (size_t)r != strlen(want))
		fail_msg("%s: got %d (%s), expected %s", in, r, r >= 0 ? out : "-", want);
}

static void test_host_header(void **state)
{
	expect_host("Example.COM:2333", "example.com:2333");
	expect_host("example.com:80", "example.com");
	expect_host("example.com:080", "example.com");
	expect_host("example.com:0443", "example.com:443");
	expect_host("[::1]:2333", "[::1]:2333");
	expect_host("[::1]:80", "[::1]");
	expect_host("[0:0:0:0:0:0:0:1]:2333", "[::1]:2333");
	expect_host("[2001:DB8:0:0:1:0:0:1]:1", "[2001:db8::1:0:0:1]:1");
	expect_host("[2001:db8:0:1:1:1:1:1]:1", "[2001:db8:0:1:1:1:1:1]:1");
	expect_host("[::ffff:1.2.3.4]:9", "[::ffff:102:304]:9");
	expect_host("[::]:9", "[::]:9");
	expect_host("127.0.0.1:2333", "127.0.0.1:2333");
	expect_host("127.1:2333", "127.0.0.1:2333");
	expect_host("0x7f.0.0.1:5", "127.0.0.1:5");
	expect_host("127.0.0.1.:5", "127.0.0.1:5");
	expect_host("localhost:2333", "localhost:2333");
	expect_host("a-b_c.Example:1", "a-b_c.example:1");
	expect_host("1.2.3.256:5", NULL);
	expect_host("example.com", NULL);
	expect_host("example.com:", NULL);
	expect_host("example.com:65536", NULL);
	expect_host(":2333", NULL);
	expect_host("::1:2333", NULL);
	expect_host("[::1:2333", NULL);
	expect_host("[1.2.3.4]:5", NULL);
	expect_host("a b:5", NULL);
	expect_host("user@host:5", NULL);
	expect_host("h%41:5", NULL);
	expect_host("h\xc3\xa9:5", NULL);
	char small[8];
	assert_int_equal(ws_host_header("example.com:2333", small, sizeof(small)), MR_ELIMIT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spec_examples),
		cmocka_unit_test(test_accept_key),
		cmocka_unit_test(test_length_forms),
		cmocka_unit_test(test_fragments_and_control),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_message_limit),
		cmocka_unit_test(test_after_close),
		cmocka_unit_test(test_mask),
		cmocka_unit_test(test_host_header),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	int file = run_rfc_file();
	if (file < 0) {
		const char *ci = getenv("CI");
		bool in_ci = ci && strcmp(ci, "true") == 0;
		printf("%s: not found (../shared/testdata/websocket, present in CI); the built-in known "
		       "answers ran%s\n", RFC_FILE, in_ci ? ": a failure with CI=true" : "");
		file = in_ci ? 1 : 0;
	}
	return rc ? rc : file;
}
