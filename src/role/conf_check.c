/* conf_check: what a role checks in a loaded configuration before it
 * starts. Warnings: what rathole accepts at load but fails on later, and
 * more (key files that cannot be read, unusable noise keys and patterns,
 * addresses not in host:port form, settings ignored or contradicting the
 * other section). Unsupported: what this build accepts but cannot honour
 * yet. Each finding is one line placed by codec/conf.h's conf_key_pos()
 * and conf_key_path(), as load errors are. */
#include "role/conf_check.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/err.h"
#include "codec/keygen.h"
#include "codec/noise.h"

struct wctx {
	const struct conf *c;
	void (*warn)(void *arg, const char *line);
	void *arg;
	size_t n;
};

/* A key path: up to 6 keys with lengths (a service name may hold NUL). */
struct kpath {
	const char *k[6];
	size_t l[6];
	size_t n;
};

static struct kpath kp(const char *sec)
{
	struct kpath p = { .k = { sec }, .l = { strlen(sec) }, .n = 1 };
	return p;
}

static struct kpath kp_add(struct kpath p, const char *k)
{
	if (p.n < 6) {
		p.k[p.n] = k;
		p.l[p.n++] = strlen(k);
	}
	return p;
}

static struct kpath kp_svc(const char *sec, const struct conf_service *s)
{
	struct kpath p = kp_add(kp(sec), "services");
	p.k[p.n] = s->name;
	p.l[p.n++] = s->name_len;
	return p;
}

__attribute__((format(printf, 3, 4)))
static void wemit(struct wctx *x, struct kpath p, const char *fmt, ...)
{
	unsigned line, col;
	conf_key_pos(x->c, p.k, p.l, p.n, &line, &col);
	char path[320];
	conf_key_path(path, sizeof(path), p.k, p.l, p.n);
	char msg[640];
	int m = snprintf(msg, sizeof(msg), "%s:%u:%u: %s: ", x->c->path ? x->c->path : "(config)",
			 line, col, path);
	if (m > 0 && (size_t)m < sizeof(msg)) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(msg + m, sizeof(msg) - (size_t)m, fmt, ap);
		va_end(ap);
	}
	x->n++;
	if (x->warn)
		x->warn(x->arg, msg);
}

/* Why addr is not "host:port" as Rust's ToSocketAddrs takes it, or NULL. */
static const char *hostport_problem(const char *a)
{
	const char *colon = strrchr(a, ':');
	if (!colon)
		return "it has no :port";
	const char *p = colon + 1;
	unsigned long port = 0;
	if (!*p)
		return "the port is empty";
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return "the port is not a number";
		port = port * 10 + (unsigned long)(*p - '0');
		if (port > 65535)
			return "the port is over 65535";
	}
	size_t hn = (size_t)(colon - a);
	if (hn == 0)
		return "the host is empty";
	if (a[0] == '[') {
		if (a[hn - 1] != ']' || hn < 3)
			return "the IPv6 address is not closed by ]";
		char v6[64];
		unsigned char buf[16];
		if (hn - 2 >= sizeof(v6))
			return "the IPv6 address is not valid";
		memcpy(v6, a + 1, hn - 2);
		v6[hn - 2] = '\0';
		if (inet_pton(AF_INET6, v6, buf) != 1)
			return "the IPv6 address is not valid";
		return NULL;
	}
	if (memchr(a, ':', hn))
		return "an IPv6 address must be written in brackets, e.g. [::1]:2333";
	return NULL;
}

static void warn_addr(struct wctx *x, struct kpath p, const char *value, const char *example)
{
	if (!value)
		return;
	const char *why = hostport_problem(value);
	if (why) {
		char q[96];
		conf_quote(q, sizeof(q), value, strlen(value), 40);
		wemit(x, p, "%s is not in host:port form (%s); expected a string like %s", q, why, example);
	}
}

static void warn_file(struct wctx *x, struct kpath p, const char *file, const char *what)
{
	if (!file || access(file, R_OK) == 0)
		return;
	char q[96];
	int e = errno;
	conf_quote(q, sizeof(q), file, strlen(file), 40);
	wemit(x, p, "%s cannot be read (%s), so %s; note that relative paths are relative to the "
		    "working directory, not to the configuration file", q, strerror(e), what);
}

