/* Unit tests for conf: the schema of protocol.md#p-config (acceptance and rejection
 * cases of protocol.md#p-config-validation with exact messages), defaults, run mode (protocol.md#p-run-mode), the proxy
 * URL parser (protocol.md#p-proxy), every file under examples/ and
 * tests/data/conf/{valid,invalid}/ loading or not, and the schema against
 * docs/configuration.md. Hot reload diff (protocol.md#p-reload-diff): test_conf_diff.c; the
 * warnings and unsupported settings a role checks: test_conf_check.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "codec/conf.h"
#include "codec/conf_url.h"
#include "codec/keygen.h"

#include "conf_testutil.h"

/* ---------------------------------------------------------------------- */
/* helpers */

static void expect_error(const char *text, const char *msg)
{
	struct conf_error e;
	struct conf *c = load(text, &e);
	if (c) {
		conf_free(c);
		fail_msg("expected a rejection (%s) of:\n%s", msg, text);
	}
	assert_string_equal(e.msg, msg);
}

static void expect_error_sub(const char *text, const char *sub)
{
	struct conf_error e;
	struct conf *c = load(text, &e);
	if (c) {
		conf_free(c);
		fail_msg("expected a rejection (%s) of:\n%s", sub, text);
	}
	if (!strstr(e.msg, sub))
		fail_msg("message \"%s\" lacks \"%s\"", e.msg, sub);
}

/* ---------------------------------------------------------------------- */
/* acceptance (protocol.md#p-config-validation "Accepted") and defaults */

static void test_accept_full_both_sections(void **state)
{
	(void)state;
	char path[512];
	snprintf(path, sizeof(path), "%s/tests/data/conf/valid/full.toml", SOURCE_DIR);
	struct conf_error e;
	struct conf *c = conf_load_file(path, &e);
	if (!c)
		fail_msg("%s", e.msg);
	assert_non_null(c->server);
	assert_non_null(c->client);
	assert_string_equal(c->path, path);

	const struct conf_client *cl = c->client;
	assert_string_equal(cl->remote_addr, "example.com:2333");
	assert_string_equal(cl->default_token, "default_token_if_not_specify");
	assert_int_equal(cl->heartbeat_timeout, 40);
	assert_int_equal(cl->retry_interval, 1);
	assert_int_equal(cl->transport.type, CONF_XPORT_TCP);
	assert_false(cl->transport.tcp.nodelay);
	assert_int_equal(cl->transport.tcp.keepalive_secs, 30);
	assert_int_equal(cl->transport.tcp.keepalive_interval, 5);
	assert_string_equal(cl->transport.tcp.proxy, "socks5://user:passwd@127.0.0.1:1080");
	assert_string_equal(cl->transport.tcp.proxy_url.scheme, "socks5");
	assert_string_equal(cl->transport.tcp.proxy_url.username, "user");
	assert_string_equal(cl->transport.tcp.proxy_url.password, "passwd");
	assert_string_equal(cl->transport.tcp.proxy_url.host, "127.0.0.1");
	assert_true(cl->transport.tcp.proxy_url.has_port);
	assert_int_equal(cl->transport.tcp.proxy_url.port, 1080);
	assert_true(cl->transport.tls.present);
	assert_string_equal(cl->transport.tls.trusted_root, "ca.pem");
	assert_string_equal(cl->transport.tls.hostname, "example.com");
	assert_null(cl->transport.tls.pkcs12);
	assert_true(cl->transport.noise.present);
	assert_string_equal(cl->transport.noise.pattern, "Noise_NK_25519_ChaChaPoly_BLAKE2s");
	assert_string_equal(cl->transport.noise.local_private_key, "key_encoded_in_base64");
	assert_true(cl->transport.websocket.present);
	assert_true(cl->transport.websocket.tls);
	assert_int_equal(cl->n_services, 2);
	const struct conf_service *s1 = svc(cl->services, cl->n_services, "service1");
	assert_int_equal(s1->type, CONF_SVC_TCP);
	assert_string_equal(s1->token, "whatever");
	assert_int_equal(s1->token_len, 8);
	assert_string_equal(s1->local_addr, "127.0.0.1:1081");
	assert_int_equal(s1->nodelay, 0);
	assert_int_equal(s1->retry_interval, 1);
	const struct conf_service *s2 = svc(cl->services, cl->n_services, "service2");
	assert_string_equal(s2->token, "default_token_if_not_specify");
	assert_int_equal(s2->nodelay, -1);

	const struct conf_server *sv = c->server;
	assert_string_equal(sv->bind_addr, "0.0.0.0:2333");
	assert_int_equal(sv->heartbeat_interval, 30);
	assert_true(sv->transport.tls.present);
	assert_string_equal(sv->transport.tls.pkcs12, "identify.pfx");
	assert_string_equal(sv->transport.tls.pkcs12_password, "password");
	assert_int_equal(sv->n_services, 2);
	const struct conf_service *v1 = svc(sv->services, sv->n_services, "service1");
	assert_string_equal(v1->bind_addr, "0.0.0.0:8081");
	assert_int_equal(v1->nodelay, 1);
	assert_null(v1->local_addr);
	conf_free(c);
}

static void test_accept_client_empty_services(void **state)
{
	(void)state;
	struct conf *c = must_load(CLIENT_MIN "[client.services]\n");
	assert_null(c->server);
	assert_non_null(c->client);
	assert_int_equal(c->client->n_services, 0);
	assert_null(c->client->services);
	conf_free(c);
	c = must_load(CLIENT_MIN "services = {}\n");
	assert_int_equal(c->client->n_services, 0);
	conf_free(c);
	c = must_load(SERVER_MIN "services = {}\n");
	assert_non_null(c->server);
	assert_null(c->client);
	conf_free(c);
}

static void test_accept_udp_service(void **state)
{
	(void)state;
	struct conf *c = must_load(CLIENT_MIN "default_token = \"t\"\n[client.services.dns]\ntype = \"udp\"\n"
					      "local_addr = \"127.0.0.1:53\"\n");
	assert_int_equal(c->client->services[0].type, CONF_SVC_UDP);
	assert_string_equal(conf_svc_type_name(c->client->services[0].type), "udp");
	conf_free(c);
	c = must_load(SERVER_MIN "[server.services.dns]\ntype = \"udp\"\nbind_addr = \"0.0.0.0:5353\"\n"
				 "token = \"t\"\n");
	assert_int_equal(c->server->services[0].type, CONF_SVC_UDP);
	conf_free(c);
}

