/*
 * daemon.h - the running host: configuration, shared services, tasks.
 *
 * daemon_open() builds everything from a loaded config: it opens storage,
 * locks and the token scheduler, loads every task's plugin and calls its
 * init (a required task that fails stops the start; an optional one is
 * skipped with its reason). daemon_start() starts one thread per task;
 * daemon_stop() makes every wait return at once and joins the threads.
 */
#ifndef TG_HOST_DAEMON_H
#define TG_HOST_DAEMON_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/clock.h"
#include "core/config.h"
#include "core/task.h"

struct storage;
struct locks;
struct tokens;
struct keepa;
struct ha;

struct daemon {
	struct config *config;
	int64_t started_ms;

	atomic_bool stopping;
	pthread_mutex_t stop_mu;
	pthread_cond_t stop_cv; /* CLOCK_MONOTONIC; broadcast at shutdown */
	int stop_fd;            /* an eventfd readable from shutdown on: for poll() */
	const char *worker_exe; /* worker mode: the binary to re-execute (supervise_exe()) */

	struct storage *storage;
	struct locks *locks;
	struct tokens *tokens;
	struct keepa *keepa;

	struct tg_task *tasks;
	int ntasks;

	struct ha *ha; /* hot standby (core/ha.h), or NULL */

	/* `tollgate check`: everything is opened and every init called, but
	 * storage is a scratch database (dry_db) and services->keepa_call
	 * refuses. */
	bool dry_run;
	char dry_db[512];
};


/* Options of daemon_open() that are not in the config file. */
struct daemon_options {
	/* A dry run (check): preflight, plugins, key, endpoint, every init
	 * against an in-memory database; no Keepa call, no runtime files. */
	bool check_only;
	const char *keepa_key; /* overrides KEEPA_API_KEY / keepa.key_file (demo) */
};

/* Zero d and set up its stop state; before daemon_open(), and before any
 * thread (the signal watcher) may ask d to stop. */
void daemon_init(struct daemon *d);
/* Open everything (see above). TG_ESTOPPED when a stop was asked for while
 * starting: not a failure. */
int daemon_open(struct daemon *d, struct config *config, const struct daemon_options *opts, char **errmsg);
int daemon_start(struct daemon *d, char **errmsg);
/* Ask everything to stop; safe from any thread, idempotent. */
void daemon_request_stop(struct daemon *d);
/* Only raise the stop flag and wake the waits on it (safe while daemon_open
 * still builds the services: the signal watcher uses this; the main thread
 * completes the stop with daemon_request_stop()). */
void daemon_signal_stop(struct daemon *d);
/* Stop (if not yet) and join every task thread. */
void daemon_join(struct daemon *d);
void daemon_close(struct daemon *d);

/* Wait until deadline (monotonic ms) or shutdown: 0, or TG_ESTOPPED. */
int daemon_wait_until(struct daemon *d, int64_t mono_deadline_ms);

/* Load a task's plugin and check its settings against the plugin's
 * declarations; errors name file:line and the task. */
struct plugin;
int task_plugin_load(const struct config *cf, const struct task_config *task, struct plugin *out, char **errmsg);

/* The task thread (runner.c). */
void *runner_thread(void *task);

#endif
