/*
 * sim_int.h - what the simulator's files share: the PRNG, the catalog and
 * its series arithmetic, the bucket, and the /deal query.
 */
#ifndef TG_HOST_SIM_INT_H
#define TG_HOST_SIM_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "sim.h"

/* unix_ms = (keepa_minute + SIM_KEEPA_EPOCH_MIN) * 60000 */
#define SIM_KEEPA_EPOCH_MIN 21564000LL
/* Length of csv, stats and deal per-type arrays: types 0..18. */
#define SIM_NTYPES 19
#define SIM_TYPE_BUYBOX 18
#define SIM_DAY 1440

/* ------------------------------------------------------------------ PRNG */

/* splitmix64: tiny, fast, and good enough for a synthetic catalog. */
struct sim_rng {
	uint64_t s;
};

static inline uint64_t sim_rng_next(struct sim_rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static inline double sim_rng_unit(struct sim_rng *r)
{
	return (double)(sim_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* Uniform in [lo, hi]. */
static inline int64_t sim_rng_range(struct sim_rng *r, int64_t lo, int64_t hi)
{
	return lo + (int64_t)(sim_rng_next(r) % (uint64_t)(hi - lo + 1));
}

/* --------------------------------------------------------------- catalog */

/* The series the catalog stores, and the csv type each one is. */
enum { SIM_S_AMAZON, SIM_S_NEW, SIM_S_USED, SIM_S_RANK, SIM_S_RATING, SIM_S_REVIEWS, SIM_NSERIES };

/* Points (t Keepa minute, v) in time order; a point only where v changes,
 * except the rank, which moves at every refresh (so its last point is the
 * product's last refresh). */
struct sim_series {
	int32_t *t;
	int32_t *v;
	uint32_t n, alloc;
};

struct sim_product {
	char asin[11];
	char title[72];
	char image[20];
	int32_t root_cat;
	int32_t cats[2];
	int32_t base[3];    /* typical Amazon/New/Used price; -1: never offered */
	int32_t ship;       /* buy box shipping (cents) */
	int32_t interval;   /* mean minutes between refreshes */
	int32_t next_t;     /* Keepa minute of the next refresh */
	int32_t noffers;    /* marketplace offers (for offers=N) */
	struct sim_rng rng; /* the product's own stream: its future */
	struct sim_series s[SIM_NSERIES];
};

struct sim_category {
	int32_t id;
	const char *name;
};

#define SIM_MAX_CATEGORIES 8
extern const struct sim_category sim_categories[SIM_MAX_CATEGORIES];
extern const int sim_ncategories;

struct sim_catalog {
	uint64_t seed;
	uint32_t n;
	struct sim_product *p;
	uint32_t *by_asin; /* indices sorted by asin */
	int32_t start_kmin;
	int32_t now_kmin; /* refreshes are generated up to here */
	int nsellers;
	char (*sellers)[15];
};

int sim_catalog_init(struct sim_catalog *cat, uint64_t seed, int nproducts, int history_days,
                     int32_t start_kmin, char **errmsg);
void sim_catalog_release(struct sim_catalog *cat);
/* Generate every refresh up to Keepa minute now (never goes back). */
int sim_catalog_advance(struct sim_catalog *cat, int32_t now);
struct sim_product *sim_catalog_find(const struct sim_catalog *cat, const char *asin);
/* Index of the seller or -1. */
int sim_catalog_find_seller(const struct sim_catalog *cat, const char *id);

/* The series index holding csv type `type`, or -1. */
int sim_type_series(int type);
extern const int sim_series_type[SIM_NSERIES];

/* Index of the last point at or before now, or -1. */
int64_t sim_series_at(const struct sim_series *s, int32_t now);
int32_t sim_series_current(const struct sim_series *s, int32_t now);
/* Mean over `days` days ending at now (see sim.h), -1 when none. */
int32_t sim_series_avg(const struct sim_series *s, int32_t now, int days);
int32_t sim_series_oos(const struct sim_series *s, int32_t now, int days);
int32_t sim_series_drops(const struct sim_series *s, int32_t now, int days);
/* min/max over the window: false when no non-negative value. */
bool sim_series_minmax(const struct sim_series *s, int32_t now, int days, int32_t min[2], int32_t max[2]);
bool sim_series_is_lowest(const struct sim_series *s, int32_t now);

int32_t sim_product_last_update(const struct sim_product *p, int32_t now);
int32_t sim_product_last_price_change(const struct sim_product *p, int32_t now);

/* ---------------------------------------------------------------- bucket */

struct sim_bucket {
	int64_t balance;
	int rate, cap, start_tokens, minute_ms;
	int64_t epoch_ms; /* real ms of the refill phase origin */
	int64_t applied;  /* ticks applied since epoch */
	int64_t refills;  /* ticks since start, all epochs */
	int64_t consumed_total;
	int64_t served_429;
	int64_t outside_consumed; /* /_sim/control?consume=N */
};

void sim_bucket_init(struct sim_bucket *b, int rate, int cap, int start_tokens, int minute_ms,
                     int64_t now_ms);
void sim_bucket_update(struct sim_bucket *b, int64_t now_ms);
int64_t sim_bucket_refill_in(const struct sim_bucket *b, int64_t now_ms);
void sim_bucket_set_rate(struct sim_bucket *b, int rate, int64_t now_ms);
void sim_bucket_restart(struct sim_bucket *b, int64_t now_ms);

/* ------------------------------------------------------------------ deal */

#define SIM_DEAL_PAGE 150
#define SIM_DEAL_MAX 10000

struct sim_selection {
	int domain;
	int price_type;
	int page;
	int date_range;
	int sort_type;
	bool range_enabled;
	int64_t current[2], delta[2], delta_pct[2], rank[2];
	bool has_current, has_delta, has_delta_pct, has_rank;
	int64_t *incl, *excl;
	int nincl, nexcl;
	int min_rating;
	bool is_lowest, has_reviews, must_amazon, must_not_amazon;
};

/* Parse and validate a selection; 0, or -1 with a malloc'd *errmsg. */
int sim_selection_parse(struct sim_selection *sel, const char *json, char **errmsg);
void sim_selection_release(struct sim_selection *sel);

/* One evaluated query: the matching products in sort order (at most 10,000),
 * frozen at Keepa minute `now`. */
struct sim_deal_result {
	uint32_t *idx;
	size_t n;
	int64_t matched; /* before the 10,000 cap */
	int counts[SIM_MAX_CATEGORIES];
	int32_t now;
	int price_type;
};

/* Run the query at Keepa minute now (`page` is not looked at). */
int sim_deal_match(const struct sim_catalog *cat, const struct sim_selection *sel, enum sim_deal_age age,
                   int32_t now, struct sim_deal_result *res);
void sim_deal_result_release(struct sim_deal_result *res);
/* Fill `deals` (an object) with dr (page `page` of the result, every match
 * when page < 0), categoryIds, categoryNames, categoryCount; the deal values
 * are those of the result's minute. */
int sim_deal_serve(const struct sim_catalog *cat, const struct sim_deal_result *res, int page, cJSON *deals);

/* ------------------------------------------------------------ deal cache */

/* Keepa caches a deal query about 120 s: an identical query (every member
 * but `page` equal) within that window is paged from the same frozen result.
 * The cache keeps one entry per distinct query; entries expire `window_ms`
 * (real ms) after the request that created them. */
#define SIM_CACHE_ENTRIES 32

struct sim_cache_entry {
	char *key; /* the selection's canonical text without page; NULL: free */
	int64_t created_ms;
	struct sim_deal_result res;
	uint64_t served[(SIM_DEAL_MAX / SIM_DEAL_PAGE + 64) / 64]; /* pages already answered */
};

struct sim_deal_cache {
	int64_t window_ms; /* 0: no cache, every request evaluates afresh */
	struct sim_cache_entry e[SIM_CACHE_ENTRIES];
	int64_t results;       /* results evaluated */
	int64_t hits;          /* requests paged from a cached result */
	int64_t repeats;       /* requests for a page already answered from the same result */
};

/* The result for selection json at real time now_ms (evaluated at Keepa
 * minute kmin when not cached). *repeat tells whether this page of the same
 * result was already served. The result stays owned by the cache. */
int sim_cache_lookup(struct sim_deal_cache *c, const struct sim_catalog *cat, const char *json,
                     const struct sim_selection *sel, enum sim_deal_age age, int64_t now_ms, int32_t kmin,
                     const struct sim_deal_result **res, bool *repeat);
void sim_cache_release(struct sim_deal_cache *c);

/* --------------------------------------------------------------- product */

struct sim_product_req {
	int domain;
	char **asins;
	int nasins;
	int stats_days; /* 0: no stats */
	bool history;
	int days;   /* 0: full history */
	int offers; /* 0: none */
	bool buybox, stock, rating;
	int update; /* INT32_MIN: not given */
};

/* Build the "products" array; returns the cost. */
int64_t sim_product_answer(const struct sim_catalog *cat, const struct sim_product_req *req, int32_t now,
                           cJSON *products);
int64_t sim_seller_answer(const struct sim_catalog *cat, int domain, char **ids, int nids, int32_t now,
                          cJSON *sellers);

#endif
