/* noise_crypto: the primitives under codec/noise.c, over OpenSSL 3 EVP:
 * DH (X25519, X448), the AEAD ciphers (ChaChaPoly, AESGCM) with Noise's
 * nonce encoding, HASH, HMAC and HKDF as Noise revision 34 defines them
 * (sections 4 and 12). Pure: no I/O, no global state.
 *
 * Ownership: a struct ncr_aead owns one EVP_CIPHER_CTX, made when the first
 * key is set and keyed once per key; a message only sets the IV, so seal
 * and open allocate nothing. ncr_aead_free wipes and frees the context
 * (OpenSSL cleanses the key schedule on free). Callers own every buffer.
 *
 * Errors: MR_ECRYPTO for any failure of OpenSSL or a DH; the thread's
 * OpenSSL error queue is cleared before returning it, so nothing is left
 * for an unrelated SSL_get_error to find. */
#ifndef MOLERAT_NOISE_CRYPTO_H
#define MOLERAT_NOISE_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/noise.h"

enum {
	NCR_KEY_LEN = 32, /* a cipher key */
};

size_t ncr_dhlen(enum noise_dh dh);
size_t ncr_hashlen(enum noise_hash h);
/* Whether this OpenSSL can do the DH function (X448 may be missing). */
bool ncr_dh_available(enum noise_dh dh);

/* DH(priv, pub) into out (dhlen bytes each). MR_ECRYPTO when OpenSSL
 * refuses the keys or the result is all zeros (a low-order point). */
int ncr_dh(enum noise_dh dh, const uint8_t *priv, const uint8_t *pub, uint8_t *out);

/* A private key held as OpenSSL's key object, so that the public key is
 * computed once (when it is set) and each DH with it is one scalar
 * multiplication. *key is NULL or owned by the caller (ncr_dh_key_free,
 * which wipes OpenSSL's copy). set: from priv, replacing any key in *key,
 * and pub (dhlen bytes) filled; 0 or MR_ECRYPTO. */
int ncr_dh_key_set(enum noise_dh dh, void **key, const uint8_t *priv, uint8_t *pub);
/* DH(key, pub) into out, as ncr_dh. */
int ncr_dh_with(enum noise_dh dh, void *key, const uint8_t *pub, uint8_t *out);
void ncr_dh_key_free(void **key);

/* HASH(a || b) into out (hashlen bytes); b may be NULL with blen 0. */
int ncr_hash(enum noise_hash h, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
	     uint8_t *out);
/* HKDF(ck, ikm, n) for n = 2 or 3 (o3 NULL for 2): each output hashlen
 * bytes; the outputs may not overlap ck or ikm. */
int ncr_hkdf(enum noise_hash h, const uint8_t *ck, const uint8_t *ikm, size_t ikm_len,
	     uint8_t *o1, uint8_t *o2, uint8_t *o3);

struct ncr_aead {
	void *ctx; /* EVP_CIPHER_CTX, NULL until the first key */
	enum noise_cipher_id id;
};

/* Sets the key (NCR_KEY_LEN bytes), making the context on first use. */
int ncr_aead_key(struct ncr_aead *a, enum noise_cipher_id id, const uint8_t *key);
/* ENCRYPT(k, n, ad, in): out gets len + NOISE_TAG_LEN bytes (out == in
 * allowed; no other overlap). len and ad_len at most INT_MAX. */
int ncr_aead_seal(struct ncr_aead *a, uint64_t n, const uint8_t *ad, size_t ad_len,
		  const uint8_t *in, size_t len, uint8_t *out);
/* DECRYPT(k, n, ad, in): in is len bytes with the tag (len >=
 * NOISE_TAG_LEN); out gets len - NOISE_TAG_LEN bytes (out == in allowed).
 * MR_ECRYPTO when the tag does not verify; out is then zeroed. */
int ncr_aead_open(struct ncr_aead *a, uint64_t n, const uint8_t *ad, size_t ad_len,
		  const uint8_t *in, size_t len, uint8_t *out);
/* REKEY(k): the key becomes the first 32 bytes of ENCRYPT(k, 2^64-1,
 * empty, 32 zero bytes). */
int ncr_aead_rekey(struct ncr_aead *a);
void ncr_aead_free(struct ncr_aead *a);

#endif
