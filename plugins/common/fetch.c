/*
 * fetch.c - /deal pages, /product batches and the chunk transaction.
 */
#include "fetch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common.h"
#include "json_util.h"
#include "selection.h"

int deal_page_fetch(struct pctx *p, const struct selection *sel, int page, cJSON **resp, cJSON **dr,
                    int64_t *expected, char **errmsg)
{
	struct tg_keepa_request req = {.kind = KIND_DEAL, .units = 1, .path = "/deal"};
	cJSON *deals;
	char *body;
	int rc;

	*resp = NULL;
	*dr = NULL;
	*expected = -1;
	body = selection_body(sel, page);
	if (!body)
		return err_set(errmsg, TG_ENOMEM, "/deal: out of memory");
	req.json_body = body;
	rc = keepa_call(p, &req, resp, errmsg);
	free(body);
	if (rc)
		return rc;
	deals = cJSON_GetObjectItemCaseSensitive(*resp, "deals");
	*dr = cJSON_GetObjectItemCaseSensitive(deals, "dr");
	if (!cJSON_IsObject(deals) || !cJSON_IsArray(*dr)) {
		cJSON_Delete(*resp);
		*resp = NULL;
		*dr = NULL;
		return err_set(errmsg, TG_ENETWORK, "/deal page %d: the answer has no deals.dr array", page);
	}
	*expected = selection_expected(sel, deals);
	return TG_OK;
}

static int ref_cmp(const void *a, const void *b)
{
	return strcmp(((const struct product_ref *)a)->asin, ((const struct product_ref *)b)->asin);
}

static int cstr_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Keep one answer and index its products. */
static int set_take(struct product_set *set, cJSON *answer)
{
	cJSON **answers, *prod;
	const cJSON *products = cJSON_GetObjectItemCaseSensitive(answer, "products");

	answers = realloc(set->answers, (set->nanswers + 1) * sizeof(*answers));
	if (!answers)
		return TG_ENOMEM;
	set->answers = answers;
	set->answers[set->nanswers++] = answer;
	cJSON_ArrayForEach(prod, products)
	{
		const char *asin = json_asin(prod);

		if (!asin) {
			set->malformed++;
			continue;
		}
		if (set->nrefs == set->cap) {
			struct product_ref *refs = array_grow(set->refs, &set->cap, sizeof(*refs), 64);

			if (!refs)
				return TG_ENOMEM;
			set->refs = refs;
		}
		set->refs[set->nrefs++] = (struct product_ref){asin, prod};
	}
	return TG_OK;
}

/* One /product call for asins[0..n), halving on TG_EOVERSIZE. */
static int fetch_batch(struct pctx *p, int64_t domain, const char *const *asins, size_t n,
                       struct product_set *set, char **errmsg)
{
	struct tg_keepa_param params[6];
	struct tg_keepa_request req = {.kind = p->popts.kind, .path = "/product", .params = params};
	char dom[24], stats[24], offers[24], *csv;
	size_t len = 0, i, np = 0, total;
	cJSON *resp = NULL;
	int rc;

	for (i = 0; i < n; i++)
		len += strlen(asins[i]) + 1;
	total = len + 1;
	csv = malloc(total);
	if (!csv)
		return err_set(errmsg, TG_ENOMEM, "/product: out of memory");
	csv[0] = '\0';
	for (i = 0, len = 0; i < n; i++)
		len += (size_t)snprintf(csv + len, len < total ? total - len : 0, "%s%s", i ? "," : "", asins[i]);

	snprintf(dom, sizeof(dom), "%lld", (long long)domain);
	params[np++] = (struct tg_keepa_param){"domain", dom};
	params[np++] = (struct tg_keepa_param){"asin", csv};
	if (p->popts.stats_days > 0) {
		snprintf(stats, sizeof(stats), "%lld", (long long)p->popts.stats_days);
		params[np++] = (struct tg_keepa_param){"stats", stats};
	}
	params[np++] = (struct tg_keepa_param){"history", p->popts.history ? "1" : "0"};
	if (p->popts.offers > 0) {
		snprintf(offers, sizeof(offers), "%lld", (long long)p->popts.offers);
		params[np++] = (struct tg_keepa_param){"offers", offers};
	}
	req.nparams = np;
	req.units = (int64_t)n * p->popts.units_per_asin;

