/*
 * simlib.h - the token scheduler on virtual time.
 *
 * A small model of Keepa's token bucket (balance, one refill chunk per
 * minute at a random phase, a 60-minute cap, the deficit rule, 429 at a
 * balance <= 0 charging nothing, latency, actual costs that differ from the
 * declared ones, an optional consumer outside the host, a plan change, a
 * restart that loses all scheduler state) drives the real scheduler core
 * (host/tokens/core.c) through an injected virtual clock, or one of the
 * seed's policies as baselines. A run is deterministic for a seed.
 *
 * The wait bound checked by the property tests (front wait: from the moment
 * a call is the first of its task's queue until it is sent):
 *
 *   bound_i = 60 s * (sum_{j != i} ((ceil(c_i / w_i) + 1) * w_j + 2 * C_j)
 *                     + C_max + T_i + D) / r  +  180 s
 *
 * c_i, w_i: the call's cost and its task's weight; C_j: the largest call
 * cost of task j; T_i: the call's target (c_i + margin, or the deficit
 * threshold); D: the deepest deficit reached; r: the smallest net refill
 * rate of the run (minus the outside consumer). Why: deficit round robin
 * gives task j at most (visits of i + 1) * w_j credit while i's call is the
 * first of its queue, plus the credit it held before (< C_j) and one call in
 * flight (C_j); a head chosen before (C_max) may be funded first; then the
 * call itself needs its target, from a balance as low as -D. Tokens arrive
 * at r per minute and none are lost to the cap while something waits; 180 s
 * cover the refill phase and the response latencies.
 */
#ifndef TG_TESTS_SIMLIB_H
#define TG_TESTS_SIMLIB_H

#include <stdbool.h>
#include <stdint.h>

#include "tokens/tokens.h"

#define SIM_MAX_TASKS 4

enum sim_task_mode {
	SIM_PERIODIC,   /* one call every period_ms, at most max_pending outstanding */
	SIM_BACKLOGGED, /* always has the next call: sends it when the last one answered */
};

struct sim_task {
	const char *name;
	double weight;
	enum sim_task_mode mode;
	int64_t units;          /* per call; declared cost = units (1 token per unit) */
	double actual_per_unit; /* what the server charges per unit */
	int64_t period_ms;
	int max_pending;
};

struct sim_scenario {
	const char *name;
	const char *what;
	int rate;                  /* refillRate at start */
	int rate2;                 /* after rate_change_at (0: no change) */
	double rate_change_at;     /* fraction of the run */
	double restart_at;         /* fraction of the run (0: none) */
	int outside_cost;          /* a consumer outside the host: this many tokens ... */
	int64_t outside_period_ms; /* ... this often (0: none) */
	int ntasks;
	struct sim_task tasks[SIM_MAX_TASKS];
};

enum sim_policy {
	SIM_TOLLGATE_RESERVE,
	SIM_TOLLGATE_DEFICIT,
	SIM_SEED_LEGACY, /* wait for balance >= 80 + cost, no queue */
	SIM_SEED_FINAL,  /* wait for balance >= 80, no queue (barging) */
	SIM_SLEEP_60,    /* seed-final, and the backlogged task sleeps 60 s after each call */
	SIM_TOLLGATE_NOFRESH, /* reserve without the freshness rule (tokens_core_set_fresh) */
	SIM_NPOLICIES
};

struct sim_task_result {
	double tokens; /* charged by the server */
	double tokens_after_warmup;
	uint64_t calls;
	double wait_p50_s, wait_p95_s, wait_max_s;
	double front_max_s; /* longest wait as first of its queue */
	double bound_s;     /* the analytic bound for that wait */
	uint64_t bound_violations;
	uint64_t missed; /* periodic calls skipped: max_pending reached */
};

struct sim_result {
	double utilization; /* 1 - refill lost to the cap / refill generated, while backlogged */
	uint64_t our_429, other_429;
	uint64_t our_429_learned; /* after every task had an answer */
	int64_t min_balance;
	int64_t min_balance_learned; /* after every task had an answer */
	uint64_t est_above_truth;    /* moments est > the server's balance */
	uint64_t est_above_truth_learned;
	double minutes;
	struct sim_task_result task[SIM_MAX_TASKS];
};

extern const struct sim_scenario sim_scenarios[];
extern const int sim_nscenarios;
const char *sim_policy_name(enum sim_policy p);

/* Run one scenario under one policy for hours of virtual time. Returns 0,
 * or < 0 when the core refused something unexpectedly. */
int sim_run(const struct sim_scenario *sc, enum sim_policy policy, uint64_t seed, double hours,
            struct sim_result *out);

#endif
