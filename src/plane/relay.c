/* relay: the data plane. See relay.h for the contract and
 * docs/internals/relay.md for the design.
 *
 * Shape: a relay has two sides (an xport and one io_watcher each, since a
 * side's fd serves both directions) and two directions (dir[0]: side 0 ->
 * side 1, dir[1]: side 1 -> side 0). relay_pump() moves one direction and is
 * called for either with src and dst swapped. Each direction waits on
 * exactly one thing at a time (its state says which); the interest
 * registered for a side's fd is the OR of what the two directions wait for
 * on it, and a side with no interest is taken out of epoll altogether (a
 * level-triggered EPOLLHUP/EPOLLERR cannot be masked and would spin).
 *
 * Bytes move by splice(2) through a pipe when both ends expose splice_fd,
 * otherwise through read/write with a per-direction buffer. Either way a
 * direction reads only when it holds nothing, so what it holds is bounded by
 * one pipe or one buffer and backpressure is automatic. */
#include "plane/relay.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "base/log.h"
#include "base/util.h"

enum {
	/* bytes per direction per wake-up: a fast pair cannot starve the rest */
	RELAY_BUDGET = 256 * 1024,
	/* copy path: one read's worth; also the most a copy direction holds */
	RELAY_BUFSZ = 64 * 1024,
	/* requested pipe size (F_SETPIPE_SZ); the default 64 KiB when refused */
	RELAY_PIPE_SIZE = 256 * 1024,
	/* sanity bound on pipe_pool_new(max_idle) */
	RELAY_POOL_MAX_IDLE = 65536,
	/* running relays that make a later descent worth a heap trim */
	RELAY_TRIM_PEAK = 256,
	/* splice pays off for bulk, copying for small messages: a direction
	 * that may splice starts by copying, switches to splice after a read
	 * that fills the whole copy buffer, and back after a splice read
	 * smaller than this */
	RELAY_SMALL_READ = 4096,
	RELAY_LABEL_MAX = 128,
};

#define RELAY_SPLICE_FLAGS (SPLICE_F_NONBLOCK | SPLICE_F_MOVE)

/* ---- counters ---- */

struct relay_counters *relay_counters_new(void)
{
	struct relay_counters *c = calloc(1, sizeof(*c));
	if (c)
		c->refs = 1;
	return c;
}

struct relay_counters *relay_counters_ref(struct relay_counters *c)
{
	if (c)
		c->refs++;
	return c;
}

void relay_counters_unref(struct relay_counters *c)
{
	if (c && --c->refs == 0)
		free(c);
}

/* ---- the pipe pool ---- */

struct relay_pipe {
	int rd, wr;          /* both -1 when no pipe is held */
};

struct pipe_pool {
	unsigned max_idle;
	unsigned n_idle;     /* empty pipes kept for reuse, in idle[] */
	unsigned in_use;     /* pipes lent to relays */
	struct relay_pipe idle[];
};

struct pipe_pool *pipe_pool_new(unsigned max_idle)
{
	if (max_idle > RELAY_POOL_MAX_IDLE)
		max_idle = RELAY_POOL_MAX_IDLE;
	struct pipe_pool *p = calloc(1, sizeof(*p) + (size_t)max_idle * sizeof(p->idle[0]));
	if (p)
		p->max_idle = max_idle;
	return p;
}

void pipe_pool_free(struct pipe_pool *p)
{
	if (!p)
		return;
	if (p->in_use)
		log_warn("relay: pipe pool freed with %u pipes still lent to relays", p->in_use);
	for (unsigned i = 0; i < p->n_idle; i++) {
		close(p->idle[i].rd);
		close(p->idle[i].wr);
	}
	free(p);
}

unsigned pipe_pool_in_use(const struct pipe_pool *p)
{
	return p ? p->in_use : 0;
}

