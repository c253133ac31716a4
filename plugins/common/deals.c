/*
 * deals.c - the `deals` table and the derivation of its rows.
 */
#include "deals.h"

#include <ctype.h>
#include <math.h>
#include <string.h>

#include "json_util.h"

static const struct tg_column deals_columns[] = {
    {COL_DOMAIN, TG_INT, true},         {COL_ASIN, TG_TEXT, true},        {COL_TITLE, TG_TEXT, false},
    {COL_ROOT_CATEGORY, TG_INT, false}, {COL_PRICE_TYPE, TG_INT, false},  {COL_DATE_RANGE, TG_INT, false},
    {COL_CURRENT, TG_INT, false},       {COL_AVG, TG_INT, false},         {COL_DROP_PCT, TG_INT, false},
    {COL_AMAZON, TG_INT, false},        {COL_NEW, TG_INT, false},         {COL_USED, TG_INT, false},
    {COL_RANK, TG_INT, false},          {COL_RANK_AVG90, TG_INT, false},  {COL_RANK_DROPS30, TG_INT, false},
    {COL_RANK_DROPS90, TG_INT, false},  {COL_OFFERS_NEW, TG_INT, false},  {COL_OFFERS_USED, TG_INT, false},
    {COL_AMAZON_SELLS, TG_INT, false},  {COL_CREATED, TG_INT, false},     {COL_UPDATED, TG_INT, false},
    {COL_FIRST_SEEN, TG_INT, false},    {COL_LAST_SEEN, TG_INT, false},   {COL_CHECKED, TG_INT, false},
    {COL_REFRESHED, TG_INT, false},     {COL_WRITTEN_BY, TG_TEXT, false}, {COL_PROFIT, TG_INT, false},
    {COL_PRODUCT_AT, TG_INT, false},    {COL_PRODUCT_DUE, TG_INT, false}, {COL_TOUCHED, TG_INT, false},
};

const struct tg_table deals_table = {
    .name = "deals",
    .columns = deals_columns,
    .ncolumns = sizeof(deals_columns) / sizeof(deals_columns[0]),
};

int deals_table_setup(struct tg_task *task, const struct tg_services *svc, const char *const *index_columns,
                      char **errmsg)
{
	int rc = svc->table_declare(task, &deals_table, errmsg);

	if (rc || !index_columns[0])
		return rc;
	if (!TG_SERVICES_HAS(svc, table_index)) {
		svc->log(task, TG_LOG_INFO,
		         "the host predates ABI 1.3: table %s keeps no index on %s (selects read the whole table)",
		         deals_table.name, index_columns[0]);
		return TG_OK;
	}
	for (const char *const *c = index_columns; *c && !rc; c++) {
		rc = svc->table_index(task, deals_table.name, *c, errmsg);
		/* A backend without indexes is slower, not wrong: the host has
		 * logged why, and the selects still read the right rows. */
		if (rc == TG_ENOTSUP) {
			if (errmsg) {
				svc->free(*errmsg);
				*errmsg = NULL;
			}
			rc = TG_OK;
		}
	}
	return rc;
}

/* Keepa's product csv/stats indices used here. */
enum { KT_AMAZON = 0, KT_NEW = 1, KT_USED = 2, KT_SALES = 3, KT_COUNT_NEW = 11, KT_COUNT_USED = 12 };

bool profit_estimate(const struct fees *fees, int64_t buy_cents, int64_t sell_cents, int64_t *profit)
{
	int64_t referral;

	if (buy_cents < 0 || sell_cents < 0)
		return false;
	referral = (int64_t)llround((double)sell_cents * fees->referral_pct / 100.0);
	*profit = sell_cents - buy_cents - referral - fees->fulfilment_cents - fees->prep_cents -
	          fees->shipping_cents;
	return true;
}

