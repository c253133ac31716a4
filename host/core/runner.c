/*
 * runner.c - one thread per task: run, then wait for the next run.
 *
 * Interval tasks run every interval_s seconds, never overlapping themselves
 * (a run that overruns its interval is followed by the next at once, and the
 * overrun is logged). Continuous tasks run, then stay idle for as long as
 * the plugin asked. A failed run is logged with the plugin's message and
 * retried with exponential back-off and jitter; it never stops the others.
 * Every wait is on the daemon's stop condition, so shutdown ends it at once.
 */
#include <stdlib.h>
#include <string.h>

#include "core/backoff.h"
#include "core/contract.h"
#include "core/daemon.h"
#include "core/supervise.h"
#include "storage/locks.h"
#include "observe/log.h"


const char *task_state_name(enum task_state state)
{
	static const char *const names[] = {"starting", "running", "sleeping", "idle",
	                                    "backoff",  "done",    "skipped",  "stopped", "waiting_for_lock",
	                                    "waiting_for_storage", "quarantined"};
	return (unsigned)state < sizeof(names) / sizeof(names[0]) ? names[state] : "?";
}

void task_set_state(struct tg_task *task, enum task_state state, int64_t until_ms)
{
	pthread_mutex_lock(&task->mu);
	task->state = state;
	task->state_until_ms = until_ms;
	pthread_mutex_unlock(&task->mu);
	if (task->remote)
		task->remote->state(task, state, until_ms);
}

void task_note_progress(struct tg_task *task, int64_t done, int64_t total, const char *unit)
{
	pthread_mutex_lock(&task->mu);
	/* Throughput counts from the first report of this process: a resumed
	 * walk reports what earlier runs did too. */
	if (!task->progress_first_ms) {
		task->progress_first = done;
		task->progress_first_ms = tg_wall_ms();
	}
	/* Progress is what status judges liveness by: only forward movement
	 * (or a new walk starting over) counts as progress. */
	if (done > task->progress_done || done < task->progress_done)
		task->last_progress_ms = tg_wall_ms();
	task->progress_done = done;
	task->progress_total = total;
	snprintf(task->progress_unit, sizeof(task->progress_unit), "%s", unit ? unit : "");
	pthread_mutex_unlock(&task->mu);
}

void task_set_error(struct tg_task *task, const char *msg)
{
	pthread_mutex_lock(&task->mu);
	snprintf(task->last_error, sizeof(task->last_error), "%s", msg ? msg : "");
	log_redact(task->last_error);
	task->last_error_ms = tg_wall_ms();
	pthread_mutex_unlock(&task->mu);
}

/* Wait ms (visible as state until the wall-clock end). */
static int wait_visibly(struct tg_task *task, enum task_state state, int64_t ms)
{
	if (ms < 0) {
		task_set_state(task, state, -1);
		return task_wait_until(task, INT64_MAX);
	}
	task_set_state(task, state, tg_wall_ms() + ms);
	return task_wait_until(task, tg_mono_ms() + ms);
}

/* One run: in this thread, or in the task's worker (started first when it
 * has none: at start-up it may have crashed, or it died in an earlier run). */
static int run_once(struct tg_task *task, int64_t *idle_s, char **err)
{
	int rc;

	if (!task->daemon->config->workers) {
		rc = task->plugin.desc->run(task->plugin_state, idle_s, err);
		contract_end_open_transaction(task);
		return rc;
	}
	if (!task->worker && (rc = supervise_start(task, err)))
		return rc;
	return supervise_run(task, idle_s, err);
}

/* Wait until shutdown (or a reload stops it): a quarantined task is not
 * run again. */
static void wait_quarantined(struct tg_task *task)
{
	task_wait_until(task, INT64_MAX);
}

