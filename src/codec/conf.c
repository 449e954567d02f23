/* conf: rathole's configuration schema (protocol.md#p-config) over the toml tree.
 *
 * The schema is a set of declarative tables (struct tdef), one row (struct
 * row) per key: name, type, default, bounds, validator, required, reload
 * class, and where the value goes in the conf structs (offsetof). Generic
 * code walks the toml tree against them (walk_*), fills defaults
 * (tdef_init), frees (tdef_release) and lists the keys for the
 * documentation (conf_schema_walk); conf_diff.c compares them for hot
 * reload (tdef_equal), through conf_schema.h. Only the cross-key rules of
 * protocol.md#p-config-validation steps 2-4 are plain code here; the warnings and the settings
 * this build cannot honour yet are role/conf_check.c.
 *
 * Validation order (protocol.md#p-config-validation): the whole tree is type-checked first, in
 * document order (within a table: each key as written, then the missing
 * required keys, as serde does); then [server]; then [client]; then
 * "neither section". The first failure wins. */
#include "codec/conf.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "codec/addr.h"
#include "codec/conf_schema.h"
#include "codec/conf_url.h"
#include "codec/toml.h"

_Static_assert(sizeof(enum conf_svc_type) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(enum conf_xport_type) == sizeof(int), "enums are stored as int");

/* client.services.NAME.retry_interval before defaults: TOML integers stop
 * at INT64_MAX, so this value cannot come from a file. */
#define U64_UNSET UINT64_MAX
/* A rathole config is a few KiB; 1 MiB bounds the parse tree's memory
 * (each tiny TOML value is a node) well below anything harmful. */
#define CONF_MAX_FILE (1u << 20)
#define U64_TOML_MAX ((uint64_t)INT64_MAX)

/* ---------------------------------------------------------------------- */
/* the schema */

static const char *const svc_type_names[] = { "tcp", "udp", NULL };
static const char *const xport_type_names[] = { "tcp", "tls", "noise", "websocket", NULL };

static int check_proxy(struct walk *w, const struct row *r, void *base, const struct toml_kv *kv);
static void tcp_release(void *base);

#define F(st, f) offsetof(struct st, f)
#define N(a) (sizeof(a) / sizeof((a)[0]))
#define G CONF_RELOAD_GENERAL
#define H CONF_RELOAD_HOT

static const struct row tcp_rows[] = {
	{ .key = "nodelay", .type = R_BOOL, .reload = G, .off = F(conf_tcp, nodelay), .def = 1,
	  .example = "true" },
	{ .key = "keepalive_secs", .type = R_U64, .reload = G, .off = F(conf_tcp, keepalive_secs),
	  .def = 20, .example = "20" },
	{ .key = "keepalive_interval", .type = R_U64, .reload = G,
	  .off = F(conf_tcp, keepalive_interval), .def = 8, .example = "8" },
	{ .key = "proxy", .type = R_STRING, .reload = G, .off = F(conf_tcp, proxy),
	  .check = check_proxy, .example = "\"socks5://127.0.0.1:1080\"", .doc_type = "url" },
};
static const struct tdef tcp_def = {
	.name = "tcp", .rows = tcp_rows, .n_rows = N(tcp_rows), .size = sizeof(struct conf_tcp),
	.release = tcp_release,
};

static const struct row tls_rows[] = {
	{ .key = "hostname", .type = R_STRING, .reload = G, .off = F(conf_tls, hostname),
	  .def_doc = "the host of remote_addr", .example = "\"tunnel.example.net\"" },
	{ .key = "trusted_root", .type = R_STRING, .reload = G, .off = F(conf_tls, trusted_root),
	  .example = "\"ca.pem\"", .doc_type = "path" },
	{ .key = "pkcs12", .type = R_STRING, .reload = G, .off = F(conf_tls, pkcs12),
	  .example = "\"identity.pfx\"", .doc_type = "path" },
	{ .key = "pkcs12_password", .type = R_STRING, .flags = RF_SECRET, .reload = G,
	  .off = F(conf_tls, pkcs12_password), .example = "\"...\"" },
};
static const struct tdef tls_def = {
	.name = "tls", .rows = tls_rows, .n_rows = N(tls_rows), .size = sizeof(struct conf_tls),
	.has_present = true, .present_off = F(conf_tls, present),
};

static const struct row noise_rows[] = {
	{ .key = "pattern", .type = R_STRING, .reload = G, .off = F(conf_noise, pattern),
	  .def_str = "Noise_NK_25519_ChaChaPoly_BLAKE2s",
	  .example = "\"Noise_NK_25519_ChaChaPoly_BLAKE2s\"" },
	{ .key = "local_private_key", .type = R_STRING, .flags = RF_SECRET, .reload = G,
	  .off = F(conf_noise, local_private_key), .def_doc = "random per start",
	  .example = "\"<base64 of 32 bytes>\"", .doc_type = "base64" },
	{ .key = "remote_public_key", .type = R_STRING, .reload = G,
	  .off = F(conf_noise, remote_public_key), .example = "\"<base64 of 32 bytes>\"",
	  .doc_type = "base64" },
};
static const struct tdef noise_def = {
	.name = "noise", .rows = noise_rows, .n_rows = N(noise_rows),
	.size = sizeof(struct conf_noise), .has_present = true, .present_off = F(conf_noise, present),
};

static const struct row ws_rows[] = {
	{ .key = "tls", .type = R_BOOL, .flags = RF_REQUIRED, .reload = G,
	  .off = F(conf_websocket, tls), .example = "false",
	  .missing_hint = "add tls = false, or tls = true for WebSocket over TLS" },
};
static const struct tdef ws_def = {
	.name = "websocket", .rows = ws_rows, .n_rows = N(ws_rows),
	.size = sizeof(struct conf_websocket), .has_present = true,
	.present_off = F(conf_websocket, present),
};

