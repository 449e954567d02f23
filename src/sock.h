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
 * IPv6 host. host gets a NUL-terminated copy (hostcap bytes at most).
 * Returns 0, or MR_EFORMAT (no ':', empty or non-numeric port, port > 65535,
 * host too long). */
int sock_split_host_port(const char *s, char *host, size_t hostcap, uint16_t *port);
/* Parses a numeric IPv4/IPv6 literal (no brackets) plus port into addr.
 * Returns 0, or MR_EFORMAT when host is not a literal. */
int sock_addr_from_literal(const char *host, uint16_t port, struct sock_addr *addr);
/* "1.2.3.4:5" or "[::1]:5" into buf (at least 64 bytes). Returns buf. */
const char *sock_addr_str(const struct sock_addr *a, char *buf, size_t cap);
enum { SOCK_ADDR_STRLEN = 64 };

/* TCP listener: SO_REUSEADDR, backlog 1024 (as tokio/mio). */
int sock_listen_tcp(const struct sock_addr *a);
/* accept4 non-blocking, cloexec. -EAGAIN when no connection is waiting. */
int sock_accept(int lfd, struct sock_addr *peer);
/* Starts a non-blocking connect: fd on success or in progress. */
int sock_connect_start(const struct sock_addr *a);
/* After the fd became writable: 0 if connected, else -errno (SO_ERROR). */
int sock_connect_result(int fd);
/* UDP socket bound to a (for the server's service socket). */
int sock_bind_udp(const struct sock_addr *a);
/* The local address of fd. */
int sock_local_addr(int fd, struct sock_addr *a);

int sock_set_nodelay(int fd, int on);
int sock_set_keepalive(int fd, unsigned idle_secs, unsigned interval_secs);

/* Raises RLIMIT_NOFILE's soft limit to the hard limit; returns the new soft
 * limit (or -errno). */
long sock_raise_nofile(void);

#endif
