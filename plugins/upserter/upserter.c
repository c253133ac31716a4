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
 *   - a full scan reads the whole feed and diffs lastUpdate against the
 *     rows, which catches what an order by creation leaves deep in the feed
 *     (a deal whose lastUpdate moved but whose creation did not). It runs as
 *     often as `full_scan_share` of the plan pays for (the pages of the last
 *     full scan over that share of the refillRate the answers report), but
 *     at least every `full_scan_s`, and never within the cache window.
 *     Each read also shows which time the feed is sorted by (a time that
 *     rises along the feed is not its order): once the pages show the feed
 *     ordered by lastUpdate, the incremental read alone finds every change,
 *     and full scans come only every `full_scan_s`, a safety net. Its
 *     default is the backfiller's rewalk_after_s (6 h): what no incremental
 *     read can find (a deal entering the result with an old lastUpdate, as
 *     its average moves) is found by either within that time, and a net of
 *     30 minutes cost more tokens than the changes it guards (a 67-page
 *     feed every 30 min is 11 tokens a minute) and, on small plans, the
 *     freshness of every other change while it ran.
 * Keepa caches a deal query about 120 s: a run within `cache_window_s` of
 * the last page 0 would be answered from the same frozen result, so it is
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
     "read the whole feed more often while its pages cost at most this share of the plan (0: only full_scan_s)"},
    {"cache_window_s", TG_SETTING_INT, "120",
     "Keepa's deal cache window in seconds of the host's clock: no run starts within it of the last page read"},
    {"watermark_field", TG_SETTING_STRING, "lastUpdate",
     "policy legacy only: the deal time sortType 1 is trusted to order by (lastUpdate or creationDate)"},
};

