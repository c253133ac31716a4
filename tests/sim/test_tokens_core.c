/*
 * test_tokens_core.c - unit tests of the pure token scheduler core.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "observe/log.h"
#include "tokens/tokens.h"

static struct tokens_envelope env(int64_t ts, int64_t left, int64_t refill_in, int64_t rate, int64_t consumed)
{
	struct tokens_envelope e = {ts, left, refill_in, rate, 0, consumed, 10};

	return e;
}

static struct tokens_core *new_core(enum tokens_policy policy)
{
	struct tokens_config cfg;
	struct tokens_core *core = NULL;

	tokens_config_default(&cfg);
	cfg.policy = policy;
	assert_int_equal(tokens_core_new(&cfg, &core, NULL), 0);
	return core;
}

/* Give the core its first reading through the sync it asks for. */
static void first_reading(struct tokens_core *core, int64_t now, int64_t left, int64_t rate)
{
	struct tokens_poll p;
	struct tokens_envelope e = env(now, left, 30000, rate, 0);

	tokens_core_poll(core, now, &p);
	assert_int_equal(p.action, TOKENS_SYNC);
	tokens_core_observe(core, &e, now);
}

static void test_no_paid_call_before_reading(void **state)
{
	struct tokens_core *core = new_core(TOKENS_POLICY_RESERVE);
	struct tokens_ticket *t;
	struct tokens_poll p;
	struct tokens_envelope zero;
	double est;

	(void)state;
	int a = tokens_core_add_class(core, "a", 1);
	assert_int_equal(tokens_core_submit(core, a, "deal", 1, 5, 0, &t, NULL), 0);
	tokens_core_poll(core, 0, &p);
	assert_int_equal(p.action, TOKENS_SYNC);
	/* The sync is outstanding: nobody else is asked, nothing is sent. */
	tokens_core_poll(core, 10, &p);
	assert_int_equal(p.action, TOKENS_WAIT);
	/* An all-zero envelope (invalid key answer) is not a reading. */
	memset(&zero, 0, sizeof(zero));
	tokens_core_observe(core, &zero, 20);
	assert_false(tokens_core_est(core, 20, &est));
	tokens_core_poll(core, 30, &p);
	assert_int_equal(p.action, TOKENS_WAIT);
	assert_true(p.until_ms > 30);
	tokens_core_poll(core, p.until_ms, &p);
	assert_int_equal(p.action, TOKENS_SYNC);
	struct tokens_envelope e = env(100, 50, 30000, 5, 0);
	tokens_core_observe(core, &e, 100);
	tokens_core_poll(core, 100, &p);
	assert_int_equal(p.action, TOKENS_DISPATCH);
	assert_ptr_equal(p.ticket, t);
	tokens_core_complete(core, t, &e, 200);
	tokens_core_free(core);
}

/* A class whose call is queued while no call holds the head (here: before
 * the first reading) still says what it waits to send: its own first call,
 * with the ETA unknown; and a fresh class says so, with its passes. */
static void test_status_queued_without_head(void **state)
{
	struct tokens_core *core = new_core(TOKENS_POLICY_RESERVE);
	struct tokens_status st = {0};
	struct tokens_ticket *t;

	(void)state;
	int a = tokens_core_add_class(core, "a", 1);
	assert_int_equal(tokens_core_set_fresh(core, a, true), 0);
	assert_int_equal(tokens_core_submit(core, a, "product", 10, 10, 0, &t, NULL), 0);
	tokens_core_status(core, 250, &st);
	assert_int_equal(st.cls[0].state, TOKENS_CLASS_QUEUED);
	assert_string_equal(st.cls[0].head_kind, "product");
	assert_true(st.cls[0].head_cost == 10);
	assert_int_equal(st.cls[0].head_wait_ms, 250);
	assert_int_equal(st.cls[0].head_eta_ms, -1);
	assert_true(st.cls[0].fresh);
	assert_int_equal(st.cls[0].passed_head, 0);
	tokens_status_release(&st);
	tokens_core_cancel(core, t, 300);
	tokens_core_free(core);
}

