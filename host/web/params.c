/*
 * params.c - validating the deals query string (see params.h).
 */
#include "web/params.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/export.h"
#include "util/dynbuf.h"
#include "util/errmsg.h"

const char *const web_sort_columns[] = {"est_profit_cents", "drop_pct",   "current_cents", "avg_cents",
                                        "sales_rank",       "first_seen", "last_seen",     "title",
                                        NULL};

static bool sort_offered(const struct storage_table *t, const char *name)
{
	for (const char *const *c = web_sort_columns; *c; c++)
		if (strcmp(*c, name) == 0)
			for (size_t i = 0; i < t->ncolumns; i++)
				if (strcmp(t->columns[i].name, name) == 0)
					return true;
	return false;
}

static int parse_count(const char *key, const char *text, long long min, long long max, int64_t *out,
                       char **errmsg)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(text, &end, 10);
	if (!*text || *end || errno || v < min || v > max)
		return errmsg_set(errmsg, TG_EINVAL, "%s must be a whole number from %lld to %lld", key, min, max);
	*out = v;
	return 0;
}

/* "drop_pct_min" -> column "drop_pct", TG_GE. */
static int bound_param(const struct storage_table *t, const struct web_param *p, struct tg_filter *f,
                       char **errmsg)
{
	size_t len = strlen(p->key);
	char column[STORAGE_IDENT_MAX + 1];
	const struct storage_column *c = NULL;
	bool min;

	if (len < 5 || len - 4 > STORAGE_IDENT_MAX)
		return errmsg_set(errmsg, TG_EINVAL, "unknown parameter '%.80s'", p->key);
	min = strcmp(p->key + len - 4, "_min") == 0;
	if (!min && strcmp(p->key + len - 4, "_max") != 0)
		return errmsg_set(errmsg, TG_EINVAL, "unknown parameter '%.80s'", p->key);
	memcpy(column, p->key, len - 4);
	column[len - 4] = '\0';
	for (size_t i = 0; i < t->ncolumns; i++)
		if (strcmp(t->columns[i].name, column) == 0)
			c = &t->columns[i];
	if (!c || c->type == TG_TEXT)
		return errmsg_set(errmsg, TG_EINVAL, "'%.80s': table '%s' has no numeric column '%.80s'", p->key, t->name,
		                  column);
	if (strcmp(p->value, "null") == 0)
		return errmsg_set(errmsg, TG_EINVAL, "%s must be a number", p->key);
	f->op = min ? TG_GE : TG_LE;
	return export_value_parse(t, c->name, p->value, &f->value, errmsg);
}

int web_deals_params(const struct storage_table *t, const struct web_param *params, size_t n, bool csv,
                     struct web_deals_request *req, char **errmsg)
{
	const char *sort = NULL, *order = NULL;
	int rc;

	memset(req, 0, sizeof(*req));
	req->q.table = t->name;
	req->q.limit = csv ? WEB_CSV_MAX : WEB_LIMIT_DEFAULT;
	if (n > WEB_PARAMS_MAX)
		return errmsg_set(errmsg, TG_EINVAL, "at most %d parameters", WEB_PARAMS_MAX);
	for (size_t i = 0; i < n; i++) {
		const struct web_param *p = &params[i];

		if (!p->key || !p->value)
			return errmsg_set(errmsg, TG_EINVAL, "a parameter without a name or a value");
		for (size_t j = 0; j < i; j++)
			if (strcmp(params[j].key, p->key) == 0)
				return errmsg_set(errmsg, TG_EINVAL, "parameter '%.80s' is given twice", p->key);
		if (strcmp(p->key, "sort") == 0) {
			sort = p->value;
		} else if (strcmp(p->key, "order") == 0) {
			order = p->value;
		} else if (strcmp(p->key, "limit") == 0) {
			if ((rc = parse_count("limit", p->value, 1, csv ? WEB_CSV_MAX : WEB_LIMIT_MAX, &req->q.limit,
			                      errmsg)))
				return rc;
		} else if (strcmp(p->key, "offset") == 0) {
			if ((rc = parse_count("offset", p->value, 0, WEB_OFFSET_MAX, &req->q.offset, errmsg)))
				return rc;
		} else if (strcmp(p->key, "q") == 0) {
			if (strlen(p->value) > WEB_SEARCH_MAX)
				return errmsg_set(errmsg, TG_EINVAL, "q is longer than %d bytes", WEB_SEARCH_MAX);
			if (p->value[0]) {
				req->q.match_column = "title";
				req->q.match_text = p->value;
			}
		} else {
			if (req->q.nfilters >= WEB_FILTERS_MAX)
				return errmsg_set(errmsg, TG_EINVAL, "at most %d bounds", WEB_FILTERS_MAX);
			if ((rc = bound_param(t, p, &req->filters[req->q.nfilters], errmsg)))
				return rc;
			req->q.nfilters++;
		}
	}
	if (order && strcmp(order, "asc") != 0 && strcmp(order, "desc") != 0)
		return errmsg_set(errmsg, TG_EINVAL, "order must be asc or desc");
	if (sort && *sort) {
		if (!sort_offered(t, sort)) {
			struct dynbuf list = DYNBUF_INIT(512);
			for (const char *const *c = web_sort_columns; *c; c++)
				dynbuf_printf(&list, "%s%s", c == web_sort_columns ? "" : ", ", *c);
			rc = errmsg_set(errmsg, TG_EINVAL, "sort must be one of %s", dynbuf_str(&list));
			dynbuf_free(&list);
			return rc;
		}
		/* Descending unless asked otherwise: the best deals first. */
		snprintf(req->order_by, sizeof(req->order_by), "%s%s", order && strcmp(order, "asc") == 0 ? "" : "-",
		         sort);
		req->q.order_by = req->order_by;
	} else if (order) {
		return errmsg_set(errmsg, TG_EINVAL, "order needs sort");
	}
	if (req->q.match_column) {
		bool have = false;
		for (size_t i = 0; i < t->ncolumns; i++)
			have |= strcmp(t->columns[i].name, "title") == 0 && t->columns[i].type == TG_TEXT;
		if (!have)
			return errmsg_set(errmsg, TG_EINVAL, "table '%s' has no title to search", t->name);
	}
	req->q.filters = req->filters;
	return 0;
}
