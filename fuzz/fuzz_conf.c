/* libFuzzer target for conf: bytes -> conf_load_buffer, and, when they load,
 * conf_check_warnings (role/conf_check.c, compiled into this target),
 * conf_pick_mode, conf_diff against itself, against a second load of the
 * same bytes and against a fixed config. Also feeds the bytes to the URL
 * parser. Invariants that fail abort():
 * - a rejection always has a one-line message that starts with the path;
 * - a config compared with itself, or with a second load of the same bytes,
 *   is CONF_SAME;
 * - a diff only names services that exist in the configs it compared. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/conf.h"
#include "codec/conf_diff.h"
#include "codec/conf_url.h"
#include "role/conf_check.h"

static const char fixed_text[] =
	"[server]\nbind_addr = \"0.0.0.0:2333\"\ndefault_token = \"t\"\n"
	"[server.services.a]\nbind_addr = \"0.0.0.0:1\"\n"
	"[server.services.b]\nbind_addr = \"0.0.0.0:2\"\ntype = \"udp\"\n"
	"[client]\nremote_addr = \"example.com:2333\"\ndefault_token = \"t\"\n"
	"[client.services.a]\nlocal_addr = \"127.0.0.1:1\"\n"
	"[client.services.c]\nlocal_addr = \"127.0.0.1:3\"\nretry_interval = 2\n";

static void sink(void *arg, const char *line)
{
	size_t *n = arg;
	if (!line || strchr(line, '\n'))
		abort();
	(*n)++;
}

static int in_list(const struct conf_service *s, const struct conf_service *arr, size_t n)
{
	return s >= arr && s < arr + n;
}

static void check_diff(const struct conf *a, const struct conf *b)
{
	struct conf_diff d;
	if (conf_diff(a, b, &d) != 0)
		return;   /* out of memory */
	if (d.change == CONF_SERVICES) {
		for (size_t i = 0; i < d.n_server_deleted; i++)
			if (!a->server || !in_list(d.server_deleted[i], a->server->services, a->server->n_services))
				abort();
		for (size_t i = 0; i < d.n_server_added; i++)
			if (!b->server || !in_list(d.server_added[i], b->server->services, b->server->n_services))
				abort();
		for (size_t i = 0; i < d.n_client_deleted; i++)
			if (!a->client || !in_list(d.client_deleted[i], a->client->services, a->client->n_services))
				abort();
		for (size_t i = 0; i < d.n_client_added; i++)
			if (!b->client || !in_list(d.client_added[i], b->client->services, b->client->n_services))
				abort();
	} else if (d.n_server_added + d.n_server_deleted + d.n_client_added + d.n_client_deleted) {
		abort();
	}
	conf_diff_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf_url u;
	const char *why;
	if (conf_url_parse((const char *)data, size, &u, &why) == 0)
		conf_url_free(&u);

	struct conf_error err;
	struct conf *c = conf_load_buffer("fuzz.toml", (const char *)data, size, &err);
	if (!c) {
		if (strncmp(err.msg, "fuzz.toml", 9) != 0 || strchr(err.msg, '\n'))
			abort();
		return 0;
	}
	size_t n = 0;
	conf_check_warnings(c, CONF_MODE_AUTO, sink, &n);
	conf_check_warnings(c, CONF_MODE_SERVER, sink, &n);
	conf_check_warnings(c, CONF_MODE_CLIENT, sink, &n);
	conf_pick_mode(c, CONF_MODE_AUTO, &err);
	conf_pick_mode(c, CONF_MODE_SERVER, &err);
	conf_pick_mode(c, CONF_MODE_CLIENT, &err);

	struct conf_diff d;
	if (conf_diff(c, c, &d) == 0) {
		if (d.change != CONF_SAME)
			abort();
		conf_diff_free(&d);
	}
	struct conf *again = conf_load_buffer("fuzz.toml", (const char *)data, size, &err);
	if (!again)
		abort();   /* loading is deterministic */
	if (conf_diff(c, again, &d) == 0) {
		if (d.change != CONF_SAME)
			abort();
		conf_diff_free(&d);
	}
	conf_free(again);

	struct conf *fixed = conf_load_buffer("fixed.toml", fixed_text, sizeof(fixed_text) - 1, &err);
	if (fixed) {
		check_diff(c, fixed);
		check_diff(fixed, c);
		conf_free(fixed);
	}
	conf_free(c);
	return 0;
}