static void test_defaults_server(void **state)
{
	(void)state;
	struct conf *c = must_load(SERVER_MIN "[server.services]\n");
	const struct conf_server *s = c->server;
	assert_null(s->default_token);
	assert_int_equal(s->default_token_len, 0);
	assert_int_equal(s->heartbeat_interval, 30);
	assert_int_equal(s->transport.type, CONF_XPORT_TCP);
	assert_true(s->transport.tcp.nodelay);
	assert_int_equal(s->transport.tcp.keepalive_secs, 20);
	assert_int_equal(s->transport.tcp.keepalive_interval, 8);
	assert_null(s->transport.tcp.proxy);
	assert_null(s->transport.tcp.proxy_url.scheme);
	assert_false(s->transport.tls.present);
	assert_false(s->transport.noise.present);
	assert_false(s->transport.websocket.present);
	assert_false(s->transport.websocket.tls);
	/* the noise pattern has its default even when the table is absent */
	assert_string_equal(s->transport.noise.pattern, "Noise_NK_25519_ChaChaPoly_BLAKE2s");
	assert_null(s->transport.noise.local_private_key);
	conf_free(c);
}

static void test_defaults_client(void **state)
{
	(void)state;
	struct conf *c = must_load(CLIENT_MIN "[client.services]\n[client.transport]\ntype = \"noise\"\n"
					      "[client.transport.noise]\n");
	const struct conf_client *cl = c->client;
	assert_null(cl->default_token);
	assert_int_equal(cl->heartbeat_timeout, 40);
	assert_int_equal(cl->retry_interval, 1);
	assert_int_equal(cl->transport.type, CONF_XPORT_NOISE);
	assert_true(cl->transport.noise.present);
	assert_string_equal(cl->transport.noise.pattern, "Noise_NK_25519_ChaChaPoly_BLAKE2s");
	assert_null(cl->transport.noise.remote_public_key);
	assert_true(cl->transport.tcp.nodelay);
	conf_free(c);
}

static void test_service_defaults(void **state)
{
	(void)state;
	struct conf *c = must_load(CLIENT_MIN
				   "default_token = \"dflt\"\nretry_interval = 5\n"
				   "[client.services.a]\nlocal_addr = \"127.0.0.1:1\"\n"
				   "[client.services.b]\nlocal_addr = \"127.0.0.1:2\"\nretry_interval = 7\n"
				   "nodelay = true\ntoken = \"own\"\n"
				   "[client.services.c]\nlocal_addr = \"127.0.0.1:3\"\nretry_interval = 0\n"
				   "nodelay = false\n");
	const struct conf_client *cl = c->client;
	assert_int_equal(cl->n_services, 3);
	const struct conf_service *a = svc(cl->services, 3, "a"), *b = svc(cl->services, 3, "b"),
				  *cc = svc(cl->services, 3, "c");
	assert_string_equal(a->token, "dflt");
	assert_int_equal(a->token_len, 4);
	assert_int_equal(a->retry_interval, 5);
	assert_int_equal(a->nodelay, -1);
	assert_int_equal(a->type, CONF_SVC_TCP);
	assert_string_equal(b->token, "own");
	assert_int_equal(b->retry_interval, 7);
	assert_int_equal(b->nodelay, 1);
	assert_int_equal(cc->retry_interval, 0);
	assert_int_equal(cc->nodelay, 0);
	/* service positions: where each table is defined */
	assert_int_equal(a->line, 5);
	assert_int_equal(b->line, 7);
	conf_free(c);
}

static void test_u64_bounds(void **state)
{
	(void)state;
	struct conf *c = must_load(SERVER_MIN "heartbeat_interval = 9223372036854775807\n"
					      "[server.services]\n");
	assert_int_equal(c->server->heartbeat_interval, INT64_MAX);
	conf_free(c);
	c = must_load(SERVER_MIN "heartbeat_interval = 0\n[server.services]\n");
	assert_int_equal(c->server->heartbeat_interval, 0);
	conf_free(c);
	/* hex is an integer in TOML */
	c = must_load(CLIENT_MIN "heartbeat_timeout = 0x10\n[client.services]\n");
	assert_int_equal(c->client->heartbeat_timeout, 16);
	conf_free(c);
}

/* ---------------------------------------------------------------------- */
/* rejection (protocol.md#p-config-validation "Rejected") with exact messages */

static void test_reject_client_tls_without_table(void **state)
{
	(void)state;
	expect_error(CLIENT_MIN "[client.services]\n[client.transport]\ntype = \"tls\"\n",
		     "t.toml:5:1: client.transport: type = \"tls\" needs a [client.transport.tls] table; "
		     "add it (it may be empty; trusted_root and hostname are optional)");
	/* an empty table is enough on a client */
	struct conf *c = must_load(CLIENT_MIN "[client.services]\n[client.transport]\ntype = \"tls\"\n"
					      "[client.transport.tls]\n");
	assert_true(c->client->transport.tls.present);
	assert_int_equal(c->client->transport.type, CONF_XPORT_TLS);
	conf_free(c);
}

static void test_reject_server_tls(void **state)
{
	(void)state;
	expect_error(SERVER_MIN "[server.services]\n[server.transport]\ntype = \"tls\"\n"
				"[server.transport.tls]\npkcs12_password = \"pw\"\n",
		     "t.toml:6:1: server.transport.tls: pkcs12 is required for type = \"tls\"; add pkcs12 = "
		     "\"identity.pfx\"");
	expect_error(SERVER_MIN "[server.services]\n[server.transport]\ntype = \"tls\"\n",
		     "t.toml:5:1: server.transport: type = \"tls\" needs a [server.transport.tls] table; add "
		     "it with pkcs12 = \"identity.pfx\" and pkcs12_password = \"...\"");
	expect_error(SERVER_MIN "[server.services]\n[server.transport]\ntype = \"tls\"\n"
				"[server.transport.tls]\npkcs12 = \"x.pfx\"\n",
		     "t.toml:6:1: server.transport.tls: pkcs12_password is required for type = \"tls\"; add "
		     "pkcs12_password = \"...\"");
	struct conf *c = must_load(SERVER_MIN "[server.services]\n[server.transport]\ntype = \"tls\"\n"
					      "[server.transport.tls]\npkcs12 = \"x.pfx\"\n"
					      "pkcs12_password = \"pw\"\n");
	assert_string_equal(c->server->transport.tls.pkcs12, "x.pfx");
	conf_free(c);
}

