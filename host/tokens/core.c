/*
 * tokens/core.c - the pure token scheduler: the estimate, the targets,
 * deficit round robin with a sticky head, reconciliation with envelopes.
 * No threads and no sleeping: time is an argument (see tokens.h).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "observe/log.h"
#include "util/errmsg.h"
#include "tokens/priv.h"

/* Re-read the bucket with a free /token call when the head has waited this
 * long on a reading this old: it corrects a pessimistic estimate (unknown
 * calls, over-learned outside consumption) without polling. */
#define RESYNC_MINUTES 15
#define SYNC_RETRY_MS 5000
#define EPS 1e-9

void tokens_config_default(struct tokens_config *cfg)
{
	cfg->policy = TOKENS_POLICY_RESERVE;
	cfg->reserve = 1;
	cfg->margin = 1;
	cfg->deepest_deficit = 150;
	cfg->deficit_threshold = 80;
	cfg->cap_minutes = 60;
	cfg->latency_target_s = 600;
	cfg->minute_ms = 60000;
}

int tokens_policy_parse(const char *name)
{
	if (name && strcmp(name, "reserve") == 0)
		return TOKENS_POLICY_RESERVE;
	if (name && strcmp(name, "deficit") == 0)
		return TOKENS_POLICY_DEFICIT;
	return -1;
}

const char *tokens_policy_name(enum tokens_policy policy)
{
	return policy == TOKENS_POLICY_DEFICIT ? "deficit" : "reserve";
}

int tokens_core_new(const struct tokens_config *cfg, struct tokens_core **out, char **errmsg)
{
	struct tokens_core *core;
	struct tokens_config def;

	if (!cfg) {
		tokens_config_default(&def);
		cfg = &def;
	}
	if (cfg->reserve < 0 || cfg->margin < 0 || cfg->deepest_deficit < 0 || cfg->cap_minutes <= 0 ||
	    cfg->latency_target_s <= 0 || cfg->minute_ms <= 0 || cfg->deficit_threshold <= 0 ||
	    cfg->margin > cfg->reserve + EPS) {
		errmsg_set(errmsg, 0, "token scheduler: reserve, margin, deepest deficit must be >= 0, cap minutes, "
		           "latency target and deficit threshold > 0, and margin <= reserve");
		return TG_EINVAL;
	}
	core = calloc(1, sizeof(*core));
	if (!core) {
		errmsg_set(errmsg, 0, "token scheduler: out of memory");
		return TG_ENOMEM;
	}
	core->cfg = *cfg;
	*out = core;
	return 0;
}

void tokens_core_free(struct tokens_core *core)
{
	if (!core)
		return;
	for (int i = 0; i < core->ncls; i++) {
		struct tokens_ticket *t = core->cls[i].first;

		while (t) {
			struct tokens_ticket *next = t->next;

			free(t);
			t = next;
		}
	}
	while (core->flight) {
		struct tokens_ticket *next = core->flight->next;

		free(core->flight);
		core->flight = next;
	}
	free(core->cls);
	free(core->ring);
	free(core);
}

/* Room for one more class in cls and ring: doubled when full. */
static int classes_grow(struct tokens_core *core)
{
	struct tokens_class *cls;
	int *ring, cap;

	if (core->ncls < core->cls_cap)
		return 0;
	cap = core->cls_cap ? core->cls_cap * 2 : 4;
	cls = realloc(core->cls, (size_t)cap * sizeof(*cls));
	if (!cls)
		return TG_ENOMEM;
	core->cls = cls;
	ring = realloc(core->ring, (size_t)cap * sizeof(*ring));
	if (!ring)
		return TG_ENOMEM;
	core->ring = ring;
	core->cls_cap = cap;
	return 0;
}

int tokens_core_add_class(struct tokens_core *core, const char *name, double weight)
{
	struct tokens_class *c;

	if (!name || !*name || strlen(name) >= TOKENS_NAME_MAX || !(weight > 0) ||
	    tokens_core_find_class(core, name) >= 0)
		return TG_EINVAL;
	if (classes_grow(core) < 0)
		return TG_ENOMEM;
	c = &core->cls[core->ncls];
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->weight = weight;
	return core->ncls++;
}

