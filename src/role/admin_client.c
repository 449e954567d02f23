/* admin_client: see admin_client.h. */
#include "role/admin_client.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "codec/addr.h"
#include "codec/http_head.h"
#include "codec/json.h"

static long long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on fd until the deadline. 0, or -ETIMEDOUT. */
static int wait_fd(int fd, short events, long long deadline)
{
	for (;;) {
		long long left = deadline - mono_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd p = { .fd = fd, .events = events };
		int n = poll(&p, 1, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n > 0)
			return 0;
	}
}

/* The address to ask: a wildcard bind is reached on loopback. */
static int target_addr(const char *bind_addr, struct addr *a)
{
	char host[256];
	uint16_t port;
	if (addr_split_host_port(bind_addr, host, sizeof(host), &port) < 0)
		return MR_EFORMAT;
	const char *h = host;
	if (!strcmp(h, "localhost") || !strcmp(h, "0.0.0.0"))
		h = "127.0.0.1";
	else if (!strcmp(h, "::"))
		h = "::1";
	return addr_from_literal(h, port, a);
}

int admin_http_get(const char *bind_addr, const char *token, size_t token_len, const char *path,
		   int timeout_ms, int *status, char **body, size_t *len, char *why, size_t errcap)
{
	struct addr a;
	long long deadline = mono_ms() + timeout_ms;
	*body = NULL;
	if (target_addr(bind_addr, &a) < 0) {
		snprintf(why, errcap, "bind_addr \"%s\" is not an IP address and a port", bind_addr);
		return MR_EFORMAT;
	}
	int fd = socket(a.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(why, errcap, "socket: %s", strerror(errno));
		return -errno;
	}
	char *req = NULL, *buf = NULL;
	size_t cap = 0, got = 0;
	int r = connect(fd, (const struct sockaddr *)&a.ss, a.len) == 0 || errno == EINPROGRESS ? 0 : -errno;
	if (r == 0)
		r = wait_fd(fd, POLLOUT, deadline);
	if (r == 0) {
		int e = 0;
		socklen_t el = sizeof(e);
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el);
		r = -e;
	}
	if (r < 0) {
		snprintf(why, errcap, "cannot connect: %s", strerror(-r));
		goto out;
	}
	size_t rcap = strlen(path) + token_len + 256, rlen;
	req = malloc(rcap);
	if (!req) {
		r = -ENOMEM;
		snprintf(why, errcap, "out of memory");
		goto out;
	}
	int m = snprintf(req, rcap, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: molerat-status\r\nConnection: close\r\n%s",
			 path, bind_addr, token ? "Authorization: Bearer " : "");
	rlen = (size_t)m;
	if (token) {
		memcpy(req + rlen, token, token_len);
		rlen += token_len;
		memcpy(req + rlen, "\r\n", 2);
		rlen += 2;
	}
	memcpy(req + rlen, "\r\n", 2);
	rlen += 2;
	for (size_t off = 0; off < rlen;) {
		ssize_t n = send(fd, req + off, rlen - off, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			if ((r = wait_fd(fd, POLLOUT, deadline)) < 0)
				break;
			continue;
		}
		if (n < 0) {
			r = -errno;
			break;
		}
		off += (size_t)n;
	}
	if (r < 0) {
		snprintf(why, errcap, "cannot send the request: %s", strerror(-r));
		goto out;
	}
	for (;;) {
		if (got + 1 >= cap) {
			size_t nc = cap ? cap * 2 : 16384;
			char *nb = nc <= ADMIN_CLIENT_MAX_BYTES ? realloc(buf, nc) : NULL;
			if (!nb) {
				r = MR_ELIMIT;
				snprintf(why, errcap, "the answer is larger than %d bytes", ADMIN_CLIENT_MAX_BYTES);
				goto out;
			}
			buf = nb;
			cap = nc;
		}
		ssize_t n = recv(fd, buf + got, cap - 1 - got, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			if ((r = wait_fd(fd, POLLIN, deadline)) < 0) {
				snprintf(why, errcap, "no complete answer within %d ms", timeout_ms);
				goto out;
			}
			continue;
		}
		if (n < 0) {
			r = -errno;
			snprintf(why, errcap, "cannot read the answer: %s", strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	ssize_t hl = http_head_end(buf ? buf : "", got, got + 1);
	struct http_head h;
	if (hl <= 0 || http_parse_response(buf, (size_t)hl, &h, NULL) < 0) {
		r = MR_EFORMAT;
		snprintf(why, errcap, "the answer is not HTTP");
		goto out;
	}
	*status = h.status;
	*len = got - (size_t)hl;
	*body = malloc(*len + 1);
	if (!*body) {
		r = -ENOMEM;
		snprintf(why, errcap, "out of memory");
		goto out;
	}
	memcpy(*body, buf + hl, *len);
	(*body)[*len] = '\0';
	r = 0;
out:
	close(fd);
	if (req) {
		explicit_bzero(req, strlen(path) + token_len + 256);
		free(req);
	}
	free(buf);
	return r;
}

/* ---------------------------------------------------------------- printing */

static unsigned long long num(const struct json *o, const char *k)
{
	const struct json *v = json_get(o, k);
	return v && v->type == JSON_NUMBER && v->is_uint ? (unsigned long long)v->u : 0;
}

/* A string of the document for a terminal: control bytes become '?'. */
static void put_clean(FILE *out, const char *s, size_t n, size_t max)
{
	for (size_t i = 0; i < n && i < max; i++) {
		unsigned char c = (unsigned char)s[i];
		fputc(c < 0x20 || c == 0x7f ? '?' : c, out);
	}
	if (n > max)
		fputs("...", out);
}

static void put_age(FILE *out, long long secs)
{
	if (secs < 0)
		secs = 0;
	if (secs >= 86400)
		fprintf(out, "%lldd%lldh", secs / 86400, secs % 86400 / 3600);
	else if (secs >= 3600)
		fprintf(out, "%lldh%lldm", secs / 3600, secs % 3600 / 60);
	else if (secs >= 60)
		fprintf(out, "%lldm%llds", secs / 60, secs % 60);
	else
		fprintf(out, "%llds", secs);
}

static void put_bytes(FILE *out, unsigned long long b)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)b;
	int u = 0;
	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		fprintf(out, "%llu B", b);
	else
		fprintf(out, "%.1f %s", v, units[u]);
}

