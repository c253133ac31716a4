/*
 * test_storage.c - the storage service against a real database: a SQLite
 * file, or a PostgreSQL database when TG_TEST_STORAGE=postgresql (the same
 * tests, run twice by meson: see backend_under_test.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend_under_test.h"
#include "observe/log.h"
#include "storage/pg_conn.h"
#include "storage/storage.h"

struct fixture {
	char dir[64];
	char path[512]; /* what storage_open() takes: a file or a connection string */
	struct storage *st;
	struct storage_conn *conn;
};

static const struct tg_column deal_columns[] = {
    {"asin", TG_TEXT, true},
    {"price", TG_INT, false},
    {"title", TG_TEXT, false},
    {"rating", TG_REAL, false},
};
static const struct tg_table deals = {"deals", deal_columns, 4};

static void fixture_open(struct fixture *f)
{
	char *err = NULL;

	assert_int_equal(storage_open(&f->st, but_backend(), f->path, &err), 0);
	assert_int_equal(storage_connect(f->st, &f->conn, &err), 0);
}

static void fixture_close(struct fixture *f)
{
	storage_conn_free(f->conn);
	storage_free(f->st);
	f->conn = NULL;
	f->st = NULL;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	strcpy(f->dir, "/tmp/tg-storage-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	but_create(f->dir, f->path, sizeof(f->path));
	fixture_open(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	fixture_close(f);
	but_destroy(f->path);
	assert_int_equal(rmdir(f->dir), 0);
	free(f);
	return 0;
}

/* Rows read back as text: "col=value|col=value" per row, rows joined by
 * ";", so assertions compare one string. */
struct rows {
	char text[4096];
	int n;
	int stop_after; /* return 7 from the callback after this many rows (0: never) */
};

static int collect(void *ud, const struct tg_value *row, size_t n)
{
	struct rows *r = ud;
	size_t len = strlen(r->text);

	if (r->n++)
		len += (size_t)snprintf(r->text + len, sizeof(r->text) - len, ";");
	for (size_t i = 0; i < n; i++) {
		const struct tg_value *v = &row[i];
		const char *sep = i ? "|" : "";

		switch (v->type) {
		case TG_INT:
			len += (size_t)snprintf(r->text + len, sizeof(r->text) - len, "%s%s=%lld", sep,
			                        v->column, (long long)v->v.i);
			break;
		case TG_REAL:
			len += (size_t)snprintf(r->text + len, sizeof(r->text) - len, "%s%s=%g", sep,
			                        v->column, v->v.r);
			break;
		case TG_TEXT:
			len += (size_t)snprintf(r->text + len, sizeof(r->text) - len, "%s%s='%s'", sep,
			                        v->column, v->v.s);
			break;
		default:
			len += (size_t)snprintf(r->text + len, sizeof(r->text) - len, "%s%s=NULL", sep,
			                        v->column);
			break;
		}
	}
	return r->stop_after && r->n >= r->stop_after ? 7 : 0;
}

static const char *get_deal(struct storage_conn *c, const char *asin, struct rows *r)
{
	struct tg_value key[] = {TG_VTEXT("asin", asin)};

	memset(r, 0, sizeof(*r));
	if (storage_get(c, "deals", key, 1, collect, r, NULL) == TG_ENOTFOUND)
		return "(none)";
	return r->text;
}

static void upsert_ok(struct storage_conn *c, const char *table, const struct tg_value *v, size_t n)
{
	char *err = NULL;
	int rc = storage_upsert(c, table, v, n, &err);

	if (rc != 0)
		fail_msg("upsert into %s: %d %s", table, rc, err ? err : "");
}

static void declare_ok(struct storage_conn *c, const struct tg_table *t)
{
	char *err = NULL;
	int rc = storage_declare(c, t, &err);

	if (rc != 0)
		fail_msg("declare %s: %d %s", t->name, rc, err ? err : "");
}

static void test_declare_upsert_get(void **state)
{
	struct fixture *f = *state;
	struct rows r;
	struct tg_value row[] = {TG_VTEXT("asin", "B000000001"), TG_VINT("price", 10944),
	                         TG_VTEXT("title", "Kettle"), TG_VREAL("rating", 4.5)};

	declare_ok(f->conn, &deals);
	declare_ok(f->conn, &deals); /* idempotent */
	upsert_ok(f->conn, "deals", row, 4);
	assert_string_equal(get_deal(f->conn, "B000000001", &r),
	                    "asin='B000000001'|price=10944|title='Kettle'|rating=4.5");
	assert_string_equal(get_deal(f->conn, "B000000002", &r), "(none)");
	/* Existence only. */
	assert_int_equal(storage_get(f->conn, "deals", row, 1, NULL, NULL, NULL), 0);
	assert_int_equal(storage_state_get(f->conn, "t", "k", NULL, NULL), TG_EINVAL);

	/* Remove, and remove again (0 when there is no row). */
	assert_int_equal(storage_remove(f->conn, "deals", row, 1, NULL), 0);
	assert_string_equal(get_deal(f->conn, "B000000001", &r), "(none)");
	assert_int_equal(storage_remove(f->conn, "deals", row, 1, NULL), 0);
	/* A key that is not exactly the key columns. */
	assert_int_equal(storage_remove(f->conn, "deals", row, 2, NULL), TG_EINVAL);
	assert_int_equal(storage_get(f->conn, "deals", row + 1, 1, collect, &r, NULL), TG_EINVAL);
}

static void test_upsert_leaves_other_columns(void **state)
{
	struct fixture *f = *state;
	struct rows r;
	struct tg_value full[] = {TG_VTEXT("asin", "A1"), TG_VINT("price", 100), TG_VTEXT("title", "Lamp")};
	struct tg_value price[] = {TG_VINT("price", 90), TG_VTEXT("asin", "A1")}; /* key not first */
	struct tg_value rating[] = {TG_VTEXT("asin", "A1"), TG_VREAL("rating", 3.25)};
	struct tg_value key_only[] = {TG_VTEXT("asin", "A1")};
	struct tg_value clear_title[] = {TG_VTEXT("asin", "A1"), TG_VNULL("title")};

	declare_ok(f->conn, &deals);
	upsert_ok(f->conn, "deals", full, 3);
	upsert_ok(f->conn, "deals", price, 2);
	assert_string_equal(get_deal(f->conn, "A1", &r), "asin='A1'|price=90|title='Lamp'|rating=NULL");
	upsert_ok(f->conn, "deals", rating, 2);
	upsert_ok(f->conn, "deals", key_only, 1);
	assert_string_equal(get_deal(f->conn, "A1", &r), "asin='A1'|price=90|title='Lamp'|rating=3.25");
	/* An explicit NULL is a value like any other. */
	upsert_ok(f->conn, "deals", clear_title, 2);
	assert_string_equal(get_deal(f->conn, "A1", &r), "asin='A1'|price=90|title=NULL|rating=3.25");
	/* A key-only upsert of a new row creates it. */
	key_only[0].v.s = "A2";
	upsert_ok(f->conn, "deals", key_only, 1);
	assert_string_equal(get_deal(f->conn, "A2", &r), "asin='A2'|price=NULL|title=NULL|rating=NULL");
}

static void test_transaction_rows_and_state(void **state)
{
	struct fixture *f = *state;
	struct rows r;
	struct tg_value row[] = {TG_VTEXT("asin", "T1"), TG_VINT("price", 5)};
	char *v = NULL, *err = NULL;

	declare_ok(f->conn, &deals);

	/* Rollback drops both. Inside, the transaction sees its own writes. */
	assert_int_equal(storage_begin(f->conn, NULL), 0);
	assert_true(storage_in_transaction(f->conn));
	upsert_ok(f->conn, "deals", row, 2);
	assert_int_equal(storage_state_set(f->conn, "backfiller", "page", "4", NULL), 0);
	assert_int_equal(storage_state_get(f->conn, "backfiller", "page", &v, NULL), 0);
	assert_string_equal(v, "4");
	free(v);
	assert_int_equal(storage_begin(f->conn, &err), TG_EINVAL); /* no nesting */
	assert_non_null(err);
	free(err);
	assert_int_equal(storage_declare(f->conn, &deals, NULL), TG_EINVAL);
	assert_int_equal(storage_rollback(f->conn, NULL), 0);
	assert_false(storage_in_transaction(f->conn));
	assert_string_equal(get_deal(f->conn, "T1", &r), "(none)");
	assert_int_equal(storage_state_get(f->conn, "backfiller", "page", &v, NULL), TG_ENOTFOUND);
	assert_null(v);

	/* Commit keeps both. */
	assert_int_equal(storage_begin(f->conn, NULL), 0);
	upsert_ok(f->conn, "deals", row, 2);
	assert_int_equal(storage_state_set(f->conn, "backfiller", "page", "5", NULL), 0);
	assert_int_equal(storage_commit(f->conn, NULL), 0);
	assert_string_equal(get_deal(f->conn, "T1", &r), "asin='T1'|price=5|title=NULL|rating=NULL");
	assert_int_equal(storage_state_get(f->conn, "backfiller", "page", &v, NULL), 0);
	assert_string_equal(v, "5");
	free(v);

	/* State is per task; NULL deletes; sizes are bounded. */
	assert_int_equal(storage_state_get(f->conn, "upserter", "page", &v, NULL), TG_ENOTFOUND);
	assert_int_equal(storage_state_set(f->conn, "backfiller", "page", NULL, NULL), 0);
	assert_int_equal(storage_state_get(f->conn, "backfiller", "page", &v, NULL), TG_ENOTFOUND);
	assert_int_equal(storage_state_set(f->conn, "", "page", "1", NULL), TG_EINVAL);
	assert_int_equal(storage_state_set(f->conn, "t", "", "1", NULL), TG_EINVAL);
	assert_int_equal(storage_state_set(f->conn, "t", NULL, "1", NULL), TG_EINVAL);

	assert_int_equal(storage_commit(f->conn, NULL), TG_EINVAL);
	assert_int_equal(storage_rollback(f->conn, NULL), TG_EINVAL);
}

/* A child process writes a committed chunk with its checkpoint, then a
 * second chunk and checkpoint that it never commits, and dies (SIGKILL from
 * the parent, or _exit). The parent must see the first chunk with its
 * checkpoint, and nothing of the second. */
static void crash_child(const char *path, int ready_fd, bool self_exit)
{
	struct storage *st = NULL;
	struct storage_conn *c = NULL;
	int bad = 0;

	if (storage_open(&st, but_backend(), path, NULL) || storage_connect(st, &c, NULL))
		_exit(2);
	for (int chunk = 1; chunk <= 2; chunk++) {
		char page[8];

		bad |= storage_begin(c, NULL);
		for (int i = 0; i < 5; i++) {
			char asin[16];
			struct tg_value row[] = {TG_VTEXT("asin", asin), TG_VINT("price", chunk)};

			snprintf(asin, sizeof(asin), "C%d-%d", chunk, i);
			bad |= storage_upsert(c, "deals", row, 2, NULL);
		}
		snprintf(page, sizeof(page), "%d", chunk);
		bad |= storage_state_set(c, "backfiller", "page", page, NULL);
		if (chunk == 1)
			bad |= storage_commit(c, NULL);
	}
	if (bad)
		_exit(3);
	if (self_exit)
		_exit(0);
	if (write(ready_fd, "k", 1) != 1)
		_exit(4);
	pause();
	_exit(5);
}

static void crash_and_check(struct fixture *f, bool self_exit)
{
	struct rows r = {0};
	struct tg_filter one = {TG_EQ, TG_VINT("price", 1)};
	struct tg_filter two = {TG_EQ, TG_VINT("price", 2)};
	char *v = NULL, c;
	int fds[2], status;
	pid_t pid;

	declare_ok(f->conn, &deals);
	/* Connections must not cross fork(): close ours first. */
	fixture_close(f);
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		crash_child(f->path, fds[1], self_exit);
	}
	close(fds[1]);
	if (!self_exit) {
		assert_int_equal(read(fds[0], &c, 1), 1);
		assert_int_equal(kill(pid, SIGKILL), 0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	close(fds[0]);
	if (self_exit)
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	else
		assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

	fixture_open(f);
	assert_int_equal(storage_select(f->conn, "deals", &one, 1, "asin", -1, collect, &r, NULL), 0);
	assert_int_equal(r.n, 5);
	memset(&r, 0, sizeof(r));
	assert_int_equal(storage_select(f->conn, "deals", &two, 1, NULL, -1, collect, &r, NULL), 0);
	assert_int_equal(r.n, 0);
	assert_int_equal(storage_state_get(f->conn, "backfiller", "page", &v, NULL), 0);
	assert_string_equal(v, "1");
	free(v);
	/* The database is writable again after the crash. */
	upsert_ok(f->conn, "deals", (struct tg_value[]){TG_VTEXT("asin", "after")}, 1);
}

static void test_crash_killed_child(void **state)
{
	crash_and_check(*state, false);
}

static void test_crash_exiting_child(void **state)
{
	crash_and_check(*state, true);
}

static const struct tg_column v1_columns[] = {{"id", TG_INT, true}, {"a", TG_TEXT, false}};
static const struct tg_column v2_columns[] = {
    {"id", TG_INT, true}, {"a", TG_TEXT, false}, {"b", TG_INT, false}};

static void test_migration(void **state)
{
	struct fixture *f = *state;
	const struct tg_table v1 = {"items", v1_columns, 2}, v2 = {"items", v2_columns, 3};
	struct tg_value key1[] = {TG_VINT("id", 1)};
	struct rows r = {0};
	char *err = NULL;

	declare_ok(f->conn, &v1);
	upsert_ok(f->conn, "items", (struct tg_value[]){TG_VINT("id", 1), TG_VTEXT("a", "one")}, 2);
	upsert_ok(f->conn, "items", (struct tg_value[]){TG_VINT("id", 2), TG_VTEXT("a", "two")}, 2);
	/* b is unknown until v2 is declared. */
	assert_int_equal(
	    storage_upsert(f->conn, "items", (struct tg_value[]){TG_VINT("id", 1), TG_VINT("b", 5)}, 2, NULL),
	    TG_EINVAL);

	/* v2 in a new process: the registry starts empty. */
	fixture_close(f);
	fixture_open(f);
	declare_ok(f->conn, &v2);
	assert_int_equal(storage_select(f->conn, "items", NULL, 0, "id", -1, collect, &r, NULL), 0);
	assert_string_equal(r.text, "id=1|a='one'|b=NULL;id=2|a='two'|b=NULL");
	upsert_ok(f->conn, "items", (struct tg_value[]){TG_VINT("id", 1), TG_VINT("b", 5)}, 2);
	memset(&r, 0, sizeof(r));
	assert_int_equal(storage_get(f->conn, "items", key1, 1, collect, &r, NULL), 0);
	assert_string_equal(r.text, "id=1|a='one'|b=5");

	/* An older declaration still works; the column stays. */
	declare_ok(f->conn, &v1);
	memset(&r, 0, sizeof(r));
	assert_int_equal(storage_get(f->conn, "items", key1, 1, collect, &r, NULL), 0);
	assert_string_equal(r.text, "id=1|a='one'|b=5");

	/* Refused: a new key column, a key that stops being one, a type change. */
	{
		const struct tg_column more_key[] = {{"id", TG_INT, true}, {"a", TG_TEXT, true}};
		const struct tg_column new_key[] = {{"id", TG_INT, true}, {"c", TG_TEXT, true}};
		const struct tg_column other_key[] = {{"id", TG_INT, false}, {"a", TG_TEXT, true}};
		const struct tg_column retyped[] = {{"id", TG_INT, true}, {"a", TG_INT, false}};
		const struct tg_column retyped_key[] = {{"id", TG_TEXT, true}};
		const struct tg_column new_then_retyped[] = {
		    {"id", TG_INT, true}, {"c", TG_TEXT, false}, {"a", TG_INT, false}};
		const struct tg_table bad[] = {
		    {"items", more_key, 2}, {"items", new_key, 2},     {"items", other_key, 2},
		    {"items", retyped, 2},  {"items", retyped_key, 1}, {"items", new_then_retyped, 3},
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			err = NULL;
			assert_int_equal(storage_declare(f->conn, &bad[i], &err), TG_EINVAL);
			assert_non_null(err);
			assert_true(strstr(err, "not supported") != NULL);
			free(err);
		}
	}
	/* Nothing was changed by the refused declarations. */
	memset(&r, 0, sizeof(r));
	assert_int_equal(storage_select(f->conn, "items", NULL, 0, "-id", -1, collect, &r, NULL), 0);
	assert_string_equal(r.text, "id=2|a='two'|b=NULL;id=1|a='one'|b=5");
}

/* A second storage handle (another process, in effect) adds a column: the
 * first learns it when a call names it. */
static void test_migration_by_other_handle(void **state)
{
	struct fixture *f = *state;
	const struct tg_table v1 = {"items", v1_columns, 2}, v2 = {"items", v2_columns, 3};
	struct storage *st2;
	struct storage_conn *c2;

	declare_ok(f->conn, &v1);
	assert_int_equal(storage_open(&st2, but_backend(), f->path, NULL), 0);
	assert_int_equal(storage_connect(st2, &c2, NULL), 0);
	declare_ok(c2, &v2);
	upsert_ok(f->conn, "items", (struct tg_value[]){TG_VINT("id", 1), TG_VINT("b", 5)}, 2);
	storage_conn_free(c2);
	storage_free(st2);
}

static void test_identifiers(void **state)
{
	struct fixture *f = *state;
	const char *bad_names[] = {
	    "x; DROP TABLE deals",
	    "Deals",
	    "1abc",
	    "",
	    "a-b",
	    "a b",
	    "tg_state",
	    "tg_mine",
	    "sqlite_master",
	    "\"deals\"",
	    "deals\"; --",
	    "0123456789012345678901234567890123456789012345678901234567890123",
	};
	const char *long_ok = "a12345678901234567890123456789012345678901234567890123456789012";
	const char *evil = "Robert'); DROP TABLE deals;-- \"x\" `y` \\ %s";
	struct tg_column cols[] = {{"id", TG_INT, true}, {"v", TG_TEXT, false}};
	struct rows r;
	char *err;

	declare_ok(f->conn, &deals);
	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		struct tg_table t = {bad_names[i], cols, 2};
		struct tg_value v[] = {TG_VINT("id", 1)};

		err = NULL;
		assert_int_equal(storage_declare(f->conn, &t, &err), TG_EINVAL);
		assert_non_null(err);
		free(err);
		assert_int_equal(storage_upsert(f->conn, bad_names[i], v, 1, NULL), TG_EINVAL);
		/* As a column name, in a declaration and in an upsert. */
		cols[1].name = bad_names[i];
		t.name = "fine";
		assert_int_equal(storage_declare(f->conn, &t, NULL), TG_EINVAL);
		cols[1].name = "v";
		struct tg_value bad_col[] = {TG_VTEXT("asin", "A"), TG_VINT(bad_names[i], 1)};
		assert_int_equal(storage_upsert(f->conn, "deals", bad_col, 2, NULL), TG_EINVAL);
		struct tg_filter bad_filter = {TG_EQ, TG_VINT(bad_names[i], 1)};
		assert_int_equal(
		    storage_select(f->conn, "deals", &bad_filter, 1, NULL, -1, collect, &r, NULL), TG_EINVAL);
		assert_int_equal(
		    storage_select(f->conn, "deals", NULL, 0, bad_names[i], -1, collect, &r, NULL),
		    TG_EINVAL);
	}
	/* NULL names. */
	{
		struct tg_table t = {NULL, cols, 2};
		struct tg_value v[] = {TG_VTEXT("asin", "A"), TG_VINT(NULL, 1)};

		assert_int_equal(storage_declare(f->conn, &t, NULL), TG_EINVAL);
		assert_int_equal(storage_declare(f->conn, NULL, NULL), TG_EINVAL);
		assert_int_equal(storage_upsert(f->conn, NULL, v, 1, NULL), TG_EINVAL);
		assert_int_equal(storage_upsert(f->conn, "deals", v, 2, NULL), TG_EINVAL);
	}
	/* Duplicate columns, no key, no columns, no type. */
	{
		struct tg_column dup[] = {{"id", TG_INT, true}, {"id", TG_TEXT, false}};
		struct tg_column nokey[] = {{"id", TG_INT, false}};
		struct tg_column notype[] = {{"id", TG_INT, true}, {"x", TG_NULL, false}};
		struct tg_table t1 = {"t1", dup, 2}, t2 = {"t2", nokey, 1}, t3 = {"t3", notype, 2},
		                t4 = {"t4", NULL, 0};

		assert_int_equal(storage_declare(f->conn, &t1, NULL), TG_EINVAL);
		assert_int_equal(storage_declare(f->conn, &t2, NULL), TG_EINVAL);
		assert_int_equal(storage_declare(f->conn, &t3, NULL), TG_EINVAL);
		assert_int_equal(storage_declare(f->conn, &t4, NULL), TG_EINVAL);
	}
	/* The longest name passes; SQL keywords are fine as names. */
	{
		struct tg_column kw[] = {
		    {"order", TG_INT, true}, {"select", TG_TEXT, false}, {long_ok, TG_INT, false}};
		struct tg_table t = {long_ok, kw, 3};
		struct tg_value v[] = {TG_VINT("order", 1), TG_VTEXT("select", evil)};

		declare_ok(f->conn, &t);
		upsert_ok(f->conn, long_ok, v, 2);
		memset(&r, 0, sizeof(r));
		assert_int_equal(storage_select(f->conn, long_ok, NULL, 0, "-order", -1, collect, &r, NULL),
		                 0);
		assert_int_equal(r.n, 1);
	}
	/* Quotes in values are stored verbatim, and the table survives. */
	upsert_ok(f->conn, "deals", (struct tg_value[]){TG_VTEXT("asin", "Q'1\""), TG_VTEXT("title", evil)},
	          2);
	assert_string_equal(get_deal(f->conn, "Q'1\"", &r),
	                    "asin='Q'1\"'|price=NULL|title='Robert'); DROP TABLE deals;-- \"x\" `y` \\ %s'|"
	                    "rating=NULL");
	/* The host table is out of reach. */
	assert_int_equal(storage_select(f->conn, "tg_state", NULL, 0, NULL, -1, collect, &r, NULL),
	                 TG_EINVAL);
}

static void insert_items(struct storage_conn *c)
{
	static const struct tg_column cols[] = {{"id", TG_INT, true},
	                                        {"price", TG_INT, false},
	                                        {"cat", TG_TEXT, false},
	                                        {"score", TG_REAL, false}};
	const struct tg_table t = {"items", cols, 4};

	declare_ok(c, &t);
	for (int i = 1; i <= 10; i++) {
		struct tg_value v[] = {TG_VINT("id", i), TG_VINT("price", i * 10),
		                       i == 5 ? TG_VNULL("cat") : TG_VTEXT("cat", i % 2 ? "odd" : "even"),
		                       TG_VREAL("score", i / 4.0)};
		upsert_ok(c, "items", v, 4);
	}
}

/* The ids of the rows, "1,2,3". */
static int collect_ids(void *ud, const struct tg_value *row, size_t n)
{
	char *out = ud;

	(void)n;
	sprintf(out + strlen(out), "%s%lld", *out ? "," : "", (long long)row[0].v.i);
	return 0;
}

static void ids(struct storage_conn *c, const struct tg_filter *f, size_t n, const char *order, int64_t limit,
                const char *want)
{
	char got[256] = "";
	char *err = NULL;
	int rc = storage_select(c, "items", f, n, order, limit, collect_ids, got, &err);

	if (rc != 0)
		fail_msg("select: %d %s", rc, err ? err : "");
	assert_string_equal(got, want);
}

static void test_select(void **state)
{
	struct fixture *f = *state;
	struct rows r = {0};
	char *err = NULL;

	insert_items(f->conn);
	ids(f->conn, NULL, 0, "id", -1, "1,2,3,4,5,6,7,8,9,10");
	ids(f->conn, NULL, 0, "-price", 3, "10,9,8");
	ids(f->conn, NULL, 0, "id", 0, "");
	ids(f->conn, (struct tg_filter[]){{TG_GE, TG_VINT("price", 30)}, {TG_EQ, TG_VTEXT("cat", "even")}}, 2,
	    "-price", 2, "10,8");
	ids(f->conn, (struct tg_filter[]){{TG_LT, TG_VINT("price", 30)}}, 1, "id", -1, "1,2");
	ids(f->conn, (struct tg_filter[]){{TG_LE, TG_VINT("price", 30)}}, 1, "id", -1, "1,2,3");
	ids(f->conn, (struct tg_filter[]){{TG_GT, TG_VINT("price", 80)}}, 1, "id", -1, "9,10");
	ids(f->conn, (struct tg_filter[]){{TG_NE, TG_VTEXT("cat", "odd")}}, 1, "id", -1, "2,4,6,8,10");
	ids(f->conn, (struct tg_filter[]){{TG_EQ, TG_VNULL("cat")}}, 1, "id", -1, "5");
	ids(f->conn, (struct tg_filter[]){{TG_NE, TG_VNULL("cat")}, {TG_LE, TG_VINT("id", 6)}}, 2, "id", -1,
	    "1,2,3,4,6");
	/* Mixed numbers: a real bound on an integer column and the reverse. */
	ids(f->conn, (struct tg_filter[]){{TG_LT, TG_VREAL("price", 25.5)}}, 1, "id", -1, "1,2");
	ids(f->conn, (struct tg_filter[]){{TG_GE, TG_VINT("score", 2)}}, 1, "id", -1, "8,9,10");

	/* The callback's non-zero return stops and is returned. */
	r.stop_after = 3;
	assert_int_equal(storage_select(f->conn, "items", NULL, 0, "id", -1, collect, &r, NULL), 7);
	assert_int_equal(r.n, 3);

	/* Refusals. */
	assert_int_equal(storage_select(f->conn, "items", NULL, 0, "nope", -1, collect, &r, &err), TG_EINVAL);
	free(err);
	assert_int_equal(storage_select(f->conn, "items", NULL, 0, "-", -1, collect, &r, NULL), TG_EINVAL);
	assert_int_equal(storage_select(f->conn, "items", (struct tg_filter[]){{TG_LT, TG_VNULL("cat")}}, 1,
	                                NULL, -1, collect, &r, NULL),
	                 TG_EINVAL);
	assert_int_equal(storage_select(f->conn, "items",
	                                (struct tg_filter[]){{(enum tg_op)42, TG_VINT("id", 1)}}, 1, NULL, -1,
	                                collect, &r, NULL),
	                 TG_EINVAL);
	assert_int_equal(storage_select(f->conn, "items",
	                                (struct tg_filter[]){{TG_EQ, TG_VTEXT("price", "10")}}, 1, NULL, -1,
	                                collect, &r, NULL),
	                 TG_ETYPE);
	assert_int_equal(storage_select(f->conn, "items", NULL, 0, NULL, -1, NULL, NULL, NULL), TG_EINVAL);
	assert_int_equal(storage_select(f->conn, "nosuch", NULL, 0, NULL, -1, collect, &r, NULL), TG_EINVAL);
}

/* A row function that writes through the same connection while the select
 * still iterates (the cached statement is busy then). */
struct bump {
	struct storage_conn *conn;
	int rc;
};

static int bump_price(void *ud, const struct tg_value *row, size_t n)
{
	struct bump *b = ud;
	struct tg_value v[] = {row[0], TG_VINT("price", row[1].v.i + 1)};
	char inner[256] = "";

	(void)n;
	b->rc |= storage_upsert(b->conn, "items", v, 2, NULL);
	/* The same select shape, nested. */
	b->rc |= storage_select(b->conn, "items", NULL, 0, "id", 1, collect_ids, inner, NULL);
	return 0;
}

static void test_select_reentrant(void **state)
{
	struct fixture *f = *state;
	struct bump b = {.conn = f->conn};

	insert_items(f->conn);
	assert_int_equal(storage_select(f->conn, "items", NULL, 0, "id", -1, bump_price, &b, NULL), 0);
	assert_int_equal(b.rc, 0);
	ids(f->conn, (struct tg_filter[]){{TG_EQ, TG_VINT("price", 101)}}, 1, "id", -1, "10");
}

static void test_type_mismatch(void **state)
{
	struct fixture *f = *state;
	struct rows r;
	char *err = NULL;

	declare_ok(f->conn, &deals);
	assert_int_equal(
	    storage_upsert(f->conn, "deals",
	                   (struct tg_value[]){TG_VTEXT("asin", "A"), TG_VTEXT("price", "$109.44")}, 2, &err),
	    TG_ETYPE);
	assert_non_null(strstr(err, "price"));
	free(err);
	assert_int_equal(storage_upsert(f->conn, "deals",
	                                (struct tg_value[]){TG_VTEXT("asin", "A"), TG_VREAL("price", 1.5)}, 2,
	                                NULL),
	                 TG_ETYPE);
	assert_int_equal(storage_upsert(f->conn, "deals",
	                                (struct tg_value[]){TG_VTEXT("asin", "A"), TG_VINT("title", 3)}, 2,
	                                NULL),
	                 TG_ETYPE);
	assert_int_equal(storage_upsert(f->conn, "deals", (struct tg_value[]){TG_VINT("asin", 1)}, 1, NULL),
	                 TG_ETYPE);
	assert_int_equal(storage_upsert(f->conn, "deals", (struct tg_value[]){TG_VNULL("asin")}, 1, NULL),
	                 TG_EINVAL);
	assert_int_equal(storage_upsert(f->conn, "deals", (struct tg_value[]){TG_VINT("price", 1)}, 1, NULL),
	                 TG_EINVAL); /* no key */
	assert_int_equal(storage_upsert(f->conn, "deals",
	                                (struct tg_value[]){TG_VTEXT("asin", "A"), TG_VINT("nope", 1)}, 2,
	                                NULL),
	                 TG_EINVAL);
	assert_int_equal(storage_upsert(f->conn, "deals",
	                                (struct tg_value[]){TG_VTEXT("asin", "A"), TG_VINT("price", 1),
	                                                    TG_VINT("price", 2)},
	                                3, NULL),
	                 TG_EINVAL);
	assert_int_equal(storage_upsert(f->conn, "deals",
	                                (struct tg_value[]){TG_VTEXT("asin", "A"), TG_VREAL("rating", NAN)},
	                                2, NULL),
	                 TG_EINVAL);
	assert_int_equal(
	    storage_upsert(f->conn, "deals", (struct tg_value[]){TG_VTEXT("asin", NULL)}, 1, NULL),
	    TG_EINVAL);
	assert_int_equal(
	    storage_upsert(f->conn, "deals", (struct tg_value[]){{"asin", (enum tg_type)9, {0}}}, 1, NULL),
	    TG_EINVAL);
	assert_int_equal(storage_upsert(f->conn, "deals", NULL, 0, NULL), TG_EINVAL);
	assert_int_equal(
	    storage_upsert(f->conn, "nosuch", (struct tg_value[]){TG_VTEXT("asin", "A")}, 1, NULL),
	    TG_EINVAL);
	/* None of the refused upserts wrote anything. */
	assert_string_equal(get_deal(f->conn, "A", &r), "(none)");
	/* An integer widens into a real column. */
	upsert_ok(f->conn, "deals", (struct tg_value[]){TG_VTEXT("asin", "A"), TG_VINT("rating", 3)}, 2);
	assert_string_equal(get_deal(f->conn, "A", &r), "asin='A'|price=NULL|title=NULL|rating=3");
}

struct writer {
	struct storage *st;
	int id;
	int failures;
	char err[256];
};

#define WRITES 300

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	struct storage_conn *c;
	char task[16], *err = NULL;

	snprintf(task, sizeof(task), "w%d", w->id);
	if (storage_connect(w->st, &c, &err) != 0) {
		w->failures = -1;
		snprintf(w->err, sizeof(w->err), "%s", err ? err : "");
		free(err);
		return NULL;
	}
	for (int i = 0; i < WRITES; i++) {
		struct tg_value row[] = {TG_VINT("id", w->id * 100000 + i), TG_VINT("price", i)};
		char page[16];
		int rc;

		snprintf(page, sizeof(page), "%d", i);
		if (i % 3 == 0) {
			/* Autocommit writes compete with the others' transactions. */
			rc = storage_upsert(c, "items", row, 2, &err);
		} else {
			char *prev = NULL;

			/* Read, then write: the pattern that deadlocks a deferred
			 * transaction on its lock upgrade. */
			rc = storage_begin(c, &err);
			if (rc == 0) {
				rc = storage_state_get(c, task, "page", &prev, &err);
				free(prev);
				if (rc == TG_ENOTFOUND)
					rc = 0;
			}
			if (rc == 0)
				rc = storage_upsert(c, "items", row, 2, &err);
			if (rc == 0)
				rc = storage_state_set(c, task, "page", page, &err);
			if (rc == 0)
				rc = storage_commit(c, &err);
			else if (storage_in_transaction(c))
				storage_rollback(c, NULL);
		}
		if (rc != 0) {
			if (!w->failures++)
				snprintf(w->err, sizeof(w->err), "%d %s", rc, err ? err : "");
			free(err);
			err = NULL;
		}
	}
	storage_conn_free(c);
	return NULL;
}

static int count_rows(void *ud, const struct tg_value *row, size_t n)
{
	(void)row;
	(void)n;
	++*(int *)ud;
	return 0;
}

static void test_concurrent_writers(void **state)
{
	struct fixture *f = *state;
	static const struct tg_column cols[] = {{"id", TG_INT, true}, {"price", TG_INT, false}};
	const struct tg_table t = {"items", cols, 2};
	struct writer w[2] = {{.st = f->st, .id = 1}, {.st = f->st, .id = 2}};
	pthread_t th[2];
	int n = 0;
	char *v;

	declare_ok(f->conn, &t);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, writer_main, &w[i]), 0);
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		if (w[i].failures)
			fail_msg("writer %d: %d failures, first: %s", i, w[i].failures, w[i].err);
	}
	assert_int_equal(storage_select(f->conn, "items", NULL, 0, NULL, -1, count_rows, &n, NULL), 0);
	assert_int_equal(n, 2 * WRITES);
	assert_int_equal(storage_state_get(f->conn, "w1", "page", &v, NULL), 0);
	assert_string_equal(v, "299");
	free(v);
	assert_int_equal(storage_state_get(f->conn, "w2", "page", &v, NULL), 0);
	assert_string_equal(v, "299");
	free(v);
}