static void test_reject_service_name_key(void **state)
{
	(void)state;
	expect_error(CLIENT_MIN "[client.services.nas]\nlocal_addr = \"127.0.0.1:5000\"\nname = \"nas\"\n",
		     "t.toml:5:1: client.services.nas.name: name is not allowed in a service (the table key "
		     "is the name); remove it");
	expect_error_sub(SERVER_MIN "[server.services.nas]\nbind_addr = \"0.0.0.0:5000\"\nname = \"nas\"\n",
			 "t.toml:5:1: server.services.nas.name: name is not allowed");
}

static void test_reject_enum_case(void **state)
{
	(void)state;
	expect_error(SERVER_MIN "[server.services.web]\nbind_addr = \"0.0.0.0:80\"\ntype = \"TCP\"\n",
		     "t.toml:5:1: server.services.web.type: unknown value \"TCP\"; values are "
		     "case-sensitive, use \"tcp\"");
	expect_error(SERVER_MIN "[server.services.web]\nbind_addr = \"0.0.0.0:80\"\ntype = 1\n",
		     "t.toml:5:1: server.services.web.type: expected a string, found integer 1; use one of "
		     "\"tcp\" or \"udp\"");
}

static void test_reject_negative_and_float(void **state)
{
	(void)state;
	expect_error(CLIENT_MIN "heartbeat_timeout = -1\n[client.services]\n",
		     "t.toml:3:1: client.heartbeat_timeout: expected a non-negative integer, found integer "
		     "-1; e.g. heartbeat_timeout = 40");
	expect_error(CLIENT_MIN "heartbeat_timeout = 40.0\n[client.services]\n",
		     "t.toml:3:1: client.heartbeat_timeout: expected a non-negative integer, found float 40; "
		     "e.g. heartbeat_timeout = 40");
	expect_error_sub(CLIENT_MIN "[client.services]\n[client.transport]\ntype = \"tcp\"\n"
				    "[client.transport.tcp]\nkeepalive_secs = -5\n",
			 "t.toml:7:1: client.transport.tcp.keepalive_secs: expected a non-negative integer");
	expect_error_sub(CLIENT_MIN "[client.services.a]\nlocal_addr = \"x:1\"\ntoken = \"t\"\n"
				    "retry_interval = -1\n",
			 "t.toml:6:1: client.services.a.retry_interval: expected a non-negative integer, "
			 "found integer -1");
}

static void test_reject_proxy_not_url(void **state)
{
	(void)state;
	expect_error(CLIENT_MIN "[client.services]\n[client.transport]\ntype = \"tcp\"\n"
				"[client.transport.tcp]\nproxy = \"not a url\"\n",
		     "t.toml:7:1: client.transport.tcp.proxy: \"not a url\" is not a valid URL (relative URL "
		     "without a base); expected \"socks5://host:port\" or \"http://host:port\"");
	/* credentials are not shown */
	expect_error(CLIENT_MIN "[client.services]\n[client.transport]\ntype = \"tcp\"\n"
				"[client.transport.tcp]\nproxy = \"socks5://me:s3cret@proxy:99999\"\n",
		     "t.toml:7:1: client.transport.tcp.proxy: \"socks5://***@proxy:99999\" is not a valid "
		     "URL (invalid port number); expected \"socks5://host:port\" or \"http://host:port\"");
	/* the scheme is checked after the parse, in step 2/3 */
	expect_error(CLIENT_MIN "[client.services]\n[client.transport]\ntype = \"tcp\"\n"
				"[client.transport.tcp]\nproxy = \"https://proxy:3128\"\n",
		     "t.toml:7:1: client.transport.tcp.proxy: unknown proxy scheme \"https\"; use "
		     "socks5://host:port or http://host:port");
	/* the scheme is case-insensitive (the url crate lower-cases it) */
	struct conf *c = must_load(CLIENT_MIN "[client.services]\n[client.transport]\ntype = \"tcp\"\n"
					      "[client.transport.tcp]\nproxy = \"SOCKS5://proxy:1080\"\n");
	assert_string_equal(c->client->transport.tcp.proxy_url.scheme, "socks5");
	conf_free(c);
	/* accepted but ignored in a server config; scheme still checked */
	c = must_load(SERVER_MIN "[server.services]\n[server.transport]\ntype = \"tcp\"\n"
				 "[server.transport.tcp]\nproxy = \"http://proxy:3128\"\n");
	assert_string_equal(c->server->transport.tcp.proxy, "http://proxy:3128");
	conf_free(c);
}

static void test_reject_empty_file(void **state)
{
	(void)state;
	expect_error("", "t.toml: neither [server] nor [client] is defined; add one");
	expect_error("# only a comment\n\n", "t.toml: neither [server] nor [client] is defined; add one");
}

static void test_reject_top_level_key(void **state)
{
	(void)state;
	expect_error("foo = 1\n" CLIENT_MIN "[client.services]\n",
		     "t.toml:1:1: foo: unknown key; only [server] and [client] are allowed at the top "
		     "level; remove it");
	expect_error_sub("[Server]\nbind_addr = \"0.0.0.0:1\"\n", "t.toml:1:2: Server: unknown key");
}

static void test_reject_transport_tcp_alone(void **state)
{
	(void)state;
	/* protocol.md#q13: [client.transport.tcp] alone creates [client.transport] */
	expect_error(CLIENT_MIN "[client.services]\n[client.transport.tcp]\nnodelay = true\n",
		     "t.toml:4:9: client.transport: type is required; add type = \"tcp\" (a "
		     "[client.transport.tcp] header alone also creates [client.transport], which then "
		     "needs type)");
	expect_error_sub(SERVER_MIN "[server.services]\n[server.transport]\n",
			 "t.toml:4:1: server.transport: type is required");
}

static void test_reject_services_missing(void **state)
{
	(void)state;
	expect_error(CLIENT_MIN, "t.toml:1:1: client: services is required; add a [client.services] "
				 "section (it may be empty)");
	expect_error(SERVER_MIN "default_token = \"x\"\n",
		     "t.toml:1:1: server: services is required; add a [server.services] section (it may be "
		     "empty)");
}

