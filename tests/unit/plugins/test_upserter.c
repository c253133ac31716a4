/*
 * test_upserter.c - the upserter and its watermark against the fake.
 */
#include "plugin_test.h"

const struct tg_plugin *tollgate_plugin_v1(void);

static struct fake *world(int64_t budget)
{
	struct fake *f = fake_new(tollgate_plugin_v1());

	fake_set_json(f, "query", QUERY_USED_BOOKS);
	fake_set_now(f, T0_S);
	fake_set_budget(f, budget);
	/* These tests pin tollgate 0.1's feed (policy legacy, legacy.c). */
	fake_set_string(f, "policy", "legacy");
	return f;
}

/* The pay-for-change upserter (the default policy). */
static struct fake *world_change(int64_t budget)
{
	struct fake *f = fake_new(tollgate_plugin_v1());

	fake_set_json(f, "query", QUERY_USED_BOOKS);
	fake_set_now(f, T0_S);
	fake_set_budget(f, budget);
	fake_set_int(f, "cache_window_s", 120);
	return f;
}

/* Deal i with its own creationDate and lastUpdate (Keepa minutes). */
static void add_deal_times(struct fake *f, int i, int64_t created, int64_t updated, int64_t price)
{
	char asin[16], *text, *p;
	cJSON *d;

	asin_of(asin, i);
	text = fake_deal_json(asin, 2, price, 4000 + i, updated);
	d = cJSON_Parse(text);
	free(text);
	cJSON_ReplaceItemInObject(d, "creationDate", cJSON_CreateNumber((double)created));
	text = cJSON_PrintUnformatted(d);
	fake_keepa_add_deal(f, text);
	cJSON_free(text);
	cJSON_Delete(d);
	p = fake_product_json(asin, -1, 3000 + i, price, 50000 + i);
	fake_keepa_set_product(f, asin, p);
	free(p);
}

/* The committed watermark is (minute, list). */
static void assert_wm(struct fake *f, int64_t minute, const char *list)
{
	const char *s = fake_state(f, "watermark");
	char fp[32], l[4096];
	long long m;

	assert_non_null(s);
	assert_int_equal(sscanf(s, "v1 %31s %lld %4095s", fp, &m, l), 3);
	assert_int_equal(m, minute);
	assert_string_equal(l, list);
}

static void assert_asks(struct fake *f, int from, int to, size_t n)
{
	char asin[16];
	int i;

	for (i = from; i <= to; i++) {
		asin_of(asin, i);
		if (fake_product_asks(f, asin) != n)
			fail_msg("%s asked %zu times, expected %zu", asin, fake_product_asks(f, asin), n);
	}
}

static void test_happy_path(void **st)
{
	struct fake *f = world(100);
	struct inst in = inst_start(f, tollgate_plugin_v1());
	int i;

	(void)st;
	for (i = 4; i >= 0; i--)
		add_deal(f, i, T0_KM - 10 * i);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_int_equal(fake_call(f, 0)->sort, 1); /* by deal age, never sortType 4 */
	assert_int_equal(fake_nrows(f, "deals"), 5);
	assert_wm(f, T0_KM, "B000000000");
	assert_string_equal(fake_cell_text(f, "deals", 1, "B000000002", "written_by"), "upserter");
	assert_int_equal(cell_int(f, "B000000002", "deal_updated_at"), T0_S - 20 * 60);
	assert_int_equal(fake_progress_done(f), 5);
	assert_int_equal(fake_log_count(f, "run done"), 1);
	inst_stop(&in);
	fake_free(f);
}

static void test_stops_at_watermark(void **st)
{
	struct fake *f = world(100);
	struct inst in = inst_start(f, tollgate_plugin_v1());
	int i;

	(void)st;
	for (i = 0; i < 400; i++)
		add_deal(f, i, T0_KM - 1 - i);
	/* Without a watermark: first_run_pages (1) page only. */
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_string_equal(fake_pages(f), "0");
	assert_int_equal(fake_nrows(f, "deals"), 150);
	assert_wm(f, T0_KM - 1, "B000000000");

	/* Ten newer deals: page 0 reaches the watermark. */
	for (i = 1000; i < 1010; i++)
		add_deal(f, i, T0_KM + (i - 1000));
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_string_equal(fake_pages(f), "0,0");
	assert_int_equal(fake_nrows(f, "deals"), 160);
	assert_asks(f, 1000, 1009, 1);
	assert_asks(f, 0, 149, 1);
	assert_wm(f, T0_KM + 9, "B000001009");

	/* 200 newer: two pages are needed, and no more. */
	for (i = 2000; i < 2200; i++)
		add_deal(f, i, T0_KM + 100 + (i - 2000));
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_string_equal(fake_pages(f), "0,0,0,1");
	assert_asks(f, 2000, 2199, 1);
	assert_asks(f, 1000, 1009, 1);
	assert_int_equal(fake_nrows(f, "deals"), 360);

	/* Nothing new: one page, no product call. */
	i = (int)fake_count_calls(f, "/product");
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_int_equal(fake_count_calls(f, "/product"), i);
	inst_stop(&in);
	fake_free(f);
}

