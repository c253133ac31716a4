/*
 * test_sim_product.c - /product and /seller: costs, the 100-ASIN limit,
 * csv/stats consistency (recomputed here, independently, from the csv),
 * history and days, validation, and determinism for a seed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "simtest.h"

static struct sim *shared;
static uint16_t port;

static int setup(void **state)
{
	(void)state;
	struct sim_options o = test_options();
	o.history_days = 400; /* longer than the 365-day statistics */
	shared = test_sim_start(&o);
	port = sim_port(shared);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	sim_stop(shared);
	return 0;
}

static const cJSON *products(const cJSON *j)
{
	const cJSON *p = cJSON_GetObjectItem(j, "products");
	assert_true(cJSON_IsArray(p));
	return p;
}

static void test_product_cost_per_product(void **state)
{
	(void)state;
	char *asins = known_asins(port, 3), q[256];
	snprintf(q, sizeof(q), "ZZZZZZZZZZ,%s,B0NOSUCH00", asins);
	long long before = sim_balance(port);
	cJSON *j = get_json(port, 200, "/product?key=simkey&domain=1&asin=%s", q);
	assert_int_equal(cJSON_GetArraySize(products(j)), 3);
	assert_int_equal(jnum(j, "tokensConsumed"), 3);
	assert_int_equal(jnum(j, "tokensLeft"), before - 3);
	/* In request order. */
	char first[11];
	memcpy(first, asins, 10);
	first[10] = '\0';
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(products(j), 0), "asin")->valuestring,
	                    first);
	cJSON_Delete(j);

	/* Unknown ASINs are neither returned nor charged. */
	j = get_json(port, 200, "/product?key=simkey&domain=1&asin=ZZZZZZZZZZ,B0NOSUCH00");
	assert_int_equal(cJSON_GetArraySize(products(j)), 0);
	assert_int_equal(jnum(j, "tokensConsumed"), 0);
	cJSON_Delete(j);
	free(asins);
}

static void test_product_offers_cost(void **state)
{
	(void)state;
	char *asins = known_asins(port, 8);
	cJSON *j = get_json(port, 200, "/product?key=simkey&domain=1&asin=%s&offers=20", asins);
	long long expect = 0;
	const cJSON *p;
	cJSON_ArrayForEach(p, products(j))
	{
		const cJSON *offers = cJSON_GetObjectItem(p, "offers");
		assert_true(cJSON_IsArray(offers));
		int n = cJSON_GetArraySize(offers);
		assert_true(n <= 20);
		expect += 6 * (n > 10 ? (n + 9) / 10 : 1); /* 6 per page of 10 offers */
		if (n) {
			const cJSON *o = cJSON_GetArrayItem(offers, 0);
			assert_true(cJSON_IsString(cJSON_GetObjectItem(o, "sellerId")));
			assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "offerCSV")), 3);
		}
	}
	assert_int_equal(jnum(j, "tokensConsumed"), expect);
	assert_true(expect >= 6 * 8);
	cJSON_Delete(j);
	/* offers outside 20..100 is refused. */
	j = get_json(port, 400, "/product?key=simkey&domain=1&asin=%s&offers=10", asins);
	assert_int_equal(jnum(j, "tokensConsumed"), 0);
	cJSON_Delete(j);
	free(asins);
}

static void test_product_buybox_cost(void **state)
{
	(void)state;
	char *asins = known_asins(port, 4);
	cJSON *j = get_json(port, 200, "/product?key=simkey&domain=1&asin=%s&buybox=1", asins);
	assert_int_equal(jnum(j, "tokensConsumed"), 4 * 3);
	const cJSON *p;
	cJSON_ArrayForEach(p, products(j))
	{
		const cJSON *bb = cJSON_GetArrayItem(cJSON_GetObjectItem(p, "csv"), 18);
		const cJSON *nw = cJSON_GetArrayItem(cJSON_GetObjectItem(p, "csv"), 1);
		/* Buy box is a shipping type: [t, price, shipping] triples. */
		assert_true(cJSON_IsArray(bb));
		assert_int_equal(cJSON_GetArraySize(bb) % 3, 0);
		assert_int_equal(cJSON_GetArraySize(bb) / 3, cJSON_GetArraySize(nw) / 2);
		assert_int_equal(cJSON_GetArrayItem(bb, 1)->valueint, cJSON_GetArrayItem(nw, 1)->valueint);
	}
	cJSON_Delete(j);
	j = get_json(port, 200, "/product?key=simkey&domain=1&asin=%s", asins);
	assert_int_equal(jnum(j, "tokensConsumed"), 4);
	assert_true(cJSON_IsNull(
	    cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(products(j), 0), "csv"), 18)));
	cJSON_Delete(j);
	free(asins);
}