/* Lends an empty pipe: a kept one, or a new one (non-blocking, cloexec,
 * enlarged to RELAY_PIPE_SIZE when the kernel allows). Returns 0 or -errno
 * (-EMFILE/-ENFILE when out of descriptors). */
static int pipe_pool_get(struct pipe_pool *p, struct relay_pipe *out)
{
	if (p->n_idle) {
		*out = p->idle[--p->n_idle];
	} else {
		int fds[2];
		if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0)
			return -errno;
		/* fails beyond /proc/sys/fs/pipe-max-size or the per-user pipe
		 * quota; the default size works, only with more syscalls */
		(void)fcntl(fds[1], F_SETPIPE_SZ, RELAY_PIPE_SIZE);
		out->rd = fds[0];
		out->wr = fds[1];
	}
	p->in_use++;
	return 0;
}

/* Takes a pipe back. A pipe that still holds bytes (a relay torn down with
 * data in flight) is closed, never reused. */
static void pipe_pool_put(struct pipe_pool *p, struct relay_pipe *pp, bool empty)
{
	if (pp->rd < 0)
		return;
	p->in_use--;
	if (empty && p->n_idle < p->max_idle) {
		p->idle[p->n_idle++] = *pp;
	} else {
		close(pp->rd);
		close(pp->wr);
	}
	pp->rd = pp->wr = -1;
}

/* ---- the relay ---- */

/* What one direction is doing; each state waits on exactly one fd. */
enum relay_dir_state {
	RDIR_READING = 0, /* holds nothing; waits for src (readable, or pending bytes) */
	RDIR_WRITING,     /* holds bytes dst has not taken yet; waits for dst */
	RDIR_SHUTTING,    /* src ended, all written; shutdown_wr(dst) said -EAGAIN; waits for dst */
	RDIR_DONE,        /* dst shut for writing: nothing more happens here */
};

enum relay_state {
	RELAY_RUNNING = 0,
	RELAY_CLOSED,     /* ended: fds closed, done() called, memory deferred */
};

struct relay_dir {
	enum relay_dir_state state;
	bool rd_eof;             /* src reported end of stream */
	bool wr_shut;            /* dst was shut for writing */
	bool can_splice;         /* both ends take splice (false for good after EINVAL) */
	bool use_splice;         /* the next read goes through the pipe; false: copy */
	bool held_on_stack;      /* data points into the pump's scratch buffer */
	unsigned want;           /* events awaited: on src when READING, on dst otherwise */
	/* splice path: the borrowed pipe and the bytes in it; the pipe is held
	 * only while pipe_len > 0 (and inside a pump) */
	struct relay_pipe pipe;
	size_t pipe_len;
	/* copy path: bytes read and not yet written (data, len) live in buf,
	 * or during a pump in the caller's scratch buffer */
	unsigned char *buf;      /* heap, buf_cap bytes; NULL when idle */
	size_t buf_cap;
	const unsigned char *data;
	size_t len;
};

struct relay_side {
	struct io_watcher w;
	struct xport *x;
};

struct relay {
	struct list_link link;       /* in set->relays */
	struct relay_set *set;
	struct loop *loop;
	struct pipe_pool *pipes;
	struct relay_counters *counters;
	relay_done_cb done;
	void *arg;
	enum relay_state state;
	bool in_timer;               /* inside on_resume: re-arm with 1 ms, not 0 */
	struct relay_side side[2];
	struct relay_dir dir[2];     /* dir[d] moves side[d] -> side[!d] */
	struct timer resume;         /* resumes reading when a src holds pending bytes */
	struct timer half;           /* one direction done: the other's inactivity bound */
	uint64_t half_close_ms;      /* relay_cfg.half_close_ms */
	uint64_t half_seen;          /* bytes[0] + bytes[1] when half was armed */
	uint64_t bytes[2];           /* bytes written to dst, per direction */
	char label[];
};

static size_t dir_held(const struct relay_dir *dir)
{
	return dir->pipe_len + dir->len;
}

