/*
 * backfiller - walks every page of the configured /deal query and stores
 * every deal, paying only for change.
 *
 * A walk has two phases. Pages: every page of the query is read back to
 * back, so the pages come from one cached result of Keepa's (a query is
 * cached about 120 s and paged from that frozen result); each page's deals
 * are written from the page itself, in one transaction with the checkpoint,
 * and the deals that are new, changed or whose product data is too old are
 * marked product_due. When the pages of a pass took longer than the cache
 * window (a low plan, a busy bucket), page boundaries may have moved between
 * results, so the pages are read again in a fresh window (up to
 * `walk_passes` passes): a deal skipped by one pass is caught by the next,
 * and re-reading costs pages only, never products. Products: then the
 * marked rows are bought in batches (see change.h), which is where the
 * tokens go; a rewalk of an unchanged catalogue buys none.
 *
 * Checkpoint (state key "walk"), one line of text:
 *   "v2 <fp> pages <page> <done> <pass> <first_ms>"  next page of this pass
 *   "v2 <fp> products <done>"                         buying marked products
 *   "v1 <fp> done <finished_unix_s> <done>"          the walk is complete
 *   "v1 <fp> walk <page> <offset> <done>"            policy "legacy" (0.1):
 *       pages and products interleaved, every product bought every walk.
 * A fingerprint other than the configured query's starts a fresh walk.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <tollgate/tollgate.h>

#include "change.h"
#include "common.h"
#include "fetch.h"
#include "selection.h"

#define STATE_KEY "walk"

struct backfiller {
	struct pctx p;
	struct selection sel;
	int64_t rewalk_after_s;
	int64_t walk_passes;
	int64_t cache_window_ms; /* Keepa's deal cache window, host clock */
	int64_t last_read_ms;    /* host time of the last /deal answer */
};

static const struct tg_cost costs[] = {COST_DEAL, COST_PRODUCT, COST_PRODUCT_OFFERS};

static const struct tg_setting settings[] = {
    SETTING_QUERY,
    SETTINGS_PRODUCT,
    SETTINGS_FEES,
    SETTINGS_CHANGE,
    {"rewalk_after_s", TG_SETTING_INT, "21600",
     "after a complete walk, stay idle this long before walking again (-1: never)"},
    {"walk_passes", TG_SETTING_INT, "3",
     "read a walk's pages again (pages only) until one pass fits the cache window, at most this often"},
    {"cache_window_s", TG_SETTING_INT, "120",
     "Keepa's deal cache window in seconds of the host's clock (scale it for an accelerated simulator)"},
};

/* Where the walk stands. */
enum phase { PH_LEGACY, PH_PAGES, PH_PRODUCTS, PH_DONE };

struct walk {
	enum phase phase;
	bool done;
	int64_t page, offset, count, finished_s;
	int64_t pass, first_ms; /* PH_PAGES: this pass, when its page 0 came back */
};

/* Read the checkpoint: *found tells whether it holds a walk of this query;
 * *other_query whether it belongs to another one. A storage error is
 * returned, never read as "no checkpoint". */