int tokens_core_set_fresh(struct tokens_core *core, int cls, bool fresh)
{
	if (cls < 0 || cls >= core->ncls)
		return TG_EINVAL;
	core->cls[cls].fresh = fresh;
	return TG_OK;
}

int tokens_core_set_weight(struct tokens_core *core, int cls, double weight)
{
	if (cls < 0 || cls >= core->ncls || !(weight > 0))
		return TG_EINVAL;
	/* Read at each DRR visit: the next visit uses it. */
	core->cls[cls].weight = weight;
	return TG_OK;
}

int tokens_core_find_class(const struct tokens_core *core, const char *name)
{
	for (int i = 0; i < core->ncls; i++)
		if (strcmp(core->cls[i].name, name) == 0)
			return i;
	return TG_ENOTFOUND;
}

/* ------------------------------------------------------------ DRR ring */

/* A class that becomes backlogged joins at the end of the current round:
 * just before the class being visited. */
static void ring_add(struct tokens_core *core, int ci)
{
	struct tokens_class *c = &core->cls[ci];

	if (c->in_ring)
		return;
	c->in_ring = true;
	if (core->nring == 0) {
		core->ring[0] = ci;
		core->nring = 1;
		core->cursor = 0;
		core->cursor_visited = false;
		return;
	}
	memmove(&core->ring[core->cursor + 1], &core->ring[core->cursor],
	        (size_t)(core->nring - core->cursor) * sizeof(core->ring[0]));
	core->ring[core->cursor] = ci;
	core->cursor++;
	core->nring++;
}

static void ring_remove(struct tokens_core *core, int ci)
{
	int pos;

	if (!core->cls[ci].in_ring)
		return;
	core->cls[ci].in_ring = false;
	for (pos = 0; pos < core->nring && core->ring[pos] != ci; pos++)
		;
	memmove(&core->ring[pos], &core->ring[pos + 1],
	        (size_t)(core->nring - pos - 1) * sizeof(core->ring[0]));
	core->nring--;
	if (pos < core->cursor)
		core->cursor--;
	else if (pos == core->cursor)
		core->cursor_visited = false;
	if (core->cursor >= core->nring)
		core->cursor = 0;
}

static void fifo_push(struct tokens_core *core, struct tokens_ticket *t, bool front)
{
	struct tokens_class *c = &core->cls[t->cls];

	t->prev = t->next = NULL;
	if (!c->first) {
		c->first = c->last = t;
	} else if (front) {
		t->next = c->first;
		c->first->prev = t;
		c->first = t;
	} else {
		t->prev = c->last;
		c->last->next = t;
		c->last = t;
	}
	c->queued++;
	ring_add(core, t->cls);
}

/* Standard DRR: a class whose queue empties loses its credit. */
static void fifo_remove(struct tokens_core *core, struct tokens_ticket *t)
{
	struct tokens_class *c = &core->cls[t->cls];

	if (t->prev)
		t->prev->next = t->next;
	else
		c->first = t->next;
	if (t->next)
		t->next->prev = t->prev;
	else
		c->last = t->prev;
	t->prev = t->next = NULL;
	c->queued--;
	if (c->queued == 0) {
		c->dc = 0;
		ring_remove(core, t->cls);
	}
}

/*
 * Deficit round robin, in closed form. Each visit gives a class `weight`
 * tokens of credit (a fine quantum, so interleaving follows the weights
 * closely); a class is chosen at the first visit where its credit covers
 * its first call. Instead of looping over visits, compute for each class
 * the global step of that visit and take the earliest, then credit every
 * class with the visits it got before it.
 */
static struct tokens_ticket *drr_pick(struct tokens_core *core)
{
	int n = core->nring, best_p = -1;
	int64_t best_step = INT64_MAX;
	struct tokens_class *c;
	struct tokens_ticket *t;

