/*
 * sim_bucket.c - the simulated token bucket: one refill of `rate` tokens at
 * every Keepa-minute boundary of its epoch, capped. Time is real monotonic
 * milliseconds; a Keepa minute lasts minute_ms of them.
 */
#include "sim_int.h"

void sim_bucket_init(struct sim_bucket *b, int rate, int cap, int start_tokens, int minute_ms, int64_t now_ms)
{
	b->rate = rate;
	b->cap = cap;
	b->start_tokens = start_tokens;
	b->minute_ms = minute_ms;
	b->balance = start_tokens;
	b->epoch_ms = now_ms;
	b->applied = 0;
	b->refills = 0;
	b->consumed_total = 0;
	b->served_429 = 0;
	b->outside_consumed = 0;
}

void sim_bucket_update(struct sim_bucket *b, int64_t now_ms)
{
	int64_t ticks = (now_ms - b->epoch_ms) / b->minute_ms;
	int64_t n = ticks - b->applied;
	if (n <= 0)
		return;
	/* Adding rate n times, each capped, equals one capped addition; a
	 * balance already above the cap (a lowered cap) is left alone. */
	int64_t filled = b->balance + n * b->rate;
	if (filled > b->cap)
		filled = b->cap;
	if (filled > b->balance)
		b->balance = filled;
	b->applied = ticks;
	b->refills += n;
}

int64_t sim_bucket_refill_in(const struct sim_bucket *b, int64_t now_ms)
{
	return b->minute_ms - (now_ms - b->epoch_ms) % b->minute_ms;
}

void sim_bucket_set_rate(struct sim_bucket *b, int rate, int64_t now_ms)
{
	sim_bucket_update(b, now_ms);
	b->rate = rate;
}

void sim_bucket_restart(struct sim_bucket *b, int64_t now_ms)
{
	sim_bucket_update(b, now_ms);
	b->balance = b->start_tokens;
	b->epoch_ms = now_ms;
	b->applied = 0;
}
