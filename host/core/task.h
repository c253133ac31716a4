/*
 * task.h - the host's view of one configured task (struct tg_task).
 *
 * A task is one configured instance of a plugin: its settings, its thread,
 * its plugin state, its storage connection and token-scheduler class, and
 * what status shows about it. Fields under `mu` change while the task runs
 * and are read by status; the rest is fixed once the task is set up.
 */
#ifndef TG_HOST_TASK_H
#define TG_HOST_TASK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <tollgate/tollgate.h>

#include "core/config.h"
#include "core/loader.h"

struct daemon;
struct worker_link;


enum task_state {
	TASK_STARTING,
	TASK_RUNNING,  /* inside run(); the token scheduler says if it waits for tokens */
	TASK_SLEEPING, /* between runs of an interval task, or in services->sleep_ms */
	TASK_IDLE,     /* a continuous task whose run is done, until state_until_ms */
	TASK_BACKOFF,  /* after a failed run, until state_until_ms */
	TASK_DONE,     /* a continuous task with nothing more to do */
	TASK_SKIPPED,  /* optional task that could not start */
	TASK_STOPPED,
	TASK_LOCK_WAIT, /* in services->lock, waiting for another holder */
	TASK_STORAGE_WAIT, /* storage writes fail: Keepa calls held until one works (storage_gate.c) */
	TASK_QUARANTINED, /* its worker crashed too often: not restarted (last_error says why) */
};

const char *task_state_name(enum task_state state);

/* In a worker process, what crosses the socket to the host instead of being
 * done locally (worker/remote.c fills it; NULL in the host itself). */
struct task_remote {
	void (*log)(struct tg_task *task, int level, const char *msg);
	void (*progress)(struct tg_task *task, int64_t done, int64_t total, const char *unit);
	/* state is RUNNING, SLEEPING or LOCK_WAIT (then task->waiting_lock). */
	void (*state)(struct tg_task *task, enum task_state state, int64_t until_ms);
	int (*keepa_call)(struct tg_task *task, const struct tg_keepa_request *req, struct cJSON **response,
	                  char **errmsg);
	int64_t (*budget_hint)(struct tg_task *task);
	/* Called from should_stop(): sends a progress report held back longer
	 * than the worker holds one (worker/remote.c). */
	void (*flush)(struct tg_task *task);
};

struct tg_task {
	struct daemon *daemon;
	const struct task_config *cfg;
	struct plugin plugin;
	void *plugin_state;
	bool initialized;
	bool plugin_absent;           /* no such plugin file: an optional task may be skipped */
	bool thread_started;
	pthread_t thread;
	int tokens_class;             /* class id in the token scheduler */
	struct storage_conn *db;      /* this task's own connection */
	struct keepa_conn *keepa;     /* this task's own kept-alive HTTP handle */
	const struct task_remote *remote; /* set in a worker process only */
	/* Tables the plugin declared: the only ones it may write (contract.c). */
	char **declared;
	size_t ndeclared;
	/* Worker mode, in the host: the task's worker (plugin.desc is then the
	 * copy of the descriptor it sent; plugin.handle stays NULL). */
	struct worker_link *worker;
	/* Reload (core/reload.c): stop asks this task alone to stop (its
	 * waits and its worker's await see it; stop_fd is readable from then
	 * on, for poll()); removed hides a stopped task's slot from status.
	 * The slot itself stays where it is until daemon_close: status may be
	 * reading it. */
	atomic_bool stop;
	atomic_bool removed;
	int stop_fd;
	int64_t crash_ms[8];          /* recent crash times (monotonic), a ring */
	int ncrashes;

	pthread_mutex_t mu;
	enum task_state state;
	int64_t state_until_ms;       /* for SLEEPING, IDLE, BACKOFF */
	char waiting_lock[72];        /* for TASK_LOCK_WAIT: the lock's name */
	char last_error[512];
	int64_t last_error_ms;
	int64_t progress_done, progress_total;
	char progress_unit[24];
	int64_t last_progress_ms;     /* when progress_done last increased */
	int64_t progress_at_start;    /* progress_done when the window began */
	int64_t progress_first;       /* the first progress_done this process saw */
	int64_t progress_first_ms;    /* and when (0: none yet) */
	int64_t runs, failures, consecutive_failures;
	int64_t last_run_start_ms, last_run_end_ms, last_success_ms;
	/* Storage health as this task's writes found it (storage_gate.c). */
	bool storage_failing;
	int64_t storage_failing_since_ms;
	char storage_error[512];

	/* The task thread's own: the reason of its last failed service call,
	 * for services->last_error(). */
	char service_error[512];
	/* The task thread's own: what the plugin asked with
	 * services->not_before_ms() in the current run, -1 when nothing. */
	int64_t run_not_before_ms;
};

/* The longest delay services->not_before_ms() may ask: a year, like a
 * continuous task's idle time (runner.c). */
#define TASK_NOT_BEFORE_MAX_MS (366LL * 86400 * 1000)

/* Take a snapshot of the mutable part under the task's lock. */
void task_set_state(struct tg_task *task, enum task_state state, int64_t until_ms);
void task_set_error(struct tg_task *task, const char *msg);
/* Record a progress report (the services table and the worker link). */
void task_note_progress(struct tg_task *task, int64_t done, int64_t total, const char *unit);

#endif
