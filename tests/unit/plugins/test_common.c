/*
 * test_common.c - the code every plugin shares: Keepa time, the profit
 * estimate, the row derivation and the selection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "common.h"
#include "deals.h"
#include "json_util.h"
#include "selection.h"
#include "util/json_exact.h" /* the host's half of exact integers, linked in */

static const struct tg_value *find(const struct deal_row *row, const char *col)
{
	size_t i;

	for (i = 0; i < row->n; i++)
		if (!strcmp(row->v[i].column, col))
			return &row->v[i];
	return NULL;
}

static int64_t ival(const struct deal_row *row, const char *col)
{
	const struct tg_value *v = find(row, col);

	if (!v)
		fail_msg("column %s not named", col);
	if (v->type == TG_NULL)
		return -777;
	assert_int_equal(v->type, TG_INT);
	return v->v.i;
}

static void test_keepa_time(void **st)
{
	(void)st;
	/* Keepa minute 0 is 2011-01-01 00:00 UTC. */
	assert_int_equal(keepa_minutes_to_unix_s(0), 1293840000LL);
	assert_int_equal(keepa_minutes_to_unix_s(7000000), (7000000LL + 21564000LL) * 60);
	assert_int_equal(unix_s_to_keepa_minutes(keepa_minutes_to_unix_s(6543210)), 6543210);
	assert_int_equal(unix_s_to_keepa_minutes(keepa_minutes_to_unix_s(6543210) + 59), 6543210);
}

static void test_profit(void **st)
{
	struct fees fees = {
	    .referral_pct = 15, .fulfilment_cents = 350, .prep_cents = 20, .shipping_cents = 30};
	int64_t p = 0;

	(void)st;
	assert_true(profit_estimate(&fees, 1000, 2000, &p));
	assert_int_equal(p, 2000 - 1000 - 300 - 350 - 20 - 30);
	assert_true(profit_estimate(&fees, 2999, 3333, &p)); /* 15% of 3333 = 499.95 -> 500 */
	assert_int_equal(p, 3333 - 2999 - 500 - 400);
	assert_false(profit_estimate(&fees, -1, 2000, &p));
	assert_false(profit_estimate(&fees, 1000, -1, &p));
	assert_true(price_type_is_price(2));
	assert_false(price_type_is_price(3));
	assert_false(price_type_is_price(11));
}

static const char *DEAL = "{\"asin\":\"B000TEST01\",\"title\":\"Deal title\",\"rootCat\":283155,"
                          "\"current\":[-1,5000,2500],"
                          "\"avg\":[[-1,-1,3000],[-1,-1,4000],[-1,-1,5000],[-1,-1,6000]],"
                          "\"deltaPercent\":[[0,0,16],[0,0,37],[0,0,50],[0,0,58]],"
                          "\"creationDate\":7000000,\"lastUpdate\":7000100}";
static const char *PRODUCT = "{\"asin\":\"B000TEST01\",\"title\":\"P\",\"stats\":{"
                             "\"current\":[-1,5000,2500,123456,-1,-1,-1,-1,-1,-1,-1,9,31],"
                             "\"avg90\":[-1,-1,-1,150000],\"salesRankDrops30\":3,\"salesRankDrops90\":8}}";