struct late_writer {
	struct storage *st;
	int rc;
	char err[256];
};

static void *late_writer_main(void *arg)
{
	struct late_writer *w = arg;
	struct storage_conn *c;
	char *err = NULL;

	w->rc = storage_connect(w->st, &c, &err);
	if (w->rc == 0) {
		w->rc = storage_upsert(c, "items", (struct tg_value[]){TG_VINT("id", 2), TG_VINT("price", 2)},
		                       2, &err);
		storage_conn_free(c);
	}
	if (err)
		snprintf(w->err, sizeof(w->err), "%s", err);
	free(err);
	return NULL;
}

/* A transaction that reads its checkpoint and then writes must not fail
 * because another connection wrote in between: begin takes the write lock
 * at once, so the other writer waits instead (a deferred transaction would
 * get SQLITE_BUSY on its lock upgrade). */
static void test_read_then_write_transaction(void **state)
{
	struct fixture *f = *state;
	static const struct tg_column cols[] = {{"id", TG_INT, true}, {"price", TG_INT, false}};
	const struct tg_table t = {"items", cols, 2};
	struct late_writer w = {.st = f->st};
	char *v = NULL, *err = NULL;
	pthread_t th;
	int n = 0;

	declare_ok(f->conn, &t);
	assert_int_equal(storage_state_set(f->conn, "t", "page", "0", NULL), 0);
	assert_int_equal(storage_begin(f->conn, NULL), 0);
	assert_int_equal(storage_state_get(f->conn, "t", "page", &v, NULL), 0);
	free(v);
	assert_int_equal(pthread_create(&th, NULL, late_writer_main, &w), 0);
	usleep(100000); /* let the other writer try (it must wait) */
	if (storage_upsert(f->conn, "items", (struct tg_value[]){TG_VINT("id", 1), TG_VINT("price", 1)}, 2,
	                   &err))
		fail_msg("upsert after read: %s", err);
	assert_int_equal(storage_state_set(f->conn, "t", "page", "1", NULL), 0);
	assert_int_equal(storage_commit(f->conn, NULL), 0);
	pthread_join(th, NULL);
	if (w.rc)
		fail_msg("other writer: %d %s", w.rc, w.err);
	assert_int_equal(storage_select(f->conn, "items", NULL, 0, NULL, -1, count_rows, &n, NULL), 0);
	assert_int_equal(n, 2);
}

