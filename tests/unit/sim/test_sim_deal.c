/*
 * test_sim_deal.c - /deal: validation, cost, pagination, the 10,000 cap,
 * sort orders, filters, agreement with /product, and change over minutes.
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

/* Every deal of a selection, from the ground-truth endpoint. */
static cJSON *all_deals(const char *sel)
{
	char *p = deal_path("/_sim/deals", sel);
	cJSON *j = get_json(port, 200, "%s", p);
	free(p);
	return j;
}

static const cJSON *dr_of(const cJSON *j)
{
	const cJSON *dr = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "deals"), "dr");
	assert_true(cJSON_IsArray(dr));
	return dr;
}

/* Every selection must be refused with 400, on GET and POST, uncharged. */
static void expect_refused(const char *const *bad, size_t n)
{
	long long before = sim_balance(port);
	for (size_t i = 0; i < n; i++) {
		char *p = deal_path("/deal?key=simkey", bad[i]);
		cJSON *j = get_json(port, 400, "%s", p);
		assert_true(has_envelope(j));
		assert_int_equal(jnum(j, "tokensConsumed"), 0);
		assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "message"));
		cJSON_Delete(j);
		free(p);
		struct http_res res;
		http_post(port, "/deal?key=simkey", bad[i], &res);
		assert_int_equal(res.status, 400);
		http_res_free(&res);
	}
	assert_int_equal(sim_balance(port), before);
}

static void test_deal_two_price_types(void **state)
{
	(void)state;
	static const char *const bad[] = {
	    "{\"domainId\":1,\"priceTypes\":[0,1]}",
	    "{\"domainId\":1,\"priceTypes\":[]}",
	    "{\"domainId\":1}",
	};
	expect_refused(bad, sizeof(bad) / sizeof(*bad));
}

static void test_deal_date_range_4(void **state)
{
	(void)state;
	/* The seed's operator sent dateRange 4, outside the documented enum. */
	static const char *const bad[] = {
	    "{\"domainId\":1,\"priceTypes\":[2],\"dateRange\":4}",
	    "{\"domainId\":1,\"priceTypes\":[2],\"dateRange\":30}",
	    "{\"domainId\":1,\"priceTypes\":[2],\"dateRange\":-1}",
	};
	expect_refused(bad, sizeof(bad) / sizeof(*bad));
	/* 0..3 are accepted. */
	for (int r = 0; r < 4; r++) {
		char sel[128];
		snprintf(sel, sizeof(sel), "{\"domainId\":1,\"priceTypes\":[2],\"dateRange\":%d}", r);
		char *p = deal_path("/deal?key=simkey", sel);
		cJSON *j = get_json(port, 200, "%s", p);
		cJSON_Delete(j);
		free(p);
	}
}

static void test_deal_string_for_number(void **state)
{
	(void)state;
	static const char *const bad[] = {
	    "{\"domainId\":\"1\",\"priceTypes\":[2]}",
	    "{\"domainId\":1,\"priceTypes\":[\"2\"]}",
	    "{\"domainId\":1,\"priceTypes\":[2],\"page\":\"0\"}",
	    "{\"domainId\":1,\"priceTypes\":[2],\"dateRange\":\"1\"}",
	    "{\"domainId\":1,\"priceTypes\":[2],\"currentRange\":[\"2000\",45100]}",
	    "{\"domainId\":1,\"priceTypes\":[2],\"includeCategories\":[\"283155\"]}",
	    "{\"domainId\":1,\"priceTypes\":[2],\"isRangeEnabled\":\"true\"}",
	    "{\"domainId\":1,\"priceTypes\":[2],\"page\":1.5}",
	};
	expect_refused(bad, sizeof(bad) / sizeof(*bad));
}

static void test_deal_other_validation(void **state)
{
	(void)state;
	static const char *const bad[] = {
	    "{\"priceTypes\":[2]}", /* domainId is required */
	    "{\"domainId\":7,\"priceTypes\":[2]}",
	    "{\"domainId\":1,\"priceTypes\":[2],\"sortType\":0}",
	    "{\"domainId\":1,\"priceTypes\":[2],\"sortType\":5}",
	    "{\"domainId\":1,\"priceTypes\":[2],\"page\":-1}",
	    "{\"domainId\":1,\"priceTypes\":[2],\"currentRange\":[1]}",
	    "[1,2]",
	    "not json",
	};
	expect_refused(bad, sizeof(bad) / sizeof(*bad));
	cJSON *j = get_json(port, 400, "/deal?key=simkey");
	cJSON_Delete(j);
}

