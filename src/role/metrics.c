/* metrics: see metrics.h. */
#include "role/metrics.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- counters */

struct svc_stats *svc_stats_new(void)
{
	struct svc_stats *s = calloc(1, sizeof(*s));
	if (s) {
		s->refs = 1;
		s->since = metrics_unix_now();
	}
	return s;
}

struct svc_stats *svc_stats_ref(struct svc_stats *s)
{
	if (s)
		s->refs++;
	return s;
}

void svc_stats_unref(struct svc_stats *s)
{
	if (s && --s->refs == 0)
		free(s);
}

void svc_stats_error(struct svc_stats *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->last_error, sizeof(s->last_error), fmt, ap);
	va_end(ap);
	s->last_error_time = metrics_unix_now();
}

int64_t metrics_unix_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

void metrics_process(long *open_fds, long long *rss_bytes)
{
	*open_fds = -1;
	*rss_bytes = -1;
	DIR *d = opendir("/proc/self/fd");
	if (d) {
		long n = 0;
		struct dirent *e;
		while ((e = readdir(d)))
			if (e->d_name[0] != '.')
				n++;
		closedir(d);
		*open_fds = n - 1;   /* the directory's own descriptor */
	}
	FILE *f = fopen("/proc/self/statm", "re");
	if (f) {
		unsigned long long size, res;
		if (fscanf(f, "%llu %llu", &size, &res) == 2)
			*rss_bytes = (long long)res * sysconf(_SC_PAGESIZE);
		fclose(f);
	}
}

/* ---------------------------------------------------------------- names */

static const char *const dcf_names[DCF_N] = { "connect", "closed", "local_connect", "protocol", "limit" };
static const char *const hsf_names[HSF_N] = { "timeout", "evicted", "protocol", "transport",
					      "unknown_service", "stale_key" };
static const char *const drop_names[UDP_DROP_N] = { "queue_full", "too_large", "send_failed",
						    "unreachable", "limit" };

const char *metrics_dcf_name(enum dc_fail_reason r) { return (unsigned)r < DCF_N ? dcf_names[r] : "?"; }
const char *metrics_hsf_name(enum hs_fail_reason r) { return (unsigned)r < HSF_N ? hsf_names[r] : "?"; }
const char *metrics_udp_drop_name(enum udp_drop_reason r)
{
	return (unsigned)r < UDP_DROP_N ? drop_names[r] : "?";
}

const char *metrics_state_name(enum svc_state s)
{
	return s == SVC_UP ? "up" : s == SVC_CONNECTING ? "connecting" : "down";
}

/* ---------------------------------------------------------------- output helpers */

static void put(struct strbuf *o, const char *s)
{
	strbuf_put(o, s, strlen(s));
}

