/* admin: see admin.h. */
#include "role/admin.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/err.h"
#include "base/list.h"
#include "base/log.h"
#include "base/sock.h"
#include "codec/addr.h"
#include "codec/http_head.h"
#include "role/admin_page.h"

enum {
	ACCEPT_BATCH = 64,
	ACCEPT_PAUSE_MS = 100,   /* after EMFILE and the like */
	LINGER_READ_MAX = 64 * 1024, /* bytes read and discarded while lingering */
	CONN_SNDBUF = 64 * 1024,     /* a connection's socket send buffer: a peer that
				      * does not read holds this much kernel memory,
				      * and its response stays ours, so it is seen
				      * (ADMIN_WRITE_MS) and dropped */
	SPARE_MAX = 16 * 1024 * 1024, /* a larger response buffer is not kept */
};

enum ac_state {
	AC_HEAD = 0,   /* reading the request head */
	AC_WRITING,    /* writing the response */
	AC_LINGER,     /* response written and write side shut: waiting for EOF */
};

struct aconn {
	struct list_link link;         /* in admin's conns */
	struct admin *a;
	struct io_watcher w;
	struct timer t;
	enum ac_state state;
	size_t in_len;
	size_t lingered;
	char *out;                     /* the response; owned */
	size_t out_len, out_off, out_cap;
	char peer[ADDR_STRLEN];
	char in[ADMIN_HEAD_MAX];
};

struct admin {
	struct admin_cfg cfg;          /* bind_addr and token point into this struct's copies */
	char *bind_addr;
	char *token;
	struct io_watcher lw;
	struct timer accept_resume;
	struct list conns;             /* of struct aconn */
	/* the last response's buffer, kept for the next one (owned): a scrape
	 * of many services writes megabytes, and fresh pages each time cost
	 * more than rendering them */
	struct strbuf spare;           /* empty (len 0), or p NULL */
	/* one rate limit per kind of dropped peer (log_limited) */
	struct log_limit log_drop, log_bad, log_big, log_full, log_accept;
};

/* ---------------------------------------------------------------- responses */

bool admin_token_equal(const char *given, size_t glen, const char *want, size_t wlen)
{
	if (!wlen)
		return false;
	unsigned char d = glen != wlen;
	for (size_t i = 0; i < glen; i++)
		d |= (unsigned char)(given[i] ^ want[i % wlen]);
	return d == 0;
}

static const char *reason_of(int code)
{
	switch (code) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 431: return "Request Header Fields Too Large";
	case 503: return "Service Unavailable";
	default: return "Internal Server Error";
	}
}

enum { HEAD_ROOM = 512 };   /* a response head is shorter (types and extras are ours) */

/* The head of a response with a body of len bytes, into h[HEAD_ROOM];
 * returns its length. */
static size_t head_of(char *h, int code, const char *type, const char *extra, size_t len)
{
	int n = snprintf(h, HEAD_ROOM,
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nCache-Control: no-store\r\n"
			 "X-Content-Type-Options: nosniff\r\nConnection: close\r\n%s\r\n",
			 code, reason_of(code), type, len, extra ? extra : "");
	return n < 0 ? 0 : (size_t)n >= HEAD_ROOM ? HEAD_ROOM - 1 : (size_t)n;
}

/* Head and body (omitted for HEAD) of one response. */
static void respond(struct strbuf *out, int code, const char *type, const char *extra, const char *body,
		    size_t len, bool head_only)
{
	char h[HEAD_ROOM];
	strbuf_put(out, h, head_of(h, code, type, extra, len));
	if (!head_only)
		strbuf_put(out, body, len);
}

static void respond_text(struct strbuf *out, int code, const char *extra, const char *text, bool head_only)
{
	respond(out, code, "text/plain; charset=utf-8", extra, text, strlen(text), head_only);
}

/* The Authorization header carries "Bearer TOKEN" with the configured token. */
static bool authorized(const struct admin_cfg *cfg, const struct http_head *h)
{
	if (!cfg->token)
		return true;
	const struct http_slice *v = http_header_get(h, "authorization");
	if (!v || v->n < 7 || !http_slice_eq_ci((struct http_slice){ v->p, 6 }, "bearer") ||
	    (v->p[6] != ' ' && v->p[6] != '\t'))
		return false;
	size_t i = 7;
	while (i < v->n && (v->p[i] == ' ' || v->p[i] == '\t'))
		i++;
	return admin_token_equal(v->p + i, v->n - i, cfg->token, cfg->token_len);
}

static bool path_is(struct http_slice path, const char *lit)
{
	return path.n == strlen(lit) && !memcmp(path.p, lit, path.n);
}

