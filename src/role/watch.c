/* watch: see watch.h. */
#include "role/watch.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "base/log.h"

/* One name that matters in one watched directory. */
struct watch_name {
	int wd;
	char *name;
};

struct watch {
	struct loop *loop;
	int fd;                  /* the inotify descriptor */
	struct io_watcher iw;
	struct timer quiet;      /* fires once the directories are quiet */
	uint64_t first_ms;       /* first event not yet reported (0: none) */
	unsigned debounce_ms;
	watch_cb cb;
	void *arg;
	struct watch_name *names;
	size_t n_names;
};

static bool name_known(const struct watch *w, int wd, const char *name)
{
	for (size_t i = 0; i < w->n_names; i++)
		if (w->names[i].wd == wd && strcmp(w->names[i].name, name) == 0)
			return true;
	return false;
}

static int name_add(struct watch *w, int wd, const char *name, size_t len)
{
	char *n = strndup(name, len);
	if (!n)
		return -ENOMEM;
	if (name_known(w, wd, n)) {
		free(n);
		return 0;
	}
	struct watch_name *nv = realloc(w->names, (w->n_names + 1) * sizeof(*nv));
	if (!nv) {
		free(n);
		return -ENOMEM;
	}
	w->names = nv;
	w->names[w->n_names].wd = wd;
	w->names[w->n_names++].name = n;
	return 0;
}

/* A directory is no longer watched (deleted, moved): its names go. */
static void names_drop_wd(struct watch *w, int wd)
{
	for (size_t i = 0; i < w->n_names;) {
		if (w->names[i].wd == wd) {
			free(w->names[i].name);
			w->names[i] = w->names[--w->n_names];
		} else {
			i++;
		}
	}
}

static void names_drop_all(struct watch *w)
{
	for (size_t i = 0; i < w->n_names; i++)
		free(w->names[i].name);
	free(w->names);
	w->names = NULL;
	w->n_names = 0;
}

/* ---------------------------------------------------------------- the OS seam (inotify) */

static int watch_os_open(void)
{
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* Returns the watch descriptor of dir, or a negative error. */
static int watch_os_add_dir(int fd, const char *dir)
{
	/* every change of an entry: rathole's modify-class events, and
	 * create, delete and close-write too (a file written anew) */
	uint32_t mask = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO |
			IN_CREATE | IN_DELETE | IN_ONLYDIR;
	int wd = inotify_add_watch(fd, dir, mask);
	return wd < 0 ? -errno : wd;
}

/* Drains the pending events. Returns how many concern a known name (0:
 * none), or a negative error. */
static int watch_os_drain(struct watch *w)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	int n = 0;
	for (;;) {
		ssize_t len = read(w->fd, buf, sizeof(buf));
		if (len < 0)
			return errno == EAGAIN || errno == EINTR ? n : -errno;
		if (len == 0)
			return n;
		for (char *p = buf; p < buf + len;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			if (ev->mask & IN_IGNORED)
				names_drop_wd(w, ev->wd);
			else if (ev->len && name_known(w, ev->wd, ev->name))
				n++;
			p += sizeof(*ev) + ev->len;
		}
	}
}

/* ---------------------------------------------------------------- debounce */

static void watch_on_quiet(struct loop *loop, struct timer *t)
{
	struct watch *w = t->data;
	w->first_ms = 0;
	w->cb(w->arg);
}

static void watch_on_events(struct loop *loop, struct io_watcher *iw, unsigned revents)
{
	struct watch *w = iw->data;
	int n = watch_os_drain(w);
	if (n < 0) {
		log_error("config watch: %s; the file is no longer watched (SIGHUP still reloads)",
			  strerror(-n));
		loop_io_stop(loop, &w->iw);
		return;
	}
	if (n == 0)
		return;
	uint64_t now = loop_now(loop);
	if (!w->first_ms)
		w->first_ms = now;
	uint64_t waited = now - w->first_ms;
	uint64_t delay = w->debounce_ms;
	if (waited + delay > WATCH_MAX_DELAY_MS)
		delay = waited >= WATCH_MAX_DELAY_MS ? 0 : WATCH_MAX_DELAY_MS - waited;
	loop_timer_start(loop, &w->quiet, delay);
}