struct mark {
	bool valid;
	int64_t created, updated; /* Keepa minutes */
	int64_t full_at;          /* Unix s of the last full scan, 0: none */
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

/* What one run read: the pages (owning the deals) and the deals to write. */
struct feed {
	cJSON **pages;
	size_t npages;
	cJSON **deals;
	size_t n, cap;
	int64_t max_created, max_updated;
	/* Along each page, newest first: the previous deal's times, and how
	 * often each time rose from one deal to the next (out of order). */
	int64_t prev_created, prev_updated;
	int64_t rises_created, rises_updated;
};

static void feed_release(struct feed *f)
{
	for (size_t i = 0; i < f->npages; i++)
		cJSON_Delete(f->pages[i]);
	free(f->pages);
	free(f->deals);
}

static int feed_add(struct feed *f, cJSON *deal)
{
	if (f->n == f->cap) {
		cJSON **d = array_grow(f->deals, &f->cap, sizeof(*d), 256);

		if (!d)
			return TG_ENOMEM;
		f->deals = d;
	}
	f->deals[f->n++] = deal;
	return TG_OK;
}

/* Read the pages a run needs: all of them on a full scan, else until a
 * whole page is older than the watermark in both times. */
static int feed_read(struct upserter *u, const struct mark *m, bool full, struct feed *f, char **errmsg)
{
	int64_t limit = full ? DEAL_MAX_PAGES : m->valid ? u->max_pages : u->first_run_pages;
	int rc;

	for (int64_t page = 0; page < limit; page++) {
		cJSON *resp, *dr, *d;
		int64_t expected, c = -1, t = -1;

		rc = deal_page_fetch(&u->p, &u->sel, (int)page, &resp, &dr, &expected, errmsg);
		if (rc)
			return rc;
		/* Every page, not only page 0: a read that outlasts the window
		 * (a full scan) makes Keepa compute a new result at a later
		 * page, and the next run's pages would come from that one,
		 * answering again what this run already paid for. */
		u->last_read_ms = u->p.svc->now_ms(u->p.task);
		if (page == 0) {
			json_get_int(resp, "refillRate", &u->rate);
			/* Until a full scan has counted them, the announced total
			 * says how many pages one takes. */
			if (!u->full_pages && expected >= 0)
				u->full_pages = expected / DEAL_PAGE_SIZE + 1;
		}
		rc = page_keep(&f->pages, &f->npages, resp, errmsg);
		if (rc)
			return rc;
		/* Order within a page only: the next page may come from a
		 * re-sorted result (the cache expired), whose first deal may be
		 * newer than this page's last in either time. */
		f->prev_created = f->prev_updated = -1;
		cJSON_ArrayForEach(d, dr)
		{
			bool recent;

			c = t = -1;
			json_get_int(d, "creationDate", &c);
			json_get_int(d, "lastUpdate", &t);
			/* At the watermark's minute counts as recent: a deal of that
			 * minute may have come after the last read. */
			recent = !m->valid || c >= m->created || t >= m->updated;
			if (f->prev_created >= 0 && c > f->prev_created)
				f->rises_created++;
			if (f->prev_updated >= 0 && t > f->prev_updated)
				f->rises_updated++;
			f->prev_created = c;
			f->prev_updated = t;
			if (c > f->max_created)
				f->max_created = c;
			if (t > f->max_updated)
				f->max_updated = t;
			if ((recent || full) && feed_add(f, d))
				return err_set(errmsg, TG_ENOMEM, "out of memory");
		}
		if (cJSON_GetArraySize(dr) < DEAL_PAGE_SIZE) {
			if (full)
				u->full_pages = page + 1;
			return TG_OK;
		}
		/* The page's last deal is older than the watermark in both
		 * times: whichever of them the feed is sorted by, every later
		 * deal is older still. */
		if (m->valid && !full && c < m->created && t < m->updated)
			return TG_OK;
	}
	if (m->valid && !full) {
		/* The watermark moves past what was not read: the next run
		 * reads it all, whatever the order or full_scan_s. */
		plog(&u->p, TG_LOG_WARN,
		     "no page older than the watermark within %" PRId64 " pages: the next run is a full scan", limit);
		u->catch_up = true;
	}
	return TG_OK;
}

/* Seconds between full scans: what full_scan_share of the plan pays for,
 * bounded by full_scan_s and by the cache window. */
static int64_t full_scan_every(const struct upserter *u)
{
	double pages_per_min, every;

	/* Ordered by update, the incremental read misses nothing: the full scan
	 * is only the safety net. */
	if (u->order == ORDER_UPDATE || u->full_scan_share <= 0 || u->rate <= 0 || u->full_pages <= 0 ||
	    u->full_scan_s == 0)
		return u->full_scan_s;
	/* Pages at 5 tokens in share * rate tokens a (Keepa) minute, turned into
	 * the host's seconds through the cache window: Keepa's 120 s, two Keepa
	 * minutes in the host's clock however fast the simulator runs. */
	pages_per_min = u->full_scan_share * (double)u->rate / 5.0;
	every = (double)u->full_pages / pages_per_min * (double)u->cache_window_ms / 2000.0;
	if (every < (double)u->cache_window_ms / 1000.0)
		every = (double)u->cache_window_ms / 1000.0;
	return every < (double)u->full_scan_s ? (int64_t)every : u->full_scan_s;
}

static const char *order_name(enum feed_order o)
{
	static const char *const names[] = {"unknown", "lastUpdate", "creationDate", "neither time"};
	return names[o];
}

/* What the reads showed about the feed's order. A time that rose along a
 * page is not the order, and that stays proven for the life of the task
 * (a later read that happens to show only the other time rising does not
 * undo it); the other time, if it never rose while this one did, is the
 * order. Times that never disagree say nothing (every deal unchanged
 * since its creation): the order stays unknown. */
static void feed_order_learn(struct upserter *u, const struct feed *f)
{
	enum feed_order o = u->order;

	u->rose_created |= f->rises_created > 0;
	u->rose_updated |= f->rises_updated > 0;
	if (u->rose_created && u->rose_updated)
		o = ORDER_NEITHER;
	else if (u->rose_created)
		o = ORDER_UPDATE;
	else if (u->rose_updated)
		o = ORDER_CREATION;
	if (o == u->order)
		return;
	plog(&u->p, TG_LOG_INFO,
	     "sortType 1 orders this feed by %s (%" PRId64 " rises in creationDate, %" PRId64
	     " in lastUpdate over %zu pages): %s",
	     order_name(o), f->rises_created, f->rises_updated, f->npages,
	     o == ORDER_UPDATE ? "the incremental read finds every change; full scans only every full_scan_s"
	                       : "full scans find what the incremental read cannot");
	u->order = o;
}

/* Ask the host (ABI 1.2) not to start the next run before Keepa's cache of
 * the last page read expires: a run inside the window would find nothing to read, and
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

static int upserter_run(void *state, int64_t *idle_s, char **errmsg)
{
	struct upserter *u = state;
	struct asin_list due = {0};
	struct feed f = {.max_created = -1, .max_updated = -1};
	struct mark m, next;
	int64_t now, now_ms, changed = 0;
	char value[128];
	bool full;
	int rc;

	(void)idle_s;
	memset(&u->p.counts, 0, sizeof(u->p.counts));
	if (u->p.legacy)
		return upserter_run_legacy(u, errmsg);
	now_ms = u->p.svc->now_ms(u->p.task);
	if (u->last_read_ms && now_ms - u->last_read_ms < u->cache_window_ms) {
		plog(&u->p, TG_LOG_DEBUG,
"the last page was read %" PRId64 " ms ago, inside Keepa's cache window: it would answer the same",
		     now_ms - u->last_read_ms);
		not_before_cache_expiry(u);
		return TG_OK;
	}
	rc = mark_load(u, &m);
	if (rc)
		return err_set(errmsg, rc, "cannot read the watermark (%d)", rc);
	now = now_s(&u->p);
	full = m.valid && (u->catch_up || (u->full_scan_s >= 0 && now - m.full_at >= full_scan_every(u)));
	rc = feed_read(u, &m, full, &f, errmsg);
	if (rc)
		goto release;
	feed_order_learn(u, &f);

	next = m;
	next.valid = true;
	if (f.max_created > next.created)
		next.created = f.max_created;
	if (f.max_updated > next.updated)
		next.updated = f.max_updated;
	if (full || !m.valid)
		next.full_at = now;
	mark_format(value, sizeof(value), u->sel.fp, &next);
	/* The rows and the watermark that covers them: one transaction. */
	rc = u->p.svc->begin(u->p.task);
	if (rc) {
		storage_err(&u->p, errmsg, rc, "storage: cannot begin");
		goto release;
	}
	rc = page_store(&u->p, &u->sel, f.deals, f.n, now, &due, &changed, errmsg);
	if (!rc && (rc = u->p.svc->state_set(u->p.task, STATE_KEY, value)))
		storage_err(&u->p, errmsg, rc, "storage: cannot set the watermark");
	if (!rc && (rc = u->p.svc->commit(u->p.task)))
		storage_err(&u->p, errmsg, rc, "storage: commit failed");
	if (rc) {
		u->p.svc->rollback(u->p.task);
		goto release;
	}
	if (full)
		u->catch_up = false;
	/* Products after the commit: a failure leaves the rows marked
	 * product_due for the next purchase, never a gap. */
	rc = products_buy(&u->p, u->sel.domain, due.v, due.n, errmsg);
	u->p.svc->progress(u->p.task, changed, changed, "changes");
release:
	plog(&u->p, rc ? TG_LOG_WARN : TG_LOG_INFO,
	     "%s: %zu pages read%s, %zu deals written, %" PRId64 " new or changed, %" PRId64
	     " older than their rows (kept), %" PRId64 " products bought; watermark created %" PRId64
	     " updated %" PRId64,
	     rc ? "run interrupted" : "run done", f.npages, full ? " (full scan)" : "", f.n, changed,
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
    .version = "1.1.0",
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
