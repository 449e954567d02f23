/* log: levelled logging to standard error.
 *
 * One line per event: "2026-11-21T22:46:33.123456Z  INFO message". The level
 * is the one process-wide setting besides the signal flags: it is decided
 * once at start (log_init_from_env) and read by every module through
 * log_enabled(). Messages are formed by the caller and quote the bad value. */
#ifndef MOLERAT_LOG_H
#define MOLERAT_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum log_level {
	LOGL_OFF = 0,
	LOGL_ERROR,
	LOGL_WARN,
	LOGL_INFO,
	LOGL_DEBUG,
	LOGL_TRACE,
};

/* Reads MOLERAT_LOG, else RUST_LOG. Accepts a bare level name, and in
 * RUST_LOG the EnvFilter forms "LEVEL", "rathole=LEVEL", "molerat=LEVEL",
 * "rathole::x=LEVEL" (the most specific wins; unknown targets ignored).
 * Anything else is warned about once and the default (info) is kept. */
void log_init_from_env(void);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses one level name ("error", "warn", "info", "debug", "trace", "off"),
 * case-insensitive. Returns -1 when it is not a level name. */
int log_level_parse(const char *s, size_t len);

static inline bool log_enabled(enum log_level level)
{
	return level <= log_get_level();
}

void log_write(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* A rate limit for one kind of repeated line (a flood of bad handshakes,
 * accept failing with EMFILE, ...): at most one line per LOG_LIMIT_MS; the
 * first line after a quiet spell says how many lines of the kind were
 * suppressed since the last one written, e.g. "... (312 more like this
 * suppressed in 4.0 s)". The caller owns the struct (zeroed: nothing
 * written yet), one per kind of line, and passes the loop's clock. */
struct log_limit {
	uint64_t last_ms;          /* when the last line was written; 0 = never */
	uint64_t suppressed;       /* lines dropped since */
	uint64_t first_dropped_ms; /* when the first of them was dropped */
};
enum { LOG_LIMIT_MS = 1000 };
void log_limited(struct log_limit *l, uint64_t now_ms, enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define log_error(...) do { if (log_enabled(LOGL_ERROR)) log_write(LOGL_ERROR, __VA_ARGS__); } while (0)
#define log_warn(...)  do { if (log_enabled(LOGL_WARN))  log_write(LOGL_WARN,  __VA_ARGS__); } while (0)
#define log_info(...)  do { if (log_enabled(LOGL_INFO))  log_write(LOGL_INFO,  __VA_ARGS__); } while (0)
#define log_debug(...) do { if (log_enabled(LOGL_DEBUG)) log_write(LOGL_DEBUG, __VA_ARGS__); } while (0)
#define log_trace(...) do { if (log_enabled(LOGL_TRACE)) log_write(LOGL_TRACE, __VA_ARGS__); } while (0)

#endif
