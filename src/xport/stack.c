/* stack: see stack.h. */
#include "xport/stack.h"

#include <unistd.h>

#include "base/err.h"
#include "base/sock.h"

int xport_stack_init(struct xport_stack *st, const struct conf_transport *t, unsigned user_timeout_ms)
{
	st->type = t->type;
	st->user_timeout_ms = user_timeout_ms;
	st->tcp.nodelay = t->tcp.nodelay;
	st->tcp.keepalive_secs = (unsigned)t->tcp.keepalive_secs;
	st->tcp.keepalive_interval = (unsigned)t->tcp.keepalive_interval;
	return t->type == CONF_XPORT_TCP ? 0 : MR_EUNSUPPORTED;
}

/* The bottom of every tunnel stack: tcp with [*.transport.tcp]'s options. */
static struct xport *tunnel_bottom(const struct xport_stack *st, int fd)
{
	xport_tcp_apply_opts(fd, &st->tcp);
	if (st->user_timeout_ms)
		sock_set_user_timeout(fd, st->user_timeout_ms);
	return xport_tcp_new(fd);
}

struct xport *xport_stack_outbound(const struct xport_stack *st, int fd, int nodelay)
{
	if (st->type != CONF_XPORT_TCP) {
		close(fd);
		return NULL;
	}
	struct xport *x = tunnel_bottom(st, fd);
	if (x && nodelay >= 0)   /* after the transport's own TCP_NODELAY */
		sock_set_nodelay(fd, nodelay);
	return x;
}

struct xport *xport_stack_inbound(const struct xport_stack *st, int fd)
{
	if (st->type != CONF_XPORT_TCP) {
		close(fd);
		return NULL;
	}
	return tunnel_bottom(st, fd);
}

struct xport *xport_stack_plain(int fd)
{
	return xport_tcp_new(fd);
}
