/* Unit tests for conf_check: what a role checks in a loaded configuration
 * before it starts: the warnings (problems rathole accepts at load but
 * fails on at start, protocol.md#q14, protocol.md#q15, and more), their positions and mode
 * filter, the settings this build cannot honour yet, and the warnings of
 * every file under examples/ and tests/data/conf/valid/. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/conf.h"
#include "role/conf_check.h"

#include "conf_testutil.h"

/* ---------------------------------------------------------------------- */
/* helpers */

struct warns {
	char *line[64];
	size_t n;
};

static void collect(void *arg, const char *line)
{
	struct warns *w = arg;
	assert_non_null(line);
	assert_null(strchr(line, '\n'));
	if (w->n < 64)
		w->line[w->n++] = strdup(line);
}

static void warns_free(struct warns *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->line[i]);
	w->n = 0;
}

static size_t warns_matching(const struct warns *w, const char *sub)
{
	size_t k = 0;
	for (size_t i = 0; i < w->n; i++)
		if (strstr(w->line[i], sub))
			k++;
	return k;
}

static void dump_warns(const struct warns *w)
{
	for (size_t i = 0; i < w->n; i++)
		print_message("  warning: %s\n", w->line[i]);
}

/* Which check expect_warning runs: the warnings, or (expect_error) the
 * errors that refuse the file. */
static size_t (*check_fn)(const struct conf *, enum conf_mode, void (*)(void *, const char *), void *) =
	conf_check_warnings;

/* Loads text, collects its warnings for mode. */
static size_t warnings_of(const char *text, enum conf_mode mode, struct warns *w)
{
	/* back to the default before anything can fail (a failed assertion
	 * leaves the test without returning here) */
	size_t (*fn)(const struct conf *, enum conf_mode, void (*)(void *, const char *), void *) = check_fn;
	check_fn = conf_check_warnings;
	struct conf *c = must_load(text);
	memset(w, 0, sizeof(*w));
	size_t n = fn(c, mode, collect, w);
	assert_int_equal(n, w->n);
	conf_free(c);
	return n;
}

static void expect_warning(const char *text, enum conf_mode mode, const char *sub)
{
	struct warns w;
	warnings_of(text, mode, &w);
	if (warns_matching(&w, sub) != 1) {
		dump_warns(&w);
		fail_msg("expected exactly one warning containing \"%s\"", sub);
	}
	warns_free(&w);
}

static void expect_no_warning(const char *text, enum conf_mode mode)
{
	struct warns w;
	if (warnings_of(text, mode, &w) != 0) {
		dump_warns(&w);
		fail_msg("expected no warning");
	}
}

static void expect_error(const char *text, enum conf_mode mode, const char *sub)
{
	check_fn = conf_check_errors;
	expect_warning(text, mode, sub);
	check_fn = conf_check_warnings;
}

static void expect_no_error(const char *text, enum conf_mode mode)
{
	check_fn = conf_check_errors;
	expect_no_warning(text, mode);
	check_fn = conf_check_warnings;
}

/* ---------------------------------------------------------------------- */
/* start-time problems: accepted at load (protocol.md#q14, protocol.md#q15) */

