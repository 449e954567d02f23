/* metrics: what the admin endpoint (role/admin.h) reports, where its
 * counters live, and its three renderings: Prometheus text (GET /metrics),
 * the status JSON (GET /api/v1/status) and the health text (GET /healthz).
 * docs/admin.md names every metric and field.
 *
 * Where the counters live (no locks, no atomics: one loop):
 * - data plane, per service: struct relay_counters (plane/relay.h): bytes,
 *   relays, UDP datagrams and drops; written by the relays and the UDP
 *   forwarders;
 * - control plane, per service: struct svc_stats (here), owned by the
 *   role's service object (server svc, client csvc) and referenced by the
 *   client's data channels while they are open; written by server.c and
 *   client.c where the event happens;
 * - per instance: struct role_counters (handshake and auth failures),
 *   owned by role/reload.c so they survive a restart caused by a reload,
 *   and reached by the roles through runtime.stats.
 * A scrape asks the running role for a struct svc_status per service (a
 * view: pointers into the objects above, gauges computed then) and renders
 * it; nothing is kept between scrapes.
 *
 * Rendering is pure: no I/O, no loop (metrics_process reads /proc).
 * Output goes to a struct strbuf (base/strbuf.h): out of memory shows as
 * out->oom. Service names and error texts are arbitrary bytes: JSON
 * strings are escaped (invalid UTF-8 becomes U+FFFD), Prometheus label
 * values get \\, \" and \n escaped (invalid UTF-8 and NUL become U+FFFD).
 *
 * Ownership: svc_stats are reference-counted (svc_stats_new gives one
 * reference); a struct status and its svc_status array belong to whoever
 * filled them (role/reload.c) and are valid for one rendering. */
#ifndef MOLERAT_METRICS_H
#define MOLERAT_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/strbuf.h"
#include "codec/addr.h"
#include "plane/relay.h"

enum svc_state {
	SVC_DOWN = 0,      /* no control channel (client: waiting to retry) */
	SVC_CONNECTING,    /* client: dialing, handshake or Auth in progress */
	SVC_UP,            /* a live control channel */
};

/* molerat_data_channel_failures_total{reason} */
enum dc_fail_reason {
	DCF_CONNECT = 0,   /* "connect": the client gave up connecting one to the server */
	DCF_CLOSED,        /* "closed": it failed or was closed before it carried a visitor */
	DCF_LOCAL,         /* "local_connect": the client could not connect local_addr */
	DCF_PROTOCOL,      /* "protocol": an invalid or mismatched command */
	DCF_LIMIT,         /* "limit": a bound refused it (pool or channel count) */
	DCF_N,
};

/* molerat_handshake_failures_total{reason} */
enum hs_fail_reason {
	HSF_TIMEOUT = 0,   /* "timeout": not finished in time */
	HSF_EVICTED,       /* "evicted": closed to make room (server, flood bounds) */
	HSF_PROTOCOL,      /* "protocol": not a valid Hello / Ack / nonce */
	HSF_TRANSPORT,     /* "transport": the connection or its TLS/Noise/WebSocket layer failed */
	HSF_UNKNOWN_SERVICE, /* "unknown_service": a control channel for no configured service */
	HSF_STALE_KEY,     /* "stale_key": a data channel with an unknown session key */
	HSF_N,
};

enum { SVC_ERROR_MAX = 240 };

/* The control-plane counters of one service. */
struct svc_stats {
	unsigned refs;
	uint64_t connects_ok;          /* control channels established */
	uint64_t connects_failed;      /* server: Auth failures for it; client: failed attempts */
	uint64_t heartbeat_timeouts;   /* client: the control channel timed out */
	uint64_t dc_failures[DCF_N];
	uint64_t visitors_total;       /* server (TCP): visitors accepted */
	uint64_t pooled;               /* client gauge: data channels waiting for a command */
	int64_t since;                 /* unix s: the state last changed */
	int64_t last_heartbeat;        /* unix s: server: last sent; client: last
					* command received; 0: none yet */
	int64_t last_error_time;       /* unix s; 0: no error yet */
	char last_error[SVC_ERROR_MAX];
	char peer[ADDR_STRLEN];        /* the control channel's peer; "" when none */
};

struct svc_stats *svc_stats_new(void);
struct svc_stats *svc_stats_ref(struct svc_stats *s);
void svc_stats_unref(struct svc_stats *s);   /* NULL-safe */
/* Records an error (printf-style; cut at SVC_ERROR_MAX) with the time. */
void svc_stats_error(struct svc_stats *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The wall clock in unix seconds (for since, last_heartbeat). */
int64_t metrics_unix_now(void);

/* Per instance: survives a reload's restart (owned by role/reload.c). */
struct role_counters {
	uint64_t handshake_failures[HSF_N];
	uint64_t auth_failures;        /* server: wrong token; client: AuthFailed Acks */
};

/* One service as one scrape sees it. */
struct svc_status {
	const char *name;
	size_t name_len;
	bool udp;
	enum svc_state state;
	uint64_t pooled;               /* data channels ready for a visitor */
	uint64_t visitors_active;      /* TCP: waiting + relaying; UDP client: mappings */
	uint64_t visitors_total;
	uint64_t bytes_to_service;     /* visitor -> local service */
	uint64_t bytes_to_visitor;
	const struct svc_stats *st;    /* never NULL */
	const struct relay_counters *rc; /* never NULL */
};

enum { RELOAD_APPLIED = 0, RELOAD_REJECTED = 1 };

struct status {
	const char *role;              /* "server" / "client" */
	const char *version;
	const char *transport;         /* the handshake failures' transport label */
	int64_t started;               /* unix s */
	const struct svc_status *svcs;
	size_t n_svcs;
	const struct role_counters *counters;
	uint64_t reloads[2];           /* [RELOAD_APPLIED], [RELOAD_REJECTED] */
	long open_fds;                 /* -1: unknown */
	long long rss_bytes;           /* -1: unknown */
};

/* The process gauges, from /proc/self (-1 when unreadable). */
void metrics_process(long *open_fds, long long *rss_bytes);

/* Prometheus text format 0.0.4: every family with # HELP and # TYPE,
 * every service in every per-service family (zeros included). */
void metrics_render_prom(const struct status *s, struct strbuf *out);
/* The status document (docs/admin.md#status-json). */
void metrics_render_json(const struct status *s, struct strbuf *out);
/* One line per service, "NAME up" or "NAME down: REASON". Returns true
 * when every service is up (an instance with none is healthy). */
bool metrics_render_health(const struct status *s, struct strbuf *out);

/* s (n bytes) as a JSON string, quotes included. */
void metrics_json_string(struct strbuf *out, const char *s, size_t n);
/* s (n bytes) escaped as a Prometheus label value (no quotes). */
void metrics_prom_escape(struct strbuf *out, const char *s, size_t n);
/* The names of the label values. */
const char *metrics_dcf_name(enum dc_fail_reason r);
const char *metrics_hsf_name(enum hs_fail_reason r);
const char *metrics_udp_drop_name(enum udp_drop_reason r);
const char *metrics_state_name(enum svc_state s);

#endif