static const struct row transport_rows[] = {
	{ .key = "type", .type = R_ENUM, .flags = RF_REQUIRED, .reload = G,
	  .off = F(conf_transport, type), .names = xport_type_names, .def = CONF_XPORT_TCP,
	  .def_doc = "\"tcp\" when the table is absent", .example = "\"tcp\"" },
	{ .key = "tcp", .type = R_TABLE, .reload = G, .off = F(conf_transport, tcp), .sub = &tcp_def },
	{ .key = "tls", .type = R_TABLE, .reload = G, .off = F(conf_transport, tls), .sub = &tls_def },
	{ .key = "noise", .type = R_TABLE, .reload = G, .off = F(conf_transport, noise),
	  .sub = &noise_def },
	{ .key = "websocket", .type = R_TABLE, .reload = G, .off = F(conf_transport, websocket),
	  .sub = &ws_def },
};
static const struct tdef transport_def = {
	.name = "transport", .rows = transport_rows, .n_rows = N(transport_rows),
	.size = sizeof(struct conf_transport),
};

static const struct row server_svc_rows[] = {
	{ .key = "type", .type = R_ENUM, .reload = H, .off = F(conf_service, type),
	  .names = svc_type_names, .def = CONF_SVC_TCP, .example = "\"tcp\"" },
	{ .key = "bind_addr", .type = R_STRING, .flags = RF_REQUIRED, .reload = H,
	  .off = F(conf_service, bind_addr), .example = "\"0.0.0.0:8080\"" },
	{ .key = "token", .type = R_STRING, .flags = RF_LEN | RF_SECRET, .reload = H,
	  .off = F(conf_service, token), .off_n = F(conf_service, token_len),
	  .def_doc = "server.default_token", .example = "\"...\"" },
	{ .key = "nodelay", .type = R_OPTBOOL, .reload = H, .off = F(conf_service, nodelay),
	  .def_doc = "unset (server.transport.tcp.nodelay)", .example = "true" },
};
const struct tdef conf_server_svc_def = {
	.name = "service", .rows = server_svc_rows, .n_rows = N(server_svc_rows),
	.size = sizeof(struct conf_service),
};

static const struct row client_svc_rows[] = {
	{ .key = "type", .type = R_ENUM, .reload = H, .off = F(conf_service, type),
	  .names = svc_type_names, .def = CONF_SVC_TCP, .example = "\"tcp\"" },
	{ .key = "local_addr", .type = R_STRING, .flags = RF_REQUIRED, .reload = H,
	  .off = F(conf_service, local_addr), .example = "\"127.0.0.1:22\"" },
	{ .key = "token", .type = R_STRING, .flags = RF_LEN | RF_SECRET, .reload = H,
	  .off = F(conf_service, token), .off_n = F(conf_service, token_len),
	  .def_doc = "client.default_token", .example = "\"...\"" },
	{ .key = "nodelay", .type = R_OPTBOOL, .reload = H, .off = F(conf_service, nodelay),
	  .def_doc = "unset (client.transport.tcp.nodelay)", .example = "true" },
	{ .key = "retry_interval", .type = R_U64, .reload = H, .off = F(conf_service, retry_interval),
	  .def = U64_UNSET, .def_doc = "client.retry_interval", .example = "1" },
};
const struct tdef conf_client_svc_def = {
	.name = "service", .rows = client_svc_rows, .n_rows = N(client_svc_rows),
	.size = sizeof(struct conf_service),
};

static const struct row admin_rows[] = {
	{ .key = "bind_addr", .type = R_STRING, .flags = RF_REQUIRED, .reload = G,
	  .off = F(conf_admin, bind_addr), .example = "\"127.0.0.1:9090\"" },
	{ .key = "token", .type = R_STRING, .flags = RF_LEN | RF_SECRET, .reload = G,
	  .off = F(conf_admin, token), .off_n = F(conf_admin, token_len),
	  .def_doc = "none (required when bind_addr is not a loopback address)", .example = "\"...\"" },
};
static const struct tdef admin_def = {
	.name = "admin", .rows = admin_rows, .n_rows = N(admin_rows), .size = sizeof(struct conf_admin),
	.has_present = true, .present_off = F(conf_admin, present),
};

static const struct row server_rows[] = {
	{ .key = "bind_addr", .type = R_STRING, .flags = RF_REQUIRED, .reload = G,
	  .off = F(conf_server, bind_addr), .example = "\"0.0.0.0:2333\"" },
	{ .key = "default_token", .type = R_STRING, .flags = RF_LEN | RF_SECRET, .reload = G,
	  .off = F(conf_server, default_token), .off_n = F(conf_server, default_token_len),
	  .example = "\"...\"" },
	{ .key = "heartbeat_interval", .type = R_U64, .reload = G,
	  .off = F(conf_server, heartbeat_interval), .def = 30, .example = "30" },
	{ .key = "half_close_timeout", .type = R_U64, .reload = G,
	  .off = F(conf_server, half_close_timeout), .def = 60, .example = "60" },
	{ .key = "admin", .type = R_TABLE, .reload = G, .off = F(conf_server, admin), .sub = &admin_def },
	{ .key = "transport", .type = R_TABLE, .reload = G, .off = F(conf_server, transport),
	  .sub = &transport_def },
	{ .key = "services", .type = R_MAP, .flags = RF_REQUIRED, .reload = H,
	  .off = F(conf_server, services), .off_n = F(conf_server, n_services),
	  .sub = &conf_server_svc_def,
	  .missing_hint = "add a [server.services] section (it may be empty)" },
};
static const struct tdef server_def = {
	.name = "server", .rows = server_rows, .n_rows = N(server_rows),
	.size = sizeof(struct conf_server),
};

static const struct row client_rows[] = {
	{ .key = "remote_addr", .type = R_STRING, .flags = RF_REQUIRED, .reload = G,
	  .off = F(conf_client, remote_addr), .example = "\"example.com:2333\"" },
	{ .key = "default_token", .type = R_STRING, .flags = RF_LEN | RF_SECRET, .reload = G,
	  .off = F(conf_client, default_token), .off_n = F(conf_client, default_token_len),
	  .example = "\"...\"" },
	{ .key = "heartbeat_timeout", .type = R_U64, .reload = G,
	  .off = F(conf_client, heartbeat_timeout), .def = 40, .example = "40" },
	{ .key = "retry_interval", .type = R_U64, .reload = G, .off = F(conf_client, retry_interval),
	  .def = 1, .example = "1" },
	{ .key = "half_close_timeout", .type = R_U64, .reload = G,
	  .off = F(conf_client, half_close_timeout), .def = 60, .example = "60" },
	{ .key = "admin", .type = R_TABLE, .reload = G, .off = F(conf_client, admin), .sub = &admin_def },
	{ .key = "transport", .type = R_TABLE, .reload = G, .off = F(conf_client, transport),
	  .sub = &transport_def },
	{ .key = "services", .type = R_MAP, .flags = RF_REQUIRED, .reload = H,
	  .off = F(conf_client, services), .off_n = F(conf_client, n_services),
	  .sub = &conf_client_svc_def,
	  .missing_hint = "add a [client.services] section (it may be empty)" },
};
static const struct tdef client_def = {
	.name = "client", .rows = client_rows, .n_rows = N(client_rows),
	.size = sizeof(struct conf_client),
};

