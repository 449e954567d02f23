/* Unit tests for toml (parser) and toml_json (tagged JSON writer). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/toml.h"
#include "toml_json.h"

static struct toml_node *parse_ok(const char *text)
{
	struct toml_error err;
	struct toml_node *root = toml_parse(text, strlen(text), &err);
	if (!root)
		fail_msg("unexpected error %u:%u: %s for <%s>", err.line, err.col, err.msg, text);
	return root;
}

/* Asserts that text is rejected at line:col with msg containing what. */
static void expect_error_len(const char *text, size_t len, unsigned line, unsigned col,
			     const char *what)
{
	struct toml_error err;
	struct toml_node *root = toml_parse(text, len, &err);
	if (root) {
		toml_free(root);
		fail_msg("accepted <%.*s>", (int)(len > 200 ? 200 : len), text);
	}
	if (err.line != line || err.col != col || !strstr(err.msg, what))
		fail_msg("got %u:%u: %s, want %u:%u: ...%s...", err.line, err.col, err.msg, line,
			 col, what);
}

static void expect_error(const char *text, unsigned line, unsigned col, const char *what)
{
	expect_error_len(text, strlen(text), line, col, what);
}

static const struct toml_node *get(const struct toml_node *t, const char *key)
{
	const struct toml_kv *kv = toml_table_get(t, key, strlen(key));
	if (!kv)
		fail_msg("no key '%s'", key);
	return kv->value;
}

/* ---- error positions -------------------------------------------------- */

static void test_error_positions(void **state)
{
	(void)state;
	expect_error("a = 1\nb = \n", 2, 5, "expected a value");
	expect_error("a = 1\na = 2\n", 2, 1, "duplicate key 'a'");
	expect_error("[t]\nx = \"abc\n", 2, 9, "newline in single-line string");
	expect_error("a = 0x\n", 1, 5, "invalid hexadecimal");
	expect_error("a = \"\xff\"\n", 1, 6, "invalid UTF-8");
	expect_error("\xEF\xBB\xBF" "a = ?\n", 1, 5, "invalid value");
	expect_error("a = 1\r\nb = @\r\n", 2, 5, "invalid value");
	expect_error("# hi\x01\n", 1, 5, "U+0001");
	expect_error("a = 1\rb = 2\n", 1, 6, "carriage return");
	expect_error("a = 1 b = 2\n", 1, 7, "expected a newline");
	expect_error("[a]\nx = 1\n[a]\n", 3, 1, "table 'a' is already defined");
	expect_error("a = {x = 1}\n[a]\n", 2, 1, "'a' is already defined as an inline table");
	expect_error("a = [1]\n[[a]]\n", 2, 1, "'a' is already defined as an array");
	expect_error("t = { a = 1, }\n", 1, 14, "trailing comma");
	expect_error("t = { a = 1,\n b = 2 }\n", 1, 13, "newline is not allowed");
	expect_error("s = \"\\q\"\n", 1, 6, "invalid escape sequence '\\q'");
	expect_error("s = \"\\uD800\"\n", 1, 6, "not a Unicode scalar value");
	expect_error("s = \"\\U00110000\"\n", 1, 6, "not a Unicode scalar value");
	expect_error("d = 2023-02-29\n", 1, 5, "date out of range");
	expect_error("d = 2024-04-31\n", 1, 5, "date out of range");
	expect_error("t = 24:00:00\n", 1, 5, "time out of range");
	expect_error("t = 07:32\n", 1, 5, "HH:MM:SS");
	expect_error("n = 012\n", 1, 5, "leading zeros");
	expect_error("n = 1__2\n", 1, 5, "invalid number");
	expect_error("n = 9223372036854775808\n", 1, 5, "64 bits");
	expect_error("n = -9223372036854775809\n", 1, 5, "64 bits");
	expect_error("n = 0x8000000000000000\n", 1, 5, "64 bits");
	expect_error("n = -0x1\n", 1, 5, "sign");
	expect_error("f = 1.\n", 1, 5, "decimal point");
	expect_error("f = 1e400\n", 1, 5, "out of range");
	expect_error("x = \"\"\"a\"\"\"\"\"\"\n", 1, 9, "too many quotes");
	expect_error("\"\"\"k\"\"\" = 1\n", 1, 1, "multi-line string cannot be a key");
	expect_error("a = \"open", 1, 5, "unterminated string");
	expect_error("a = [1, 2", 1, 5, "unterminated array");
}

