/* mrbench: connection helpers for bench/run. Not part of molerat; bench/run
 * compiles it with cc into its temporary directory at run time.
 *
 *   mrbench echo
 *       TCP and UDP echo server on 127.0.0.1, both on the same ephemeral
 *       port. Prints "port N" on stdout, then echoes until stdin reaches EOF
 *       or a signal ends it. TCP bytes that a socket's send buffer does not
 *       take at once are kept and sent when it drains; that connection is not
 *       read meanwhile (backpressure, nothing dropped).
 *   mrbench lat HOST PORT N TIMEOUT_MS
 *       N sequential short connections. For each: connect, send 1 byte, wait
 *       for 1 byte back, close. The time from before socket() to the byte
 *       back is recorded. Prints one JSON line with the percentiles (us).
 *   mrbench hold HOST PORT N BATCH TIMEOUT_MS [MSG_BYTES]
 *       Opens N connections, at most BATCH being set up at once; each sends
 *       a message of MSG_BYTES (default 1) and counts as held once all of it
 *       has come back (byte for byte as sent). Prints one JSON line when
 *       every connection is held or failed (or at the deadline), then keeps
 *       them open. Each "check" line on stdin prints a JSON line with how
 *       many held connections are still open and quiet; EOF on stdin closes
 *       everything and exits.
 *   mrbench bare a VISITOR_PORT POOL_PORT N [spin]
 *   mrbench bare b POOL_PORT SERVICE_PORT N [spin]
 *       A floor for "lat" through a tunnel: the least work two processes of
 *       a tunnel's shape can do for N sequential visitors (see bare_main).
 *       Start b, then a; a prints "ready" once its pool is connected and it
 *       listens. Each exits after N visitors (or at the first error).
 *
 * Every mode raises its own RLIMIT_NOFILE soft limit as far as it can. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	/* Root may raise the hard limit too; try a generous value first. */
	struct rlimit want = { 1048576, 1048576 };
	if (rl.rlim_max < want.rlim_max && setrlimit(RLIMIT_NOFILE, &want) == 0)
		return;
	rl.rlim_cur = rl.rlim_max;
	(void)setrlimit(RLIMIT_NOFILE, &rl);
}

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int parse_addr(const char *host, const char *port, struct sockaddr_in *sa)
{
	char *end;
	long p = strtol(port, &end, 10);
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	if (*end != '\0' || p <= 0 || p > 65535 || inet_pton(AF_INET, host, &sa->sin_addr) != 1) {
		fprintf(stderr, "mrbench: bad address %s:%s\n", host, port);
		return -1;
	}
	sa->sin_port = htons((uint16_t)p);
	return 0;
}

static long parse_num(const char *s, const char *what)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (*end != '\0' || v <= 0) {
		fprintf(stderr, "mrbench: bad %s '%s'\n", what, s);
		exit(2);
	}
	return v;
}

/* ---- echo ---- */

/* Bytes a TCP connection's send buffer did not take yet, by fd. */
struct echo_pend {
	unsigned char *buf;
	size_t off, len;
};

static struct echo_pend *echo_pend;
static size_t echo_npend;

static struct echo_pend *echo_pend_of(int fd)
{
	if ((size_t)fd >= echo_npend) {
		size_t n = echo_npend ? echo_npend : 1024;
		while (n <= (size_t)fd)
			n *= 2;
		struct echo_pend *p = realloc(echo_pend, n * sizeof(*p));
		if (!p)
			return NULL;
		memset(p + echo_npend, 0, (n - echo_npend) * sizeof(*p));
		echo_pend = p;
		echo_npend = n;
	}
	return &echo_pend[fd];
}

static void echo_close(int fd)
{
	if ((size_t)fd < echo_npend) {
		free(echo_pend[fd].buf);
		memset(&echo_pend[fd], 0, sizeof(echo_pend[fd]));
	}
	close(fd);
}

/* Echoes what a TCP connection sent; what its send buffer does not take
 * waits (EPOLLOUT instead of EPOLLIN until it is gone). */
