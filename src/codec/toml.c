/* toml: TOML 1.0.0 parser, a small recursive descent over raw bytes.
 *
 * Two passes: check_text() first proves the whole input is UTF-8 without
 * forbidden control characters (TOML allows only tab, LF and CRLF anywhere),
 * so the parser proper can treat every byte >= 0x80 as part of a valid
 * sequence and every CR as the start of CRLF. The parser then walks the text
 * once, building the tree as it goes.
 *
 * Redefinition rules are enforced with per-node flags (enum table_flag):
 * how a table came to exist decides whether a [header], a dotted key or a
 * [[header]] may later add to it. Duplicate-key checks go through a hash
 * index owned by the parser so that huge tables stay linear. */
#include "codec/toml.h"

#include "base/strbuf.h"
#include "base/util.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How a table or array was created; kept in toml_node.flags. */
enum table_flag {
	TF_IMPLICIT = 1u << 0,  /* table created as a parent of a [header] */
	TF_HEADER = 1u << 1,    /* table defined by [header] or [[header]] */
	TF_DOTTED = 1u << 2,    /* table created (or entered) by a dotted key */
	TF_INLINE = 1u << 3,    /* inline table: sealed once closed */
	TF_AOT = 1u << 4,       /* array created by [[header]] */
};


/* A 1-based source position. */
struct src_pos {
	unsigned line, col;
};

struct key_part {
	struct toml_str s;      /* owned until moved into a table */
	size_t off;             /* where the part is written */
	struct src_pos at;
};

/* The parts of a dotted key; the first few live inline. */
struct key_path {
	struct key_part *part;  /* small or malloc'd */
	size_t n, cap;
	struct key_part small[8];
};

/* One slot of the duplicate-key index: item `item` of table `table`. */
struct key_slot {
	const struct toml_node *table;   /* NULL: empty slot */
	size_t item;
	uint64_t hash;
};

enum {
	INDEX_MIN = 8,          /* tables with more items go into the hash index */
};

struct parser {
	const unsigned char *s;
	size_t len;
	size_t pos;
	size_t base;            /* first byte after a BOM */
	/* line/column cache for locate() */
	size_t loc_off, loc_line_start;
	unsigned loc_line;
	struct toml_error *err;
	bool failed;
	struct key_slot *slot;
	size_t slot_cap, slot_used;
};

/* ---- errors and positions ---------------------------------------------- */

/* Line and column (1-based, bytes) of offset off. Moves a cached cursor,
 * so a forward-moving sequence of calls is linear overall: positions are
 * taken when the parser first reaches them (errors may look back once). */
static void locate(struct parser *p, size_t off, unsigned *line, unsigned *col)
{
	if (off > p->len)
		off = p->len;
	if (off >= p->loc_off) {
		for (size_t i = p->loc_off; i < off; i++) {
			if (p->s[i] == '\n') {
				p->loc_line++;
				p->loc_line_start = i + 1;
			}
		}
	} else {
		for (size_t i = off; i < p->loc_off; i++)
			if (p->s[i] == '\n')
				p->loc_line--;
		size_t ls = off;
		while (ls > p->base && p->s[ls - 1] != '\n')
			ls--;
		p->loc_line_start = ls;
	}
	p->loc_off = off;
	*line = p->loc_line;
	*col = (unsigned)(off - p->loc_line_start + 1);
}

static struct src_pos pos_at(struct parser *p, size_t off)
{
	struct src_pos r;
	locate(p, off, &r.line, &r.col);
	return r;
}

__attribute__((format(printf, 3, 4)))
static void fail_at(struct parser *p, size_t off, const char *fmt, ...)
{
	if (p->failed)
		return;
	p->failed = true;
	locate(p, off, &p->err->line, &p->err->col);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->err->msg, sizeof(p->err->msg), fmt, ap);
	va_end(ap);
}

static void fail_oom(struct parser *p)
{
	fail_at(p, p->pos, "out of memory");
}

/* A printable rendering of a key for error messages: at most ~40 bytes
 * (never splitting a UTF-8 sequence), control bytes as '?'. cap >= 48. */
static const char *key_repr(const struct toml_str *k, char *out, size_t cap)
{
	size_t o = 0, i = 0;
	while (i < k->len && o + 8 < cap &&
	       (o < 40 || ((unsigned char)k->ptr[i] & 0xC0) == 0x80)) {
		unsigned char c = (unsigned char)k->ptr[i++];
		out[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	if (i < k->len) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	return out;
}

/* ---- input check -------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (n bytes left) or 0. Rejects
 * overlong forms, surrogates and code points above U+10FFFF. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t need;
	unsigned char lo = 0x80, hi = 0xBF;   /* range of the second byte */

	if (c < 0x80)
		return 1;
	if (c < 0xC2)
		return 0;
	if (c < 0xE0) {
		need = 1;
	} else if (c < 0xF0) {
		need = 2;
		if (c == 0xE0)
			lo = 0xA0;
		if (c == 0xED)
			hi = 0x9F;
	} else if (c < 0xF5) {
		need = 3;
		if (c == 0xF0)
			lo = 0x90;
		if (c == 0xF4)
			hi = 0x8F;
	} else {
		return 0;
	}
	if (n < need + 1 || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i <= need; i++)
		if ((s[i] & 0xC0) != 0x80)
			return 0;
	return need + 1;
}

/* Rejects invalid UTF-8, control characters other than tab and newline,
 * and CR not followed by LF. TOML forbids the rest everywhere. */
static int check_text(struct parser *p)
{
	size_t i = p->base;
	while (i < p->len) {
		unsigned char c = p->s[i];
		if (c == '\r') {
			if (i + 1 >= p->len || p->s[i + 1] != '\n') {
				fail_at(p, i, "carriage return not followed by line feed");
				return -1;
			}
			i += 2;
		} else if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f) {
			fail_at(p, i, "control character U+%04X is not allowed", c);
			return -1;
		} else if (c < 0x80) {
			i++;
		} else {
			size_t n = utf8_seq(p->s + i, p->len - i);
			if (n == 0) {
				fail_at(p, i, "invalid UTF-8");
				return -1;
			}
			i += n;
		}
	}
	return 0;
}

