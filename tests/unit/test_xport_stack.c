/* xport/stack: the one builder of transport stacks. A tunnel socket gets
 * [*.transport.tcp]'s options and the role's TCP_USER_TIMEOUT (so a path
 * that went dark drops it), a local stream gets none; a type this build
 * lacks is refused. Real TCP connections on 127.0.0.1. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/err.h"
#include "xport/stack.h"

/* A connected TCP socket on 127.0.0.1 (the other end in *peer). */
static int tcp_conn(int *peer)
{
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&a, &len), 0);
	int c = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
	*peer = accept(l, NULL, NULL);
	assert_true(*peer >= 0);
	close(l);
	return c;
}

static int opt(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);
	assert_int_equal(getsockopt(fd, level, name, &v, &len), 0);
	return v;
}

static struct conf_transport tcp_transport(void)
{
	struct conf_transport t;
	memset(&t, 0, sizeof(t));
	t.type = CONF_XPORT_TCP;
	t.tcp.nodelay = true;
	t.tcp.keepalive_secs = 20;
	t.tcp.keepalive_interval = 8;
	return t;
}

static void test_tunnel_sockets(void **state)
{
	struct conf_transport t = tcp_transport();
	struct xport_stack st;
	assert_int_equal(xport_stack_init(&st, &t, false, "127.0.0.1:1", 7000), 0);
	int peer, fd = tcp_conn(&peer);
	struct xport *x = xport_stack_outbound(&st, fd, -1);
	assert_non_null(x);
	assert_int_equal(opt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT), 7000);
	assert_int_equal(opt(fd, SOL_SOCKET, SO_KEEPALIVE), 1);
	assert_int_equal(opt(fd, IPPROTO_TCP, TCP_KEEPIDLE), 20);
	assert_int_equal(opt(fd, IPPROTO_TCP, TCP_KEEPINTVL), 8);
	assert_int_equal(opt(fd, IPPROTO_TCP, TCP_NODELAY), 1);
	assert_true(x->splice_fd == fd && xport_short_read_empty(x));
	xport_close(x);
	close(peer);

	/* nodelay overridden for one connection (a service's own) */
	fd = tcp_conn(&peer);
	x = xport_stack_outbound(&st, fd, 0);
	assert_int_equal(opt(fd, IPPROTO_TCP, TCP_NODELAY), 0);
	xport_close(x);
	close(peer);

	/* inbound: the same options */
	fd = tcp_conn(&peer);
	x = xport_stack_inbound(&st, fd);
	assert_non_null(x);
	assert_int_equal(opt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT), 7000);
	assert_int_equal(opt(fd, SOL_SOCKET, SO_KEEPALIVE), 1);
	xport_close(x);
	close(peer);
}

static void test_plain_stream_untouched(void **state)
{
	int peer, fd = tcp_conn(&peer);
	struct xport *x = xport_stack_plain(fd);
	assert_non_null(x);
	assert_int_equal(opt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT), 0);
	assert_int_equal(opt(fd, SOL_SOCKET, SO_KEEPALIVE), 0);
	xport_close(x);
	close(peer);
}

static void test_unknown_type(void **state)
{
	struct conf_transport t = tcp_transport();
	t.type = (enum conf_xport_type)99;
	struct xport_stack st;
	assert_int_equal(xport_stack_init(&st, &t, true, NULL, 0), MR_EUNSUPPORTED);
	int peer, fd = tcp_conn(&peer);
	assert_null(xport_stack_outbound(&st, fd, -1));   /* fd closed */
	char b;
	assert_int_equal(read(peer, &b, 1), 0);            /* EOF: it was closed */
	close(peer);
	xport_stack_fini(&st);
}

static void test_websocket_stack(void **state)
{
	struct conf_transport t = tcp_transport();
	t.type = CONF_XPORT_WEBSOCKET;
	t.websocket.present = true;
	struct xport_stack st;
	assert_int_equal(xport_stack_init(&st, &t, false, "Example.COM:2333", 0), 0);
	assert_string_equal(st.ws_host, "example.com:2333");
	assert_string_equal(xport_stack_dial_addr(&st, "Example.COM:2333"), "Example.COM:2333");
	int peer, fd = tcp_conn(&peer);
	struct xport *x = xport_stack_outbound(&st, fd, -1);
	assert_non_null(x);
	assert_string_equal(x->ops->name, "websocket");
	xport_close(x);
	close(peer);
	xport_stack_fini(&st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tunnel_sockets),
		cmocka_unit_test(test_plain_stream_untouched),
		cmocka_unit_test(test_unknown_type),
		cmocka_unit_test(test_websocket_stack),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
