/* noise: the Noise Protocol Framework, revision 34. See noise.h for the
 * contract; the primitives are in noise_crypto.c.
 *
 * The three objects of the spec's section 5 map as:
 *   CipherState      struct noise_cipher (one EVP context, keyed once per
 *                    key; a message only sets the nonce)
 *   SymmetricState   struct symm (a CipherState + ck + h), inside the hs
 *   HandshakeState   struct noise_hs
 * A handshake turns its pattern (the table below, sections 7.4 and 7.5)
 * into per-message token lists with the psk tokens put in (section 9.2)
 * when it is made. Every message's size is worked out from its tokens
 * before any state changes, so a short message or a small output buffer
 * is refused up front. Any failure but a too small output makes the
 * handshake FAILED for good.
 *
 * Ownership: the hs and each cipher are single heap objects owned by the
 * caller; their frees wipe the whole object (keys, ck, h) and free the EVP
 * contexts. */
#include "codec/noise.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "base/err.h"
#include "codec/noise_crypto.h"

/* ---- patterns ---- */

enum token {
	T_END = 0,
	T_E,
	T_S,
	T_EE,
	T_ES,
	T_SE,
	T_SS,
	T_PSK, /* T_PSK + i: the psk<i> token */
};

enum {
	PRE_I = 1,      /* "-> s" pre-message: the responder knows the initiator's s */
	PRE_R = 2,      /* "<- s" pre-message: the initiator knows the responder's s */
	MSGS_MAX = 3,   /* the fundamental patterns have at most 3 messages */
	BASE_TOKENS = 6,
	TOKENS_MAX = BASE_TOKENS + 2 + 1, /* + psk0 + psk<n> + T_END */
	PSK_MAX = 4,    /* psk0..psk3 */
};

struct pattern {
	char name[3];
	uint8_t pre;
	uint8_t nmsgs;
	uint8_t msg[MSGS_MAX][BASE_TOKENS]; /* T_END-terminated unless full */
};

/* Messages alternate, the initiator's first (index 0). */
static const struct pattern patterns[] = {
	/* one-way (7.4) */
	{ "N", PRE_R, 1, { { T_E, T_ES } } },
	{ "K", PRE_I | PRE_R, 1, { { T_E, T_ES, T_SS } } },
	{ "X", PRE_R, 1, { { T_E, T_ES, T_S, T_SS } } },
	/* interactive (7.5) */
	{ "NN", 0, 2, { { T_E }, { T_E, T_EE } } },
	{ "NK", PRE_R, 2, { { T_E, T_ES }, { T_E, T_EE } } },
	{ "NX", 0, 2, { { T_E }, { T_E, T_EE, T_S, T_ES } } },
	{ "XN", 0, 3, { { T_E }, { T_E, T_EE }, { T_S, T_SE } } },
	{ "XK", PRE_R, 3, { { T_E, T_ES }, { T_E, T_EE }, { T_S, T_SE } } },
	{ "XX", 0, 3, { { T_E }, { T_E, T_EE, T_S, T_ES }, { T_S, T_SE } } },
	{ "KN", PRE_I, 2, { { T_E }, { T_E, T_EE, T_SE } } },
	{ "KK", PRE_I | PRE_R, 2, { { T_E, T_ES, T_SS }, { T_E, T_EE, T_SE } } },
	{ "KX", PRE_I, 2, { { T_E }, { T_E, T_EE, T_SE, T_S, T_ES } } },
	{ "IN", 0, 2, { { T_E, T_S }, { T_E, T_EE, T_SE } } },
	{ "IK", PRE_R, 2, { { T_E, T_ES, T_S, T_SS }, { T_E, T_EE, T_SE } } },
	{ "IX", 0, 2, { { T_E, T_S }, { T_E, T_EE, T_SE, T_S, T_ES } } },
};

enum { NPATTERNS = sizeof(patterns) / sizeof(patterns[0]) };

static bool protocol_valid(const struct noise_protocol *p)
{
	if (!p || p->pattern >= NPATTERNS || (unsigned)p->dh > NOISE_DH_448 ||
	    (unsigned)p->cipher > NOISE_CIPHER_AESGCM || (unsigned)p->hash > NOISE_HASH_BLAKE2B)
		return false;
	/* psk<i> for i > 0 goes at the end of message i - 1 */
	unsigned nmsgs = patterns[p->pattern].nmsgs;
	return (p->psk_mask >> (nmsgs + 1)) == 0;
}

