/*
 * upserter.h - what the upserter's files share: its state and the legacy
 * (tollgate 0.1) run.
 */
#ifndef TG_PLUGINS_UPSERTER_H
#define TG_PLUGINS_UPSERTER_H

#include <stdint.h>

#include "common.h"
#include "selection.h"

#define STATE_KEY "watermark"

/* What sortType 1 ("deal age") orders by, as the pages show it: newest
 * first by lastUpdate, by creationDate, or neither. Unknown until a read
 * sees the two times disagree. */
enum feed_order { ORDER_UNKNOWN = 0, ORDER_UPDATE, ORDER_CREATION, ORDER_NEITHER };

struct upserter {
	struct pctx p;
	struct selection sel;
	int64_t max_pages, first_run_pages;
	int64_t full_scan_s;     /* < 0: never; 0: every run; else at least this often */
	double full_scan_share;  /* the share of the plan full scans may take */
	int64_t rate;            /* refillRate of the last answer, tokens a minute */
	int64_t full_pages;      /* pages of the last full scan (0: none yet) */
	int64_t cache_window_ms; /* Keepa's deal cache window, host clock */
	int64_t last_read_ms;    /* host time of the last page's answer (0: none) */
	enum feed_order order;   /* learned from the pages (feed_order_learn) */
	bool rose_created, rose_updated; /* ever seen rising along a page */
	bool catch_up;           /* an incremental read hit max_pages: scan next */
	const char *time_field;  /* legacy: the deal time it trusts sortType 1 to order by */
};

/* The watermark's state text (to free with svc->free), or TG_ENOTFOUND
 * (logged: the first run reads first_run_pages). A storage error is
 * returned as such, never read as "no watermark": that would skip deals. */
int upserter_state_get(struct upserter *u, char **value);

/* One run of policy "legacy" (legacy.c). */
int upserter_run_legacy(struct upserter *u, char **errmsg);

#endif
