/* Unit tests for backoff: protocol.md#p-backoff algorithm and the protocol.md#p-backoff-uses centre values. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "base/backoff.h"
#include "base/err.h"

/* A fixed random source: ctx points at the double to return. */
static double fixed_rand(void *ctx)
{
	return *(const double *)ctx;
}

static const double HALF = 0.5, ZERO = 0.0, ALMOST_ONE = 0x1.fffffffffffffp-1;

/* Checks that b yields exactly want[0..n) with no time passing. */
static void expect_seq(struct backoff *b, const uint64_t *want, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t d = 12345;
		assert_int_equal(backoff_next(b, 0, &d), 0);
		assert_int_equal(d, want[i]);
	}
}

static void test_control_retry_1(void **state)
{
	(void)state;
	struct backoff b;
	struct backoff_params p = backoff_params_control(1);
	assert_int_equal(p.initial_ms, 500);
	assert_true(p.multiplier == 3.0);
	assert_true(p.randomization == 0.2);
	assert_int_equal(p.max_interval_ms, 1000);
	assert_false(p.has_max_elapsed);
	assert_int_equal(backoff_init(&b, &p, 0, fixed_rand, (void *)&HALF), 0);
	static const uint64_t want[] = { 500, 1000, 1000, 1000, 1000 };
	expect_seq(&b, want, 5);
}

static void test_control_retry_10(void **state)
{
	(void)state;
	struct backoff b;
	struct backoff_params p = backoff_params_control(10);
	assert_int_equal(backoff_init(&b, &p, 0, fixed_rand, (void *)&HALF), 0);
	static const uint64_t want[] = { 500, 1500, 4500, 10000, 10000, 10000 };
	expect_seq(&b, want, 6);

	/* reset starts over, and never gives up however late */
	backoff_reset(&b, 1000000);
	uint64_t d;
	assert_int_equal(backoff_next(&b, UINT64_MAX, &d), 0);
	assert_int_equal(d, 500);
	assert_int_equal(backoff_next(&b, UINT64_MAX, &d), 0);
	assert_int_equal(d, 1500);
}

static void test_control_retry_0_floor(void **state)
{
	(void)state;
	struct backoff b;
	struct backoff_params p = backoff_params_control(0);
	assert_int_equal(p.max_interval_ms, BACKOFF_CTRL_FLOOR_MS);
	assert_int_equal(backoff_init(&b, &p, 0, fixed_rand, (void *)&HALF), 0);
	/* the first delay still comes from initial, then the 100 ms floor */
	static const uint64_t want[] = { 500, 100, 100, 100 };
	expect_seq(&b, want, 4);
}

static void test_control_huge_retry(void **state)
{
	(void)state;
	struct backoff b;
	struct backoff_params p = backoff_params_control(UINT64_MAX);
	assert_int_equal(p.max_interval_ms, UINT64_MAX);
	assert_int_equal(backoff_init(&b, &p, 0, fixed_rand, (void *)&ALMOST_ONE), 0);
	uint64_t prev = 0, d;
	for (int i = 0; i < 200; i++) {
		assert_int_equal(backoff_next(&b, 0, &d), 0);
		assert_true(d >= prev);
		prev = d;
	}
	assert_int_equal(b.current_ms, UINT64_MAX);
	assert_int_equal(d, UINT64_MAX);
}

static void test_data_channel(void **state)
{
	(void)state;
	struct backoff b;
	struct backoff_params p = backoff_params_data_channel();
	assert_true(p.has_max_elapsed);
	assert_int_equal(p.max_elapsed_ms, 10000);
	assert_int_equal(p.max_interval_ms, 100);
	assert_int_equal(backoff_init(&b, &p, 1000, fixed_rand, (void *)&HALF), 0);

	/* time advances by each delay: 500, then 100 until 10 s have passed */
	uint64_t now = 1000, d;
	int count = 0;
	while (backoff_next(&b, now, &d) == 0) {
		assert_int_equal(d, count == 0 ? 500 : 100);
		now += d;
		count++;
		assert_true(count < 1000);
	}
	assert_int_equal(count, 96); /* 500 + 95 x 100 = 10000 */
	assert_int_equal(now, 11000);

	/* elapsed > max_elapsed gives up at once (step 1) */
	backoff_reset(&b, 0);
	assert_int_equal(backoff_next(&b, 10001, &d), MR_ELIMIT);
	/* elapsed == max_elapsed passes step 1 but d does not fit (step 4) */
	backoff_reset(&b, 0);
	assert_int_equal(backoff_next(&b, 10000, &d), MR_ELIMIT);
	/* a delay ending exactly at max_elapsed is allowed */
	backoff_reset(&b, 0);
	assert_int_equal(backoff_next(&b, 9500, &d), 0);
	assert_int_equal(d, 500);
	/* a fresh start after reset */
	backoff_reset(&b, 20000);
	assert_int_equal(backoff_next(&b, 20000, &d), 0);
	assert_int_equal(d, 500);
	/* a clock before start counts as 0 elapsed */
	backoff_reset(&b, 50000);
	assert_int_equal(backoff_next(&b, 10, &d), 0);
	assert_int_equal(d, 500);
}

static void test_server_presets(void **state)
{
	(void)state;
	struct backoff b;
	struct backoff_params p = backoff_params_server_accept();
	assert_false(p.has_max_elapsed);
	assert_int_equal(backoff_init(&b, &p, 0, fixed_rand, (void *)&HALF), 0);
	static const uint64_t accept[] = { 500, 100, 100, 100 };
	expect_seq(&b, accept, 4);

	p = backoff_params_listener_bind();
	assert_false(p.has_max_elapsed);
	assert_int_equal(backoff_init(&b, &p, 0, fixed_rand, (void *)&HALF), 0);
	static const uint64_t bind[] = { 500, 750, 1000, 1000, 1000 };
	expect_seq(&b, bind, 5);

	p = backoff_params_service_accept();
	assert_false(p.has_max_elapsed);
	assert_int_equal(backoff_init(&b, &p, 0, fixed_rand, (void *)&HALF), 0);
	expect_seq(&b, bind, 5);
	uint64_t d;
	assert_int_equal(backoff_next(&b, UINT64_MAX, &d), 0);
	assert_int_equal(d, 1000);
}