static void echo_tcp(int ep, int fd, unsigned char *buf, size_t cap)
{
	struct echo_pend *p = (size_t)fd < echo_npend ? &echo_pend[fd] : NULL;
	const unsigned char *out;
	size_t len;
	if (p && p->len) {
		out = p->buf + p->off;
		len = p->len;
	} else {
		ssize_t r = read(fd, buf, cap);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
			echo_close(fd);
			return;
		}
		if (r < 0)
			return;
		out = buf;
		len = (size_t)r;
	}
	ssize_t w = write(fd, out, len);
	if (w < 0 && errno != EAGAIN && errno != EINTR) {
		echo_close(fd);
		return;
	}
	size_t left = len - (size_t)(w > 0 ? w : 0);
	if (p && p->len) {
		p->off += len - left;
		p->len = left;
		if (left == 0) {
			free(p->buf);
			p->buf = NULL;
			p->off = 0;
			struct epoll_event ev = { .events = EPOLLIN };
			ev.data.fd = fd;
			epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
		}
	} else if (left > 0) {
		if (!(p = echo_pend_of(fd)) || !(p->buf = malloc(left))) {
			perror("mrbench echo: pending bytes");
			echo_close(fd);
			return;
		}
		memcpy(p->buf, out + (len - left), left);
		p->off = 0;
		p->len = left;
		struct epoll_event ev = { .events = EPOLLOUT };
		ev.data.fd = fd;
		epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
	}
}

static int echo_main(void)
{
	int lfd = -1, ufd = -1;
	uint16_t port = 0;
	for (int tries = 0; tries < 100 && ufd < 0; tries++) {
		struct sockaddr_in sa = { .sin_family = AF_INET };
		socklen_t sl = sizeof(sa);
		int one = 1;
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (lfd < 0)
			return perror("mrbench: socket"), 1;
		setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 4096) != 0 ||
		    getsockname(lfd, (struct sockaddr *)&sa, &sl) != 0)
			return perror("mrbench: tcp listen"), 1;
		port = ntohs(sa.sin_port);
		ufd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (ufd < 0)
			return perror("mrbench: socket"), 1;
		if (bind(ufd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
			close(ufd);
			close(lfd);
			ufd = lfd = -1;
		}
	}
	if (ufd < 0) {
		fprintf(stderr, "mrbench: no port free for both tcp and udp\n");
		return 1;
	}
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN };
	ev.data.fd = lfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	ev.data.fd = ufd;
	epoll_ctl(ep, EPOLL_CTL_ADD, ufd, &ev);
	ev.data.fd = 0;
	epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);
	printf("port %u\n", (unsigned)port);
	fflush(stdout);

	static unsigned char buf[65536];
	struct epoll_event evs[256];
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return perror("mrbench: epoll_wait"), 1;
		}
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == 0) {
				ssize_t r = read(0, buf, sizeof(buf));
				if (r <= 0)
					return 0;
			} else if (fd == lfd) {
				for (;;) {
					int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
					if (c < 0) {
						if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
							perror("mrbench echo: accept");
						break;
					}
					struct epoll_event cev = { .events = EPOLLIN };
					cev.data.fd = c;
					epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
				}
			} else if (fd == ufd) {
				for (;;) {
					struct sockaddr_storage from;
					socklen_t fl = sizeof(from);
					ssize_t r = recvfrom(ufd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
					if (r < 0)
						break;
					(void)sendto(ufd, buf, (size_t)r, 0, (struct sockaddr *)&from, fl);
				}
			} else {
				echo_tcp(ep, fd, buf, sizeof(buf));
			}
		}
	}
}

/* ---- lat ---- */

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array. */
static int64_t pct(const int64_t *v, long n, double p)
{
	long k = (long)((p / 100.0) * (double)n + 0.999999);
	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return v[k - 1];
}

static int lat_main(int argc, char **argv)
{
	if (argc != 6)
		return fprintf(stderr, "usage: mrbench lat HOST PORT N TIMEOUT_MS\n"), 2;
	struct sockaddr_in sa;
	if (parse_addr(argv[2], argv[3], &sa) != 0)
		return 2;
	long n = parse_num(argv[4], "count");
	int tmo = (int)parse_num(argv[5], "timeout");
	int64_t *v = calloc((size_t)n, sizeof(*v));
	long ok = 0, fail = 0;
	char first_err[128] = "";
	for (long i = 0; i < n; i++) {
		int64_t t0 = now_us();
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		const char *err = NULL;
		int one = 1;
		char c = 'x';
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		struct timeval tv = { .tv_sec = tmo / 1000, .tv_usec = (tmo % 1000) * 1000 };
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		int e = 0;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
			e = errno;
			err = "connect";
		} else {
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			if (write(fd, &c, 1) != 1) {
				e = errno;
				err = "write";
			} else if (poll(&pfd, 1, tmo) != 1) {
				err = "timeout waiting for the echo";
			} else if (read(fd, &c, 1) != 1) {
				e = errno;
				err = "read (closed before the echo)";
			}
		}
		int64_t t1 = now_us();
		close(fd);
		if (err) {
			if (!first_err[0])
				snprintf(first_err, sizeof(first_err), "%s%s%s", err, e ? ": " : "", e ? strerror(e) : "");
			fail++;
		} else {
			v[ok++] = t1 - t0;
		}
	}
	qsort(v, (size_t)ok, sizeof(*v), cmp_i64);
	double sum = 0;
	for (long i = 0; i < ok; i++)
		sum += (double)v[i];
	printf("{\"n\": %ld, \"ok\": %ld, \"fail\": %ld, \"first_error\": \"%s\"", n, ok, fail, first_err);
	if (ok > 0)
		printf(", \"p50_us\": %lld, \"p90_us\": %lld, \"p99_us\": %lld, \"max_us\": %lld, \"mean_us\": %.1f",
		       (long long)pct(v, ok, 50), (long long)pct(v, ok, 90), (long long)pct(v, ok, 99),
		       (long long)v[ok - 1], sum / (double)ok);
	printf("}\n");
	free(v);
	return fail == 0 ? 0 : 1;
}

