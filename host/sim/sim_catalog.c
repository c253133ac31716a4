/*
 * sim_catalog.c - the simulator's deterministic product catalog and the
 * arithmetic over its histories (current, averages, min/max ...).
 *
 * Each product owns a PRNG stream seeded from (seed, index). Its history is
 * produced by replaying that stream refresh after refresh, so the state at a
 * Keepa minute depends only on the seed and the minute, never on when or how
 * often the catalog was asked.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tollgate/tollgate.h>

#include "sim_int.h"

const struct sim_category sim_categories[SIM_MAX_CATEGORIES] = {
    {283155, "Books"},           {172282, "Electronics"},        {1055398, "Home & Kitchen"},
    {165793011, "Toys & Games"}, {3375251, "Sports & Outdoors"}, {2625373, "Movies & TV"},
    {5174, "CDs & Vinyl"},       {468642, "Video Games"},
};
const int sim_ncategories = sizeof(sim_categories) / sizeof(sim_categories[0]);

const int sim_series_type[SIM_NSERIES] = {0, 1, 2, 3, 16, 17};

int sim_type_series(int type)
{
	for (int i = 0; i < SIM_NSERIES; i++)
		if (sim_series_type[i] == type)
			return i;
	return -1;
}

static const char *const words_a[] = {"Quiet",  "Red",    "Hidden", "Last",   "Golden",  "Small",
                                      "Broken", "Wild",   "Silent", "Modern", "Ancient", "Bright",
                                      "Lost",   "Little", "Great",  "Dark"};
static const char *const words_b[] = {"River",   "Garden",  "Kitchen",  "Machine", "Kingdom",
                                      "Winter",  "Harbor",  "Engine",   "Forest",  "Signal",
                                      "Lantern", "Circuit", "Mountain", "Library"};
static const char *const kinds[] = {"Novel",    "Headphones", "Pan Set", "Puzzle",
                                    "Yoga Mat", "Blu-ray",    "Vinyl",   "Game"};

static int series_push(struct sim_series *s, int32_t t, int32_t v)
{
	if (s->n == s->alloc) {
		uint32_t alloc = s->alloc ? s->alloc * 2 : 16;
		int32_t *nt = realloc(s->t, alloc * sizeof(*nt));
		if (!nt)
			return TG_ENOMEM;
		s->t = nt;
		int32_t *nv = realloc(s->v, alloc * sizeof(*nv));
		if (!nv)
			return TG_ENOMEM;
		s->v = nv;
		s->alloc = alloc;
	}
	s->t[s->n] = t;
	s->v[s->n] = v;
	s->n++;
	return 0;
}

static int32_t series_last(const struct sim_series *s)
{
	return s->n ? s->v[s->n - 1] : -1;
}

/* Prices end in .99, like most shelf prices. */
static int32_t price99(double cents)
{
	int64_t c = (int64_t)cents;
	if (c < 100)
		c = 100;
	return (int32_t)(c / 100 * 100 + 99);
}

static double log_uniform(struct sim_rng *r, double lo, double hi)
{
	return exp(log(lo) + sim_rng_unit(r) * (log(hi) - log(lo)));
}

static int32_t next_gap(struct sim_product *p)
{
	return (int32_t)sim_rng_range(&p->rng, p->interval / 2, p->interval * 3 / 2);
}

/* One refresh of product p at Keepa minute t: the rank always moves (so the
 * rank's last point is the last refresh); each price may change. */