static const struct row root_rows[] = {
	{ .key = "server", .type = R_TABLE, .flags = RF_PTR, .reload = G, .off = F(conf, server),
	  .sub = &server_def },
	{ .key = "client", .type = R_TABLE, .flags = RF_PTR, .reload = G, .off = F(conf, client),
	  .sub = &client_def },
};
const struct tdef conf_root_def = {
	.name = "top level", .rows = root_rows, .n_rows = N(root_rows), .size = sizeof(struct conf),
	.unknown_hint = "only [server] and [client] are allowed at the top level; remove it",
};

#undef G
#undef H

/* ---------------------------------------------------------------------- */
/* small helpers */

static char *memdup0(const char *p, size_t n)
{
	char *s = malloc(n + 1);
	if (s) {
		memcpy(s, p, n);
		s[n] = '\0';
	}
	return s;
}

void conf_quote(char *out, size_t cap, const char *s, size_t n, size_t max)
{
	size_t o = 0;
	if (cap < 8) {
		if (cap)
			out[0] = '\0';
		return;
	}
	out[o++] = '"';
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char e[8];
		size_t k;
		if (c == '"' || c == '\\') {
			e[0] = '\\';
			e[1] = (char)c;
			k = 2;
		} else if (c < 0x20 || c == 0x7f) {
			k = (size_t)snprintf(e, sizeof(e), "\\u%04X", c);
		} else {
			e[0] = (char)c;
			k = 1;
		}
		if (i >= max || o + k + 5 > cap) {
			/* do not cut a UTF-8 sequence in two */
			if ((c & 0xc0) == 0x80) {
				while (o > 1 && ((unsigned char)out[o - 1] & 0xc0) == 0x80)
					o--;
				if (o > 1 && (unsigned char)out[o - 1] >= 0xc0)
					o--;
			}
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		memcpy(out + o, e, k);
		o += k;
	}
	out[o++] = '"';
	out[o] = '\0';
}

/* A key for a dotted path: bare when it can be, else quoted. */
static void fmt_key(char *out, size_t cap, const char *k, size_t n)
{
	bool bare = n > 0;
	for (size_t i = 0; i < n && bare; i++) {
		char c = k[i];
		bare = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		       c == '_' || c == '-';
	}
	if (bare && n < cap && n <= 48) {
		memcpy(out, k, n);
		out[n] = '\0';
	} else {
		conf_quote(out, cap, k, n, 48);
	}
}

/* ---------------------------------------------------------------------- */
/* walking the tree */

struct walk {
	const char *file;
	struct conf_error *err;
	char path[320];
	size_t plen;
};

static void path_push(struct walk *w, const char *k, size_t n)
{
	char key[160];
	fmt_key(key, sizeof(key), k, n);
	int m = snprintf(w->path + w->plen, sizeof(w->path) - w->plen, "%s%s",
			 w->plen ? "." : "", key);
	if (m > 0)
		w->plen += (size_t)m;
	if (w->plen >= sizeof(w->path))
		w->plen = sizeof(w->path) - 1;
}

static void path_pop(struct walk *w, size_t to)
{
	w->plen = to;
	w->path[to] = '\0';
}

/* "FILE:LINE:COL: PATH: " then the formatted text. Returns MR_EFORMAT. */
__attribute__((format(printf, 4, 5)))
static int walk_fail(struct walk *w, unsigned line, unsigned col, const char *fmt, ...)
{
	int m = snprintf(w->err->msg, sizeof(w->err->msg), "%s:%u:%u: %s: ", w->file, line, col,
			 w->path);
	if (m > 0 && (size_t)m < sizeof(w->err->msg)) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(w->err->msg + m, sizeof(w->err->msg) - (size_t)m, fmt, ap);
		va_end(ap);
	}
	return MR_EFORMAT;
}

static int walk_oom(struct walk *w)
{
	snprintf(w->err->msg, sizeof(w->err->msg), "%s: out of memory while loading the configuration",
		 w->file);
	return -ENOMEM;
}

/* What a value is, for "found ...". With hide, the value itself is not
 * shown (secrets). */
static void describe(const struct toml_node *v, char *out, size_t cap, bool hide)
{
	char q[96];
	if (hide && v->type != TOML_TABLE && v->type != TOML_ARRAY) {
		snprintf(out, cap, "a value of type %s (not shown: it is a secret)", toml_type_name(v->type));
		return;
	}
	switch (v->type) {
	case TOML_STRING:
		conf_quote(q, sizeof(q), v->u.str.ptr, v->u.str.len, 40);
		snprintf(out, cap, "string %s", q);
		break;
	case TOML_INTEGER:
		snprintf(out, cap, "integer %lld", (long long)v->u.integer);
		break;
	case TOML_FLOAT:
		snprintf(out, cap, "float %g", v->u.fp);
		break;
	case TOML_BOOL:
		snprintf(out, cap, "boolean %s", v->u.boolean ? "true" : "false");
		break;
	case TOML_TABLE:
		snprintf(out, cap, "a table");
		break;
	case TOML_ARRAY:
		snprintf(out, cap, "an array");
		break;
	default:
		snprintf(out, cap, "a %s", toml_type_name(v->type));
		break;
	}
}

static void enum_list(const char *const *names, char *out, size_t cap)
{
	size_t o = 0;
	out[0] = '\0';
	for (size_t i = 0; names[i]; i++) {
		int m = snprintf(out + o, cap - o, "%s\"%s\"", i == 0 ? "" : (names[i + 1] ? ", " : " or "),
				 names[i]);
		if (m < 0 || (size_t)m >= cap - o)
			break;
		o += (size_t)m;
	}
}

