/* conf_url: absolute URL parsing as rathole's url crate (2.3/2.4, WHATWG URL
 * Standard) does it, for `client.transport.tcp.proxy` (protocol.md#p-proxy, protocol.md#p-config-transport).
 *
 * Only what decides "does it parse" and what the proxy dialer needs is
 * computed: scheme, credentials (kept percent-encoded, as rathole uses
 * them), host (as host_str() gives it) and port (none when it is the
 * scheme's default). Paths, queries and fragments never fail to parse and
 * are skipped. Approximation: a non-ASCII domain of a special scheme is kept
 * as written (the url crate would convert it with IDNA/UTS #46; a few
 * disallowed code points would fail there and pass here). */
#include "codec/conf_url.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/strbuf.h"
#include "base/util.h"


static bool is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static char lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static const char *const special_schemes[] = { "http", "https", "ws", "wss", "ftp", "file" };

static int default_port(const char *scheme)
{
	if (!strcmp(scheme, "http") || !strcmp(scheme, "ws"))
		return 80;
	if (!strcmp(scheme, "https") || !strcmp(scheme, "wss"))
		return 443;
	if (!strcmp(scheme, "ftp"))
		return 21;
	return -1;
}

static bool is_special(const char *scheme)
{
	for (size_t i = 0; i < sizeof(special_schemes) / sizeof(special_schemes[0]); i++)
		if (!strcmp(scheme, special_schemes[i]))
			return true;
	return false;
}

/* The userinfo percent-encode set: C0 controls, space, non-ASCII and
 * " # < > ? ` { } / : ; = @ [ \ ] ^ | */
static bool in_userinfo_set(unsigned char c)
{
	if (c < 0x20 || c > 0x7e)
		return true;
	return strchr(" \"#<>?`{}/:;=@[\\]^|", c) != NULL;
}

static void pct_encode(struct strbuf *b, const char *s, size_t n, bool (*in_set)(unsigned char))
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (in_set(c)) {
			char e[3] = { '%', hex[c >> 4], hex[c & 15] };
			strbuf_put(b, e, 3);
		} else {
			strbuf_putc(b, (char)c);
		}
	}
}

static bool in_c0_control_set(unsigned char c)
{
	return c < 0x20 || c > 0x7e;
}


/* IPv6 between the brackets -> "[...]" serialised as the URL Standard does
 * (lower-case hex, the first longest run of two or more zero pieces
 * compressed; an embedded IPv4 is shown as hex pieces). */
static int parse_ipv6(const char *s, size_t n, struct strbuf *out)
{
	char tmp[64];
	unsigned char a[16];
	if (n == 0 || n >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	if (memchr(s, '\0', n) || inet_pton(AF_INET6, tmp, a) != 1)
		return -1;
	unsigned pieces[8];
	for (int i = 0; i < 8; i++)
		pieces[i] = (unsigned)a[2 * i] << 8 | a[2 * i + 1];
	int best = -1, best_len = 1;
	for (int i = 0; i < 8;) {
		if (pieces[i] != 0) {
			i++;
			continue;
		}
		int j = i;
		while (j < 8 && pieces[j] == 0)
			j++;
		if (j - i > best_len) {
			best = i;
			best_len = j - i;
		}
		i = j;
	}
	strbuf_putc(out, '[');
	bool ignore0 = false;
	for (int i = 0; i < 8; i++) {
		if (ignore0 && pieces[i] == 0)
			continue;
		ignore0 = false;
		if (i == best) {
			strbuf_put(out, i == 0 ? "::" : ":", i == 0 ? 2 : 1);
			ignore0 = true;
			continue;
		}
		char h[8];
		int k = snprintf(h, sizeof(h), "%x", pieces[i]);
		strbuf_put(out, h, (size_t)k);
		if (i != 7)
			strbuf_putc(out, ':');
	}
	strbuf_putc(out, ']');
	return 0;
}

/* The URL Standard's IPv4 number parser. -1 when it is not a number. */
static int ipv4_number(const char *s, size_t n, uint64_t *v)
{
	unsigned radix = 10;
	if (n == 0)
		return -1;
	if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		radix = 16;
		s += 2;
		n -= 2;
	} else if (n >= 2 && s[0] == '0') {
		radix = 8;
		s += 1;
		n -= 1;
	}
	uint64_t x = 0;
	for (size_t i = 0; i < n; i++) {
		int d = mr_hex_digit((unsigned char)s[i]);
		if (d < 0 || (unsigned)d >= radix)
			return -1;
		if (x > (UINT64_MAX >> 8))   /* far over any valid value: saturate */
			x = UINT64_MAX >> 4;
		else
			x = x * radix + (unsigned)d;
	}
	*v = x;
	return 0;
}