static void test_deal_cost_and_shape(void **state)
{
	(void)state;
	const char *sel = "{\"domainId\":1,\"priceTypes\":[1],\"dateRange\":2,\"sortType\":4}";
	long long before = sim_balance(port);
	char *p = deal_path("/deal?key=simkey", sel);
	cJSON *j = get_json(port, 200, "%s", p);
	free(p);
	assert_true(has_envelope(j));
	assert_int_equal(jnum(j, "tokensConsumed"), 5);
	assert_int_equal(jnum(j, "tokensLeft"), before - 5);
	const cJSON *deals = cJSON_GetObjectItem(j, "deals");
	assert_true(cJSON_IsArray(cJSON_GetObjectItem(deals, "categoryIds")));
	assert_true(cJSON_IsArray(cJSON_GetObjectItem(deals, "categoryNames")));
	assert_true(cJSON_IsArray(cJSON_GetObjectItem(deals, "categoryCount")));
	const cJSON *dr = dr_of(j);
	assert_int_equal(cJSON_GetArraySize(dr), 150);
	const cJSON *d = cJSON_GetArrayItem(dr, 0);
	static const char *const fields[] = {
	    "asin",  "parentAsin",   "title", "rootCat",      "categories", "image",        "current",
	    "delta", "deltaPercent", "avg",   "creationDate", "lastUpdate", "currentSince", "deltaLast"};
	for (size_t i = 0; i < sizeof(fields) / sizeof(*fields); i++)
		assert_non_null(cJSON_GetObjectItem(d, fields[i]));
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(d, "avg")), 4);
	assert_true(cJSON_GetArraySize(cJSON_GetArrayItem(cJSON_GetObjectItem(d, "avg"), 3)) > 3);
	/* image: ASCII codes of the file name. */
	const cJSON *img = cJSON_GetObjectItem(d, "image");
	char name[64] = {0};
	for (int i = 0; i < cJSON_GetArraySize(img) && i < 63; i++)
		name[i] = (char)cJSON_GetArrayItem(img, i)->valueint;
	assert_non_null(strstr(name, ".jpg"));
	/* delta = avg - current, per date range. */
	for (int r = 0; r < 4; r++)
		assert_int_equal(jidx2(d, "delta", r, 1), jidx2(d, "avg", r, 1) - jidx(d, "current", 1));

	/* POST with the same selection as body: the same page. */
	struct http_res res;
	http_post(port, "/deal?key=simkey", sel, &res);
	assert_int_equal(res.status, 200);
	assert_int_equal(jnum(res.json, "tokensConsumed"), 5);
	const cJSON *dr2 = dr_of(res.json);
	assert_int_equal(cJSON_GetArraySize(dr2), 150);
	for (int i = 0; i < 150; i++)
		assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(dr, i), "asin")->valuestring,
		                    cJSON_GetObjectItem(cJSON_GetArrayItem(dr2, i), "asin")->valuestring);
	http_res_free(&res);
	cJSON_Delete(j);
}

static void check_pages(const char *sel_fmt, int expect_total)
{
	int total = 0, pages = 0;
	char sel[512], *p;
	for (int page = 0;; page++) {
		snprintf(sel, sizeof(sel), sel_fmt, page);
		p = deal_path("/deal?key=simkey", sel);
		cJSON *j = get_json(port, 200, "%s", p);
		free(p);
		int n = cJSON_GetArraySize(dr_of(j));
		cJSON_Delete(j);
		total += n;
		pages++;
		if (n < 150) /* the documented stop: a page with fewer */
			break;
		assert_int_equal(n, 150);
	}
	assert_int_equal(total, expect_total);
	assert_int_equal(pages, expect_total / 150 + 1);
}

