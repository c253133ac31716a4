/*
 * simlib.c - the token bucket model, the task models, the seed's policies
 * as baselines, and the event loop that drives the real core (simlib.h).
 */
#include "simlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "observe/log.h"

#define MIN_MS 60000
#define MAX_REQ 64
#define MAX_FIFO 128
#define RESTART_DOWN_MS 5000
#define WARMUP_MS (2 * 60 * MIN_MS)
#define SEED_THRESHOLD 80

/* Scenarios of docs/token-scheduler.md. Units cost one token each as
 * declared; actual_per_unit is what the server charges. */
const struct sim_scenario sim_scenarios[] = {
    {"A",
     "5/min; upserter 5 every minute; backfiller backlogged, 150 per call",
     5,
     0,
     0,
     0,
     0,
     0,
     2,
     {{"upserter", 1, SIM_PERIODIC, 5, 1, MIN_MS, 60}, {"backfiller", 1, SIM_BACKLOGGED, 150, 1, 0, 0}}},
    {"B",
     "as A, weights upserter 3 : backfiller 1",
     5,
     0,
     0,
     0,
     0,
     0,
     2,
     {{"upserter", 3, SIM_PERIODIC, 5, 1, MIN_MS, 60}, {"backfiller", 1, SIM_BACKLOGGED, 150, 1, 0, 0}}},
    {"C",
     "20/min; upserter 8 every minute; backfiller 150 per call",
     20,
     0,
     0,
     0,
     0,
     0,
     2,
     {{"upserter", 1, SIM_PERIODIC, 8, 1, MIN_MS, 60}, {"backfiller", 1, SIM_BACKLOGGED, 150, 1, 0, 0}}},
    {"D",
     "as C plus an unseen consumer of 8 tokens every 5 minutes (1.6/min)",
     20,
     0,
     0,
     0,
     8,
     5 * MIN_MS,
     2,
     {{"upserter", 1, SIM_PERIODIC, 8, 1, MIN_MS, 60}, {"backfiller", 1, SIM_BACKLOGGED, 150, 1, 0, 0}}},
    {"E",
     "5/min; upserter 5 every minute; backfiller call costs 400 (> cap 300)",
     5,
     0,
     0,
     0,
     0,
     0,
     2,
     {{"upserter", 1, SIM_PERIODIC, 5, 1, MIN_MS, 60}, {"backfiller", 1, SIM_BACKLOGGED, 400, 1, 0, 0}}},
    {"F",
     "as A, plan upgrade 5 -> 25/min half-way",
     5,
     25,
     0.5,
     0,
     0,
     0,
     2,
     {{"upserter", 1, SIM_PERIODIC, 5, 1, MIN_MS, 60}, {"backfiller", 1, SIM_BACKLOGGED, 150, 1, 0, 0}}},
    {"G",
     "as C, actual costs 4x the declared estimate",
     20,
     0,
     0,
     0,
     0,
     0,
     2,
     {{"upserter", 1, SIM_PERIODIC, 8, 4, MIN_MS, 60}, {"backfiller", 1, SIM_BACKLOGGED, 150, 4, 0, 0}}},
    {"H",
     "as C, restart half-way (all scheduler state lost)",
     20,
     0,
     0,
     0.5,
     0,
     0,
     2,
     {{"upserter", 1, SIM_PERIODIC, 8, 1, MIN_MS, 60}, {"backfiller", 1, SIM_BACKLOGGED, 150, 1, 0, 0}}},
};
const int sim_nscenarios = (int)(sizeof(sim_scenarios) / sizeof(sim_scenarios[0]));

static const char *const policy_names[SIM_NPOLICIES] = {"tollgate-reserve", "tollgate-deficit", "seed-legacy",
                                                        "seed-final",       "sleep-60",         "tollgate-nofresh"};

const char *sim_policy_name(enum sim_policy p)
{
	return p < SIM_NPOLICIES ? policy_names[p] : "?";
}

/* ------------------------------------------------------------ PRNG */

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static int64_t rnd_range(uint64_t *s, int64_t lo, int64_t hi)
{
	return lo + (int64_t)(splitmix64(s) % (uint64_t)(hi - lo + 1));
}

/* ------------------------------------------------------------ state */

struct call {
	int task;
	int64_t units;
	int64_t actual;
	int64_t submit_ms, front_ms;
	struct tokens_ticket *ticket;
};

enum req_kind { REQ_CALL, REQ_SYNC };

