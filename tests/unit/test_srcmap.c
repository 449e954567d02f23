/* srcmap: in-flight things grouped by source address (the server's
 * handshakes per IP): entries made on demand, one per address whatever the
 * port, IPv4-mapped IPv6 counted as IPv4, freed when empty. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <netinet/in.h>

#include "base/srcmap.h"

static struct addr lit(const char *host, uint16_t port)
{
	struct addr a;
	assert_int_equal(addr_from_literal(host, port, &a), 0);
	return a;
}

struct item {
	struct list_link link;
};

static void test_grouping(void **state)
{
	struct srcmap *m = srcmap_new();
	assert_non_null(m);
	struct addr a1 = lit("192.0.2.1", 1000), a2 = lit("192.0.2.1", 2000);
	struct addr b = lit("192.0.2.2", 1000), mapped = lit("::ffff:192.0.2.1", 3000);
	struct addr v6 = lit("2001:db8::1", 1000);
	struct src_entry *e1 = srcmap_get(m, &a1);
	assert_non_null(e1);
	assert_ptr_equal(srcmap_get(m, &a2), e1);        /* the port does not count */
	assert_ptr_equal(srcmap_get(m, &mapped), e1);    /* nor IPv4-mapped IPv6 */
	struct src_entry *eb = srcmap_get(m, &b), *e6 = srcmap_get(m, &v6);
	assert_true(eb && e6 && eb != e1 && e6 != e1 && e6 != eb);
	assert_int_equal(srcmap_size(m), 3);

	struct item it[3] = { 0 };
	for (int i = 0; i < 3; i++)
		list_push_back(&e1->items, &it[i].link);
	srcmap_put(m, e1);                               /* not empty: kept */
	assert_ptr_equal(srcmap_get(m, &a1), e1);
	for (int i = 0; i < 3; i++) {
		list_remove(&e1->items, &it[i].link);
		srcmap_put(m, e1);
	}
	assert_int_equal(srcmap_size(m), 2);             /* empty: freed */
	srcmap_put(m, eb);
	srcmap_put(m, e6);
	assert_int_equal(srcmap_size(m), 0);
	srcmap_put(m, NULL);
	srcmap_free(m);
	srcmap_free(NULL);
}

static void test_many_sources(void **state)
{
	/* more sources than buckets: chains, and every one is found again */
	struct srcmap *m = srcmap_new();
	struct src_entry *e[3000];
	for (unsigned i = 0; i < 3000; i++) {
		struct addr a = lit("10.0.0.0", 1);
		((unsigned char *)&((struct sockaddr_in *)&a.ss)->sin_addr)[2] = (unsigned char)(i >> 8);
		((unsigned char *)&((struct sockaddr_in *)&a.ss)->sin_addr)[3] = (unsigned char)i;
		e[i] = srcmap_get(m, &a);
		assert_non_null(e[i]);
	}
	assert_int_equal(srcmap_size(m), 3000);
	for (unsigned i = 0; i < 3000; i += 2)
		srcmap_put(m, e[i]);
	assert_int_equal(srcmap_size(m), 1500);
	srcmap_free(m);   /* frees the rest */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grouping),
		cmocka_unit_test(test_many_sources),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