static void test_deal_pagination(void **state)
{
	(void)state;
	const char *base = "{\"domainId\":1,\"priceTypes\":[0],\"dateRange\":3,\"sortType\":2";
	char sel[512];
	snprintf(sel, sizeof(sel), "%s}", base);
	cJSON *all = all_deals(sel);
	int total = (int)jnum(all, "count");
	assert_int_equal(total, jnum(all, "totalMatched"));
	assert_true(total > 300 && total % 150 != 0);
	/* Pages concatenate to the ground truth, in order. */
	int ntruth;
	const cJSON **truth = items(dr_of(all), &ntruth);
	for (int page = 0; page * 150 < total; page++) {
		snprintf(sel, sizeof(sel), "%s,\"page\":%d}", base, page);
		char *p = deal_path("/deal?key=simkey", sel);
		cJSON *j = get_json(port, 200, "%s", p);
		free(p);
		const cJSON *dr = dr_of(j);
		int n = cJSON_GetArraySize(dr);
		assert_int_equal(n, total - page * 150 < 150 ? total - page * 150 : 150);
		for (int i = 0; i < n; i++)
			assert_string_equal(
			    cJSON_GetObjectItem(cJSON_GetArrayItem(dr, i), "asin")->valuestring,
			    cJSON_GetObjectItem(truth[page * 150 + i], "asin")->valuestring);
		cJSON_Delete(j);
	}
	char fmt[512];
	snprintf(fmt, sizeof(fmt), "%s,\"page\":%%d}", base);
	check_pages(fmt, total);
	free(truth);
	cJSON_Delete(all);
}

static void test_deal_cap_10000(void **state)
{
	(void)state;
	struct sim_options o = test_options();
	o.products = 16000;
	o.history_days = 91;
	struct sim *big = test_sim_start(&o);
	uint16_t saved = port;
	port = sim_port(big);
	char *sp = deal_path("/_sim/deals?summary=1", "{\"domainId\":1,\"priceTypes\":[3],\"dateRange\":3}");
	cJSON *all = get_json(port, 200, "%s", sp);
	free(sp);
	assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(all, "deals"), "dr"));
	assert_true(jnum(all, "totalMatched") > 10000);
	assert_int_equal(jnum(all, "count"), 10000);
	cJSON_Delete(all);
	/* 66 full pages, then 100, then nothing. */
	char *p =
	    deal_path("/deal?key=simkey", "{\"domainId\":1,\"priceTypes\":[3],\"dateRange\":3,\"page\":66}");
	cJSON *j = get_json(port, 200, "%s", p);
	assert_int_equal(cJSON_GetArraySize(dr_of(j)), 100);
	cJSON_Delete(j);
	free(p);
	p = deal_path("/deal?key=simkey", "{\"domainId\":1,\"priceTypes\":[3],\"dateRange\":3,\"page\":67}");
	j = get_json(port, 200, "%s", p);
	assert_int_equal(cJSON_GetArraySize(dr_of(j)), 0);
	assert_int_equal(jnum(j, "tokensConsumed"), 5);
	cJSON_Delete(j);
	free(p);
	port = saved;
	sim_stop(big);
}

/* The key a sortType orders by, for deal d (price type pt, range dr). */
static long long sort_key(const cJSON *d, int sort, int pt, int dr)
{
	switch (sort < 0 ? -sort : sort) {
	case 1:
		return jnum(d, "creationDate");
	case 2:
		return jidx2(d, "delta", dr, pt);
	case 3:
		return jidx(d, "current", 3);
	default:
		return jidx2(d, "deltaPercent", dr, pt);
	}
}