static int type_error(struct walk *w, const struct row *r, const struct toml_kv *kv)
{
	char found[160];
	describe(kv->value, found, sizeof(found), r->flags & RF_SECRET);
	const char *key = r->key;
	switch (r->type) {
	case R_STRING:
		if (kv->value->type == TOML_INTEGER || kv->value->type == TOML_FLOAT ||
		    kv->value->type == TOML_BOOL)
			return walk_fail(w, kv->line, kv->col,
					 "expected a string, found %s; write it in quotes, e.g. %s = %s",
					 found, key, r->example);
		return walk_fail(w, kv->line, kv->col, "expected a string, found %s; e.g. %s = %s", found,
				 key, r->example);
	case R_U64:
		return walk_fail(w, kv->line, kv->col,
				 "expected a non-negative integer, found %s; e.g. %s = %s", found, key,
				 r->example);
	case R_BOOL:
	case R_OPTBOOL:
		return walk_fail(w, kv->line, kv->col,
				 "expected a boolean, found %s; use %s = true or %s = false", found, key,
				 key);
	case R_ENUM: {
		char list[96];
		enum_list(r->names, list, sizeof(list));
		return walk_fail(w, kv->line, kv->col, "expected a string, found %s; use one of %s",
				 found, list);
	}
	case R_TABLE:
	case R_MAP:
	default:
		return walk_fail(w, kv->line, kv->col, "expected a table, found %s; write it as a [%s] section",
				 found, w->path);
	}
}

static int find_row(const struct tdef *d, const struct toml_str *k)
{
	for (size_t i = 0; i < d->n_rows; i++) {
		size_t n = strlen(d->rows[i].key);
		if (n == k->len && memcmp(d->rows[i].key, k->ptr, n) == 0)
			return (int)i;
	}
	return -1;
}

/* Edit distance, bounded, for "did you mean". */
static size_t edit_distance(const char *a, size_t an, const char *b, size_t bn)
{
	size_t prev[48], cur[48];
	if (an >= 47 || bn >= 47)
		return 99;
	for (size_t j = 0; j <= bn; j++)
		prev[j] = j;
	for (size_t i = 1; i <= an; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= bn; j++) {
			size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
			size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
			cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
		}
		memcpy(prev, cur, sizeof(size_t) * (bn + 1));
	}
	return prev[bn];
}

static int unknown_key(struct walk *w, const struct tdef *d, const struct toml_kv *kv)
{
	if (d->unknown_hint)
		return walk_fail(w, kv->line, kv->col, "unknown key; %s", d->unknown_hint);
	if ((d == &conf_server_svc_def || d == &conf_client_svc_def) && kv->key.len == 4 &&
	    !memcmp(kv->key.ptr, "name", 4))
		return walk_fail(w, kv->line, kv->col,
				 "name is not allowed in a service (the table key is the name); remove it");
	/* "did you mean": a small edit distance, else the one key it is a
	 * prefix of (bind -> bind_addr) */
	const char *best = NULL;
	size_t best_d = 3, n_prefix = 0;
	const char *prefix_of = NULL;
	for (size_t i = 0; i < d->n_rows; i++) {
		const char *k = d->rows[i].key;
		size_t dist = edit_distance(kv->key.ptr, kv->key.len, k, strlen(k));
		if (dist < best_d) {
			best_d = dist;
			best = k;
		}
		if (kv->key.len >= 3 && kv->key.len < strlen(k) && !memcmp(k, kv->key.ptr, kv->key.len)) {
			n_prefix++;
			prefix_of = k;
		}
	}
	if (!best && n_prefix == 1)
		best = prefix_of;
	if (best)
		return walk_fail(w, kv->line, kv->col, "unknown key; did you mean %s?", best);
	char list[200];
	size_t o = 0;
	list[0] = '\0';
	for (size_t i = 0; i < d->n_rows; i++) {
		int m = snprintf(list + o, sizeof(list) - o, "%s%s", i ? ", " : "", d->rows[i].key);
		if (m < 0 || (size_t)m >= sizeof(list) - o)
			break;
		o += (size_t)m;
	}
	return walk_fail(w, kv->line, kv->col, "unknown key; remove it (allowed here: %s)", list);
}

static int tdef_init(const struct tdef *d, void *base);
static void tdef_release(const struct tdef *d, void *base);
static int walk_table(struct walk *w, const struct toml_node *t, const struct tdef *d, void *base);

static int walk_map(struct walk *w, const struct row *r, void *base, const struct toml_kv *kv)
{
	const struct toml_node *t = kv->value;
	struct conf_service **arrp = field(base, r->off);
	size_t *np = field(base, r->off_n);
	if (t->type != TOML_TABLE)
		return type_error(w, r, kv);
	size_t n = t->u.table.len;
	struct conf_service *arr = n ? calloc(n, sizeof(*arr)) : NULL;
	if (n && !arr)
		return walk_oom(w);
	*arrp = arr;
	*np = 0;
	for (size_t i = 0; i < n; i++) {
		const struct toml_kv *e = &t->u.table.items[i];
		struct conf_service *svc = &arr[i];
		size_t saved = w->plen;
		path_push(w, e->key.ptr, e->key.len);
		*np = i + 1;   /* from here on, conf_free() frees it */
		if (tdef_init(r->sub, svc) != 0)
			return walk_oom(w);
		svc->name = memdup0(e->key.ptr, e->key.len);
		if (!svc->name)
			return walk_oom(w);
		svc->name_len = e->key.len;
		svc->line = e->value->line;
		svc->col = e->value->col;
		if (e->value->type != TOML_TABLE) {
			char found[160];
			describe(e->value, found, sizeof(found), false);
			return walk_fail(w, e->line, e->col,
					 "a service must be a table, found %s; write it as a [%s] section",
					 found, w->path);
		}
		int rc = walk_table(w, e->value, r->sub, svc);
		if (rc != 0)
			return rc;
		path_pop(w, saved);
	}
	return 0;
}

