/* Unit tests for envvars: the environment read once by main. Each variable
 * unset, valid and invalid (an invalid value keeps the default). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "envvars.h"

static void unset_all(void)
{
	unsetenv("MOLERAT_RELAY");
	unsetenv("MOLERAT_UDP_GSO");
	unsetenv("MOLERAT_TEST_MAX_HANDSHAKES");
	unsetenv("MOLERAT_TEST_UDP_IDLE_MS");
}

static struct envvars read_now(void)
{
	struct envvars e;
	envvars_read(&e);
	return e;
}

static void test_defaults(void **state)
{
	unset_all();
	struct envvars e = read_now();
	assert_int_equal(e.relay_mode, RELAY_AUTO);
	assert_false(e.udp_no_gso);
	assert_int_equal(e.max_handshakes, 0);
	assert_int_equal(e.udp_idle_ms, 0);
}

static void test_relay_mode(void **state)
{
	static const struct { const char *v; enum relay_mode want; } cases[] = {
		{ "copy", RELAY_COPY }, { "splice", RELAY_AUTO }, { "auto", RELAY_AUTO },
		{ "", RELAY_AUTO }, { "COPYX", RELAY_AUTO },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		setenv("MOLERAT_RELAY", cases[i].v, 1);
		assert_int_equal(read_now().relay_mode, cases[i].want);
	}
	unset_all();
}

static void test_udp_gso(void **state)
{
	setenv("MOLERAT_UDP_GSO", "0", 1);
	assert_true(read_now().udp_no_gso);
	setenv("MOLERAT_UDP_GSO", "1", 1);
	assert_false(read_now().udp_no_gso);
	setenv("MOLERAT_UDP_GSO", "off", 1);   /* invalid: warned, GSO stays */
	assert_false(read_now().udp_no_gso);
	unset_all();
}

static void test_knobs(void **state)
{
	setenv("MOLERAT_TEST_MAX_HANDSHAKES", "4", 1);
	setenv("MOLERAT_TEST_UDP_IDLE_MS", "1500", 1);
	struct envvars e = read_now();
	assert_int_equal(e.max_handshakes, 4);
	assert_int_equal(e.udp_idle_ms, 1500);
	static const char *const bad[] = { "0", "-1", "1025", "4x", "99999999999999999999" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		setenv("MOLERAT_TEST_MAX_HANDSHAKES", bad[i], 1);
		assert_int_equal(read_now().max_handshakes, 0);
	}
	setenv("MOLERAT_TEST_UDP_IDLE_MS", "86400001", 1);
	assert_int_equal(read_now().udp_idle_ms, 0);
	unset_all();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_relay_mode),
		cmocka_unit_test(test_udp_gso),
		cmocka_unit_test(test_knobs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
