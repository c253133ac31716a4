/*
 * backoff.c - retry waits with jitter (see backoff.h).
 */
#include "core/backoff.h"

#include <stdbool.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* xorshift64*: jitter needs spread, not cryptographic quality; one state a
 * thread, so no lock and no shared sequence. */
static _Thread_local uint64_t jitter_state;

static uint64_t jitter_next(void)
{
	uint64_t x = jitter_state;

	if (x == 0) {
		struct timespec ts;

		/* Seeded once a thread: the kernel's bytes, else the clock, the
		 * pid and the thread's own address. */
		if (getrandom(&x, sizeof(x), GRND_NONBLOCK) != (ssize_t)sizeof(x) || x == 0) {
			clock_gettime(CLOCK_MONOTONIC, &ts);
			x = ((uint64_t)ts.tv_nsec << 32) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 16) ^
			    (uint64_t)(uintptr_t)&jitter_state;
		}
		if (x == 0)
			x = 0x9e3779b97f4a7c15ULL;
	}
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	jitter_state = x;
	return x * 0x2545f4914f6cdd1dULL;
}

int64_t backoff_ms(int64_t failures)
{
	int64_t s = BACKOFF_MIN_S;

	for (int64_t i = 1; i < failures && s < BACKOFF_MAX_S; i++)
		s *= 2;
	if (s > BACKOFF_MAX_S)
		s = BACKOFF_MAX_S;
	return s * 1000 + (int64_t)(jitter_next() % (uint64_t)(s * 250 + 1));
}