/* Whether the party in role sends its s in a message. */
static bool sends_static(const struct pattern *pt, enum noise_role role)
{
	for (unsigned m = role == NOISE_INITIATOR ? 0 : 1; m < pt->nmsgs; m += 2)
		for (unsigned i = 0; i < BASE_TOKENS && pt->msg[m][i] != T_END; i++)
			if (pt->msg[m][i] == T_S)
				return true;
	return false;
}

bool noise_needs_local_static(const struct noise_protocol *p, enum noise_role role)
{
	if (!protocol_valid(p))
		return false;
	const struct pattern *pt = &patterns[p->pattern];
	return (pt->pre & (role == NOISE_INITIATOR ? PRE_I : PRE_R)) || sends_static(pt, role);
}

bool noise_needs_remote_static(const struct noise_protocol *p, enum noise_role role)
{
	if (!protocol_valid(p))
		return false;
	return (patterns[p->pattern].pre & (role == NOISE_INITIATOR ? PRE_R : PRE_I)) != 0;
}

/* ---- noise_protocol_parse ---- */

static const char WHY_FORM[] = "the name is not of the form Noise_PATTERN_DH_CIPHER_HASH";

/* The pattern part: a base pattern, then modifiers: "XX", "XXpsk3",
 * "NNpsk0+psk2". Sets pattern and psk_mask, or returns why not. */
static const char *parse_pattern(const char *s, size_t len, struct noise_protocol *p)
{
	size_t b = 0;
	while (b < len && s[b] >= 'A' && s[b] <= 'Z')
		b++;
	unsigned idx = NPATTERNS;
	for (unsigned i = 0; i < NPATTERNS; i++)
		if (strlen(patterns[i].name) == b && memcmp(patterns[i].name, s, b) == 0)
			idx = i;
	if (idx == NPATTERNS)
		return "the handshake pattern is unknown";
	p->pattern = idx;
	p->psk_mask = 0;
	size_t i = b;
	while (i < len) {
		size_t e = i;
		while (e < len && s[e] != '+')
			e++;
		const char *m = s + i;
		size_t n = e - i;
		if (n == 8 && memcmp(m, "fallback", 8) == 0)
			return "the fallback modifier is not supported";
		if (n == 3 && memcmp(m, "hfs", 3) == 0)
			return "the hfs modifier is not supported";
		if (n < 4 || memcmp(m, "psk", 3) != 0 || m[3] < '0' || m[3] > '9')
			return "the handshake pattern is unknown";
		if (n != 4 || (unsigned)(m[3] - '0') > patterns[idx].nmsgs)
			return "a psk modifier names a message the pattern does not have";
		unsigned bit = 1u << (m[3] - '0');
		if (p->psk_mask & bit)
			return "a psk modifier is repeated";
		p->psk_mask |= bit;
		if (e == len)
			break;
		i = e + 1;
		if (i == len)
			return "the handshake pattern is unknown"; /* a trailing '+' */
	}
	const char *name = patterns[idx].name;
	p->one_way = name[1] == '\0';
	p->initiator_static = name[0];
	p->responder_static = name[1];
	return NULL;
}

static bool part_is(const char *s, size_t len, const char *word)
{
	return strlen(word) == len && memcmp(s, word, len) == 0;
}