void admin_respond(const struct admin_cfg *cfg, const char *buf, size_t len, struct strbuf *out, int *status)
{
	struct http_head h;
	const char *why = NULL;
	*status = 400;
	if (http_parse_request(buf, len, &h, &why) < 0 || h.version_major != 1) {
		respond_text(out, 400, NULL, "bad request\n", false);
		return;
	}
	bool get = http_slice_eq_ci(h.method, "GET"), head = !get && http_slice_eq_ci(h.method, "HEAD");
	struct http_slice path = h.target;
	const char *qm = memchr(path.p, '?', path.n);
	if (qm)
		path.n = (size_t)(qm - path.p);
	static const char allow[] = "Allow: GET, HEAD\r\n";
	if (path_is(path, "/")) {
		*status = get || head ? 200 : 405;
		if (*status == 405)
			respond_text(out, 405, allow, "method not allowed\n", false);
		else
			respond(out, 200, "text/html; charset=utf-8", NULL, admin_page_html, admin_page_html_len, head);
		return;
	}
	if (!authorized(cfg, &h)) {
		*status = 401;
		respond_text(out, 401, "WWW-Authenticate: Bearer realm=\"molerat\"\r\n",
			     "a bearer token is required: Authorization: Bearer TOKEN\n", head);
		return;
	}
	bool metrics = path_is(path, "/metrics"), health = path_is(path, "/healthz"),
	     api = path_is(path, "/api/v1/status");
	if (!metrics && !health && !api) {
		*status = 404;
		respond_text(out, 404, NULL, "not found; try /metrics, /healthz, /api/v1/status\n", head);
		return;
	}
	if (!get && !head) {
		*status = 405;
		respond_text(out, 405, allow, "method not allowed\n", false);
		return;
	}
	struct status st;
	memset(&st, 0, sizeof(st));
	st.open_fds = -1;
	st.rss_bytes = -1;
	if (cfg->src.snapshot)
		cfg->src.snapshot(cfg->src.arg, &st);
	if (!st.role) {
		st.role = "server";
		st.version = MOLERAT_VERSION;
		st.transport = "tcp";
	}
	/* The body is rendered straight into out behind room for the head,
	 * sized beforehand: a scrape of 1,000 services is 1.4 MB, and growing
	 * it by doublings, then copying it behind its head, cost more than
	 * rendering it. The head then moves in front of the body. */
	static const char room[HEAD_ROOM];
	size_t base = out->len, guess = metrics ? 1600 : health ? 64 : 320;
	strbuf_reserve(out, HEAD_ROOM + 4096 + guess * st.n_svcs);
	strbuf_put(out, room, HEAD_ROOM);
	const char *type;
	int code = 200;
	if (metrics) {
		metrics_process(&st.open_fds, &st.rss_bytes);
		metrics_render_prom(&st, out);
		type = "text/plain; version=0.0.4; charset=utf-8";
	} else if (health) {
		code = metrics_render_health(&st, out) ? 200 : 503;
		type = "text/plain; charset=utf-8";
	} else {
		metrics_render_json(&st, out);
		type = "application/json";
	}
	size_t n = out->len - base - HEAD_ROOM;
	if (out->oom || n > ADMIN_MAX_RESPONSE) {
		*status = 500;
		if (!out->oom)
			out->len = base;
		respond_text(out, 500, NULL, "the response cannot be made (out of memory)\n", head);
		return;
	}
	*status = code;
	char hd[HEAD_ROOM];
	size_t hl = head_of(hd, code, type, NULL, n);
	char *p = out->p + base;
	if (!head)
		memmove(p + hl, p + HEAD_ROOM, n);
	memcpy(p, hd, hl);
	out->len = base + hl + (head ? 0 : n);
	out->p[out->len] = '\0';
}

/* ---------------------------------------------------------------- connections */

static void conn_free_mem(void *arg)
{
	struct aconn *c = arg;
	free(c->out);
	free(c);
}

static void conn_close(struct aconn *c)
{
	struct admin *a = c->a;
	struct loop *loop = a->cfg.loop;
	loop_timer_stop(loop, &c->t);
	if (loop_io_active(&c->w)) {
		int fd = c->w.fd;
		loop_io_stop(loop, &c->w);
		close(fd);
	}
	list_remove(&a->conns, &c->link);
	loop_defer(loop, conn_free_mem, c);
}

/* Closes a peer that misbehaved, with one (rate-limited) log line. */
static void conn_drop(struct aconn *c, const char *why)
{
	log_limited(&c->a->log_drop, loop_now(c->a->cfg.loop), LOGL_WARN, "admin endpoint: %s: %s; dropped",
		    c->peer, why);
	conn_close(c);
}

