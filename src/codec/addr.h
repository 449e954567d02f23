/* addr: socket addresses as values: "host:port" splitting, IP literals,
 * formatting and comparison. Pure (no socket is opened, no resolver is
 * asked), so the config, the wire codec and the fuzz targets use it without
 * the socket layer (base/sock.h, which takes a struct addr to bind or
 * connect).
 *
 * Ownership: a struct addr is a plain value; nothing here allocates. */
#ifndef MOLERAT_ADDR_H
#define MOLERAT_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* A resolved address. */
struct addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

/* Splits "host:port" at the LAST ':' (protocol.md#p-proxy, protocol.md#q11); strips [] around an
 * IPv6 host ("[::1]:80" gives "::1"; "::1:80" also gives "::1", as rathole's
 * resolver does). host gets a NUL-terminated copy (hostcap bytes at most).
 * The port is decimal digits only (leading zeros allowed, no sign, no
 * spaces), 0..65535. Returns 0, or MR_EFORMAT (no ':', empty or non-numeric
 * port, port > 65535, empty host or "[]", a '[' without its closing ']'
 * right before the ':', brackets anywhere else, host too long for hostcap).
 * host and port are untouched on failure. */
int addr_split_host_port(const char *s, char *host, size_t hostcap, uint16_t *port);
/* Parses a numeric IPv4/IPv6 literal (no brackets) plus port into addr.
 * IPv4 is the strict dotted quad ("127.1" and "0x7f.0.0.1" are not
 * literals, as in Rust's parser); IPv6 may carry a numeric scope id
 * ("fe80::1%2"). Returns 0, or MR_EFORMAT when host is not a literal. */
int addr_from_literal(const char *host, uint16_t port, struct addr *addr);
/* "1.2.3.4:5" or "[::1]:5" ("[fe80::1%2]:5" with a scope id) into buf
 * (at least ADDR_STRLEN bytes; a shorter buffer gets a truncated
 * string). An address of another family gives "<family N>". Returns buf. */
const char *addr_str(const struct addr *a, char *buf, size_t cap);
enum { ADDR_STRLEN = 64 };

/* The port of an AF_INET/AF_INET6 address (host order), 0 otherwise. */
uint16_t addr_port(const struct addr *a);
/* Sets the port of an AF_INET/AF_INET6 address (no-op for others). */
void addr_set_port(struct addr *a, uint16_t port);
/* True when both hold the same family, address, port (and IPv6 scope). */
bool addr_equal(const struct addr *a, const struct addr *b);

#endif
