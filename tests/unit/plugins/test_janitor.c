/*
 * test_janitor.c - refresh before drop, against the fake.
 */
#include "plugin_test.h"

const struct tg_plugin *tollgate_plugin_v1(void);

#define H 3600

static void put_row(struct fake *f, int64_t domain, const char *asin, int64_t checked_at)
{
	struct tg_value v[] = {
	    TG_VINT("domain", domain),
	    TG_VTEXT("asin", asin),
	    TG_VINT("price_type", 2),
	    TG_VINT("date_range", 1),
	    TG_VINT("current_cents", 2500),
	    TG_VINT("avg_cents", 4000),
	    TG_VINT("used_cents", 2500),
	    TG_VINT("first_seen", checked_at),
	    TG_VINT("last_seen", checked_at),
	    TG_VINT("checked_at", checked_at),
	    TG_VTEXT("written_by", "backfiller"),
	};

	fake_put_row(f, "deals", v, sizeof(v) / sizeof(v[0]));
}

/* A product whose used price is `used` (-1: no used offer). */
static void put_product(struct fake *f, const char *asin, int64_t used)
{
	char *p = fake_product_json(asin, -1, 5000, used, 70000);

	fake_keepa_set_product(f, asin, p);
	free(p);
}

static struct fake *world(struct inst *in)
{
	struct fake *f = fake_new(tollgate_plugin_v1());

	fake_set_now(f, T0_S);
	*in = inst_start(f, tollgate_plugin_v1()); /* declares the table */
	return f;
}

static void test_refresh_before_drop(void **st)
{
	struct inst in;
	struct fake *f = world(&in);
	size_t i;

	(void)st;
	put_row(f, 1, "BFRESH0001", T0_S - 1 * H);
	put_row(f, 1, "BSTALEOK01", T0_S - 25 * H);
	put_row(f, 1, "BOLDOK0001", T0_S - 80 * H);
	put_row(f, 1, "BOLDOOS001", T0_S - 80 * H);
	put_row(f, 1, "BOLDGONE01", T0_S - 80 * H);
	put_row(f, 1, "BSTALEBAD1", T0_S - 25 * H);
	put_product(f, "BFRESH0001", 2000);
	put_product(f, "BSTALEOK01", 2400);
	put_product(f, "BOLDOK0001", 3000);
	put_product(f, "BOLDOOS001", -1);   /* no longer offered */
	put_product(f, "BSTALEBAD1", 4500); /* no longer below its average */

	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	for (i = 0; i < fake_ncalls(f); i++)
		assert_string_equal(fake_call(f, i)->kind, "refresh");
	assert_int_equal(fake_product_asks(f, "BFRESH0001"), 0);
	assert_int_equal(fake_product_asks(f, "BSTALEOK01"), 1);
	assert_int_equal(fake_product_asks(f, "BOLDOK0001"), 1);
	assert_int_equal(fake_product_asks(f, "BOLDOOS001"), 1); /* refreshed, then dropped */
	assert_int_equal(fake_product_asks(f, "BOLDGONE01"), 1);
	assert_int_equal(fake_product_asks(f, "BSTALEBAD1"), 1);
	assert_false(fake_has_row(f, "deals", 1, "BOLDOOS001"));
	assert_false(fake_has_row(f, "deals", 1, "BOLDGONE01"));
	assert_int_equal(fake_nrows(f, "deals"), 4);
	/* A stable deal the feeds stopped returning is kept, and refreshed. */
	assert_int_equal(cell_int(f, "BOLDOK0001", "checked_at"), T0_S);
	assert_int_equal(cell_int(f, "BOLDOK0001", "used_cents"), 3000);
	assert_int_equal(cell_int(f, "BOLDOK0001", "current_cents"), 3000);
	assert_int_equal(cell_int(f, "BOLDOK0001", "drop_pct"), 25);
	assert_int_equal(cell_int(f, "BOLDOK0001", "last_seen"), T0_S - 80 * H); /* not seen by a feed */
	assert_int_equal(cell_int(f, "BSTALEOK01", "checked_at"), T0_S);
	/* Not qualifying but young: kept, refreshed_at set, checked_at not. */
	assert_int_equal(cell_int(f, "BSTALEBAD1", "checked_at"), T0_S - 25 * H);
	assert_int_equal(cell_int(f, "BSTALEBAD1", "refreshed_at"), T0_S);
	assert_int_equal(cell_int(f, "BSTALEBAD1", "used_cents"), 4500);
	assert_int_equal(cell_int(f, "BFRESH0001", "refreshed_at"), CELL_NULL);
	assert_int_equal(fake_log_count(f, "2 refreshed, 2 dropped, 1 kept"), 1);

	/* At once again: nothing is due (no refresh loop on waiting rows). */
	i = fake_ncalls(f);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_int_equal(fake_ncalls(f), i);

	/* Two days later the waiting row is past max_age_h: refreshed, dropped. */
	fake_advance(f, 48 * H);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_int_equal(fake_product_asks(f, "BSTALEBAD1"), 2);
	assert_false(fake_has_row(f, "deals", 1, "BSTALEBAD1"));
	assert_int_equal(fake_product_asks(f, "BFRESH0001"), 1);
	assert_int_equal(cell_int(f, "BFRESH0001", "checked_at"), T0_S + 48 * H);
	assert_int_equal(fake_nrows(f, "deals"), 3);
	inst_stop(&in);
	fake_free(f);
}