static void count_buffered(struct relay *r, size_t n, bool add)
{
	if (!r->counters)
		return;
	if (add)
		r->counters->bytes_buffered += n;
	else
		r->counters->bytes_buffered -= n;
}

/* The copy buffer of a direction, allocated on demand (RELAY_BUFSZ, or more
 * to take a pipe's contents). Returns 0 or -ENOMEM. */
static int dir_buf_reserve(struct relay_dir *dir, size_t need)
{
	if (dir->buf && dir->buf_cap >= need)
		return 0;
	size_t cap = need > RELAY_BUFSZ ? need : RELAY_BUFSZ;
	unsigned char *b = malloc(cap);
	if (!b)
		return -ENOMEM;
	free(dir->buf);
	dir->buf = b;
	dir->buf_cap = cap;
	return 0;
}

static void dir_buf_release(struct relay_dir *dir)
{
	free(dir->buf);
	dir->buf = NULL;
	dir->buf_cap = 0;
}

/* ---- copy path ---- */

/* Reads from src into buf (or the scratch buffer). Returns bytes, 0 at end
 * of stream, -EAGAIN (dir->want set) or an error; with bytes, *drained says
 * whether the read emptied a plain socket (see relay_pump). */
static ssize_t copy_fill(struct relay_dir *dir, struct xport *src, unsigned char *scratch,
			 bool *drained)
{
	unsigned char *p;
	size_t cap;
	if (dir->buf) {
		p = dir->buf;
		cap = dir->buf_cap;
	} else if (scratch) {
		p = scratch;
		cap = RELAY_BUFSZ;
	} else {
		if (dir_buf_reserve(dir, RELAY_BUFSZ) < 0)
			return -ENOMEM;
		p = dir->buf;
		cap = dir->buf_cap;
	}
	ssize_t n = xport_read(src, p, cap);
	if (n > 0) {
		dir->data = p;
		dir->len = (size_t)n;
		dir->held_on_stack = p == scratch;
		/* only a plain socket's short read counts: a transport may
		 * hold an end of stream or more records inside */
		*drained = (size_t)n < cap && xport_short_read_empty(src) && xport_pending(src) == 0;
	} else if (n == -EAGAIN) {
		dir->want = xport_want(src);
		/* idle: give the memory back */
		dir_buf_release(dir);
	}
	return n;
}

/* Writes held bytes to dst. Returns bytes written, -EAGAIN (dir->want set)
 * or an error. */
static ssize_t copy_flush(struct relay_dir *dir, struct xport *dst)
{
	ssize_t n = xport_write(dst, dir->data, dir->len);
	if (n > 0) {
		dir->data += n;
		dir->len -= (size_t)n;
	} else if (n == -EAGAIN) {
		dir->want = xport_want(dst);
	} else if (n == 0) {
		n = -EIO; /* xport contract: never 0 for len > 0 */
	}
	return n;
}

/* ---- splice path ---- */

/* After a failed splice(2) of dir (errno set), for both ends: -EINTR (call
 * again), -EAGAIN with dir->want set to want, -ENOSYS when the kernel will
 * not splice this fd (EINVAL, ENOSYS: logged; the caller copies instead),
 * else -errno. way ("from" / "to") and fd are for the log line. */
static int splice_failed(struct relay *r, struct relay_dir *dir, unsigned want, const char *way, int fd)
{
	int e = errno;
	if (e == EINTR)
		return -EINTR;
	if (e == EAGAIN) {
		dir->want = want;
		return -EAGAIN;
	}
	if (e == EINVAL || e == ENOSYS) {
		log_debug("relay %s: splice %s fd %d: %s: copying instead", r->label, way, fd, strerror(e));
		return -ENOSYS;
	}
	return -e;
}