static void test_q14_accepted_with_warnings(void **state)
{
	(void)state;
	/* type noise without a noise table */
	const char *noise_missing = CLIENT_MIN "[client.services]\n[client.transport]\ntype = \"noise\"\n";
	expect_warning(noise_missing, CONF_MODE_AUTO,
		       "t.toml:5:1: client.transport.type: type = \"noise\" needs a [client.transport.noise] "
		       "table");
	/* bad base64 and a bad pattern: errors, the instance cannot start */
	expect_error(SERVER_MIN "[server.services]\n[server.transport]\ntype = \"noise\"\n"
				  "[server.transport.noise]\nlocal_private_key = \"not base64!\"\n",
		       CONF_MODE_AUTO,
		       "t.toml:7:1: server.transport.noise.local_private_key: the key is not valid standard "
		       "base64");
	expect_error(SERVER_MIN "[server.services]\n[server.transport]\ntype = \"noise\"\n"
				  "[server.transport.noise]\npattern = \"Noise_ZZ_25519_ChaChaPoly_BLAKE2s\"\n"
				  "local_private_key = \"2q30ZwFo22JI4NLDtxCYeCyKCKFgd+O8FC0VUNg7Dos=\"\n",
		       CONF_MODE_AUTO, "server.transport.noise.pattern: \"Noise_ZZ_25519_ChaChaPoly_BLAKE2s\" is "
				  "not a usable Noise protocol name (the handshake pattern is unknown)");
	/* type websocket without its table: an error */
	expect_error(CLIENT_MIN "[client.services]\n[client.transport]\ntype = \"websocket\"\n",
		       CONF_MODE_AUTO, "client.transport.type: type = \"websocket\" needs a "
				  "[client.transport.websocket] table");
	/* websocket tls = true without a tls table */
	expect_warning(CLIENT_MIN "[client.services]\n[client.transport]\ntype = \"websocket\"\n"
				  "[client.transport.websocket]\ntls = true\n",
		       CONF_MODE_AUTO, "t.toml:7:1: client.transport.websocket.tls: tls = true needs a "
				  "[client.transport.tls] table");
	/* protocol.md#q15: websocket over TLS on a server, tls table without pkcs12 */
	expect_warning(SERVER_MIN "[server.services]\n[server.transport]\ntype = \"websocket\"\n"
				  "[server.transport.websocket]\ntls = true\n[server.transport.tls]\n",
		       CONF_MODE_AUTO, "rathole panics at the first connection");
	/* protocol.md#q15: a client with pkcs12 but no password */
	char text[1024];
	snprintf(text, sizeof(text),
		 CLIENT_MIN "[client.services]\n[client.transport]\ntype = \"tls\"\n"
			    "[client.transport.tls]\npkcs12 = \"%s/examples/client.toml\"\n", SOURCE_DIR);
	expect_warning(text, CONF_MODE_AUTO, "client.transport.tls.pkcs12: a client with pkcs12 but no "
					"pkcs12_password makes rathole panic at start");
}

static void test_warn_files(void **state)
{
	(void)state;
	char text[2048];
	snprintf(text, sizeof(text),
		 SERVER_MIN "[server.services]\n[server.transport]\ntype = \"tls\"\n[server.transport.tls]\n"
			    "pkcs12 = \"%s/tests/data/conf/no-such-file.pfx\"\npkcs12_password = \"pw\"\n",
		 SOURCE_DIR);
	expect_warning(text, CONF_MODE_AUTO, "t.toml:7:1: server.transport.tls.pkcs12: ");
	expect_warning(text, CONF_MODE_AUTO, "cannot be read (No such file or directory), so the server fails "
					"at start; note that relative paths are relative to the working "
					"directory");
	snprintf(text, sizeof(text),
		 SERVER_MIN "[server.services]\n[server.transport]\ntype = \"tls\"\n[server.transport.tls]\n"
			    "pkcs12 = \"%s/examples/server.toml\"\npkcs12_password = \"pw\"\n",
		 SOURCE_DIR);
	expect_no_warning(text, CONF_MODE_AUTO);
	/* a client's trusted_root */
	expect_warning(CLIENT_MIN "[client.services]\n[client.transport]\ntype = \"tls\"\n"
				  "[client.transport.tls]\ntrusted_root = \"/nonexistent/ca.pem\"\n",
		       CONF_MODE_AUTO, "t.toml:7:1: client.transport.tls.trusted_root: \"/nonexistent/ca.pem\" "
				  "cannot be read");
	/* files of an unused tls table are not checked; the table is noted */
	expect_warning(CLIENT_MIN "[client.services]\n[client.transport]\ntype = \"tcp\"\n"
				  "[client.transport.tls]\ntrusted_root = \"/nonexistent/ca.pem\"\n",
		       CONF_MODE_AUTO, "client.transport.tls: this table is ignored with type = \"tcp\"");
}

