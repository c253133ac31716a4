/*
 * test_sim_faults.c - fault injection (500, hang, garbage, in-body error),
 * its determinism for a seed, latency, and the /_sim/ endpoints.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "simtest.h"

static struct sim_options small(void)
{
	struct sim_options o = test_options();
	o.products = 200;
	return o;
}

static long long stat_of(uint16_t port, const char *obj, const char *name)
{
	cJSON *j = get_json(port, 200, "/_sim/stats");
	long long v = jnum(obj ? cJSON_GetObjectItem(j, obj) : j, name);
	cJSON_Delete(j);
	return v;
}

static void test_fault_500(void **state)
{
	(void)state;
	struct sim_options o = small();
	o.p500 = 1.0;
	struct sim *sim = test_sim_start(&o);
	char *asins = known_asins(sim_port(sim), 3);
	cJSON *j = get_json(sim_port(sim), 500, "/product?key=simkey&domain=1&asin=%s", asins);
	assert_true(has_envelope(j));
	assert_int_equal(jnum(j, "tokensConsumed"), 0);
	assert_int_equal(jnum(j, "tokensLeft"), 1200);
	assert_non_null(cJSON_GetObjectItem(j, "error"));
	cJSON_Delete(j);
	assert_int_equal(stat_of(sim_port(sim), "faults", "500"), 1);
	assert_int_equal(stat_of(sim_port(sim), NULL, "tokensConsumedTotal"), 0);
	free(asins);
	sim_stop(sim);
}

static void test_fault_in_body_error(void **state)
{
	(void)state;
	struct sim_options o = small();
	o.perror = 1.0;
	struct sim *sim = test_sim_start(&o);
	char *asins = known_asins(sim_port(sim), 3);
	cJSON *j = get_json(sim_port(sim), 200, "/product?key=simkey&domain=1&asin=%s", asins);
	/* HTTP 200, but an error and no payload: never "no data". */
	assert_true(has_envelope(j));
	assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "message"));
	assert_null(cJSON_GetObjectItem(j, "products"));
	assert_int_equal(jnum(j, "tokensConsumed"), 0);
	cJSON_Delete(j);
	assert_int_equal(stat_of(sim_port(sim), "faults", "error"), 1);
	free(asins);
	sim_stop(sim);
}

static void test_fault_garbage(void **state)
{
	(void)state;
	struct sim_options o = small();
	o.pgarbage = 1.0;
	struct sim *sim = test_sim_start(&o);
	char *asins = known_asins(sim_port(sim), 3);
	char path[256];
	snprintf(path, sizeof(path), "/product?key=simkey&domain=1&asin=%s", asins);
	struct http_res res;
	http_get(sim_port(sim), path, false, 0, &res);
	assert_int_equal(res.status, 200);
	assert_true(res.len > 0);
	assert_null(res.json); /* not parseable */
	http_res_free(&res);
	/* The work was done: charged. */
	assert_int_equal(stat_of(sim_port(sim), NULL, "tokensConsumedTotal"), 3);
	assert_int_equal(stat_of(sim_port(sim), NULL, "tokensLeft"), 1197);
	assert_int_equal(stat_of(sim_port(sim), "faults", "garbage"), 1);
	free(asins);
	sim_stop(sim);
}

static void test_fault_hang(void **state)
{
	(void)state;
	struct sim_options o = small();
	o.phang = 1.0;
	o.hang_ms = 30000;
	struct sim *sim = test_sim_start(&o);
	struct http_res res;
	http_get(sim_port(sim), "/token?key=simkey", false, 300, &res);
	assert_int_equal(res.curl_rc, CURLE_OPERATION_TIMEDOUT);
	assert_null(res.json);
	http_res_free(&res);
	assert_int_equal(stat_of(sim_port(sim), "faults", "hang"), 1);
	/* sim_stop cuts the hung request short rather than waiting 30 s. */
	sim_stop(sim);
}

static void statuses(uint64_t seed, long out[40])
{
	struct sim_options o = small();
	o.seed = seed;
	o.p500 = 0.3;
	o.perror = 0.2;
	struct sim *sim = test_sim_start(&o);
	for (int i = 0; i < 40; i++) {
		struct http_res res;
		http_get(sim_port(sim), "/token?key=simkey", false, 0, &res);
		out[i] = res.status * 10 + (cJSON_GetObjectItem(res.json, "error") != NULL);
		http_res_free(&res);
	}
	sim_stop(sim);
}

static void test_fault_determinism(void **state)
{
	(void)state;
	long a[40], b[40], c[40];
	statuses(7, a);
	statuses(7, b);
	statuses(8, c);
	assert_memory_equal(a, b, sizeof(a));
	assert_memory_not_equal(a, c, sizeof(a));
	int ok = 0, e500 = 0, inbody = 0;
	for (int i = 0; i < 40; i++) {
		ok += a[i] == 2000;
		e500 += a[i] == 5001;
		inbody += a[i] == 2001;
	}
	assert_true(ok > 0 && e500 > 0 && inbody > 0);
	assert_int_equal(ok + e500 + inbody, 40);
}

static void test_latency(void **state)
{
	(void)state;
	struct sim_options o = small();
	o.latency_ms = 150;
	struct sim *sim = test_sim_start(&o);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cJSON *j = get_json(sim_port(sim), 200, "/token?key=simkey");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(ms >= 150); /* a lower bound, never a speed claim */
	cJSON_Delete(j);
	sim_stop(sim);
}