	if (n == 0)
		return NULL;
	for (int p = 0; p < n; p++) {
		c = &core->cls[core->ring[(core->cursor + p) % n]];
		t = c->first;
		double cost = learn_cost(c, t->kind, t->units, t->declared);
		double need = cost - c->dc;
		double vd = need <= EPS ? 0 : ceil(need / c->weight - EPS);
		int64_t v = vd > 1e12 ? (int64_t)1e12 : (int64_t)vd;
		int64_t step;

		if (p == 0 && core->cursor_visited) {
			step = v * n;
		} else {
			if (v < 1)
				v = 1;
			step = (v - 1) * n + p;
		}
		if (step < best_step) {
			best_step = step;
			best_p = p;
		}
	}
	for (int p = 0; p < n; p++) {
		int64_t visits;

		c = &core->cls[core->ring[(core->cursor + p) % n]];
		if (p == 0 && core->cursor_visited)
			visits = best_step / n;
		else
			visits = best_step >= p ? (best_step - p) / n + 1 : 0;
		c->dc += (double)visits * c->weight;
	}
	core->cursor = (core->cursor + best_p) % n;
	core->cursor_visited = true;
	c = &core->cls[core->ring[core->cursor]];
	t = c->first;
	t->cost = learn_cost(c, t->kind, t->units, t->declared);
	c->dc -= t->cost;
	t->charged = true;
	t->state = TICKET_HEAD;
	return t;
}

/* ------------------------------------------------------------ estimate */

static int64_t ticks_at(const struct tokens_core *core, int64_t now)
{
	if (now < core->next_tick)
		return 0;
	return (now - core->next_tick) / core->cfg.minute_ms + 1;
}

static double unconfirmed_sum(const struct tokens_core *core)
{
	double s = 0;

	for (int i = 0; i < core->nunconf; i++)
		s += core->unconf[i].cost;
	return s;
}

static double rate_eff(const struct tokens_core *core, int64_t now)
{
	return core->rate - outside_per_min(core, now);
}

static double predicted(const struct tokens_core *core, int64_t now)
{
	double p = core->base_left + (double)ticks_at(core, now) * rate_eff(core, now);

	return p < core->cap ? p : core->cap;
}

bool tokens_core_est(const struct tokens_core *core, int64_t now, double *est)
{
	if (!core->have_reading)
		return false;
	*est = predicted(core, now) - core->in_flight - unconfirmed_sum(core);
	return true;
}

/* Every target is at most the cap, so it is reachable once the calls in
 * flight are reconciled. */
double core_target(const struct tokens_core *core, double cost, int64_t now)
{
	const struct tokens_config *cfg = &core->cfg;
	double t;

	if (cfg->policy == TOKENS_POLICY_DEFICIT) {
		t = cfg->deficit_threshold;
		if (cost - cfg->deepest_deficit + cfg->margin > t)
			t = cost - cfg->deepest_deficit + cfg->margin;
	} else {
		t = (cost < core->cap - cfg->reserve ? cost : core->cap - cfg->reserve) + cfg->margin;
	}
	/* Leave room for a consumer we cannot see, as large as its largest
	 * bite in the last hour (at most a tenth of the bucket). */
	if (now - core->outside_burst_ms <= TOKENS_MINUTES * core->cfg.minute_ms)
		t += core->outside_burst < core->cap / 10 ? core->outside_burst : core->cap / 10;
	if (t > core->cap)
		t = core->cap;
	return t;
}

/* When est reaches target if nothing else happens; -1 when it cannot
 * before a call in flight completes (or the rate is zero). */
int64_t core_eta(const struct tokens_core *core, double target, int64_t now)
{
	double sub = core->in_flight + unconfirmed_sum(core);
	double need = target + sub, r = rate_eff(core, now);
	double kd;

	if (need < sub + EPS)
		need = sub + EPS;
	if (predicted(core, now) >= need)
		return now;
	if (need > core->cap + EPS || r <= EPS)
		return -1;
	kd = ceil((need - core->base_left) / r - EPS);
	if (kd < 1)
		kd = 1;
	int64_t at = tokens_ms_after(core->next_tick, kd - 1, core->cfg.minute_ms);
	return at > now ? at : now;
}

/* ------------------------------------------------------------ submit */

