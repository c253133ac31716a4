/*
 * watch.c - verdict changes, 429s, progress lines and systemd's view
 * (watch.h).
 */
#include "observe/watch.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/daemon.h"
#include "observe/log.h"
#include "observe/notify.h"
#include "observe/status.h"
#include "tokens/tokens.h"

static int verdict_code(const char *v)
{
	return strcmp(v, "critical") == 0 ? STATUS_CRITICAL : strcmp(v, "warning") == 0 ? STATUS_WARNING : STATUS_OK;
}

void status_summary(const cJSON *snap, char *out, size_t len)
{
	const cJSON *tok = cJSON_GetObjectItemCaseSensitive(snap, "tokens"), *t;
	/* The states in the order tasks first show them: "2 running, 1 idle". */
	const char *states[16];
	int count[16] = {0}, nstates = 0, n = 0;
	size_t used;

	cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(snap, "tasks"))
	{
		const char *st = status_str(t, "state");
		int i = 0;
		n++;
		while (i < nstates && strcmp(states[i], st) != 0)
			i++;
		if (i == nstates && nstates < 16)
			states[nstates++] = st;
		if (i < nstates)
			count[i]++;
	}
	used = (size_t)snprintf(out, len, "%s - %d task%s", status_str(snap, "verdict"), n, n == 1 ? "" : "s");
	for (int i = 0; i < nstates && used < len; i++)
		used += (size_t)snprintf(out + used, len - used, "%s%d %s", i ? ", " : ": ", count[i], states[i]);
	if (used < len)
		used += (size_t)snprintf(out + used, len - used, "; tokens ~%.0f of %.0f, %.1f/min, utilization %.2f",
		                         status_num(tok, "estimate"), status_num(tok, "cap"), status_num(tok, "rate_per_min"),
		                         status_num(tok, "utilization_1h"));
	if (used < len && status_str(snap, "reason")[0])
		snprintf(out + used, len - used, "; %s", status_str(snap, "reason"));
}

/* The snapshot lists the slots that are not removed, in slot order; w->task
 * is indexed by slot. A reload runs on this same thread (the main loop), so
 * no slot is removed between the snapshot and this walk. */
static void log_verdicts(struct status_watch *w, struct daemon *d, const cJSON *snap)
{
	const cJSON *t;
	int i = 0;

	cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(snap, "tasks"))
	{
		int v = verdict_code(status_str(t, "verdict"));
		const char *name = status_str(t, "name");
		double n429 = status_num(cJSON_GetObjectItemCaseSensitive(t, "tokens"), "calls_429");

		while (i < d->ntasks && atomic_load(&d->tasks[i].removed))
			i++;
		if (i >= w->ntasks)
			break;
		if (w->started ? v != w->task[i].verdict : v != STATUS_OK) {
			const char *why = status_str(t, "reason");
			int level = v == STATUS_CRITICAL ? TG_LOG_ERROR : v == STATUS_WARNING ? TG_LOG_WARN : TG_LOG_INFO;
			if (w->started)
				log_msg(level, name, "verdict %s -> %s%s%s", status_verdict_name(w->task[i].verdict),
				        status_verdict_name(v), why[0] ? ": " : "", why);
			else
				log_msg(level, name, "verdict %s: %s", status_verdict_name(v), why);
		}
		if (n429 > w->task[i].calls_429) /* from 0: a 429 before the first tick counts too */
			log_warn(name,
			         "Keepa answered 429 (no tokens left) %.0f time(s), %.0f in all: the call keeps its place and "
			         "is resent after the refill; repeated 429s mean another client spends tokens on this key",
			         n429 - w->task[i].calls_429, n429);
		w->task[i].verdict = v;
		w->task[i].calls_429 = n429;
		i++;
	}
}

/* One progress line for task t (its lock held). st is the scheduler's view
 * (taken before any task lock), so a task waiting for tokens is logged as
 * waiting, as status shows it, not as "running". */
static void progress_line(struct daemon *d, struct tg_task *t, const struct tokens_status *st, int64_t now,
                          const char *suffix)
{
	char total[32] = "?";

	if (t->progress_total >= 0)
		snprintf(total, sizeof(total), "%lld", (long long)t->progress_total);
	log_info(t->cfg->name,
	         "progress: %lld of %s %s (%+lld since the last line), %s; last progress %s%lld s ago; "
	         "runs %lld, failures %lld%s",
	         (long long)t->progress_done, total, t->progress_unit[0] ? t->progress_unit : "units",
	         (long long)(t->progress_done - t->progress_at_start),
	         status_task_state(t, status_task_class(t, st)), t->last_progress_ms ? "" : "never, started ",
	         (long long)((now - (t->last_progress_ms ? t->last_progress_ms : d->started_ms)) / 1000),
	         (long long)t->runs, (long long)t->failures, suffix);
	t->progress_at_start = t->progress_done;
}

/* The scheduler's view for the progress lines (NULL without a scheduler or
 * memory); release with scheduler_view_free(). */
static struct tokens_status *scheduler_view(struct daemon *d)
{
	struct tokens_status *st = d->tokens ? calloc(1, sizeof(*st)) : NULL;

