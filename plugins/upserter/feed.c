/*
 * feed.c - reading the upserter's feed (sortType 1, "deal age", newest
 * first): the pages of one run, what they show about the feed's order, and
 * the sweep of the deep pages.
 *
 * An incremental read goes page after page until a page ends with a deal
 * older than the watermark by creation AND by update: whichever time the
 * feed is sorted by, every later deal is older still.
 *
 * Sorted by creation, a deal whose lastUpdate moved but whose creation did
 * not stays deep in the feed, where no incremental read looks. The sweep
 * finds it: after the incremental pages, each run reads the next slice of
 * the deep pages, as many as `full_scan_share` of the plan has paid for
 * since the last run, and diffs every deal on them against the rows. The
 * slices go round the feed. It costs what the share-paid full scans of 1.1
 * cost, but no run holds the plan for a whole feed: the top of the feed,
 * where new deals are, is read every cache window on small plans too. A
 * round is not a full scan: the feed moves under the cursor, and a deal
 * that moves up across it as deals above it leave waits for the next
 * round. The full_scan_s net stays.
 */
#include <inttypes.h>
#include <stdlib.h>

#include <cjson/cJSON.h>
#include <tollgate/tollgate.h>

#include "common.h"
#include "fetch.h"
#include "json_util.h"
#include "upserter.h"

/* /deal pages cost 5 tokens (COST_DEAL). */
#define PAGE_TOKENS 5.0

void feed_release(struct feed *f)
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

/* Keepa computes a result at the first request after the last one expired
 * and answers every page of the query from it for the cache window W. The
 * host cannot see when: a call may wait for tokens between being asked
 * for and being sent, so it knows only when it asked and when the answer
 * came. Two bounds on the creation of the newest result are kept:
 * result_asked_ms below it, last_read_ms above it.
 *   - A page asked for W after last_read_ms was sent after the newest
 *     result expired: it began a new one, and both bounds move to it. The
 *     first page of a run always is such a page (runs start only then).
 *   - Otherwise a page answered W after result_asked_ms may have begun a
 *     new result or may not: only the upper bound moves to its answer.
 *   - Otherwise it came from the newest result.
 * The next run starts W after the upper bound: every result read from has
 * expired, and a run that stays within one result does not also wait out
 * its own duration (counting from the last page read did: 1.5 Keepa
 * minutes per run for 14 pages in the benchmark). A call that failed may
 * still have begun a result: it moves the upper bound to its end. */
static void feed_note_read(struct upserter *u, int64_t asked_ms, int64_t answered_ms, bool first, bool failed)
{
	if (failed) {
		if (answered_ms > u->last_read_ms)
			u->last_read_ms = answered_ms;
	} else if (first || asked_ms - u->last_read_ms >= u->cache_window_ms) {
		u->result_asked_ms = asked_ms;
		u->last_read_ms = answered_ms;
	} else if (answered_ms - u->result_asked_ms >= u->cache_window_ms) {
		u->last_read_ms = answered_ms;
	}
}

/* Read one page. Its deals join the run when `m` is NULL (a full scan or
 * the sweep: every deal is diffed against its row) or when they are recent
 * by the watermark; only pages read with a watermark move it. *c and *t
 * are the page's last deal's times; *end says it was the feed's last page. */
static int feed_page(struct upserter *u, const struct mark *m, int64_t page, bool first, struct feed *f,
                     int64_t *c, int64_t *t, bool *end, char **errmsg)
{
	int64_t asked = u->p.svc->now_ms(u->p.task), expected;
	cJSON *resp, *dr, *d;
	int rc;

	rc = deal_page_fetch(&u->p, &u->sel, (int)page, &resp, &dr, &expected, errmsg);
	feed_note_read(u, asked, u->p.svc->now_ms(u->p.task), first, rc != TG_OK);
	if (rc)
		return rc;
	if (page == 0) {
		json_get_int(resp, "refillRate", &u->rate);
		/* Until a full scan has counted them, the announced total says
		 * how many pages one takes. */
		if (!u->full_pages && expected >= 0)
			u->full_pages = expected / DEAL_PAGE_SIZE + 1;
	}
	rc = page_keep(&f->pages, &f->npages, resp, errmsg);
	if (rc)
		return rc;
	/* Order within a page only: the next page may come from a re-sorted
	 * result (the cache expired), whose first deal may be newer than this
	 * page's last in either time. */
	f->prev_created = f->prev_updated = -1;
	*c = *t = -1;
	cJSON_ArrayForEach(d, dr)
	{
		bool take;

		*c = *t = -1;
		json_get_int(d, "creationDate", c);
		json_get_int(d, "lastUpdate", t);
		/* At the watermark's minute counts as recent: a deal of that
		 * minute may have come after the last read. */
		take = !m || !m->valid || *c >= m->created || *t >= m->updated;
		if (f->prev_created >= 0 && *c > f->prev_created)
			f->rises_created++;
		if (f->prev_updated >= 0 && *t > f->prev_updated)
			f->rises_updated++;
		f->prev_created = *c;
		f->prev_updated = *t;
		if (m && *c > f->max_created)
			f->max_created = *c;
		if (m && *t > f->max_updated)
			f->max_updated = *t;
		if (take && feed_add(f, d))
			return err_set(errmsg, TG_ENOMEM, "out of memory");
	}
	*end = cJSON_GetArraySize(dr) < DEAL_PAGE_SIZE;
	return TG_OK;
}

