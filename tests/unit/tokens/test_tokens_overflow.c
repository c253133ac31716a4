/*
 * test_tokens_overflow.c - Keepa's numbers cannot make the scheduler's
 * arithmetic overflow (#13 item 3): a tokensLeft near -2^48 wrapped
 * ticks * minute_ms (signed overflow, UB) and the head call waited forever.
 * Run under UBSan in the sanitizer build; here the results must be sane.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "keepa/envelope.h"
#include "tokens/tokens.h"

#define DEEP (-(INT64_C(1) << 48))

static struct tokens_envelope reading(int64_t ts, int64_t left, int64_t rate)
{
	struct tokens_envelope e = {ts, left, 30000, rate, 0, 0, 10};
	return e;
}

/* A core with a reading and one ticket in flight as its head. */
static struct tokens_core *core_with_head(struct tokens_ticket **t, int64_t now)
{
	struct tokens_core *core = NULL;
	struct tokens_config cfg;
	struct tokens_envelope e = reading(now, 100, 5);
	struct tokens_poll p;
	int a;

	tokens_config_default(&cfg);
	assert_int_equal(tokens_core_new(&cfg, &core, NULL), 0);
	a = tokens_core_add_class(core, "a", 1);
	tokens_core_poll(core, now, &p);
	assert_int_equal(p.action, TOKENS_SYNC);
	tokens_core_observe(core, &e, now);
	assert_int_equal(tokens_core_submit(core, a, "deal", 1, 5, now, t, NULL), 0);
	tokens_core_poll(core, now, &p);
	assert_int_equal(p.action, TOKENS_DISPATCH);
	return core;
}

/* The envelope clamps what no plan can produce. */
static void test_envelope_clamps(void **state)
{
	const char *text = "{\"tokensLeft\":-281474976710656,\"refillRate\":4000000000000,\"refillIn\":-5,"
	                   "\"tokenFlowReduction\":1e15,\"tokensConsumed\":4000000000000000,"
	                   "\"processingTimeInMs\":-3,\"timestamp\":1700000000000}";
	cJSON *doc = cJSON_Parse(text);
	struct tokens_envelope env;
	(void)state;

	assert_int_equal(keepa_envelope_parse(doc, 1, &env), KEEPA_ENVELOPE_READING);
	assert_int_equal(env.tokens_left, -KEEPA_TOKENS_MAX);
	assert_int_equal(env.refill_rate, (int64_t)KEEPA_RATE_MAX);
	assert_int_equal(env.refill_in_ms, 0);
	assert_true(env.token_flow_reduction == KEEPA_RATE_MAX);
	assert_int_equal(env.tokens_consumed, KEEPA_TOKENS_MAX);
	assert_int_equal(env.processing_ms, 0);
	cJSON_Delete(doc);

	doc = cJSON_Parse("{\"tokensLeft\":9e15,\"refillRate\":-7,\"refillIn\":99999999}");
	assert_int_equal(keepa_envelope_parse(doc, 1, &env), KEEPA_ENVELOPE_READING);
	assert_int_equal(env.tokens_left, KEEPA_TOKENS_MAX);
	assert_int_equal(env.refill_rate, 0);
	assert_int_equal(env.refill_in_ms, KEEPA_REFILL_IN_MAX_MS);
	cJSON_Delete(doc);
}

/* A 429 reporting a deficit of 2^48 tokens at 1 token a minute: the head
 * waits, and its wake-up is in the future - far, not wrapped into the past
 * (which made it spin) nor past INT64_MAX. The core is fed the raw number,
 * not the envelope's clamped one: its own arithmetic must hold too. */
static void test_deep_deficit_429(void **state)
{
	const int64_t now = 1700000000000LL;
	struct tokens_ticket *t;
	struct tokens_core *core = core_with_head(&t, now);
	struct tokens_envelope e = reading(now + 1, DEEP, 1);
	struct tokens_poll p;
	(void)state;

	tokens_core_complete_429(core, t, &e, now + 100);
	tokens_core_poll(core, now + 200, &p);
	assert_int_equal(p.action, TOKENS_WAIT);
	assert_true(p.until_ms > now + 200);
	/* 2^48 minutes is beyond any foreseeable time: at least a century. */
	assert_true(p.until_ms - now > INT64_C(100) * 365 * 86400 * 1000);
	assert_true(p.until_ms < INT64_MAX / 2);
	tokens_core_free(core);
}

/* The same deficit as an ordinary reading: the estimate's ETA is far but
 * valid, and status can be computed from it. */
static void test_deep_deficit_reading(void **state)
{
	const int64_t now = 1700000000000LL;
	struct tokens_ticket *t;
	struct tokens_core *core = core_with_head(&t, now);
	struct tokens_envelope e = reading(now + 1, DEEP, 1);
	struct tokens_envelope done = reading(now + 2, DEEP, 1);
	struct tokens_status *st = calloc(1, sizeof(*st));
	struct tokens_poll p;
	struct tokens_ticket *t2;
	(void)state;

	e.tokens_consumed = 5;
	tokens_core_complete(core, t, &e, now + 100);
	tokens_core_observe(core, &done, now + 150);
	assert_int_equal(tokens_core_submit(core, 0, "deal", 1, 5, now + 200, &t2, NULL), 0);
	tokens_core_poll(core, now + 300, &p);
	assert_true(p.action == TOKENS_WAIT || p.action == TOKENS_SYNC);
	if (p.action == TOKENS_WAIT)
		assert_true(p.until_ms > now + 300 && p.until_ms < INT64_MAX / 2);
	tokens_core_status(core, now + 300, st);
	assert_true(st->cls[0].head_eta_ms >= -1);
	tokens_status_release(st);
	free(st);
	tokens_core_cancel(core, t2, now + 400);
	tokens_core_free(core);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_envelope_clamps),
		cmocka_unit_test(test_deep_deficit_429),
		cmocka_unit_test(test_deep_deficit_reading),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
