/* dns: literals, /etc/hosts, a fake DNS server on 127.0.0.1 in the same
 * loop (answers, NXDOMAIN, silence), cancellation and teardown. Every loop
 * run is bounded by a guard timer. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/dns.h"
#include "base/err.h"
#include "base/loop.h"
#include "base/sock.h"

/* ---- harness ---- */

struct result {
	int called;
	int err;
	size_t n;
	struct addr addrs[DNS_MAX_ADDRS];
	struct loop *loop;
	bool stop;          /* loop_stop when called */
	/* optional actions from inside the callback */
	struct dns *free_dns;
	struct dns_req **cancel_self;
};

static void on_result(void *arg, int err, const struct addr *addrs, size_t n)
{
	struct result *r = arg;
	r->called++;
	r->err = err;
	r->n = n;
	if (err)
		assert_null(addrs);
	if (n > DNS_MAX_ADDRS)
		fail_msg("n = %zu", n);
	if (n)
		memcpy(r->addrs, addrs, n * sizeof(*addrs));
	if (r->cancel_self)
		dns_cancel(*r->cancel_self); /* a no-op inside its own callback */
	if (r->free_dns)
		dns_free(r->free_dns);
	if (r->stop)
		loop_stop(r->loop);
}

static void result_init(struct result *r, struct loop *loop, bool stop)
{
	memset(r, 0, sizeof(*r));
	r->loop = loop;
	r->stop = stop;
}

static bool has_addr(const struct result *r, const char *lit, uint16_t port)
{
	struct addr a;
	assert_int_equal(addr_from_literal(lit, port, &a), 0);
	for (size_t i = 0; i < r->n; i++) {
		if (addr_equal(&r->addrs[i], &a))
			return true;
	}
	return false;
}

/* ---- a fake DNS server (UDP, 127.0.0.1) ---- */

enum fake_mode { FAKE_ANSWER, FAKE_NXDOMAIN, FAKE_SILENT };

struct fake {
	int fd;
	struct io_watcher w;
	enum fake_mode mode;
	int nanswers;       /* A records 127.0.0.<first>.. */
	int first;
	int queries;
	char servers[64];   /* for dns_opts */
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
	if (f->mode == FAKE_SILENT)
		return;
	/* the question: labels, then type and class */
	size_t i = 12;
	while (i < (size_t)n && q[i] != 0)
		i += (size_t)q[i] + 1;
	if (i + 5 > (size_t)n)
		return;
	size_t qend = i + 5;
	unsigned qtype = (unsigned)q[i + 1] << 8 | q[i + 2];
	memcpy(out, q, qend);
	unsigned rcode = f->mode == FAKE_NXDOMAIN ? 3 : 0;
	put16(out + 2, 0x8180 | rcode); /* QR, RD, RA */
	put16(out + 4, 1);
	put16(out + 6, 0);
	put16(out + 8, 0);
	put16(out + 10, 0);
	size_t o = qend;
	if (f->mode == FAKE_ANSWER && qtype == 1) {
		put16(out + 6, (unsigned)f->nanswers);
		for (int k = 0; k < f->nanswers; k++) {
			put16(out + o, 0xc00c);       /* name: pointer to the question */
			put16(out + o + 2, 1);        /* A */
			put16(out + o + 4, 1);        /* IN */
			put16(out + o + 6, 0);
			put16(out + o + 8, 60);       /* TTL */
			put16(out + o + 10, 4);
			out[o + 12] = 127;
			out[o + 13] = 0;
			out[o + 14] = 0;
			out[o + 15] = (uint8_t)(f->first + k);
			o += 16;
		}
	}
	sendto(w->fd, out, o, 0, (struct sockaddr *)&from, fl);
}

static void fake_start(struct fake *f, struct loop *loop, enum fake_mode mode, int nanswers, int first)
{
	memset(f, 0, sizeof(*f));
	f->mode = mode;
	f->nanswers = nanswers;
	f->first = first;
	struct addr a;
	assert_int_equal(addr_from_literal("127.0.0.1", 0, &a), 0);
	f->fd = sock_bind_udp(&a);
	assert_true(f->fd >= 0);
	assert_int_equal(sock_local_addr(f->fd, &a), 0);
	snprintf(f->servers, sizeof(f->servers), "127.0.0.1:%u", (unsigned)addr_port(&a));
	loop_io_init(&f->w, on_fake, f);
	assert_int_equal(loop_io_start(loop, &f->w, f->fd, LOOP_READ), 0);
}

static void fake_stop(struct fake *f, struct loop *loop)
{
	loop_io_stop(loop, &f->w);
	close(f->fd);
}

