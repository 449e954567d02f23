#include "base/strbuf.h"

#include <stdlib.h>
#include <string.h>

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