static void test_redefinition(void **state)
{
	(void)state;
	expect_error("[a]\nb.c = 1\n[a.b]\n", 3, 1, "table 'b' is already defined");
	expect_error("[a.b]\nx = 1\n[a]\nb.y = 2\n", 4, 1, "defined by a [table] header");
	expect_error("a = {b = 1}\na.c = 2\n", 2, 1, "defined inline");
	expect_error("a = 1\na.b = 2\n", 2, 1, "which is an integer");
	expect_error("[[a]]\n[a]\n", 2, 1, "already defined as an array of tables");
	expect_error("x = [{}]\n[x.y]\n", 2, 2, "which is an array");
	expect_error("t = {a.b = 1, a = 2}\n", 1, 15, "duplicate key 'a'");

	/* allowed: implicit parent defined later, sub-table under dotted keys */
	struct toml_node *root = parse_ok("[a.b]\nx = 1\n[a]\ny = 2\n"
					  "[f]\napple.color = 'red'\n[f.apple.texture]\nsmooth = true\n"
					  "[[aot]]\nn = 1\n[aot.sub]\nm = 2\n[[aot]]\nn = 3\n");
	assert_int_equal(get(get(get(root, "a"), "b"), "x")->u.integer, 1);
	assert_int_equal(get(get(root, "a"), "y")->u.integer, 2);
	assert_true(get(get(get(get(root, "f"), "apple"), "texture"), "smooth")->u.boolean);
	const struct toml_node *aot = get(root, "aot");
	assert_int_equal(aot->type, TOML_ARRAY);
	assert_int_equal(aot->u.array.len, 2);
	assert_int_equal(get(get(aot->u.array.items[0], "sub"), "m")->u.integer, 2);
	assert_int_equal(get(aot->u.array.items[1], "n")->u.integer, 3);
	toml_free(root);
}

/* ---- limits ------------------------------------------------------------ */

static char *repeat(const char *head, const char *unit, size_t n, const char *mid,
		    const char *unit2, size_t n2, const char *tail)
{
	size_t len = strlen(head) + strlen(unit) * n + strlen(mid) + strlen(unit2) * n2 +
		     strlen(tail) + 1;
	char *s = malloc(len), *p = s;
	assert_non_null(s);
	p += sprintf(p, "%s", head);
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "%s", unit);
	p += sprintf(p, "%s", mid);
	for (size_t i = 0; i < n2; i++)
		p += sprintf(p, "%s", unit2);
	sprintf(p, "%s", tail);
	return s;
}