static void test_keepa_error_drops_nothing(void **st)
{
	struct inst in;
	struct fake *f = world(&in);
	char *err = NULL;

	(void)st;
	put_row(f, 1, "BOLDGONE01", T0_S - 80 * H);
	put_row(f, 1, "BOLDGONE02", T0_S - 90 * H);
	fake_keepa_fail_call(f, 1, TG_EKEEPA, "HTTP 500");
	assert_int_equal(inst_run(&in, NULL, &err), TG_EKEEPA);
	assert_non_null(strstr(err, "HTTP 500"));
	free(err);
	assert_int_equal(fake_nrows(f, "deals"), 2);
	assert_int_equal(fake_log_count(f, "run interrupted"), 1);
	inst_stop(&in);
	fake_free(f);
}

static void test_malformed_product(void **st)
{
	struct inst in;
	struct fake *f = world(&in);

	(void)st;
	put_row(f, 1, "BOLDBAD001", T0_S - 80 * H);
	put_row(f, 1, "BYOUNGBAD1", T0_S - 30 * H);
	fake_keepa_set_product(f, "BOLDBAD001", "{\"asin\":\"BOLDBAD001\",\"stats\":\"broken\"}");
	fake_keepa_set_product(f, "BYOUNGBAD1", "{\"asin\":\"BYOUNGBAD1\",\"stats\":{\"current\":[1,2]}}");
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_false(fake_has_row(f, "deals", 1, "BOLDBAD001"));
	assert_true(fake_has_row(f, "deals", 1, "BYOUNGBAD1"));
	assert_int_equal(cell_int(f, "BYOUNGBAD1", "refreshed_at"), T0_S);
	assert_int_equal(cell_int(f, "BYOUNGBAD1", "used_cents"), CELL_NULL);
	inst_stop(&in);
	fake_free(f);
}

static void test_batches_by_domain_and_limit(void **st)
{
	struct inst in;
	struct fake *f;
	char asin[16];
	int i;

	(void)st;
	f = fake_new(tollgate_plugin_v1());
	fake_set_now(f, T0_S);
	fake_set_int(f, "max_rows_per_run", 5);
	fake_set_budget(f, 2);
	in = inst_start(f, tollgate_plugin_v1());
	for (i = 0; i < 8; i++) {
		asin_of(asin, i);
		put_row(f, i < 2 ? 3 : 1, asin, T0_S - (38 - i) * H);
		put_product(f, asin, 2000);
	}
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	/* The five oldest (B0..B4), one domain per call, two per call:
	 * domain 1 B2+B3 and B4, domain 3 B0+B1. */
	assert_int_equal(fake_count_calls(f, "/product"), 3);
	for (i = 0; i < 8; i++) {
		asin_of(asin, i);
		assert_int_equal(fake_product_asks(f, asin), i < 5 ? 1 : 0);
	}
	assert_int_equal(fake_call(f, 0)->units, 2);
	assert_int_equal(fake_progress_done(f), 5);
	assert_int_equal(fake_progress_total(f), 5);
	inst_stop(&in);
	fake_free(f);
}