static ssize_t splice_fill(struct relay *r, struct relay_dir *dir, struct xport *src,
			   unsigned char *scratch, bool *drained)
{
	if (dir->pipe.rd < 0) {
		int rc = pipe_pool_get(r->pipes, &dir->pipe);
		if (rc < 0) {
			log_debug("relay %s: no pipe (%s): copying instead of splicing",
				  r->label, mr_strerror(rc));
			dir->use_splice = dir->can_splice = false;
			return copy_fill(dir, src, scratch, drained);
		}
	}
	for (;;) {
		/* the pipe is empty here, so EAGAIN can only mean "src has
		 * nothing" (with data in the pipe it could also mean "pipe
		 * full": the ambiguity haproxy's raw_sock_to_pipe notes) */
		ssize_t n = splice(src->splice_fd, NULL, dir->pipe.wr, NULL, RELAY_PIPE_SIZE,
				   RELAY_SPLICE_FLAGS);
		if (n >= 0) {
			/* a short splice read says nothing about the socket
			 * (the pipe's slots may run out first) */
			*drained = false;
			dir->pipe_len = (size_t)n;
			return n;
		}
		int e = splice_failed(r, dir, LOOP_READ, "from", src->splice_fd);
		if (e == -EINTR)
			continue;
		if (e == -ENOSYS) {
			dir->use_splice = dir->can_splice = false;
			return copy_fill(dir, src, scratch, drained);
		}
		return e;
	}
}

/* splice to dst is refused: move the pipe's contents into the copy buffer
 * and go on copying. Returns 0 or a negative error. */
static int splice_to_copy(struct relay *r, struct relay_dir *dir)
{
	if (dir_buf_reserve(dir, dir->pipe_len) < 0)
		return -ENOMEM;
	size_t got = 0;
	while (got < dir->pipe_len) {
		ssize_t n = read(dir->pipe.rd, dir->buf + got, dir->pipe_len - got);
		if (n > 0)
			got += (size_t)n;
		else if (n < 0 && errno == EINTR)
			continue;
		else
			return n < 0 ? -errno : -EIO;
	}
	dir->data = dir->buf;
	dir->len = got;
	dir->held_on_stack = false;
	dir->pipe_len = 0;
	pipe_pool_put(r->pipes, &dir->pipe, true);
	dir->use_splice = dir->can_splice = false;
	return 0;
}

static ssize_t splice_flush(struct relay *r, struct relay_dir *dir, struct xport *dst)
{
	for (;;) {
		ssize_t n = splice(dir->pipe.rd, NULL, dst->splice_fd, NULL, dir->pipe_len,
				   RELAY_SPLICE_FLAGS);
		if (n > 0) {
			dir->pipe_len -= (size_t)n;
			return n;
		}
		if (n == 0)
			return -EIO; /* cannot happen with bytes in the pipe */
		int e = splice_failed(r, dir, LOOP_WRITE, "to", dst->splice_fd);
		if (e == -EINTR)
			continue;
		if (e == -ENOSYS) {
			int rc = splice_to_copy(r, dir);
			if (rc < 0)
				return rc;
			return copy_flush(dir, dst);
		}
		return e;
	}
}

/* ---- the pump ---- */

/* Called when a pump returns: nothing may point into the scratch buffer any
 * more, and an empty pipe goes back to the pool (idle relays hold none).
 * Returns 0 or -ENOMEM. */
static int dir_settle(struct relay *r, struct relay_dir *dir)
{
	if (dir->len && dir->held_on_stack) {
		/* dst did not take it all: the rest moves to the heap, which
		 * only relays under backpressure pay for */
		if (dir_buf_reserve(dir, dir->len) < 0)
			return -ENOMEM;
		memcpy(dir->buf, dir->data, dir->len);
		dir->data = dir->buf;
		dir->held_on_stack = false;
	}
	if (dir->pipe.rd >= 0 && dir->pipe_len == 0)
		pipe_pool_put(r->pipes, &dir->pipe, true);
	if (dir->state == RDIR_DONE)
		dir_buf_release(dir);
	return 0;
}