/* ---- hold ---- */

enum hold_state { H_IDLE = 0, H_CONNECTING, H_WAIT_ECHO, H_HELD, H_FAILED };

struct hold_conn {
	int fd;
	enum hold_state st;
	unsigned ev;         /* the epoll events registered */
	size_t sent, got;    /* bytes of the message sent, and echoed back */
};

static int hold_main(int argc, char **argv)
{
	if (argc != 7 && argc != 8)
		return fprintf(stderr, "usage: mrbench hold HOST PORT N BATCH TIMEOUT_MS [MSG_BYTES]\n"), 2;
	struct sockaddr_in sa;
	if (parse_addr(argv[2], argv[3], &sa) != 0)
		return 2;
	long n = parse_num(argv[4], "count");
	long batch = parse_num(argv[5], "batch");
	int64_t deadline = now_us() + parse_num(argv[6], "timeout") * 1000;
	size_t msg_len = argc == 8 ? (size_t)parse_num(argv[7], "message size") : 1;
	if (msg_len > (64u << 20))
		return fprintf(stderr, "mrbench: message size %zu over 64 MiB\n", msg_len), 2;
	/* the message: 'h' (what a 1-byte hold always sent), then a pattern
	 * that tells a byte's place apart (the echo is checked against it) */
	unsigned char *msg = malloc(msg_len);
	struct hold_conn *cs = calloc((size_t)n, sizeof(*cs));
	if (!msg || !cs)
		return perror("mrbench hold"), 1;
	for (size_t i = 0; i < msg_len; i++)
		msg[i] = i == 0 ? 'h' : (unsigned char)(i * 131 + i / 251);
	static unsigned char rbuf[65536];
	int ep = epoll_create1(EPOLL_CLOEXEC);
	long next = 0, inflight = 0, held = 0, failed = 0;
	char first_err[128] = "";
	int64_t t0 = now_us();

	while (held + failed < n && now_us() < deadline) {
		while (inflight < batch && next < n) {
			struct hold_conn *c = &cs[next];
			c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
			if (c->fd < 0) {
				if (!first_err[0])
					snprintf(first_err, sizeof(first_err), "socket: %s", strerror(errno));
				c->st = H_FAILED;
				failed++;
				next++;
				continue;
			}
			int r = connect(c->fd, (struct sockaddr *)&sa, sizeof(sa));
			if (r != 0 && errno != EINPROGRESS) {
				if (!first_err[0])
					snprintf(first_err, sizeof(first_err), "connect: %s", strerror(errno));
				close(c->fd);
				c->st = H_FAILED;
				failed++;
				next++;
				continue;
			}
			struct epoll_event ev = { .events = EPOLLOUT };
			ev.data.u64 = (uint64_t)next;
			epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
			c->ev = EPOLLOUT;
			c->st = H_CONNECTING;
			inflight++;
			next++;
		}
		struct epoll_event evs[256];
		int k = epoll_wait(ep, evs, 256, 100);
		for (int i = 0; i < k; i++) {
			struct hold_conn *c = &cs[evs[i].data.u64];
			const char *err = NULL;
			bool plain = false; /* err says it all: no errno, no "eof" */
			int e = 0;
			if (c->st == H_CONNECTING) {
				socklen_t el = sizeof(e);
				getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &el);
				if (e != 0)
					err = "connect";
				else
					c->st = H_WAIT_ECHO;
			} else if (c->st == H_WAIT_ECHO && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
				/* what has come back so far: never more than was sent */
				size_t want = c->sent - c->got;
				ssize_t r = read(c->fd, rbuf, want == 0 ? 1 : want < sizeof(rbuf) ? want : sizeof(rbuf));
				if (r > 0 && (size_t)r > want) {
					err = "more bytes back than were sent";
					plain = true;
				} else if (r > 0) {
					if (memcmp(rbuf, msg + c->got, (size_t)r) != 0)
						err = "echo differs from what was sent", plain = true;
					c->got += (size_t)r;
				} else if (r == 0) {
					err = "closed before the echo";
				} else if (errno != EAGAIN) {
					e = errno;
					err = "read";
				}
			}
			/* the message, as far as the send buffer takes it */
			if (!err && c->st == H_WAIT_ECHO && c->sent < msg_len &&
			    (c->sent == 0 || (evs[i].events & EPOLLOUT))) {
				ssize_t w = write(c->fd, msg + c->sent, msg_len - c->sent);
				if (w > 0) {
					c->sent += (size_t)w;
				} else if (w == 0 || errno != EAGAIN) {
					e = w < 0 ? errno : 0;
					err = "write";
				}
			}
			if (!err && c->st == H_WAIT_ECHO) {
				if (c->got == msg_len) {
					epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
					c->st = H_HELD;
					held++;
					inflight--;
				} else {
					/* the echo, and the send buffer while part of
					 * the message is still to go */
					unsigned want_ev = EPOLLIN | (c->sent < msg_len ? EPOLLOUT : 0);
					if (want_ev != c->ev) {
						struct epoll_event ev = { .events = want_ev };
						ev.data.u64 = evs[i].data.u64;
						epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
						c->ev = want_ev;
					}
				}
			}
			if (err) {
				if (!first_err[0])
					snprintf(first_err, sizeof(first_err), "%s%s%s", err, plain ? "" : ": ",
						 plain ? "" : e ? strerror(e) : "eof");
				close(c->fd);
				c->st = H_FAILED;
				failed++;
				inflight--;
			}
		}
	}
	printf("{\"want\": %ld, \"held\": %ld, \"failed\": %ld, \"pending\": %ld, \"ms\": %lld, \"first_error\": \"%s\"",
	       n, held, failed, n - held - failed, (long long)((now_us() - t0) / 1000), first_err);
	if (argc == 8)
		printf(", \"msg_bytes\": %zu", msg_len);
	printf("}\n");
	fflush(stdout);

	char line[64];
	while (fgets(line, sizeof(line), stdin)) {
		if (strncmp(line, "check", 5) != 0)
			continue;
		long alive = 0;
		for (long i = 0; i < n; i++) {
			if (cs[i].st != H_HELD)
				continue;
			struct pollfd p = { .fd = cs[i].fd, .events = POLLIN | POLLRDHUP };
			if (poll(&p, 1, 0) == 0)
				alive++;
		}
		printf("{\"alive\": %ld}\n", alive);
		fflush(stdout);
	}
	for (long i = 0; i < n; i++)
		if (cs[i].st == H_HELD || cs[i].st == H_CONNECTING || cs[i].st == H_WAIT_ECHO)
			close(cs[i].fd);
	free(cs);
	free(msg);
	return 0;
}

