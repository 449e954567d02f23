/* Unit tests for conf_diff: hot reload (protocol.md#p-reload-diff): what changed between
 * two validated configs (nothing, a general key, or services), and which
 * services are deleted and added. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/conf.h"
#include "codec/conf_diff.h"

#include "conf_testutil.h"

/* ---------------------------------------------------------------------- */
/* hot reload diff (protocol.md#p-reload-diff) */

static enum conf_change diff_of(const char *a, const char *b, struct conf_diff *d, struct conf **ca,
				struct conf **cb)
{
	*ca = must_load(a);
	*cb = must_load(b);
	assert_int_equal(conf_diff(*ca, *cb, d), 0);
	return d->change;
}

static void expect_change(const char *a, const char *b, enum conf_change want)
{
	struct conf *ca, *cb;
	struct conf_diff d;
	assert_int_equal(diff_of(a, b, &d, &ca, &cb), want);
	conf_diff_free(&d);
	conf_free(ca);
	conf_free(cb);
}

/* top: more keys of the section; b: the keys of service b */
#define SRV_WITH(top, b) SERVER_MIN "default_token = \"t\"\n" top \
	"[server.services.a]\nbind_addr = \"0.0.0.0:1\"\n" \
	"[server.services.b]\n" b
#define CLI_WITH(top, b) CLIENT_MIN "default_token = \"t\"\n" top \
	"[client.services.a]\nlocal_addr = \"127.0.0.1:1\"\n" \
	"[client.services.b]\n" b
#define SRV_B "bind_addr = \"0.0.0.0:2\"\n"
#define CLI_B "local_addr = \"127.0.0.1:2\"\n"
#define SRV_BASE SRV_WITH("", SRV_B)
#define CLI_BASE CLI_WITH("", CLI_B)

static void test_diff_same(void **state)
{
	(void)state;
	expect_change(SRV_BASE, SRV_BASE, CONF_SAME);
	expect_change(CLI_BASE, CLI_BASE, CONF_SAME);
	expect_change(SRV_BASE CLI_BASE, SRV_BASE CLI_BASE, CONF_SAME);
	/* order, comments and explicit defaults do not matter */
	expect_change(SRV_BASE,
		      "# reordered\n" SERVER_MIN "default_token = \"t\"\nheartbeat_interval = 30\n"
		      "[server.services.b]\nbind_addr = \"0.0.0.0:2\"\ntype = \"tcp\"\n"
		      "[server.services.a]\nbind_addr = \"0.0.0.0:1\"\ntoken = \"t\"\n"
		      "[server.transport]\ntype = \"tcp\"\n[server.transport.tcp]\nnodelay = true\n",
		      CONF_SAME);
	/* a service's retry_interval equal to the client's default */
	expect_change(CLI_BASE, CLIENT_MIN "default_token = \"t\"\n"
				"[client.services.a]\nlocal_addr = \"127.0.0.1:1\"\nretry_interval = 1\n"
				"[client.services.b]\nlocal_addr = \"127.0.0.1:2\"\n",
		      CONF_SAME);
	/* the same conf against itself */
	struct conf *c = must_load(SRV_BASE CLI_BASE);
	struct conf_diff d;
	assert_int_equal(conf_diff(c, c, &d), 0);
	assert_int_equal(d.change, CONF_SAME);
	assert_null(d.server_added);
	assert_int_equal(d.n_server_added + d.n_server_deleted + d.n_client_added + d.n_client_deleted, 0);
	conf_diff_free(&d);
	conf_free(c);
	conf_diff_free(NULL);   /* NULL-safe */
}