/* ------------------------------------------------------------- indexes */

/* "table: col1,col2" for the index called name, read from the database's
 * own catalogue ("" when there is no such index). */
static const char *index_columns(const struct fixture *f, const char *name, char *out, size_t size)
{
	char sql[1024];

	if (but_is_postgresql())
		snprintf(sql, sizeof(sql),
		         "SELECT t.relname || ': ' || string_agg(a.attname, ',' ORDER BY k.n) FROM pg_class ic "
		         "JOIN pg_index i ON i.indexrelid = ic.oid JOIN pg_class t ON t.oid = i.indrelid "
		         "CROSS JOIN unnest(i.indkey) WITH ORDINALITY k(attnum, n) "
		         "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum "
		         "WHERE ic.relname = '%s' GROUP BY t.relname",
		         name);
	else
		snprintf(sql, sizeof(sql),
		         "SELECT m.tbl_name || ': ' || (SELECT group_concat(name, ',') FROM "
		         "(SELECT name FROM pragma_index_info(m.name) ORDER BY seqno)) "
		         "FROM sqlite_master m WHERE m.type = 'index' AND m.name = '%s'",
		         name);
	assert_true(but_query_text(f->path, sql, out, size));
	return out;
}

/* The names of the host's indexes on table, one a line, sorted. */
static const char *index_names(const struct fixture *f, const char *table, char *out, size_t size)
{
	char sql[512];

	if (but_is_postgresql())
		snprintf(sql, sizeof(sql),
		         "SELECT indexname FROM pg_indexes WHERE tablename = '%s' AND indexname LIKE 'tg\\_ix%%' "
		         "ORDER BY indexname COLLATE \"C\"",
		         table);
	else
		snprintf(sql, sizeof(sql),
		         "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = '%s' "
		         "AND name LIKE 'tg\\_ix%%' ESCAPE '\\' ORDER BY name",
		         table);
	assert_true(but_query_text(f->path, sql, out, size));
	return out;
}

