/* admin: the admin HTTP endpoint ([server.admin] / [client.admin],
 * docs/admin.md): GET /metrics (Prometheus text 0.0.4), GET /healthz,
 * GET /api/v1/status (JSON) and the status page at GET /
 * (role/admin_page.h). HTTP/1.1, one request per connection, then close.
 *
 * It runs on the instance's loop and never blocks it: accept, read and
 * write are non-blocking, a response is rendered whole (role/metrics.h)
 * and written with backpressure. Bounds: a request head of at most
 * ADMIN_HEAD_MAX bytes (431 past it), ADMIN_MAX_CONNS connections at once
 * (more are closed at accept), ADMIN_HEAD_MS to send the head (slowloris),
 * ADMIN_WRITE_MS without write progress before a response is dropped (a
 * client that never reads holds one rendered response at most), garbage
 * gets 400. Each dropped peer is one log line, rate-limited.
 *
 * Auth: with a token, every request but GET / (the page holds no data)
 * needs "Authorization: Bearer TOKEN" (compared in constant time); else
 * 401 with WWW-Authenticate: Bearer. Unknown path 404, a method other
 * than GET or HEAD 405.
 *
 * Ownership: admin_new copies what cfg points to (the token is wiped on
 * free); the source's snapshot is called once per data response and what
 * it fills is read during the call to the renderer only. admin_free
 * closes the listener and every connection (no callback runs after it;
 * memory goes through loop_defer). role/reload.c makes one per instance
 * and stops it with the instance. */
#ifndef MOLERAT_ADMIN_H
#define MOLERAT_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

#include "base/loop.h"
#include "base/strbuf.h"
#include "role/metrics.h"

enum {
	ADMIN_HEAD_MAX = 8192,       /* request head bytes */
	ADMIN_MAX_CONNS = 64,        /* connections at once */
	ADMIN_HEAD_MS = 5000,        /* to send the whole head */
	ADMIN_WRITE_MS = 10000,      /* without write progress: dropped */
	ADMIN_LINGER_MS = 1000,      /* after the response: waiting for the peer's FIN */
	ADMIN_MAX_RESPONSE = 64 << 20, /* a larger rendering is a 500 */
};

struct admin;

struct admin_source {
	/* fills *st (role/metrics.h) for one rendering */
	void (*snapshot)(void *arg, struct status *st);
	void *arg;
};

struct admin_cfg {
	struct loop *loop;
	const char *bind_addr;       /* "IP:PORT" (an IP literal, or localhost) */
	const char *token;           /* NULL: no token (loopback only: codec/conf.c checks) */
	size_t token_len;
	struct admin_source src;
};

/* Binds bind_addr at once and accepts. Returns 0, or a negative error
 * (logged: bind_addr in use, malformed) with *out NULL. */
int admin_new(const struct admin_cfg *cfg, struct admin **out);
/* NULL-safe. */
void admin_free(struct admin *a);
/* The port it listens on (bind_addr may say 0: tests). */
unsigned admin_local_port(const struct admin *a);

/* The response to one complete request head buf[0..len) (as
 * http_head_end measured it), whole, into out; *status gets its code.
 * Pure but for the source's snapshot and metrics_process: the unit tests
 * call it directly. */
void admin_respond(const struct admin_cfg *cfg, const char *buf, size_t len, struct strbuf *out, int *status);
/* given (glen bytes) equals want (wlen > 0 bytes); the time taken
 * depends on glen only. */
bool admin_token_equal(const char *given, size_t glen, const char *want, size_t wlen);

#endif
