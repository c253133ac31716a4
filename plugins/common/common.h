/*
 * common.h - what the shipped plugins share: the per-task context, the
 * settings and cost declarations they have in common, error messages, and
 * the guarded Keepa call.
 *
 * Compiled into each plugin; nothing here is exported (the plugins are built
 * with -fvisibility=hidden).
 */
#ifndef TG_PLUGINS_COMMON_H
#define TG_PLUGINS_COMMON_H

#include <stdbool.h>
#include <stdint.h>

#include <tollgate/tollgate.h>

#include "deals.h"

struct cJSON;

/* Keepa's /deal limits. */
#define DEAL_PAGE_SIZE 150
#define DEAL_MAX 10000
#define DEAL_MAX_PAGES ((DEAL_MAX + DEAL_PAGE_SIZE - 1) / DEAL_PAGE_SIZE) /* 67 */
/* Keepa's /product limit. */
#define PRODUCT_MAX_ASINS 100

/* The cost model kinds (declared in every descriptor that uses them). */
#define KIND_DEAL "deal"
#define KIND_PRODUCT "product"
#define KIND_PRODUCT_OFFERS "product_offers"
#define KIND_REFRESH "refresh"

#define COST_DEAL                                                                                            \
	{                                                                                                    \
		KIND_DEAL, "page", 0, 5, "/deal: one page of up to 150 deals"                                \
	}
#define COST_PRODUCT                                                                                         \
	{                                                                                                    \
		KIND_PRODUCT, "asin", 0, 1, "/product without offers: 1 per ASIN (stats, history free)"      \
	}
#define COST_PRODUCT_OFFERS                                                                                  \
	{                                                                                                    \
		KIND_PRODUCT_OFFERS, "offer_page", 0, 6,                                                     \
		    "/product with offers=N: 6 per page of 10 offers, ceil(N/10) pages per ASIN"             \
	}
#define COST_REFRESH                                                                                         \
	{                                                                                                    \
		KIND_REFRESH, "asin", 0, 1, "/product, light (stats only): 1 per ASIN"                       \
	}

/* Settings shared by the deal-reading plugins. */
#define SETTING_QUERY                                                                                        \
	{                                                                                                    \
		"query", TG_SETTING_GROUP, NULL,                                                             \
		    "the /deal selection, as Keepa names it (domainId, priceTypes, dateRange, ranges ...)"   \
	}
#define SETTINGS_PRODUCT                                                                                     \
	{"stats_days", TG_SETTING_INT, "90", "/product stats window in days (free)"},                        \
	    {"history", TG_SETTING_BOOL, "false", "/product history (csv arrays; free but large)"},          \
	{                                                                                                    \
		"offers", TG_SETTING_INT, "0", "/product offers=N (0 none, else 20..100; costs 6 per 10)"    \
	}
#define SETTINGS_FEES                                                                                        \
	{"referral_pct", TG_SETTING_REAL, "15", "profit estimate: referral fee, percent of the sell price"}, \
	    {"fulfilment_fee_cents", TG_SETTING_INT, "350", "profit estimate: fulfilment fee per item"},     \
	    {"prep_fee_cents", TG_SETTING_INT, "0", "profit estimate: preparation cost per item"},           \
	{                                                                                                    \
		"shipping_cents", TG_SETTING_INT, "0", "profit estimate: inbound shipping per item"          \
	}

/* Settings of the pay-for-change policy (backfiller and upserter). */
#define SETTINGS_CHANGE                                                                                      \
	{"product_max_age_h", TG_SETTING_INT, "24",                                                          \
	 "buy /product again for an unchanged deal when its product data is older than this (-1 never)"},  \
	{"product_on_change", TG_SETTING_BOOL, "false",                                                      \
	 "buy /product for every changed deal, also when its page carries the product's current values"},   \
	{                                                                                                    \
		"policy", TG_SETTING_STRING, "change",                                                       \
		    "change: buy /product only for new or changed deals; legacy: tollgate 0.1 (for benchmarks)" \
	}

