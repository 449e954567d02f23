/* conf: rathole's configuration schema (protocol.md#p-config) over the toml tree.
 *
 * TOML text -> toml tree -> schema table (one declarative row per key:
 * name, type, default, bounds, validator, reload class) -> an immutable
 * struct conf. Validation follows protocol.md#p-config-validation in order; the first failure
 * wins. Errors carry file:line:col, the key path and what to do.
 *
 * Ownership: conf_load*() returns a struct conf the caller frees with
 * conf_free(); every string in it is owned by the conf. A conf is never
 * modified after load, so the running instance and a reload can hold two
 * and compare them (conf_diff, codec/conf_diff.h).
 *
 * Contract: pure code over the toml tree (no loop, no sockets); the one
 * file-system call is conf_load_file()'s read of the file. What a role
 * checks before it starts (warnings, settings this build cannot honour
 * yet, key files that cannot be read) is role/conf_check.h, which finds
 * the positions it reports through conf_key_pos(). The proxy URL parser is
 * codec/conf_url.h. */
#ifndef MOLERAT_CONF_H
#define MOLERAT_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/conf_url.h"

enum conf_svc_type { CONF_SVC_TCP = 0, CONF_SVC_UDP };
enum conf_xport_type { CONF_XPORT_TCP = 0, CONF_XPORT_TLS, CONF_XPORT_NOISE, CONF_XPORT_WEBSOCKET };
enum conf_mode { CONF_MODE_AUTO = 0, CONF_MODE_SERVER, CONF_MODE_CLIENT };

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
	enum conf_xport_type type;    /* CONF_XPORT_TCP when the table is absent */
	struct conf_tcp tcp;
	struct conf_tls tls;
	struct conf_noise noise;
	struct conf_websocket websocket;
};

/* [server.admin] / [client.admin] (molerat only): the admin HTTP endpoint
 * (docs/admin.md). Absent: no endpoint, nothing changes. */
struct conf_admin {
	bool present;                 /* the table exists */
	char *bind_addr;              /* required in the table: "IP:PORT" (an IP
				       * literal, or localhost) */
	char *token;                  /* bearer token; NULL when unset (allowed
				       * only on a loopback bind_addr) */
	size_t token_len;
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
	uint64_t half_close_timeout;  /* molerat only: default 60; 0 = wait for ever */
	struct conf_admin admin;      /* molerat only */
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
	uint64_t half_close_timeout;  /* molerat only: default 60; 0 = wait for ever */
	struct conf_admin admin;      /* molerat only */
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
				       * positions conf_key_pos() gives */
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

/* Run mode from flags and file (protocol.md#p-run-mode). Returns CONF_MODE_SERVER or
 * CONF_MODE_CLIENT, or CONF_MODE_AUTO with *err filled when it cannot be decided
 * (both sections and no flag; the chosen section missing). */
enum conf_mode conf_pick_mode(const struct conf *c, enum conf_mode flag, struct conf_error *err);

/* Reload class of a key (protocol.md#p-reload-diff): a hot key (anything inside
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

/* The service of arr[0..n) named name (name_len bytes: names may hold
 * NUL), or NULL. */
const struct conf_service *conf_service_find(const struct conf_service *arr, size_t n,
					     const char *name, size_t name_len);

/* For messages about a loaded conf ("FILE:LINE:COL: key.path: ..."), a key
 * path is keys[0..n), key i being lens[i] bytes (a service name may hold
 * NUL), e.g. { "client", "services", NAME, "token" }.
 * conf_key_pos: where the key path is in c's file: the position of its
 * deepest key the file has (a table: its header, as errors give it; a
 * value: its key), 1:1 when the file has none of it. */
void conf_key_pos(const struct conf *c, const char *const *keys, const size_t *lens, size_t n,
		  unsigned *line, unsigned *col);
/* Writes the key path as errors give it: the keys joined by '.', each bare
 * when it can be, else quoted as conf_quote() does (client.services."my
 * nas".token). A path too long for cap is cut. Always NUL-terminates out. */
void conf_key_path(char *out, size_t cap, const char *const *keys, const size_t *lens, size_t n);
/* Writes s (n bytes) as a TOML basic string, at most about max bytes of
 * content ("..." marks a cut; a UTF-8 sequence is not cut in two). Always
 * NUL-terminates out (empty when cap < 8). */
void conf_quote(char *out, size_t cap, const char *s, size_t n, size_t max);

/* Whether an admin bind_addr ("IP:PORT", "[IPv6]:PORT" or "localhost:PORT")
 * names a loopback address (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104,
 * localhost). False for anything else, a malformed value included. */
bool conf_admin_loopback(const char *bind_addr);

const char *conf_svc_type_name(enum conf_svc_type t);     /* "tcp" / "udp" */
const char *conf_xport_type_name(enum conf_xport_type t); /* "tcp", "tls", "noise", "websocket" */

#endif