/* ---- bare ---- */

/* The floor of a new tunnelled connection on this machine: what a tunnel of
 * rathole's shape (visitor -> server -> data channel -> client -> service)
 * cannot avoid, with everything else taken away. "a" (the server) holds N
 * data channels connected in advance (no refill, no control channel); for
 * each visitor it reads the first bytes, sends a 4-byte header and those
 * bytes in one send on the next data channel, and copies the reply back.
 * "b" (the client) reads the header and bytes, connects the service,
 * forwards, and copies the reply back. Both serve one visitor at a time with
 * blocking calls and no event loop, so a wait costs one wake-up and nothing
 * more; with "spin" every wait is a busy loop instead (no sleeping at all,
 * at the price of a whole CPU each). Each message must fit in 64 bytes. */
enum { BARE_HDR = 4, BARE_MSG = 64 };

static int bare_listen(const struct sockaddr_in *sa)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	if (s < 0)
		return -1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(s, (const struct sockaddr *)sa, sizeof(*sa)) != 0 || listen(s, 4096) != 0) {
		close(s);
		return -1;
	}
	return s;
}

static int bare_connect(const struct sockaddr_in *sa)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	if (s < 0)
		return -1;
	if (connect(s, (const struct sockaddr *)sa, sizeof(*sa)) != 0) {
		close(s);
		return -1;
	}
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return s;
}

