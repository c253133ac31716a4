/*
 * test_backfiller.c - the backfiller against the fake services table.
 */
#include "plugin_test.h"

#include "selection.h"

const struct tg_plugin *tollgate_plugin_v1(void);

static struct fake *world(int ndeals, int64_t budget)
{
	struct fake *f = fake_new(tollgate_plugin_v1());
	int i;

	fake_set_json(f, "query", QUERY_USED_BOOKS);
	fake_set_now(f, T0_S);
	fake_set_budget(f, budget);
	for (i = 0; i < ndeals; i++)
		add_deal(f, i, T0_KM - i);
	return f;
}

/* The same under policy "legacy" (0.1: products interleaved with pages). */
static struct fake *legacy_world(int ndeals, int64_t budget)
{
	struct fake *f = world(ndeals, budget);

	fake_set_string(f, "policy", "legacy");
	return f;
}

/* Every deal of the world stored once, every product fetched once. */
static void assert_all_stored(struct fake *f, int ndeals)
{
	char asin[16];
	int i;

	assert_int_equal(fake_nrows(f, "deals"), ndeals);
	for (i = 0; i < ndeals; i++) {
		asin_of(asin, i);
		assert_true(fake_has_row(f, "deals", 1, asin));
		assert_int_equal(fake_product_asks(f, asin), 1);
	}
}

static void test_happy_path(void **st)
{
	struct fake *f = world(10, 100);
	struct inst in = inst_start(f, tollgate_plugin_v1());
	int64_t idle = 60;
	const char *asin = "B000000003";

	(void)st;
	assert_int_equal(inst_run(&in, &idle, NULL), TG_OK);
	assert_int_equal(idle, 21600); /* rewalk_after_s default */
	assert_all_stored(f, 10);
	assert_int_equal(fake_count_calls(f, "/deal"), 1);
	assert_int_equal(fake_count_calls(f, "/product"), 1);
	assert_string_equal(fake_call(f, 1)->kind, "product");
	assert_int_equal(fake_call(f, 1)->units, 10);
	/* The row, converted once at the edge. */
	assert_int_equal(cell_int(f, asin, "current_cents"), 2503);
	assert_int_equal(cell_int(f, asin, "avg_cents"), 4003);
	assert_int_equal(cell_int(f, asin, "drop_pct"), (4003 - 2503) * 100 / 4003);
	assert_int_equal(cell_int(f, asin, "used_cents"), 2503);
	assert_int_equal(cell_int(f, asin, "new_cents"), 3003);
	assert_int_equal(cell_int(f, asin, "amazon_cents"), CELL_NULL);
	assert_int_equal(cell_int(f, asin, "amazon_sells"), 0);
	assert_int_equal(cell_int(f, asin, "sales_rank"), 50003);
	assert_int_equal(cell_int(f, asin, "sales_rank_avg90"), 100006);
	assert_int_equal(cell_int(f, asin, "offers_used"), 12);
	assert_int_equal(cell_int(f, asin, "deal_updated_at"), T0_S - 3 * 60);
	assert_int_equal(cell_int(f, asin, "first_seen"), T0_S);
	assert_int_equal(cell_int(f, asin, "last_seen"), T0_S);
	/* Default fees: 15 % referral, 350 fulfilment. */
	assert_int_equal(cell_int(f, asin, "est_profit_cents"), 4003 - 2503 - 600 - 350);
	assert_string_equal(fake_cell_text(f, "deals", 1, asin, "written_by"), "backfiller");
	assert_non_null(strstr(fake_state(f, "walk"), " done "));
	assert_int_equal(fake_progress_done(f), 10);
	assert_int_equal(fake_progress_total(f), 10);
	assert_int_equal(fake_log_count(f, "walk complete"), 1);
	inst_stop(&in);
	fake_free(f);
}