static void test_reconcile_orders_by_server_time(void **state)
{
	struct tokens_core *core = new_core(TOKENS_POLICY_RESERVE);
	struct tokens_ticket *t1, *t2;
	struct tokens_poll p;
	double est;

	(void)state;
	int a = tokens_core_add_class(core, "a", 1);
	first_reading(core, 0, 100, 5);
	assert_int_equal(tokens_core_submit(core, a, "deal", 1, 10, 0, &t1, NULL), 0);
	assert_int_equal(tokens_core_submit(core, a, "deal", 1, 10, 0, &t2, NULL), 0);
	tokens_core_poll(core, 0, &p);
	assert_ptr_equal(p.ticket, t1);
	tokens_core_poll(core, 0, &p);
	assert_ptr_equal(p.ticket, t2);
	assert_true(tokens_core_est(core, 0, &est));
	assert_true(est == 80);
	/* t2's answer (newer server time) comes first, then t1's older one:
	 * the older must not overwrite the newer reading. */
	struct tokens_envelope e2 = env(2000, 80, 28000, 5, 10);
	struct tokens_envelope e1 = env(1000, 90, 29000, 5, 10);
	tokens_core_complete(core, t2, &e2, 2100);
	assert_true(tokens_core_est(core, 2100, &est));
	assert_true(est == 70); /* 80 read, t1 still in flight */
	tokens_core_complete(core, t1, &e1, 2200);
	assert_true(tokens_core_est(core, 2200, &est));
	assert_true(est == 80);
	/* An all-zero envelope changes nothing. */
	struct tokens_envelope zero = {0};
	tokens_core_observe(core, &zero, 2300);
	assert_true(tokens_core_est(core, 2300, &est));
	assert_true(est == 80);
	/* Refill comes per minute at the phase of the accepted reading (t2's). */
	assert_true(tokens_core_est(core, 2100 + 27999, &est) && est == 80);
	assert_true(tokens_core_est(core, 2100 + 28000, &est) && est == 85);
	assert_true(tokens_core_est(core, 2100 + 28000 + 60000, &est) && est == 90);
	tokens_core_free(core);
}

static void test_429_keeps_head(void **state)
{
	struct tokens_core *core = new_core(TOKENS_POLICY_RESERVE);
	struct tokens_ticket *ta, *tb;
	struct tokens_poll p;

	(void)state;
	int a = tokens_core_add_class(core, "a", 1);
	int b = tokens_core_add_class(core, "b", 1);
	first_reading(core, 0, 20, 5);
	assert_int_equal(tokens_core_submit(core, a, "deal", 1, 10, 0, &ta, NULL), 0);
	tokens_core_poll(core, 0, &p);
	assert_ptr_equal(p.ticket, ta);
	/* Someone else emptied the bucket: 429 at -10, refill in 30 s. */
	struct tokens_envelope e = env(500, -10, 30000, 5, 0);
	tokens_core_complete_429(core, ta, &e, 600);
	assert_int_equal(tokens_core_submit(core, b, "deal", 1, 1, 700, &tb, NULL), 0);
	/* -10 needs 3 refills to be positive again: 30 s + 2 min. */
	tokens_core_poll(core, 700, &p);
	assert_int_equal(p.action, TOKENS_WAIT);
	assert_true(p.until_ms >= 600 + 30000 + 2 * 60000);
	/* b's cheap call does not barge in while a's call is the head. */
	int64_t now = p.until_ms;
	while (p.action != TOKENS_DISPATCH) {
		tokens_core_poll(core, now, &p);
		if (p.action == TOKENS_WAIT)
			now = p.until_ms;
	}
	assert_ptr_equal(p.ticket, ta);
	tokens_core_poll(core, now, &p);
	assert_true(p.action != TOKENS_DISPATCH || p.ticket == tb);
	struct tokens_status st = {0};
	tokens_core_status(core, now, &st);
	assert_int_equal(st.n429, 1);
	assert_int_equal(st.cls[a].calls_429, 1);
	tokens_core_free(core);
	tokens_status_release(&st);
}