static void test_same_minute_across_runs(void **st)
{
	struct fake *f = world(100);
	struct inst in = inst_start(f, tollgate_plugin_v1());
	const int64_t M = T0_KM;

	(void)st;
	add_deal(f, 1, M);
	add_deal(f, 2, M);
	add_deal(f, 3, M - 1);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_wm(f, M, "B000000001,B000000002");

	/* A deal of the same minute shows up late, and a newer one. */
	add_deal(f, 4, M);
	add_deal(f, 5, M + 1);
	inst_stop(&in);
	in = inst_start(f, tollgate_plugin_v1()); /* restarts change nothing */
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_asks(f, 1, 5, 1); /* none lost, none repeated */
	assert_int_equal(fake_nrows(f, "deals"), 5);
	assert_wm(f, M + 1, "B000000005");

	/* Nothing new. */
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_asks(f, 1, 5, 1);
	assert_int_equal(fake_count_calls(f, "/product"), 2);

	/* Another deal at the watermark's minute. */
	add_deal(f, 6, M + 1);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_asks(f, 1, 6, 1);
	assert_wm(f, M + 1, "B000000005,B000000006");
	inst_stop(&in);
	fake_free(f);
}

static void test_error_mid_run_keeps_committed_watermark(void **st)
{
	struct fake *f = world(3);
	struct inst in = inst_start(f, tollgate_plugin_v1());
	char *err = NULL;
	int i;

	(void)st;
	add_deal(f, 0, T0_KM);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK); /* calls 1, 2 */
	for (i = 1; i <= 10; i++)
		add_deal(f, i, T0_KM + i);
	/* Run 2: deal (3), products of B1-3 (4), B4-6 (5) fails. */
	fake_keepa_fail_call(f, 5, TG_ENETWORK, "timed out after 3 retries");
	assert_int_equal(inst_run(&in, NULL, &err), TG_ENETWORK);
	assert_non_null(strstr(err, "timed out"));
	free(err);
	inst_stop(&in);
	fake_crash(f);
	/* Oldest first: the watermark covers exactly what was committed. */
	assert_int_equal(fake_nrows(f, "deals"), 4);
	assert_wm(f, T0_KM + 3, "B000000003");

	in = inst_start(f, tollgate_plugin_v1());
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_int_equal(fake_nrows(f, "deals"), 11);
	assert_asks(f, 0, 10, 1);
	assert_wm(f, T0_KM + 10, "B000000010");
	inst_stop(&in);
	fake_free(f);
}

static void test_same_minute_chunk_boundary(void **st)
{
	struct fake *f = world(1); /* one ASIN per chunk */
	struct inst in = inst_start(f, tollgate_plugin_v1());

	(void)st;
	add_deal(f, 3, T0_KM);
	add_deal(f, 1, T0_KM);
	add_deal(f, 2, T0_KM);
	/* deal (1), B1 (2), B2 (3) fails with the storage failing on B2 too. */
	fake_keepa_fail_call(f, 3, TG_EKEEPA, "HTTP 500");
	assert_int_equal(inst_run(&in, NULL, NULL), TG_EKEEPA);
	assert_wm(f, T0_KM, "B000000001");
	fake_fail_upsert(f, 2); /* B2's row: rolled back with its watermark */
	assert_int_equal(inst_run(&in, NULL, NULL), TG_ESTORAGE);
	assert_wm(f, T0_KM, "B000000001");
	assert_false(fake_has_row(f, "deals", 1, "B000000002"));
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_wm(f, T0_KM, "B000000001,B000000002,B000000003");
	assert_asks(f, 1, 1, 1);
	assert_asks(f, 3, 3, 1);
	assert_int_equal(fake_nrows(f, "deals"), 3);
	inst_stop(&in);
	fake_free(f);
}

static void test_changed_deal(void **st)
{
	struct fake *f = world(100);
	struct inst in = inst_start(f, tollgate_plugin_v1());
	char *d;

	(void)st;
	add_deal(f, 0, T0_KM - 2);
	add_deal(f, 1, T0_KM - 1);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	fake_advance(f, 600);
	/* Deal 0 is updated: a new price and lastUpdate. */
	fake_keepa_clear_deals(f);
	add_deal(f, 1, T0_KM - 1);
	d = fake_deal_json("B000000000", 2, 1999, 4000, T0_KM + 9);
	fake_keepa_add_deal(f, d);
	free(d);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_asks(f, 0, 0, 2);
	assert_asks(f, 1, 1, 1);
	assert_int_equal(cell_int(f, "B000000000", "current_cents"), 1999);
	assert_int_equal(cell_int(f, "B000000000", "deal_updated_at"), T0_S + 9 * 60);
	assert_int_equal(cell_int(f, "B000000000", "first_seen"), T0_S);
	assert_int_equal(cell_int(f, "B000000000", "last_seen"), T0_S + 600);
	assert_int_equal(cell_int(f, "B000000001", "last_seen"), T0_S);
	inst_stop(&in);
	fake_free(f);
}

