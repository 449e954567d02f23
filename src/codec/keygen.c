/* keygen: base64, X25519 key pairs, --genkey output (protocol.md#p-noise). */
#include "codec/keygen.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "base/err.h"

/* 6-bit value -> character, without branches or tables:
 * 0..25 'A'.., 26..51 'a'.., 52..61 '0'.., 62 '+', 63 '/'. The shifts of
 * negative ints are arithmetic on every compiler this builds with. */
static char b64_char(unsigned x)
{
	int v = (int)(x & 63);
	return (char)(v + 'A' + (((25 - v) >> 8) & 6) - (((51 - v) >> 8) & 75) -
		      (((61 - v) >> 8) & 15) + (((62 - v) >> 8) & 3));
}

/* character -> 6-bit value, or -1; branch-free. Each line adds
 * (value + 1) when c is in its range. */
static int b64_value(unsigned char ch)
{
	int c = ch;
	int v = -1;
	v += ((((('A' - 1) - c) & (c - ('Z' + 1))) >> 8) & (c - 'A' + 1));
	v += ((((('a' - 1) - c) & (c - ('z' + 1))) >> 8) & (c - 'a' + 27));
	v += ((((('0' - 1) - c) & (c - ('9' + 1))) >> 8) & (c - '0' + 53));
	v += ((((('+' - 1) - c) & (c - ('+' + 1))) >> 8) & 63);
	v += ((((('/' - 1) - c) & (c - ('/' + 1))) >> 8) & 64);
	return v;
}

int keygen_b64_encode(const uint8_t *in, size_t len, char *out, size_t cap)
{
	if (len > (size_t)INT_MAX / 4 * 3 - 3)
		return MR_ELIMIT;
	size_t need = KEYGEN_B64_ENCODED_LEN(len);
	if (cap < need + 1)
		return MR_ELIMIT;
	size_t i = 0, o = 0;
	for (; len - i >= 3; i += 3) {
		uint32_t w = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = b64_char(w >> 18);
		out[o++] = b64_char(w >> 12);
		out[o++] = b64_char(w >> 6);
		out[o++] = b64_char(w);
	}
	if (len - i == 1) {
		uint32_t w = (uint32_t)in[i] << 16;
		out[o++] = b64_char(w >> 18);
		out[o++] = b64_char(w >> 12);
		out[o++] = '=';
		out[o++] = '=';
	} else if (len - i == 2) {
		uint32_t w = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[o++] = b64_char(w >> 18);
		out[o++] = b64_char(w >> 12);
		out[o++] = b64_char(w >> 6);
		out[o++] = '=';
	}
	out[o] = '\0';
	return (int)o;
}

int keygen_b64_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
	/* padding: none, or exactly what completes the last group of 4 */
	size_t n = len, pad = 0;
	while (n > 0 && in[n - 1] == '=') {
		n--;
		pad++;
	}
	size_t rem = n % 4;
	if (rem == 1 || pad > 2)
		return MR_EFORMAT;
	if (pad != 0 && pad != 4 - rem)
		return MR_EFORMAT; /* also rejects "=" after a full group */
	if (n / 4 > (size_t)INT_MAX / 3 - 1)
		return MR_ELIMIT;
	size_t outlen = n / 4 * 3 + (rem ? rem - 1 : 0);
	if (outlen > cap)
		return MR_ELIMIT;

	int bad = 0; /* sign bit set once any character was invalid */
	size_t i = 0, o = 0;
	for (; n - i >= 4; i += 4) {
		int a = b64_value((unsigned char)in[i]), b = b64_value((unsigned char)in[i + 1]);
		int c = b64_value((unsigned char)in[i + 2]), d = b64_value((unsigned char)in[i + 3]);
		bad |= a | b | c | d;
		uint32_t w = (uint32_t)(a & 63) << 18 | (uint32_t)(b & 63) << 12 |
			     (uint32_t)(c & 63) << 6 | (uint32_t)(d & 63);
		out[o++] = (uint8_t)(w >> 16);
		out[o++] = (uint8_t)(w >> 8);
		out[o++] = (uint8_t)w;
	}
	if (rem == 2) {
		int a = b64_value((unsigned char)in[i]), b = b64_value((unsigned char)in[i + 1]);
		bad |= a | b;
		bad |= -((b & 0x0f) != 0); /* trailing bits must be zero */
		out[o++] = (uint8_t)((a & 63) << 2 | (b & 63) >> 4);
	} else if (rem == 3) {
		int a = b64_value((unsigned char)in[i]), b = b64_value((unsigned char)in[i + 1]);
		int c = b64_value((unsigned char)in[i + 2]);
		bad |= a | b | c;
		bad |= -((c & 0x03) != 0);
		out[o++] = (uint8_t)((a & 63) << 2 | (b & 63) >> 4);
		out[o++] = (uint8_t)(((b & 63) & 0x0f) << 4 | (c & 63) >> 2);
	}
	if (bad < 0)
		return MR_EFORMAT;
	return (int)o;
}

