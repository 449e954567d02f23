/* noise: the Noise Protocol Framework (revision 34), pure: no sockets, no
 * framing (the transport's framing is xport/xport_noise.c's). Primitives
 * come from OpenSSL 3 (EVP): DH 25519 and 448, ciphers ChaChaPoly and
 * AESGCM, hashes SHA256, SHA512, BLAKE2s, BLAKE2b. Patterns: the one-way
 * N, K, X and the twelve interactive fundamental patterns (NN NK NX XN XK
 * XX KN KK KX IN IK IX), with the psk0..psk3 modifiers.
 *
 * Objects:
 *   struct noise_protocol   a parsed protocol name (a value; no secrets)
 *   struct noise_hs         a HandshakeState (with its SymmetricState)
 *   struct noise_cipher     a CipherState after Split(): key + nonce
 *
 * Ownership: noise_hs_new and noise_hs_split return heap objects owned by
 * the caller (noise_hs_free, noise_cipher_free); every free wipes the key
 * material (OPENSSL_cleanse) before releasing it. Nothing is global; the
 * functions are safe to call on different objects concurrently.
 *
 * Errors: MR_EFORMAT (a name or argument the module does not take),
 * MR_ECRYPTO (decryption or a DH failed: the handshake is then dead),
 * MR_ELIMIT (an output buffer too small, a message over 65,535 bytes),
 * MR_EPROTO_SHORT (a handshake message too short for its tokens),
 * MR_EPROTO_UNEXPECTED (a call out of order: writing when the pattern
 * says read, splitting before the end, any call on a FAILED handshake).
 * OpenSSL's error queue is left empty after an MR_ECRYPTO. */
#ifndef MOLERAT_NOISE_H
#define MOLERAT_NOISE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
	NOISE_MSG_MAX = 65535,   /* the largest Noise message */
	NOISE_TAG_LEN = 16,      /* AEAD tag */
	NOISE_DH_MAX = 56,       /* 448's key length; 25519's is 32 */
	NOISE_HASH_MAX = 64,     /* HASHLEN of SHA512 and BLAKE2b */
	NOISE_PSK_LEN = 32,
	NOISE_NAME_MAX = 64,     /* longest protocol name accepted, without NUL */
};

enum noise_dh { NOISE_DH_25519 = 0, NOISE_DH_448 };
enum noise_cipher_id { NOISE_CIPHER_CHACHAPOLY = 0, NOISE_CIPHER_AESGCM };
enum noise_hash { NOISE_HASH_SHA256 = 0, NOISE_HASH_SHA512, NOISE_HASH_BLAKE2S, NOISE_HASH_BLAKE2B };
enum noise_role { NOISE_INITIATOR = 0, NOISE_RESPONDER };

/* What a handshake needs next. */
enum noise_action {
	NOISE_ACTION_WRITE = 0,  /* call noise_hs_write */
	NOISE_ACTION_READ,       /* call noise_hs_read */
	NOISE_ACTION_SPLIT,      /* the handshake is complete: call noise_hs_split */
	NOISE_ACTION_FAILED,     /* a step failed; the handshake is dead */
};

struct noise_protocol {
	char name[NOISE_NAME_MAX + 1];
	unsigned pattern;        /* index into the module's pattern table */
	char initiator_static;   /* the pattern's first letter: 'N', 'K', 'X' or 'I' */
	char responder_static;   /* its second letter ('N', 'K' or 'X'); 0 for one-way patterns */
	bool one_way;            /* N, K, X */
	unsigned psk_mask;       /* bit i: the psk<i> modifier */
	enum noise_dh dh;
	enum noise_cipher_id cipher;
	enum noise_hash hash;
	size_t dhlen;            /* 32 or 56 */
	size_t hashlen;          /* 32 or 64 */
};