static int walk_value(struct walk *w, const struct row *r, void *base, const struct toml_kv *kv)
{
	const struct toml_node *v = kv->value;
	void *f = field(base, r->off);
	switch (r->type) {
	case R_STRING: {
		if (v->type != TOML_STRING)
			return type_error(w, r, kv);
		char *s = memdup0(v->u.str.ptr, v->u.str.len);
		if (!s)
			return walk_oom(w);
		free(*(char **)f);
		*(char **)f = s;
		if (r->flags & RF_LEN)
			*(size_t *)field(base, r->off_n) = v->u.str.len;
		return r->check ? r->check(w, r, base, kv) : 0;
	}
	case R_U64: {
		uint64_t max = r->max ? r->max : U64_TOML_MAX;
		if (v->type != TOML_INTEGER || v->u.integer < 0)
			return type_error(w, r, kv);
		if ((uint64_t)v->u.integer > max)
			return walk_fail(w, kv->line, kv->col, "%lld is too large; the maximum is %llu",
					 (long long)v->u.integer, (unsigned long long)max);
		*(uint64_t *)f = (uint64_t)v->u.integer;
		return 0;
	}
	case R_BOOL:
		if (v->type != TOML_BOOL)
			return type_error(w, r, kv);
		*(bool *)f = v->u.boolean;
		return 0;
	case R_OPTBOOL:
		if (v->type != TOML_BOOL)
			return type_error(w, r, kv);
		*(int *)f = v->u.boolean ? 1 : 0;
		return 0;
	case R_ENUM: {
		if (v->type != TOML_STRING)
			return type_error(w, r, kv);
		for (int i = 0; r->names[i]; i++)
			if (strlen(r->names[i]) == v->u.str.len &&
			    !memcmp(r->names[i], v->u.str.ptr, v->u.str.len)) {
				*(int *)f = i;
				return 0;
			}
		char q[96], list[96];
		conf_quote(q, sizeof(q), v->u.str.ptr, v->u.str.len, 40);
		enum_list(r->names, list, sizeof(list));
		for (int i = 0; r->names[i]; i++)
			if (strlen(r->names[i]) == v->u.str.len &&
			    !strncasecmp(r->names[i], v->u.str.ptr, v->u.str.len))
				return walk_fail(w, kv->line, kv->col,
						 "unknown value %s; values are case-sensitive, use \"%s\"", q,
						 r->names[i]);
		return walk_fail(w, kv->line, kv->col, "unknown value %s; use one of %s", q, list);
	}
	case R_TABLE: {
		if (v->type != TOML_TABLE)
			return type_error(w, r, kv);
		void *sub = f;
		if (r->flags & RF_PTR) {
			sub = calloc(1, r->sub->size);
			if (!sub)
				return walk_oom(w);
			*(void **)f = sub;
			if (tdef_init(r->sub, sub) != 0)
				return walk_oom(w);
		}
		return walk_table(w, v, r->sub, sub);
	}
	case R_MAP:
		return walk_map(w, r, base, kv);
	}
	return MR_EFORMAT;
}