static void test_depth_limit(void **state)
{
	(void)state;
	struct toml_error err;
	struct toml_node *root;
	char *s;

	/* arrays: 128 levels accepted, 129 rejected at the 129th '[' */
	s = repeat("a = ", "[", TOML_MAX_DEPTH, "", "]", TOML_MAX_DEPTH, "\n");
	root = toml_parse(s, strlen(s), &err);
	assert_non_null(root);
	toml_free(root);
	free(s);
	s = repeat("a = ", "[", TOML_MAX_DEPTH + 1, "", "]", TOML_MAX_DEPTH + 1, "\n");
	expect_error(s, 1, 5 + TOML_MAX_DEPTH, "nesting deeper than 128");
	free(s);

	/* inline tables */
	s = repeat("", "a = {", TOML_MAX_DEPTH, "b = 1", "}", TOML_MAX_DEPTH, "\n");
	root = toml_parse(s, strlen(s), &err);
	assert_non_null(root);
	toml_free(root);
	free(s);
	s = repeat("", "a = {", TOML_MAX_DEPTH + 1, "b = 1", "}", TOML_MAX_DEPTH + 1, "\n");
	expect_error(s, 1, 5 * TOML_MAX_DEPTH + 5, "nesting deeper");
	free(s);

	/* table headers and dotted keys */
	s = repeat("[a", ".a", TOML_MAX_DEPTH - 1, "]\n", "", 0, "x = 1\n");
	root = toml_parse(s, strlen(s), &err);
	assert_non_null(root);
	toml_free(root);
	free(s);
	s = repeat("[a", ".a", TOML_MAX_DEPTH, "]\n", "", 0, "");
	expect_error(s, 1, 2 + 2 * TOML_MAX_DEPTH, "more than 128 parts");
	free(s);
	/* an array of tables on the way counts as a level too */
	s = repeat("[[a]]\n[a", ".a", TOML_MAX_DEPTH - 1, "]\n", "", 0, "");
	expect_error(s, 2, 2 * TOML_MAX_DEPTH, "nesting deeper");
	free(s);
	s = repeat("[a", ".a", TOML_MAX_DEPTH - 1, "]\n", "", 0, "b.c = 1\n");
	expect_error(s, 2, 1, "nesting deeper");
	free(s);
	s = repeat("a", ".a", TOML_MAX_DEPTH, " = 1\n", "", 0, "");
	expect_error(s, 1, 2 * TOML_MAX_DEPTH + 1, "more than 128 parts");
	free(s);

	/* far too deep: rejected without recursing that far */
	s = repeat("a = ", "[", 200000, "", "", 0, "");
	expect_error(s, 1, 5 + TOML_MAX_DEPTH, "nesting deeper");
	free(s);
	s = repeat("a = ", "{b = ", 200000, "", "", 0, "");
	expect_error(s, 1, 5 * TOML_MAX_DEPTH + 5, "nesting deeper");
	free(s);
}

static void test_size_limit(void **state)
{
	(void)state;
	size_t n = TOML_MAX_INPUT;
	char *s = malloc(n + 1);
	assert_non_null(s);
	memset(s, ' ', n + 1);
	s[0] = '#';
	s[n - 1] = '\n';
	struct toml_error err;
	struct toml_node *root = toml_parse(s, n, &err);   /* exactly the limit: fine */
	assert_non_null(root);
	assert_int_equal(root->u.table.len, 0);
	toml_free(root);
	expect_error_len(s, n + 1, 1, 1, "larger than");
	free(s);
}

static void test_many_keys(void **state)
{
	(void)state;
	enum { N = 200000 };
	char *s = malloc((size_t)N * 16), *p = s;
	assert_non_null(s);
	for (int i = 0; i < N; i++)
		p += sprintf(p, "k%d = %d\n", i, i);
	struct toml_error err;
	struct toml_node *root = toml_parse(s, (size_t)(p - s), &err);
	assert_non_null(root);
	assert_int_equal(root->u.table.len, N);
	assert_int_equal(get(root, "k199999")->u.integer, 199999);
	assert_int_equal(root->u.table.items[N - 1].line, N);
	toml_free(root);
	p += sprintf(p, "k777 = 1\n");
	expect_error_len(s, (size_t)(p - s), N + 1, 1, "duplicate key 'k777'");
	free(s);
}

