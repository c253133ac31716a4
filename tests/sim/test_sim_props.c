/*
 * test_sim_props.c - the scheduler's guarantees (docs/token-scheduler.md),
 * checked on virtual time over many seeds for every scenario, with the real
 * core. The wait bound is derived in simlib.h.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "observe/log.h"
#include "simlib.h"

#define SEEDS 50
#define HOURS 12.0
#define DEEPEST 150 /* the default floor */

static const struct sim_scenario *scenario(const char *name)
{
	for (int i = 0; i < sim_nscenarios; i++)
		if (strcmp(sim_scenarios[i].name, name) == 0)
			return &sim_scenarios[i];
	fail();
	return NULL;
}

static bool has_outside(const struct sim_scenario *sc)
{
	return sc->outside_period_ms != 0;
}

static bool costs_exact(const struct sim_scenario *sc)
{
	for (int i = 0; i < sc->ntasks; i++)
		if (sc->tasks[i].actual_per_unit != 1)
			return false;
	return true;
}

static void check_policy(const struct sim_scenario *sc, enum sim_policy policy)
{
	for (uint64_t seed = 1; seed <= SEEDS; seed++) {
		struct sim_result r;
		char where[64];

		snprintf(where, sizeof(where), "scenario %s, %s, seed %llu", sc->name,
		         sim_policy_name(policy), (unsigned long long)seed);
		assert_int_equal(sim_run(sc, policy, seed, HOURS, &r), 0);
		/* 2. work conservation: no refill lost to the cap while backlogged */
		if (r.utilization < 0.98)
			fail_msg("%s: utilization %.3f", where, r.utilization);
		/* 3. no self-inflicted 429 (once costs are learned when they are
		 * misdeclared) */
		if (!has_outside(sc) && (costs_exact(sc) ? r.our_429 : r.our_429_learned) != 0)
			fail_msg("%s: %llu 429s", where, (unsigned long long)r.our_429);
		/* est is a lower bound on the balance */
		if (!has_outside(sc) &&
		    (costs_exact(sc) ? r.est_above_truth : r.est_above_truth_learned) != 0)
			fail_msg("%s: est above the balance %llu times", where,
			         (unsigned long long)r.est_above_truth);
		/* 6. the deficit floor, once costs are learned */
		if (r.min_balance_learned < -DEEPEST - (has_outside(sc) ? 8 : 0))
			fail_msg("%s: balance %lld below the floor", where, (long long)r.min_balance_learned);
		for (int i = 0; i < sc->ntasks; i++) {
			/* 1. no starvation: every wait within the analytic bound */
			if (r.task[i].bound_violations)
				fail_msg("%s: %s waited %.0f s, bound %.0f s", where, sc->tasks[i].name,
				         r.task[i].front_max_s, r.task[i].bound_s);
			if (r.task[i].calls == 0)
				fail_msg("%s: %s never ran", where, sc->tasks[i].name);
		}
		/* 5. shares follow weights where every task is backlogged */
		if (!strcmp(sc->name, "A") || !strcmp(sc->name, "B")) {
			double total = 0, wsum = 0;

			for (int i = 0; i < sc->ntasks; i++) {
				total += r.task[i].tokens_after_warmup;
				wsum += sc->tasks[i].weight;
			}
			for (int i = 0; i < sc->ntasks; i++) {
				double share = r.task[i].tokens_after_warmup / total,
				       want = sc->tasks[i].weight / wsum;

				if (fabs(share - want) > 0.05)
					fail_msg("%s: %s share %.3f, weight share %.3f", where,
					         sc->tasks[i].name, share, want);
			}
		}
	}
}

static void test_scenario(void **state)
{
	const struct sim_scenario *sc = scenario(*state);

	check_policy(sc, SIM_TOLLGATE_RESERVE);
	check_policy(sc, SIM_TOLLGATE_DEFICIT);
}

/* Scenario A: the seed's policy starves the backfiller, tollgate does not. */
static void test_a_no_starvation(void **state)
{
	const struct sim_scenario *sc = scenario("A");

	(void)state;
	for (uint64_t seed = 1; seed <= SEEDS; seed++) {
		struct sim_result legacy, ours;

		assert_int_equal(sim_run(sc, SIM_SEED_LEGACY, seed, HOURS, &legacy), 0);
		assert_int_equal(sim_run(sc, SIM_TOLLGATE_RESERVE, seed, HOURS, &ours), 0);
		assert_string_equal(sc->tasks[1].name, "backfiller");
		/* legacy: at most the first full bucket, then nothing */
		assert_true(legacy.task[1].tokens_after_warmup == 0);
		assert_true(ours.task[1].tokens / ours.minutes > 2.0);
		assert_true(ours.task[0].tokens / ours.minutes > 2.0);
	}
}

/* Scenario C: the freshness rule lets the upserter's small calls pass the
 * backfiller's waiting 150-token head: its p95 wait is at most one Keepa
 * minute, and the backfiller keeps at least 0.99 of the tokens it got
 * without the rule. */
static void test_c_freshness(void **state)
{
	const struct sim_scenario *sc = scenario("C");

	(void)state;
	assert_string_equal(sc->tasks[0].name, "upserter");
	for (uint64_t seed = 1; seed <= SEEDS; seed++) {
		struct sim_result fresh, plain;

		assert_int_equal(sim_run(sc, SIM_TOLLGATE_RESERVE, seed, HOURS, &fresh), 0);
		assert_int_equal(sim_run(sc, SIM_TOLLGATE_NOFRESH, seed, HOURS, &plain), 0);
		if (fresh.task[0].wait_p95_s > 60.0 ||
		    fresh.task[1].tokens_after_warmup < 0.99 * plain.task[1].tokens_after_warmup)
			fail_msg("seed %llu: upserter p95 %.0f s (without the rule %.0f s); backfiller %.0f tokens "
			         "(without %.0f)",
			         (unsigned long long)seed, fresh.task[0].wait_p95_s, plain.task[0].wait_p95_s,
			         fresh.task[1].tokens_after_warmup, plain.task[1].tokens_after_warmup);
		assert_int_equal(fresh.our_429, 0);
	}
}

int main(void)
{
	static const char *names[] = {"A", "B", "C", "D", "E", "F", "G", "H"};
	struct CMUnitTest tests[10];

	for (int i = 0; i < 8; i++) {
		static char label[8][32];

		snprintf(label[i], sizeof(label[i]), "scenario_%s", names[i]);
		tests[i] = (struct CMUnitTest){label[i], test_scenario, NULL, NULL, (void *)names[i]};
	}
	tests[8] =
	    (struct CMUnitTest){"scenario_A_seed_legacy_starves", test_a_no_starvation, NULL, NULL, NULL};
	tests[9] = (struct CMUnitTest){"scenario_C_freshness", test_c_freshness, NULL, NULL, NULL};
	log_setup(TG_LOG_ERROR, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
