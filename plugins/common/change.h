/*
 * change.h - pay only for change: a /deal page already carries most of a
 * row, so the feeds write what the page carries from the page itself and buy
 * /product only for deals that are new, whose deal changed since the product
 * data was bought (lastUpdate differs from the stored deal_updated_at) and
 * whose page does not carry the product's current values (Keepa's deal
 * `current` covers every price type; product_on_change buys anyway), or
 * whose product data is older than product_max_age_h.
 *
 * A deal that needs a product is marked product_due = 1 in the same write;
 * the purchase clears it (product_at = now). The table itself is thus the
 * queue of purchases: it survives restarts, and whoever buys first (the
 * upserter for its changes, the backfiller after its pages) leaves nothing
 * for the other to buy again.
 */
#ifndef TG_PLUGINS_CHANGE_H
#define TG_PLUGINS_CHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cJSON;
struct pctx;
struct selection;

/* A growable list of ASINs (pointers into JSON the caller keeps alive). */
struct asin_list {
	const char **v;
	size_t n, cap;
};

int asin_list_add(struct asin_list *l, const char *asin);
void asin_list_release(struct asin_list *l);

/* What the stored row says about a deal. */
struct stored_deal {
	bool exists;
	int64_t updated_at; /* deal_updated_at, -1 when NULL */
	int64_t product_at; /* -1 when NULL (never bought) */
	int64_t product_due;
};

/* Read the stored row of (domain, asin); a missing row is not an error. */
int stored_deal_get(struct pctx *p, int64_t domain, const char *asin, struct stored_deal *st);

/* True when the deal needs /product (see above); with policy "legacy"
 * always. now is Unix seconds. */
bool product_needed(const struct pctx *p, const struct stored_deal *st, const struct cJSON *deal, int64_t now);

/* The page shows the deal with a lastUpdate older than the row's: it comes
 * from an older cached result, and writing it would lose the newer data. */
bool deal_older_than_row(const struct stored_deal *st, const struct cJSON *deal);

/* True when the page's deal differs from the stored row (new, or another
 * lastUpdate): a change worth counting. */
bool deal_changed(const struct stored_deal *st, const struct cJSON *deal);

/*
 * Write deals[0..n) from the page alone, inside the caller's transaction:
 * the deal columns of every deal with a valid ASIN, product_due = 1 for the
 * ones that need a product (their ASINs are appended to *due when due is
 * not NULL). *changed (when not NULL) counts the deals that were new or
 * changed. A deal older than its row (deal_older_than_row) is left as the
 * row has it, and counted in p->counts.deals_older.
 */
int page_store(struct pctx *p, const struct selection *sel, struct cJSON *const *deals, size_t n, int64_t now,
               struct asin_list *due, int64_t *changed, char **errmsg);

/*
 * page_store() and the task's state key = value in one transaction of its
 * own: the rows and the checkpoint (or watermark) that covers them commit
 * together or not at all. n may be 0 (the state alone).
 */
int page_store_commit(struct pctx *p, const struct selection *sel, struct cJSON *const *deals, size_t n,
                      int64_t now, struct asin_list *due, int64_t *changed, const char *key, const char *value,
                      char **errmsg);

/*
 * Buy the products of asins[0..n) of domain in batches (product_batch_size)
 * and write each batch's product columns in one transaction (product_at =
 * now, product_due = 0), so a failure loses at most the batch in flight.
 */
int products_buy(struct pctx *p, int64_t domain, const char *const *asins, size_t n, char **errmsg);

/* Buy the products of every row of domain marked product_due, batch by
 * batch, until none is left; *bought counts the ASINs asked. */
int products_buy_due(struct pctx *p, int64_t domain, int64_t *bought, char **errmsg);

#endif
