/*
 * runloop.c - start the tasks, then wait for a signal while logging progress.
 */
#include "core/runloop.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/daemon.h"
#include "core/db_guard.h"
#include "core/first_reading.h"
#include "observe/log.h"
#include "observe/notify.h"
#include "observe/status.h"
#include "observe/watch.h"
#include "util/errmsg.h"

static void watched_set(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGUSR1); /* ends the watcher itself */
}

void runloop_block_signals(void)
{
	sigset_t set;

	watched_set(&set);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* The one thread that takes the signals, from before start-up to the end,
 * so a SIGTERM while the daemon still reads Keepa or inits plugins stops it
 * as promptly as one while it runs. It only raises the stop flag (the
 * services may still be under construction); the main thread does the rest. */
static void *watch_signals(void *arg)
{
	struct runloop_signals *w = arg;
	sigset_t set;
	int sig;

	watched_set(&set);
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGUSR1 && atomic_load(&w->quit))
			break;
		if (sig == SIGHUP) {
			/* The main loop reloads (core/reload.c): nothing else here. */
			atomic_store(&w->d->reload_requested, true);
		} else if (sig == SIGINT || sig == SIGTERM) {
			log_info(NULL, "signal %s: stopping", strsignal(sig));
			atomic_store(&w->stop_signalled, true);
			daemon_signal_stop(w->d);
		}
	}
	return NULL;
}

int runloop_signals_start(struct runloop_signals *w, struct daemon *d)
{
	w->d = d;
	atomic_init(&w->quit, false);
	atomic_init(&w->stop_signalled, false);
	return pthread_create(&w->thread, NULL, watch_signals, w) == 0 ? 0 : TG_EIO;
}

void runloop_signals_stop(struct runloop_signals *w)
{
	atomic_store(&w->quit, true);
	pthread_kill(w->thread, SIGUSR1);
	pthread_join(w->thread, NULL);
}

int runloop_run(struct daemon *d, const struct runloop_options *opts, char **errmsg)
{
	struct runloop_options defaults = {0};
	struct status_server *status = NULL;
	struct metrics_server *metrics = NULL;
	struct status_watch watch = {.verdict = -1};
	struct first_reading reading = {0};
	struct db_guard guard;
	int64_t start = tg_mono_ms();
	int rc;

	if (!opts)
		opts = &defaults;
	for (int i = 0; i < d->ntasks; i++) {
		struct tg_task *t = &d->tasks[i];
		if (t->plugin.desc)
			log_info(NULL, "task %s: plugin %s %s from %s, weight %g, %s%s", t->cfg->name,
			         t->plugin.desc->name, t->plugin.desc->version, t->plugin.path, t->cfg->weight,
			         t->cfg->interval_s ? "interval" : "continuous", t->state == TASK_SKIPPED ? " (skipped)" : "");
	}
	if (d->config->status_socket && d->config->status_socket[0] &&
	    (rc = status_server_start(d, d->config->status_socket, &status, errmsg)))
		return rc;
	if (d->config->metrics_listen && d->config->metrics_listen[0]) {
		if ((rc = metrics_server_start(d, d->config->metrics_listen, &metrics, errmsg))) {
			status_server_stop(status);
			return rc;
		}
		log_info(NULL, "metrics on http://%s/metrics", d->config->metrics_listen);
	}
	if ((rc = daemon_start(d, errmsg))) {
		metrics_server_stop(metrics);
		status_server_stop(status);
		return rc;
	}

	{
		char ready[128];
		int running = 0;
		for (int i = 0; i < d->ntasks; i++)
			running += d->tasks[i].thread_started;
		snprintf(ready, sizeof(ready), "READY=1\nSTATUS=%d of %d tasks running; waiting for the first Keepa reading",
		         running, d->ntasks);
		notify_systemd(ready);
	}
	db_guard_arm(&guard, d->config);
	if ((rc = first_reading_start(&reading, d))) {
		errmsg_set(errmsg, rc, "cannot start the thread for the first Keepa reading");
		goto stop;
	}
	for (;;) {
		int tick = opts->tick_ms > 0 ? opts->tick_ms : 1000;
		int64_t now;

		/* The signal watcher raises the stop flag; this wait ends at once. */
		if (daemon_wait_until(d, tg_mono_ms() + tick) == TG_ESTOPPED)
			break;
		now = tg_mono_ms();
		if (atomic_exchange(&d->reload_requested, false))
			daemon_reload(d);
		if (opts->tick)
			opts->tick(d, opts->ud);
		/* Verdict changes, 429s, progress lines, STATUS=, WATCHDOG=1. */
		status_watch_tick(&watch, d);
		if ((rc = db_guard_check(&guard, errmsg)))
			break;
		/* A key Keepa refuses ends the start, late but with its reason. */
		if (first_reading_done(&reading) && reading.rc) {
			rc = reading.rc;
			*errmsg = reading.error;
			reading.error = NULL;
			break;
		}
		if (opts->max_ms > 0 && now - start >= opts->max_ms)
			break;
	}
stop:
	notify_systemd("STOPPING=1");
	daemon_request_stop(d);
	first_reading_join(&reading);
	free(reading.error);
	daemon_join(d);
	status_progress_lines(d);
	status_watch_release(&watch);
	metrics_server_stop(metrics);
	status_server_stop(status);
	return rc;
}
