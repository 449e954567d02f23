/* srcmap: see srcmap.h. */
#include "base/srcmap.h"

#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/proto.h"

enum { SRCMAP_BUCKETS = 1024 };

struct srcmap {
	uint64_t seed;
	size_t n;
	struct src_entry *bucket[SRCMAP_BUCKETS];
};

struct srcmap *srcmap_new(void)
{
	struct srcmap *m = calloc(1, sizeof(*m));
	if (m && proto_random((uint8_t *)&m->seed, sizeof(m->seed)) < 0)
		m->seed = (uint64_t)(uintptr_t)m;   /* still per process; only spreads less */
	return m;
}

void srcmap_free(struct srcmap *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < SRCMAP_BUCKETS; i++) {
		struct src_entry *e = m->bucket[i];
		while (e) {
			struct src_entry *next = e->next;
			free(e);
			e = next;
		}
	}
	free(m);
}

/* The key of a's source: 0 when a is neither IPv4 nor IPv6. */
static size_t source_key(const struct addr *a, unsigned char key[17])
{
	if (a->ss.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&a->ss;
		key[0] = 4;
		memcpy(key + 1, &in->sin_addr, 4);
		return 5;
	}
	if (a->ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&a->ss;
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			key[0] = 4;
			memcpy(key + 1, in6->sin6_addr.s6_addr + 12, 4);
			return 5;
		}
		key[0] = 6;
		memcpy(key + 1, &in6->sin6_addr, 16);
		return 17;
	}
	return 0;
}

/* FNV-1a over the seed and the key. */
static size_t bucket_of(const struct srcmap *m, const unsigned char *key, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ m->seed;
	for (size_t i = 0; i < len; i++) {
		h ^= key[i];
		h *= 0x100000001b3ULL;
	}
	return (size_t)(h ^ (h >> 32)) % SRCMAP_BUCKETS;
}

struct src_entry *srcmap_get(struct srcmap *m, const struct addr *a)
{
	unsigned char key[17];
	size_t len = source_key(a, key);
	if (!len)
		return NULL;
	size_t b = bucket_of(m, key, len);
	for (struct src_entry *e = m->bucket[b]; e; e = e->next)
		if (e->klen == len && memcmp(e->key, key, len) == 0)
			return e;
	struct src_entry *e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	memcpy(e->key, key, len);
	e->klen = (unsigned char)len;
	e->next = m->bucket[b];
	m->bucket[b] = e;
	m->n++;
	return e;
}

void srcmap_put(struct srcmap *m, struct src_entry *e)
{
	if (!e || e->items.n)
		return;
	size_t b = bucket_of(m, e->key, e->klen);
	for (struct src_entry **pp = &m->bucket[b]; *pp; pp = &(*pp)->next) {
		if (*pp == e) {
			*pp = e->next;
			free(e);
			m->n--;
			return;
		}
	}
}

size_t srcmap_size(const struct srcmap *m)
{
	return m->n;
}
