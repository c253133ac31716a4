/*
 * sim_deal.c - /deal: the selection's validation, the query over the catalog
 * at one Keepa minute, and the Deal objects.
 *
 * The validation is strict where Keepa is documented to misread silently (a
 * string where a number belongs is refused with 400), so a client that sends
 * numbers as strings fails loudly against the simulator.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tollgate/tollgate.h>

#include "sim_int.h"

static const int range_days[4] = {1, 7, 30, 90};

static int fail(char **errmsg, const char *fmt, const char *what)
{
	if (errmsg) {
		char buf[256];
		snprintf(buf, sizeof(buf), fmt, what);
		*errmsg = strdup(buf);
	}
	return -1;
}

static bool is_integer(const cJSON *it)
{
	return cJSON_IsNumber(it) && it->valuedouble == floor(it->valuedouble) &&
	       fabs(it->valuedouble) < 9e15;
}

/* 1 when present and valid, 0 when absent, -1 on error. */
static int get_int(const cJSON *sel, const char *name, int64_t lo, int64_t hi, int64_t *out, char **errmsg)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(sel, name);
	if (!it || cJSON_IsNull(it))
		return 0;
	if (!is_integer(it))
		return fail(errmsg, "'%s' must be a JSON integer (not a string)", name);
	if (it->valuedouble < (double)lo || it->valuedouble > (double)hi)
		return fail(errmsg, "'%s' is out of its documented range", name);
	*out = (int64_t)it->valuedouble;
	return 1;
}

static int get_range(const cJSON *sel, const char *name, int64_t out[2], bool *has, char **errmsg)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(sel, name);
	*has = false;
	if (!it || cJSON_IsNull(it))
		return 0;
	if (!cJSON_IsArray(it) || cJSON_GetArraySize(it) != 2)
		return fail(errmsg, "'%s' must be an array [min, max] of two integers", name);
	for (int i = 0; i < 2; i++) {
		const cJSON *v = cJSON_GetArrayItem(it, i);
		if (!is_integer(v))
			return fail(errmsg, "'%s' must be an array [min, max] of two integers", name);
		out[i] = (int64_t)v->valuedouble;
	}
	*has = true;
	return 0;
}

static int get_list(const cJSON *sel, const char *name, int64_t **out, int *n, char **errmsg)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(sel, name);
	if (!it || cJSON_IsNull(it))
		return 0;
	if (!cJSON_IsArray(it))
		return fail(errmsg, "'%s' must be an array of category ids", name);
	int len = cJSON_GetArraySize(it);
	*out = calloc((size_t)len + 1, sizeof(**out));
	if (!*out)
		return fail(errmsg, "out of memory reading '%s'", name);
	const cJSON *v;
	cJSON_ArrayForEach(v, it)
	{
		if (!is_integer(v))
			return fail(errmsg, "'%s' must be an array of integer category ids", name);
		(*out)[(*n)++] = (int64_t)v->valuedouble;
	}
	return 0;
}

static int get_bool(const cJSON *sel, const char *name, bool *out, char **errmsg)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(sel, name);
	if (!it || cJSON_IsNull(it))
		return 0;
	if (!cJSON_IsBool(it))
		return fail(errmsg, "'%s' must be a JSON boolean", name);
	*out = cJSON_IsTrue(it);
	return 0;
}

static bool valid_domain(int64_t d)
{
	return (d >= 1 && d <= 6) || (d >= 8 && d <= 12);
}