/* Parses "Noise_PATTERN_DH_CIPHER_HASH" (e.g. Noise_NK_25519_ChaChaPoly_BLAKE2s,
 * Noise_XXpsk3_448_AESGCM_SHA512, Noise_NNpsk0+psk2_25519_AESGCM_SHA256).
 * Returns 0, or MR_EFORMAT with *why (if why is not NULL) set to a static
 * phrase saying which part is wrong ("the DH function must be 25519 or
 * 448"); *out and *why are untouched otherwise. Refused: unknown and
 * deferred patterns (NK1, X1X, ...), the fallback and hfs modifiers, a
 * repeated psk modifier or one past the pattern's messages, a name over
 * NOISE_NAME_MAX. DH 448 is refused with a reason when the OpenSSL in use
 * lacks X448. One-way patterns parse (with one_way set): a caller that
 * needs an interactive pattern refuses them itself. */
int noise_protocol_parse(const char *name, struct noise_protocol *out, const char **why);

/* Whether a party in role needs its own static key pair (s), and the
 * other side's static public key in advance (rs), for this protocol. */
bool noise_needs_local_static(const struct noise_protocol *p, enum noise_role role);
bool noise_needs_remote_static(const struct noise_protocol *p, enum noise_role role);

/* DH helpers: pub from priv (dhlen bytes each), and a fresh pair from the
 * system CSPRNG. Return 0 or MR_ECRYPTO. */
int noise_dh_public(enum noise_dh dh, const uint8_t *priv, uint8_t *pub);
int noise_dh_generate(enum noise_dh dh, uint8_t *priv, uint8_t *pub);

struct noise_hs;
struct noise_cipher;

/* Initialize(): s_priv (dhlen bytes) is the local static private key, or
 * NULL; rs (dhlen bytes) the remote static public key, or NULL; each is
 * required exactly when the pattern needs it in advance (extra keys are
 * ignored: NULL is passed for them). The prologue is mixed in as the spec
 * says (rathole's is empty). Returns NULL on out-of-memory, a missing
 * key or a bad protocol value (with *err, when err is not NULL, set to
 * -ENOMEM or MR_EFORMAT; MR_ECRYPTO if OpenSSL refuses s_priv). */
struct noise_hs *noise_hs_new(const struct noise_protocol *p, enum noise_role role,
			      const uint8_t *prologue, size_t prologue_len,
			      const uint8_t *s_priv, const uint8_t *rs, int *err);
/* Test hooks, before the first write/read: fix the ephemeral private key
 * (known-answer tests), add the pre-shared keys (psk index i, 32 bytes:
 * the key of the psk<i> modifier; each one the name has is required, and
 * a write or read that reaches a missing one fails with MR_EFORMAT).
 * Return 0, MR_EFORMAT (no such psk modifier), MR_ECRYPTO (a bad key) or
 * MR_EPROTO_UNEXPECTED (too late). */
int noise_hs_set_ephemeral(struct noise_hs *hs, const uint8_t *e_priv);
int noise_hs_set_psk(struct noise_hs *hs, unsigned index, const uint8_t psk[NOISE_PSK_LEN]);

enum noise_action noise_hs_action(const struct noise_hs *hs);
/* The length of the next handshake message with an empty payload (what a
 * rathole peer sends), or 0 when no message is next. */
size_t noise_hs_next_len(const struct noise_hs *hs);

/* WriteMessage: writes the next handshake message carrying payload into
 * out (cap bytes; payload and out must not overlap). Returns the message
 * length (<= NOISE_MSG_MAX), or a negative error (the handshake is then
 * FAILED, except MR_ELIMIT for a too small out or a message that would be
 * over NOISE_MSG_MAX, after which nothing changed). */
int noise_hs_write(struct noise_hs *hs, const uint8_t *payload, size_t payload_len,
		   uint8_t *out, size_t cap);
/* ReadMessage: reads msg (len bytes, from a peer: hostile) and writes its
 * payload to payload (cap bytes; msg and payload must not overlap).
 * Returns the payload length or a negative error (MR_ECRYPTO: a tag did
 * not verify or a DH result was invalid; MR_EPROTO_SHORT: msg is too short
 * for the pattern's tokens; MR_ELIMIT: the payload does not fit, or len is
 * over NOISE_MSG_MAX; the handshake is then FAILED). */