void *runner_thread(void *arg)
{
	struct tg_task *task = arg;
	struct daemon *d = task->daemon;
	const struct tg_plugin *p = task->plugin.desc;
	const char *pname = p ? p->name : task->cfg->plugin, *pversion = p ? p->version : "(not loaded)";

	if (task->cfg->interval_s)
		log_info(task->cfg->name, "started: plugin %s %s, every %lld s", pname, pversion,
		         (long long)task->cfg->interval_s);
	else
		log_info(task->cfg->name, "started: plugin %s %s, continuous", pname, pversion);
	if (task->state == TASK_QUARANTINED) {
		wait_quarantined(task);
		goto stopped;
	}
	/* A worker that crashed at start-up is restarted after its back-off. */
	if (d->config->workers && !task->worker &&
	    wait_visibly(task, TASK_BACKOFF, backoff_ms(task->consecutive_failures)))
		goto stopped;
	while (!task_stopping(task)) {
		int64_t idle_s = 60, start_mono = tg_mono_ms();
		char *err = NULL;
		int rc;

		pthread_mutex_lock(&task->mu);
		task->state = TASK_RUNNING;
		task->runs++;
		task->last_run_start_ms = tg_wall_ms();
		pthread_mutex_unlock(&task->mu);

		task->run_not_before_ms = -1;
		rc = run_once(task, &idle_s, &err);

		pthread_mutex_lock(&task->mu);
		task->last_run_end_ms = tg_wall_ms();
		if (rc >= 0) {
			task->last_success_ms = task->last_run_end_ms;
			task->consecutive_failures = 0;
			/* Healthy again: status should not keep an old error up. */
			task->last_error[0] = '\0';
		} else if (rc != TG_ESTOPPED || !task_stopping(task)) {
			task->failures++;
			task->consecutive_failures++;
		}
		pthread_mutex_unlock(&task->mu);
		if (task_stopping(task)) {
			free(err);
			break;
		}
		if (rc == SUPERVISE_DIED) {
			int64_t wait = backoff_ms(task->consecutive_failures);
			bool quarantined;
			supervise_stop(task);
			quarantined = supervise_note_crash(task, err ? err : "worker died");
			free(err);
			if (quarantined) {
				wait_quarantined(task);
				break;
			}
			log_info(task->cfg->name, "restarting its worker in %lld s", (long long)(wait / 1000));
			if (wait_visibly(task, TASK_BACKOFF, wait))
				break;
			continue;
		}
		if (rc < 0) {
			int64_t wait = backoff_ms(task->consecutive_failures);
			char line[512];
			/* A failed run's request counts too: a retry the plugin knows
			 * to be useless would "succeed" doing nothing and reset the
			 * failure streak that status and the back-off go by. */
			if (task->run_not_before_ms > wait)
				wait = task->run_not_before_ms;
			/* Mask before cutting to size (see log.c). */
			if (err)
				log_redact(err);
			snprintf(line, sizeof(line), "%s", err ? err : "run failed without a message");
			task_set_error(task, line);
			log_error(task->cfg->name, "run failed (%s): %s; retrying in %lld s", log_code_words(rc), line,
			          (long long)(wait / 1000));
			free(err);
			if (wait_visibly(task, TASK_BACKOFF, wait))
				break;
			continue;
		}
		free(err);
		if (task->cfg->interval_s > 0) {
			int64_t due = start_mono + task->cfg->interval_s * 1000, next = due, now = tg_mono_ms();
			/* The plugin knows its next run is useless before then. */
			if (task->run_not_before_ms >= 0 && now + task->run_not_before_ms > next)
				next = now + task->run_not_before_ms;
			if (now > due && next <= now)
				log_warn(task->cfg->name, "run took %lld s, longer than its %lld s schedule; next run now",
				         (long long)((now - start_mono) / 1000), (long long)task->cfg->interval_s);
			if (wait_visibly(task, TASK_SLEEPING, next > now ? next - now : 0))
				break;
		} else if (idle_s == TG_IDLE_FOREVER) {
			log_info(task->cfg->name, "done: nothing more to do until restart");
			if (wait_visibly(task, TASK_DONE, -1))
				break;
		} else {
			if (idle_s < 0)
				idle_s = 0;
			/* A plugin's idle time beyond a year is "forever" without
			 * overflowing the milliseconds below. */
			if (idle_s > 366LL * 86400)
				idle_s = 366LL * 86400;
			int64_t idle_ms = idle_s * 1000;
			if (task->run_not_before_ms > idle_ms)
				idle_ms = task->run_not_before_ms;
			if (idle_ms >= 1000)
				log_info(task->cfg->name, "run complete; idle for %lld s", (long long)(idle_ms / 1000));
			if (wait_visibly(task, TASK_IDLE, idle_ms))
				break;
		}
	}
stopped:
	supervise_stop(task);
	if (task->state != TASK_QUARANTINED)
		task_set_state(task, TASK_STOPPED, 0);
	if (d->locks)
		locks_release_all_of(d->locks, task->cfg->name);
	log_info(task->cfg->name, "stopped");
	return NULL;
}
