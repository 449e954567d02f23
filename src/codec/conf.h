/* conf: rathole's configuration schema (spec §8) over the toml tree.
 *
 * TOML text -> toml tree -> schema table (one declarative row per key:
 * name, type, default, bounds, validator, reload class) -> an immutable
 * struct conf. Validation follows spec §8.7 in order; the first failure
 * wins. Errors carry file:line:col, the key path and what to do.
 *
 * Ownership: conf_load*() returns a struct conf the caller frees with
 * conf_free(); every string in it is owned by the conf. A conf is never
 * modified after load, so the running instance and a reload can hold two
 * and compare them (conf_diff). */
#ifndef MOLERAT_CONF_H
#define MOLERAT_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum conf_svc_type { SVC_TCP = 0, SVC_UDP };
enum conf_xport_type { XPORT_TCP = 0, XPORT_TLS, XPORT_NOISE, XPORT_WEBSOCKET };
enum conf_mode { MODE_AUTO = 0, MODE_SERVER, MODE_CLIENT };

/* A URL split as rathole's url crate (WHATWG URL Standard) does; see
 * conf_url_parse(). Every string is owned by the struct. */
struct conf_url {
	char *scheme;                 /* lower case: "socks5", "http", ... */
	char *username;               /* percent-encoded as in the URL; "" when none */
	char *password;               /* percent-encoded; NULL when none */
	char *host;                   /* NULL when the URL has no host; a domain of a
				       * special scheme (http) lower-cased, an IPv4 in
				       * dotted form, an IPv6 in brackets ("[::1]"),
				       * as url::Url::host_str() gives it */
	bool has_port;                /* false when absent or the scheme's default
				       * (http://h:80): rathole then panics (Q12) */
	uint16_t port;                /* valid when has_port */
};

struct conf_tcp {
	bool nodelay;                 /* default true */
	uint64_t keepalive_secs;      /* default 20 */
	uint64_t keepalive_interval;  /* default 8 */
	char *proxy;                  /* NULL or "socks5://..." / "http://..." */
	struct conf_url proxy_url;    /* proxy parsed (all NULL/0 when proxy is
				       * NULL); scheme is "socks5" or "http" */
};

struct conf_tls {
	bool present;                 /* the [*.transport.tls] table exists */
	char *hostname;               /* NULL when unset */
	char *trusted_root;
	char *pkcs12;
	char *pkcs12_password;
};

struct conf_noise {
	bool present;
	char *pattern;                /* default "Noise_NK_25519_ChaChaPoly_BLAKE2s" */
	char *local_private_key;      /* base64 as written, or NULL */
	char *remote_public_key;
};

struct conf_websocket {
	bool present;
	bool tls;                     /* required when present */
};

struct conf_transport {
	enum conf_xport_type type;    /* XPORT_TCP when the table is absent */
	struct conf_tcp tcp;
	struct conf_tls tls;
	struct conf_noise noise;
	struct conf_websocket websocket;
};

struct conf_service {
	char *name;                   /* the table key, as written after unquoting */
	size_t name_len;              /* names may contain NUL */
	enum conf_svc_type type;
	char *token;                  /* after defaults: never NULL */
	size_t token_len;             /* tokens may contain NUL: hash token_len bytes */
	int nodelay;                  /* -1 unset, 0, 1 */
	/* server side */
	char *bind_addr;
	/* client side */
	char *local_addr;
	uint64_t retry_interval;      /* after defaults (client) */
	unsigned line, col;           /* where the service table is defined */
};

struct conf_server {
	char *bind_addr;
	char *default_token;          /* NULL when unset */
	size_t default_token_len;
	uint64_t heartbeat_interval;  /* default 30; 0 disables */
	struct conf_transport transport;
	struct conf_service *services;
	size_t n_services;
};

struct conf_client {
	char *remote_addr;
	char *default_token;          /* NULL when unset */
	size_t default_token_len;
	uint64_t heartbeat_timeout;   /* default 40; 0 disables */
	uint64_t retry_interval;      /* default 1 */
	struct conf_transport transport;
	struct conf_service *services;
	size_t n_services;
};

struct toml_node;

struct conf {
	char *path;                   /* as given */
	struct conf_server *server;   /* NULL when [server] is absent */
	struct conf_client *client;   /* NULL when [client] is absent */
	struct toml_node *tree;       /* internal: the parsed file, kept for the
				       * positions conf_warnings() reports */
};

/* A user-facing error: "file:line:col: key.path: what is wrong; what to do". */
struct conf_error {
	char msg[512];
};

/* Reads and validates a file. NULL with *err filled on failure (the
 * message is complete and starts with the path, e.g.
 * "client.toml:12:5: client.services.nas: local_addr is required"). */
struct conf *conf_load_file(const char *path, struct conf_error *err);
/* The same over a buffer; path is used only in messages. */
struct conf *conf_load_buffer(const char *path, const char *text, size_t len, struct conf_error *err);
/* Frees everything, wiping secrets (tokens, pkcs12_password,
 * local_private_key). NULL-safe. */