int noise_protocol_parse(const char *name, struct noise_protocol *out, const char **why)
{
	struct noise_protocol p;
	const char *w = NULL;
	memset(&p, 0, sizeof(p));
	size_t len = name ? strnlen(name, NOISE_NAME_MAX + 1) : 0;
	/* the five '_'-separated parts */
	const char *part[5];
	size_t plen[5], nparts = 0, start = 0;
	if (!name || len == 0) {
		w = WHY_FORM;
		goto out;
	}
	if (len > NOISE_NAME_MAX) {
		w = "the name is longer than 64 characters";
		goto out;
	}
	for (size_t i = 0; i <= len; i++) {
		if (i < len && name[i] != '_')
			continue;
		if (nparts == 5 || i == start) {
			w = WHY_FORM;
			goto out;
		}
		part[nparts] = name + start;
		plen[nparts++] = i - start;
		start = i + 1;
	}
	if (nparts != 5 || !part_is(part[0], plen[0], "Noise")) {
		w = WHY_FORM;
		goto out;
	}
	w = parse_pattern(part[1], plen[1], &p);
	if (w)
		goto out;
	if (part_is(part[2], plen[2], "25519")) {
		p.dh = NOISE_DH_25519;
	} else if (part_is(part[2], plen[2], "448")) {
		p.dh = NOISE_DH_448;
		if (!ncr_dh_available(NOISE_DH_448)) {
			w = "the DH function 448 is not in this OpenSSL";
			goto out;
		}
	} else {
		w = "the DH function must be 25519 or 448";
		goto out;
	}
	if (part_is(part[3], plen[3], "ChaChaPoly")) {
		p.cipher = NOISE_CIPHER_CHACHAPOLY;
	} else if (part_is(part[3], plen[3], "AESGCM")) {
		p.cipher = NOISE_CIPHER_AESGCM;
	} else {
		w = "the cipher must be ChaChaPoly or AESGCM";
		goto out;
	}
	if (part_is(part[4], plen[4], "BLAKE2s")) {
		p.hash = NOISE_HASH_BLAKE2S;
	} else if (part_is(part[4], plen[4], "BLAKE2b")) {
		p.hash = NOISE_HASH_BLAKE2B;
	} else if (part_is(part[4], plen[4], "SHA256")) {
		p.hash = NOISE_HASH_SHA256;
	} else if (part_is(part[4], plen[4], "SHA512")) {
		p.hash = NOISE_HASH_SHA512;
	} else {
		w = "the hash must be BLAKE2s, BLAKE2b, SHA256 or SHA512";
		goto out;
	}
	memcpy(p.name, name, len);
	p.name[len] = '\0';
	p.dhlen = ncr_dhlen(p.dh);
	p.hashlen = ncr_hashlen(p.hash);
out:
	if (w) {
		if (why)
			*why = w;
		return MR_EFORMAT;
	}
	*out = p;
	return 0;
}

int noise_dh_generate(enum noise_dh dh, uint8_t *priv, uint8_t *pub)
{
	size_t len = ncr_dhlen(dh);
	if (RAND_priv_bytes(priv, (int)len) == 1 && noise_dh_public(dh, priv, pub) == 0)
		return 0;
	OPENSSL_cleanse(priv, len);
	memset(pub, 0, len);
	return MR_ECRYPTO;
}

/* ---- CipherState (section 5.1) ---- */

struct noise_cipher {
	struct ncr_aead aead;
	uint64_t n;
	bool has_key;
};

static int cs_init_key(struct noise_cipher *c, enum noise_cipher_id id, const uint8_t *k)
{
	int r = ncr_aead_key(&c->aead, id, k);
	c->has_key = r == 0;
	c->n = 0;
	return r;
}

/* EncryptWithAd: out gets len (+ tag with a key) bytes; *outlen set. */
static int cs_encrypt(struct noise_cipher *c, const uint8_t *ad, size_t ad_len, const uint8_t *in,
		      size_t len, uint8_t *out, size_t *outlen)
{
	if (!c->has_key) {
		if (len && out != in)
			memmove(out, in, len);
		*outlen = len;
		return 0;
	}
	if (c->n == UINT64_MAX) /* 2^64-1 is reserved (5.1) */
		return MR_ELIMIT;
	int r = ncr_aead_seal(&c->aead, c->n, ad, ad_len, in, len, out);
	if (r < 0)
		return r;
	c->n++;
	*outlen = len + NOISE_TAG_LEN;
	return 0;
}

/* DecryptWithAd: the nonce moves only on success. */
static int cs_decrypt(struct noise_cipher *c, const uint8_t *ad, size_t ad_len, const uint8_t *in,
		      size_t len, uint8_t *out, size_t *outlen)
{
	if (!c->has_key) {
		if (len && out != in)
			memmove(out, in, len);
		*outlen = len;
		return 0;
	}
	if (c->n == UINT64_MAX)
		return MR_ELIMIT;
	if (len < NOISE_TAG_LEN)
		return MR_ECRYPTO;
	int r = ncr_aead_open(&c->aead, c->n, ad, ad_len, in, len, out);
	if (r < 0)
		return r;
	c->n++;
	*outlen = len - NOISE_TAG_LEN;
	return 0;
}

static struct noise_cipher *cipher_new(enum noise_cipher_id id, const uint8_t *k)
{
	struct noise_cipher *c = calloc(1, sizeof(*c));
	if (c && cs_init_key(c, id, k) != 0) {
		noise_cipher_free(c);
		c = NULL;
	}
	return c;
}

void noise_cipher_free(struct noise_cipher *c)
{
	if (!c)
		return;
	ncr_aead_free(&c->aead);
	OPENSSL_cleanse(c, sizeof(*c));
	free(c);
}