static void test_noise_keys(void **state)
{
	(void)state;
	/* 31 bytes of base64: an error with file:line:col */
	expect_error(CLIENT_MIN "[client.services]\n[client.transport]\ntype = \"noise\"\n"
				"[client.transport.noise]\n"
				"remote_public_key = \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\"\n",
		     CONF_MODE_AUTO, "t.toml:7:1: client.transport.noise.remote_public_key: the key decodes "
				"to 31 bytes, not 32");
	/* NK client without the server's key */
	expect_error(CLIENT_MIN "[client.services]\n[client.transport]\ntype = \"noise\"\n"
				"[client.transport.noise]\n",
		     CONF_MODE_AUTO, "t.toml:6:1: client.transport.noise: the pattern needs remote_public_key");
	/* NK server without its private key: works, but surprises */
	expect_warning(SERVER_MIN "[server.services]\n[server.transport]\ntype = \"noise\"\n"
				  "[server.transport.noise]\n",
		       CONF_MODE_AUTO, "server.transport.noise: without local_private_key a new random key");
	expect_no_error(SERVER_MIN "[server.services]\n[server.transport]\ntype = \"noise\"\n"
				   "[server.transport.noise]\n", CONF_MODE_AUTO);
	/* XX needs no keys in advance */
	const char *xx = CLIENT_MIN "[client.services]\n[client.transport]\ntype = \"noise\"\n"
				    "[client.transport.noise]\npattern = \"Noise_XX_25519_ChaChaPoly_BLAKE2s\"\n";
	expect_no_warning(xx, CONF_MODE_AUTO);
	expect_no_error(xx, CONF_MODE_AUTO);
	/* unpadded base64 is fine (rathole accepts it) */
	const char *unpadded = CLIENT_MIN "[client.services]\n[client.transport]\ntype = \"noise\"\n"
					  "[client.transport.noise]\n"
					  "remote_public_key = \"HN7XPmAsbw0ZFZT/gLuzaWu+oy1QIMMV1q5v/W8pVnw\"\n";
	expect_no_warning(unpadded, CONF_MODE_AUTO);
	expect_no_error(unpadded, CONF_MODE_AUTO);
	/* 448 keys are 56 bytes */
	expect_error(CLIENT_MIN "[client.services]\n[client.transport]\ntype = \"noise\"\n"
				"[client.transport.noise]\npattern = \"Noise_NK_448_ChaChaPoly_BLAKE2s\"\n"
				"remote_public_key = \"HN7XPmAsbw0ZFZT/gLuzaWu+oy1QIMMV1q5v/W8pVnw\"\n",
		     CONF_MODE_AUTO, "the key decodes to 32 bytes, not 56");
	expect_error(CLIENT_MIN "[client.services]\n[client.transport]\ntype = \"noise\"\n"
				"[client.transport.noise]\npattern = \"Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s\"\n",
		     CONF_MODE_AUTO, "a PSK pattern needs a pre-shared key");
	expect_error(CLIENT_MIN "[client.services]\n[client.transport]\ntype = \"noise\"\n"
				"[client.transport.noise]\npattern = \"Noise_N_25519_ChaChaPoly_BLAKE2s\"\n",
		     CONF_MODE_AUTO, "one-way patterns");
	/* a key table of another type is not checked (it is ignored, with a warning) */
	expect_no_error(CLIENT_MIN "[client.services]\n[client.transport]\ntype = \"tcp\"\n"
				   "[client.transport.noise]\nremote_public_key = \"AA==\"\n", CONF_MODE_AUTO);
}

