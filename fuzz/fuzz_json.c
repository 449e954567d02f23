/* Fuzz target for the JSON reader (codec/json.h), which `molerat status`
 * runs over what an admin endpoint sends.
 *
 * Checks: a parse either fails with a reason and an offset within the
 * input, or gives a tree whose every string has its NUL at len, whose
 * containers hold n items (objects: a key for each), and whose depth is
 * within JSON_MAX_DEPTH; json_get runs over every object; the same input
 * parses the same way twice. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/json.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

static void walk(const struct json *j, unsigned depth)
{
	CHECK(depth <= JSON_MAX_DEPTH + 1);
	switch (j->type) {
	case JSON_STRING:
		CHECK(j->str && j->str[j->len] == '\0');
		break;
	case JSON_OBJECT:
		for (size_t i = 0; i < j->n; i++) {
			CHECK(j->keys[i] && j->keys[i][j->key_lens[i]] == '\0');
			if (!memchr(j->keys[i], '\0', j->key_lens[i]))
				CHECK(json_get(j, j->keys[i]) != NULL);
		}
		/* fall through */
	case JSON_ARRAY:
		for (size_t i = 0; i < j->n; i++)
			walk(&j->items[i], depth + 1);
		break;
	case JSON_NUMBER:
		if (j->is_uint)
			CHECK(j->num >= 0);
		break;
	default:
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *why = NULL;
	size_t at = 0;
	struct json *j = json_parse((const char *)data, size, &why, &at);
	const char *why2 = NULL;
	struct json *j2 = json_parse((const char *)data, size, &why2, NULL);
	CHECK(!j == !j2);
	if (!j) {
		CHECK(why && why == why2 && at <= size);
		return 0;
	}
	walk(j, 0);
	CHECK(j->type == j2->type && j->n == j2->n);
	json_free(j);
	json_free(j2);
	return 0;
}