static void test_multi_page_walk(void **st)
{
	struct fake *f = legacy_world(400, 50);
	struct inst in = inst_start(f, tollgate_plugin_v1());

	(void)st;
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_string_equal(fake_pages(f), "0,1,2");
	/* 150 + 150 + 100 deals in batches of 50 (budget 50, 1 per ASIN). */
	assert_int_equal(fake_count_calls(f, "/product"), 3 + 3 + 2);
	assert_int_equal(fake_commits(f), 8); /* one per chunk */
	assert_all_stored(f, 400);
	assert_int_equal(fake_progress_done(f), 400);
	inst_stop(&in);
	fake_free(f);
}

static void test_resume_after_crash(void **st)
{
	struct fake *f = legacy_world(400, 50);
	struct inst in = inst_start(f, tollgate_plugin_v1());
	char *err = NULL;

	(void)st;
	/* Calls: deal p0, 3 x product, deal p1, product (B150..199), product
	 * (B200..249): the 7th fails after retries. */
	fake_keepa_fail_call(f, 7, TG_ENETWORK, "connection reset");
	assert_int_equal(inst_run(&in, NULL, &err), TG_ENETWORK);
	assert_non_null(strstr(err, "connection reset"));
	free(err);
	inst_stop(&in);
	fake_crash(f);
	assert_int_equal(fake_nrows(f, "deals"), 200);
	assert_non_null(strstr(fake_state(f, "walk"), " walk 1 50 200"));

	/* A storage failure inside the next chunk's transaction: rolled back,
	 * checkpoint untouched. */
	in = inst_start(f, tollgate_plugin_v1());
	fake_fail_upsert(f, 200 + 10);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_ESTORAGE);
	assert_false(fake_in_transaction(f));
	inst_stop(&in);
	assert_int_equal(fake_nrows(f, "deals"), 200);
	assert_non_null(strstr(fake_state(f, "walk"), " walk 1 50 200"));

	/* Restart: resumes at page 1, offset 50 - not page 0. */
	in = inst_start(f, tollgate_plugin_v1());
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_int_equal(fake_log_count(f, "resuming the walk at page 1, offset 50"), 2);
	assert_string_equal(fake_pages(f), "0,1,1,1,2");
	assert_int_equal(fake_nrows(f, "deals"), 400);
	/* B200..249 were fetched twice (the rolled-back chunk), nothing else. */
	assert_int_equal(fake_product_asks(f, "B000000199"), 1);
	assert_int_equal(fake_product_asks(f, "B000000200"), 2);
	assert_int_equal(fake_product_asks(f, "B000000250"), 1);
	assert_int_equal(fake_product_asks(f, "B000000000"), 1);
	assert_int_equal(fake_progress_done(f), 400);
	inst_stop(&in);
	fake_free(f);
}

static void test_changed_query_fresh_walk(void **st)
{
	struct fake *f = legacy_world(300, 100);
	struct inst in = inst_start(f, tollgate_plugin_v1());

	(void)st;
	fake_keepa_fail_call(f, 5, TG_EKEEPA, "500 internal");
	assert_int_equal(inst_run(&in, NULL, NULL), TG_EKEEPA);
	inst_stop(&in);
	assert_non_null(strstr(fake_state(f, "walk"), " walk 1 0 150"));

	fake_set_json(f, "query",
	              "{\"domainId\":1,\"priceTypes\":[2],\"dateRange\":1,\"currentRange\":[1000,45100]}");
	in = inst_start(f, tollgate_plugin_v1());
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_int_equal(fake_log_count(f, "the query changed"), 1);
	assert_string_equal(fake_pages(f), "0,1,0,1,2");
	assert_non_null(strstr(fake_state(f, "walk"), " done "));
	inst_stop(&in);
	fake_free(f);
}