static void test_reject_required_keys(void **state)
{
	(void)state;
	expect_error("[client]\n\n[client.services.nas]\nlocal_addr = \"127.0.0.1:1\"\n",
		     "t.toml:1:1: client: remote_addr is required; add remote_addr = \"example.com:2333\"");
	/* the example message of conf.h */
	expect_error("[client]\nremote_addr = \"a:1\"\ndefault_token = \"t\"\n\n\n\n\n\n\n\n\n"
		     "    [client.services.nas]\n    token = \"x\"\n",
		     "t.toml:12:5: client.services.nas: local_addr is required; add local_addr = "
		     "\"127.0.0.1:22\"");
	expect_error(SERVER_MIN "[server.services.web]\ntoken = \"x\"\n",
		     "t.toml:3:1: server.services.web: bind_addr is required; add bind_addr = "
		     "\"0.0.0.0:8080\"");
	/* unknown keys come before missing ones within a table, as in serde */
	expect_error_sub("[client]\nfoo = 1\n", "t.toml:2:1: client.foo: unknown key");
}

static void test_reject_websocket_without_tls(void **state)
{
	(void)state;
	expect_error(CLIENT_MIN "[client.services]\n[client.transport]\ntype = \"websocket\"\n"
				"[client.transport.websocket]\n",
		     "t.toml:6:1: client.transport.websocket: tls is required; add tls = false, or tls = "
		     "true for WebSocket over TLS");
	/* schema-checked even when the transport is another one */
	expect_error_sub(SERVER_MIN "[server.services]\n[server.transport]\ntype = \"tcp\"\n"
				    "[server.transport.websocket]\n",
			 "t.toml:6:1: server.transport.websocket: tls is required");
}

static void test_reject_wrong_types(void **state)
{
	(void)state;
	expect_error("[server]\nbind_addr = 2333\n[server.services]\n",
		     "t.toml:2:1: server.bind_addr: expected a string, found integer 2333; write it in "
		     "quotes, e.g. bind_addr = \"0.0.0.0:2333\"");
	expect_error(SERVER_MIN "[server.services.web]\nbind_addr = \"0.0.0.0:80\"\nnodelay = 1\n",
		     "t.toml:5:1: server.services.web.nodelay: expected a boolean, found integer 1; use "
		     "nodelay = true or nodelay = false");
	/* a secret of the wrong type is not echoed */
	expect_error(SERVER_MIN "[server.services]\n[server.transport]\ntype = \"tls\"\n"
				"[server.transport.tls]\npkcs12 = \"x\"\npkcs12_password = 123456\n",
		     "t.toml:8:1: server.transport.tls.pkcs12_password: expected a string, found a value of "
		     "type integer (not shown: it is a secret); write it in quotes, e.g. pkcs12_password = "
		     "\"...\"");
	expect_error("server = 1\n", "t.toml:1:1: server: expected a table, found integer 1; write it as "
				     "a [server] section");
	expect_error_sub(CLIENT_MIN "[client.services]\n[client.transport]\ntype = \"tcp\"\ntcp = 1\n",
			 "t.toml:6:1: client.transport.tcp: expected a table, found integer 1");
	expect_error_sub(CLIENT_MIN "services = [\"a\"]\n",
			 "t.toml:3:1: client.services: expected a table, found an array");
	expect_error_sub(CLIENT_MIN "remote_addr2 = [1]\n[client.services]\n",
			 "client.remote_addr2: unknown key; did you mean remote_addr?");
	expect_error_sub(CLIENT_MIN "[client.services]\nnas = 1\n",
			 "t.toml:4:1: client.services.nas: a service must be a table, found integer 1");
	expect_error_sub(CLIENT_MIN "[client.services]\n[client.transport]\ntype = \"tcp\"\n"
				    "[client.transport.tcp]\nproxy = 1080\n",
			 "t.toml:7:1: client.transport.tcp.proxy: expected a string, found integer 1080");
}

static void test_reject_token_missing(void **state)
{
	(void)state;
	expect_error(SERVER_MIN "[server.services.web]\nbind_addr = \"0.0.0.0:80\"\n",
		     "t.toml:3:1: server.services.web: token is not set and there is no default_token; add "
		     "token = \"...\" here, or default_token = \"...\" to [server]");
	expect_error_sub(CLIENT_MIN "[client.services.web]\nlocal_addr = \"127.0.0.1:80\"\n",
			 "t.toml:3:1: client.services.web: token is not set");
}

static void test_validation_order(void **state)
{
	(void)state;
	/* 1 before 2: a type error in [client] beats a missing token in [server] */
	expect_error_sub(SERVER_MIN "[server.services.web]\nbind_addr = \"0.0.0.0:80\"\n" CLIENT_MIN
				    "retry_interval = \"1\"\n[client.services]\n",
			 "t.toml:7:1: client.retry_interval: expected a non-negative integer");
	/* 2 before 3: [server] checks run before [client] checks, whatever
	 * the order in the file */
	expect_error_sub(CLIENT_MIN "[client.services.nas]\nlocal_addr = \"x:1\"\n" SERVER_MIN
				    "[server.services]\n[server.transport]\ntype = \"tls\"\n",
			 "t.toml:9:1: server.transport: type = \"tls\" needs");
	/* within [server]: service tokens before the transport */
	expect_error_sub(SERVER_MIN "[server.services.web]\nbind_addr = \"0.0.0.0:80\"\n"
				    "[server.transport]\ntype = \"tls\"\n",
			 "t.toml:3:1: server.services.web: token is not set");
	/* within the transport: the proxy scheme before tls */
	expect_error_sub(CLIENT_MIN "[client.services]\n[client.transport]\ntype = \"tls\"\n"
				    "[client.transport.tcp]\nproxy = \"ftp://x:1\"\n",
			 "t.toml:7:1: client.transport.tcp.proxy: unknown proxy scheme \"ftp\"");
	/* step 1 in document order: the first wrong key wins */
	expect_error_sub(CLIENT_MIN "heartbeat_timeout = -1\nretry_interval = -1\n[client.services]\n",
			 "client.heartbeat_timeout");
}