int noise_cipher_encrypt_ad(struct noise_cipher *c, const uint8_t *ad, size_t ad_len,
			    const uint8_t *in, size_t len, uint8_t *out)
{
	size_t n;
	if (!c || !c->has_key || (ad_len && !ad) || (len && !in))
		return MR_EFORMAT;
	if (len > NOISE_MSG_MAX - NOISE_TAG_LEN || ad_len > NOISE_MSG_MAX)
		return MR_ELIMIT;
	int r = cs_encrypt(c, ad, ad_len, in, len, out, &n);
	return r < 0 ? r : (int)n;
}

int noise_cipher_decrypt_ad(struct noise_cipher *c, const uint8_t *ad, size_t ad_len,
			    const uint8_t *in, size_t len, uint8_t *out)
{
	size_t n;
	if (!c || !c->has_key || (ad_len && !ad) || (len && !in))
		return MR_EFORMAT;
	if (len < NOISE_TAG_LEN)
		return MR_ECRYPTO;
	if (len > NOISE_MSG_MAX || ad_len > NOISE_MSG_MAX)
		return MR_ELIMIT;
	int r = cs_decrypt(c, ad, ad_len, in, len, out, &n);
	return r < 0 ? r : (int)n;
}

int noise_cipher_encrypt(struct noise_cipher *c, const uint8_t *in, size_t len, uint8_t *out)
{
	return noise_cipher_encrypt_ad(c, NULL, 0, in, len, out);
}

int noise_cipher_decrypt(struct noise_cipher *c, const uint8_t *in, size_t len, uint8_t *out)
{
	return noise_cipher_decrypt_ad(c, NULL, 0, in, len, out);
}

int noise_cipher_rekey(struct noise_cipher *c)
{
	if (!c || !c->has_key)
		return MR_EFORMAT;
	return ncr_aead_rekey(&c->aead);
}

uint64_t noise_cipher_nonce(const struct noise_cipher *c)
{
	return c ? c->n : 0;
}

void noise_cipher_set_nonce(struct noise_cipher *c, uint64_t n)
{
	if (c)
		c->n = n;
}

/* ---- SymmetricState (section 5.2) ---- */

struct symm {
	struct noise_cipher cs;
	enum noise_cipher_id cipher;
	enum noise_hash hash;
	size_t hashlen;
	uint8_t ck[NOISE_HASH_MAX];
	uint8_t h[NOISE_HASH_MAX];
};

static int symm_init(struct symm *ss, const struct noise_protocol *p)
{
	size_t len = strlen(p->name);
	ss->cipher = p->cipher;
	ss->hash = p->hash;
	ss->hashlen = ncr_hashlen(p->hash);
	memset(ss->h, 0, sizeof(ss->h));
	if (len <= ss->hashlen)
		memcpy(ss->h, p->name, len);
	else if (ncr_hash(ss->hash, (const uint8_t *)p->name, len, NULL, 0, ss->h) != 0)
		return MR_ECRYPTO;
	memcpy(ss->ck, ss->h, ss->hashlen);
	ss->cs.has_key = false;
	ss->cs.n = 0;
	return 0;
}

static int symm_mix_hash(struct symm *ss, const uint8_t *data, size_t len)
{
	uint8_t h[NOISE_HASH_MAX];
	if (ncr_hash(ss->hash, ss->h, ss->hashlen, data, len, h) != 0)
		return MR_ECRYPTO;
	memcpy(ss->h, h, ss->hashlen);
	return 0;
}

/* MixKey (n = 2) and MixKeyAndHash (n = 3); the cipher key is the first
 * 32 bytes of the HASHLEN-byte output. */
static int symm_mix(struct symm *ss, const uint8_t *ikm, size_t len, bool and_hash)
{
	uint8_t ck[NOISE_HASH_MAX], t2[NOISE_HASH_MAX], t3[NOISE_HASH_MAX];
	int r = ncr_hkdf(ss->hash, ss->ck, ikm, len, ck, t2, and_hash ? t3 : NULL);
	if (r == 0) {
		memcpy(ss->ck, ck, ss->hashlen);
		if (and_hash)
			r = symm_mix_hash(ss, t2, ss->hashlen);
	}
	if (r == 0)
		r = cs_init_key(&ss->cs, ss->cipher, and_hash ? t3 : t2);
	OPENSSL_cleanse(ck, sizeof(ck));
	OPENSSL_cleanse(t2, sizeof(t2));
	OPENSSL_cleanse(t3, sizeof(t3));
	return r;
}