/* ---- small helpers ------------------------------------------------------ */

static int peek_at(const struct parser *p, size_t k)
{
	return p->pos + k < p->len ? p->s[p->pos + k] : -1;
}

static int peek(const struct parser *p)
{
	return peek_at(p, 0);
}

static bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static bool is_bare(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) ||
	       c == '_' || c == '-';
}

static bool at_newline(const struct parser *p)
{
	int c = peek(p);
	return c == '\n' || c == '\r';   /* check_text: CR always starts CRLF */
}

static void skip_newline(struct parser *p)
{
	p->pos += peek(p) == '\r' ? 2 : 1;
}

static void skip_ws(struct parser *p)
{
	while (peek(p) == ' ' || peek(p) == '\t')
		p->pos++;
}

static void skip_comment(struct parser *p)
{
	if (peek(p) != '#')
		return;
	while (p->pos < p->len && !at_newline(p))
		p->pos++;
}

/* Whitespace, newlines and comments (inside arrays). */
static void skip_blank(struct parser *p)
{
	for (;;) {
		skip_ws(p);
		skip_comment(p);
		if (!at_newline(p))
			return;
		skip_newline(p);
	}
}

static bool starts_with(const struct parser *p, const char *lit)
{
	size_t n = strlen(lit);
	return p->len - p->pos >= n && memcmp(p->s + p->pos, lit, n) == 0;
}

/* Hands the built string over to out; resets b. */
static int sb_take(struct parser *p, struct strbuf *b, struct toml_str *out)
{
	out->ptr = strbuf_take(b, &out->len);
	if (!out->ptr) {
		fail_oom(p);
		return -1;
	}
	return 0;
}

/* ---- nodes and tables --------------------------------------------------- */

static struct toml_node *node_new(struct parser *p, enum toml_type type, struct src_pos at)
{
	struct toml_node *n = calloc(1, sizeof(*n));
	if (!n) {
		fail_oom(p);
		return NULL;
	}
	n->type = type;
	n->line = at.line;
	n->col = at.col;
	return n;
}

void toml_free(struct toml_node *n)
{
	if (!n)
		return;
	switch (n->type) {
	case TOML_TABLE:
		for (size_t i = 0; i < n->u.table.len; i++) {
			free(n->u.table.items[i].key.ptr);
			toml_free(n->u.table.items[i].value);
		}
		free(n->u.table.items);
		break;
	case TOML_ARRAY:
		for (size_t i = 0; i < n->u.array.len; i++)
			toml_free(n->u.array.items[i]);
		free(n->u.array.items);
		break;
	case TOML_STRING:
		free(n->u.str.ptr);
		break;
	default:
		break;
	}
	free(n);
}

/* FNV-1a over the key, then the table's address mixed in with a 64-bit
 * finalizer so that neighbouring tables spread over the index. */
static uint64_t key_hash(const struct toml_node *t, const char *k, size_t n)
{
	uint64_t h = 14695981039346656037ull;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)k[i];
		h *= 1099511628211ull;
	}
	h ^= (uint64_t)(uintptr_t)t;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

static const struct toml_str *slot_key(const struct key_slot *s)
{
	return &s->table->u.table.items[s->item].key;
}

/* The item of table t named k, or NULL. Small tables are scanned; larger
 * ones are in the hash index. */
static struct toml_node *table_find(const struct parser *p, const struct toml_node *t,
				    const struct toml_str *k)
{
	if (t->u.table.len <= INDEX_MIN) {
		for (size_t i = 0; i < t->u.table.len; i++) {
			const struct toml_kv *kv = &t->u.table.items[i];
			if (kv->key.len == k->len && memcmp(kv->key.ptr, k->ptr, k->len) == 0)
				return kv->value;
		}
		return NULL;
	}
	uint64_t h = key_hash(t, k->ptr, k->len);
	size_t mask = p->slot_cap - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		const struct key_slot *s = &p->slot[i];
		if (!s->table)
			return NULL;
		if (s->table == t && s->hash == h && slot_key(s)->len == k->len &&
		    memcmp(slot_key(s)->ptr, k->ptr, k->len) == 0)
			return t->u.table.items[s->item].value;
	}
}

static void slot_insert(struct key_slot *slots, size_t cap, const struct key_slot *in)
{
	size_t mask = cap - 1;
	size_t i = in->hash & mask;
	while (slots[i].table)
		i = (i + 1) & mask;
	slots[i] = *in;
}

/* Makes room for n more index entries (load factor at most 1/2). */
static int index_reserve(struct parser *p, size_t n)
{
	if ((p->slot_used + n) * 2 <= p->slot_cap)
		return 0;
	size_t cap = p->slot_cap ? p->slot_cap : 64;
	while ((p->slot_used + n) * 2 > cap)
		cap *= 2;
	struct key_slot *ns = calloc(cap, sizeof(*ns));
	if (!ns)
		return -1;
	for (size_t i = 0; i < p->slot_cap; i++)
		if (p->slot[i].table)
			slot_insert(ns, cap, &p->slot[i]);
	free(p->slot);
	p->slot = ns;
	p->slot_cap = cap;
	return 0;
}