int sim_selection_parse(struct sim_selection *sel, const char *json, char **errmsg)
{
	/* Booleans Keepa documents that the simulator accepts without modelling. */
	static const char *const ignored_bools[] = {"isLowest90",       "isLowestOffer", "isOutOfStock",
	                                            "isBackInStock",    "filterErotic",  "singleVariation",
	                                            "isPrimeExclusive", "isHighest",     "isRisers"};
	int64_t v;
	int r;

	memset(sel, 0, sizeof(*sel));
	sel->date_range = 1;
	sel->sort_type = 1;
	sel->min_rating = -1;
	cJSON *root = json ? cJSON_Parse(json) : NULL;
	if (!root)
		return fail(errmsg, "%s", json ? "the selection is not valid JSON" : "missing selection");
	if (!cJSON_IsObject(root)) {
		fail(errmsg, "%s", "the selection must be a JSON object");
		goto err_json;
	}
	if ((r = get_int(root, "domainId", INT32_MIN, INT32_MAX, &v, errmsg)) < 0)
		goto err_json;
	if (r == 0 || !valid_domain(v)) {
		fail(errmsg, "%s", r == 0 ? "'domainId' is required" : "'domainId' is not a Keepa domain");
		goto err_json;
	}
	sel->domain = (int)v;
	const cJSON *pt = cJSON_GetObjectItemCaseSensitive(root, "priceTypes");
	if (!cJSON_IsArray(pt) || cJSON_GetArraySize(pt) != 1) {
		fail(errmsg, "%s", "'priceTypes' must be an array of exactly one price type");
		goto err_json;
	}
	if (!is_integer(cJSON_GetArrayItem(pt, 0)) || cJSON_GetArrayItem(pt, 0)->valuedouble < 0 ||
	    cJSON_GetArrayItem(pt, 0)->valuedouble > 35) {
		fail(errmsg, "%s", "'priceTypes' must hold one integer price type (0..35)");
		goto err_json;
	}
	sel->price_type = (int)cJSON_GetArrayItem(pt, 0)->valuedouble;
	if ((r = get_int(root, "page", 0, INT32_MAX, &v, errmsg)) < 0)
		goto err_json;
	if (r)
		sel->page = (int)v;
	if ((r = get_int(root, "dateRange", 0, 3, &v, errmsg)) < 0)
		goto err_json;
	if (r)
		sel->date_range = (int)v;
	if ((r = get_int(root, "sortType", -4, 4, &v, errmsg)) < 0)
		goto err_json;
	if (r && (v == 0 || v == -1)) {
		fail(errmsg, "%s", "'sortType' must be 1..4 (or -2..-4 reversed)");
		goto err_json;
	}
	if (r)
		sel->sort_type = (int)v;
	if ((r = get_int(root, "minRating", -1, 50, &v, errmsg)) < 0)
		goto err_json;
	if (r)
		sel->min_rating = (int)v;
	if (get_bool(root, "isRangeEnabled", &sel->range_enabled, errmsg) ||
	    get_range(root, "currentRange", sel->current, &sel->has_current, errmsg) ||
	    get_range(root, "deltaRange", sel->delta, &sel->has_delta, errmsg) ||
	    get_range(root, "deltaPercentRange", sel->delta_pct, &sel->has_delta_pct, errmsg) ||
	    get_range(root, "salesRankRange", sel->rank, &sel->has_rank, errmsg) ||
	    get_list(root, "includeCategories", &sel->incl, &sel->nincl, errmsg) ||
	    get_list(root, "excludeCategories", &sel->excl, &sel->nexcl, errmsg) ||
	    get_bool(root, "isLowest", &sel->is_lowest, errmsg) ||
	    get_bool(root, "hasReviews", &sel->has_reviews, errmsg) ||
	    get_bool(root, "mustHaveAmazonOffer", &sel->must_amazon, errmsg) ||
	    get_bool(root, "mustNotHaveAmazonOffer", &sel->must_not_amazon, errmsg))
		goto err_sel;
	for (size_t i = 0; i < sizeof(ignored_bools) / sizeof(*ignored_bools); i++) {
		bool dummy;
		if (get_bool(root, ignored_bools[i], &dummy, errmsg))
			goto err_sel;
	}
	cJSON_Delete(root);
	return 0;

err_sel:
	sim_selection_release(sel);
err_json:
	cJSON_Delete(root);
	return -1;
}

void sim_selection_release(struct sim_selection *sel)
{
	free(sel->incl);
	free(sel->excl);
	sel->incl = sel->excl = NULL;
	sel->nincl = sel->nexcl = 0;
}

/* -------------------------------------------------------------- the query */

struct row {
	uint32_t idx;
	int32_t current, delta, dpct, rank, creation, last_update;
	const char *asin;
};

static int32_t pct(int32_t delta, int32_t avg)
{
	return avg > 0 ? (int32_t)lround((double)delta * 100.0 / avg) : 0;
}

static bool in_range(const int64_t r[2], int64_t v)
{
	return v >= r[0] && v <= r[1];
}

static bool in_list(const int64_t *l, int n, int64_t v)
{
	for (int i = 0; i < n; i++)
		if (l[i] == v)
			return true;
	return false;
}

static int cmp_i64(int64_t a, int64_t b)
{
	return a < b ? -1 : a > b;
}

struct sort_arg {
	int sort;
	enum sim_deal_age age;
};