/* Splits s into '.'-separated parts, dropping one trailing empty part.
 * Returns the part count (up to max+1 to tell "too many"). */
static size_t split_dots(const char *s, size_t n, const char **ps, size_t *pl, size_t max)
{
	size_t k = 0, start = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || s[i] == '.') {
			if (k <= max) {
				ps[k] = s + start;
				pl[k] = i - start;
			}
			k++;
			start = i + 1;
		}
	}
	if (k > 1 && k <= max + 1 && pl[k - 1] == 0)
		k--;
	return k;
}

static bool ends_in_a_number(const char *s, size_t n)
{
	/* the last label, after dropping one trailing empty label */
	size_t end = n;
	if (end > 0 && s[end - 1] == '.') {
		end--;
		if (end == 0)
			return false;
	}
	size_t start = end;
	while (start > 0 && s[start - 1] != '.')
		start--;
	const char *last = s + start;
	size_t ln = end - start;
	if (ln == 0)
		return false;
	bool digits = true;
	for (size_t i = 0; i < ln; i++)
		if (!is_digit((unsigned char)last[i]))
			digits = false;
	if (digits)
		return true;
	uint64_t v;
	return ln >= 2 && last[0] == '0' && (last[1] == 'x' || last[1] == 'X') &&
	       ipv4_number(last, ln, &v) == 0;
}

static int parse_ipv4(const char *s, size_t n, struct strbuf *out)
{
	const char *ps[5];
	size_t pl[5];
	size_t k = split_dots(s, n, ps, pl, 4);
	if (k > 4)
		return -1;
	uint64_t v[4];
	for (size_t i = 0; i < k; i++)
		if (ipv4_number(ps[i], pl[i], &v[i]) != 0)
			return -1;
	for (size_t i = 0; i + 1 < k; i++)
		if (v[i] > 255)
			return -1;
	uint64_t limit = 1;
	for (size_t i = 0; i < 5 - k; i++)
		limit *= 256;
	if (v[k - 1] >= limit)
		return -1;
	uint64_t addr = v[k - 1];
	for (size_t i = 0; i + 1 < k; i++)
		addr += v[i] << (8 * (3 - i));
	char t[16];
	int m = snprintf(t, sizeof(t), "%u.%u.%u.%u", (unsigned)(addr >> 24) & 255,
			 (unsigned)(addr >> 16) & 255, (unsigned)(addr >> 8) & 255, (unsigned)addr & 255);
	strbuf_put(out, t, (size_t)m);
	return 0;
}

static bool valid_utf8(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		size_t k;
		uint32_t cp;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			k = 1;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			k = 2;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			k = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (n - i <= k)
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k + 1;
	}
	return true;
}

/* Host of a special scheme: IPv6, else percent-decoded domain (lower-cased),
 * which becomes an IPv4 address when it ends in a number. */