static int product_refresh(struct sim_product *p, int32_t t)
{
	struct sim_series *rank = &p->s[SIM_S_RANK];
	double base = rank->v[0], cur = series_last(rank);
	double noise = (sim_rng_unit(&p->rng) + sim_rng_unit(&p->rng) + sim_rng_unit(&p->rng) +
	                sim_rng_unit(&p->rng) - 2.0) *
	               0.6;
	double lr = log(cur) + 0.15 * (log(base) - log(cur)) + noise;
	int64_t r = (int64_t)exp(lr);
	if (r < 1)
		r = 1;
	if (r > 30000000)
		r = 30000000;
	if (r == (int64_t)cur)
		r = r > 1 ? r - 1 : r + 1;
	int ret = series_push(rank, t, (int32_t)r);
	if (ret)
		return ret;

	for (int k = 0; k < 3; k++) {
		if (p->base[k] < 0)
			continue;
		int32_t now = series_last(&p->s[k]), v = now;
		double u = sim_rng_unit(&p->rng);
		if (u < 0.3) {
			if (sim_rng_unit(&p->rng) < 0.04)
				v = -1;
			else
				v = price99(p->base[k] * (0.55 + 0.7 * sim_rng_unit(&p->rng)));
		} else if (now < 0 && u < 0.6) {
			v = p->base[k];
		}
		if (v != now && (ret = series_push(&p->s[k], t, v)))
			return ret;
	}
	if (sim_rng_unit(&p->rng) < 0.2) {
		int32_t reviews = series_last(&p->s[SIM_S_REVIEWS]) + (int32_t)sim_rng_range(&p->rng, 1, 3);
		if ((ret = series_push(&p->s[SIM_S_REVIEWS], t, reviews)))
			return ret;
	}
	p->next_t = t + next_gap(p);
	return 0;
}

static void encode36(char *out, uint64_t x, int len)
{
	static const char digits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
	for (int i = len - 1; i >= 0; i--) {
		out[i] = digits[x % 36];
		x /= 36;
	}
	out[len] = '\0';
}

static int product_init(struct sim_product *p, uint64_t seed, uint32_t idx, int32_t first)
{
	struct sim_rng *r = &p->rng;
	r->s = seed * 0x9e3779b97f4a7c15ULL ^ ((uint64_t)idx + 1) * 0xd1b54a32d192ed03ULL;
	sim_rng_next(r);

	/* ASINs: a bijection of the index, so they are unique by construction:
	 * books get ten digits (ISBN-10 style), the rest "B0" and 8 base-36. */
	bool book = sim_rng_unit(r) < 0.4;
	uint64_t mix = sim_rng_next(&(struct sim_rng){seed ^ 0xa5a5a5a5ULL});
	if (book) {
		snprintf(p->asin, sizeof(p->asin), "%010llu",
		         (unsigned long long)((idx * 1000003ULL + mix) % 10000000000ULL));
		p->root_cat = sim_categories[0].id;
	} else {
		p->asin[0] = 'B';
		p->asin[1] = '0';
		encode36(p->asin + 2, (idx * 1000003ULL + mix) % 2821109907456ULL, 8);
		p->root_cat = sim_categories[1 + sim_rng_range(r, 0, sim_ncategories - 2)].id;
	}
	int cat_idx = 0;
	for (int i = 0; i < sim_ncategories; i++)
		if (sim_categories[i].id == p->root_cat)
			cat_idx = i;
	p->cats[0] = 1000000 + cat_idx * 10000 + (int32_t)sim_rng_range(r, 0, 99);
	p->cats[1] = p->cats[0] * 10 + (int32_t)sim_rng_range(r, 1, 9);
	snprintf(p->title, sizeof(p->title), "The %s %s %s, Edition %u",
	         words_a[sim_rng_range(r, 0, sizeof(words_a) / sizeof(*words_a) - 1)],
	         words_b[sim_rng_range(r, 0, sizeof(words_b) / sizeof(*words_b) - 1)], kinds[cat_idx],
	         idx + 1);
	char img[12];
	encode36(img, sim_rng_next(r) % 2821109907456ULL * 1000 + idx % 1000, 11);
	snprintf(p->image, sizeof(p->image), "%.11sL.jpg", img);

	double price = log_uniform(r, 300, 50000);
	p->base[0] = sim_rng_unit(r) < (book ? 0.5 : 0.6) ? price99(price) : -1;
	p->base[1] = price99(price * (0.85 + 0.25 * sim_rng_unit(r)));
	p->base[2] =
	    sim_rng_unit(r) < (book ? 0.95 : 0.8) ? price99(price * (0.3 + 0.55 * sim_rng_unit(r))) : -1;
	p->ship = sim_rng_unit(r) < 0.5 ? 0 : 399;
	p->interval = (int32_t)sim_rng_range(r, 120, 1440);
	p->noffers = (int32_t)sim_rng_range(r, 0, 45);
	int32_t rank = (int32_t)(book ? log_uniform(r, 1000, 5000000) : log_uniform(r, 50, 1000000));
	int32_t rating = (int32_t)sim_rng_range(r, 10, 50);
	int32_t reviews = sim_rng_unit(r) < 0.1 ? 0 : (int32_t)sim_rng_range(r, 1, 5000);

	int ret = 0;
	for (int k = 0; k < 3 && !ret; k++)
		if (p->base[k] >= 0)
			ret = series_push(&p->s[k], first, p->base[k]);
	if (!ret)
		ret = series_push(&p->s[SIM_S_RANK], first, rank);
	if (!ret)
		ret = series_push(&p->s[SIM_S_RATING], first, rating);
	if (!ret)
		ret = series_push(&p->s[SIM_S_REVIEWS], first, reviews);
	p->next_t = first + next_gap(p);
	return ret;
}

