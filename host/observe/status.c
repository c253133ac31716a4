/*
 * status.c - the status snapshot and its verdict (see status.h).
 */
#include "observe/status.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/daemon.h"
#include "core/ha.h"
#include "observe/procstats.h"
#include "keepa/keepa.h"
#include "util/dynbuf.h"
#include "tokens/tokens.h"

#define STALL_FLOOR_MS (15 * 60 * 1000)

const char *status_verdict_name(enum status_verdict v)
{
	static const char *const names[] = {"ok", "warning", "critical", "unknown"};
	return (unsigned)v < 4 ? names[v] : "unknown";
}

double status_num(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

long long status_whole(const cJSON *o, const char *key, long long lo, long long hi)
{
	double v = status_num(o, key);

	if (!(v > (double)lo)) /* also NaN */
		return lo;
	if (v >= (double)hi)
		return hi;
	return (long long)v;
}

const char *status_str(const cJSON *o, const char *key)
{
	const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
	return s ? s : "";
}

int64_t status_stall_after_ms(const struct daemon *d, int i)
{
	const struct task_config *t = d->tasks[i].cfg;
	int64_t floor = d->config->status_stall_after_s > 0 ? d->config->status_stall_after_s * 1000 : STALL_FLOOR_MS;

	/* An interval task should progress at least every few runs. */
	if (t->interval_s > 0 && t->interval_s * 3000 > floor)
		return t->interval_s * 3000;
	return floor;
}

static void add_str(cJSON *o, const char *k, const char *v)
{
	cJSON_AddStringToObject(o, k, v ? v : "");
}

static void add_num(cJSON *o, const char *k, double v)
{
	cJSON_AddNumberToObject(o, k, v);
}

static cJSON *tokens_json(const struct tokens_status *st)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddBoolToObject(o, "have_reading", st->have_reading);
	add_num(o, "estimate", st->est);
	add_num(o, "last_reading", (double)st->last_left);
	add_num(o, "last_reading_age_s", (double)st->last_age_ms / 1000.0);
	add_num(o, "rate_per_min", st->rate);
	add_num(o, "cap", st->cap);
	add_num(o, "utilization_1h", st->utilization);
	add_num(o, "deepest_deficit", (double)st->deepest_seen);
	add_num(o, "outside_per_min", st->outside_per_min);
	add_num(o, "wasted", st->wasted);
	add_num(o, "our_429", (double)st->n429);
	add_str(o, "policy", tokens_policy_name(st->policy));
	/* Oldest first; the web page draws its tokens-per-minute chart from it. */
	cJSON_AddItemToObject(o, "per_minute", cJSON_CreateDoubleArray(st->used_per_min, TOKENS_HISTORY_MINUTES));
	return o;
}

/* What the Keepa client counted: every attempt by outcome, retries, calls. */
static cJSON *keepa_json(const struct keepa_counts *kc)
{
	cJSON *o = cJSON_CreateObject(), *by = cJSON_AddObjectToObject(o, "attempts_by_outcome");

	add_num(o, "attempts", (double)kc->attempts);
	for (int i = 0; i < KEEPA_NOUTCOMES; i++)
		add_num(by, keepa_outcome_name((enum keepa_outcome)i), (double)kc->outcome[i]);
	add_num(o, "retries", (double)kc->retries);
	add_num(o, "resends_429", (double)kc->resends_429);
	add_num(o, "calls_ok", (double)kc->calls_ok);
	add_num(o, "calls_failed", (double)kc->calls_failed);
	add_num(o, "gave_up", (double)kc->gave_up);
	return o;
}

const struct tokens_class_status *status_task_class(const struct tg_task *t, const struct tokens_status *st)
{
	for (int c = 0; st && c < st->nclasses; c++)
		if (strcmp(st->cls[c].name, t->cfg->name) == 0)
			return &st->cls[c];
	return NULL;
}

const char *status_task_state(const struct tg_task *t, const struct tokens_class_status *cls)
{
	if (t->state == TASK_RUNNING && cls &&
	    (cls->state == TOKENS_CLASS_WAITING || cls->state == TOKENS_CLASS_QUEUED))
		return "waiting_for_tokens";
	return task_state_name(t->state);
}

/* The class whose call holds the head (waits for tokens), or NULL. */
static const struct tokens_class_status *head_class(const struct tokens_status *st)
{
	for (int c = 0; c < st->nclasses; c++)
		if (st->cls[c].state == TOKENS_CLASS_WAITING)
			return &st->cls[c];
	return NULL;
}

/* The "waiting" object of a task whose call waits for tokens: the call at
 * the head (hc), and which task's it is when not the task's own (behind). */
