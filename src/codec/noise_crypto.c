/* noise_crypto: Noise's DH, cipher, hash, HMAC and HKDF over OpenSSL EVP.
 * See noise_crypto.h for the contract.
 *
 * HMAC is written here over the digest (RFC 2104) with the block lengths
 * Noise gives (section 12.7-12.10: 64 for SHA256 and BLAKE2s, 128 for
 * SHA512 and BLAKE2b), so nothing depends on what an EVP_MD reports as its
 * block size. The keys Noise passes to HMAC are HASHLEN bytes, never more
 * than a block. */
#include "codec/noise_crypto.h"

#include <limits.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "base/err.h"

enum { BLOCK_MAX = 128, IV_LEN = 12 };

/* Every MR_ECRYPTO goes through here: OpenSSL's error queue is per thread
 * and SSL_get_error reads it, so a failed decryption must leave nothing. */
static int fail(void)
{
	ERR_clear_error();
	return MR_ECRYPTO;
}

size_t ncr_dhlen(enum noise_dh dh)
{
	return dh == NOISE_DH_448 ? 56 : 32;
}

size_t ncr_hashlen(enum noise_hash h)
{
	return h == NOISE_HASH_SHA512 || h == NOISE_HASH_BLAKE2B ? 64 : 32;
}

static size_t blocklen(enum noise_hash h)
{
	return h == NOISE_HASH_SHA512 || h == NOISE_HASH_BLAKE2B ? 128 : 64;
}

static const EVP_MD *md_of(enum noise_hash h)
{
	switch (h) {
	case NOISE_HASH_SHA256:
		return EVP_sha256();
	case NOISE_HASH_SHA512:
		return EVP_sha512();
	case NOISE_HASH_BLAKE2S:
		return EVP_blake2s256();
	case NOISE_HASH_BLAKE2B:
		return EVP_blake2b512();
	}
	return NULL;
}

static int pkey_type(enum noise_dh dh)
{
	return dh == NOISE_DH_448 ? EVP_PKEY_X448 : EVP_PKEY_X25519;
}

/* ---- DH ---- */

static const char *pkey_name(enum noise_dh dh)
{
	return dh == NOISE_DH_448 ? "X448" : "X25519";
}

int ncr_dh_key_set(enum noise_dh dh, void **key, const uint8_t *priv, uint8_t *pub)
{
	size_t len = ncr_dhlen(dh), n = len;
	ncr_dh_key_free(key);
	/* the _ex constructor by name: no walk through the legacy tables */
	EVP_PKEY *sk = EVP_PKEY_new_raw_private_key_ex(NULL, pkey_name(dh), NULL, priv, len);
	if (!sk || EVP_PKEY_get_raw_public_key(sk, pub, &n) != 1 || n != len) {
		EVP_PKEY_free(sk);
		return fail();
	}
	*key = sk;
	return 0;
}

void ncr_dh_key_free(void **key)
{
	EVP_PKEY_free(*key); /* wipes its copy of the private key */
	*key = NULL;
}

int ncr_dh_with(enum noise_dh dh, void *key, const uint8_t *pub, uint8_t *out)
{
	size_t len = ncr_dhlen(dh), outlen = len;
	int r = MR_ECRYPTO;
	EVP_PKEY *pk = EVP_PKEY_new_raw_public_key_ex(NULL, pkey_name(dh), NULL, pub, len);
	EVP_PKEY_CTX *ctx = key && pk ? EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL) : NULL;
	if (!ctx || EVP_PKEY_derive_init(ctx) != 1 || EVP_PKEY_derive_set_peer(ctx, pk) != 1 ||
	    EVP_PKEY_derive(ctx, out, &outlen) != 1 || outlen != len)
		goto out;
	/* OpenSSL refuses an all-zero X25519/X448 result already; checked
	 * again here (constant time) so it cannot depend on that */
	uint8_t acc = 0;
	for (size_t i = 0; i < len; i++)
		acc |= out[i];
	if (acc != 0)
		r = 0;
out:
	if (r != 0) {
		OPENSSL_cleanse(out, len);
		r = fail();
	}
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pk);
	return r;
}

int ncr_dh(enum noise_dh dh, const uint8_t *priv, const uint8_t *pub, uint8_t *out)
{
	uint8_t mine[NOISE_DH_MAX];
	void *key = NULL;
	int r = ncr_dh_key_set(dh, &key, priv, mine);
	if (r == 0)
		r = ncr_dh_with(dh, key, pub, out);
	ncr_dh_key_free(&key);
	return r;
}