static int walk_table(struct walk *w, const struct toml_node *t, const struct tdef *d, void *base)
{
	uint32_t seen = 0;
	for (size_t i = 0; i < t->u.table.len; i++) {
		const struct toml_kv *kv = &t->u.table.items[i];
		size_t saved = w->plen;
		path_push(w, kv->key.ptr, kv->key.len);
		int ri = find_row(d, &kv->key);
		int rc;
		if (ri < 0) {
			rc = unknown_key(w, d, kv);
		} else {
			seen |= 1u << ri;
			rc = walk_value(w, &d->rows[ri], base, kv);
		}
		if (rc != 0)
			return rc;
		path_pop(w, saved);
	}
	for (size_t i = 0; i < d->n_rows; i++) {
		const struct row *r = &d->rows[i];
		if (!(r->flags & RF_REQUIRED) || (seen & (1u << i)))
			continue;
		if (d == &transport_def)   /* protocol.md#q13: [x.transport.tcp] alone creates it */
			return walk_fail(w, t->line, t->col,
					 "type is required; add type = \"tcp\" (a [%s.tcp] header alone "
					 "also creates [%s], which then needs type)", w->path, w->path);
		if (r->missing_hint)
			return walk_fail(w, t->line, t->col, "%s is required; %s", r->key, r->missing_hint);
		return walk_fail(w, t->line, t->col, "%s is required; add %s = %s", r->key, r->key,
				 r->example);
	}
	if (d->has_present)
		*(bool *)field(base, d->present_off) = true;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* defaults, release */

static int tdef_init(const struct tdef *d, void *base)
{
	for (size_t i = 0; i < d->n_rows; i++) {
		const struct row *r = &d->rows[i];
		void *f = field(base, r->off);
		switch (r->type) {
		case R_STRING:
			if (r->def_str) {
				*(char **)f = strdup(r->def_str);
				if (!*(char **)f)
					return -ENOMEM;
				if (r->flags & RF_LEN)
					*(size_t *)field(base, r->off_n) = strlen(r->def_str);
			}
			break;
		case R_U64:
			*(uint64_t *)f = r->def;
			break;
		case R_BOOL:
			*(bool *)f = r->def != 0;
			break;
		case R_OPTBOOL:
			*(int *)f = -1;
			break;
		case R_ENUM:
			*(int *)f = (int)r->def;
			break;
		case R_TABLE:
			if (!(r->flags & RF_PTR)) {
				int rc = tdef_init(r->sub, f);
				if (rc != 0)
					return rc;
			}
			break;
		case R_MAP:
			break;
		}
	}
	return 0;
}

/* Frees a string of the conf; a secret is wiped first, all len bytes of
 * it (a token may hold NUL: strlen would stop short). */
static void free_string(char *s, bool secret, size_t len)
{
	if (s && secret)
		explicit_bzero(s, len);
	free(s);
}

static void tdef_release(const struct tdef *d, void *base)
{
	if (d->release)
		d->release(base);
	for (size_t i = 0; i < d->n_rows; i++) {
		const struct row *r = &d->rows[i];
		void *f = field(base, r->off);
		switch (r->type) {
		case R_STRING:
			if (*(char **)f)
				free_string(*(char **)f, r->flags & RF_SECRET,
					    r->flags & RF_LEN ? *(size_t *)field(base, r->off_n) : strlen(*(char **)f));
			*(char **)f = NULL;
			break;
		case R_TABLE:
			if (r->flags & RF_PTR) {
				void *p = *(void **)f;
				if (p) {
					tdef_release(r->sub, p);
					free(p);
				}
				*(void **)f = NULL;
			} else {
				tdef_release(r->sub, f);
			}
			break;
		case R_MAP: {
			struct conf_service *arr = *(struct conf_service **)f;
			size_t n = *(size_t *)field(base, r->off_n);
			for (size_t k = 0; k < n; k++) {
				tdef_release(r->sub, &arr[k]);
				free(arr[k].name);
			}
			free(arr);
			*(struct conf_service **)f = NULL;
			*(size_t *)field(base, r->off_n) = 0;
			break;
		}
		default:
			break;
		}
	}
}

static void tcp_release(void *base)
{
	struct conf_tcp *t = base;
	conf_url_free(&t->proxy_url);
}

/* ---------------------------------------------------------------------- */
/* validators and the cross-key rules (protocol.md#p-config-validation steps 2-4) */

/* Quotes a URL with what looks like credentials (between "//" and the
 * last '@' before the next '/') replaced by "***". */
static void quote_url_redacted(char *out, size_t cap, const char *s, size_t n)
{
	char tmp[128];
	const char *dslash = NULL;
	for (size_t i = 0; i + 1 < n; i++)
		if (s[i] == '/' && s[i + 1] == '/') {
			dslash = s + i + 2;
			break;
		}
	const char *at = NULL;
	if (dslash)
		for (const char *p = dslash; p < s + n && *p != '/'; p++)
			if (*p == '@')
				at = p;
	if (!at || n >= sizeof(tmp)) {
		if (memchr(s, '@', n) && n >= sizeof(tmp)) {
			conf_quote(out, cap, "(not shown: it may hold a password)", 35, 60);
			return;
		}
		conf_quote(out, cap, s, n, 60);
		return;
	}
	size_t a = (size_t)(dslash - s);
	memcpy(tmp, s, a);
	memcpy(tmp + a, "***", 3);
	size_t rest = n - (size_t)(at - s);
	memcpy(tmp + a + 3, at, rest);
	conf_quote(out, cap, tmp, a + 3 + rest, 60);
}

static int check_proxy(struct walk *w, const struct row *r, void *base, const struct toml_kv *kv)
{
	struct conf_tcp *tcp = base;
	const char *why;
	conf_url_free(&tcp->proxy_url);
	int rc = conf_url_parse(kv->value->u.str.ptr, kv->value->u.str.len, &tcp->proxy_url, &why);
	if (rc == -ENOMEM)
		return walk_oom(w);
	if (rc != 0) {
		char q[96];
		quote_url_redacted(q, sizeof(q), kv->value->u.str.ptr, kv->value->u.str.len);
		return walk_fail(w, kv->line, kv->col,
				 "%s is not a valid URL (%s); expected \"socks5://host:port\" or "
				 "\"http://host:port\"", q, why);
	}
	return 0;
}

/* The kv at root.k[0].k[1]... (C-string keys), or NULL. */
static const struct toml_kv *tree_kv(const struct toml_node *root, const char *const *keys, size_t n)
{
	const struct toml_node *t = root;
	const struct toml_kv *kv = NULL;
	for (size_t i = 0; i < n; i++) {
		if (!t)
			return NULL;
		kv = toml_table_get(t, keys[i], strlen(keys[i]));
		if (!kv)
			return NULL;
		t = kv->value;
	}
	return kv;
}

static void set_path(struct walk *w, const char *const *keys, size_t n)
{
	path_pop(w, 0);
	for (size_t i = 0; i < n; i++)
		path_push(w, keys[i], strlen(keys[i]));
}

static int validate_services(struct walk *w, const char *sec, struct conf_service *svcs, size_t n,
			     const char *def_tok, size_t def_len, bool client, uint64_t retry)
{
	for (size_t i = 0; i < n; i++) {
		struct conf_service *s = &svcs[i];
		if (!s->token) {
			if (!def_tok) {
				const char *keys[] = { sec, "services" };
				set_path(w, keys, 2);
				path_push(w, s->name, s->name_len);
				return walk_fail(w, s->line, s->col,
						 "token is not set and there is no default_token; add token = "
						 "\"...\" here, or default_token = \"...\" to [%s]", sec);
			}
			s->token = memdup0(def_tok, def_len);
			if (!s->token)
				return walk_oom(w);
			s->token_len = def_len;
		}
		if (client && s->retry_interval == U64_UNSET)
			s->retry_interval = retry;
	}
	return 0;
}

static int validate_transport(struct walk *w, const struct toml_node *root, const char *sec,
			      const struct conf_transport *t, bool server)
{
	if (t->tcp.proxy) {
		const char *s = t->tcp.proxy_url.scheme;
		if (strcmp(s, "socks5") != 0 && strcmp(s, "http") != 0) {
			const char *keys[] = { sec, "transport", "tcp", "proxy" };
			const struct toml_kv *kv = tree_kv(root, keys, 4);
			char q[64];
			conf_quote(q, sizeof(q), s, strlen(s), 20);
			set_path(w, keys, 4);
			return walk_fail(w, kv ? kv->line : 1, kv ? kv->col : 1,
					 "unknown proxy scheme %s; use socks5://host:port or http://host:port", q);
		}
	}
	if (t->type != CONF_XPORT_TLS)
		return 0;
	const char *tkeys[] = { sec, "transport", "type" };
	const struct toml_kv *tkv = tree_kv(root, tkeys, 3);
	if (!t->tls.present) {
		set_path(w, tkeys, 2);
		if (server)
			return walk_fail(w, tkv ? tkv->line : 1, tkv ? tkv->col : 1,
					 "type = \"tls\" needs a [server.transport.tls] table; add it with "
					 "pkcs12 = \"identity.pfx\" and pkcs12_password = \"...\"");
		return walk_fail(w, tkv ? tkv->line : 1, tkv ? tkv->col : 1,
				 "type = \"tls\" needs a [client.transport.tls] table; add it (it may be "
				 "empty; trusted_root and hostname are optional)");
	}
	if (server && (!t->tls.pkcs12 || !t->tls.pkcs12_password)) {
		const char *keys[] = { sec, "transport", "tls" };
		const struct toml_kv *kv = tree_kv(root, keys, 3);
		unsigned line = kv ? kv->value->line : 1, col = kv ? kv->value->col : 1;
		set_path(w, keys, 3);
		if (!t->tls.pkcs12 && !t->tls.pkcs12_password)
			return walk_fail(w, line, col,
					 "pkcs12 and pkcs12_password are required for type = \"tls\"; add "
					 "pkcs12 = \"identity.pfx\" and pkcs12_password = \"...\"");
		if (!t->tls.pkcs12)
			return walk_fail(w, line, col,
					 "pkcs12 is required for type = \"tls\"; add pkcs12 = \"identity.pfx\"");
		return walk_fail(w, line, col,
				 "pkcs12_password is required for type = \"tls\"; add pkcs12_password = "
				 "\"...\"");
	}
	return 0;
}

bool conf_admin_loopback(const char *bind_addr)
{
	char host[256];
	uint16_t port;
	struct addr a;
	if (!bind_addr || addr_split_host_port(bind_addr, host, sizeof(host), &port) < 0)
		return false;
	if (!strcmp(host, "localhost"))
		return true;
	if (addr_from_literal(host, port, &a) < 0)
		return false;
	if (a.ss.ss_family == AF_INET) {
		const struct sockaddr_in *v4 = (const struct sockaddr_in *)&a.ss;
		return ((const uint8_t *)&v4->sin_addr)[0] == 127;
	}
	if (a.ss.ss_family == AF_INET6) {
		static const uint8_t one[16] = { [15] = 1 };
		static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
		const uint8_t *b = ((const struct sockaddr_in6 *)&a.ss)->sin6_addr.s6_addr;
		return !memcmp(b, one, 16) || (!memcmp(b, mapped, 12) && b[12] == 127);
	}
	return false;
}

/* [sec.admin] (molerat only): bind_addr an IP literal (or localhost) and a
 * port, so the endpoint binds at once; a token, not empty, unless
 * bind_addr is a loopback address. */
static int validate_admin(struct walk *w, const struct toml_node *root, const char *sec,
			  const struct conf_admin *a)
{
	if (!a->present)
		return 0;
	const char *keys[] = { sec, "admin", "bind_addr" };
	const struct toml_kv *kv = tree_kv(root, keys, 3);
	char host[256], q[96];
	uint16_t port = 0;
	struct addr ad;
	conf_quote(q, sizeof(q), a->bind_addr, strlen(a->bind_addr), 60);
	if (addr_split_host_port(a->bind_addr, host, sizeof(host), &port) < 0 || port == 0 ||
	    (strcmp(host, "localhost") && addr_from_literal(host, port, &ad) < 0)) {
		set_path(w, keys, 3);
		return walk_fail(w, kv ? kv->line : 1, kv ? kv->col : 1,
				 "%s is not an IP address and a port; the admin endpoint binds an "
				 "address literal, e.g. bind_addr = \"127.0.0.1:9090\"", q);
	}
	if (a->token && a->token_len == 0) {
		const char *tkeys[] = { sec, "admin", "token" };
		const struct toml_kv *tkv = tree_kv(root, tkeys, 3);
		set_path(w, tkeys, 3);
		return walk_fail(w, tkv ? tkv->line : 1, tkv ? tkv->col : 1,
				 "the token is empty; set a long random token, or remove the key "
				 "(allowed on a loopback bind_addr only)");
	}
	if (!a->token && !conf_admin_loopback(a->bind_addr)) {
		set_path(w, keys, 3);
		return walk_fail(w, kv ? kv->line : 1, kv ? kv->col : 1,
				 "%s is not a loopback address, so the admin endpoint needs a token; add "
				 "token = \"...\" to [%s.admin] (a long random string), or bind 127.0.0.1",
				 q, sec);
	}
	return 0;
}

/* ---------------------------------------------------------------------- */
/* loading */

void conf_free(struct conf *c)
{
	if (!c)
		return;
	tdef_release(&conf_root_def, c);
	toml_free(c->tree);
	free(c->path);
	free(c);
}

struct conf *conf_load_buffer(const char *path, const char *text, size_t len, struct conf_error *err)
{
	struct toml_error te;
	struct walk w = { .file = path ? path : "(config)", .err = err };
	err->msg[0] = '\0';
	memset(&te, 0, sizeof(te));
	struct toml_node *root = toml_parse(text, len, &te);
	if (!root) {
		snprintf(err->msg, sizeof(err->msg), "%s:%u:%u: TOML syntax error: %s", w.file, te.line,
			 te.col, te.msg);
		return NULL;
	}
	struct conf *c = calloc(1, sizeof(*c));
	if (!c) {
		toml_free(root);
		walk_oom(&w);
		return NULL;
	}
	c->tree = root;
	c->path = strdup(w.file);
	if (!c->path) {
		walk_oom(&w);
		goto fail;
	}
	/* 1. parse and type check */
	if (root->type != TOML_TABLE || walk_table(&w, root, &conf_root_def, c) != 0)
		goto fail;
	/* 2. [server] */
	if (c->server) {
		struct conf_server *s = c->server;
		if (validate_services(&w, "server", s->services, s->n_services, s->default_token,
				      s->default_token_len, false, 0) != 0 ||
		    validate_transport(&w, root, "server", &s->transport, true) != 0 ||
		    validate_admin(&w, root, "server", &s->admin) != 0)
			goto fail;
	}
	/* 3. [client] */
	if (c->client) {
		struct conf_client *cl = c->client;
		if (validate_services(&w, "client", cl->services, cl->n_services, cl->default_token,
				      cl->default_token_len, true, cl->retry_interval) != 0 ||
		    validate_transport(&w, root, "client", &cl->transport, false) != 0 ||
		    validate_admin(&w, root, "client", &cl->admin) != 0)
			goto fail;
	}
	/* 4. neither */
	if (!c->server && !c->client) {
		snprintf(err->msg, sizeof(err->msg), "%s: neither [server] nor [client] is defined; add one",
			 w.file);
		goto fail;
	}
	return c;
fail:
	conf_free(c);
	return NULL;
}

struct conf *conf_load_file(const char *path, struct conf_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err->msg, sizeof(err->msg), "%s: cannot open the configuration file: %s", path,
			 strerror(errno));
		return NULL;
	}
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	int e = 0;
	while (buf) {
		if (len == cap) {
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				e = ENOMEM;
				break;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			e = errno;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > (size_t)CONF_MAX_FILE) {
			e = EFBIG;
			break;
		}
	}
	if (!buf)
		e = ENOMEM;
	close(fd);
	if (e == 0 && len > (size_t)CONF_MAX_FILE)
		e = EFBIG;
	if (e != 0) {
		if (e == EFBIG)
			snprintf(err->msg, sizeof(err->msg),
				 "%s: the configuration file is larger than %u bytes; it cannot be right",
				 path, (unsigned)CONF_MAX_FILE);
		else
			snprintf(err->msg, sizeof(err->msg), "%s: cannot read the configuration file: %s",
				 path, strerror(e));
		if (buf)
			explicit_bzero(buf, len);
		free(buf);
		return NULL;
	}
	struct conf *c = conf_load_buffer(path, buf, len, err);
	explicit_bzero(buf, len);   /* it holds the tokens */
	free(buf);
	return c;
}

