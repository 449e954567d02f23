/* libFuzzer target for toml: parses the input; on success walks the whole
 * tree checking invariants and dumps it as tagged JSON into a bounded
 * buffer; on failure checks the error report. */
#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/toml.h"
#include "toml_json.h"

enum { JSON_CAP = 1 << 16, GET_CHECK_MAX = 512 };

/* The JSON text is valid UTF-8 (every string and key the parser returns
 * is) and has no raw control bytes (the writer escapes them). */
static bool json_text_ok(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t need = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : 1;
		uint32_t cp = c & (0x3F >> need);
		if (c < 0xC2 || c > 0xF4 || i + need >= n)
			return false;
		for (size_t k = 1; k <= need; k++) {
			unsigned char cc = (unsigned char)s[i + k];
			if ((cc & 0xC0) != 0x80)
				return false;
			cp = cp << 6 | (cc & 0x3F);
		}
		static const uint32_t min[4] = {0, 0x80, 0x800, 0x10000};
		if (cp < min[need] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += need + 1;
	}
	return true;
}

static void check_node(const struct toml_node *n, unsigned depth, unsigned max_line)
{
	assert(n);
	assert(n->line >= 1 && n->line <= max_line);
	assert(n->col >= 1);
	switch (n->type) {
	case TOML_TABLE:
		assert(depth <= TOML_MAX_DEPTH);
		assert(n->u.table.len <= n->u.table.cap);
		assert(n->u.table.len == 0 || n->u.table.items);
		for (size_t i = 0; i < n->u.table.len; i++) {
			const struct toml_kv *kv = &n->u.table.items[i];
			assert(kv->key.ptr && kv->key.ptr[kv->key.len] == '\0');
			assert(kv->line >= 1 && kv->line <= max_line && kv->col >= 1);
			/* keys are unique: lookup finds this very item */
			if (n->u.table.len <= GET_CHECK_MAX)
				assert(toml_table_get(n, kv->key.ptr, kv->key.len) == kv);
			check_node(kv->value, depth + 1, max_line);
		}
		break;
	case TOML_ARRAY:
		assert(depth <= TOML_MAX_DEPTH);
		assert(n->u.array.len <= n->u.array.cap);
		for (size_t i = 0; i < n->u.array.len; i++)
			check_node(n->u.array.items[i], depth + 1, max_line);
		break;
	case TOML_STRING:
		assert(n->u.str.ptr && n->u.str.ptr[n->u.str.len] == '\0');
		break;
	case TOML_INTEGER:
	case TOML_FLOAT:
		break;
	case TOML_BOOL:
		assert(n->u.boolean == true || n->u.boolean == false);
		break;
	case TOML_DATETIME:
	case TOML_DATETIME_LOCAL:
	case TOML_DATE_LOCAL:
	case TOML_TIME_LOCAL: {
		const struct toml_datetime *dt = &n->u.dt;
		if (n->type != TOML_TIME_LOCAL) {
			assert(dt->year >= 0 && dt->year <= 9999);
			assert(dt->month >= 1 && dt->month <= 12);
			assert(dt->day >= 1 && dt->day <= 31);
		}
		if (n->type != TOML_DATE_LOCAL) {
			assert(dt->hour >= 0 && dt->hour <= 23);
			assert(dt->minute >= 0 && dt->minute <= 59);
			assert(dt->second >= 0 && dt->second <= 60);
			assert(dt->nanosecond < 1000000000u);
		}
		assert(dt->has_offset == (n->type == TOML_DATETIME));
		assert(!dt->offset_z || dt->offset_minutes == 0);
		assert(dt->offset_minutes > -24 * 60 && dt->offset_minutes < 24 * 60);
		char buf[64];
		size_t len = toml_datetime_format(n, buf, sizeof(buf));
		assert(len > 0 && len < sizeof(buf) && strlen(buf) == len);
		break;
	}
	default:
		assert(!"bad node type");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned max_line = 1;
	for (size_t i = 0; i < size; i++)
		max_line += data[i] == '\n';

	struct toml_error err;
	struct toml_node *root = toml_parse((const char *)data, size, &err);
	if (!root) {
		assert(err.line >= 1 && err.line <= max_line && err.col >= 1);
		assert(err.col <= size + 1);
		assert(memchr(err.msg, '\0', sizeof(err.msg)) && err.msg[0] != '\0');
		return 0;
	}
	assert(root->type == TOML_TABLE);
	check_node(root, 0, max_line);

	char *json = malloc(JSON_CAP);
	if (json) {
		size_t need = toml_json_write(root, json, JSON_CAP);
		assert(toml_json_write(root, NULL, 0) == need);
		size_t have = need < JSON_CAP ? need : JSON_CAP - 1;
		assert(strlen(json) == have);
		if (need < JSON_CAP)    /* a cut text may end inside a character */
			assert(json_text_ok(json, have));
		assert(json[0] == '{' && (need >= JSON_CAP || json[need - 1] == '}'));
		free(json);
	}
	toml_free(root);
	return 0;
}