static void test_keepa_error_on_page(void **st)
{
	struct fake *f = world(100);
	struct inst in = inst_start(f, tollgate_plugin_v1());
	char *before, *err = NULL;

	(void)st;
	add_deal(f, 0, T0_KM);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	before = strdup(fake_state(f, "watermark"));
	add_deal(f, 1, T0_KM + 1);
	fake_keepa_fail_call(f, 3, TG_EKEEPA, "HTTP 402: payment required");
	assert_int_equal(inst_run(&in, NULL, &err), TG_EKEEPA);
	assert_non_null(strstr(err, "payment required"));
	free(err);
	assert_string_equal(fake_state(f, "watermark"), before);
	free(before);
	assert_false(fake_has_row(f, "deals", 1, "B000000001"));
	inst_stop(&in);
	fake_free(f);
}

static void test_query_change_resets_watermark(void **st)
{
	struct fake *f = world(100);
	struct inst in;

	(void)st;
	fake_set_state(f, "watermark", "v1 0123456789abcdef 99999999 B000000000");
	add_deal(f, 0, T0_KM);
	in = inst_start(f, tollgate_plugin_v1());
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_int_equal(fake_log_count(f, "the query changed"), 1);
	assert_int_equal(fake_nrows(f, "deals"), 1);
	assert_wm(f, T0_KM, "B000000000");
	inst_stop(&in);
	fake_free(f);
}

static void test_malformed(void **st)
{
	struct fake *f = world(100);
	struct inst in = inst_start(f, tollgate_plugin_v1());

	(void)st;
	add_deal(f, 0, T0_KM);
	fake_keepa_add_deal(f, "{\"asin\":\"BNOTIME001\",\"current\":[-1,-1,1999]}");
	fake_keepa_add_deal(f, "{\"lastUpdate\":7000000}");
	fake_keepa_add_deal(f, "null");
	fake_keepa_add_deal(f, "{\"asin\":\"BNOPRODUCT\",\"current\":[-1,-1,1999],\"lastUpdate\":7000000}");
	fake_keepa_set_product(f, "B000000000", "{\"asin\":\"B000000000\",\"stats\":{\"current\":\"x\"}}");
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_int_equal(fake_nrows(f, "deals"), 2);
	assert_int_equal(cell_int(f, "BNOPRODUCT", "current_cents"), 1999);
	assert_int_equal(cell_int(f, "B000000000", "used_cents"), CELL_NULL);
	assert_int_equal(fake_log_count(f, "deal without a valid asin or lastUpdate skipped"), 3);
	assert_int_equal(fake_log_count(f, "skipped 3, 1 products missing"), 1);
	inst_stop(&in);
	fake_free(f);
}

static void test_state_error_is_not_an_empty_watermark(void **st)
{
	struct fake *f = world(100);
	struct inst in = inst_start(f, tollgate_plugin_v1());
	int i;

	(void)st;
	for (i = 0; i < 300; i++)
		add_deal(f, i, T0_KM - i);
	fake_set_state(f, "watermark", "v1 0 0 -");
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK); /* unreadable fp: reset */
	fake_fail_state_get(f, TG_ESTORAGE);
	add_deal(f, 1000, T0_KM + 1);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_ESTORAGE);
	assert_int_equal(fake_count_calls(f, "/deal"), 1); /* nothing read, nothing moved */
	assert_wm(f, T0_KM, "B000000000");
	inst_stop(&in);
	fake_free(f);
}

static void test_stop(void **st)
{
	struct fake *f = world(100);
	struct inst in = inst_start(f, tollgate_plugin_v1());

	(void)st;
	add_deal(f, 0, T0_KM);
	fake_stop_after_calls(f, 1);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_ESTOPPED);
	assert_null(fake_state(f, "watermark"));
	assert_int_equal(fake_nrows(f, "deals"), 0);
	inst_stop(&in);
	fake_free(f);
}

/* Policy change, feed sorted by lastUpdate: a run reads until a whole page
 * is older than the watermark, writes the changed deals from the pages and
 * buys only their products; within the cache window it reads nothing. */