static void index_add(struct parser *p, const struct toml_node *t, size_t item)
{
	const struct toml_str *key = &t->u.table.items[item].key;
	struct key_slot s = {t, item, key_hash(t, key->ptr, key->len)};
	slot_insert(p->slot, p->slot_cap, &s);
	p->slot_used++;
}

/* Appends key k (its string moves into the table) with value v to table t.
 * Takes ownership of v, also on failure. */
static int table_add(struct parser *p, struct toml_node *t, struct key_part *k,
		     struct toml_node *v)
{
	size_t len = t->u.table.len;
	/* the table outgrows scanning: index its items, else only the new one */
	size_t to_index = len < INDEX_MIN ? 0 : len == INDEX_MIN ? len + 1 : 1;
	if (index_reserve(p, to_index) != 0)
		goto oom;
	if (t->u.table.len == t->u.table.cap) {
		size_t cap = t->u.table.cap ? t->u.table.cap * 2 : 4;
		struct toml_kv *ni = realloc(t->u.table.items, cap * sizeof(*ni));
		if (!ni)
			goto oom;
		t->u.table.items = ni;
		t->u.table.cap = cap;
	}
	struct toml_kv *kv = &t->u.table.items[t->u.table.len];
	kv->key = k->s;
	kv->value = v;
	kv->line = k->at.line;
	kv->col = k->at.col;
	k->s = (struct toml_str){0};
	t->u.table.len++;
	for (size_t i = len + 1 - to_index; to_index > 0 && i <= len; i++)
		index_add(p, t, i);
	return 0;
oom:
	toml_free(v);
	fail_oom(p);
	return -1;
}

/* Appends v to array a; takes ownership of v, also on failure. */
static int array_push(struct parser *p, struct toml_node *a, struct toml_node *v)
{
	if (a->u.array.len == a->u.array.cap) {
		size_t cap = a->u.array.cap ? a->u.array.cap * 2 : 4;
		struct toml_node **ni = realloc(a->u.array.items, cap * sizeof(*ni));
		if (!ni) {
			toml_free(v);
			fail_oom(p);
			return -1;
		}
		a->u.array.items = ni;
		a->u.array.cap = cap;
	}
	a->u.array.items[a->u.array.len++] = v;
	return 0;
}

const struct toml_kv *toml_table_get(const struct toml_node *t, const char *key, size_t klen)
{
	if (!t || t->type != TOML_TABLE)
		return NULL;
	for (size_t i = 0; i < t->u.table.len; i++) {
		const struct toml_kv *kv = &t->u.table.items[i];
		if (kv->key.len == klen && memcmp(kv->key.ptr, key, klen) == 0)
			return kv;
	}
	return NULL;
}

const char *toml_type_name(enum toml_type t)
{
	switch (t) {
	case TOML_TABLE: return "table";
	case TOML_ARRAY: return "array";
	case TOML_STRING: return "string";
	case TOML_INTEGER: return "integer";
	case TOML_FLOAT: return "float";
	case TOML_BOOL: return "boolean";
	case TOML_DATETIME: return "offset date-time";
	case TOML_DATETIME_LOCAL: return "local date-time";
	case TOML_DATE_LOCAL: return "local date";
	case TOML_TIME_LOCAL: return "local time";
	}
	return "unknown";
}

/* ---- strings ------------------------------------------------------------ */


/* Parses the escape at p->pos (a backslash) into b. In a multi-line string
 * a backslash at the end of a line eats all following whitespace. */
static int parse_escape(struct parser *p, struct strbuf *b, bool multi)
{
	size_t off = p->pos;
	int c = peek_at(p, 1);

	if (multi && (c == ' ' || c == '\t' || c == '\n' || c == '\r')) {
		p->pos++;
		skip_ws(p);
		if (!at_newline(p)) {
			fail_at(p, off, "backslash followed by whitespace must end the line");
			return -1;
		}
		while (peek(p) == ' ' || peek(p) == '\t' || at_newline(p))
			p->pos += peek(p) == '\r' ? 2 : 1;
		return 0;
	}
	p->pos += 2;
	switch (c) {
	case 'b': strbuf_putc(b, '\b'); return 0;
	case 't': strbuf_putc(b, '\t'); return 0;
	case 'n': strbuf_putc(b, '\n'); return 0;
	case 'f': strbuf_putc(b, '\f'); return 0;
	case 'r': strbuf_putc(b, '\r'); return 0;
	case '"': strbuf_putc(b, '"'); return 0;
	case '\\': strbuf_putc(b, '\\'); return 0;
	case 'u':
	case 'U': {
		int digits = c == 'u' ? 4 : 8;
		uint32_t cp = 0;
		for (int i = 0; i < digits; i++) {
			int h = mr_hex_digit(peek(p));
			if (h < 0) {
				fail_at(p, off, "\\%c needs %d hex digits", c, digits);
				return -1;
			}
			cp = cp << 4 | (uint32_t)h;
			p->pos++;
		}
		if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
			fail_at(p, off, "\\%c%0*X is not a Unicode scalar value", c, digits, cp);
			return -1;
		}
		strbuf_put_utf8(b, cp);
		return 0;
	}
	case -1:
		fail_at(p, off, "unterminated string");
		return -1;
	default:
		if (c > 0x20 && c < 0x7f)
			fail_at(p, off, "invalid escape sequence '\\%c'", c);
		else
			fail_at(p, off, "invalid escape sequence");
		return -1;
	}
}

