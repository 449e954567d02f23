/* Fuzz target for the Noise handshake and transport (codec/noise.c).
 *
 * Two parties with fixed static and ephemeral keys run a real handshake:
 * an honest one (P) and the fuzzed one (F), whose every incoming message
 * is bent by the input. Byte 0 picks the setup:
 *   bits 0-1  pattern: NK, XX, KK, IK
 *   bit 2     F is the initiator (else the responder)
 *   bit 3     AESGCM (else ChaChaPoly)
 *   bits 4-5  hash: BLAKE2s, SHA256, SHA512, BLAKE2b
 *   bit 6     DH 448 (else 25519)
 *   bit 7     raw mode: F reads the chunk instead of P's message (else
 *             P's message XOR the chunk, longer chunks append)
 * The rest is chunks: cut:u8 (bytes dropped from the end of P's message,
 * xor mode), len:u16 little-endian, len bytes; one per message to F. An
 * all-zero chunk, or none once the input is used up, leaves the message
 * as it is, so an input of one byte runs a whole handshake and a few
 * transport messages each way.
 *
 * Checked: F reads every message from an exact-size heap copy (ASan sees
 * a read past the end); a read fails exactly as the message's length
 * says (MR_EPROTO_SHORT below the tokens' size, MR_ELIMIT for a payload
 * over the buffer, otherwise success or MR_ECRYPTO) and a success returns
 * the right length; an unchanged message from an undisturbed handshake is
 * accepted with its payload; a failed handshake stays FAILED and refuses
 * every call. After the split, P->F messages are bent the same way (the
 * nonce is resynchronised with noise_cipher_set_nonce after a failure),
 * and F->P messages carry the chunk as plaintext, encrypted in place. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "codec/noise.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

enum { PL_CAP = 48, STEPS_MAX = 16 };

static const char *const patterns[] = { "NK", "XX", "KK", "IK" };
static const char *const hashes[] = { "BLAKE2s", "SHA256", "SHA512", "BLAKE2b" };
static const uint8_t payload[] = { 'f', 'u', 'z', 'z' };

/* fixed keys (56 bytes: 448 uses all, 25519 the first 32) */
static const uint8_t key_s_i[NOISE_DH_MAX] = { 0xe6, 0x1e, 0xf9, 0x91, 0x9c, 0xde, 0x45, 0xdd, 0x5f, 0x82, 0x16, 0x64, 0x04, 0xbd, 0x08, 0xe3, 0x8b, 0xce, 0xb5, 0xdf, 0xdf, 0xde, 0xd0, 0xa3, 0x4c, 0x8d, 0xf7, 0xed, 0x54, 0x22, 0x14, 0xd1, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09 };
static const uint8_t key_s_r[NOISE_DH_MAX] = { 0x4a, 0x3a, 0xcb, 0xfd, 0xb1, 0x63, 0xde, 0xc6, 0x51, 0xdf, 0xa3, 0x19, 0x4d, 0xec, 0xe6, 0x76, 0xd4, 0x37, 0x02, 0x9c, 0x62, 0xa4, 0x08, 0xb4, 0xc5, 0xea, 0x91, 0x14, 0x24, 0x6e, 0x48, 0x93, 0x21, 0x32, 0x43, 0x54, 0x65, 0x76, 0x87, 0x98, 0xa9, 0xba, 0xcb, 0xdc, 0xed, 0xfe, 0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x69, 0x78, 0x87, 0x96 };
static const uint8_t key_e_i[NOISE_DH_MAX] = { 0x89, 0x3e, 0x28, 0xb9, 0xdc, 0x6c, 0xa8, 0xd6, 0x11, 0xab, 0x66, 0x47, 0x54, 0xb8, 0xce, 0xb7, 0xba, 0xc5, 0x11, 0x73, 0x49, 0xa4, 0x43, 0x9a, 0x6b, 0x05, 0x69, 0xda, 0x97, 0x7c, 0x46, 0x4a, 0x31, 0x41, 0x59, 0x26, 0x53, 0x58, 0x97, 0x93, 0x23, 0x84, 0x62, 0x64, 0x33, 0x83, 0x27, 0x95, 0x02, 0x88, 0x41, 0x97, 0x16, 0x93, 0x99, 0x37 };
static const uint8_t key_e_r[NOISE_DH_MAX] = { 0xbb, 0xdb, 0x4c, 0xdb, 0xd3, 0x09, 0xf1, 0xa1, 0xf2, 0xe1, 0x45, 0x69, 0x67, 0xfe, 0x28, 0x8c, 0xad, 0xd6, 0xf7, 0x12, 0xd6, 0x5d, 0xc7, 0xb7, 0x79, 0x3d, 0x5e, 0x63, 0xda, 0x6b, 0x37, 0x5b, 0x27, 0x18, 0x28, 0x18, 0x28, 0x45, 0x90, 0x45, 0x23, 0x53, 0x60, 0x28, 0x74, 0x71, 0x35, 0x26, 0x62, 0x49, 0x77, 0x57, 0x24, 0x70, 0x93, 0x69 };