static void test_change_feed_by_update(void **st)
{
	struct fake *f = world_change(100);
	struct inst in;
	int i;

	(void)st;
	fake_set_int(f, "first_run_pages", 3);
	fake_set_int(f, "full_scan_s", -1);
	in = inst_start(f, tollgate_plugin_v1());
	for (i = 0; i < 450; i++)
		add_deal_times(f, i, T0_KM - 1000 - i, T0_KM - i, 2500);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_string_equal(fake_pages(f), "0,1,2");
	assert_int_equal(fake_nrows(f, "deals"), 450);
	assert_asks(f, 0, 449, 1);

	/* 60 s later: Keepa's cache would answer the same: no call. */
	fake_advance(f, 60);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_string_equal(fake_pages(f), "0,1,2");

	/* Deal 300 (page 2) is re-priced: it moves to the top. */
	fake_advance(f, 90);
	fake_keepa_clear_deals(f);
	for (i = 0; i < 450; i++)
		if (i != 300)
			add_deal_times(f, i, T0_KM - 1000 - i, T0_KM - i, 2500);
	add_deal_times(f, 300, T0_KM + 2, T0_KM + 2, 1999);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	/* Page 0 holds it and ends older than the watermark in both times:
	 * the run stops there. */
	assert_string_equal(fake_pages(f), "0,1,2,0");
	assert_int_equal(cell_int(f, "B000000300", "current_cents"), 1999);
	assert_int_equal(cell_int(f, "B000000300", "deal_updated_at"), T0_S + 2 * 60);
	assert_asks(f, 300, 300, 2);
	assert_asks(f, 0, 299, 1);
	inst_stop(&in);
	fake_free(f);
}

/* The start the sweep's tests share: 450 deals sorted by creation (three
 * full pages and an empty one), the first run reading three pages. The
 * caller's settings are set before. */
static struct inst creation_feed_first_run(struct fake *f)
{
	struct inst in;

	fake_keepa_deal_age(f, "creationDate");
	fake_set_int(f, "first_run_pages", 3);
	in = inst_start(f, tollgate_plugin_v1());
	for (int i = 0; i < 450; i++)
		add_deal_times(f, i, T0_KM - i, T0_KM - i, 2500);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	return in;
}

/* Feed sorted by creation: a deal whose lastUpdate moved but whose creation
 * did not stays deep in the feed. The sweep finds it by diffing lastUpdate
 * against the rows, a slice of the deep pages per run as full_scan_share
 * pays for, and buys only its product. The fake's plan is 5 tokens a
 * minute: at half of it, a page every two Keepa minutes (120 s of the
 * host's clock, the cache window being two minutes). */
static void test_change_feed_by_creation_sweep(void **st)
{
	struct fake *f = world_change(100);
	struct inst in;
	const char *wm;
	char want[32];
	int i;

	(void)st;
	fake_set_int(f, "full_scan_s", 3600);
	in = creation_feed_first_run(f);
	assert_int_equal(fake_nrows(f, "deals"), 450);

	/* Deal 400 is updated (same creation): deep on page 2. */
	fake_advance(f, 300);
	fake_keepa_clear_deals(f);
	for (i = 0; i < 450; i++)
		add_deal_times(f, i, T0_KM - i, i == 400 ? T0_KM + 3 : T0_KM - i, 2500);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	/* Page 0 ends older than the watermark in both times: the
	 * incremental read stops there. Five minutes paid for 2.5 pages: the
	 * sweep reads pages 1 and 2, and finds deal 400. */
	assert_string_equal(fake_pages(f), "0,1,2,0,1,2");
	assert_int_equal(fake_log_count(f, "(sweep: pages 1-2)"), 1);
	assert_int_equal(cell_int(f, "B000000400", "deal_updated_at"), T0_S + 3 * 60);
	assert_asks(f, 400, 400, 2);
	assert_asks(f, 0, 399, 1);

	/* The next slice goes on from page 3, the end of the feed. A round is
	 * not a full scan (the feed moves under the cursor): full_at stays
	 * the first run's. */
	fake_advance(f, 300);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_string_equal(fake_pages(f), "0,1,2,0,1,2,0,3");
	assert_int_equal(fake_log_count(f, "(sweep: pages 3-3, the end of the feed)"), 1);
	wm = fake_state(f, "watermark");
	snprintf(want, sizeof(want), " %lld", T0_S); /* full_at */
	assert_non_null(wm);
	assert_true(strlen(wm) > strlen(want) && !strcmp(wm + strlen(wm) - strlen(want), want));
	assert_int_equal(fake_log_count(f, "(full scan)"), 0);
	/* And starts over at the top. */
	fake_advance(f, 130);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_string_equal(fake_pages(f), "0,1,2,0,1,2,0,3,0,1,2,3");
	/* The full_scan_s net still comes. */
	fake_advance(f, 3000);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_int_equal(fake_log_count(f, "(full scan)"), 1);
	inst_stop(&in);
	fake_free(f);
}

/* The backfiller bought a row's product already: the upserter, reading it
 * unchanged, buys nothing again. */