int noise_dh_public(enum noise_dh dh, const uint8_t *priv, uint8_t *pub)
{
	size_t len = ncr_dhlen(dh), n = len;
	EVP_PKEY *sk = EVP_PKEY_new_raw_private_key(pkey_type(dh), NULL, priv, len);
	int ok = sk && EVP_PKEY_get_raw_public_key(sk, pub, &n) == 1 && n == len;
	EVP_PKEY_free(sk);
	return ok ? 0 : fail();
}

bool ncr_dh_available(enum noise_dh dh)
{
	uint8_t priv[NOISE_DH_MAX] = { 9 }, pub[NOISE_DH_MAX];
	return noise_dh_public(dh, priv, pub) == 0;
}

/* ---- hash, HMAC, HKDF ---- */

static int digest2(EVP_MD_CTX *ctx, const EVP_MD *md, const uint8_t *a, size_t alen,
		   const uint8_t *b, size_t blen, const uint8_t *c, size_t clen, uint8_t *out)
{
	unsigned n;
	return EVP_DigestInit_ex(ctx, md, NULL) == 1 &&
	       (alen == 0 || EVP_DigestUpdate(ctx, a, alen) == 1) &&
	       (blen == 0 || EVP_DigestUpdate(ctx, b, blen) == 1) &&
	       (clen == 0 || EVP_DigestUpdate(ctx, c, clen) == 1) &&
	       EVP_DigestFinal_ex(ctx, out, &n) == 1;
}

int ncr_hash(enum noise_hash h, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
	     uint8_t *out)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = ctx && digest2(ctx, md_of(h), a, alen, b, blen, NULL, 0, out);
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : fail();
}

/* HMAC-HASH(key, d1 || d2) into out (hashlen bytes); keylen <= hashlen. */
static int hmac(EVP_MD_CTX *ctx, enum noise_hash h, const uint8_t *key, size_t keylen,
		const uint8_t *d1, size_t l1, const uint8_t *d2, size_t l2, uint8_t *out)
{
	const EVP_MD *md = md_of(h);
	size_t bl = blocklen(h);
	uint8_t pad[BLOCK_MAX], inner[NOISE_HASH_MAX];
	if (keylen > bl)
		return 0;
	memset(pad, 0x36, bl);
	for (size_t i = 0; i < keylen; i++)
		pad[i] ^= key[i];
	int ok = digest2(ctx, md, pad, bl, d1, l1, d2, l2, inner);
	for (size_t i = 0; i < bl; i++)
		pad[i] ^= 0x36 ^ 0x5c;
	ok = ok && digest2(ctx, md, pad, bl, inner, ncr_hashlen(h), NULL, 0, out);
	OPENSSL_cleanse(pad, sizeof(pad));
	OPENSSL_cleanse(inner, sizeof(inner));
	return ok;
}

int ncr_hkdf(enum noise_hash h, const uint8_t *ck, const uint8_t *ikm, size_t ikm_len,
	     uint8_t *o1, uint8_t *o2, uint8_t *o3)
{
	size_t hl = ncr_hashlen(h);
	uint8_t tk[NOISE_HASH_MAX];
	const uint8_t one = 1, two = 2, three = 3;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = ctx && hmac(ctx, h, ck, hl, ikm, ikm_len, NULL, 0, tk) &&
		 hmac(ctx, h, tk, hl, &one, 1, NULL, 0, o1) &&
		 hmac(ctx, h, tk, hl, o1, hl, &two, 1, o2) &&
		 (!o3 || hmac(ctx, h, tk, hl, o2, hl, &three, 1, o3));
	OPENSSL_cleanse(tk, sizeof(tk));
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : fail();
}

/* ---- AEAD ---- */

/* 4 zero bytes, then n: little-endian for ChaChaPoly, big-endian for
 * AESGCM (sections 12.3, 12.4). */
static void nonce_iv(enum noise_cipher_id id, uint64_t n, uint8_t iv[IV_LEN])
{
	memset(iv, 0, 4);
	for (unsigned i = 0; i < 8; i++) {
		uint8_t b = (uint8_t)(n >> (8 * i));
		if (id == NOISE_CIPHER_CHACHAPOLY)
			iv[4 + i] = b;
		else
			iv[IV_LEN - 1 - i] = b;
	}
}

