/* list: an intrusive, doubly linked, NULL-terminated list with a head, a
 * tail and a count: the one place that links and unlinks the sets and
 * queues a module keeps (visitors, pooled channels, handshakes, relays...).
 *
 * Ownership: the list never allocates or frees. An element embeds a
 * struct list_link and its owner allocates and frees it; the list only
 * points at those links. An element must be removed before it is freed.
 *
 * Contract: zero-initialise a struct list (or embed it in a calloc'ed
 * struct) and a struct list_link. An element is in at most one list at a
 * time through one link; it may be pushed only while unlinked (a fresh or
 * removed link), and list_remove() takes only an element of that very list
 * (any one: head, middle, tail or the only one) and clears its links. n is
 * the number of elements, kept by push and remove; read it, never write
 * it. Iteration runs head to tail with list_first_entry/list_next_entry,
 * both NULL past the end; to remove or free the element at hand, fetch the
 * next one first. Header-only, no state of its own, not thread-safe. */
#ifndef MOLERAT_LIST_H
#define MOLERAT_LIST_H

#include <assert.h>
#include <stddef.h>

struct list_link {
	struct list_link *next, *prev;
};

struct list {
	struct list_link *head, *tail;
	size_t n;
};

static inline void list_push_back(struct list *l, struct list_link *e)
{
	assert(!e->next && !e->prev && l->head != e);
	e->prev = l->tail;
	if (l->tail)
		l->tail->next = e;
	else
		l->head = e;
	l->tail = e;
	l->n++;
}

static inline void list_push_front(struct list *l, struct list_link *e)
{
	assert(!e->next && !e->prev && l->head != e);
	e->prev = NULL;
	e->next = l->head;
	if (l->head)
		l->head->prev = e;
	else
		l->tail = e;
	l->head = e;
	l->n++;
}

static inline void list_remove(struct list *l, struct list_link *e)
{
	assert(l->n > 0 && (e->prev || l->head == e) && (e->next || l->tail == e));
	if (e->prev)
		e->prev->next = e->next;
	else
		l->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		l->tail = e->prev;
	e->next = e->prev = NULL;
	l->n--;
}

/* The first link, NULL if the list is empty. */
static inline struct list_link *list_first(const struct list *l)
{
	return l->head;
}

/* The element holding link k, at offset off; NULL for a NULL link. */
static inline void *list_entry_at_(struct list_link *k, size_t off)
{
	return k ? (void *)((char *)k - off) : NULL;
}

/* The element of type `type` whose struct list_link `member` is at link
 * (NULL for NULL). */
#define list_entry(link, type, member) \
	((type *)list_entry_at_((link), offsetof(type, member)))

/* The first element of list l (a struct list *), NULL if it is empty. */
#define list_first_entry(l, type, member) list_entry(list_first(l), type, member)

/* The element after e (a type *) in its list, NULL if e is the last. */
#define list_next_entry(e, type, member) list_entry((e)->member.next, type, member)

#endif