static void test_change_no_double_buy(void **st)
{
	struct fake *f = world_change(100);
	struct inst in = inst_start(f, tollgate_plugin_v1());
	struct tg_value row[] = {TG_VINT("domain", 1), TG_VTEXT("asin", "B000000000"),
	                         TG_VINT("deal_updated_at", (T0_KM + 21564000LL) * 60), TG_VINT("product_at", T0_S),
	                         TG_VINT("product_due", 0)};

	(void)st;
	fake_put_row(f, "deals", row, sizeof(row) / sizeof(row[0]));
	add_deal_times(f, 0, T0_KM - 5, T0_KM, 2500);
	add_deal_times(f, 1, T0_KM - 5, T0_KM - 1, 2500);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_asks(f, 0, 0, 0);
	assert_asks(f, 1, 1, 1);
	assert_int_equal(cell_int(f, "B000000000", "current_cents"), 2500); /* written from the page */
	inst_stop(&in);
	fake_free(f);
}

/* A page from an older cached result shows a deal older than its row (a
 * later read already stored the newer deal): the row keeps the newer deal,
 * and no product is bought for it. */
static void test_change_older_page_keeps_newer_row(void **st)
{
	struct fake *f = world_change(100);
	struct inst in = inst_start(f, tollgate_plugin_v1());
	struct tg_value row[] = {TG_VINT("domain", 1), TG_VTEXT("asin", "B000000000"),
	                         TG_VINT("current_cents", 1999),
	                         TG_VINT("deal_updated_at", (T0_KM + 21564000LL) * 60), TG_VINT("product_at", T0_S),
	                         TG_VINT("product_due", 0)};

	(void)st;
	fake_put_row(f, "deals", row, sizeof(row) / sizeof(row[0]));
	add_deal_times(f, 0, T0_KM - 5, T0_KM - 3, 2500); /* the same deal, three minutes older */
	add_deal_times(f, 1, T0_KM - 5, T0_KM - 4, 2500);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_int_equal(cell_int(f, "B000000000", "current_cents"), 1999);
	assert_int_equal(cell_int(f, "B000000000", "deal_updated_at"), (T0_KM + 21564000LL) * 60);
	assert_asks(f, 0, 0, 0);
	assert_int_equal(cell_int(f, "B000000001", "current_cents"), 2500);
	assert_int_equal(fake_log_count(f, "1 older than their rows (kept)"), 1);
	inst_stop(&in);
	fake_free(f);
}

/* A deal as Keepa's page carries it: `current` for every price type (34),
 * here Amazon none, New 2800, Used `used`, sales rank `rank`, 7 new and
 * `nused` used offers; avg[3] (ninety days) with the rank's average. */
static void add_full_deal(struct fake *f, const char *asin, int64_t used, int64_t rank, int64_t nused,
                          int64_t updated)
{
	char *text = fake_deal_json(asin, 2, used, 4000, updated);
	cJSON *d = cJSON_Parse(text), *cur = cJSON_CreateArray(), *avg = cJSON_GetObjectItem(d, "avg");
	int64_t v[34];

	free(text);
	for (int i = 0; i < 34; i++)
		v[i] = -1;
	v[1] = 2800, v[2] = used, v[3] = rank, v[11] = 7, v[12] = nused;
	for (int i = 0; i < 34; i++)
		cJSON_AddItemToArray(cur, cJSON_CreateNumber((double)v[i]));
	cJSON_ReplaceItemInObject(d, "current", cur);
	for (int i = 3; i < 34; i++)
		cJSON_AddItemToArray(cJSON_GetArrayItem(avg, 3), cJSON_CreateNumber(i == 3 ? 45000 : -1));
	text = cJSON_PrintUnformatted(d);
	fake_keepa_add_deal(f, text);
	cJSON_free(text);
	cJSON_Delete(d);
}

/* A changed deal whose page carries the product's current values is written
 * from the page alone, product columns included: no /product. With
 * product_on_change it buys its product as before. */
static void test_change_page_carries_product(void **st)
{
	for (int on_change = 0; on_change <= 1; on_change++) {
		struct fake *f = world_change(100);
		struct inst in;
		char *p = fake_product_json("B000000001", -1, 2800, 2500, 41000);

		(void)st;
		fake_set_int(f, "full_scan_s", -1);
		fake_set_bool(f, "product_on_change", on_change);
		fake_keepa_set_product(f, "B000000001", p);
		free(p);
		in = inst_start(f, tollgate_plugin_v1());
		add_full_deal(f, "B000000001", 2500, 41000, 3, T0_KM);
		assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
		/* New: its product is bought (the sales-rank drops are its own). */
		assert_int_equal(fake_product_asks(f, "B000000001"), 1);
		assert_int_equal(cell_int(f, "B000000001", "product_due"), 0);

		/* Re-priced, a new rank, one more used offer. */
		fake_advance(f, 150);
		fake_keepa_clear_deals(f);
		add_full_deal(f, "B000000001", 1999, 39000, 4, T0_KM + 2);
		assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
		assert_int_equal(fake_product_asks(f, "B000000001"), on_change ? 2 : 1);
		assert_int_equal(cell_int(f, "B000000001", "deal_updated_at"), T0_S + 2 * 60);
		assert_int_equal(cell_int(f, "B000000001", "current_cents"), 1999);
		assert_int_equal(cell_int(f, "B000000001", "product_due"), 0);
		if (!on_change) {
			/* The product columns, from the page. */
			assert_int_equal(cell_int(f, "B000000001", "used_cents"), 1999);
			assert_int_equal(cell_int(f, "B000000001", "new_cents"), 2800);
			assert_int_equal(cell_int(f, "B000000001", "sales_rank"), 39000);
			assert_int_equal(cell_int(f, "B000000001", "sales_rank_avg90"), 45000);
			assert_int_equal(cell_int(f, "B000000001", "offers_used"), 4);
			assert_int_equal(cell_int(f, "B000000001", "offers_new"), 7);
			assert_int_equal(cell_int(f, "B000000001", "amazon_sells"), 0);
			assert_int_equal(cell_int(f, "B000000001", "product_at"), T0_S);
		}
		inst_stop(&in);
		fake_free(f);
	}
}