/* Parses a string of any of the four kinds at p->pos into out. Keys pass
 * allow_multi = false. */
static int parse_string(struct parser *p, struct toml_str *out, bool allow_multi)
{
	size_t off = p->pos;
	char q = (char)peek(p);
	bool basic = q == '"';
	bool multi = peek_at(p, 1) == q && peek_at(p, 2) == q;
	struct strbuf b = {0};

	if (multi && !allow_multi) {
		fail_at(p, off, "a multi-line string cannot be a key");
		return -1;
	}
	p->pos += multi ? 3 : 1;
	if (multi && at_newline(p))
		skip_newline(p);   /* a newline right after the opening is trimmed */
	for (;;) {
		/* copy a run of plain bytes */
		size_t start = p->pos;
		while (p->pos < p->len) {
			unsigned char c = p->s[p->pos];
			if (c == (unsigned char)q || c == '\n' || c == '\r' || (basic && c == '\\'))
				break;
			p->pos++;
		}
		strbuf_put(&b, p->s + start, p->pos - start);

		int c = peek(p);
		if (c < 0) {
			fail_at(p, off, "unterminated string");
			goto fail;
		}
		if (c == '\n' || c == '\r') {
			if (!multi) {
				fail_at(p, p->pos, "newline in single-line string");
				goto fail;
			}
			skip_newline(p);
			strbuf_putc(&b, '\n');
		} else if (c == '\\') {
			if (parse_escape(p, &b, multi) != 0)
				goto fail;
		} else if (!multi) {
			p->pos++;
			break;
		} else {
			/* a run of quotes: three close, up to two more belong to the text */
			size_t n = 0;
			while (peek_at(p, n) == q)
				n++;
			if (n >= 3) {
				if (n > 5) {
					fail_at(p, p->pos, "too many quotes at end of multi-line string");
					goto fail;
				}
				strbuf_put(&b, p->s + p->pos, n - 3);
				p->pos += n;
				break;
			}
			strbuf_put(&b, p->s + p->pos, n);
			p->pos += n;
		}
	}
	return sb_take(p, &b, out);
fail:
	free(b.p);
	return -1;
}

/* ---- keys --------------------------------------------------------------- */

static void key_path_init(struct key_path *kp)
{
	kp->part = kp->small;
	kp->n = 0;
	kp->cap = sizeof(kp->small) / sizeof(kp->small[0]);
}

static void key_path_free(struct key_path *kp)
{
	for (size_t i = 0; i < kp->n; i++)
		free(kp->part[i].s.ptr);
	if (kp->part != kp->small)
		free(kp->part);
	key_path_init(kp);
}

/* Parses a (possibly dotted) key with the whitespace around it. */
static int parse_key(struct parser *p, struct key_path *kp)
{
	for (;;) {
		skip_ws(p);
		if (kp->n == TOML_MAX_DEPTH) {
			fail_at(p, p->pos, "key has more than %d parts", TOML_MAX_DEPTH);
			return -1;
		}
		if (kp->n == kp->cap) {
			size_t cap = kp->cap * 2;
			struct key_part *np = kp->part == kp->small ? malloc(cap * sizeof(*np)) :
					      realloc(kp->part, cap * sizeof(*np));
			if (!np) {
				fail_oom(p);
				return -1;
			}
			if (kp->part == kp->small)
				memcpy(np, kp->small, sizeof(kp->small));
			kp->part = np;
			kp->cap = cap;
		}
		struct key_part *k = &kp->part[kp->n];
		k->off = p->pos;
		k->at = pos_at(p, p->pos);
		k->s = (struct toml_str){0};
		int c = peek(p);
		if (c == '"' || c == '\'') {
			if (parse_string(p, &k->s, false) != 0)
				return -1;
		} else if (is_bare(c)) {
			struct strbuf b = {0};
			size_t start = p->pos;
			while (is_bare(peek(p)))
				p->pos++;
			strbuf_put(&b, p->s + start, p->pos - start);
			if (sb_take(p, &b, &k->s) != 0)
				return -1;
		} else {
			if (c < 0 || c == '\n' || c == '\r')
				fail_at(p, p->pos, "expected a key");
			else if (c > 0x20 && c < 0x7f)
				fail_at(p, p->pos, "expected a key, found '%c'", c);
			else
				fail_at(p, p->pos, "invalid character in key");
			return -1;
		}
		kp->n++;
		skip_ws(p);
		if (peek(p) != '.')
			return 0;
		p->pos++;
	}
}

/* ---- scalar values ------------------------------------------------------ */

/* Scans digits of the radix with single underscores between them, starting
 * at t[*i]; false when there is no digit there. Stops before anything else
 * (the caller rejects leftovers). */
static bool scan_digits(const unsigned char *t, size_t n, size_t *i, int radix)
{
	if (*i >= n || mr_hex_digit(t[*i]) < 0 || mr_hex_digit(t[*i]) >= radix)
		return false;
	(*i)++;
	for (;;) {
		if (*i < n && mr_hex_digit(t[*i]) >= 0 && mr_hex_digit(t[*i]) < radix) {
			(*i)++;
		} else if (*i + 1 < n && t[*i] == '_' && mr_hex_digit(t[*i + 1]) >= 0 &&
			   mr_hex_digit(t[*i + 1]) < radix) {
			*i += 2;
		} else {
			return true;
		}
	}
}