static void test_warn_proxy(void **state)
{
	(void)state;
#define PROXY(u) CLIENT_MIN "[client.services]\n[client.transport]\ntype = \"tcp\"\n" \
		 "[client.transport.tcp]\nproxy = \"" u "\"\n"
	expect_warning(PROXY("http://proxy"), CONF_MODE_AUTO,
		       "t.toml:7:1: client.transport.tcp.proxy: the proxy URL has no port or the scheme's "
		       "default one: molerat uses 80, but rathole cannot (it panics); write the port "
		       "explicitly, e.g. http://proxy:8080");
	expect_warning(PROXY("http://proxy:80"), CONF_MODE_AUTO, "has no port or the scheme's default");
	expect_warning(PROXY("socks5://proxy"), CONF_MODE_AUTO, "e.g. socks5://proxy:1080");
	expect_error(PROXY("socks5:proxy"), CONF_MODE_AUTO, "the proxy URL has no host");
	expect_warning(PROXY("socks5://[::1]:1080"), CONF_MODE_AUTO, "bracketed IPv6");
	expect_warning(PROXY("socks5://us%40er:pw@proxy:1080"), CONF_MODE_AUTO, "molerat percent-decodes the proxy credentials");
	expect_no_warning(PROXY("socks5://user:pw@proxy:1080"), CONF_MODE_AUTO);
	expect_no_warning(PROXY("http://proxy:3128"), CONF_MODE_AUTO);
	/* a server ignores the proxy */
	expect_warning(SERVER_MIN "[server.services]\n[server.transport]\ntype = \"tcp\"\n"
				  "[server.transport.tcp]\nproxy = \"http://proxy:3128\"\n",
		       CONF_MODE_AUTO, "a proxy is only used by a client; it is ignored here");
#undef PROXY
}

static void test_warn_addresses_and_intervals(void **state)
{
	(void)state;
	expect_warning(SERVER_MIN "[server.services.a]\nbind_addr = \"8080\"\ntoken = \"t\"\n", CONF_MODE_AUTO,
		       "t.toml:4:1: server.services.a.bind_addr: \"8080\" is not in host:port form (it has "
		       "no :port); expected a string like \"0.0.0.0:8080\"");
	expect_warning("[server]\nbind_addr = \":2333\"\n[server.services]\n", CONF_MODE_AUTO,
		       "the host is empty");
	expect_warning(CLIENT_MIN "[client.services.a]\nlocal_addr = \"::1:22\"\ntoken = \"t\"\n",
		       CONF_MODE_AUTO, "an IPv6 address must be written in brackets");
	expect_warning(CLIENT_MIN "[client.services.a]\nlocal_addr = \"[::1:22\"\ntoken = \"t\"\n",
		       CONF_MODE_AUTO, "is not in host:port form");
	expect_warning(CLIENT_MIN "[client.services.a]\nlocal_addr = \"host:99999\"\ntoken = \"t\"\n",
		       CONF_MODE_AUTO, "the port is over 65535");
	expect_no_warning(CLIENT_MIN "[client.services.a]\nlocal_addr = \"[::1]:22\"\ntoken = \"t\"\n",
			  CONF_MODE_AUTO);
	expect_warning("[client]\nremote_addr = \"example.com\"\n[client.services]\n", CONF_MODE_AUTO,
		       "t.toml:2:1: client.remote_addr: \"example.com\" is not in host:port form");
	expect_warning(CLIENT_MIN "retry_interval = 0\n[client.services]\n", CONF_MODE_AUTO,
		       "t.toml:3:1: client.retry_interval: 0 makes rathole retry in a busy loop");
	expect_warning(CLIENT_MIN "[client.services.a]\nlocal_addr = \"x:1\"\ntoken = \"t\"\n"
				  "retry_interval = 0\n",
		       CONF_MODE_AUTO, "t.toml:6:1: client.services.a.retry_interval: 0 makes rathole retry");
	expect_warning(CLIENT_MIN "[client.services]\n[client.transport]\ntype = \"tcp\"\n"
				  "[client.transport.tcp]\nkeepalive_secs = 0\n",
		       CONF_MODE_AUTO, "client.transport.tcp.keepalive_secs: Linux accepts 1 to 32767");
	expect_warning(SERVER_MIN "[server.services.a]\nbind_addr = \"0.0.0.0:1\"\ntoken = \"t\"\n"
				  "[server.services.b]\nbind_addr = \"0.0.0.0:1\"\ntoken = \"t\"\n",
		       CONF_MODE_AUTO, "server.services.b.bind_addr: another service binds the same address");
	/* heartbeat settings, both sections present */
	expect_warning(SERVER_MIN "heartbeat_interval = 60\n[server.services]\n" CLIENT_MIN
				  "[client.services]\n",
		       CONF_MODE_AUTO, "t.toml:5:1: client.heartbeat_timeout: 40 is not longer than "
				  "server.heartbeat_interval (60), so the client will drop idle connections");
	expect_warning(SERVER_MIN "heartbeat_interval = 0\n[server.services]\n" CLIENT_MIN
				  "[client.services]\n",
		       CONF_MODE_AUTO, "(0: heartbeats are off)");
	expect_no_warning(SERVER_MIN "heartbeat_interval = 0\n[server.services]\n" CLIENT_MIN
				     "heartbeat_timeout = 0\n[client.services]\n",
			  CONF_MODE_AUTO);
	expect_no_warning(SERVER_MIN "[server.services]\n" CLIENT_MIN "[client.services]\n", CONF_MODE_AUTO);
}