struct req {
	bool used, arrived, orphan;
	enum req_kind kind;
	struct call *call;
	int task;
	int64_t actual;
	int64_t sent_ms, arrive_ms, resp_ms;
	bool is429;
	struct tokens_envelope env;
};

struct front_rec {
	int task;
	double wait_s, cost, target;
};

struct tstate {
	const struct sim_task *cfg;
	int cls;
	int64_t next_arrival, next_submit;
	int pending; /* submitted, not answered */
	struct call *fifo[MAX_FIFO];
	int nfifo;
	bool inflight; /* baselines: one call at a time */
	int64_t units_now;
	bool answered;
	double *waits;
	size_t nwaits, capwaits;
	double max_cost;
};

struct sim {
	const struct sim_scenario *sc;
	enum sim_policy policy;
	uint64_t rng;
	int64_t now, end;
	struct tg_clock clock;
	/* server */
	int64_t balance;
	int rate;
	int64_t next_tick;
	double gen_b, waste_b;
	/* host */
	struct tokens_config cfg;
	struct tokens_core *core;
	int64_t core_wake, up_at;
	struct req reqs[MAX_REQ];
	int ntasks;
	struct tstate task[SIM_MAX_TASKS];
	int64_t outside_next;
	int64_t rate_change_ms, restart_ms;
	double min_rate;
	struct front_rec *fronts;
	size_t nfronts, capfronts;
	struct sim_result *res;
	int64_t learned_at;
	int err;
};

static int64_t sim_now(void *ctx)
{
	return ((struct sim *)ctx)->now;
}

static int64_t cap_of(int rate)
{
	return 60 * (int64_t)rate;
}

static bool is_tollgate(const struct sim *s)
{
	return s->policy == SIM_TOLLGATE_RESERVE || s->policy == SIM_TOLLGATE_DEFICIT ||
	       s->policy == SIM_TOLLGATE_NOFRESH;
}

static void push_double(double **arr, size_t *n, size_t *cap, double v)
{
	if (*n == *cap) {
		*cap = *cap ? 2 * *cap : 256;
		*arr = realloc(*arr, *cap * sizeof(double));
		if (!*arr)
			abort();
	}
	(*arr)[(*n)++] = v;
}

/* Costs are learned once every task had an answer and no call sent before
 * that is still on the wire. */
static bool all_answered(struct sim *s)
{
	if (s->learned_at == INT64_MAX) {
		for (int i = 0; i < s->ntasks; i++)
			if (!s->task[i].answered)
				return false;
		s->learned_at = s->now;
	}
	for (int i = 0; i < MAX_REQ; i++)
		if (s->reqs[i].used && s->reqs[i].kind == REQ_CALL && s->reqs[i].sent_ms < s->learned_at)
			return false;
	return true;
}

static void note_balance(struct sim *s)
{
	if (s->balance < s->res->min_balance)
		s->res->min_balance = s->balance;
	if (all_answered(s) && s->balance < s->res->min_balance_learned)
		s->res->min_balance_learned = s->balance;
}

/* ------------------------------------------------------------ server */

static bool backlogged(const struct sim *s)
{
	for (int i = 0; i < s->ntasks; i++)
		if (s->task[i].cfg->mode == SIM_BACKLOGGED || s->task[i].pending > 0)
			return true;
	return false;
}

static void server_tick(struct sim *s)
{
	int64_t cap = cap_of(s->rate), nb = s->balance + s->rate, keep;

	keep = nb > cap ? (s->balance > cap ? s->balance : cap) : nb;
	if (backlogged(s)) {
		s->gen_b += s->rate;
		s->waste_b += (double)(nb - keep);
	}
	s->balance = keep;
	s->next_tick += MIN_MS;
}

static void fill_env(struct sim *s, struct req *r, int64_t consumed)
{
	r->env.timestamp_ms = r->arrive_ms;
	r->env.tokens_left = s->balance;
	r->env.refill_in_ms = s->next_tick - r->arrive_ms;
	r->env.refill_rate = s->rate;
	r->env.token_flow_reduction = 0;
	r->env.tokens_consumed = consumed;
	r->env.processing_ms = r->resp_ms - r->arrive_ms;
}

