#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static enum log_level g_level = LOGL_INFO;

void log_set_level(enum log_level level) { g_level = level; }
enum log_level log_get_level(void) { return g_level; }

int log_level_parse(const char *s, size_t len)
{
	static const char *const names[] = { "off", "error", "warn", "info", "debug", "trace" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strlen(names[i]) == len && strncasecmp(s, names[i], len) == 0)
			return (int)i;
	}
	if (len == 7 && strncasecmp(s, "warning", 7) == 0)
		return LOGL_WARN;
	return -1;
}

/* One RUST_LOG / MOLERAT_LOG directive: "LEVEL" or "TARGET=LEVEL". Returns
 * the specificity it applies with (0 bare, 1 crate, 2+ module path) or -1
 * when the directive does not concern us, and -2 when it is malformed. */
static int parse_directive(const char *d, size_t len, int *level)
{
	const char *eq = memchr(d, '=', len);
	if (!eq) {
		int l = log_level_parse(d, len);
		if (l < 0)
			return -2;
		*level = l;
		return 0;
	}
	size_t tlen = (size_t)(eq - d);
	int l = log_level_parse(eq + 1, len - tlen - 1);
	if (l < 0)
		return -2;
	static const char *const crates[] = { "rathole", "molerat" };
	for (size_t i = 0; i < 2; i++) {
		size_t clen = strlen(crates[i]);
		if (tlen == clen && memcmp(d, crates[i], clen) == 0) {
			*level = l;
			return 1;
		}
		if (tlen > clen + 2 && memcmp(d, crates[i], clen) == 0 && d[clen] == ':' && d[clen + 1] == ':') {
			*level = l;
			return 2;
		}
	}
	return -1;
}

void log_init_from_env(void)
{
	const char *name = "MOLERAT_LOG";
	const char *v = getenv(name);
	if (!v || !*v) {
		name = "RUST_LOG";
		v = getenv(name);
	}
	if (!v || !*v)
		return;
	int best_spec = -1, best_level = LOGL_INFO;
	bool bad = false;
	const char *p = v;
	while (*p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		while (len && (*p == ' ')) { p++; len--; }
		while (len && p[len - 1] == ' ') len--;
		if (len) {
			int level;
			int spec = parse_directive(p, len, &level);
			if (spec == -2)
				bad = true;
			else if (spec > best_spec) {
				best_spec = spec;
				best_level = level;
			}
		}
		if (!end)
			break;
		p = end + 1;
	}
	if (best_spec >= 0)
		g_level = (enum log_level)best_level;
	if (bad)
		log_warn("%s=\"%s\": only level names (error, warn, info, debug, trace, off) and TARGET=LEVEL are understood; the rest is ignored", name, v);
}

static void log_vwrite(enum log_level level, const char *suffix, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
static void log_vwrite(enum log_level level, const char *suffix, const char *fmt, va_list ap)
{
	static const char *const tags[] = { "OFF", "ERROR", " WARN", " INFO", "DEBUG", "TRACE" };
	char line[2048];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ %s ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, ts.tv_nsec / 1000, tags[level]);
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	size_t total = (size_t)n + (m < 0 ? 0 : (size_t)m);
	if (total > sizeof(line) - 2)
		total = sizeof(line) - 2;
	if (suffix) {
		size_t sl = strlen(suffix);
		if (sl > sizeof(line) - 2 - total)
			sl = sizeof(line) - 2 - total;
		memcpy(line + total, suffix, sl);
		total += sl;
	}
	line[total++] = '\n';
	fwrite(line, 1, total, stderr);
}

void log_write(enum log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(level, NULL, fmt, ap);
	va_end(ap);
}

void log_limited(struct log_limit *l, uint64_t now_ms, enum log_level level, const char *fmt, ...)
{
	if (!log_enabled(level))
		return;
	if (l->last_ms && now_ms - l->last_ms < LOG_LIMIT_MS) {
		if (l->suppressed++ == 0)
			l->first_dropped_ms = now_ms;
		return;
	}
	char suffix[96] = "";
	if (l->suppressed) {
		uint64_t span = now_ms - l->first_dropped_ms;
		snprintf(suffix, sizeof(suffix), " (%llu more like this suppressed in %llu.%llu s)",
			 (unsigned long long)l->suppressed, (unsigned long long)(span / 1000),
			 (unsigned long long)(span % 1000 / 100));
	}
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(level, suffix[0] ? suffix : NULL, fmt, ap);
	va_end(ap);
	l->last_ms = now_ms ? now_ms : 1;
	l->suppressed = 0;
}