static void test_diff_general(void **state)
{
	(void)state;
	/* sections added or removed */
	expect_change(SRV_BASE, SRV_BASE CLI_BASE, CONF_GENERAL);
	expect_change(SRV_BASE CLI_BASE, CLI_BASE, CONF_GENERAL);
	/* every non-service key of [server] */
	expect_change(SRV_BASE, SRV_WITH("heartbeat_interval = 31\n", SRV_B), CONF_GENERAL);
	expect_change(SRV_BASE, "[server]\nbind_addr = \"0.0.0.0:2334\"\n" "default_token = \"t\"\n"
				"[server.services.a]\nbind_addr = \"0.0.0.0:1\"\n"
				"[server.services.b]\nbind_addr = \"0.0.0.0:2\"\n",
		      CONF_GENERAL);
	/* default_token: general even though it feeds the services */
	expect_change(SRV_BASE, SERVER_MIN "default_token = \"u\"\n"
				"[server.services.a]\nbind_addr = \"0.0.0.0:1\"\n"
				"[server.services.b]\nbind_addr = \"0.0.0.0:2\"\n",
		      CONF_GENERAL);
	expect_change(SRV_BASE, SRV_BASE "[server.transport]\ntype = \"tcp\"\n[server.transport.tcp]\n"
					 "keepalive_secs = 21\n",
		      CONF_GENERAL);
	expect_change(SRV_BASE, SRV_BASE "[server.transport]\ntype = \"tcp\"\n", CONF_SAME);
	/* a schema-checked but unused table still counts (rathole compares it) */
	expect_change(SRV_BASE, SRV_BASE "[server.transport]\ntype = \"tcp\"\n"
					 "[server.transport.websocket]\ntls = false\n",
		      CONF_GENERAL);
	/* every non-service key of [client] */
	expect_change(CLI_BASE, CLI_WITH("heartbeat_timeout = 41\n", CLI_B), CONF_GENERAL);
	expect_change(CLI_BASE, CLI_WITH("retry_interval = 2\n", CLI_B), CONF_GENERAL);
	expect_change(CLI_BASE, CLI_BASE "[client.transport]\ntype = \"noise\"\n", CONF_GENERAL);
	expect_change(CLI_BASE "[client.transport]\ntype = \"tcp\"\n[client.transport.tcp]\n"
			       "proxy = \"socks5://p:1080\"\n",
		      CLI_BASE "[client.transport]\ntype = \"tcp\"\n[client.transport.tcp]\n"
			       "proxy = \"socks5://p:1081\"\n",
		      CONF_GENERAL);
	/* protocol.md#q16: role-blind; a [server] change in a combined file is general,
	 * even for a client instance, and wins over service changes */
	expect_change(SRV_BASE CLI_BASE, SRV_WITH("heartbeat_interval = 5\n", SRV_B) CLI_BASE
					 "[client.services.c]\nlocal_addr = \"x:3\"\n",
		      CONF_GENERAL);
}

static void test_diff_services(void **state)
{
	(void)state;
	struct conf *o, *n;
	struct conf_diff d;
	/* add c, delete b, change a's token */
	assert_int_equal(diff_of(SRV_BASE,
				 SERVER_MIN "default_token = \"t\"\n"
					    "[server.services.a]\nbind_addr = \"0.0.0.0:1\"\ntoken = \"new\"\n"
					    "[server.services.c]\nbind_addr = \"0.0.0.0:3\"\n",
				 &d, &o, &n),
			 CONF_SERVICES);
	assert_int_equal(d.n_server_deleted, 1);
	assert_string_equal(d.server_deleted[0]->name, "b");
	assert_ptr_equal(d.server_deleted[0], svc(o->server->services, o->server->n_services, "b"));
	assert_int_equal(d.n_server_added, 2);
	assert_string_equal(d.server_added[0]->name, "a");
	assert_string_equal(d.server_added[0]->token, "new");
	assert_ptr_equal(d.server_added[0], svc(n->server->services, n->server->n_services, "a"));
	assert_string_equal(d.server_added[1]->name, "c");
	assert_int_equal(d.n_client_added + d.n_client_deleted, 0);
	conf_diff_free(&d);
	assert_null(d.server_added);
	conf_free(o);
	conf_free(n);

	/* client: every validated field counts */
	static const char *const changes[] = {
		"local_addr = \"127.0.0.1:9\"\n", CLI_B "type = \"udp\"\n", CLI_B "token = \"other\"\n",
		CLI_B "nodelay = true\n", CLI_B "nodelay = false\n", CLI_B "retry_interval = 3\n",
	};
	for (size_t i = 0; i < sizeof(changes) / sizeof(changes[0]); i++) {
		char text[1024];
		snprintf(text, sizeof(text), CLI_WITH("", "%s"), changes[i]);
		assert_int_equal(diff_of(CLI_BASE, text, &d, &o, &n), CONF_SERVICES);
		assert_int_equal(d.n_client_deleted, 0);
		assert_int_equal(d.n_client_added, 1);
		assert_string_equal(d.client_added[0]->name, "b");
		conf_diff_free(&d);
		conf_free(o);
		conf_free(n);
	}
	/* both sections at once */
	assert_int_equal(diff_of(SRV_BASE CLI_BASE,
				 SRV_BASE "[server.services.z]\nbind_addr = \"0.0.0.0:26\"\n"
					  CLI_WITH("", CLI_B "nodelay = true\n"),
				 &d, &o, &n),
			 CONF_SERVICES);
	assert_int_equal(d.n_server_added, 1);
	assert_string_equal(d.server_added[0]->name, "z");
	assert_int_equal(d.n_client_added, 1);
	assert_string_equal(d.client_added[0]->name, "b");
	conf_diff_free(&d);
	conf_free(o);
	conf_free(n);
	/* all services removed */
	assert_int_equal(diff_of(CLI_BASE, CLIENT_MIN "default_token = \"t\"\n[client.services]\n", &d, &o,
				 &n),
			 CONF_SERVICES);
	assert_int_equal(d.n_client_deleted, 2);
	assert_int_equal(d.n_client_added, 0);
	conf_diff_free(&d);
	conf_free(o);
	conf_free(n);
	/* names with NUL are compared with their length */
	assert_int_equal(diff_of(CLIENT_MIN "default_token = \"t\"\n[client.services.\"a\\u0000b\"]\n"
					    "local_addr = \"x:1\"\n",
				 CLIENT_MIN "default_token = \"t\"\n[client.services.\"a\\u0000c\"]\n"
					    "local_addr = \"x:1\"\n",
				 &d, &o, &n),
			 CONF_SERVICES);
	assert_int_equal(d.n_client_deleted, 1);
	assert_int_equal(d.n_client_added, 1);
	assert_memory_equal(d.client_added[0]->name, "a\0c", 3);
	conf_diff_free(&d);
	conf_free(o);
	conf_free(n);
}