static void server_arrive(struct sim *s, struct req *r)
{
	r->arrived = true;
	if (r->kind == REQ_SYNC) {
		fill_env(s, r, 0);
		return;
	}
	if (s->balance <= 0) {
		r->is429 = true;
		s->res->our_429++;
		if (all_answered(s))
			s->res->our_429_learned++;
		if (getenv("SIM_DEBUG"))
			fprintf(stderr, "t=%lld 429 task %d balance %lld\n", (long long)s->now, r->task,
			        (long long)s->balance);
		fill_env(s, r, 0);
		return;
	}
	s->balance -= r->actual;
	s->res->task[r->task].tokens += (double)r->actual;
	if (s->now >= WARMUP_MS)
		s->res->task[r->task].tokens_after_warmup += (double)r->actual;
	s->res->task[r->task].calls++;
	note_balance(s);
	fill_env(s, r, r->actual);
}

static struct req *new_req(struct sim *s, enum req_kind kind)
{
	for (int i = 0; i < MAX_REQ; i++) {
		struct req *r = &s->reqs[i];

		if (!r->used) {
			memset(r, 0, sizeof(*r));
			r->used = true;
			r->kind = kind;
			r->sent_ms = s->now;
			r->arrive_ms = s->now + rnd_range(&s->rng, 50, 300);
			r->resp_ms =
			    r->arrive_ms + rnd_range(&s->rng, 100, 1500) + rnd_range(&s->rng, 50, 300);
			return r;
		}
	}
	abort();
}

/* ------------------------------------------------------------ tasks */

static void fifo_pop_front(struct sim *s, struct tstate *ts)
{
	memmove(&ts->fifo[0], &ts->fifo[1], (size_t)(ts->nfifo - 1) * sizeof(ts->fifo[0]));
	ts->nfifo--;
	if (ts->nfifo > 0)
		ts->fifo[0]->front_ms = s->now;
}

static void submit(struct sim *s, int ti)
{
	struct tstate *ts = &s->task[ti];
	struct call *c;

	if (ts->nfifo >= MAX_FIFO)
		return;
	c = calloc(1, sizeof(*c));
	if (!c)
		abort();
	c->task = ti;
	c->units = ts->cfg->mode == SIM_BACKLOGGED ? ts->units_now : ts->cfg->units;
	c->submit_ms = c->front_ms = s->now;
	if (is_tollgate(s)) {
		int rc;

		for (;;) {
			rc = tokens_core_submit(s->core, ts->cls, ts->cfg->name, c->units, (double)c->units,
			                        s->now, &c->ticket, NULL);
			if (rc != TG_EOVERSIZE || c->units <= 1)
				break;
			/* What a task does with TG_EOVERSIZE: split the call. */
			c->units = (c->units + 1) / 2;
			ts->units_now = c->units;
		}
		if (rc < 0) {
			s->err = rc;
			free(c);
			return;
		}
		tokens_ticket_set_user(c->ticket, c);
	}
	c->actual = (int64_t)llround((double)c->units * ts->cfg->actual_per_unit);
	ts->fifo[ts->nfifo++] = c;
	ts->pending++;
}

static void send_call(struct sim *s, struct call *c, double cost, double target)
{
	struct tstate *ts = &s->task[c->task];
	struct req *r = new_req(s, REQ_CALL);

	r->call = c;
	r->task = c->task;
	r->actual = c->actual;
	push_double(&ts->waits, &ts->nwaits, &ts->capwaits, (double)(s->now - c->submit_ms) / 1000.0);
	if (cost > ts->max_cost)
		ts->max_cost = cost;
	if (is_tollgate(s)) {
		if (s->nfronts == s->capfronts) {
			s->capfronts = s->capfronts ? 2 * s->capfronts : 256;
			s->fronts = realloc(s->fronts, s->capfronts * sizeof(*s->fronts));
			if (!s->fronts)
				abort();
		}
		s->fronts[s->nfronts++] =
		    (struct front_rec){c->task, (double)(s->now - c->front_ms) / 1000.0, cost, target};
	}
	if (ts->nfifo > 0 && ts->fifo[0] == c)
		fifo_pop_front(s, ts);
}

static void task_answered(struct sim *s, struct tstate *ts)
{
	ts->pending--;
	ts->inflight = false;
	ts->answered = true;
	if (ts->cfg->mode == SIM_BACKLOGGED)
		ts->next_submit = s->now + (s->policy == SIM_SLEEP_60 ? MIN_MS : 0);
}

/* ------------------------------------------------------------ host side */

