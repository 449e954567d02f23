/* util: small helpers shared by the roles. */
#ifndef MOLERAT_UTIL_H
#define MOLERAT_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* A NUL-terminated copy of n bytes (which may contain NUL); NULL on
 * out-of-memory. The caller frees it. */
char *mr_strndup(const char *s, size_t n);

/* Gives the heap's free pages back to the system (glibc keeps them
 * otherwise: it returns only the top of its heap, and one live chunk there
 * holds everything freed below it). For after a burst has ended; a no-op
 * with another C library. */
void mr_trim_heap(void);

/* Seconds from the config to milliseconds, saturating (u64 config values
 * go up to INT64_MAX). */
static inline uint64_t secs_to_ms(uint64_t secs)
{
	return secs > UINT64_MAX / 1000 ? UINT64_MAX : secs * 1000;
}

/* The value of a hexadecimal digit, or -1. */
static inline int mr_hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

#endif