static void test_bad_input_never_crashes(void **state)
{
	(void)state;
	struct toml_error err;
	assert_null(toml_parse("\xC0\x80", 2, &err));          /* overlong */
	assert_null(toml_parse("#\xED\xA0\x80", 4, &err));     /* surrogate */
	assert_null(toml_parse("#\xF4\x90\x80\x80", 5, &err)); /* > U+10FFFF */
	assert_null(toml_parse("#\xE2\x82", 3, &err));         /* truncated */
	struct toml_node *root = toml_parse(NULL, 0, &err);
	assert_non_null(root);
	toml_free(root);
	root = toml_parse("#\xF0\x9F\x98\x80\n", 5, NULL);     /* err may be NULL */
	assert_non_null(root);
	toml_free(root);
	assert_null(toml_parse("a = ", 4, NULL));
}

/* ---- strings, NUL, lookup ----------------------------------------------- */

static void test_nul_in_keys_and_strings(void **state)
{
	(void)state;
	struct toml_node *root = parse_ok("\"a\\u0000b\" = \"x\\u0000y\"\n'' = 'empty key'\n");
	assert_int_equal(root->u.table.len, 2);
	const struct toml_kv *kv = &root->u.table.items[0];
	assert_int_equal(kv->key.len, 3);
	assert_memory_equal(kv->key.ptr, "a\0b", 4);
	assert_null(toml_table_get(root, "a", 1));
	const struct toml_kv *got = toml_table_get(root, "a\0b", 3);
	assert_ptr_equal(got, kv);
	assert_int_equal(got->value->type, TOML_STRING);
	assert_int_equal(got->value->u.str.len, 3);
	assert_memory_equal(got->value->u.str.ptr, "x\0y", 4);
	assert_string_equal(get(root, "")->u.str.ptr, "empty key");
	toml_free(root);
}

static void test_lookup_and_names(void **state)
{
	(void)state;
	struct toml_node *root = parse_ok("x = 1\n[t]\ny = 'z'\n");
	assert_null(toml_table_get(NULL, "x", 1));
	assert_null(toml_table_get(root, "y", 1));
	assert_null(toml_table_get(get(root, "x"), "x", 1));   /* not a table */
	assert_non_null(toml_table_get(get(root, "t"), "y", 1));
	assert_null(toml_table_get(root, "xx", 2));
	toml_free(root);
	assert_string_equal(toml_type_name(TOML_TABLE), "table");
	assert_string_equal(toml_type_name(TOML_STRING), "string");
	assert_string_equal(toml_type_name(TOML_INTEGER), "integer");
	assert_string_equal(toml_type_name(TOML_BOOL), "boolean");
	assert_string_equal(toml_json_type(TOML_DATETIME_LOCAL), "datetime-local");
}

static void test_strings(void **state)
{
	(void)state;
	struct toml_node *root = parse_ok(
		"a = \"\\b\\t\\n\\f\\r\\\"\\\\\\u00e9\\U0001F600\"\n"
		"b = \"\"\"\nline1\\\n    line2\r\n\"\"\"\n"
		"c = '''\nraw \\n ''\n'''\n"
		"d = \"\"\"\"quoted\"\"\"\"\n"
		"e = 'C:\\path'\n");
	assert_string_equal(get(root, "a")->u.str.ptr, "\b\t\n\f\r\"\\\xC3\xA9\xF0\x9F\x98\x80");
	assert_string_equal(get(root, "b")->u.str.ptr, "line1line2\n");
	assert_string_equal(get(root, "c")->u.str.ptr, "raw \\n ''\n");
	assert_string_equal(get(root, "d")->u.str.ptr, "\"quoted\"");
	assert_string_equal(get(root, "e")->u.str.ptr, "C:\\path");
	toml_free(root);
}

/* ---- scalar values ------------------------------------------------------ */