static void core_up(struct sim *s)
{
	if (tokens_core_new(&s->cfg, &s->core, NULL) < 0)
		abort();
	for (int i = 0; i < s->ntasks; i++) {
		s->task[i].cls = tokens_core_add_class(s->core, s->task[i].cfg->name, s->task[i].cfg->weight);
		/* Periodic tasks are the daemon's interval tasks: latency-sensitive. */
		if (s->task[i].cfg->mode == SIM_PERIODIC && s->policy != SIM_TOLLGATE_NOFRESH)
			tokens_core_set_fresh(s->core, s->task[i].cls, true);
	}
	s->core_wake = s->now;
}

static void response(struct sim *s, struct req *r)
{
	struct call *c = r->call;

	r->used = false;
	if (r->orphan)
		return;
	if (r->kind == REQ_SYNC) {
		tokens_core_observe(s->core, &r->env, tg_clock_now(&s->clock));
		s->core_wake = s->now;
		return;
	}
	if (is_tollgate(s)) {
		s->core_wake = s->now;
		if (r->is429) {
			tokens_core_complete_429(s->core, c->ticket, &r->env, tg_clock_now(&s->clock));
			/* The call is queued again, first of its task. */
			memmove(&s->task[c->task].fifo[1], &s->task[c->task].fifo[0],
			        (size_t)s->task[c->task].nfifo * sizeof(c));
			s->task[c->task].fifo[0] = c;
			s->task[c->task].nfifo++;
			return;
		}
		tokens_core_complete(s->core, c->ticket, &r->env, tg_clock_now(&s->clock));
	} else if (r->is429) {
		/* The seed's tasks retry a refused call at their next check. */
		s->task[c->task].inflight = false;
		memmove(&s->task[c->task].fifo[1], &s->task[c->task].fifo[0],
		        (size_t)s->task[c->task].nfifo * sizeof(c));
		s->task[c->task].fifo[0] = c;
		s->task[c->task].nfifo++;
		return;
	}
	task_answered(s, &s->task[c->task]);
	free(c);
}

static void host_step(struct sim *s)
{
	struct tokens_poll p;

	if (!s->core)
		return;
	for (;;) {
		tokens_core_poll(s->core, tg_clock_now(&s->clock), &p);
		if (p.action == TOKENS_DISPATCH) {
			struct call *c = tokens_ticket_user(p.ticket);
			double cost = tokens_ticket_cost(p.ticket);
			double target =
			    s->policy == SIM_TOLLGATE_DEFICIT
			        ? fmax(SEED_THRESHOLD, cost - s->cfg.deepest_deficit + s->cfg.margin)
			        : cost + s->cfg.margin;

			if (getenv("SIM_DEBUG")) {
				double est = 0;

				tokens_core_est(s->core, s->now, &est);
				fprintf(stderr, "t=%lld send task %d cost %.0f est-after %.1f balance %lld\n",
				        (long long)s->now, c->task, cost, est, (long long)s->balance);
			}
			send_call(s, c, cost, target);
			continue;
		}
		if (p.action == TOKENS_SYNC) {
			new_req(s, REQ_SYNC);
			continue;
		}
		s->core_wake = p.action == TOKENS_WAIT ? p.until_ms : INT64_MAX;
		if (s->core_wake <= s->now)
			s->core_wake = s->now + 1;
		return;
	}
}

/* The seed: every task looks at the balance on its own and sends when its
 * threshold is met; nobody queues. Generous to it: it sees the true
 * balance. */
static void seed_step(struct sim *s)
{
	for (int i = 0; i < s->ntasks; i++) {
		struct tstate *ts = &s->task[i];
		struct call *c;
		int64_t gate;

		if (ts->nfifo == 0 || ts->inflight)
			continue;
		c = ts->fifo[0];
		gate = s->policy == SIM_SEED_LEGACY ? SEED_THRESHOLD + c->units : SEED_THRESHOLD;
		if (s->balance < gate)
			continue;
		ts->inflight = true;
		send_call(s, c, (double)c->units, (double)gate);
	}
}

