/* backoff: rathole's exponential backoff (protocol.md#p-backoff, protocol.md#p-backoff-uses). */
#include "base/backoff.h"

#include <math.h>
#include <stddef.h>

#include <sys/random.h>

#include "base/err.h"

double backoff_rand_default(void *ctx)
{
	(void)ctx;
	unsigned char b[8];
	if (getrandom(b, sizeof(b), GRND_NONBLOCK) != (ssize_t)sizeof(b))
		return 0.5;
	uint64_t v = 0;
	for (size_t i = 0; i < sizeof(b); i++)
		v = v << 8 | b[i];
	/* the top 53 bits scaled to [0, 1) */
	return (double)(v >> 11) * (1.0 / 9007199254740992.0);
}

int backoff_init(struct backoff *b, const struct backoff_params *p, uint64_t now_ms,
		 backoff_rand_fn rand, void *rand_ctx)
{
	if (!isfinite(p->multiplier) || p->multiplier < 1.0)
		return MR_EFORMAT;
	if (!(p->randomization >= 0.0 && p->randomization <= 1.0))
		return MR_EFORMAT;
	b->p = *p;
	b->rand = rand ? rand : backoff_rand_default;
	b->rand_ctx = rand ? rand_ctx : NULL;
	backoff_reset(b, now_ms);
	return 0;
}

void backoff_reset(struct backoff *b, uint64_t now_ms)
{
	b->current_ms = b->p.initial_ms;
	b->start_ms = now_ms;
}

static double clamp_unit(double u)
{
	if (!(u >= 0.0)) /* also NaN */
		return 0.0;
	if (u >= 1.0)
		return 0x1.fffffffffffffp-1; /* the largest double below 1 */
	return u;
}

static uint64_t ms_from_double(double d)
{
	if (!(d > 0.0))
		return 0;
	if (d >= 18446744073709549568.0) /* the largest double below 2^64 */
		return UINT64_MAX;
	/* nearest millisecond: immune to 399.99999... from floating point */
	return (uint64_t)(d + 0.5);
}

int backoff_next(struct backoff *b, uint64_t now_ms, uint64_t *delay_ms)
{
	uint64_t elapsed = now_ms > b->start_ms ? now_ms - b->start_ms : 0;

	/* 1 */
	if (b->p.has_max_elapsed && elapsed > b->p.max_elapsed_ms)
		return MR_ELIMIT;

	/* 2 */
	double cur = (double)b->current_ms;
	double delta = b->p.randomization * cur;
	double lo = cur - delta, hi = cur + delta;
	double u = clamp_unit(b->rand(b->rand_ctx));
	uint64_t d = ms_from_double(lo + u * (hi - lo));

	/* 3 */
	if (cur >= (double)b->p.max_interval_ms / b->p.multiplier)
		b->current_ms = b->p.max_interval_ms;
	else
		b->current_ms = ms_from_double(cur * b->p.multiplier);

	/* 4: elapsed <= max_elapsed here, so the subtraction cannot wrap */
	if (b->p.has_max_elapsed && d > b->p.max_elapsed_ms - elapsed)
		return MR_ELIMIT;
	*delay_ms = d;
	return 0;
}

static struct backoff_params params(uint64_t initial, double mult, double rand, uint64_t max_interval,
				    bool has_max_elapsed, uint64_t max_elapsed)
{
	struct backoff_params p = {
		.initial_ms = initial,
		.multiplier = mult,
		.randomization = rand,
		.max_interval_ms = max_interval,
		.has_max_elapsed = has_max_elapsed,
		.max_elapsed_ms = max_elapsed,
	};
	return p;
}

struct backoff_params backoff_params_control(uint64_t retry_interval_secs)
{
	/* seconds to ms without overflow; anything that large never caps */
	uint64_t cap = retry_interval_secs > UINT64_MAX / 1000 ? UINT64_MAX : retry_interval_secs * 1000;
	if (cap < BACKOFF_CTRL_FLOOR_MS)
		cap = BACKOFF_CTRL_FLOOR_MS;
	return params(500, 3.0, 0.2, cap, false, 0);
}

struct backoff_params backoff_params_data_channel(void)
{
	return params(500, 1.5, 0.5, 100, true, 10000);
}

struct backoff_params backoff_params_server_accept(void)
{
	return params(500, 1.5, 0.5, 100, false, 0);
}

struct backoff_params backoff_params_listener_bind(void)
{
	return params(500, 1.5, 0.5, 1000, false, 0);
}

struct backoff_params backoff_params_service_accept(void)
{
	return params(500, 1.5, 0.5, 1000, false, 0);
}