static int parse_special_host(const char *s, size_t n, struct strbuf *out, const char **why)
{
	if (n > 0 && s[0] == '[') {
		if (n < 2 || s[n - 1] != ']' || parse_ipv6(s + 1, n - 2, out) != 0) {
			*why = "invalid IPv6 address";
			return -1;
		}
		return 0;
	}
	struct strbuf d = { 0 };
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%' && n - i > 2 && mr_hex_digit((unsigned char)s[i + 1]) >= 0 &&
		    mr_hex_digit((unsigned char)s[i + 2]) >= 0) {
			strbuf_putc(&d, (char)(mr_hex_digit((unsigned char)s[i + 1]) << 4 | mr_hex_digit((unsigned char)s[i + 2])));
			i += 2;
		} else {
			strbuf_putc(&d, s[i]);
		}
	}
	strbuf_put(&d, "", 0);
	size_t dn = d.len;   /* the domain may hold NUL bytes */
	char *dom = strbuf_take(&d, NULL);
	if (!dom)
		return -ENOMEM;
	int rc = 0;
	for (size_t i = 0; i < dn; i++)
		dom[i] = lower(dom[i]);
	if (!valid_utf8((const unsigned char *)dom, dn)) {
		*why = "invalid international domain name";
		rc = -1;
	} else if (dn == 0) {
		*why = "empty host";
		rc = -1;
	} else {
		for (size_t i = 0; i < dn && rc == 0; i++)
			if (memchr("\t\n\r #%/:<>?@[\\]^", dom[i], 17) || dom[i] == '\0') {
				*why = "invalid domain character";
				rc = -1;
			}
	}
	if (rc == 0 && ends_in_a_number(dom, dn)) {
		if (parse_ipv4(dom, dn, out) != 0) {
			*why = "invalid IPv4 address";
			rc = -1;
		}
	} else if (rc == 0) {
		strbuf_put(out, dom, dn);
	}
	free(dom);
	return rc;
}