static void test_jitter_bounds(void **state)
{
	(void)state;
	struct backoff b;
	struct backoff_params ctrl = backoff_params_control(10), data = backoff_params_data_channel();
	uint64_t d;

	/* random 0: the low end, current x (1 - r) */
	assert_int_equal(backoff_init(&b, &ctrl, 0, fixed_rand, (void *)&ZERO), 0);
	static const uint64_t ctrl_lo[] = { 400, 1200, 3600, 8000, 8000 };
	expect_seq(&b, ctrl_lo, 5);
	assert_int_equal(backoff_init(&b, &data, 0, fixed_rand, (void *)&ZERO), 0);
	static const uint64_t data_lo[] = { 250, 50, 50 };
	expect_seq(&b, data_lo, 3);

	/* random just below 1: the high end, current x (1 + r) */
	assert_int_equal(backoff_init(&b, &ctrl, 0, fixed_rand, (void *)&ALMOST_ONE), 0);
	static const uint64_t ctrl_hi[] = { 600, 1800, 5400, 12000, 12000 };
	expect_seq(&b, ctrl_hi, 5);
	assert_int_equal(backoff_init(&b, &data, 0, fixed_rand, (void *)&ALMOST_ONE), 0);
	static const uint64_t data_hi[] = { 750, 150, 150 };
	expect_seq(&b, data_hi, 3);

	/* out-of-range random values are clamped into [0, 1) */
	static const double over = 7.0, under = -3.0;
	assert_int_equal(backoff_init(&b, &data, 0, fixed_rand, (void *)&over), 0);
	assert_int_equal(backoff_next(&b, 0, &d), 0);
	assert_int_equal(d, 750);
	assert_int_equal(backoff_init(&b, &data, 0, fixed_rand, (void *)&under), 0);
	assert_int_equal(backoff_next(&b, 0, &d), 0);
	assert_int_equal(d, 250);
	static double nan_v;
	nan_v = NAN;
	assert_int_equal(backoff_init(&b, &data, 0, fixed_rand, &nan_v), 0);
	assert_int_equal(backoff_next(&b, 0, &d), 0);
	assert_int_equal(d, 250);

	/* the default source stays within the bounds and is not constant */
	assert_int_equal(backoff_init(&b, &ctrl, 0, NULL, NULL), 0);
	assert_true(b.rand == backoff_rand_default);
	uint64_t first = 0;
	int varied = 0;
	for (int i = 0; i < 200; i++) {
		backoff_reset(&b, 0);
		assert_int_equal(backoff_next(&b, 0, &d), 0);
		assert_true(d >= 400 && d <= 600);
		if (i == 0)
			first = d;
		else if (d != first)
			varied = 1;
		assert_int_equal(backoff_next(&b, 0, &d), 0);
		assert_true(d >= 1200 && d <= 1800);
	}
	assert_true(varied);
}

static void test_rand_default(void **state)
{
	(void)state;
	double lo = 1.0, hi = 0.0;
	for (int i = 0; i < 1000; i++) {
		double u = backoff_rand_default(NULL);
		assert_true(u >= 0.0 && u < 1.0);
		if (u < lo)
			lo = u;
		if (u > hi)
			hi = u;
	}
	assert_true(lo < 0.1);
	assert_true(hi > 0.9);
}

static void test_init_validation(void **state)
{
	(void)state;
	struct backoff b;
	struct backoff_params p = backoff_params_listener_bind();
	p.multiplier = 0.5;
	assert_int_equal(backoff_init(&b, &p, 0, NULL, NULL), MR_EFORMAT);
	p.multiplier = NAN;
	assert_int_equal(backoff_init(&b, &p, 0, NULL, NULL), MR_EFORMAT);
	p.multiplier = INFINITY;
	assert_int_equal(backoff_init(&b, &p, 0, NULL, NULL), MR_EFORMAT);
	p.multiplier = 1.0;
	assert_int_equal(backoff_init(&b, &p, 0, NULL, NULL), 0);
	p.randomization = 1.5;
	assert_int_equal(backoff_init(&b, &p, 0, NULL, NULL), MR_EFORMAT);
	p.randomization = -0.1;
	assert_int_equal(backoff_init(&b, &p, 0, NULL, NULL), MR_EFORMAT);
	p.randomization = NAN;
	assert_int_equal(backoff_init(&b, &p, 0, NULL, NULL), MR_EFORMAT);
	p.randomization = 0.0;
	assert_int_equal(backoff_init(&b, &p, 0, NULL, NULL), 0);
	/* multiplier 1, no jitter: constant 500 (cap 1000 never reached) */
	uint64_t d;
	for (int i = 0; i < 5; i++) {
		assert_int_equal(backoff_next(&b, 0, &d), 0);
		assert_int_equal(d, 500);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_control_retry_1),
		cmocka_unit_test(test_control_retry_10),
		cmocka_unit_test(test_control_retry_0_floor),
		cmocka_unit_test(test_control_huge_retry),
		cmocka_unit_test(test_data_channel),
		cmocka_unit_test(test_server_presets),
		cmocka_unit_test(test_jitter_bounds),
		cmocka_unit_test(test_rand_default),
		cmocka_unit_test(test_init_validation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
