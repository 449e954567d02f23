/* sock: every socket syscall in one place. All fds are created
 * non-blocking and close-on-exec (SOCK_NONBLOCK|SOCK_CLOEXEC, accept4), so
 * no fd ever leaks into a child and no call here can block the loop. */
#include "sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "err.h"

enum { LISTEN_BACKLOG = 4096 }; /* the kernel caps it at net.core.somaxconn */

/* ---- parsing and formatting ---- */

/* Decimal digits only, value <= 65535. Leading zeros are fine ("0080"),
 * anything else (sign, space, empty) is not. */
static int parse_port(const char *s, size_t len, uint16_t *port)
{
	if (len == 0)
		return MR_EFORMAT;
	unsigned long v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return MR_EFORMAT;
		v = v * 10 + (unsigned long)(s[i] - '0');
		if (v > 65535)
			return MR_EFORMAT;
	}
	*port = (uint16_t)v;
	return 0;
}

int sock_split_host_port(const char *s, char *host, size_t hostcap, uint16_t *port)
{
	const char *colon = strrchr(s, ':');
	if (!colon)
		return MR_EFORMAT;
	uint16_t p;
	if (parse_port(colon + 1, strlen(colon + 1), &p) != 0)
		return MR_EFORMAT;

	const char *h = s;
	size_t hlen = (size_t)(colon - s);
	if (hlen > 0 && h[0] == '[') {
		/* "[v6]:port": the ']' must sit right before the last ':' */
		if (hlen < 2 || h[hlen - 1] != ']')
			return MR_EFORMAT;
		h++;
		hlen -= 2;
	}
	if (hlen == 0)
		return MR_EFORMAT;
	if (memchr(h, '[', hlen) || memchr(h, ']', hlen))
		return MR_EFORMAT;
	if (hlen >= hostcap)
		return MR_EFORMAT;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port = p;
	return 0;
}

int sock_addr_from_literal(const char *host, uint16_t port, struct sock_addr *addr)
{
	struct sock_addr a;
	memset(&a, 0, sizeof(a));

	struct sockaddr_in *in4 = (struct sockaddr_in *)&a.ss;
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(port);
		a.len = sizeof(*in4);
		*addr = a;
		return 0;
	}

	/* IPv6, with an optional numeric scope id after '%' */
	char buf[INET6_ADDRSTRLEN];
	const char *pct = strchr(host, '%');
	size_t alen = pct ? (size_t)(pct - host) : strlen(host);
	if (alen == 0 || alen >= sizeof(buf))
		return MR_EFORMAT;
	memcpy(buf, host, alen);
	buf[alen] = '\0';
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a.ss;
	if (inet_pton(AF_INET6, buf, &in6->sin6_addr) != 1)
		return MR_EFORMAT;
	if (pct) {
		const char *sc = pct + 1;
		size_t sl = strlen(sc);
		if (sl == 0 || sl > 10)
			return MR_EFORMAT;
		unsigned long long v = 0;
		for (size_t i = 0; i < sl; i++) {
			if (sc[i] < '0' || sc[i] > '9')
				return MR_EFORMAT;
			v = v * 10 + (unsigned long long)(sc[i] - '0');
		}
		if (v > UINT32_MAX)
			return MR_EFORMAT;
		in6->sin6_scope_id = (uint32_t)v;
	}
	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons(port);
	a.len = sizeof(*in6);
	*addr = a;
	return 0;
}

const char *sock_addr_str(const struct sock_addr *a, char *buf, size_t cap)
{
	if (cap == 0)
		return buf;
	char ip[INET6_ADDRSTRLEN];
	if (a->ss.ss_family == AF_INET && a->len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in4 = (const struct sockaddr_in *)&a->ss;
		if (!inet_ntop(AF_INET, &in4->sin_addr, ip, sizeof(ip)))
			snprintf(ip, sizeof(ip), "?");
		snprintf(buf, cap, "%s:%u", ip, (unsigned)ntohs(in4->sin_port));
	} else if (a->ss.ss_family == AF_INET6 && a->len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&a->ss;
		if (!inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip)))
			snprintf(ip, sizeof(ip), "?");
		if (in6->sin6_scope_id)
			snprintf(buf, cap, "[%s%%%u]:%u", ip, (unsigned)in6->sin6_scope_id,
				 (unsigned)ntohs(in6->sin6_port));
		else
			snprintf(buf, cap, "[%s]:%u", ip, (unsigned)ntohs(in6->sin6_port));
	} else {
		snprintf(buf, cap, "<family %d>", (int)a->ss.ss_family);
	}
	return buf;
}

uint16_t sock_addr_port(const struct sock_addr *a)
{
	if (a->ss.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
	if (a->ss.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
	return 0;
}

void sock_addr_set_port(struct sock_addr *a, uint16_t port)
{
	if (a->ss.ss_family == AF_INET)
		((struct sockaddr_in *)&a->ss)->sin_port = htons(port);
	else if (a->ss.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&a->ss)->sin6_port = htons(port);
}

bool sock_addr_equal(const struct sock_addr *a, const struct sock_addr *b)
{
	if (a->ss.ss_family != b->ss.ss_family)
		return false;
	if (a->ss.ss_family == AF_INET) {
		const struct sockaddr_in *x = (const struct sockaddr_in *)&a->ss;
		const struct sockaddr_in *y = (const struct sockaddr_in *)&b->ss;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)&a->ss;
		const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)&b->ss;
		return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
	}
	return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

/* ---- sockets ---- */

/* Closes fd keeping errno, returns -saved_errno. */
static int fail_close(int fd)
{
	int e = errno;
	close(fd);
	return -e;
}

int sock_listen_tcp(const struct sock_addr *a)
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

int sock_accept(int lfd, struct sock_addr *peer)
{
	for (;;) {
		struct sock_addr tmp;
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

int sock_connect_start(const struct sock_addr *a)
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

int sock_bind_udp(const struct sock_addr *a)
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

int sock_local_addr(int fd, struct sock_addr *a)
{
	a->len = sizeof(a->ss);
	if (getsockname(fd, (struct sockaddr *)&a->ss, &a->len) != 0)
		return -errno;
	return 0;
}

int sock_peer_addr(int fd, struct sock_addr *a)
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
