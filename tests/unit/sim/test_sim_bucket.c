/*
 * test_sim_bucket.c - the simulator's token bucket and transport: the deficit
 * rule, refills, the cap, 429 and error envelopes, gzip, trailing slashes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "simtest.h"

static void test_token_envelope(void **state)
{
	(void)state;
	struct sim_options o = test_options();
	o.products = 300;
	struct sim *sim = test_sim_start(&o);
	cJSON *j = get_json(sim_port(sim), 200, "/token?key=simkey");
	assert_true(has_envelope(j));
	assert_int_equal(jnum(j, "tokensLeft"), 1200); /* cap = 60 x 20 */
	assert_int_equal(jnum(j, "refillRate"), 20);
	assert_int_equal(jnum(j, "tokensConsumed"), 0);
	assert_true(jnum(j, "refillIn") >= 1 && jnum(j, "refillIn") <= o.minute_ms);
	/* The timestamp is virtual server time: the first minute of the run. */
	assert_int_equal(env_minute(j), TEST_START_MS / 60000 - KEEPA_EPOCH_MIN);
	cJSON_Delete(j);
	sim_stop(sim);
}

static void test_deficit_rule(void **state)
{
	(void)state;
	struct sim_options o = test_options();
	o.products = 300;
	o.start_tokens = 3;
	struct sim *sim = test_sim_start(&o);
	uint16_t port = sim_port(sim);
	char *asins = known_asins(port, 5);

	/* Balance 3 > 0: a call costing 5 runs and drives it to -2. */
	cJSON *j = get_json(port, 200, "/product?key=simkey&domain=1&asin=%s", asins);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "products")), 5);
	assert_int_equal(jnum(j, "tokensConsumed"), 5);
	assert_int_equal(jnum(j, "tokensLeft"), -2);
	cJSON_Delete(j);

	/* At -2 the next paid call is refused and not charged. */
	j = get_json(port, 429, "/product?key=simkey&domain=1&asin=%s", asins);
	assert_true(has_envelope(j));
	assert_int_equal(jnum(j, "tokensConsumed"), 0);
	assert_int_equal(jnum(j, "tokensLeft"), -2);
	assert_null(cJSON_GetObjectItem(j, "products"));
	cJSON_Delete(j);

	/* /token stays free and answers. */
	j = get_json(port, 200, "/token?key=simkey");
	assert_int_equal(jnum(j, "tokensLeft"), -2);
	cJSON_Delete(j);

	j = get_json(port, 200, "/_sim/stats");
	assert_int_equal(jnum(j, "tokensConsumedTotal"), 5);
	assert_int_equal(jnum(j, "served429"), 1);
	assert_int_equal(jnum(j, "tokensLeft"), -2);
	cJSON_Delete(j);
	free(asins);
	sim_stop(sim);
}

static void test_balance_zero_is_refused(void **state)
{
	(void)state;
	struct sim_options o = test_options();
	o.products = 300;
	o.start_tokens = 0;
	struct sim *sim = test_sim_start(&o);
	char *p = deal_path("/deal?key=simkey", "{\"domainId\":1,\"priceTypes\":[0]}");
	cJSON *j = get_json(sim_port(sim), 429, "%s", p);
	/* A 429 body is a normal envelope: a real reading of the bucket. */
	assert_true(has_envelope(j));
	assert_int_equal(jnum(j, "tokensLeft"), 0);
	assert_int_equal(jnum(j, "tokensConsumed"), 0);
	assert_int_equal(jnum(j, "refillRate"), 20);
	assert_true(jnum(j, "refillIn") > 0);
	cJSON_Delete(j);
	j = get_json(sim_port(sim), 200, "/_sim/stats");
	assert_int_equal(jnum(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "requests"), "/deal"), "429"), 1);
	cJSON_Delete(j);
	free(p);
	sim_stop(sim);
}

/* Read /token between two /_sim/stats that agree on the refill count. */
static void read_settled(uint16_t port, long long *left, long long *refills)
{
	for (int tries = 0; tries < 50; tries++) {
		cJSON *a = get_json(port, 200, "/_sim/stats");
		cJSON *t = get_json(port, 200, "/token?key=simkey");
		cJSON *b = get_json(port, 200, "/_sim/stats");
		bool same = jnum(a, "refills") == jnum(b, "refills");
		*left = jnum(t, "tokensLeft");
		*refills = jnum(b, "refills");
		cJSON_Delete(a);
		cJSON_Delete(t);
		cJSON_Delete(b);
		if (same)
			return;
	}
	fail_msg("the refill count never settled");
}

