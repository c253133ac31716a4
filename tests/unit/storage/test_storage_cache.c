/*
 * test_storage_cache.c - the prepared statements a connection keeps per row
 * shape (table entry, columns, operators) and the front's linear checks of
 * a row: a statement is reused only for the very shape it was built for,
 * and a table that changes gets new statements.
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
#include <unistd.h>

#include "storage/storage.h"

struct fixture {
	char dir[64];
	char path[128];
	struct storage *st;
	struct storage_conn *conn;
};

static const struct tg_column v1_columns[] = {
    {"k", TG_INT, true}, {"a", TG_INT, false}, {"b", TG_INT, false}, {"c", TG_TEXT, false},
};
static const struct tg_table v1 = {"t", v1_columns, 4};

static const struct tg_column v2_columns[] = {
    {"k", TG_INT, true}, {"a", TG_INT, false}, {"b", TG_INT, false}, {"c", TG_TEXT, false}, {"z", TG_INT, false},
};
static const struct tg_table v2 = {"t", v2_columns, 5};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char *err = NULL;

	strcpy(f->dir, "/tmp/tg-stcache-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/tollgate.db", f->dir);
	assert_int_equal(storage_open(&f->st, "sqlite", f->path, &err), 0);
	assert_int_equal(storage_connect(f->st, &f->conn, &err), 0);
	assert_int_equal(storage_declare(f->conn, &v1, &err), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char p[192];

	storage_conn_free(f->conn);
	storage_free(f->st);
	unlink(f->path);
	snprintf(p, sizeof(p), "%s-wal", f->path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", f->path);
	unlink(p);
	assert_int_equal(rmdir(f->dir), 0);
	free(f);
	return 0;
}

static void upsert_ok(struct storage_conn *c, const struct tg_value *v, size_t n)
{
	char *err = NULL;
	int rc = storage_upsert(c, "t", v, n, &err);

	if (rc != 0)
		fail_msg("upsert: %d %s", rc, err ? err : "");
}

/* The row with key k as "a=1 b=NULL ...", every column in table order. */
struct text {
	char s[256];
};

static int row_text(void *ud, const struct tg_value *row, size_t n)
{
	struct text *t = ud;
	size_t len = 0;

	for (size_t i = 0; i < n; i++) {
		const struct tg_value *v = &row[i];

		if (v->type == TG_INT)
			len += (size_t)snprintf(t->s + len, sizeof(t->s) - len, "%s%s=%lld", i ? " " : "", v->column,
			                        (long long)v->v.i);
		else if (v->type == TG_TEXT)
			len += (size_t)snprintf(t->s + len, sizeof(t->s) - len, "%s%s=%s", i ? " " : "", v->column,
			                        v->v.s);
		else
			len += (size_t)snprintf(t->s + len, sizeof(t->s) - len, "%s%s=NULL", i ? " " : "", v->column);
	}
	return 0;
}

static const char *row(struct storage_conn *c, int64_t k, struct text *t)
{
	struct tg_value key[] = {TG_VINT("k", k)};
	int rc;

	t->s[0] = '\0';
	rc = storage_get(c, "t", key, 1, row_text, t, NULL);
	return rc == TG_ENOTFOUND ? "(none)" : rc < 0 ? "(error)" : t->s;
}

/* Column sets of one table, interleaved and in different orders: each
 * upsert writes exactly the columns it names. */
static void test_column_sets(void **state)
{
	struct fixture *f = *state;
	struct text t;

	upsert_ok(f->conn, (struct tg_value[]){TG_VINT("k", 1), TG_VINT("a", 1)}, 2);
	upsert_ok(f->conn, (struct tg_value[]){TG_VINT("k", 1), TG_VINT("b", 2)}, 2);
	assert_string_equal(row(f->conn, 1, &t), "k=1 a=1 b=2 c=NULL");
	upsert_ok(f->conn, (struct tg_value[]){TG_VINT("k", 1), TG_VINT("a", 3)}, 2);
	assert_string_equal(row(f->conn, 1, &t), "k=1 a=3 b=2 c=NULL");
	/* The same columns in another order are another statement. */
	upsert_ok(f->conn, (struct tg_value[]){TG_VINT("b", 5), TG_VINT("k", 2), TG_VINT("a", 6)}, 3);
	upsert_ok(f->conn, (struct tg_value[]){TG_VINT("k", 2), TG_VINT("a", 7), TG_VINT("b", 8)}, 3);
	assert_string_equal(row(f->conn, 2, &t), "k=2 a=7 b=8 c=NULL");
	upsert_ok(f->conn, (struct tg_value[]){TG_VINT("b", 9), TG_VINT("k", 2), TG_VINT("a", 10)}, 3);
	assert_string_equal(row(f->conn, 2, &t), "k=2 a=10 b=9 c=NULL");
	/* Only the key: a new row, nothing updated on an existing one. */
	upsert_ok(f->conn, (struct tg_value[]){TG_VINT("k", 2)}, 1);
	upsert_ok(f->conn, (struct tg_value[]){TG_VINT("k", 3)}, 1);
	assert_string_equal(row(f->conn, 2, &t), "k=2 a=10 b=9 c=NULL");
	assert_string_equal(row(f->conn, 3, &t), "k=3 a=NULL b=NULL c=NULL");
	assert_string_equal(row(f->conn, 1, &t), "k=1 a=3 b=2 c=NULL");
}

