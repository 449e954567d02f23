/* toml-test-runner DIR: runs the toml-test suite in DIR against toml_parse
 * in-process. The cases are those DIR/files-toml-1.0.0 lists (a toml-test
 * release), or, without that list, every .toml file under DIR/valid and
 * DIR/invalid (the copy Debian's golang-github-burntsushi-toml-dev ships).
 * With --skip FILE, the cases FILE names (one "valid/x.toml  reason" a line,
 * '#' comments) are not run but counted and listed as skipped: the Debian
 * copy holds a few cases of TOML 1.1, which a TOML 1.0 parser must reject.
 *
 * Every valid/X.toml must parse, and its tagged JSON (toml_json_write) must
 * equal valid/X.json under toml-test's comparison rules: tables compare as
 * key sets, arrays in order, scalars by type and then by value (strings and
 * integers exactly, bools case-insensitively, floats numerically, date/times
 * as instants or fields with fractions compared as nanoseconds). Every
 * invalid/X.toml must be rejected. Prints each failure and ends with
 * "toml-test: N passed, M failed"; exits 1 when anything failed. */
#include <ctype.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "codec/toml.h"
#include "toml_json.h"

enum { JSON_MAX_DEPTH = 512 };

/* ---- a small JSON reader (objects, arrays, strings only) --------------- */

enum jtype {
	J_OBJECT = 0,
	J_ARRAY,
	J_STRING,
};

struct jval;

struct jmember {
	char *key;
	size_t klen;
	struct jval *val;
};

struct jval {
	enum jtype type;
	char *str;                 /* J_STRING: decoded, NUL-terminated */
	size_t slen;
	struct jmember *mem;       /* J_OBJECT */
	struct jval **elem;        /* J_ARRAY */
	size_t n, cap;
};

struct jreader {
	const char *s;
	size_t len, pos;
	const char *err;
};

static void jval_free(struct jval *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n; i++) {
		if (v->type == J_OBJECT) {
			free(v->mem[i].key);
			jval_free(v->mem[i].val);
		} else if (v->type == J_ARRAY) {
			jval_free(v->elem[i]);
		}
	}
	free(v->mem);
	free(v->elem);
	free(v->str);
	free(v);
}

static void jr_ws(struct jreader *r)
{
	while (r->pos < r->len && strchr(" \t\r\n", r->s[r->pos]))
		r->pos++;
}

static bool jr_grow(void **items, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return true;
	size_t nc = *cap ? *cap * 2 : 8;
	void *ni = realloc(*items, nc * size);
	if (!ni)
		return false;
	*items = ni;
	*cap = nc;
	return true;
}

