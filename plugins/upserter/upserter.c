/*
 * upserter - the recency feed: reads the query sorted by deal age (sortType
 * 1, newest first) and writes what changed, buying /product only for the
 * deals that need it (see change.h).
 *
 * Keepa does not say whether "deal age" is creationDate or lastUpdate, so
 * the feed is read in a way that is right either way:
 *   - incremental runs read page after page until a page ends with a deal
 *     older than the watermark by creation AND by update (whichever time the
 *     feed is sorted by, every later deal is older still, so a new or
 *     re-priced deal is found either way), and write every deal at or after
 *     the watermark in either time; unchanged ones cost nothing;
 *   - the deep pages, where a feed sorted by creation keeps a deal whose
 *     lastUpdate moved, are swept a slice per run, as many pages as
 *     `full_scan_share` of the plan has paid for since the last run
 *     (feed.c); every deal on them is diffed against its row. Each read
 *     also shows which time the feed is sorted by (a time that rises along
 *     the feed is not its order): once the pages show the feed ordered by
 *     lastUpdate, the incremental read alone finds every change and the
 *     sweep stops;
 *   - a full scan reads the whole feed at least every `full_scan_s`, a
 *     safety net (a round of the sweep is not one: the feed moves under
 *     its cursor). Its default is the
 *     backfiller's rewalk_after_s (6 h): what no incremental read can find
 *     (a deal entering the result with an old lastUpdate, as its average
 *     moves) is found by either within that time, and a net of 30 minutes
 *     cost more tokens than the changes it guards (a 67-page feed every 30
 *     min is 11 tokens a minute).
 * Keepa caches a deal query about 120 s: a run within `cache_window_s` of
 * the first page of the last result would be answered from it, so it is
 * skipped without a call.
 *
 * Watermark (state key "watermark"), one line of text:
 *   "v2 <fingerprint> <creation_km> <update_km> <last_full_scan_unix_s>"
 * the newest creationDate and lastUpdate seen by a committed run, written in
 * the transaction of the rows it covers, so it never passes an uncommitted
 * deal. Policy "legacy" keeps tollgate 0.1's feed and its "v1" watermark
 * (legacy.c).
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
#include "json_util.h"
#include "selection.h"
#include "upserter.h"

static const struct tg_cost costs[] = {COST_DEAL, COST_PRODUCT, COST_PRODUCT_OFFERS};

static const struct tg_setting settings[] = {
    SETTING_QUERY,
    SETTINGS_PRODUCT,
    SETTINGS_FEES,
    SETTINGS_CHANGE,
    {"max_pages", TG_SETTING_INT, "67", "read at most this many /deal pages per incremental run (Keepa serves 67)"},
    {"first_run_pages", TG_SETTING_INT, "1",
     "without a watermark, read this many pages (older deals are the backfiller's)"},
    {"full_scan_s", TG_SETTING_INT, "21600",
     "read the whole feed at least this often, diffing lastUpdate against the rows (0: every run, -1: never)"},
    {"full_scan_share", TG_SETTING_REAL, "0.5",
     "the share of the plan the sweep of the deep pages may take, a slice per run (0: only full_scan_s)"},
    {"cache_window_s", TG_SETTING_INT, "120",
     "Keepa's deal cache window in seconds of the host's clock: no run starts within it of the last result read"},
    {"watermark_field", TG_SETTING_STRING, "lastUpdate",
     "policy legacy only: the deal time sortType 1 is trusted to order by (lastUpdate or creationDate)"},
};

int upserter_state_get(struct upserter *u, char **value)
{
	int rc;

	*value = NULL;
	rc = u->p.svc->state_get(u->p.task, STATE_KEY, value);
	if (rc == TG_ENOTFOUND || (rc == TG_OK && !*value)) {
		plog(&u->p, TG_LOG_INFO, "no watermark yet: reading the newest %" PRId64 " page(s)",
		     u->first_run_pages);
		return TG_ENOTFOUND;
	}
	return rc;
}

static int mark_load(struct upserter *u, struct mark *m)
{
	char *value = NULL, fp[17] = "", list[8];
	long long a = 0, b = 0, c = 0;
	int version = 0, n, rc;

	memset(m, 0, sizeof(*m));
	rc = upserter_state_get(u, &value);
	if (rc)
		return rc == TG_ENOTFOUND ? TG_OK : rc;
	n = sscanf(value, "v%d %16s %lld %lld %lld", &version, fp, &a, &b, &c);
	if (n >= 2 && strcmp(fp, u->sel.fp)) {
		plog(&u->p, TG_LOG_INFO, "the query changed (fingerprint %s): starting without a watermark",
		     u->sel.fp);
	} else if (version == 2 && n == 5) {
		*m = (struct mark){.valid = true, .created = a, .updated = b, .full_at = c};
	} else if (version == 1 && n >= 3 && sscanf(value, "v1 %*s %*d %7s", list) == 1) {
		/* A 0.1 watermark: its one minute bounds both times. */
		*m = (struct mark){.valid = true, .created = a, .updated = a};
	} else {
		plog(&u->p, TG_LOG_WARN, "watermark unreadable: starting without one");
	}
	u->p.svc->free(value);
	return TG_OK;
}