int ncr_aead_key(struct ncr_aead *a, enum noise_cipher_id id, const uint8_t *key)
{
	EVP_CIPHER_CTX *ctx = a->ctx;
	if (ctx && a->id == id)
		return EVP_CipherInit_ex(ctx, NULL, NULL, key, NULL, -1) == 1 ? 0 : fail();
	ncr_aead_free(a);
	ctx = EVP_CIPHER_CTX_new();
	const EVP_CIPHER *c = id == NOISE_CIPHER_AESGCM ? EVP_aes_256_gcm() : EVP_chacha20_poly1305();
	if (!ctx || EVP_CipherInit_ex(ctx, c, NULL, key, NULL, 1) != 1) {
		EVP_CIPHER_CTX_free(ctx);
		return fail();
	}
	a->ctx = ctx;
	a->id = id;
	return 0;
}

int ncr_aead_seal(struct ncr_aead *a, uint64_t n, const uint8_t *ad, size_t ad_len,
		  const uint8_t *in, size_t len, uint8_t *out)
{
	EVP_CIPHER_CTX *ctx = a->ctx;
	uint8_t iv[IV_LEN];
	int outl = 0;
	if (!ctx || len > (size_t)INT_MAX - NOISE_TAG_LEN || ad_len > (size_t)INT_MAX)
		return fail();
	nonce_iv(a->id, n, iv);
	if (EVP_CipherInit_ex(ctx, NULL, NULL, NULL, iv, 1) != 1)
		return fail();
	if (ad_len && EVP_CipherUpdate(ctx, NULL, &outl, ad, (int)ad_len) != 1)
		return fail();
	if (len && (EVP_CipherUpdate(ctx, out, &outl, in, (int)len) != 1 || (size_t)outl != len))
		return fail();
	if (EVP_CipherFinal_ex(ctx, out + len, &outl) != 1 || outl != 0 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, NOISE_TAG_LEN, out + len) != 1)
		return fail();
	return 0;
}

int ncr_aead_open(struct ncr_aead *a, uint64_t n, const uint8_t *ad, size_t ad_len,
		  const uint8_t *in, size_t len, uint8_t *out)
{
	EVP_CIPHER_CTX *ctx = a->ctx;
	uint8_t iv[IV_LEN], tag[NOISE_TAG_LEN], fin[NOISE_TAG_LEN];
	int outl = 0;
	if (!ctx || len < NOISE_TAG_LEN || len > (size_t)INT_MAX || ad_len > (size_t)INT_MAX)
		return fail();
	size_t plen = len - NOISE_TAG_LEN;
	memcpy(tag, in + plen, NOISE_TAG_LEN); /* before out (maybe == in) is written */
	nonce_iv(a->id, n, iv);
	if (EVP_CipherInit_ex(ctx, NULL, NULL, NULL, iv, 0) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, NOISE_TAG_LEN, tag) != 1)
		return fail();
	if (ad_len && EVP_CipherUpdate(ctx, NULL, &outl, ad, (int)ad_len) != 1)
		return fail();
	int ok = 1;
	if (plen && (EVP_CipherUpdate(ctx, out, &outl, in, (int)plen) != 1 || (size_t)outl != plen))
		ok = 0;
	/* a stream AEAD's final writes nothing; out may be NULL when plen is 0 */
	if (ok && (EVP_CipherFinal_ex(ctx, fin, &outl) != 1 || outl != 0))
		ok = 0;
	if (!ok) {
		/* no unauthenticated plaintext leaves */
		if (plen)
			OPENSSL_cleanse(out, plen);
		return fail();
	}
	return 0;
}

int ncr_aead_rekey(struct ncr_aead *a)
{
	uint8_t zeros[NCR_KEY_LEN] = { 0 }, k[NCR_KEY_LEN + NOISE_TAG_LEN];
	int r = ncr_aead_seal(a, UINT64_MAX, NULL, 0, zeros, sizeof(zeros), k);
	if (r == 0)
		r = ncr_aead_key(a, a->id, k);
	OPENSSL_cleanse(k, sizeof(k));
	return r;
}

void ncr_aead_free(struct ncr_aead *a)
{
	EVP_CIPHER_CTX_free(a->ctx); /* the provider wipes the key schedule */
	a->ctx = NULL;
}
