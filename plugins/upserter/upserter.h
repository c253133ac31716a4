/*
 * upserter.h - what the upserter's files share: its state and the legacy
 * (tollgate 0.1) run.
 */
#ifndef TG_PLUGINS_UPSERTER_H
#define TG_PLUGINS_UPSERTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "selection.h"

#define STATE_KEY "watermark"

/* What sortType 1 ("deal age") orders by, as the pages show it: newest
 * first by lastUpdate, by creationDate, or neither. Unknown until a read
 * sees the two times disagree. */
enum feed_order { ORDER_UNKNOWN = 0, ORDER_UPDATE, ORDER_CREATION, ORDER_NEITHER };

/* The watermark: the newest times a committed run has seen. */
struct mark {
	bool valid;
	int64_t created, updated; /* Keepa minutes */
	int64_t full_at;          /* Unix s of the last full scan, 0: none */
};

struct upserter {
	struct pctx p;
	struct selection sel;
	int64_t max_pages, first_run_pages;
	int64_t full_scan_s;     /* < 0: never; 0: every run; else at least this often */
	double full_scan_share;  /* the share of the plan full scans may take */
	int64_t rate;            /* refillRate of the last answer, tokens a minute */
	int64_t full_pages;      /* pages of the last full scan (0: none yet) */
	int64_t cache_window_ms; /* Keepa's deal cache window, host clock */
	/* Bounds on when Keepa computed the newest result this task read
	 * from (feed.c, feed_note_read): no run starts within cache_window_ms
	 * of the upper one (0: nothing read yet). */
	int64_t last_read_ms;
	int64_t result_asked_ms;
	/* The sweep (feed.c): the deep pages, a slice per run, as
	 * full_scan_share pays for. */
	int64_t sweep_page;      /* the next deep page to read (0: start over) */
	double sweep_credit;     /* pages paid for and not read yet */
	int64_t sweep_credit_ms; /* host time the credit was last added to */
	enum feed_order order;   /* learned from the pages (feed_order_learn) */
	bool rose_created, rose_updated; /* ever seen rising along a page */
	bool catch_up;           /* an incremental read hit max_pages: scan next */
	const char *time_field;  /* legacy: the deal time it trusts sortType 1 to order by */
};

/* What one run read: the pages (owning the deals) and the deals to write. */
struct feed {
	struct cJSON **pages;
	size_t npages;
	struct cJSON **deals;
	size_t n, cap;
	int64_t max_created, max_updated; /* over the pages that move the watermark */
	/* Along each page, newest first: the previous deal's times, and how
	 * often each time rose from one deal to the next (out of order). */
	int64_t prev_created, prev_updated;
	int64_t rises_created, rises_updated;
	/* The sweep's part of the run: its first page and how many it read,
	 * the page it goes on from next, and whether it reached the end. */
	int64_t sweep_first, sweep_pages, sweep_next;
	bool sweep_done;
	bool reached_end; /* the incremental (or full) read reached the last page */
};

/* Read the pages a run needs (feed.c): all of them on a full scan, else
 * until a whole page is older than the watermark in both times. */
int feed_read(struct upserter *u, const struct mark *m, bool full, struct feed *f, char **errmsg);

/* Whether runs sweep the deep pages: a feed not proven sorted by lastUpdate,
 * a share of the plan for it, and full scans not switched off. */
bool feed_sweeps(const struct upserter *u);

/* After an incremental read, the slice of the deep pages the credit pays
 * for; every deal on them is written (diffed against the rows). */
int feed_sweep(struct upserter *u, struct feed *f, char **errmsg);

/* A run that does not sweep: the credit does not accrue over it (no
 * burst of deep pages after full scans or a time sorted by update). */
void feed_sweep_skip(struct upserter *u, int64_t now_ms);

/* What the pages of one run showed about the feed's order (logged once). */
void feed_order_learn(struct upserter *u, const struct feed *f);

void feed_release(struct feed *f);

/* The watermark's state text (to free with svc->free), or TG_ENOTFOUND
 * (logged: the first run reads first_run_pages). A storage error is
 * returned as such, never read as "no watermark": that would skip deals. */
int upserter_state_get(struct upserter *u, char **value);

/* One run of policy "legacy" (legacy.c). */
int upserter_run_legacy(struct upserter *u, char **errmsg);

#endif
