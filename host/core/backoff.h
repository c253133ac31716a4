/*
 * backoff.h - how long a failing task waits before it tries again.
 */
#ifndef TG_HOST_BACKOFF_H
#define TG_HOST_BACKOFF_H

#include <stdint.h>

#define BACKOFF_MIN_S 5
#define BACKOFF_MAX_S 600

/* The wait after the n-th failure in a row (1-based), in ms: 5 s doubling
 * to 10 minutes, plus up to a quarter of random jitter so tasks (and
 * daemons started together) do not retry in step. The jitter comes from a
 * per-thread generator seeded from the kernel's random bytes: random() was
 * never seeded, so every daemon drew the same "random" waits. */
int64_t backoff_ms(int64_t failures);

#endif
