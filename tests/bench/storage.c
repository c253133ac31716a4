/*
 * storage.c - upserts through the host's storage service beside a
 * hand-written SQLite loop over the same rows, in the same run.
 *
 *   storage [--rows N] [--repeat R] [--dir DIR] [--workload W] [--table]
 *
 * The row is the shipped plugins' 26-column `deals` row (a new deal with its
 * product: every column but refreshed_at), written in transactions of 100
 * rows, each with its checkpoint (a tg_state write), as the upserter does.
 * Three workloads, each on a fresh database file:
 *   insert  N new keys
 *   update  the same N keys again (the ON CONFLICT path)
 *   exists  storage_get of the key, then the upsert (the backfiller's way)
 * The raw loop prepares the very statements the SQLite backend uses, once,
 * with the same pragmas (WAL, synchronous=NORMAL), and binds the same
 * struct tg_value arrays. Both run in this one process, hence with the
 * same process-wide SQLite set-up (the host's: memory statistics off, see
 * storage/sqlite.c). Figures are rows per second of CPU time (the
 * process's own; the best of R runs: on a loaded machine time is only ever
 * added by the neighbours — with the median and the worst beside it, to
 * show the spread) and of elapsed time (the median of R runs); one JSON
 * object per line, or a markdown table with --table.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "deals.h"
#include "storage/storage.h"

#define ROWS_PER_TX 100
#define MAX_REPEAT 15

enum workload { W_INSERT, W_UPDATE, W_EXISTS, W_COUNT };
static const char *const workload_name[W_COUNT] = {"insert", "update", "exists"};

struct rows {
	size_t n;
	struct tg_value (*v)[DEAL_ROW_MAX];
	size_t ncols;
	char (*asin)[24];
};

/* Elapsed and CPU seconds of one pass. */
struct span {
	double wall, cpu;
};

