/*
 * clock.h - an injectable clock.
 *
 * Every piece of the host that reasons about time (the token scheduler
 * first) reads it through a struct tg_clock, so a simulation can run the
 * real code on virtual time, deterministically. Waiting itself (condition
 * variables) always uses the real monotonic clock; only "what time is it"
 * is injected.
 */
#ifndef TG_HOST_CLOCK_H
#define TG_HOST_CLOCK_H

#include <stdint.h>
#include <time.h>

struct tg_clock {
	/* Current time in milliseconds (Unix epoch for the real clock). */
	int64_t (*now_ms)(void *ctx);
	void *ctx;
};

/* Wall-clock Unix milliseconds (CLOCK_REALTIME), like services->now_ms. */
static inline int64_t tg_clock_real_now_ms(void *ctx)
{
	struct timespec ts;

	(void)ctx;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The real clock, as a value: `struct tg_clock c = TG_CLOCK_REAL;`. */
#define TG_CLOCK_REAL ((struct tg_clock){tg_clock_real_now_ms, NULL})

static inline int64_t tg_clock_now(const struct tg_clock *clock)
{
	return clock->now_ms(clock->ctx);
}

#endif