	if (st)
		tokens_snapshot(d->tokens, st);
	return st;
}

static void scheduler_view_free(struct tokens_status *st)
{
	if (st)
		tokens_status_release(st);
	free(st);
}

void status_progress_lines(struct daemon *d)
{
	int64_t now = tg_wall_ms();
	struct tokens_status *st = scheduler_view(d);

	for (int i = 0; i < d->ntasks; i++) {
		struct tg_task *t = &d->tasks[i];
		if (atomic_load(&t->removed))
			continue;
		pthread_mutex_lock(&t->mu);
		if (t->state != TASK_SKIPPED)
			progress_line(d, t, st, now, "");
		pthread_mutex_unlock(&t->mu);
	}
	scheduler_view_free(st);
}

/* A progress line per task whose progress moved since its last line, or
 * hourly when nothing did (so silence never means "dead"). */
static void log_progress(struct status_watch *w, struct daemon *d, int64_t mono)
{
	int64_t now = tg_wall_ms();
	struct tokens_status *st = scheduler_view(d);

	for (int i = 0; i < d->ntasks && i < w->ntasks; i++) {
		struct tg_task *t = &d->tasks[i];
		bool moved, heartbeat;

		if (atomic_load(&t->removed))
			continue;
		pthread_mutex_lock(&t->mu);
		moved = t->progress_done != w->task[i].logged_done || t->failures != w->task[i].logged_failures;
		heartbeat = mono - w->task[i].logged_ms >= WATCH_HEARTBEAT_MS;
		if (t->state != TASK_SKIPPED && (moved || heartbeat)) {
			progress_line(d, t, st, now, moved ? "" : " (hourly heartbeat: nothing changed)");
			w->task[i].logged_done = t->progress_done;
			w->task[i].logged_failures = t->failures;
			w->task[i].logged_ms = mono;
		}
		pthread_mutex_unlock(&t->mu);
	}
	scheduler_view_free(st);
}

/* Half of $WATCHDOG_USEC when systemd asked this process for pings
 * ($WATCHDOG_PID, when set, names it), else 0. */
static int64_t watchdog_interval_ms(void)
{
	const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	char *end;
	long long v;

	if (pid) {
		errno = 0;
		v = strtoll(pid, &end, 10);
		if (errno || end == pid || *end || v != (long long)getpid())
			return 0;
	}
	if (!usec)
		return 0;
	errno = 0;
	v = strtoll(usec, &end, 10);
	if (errno || end == usec || *end || v <= 0)
		return 0;
	return (int64_t)(v / 2000 > 0 ? v / 2000 : 1);
}

void status_watch_tick(struct status_watch *w, struct daemon *d)
{
	int64_t mono = tg_mono_ms(), every = (int64_t)d->config->log_progress_interval_s * 1000;
	cJSON *snap = status_snapshot(d);
	char status[sizeof(w->status)], msg[sizeof(w->status) + 16];

	if (!w->started) {
		w->last_progress_check_ms = mono;
		/* One per slot, the ones reloads may fill included. */
		int slots = d->task_capacity > d->ntasks ? d->task_capacity : d->ntasks;
		w->task = calloc((size_t)(slots > 0 ? slots : 1), sizeof(*w->task));
		w->ntasks = w->task ? slots : 0;
		for (int i = 0; i < w->ntasks && i < d->ntasks; i++) {
			pthread_mutex_lock(&d->tasks[i].mu);
			w->task[i].logged_done = d->tasks[i].progress_done;
			pthread_mutex_unlock(&d->tasks[i].mu);
			w->task[i].logged_ms = mono;
		}
	}
	if (snap) {
		log_verdicts(w, d, snap);
		status_summary(snap, status, sizeof(status));
		/* The verdict and the task states, not the token numbers, decide
		 * when systemd hears again: a few datagrams an hour, not one a second. */
		if (strncmp(status, w->status, strcspn(status, ";")) != 0 || strcspn(status, ";") != strcspn(w->status, ";")) {
			snprintf(msg, sizeof(msg), "STATUS=%s", status);
			notify_systemd(msg);
			memcpy(w->status, status, sizeof(status));
		}
		w->verdict = (int)status_num(snap, "exit_status");
		cJSON_Delete(snap);
	}
	if (mono - w->last_progress_check_ms >= every) {
		log_progress(w, d, mono);
		w->last_progress_check_ms = mono;
	}
	/* Proof of life for WatchdogSec=: this loop is running and the
	 * snapshot (which takes every task's lock) came back. Twice per
	 * watchdog period, as sd_watchdog_enabled(3) advises. */
	if (!w->started)
		w->watchdog_every_ms = watchdog_interval_ms();
	if (w->watchdog_every_ms > 0 && mono - w->watchdog_sent_ms >= w->watchdog_every_ms) {
		notify_systemd("WATCHDOG=1");
		w->watchdog_sent_ms = mono;
	}
	w->started = true;
}

void status_watch_release(struct status_watch *w)
{
	free(w->task);
	w->task = NULL;
	w->ntasks = 0;
}
