/* sock: every socket syscall in one place. All fds are non-blocking and
 * close-on-exec. Returns are fds (>= 0) or -errno. */
#ifndef MOLERAT_SOCK_H
#define MOLERAT_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* A resolved address. */
struct sock_addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

/* Splits "host:port" at the LAST ':' (spec §7.2, Q11); strips [] around an
 * IPv6 host ("[::1]:80" gives "::1"; "::1:80" also gives "::1", as rathole's
 * resolver does). host gets a NUL-terminated copy (hostcap bytes at most).
 * The port is decimal digits only (leading zeros allowed, no sign, no
 * spaces), 0..65535. Returns 0, or MR_EFORMAT (no ':', empty or non-numeric
 * port, port > 65535, empty host or "[]", a '[' without its closing ']'
 * right before the ':', brackets anywhere else, host too long for hostcap).
 * host and port are untouched on failure. */
int sock_split_host_port(const char *s, char *host, size_t hostcap, uint16_t *port);
/* Parses a numeric IPv4/IPv6 literal (no brackets) plus port into addr.
 * IPv4 is the strict dotted quad ("127.1" and "0x7f.0.0.1" are not
 * literals, as in Rust's parser); IPv6 may carry a numeric scope id
 * ("fe80::1%2"). Returns 0, or MR_EFORMAT when host is not a literal. */
int sock_addr_from_literal(const char *host, uint16_t port, struct sock_addr *addr);
/* "1.2.3.4:5" or "[::1]:5" ("[fe80::1%2]:5" with a scope id) into buf
 * (at least SOCK_ADDR_STRLEN bytes; a shorter buffer gets a truncated
 * string). An address of another family gives "<family N>". Returns buf. */
const char *sock_addr_str(const struct sock_addr *a, char *buf, size_t cap);
enum { SOCK_ADDR_STRLEN = 64 };

/* The port of an AF_INET/AF_INET6 address (host order), 0 otherwise. */
uint16_t sock_addr_port(const struct sock_addr *a);
/* Sets the port of an AF_INET/AF_INET6 address (no-op for others). */
void sock_addr_set_port(struct sock_addr *a, uint16_t port);
/* True when both hold the same family, address, port (and IPv6 scope). */
bool sock_addr_equal(const struct sock_addr *a, const struct sock_addr *b);

/* TCP listener: SO_REUSEADDR, backlog 1024 (as tokio/mio); IPV6_V6ONLY is
 * left at the system default. Returns the listening fd or -errno. */
int sock_listen_tcp(const struct sock_addr *a);
/* accept4 non-blocking, cloexec. -EAGAIN when no connection is waiting.
 * EINTR and ECONNABORTED (a connection reset while queued) are retried
 * inside; other errors (-EMFILE, -ENFILE, -ENOBUFS, ...) are returned.
 * peer may be NULL. */
int sock_accept(int lfd, struct sock_addr *peer);
/* Starts a non-blocking connect: fd on success or in progress (wait for
 * writability, then call sock_connect_result), or -errno when the attempt
 * failed at once (the socket is then closed). */
int sock_connect_start(const struct sock_addr *a);
/* After the fd became writable: 0 if connected, -EAGAIN if the connect is
 * still in progress (a spurious wake-up: keep waiting), else the connect's
 * -errno (SO_ERROR, e.g. -ECONNREFUSED). Does not close fd. */
int sock_connect_result(int fd);
enum { SOCK_UDP_BUF = 4 << 20 };   /* SO_RCVBUF / SO_SNDBUF asked for UDP sockets */
/* UDP socket bound to a (the server's service socket, the client's per-visitor
 * sockets), with SOCK_UDP_BUF buffers; no
 * SO_REUSEADDR (as tokio). Returns the fd or -errno. */
int sock_bind_udp(const struct sock_addr *a);
/* The local address of fd. Returns 0 or -errno. */
int sock_local_addr(int fd, struct sock_addr *a);
/* The peer address of a connected fd. Returns 0 or -errno (-ENOTCONN). */
int sock_peer_addr(int fd, struct sock_addr *a);

/* TCP_NODELAY on (on != 0) or off. Returns 0 or -errno. */
int sock_set_nodelay(int fd, int on);
/* SO_KEEPALIVE=1, TCP_KEEPIDLE=idle_secs, TCP_KEEPINTVL=interval_secs (spec
 * §7.0); TCP_KEEPCNT is not touched. Every option is attempted; returns 0
 * or the first failure's -errno (-EINVAL for 0 or values the kernel
 * refuses, > 32767 on Linux). The caller only logs a failure. */
int sock_set_keepalive(int fd, unsigned idle_secs, unsigned interval_secs);

/* Raises RLIMIT_NOFILE's soft limit to the hard limit (spec §10.2); returns
 * the new soft limit (capped at LONG_MAX), or -errno (the soft limit is
 * then unchanged; the caller ignores the error, as rathole does). When the
 * hard limit is unlimited, the soft limit goes to /proc/sys/fs/nr_open. */
long sock_raise_nofile(void);

#endif