static void test_warn_mode_filter(void **state)
{
	(void)state;
	const char *both = "[server]\nbind_addr = \"nope\"\n[server.services]\n"
			   "[client]\nremote_addr = \"nope\"\n[client.services]\n";
	struct warns w;
	assert_int_equal(warnings_of(both, CONF_MODE_AUTO, &w), 2);
	warns_free(&w);
	assert_int_equal(warnings_of(both, CONF_MODE_SERVER, &w), 1);
	assert_int_equal(warns_matching(&w, "server.bind_addr"), 1);
	warns_free(&w);
	assert_int_equal(warnings_of(both, CONF_MODE_CLIENT, &w), 1);
	assert_int_equal(warns_matching(&w, "client.remote_addr"), 1);
	warns_free(&w);
	/* a NULL callback still counts */
	struct conf *c = must_load(both);
	assert_int_equal(conf_check_warnings(c, CONF_MODE_AUTO, NULL, NULL), 2);
	conf_free(c);
}

static void test_warn_cross_services(void **state)
{
	(void)state;
	const char *t = SERVER_MIN "[server.services.a]\nbind_addr = \"0.0.0.0:1\"\ntoken = \"x\"\n"
				   "type = \"udp\"\n" CLIENT_MIN
				   "[client.services.a]\nlocal_addr = \"127.0.0.1:1\"\ntoken = \"y\"\n";
	struct warns w;
	assert_int_equal(warnings_of(t, CONF_MODE_AUTO, &w), 2);
	assert_int_equal(warns_matching(&w, "client.services.a.type: the service is tcp here but udp"), 1);
	assert_int_equal(warns_matching(&w, "client.services.a: the token differs"), 1);
	warns_free(&w);
}

/* ---------------------------------------------------------------------- */
/* settings no program can run: errors */

static void test_errors(void **state)
{
	(void)state;
	const char *t = SERVER_MIN "[server.services]\n[server.transport]\ntype = \"websocket\"\n"
				   "[server.transport.tcp]\nproxy = \"socks5://p:1080\"\n"
			CLIENT_MIN "[client.services]\n[client.transport]\ntype = \"websocket\"\n"
				   "[client.transport.websocket]\ntls = false\n"
				   "[client.transport.tcp]\nproxy = \"socks5://p:1080\"\n";
	struct conf *c = must_load(t);
	struct warns w = { 0 };
	/* a websocket transport without its table cannot start (rathole
	 * refuses too); a client's proxy and a complete websocket are fine */
	assert_int_equal(conf_check_errors(c, CONF_MODE_AUTO, collect, &w), 1);
	assert_int_equal(w.n, 1);
	assert_string_equal(w.line[0], "t.toml:5:1: server.transport.type: type = \"websocket\" needs a "
					"[server.transport.websocket] table with tls = true or false "
					"(rathole refuses to start without it); add it");
	warns_free(&w);
	/* the mode selects the section; a NULL callback still counts */
	assert_int_equal(conf_check_errors(c, CONF_MODE_SERVER, NULL, NULL), 1);
	assert_int_equal(conf_check_errors(c, CONF_MODE_CLIENT, NULL, NULL), 0);
	conf_free(c);
	/* tcp, tls, noise and websocket are supported */
	c = must_load(SERVER_MIN "[server.services]\n[server.transport]\ntype = \"noise\"\n"
		      "[server.transport.noise]\n"
		      CLIENT_MIN "[client.services]\n[client.transport]\ntype = \"tls\"\n"
		      "[client.transport.tls]\n");
	assert_int_equal(conf_check_errors(c, CONF_MODE_AUTO, collect, &w), 0);
	assert_int_equal(w.n, 0);
	conf_free(c);
}