/* Moves bytes of direction d (side[d] -> side[!d]) until the source has
 * nothing, the destination takes nothing more, or RELAY_BUDGET bytes were
 * read. A direction reads only when it holds nothing, so it never holds more
 * than one read's worth (backpressure). On return dir->state and dir->want
 * say what the direction waits for. scratch (RELAY_BUFSZ bytes, may be NULL)
 * spares the copy path a heap buffer when dst takes everything at once.
 * Returns 0, or a negative error that must end the relay. */
static int relay_pump(struct relay *r, int d, unsigned char *scratch)
{
	struct relay_dir *dir = &r->dir[d];
	struct xport *src = r->side[d].x;
	struct xport *dst = r->side[!d].x;
	size_t budget = RELAY_BUDGET;
	ssize_t n;
	int rc = 0;
	/* the last read took less than it asked from a plain socket; it holds
	 * only within this pump (after a wait for dst, src is read again) */
	bool drained = false;

	for (;;) {
		switch (dir->state) {
		case RDIR_READING:
			if (budget == 0) {
				/* more may be waiting: level-triggered epoll (or the
				 * resume timer, for pending bytes) comes back */
				dir->want = LOOP_READ;
				goto out;
			}
			n = dir->use_splice ? splice_fill(r, dir, src, scratch, &drained)
					    : copy_fill(dir, src, scratch, &drained);
			if (n == -EAGAIN)
				goto out;
			if (n < 0) {
				rc = (int)n;
				goto out;
			}
			if (n == 0) {
				dir->rd_eof = true;
				dir->state = RDIR_SHUTTING;
				break;
			}
			count_buffered(r, (size_t)n, true);
			budget = (size_t)n >= budget ? 0 : budget - (size_t)n;
			if (dir->can_splice)
				dir->use_splice = dir->use_splice ? (size_t)n >= RELAY_SMALL_READ
								  : (size_t)n >= RELAY_BUFSZ;
			dir->state = RDIR_WRITING;
			break;

		case RDIR_WRITING:
			n = dir->pipe_len ? splice_flush(r, dir, dst) : copy_flush(dir, dst);
			if (n == -EAGAIN)
				goto out;
			if (n < 0) {
				rc = (int)n;
				goto out;
			}
			count_buffered(r, (size_t)n, false);
			r->bytes[d] += (uint64_t)n;
			if (r->counters)
				r->counters->bytes[d] += (uint64_t)n;
			if (dir_held(dir)) {
				/* a short write on a plain socket means its send
				 * buffer is full: wait instead of an EAGAIN syscall */
				if (xport_short_write_full(dst)) {
					dir->want = LOOP_WRITE;
					goto out;
				}
				break;
			}
			dir->state = dir->rd_eof ? RDIR_SHUTTING : RDIR_READING;
			if (dir->state == RDIR_READING && drained) {
				/* a read that took less than it asked for found
				 * the receive queue empty (recv copies what is
				 * queued; what the socket's backlog or an urgent
				 * mark held back makes the fd readable again): the
				 * next read would most likely say EAGAIN, so leave
				 * it to the loop, whose level-triggered epoll
				 * reports whatever is there, an end of stream too */
				dir->want = LOOP_READ;
				goto out;
			}
			break;

		case RDIR_SHUTTING:
			rc = xport_shutdown_wr(dst);
			if (rc == -EAGAIN) {
				rc = 0;
				dir->want = xport_want(dst);
				goto out;
			}
			if (rc < 0)
				goto out;
			dir->wr_shut = true;
			dir->state = RDIR_DONE;
			break;

		case RDIR_DONE:
			goto out;
		}
	}
out:
	if (dir->want == 0) /* a transport that names nothing: assume the obvious */
		dir->want = dir->state == RDIR_READING ? LOOP_READ : LOOP_WRITE;
	int rc2 = dir_settle(r, dir);
	return rc < 0 ? rc : rc2;
}

