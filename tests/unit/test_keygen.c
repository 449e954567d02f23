/* Unit tests for keygen: base64 (RFC 4648 protocol.md#p-process), X25519 (protocol.md#p-test-vectors),
 * --genkey output (protocol.md#p-noise). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "codec/keygen.h"

static const struct {
	const char *raw, *b64;
} rfc4648[] = {
	{ "", "" },
	{ "f", "Zg==" },
	{ "fo", "Zm8=" },
	{ "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" },
	{ "fooba", "Zm9vYmE=" },
	{ "foobar", "Zm9vYmFy" },
};

static void test_b64_encode_rfc(void **state)
{
	(void)state;
	char out[16];
	for (size_t i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
		size_t n = strlen(rfc4648[i].raw);
		memset(out, 'X', sizeof(out));
		int r = keygen_b64_encode((const uint8_t *)rfc4648[i].raw, n, out, sizeof(out));
		assert_int_equal(r, (int)strlen(rfc4648[i].b64));
		assert_int_equal(r, (int)KEYGEN_B64_ENCODED_LEN(n));
		assert_string_equal(out, rfc4648[i].b64);
		/* exactly enough room, and one byte less */
		assert_int_equal(keygen_b64_encode((const uint8_t *)rfc4648[i].raw, n, out, (size_t)r + 1), r);
		assert_int_equal(keygen_b64_encode((const uint8_t *)rfc4648[i].raw, n, out, (size_t)r), MR_ELIMIT);
	}
}

/* Decodes s (its strlen) into a buffer of cap bytes; exact-size input copy. */
static int dec(const char *s, uint8_t *out, size_t cap)
{
	size_t n = strlen(s);
	char *c = malloc(n ? n : 1);
	assert_non_null(c);
	memcpy(c, s, n);
	int r = keygen_b64_decode(c, n, out, cap);
	free(c);
	return r;
}

static void test_b64_decode_rfc(void **state)
{
	(void)state;
	uint8_t out[16];
	char nopad[16];
	for (size_t i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
		size_t n = strlen(rfc4648[i].raw);
		/* padded */
		assert_int_equal(dec(rfc4648[i].b64, out, sizeof(out)), (int)n);
		assert_memory_equal(out, rfc4648[i].raw, n);
		/* unpadded */
		snprintf(nopad, sizeof(nopad), "%s", rfc4648[i].b64);
		char *eq = strchr(nopad, '=');
		if (eq)
			*eq = '\0';
		assert_int_equal(dec(nopad, out, sizeof(out)), (int)n);
		assert_memory_equal(out, rfc4648[i].raw, n);
		/* output bound: exact cap works, one less is refused */
		assert_int_equal(dec(rfc4648[i].b64, out, n), (int)n);
		if (n > 0)
			assert_int_equal(dec(rfc4648[i].b64, out, n - 1), MR_ELIMIT);
	}
}

static void test_b64_decode_reject(void **state)
{
	(void)state;
	uint8_t out[64];
	static const char *bad[] = {
		"Z",          /* 1 mod 4 */
		"Zm9vY",      /* 1 mod 4 */
		"Zm9vY===",   /* too much padding */
		"Zg=",        /* partial padding */
		"Zg===",      /* padding too long */
		"Zm8==",      /* 2 pads after 3 chars */
		"Zm9v=",      /* padding after a full group */
		"Zm9v====",
		"=",
		"==",
		"====",
		"Zg==Zg==",   /* padding inside */
		"Z=g=",
		"Zm 9v",      /* whitespace */
		"Zm9v\n",
		" Zm9v",
		"Zm9-",       /* url-safe alphabet */
		"Zm9_",
		"Zm.v",
		"Zm9\x80",
		"Zm9\xff",
		"Zh==",       /* non-zero trailing bits (Zg== is canonical) */
		"Zh",
		"Zm9=",       /* Zm8= is canonical */
		"Zm9",
		"Zm9vYmF=",   /* Zm9vYmE= is canonical */
		"Zm9vYmF",
		"AB==",
		"AAB=",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = dec(bad[i], out, sizeof(out));
		if (r != MR_EFORMAT)
			fail_msg("\"%s\" gave %d, expected MR_EFORMAT", bad[i], r);
	}
	/* an embedded NUL is not a base64 character */
	assert_int_equal(keygen_b64_decode("Zm\0v", 4, out, sizeof(out)), MR_EFORMAT);
	/* every byte value outside the alphabet, at every position of a group */
	for (int ch = 0; ch < 256; ch++) {
		int ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
			 ch == '+' || ch == '/';
		for (int pos = 0; pos < 4; pos++) {
			char s[4] = { 'A', 'A', 'A', 'A' };
			s[pos] = (char)ch;
			int r = keygen_b64_decode(s, 4, out, sizeof(out));
			if (ok)
				assert_int_equal(r, 3);
			else if (ch == '=' && pos >= 2)
				assert_true(r == 1 || r == 2 || r == MR_EFORMAT);
			else
				assert_int_equal(r, MR_EFORMAT);
		}
	}
}