static void put_utf8(char *out, size_t *o, uint32_t cp)
{
	if (cp < 0x80) {
		out[(*o)++] = (char)cp;
	} else if (cp < 0x800) {
		out[(*o)++] = (char)(0xC0 | (cp >> 6));
		out[(*o)++] = (char)(0x80 | (cp & 0x3F));
	} else if (cp < 0x10000) {
		out[(*o)++] = (char)(0xE0 | (cp >> 12));
		out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
		out[(*o)++] = (char)(0x80 | (cp & 0x3F));
	} else {
		out[(*o)++] = (char)(0xF0 | (cp >> 18));
		out[(*o)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
		out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
		out[(*o)++] = (char)(0x80 | (cp & 0x3F));
	}
}

static int jr_hex4(struct jreader *r, uint32_t *out)
{
	uint32_t v = 0;
	for (int i = 0; i < 4; i++) {
		if (r->pos >= r->len || !isxdigit((unsigned char)r->s[r->pos]))
			return -1;
		char c = r->s[r->pos++];
		v = v << 4 | (uint32_t)(isdigit((unsigned char)c) ? c - '0' : (tolower(c) - 'a' + 10));
	}
	*out = v;
	return 0;
}

/* A JSON string at r->pos (the opening quote) into a malloc'd buffer.
 * \uXXXX escapes, including surrogate pairs, become UTF-8. */
static char *jr_string(struct jreader *r, size_t *len)
{
	r->pos++;
	/* decoded text is never longer than the source */
	char *out = malloc(r->len - r->pos + 1);
	size_t o = 0;
	if (!out) {
		r->err = "out of memory";
		return NULL;
	}
	while (r->pos < r->len && r->s[r->pos] != '"') {
		char c = r->s[r->pos++];
		if (c != '\\') {
			out[o++] = c;
			continue;
		}
		if (r->pos >= r->len)
			break;
		c = r->s[r->pos++];
		uint32_t cp, lo;
		switch (c) {
		case '"': case '\\': case '/': out[o++] = c; break;
		case 'b': out[o++] = '\b'; break;
		case 'f': out[o++] = '\f'; break;
		case 'n': out[o++] = '\n'; break;
		case 'r': out[o++] = '\r'; break;
		case 't': out[o++] = '\t'; break;
		case 'u':
			if (jr_hex4(r, &cp) != 0)
				goto bad;
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				if (r->pos + 2 > r->len || r->s[r->pos] != '\\' || r->s[r->pos + 1] != 'u')
					goto bad;
				r->pos += 2;
				if (jr_hex4(r, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF)
					goto bad;
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
			} else if (cp >= 0xDC00 && cp <= 0xDFFF) {
				goto bad;
			}
			put_utf8(out, &o, cp);
			break;
		default:
			goto bad;
		}
	}
	if (r->pos >= r->len)
		goto bad;
	r->pos++;
	out[o] = '\0';
	*len = o;
	return out;
bad:
	r->err = "bad string";
	free(out);
	return NULL;
}

static struct jval *jr_value(struct jreader *r, int depth)
{
	jr_ws(r);
	if (depth > JSON_MAX_DEPTH || r->pos >= r->len) {
		r->err = depth > JSON_MAX_DEPTH ? "nesting too deep" : "unexpected end";
		return NULL;
	}
	struct jval *v = calloc(1, sizeof(*v));
	if (!v) {
		r->err = "out of memory";
		return NULL;
	}
	char c = r->s[r->pos];
	if (c == '"') {
		v->type = J_STRING;
		if (!(v->str = jr_string(r, &v->slen)))
			goto fail;
		return v;
	}
	if (c != '{' && c != '[') {
		r->err = "expected an object, array or string";
		goto fail;
	}
	v->type = c == '{' ? J_OBJECT : J_ARRAY;
	char close = c == '{' ? '}' : ']';
	r->pos++;
	jr_ws(r);
	if (r->pos < r->len && r->s[r->pos] == close) {
		r->pos++;
		return v;
	}
	for (;;) {
		if (v->type == J_OBJECT) {
			jr_ws(r);
			struct jmember m = {0};
			if (r->pos >= r->len || r->s[r->pos] != '"') {
				r->err = "expected a key";
				goto fail;
			}
			if (!(m.key = jr_string(r, &m.klen)))
				goto fail;
			jr_ws(r);
			if (r->pos >= r->len || r->s[r->pos] != ':') {
				free(m.key);
				r->err = "expected ':'";
				goto fail;
			}
			r->pos++;
			m.val = jr_value(r, depth + 1);
			if (!m.val || !jr_grow((void **)&v->mem, &v->cap, v->n, sizeof(m))) {
				free(m.key);
				jval_free(m.val);
				goto fail;
			}
			v->mem[v->n++] = m;
		} else {
			struct jval *e = jr_value(r, depth + 1);
			if (!e || !jr_grow((void **)&v->elem, &v->cap, v->n, sizeof(e))) {
				jval_free(e);
				goto fail;
			}
			v->elem[v->n++] = e;
		}
		jr_ws(r);
		if (r->pos < r->len && r->s[r->pos] == ',') {
			r->pos++;
			continue;
		}
		if (r->pos < r->len && r->s[r->pos] == close) {
			r->pos++;
			return v;
		}
		r->err = "expected ',' or a closing bracket";
		goto fail;
	}
fail:
	if (!r->err)
		r->err = "out of memory";
	jval_free(v);
	return NULL;
}

static struct jval *json_parse(const char *s, size_t len, const char **err)
{
	struct jreader r = {s, len, 0, NULL};
	struct jval *v = jr_value(&r, 0);
	if (v) {
		jr_ws(&r);
		if (r.pos != r.len) {
			r.err = "trailing data";
			jval_free(v);
			v = NULL;
		}
	}
	*err = r.err;
	return v;
}

static const struct jval *jobj_get(const struct jval *o, const char *key)
{
	for (size_t i = 0; i < o->n; i++)
		if (o->mem[i].klen == strlen(key) && memcmp(o->mem[i].key, key, o->mem[i].klen) == 0)
			return o->mem[i].val;
	return NULL;
}

static const struct jval *jobj_find(const struct jval *o, const char *key, size_t klen)
{
	for (size_t i = 0; i < o->n; i++)
		if (o->mem[i].klen == klen && memcmp(o->mem[i].key, key, klen) == 0)
			return o->mem[i].val;
	return NULL;
}

/* A scalar is an object with exactly the string members type and value. */
static bool is_scalar(const struct jval *v, const char **type, const struct jval **value)
{
	if (v->type != J_OBJECT || v->n != 2)
		return false;
	const struct jval *t = jobj_get(v, "type"), *val = jobj_get(v, "value");
	if (!t || !val || t->type != J_STRING || val->type != J_STRING)
		return false;
	*type = t->str;
	*value = val;
	return true;
}

/* ---- comparison ------------------------------------------------------- */

struct dtval {
	bool has_date, has_time, has_offset;
	int year, month, day, hour, minute, second;
	long nanos;
	int offset_minutes;
};

static int num(const char *s, int n)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* Parses an RFC 3339 date, time or date-time ('t', ' ', 'z' allowed). */
static bool dt_parse(const char *src, struct dtval *d)
{
	char s[128];
	size_t n = strlen(src);
	if (n >= sizeof(s))
		return false;
	for (size_t i = 0; i <= n; i++)
		s[i] = src[i] == 't' || src[i] == ' ' ? 'T' : src[i] == 'z' ? 'Z' : src[i];
	memset(d, 0, sizeof(*d));
	const char *p = s;
	if (n >= 10 && s[4] == '-') {
		d->has_date = true;
		d->year = num(p, 4);
		d->month = num(p + 5, 2);
		d->day = num(p + 8, 2);
		if (d->year < 0 || d->month < 0 || d->day < 0 || p[7] != '-')
			return false;
		p += 10;
		if (*p == '\0')
			return true;
		if (*p++ != 'T')
			return false;
	}
	if (strlen(p) < 8 || p[2] != ':' || p[5] != ':')
		return false;
	d->has_time = true;
	d->hour = num(p, 2);
	d->minute = num(p + 3, 2);
	d->second = num(p + 6, 2);
	if (d->hour < 0 || d->minute < 0 || d->second < 0)
		return false;
	p += 8;
	if (*p == '.') {
		int k = 0;
		for (p++; isdigit((unsigned char)*p); p++, k++)
			if (k < 9)
				d->nanos = d->nanos * 10 + (*p - '0');
		if (k == 0)
			return false;
		for (; k < 9; k++)
			d->nanos *= 10;
	}
	if (*p == 'Z') {
		d->has_offset = true;
		p++;
	} else if (*p == '+' || *p == '-') {
		int h = num(p + 1, 2), m = num(p + 4, 2);
		if (h < 0 || m < 0 || p[3] != ':')
			return false;
		d->has_offset = true;
		d->offset_minutes = (*p == '-' ? -1 : 1) * (h * 60 + m);
		p += 6;
	}
	return *p == '\0';
}

/* Days since 1970-01-01 in the proleptic Gregorian calendar. */
static long days_from_civil(long y, long m, long d)
{
	y -= m <= 2;
	long era = (y >= 0 ? y : y - 399) / 400;
	long yoe = y - era * 400;
	long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static bool dt_equal(const char *type, const char *a, const char *b)
{
	struct dtval x, y;
	if (!dt_parse(a, &x) || !dt_parse(b, &y))
		return false;
	if (x.has_date != y.has_date || x.has_time != y.has_time || x.has_offset != y.has_offset)
		return false;
	if (strcmp(type, "datetime") == 0) {
		long long sx = (long long)days_from_civil(x.year, x.month, x.day) * 86400 +
			       x.hour * 3600 + x.minute * 60 + x.second - x.offset_minutes * 60;
		long long sy = (long long)days_from_civil(y.year, y.month, y.day) * 86400 +
			       y.hour * 3600 + y.minute * 60 + y.second - y.offset_minutes * 60;
		return sx == sy && x.nanos == y.nanos;
	}
	return x.year == y.year && x.month == y.month && x.day == y.day && x.hour == y.hour &&
	       x.minute == y.minute && x.second == y.second && x.nanos == y.nanos;
}

static bool float_equal(const char *a, const char *b)
{
	char la[128], lb[128];
	snprintf(la, sizeof(la), "%s", a);
	snprintf(lb, sizeof(lb), "%s", b);
	for (char *p = la; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	for (char *p = lb; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	size_t na = strlen(la), nb = strlen(lb);
	if ((na >= 3 && strcmp(la + na - 3, "nan") == 0) || (nb >= 3 && strcmp(lb + nb - 3, "nan") == 0)) {
		const char *pa = la + (la[0] == '+' || la[0] == '-');
		const char *pb = lb + (lb[0] == '+' || lb[0] == '-');
		return strcmp(pa, pb) == 0;
	}
	char *ea, *eb;
	double da = strtod(la, &ea), db = strtod(lb, &eb);
	return *ea == '\0' && *eb == '\0' && da == db;
}

static bool scalar_equal(const char *type, const struct jval *want, const struct jval *got)
{
	if (strcmp(type, "string") == 0 || strcmp(type, "integer") == 0)
		return want->slen == got->slen && memcmp(want->str, got->str, want->slen) == 0;
	if (strcmp(type, "bool") == 0)
		return strcasecmp(want->str, got->str) == 0;
	if (strcmp(type, "float") == 0)
		return float_equal(want->str, got->str);
	if (strcmp(type, "datetime") == 0 || strcmp(type, "datetime-local") == 0 ||
	    strcmp(type, "date-local") == 0 || strcmp(type, "time-local") == 0)
		return dt_equal(type, want->str, got->str);
	return false;
}

/* Compares expected want with actual got; on a difference writes where
 * (a key path) and what into why. */
static bool jcompare(const struct jval *want, const struct jval *got, char *path, size_t plen,
		     char *why, size_t wcap)
{
	const char *wt, *gt;
	const struct jval *wv, *gv;

	if (is_scalar(want, &wt, &wv)) {
		if (!is_scalar(got, &gt, &gv)) {
			snprintf(why, wcap, "at '%s': expected a %s value, got a table or array", path, wt);
			return false;
		}
		if (strcmp(wt, gt) != 0) {
			snprintf(why, wcap, "at '%s': expected type %s, got %s", path, wt, gt);
			return false;
		}
		if (!scalar_equal(wt, wv, gv)) {
			snprintf(why, wcap, "at '%s': expected %s \"%s\", got \"%s\"", path, wt,
				 wv->str, gv->str);
			return false;
		}
		return true;
	}
	if (want->type != got->type || is_scalar(got, &gt, &gv)) {
		snprintf(why, wcap, "at '%s': expected %s, got something else", path,
			 want->type == J_OBJECT ? "a table" : "an array");
		return false;
	}
	if (want->type == J_STRING) {
		snprintf(why, wcap, "at '%s': bare string in expected JSON", path);
		return false;
	}
	if (want->n != got->n) {
		snprintf(why, wcap, "at '%s': expected %zu %s, got %zu", path, want->n,
			 want->type == J_OBJECT ? "keys" : "elements", got->n);
		return false;
	}
	size_t len = strlen(path);
	for (size_t i = 0; i < want->n; i++) {
		const struct jval *w, *g;
		if (want->type == J_OBJECT) {
			w = want->mem[i].val;
			g = jobj_find(got, want->mem[i].key, want->mem[i].klen);
			snprintf(path + len, plen - len, "%s%s", len ? "." : "", want->mem[i].key);
			if (!g) {
				snprintf(why, wcap, "missing key '%s'", path);
				return false;
			}
		} else {
			w = want->elem[i];
			g = got->elem[i];
			snprintf(path + len, plen - len, "[%zu]", i);
		}
		if (!jcompare(w, g, path, plen, why, wcap))
			return false;
		path[len] = '\0';
	}
	return true;
}

/* ---- the suite -------------------------------------------------------- */

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 4096, n = 0, got;
	char *buf = malloc(cap);
	while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n == cap) {
			if (cap > (size_t)TOML_MAX_INPUT * 2) {
				free(buf);
				buf = NULL;
				break;
			}
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
	}
	fclose(f);
	*len = n;
	return buf;
}

/* Runs one valid case; on failure writes the reason into why. */
static bool run_valid(const char *toml_path, const char *json_path, char *why, size_t wcap)
{
	size_t tlen, jlen;
	char *text = read_file(toml_path, &tlen);
	char *expect = read_file(json_path, &jlen);
	bool ok = false;
	struct toml_node *root = NULL;
	char *got = NULL;
	struct jval *want = NULL, *gotv = NULL;
	const char *jerr;
	struct toml_error err;
	char path[1024] = "";

	if (!text || !expect) {
		snprintf(why, wcap, "cannot read the %s file", !text ? ".toml" : "expected .json");
		goto out;
	}
	root = toml_parse(text, tlen, &err);
	if (!root) {
		snprintf(why, wcap, "rejected valid input: %u:%u: %s", err.line, err.col, err.msg);
		goto out;
	}
	size_t need = toml_json_write(root, NULL, 0);
	got = malloc(need + 1);
	if (!got) {
		snprintf(why, wcap, "out of memory");
		goto out;
	}
	toml_json_write(root, got, need + 1);
	want = json_parse(expect, jlen, &jerr);
	if (!want) {
		snprintf(why, wcap, "bad expected JSON: %s", jerr);
		goto out;
	}
	gotv = json_parse(got, need, &jerr);
	if (!gotv) {
		snprintf(why, wcap, "toml_json_write produced bad JSON: %s", jerr);
		goto out;
	}
	ok = jcompare(want, gotv, path, sizeof(path), why, wcap);
out:
	free(text);
	free(expect);
	free(got);
	toml_free(root);
	jval_free(want);
	jval_free(gotv);
	return ok;
}

static bool run_invalid(const char *toml_path, char *why, size_t wcap)
{
	size_t tlen;
	char *text = read_file(toml_path, &tlen);
	if (!text) {
		snprintf(why, wcap, "cannot read the file");
		return false;
	}
	struct toml_error err;
	struct toml_node *root = toml_parse(text, tlen, &err);
	free(text);
	if (root) {
		toml_free(root);
		snprintf(why, wcap, "accepted invalid input");
		return false;
	}
	if (err.line < 1 || err.col < 1 || err.msg[0] == '\0') {
		snprintf(why, wcap, "rejected without a position or reason");
		return false;
	}
	return true;
}

/* The case list: relative paths ("valid/x.toml"), sorted. */
struct caselist {
	char **v;
	size_t n, cap;
};

static struct caselist g_walk;
static size_t g_walk_root;

static int caselist_add(struct caselist *l, const char *rel)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 512;
		char **nv = realloc(l->v, cap * sizeof(*nv));
		if (!nv)
			return -1;
		l->v = nv;
		l->cap = cap;
	}
	l->v[l->n] = strdup(rel);
	if (!l->v[l->n])
		return -1;
	l->n++;
	return 0;
}