static void index_ok(struct storage_conn *c, const char *table, const char *column)
{
	char *err = NULL;
	int rc = storage_index(c, table, column, &err);

	if (rc != 0)
		fail_msg("index %s.%s: %d %s", table, column, rc, err ? err : "");
}

static void test_index(void **state)
{
	struct fixture *f = *state;
	char text[1024], *err = NULL;

	declare_ok(f->conn, &deals);
	upsert_ok(f->conn, "deals", (struct tg_value[]){TG_VTEXT("asin", "A1"), TG_VINT("price", 3)}, 2);
	index_ok(f->conn, "deals", "price");
	index_ok(f->conn, "deals", "price"); /* idempotent */
	index_ok(f->conn, "deals", "title");
	index_ok(f->conn, "deals", "asin"); /* the key: not twice in the list */
	/* The names SQLite databases already carry: they must not change. */
	assert_string_equal(index_columns(f, "tg_ix_deals_price", text, sizeof(text)), "deals: price,asin");
	assert_string_equal(index_columns(f, "tg_ix_deals_title", text, sizeof(text)), "deals: title,asin");
	assert_string_equal(index_columns(f, "tg_ix_deals_asin", text, sizeof(text)), "deals: asin");
	assert_string_equal(index_names(f, "deals", text, sizeof(text)),
	                    "tg_ix_deals_asin\ntg_ix_deals_price\ntg_ix_deals_title");
	if (but_is_postgresql()) {
		/* In the order pq_select reads: text bytewise, NULLs first. */
		assert_true(but_query_text(f->path,
		                           "SELECT indexdef FROM pg_indexes WHERE indexname = 'tg_ix_deals_title'",
		                           text, sizeof(text)));
		assert_string_equal(text, "CREATE INDEX tg_ix_deals_title ON public.deals USING btree "
		                          "(title COLLATE \"C\" NULLS FIRST, asin COLLATE \"C\" NULLS FIRST)");
	}

	assert_int_equal(storage_index(f->conn, "deals", "nope", &err), TG_EINVAL);
	assert_string_equal(err, "table 'deals' has no column 'nope' to index");
	free(err);
	err = NULL;
	assert_int_equal(storage_index(f->conn, "nosuch", "price", &err), TG_EINVAL);
	assert_non_null(strstr(err, "nosuch"));
	free(err);
}