static int walk_load(struct backfiller *b, struct walk *w, bool *found, bool *other_query)
{
	char *value = NULL, fp[17] = "", what[9] = "";
	long long a = 0, c = 0, d = 0, e = 0;
	int version = 0, n, rc;

	*found = *other_query = false;
	memset(w, 0, sizeof(*w));
	rc = b->p.svc->state_get(b->p.task, STATE_KEY, &value);
	if (rc == TG_ENOTFOUND || (rc == TG_OK && !value))
		return TG_OK;
	if (rc)
		return rc;
	/* "v<version> <fp> <what> <numbers...>"; n counts the numbers. */
	n = sscanf(value, "v%d %16s %8s %lld %lld %lld %lld", &version, fp, what, &a, &c, &d, &e) - 3;
	if (n >= -1 && strcmp(fp, b->sel.fp) != 0) {
		*other_query = true;
	} else if (version == 2 && n == 4 && !strcmp(what, "pages") && a >= 0 && a < DEAL_MAX_PAGES && c >= 0 &&
	           d >= 1) {
		*w = (struct walk){.phase = PH_PAGES, .page = a, .count = c, .pass = d, .first_ms = e};
		*found = true;
	} else if (version == 2 && n == 1 && !strcmp(what, "products") && a >= 0) {
		*w = (struct walk){.phase = PH_PRODUCTS, .count = a};
		*found = true;
	} else if (version == 1 && n == 2 && !strcmp(what, "done") && c >= 0) {
		*w = (struct walk){.phase = PH_DONE, .done = true, .finished_s = a, .count = c};
		*found = true;
	} else if (version == 1 && n == 3 && !strcmp(what, "walk") && a >= 0 && a < DEAL_MAX_PAGES && c >= 0 &&
	           d >= 0) {
		*w = (struct walk){.phase = PH_LEGACY, .page = a, .offset = c, .count = d};
		*found = true;
	} else {
		plog(&b->p, TG_LOG_WARN, "checkpoint \"%s\" unreadable: starting a fresh walk", value);
	}
	b->p.svc->free(value);
	return TG_OK;
}

static void walk_format(char *buf, size_t len, const char *fp, const struct walk *w)
{
	if (!w->done && w->phase == PH_PAGES)
		snprintf(buf, len, "v2 %s pages %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64, fp, w->page, w->count,
		         w->pass, w->first_ms);
	else if (!w->done && w->phase == PH_PRODUCTS)
		snprintf(buf, len, "v2 %s products %" PRId64, fp, w->count);
	else if (w->done)
		snprintf(buf, len, "v1 %s done %" PRId64 " %" PRId64, fp, w->finished_s, w->count);
	else
		snprintf(buf, len, "v1 %s walk %" PRId64 " %" PRId64 " %" PRId64, fp, w->page, w->offset,
		         w->count);
}

static int backfiller_init(struct tg_task *task, const struct tg_services *svc, void **state, char **errmsg)
{
	struct backfiller *b;
	int rc;

	rc = services_check(svc, errmsg);
	if (rc)
		return rc;
	b = calloc(1, sizeof(*b));
	if (!b)
		return err_set(errmsg, TG_ENOMEM, "out of memory");
	b->p.task = task;
	b->p.svc = svc;
	b->p.name = "backfiller";
	rc = product_opts_load(&b->p, errmsg);
	if (!rc)
		rc = fees_load(&b->p, &b->p.fees, errmsg);
	if (!rc)
		rc = change_opts_load(&b->p, errmsg);
	if (!rc)
		rc = setting_int_range(&b->p, "rewalk_after_s", -1, 10LL * 365 * 86400, &b->rewalk_after_s,
		                       errmsg);
	if (!rc)
		rc = setting_int_range(&b->p, "walk_passes", 1, 10, &b->walk_passes, errmsg);
	if (!rc)
		rc = setting_int_range(&b->p, "cache_window_s", 1, 3600, &b->cache_window_ms, errmsg);
	b->cache_window_ms *= 1000;
	if (!rc)
		rc = selection_load(&b->sel, &b->p, 0, errmsg);
	if (rc)
		goto free_b;
	/* products_buy_due() selects product_due = 1 of a domain by asin. */
	rc = deals_table_setup(task, svc, (const char *const[]){COL_PRODUCT_DUE, NULL}, errmsg);
	if (rc)
		goto release_sel;
	*state = b;
	return TG_OK;

release_sel:
	selection_release(&b->sel);
free_b:
	free(b);
	return rc;
}

static void log_counts(struct backfiller *b, const char *what, const struct walk *w)
{
	const struct run_counts *c = &b->p.counts;

	plog(&b->p, TG_LOG_INFO,
	     "%s: %" PRId64 " deals walked; this run wrote %" PRId64 " rows (%" PRId64 " new), bought %" PRId64
	     " products, %" PRId64 " deals unchanged (no product bought), %" PRId64
	     " older than their rows (kept), skipped %" PRId64 " deals without asin, %" PRId64
	     " products missing, %" PRId64 " malformed, %" PRId64 " Keepa calls",
	     what, w->count, c->written, c->inserted, c->products_bought, c->products_skipped, c->deals_older,
	     c->deals_skipped, c->products_missing, c->products_malformed, c->keepa_calls);
}

