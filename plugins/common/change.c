/*
 * change.c - write deals from their page, buy products only for change.
 */
#include "change.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common.h"
#include "deals.h"
#include "fetch.h"
#include "json_util.h"
#include "selection.h"

int asin_list_add(struct asin_list *l, const char *asin)
{
	if (l->n == l->cap) {
		const char **v = array_grow(l->v, &l->cap, sizeof(*v), 64);

		if (!v)
			return TG_ENOMEM;
		l->v = v;
	}
	l->v[l->n++] = asin;
	return TG_OK;
}

void asin_list_release(struct asin_list *l)
{
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int64_t col_int_or(const struct tg_value *row, size_t n, const char *name, int64_t dflt)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(row[i].column, name))
			return row[i].type == TG_INT ? row[i].v.i : dflt;
	return dflt;
}

static int stored_fn(void *ud, const struct tg_value *row, size_t n)
{
	struct stored_deal *st = ud;

	st->exists = true;
	st->updated_at = col_int_or(row, n, COL_UPDATED, -1);
	st->product_at = col_int_or(row, n, COL_PRODUCT_AT, -1);
	st->product_due = col_int_or(row, n, COL_PRODUCT_DUE, 0);
	return 0;
}

int stored_deal_get(struct pctx *p, int64_t domain, const char *asin, struct stored_deal *st)
{
	struct tg_value key[2] = {TG_VINT(COL_DOMAIN, domain), TG_VTEXT(COL_ASIN, asin)};
	int rc;

	*st = (struct stored_deal){.updated_at = -1, .product_at = -1};
	rc = p->svc->get(p->task, deals_table.name, key, 2, stored_fn, st);
	return rc == TG_ENOTFOUND ? TG_OK : rc;
}

/* The deal's lastUpdate in Unix seconds, -1 when it has none. */
static int64_t deal_updated_s(const cJSON *deal)
{
	int64_t km;

	return json_get_int(deal, "lastUpdate", &km) && km > 0 ? keepa_minutes_to_unix_s(km) : -1;
}

bool deal_older_than_row(const struct stored_deal *st, const cJSON *deal)
{
	int64_t updated = deal_updated_s(deal);

	return st->exists && st->updated_at >= 0 && updated >= 0 && updated < st->updated_at;
}

bool deal_changed(const struct stored_deal *st, const cJSON *deal)
{
	return !st->exists || st->updated_at != deal_updated_s(deal);
}

bool product_needed(const struct pctx *p, const struct stored_deal *st, const cJSON *deal, int64_t now)
{
	if (p->legacy || !st->exists || st->product_at < 0 || st->product_due)
		return true;
	/* A changed deal whose page carries the product's current values has
	 * them written from the page already: only the sales-rank drops would
	 * be new, and they are counts over 30 and 90 days, renewed with the
	 * product data's age below. */
	if (deal_changed(st, deal) && (p->product_on_change || !deal_carries_product_current(deal)))
		return true;
	return p->product_max_age_s >= 0 && now - st->product_at > p->product_max_age_s;
}

int page_store(struct pctx *p, const struct selection *sel, cJSON *const *deals, size_t n, int64_t now,
               struct asin_list *due, int64_t *changed, char **errmsg)
{
	struct deal_ctx ctx = deal_ctx_of(p, sel, now);
	int64_t refused = 0;

	for (size_t i = 0; i < n; i++) {
		const char *asin = json_asin(deals[i]);
		struct stored_deal st;
		struct deal_row row;
		bool product_ok, need;
		int rc;

		if (!asin) {
			p->counts.deals_skipped++;
			continue;
		}
		rc = stored_deal_get(p, sel->domain, asin, &st);
		if (rc < 0)
			return storage_err(p, errmsg, rc, "storage: cannot read deal %s", asin);
		/* Keepa serves a query's pages from a result it keeps 120 s, and a
		 * long read spans several: a page can come from a result older than
		 * the one another read (or this one) already stored. It must not
		 * take the row back to that older deal. */
		if (deal_older_than_row(&st, deals[i])) {
			p->counts.deals_older++;
			continue;
		}
		rc = deal_row_build(&row, &ctx, deals[i], NULL, !st.exists, &product_ok);
		if (rc)
			return err_set(errmsg, rc, "deal %s: cannot build its row (%d)", asin, rc);
		if (row.refused) {
			refused += row.refused;
			plog(p, TG_LOG_DEBUG, "deal %s: %s is not a 64-bit integer; left out of the row", asin,
			     row.refused_name);
		}
		need = product_needed(p, &st, deals[i], now);
		if (need)
			deal_row_add(&row, TG_VINT(COL_PRODUCT_DUE, 1));
		else
			p->counts.products_skipped++;
		if (changed && deal_changed(&st, deals[i]))
			(*changed)++;
		rc = p->svc->upsert(p->task, deals_table.name, row.v, row.n);
		if (rc < 0)
			return storage_err(p, errmsg, rc, "storage: cannot write deal %s", asin);
		p->counts.written++;
		if (!st.exists)
			p->counts.inserted++;
		if (need && due && asin_list_add(due, asin))
			return err_set(errmsg, TG_ENOMEM, "out of memory");
	}
	/* One line per page, not per deal: a bad feed must not flood the log. */
	if (refused) {
		p->counts.values_refused += refused;
		plog(p, TG_LOG_WARN, "page of %zu deals: %lld numbers refused (not a 64-bit integer)", n,
		     (long long)refused);
	}
	return TG_OK;
}