/* How many ASINs one /product call may carry, and what each costs. */
struct product_opts {
	const char *kind;        /* KIND_PRODUCT, KIND_PRODUCT_OFFERS or KIND_REFRESH */
	int64_t units_per_asin;  /* units of kind per ASIN */
	int64_t tokens_per_asin; /* the declared estimate, to size batches */
	int64_t stats_days;      /* 0: no stats parameter */
	bool history;
	int64_t offers; /* 0: none */
};

/* What a run did, logged at its end. */
struct run_counts {
	int64_t written;            /* rows upserted */
	int64_t inserted;           /* of which new rows */
	int64_t deals_skipped;      /* deals without a valid ASIN or not objects */
	int64_t products_missing;   /* ASINs /product did not return */
	int64_t products_malformed; /* products without usable stats */
	int64_t values_refused;     /* numbers there but no int64 integer (deal_row.refused) */
	int64_t keepa_calls;
	int64_t products_bought;   /* ASINs asked from /product */
	int64_t products_skipped;  /* deals written from the page alone */
	int64_t deals_older;       /* deals a page showed older than their row: not written back */
};

/* One task's context. */
struct pctx {
	struct tg_task *task;
	const struct tg_services *svc;
	const char *name; /* the plugin's name, stored in written_by */
	struct product_opts popts;
	struct fees fees;
	struct run_counts counts;
	int64_t product_max_age_s; /* < 0: product data never expires */
	bool legacy;               /* policy "legacy": buy every deal's product, as 0.1 did */
	bool product_on_change;    /* a changed deal buys its product even when its page carries the values */
};

/* Set *errmsg (when errmsg is not NULL) to a malloc()ed message; returns code. */
int err_set(char **errmsg, int code, const char *fmt, ...) TG_PRINTF(3, 4);
/* A failed storage call's message: "<what>: <the host's reason>" when the
 * host has services->last_error (ABI 1.1), else "<what> (<code>)". */
int storage_err(const struct pctx *p, char **errmsg, int code, const char *fmt, ...) TG_PRINTF(4, 5);

/* Check that the host's services table has every member the plugins use
 * (all of ABI 1.0); TG_ENOTSUP otherwise. */
int services_check(const struct tg_services *svc, char **errmsg);

/* Read the fee settings. */
int fees_load(struct pctx *p, struct fees *fees, char **errmsg);

/* Read the product options (stats_days, history, offers) and choose the
 * kind: KIND_PRODUCT, or KIND_PRODUCT_OFFERS when offers > 0. */
int product_opts_load(struct pctx *p, char **errmsg);

/* Read product_max_age_h, product_on_change and policy (SETTINGS_CHANGE). */
int change_opts_load(struct pctx *p, char **errmsg);

/* Read an integer setting that must lie in [min, max]. */
int setting_int_range(struct pctx *p, const char *name, int64_t min, int64_t max, int64_t *out,
                      char **errmsg);

/* Room for more elements: realloc(items) to twice *cap elements of elem
 * bytes (first when *cap is 0). Returns the new array and updates *cap, or
 * NULL (items and *cap untouched) when out of memory or the size would
 * overflow. The one growth rule of the plugins' arrays. */
void *array_grow(void *items, size_t *cap, size_t elem, size_t first);

/* Keeps an answer for the rest of a run: appends resp to (*pages, *n),
 * taking it (it is freed when it cannot be kept). TG_OK or TG_ENOMEM with
 * errmsg set. */
int page_keep(struct cJSON ***pages, size_t *n, struct cJSON *resp, char **errmsg);

/* How many ASINs one /product call should carry: the scheduler's budget
 * hint over the declared cost per ASIN, within 1 .. 100. */
size_t product_batch_size(struct pctx *p);

/* services->keepa_call, checking the stop flag first and turning the host's
 * message into our own malloc()ed one. Returns 0 or the host's code. */
int keepa_call(struct pctx *p, const struct tg_keepa_request *req, struct cJSON **resp, char **errmsg);

/* Log helpers. */
#define plog(p, level, ...) ((p)->svc->log((p)->task, (level), __VA_ARGS__))

/* The current time in Unix seconds. */
int64_t now_s(struct pctx *p);

#endif