struct input {
	const uint8_t *p;
	size_t len;
	bool raw;
};

/* P's message msg (n bytes) as the next chunk bends it, into a fresh
 * heap buffer of exactly *outlen bytes (at least 1 allocated). */
static uint8_t *bend(struct input *in, const uint8_t *msg, size_t n, size_t *outlen)
{
	size_t cut = 0, clen = 0;
	const uint8_t *chunk = NULL;
	if (in->len >= 3) {
		cut = in->p[0];
		clen = (size_t)in->p[1] | (size_t)in->p[2] << 8;
		in->p += 3;
		in->len -= 3;
		if (clen > in->len)
			clen = in->len;
		chunk = in->p;
		in->p += clen;
		in->len -= clen;
	} else {
		in->len = 0;
	}
	size_t len;
	uint8_t *out;
	if (in->raw) {
		len = clen;
		out = malloc(len ? len : 1);
		CHECK(out);
		if (len)
			memcpy(out, chunk, len);
	} else {
		size_t base = cut < n ? n - cut : 0;
		len = base > clen ? base : clen;
		out = malloc(len ? len : 1);
		CHECK(out);
		memset(out, 0, len ? len : 1);
		if (base)
			memcpy(out, msg, base);
		for (size_t i = 0; i < clen; i++)
			out[i] ^= chunk[i];
	}
	*outlen = len;
	return out;
}

/* a FAILED handshake refuses everything */
static void check_dead(struct noise_hs *hs)
{
	uint8_t buf[256], pl[PL_CAP];
	CHECK(noise_hs_action(hs) == NOISE_ACTION_FAILED);
	CHECK(noise_hs_write(hs, payload, sizeof(payload), buf, sizeof(buf)) < 0);
	memset(buf, 0, sizeof(buf));
	CHECK(noise_hs_read(hs, buf, sizeof(buf), pl, sizeof(pl)) < 0);
	struct noise_cipher *s = NULL, *r = NULL;
	CHECK(noise_hs_split(hs, &s, &r) < 0 && !s && !r);
	CHECK(noise_hs_action(hs) == NOISE_ACTION_FAILED);
}

/* P (with send) writes to F (with recv), bent; then F writes the chunk
 * back. */
static void transport(struct input *in, struct noise_cipher *psend, struct noise_cipher *precv,
		      struct noise_cipher *fsend, struct noise_cipher *frecv, bool diverged)
{
	static uint8_t buf[NOISE_MSG_MAX], pl[NOISE_MSG_MAX];
	/* a few messages even when the input is used up */
	for (int step = 0; step < STEPS_MAX && (step < 4 || in->len > 0); step++) {
		size_t plen = (size_t)step * 3 % 40;
		memset(pl, 'a' + step, plen);
		int n = noise_cipher_encrypt(psend, pl, plen, buf);
		CHECK(n == (int)(plen + NOISE_TAG_LEN));
		size_t mlen;
		uint8_t *m = bend(in, buf, (size_t)n, &mlen);
		uint64_t before = noise_cipher_nonce(frecv);
		int r = noise_cipher_decrypt(frecv, m, mlen, m); /* in place */
		bool same = mlen == (size_t)n && memcmp(m, buf, mlen) == 0;
		if (r >= 0) {
			CHECK((size_t)r + NOISE_TAG_LEN == mlen);
			CHECK(noise_cipher_nonce(frecv) == before + 1);
		} else {
			CHECK(r == MR_ECRYPTO || r == MR_ELIMIT);
			CHECK(noise_cipher_nonce(frecv) == before);
			CHECK(!same || diverged);
			noise_cipher_set_nonce(frecv, noise_cipher_nonce(psend));
		}
		if (same && !diverged)
			CHECK(r == (int)plen && memcmp(m, pl, plen) == 0);
		free(m);

		/* F -> P: up to 64 bytes of the input as plaintext, in place */
		size_t flen = in->len < 64 ? in->len : 64;
		uint8_t *f = malloc(flen + NOISE_TAG_LEN);
		CHECK(f);
		memcpy(f, in->p, flen);
		n = noise_cipher_encrypt(fsend, f, flen, f);
		CHECK(n == (int)(flen + NOISE_TAG_LEN));
		r = noise_cipher_decrypt(precv, f, (size_t)n, f);
		if (!diverged)
			CHECK(r == (int)flen && memcmp(f, in->p, flen) == 0);
		free(f);
	}
}