static void test_oversize_refused(void **state)
{
	struct tokens_core *core = new_core(TOKENS_POLICY_RESERVE);
	struct tokens_ticket *t = NULL;
	struct tokens_poll p;
	char *msg = NULL;
	double est;

	(void)state;
	int a = tokens_core_add_class(core, "a", 1);
	first_reading(core, 0, 300, 5); /* cap 300 */
	/* cap 300 - reserve 1 + deepest deficit 150 = 449. */
	assert_int_equal(tokens_core_submit(core, a, "product", 500, 500, 0, &t, &msg), TG_EOVERSIZE);
	assert_non_null(msg);
	assert_non_null(strstr(msg, "split"));
	assert_non_null(strstr(msg, "449"));
	free(msg);
	/* 400 exceeds the cap but not the floor: it runs from a full bucket
	 * (the target is never above the cap) and the deficit stays bounded. */
	assert_int_equal(tokens_core_submit(core, a, "product", 400, 400, 0, &t, NULL), 0);
	tokens_core_poll(core, 0, &p);
	assert_int_equal(p.action, TOKENS_DISPATCH);
	assert_true(tokens_core_est(core, 0, &est));
	assert_true(est >= -150);
	/* The bucket is drained by the call in flight: only the refill within
	 * the latency target counts. */
	assert_true(tokens_core_budget_hint(core, a, 0) == 50); /* 5/min * 600 s */
	tokens_core_complete_unknown(core, t, 10);
	tokens_core_free(core);
}

static void test_learning_never_below_declared(void **state)
{
	struct tokens_core *core = new_core(TOKENS_POLICY_RESERVE);
	struct tokens_ticket *t;
	struct tokens_poll p;
	int64_t ts = 1;

	(void)state;
	int a = tokens_core_add_class(core, "a", 1);
	first_reading(core, 0, 1000, 100);
	/* Cheaper than declared: the estimate stays at the declaration. */
	for (int i = 0; i < 5; i++) {
		assert_int_equal(tokens_core_submit(core, a, "product", 10, 10, 0, &t, NULL), 0);
		tokens_core_poll(core, 0, &p);
		assert_ptr_equal(p.ticket, t);
		assert_true(tokens_ticket_cost(t) == 10);
		struct tokens_envelope e = env(ts++, 1000, 30000, 100, 3);
		tokens_core_complete(core, t, &e, 0);
	}
	assert_int_equal(tokens_core_submit(core, a, "product", 10, 10, 0, &t, NULL), 0);
	assert_true(tokens_ticket_cost(t) == 10);
	tokens_core_poll(core, 0, &p);
	/* Four times dearer: learned per unit, for any number of units. */
	struct tokens_envelope e = env(ts++, 1000, 30000, 100, 40);
	tokens_core_complete(core, t, &e, 0);
	assert_int_equal(tokens_core_submit(core, a, "product", 20, 20, 0, &t, NULL), 0);
	assert_true(tokens_ticket_cost(t) == 80);
	tokens_core_poll(core, 0, &p);
	assert_ptr_equal(p.ticket, t);
	e = env(ts++, 1000, 30000, 100, 80);
	tokens_core_complete(core, t, &e, 0);
	/* Another kind is not affected. */
	assert_int_equal(tokens_core_submit(core, a, "deal", 1, 5, 0, &t, NULL), 0);
	assert_true(tokens_ticket_cost(t) == 5);
	tokens_core_cancel(core, t, 0);
	tokens_core_free(core);
}

static void test_shares_follow_weights(void **state)
{
	struct tokens_core *core = new_core(TOKENS_POLICY_RESERVE);
	struct tokens_ticket *t;
	struct tokens_poll p;
	int count[2] = {0, 0};
	int64_t ts = 1;

	(void)state;
	int a = tokens_core_add_class(core, "a", 3);
	int b = tokens_core_add_class(core, "b", 1);
	first_reading(core, 0, 100000, 10000);
	for (int i = 0; i < 100; i++) {
		assert_int_equal(tokens_core_submit(core, a, "x", 1, 10, 0, &t, NULL), 0);
		assert_int_equal(tokens_core_submit(core, b, "x", 1, 30, 0, &t, NULL), 0);
	}
	double tok[2] = {0, 0};
	for (int i = 0; i < 80; i++) {
		tokens_core_poll(core, 0, &p);
		assert_int_equal(p.action, TOKENS_DISPATCH);
		int c = tokens_ticket_class(p.ticket);
		count[c]++;
		tok[c] += tokens_ticket_cost(p.ticket);
		struct tokens_envelope e =
		    env(ts++, 100000, 30000, 10000, (int64_t)tokens_ticket_cost(p.ticket));
		tokens_core_complete(core, p.ticket, &e, 0);
	}
	/* Tokens 3:1 (a's calls are 3x cheaper, so 9x as many). */
	assert_true(tok[0] / (tok[0] + tok[1]) > 0.70 && tok[0] / (tok[0] + tok[1]) < 0.80);
	assert_true(count[0] > 0 && count[1] > 0);
	tokens_core_free(core);
}

