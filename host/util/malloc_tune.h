/*
 * malloc_tune.h - how the daemon asks glibc's allocator to hold memory.
 */
#ifndef TG_HOST_UTIL_MALLOC_TUNE_H
#define TG_HOST_UTIL_MALLOC_TUNE_H

/* At most this many malloc arenas for the whole daemon. */
#define MALLOC_TUNE_ARENAS 2

/* Call once, before the first thread starts. Limits glibc's arenas to
 * MALLOC_TUNE_ARENAS unless MALLOC_ARENA_MAX is set in the environment (the
 * operator's choice wins). */
void malloc_tune(void);

#endif