static int cmp_asin(const void *a, const void *b, void *arg)
{
	const struct sim_catalog *cat = arg;
	return strcmp(cat->p[*(const uint32_t *)a].asin, cat->p[*(const uint32_t *)b].asin);
}

int sim_catalog_init(struct sim_catalog *cat, uint64_t seed, int nproducts, int history_days,
                     int32_t start_kmin, char **errmsg)
{
	int ret = TG_ENOMEM;
	memset(cat, 0, sizeof(*cat));
	if (nproducts < 1 || nproducts > 2000000 || history_days < 1 || history_days > 3650) {
		if (errmsg)
			*errmsg = strdup("products must be 1..2000000 and history days 1..3650");
		return TG_EINVAL;
	}
	cat->seed = seed;
	cat->n = (uint32_t)nproducts;
	cat->start_kmin = start_kmin;
	cat->p = calloc(cat->n, sizeof(*cat->p));
	if (!cat->p)
		goto err_alloc;
	cat->by_asin = malloc(cat->n * sizeof(*cat->by_asin));
	if (!cat->by_asin)
		goto err_alloc;
	struct sim_rng r = {seed ^ 0x5e11e55ULL};
	cat->nsellers = 60;
	cat->sellers = calloc((size_t)cat->nsellers, sizeof(*cat->sellers));
	if (!cat->sellers)
		goto err_alloc;
	for (int i = 0; i < cat->nsellers; i++) {
		cat->sellers[i][0] = 'A';
		encode36(cat->sellers[i] + 1, sim_rng_next(&r) % 2821109907456ULL * 100000 + (uint64_t)i, 13);
	}
	for (uint32_t i = 0; i < cat->n; i++) {
		struct sim_rng fr = {seed ^ ((uint64_t)i << 20) ^ 0xf1257ULL};
		int32_t first =
		    start_kmin - history_days * SIM_DAY + (int32_t)sim_rng_range(&fr, 0, SIM_DAY - 1);
		if (product_init(&cat->p[i], seed, i, first))
			goto err_alloc;
		cat->by_asin[i] = i;
	}
	qsort_r(cat->by_asin, cat->n, sizeof(*cat->by_asin), cmp_asin, cat);
	cat->now_kmin = INT32_MIN;
	if (sim_catalog_advance(cat, start_kmin))
		goto err_alloc;
	return 0;

err_alloc:
	if (errmsg)
		*errmsg = strdup("out of memory building the catalog");
	sim_catalog_release(cat);
	return ret;
}

void sim_catalog_release(struct sim_catalog *cat)
{
	if (cat->p) {
		for (uint32_t i = 0; i < cat->n; i++)
			for (int k = 0; k < SIM_NSERIES; k++) {
				free(cat->p[i].s[k].t);
				free(cat->p[i].s[k].v);
			}
	}
	free(cat->p);
	free(cat->by_asin);
	free(cat->sellers);
	memset(cat, 0, sizeof(*cat));
}

int sim_catalog_advance(struct sim_catalog *cat, int32_t now)
{
	if (now <= cat->now_kmin)
		return 0;
	for (uint32_t i = 0; i < cat->n; i++) {
		struct sim_product *p = &cat->p[i];
		while (p->next_t <= now) {
			int ret = product_refresh(p, p->next_t);
			if (ret)
				return ret;
		}
	}
	cat->now_kmin = now;
	return 0;
}