/* The copy path reads into a stack buffer so that a relay whose dst keeps
 * up never holds heap memory (a splicing direction may switch to copying
 * within a pump, so it gets one too). */
static int relay_pump_dir(struct relay *r, int d)
{
	unsigned char scratch[RELAY_BUFSZ];
	return relay_pump(r, d, scratch);
}

/* ---- registration, start, end ---- */

/* The side whose fd direction d waits on, or -1. */
static int dir_wait_side(const struct relay_dir *dir, int d)
{
	switch (dir->state) {
	case RDIR_READING: return d;
	case RDIR_WRITING:
	case RDIR_SHUTTING: return !d;
	case RDIR_DONE: break;
	}
	return -1;
}

static int side_watch(struct relay *r, int s, unsigned ev)
{
	struct io_watcher *w = &r->side[s].w;
	if (!loop_io_active(w))
		return ev ? loop_io_start(r->loop, w, r->side[s].x->fd, ev) : 0;
	if (!ev) {
		/* out of epoll: HUP/ERR would be reported even with no events */
		loop_io_stop(r->loop, w);
		return 0;
	}
	return loop_io_set(r->loop, w, ev); /* no syscall when unchanged */
}

/* Registers what the directions wait for; arms the resume timer when a
 * direction that wants to read has bytes pending inside its source (they
 * would never make the fd readable). Returns 0 or -errno. */
static int relay_arm(struct relay *r)
{
	unsigned ev[2] = { 0, 0 };
	bool resume = false;
	for (int d = 0; d < 2; d++) {
		const struct relay_dir *dir = &r->dir[d];
		int s = dir_wait_side(dir, d);
		if (s < 0)
			continue;
		ev[s] |= dir->want;
		if (dir->state == RDIR_READING && xport_pending(r->side[d].x) > 0)
			resume = true;
	}
	for (int s = 0; s < 2; s++) {
		int rc = side_watch(r, s, ev[s]);
		if (rc < 0)
			return rc;
	}
	if (resume && !loop_timer_active(&r->resume))
		loop_timer_start(r->loop, &r->resume, r->in_timer ? 1 : 0);
	return 0;
}

static void relay_free(void *arg)
{
	free(arg);
}

/* The only way a started relay ends: stop watching, give the pipes back,
 * close both ends, report, and free later. */
/* After a burst of connections has mostly ended, the memory it freed goes
 * back to the system: glibc returns only the top of its heap, and a live
 * chunk there (the loop's timer array, say) holds the megabytes freed below
 * it. Once, when the running relays fall to a quarter of a peak of at
 * least RELAY_TRIM_PEAK (bench/run's memory scenario: 7.6 -> 3.8 MiB after
 * 8,000 connections). */
static void trim_after_peak(struct relay_set *set)
{
	if (set->peak < RELAY_TRIM_PEAK || set->relays.n > set->peak / 4)
		return;
	set->peak = set->relays.n;
	mr_trim_heap();
}

