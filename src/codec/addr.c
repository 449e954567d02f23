/* addr: see addr.h. Pure: no socket is opened here. */
#include "codec/addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

/* Decimal digits only, value <= 65535. Leading zeros are fine ("0080"),
 * anything else (sign, space, empty) is not. */
static int parse_port(const char *s, size_t len, uint16_t *port)
{
	if (len == 0)
		return MR_EFORMAT;
	unsigned long v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return MR_EFORMAT;
		v = v * 10 + (unsigned long)(s[i] - '0');
		if (v > 65535)
			return MR_EFORMAT;
	}
	*port = (uint16_t)v;
	return 0;
}

int addr_split_host_port(const char *s, char *host, size_t hostcap, uint16_t *port)
{
	const char *colon = strrchr(s, ':');
	if (!colon)
		return MR_EFORMAT;
	uint16_t p;
	if (parse_port(colon + 1, strlen(colon + 1), &p) != 0)
		return MR_EFORMAT;

	const char *h = s;
	size_t hlen = (size_t)(colon - s);
	if (hlen > 0 && h[0] == '[') {
		/* "[v6]:port": the ']' must sit right before the last ':' */
		if (hlen < 2 || h[hlen - 1] != ']')
			return MR_EFORMAT;
		h++;
		hlen -= 2;
	}
	if (hlen == 0)
		return MR_EFORMAT;
	if (memchr(h, '[', hlen) || memchr(h, ']', hlen))
		return MR_EFORMAT;
	if (hlen >= hostcap)
		return MR_EFORMAT;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port = p;
	return 0;
}

int addr_from_literal(const char *host, uint16_t port, struct addr *addr)
{
	struct addr a;
	memset(&a, 0, sizeof(a));

	struct sockaddr_in *in4 = (struct sockaddr_in *)&a.ss;
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(port);
		a.len = sizeof(*in4);
		*addr = a;
		return 0;
	}

	/* IPv6, with an optional numeric scope id after '%' */
	char buf[INET6_ADDRSTRLEN];
	const char *pct = strchr(host, '%');
	size_t alen = pct ? (size_t)(pct - host) : strlen(host);
	if (alen == 0 || alen >= sizeof(buf))
		return MR_EFORMAT;
	memcpy(buf, host, alen);
	buf[alen] = '\0';
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a.ss;
	if (inet_pton(AF_INET6, buf, &in6->sin6_addr) != 1)
		return MR_EFORMAT;
	if (pct) {
		const char *sc = pct + 1;
		size_t sl = strlen(sc);
		if (sl == 0 || sl > 10)
			return MR_EFORMAT;
		unsigned long long v = 0;
		for (size_t i = 0; i < sl; i++) {
			if (sc[i] < '0' || sc[i] > '9')
				return MR_EFORMAT;
			v = v * 10 + (unsigned long long)(sc[i] - '0');
		}
		if (v > UINT32_MAX)
			return MR_EFORMAT;
		in6->sin6_scope_id = (uint32_t)v;
	}
	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons(port);
	a.len = sizeof(*in6);
	*addr = a;
	return 0;
}

const char *addr_str(const struct addr *a, char *buf, size_t cap)
{
	if (cap == 0)
		return buf;
	char ip[INET6_ADDRSTRLEN];
	if (a->ss.ss_family == AF_INET && a->len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in4 = (const struct sockaddr_in *)&a->ss;
		if (!inet_ntop(AF_INET, &in4->sin_addr, ip, sizeof(ip)))
			snprintf(ip, sizeof(ip), "?");
		snprintf(buf, cap, "%s:%u", ip, (unsigned)ntohs(in4->sin_port));
	} else if (a->ss.ss_family == AF_INET6 && a->len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&a->ss;
		if (!inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip)))
			snprintf(ip, sizeof(ip), "?");
		if (in6->sin6_scope_id)
			snprintf(buf, cap, "[%s%%%u]:%u", ip, (unsigned)in6->sin6_scope_id,
				 (unsigned)ntohs(in6->sin6_port));
		else
			snprintf(buf, cap, "[%s]:%u", ip, (unsigned)ntohs(in6->sin6_port));
	} else {
		snprintf(buf, cap, "<family %d>", (int)a->ss.ss_family);
	}
	return buf;
}

uint16_t addr_port(const struct addr *a)
{
	if (a->ss.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
	if (a->ss.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
	return 0;
}

void addr_set_port(struct addr *a, uint16_t port)
{
	if (a->ss.ss_family == AF_INET)
		((struct sockaddr_in *)&a->ss)->sin_port = htons(port);
	else if (a->ss.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&a->ss)->sin6_port = htons(port);
}

bool addr_equal(const struct addr *a, const struct addr *b)
{
	if (a->ss.ss_family != b->ss.ss_family)
		return false;
	if (a->ss.ss_family == AF_INET) {
		const struct sockaddr_in *x = (const struct sockaddr_in *)&a->ss;
		const struct sockaddr_in *y = (const struct sockaddr_in *)&b->ss;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)&a->ss;
		const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)&b->ss;
		return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
	}
	return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

