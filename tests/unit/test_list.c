/* list: the intrusive list of src/base/list.h (header-only). Every check
 * walks the list both ways and compares with the expected order and n. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include <stdlib.h>

#include "base/list.h"

struct item {
	int id;
	struct list_link link;   /* not first: list_entry must subtract the offset */
	int freed;
};

/* Checks l holds exactly ids[0..n-1], head to tail, with consistent back
 * links, head, tail and count. */
static void expect(const struct list *l, const int *ids, size_t n)
{
	assert_int_equal(l->n, n);
	size_t i = 0;
	struct list_link *prev = NULL;
	for (struct item *it = list_first_entry(l, struct item, link); it;
	     it = list_next_entry(it, struct item, link)) {
		assert_true(i < n);
		assert_int_equal(it->id, ids[i]);
		assert_ptr_equal(it->link.prev, prev);
		prev = &it->link;
		i++;
	}
	assert_int_equal(i, n);
	assert_ptr_equal(l->tail, prev);
	if (n == 0) {
		assert_null(l->head);
		assert_null(l->tail);
		assert_null(list_first(l));
		assert_null(list_first_entry(l, struct item, link));
	} else {
		assert_null(l->head->prev);
		assert_null(l->tail->next);
	}
}

static void expect_unlinked(const struct item *it)
{
	assert_null(it->link.next);
	assert_null(it->link.prev);
}

static void test_empty(void **state)
{
	struct list l = { 0 };
	expect(&l, NULL, 0);
	assert_null(list_entry(NULL, struct item, link));
}

static void test_push_back_front(void **state)
{
	struct item it[4] = { { .id = 0 }, { .id = 1 }, { .id = 2 }, { .id = 3 } };
	struct list l = { 0 };
	list_push_back(&l, &it[1].link);
	expect(&l, (int[]){ 1 }, 1);
	assert_ptr_equal(list_first_entry(&l, struct item, link), &it[1]);
	list_push_back(&l, &it[2].link);
	expect(&l, (int[]){ 1, 2 }, 2);
	list_push_front(&l, &it[0].link);
	expect(&l, (int[]){ 0, 1, 2 }, 3);
	list_push_back(&l, &it[3].link);
	expect(&l, (int[]){ 0, 1, 2, 3 }, 4);
	assert_ptr_equal(list_entry(l.tail, struct item, link), &it[3]);

	/* push_front onto an empty list sets the tail too */
	struct list m = { 0 };
	struct item a = { .id = 7 }, b = { .id = 8 };
	list_push_front(&m, &a.link);
	expect(&m, (int[]){ 7 }, 1);
	list_push_front(&m, &b.link);
	expect(&m, (int[]){ 8, 7 }, 2);
}

static void fill(struct list *l, struct item *it, int n)
{
	*l = (struct list){ 0 };
	for (int i = 0; i < n; i++) {
		it[i] = (struct item){ .id = i };
		list_push_back(l, &it[i].link);
	}
}

static void test_remove(void **state)
{
	struct item it[4];
	struct list l;

	fill(&l, it, 4);
	list_remove(&l, &it[0].link);          /* head */
	expect_unlinked(&it[0]);
	expect(&l, (int[]){ 1, 2, 3 }, 3);
	list_remove(&l, &it[2].link);          /* middle */
	expect_unlinked(&it[2]);
	expect(&l, (int[]){ 1, 3 }, 2);
	list_remove(&l, &it[3].link);          /* tail */
	expect_unlinked(&it[3]);
	expect(&l, (int[]){ 1 }, 1);
	list_remove(&l, &it[1].link);          /* the only one */
	expect_unlinked(&it[1]);
	expect(&l, NULL, 0);

	/* a removed element can be pushed again: to the front, as server.c
	 * puts a visitor back */
	list_push_back(&l, &it[2].link);
	list_push_back(&l, &it[3].link);
	list_push_front(&l, &it[0].link);
	expect(&l, (int[]){ 0, 2, 3 }, 3);
	list_remove(&l, &it[3].link);
	list_push_back(&l, &it[1].link);
	expect(&l, (int[]){ 0, 2, 1 }, 3);
}

/* FIFO use: push_back, take the head. */
static void test_fifo(void **state)
{
	struct item it[5];
	struct list l;
	fill(&l, it, 5);
	for (int i = 0; i < 5; i++) {
		struct item *h = list_first_entry(&l, struct item, link);
		assert_non_null(h);
		assert_int_equal(h->id, i);
		list_remove(&l, &h->link);
		assert_int_equal(l.n, (size_t)(4 - i));
	}
	expect(&l, NULL, 0);
}

/* Iterating while removing (and freeing) some: fetch next first. */
static void test_iterate_removing(void **state)
{
	enum { N = 7 };
	struct list l = { 0 };
	struct item *all[N];
	for (int i = 0; i < N; i++) {
		all[i] = calloc(1, sizeof(*all[i]));
		assert_non_null(all[i]);
		all[i]->id = i;
		list_push_back(&l, &all[i]->link);
	}
	/* remove and free the even ones: head, middles and tail */
	struct item *it = list_first_entry(&l, struct item, link);
	while (it) {
		struct item *next = list_next_entry(it, struct item, link);
		if (it->id % 2 == 0) {
			list_remove(&l, &it->link);
			free(it);
		}
		it = next;
	}
	expect(&l, (int[]){ 1, 3, 5 }, 3);

	/* then every one of the rest, freeing as it goes */
	it = list_first_entry(&l, struct item, link);
	while (it) {
		struct item *next = list_next_entry(it, struct item, link);
		list_remove(&l, &it->link);
		free(it);
		it = next;
	}
	expect(&l, NULL, 0);

	/* draining by the head, as the owners' teardowns do */
	struct item local[3];
	fill(&l, local, 3);
	size_t left = 3;
	while (list_first(&l)) {
		struct item *h = list_first_entry(&l, struct item, link);
		list_remove(&l, &h->link);
		h->freed = 1;
		assert_int_equal(l.n, --left);
	}
	for (int i = 0; i < 3; i++)
		assert_int_equal(local[i].freed, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_push_back_front),
		cmocka_unit_test(test_remove),
		cmocka_unit_test(test_fifo),
		cmocka_unit_test(test_iterate_removing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