/* The top of the feed commits before the sweep reads on: a sweep page that
 * fails leaves the new deal at the top stored and the watermark past it,
 * and the next run sweeps the same slice again. */
static void test_change_sweep_failure_keeps_top(void **st)
{
	struct fake *f = world_change(100);
	struct inst in;
	char want[64];

	(void)st;
	in = creation_feed_first_run(f);

	/* A new deal at the top; the sweep's first page (the run's second
	 * call) fails. */
	fake_advance(f, 300);
	add_deal_times(f, 999, T0_KM + 4, T0_KM + 4, 1999);
	fake_keepa_fail_call(f, (int64_t)fake_ncalls(f) + 2, TG_EKEEPA, "HTTP 500");
	assert_int_not_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_int_equal(cell_int(f, "B000000999", "current_cents"), 1999);
	/* Its product is bought all the same. */
	assert_asks(f, 999, 999, 1);
	assert_int_equal(cell_int(f, "B000000999", "product_due"), 0);
	snprintf(want, sizeof(want), " %lld %lld ", (long long)(T0_KM + 4), (long long)(T0_KM + 4));
	assert_non_null(strstr(fake_state(f, "watermark"), want));

	fake_advance(f, 130);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_string_equal(fake_pages(f), "0,1,2,0,1,0,1,2,3");
	assert_int_equal(fake_log_count(f, "(sweep: pages 1-3, the end of the feed)"), 1);
	inst_stop(&in);
	fake_free(f);
}

/* The sweep reads as many deep pages as full_scan_share of the plan has
 * paid for since the last run: the fake's plan is 5 tokens a minute, a
 * page 5 tokens, the share half of it, a Keepa minute 60 s of the host's
 * clock (the cache window, 120 s, is two). The feed is 4 pages (450
 * announced deals and the empty page), and the credit never exceeds one
 * feed. With full_scan_share 0 only full_scan_s reads the deep pages. */
static void test_change_sweep_share(void **st)
{
	for (int share = 0; share <= 1; share++) {
		struct fake *f = world_change(100);
		struct inst in;
		int i;

		(void)st;
		if (!share)
			fake_set_real(f, "full_scan_share", 0);
		/* No category filter: the fake's categoryCount is the total. */
		fake_set_json(f, "query", "{\"domainId\":1,\"priceTypes\":[2],\"dateRange\":1}");
		in = creation_feed_first_run(f);
		/* 400 s: 3.3 pages paid for, the rest of the feed. */
		fake_advance(f, 400);
		assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
		assert_string_equal(fake_pages(f), share ? "0,1,2,0,1,2,3" : "0,1,2,0");
		/* Then 130 s a run: 1.08 pages each, one page a slice. */
		for (i = 0; i < 3; i++) {
			fake_advance(f, 130);
			assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
		}
		assert_string_equal(fake_pages(f), share ? "0,1,2,0,1,2,3,0,1,0,2,0,3" : "0,1,2,0,0,0,0");
		assert_int_equal(fake_log_count(f, "the end of the feed"), share ? 2 : 0);
		assert_int_equal(fake_log_count(f, "(full scan)"), 0);
		inst_stop(&in);
		fake_free(f);
	}
}

/* The credit accrues only over runs that sweep: after a full scan (here the
 * full_scan_s net), the next slice is what the time since pays for (130 s:
 * one page), not a burst saved up over the scan. */
static void test_change_sweep_no_burst_after_full_scan(void **st)
{
	struct fake *f = world_change(100);
	struct inst in;

	(void)st;
	fake_set_int(f, "full_scan_s", 600);
	in = creation_feed_first_run(f);
	fake_advance(f, 600);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_int_equal(fake_log_count(f, "(full scan)"), 1);
	fake_advance(f, 130);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_string_equal(fake_pages(f), "0,1,2,0,1,2,3,0,1");
	inst_stop(&in);
	fake_free(f);
}

/* n deals newest first by lastUpdate (from newest down), with every
 * seventh created long after its neighbours: creationDate rises along the
 * page, lastUpdate never does - a feed sorted by update. */