static int symm_encrypt_and_hash(struct symm *ss, const uint8_t *in, size_t len, uint8_t *out,
				 size_t *outlen)
{
	int r = cs_encrypt(&ss->cs, ss->h, ss->hashlen, in, len, out, outlen);
	return r < 0 ? r : symm_mix_hash(ss, out, *outlen);
}

/* in must not overlap out: h mixes in the ciphertext afterwards */
static int symm_decrypt_and_hash(struct symm *ss, const uint8_t *in, size_t len, uint8_t *out,
				 size_t *outlen)
{
	int r = cs_decrypt(&ss->cs, ss->h, ss->hashlen, in, len, out, outlen);
	return r < 0 ? r : symm_mix_hash(ss, in, len);
}

/* ---- HandshakeState (section 5.3) ---- */

struct noise_hs {
	struct noise_protocol p;
	enum noise_role role;
	struct symm ss;
	uint8_t tokens[MSGS_MAX][TOKENS_MAX];
	unsigned nmsgs;
	unsigned msg;       /* the next message's index */
	bool psk_mode;      /* any psk modifier: "e" also does MixKey */
	bool started;       /* a message was written or read */
	bool failed;
	bool split_done;
	bool has_s, e_set, e_used, has_rs, has_re;
	unsigned psk_set;   /* bit i: psk<i> given */
	uint8_t s_priv[NOISE_DH_MAX], s_pub[NOISE_DH_MAX];
	uint8_t e_priv[NOISE_DH_MAX], e_pub[NOISE_DH_MAX];
	void *s_key, *e_key;     /* s_priv and e_priv as OpenSSL keys (ncr_dh_key_set) */
	uint8_t rs[NOISE_DH_MAX], re[NOISE_DH_MAX];
	uint8_t psk[PSK_MAX][NOISE_PSK_LEN];
};

static int hs_fail(struct noise_hs *hs, int err)
{
	hs->failed = true;
	return err;
}

/* The message token lists with the psk tokens in place (9.2: psk0 at the
 * start of the first message, psk<i> at the end of message i). */
static void build_tokens(struct noise_hs *hs)
{
	const struct pattern *pt = &patterns[hs->p.pattern];
	hs->nmsgs = pt->nmsgs;
	memset(hs->tokens, T_END, sizeof(hs->tokens));
	for (unsigned m = 0; m < pt->nmsgs; m++) {
		unsigned n = 0;
		if (m == 0 && (hs->p.psk_mask & 1))
			hs->tokens[m][n++] = T_PSK;
		for (unsigned i = 0; i < BASE_TOKENS && pt->msg[m][i] != T_END; i++)
			hs->tokens[m][n++] = pt->msg[m][i];
		if (hs->p.psk_mask & (1u << (m + 1)))
			hs->tokens[m][n++] = (uint8_t)(T_PSK + m + 1);
	}
	hs->psk_mode = hs->p.psk_mask != 0;
}

struct noise_hs *noise_hs_new(const struct noise_protocol *p, enum noise_role role,
			      const uint8_t *prologue, size_t prologue_len,
			      const uint8_t *s_priv, const uint8_t *rs, int *err)
{
	int r = MR_EFORMAT;
	struct noise_hs *hs = NULL;
	if (!protocol_valid(p) || (role != NOISE_INITIATOR && role != NOISE_RESPONDER) ||
	    (prologue_len && !prologue))
		goto fail;
	bool need_s = noise_needs_local_static(p, role), need_rs = noise_needs_remote_static(p, role);
	if ((need_s && !s_priv) || (need_rs && !rs))
		goto fail;
	hs = calloc(1, sizeof(*hs));
	if (!hs) {
		r = -ENOMEM;
		goto fail;
	}
	hs->p = *p;
	hs->p.name[NOISE_NAME_MAX] = '\0';
	hs->p.dhlen = ncr_dhlen(p->dh);
	hs->p.hashlen = ncr_hashlen(p->hash);
	hs->p.one_way = patterns[p->pattern].name[1] == '\0';
	hs->role = role;
	build_tokens(hs);
	size_t dhlen = hs->p.dhlen;
	if (need_s) {
		memcpy(hs->s_priv, s_priv, dhlen);
		if ((r = ncr_dh_key_set(p->dh, &hs->s_key, hs->s_priv, hs->s_pub)) != 0)
			goto fail;
		hs->has_s = true;
	}
	if (need_rs) {
		memcpy(hs->rs, rs, dhlen);
		hs->has_rs = true;
	}
	/* Initialize(): the name, the prologue, then the pre-messages'
	 * public keys, the initiator's first (7.1) */
	bool init = role == NOISE_INITIATOR;
	const struct pattern *pt = &patterns[p->pattern];
	if ((r = symm_init(&hs->ss, &hs->p)) != 0 ||
	    (r = symm_mix_hash(&hs->ss, prologue, prologue_len)) != 0)
		goto fail;
	if ((pt->pre & PRE_I) && (r = symm_mix_hash(&hs->ss, init ? hs->s_pub : hs->rs, dhlen)) != 0)
		goto fail;
	if ((pt->pre & PRE_R) && (r = symm_mix_hash(&hs->ss, init ? hs->rs : hs->s_pub, dhlen)) != 0)
		goto fail;
	return hs;
fail:
	noise_hs_free(hs);
	if (err)
		*err = r;
	return NULL;
}

