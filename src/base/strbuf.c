#include "base/strbuf.h"

#include <stdlib.h>
#include <string.h>

void strbuf_reserve(struct strbuf *b, size_t n)
{
	if (b->oom || b->cap - b->len > n)
		return;
	char *np = n < ((size_t)-1) / 2 - b->len ? realloc(b->p, b->len + n + 1) : NULL;
	if (!np) {
		b->oom = true;
		return;
	}
	b->p = np;
	b->cap = b->len + n + 1;
}

void strbuf_put(struct strbuf *b, const void *d, size_t n)
{
	if (b->oom)
		return;
	if (b->cap - b->len <= n) {
		size_t cap = b->cap ? b->cap : 32;
		while (cap - b->len <= n) {
			if (cap > ((size_t)-1) / 2) {
				b->oom = true;
				return;
			}
			cap *= 2;
		}
		char *np = realloc(b->p, cap);
		if (!np) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	if (n)
		memcpy(b->p + b->len, d, n);
	b->len += n;
	b->p[b->len] = '\0';
}

char *strbuf_take(struct strbuf *b, size_t *len)
{
	if (!b->p)
		strbuf_put(b, "", 0);
	char *p = b->oom ? NULL : b->p;
	if (b->oom)
		free(b->p);
	if (len)
		*len = p ? b->len : 0;
	*b = (struct strbuf){0};
	return p;
}

void strbuf_put_utf8(struct strbuf *b, uint32_t cp)
{
	char u[4];
	size_t n;
	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xC0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xE0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[2] = (char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		u[0] = (char)(0xF0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[3] = (char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	strbuf_put(b, u, n);
}
