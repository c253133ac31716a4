/*
 * legacy.c - the upserter of tollgate 0.1 (policy "legacy"), kept so the
 * pipeline benchmark can show the old behaviour beside the new in one run:
 * it reads sortType 1 page by page until the first deal older than its
 * watermark (`watermark_field`), buys every new or changed deal's product
 * and commits oldest first.
 *
 * Watermark (state key "watermark"), one line of text:
 *   "v1 <fingerprint> <keepa_minute> <asin,asin,...|->"
 * Every deal whose time is before the minute, or at the minute with its ASIN
 * listed, is stored. Because chunks are committed oldest first, every deal
 * before the committed watermark is stored: a run that fails leaves no gap.
 * It stops at the first older deal, which is only right when sortType 1
 * orders by that field (Keepa does not say), and it reads page 0 even when
 * Keepa's cache must answer the same as last time.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <tollgate/tollgate.h>

#include "common.h"
#include "fetch.h"
#include "json_util.h"
#include "selection.h"
#include "upserter.h"

struct watermark {
	bool valid;
	int64_t minute;
	char **asins; /* sorted */
	size_t n, cap;
};

static void wm_release(struct watermark *wm)
{
	size_t i;

	for (i = 0; i < wm->n; i++)
		free(wm->asins[i]);
	free(wm->asins);
	memset(wm, 0, sizeof(*wm));
}

static int cstr_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool wm_has(const struct watermark *wm, const char *asin)
{
	return wm->n && bsearch(&asin, wm->asins, wm->n, sizeof(*wm->asins), cstr_cmp);
}

/* Add asin to the same-minute set (kept sorted, no duplicates). */
static int wm_add(struct watermark *wm, const char *asin)
{
	char *dup;

	if (wm_has(wm, asin))
		return TG_OK;
	if (wm->n == wm->cap) {
		char **a = array_grow(wm->asins, &wm->cap, sizeof(*a), 16);

		if (!a)
			return TG_ENOMEM;
		wm->asins = a;
	}
	dup = strdup(asin);
	if (!dup)
		return TG_ENOMEM;
	wm->asins[wm->n++] = dup;
	qsort(wm->asins, wm->n, sizeof(*wm->asins), cstr_cmp);
	return TG_OK;
}

/* The state text of wm: malloc()ed, NULL when out of memory. */
static char *wm_format(const struct watermark *wm, const char *fp)
{
	size_t len = 64, i, off;
	char *s;

	for (i = 0; i < wm->n; i++)
		len += strlen(wm->asins[i]) + 1;
	s = malloc(len);
	if (!s)
		return NULL;
	off = (size_t)snprintf(s, len, "v1 %s %" PRId64 " ", fp, wm->minute);
	if (!wm->n)
		off += (size_t)snprintf(s + off, len - off, "-");
	for (i = 0; i < wm->n; i++)
		off += (size_t)snprintf(s + off, len - off, "%s%s", i ? "," : "", wm->asins[i]);
	return s;
}

static int wm_load(struct upserter *u, struct watermark *wm)
{
	char *value = NULL, *save = NULL, *tok, *fp, *minute, *list, *end;
	int rc = TG_OK;

	memset(wm, 0, sizeof(*wm));
	rc = upserter_state_get(u, &value);
	if (rc)
		return rc == TG_ENOTFOUND ? TG_OK : rc;
	tok = strtok_r(value, " ", &save);
	fp = strtok_r(NULL, " ", &save);
	minute = strtok_r(NULL, " ", &save);
	list = strtok_r(NULL, " ", &save);
	if (!tok || strcmp(tok, "v1") || !fp || !minute || !list) {
		plog(&u->p, TG_LOG_WARN, "watermark unreadable: starting without one");
		goto free_value;
	}
	if (strcmp(fp, u->sel.fp)) {
		plog(&u->p, TG_LOG_INFO, "the query changed (fingerprint %s): starting without a watermark",
		     u->sel.fp);
		goto free_value;
	}
	wm->minute = strtoll(minute, &end, 10);
	if (*end) {
		plog(&u->p, TG_LOG_WARN, "watermark unreadable: starting without one");
		goto free_value;
	}
	wm->valid = true;
	if (strcmp(list, "-"))
		for (tok = strtok_r(list, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save))
			rc = wm_add(wm, tok);
free_value:
	u->p.svc->free(value);
	return rc;
}

/* A deal to store, with its time. */
struct cand {
	cJSON *deal;
	const char *asin;
	int64_t minute;
	size_t seq; /* feed order, to keep the sort stable */
};

static int cand_cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	int c;

	if (x->minute != y->minute)
		return x->minute < y->minute ? -1 : 1;
	c = strcmp(x->asin, y->asin);
	if (c)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Everything one run holds. */
struct legacy_feed {
	cJSON **pages;
	size_t npages;
	struct cand *c;
	size_t n, cap;
	int64_t skipped;
};

static void legacy_feed_release(struct legacy_feed *f)
{
	size_t i;

	for (i = 0; i < f->npages; i++)
		cJSON_Delete(f->pages[i]);
	free(f->pages);
	free(f->c);
}