/* Commit a checkpoint on its own (a page that had nothing left to do). */
static int walk_commit(struct backfiller *b, const struct walk *w, char **errmsg)
{
	char value[160];

	walk_format(value, sizeof(value), b->sel.fp, w);
	return page_store_commit(&b->p, &b->sel, NULL, 0, now_s(&b->p), NULL, NULL, STATE_KEY, value, errmsg);
}

/* Do the deals of one page from w->offset, chunk by chunk. */
static int walk_page(struct backfiller *b, struct walk *w, cJSON *dr, bool last, int64_t expected,
                     char **errmsg)
{
	size_t len = (size_t)cJSON_GetArraySize(dr), i = 0;
	cJSON **deals, *d;
	int rc = TG_OK;

	deals = malloc((len ? len : 1) * sizeof(*deals));
	if (!deals)
		return err_set(errmsg, TG_ENOMEM, "out of memory");
	cJSON_ArrayForEach(d, dr) deals[i++] = d;

	while ((size_t)w->offset < len) {
		size_t off = (size_t)w->offset, k = product_batch_size(&b->p), end;
		struct walk next = *w;
		char value[160];

		end = off + k < len ? off + k : len;
		next.count = w->count + (int64_t)(end - off);
		if (end < len) {
			next.offset = (int64_t)end;
		} else if (last) {
			next.done = true;
			next.finished_s = now_s(&b->p);
		} else {
			next.page = w->page + 1;
			next.offset = 0;
		}
		walk_format(value, sizeof(value), b->sel.fp, &next);
		rc = chunk_commit(&b->p, &b->sel, deals + off, end - off, STATE_KEY, value, errmsg);
		if (rc)
			break;
		*w = next;
		/* An announced total below what is done is no estimate. */
		b->p.svc->progress(b->p.task, w->count,
		                   w->done                ? w->count
		                   : expected >= w->count ? expected
		                                          : -1,
		                   "deals");
		if (w->done || w->offset == 0)
			break;
	}
	free(deals);
	return rc;
}

/* Policy "legacy" (tollgate 0.1): each page's products are bought before the
 * next page is read, so on a low plan pages come from different results. */
static int walk_legacy(struct backfiller *b, struct walk *w, int64_t *expected, char **errmsg)
{
	int rc = TG_OK;

	while (!w->done) {
		cJSON *resp = NULL, *dr = NULL;
		int64_t len, page_expected;
		bool last;

		rc = deal_page_fetch(&b->p, &b->sel, (int)w->page, &resp, &dr, &page_expected, errmsg);
		if (rc)
			break;
		if (page_expected >= 0)
			*expected = page_expected;
		len = cJSON_GetArraySize(dr);
		last = len < DEAL_PAGE_SIZE || w->page + 1 >= DEAL_MAX_PAGES;
		if (w->offset > len)
			w->offset = len; /* the page shrank since the checkpoint */
		if (w->offset == len) {
			/* Nothing left on this page: move on without a chunk. */
			if (last) {
				w->done = true;
				w->finished_s = now_s(&b->p);
			} else {
				w->page++;
				w->offset = 0;
			}
			rc = walk_commit(b, w, errmsg);
		} else {
			int64_t page = w->page;

			rc = walk_page(b, w, dr, last, *expected, errmsg);
			if (!rc)
				plog(&b->p, TG_LOG_INFO, "page %" PRId64 " done: %" PRId64 " deals of %s%" PRId64, page,
				     w->count, *expected >= 0 ? "~" : "", *expected >= 0 ? *expected : w->count);
		}
		cJSON_Delete(resp);
		if (rc)
			break;
	}
	return rc;
}

/* The next state after page w->page of len deals was read at t_ms. */
static struct walk pages_next(struct backfiller *b, const struct walk *w, int64_t len, int64_t t_ms)
{
	struct walk next = *w;
	int64_t span = t_ms - w->first_ms;