static void test_idle_then_rewalk(void **st)
{
	struct fake *f = world(20, 100);
	struct inst in = inst_start(f, tollgate_plugin_v1());
	int64_t idle = 60;
	size_t calls;

	(void)st;
	fake_set_int(f, "rewalk_after_s", 3600);
	inst_stop(&in);
	in = inst_start(f, tollgate_plugin_v1());
	assert_int_equal(inst_run(&in, &idle, NULL), TG_OK);
	assert_int_equal(idle, 3600);
	calls = fake_ncalls(f);

	fake_advance(f, 1000);
	idle = 60;
	assert_int_equal(inst_run(&in, &idle, NULL), TG_OK);
	assert_int_equal(idle, 2600);
	assert_int_equal(fake_ncalls(f), calls); /* no call while idle */

	fake_advance(f, 2600);
	assert_int_equal(inst_run(&in, &idle, NULL), TG_OK);
	assert_string_equal(fake_pages(f), "0,0");
	/* first_seen kept from the first walk, last_seen moved. */
	assert_int_equal(cell_int(f, "B000000005", "first_seen"), T0_S);
	assert_int_equal(cell_int(f, "B000000005", "last_seen"), T0_S + 3600);
	assert_int_equal(fake_nrows(f, "deals"), 20);
	inst_stop(&in);
	fake_free(f);
}

static void test_keepa_error_ends_run(void **st)
{
	struct fake *f = world(20, 100);
	struct inst in = inst_start(f, tollgate_plugin_v1());
	char *err = NULL;

	(void)st;
	fake_keepa_fail_call(f, 1, TG_EKEEPA, "HTTP 400: invalid selection");
	assert_int_equal(inst_run(&in, NULL, &err), TG_EKEEPA);
	assert_non_null(strstr(err, "invalid selection"));
	assert_null(strstr(err, "key="));
	free(err);
	assert_int_equal(fake_nrows(f, "deals"), 0);
	assert_null(fake_state(f, "walk")); /* not "done": an error is never "no data" */
	/* The next run starts over and completes. */
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_all_stored(f, 20);
	inst_stop(&in);
	fake_free(f);
}

static void test_oversize_split(void **st)
{
	struct fake *f = world(100, 1000);
	struct inst in = inst_start(f, tollgate_plugin_v1());
	size_t i;

	(void)st;
	fake_keepa_max_cost(f, 30);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_int_equal(fake_nrows(f, "deals"), 100);
	for (i = 0; i < fake_ncalls(f); i++) {
		const struct fake_call *c = fake_call(f, i);

		if (!strcmp(c->path, "/product") && c->rc == 0)
			assert_true(c->units <= 30);
	}
	assert_true(fake_log_count(f, "oversize") > 0);
	inst_stop(&in);
	fake_free(f);
}

static void test_offers_cost(void **st)
{
	struct fake *f = world(30, 120);
	struct inst in;

	(void)st;
	fake_set_int(f, "offers", 20);
	in = inst_start(f, tollgate_plugin_v1());
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	/* 12 tokens per ASIN with offers=20: 10 ASINs a call. */
	assert_int_equal(fake_count_calls(f, "/product"), 3);
	assert_string_equal(fake_call(f, 1)->kind, "product_offers");
	assert_int_equal(fake_call(f, 1)->units, 20);
	inst_stop(&in);
	fake_free(f);
}