static void test_b64_alphabet(void **state)
{
	(void)state;
	/* all 64 values in order: 48 bytes 0x00 0x10 0x83 0x10 0x51 0x87 ... */
	static const char all[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	uint8_t bytes[48];
	assert_int_equal(keygen_b64_decode(all, 64, bytes, sizeof(bytes)), 48);
	for (int i = 0; i < 16; i++) {
		uint32_t w = (uint32_t)(4 * i) << 18 | (uint32_t)(4 * i + 1) << 12 | (uint32_t)(4 * i + 2) << 6 |
			     (uint32_t)(4 * i + 3);
		assert_int_equal(bytes[3 * i], (w >> 16) & 0xff);
		assert_int_equal(bytes[3 * i + 1], (w >> 8) & 0xff);
		assert_int_equal(bytes[3 * i + 2], w & 0xff);
	}
	char back[65];
	assert_int_equal(keygen_b64_encode(bytes, sizeof(bytes), back, sizeof(back)), 64);
	assert_string_equal(back, all);

	/* all byte values round-trip, every length 0..256 */
	uint8_t in[256], dec_buf[256];
	char enc[KEYGEN_B64_ENCODED_LEN(256) + 1];
	for (int i = 0; i < 256; i++)
		in[i] = (uint8_t)(255 - i);
	for (size_t n = 0; n <= 256; n++) {
		int e = keygen_b64_encode(in, n, enc, sizeof(enc));
		assert_int_equal(e, (int)KEYGEN_B64_ENCODED_LEN(n));
		assert_int_equal(keygen_b64_decode(enc, (size_t)e, dec_buf, sizeof(dec_buf)), (int)n);
		assert_memory_equal(dec_buf, in, n);
	}
}

#define SPEC_PRIV_B64 "2q30ZwFo22JI4NLDtxCYeCyKCKFgd+O8FC0VUNg7Dos="
#define SPEC_PUB_B64 "HN7XPmAsbw0ZFZT/gLuzaWu+oy1QIMMV1q5v/W8pVnw="

static void test_x25519_spec_vector(void **state)
{
	(void)state;
	uint8_t priv[KEYGEN_KEY_LEN], pub[KEYGEN_KEY_LEN];
	static const uint8_t priv_raw[32] = {
		0xda, 0xad, 0xf4, 0x67, 0x01, 0x68, 0xdb, 0x62, 0x48, 0xe0, 0xd2, 0xc3, 0xb7, 0x10, 0x98, 0x78,
		0x2c, 0x8a, 0x08, 0xa1, 0x60, 0x77, 0xe3, 0xbc, 0x14, 0x2d, 0x15, 0x50, 0xd8, 0x3b, 0x0e, 0x8b,
	};
	static const uint8_t pub_raw[32] = {
		0x1c, 0xde, 0xd7, 0x3e, 0x60, 0x2c, 0x6f, 0x0d, 0x19, 0x15, 0x94, 0xff, 0x80, 0xbb, 0xb3, 0x69,
		0x6b, 0xbe, 0xa3, 0x2d, 0x50, 0x20, 0xc3, 0x15, 0xd6, 0xae, 0x6f, 0xfd, 0x6f, 0x29, 0x56, 0x7c,
	};
	assert_int_equal(dec(SPEC_PRIV_B64, priv, sizeof(priv)), 32);
	assert_memory_equal(priv, priv_raw, 32);
	/* the same key without padding */
	assert_int_equal(dec("2q30ZwFo22JI4NLDtxCYeCyKCKFgd+O8FC0VUNg7Dos", priv, sizeof(priv)), 32);
	assert_memory_equal(priv, priv_raw, 32);
	assert_int_equal(keygen_x25519_public(priv, pub), 0);
	assert_memory_equal(pub, pub_raw, 32);
	char b64[KEYGEN_KEY_B64_LEN + 1];
	assert_int_equal(keygen_b64_encode(pub, 32, b64, sizeof(b64)), KEYGEN_KEY_B64_LEN);
	assert_string_equal(b64, SPEC_PUB_B64);

	/* RFC 7748 protocol.md#p-constants Alice */
	static const char alice_priv[] = "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=";
	static const char alice_pub[] = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=";
	assert_int_equal(dec(alice_priv, priv, sizeof(priv)), 32);
	assert_int_equal(priv[0], 0x77);
	assert_int_equal(keygen_x25519_public(priv, pub), 0);
	assert_int_equal(keygen_b64_encode(pub, 32, b64, sizeof(b64)), KEYGEN_KEY_B64_LEN);
	assert_string_equal(b64, alice_pub);
}

static void test_x25519_pairs(void **state)
{
	(void)state;
	uint8_t priv1[32], pub1[32], priv2[32], pub2[32], check[32];
	assert_int_equal(keygen_x25519_pair(priv1, pub1), 0);
	assert_int_equal(keygen_x25519_pair(priv2, pub2), 0);
	assert_memory_not_equal(priv1, priv2, 32);
	assert_memory_not_equal(pub1, pub2, 32);
	assert_int_equal(keygen_x25519_public(priv1, check), 0);
	assert_memory_equal(check, pub1, 32);
	assert_int_equal(keygen_x25519_public(priv2, check), 0);
	assert_memory_equal(check, pub2, 32);
}

/* Parses the --genkey text back and checks the pair is consistent. */
static void check_pair_text(const char *text)
{
	assert_int_equal(strlen(text), KEYGEN_PAIR_TEXT_LEN);
	assert_memory_equal(text, "Private Key:\n", 13);
	assert_memory_equal(text + 13 + 44, "\n\nPublic Key:\n", 14);
	assert_int_equal(text[KEYGEN_PAIR_TEXT_LEN - 1], '\n');
	uint8_t priv[32], pub[32], derived[32];
	assert_int_equal(keygen_b64_decode(text + 13, 44, priv, sizeof(priv)), 32);
	assert_int_equal(keygen_b64_decode(text + 13 + 44 + 14, 44, pub, sizeof(pub)), 32);
	assert_int_equal(keygen_x25519_public(priv, derived), 0);
	assert_memory_equal(derived, pub, 32);
}

static void test_format_pair(void **state)
{
	(void)state;
	uint8_t priv[32], pub[32];
	assert_int_equal(dec(SPEC_PRIV_B64, priv, sizeof(priv)), 32);
	assert_int_equal(dec(SPEC_PUB_B64, pub, sizeof(pub)), 32);
	char text[KEYGEN_PAIR_TEXT_LEN + 1];
	assert_int_equal(keygen_format_pair(text, sizeof(text), priv, pub), KEYGEN_PAIR_TEXT_LEN);
	assert_string_equal(text, "Private Key:\n" SPEC_PRIV_B64 "\n\nPublic Key:\n" SPEC_PUB_B64 "\n");
	assert_int_equal(keygen_format_pair(text, sizeof(text) - 1, priv, pub), MR_ELIMIT);
	check_pair_text(text);
}

static void test_print_pair(void **state)
{
	(void)state;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	assert_int_equal(keygen_print_pair(f), 0);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(len, KEYGEN_PAIR_TEXT_LEN);
	check_pair_text(buf);
	free(buf);

	/* a stream that cannot be written reports an error */
	f = fopen("/dev/full", "w");
	if (f) {
		setvbuf(f, NULL, _IONBF, 0);
		int r = keygen_print_pair(f);
		assert_true(r < 0);
		fclose(f);
	}
}

static void test_curves(void **state)
{
	(void)state;
	assert_int_equal(keygen_curve_supported("x25519"), 1);
	assert_int_equal(keygen_curve_supported(NULL), 1);
	assert_int_equal(keygen_curve_supported("x448"), 0);
	assert_int_equal(keygen_curve_supported("X25519"), 0);
	assert_int_equal(keygen_curve_supported(""), 0);
	assert_int_equal(keygen_curve_supported("x25519 "), 0);
	assert_int_equal(keygen_curve_known("x25519"), 1);
	assert_int_equal(keygen_curve_known("x448"), 1);
	assert_int_equal(keygen_curve_known(NULL), 1);
	assert_int_equal(keygen_curve_known("ed25519"), 0);
	assert_int_equal(keygen_curve_known("X448"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64_encode_rfc),
		cmocka_unit_test(test_b64_decode_rfc),
		cmocka_unit_test(test_b64_decode_reject),
		cmocka_unit_test(test_b64_alphabet),
		cmocka_unit_test(test_x25519_spec_vector),
		cmocka_unit_test(test_x25519_pairs),
		cmocka_unit_test(test_format_pair),
		cmocka_unit_test(test_print_pair),
		cmocka_unit_test(test_curves),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