/* ---------------------------------------------------------------------- */
/* files: examples/, tests/data/conf/valid/ */

static void test_examples_warnings(void **state)
{
	(void)state;
	struct conf_files f;
	conf_files_open(&f, "examples", 10);
	while (conf_files_next(&f)) {
		struct conf *c = conf_files_load(&f, "example");
		enum conf_mode m = conf_files_mode(&f, c, "example");
		/* examples are clean, except for key files that do not exist here */
		struct warns w = { 0 };
		conf_check_warnings(c, m, collect, &w);
		for (size_t k = 0; k < w.n; k++)
			if (!strstr(w.line[k], "cannot be read"))
				fail_msg("example %s warns: %s", f.name, w.line[k]);
		warns_free(&w);
		conf_free(c);
	}
}

static void test_valid_fixtures_warnings(void **state)
{
	(void)state;
	struct conf_files f;
	conf_files_open(&f, "tests/data/conf/valid", 3);
	while (conf_files_next(&f)) {
		struct conf *c = conf_files_load(&f, "valid fixture");
		/* "# warn: substring" lines name warnings that must appear */
		char *text = read_whole(f.path, NULL);
		assert_non_null(text);
		/* and "# error: substring" lines the errors that refuse it */
		struct warns w = { 0 }, e = { 0 };
		conf_check_warnings(c, CONF_MODE_AUTO, collect, &w);
		conf_check_errors(c, CONF_MODE_AUTO, collect, &e);
		size_t expected = 0, expected_errors = 0;
		for (char *line = text; line && *line;) {
			char *nl = strchr(line, '\n');
			if (nl)
				*nl = '\0';
			if (!strncmp(line, "# warn: ", 8)) {
				expected++;
				if (warns_matching(&w, line + 8) != 1) {
					dump_warns(&w);
					fail_msg("%s: expected one warning containing \"%s\"", f.name, line + 8);
				}
			}
			if (!strncmp(line, "# error: ", 9)) {
				expected_errors++;
				if (warns_matching(&e, line + 9) != 1) {
					dump_warns(&e);
					fail_msg("%s: expected one error containing \"%s\"", f.name, line + 9);
				}
			}
			line = nl ? nl + 1 : NULL;
		}
		if (!strstr(text, "# warn: any") && w.n != expected) {
			dump_warns(&w);
			fail_msg("%s: %zu warnings, %zu expected", f.name, w.n, expected);
		}
		if (e.n != expected_errors) {
			dump_warns(&e);
			fail_msg("%s: %zu errors, %zu expected", f.name, e.n, expected_errors);
		}
		warns_free(&w);
		warns_free(&e);
		free(text);
		conf_free(c);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_q14_accepted_with_warnings),
		cmocka_unit_test(test_warn_files),
		cmocka_unit_test(test_noise_keys),
		cmocka_unit_test(test_warn_proxy),
		cmocka_unit_test(test_warn_addresses_and_intervals),
		cmocka_unit_test(test_warn_mode_filter),
		cmocka_unit_test(test_warn_cross_services),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_examples_warnings),
		cmocka_unit_test(test_valid_fixtures_warnings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
