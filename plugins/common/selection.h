/*
 * selection.h - the /deal selection built from the task's `query` setting
 * group, its fingerprint, and one page's request body.
 */
#ifndef TG_PLUGINS_SELECTION_H
#define TG_PLUGINS_SELECTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cJSON;
struct pctx;

struct selection {
	struct cJSON *json; /* the canonical selection, without `page` */
	int64_t domain;     /* domainId */
	int price_type;     /* priceTypes[0] */
	int date_range;     /* dateRange (0 when the setting left it out: then sent as 0) */
	char fp[17];        /* 64-bit FNV-1a of the canonical text, hex */
	/* Category filters (includeCategories / excludeCategories), so the
	 * announced total can be taken from the matching categoryCount
	 * entries only: Keepa's categoryCount ignores category filters. */
	int64_t *incl, *excl;
	size_t nincl, nexcl;
	/* Category filters without isFilterEnabled: true (the docs disagree on
	 * whether Keepa then applies them): the plugins warn. */
	bool categories_unswitched;
};

/* True when Keepa documents pt as a deal price type (DealRequest.priceTypes:
 * CsvType.isDealRelevant in the official Java client, and the deal page). */
bool deal_price_type_valid(int64_t pt);

/* True when domain is a Keepa domain with deals (1..12 without 7, the
 * retired .cn). */
bool deal_domain_valid(int64_t domain);

/*
 * The number of deals the query announces, from a page's `deals` object:
 * the sum of categoryCount, over the included root categories only (or
 * without the excluded ones) when the query filters categories, capped at
 * Keepa's 10,000; -1 when unknown (no counts, or a filtered category that
 * is not among the answer's root categories, e.g. a sub-category).
 */
int64_t selection_expected(const struct selection *sel, const struct cJSON *deals);

/*
 * Build the selection from json (taken over: freed on every path). The
 * selection must name domainId (1..12) and priceTypes (exactly one number);
 * dateRange must be 0..3 (added as 0 when absent, so the request and the
 * row derivation agree); priceTypes must be a documented deal type and
 * domainId a domain with deals; the numeric fields Keepa knows must be numbers,
 * never strings. `page` is dropped (each request sets it); sort_type > 0
 * overrides sortType (the upserter reads by deal age, 1). The fingerprint
 * ignores the order of members.
 */
int selection_from_json(struct selection *sel, struct cJSON *json, int sort_type, char **errmsg);

/* The same from the task's `query` setting. */
int selection_load(struct selection *sel, struct pctx *p, int sort_type, char **errmsg);

/* The JSON body of page `page`: malloc()ed text, NULL when out of memory. */
char *selection_body(const struct selection *sel, int page);

void selection_release(struct selection *sel);

#endif
