/* dial: connect to listeners on 127.0.0.1 / ::1, refused ports, several
 * addresses (pre-resolved, and from a fake DNS server in the same loop),
 * per-attempt timeouts against a listener whose accept queue is full, and
 * cancellation at every stage. Every loop run is bounded by a guard timer. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/dns.h"
#include "base/err.h"
#include "base/loop.h"
#include "base/sock.h"
#include "xport/dial.h"

/* ---- harness ---- */

struct result {
	int called;
	int fd;
	int err;
	bool has_peer;
	struct addr peer;
	struct loop *loop;
	bool stop;
	struct dial *cancel_other;  /* cancelled from inside this callback */
	struct dial **cancel_self;
};

static void on_dial(void *arg, int fd, int err, const struct addr *peer)
{
	struct result *r = arg;
	r->called++;
	r->fd = fd;
	r->err = err;
	r->has_peer = peer != NULL;
	if (peer)
		r->peer = *peer;
	if (fd >= 0)
		assert_int_equal(err, 0);
	else
		assert_true(err < 0);
	if (r->cancel_other)
		dial_cancel(r->cancel_other);
	if (r->cancel_self)
		dial_cancel(*r->cancel_self);
	if (r->stop)
		loop_stop(r->loop);
}

static void result_init(struct result *r, struct loop *loop, bool stop)
{
	memset(r, 0, sizeof(*r));
	r->fd = -2;
	r->loop = loop;
	r->stop = stop;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static int v6_available(void)
{
	int fd = socket(AF_INET6, SOCK_STREAM, 0);
	if (fd < 0)
		return 0;
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	int ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

/* A listener on lit:0; its address in *a. */
static int listener(const char *lit, struct addr *a)
{
	assert_int_equal(addr_from_literal(lit, 0, a), 0);
	int fd = sock_listen_tcp(a);
	assert_true(fd >= 0);
	assert_int_equal(sock_local_addr(fd, a), 0);
	return fd;
}

/* An address nothing listens on (bound, then closed). */
static struct addr closed_port(const char *lit)
{
	struct addr a;
	close(listener(lit, &a));
	return a;
}

static struct addr unix_nowhere(void)
{
	struct addr a;
	memset(&a, 0, sizeof(a));
	struct sockaddr_un *un = (struct sockaddr_un *)&a.ss;
	un->sun_family = AF_UNIX;
	strcpy(un->sun_path, "/nonexistent-molerat-test/sock");
	a.len = sizeof(*un);
	return a;
}

/* Accepts one connection (bounded wait); returns its fd. */
static int accept_one(int lfd)
{
	struct pollfd p = { .fd = lfd, .events = POLLIN };
	assert_int_equal(poll(&p, 1, 5000), 1);
	int fd = sock_accept(lfd, NULL);
	assert_true(fd >= 0);
	return fd;
}

/* A listener whose accept queue is full: the next connect to it hangs
 * (Linux drops the SYN). Returns false when this system does not do that. */
struct hang {
	int lfd;
	int fill[16];
	int nfill;
	struct addr a;
};

static bool hang_start(struct hang *h)
{
	memset(h, 0, sizeof(*h));
	assert_int_equal(addr_from_literal("127.0.0.1", 0, &h->a), 0);
	h->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(h->lfd >= 0);
	assert_int_equal(bind(h->lfd, (struct sockaddr *)&h->a.ss, h->a.len), 0);
	assert_int_equal(listen(h->lfd, 0), 0);
	assert_int_equal(sock_local_addr(h->lfd, &h->a), 0);
	while (h->nfill < 16) {
		int fd = sock_connect_start(&h->a);
		assert_true(fd >= 0);
		h->fill[h->nfill++] = fd;
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		if (poll(&p, 1, 200) == 0)
			return true; /* this one hangs: the queue is full */
	}
	return false;
}

static void hang_stop(struct hang *h)
{
	for (int i = 0; i < h->nfill; i++)
		close(h->fill[i]);
	close(h->lfd);
}

/* ---- a fake DNS server: A records 127.0.0.<ips[i]>, or NXDOMAIN ---- */

struct fake {
	int fd;
	struct io_watcher w;
	const uint8_t *ips;
	int nips;             /* 0: NXDOMAIN */
	int queries;
	char servers[64];
};

static void put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void on_fake(struct loop *loop, struct io_watcher *w, unsigned revents)
{
	struct fake *f = w->data;
	uint8_t q[512], out[1024];
	struct sockaddr_storage from;
	socklen_t fl = sizeof(from);
	ssize_t n = recvfrom(w->fd, q, sizeof(q), 0, (struct sockaddr *)&from, &fl);
	if (n < 12)
		return;
	f->queries++;
	size_t i = 12;
	while (i < (size_t)n && q[i] != 0)
		i += (size_t)q[i] + 1;
	if (i + 5 > (size_t)n)
		return;
	size_t o = i + 5;
	unsigned qtype = (unsigned)q[i + 1] << 8 | q[i + 2];
	memcpy(out, q, o);
	put16(out + 2, 0x8180 | (f->nips ? 0 : 3));
	put16(out + 4, 1);
	put16(out + 6, 0);
	put16(out + 8, 0);
	put16(out + 10, 0);
	if (f->nips && qtype == 1) {
		put16(out + 6, (unsigned)f->nips);
		for (int k = 0; k < f->nips; k++) {
			static const uint8_t rr[] = { 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0 };
			memcpy(out + o, rr, sizeof(rr));
			out[o + sizeof(rr)] = f->ips[k];
			o += sizeof(rr) + 1;
		}
	}
	sendto(w->fd, out, o, 0, (struct sockaddr *)&from, fl);
}

static struct dns *fake_start(struct fake *f, struct loop *loop, const uint8_t *ips, int nips)
{
	memset(f, 0, sizeof(*f));
	f->ips = ips;
	f->nips = nips;
	struct addr a;
	assert_int_equal(addr_from_literal("127.0.0.1", 0, &a), 0);
	f->fd = sock_bind_udp(&a);
	assert_true(f->fd >= 0);
	assert_int_equal(sock_local_addr(f->fd, &a), 0);
	snprintf(f->servers, sizeof(f->servers), "127.0.0.1:%u", (unsigned)addr_port(&a));
	loop_io_init(&f->w, on_fake, f);
	assert_int_equal(loop_io_start(loop, &f->w, f->fd, LOOP_READ), 0);
	struct dns_opts o = { .servers = f->servers, .timeout_ms = 2000, .tries = 1, .no_hosts_file = true };
	struct dns *d = NULL;
	assert_int_equal(dns_new_opts(loop, &o, &d), 0);
	return d;
}

static void fake_stop(struct fake *f, struct loop *loop, struct dns *d)
{
	dns_free(d);
	loop_io_stop(loop, &f->w);
	close(f->fd);
}

/* ---- fixtures ---- */

struct ctx {
	struct loop *loop;
	struct dns *dns;
	int fds_before;
};

static int setup(void **state)
{
	static struct ctx c;
	memset(&c, 0, sizeof(c));
	if (loop_new(&c.loop) != 0 || dns_new(c.loop, &c.dns) != 0)
		return -1;
	c.fds_before = count_fds();
	*state = &c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	/* every test closes what it got: nothing of dial's may stay open */
	int now = count_fds();
	dns_free(c->dns);
	loop_free(c->loop);
	if (now != c->fds_before) {
		fprintf(stderr, "fd leak: %d open before, %d after\n", c->fds_before, now);
		return -1;
	}
	return 0;
}

/* ---- tests ---- */

/* Dials "<host>:<port of a listener on lit>". */
static void dial_ok(struct ctx *c, const char *lit, const char *host)
{
	struct addr la;
	int lfd = listener(lit, &la);
	char addr[128];
	snprintf(addr, sizeof(addr), "%s:%u", host, (unsigned)addr_port(&la));
	struct result r;
	result_init(&r, c->loop, true);
	int err = 1;
	struct dial *d = dial_start(c->loop, c->dns, addr, 2000, on_dial, &r, &err);
	assert_non_null(d);
	assert_int_equal(r.called, 0); /* never from inside dial_start */
	assert_int_equal(run_for(c->loop, 5000), 0);
	assert_int_equal(r.called, 1);
	assert_int_equal(r.err, 0);
	assert_true(r.fd >= 0);
	assert_true(r.has_peer);
	assert_true(addr_equal(&r.peer, &la));
	assert_true(fcntl(r.fd, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(r.fd, F_GETFD) & FD_CLOEXEC);
	struct addr pa;
	assert_int_equal(sock_peer_addr(r.fd, &pa), 0);
	assert_true(addr_equal(&pa, &la));
	/* the listener really has it */
	int afd = accept_one(lfd);
	assert_int_equal(write(r.fd, "hi", 2), 2);
	char buf[4];
	assert_int_equal(poll(&(struct pollfd){ .fd = afd, .events = POLLIN }, 1, 5000), 1);
	assert_int_equal(read(afd, buf, sizeof(buf)), 2);
	close(afd);
	close(r.fd);
	close(lfd);
}

static void test_dial_v4(void **state)
{
	dial_ok(*state, "127.0.0.1", "127.0.0.1");
}

static void test_dial_v6(void **state)
{
	if (!v6_available())
		skip();
	dial_ok(*state, "::1", "[::1]");
}

static void test_dial_localhost(void **state)
{
	/* "localhost" comes from /etc/hosts (127.0.0.1 at least) */
	dial_ok(*state, "127.0.0.1", "localhost");
}

static void test_dial_literal_without_dns(void **state)
{
	struct ctx *c = *state;
	struct addr la;
	int lfd = listener("127.0.0.1", &la);
	char addr[64];
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)addr_port(&la));
	struct result r;
	result_init(&r, c->loop, true);
	int err = 0;
	assert_non_null(dial_start(c->loop, NULL, addr, 0, on_dial, &r, &err));
	assert_int_equal(run_for(c->loop, 5000), 0);
	assert_int_equal(r.called, 1);
	assert_true(r.fd >= 0);
	close(r.fd);
	close(lfd);
	/* a name needs the resolver */
	assert_null(dial_start(c->loop, NULL, "localhost:1", 0, on_dial, &r, &err));
	assert_int_equal(err, -EINVAL);
}

static void test_dial_refused(void **state)
{
	struct ctx *c = *state;
	struct addr a = closed_port("127.0.0.1");
	char addr[64];
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)addr_port(&a));
	struct result r;
	result_init(&r, c->loop, true);
	int err = 0;
	assert_non_null(dial_start(c->loop, c->dns, addr, 2000, on_dial, &r, &err));
	assert_int_equal(run_for(c->loop, 5000), 0);
	assert_int_equal(r.called, 1);
	assert_int_equal(r.fd, -1);
	assert_int_equal(r.err, -ECONNREFUSED);
	assert_false(r.has_peer);
}