static void add_feed_sorted_by_update(struct fake *f, int n, int64_t newest)
{
	for (int i = 0; i < n; i++)
		add_deal_times(f, i, T0_KM - 2000 + (i % 7 == 0 ? 1000 : 0) - i, newest - i, 2500);
}

/* n deals newest first by creationDate, with every seventh re-priced now:
 * lastUpdate rises along the page, creationDate never does - a feed sorted
 * by creation. */
static void add_feed_sorted_by_creation(struct fake *f, int n)
{
	for (int i = 0; i < n; i++)
		add_deal_times(f, i, T0_KM - i, i % 7 == 0 ? T0_KM : T0_KM - i, 2500);
}

/* The pages show the feed sorted by lastUpdate (creationDate rises along
 * it): the incremental read finds every change, so the full scan that
 * full_scan_share would pay for at 530 s (see the test above) is not run;
 * full_scan_s, the safety net, still is. */
static void test_change_feed_order_learned(void **st)
{
	struct fake *f = world_change(100);
	struct inst in;

	(void)st;
	fake_keepa_deal_age(f, "lastUpdate");
	fake_set_int(f, "first_run_pages", 3);
	fake_set_int(f, "full_scan_s", 1800);
	fake_set_json(f, "query", "{\"domainId\":1,\"priceTypes\":[2],\"dateRange\":1}");
	in = inst_start(f, tollgate_plugin_v1());
	add_feed_sorted_by_update(f, 450, T0_KM);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_int_equal(fake_log_count(f, "orders this feed by lastUpdate"), 1);
	fake_advance(f, 530);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_int_equal(fake_log_count(f, "(full scan)"), 0);
	assert_int_equal(fake_log_count(f, "(sweep"), 0);
	fake_advance(f, 1300); /* 1830 s: full_scan_s is due */
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_int_equal(fake_log_count(f, "(full scan)"), 1);
	/* Learned once, logged once. */
	assert_int_equal(fake_log_count(f, "orders this feed by"), 1);
	inst_stop(&in);
	fake_free(f);
}

/* Sorted by creation (lastUpdate rises where a deal deep in the feed was
 * re-priced): the sweep stays. */
static void test_change_feed_order_creation_keeps_scans(void **st)
{
	struct fake *f = world_change(100);
	struct inst in;

	(void)st;
	fake_keepa_deal_age(f, "creationDate");
	fake_set_int(f, "first_run_pages", 3);
	fake_set_json(f, "query", "{\"domainId\":1,\"priceTypes\":[2],\"dateRange\":1}");
	in = inst_start(f, tollgate_plugin_v1());
	add_feed_sorted_by_creation(f, 450);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_int_equal(fake_log_count(f, "orders this feed by creationDate"), 1);
	fake_advance(f, 530);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_int_equal(fake_log_count(f, "(sweep: pages 1-3, the end of the feed)"), 1);
	inst_stop(&in);
	fake_free(f);
}

/* Once a page showed lastUpdate rising, lastUpdate is not the order, for
 * good: a later read where only creationDate rises says "neither", never
 * "by update", and the sweep stays. */
static void test_change_feed_order_proof_stays(void **st)
{
	struct fake *f = world_change(100);
	struct inst in;

	(void)st;
	fake_keepa_deal_age(f, "creationDate");
	in = inst_start(f, tollgate_plugin_v1());
	add_feed_sorted_by_creation(f, 20);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_int_equal(fake_log_count(f, "orders this feed by creationDate"), 1);
	/* The next page shows only creation rising. */
	fake_advance(f, 130);
	fake_keepa_deal_age(f, "lastUpdate");
	fake_keepa_clear_deals(f);
	add_feed_sorted_by_update(f, 20, T0_KM + 1);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_int_equal(fake_log_count(f, "orders this feed by lastUpdate"), 0);
	assert_int_equal(fake_log_count(f, "orders this feed by neither time"), 1);
	inst_stop(&in);
	fake_free(f);
}

/* An incremental read that hits max_pages before a page older than the
 * watermark leaves deals unread behind the watermark: the next run is a
 * full scan, even with full_scan_s = -1. */
static void test_change_truncated_read_catches_up(void **st)
{
	struct fake *f = world_change(100);
	struct inst in;
	int i;

	(void)st;
	fake_set_int(f, "max_pages", 1);
	fake_set_int(f, "full_scan_s", -1);
	in = inst_start(f, tollgate_plugin_v1());
	for (i = 0; i < 20; i++)
		add_deal_times(f, i, T0_KM - 100 - i, T0_KM - 100 - i, 2500);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	/* 300 newer deals: two pages' worth, one page allowed. */
	fake_advance(f, 130);
	for (i = 100; i < 400; i++)
		add_deal_times(f, i, T0_KM + 400 - i, T0_KM + 400 - i, 2500);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_int_equal(fake_log_count(f, "the next run is a full scan"), 1);
	assert_int_equal(fake_log_count(f, "(full scan)"), 0);
	fake_advance(f, 130);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_int_equal(fake_log_count(f, "(full scan)"), 1);
	assert_int_equal(fake_nrows(f, "deals"), 320);
	/* Caught up: incremental again. */
	fake_advance(f, 130);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_int_equal(fake_log_count(f, "(full scan)"), 1);
	inst_stop(&in);
	fake_free(f);
}

