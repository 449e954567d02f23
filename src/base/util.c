#include "base/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"

char *mr_strndup(const char *s, size_t n)
{
	char *p = malloc(n + 1);
	if (p) {
		memcpy(p, s, n);
		p[n] = 0;
	}
	return p;
}

uint64_t mr_test_env_u64(const char *name, uint64_t def, uint64_t max)
{
	const char *s = getenv(name);
	if (!s || !*s)
		return def;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v == 0 || v > max || s[0] == '-') {
		log_warn("ignoring %s=\"%s\" (want 1..%llu)", name, s, (unsigned long long)max);
		return def;
	}
	return v;
}