static void conn_write(struct aconn *c)
{
	struct loop *loop = c->a->cfg.loop;
	bool progress = false;
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->w.fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			log_debug("admin endpoint: %s: write failed: %s", c->peer, strerror(errno));
			conn_close(c);
			return;
		}
		c->out_off += (size_t)n;
		progress = true;
	}
	if (c->out_off < c->out_len) {
		loop_io_set(loop, &c->w, LOOP_WRITE);
		if (progress || !loop_timer_active(&c->t))
			loop_timer_start(loop, &c->t, ADMIN_WRITE_MS);
		return;
	}
	if (!c->a->spare.p && c->out_cap <= SPARE_MAX)
		c->a->spare = (struct strbuf){ .p = c->out, .cap = c->out_cap };
	else
		free(c->out);
	c->out = NULL;
	shutdown(c->w.fd, SHUT_WR);
	c->state = AC_LINGER;
	loop_io_set(loop, &c->w, LOOP_READ);
	loop_timer_start(loop, &c->t, ADMIN_LINGER_MS);
}

/* The response in out becomes c's (out is reset) and its writing starts.
 * False when memory ran out making it (nothing is written then). */
static bool conn_start_write(struct aconn *c, struct strbuf *out)
{
	c->out_cap = out->cap;
	c->out = strbuf_take(out, &c->out_len);
	if (!c->out)
		return false;
	c->state = AC_WRITING;
	loop_timer_stop(c->a->cfg.loop, &c->t);
	conn_write(c);
	return true;
}

static void conn_respond(struct aconn *c, size_t head_len)
{
	struct strbuf out = c->a->spare;   /* taken whole: the admin keeps none */
	c->a->spare = (struct strbuf){ 0 };
	int code;
	admin_respond(&c->a->cfg, c->in, head_len, &out, &code);
	if (out.oom)
		;   /* dropped below, with its own line */
	else if (code == 400)
		log_limited(&c->a->log_bad, loop_now(c->a->cfg.loop), LOGL_WARN,
			    "admin endpoint: %s: not an HTTP request; 400", c->peer);
	else
		log_debug("admin endpoint: %s: %.*s -> %d", c->peer, (int)strcspn(c->in, "\r\n"), c->in, code);
	if (!conn_start_write(c, &out))
		conn_drop(c, "out of memory for the response");
}

static void conn_on_431(struct aconn *c)
{
	struct strbuf out = { 0 };
	respond_text(&out, 431, NULL, "request head too large\n", false);
	log_limited(&c->a->log_big, loop_now(c->a->cfg.loop), LOGL_WARN,
		    "admin endpoint: %s: request head over %d bytes; 431", c->peer, ADMIN_HEAD_MAX);
	if (!conn_start_write(c, &out))
		conn_close(c);
}

static void conn_read_head(struct aconn *c)
{
	for (;;) {
		ssize_t n = recv(c->w.fd, c->in + c->in_len, sizeof(c->in) - c->in_len, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			if (c->in_len)
				conn_drop(c, n == 0 ? "closed before the request head was complete" : strerror(errno));
			else
				conn_close(c);   /* a probe: connect, close */
			return;
		}
		c->in_len += (size_t)n;
		ssize_t end = http_head_end(c->in, c->in_len, sizeof(c->in));
		if (end == MR_ELIMIT) {
			conn_on_431(c);
			return;
		}
		if (end > 0) {
			conn_respond(c, (size_t)end);
			return;
		}
	}
}

static void conn_linger(struct aconn *c)
{
	char buf[4096];
	for (;;) {
		ssize_t n = recv(c->w.fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0 || (c->lingered += (size_t)n) > LINGER_READ_MAX) {
			conn_close(c);
			return;
		}
	}
}

static void conn_on_io(struct loop *loop, struct io_watcher *w, unsigned revents)
{
	struct aconn *c = w->data;
	switch (c->state) {
	case AC_HEAD:
		conn_read_head(c);
		break;
	case AC_WRITING:
		if (revents & (LOOP_WRITE | LOOP_ERROR))
			conn_write(c);
		break;
	case AC_LINGER:
		conn_linger(c);
		break;
	}
}

static void conn_on_timer(struct loop *loop, struct timer *t)
{
	struct aconn *c = t->data;
	if (c->state == AC_HEAD)
		conn_drop(c, "no complete request head in time");
	else if (c->state == AC_WRITING)
		conn_drop(c, "the response is not being read");
	else
		conn_close(c);
}