int tokens_core_submit(struct tokens_core *core, int cls, const char *kind, int64_t units, double declared,
                       int64_t now, struct tokens_ticket **out, char **errmsg)
{
	struct tokens_class *c;
	struct tokens_ticket *t;
	struct learn_kind *lk;
	double cost;

	if (cls < 0 || cls >= core->ncls || !kind || units < 0 || !(declared >= 0)) {
		errmsg_set(errmsg, 0, "token scheduler: bad call (class %d, units %lld, estimate %g)", cls,
		           (long long)units, declared);
		return TG_EINVAL;
	}
	c = &core->cls[cls];
	lk = learn_kind_get(c, kind, true);
	int ki = lk ? (int)(lk - c->kinds) : -1;
	cost = learn_cost(c, ki, units, declared);
	if (core->have_reading) {
		double limit = core->cap - core->cfg.reserve + core->cfg.deepest_deficit;

		if (cost > limit + EPS) {
			errmsg_set(errmsg, 0, "a %s call of %lld units is estimated at %.0f tokens, more than the "
			           "bucket can ever "
			           "fund (%.0f = cap %.0f - reserve %.0f + deepest deficit %.0f): split it "
			           "into calls "
			           "of at most %.0f tokens",
			           kind, (long long)units, cost, limit, core->cap, core->cfg.reserve,
			           core->cfg.deepest_deficit, limit);
			return TG_EOVERSIZE;
		}
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		errmsg_set(errmsg, 0, "token scheduler: out of memory");
		return TG_ENOMEM;
	}
	t->cls = cls;
	t->kind = ki;
	t->units = units;
	t->declared = declared;
	t->cost = cost;
	t->state = TICKET_QUEUED;
	t->submit_ms = now;
	fifo_push(core, t, false);
	*out = t;
	return 0;
}

/* ------------------------------------------------------------ poll */

static void record_wait(struct tokens_class *c, int64_t waited_ms)
{
	double s = (double)waited_ms / 1000.0;
	int b = 0;

	while (b < TOKENS_WAIT_BUCKETS - 1 && s >= tokens_wait_bucket_s[b])
		b++;
	c->wait_hist[b]++;
	c->wait_sum_s += s;
	if (s > c->wait_max_s)
		c->wait_max_s = s;
}

static void dispatch(struct tokens_core *core, struct tokens_ticket *t, int64_t now)
{
	struct tokens_class *c = &core->cls[t->cls];

	if (core->head == t)
		core->head = NULL;
	fifo_remove(core, t);
	t->state = TICKET_IN_FLIGHT;
	t->next = core->flight;
	if (core->flight)
		core->flight->prev = t;
	core->flight = t;
	t->dispatch_ms = now;
	core->in_flight += t->cost;
	core->n_in_flight++;
	c->in_flight++;
	record_wait(c, now - t->submit_ms);
}

static bool need_sync(struct tokens_core *core, int64_t now)
{
	if (!core->have_reading)
		return true;
	return core->head && core->n_in_flight == 0 &&
	       now - core->base_local >= (RESYNC_MINUTES * core->cfg.minute_ms) &&
	       now - core->head->submit_ms >= (RESYNC_MINUTES * core->cfg.minute_ms) &&
	       now - core->last_sync_request >= (RESYNC_MINUTES * core->cfg.minute_ms);
}

/*
 * The freshness rule: a call of a latency-sensitive class that may go while
 * the head waits (see tokens_core_set_fresh). NULL when none. It must be
 * small, its class must have at most one minute of refill queued (a task
 * that keeps a longer queue is backlogged, and waits its turn), and it must be funded
 * now: est stays above the margin after it, so no call is refused and the
 * deficit is not deepened. What the passing calls spend while one head waits
 * is at most that head's cost, so the head waits at most as long again as
 * without them: its wait stays bounded.
 */
static struct tokens_ticket *fresh_pick(struct tokens_core *core, double est, int64_t now)
{
	struct tokens_ticket *head = core->head;

	if (now < core->hold_until || core->head_bypassed >= head->cost)
		return NULL;
	for (int i = 0; i < core->nring; i++) {
		struct tokens_class *c = &core->cls[core->ring[i]];
		struct tokens_ticket *t = c->first;
		double cost;

		if (!c->fresh || !t || t->state != TICKET_QUEUED || t->cls == head->cls)
			continue;
		/* A class whose queue holds more than a minute of refill is
		 * backlogged: it waits its turn. */
		double queued = 0;
		for (const struct tokens_ticket *q = t; q; q = q->next)
			queued += learn_cost(c, q->kind, q->units, q->declared);
		if (queued > core->rate)
			continue;
		cost = learn_cost(c, t->kind, t->units, t->declared);
		if (cost > core->rate || est - cost < core->cfg.margin + EPS ||
		    core->head_bypassed + cost > head->cost)
			continue;
		t->cost = cost;
		c->dc -= cost;
		t->charged = true;
		c->bypassed++;
		core->head_bypassed += cost;
		return t;
	}
	return NULL;
}