static void test_syntax_error(void **state)
{
	(void)state;
	struct conf_error e;
	assert_null(load("[client]\nremote_addr = \"a:1\n", &e));
	assert_true(strncmp(e.msg, "t.toml:2:", 9) == 0);
	assert_non_null(strstr(e.msg, ": TOML syntax error: "));
	assert_null(load("[client]\n[client]\n", &e));
	assert_non_null(strstr(e.msg, "t.toml:2:"));
	assert_non_null(strstr(e.msg, ": TOML syntax error: "));
	/* invalid UTF-8 */
	assert_null(load("[client]\nremote_addr = \"\xff\"\n", &e));
	assert_non_null(strstr(e.msg, "TOML syntax error"));
}

/* ---------------------------------------------------------------------- */
/* service names and strings */

static void test_service_names(void **state)
{
	(void)state;
	struct conf *c = must_load(CLIENT_MIN "default_token = \"t\"\n"
					      "[client.services.\"my nas\"]\nlocal_addr = \"x:1\"\n"
					      "[client.services.\"a\\u0000b\"]\nlocal_addr = \"x:2\"\n"
					      "[client.services.\"\"]\nlocal_addr = \"x:3\"\n"
					      "[client.services.\"é.x\"]\nlocal_addr = \"x:4\"\n");
	const struct conf_client *cl = c->client;
	assert_int_equal(cl->n_services, 4);
	assert_int_equal(cl->services[0].name_len, 6);
	assert_string_equal(cl->services[0].name, "my nas");
	assert_int_equal(cl->services[1].name_len, 3);
	assert_memory_equal(cl->services[1].name, "a\0b", 3);
	assert_int_equal(cl->services[2].name_len, 0);
	assert_string_equal(cl->services[2].name, "");
	assert_string_equal(cl->services[3].name, "é.x");
	assert_string_equal(cl->services[3].local_addr, "x:4");
	conf_free(c);
	/* names are quoted in messages */
	expect_error(CLIENT_MIN "[client.services.\"a\\u0000b\"]\ntoken = \"t\"\n",
		     "t.toml:3:1: client.services.\"a\\u0000b\": local_addr is required; add local_addr = "
		     "\"127.0.0.1:22\"");
	expect_error_sub(CLIENT_MIN "[client.services.\"\"]\ntoken = \"t\"\n", "client.services.\"\": ");
	expect_error_sub(CLIENT_MIN "[client.services.'a\"b']\ntoken = \"t\"\n",
			 "client.services.\"a\\\"b\": local_addr is required");
	/* a very long name is cut */
	char text[4096];
	char name[1001];
	memset(name, 'n', 1000);
	name[1000] = '\0';
	snprintf(text, sizeof(text), CLIENT_MIN "[client.services.%s]\ntoken = 1\n", name);
	struct conf_error e;
	assert_null(load(text, &e));
	assert_non_null(strstr(e.msg, "...\""));
	assert_true(strlen(e.msg) < sizeof(e.msg));
}

static void test_token_with_nul(void **state)
{
	(void)state;
	struct conf *c = must_load(SERVER_MIN "default_token = \"a\\u0000b\"\n"
					      "[server.services.x]\nbind_addr = \"0.0.0.0:1\"\n");
	assert_int_equal(c->server->default_token_len, 3);
	assert_int_equal(c->server->services[0].token_len, 3);
	assert_memory_equal(c->server->services[0].token, "a\0b", 4);
	conf_free(c);
	/* escapes and literal strings */
	c = must_load(SERVER_MIN "[server.services.x]\nbind_addr = '0.0.0.0:1'\ntoken = \"\\\"q\\\"\"\n");
	assert_string_equal(c->server->services[0].bind_addr, "0.0.0.0:1");
	assert_string_equal(c->server->services[0].token, "\"q\"");
	conf_free(c);
}

/* ---------------------------------------------------------------------- */
/* run mode (protocol.md#p-run-mode) */

static void test_pick_mode(void **state)
{
	(void)state;
	struct conf_error e;
	struct conf *s = must_load(SERVER_MIN "[server.services]\n");
	struct conf *c = must_load(CLIENT_MIN "[client.services]\n");
	struct conf *b = must_load(SERVER_MIN "[server.services]\n" CLIENT_MIN "[client.services]\n");

	assert_int_equal(conf_pick_mode(s, CONF_MODE_AUTO, &e), CONF_MODE_SERVER);
	assert_int_equal(conf_pick_mode(c, CONF_MODE_AUTO, &e), CONF_MODE_CLIENT);
	assert_int_equal(conf_pick_mode(s, CONF_MODE_SERVER, &e), CONF_MODE_SERVER);
	assert_int_equal(conf_pick_mode(c, CONF_MODE_CLIENT, &e), CONF_MODE_CLIENT);
	assert_int_equal(conf_pick_mode(b, CONF_MODE_SERVER, &e), CONF_MODE_SERVER);
	assert_int_equal(conf_pick_mode(b, CONF_MODE_CLIENT, &e), CONF_MODE_CLIENT);

	assert_int_equal(conf_pick_mode(b, CONF_MODE_AUTO, &e), CONF_MODE_AUTO);
	assert_string_equal(e.msg, "t.toml: both [server] and [client] are defined; pass --server or "
				   "--client to choose");
	assert_int_equal(conf_pick_mode(s, CONF_MODE_CLIENT, &e), CONF_MODE_AUTO);
	assert_string_equal(e.msg, "t.toml: --client was given but there is no [client] section; add "
				   "one or use --server");
	assert_int_equal(conf_pick_mode(c, CONF_MODE_SERVER, &e), CONF_MODE_AUTO);
	assert_string_equal(e.msg, "t.toml: --server was given but there is no [server] section; add "
				   "one or use --client");
	conf_free(s);
	conf_free(c);
	conf_free(b);
}

/* ---------------------------------------------------------------------- */
/* the proxy URL parser (protocol.md#p-proxy) */

struct url_case {
	const char *in;
	int ok;              /* 1: parses */
	const char *scheme, *user, *pass, *host;
	int port;            /* -1: none */
	const char *why;     /* when !ok */
};

