/* udp_frame: the pure frame reader (protocol.md#p-udp-frame): protocol.md's examples in
 * every chunking, zero-copy payloads, decode errors and a payload gathered
 * across feeds. Frames are built here byte by byte from protocol.md's layout,
 * independently of proto.c. Links molerat_codec alone (no loop, no
 * sockets). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/err.h"
#include "codec/addr.h"
#include "codec/udp_frame.h"

#include "udp_frame_testutil.h"

/* ---------------------------------------------------------------- parser */

static void feed_all(struct udp_parser *p, const uint8_t *in, size_t len, size_t chunk,
		     struct udp_frame *out, uint8_t (*payloads)[128], size_t *nframes, int *err)
{
	size_t pos = 0;
	*nframes = 0;
	*err = 0;
	while (pos < len) {
		size_t n = len - pos < chunk ? len - pos : chunk;
		size_t used = 0;
		while (used < n) {
			struct udp_frame f;
			bool done;
			ssize_t r = udp_parser_feed(p, in + pos + used, n - used, &f, &done);
			if (r < 0) {
				*err = (int)r;
				return;
			}
			assert_true((size_t)r <= n - used);
			assert_true(r > 0 || done);
			used += (size_t)r;
			if (done) {
				assert_true(f.len <= 128);
				out[*nframes] = f;
				memcpy(payloads[*nframes], f.payload, f.len);
				(*nframes)++;
			}
		}
		pos += n;
	}
}

static void test_parser_spec_examples(void **state)
{
	uint8_t in[512];
	size_t n = 0;
	/* protocol.md#p-udp-frame: v4 "hello", v6 010203, and an empty v4 frame */
	n += unhex("0c00000000cb0071076cca050068656c6c6f", in + n, sizeof(in) - n);
	n += unhex("180100000020010db8000000000000000000000001bb010300010203", in + n, sizeof(in) - n);
	n += unhex("0c 00000000 01020304 0500 0000", in + n, sizeof(in) - n);
	/* hlen 14: a v4 header with 2 trailing bytes (allowed) and payload "x" */
	n += unhex("0e 00000000 7f000001 3930 0100 aabb 78", in + n, sizeof(in) - n);
	static const size_t chunks[] = { 1, 2, 3, 7, 13, 512 };
	for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
		struct udp_parser *p = malloc(sizeof(*p));
		udp_parser_init(p);
		struct udp_frame fr[8];
		uint8_t pl[8][128];
		size_t k;
		int err;
		feed_all(p, in, n, chunks[c], fr, pl, &k, &err);
		assert_int_equal(err, 0);
		assert_int_equal(k, 4);
		char s[ADDR_STRLEN];
		assert_string_equal(addr_str(&fr[0].from, s, sizeof(s)), "203.0.113.7:51820");
		assert_int_equal(fr[0].len, 5);
		assert_memory_equal(pl[0], "hello", 5);
		assert_string_equal(addr_str(&fr[1].from, s, sizeof(s)), "[2001:db8::1]:443");
		assert_int_equal(fr[1].len, 3);
		assert_memory_equal(pl[1], "\1\2\3", 3);
		assert_string_equal(addr_str(&fr[2].from, s, sizeof(s)), "1.2.3.4:5");
		assert_int_equal(fr[2].len, 0);
		assert_string_equal(addr_str(&fr[3].from, s, sizeof(s)), "127.0.0.1:12345");
		assert_int_equal(fr[3].len, 1);
		assert_memory_equal(pl[3], "x", 1);
		assert_int_equal(p->state, UDP_PARSE_HLEN);
		free(p);
	}
}

static void test_parser_zero_copy_and_errors(void **state)
{
	struct udp_parser *p = malloc(sizeof(*p));
	uint8_t in[64];
	size_t n = unhex("0c00000000cb0071076cca050068656c6c6f", in, sizeof(in));
	struct udp_frame f;
	bool done;
	udp_parser_init(p);
	/* a whole frame in one input: the payload points into the input */
	assert_int_equal(udp_parser_feed(p, in, n, &f, &done), (ssize_t)n);
	assert_true(done);
	assert_ptr_equal(f.payload, in + 13);
	/* an empty input consumes nothing and completes nothing */
	assert_int_equal(udp_parser_feed(p, in, 0, &f, &done), 0);
	assert_false(done);

	static const struct {
		const char *hex;
		int err;
	} bad[] = {
		{ "0c 02000000 7f000001 3930 0000", MR_EPROTO_TAG },       /* tag 2 */
		{ "0c ffffffff 7f000001 3930 0000", MR_EPROTO_TAG },
		{ "04 00000000", MR_EPROTO_SHORT },                         /* hlen 4, v4 tag */
		{ "0b 00000000 7f000001 3930 00", MR_EPROTO_SHORT },        /* hlen 11 */
		{ "0c 01000000 7f000001 3930 0000", MR_EPROTO_SHORT },      /* v6 tag in 12 bytes */
		{ "00", MR_EPROTO_SHORT },                                  /* hlen 0 */
		{ "03 000000", MR_EPROTO_SHORT },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		udp_parser_init(p);
		n = unhex(bad[i].hex, in, sizeof(in));
		ssize_t r = 0;
		size_t pos = 0;
		/* byte by byte: the error comes exactly when the header is whole */
		while (pos < n) {
			r = udp_parser_feed(p, in + pos, 1, &f, &done);
			if (r < 0)
				break;
			assert_int_equal(r, 1);
			assert_false(done);
			pos++;
		}
		assert_int_equal(r, bad[i].err);
		assert_int_equal(pos, n - 1);
		assert_int_equal(p->state, UDP_PARSE_FAILED);
		/* failed for good */
		assert_int_equal(udp_parser_feed(p, in, n, &f, &done), bad[i].err);
	}
	free(p);
}

static void test_parser_large_split(void **state)
{
	/* a 65535-byte payload split at every 4099 bytes is gathered whole */
	struct addr a = addr_of("2001:db8::7", 9);
	size_t plen = 65535;
	uint8_t *pl = malloc(plen), *in = malloc(plen + 64);
	fill(pl, plen, 3);
	size_t n = frame(in, &a, pl, plen);
	struct udp_parser *p = malloc(sizeof(*p));
	udp_parser_init(p);
	size_t pos = 0;
	int frames = 0;
	while (pos < n) {
		size_t c = n - pos < 4099 ? n - pos : 4099;
		struct udp_frame f;
		bool done;
		ssize_t r = udp_parser_feed(p, in + pos, c, &f, &done);
		assert_true(r > 0);
		pos += (size_t)r;
		if (done) {
			frames++;
			assert_int_equal(f.len, plen);
			assert_memory_equal(f.payload, pl, plen);
			assert_true(addr_equal(&f.from, &a));
		}
	}
	assert_int_equal(frames, 1);
	free(p);
	free(in);
	free(pl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parser_spec_examples),
		cmocka_unit_test(test_parser_zero_copy_and_errors),
		cmocka_unit_test(test_parser_large_split),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