/* Integer, float, inf or nan: the token is the run of bytes that can appear
 * in a number. */
static struct toml_node *parse_number(struct parser *p)
{
	size_t off = p->pos;
	struct src_pos at = pos_at(p, off);
	const unsigned char *t = p->s + off;
	size_t n = 0;
	while (off + n < p->len && (is_bare(t[n]) || t[n] == '+' || t[n] == '.'))
		n++;
	p->pos += n;

	size_t i = 0;
	bool neg = false, has_sign = false;
	if (n > 0 && (t[0] == '+' || t[0] == '-')) {
		neg = t[0] == '-';
		has_sign = true;
		i = 1;
	}
	if (n - i == 3 && (memcmp(t + i, "inf", 3) == 0 || memcmp(t + i, "nan", 3) == 0)) {
		struct toml_node *v = node_new(p, TOML_FLOAT, at);
		if (v) {
			v->u.fp = t[i] == 'i' ? INFINITY : NAN;
			if (neg)
				v->u.fp = -v->u.fp;
		}
		return v;
	}

	/* 0x 0o 0b */
	if (n - i >= 2 && t[i] == '0' && (t[i + 1] == 'x' || t[i + 1] == 'o' || t[i + 1] == 'b')) {
		int radix = t[i + 1] == 'x' ? 16 : t[i + 1] == 'o' ? 8 : 2;
		size_t j = i + 2;
		if (has_sign) {
			fail_at(p, off, "a sign is not allowed on hex, octal or binary integers");
			return NULL;
		}
		if (!scan_digits(t, n, &j, radix) || j != n) {
			fail_at(p, off, "invalid %s integer", radix == 16 ? "hexadecimal" :
				radix == 8 ? "octal" : "binary");
			return NULL;
		}
		uint64_t mag = 0;
		for (size_t k = i + 2; k < n; k++) {
			if (t[k] == '_')
				continue;
			uint64_t d = (uint64_t)mr_hex_digit(t[k]);
			if (mag > ((uint64_t)INT64_MAX - d) / (uint64_t)radix) {
				fail_at(p, off, "integer does not fit in 64 bits");
				return NULL;
			}
			mag = mag * (uint64_t)radix + d;
		}
		struct toml_node *v = node_new(p, TOML_INTEGER, at);
		if (v)
			v->u.integer = (int64_t)mag;
		return v;
	}

	/* decimal integer part */
	size_t int_start = i;
	if (!scan_digits(t, n, &i, 10)) {
		fail_at(p, off, "invalid value");
		return NULL;
	}
	if (t[int_start] == '0' && i - int_start > 1) {
		fail_at(p, off, "leading zeros are not allowed");
		return NULL;
	}
	bool is_float = false;
	if (i < n && t[i] == '.') {
		i++;
		if (!scan_digits(t, n, &i, 10)) {
			fail_at(p, off, "a decimal point must be followed by digits");
			return NULL;
		}
		is_float = true;
	}
	if (i < n && (t[i] == 'e' || t[i] == 'E')) {
		i++;
		if (i < n && (t[i] == '+' || t[i] == '-'))
			i++;
		if (!scan_digits(t, n, &i, 10)) {
			fail_at(p, off, "an exponent must be followed by digits");
			return NULL;
		}
		is_float = true;
	}
	if (i != n) {
		fail_at(p, off, "invalid number");
		return NULL;
	}

	if (!is_float) {
		uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
		uint64_t mag = 0;
		for (size_t k = int_start; k < n; k++) {
			if (t[k] == '_')
				continue;
			uint64_t d = (uint64_t)(t[k] - '0');
			if (mag > (limit - d) / 10) {
				fail_at(p, off, "integer does not fit in 64 bits");
				return NULL;
			}
			mag = mag * 10 + d;
		}
		struct toml_node *v = node_new(p, TOML_INTEGER, at);
		if (v)
			v->u.integer = neg && mag ? -(int64_t)(mag - 1) - 1 : (int64_t)mag;
		return v;
	}

	char *digits = malloc(n + 1);
	if (!digits) {
		fail_oom(p);
		return NULL;
	}
	size_t m = 0;
	for (size_t k = 0; k < n; k++)
		if (t[k] != '_')
			digits[m++] = (char)t[k];
	digits[m] = '\0';
	errno = 0;
	double d = strtod(digits, NULL);
	bool overflow = errno == ERANGE && isinf(d);
	free(digits);
	if (overflow) {
		fail_at(p, off, "float is out of range");
		return NULL;
	}
	struct toml_node *v = node_new(p, TOML_FLOAT, at);
	if (v)
		v->u.fp = d;
	return v;
}

/* Value of n ASCII digits at p->pos + k, or -1. */
static int digits_at(const struct parser *p, size_t k, int n)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		int c = peek_at(p, k + (size_t)i);
		if (!is_digit(c))
			return -1;
		v = v * 10 + (c - '0');
	}
	return v;
}

static bool is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
	static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* HH:MM:SS[.fraction] at p->pos. */