static struct dns *fake_dns(struct loop *loop, const struct fake *f, unsigned timeout_ms)
{
	struct dns_opts o = {
		.servers = f->servers,
		.timeout_ms = timeout_ms,
		.tries = 1,
		.no_hosts_file = true,
	};
	struct dns *d = NULL;
	assert_int_equal(dns_new_opts(loop, &o, &d), 0);
	assert_non_null(d);
	return d;
}

/* ---- fixtures ---- */

struct ctx {
	struct loop *loop;
	struct dns *dns;    /* the system resolver */
};

static int setup(void **state)
{
	static struct ctx c;
	memset(&c, 0, sizeof(c));
	if (loop_new(&c.loop) != 0)
		return -1;
	if (dns_new(c.loop, &c.dns) != 0)
		return -1;
	*state = &c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	dns_free(c->dns);
	loop_free(c->loop);
	return 0;
}

/* ---- tests ---- */

static void test_literal_v4(void **state)
{
	struct ctx *c = *state;
	struct result r;
	result_init(&r, c->loop, true);
	struct dns_req *q = dns_resolve(c->dns, "127.0.0.1", 80, on_result, &r);
	assert_non_null(q);
	assert_int_equal(r.called, 0); /* never from inside dns_resolve */
	assert_int_equal(run_for(c->loop, 5000), 0);
	assert_int_equal(r.called, 1);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.n, 1);
	char buf[ADDR_STRLEN];
	assert_string_equal(addr_str(&r.addrs[0], buf, sizeof(buf)), "127.0.0.1:80");
}

static void test_literal_v6(void **state)
{
	struct ctx *c = *state;
	struct result r;
	result_init(&r, c->loop, true);
	assert_non_null(dns_resolve(c->dns, "::1", 65535, on_result, &r));
	assert_int_equal(r.called, 0);
	assert_int_equal(run_for(c->loop, 5000), 0);
	assert_int_equal(r.called, 1);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.n, 1);
	char buf[ADDR_STRLEN];
	assert_string_equal(addr_str(&r.addrs[0], buf, sizeof(buf)), "[::1]:65535");
}

static void test_localhost_hosts_file(void **state)
{
	struct ctx *c = *state;
	struct result r;
	result_init(&r, c->loop, true);
	assert_non_null(dns_resolve(c->dns, "localhost", 2333, on_result, &r));
	/* answered from /etc/hosts inside c-ares, but still delivered later */
	assert_int_equal(r.called, 0);
	assert_int_equal(run_for(c->loop, 5000), 0);
	assert_int_equal(r.called, 1);
	assert_int_equal(r.err, 0);
	assert_true(r.n >= 1);
	assert_true(has_addr(&r, "127.0.0.1", 2333));
	for (size_t i = 0; i < r.n; i++) {
		char buf[ADDR_STRLEN];
		addr_str(&r.addrs[i], buf, sizeof(buf));
		if (strcmp(buf, "127.0.0.1:2333") != 0 && strcmp(buf, "[::1]:2333") != 0)
			fail_msg("localhost resolved to %s", buf);
	}
}

static void test_fake_answer(void **state)
{
	struct ctx *c = *state;
	struct fake f;
	fake_start(&f, c->loop, FAKE_ANSWER, 1, 7);
	struct dns *d = fake_dns(c->loop, &f, 2000);
	struct result r;
	result_init(&r, c->loop, true);
	assert_non_null(dns_resolve(d, "svc.molerat.test", 1234, on_result, &r));
	assert_int_equal(r.called, 0);
	assert_int_equal(run_for(c->loop, 5000), 0);
	assert_int_equal(r.called, 1);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.n, 1);
	char buf[ADDR_STRLEN];
	assert_string_equal(addr_str(&r.addrs[0], buf, sizeof(buf)), "127.0.0.7:1234");
	assert_true(f.queries >= 2); /* A and AAAA */
	dns_free(d);
	fake_stop(&f, c->loop);
}

static void test_fake_cap(void **state)
{
	struct ctx *c = *state;
	struct fake f;
	fake_start(&f, c->loop, FAKE_ANSWER, 20, 1);
	struct dns *d = fake_dns(c->loop, &f, 2000);
	struct result r;
	result_init(&r, c->loop, true);
	assert_non_null(dns_resolve(d, "many.molerat.test", 9, on_result, &r));
	assert_int_equal(run_for(c->loop, 5000), 0);
	assert_int_equal(r.called, 1);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.n, DNS_MAX_ADDRS);
	for (size_t i = 0; i < r.n; i++) {
		const struct sockaddr_in *in4 = (const struct sockaddr_in *)&r.addrs[i].ss;
		assert_int_equal(r.addrs[i].ss.ss_family, AF_INET);
		assert_int_equal(ntohs(in4->sin_port), 9);
		uint32_t ip = ntohl(in4->sin_addr.s_addr);
		assert_true(ip >= 0x7f000001 && ip <= 0x7f000014);
		for (size_t j = 0; j < i; j++)
			assert_false(addr_equal(&r.addrs[i], &r.addrs[j]));
	}
	dns_free(d);
	fake_stop(&f, c->loop);
}