static void test_row_full(void **st)
{
	struct fees fees = {.referral_pct = 15, .fulfilment_cents = 350};
	struct deal_ctx ctx = {1, 2, 1, 1700000000, "backfiller", &fees};
	cJSON *deal = cJSON_Parse(DEAL), *prod = cJSON_Parse(PRODUCT);
	struct deal_row row;
	bool ok;

	(void)st;
	assert_int_equal(deal_row_build(&row, &ctx, deal, prod, true, &ok), TG_OK);
	assert_true(ok);
	assert_int_equal(ival(&row, COL_DOMAIN), 1);
	assert_string_equal(find(&row, COL_ASIN)->v.s, "B000TEST01");
	assert_string_equal(find(&row, COL_TITLE)->v.s, "Deal title");
	assert_int_equal(ival(&row, COL_ROOT_CATEGORY), 283155);
	assert_int_equal(ival(&row, COL_PRICE_TYPE), 2);
	assert_int_equal(ival(&row, COL_DATE_RANGE), 1);
	assert_int_equal(ival(&row, COL_CURRENT), 2500);
	assert_int_equal(ival(&row, COL_AVG), 4000); /* avg[dateRange 1][priceType 2] */
	assert_int_equal(ival(&row, COL_DROP_PCT), 37);
	assert_int_equal(ival(&row, COL_PROFIT), 4000 - 2500 - 600 - 350);
	assert_int_equal(ival(&row, COL_AMAZON), -777); /* -1: no offer -> NULL */
	assert_int_equal(ival(&row, COL_AMAZON_SELLS), 0);
	assert_int_equal(ival(&row, COL_NEW), 5000);
	assert_int_equal(ival(&row, COL_USED), 2500);
	assert_int_equal(ival(&row, COL_RANK), 123456);
	assert_int_equal(ival(&row, COL_RANK_AVG90), 150000);
	assert_int_equal(ival(&row, COL_RANK_DROPS30), 3);
	assert_int_equal(ival(&row, COL_RANK_DROPS90), 8);
	assert_int_equal(ival(&row, COL_OFFERS_NEW), 9);
	assert_int_equal(ival(&row, COL_OFFERS_USED), 31);
	assert_int_equal(ival(&row, COL_CREATED), (7000000LL + 21564000LL) * 60);
	assert_int_equal(ival(&row, COL_UPDATED), (7000100LL + 21564000LL) * 60);
	assert_int_equal(ival(&row, COL_FIRST_SEEN), 1700000000);
	assert_int_equal(ival(&row, COL_LAST_SEEN), 1700000000);
	assert_int_equal(ival(&row, COL_CHECKED), 1700000000);
	assert_string_equal(find(&row, COL_WRITTEN_BY)->v.s, "backfiller");
	/* Every named column is declared, once. */
	for (size_t i = 0; i < row.n; i++) {
		size_t k, hits = 0;

		for (k = 0; k < deals_table.ncolumns; k++)
			hits += !strcmp(deals_table.columns[k].name, row.v[i].column);
		assert_int_equal(hits, 1);
		for (k = 0; k < i; k++)
			assert_string_not_equal(row.v[k].column, row.v[i].column);
	}

	/* An existing row: first_seen is not named. */
	assert_int_equal(deal_row_build(&row, &ctx, deal, prod, false, &ok), TG_OK);
	assert_null(find(&row, COL_FIRST_SEEN));
	cJSON_Delete(deal);
	cJSON_Delete(prod);
}

/* JSON text parsed as the host parses a Keepa answer: with exact integers. */
static cJSON *host_parse(const char *text)
{
	cJSON *doc = cJSON_Parse(text);

	assert_non_null(doc);
	assert_true(json_exact_ints(doc, text, strlen(text)) >= 0);
	return doc;
}

static void test_json_as_int_exact(void **st)
{
	cJSON *doc = host_parse("[9223372036854775807,-9223372036854775808,9223372036854775808,"
	                        "-9223372036854775809,9007199254740993,9007199254740992,1e300,2.5,\"7\",-0]");
	cJSON *raw = cJSON_Parse("[9223372036854775807,9007199254740993]"); /* not through the host */
	int64_t x = 42;

	(void)st;
	assert_true(json_index_int(doc, 0, &x));
	assert_int_equal(x, INT64_MAX);
	assert_true(json_index_int(doc, 1, &x));
	assert_int_equal(x, INT64_MIN);
	/* Beyond int64: refused, and said to be a malformed number. */
	x = 42;
	assert_false(json_index_int(doc, 2, &x));
	assert_false(json_index_int(doc, 3, &x));
	assert_int_equal(x, 42);
	assert_true(json_int_refused(cJSON_GetArrayItem(doc, 2)));
	assert_true(json_index_int(doc, 4, &x));
	assert_int_equal(x, 9007199254740993LL); /* the double says ...992 */
	assert_true(json_index_int(doc, 5, &x));
	assert_int_equal(x, 9007199254740992LL);
	assert_false(json_index_int(doc, 6, &x));
	assert_true(json_int_refused(cJSON_GetArrayItem(doc, 6)));
	assert_false(json_index_int(doc, 7, &x));
	assert_true(json_int_refused(cJSON_GetArrayItem(doc, 7)));
	assert_false(json_index_int(doc, 8, &x)); /* a string: absent as a number, not refused */
	assert_false(json_int_refused(cJSON_GetArrayItem(doc, 8)));
	assert_false(json_int_refused(NULL));
	assert_true(json_index_int(doc, 9, &x));
	assert_int_equal(x, 0);
	/* A tree without the host's texts: beyond 2^53 is refused, never rounded. */
	assert_false(json_index_int(raw, 0, &x));
	assert_false(json_index_int(raw, 1, &x));
	cJSON_Delete(doc);
	cJSON_Delete(raw);
}

