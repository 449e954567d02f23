/* xport_tcp: the plain TCP transport, the bottom of every stack. A thin
 * vtable over one non-blocking stream socket (TCP, or an AF_UNIX stream
 * socket in tests). It exposes splice_fd, so the relay may move its bytes
 * with splice(2) without going through read/write at all, and it holds
 * nothing above the kernel, so a short read means the socket was empty. */
#include "xport/xport.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/err.h"
#include "base/log.h"
#include "base/loop.h"
#include "base/sock.h"

struct xport_tcp {
	struct xport base;   /* first: a struct xport * is a struct xport_tcp * */
	unsigned want;       /* LOOP_READ or LOOP_WRITE: what the last -EAGAIN needed */
};

static struct xport_tcp *to_tcp(struct xport *x)
{
	return (struct xport_tcp *)x;
}

/* After a failed socket call (not EINTR: the caller retries that):
 * -EAGAIN with what to wait for recorded, or -errno. */
static ssize_t tcp_failed(struct xport *x, unsigned want)
{
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		to_tcp(x)->want = want;
		return -EAGAIN;
	}
	return -errno;
}

static ssize_t tcp_read(struct xport *x, void *buf, size_t len)
{
	for (;;) {
		ssize_t n = recv(x->fd, buf, len, 0);
		if (n >= 0)
			return n;
		if (errno != EINTR)
			return tcp_failed(x, LOOP_READ);
	}
}

static ssize_t tcp_write(struct xport *x, const void *buf, size_t len)
{
	for (;;) {
		/* MSG_NOSIGNAL: a peer that went away gives -EPIPE, not SIGPIPE */
		ssize_t n = send(x->fd, buf, len, MSG_NOSIGNAL);
		if (n > 0)
			return n;
		if (n == 0) /* only for len == 0; callers never do that */
			return len ? -EIO : 0;
		if (errno != EINTR)
			return tcp_failed(x, LOOP_WRITE);
	}
}

static ssize_t tcp_writev(struct xport *x, const struct iovec *iov, int iovcnt)
{
	struct msghdr mh = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt };
	for (;;) {
		ssize_t n = sendmsg(x->fd, &mh, MSG_NOSIGNAL);
		if (n >= 0)
			return n;
		if (errno != EINTR)
			return tcp_failed(x, LOOP_WRITE);
	}
}

static int tcp_shutdown_wr(struct xport *x)
{
	if (shutdown(x->fd, SHUT_WR) != 0)
		return -errno;
	return 0;
}

static unsigned tcp_want(struct xport *x)
{
	return to_tcp(x)->want;
}

static size_t tcp_pending(struct xport *x)
{
	/* the kernel holds every byte; nothing is buffered here */
	return 0;
}

static void tcp_close(struct xport *x)
{
	if (x->fd >= 0)
		close(x->fd);
	free(x);
}

static const struct xport_ops tcp_ops = {
	.name = "tcp",
	.handshake = NULL, /* nothing to do: xport_handshake() returns 0 */
	.read = tcp_read,
	.write = tcp_write,
	.writev = tcp_writev,
	.shutdown_wr = tcp_shutdown_wr,
	.want = tcp_want,
	.pending = tcp_pending,
	.close = tcp_close,
};

struct xport *xport_tcp_new(int fd)
{
	struct xport_tcp *t = malloc(sizeof(*t));
	if (!t) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	t->base.ops = &tcp_ops;
	t->base.lower = NULL;
	t->base.fd = fd;
	t->base.splice_fd = fd;
	t->base.flags = XPORT_F_SHORT_IO_EXACT;
	t->want = LOOP_READ;
	return &t->base;
}

void xport_tcp_apply_opts(int fd, const struct tcp_opts *o)
{
	/* protocol.md#p-transport-common: keepalive is always on; TCP_KEEPCNT is left alone; a
	 * failure is only logged, as rathole does */
	int r = sock_set_keepalive(fd, o->keepalive_secs, o->keepalive_interval);
	if (r < 0)
		log_debug("tcp: cannot set keepalive (idle %us, interval %us) on fd %d: %s",
			  o->keepalive_secs, o->keepalive_interval, fd, mr_strerror(r));
	r = sock_set_nodelay(fd, o->nodelay);
	if (r < 0)
		log_debug("tcp: cannot set TCP_NODELAY=%d on fd %d: %s", o->nodelay, fd, mr_strerror(r));
}

int xport_set_nodelay(struct xport *x, int on)
{
	return sock_set_nodelay(xport_bottom(x)->fd, on);
}