bool price_type_is_price(int pt)
{
	/* 3 sales rank, 11/12 offer counts, 15 extra info updates, 16 rating,
	 * 17 review count: not prices. */
	return pt >= 0 && pt != 3 && pt != 11 && pt != 12 && pt != 15 && pt != 16 && pt != 17;
}

const char *json_asin(const cJSON *obj)
{
	const char *s = json_get_string(obj, "asin");
	size_t i;

	if (!s || !*s)
		return NULL;
	for (i = 0; s[i]; i++)
		if (i >= 20 || !isalnum((unsigned char)s[i]))
			return NULL;
	return s;
}

static void row_add(struct deal_row *row, struct tg_value v)
{
	if (row->n < DEAL_ROW_MAX)
		row->v[row->n++] = v;
}

/* The integer member name of obj; a number that is there but no int64
 * integer is counted as refused. */
static bool row_int(struct deal_row *row, const cJSON *obj, const char *name, int64_t *out)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);

	if (json_as_int(item, out))
		return true;
	if (json_int_refused(item) && row->refused++ == 0)
		row->refused_name = name;
	return false;
}

void deal_row_add(struct deal_row *row, struct tg_value v)
{
	row_add(row, v);
}

/* A Keepa value where negative means "none": NULL then. */
static void row_add_nonneg(struct deal_row *row, const char *col, bool have, int64_t x)
{
	row_add(row, have && x >= 0 ? TG_VINT(col, x) : TG_VNULL(col));
}

static void row_add_time(struct deal_row *row, const char *col, const cJSON *obj, const char *name)
{
	int64_t km;

	if (json_get_int(obj, name, &km) && km > 0)
		row_add(row, TG_VINT(col, keepa_minutes_to_unix_s(km)));
	else
		row_add(row, TG_VNULL(col));
}

int64_t product_current(const cJSON *product, int pt)
{
	const cJSON *stats = cJSON_GetObjectItemCaseSensitive(product, "stats");
	int64_t x;

	if (!cJSON_IsObject(stats) ||
	    !json_index_int(cJSON_GetObjectItemCaseSensitive(stats, "current"), pt, &x))
		return -1;
	return x < 0 ? -1 : x;
}

/* The columns read from a `current` array (a product's stats.current or a
 * deal's current, the same numbers) and the sales rank's ninety-day average. */
static void row_add_currents(struct deal_row *row, const cJSON *cur, bool have_avg90, int64_t avg90)
{
	int64_t x;
	bool have;

	have = json_index_int(cur, KT_AMAZON, &x);
	row_add_nonneg(row, COL_AMAZON, have, x);
	/* -1 is Keepa's "no offer": Amazon does not sell it. */
	row_add(row, have ? TG_VINT(COL_AMAZON_SELLS, x >= 0 ? 1 : 0) : TG_VNULL(COL_AMAZON_SELLS));
	have = json_index_int(cur, KT_NEW, &x);
	row_add_nonneg(row, COL_NEW, have, x);
	have = json_index_int(cur, KT_USED, &x);
	row_add_nonneg(row, COL_USED, have, x);
	have = json_index_int(cur, KT_SALES, &x);
	row_add_nonneg(row, COL_RANK, have, x);
	row_add_nonneg(row, COL_RANK_AVG90, have_avg90, avg90);
	have = json_index_int(cur, KT_COUNT_NEW, &x);
	row_add_nonneg(row, COL_OFFERS_NEW, have, x);
	have = json_index_int(cur, KT_COUNT_USED, &x);
	row_add_nonneg(row, COL_OFFERS_USED, have, x);
}