static void put_u64(struct strbuf *o, uint64_t v)
{
	char b[24];
	size_t i = sizeof(b);
	do {
		b[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	strbuf_put(o, b + i, sizeof(b) - i);
}

static void put_i64(struct strbuf *o, int64_t v)
{
	if (v < 0) {
		strbuf_putc(o, '-');
		put_u64(o, (uint64_t)0 - (uint64_t)v);
	} else {
		put_u64(o, (uint64_t)v);
	}
}

/* The length of the valid UTF-8 sequence at s[0..n) (1..4), or 0 when it
 * is not one (overlong forms, surrogates and code points over U+10FFFF
 * are not valid). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	if (c < 0x80)
		return 1;
	size_t k;
	uint32_t cp, min;
	if ((c & 0xe0) == 0xc0) {
		k = 2; cp = c & 0x1f; min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		k = 3; cp = c & 0x0f; min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		k = 4; cp = c & 0x07; min = 0x10000;
	} else {
		return 0;
	}
	if (n < k)
		return 0;
	for (size_t i = 1; i < k; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return k;
}

static const char REPLACEMENT[] = "\xef\xbf\xbd";   /* U+FFFD */

/* The bytes of s[0..n) as a JSON string body (json) or a Prometheus label
 * value: runs of bytes that need nothing are copied at once; a byte of no
 * valid UTF-8 sequence becomes U+FFFD. JSON escapes '"', '\\' and every
 * control byte; Prometheus escapes '"', '\\' and LF, and replaces NUL. */
static void escape(struct strbuf *o, const unsigned char *s, size_t n, bool json)
{
	size_t run = 0;   /* bytes copied as they are, pending */
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		bool plain = c < 0x80 && c != '"' && c != '\\' && (json ? c >= 0x20 : c != 0 && c != '\n');
		size_t k = plain ? 1 : c >= 0x80 ? utf8_len(s + i, n - i) : 0;
		if (k) {
			run += k;
			i += k;
			continue;
		}
		strbuf_put(o, s + i - run, run);
		run = 0;
		i++;
		char e[8];
		if (c == '"' || c == '\\' || c == '\n' || (json && (c == '\r' || c == '\t'))) {
			e[0] = '\\';
			e[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : (char)c;
			strbuf_put(o, e, 2);
		} else if (json && c < 0x20) {
			snprintf(e, sizeof(e), "\\u%04x", c);
			put(o, e);
		} else {
			put(o, REPLACEMENT);
		}
	}
	strbuf_put(o, s + n - run, run);
}

void metrics_json_string(struct strbuf *o, const char *s, size_t n)
{
	strbuf_putc(o, '"');
	escape(o, (const unsigned char *)s, n, true);
	strbuf_putc(o, '"');
}

void metrics_prom_escape(struct strbuf *o, const char *s, size_t n)
{
	escape(o, (const unsigned char *)s, n, false);
}

/* ---------------------------------------------------------------- Prometheus */

static void family(struct strbuf *o, const char *name, const char *type, const char *help)
{
	put(o, "# HELP ");
	put(o, name);
	strbuf_putc(o, ' ');
	put(o, help);
	put(o, "\n# TYPE ");
	put(o, name);
	strbuf_putc(o, ' ');
	put(o, type);
	strbuf_putc(o, '\n');
}

static char *cat(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

/* name{service="NAME"[,label="value"]} v, NAME escaped beforehand
 * (esc[0..n)); one line is made in a buffer and appended at once */
static void svc_sample(struct strbuf *o, const char *name, size_t name_n, const char *esc, size_t n,
		       const char *label, const char *value, uint64_t x)
{
	char line[512];
	size_t ln = label ? strlen(label) : 0, vn = label ? strlen(value) : 0;
	if (name_n + n + ln + vn + 64 > sizeof(line)) {
		strbuf_put(o, name, name_n);
		put(o, "{service=\"");
		strbuf_put(o, esc, n);
		if (label) {
			put(o, "\",");
			put(o, label);
			put(o, "=\"");
			put(o, value);
		}
		put(o, "\"} ");
		put_u64(o, x);
		strbuf_putc(o, '\n');
		return;
	}
	char *p = cat(line, name, name_n);
	p = cat(p, "{service=\"", 10);
	p = cat(p, esc, n);
	if (label) {
		p = cat(p, "\",", 2);
		p = cat(p, label, ln);
		p = cat(p, "=\"", 2);
		p = cat(p, value, vn);
	}
	p = cat(p, "\"} ", 3);
	char d[24];
	size_t i = sizeof(d);
	do {
		d[--i] = (char)('0' + x % 10);
		x /= 10;
	} while (x);
	p = cat(p, d + i, sizeof(d) - i);
	*p++ = '\n';
	strbuf_put(o, line, (size_t)(p - line));
}

/* What a per-service family reports of one service. */
typedef uint64_t (*svc_value_fn)(const struct svc_status *v, unsigned i);

static uint64_t v_up(const struct svc_status *v, unsigned i) { return v->state == SVC_UP; }
static uint64_t v_connects(const struct svc_status *v, unsigned i)
{
	return i == 0 ? v->st->connects_ok : v->st->connects_failed;
}
static uint64_t v_hb(const struct svc_status *v, unsigned i) { return v->st->heartbeat_timeouts; }
static uint64_t v_pooled(const struct svc_status *v, unsigned i) { return v->pooled; }
static uint64_t v_dcf(const struct svc_status *v, unsigned i) { return v->st->dc_failures[i]; }
static uint64_t v_vact(const struct svc_status *v, unsigned i) { return v->visitors_active; }
static uint64_t v_vtot(const struct svc_status *v, unsigned i) { return v->visitors_total; }
static uint64_t v_bytes(const struct svc_status *v, unsigned i)
{
	return i == 0 ? v->bytes_to_service : v->bytes_to_visitor;
}
static uint64_t v_dgrams(const struct svc_status *v, unsigned i) { return v->rc->udp_datagrams[i]; }
static uint64_t v_drops(const struct svc_status *v, unsigned i) { return v->rc->udp_drops[i]; }

static const char *const result_names[] = { "ok", "failed" };
static const char *const direction_names[] = { "to_service", "to_visitor" };

struct svc_family {
	const char *name, *type, *help;
	const char *label;              /* NULL: service only */
	const char *const *values;
	unsigned n_values;
	svc_value_fn value;
};

static const struct svc_family svc_families[] = {
	{ "molerat_service_up", "gauge", "1 while the service has a live control channel, else 0.",
	  NULL, NULL, 1, v_up },
	{ "molerat_control_channel_connects_total", "counter",
	  "Control channel attempts by result (server: authenticated, or a wrong token; client: attempts).",
	  "result", result_names, 2, v_connects },
	{ "molerat_heartbeat_timeouts_total", "counter",
	  "Control channels given up because no heartbeat came in time (client).", NULL, NULL, 1, v_hb },
	{ "molerat_data_channels_pooled", "gauge", "Data channels open and waiting for a visitor.",
	  NULL, NULL, 1, v_pooled },
	{ "molerat_data_channel_failures_total", "counter",
	  "Data channels that failed before carrying a visitor, by reason.", "reason", dcf_names, DCF_N,
	  v_dcf },
	{ "molerat_visitors_active", "gauge",
	  "Visitor connections waiting or being forwarded (UDP client: visitor mappings).", NULL, NULL, 1,
	  v_vact },
	{ "molerat_visitors_total", "counter", "Visitor connections (UDP client: mappings) since the start.",
	  NULL, NULL, 1, v_vtot },
	{ "molerat_service_bytes_total", "counter",
	  "Payload bytes forwarded: to_service (visitor to local service) and to_visitor (back).",
	  "direction", direction_names, 2, v_bytes },
	{ "molerat_udp_datagrams_total", "counter", "UDP datagrams forwarded, by direction.", "direction",
	  direction_names, 2, v_dgrams },
	{ "molerat_udp_drops_total", "counter", "UDP datagrams dropped, by reason.", "reason", drop_names,
	  UDP_DROP_N, v_drops },
};

static void gauge1(struct strbuf *o, const char *name, const char *type, const char *help, int64_t v)
{
	family(o, name, type, help);
	put(o, name);
	strbuf_putc(o, ' ');
	put_i64(o, v);
	strbuf_putc(o, '\n');
}

void metrics_render_prom(const struct status *s, struct strbuf *o)
{
	family(o, "molerat_build_info", "gauge", "Always 1; the labels name the version and the role.");
	put(o, "molerat_build_info{version=\"");
	metrics_prom_escape(o, s->version, strlen(s->version));
	put(o, "\",role=\"");
	put(o, s->role);
	put(o, "\"} 1\n");
	gauge1(o, "molerat_start_time_seconds", "gauge", "When the process started, in unix seconds.",
	       s->started);
	/* every name escaped once, used by every family */
	struct strbuf names = { 0 };
	size_t *ends = calloc(s->n_svcs + 1, sizeof(*ends));
	if (!ends) {
		o->oom = true;
		return;
	}
	for (size_t i = 0; i < s->n_svcs; i++) {
		metrics_prom_escape(&names, s->svcs[i].name, s->svcs[i].name_len);
		ends[i + 1] = names.len;
	}
	if (names.oom)
		o->oom = true;
	for (size_t f = 0; f < sizeof(svc_families) / sizeof(svc_families[0]) && !names.oom; f++) {
		const struct svc_family *fam = &svc_families[f];
		size_t name_n = strlen(fam->name);
		family(o, fam->name, fam->type, fam->help);
		for (size_t i = 0; i < s->n_svcs; i++)
			for (unsigned k = 0; k < fam->n_values; k++)
				svc_sample(o, fam->name, name_n, names.p + ends[i], ends[i + 1] - ends[i], fam->label,
					   fam->values ? fam->values[k] : NULL, fam->value(&s->svcs[i], k));
	}
	free(names.p);
	free(ends);
	family(o, "molerat_handshake_failures_total", "counter",
	       "Connections that failed before becoming a control or data channel, by transport and reason.");
	for (unsigned k = 0; k < HSF_N; k++) {
		put(o, "molerat_handshake_failures_total{transport=\"");
		put(o, s->transport);
		put(o, "\",reason=\"");
		put(o, hsf_names[k]);
		put(o, "\"} ");
		put_u64(o, s->counters ? s->counters->handshake_failures[k] : 0);
		strbuf_putc(o, '\n');
	}
	gauge1(o, "molerat_auth_failures_total", "counter",
	       "Control channels refused for a wrong token (server), or refused by the server (client).",
	       s->counters ? (int64_t)s->counters->auth_failures : 0);
	family(o, "molerat_config_reloads_total", "counter", "Configuration reloads, applied or rejected.");
	put(o, "molerat_config_reloads_total{result=\"applied\"} ");
	put_u64(o, s->reloads[RELOAD_APPLIED]);
	put(o, "\nmolerat_config_reloads_total{result=\"rejected\"} ");
	put_u64(o, s->reloads[RELOAD_REJECTED]);
	strbuf_putc(o, '\n');
	if (s->open_fds >= 0)
		gauge1(o, "molerat_process_open_fds", "gauge", "Open file descriptors.", s->open_fds);
	if (s->rss_bytes >= 0)
		gauge1(o, "molerat_process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
		       s->rss_bytes);
}

/* ---------------------------------------------------------------- JSON */

static void jkey(struct strbuf *o, const char *k, bool first)
{
	if (!first)
		strbuf_putc(o, ',');
	strbuf_putc(o, '"');
	put(o, k);
	put(o, "\":");
}

static void jnum(struct strbuf *o, const char *k, uint64_t v)
{
	jkey(o, k, false);
	put_u64(o, v);
}

static void jtime(struct strbuf *o, const char *k, int64_t t)
{
	jkey(o, k, false);
	if (t > 0)
		put_i64(o, t);
	else
		put(o, "null");
}

void metrics_render_json(const struct status *s, struct strbuf *o)
{
	put(o, "{\"role\":\"");
	put(o, s->role);
	put(o, "\",\"version\":");
	metrics_json_string(o, s->version, strlen(s->version));
	jkey(o, "started", false);
	put_i64(o, s->started);
	jkey(o, "services", false);
	strbuf_putc(o, '[');
	for (size_t i = 0; i < s->n_svcs; i++) {
		const struct svc_status *v = &s->svcs[i];
		const struct svc_stats *st = v->st;
		put(o, i ? ",{" : "{");
		jkey(o, "name", true);
		metrics_json_string(o, v->name, v->name_len);
		jkey(o, "type", false);
		put(o, v->udp ? "\"udp\"" : "\"tcp\"");
		jkey(o, "state", false);
		strbuf_putc(o, '"');
		put(o, metrics_state_name(v->state));
		strbuf_putc(o, '"');
		jtime(o, "since", st->since);
		jtime(o, "last_heartbeat", st->last_heartbeat);
		jkey(o, "peer", false);
		if (st->peer[0])
			metrics_json_string(o, st->peer, strlen(st->peer));
		else
			put(o, "null");
		jnum(o, "pooled_channels", v->pooled);
		jnum(o, "visitors_active", v->visitors_active);
		jnum(o, "visitors_total", v->visitors_total);
		jnum(o, "bytes_to_service", v->bytes_to_service);
		jnum(o, "bytes_to_visitor", v->bytes_to_visitor);
		jnum(o, "reconnects", st->connects_ok > 1 ? st->connects_ok - 1 : 0);
		jkey(o, "last_error", false);
		if (st->last_error_time) {
			put(o, "{\"message\":");
			metrics_json_string(o, st->last_error, strnlen(st->last_error, sizeof(st->last_error)));
			jkey(o, "time", false);
			put_i64(o, st->last_error_time);
			strbuf_putc(o, '}');
		} else {
			put(o, "null");
		}
		strbuf_putc(o, '}');
	}
	put(o, "]}\n");
}

/* ---------------------------------------------------------------- health */

bool metrics_render_health(const struct status *s, struct strbuf *o)
{
	bool all = true;
	for (size_t i = 0; i < s->n_svcs; i++) {
		const struct svc_status *v = &s->svcs[i];
		metrics_prom_escape(o, v->name, v->name_len);
		if (v->state == SVC_UP) {
			put(o, " up\n");
			continue;
		}
		all = false;
		put(o, " down: ");
		if (v->state == SVC_CONNECTING)
			put(o, "connecting");
		else
			put(o, "no control channel");
		if (v->st->last_error_time) {
			put(o, "; last error: ");
			metrics_prom_escape(o, v->st->last_error, strnlen(v->st->last_error, sizeof(v->st->last_error)));
		}
		strbuf_putc(o, '\n');
	}
	return all;
}
