/* loop: the event loop. epoll, level-triggered; timers from a min-heap on a
 * monotonic clock cached once per iteration; signals through signalfd; a
 * deferred queue so a callback may close and free its own object.
 *
 * The seam a kqueue backend would replace is loop.c alone: nothing else
 * includes <sys/epoll.h>.
 *
 * Rules every user follows:
 * - Callbacks tolerate spurious wake-ups (a read may return -EAGAIN).
 * - An object that owns watchers or timers is never freed from inside a
 *   callback: stop its watchers and timers, close its fds, then hand the
 *   memory to loop_defer(); it is freed after the current batch of events.
 *   A stopped watcher gets no further events, even ones already fetched in
 *   the same batch (the stale-event guard).
 * - All structs here are embedded in their owner; the loop never allocates
 *   or frees them. */
#ifndef MOLERAT_LOOP_H
#define MOLERAT_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>

struct loop;

enum {
	LOOP_READ = 1u << 0,
	LOOP_WRITE = 1u << 1,
	/* reported only (never requested): error or hang-up on the fd; it is
	 * reported together with LOOP_READ|LOOP_WRITE so a handler that reads
	 * or writes will see the error */
	LOOP_ERROR = 1u << 2,
	/* requested alone: only the peer's end of its sending direction (or
	 * an error) wakes the watcher, never bytes arriving (a socket that
	 * must not be read yet, but whose peer may leave) */
	LOOP_PEER_END = 1u << 3,
};

struct io_watcher;
typedef void (*io_cb)(struct loop *loop, struct io_watcher *w, unsigned revents);

struct io_watcher {
	int fd;             /* -1 when stopped */
	unsigned events;    /* LOOP_READ|LOOP_WRITE currently registered */
	io_cb cb;
	void *data;         /* owner's pointer, untouched by the loop */
};

struct timer;
typedef void (*timer_cb)(struct loop *loop, struct timer *t);

struct timer {
	uint64_t deadline;  /* monotonic us */
	uint64_t seq;       /* FIFO tie-break among equal deadlines */
	size_t heap_idx;    /* position in the heap; SIZE_MAX when not armed */
	timer_cb cb;
	void *data;         /* owner's pointer */
};

struct deferred;
typedef void (*deferred_fn)(void *arg);

int loop_new(struct loop **out);
/* Frees the loop. Watchers and timers still registered are forgotten (their
 * owners must have been freed already or be freed by the caller). Runs the
 * deferred queue first. */
void loop_free(struct loop *loop);

/* Runs until loop_stop(). Returns 0, or -errno if epoll_wait failed. */
int loop_run(struct loop *loop);
void loop_stop(struct loop *loop);

/* The monotonic time in ms (and in us), cached at the start of each
 * iteration. */
uint64_t loop_now(const struct loop *loop);
uint64_t loop_now_us(const struct loop *loop);
/* Refreshes the cached time (after a long piece of work). */
void loop_update_time(struct loop *loop);

/* I/O watchers. init sets fd=-1. start registers fd with events (may be 0:
 * registered but idle); set changes the events; stop unregisters (does not
 * close the fd). All return 0 or -errno. */
void loop_io_init(struct io_watcher *w, io_cb cb, void *data);
int loop_io_start(struct loop *loop, struct io_watcher *w, int fd, unsigned events);
int loop_io_set(struct loop *loop, struct io_watcher *w, unsigned events);
void loop_io_stop(struct loop *loop, struct io_watcher *w);
/* loop_io_stop for an fd the caller closes right away and that no other
 * descriptor refers to (no dup, no fork): the close takes it out of the
 * epoll set, so no epoll_ctl is spent. Events of this batch are dropped as
 * with loop_io_stop. */
void loop_io_forget(struct loop *loop, struct io_watcher *w);
static inline bool loop_io_active(const struct io_watcher *w) { return w->fd >= 0; }

/* Timers (one-shot; re-arm from the callback for periodic work). _us for
 * sub-millisecond delays (precise on Linux 5.11+, else rounded up to 1 ms). */
void loop_timer_init(struct timer *t, timer_cb cb, void *data);
void loop_timer_start(struct loop *loop, struct timer *t, uint64_t delay_ms);
void loop_timer_start_us(struct loop *loop, struct timer *t, uint64_t delay_us);
void loop_timer_stop(struct loop *loop, struct timer *t);
static inline bool loop_timer_active(const struct timer *t) { return t->heap_idx != (size_t)-1; }

/* Runs fn(arg) after the current batch of events (or at the next iteration
 * when called outside a callback). Used to free objects safely. Never fails
 * (aborts on out-of-memory, like every tiny bookkeeping allocation here). */
void loop_defer(struct loop *loop, deferred_fn fn, void *arg);

/* Signals: blocks the given signals for the process and delivers them
 * through a signalfd to cb(loop, signo, data). One handler per loop. */
typedef void (*signal_cb)(struct loop *loop, int signo, void *data);
int loop_signals(struct loop *loop, const int *signos, size_t n, signal_cb cb, void *data);

#endif
