/* json: see json.h. A recursive-descent reader, depth-bounded. */
#include "codec/json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/strbuf.h"
#include "base/util.h"

struct jp {
	const char *p, *end, *start;
	const char *why;
	unsigned depth;
};

static bool fail(struct jp *s, const char *why)
{
	if (!s->why)
		s->why = why;
	return false;
}

static void ws(struct jp *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static void json_release(struct json *j);

static bool lit(struct jp *s, const char *w)
{
	size_t n = strlen(w);
	if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n))
		return fail(s, "unknown literal");
	s->p += n;
	return true;
}

static int hex4(const char *p)
{
	int v = 0;
	for (int i = 0; i < 4; i++) {
		int d = mr_hex_digit((unsigned char)p[i]);
		if (d < 0)
			return -1;
		v = v << 4 | d;
	}
	return v;
}

/* A string (at its opening quote) into *out / *len. */
static bool string(struct jp *s, char **out, size_t *len)
{
	struct strbuf b = { 0 };
	s->p++;
	for (;;) {
		if (s->p >= s->end) {
			free(strbuf_take(&b, NULL));
			return fail(s, "unterminated string");
		}
		unsigned char c = (unsigned char)*s->p;
		if (c == '"') {
			s->p++;
			break;
		}
		if (c < 0x20) {
			free(strbuf_take(&b, NULL));
			return fail(s, "control character in a string");
		}
		if (c != '\\') {
			strbuf_putc(&b, (char)c);
			s->p++;
			continue;
		}
		if (s->end - s->p < 2) {
			free(strbuf_take(&b, NULL));
			return fail(s, "unterminated escape");
		}
		char e = s->p[1];
		s->p += 2;
		const char *simple = strchr("\"\\/bfnrt", e);
		if (e && simple) {
			static const char map[] = "\"\\/\b\f\n\r\t";
			strbuf_putc(&b, map[simple - "\"\\/bfnrt"]);
			continue;
		}
		int v = e == 'u' && s->end - s->p >= 4 ? hex4(s->p) : -1;
		if (v < 0) {
			free(strbuf_take(&b, NULL));
			return fail(s, "bad escape");
		}
		s->p += 4;
		uint32_t cp = (uint32_t)v;
		if (cp >= 0xdc00 && cp <= 0xdfff) {
			free(strbuf_take(&b, NULL));
			return fail(s, "lone low surrogate");
		}
		if (cp >= 0xd800 && cp <= 0xdbff) {
			int lo = s->end - s->p >= 6 && s->p[0] == '\\' && s->p[1] == 'u' ? hex4(s->p + 2) : -1;
			if (lo < 0xdc00 || lo > 0xdfff) {
				free(strbuf_take(&b, NULL));
				return fail(s, "lone high surrogate");
			}
			s->p += 6;
			cp = 0x10000 + ((cp - 0xd800) << 10) + ((uint32_t)lo - 0xdc00);
		}
		strbuf_put_utf8(&b, cp);
	}
	strbuf_putc(&b, '\0');   /* a buffer even for "" */
	char *t = strbuf_take(&b, len);
	if (!t)
		return fail(s, "out of memory");
	(*len)--;
	*out = t;
	return true;
}

static bool number(struct jp *s, struct json *j)
{
	const char *b = s->p;
	if (s->p < s->end && *s->p == '-')
		s->p++;
	if (s->p >= s->end)
		return fail(s, "bad number");
	if (*s->p == '0') {
		s->p++;
	} else if (*s->p >= '1' && *s->p <= '9') {
		while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
			s->p++;
	} else {
		return fail(s, "bad number");
	}
	bool integer = true;
	if (s->p < s->end && *s->p == '.') {
		integer = false;
		s->p++;
		if (s->p >= s->end || *s->p < '0' || *s->p > '9')
			return fail(s, "bad number");
		while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
			s->p++;
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
		integer = false;
		s->p++;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
			s->p++;
		if (s->p >= s->end || *s->p < '0' || *s->p > '9')
			return fail(s, "bad number");
		while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
			s->p++;
	}
	char buf[64];
	size_t n = (size_t)(s->p - b);
	j->type = JSON_NUMBER;
	if (n < sizeof(buf)) {
		memcpy(buf, b, n);
		buf[n] = '\0';
		j->num = strtod(buf, NULL);
	} else {
		j->num = b[0] == '-' ? -HUGE_VAL : HUGE_VAL;   /* only digits that long */
	}
	if (integer && b[0] != '-') {
		uint64_t u = 0;
		bool fits = true;
		for (const char *q = b; q < s->p; q++) {
			unsigned d = (unsigned)(*q - '0');
			if (u > (UINT64_MAX - d) / 10)
				fits = false;
			u = u * 10 + d;
		}
		j->is_uint = fits;
		j->u = fits ? u : 0;
	}
	return true;
}