static void relay_end(struct relay *r, int err)
{
	if (r->state == RELAY_CLOSED)
		return;
	r->state = RELAY_CLOSED;
	for (int s = 0; s < 2; s++)
		loop_io_forget(r->loop, &r->side[s].w);  /* both are closed below */
	loop_timer_stop(r->loop, &r->resume);
	loop_timer_stop(r->loop, &r->half);
	for (int d = 0; d < 2; d++) {
		struct relay_dir *dir = &r->dir[d];
		count_buffered(r, dir_held(dir), false);
		if (dir->pipe.rd >= 0)
			pipe_pool_put(r->pipes, &dir->pipe, dir->pipe_len == 0);
		dir->pipe_len = 0;
		dir->len = 0;
		dir_buf_release(dir);
	}
	for (int s = 0; s < 2; s++) {
		xport_close(r->side[s].x);
		r->side[s].x = NULL;
	}
	if (err < 0)
		log_debug("relay %s: ended: %s (%llu bytes a->b, %llu bytes b->a)", r->label,
			  mr_strerror(err), (unsigned long long)r->bytes[0],
			  (unsigned long long)r->bytes[1]);
	else
		log_debug("relay %s: ended (%llu bytes a->b, %llu bytes b->a)", r->label,
			  (unsigned long long)r->bytes[0], (unsigned long long)r->bytes[1]);
	if (r->counters)
		r->counters->relays_active--;
	if (r->set) {
		list_remove(&r->set->relays, &r->link);
		trim_after_peak(r->set);
		r->set = NULL;
	}
	if (r->done)
		r->done(r->arg, err, r->bytes);
	relay_counters_unref(r->counters);
	r->counters = NULL;
	loop_defer(r->loop, relay_free, r);
}

/* After pumping: end when both directions are done, else re-register. */
/* The half-close bound (relay_cfg.half_close_ms) ran out: if the open
 * direction moved nothing since it was armed, both end; else it waits
 * another period. */
static void relay_on_half(struct loop *loop, struct timer *t)
{
	struct relay *r = t->data;
	uint64_t seen = r->bytes[0] + r->bytes[1];
	if (seen != r->half_seen) {
		r->half_seen = seen;
		loop_timer_start(loop, &r->half, r->half_close_ms);
		return;
	}
	log_debug("relay %s: one direction ended %llu ms ago and the other moved nothing since; closing both",
		  r->label, (unsigned long long)r->half_close_ms);
	relay_end(r, -ETIMEDOUT);
}

static void relay_after(struct relay *r)
{
	if (r->dir[0].state == RDIR_DONE && r->dir[1].state == RDIR_DONE) {
		relay_end(r, 0);
		return;
	}
	if (r->half_close_ms && (r->dir[0].state == RDIR_DONE || r->dir[1].state == RDIR_DONE) &&
	    !loop_timer_active(&r->half)) {
		r->half_seen = r->bytes[0] + r->bytes[1];
		loop_timer_start(r->loop, &r->half, r->half_close_ms);
	}
	int rc = relay_arm(r);
	if (rc < 0) {
		log_warn("relay %s: cannot watch its sockets: %s", r->label, mr_strerror(rc));
		relay_end(r, rc);
	}
}

/* Pumps each direction for which ready(r, d, side, revents) holds, asked
 * afresh before each (a pump may change the other direction). Returns
 * false when a pump failed and the relay ended (r is gone). */
static bool pump_ready_dirs(struct relay *r, bool (*ready)(struct relay *r, int d, int side, unsigned revents),
			    int side, unsigned revents)
{
	for (int d = 0; d < 2; d++) {
		if (!ready(r, d, side, revents))
			continue;
		int rc = relay_pump_dir(r, d);
		if (rc < 0) {
			relay_end(r, rc);
			return false;
		}
	}
	return true;
}

/* only the directions waiting on this fd for what it reported: no syscall
 * is spent on a direction that cannot progress */
static bool ready_on_io(struct relay *r, int d, int side, unsigned revents)
{
	struct relay_dir *dir = &r->dir[d];
	return dir_wait_side(dir, d) == side && (revents & dir->want);
}

/* the reading directions whose transport holds bytes */
static bool ready_pending(struct relay *r, int d, int side, unsigned revents)
{
	return r->dir[d].state == RDIR_READING && xport_pending(r->side[d].x) != 0;
}

static void relay_on_io(struct loop *loop, struct io_watcher *w, unsigned revents)
{
	struct relay *r = w->data;
	if (pump_ready_dirs(r, ready_on_io, w == &r->side[1].w, revents))
		relay_after(r);
}

static void relay_on_resume(struct loop *loop, struct timer *t)
{
	struct relay *r = t->data;
	r->in_timer = true;
	if (!pump_ready_dirs(r, ready_pending, 0, 0))
		return;
	relay_after(r);
	r->in_timer = false;
}