static void test_dial_malformed(void **state)
{
	struct ctx *c = *state;
	static const char *const bad[] = { "nocolon", "h:", "h:99999", "h:x", ":80", "[::1:80" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct result r;
		result_init(&r, c->loop, false);
		int err = 0;
		assert_null(dial_start(c->loop, c->dns, bad[i], 0, on_dial, &r, &err));
		assert_int_equal(err, MR_EFORMAT);
	}
}

static void test_dial_dns_failure(void **state)
{
	struct ctx *c = *state;
	struct fake f;
	struct dns *d = fake_start(&f, c->loop, NULL, 0);
	struct result r;
	result_init(&r, c->loop, true);
	int err = 0;
	assert_non_null(dial_start(c->loop, d, "nothing.molerat.test:80", 2000, on_dial, &r, &err));
	assert_int_equal(run_for(c->loop, 5000), 0);
	assert_int_equal(r.called, 1);
	assert_int_equal(r.fd, -1);
	assert_int_equal(r.err, MR_EDNS);
	assert_true(f.queries >= 1);
	fake_stop(&f, c->loop, d);
}

static void test_dial_name_several_addresses(void **state)
{
	/* the name resolves to 127.0.0.1, 127.0.0.2, 127.0.0.3 (in that order);
	 * only 127.0.0.3 listens on the port */
	struct ctx *c = *state;
	struct addr la;
	int lfd = listener("127.0.0.3", &la);
	static const uint8_t ips[] = { 1, 2, 3 };
	struct fake f;
	struct dns *d = fake_start(&f, c->loop, ips, 3);
	char addr[64];
	snprintf(addr, sizeof(addr), "three.molerat.test:%u", (unsigned)addr_port(&la));
	struct result r;
	result_init(&r, c->loop, true);
	int err = 0;
	assert_non_null(dial_start(c->loop, d, addr, 2000, on_dial, &r, &err));
	assert_int_equal(run_for(c->loop, 5000), 0);
	assert_int_equal(r.called, 1);
	assert_int_equal(r.err, 0);
	assert_true(r.fd >= 0);
	assert_true(addr_equal(&r.peer, &la));
	close(accept_one(lfd));
	close(r.fd);
	close(lfd);
	fake_stop(&f, c->loop, d);
}

