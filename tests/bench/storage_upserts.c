/*
 * storage_upserts.c - upserts per second through the storage service, in
 * chunk-sized transactions (one /deal page of 150 deals per commit, with
 * its checkpoint, as the backfiller writes), on every backend at hand:
 * SQLite always, PostgreSQL when TG_TEST_PG_CONNINFO names a cluster (run
 * through tests/pg/with-cluster, as `meson test --benchmark` does).
 *
 *   storage_upserts [--rows N] [--chunk N]
 *
 * One line per backend: rows/s and commits/s, first inserts then updates
 * of the same rows (the upserter's case). Figures, not a test.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "observe/log.h"
#include "storage/storage.h"
#include "util/clock.h"

static const struct tg_column deal_columns[] = {
    {"asin", TG_TEXT, true},          {"current_cents", TG_INT, false}, {"avg_cents", TG_INT, false},
    {"drop_pct", TG_INT, false},      {"deal_updated_at", TG_INT, false},
    {"title", TG_TEXT, false},        {"rating", TG_REAL, false},
};
static const struct tg_table deals = {"bench_deals", deal_columns, 7};

static void die(const char *what, int rc, char *err)
{
	fprintf(stderr, "storage_upserts: %s: %d %s\n", what, rc, err ? err : "");
	exit(1);
}

/* Write rows in chunks of chunk rows per transaction; seconds taken. */
static double pass(struct storage_conn *c, int rows, int chunk, int round)
{
	int64_t t0 = tg_mono_ms();
	char *err = NULL;
	int rc;

	for (int i = 0; i < rows;) {
		char page[16];

		if ((rc = storage_begin(c, &err)))
			die("begin", rc, err);
		for (int k = 0; k < chunk && i < rows; k++, i++) {
			char asin[16], title[64];
			struct tg_value v[] = {
			    TG_VTEXT("asin", asin),           TG_VINT("current_cents", 1000 + i + round),
			    TG_VINT("avg_cents", 2000 + i),   TG_VINT("drop_pct", (i + round) % 90),
			    TG_VINT("deal_updated_at", 1764547200 + i),
			    TG_VTEXT("title", title),         TG_VREAL("rating", (i % 50) / 10.0),
			};

			snprintf(asin, sizeof(asin), "B%09d", i);
			snprintf(title, sizeof(title), "Product %d, round %d", i, round);
			if ((rc = storage_upsert(c, deals.name, v, 7, &err)))
				die("upsert", rc, err);
		}
		snprintf(page, sizeof(page), "%d", i / chunk);
		if ((rc = storage_state_set(c, "bench", "page", page, &err)))
			die("state", rc, err);
		if ((rc = storage_commit(c, &err)))
			die("commit", rc, err);
	}
	return (double)(tg_mono_ms() - t0) / 1000.0;
}

static void bench(const char *label, const char *backend, const char *where, int rows, int chunk)
{
	struct storage *st = NULL;
	struct storage_conn *c = NULL;
	char *err = NULL;
	double ins, upd;
	int rc;

	if ((rc = storage_open(&st, backend, where, &err)) || (rc = storage_connect(st, &c, &err)))
		die("open", rc, err);
	if ((rc = storage_declare(c, &deals, &err)))
		die("declare", rc, err);
	ins = pass(c, rows, chunk, 0);
	upd = pass(c, rows, chunk, 1);
	printf("%-48s insert %8.0f rows/s %6.0f commits/s   update %8.0f rows/s %6.0f commits/s\n", label,
	       rows / ins, rows / ins / chunk, rows / upd, rows / upd / chunk);
	fflush(stdout);
	storage_conn_free(c);
	storage_free(st);
}

int main(int argc, char **argv)
{
	const char *cluster = getenv("TG_TEST_PG_CONNINFO");
	int rows = 30000, chunk = 150;
	char dir[] = "/tmp/tg-bench-XXXXXX", path[128], where[1024];

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--rows") == 0)
			rows = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--chunk") == 0)
			chunk = atoi(argv[i + 1]);
	}
	if (rows <= 0 || chunk <= 0) {
		fprintf(stderr, "usage: storage_upserts [--rows N] [--chunk N]\n");
		return 64;
	}
	log_setup(TG_LOG_WARN, NULL);
	printf("%d rows of 7 columns, %d rows and one checkpoint per transaction\n", rows, chunk);
	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/bench.db", dir);
	bench("sqlite (WAL, synchronous=NORMAL)", "sqlite", path, rows, chunk);
	unlink(path);
	snprintf(where, sizeof(where), "%s-wal", path);
	unlink(where);
	snprintf(where, sizeof(where), "%s-shm", path);
	unlink(where);
	rmdir(dir);
	if (!cluster || !*cluster) {
		printf("postgresql: skipped (no TG_TEST_PG_CONNINFO; run through tests/pg/with-cluster)\n");
		return 0;
	}
	/* Durable commits (each waits for its WAL flush), and commits that
	 * return before the flush, which is what SQLite's NORMAL does. */
	bench("postgresql (unix socket, synchronous_commit)", "postgresql", cluster, rows, chunk);
	snprintf(where, sizeof(where), "%s options='-c synchronous_commit=off'", cluster);
	bench("postgresql (unix socket, synchronous_commit=off)", "postgresql", where, rows, chunk);
	return 0;
}