int keygen_x25519_public(const uint8_t priv[KEYGEN_KEY_LEN], uint8_t pub[KEYGEN_KEY_LEN])
{
	int r = MR_ECRYPTO;
	EVP_PKEY *pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, KEYGEN_KEY_LEN);
	if (!pkey)
		goto out;
	size_t n = KEYGEN_KEY_LEN;
	if (EVP_PKEY_get_raw_public_key(pkey, pub, &n) != 1 || n != KEYGEN_KEY_LEN)
		goto out;
	r = 0;
out:
	EVP_PKEY_free(pkey); /* frees and wipes the private copy */
	return r;
}

int keygen_x25519_pair(uint8_t priv[KEYGEN_KEY_LEN], uint8_t pub[KEYGEN_KEY_LEN])
{
	if (RAND_priv_bytes(priv, KEYGEN_KEY_LEN) == 1 && keygen_x25519_public(priv, pub) == 0)
		return 0;
	OPENSSL_cleanse(priv, KEYGEN_KEY_LEN);
	memset(pub, 0, KEYGEN_KEY_LEN);
	return MR_ECRYPTO;
}

int keygen_format_pair(char *out, size_t cap, const uint8_t priv[KEYGEN_KEY_LEN],
		       const uint8_t pub[KEYGEN_KEY_LEN])
{
	static const char head_priv[] = "Private Key:\n";
	static const char head_pub[] = "\n\nPublic Key:\n";
	if (cap < (size_t)KEYGEN_PAIR_TEXT_LEN + 1)
		return MR_ELIMIT;
	size_t o = 0;
	memcpy(out + o, head_priv, sizeof(head_priv) - 1);
	o += sizeof(head_priv) - 1;
	int n = keygen_b64_encode(priv, KEYGEN_KEY_LEN, out + o, cap - o);
	if (n < 0)
		return n;
	o += (size_t)n;
	memcpy(out + o, head_pub, sizeof(head_pub) - 1);
	o += sizeof(head_pub) - 1;
	n = keygen_b64_encode(pub, KEYGEN_KEY_LEN, out + o, cap - o);
	if (n < 0)
		return n;
	o += (size_t)n;
	out[o++] = '\n';
	out[o] = '\0';
	return (int)o;
}

int keygen_print_pair(FILE *out)
{
	uint8_t priv[KEYGEN_KEY_LEN], pub[KEYGEN_KEY_LEN];
	char text[KEYGEN_PAIR_TEXT_LEN + 1];
	int r = keygen_x25519_pair(priv, pub);
	if (r < 0)
		goto out;
	r = keygen_format_pair(text, sizeof(text), priv, pub);
	if (r < 0)
		goto out;
	errno = 0;
	if (fwrite(text, 1, (size_t)r, out) != (size_t)r || fflush(out) != 0)
		r = errno ? -errno : -EIO;
	else
		r = 0;
out:
	OPENSSL_cleanse(priv, sizeof(priv));
	OPENSSL_cleanse(text, sizeof(text));
	return r;
}

int keygen_curve_supported(const char *curve)
{
	return curve == NULL || strcmp(curve, "x25519") == 0;
}

int keygen_curve_known(const char *curve)
{
	return keygen_curve_supported(curve) || strcmp(curve, "x448") == 0;
}