/* Column names are compared, not their addresses: a plugin may build them
 * in one buffer it rewrites. */
static void test_names_in_a_reused_buffer(void **state)
{
	struct fixture *f = *state;
	char name[8];
	struct tg_value v[] = {TG_VINT("k", 1), TG_VINT(name, 0)};
	struct text t;

	strcpy(name, "a");
	v[1].v.i = 11;
	upsert_ok(f->conn, v, 2);
	strcpy(name, "b");
	v[1].v.i = 22;
	upsert_ok(f->conn, v, 2);
	assert_string_equal(row(f->conn, 1, &t), "k=1 a=11 b=22 c=NULL");
	/* And the front's checks are not fooled either. */
	strcpy(name, "k");
	assert_int_equal(storage_upsert(f->conn, "t", v, 2, NULL), TG_EINVAL);
	strcpy(name, "nope");
	assert_int_equal(storage_upsert(f->conn, "t", v, 2, NULL), TG_EINVAL);
	strcpy(name, "c");
	assert_int_equal(storage_upsert(f->conn, "t", v, 2, NULL), TG_ETYPE);
	assert_string_equal(row(f->conn, 1, &t), "k=1 a=11 b=22 c=NULL");
}

/* A remembered row shape does not let a bad row through. */
static void test_checks_after_a_good_row(void **state)
{
	struct fixture *f = *state;
	char *err = NULL;

	upsert_ok(f->conn, (struct tg_value[]){TG_VINT("k", 1), TG_VINT("a", 1)}, 2);
	assert_int_equal(storage_upsert(f->conn, "t", (struct tg_value[]){TG_VINT("k", 1), TG_VINT("k", 2)}, 2, &err),
	                 TG_EINVAL);
	assert_non_null(strstr(err, "named twice"));
	free(err);
	err = NULL;
	assert_int_equal(
	    storage_upsert(f->conn, "t", (struct tg_value[]){TG_VINT("k", 1), TG_VINT("a", 1), TG_VINT("a", 2)}, 3, &err),
	    TG_EINVAL);
	assert_non_null(strstr(err, "named twice"));
	free(err);
	err = NULL;
	/* Same columns as the good row, bad values. */
	assert_int_equal(storage_upsert(f->conn, "t", (struct tg_value[]){TG_VNULL("k"), TG_VINT("a", 1)}, 2, &err),
	                 TG_EINVAL);
	assert_non_null(strstr(err, "cannot be NULL"));
	free(err);
	assert_int_equal(storage_upsert(f->conn, "t", (struct tg_value[]){TG_VINT("k", 1), TG_VTEXT("a", "x")}, 2, NULL),
	                 TG_ETYPE);
	assert_int_equal(storage_upsert(f->conn, "t", (struct tg_value[]){TG_VINT("a", 1), TG_VINT("b", 1)}, 2, NULL),
	                 TG_EINVAL);
	/* get takes exactly the key, whatever an upsert of the same columns
	 * remembered. */
	upsert_ok(f->conn, (struct tg_value[]){TG_VINT("a", 5), TG_VINT("k", 9)}, 2);
	assert_int_equal(storage_get(f->conn, "t", (struct tg_value[]){TG_VINT("a", 5), TG_VINT("k", 9)}, 2, NULL, NULL,
	                             NULL),
	                 TG_EINVAL);
	assert_int_equal(storage_get(f->conn, "t", (struct tg_value[]){TG_VINT("k", 9)}, 1, NULL, NULL, NULL), 0);
}