static void test_numbers(void **state)
{
	(void)state;
	struct toml_node *root = parse_ok(
		"i1 = +99\ni2 = -17\ni3 = 1_000\ni4 = 0xDEAD_beef\ni5 = 0o755\ni6 = 0b1101\n"
		"i7 = -9223372036854775808\ni8 = 9223372036854775807\ni9 = -0\n"
		"f1 = 3.1415\nf2 = -5e+22\nf3 = 6.626e-34\nf4 = 224_617.445_991\n"
		"f5 = inf\nf6 = -inf\nf7 = nan\nf8 = -0.0\nf9 = 1e007\n");
	assert_int_equal(get(root, "i1")->u.integer, 99);
	assert_int_equal(get(root, "i2")->u.integer, -17);
	assert_int_equal(get(root, "i3")->u.integer, 1000);
	assert_int_equal(get(root, "i4")->u.integer, 0xDEADBEEF);
	assert_int_equal(get(root, "i5")->u.integer, 0755);
	assert_int_equal(get(root, "i6")->u.integer, 13);
	assert_true(get(root, "i7")->u.integer == INT64_MIN);
	assert_true(get(root, "i8")->u.integer == INT64_MAX);
	assert_int_equal(get(root, "i9")->u.integer, 0);
	assert_int_equal(get(root, "f1")->type, TOML_FLOAT);
	assert_true(get(root, "f1")->u.fp == 3.1415);
	assert_true(get(root, "f2")->u.fp == -5e22);
	assert_true(get(root, "f3")->u.fp == 6.626e-34);
	assert_true(get(root, "f4")->u.fp == 224617.445991);
	assert_true(isinf(get(root, "f5")->u.fp) && get(root, "f5")->u.fp > 0);
	assert_true(isinf(get(root, "f6")->u.fp) && get(root, "f6")->u.fp < 0);
	assert_true(isnan(get(root, "f7")->u.fp));
	assert_true(get(root, "f8")->u.fp == 0 && signbit(get(root, "f8")->u.fp));
	assert_true(get(root, "f9")->u.fp == 1e7);
	toml_free(root);
}

static void test_datetimes(void **state)
{
	(void)state;
	struct toml_node *root = parse_ok(
		"odt1 = 1979-05-27T07:32:00Z\n"
		"odt2 = 1979-05-27 00:32:00.999999-07:30\n"
		"ldt = 1979-05-27t07:32:00.1234567891\n"
		"ld = 2000-02-29\n"
		"lt = 23:59:60\n");
	const struct toml_node *n = get(root, "odt1");
	assert_int_equal(n->type, TOML_DATETIME);
	assert_true(n->u.dt.has_offset && n->u.dt.offset_z);
	assert_int_equal(n->u.dt.year, 1979);
	assert_int_equal(n->u.dt.hour, 7);
	n = get(root, "odt2");
	assert_int_equal(n->type, TOML_DATETIME);
	assert_false(n->u.dt.offset_z);
	assert_int_equal(n->u.dt.offset_minutes, -450);
	assert_int_equal(n->u.dt.nanosecond, 999999000);
	n = get(root, "ldt");
	assert_int_equal(n->type, TOML_DATETIME_LOCAL);
	assert_int_equal(n->u.dt.nanosecond, 123456789);   /* truncated, not rounded */
	assert_false(n->u.dt.has_offset);
	n = get(root, "ld");
	assert_int_equal(n->type, TOML_DATE_LOCAL);
	assert_int_equal(n->u.dt.month, 2);
	assert_int_equal(n->u.dt.day, 29);
	n = get(root, "lt");
	assert_int_equal(n->type, TOML_TIME_LOCAL);
	assert_int_equal(n->u.dt.second, 60);

	char buf[64];
	toml_datetime_format(get(root, "odt2"), buf, sizeof(buf));
	assert_string_equal(buf, "1979-05-27T00:32:00.999999-07:30");
	toml_datetime_format(get(root, "odt1"), buf, sizeof(buf));
	assert_string_equal(buf, "1979-05-27T07:32:00Z");
	toml_datetime_format(get(root, "ld"), buf, sizeof(buf));
	assert_string_equal(buf, "2000-02-29");
	assert_int_equal(toml_datetime_format(get(root, "ldt"), buf, sizeof(buf)), 29);
	assert_string_equal(buf, "1979-05-27T07:32:00.123456789");
	toml_free(root);

	root = parse_ok("t = 00:32:00.5\n");
	toml_datetime_format(get(root, "t"), buf, sizeof(buf));
	assert_string_equal(buf, "00:32:00.500");
	toml_free(root);
}

