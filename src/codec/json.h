/* json: a small JSON (RFC 8259) reader into a tree, for `molerat status`,
 * which reads the admin endpoint's /api/v1/status. Pure: no I/O. Every
 * input is hostile: depth is bounded (JSON_MAX_DEPTH), strings are
 * decoded (\uXXXX with surrogate pairs; a lone surrogate is an error),
 * numbers are checked against the grammar, trailing bytes other than
 * whitespace are an error.
 *
 * Ownership: json_parse returns a tree the caller frees with json_free;
 * every string in it is owned by the tree, NUL-terminated, and may hold
 * NUL (use len). */
#ifndef MOLERAT_JSON_H
#define MOLERAT_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { JSON_MAX_DEPTH = 64 };

enum json_type { JSON_NULL = 0, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json {
	enum json_type type;
	bool b;                 /* JSON_BOOL */
	double num;             /* JSON_NUMBER */
	bool is_uint;           /* JSON_NUMBER: a non-negative integer that fits u */
	uint64_t u;
	char *str;              /* JSON_STRING */
	size_t len;
	struct json *items;     /* JSON_ARRAY elements, JSON_OBJECT values */
	char **keys;            /* JSON_OBJECT: keys[i] names items[i] */
	size_t *key_lens;
	size_t n;
};

/* Parses text[0..len). NULL on failure (*why, when not NULL, gets a
 * static reason and *at the byte offset). */
struct json *json_parse(const char *text, size_t len, const char **why, size_t *at);
void json_free(struct json *j);   /* NULL-safe */
/* The value of the first member named key (NUL-terminated) of an object,
 * or NULL (also when j is not an object). */
const struct json *json_get(const struct json *j, const char *key);

#endif
