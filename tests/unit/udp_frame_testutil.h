/* udp_frame_testutil: UDP frames built byte by byte from the layout of
 * protocol.md#p-udp-frame, independently of proto.c, for test_udp_frame.c
 * and test_udp.c (after <cmocka.h>). Pure: no loop, no sockets, so a test
 * linking molerat_codec alone may include it. */
#ifndef MOLERAT_UDP_FRAME_TESTUTIL_H
#define MOLERAT_UDP_FRAME_TESTUTIL_H

#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "codec/addr.h"

/* Hex digits to bytes (spaces and '|' skipped); returns the count. */
static inline size_t unhex(const char *h, uint8_t *out, size_t cap)
{
	size_t n = 0;
	while (*h) {
		if (*h == ' ' || *h == '|') {
			h++;
			continue;
		}
		unsigned v;
		assert_int_equal(sscanf(h, "%2x", &v), 1);
		assert_true(n < cap);
		out[n++] = (uint8_t)v;
		h += 2;
	}
	return n;
}

static inline struct addr addr_of(const char *host, uint16_t port)
{
	struct addr a;
	assert_int_equal(addr_from_literal(host, port, &a), 0);
	return a;
}

/* Encodes a frame per protocol.md#p-udp-frame, written out here by hand. */
static inline size_t frame(uint8_t *out, const struct addr *from, const uint8_t *p, size_t n)
{
	size_t k = 0;
	uint16_t port = addr_port(from);
	if (from->ss.ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)&from->ss;
		out[k++] = 12;
		out[k++] = 0; out[k++] = 0; out[k++] = 0; out[k++] = 0;
		memcpy(out + k, &s->sin_addr, 4);
		k += 4;
	} else {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&from->ss;
		out[k++] = 24;
		out[k++] = 1; out[k++] = 0; out[k++] = 0; out[k++] = 0;
		memcpy(out + k, &s->sin6_addr, 16);
		k += 16;
	}
	out[k++] = (uint8_t)port;
	out[k++] = (uint8_t)(port >> 8);
	out[k++] = (uint8_t)n;
	out[k++] = (uint8_t)(n >> 8);
	if (n)
		memcpy(out + k, p, n);
	return k + n;
}

/* A payload pattern of n bytes that differs by seed. */
static inline void fill(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 31u + seed * 7u + (i >> 8));
}

#endif