static int cmp_rows(const void *pa, const void *pb, void *arg)
{
	const struct row *a = pa, *b = pb;
	const struct sort_arg *sa = arg;
	int sort = sa->sort, c = 0;
	switch (sort < 0 ? -sort : sort) {
	case 1:
		/* "Deal age, newest first": which time Keepa means is not
		 * documented, so the simulator can order by either. */
		if (sa->age == SIM_AGE_UPDATE) {
			c = -cmp_i64(a->last_update, b->last_update);
			if (!c)
				c = -cmp_i64(a->creation, b->creation);
		} else {
			c = -cmp_i64(a->creation, b->creation);
			if (!c)
				c = -cmp_i64(a->last_update, b->last_update);
		}
		break;
	case 2:
		c = -cmp_i64(a->delta, b->delta);
		break;
	case 3:
		c = cmp_i64(a->rank, b->rank);
		break;
	case 4:
		c = -cmp_i64(a->dpct, b->dpct);
		break;
	}
	if (sort < 0)
		c = -c;
	return c ? c : strcmp(a->asin, b->asin);
}

static bool row_build(const struct sim_product *p, const struct sim_selection *sel, int32_t now,
                      bool categories, struct row *r)
{
	int k = sim_type_series(sel->price_type);
	if (k < 0)
		return false;
	r->last_update = sim_product_last_update(p, now);
	if (r->last_update < now - 12 * 60)
		return false;
	const struct sim_series *s = &p->s[k];
	int64_t at = sim_series_at(s, now);
	if (at < 0 || s->v[at] < 0)
		return false;
	int32_t avg = sim_series_avg(s, now, range_days[sel->date_range]);
	r->current = s->v[at];
	if (avg <= 0 || avg == r->current)
		return false;
	r->delta = avg - r->current;
	r->dpct = pct(r->delta, avg);
	r->creation = s->t[at];
	r->rank = sim_series_current(&p->s[SIM_S_RANK], now);
	r->asin = p->asin;
	if (sel->range_enabled) {
		if ((sel->has_current && !in_range(sel->current, r->current)) ||
		    (sel->has_delta && !in_range(sel->delta, r->delta)) ||
		    (sel->has_delta_pct && !in_range(sel->delta_pct, r->dpct)) ||
		    (sel->has_rank && (r->rank < 0 || !in_range(sel->rank, r->rank))))
			return false;
	}
	if (categories && sel->nincl && !in_list(sel->incl, sel->nincl, p->root_cat))
		return false;
	if (categories && sel->nexcl && in_list(sel->excl, sel->nexcl, p->root_cat))
		return false;
	if (sel->min_rating > 0 && sim_series_current(&p->s[SIM_S_RATING], now) < sel->min_rating)
		return false;
	if (sel->has_reviews && sim_series_current(&p->s[SIM_S_REVIEWS], now) <= 0)
		return false;
	bool amazon = sim_series_current(&p->s[SIM_S_AMAZON], now) >= 0;
	if ((sel->must_amazon && !amazon) || (sel->must_not_amazon && amazon))
		return false;
	if (sel->is_lowest && !sim_series_is_lowest(s, now))
		return false;
	return true;
}

static cJSON *int_array(const int32_t *v, int n)
{
	cJSON *a = cJSON_CreateArray();
	for (int i = 0; a && i < n; i++)
		cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
	return a;
}

static cJSON *deal_json(const struct sim_product *p, int price_type, int32_t now)
{
	int32_t cur[SIM_NTYPES], since[SIM_NTYPES], last[SIM_NTYPES];
	int32_t avg[4][SIM_NTYPES], delta[4][SIM_NTYPES], dpct[4][SIM_NTYPES];
	for (int t = 0; t < SIM_NTYPES; t++) {
		int k = sim_type_series(t);
		const struct sim_series *s = k >= 0 ? &p->s[k] : NULL;
		int64_t at = s ? sim_series_at(s, now) : -1;
		cur[t] = at >= 0 ? s->v[at] : -1;
		since[t] = at >= 0 ? s->t[at] : -1;
		last[t] = at >= 1 && s->v[at - 1] >= 0 && cur[t] >= 0 ? s->v[at - 1] - cur[t] : 0;
		for (int d = 0; d < 4; d++) {
			avg[d][t] = s ? sim_series_avg(s, now, range_days[d]) : -1;
			delta[d][t] = cur[t] >= 0 && avg[d][t] > 0 ? avg[d][t] - cur[t] : 0;
			dpct[d][t] = pct(delta[d][t], avg[d][t]);
		}
	}
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "asin", p->asin);
	cJSON_AddNullToObject(o, "parentAsin");
	cJSON_AddStringToObject(o, "title", p->title);
	cJSON_AddNumberToObject(o, "rootCat", p->root_cat);
	cJSON_AddItemToObject(o, "categories", int_array(p->cats, 2));
	int32_t img[sizeof(p->image)];
	int nimg = 0;
	for (const char *c = p->image; *c; c++)
		img[nimg++] = (unsigned char)*c;
	cJSON_AddItemToObject(o, "image", int_array(img, nimg));
	cJSON_AddItemToObject(o, "current", int_array(cur, SIM_NTYPES));
	cJSON *a = cJSON_AddArrayToObject(o, "avg"), *dl = cJSON_AddArrayToObject(o, "delta"),
	      *dp = cJSON_AddArrayToObject(o, "deltaPercent");
	for (int d = 0; d < 4; d++) {
		cJSON_AddItemToArray(a, int_array(avg[d], SIM_NTYPES));
		cJSON_AddItemToArray(dl, int_array(delta[d], SIM_NTYPES));
		cJSON_AddItemToArray(dp, int_array(dpct[d], SIM_NTYPES));
	}
	cJSON_AddItemToObject(o, "currentSince", int_array(since, SIM_NTYPES));
	cJSON_AddItemToObject(o, "deltaLast", int_array(last, SIM_NTYPES));
	cJSON_AddNumberToObject(o, "creationDate", since[price_type < SIM_NTYPES ? price_type : 0]);
	cJSON_AddNumberToObject(o, "lastUpdate", sim_product_last_update(p, now));
	return o;
}