int relay_start(const struct relay_cfg *cfg, struct xport *a, struct xport *b)
{
	size_t llen = cfg->label ? strnlen(cfg->label, RELAY_LABEL_MAX) : 0;
	struct relay *r = calloc(1, sizeof(*r) + llen + 1);
	if (!r) {
		xport_close(a);
		xport_close(b);
		return -ENOMEM;
	}
	if (llen)
		memcpy(r->label, cfg->label, llen);
	r->label[llen] = '\0';
	r->loop = cfg->loop;
	r->pipes = cfg->pipes;
	r->done = cfg->done;
	r->arg = cfg->arg;
	r->state = RELAY_RUNNING;
	r->side[0].x = a;
	r->side[1].x = b;
	bool splice_ok = cfg->mode == RELAY_AUTO && cfg->pipes && a->splice_fd >= 0 &&
			 b->splice_fd >= 0;
	for (int d = 0; d < 2; d++) {
		struct relay_dir *dir = &r->dir[d];
		dir->state = RDIR_READING;
		dir->want = LOOP_READ;
		dir->can_splice = splice_ok;
		dir->use_splice = false;   /* copy until a read fills the buffer */
		dir->pipe.rd = dir->pipe.wr = -1;
		loop_io_init(&r->side[d].w, relay_on_io, r);
	}
	loop_timer_init(&r->resume, relay_on_resume, r);
	loop_timer_init(&r->half, relay_on_half, r);
	r->half_close_ms = cfg->half_close_ms;

	int rc = relay_arm(r);
	if (rc < 0) {
		log_warn("relay %s: cannot watch fds %d and %d: %s", r->label, a->fd, b->fd,
			 mr_strerror(rc));
		for (int s = 0; s < 2; s++)
			loop_io_stop(r->loop, &r->side[s].w);
		loop_timer_stop(r->loop, &r->resume);
		xport_close(a);
		xport_close(b);
		free(r);
		return rc;
	}
	if (cfg->set) {
		r->set = cfg->set;
		list_push_front(&cfg->set->relays, &r->link);
		if (cfg->set->relays.n > cfg->set->peak)
			cfg->set->peak = cfg->set->relays.n;
	}
	r->counters = relay_counters_ref(cfg->counters);
	if (r->counters) {
		r->counters->relays_total++;
		r->counters->relays_active++;
	}
	log_debug("relay %s: started (fds %d <-> %d, %s)", r->label, a->fd, b->fd,
		  splice_ok ? "copy, splice for bulk" : "copy");
	/* The first bytes are often waiting already (a visitor's request on
	 * the server; on the client, what followed StartForwardTcp): moving
	 * them now saves a loop iteration before the next process gets them
	 * (new-connection p50: 9% lower in one A/B series of 3 x 2,000
	 * connections, within the noise in another). */
	for (int d = 0; d < 2; d++) {
		if (cfg->idle_at_start & (d == 0 ? RELAY_SIDE_A : RELAY_SIDE_B))
			continue;
		rc = relay_pump_dir(r, d);
		if (rc < 0) {
			relay_end(r, rc);
			return 0;
		}
	}
	relay_after(r);
	return 0;
}

void relay_set_close_all(struct relay_set *set)
{
	while (list_first(&set->relays))
		relay_end(list_first_entry(&set->relays, struct relay, link), MR_ECLOSED);
}

size_t relay_set_close_counted(struct relay_set *set, const struct relay_counters *c)
{
	size_t n = 0;
	struct relay *r = list_first_entry(&set->relays, struct relay, link);
	while (r) {
		struct relay *next = list_next_entry(r, struct relay, link);
		if (r->counters == c) {
			relay_end(r, MR_ECLOSED);
			n++;
		}
		r = next;
	}
	return n;
}
