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

#include <pthread.h>
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

/* The host's two real clocks, in milliseconds: wall time (Unix epoch) for
 * what people and Keepa read, monotonic time for deadlines and durations. */
static inline int64_t tg_wall_ms(void)
{
	return tg_clock_real_now_ms(NULL);
}

static inline int64_t tg_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait on cond (mutex held) for at most ms. cond must have been set up
 * with pthread_condattr_setclock(CLOCK_MONOTONIC): a wall-clock step must
 * neither cut a wait short nor stretch it. */
static inline void tg_cond_wait_ms(pthread_cond_t *cond, pthread_mutex_t *mutex, int64_t ms)
{
	struct timespec ts;

	if (ms < 0)
		ms = 0;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(cond, mutex, &ts);
}

#endif