/* Read pages until the watermark; collect the new or changed deals. */
static int legacy_feed_read(struct upserter *u, const struct watermark *wm, struct legacy_feed *f, char **errmsg)
{
	int64_t limit = wm->valid ? u->max_pages : u->first_run_pages, page, expected;
	bool reached = false;
	int rc = TG_OK;

	for (page = 0; page < limit && !reached; page++) {
		cJSON *resp, *dr, *d;
		int64_t skipped_before = f->skipped;

		rc = deal_page_fetch(&u->p, &u->sel, (int)page, &resp, &dr, &expected, errmsg);
		if (rc)
			return rc;
		rc = page_keep(&f->pages, &f->npages, resp, errmsg);
		if (rc)
			return rc;
		cJSON_ArrayForEach(d, dr)
		{
			const char *asin = json_asin(d);
			int64_t minute;

			if (!asin || !json_get_int(d, u->time_field, &minute) || minute <= 0) {
				f->skipped++;
				plog(&u->p, TG_LOG_DEBUG,
				     "page %" PRId64 ": deal without a valid asin or %s skipped", page,
				     u->time_field);
				continue;
			}
			if (wm->valid && minute < wm->minute) {
				/* Newest first: what follows is older still. The rest of
				 * the page is read anyway (it is paid for). */
				reached = true;
				continue;
			}
			if (wm->valid && minute == wm->minute && wm_has(wm, asin))
				continue;
			if (f->n == f->cap) {
				struct cand *c = array_grow(f->c, &f->cap, sizeof(*c), 256);

				if (!c)
					return err_set(errmsg, TG_ENOMEM, "out of memory");
				f->c = c;
			}
			f->c[f->n] = (struct cand){d, asin, minute, f->n};
			f->n++;
		}
		if (f->skipped != skipped_before)
			plog(&u->p, TG_LOG_WARN,
			     "page %" PRId64 ": %" PRId64 " deals without a valid asin or %s skipped", page,
			     f->skipped - skipped_before, u->time_field);
		if (cJSON_GetArraySize(dr) < DEAL_PAGE_SIZE)
			reached = true;
	}
	if (!reached && wm->valid)
		plog(&u->p, TG_LOG_WARN,
		     "the watermark was not reached within %" PRId64
		     " pages: older changes are the backfiller's",
		     limit);
	return rc;
}

int upserter_run_legacy(struct upserter *u, char **errmsg)
{
	struct watermark wm;
	struct legacy_feed f = {0};
	cJSON **chunk = NULL;
	size_t i, done = 0;
	int rc;

	memset(&u->p.counts, 0, sizeof(u->p.counts));
	rc = wm_load(u, &wm);
	if (rc) {
		err_set(errmsg, rc, "cannot read the watermark (%d)", rc);
		goto release_wm;
	}
	rc = legacy_feed_read(u, &wm, &f, errmsg);
	if (rc)
		goto release_feed;
	u->p.counts.deals_skipped += f.skipped;
	if (f.n)
		qsort(f.c, f.n, sizeof(*f.c), cand_cmp);
	chunk = malloc((f.n ? f.n : 1) * sizeof(*chunk));
	if (!chunk) {
		rc = err_set(errmsg, TG_ENOMEM, "out of memory");
		goto release_feed;
	}

	/* Oldest first, so the watermark of each commit covers everything
	 * before it. */
	while (done < f.n) {
		size_t k = product_batch_size(&u->p), end = done + k < f.n ? done + k : f.n;
		struct watermark next = {0};
		char *value;

		next.valid = true;
		next.minute = f.c[end - 1].minute;
		/* The same-minute set carries over while the minute does. */
		if (wm.valid && wm.minute == next.minute)
			for (i = 0; i < wm.n && !rc; i++)
				rc = wm_add(&next, wm.asins[i]);
		for (i = done; i < end && !rc; i++) {
			chunk[i - done] = f.c[i].deal;
			if (f.c[i].minute == next.minute)
				rc = wm_add(&next, f.c[i].asin);
		}
		value = rc ? NULL : wm_format(&next, u->sel.fp);
		if (!value) {
			wm_release(&next);
			rc = err_set(errmsg, TG_ENOMEM, "out of memory");
			break;
		}
		rc = chunk_commit(&u->p, &u->sel, chunk, end - done, STATE_KEY, value, errmsg);
		free(value);
		if (rc) {
			wm_release(&next);
			break;
		}
		wm_release(&wm);
		wm = next;
		done = end;
		u->p.svc->progress(u->p.task, (int64_t)done, (int64_t)f.n, "deals");
	}
	plog(&u->p, rc ? TG_LOG_WARN : TG_LOG_INFO,
	     "%s: %zu pages read, %zu new or changed deals, %zu committed; wrote %" PRId64 " rows (%" PRId64
	     " new), skipped %" PRId64 ", %" PRId64 " products missing, %" PRId64
	     " malformed; watermark %" PRId64 " (%zu at that minute)",
	     rc ? "run interrupted" : "run done", f.npages, f.n, done, u->p.counts.written,
	     u->p.counts.inserted, u->p.counts.deals_skipped, u->p.counts.products_missing,
	     u->p.counts.products_malformed, wm.valid ? wm.minute : -1, wm.n);
	free(chunk);
release_feed:
	legacy_feed_release(&f);
release_wm:
	wm_release(&wm);
	return rc;
}