/* The page reader's own statements are answered from the index, in both
 * directions, without sorting. */
static void test_index_serves_pages(void **state)
{
	struct fixture *f = *state;
	static const char *const pg_pages[][2] = {
	    {"SELECT * FROM deals WHERE price < 5 ORDER BY price ASC NULLS FIRST LIMIT 10",
	     "Index Scan using tg_ix_deals_price"},
	    {"SELECT * FROM deals WHERE price < 5 ORDER BY price DESC NULLS LAST LIMIT 10",
	     "Index Scan Backward using tg_ix_deals_price"},
	    {"SELECT * FROM deals ORDER BY title COLLATE \"C\" ASC NULLS FIRST LIMIT 10",
	     "Index Scan using tg_ix_deals_title"},
	    {"SELECT * FROM deals ORDER BY title COLLATE \"C\" DESC NULLS LAST LIMIT 10",
	     "Index Scan Backward using tg_ix_deals_title"},
	};
	static const char *const sqlite_pages[] = {
	    "SELECT * FROM deals WHERE price < 5 ORDER BY price ASC, asin ASC LIMIT 10",
	    "SELECT * FROM deals WHERE price < 5 ORDER BY price DESC, asin DESC LIMIT 10",
	};
	char sql[512], plan[2048];

	declare_ok(f->conn, &deals);
	index_ok(f->conn, "deals", "price");
	index_ok(f->conn, "deals", "title");
	if (but_is_postgresql()) {
		for (size_t i = 0; i < sizeof(pg_pages) / sizeof(pg_pages[0]); i++) {
			/* An empty table is read by a scan whatever the indexes:
			 * forbid it, so what is left shows whether an index fits. */
			snprintf(sql, sizeof(sql), "SET enable_seqscan = off; EXPLAIN %s", pg_pages[i][0]);
			assert_true(but_query_text(f->path, sql, plan, sizeof(plan)));
			if (!strstr(plan, pg_pages[i][1]) || strstr(plan, "Sort"))
				fail_msg("%s:\n%s", pg_pages[i][0], plan);
		}
		return;
	}
	for (size_t i = 0; i < sizeof(sqlite_pages) / sizeof(sqlite_pages[0]); i++) {
		snprintf(sql, sizeof(sql), "EXPLAIN QUERY PLAN %s", sqlite_pages[i]);
		assert_true(but_query_text(f->path, sql, plan, sizeof(plan)));
		if (!strstr(plan, "USING INDEX tg_ix_deals_price") || strstr(plan, "TEMP B-TREE"))
			fail_msg("%s:\n%s", sqlite_pages[i], plan);
	}
}

