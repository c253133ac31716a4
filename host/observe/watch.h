/*
 * watch.h - the main loop's eye on the daemon, once a second.
 *
 * It judges every task (status.c's rules) and logs each verdict change once,
 * with the reason; logs Keepa's 429 answers as they come; logs a progress
 * line per task only when its progress moved (at most every
 * log.progress_interval_s, and a heartbeat at most hourly when nothing
 * did); and keeps systemd informed: STATUS= with the verdict and a one-line
 * summary whenever it changes, WATCHDOG=1 at half of $WATCHDOG_USEC (the
 * tick permitting), so a wedged main loop is restarted.
 */
#ifndef TG_HOST_WATCH_H
#define TG_HOST_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WATCH_HEARTBEAT_MS (3600 * 1000)

struct daemon;
struct cJSON;

struct status_watch {
	bool started;
	int64_t last_progress_check_ms; /* monotonic */
	int verdict;                    /* overall, -1 before the first tick */
	struct watch_task {
		int verdict;
		double calls_429;
		int64_t logged_done, logged_failures;
		int64_t logged_ms;      /* monotonic, of the last progress line */
	} *task;                        /* one per task of the daemon */
	int ntasks;
	char status[256];               /* the last STATUS= sent */
	int64_t watchdog_every_ms;      /* 0: systemd wants no pings */
	int64_t watchdog_sent_ms;
};

/* One look: call from the main loop every tick (about a second). */
void status_watch_tick(struct status_watch *w, struct daemon *d);
/* Free what the watch holds. */
void status_watch_release(struct status_watch *w);

/* A progress line for every task, changed or not (at shutdown). */
void status_progress_lines(struct daemon *d);

/* "ok - 3 tasks: 2 running, 1 idle; tokens ~46 of 3600, 60.0/min,
 * utilization 1.13" plus the reasons when not ok: the line STATUS= and
 * `tollgate status` both show. */
void status_summary(const struct cJSON *snap, char *out, size_t len);

#endif