static void test_positions(void **state)
{
	(void)state;
	struct toml_node *root = parse_ok("# c\n\n[srv]\n  port = 8080\n  arr = [ 1,\n    {x = 2} ]\n"
					  "[[list]]\n\"q k\".b = true\n");
	assert_int_equal(root->line, 1);
	assert_int_equal(root->col, 1);
	const struct toml_kv *srv = toml_table_get(root, "srv", 3);
	assert_int_equal(srv->line, 3);
	assert_int_equal(srv->col, 2);
	assert_int_equal(srv->value->line, 3);
	assert_int_equal(srv->value->col, 1);
	const struct toml_kv *port = toml_table_get(srv->value, "port", 4);
	assert_int_equal(port->line, 4);
	assert_int_equal(port->col, 3);
	assert_int_equal(port->value->line, 4);
	assert_int_equal(port->value->col, 10);
	const struct toml_node *arr = get(srv->value, "arr");
	assert_int_equal(arr->line, 5);
	assert_int_equal(arr->col, 9);
	assert_int_equal(arr->u.array.items[1]->line, 6);
	assert_int_equal(arr->u.array.items[1]->col, 5);
	assert_int_equal(get(arr->u.array.items[1], "x")->col, 10);
	const struct toml_node *list = get(root, "list");
	assert_int_equal(list->line, 7);
	assert_int_equal(list->u.array.items[0]->line, 7);
	const struct toml_kv *qk = toml_table_get(list->u.array.items[0], "q k", 3);
	assert_int_equal(qk->line, 8);
	assert_int_equal(qk->col, 1);
	const struct toml_kv *b = toml_table_get(qk->value, "b", 1);
	assert_int_equal(b->col, 7);
	assert_int_equal(b->value->col, 11);
	toml_free(root);
}

/* ---- tagged JSON -------------------------------------------------------- */

static void test_json(void **state)
{
	(void)state;
	struct toml_node *root = parse_ok("a = 42\ns = \"q\\\"\\u0001\\u0000\"\nf = 0.1\n"
					  "[[arr]]\nb = false\nd = 1979-05-27\n");
	const char *want = "{\"a\":{\"type\":\"integer\",\"value\":\"42\"},"
			   "\"s\":{\"type\":\"string\",\"value\":\"q\\\"\\u0001\\u0000\"},"
			   "\"f\":{\"type\":\"float\",\"value\":\"0.1\"},"
			   "\"arr\":[{\"b\":{\"type\":\"bool\",\"value\":\"false\"},"
			   "\"d\":{\"type\":\"date-local\",\"value\":\"1979-05-27\"}}]}";
	char buf[512];
	size_t n = toml_json_write(root, buf, sizeof(buf));
	assert_int_equal(n, strlen(want));
	assert_string_equal(buf, want);

	/* snprintf-like truncation */
	assert_int_equal(toml_json_write(root, NULL, 0), strlen(want));
	memset(buf, 'X', sizeof(buf));
	assert_int_equal(toml_json_write(root, buf, 10), strlen(want));
	assert_int_equal(strlen(buf), 9);
	assert_memory_equal(buf, want, 9);
	assert_int_equal(buf[10], 'X');
	toml_free(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_error_positions),
		cmocka_unit_test(test_redefinition),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_size_limit),
		cmocka_unit_test(test_many_keys),
		cmocka_unit_test(test_bad_input_never_crashes),
		cmocka_unit_test(test_nul_in_keys_and_strings),
		cmocka_unit_test(test_lookup_and_names),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_datetimes),
		cmocka_unit_test(test_positions),
		cmocka_unit_test(test_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