static void test_row_root_category_exact(void **st)
{
	struct fees fees = {0};
	struct deal_ctx ctx = {1, 2, 1, 1700000000, "backfiller", &fees};
	struct deal_row row;
	cJSON *deal, *prod;
	bool ok;

	(void)st;
	deal = host_parse("{\"asin\":\"B000BIG001\",\"rootCat\":9223372036854775807}");
	assert_int_equal(deal_row_build(&row, &ctx, deal, NULL, true, &ok), TG_OK);
	assert_int_equal(ival(&row, COL_ROOT_CATEGORY), INT64_MAX);
	assert_int_equal(row.refused, 0);
	cJSON_Delete(deal);

	/* Beyond int64 in the deal: refused and counted, the product's used. */
	deal = host_parse("{\"asin\":\"B000BIG001\",\"rootCat\":9223372036854775808}");
	prod = host_parse("{\"asin\":\"B000BIG001\",\"rootCategory\":9007199254740993,\"stats\":{}}");
	assert_int_equal(deal_row_build(&row, &ctx, deal, prod, true, &ok), TG_OK);
	assert_int_equal(ival(&row, COL_ROOT_CATEGORY), 9007199254740993LL);
	assert_int_equal(row.refused, 1);
	assert_string_equal(row.refused_name, "rootCat");
	cJSON_Delete(prod);

	/* ...and in both: the column is left out (an earlier value stays). */
	prod = host_parse("{\"asin\":\"B000BIG001\",\"rootCategory\":-99999999999999999999,\"stats\":{}}");
	assert_int_equal(deal_row_build(&row, &ctx, deal, prod, true, &ok), TG_OK);
	assert_null(find(&row, COL_ROOT_CATEGORY));
	assert_int_equal(row.refused, 2);
	assert_string_equal(row.refused_name, "rootCat");
	cJSON_Delete(prod);
	cJSON_Delete(deal);
}

static void test_row_malformed(void **st)
{
	struct fees fees = {0};
	struct deal_ctx ctx = {1, 2, 1, 1700000000, "upserter", &fees};
	struct deal_row row;
	cJSON *deal, *prod;
	bool ok;

	(void)st;
	/* No asin, an asin of the wrong type, a deal that is not an object. */
	deal = cJSON_Parse("{\"title\":\"x\"}");
	assert_int_equal(deal_row_build(&row, &ctx, deal, NULL, true, &ok), TG_EINVAL);
	cJSON_Delete(deal);
	deal = cJSON_Parse("{\"asin\":12345}");
	assert_int_equal(deal_row_build(&row, &ctx, deal, NULL, true, &ok), TG_EINVAL);
	cJSON_Delete(deal);
	deal = cJSON_Parse("{\"asin\":\"B0'; DROP TABLE\"}");
	assert_int_equal(deal_row_build(&row, &ctx, deal, NULL, true, &ok), TG_EINVAL);
	cJSON_Delete(deal);
	deal = cJSON_Parse("[1,2]");
	assert_int_equal(deal_row_build(&row, &ctx, deal, NULL, true, &ok), TG_EINVAL);
	cJSON_Delete(deal);

	/* Wrong types everywhere: NULL cells, no crash, no product columns. */
	deal = cJSON_Parse("{\"asin\":\"B000TEST02\",\"current\":\"$25.00\",\"avg\":[1,2],"
	                   "\"deltaPercent\":{},\"creationDate\":\"yesterday\",\"lastUpdate\":1.5}");
	prod = cJSON_Parse("{\"asin\":\"B000TEST02\",\"stats\":\"none\"}");
	assert_int_equal(deal_row_build(&row, &ctx, deal, prod, true, &ok), TG_OK);
	assert_false(ok);
	assert_null(find(&row, COL_TITLE)); /* unknown: not overwritten */
	assert_int_equal(ival(&row, COL_CURRENT), -777);
	assert_int_equal(ival(&row, COL_AVG), -777);
	assert_int_equal(ival(&row, COL_DROP_PCT), -777);
	assert_int_equal(ival(&row, COL_PROFIT), -777);
	assert_int_equal(ival(&row, COL_CREATED), -777);
	assert_int_equal(ival(&row, COL_UPDATED), -777);
	assert_null(find(&row, COL_USED));
	cJSON_Delete(prod);

	/* A product with stats but wrong-typed members: NULLs, still usable. */
	prod = cJSON_Parse(
	    "{\"asin\":\"B000TEST02\",\"stats\":{\"current\":[\"a\",null,2.5],\"salesRankDrops30\":[]}}");
	assert_int_equal(deal_row_build(&row, &ctx, deal, prod, true, &ok), TG_OK);
	assert_true(ok);
	assert_int_equal(ival(&row, COL_AMAZON), -777);
	assert_int_equal(ival(&row, COL_AMAZON_SELLS), -777);
	assert_int_equal(ival(&row, COL_USED), -777);
	assert_int_equal(ival(&row, COL_RANK_DROPS30), -777);
	assert_int_equal(ival(&row, COL_OFFERS_USED), -777);
	cJSON_Delete(prod);
	cJSON_Delete(deal);
}

