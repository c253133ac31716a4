/*
 * web_deals.c - /api/deals on a large deals table: the latency of a page,
 * p50 and p95, per sort column and for the common filters, over real HTTP
 * on 127.0.0.1 against the real web server.
 *
 *   web_deals [--rows N] [--requests N] [--db PATH]
 *
 * Builds (or reuses, with --db) a SQLite database holding N rows of the
 * shipped plugins' deals table (default 1,000,000), starts the web server on
 * it the way the daemon does (indexes included), and times each request
 * from sending it to the last byte. Prints one line per scenario, and the
 * same as a JSON object on the next line (tests/bench/run reads those).
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "core/daemon.h"
#include "deals.h"
#include "observe/log.h"
#include "storage/storage.h"
#include "util/clock.h"
#include "web/web.h"

static uint64_t rng = 88172645463325252ULL;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int64_t between(int64_t lo, int64_t hi)
{
	return lo + (int64_t)(next() % (uint64_t)(hi - lo + 1));
}

static void fill(struct storage_conn *conn, long rows)
{
	static const char *const words[] = {"Golden", "Hidden", "Silent", "Red", "Wild", "Ancient", "Little", "Modern"};
	static const char *const kinds[] = {"Novel", "Blu-ray", "Puzzle", "Headphones", "Vinyl", "Game", "Pan Set"};
	int64_t now = tg_wall_ms() / 1000;
	char *err = NULL, asin[32], title[128];
	int64_t t0 = tg_mono_ms();

	for (long i = 0; i < rows; i++) {
		int64_t avg = between(600, 60000), cur = avg * between(40, 90) / 100, seen = now - between(0, 86400 * 30);
		struct tg_value v[] = {
		    TG_VINT(COL_DOMAIN, 1),
		    TG_VTEXT(COL_ASIN, asin),
		    TG_VTEXT(COL_TITLE, title),
		    TG_VINT(COL_CURRENT, cur),
		    TG_VINT(COL_AVG, avg),
		    TG_VINT(COL_DROP_PCT, (avg - cur) * 100 / avg),
		    TG_VINT(COL_RANK, between(1, 3000000)),
		    TG_VINT(COL_PROFIT, avg - cur - avg * 15 / 100 - 300),
		    TG_VINT(COL_FIRST_SEEN, seen),
		    TG_VINT(COL_LAST_SEEN, seen + between(0, 86400)),
		    TG_VTEXT(COL_WRITTEN_BY, "bench"),
		};
		snprintf(asin, sizeof(asin), "B%09ld", i);
		snprintf(title, sizeof(title), "The %s %s %s, Edition %ld", words[next() % 8], words[next() % 8],
		         kinds[next() % 7], i);
		if (i % 10000 == 0 && storage_begin(conn, &err) != 0)
			goto fail;
		if (storage_upsert(conn, "deals", v, sizeof(v) / sizeof(v[0]), &err) != 0)
			goto fail;
		if ((i % 10000 == 9999 || i == rows - 1) && storage_commit(conn, &err) != 0)
			goto fail;
	}
	fprintf(stderr, "web_deals: %ld rows written in %.1f s\n", rows, (double)(tg_mono_ms() - t0) / 1000.0);
	return;
fail:
	fprintf(stderr, "web_deals: cannot fill the table: %s\n", err ? err : "?");
	exit(1);
}

static size_t received; /* bytes of the answers of the current scenario */

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	received += size * n;
	return size * n;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Time n requests of path (offsets walk the first pages) and print p50/p95. */
static void scenario(CURL *curl, uint16_t port, const char *name, const char *query, int n, bool deep)
{
	double *ms = calloc((size_t)n, sizeof(double));
	char url[512];
	long status = 0;

	received = 0;

	for (int i = 0; i < n; i++) {
		struct timespec a, b;
		/* First pages mostly, as people browse; "deep" jumps far in. */
		long offset = deep ? (long)between(0, 900000) : (long)(i % 10) * 50;
		snprintf(url, sizeof(url), "http://127.0.0.1:%u/api/deals?%s%slimit=50&offset=%ld", (unsigned)port, query,
		         *query ? "&" : "", offset);
		curl_easy_setopt(curl, CURLOPT_URL, url);
		clock_gettime(CLOCK_MONOTONIC, &a);
		if (curl_easy_perform(curl) != CURLE_OK) {
			fprintf(stderr, "web_deals: %s failed\n", url);
			exit(1);
		}
		clock_gettime(CLOCK_MONOTONIC, &b);
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
		if (status != 200) {
			fprintf(stderr, "web_deals: %s answered %ld\n", url, status);
			exit(1);
		}
		ms[i] = (double)(b.tv_sec - a.tv_sec) * 1000.0 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
	}
	qsort(ms, (size_t)n, sizeof(double), cmp_double);
	printf("%-44s p50 %7.2f ms   p95 %7.2f ms   (%d requests, %zu bytes each)\n", name, ms[n / 2],
	       ms[(int)(0.95 * (n - 1))], n, received / (size_t)n);
	/* The same as a JSON line, for tests/bench/run. */
	printf("{\"bench\":\"web_deals\",\"scenario\":\"%s\",\"p50_ms\":%.2f,\"p95_ms\":%.2f,\"requests\":%d}\n", name,
	       ms[n / 2], ms[(int)(0.95 * (n - 1))], n);
	free(ms);
}

static int count_row(void *ud, const struct tg_value *row, size_t n)
{
	(void)row;
	(void)n;
	(*(int *)ud)++;
	return 0;
}

/* Where a page's time goes, in-process (no HTTP): the 50 rows from the
 * index, and the total count of matching rows that every answer carries. */