	next.count = w->count + len;
	if (len == DEAL_PAGE_SIZE && w->page + 1 < DEAL_MAX_PAGES) {
		next.page++;
	} else if (span <= b->cache_window_ms * 4 / 5 || w->pass >= b->walk_passes) {
		if (span > b->cache_window_ms * 4 / 5)
			plog(&b->p, TG_LOG_WARN,
			     "pass %" PRId64 " of the walk took %" PRId64 " ms, more than 4/5 of the cache window of %" PRId64
			     " ms, and walk_passes is reached: deals at page boundaries may wait for the next walk",
			     w->pass, span, b->cache_window_ms);
		next.phase = PH_PRODUCTS;
	} else {
		plog(&b->p, TG_LOG_INFO,
		     "pass %" PRId64 " of the walk took %" PRId64 " ms, more than 4/5 of the cache window of %" PRId64
		     " ms (the margin for the clocks): pages may come from different results, reading them again (pages only)",
		     w->pass, span, b->cache_window_ms);
		next.page = 0;
		next.count = 0;
		next.pass++;
	}
	return next;
}

/* Phase pages: read the pages back to back, each one stored from the page
 * itself with the checkpoint. *wait_ms > 0: a new pass must wait that long
 * for a fresh cache window first. */
static int walk_pages(struct backfiller *b, struct walk *w, int64_t *expected, int64_t *wait_ms, char **errmsg)
{
	int rc = TG_OK;

	*wait_ms = 0;
	while (w->phase == PH_PAGES) {
		cJSON *resp = NULL, *dr = NULL, **deals = NULL, *d;
		int64_t page_expected, t, len, changed = 0;
		char value[160];
		struct walk next;
		size_t i = 0;

		t = b->p.svc->now_ms(b->p.task);
		/* A pass starts in a window of its own, or it would page the
		 * previous pass's result. */
		if (w->page == 0 && b->last_read_ms && t - b->last_read_ms < b->cache_window_ms) {
			*wait_ms = b->cache_window_ms - (t - b->last_read_ms);
			return TG_OK;
		}
		rc = deal_page_fetch(&b->p, &b->sel, (int)w->page, &resp, &dr, &page_expected, errmsg);
		if (rc)
			return rc;
		t = b->last_read_ms = b->p.svc->now_ms(b->p.task);
		if (w->page == 0)
			w->first_ms = t;
		if (page_expected >= 0)
			*expected = page_expected;
		len = cJSON_GetArraySize(dr);
		deals = malloc((size_t)(len ? len : 1) * sizeof(*deals));
		if (!deals) {
			cJSON_Delete(resp);
			return err_set(errmsg, TG_ENOMEM, "out of memory");
		}
		cJSON_ArrayForEach(d, dr) deals[i++] = d;
		next = pages_next(b, w, len, t);
		walk_format(value, sizeof(value), b->sel.fp, &next);
		rc = page_store_commit(&b->p, &b->sel, deals, (size_t)len, now_s(&b->p), NULL, &changed, STATE_KEY,
		                       value, errmsg);
		free(deals);
		cJSON_Delete(resp);
		if (rc)
			return rc;
		plog(&b->p, TG_LOG_DEBUG, "pass %" PRId64 " page %" PRId64 ": %" PRId64 " deals, %" PRId64 " new or changed",
		     w->pass, w->page, len, changed);
		*w = next;
		b->p.svc->progress(b->p.task, w->count, *expected >= w->count ? *expected : -1, "deals");
	}
	return rc;
}

/* Phase products: buy what the pages marked, then the walk is done. */
static int walk_products(struct backfiller *b, struct walk *w, char **errmsg)
{
	int64_t bought = 0;
	int rc;

	rc = products_buy_due(&b->p, b->sel.domain, &bought, errmsg);
	if (rc)
		return rc;
	w->done = true;
	w->phase = PH_DONE;
	w->finished_s = now_s(&b->p);
	plog(&b->p, TG_LOG_INFO, "walk products: %" PRId64 " bought for new or changed deals", bought);
	return walk_commit(b, w, errmsg);
}

