/* srcmap: things in flight, grouped by the IP address they came from, so a
 * bound can apply per source (the server's handshakes: one address cannot
 * hold every slot). A hash table of entries keyed by the address without
 * its port (an IPv4-mapped IPv6 address counts as the IPv4 one), seeded at
 * random so a peer cannot aim its addresses at one bucket.
 *
 * Ownership: the map owns its entries; an entry lives while its list holds
 * something: the owner pushes its items (they embed a struct list_link) on
 * entry->items, removes them itself, and calls srcmap_put() after each
 * removal, which frees the entry once it is empty. srcmap_free() frees
 * what is left (the items are the owner's, never touched). */
#ifndef MOLERAT_SRCMAP_H
#define MOLERAT_SRCMAP_H

#include "base/list.h"
#include "codec/addr.h"

struct srcmap;

struct src_entry {
	struct list items;     /* the owner's items from this source, oldest first */
	/* the map's own fields */
	struct src_entry *next;
	unsigned char key[17]; /* family byte + up to 16 address bytes */
	unsigned char klen;
};

/* NULL on out-of-memory. */
struct srcmap *srcmap_new(void);
void srcmap_free(struct srcmap *m);
/* The entry of a's source, made when there is none. NULL on out-of-memory
 * (or an address that is not IPv4/IPv6: those are not grouped). */
struct src_entry *srcmap_get(struct srcmap *m, const struct addr *a);
/* Frees e when its list is empty. */
void srcmap_put(struct srcmap *m, struct src_entry *e);
/* Entries alive (sources with something in flight). */
size_t srcmap_size(const struct srcmap *m);

#endif