static int walk_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	size_t n = strlen(path);
	if (flag != FTW_F || n < 5 || strcmp(path + n - 5, ".toml") != 0)
		return 0;
	return caselist_add(&g_walk, path + g_walk_root);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Fills l from DIR/files-toml-1.0.0, else by walking DIR/valid and
 * DIR/invalid. Returns 0, or -1 with a message printed. */
static int load_cases(const char *dir, struct caselist *l)
{
	char list[4096];
	snprintf(list, sizeof(list), "%s/files-toml-1.0.0", dir);
	FILE *f = fopen(list, "r");
	if (f) {
		char line[1024];
		while (fgets(line, sizeof(line), f)) {
			line[strcspn(line, "\r\n")] = '\0';
			if (caselist_add(l, line) < 0) {
				fclose(f);
				return -1;
			}
		}
		fclose(f);
		return 0;
	}
	static const char *const sub[] = { "valid", "invalid" };
	for (size_t i = 0; i < 2; i++) {
		char top[4096];
		snprintf(top, sizeof(top), "%s/%s", dir, sub[i]);
		g_walk_root = strlen(dir) + 1;
		if (nftw(top, walk_one, 16, FTW_PHYS) != 0) {
			fprintf(stderr, "toml-test-runner: cannot read %s (no files-toml-1.0.0 either)\n", top);
			return -1;
		}
	}
	*l = g_walk;
	qsort(l->v, l->n, sizeof(*l->v), cmp_str);
	return 0;
}

