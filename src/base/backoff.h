/* backoff: rathole's exponential backoff (the `backoff` crate 0.4, spec
 * protocol.md#p-backoff), in milliseconds, with the clock and the random source supplied by
 * the caller. Pure code: no timers, no sleeping, no global state.
 *
 * Use: backoff_init() (which also resets), then backoff_next() each time an
 * attempt failed; it either gives the delay before the next attempt or says
 * to give up. backoff_reset() starts over (e.g. after a success).
 *
 * Resolution is 1 ms: the drawn delay and the growing interval are computed
 * in double and rounded to the nearest millisecond (the crate works in
 * nanoseconds and draws from [min, max + 1 ns]; the difference is below
 * 1 ms per step). */
#ifndef MOLERAT_BACKOFF_H
#define MOLERAT_BACKOFF_H

#include <stdbool.h>
#include <stdint.h>

/* A random source: returns a double uniformly distributed in [0, 1).
 * ctx is the pointer given with it. Values outside [0, 1) (or NaN) are
 * clamped by backoff_next. */
typedef double (*backoff_rand_fn)(void *ctx);

/* The default random source: 53 bits from getrandom(2) (ctx unused,
 * may be NULL). If getrandom fails it returns 0.5, i.e. no jitter. */
double backoff_rand_default(void *ctx);

struct backoff_params {
	uint64_t initial_ms;      /* first interval (the first delay is drawn around it) */
	double multiplier;        /* growth per step, >= 1 */
	double randomization;     /* jitter factor in [0, 1]: delay in current x [1-r, 1+r] */
	uint64_t max_interval_ms; /* cap of the interval, reached from the 2nd delay on */
	bool has_max_elapsed;     /* false: never give up */
	uint64_t max_elapsed_ms;  /* give up once this much time has passed since reset */
};

/* State of one backoff. Owned by the caller (embed it); holds no resources. */
struct backoff {
	struct backoff_params p;
	uint64_t current_ms;      /* the interval the next delay is drawn around */
	uint64_t start_ms;        /* time of the last reset, caller's clock */
	backoff_rand_fn rand;     /* never NULL after init */
	void *rand_ctx;
};

/* Sets the parameters and the random source (NULL: backoff_rand_default)
 * and resets at now_ms. Returns 0, or MR_EFORMAT when multiplier < 1 or is
 * not finite, or randomization is outside [0, 1]. */
int backoff_init(struct backoff *b, const struct backoff_params *p, uint64_t now_ms,
		 backoff_rand_fn rand, void *rand_ctx);
/* current = initial, start = now_ms. */
void backoff_reset(struct backoff *b, uint64_t now_ms);
/* The next delay (protocol.md#p-backoff):
 *  1. max_elapsed set and now - start > max_elapsed: give up;
 *  2. d drawn uniformly from [current x (1 - r), current x (1 + r)];
 *  3. current = max_interval if current >= max_interval / multiplier,
 *     else current x multiplier (updated even when step 4 gives up);
 *  4. max_elapsed set and (now - start) + d > max_elapsed: give up.
 * Returns 0 with *delay_ms set, or MR_ELIMIT to give up (*delay_ms
 * untouched). Giving up is not sticky: like the crate, a later call
 * recomputes; callers stop at the first MR_ELIMIT. A clock before start
 * counts as 0 elapsed. */
int backoff_next(struct backoff *b, uint64_t now_ms, uint64_t *delay_ms);

/* Presets (protocol.md#p-backoff-uses). */

/* A client control channel attempt lasting longer than this resets its
 * backoff (protocol.md#p-constants). */
enum { BACKOFF_CTRL_RESET_MS = 3000, BACKOFF_CTRL_FLOOR_MS = 100 };

/* Client control channel reconnect: 0.5 s, x3.0, ±20%, cap retry_interval
 * seconds, no give-up. Deviation from rathole (protocol.md#q7): a cap below 100 ms
 * (retry_interval = 0) is raised to BACKOFF_CTRL_FLOOR_MS instead of
 * retrying in a busy loop. Reset when an attempt lasted > 3 s. */
struct backoff_params backoff_params_control(uint64_t retry_interval_secs);
/* Client data channel connect: 0.5 s, x1.5, ±50%, cap 0.1 s, give up
 * after 10 s. A fresh backoff per data channel. */
struct backoff_params backoff_params_data_channel(void);
/* Server: accept on server.bind_addr failed: 0.5 s, x1.5, ±50%, cap 0.1 s,
 * no give-up; reset after each successful accept. */
struct backoff_params backoff_params_server_accept(void);
/* Server: bind of a service TCP/UDP socket failed: 0.5 s, x1.5, ±50%,
 * cap 1 s, no give-up (retried until the session ends). */
struct backoff_params backoff_params_listener_bind(void);
/* Server: accept on a service listener failed: 0.5 s, x1.5, ±50%, cap 1 s,
 * no give-up; reset after each successful accept. */
struct backoff_params backoff_params_service_accept(void);

#endif
