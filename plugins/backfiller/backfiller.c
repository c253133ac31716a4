/*
 * backfiller - walks every page of the configured /deal query, fetches the
 * products of each chunk and upserts the deals table, checkpointing after
 * every chunk in the same transaction as the chunk's rows.
 *
 * Checkpoint (state key "walk"), one line of text:
 *   "v1 <fingerprint> walk <page> <offset> <done>"  next deal to do
 *   "v1 <fingerprint> done <finished_unix_s> <done>" the walk is complete
 * A fingerprint other than the configured query's starts a fresh walk.
 * Resuming inside a page assumes Keepa serves the page in the same order as
 * before the interruption; when the page changed meanwhile, some deals of
 * it may be skipped or redone until the next walk, never duplicated (the
 * table's key is (domain, asin)).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <tollgate/tollgate.h>

#include "common.h"
#include "fetch.h"
#include "selection.h"

#define STATE_KEY "walk"

struct backfiller {
	struct pctx p;
	struct selection sel;
	int64_t rewalk_after_s;
};

static const struct tg_cost costs[] = {COST_DEAL, COST_PRODUCT, COST_PRODUCT_OFFERS};

static const struct tg_setting settings[] = {
    SETTING_QUERY,
    SETTINGS_PRODUCT,
    SETTINGS_FEES,
    {"rewalk_after_s", TG_SETTING_INT, "21600",
     "after a complete walk, stay idle this long before walking again (-1: never)"},
};

/* Where the walk stands. */
struct walk {
	bool done;
	int64_t page, offset, count, finished_s;
};

/* Read the checkpoint: *found tells whether it holds a walk of this query;
 * *other_query whether it belongs to another one. A storage error is
 * returned, never read as "no checkpoint". */
static int walk_load(struct backfiller *b, struct walk *w, bool *found, bool *other_query)
{
	char *value = NULL, fp[17], what[8];
	long long a, c, d = 0;
	int n, rc;

	*found = *other_query = false;
	memset(w, 0, sizeof(*w));
	rc = b->p.svc->state_get(b->p.task, STATE_KEY, &value);
	if (rc == TG_ENOTFOUND || (rc == TG_OK && !value))
		return TG_OK;
	if (rc)
		return rc;
	n = sscanf(value, "v1 %16s %7s %lld %lld %lld", fp, what, &a, &c, &d);
	if (n >= 2 && strcmp(fp, b->sel.fp) != 0) {
		*other_query = true;
	} else if (n == 4 && !strcmp(what, "done") && c >= 0) {
		w->done = true;
		w->finished_s = a;
		w->count = c;
		*found = true;
	} else if (n == 5 && !strcmp(what, "walk") && a >= 0 && a < DEAL_MAX_PAGES && c >= 0 && d >= 0) {
		w->page = a;
		w->offset = c;
		w->count = d;
		*found = true;
	} else {
		plog(&b->p, TG_LOG_WARN, "checkpoint \"%s\" unreadable: starting a fresh walk", value);
	}
	b->p.svc->free(value);
	return TG_OK;
}

static void walk_format(char *buf, size_t len, const char *fp, const struct walk *w)
{
	if (w->done)
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
		rc = setting_int_range(&b->p, "rewalk_after_s", -1, 10LL * 365 * 86400, &b->rewalk_after_s,
		                       errmsg);
	if (!rc)
		rc = selection_load(&b->sel, &b->p, 0, errmsg);
	if (rc)
		goto free_b;
	rc = svc->table_declare(task, &deals_table, errmsg);
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
	     "%s: %" PRId64 " deals walked; this run wrote %" PRId64 " rows (%" PRId64
	     " new), skipped %" PRId64 " deals without asin, %" PRId64 " products missing, %" PRId64
	     " malformed, %" PRId64 " Keepa calls",
	     what, w->count, c->written, c->inserted, c->deals_skipped, c->products_missing,
	     c->products_malformed, c->keepa_calls);
}

/* Commit a checkpoint on its own (a page that had nothing left to do). */
static int walk_commit(struct backfiller *b, const struct walk *w, char **errmsg)
{
	char value[128];
	int rc;

	walk_format(value, sizeof(value), b->sel.fp, w);
	rc = b->p.svc->begin(b->p.task);
	if (rc)
		return storage_err(&b->p, errmsg, rc, "storage: cannot begin");
	rc = b->p.svc->state_set(b->p.task, STATE_KEY, value);
	if (!rc)
		rc = b->p.svc->commit(b->p.task);
	if (rc) {
		b->p.svc->rollback(b->p.task);
		return storage_err(&b->p, errmsg, rc, "storage: cannot save the checkpoint");
	}
	return TG_OK;
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
		char value[128];

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

static int backfiller_run(void *state, int64_t *idle_s, char **errmsg)
{
	struct backfiller *b = state;
	struct walk w;
	bool found, other;
	int64_t expected = -1;
	int rc;

	memset(&b->p.counts, 0, sizeof(b->p.counts));
	rc = walk_load(b, &w, &found, &other);
	if (rc)
		return storage_err(&b->p, errmsg, rc, "storage: cannot read the checkpoint");
	if (found) {
		if (w.done) {
			int64_t wake = w.finished_s + b->rewalk_after_s, now = now_s(&b->p);

			if (b->rewalk_after_s < 0) {
				*idle_s = TG_IDLE_FOREVER;
				return TG_OK;
			}
			if (now < wake) {
				*idle_s = wake - now;
				return TG_OK;
			}
			plog(&b->p, TG_LOG_INFO, "walking the query again (%" PRId64 " deals last time)",
			     w.count);
			memset(&w, 0, sizeof(w));
		} else {
			plog(&b->p, TG_LOG_INFO,
			     "resuming the walk at page %" PRId64 ", offset %" PRId64 " (%" PRId64
			     " deals done)",
			     w.page, w.offset, w.count);
		}
	} else if (other) {
		plog(&b->p, TG_LOG_INFO, "the query changed (fingerprint %s): starting a fresh walk",
		     b->sel.fp);
	} else {
		plog(&b->p, TG_LOG_INFO, "starting a walk of the query (fingerprint %s)", b->sel.fp);
	}

	while (!w.done) {
		cJSON *resp = NULL, *dr = NULL;
		int64_t len, page_expected;
		bool last;

		rc = deal_page_fetch(&b->p, &b->sel, (int)w.page, &resp, &dr, &page_expected, errmsg);
		if (rc)
			break;
		if (page_expected >= 0)
			expected = page_expected;
		len = cJSON_GetArraySize(dr);
		last = len < DEAL_PAGE_SIZE || w.page + 1 >= DEAL_MAX_PAGES;
		if (w.offset > len)
			w.offset = len; /* the page shrank since the checkpoint */
		if (w.offset == len) {
			/* Nothing left on this page: move on without a chunk. */
			if (last) {
				w.done = true;
				w.finished_s = now_s(&b->p);
			} else {
				w.page++;
				w.offset = 0;
			}
			rc = walk_commit(b, &w, errmsg);
		} else {
			int64_t page = w.page;

			rc = walk_page(b, &w, dr, last, expected, errmsg);
			if (!rc)
				plog(&b->p, TG_LOG_INFO,
				     "page %" PRId64 " done: %" PRId64 " deals of %s%" PRId64, page, w.count,
				     expected >= 0 ? "~" : "", expected >= 0 ? expected : w.count);
		}
		cJSON_Delete(resp);
		if (rc)
			break;
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
    .version = "1.0.0",
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
