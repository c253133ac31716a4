/*
 * api.c - the JSON API and the CSV download (see web.h).
 *
 * /api/deals answers {"table", "total", "offset", "limit", "sort", "order",
 * "rows": [{column: value, ...}]} with every column of the table; the rows
 * are written by the export code, whose JSON is safe inside HTML too.
 */
#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "observe/status.h"
#include "storage/export.h"
#include "storage/storage.h"
#include "util/clock.h"
#include "util/dynbuf.h"
#include "util/errmsg.h"
#include "web/params.h"
#include "web/priv.h"

#define DEALS_TABLE "deals"
/* The largest answers: 500 rows of JSON, 100,000 rows of CSV. */
#define WEB_JSON_MAX ((size_t)16 << 20)
#define WEB_CSV_BYTES_MAX ((size_t)256 << 20)

/* A 200 with the buffer's content, handed to libmicrohttpd. */
static void reply_dynbuf(struct web_reply *r, const char *content_type, struct dynbuf *b)
{
	size_t len = dynbuf_len(b);
	char *body = dynbuf_take(b);

	if (!body) {
		web_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
		return;
	}
	web_reply_owned(r, MHD_HTTP_OK, content_type, body, len);
}

struct collect {
	struct web_param params[WEB_PARAMS_MAX + 1];
	size_t n;
};

static enum MHD_Result collect_param(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct collect *c = cls;
	(void)kind;

	/* One more than allowed is kept, so the check can refuse it. */
	if (c->n <= WEB_PARAMS_MAX)
		c->params[c->n++] = (struct web_param){key, value};
	return MHD_YES;
}

struct json_rows {
	struct dynbuf *b;
	size_t n;
};

static int json_row(void *ud, const struct tg_value *row, size_t n)
{
	struct json_rows *j = ud;

	dynbuf_addstr(j->b, j->n++ ? "," : "");
	export_json_row(j->b, row, n);
	return dynbuf_error(j->b);
}

/* The rows a filter matches, remembered for TOTAL_FRESH_MS: counting a
 * million rows takes tens of milliseconds while the page itself comes from
 * an index in one, and someone paging through a result asks for the same
 * total again and again. The total may lag the writers by that much. */
#define TOTAL_FRESH_MS 2000

/* What decides the total: the filters and the search, as text. */
static bool total_key(const struct storage_query *q, char *key, size_t len)
{
	size_t used = (size_t)snprintf(key, len, "%s|%s|", q->table, q->match_text ? q->match_text : "");

	for (size_t i = 0; i < q->nfilters && used < len; i++) {
		const struct tg_value *v = &q->filters[i].value;
		if (v->type == TG_INT)
			used += (size_t)snprintf(key + used, len - used, "%s%d%lld|", v->column, (int)q->filters[i].op,
			                         (long long)v->v.i);
		else if (v->type == TG_REAL)
			used += (size_t)snprintf(key + used, len - used, "%s%d%.17g|", v->column, (int)q->filters[i].op, v->v.r);
		else
			return false; /* text or NULL bounds: not remembered */
	}
	return used < len;
}

static int count_rows(struct web_server *w, const struct storage_query *q, int64_t *total, char **err)
{
	char key[TOTAL_KEY_MAX];
	int64_t now = tg_mono_ms();
	struct total_memo *totals = w->totals, *oldest = &totals[0];
	bool keyed = total_key(q, key, sizeof(key));
	int rc;

	for (size_t i = 0; keyed && i < WEB_TOTALS; i++) {
		if (totals[i].at_ms && now - totals[i].at_ms < TOTAL_FRESH_MS && strcmp(totals[i].key, key) == 0) {
			*total = totals[i].total;
			return 0;
		}
		if (totals[i].at_ms < oldest->at_ms)
			oldest = &totals[i];
	}
	rc = storage_count(w->db, q, total, err);
	if (rc == 0 && keyed) {
		snprintf(oldest->key, sizeof(oldest->key), "%s", key);
		oldest->total = *total;
		oldest->at_ms = now > 0 ? now : 1;
	}
	return rc;
}

static void deals_json(struct web_server *w, const struct web_deals_request *req, struct web_reply *r)
{
	struct dynbuf b = DYNBUF_INIT(WEB_JSON_MAX);
	struct json_rows rows = {.b = &b};
	char head[256], *err = NULL;
	int64_t total = 0;
	const char *sort = req->q.order_by ? req->q.order_by + (req->q.order_by[0] == '-') : "";
	int rc;

	if ((rc = count_rows(w, &req->q, &total, &err)) == 0) {
		snprintf(head, sizeof(head), "{\"table\":\"%s\",\"total\":%lld,\"offset\":%lld,\"limit\":%lld,", req->q.table,
		         (long long)total, (long long)req->q.offset, (long long)req->q.limit);
		dynbuf_addstr(&b, head);
		dynbuf_addstr(&b, "\"sort\":");
		export_json_string(&b, sort);
		dynbuf_addstr(&b, req->q.order_by && req->q.order_by[0] != '-' ? ",\"order\":\"asc\"" : ",\"order\":\"desc\"");
		dynbuf_addstr(&b, ",\"rows\":[");
		rc = storage_query(w->db, &req->q, json_row, &rows, &err);
		dynbuf_addstr(&b, "]}\n");
	}
	if (rc == 0)
		rc = dynbuf_error(&b);
	if (rc) {
		/* The database's own reason: no value of the request is in it
		 * that the client did not send. */
		web_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, err ? err : "cannot read the deals");
		dynbuf_free(&b);
	} else {
		reply_dynbuf(r, "application/json; charset=utf-8", &b);
	}
	free(err);
}

static void deals_csv(struct web_server *w, const struct web_deals_request *req, struct web_reply *r)
{
	struct dynbuf b = DYNBUF_INIT(WEB_CSV_BYTES_MAX);
	char *err = NULL;
	int rc = export_rows(w->db, &req->q, EXPORT_CSV, export_to_dynbuf, &b, &err);

	if (rc) {
		web_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, err ? err : "cannot export the deals");
		dynbuf_free(&b);
	} else {
		reply_dynbuf(r, export_content_type(EXPORT_CSV), &b);
		r->disposition = "attachment; filename=\"deals.csv\"";
	}
	free(err);
}

void web_api_deals(struct web_server *w, struct MHD_Connection *conn, bool csv, struct web_reply *r)
{
	struct collect c = {.n = 0};
	struct web_deals_request req;
	const struct storage_table *t;
	char *err = NULL;

	if (storage_table_get(w->db, DEALS_TABLE, &t, NULL) != 0) {
		web_reply_error(r, MHD_HTTP_NOT_FOUND, "there is no deals table yet: no task has stored a deal");
		return;
	}
	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_param, &c);
	if (web_deals_params(t, c.params, c.n, csv, &req, &err) != 0) {
		web_reply_error(r, MHD_HTTP_BAD_REQUEST, err ? err : "bad parameters");
		free(err);
		return;
	}
	if (csv)
		deals_csv(w, &req, r);
	else
		deals_json(w, &req, r);
}

void web_api_status(struct web_server *w, struct web_reply *r)
{
	cJSON *snap = status_snapshot(w->d);
	char *text = snap ? cJSON_PrintUnformatted(snap) : NULL;

	cJSON_Delete(snap);
	if (!text) {
		web_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
		return;
	}
	web_reply_owned(r, MHD_HTTP_OK, "application/json; charset=utf-8", text, strlen(text));
}
