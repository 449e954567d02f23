/* watch: tells when files may have changed, for hot reload
 * (protocol.md#p-reload-watch). Each file's parent directory is watched
 * (inotify, not recursive), never the file itself, so a save by rename, a
 * symlink swapped by rename (ln -sfn + mv, a Kubernetes ConfigMap's
 * "..data" link) and a file deleted and written again are all seen. A burst
 * of events becomes one call: the callback runs once the directories have
 * been quiet for the debounce delay (and at most every WATCH_MAX_DELAY_MS
 * while events keep coming).
 *
 * The callback is told only that something in a watched directory changed:
 * the caller compares the contents it cares about.
 *
 * The inotify calls are watch_os_* in watch.c: a kqueue port replaces those
 * three functions.
 *
 * Ownership: the caller owns the struct watch (watch_free); paths are
 * copied. */
#ifndef MOLERAT_WATCH_H
#define MOLERAT_WATCH_H

#include <stddef.h>

#include "base/loop.h"

enum {
	WATCH_DEBOUNCE_MS = 200,   /* quiet time after the last event */
	WATCH_MAX_DELAY_MS = 2000, /* a directory that never goes quiet */
};

struct watch;
typedef void (*watch_cb)(void *arg);

/* Watches the parent directories of paths[0..n) (relative paths are taken
 * against the working directory; a symlink's own directory and its
 * target's are both watched). debounce_ms 0 means WATCH_DEBOUNCE_MS.
 * Returns 0, or a negative error (no inotify, a directory that cannot be
 * watched) after which *out is NULL. */
int watch_new(struct loop *loop, const char *const *paths, size_t n, unsigned debounce_ms,
	      watch_cb cb, void *arg, struct watch **out);
/* Adds the parent directory of one more path (already watched: nothing).
 * Returns 0 or a negative error. */
int watch_add(struct watch *w, const char *path);
void watch_free(struct watch *w);

#endif
