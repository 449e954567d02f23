/* sock: every socket syscall in one place. All fds are non-blocking and
 * close-on-exec. Returns are fds (>= 0) or -errno. */
#ifndef MOLERAT_SOCK_H
#define MOLERAT_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "codec/addr.h"

/* TCP listener: SO_REUSEADDR, backlog 1024 (as tokio/mio); IPV6_V6ONLY is
 * left at the system default. Returns the listening fd or -errno. */
int sock_listen_tcp(const struct addr *a);
/* accept4 non-blocking, cloexec. -EAGAIN when no connection is waiting.
 * EINTR and ECONNABORTED (a connection reset while queued) are retried
 * inside; other errors (-EMFILE, -ENFILE, -ENOBUFS, ...) are returned.
 * peer may be NULL. */
int sock_accept(int lfd, struct addr *peer);
/* Starts a non-blocking connect: fd on success or in progress (wait for
 * writability, then call sock_connect_result), or -errno when the attempt
 * failed at once (the socket is then closed). */
int sock_connect_start(const struct addr *a);
/* After the fd became writable: 0 if connected, -EAGAIN if the connect is
 * still in progress (a spurious wake-up: keep waiting), else the connect's
 * -errno (SO_ERROR, e.g. -ECONNREFUSED). Does not close fd. */
int sock_connect_result(int fd);
enum { SOCK_UDP_BUF = 4 << 20 };   /* SO_RCVBUF / SO_SNDBUF asked for UDP sockets */
/* UDP socket bound to a (the server's service socket, the client's per-visitor
 * sockets), with SOCK_UDP_BUF buffers; no
 * SO_REUSEADDR (as tokio). Returns the fd or -errno. */
int sock_bind_udp(const struct addr *a);
/* The local address of fd. Returns 0 or -errno. */
int sock_local_addr(int fd, struct addr *a);
/* The peer address of a connected fd. Returns 0 or -errno (-ENOTCONN). */
int sock_peer_addr(int fd, struct addr *a);

/* TCP_NODELAY on (on != 0) or off. Returns 0 or -errno. */
int sock_set_nodelay(int fd, int on);
/* SO_KEEPALIVE=1, TCP_KEEPIDLE=idle_secs, TCP_KEEPINTVL=interval_secs
 * (protocol.md#p-transport-common); TCP_KEEPCNT is not touched. Every option is attempted; returns 0
 * or the first failure's -errno (-EINVAL for 0 or values the kernel
 * refuses, > 32767 on Linux). The caller only logs a failure. */
int sock_set_keepalive(int fd, unsigned idle_secs, unsigned interval_secs);

/* Bytes received on fd and not read yet (FIONREAD), or -errno. */
long sock_unread(int fd);

/* TCP_USER_TIMEOUT: how long sent data may stay unacknowledged (and, with
 * keepalive, how long probes may go unanswered) before the kernel drops the
 * connection; 0 = the system's default (minutes of retransmissions).
 * Returns 0 or -errno. */
int sock_set_user_timeout(int fd, unsigned ms);

/* Raises RLIMIT_NOFILE's soft limit to the hard limit (protocol.md#p-startup); returns
 * the new soft limit (capped at LONG_MAX), or -errno (the soft limit is
 * then unchanged; the caller ignores the error, as rathole does). When the
 * hard limit is unlimited, the soft limit goes to /proc/sys/fs/nr_open. */
long sock_raise_nofile(void);

#endif