static void test_deficit_call_goes_alone(void **state)
{
	struct tokens_core *core = new_core(TOKENS_POLICY_DEFICIT);
	struct tokens_ticket *t1, *t2;
	struct tokens_poll p;

	(void)state;
	int a = tokens_core_add_class(core, "a", 1);
	int b = tokens_core_add_class(core, "b", 1);
	first_reading(core, 0, 100, 5);
	assert_int_equal(tokens_core_submit(core, a, "x", 1, 8, 0, &t1, NULL), 0);
	assert_int_equal(tokens_core_submit(core, b, "x", 1, 150, 0, &t2, NULL), 0);
	tokens_core_poll(core, 0, &p);
	assert_ptr_equal(p.ticket, t1);
	/* est 92 >= threshold 80, but 150 would take it below zero while t1
	 * is on the wire: t2 waits for t1's answer. */
	tokens_core_poll(core, 0, &p);
	assert_int_equal(p.action, TOKENS_WAIT);
	struct tokens_envelope e = env(10, 92, 30000, 5, 8);
	tokens_core_complete(core, t1, &e, 10);
	tokens_core_poll(core, 10, &p);
	assert_int_equal(p.action, TOKENS_DISPATCH);
	assert_ptr_equal(p.ticket, t2);
	e = env(20, -58, 30000, 5, 150);
	tokens_core_complete(core, t2, &e, 20);
	struct tokens_status st = {0};
	tokens_core_status(core, 20, &st);
	assert_int_equal(st.deepest_seen, -58);
	assert_int_equal(st.cls[b].calls_ok, 1);
	tokens_core_free(core);
	tokens_status_release(&st);
}

static void test_unknown_counts_as_spent(void **state)
{
	struct tokens_core *core = new_core(TOKENS_POLICY_RESERVE);
	struct tokens_ticket *t;
	struct tokens_poll p;
	double est;

	(void)state;
	int a = tokens_core_add_class(core, "a", 1);
	first_reading(core, 0, 100, 5);
	assert_int_equal(tokens_core_submit(core, a, "x", 1, 30, 0, &t, NULL), 0);
	tokens_core_poll(core, 0, &p);
	tokens_core_complete_unknown(core, t, 100);
	assert_true(tokens_core_est(core, 100, &est) && est == 70);
	/* A reading from a call sent after the failure covers it. */
	struct tokens_envelope e = env(200, 95, 30000, 5, 0);
	tokens_core_observe(core, &e, 200);
	assert_true(tokens_core_est(core, 200, &est) && est == 95);
	tokens_core_free(core);
}

/* A call abandoned at shutdown is spent as far as the estimate knows, but
 * it is not a failed call in the counters. */
static void test_stopped_is_spent_not_failed(void **state)
{
	struct tokens_core *core = new_core(TOKENS_POLICY_RESERVE);
	struct tokens_ticket *t;
	struct tokens_poll p;
	struct tokens_status *st = calloc(1, sizeof(*st));
	double est;

	(void)state;
	int a = tokens_core_add_class(core, "a", 1);
	first_reading(core, 0, 100, 5);
	assert_int_equal(tokens_core_submit(core, a, "x", 1, 30, 0, &t, NULL), 0);
	tokens_core_poll(core, 0, &p);
	tokens_core_complete_stopped(core, t, 100);
	assert_true(tokens_core_est(core, 100, &est) && est == 70);
	tokens_core_status(core, 100, st);
	assert_int_equal(st->cls[a].calls_error, 0);
	assert_int_equal(tokens_core_submit(core, a, "x", 1, 30, 100, &t, NULL), 0);
	tokens_core_poll(core, 100, &p);
	tokens_core_complete_unknown(core, t, 200);
	tokens_core_status(core, 200, st);
	assert_int_equal(st->cls[a].calls_error, 1);
	tokens_status_release(st);
	free(st);
	tokens_core_free(core);
}

/* The budget hint: the refill within the latency target, or the tokens in
 * the bucket that no other task has queued for, whichever is larger. */