/* Names past PostgreSQL's 63 bytes are shortened by the documented rule
 * (index_def.h), so two columns that differ only at the end get two
 * indexes, not one name cut twice. The expected names are pinned: changing
 * the rule would leave every existing database with orphaned indexes. */
static void test_index_long_names(void **state)
{
	struct fixture *f = *state;
	static const struct tg_column cols[] = {
	    {"id", TG_INT, true},
	    {"first_seen_in_unix_seconds_a", TG_INT, false},
	    {"first_seen_in_unix_seconds_b", TG_INT, false},
	};
	const struct tg_table t = {"listing_snapshots_by_marketplace", cols, 3};
	char text[1024];

	declare_ok(f->conn, &t);
	index_ok(f->conn, t.name, cols[1].name);
	index_ok(f->conn, t.name, cols[2].name);
	index_ok(f->conn, t.name, cols[2].name);
	assert_string_equal(index_names(f, t.name, text, sizeof(text)),
	                    "tg_ixh_listing_snapshots_by_marketplace_first__486a580add880a2f\n"
	                    "tg_ixh_listing_snapshots_by_marketplace_first__486a590add880be2");
	assert_string_equal(
	    index_columns(f, "tg_ixh_listing_snapshots_by_marketplace_first__486a590add880be2", text, sizeof(text)),
	    "listing_snapshots_by_marketplace: first_seen_in_unix_seconds_a,id");
	assert_string_equal(
	    index_columns(f, "tg_ixh_listing_snapshots_by_marketplace_first__486a580add880a2f", text, sizeof(text)),
	    "listing_snapshots_by_marketplace: first_seen_in_unix_seconds_b,id");
}