static void test_product_asin_limit(void **state)
{
	(void)state;
	char *asins = known_asins(port, 101);
	long long before = sim_balance(port);
	cJSON *j = get_json(port, 400, "/product?key=simkey&domain=1&asin=%s", asins);
	assert_int_equal(jnum(j, "tokensConsumed"), 0);
	cJSON_Delete(j);
	assert_int_equal(sim_balance(port), before);
	asins[strlen(asins) - 11] = '\0'; /* drop the last one: 100 */
	j = get_json(port, 200, "/product?key=simkey&domain=1&asin=%s", asins);
	assert_int_equal(cJSON_GetArraySize(products(j)), 100);
	assert_int_equal(jnum(j, "tokensConsumed"), 100);
	cJSON_Delete(j);
	free(asins);
}

/* ---- an independent reading of the csv, for the consistency test ---- */

struct pts {
	long long t[16384], v[16384];
	int n;
};

static void read_csv(const cJSON *a, struct pts *p)
{
	int n;
	const cJSON **it = items(a, &n);
	assert_true(n % 2 == 0 && n / 2 <= 16384);
	p->n = n / 2;
	for (int i = 0; i < p->n; i++) {
		p->t[i] = (long long)it[2 * i]->valuedouble;
		p->v[i] = (long long)it[2 * i + 1]->valuedouble;
		if (i)
			assert_true(p->t[i] > p->t[i - 1]);
	}
	free(it);
}

/* Walk the minutes [now + 1 - days*1440, now + 1) forward, segment by
 * segment, accumulating what the statistics need. */
struct win {
	long long sum, valid, covered, oos;
	long long min_t, min_v, max_t, max_v;
	int drops;
};

static struct win window(const struct pts *p, long long now, int days)
{
	struct win w = {.min_v = -1, .max_v = -1};
	long long a = now + 1 - (long long)days * 1440, b = now + 1;
	for (int i = 0; i < p->n; i++) {
		long long s = p->t[i], e = i + 1 < p->n ? p->t[i + 1] : b;
		if (s < a)
			s = a;
		if (e > b)
			e = b;
		if (p->t[i] >= a && i > 0 && p->v[i] >= 0 && p->v[i - 1] >= 0 && p->v[i] < p->v[i - 1])
			w.drops++;
		if (e <= s)
			continue;
		w.covered += e - s;
		if (p->v[i] < 0) {
			w.oos += e - s;
			continue;
		}
		w.sum += p->v[i] * (e - s);
		w.valid += e - s;
		if (w.min_v < 0 || p->v[i] < w.min_v) {
			w.min_v = p->v[i];
			w.min_t = p->t[i];
		}
		if (w.max_v < 0 || p->v[i] > w.max_v) {
			w.max_v = p->v[i];
			w.max_t = p->t[i];
		}
	}
	return w;
}

static long long w_avg(struct win w)
{
	return w.valid ? (w.sum + w.valid / 2) / w.valid : -1;
}

static long long w_oos(struct win w)
{
	return w.covered ? (w.oos * 100 + w.covered / 2) / w.covered : -1;
}