static double clock_s(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct span span_start(void)
{
	return (struct span){clock_s(CLOCK_MONOTONIC), clock_s(CLOCK_PROCESS_CPUTIME_ID)};
}

static struct span span_end(struct span t0)
{
	return (struct span){clock_s(CLOCK_MONOTONIC) - t0.wall, clock_s(CLOCK_PROCESS_CPUTIME_ID) - t0.cpu};
}

static void die(const char *what, const char *msg)
{
	fprintf(stderr, "storage bench: %s: %s\n", what, msg ? msg : "failed");
	exit(1);
}

/* The columns in the order deal_row_build() names them for a new deal with
 * a usable product (first_seen included, refreshed_at not). */
static void rows_make(struct rows *r, size_t n)
{
	static const char *const titles[] = {
	    "Stainless steel insulated water bottle, 750 ml, keeps drinks cold for 24 hours",
	    "Wireless noise cancelling headphones with 30 h battery",
	    "Cast iron skillet, pre-seasoned, 26 cm",
	};
	r->n = n;
	r->v = calloc(n, sizeof(*r->v));
	r->asin = calloc(n, sizeof(*r->asin));
	if (!r->v || !r->asin)
		die("rows", "out of memory");
	for (size_t i = 0; i < n; i++) {
		struct tg_value *v = r->v[i];
		size_t k = 0;
		int64_t t = 1700000000 + (int64_t)i;

		snprintf(r->asin[i], sizeof(r->asin[i]), "B%09zu", i);
		v[k++] = TG_VINT(COL_DOMAIN, 1);
		v[k++] = TG_VTEXT(COL_ASIN, r->asin[i]);
		v[k++] = TG_VTEXT(COL_TITLE, titles[i % 3]);
		v[k++] = TG_VINT(COL_ROOT_CATEGORY, 281052 + (int64_t)(i % 40));
		v[k++] = TG_VINT(COL_PRICE_TYPE, 0);
		v[k++] = TG_VINT(COL_DATE_RANGE, 1);
		v[k++] = TG_VINT(COL_CURRENT, 1999 + (int64_t)(i % 500));
		v[k++] = TG_VINT(COL_AVG, 2999 + (int64_t)(i % 700));
		v[k++] = TG_VINT(COL_DROP_PCT, 33);
		v[k++] = i % 7 ? TG_VINT(COL_PROFIT, 412 - (int64_t)(i % 900)) : TG_VNULL(COL_PROFIT);
		v[k++] = TG_VINT(COL_CREATED, t - 86400);
		v[k++] = TG_VINT(COL_UPDATED, t - 3600);
		v[k++] = TG_VINT(COL_FIRST_SEEN, t);
		v[k++] = TG_VINT(COL_LAST_SEEN, t);
		v[k++] = TG_VINT(COL_CHECKED, t);
		v[k++] = TG_VTEXT(COL_WRITTEN_BY, "upserter");
		v[k++] = TG_VINT(COL_AMAZON, 2099);
		v[k++] = TG_VINT(COL_AMAZON_SELLS, 1);
		v[k++] = TG_VINT(COL_NEW, 1999);
		v[k++] = i % 3 ? TG_VINT(COL_USED, 1500) : TG_VNULL(COL_USED);
		v[k++] = TG_VINT(COL_RANK, 1200 + (int64_t)i);
		v[k++] = TG_VINT(COL_RANK_AVG90, 1500 + (int64_t)i);
		v[k++] = TG_VINT(COL_RANK_DROPS30, 12);
		v[k++] = TG_VINT(COL_RANK_DROPS90, 40);
		v[k++] = TG_VINT(COL_OFFERS_NEW, 9);
		v[k++] = TG_VINT(COL_OFFERS_USED, 3);
		r->ncols = k;
	}
}

static void db_path(char *out, size_t len, const char *dir, const char *who)
{
	char base[512];

	snprintf(base, sizeof(base), "%s/%s.db", dir, who);
	unlink(base);
	snprintf(out, len, "%s-wal", base);
	unlink(out);
	snprintf(out, len, "%s-shm", base);
	unlink(out);
	snprintf(out, len, "%s", base);
}

/* ------------------------------------------------------------ the host */

static void host_check(int rc, const char *what, char *err)
{
	if (rc < 0)
		die(what, err);
}

/* The upserts of one workload through storage_*; returns seconds. The
 * insert pass runs first in each workload that needs existing rows.
 * host_pass and raw_pass are never inlined, so that a profiler tells the
 * two sides apart: valgrind --tool=callgrind --toggle-collect='host_pass*'
 * (or 'raw_pass*'; the compiler may clone them) counts the instructions of
 * one side's passes. */
__attribute__((noinline)) static struct span host_pass(struct storage_conn *c, const struct rows *r, bool exists_check)
{
	char *err = NULL, mark[32];
	struct span t0 = span_start();

	for (size_t i = 0; i < r->n; i += ROWS_PER_TX) {
		size_t end = i + ROWS_PER_TX < r->n ? i + ROWS_PER_TX : r->n;

		host_check(storage_begin(c, &err), "begin", err);
		for (size_t j = i; j < end; j++) {
			if (exists_check) {
				int rc = storage_get(c, "deals", r->v[j], 2, NULL, NULL, &err);
				if (rc < 0 && rc != TG_ENOTFOUND)
					die("get", err);
			}
			host_check(storage_upsert(c, "deals", r->v[j], r->ncols, &err), "upsert", err);
		}
		snprintf(mark, sizeof(mark), "%zu", end);
		host_check(storage_state_set(c, "bench", "watermark", mark, &err), "checkpoint", err);
		host_check(storage_commit(c, &err), "commit", err);
	}
	return span_end(t0);
}

static struct span host_run(const char *dir, const struct rows *r, enum workload w)
{
	struct storage *st;
	struct storage_conn *c;
	char path[600], *err = NULL;
	struct span s;

	db_path(path, sizeof(path), dir, "host");
	host_check(storage_open(&st, "sqlite", path, &err), "open", err);
	host_check(storage_connect(st, &c, &err), "connect", err);
	host_check(storage_declare(c, &deals_table, &err), "declare", err);
	if (w == W_UPDATE)
		host_pass(c, r, false);
	s = host_pass(c, r, w == W_EXISTS);
	storage_conn_free(c);
	storage_free(st);
	return s;
}

/* ------------------------------------------------------- the raw loop */

struct raw {
	sqlite3 *db;
	sqlite3_stmt *begin, *commit, *upsert, *state, *exists;
};

static void raw_check(struct raw *x, int rc, int want, const char *what)
{
	if (rc != want)
		die(what, sqlite3_errmsg(x->db));
}

static sqlite3_stmt *raw_prepare(struct raw *x, const char *sql)
{
	sqlite3_stmt *s;

	raw_check(x, sqlite3_prepare_v2(x->db, sql, -1, &s, NULL), SQLITE_OK, sql);
	return s;
}

/* The statement text the backend builds for this row's columns. */
static char *upsert_sql(const struct rows *r)
{
	size_t cap = 8192, len = 0;
	char *s = malloc(cap);

	if (!s)
		die("sql", "out of memory");
#define ADD(...) (len += (size_t)snprintf(s + len, cap - len, __VA_ARGS__))
	ADD("INSERT INTO \"deals\" (");
	for (size_t i = 0; i < r->ncols; i++)
		ADD("%s\"%s\"", i ? ", " : "", r->v[0][i].column);
	ADD(") VALUES (");
	for (size_t i = 0; i < r->ncols; i++)
		ADD("%s?%zu", i ? ", " : "", i + 1);
	ADD(") ON CONFLICT (\"domain\", \"asin\") DO UPDATE SET ");
	for (size_t i = 2; i < r->ncols; i++)
		ADD("%s\"%s\" = excluded.\"%s\"", i > 2 ? ", " : "", r->v[0][i].column, r->v[0][i].column);
#undef ADD
	return s;
}

static void raw_open(struct raw *x, const char *path, const struct rows *r)
{
	char *sql, *select, *p;
	size_t len = 0;

	raw_check(x, sqlite3_open_v2(path, &x->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
	                             NULL),
	          SQLITE_OK, "open");
	raw_check(x, sqlite3_exec(x->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL", NULL, NULL, NULL),
	          SQLITE_OK, "pragmas");
	/* The table as the backend creates it (STRICT on SQLite >= 3.37). */
	sql = malloc(4096);
	select = malloc(4096);
	if (!sql || !select)
		die("sql", "out of memory");
	len = (size_t)snprintf(sql, 4096, "CREATE TABLE deals (");
	p = select + snprintf(select, 4096, "SELECT ");
	for (size_t i = 0; i < deals_table.ncolumns; i++) {
		const struct tg_column *c = &deals_table.columns[i];
		len += (size_t)snprintf(sql + len, 4096 - len, "\"%s\" %s%s, ", c->name,
		                        c->type == TG_INT ? "INTEGER" : c->type == TG_REAL ? "REAL" : "TEXT",
		                        c->key ? " NOT NULL" : "");
		p += snprintf(p, (size_t)(select + 4096 - p), "%s\"%s\"", i ? ", " : "", c->name);
	}
	snprintf(sql + len, 4096 - len, "PRIMARY KEY (\"domain\", \"asin\"))%s",
	         sqlite3_libversion_number() >= 3037000 ? " STRICT" : "");
	snprintf(p, (size_t)(select + 4096 - p), " FROM \"deals\" WHERE \"domain\" = ?1 AND \"asin\" = ?2 LIMIT ?3");
	raw_check(x, sqlite3_exec(x->db, sql, NULL, NULL, NULL), SQLITE_OK, "create");
	raw_check(x,
	          sqlite3_exec(x->db,
	                       "CREATE TABLE tg_state (task TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, "
	                       "updated_at INTEGER NOT NULL, PRIMARY KEY (task, key))",
	                       NULL, NULL, NULL),
	          SQLITE_OK, "create state");
	free(sql);
	x->begin = raw_prepare(x, "BEGIN IMMEDIATE");
	x->commit = raw_prepare(x, "COMMIT");
	sql = upsert_sql(r);
	x->upsert = raw_prepare(x, sql);
	free(sql);
	x->state = raw_prepare(x, "INSERT INTO tg_state (task, key, value, updated_at) VALUES (?1, ?2, ?3, ?4) "
	                          "ON CONFLICT (task, key) DO UPDATE SET value = excluded.value, "
	                          "updated_at = excluded.updated_at");
	x->exists = raw_prepare(x, select);
	free(select);
}

static void raw_close(struct raw *x)
{
	sqlite3_finalize(x->begin);
	sqlite3_finalize(x->commit);
	sqlite3_finalize(x->upsert);
	sqlite3_finalize(x->state);
	sqlite3_finalize(x->exists);
	sqlite3_close_v2(x->db);
}

static void raw_bind(sqlite3_stmt *s, int idx, const struct tg_value *v)
{
	switch (v->type) {
	case TG_INT:
		sqlite3_bind_int64(s, idx, v->v.i);
		break;
	case TG_REAL:
		sqlite3_bind_double(s, idx, v->v.r);
		break;
	case TG_TEXT:
		sqlite3_bind_text(s, idx, v->v.s, -1, SQLITE_STATIC);
		break;
	default:
		sqlite3_bind_null(s, idx);
		break;
	}
}

static void raw_step(struct raw *x, sqlite3_stmt *s, const char *what)
{
	int rc = sqlite3_step(s);

	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		die(what, sqlite3_errmsg(x->db));
	sqlite3_reset(s);
}

__attribute__((noinline)) static struct span raw_pass(struct raw *x, const struct rows *r, bool exists_check)
{
	char mark[32];
	struct span t0 = span_start();

	for (size_t i = 0; i < r->n; i += ROWS_PER_TX) {
		size_t end = i + ROWS_PER_TX < r->n ? i + ROWS_PER_TX : r->n;

		raw_step(x, x->begin, "begin");
		for (size_t j = i; j < end; j++) {
			if (exists_check) {
				raw_bind(x->exists, 1, &r->v[j][0]);
				raw_bind(x->exists, 2, &r->v[j][1]);
				sqlite3_bind_int64(x->exists, 3, 1);
				raw_step(x, x->exists, "exists");
			}
			for (size_t k = 0; k < r->ncols; k++)
				raw_bind(x->upsert, (int)k + 1, &r->v[j][k]);
			raw_step(x, x->upsert, "upsert");
		}
		snprintf(mark, sizeof(mark), "%zu", end);
		sqlite3_bind_text(x->state, 1, "bench", -1, SQLITE_STATIC);
		sqlite3_bind_text(x->state, 2, "watermark", -1, SQLITE_STATIC);
		sqlite3_bind_text(x->state, 3, mark, -1, SQLITE_STATIC);
		sqlite3_bind_int64(x->state, 4, (int64_t)time(NULL));
		raw_step(x, x->state, "checkpoint");
		raw_step(x, x->commit, "commit");
	}
	return span_end(t0);
}

static struct span raw_run(const char *dir, const struct rows *r, enum workload w)
{
	struct raw x = {0};
	char path[600];
	struct span s;

	db_path(path, sizeof(path), dir, "raw");
	raw_open(&x, path, r);
	if (w == W_UPDATE)
		raw_pass(&x, r, false);
	s = raw_pass(&x, r, w == W_EXISTS);
	raw_close(&x);
	return s;
}

/* ---------------------------------------------------------------- main */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double best(const double *v, int n)
{
	double m = v[0];

	for (int i = 1; i < n; i++)
		m = v[i] < m ? v[i] : m;
	return m;
}

static double worst(const double *v, int n)
{
	double m = v[0];

	for (int i = 1; i < n; i++)
		m = v[i] > m ? v[i] : m;
	return m;
}

/* Rows per CPU-second: the best, median and worst of the runs. */
struct rate {
	double best, median, worst;
};

static struct rate rate_of(size_t nrows, double *cpu, int n)
{
	struct rate r = {(double)nrows / best(cpu, n), 0, (double)nrows / worst(cpu, n)};

	r.median = (double)nrows / median(cpu, n);
	return r;
}

int main(int argc, char **argv)
{
	size_t nrows = 100000;
	int repeat = 5;
	bool table = false;
	const char *dir = NULL, *only = NULL;
	char tmpl[] = "/tmp/tg-bench-storage-XXXXXX";
	struct rows r;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--rows") == 0 && i + 1 < argc)
			nrows = strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc)
			repeat = atoi(argv[++i]);
		else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
			dir = argv[++i];
		else if (strcmp(argv[i], "--workload") == 0 && i + 1 < argc)
			only = argv[++i];
		else if (strcmp(argv[i], "--table") == 0)
			table = true;
		else {
			fprintf(stderr, "usage: storage [--rows N] [--repeat R] [--dir DIR] [--workload "
			                "insert|update|exists] [--table]\n");
			return 2;
		}
	}
	if (nrows == 0 || repeat < 1 || repeat > MAX_REPEAT) {
		fprintf(stderr, "storage bench: --rows must be > 0, --repeat 1..%d\n", MAX_REPEAT);
		return 2;
	}
	if (!dir && !(dir = mkdtemp(tmpl)))
		die("mkdtemp", "cannot create a directory under /tmp");
	rows_make(&r, nrows);
	if (table)
		printf("| workload | rows | tollgate rows/s (CPU, best) | median, worst | raw SQLite rows/s (CPU, best) "
		       "| median, worst | raw ÷ tollgate (best; median) | tollgate rows/s (elapsed) | raw rows/s "
		       "(elapsed) |\n|---|---|---|---|---|---|---|---|---|\n");
	for (int w = 0; w < W_COUNT; w++) {
		double hw[MAX_REPEAT], hc[MAX_REPEAT], xw[MAX_REPEAT], xc[MAX_REPEAT];
		struct rate h, x;
		double hwall, xwall;

		if (only && strcmp(only, workload_name[w]) != 0)
			continue;
		/* Interleaved, so a change of machine load hits both alike. */
		for (int k = 0; k < repeat; k++) {
			struct span a = host_run(dir, &r, (enum workload)w), b = raw_run(dir, &r, (enum workload)w);

			hw[k] = a.wall, hc[k] = a.cpu, xw[k] = b.wall, xc[k] = b.cpu;
		}
		h = rate_of(nrows, hc, repeat);
		x = rate_of(nrows, xc, repeat);
		hwall = (double)nrows / median(hw, repeat);
		xwall = (double)nrows / median(xw, repeat);
		if (table)
			printf("| %s | %zu | %.0f | %.0f, %.0f | %.0f | %.0f, %.0f | %.2f; %.2f | %.0f | %.0f |\n",
			       workload_name[w], nrows, h.best, h.median, h.worst, x.best, x.median, x.worst,
			       x.best / h.best, x.median / h.median, hwall, xwall);
		else
			printf("{\"bench\":\"storage\",\"workload\":\"%s\",\"rows\":%zu,\"columns\":%zu,\"rows_per_tx\":%d,"
			       "\"tollgate_rows_per_cpu_s\":%.0f,\"raw_rows_per_cpu_s\":%.0f,\"ratio_cpu\":%.3f,"
			       "\"tollgate_rows_per_cpu_s_median\":%.0f,\"tollgate_rows_per_cpu_s_worst\":%.0f,"
			       "\"raw_rows_per_cpu_s_median\":%.0f,\"raw_rows_per_cpu_s_worst\":%.0f,"
			       "\"ratio_cpu_median\":%.3f,\"repeat\":%d,"
			       "\"tollgate_rows_per_s\":%.0f,\"raw_rows_per_s\":%.0f,\"sqlite\":\"%s\"}\n",
			       workload_name[w], nrows, r.ncols, ROWS_PER_TX, h.best, x.best, x.best / h.best, h.median,
			       h.worst, x.median, x.worst, x.median / h.median, repeat, hwall, xwall,
			       sqlite3_libversion());
		fflush(stdout);
	}
	{
		char path[600];
		/* db_path() removes what an earlier run left. */
		db_path(path, sizeof(path), dir, "host");
		db_path(path, sizeof(path), dir, "raw");
	}
	if (dir == tmpl)
		rmdir(tmpl);
	free(r.v);
	free(r.asin);
	return 0;
}
