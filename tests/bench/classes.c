/*
 * classes.c - the token scheduler's own cost per call with 1, 10 and 200
 * backlogged tasks (classes): submit, poll to dispatch, complete, with the
 * bucket always able to pay, so every figure is the core's bookkeeping
 * (the deficit-round-robin pick is linear in the backlogged classes).
 *
 *   classes [--calls N] [--table]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tollgate/tollgate.h>

#include "tokens/tokens.h"

static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ns of CPU per call with n classes, each always with one call queued. */
static double per_call_ns(int n, long calls)
{
	struct tokens_config cfg;
	struct tokens_core *core = NULL;
	struct tokens_ticket *t;
	struct tokens_poll p;
	int64_t now = 0;
	double t0;
	char name[32];

	tokens_config_default(&cfg);
	if (tokens_core_new(&cfg, &core, NULL) < 0)
		exit(1);
	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "task-%d", i);
		if (tokens_core_add_class(core, name, 1 + i % 3) != i ||
		    tokens_core_submit(core, i, "call", 1, 10, now, &t, NULL) < 0)
			exit(1);
	}
	/* Balance far above any target: nothing ever waits. */
	struct tokens_envelope e = {now, 1000000000, 30000, 1000000000 / 60, 0, 0, 1};
	tokens_core_poll(core, now, &p);
	tokens_core_observe(core, &e, now);
	t0 = cpu_s();
	for (long k = 0; k < calls; k++) {
		int c;

		now += 1;
		tokens_core_poll(core, now, &p);
		if (p.action == TOKENS_SYNC) {
			e.timestamp_ms = now;
			tokens_core_observe(core, &e, now);
			tokens_core_poll(core, now, &p);
		}
		if (p.action != TOKENS_DISPATCH) {
			fprintf(stderr, "classes bench: no dispatch (action %d) with %d classes\n", p.action, n);
			exit(1);
		}
		c = tokens_ticket_class(p.ticket);
		e.timestamp_ms = now;
		e.tokens_consumed = 10;
		tokens_core_complete(core, p.ticket, &e, now);
		if (tokens_core_submit(core, c, "call", 1, 10, now, &t, NULL) < 0)
			exit(1);
	}
	t0 = cpu_s() - t0;
	tokens_core_free(core);
	return t0 * 1e9 / (double)calls;
}

int main(int argc, char **argv)
{
	static const int ns[] = {1, 10, 200};
	long calls = 200000;
	int table = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--calls") == 0 && i + 1 < argc)
			calls = atol(argv[++i]);
		else if (strcmp(argv[i], "--table") == 0)
			table = 1;
		else {
			fprintf(stderr, "usage: classes [--calls N] [--table]\n");
			return 2;
		}
	}
	if (calls < 1)
		calls = 1;
	if (table)
		printf("| tasks | scheduler CPU per call |\n|---|---|\n");
	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		double v = per_call_ns(ns[i], calls);

		if (table)
			printf("| %d | %.2f µs |\n", ns[i], v / 1000);
		else
			printf("{\"bench\":\"classes\",\"tasks\":%d,\"calls\":%ld,\"ns_per_call\":%.0f}\n", ns[i], calls, v);
	}
	return 0;
}
