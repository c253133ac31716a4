/*
 * scheduler.c - every scenario of docs/token-scheduler.md under every
 * policy (tollgate reserve and deficit, and the seed's baselines) for 48
 * virtual hours: one JSON object per line, or a table with --table.
 *
 *   scheduler [--table] [--hours H] [--seed N] [--scenario X]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "observe/log.h"
#include "simlib.h"

static void print_json(const struct sim_scenario *sc, enum sim_policy p, const struct sim_result *r)
{
	bool tg = p == SIM_TOLLGATE_RESERVE || p == SIM_TOLLGATE_DEFICIT || p == SIM_TOLLGATE_NOFRESH;

	printf(
	    "{\"scenario\":\"%s\",\"policy\":\"%s\",\"utilization\":%.4f,\"our_429\":%llu,\"other_429\":%llu,"
	    "\"min_balance\":%lld,",
	    sc->name, sim_policy_name(p), r->utilization, (unsigned long long)r->our_429,
	    (unsigned long long)r->other_429, (long long)r->min_balance);
	if (tg)
		printf("\"est_above_truth\":%llu,", (unsigned long long)r->est_above_truth);
	else
		printf("\"est_above_truth\":null,");
	printf("\"tasks\":{");
	for (int i = 0; i < sc->ntasks; i++)
		printf("%s\"%s\":{\"tokens_per_min\":%.3f,\"wait_p50_s\":%.1f,\"wait_p95_s\":%.1f,"
		       "\"wait_max_s\":%.1f}",
		       i ? "," : "", sc->tasks[i].name, r->task[i].tokens / r->minutes, r->task[i].wait_p50_s,
		       r->task[i].wait_p95_s, r->task[i].wait_max_s);
	printf("}}\n");
}

static void print_row(const struct sim_scenario *sc, enum sim_policy p, const struct sim_result *r)
{
	bool tg = p == SIM_TOLLGATE_RESERVE || p == SIM_TOLLGATE_DEFICIT || p == SIM_TOLLGATE_NOFRESH;
	char est[16];

	snprintf(est, sizeof(est), "%llu", (unsigned long long)r->est_above_truth);
	printf("%-3s %-17s %5.3f %5llu %5llu %6lld %5s", sc->name, sim_policy_name(p), r->utilization,
	       (unsigned long long)r->our_429, (unsigned long long)r->other_429, (long long)r->min_balance,
	       tg ? est : "-");
	for (int i = 0; i < sc->ntasks; i++)
		printf(" | %-10s %7.3f %7.0f %7.0f %7.0f", sc->tasks[i].name, r->task[i].tokens / r->minutes,
		       r->task[i].wait_p50_s, r->task[i].wait_p95_s, r->task[i].wait_max_s);
	printf("\n");
}

int main(int argc, char **argv)
{
	bool table = false;
	double hours = 48;
	uint64_t seed = 1;
	const char *only = NULL;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--table") == 0)
			table = true;
		else if (strcmp(argv[i], "--hours") == 0 && i + 1 < argc)
			hours = atof(argv[++i]);
		else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
			seed = strtoull(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--scenario") == 0 && i + 1 < argc)
			only = argv[++i];
		else {
			fprintf(stderr, "usage: %s [--table] [--hours H] [--seed N] [--scenario X]\n",
			        argv[0]);
			return 64;
		}
	}
	/* The scheduler logs every wait; the figures are the point here. */
	log_setup(TG_LOG_ERROR, NULL);
	if (table) {
		printf("%.0f virtual hours, seed %llu. tok/min, p50, p95 and max wait (s) per task.\n", hours,
		       (unsigned long long)seed);
		printf("%-3s %-17s %5s %5s %5s %6s %5s | task       tok/min     p50     p95     max\n", "sc",
		       "policy", "util", "o429", "x429", "minbal", "est>");
	}
	for (int s = 0; s < sim_nscenarios; s++) {
		if (only && strcmp(only, sim_scenarios[s].name) != 0)
			continue;
		for (int p = 0; p < SIM_NPOLICIES; p++) {
			struct sim_result r;

			if (sim_run(&sim_scenarios[s], (enum sim_policy)p, seed, hours, &r) < 0) {
				fprintf(stderr, "scenario %s, policy %s: the simulation failed\n",
				        sim_scenarios[s].name, sim_policy_name((enum sim_policy)p));
				return 1;
			}
			if (table)
				print_row(&sim_scenarios[s], (enum sim_policy)p, &r);
			else
				print_json(&sim_scenarios[s], (enum sim_policy)p, &r);
		}
	}
	return 0;
}