/* Inside the caller's transaction the index is part of it: gone with a
 * rollback, there after a commit (DDL is transactional on both backends). */
static void test_index_in_transaction(void **state)
{
	struct fixture *f = *state;
	char text[256];

	declare_ok(f->conn, &deals);
	assert_int_equal(storage_begin(f->conn, NULL), 0);
	index_ok(f->conn, "deals", "price");
	assert_int_equal(storage_rollback(f->conn, NULL), 0);
	assert_string_equal(index_names(f, "deals", text, sizeof(text)), "");
	assert_int_equal(storage_begin(f->conn, NULL), 0);
	index_ok(f->conn, "deals", "price");
	upsert_ok(f->conn, "deals", (struct tg_value[]){TG_VTEXT("asin", "A1"), TG_VINT("price", 3)}, 2);
	assert_int_equal(storage_commit(f->conn, NULL), 0);
	assert_string_equal(index_names(f, "deals", text, sizeof(text)), "tg_ix_deals_price");
}

/* A failure is the database's own reason, and leaves the connection
 * usable (outside a transaction, the index's own one is rolled back). */
static void test_index_database_reason(void **state)
{
	struct fixture *f = *state;
	char text[64], *err = NULL;

	declare_ok(f->conn, &deals);
	assert_true(but_query_text(f->path, "DROP TABLE deals", text, sizeof(text)));
	assert_int_equal(storage_index(f->conn, "deals", "price", &err), TG_ESTORAGE);
	if (!strstr(err, but_is_postgresql() ? "relation \"deals\" does not exist" : "no such table"))
		fail_msg("%s", err);
	assert_non_null(strstr(err, "creating an index"));
	free(err);
	assert_int_equal(storage_state_set(f->conn, "t", "k", "v", NULL), 0);
}

#define TWIN_COLUMNS 8

struct twin {
	struct storage *st;
	pthread_barrier_t *start;
	int failures;
	char err[256];
};

static void *twin_main(void *arg)
{
	struct twin *w = arg;
	struct storage_conn *c;
	char *err = NULL, col[8];
	int rc = storage_connect(w->st, &c, &err);

	pthread_barrier_wait(w->start);
	for (int i = 0; rc == 0 && i < TWIN_COLUMNS; i++) {
		snprintf(col, sizeof(col), "c%d", i);
		if (storage_index(c, "wide", col, &err) != 0 && !w->failures++)
			snprintf(w->err, sizeof(w->err), "%s: %s", col, err ? err : "");
		free(err);
		err = NULL;
	}
	if (rc != 0)
		snprintf(w->err, sizeof(w->err), "connect: %s", err ? err : ""), w->failures++;
	free(err);
	if (rc == 0)
		storage_conn_free(c);
	return NULL;
}

/* Two connections (twins on one database) asking for the same indexes at
 * the same moment both succeed, and each index exists once. */
static void test_index_twins(void **state)
{
	struct fixture *f = *state;
	struct tg_column cols[TWIN_COLUMNS + 1] = {{"id", TG_INT, true}};
	char names[TWIN_COLUMNS][8], text[1024], want[1024] = "";
	const struct tg_table t = {"wide", cols, TWIN_COLUMNS + 1};
	struct twin w[2] = {{.st = f->st}, {.st = f->st}};
	pthread_barrier_t start;
	pthread_t th[2];

	for (int i = 0; i < TWIN_COLUMNS; i++) {
		snprintf(names[i], sizeof(names[i]), "c%d", i);
		cols[i + 1] = (struct tg_column){names[i], TG_INT, false};
		snprintf(want + strlen(want), sizeof(want) - strlen(want), "%stg_ix_wide_c%d", i ? "\n" : "", i);
	}
	declare_ok(f->conn, &t);
	pthread_barrier_init(&start, NULL, 2);
	for (int i = 0; i < 2; i++) {
		w[i].start = &start;
		assert_int_equal(pthread_create(&th[i], NULL, twin_main, &w[i]), 0);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&start);
	for (int i = 0; i < 2; i++)
		if (w[i].failures)
			fail_msg("twin %d: %d failures, first: %s", i, w[i].failures, w[i].err);
	assert_string_equal(index_names(f, "wide", text, sizeof(text)), want);
}

static void test_open_errors(void **state)
{
	struct fixture *f = *state;
	struct storage *st = (struct storage *)1;
	char *err = NULL, bad[640];

	assert_int_equal(storage_open(&st, "mysql", f->path, &err), TG_EINVAL);
	assert_null(st);
	assert_non_null(strstr(err, "postgresql"));
	free(err);
	assert_int_equal(storage_open(&st, but_backend(), "", NULL), TG_EINVAL);
	err = NULL;
	if (!but_is_postgresql()) {
		assert_int_equal(storage_open(&st, "sqlite", "/nonexistent-dir/x/y.db", &err), TG_ESTORAGE);
		assert_non_null(err);
		assert_non_null(strstr(err, "sqlite"));
		free(err);
		return;
	}
	/* The server's own reason, one line. */
	snprintf(bad, sizeof(bad), "%s dbname=tg_no_such_db", getenv("TG_TEST_PG_CONNINFO"));
	assert_int_equal(storage_open(&st, "postgresql", bad, &err), TG_ESTORAGE);
	assert_non_null(strstr(err, "database \"tg_no_such_db\" does not exist"));
	assert_null(strchr(err, '\n'));
	free(err);
	err = NULL;
	/* Not a connection string; a password in it is refused unread. */
	assert_int_equal(storage_open(&st, "postgresql", "host=/tmp dbname", &err), TG_EINVAL);
	assert_non_null(strstr(err, "connection string"));
	free(err);
	err = NULL;
	snprintf(bad, sizeof(bad), "%s password=s3cret", f->path);
	assert_int_equal(storage_open(&st, "postgresql", bad, &err), TG_EINVAL);
	assert_non_null(strstr(err, "password file"));
	assert_null(strstr(err, "s3cret"));
	free(err);
	err = NULL;
	assert_int_equal(storage_open(&st, "postgresql", "postgresql://u:s3cret@localhost/db", &err),
	                 TG_EINVAL);
	assert_null(strstr(err, "s3cret"));
	free(err);
}

/* The value libpq uses for keyword on this connection ("" when unset). */
static void conn_option(PGconn *c, const char *keyword, char *out, size_t len)
{
	PQconninfoOption *opts = PQconninfo(c);

	out[0] = '\0';
	for (PQconninfoOption *o = opts; o && o->keyword; o++)
		if (strcmp(o->keyword, keyword) == 0 && o->val)
			snprintf(out, len, "%s", o->val);
	PQconninfoFree(opts);
}

