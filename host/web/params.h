/*
 * params.h - the query string of /api/deals and /deals.csv, validated.
 *
 *   sort=COLUMN  one of the offered sort columns (each has an index)
 *   order=asc|desc  (default desc)
 *   limit=N      1..WEB_LIMIT_MAX (default 50); for CSV up to WEB_CSV_MAX
 *   offset=N     0..WEB_OFFSET_MAX
 *   COLUMN_min=V, COLUMN_max=V  bounds on a numeric column of the table
 *   q=TEXT       title contains TEXT (at most WEB_SEARCH_MAX bytes)
 *
 * Every name is checked against the table's columns before it reaches the
 * storage, and values become bound parameters; anything else (an unknown
 * or repeated parameter, a bad number) is refused with a message.
 */
#ifndef TG_HOST_WEB_PARAMS_H
#define TG_HOST_WEB_PARAMS_H

#include <stdbool.h>
#include <stddef.h>

#include "storage/storage.h"

#define WEB_LIMIT_DEFAULT 50
#define WEB_LIMIT_MAX 500
#define WEB_CSV_MAX 100000
#define WEB_OFFSET_MAX 1000000000LL
#define WEB_SEARCH_MAX 200
#define WEB_FILTERS_MAX 16
#define WEB_PARAMS_MAX 24

/* The columns a page may be sorted by (the indexes web_server_start()
 * creates), NULL-terminated. */
extern const char *const web_sort_columns[];

struct web_param {
	const char *key, *value;
};

struct web_deals_request {
	struct storage_query q;
	struct tg_filter filters[WEB_FILTERS_MAX];
	char order_by[STORAGE_IDENT_MAX + 2];
};

/* Fill req from params for table t (req->q.table = t->name). csv: the
 * bounds of a download (limit defaults to WEB_CSV_MAX). Returns 0 or
 * TG_EINVAL with a message for the client in *errmsg. The request points
 * into params' strings. */
int web_deals_params(const struct storage_table *t, const struct web_param *params, size_t n, bool csv,
                     struct web_deals_request *req, char **errmsg);

#endif
