/*
 * tokens/status.c - what the token scheduler shows: the estimate and the
 * last reading, and per task its queue, its head's wait and its history.
 */
#include <stdlib.h>
#include <string.h>

#include "tokens/priv.h"

const double tokens_wait_bucket_s[TOKENS_WAIT_BUCKETS - 1] = {1, 10, 60, 600, 3600};

static double hist_p50(const uint64_t *hist, double max_s)
{
	uint64_t total = 0, acc = 0;

	for (int b = 0; b < TOKENS_WAIT_BUCKETS; b++)
		total += hist[b];
	if (total == 0)
		return 0;
	for (int b = 0; b < TOKENS_WAIT_BUCKETS; b++) {
		acc += hist[b];
		if (2 * acc >= total)
			return b < TOKENS_WAIT_BUCKETS - 1 && tokens_wait_bucket_s[b] < max_s
			           ? tokens_wait_bucket_s[b]
			           : max_s;
	}
	return max_s;
}

void tokens_status_release(struct tokens_status *st)
{
	free(st->cls);
	st->cls = NULL;
	st->cls_cap = 0;
	st->nclasses = 0;
}

/* Room for n class entries in st (kept across snapshots); how many fit. */
static int status_room(struct tokens_status *st, int n)
{
	struct tokens_class_status *cls;

	if (n <= st->cls_cap)
		return n;
	cls = realloc(st->cls, (size_t)n * sizeof(*cls));
	if (!cls)
		return st->cls_cap;
	st->cls = cls;
	st->cls_cap = n;
	return n;
}

void tokens_core_status(const struct tokens_core *core, int64_t now, struct tokens_status *st)
{
	struct tokens_class_status *cls = st->cls;
	int cap = st->cls_cap;
	int64_t span;

	memset(st, 0, sizeof(*st));
	st->cls = cls;
	st->cls_cap = cap;
	st->policy = core->cfg.policy;
	st->have_reading = core->have_reading;
	if (core->have_reading) {
		tokens_core_est(core, now, &st->est);
		st->last_left = (int64_t)core->base_left;
		st->last_age_ms = now - core->base_local;
		st->rate = core->rate;
		st->cap = core->cap;
		span = (now - core->first_reading_local) / core->cfg.minute_ms + 1;
		if (span > TOKENS_MINUTES)
			span = TOKENS_MINUTES;
		if (core->rate > 0)
			st->utilization = used_last_hour(core, now) / (core->rate * (double)span);
		st->outside_per_min = outside_per_min(core, now);
		used_per_minute(core, now, st->used_per_min);
	}
	st->deepest_seen = core->deepest_seen;
	st->wasted = core->wasted;
	st->n429 = core->n429;
	st->nclasses = status_room(st, core->ncls);
	for (int i = 0; i < st->nclasses; i++) {
		const struct tokens_class *c = &core->cls[i];
		struct tokens_class_status *cs = &st->cls[i];

		memset(cs, 0, sizeof(*cs));
		memcpy(cs->name, c->name, sizeof(cs->name));
		cs->weight = c->weight;
		cs->queued = c->queued;
		cs->in_flight = c->in_flight;
		cs->head_eta_ms = -1;
		if (core->head && core->head->cls == i) {
			const struct tokens_ticket *t = core->head;

			cs->state = TOKENS_CLASS_WAITING;
			if (t->kind >= 0)
				memcpy(cs->head_kind, c->kinds[t->kind].name, sizeof(cs->head_kind));
			cs->head_cost = t->cost;
			cs->head_wait_ms = now - t->submit_ms;
			if (core->have_reading) {
				int64_t eta;

				cs->head_target = core_target(core, t->cost, now);
				eta = core_eta(core, cs->head_target, now);
				if (eta >= 0)
					cs->head_eta_ms =
					    (eta > core->hold_until ? eta : core->hold_until) - now;
			}
		} else if (c->queued) {
			const struct tokens_ticket *t = c->first;

			cs->state = TOKENS_CLASS_QUEUED;
			/* Its own first call, for when no call holds the head (a
			 * moment between two picks, or before the first reading):
			 * status still says what the task waits to send. */
			if (t && t->state == TICKET_QUEUED) {
				if (t->kind >= 0)
					memcpy(cs->head_kind, c->kinds[t->kind].name, sizeof(cs->head_kind));
				cs->head_cost = t->cost;
				cs->head_wait_ms = now - t->submit_ms;
				if (core->have_reading)
					cs->head_target = core_target(core, t->cost, now);
			}
		} else if (c->in_flight) {
			cs->state = TOKENS_CLASS_IN_FLIGHT;
		} else {
			cs->state = TOKENS_CLASS_IDLE;
		}
		cs->calls_ok = c->calls_ok;
		cs->calls_429 = c->calls_429;
		cs->calls_error = c->calls_error;
		cs->tokens_consumed = c->consumed;
		memcpy(cs->wait_hist, c->wait_hist, sizeof(cs->wait_hist));
		cs->wait_max_s = c->wait_max_s;
		cs->wait_sum_s = c->wait_sum_s;
		cs->wait_p50_s = hist_p50(c->wait_hist, c->wait_max_s);
		cs->cost_estimated = c->cost_estimated;
		cs->cost_actual = c->cost_actual;
		cs->budget_hint = tokens_core_budget_hint(core, i, now);
		cs->fresh = c->fresh;
		cs->passed_head = c->bypassed;
	}
}
