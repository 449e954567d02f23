/* conf_testutil: helpers shared by the conf unit tests (test_conf.c,
 * test_conf_check.c, test_conf_diff.c; after <cmocka.h>). Pure: no loop,
 * so a test linking molerat_codec alone may include it. */
#ifndef MOLERAT_CONF_TESTUTIL_H
#define MOLERAT_CONF_TESTUTIL_H

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/conf.h"

#define CLIENT_MIN "[client]\nremote_addr = \"example.com:2333\"\n"
#define SERVER_MIN "[server]\nbind_addr = \"0.0.0.0:2333\"\n"

static inline struct conf *load(const char *text, struct conf_error *e)
{
	memset(e, 0, sizeof(*e));
	return conf_load_buffer("t.toml", text, strlen(text), e);
}

static inline struct conf *must_load(const char *text)
{
	struct conf_error e;
	struct conf *c = load(text, &e);
	if (!c)
		fail_msg("expected the config to load, got: %s\n--- config ---\n%s", e.msg, text);
	return c;
}

/* The whole file at path, NUL-terminated (its length in *len when len is
 * not NULL); NULL when it cannot be read. */
static inline char *read_whole(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 4096, n = 0, k;
	char *buf = malloc(cap + 1);
	while (buf && (k = fread(buf + n, 1, cap - n, f)) > 0) {
		n += k;
		if (n == cap) {
			char *nb = realloc(buf, cap * 2 + 1);
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
	if (buf)
		buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

static inline int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The *.toml names in dir, sorted; returns the count. */
static inline size_t list_toml(const char *dir, char ***out)
{
	DIR *d = opendir(dir);
	if (!d)
		fail_msg("cannot open %s: %s", dir, strerror(errno));
	char **v = NULL;
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);
		if (l < 6 || strcmp(e->d_name + l - 5, ".toml") != 0)
			continue;
		v = realloc(v, (n + 1) * sizeof(*v));
		assert_non_null(v);
		v[n++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(v, n, sizeof(*v), cmp_str);
	*out = v;
	return n;
}

/* The *.toml files of a folder under the source tree, one at a time:
 *
 *	struct conf_files f;
 *	conf_files_open(&f, "examples", 10);
 *	while (conf_files_next(&f)) {
 *		struct conf *c = conf_files_load(&f, "example");
 *		...
 *	}
 */
struct conf_files {
	char dir[512];
	char **names;
	size_t n, i;
	const char *name; /* the current file's name */
	char path[1024];  /* and its path */
};

/* Lists SOURCE_DIR/rel; fails unless it holds at least min files. */
static inline void conf_files_open(struct conf_files *f, const char *rel, size_t min)
{
	snprintf(f->dir, sizeof(f->dir), "%s/%s", SOURCE_DIR, rel);
	f->n = list_toml(f->dir, &f->names);
	assert_true(f->n >= min);
	f->i = 0;
	f->name = NULL;
}

/* The next file's path (f->name its name); NULL after the last, when the
 * list is freed. */
static inline const char *conf_files_next(struct conf_files *f)
{
	if (f->i > 0)
		free(f->names[f->i - 1]);
	if (f->i == f->n) {
		free(f->names);
		f->names = NULL;
		f->n = f->i = 0;
		f->name = NULL;
		return NULL;
	}
	f->name = f->names[f->i++];
	snprintf(f->path, sizeof(f->path), "%s/%s", f->dir, f->name);
	return f->path;
}

/* Loads the current file; fails with "<what> <name> does not load: ..."
 * when it does not. */
static inline struct conf *conf_files_load(const struct conf_files *f, const char *what)
{
	struct conf_error e;
	struct conf *c = conf_load_file(f->path, &e);
	if (!c)
		fail_msg("%s %s does not load: %s", what, f->name, e.msg);
	return c;
}

/* The run mode of the current file, loaded as c (protocol.md#p-run-mode,
 * no flag); fails with "<what> <name>: ..." when none can be picked. */
static inline enum conf_mode conf_files_mode(const struct conf_files *f, const struct conf *c,
					     const char *what)
{
	struct conf_error me;
	enum conf_mode m = conf_pick_mode(c, CONF_MODE_AUTO, &me);
	if (m == CONF_MODE_AUTO)
		fail_msg("%s %s: %s", what, f->name, me.msg);
	return m;
}

/* The service called name among arr[0..n); fails the test when absent. */
static inline const struct conf_service *svc(const struct conf_service *arr, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (arr[i].name_len == strlen(name) && !memcmp(arr[i].name, name, arr[i].name_len))
			return &arr[i];
	fail_msg("no service %s", name);
	return NULL;
}

#endif