enum conf_mode conf_pick_mode(const struct conf *c, enum conf_mode flag, struct conf_error *err)
{
	const char *f = c->path ? c->path : "(config)";
	switch (flag) {
	case CONF_MODE_SERVER:
		if (c->server)
			return CONF_MODE_SERVER;
		snprintf(err->msg, sizeof(err->msg),
			 "%s: --server was given but there is no [server] section; add one or use --client", f);
		return CONF_MODE_AUTO;
	case CONF_MODE_CLIENT:
		if (c->client)
			return CONF_MODE_CLIENT;
		snprintf(err->msg, sizeof(err->msg),
			 "%s: --client was given but there is no [client] section; add one or use --server", f);
		return CONF_MODE_AUTO;
	case CONF_MODE_AUTO:
	default:
		if (c->server && c->client) {
			snprintf(err->msg, sizeof(err->msg),
				 "%s: both [server] and [client] are defined; pass --server or --client to "
				 "choose", f);
			return CONF_MODE_AUTO;
		}
		if (c->server)
			return CONF_MODE_SERVER;
		if (c->client)
			return CONF_MODE_CLIENT;
		snprintf(err->msg, sizeof(err->msg), "%s: neither [server] nor [client] is defined; add one",
			 f);
		return CONF_MODE_AUTO;
	}
}