/* A column added by this process: statements of the old shape keep
 * working, the new column is written by new ones. */
static void test_schema_change_here(void **state)
{
	struct fixture *f = *state;
	struct text t;
	char *err = NULL;

	upsert_ok(f->conn, (struct tg_value[]){TG_VINT("k", 1), TG_VINT("a", 1)}, 2);
	assert_int_equal(storage_declare(f->conn, &v2, &err), 0);
	upsert_ok(f->conn, (struct tg_value[]){TG_VINT("k", 1), TG_VINT("z", 26)}, 2);
	assert_string_equal(row(f->conn, 1, &t), "k=1 a=1 b=NULL c=NULL z=26");
	upsert_ok(f->conn, (struct tg_value[]){TG_VINT("k", 1), TG_VINT("a", 2)}, 2);
	assert_string_equal(row(f->conn, 1, &t), "k=1 a=2 b=NULL c=NULL z=26");
}

/* A column added through another connection while this one holds
 * statements for the old table: its old shapes still work (SQLite
 * re-prepares them), and the new column is found on first use. */
static void test_schema_change_elsewhere(void **state)
{
	struct fixture *f = *state;
	struct storage *st2;
	struct storage_conn *c2;
	struct text t;
	char *err = NULL;

	upsert_ok(f->conn, (struct tg_value[]){TG_VINT("k", 1), TG_VINT("a", 1)}, 2);
	assert_string_equal(row(f->conn, 1, &t), "k=1 a=1 b=NULL c=NULL");
	/* A second storage (another process, as far as the registry knows). */
	assert_int_equal(storage_open(&st2, "sqlite", f->path, &err), 0);
	assert_int_equal(storage_connect(st2, &c2, &err), 0);
	assert_int_equal(storage_declare(c2, &v2, &err), 0);
	upsert_ok(c2, (struct tg_value[]){TG_VINT("k", 1), TG_VINT("z", 5)}, 2);
	storage_conn_free(c2);
	storage_free(st2);

	upsert_ok(f->conn, (struct tg_value[]){TG_VINT("k", 1), TG_VINT("a", 2)}, 2);
	upsert_ok(f->conn, (struct tg_value[]){TG_VINT("k", 1), TG_VINT("z", 6)}, 2);
	assert_string_equal(row(f->conn, 1, &t), "k=1 a=2 b=NULL c=NULL z=6");
}

/* More shapes than the cache holds: evicted statements are built again,
 * and every row ends as a model of the writes says. */
static void test_many_shapes(void **state)
{
	struct fixture *f = *state;
	static const char *const cols[] = {"a", "b", "c"};
	/* Every ordering of every non-empty subset of (a, b, c). */
	static const int orders[15][3] = {{0, -1, -1}, {1, -1, -1}, {2, -1, -1}, {0, 1, -1}, {1, 0, -1},
	                                  {0, 2, -1},  {2, 0, -1},  {1, 2, -1},  {2, 1, -1}, {0, 1, 2},
	                                  {0, 2, 1},   {1, 0, 2},   {1, 2, 0},   {2, 0, 1},  {2, 1, 0}};
	enum { KEYS = 16 };
	int64_t model[KEYS + 1][3];
	char texts[KEYS + 1][3][16], want[128];
	struct text t;
	int writes = 0;

	for (int k = 0; k <= KEYS; k++)
		for (int c = 0; c < 3; c++)
			model[k][c] = -1;
	/* With the key first or last: 30 upsert shapes, and select shapes of
	 * 6 operators x 2 orders, for three rounds. */
	for (int round = 0; round < 3; round++) {
		for (int perm = 0; perm < 15; perm++) {
			for (int keylast = 0; keylast < 2; keylast++) {
				struct tg_value v[4];
				size_t n = 0;
				int k = (writes++ % KEYS) + 1;
				int64_t x = round * 100 + perm * 2 + keylast;

				if (!keylast)
					v[n++] = TG_VINT("k", k);
				for (int i = 0; i < 3 && orders[perm][i] >= 0; i++) {
					int c = orders[perm][i];

					model[k][c] = x;
					snprintf(texts[k][c], sizeof(texts[k][c]), "t%lld", (long long)x);
					v[n++] = c == 2 ? TG_VTEXT(cols[c], texts[k][c]) : TG_VINT(cols[c], x);
				}
				if (keylast)
					v[n++] = TG_VINT("k", k);
				upsert_ok(f->conn, v, n);
				assert_int_equal(storage_select(f->conn, "t",
				                                (struct tg_filter[]){{(enum tg_op)(perm % 6), TG_VINT("k", k)}},
				                                1, keylast ? "-a" : "b", 1, row_text, &t, NULL),
				                 0);
			}
		}
	}
	for (int k = 1; k <= KEYS; k++) {
		size_t len = (size_t)snprintf(want, sizeof(want), "k=%d", k);

		for (int c = 0; c < 3; c++) {
			if (model[k][c] < 0)
				len += (size_t)snprintf(want + len, sizeof(want) - len, " %s=NULL", cols[c]);
			else if (c == 2)
				len += (size_t)snprintf(want + len, sizeof(want) - len, " c=%s", texts[k][c]);
			else
				len += (size_t)snprintf(want + len, sizeof(want) - len, " %s=%lld", cols[c],
				                        (long long)model[k][c]);
		}
		assert_string_equal(row(f->conn, k, &t), want);
	}
}