/* ---------------------------------------------------------------- paths */

/* Splits path (absolute: against the working directory) into its
 * directory and its last name. */
static int split_path(const char *path, char *dir, size_t cap, const char **name)
{
	char abs[PATH_MAX];
	if (path[0] == '/') {
		if (strlen(path) >= sizeof(abs))
			return -ENAMETOOLONG;
		strcpy(abs, path);
	} else {
		if (!getcwd(abs, sizeof(abs)))
			return -errno;
		size_t l = strlen(abs);
		if (l + 1 + strlen(path) >= sizeof(abs))
			return -ENAMETOOLONG;
		abs[l] = '/';
		strcpy(abs + l + 1, path);
	}
	const char *slash = strrchr(abs, '/');
	size_t dl = slash == abs ? 1 : (size_t)(slash - abs);
	if (dl >= cap)
		return -ENAMETOOLONG;
	memcpy(dir, abs, dl);
	dir[dl] = '\0';
	*name = path + (strrchr(path, '/') ? (size_t)(strrchr(path, '/') - path) + 1 : 0);
	return 0;
}

/* Watches path's directory for events about its name; a symlink also for
 * the first name of a relative target (a "..data" link swapped by
 * rename). Returns the watch descriptor or a negative error. */
static int watch_one(struct watch *w, const char *path)
{
	char dir[PATH_MAX];
	const char *name = "";
	int r = split_path(path, dir, sizeof(dir), &name);
	int wd = r < 0 ? r : watch_os_add_dir(w->fd, dir);
	if (wd < 0)
		return wd;
	r = name_add(w, wd, name, strlen(name));
	char target[PATH_MAX];
	ssize_t tl = readlink(path, target, sizeof(target) - 1);
	if (r == 0 && tl > 0 && target[0] != '/') {
		target[tl] = '\0';
		r = name_add(w, wd, target, strcspn(target, "/"));
	}
	return r < 0 ? r : wd;
}

int watch_add(struct watch *w, const char *path)
{
	int r = watch_one(w, path);
	if (r < 0) {
		log_error("cannot watch the directory of %s: %s", path, strerror(-r));
		return r;
	}
	/* a symlink's target may live elsewhere: its directory too (best
	 * effort: the link's own directory is watched) */
	char real[PATH_MAX];
	if (realpath(path, real) && strcmp(real, path) != 0)
		watch_one(w, real);
	return 0;
}

int watch_new(struct loop *loop, const char *const *paths, size_t n, unsigned debounce_ms,
	      watch_cb cb, void *arg, struct watch **out)
{
	*out = NULL;
	struct watch *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->loop = loop;
	w->cb = cb;
	w->arg = arg;
	w->debounce_ms = debounce_ms ? debounce_ms : WATCH_DEBOUNCE_MS;
	loop_io_init(&w->iw, watch_on_events, w);
	loop_timer_init(&w->quiet, watch_on_quiet, w);
	w->fd = watch_os_open();
	int r = w->fd < 0 ? w->fd : 0;
	for (size_t i = 0; r == 0 && i < n; i++)
		r = watch_add(w, paths[i]);
	if (r == 0)
		r = loop_io_start(loop, &w->iw, w->fd, LOOP_READ);
	if (r < 0) {
		watch_free(w);
		return r;
	}
	*out = w;
	return 0;
}

void watch_free(struct watch *w)
{
	if (!w)
		return;
	loop_timer_stop(w->loop, &w->quiet);
	if (loop_io_active(&w->iw))
		loop_io_forget(w->loop, &w->iw);
	if (w->fd >= 0)
		close(w->fd);
	names_drop_all(w);
	loop_defer(w->loop, free, w);
}