/* ---------------------------------------------------------------------- */
/* services, positions and key paths, for messages about a loaded conf */

const struct conf_service *conf_service_find(const struct conf_service *arr, size_t n,
					     const char *name, size_t name_len)
{
	for (size_t i = 0; i < n; i++)
		if (arr[i].name_len == name_len && !memcmp(arr[i].name, name, name_len))
			return &arr[i];
	return NULL;
}

void conf_key_pos(const struct conf *c, const char *const *keys, const size_t *lens, size_t n,
		  unsigned *line, unsigned *col)
{
	/* the position of the deepest key of the path that the file has */
	*line = 1;
	*col = 1;
	const struct toml_node *t = c->tree;
	for (size_t i = 0; i < n && t; i++) {
		const struct toml_kv *kv = toml_table_get(t, keys[i], lens[i]);
		if (!kv)
			break;
		/* a table: its header (as errors give it); a value: its key */
		*line = kv->value->type == TOML_TABLE ? kv->value->line : kv->line;
		*col = kv->value->type == TOML_TABLE ? kv->value->col : kv->col;
		t = kv->value;
	}
}

void conf_key_path(char *out, size_t cap, const char *const *keys, const size_t *lens, size_t n)
{
	size_t o = 0;
	if (!cap)
		return;
	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		char key[160];
		fmt_key(key, sizeof(key), keys[i], lens[i]);
		int m = snprintf(out + o, cap - o, "%s%s", i ? "." : "", key);
		if (m < 0 || (size_t)m >= cap - o)
			break;
		o += (size_t)m;
	}
}

/* ---------------------------------------------------------------------- */
/* schema listing */

struct swalk {
	void (*cb)(void *arg, const struct conf_key_info *k);
	void *arg;
	size_t n;
	char path[160];
};

static void schema_rows(struct swalk *s, const struct tdef *d, size_t plen)
{
	for (size_t i = 0; i < d->n_rows; i++) {
		const struct row *r = &d->rows[i];
		char def[96], values[96];
		struct conf_key_info k = { .path = s->path, .required = r->flags & RF_REQUIRED,
					   .reload = r->reload };
		snprintf(s->path + plen, sizeof(s->path) - plen, "%s%s", plen ? "." : "", r->key);
		size_t sub_len = strlen(s->path);
		def[0] = '\0';
		switch (r->type) {
		case R_STRING:
			k.type = r->doc_type ? r->doc_type : "string";
			if (r->def_str)
				snprintf(def, sizeof(def), "\"%s\"", r->def_str);
			break;
		case R_U64:
			k.type = "u64";
			if (r->def != U64_UNSET)
				snprintf(def, sizeof(def), "%llu", (unsigned long long)r->def);
			break;
		case R_BOOL:
			k.type = "bool";
			if (!(r->flags & RF_REQUIRED))
				snprintf(def, sizeof(def), "%s", r->def ? "true" : "false");
			break;
		case R_OPTBOOL:
			k.type = "bool";
			break;
		case R_ENUM:
			k.type = "enum";
			snprintf(def, sizeof(def), "\"%s\"", r->names[r->def]);
			values[0] = '\0';
			for (size_t j = 0; r->names[j]; j++) {
				size_t o = strlen(values);
				snprintf(values + o, sizeof(values) - o, "%s\"%s\"", j ? " | " : "", r->names[j]);
			}
			k.values = values;
			break;
		case R_TABLE:
		case R_MAP:
			k.type = "table";
			break;
		}
		if (r->def_doc)
			k.def = r->def_doc;
		else if (def[0])
			k.def = def;
		s->cb(s->arg, &k);
		s->n++;
		if (r->type == R_TABLE) {
			schema_rows(s, r->sub, sub_len);
		} else if (r->type == R_MAP) {
			snprintf(s->path + sub_len, sizeof(s->path) - sub_len, ".<name>");
			schema_rows(s, r->sub, strlen(s->path));
		}
		s->path[plen] = '\0';
	}
}

size_t conf_schema_walk(void (*cb)(void *arg, const struct conf_key_info *k), void *arg)
{
	struct swalk s = { .cb = cb, .arg = arg };
	s.path[0] = '\0';
	schema_rows(&s, &conf_root_def, 0);
	return s.n;
}

const char *conf_svc_type_name(enum conf_svc_type t)
{
	return (unsigned)t < N(svc_type_names) - 1 ? svc_type_names[t] : "?";
}

const char *conf_xport_type_name(enum conf_xport_type t)
{
	return (unsigned)t < N(xport_type_names) - 1 ? xport_type_names[t] : "?";
}