/* Reads the skip list; returns 0 or -1 with a message printed. */
static int load_skips(const char *path, struct caselist *l)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "toml-test-runner: cannot open the skip list %s\n", path);
		return -1;
	}
	char line[1024];
	int r = 0;
	while (r == 0 && fgets(line, sizeof(line), f)) {
		line[strcspn(line, " \t\r\n#")] = '\0';
		if (line[0])
			r = caselist_add(l, line);
	}
	fclose(f);
	return r;
}

static bool listed(const struct caselist *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i], s))
			return true;
	return false;
}

int main(int argc, char **argv)
{
	struct caselist cases = { 0 }, skips = { 0 };
	if (argc == 4 && !strcmp(argv[1], "--skip")) {
		if (load_skips(argv[2], &skips) < 0)
			return 2;
		argv += 2;
		argc -= 2;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: %s [--skip LIST] TOML-TEST-DIR\n", argv[0]);
		return 2;
	}
	const char *dir = argv[1];
	if (load_cases(dir, &cases) < 0)
		return 2;
	unsigned passed = 0, failed = 0, skipped = 0;
	for (size_t i = 0; i < cases.n; i++) {
		const char *line = cases.v[i];
		size_t n = strlen(line);
		if (n < 5 || strcmp(line + n - 5, ".toml") != 0)
			continue;
		if (listed(&skips, line)) {
			printf("SKIP %s (in the skip list)\n", line);
			skipped++;
			continue;
		}
		char tpath[4096], jpath[4096], why[1024] = "";
		snprintf(tpath, sizeof(tpath), "%s/%s", dir, line);
		bool ok;
		if (strncmp(line, "valid/", 6) == 0) {
			snprintf(jpath, sizeof(jpath), "%s/%.*s.json", dir, (int)(n - 5), line);
			ok = run_valid(tpath, jpath, why, sizeof(why));
		} else if (strncmp(line, "invalid/", 8) == 0) {
			ok = run_invalid(tpath, why, sizeof(why));
		} else {
			continue;
		}
		if (ok) {
			passed++;
		} else {
			failed++;
			printf("FAIL %s: %s\n", line, why);
		}
	}
	for (size_t i = 0; i < cases.n; i++)
		free(cases.v[i]);
	free(cases.v);
	for (size_t i = 0; i < skips.n; i++)
		free(skips.v[i]);
	free(skips.v);
	printf("toml-test: %u passed, %u failed, %u skipped\n", passed, failed, skipped);
	return failed == 0 && passed > 0 ? 0 : 1;
}