static void count_category(struct sim_deal_result *res, int32_t root_cat)
{
	for (int c = 0; c < sim_ncategories; c++)
		if (sim_categories[c].id == root_cat)
			res->counts[c]++;
}

int sim_deal_match(const struct sim_catalog *cat, const struct sim_selection *sel, enum sim_deal_age age,
                   int32_t now, struct sim_deal_result *res)
{
	struct row *rows = malloc((cat->n ? cat->n : 1) * sizeof(*rows));
	memset(res, 0, sizeof(*res));
	if (!rows)
		return TG_ENOMEM;
	size_t n = 0;
	bool cat_filter = sel->nincl || sel->nexcl;
	struct row any;
	for (uint32_t i = 0; i < cat->n; i++) {
		if (row_build(&cat->p[i], sel, now, true, &rows[n])) {
			rows[n].idx = i;
			n++;
		}
		/* categoryCount is not affected by category filters (Keepa's
		 * docs): with one, count every deal the other filters pass. */
		if (cat_filter && row_build(&cat->p[i], sel, now, false, &any))
			count_category(res, cat->p[i].root_cat);
	}
	res->matched = (int64_t)n;
	struct sort_arg sa = {sel->sort_type, age};
	qsort_r(rows, n, sizeof(*rows), cmp_rows, &sa);
	if (n > SIM_DEAL_MAX)
		n = SIM_DEAL_MAX;
	res->idx = malloc((n ? n : 1) * sizeof(*res->idx));
	if (!res->idx) {
		free(rows);
		return TG_ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		res->idx[i] = rows[i].idx;
		if (!cat_filter)
			count_category(res, cat->p[rows[i].idx].root_cat);
	}
	res->n = n;
	res->now = now;
	res->price_type = sel->price_type;
	free(rows);
	return 0;
}

void sim_deal_result_release(struct sim_deal_result *res)
{
	free(res->idx);
	memset(res, 0, sizeof(*res));
}

int sim_deal_serve(const struct sim_catalog *cat, const struct sim_deal_result *res, int page, cJSON *deals)
{
	size_t from = 0, to = res->n;
	if (page >= 0) {
		from = (size_t)page * SIM_DEAL_PAGE;
		if (from > res->n)
			from = res->n;
		to = from + SIM_DEAL_PAGE < res->n ? from + SIM_DEAL_PAGE : res->n;
	}
	cJSON *dr = cJSON_AddArrayToObject(deals, "dr");
	if (!dr)
		return TG_ENOMEM;
	/* Every value is computed at the result's own minute: the histories
	 * only grow, so a frozen result reads the same later. */
	for (size_t i = from; i < to; i++) {
		cJSON *d = deal_json(&cat->p[res->idx[i]], res->price_type, res->now);
		if (!d)
			return TG_ENOMEM;
		cJSON_AddItemToArray(dr, d);
	}
	cJSON *ids = cJSON_AddArrayToObject(deals, "categoryIds");
	cJSON *names = cJSON_AddArrayToObject(deals, "categoryNames");
	cJSON *cnt = cJSON_AddArrayToObject(deals, "categoryCount");
	for (int c = 0; c < sim_ncategories; c++) {
		if (!res->counts[c])
			continue;
		cJSON_AddItemToArray(ids, cJSON_CreateNumber(sim_categories[c].id));
		cJSON_AddItemToArray(names, cJSON_CreateString(sim_categories[c].name));
		cJSON_AddItemToArray(cnt, cJSON_CreateNumber(res->counts[c]));
	}
	return 0;
}