/* The product's own columns; false (nothing added) when it is unusable. */
static bool row_add_product(struct deal_row *row, const cJSON *product)
{
	const cJSON *stats;
	int64_t x, avg90 = -1;
	bool have;

	if (!cJSON_IsObject(product))
		return false;
	stats = cJSON_GetObjectItemCaseSensitive(product, "stats");
	if (!cJSON_IsObject(stats))
		return false;
	have = json_index_int(cJSON_GetObjectItemCaseSensitive(stats, "avg90"), KT_SALES, &avg90);
	row_add_currents(row, cJSON_GetObjectItemCaseSensitive(stats, "current"), have, avg90);
	have = json_get_int(stats, "salesRankDrops30", &x);
	row_add_nonneg(row, COL_RANK_DROPS30, have, x);
	have = json_get_int(stats, "salesRankDrops90", &x);
	row_add_nonneg(row, COL_RANK_DROPS90, have, x);
	return true;
}

/* Keepa's date range 3, ninety days: the page's avg[3] is the product's
 * stats.avg90. */
enum { DR_NINETY_DAYS = 3 };

bool deal_carries_product_current(const cJSON *deal)
{
	const cJSON *cur = cJSON_GetObjectItemCaseSensitive(deal, "current");

	return cJSON_IsArray(cur) && cJSON_GetArraySize(cur) > KT_COUNT_USED;
}

/* The product columns a deal page carries itself: Keepa's deal object has
 * `current` for every price type (Amazon, New, Used, sales rank, the offer
 * counts) and `avg[dateRange][type]`, the same numbers as the product's
 * stats.current and stats.avg90. Only the sales-rank drops are the
 * product's alone. Nothing is added for a page whose `current` is too short
 * to hold them (the stored values stay). */
static void row_add_page_product(struct deal_row *row, const cJSON *deal)
{
	int64_t avg90 = -1;
	bool have;

	if (!deal_carries_product_current(deal))
		return;
	have = json_index2_int(cJSON_GetObjectItemCaseSensitive(deal, "avg"), DR_NINETY_DAYS, KT_SALES, &avg90);
	row_add_currents(row, cJSON_GetObjectItemCaseSensitive(deal, "current"), have, avg90);
}

static void row_add_profit(struct deal_row *row, const struct deal_ctx *ctx, int64_t cur, int64_t avg)
{
	int64_t profit;

	if (price_type_is_price(ctx->price_type) && profit_estimate(ctx->fees, cur, avg, &profit))
		row_add(row, TG_VINT(COL_PROFIT, profit));
	else
		row_add(row, TG_VNULL(COL_PROFIT));
}

int deal_row_build(struct deal_row *row, const struct deal_ctx *ctx, const cJSON *deal, const cJSON *product,
                   bool with_first_seen, bool *product_ok)
{
	const char *asin = json_asin(deal);
	const char *title;
	int64_t x, cur = -1, avg = -1;
	bool have;

	row->n = 0;
	row->refused = 0;
	row->refused_name = NULL;
	*product_ok = false;
	if (!asin)
		return TG_EINVAL;
	row_add(row, TG_VINT(COL_DOMAIN, ctx->domain));
	row_add(row, TG_VTEXT(COL_ASIN, asin));

	title = json_get_string(deal, "title");
	if (!title && cJSON_IsObject(product))
		title = json_get_string(product, "title");
	/* Named only when known, so a deal without a title keeps a stored one. */
	if (title)
		row_add(row, TG_VTEXT(COL_TITLE, title));
	have = row_int(row, deal, "rootCat", &x);
	if (!have && cJSON_IsObject(product))
		have = row_int(row, product, "rootCategory", &x);
	if (have && x >= 0)
		row_add(row, TG_VINT(COL_ROOT_CATEGORY, x));
	row_add(row, TG_VINT(COL_PRICE_TYPE, ctx->price_type));
	row_add(row, TG_VINT(COL_DATE_RANGE, ctx->date_range));

	if (!json_index_int(cJSON_GetObjectItemCaseSensitive(deal, "current"), ctx->price_type, &cur) ||
	    cur < 0)
		cur = -1;
	row_add_nonneg(row, COL_CURRENT, true, cur);
	if (!json_index2_int(cJSON_GetObjectItemCaseSensitive(deal, "avg"), ctx->date_range, ctx->price_type,
	                     &avg) ||
	    avg < 0)
		avg = -1;
	row_add_nonneg(row, COL_AVG, true, avg);
	/* A percent drop can legitimately be negative (a rise): keep it. */
	have = json_index2_int(cJSON_GetObjectItemCaseSensitive(deal, "deltaPercent"), ctx->date_range,
	                       ctx->price_type, &x);
	row_add(row, have ? TG_VINT(COL_DROP_PCT, x) : TG_VNULL(COL_DROP_PCT));
	row_add_profit(row, ctx, cur, avg);

	row_add_time(row, COL_CREATED, deal, "creationDate");
	row_add_time(row, COL_UPDATED, deal, "lastUpdate");
	if (with_first_seen)
		row_add(row, TG_VINT(COL_FIRST_SEEN, ctx->now_s));
	row_add(row, TG_VINT(COL_LAST_SEEN, ctx->now_s));
	row_add(row, TG_VINT(COL_CHECKED, ctx->now_s));
	row_add(row, TG_VINT(COL_TOUCHED, ctx->now_s));
	row_add(row, TG_VTEXT(COL_WRITTEN_BY, ctx->written_by));

	*product_ok = row_add_product(row, product);
	if (*product_ok) {
		row_add(row, TG_VINT(COL_PRODUCT_AT, ctx->now_s));
		row_add(row, TG_VINT(COL_PRODUCT_DUE, 0));
	} else {
		row_add_page_product(row, deal);
	}
	return TG_OK;
}

