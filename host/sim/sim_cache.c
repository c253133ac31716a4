/*
 * sim_cache.c - Keepa's deal-query cache: an identical query (every member
 * but `page` equal) within the window is answered from the result frozen by
 * the request that created it. Paging therefore reads one consistent result
 * only while the pages are fetched inside one window; pages read later come
 * from a fresh, re-sorted result, as on Keepa (DealRequest.java: "cached for
 * 120 seconds").
 */
#include <stdlib.h>
#include <string.h>

#include <tollgate/tollgate.h>

#include "sim_int.h"

static int cmp_name(const void *a, const void *b)
{
	return strcmp((*(cJSON *const *)a)->string, (*(cJSON *const *)b)->string);
}

/* Sort every object's members by name, so member order does not make two
 * identical queries differ. */
static int sort_members(cJSON *item)
{
	size_t n = 0, i = 0;
	cJSON *c;

	for (c = item->child; c; c = c->next) {
		if (sort_members(c))
			return -1;
		n++;
	}
	if (!cJSON_IsObject(item) || n < 2)
		return 0;
	cJSON **kids = malloc(n * sizeof(*kids));
	if (!kids)
		return -1;
	for (c = item->child; c; c = c->next)
		kids[i++] = c;
	qsort(kids, n, sizeof(*kids), cmp_name);
	for (i = 0; i < n; i++) {
		kids[i]->prev = i ? kids[i - 1] : kids[n - 1];
		kids[i]->next = i + 1 < n ? kids[i + 1] : NULL;
	}
	item->child = kids[0];
	free(kids);
	return 0;
}

/* The query's identity: its canonical text without `page`. */
static char *cache_key(const char *json)
{
	cJSON *root = cJSON_Parse(json);
	char *key = NULL;

	if (!root)
		return NULL;
	cJSON_DeleteItemFromObjectCaseSensitive(root, "page");
	if (sort_members(root) == 0)
		key = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	return key;
}

static void entry_release(struct sim_cache_entry *e)
{
	cJSON_free(e->key);
	sim_deal_result_release(&e->res);
	memset(e, 0, sizeof(*e));
}

int sim_cache_lookup(struct sim_deal_cache *c, const struct sim_catalog *cat, const char *json,
                     const struct sim_selection *sel, enum sim_deal_age age, int64_t now_ms, int32_t kmin,
                     const struct sim_deal_result **res, bool *repeat)
{
	struct sim_cache_entry *slot = NULL, *oldest = NULL;
	size_t page = sel->page >= 0 ? (size_t)sel->page : 0, word = page / 64;
	uint64_t bit = 1ULL << (page % 64);
	char *key;
	int ret;

	*repeat = false;
	key = cache_key(json);
	if (!key)
		return TG_ENOMEM;
	for (int i = 0; i < SIM_CACHE_ENTRIES && !slot; i++) {
		struct sim_cache_entry *e = &c->e[i];

		if (e->key && now_ms - e->created_ms >= c->window_ms)
			entry_release(e); /* expired */
		if (e->key && strcmp(e->key, key) == 0)
			slot = e;
	}
	/* Where a new result goes: a free slot, else over the oldest entry. */
	for (int i = 0; i < SIM_CACHE_ENTRIES && !slot; i++) {
		struct sim_cache_entry *e = &c->e[i];

		if (!oldest || (oldest->key && (!e->key || e->created_ms < oldest->created_ms)))
			oldest = e;
	}
	if (slot && c->window_ms > 0) {
		cJSON_free(key);
		c->hits++;
		if (word < sizeof(slot->served) / sizeof(*slot->served)) {
			*repeat = (slot->served[word] & bit) != 0;
			slot->served[word] |= bit;
		}
		if (*repeat)
			c->repeats++;
		*res = &slot->res;
		return 0;
	}
	if (oldest->key)
		entry_release(oldest);
	ret = sim_deal_match(cat, sel, age, kmin, &oldest->res);
	if (ret) {
		cJSON_free(key);
		return ret;
	}
	oldest->key = key;
	oldest->created_ms = now_ms;
	if (word < sizeof(oldest->served) / sizeof(*oldest->served))
		oldest->served[word] |= bit;
	c->results++;
	*res = &oldest->res;
	return 0;
}

void sim_cache_release(struct sim_deal_cache *c)
{
	for (int i = 0; i < SIM_CACHE_ENTRIES; i++)
		if (c->e[i].key || c->e[i].res.idx)
			entry_release(&c->e[i]);
}