static int load(struct selection *sel, const char *json, int sort, char **err)
{
	return selection_from_json(sel, cJSON_Parse(json), sort, err);
}

static void test_selection(void **st)
{
	struct selection a, b, c, d;
	char *err = NULL, *body;
	cJSON *j;

	(void)st;
	assert_int_equal(load(&a,
	                      "{\"domainId\":1,\"priceTypes\":[2],\"dateRange\":1,\"page\":3,"
	                      "\"currentRange\":[2000,45100]}",
	                      0, &err),
	                 TG_OK);
	assert_int_equal(load(&b,
	                      "{\"currentRange\":[2000,45100],\"dateRange\":1,\"priceTypes\":[2],"
	                      "\"domainId\":1}",
	                      0, &err),
	                 TG_OK);
	assert_int_equal(load(&c,
	                      "{\"currentRange\":[2000,45200],\"dateRange\":1,\"priceTypes\":[2],"
	                      "\"domainId\":1}",
	                      0, &err),
	                 TG_OK);
	assert_int_equal(load(&d,
	                      "{\"currentRange\":[2000,45100],\"dateRange\":1,\"priceTypes\":[2],"
	                      "\"domainId\":1}",
	                      1, &err),
	                 TG_OK);
	/* Member order and page do not matter; values and the sort do. */
	assert_string_equal(a.fp, b.fp);
	assert_string_not_equal(a.fp, c.fp);
	assert_string_not_equal(a.fp, d.fp);
	assert_int_equal(a.domain, 1);
	assert_int_equal(a.price_type, 2);
	assert_int_equal(a.date_range, 1);

	body = selection_body(&d, 7);
	j = cJSON_Parse(body);
	assert_int_equal(cJSON_GetObjectItem(j, "page")->valueint, 7);
	assert_int_equal(cJSON_GetObjectItem(j, "sortType")->valueint, 1);
	assert_true(cJSON_IsNumber(cJSON_GetObjectItem(j, "domainId")));
	cJSON_Delete(j);
	free(body);
	selection_release(&a);
	selection_release(&b);
	selection_release(&c);
	selection_release(&d);

	/* dateRange defaults to 0 and is then sent. */
	assert_int_equal(load(&a, "{\"domainId\":3,\"priceTypes\":[0]}", 0, &err), TG_OK);
	assert_int_equal(a.date_range, 0);
	assert_non_null(cJSON_GetObjectItem(a.json, "dateRange"));
	selection_release(&a);
	assert_null(err);
}

