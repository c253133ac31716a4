/*
 * selection.h - the /deal selection built from the task's `query` setting
 * group, its fingerprint, and one page's request body.
 */
#ifndef TG_PLUGINS_SELECTION_H
#define TG_PLUGINS_SELECTION_H

#include <stdbool.h>
#include <stdint.h>

struct cJSON;
struct pctx;

struct selection {
	struct cJSON *json; /* the canonical selection, without `page` */
	int64_t domain;     /* domainId */
	int price_type;     /* priceTypes[0] */
	int date_range;     /* dateRange (0 when the setting left it out: then sent as 0) */
	char fp[17];        /* 64-bit FNV-1a of the canonical text, hex */
};

/*
 * Build the selection from json (taken over: freed on every path). The
 * selection must name domainId (1..12) and priceTypes (exactly one number);
 * dateRange must be 0..3 (added as 0 when absent, so the request and the
 * row derivation agree); the numeric fields Keepa knows must be numbers,
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