static void test_deal_sort_orders(void **state)
{
	(void)state;
	static const int sorts[] = {1, 2, 3, 4, -2, -3, -4};
	for (size_t s = 0; s < sizeof(sorts) / sizeof(*sorts); s++) {
		int sort = sorts[s];
		char sel[256];
		snprintf(sel, sizeof(sel),
		         "{\"domainId\":1,\"priceTypes\":[2],\"dateRange\":1,\"sortType\":%d}", sort);
		cJSON *all = all_deals(sel);
		int n;
		const cJSON **dr = items(dr_of(all), &n);
		assert_true(n > 20);
		/* Descending for 1, 2, 4 and -3; ascending for 3, -2, -4. */
		bool desc = sort == 1 || sort == 2 || sort == 4 || sort == -3;
		int changes = 0;
		for (int i = 1; i < n; i++) {
			long long a = sort_key(dr[i - 1], sort, 2, 1);
			long long b = sort_key(dr[i], sort, 2, 1);
			if (desc)
				assert_true(a >= b);
			else
				assert_true(a <= b);
			changes += a != b;
		}
		assert_true(changes > 0);
		/* /deal page 0 is the head of the same order. */
		char *p = deal_path("/deal?key=simkey", sel);
		cJSON *j = get_json(port, 200, "%s", p);
		free(p);
		int np;
		const cJSON **page = items(dr_of(j), &np);
		for (int i = 0; i < np; i++)
			assert_string_equal(cJSON_GetObjectItem(page[i], "asin")->valuestring,
			                    cJSON_GetObjectItem(dr[i], "asin")->valuestring);
		free(page);
		free(dr);
		cJSON_Delete(j);
		cJSON_Delete(all);
	}
}

static int count_of(const char *sel)
{
	cJSON *j = all_deals(sel);
	int n = (int)jnum(j, "count");
	cJSON_Delete(j);
	return n;
}

static void test_deal_filters(void **state)
{
	(void)state;
	/* The seed operator's query (with a valid dateRange). */
	const char *op = "{\"domainId\":1,\"priceTypes\":[2],\"dateRange\":2,\"includeCategories\":[283155],"
	                 "\"salesRankRange\":[10000,10000000],\"currentRange\":[2000,45100],"
	                 "\"deltaPercentRange\":[10,100],\"isRangeEnabled\":true}";
	cJSON *all = all_deals(op);
	int n;
	const cJSON **dr = items(dr_of(all), &n);
	assert_true(n > 0);
	for (int i = 0; i < n; i++) {
		const cJSON *d = dr[i];
		assert_int_equal(jnum(d, "rootCat"), 283155);
		long long cur = jidx(d, "current", 2), rank = jidx(d, "current", 3),
		          pct = jidx2(d, "deltaPercent", 2, 2);
		assert_true(cur >= 2000 && cur <= 45100);
		assert_true(rank >= 10000 && rank <= 10000000);
		assert_true(pct >= 10 && pct <= 100);
	}
	free(dr);
	cJSON_Delete(all);

	/* Without isRangeEnabled the ranges are inactive. */
	const char *off = "{\"domainId\":1,\"priceTypes\":[2],\"dateRange\":2,\"includeCategories\":[283155],"
	                  "\"salesRankRange\":[10000,10000000],\"currentRange\":[2000,45100],"
	                  "\"deltaPercentRange\":[10,100]}";
	const char *books =
	    "{\"domainId\":1,\"priceTypes\":[2],\"dateRange\":2,\"includeCategories\":[283155]}";
	int n_off = count_of(off), n_books = count_of(books);
	assert_int_equal(n_off, n_books);
	assert_true(n_books > n);

	/* deltaRange, and include/exclude partition the whole. */
	const char *dr_sel = "{\"domainId\":1,\"priceTypes\":[1],\"dateRange\":3,\"isRangeEnabled\":true,"
	                     "\"deltaRange\":[500,100000]}";
	all = all_deals(dr_sel);
	dr = items(dr_of(all), &n);
	assert_true(n > 0);
	for (int i = 0; i < n; i++)
		assert_true(jidx2(dr[i], "delta", 3, 1) >= 500);
	free(dr);
	cJSON_Delete(all);
	const char *everything = "{\"domainId\":1,\"priceTypes\":[2],\"dateRange\":2}";
	const char *not_books =
	    "{\"domainId\":1,\"priceTypes\":[2],\"dateRange\":2,\"excludeCategories\":[283155]}";
	int n_all = count_of(everything), n_not = count_of(not_books);
	assert_true(n_not > 0 && n_books > 0);
	assert_int_equal(n_all, n_not + n_books);

	/* Only products refreshed in the last 12 hours, and only real changes. */
	all = all_deals(everything);
	dr = items(dr_of(all), &n);
	long long now = jnum(all, "keepaMinute");
	for (int i = 0; i < n; i++) {
		const cJSON *d = dr[i];
		assert_true(jnum(d, "lastUpdate") >= now - 720 && jnum(d, "lastUpdate") <= now);
		assert_true(jidx2(d, "delta", 2, 2) != 0);
	}
	free(dr);
	cJSON_Delete(all);
}