void noise_hs_free(struct noise_hs *hs)
{
	if (!hs)
		return;
	ncr_aead_free(&hs->ss.cs.aead);
	ncr_dh_key_free(&hs->s_key);
	ncr_dh_key_free(&hs->e_key);
	OPENSSL_cleanse(hs, sizeof(*hs));
	free(hs);
}

int noise_hs_set_ephemeral(struct noise_hs *hs, const uint8_t *e_priv)
{
	if (!hs)
		return MR_EFORMAT;
	if (!e_priv)
		return hs_fail(hs, MR_EFORMAT);
	if (hs->failed || hs->started)
		return hs_fail(hs, MR_EPROTO_UNEXPECTED);
	memcpy(hs->e_priv, e_priv, hs->p.dhlen);
	if (ncr_dh_key_set(hs->p.dh, &hs->e_key, hs->e_priv, hs->e_pub) != 0)
		return hs_fail(hs, MR_ECRYPTO);
	hs->e_set = true;
	return 0;
}

int noise_hs_set_psk(struct noise_hs *hs, unsigned index, const uint8_t psk[NOISE_PSK_LEN])
{
	if (!hs)
		return MR_EFORMAT;
	if (!psk)
		return hs_fail(hs, MR_EFORMAT);
	if (hs->failed || hs->started)
		return hs_fail(hs, MR_EPROTO_UNEXPECTED);
	if (index >= PSK_MAX || !(hs->p.psk_mask & (1u << index)))
		return hs_fail(hs, MR_EFORMAT);
	memcpy(hs->psk[index], psk, NOISE_PSK_LEN);
	hs->psk_set |= 1u << index;
	return 0;
}

enum noise_action noise_hs_action(const struct noise_hs *hs)
{
	if (!hs || hs->failed)
		return NOISE_ACTION_FAILED;
	if (hs->msg >= hs->nmsgs)
		return NOISE_ACTION_SPLIT;
	bool initiator_turn = hs->msg % 2 == 0;
	return initiator_turn == (hs->role == NOISE_INITIATOR) ? NOISE_ACTION_WRITE : NOISE_ACTION_READ;
}

void noise_hs_hash(const struct noise_hs *hs, uint8_t *out, size_t *len)
{
	*len = 0;
	if (!hs)
		return;
	memcpy(out, hs->ss.h, hs->ss.hashlen);
	*len = hs->ss.hashlen;
}

const uint8_t *noise_hs_remote_static(const struct noise_hs *hs)
{
	return hs && hs->has_rs ? hs->rs : NULL;
}

/* The current message's bytes besides the payload: its tokens, and the
 * payload's tag when a key will be set by then. Every psk it uses must be
 * there. */
static int msg_overhead(const struct noise_hs *hs, size_t *over)
{
	const uint8_t *t = hs->tokens[hs->msg];
	bool key = hs->ss.cs.has_key;
	size_t n = 0, dhlen = hs->p.dhlen;
	for (unsigned i = 0; i < TOKENS_MAX && t[i] != T_END; i++) {
		switch (t[i]) {
		case T_E:
			n += dhlen;
			key = key || hs->psk_mode;
			break;
		case T_S:
			n += dhlen + (key ? NOISE_TAG_LEN : 0);
			break;
		default:
			if (t[i] >= T_PSK && !(hs->psk_set & (1u << (t[i] - T_PSK))))
				return MR_EFORMAT;
			key = true; /* a DH or a psk */
			break;
		}
	}
	*over = n + (key ? NOISE_TAG_LEN : 0);
	return 0;
}

size_t noise_hs_next_len(const struct noise_hs *hs)
{
	size_t over = 0;
	if (!hs || hs->failed || hs->msg >= hs->nmsgs || msg_overhead(hs, &over) < 0)
		return 0;
	return over;
}

