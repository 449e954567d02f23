/* util: small helpers shared by the roles. */
#ifndef MOLERAT_UTIL_H
#define MOLERAT_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* A NUL-terminated copy of n bytes (which may contain NUL); NULL on
 * out-of-memory. The caller frees it. */
char *mr_strndup(const char *s, size_t n);

/* Seconds from the config to milliseconds, saturating (u64 config values
 * go up to INT64_MAX). */
static inline uint64_t secs_to_ms(uint64_t secs)
{
	return secs > UINT64_MAX / 1000 ? UINT64_MAX : secs * 1000;
}

#endif