/* A configured Noise key: standard base64 of exactly dhlen bytes. */
static void key_errors(struct wctx *x, struct kpath p, const char *b64, size_t dhlen)
{
	uint8_t buf[96];
	if (!b64)
		return;
	int n = keygen_b64_decode(b64, strlen(b64), buf, sizeof(buf));
	explicit_bzero(buf, sizeof(buf));
	if (n == MR_ELIMIT)
		wemit(x, p, "the key decodes to more than %zu bytes, not %zu; use a key from "
			    "`molerat --genkey`", sizeof(buf), dhlen);
	else if (n >= 0 && (size_t)n != dhlen)
		wemit(x, p, "the key decodes to %d bytes, not %zu; use a key from `molerat --genkey`", n, dhlen);
	else if (n < 0)
		wemit(x, p, "the key is not valid standard base64; use a key from `molerat --genkey`");
}

/* The [*.transport.noise] settings a noise transport cannot start with:
 * the protocol name, the keys' encoding and length, a key the pattern
 * needs from the other side. */
static void noise_errors(struct wctx *x, const char *sec, const struct conf_noise *n, bool server)
{
	struct kpath p = kp_add(kp_add(kp(sec), "transport"), "noise");
	const char *name = n->pattern ? n->pattern : "Noise_NK_25519_ChaChaPoly_BLAKE2s";
	struct noise_protocol proto;
	const char *why = NULL;
	if (noise_protocol_parse(name, &proto, &why) == 0 && proto.one_way)
		why = "one-way patterns (N, K, X) cannot carry traffic both ways";
	else if (!why && proto.psk_mask)
		why = "a PSK pattern needs a pre-shared key, which cannot be configured";
	if (why) {
		char q[96];
		conf_quote(q, sizeof(q), name, strlen(name), 60);
		wemit(x, kp_add(p, "pattern"), "%s is not a usable Noise protocol name (%s); e.g. pattern = "
					     "\"Noise_NK_25519_ChaChaPoly_BLAKE2s\"", q, why ? why : "");
		return;
	}
	key_errors(x, kp_add(p, "local_private_key"), n->local_private_key, proto.dhlen);
	key_errors(x, kp_add(p, "remote_public_key"), n->remote_public_key, proto.dhlen);
	enum noise_role role = server ? NOISE_RESPONDER : NOISE_INITIATOR;
	if (noise_needs_remote_static(&proto, role) && !n->remote_public_key)
		wemit(x, p, "the pattern needs remote_public_key (the %s's public key) on the %s; add "
			    "remote_public_key = \"...\"", server ? "client" : "server", sec);
}

/* What works but surprises: a static key the other side must know in
 * advance, made up at every start. */
static void warn_noise(struct wctx *x, const char *sec, const struct conf_noise *n, bool server)
{
	struct noise_protocol proto;
	const char *name = n->pattern ? n->pattern : "Noise_NK_25519_ChaChaPoly_BLAKE2s";
	if (noise_protocol_parse(name, &proto, NULL) < 0 || proto.one_way)
		return;
	/* the initiator is the client, the responder the server; K = the
	 * other side knows this static key in advance */
	char mine = server ? proto.responder_static : proto.initiator_static;
	if (mine == 'K' && !n->local_private_key)
		wemit(x, kp_add(kp_add(kp(sec), "transport"), "noise"),
		      "without local_private_key a new random key is made at every start, and the %s "
		      "cannot know it as the pattern requires; add local_private_key from `molerat --genkey`",
		      server ? "client" : "server");
}

