/*
 * first_reading.h - one free /token call right after READY, on a thread of
 * its own.
 *
 * A bad key or an expired plan stops the daemon with Keepa's own message
 * (exit 78) instead of every task waiting forever for a reading; a network
 * failure is only logged - Keepa may be back in a minute, and the scheduler
 * keeps asking. It runs after READY=1 so that a slow Keepa cannot hold the
 * start past systemd's TimeoutStartSec=, and beside the main loop so that
 * the watchdog keeps being fed while it waits.
 */
#ifndef TG_HOST_FIRST_READING_H
#define TG_HOST_FIRST_READING_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

struct daemon;

struct first_reading {
	struct daemon *d;
	pthread_t thread;
	bool started;
	atomic_bool done;
	int rc;      /* 0, or TG_EKEEPA: Keepa refused the key */
	char *error; /* with rc: the message (the caller frees it) */
};

/* Start the reading; 0, or TG_EIO when no thread could be made. */
int first_reading_start(struct first_reading *r, struct daemon *d);
/* True once the reading is over (then r->rc and r->error are set). */
bool first_reading_done(struct first_reading *r);
/* Wait for the thread (the daemon's stop flag ends its call at once). */
void first_reading_join(struct first_reading *r);

#endif