int noise_hs_read(struct noise_hs *hs, const uint8_t *msg, size_t len, uint8_t *payload, size_t cap);
/* The handshake hash h (hashlen bytes; out has room for NOISE_HASH_MAX)
 * into out; *len set. Valid at any time, also after the split; the
 * channel binding value after the last message. */
void noise_hs_hash(const struct noise_hs *hs, uint8_t *out, size_t *len);
/* The remote static public key once known (read from a message, or given
 * in advance); NULL before. */
const uint8_t *noise_hs_remote_static(const struct noise_hs *hs);
/* Split(): when the action is SPLIT, the two CipherStates: *send for this
 * party's messages, *recv for the peer's (the initiator sends with the
 * first key, the responder with the second). For one-way patterns only
 * the first exists (the spec discards the second): the initiator's *recv
 * and the responder's *send are NULL. Once only: the chaining key is wiped
 * (the handshake hash stays), the action stays SPLIT and a second call
 * returns MR_EPROTO_UNEXPECTED. Returns 0, or -ENOMEM, MR_ECRYPTO or
 * MR_EPROTO_UNEXPECTED with *send and *recv NULL (the handshake FAILED). */
int noise_hs_split(struct noise_hs *hs, struct noise_cipher **send, struct noise_cipher **recv);
/* Split() as the spec returns it, for the known-answer tests: *c1 (the
 * initiator's sending key) and *c2, whatever the role and also for one-way
 * patterns. The same once-only rule and errors. */
int noise_hs_split_pair(struct noise_hs *hs, struct noise_cipher **c1, struct noise_cipher **c2);
void noise_hs_free(struct noise_hs *hs);

/* EncryptWithAd with an empty ad, then the nonce + 1: out gets len +
 * NOISE_TAG_LEN bytes (out == in allowed, no other overlap; len <=
 * NOISE_MSG_MAX - NOISE_TAG_LEN). Allocates nothing and copies nothing
 * beyond the cipher's own output. Returns the output length, or MR_ELIMIT
 * (too long, or the nonce is exhausted: 2^64-1 is reserved) / MR_ECRYPTO. */
int noise_cipher_encrypt(struct noise_cipher *c, const uint8_t *in, size_t len, uint8_t *out);
/* DecryptWithAd with an empty ad: in is len bytes of ciphertext with its
 * tag (from a peer: hostile); out gets len - NOISE_TAG_LEN bytes (out ==
 * in allowed, no other overlap). Returns the plaintext length, or
 * MR_ECRYPTO (len shorter than the tag, or the tag did not verify: the
 * nonce is not advanced and out's len - NOISE_TAG_LEN bytes are zeroed),
 * MR_ELIMIT (len over NOISE_MSG_MAX, or the nonce is exhausted).
 * ad variants for the known-answer tests: */
int noise_cipher_decrypt(struct noise_cipher *c, const uint8_t *in, size_t len, uint8_t *out);
int noise_cipher_encrypt_ad(struct noise_cipher *c, const uint8_t *ad, size_t ad_len,
			    const uint8_t *in, size_t len, uint8_t *out);
int noise_cipher_decrypt_ad(struct noise_cipher *c, const uint8_t *ad, size_t ad_len,
			    const uint8_t *in, size_t len, uint8_t *out);
/* Rekey() (spec 11.3); molerat never calls it on the wire (rathole does not). */
int noise_cipher_rekey(struct noise_cipher *c);
/* The nonce n of the next message; SetNonce() (spec 5.1), for tests and
 * for out-of-order transports (molerat's is in order). */
uint64_t noise_cipher_nonce(const struct noise_cipher *c);
void noise_cipher_set_nonce(struct noise_cipher *c, uint64_t n);
void noise_cipher_free(struct noise_cipher *c);

#endif