static void warn_transport(struct wctx *x, const char *sec, const struct conf_transport *t,
			   bool server, const char *remote_addr)
{
	struct kpath tp = kp_add(kp(sec), "transport");
	const char *tname = conf_xport_type_name(t->type);
	/* tcp */
	struct kpath tcp = kp_add(tp, "tcp");
	if (t->tcp.keepalive_secs == 0 || t->tcp.keepalive_secs > 32767)
		wemit(x, kp_add(tcp, "keepalive_secs"), "Linux accepts 1 to 32767 for the keepalive idle "
							 "time, so this setting fails and is ignored; e.g. keepalive_secs = 20");
	if (t->tcp.keepalive_interval == 0 || t->tcp.keepalive_interval > 32767)
		wemit(x, kp_add(tcp, "keepalive_interval"), "Linux accepts 1 to 32767 for the keepalive "
							     "interval, so this setting fails and is ignored; e.g. keepalive_interval = 8");
	if (t->tcp.proxy) {
		const struct conf_url *u = &t->tcp.proxy_url;
		struct kpath pp = kp_add(tcp, "proxy");
		if (server)
			wemit(x, pp, "a proxy is only used by a client; it is ignored here");
		else if (!u->host || !u->host[0])
			; /* an error (transport_errors) */
		else if (!u->has_port)
			wemit(x, pp, "the proxy URL has no port or the scheme's default one: molerat uses %s, "
				     "but rathole cannot (it panics); write the port explicitly, e.g. %s://%s:%s",
			      strcmp(u->scheme, "http") ? "1080" : "80", u->scheme, u->host,
			      strcmp(u->scheme, "http") ? "1080" : "8080");
		else if (u->host[0] == '[')
			wemit(x, pp, "rathole cannot connect to a proxy given by a bracketed IPv6 address; use a "
				     "host name or IPv4 address");
		if (!server && ((u->username && strchr(u->username, '%')) || (u->password && strchr(u->password, '%'))))
			wemit(x, pp, "molerat percent-decodes the proxy credentials but rathole sends them "
				     "still encoded, so the two clients log in differently; avoid characters "
				     "that need encoding");
	}
	/* which sub-tables the type uses */
	bool use_tls = t->type == CONF_XPORT_TLS || (t->type == CONF_XPORT_WEBSOCKET && t->websocket.present &&
						 t->websocket.tls);
	if (t->tls.present && !use_tls)
		wemit(x, kp_add(tp, "tls"), "this table is ignored with type = \"%s\"", tname);
	if (t->noise.present && t->type != CONF_XPORT_NOISE)
		wemit(x, kp_add(tp, "noise"), "this table is ignored with type = \"%s\"", tname);
	if (t->websocket.present && t->type != CONF_XPORT_WEBSOCKET)
		wemit(x, kp_add(tp, "websocket"), "this table is ignored with type = \"%s\"", tname);
	if (t->type == CONF_XPORT_NOISE) {
		if (!t->noise.present)
			wemit(x, kp_add(tp, "type"), "type = \"noise\" needs a [%s.transport.noise] table; "
						    "rathole accepts the file but the instance fails at start; add it",
			      sec);
		else
			warn_noise(x, sec, &t->noise, server);
	}
	if (t->type == CONF_XPORT_WEBSOCKET && t->websocket.present && t->websocket.tls) {
		if (!t->tls.present)
			wemit(x, kp_add(kp_add(tp, "websocket"), "tls"),
			      "tls = true needs a [%s.transport.tls] table; the instance fails at start; add "
			      "it", sec);
		else if (server && (!t->tls.pkcs12 || !t->tls.pkcs12_password))
			wemit(x, kp_add(tp, "tls"), "WebSocket over TLS on a server needs pkcs12 and "
						   "pkcs12_password; rathole panics at the first connection; add them");
	}
	if (!use_tls || !t->tls.present)
		return;
	struct kpath tls = kp_add(tp, "tls");
	if (server) {
		warn_file(x, kp_add(tls, "pkcs12"), t->tls.pkcs12, "the server fails at start");
		warn_file(x, kp_add(tls, "trusted_root"), t->tls.trusted_root,
			  "the server fails at start (it reads trusted_root too)");
		return;
	}
	warn_file(x, kp_add(tls, "trusted_root"), t->tls.trusted_root, "the client fails at start");
	if (t->tls.pkcs12) {
		warn_file(x, kp_add(tls, "pkcs12"), t->tls.pkcs12,
			  "the client fails at start (a client loads pkcs12 though it does not use it)");
		if (!t->tls.pkcs12_password)
			wemit(x, kp_add(tls, "pkcs12"), "a client with pkcs12 but no pkcs12_password makes "
							 "rathole panic at start; remove pkcs12 (a client does not use it)");
	}
	if (!t->tls.hostname && remote_addr && remote_addr[0] == '[')
		wemit(x, tls, "without hostname the TLS name is taken from remote_addr with its brackets "
			      "and verification fails in rathole; add hostname = \"...\"");
}

static void warn_services_server(struct wctx *x, const struct conf_server *s)
{
	for (size_t i = 0; i < s->n_services; i++) {
		const struct conf_service *v = &s->services[i];
		warn_addr(x, kp_add(kp_svc("server", v), "bind_addr"), v->bind_addr, "\"0.0.0.0:8080\"");
		for (size_t j = 0; j < i; j++)
			if (s->services[j].type == v->type && !strcmp(s->services[j].bind_addr, v->bind_addr)) {
				wemit(x, kp_add(kp_svc("server", v), "bind_addr"),
				      "another service binds the same address; only one of them can listen");
				break;   /* once per service, not once per pair */
			}
	}
}