static void test_init_rejects_ages(void **st)
{
	struct fake *f = fake_new(tollgate_plugin_v1());
	void *state = NULL;
	char *err = NULL;

	(void)st;
	fake_set_int(f, "refresh_after_h", 48);
	fake_set_int(f, "max_age_h", 24);
	assert_int_equal(tollgate_plugin_v1()->init(fake_task(f), fake_services(f), &state, &err), TG_EINVAL);
	assert_non_null(strstr(err, "max_age_h"));
	free(err);
	fake_free(f);
}

/* A row of a price type Keepa serves only with offers (18, buy box). */
static void put_row_pt(struct fake *f, const char *asin, int pt, int64_t checked_at)
{
	struct tg_value v[] = {
	    TG_VINT("domain", 1),         TG_VTEXT("asin", asin),         TG_VINT("price_type", pt),
	    TG_VINT("date_range", 1),     TG_VINT("current_cents", 2500), TG_VINT("avg_cents", 4000),
	    TG_VINT("checked_at", checked_at), TG_VTEXT("written_by", "backfiller"),
	};

	fake_put_row(f, "deals", v, sizeof(v) / sizeof(v[0]));
}

/* A product whose stats.current[18] is buybox (-1: what Keepa answers
 * without offers). */
static void put_product_buybox(struct fake *f, const char *asin, int64_t buybox)
{
	char *text = NULL;

	assert_true(asprintf(&text,
	                     "{\"asin\":\"%s\",\"stats\":{\"current\":[-1,3000,2500,70000,-1,-1,-1,-1,-1,-1,-1,"
	                     "7,12,-1,-1,-1,-1,-1,%lld]}}",
	                     asin, (long long)buybox) > 0);
	fake_keepa_set_product(f, asin, text);
	free(text);
}

/* Offers-only price types are refreshed with offers (at most 20 ASINs a
 * call) and judged by what that refresh says. */
static void test_offers_only_type_refreshed_with_offers(void **st)
{
	struct inst in;
	struct fake *f = world(&in);
	char asin[16];
	int i;

	(void)st;
	fake_set_budget(f, 1000); /* 83 ASINs' worth at 12 a piece: the cap of 20 decides */
	for (i = 0; i < 25; i++) {
		asin_of(asin, i);
		put_row_pt(f, asin, 18, T0_S - 30 * H);
		put_product_buybox(f, asin, 2200);
	}
	put_row(f, 1, "BUSED00001", T0_S - 30 * H);
	put_product(f, "BUSED00001", 2400);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	/* One light call for the used row, two offers calls (20 + 5). */
	assert_int_equal(fake_count_calls(f, "/product"), 3);
	for (i = 0; i < 3; i++) {
		const struct fake_call *c = fake_call(f, (size_t)i);

		if (!strcmp(c->kind, "product_offers"))
			assert_true(c->units == 2 * 20 || c->units == 2 * 5);
		else
			assert_string_equal(c->kind, "refresh");
	}
	asin_of(asin, 3);
	assert_int_equal(cell_int(f, asin, "checked_at"), T0_S);
	assert_int_equal(cell_int(f, asin, "current_cents"), 2200);
	assert_int_equal(fake_nrows(f, "deals"), 26);
	inst_stop(&in);
	fake_free(f);
}

/* With extra_offers = 0 an offers-only type reads -1: unknown, not "no
 * longer a deal". The row keeps its price and stays until no feed has seen
 * it for max_age_h. */