int page_store_commit(struct pctx *p, const struct selection *sel, cJSON *const *deals, size_t n, int64_t now,
                      struct asin_list *due, int64_t *changed, const char *key, const char *value, char **errmsg)
{
	int rc = p->svc->begin(p->task);

	if (rc)
		return storage_err(p, errmsg, rc, "storage: cannot begin");
	rc = page_store(p, sel, deals, n, now, due, changed, errmsg);
	if (!rc && (rc = p->svc->state_set(p->task, key, value)))
		storage_err(p, errmsg, rc, "storage: cannot save the %s", key);
	if (!rc && (rc = p->svc->commit(p->task)))
		storage_err(p, errmsg, rc, "storage: commit failed");
	if (rc)
		p->svc->rollback(p->task);
	return rc;
}

/* One batch: fetch, then write every product row in one transaction. */
static int buy_batch(struct pctx *p, int64_t domain, const char *const *asins, size_t n, char **errmsg)
{
	struct deal_ctx ctx = {.domain = domain, .written_by = p->name, .fees = &p->fees};
	struct product_set set = {0};
	int64_t missing = 0, malformed = 0;
	int rc;

	rc = products_fetch(p, domain, asins, n, &set, errmsg);
	if (rc)
		goto release;
	p->counts.products_bought += (int64_t)n;
	ctx.now_s = now_s(p);
	rc = p->svc->begin(p->task);
	if (rc) {
		storage_err(p, errmsg, rc, "storage: cannot begin a transaction");
		goto release;
	}
	for (size_t i = 0; i < n && !rc; i++) {
		const cJSON *prod = product_set_find(&set, asins[i]);
		struct deal_row row;
		bool ok;

		deal_row_product(&row, &ctx, asins[i], prod, &ok);
		missing += !prod;
		malformed += prod && !ok;
		rc = p->svc->upsert(p->task, deals_table.name, row.v, row.n);
	}
	if (rc >= 0)
		rc = p->svc->commit(p->task);
	if (rc < 0) {
		p->svc->rollback(p->task);
		storage_err(p, errmsg, rc, "storage: cannot write the products");
		goto release;
	}
	rc = TG_OK;
	p->counts.products_missing += missing;
	p->counts.products_malformed += malformed + set.malformed;
	/* One line per batch, not per item: a bad feed must not flood the log. */
	if (missing || malformed)
		plog(p, TG_LOG_WARN, "/product batch of %zu: %lld not returned, %lld without usable stats", n,
		     (long long)missing, (long long)malformed);
release:
	product_set_release(&set);
	return rc;
}

int products_buy(struct pctx *p, int64_t domain, const char *const *asins, size_t n, char **errmsg)
{
	int rc = TG_OK;

	for (size_t i = 0; i < n && !rc;) {
		size_t k = product_batch_size(p);

		if (k > n - i)
			k = n - i;
		rc = buy_batch(p, domain, asins + i, k, errmsg);
		i += k;
	}
	return rc;
}

struct due_scan {
	char **asins;
	size_t n, cap;
	bool oom;
};

static int due_fn(void *ud, const struct tg_value *row, size_t n)
{
	struct due_scan *d = ud;

	for (size_t i = 0; i < n; i++) {
		if (strcmp(row[i].column, COL_ASIN) || row[i].type != TG_TEXT)
			continue;
		if (d->n == d->cap) {
			char **v = array_grow(d->asins, &d->cap, sizeof(*v), 64);

			if (!v)
				goto oom;
			d->asins = v;
		}
		if (!(d->asins[d->n] = strdup(row[i].v.s)))
			goto oom;
		d->n++;
	}
	return 0;
oom:
	d->oom = true;
	return 1;
}

static void due_clear(struct due_scan *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->asins[i]);
	d->n = 0;
}

int products_buy_due(struct pctx *p, int64_t domain, int64_t *bought, char **errmsg)
{
	struct tg_filter f[2] = {{TG_EQ, TG_VINT(COL_PRODUCT_DUE, 1)}, {TG_EQ, TG_VINT(COL_DOMAIN, domain)}};
	struct due_scan d = {0};
	int rc = TG_OK;

	*bought = 0;
	for (;;) {
		size_t batch = product_batch_size(p);

		due_clear(&d);
		rc = p->svc->select(p->task, deals_table.name, f, 2, COL_ASIN, (int64_t)batch, due_fn, &d);
		if (d.oom)
			rc = err_set(errmsg, TG_ENOMEM, "out of memory");
		else if (rc < 0)
			storage_err(p, errmsg, rc, "storage: cannot select the rows waiting for products");
		if (rc || !d.n)
			break;
		rc = products_buy(p, domain, (const char *const *)d.asins, d.n, errmsg);
		if (rc)
			break;
		*bought += (int64_t)d.n;
	}
	due_clear(&d);
	free(d.asins);
	return rc < 0 ? rc : TG_OK;
}
