/* strbuf: a growable byte string for parsers that build values.
 *
 * Zero-initialise it. Appends never fail loudly: running out of memory sets
 * oom and later appends do nothing, so a builder checks once at the end
 * (strbuf_take). The content is always NUL-terminated once non-empty and
 * may contain NUL bytes. */
#ifndef MOLERAT_STRBUF_H
#define MOLERAT_STRBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct strbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

void strbuf_put(struct strbuf *b, const void *d, size_t n);
/* Makes room for n more bytes at once (a builder that knows its size
 * skips the doublings and their copies). */
void strbuf_reserve(struct strbuf *b, size_t n);
static inline void strbuf_putc(struct strbuf *b, char c) { strbuf_put(b, &c, 1); }
/* Hands the NUL-terminated string to the caller (who frees it) and resets
 * b; *len (optional) gets its length. NULL when memory ran out (the buffer
 * is freed then). */
char *strbuf_take(struct strbuf *b, size_t *len);
/* Appends the UTF-8 encoding of the code point cp (at most U+10FFFF;
 * the caller rules out surrogates). */
void strbuf_put_utf8(struct strbuf *b, uint32_t cp);

#endif