static void test_product_csv_stats_consistency(void **state)
{
	(void)state;
	static struct pts p;
	static const int types[] = {0, 1, 2, 3, 16, 17};
	char *asins = known_asins(port, 40);
	cJSON *j = get_json(port, 200, "/product?key=simkey&domain=1&asin=%s&stats=180", asins);
	long long now = env_minute(j);
	int checked_avg = 0;
	const cJSON *prod;
	cJSON_ArrayForEach(prod, products(j))
	{
		const cJSON *csv = cJSON_GetObjectItem(prod, "csv"), *st = cJSON_GetObjectItem(prod, "stats");
		assert_int_equal(cJSON_GetArraySize(csv), 19);
		long long last_update = -1;
		for (size_t k = 0; k < sizeof(types) / sizeof(*types); k++) {
			int t = types[k];
			const cJSON *a = cJSON_GetArrayItem(csv, t);
			if (cJSON_IsNull(a)) {
				assert_int_equal(jidx(st, "current", t), -1);
				continue;
			}
			read_csv(a, &p);
			assert_true(p.n > 0 && p.t[p.n - 1] <= now);
			assert_int_equal(jidx(st, "current", t), p.v[p.n - 1]);
			if (t == 3)
				last_update = p.t[p.n - 1];
			assert_int_equal(jidx(st, "avg", t), w_avg(window(&p, now, 180)));
			assert_int_equal(jidx(st, "avg30", t), w_avg(window(&p, now, 30)));
			assert_int_equal(jidx(st, "avg90", t), w_avg(window(&p, now, 90)));
			assert_int_equal(jidx(st, "avg180", t), w_avg(window(&p, now, 180)));
			assert_int_equal(jidx(st, "avg365", t), w_avg(window(&p, now, 365)));
			checked_avg += 5;
			assert_int_equal(jidx(st, "outOfStockPercentage30", t), w_oos(window(&p, now, 30)));
			assert_int_equal(jidx(st, "outOfStockPercentage90", t), w_oos(window(&p, now, 90)));
			struct win w = window(&p, now, 180);
			const cJSON *mn = cJSON_GetArrayItem(cJSON_GetObjectItem(st, "min"), t);
			const cJSON *mx = cJSON_GetArrayItem(cJSON_GetObjectItem(st, "max"), t);
			if (w.min_v < 0) {
				assert_true(cJSON_IsNull(mn) && cJSON_IsNull(mx));
			} else {
				assert_int_equal(cJSON_GetArrayItem(mn, 0)->valuedouble, w.min_t);
				assert_int_equal(cJSON_GetArrayItem(mn, 1)->valuedouble, w.min_v);
				assert_int_equal(cJSON_GetArrayItem(mx, 0)->valuedouble, w.max_t);
				assert_int_equal(cJSON_GetArrayItem(mx, 1)->valuedouble, w.max_v);
			}
			if (t == 3) {
				assert_int_equal(jnum(st, "salesRankDrops30"), window(&p, now, 30).drops);
				assert_int_equal(jnum(st, "salesRankDrops90"), window(&p, now, 90).drops);
				assert_int_equal(jnum(st, "salesRankDrops180"), window(&p, now, 180).drops);
				assert_int_equal(jnum(st, "salesRankDrops365"), window(&p, now, 365).drops);
				assert_true(jnum(st, "salesRankDrops30") > 0);
			}
		}
		assert_int_equal(jnum(prod, "lastUpdate"), last_update);
		assert_true(jnum(prod, "lastPriceChange") <= now);
	}
	assert_true(checked_avg >= 40 * 5 * 4);
	cJSON_Delete(j);
	free(asins);
}

static void test_product_history_and_days(void **state)
{
	(void)state;
	static struct pts p;
	char *asins = known_asins(port, 5);
	cJSON *j = get_json(port, 200, "/product?key=simkey&domain=1&asin=%s&history=0", asins);
	const cJSON *prod;
	cJSON_ArrayForEach(prod, products(j))
	{
		assert_true(cJSON_IsNull(cJSON_GetObjectItem(prod, "csv")));
	}
	cJSON_Delete(j);
	j = get_json(port, 200, "/product?key=simkey&domain=1&asin=%s&days=30&stats=30", asins);
	long long now = env_minute(j), cut = now + 1 - 30 * 1440;
	cJSON_ArrayForEach(prod, products(j))
	{
		const cJSON *a = cJSON_GetArrayItem(cJSON_GetObjectItem(prod, "csv"), 3);
		read_csv(a, &p);
		/* The point in force at the cut, then only points inside. */
		assert_true(p.n >= 2);
		assert_true(p.t[1] > cut);
		assert_int_equal(p.v[p.n - 1], jidx(cJSON_GetObjectItem(prod, "stats"), "current", 3));
		assert_int_equal(w_avg(window(&p, now, 30)),
		                 jidx(cJSON_GetObjectItem(prod, "stats"), "avg30", 3));
	}
	cJSON_Delete(j);
	free(asins);
}

static void test_product_validation(void **state)
{
	(void)state;
	static const char *const bad[] = {
	    "/product?key=simkey&asin=0000000000",          /* no domain */
	    "/product?key=simkey&domain=7&asin=0000000000", /* not a domain */
	    "/product?key=simkey&domain=1",                 /* no asin */
	    "/product?key=simkey&domain=1&asin=X&stats=abc",
	    "/product?key=simkey&domain=1&asin=X&history=2",
	    "/product?key=simkey&domain=1&code=0123456789012",
	    "/seller?key=simkey&domain=1",
	};
	long long before = sim_balance(port);
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		cJSON *j = get_json(port, 400, "%s", bad[i]);
		assert_true(has_envelope(j));
		assert_int_equal(jnum(j, "tokensConsumed"), 0);
		assert_non_null(cJSON_GetObjectItem(j, "error"));
		cJSON_Delete(j);
	}
	assert_int_equal(sim_balance(port), before);
}