static void test_sim_stats(void **state)
{
	(void)state;
	struct sim_options o = small();
	struct sim *sim = test_sim_start(&o);
	uint16_t port = sim_port(sim);
	char *asins = known_asins(port, 2); /* /_sim/ traffic is not counted */
	cJSON *j = get_json(port, 200, "/product?key=simkey&domain=1&asin=%s", asins);
	cJSON_Delete(j);
	j = get_json(port, 400, "/token?key=nope");
	cJSON_Delete(j);
	j = get_json(port, 404, "/nowhere");
	cJSON_Delete(j);
	j = get_json(port, 200, "/_sim/stats");
	assert_int_equal(jnum(j, "requestsTotal"), 3);
	assert_int_equal(jnum(j, "tokensConsumedTotal"), 2);
	assert_int_equal(jnum(j, "tokensLeft"), 1198);
	assert_int_equal(jnum(j, "rate"), 20);
	assert_int_equal(jnum(j, "cap"), 1200);
	assert_int_equal(jnum(j, "minuteMs"), o.minute_ms);
	assert_int_equal(jnum(j, "served429"), 0);
	assert_int_equal(jnum(j, "refills"), 0);
	assert_int_equal(jnum(j, "keepaMinute"), TEST_START_MS / 60000 - KEEPA_EPOCH_MIN);
	const cJSON *req = cJSON_GetObjectItem(j, "requests");
	assert_int_equal(jnum(cJSON_GetObjectItem(req, "/product"), "200"), 1);
	assert_int_equal(jnum(cJSON_GetObjectItem(req, "/token"), "400"), 1);
	assert_int_equal(jnum(cJSON_GetObjectItem(req, "other"), "404"), 1);
	cJSON_Delete(j);
	free(asins);
	sim_stop(sim);
}

static void test_sim_control(void **state)
{
	(void)state;
	struct sim_options o = small();
	struct sim *sim = test_sim_start(&o);
	uint16_t port = sim_port(sim);
	char *asins = known_asins(port, 2);

	/* A plan change: the envelope reports the new rate. */
	cJSON *j = get_json(port, 200, "/_sim/control?rate=40");
	assert_int_equal(jnum(j, "rate"), 40);
	cJSON_Delete(j);
	j = get_json(port, 200, "/token?key=simkey");
	assert_int_equal(jnum(j, "refillRate"), 40);
	cJSON_Delete(j);

	/* Put the bucket in deficit: paid calls are refused. */
	j = get_json(port, 200, "/_sim/control?tokens=-5");
	assert_int_equal(jnum(j, "tokensLeft"), -5);
	cJSON_Delete(j);
	j = get_json(port, 429, "/product?key=simkey&domain=1&asin=%s", asins);
	cJSON_Delete(j);

	/* A restart refills to the start balance; cap changes follow. */
	j = get_json(port, 200, "/_sim/control?restart=1");
	assert_int_equal(jnum(j, "tokensLeft"), 1200);
	cJSON_Delete(j);
	j = get_json(port, 200, "/_sim/control?cap=100&restart=1");
	assert_int_equal(jnum(j, "tokensLeft"), 100);
	assert_int_equal(jnum(j, "cap"), 100);
	cJSON_Delete(j);
	j = get_json(port, 400, "/_sim/control?rate=abc");
	cJSON_Delete(j);
	/* An unseen consumer on the same key. */
	j = get_json(port, 200, "/_sim/control?consume=30");
	assert_int_equal(jnum(j, "tokensLeft"), 70);
	assert_int_equal(jnum(j, "outsideConsumed"), 30);
	assert_int_equal(jnum(j, "tokensConsumedTotal"), 0);
	cJSON_Delete(j);
	j = get_json(port, 200, "/product?key=simkey&domain=1&asin=%s", asins);
	assert_int_equal(jnum(j, "tokensLeft"), 68);
	cJSON_Delete(j);
	free(asins);
	sim_stop(sim);
}

static void test_sim_deals_shape(void **state)
{
	(void)state;
	struct sim_options o = small();
	struct sim *sim = test_sim_start(&o);
	char *p = deal_path("/_sim/deals", "{\"domainId\":1,\"priceTypes\":[3],\"dateRange\":3}");
	cJSON *j = get_json(sim_port(sim), 200, "%s", p);
	assert_true(jnum(j, "count") > 0);
	assert_int_equal(jnum(j, "count"), jnum(j, "totalMatched"));
	assert_true(jnum(j, "timestamp") > 0);
	const cJSON *deals = cJSON_GetObjectItem(j, "deals");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(deals, "dr")), jnum(j, "count"));
	long long sum = 0;
	const cJSON *c;
	cJSON_ArrayForEach(c, cJSON_GetObjectItem(deals, "categoryCount"))
	{
		sum += (long long)c->valuedouble;
	}
	assert_int_equal(sum, jnum(j, "count"));
	cJSON_Delete(j);
	free(p);
	p = deal_path("/_sim/deals", "{\"domainId\":1,\"priceTypes\":[3],\"dateRange\":9}");
	j = get_json(sim_port(sim), 400, "%s", p);
	cJSON_Delete(j);
	free(p);
	/* Ground truth costs nothing. */
	assert_int_equal(stat_of(sim_port(sim), NULL, "tokensLeft"), 1200);
	assert_int_equal(stat_of(sim_port(sim), NULL, "requestsTotal"), 0);
	sim_stop(sim);
}

int main(void)
{
	/* clang-format off: one test per line */
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fault_500),         cmocka_unit_test(test_fault_in_body_error),
	    cmocka_unit_test(test_fault_garbage),     cmocka_unit_test(test_fault_hang),
	    cmocka_unit_test(test_fault_determinism), cmocka_unit_test(test_latency),
	    cmocka_unit_test(test_sim_stats),         cmocka_unit_test(test_sim_control),
	    cmocka_unit_test(test_sim_deals_shape),
	};
	/* clang-format on */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