static int backfiller_run(void *state, int64_t *idle_s, char **errmsg)
{
	struct backfiller *b = state;
	struct walk w;
	bool found, other;
	int64_t expected = -1, wait_ms = 0;
	int rc;

	memset(&b->p.counts, 0, sizeof(b->p.counts));
	rc = walk_load(b, &w, &found, &other);
	if (rc)
		return storage_err(&b->p, errmsg, rc, "storage: cannot read the checkpoint");
	if (found && w.done) {
		int64_t wake = w.finished_s + b->rewalk_after_s, now = now_s(&b->p);

		if (b->rewalk_after_s < 0) {
			*idle_s = TG_IDLE_FOREVER;
			return TG_OK;
		}
		if (now < wake) {
			*idle_s = wake - now;
			return TG_OK;
		}
		plog(&b->p, TG_LOG_INFO, "walking the query again (%" PRId64 " deals last time)", w.count);
		found = false;
	} else if (found && w.phase == PH_PRODUCTS) {
		plog(&b->p, TG_LOG_INFO, "resuming the walk: buying the products its pages marked (%" PRId64 " deals read)",
		     w.count);
	} else if (found && w.phase == PH_PAGES) {
		plog(&b->p, TG_LOG_INFO, "resuming the walk at page %" PRId64 " of pass %" PRId64 " (%" PRId64 " deals read)",
		     w.page, w.pass, w.count);
	} else if (found) {
		plog(&b->p, TG_LOG_INFO,
		     "resuming the walk at page %" PRId64 ", offset %" PRId64 " (%" PRId64 " deals done)", w.page,
		     w.offset, w.count);
	} else if (other) {
		plog(&b->p, TG_LOG_INFO, "the query changed (fingerprint %s): starting a fresh walk", b->sel.fp);
	} else {
		plog(&b->p, TG_LOG_INFO, "starting a walk of the query (fingerprint %s)", b->sel.fp);
	}
	if (!found)
		w = (struct walk){.phase = PH_PAGES, .pass = 1};
	/* A checkpoint of the other policy carries on from its page. */
	if (b->p.legacy && w.phase != PH_LEGACY)
		w = (struct walk){.phase = PH_LEGACY, .page = w.phase == PH_PAGES ? w.page : 0};
	else if (!b->p.legacy && w.phase == PH_LEGACY)
		w = (struct walk){.phase = PH_PAGES, .page = w.page, .pass = 1};

	if (w.phase == PH_LEGACY) {
		rc = walk_legacy(b, &w, &expected, errmsg);
	} else {
		rc = walk_pages(b, &w, &expected, &wait_ms, errmsg);
		if (!rc && wait_ms > 0) {
			/* Not a pacing sleep: the next pass needs a fresh result. */
			*idle_s = (wait_ms + 999) / 1000;
			return TG_OK;
		}
		if (!rc && w.phase == PH_PRODUCTS)
			rc = walk_products(b, &w, errmsg);
	}
	if (rc) {
		log_counts(b, rc == TG_ESTOPPED ? "stopped" : "walk interrupted", &w);
		return rc;
	}
	b->p.svc->progress(b->p.task, w.count, w.count, "deals");
	log_counts(b, "walk complete", &w);
	*idle_s = b->rewalk_after_s < 0 ? TG_IDLE_FOREVER : b->rewalk_after_s;
	return TG_OK;
}

static void backfiller_destroy(void *state)
{
	struct backfiller *b = state;

	if (!b)
		return;
	selection_release(&b->sel);
	free(b);
}

static const struct tg_plugin plugin = {
    .abi_major = TG_ABI_MAJOR,
    .abi_minor = TG_ABI_MINOR,
    .struct_size = sizeof(struct tg_plugin),
    .name = "backfiller",
    .version = "1.1.0",
    .description = "walks every page of the deal query and stores each deal with its product",
    .costs = costs,
    .ncosts = sizeof(costs) / sizeof(costs[0]),
    .settings = settings,
    .nsettings = sizeof(settings) / sizeof(settings[0]),
    .init = backfiller_init,
    .run = backfiller_run,
    .destroy = backfiller_destroy,
};

TG_EXPORT const struct tg_plugin *TG_PLUGIN_ENTRY(void)
{
	return &plugin;
}