static void admin_on_accept(struct loop *loop, struct io_watcher *w, unsigned revents)
{
	struct admin *a = w->data;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct addr peer;
		int fd = sock_accept(w->fd, &peer);
		if (fd == -EAGAIN)
			return;
		if (fd == -EINTR || fd == -ECONNABORTED || fd == -EPROTO || fd == -EPERM)
			continue;
		if (fd < 0) {
			log_limited(&a->log_accept, loop_now(loop), LOGL_WARN,
				    "admin endpoint: accept failed: %s; pausing accepts for %d ms", mr_strerror(fd),
				    ACCEPT_PAUSE_MS);
			loop_io_set(loop, w, 0);
			loop_timer_start(loop, &a->accept_resume, ACCEPT_PAUSE_MS);
			return;
		}
		char pbuf[ADDR_STRLEN];
		addr_str(&peer, pbuf, sizeof(pbuf));
		if (a->conns.n >= ADMIN_MAX_CONNS) {
			log_limited(&a->log_full, loop_now(loop), LOGL_WARN,
				    "admin endpoint: %s: %d connections already open; dropped", pbuf, ADMIN_MAX_CONNS);
			close(fd);
			continue;
		}
		int sndbuf = CONN_SNDBUF;
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
		struct aconn *c = malloc(sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		memset(c, 0, offsetof(struct aconn, in));
		c->a = a;
		memcpy(c->peer, pbuf, sizeof(pbuf));
		loop_io_init(&c->w, conn_on_io, c);
		loop_timer_init(&c->t, conn_on_timer, c);
		if (loop_io_start(loop, &c->w, fd, LOOP_READ) < 0) {
			close(fd);
			free(c);
			continue;
		}
		list_push_back(&a->conns, &c->link);
		loop_timer_start(loop, &c->t, ADMIN_HEAD_MS);
	}
}

static void admin_accept_resume(struct loop *loop, struct timer *t)
{
	struct admin *a = t->data;
	loop_io_set(loop, &a->lw, LOOP_READ);
}

/* ---------------------------------------------------------------- lifetime */

int admin_new(const struct admin_cfg *cfg, struct admin **out)
{
	*out = NULL;
	char host[256];
	uint16_t port;
	struct addr addr;
	if (addr_split_host_port(cfg->bind_addr, host, sizeof(host), &port) < 0 ||
	    addr_from_literal(strcmp(host, "localhost") ? host : "127.0.0.1", port, &addr) < 0) {
		log_error("admin endpoint: bind_addr \"%s\" is not an IP address and a port", cfg->bind_addr);
		return MR_EFORMAT;
	}
	struct admin *a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->cfg = *cfg;
	a->bind_addr = strdup(cfg->bind_addr);
	if (cfg->token) {
		a->token = malloc(cfg->token_len + 1);
		if (a->token) {
			memcpy(a->token, cfg->token, cfg->token_len);
			a->token[cfg->token_len] = '\0';
		}
	}
	loop_io_init(&a->lw, admin_on_accept, a);
	loop_timer_init(&a->accept_resume, admin_accept_resume, a);
	if (!a->bind_addr || (cfg->token && !a->token)) {
		admin_free(a);
		return -ENOMEM;
	}
	a->cfg.bind_addr = a->bind_addr;
	a->cfg.token = a->token;
	int fd = sock_listen_tcp(&addr);
	if (fd < 0) {
		log_error("admin endpoint: cannot listen on %s: %s; is another process using the port?",
			  cfg->bind_addr, mr_strerror(fd));
		admin_free(a);
		return fd;
	}
	int r = loop_io_start(cfg->loop, &a->lw, fd, LOOP_READ);
	if (r < 0) {
		close(fd);
		admin_free(a);
		return r;
	}
	char buf[ADDR_STRLEN];
	struct addr local;
	if (sock_local_addr(fd, &local) == 0)
		log_info("admin endpoint on http://%s/ (%s)", addr_str(&local, buf, sizeof(buf)),
			 a->token ? "bearer token required" : "no token: loopback only");
	*out = a;
	return 0;
}

static void admin_free_mem(void *arg)
{
	struct admin *a = arg;
	free(a->spare.p);
	free(a);
}

void admin_free(struct admin *a)
{
	if (!a)
		return;
	struct loop *loop = a->cfg.loop;
	if (loop_io_active(&a->lw)) {
		int fd = a->lw.fd;
		loop_io_stop(loop, &a->lw);
		close(fd);
	}
	loop_timer_stop(loop, &a->accept_resume);
	while (list_first(&a->conns))
		conn_close(list_first_entry(&a->conns, struct aconn, link));
	if (a->token) {
		explicit_bzero(a->token, a->cfg.token_len);
		free(a->token);
	}
	free(a->bind_addr);
	loop_defer(loop, admin_free_mem, a);
}

unsigned admin_local_port(const struct admin *a)
{
	struct addr local;
	if (!a || !loop_io_active(&a->lw) || sock_local_addr(a->lw.fd, &local) < 0)
		return 0;
	return addr_port(&local);
}