/* ee, es, se, ss: MixKey(DH(...)) with the pair the role takes (5.3). */
static int dh_token(struct noise_hs *hs, uint8_t t)
{
	bool init = hs->role == NOISE_INITIATOR;
	bool local_e; /* the local key is e (else s) */
	bool remote_e; /* the remote key is re (else rs) */
	switch (t) {
	case T_EE:
		local_e = remote_e = true;
		break;
	case T_ES:
		local_e = init;
		remote_e = !init;
		break;
	case T_SE:
		local_e = !init;
		remote_e = init;
		break;
	default: /* T_SS */
		local_e = remote_e = false;
		break;
	}
	if (!(local_e ? hs->e_used : hs->has_s) || !(remote_e ? hs->has_re : hs->has_rs))
		return MR_EPROTO_UNEXPECTED; /* not in a valid pattern */
	uint8_t out[NOISE_DH_MAX];
	int r = ncr_dh_with(hs->p.dh, local_e ? hs->e_key : hs->s_key, remote_e ? hs->re : hs->rs, out);
	if (r == 0)
		r = symm_mix(&hs->ss, out, hs->p.dhlen, false);
	OPENSSL_cleanse(out, sizeof(out));
	return r;
}

/* The tokens shared by both directions: the DHs and the psks. */
static int mix_token(struct noise_hs *hs, uint8_t t)
{
	if (t >= T_PSK)
		return symm_mix(&hs->ss, hs->psk[t - T_PSK], NOISE_PSK_LEN, true);
	return dh_token(hs, t);
}

/* "e" written or read: MixHash(e.pub), and MixKey(e.pub) with a psk. */
static int mix_ephemeral(struct noise_hs *hs, const uint8_t *pub)
{
	int r = symm_mix_hash(&hs->ss, pub, hs->p.dhlen);
	if (r == 0 && hs->psk_mode)
		r = symm_mix(&hs->ss, pub, hs->p.dhlen, false);
	return r;
}

/* After the last message: e's private key is needed no more. */
static void msg_done(struct noise_hs *hs)
{
	hs->msg++;
	if (hs->msg == hs->nmsgs) {
		OPENSSL_cleanse(hs->e_priv, sizeof(hs->e_priv));
		ncr_dh_key_free(&hs->e_key);
	}
}

int noise_hs_write(struct noise_hs *hs, const uint8_t *payload, size_t payload_len,
		   uint8_t *out, size_t cap)
{
	if (!hs)
		return MR_EFORMAT;
	if (noise_hs_action(hs) != NOISE_ACTION_WRITE)
		return hs_fail(hs, MR_EPROTO_UNEXPECTED);
	if ((payload_len && !payload) || !out)
		return hs_fail(hs, MR_EFORMAT);
	size_t over, dhlen = hs->p.dhlen, pos = 0, n;
	int r = msg_overhead(hs, &over);
	if (r < 0)
		return hs_fail(hs, r);
	if (payload_len > NOISE_MSG_MAX - over || over + payload_len > cap)
		return MR_ELIMIT; /* nothing changed */
	hs->started = true;
	const uint8_t *t = hs->tokens[hs->msg];
	for (unsigned i = 0; i < TOKENS_MAX && t[i] != T_END; i++) {
		switch (t[i]) {
		case T_E:
			if (hs->e_used)
				return hs_fail(hs, MR_EPROTO_UNEXPECTED);
			if (!hs->e_set && (RAND_priv_bytes(hs->e_priv, (int)dhlen) != 1 ||
					   ncr_dh_key_set(hs->p.dh, &hs->e_key, hs->e_priv, hs->e_pub) != 0))
				return hs_fail(hs, MR_ECRYPTO);
			hs->e_set = hs->e_used = true;
			memcpy(out + pos, hs->e_pub, dhlen);
			pos += dhlen;
			r = mix_ephemeral(hs, hs->e_pub);
			break;
		case T_S:
			if (!hs->has_s)
				return hs_fail(hs, MR_EPROTO_UNEXPECTED);
			r = symm_encrypt_and_hash(&hs->ss, hs->s_pub, dhlen, out + pos, &n);
			pos += n;
			break;
		default:
			r = mix_token(hs, t[i]);
			break;
		}
		if (r < 0)
			return hs_fail(hs, r);
	}
	r = symm_encrypt_and_hash(&hs->ss, payload, payload_len, out + pos, &n);
	if (r < 0)
		return hs_fail(hs, r);
	pos += n;
	if (pos != over + payload_len)
		return hs_fail(hs, MR_ECRYPTO); /* cannot happen */
	msg_done(hs);
	return (int)pos;
}

