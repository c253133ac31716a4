/*
 * fetch.h - the Keepa calls of the deal pipeline: one /deal page, and the
 * products of a list of ASINs in /product batches that split themselves when
 * the scheduler calls one oversize.
 */
#ifndef TG_PLUGINS_FETCH_H
#define TG_PLUGINS_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "deals.h"

struct cJSON;
struct pctx;
struct selection;

/*
 * Fetch page `page` of the selection (kind "deal", 1 page). On 0, *resp
 * owns the answer and *dr points at its `deals.dr` array (possibly empty);
 * *expected is the number of deals the answer announces
 * (selection_expected()) or -1. An answer without
 * a `deals.dr` array is an error (TG_ENETWORK), never an empty page.
 */
int deal_page_fetch(struct pctx *p, const struct selection *sel, int page, struct cJSON **resp,
                    struct cJSON **dr, int64_t *expected, char **errmsg);

struct product_ref {
	const char *asin;
	const struct cJSON *product;
};

/* The products of one or more /product answers, by ASIN. */
struct product_set {
	struct cJSON **answers;
	size_t nanswers;
	struct product_ref *refs; /* sorted by ASIN after products_fetch() */
	size_t nrefs, cap;
	int64_t malformed; /* products that were not objects with an ASIN */
};

/*
 * Fetch the products of asins[0..n) of `domain` with p->popts (kind, stats,
 * history, offers), into set (initialized to zeros by the caller, released
 * with product_set_release()). Duplicated ASINs are asked once. Batches of
 * at most product_batch_size() ASINs; a batch the scheduler calls oversize
 * is halved until it fits (one ASIN that is still oversize is an error).
 * An answer without a `products` array is an error.
 */
int products_fetch(struct pctx *p, int64_t domain, const char *const *asins, size_t n,
                   struct product_set *set, char **errmsg);

/* The product of asin in set, or NULL. */
const struct cJSON *product_set_find(const struct product_set *set, const char *asin);

void product_set_release(struct product_set *set);

/*
 * The pipeline's unit of work: fetch the products of deals[0..n) (skipping,
 * logging and counting deals without a valid ASIN), then in ONE transaction
 * upsert their rows (first_seen only for rows that did not exist) and set
 * the checkpoint state_key = state_value (when state_key is not NULL), and
 * commit. On error nothing of the chunk is committed.
 */
int chunk_commit(struct pctx *p, const struct selection *sel, struct cJSON *const *deals, size_t n,
                 const char *state_key, const char *state_value, char **errmsg);

/* The derivation context of the selection's deals, written at now. */
struct deal_ctx deal_ctx_of(const struct pctx *p, const struct selection *sel, int64_t now);

/* Upsert one row built from deal and product (NULL: not returned) inside
 * the caller's transaction; counts it. */
int deal_store(struct pctx *p, const struct selection *sel, const struct cJSON *deal,
               const struct cJSON *product, int64_t now);

#endif