int feed_read(struct upserter *u, const struct mark *m, bool full, struct feed *f, char **errmsg)
{
	static const struct mark everything = {.valid = false};
	int64_t limit = full ? DEAL_MAX_PAGES : m->valid ? u->max_pages : u->first_run_pages;
	int rc;

	/* A full scan takes every deal, and moves the watermark. */
	if (full)
		m = &everything;
	for (int64_t page = 0; page < limit; page++) {
		int64_t c = -1, t = -1;
		bool end = false;

		rc = feed_page(u, m, page, page == 0, f, &c, &t, &end, errmsg);
		if (rc)
			return rc;
		if (end) {
			f->reached_end = true;
			if (full)
				u->full_pages = page + 1;
			return TG_OK;
		}
		/* The page's last deal is older than the watermark in both
		 * times: whichever of them the feed is sorted by, every later
		 * deal is older still. */
		if (m->valid && c < m->created && t < m->updated)
			return TG_OK;
	}
	if (m->valid) {
		/* The watermark moves past what was not read: the next run
		 * reads it all, whatever the order or full_scan_s. */
		plog(&u->p, TG_LOG_WARN,
		     "no page older than the watermark within %" PRId64 " pages: the next run is a full scan", limit);
		u->catch_up = true;
	}
	return TG_OK;
}

bool feed_sweeps(const struct upserter *u)
{
	return u->order != ORDER_UPDATE && u->full_scan_share > 0 && u->full_scan_s > 0;
}

void feed_sweep_skip(struct upserter *u, int64_t now_ms)
{
	u->sweep_credit_ms = now_ms;
}

/* Pages the share has paid for since the last run: full_scan_share of the
 * refillRate the answers report, at 5 tokens a page, in Keepa minutes of
 * the host's clock (the cache window is two of them, however fast the
 * simulator runs). At most a whole feed (before a round has counted its
 * pages, the most Keepa serves): a pause buys no burst. */
static void sweep_accrue(struct upserter *u, int64_t now_ms)
{
	double minute_ms = u->cache_window_ms > 0 ? (double)u->cache_window_ms / 2.0 : 60000.0;
	double cap = (double)(u->full_pages > 0 ? u->full_pages : DEAL_MAX_PAGES);

	if (u->sweep_credit_ms && u->rate > 0 && now_ms > u->sweep_credit_ms)
		u->sweep_credit += u->full_scan_share * (double)u->rate / PAGE_TOKENS *
		                   (double)(now_ms - u->sweep_credit_ms) / minute_ms;
	if (u->sweep_credit > cap)
		u->sweep_credit = cap;
	u->sweep_credit_ms = now_ms;
}

int feed_sweep(struct upserter *u, struct feed *f, char **errmsg)
{
	/* Below the pages this run read already, from where the last slice
	 * ended. */
	int64_t page = u->sweep_page > (int64_t)f->npages ? u->sweep_page : (int64_t)f->npages;
	int rc;

	sweep_accrue(u, u->p.svc->now_ms(u->p.task));
	f->sweep_first = page;
	f->sweep_next = u->sweep_page;
	while (u->sweep_credit >= 1.0 && page < DEAL_MAX_PAGES) {
		int64_t c = -1, t = -1;
		bool end = false;

		rc = feed_page(u, NULL, page, false, f, &c, &t, &end, errmsg);
		if (rc)
			return rc;
		u->sweep_credit -= 1.0;
		f->sweep_pages++;
		page++;
		if (end || page == DEAL_MAX_PAGES) {
			/* Round the whole feed: the next slice starts at the top. */
			u->full_pages = page;
			f->sweep_done = true;
			page = 0;
			break;
		}
	}
	f->sweep_next = page;
	return TG_OK;
}

static const char *order_name(enum feed_order o)
{
	static const char *const names[] = {"unknown", "lastUpdate", "creationDate", "neither time"};
	return names[o];
}

/* A time that rose along a page is not the order, and that stays proven for
 * the life of the task (a later read that happens to show only the other
 * time rising does not undo it); the other time, if it never rose while
 * this one did, is the order. Times that never disagree say nothing (every
 * deal unchanged since its creation): the order stays unknown. */
void feed_order_learn(struct upserter *u, const struct feed *f)
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
	                       : "the sweep of the deep pages finds what the incremental read cannot");
	u->order = o;
}