static void test_malformed(void **st)
{
	struct fake *f = legacy_world(3, 100);
	struct inst in = inst_start(f, tollgate_plugin_v1());

	(void)st;
	fake_keepa_add_deal(f, "{\"title\":\"no asin\",\"current\":[1,2,3]}");
	fake_keepa_add_deal(f, "42");
	fake_keepa_add_deal(
	    f, "{\"asin\":\"BWRONGTYPE\",\"current\":\"cheap\",\"avg\":null,\"lastUpdate\":\"x\"}");
	fake_keepa_set_product(f, "BWRONGTYPE", "{\"asin\":\"BWRONGTYPE\",\"stats\":{\"current\":{}}}");
	fake_keepa_add_deal(f, "{\"asin\":\"BNOSTATS01\",\"current\":[-1,-1,1999]}");
	fake_keepa_set_product(f, "BNOSTATS01", "{\"asin\":\"BNOSTATS01\",\"title\":\"no stats\"}");
	fake_keepa_add_deal(f, "{\"asin\":\"BNOPRODUCT\",\"current\":[-1,-1,1999]}");
	fake_keepa_set_product(f, "B000000001", "{\"asin\":\"B000000001\",\"stats\":7}");
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_int_equal(fake_nrows(f, "deals"), 6);
	assert_true(fake_has_row(f, "deals", 1, "BWRONGTYPE"));
	assert_int_equal(cell_int(f, "BWRONGTYPE", "current_cents"), CELL_NULL);
	assert_int_equal(cell_int(f, "BWRONGTYPE", "used_cents"), CELL_NULL);
	assert_int_equal(cell_int(f, "BNOSTATS01", "current_cents"), 1999);
	assert_int_equal(cell_int(f, "BNOSTATS01", "used_cents"), CELL_NULL);
	assert_int_equal(cell_int(f, "BNOPRODUCT", "sales_rank"), CELL_NULL);
	assert_int_equal(cell_int(f, "B000000000", "sales_rank"), 50000);
	assert_int_equal(fake_log_count(f, "deal without a valid asin skipped"), 2);
	/* One warning for the chunk, the details at debug level. */
	assert_int_equal(
	    fake_log_count(f, "chunk of 8 deals: 2 without asin, 1 products missing, 2 malformed"), 1);
	assert_int_equal(fake_log_count(f, "not in the /product answer"), 1);
	assert_int_equal(fake_log_count(f, "no usable stats"), 2);
	assert_int_equal(fake_log_count(f, "skipped 2 deals without asin, 1 products missing, 2 malformed"),
	                 1);
	inst_stop(&in);
	fake_free(f);
}

static void test_empty_and_broken_pages(void **st)
{
	struct fake *f = world(0, 100);
	struct inst in = inst_start(f, tollgate_plugin_v1());
	char *err = NULL;

	(void)st;
	/* An answer without deals.dr is an error, not an empty result. */
	fake_keepa_raw_page(f, 0, "{\"tokensLeft\":10,\"deals\":{}}");
	assert_int_equal(inst_run(&in, NULL, &err), TG_ENETWORK);
	assert_non_null(strstr(err, "no deals.dr"));
	free(err);
	assert_null(fake_state(f, "walk"));
	/* An empty page ends the walk cleanly. */
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_int_equal(fake_count_calls(f, "/product"), 0);
	assert_non_null(strstr(fake_state(f, "walk"), " done "));
	inst_stop(&in);
	fake_free(f);
}

static void test_page_exactly_full(void **st)
{
	struct fake *f = world(300, 100);
	struct inst in = inst_start(f, tollgate_plugin_v1());

	(void)st;
	/* Two full pages: the third, empty, ends the walk. */
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_string_equal(fake_pages(f), "0,1,2");
	assert_all_stored(f, 300);
	inst_stop(&in);
	fake_free(f);
}

/* The fingerprint the plugin computes for query. */
static void query_fp(const char *query, char fp[17])
{
	struct selection sel;

	assert_int_equal(selection_from_json(&sel, cJSON_Parse(query), 0, NULL), TG_OK);
	memcpy(fp, sel.fp, 17);
	selection_release(&sel);
}

static void test_keepa_cap_last_page(void **st)
{
	struct fake *f = legacy_world(0, 100);
	struct inst in = inst_start(f, tollgate_plugin_v1());
	char fp[17], state[128];
	int i;

	(void)st;
	/* 10,050 deals match; Keepa serves 10,000: page 66 holds the last 100. */
	for (i = 0; i < 10050; i++) {
		char asin[16], *d;

		asin_of(asin, i);
		d = fake_deal_json(asin, 2, 2500, 4000, T0_KM - i);
		fake_keepa_add_deal(f, d);
		free(d);
	}
	query_fp(QUERY_USED_BOOKS, fp);
	snprintf(state, sizeof(state), "v1 %s walk 66 0 9900", fp);
	fake_set_state(f, "walk", state);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_string_equal(fake_pages(f), "66");
	assert_int_equal(fake_nrows(f, "deals"), 100);
	assert_true(fake_has_row(f, "deals", 1, "B000009999"));
	assert_non_null(strstr(fake_state(f, "walk"), " done "));
	assert_int_equal(fake_progress_done(f), 10000);
	inst_stop(&in);
	fake_free(f);
}

