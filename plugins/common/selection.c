/*
 * selection.c - the /deal selection, canonical and fingerprinted.
 */
#include "selection.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common.h"
#include "json_util.h"

/* Members Keepa reads as numbers (or arrays of numbers): a string there is
 * silently misread by Keepa, so it is refused here. */
static const char *const numeric_members[] = {
    "domainId",          "priceTypes",        "dateRange",         "sortType",       "page",
    "currentRange",      "deltaRange",        "deltaPercentRange", "deltaLastRange", "salesRankRange",
    "includeCategories", "excludeCategories", "minRating",
};

static int cmp_member(const void *a, const void *b)
{
	const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;

	return strcmp(x->string, y->string);
}

/* Sort every object's members by name, recursively, so the printed text does
 * not depend on the order the configuration listed them in. */
static int canonicalize(cJSON *item)
{
	cJSON **kids, *c;
	size_t n = 0, i;

	for (c = item->child; c; c = c->next)
		if (canonicalize(c))
			return TG_ENOMEM;
	if (!cJSON_IsObject(item))
		return TG_OK;
	for (c = item->child; c; c = c->next)
		n++;
	if (n < 2)
		return TG_OK;
	kids = malloc(n * sizeof(*kids));
	if (!kids)
		return TG_ENOMEM;
	for (i = 0, c = item->child; c; c = c->next)
		kids[i++] = c;
	qsort(kids, n, sizeof(*kids), cmp_member);
	item->child = NULL;
	for (i = 0; i < n; i++) {
		kids[i]->next = kids[i]->prev = NULL;
		/* Appending relinks the member; its name stays with it. */
		cJSON_AddItemToArray(item, kids[i]);
	}
	free(kids);
	return TG_OK;
}

static bool numbers_only(const cJSON *item)
{
	const cJSON *c;

	if (cJSON_IsNumber(item))
		return true;
	if (!cJSON_IsArray(item))
		return false;
	cJSON_ArrayForEach(c, item) if (!numbers_only(c)) return false;
	return true;
}

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	return h;
}

static int set_number(cJSON *obj, const char *name, double v)
{
	cJSON *n = cJSON_CreateNumber(v);

	if (!n)
		return TG_ENOMEM;
	cJSON_DeleteItemFromObjectCaseSensitive(obj, name);
	cJSON_AddItemToObject(obj, name, n);
	return TG_OK;
}

bool deal_price_type_valid(int64_t pt)
{
	/* 0 Amazon, 1 New, 2 Used, 3 sales rank, 5 collectible, 6 refurbished,
	 * 7 New FBM with shipping, 8 lightning deal, 9 warehouse, 10 New FBA,
	 * 18 buy box, 19-27 used/collectible/refurbished with shipping, 32 buy
	 * box used, 33 prime exclusive. Not: 4 list price, 11-17 counts,
	 * rating and reviews, 28-31 eBay, trade-in, rent. */
	return (pt >= 0 && pt <= 3) || (pt >= 5 && pt <= 10) || (pt >= 18 && pt <= 27) || pt == 32 || pt == 33;
}

bool deal_domain_valid(int64_t domain)
{
	return domain >= 1 && domain <= 12 && domain != 7;
}

/* A category list member as a malloc()ed array; 0 when absent. */
static int category_list(const cJSON *json, const char *name, int64_t **out, size_t *n)
{
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(json, name), *c;
	size_t i = 0;

	*out = NULL;
	*n = 0;
	if (!cJSON_IsArray(list) || !cJSON_GetArraySize(list))
		return TG_OK;
	*out = malloc((size_t)cJSON_GetArraySize(list) * sizeof(**out));
	if (!*out)
		return TG_ENOMEM;
	cJSON_ArrayForEach(c, list) json_as_int(c, &(*out)[i++]);
	*n = i;
	return TG_OK;
}

static bool in_list(const int64_t *l, size_t n, int64_t v)
{
	for (size_t i = 0; i < n; i++)
		if (l[i] == v)
			return true;
	return false;
}

/* True when the answer lists id among its categoryIds. */
static bool answer_lists(const cJSON *ids, int64_t id)
{
	const cJSON *c;
	int64_t x;

	cJSON_ArrayForEach(c, ids) if (json_as_int(c, &x) && x == id) return true;
	return false;
}

int64_t selection_expected(const struct selection *sel, const cJSON *deals)
{
	const cJSON *counts = cJSON_GetObjectItemCaseSensitive(deals, "categoryCount");
	const cJSON *ids = cJSON_GetObjectItemCaseSensitive(deals, "categoryIds");
	bool filtered = sel->nincl || sel->nexcl;
	int64_t sum = 0, x, id;
	int i, n;

	if (!cJSON_IsArray(counts) || !(n = cJSON_GetArraySize(counts)))
		return -1;
	if (filtered && (!cJSON_IsArray(ids) || cJSON_GetArraySize(ids) != n))
		return -1;
	/* An included category the answer does not list among its root
	 * categories (a sub-category, or one without deals): its share of the
	 * counts is unknown. */
	for (size_t k = 0; k < sel->nincl; k++)
		if (!answer_lists(ids, sel->incl[k]))
			return -1;
	for (i = 0; i < n; i++) {
		if (!json_index_int(counts, i, &x) || x < 0)
			return -1;
		if (filtered) {
			if (!json_index_int(ids, i, &id))
				return -1;
			if ((sel->nincl && !in_list(sel->incl, sel->nincl, id)) || in_list(sel->excl, sel->nexcl, id))
				continue;
		}
		sum += x;
	}
	return sum > DEAL_MAX ? DEAL_MAX : sum;
}

