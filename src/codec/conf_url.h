/* conf_url: absolute URL parsing as rathole's url crate (WHATWG URL
 * Standard) does it, for client.transport.tcp.proxy (protocol.md#p-proxy, protocol.md#p-config-transport): only
 * what decides "does it parse" and what the proxy dialer needs (scheme,
 * credentials, host, port). Pure: no I/O, no resolver.
 *
 * Ownership: conf_url_parse() fills a caller's struct conf_url whose
 * strings it owns; conf_url_free() frees them (not the struct). The conf
 * schema (codec/conf.h) keeps one in struct conf_tcp for the proxy key and
 * frees it with the conf. */
#ifndef MOLERAT_CONF_URL_H
#define MOLERAT_CONF_URL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
				       * (http://h:80): rathole then panics (protocol.md#q12) */
	uint16_t port;                /* valid when has_port */
};

/* Parses len bytes (not NUL-terminated; NUL allowed) as an absolute URL the
 * way rathole's url crate does (WHATWG URL Standard; international domain
 * names are kept as written instead of being converted to punycode).
 * Returns 0 with *u filled (free it with conf_url_free), MR_EFORMAT with
 * *why set to a static reason ("relative URL without a base", "empty host",
 * "invalid port number", ...), or -ENOMEM. */
int conf_url_parse(const char *s, size_t len, struct conf_url *u, const char **why);
/* Frees the strings of u (not u itself) and zeroes it. NULL-safe. */
void conf_url_free(struct conf_url *u);

#endif