static void breakdown(struct storage_conn *conn, const char *order_by, const struct tg_filter *f, size_t nf, int n)
{
	struct storage_query q = {.table = "deals", .filters = f, .nfilters = nf, .order_by = order_by, .limit = 50};
	double *page = calloc((size_t)n, sizeof(double)), *count = calloc((size_t)n, sizeof(double));
	char *err = NULL;
	int64_t total = 0;

	for (int i = 0; i < n; i++) {
		struct timespec a, b, c;
		int rows = 0;
		q.offset = (i % 10) * 50;
		clock_gettime(CLOCK_MONOTONIC, &a);
		if (storage_query(conn, &q, count_row, &rows, &err) != 0)
			exit(1);
		clock_gettime(CLOCK_MONOTONIC, &b);
		if (storage_count(conn, &q, &total, &err) != 0)
			exit(1);
		clock_gettime(CLOCK_MONOTONIC, &c);
		page[i] = (double)(b.tv_sec - a.tv_sec) * 1000.0 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
		count[i] = (double)(c.tv_sec - b.tv_sec) * 1000.0 + (double)(c.tv_nsec - b.tv_nsec) / 1e6;
	}
	qsort(page, (size_t)n, sizeof(double), cmp_double);
	qsort(count, (size_t)n, sizeof(double), cmp_double);
	printf("  in-process, order %s%s: 50 rows p50 %.2f ms p95 %.2f ms; the count (%lld) p50 %.2f ms p95 %.2f ms\n",
	       order_by, nf ? " + filter" : "", page[n / 2], page[(int)(0.95 * (n - 1))], (long long)total, count[n / 2],
	       count[(int)(0.95 * (n - 1))]);
	free(page);
	free(count);
}

int main(int argc, char **argv)
{
	long rows = 1000000;
	int requests = 100;
	const char *db = NULL;
	char dir[64] = "", path[128];
	struct config cf;
	struct daemon d;
	struct storage *st;
	struct storage_conn *conn;
	struct web_server *web;
	char *err = NULL;
	struct stat sb;
	CURL *curl;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--rows") == 0 && i + 1 < argc)
			rows = atol(argv[++i]);
		else if (strcmp(argv[i], "--requests") == 0 && i + 1 < argc)
			requests = atoi(argv[++i]);
		else if (strcmp(argv[i], "--db") == 0 && i + 1 < argc)
			db = argv[++i];
		else {
			fprintf(stderr, "usage: web_deals [--rows N] [--requests N] [--db PATH]\n");
			return 64;
		}
	}
	log_setup(TG_LOG_WARN, NULL);
	if (!db) {
		snprintf(dir, sizeof(dir), "/tmp/tg-bench-web-XXXXXX");
		if (!mkdtemp(dir))
			return 1;
		snprintf(path, sizeof(path), "%s/tollgate.db", dir);
		db = path;
	}
	bool exists = stat(db, &sb) == 0;
	if (storage_open(&st, "sqlite", db, &err) || storage_connect(st, &conn, &err) ||
	    storage_declare(conn, &deals_table, &err)) {
		fprintf(stderr, "web_deals: %s\n", err ? err : "?");
		return 1;
	}
	if (!exists)
		fill(conn, rows);

	memset(&cf, 0, sizeof(cf));
	cf.web_listen = "127.0.0.1:0";
	cf.web_requests_per_s = 100000;
	daemon_init(&d);
	d.config = &cf;
	d.storage = st;
	int64_t t0 = tg_mono_ms();
	if (web_server_start(&d, &web, &err) != 0) {
		fprintf(stderr, "web_deals: %s\n", err ? err : "?");
		return 1;
	}
	printf("web_deals: %ld rows; indexes ready in %.1f s (made once, on the first start)\n", rows,
	       (double)(tg_mono_ms() - t0) / 1000.0);

	curl_global_init(CURL_GLOBAL_DEFAULT);
	curl = curl_easy_init();
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
	scenario(curl, web_server_port(web), "sort=est_profit_cents (first pages)", "sort=est_profit_cents", requests, false);
	scenario(curl, web_server_port(web), "sort=drop_pct&order=asc", "sort=drop_pct&order=asc", requests, false);
	scenario(curl, web_server_port(web), "sort=sales_rank", "sort=sales_rank", requests, false);
	scenario(curl, web_server_port(web), "sort=last_seen", "sort=last_seen", requests, false);
	scenario(curl, web_server_port(web), "sort=title&order=asc", "sort=title&order=asc", requests, false);
	scenario(curl, web_server_port(web), "sort=est_profit_cents&drop_pct_min=30", "sort=est_profit_cents&drop_pct_min=30",
	         requests, false);
	scenario(curl, web_server_port(web), "sort=est_profit_cents, offset up to 900k", "sort=est_profit_cents",
	         requests / 5 > 0 ? requests / 5 : 1, true);
	scenario(curl, web_server_port(web), "sort=est_profit_cents&q=blu-ray (scan)", "sort=est_profit_cents&q=blu-ray",
	         requests / 5 > 0 ? requests / 5 : 1, false);
	breakdown(conn, "-est_profit_cents", NULL, 0, requests);
	struct tg_filter ge30 = {TG_GE, TG_VINT(COL_DROP_PCT, 30)};
	breakdown(conn, "-est_profit_cents", &ge30, 1, requests);
	curl_easy_cleanup(curl);
	curl_global_cleanup();
	web_server_stop(web);
	storage_conn_free(conn);
	storage_free(st);
	if (dir[0]) {
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "web_deals: could not remove %s\n", dir);
	}
	return 0;
}