static int count(void *ud, const struct tg_value *row, size_t n)
{
	(void)row;
	(void)n;
	++*(int *)ud;
	return 0;
}

static int selected(struct storage_conn *c, const struct tg_filter *filters, size_t n, const char *order)
{
	int rows = 0;

	assert_int_equal(storage_select(c, "t", filters, n, order, -1, count, &rows, NULL), 0);
	return rows;
}

/* Filters of the same column differ by operator and by NULL-ness; a
 * remove of the same filters is not a select. */
static void test_filter_shapes(void **state)
{
	struct fixture *f = *state;
	struct tg_filter eq = {TG_EQ, TG_VINT("a", 1)}, ne = {TG_NE, TG_VINT("a", 1)}, isnull = {TG_EQ, TG_VNULL("a")},
	                 notnull = {TG_NE, TG_VNULL("a")}, gt = {TG_GT, TG_VINT("a", 1)};

	upsert_ok(f->conn, (struct tg_value[]){TG_VINT("k", 1), TG_VINT("a", 1)}, 2);
	upsert_ok(f->conn, (struct tg_value[]){TG_VINT("k", 2), TG_VINT("a", 2)}, 2);
	upsert_ok(f->conn, (struct tg_value[]){TG_VINT("k", 3)}, 1);
	for (int round = 0; round < 2; round++) {
		assert_int_equal(selected(f->conn, &eq, 1, NULL), 1);
		assert_int_equal(selected(f->conn, &ne, 1, NULL), 1);
		assert_int_equal(selected(f->conn, &isnull, 1, NULL), 1);
		assert_int_equal(selected(f->conn, &notnull, 1, NULL), 2);
		assert_int_equal(selected(f->conn, &gt, 1, "a"), 1);
		assert_int_equal(selected(f->conn, NULL, 0, "a"), 3);
		assert_int_equal(selected(f->conn, NULL, 0, "-a"), 3);
	}
	assert_int_equal(storage_remove(f->conn, "t", (struct tg_value[]){TG_VINT("k", 1)}, 1, NULL), 0);
	assert_int_equal(selected(f->conn, &eq, 1, NULL), 0);
	assert_int_equal(selected(f->conn, NULL, 0, NULL), 2);
}

/* A table wider than any declaration (made by someone else, 300 columns):
 * the front's checks still find every column and every repetition. */
static void test_wide_table(void **state)
{
	struct fixture *f = *state;
	enum { WIDE = 300 };
	struct tg_value v[WIDE];
	char names[WIDE][8], sql[WIDE * 16 + 64], *err = NULL;
	size_t len;
	sqlite3 *db;

	len = (size_t)snprintf(sql, sizeof(sql), "CREATE TABLE wide (k INTEGER NOT NULL PRIMARY KEY");
	for (int i = 1; i < WIDE; i++)
		len += (size_t)snprintf(sql + len, sizeof(sql) - len, ", c%d INTEGER", i);
	snprintf(sql + len, sizeof(sql) - len, ")");
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	for (int i = 0; i < WIDE; i++) {
		snprintf(names[i], sizeof(names[i]), i ? "c%d" : "k", i);
		v[i] = TG_VINT(names[i], i + 1000);
	}
	/* Backwards, so no column is where its position would suggest. */
	for (int i = 0; i < WIDE / 2; i++) {
		struct tg_value x = v[i];
		v[i] = v[WIDE - 1 - i];
		v[WIDE - 1 - i] = x;
	}
	assert_int_equal(storage_upsert(f->conn, "wide", v, WIDE, &err), 0);
	v[0] = TG_VINT(names[7], 1);
	assert_int_equal(storage_upsert(f->conn, "wide", v, WIDE, &err), TG_EINVAL);
	assert_non_null(strstr(err, "named twice"));
	free(err);
	assert_int_equal(storage_get(f->conn, "wide", (struct tg_value[]){TG_VINT("k", 1000)}, 1, NULL, NULL, NULL), 0);
}

