/*
 * janitor_select.c - what the janitor's search for due rows costs on a big
 * table, before and after its indexes (#10: "a run on a 1,000,000-row table
 * reads only what it refreshes").
 *
 *   janitor_select [--rows N] [--due D] [--limit L] [--dir DIR]
 *
 * Builds a `deals` table of N rows through the host's storage (SQLite, the
 * shipped table declaration), of which D are due for a refresh: a tenth of
 * them past max_age_h, the rest stale. Among the others, a tenth are stale
 * but refreshed within refresh_after_h (kept, not due): the rows the old
 * three selects had to read past. Then, on the same file, it times the
 * search of one run (max_rows_per_run = L) three ways:
 *   before   janitor 1.1: three selects on checked_at and refreshed_at, no
 *            index (what every run did until ABI 1.3);
 *   no-index janitor 1.2's two selects (checked_at, touched_at) before the
 *            indexes exist: an old host, or the first run's plan;
 *   indexed  the same two selects after table_index(checked_at) and
 *            table_index(touched_at), as janitor_init() asks;
 *   before-indexed  the three selects of 1.1 with those indexes: checked_at
 *            alone cannot skip the stale rows refreshed lately, which is why
 *            touched_at exists.
 * Each figure is the median of 5 searches (elapsed ms; rows handed back).
 * One JSON object per line. The selects are written out here as the
 * janitor makes them (plugins/janitor/janitor.c, select_due).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "deals.h"
#include "storage/storage.h"

#define H 3600
#define REPEAT 5

static void die(const char *what, const char *msg)
{
	fprintf(stderr, "janitor_select bench: %s: %s\n", what, msg ? msg : "failed");
	exit(1);
}

static void check(int rc, const char *what, char *err)
{
	if (rc < 0)
		die(what, err);
	free(err);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int count_row(void *ud, const struct tg_value *row, size_t n)
{
	(void)row;
	(void)n;
	++*(size_t *)ud;
	return 0;
}

/* The table as a steady install has it: most rows seen by a feed lately. */
static void fill(struct storage_conn *c, size_t rows, size_t due, int64_t now)
{
	char *err = NULL, asin[24]; /* "B" and up to 20 digits of a size_t */

	for (size_t i = 0; i < rows; i += 1000) {
		check(storage_begin(c, &err), "begin", err);
		err = NULL;
		for (size_t j = i; j < i + 1000 && j < rows; j++) {
			int64_t checked, refreshed = -1;

			if (j < due / 10)
				checked = now - 80 * H - (int64_t)j; /* past max_age_h */
			else if (j < due)
				checked = now - 30 * H - (int64_t)j; /* stale, due */
			else if (j % 10 == 0)
				checked = now - 40 * H, refreshed = now - 2 * H; /* stale, refreshed lately */
			else
				checked = now - (int64_t)(j % (12 * H)); /* seen by a feed within 12 h */
			snprintf(asin, sizeof(asin), "B%09zu", j);
			struct tg_value v[] = {
			    TG_VINT(COL_DOMAIN, 1),
			    TG_VTEXT(COL_ASIN, asin),
			    TG_VINT(COL_PRICE_TYPE, 2),
			    TG_VINT(COL_CURRENT, 2500),
			    TG_VINT(COL_AVG, 4000),
			    TG_VINT(COL_CHECKED, checked),
			    refreshed < 0 ? TG_VNULL(COL_REFRESHED) : TG_VINT(COL_REFRESHED, refreshed),
			    TG_VINT(COL_TOUCHED, refreshed > checked ? refreshed : checked),
			};
			check(storage_upsert(c, deals_table.name, v, sizeof(v) / sizeof(v[0]), &err), "upsert", err);
			err = NULL;
		}
		check(storage_commit(c, &err), "commit", err);
		err = NULL;
	}
}

struct search {
	const struct tg_filter *f;
	size_t n;
	const char *order_by;
};

