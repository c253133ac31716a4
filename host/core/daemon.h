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

/* Slots beyond the configured tasks for what reloads add or restart. */
#define DAEMON_RELOAD_SLOTS 64

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

	/* tasks has room for task_capacity slots and never moves (status,
	 * metrics and the watch read it from their threads); ntasks grows when
	 * a reload fills a new slot, after the slot is complete. */
	struct tg_task *tasks;
	_Atomic int ntasks;
	int task_capacity;

	/* Reload (core/reload.c): raised by the signal thread, handled by the
	 * main loop. The configurations a reload applied, kept until
	 * daemon_close (their tasks' cfg point into them); current is the last
	 * one applied (config until the first reload). */
	atomic_bool reload_requested;
	struct config **reloaded;
	int nreloaded;
	const struct config *current;

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

/* One task's stop, for a reload: its waits return TG_ESTOPPED, its worker
 * is sent `stop` (then killed after the grace period, as at shutdown). */
void task_request_stop(struct tg_task *task);
bool task_stopping(struct tg_task *task);
/* daemon_wait_until that also ends at the task's own stop. */
int task_wait_until(struct tg_task *task, int64_t mono_deadline_ms);
/* Set up slot t for task cfg (its lock, stop state); reload.c too. */
void daemon_task_slot_init(struct daemon *d, struct tg_task *t, const struct task_config *cfg);
/* Worker mode: give t its class (the existing one of its name, re-weighted,
 * if a reload restarts it), its Keepa connection and start its worker.
 * 0; or an orderly failure (*err says why); a worker that died is counted
 * as a crash and 0 returned (the runner restarts it). */
int daemon_open_worker_task(struct daemon *d, struct tg_task *t, char **err);
/* Start t's thread. */
int daemon_start_task(struct daemon *d, struct tg_task *t, char **errmsg);
/* The reload itself (reload.c): on the main thread, when reload_requested. */
void daemon_reload(struct daemon *d);

/* Load a task's plugin and check its settings against the plugin's
 * declarations; errors name file:line and the task. */
struct plugin;
int task_plugin_load(const struct config *cf, const struct task_config *task, struct plugin *out, char **errmsg);

/* The task thread (runner.c). */
void *runner_thread(void *task);

#endif
