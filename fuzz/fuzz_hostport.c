/* fuzz_hostport: addr_split_host_port and addr_from_literal on any
 * input, with invariants: a split result is a non-empty host shorter than
 * the input and hostcap, without brackets, and the port is the decimal
 * value of the text after the last ':'; a literal formats (addr_str)
 * into less than ADDR_STRLEN bytes, and that text splits and parses
 * back to the same address. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "codec/addr.h"

enum { MAX_INPUT = 4096 };

static void check_literal(const char *host, uint16_t port)
{
	struct addr a, b;
	int r = addr_from_literal(host, port, &a);
	if (r != 0) {
		if (r != MR_EFORMAT)
			abort();
		return;
	}
	if (a.ss.ss_family != AF_INET && a.ss.ss_family != AF_INET6)
		abort();
	if (addr_port(&a) != port)
		abort();
	char buf[ADDR_STRLEN];
	/* poison, to see the string is terminated inside the buffer */
	memset(buf, 'Z', sizeof(buf));
	addr_str(&a, buf, sizeof(buf));
	size_t len = strnlen(buf, sizeof(buf));
	if (len == 0 || len >= sizeof(buf) - 1)
		abort();
	char h2[ADDR_STRLEN];
	uint16_t p2 = 0;
	if (addr_split_host_port(buf, h2, sizeof(h2), &p2) != 0 || p2 != port)
		abort();
	if (addr_from_literal(h2, p2, &b) != 0 || !addr_equal(&a, &b))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > MAX_INPUT)
		return 0;
	char *in = malloc(size + 1);
	if (!in)
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';
	size_t inlen = strlen(in);

	char host[256];
	uint16_t port = 0;
	int r = addr_split_host_port(in, host, sizeof(host), &port);
	if (r != 0 && r != MR_EFORMAT)
		abort();
	if (r == 0) {
		size_t hl = strlen(host);
		if (hl == 0 || hl >= sizeof(host) || hl >= inlen)
			abort();
		if (strchr(host, '[') || strchr(host, ']'))
			abort();
		if (!strstr(in, host))
			abort();
		/* the port is the value of the digits after the last ':' */
		const char *c = strrchr(in, ':');
		unsigned long v = 0;
		for (const char *p = c + 1; *p; p++) {
			if (*p < '0' || *p > '9')
				abort();
			v = v * 10 + (unsigned long)(*p - '0');
			if (v > 65535)
				abort();
		}
		if (v != port)
			abort();
		/* a smaller hostcap agrees or refuses */
		char small[8];
		uint16_t sp = 0;
		int rs = addr_split_host_port(in, small, sizeof(small), &sp);
		if (rs == 0 ? (strcmp(small, host) != 0 || sp != port) : (rs != MR_EFORMAT || hl < sizeof(small)))
			abort();
		check_literal(host, port);
	}
	/* the whole input as a host, too */
	check_literal(in, (uint16_t)size);
	free(in);
	return 0;
}