int admin_status_print(const struct json *doc, long long now, FILE *out)
{
	const struct json *role = json_get(doc, "role"), *svcs = json_get(doc, "services");
	const struct json *ver = json_get(doc, "version");
	if (!role || role->type != JSON_STRING || !svcs || svcs->type != JSON_ARRAY)
		return ADMIN_STATUS_UNREACHABLE;
	int rc = ADMIN_STATUS_UP;
	put_clean(out, role->str, role->len, 16);
	fprintf(out, " (molerat ");
	if (ver && ver->type == JSON_STRING)
		put_clean(out, ver->str, ver->len, 32);
	fprintf(out, "), up ");
	put_age(out, now - (long long)num(doc, "started"));
	fprintf(out, ", %zu service%s\n", svcs->n, svcs->n == 1 ? "" : "s");
	for (size_t i = 0; i < svcs->n; i++) {
		const struct json *s = &svcs->items[i];
		const struct json *name = json_get(s, "name"), *state = json_get(s, "state");
		const struct json *err = json_get(s, "last_error");
		bool up = state && state->type == JSON_STRING && !strcmp(state->str, "up");
		if (!up)
			rc = ADMIN_STATUS_NOT_UP;
		fputs("  ", out);
		if (name && name->type == JSON_STRING)
			put_clean(out, name->str, name->len, 64);
		else
			fputs("?", out);
		fputs("  ", out);
		if (state && state->type == JSON_STRING)
			put_clean(out, state->str, state->len, 16);
		else
			fputs("?", out);
		fputs(" for ", out);
		put_age(out, now - (long long)num(s, "since"));
		fprintf(out, "  visitors %llu active, %llu total  bytes to service ", num(s, "visitors_active"),
			num(s, "visitors_total"));
		put_bytes(out, num(s, "bytes_to_service"));
		fputs(", to visitor ", out);
		put_bytes(out, num(s, "bytes_to_visitor"));
		const struct json *msg = err ? json_get(err, "message") : NULL;
		if (msg && msg->type == JSON_STRING) {
			fputs("  last error: ", out);
			put_clean(out, msg->str, msg->len, 200);
			fputs(" (", out);
			put_age(out, now - (long long)num(err, "time"));
			fputs(" ago)", out);
		}
		fputc('\n', out);
	}
	return rc;
}

/* Whether every service of a status document is up (an ADMIN_STATUS_*). */
static int states_of(const struct json *doc)
{
	const struct json *svcs = json_get(doc, "services");
	if (!json_get(doc, "role") || !svcs || svcs->type != JSON_ARRAY)
		return ADMIN_STATUS_UNREACHABLE;
	for (size_t i = 0; i < svcs->n; i++) {
		const struct json *st = json_get(&svcs->items[i], "state");
		if (!st || st->type != JSON_STRING || strcmp(st->str, "up"))
			return ADMIN_STATUS_NOT_UP;
	}
	return ADMIN_STATUS_UP;
}

int admin_status(const char *role, const struct conf_admin *a, bool json, FILE *out, FILE *err)
{
	int status = 0;
	char *body = NULL;
	size_t len = 0;
	char why[256];
	int r = admin_http_get(a->bind_addr, a->token, a->token_len, "/api/v1/status", ADMIN_CLIENT_TIMEOUT_MS,
			       &status, &body, &len, why, sizeof(why));
	if (r < 0) {
		fprintf(err, "molerat status: the %s's admin endpoint http://%s/ cannot be reached: %s\n", role,
			a->bind_addr, why);
		return ADMIN_STATUS_UNREACHABLE;
	}
	if (status != 200) {
		fprintf(err, "molerat status: the %s's admin endpoint http://%s/ answered %d%s\n", role, a->bind_addr,
			status, status == 401 ? " (the token in the config is not the running one's)" : "");
		free(body);
		return ADMIN_STATUS_UNREACHABLE;
	}
	const char *jwhy = NULL;
	size_t at = 0;
	struct json *doc = json_parse(body, len, &jwhy, &at);
	int rc = ADMIN_STATUS_UNREACHABLE;
	if (!doc) {
		fprintf(err, "molerat status: the %s's admin endpoint http://%s/ sent no status document (%s at byte %zu)\n",
			role, a->bind_addr, jwhy ? jwhy : "?", at);
	} else if (json) {
		/* the exit status still says whether every service is up */
		rc = states_of(doc);
		fwrite(body, 1, len, out);
		if (len && body[len - 1] != '\n')
			fputc('\n', out);
	} else {
		rc = admin_status_print(doc, (long long)time(NULL), out);
	}
	if (rc == ADMIN_STATUS_UNREACHABLE && doc)
		fprintf(err, "molerat status: the %s's admin endpoint http://%s/ sent JSON that is not a status document\n",
			role, a->bind_addr);
	json_free(doc);
	free(body);
	return rc;
}