static void test_url_parse(void **state)
{
	(void)state;
	static const struct url_case cases[] = {
		{ "socks5://127.0.0.1:1080", 1, "socks5", "", NULL, "127.0.0.1", 1080, NULL },
		{ "socks5://user:pass@proxy.lan:1080", 1, "socks5", "user", "pass", "proxy.lan", 1080, NULL },
		{ "SOCKS5://Proxy.LAN:1080", 1, "socks5", "", NULL, "Proxy.LAN", 1080, NULL },
		{ "http://Proxy.LAN:3128/", 1, "http", "", NULL, "proxy.lan", 3128, NULL },
		{ "http://proxy:80", 1, "http", "", NULL, "proxy", -1, NULL },
		{ "http://proxy:080", 1, "http", "", NULL, "proxy", -1, NULL },
		{ "http://proxy", 1, "http", "", NULL, "proxy", -1, NULL },
		{ "http://proxy:", 1, "http", "", NULL, "proxy", -1, NULL },
		{ "socks5://proxy:80", 1, "socks5", "", NULL, "proxy", 80, NULL },
		{ "socks5://proxy:0", 1, "socks5", "", NULL, "proxy", 0, NULL },
		{ "http://user@proxy:8080", 1, "http", "user", NULL, "proxy", 8080, NULL },
		{ "http://user:@proxy:8080", 1, "http", "user", "", "proxy", 8080, NULL },
		{ "http://:pw@proxy:8080", 1, "http", "", "pw", "proxy", 8080, NULL },
		{ "http://us er:p@ss@proxy:8080", 1, "http", "us%20er", "p%40ss", "proxy", 8080, NULL },
		{ "socks5://a:b:c@proxy:1", 1, "socks5", "a", "b%3Ac", "proxy", 1, NULL },
		{ "socks5://us%40er@proxy:1", 1, "socks5", "us%40er", NULL, "proxy", 1, NULL },
		{ "  socks5://proxy:1080 \n", 1, "socks5", "", NULL, "proxy", 1080, NULL },
		{ "sock\ts5://pro\nxy:10\r80", 1, "socks5", "", NULL, "proxy", 1080, NULL },
		{ "http://[::1]:8080", 1, "http", "", NULL, "[::1]", 8080, NULL },
		{ "socks5://[0:0:0:0:0:0:0:1]:1", 1, "socks5", "", NULL, "[::1]", 1, NULL },
		{ "http://[2001:db8:0:0:1:0:0:1]:1", 1, "http", "", NULL, "[2001:db8::1:0:0:1]", 1, NULL },
		{ "http://[::ffff:1.2.3.4]:1", 1, "http", "", NULL, "[::ffff:102:304]", 1, NULL },
		{ "http://0x7f.1:8080", 1, "http", "", NULL, "127.0.0.1", 8080, NULL },
		{ "http://2130706433:8080", 1, "http", "", NULL, "127.0.0.1", 8080, NULL },
		{ "http://010.0.0.1:8080", 1, "http", "", NULL, "8.0.0.1", 8080, NULL },
		{ "http://1.2.3.4.:8080", 1, "http", "", NULL, "1.2.3.4", 8080, NULL },
		{ "socks5://1.2.3.256:1", 1, "socks5", "", NULL, "1.2.3.256", 1, NULL },
		{ "http://%41bc:1", 1, "http", "", NULL, "abc", 1, NULL },
		{ "http:proxy:8080", 1, "http", "", NULL, "proxy", 8080, NULL },
		{ "http:\\\\proxy:8080\\x", 1, "http", "", NULL, "proxy", 8080, NULL },
		{ "http://proxy:8080?x#y", 1, "http", "", NULL, "proxy", 8080, NULL },
		{ "socks5:proxy:1080", 1, "socks5", "", NULL, NULL, -1, NULL },
		{ "socks5:/proxy", 1, "socks5", "", NULL, NULL, -1, NULL },
		{ "socks5://", 1, "socks5", "", NULL, NULL, -1, NULL },
		{ "socks5://pr%zzoxy:1", 1, "socks5", "", NULL, "pr%zzoxy", 1, NULL },
		{ "socks5://pr\x01oxy:1", 1, "socks5", "", NULL, "pr%01oxy", 1, NULL },
		{ "https://proxy:3128", 1, "https", "", NULL, "proxy", 3128, NULL },
		{ "https://proxy:443", 1, "https", "", NULL, "proxy", -1, NULL },
		{ "mailto:x@y", 1, "mailto", "", NULL, NULL, -1, NULL },
		{ "file:///etc/passwd", 1, "file", "", NULL, "", -1, NULL },
		{ "not a url", 0, NULL, NULL, NULL, NULL, 0, "relative URL without a base" },
		{ "", 0, NULL, NULL, NULL, NULL, 0, "relative URL without a base" },
		{ "127.0.0.1:1080", 0, NULL, NULL, NULL, NULL, 0, "relative URL without a base" },
		{ "//proxy:1", 0, NULL, NULL, NULL, NULL, 0, "relative URL without a base" },
		{ "1socks://proxy:1", 0, NULL, NULL, NULL, NULL, 0, "relative URL without a base" },
		{ "socks5://proxy:99999", 0, NULL, NULL, NULL, NULL, 0, "invalid port number" },
		{ "socks5://proxy:65536", 0, NULL, NULL, NULL, NULL, 0, "invalid port number" },
		{ "http://proxy:1a", 0, NULL, NULL, NULL, NULL, 0, "invalid port number" },
		{ "http://proxy:-1", 0, NULL, NULL, NULL, NULL, 0, "invalid port number" },
		{ "http://", 0, NULL, NULL, NULL, NULL, 0, "empty host" },
		{ "http://:8080", 0, NULL, NULL, NULL, NULL, 0, "empty host" },
		{ "socks5://:1080", 0, NULL, NULL, NULL, NULL, 0, "empty host" },
		{ "socks5://user@", 0, NULL, NULL, NULL, NULL, 0, "empty host" },
		{ "http://user@:1", 0, NULL, NULL, NULL, NULL, 0, "empty host" },
		{ "http://a b:1", 0, NULL, NULL, NULL, NULL, 0, "invalid domain character" },
		{ "socks5://a b:1", 0, NULL, NULL, NULL, NULL, 0, "invalid domain character" },
		{ "socks5://a<b:1", 0, NULL, NULL, NULL, NULL, 0, "invalid domain character" },
		{ "http://a%20b:1", 0, NULL, NULL, NULL, NULL, 0, "invalid domain character" },
		{ "http://a%zzb:1", 0, NULL, NULL, NULL, NULL, 0, "invalid domain character" },
		{ "http://1.2.3.256:1", 0, NULL, NULL, NULL, NULL, 0, "invalid IPv4 address" },
		{ "http://1.2.3.4.5:1", 0, NULL, NULL, NULL, NULL, 0, "invalid IPv4 address" },
		{ "http://0x100000000:1", 0, NULL, NULL, NULL, NULL, 0, "invalid IPv4 address" },
		{ "http://foo.09:1", 0, NULL, NULL, NULL, NULL, 0, "invalid IPv4 address" },
		{ "http://[::1:1", 0, NULL, NULL, NULL, NULL, 0, "invalid IPv6 address" },
		{ "socks5://[::g]:1", 0, NULL, NULL, NULL, NULL, 0, "invalid IPv6 address" },
		{ "http://%ff:1", 0, NULL, NULL, NULL, NULL, 0, "invalid international domain name" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct url_case *t = &cases[i];
		struct conf_url u;
		const char *why = NULL;
		int rc = conf_url_parse(t->in, strlen(t->in), &u, &why);
		if (t->ok != (rc == 0))
			fail_msg("%s: rc %d (%s)", t->in, rc, why);
		if (!t->ok) {
			assert_int_equal(rc, MR_EFORMAT);
			if (strcmp(why, t->why) != 0)
				fail_msg("%s: why \"%s\", want \"%s\"", t->in, why, t->why);
			assert_null(u.scheme);
			continue;
		}
		if (strcmp(u.scheme, t->scheme) || strcmp(u.username, t->user) ||
		    (t->pass ? !u.password || strcmp(u.password, t->pass) : u.password != NULL) ||
		    (t->host ? !u.host || strcmp(u.host, t->host) : u.host != NULL) ||
		    (t->port < 0 ? u.has_port : (!u.has_port || u.port != t->port)))
			fail_msg("%s: got scheme %s user %s pass %s host %s port %s%d", t->in, u.scheme,
				 u.username, u.password ? u.password : "(none)", u.host ? u.host : "(none)",
				 u.has_port ? "" : "none/", u.port);
		conf_url_free(&u);
	}
	/* NUL bytes: in a host it is forbidden, in the path it is encoded */
	struct conf_url u;
	const char *why;
	assert_int_equal(conf_url_parse("socks5://a\0b:1", 14, &u, &why), MR_EFORMAT);
	assert_int_equal(conf_url_parse("socks5://ab:1/\0", 15, &u, &why), 0);
	assert_string_equal(u.host, "ab");
	conf_url_free(&u);
	conf_url_free(NULL);
}

/* ---------------------------------------------------------------------- */
/* files: examples/, tests/data/conf/{valid,invalid}/ */

static void test_examples_load(void **state)
{
	(void)state;
	struct conf_files f;
	conf_files_open(&f, "examples", 10);
	while (conf_files_next(&f)) {
		struct conf *c = conf_files_load(&f, "example");
		conf_files_mode(&f, c, "example");
		conf_free(c);
	}

	/* the noise example pair fits together (protocol.md#p-config-example) */
	char dir[512];
	struct conf_error e;
	snprintf(dir, sizeof(dir), "%s/examples/noise-server.toml", SOURCE_DIR);
	struct conf *s = conf_load_file(dir, &e);
	snprintf(dir, sizeof(dir), "%s/examples/noise-client.toml", SOURCE_DIR);
	struct conf *c = conf_load_file(dir, &e);
	assert_non_null(s);
	assert_non_null(c);
	uint8_t priv[32], pub[32], want[32];
	const char *k = s->server->transport.noise.local_private_key;
	assert_int_equal(keygen_b64_decode(k, strlen(k), priv, sizeof(priv)), 32);
	k = c->client->transport.noise.remote_public_key;
	assert_int_equal(keygen_b64_decode(k, strlen(k), want, sizeof(want)), 32);
	assert_int_equal(keygen_x25519_public(priv, pub), 0);
	assert_memory_equal(pub, want, 32);
	conf_free(s);
	conf_free(c);
}

static void test_valid_fixtures(void **state)
{
	(void)state;
	struct conf_files f;
	conf_files_open(&f, "tests/data/conf/valid", 3);
	while (conf_files_next(&f))
		conf_free(conf_files_load(&f, "valid fixture"));
}

static void test_invalid_fixtures(void **state)
{
	(void)state;
	struct conf_files f;
	conf_files_open(&f, "tests/data/conf/invalid", 40);
	while (conf_files_next(&f)) {
		char *text = read_whole(f.path, NULL);
		assert_non_null(text);
		if (strncmp(text, "# expect: ", 10) != 0)
			fail_msg("%s: the first line must be \"# expect: <message part>\"", f.name);
		char *exp = text + 10;
		char *nl = strchr(exp, '\n');
		if (nl)
			*nl = '\0';
		struct conf_error e;
		struct conf *c = conf_load_file(f.path, &e);
		if (c) {
			conf_free(c);
			fail_msg("invalid fixture %s was accepted", f.name);
		}
		/* the message starts with the path and contains the expectation */
		if (strncmp(e.msg, f.path, strlen(f.path)) != 0 || !strstr(e.msg, exp))
			fail_msg("%s:\n  got    %s\n  expect %s", f.name, e.msg, exp);
		free(text);
	}
}

static void test_load_file_errors(void **state)
{
	(void)state;
	struct conf_error e;
	assert_null(conf_load_file("/nonexistent/dir/x.toml", &e));
	assert_string_equal(e.msg, "/nonexistent/dir/x.toml: cannot open the configuration file: No such "
				   "file or directory");
	char dir[512];
	snprintf(dir, sizeof(dir), "%s/examples", SOURCE_DIR);
	assert_null(conf_load_file(dir, &e));
	assert_non_null(strstr(e.msg, ": cannot read the configuration file: Is a directory"));
	conf_free(NULL);
}

/* ---------------------------------------------------------------------- */
/* the schema and its documentation */

struct doc_check {
	const char *doc;
	size_t n, errors;
	size_t hot, general, required;
};

/* The section of doc whose "### " heading names `[table]` (or "Top level"). */
static const char *doc_section(const char *doc, const char *table, const char **end)
{
	char want[200];
	if (table[0])
		snprintf(want, sizeof(want), "`[%s]`", table);
	else
		snprintf(want, sizeof(want), "Top level");
	for (const char *p = doc; (p = strstr(p, "\n### ")); p++) {
		const char *eol = strchr(p + 1, '\n');
		if (!eol)
			break;
		const char *hit = strstr(p + 1, want);
		if (hit && hit < eol) {
			const char *e = strstr(eol, "\n#");
			*end = e ? e : eol + strlen(eol);
			return eol;
		}
	}
	return NULL;
}

static void trim_cell(char *s)
{
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' '))
		s[--n] = '\0';
	size_t k = 0;
	while (s[k] == ' ')
		k++;
	memmove(s, s + k, n - k + 1);
	/* drop backticks */
	char *o = s;
	for (char *i = s; *i; i++)
		if (*i != '`')
			*o++ = *i;
	*o = '\0';
}

