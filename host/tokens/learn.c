/*
 * tokens/learn.c - what the token scheduler learns from envelopes: the cost
 * of each call kind per task, and consumption by others on the same key.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokens/priv.h"

/* Outside consumption is averaged over this many minutes. */
#define OUTSIDE_WINDOW_MIN 30

struct learn_kind *learn_kind_get(struct tokens_class *c, const char *kind, bool create)
{
	for (int i = 0; i < c->nkinds; i++)
		if (strcmp(c->kinds[i].name, kind) == 0)
			return &c->kinds[i];
	if (!create || c->nkinds >= TOKENS_MAX_KINDS || strlen(kind) >= TOKENS_NAME_MAX)
		return NULL;
	struct learn_kind *k = &c->kinds[c->nkinds++];
	memset(k, 0, sizeof(*k));
	snprintf(k->name, sizeof(k->name), "%s", kind);
	return k;
}

/* The declared estimate, or the 90th percentile of the observed cost per
 * unit times the units when that is larger: never below the declaration. */
double learn_cost(const struct tokens_class *c, int kind, int64_t units, double declared)
{
	double learned;

	if (kind < 0 || c->kinds[kind].n == 0)
		return declared;
	learned = c->kinds[kind].q90 * (double)(units > 0 ? units : 1);
	return learned > declared ? learned : declared;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

void learn_record(struct tokens_class *c, int kind, int64_t units, double consumed)
{
	struct learn_kind *k;
	double sorted[TOKENS_LEARN_WINDOW];

	if (kind < 0)
		return;
	k = &c->kinds[kind];
	k->window[k->pos] = consumed / (double)(units > 0 ? units : 1);
	k->pos = (k->pos + 1) % TOKENS_LEARN_WINDOW;
	if (k->n < TOKENS_LEARN_WINDOW)
		k->n++;
	memcpy(sorted, k->window, (size_t)k->n * sizeof(double));
	qsort(sorted, (size_t)k->n, sizeof(double), cmp_double);
	k->q90 = sorted[(int)ceil(0.9 * k->n) - 1];
}

static int64_t minute_of(int64_t ms, int64_t minute_ms)
{
	return ms >= 0 ? ms / minute_ms : (ms - minute_ms + 1) / minute_ms;
}

static void slot_add(double *val, int64_t *slot, double amount, int64_t now, int64_t minute_ms)
{
	int64_t m = minute_of(now, minute_ms);
	int i = (int)(((m % TOKENS_MINUTES) + TOKENS_MINUTES) % TOKENS_MINUTES);

	if (slot[i] != m) {
		slot[i] = m;
		val[i] = 0;
	}
	val[i] += amount;
}

static double slot_sum(const double *val, const int64_t *slot, int minutes, int64_t now, int64_t minute_ms)
{
	int64_t m = minute_of(now, minute_ms);
	double s = 0;

	for (int i = 0; i < TOKENS_MINUTES; i++)
		if (slot[i] > m - minutes && slot[i] <= m)
			s += val[i];
	return s;
}

/* A reading fell short of the prediction by gap tokens. */
void outside_record(struct tokens_core *core, double gap, int64_t now)
{
	slot_add(core->outside_min, core->outside_slot, gap, now, core->cfg.minute_ms);
	if (gap > core->outside_burst ||
	    now - core->outside_burst_ms > TOKENS_MINUTES * core->cfg.minute_ms) {
		core->outside_burst = gap;
		core->outside_burst_ms = now;
	}
}

/* Moving average over the last OUTSIDE_WINDOW_MIN minutes: one bite is
 * spread over the window rather than taken as a rate. */
double outside_per_min(const struct tokens_core *core, int64_t now)
{
	return slot_sum(core->outside_min, core->outside_slot, OUTSIDE_WINDOW_MIN, now, core->cfg.minute_ms) /
	       OUTSIDE_WINDOW_MIN;
}

void used_record(struct tokens_core *core, double consumed, int64_t now)
{
	slot_add(core->used_min, core->used_slot, consumed, now, core->cfg.minute_ms);
}

double used_last_hour(const struct tokens_core *core, int64_t now)
{
	return slot_sum(core->used_min, core->used_slot, TOKENS_MINUTES, now, core->cfg.minute_ms);
}

_Static_assert(TOKENS_HISTORY_MINUTES <= TOKENS_MINUTES, "the history is read from the minute slots");

void used_per_minute(const struct tokens_core *core, int64_t now, double out[TOKENS_HISTORY_MINUTES])
{
	int64_t m = minute_of(now, core->cfg.minute_ms);

	for (int k = 0; k < TOKENS_HISTORY_MINUTES; k++) {
		int64_t want = m - (TOKENS_HISTORY_MINUTES - 1) + k;
		int i = (int)(((want % TOKENS_MINUTES) + TOKENS_MINUTES) % TOKENS_MINUTES);
		out[k] = core->used_slot[i] == want ? core->used_min[i] : 0;
	}
}