/* Host of a non-special scheme ("opaque host"). */
static int parse_opaque_host(const char *s, size_t n, struct strbuf *out, const char **why)
{
	if (n > 0 && s[0] == '[') {
		if (n < 2 || s[n - 1] != ']' || parse_ipv6(s + 1, n - 2, out) != 0) {
			*why = "invalid IPv6 address";
			return -1;
		}
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		if (memchr("\t\n\r #/:<>?@[\\]^", s[i], 15) || s[i] == '\0') {
			*why = "invalid domain character";
			return -1;
		}
	pct_encode(out, s, n, in_c0_control_set);
	return 0;
}

void conf_url_free(struct conf_url *u)
{
	if (!u)
		return;
	free(u->scheme);
	free(u->username);
	free(u->password);
	free(u->host);
	memset(u, 0, sizeof(*u));
}

/* authority = [userinfo@]host[:port], already cut at / ? # (and \ when
 * special). */
static int parse_authority(struct conf_url *u, const char *a, size_t n, bool special,
			   const char **why)
{
	const char *at = NULL;
	for (size_t i = 0; i < n; i++)
		if (a[i] == '@')
			at = a + i;
	struct strbuf user = { 0 }, pass = { 0 }, host = { 0 };
	bool has_pass = false;
	int rc = 0;
	if (at) {
		size_t cn = (size_t)(at - a);
		const char *colon = memchr(a, ':', cn);
		size_t un = colon ? (size_t)(colon - a) : cn;
		pct_encode(&user, a, un, in_userinfo_set);
		if (colon) {
			has_pass = true;
			pct_encode(&pass, colon + 1, cn - un - 1, in_userinfo_set);
			strbuf_put(&pass, "", 0);
		}
		n -= cn + 1;
		a = at + 1;
		if (n == 0) {
			*why = "empty host";
			rc = -1;
			goto out;
		}
	}
	/* host[:port]; a ':' inside brackets belongs to the host */
	size_t hn = n;
	bool inside = false;
	for (size_t i = 0; i < n; i++) {
		if (a[i] == '[')
			inside = true;
		else if (a[i] == ']')
			inside = false;
		else if (a[i] == ':' && !inside) {
			hn = i;
			break;
		}
	}
	if (hn == 0 && (hn < n || special)) {
		*why = "empty host";
		rc = -1;
		goto out;
	}
	rc = special ? parse_special_host(a, hn, &host, why) : parse_opaque_host(a, hn, &host, why);
	if (rc != 0)
		goto out;
	if (hn < n) {
		const char *p = a + hn + 1;
		size_t pn = n - hn - 1;
		uint32_t port = 0;
		for (size_t i = 0; i < pn; i++) {
			if (!is_digit((unsigned char)p[i])) {
				*why = "invalid port number";
				rc = -1;
				goto out;
			}
			port = port * 10 + (uint32_t)(p[i] - '0');
			if (port > 65535) {
				*why = "invalid port number";
				rc = -1;
				goto out;
			}
		}
		if (pn > 0 && (int)port != default_port(u->scheme)) {
			u->has_port = true;
			u->port = (uint16_t)port;
		}
	}
	/* a non-special URL with an empty host and no port has no host at all */
	if (host.len > 0 || special) {
		u->host = strbuf_take(&host, NULL);
		if (!u->host)
			rc = -ENOMEM;
	}
out:
	if (rc == 0) {
		u->username = strbuf_take(&user, NULL);
		if (has_pass)
			u->password = strbuf_take(&pass, NULL);
		if (!u->username || (has_pass && !u->password))
			rc = -ENOMEM;
	}
	free(user.p);
	free(pass.p);
	free(host.p);
	return rc;
}

int conf_url_parse(const char *s, size_t len, struct conf_url *u, const char **why)
{
	memset(u, 0, sizeof(*u));
	*why = "";
	/* strip leading and trailing C0 controls and spaces */
	while (len > 0 && (unsigned char)s[0] <= 0x20) {
		s++;
		len--;
	}
	while (len > 0 && (unsigned char)s[len - 1] <= 0x20)
		len--;
	/* remove every tab and newline */
	char *in = malloc(len + 1);
	if (!in)
		return -ENOMEM;
	size_t n = 0;
	for (size_t i = 0; i < len; i++)
		if (s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
			in[n++] = s[i];
	in[n] = '\0';

	int rc = MR_EFORMAT;
	size_t i = 0;
	if (n == 0 || !is_alpha((unsigned char)in[0])) {
		*why = "relative URL without a base";
		goto fail;
	}
	while (i < n && (is_alpha((unsigned char)in[i]) || is_digit((unsigned char)in[i]) ||
			 in[i] == '+' || in[i] == '-' || in[i] == '.'))
		i++;
	if (i == n || in[i] != ':') {
		*why = "relative URL without a base";
		goto fail;
	}
	u->scheme = malloc(i + 1);
	if (!u->scheme) {
		rc = -ENOMEM;
		goto fail;
	}
	for (size_t k = 0; k < i; k++)
		u->scheme[k] = lower(in[k]);
	u->scheme[i] = '\0';
	i++;   /* the ':' */

	bool special = is_special(u->scheme);
	const char *rest = in + i;
	size_t rn = n - i;
	size_t a0, a1;   /* the authority is rest[a0..a1) */
	if (special) {
		a0 = 0;
		while (a0 < rn && (rest[a0] == '/' || rest[a0] == '\\'))
			a0++;
		if (!strcmp(u->scheme, "file")) {
			/* file URLs: a host only after "//", no credentials or
			 * port (a ':' there is a forbidden domain character) */
			if (a0 < 2)
				goto no_host;
			a0 = 2;
		}
	} else {
		if (rn < 2 || rest[0] != '/' || rest[1] != '/')
			goto no_host;   /* opaque path or path only */
		a0 = 2;
	}
	a1 = a0;
	while (a1 < rn && rest[a1] != '/' && rest[a1] != '?' && rest[a1] != '#' &&
	       !(special && rest[a1] == '\\'))
		a1++;
	if (!strcmp(u->scheme, "file")) {
		struct strbuf h = { 0 };
		const char *hs = rest + a0;
		size_t hn = a1 - a0;
		bool drive = hn == 2 && is_alpha((unsigned char)hs[0]) && (hs[1] == ':' || hs[1] == '|');
		if (hn == 0 || drive) {
			u->host = strdup("");
		} else {
			int r = parse_special_host(hs, hn, &h, why);
			if (r != 0) {
				free(h.p);
				rc = r == -ENOMEM ? -ENOMEM : MR_EFORMAT;
				goto fail;
			}
			u->host = strbuf_take(&h, NULL);
			if (u->host && !strcmp(u->host, "localhost"))
				u->host[0] = '\0';
		}
		u->username = strdup("");
		if (!u->host || !u->username) {
			rc = -ENOMEM;
			goto fail;
		}
		free(in);
		return 0;
	}
	int r = parse_authority(u, rest + a0, a1 - a0, special, why);
	if (r != 0) {
		rc = r == -ENOMEM ? -ENOMEM : MR_EFORMAT;
		goto fail;
	}
	free(in);
	return 0;
no_host:
	u->username = strdup("");
	if (!u->username) {
		rc = -ENOMEM;
		goto fail;
	}
	free(in);
	return 0;
fail:
	free(in);
	conf_url_free(u);
	if (rc == -ENOMEM)
		*why = "out of memory";
	return rc;
}
