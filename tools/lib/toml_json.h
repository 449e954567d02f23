/* toml_json: a parsed TOML tree -> toml-test "tagged JSON" text, plus the
 * RFC 3339 spelling of date/time values. Pure: no I/O, no allocation.
 *
 * Tagged JSON (toml-test's decoder format): tables are JSON objects (keys in
 * insertion order), arrays are JSON arrays, and every scalar is
 * {"type": "<TYPE>", "value": "<STRING>"} with TYPE one of string, integer,
 * float, bool, datetime, datetime-local, date-local, time-local. */
#ifndef MOLERAT_TOML_JSON_H
#define MOLERAT_TOML_JSON_H

#include <stddef.h>

#include "codec/toml.h"

/* Writes the tagged JSON of node n (normally the root table) into buf like
 * snprintf: at most cap bytes including a terminating NUL (nothing when cap
 * is 0). Returns the full length the text needs, without the NUL; the text
 * is complete when the result is < cap. Floats are spelled so that strtod
 * reads back the same double ("inf", "-inf", "nan" for the specials).
 * Recursion is bounded by the parser's TOML_MAX_DEPTH. */
size_t toml_json_write(const struct toml_node *n, char *buf, size_t cap);

/* The tagged-JSON type name of a scalar type ("string", "bool",
 * "datetime-local", ...); "table"/"array" for the containers. */
const char *toml_json_type(enum toml_type t);

/* Writes a date/time node's value in RFC 3339 form into buf (snprintf
 * semantics, as above): "1979-05-27T07:32:00.999+08:00", "07:32:00",
 * "1979-05-27". A fraction is printed with at least 3 digits (trailing
 * zeros beyond that dropped); the source offset is kept, "Z" when written
 * as Z. Returns the length, or 0 when n is not a date/time node. */
size_t toml_datetime_format(const struct toml_node *n, char *buf, size_t cap);

#endif