static int parse_time(struct parser *p, struct toml_datetime *dt)
{
	size_t off = p->pos;
	dt->hour = digits_at(p, 0, 2);
	dt->minute = peek_at(p, 2) == ':' ? digits_at(p, 3, 2) : -1;
	dt->second = peek_at(p, 5) == ':' ? digits_at(p, 6, 2) : -1;
	if (dt->hour < 0 || dt->minute < 0 || dt->second < 0) {
		fail_at(p, off, "invalid time: expected HH:MM:SS");
		return -1;
	}
	if (dt->hour > 23 || dt->minute > 59 || dt->second > 60) {
		fail_at(p, off, "time out of range");
		return -1;
	}
	p->pos += 8;
	if (peek(p) == '.') {
		p->pos++;
		if (!is_digit(peek(p))) {
			fail_at(p, p->pos, "a decimal point must be followed by digits");
			return -1;
		}
		uint32_t ns = 0;
		int k = 0;
		for (; is_digit(peek(p)); p->pos++, k++)
			if (k < 9)
				ns = ns * 10 + (uint32_t)(peek(p) - '0');
		for (; k < 9; k++)
			ns *= 10;
		dt->nanosecond = ns;
	}
	return 0;
}

/* Offset date-time, local date-time, local date or local time. */
static struct toml_node *parse_datetime(struct parser *p)
{
	size_t off = p->pos;
	struct src_pos at = pos_at(p, off);
	struct toml_datetime dt = {0};
	enum toml_type type;

	if (peek_at(p, 2) == ':') {
		if (parse_time(p, &dt) != 0)
			return NULL;
		type = TOML_TIME_LOCAL;
	} else {
		dt.year = digits_at(p, 0, 4);
		dt.month = peek_at(p, 4) == '-' ? digits_at(p, 5, 2) : -1;
		dt.day = peek_at(p, 7) == '-' ? digits_at(p, 8, 2) : -1;
		if (dt.year < 0 || dt.month < 0 || dt.day < 0) {
			fail_at(p, off, "invalid date: expected YYYY-MM-DD");
			return NULL;
		}
		if (dt.month < 1 || dt.month > 12 || dt.day < 1 ||
		    dt.day > days_in_month(dt.year, dt.month)) {
			fail_at(p, off, "date out of range");
			return NULL;
		}
		p->pos += 10;
		int c = peek(p);
		bool has_time = c == 'T' || c == 't' ||
				(c == ' ' && digits_at(p, 1, 2) >= 0 && peek_at(p, 3) == ':');
		if (!has_time) {
			type = TOML_DATE_LOCAL;
		} else {
			p->pos++;
			if (parse_time(p, &dt) != 0)
				return NULL;
			type = TOML_DATETIME_LOCAL;
			c = peek(p);
			if (c == 'Z' || c == 'z') {
				p->pos++;
				dt.has_offset = dt.offset_z = true;
				type = TOML_DATETIME;
			} else if (c == '+' || c == '-') {
				int h = digits_at(p, 1, 2);
				int m = peek_at(p, 3) == ':' ? digits_at(p, 4, 2) : -1;
				if (h < 0 || m < 0) {
					fail_at(p, p->pos, "invalid offset: expected +HH:MM or -HH:MM");
					return NULL;
				}
				if (h > 23 || m > 59) {
					fail_at(p, p->pos, "offset out of range");
					return NULL;
				}
				dt.has_offset = true;
				dt.offset_minutes = (c == '-' ? -1 : 1) * (h * 60 + m);
				p->pos += 6;
				type = TOML_DATETIME;
			}
		}
	}
	struct toml_node *v = node_new(p, type, at);
	if (v)
		v->u.dt = dt;
	return v;
}

/* ---- compound values ---------------------------------------------------- */

/* "a table", "an array of tables", "an integer", ... for messages. */
static const char *describe(const struct toml_node *v)
{
	switch (v->type) {
	case TOML_TABLE: return v->flags & TF_INLINE ? "an inline table" : "a table";
	case TOML_ARRAY: return v->flags & TF_AOT ? "an array of tables" : "an array";
	case TOML_STRING: return "a string";
	case TOML_INTEGER: return "an integer";
	case TOML_FLOAT: return "a float";
	case TOML_BOOL: return "a boolean";
	default: return "a date/time";
	}
}

static struct toml_node *parse_value(struct parser *p, unsigned depth);
static int parse_keyval(struct parser *p, struct toml_node *t, unsigned depth);

static bool check_depth(struct parser *p, unsigned depth, size_t off)
{
	if (depth <= TOML_MAX_DEPTH)
		return true;
	fail_at(p, off, "nesting deeper than %d levels", TOML_MAX_DEPTH);
	return false;
}

/* Opens an array or inline table at its '[' or '{' (at *off, consumed):
 * the new node, or NULL (too deep, out of memory). */
static struct toml_node *open_container(struct parser *p, unsigned depth, enum toml_type type, size_t *off)
{
	*off = p->pos;
	if (!check_depth(p, depth, *off))
		return NULL;
	struct toml_node *n = node_new(p, type, pos_at(p, *off));
	if (n)
		p->pos++;
	return n;
}

static struct toml_node *parse_array(struct parser *p, unsigned depth)
{
	size_t off;
	struct toml_node *a = open_container(p, depth, TOML_ARRAY, &off);
	if (!a)
		return NULL;
	for (;;) {
		skip_blank(p);
		if (peek(p) == ']')
			break;
		struct toml_node *v = parse_value(p, depth + 1);
		if (!v || array_push(p, a, v) != 0)
			goto fail;
		skip_blank(p);
		int c = peek(p);
		if (c == ',') {
			p->pos++;
		} else if (c == ']') {
			break;
		} else {
			fail_at(p, c < 0 ? off : p->pos, c < 0 ? "unterminated array" :
				"expected ',' or ']' in array");
			goto fail;
		}
	}
	p->pos++;
	return a;
fail:
	toml_free(a);
	return NULL;
}