static void test_offers_only_type_not_judged_without_offers(void **st)
{
	struct fake *f = fake_new(tollgate_plugin_v1());
	struct inst in;

	(void)st;
	fake_set_now(f, T0_S);
	fake_set_int(f, "extra_offers", 0);
	in = inst_start(f, tollgate_plugin_v1());
	put_row_pt(f, "BBUYBOX001", 18, T0_S - 30 * H);
	put_row_pt(f, "BBUYBOX002", 18, T0_S - 80 * H);
	put_product_buybox(f, "BBUYBOX001", -1);
	put_product_buybox(f, "BBUYBOX002", -1);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_string_equal(fake_call(f, 0)->kind, "refresh");
	assert_true(fake_has_row(f, "deals", 1, "BBUYBOX001"));
	assert_int_equal(cell_int(f, "BBUYBOX001", "current_cents"), 2500);
	assert_int_equal(cell_int(f, "BBUYBOX001", "refreshed_at"), T0_S);
	assert_int_equal(cell_int(f, "BBUYBOX001", "checked_at"), T0_S - 30 * H);
	assert_int_equal(cell_int(f, "BBUYBOX001", "sales_rank"), 70000);
	assert_false(fake_has_row(f, "deals", 1, "BBUYBOX002"));
	inst_stop(&in);
	fake_free(f);
}

/* Rows refreshed lately without qualifying are not due and do not take the
 * places of due rows (the selects' limits count due rows only). */
static void test_limit_counts_due_rows_only(void **st)
{
	struct fake *f = fake_new(tollgate_plugin_v1());
	struct inst in;
	char asin[16];
	int i;

	(void)st;
	fake_set_now(f, T0_S);
	fake_set_int(f, "max_rows_per_run", 5);
	in = inst_start(f, tollgate_plugin_v1());
	for (i = 0; i < 10; i++) {
		struct tg_value v[] = {TG_VINT("domain", 1), TG_VTEXT("asin", asin), TG_VINT("refreshed_at", T0_S - H)};

		asin_of(asin, i);
		put_row(f, 1, asin, T0_S - 40 * H); /* oldest, but refreshed an hour ago */
		fake_put_row(f, "deals", v, 3);
	}
	for (i = 10; i < 20; i++) {
		asin_of(asin, i);
		put_row(f, 1, asin, T0_S - 30 * H);
		put_product(f, asin, 2400);
	}
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_int_equal(fake_count_calls(f, "/product"), 1);
	assert_int_equal(fake_call(f, 0)->units, 5);
	assert_int_equal(fake_product_asks(f, "B000000000"), 0);
	assert_int_equal(fake_product_asks(f, "B000000010"), 1);
	inst_stop(&in);
	fake_free(f);
}

/* Every select a run makes is served by an index the janitor asked for
 * (ABI 1.3): past max_age_h by checked_at, stale by touched_at, and the
 * one-time look-up of rows without touched_at. */
static void test_selects_use_indexes(void **st)
{
	struct inst in;
	struct fake *f = world(&in);
	const char *last = NULL;
	char asin[16];

	(void)st;
	assert_true(fake_has_index(f, "deals", "checked_at"));
	assert_true(fake_has_index(f, "deals", "touched_at"));
	for (int i = 0; i < 6; i++) {
		asin_of(asin, i);
		put_row(f, 1, asin, T0_S - (i < 3 ? 30 : 80) * H);
		put_product(f, asin, 2400);
	}
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_int_equal(fake_product_asks(f, "B000000000"), 1);
	assert_int_equal(fake_product_asks(f, "B000000005"), 1);
	assert_int_equal(fake_unindexed_selects(f, &last), 0);
	(void)last;
	inst_stop(&in);
	fake_free(f);
}

/* Rows of an older version have no touched_at: the first run gives each the
 * later of checked_at and refreshed_at without a Keepa call, so a row
 * refreshed an hour ago is not refreshed again, and a stale one is. */