static void test_dial_every_address_tried(void **state)
{
	struct ctx *c = *state;
	struct addr la;
	int lfd = listener("127.0.0.1", &la);
	struct addr addrs[4];
	size_t n = 0;
	addrs[n++] = closed_port("127.0.0.1");
	if (v6_available())
		addrs[n++] = closed_port("::1");
	addrs[n++] = unix_nowhere();
	addrs[n++] = la;
	struct result r;
	result_init(&r, c->loop, true);
	int err = 0;
	assert_non_null(dial_start_addrs(c->loop, addrs, n, 2000, on_dial, &r, &err));
	assert_int_equal(r.called, 0);
	assert_int_equal(run_for(c->loop, 5000), 0);
	assert_int_equal(r.called, 1);
	assert_int_equal(r.err, 0);
	assert_true(addr_equal(&r.peer, &la));
	close(accept_one(lfd));
	close(r.fd);
	close(lfd);
}

static void test_dial_all_fail_last_error(void **state)
{
	/* two failures with different errors, in both orders: the error
	 * reported is the last address's, so both were tried */
	struct ctx *c = *state;
	struct addr refused = closed_port("127.0.0.1"), nowhere = unix_nowhere();
	struct addr order1[] = { nowhere, refused }, order2[] = { refused, nowhere };
	struct result r;
	int err = 0;

	result_init(&r, c->loop, true);
	assert_non_null(dial_start_addrs(c->loop, order1, 2, 2000, on_dial, &r, &err));
	assert_int_equal(run_for(c->loop, 5000), 0);
	assert_int_equal(r.called, 1);
	assert_int_equal(r.fd, -1);
	assert_int_equal(r.err, -ECONNREFUSED);

	result_init(&r, c->loop, true);
	assert_non_null(dial_start_addrs(c->loop, order2, 2, 2000, on_dial, &r, &err));
	assert_int_equal(run_for(c->loop, 5000), 0);
	assert_int_equal(r.called, 1);
	assert_int_equal(r.fd, -1);
	assert_int_equal(r.err, -ENOENT);

	/* no address at all */
	result_init(&r, c->loop, true);
	assert_non_null(dial_start_addrs(c->loop, NULL, 0, 0, on_dial, &r, &err));
	assert_int_equal(r.called, 0);
	assert_int_equal(run_for(c->loop, 5000), 0);
	assert_int_equal(r.called, 1);
	assert_int_equal(r.err, MR_EDNS);
}