void conf_free(struct conf *c);

/* Run mode from flags and file (spec §8.8). Returns MODE_SERVER or
 * MODE_CLIENT, or MODE_AUTO with *err filled when it cannot be decided
 * (both sections and no flag; the chosen section missing). */
enum conf_mode conf_pick_mode(const struct conf *c, enum conf_mode flag, struct conf_error *err);

/* Warnings beyond rathole's rules (a key file that does not exist, an
 * unusable noise key, a proxy without a port...) and the problems rathole
 * only finds at instance start (Q14) or by panicking (Q15): one line each,
 * "FILE:LINE:COL: key.path: what; what to do", passed to warn() (which may
 * be NULL to only count). mode MODE_SERVER / MODE_CLIENT checks that
 * section only, MODE_AUTO every section present; the cross-section checks
 * (heartbeat timeout vs interval, a service's type or token differing)
 * run whenever both sections are present. Never prints secrets. Reads the
 * file system (access(2) on key files). Returns how many. Used by
 * `molerat check` and at start. */
size_t conf_warnings(const struct conf *c, enum conf_mode mode,
		     void (*warn)(void *arg, const char *line), void *arg);

/* Settings this build accepts in the file (rathole does) but cannot honour
 * yet: a transport other than tcp (tls, noise, websocket), a client's
 * [client.transport.tcp] proxy. One line each, "FILE:LINE:COL: key.path:
 * what; what to do", passed to fail() (NULL to only count), for the
 * section(s) mode selects as in conf_warnings. A caller treats any as an
 * error: `molerat check` and a start both refuse such a file, so a key
 * molerat accepts is a key it acts on. Returns how many. */
size_t conf_unsupported(const struct conf *c, enum conf_mode mode,
			void (*fail)(void *arg, const char *line), void *arg);

/* Hot reload (spec §9.2): compares two validated configs.
 * CONF_SAME: nothing to do. CONF_GENERAL: a section was added or removed,
 * or a key outside the services changed (reload class general): restart
 * the instance; the lists are empty. CONF_SERVICES: only services changed;
 * apply the *_deleted lists (names gone) BEFORE the *_added lists (services
 * new or changed in any validated field: replace them).
 * The arrays are owned by the diff (conf_diff_free); the service pointers
 * are borrowed from old_c (deleted) and new_c (added), which must outlive
 * their use. Returns 0, or -ENOMEM (*out is then empty). */
enum conf_change { CONF_SAME = 0, CONF_GENERAL, CONF_SERVICES };
struct conf_diff {
	enum conf_change change;
	/* with CONF_SERVICES: names (borrowed from old / new) */
	const struct conf_service **server_deleted; size_t n_server_deleted;
	const struct conf_service **server_added;   size_t n_server_added;   /* new or changed */
	const struct conf_service **client_deleted; size_t n_client_deleted;
	const struct conf_service **client_added;   size_t n_client_added;
};
int conf_diff(const struct conf *old_c, const struct conf *new_c, struct conf_diff *out);
/* Frees the arrays and zeroes *d. NULL-safe. */
void conf_diff_free(struct conf_diff *d);

/* Reload class of a key (spec §9.2): a hot key (anything inside
 * [*.services.NAME]) is applied by Delete/Add of that service; a general
 * key restarts the instance. */
enum conf_reload { CONF_RELOAD_GENERAL = 0, CONF_RELOAD_HOT };

/* One key of the schema, for documentation and `molerat check --keys`. */
struct conf_key_info {
	const char *path;             /* "client.services.<name>.local_addr" */
	const char *type;             /* "string", "u64", "bool", "enum", "table", "url" */
	const char *def;              /* default as TOML text, or NULL for none */
	const char *values;           /* enum: "\"tcp\" | \"udp\"", else NULL */
	bool required;
	enum conf_reload reload;
};
/* Calls cb once per key of the schema, depth first, in table order.
 * The info and its strings are valid during the call only. Returns the
 * number of keys. */
size_t conf_schema_walk(void (*cb)(void *arg, const struct conf_key_info *k), void *arg);

/* Parses len bytes (not NUL-terminated; NUL allowed) as an absolute URL the
 * way rathole's url crate does (WHATWG URL Standard; international domain
 * names are kept as written instead of being converted to punycode).
 * Returns 0 with *u filled (free it with conf_url_free), MR_EFORMAT with
 * *why set to a static reason ("relative URL without a base", "empty host",
 * "invalid port number", ...), or -ENOMEM. */
int conf_url_parse(const char *s, size_t len, struct conf_url *u, const char **why);
/* Frees the strings of u (not u itself) and zeroes it. NULL-safe. */
void conf_url_free(struct conf_url *u);

const char *conf_svc_type_name(enum conf_svc_type t);     /* "tcp" / "udp" */
const char *conf_xport_type_name(enum conf_xport_type t); /* "tcp", "tls", "noise", "websocket" */

#endif