static void test_deal_matches_product(void **state)
{
	(void)state;
	cJSON *all = all_deals("{\"domainId\":1,\"priceTypes\":[2],\"dateRange\":3,\"sortType\":4}");
	int n;
	const cJSON **dr = items(dr_of(all), &n);
	assert_true(n >= 20);
	for (int i = 0; i < 20; i++) {
		const cJSON *d = dr[i];
		const char *asin = cJSON_GetObjectItem(d, "asin")->valuestring;
		cJSON *j = get_json(port, 200, "/product?key=simkey&domain=1&asin=%s&stats=7", asin);
		assert_int_equal(env_minute(j), jnum(all, "keepaMinute"));
		const cJSON *p = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "products"), 0);
		const cJSON *st = cJSON_GetObjectItem(p, "stats");
		assert_int_equal(jnum(p, "lastUpdate"), jnum(d, "lastUpdate"));
		for (int t = 0; t < 4; t++) {
			assert_int_equal(jidx(st, "current", t), jidx(d, "current", t));
			assert_int_equal(jidx(st, "avg", t), jidx2(d, "avg", 1, t));
			assert_int_equal(jidx(st, "avg30", t), jidx2(d, "avg", 2, t));
			assert_int_equal(jidx(st, "avg90", t), jidx2(d, "avg", 3, t));
		}
		cJSON_Delete(j);
	}
	free(dr);
	cJSON_Delete(all);
}

static void test_deals_change_over_minutes(void **state)
{
	(void)state;
	struct sim_options o = test_options();
	o.minute_ms = 50;
	struct sim *fast = test_sim_start(&o);
	uint16_t saved = port;
	port = sim_port(fast);
	const char *sel = "{\"domainId\":1,\"priceTypes\":[1],\"dateRange\":1}";
	cJSON *a = all_deals(sel);
	sleep_ms(2000); /* about 40 Keepa minutes */
	cJSON *b = all_deals(sel);
	assert_true(jnum(b, "keepaMinute") - jnum(a, "keepaMinute") >= 20);
	int na, nb;
	const cJSON **da = items(dr_of(a), &na), **db = items(dr_of(b), &nb);
	int appeared = 0, changed = 0;
	for (int i = 0; i < nb; i++) {
		const cJSON *d = db[i];
		const char *asin = cJSON_GetObjectItem(d, "asin")->valuestring;
		const cJSON *old = NULL;
		for (int k = 0; k < na && !old; k++)
			if (strcmp(cJSON_GetObjectItem(da[k], "asin")->valuestring, asin) == 0)
				old = da[k];
		if (!old)
			appeared++;
		else if (jnum(old, "lastUpdate") != jnum(d, "lastUpdate") ||
		         jidx2(old, "avg", 1, 1) != jidx2(d, "avg", 1, 1))
			changed++;
	}
	assert_true(appeared > 0);
	assert_true(changed > 0);
	free(da);
	free(db);
	cJSON_Delete(a);
	cJSON_Delete(b);
	port = saved;
	sim_stop(fast);
}

/* The deal cache: inside the window an identical query (member order aside)
 * is paged from one frozen result and a page asked twice counts as a repeat;
 * once the window is over the result is evaluated afresh. */