static void test_rows_without_touched_at_migrate(void **st)
{
	struct inst in;
	struct fake *f = world(&in);
	struct tg_value lately[] = {TG_VINT("domain", 1), TG_VTEXT("asin", "BLATELY001"),
	                            TG_VINT("refreshed_at", T0_S - H)};
	int64_t touched = 0;

	(void)st;
	put_row(f, 1, "BLATELY001", T0_S - 30 * H);
	fake_put_row(f, "deals", lately, 3);
	put_row(f, 1, "BSTALE0001", T0_S - 30 * H);
	put_row(f, 1, "BFRESH0001", T0_S - 2 * H);
	put_product(f, "BLATELY001", 2400);
	put_product(f, "BSTALE0001", 2400);
	put_product(f, "BFRESH0001", 2400);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_int_equal(fake_log_count(f, "3 rows written before touched_at existed"), 1);
	assert_int_equal(fake_product_asks(f, "BLATELY001"), 0);
	assert_int_equal(fake_product_asks(f, "BSTALE0001"), 1);
	assert_int_equal(fake_product_asks(f, "BFRESH0001"), 0);
	assert_int_equal(fake_cell_int(f, "deals", 1, "BLATELY001", "touched_at", &touched), 0);
	assert_int_equal(touched, T0_S - H);
	assert_int_equal(fake_cell_int(f, "deals", 1, "BFRESH0001", "touched_at", &touched), 0);
	assert_int_equal(touched, T0_S - 2 * H);
	assert_int_equal(cell_int(f, "BSTALE0001", "touched_at"), T0_S);
	/* Nothing is left to migrate: the next run writes no touched_at. */
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_int_equal(fake_log_count(f, "written before touched_at existed"), 1);
	inst_stop(&in);
	fake_free(f);
}

/* A row refreshed without qualifying is touched then: it waits
 * refresh_after_h from that refresh, not from when a feed last saw it. */
static void test_refresh_touches_the_row(void **st)
{
	struct inst in;
	struct fake *f = world(&in);

	(void)st;
	put_row(f, 1, "BSTALEBAD1", T0_S - 25 * H);
	put_product(f, "BSTALEBAD1", 4500); /* no longer below its average */
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_int_equal(fake_product_asks(f, "BSTALEBAD1"), 1);
	assert_int_equal(cell_int(f, "BSTALEBAD1", "touched_at"), T0_S);
	assert_int_equal(cell_int(f, "BSTALEBAD1", "checked_at"), T0_S - 25 * H);
	fake_advance(f, 23 * H);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_int_equal(fake_product_asks(f, "BSTALEBAD1"), 1);
	fake_advance(f, 2 * H);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_int_equal(fake_product_asks(f, "BSTALEBAD1"), 2);
	inst_stop(&in);
	fake_free(f);
}

/* On a host older than ABI 1.3, or a storage backend without indexes, the
 * janitor works without indexes (the older host: it says so once). */
static void host_without_indexes(bool old_host)
{
	struct fake *f = fake_new(tollgate_plugin_v1());
	struct inst in;

	fake_set_now(f, T0_S);
	if (old_host)
		fake_services_abi_1_2(f);
	else
		fake_index_unsupported(f);
	in = inst_start(f, tollgate_plugin_v1());
	assert_int_equal(fake_log_count(f, "predates ABI 1.3"), old_host ? 1 : 0);
	assert_false(fake_has_index(f, "deals", "touched_at"));
	put_row(f, 1, "BSTALEOK01", T0_S - 25 * H);
	put_product(f, "BSTALEOK01", 2400);
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	assert_int_equal(fake_product_asks(f, "BSTALEOK01"), 1);
	assert_int_equal(cell_int(f, "BSTALEOK01", "checked_at"), T0_S);
	inst_stop(&in);
	fake_free(f);
}

static void test_host_without_indexes(void **st)
{
	(void)st;
	host_without_indexes(true);
}

static void test_backend_without_indexes(void **st)
{
	(void)st;
	host_without_indexes(false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_refresh_before_drop), cmocka_unit_test(test_keepa_error_drops_nothing),
	    cmocka_unit_test(test_malformed_product),   cmocka_unit_test(test_batches_by_domain_and_limit),
	    cmocka_unit_test(test_init_rejects_ages),
	    cmocka_unit_test(test_offers_only_type_refreshed_with_offers),
	    cmocka_unit_test(test_offers_only_type_not_judged_without_offers),
	    cmocka_unit_test(test_limit_counts_due_rows_only),
	    cmocka_unit_test(test_selects_use_indexes),
	    cmocka_unit_test(test_rows_without_touched_at_migrate),
	    cmocka_unit_test(test_refresh_touches_the_row),
	    cmocka_unit_test(test_host_without_indexes),
	    cmocka_unit_test(test_backend_without_indexes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