static void mark_format(char *buf, size_t len, const char *fp, const struct mark *m)
{
	snprintf(buf, len, "v2 %s %" PRId64 " %" PRId64 " %" PRId64, fp, m->created, m->updated, m->full_at);
}

static int upserter_init(struct tg_task *task, const struct tg_services *svc, void **state, char **errmsg)
{
	struct upserter *u;
	int rc;

	rc = services_check(svc, errmsg);
	if (rc)
		return rc;
	u = calloc(1, sizeof(*u));
	if (!u)
		return err_set(errmsg, TG_ENOMEM, "out of memory");
	u->p.task = task;
	u->p.svc = svc;
	u->p.name = "upserter";
	rc = product_opts_load(&u->p, errmsg);
	if (!rc)
		rc = fees_load(&u->p, &u->p.fees, errmsg);
	if (!rc)
		rc = change_opts_load(&u->p, errmsg);
	if (!rc)
		rc = setting_int_range(&u->p, "max_pages", 1, DEAL_MAX_PAGES, &u->max_pages, errmsg);
	if (!rc)
		rc = setting_int_range(&u->p, "first_run_pages", 1, DEAL_MAX_PAGES, &u->first_run_pages,
		                       errmsg);
	if (!rc)
		rc = setting_int_range(&u->p, "full_scan_s", -1, 10LL * 365 * 86400, &u->full_scan_s, errmsg);
	if (!rc) {
		rc = svc->setting_real(task, "full_scan_share", &u->full_scan_share);
		if (rc)
			err_set(errmsg, rc, "setting full_scan_share: cannot read a number (%d)", rc);
		else if (!(u->full_scan_share >= 0 && u->full_scan_share <= 1))
			rc = err_set(errmsg, TG_EINVAL, "setting full_scan_share = %g: must be within 0..1",
			             u->full_scan_share);
	}
	if (!rc)
		rc = setting_int_range(&u->p, "cache_window_s", 0, 3600, &u->cache_window_ms, errmsg);
	u->cache_window_ms *= 1000;
	if (!rc) {
		rc = svc->setting_string(task, "watermark_field", &u->time_field);
		if (rc)
			err_set(errmsg, rc, "setting watermark_field: cannot read a string (%d)", rc);
		else if (strcmp(u->time_field, "lastUpdate") && strcmp(u->time_field, "creationDate"))
			rc = err_set(errmsg, TG_EINVAL,
			             "setting watermark_field = \"%s\": lastUpdate or creationDate",
			             u->time_field);
	}
	if (!rc)
		rc = selection_load(&u->sel, &u->p, 1, errmsg);
	if (rc)
		goto free_u;
	rc = svc->table_declare(task, &deals_table, errmsg);
	if (rc)
		goto release_sel;
	*state = u;
	return TG_OK;

release_sel:
	selection_release(&u->sel);
free_u:
	free(u);
	return rc;
}

/* Ask the host (ABI 1.2) not to start the next run before Keepa's cache of
 * the last result read expires: a run inside the window would find nothing to read, and
 * the one after it would come a whole schedule late. Bounded by the
 * window, whatever the wall clock did. */
static void not_before_cache_expiry(struct upserter *u)
{
	int64_t left;

	if (!u->last_read_ms || !TG_SERVICES_HAS(u->p.svc, not_before_ms))
		return;
	left = u->last_read_ms + u->cache_window_ms - u->p.svc->now_ms(u->p.task);
	if (left > u->cache_window_ms)
		left = u->cache_window_ms;
	if (left > 0)
		u->p.svc->not_before_ms(u->p.task, left);
}

/* Write deals and the watermark that covers them in one transaction. */
static int store_commit(struct upserter *u, cJSON **deals, size_t n, const struct mark *next, int64_t now,
                        struct asin_list *due, int64_t *changed, char **errmsg)
{
	char value[128];

	mark_format(value, sizeof(value), u->sel.fp, next);
	return page_store_commit(&u->p, &u->sel, deals, n, now, due, changed, STATE_KEY, value, errmsg);
}

/* The run's share of the sweep, for its log line: " (sweep: pages 3-5)". */
static void sweep_describe(const struct feed *f, char *out, size_t len)
{
	if (!f->sweep_pages)
		*out = '\0';
	else
		snprintf(out, len, " (sweep: pages %" PRId64 "-%" PRId64 "%s)", f->sweep_first,
		         f->sweep_first + f->sweep_pages - 1, f->sweep_done ? ", the end of the feed" : "");
}