static int bare_accept(int l, int spin)
{
	int one = 1, c;
	do
		c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	while (c < 0 && spin && errno == EAGAIN);
	if (c >= 0)
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return c;
}

/* Reads until at least min bytes (at most cap) are in buf; returns the count,
 * or -1 on end of stream or error. */
static ssize_t bare_read(int fd, char *buf, size_t min, size_t cap, int spin)
{
	size_t got = 0;
	while (got < min) {
		ssize_t r = recv(fd, buf + got, cap - got, spin ? MSG_DONTWAIT : 0);
		if (r < 0 && spin && errno == EAGAIN)
			continue;
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

static int bare_main(int argc, char **argv)
{
	if (argc < 6 || argc > 7 || (strcmp(argv[2], "a") != 0 && strcmp(argv[2], "b") != 0) ||
	    (argc == 7 && strcmp(argv[6], "spin") != 0))
		return fprintf(stderr, "usage: mrbench bare a|b LISTEN_PORT CONNECT_PORT N [spin]\n"), 2;
	int is_a = argv[2][0] == 'a', spin = argc == 7;
	struct sockaddr_in lsa, csa;
	if (parse_addr("127.0.0.1", argv[3], &lsa) != 0 || parse_addr("127.0.0.1", argv[4], &csa) != 0)
		return 2;
	long n = parse_num(argv[5], "count");
	int *pool = calloc((size_t)n, sizeof(*pool));
	int l = -1;
	if (!pool)
		return perror("mrbench bare"), 1;
	if (is_a) {
		for (long i = 0; i < n; i++)
			if ((pool[i] = bare_connect(&csa)) < 0)
				return perror("mrbench bare a: connect to b"), 1;
	}
	if ((l = bare_listen(&lsa)) < 0)
		return perror("mrbench bare: listen"), 1;
	if (spin)
		fcntl(l, F_SETFL, O_NONBLOCK);
	if (!is_a) {
		for (long i = 0; i < n; i++)
			if ((pool[i] = bare_accept(l, spin)) < 0)
				return perror("mrbench bare b: accept from a"), 1;
	} else {
		printf("ready\n");
		fflush(stdout);
	}
	char buf[BARE_HDR + BARE_MSG];
	for (long i = 0; i < n; i++) {
		int dc = pool[i], peer;
		ssize_t len;
		if (is_a) {
			if ((peer = bare_accept(l, spin)) < 0)
				return perror("mrbench bare a: accept"), 1;
			memset(buf, 0, BARE_HDR);
			if ((len = bare_read(peer, buf + BARE_HDR, 1, BARE_MSG, spin)) < 0 ||
			    send(dc, buf, (size_t)len + BARE_HDR, 0) != len + BARE_HDR)
				return fprintf(stderr, "mrbench bare a: visitor %ld: no request\n", i), 1;
		} else {
			if ((len = bare_read(dc, buf, BARE_HDR + 1, sizeof(buf), spin)) < 0 ||
			    (peer = bare_connect(&csa)) < 0 ||
			    send(peer, buf + BARE_HDR, (size_t)len - BARE_HDR, 0) != len - BARE_HDR)
				return fprintf(stderr, "mrbench bare b: visitor %ld: no request\n", i), 1;
		}
		/* the reply: from the data channel to the visitor (a), from the
		 * service to the data channel (b) */
		int from = is_a ? dc : peer, to = is_a ? peer : dc;
		if ((len = bare_read(from, buf, 1, BARE_MSG, spin)) < 0 || send(to, buf, (size_t)len, 0) != len)
			return fprintf(stderr, "mrbench bare %s: visitor %ld: no reply\n", argv[2], i), 1;
		close(peer);
		close(dc);
	}
	close(l);
	free(pool);
	return 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	if (argc >= 2 && strcmp(argv[1], "echo") == 0)
		return echo_main();
	if (argc >= 2 && strcmp(argv[1], "lat") == 0)
		return lat_main(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "hold") == 0)
		return hold_main(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "bare") == 0)
		return bare_main(argc, argv);
	fprintf(stderr, "usage: mrbench echo | lat HOST PORT N TIMEOUT_MS | hold HOST PORT N BATCH TIMEOUT_MS [MSG_BYTES]"
		" | bare a|b LISTEN_PORT CONNECT_PORT N [spin]\n");
	return 2;
}