static void restart(struct sim *s)
{
	/* The process dies: what it had sent still reaches the server. */
	for (int i = 0; i < MAX_REQ; i++) {
		struct req *r = &s->reqs[i];

		if (!r->used || r->orphan)
			continue;
		r->orphan = true;
		if (r->kind == REQ_CALL) {
			if (s->core)
				tokens_core_complete_unknown(s->core, r->call->ticket, s->now);
			free(r->call);
		}
		r->call = NULL;
	}
	tokens_core_free(s->core);
	s->core = NULL;
	for (int i = 0; i < s->ntasks; i++) {
		struct tstate *ts = &s->task[i];

		for (int j = 0; j < ts->nfifo; j++)
			free(ts->fifo[j]);
		ts->nfifo = 0;
		ts->pending = 0;
		ts->inflight = false;
		if (ts->cfg->mode == SIM_BACKLOGGED)
			ts->next_submit = s->now + RESTART_DOWN_MS;
	}
	if (!is_tollgate(s))
		return;
	s->up_at = s->now + RESTART_DOWN_MS;
	s->core_wake = INT64_MAX;
}

/* ------------------------------------------------------------ results */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void finish(struct sim *s)
{
	struct sim_result *res = s->res;
	double r = s->min_rate, cmax = 0, d = res->min_balance < 0 ? (double)-res->min_balance : 0;

	if (s->sc->outside_period_ms)
		r -= (double)s->sc->outside_cost * MIN_MS / (double)s->sc->outside_period_ms;
	res->utilization = s->gen_b > 0 ? 1.0 - s->waste_b / s->gen_b : 1.0;
	res->minutes = (double)s->end / MIN_MS;
	for (int i = 0; i < s->ntasks; i++)
		if (s->task[i].max_cost > cmax)
			cmax = s->task[i].max_cost;
	for (int i = 0; i < s->ntasks; i++) {
		struct tstate *ts = &s->task[i];
		struct sim_task_result *tr = &res->task[i];

		if (ts->nwaits) {
			qsort(ts->waits, ts->nwaits, sizeof(double), cmp_double);
			tr->wait_p50_s = ts->waits[(ts->nwaits - 1) / 2];
			tr->wait_p95_s = ts->waits[(ts->nwaits - 1) * 95 / 100];
			tr->wait_max_s = ts->waits[ts->nwaits - 1];
		}
		free(ts->waits);
		for (int j = 0; j < ts->nfifo; j++)
			free(ts->fifo[j]);
	}
	for (size_t k = 0; k < s->nfronts; k++) {
		struct front_rec *f = &s->fronts[k];
		const struct sim_task *ti = &s->sc->tasks[f->task];
		double others = 0, bound;

		for (int j = 0; j < s->ntasks; j++)
			if (j != f->task)
				others += (ceil(f->cost / ti->weight) + 1) * s->sc->tasks[j].weight +
				          2 * s->task[j].max_cost;
		bound = 60.0 * (others + cmax + f->target + d) / r + 180.0;
		if (f->wait_s > res->task[f->task].front_max_s)
			res->task[f->task].front_max_s = f->wait_s;
		if (bound > res->task[f->task].bound_s)
			res->task[f->task].bound_s = bound;
		if (f->wait_s > bound)
			res->task[f->task].bound_violations++;
	}
	free(s->fronts);
	for (int i = 0; i < MAX_REQ; i++)
		if (s->reqs[i].used && !s->reqs[i].orphan && s->reqs[i].kind == REQ_CALL)
			free(s->reqs[i].call);
	tokens_core_free(s->core);
}

/* ------------------------------------------------------------ loop */

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

int sim_run(const struct sim_scenario *sc, enum sim_policy policy, uint64_t seed, double hours,
            struct sim_result *out)
{
	struct sim *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return TG_ENOMEM;
	memset(out, 0, sizeof(*out));
	s->sc = sc;
	s->policy = policy;
	s->rng = seed * 0x2545F4914F6CDD1Dull + 1;
	s->end = (int64_t)(hours * 60 * MIN_MS);
	s->clock = (struct tg_clock){sim_now, s};
	s->res = out;
	s->rate = sc->rate;
	s->min_rate = sc->rate2 && sc->rate2 < sc->rate ? sc->rate2 : sc->rate;
	s->balance = rnd_range(&s->rng, 0, cap_of(sc->rate) / 2);
	s->next_tick = rnd_range(&s->rng, 1, MIN_MS);
	out->min_balance = out->min_balance_learned = s->balance;
	s->rate_change_ms = sc->rate2 ? (int64_t)(sc->rate_change_at * (double)s->end) : INT64_MAX;
	s->restart_ms = sc->restart_at > 0 ? (int64_t)(sc->restart_at * (double)s->end) : INT64_MAX;
	s->outside_next = sc->outside_period_ms ? rnd_range(&s->rng, 0, sc->outside_period_ms) : INT64_MAX;
	s->up_at = INT64_MAX;
	s->core_wake = INT64_MAX;
	s->learned_at = INT64_MAX;
	tokens_config_default(&s->cfg);
	if (policy == SIM_TOLLGATE_DEFICIT)
		s->cfg.policy = TOKENS_POLICY_DEFICIT;
	s->ntasks = sc->ntasks;
	for (int i = 0; i < sc->ntasks; i++) {
		struct tstate *ts = &s->task[i];

		ts->cfg = &sc->tasks[i];
		ts->units_now = ts->cfg->units;
		ts->next_arrival =
		    ts->cfg->mode == SIM_PERIODIC ? rnd_range(&s->rng, 0, ts->cfg->period_ms) : INT64_MAX;
		ts->next_submit = ts->cfg->mode == SIM_BACKLOGGED ? 0 : INT64_MAX;
	}
	if (is_tollgate(s))
		core_up(s);