static bool value(struct jp *s, struct json *j);

/* Grows items (and keys) by one; the new item zeroed. */
static struct json *push(struct jp *s, struct json *j, size_t *cap, bool object)
{
	if (j->n == *cap) {
		size_t nc = *cap ? *cap * 2 : 4;
		struct json *it = realloc(j->items, nc * sizeof(*it));
		if (!it)
			return fail(s, "out of memory"), NULL;
		j->items = it;
		if (object) {
			char **k = realloc(j->keys, nc * sizeof(*k));
			if (k)
				j->keys = k;
			size_t *kl = k ? realloc(j->key_lens, nc * sizeof(*kl)) : NULL;
			if (kl)
				j->key_lens = kl;
			if (!k || !kl)
				return fail(s, "out of memory"), NULL;
		}
		*cap = nc;
	}
	struct json *e = &j->items[j->n];
	memset(e, 0, sizeof(*e));
	if (object)
		j->keys[j->n] = NULL;
	j->n++;
	return e;
}

static bool container(struct jp *s, struct json *j, bool object)
{
	if (++s->depth > JSON_MAX_DEPTH)
		return fail(s, "nested too deeply");
	j->type = object ? JSON_OBJECT : JSON_ARRAY;
	char close = object ? '}' : ']';
	size_t cap = 0;
	s->p++;
	ws(s);
	if (s->p < s->end && *s->p == close) {
		s->p++;
		s->depth--;
		return true;
	}
	for (;;) {
		struct json *e = push(s, j, &cap, object);
		if (!e)
			return false;
		if (object) {
			ws(s);
			if (s->p >= s->end || *s->p != '"')
				return fail(s, "expected a member name");
			if (!string(s, &j->keys[j->n - 1], &j->key_lens[j->n - 1]))
				return false;
			ws(s);
			if (s->p >= s->end || *s->p != ':')
				return fail(s, "expected ':'");
			s->p++;
		}
		if (!value(s, e))
			return false;
		ws(s);
		if (s->p < s->end && *s->p == ',') {
			s->p++;
			continue;
		}
		if (s->p < s->end && *s->p == close) {
			s->p++;
			s->depth--;
			return true;
		}
		return fail(s, object ? "expected ',' or '}'" : "expected ',' or ']'");
	}
}

static bool value(struct jp *s, struct json *j)
{
	ws(s);
	if (s->p >= s->end)
		return fail(s, "unexpected end");
	switch (*s->p) {
	case '{':
		return container(s, j, true);
	case '[':
		return container(s, j, false);
	case '"':
		j->type = JSON_STRING;
		return string(s, &j->str, &j->len);
	case 't':
		j->type = JSON_BOOL;
		j->b = true;
		return lit(s, "true");
	case 'f':
		j->type = JSON_BOOL;
		return lit(s, "false");
	case 'n':
		j->type = JSON_NULL;
		return lit(s, "null");
	default:
		return number(s, j);
	}
}

static void json_release(struct json *j)
{
	for (size_t i = 0; i < j->n; i++) {
		json_release(&j->items[i]);
		if (j->keys)
			free(j->keys[i]);
	}
	free(j->items);
	free(j->keys);
	free(j->key_lens);
	free(j->str);
}

struct json *json_parse(const char *text, size_t len, const char **why, size_t *at)
{
	struct jp s = { .p = text, .end = text + len, .start = text };
	struct json *j = calloc(1, sizeof(*j));
	if (!j) {
		if (why)
			*why = "out of memory";
		return NULL;
	}
	bool ok = value(&s, j);
	if (ok) {
		ws(&s);
		if (s.p != s.end)
			ok = fail(&s, "trailing bytes");
	}
	if (!ok) {
		if (why)
			*why = s.why;
		if (at)
			*at = (size_t)(s.p - s.start);
		json_free(j);
		return NULL;
	}
	return j;
}

void json_free(struct json *j)
{
	if (!j)
		return;
	json_release(j);
	free(j);
}

const struct json *json_get(const struct json *j, const char *key)
{
	if (!j || j->type != JSON_OBJECT)
		return NULL;
	size_t n = strlen(key);
	for (size_t i = 0; i < j->n; i++)
		if (j->keys[i] && j->key_lens[i] == n && !memcmp(j->keys[i], key, n))
			return &j->items[i];
	return NULL;
}
