/*
 * test_web.c - the web page's C parts: the validation of /api/deals
 * parameters, the escaping of values (JSON, CSV), pages read from a real
 * SQLite file (order, ties, offset, search, the index), the web config
 * block, the token file, and the per-client rate limit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "storage/export.h"
#include "storage/storage.h"
#include "util/dynbuf.h"
#include "web/params.h"
#include "web/priv.h"
#include "web/ratelimit.h"
#include "web/web.h"

/* ------------------------------------------------------------ fixture */

static const struct tg_column columns[] = {
    {"domain", TG_INT, true},          {"asin", TG_TEXT, true},      {"title", TG_TEXT, false},
    {"current_cents", TG_INT, false},  {"drop_pct", TG_INT, false},  {"est_profit_cents", TG_INT, false},
    {"sales_rank", TG_INT, false},     {"score", TG_REAL, false},
};
static const struct tg_table deals = {"deals", columns, sizeof(columns) / sizeof(columns[0])};

struct fixture {
	char dir[64], path[128];
	struct storage *st;
	struct storage_conn *conn;
	const struct storage_table *t;
};

static void add_row(struct fixture *f, const char *asin, const char *title, int64_t price, int64_t drop,
                    int64_t profit)
{
	struct tg_value v[] = {TG_VINT("domain", 1),           TG_VTEXT("asin", asin), TG_VTEXT("title", title),
	                       TG_VINT("current_cents", price), TG_VINT("drop_pct", drop), TG_VINT("est_profit_cents", profit)};
	char *err = NULL;

	assert_int_equal(storage_upsert(f->conn, "deals", v, 6, &err), 0);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char *err = NULL;

	strcpy(f->dir, "/tmp/tg-web-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/tollgate.db", f->dir);
	assert_int_equal(storage_open(&f->st, "sqlite", f->path, &err), 0);
	assert_int_equal(storage_connect(f->st, &f->conn, &err), 0);
	assert_int_equal(storage_declare(f->conn, &deals, &err), 0);
	assert_int_equal(storage_table_get(f->conn, "deals", &f->t, &err), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[160];

	storage_conn_free(f->conn);
	storage_free(f->st);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* Parse "k=v&k=v" (no decoding: the tests use plain text) into params. */
static int parse(struct fixture *f, const char *query, bool csv, struct web_deals_request *req, char **err)
{
	static char buf[4096];
	static struct web_param params[64];
	size_t n = 0;

	snprintf(buf, sizeof(buf), "%s", query);
	for (char *save = NULL, *kv = strtok_r(buf, "&", &save); kv && n < 64; kv = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(kv, '=');
		params[n].key = kv;
		params[n].value = eq ? (*eq = '\0', eq + 1) : NULL;
		n++;
	}
	free(*err);
	*err = NULL;
	return web_deals_params(f->t, params, n, csv, req, err);
}

/* ------------------------------------------------- parameter checking */

static void test_params_defaults_and_bounds(void **state)
{
	struct fixture *f = *state;
	struct web_deals_request req;
	char *err = NULL;

	assert_int_equal(parse(f, "", false, &req, &err), 0);
	assert_int_equal(req.q.limit, WEB_LIMIT_DEFAULT);
	assert_int_equal(req.q.offset, 0);
	assert_null(req.q.order_by);
	assert_int_equal(parse(f, "", true, &req, &err), 0);
	assert_int_equal(req.q.limit, WEB_CSV_MAX);

	assert_int_equal(parse(f, "limit=500&offset=1000", false, &req, &err), 0);
	assert_int_equal(req.q.limit, 500);
	assert_int_equal(req.q.offset, 1000);
	assert_int_equal(parse(f, "limit=501", false, &req, &err), TG_EINVAL);
	assert_non_null(strstr(err, "limit must be a whole number from 1 to 500"));
	assert_int_equal(parse(f, "limit=0", false, &req, &err), TG_EINVAL);
	assert_int_equal(parse(f, "limit=5x", false, &req, &err), TG_EINVAL);
	assert_int_equal(parse(f, "limit=", false, &req, &err), TG_EINVAL);
	assert_int_equal(parse(f, "limit=20000", true, &req, &err), 0);
	assert_int_equal(parse(f, "offset=-1", false, &req, &err), TG_EINVAL);
	assert_int_equal(parse(f, "offset=99999999999999999999", false, &req, &err), TG_EINVAL);
	assert_int_equal(parse(f, "limit=1&limit=2", false, &req, &err), TG_EINVAL);
	assert_non_null(strstr(err, "given twice"));
	assert_int_equal(parse(f, "flag", false, &req, &err), TG_EINVAL);
	free(err);
}

static void test_params_identifiers(void **state)
{
	struct fixture *f = *state;
	struct web_deals_request req;
	char *err = NULL;

	assert_int_equal(parse(f, "sort=drop_pct", false, &req, &err), 0);
	assert_string_equal(req.q.order_by, "-drop_pct"); /* descending by default */
	assert_int_equal(parse(f, "sort=est_profit_cents&order=asc", false, &req, &err), 0);
	assert_string_equal(req.q.order_by, "est_profit_cents");
	/* Only the offered (indexed) columns, and only real ones. */
	assert_int_equal(parse(f, "sort=score", false, &req, &err), TG_EINVAL);
	assert_non_null(strstr(err, "sort must be one of est_profit_cents"));
	assert_int_equal(parse(f, "sort=drop_pct;DROP TABLE deals", false, &req, &err), TG_EINVAL);
	assert_int_equal(parse(f, "sort=\"drop_pct\"", false, &req, &err), TG_EINVAL);
	assert_int_equal(parse(f, "sort=drop_pct&order=sideways", false, &req, &err), TG_EINVAL);
	assert_int_equal(parse(f, "order=asc", false, &req, &err), TG_EINVAL);

	/* Bounds name numeric columns of the table; values are typed. */
	assert_int_equal(parse(f, "drop_pct_min=30&current_cents_max=1999&score_min=0.5", false, &req, &err), 0);
	assert_int_equal(req.q.nfilters, 3);
	assert_string_equal(req.filters[0].value.column, "drop_pct");
	assert_int_equal(req.filters[0].op, TG_GE);
	assert_int_equal(req.filters[0].value.type, TG_INT);
	assert_int_equal(req.filters[0].value.v.i, 30);
	assert_int_equal(req.filters[1].op, TG_LE);
	assert_int_equal(req.filters[1].value.v.i, 1999);
	assert_int_equal(req.filters[2].value.type, TG_REAL);
	assert_int_equal(parse(f, "drop_pct_min=30x", false, &req, &err), TG_EINVAL);
	assert_non_null(strstr(err, "holds integers"));
	assert_int_equal(parse(f, "drop_pct_min=null", false, &req, &err), TG_EINVAL);
	assert_int_equal(parse(f, "title_min=a", false, &req, &err), TG_EINVAL);
	assert_int_equal(parse(f, "nope_min=1", false, &req, &err), TG_EINVAL);
	assert_non_null(strstr(err, "no numeric column 'nope'"));
	assert_int_equal(parse(f, "drop_pct=1", false, &req, &err), TG_EINVAL);
	assert_non_null(strstr(err, "unknown parameter 'drop_pct'"));
	assert_int_equal(parse(f, "_min=1", false, &req, &err), TG_EINVAL);
	assert_int_equal(parse(f, "drop_pct_min=1&drop_pct_min=2", false, &req, &err), TG_EINVAL);

	/* The search: bounded, literal. */
	assert_int_equal(parse(f, "q=blu-ray", false, &req, &err), 0);
	assert_string_equal(req.q.match_column, "title");
	assert_string_equal(req.q.match_text, "blu-ray");
	assert_int_equal(parse(f, "q=", false, &req, &err), 0);
	assert_null(req.q.match_column);
	char longq[WEB_SEARCH_MAX + 8] = "q=";
	memset(longq + 2, 'a', WEB_SEARCH_MAX + 1);
	longq[WEB_SEARCH_MAX + 3] = '\0';
	assert_int_equal(parse(f, longq, false, &req, &err), TG_EINVAL);

	char many[1024] = "";
	for (int i = 0; i <= WEB_PARAMS_MAX; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "%sp%d=1", i ? "&" : "", i);
	assert_int_equal(parse(f, many, false, &req, &err), TG_EINVAL);
	assert_non_null(strstr(err, "at most"));
	free(err);
}

/* ------------------------------------------------------------ escaping */

static void test_json_escaping(void **state)
{
	struct dynbuf b = DYNBUF_INIT(1 << 20);
	(void)state;

	export_json_string(&b, "<img src=x onerror=alert(1)>");
	assert_string_equal(dynbuf_str(&b), "\"\\u003cimg src=x onerror=alert(1)\\u003e\"");
	dynbuf_reset(&b);
	export_json_string(&b, "a\"b\\c&d\n\x01");
	assert_string_equal(dynbuf_str(&b), "\"a\\\"b\\\\c\\u0026d\\u000a\\u0001\"");
	dynbuf_reset(&b);
	export_json_string(&b, "line\xe2\x80\xa8sep \xc3\xa9"); /* U+2028, then é kept as UTF-8 */
	assert_string_equal(dynbuf_str(&b), "\"line\\u2028sep \xc3\xa9\"");
	dynbuf_reset(&b);
	struct tg_value row[] = {TG_VINT("n", -5), TG_VNULL("x"), TG_VTEXT("t", "</script>"), TG_VREAL("r", 0.5)};
	export_json_row(&b, row, 4);
	assert_string_equal(dynbuf_str(&b), "{\"n\":-5,\"x\":null,\"t\":\"\\u003c/script\\u003e\",\"r\":0.5}");
	assert_null(strchr(dynbuf_str(&b), '<'));
	dynbuf_free(&b);
}

static int collect(void *ud, const char *data, size_t len)
{
	return export_to_dynbuf(ud, data, len);
}

static void test_csv_escaping(void **state)
{
	struct fixture *f = *state;
	struct storage_query q = {.table = "deals", .limit = -1};
	struct dynbuf b = DYNBUF_INIT(1 << 20);
	char *err = NULL;

	add_row(f, "A000000001", "plain", 100, 10, 5);
	add_row(f, "A000000002", "comma, \"quoted\"\nnewline", 200, 20, -5);
	add_row(f, "A000000003", "=HYPERLINK(\"x\")", 300, 30, 0);
	assert_int_equal(export_rows(f->conn, &q, EXPORT_CSV, collect, &b, &err), 0);
	assert_string_equal(dynbuf_str(&b),
	                    "domain,asin,title,current_cents,drop_pct,est_profit_cents,sales_rank,score\r\n"
	                    "1,A000000001,plain,100,10,5,,\r\n"
	                    "1,A000000002,\"comma, \"\"quoted\"\"\nnewline\",200,20,-5,,\r\n"
	                    "1,A000000003,\"'=HYPERLINK(\"\"x\"\")\",300,30,0,,\r\n");
	dynbuf_free(&b);
	assert_int_equal(export_rows(f->conn, &q, EXPORT_JSONL, collect, &b, &err), 0);
	assert_non_null(strstr(dynbuf_str(&b), "\"title\":\"=HYPERLINK(\\\"x\\\")\"")); /* JSON keeps the text as it is */
	int lines = 0;
	for (const char *c = dynbuf_str(&b); *c; c++)
		lines += *c == '\n';
	assert_int_equal(lines, 3); /* one object a line, no header */
	dynbuf_free(&b);
	/* A document past its buffer's cap stops the export, with a reason. */
	struct dynbuf small = DYNBUF_INIT(100);
	assert_int_equal(export_rows(f->conn, &q, EXPORT_CSV, collect, &small, &err), TG_EOVERSIZE);
	assert_non_null(strstr(err, "larger than its buffer"));
	dynbuf_free(&small);
	free(err);
}

/* --------------------------------------------------------------- pages */

struct asins {
	char list[64][16];
	int n;
};

static int take_asin(void *ud, const struct tg_value *row, size_t n)
{
	struct asins *a = ud;
	for (size_t i = 0; i < n; i++)
		if (strcmp(row[i].column, "asin") == 0 && a->n < 64)
			snprintf(a->list[a->n++], 16, "%s", row[i].v.s);
	return 0;
}

static void test_pages_ordered_without_overlap(void **state)
{
	struct fixture *f = *state;
	struct storage_query q = {.table = "deals", .order_by = "-est_profit_cents", .limit = 4};
	struct asins seen = {.n = 0};
	char *err = NULL, asin[16];
	int64_t total;

	/* Ties on the sort column: the key decides, so pages do not overlap. */
	for (int i = 0; i < 10; i++) {
		snprintf(asin, sizeof(asin), "B%09d", i);
		add_row(f, asin, i % 2 ? "Blu-ray 100% off_x" : "Novel", 1000 + i, i, i < 6 ? 500 : 900);
	}
	for (q.offset = 0; q.offset < 12; q.offset += 4)
		assert_int_equal(storage_query(f->conn, &q, take_asin, &seen, &err), 0);
	assert_int_equal(seen.n, 10);
	assert_string_equal(seen.list[0], "B000000009"); /* profit 900, key descending */
	assert_string_equal(seen.list[3], "B000000006");
	assert_string_equal(seen.list[4], "B000000005"); /* profit 500 */
	for (int i = 0; i < 10; i++)
		for (int j = 0; j < i; j++)
			assert_string_not_equal(seen.list[i], seen.list[j]);

	/* Filters, a literal search (% and _ are not wildcards), a count. */
	struct tg_filter ge = {TG_GE, TG_VINT("drop_pct", 5)};
	struct storage_query s = {.table = "deals", .filters = &ge, .nfilters = 1, .match_column = "title",
	                          .match_text = "100% OFF_", .limit = -1};
	assert_int_equal(storage_count(f->conn, &s, &total, &err), 0);
	assert_int_equal(total, 3); /* 5, 7, 9; ASCII case ignored */
	s.match_text = "1_0";
	assert_int_equal(storage_count(f->conn, &s, &total, &err), 0);
	assert_int_equal(total, 0);
	s.match_text = "%";
	assert_int_equal(storage_count(f->conn, &s, &total, &err), 0);
	assert_int_equal(total, 3);

	/* Bad requests are refused before any SQL. */
	s.match_column = "drop_pct";
	assert_int_equal(storage_count(f->conn, &s, &total, &err), TG_EINVAL);
	free(err);
	err = NULL;
	q.order_by = "-nope";
	assert_int_equal(storage_query(f->conn, &q, take_asin, &seen, &err), TG_EINVAL);
	free(err);
	err = NULL;
	q.order_by = NULL;
	q.offset = -1;
	assert_int_equal(storage_query(f->conn, &q, take_asin, &seen, &err), TG_EINVAL);
	free(err);
}

static int plan_row(void *ud, int n, char **vals, char **names)
{
	(void)names;
	if (n >= 4 && vals[3])
		strncat(ud, vals[3], 511 - strlen(ud));
	return 0;
}

static void test_index_serves_the_sort(void **state)
{
	struct fixture *f = *state;
	char plan[512] = "", *err = NULL;
	sqlite3 *db;

	assert_int_equal(storage_index(f->conn, "deals", "est_profit_cents", &err), 0);
	assert_int_equal(storage_index(f->conn, "deals", "est_profit_cents", &err), 0); /* idempotent */
	assert_int_equal(storage_index(f->conn, "deals", "nope", &err), TG_EINVAL);
	free(err);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	/* The statement storage_query() builds for this page. */
	assert_int_equal(sqlite3_exec(db,
	                              "EXPLAIN QUERY PLAN SELECT * FROM deals WHERE drop_pct >= 10 ORDER BY "
	                              "est_profit_cents DESC, domain DESC, asin DESC LIMIT 50 OFFSET 100",
	                              plan_row, plan, NULL),
	                 SQLITE_OK);
	sqlite3_close(db);
	assert_non_null(strstr(plan, "tg_ix_deals_est_profit_cents"));
	assert_null(strstr(plan, "TEMP B-TREE"));
}

/* ------------------------------------------------------ config, token */

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	assert_int_equal(chmod(path, mode), 0);
}

static int load(struct fixture *f, const char *web_block, char **err)
{
	char path[160], text[1024];
	struct config cf;
	int rc;

	snprintf(path, sizeof(path), "%s/t.cfg", f->dir);
	snprintf(text, sizeof(text), "plugin_path = [\"/p\"];\n%s\n", web_block);
	write_file(path, text, 0644);
	free(*err);
	*err = NULL;
	rc = config_load(&cf, path, err);
	config_release(&cf);
	return rc;
}

static void test_config_web_block(void **state)
{
	struct fixture *f = *state;
	char *err = NULL;

	assert_int_equal(load(f, "web: { listen = \"127.0.0.1:0\"; requests_per_s = 50; };", &err), 0);
	assert_int_equal(load(f, "web: { listen = \"8080\"; };", &err), 0);
	assert_int_equal(load(f, "web: { listen = \"0.0.0.0:8080\"; token_file = \"/etc/t\"; };", &err), 0);
	assert_int_equal(load(f, "web: { listen = \"0.0.0.0:8080\"; };", &err), TG_EINVAL);
	assert_non_null(strstr(err, "t.cfg:2: 'web.listen' = \"0.0.0.0:8080\" is not a loopback address"));
	assert_int_equal(load(f, "web: { listen = \"localhost:8080\"; };", &err), TG_EINVAL);
	assert_non_null(strstr(err, "t.cfg:2: 'web.listen' = \"localhost:8080\" must be [IPv4]:port"));
	assert_int_equal(load(f, "web: { token_file = \"token\"; };", &err), TG_EINVAL);
	assert_non_null(strstr(err, "'web.token_file' = \"token\" must be an absolute path"));
	assert_int_equal(load(f, "web: { requests_per_s = 0; };", &err), TG_EINVAL);
	assert_non_null(strstr(err, "'web.requests_per_s' = 0 is out of range"));
	assert_int_equal(load(f, "web: { port = 1; };", &err), TG_EINVAL);
	assert_non_null(strstr(err, "unknown key 'web.port'"));
	free(err);
}

static void test_token_file(void **state)
{
	struct fixture *f = *state;
	struct web_server w = {0};
	char path[160], *err = NULL;

	snprintf(path, sizeof(path), "%s/token", f->dir);
	write_file(path, "0123456789abcdefXYZ+/=\n", 0644);
	assert_int_equal(web_auth_load(&w, path, &err), TG_EINVAL);
	assert_non_null(strstr(err, "accessible by others (mode 644)"));
	assert_null(strstr(err, "0123456789abcdef")); /* the secret is never in a message */
	free(err);
	err = NULL;
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(web_auth_load(&w, path, &err), 0);
	assert_string_equal(w.token, "0123456789abcdefXYZ+/=");
	free(w.token);
	w.token = NULL;
	write_file(path, "short", 0600);
	assert_int_equal(web_auth_load(&w, path, &err), TG_EINVAL);
	assert_non_null(strstr(err, "at least 16 characters"));
	free(err);
	err = NULL;
	write_file(path, "0123456789abcdef;cookie=injected", 0600);
	assert_int_equal(web_auth_load(&w, path, &err), TG_EINVAL);
	free(err);
	err = NULL;
	snprintf(path, sizeof(path), "%s/missing", f->dir);
	assert_int_equal(web_auth_load(&w, path, &err), TG_EINVAL);
	assert_non_null(strstr(err, "No such file"));
	free(err);
}

static void test_check_reads_the_token_file(void **state)
{
	struct fixture *f = *state;
	struct config cf = {0};
	char path[160], *err = NULL;

	snprintf(path, sizeof(path), "%s/token", f->dir);
	cf.web_listen = "0.0.0.0:8080";
	cf.web_token_file = path;
	assert_int_equal(web_check(&cf, &err), TG_EINVAL); /* missing */
	free(err);
	err = NULL;
	write_file(path, "0123456789abcdef0123", 0604);
	assert_int_equal(web_check(&cf, &err), TG_EINVAL); /* readable by others */
	assert_non_null(strstr(err, "web.token_file"));
	free(err);
	err = NULL;
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(web_check(&cf, &err), 0);
	cf.web_listen = ""; /* off: nothing to check */
	cf.web_token_file = "/nonexistent";
	assert_int_equal(web_check(&cf, &err), 0);
	assert_null(err);
}

static void test_rate_limit(void **state)
{
	struct ratelimit rl;
	unsigned char a[16] = {1}, b[16] = {2};
	int granted = 0;
	(void)state;

	ratelimit_init(&rl, 10, 20);
	for (int i = 0; i < 30; i++)
		granted += ratelimit_take(&rl, a, 1000);
	assert_int_equal(granted, 20);               /* the burst, then no more */
	assert_true(ratelimit_take(&rl, b, 1000));   /* another client has its own bucket */
	assert_false(ratelimit_take(&rl, a, 1050));  /* half a token refilled */
	assert_true(ratelimit_take(&rl, a, 1150));   /* 10 per second */
	/* More clients than slots: the oldest slot is reused, none refused. */
	for (int i = 0; i < RATELIMIT_CLIENTS * 2; i++) {
		unsigned char c[16] = {0};
		c[0] = 9;
		c[1] = (unsigned char)i;
		assert_true(ratelimit_take(&rl, c, 2000 + i));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_params_defaults_and_bounds, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_params_identifiers, setup, teardown),
	    cmocka_unit_test(test_json_escaping),
	    cmocka_unit_test_setup_teardown(test_csv_escaping, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pages_ordered_without_overlap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_index_serves_the_sort, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_config_web_block, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_token_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_check_reads_the_token_file, setup, teardown),
	    cmocka_unit_test(test_rate_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