static void test_dial_first_good_wins(void **state)
{
	struct ctx *c = *state;
	struct addr a1, a2;
	int l1 = listener("127.0.0.1", &a1), l2 = listener("127.0.0.1", &a2);
	struct addr addrs[] = { a1, a2 };
	struct result r;
	result_init(&r, c->loop, true);
	int err = 0;
	assert_non_null(dial_start_addrs(c->loop, addrs, 2, 2000, on_dial, &r, &err));
	assert_int_equal(run_for(c->loop, 5000), 0);
	assert_int_equal(r.called, 1);
	assert_true(addr_equal(&r.peer, &a1));
	close(accept_one(l1));
	assert_int_equal(poll(&(struct pollfd){ .fd = l2, .events = POLLIN }, 1, 100), 0);
	close(r.fd);
	close(l1);
	close(l2);
}

static void test_dial_timeout(void **state)
{
	struct ctx *c = *state;
	struct hang h;
	if (!hang_start(&h)) {
		hang_stop(&h);
		fprintf(stderr, "test_dial: connects to a full accept queue do not hang here: skipped\n");
		skip();
	}
	struct result r;
	int err = 0;

	/* alone: -ETIMEDOUT after about timeout_ms */
	result_init(&r, c->loop, true);
	loop_update_time(c->loop);
	uint64_t t0 = loop_now(c->loop);
	assert_non_null(dial_start_addrs(c->loop, &h.a, 1, 200, on_dial, &r, &err));
	assert_int_equal(run_for(c->loop, 5000), 0);
	uint64_t dt = loop_now(c->loop) - t0;
	assert_int_equal(r.called, 1);
	assert_int_equal(r.fd, -1);
	assert_int_equal(r.err, -ETIMEDOUT);
	assert_true(dt >= 195);
	assert_true(dt < 3000);

	/* then the next address is tried */
	struct addr la;
	int lfd = listener("127.0.0.1", &la);
	struct addr addrs[] = { h.a, la };
	result_init(&r, c->loop, true);
	loop_update_time(c->loop);
	t0 = loop_now(c->loop);
	assert_non_null(dial_start_addrs(c->loop, addrs, 2, 200, on_dial, &r, &err));
	assert_int_equal(run_for(c->loop, 5000), 0);
	dt = loop_now(c->loop) - t0;
	assert_int_equal(r.called, 1);
	assert_int_equal(r.err, 0);
	assert_true(addr_equal(&r.peer, &la));
	assert_true(dt >= 195);
	close(accept_one(lfd));
	close(r.fd);
	close(lfd);
	hang_stop(&h);
}

