/*
 * test_tokens_classes.c - the scheduler has no fixed limit on classes: 80
 * backlogged classes (the old array held 32) all get calls, in shares that
 * follow their weights, and every one shows in the status snapshot.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <tollgate/tollgate.h>

#include "tokens/tokens.h"

enum { NCLASSES = 80, RATE = 400 /* tokens a minute */, COST = 12 };

/* Class i's weight: 1, 2 or 3. A class's queue empties when its call is
 * sent (its next call comes with the answer), which resets its credit, so
 * the weights divide the cost evenly here: shares are then exact. */
static double weight_of(int i)
{
	return (double)(1 + i % 3);
}

/* A bucket on virtual time: RATE tokens at every minute boundary, each
 * call charged its declared COST, answered at once. Every class always
 * has its next call queued. Returns the tokens each class got. */
static void run(struct tokens_core *core, const int *cls, int minutes, double *got)
{
	const int64_t minute = 60000;
	struct tokens_ticket *queued[NCLASSES];
	int64_t now = 0, left = RATE, next_refill = minute;
	struct tokens_poll p;

	for (int i = 0; i < NCLASSES; i++) {
		got[i] = 0;
		assert_int_equal(tokens_core_submit(core, cls[i], "call", 1, COST, now, &queued[i], NULL), 0);
	}
	while (now < (int64_t)minutes * minute) {
		struct tokens_envelope e;

		tokens_core_poll(core, now, &p);
		switch (p.action) {
		case TOKENS_SYNC:
			e = (struct tokens_envelope){now, left, next_refill - now, RATE, 0, 0, 1};
			tokens_core_observe(core, &e, now);
			break;
		case TOKENS_DISPATCH: {
			int c = tokens_ticket_class(p.ticket);

			left -= COST;
			got[c] += COST;
			e = (struct tokens_envelope){now, left, next_refill - now, RATE, 0, COST, 1};
			tokens_core_complete(core, p.ticket, &e, now);
			assert_int_equal(tokens_core_submit(core, c, "call", 1, COST, now, &queued[c], NULL), 0);
			break;
		}
		case TOKENS_WAIT:
			now = p.until_ms > now ? p.until_ms : now + 1;
			break;
		case TOKENS_IDLE:
			fail_msg("idle with every class backlogged");
		}
		while (now >= next_refill) {
			left += RATE;
			if (left > 60 * RATE)
				left = 60 * RATE;
			next_refill += minute;
		}
	}
}

static void test_many_classes_share_by_weight(void **state)
{
	struct tokens_config cfg;
	struct tokens_core *core = NULL;
	struct tokens_status st = {0};
	int cls[NCLASSES];
	double got[NCLASSES], total = 0, wsum = 0;
	char name[32];

	(void)state;
	tokens_config_default(&cfg);
	assert_int_equal(tokens_core_new(&cfg, &core, NULL), 0);
	for (int i = 0; i < NCLASSES; i++) {
		snprintf(name, sizeof(name), "task-%03d", i);
		cls[i] = tokens_core_add_class(core, name, weight_of(i));
		assert_true(cls[i] >= 0);
		assert_int_equal(cls[i], i);
		wsum += weight_of(i);
	}
	/* Names stay unique past the old limit. */
	assert_int_equal(tokens_core_add_class(core, "task-040", 1), TG_EINVAL);
	assert_int_equal(tokens_core_find_class(core, "task-079"), 79);

	run(core, cls, 120, got);
	for (int i = 0; i < NCLASSES; i++)
		total += got[i];
	/* The refill is what there is to share (the first minute's balance
	 * included), and it is spent. */
	assert_true(total >= 0.9 * 120 * RATE);
	for (int i = 0; i < NCLASSES; i++) {
		double want = total * weight_of(i) / wsum;

		if (got[i] < 0.85 * want || got[i] > 1.15 * want)
			fail_msg("class %d (weight %.0f) got %.0f tokens, its share is %.0f", i, weight_of(i), got[i],
			         want);
	}

	tokens_core_status(core, 120 * 60000, &st);
	assert_int_equal(st.nclasses, NCLASSES);
	for (int i = 0; i < NCLASSES; i++) {
		snprintf(name, sizeof(name), "task-%03d", i);
		assert_string_equal(st.cls[i].name, name);
		assert_true(st.cls[i].tokens_consumed == got[i]);
	}
	/* A second snapshot reuses the array. */
	tokens_core_status(core, 120 * 60000, &st);
	assert_int_equal(st.nclasses, NCLASSES);
	tokens_status_release(&st);
	assert_null(st.cls);
	tokens_core_free(core);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_many_classes_share_by_weight),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
