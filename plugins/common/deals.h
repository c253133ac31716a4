/*
 * deals.h - the one declaration of the `deals` table and the derivation of a
 * row from a Keepa Deal and its Product.
 *
 * Compiled into each shipped plugin (never a library of its own). Every value
 * is converted here, once, at the edge: prices stay integers in cents, Keepa
 * minutes become UTC Unix seconds, and a missing or negative Keepa value
 * becomes NULL, never text or a sentinel.
 */
#ifndef TG_PLUGINS_DEALS_H
#define TG_PLUGINS_DEALS_H

#include <stdbool.h>
#include <stdint.h>

#include <tollgate/tollgate.h>

struct cJSON;

/* The table every shipped plugin writes: key (domain, asin). */
extern const struct tg_table deals_table;

/* Declare deals_table and, on a host of ABI 1.3 or later, an index on each
 * of the NULL-terminated columns (the columns this plugin's selects range
 * over). An older host keeps the table unindexed: the selects stay right,
 * only slower on a big table, and the plugin says so once in the log; so
 * does a storage backend without indexes (TG_ENOTSUP, logged by the host). */
int deals_table_setup(struct tg_task *task, const struct tg_services *svc, const char *const *index_columns,
                      char **errmsg);

/* Column names, so no plugin spells one twice. */
#define COL_DOMAIN "domain"
#define COL_ASIN "asin"
#define COL_TITLE "title"
#define COL_ROOT_CATEGORY "root_category"
#define COL_PRICE_TYPE "price_type"
#define COL_DATE_RANGE "date_range"
#define COL_CURRENT "current_cents"
#define COL_AVG "avg_cents"
#define COL_DROP_PCT "drop_pct"
#define COL_AMAZON "amazon_cents"
#define COL_NEW "new_cents"
#define COL_USED "used_cents"
#define COL_RANK "sales_rank"
#define COL_RANK_AVG90 "sales_rank_avg90"
#define COL_RANK_DROPS30 "sales_rank_drops30"
#define COL_RANK_DROPS90 "sales_rank_drops90"
#define COL_OFFERS_NEW "offers_new"
#define COL_OFFERS_USED "offers_used"
#define COL_AMAZON_SELLS "amazon_sells"
#define COL_CREATED "deal_created_at"
#define COL_UPDATED "deal_updated_at"
#define COL_FIRST_SEEN "first_seen"
#define COL_LAST_SEEN "last_seen"
#define COL_CHECKED "checked_at"
#define COL_REFRESHED "refreshed_at"
#define COL_WRITTEN_BY "written_by"
#define COL_PROFIT "est_profit_cents"
#define COL_PRODUCT_AT "product_at"   /* when the product columns were last bought */
#define COL_PRODUCT_DUE "product_due" /* 1: the row waits for a /product purchase */
/* When a feed or the janitor last looked at the row: the later of
 * checked_at and refreshed_at, kept as a column of its own so the janitor's
 * "due for a refresh" is one indexed range (janitor.c). */
#define COL_TOUCHED "touched_at"

/* Keepa time: minutes since 2011-01-01 00:00 UTC. */
#define KEEPA_EPOCH_OFFSET_MIN 21564000LL

/* Keepa minutes to Unix seconds (UTC); the documented
 * unix_ms = (km + 21564000) * 60000, divided by 1000. */
static inline int64_t keepa_minutes_to_unix_s(int64_t km)
{
	return (km + KEEPA_EPOCH_OFFSET_MIN) * 60;
}

/* Unix seconds to Keepa minutes (rounded down). */
static inline int64_t unix_s_to_keepa_minutes(int64_t s)
{
	return (s >= 0 ? s / 60 : -((-s + 59) / 60)) - KEEPA_EPOCH_OFFSET_MIN;
}

/* The fees of the profit estimate (settings referral_pct,
 * fulfilment_fee_cents, prep_fee_cents, shipping_cents). */
struct fees {
	double referral_pct;
	int64_t fulfilment_cents;
	int64_t prep_cents;
	int64_t shipping_cents;
};

