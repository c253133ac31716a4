/*
 * malloc_tune.c - fewer malloc arenas.
 *
 * glibc gives threads their own arenas (up to 8 per core) and keeps what is
 * freed in each for that arena's next allocations. The daemon's threads
 * spend their time waiting for tokens and the network, not in malloc, yet
 * every arena kept the high-water mark of the Keepa answers parsed in it:
 * with 200 tasks, two arenas instead of sixteen took PSS from 128 MB to
 * 86 MB (tests/bench/run), at no measurable CPU cost.
 */
#include "util/malloc_tune.h"

#include <stdlib.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

void malloc_tune(void)
{
#if defined(__GLIBC__) && defined(M_ARENA_MAX)
	if (!getenv("MALLOC_ARENA_MAX"))
		mallopt(M_ARENA_MAX, MALLOC_TUNE_ARENAS);
#endif
}