int noise_hs_read(struct noise_hs *hs, const uint8_t *msg, size_t len, uint8_t *payload, size_t cap)
{
	if (!hs)
		return MR_EFORMAT;
	if (noise_hs_action(hs) != NOISE_ACTION_READ)
		return hs_fail(hs, MR_EPROTO_UNEXPECTED);
	if ((len && !msg) || (cap && !payload))
		return hs_fail(hs, MR_EFORMAT);
	size_t over, dhlen = hs->p.dhlen, pos = 0, n;
	int r = msg_overhead(hs, &over);
	if (r < 0)
		return hs_fail(hs, r);
	if (len > NOISE_MSG_MAX)
		return hs_fail(hs, MR_ELIMIT);
	if (len < over)
		return hs_fail(hs, MR_EPROTO_SHORT);
	if (len - over > cap)
		return hs_fail(hs, MR_ELIMIT);
	hs->started = true;
	const uint8_t *t = hs->tokens[hs->msg];
	for (unsigned i = 0; i < TOKENS_MAX && t[i] != T_END; i++) {
		switch (t[i]) {
		case T_E:
			if (hs->has_re)
				return hs_fail(hs, MR_EPROTO_UNEXPECTED);
			memcpy(hs->re, msg + pos, dhlen);
			hs->has_re = true;
			pos += dhlen;
			r = mix_ephemeral(hs, hs->re);
			break;
		case T_S: {
			if (hs->has_rs)
				return hs_fail(hs, MR_EPROTO_UNEXPECTED);
			size_t clen = dhlen + (hs->ss.cs.has_key ? NOISE_TAG_LEN : 0);
			r = symm_decrypt_and_hash(&hs->ss, msg + pos, clen, hs->rs, &n);
			hs->has_rs = r == 0;
			pos += clen;
			break;
		}
		default:
			r = mix_token(hs, t[i]);
			break;
		}
		if (r < 0)
			return hs_fail(hs, r);
	}
	r = symm_decrypt_and_hash(&hs->ss, msg + pos, len - pos, payload, &n);
	if (r < 0)
		return hs_fail(hs, r);
	msg_done(hs);
	return (int)n;
}

/* Split() (5.2): c1 and/or c2 (NULL: not wanted). The chaining key and
 * the handshake's cipher are wiped: a second split is refused. */
static int split(struct noise_hs *hs, struct noise_cipher **c1, struct noise_cipher **c2)
{
	if (!hs)
		return MR_EFORMAT;
	if (noise_hs_action(hs) != NOISE_ACTION_SPLIT || hs->split_done)
		return hs_fail(hs, MR_EPROTO_UNEXPECTED);
	uint8_t k1[NOISE_HASH_MAX], k2[NOISE_HASH_MAX];
	int r = ncr_hkdf(hs->p.hash, hs->ss.ck, NULL, 0, k1, k2, NULL);
	if (r == 0 && c1 && !(*c1 = cipher_new(hs->p.cipher, k1)))
		r = -ENOMEM;
	if (r == 0 && c2 && !(*c2 = cipher_new(hs->p.cipher, k2)))
		r = -ENOMEM;
	OPENSSL_cleanse(k1, sizeof(k1));
	OPENSSL_cleanse(k2, sizeof(k2));
	if (r != 0) {
		if (c1) {
			noise_cipher_free(*c1);
			*c1 = NULL;
		}
		return hs_fail(hs, r);
	}
	hs->split_done = true;
	OPENSSL_cleanse(hs->ss.ck, sizeof(hs->ss.ck));
	ncr_aead_free(&hs->ss.cs.aead);
	hs->ss.cs.has_key = false;
	return 0;
}

int noise_hs_split(struct noise_hs *hs, struct noise_cipher **send, struct noise_cipher **recv)
{
	if (!send || !recv)
		return MR_EFORMAT;
	*send = *recv = NULL;
	if (!hs)
		return MR_EFORMAT;
	bool init = hs->role == NOISE_INITIATOR;
	/* one-way: the second CipherState is discarded (7.4) */
	struct noise_cipher **c1 = init ? send : recv, **c2 = init ? recv : send;
	return split(hs, c1, hs->p.one_way ? NULL : c2);
}

int noise_hs_split_pair(struct noise_hs *hs, struct noise_cipher **c1, struct noise_cipher **c2)
{
	if (!c1 || !c2)
		return MR_EFORMAT;
	*c1 = *c2 = NULL;
	return split(hs, c1, c2);
}
