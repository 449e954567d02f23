/* stack: see stack.h. */
#include "xport/stack.h"

#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "base/log.h"
#include "base/sock.h"
#include "codec/ws_frame.h"
#include "xport/xport_noise.h"
#include "xport/xport_proxy.h"
#include "xport/xport_tls.h"
#include "xport/xport_ws.h"

int xport_stack_init(struct xport_stack *st, const struct conf_transport *t, bool server,
		     const char *remote_addr, unsigned user_timeout_ms)
{
	memset(st, 0, sizeof(*st));
	st->type = t->type;
	st->server = server;
	st->user_timeout_ms = user_timeout_ms;
	st->tcp.nodelay = t->tcp.nodelay;
	st->tcp.keepalive_secs = (unsigned)t->tcp.keepalive_secs;
	st->tcp.keepalive_interval = (unsigned)t->tcp.keepalive_interval;
	const char *sec = server ? "server" : "client";
	if (!server && t->tcp.proxy) {
		st->proxy = proxy_conf_new(&t->tcp.proxy_url, remote_addr);
		if (!st->proxy)
			return MR_ECONFIG;
	}
	switch (t->type) {
	case CONF_XPORT_TCP:
		return 0;
	case CONF_XPORT_TLS:
		st->tls = tls_ctx_new(&t->tls, server, remote_addr, sec);
		return st->tls ? 0 : MR_ECONFIG;
	case CONF_XPORT_NOISE:
		st->noise = noise_ident_new(&t->noise, server, sec);
		return st->noise ? 0 : MR_ECONFIG;
	case CONF_XPORT_WEBSOCKET:
		st->ws = true;
		if (!server && ws_host_header(remote_addr, st->ws_host, sizeof(st->ws_host)) < 0) {
			log_error("client.remote_addr = \"%s\" cannot form the websocket URL ws://%s/; "
				  "write host:port", remote_addr, remote_addr);
			return MR_ECONFIG;
		}
		if (t->websocket.tls) {
			st->tls = tls_ctx_new(&t->tls, server, remote_addr, sec);
			return st->tls ? 0 : MR_ECONFIG;
		}
		return 0;
	default:
		log_error("%s.transport.type = \"%s\" is not supported by this build of molerat",
			  sec, conf_xport_type_name(t->type));
		return MR_EUNSUPPORTED;
	}
}

void xport_stack_fini(struct xport_stack *st)
{
	tls_ctx_free(st->tls);
	st->tls = NULL;
	noise_ident_unref(st->noise);
	st->noise = NULL;
	proxy_conf_unref(st->proxy);
	st->proxy = NULL;
}

const char *xport_stack_dial_addr(const struct xport_stack *st, const char *remote_addr)
{
	return st->proxy ? proxy_conf_dial_addr(st->proxy) : remote_addr;
}

int xport_stack_swap(struct xport_stack *st, struct xport_stack *fresh, int r)
{
	if (r < 0) {
		xport_stack_fini(fresh);
		return r;
	}
	xport_stack_fini(st);
	*st = *fresh;
	return 0;
}

/* The bottom of every tunnel stack: tcp with [*.transport.tcp]'s options. */
static struct xport *tunnel_bottom(const struct xport_stack *st, int fd)
{
	xport_tcp_apply_opts(fd, &st->tcp);
	if (st->user_timeout_ms)
		sock_set_user_timeout(fd, st->user_timeout_ms);
	return xport_tcp_new(fd);
}

/* The layers over the bottom: the proxy step, then the transport's own
 * (takes x; NULL when the type has no stack, or on out-of-memory: x is
 * closed then). */
static struct xport *tunnel_top(const struct xport_stack *st, struct xport *x)
{
	if (x && st->proxy)
		x = xport_proxy_new(st->proxy, x);
	if (!x)
		return NULL;
	switch (st->type) {
	case CONF_XPORT_TCP:
		return x;
	case CONF_XPORT_TLS:
		if (st->tls)
			return xport_tls_new(st->tls, x);
		break;
	case CONF_XPORT_NOISE:
		if (st->noise)
			return xport_noise_new(st->noise, x);
		break;
	case CONF_XPORT_WEBSOCKET:
		if (st->tls)
			x = xport_tls_new(st->tls, x);
		return x ? xport_ws_new(st->server, st->ws_host, x) : NULL;
	default:
		break;
	}
	xport_close(x);
	return NULL;
}

struct xport *xport_stack_outbound(const struct xport_stack *st, int fd, int nodelay)
{
	struct xport *x = tunnel_bottom(st, fd);
	if (x && nodelay >= 0)   /* after the transport's own TCP_NODELAY */
		sock_set_nodelay(fd, nodelay);
	return tunnel_top(st, x);
}

struct xport *xport_stack_inbound(const struct xport_stack *st, int fd)
{
	return tunnel_top(st, tunnel_bottom(st, fd));
}

struct xport *xport_stack_plain(int fd)
{
	return xport_tcp_new(fd);
}
