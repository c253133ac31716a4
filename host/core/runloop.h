/*
 * runloop.h - the main thread of a running daemon (run and demo share it).
 */
#ifndef TG_HOST_RUNLOOP_H
#define TG_HOST_RUNLOOP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct daemon;

/* Block SIGINT, SIGTERM, SIGHUP (and SIGUSR1) in this thread and every
 * thread it will create, and ignore SIGPIPE. Call before any thread starts. */
void runloop_block_signals(void);

/* A thread that takes those signals for d: SIGTERM/SIGINT raise d's stop
 * flag (from daemon_init() on, so start-up is interruptible too), SIGHUP is
 * logged. Stop it after the daemon has stopped, before daemon_close(). */
struct runloop_signals {
	pthread_t thread;
	struct daemon *d;
	atomic_bool quit;
	atomic_bool stop_signalled; /* a SIGTERM or SIGINT arrived (not only a stop from inside) */
};
int runloop_signals_start(struct runloop_signals *w, struct daemon *d);
void runloop_signals_stop(struct runloop_signals *w);

struct runloop_options {
	int64_t max_ms;                      /* stop after this long (0: never) */
	int tick_ms;                         /* how often tick() runs (default 1000) */
	void (*tick)(struct daemon *d, void *ud); /* called every tick_ms from the main thread */
	void *ud;
};

/* Log the version of the host and each task's plugin, start the tasks, and
 * wait until the daemon is asked to stop (the signal watcher) or max_ms;
 * meanwhile observe/watch.c looks every tick (verdicts, 429s, progress
 * lines, systemd). Returns 0 after an orderly stop, or the error that
 * stopped it (a key Keepa refuses, the database file gone). */
int runloop_run(struct daemon *d, const struct runloop_options *opts, char **errmsg);

#endif