static struct toml_node *parse_inline_table(struct parser *p, unsigned depth)
{
	size_t off;
	struct toml_node *t = open_container(p, depth, TOML_TABLE, &off);
	if (!t)
		return NULL;
	skip_ws(p);
	if (peek(p) == '}') {
		p->pos++;
		t->flags = TF_INLINE;
		return t;
	}
	for (;;) {
		if (at_newline(p)) {
			fail_at(p, p->pos, "newline is not allowed in an inline table");
			goto fail;
		}
		if (parse_keyval(p, t, depth) != 0)
			goto fail;
		skip_ws(p);
		int c = peek(p);
		if (c == ',') {
			p->pos++;
			skip_ws(p);
			if (peek(p) == '}') {
				fail_at(p, p->pos, "trailing comma is not allowed in an inline table");
				goto fail;
			}
		} else if (c == '}') {
			p->pos++;
			break;
		} else if (c < 0) {
			fail_at(p, off, "unterminated inline table");
			goto fail;
		} else if (c == '\n' || c == '\r') {
			fail_at(p, p->pos, "newline is not allowed in an inline table");
			goto fail;
		} else {
			fail_at(p, p->pos, "expected ',' or '}' in inline table");
			goto fail;
		}
	}
	t->flags = TF_INLINE;
	return t;
fail:
	toml_free(t);
	return NULL;
}

/* A value whose container nodes would sit at the given depth. */
static struct toml_node *parse_value(struct parser *p, unsigned depth)
{
	size_t off = p->pos;
	int c = peek(p);
	struct src_pos at = pos_at(p, off);

	switch (c) {
	case '"':
	case '\'': {
		struct toml_str s;
		if (parse_string(p, &s, true) != 0)
			return NULL;
		struct toml_node *v = node_new(p, TOML_STRING, at);
		if (!v) {
			free(s.ptr);
			return NULL;
		}
		v->u.str = s;
		return v;
	}
	case '[':
		return parse_array(p, depth);
	case '{':
		return parse_inline_table(p, depth);
	case 't':
	case 'f': {
		bool val = c == 't';
		if (!starts_with(p, val ? "true" : "false")) {
			fail_at(p, off, "invalid value");
			return NULL;
		}
		p->pos += val ? 4 : 5;
		struct toml_node *v = node_new(p, TOML_BOOL, at);
		if (v)
			v->u.boolean = val;
		return v;
	}
	default:
		break;
	}
	if (is_digit(c) && ((digits_at(p, 0, 4) >= 0 && peek_at(p, 4) == '-') ||
			    (digits_at(p, 0, 2) >= 0 && peek_at(p, 2) == ':')))
		return parse_datetime(p);
	if (is_digit(c) || c == '+' || c == '-' || c == 'i' || c == 'n')
		return parse_number(p);
	if (c < 0 || c == '\n' || c == '\r')
		fail_at(p, off, "expected a value");
	else
		fail_at(p, off, "invalid value");
	return NULL;
}

/* key = value, into table t (which sits at depth). Dotted keys create or
 * enter tables on the way; they may not enter inline tables, tables defined
 * by a [header], arrays or other values. */
/* One step down a key path at depth: the table k names inside cur, found
 * (returns 0: the caller checks what it is) or made with flags (returns 1),
 * or -1 (too deep, out of memory). */
static int descend(struct parser *p, struct toml_node *cur, struct key_part *k, unsigned depth,
		   unsigned flags, struct toml_node **v)
{
	if (!check_depth(p, depth, k->off))
		return -1;
	*v = table_find(p, cur, &k->s);
	if (*v)
		return 0;
	*v = node_new(p, TOML_TABLE, k->at);
	if (!*v)
		return -1;
	(*v)->flags = flags;
	return table_add(p, cur, k, *v) != 0 ? -1 : 1;
}

static int parse_keyval(struct parser *p, struct toml_node *t, unsigned depth)
{
	struct key_path kp;
	char kb[64];
	int r = -1;

	key_path_init(&kp);
	if (parse_key(p, &kp) != 0)
		goto out;
	if (peek(p) != '=') {
		fail_at(p, p->pos, "expected '=' after key");
		goto out;
	}
	p->pos++;
	skip_ws(p);

	struct toml_node *cur = t;
	for (size_t i = 0; i + 1 < kp.n; i++) {
		struct key_part *k = &kp.part[i];
		struct toml_node *v;
		int made = descend(p, cur, k, ++depth, TF_DOTTED, &v);
		if (made < 0)
			goto out;
		if (made) {
			/* a new table of the dotted key */
		} else if (v->type != TOML_TABLE) {
			fail_at(p, k->off, "cannot add keys to '%s', which is %s",
				key_repr(&k->s, kb, sizeof(kb)), describe(v));
			goto out;
		} else if (v->flags & (TF_INLINE | TF_HEADER)) {
			fail_at(p, k->off, "cannot add keys to table '%s' defined %s",
				key_repr(&k->s, kb, sizeof(kb)),
				v->flags & TF_INLINE ? "inline" : "by a [table] header");
			goto out;
		} else {
			v->flags = (v->flags & ~TF_IMPLICIT) | TF_DOTTED;
		}
		cur = v;
	}

	struct key_part *last = &kp.part[kp.n - 1];
	if (table_find(p, cur, &last->s)) {
		fail_at(p, last->off, "duplicate key '%s'", key_repr(&last->s, kb, sizeof(kb)));
		goto out;
	}
	struct toml_node *v = parse_value(p, depth + 1);
	if (!v || table_add(p, cur, last, v) != 0)
		goto out;
	r = 0;
out:
	key_path_free(&kp);
	return r;
}

