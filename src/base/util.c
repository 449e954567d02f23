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