static void check_doc_key(void *arg, const struct conf_key_info *k)
{
	struct doc_check *dc = arg;
	dc->n++;
	dc->hot += k->reload == CONF_RELOAD_HOT;
	dc->general += k->reload == CONF_RELOAD_GENERAL;
	dc->required += k->required;
	char table[160];
	const char *dot = strrchr(k->path, '.');
	const char *key = dot ? dot + 1 : k->path;
	size_t tl = dot ? (size_t)(dot - k->path) : 0;
	memcpy(table, k->path, tl);
	table[tl] = '\0';
	const char *end;
	const char *sec = doc_section(dc->doc, table, &end);
	if (!sec) {
		print_error("docs/configuration.md: no \"### ... `[%s]`\" section (for %s)\n", table, k->path);
		dc->errors++;
		return;
	}
	char row[100];
	snprintf(row, sizeof(row), "\n| `%s` |", key);
	const char *r = strstr(sec, row);
	if (!r || r > end) {
		print_error("docs/configuration.md: section [%s] has no row for `%s`\n", table, key);
		dc->errors++;
		return;
	}
	/* | key | type | default | required | reload | meaning | */
	char cells[6][200];
	const char *p = r + 2;
	for (int i = 0; i < 6; i++) {
		const char *bar = strchr(p, '|');
		const char *eol = strchr(p, '\n');
		if (!bar || (eol && bar > eol)) {
			print_error("docs/configuration.md: row `%s` of [%s] has too few cells\n", key, table);
			dc->errors++;
			return;
		}
		size_t l = (size_t)(bar - p);
		if (l >= sizeof(cells[i]))
			l = sizeof(cells[i]) - 1;
		memcpy(cells[i], p, l);
		cells[i][l] = '\0';
		trim_cell(cells[i]);
		p = bar + 1;
	}
	const char *want_def = k->def ? k->def : "none";
	const char *want_req = k->required ? "yes" : "no";
	const char *want_rel = k->reload == CONF_RELOAD_HOT ? "hot" : "general";
	if (strcmp(cells[1], k->type) || strcmp(cells[2], want_def) || strcmp(cells[3], want_req) ||
	    strcmp(cells[4], want_rel)) {
		print_error("docs/configuration.md: [%s] `%s`: documented as | %s | %s | %s | %s |, the "
			    "schema says | %s | %s | %s | %s |\n",
			    table, key, cells[1], cells[2], cells[3], cells[4], k->type, want_def, want_req,
			    want_rel);
		dc->errors++;
	}
}

