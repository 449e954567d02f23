/* Fuzz target for keygen's base64 decoder: decode arbitrary bytes into a
 * bounded buffer; whatever decodes must re-encode to the canonical form of
 * the input (the input with its '=' padding completed), and that form must
 * decode to the same bytes. Also checks the X25519 derivation does not
 * fail on any 32-byte input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "codec/keygen.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

enum { OUT_CAP = 4096 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[OUT_CAP], again[OUT_CAP];
	static char enc[KEYGEN_B64_ENCODED_LEN(OUT_CAP) + 1];
	const char *in = (const char *)data;

	/* a small cap too, to exercise the bound */
	int small = keygen_b64_decode(in, size, out, 3);
	int r = keygen_b64_decode(in, size, out, sizeof(out));
	if (r < 0) {
		CHECK(r == MR_EFORMAT || r == MR_ELIMIT);
		CHECK(small < 0);
		return 0;
	}
	CHECK((size_t)r <= sizeof(out));
	CHECK(small == r || (r > 3 && small == MR_ELIMIT));

	size_t stripped = size;
	while (stripped > 0 && in[stripped - 1] == '=')
		stripped--;
	int e = keygen_b64_encode(out, (size_t)r, enc, sizeof(enc));
	CHECK(e >= 0 && (size_t)e == KEYGEN_B64_ENCODED_LEN((size_t)r));
	CHECK(enc[e] == '\0');
	/* canonical: the same characters, padding completed */
	CHECK((size_t)e >= stripped && (size_t)e - stripped <= 2);
	CHECK(memcmp(enc, in, stripped) == 0);
	for (size_t i = stripped; i < (size_t)e; i++)
		CHECK(enc[i] == '=');
	int r2 = keygen_b64_decode(enc, (size_t)e, again, sizeof(again));
	CHECK(r2 == r && memcmp(again, out, (size_t)r) == 0);
	/* and without padding */
	r2 = keygen_b64_decode(enc, stripped, again, sizeof(again));
	CHECK(r2 == r && memcmp(again, out, (size_t)r) == 0);

	if (r == KEYGEN_KEY_LEN) {
		uint8_t pub[KEYGEN_KEY_LEN];
		CHECK(keygen_x25519_public(out, pub) == 0);
	}
	return 0;
}
