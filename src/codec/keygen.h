/* keygen: base64 for Noise keys, X25519 key pairs, and `--genkey` output
 * (protocol.md#p-noise "Keys" and "--genkey").
 *
 * Base64 is the standard alphabet (A-Z a-z 0-9 + /). Encoding always pads
 * with '='. Decoding accepts input with or without padding, and rejects
 * anything else: characters outside the alphabet (whitespace included),
 * '=' other than as the exact final padding, a length of 1 mod 4, and
 * non-zero trailing bits in the last character. The character mapping is
 * branch-free and table-free (no secret-dependent memory access), since
 * keys pass through it. */
#ifndef MOLERAT_KEYGEN_H
#define MOLERAT_KEYGEN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum {
	KEYGEN_KEY_LEN = 32,      /* raw X25519 key */
	KEYGEN_KEY_B64_LEN = 44,  /* its padded base64, without NUL */
	/* "Private Key:\n" B64 "\n\nPublic Key:\n" B64 "\n", without NUL */
	KEYGEN_PAIR_TEXT_LEN = 13 + KEYGEN_KEY_B64_LEN + 14 + KEYGEN_KEY_B64_LEN + 1,
};

/* Characters of the padded encoding of n bytes (without the NUL). */
#define KEYGEN_B64_ENCODED_LEN(n) ((((size_t)(n) + 2) / 3) * 4)

/* Writes the padded base64 of in[0..len) and a NUL into out (cap bytes, at
 * least KEYGEN_B64_ENCODED_LEN(len) + 1). Returns the number of characters
 * written (without the NUL), or MR_ELIMIT when cap is too small or the
 * result would not fit an int (nothing written then). */
int keygen_b64_encode(const uint8_t *in, size_t len, char *out, size_t cap);

/* Decodes in[0..len) (not NUL-terminated; no NUL allowed inside) into out
 * (cap bytes). Returns the number of bytes decoded, MR_EFORMAT on malformed
 * input (see the top of this file), or MR_ELIMIT when the decoded data
 * would not fit in cap. On failure out may hold partial output; callers
 * handling key material should wipe it. */
int keygen_b64_decode(const char *in, size_t len, uint8_t *out, size_t cap);

/* pub = X25519(priv, 9) (RFC 7748) through OpenSSL EVP_PKEY_X25519.
 * priv is used as given (clamping happens inside X25519).
 * Returns 0 or MR_ECRYPTO. */
int keygen_x25519_public(const uint8_t priv[KEYGEN_KEY_LEN], uint8_t pub[KEYGEN_KEY_LEN]);

/* A new key pair: priv = 32 bytes from the system CSPRNG
 * (RAND_priv_bytes), pub derived from it. Returns 0 or MR_ECRYPTO (both
 * buffers zeroed then). The caller wipes priv when done. */
int keygen_x25519_pair(uint8_t priv[KEYGEN_KEY_LEN], uint8_t pub[KEYGEN_KEY_LEN]);

/* Formats a pair exactly as rathole's --genkey prints it:
 * "Private Key:\n" B64(priv) "\n\nPublic Key:\n" B64(pub) "\n", plus a NUL.
 * out needs KEYGEN_PAIR_TEXT_LEN + 1 bytes. Returns KEYGEN_PAIR_TEXT_LEN
 * or MR_ELIMIT. */
int keygen_format_pair(char *out, size_t cap, const uint8_t priv[KEYGEN_KEY_LEN],
		       const uint8_t pub[KEYGEN_KEY_LEN]);

/* `molerat --genkey`: makes a fresh pair and writes its text to out.
 * Secrets are wiped before returning. Returns 0, MR_ECRYPTO, or -errno
 * (e.g. -EIO) when writing to out failed. */
int keygen_print_pair(FILE *out);

/* 1 when --genkey supports the curve: "x25519" only. "x448" (and anything
 * else) gives 0; rathole fails x448 with exit status 1. Case-sensitive, as
 * clap's value matching. NULL means the default curve (x25519): 1. */
int keygen_curve_supported(const char *curve);
/* 1 when curve is a value --genkey accepts on its command line at all
 * ("x25519", "x448"; NULL counts as the default), else 0: rathole's clap
 * rejects other values as a usage error before running. */
int keygen_curve_known(const char *curve);

#endif
