/* cli: the rathole-compatible command line plus `check`. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "cli.h"

static int parse(struct cli_opts *o, int argc, const char **argv)
{
	FILE *devnull = fopen("/dev/null", "w");
	int r = cli_parse(argc, (char **)argv, o, devnull);
	fclose(devnull);
	return r;
}

#define PARSE(o, ...) ({ const char *a_[] = { "molerat", __VA_ARGS__ }; \
	parse(o, (int)(sizeof(a_) / sizeof(a_[0])), a_); })

static void test_run(void **state)
{
	(void)state;
	struct cli_opts o;
	assert_int_equal(PARSE(&o, "c.toml"), 0);
	assert_int_equal(o.cmd, CLI_RUN);
	assert_int_equal(o.mode, CONF_MODE_AUTO);
	assert_string_equal(o.config, "c.toml");
	assert_int_equal(PARSE(&o, "--server", "c.toml"), 0);
	assert_int_equal(o.mode, CONF_MODE_SERVER);
	assert_int_equal(PARSE(&o, "c.toml", "-c"), 0);   /* options after CONFIG */
	assert_int_equal(o.mode, CONF_MODE_CLIENT);
	assert_int_equal(PARSE(&o, "-s", "-s", "c.toml"), 0);
	assert_int_equal(o.mode, CONF_MODE_SERVER);
}

static void test_usage_errors(void **state)
{
	(void)state;
	struct cli_opts o;
	{ const char *a[] = { "molerat" }; assert_int_equal(parse(&o, 1, a), CLI_EXIT_USAGE); }
	assert_int_equal(PARSE(&o, "--server", "--client", "c.toml"), CLI_EXIT_USAGE);
	assert_int_equal(PARSE(&o, "-s", "-c", "c.toml"), CLI_EXIT_USAGE);
	assert_int_equal(PARSE(&o, "a.toml", "b.toml"), CLI_EXIT_USAGE);
	assert_int_equal(PARSE(&o, "--bogus", "c.toml"), CLI_EXIT_USAGE);
	assert_int_equal(PARSE(&o, "--genkey", "x25519", "c.toml"), CLI_EXIT_USAGE);
	assert_int_equal(PARSE(&o, "--server"), CLI_EXIT_USAGE);
}

static void test_genkey(void **state)
{
	(void)state;
	struct cli_opts o;
	assert_int_equal(PARSE(&o, "--genkey"), 0);
	assert_int_equal(o.cmd, CLI_GENKEY);
	assert_null(o.curve);
	assert_int_equal(PARSE(&o, "--genkey", "x448"), 0);
	assert_string_equal(o.curve, "x448");
	/* as in rathole: the optional value swallows a config path */
	assert_int_equal(PARSE(&o, "--genkey", "config.toml"), 0);
	assert_string_equal(o.curve, "config.toml");
}

static void test_check_help_version(void **state)
{
	(void)state;
	struct cli_opts o;
	assert_int_equal(PARSE(&o, "check", "c.toml"), 0);
	assert_int_equal(o.cmd, CLI_CHECK);
	assert_string_equal(o.config, "c.toml");
	assert_int_equal(PARSE(&o, "check", "--client", "c.toml"), 0);
	assert_int_equal(o.cmd, CLI_CHECK);
	assert_int_equal(o.mode, CONF_MODE_CLIENT);
	assert_int_equal(PARSE(&o, "--help"), 0);
	assert_int_equal(o.cmd, CLI_HELP);
	assert_int_equal(PARSE(&o, "-V"), 0);
	assert_int_equal(o.cmd, CLI_VERSION);
	assert_int_equal(PARSE(&o, "--version"), 0);
	assert_int_equal(o.cmd, CLI_VERSION_LONG);
	/* "check" is a subcommand only in first position; a file named
	 * check is reached as ./check */
	assert_int_equal(PARSE(&o, "c.toml", "check"), CLI_EXIT_USAGE);
	assert_int_equal(PARSE(&o, "./check"), 0);
	assert_int_equal(o.cmd, CLI_RUN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_run),
		cmocka_unit_test(test_usage_errors),
		cmocka_unit_test(test_genkey),
		cmocka_unit_test(test_check_help_version),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
