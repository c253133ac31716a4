/*
 * runloop.h - the main thread of a running daemon (run and demo share it).
 */
#ifndef TG_HOST_RUNLOOP_H
#define TG_HOST_RUNLOOP_H

#include <stdint.h>

struct daemon;

/* Block SIGINT, SIGTERM and SIGHUP in this thread and every thread it will
 * create, and ignore SIGPIPE. Call before any thread starts. */
void runloop_block_signals(void);

struct runloop_options {
	int64_t max_ms;                      /* stop after this long (0: never) */
	int tick_ms;                         /* how often tick() runs (default 1000) */
	void (*tick)(struct daemon *d, void *ud); /* called every tick_ms from the main thread */
	void *ud;
};

/* Log the version of the host and each task's plugin, start the tasks, and
 * wait for SIGTERM/SIGINT (or max_ms). Every progress_interval_s a progress
 * line per task is logged. Returns 0 after an orderly stop. */
int runloop_run(struct daemon *d, const struct runloop_options *opts, char **errmsg);

/* Log one progress line per task (also used at shutdown). */
void runloop_log_progress(struct daemon *d);

#endif