static void test_stop(void **st)
{
	struct fake *f = legacy_world(300, 50);
	struct inst in = inst_start(f, tollgate_plugin_v1());

	(void)st;
	fake_stop_after_calls(f, 2);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_ESTOPPED);
	assert_int_equal(fake_ncalls(f), 2);
	assert_non_null(strstr(fake_state(f, "walk"), " walk 0 50 50"));
	inst_stop(&in);
	fake_free(f);
}

static void test_state_error_fails_the_run(void **st)
{
	struct fake *f = world(20, 100);
	struct inst in = inst_start(f, tollgate_plugin_v1());
	char *err = NULL;

	(void)st;
	fake_fail_state_get(f, TG_ESTORAGE);
	assert_int_equal(inst_run(&in, NULL, &err), TG_ESTORAGE);
	assert_non_null(strstr(err, "checkpoint"));
	free(err);
	assert_int_equal(fake_ncalls(f), 0);
	inst_stop(&in);
	fake_free(f);
}

static void test_init_errors(void **st)
{
	struct fake *f = fake_new(tollgate_plugin_v1());
	void *state = NULL;
	char *err = NULL;

	(void)st;
	/* No query. */
	assert_true(tollgate_plugin_v1()->init(fake_task(f), fake_services(f), &state, &err) < 0);
	assert_non_null(strstr(err, "query"));
	free(err);
	err = NULL;
	fake_set_json(f, "query", "{\"domainId\":1,\"priceTypes\":[2],\"dateRange\":4}");
	assert_true(tollgate_plugin_v1()->init(fake_task(f), fake_services(f), &state, &err) < 0);
	assert_non_null(strstr(err, "dateRange"));
	free(err);
	err = NULL;
	fake_set_json(f, "query", QUERY_USED_BOOKS);
	fake_set_int(f, "offers", 5);
	assert_true(tollgate_plugin_v1()->init(fake_task(f), fake_services(f), &state, &err) < 0);
	assert_non_null(strstr(err, "offers"));
	free(err);
	fake_free(f);
}

/* Policy "change": every page is read before any product is bought, and the
 * pages' deals are written from the pages themselves. */
static void test_pages_then_products(void **st)
{
	struct fake *f = world(400, 50);
	struct inst in = inst_start(f, tollgate_plugin_v1());
	size_t i, last_deal = 0, first_product = 0;

	(void)st;
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_string_equal(fake_pages(f), "0,1,2");
	for (i = 0; i < fake_ncalls(f); i++) {
		if (!strcmp(fake_call(f, i)->path, "/deal"))
			last_deal = i;
		else if (!first_product)
			first_product = i;
	}
	assert_true(last_deal < first_product);
	assert_int_equal(fake_count_calls(f, "/product"), 8); /* 400 in batches of 50 */
	assert_all_stored(f, 400);
	assert_int_equal(cell_int(f, "B000000123", "product_due"), 0);
	assert_int_equal(cell_int(f, "B000000123", "product_at"), T0_S);
	assert_int_equal(cell_int(f, "B000000123", "sales_rank"), 50123);
	assert_non_null(strstr(fake_state(f, "walk"), " done "));
	/* The rows waiting for products are found from an index (ABI 1.3),
	 * not by reading the table. */
	assert_true(fake_has_index(f, "deals", "product_due"));
	assert_int_equal(fake_unindexed_selects(f, NULL), 0);
	assert_int_equal(cell_int(f, "B000000123", "touched_at"), T0_S);
	inst_stop(&in);
	fake_free(f);
}

/* A rewalk of an unchanged catalogue buys no /product; a changed deal (new
 * lastUpdate) buys exactly its own; product data past product_max_age_h is
 * bought again. */