/* A server that vanishes without a word must become an error: every
 * connection has TCP keepalives, a user timeout and a connect timeout by
 * default, and the operator's connection string overrides each. */
static void test_pg_dead_peer_defaults(void **state)
{
	char conninfo[512], v[64];
	char *err = NULL;
	PGconn *c = NULL;

	(void)state;
	if (!but_is_postgresql())
		skip();
	assert_int_equal(pg_connect(getenv("TG_TEST_PG_CONNINFO"), NULL, &c, &err), 0);
	conn_option(c, "keepalives", v, sizeof(v));
	assert_string_equal(v, "1");
	conn_option(c, "keepalives_idle", v, sizeof(v));
	assert_string_equal(v, "30");
	conn_option(c, "tcp_user_timeout", v, sizeof(v));
	assert_string_equal(v, "60000");
	conn_option(c, "connect_timeout", v, sizeof(v));
	assert_string_equal(v, "10");
	PQfinish(c);
	snprintf(conninfo, sizeof(conninfo), "%s keepalives_idle=7 connect_timeout=3", getenv("TG_TEST_PG_CONNINFO"));
	assert_int_equal(pg_connect(conninfo, NULL, &c, &err), 0);
	conn_option(c, "keepalives_idle", v, sizeof(v));
	assert_string_equal(v, "7");
	conn_option(c, "connect_timeout", v, sizeof(v));
	assert_string_equal(v, "3");
	PQfinish(c);
}

/* Extreme values come back exactly, on every backend. */
struct exact {
	int64_t i;
	double r;
	char s[64];
};

static int read_exact(void *ud, const struct tg_value *row, size_t n)
{
	struct exact *e = ud;

	assert_int_equal(n, 4);
	assert_int_equal(row[1].type, TG_INT);
	assert_int_equal(row[2].type, TG_REAL);
	assert_int_equal(row[3].type, TG_TEXT);
	e->i = row[1].v.i;
	e->r = row[2].v.r;
	snprintf(e->s, sizeof(e->s), "%s", row[3].v.s);
	return 0;
}

static void test_value_range(void **state)
{
	struct fixture *f = *state;
	static const struct tg_column cols[] = {
	    {"id", TG_INT, true}, {"i", TG_INT, false}, {"r", TG_REAL, false}, {"s", TG_TEXT, false}};
	const struct tg_table t = {"range", cols, 4};
	const double reals[] = {0.1, -1e308, 5e-324, INFINITY, -INFINITY, 1.0 / 3.0};
	const int64_t ints[] = {INT64_MIN, INT64_MAX, 0, -1, 10944, 1764547200};
	const char *text = "Gr\xc3\xbc\xc3\x9f" "e \xe2\x82\xac 'x' \"y\" $1 ?1";

	declare_ok(f->conn, &t);
	for (int k = 0; k < 6; k++) {
		struct tg_value v[] = {TG_VINT("id", k), TG_VINT("i", ints[k]), TG_VREAL("r", reals[k]),
		                       TG_VTEXT("s", text)};

		upsert_ok(f->conn, "range", v, 4);
	}
	for (int k = 0; k < 6; k++) {
		struct tg_filter id = {TG_EQ, TG_VINT("id", k)};
		struct exact got = {0};

		assert_int_equal(storage_select(f->conn, "range", &id, 1, NULL, -1, read_exact, &got, NULL), 0);
		assert_true(got.i == ints[k]);
		assert_true(memcmp(&got.r, &reals[k], sizeof(double)) == 0);
		assert_string_equal(got.s, text);
	}
}

/* Hot-standby fencing (PostgreSQL): a commit lands only while the lease
 * row carries this process's epoch; the check is inside the transaction. */
static void test_fencing(void **state)
{
	struct fixture *f = *state;
	struct tg_value a[] = {TG_VTEXT("asin", "F1"), TG_VINT("price", 1)};
	struct tg_value b[] = {TG_VTEXT("asin", "F2"), TG_VINT("price", 2)};
	struct rows r;
	char *err = NULL, *v = NULL, text[256];

	if (!but_is_postgresql()) {
		skip();
		return;
	}
	declare_ok(f->conn, &deals);
	assert_true(but_pg_exec(f->path, "UPDATE tg_lease SET epoch = 7, node = 'me' WHERE name = 'active'"));
	storage_fence(7);
	assert_int_equal(storage_begin(f->conn, NULL), 0);
	upsert_ok(f->conn, "deals", a, 2);
	assert_int_equal(storage_commit(f->conn, &err), 0);
	upsert_ok(f->conn, "deals", b, 2); /* outside a transaction: checked too */

	/* Another node took over: epoch 8. Nothing of ours lands any more. */
	assert_true(but_pg_exec(f->path, "UPDATE tg_lease SET epoch = 8, node = 'other' WHERE name = 'active'"));
	a[1].v.i = 100;
	assert_int_equal(storage_begin(f->conn, NULL), 0);
	upsert_ok(f->conn, "deals", a, 2);
	assert_int_equal(storage_state_set(f->conn, "t", "page", "9", NULL), 0);
	assert_int_equal(storage_commit(f->conn, &err), TG_ESTOPPED);
	assert_non_null(strstr(err, "epoch 8, this node's was 7"));
	free(err);
	err = NULL;
	assert_false(storage_in_transaction(f->conn));
	b[1].v.i = 200;
	assert_int_equal(storage_upsert(f->conn, "deals", b, 2, &err), TG_ESTOPPED);
	free(err);
	assert_int_equal(storage_state_set(f->conn, "t", "page", "10", NULL), TG_ESTOPPED);
	/* Nor an index; and its refused transaction is not left open. */
	assert_int_equal(storage_index(f->conn, "deals", "price", NULL), TG_ESTOPPED);
	assert_int_equal(but_pg_number(f->path, "SELECT count(*) FROM pg_stat_activity WHERE datname = "
	                                        "current_database() AND state LIKE 'idle in transaction%'"),
	                 0);
	assert_string_equal(index_names(f, "deals", text, sizeof(text)), "");
	storage_fence(-1);
	assert_int_equal(storage_upsert(f->conn, "deals", b, 2, NULL), TG_ESTOPPED);
	storage_fence(0);
	assert_string_equal(get_deal(f->conn, "F1", &r), "asin='F1'|price=1|title=NULL|rating=NULL");
	assert_string_equal(get_deal(f->conn, "F2", &r), "asin='F2'|price=2|title=NULL|rating=NULL");
	assert_int_equal(storage_state_get(f->conn, "t", "page", &v, NULL), TG_ENOTFOUND);
	/* Fencing off: writes land again. */
	upsert_ok(f->conn, "deals", b, 2);
	assert_string_equal(get_deal(f->conn, "F2", &r), "asin='F2'|price=200|title=NULL|rating=NULL");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_declare_upsert_get, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_upsert_leaves_other_columns, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_transaction_rows_and_state, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_crash_killed_child, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_crash_exiting_child, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_migration, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_migration_by_other_handle, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_identifiers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_select, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_select_reentrant, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_type_mismatch, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_concurrent_writers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_read_then_write_transaction, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_index, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_index_serves_pages, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_index_long_names, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_index_in_transaction, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_index_database_reason, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_index_twins, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_value_range, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fencing, setup, teardown),
	    cmocka_unit_test(test_pg_dead_peer_defaults),
	};

	log_setup(TG_LOG_WARN, NULL);
	return cmocka_run_group_tests_name(but_is_postgresql() ? "storage-postgresql" : "storage", tests, NULL,
	                                   NULL);
}