	rc = keepa_call(p, &req, &resp, errmsg);
	free(csv);
	if (rc == TG_EOVERSIZE && n > 1) {
		plog(p, TG_LOG_INFO, "/product batch of %zu ASINs is oversize: splitting it in two", n);
		if (errmsg) {
			free(*errmsg);
			*errmsg = NULL;
		}
		rc = fetch_batch(p, domain, asins, n / 2, set, errmsg);
		if (!rc)
			rc = fetch_batch(p, domain, asins + n / 2, n - n / 2, set, errmsg);
		return rc;
	}
	if (rc)
		return rc;
	if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(resp, "products"))) {
		cJSON_Delete(resp);
		return err_set(errmsg, TG_ENETWORK, "/product: the answer has no products array");
	}
	rc = set_take(set, resp);
	if (rc) {
		/* set_take keeps the answer once it is stored; otherwise free it. */
		if (!set->nanswers || set->answers[set->nanswers - 1] != resp)
			cJSON_Delete(resp);
		return err_set(errmsg, rc, "/product: out of memory");
	}
	return TG_OK;
}

int products_fetch(struct pctx *p, int64_t domain, const char *const *asins, size_t n,
                   struct product_set *set, char **errmsg)
{
	const char **uniq;
	size_t nu = 0, i, batch;
	int rc = TG_OK;

	if (n == 0)
		return TG_OK;
	uniq = malloc(n * sizeof(*uniq));
	if (!uniq)
		return err_set(errmsg, TG_ENOMEM, "/product: out of memory");
	memcpy(uniq, asins, n * sizeof(*uniq));
	qsort(uniq, n, sizeof(*uniq), cstr_cmp);
	for (i = 0; i < n; i++)
		if (nu == 0 || strcmp(uniq[nu - 1], uniq[i]))
			uniq[nu++] = uniq[i];

	batch = product_batch_size(p);
	for (i = 0; i < nu && !rc; i += batch)
		rc = fetch_batch(p, domain, uniq + i, nu - i < batch ? nu - i : batch, set, errmsg);
	free(uniq);
	if (set->nrefs)
		qsort(set->refs, set->nrefs, sizeof(*set->refs), ref_cmp);
	return rc;
}

const cJSON *product_set_find(const struct product_set *set, const char *asin)
{
	struct product_ref key = {asin, NULL}, *r;

	if (!set->nrefs)
		return NULL;
	r = bsearch(&key, set->refs, set->nrefs, sizeof(key), ref_cmp);
	return r ? r->product : NULL;
}

void product_set_release(struct product_set *set)
{
	size_t i;

	for (i = 0; i < set->nanswers; i++)
		cJSON_Delete(set->answers[i]);
	free(set->answers);
	free(set->refs);
	memset(set, 0, sizeof(*set));
}

static int row_exists_fn(void *ud, const struct tg_value *row, size_t n)
{
	(void)row;
	(void)n;
	*(bool *)ud = true;
	return 0;
}

struct deal_ctx deal_ctx_of(const struct pctx *p, const struct selection *sel, int64_t now)
{
	return (struct deal_ctx){
	    .domain = sel->domain,
	    .price_type = sel->price_type,
	    .date_range = sel->date_range,
	    .now_s = now,
	    .written_by = p->name,
	    .fees = &p->fees,
	};
}