int deal_row_refresh(struct deal_row *row, const struct deal_ctx *ctx, const char *asin, int64_t avg_cents,
                     const cJSON *product, bool mark_checked)
{
	int64_t cur;

	row->n = 0;
	row_add(row, TG_VINT(COL_DOMAIN, ctx->domain));
	row_add(row, TG_VTEXT(COL_ASIN, asin));
	if (!row_add_product(row, product)) {
		row->n = 0;
		return TG_EINVAL;
	}
	cur = product_current(product, ctx->price_type);
	row_add_nonneg(row, COL_CURRENT, true, cur);
	if (cur >= 0 && avg_cents > 0)
		row_add(row, TG_VINT(COL_DROP_PCT, (avg_cents - cur) * 100 / avg_cents));
	else
		row_add(row, TG_VNULL(COL_DROP_PCT));
	row_add_profit(row, ctx, cur, avg_cents);
	if (mark_checked)
		row_add(row, TG_VINT(COL_CHECKED, ctx->now_s));
	row_add(row, TG_VINT(COL_REFRESHED, ctx->now_s));
	row_add(row, TG_VINT(COL_TOUCHED, ctx->now_s));
	row_add(row, TG_VTEXT(COL_WRITTEN_BY, ctx->written_by));
	return TG_OK;
}

void deal_row_product(struct deal_row *row, const struct deal_ctx *ctx, const char *asin, const cJSON *product,
                      bool *product_ok)
{
	row->n = 0;
	row_add(row, TG_VINT(COL_DOMAIN, ctx->domain));
	row_add(row, TG_VTEXT(COL_ASIN, asin));
	*product_ok = row_add_product(row, product);
	row_add(row, TG_VINT(COL_PRODUCT_AT, ctx->now_s));
	row_add(row, TG_VINT(COL_PRODUCT_DUE, 0));
}

void deal_row_refresh_product(struct deal_row *row, const struct deal_ctx *ctx, const char *asin,
                              const cJSON *product)
{
	row->n = 0;
	row_add(row, TG_VINT(COL_DOMAIN, ctx->domain));
	row_add(row, TG_VTEXT(COL_ASIN, asin));
	row_add_product(row, product);
	row_add(row, TG_VINT(COL_REFRESHED, ctx->now_s));
	row_add(row, TG_VINT(COL_TOUCHED, ctx->now_s));
	row_add(row, TG_VTEXT(COL_WRITTEN_BY, ctx->written_by));
}