static void test_rewalk_pays_only_for_change(void **st)
{
	struct fake *f = world(200, 100);
	struct inst in;
	size_t products;

	(void)st;
	fake_set_int(f, "rewalk_after_s", 600);
	fake_set_int(f, "product_max_age_h", 2);
	in = inst_start(f, tollgate_plugin_v1());
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	products = fake_count_calls(f, "/product");
	assert_int_equal(products, 2);

	fake_advance(f, 600);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_string_equal(fake_pages(f), "0,1,0,1");
	assert_int_equal(fake_count_calls(f, "/product"), products);
	assert_int_equal(cell_int(f, "B000000007", "last_seen"), T0_S + 600);
	assert_int_equal(fake_log_count(f, "200 deals unchanged"), 1);

	/* Deal 7 changes: a new lastUpdate, a new price. */
	fake_keepa_clear_deals(f);
	for (int i = 0; i < 200; i++)
		if (i != 7)
			add_deal(f, i, T0_KM - i);
	{
		char *d = fake_deal_json("B000000007", 2, 1999, 4007, T0_KM + 5);

		fake_keepa_add_deal(f, d);
		free(d);
	}
	fake_advance(f, 600);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_int_equal(fake_count_calls(f, "/product"), products + 1);
	assert_int_equal(fake_product_asks(f, "B000000007"), 2);
	assert_int_equal(cell_int(f, "B000000007", "current_cents"), 1999);
	assert_int_equal(cell_int(f, "B000000007", "deal_updated_at"), T0_S + 5 * 60);

	/* Two hours on, every product is due again. */
	fake_advance(f, 2 * 3600);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_int_equal(fake_product_asks(f, "B000000100"), 2);
	assert_int_equal(fake_count_calls(f, "/product"), products + 1 + 2);
	inst_stop(&in);
	fake_free(f);
}

/* A crash while buying: the rows are there, marked; the restart buys only
 * what is still marked. */
static void test_products_resume(void **st)
{
	struct fake *f = world(300, 100);
	struct inst in = inst_start(f, tollgate_plugin_v1());

	(void)st;
	/* Calls: deal p0, p1, p2 (empty), product x3: the 5th fails. */
	fake_keepa_fail_call(f, 5, TG_ENETWORK, "connection reset");
	assert_int_equal(inst_run(&in, NULL, NULL), TG_ENETWORK);
	inst_stop(&in);
	fake_crash(f);
	assert_int_equal(fake_nrows(f, "deals"), 300);
	assert_non_null(strstr(fake_state(f, "walk"), " products "));
	assert_int_equal(cell_int(f, "B000000050", "product_due"), 0);
	assert_int_equal(cell_int(f, "B000000150", "product_due"), 1);
	assert_int_equal(cell_int(f, "B000000150", "current_cents"), 2650); /* from the page */

	in = inst_start(f, tollgate_plugin_v1());
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_string_equal(fake_pages(f), "0,1,2");
	assert_all_stored(f, 300);
	assert_non_null(strstr(fake_state(f, "walk"), " done "));
	inst_stop(&in);
	fake_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_happy_path),
	    cmocka_unit_test(test_multi_page_walk),
	    cmocka_unit_test(test_resume_after_crash),
	    cmocka_unit_test(test_changed_query_fresh_walk),
	    cmocka_unit_test(test_idle_then_rewalk),
	    cmocka_unit_test(test_keepa_error_ends_run),
	    cmocka_unit_test(test_oversize_split),
	    cmocka_unit_test(test_offers_cost),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_empty_and_broken_pages),
	    cmocka_unit_test(test_page_exactly_full),
	    cmocka_unit_test(test_keepa_cap_last_page),
	    cmocka_unit_test(test_stop),
	    cmocka_unit_test(test_state_error_fails_the_run),
	    cmocka_unit_test(test_init_errors),
	    cmocka_unit_test(test_pages_then_products),
	    cmocka_unit_test(test_rewalk_pays_only_for_change),
	    cmocka_unit_test(test_products_resume),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
