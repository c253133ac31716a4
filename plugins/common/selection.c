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
	if (!json_get_int(json, "domainId", &sel->domain) || sel->domain < 1 || sel->domain > 12) {
		rc = err_set(errmsg, TG_EINVAL, "query.domainId: required, an integer 1..12");
		goto free_json;
	}
	pts = cJSON_GetObjectItemCaseSensitive(json, "priceTypes");
	if (!cJSON_IsArray(pts) || cJSON_GetArraySize(pts) != 1 || !json_index_int(pts, 0, &x) || x < 0 ||
	    x > 40) {
		rc = err_set(errmsg, TG_EINVAL,
		             "query.priceTypes: required, a list of exactly one price type");
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
	return selection_from_json(sel, json, sort_type, errmsg);
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
	sel->json = NULL;
}