static void test_deal_cache_window(void **state)
{
	(void)state;
	struct sim_options o = test_options();
	o.minute_ms = 100;
	o.deal_cache_s = 600; /* a window of 10 Keepa minutes: 1 real second */
	struct sim *fast = test_sim_start(&o);
	uint16_t p = sim_port(fast);
	const char *a = "{\"domainId\":1,\"priceTypes\":[1],\"dateRange\":1,\"page\":0}";
	const char *b = "{\"page\":0,\"dateRange\":1,\"priceTypes\":[1],\"domainId\":1}";
	char *pa = deal_path("/deal?key=simkey", a), *pb = deal_path("/deal?key=simkey", b);
	/* Retry until both answers came inside one window on a loaded machine. */
	for (int tries = 0;; tries++) {
		cJSON *before = get_json(p, 200, "/_sim/stats");
		cJSON *x = get_json(p, 200, "%s", pa), *y = get_json(p, 200, "%s", pb);
		cJSON *after = get_json(p, 200, "/_sim/stats");
		/* At most 9 minutes apart: inside the 10-minute window. */
		bool one_window = env_minute(y) - env_minute(x) <= 8;
		const cJSON *cb = cJSON_GetObjectItem(before, "dealCache"), *ca = cJSON_GetObjectItem(after, "dealCache");
		if (one_window) {
			/* The same frozen page, charged again: a repeat. */
			char *tx = cJSON_PrintUnformatted(dr_of(x)), *ty = cJSON_PrintUnformatted(dr_of(y));
			assert_string_equal(tx, ty);
			cJSON_free(tx);
			cJSON_free(ty);
			assert_int_equal(jnum(ca, "repeats") - jnum(cb, "repeats"), 1);
			assert_int_equal(jnum(y, "tokensConsumed"), 5);
		}
		cJSON_Delete(before);
		cJSON_Delete(after);
		cJSON_Delete(x);
		cJSON_Delete(y);
		if (one_window)
			break;
		assert_true(tries < 50);
	}
	/* After the window: a fresh result (more results evaluated). */
	cJSON *s0 = get_json(p, 200, "/_sim/stats");
	sleep_ms(1200);
	cJSON *z = get_json(p, 200, "%s", pa);
	cJSON *s1 = get_json(p, 200, "/_sim/stats");
	assert_true(jnum(cJSON_GetObjectItem(s1, "dealCache"), "results") >
	            jnum(cJSON_GetObjectItem(s0, "dealCache"), "results"));
	assert_int_equal(jnum(cJSON_GetObjectItem(s1, "dealCache"), "repeats"),
	                 jnum(cJSON_GetObjectItem(s0, "dealCache"), "repeats"));
	cJSON_Delete(s0);
	cJSON_Delete(s1);
	cJSON_Delete(z);
	free(pa);
	free(pb);
	sim_stop(fast);
}

/* --deal-age update: sortType 1 orders by lastUpdate, newest first. */
static void test_deal_age_update(void **state)
{
	(void)state;
	struct sim_options o = test_options();
	o.deal_age = SIM_AGE_UPDATE;
	struct sim *s = test_sim_start(&o);
	uint16_t saved = port;
	port = sim_port(s);
	cJSON *all = all_deals("{\"domainId\":1,\"priceTypes\":[2],\"dateRange\":1,\"sortType\":1}");
	int n, inversions_creation = 0;
	const cJSON **dr = items(dr_of(all), &n);
	assert_true(n > 20);
	for (int i = 1; i < n; i++) {
		assert_true(jnum(dr[i - 1], "lastUpdate") >= jnum(dr[i], "lastUpdate"));
		inversions_creation += jnum(dr[i - 1], "creationDate") < jnum(dr[i], "creationDate");
	}
	/* ... which is not the creation order. */
	assert_true(inversions_creation > 0);
	free(dr);
	cJSON_Delete(all);
	port = saved;
	sim_stop(s);
}

int main(void)
{
	/* clang-format off: one test per line */
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_deal_two_price_types),
	    cmocka_unit_test(test_deal_date_range_4),
	    cmocka_unit_test(test_deal_string_for_number),
	    cmocka_unit_test(test_deal_other_validation),
	    cmocka_unit_test(test_deal_cost_and_shape),
	    cmocka_unit_test(test_deal_pagination),
	    cmocka_unit_test(test_deal_cap_10000),
	    cmocka_unit_test(test_deal_sort_orders),
	    cmocka_unit_test(test_deal_filters),
	    cmocka_unit_test(test_deal_matches_product),
	    cmocka_unit_test(test_deals_change_over_minutes),
	    cmocka_unit_test(test_deal_cache_window),
	    cmocka_unit_test(test_deal_age_update),
	};
	/* clang-format on */
	return cmocka_run_group_tests(tests, setup, teardown);
}