static void add_waiting(cJSON *o, const struct tokens_class_status *hc, const char *behind, double est)
{
	cJSON *h = cJSON_AddObjectToObject(o, "waiting");

	if (behind)
		add_str(h, "behind", behind);
	add_str(h, "kind", hc->head_kind);
	add_num(h, "cost", hc->head_cost);
	add_num(h, "target", hc->head_target);
	add_num(h, "estimate", est);
	add_num(h, "eta_s", hc->head_eta_ms >= 0 ? (double)hc->head_eta_ms / 1000.0 : -1);
	add_num(h, "waited_s", (double)hc->head_wait_ms / 1000.0);
}

static void format_clock(int64_t wall_ms, char *out, size_t len)
{
	time_t t = (time_t)(wall_ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, len, "%H:%M UTC", &tm);
}

/* Judge one task (its lock held); fills reason.
 *
 * The rule: a task is stalled when work is due and nothing moves. Work is
 * due while it runs (or waits to), not while it is idle or asleep by
 * design - a backfiller idle between walks or an interval task between runs
 * is ok for as long as its schedule says, and stalled only once it should
 * have woken and did not. A run's clock starts at the run's start, so a
 * task waking from a long idle is not stalled for the idle before. */
static enum status_verdict judge_task(struct daemon *d, int i, const struct tokens_class_status *cls,
                                      int64_t now, char *reason, size_t len)
{
	struct tg_task *t = &d->tasks[i];
	int64_t since = d->started_ms, stall = status_stall_after_ms(d, i);
	char when[32];

	if (t->last_progress_ms > since)
		since = t->last_progress_ms;
	if (t->last_run_start_ms > since)
		since = t->last_run_start_ms;
	reason[0] = '\0';
	switch (t->state) {
	case TASK_SKIPPED:
		snprintf(reason, len, "skipped: %.400s", t->last_error);
		return t->cfg->required ? STATUS_CRITICAL : STATUS_WARNING;
	case TASK_QUARANTINED:
		/* last_error says how often and how its worker died. */
		snprintf(reason, len, "%.500s", t->last_error);
		return STATUS_CRITICAL;
	case TASK_DONE:
	case TASK_STOPPED:
		return STATUS_OK;
	default: break;
	}
	/* Storage failing: the task holds its Keepa calls (storage_gate.h). A
	 * warning at once, critical once it lasts longer than a stall would. */
	if (t->storage_failing) {
		snprintf(reason, len, "storage failing for %lld s: %.400s",
		         (long long)((now - t->storage_failing_since_ms) / 1000), t->storage_error);
		return now - t->storage_failing_since_ms > stall ? STATUS_CRITICAL : STATUS_WARNING;
	}
	/* A failure streak counts whatever the task is doing now: during its
	 * next attempt it is "running", and the verdict must not flap. */
	if (t->consecutive_failures > 0) {
		snprintf(reason, len, "%lld failed run(s) in a row: %.400s", (long long)t->consecutive_failures,
		         t->last_error);
		return t->consecutive_failures >= 3 ? STATUS_CRITICAL : STATUS_WARNING;
	}
	if (t->state == TASK_IDLE || t->state == TASK_SLEEPING) {
		/* Idle by design, until its next run; overdue by more than the
		 * stall window means the schedule itself is stuck. */
		if (t->state_until_ms < 0 || now <= t->state_until_ms + stall)
			return STATUS_OK;
		format_clock(t->state_until_ms, when, sizeof(when));
		snprintf(reason, len, "stalled: %s since %lld s, but its next run was due at %s",
		         task_state_name(t->state), (long long)((now - t->last_run_end_ms) / 1000), when);
		return STATUS_CRITICAL;
	}
	if (now - since <= stall)
		return STATUS_OK;
	/* Work is due and nothing moved. Waiting in line for tokens that the
	 * plan cannot yet afford is honest waiting - unless the wait itself is
	 * longer than the stall window. */
	if (cls && cls->state == TOKENS_CLASS_WAITING && cls->head_wait_ms < stall) {
		snprintf(reason, len, "no progress for %lld s: waiting for tokens (%s costs %.0f, ETA %lld s)",
		         (long long)((now - since) / 1000), cls->head_kind, cls->head_cost,
		         (long long)(cls->head_eta_ms / 1000));
		return STATUS_WARNING;
	}
	if (t->state == TASK_LOCK_WAIT)
		snprintf(reason, len, "stalled: waiting for lock \"%.60s\" with no progress for %lld s (allowed %lld s)",
		         t->waiting_lock, (long long)((now - since) / 1000), (long long)(stall / 1000));
	else
		snprintf(reason, len, "stalled: no progress for %lld s while %s (allowed %lld s)",
		         (long long)((now - since) / 1000), status_task_state(t, cls), (long long)(stall / 1000));
	return STATUS_CRITICAL;
}