struct sim_product *sim_catalog_find(const struct sim_catalog *cat, const char *asin)
{
	size_t lo = 0, hi = cat->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(cat->p[cat->by_asin[mid]].asin, asin);
		if (c == 0)
			return &cat->p[cat->by_asin[mid]];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int sim_catalog_find_seller(const struct sim_catalog *cat, const char *id)
{
	for (int i = 0; i < cat->nsellers; i++)
		if (strcmp(cat->sellers[i], id) == 0)
			return i;
	return -1;
}

/* ------------------------------------------------------- series arithmetic */

int64_t sim_series_at(const struct sim_series *s, int32_t now)
{
	int64_t lo = 0, hi = s->n; /* first index with t > now */
	while (lo < hi) {
		int64_t mid = (lo + hi) / 2;
		if (s->t[mid] <= now)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo - 1;
}

int32_t sim_series_current(const struct sim_series *s, int32_t now)
{
	int64_t i = sim_series_at(s, now);
	return i < 0 ? -1 : s->v[i];
}

/* Walk the segments of the window [now + 1 - days * 1440, now + 1) from the
 * newest back, calling fn(value, minutes, index). */
#define WINDOW_FOR_EACH(s, now, days, j, len)                                                                \
	for (int64_t j = sim_series_at((s), (now)), _end = (int64_t)(now) + 1,                               \
	             _a = (int64_t)(now) + 1 - (int64_t)(days)*SIM_DAY, len = 0;                             \
	     j >= 0 && _end > _a; _end = (s)->t[j], j--)                                                     \
		if ((len = _end - ((s)->t[j] > _a ? (s)->t[j] : _a)) > 0)

int32_t sim_series_avg(const struct sim_series *s, int32_t now, int days)
{
	int64_t sum = 0, dur = 0;
	WINDOW_FOR_EACH(s, now, days, j, len)
	{
		if (s->v[j] >= 0) {
			sum += (int64_t)s->v[j] * len;
			dur += len;
		}
	}
	return dur ? (int32_t)((sum + dur / 2) / dur) : -1;
}

int32_t sim_series_oos(const struct sim_series *s, int32_t now, int days)
{
	int64_t oos = 0, dur = 0;
	WINDOW_FOR_EACH(s, now, days, j, len)
	{
		dur += len;
		if (s->v[j] < 0)
			oos += len;
	}
	return dur ? (int32_t)((oos * 100 + dur / 2) / dur) : -1;
}

int32_t sim_series_drops(const struct sim_series *s, int32_t now, int days)
{
	int64_t a = (int64_t)now + 1 - (int64_t)days * SIM_DAY;
	int32_t drops = 0;
	for (int64_t j = sim_series_at(s, now); j >= 1 && s->t[j] >= a; j--)
		if (s->v[j] >= 0 && s->v[j - 1] >= 0 && s->v[j] < s->v[j - 1])
			drops++;
	return drops;
}

bool sim_series_minmax(const struct sim_series *s, int32_t now, int days, int32_t min[2], int32_t max[2])
{
	bool any = false;
	WINDOW_FOR_EACH(s, now, days, j, len)
	{
		int32_t v = s->v[j];
		if (v < 0)
			continue;
		/* Walking backwards, <= keeps the earliest of equal values. */
		if (!any || v <= min[1]) {
			min[0] = s->t[j];
			min[1] = v;
		}
		if (!any || v >= max[1]) {
			max[0] = s->t[j];
			max[1] = v;
		}
		any = true;
	}
	return any;
}

bool sim_series_is_lowest(const struct sim_series *s, int32_t now)
{
	int64_t i = sim_series_at(s, now);
	if (i < 0 || s->v[i] < 0)
		return false;
	for (int64_t j = 0; j < i; j++)
		if (s->v[j] >= 0 && s->v[j] < s->v[i])
			return false;
	return true;
}

int32_t sim_product_last_update(const struct sim_product *p, int32_t now)
{
	int64_t i = sim_series_at(&p->s[SIM_S_RANK], now);
	return i < 0 ? -1 : p->s[SIM_S_RANK].t[i];
}

int32_t sim_product_last_price_change(const struct sim_product *p, int32_t now)
{
	int32_t last = -1;
	for (int k = 0; k < 3; k++) {
		int64_t i = sim_series_at(&p->s[k], now);
		if (i >= 0 && p->s[k].t[i] > last)
			last = p->s[k].t[i];
	}
	return last;
}