/* One run's search: the sets in order, each limited to what is left. */
static size_t search(struct storage_conn *c, const struct search *sets, size_t nsets, size_t limit)
{
	size_t got = 0;
	char *err = NULL;

	for (size_t i = 0; i < nsets && got < limit; i++) {
		check(storage_select(c, deals_table.name, sets[i].f, sets[i].n, sets[i].order_by, (int64_t)(limit - got),
		                     count_row, &got, &err),
		      "select", err);
		err = NULL;
	}
	return got;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void measure(struct storage_conn *c, const char *what, const struct search *sets, size_t nsets, size_t rows,
                    size_t limit)
{
	double ms[REPEAT];
	size_t got = 0;

	for (int r = 0; r < REPEAT; r++) {
		double t0 = now_ms();

		got = search(c, sets, nsets, limit);
		ms[r] = now_ms() - t0;
	}
	qsort(ms, REPEAT, sizeof(ms[0]), cmp_double);
	printf("{\"search\": \"%s\", \"rows\": %zu, \"limit\": %zu, \"rows_returned\": %zu, \"ms_median\": %.2f, "
	       "\"ms_max\": %.2f}\n",
	       what, rows, limit, got, ms[REPEAT / 2], ms[REPEAT - 1]);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	size_t rows = 1000000, due = 5000, limit = 1000;
	const char *dir = "/tmp";
	char path[512], *err = NULL;
	struct storage *st;
	struct storage_conn *c;
	int64_t now = (int64_t)time(NULL);

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--rows"))
			rows = strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--due"))
			due = strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--limit"))
			limit = strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--dir"))
			dir = argv[i + 1];
		else
			die("usage", "janitor_select [--rows N] [--due D] [--limit L] [--dir DIR]");
	}
	if (due > rows)
		die("usage", "--due must not exceed --rows");
	snprintf(path, sizeof(path), "%s/tg-bench-janitor-%ld.db", dir, (long)getpid());
	remove(path);
	check(storage_open(&st, "sqlite", path, &err), "open", err);
	err = NULL;
	check(storage_connect(st, &c, &err), "connect", err);
	err = NULL;
	check(storage_declare(c, &deals_table, &err), "declare", err);
	err = NULL;
	fill(c, rows, due, now);

	int64_t refresh = now - 24 * H, drop = now - 72 * H;
	const struct tg_filter past[] = {{TG_LT, TG_VINT(COL_CHECKED, drop)}};
	const struct tg_filter never[] = {{TG_LT, TG_VINT(COL_CHECKED, refresh)},
	                                  {TG_GE, TG_VINT(COL_CHECKED, drop)},
	                                  {TG_EQ, TG_VNULL(COL_REFRESHED)}};
	const struct tg_filter lately[] = {{TG_LT, TG_VINT(COL_CHECKED, refresh)},
	                                   {TG_GE, TG_VINT(COL_CHECKED, drop)},
	                                   {TG_LT, TG_VINT(COL_REFRESHED, refresh)}};
	const struct tg_filter stale[] = {{TG_LT, TG_VINT(COL_TOUCHED, refresh)}, {TG_GE, TG_VINT(COL_CHECKED, drop)}};
	const struct search before[] = {{past, 1, COL_CHECKED}, {never, 3, COL_CHECKED}, {lately, 3, COL_CHECKED}};
	const struct search after[] = {{past, 1, COL_CHECKED}, {stale, 2, COL_TOUCHED}};

	measure(c, "before", before, 3, rows, limit);
	measure(c, "no-index", after, 2, rows, limit);
	check(storage_index(c, deals_table.name, COL_CHECKED, &err), "index", err);
	err = NULL;
	check(storage_index(c, deals_table.name, COL_TOUCHED, &err), "index", err);
	err = NULL;
	measure(c, "indexed", after, 2, rows, limit);
	measure(c, "before-indexed", before, 3, rows, limit);
	storage_conn_free(c);
	storage_free(st);
	remove(path);
	for (const char *const *suffix = (const char *const[]){"-wal", "-shm", NULL}; *suffix; suffix++) {
		char side[600];

		snprintf(side, sizeof(side), "%s%s", path, *suffix);
		remove(side);
	}
	return 0;
}