static void warn_services_client(struct wctx *x, const struct conf_client *c)
{
	for (size_t i = 0; i < c->n_services; i++) {
		const struct conf_service *v = &c->services[i];
		warn_addr(x, kp_add(kp_svc("client", v), "local_addr"), v->local_addr, "\"127.0.0.1:22\"");
		if (v->retry_interval == 0 && c->retry_interval != 0)
			wemit(x, kp_add(kp_svc("client", v), "retry_interval"),
			      "0 makes rathole retry in a busy loop after the first failure; use 1 or more");
	}
}

size_t conf_check_warnings(const struct conf *c, enum conf_mode mode,
			   void (*warn)(void *arg, const char *line), void *arg)
{
	struct wctx x = { .c = c, .warn = warn, .arg = arg };
	const struct conf_server *s = c->server;
	const struct conf_client *cl = c->client;
	if (s && mode != CONF_MODE_CLIENT) {
		warn_addr(&x, kp_add(kp("server"), "bind_addr"), s->bind_addr, "\"0.0.0.0:2333\"");
		warn_transport(&x, "server", &s->transport, true, NULL);
		warn_services_server(&x, s);
	}
	if (cl && mode != CONF_MODE_SERVER) {
		warn_addr(&x, kp_add(kp("client"), "remote_addr"), cl->remote_addr, "\"example.com:2333\"");
		if (cl->retry_interval == 0)
			wemit(&x, kp_add(kp("client"), "retry_interval"),
			      "0 makes rathole retry in a busy loop after the first failure; use 1 or more");
		warn_transport(&x, "client", &cl->transport, false, cl->remote_addr);
		warn_services_client(&x, cl);
	}
	if (s && cl) {
		if (cl->heartbeat_timeout != 0 &&
		    (s->heartbeat_interval == 0 || cl->heartbeat_timeout <= s->heartbeat_interval))
			wemit(&x, kp_add(kp("client"), "heartbeat_timeout"),
			      "%llu is not longer than server.heartbeat_interval (%llu%s), so the client "
			      "will drop idle connections; make it larger than the interval",
			      (unsigned long long)cl->heartbeat_timeout,
			      (unsigned long long)s->heartbeat_interval,
			      s->heartbeat_interval == 0 ? ": heartbeats are off" : "");
		for (size_t i = 0; i < cl->n_services; i++) {
			const struct conf_service *cv = &cl->services[i];
			const struct conf_service *sv =
				conf_service_find(s->services, s->n_services, cv->name, cv->name_len);
			if (!sv)
				continue;
			if (sv->type != cv->type)
				wemit(&x, kp_add(kp_svc("client", cv), "type"),
				      "the service is %s here but %s in [server.services]; both ends must "
				      "agree", conf_svc_type_name(cv->type), conf_svc_type_name(sv->type));
			if (sv->token_len != cv->token_len || memcmp(sv->token, cv->token, cv->token_len))
				wemit(&x, kp_svc("client", cv), "the token differs from the one in "
							       "[server.services]; authentication will fail");
		}
	}
	return x.n;
}

static void transport_errors(struct wctx *x, const char *sec, const struct conf_transport *t,
			     bool server)
{
	struct kpath tp = kp_add(kp(sec), "transport");
	if (t->type == CONF_XPORT_WEBSOCKET && !t->websocket.present)
		wemit(x, kp_add(tp, "type"), "type = \"websocket\" needs a [%s.transport.websocket] table "
					    "with tls = true or false (rathole refuses to start without it); add it",
		      sec);
	if (t->type == CONF_XPORT_NOISE && t->noise.present)
		noise_errors(x, sec, &t->noise, server);
	if (!server && t->tcp.proxy && (!t->tcp.proxy_url.host || !t->tcp.proxy_url.host[0]))
		wemit(x, kp_add(kp_add(tp, "tcp"), "proxy"), "the proxy URL has no host; write \"%s://host:port\"",
		      t->tcp.proxy_url.scheme);
}

size_t conf_check_errors(const struct conf *c, enum conf_mode mode,
			 void (*fail)(void *arg, const char *line), void *arg)
{
	struct wctx x = { .c = c, .warn = fail, .arg = arg };
	if (c->server && mode != CONF_MODE_CLIENT)
		transport_errors(&x, "server", &c->server->transport, true);
	if (c->client && mode != CONF_MODE_SERVER)
		transport_errors(&x, "client", &c->client->transport, false);
	return x.n;
}
