/* watch: the config file's directory watched through inotify
 * (protocol.md#p-reload-watch): a burst of changes is one call (debounce),
 * a save by rename and a swapped "..data" symlink are seen, other files of
 * the directory are not. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/loop.h"
#include "role/watch.h"

struct ctx {
	struct loop *loop;
	char dir[64];
	char path[128];
	int calls;
	void (*act)(struct ctx *c, int step);
	int step;
	struct timer t;
};

static void on_change(void *arg)
{
	struct ctx *c = arg;
	c->calls++;
}

static void put(const char *dir, const char *name, const char *text)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void in_dir(char *out, size_t cap, const char *dir, const char *name)
{
	snprintf(out, cap, "%s/%s", dir, name);
}

/* Runs act(step) every 10 ms for steps 0..4, then 1 s of quiet. The
 * debounce (250 ms) is far longer than a step, so a loaded machine that
 * runs a 10 ms timer late does not split a burst in two. */
static void on_step(struct loop *loop, struct timer *t)
{
	struct ctx *c = t->data;
	if (c->step == 5) {
		loop_stop(loop);
		return;
	}
	c->act(c, c->step++);
	loop_timer_start(loop, t, c->step == 5 ? 1000 : 10);
}

static int run(struct ctx *c, const char *watched, void (*act)(struct ctx *c, int step))
{
	struct watch *w;
	c->calls = 0;
	c->step = 0;
	c->act = act;
	assert_int_equal(watch_new(c->loop, &watched, 1, 250, on_change, c, &w), 0);
	loop_timer_init(&c->t, on_step, c);
	loop_timer_start(c->loop, &c->t, 0);
	assert_int_equal(loop_run(c->loop), 0);
	watch_free(w);
	return c->calls;
}

static void write_in_place(struct ctx *c, int step)
{
	put(c->dir, "conf.toml", step % 2 ? "a = 1\n" : "a = 2\n");
}

static void save_by_rename(struct ctx *c, int step)
{
	if (step != 2)
		return;
	char tmp[160];
	put(c->dir, "conf.toml.new", "a = 3\n");
	in_dir(tmp, sizeof(tmp), c->dir, "conf.toml.new");
	assert_int_equal(rename(tmp, c->path), 0);
}

static void other_file(struct ctx *c, int step)
{
	put(c->dir, "other.log", "noise\n");
}

/* a Kubernetes ConfigMap update: ..data -> v2 swapped by rename */
static void swap_data_link(struct ctx *c, int step)
{
	if (step != 1)
		return;
	char v2[160], tmp[160], data[160];
	in_dir(v2, sizeof(v2), c->dir, "v2");
	in_dir(tmp, sizeof(tmp), c->dir, "..data_tmp");
	in_dir(data, sizeof(data), c->dir, "..data");
	assert_int_equal(mkdir(v2, 0700), 0);
	put(v2, "conf.toml", "a = 4\n");
	assert_int_equal(symlink("v2", tmp), 0);
	assert_int_equal(rename(tmp, data), 0);
}

static void test_watch(void **state)
{
	(void)state;
	struct ctx c = { 0 };
	assert_int_equal(loop_new(&c.loop), 0);
	snprintf(c.dir, sizeof(c.dir), "/tmp/molerat-test-watch-XXXXXX");
	assert_non_null(mkdtemp(c.dir));
	in_dir(c.path, sizeof(c.path), c.dir, "conf.toml");
	put(c.dir, "conf.toml", "a = 0\n");

	/* five writes 10 ms apart, debounce 250 ms: one call */
	assert_int_equal(run(&c, c.path, write_in_place), 1);
	assert_int_equal(run(&c, c.path, save_by_rename), 1);
	assert_int_equal(run(&c, c.path, other_file), 0);

	/* conf.toml -> ..data/conf.toml, ..data -> v1 */
	char v1[160], link[160], data[160];
	in_dir(v1, sizeof(v1), c.dir, "v1");
	in_dir(link, sizeof(link), c.dir, "k8s.toml");
	in_dir(data, sizeof(data), c.dir, "..data");
	assert_int_equal(mkdir(v1, 0700), 0);
	put(v1, "conf.toml", "a = 1\n");
	assert_int_equal(symlink("v1", data), 0);
	assert_int_equal(symlink("..data/conf.toml", link), 0);
	assert_int_equal(run(&c, link, swap_data_link), 1);

	/* a directory that does not exist cannot be watched */
	struct watch *w;
	const char *missing = "/nonexistent-molerat-dir/x.toml";
	assert_true(watch_new(c.loop, &missing, 1, 0, on_change, &c, &w) < 0);
	assert_null(w);

	loop_free(c.loop);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", c.dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_watch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
