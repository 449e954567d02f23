/* sock: every socket syscall in one place. All fds are created
 * non-blocking and close-on-exec (SOCK_NONBLOCK|SOCK_CLOEXEC, accept4), so
 * no fd ever leaks into a child and no call here can block the loop. */
#include "base/sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "base/err.h"

enum { LISTEN_BACKLOG = 4096 }; /* the kernel caps it at net.core.somaxconn */

/* ---- sockets ---- */

/* Closes fd keeping errno, returns -saved_errno. */
static int fail_close(int fd)
{
	int e = errno;
	close(fd);
	return -e;
}

int sock_listen_tcp(const struct addr *a)
{
	int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0)
		return fail_close(fd);
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) != 0)
		return fail_close(fd);
	if (listen(fd, LISTEN_BACKLOG) != 0)
		return fail_close(fd);
	return fd;
}

int sock_accept(int lfd, struct addr *peer)
{
	for (;;) {
		struct addr tmp;
		tmp.len = sizeof(tmp.ss);
		int fd = accept4(lfd, (struct sockaddr *)&tmp.ss, &tmp.len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			if (peer)
				*peer = tmp;
			return fd;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EWOULDBLOCK)
			return -EAGAIN;
		return -errno;
	}
}

int sock_connect_start(const struct addr *a)
{
	int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) == 0)
		return fd;
	/* EINTR: a non-blocking connect carries on in the background */
	if (errno == EINPROGRESS || errno == EINTR)
		return fd;
	return fail_close(fd);
}

int sock_connect_result(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		return -errno;
	if (err != 0)
		return -err;
	/* no error pending: connected, or still in progress */
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0)
		return 0;
	if (errno == ENOTCONN)
		return -EAGAIN;
	return -errno;
}

int sock_bind_udp(const struct addr *a)
{
	int fd = socket(a->ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* a datagram relay needs room for bursts: the default (about 200 KiB,
	 * some 150 datagrams) overflows at high rates while the other side of
	 * the relay is being served. Limits, not allocations; the kernel caps
	 * them at net.core.{r,w}mem_max, and a refusal is harmless. */
	int sz = SOCK_UDP_BUF;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) != 0)
		return fail_close(fd);
	return fd;
}

int sock_local_addr(int fd, struct addr *a)
{
	a->len = sizeof(a->ss);
	if (getsockname(fd, (struct sockaddr *)&a->ss, &a->len) != 0)
		return -errno;
	return 0;
}

int sock_peer_addr(int fd, struct addr *a)
{
	a->len = sizeof(a->ss);
	if (getpeername(fd, (struct sockaddr *)&a->ss, &a->len) != 0)
		return -errno;
	return 0;
}

/* ---- options ---- */

int sock_set_nodelay(int fd, int on)
{
	int v = on ? 1 : 0;
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof(v)) != 0)
		return -errno;
	return 0;
}

static int set_int(int fd, int level, int name, unsigned value)
{
	if (value > INT_MAX)
		return -EINVAL;
	int v = (int)value;
	if (setsockopt(fd, level, name, &v, sizeof(v)) != 0)
		return -errno;
	return 0;
}

long sock_unread(int fd)
{
	int n = 0;
	return ioctl(fd, FIONREAD, &n) == 0 ? (long)n : -errno;
}

int sock_set_user_timeout(int fd, unsigned ms)
{
	return setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof(ms)) == 0 ? 0 : -errno;
}

int sock_set_keepalive(int fd, unsigned idle_secs, unsigned interval_secs)
{
	int r = set_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
	int r2 = set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, idle_secs);
	int r3 = set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, interval_secs);
	return r ? r : r2 ? r2 : r3;
}

/* /proc/sys/fs/nr_open: the most RLIMIT_NOFILE may be; 0 if unknown. */
static rlim_t read_nr_open(void)
{
	int fd = open("/proc/sys/fs/nr_open", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	char buf[32];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	char *end;
	unsigned long long v = strtoull(buf, &end, 10);
	if (end == buf)
		return 0;
	return (rlim_t)v;
}

long sock_raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return -errno;
	if (rl.rlim_cur != rl.rlim_max) {
		struct rlimit want = { rl.rlim_max, rl.rlim_max };
		if (setrlimit(RLIMIT_NOFILE, &want) == 0) {
			rl.rlim_cur = rl.rlim_max;
		} else {
			int e = errno;
			rlim_t nr = rl.rlim_max == RLIM_INFINITY ? read_nr_open() : 0;
			if (nr == 0 || nr <= rl.rlim_cur)
				return -e;
			want.rlim_cur = nr;
			if (setrlimit(RLIMIT_NOFILE, &want) != 0)
				return -errno;
			rl.rlim_cur = nr;
		}
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (rlim_t)LONG_MAX)
		return LONG_MAX;
	return (long)rl.rlim_cur;
}