static void test_seller(void **state)
{
	(void)state;
	char *asins = known_asins(port, 10);
	cJSON *j = get_json(port, 200, "/product?key=simkey&domain=1&asin=%s&offers=20", asins);
	char ids[64] = "";
	const cJSON *prod;
	cJSON_ArrayForEach(prod, products(j))
	{
		const cJSON *o = cJSON_GetArrayItem(cJSON_GetObjectItem(prod, "offers"), 0);
		if (o && !ids[0])
			snprintf(ids, sizeof(ids), "%s", cJSON_GetObjectItem(o, "sellerId")->valuestring);
	}
	cJSON_Delete(j);
	assert_true(ids[0]);
	j = get_json(port, 200, "/seller?key=simkey&domain=1&seller=%s,ANOSUCHSELLER", ids);
	assert_int_equal(jnum(j, "tokensConsumed"), 1);
	const cJSON *s = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "sellers"), ids);
	assert_non_null(s);
	assert_string_equal(cJSON_GetObjectItem(s, "sellerId")->valuestring, ids);
	cJSON_Delete(j);
	free(asins);
}

/* The payload without the envelope, as text. */
static char *payload(cJSON *j)
{
	static const char *const env[] = {"timestamp",         "tokensLeft",         "refillIn",
	                                  "refillRate",        "tokenFlowReduction", "tokensConsumed",
	                                  "processingTimeInMs"};
	for (size_t i = 0; i < sizeof(env) / sizeof(*env); i++)
		cJSON_DeleteItemFromObject(j, env[i]);
	return cJSON_PrintUnformatted(j);
}

static void test_determinism(void **state)
{
	(void)state;
	struct sim_options o = test_options();
	o.products = 500;
	o.seed = 42;
	struct sim *a = test_sim_start(&o), *b = test_sim_start(&o);
	o.seed = 43;
	struct sim *c = test_sim_start(&o);
	char *asins = known_asins(sim_port(a), 30);
	char *asins_b = known_asins(sim_port(b), 30), *asins_c = known_asins(sim_port(c), 30);
	assert_string_equal(asins, asins_b);
	assert_string_not_equal(asins, asins_c);
	cJSON *ja =
	    get_json(sim_port(a), 200, "/product?key=simkey&domain=1&asin=%s&stats=90&offers=20", asins);
	cJSON *jb =
	    get_json(sim_port(b), 200, "/product?key=simkey&domain=1&asin=%s&stats=90&offers=20", asins);
	char *pa = payload(ja), *pb = payload(jb);
	assert_string_equal(pa, pb);
	assert_true(strlen(pa) > 10000);
	free(pa);
	free(pb);
	cJSON_Delete(ja);
	cJSON_Delete(jb);
	char *da =
	    deal_path("/_sim/deals", "{\"domainId\":1,\"priceTypes\":[1],\"dateRange\":2,\"sortType\":2}");
	ja = get_json(sim_port(a), 200, "%s", da);
	jb = get_json(sim_port(b), 200, "%s", da);
	pa = cJSON_PrintUnformatted(cJSON_GetObjectItem(ja, "deals"));
	pb = cJSON_PrintUnformatted(cJSON_GetObjectItem(jb, "deals"));
	assert_string_equal(pa, pb);
	free(pa);
	free(pb);
	free(da);
	cJSON_Delete(ja);
	cJSON_Delete(jb);
	free(asins);
	free(asins_b);
	free(asins_c);
	sim_stop(a);
	sim_stop(b);
	sim_stop(c);
}

int main(void)
{
	/* clang-format off: one test per line */
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_product_cost_per_product),
	    cmocka_unit_test(test_product_offers_cost),
	    cmocka_unit_test(test_product_buybox_cost),
	    cmocka_unit_test(test_product_asin_limit),
	    cmocka_unit_test(test_product_csv_stats_consistency),
	    cmocka_unit_test(test_product_history_and_days),
	    cmocka_unit_test(test_product_validation),
	    cmocka_unit_test(test_seller),
	    cmocka_unit_test(test_determinism),
	};
	/* clang-format on */
	return cmocka_run_group_tests(tests, setup, teardown);
}