int selection_from_json(struct selection *sel, cJSON *json, int sort_type, char **errmsg)
{
	const cJSON *pts;
	char *text;
	int64_t x;
	size_t i;
	int rc;

	memset(sel, 0, sizeof(*sel));
	if (!cJSON_IsObject(json)) {
		rc = err_set(errmsg, TG_EINVAL, "query: must be a group (Keepa's /deal selection)");
		goto free_json;
	}
	for (i = 0; i < sizeof(numeric_members) / sizeof(numeric_members[0]); i++) {
		const cJSON *m = cJSON_GetObjectItemCaseSensitive(json, numeric_members[i]);

		if (m && !numbers_only(m)) {
			rc = err_set(
			    errmsg, TG_ETYPE,
			    "query.%s: must be a number or a list of numbers (Keepa misreads strings)",
			    numeric_members[i]);
			goto free_json;
		}
	}
	if (!json_get_int(json, "domainId", &sel->domain) || !deal_domain_valid(sel->domain)) {
		rc = err_set(errmsg, TG_EINVAL,
		             "query.domainId: required, a Keepa domain with deals (1..12 but 7)");
		goto free_json;
	}
	pts = cJSON_GetObjectItemCaseSensitive(json, "priceTypes");
	if (!cJSON_IsArray(pts) || cJSON_GetArraySize(pts) != 1 || !json_index_int(pts, 0, &x) || x < 0 ||
	    x > 40) {
		rc = err_set(errmsg, TG_EINVAL,
		             "query.priceTypes: required, a list of exactly one price type");
		goto free_json;
	}
	if (!deal_price_type_valid(x)) {
		rc = err_set(errmsg, TG_EINVAL,
		             "query.priceTypes: %lld is not a deal price type (Keepa's: 0-3, 5-10, 18-27, 32, 33)",
		             (long long)x);
		goto free_json;
	}
	sel->price_type = (int)x;
	if (!cJSON_GetObjectItemCaseSensitive(json, "dateRange")) {
		rc = set_number(json, "dateRange", 0);
		if (rc)
			goto free_json;
	}
	if (!json_get_int(json, "dateRange", &x) || x < 0 || x > 3) {
		rc = err_set(errmsg, TG_EINVAL,
		             "query.dateRange: an enum 0 day, 1 week, 2 month, 3 ninety days");
		goto free_json;
	}
	sel->date_range = (int)x;
	if (sort_type > 0) {
		rc = set_number(json, "sortType", sort_type);
		if (rc)
			goto free_json;
	}
	rc = category_list(json, "includeCategories", &sel->incl, &sel->nincl);
	if (!rc)
		rc = category_list(json, "excludeCategories", &sel->excl, &sel->nexcl);
	if (rc)
		goto free_json;
	sel->categories_unswitched =
	    (sel->nincl || sel->nexcl) && !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(json, "isFilterEnabled"));
	cJSON_DeleteItemFromObjectCaseSensitive(json, "page");
	rc = canonicalize(json);
	if (rc)
		goto free_json;
	text = cJSON_PrintUnformatted(json);
	if (!text) {
		rc = TG_ENOMEM;
		goto free_json;
	}
	snprintf(sel->fp, sizeof(sel->fp), "%016llx", (unsigned long long)fnv1a(text));
	cJSON_free(text);
	sel->json = json;
	return TG_OK;

free_json:
	cJSON_Delete(json);
	free(sel->incl);
	free(sel->excl);
	sel->incl = sel->excl = NULL;
	if (rc == TG_ENOMEM)
		err_set(errmsg, rc, "query: out of memory");
	return rc;
}

int selection_load(struct selection *sel, struct pctx *p, int sort_type, char **errmsg)
{
	cJSON *json = NULL;
	int rc;

	memset(sel, 0, sizeof(*sel));
	rc = p->svc->setting_json(p->task, "query", &json);
	if (rc == TG_ENOTFOUND)
		return err_set(errmsg, rc, "setting query: required (Keepa's /deal selection as a group)");
	if (rc < 0)
		return err_set(errmsg, rc, "setting query: cannot read the group (%d)", rc);
	rc = selection_from_json(sel, json, sort_type, errmsg);
	if (!rc && sel->categories_unswitched)
		plog(p, TG_LOG_WARN,
		     "settings.query: includeCategories/excludeCategories without isFilterEnabled = true: Keepa's "
		     "docs list the categories under the filters that switch turns on (their own example sends "
		     "them with it false); add isFilterEnabled = true to be sure they apply");
	return rc;
}

char *selection_body(const struct selection *sel, int page)
{
	cJSON *copy = cJSON_Duplicate(sel->json, true);
	char *text = NULL, *out = NULL;

	if (!copy)
		return NULL;
	if (set_number(copy, "page", page) == TG_OK)
		text = cJSON_PrintUnformatted(copy);
	cJSON_Delete(copy);
	if (text) {
		/* Hand back plain malloc() memory whatever cJSON's allocator is. */
		out = strdup(text);
		cJSON_free(text);
	}
	return out;
}

void selection_release(struct selection *sel)
{
	cJSON_Delete(sel->json);
	free(sel->incl);
	free(sel->excl);
	memset(sel, 0, sizeof(*sel));
}