void tokens_core_poll(struct tokens_core *core, int64_t now, struct tokens_poll *out)
{
	struct tokens_ticket *t;
	double cost, target, est;
	int64_t eta;
	bool alone;

	out->ticket = NULL;
	out->until_ms = INT64_MAX;
	if (need_sync(core, now)) {
		if (core->sync_outstanding) {
			out->action = TOKENS_WAIT;
			out->until_ms = now + 1000;
			return;
		}
		if (now >= core->sync_not_before) {
			core->sync_outstanding = true;
			core->last_sync_request = now;
			out->action = TOKENS_SYNC;
			return;
		}
		if (!core->have_reading) {
			out->action = TOKENS_WAIT;
			out->until_ms = core->sync_not_before;
			return;
		}
	}
	if (!core->head) {
		core->head = drr_pick(core);
		core->head_bypassed = 0;
	}
	t = core->head;
	if (!t) {
		out->action = TOKENS_IDLE;
		return;
	}
	/* A cost learned while the head waited raises its target. */
	cost = learn_cost(&core->cls[t->cls], t->kind, t->units, t->declared);
	if (cost > t->cost)
		t->cost = cost;
	target = core_target(core, t->cost, now);
	tokens_core_est(core, now, &est);
	/* A call that may take the balance to zero or below goes alone: a call
	 * still on the wire could otherwise reach the server after it and be
	 * refused. */
	alone = est - t->cost <= EPS;
	if (now >= core->hold_until && est >= target - EPS && est > EPS &&
	    (!alone || core->n_in_flight == 0)) {
		dispatch(core, t, now);
		out->action = TOKENS_DISPATCH;
		out->ticket = t;
		return;
	}
	eta = core_eta(core, target, now);
	{
		struct tokens_ticket *f = fresh_pick(core, est, now);

		if (f) {
			dispatch(core, f, now);
			out->action = TOKENS_DISPATCH;
			out->ticket = f;
			return;
		}
	}
	out->action = TOKENS_WAIT;
	/* Waiting for calls on the wire to answer: their completion polls
	 * again. */
	if (eta >= 0 && eta <= now && alone && core->n_in_flight > 0)
		eta = -1;
	out->until_ms = eta < 0 ? now + core->cfg.minute_ms : eta;
	if (out->until_ms < core->hold_until)
		out->until_ms = core->hold_until;
	if (!t->wait_logged) {
		t->wait_logged = true;
		log_info(
		    core->cls[t->cls].name,
		    "waiting for tokens: %s call, cost %.0f, target %.0f, estimate %.0f, runs in %s%llds",
		    t->kind >= 0 ? core->cls[t->cls].kinds[t->kind].name : "?", t->cost, target, est,
		    eta < 0 ? "> " : "", (long long)((out->until_ms - now + 999) / 1000));
	}
}

/* ------------------------------------------------------------ reconcile */

static bool envelope_empty(const struct tokens_envelope *e)
{
	return e->tokens_left == 0 && e->refill_in_ms == 0 && e->refill_rate == 0 &&
	       e->tokens_consumed == 0 && e->token_flow_reduction == 0;
}

/*
 * Take a reading if it is one and not older than the last. dispatch_ms is
 * when the call that produced it was sent (now for /token): calls that
 * ended unconfirmed before it are covered by it. quiet: nothing else was
 * charged since the last reading, so a shortfall against the prediction is
 * someone else's consumption.
 */
