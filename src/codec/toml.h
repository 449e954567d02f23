/* toml: TOML 1.0.0 text -> a generic tree. Pure: no I/O, no knowledge of
 * molerat's schema.
 *
 * Ownership: toml_parse() returns a tree the caller frees with toml_free()
 * (frees every node; strings inside are owned by their nodes). Pointers into
 * the tree stay valid until toml_free().
 *
 * Strings and keys carry their length (they may contain NUL) and are also
 * NUL-terminated for convenience. Every node records the line and column
 * (1-based, in bytes) where its value (or, for tables, its header or first
 * dotted key) starts, so a schema checker can report file:line:col. */
#ifndef MOLERAT_TOML_H
#define MOLERAT_TOML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum toml_type {
	TOML_TABLE = 0,
	TOML_ARRAY,
	TOML_STRING,
	TOML_INTEGER,
	TOML_FLOAT,
	TOML_BOOL,
	TOML_DATETIME,        /* offset date-time */
	TOML_DATETIME_LOCAL,
	TOML_DATE_LOCAL,
	TOML_TIME_LOCAL,
};

struct toml_datetime {
	int year, month, day;          /* 0 when absent (time-local) */
	int hour, minute, second;      /* 0 when absent (date-local) */
	uint32_t nanosecond;
	bool has_offset;
	int offset_minutes;            /* east of UTC; valid when has_offset */
	bool offset_z;                 /* written as Z */
};

struct toml_str {
	char *ptr;     /* NUL-terminated; may contain NUL bytes before len */
	size_t len;
};

struct toml_node;

struct toml_kv {
	struct toml_str key;
	unsigned line, col;    /* where the key is written */
	struct toml_node *value;
};

struct toml_node {
	enum toml_type type;
	unsigned line, col;
	union {
		struct { struct toml_kv *items; size_t len, cap; } table;   /* insertion order */
		struct { struct toml_node **items; size_t len, cap; } array;
		struct toml_str str;
		int64_t integer;
		double fp;
		bool boolean;
		struct toml_datetime dt;
	} u;
	/* parser bookkeeping (how the table/array was defined); opaque to users */
	unsigned flags;
};

struct toml_error {
	unsigned line, col;    /* 1-based position of the problem */
	char msg[160];         /* short reason, no position in it */
};

enum {
	TOML_MAX_INPUT = 16u << 20,   /* bytes */
	TOML_MAX_DEPTH = 128,         /* nesting of tables/arrays/inline tables */
};

/* Parses len bytes (need not be NUL-terminated). Returns the root table, or
 * NULL with *err filled (also for input over TOML_MAX_INPUT, nesting over
 * TOML_MAX_DEPTH, invalid UTF-8, out of memory). */
struct toml_node *toml_parse(const char *text, size_t len, struct toml_error *err);
void toml_free(struct toml_node *root);

/* Looks key (klen bytes) up in a table; NULL when absent or t is not a
 * table. */
const struct toml_kv *toml_table_get(const struct toml_node *t, const char *key, size_t klen);
const char *toml_type_name(enum toml_type t);   /* "string", "integer", "table", ... */

#endif