static void test_budget_hint_follows_the_bucket(void **state)
{
	struct tokens_core *core = new_core(TOKENS_POLICY_RESERVE);
	struct tokens_ticket *t;
	int a = tokens_core_add_class(core, "a", 1), b = tokens_core_add_class(core, "b", 1);
	(void)state;

	assert_int_equal(tokens_core_budget_hint(core, a, 0), 0); /* no reading yet */
	first_reading(core, 0, 300, 5);                            /* cap 300, full */
	/* 5/min * 600 s = 50, but 300 tokens wait unused: 299 (cap - reserve). */
	assert_int_equal(tokens_core_budget_hint(core, a, 0), 299);
	/* b queues a call of 100: a may count only on what is left. */
	assert_int_equal(tokens_core_submit(core, b, "deal", 1, 100, 0, &t, NULL), 0);
	assert_int_equal(tokens_core_budget_hint(core, a, 0), 199);
	/* b's own hint does not subtract b's queue. */
	assert_int_equal(tokens_core_budget_hint(core, b, 0), 299);
	tokens_core_cancel(core, t, 0);
	tokens_core_free(core);
}

/* The freshness rule: while a big head waits, a small funded call of a
 * latency-sensitive class passes it; a plain class's call does not; the
 * passing calls spend at most the head's cost while it waits. */
static void test_fresh_call_passes_waiting_head(void **state)
{
	struct tokens_core *core = new_core(TOKENS_POLICY_RESERVE);
	struct tokens_ticket *big, *small, *plain, *more[8];
	struct tokens_poll p;
	double est;

	(void)state;
	int bf = tokens_core_add_class(core, "backfiller", 1);
	int up = tokens_core_add_class(core, "upserter", 1);
	int other = tokens_core_add_class(core, "other", 1);
	assert_int_equal(tokens_core_set_fresh(core, up, true), 0);
	assert_int_equal(tokens_core_set_fresh(core, 99, true), TG_EINVAL);
	first_reading(core, 0, 30, 20);
	/* 30 tokens, a 50-token head: it waits. */
	assert_int_equal(tokens_core_submit(core, bf, "product", 50, 50, 0, &big, NULL), 0);
	tokens_core_poll(core, 0, &p);
	assert_int_equal(p.action, TOKENS_WAIT);
	/* A plain class's small call waits behind the head (no barging). */
	assert_int_equal(tokens_core_submit(core, other, "deal", 1, 5, 0, &plain, NULL), 0);
	tokens_core_poll(core, 0, &p);
	assert_int_equal(p.action, TOKENS_WAIT);
	/* The upserter's is funded and small: it goes now, the head stays. */
	assert_int_equal(tokens_core_submit(core, up, "deal", 1, 5, 0, &small, NULL), 0);
	tokens_core_poll(core, 0, &p);
	assert_int_equal(p.action, TOKENS_DISPATCH);
	assert_ptr_equal(p.ticket, small);
	assert_true(tokens_core_est(core, 0, &est) && est == 25);
	struct tokens_envelope e = env(10, 25, 30000, 20, 5);
	tokens_core_complete(core, small, &e, 10);
	/* More passing calls: they stop before spending more than the head's
	 * 50, and never below the margin. */
	int passed = 0;
	for (int i = 0; i < 8; i++) {
		assert_int_equal(tokens_core_submit(core, up, "deal", 1, 5, 20, &more[i], NULL), 0);
		tokens_core_poll(core, 20, &p);
		if (p.action != TOKENS_DISPATCH)
			break;
		assert_ptr_equal(p.ticket, more[i]);
		passed++;
	}
	assert_true(tokens_core_est(core, 20, &est) && est >= 1);
	assert_true(passed >= 1 && 5 * (passed + 1) <= 50);
	tokens_core_free(core);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_no_paid_call_before_reading),
	    cmocka_unit_test(test_status_queued_without_head),
	    cmocka_unit_test(test_reconcile_orders_by_server_time),
	    cmocka_unit_test(test_429_keeps_head),
	    cmocka_unit_test(test_fresh_call_passes_waiting_head),
	    cmocka_unit_test(test_oversize_refused),
	    cmocka_unit_test(test_learning_never_below_declared),
	    cmocka_unit_test(test_shares_follow_weights),
	    cmocka_unit_test(test_deficit_call_goes_alone),
	    cmocka_unit_test(test_unknown_counts_as_spent),
	    cmocka_unit_test(test_budget_hint_follows_the_bucket),
	    cmocka_unit_test(test_stopped_is_spent_not_failed),
	};

	log_setup(TG_LOG_ERROR, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
