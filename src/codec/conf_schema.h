/* conf_schema: the internals of the configuration schema (codec/conf.c),
 * shared with the modules that walk it: one declarative row (struct row)
 * per key, one struct tdef per table, and the roots that generic code
 * walks: conf_root_def (the whole file) and the two service tables.
 *
 * Ownership: the tables are constants of conf.c; nothing here
 * allocates. Contract: internal to src/codec (conf.c, conf_diff.c); the
 * rest of the program sees only codec/conf.h. */
#ifndef MOLERAT_CONF_SCHEMA_H
#define MOLERAT_CONF_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/conf.h"

struct toml_kv;

enum row_type {
	R_STRING = 0,
	R_U64,
	R_BOOL,
	R_OPTBOOL,    /* int: -1 unset, 0, 1 */
	R_ENUM,       /* int: index into names */
	R_TABLE,      /* a sub-table: embedded struct, or allocated with RF_PTR */
	R_MAP,        /* NAME -> struct conf_service (the services tables) */
};

enum {
	RF_REQUIRED = 1u << 0,  /* missing -> "KEY is required" */
	RF_PTR = 1u << 1,       /* R_TABLE: calloc'd, the field is a pointer */
	RF_LEN = 1u << 2,       /* R_STRING: also store the length at off_n */
	RF_SECRET = 1u << 3,    /* R_STRING: wiped on free, never quoted */
};

struct walk;
struct row;
/* A validator: runs after the type check; fails through walk_fail(). */
typedef int (*row_check_fn)(struct walk *w, const struct row *r, void *base,
			    const struct toml_kv *kv);

struct tdef;

struct row {
	const char *key;
	enum row_type type;
	unsigned flags;
	enum conf_reload reload;
	size_t off;                  /* the field, in the table's struct */
	size_t off_n;                /* R_MAP: the count; RF_LEN: the length */
	uint64_t def;                /* R_U64 / R_BOOL / R_ENUM default */
	const char *def_str;         /* R_STRING default (NULL: none) */
	const char *def_doc;         /* the default as documented, when not def/def_str */
	uint64_t max;                /* R_U64 upper bound (0: U64_TOML_MAX) */
	const char *const *names;    /* R_ENUM: NULL-terminated value names */
	const struct tdef *sub;      /* R_TABLE / R_MAP */
	row_check_fn check;
	const char *example;         /* a value, for "what to do" */
	const char *missing_hint;    /* replaces "add KEY = EXAMPLE" */
	const char *doc_type;        /* the type as documented, when not the row type's */
};

struct tdef {
	const char *name;            /* for readers and debuggers: which table this is */
	const struct row *rows;
	size_t n_rows;
	size_t size;                 /* of the struct (RF_PTR, R_MAP elements) */
	bool has_present;
	size_t present_off;          /* bool set when the table exists */
	void (*release)(void *base); /* extra cleanup */
	const char *unknown_hint;    /* for unknown keys, instead of the key list */
};

/* The field at offset off of a table's struct. */
static inline void *field(void *base, size_t off)
{
	return (char *)base + off;
}

static inline const void *cfield(const void *base, size_t off)
{
	return (const char *)base + off;
}

/* The whole file (struct conf), and the tables of a service of [server]
 * and of [client] (struct conf_service). */
extern const struct tdef conf_root_def;
extern const struct tdef conf_server_svc_def;
extern const struct tdef conf_client_svc_def;

#endif
