/* xport: a transport stream behind one vtable, and the layer of a
 * transport stack (docs/internals/transports.md). tcp sits at the bottom;
 * tls, noise, websocket and the proxy steps will each sit on a lower xport
 * (x->lower) and reach the network only through it.
 *
 * Ownership: whoever holds the top struct xport * owns the whole stack and
 * must call xport_close() exactly once; a layer's close closes its lower
 * layer, and the bottom closes the fd. Only xport/stack.c builds stacks
 * (tests may build a tcp layer directly).
 *
 * Readiness: the fd (x->fd, the bottom layer's socket, the same at every
 * layer) is what the owner registers with the loop. When an operation
 * returns -EAGAIN, xport_want() says which events will let it make
 * progress (a TLS read may want LOOP_WRITE). xport_pending() is the number
 * of plaintext bytes buffered inside the stack that a read can return
 * without the fd becoming readable; the owner must keep reading while it is
 * non-zero.
 *
 * Two separate properties:
 *   splice_fd >= 0            bytes may be spliced straight to/from this fd
 *                             (plain tcp; kTLS may offer it later);
 *   XPORT_F_SHORT_IO_EXACT    nothing is held above the kernel (a plain
 *                             socket): a read that returns fewer bytes than
 *                             asked means the receive queue was empty, a
 *                             short write that the send buffer was full, so
 *                             the relay may wait for the loop instead of
 *                             trying again for an -EAGAIN. */
#ifndef MOLERAT_XPORT_H
#define MOLERAT_XPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct xport;

struct xport_ops {
	const char *name;
	/* Drives the transport handshake. 0 = done, -EAGAIN = call again when
	 * xport_want() is ready, other negative = failed. */
	int (*handshake)(struct xport *x);
	/* >0 bytes read, 0 = end of stream, -EAGAIN, or negative error. */
	ssize_t (*read)(struct xport *x, void *buf, size_t len);
	/* >0 bytes accepted (may be fewer than len), -EAGAIN, or negative
	 * error. A write of len > 0 never returns 0. */
	ssize_t (*write)(struct xport *x, const void *buf, size_t len);
	/* Ends our sending direction (FIN, close_notify, WS Close). 0 done,
	 * -EAGAIN to call again, negative error. */
	int (*shutdown_wr)(struct xport *x);
	/* Optional: like write, for several buffers at once (one syscall on
	 * tcp). NULL: xport_writev() writes the first non-empty buffer. */
	ssize_t (*writev)(struct xport *x, const struct iovec *iov, int iovcnt);
	unsigned (*want)(struct xport *x);
	size_t (*pending)(struct xport *x);
	void (*close)(struct xport *x);
	/* Optional: after an operation failed with MR_ETLS or MR_ENOISE, one
	 * line (no newline, no secrets) saying what went wrong and, where it
	 * helps, what to do ("certificate verify failed: self-signed
	 * certificate; set trusted_root to the CA that signed it"). NULL when
	 * the error code says it all. Valid until the next call on x. */
	const char *(*last_error)(struct xport *x);
};

enum xport_flags {
	XPORT_F_SHORT_IO_EXACT = 1u << 0,   /* see the properties above */
};

struct xport {
	const struct xport_ops *ops;
	struct xport *lower;  /* the layer below, owned by this one; NULL at the bottom */
	int fd;               /* the fd to watch: the bottom layer's socket */
	int splice_fd;        /* >= 0 only when bytes may be spliced straight to/from this fd */
	unsigned flags;       /* enum xport_flags */
};

static inline int xport_handshake(struct xport *x) { return x->ops->handshake ? x->ops->handshake(x) : 0; }
static inline ssize_t xport_read(struct xport *x, void *b, size_t n) { return x->ops->read(x, b, n); }
static inline ssize_t xport_write(struct xport *x, const void *b, size_t n) { return x->ops->write(x, b, n); }
static inline int xport_shutdown_wr(struct xport *x) { return x->ops->shutdown_wr(x); }
static inline unsigned xport_want(struct xport *x) { return x->ops->want(x); }
static inline size_t xport_pending(struct xport *x) { return x->ops->pending ? x->ops->pending(x) : 0; }
static inline void xport_close(struct xport *x) { if (x) x->ops->close(x); }
static inline const char *xport_last_error(struct xport *x) { return x->ops->last_error ? x->ops->last_error(x) : NULL; }
static inline bool xport_short_read_empty(const struct xport *x) { return x->flags & XPORT_F_SHORT_IO_EXACT; }
static inline bool xport_short_write_full(const struct xport *x) { return x->flags & XPORT_F_SHORT_IO_EXACT; }
static inline ssize_t xport_writev(struct xport *x, const struct iovec *iov, int iovcnt)
{
	if (x->ops->writev)
		return x->ops->writev(x, iov, iovcnt);
	for (int i = 0; i < iovcnt; i++)
		if (iov[i].iov_len)
			return x->ops->write(x, iov[i].iov_base, iov[i].iov_len);
	return 0;
}
/* The bottom layer (the socket's transport). */
static inline struct xport *xport_bottom(struct xport *x)
{
	while (x->lower)
		x = x->lower;
	return x;
}

/* tcp: wraps a connected, non-blocking socket. Takes ownership of fd (also
 * on failure: the fd is closed). Returns NULL only on out-of-memory. Its
 * splice_fd is the fd and it is XPORT_F_SHORT_IO_EXACT. Outside tests,
 * only xport/stack.c calls it. */
struct xport *xport_tcp_new(int fd);

/* Socket options of [*.transport.tcp] (protocol.md: TCP options):
 * SO_KEEPALIVE on, TCP_KEEPIDLE / TCP_KEEPINTVL, TCP_NODELAY. Failures are
 * logged at debug and otherwise ignored, as rathole does. */
struct tcp_opts {
	int nodelay;            /* 0 or 1 */
	unsigned keepalive_secs;
	unsigned keepalive_interval;
};
void xport_tcp_apply_opts(int fd, const struct tcp_opts *o);

/* TCP_NODELAY on the stack's socket (a service's own nodelay, the control
 * channel's). Returns 0 or -errno. */
int xport_set_nodelay(struct xport *x, int on);

#endif