static void test_selection_rejects(void **st)
{
	const char *bad[] = {
	    "{\"priceTypes\":[2]}",                    /* no domainId */
	    "{\"domainId\":1}",                        /* no priceTypes */
	    "{\"domainId\":1,\"priceTypes\":[1,2]}",   /* two price types */
	    "{\"domainId\":\"1\",\"priceTypes\":[2]}", /* a string */
	    "{\"domainId\":1,\"priceTypes\":[2],\"currentRange\":[\"2000\",45100]}",
	    "{\"domainId\":1,\"priceTypes\":[2],\"dateRange\":4}",  /* the seed's mistake */
	    "{\"domainId\":1,\"priceTypes\":[2],\"dateRange\":30}", /* a day count */
	    "{\"domainId\":7,\"priceTypes\":[2]}",                /* .cn: no deals */
	    "{\"domainId\":1,\"priceTypes\":[4]}",                /* list price: not a deal type */
	    "{\"domainId\":1,\"priceTypes\":[11]}",               /* an offer count */
	    "{\"domainId\":1,\"priceTypes\":[31]}",               /* rent */
	    "[1,2]",
	};
	struct selection s;
	size_t i;

	(void)st;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *err = NULL;

		assert_true(load(&s, bad[i], 0, &err) < 0);
		assert_non_null(err);
		assert_non_null(strstr(err, "query"));
		free(err);
	}
}

/* The documented deal price types, the category switch, and the announced
 * total under a category filter (Keepa's categoryCount ignores the filter). */
static void test_selection_checks(void **st)
{
	static const int good[] = {0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 18, 22, 27, 32, 33};
	struct selection s;
	char text[160];
	cJSON *deals;

	(void)st;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(text, sizeof(text), "{\"domainId\":1,\"priceTypes\":[%d]}", good[i]);
		assert_int_equal(load(&s, text, 0, NULL), TG_OK);
		selection_release(&s);
	}
	deals = cJSON_Parse("{\"categoryIds\":[283155,172282,5174],\"categoryCount\":[600,300,100]}");

	assert_int_equal(load(&s, "{\"domainId\":1,\"priceTypes\":[2]}", 0, NULL), TG_OK);
	assert_false(s.categories_unswitched);
	assert_int_equal(selection_expected(&s, deals), 1000);
	selection_release(&s);

	assert_int_equal(load(&s, "{\"domainId\":1,\"priceTypes\":[2],\"includeCategories\":[283155]}", 0, NULL),
	                 TG_OK);
	assert_true(s.categories_unswitched);
	assert_int_equal(selection_expected(&s, deals), 600);
	selection_release(&s);

	assert_int_equal(load(&s,
	                      "{\"domainId\":1,\"priceTypes\":[2],\"excludeCategories\":[283155],"
	                      "\"isFilterEnabled\":true}",
	                      0, NULL),
	                 TG_OK);
	assert_false(s.categories_unswitched);
	assert_int_equal(selection_expected(&s, deals), 400);
	selection_release(&s);

	/* A sub-category: its share is unknown. */
	assert_int_equal(load(&s, "{\"domainId\":1,\"priceTypes\":[2],\"includeCategories\":[1000042]}", 0, NULL),
	                 TG_OK);
	assert_int_equal(selection_expected(&s, deals), -1);
	selection_release(&s);
	cJSON_Delete(deals);
}

/* The plugins' one growth rule: first, then doubling; on overflow NULL,
 * with the array and its capacity untouched. */
static void test_array_grow(void **state)
{
	size_t cap = 0;
	int *a = NULL, *b;
	(void)state;

	a = array_grow(a, &cap, sizeof(*a), 4);
	assert_non_null(a);
	assert_int_equal(cap, 4);
	for (int i = 0; i < 4; i++)
		a[i] = i;
	a = array_grow(a, &cap, sizeof(*a), 4);
	assert_non_null(a);
	assert_int_equal(cap, 8);
	assert_int_equal(a[3], 3);
	cap = SIZE_MAX / 2 + 1;
	b = array_grow(a, &cap, sizeof(*a), 4);
	assert_null(b);
	assert_true(cap == SIZE_MAX / 2 + 1);
	cap = SIZE_MAX / 4; /* twice that, times 4 bytes, overflows */
	assert_null(array_grow(a, &cap, sizeof(*a), 4));
	assert_true(cap == SIZE_MAX / 4);
	free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_keepa_time), cmocka_unit_test(test_profit),
	    cmocka_unit_test(test_row_full),   cmocka_unit_test(test_row_malformed),
	    cmocka_unit_test(test_json_as_int_exact), cmocka_unit_test(test_row_root_category_exact),
	    cmocka_unit_test(test_selection),  cmocka_unit_test(test_selection_rejects),
	    cmocka_unit_test(test_selection_checks), cmocka_unit_test(test_array_grow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