static void test_fake_nxdomain(void **state)
{
	struct ctx *c = *state;
	struct fake f;
	fake_start(&f, c->loop, FAKE_NXDOMAIN, 0, 0);
	struct dns *d = fake_dns(c->loop, &f, 2000);
	struct result r;
	result_init(&r, c->loop, true);
	assert_non_null(dns_resolve(d, "nothing.molerat.test", 80, on_result, &r));
	assert_int_equal(run_for(c->loop, 5000), 0);
	assert_int_equal(r.called, 1);
	assert_int_equal(r.err, MR_EDNS);
	assert_int_equal(r.n, 0);
	assert_true(f.queries >= 1);
	dns_free(d);
	fake_stop(&f, c->loop);
}

static void test_fake_silent_times_out(void **state)
{
	/* no answer at all: only the c-ares timer can end this */
	struct ctx *c = *state;
	struct fake f;
	fake_start(&f, c->loop, FAKE_SILENT, 0, 0);
	struct dns *d = fake_dns(c->loop, &f, 100);
	struct result r;
	result_init(&r, c->loop, true);
	loop_update_time(c->loop);
	uint64_t t0 = loop_now(c->loop);
	assert_non_null(dns_resolve(d, "silent.molerat.test", 80, on_result, &r));
	assert_int_equal(run_for(c->loop, 5000), 0);
	uint64_t dt = loop_now(c->loop) - t0;
	assert_int_equal(r.called, 1);
	assert_int_equal(r.err, MR_EDNS);
	assert_true(f.queries >= 1);
	assert_true(dt >= 90);
	assert_true(dt < 4000);
	dns_free(d);
	fake_stop(&f, c->loop);
}

static void test_system_nonexistent(void **state)
{
	/* the system's resolver: ".invalid" never exists (RFC 6761). With no
	 * reachable DNS server c-ares fails fast or after its timeouts; if
	 * even that takes longer than the guard, skip (said on stderr) */
	struct ctx *c = *state;
	struct result r;
	result_init(&r, c->loop, true);
	struct dns_req *q = dns_resolve(c->dns, "nonexistent.invalid", 80, on_result, &r);
	assert_non_null(q);
	if (run_for(c->loop, 20000)) {
		assert_int_equal(r.called, 0);
		dns_cancel(q);
		fprintf(stderr, "test_dns: the system resolver gave no answer for nonexistent.invalid "
				"within 20 s (DNS server unreachable?): skipped\n");
		skip();
	}
	assert_int_equal(r.called, 1);
	assert_int_equal(r.err, MR_EDNS);
	assert_int_equal(r.n, 0);
}

static void test_bad_names(void **state)
{
	struct ctx *c = *state;
	char longname[300];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	struct result r1, r2;
	result_init(&r1, c->loop, false);
	result_init(&r2, c->loop, false);
	assert_non_null(dns_resolve(c->dns, "", 80, on_result, &r1));
	assert_non_null(dns_resolve(c->dns, longname, 80, on_result, &r2));
	assert_int_equal(r1.called + r2.called, 0);
	run_for(c->loop, 100);
	assert_int_equal(r1.called, 1);
	assert_int_equal(r1.err, MR_EDNS);
	assert_int_equal(r2.called, 1);
	assert_int_equal(r2.err, MR_EDNS);
}

static void test_cancel_before_answer(void **state)
{
	struct ctx *c = *state;
	struct fake fa, fs;
	fake_start(&fa, c->loop, FAKE_ANSWER, 1, 1);
	fake_start(&fs, c->loop, FAKE_SILENT, 0, 0);
	struct dns *da = fake_dns(c->loop, &fa, 2000);
	struct dns *ds = fake_dns(c->loop, &fs, 50);

	struct result r[4], ok;
	for (int i = 0; i < 4; i++)
		result_init(&r[i], c->loop, false);
	result_init(&ok, c->loop, false);
	struct dns_req *q[4];
	q[0] = dns_resolve(c->dns, "127.0.0.1", 1, on_result, &r[0]);
	q[1] = dns_resolve(c->dns, "localhost", 1, on_result, &r[1]);
	q[2] = dns_resolve(da, "answered.molerat.test", 1, on_result, &r[2]);
	q[3] = dns_resolve(ds, "silent.molerat.test", 1, on_result, &r[3]);
	/* one that is not cancelled, to show the loop did deliver */
	assert_non_null(dns_resolve(da, "kept.molerat.test", 1, on_result, &ok));
	for (int i = 0; i < 4; i++) {
		assert_non_null(q[i]);
		dns_cancel(q[i]);
	}
	/* long enough for the fake answer and for the silent query's timeout */
	run_for(c->loop, 600);
	for (int i = 0; i < 4; i++)
		assert_int_equal(r[i].called, 0);
	assert_int_equal(ok.called, 1);
	assert_int_equal(ok.err, 0);
	assert_true(fa.queries >= 4);
	assert_true(fs.queries >= 1);
	dns_free(da);
	dns_free(ds);
	fake_stop(&fa, c->loop);
	fake_stop(&fs, c->loop);
}

