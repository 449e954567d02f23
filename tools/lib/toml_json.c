/* toml_json: tagged JSON writer for TOML trees (see toml_json.h). */
#include "toml_json.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A bounded output: bytes past cap - 1 are counted, not stored. */
struct jw {
	char *buf;
	size_t cap, len;
};

static void jw_put(struct jw *w, const char *s, size_t n)
{
	if (w->len < w->cap) {
		size_t room = w->cap - w->len;
		memcpy(w->buf + w->len, s, n < room ? n : room);
	}
	w->len += n;
}

static void jw_puts(struct jw *w, const char *s)
{
	jw_put(w, s, strlen(s));
}

/* Terminates the text and returns its full length. */
static size_t jw_finish(struct jw *w)
{
	if (w->cap > 0)
		w->buf[w->len < w->cap ? w->len : w->cap - 1] = '\0';
	return w->len;
}

static void jw_string(struct jw *w, const char *s, size_t n)
{
	jw_put(w, "\"", 1);
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		const char *esc = NULL;
		char u[8];
		switch (c) {
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\b': esc = "\\b"; break;
		case '\f': esc = "\\f"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		default:
			if (c < 0x20 || c == 0x7f) {
				snprintf(u, sizeof(u), "\\u%04x", c);
				esc = u;
			}
			break;
		}
		if (!esc)
			continue;
		jw_put(w, s + run, i - run);
		jw_puts(w, esc);
		run = i + 1;
	}
	jw_put(w, s + run, n - run);
	jw_put(w, "\"", 1);
}

const char *toml_json_type(enum toml_type t)
{
	switch (t) {
	case TOML_TABLE: return "table";
	case TOML_ARRAY: return "array";
	case TOML_STRING: return "string";
	case TOML_INTEGER: return "integer";
	case TOML_FLOAT: return "float";
	case TOML_BOOL: return "bool";
	case TOML_DATETIME: return "datetime";
	case TOML_DATETIME_LOCAL: return "datetime-local";
	case TOML_DATE_LOCAL: return "date-local";
	case TOML_TIME_LOCAL: return "time-local";
	}
	return "unknown";
}

/* The shortest %g spelling that reads back as d. */
static void format_float(double d, char *out, size_t cap)
{
	if (isnan(d)) {
		snprintf(out, cap, "nan");
		return;
	}
	if (isinf(d)) {
		snprintf(out, cap, d < 0 ? "-inf" : "inf");
		return;
	}
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(out, cap, "%.*g", prec, d);
		if (strtod(out, NULL) == d)
			return;
	}
}

size_t toml_datetime_format(const struct toml_node *n, char *buf, size_t cap)
{
	struct jw w = {buf, cap, 0};
	const struct toml_datetime *dt = &n->u.dt;
	char part[40];
	bool date = n->type == TOML_DATETIME || n->type == TOML_DATETIME_LOCAL ||
		    n->type == TOML_DATE_LOCAL;
	bool time = n->type == TOML_DATETIME || n->type == TOML_DATETIME_LOCAL ||
		    n->type == TOML_TIME_LOCAL;

	if (!date && !time)
		return 0;
	if (date) {
		snprintf(part, sizeof(part), "%04d-%02d-%02d", dt->year, dt->month, dt->day);
		jw_puts(&w, part);
	}
	if (date && time)
		jw_put(&w, "T", 1);
	if (time) {
		snprintf(part, sizeof(part), "%02d:%02d:%02d", dt->hour, dt->minute, dt->second);
		jw_puts(&w, part);
		if (dt->nanosecond) {
			int len = snprintf(part, sizeof(part), ".%09u", (unsigned)dt->nanosecond);
			while (len > 4 && part[len - 1] == '0')
				len--;
			jw_put(&w, part, (size_t)len);
		}
	}
	if (n->type == TOML_DATETIME) {
		if (dt->offset_z) {
			jw_put(&w, "Z", 1);
		} else {
			int off = dt->offset_minutes;
			snprintf(part, sizeof(part), "%c%02d:%02d", off < 0 ? '-' : '+',
				 abs(off) / 60, abs(off) % 60);
			jw_puts(&w, part);
		}
	}
	return jw_finish(&w);
}

static void write_node(struct jw *w, const struct toml_node *n)
{
	char val[64];

	switch (n->type) {
	case TOML_TABLE:
		jw_put(w, "{", 1);
		for (size_t i = 0; i < n->u.table.len; i++) {
			const struct toml_kv *kv = &n->u.table.items[i];
			if (i)
				jw_put(w, ",", 1);
			jw_string(w, kv->key.ptr, kv->key.len);
			jw_put(w, ":", 1);
			write_node(w, kv->value);
		}
		jw_put(w, "}", 1);
		return;
	case TOML_ARRAY:
		jw_put(w, "[", 1);
		for (size_t i = 0; i < n->u.array.len; i++) {
			if (i)
				jw_put(w, ",", 1);
			write_node(w, n->u.array.items[i]);
		}
		jw_put(w, "]", 1);
		return;
	default:
		break;
	}

	jw_puts(w, "{\"type\":\"");
	jw_puts(w, toml_json_type(n->type));
	jw_puts(w, "\",\"value\":");
	switch (n->type) {
	case TOML_STRING:
		jw_string(w, n->u.str.ptr, n->u.str.len);
		break;
	case TOML_INTEGER:
		snprintf(val, sizeof(val), "\"%" PRId64 "\"", n->u.integer);
		jw_puts(w, val);
		break;
	case TOML_FLOAT:
		format_float(n->u.fp, val + 1, sizeof(val) - 2);
		val[0] = '"';
		strcat(val, "\"");
		jw_puts(w, val);
		break;
	case TOML_BOOL:
		jw_puts(w, n->u.boolean ? "\"true\"" : "\"false\"");
		break;
	default:
		toml_datetime_format(n, val, sizeof(val));
		jw_string(w, val, strlen(val));
		break;
	}
	jw_put(w, "}", 1);
}

size_t toml_json_write(const struct toml_node *n, char *buf, size_t cap)
{
	struct jw w = {buf, cap, 0};
	write_node(&w, n);
	return jw_finish(&w);
}