/* A connection remembers a few row shapes (a lookup by key and the whole
 * row, as the backfiller writes): more shapes than it remembers, taken in
 * turn with lookups between them and a column name in a reused buffer, each
 * write lands in the columns it names. */
static void test_alternating_shapes(void **state)
{
	struct fixture *f = *state;
	char name[8];
	struct text t;
	char want[128];

	for (int64_t k = 1; k <= 12; k++) {
		struct tg_value key[] = {TG_VINT("k", k)};
		struct tg_value reused[] = {TG_VINT("k", k), TG_VINT(name, 0)};

		assert_int_equal(storage_get(f->conn, "t", key, 1, NULL, NULL, NULL), TG_ENOTFOUND);
		upsert_ok(f->conn, (struct tg_value[]){TG_VINT("k", k), TG_VINT("a", k)}, 2);
		assert_int_equal(storage_get(f->conn, "t", key, 1, NULL, NULL, NULL), 0);
		strcpy(name, "b");
		reused[1].v.i = 10 * k;
		upsert_ok(f->conn, reused, 2);
		upsert_ok(f->conn, (struct tg_value[]){TG_VTEXT("c", "x"), TG_VINT("k", k)}, 2);
		strcpy(name, "a");
		reused[1].v.i = 100 * k;
		upsert_ok(f->conn, reused, 2);
		upsert_ok(f->conn, (struct tg_value[]){TG_VINT("b", k + 1), TG_VINT("k", k), TG_VTEXT("c", "y")}, 3);
		upsert_ok(f->conn, (struct tg_value[]){TG_VINT("k", k), TG_VINT("b", 1000 * k)}, 2);
		/* A remembered shape of the wrong kind is refused all the same. */
		strcpy(name, "k");
		assert_int_equal(storage_upsert(f->conn, "t", reused, 2, NULL), TG_EINVAL);
		assert_int_equal(storage_get(f->conn, "t", (struct tg_value[]){TG_VINT("b", k)}, 1, NULL, NULL, NULL),
		                 TG_EINVAL);
	}
	for (int64_t k = 1; k <= 12; k++) {
		snprintf(want, sizeof(want), "k=%lld a=%lld b=%lld c=y", (long long)k, (long long)(100 * k),
		         (long long)(1000 * k));
		assert_string_equal(row(f->conn, k, &t), want);
	}
}

/* The page cache size (storage.sqlite_cache_mb) reaches the connections
 * made after it is set, as SQLite itself reports it; earlier ones keep
 * theirs. */
static void test_page_cache_size(void **state)
{
	struct fixture *f = *state;
	struct storage_conn *c2, *c3;
	int64_t before, kib;
	char *err = NULL;

	assert_int_equal(storage_cache_kib(f->conn, &before, &err), 0);
	assert_true(before > 0);
	storage_set_cache_kib(f->st, 8 * 1024);
	assert_int_equal(storage_connect(f->st, &c2, &err), 0);
	assert_int_equal(storage_cache_kib(c2, &kib, &err), 0);
	assert_int_equal(kib, 8 * 1024);
	assert_int_equal(storage_cache_kib(f->conn, &kib, &err), 0);
	assert_int_equal(kib, before);
	storage_set_cache_kib(f->st, 1024);
	assert_int_equal(storage_connect(f->st, &c3, &err), 0);
	assert_int_equal(storage_cache_kib(c3, &kib, &err), 0);
	assert_int_equal(kib, 1024);
	/* The connection works with it. */
	upsert_ok(c3, (struct tg_value[]){TG_VINT("k", 1), TG_VINT("a", 1)}, 2);
	assert_int_equal(storage_get(c2, "t", (struct tg_value[]){TG_VINT("k", 1)}, 1, NULL, NULL, NULL), 0);
	storage_conn_free(c3);
	storage_conn_free(c2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_column_sets, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_names_in_a_reused_buffer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_checks_after_a_good_row, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_schema_change_here, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_schema_change_elsewhere, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_many_shapes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_filter_shapes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wide_table, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_alternating_shapes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_page_cache_size, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