static void test_free_with_pending(void **state)
{
	struct ctx *c = *state;
	struct fake fs;
	fake_start(&fs, c->loop, FAKE_SILENT, 0, 0);
	struct dns *d = fake_dns(c->loop, &fs, 5000);
	struct result r[3];
	for (int i = 0; i < 3; i++)
		result_init(&r[i], c->loop, false);
	assert_non_null(dns_resolve(d, "127.0.0.1", 1, on_result, &r[0]));
	assert_non_null(dns_resolve(d, "pending.molerat.test", 1, on_result, &r[1]));
	struct dns_req *orphan = dns_resolve(d, "orphan.molerat.test", 1, on_result, &r[2]);
	dns_cancel(orphan);
	run_for(c->loop, 50); /* let the queries go out */
	assert_int_equal(r[0].called, 1);
	assert_true(fs.queries >= 2);
	result_init(&r[0], c->loop, false);
	assert_non_null(dns_resolve(d, "::1", 1, on_result, &r[0]));
	dns_free(d);
	run_for(c->loop, 100);
	for (int i = 0; i < 3; i++)
		assert_int_equal(r[i].called, 0);
	fake_stop(&fs, c->loop);
}

static void test_free_from_callback(void **state)
{
	struct ctx *c = *state;
	struct fake fs;
	fake_start(&fs, c->loop, FAKE_SILENT, 0, 0);
	struct dns *d = fake_dns(c->loop, &fs, 5000);
	struct result first, second, third;
	result_init(&first, c->loop, false);
	result_init(&second, c->loop, false);
	result_init(&third, c->loop, false);
	first.free_dns = d;
	assert_non_null(dns_resolve(d, "127.0.0.1", 1, on_result, &first));
	assert_non_null(dns_resolve(d, "127.0.0.2", 1, on_result, &second));
	assert_non_null(dns_resolve(d, "never.molerat.test", 1, on_result, &third));
	run_for(c->loop, 200);
	/* the first callback freed the resolver: the others never ran */
	assert_int_equal(first.called, 1);
	assert_int_equal(second.called, 0);
	assert_int_equal(third.called, 0);
	fake_stop(&fs, c->loop);
}

static void test_cancel_inside_own_callback(void **state)
{
	struct ctx *c = *state;
	struct result r;
	result_init(&r, c->loop, true);
	struct dns_req *q = dns_resolve(c->dns, "127.0.0.1", 1, on_result, &r);
	r.cancel_self = &q;
	assert_int_equal(run_for(c->loop, 5000), 0);
	assert_int_equal(r.called, 1);
	assert_int_equal(r.err, 0);
}

/* a callback that starts the next resolution */
struct chain {
	struct dns *dns;
	struct loop *loop;
	int steps;
	int err;
};

static void on_chain(void *arg, int err, const struct addr *addrs, size_t n)
{
	struct chain *ch = arg;
	ch->steps++;
	ch->err = err;
	if (err || ch->steps == 3) {
		loop_stop(ch->loop);
		return;
	}
	assert_non_null(dns_resolve(ch->dns, ch->steps == 1 ? "localhost" : "::1", 1, on_chain, ch));
}

static void test_resolve_from_callback(void **state)
{
	struct ctx *c = *state;
	struct chain ch = { .dns = c->dns, .loop = c->loop };
	assert_non_null(dns_resolve(c->dns, "127.0.0.1", 1, on_chain, &ch));
	assert_int_equal(run_for(c->loop, 5000), 0);
	assert_int_equal(ch.steps, 3);
	assert_int_equal(ch.err, 0);
}

static void test_bad_server_list(void **state)
{
	struct ctx *c = *state;
	struct dns_opts o = { .servers = "not an address" };
	struct dns *d = NULL;
	assert_int_equal(dns_new_opts(c->loop, &o, &d), MR_EDNS);
	assert_null(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_literal_v4, setup, teardown),
		cmocka_unit_test_setup_teardown(test_literal_v6, setup, teardown),
		cmocka_unit_test_setup_teardown(test_localhost_hosts_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fake_answer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fake_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fake_nxdomain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fake_silent_times_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_system_nonexistent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_before_answer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_with_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_from_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_inside_own_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolve_from_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_server_list, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