	while (!s->err) {
		int64_t t = s->end;

		t = min64(t, s->next_tick);
		t = min64(t, s->rate_change_ms);
		t = min64(t, s->restart_ms);
		t = min64(t, s->up_at);
		t = min64(t, s->outside_next);
		t = min64(t, s->core_wake);
		for (int i = 0; i < MAX_REQ; i++)
			if (s->reqs[i].used)
				t = min64(t, s->reqs[i].arrived ? s->reqs[i].resp_ms : s->reqs[i].arrive_ms);
		for (int i = 0; i < s->ntasks; i++)
			t = min64(t, min64(s->task[i].next_arrival, s->task[i].next_submit));
		if (t >= s->end)
			break;
		s->now = t;

		while (s->next_tick <= s->now)
			server_tick(s);
		if (s->rate_change_ms <= s->now) {
			s->rate = sc->rate2;
			s->rate_change_ms = INT64_MAX;
		}
		/* Arrivals, then answers, each in time order. */
		for (;;) {
			struct req *first = NULL;

			for (int i = 0; i < MAX_REQ; i++) {
				struct req *r = &s->reqs[i];

				if (r->used && !r->arrived && r->arrive_ms <= s->now &&
				    (!first || r->arrive_ms < first->arrive_ms))
					first = r;
			}
			if (!first)
				break;
			server_arrive(s, first);
		}
		if (s->outside_next <= s->now) {
			if (s->balance > 0) {
				s->balance -= sc->outside_cost;
				note_balance(s);
				s->outside_next = s->now + sc->outside_period_ms;
			} else {
				s->res->other_429++;
				s->outside_next = s->now + MIN_MS;
			}
		}
		for (;;) {
			struct req *first = NULL;

			for (int i = 0; i < MAX_REQ; i++) {
				struct req *r = &s->reqs[i];

				if (r->used && r->arrived && r->resp_ms <= s->now &&
				    (!first || r->resp_ms < first->resp_ms))
					first = r;
			}
			if (!first)
				break;
			response(s, first);
		}
		if (s->restart_ms <= s->now) {
			s->restart_ms = INT64_MAX;
			restart(s);
		}
		if (s->up_at <= s->now) {
			s->up_at = INT64_MAX;
			if (is_tollgate(s))
				core_up(s);
		}
		for (int i = 0; i < s->ntasks; i++) {
			struct tstate *ts = &s->task[i];

			if (ts->next_arrival <= s->now) {
				ts->next_arrival += ts->cfg->period_ms;
				if (ts->pending < ts->cfg->max_pending && (s->core || !is_tollgate(s)))
					submit(s, i);
				else
					s->res->task[i].missed++;
			}
			if (ts->next_submit <= s->now && (s->core || !is_tollgate(s))) {
				ts->next_submit = INT64_MAX;
				submit(s, i);
			}
		}
		if (is_tollgate(s))
			host_step(s);
		else
			seed_step(s);
		if (s->core) {
			double est;

			if (tokens_core_est(s->core, s->now, &est) && est > (double)s->balance + 1e-6) {
				out->est_above_truth++;
				if (getenv("SIM_DEBUG"))
					fprintf(stderr,
					        "t=%lld est %.1f > balance %lld (next server tick %lld)\n",
					        (long long)s->now, est, (long long)s->balance,
					        (long long)s->next_tick);
				if (all_answered(s))
					out->est_above_truth_learned++;
			}
		}
	}
	rc = s->err;
	finish(s);
	free(s);
	return rc;
}
