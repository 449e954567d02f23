/* log: level names, the MOLERAT_LOG / RUST_LOG environment, rate-limited
 * lines. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <cmocka.h>

#include "base/log.h"

static void set_env(const char *molerat, const char *rust)
{
	if (molerat) setenv("MOLERAT_LOG", molerat, 1); else unsetenv("MOLERAT_LOG");
	if (rust) setenv("RUST_LOG", rust, 1); else unsetenv("RUST_LOG");
	log_set_level(LOGL_INFO);
	log_init_from_env();
}

static void test_level_names(void **state)
{
	(void)state;
	assert_int_equal(log_level_parse("error", 5), LOGL_ERROR);
	assert_int_equal(log_level_parse("WARN", 4), LOGL_WARN);
	assert_int_equal(log_level_parse("warning", 7), LOGL_WARN);
	assert_int_equal(log_level_parse("info", 4), LOGL_INFO);
	assert_int_equal(log_level_parse("Debug", 5), LOGL_DEBUG);
	assert_int_equal(log_level_parse("trace", 5), LOGL_TRACE);
	assert_int_equal(log_level_parse("off", 3), LOGL_OFF);
	assert_int_equal(log_level_parse("verbose", 7), -1);
	assert_int_equal(log_level_parse("inf", 3), -1);
	assert_int_equal(log_level_parse("", 0), -1);
}

static void test_env(void **state)
{
	(void)state;
	set_env(NULL, NULL);
	assert_int_equal(log_get_level(), LOGL_INFO);
	set_env("debug", "error");          /* MOLERAT_LOG wins */
	assert_int_equal(log_get_level(), LOGL_DEBUG);
	set_env(NULL, "warn");
	assert_int_equal(log_get_level(), LOGL_WARN);
	set_env("", "trace");               /* empty MOLERAT_LOG: RUST_LOG */
	assert_int_equal(log_get_level(), LOGL_TRACE);
	set_env(NULL, "rathole=debug");
	assert_int_equal(log_get_level(), LOGL_DEBUG);
	set_env(NULL, "info,rathole::server=trace");   /* most specific wins */
	assert_int_equal(log_get_level(), LOGL_TRACE);
	set_env(NULL, "tokio=trace,error");           /* unknown target ignored */
	assert_int_equal(log_get_level(), LOGL_ERROR);
	set_env(NULL, "molerat=off");
	assert_int_equal(log_get_level(), LOGL_OFF);
	set_env(NULL, "nonsense");                    /* warned, default kept */
	assert_int_equal(log_get_level(), LOGL_INFO);
	set_env(NULL, NULL);
}

static void test_enabled(void **state)
{
	(void)state;
	log_set_level(LOGL_WARN);
	assert_true(log_enabled(LOGL_ERROR));
	assert_true(log_enabled(LOGL_WARN));
	assert_false(log_enabled(LOGL_INFO));
	log_set_level(LOGL_OFF);
	assert_false(log_enabled(LOGL_ERROR));
	log_set_level(LOGL_INFO);
}

/* Runs fn with stderr sent to a temporary file; returns what it wrote
 * (static buffer). */
static const char *capture_stderr(void (*fn)(void))
{
	static char out[8192];
	fflush(stderr);
	int saved = dup(2);
	FILE *tmp = tmpfile();
	assert_non_null(tmp);
	dup2(fileno(tmp), 2);
	fn();
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(tmp);
	size_t n = fread(out, 1, sizeof(out) - 1, tmp);
	out[n] = '\0';
	fclose(tmp);
	return out;
}

static size_t count_lines(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void limited_burst(void)
{
	struct log_limit l = { 0 };
	/* 100 lines within the first second: one written */
	for (unsigned i = 0; i < 100; i++)
		log_limited(&l, 5000 + i, LOGL_WARN, "bad handshake %u", i);
	/* 2.5 s later: written, with the count of the 99 suppressed */
	log_limited(&l, 7500, LOGL_WARN, "bad handshake %u", 100u);
	/* a second later again: written, nothing was suppressed */
	log_limited(&l, 8600, LOGL_WARN, "bad handshake %u", 101u);
	/* below the level: nothing, and not counted */
	log_limited(&l, 8700, LOGL_DEBUG, "quiet");
}

static void test_limited(void **state)
{
	(void)state;
	log_set_level(LOGL_INFO);
	const char *out = capture_stderr(limited_burst);
	assert_int_equal(count_lines(out), 3);
	assert_non_null(strstr(out, "bad handshake 0\n"));
	assert_null(strstr(out, "bad handshake 1\n"));
	assert_non_null(strstr(out, "bad handshake 100 (99 more like this suppressed in 2.4 s)\n"));
	assert_non_null(strstr(out, "bad handshake 101\n"));
	assert_null(strstr(out, "quiet"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_level_names),
		cmocka_unit_test(test_env),
		cmocka_unit_test(test_enabled),
		cmocka_unit_test(test_limited),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
