/* mem_xport: an in-memory lower layer for the fuzz targets that drive a
 * transport layer's stream side (fuzz_ws_stream; fuzz_noise_stream holds
 * the same code and may include this instead): reads come from in[],
 * writes land in the peer's in[] (or nowhere), and drain() reads a layer
 * until it has nothing more. Include after the target's CHECK(). */
#ifndef MOLERAT_FUZZ_MEM_XPORT_H
#define MOLERAT_FUZZ_MEM_XPORT_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xport/xport.h"

struct memx {
	struct xport base;
	uint8_t *in;            /* bytes to read */
	size_t in_len, in_off;
	bool in_eof;
	size_t read_max;        /* largest read returned (short reads) */
	struct memx *peer;      /* writes land in peer->in; NULL: discarded */
};

static inline struct memx *to_memx(struct xport *x) { return (struct memx *)x; }

static inline ssize_t mem_read(struct xport *x, void *buf, size_t len)
{
	struct memx *m = to_memx(x);
	size_t n = m->in_len - m->in_off;
	if (!n)
		return m->in_eof ? 0 : -EAGAIN;
	if (n > len)
		n = len;
	if (n > m->read_max)
		n = m->read_max;
	memcpy(buf, m->in + m->in_off, n);
	m->in_off += n;
	return (ssize_t)n;
}

static inline void mem_push(struct memx *m, const void *buf, size_t len)
{
	uint8_t *p = realloc(m->in, m->in_len + len + 1);
	CHECK(p);
	m->in = p;
	memcpy(m->in + m->in_len, buf, len);
	m->in_len += len;
}

static inline ssize_t mem_write(struct xport *x, const void *buf, size_t len)
{
	struct memx *m = to_memx(x);
	if (m->peer)
		mem_push(m->peer, buf, len);
	return (ssize_t)len;
}

static inline int mem_shutdown(struct xport *x) { return 0; }
static inline unsigned mem_want(struct xport *x) { return 1; }
static inline void mem_close(struct xport *x) { }

static const struct xport_ops mem_ops = {
	.name = "mem", .read = mem_read, .write = mem_write, .shutdown_wr = mem_shutdown,
	.want = mem_want, .close = mem_close,
};

static inline void memx_init(struct memx *m)
{
	memset(m, 0, sizeof(*m));
	m->base.ops = &mem_ops;
	m->base.fd = -1;
	m->base.splice_fd = -1;
	m->read_max = 1 << 20;
}

/* Reads what the server layer returns until -EAGAIN, 0 or an error;
 * checks it against expect[*got..) while exact. Returns the last result. */
static inline ssize_t drain(struct xport *sx, const uint8_t *expect, size_t expect_len, size_t *got,
		     bool exact, size_t rsz)
{
	static uint8_t buf[70000];
	for (;;) {
		ssize_t n = xport_read(sx, buf, rsz);
		if (n <= 0)
			return n;
		if (exact) {
			CHECK(*got + (size_t)n <= expect_len);
			CHECK(memcmp(buf, expect + *got, (size_t)n) == 0);
		}
		*got += (size_t)n;
	}
}

#endif
