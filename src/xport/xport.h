/* xport: a transport stream behind one vtable (tcp now; tls, noise,
 * websocket slot in later and stack over another xport).
 *
 * Ownership: whoever holds the struct xport * owns it and must call
 * xport_close() exactly once; close frees it and closes the fd.
 *
 * Readiness: the fd (x->fd) is what the owner registers with the loop. When
 * an operation returns -EAGAIN, xport_want() says which events will let it
 * make progress (a TLS read may want LOOP_WRITE). xport_pending() is the
 * number of plaintext bytes buffered inside the transport that a read can
 * return without the fd becoming readable; the owner must keep reading while
 * it is non-zero. */
#ifndef MOLERAT_XPORT_H
#define MOLERAT_XPORT_H

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
	unsigned (*want)(struct xport *x);
	size_t (*pending)(struct xport *x);
	void (*close)(struct xport *x);
};

struct xport {
	const struct xport_ops *ops;
	int fd;         /* the fd to watch */
	int splice_fd;  /* >= 0 only when bytes may be spliced straight to/from this fd (plain tcp) */
};

static inline int xport_handshake(struct xport *x) { return x->ops->handshake ? x->ops->handshake(x) : 0; }
static inline ssize_t xport_read(struct xport *x, void *b, size_t n) { return x->ops->read(x, b, n); }
static inline ssize_t xport_write(struct xport *x, const void *b, size_t n) { return x->ops->write(x, b, n); }
static inline int xport_shutdown_wr(struct xport *x) { return x->ops->shutdown_wr(x); }
static inline unsigned xport_want(struct xport *x) { return x->ops->want(x); }
static inline size_t xport_pending(struct xport *x) { return x->ops->pending ? x->ops->pending(x) : 0; }
static inline void xport_close(struct xport *x) { if (x) x->ops->close(x); }

/* tcp: wraps a connected, non-blocking socket. Takes ownership of fd (also
 * on failure: the fd is closed). Returns NULL only on out-of-memory. */
struct xport *xport_tcp_new(int fd);

/* Socket options of [*.transport.tcp] (spec §7.0): SO_KEEPALIVE on,
 * TCP_KEEPIDLE / TCP_KEEPINTVL, TCP_NODELAY. Failures are logged at debug
 * and otherwise ignored, as rathole does. */
struct tcp_opts {
	int nodelay;            /* 0 or 1 */
	unsigned keepalive_secs;
	unsigned keepalive_interval;
};
void xport_tcp_apply_opts(int fd, const struct tcp_opts *o);

#endif