static void run(const uint8_t *data, size_t size)
{
	uint8_t flags = data[0];
	char name[NOISE_NAME_MAX + 1];
	struct noise_protocol p;
	const char *why;
	strcpy(name, "Noise_");
	strcat(name, patterns[flags & 3]);
	strcat(name, flags & 0x40 ? "_448_" : "_25519_");
	strcat(name, flags & 8 ? "AESGCM_" : "ChaChaPoly_");
	strcat(name, hashes[(flags >> 4) & 3]);
	if (noise_protocol_parse(name, &p, &why) != 0)
		return; /* 448 missing from this OpenSSL */

	uint8_t pub_i[NOISE_DH_MAX], pub_r[NOISE_DH_MAX];
	CHECK(noise_dh_public(p.dh, key_s_i, pub_i) == 0);
	CHECK(noise_dh_public(p.dh, key_s_r, pub_r) == 0);
	struct noise_hs *hs[2];
	hs[0] = noise_hs_new(&p, NOISE_INITIATOR, NULL, 0,
			     noise_needs_local_static(&p, NOISE_INITIATOR) ? key_s_i : NULL,
			     noise_needs_remote_static(&p, NOISE_INITIATOR) ? pub_r : NULL, NULL);
	hs[1] = noise_hs_new(&p, NOISE_RESPONDER, NULL, 0,
			     noise_needs_local_static(&p, NOISE_RESPONDER) ? key_s_r : NULL,
			     noise_needs_remote_static(&p, NOISE_RESPONDER) ? pub_i : NULL, NULL);
	CHECK(hs[0] && hs[1]);
	CHECK(noise_hs_set_ephemeral(hs[0], key_e_i) == 0);
	CHECK(noise_hs_set_ephemeral(hs[1], key_e_r) == 0);
	int fi = flags & 4 ? 0 : 1;
	struct noise_hs *F = hs[fi], *P = hs[1 - fi];
	struct input in = { data + 1, size - 1, (flags & 0x80) != 0 };
	static uint8_t msg[NOISE_MSG_MAX];
	uint8_t pl[PL_CAP];
	bool diverged = false;

	for (int step = 0; step < STEPS_MAX; step++) {
		enum noise_action af = noise_hs_action(F), ap = noise_hs_action(P);
		if (ap == NOISE_ACTION_WRITE) {
			CHECK(af == NOISE_ACTION_READ);
			int n = noise_hs_write(P, payload, sizeof(payload), msg, sizeof(msg));
			CHECK(n > (int)sizeof(payload));
			size_t over = (size_t)n - sizeof(payload), mlen;
			uint8_t *m = bend(&in, msg, (size_t)n, &mlen);
			bool same = mlen == (size_t)n && memcmp(m, msg, mlen) == 0;
			int r = noise_hs_read(F, m, mlen, pl, sizeof(pl));
			free(m);
			if (mlen < over)
				CHECK(r == MR_EPROTO_SHORT);
			else if (mlen - over > sizeof(pl))
				CHECK(r == MR_ELIMIT);
			else
				CHECK(r == MR_ECRYPTO || r == (int)(mlen - over));
			if (same && !diverged)
				CHECK(r == (int)sizeof(payload) && memcmp(pl, payload, sizeof(payload)) == 0);
			if (r < 0) {
				check_dead(F);
				break;
			}
			diverged = diverged || !same;
		} else if (af == NOISE_ACTION_WRITE) {
			CHECK(ap == NOISE_ACTION_READ);
			int n = noise_hs_write(F, payload, sizeof(payload), msg, sizeof(msg));
			if (n < 0) {
				/* a bent e it took (XX's first message has no tag)
				 * may be a low-order point: the DH fails */
				CHECK(diverged && n == MR_ECRYPTO);
				check_dead(F);
				break;
			}
			CHECK(n > (int)sizeof(payload));
			int r = noise_hs_read(P, msg, (size_t)n, pl, sizeof(pl));
			if (!diverged)
				CHECK(r == (int)sizeof(payload));
			if (r < 0) {
				check_dead(P);
				break;
			}
		} else {
			CHECK(af == NOISE_ACTION_SPLIT && ap == NOISE_ACTION_SPLIT);
			uint8_t h1[NOISE_HASH_MAX], h2[NOISE_HASH_MAX];
			size_t l1, l2;
			noise_hs_hash(F, h1, &l1);
			noise_hs_hash(P, h2, &l2);
			CHECK(l1 == p.hashlen && l2 == l1);
			CHECK(diverged || memcmp(h1, h2, l1) == 0);
			struct noise_cipher *fs, *fr, *ps, *pr;
			CHECK(noise_hs_split(F, &fs, &fr) == 0);
			CHECK(noise_hs_split(P, &ps, &pr) == 0);
			CHECK(fs && fr && ps && pr);
			struct noise_cipher *s2, *r2;
			CHECK(noise_hs_split(F, &s2, &r2) == MR_EPROTO_UNEXPECTED && !s2 && !r2);
			transport(&in, ps, pr, fs, fr, diverged);
			noise_cipher_free(fs);
			noise_cipher_free(fr);
			noise_cipher_free(ps);
			noise_cipher_free(pr);
			break;
		}
	}
	noise_hs_free(hs[0]);
	noise_hs_free(hs[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	run(data, size);
	return 0;
}
