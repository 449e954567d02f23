/* relay: the data plane. Moves bytes both ways between two xports until
 * both directions are done, then closes both and reports.
 *
 * One function (relay_pump, in relay.c) serves both directions with src and
 * dst swapped. When both ends expose splice_fd and the mode is not forced to
 * copy, bytes move with splice(2) through a pipe borrowed from the shared
 * pipe pool only while data is in flight (idle relays hold no pipe);
 * otherwise through one bounded buffer per direction.
 *
 * Semantics: backpressure (a side is not read while its destination cannot
 * take more); half-close per direction (EOF from src -> drain -> shutdown_wr
 * on dst; the other direction goes on); any read or write error tears down
 * both ends at once; at most RELAY_BUDGET bytes per direction per wake-up.
 *
 * Ownership: relay_start takes both xports (also on failure, when it closes
 * them). The relay frees itself after calling done().
 *
 * The process must ignore SIGPIPE: splice(2) into a socket whose peer is
 * gone raises it (splice has no MSG_NOSIGNAL). */
#ifndef MOLERAT_RELAY_H
#define MOLERAT_RELAY_H

#include <stdbool.h>
#include <stdint.h>

#include "base/list.h"
#include "base/loop.h"
#include "xport/xport.h"

struct relay;
struct pipe_pool;

enum relay_mode {
	RELAY_AUTO = 0,  /* splice when both ends allow it */
	RELAY_COPY,      /* always the buffered path (MOLERAT_RELAY=copy) */
};

/* Why a UDP datagram was dropped (the label of
 * molerat_udp_drops_total{reason}, docs/admin.md). */
enum udp_drop_reason {
	UDP_DROP_QUEUE_FULL = 0, /* "queue_full": a queue towards the data channel or
				  * a mapping (waiting for local_addr) is full */
	UDP_DROP_TOO_LARGE,      /* "too_large": over 65,507 bytes */
	UDP_DROP_SEND_FAILED,    /* "send_failed": sendto / sendmmsg failed */
	UDP_DROP_UNREACHABLE,    /* "unreachable": no way to the address (family,
				  * local_addr unresolvable, its mapping ended) */
	UDP_DROP_LIMIT,          /* "limit": too many mappings, out of memory */
	UDP_DROP_N,
};

/* Shared counters of one service's data plane: the relays' bytes and the
 * UDP forwarders' datagrams, read by a scrape of the admin endpoint
 * (role/metrics.h). Plain integers, written where the work happens (one
 * loop: no atomics). Reference-counted because relays and forwarders
 * outlive the service that started them (reload, replacement). */
struct relay_counters {
	unsigned refs;
	uint64_t bytes[2];      /* [0]: a -> b, [1]: b -> a (UDP: [0] visitor ->
				 * service, [1] back) */
	uint64_t relays_total;
	uint64_t relays_active;
	/* gauge: bytes read from one side and not yet written to the other
	 * (in pipes and copy buffers) by the relays using these counters;
	 * bounded by about 2 * (pipe size or copy buffer) per relay */
	uint64_t bytes_buffered;
	/* UDP: [0] visitor -> service, [1] service -> visitor */
	uint64_t udp_datagrams[2];
	uint64_t udp_drops[UDP_DROP_N];
	uint64_t udp_mappings_total;   /* client: visitor mappings ever made */
	uint64_t udp_mappings_active;  /* client: gauge */
};
struct relay_counters *relay_counters_new(void);
struct relay_counters *relay_counters_ref(struct relay_counters *c);
void relay_counters_unref(struct relay_counters *c);

/* The pool of pipe pairs used by splice relays. One per loop. max_idle pipes
 * are kept for reuse; the rest are closed when returned. */
struct pipe_pool *pipe_pool_new(unsigned max_idle);
void pipe_pool_free(struct pipe_pool *p);
unsigned pipe_pool_in_use(const struct pipe_pool *p);

/* The relays of one process, so shutdown can end those still running
 * (protocol.md#p-reload-apply lets them run across a reload; at exit they are closed).
 * Zero-initialise and embed it; relays link themselves in and out. */
struct relay_set {
	struct list relays;   /* of struct relay, newest first; relays.n running */
	size_t peak;          /* most running since the heap was last trimmed */
};
/* Ends every relay in the set at once (both ends closed, done() called
 * with MR_ECLOSED). Their memory is freed by the loop's deferred queue. */
void relay_set_close_all(struct relay_set *set);
/* Ends the relays in the set that count into c (one service's relays, kept
 * past a reload for a grace period: protocol.md#p-reload-apply), as
 * relay_set_close_all does. Returns how many were ended. */
size_t relay_set_close_counted(struct relay_set *set, const struct relay_counters *c);

typedef void (*relay_done_cb)(void *arg, int err, const uint64_t bytes[2]);

struct relay_cfg {
	struct loop *loop;
	struct pipe_pool *pipes;
	enum relay_mode mode;
	struct relay_counters *counters;  /* optional; the relay takes a reference */
	struct relay_set *set;             /* optional; the relay links itself in */
	relay_done_cb done;                /* optional */
	void *arg;
	const char *label;                 /* for log lines, e.g. "service nas"; copied */
	/* sides known to have nothing waiting at the start (RELAY_SIDE_A,
	 * RELAY_SIDE_B): relay_start tries no read on them, the loop reports
	 * when they have something (a data channel before StartForwardTcp,
	 * a socket that has just connected) */
	unsigned idle_at_start;
	/* once one direction has ended (its end sent FIN, and it was passed
	 * on), how long the other may move nothing before the relay ends
	 * both: a peer that vanished, or never answers, does not hold the
	 * sockets for good. 0 = wait as long as it takes (rathole). */
	uint64_t half_close_ms;
};
enum { RELAY_SIDE_A = 1u << 0, RELAY_SIDE_B = 1u << 1 };

/* a and b must have finished their handshakes. Returns 0, or a negative
 * error (both xports closed, done not called). Bytes already waiting on
 * either end (but those named in cfg->idle_at_start) are moved before it
 * returns, so a relay may also end (and call done) before it returns 0. */
int relay_start(const struct relay_cfg *cfg, struct xport *a, struct xport *b);

#endif