/* [header] or [[header]]: returns the table that following keys go into,
 * with its depth in *depth. */
static struct toml_node *parse_header(struct parser *p, struct toml_node *root, unsigned *depth)
{
	size_t off = p->pos;
	bool aot = peek_at(p, 1) == '[';
	struct key_path kp;
	struct toml_node *res = NULL;
	char kb[64];

	struct src_pos at = pos_at(p, off);
	key_path_init(&kp);
	p->pos += aot ? 2 : 1;
	if (parse_key(p, &kp) != 0)
		goto out;
	if (peek(p) != ']' || (aot && peek_at(p, 1) != ']')) {
		fail_at(p, p->pos, aot ? "expected ']]' after array of tables name" :
			"expected ']' after table name");
		goto out;
	}
	p->pos += aot ? 2 : 1;

	struct toml_node *cur = root;
	unsigned d = 0;
	for (size_t i = 0; i + 1 < kp.n; i++) {
		struct key_part *k = &kp.part[i];
		struct toml_node *v;
		int made = descend(p, cur, k, ++d, TF_IMPLICIT, &v);
		if (made < 0)
			goto out;
		if (made) {
			/* a new implicit table of the header's path */
		} else if (v->type == TOML_ARRAY && (v->flags & TF_AOT)) {
			if (!check_depth(p, ++d, k->off))
				goto out;
			v = v->u.array.items[v->u.array.len - 1];
		} else if (v->type != TOML_TABLE || (v->flags & TF_INLINE)) {
			fail_at(p, k->off, "cannot add a table to '%s', which is %s",
				key_repr(&k->s, kb, sizeof(kb)), describe(v));
			goto out;
		}
		cur = v;
	}

	struct key_part *last = &kp.part[kp.n - 1];
	if (!check_depth(p, ++d, last->off))
		goto out;
	struct toml_node *v = table_find(p, cur, &last->s);
	if (!aot) {
		if (!v) {
			v = node_new(p, TOML_TABLE, at);
			if (!v || table_add(p, cur, last, v) != 0)
				goto out;
		} else if (v->type == TOML_TABLE && v->flags == TF_IMPLICIT) {
			v->line = at.line;
			v->col = at.col;
		} else {
			if (v->type == TOML_TABLE && !(v->flags & TF_INLINE))
				fail_at(p, off, "table '%s' is already defined",
					key_repr(&last->s, kb, sizeof(kb)));
			else
				fail_at(p, off, "'%s' is already defined as %s",
					key_repr(&last->s, kb, sizeof(kb)), describe(v));
			goto out;
		}
		v->flags = TF_HEADER;
		res = v;
	} else {
		if (!v) {
			v = node_new(p, TOML_ARRAY, at);
			if (!v)
				goto out;
			v->flags = TF_AOT;
			if (table_add(p, cur, last, v) != 0)
				goto out;
		} else if (v->type != TOML_ARRAY || !(v->flags & TF_AOT)) {
			fail_at(p, off, "'%s' is already defined as %s",
				key_repr(&last->s, kb, sizeof(kb)), describe(v));
			goto out;
		}
		if (!check_depth(p, ++d, off))
			goto out;
		struct toml_node *t = node_new(p, TOML_TABLE, at);
		if (!t || array_push(p, v, t) != 0)
			goto out;
		t->flags = TF_HEADER;
		res = t;
	}
	*depth = d;
out:
	key_path_free(&kp);
	return res;
}

/* After a key/value pair or header: optional whitespace and comment, then
 * a newline or the end. */
static int end_line(struct parser *p)
{
	skip_ws(p);
	skip_comment(p);
	if (p->pos >= p->len)
		return 0;
	if (!at_newline(p)) {
		fail_at(p, p->pos, "expected a newline or end of input");
		return -1;
	}
	skip_newline(p);
	return 0;
}

struct toml_node *toml_parse(const char *text, size_t len, struct toml_error *err)
{
	struct toml_error dummy;
	struct parser p = {
		.s = (const unsigned char *)text,
		.len = len,
		.loc_line = 1,
		.err = err ? err : &dummy,
	};
	struct toml_node *root = NULL;

	memset(p.err, 0, sizeof(*p.err));
	if (len > TOML_MAX_INPUT) {
		p.len = 0;
		fail_at(&p, 0, "input is larger than %u bytes", (unsigned)TOML_MAX_INPUT);
		return NULL;
	}
	if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
		p.base = p.pos = p.loc_off = p.loc_line_start = 3;
	if (check_text(&p) != 0)
		goto fail;
	root = node_new(&p, TOML_TABLE, pos_at(&p, p.base));
	if (!root)
		goto fail;
	root->flags = TF_HEADER;

	struct toml_node *cur = root;
	unsigned depth = 0;
	while (p.pos < p.len) {
		skip_ws(&p);
		int c = peek(&p);
		if (c < 0)
			break;
		int r = 0;
		if (c == '[') {
			cur = parse_header(&p, root, &depth);
			r = cur ? 0 : -1;
		} else if (c != '#' && c != '\n' && c != '\r') {
			r = parse_keyval(&p, cur, depth);
		}
		if (r != 0 || end_line(&p) != 0)
			goto fail;
	}
	free(p.slot);
	return root;
fail:
	free(p.slot);
	toml_free(root);
	return NULL;
}