static int upserter_run(void *state, int64_t *idle_s, char **errmsg)
{
	struct upserter *u = state;
	struct asin_list due = {0};
	struct feed f = {.max_created = -1, .max_updated = -1};
	struct mark m, next;
	int64_t now, now_ms, changed = 0;
	char sweep[80];
	bool full;
	int rc, swept = TG_OK; /* the sweep's outcome */

	(void)idle_s;
	memset(&u->p.counts, 0, sizeof(u->p.counts));
	if (u->p.legacy)
		return upserter_run_legacy(u, errmsg);
	now_ms = u->p.svc->now_ms(u->p.task);
	if (u->last_read_ms && now_ms - u->last_read_ms < u->cache_window_ms) {
		plog(&u->p, TG_LOG_DEBUG,
"the last result was read %" PRId64 " ms ago, inside Keepa's cache window: it would answer the same",
		     now_ms - u->last_read_ms);
		not_before_cache_expiry(u);
		return TG_OK;
	}
	rc = mark_load(u, &m);
	if (rc)
		return err_set(errmsg, rc, "cannot read the watermark (%d)", rc);
	now = now_s(&u->p);
	/* The sweep's credit accrues from the first run on. */
	if (!u->sweep_credit_ms)
		u->sweep_credit_ms = now_ms;
	/* The safety net, and a read that fell behind: the whole feed. */
	full = m.valid && (u->catch_up || (u->full_scan_s >= 0 && now - m.full_at >= u->full_scan_s));
	rc = feed_read(u, &m, full, &f, errmsg);
	if (rc)
		goto release;
	next = m;
	next.valid = true;
	if (f.max_created > next.created)
		next.created = f.max_created;
	if (f.max_updated > next.updated)
		next.updated = f.max_updated;
	if (full || !m.valid)
		next.full_at = now;
	/* The top of the feed is committed before the sweep reads on: new
	 * deals do not wait for the deep pages' tokens. */
	rc = store_commit(u, f.deals, f.n, &next, now, &due, &changed, errmsg);
	if (rc)
		goto release;
	if (full) {
		u->catch_up = false;
		u->sweep_page = 0; /* the next round starts at the top */
	}
	if (m.valid && !full && !f.reached_end && !u->catch_up && feed_sweeps(u)) {
		size_t top = f.n;

		swept = feed_sweep(u, &f, errmsg);
		if (!swept && f.sweep_pages)
			swept = store_commit(u, f.deals + top, f.n - top, &next, now, &due, &changed, errmsg);
		/* It goes on from where this committed slice ended. */
		if (!swept && f.sweep_pages)
			u->sweep_page = f.sweep_next;
	} else {
		feed_sweep_skip(u, u->p.svc->now_ms(u->p.task));
	}
	feed_order_learn(u, &f);
	/* Products after the commits, for what committed even if the sweep
	 * failed: a failure leaves the rows marked product_due for the next
	 * purchase, never a gap. */
	if (swept) {
		char *lost = NULL; /* the sweep's error is the run's */

		products_buy(&u->p, u->sel.domain, due.v, due.n, &lost);
		free(lost);
		rc = swept;
	} else {
		rc = products_buy(&u->p, u->sel.domain, due.v, due.n, errmsg);
	}
	u->p.svc->progress(u->p.task, changed, changed, "changes");
release:
	sweep_describe(&f, sweep, sizeof(sweep));
	plog(&u->p, rc ? TG_LOG_WARN : TG_LOG_INFO,
	     "%s: %zu pages read%s%s, %zu deals written, %" PRId64 " new or changed, %" PRId64
	     " older than their rows (kept), %" PRId64 " products bought; watermark created %" PRId64
	     " updated %" PRId64,
	     rc ? "run interrupted" : "run done", f.npages, full ? " (full scan)" : "", sweep, f.n, changed,
	     u->p.counts.deals_older, u->p.counts.products_bought, f.max_created, f.max_updated);
	asin_list_release(&due);
	feed_release(&f);
	not_before_cache_expiry(u);
	return rc;
}

static void upserter_destroy(void *state)
{
	struct upserter *u = state;

	if (!u)
		return;
	selection_release(&u->sel);
	free(u);
}

static const struct tg_plugin plugin = {
    .abi_major = TG_ABI_MAJOR,
    .abi_minor = TG_ABI_MINOR,
    .struct_size = sizeof(struct tg_plugin),
    .name = "upserter",
    .version = "1.2.0",
    .description = "keeps the deals table fresh from the newest deals, paying only for what changed",
    .costs = costs,
    .ncosts = sizeof(costs) / sizeof(costs[0]),
    .settings = settings,
    .nsettings = sizeof(settings) / sizeof(settings[0]),
    .init = upserter_init,
    .run = upserter_run,
    .destroy = upserter_destroy,
};

TG_EXPORT const struct tg_plugin *TG_PLUGIN_ENTRY(void)
{
	return &plugin;
}