int deal_store(struct pctx *p, const struct selection *sel, const cJSON *deal, const cJSON *product,
               int64_t now)
{
	struct deal_ctx ctx = deal_ctx_of(p, sel, now);
	const char *asin = json_asin(deal);
	struct tg_value key[2];
	struct deal_row row;
	bool exists = false, product_ok;
	int rc;

	if (!asin)
		return TG_EINVAL;
	/* first_seen is written only on insert: upsert() writes the named
	 * columns, so an existing row is upserted without it. */
	key[0] = TG_VINT(COL_DOMAIN, sel->domain);
	key[1] = TG_VTEXT(COL_ASIN, asin);
	rc = p->svc->get(p->task, deals_table.name, key, 2, row_exists_fn, &exists);
	if (rc < 0 && rc != TG_ENOTFOUND)
		return rc;
	rc = deal_row_build(&row, &ctx, deal, product, !exists, &product_ok);
	if (rc)
		return rc;
	if (row.refused) {
		p->counts.values_refused += row.refused;
		plog(p, TG_LOG_DEBUG, "deal %s: %s is not a 64-bit integer; left out of the row", asin,
		     row.refused_name);
	}
	if (!product) {
		p->counts.products_missing++;
		plog(p, TG_LOG_WARN, "product %s: not in the /product answer; deal columns written only",
		     asin);
	} else if (!product_ok) {
		p->counts.products_malformed++;
		plog(p, TG_LOG_DEBUG, "product %s: no usable stats; deal columns written only", asin);
	}
	rc = p->svc->upsert(p->task, deals_table.name, row.v, row.n);
	if (rc < 0)
		return rc;
	p->counts.written++;
	if (!exists)
		p->counts.inserted++;
	return TG_OK;
}

int chunk_commit(struct pctx *p, const struct selection *sel, cJSON *const *deals, size_t n,
                 const char *state_key, const char *state_value, char **errmsg)
{
	struct run_counts before = p->counts;
	struct product_set set = {0};
	const char **asins;
	size_t na = 0, i;
	int64_t now;
	int rc;

	asins = malloc((n ? n : 1) * sizeof(*asins));
	if (!asins)
		return err_set(errmsg, TG_ENOMEM, "out of memory");
	for (i = 0; i < n; i++) {
		const char *asin = json_asin(deals[i]);

		if (asin)
			asins[na++] = asin;
	}
	rc = products_fetch(p, sel->domain, asins, na, &set, errmsg);
	if (rc)
		goto free_set;
	if (set.malformed) {
		p->counts.products_malformed += set.malformed;
		plog(p, TG_LOG_WARN, "/product: %lld products without a valid asin skipped",
		     (long long)set.malformed);
	}

	now = now_s(p);
	rc = p->svc->begin(p->task);
	if (rc) {
		storage_err(p, errmsg, rc, "storage: cannot begin a transaction");
		goto free_set;
	}
	for (i = 0; i < n; i++) {
		const char *asin = json_asin(deals[i]);

		if (!asin) {
			p->counts.deals_skipped++;
			plog(p, TG_LOG_DEBUG, "deal without a valid asin skipped");
			continue;
		}
		rc = deal_store(p, sel, deals[i], product_set_find(&set, asin), now);
		if (rc) {
			storage_err(p, errmsg, rc, "storage: cannot write deal %s", asin);
			goto rollback;
		}
	}
	if (state_key) {
		rc = p->svc->state_set(p->task, state_key, state_value);
		if (rc) {
			storage_err(p, errmsg, rc, "storage: cannot set state %s", state_key);
			goto rollback;
		}
	}
	rc = p->svc->commit(p->task);
	if (rc) {
		storage_err(p, errmsg, rc, "storage: commit failed");
		goto rollback;
	}
	/* One line per chunk, not per item: a bad feed must not flood the log. */
	if (p->counts.deals_skipped != before.deals_skipped ||
	    p->counts.products_missing != before.products_missing ||
	    p->counts.products_malformed != before.products_malformed ||
	    p->counts.values_refused != before.values_refused)
		plog(p, TG_LOG_WARN,
		     "chunk of %zu deals: %lld without asin, %lld products missing, %lld malformed, "
		     "%lld numbers refused (not a 64-bit integer)",
		     n, (long long)(p->counts.deals_skipped - before.deals_skipped),
		     (long long)(p->counts.products_missing - before.products_missing),
		     (long long)(p->counts.products_malformed - before.products_malformed),
		     (long long)(p->counts.values_refused - before.values_refused));
	goto free_set;

rollback:
	p->svc->rollback(p->task);
free_set:
	product_set_release(&set);
	free(asins);
	return rc;
}