static bool apply_reading(struct tokens_core *core, const struct tokens_envelope *env, int64_t now,
                          int64_t dispatch_ms, bool quiet)
{
	double rate = (double)env->refill_rate - env->token_flow_reduction;
	int i, j;

	if (envelope_empty(env))
		return false;
	/* Replies are ordered by the server's clock. Two readings of the same
	 * millisecond cannot be ordered: the lower one may include a charge
	 * the other does not, so keep the lower. */
	if (core->have_reading &&
	    (env->timestamp_ms < core->last_ts ||
	     (env->timestamp_ms == core->last_ts && env->tokens_left >= core->last_left)))
		return false;
	if (rate < 0)
		rate = 0;
	if (core->have_reading) {
		double raw = core->base_left + (double)ticks_at(core, now) * core->rate;
		double expected = (raw < core->cap ? raw : core->cap) - (double)env->tokens_consumed;

		if (raw - (double)env->tokens_consumed > core->cap && quiet)
			core->wasted += raw - (double)env->tokens_consumed - core->cap;
		/* Without anyone else on the key, the balance is at least the
		 * prediction minus this call's cost and everything that may have
		 * been charged since (calls on the wire, unconfirmed ones). Less
		 * than that was taken by someone we cannot see. */
		expected -= core->in_flight + unconfirmed_sum(core);
		if (expected - (double)env->tokens_left >= 1)
			outside_record(core, expected - (double)env->tokens_left, now);
	} else {
		core->first_reading_local = now;
	}
	core->have_reading = true;
	core->last_ts = env->timestamp_ms;
	core->base_local = now;
	core->base_left = (double)env->tokens_left;
	core->last_left = env->tokens_left;
	core->next_tick =
	    now + (env->refill_in_ms > 0 && env->refill_in_ms <= core->cfg.minute_ms ? env->refill_in_ms
	                                                                             : core->cfg.minute_ms);
	core->rate = rate;
	core->cap = core->cfg.cap_minutes * rate;
	core->completions_since_base = 0;
	if (env->tokens_left < core->deepest_seen)
		core->deepest_seen = env->tokens_left;
	for (i = j = 0; i < core->nunconf; i++)
		if (core->unconf[i].ended_ms > dispatch_ms)
			core->unconf[j++] = core->unconf[i];
	core->nunconf = j;
	return true;
}

static void leave_flight(struct tokens_core *core, struct tokens_ticket *t)
{
	if (t->prev)
		t->prev->next = t->next;
	else
		core->flight = t->next;
	if (t->next)
		t->next->prev = t->prev;
	t->prev = t->next = NULL;
	core->in_flight -= t->cost;
	if (core->in_flight < EPS)
		core->in_flight = 0;
	core->n_in_flight--;
	core->cls[t->cls].in_flight--;
}

static bool quiet_since_base(const struct tokens_core *core)
{
	return core->n_in_flight == 0 && core->completions_since_base == 0 && core->nunconf == 0;
}

void tokens_core_complete(struct tokens_core *core, struct tokens_ticket *t,
                          const struct tokens_envelope *env, int64_t now)
{
	struct tokens_class *c = &core->cls[t->cls];

	if (envelope_empty(env)) {
		tokens_core_complete_unknown(core, t, now);
		return;
	}
	leave_flight(core, t);
	if (!apply_reading(core, env, now, t->dispatch_ms, quiet_since_base(core)))
		core->completions_since_base++;
	c->calls_ok++;
	c->consumed += (double)env->tokens_consumed;
	c->cost_estimated += t->cost;
	c->cost_actual += (double)env->tokens_consumed;
	used_record(core, (double)env->tokens_consumed, now);
	learn_record(c, t->kind, t->units, (double)env->tokens_consumed);
	free(t);
}

void tokens_core_complete_429(struct tokens_core *core, struct tokens_ticket *t,
                              const struct tokens_envelope *env, int64_t now)
{
	struct tokens_class *c = &core->cls[t->cls];
	struct tokens_ticket *h = core->head;

	leave_flight(core, t);
	if (!apply_reading(core, env, now, t->dispatch_ms, quiet_since_base(core)))
		core->completions_since_base++;
	core->n429++;
	c->calls_429++;
	/* The refused call is the head again: a head chosen meanwhile steps
	 * back and gets its credit back. */
	if (h) {
		h->state = TICKET_QUEUED;
		h->charged = false;
		core->cls[h->cls].dc += h->cost;
	}
	t->state = TICKET_HEAD;
	t->wait_logged = false;
	t->submit_ms = now;
	fifo_push(core, t, true);
	core->head = t;
	if (!envelope_empty(env)) {
		int64_t wake = now + (env->refill_in_ms > 0 ? env->refill_in_ms : 0);
		double r = core->rate > EPS ? core->rate : 1;
		double ticks = ceil((1.0 - (double)env->tokens_left) / r);

		wake = tokens_ms_after(wake, ticks - 1, core->cfg.minute_ms);
		core->hold_until = wake;
	}
}