static void test_dial_cancel_stages(void **state)
{
	struct ctx *c = *state;
	struct addr la;
	int lfd = listener("127.0.0.1", &la);
	char lit[64], name[64];
	snprintf(lit, sizeof(lit), "127.0.0.1:%u", (unsigned)addr_port(&la));
	snprintf(name, sizeof(name), "localhost:%u", (unsigned)addr_port(&la));
	struct result r[4];
	for (int i = 0; i < 4; i++)
		result_init(&r[i], c->loop, false);
	int err = 0;

	/* before the first attempt (literal) and while resolving (name) */
	struct dial *d0 = dial_start(c->loop, c->dns, lit, 2000, on_dial, &r[0], &err);
	struct dial *d1 = dial_start(c->loop, c->dns, name, 2000, on_dial, &r[1], &err);
	assert_non_null(d0);
	assert_non_null(d1);
	dial_cancel(d0);
	dial_cancel(d1);

	/* while connecting, without a timer (timeout 0), and with one */
	struct hang h;
	bool hanging = hang_start(&h);
	if (hanging) {
		struct dial *d2 = dial_start_addrs(c->loop, &h.a, 1, 0, on_dial, &r[2], &err);
		struct dial *d3 = dial_start_addrs(c->loop, &h.a, 1, 5000, on_dial, &r[3], &err);
		assert_non_null(d2);
		assert_non_null(d3);
		run_for(c->loop, 300);
		assert_int_equal(r[2].called, 0);
		assert_int_equal(r[3].called, 0);
		dial_cancel(d2);
		dial_cancel(d3);
	} else {
		fprintf(stderr, "test_dial: connects to a full accept queue do not hang here: "
				"cancel while connecting not tested\n");
	}
	run_for(c->loop, 300);
	for (int i = 0; i < 4; i++)
		assert_int_equal(r[i].called, 0);
	/* the literal's connect starts inside dial_start, so the listener may
	 * hold that one connection: it must already be closed (EOF); the name
	 * never got as far as connecting */
	int afd = sock_accept(lfd, NULL);
	if (afd >= 0) {
		char b;
		for (int i = 0; i < 100 && recv(afd, &b, 1, 0) < 0 && errno == EAGAIN; i++)
			usleep(1000);
		assert_int_equal(recv(afd, &b, 1, 0), 0);
		close(afd);
	}
	assert_int_equal(sock_accept(lfd, NULL), -EAGAIN);
	hang_stop(&h);
	close(lfd);
}

static void test_dial_cancel_from_other_callback(void **state)
{
	struct ctx *c = *state;
	struct hang h;
	if (!hang_start(&h)) {
		hang_stop(&h);
		fprintf(stderr, "test_dial: connects to a full accept queue do not hang here: skipped\n");
		skip();
	}
	struct addr la;
	int lfd = listener("127.0.0.1", &la);
	struct result ra, rb;
	result_init(&ra, c->loop, false);
	result_init(&rb, c->loop, false);
	int err = 0;
	/* b hangs in its connect (no timer); a's callback cancels it */
	struct dial *b = dial_start_addrs(c->loop, &h.a, 1, 0, on_dial, &rb, &err);
	struct dial *a = dial_start_addrs(c->loop, &la, 1, 0, on_dial, &ra, &err);
	assert_non_null(a);
	assert_non_null(b);
	ra.cancel_other = b;
	ra.cancel_self = &a; /* a no-op inside its own callback */
	run_for(c->loop, 500);
	assert_int_equal(ra.called, 1);
	assert_int_equal(rb.called, 0);
	assert_true(ra.fd >= 0);
	close(ra.fd);
	close(accept_one(lfd));
	close(lfd);
	hang_stop(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_dial_v4, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dial_v6, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dial_localhost, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dial_literal_without_dns, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dial_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dial_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dial_dns_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dial_name_several_addresses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dial_every_address_tried, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dial_all_fail_last_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dial_first_good_wins, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dial_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dial_cancel_stages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dial_cancel_from_other_callback, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