/* The one line a reload logs (conf_diff_describe). */
static void expect_line(const char *a, const char *b, enum conf_mode mode, const char *want)
{
	struct conf *o, *n;
	struct conf_diff d;
	diff_of(a, b, &d, &o, &n);
	char line[256];
	conf_diff_describe(&d, o, mode, line, sizeof(line));
	assert_string_equal(line, want);
	conf_diff_free(&d);
	conf_free(o);
	conf_free(n);
}

static void test_describe(void **state)
{
	(void)state;
	expect_line(SRV_BASE, SRV_BASE, CONF_MODE_SERVER, "no change");
	expect_line(SRV_BASE, SRV_WITH("heartbeat_interval = 5\n", SRV_B), CONF_MODE_SERVER,
		    "general change");
	/* b changed, c added, a removed */
	expect_line(SRV_BASE,
		    SERVER_MIN "default_token = \"t\"\n[server.services.b]\nbind_addr = \"0.0.0.0:3\"\n"
		    "[server.services.c]\nbind_addr = \"0.0.0.0:4\"\n",
		    CONF_MODE_SERVER,
		    "services added: \"c\"; services restarted: \"b\"; services removed: \"a\"");
	/* the other section's services: ignored by the instance, said so */
	expect_line(SRV_BASE CLI_BASE, SRV_BASE CLI_WITH("", "local_addr = \"127.0.0.1:9\"\n"),
		    CONF_MODE_SERVER, "[client] services changed, ignored by the server");
	expect_line(SRV_BASE CLI_BASE, SRV_WITH("", "bind_addr = \"0.0.0.0:9\"\n") CLI_BASE,
		    CONF_MODE_CLIENT, "[server] services changed, ignored by the client");
	/* names are quoted, NUL and quotes escaped */
	expect_line(CLI_BASE, CLI_BASE "[client.services.\"x\\\"\\u0000y\"]\nlocal_addr = \"h:1\"\n",
		    CONF_MODE_CLIENT, "services added: \"x\\\"\\u0000y\"");
	/* a line too long for the buffer is cut, NUL-terminated */
	struct conf *o = must_load(SRV_BASE), *n = must_load(SERVER_MIN "default_token = \"t\"\n[server.services]\n");
	struct conf_diff d;
	assert_int_equal(conf_diff(o, n, &d), 0);
	char small[12];
	conf_diff_describe(&d, o, CONF_MODE_SERVER, small, sizeof(small));
	assert_true(strlen(small) < sizeof(small));
	conf_diff_free(&d);
	conf_free(o);
	conf_free(n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_diff_same),
		cmocka_unit_test(test_diff_general),
		cmocka_unit_test(test_diff_services),
		cmocka_unit_test(test_describe),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