/* ABI 1.2: after each run the upserter asks not to be run again before
 * Keepa's cache of page 0 expires, so no run lands inside the window (and
 * the next read comes at the window's end, not a schedule later). On an
 * ABI 1.1 host it does without. */
static void test_change_not_before_cache_expiry(void **st)
{
	struct fake *f = world_change(100);
	struct inst in;
	int i;

	(void)st;
	in = inst_start(f, tollgate_plugin_v1());
	for (i = 0; i < 20; i++)
		add_deal_times(f, i, T0_KM - i, T0_KM - i, 2500);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_string_equal(fake_pages(f), "0");
	assert_int_equal(fake_take_not_before_ms(f), 120000);
	fake_advance(f, 45); /* a schedule tick inside the window: no call */
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_string_equal(fake_pages(f), "0");
	assert_int_equal(fake_take_not_before_ms(f), 75000);
	fake_advance(f, 75);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_string_equal(fake_pages(f), "0,0");
	assert_int_equal(fake_take_not_before_ms(f), 120000);
	inst_stop(&in);
	fake_free(f);

	/* A read of four pages, a second each: one result, whose window counts
	 * from the first page's answer. At 50 s each the third page was
	 * answered a whole window after the first was asked for: Keepa may have
	 * computed a new result for it, or not (the first may have waited to
	 * be sent), so the window counts from the answer of each page after
	 * it until one is asked for a window after that. */
	for (int slow = 0; slow <= 1; slow++) {
		f = world_change(100);
		fake_set_int(f, "first_run_pages", 4);
		fake_set_deal_call_ms(f, slow ? 50000 : 1000);
		in = inst_start(f, tollgate_plugin_v1());
		for (i = 0; i < 600; i++)
			add_deal_times(f, i, T0_KM - i, T0_KM - i, 2500);
		assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
		assert_string_equal(fake_pages(f), "0,1,2,3");
		assert_int_equal(fake_take_not_before_ms(f), slow ? 120000 : 117000);
		inst_stop(&in);
		fake_free(f);
	}

	/* A call that failed may have begun a result: the window counts from
	 * its end. */
	f = world_change(100);
	in = inst_start(f, tollgate_plugin_v1());
	for (i = 0; i < 20; i++)
		add_deal_times(f, i, T0_KM - i, T0_KM - i, 2500);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_int_equal(fake_take_not_before_ms(f), 120000);
	fake_advance(f, 130);
	fake_set_deal_call_ms(f, 5000);
	fake_keepa_fail_call(f, (int64_t)fake_ncalls(f) + 1, TG_ENETWORK, "timed out");
	assert_int_not_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_int_equal(fake_take_not_before_ms(f), 120000);
	inst_stop(&in);
	fake_free(f);

	f = world_change(100);
	fake_services_abi_1_1(f);
	in = inst_start(f, tollgate_plugin_v1());
	for (i = 0; i < 20; i++)
		add_deal_times(f, i, T0_KM - i, T0_KM - i, 2500);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_string_equal(fake_pages(f), "0");
	assert_int_equal(fake_take_not_before_ms(f), -1);
	inst_stop(&in);
	fake_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_happy_path),
	    cmocka_unit_test(test_stops_at_watermark),
	    cmocka_unit_test(test_same_minute_across_runs),
	    cmocka_unit_test(test_error_mid_run_keeps_committed_watermark),
	    cmocka_unit_test(test_same_minute_chunk_boundary),
	    cmocka_unit_test(test_changed_deal),
	    cmocka_unit_test(test_keepa_error_on_page),
	    cmocka_unit_test(test_query_change_resets_watermark),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_state_error_is_not_an_empty_watermark),
	    cmocka_unit_test(test_stop),
	    cmocka_unit_test(test_change_feed_by_update),
	    cmocka_unit_test(test_change_feed_by_creation_sweep),
	    cmocka_unit_test(test_change_no_double_buy),
	    cmocka_unit_test(test_change_older_page_keeps_newer_row),
	    cmocka_unit_test(test_change_page_carries_product),
	    cmocka_unit_test(test_change_sweep_share),
	    cmocka_unit_test(test_change_sweep_failure_keeps_top),
	    cmocka_unit_test(test_change_sweep_no_burst_after_full_scan),
	    cmocka_unit_test(test_change_feed_order_learned),
	    cmocka_unit_test(test_change_not_before_cache_expiry),
	    cmocka_unit_test(test_change_feed_order_proof_stays),
	    cmocka_unit_test(test_change_truncated_read_catches_up),
	    cmocka_unit_test(test_change_feed_order_creation_keeps_scans),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