cJSON *status_snapshot(struct daemon *d)
{
	struct tokens_status *st = calloc(1, sizeof(*st));
	cJSON *root = cJSON_CreateObject(), *tasks, *plugins;
	int64_t now = tg_wall_ms();
	enum status_verdict worst = STATUS_OK;
	/* Read once: a reload may fill a new slot meanwhile (it shows next time). */
	int ntasks = d->ntasks;
	/* Every task's reason, "name: reason; ...": exactly as large as the
	 * bounded parts can make it, so nothing is ever cut or dropped. */
	struct dynbuf reasons =
	    DYNBUF_INIT((size_t)ntasks * (CONFIG_TASK_NAME_MAX + sizeof("; : ") + STATUS_REASON_MAX));

	if (!st || !root) {
		free(st);
		cJSON_Delete(root);
		return NULL;
	}
	if (d->tokens)
		tokens_snapshot(d->tokens, st);
	add_str(root, "version", TG_VERSION);
	add_num(root, "pid", (double)getpid());
	add_num(root, "uptime_s", (double)(now - d->started_ms) / 1000.0);
	add_num(root, "now_ms", (double)now);
	add_num(root, "started_ms", (double)d->started_ms);
	{
		struct procstats ps;
		cJSON *o = cJSON_AddObjectToObject(root, "process"), *b;
		procstats_read(&ps);
		add_num(o, "cpu_seconds", ps.cpu_seconds);
		add_num(o, "resident_bytes", ps.resident_bytes);
		add_num(o, "virtual_bytes", ps.virtual_bytes);
		add_num(o, "open_fds", ps.open_fds);
		add_num(o, "max_fds", ps.max_fds);
		add_num(o, "start_time_s", ps.start_time_s);
		/* The upper bounds of the tasks' wait_hist buckets (the last is open). */
		b = cJSON_AddArrayToObject(root, "wait_buckets_s");
		for (int i = 0; i < TOKENS_WAIT_BUCKETS - 1; i++)
			cJSON_AddItemToArray(b, cJSON_CreateNumber(tokens_wait_bucket_s[i]));
	}
	cJSON_AddItemToObject(root, "tokens", tokens_json(st));
	if (d->ha)
		cJSON_AddItemToObject(root, "ha", ha_status_json(d->ha));
	if (d->keepa) {
		struct keepa_stats ks;
		keepa_stats(d->keepa, &ks);
		cJSON_AddItemToObject(root, "keepa", keepa_json(&ks.counts));
	}
	plugins = cJSON_AddArrayToObject(root, "plugins");
	tasks = cJSON_AddArrayToObject(root, "tasks");
	for (int i = 0; i < ntasks; i++) {
		struct tg_task *t = &d->tasks[i];
		const struct tokens_class_status *cls = NULL;
		cJSON *o, *p;
		char reason[STATUS_REASON_MAX];
		enum status_verdict v;
		double minutes;

		/* A task a reload removed (or restarted in a new slot). */
		if (atomic_load(&t->removed))
			continue;
		o = cJSON_CreateObject();
		cls = status_task_class(t, st);
		/* Under the lock: in worker mode the descriptor arrives when the
		 * task's worker first starts, which may be after a crash. */
		pthread_mutex_lock(&t->mu);
		if (t->plugin.desc) {
			p = cJSON_CreateObject();
			add_str(p, "name", t->plugin.desc->name);
			add_str(p, "version", t->plugin.desc->version);
			add_str(p, "path", t->plugin.path);
			cJSON_AddItemToArray(plugins, p);
		}
		v = judge_task(d, i, cls, now, reason, sizeof(reason));
		add_str(o, "name", t->cfg->name);
		add_str(o, "plugin", t->cfg->plugin);
		add_str(o, "plugin_version", t->plugin.desc ? t->plugin.desc->version : "");
		cJSON_AddBoolToObject(o, "required", t->cfg->required);
		add_num(o, "weight", t->cfg->weight);
		add_str(o, "schedule", t->cfg->interval_s ? "interval" : "continuous");
		add_num(o, "interval_s", (double)t->cfg->interval_s);
		add_str(o, "state", status_task_state(t, cls));
		if (t->state_until_ms > 0 && (t->state == TASK_SLEEPING || t->state == TASK_IDLE ||
		                              t->state == TASK_BACKOFF || t->state == TASK_LOCK_WAIT ||
		                              t->state == TASK_STORAGE_WAIT))
			add_num(o, "until_ms", (double)t->state_until_ms);
		if (t->state == TASK_LOCK_WAIT)
			add_str(o, "waiting_lock", t->waiting_lock);
		add_num(o, "progress_done", (double)t->progress_done);
		add_num(o, "progress_total", (double)t->progress_total);
		add_str(o, "progress_unit", t->progress_unit);
		add_num(o, "last_progress_ms", (double)t->last_progress_ms);
		add_num(o, "last_progress_age_s",
		        (double)(now - (t->last_progress_ms ? t->last_progress_ms : d->started_ms)) / 1000.0);
		minutes = t->progress_first_ms ? (double)(now - t->progress_first_ms) / 60000.0 : 0;
		add_num(o, "throughput_per_min",
		        minutes > 0 && t->progress_done >= t->progress_first
		            ? (double)(t->progress_done - t->progress_first) / minutes
		            : 0);
		add_num(o, "runs", (double)t->runs);
		add_num(o, "failures", (double)t->failures);
		add_num(o, "consecutive_failures", (double)t->consecutive_failures);
		add_str(o, "last_error", t->last_error);
		if (t->storage_failing) {
			add_str(o, "storage_error", t->storage_error);
			add_num(o, "storage_failing_s", (double)(now - t->storage_failing_since_ms) / 1000.0);
		}
		add_num(o, "stall_after_s", (double)status_stall_after_ms(d, i) / 1000.0);
		pthread_mutex_unlock(&t->mu);
		if (cls) {
			cJSON *w = cJSON_AddObjectToObject(o, "tokens");
			add_num(w, "consumed", cls->tokens_consumed);
			add_num(w, "calls_ok", (double)cls->calls_ok);
			add_num(w, "calls_429", (double)cls->calls_429);
			add_num(w, "calls_error", (double)cls->calls_error);
			add_num(w, "queued", cls->queued);
			add_num(w, "wait_p50_s", cls->wait_p50_s);
			add_num(w, "wait_max_s", cls->wait_max_s);
			add_num(w, "wait_sum_s", cls->wait_sum_s);
			{
				cJSON *h = cJSON_AddArrayToObject(w, "wait_hist");
				for (int b = 0; b < TOKENS_WAIT_BUCKETS; b++)
					cJSON_AddItemToArray(h, cJSON_CreateNumber((double)cls->wait_hist[b]));
			}
			add_num(w, "cost_estimated", cls->cost_estimated);
			add_num(w, "cost_actual", cls->cost_actual);
			add_num(w, "cost_estimate_error",
			        cls->cost_estimated > 0 ? (cls->cost_actual - cls->cost_estimated) / cls->cost_estimated : 0);
			add_num(w, "budget_hint", (double)cls->budget_hint);
			cJSON_AddBoolToObject(w, "latency_sensitive", cls->fresh);
			add_num(w, "passed_waiting_head", (double)cls->passed_head);
			/* Waiting at the head, or in line behind another task's
			 * call: what that call waits for is what this one waits for. */
			const struct tokens_class_status *hc =
			    cls->state == TOKENS_CLASS_WAITING ? cls
			    : cls->state == TOKENS_CLASS_QUEUED ? head_class(st)
			                                        : NULL;
			/* Queued with no call at the head (between two picks, or
			 * before the first reading): its own first call, ETA
			 * unknown, so waiting_for_tokens always says what for. */
			if (!hc && cls->state == TOKENS_CLASS_QUEUED)
				hc = cls;
			if (hc)
				add_waiting(o, hc, hc == cls ? NULL : hc->name, st->est);
		}
		if (d->keepa && t->keepa) {
			struct keepa_counts kc;
			keepa_conn_counts(d->keepa, t->keepa, &kc);
			cJSON_AddItemToObject(o, "keepa", keepa_json(&kc));
		}
		add_str(o, "verdict", status_verdict_name(v));
		add_str(o, "reason", reason);
		if (v > worst)
			worst = v;
		if (reason[0])
			dynbuf_printf(&reasons, "%s%s: %s", dynbuf_len(&reasons) ? "; " : "", t->cfg->name, reason);
		cJSON_AddItemToArray(tasks, o);
	}
	add_str(root, "verdict", status_verdict_name(worst));
	add_num(root, "exit_status", worst);
	/* Out of memory is the only way this can fail: say so, not "". */
	add_str(root, "reason", dynbuf_error(&reasons) ? "(out of memory building the reasons)" : dynbuf_str(&reasons));
	dynbuf_free(&reasons);
	tokens_status_release(st);
	free(st);
	return root;
}