static void test_schema_and_docs(void **state)
{
	(void)state;
	char path[512];
	snprintf(path, sizeof(path), "%s/docs/configuration.md", SOURCE_DIR);
	struct doc_check dc = { 0 };
	dc.doc = read_whole(path, NULL);
	assert_non_null(dc.doc);
	size_t n = conf_schema_walk(check_doc_key, &dc);
	assert_int_equal(n, dc.n);
	/* 2 top + 6 server + 4 server svc + 7 client + 5 client svc + 2 * (5
	 * transport + 4 tcp + 4 tls + 3 noise + 1 websocket + 3 admin) */
	assert_int_equal(n, 2 + 6 + 4 + 7 + 5 + 2 * 20);
	assert_int_equal(dc.hot, 2 + 4 + 5);   /* both services tables and their keys */
	assert_int_equal(dc.required, 2 + 1 + 2 + 1 + 2 * 3);
	assert_int_equal(dc.errors, 0);
	free((void *)dc.doc);
	assert_string_equal(conf_xport_type_name(CONF_XPORT_WEBSOCKET), "websocket");
	assert_string_equal(conf_xport_type_name(CONF_XPORT_NOISE), "noise");
	assert_string_equal(conf_svc_type_name(CONF_SVC_TCP), "tcp");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accept_full_both_sections),
		cmocka_unit_test(test_accept_client_empty_services),
		cmocka_unit_test(test_accept_udp_service),
		cmocka_unit_test(test_defaults_server),
		cmocka_unit_test(test_defaults_client),
		cmocka_unit_test(test_service_defaults),
		cmocka_unit_test(test_u64_bounds),
		cmocka_unit_test(test_reject_client_tls_without_table),
		cmocka_unit_test(test_reject_server_tls),
		cmocka_unit_test(test_reject_service_name_key),
		cmocka_unit_test(test_reject_enum_case),
		cmocka_unit_test(test_reject_negative_and_float),
		cmocka_unit_test(test_reject_proxy_not_url),
		cmocka_unit_test(test_reject_empty_file),
		cmocka_unit_test(test_reject_top_level_key),
		cmocka_unit_test(test_reject_transport_tcp_alone),
		cmocka_unit_test(test_reject_services_missing),
		cmocka_unit_test(test_reject_required_keys),
		cmocka_unit_test(test_reject_websocket_without_tls),
		cmocka_unit_test(test_reject_wrong_types),
		cmocka_unit_test(test_reject_token_missing),
		cmocka_unit_test(test_validation_order),
		cmocka_unit_test(test_syntax_error),
		cmocka_unit_test(test_service_names),
		cmocka_unit_test(test_token_with_nul),
		cmocka_unit_test(test_pick_mode),
		cmocka_unit_test(test_url_parse),
		cmocka_unit_test(test_examples_load),
		cmocka_unit_test(test_valid_fixtures),
		cmocka_unit_test(test_invalid_fixtures),
		cmocka_unit_test(test_load_file_errors),
		cmocka_unit_test(test_schema_and_docs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