static void test_refill_per_minute(void **state)
{
	(void)state;
	struct sim_options o = test_options();
	o.products = 300;
	o.minute_ms = 100;
	o.rate = 7;
	o.cap = 100000;
	o.start_tokens = 0;
	struct sim *sim = test_sim_start(&o);
	uint16_t port = sim_port(sim);
	long long left, refills;
	sleep_ms(350);
	read_settled(port, &left, &refills);
	assert_true(refills >= 3);
	assert_int_equal(left, 7 * refills);

	/* A refused call runs once refillIn has passed. */
	cJSON *j = get_json(port, 200, "/_sim/control?tokens=0");
	cJSON_Delete(j);
	char *p = deal_path("/deal?key=simkey", "{\"domainId\":1,\"priceTypes\":[0]}");
	struct http_res res;
	http_get(port, p, false, 0, &res);
	if (res.status == 429) {
		long long wait = jnum(res.json, "refillIn");
		assert_true(wait >= 1 && wait <= 100);
		sleep_ms(wait + 20);
		http_res_free(&res);
		http_get(port, p, false, 0, &res);
	}
	assert_int_equal(res.status, 200);
	assert_int_equal(jnum(res.json, "tokensConsumed"), 5);
	http_res_free(&res);
	free(p);
	sim_stop(sim);
}

static void test_cap(void **state)
{
	(void)state;
	struct sim_options o = test_options();
	o.products = 300;
	o.minute_ms = 50;
	o.rate = 100;
	o.cap = 250;
	o.start_tokens = 0;
	struct sim *sim = test_sim_start(&o);
	long long left, refills;
	sleep_ms(400);
	read_settled(sim_port(sim), &left, &refills);
	assert_true(refills >= 3);
	assert_int_equal(left, 250);
	sim_stop(sim);
}

static void test_bad_key_all_zero(void **state)
{
	(void)state;
	struct sim_options o = test_options();
	o.products = 300;
	struct sim *sim = test_sim_start(&o);
	uint16_t port = sim_port(sim);
	const char *paths[] = {"/token?key=wrongsecret", "/token",
	                       "/product?key=wrongsecret&domain=1&asin=X"};
	for (size_t i = 0; i < 3; i++) {
		cJSON *j = get_json(port, 400, "%s", paths[i]);
		assert_true(has_envelope(j));
		assert_int_equal(jnum(j, "tokensLeft"), 0);
		assert_int_equal(jnum(j, "refillIn"), 0);
		assert_int_equal(jnum(j, "refillRate"), 0);
		assert_int_equal(jnum(j, "tokensConsumed"), 0);
		const cJSON *e = cJSON_GetObjectItem(j, "error");
		assert_true(cJSON_IsString(cJSON_GetObjectItem(e, "message")));
		char *text = cJSON_PrintUnformatted(j);
		assert_null(strstr(text, "wrongsecret"));
		free(text);
		cJSON_Delete(j);
	}
	cJSON *j = get_json(port, 200, "/_sim/stats");
	assert_int_equal(jnum(j, "tokensLeft"), 1200);
	assert_int_equal(jnum(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "requests"), "/token"), "400"), 2);
	cJSON_Delete(j);
	sim_stop(sim);
}

static void test_unknown_path_404(void **state)
{
	(void)state;
	struct sim_options o = test_options();
	o.products = 300;
	struct sim *sim = test_sim_start(&o);
	cJSON *j = get_json(sim_port(sim), 404, "/nothing?key=simkey");
	assert_non_null(cJSON_GetObjectItem(j, "error"));
	cJSON_Delete(j);
	j = get_json(sim_port(sim), 404, "/_sim/nothing");
	cJSON_Delete(j);
	sim_stop(sim);
}

static void test_gzip(void **state)
{
	(void)state;
	struct sim_options o = test_options();
	o.products = 300;
	struct sim *sim = test_sim_start(&o);
	struct http_res res;
	http_get(sim_port(sim), "/token?key=simkey", true, 0, &res);
	assert_int_equal(res.status, 200);
	assert_true(res.gzip);
	assert_non_null(res.json); /* curl decoded it */
	assert_true(has_envelope(res.json));
	http_res_free(&res);
	http_get(sim_port(sim), "/token?key=simkey", false, 0, &res);
	assert_false(res.gzip);
	assert_non_null(res.json);
	http_res_free(&res);
	sim_stop(sim);
}

static void test_trailing_slash(void **state)
{
	(void)state;
	struct sim_options o = test_options();
	o.products = 300;
	struct sim *sim = test_sim_start(&o);
	char *asins = known_asins(sim_port(sim), 2);
	cJSON *j = get_json(sim_port(sim), 200, "/product/?key=simkey&domain=1&asin=%s", asins);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "products")), 2);
	cJSON_Delete(j);
	j = get_json(sim_port(sim), 200, "/token/?key=simkey");
	cJSON_Delete(j);
	free(asins);
	sim_stop(sim);
}

int main(void)
{
	/* clang-format off: one test per line */
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_token_envelope),
	    cmocka_unit_test(test_deficit_rule),
	    cmocka_unit_test(test_balance_zero_is_refused),
	    cmocka_unit_test(test_refill_per_minute),
	    cmocka_unit_test(test_cap),
	    cmocka_unit_test(test_bad_key_all_zero),
	    cmocka_unit_test(test_unknown_path_404),
	    cmocka_unit_test(test_gzip),
	    cmocka_unit_test(test_trailing_slash),
	};
	/* clang-format on */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
