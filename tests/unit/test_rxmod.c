/* Unit tests for rxmod: when a UDP socket's reads pause and when not. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "plane/rxmod.h"

static void test_sparse_traffic_is_never_delayed(void **state)
{
	struct rxmod m = { 0 };
	/* the first wake-up, then wake-ups further apart than RXMOD_BUSY_US */
	assert_int_equal(rxmod_after_read(&m, 5000000, 1, false), 0);
	assert_int_equal(rxmod_after_read(&m, 5000000 + RXMOD_BUSY_US, 3, false), 0);
	assert_int_equal(rxmod_after_read(&m, 5000000 + 10 * RXMOD_BUSY_US, 1, false), 0);
}

static void test_busy_socket_pauses_after_each_read(void **state)
{
	struct rxmod m = { 0 };
	uint64_t t = 1000000;
	assert_int_equal(rxmod_after_read(&m, t, 4, false), 0);
	for (int i = 0; i < 10; i++) {
		t += RXMOD_NAP_US + 30;
		assert_int_equal(rxmod_after_read(&m, t, 9, false), RXMOD_NAP_US);
	}
	/* traffic thins out: no more pauses */
	t += RXMOD_BUSY_US + 1;
	assert_int_equal(rxmod_after_read(&m, t, 1, false), 0);
}

static void test_full_batch_and_empty_read_never_pause(void **state)
{
	struct rxmod m = { 0 };
	assert_int_equal(rxmod_after_read(&m, 100, 2, false), 0);
	/* a read that filled its batch: more is waiting, read on */
	assert_int_equal(rxmod_after_read(&m, 150, 32, true), 0);
	/* a spurious wake-up neither pauses nor counts as one */
	assert_int_equal(rxmod_after_read(&m, 160, 0, false), 0);
	assert_int_equal(m.last_us, 150);
	assert_int_equal(rxmod_after_read(&m, 170, 1, false), RXMOD_NAP_US);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sparse_traffic_is_never_delayed),
		cmocka_unit_test(test_busy_socket_pauses_after_each_read),
		cmocka_unit_test(test_full_batch_and_empty_read_never_pause),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