/* A sent call whose outcome is unknown: its cost counts as spent until a
 * later reading says otherwise. */
static void complete_unconfirmed(struct tokens_core *core, struct tokens_ticket *t, int64_t now, bool failed)
{
	struct tokens_class *c = &core->cls[t->cls];

	leave_flight(core, t);
	core->completions_since_base++;
	if (core->nunconf < TOKENS_MAX_UNCONFIRMED) {
		core->unconf[core->nunconf].cost = t->cost;
		core->unconf[core->nunconf].ended_ms = now;
		core->nunconf++;
	} else {
		core->unconf[core->nunconf - 1].cost += t->cost;
		core->unconf[core->nunconf - 1].ended_ms = now;
	}
	if (failed)
		c->calls_error++;
	c->cost_estimated += t->cost;
	free(t);
}

void tokens_core_complete_unknown(struct tokens_core *core, struct tokens_ticket *t, int64_t now)
{
	complete_unconfirmed(core, t, now, true);
}

void tokens_core_complete_stopped(struct tokens_core *core, struct tokens_ticket *t, int64_t now)
{
	complete_unconfirmed(core, t, now, false);
}

void tokens_core_cancel(struct tokens_core *core, struct tokens_ticket *t, int64_t now)
{
	if (t->state == TICKET_IN_FLIGHT) {
		tokens_core_complete_unknown(core, t, now);
		return;
	}
	if (core->head == t) {
		core->head = NULL;
		if (t->charged)
			core->cls[t->cls].dc += t->cost;
	}
	fifo_remove(core, t);
	free(t);
}

void tokens_core_observe(struct tokens_core *core, const struct tokens_envelope *env, int64_t now)
{
	core->sync_outstanding = false;
	if (!apply_reading(core, env, now, now, quiet_since_base(core)) && !core->have_reading)
		core->sync_not_before = now + SYNC_RETRY_MS;
}

void tokens_core_sync_failed(struct tokens_core *core, int64_t now)
{
	core->sync_outstanding = false;
	core->sync_not_before = now + SYNC_RETRY_MS;
}

int64_t tokens_core_budget_hint(const struct tokens_core *core, int cls, int64_t now)
{
	double hint, fund, est;

	if (!core->have_reading)
		return 0;
	/* What the refill brings within the latency target keeps everyone's
	 * wait under it. latency_target_s is real time: so many (possibly
	 * short) minutes. */
	hint = core->rate * core->cfg.latency_target_s * 1000.0 / (double)core->cfg.minute_ms;
	/* Tokens already in the bucket beyond what the other tasks have queued
	 * delay nobody either: a well-funded bucket allows large calls even on
	 * a slow plan (one call of 100 instead of 100 calls of 1). */
	if (tokens_core_est(core, now, &est)) {
		for (int i = 0; i < core->ncls; i++) {
			if (i == cls)
				continue;
			for (const struct tokens_ticket *t = core->cls[i].first; t; t = t->next)
				est -= t->cost > 0 ? t->cost : t->declared;
		}
		if (est - core->cfg.reserve > hint)
			hint = est - core->cfg.reserve;
	}
	fund = core->cap - core->cfg.reserve;
	if (hint > fund)
		hint = fund;
	return hint < 1 ? 1 : (int64_t)floor(hint);
}

int tokens_ticket_class(const struct tokens_ticket *t)
{
	return t->cls;
}

double tokens_ticket_cost(const struct tokens_ticket *t)
{
	return t->cost;
}

int64_t tokens_ticket_units(const struct tokens_ticket *t)
{
	return t->units;
}

void *tokens_ticket_user(const struct tokens_ticket *t)
{
	return t->user;
}

void tokens_ticket_set_user(struct tokens_ticket *t, void *user)
{
	t->user = user;
}