/*
 * The estimated profit of buying at buy_cents and selling again at
 * sell_cents (the deal's average price for its date range, i.e. the price the
 * item normally sells at):
 *
 *   profit = sell - buy - round(sell * referral_pct / 100)
 *                 - fulfilment - prep - shipping
 *
 * Returns false (profit unknown, stored as NULL) when either price is
 * missing (negative).
 */
bool profit_estimate(const struct fees *fees, int64_t buy_cents, int64_t sell_cents, int64_t *profit);

/* True when Keepa price type pt is a price in cents (not a sales rank, an
 * offer count, a rating or a review count), so a profit makes sense. */
bool price_type_is_price(int pt);

/* What the derivation needs besides the JSON. */
struct deal_ctx {
	int64_t domain;
	int price_type;
	int date_range;
	int64_t now_s;          /* last_seen / checked_at / first_seen */
	const char *written_by; /* the plugin's name */
	const struct fees *fees;
};

/* Room for every column. */
#define DEAL_ROW_MAX 32

/* One row ready for upsert(); text values point into the JSON (and the
 * written_by string), so the row lives no longer than they do. */
struct deal_row {
	struct tg_value v[DEAL_ROW_MAX];
	size_t n;
	/* Keepa numbers that were there but are no int64 integer (a root
	 * category beyond 2^63-1): malformed, left out of the row, counted and
	 * warned about by the caller. refused_name is the first one's name. */
	int refused;
	const char *refused_name;
};

/* Append one value (ignored when the row is full: DEAL_ROW_MAX has room for
 * every column). */
void deal_row_add(struct deal_row *row, struct tg_value v);

/*
 * The row that stores a bought product on its own: the product columns,
 * product_at = ctx->now_s and product_due = 0. A product that was not
 * returned or has no usable stats still ends the row's wait (product_at,
 * product_due), so an unknown ASIN is not bought again and again; *product_ok
 * tells which it was.
 */
void deal_row_product(struct deal_row *row, const struct deal_ctx *ctx, const char *asin,
                      const struct cJSON *product, bool *product_ok);

/* A valid ASIN of a deal or product: a non-empty string of at most 20
 * letters and digits. Returns NULL otherwise. */
const char *json_asin(const struct cJSON *obj);

/*
 * Build the row for deal (a /deal `dr` element) and its product (a /product
 * `products` element, or NULL when Keepa did not return it). The deal's own
 * columns are always named; the product's columns only when product is a
 * usable object (an object with a `stats` object): otherwise they are left
 * out, so the upsert keeps what an earlier fetch stored; without a product,
 * the ones the page carries (deal_carries_product_current) come from the
 * page. first_seen is
 * named only when with_first_seen is true (the row does not exist yet).
 * Returns 0, or TG_EINVAL when the deal has no valid ASIN. *product_ok
 * tells whether the product's columns were included.
 */
int deal_row_build(struct deal_row *row, const struct deal_ctx *ctx, const struct cJSON *deal,
                   const struct cJSON *product, bool with_first_seen, bool *product_ok);

/*
 * The columns a refresh of a stored row updates from a product alone
 * (janitor): the product columns, the current value of the row's price type
 * and, from the stored average, the drop and the profit, and refreshed_at.
 * checked_at is named only when mark_checked is true. Returns 0, or TG_EINVAL when the
 * product is unusable.
 */
int deal_row_refresh(struct deal_row *row, const struct deal_ctx *ctx, const char *asin, int64_t avg_cents,
                     const struct cJSON *product, bool mark_checked);

/* The product columns alone and refreshed_at (janitor, for a price type the
 * refresh could not read): the row's price, drop and checked_at stay. */
void deal_row_refresh_product(struct deal_row *row, const struct deal_ctx *ctx, const char *asin,
                              const struct cJSON *product);

/* True when the deal's `current` holds every price type the product
 * columns read (up to the used-offer count): deal_row_build then writes
 * those columns from the page itself when it has no product, so a changed
 * deal needs no /product for them (only the sales-rank drops are the
 * product's alone). */
bool deal_carries_product_current(const struct cJSON *deal);

/* The current value of price type pt in product.stats.current, or -1. */
int64_t product_current(const struct cJSON *product, int pt);

#endif
