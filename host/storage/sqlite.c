/*
 * storage/sqlite.c - the SQLite backend of the storage service (see
 * storage.h for the contract of struct storage_backend_ops).
 *
 * The front has validated every identifier, yet identifiers are still
 * quoted here (a column may be called "order"), and values are only ever
 * bound to parameters.
 *
 * Statements are prepared once per connection and kept: the fixed ones by
 * their text, the row statements (upsert, select, remove) by their shape —
 * the table's registry entry, and per value or filter its column and
 * operator. A row's shape is recognised by one strcmp per column, or for
 * an upsert (upsert_at) by the column positions the front has just found,
 * so the SQL text of a row statement is built only the first time
 * (rebuilding and comparing it took 61% of an upsert's instructions). A table that changes
 * gets a new registry entry (storage.h), hence new statements.
 */
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/dynbuf.h"
#include "util/errmsg.h"
#include "storage/index_def.h"
#include "storage/storage.h"

/* How long a connection waits for another writer before SQLITE_BUSY. */
#define SQLITE_BUSY_TIMEOUT_MS 5000
/* Prepared statements kept per connection. */
#define STMT_CACHE_MAX 48
/* STRICT tables (typed columns enforced by SQLite itself) arrived in 3.37. */
#define SQLITE_STRICT_VERSION 3037000

struct sq_backend {
	char *path;
	bool strict;
	int64_t cache_kib; /* connections' page cache; 0: SQLite's default */
};

/* What a cached statement was built for. */
enum stmt_kind { STMT_TEXT, STMT_UPSERT, STMT_SELECT, STMT_REMOVE };

/* One value or filter of a row statement: the column's position in the
 * table and, for a filter, its operator (IS NULL and IS NOT NULL differ
 * from = ? and <> ? in the text, hence the flag). */
struct shape_item {
	unsigned column;
	int op;
	bool null;
};

/* A row statement's shape as a call presents it: values for an upsert,
 * filters for a select or a remove; order is a column name or NULL. */
struct shape {
	enum stmt_kind kind;
	const struct storage_table *table;
	const struct tg_value *values;
	const struct tg_filter *filters;
	const uint32_t *pos; /* upsert_at: the values' column positions */
	size_t n;
	const char *order;
	bool descending;
};

struct stmt_slot {
	enum stmt_kind kind;
	char *sql;                         /* STMT_TEXT: the key */
	const struct storage_table *table; /* row statements: the key */
	struct shape_item *items;
	size_t nitems;
	long order; /* select: the ORDER BY column's position, or -1 */
	bool descending;
	sqlite3_stmt *stmt;
	bool busy;     /* in use (a select whose row function re-enters) */
	uint64_t used; /* tick of last use, for eviction */
};

struct sq_conn {
	struct sq_backend *be;
	sqlite3 *db;
	struct stmt_slot cache[STMT_CACHE_MAX];
	size_t ncache;
	uint64_t tick;
	size_t last_hit; /* tried first: a task repeats one row shape */
};

/* ------------------------------------------------------------ SQL text */

/* A growing SQL string in the host's capped buffer: a failure is sticky
 * there and reported once at the end. Only identifiers and fixed text go
 * in, never values: 1 MiB is far beyond any declared table. */
struct sql {
	struct dynbuf d;
};
#define SQL_INIT {DYNBUF_INIT((size_t)1 << 20)}

static void sql_add(struct sql *b, const char *s)
{
	dynbuf_addstr(&b->d, s);
}

/* A quoted identifier: "name", with any quote doubled (none can pass the
 * front's validation; this is the second wall). */
static void sql_ident(struct sql *b, const char *name)
{
	char one[2] = {0, 0};

	sql_add(b, "\"");
	if (!strchr(name, '"')) {
		sql_add(b, name);
	} else {
		for (const char *c = name; *c; c++) {
			one[0] = *c;
			sql_add(b, *c == '"' ? "\"\"" : one);
		}
	}
	sql_add(b, "\"");
}

static void sql_param(struct sql *b, int i)
{
	char num[16];

	snprintf(num, sizeof(num), "?%d", i);
	sql_add(b, num);
}

static const char *sql_type(enum tg_type type)
{
	return type == TG_INT ? "INTEGER" : type == TG_REAL ? "REAL" : "TEXT";
}

/* -------------------------------------------------------------- errors */

static int sq_code(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_NOMEM:
		return TG_ENOMEM;
	case SQLITE_CONSTRAINT:
		/* STRICT refused a value: the front should have caught it. */
		return rc == SQLITE_CONSTRAINT_DATATYPE ? TG_ETYPE : TG_ESTORAGE;
	default:
		return TG_ESTORAGE;
	}
}

static int sq_fail(struct sq_conn *c, int rc, const char *doing, char **errmsg)
{
	return errmsg_set(errmsg, sq_code(rc), "sqlite: %s (%s)",
	                     c && c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc), doing);
}

/* ---------------------------------------------------- statement cache */

static void slot_clear(struct stmt_slot *s)
{
	sqlite3_finalize(s->stmt);
	free(s->sql);
	free(s->items);
	*s = (struct stmt_slot){0};
}

/* The column a shape names at position i. */
static const char *shape_column(const struct shape *sh, size_t i)
{
	return sh->values ? sh->values[i].column : sh->filters[i].value.column;
}

/* One strcmp per column: names are compared, never pointers, because a
 * caller may build them in a buffer it reuses. */
static bool slot_matches(const struct stmt_slot *s, const struct shape *sh)
{
	const struct storage_column *cols = sh->table->columns;

	if (s->kind != sh->kind || s->table != sh->table || s->nitems != sh->n ||
	    s->descending != sh->descending || (s->order >= 0) != (sh->order != NULL))
		return false;
	if (sh->order && strcmp(cols[s->order].name, sh->order) != 0)
		return false;
	if (sh->pos) {
		/* Positions the front found from these very names. */
		for (size_t i = 0; i < sh->n; i++)
			if (s->items[i].column != sh->pos[i])
				return false;
		return true;
	}
	for (size_t i = 0; i < sh->n; i++) {
		const struct shape_item *it = &s->items[i];

		if (sh->filters &&
		    (it->op != (int)sh->filters[i].op || it->null != (sh->filters[i].value.type == TG_NULL)))
			return false;
		if (strcmp(cols[it->column].name, shape_column(sh, i)) != 0)
			return false;
	}
	return true;
}

/* Slot i is the caller's until stmt_put(). */
static void slot_take(struct sq_conn *c, size_t i, sqlite3_stmt **out, int *slot)
{
	c->cache[i].busy = true;
	c->cache[i].used = c->tick;
	c->last_hit = i;
	*out = c->cache[i].stmt;
	*slot = (int)i;
}

/* A free slot for a new statement (the least recently used one is
 * finalized when the cache is full), or NULL when every slot is busy. */
static struct stmt_slot *slot_free(struct sq_conn *c)
{
	struct stmt_slot *victim = NULL;

	if (c->ncache < STMT_CACHE_MAX)
		return &c->cache[c->ncache++];
	for (size_t i = 0; i < c->ncache; i++)
		if (!c->cache[i].busy && (!victim || c->cache[i].used < victim->used))
			victim = &c->cache[i];
	if (victim)
		slot_clear(victim);
	return victim;
}

static bool text_matches(const struct stmt_slot *s, const void *text)
{
	return s->kind == STMT_TEXT && strcmp(s->sql, text) == 0;
}

static bool shape_matches(const struct stmt_slot *s, const void *shape)
{
	return slot_matches(s, shape);
}

/* Find the cached statement that matches key: 1 with the slot taken; 0
 * when not cached; -1 when cached but in use by an outer call (the caller
 * prepares a one-off then). */
static int slot_find(struct sq_conn *c, bool (*matches)(const struct stmt_slot *, const void *), const void *key,
                     sqlite3_stmt **out, int *slot)
{
	c->tick++;
	for (size_t k = 0; k < c->ncache; k++) {
		/* The last hit first (k 0), then the others in order. */
		size_t i = k == 0 ? c->last_hit : k == c->last_hit ? 0 : k;
		struct stmt_slot *s = &c->cache[i];

		if (!matches(s, key))
			continue;
		if (s->busy)
			return -1;
		slot_take(c, i, out, slot);
		return 1;
	}
	return 0;
}

/* A statement for sql, reset and unbound; *slot is its cache slot or -1
 * for a one-off statement that stmt_put() finalizes. */
static int stmt_get(struct sq_conn *c, const char *sql, sqlite3_stmt **out, int *slot, char **errmsg)
{
	struct stmt_slot *s;
	sqlite3_stmt *stmt;
	char *copy;
	int found, rc;

	*out = NULL;
	*slot = -1;
	found = slot_find(c, text_matches, sql, out, slot);
	if (found > 0)
		return 0;
	rc = sqlite3_prepare_v3(c->db, sql, -1, found < 0 ? 0 : SQLITE_PREPARE_PERSISTENT, &stmt, NULL);
	if (rc != SQLITE_OK)
		return sq_fail(c, rc, "preparing a statement", errmsg);
	*out = stmt;
	if (found < 0)
		return 0;
	/* Without memory for the key the statement is simply not cached. */
	copy = strdup(sql);
	if (!copy)
		return 0;
	s = slot_free(c);
	if (!s) {
		free(copy);
		return 0;
	}
	/* Slots never move: a caller holds its slot's index until stmt_put(). */
	*s = (struct stmt_slot){.kind = STMT_TEXT, .sql = copy, .order = -1, .stmt = stmt};
	slot_take(c, (size_t)(s - c->cache), out, slot);
	return 0;
}

static void stmt_put(struct sq_conn *c, sqlite3_stmt *stmt, int slot)
{
	if (!stmt)
		return;
	if (slot < 0) {
		sqlite3_finalize(stmt);
		return;
	}
	/* No sqlite3_clear_bindings(): every use binds every parameter. */
	sqlite3_reset(stmt);
	c->cache[slot].busy = false;
}

/* The position of column name in t (the front checked that it exists;
 * this runs only when a statement is built). */
static long table_column(const struct storage_table *t, const char *name)
{
	for (size_t i = 0; i < t->ncolumns; i++)
		if (strcmp(t->columns[i].name, name) == 0)
			return (long)i;
	return -1;
}

/* The shape's items (columns by position), a new array, and the position
 * of its ORDER BY column in *order; NULL when out of memory. */
static struct shape_item *shape_items(const struct shape *sh, long *order)
{
	struct shape_item *items = calloc(sh->n ? sh->n : 1, sizeof(*items));

	if (!items)
		return NULL;
	*order = sh->order ? table_column(sh->table, sh->order) : -1;
	for (size_t i = 0; i < sh->n; i++) {
		long col = sh->pos ? (long)sh->pos[i] : table_column(sh->table, shape_column(sh, i));

		items[i].column = col < 0 ? 0 : (unsigned)col;
		if (sh->filters) {
			items[i].op = (int)sh->filters[i].op;
			items[i].null = sh->filters[i].value.type == TG_NULL;
		}
	}
	return items;
}

static void sql_build(struct sql *b, const struct storage_table *t, enum stmt_kind kind,
                      const struct shape_item *items, size_t n, long order, bool descending);

/* The statement for shape sh, from the cache or prepared (and cached) now;
 * *slot as for stmt_get(). */
static int stmt_get_shape(struct sq_conn *c, const struct shape *sh, sqlite3_stmt **out, int *slot,
                          char **errmsg)
{
	struct shape_item *items;
	struct stmt_slot *s;
	struct sql b = SQL_INIT;
	sqlite3_stmt *stmt;
	long order;
	int found, rc;

	*out = NULL;
	*slot = -1;
	found = slot_find(c, shape_matches, sh, out, slot);
	if (found > 0)
		return 0;
	items = shape_items(sh, &order);
	if (!items)
		return errmsg_set(errmsg, TG_ENOMEM, "out of memory");
	sql_build(&b, sh->table, sh->kind, items, sh->n, order, sh->descending);
	if (dynbuf_error(&b.d)) {
		dynbuf_free(&b.d);
		free(items);
		return errmsg_set(errmsg, TG_ENOMEM, "out of memory building a statement");
	}
	rc = sqlite3_prepare_v3(c->db, dynbuf_str(&b.d), -1, found < 0 ? 0 : SQLITE_PREPARE_PERSISTENT, &stmt,
	                        NULL);
	dynbuf_free(&b.d);
	if (rc != SQLITE_OK) {
		free(items);
		return sq_fail(c, rc, "preparing a statement", errmsg);
	}
	*out = stmt;
	s = found < 0 ? NULL : slot_free(c);
	if (!s) {
		free(items);
		return 0;
	}
	*s = (struct stmt_slot){.kind = sh->kind,
	                        .table = sh->table,
	                        .items = items,
	                        .nitems = sh->n,
	                        .order = order,
	                        .descending = sh->descending,
	                        .stmt = stmt};
	slot_take(c, (size_t)(s - c->cache), out, slot);
	return 0;
}

/* Run a statement that returns no rows. */
static int exec_simple(struct sq_conn *c, const char *sql, const char *doing, char **errmsg)
{
	sqlite3_stmt *stmt;
	int slot, rc;

	rc = stmt_get(c, sql, &stmt, &slot, errmsg);
	if (rc < 0)
		return rc;
	rc = sqlite3_step(stmt);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		rc = sq_fail(c, rc, doing, errmsg);
	else
		rc = 0;
	stmt_put(c, stmt, slot);
	return rc;
}

static int bind_value(struct sq_conn *c, sqlite3_stmt *stmt, int idx, const struct tg_value *v, char **errmsg)
{
	int rc;

	switch (v->type) {
	case TG_INT:
		rc = sqlite3_bind_int64(stmt, idx, v->v.i);
		break;
	case TG_REAL:
		rc = sqlite3_bind_double(stmt, idx, v->v.r);
		break;
	case TG_TEXT:
		/* The caller's string outlives the statement's execution. */
		rc = sqlite3_bind_text(stmt, idx, v->v.s, -1, SQLITE_STATIC);
		break;
	default:
		rc = sqlite3_bind_null(stmt, idx);
		break;
	}
	return rc == SQLITE_OK ? 0 : sq_fail(c, rc, "binding a value", errmsg);
}

/* ---------------------------------------------------- open and connect */

/* SQLite's process-wide set-up, once, before its first connection: its
 * memory statistics are turned off. They take a global mutex around every
 * allocation (about 9 per upserted row) for counters the host never reads
 * (sqlite3_memory_used() then reports 0). When something else in the
 * process started SQLite first, the call is refused and changes nothing. */
static void sqlite_setup(void)
{
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	(void)sqlite3_initialize();
}

static pthread_once_t sqlite_setup_once = PTHREAD_ONCE_INIT;

static int db_open(const char *path, int64_t cache_kib, sqlite3 **out, char **errmsg)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *stmt = NULL;
	int rc;

	*out = NULL;
	pthread_once(&sqlite_setup_once, sqlite_setup);
	/* One connection per thread: SQLite's own mutexes are not needed. */
	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
	                     NULL);
	if (rc != SQLITE_OK) {
		rc = errmsg_set(errmsg, TG_ESTORAGE, "sqlite: cannot open %s: %s", path,
		                   db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		goto close_db;
	}
	sqlite3_extended_result_codes(db, 1);
	sqlite3_busy_timeout(db, SQLITE_BUSY_TIMEOUT_MS);
	/* WAL lets readers and one writer work at once; in WAL, NORMAL loses at
	 * most the last transactions on power loss, never consistency. */
	rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &stmt, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW) {
		rc = errmsg_set(errmsg, TG_ESTORAGE, "sqlite: cannot use WAL mode on %s: %s", path,
		                   sqlite3_errmsg(db));
		goto finalize;
	}
	if (strcasecmp((const char *)sqlite3_column_text(stmt, 0), "wal") != 0) {
		rc = errmsg_set(errmsg, TG_ESTORAGE, "sqlite: %s stays in journal mode %s, WAL is needed",
		                   path, sqlite3_column_text(stmt, 0));
		goto finalize;
	}
	sqlite3_finalize(stmt);
	stmt = NULL;
	rc = sqlite3_exec(db, "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=OFF", NULL, NULL, NULL);
	if (rc == SQLITE_OK && cache_kib > 0) {
		char pragma[64];

		/* A negative cache_size is a size in KiB, whatever the page size. */
		snprintf(pragma, sizeof(pragma), "PRAGMA cache_size=%lld", -(long long)cache_kib);
		rc = sqlite3_exec(db, pragma, NULL, NULL, NULL);
	}
	if (rc != SQLITE_OK) {
		rc =
		    errmsg_set(errmsg, TG_ESTORAGE, "sqlite: setting up %s: %s", path, sqlite3_errmsg(db));
		goto close_db;
	}
	*out = db;
	return 0;

finalize:
	sqlite3_finalize(stmt);
close_db:
	sqlite3_close_v2(db);
	return rc;
}

static int sq_open(const char *path, void **backend, char **errmsg)
{
	struct sq_backend *be;
	sqlite3 *db;
	char *sql = NULL;
	int rc;

	*backend = NULL;
	be = calloc(1, sizeof(*be));
	if (!be)
		return errmsg_set(errmsg, TG_ENOMEM, "out of memory");
	be->path = strdup(path);
	if (!be->path) {
		rc = errmsg_set(errmsg, TG_ENOMEM, "out of memory");
		goto free_be;
	}
	be->strict = sqlite3_libversion_number() >= SQLITE_STRICT_VERSION;
	rc = db_open(path, 0, &db, errmsg);
	if (rc < 0)
		goto free_be;
	if (asprintf(&sql,
	             "CREATE TABLE IF NOT EXISTS tg_state (task TEXT NOT NULL, key TEXT NOT NULL, "
	             "value TEXT NOT NULL, updated_at INTEGER NOT NULL, PRIMARY KEY (task, key))%s",
	             be->strict ? " STRICT" : "") < 0) {
		rc = errmsg_set(errmsg, TG_ENOMEM, "out of memory");
		goto close_db;
	}
	rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	free(sql);
	if (rc != SQLITE_OK) {
		rc = errmsg_set(errmsg, TG_ESTORAGE, "sqlite: creating tg_state in %s: %s", path,
		                   sqlite3_errmsg(db));
		goto close_db;
	}
	sqlite3_close_v2(db);
	*backend = be;
	return 0;

close_db:
	sqlite3_close_v2(db);
free_be:
	free(be->path);
	free(be);
	return rc;
}

static void sq_close(void *backend)
{
	struct sq_backend *be = backend;

	if (!be)
		return;
	free(be->path);
	free(be);
}

static int sq_connect(void *backend, void **conn, char **errmsg)
{
	struct sq_conn *c;
	int rc;

	*conn = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return errmsg_set(errmsg, TG_ENOMEM, "out of memory");
	c->be = backend;
	rc = db_open(c->be->path, c->be->cache_kib, &c->db, errmsg);
	if (rc < 0) {
		free(c);
		return rc;
	}
	*conn = c;
	return 0;
}

static void sq_set_cache_kib(void *backend, int64_t kib)
{
	((struct sq_backend *)backend)->cache_kib = kib;
}

static int sq_cache_kib(void *conn, int64_t *kib, char **errmsg)
{
	struct sq_conn *c = conn;
	sqlite3_stmt *stmt;
	int rc;

	*kib = 0;
	rc = sqlite3_prepare_v2(c->db, "SELECT cache_size, page_size FROM pragma_cache_size, pragma_page_size", -1,
	                        &stmt, NULL);
	if (rc != SQLITE_OK)
		return sq_fail(c, rc, "reading the cache size", errmsg);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		int64_t size = sqlite3_column_int64(stmt, 0);

		/* cache_size < 0 is KiB, > 0 a number of pages. */
		*kib = size < 0 ? -size : size * sqlite3_column_int64(stmt, 1) / 1024;
		rc = 0;
	} else {
		rc = sq_fail(c, rc, "reading the cache size", errmsg);
	}
	sqlite3_finalize(stmt);
	return rc;
}

static void sq_disconnect(void *conn)
{
	struct sq_conn *c = conn;

	if (!c)
		return;
	for (size_t i = 0; i < c->ncache; i++)
		slot_clear(&c->cache[i]);
	sqlite3_close_v2(c->db);
	free(c);
}

/* -------------------------------------------------------- transactions */

static int sq_begin(void *conn, char **errmsg)
{
	/* IMMEDIATE takes the write lock now (waiting up to the busy time-out),
	 * so a transaction never has to upgrade a read lock, which SQLite
	 * refuses at once with SQLITE_BUSY when another writer went first. */
	return exec_simple(conn, "BEGIN IMMEDIATE", "beginning a transaction", errmsg);
}

static int sq_commit(void *conn, char **errmsg)
{
	return exec_simple(conn, "COMMIT", "committing", errmsg);
}

static int sq_rollback(void *conn, char **errmsg)
{
	struct sq_conn *c = conn;

	/* Some errors (SQLITE_FULL, SQLITE_IOERR) roll back by themselves. */
	if (sqlite3_get_autocommit(c->db))
		return 0;
	return exec_simple(c, "ROLLBACK", "rolling back", errmsg);
}

/* -------------------------------------------------------------- schema */

static int column_type(const char *decl, enum tg_type *type)
{
	if (strcasecmp(decl, "INTEGER") == 0 || strcasecmp(decl, "INT") == 0)
		*type = TG_INT;
	else if (strcasecmp(decl, "REAL") == 0)
		*type = TG_REAL;
	else if (strcasecmp(decl, "TEXT") == 0)
		*type = TG_TEXT;
	else
		return -1;
	return 0;
}

static int sq_describe(void *conn, const char *table, struct storage_table **out, char **errmsg)
{
	struct sq_conn *c = conn;
	struct storage_table *t;
	sqlite3_stmt *stmt;
	int slot, rc, step;

	*out = NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return errmsg_set(errmsg, TG_ENOMEM, "out of memory");
	t->name = strdup(table);
	if (!t->name) {
		rc = errmsg_set(errmsg, TG_ENOMEM, "out of memory");
		goto free_t;
	}
	/* The table-valued pragma takes the name as a bound parameter. */
	rc = stmt_get(c, "SELECT name, type, pk FROM pragma_table_info(?1) ORDER BY cid", &stmt, &slot,
	              errmsg);
	if (rc < 0)
		goto free_t;
	rc = sqlite3_bind_text(stmt, 1, table, -1, SQLITE_STATIC);
	if (rc != SQLITE_OK) {
		rc = sq_fail(c, rc, "describing a table", errmsg);
		goto put_stmt;
	}
	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(stmt, 0);
		const char *decl = (const char *)sqlite3_column_text(stmt, 1);
		struct storage_column *col, *cols;

		cols = realloc(t->columns, (t->ncolumns + 1) * sizeof(*cols));
		if (!cols) {
			rc = errmsg_set(errmsg, TG_ENOMEM, "out of memory");
			goto put_stmt;
		}
		t->columns = cols;
		col = &cols[t->ncolumns];
		*col = (struct storage_column){0};
		if (!name || !decl || column_type(decl, &col->type) < 0) {
			rc = errmsg_set(errmsg, TG_ESTORAGE,
			                   "table '%s' has column '%s' of type '%s' that tollgate "
			                   "does not handle",
			                   table, name ? name : "?", decl ? decl : "?");
			goto put_stmt;
		}
		col->name = strdup(name);
		if (!col->name) {
			rc = errmsg_set(errmsg, TG_ENOMEM, "out of memory");
			goto put_stmt;
		}
		col->key = (unsigned)sqlite3_column_int(stmt, 2);
		t->nkeys += col->key != 0;
		t->ncolumns++;
	}
	if (step != SQLITE_DONE) {
		rc = sq_fail(c, step, "describing a table", errmsg);
		goto put_stmt;
	}
	stmt_put(c, stmt, slot);
	if (t->ncolumns == 0)
		storage_table_free(t);
	else
		*out = t;
	return 0;

put_stmt:
	stmt_put(c, stmt, slot);
free_t:
	storage_table_free(t);
	return rc;
}

static int exec_built(struct sq_conn *c, struct sql *b, const char *doing, char **errmsg)
{
	int rc;

	if (dynbuf_error(&b->d)) {
		dynbuf_free(&b->d);
		return errmsg_set(errmsg, TG_ENOMEM, "out of memory building a statement");
	}
	/* DDL runs once: it does not go through the statement cache. */
	rc = sqlite3_exec(c->db, dynbuf_str(&b->d), NULL, NULL, NULL);
	dynbuf_free(&b->d);
	return rc == SQLITE_OK ? 0 : sq_fail(c, rc, doing, errmsg);
}

static int sq_create_table(void *conn, const struct storage_table *t, char **errmsg)
{
	struct sq_conn *c = conn;
	struct sql b = SQL_INIT;
	bool first = true;

	sql_add(&b, "CREATE TABLE IF NOT EXISTS ");
	sql_ident(&b, t->name);
	sql_add(&b, " (");
	for (size_t i = 0; i < t->ncolumns; i++) {
		sql_ident(&b, t->columns[i].name);
		sql_add(&b, " ");
		sql_add(&b, sql_type(t->columns[i].type));
		sql_add(&b, t->columns[i].key ? " NOT NULL, " : ", ");
	}
	sql_add(&b, "PRIMARY KEY (");
	for (unsigned k = 1; k <= t->nkeys; k++) {
		for (size_t i = 0; i < t->ncolumns; i++) {
			if (t->columns[i].key != k)
				continue;
			if (!first)
				sql_add(&b, ", ");
			sql_ident(&b, t->columns[i].name);
			first = false;
		}
	}
	sql_add(&b, "))");
	if (c->be->strict)
		sql_add(&b, " STRICT");
	return exec_built(c, &b, "creating a table", errmsg);
}

static int sq_add_column(void *conn, const char *table, const struct storage_column *col, char **errmsg)
{
	struct sql b = SQL_INIT;

	sql_add(&b, "ALTER TABLE ");
	sql_ident(&b, table);
	sql_add(&b, " ADD COLUMN ");
	sql_ident(&b, col->name);
	sql_add(&b, " ");
	sql_add(&b, sql_type(col->type));
	return exec_built(conn, &b, "adding a column", errmsg);
}

/* ---------------------------------------------------------------- rows */

static const char *const op_text[] = {
    [TG_EQ] = " = ", [TG_NE] = " <> ", [TG_LT] = " < ", [TG_LE] = " <= ", [TG_GT] = " > ", [TG_GE] = " >= ",
};

/* " WHERE a = ?1 AND b IS NULL ..." numbering parameters from 1; NULL
 * values take no parameter. Returns the number of parameters used. */
static int sql_where(struct sql *b, const struct storage_table *t, const struct shape_item *items, size_t n)
{
	int param = 0;

	for (size_t i = 0; i < n; i++) {
		sql_add(b, i ? " AND " : " WHERE ");
		sql_ident(b, t->columns[items[i].column].name);
		if (items[i].null) {
			sql_add(b, items[i].op == TG_EQ ? " IS NULL" : " IS NOT NULL");
			continue;
		}
		sql_add(b, op_text[items[i].op]);
		sql_param(b, ++param);
	}
	return param;
}

static void sql_upsert(struct sql *b, const struct storage_table *t, const struct shape_item *items, size_t n)
{
	bool first = true;

	sql_add(b, "INSERT INTO ");
	sql_ident(b, t->name);
	sql_add(b, " (");
	for (size_t i = 0; i < n; i++) {
		sql_add(b, i ? ", " : "");
		sql_ident(b, t->columns[items[i].column].name);
	}
	sql_add(b, ") VALUES (");
	for (size_t i = 0; i < n; i++) {
		sql_add(b, i ? ", " : "");
		sql_param(b, (int)i + 1);
	}
	sql_add(b, ") ON CONFLICT (");
	for (size_t i = 0; i < t->ncolumns; i++) {
		if (!t->columns[i].key)
			continue;
		sql_add(b, first ? "" : ", ");
		sql_ident(b, t->columns[i].name);
		first = false;
	}
	sql_add(b, ") DO ");
	first = true;
	/* Only the named non-key columns are updated: the others keep their
	 * value, which is the point of naming columns in an upsert. */
	for (size_t i = 0; i < n; i++) {
		const struct storage_column *col = &t->columns[items[i].column];

		if (col->key)
			continue;
		sql_add(b, first ? "UPDATE SET " : ", ");
		sql_ident(b, col->name);
		sql_add(b, " = excluded.");
		sql_ident(b, col->name);
		first = false;
	}
	if (first)
		sql_add(b, "NOTHING");
}

static void sql_select(struct sql *b, const struct storage_table *t, const struct shape_item *items, size_t n,
                       long order, bool descending)
{
	int nparams;

	sql_add(b, "SELECT ");
	for (size_t i = 0; i < t->ncolumns; i++) {
		sql_add(b, i ? ", " : "");
		sql_ident(b, t->columns[i].name);
	}
	sql_add(b, " FROM ");
	sql_ident(b, t->name);
	nparams = sql_where(b, t, items, n);
	if (order >= 0) {
		sql_add(b, " ORDER BY ");
		sql_ident(b, t->columns[order].name);
		sql_add(b, descending ? " DESC" : " ASC");
	}
	sql_add(b, " LIMIT ");
	sql_param(b, nparams + 1);
}

/* The text of a row statement of this shape. */
static void sql_build(struct sql *b, const struct storage_table *t, enum stmt_kind kind,
                      const struct shape_item *items, size_t n, long order, bool descending)
{
	switch (kind) {
	case STMT_UPSERT:
		sql_upsert(b, t, items, n);
		break;
	case STMT_SELECT:
		sql_select(b, t, items, n, order, descending);
		break;
	case STMT_REMOVE:
		sql_add(b, "DELETE FROM ");
		sql_ident(b, t->name);
		sql_where(b, t, items, n);
		break;
	case STMT_TEXT:
		break;
	}
}

static int sq_upsert_at(void *conn, const struct storage_table *t, const struct tg_value *values,
                        const uint32_t *pos, size_t n, char **errmsg)
{
	struct sq_conn *c = conn;
	const struct shape sh = {.kind = STMT_UPSERT, .table = t, .values = values, .pos = pos, .n = n};
	sqlite3_stmt *stmt;
	int slot, rc;

	rc = stmt_get_shape(c, &sh, &stmt, &slot, errmsg);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = bind_value(c, stmt, (int)i + 1, &values[i], errmsg);
	if (rc == 0) {
		rc = sqlite3_step(stmt);
		rc = rc == SQLITE_DONE ? 0 : sq_fail(c, rc, "upserting a row", errmsg);
	}
	stmt_put(c, stmt, slot);
	return rc;
}

static int sq_upsert(void *conn, const struct storage_table *t, const struct tg_value *values, size_t n,
                     char **errmsg)
{
	return sq_upsert_at(conn, t, values, NULL, n, errmsg);
}

/* Bind the filters' values; the number of parameters bound, or < 0. */
static int bind_filters(struct sq_conn *c, sqlite3_stmt *stmt, const struct tg_filter *f, size_t n,
                        char **errmsg)
{
	int param = 0, rc;

	for (size_t i = 0; i < n; i++) {
		if (f[i].value.type == TG_NULL)
			continue;
		rc = bind_value(c, stmt, ++param, &f[i].value, errmsg);
		if (rc < 0)
			return rc;
	}
	return param;
}

static int sq_remove(void *conn, const struct storage_table *t, const struct tg_filter *f, size_t n,
                     char **errmsg)
{
	struct sq_conn *c = conn;
	const struct shape sh = {.kind = STMT_REMOVE, .table = t, .filters = f, .n = n};
	sqlite3_stmt *stmt;
	int slot, rc;

	rc = stmt_get_shape(c, &sh, &stmt, &slot, errmsg);
	if (rc < 0)
		return rc;
	rc = bind_filters(c, stmt, f, n, errmsg);
	if (rc >= 0) {
		rc = sqlite3_step(stmt);
		rc = rc == SQLITE_DONE ? 0 : sq_fail(c, rc, "deleting a row", errmsg);
	}
	stmt_put(c, stmt, slot);
	return rc;
}

static void read_cell(sqlite3_stmt *stmt, int i, const struct storage_column *col, struct tg_value *v)
{
	v->column = col->name;
	if (sqlite3_column_type(stmt, i) == SQLITE_NULL) {
		v->type = TG_NULL;
		return;
	}
	/* The declared type decides: a STRICT REAL column may hand back an
	 * integral value stored compactly. */
	v->type = col->type;
	switch (col->type) {
	case TG_INT:
		v->v.i = sqlite3_column_int64(stmt, i);
		break;
	case TG_REAL:
		v->v.r = sqlite3_column_double(stmt, i);
		break;
	default:
		v->v.s = (const char *)sqlite3_column_text(stmt, i);
		if (!v->v.s)
			v->type = TG_NULL;
		break;
	}
}

/* Step stmt and hand each row to fn (its non-zero return stops and is
 * returned); row has room for t's columns. */
static int step_rows(struct sq_conn *c, sqlite3_stmt *stmt, const struct storage_table *t, struct tg_value *row,
                     tg_row_fn fn, void *ud, char **errmsg)
{
	int step, rc = 0;

	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
		for (size_t i = 0; i < t->ncolumns; i++)
			read_cell(stmt, (int)i, &t->columns[i], &row[i]);
		rc = fn(ud, row, t->ncolumns);
		if (rc != 0)
			return rc;
	}
	return step == SQLITE_DONE ? 0 : sq_fail(c, step, "reading rows", errmsg);
}

/* Rows of up to this many columns are read without an allocation. */
#define ROW_INLINE 64

static int sq_select(void *conn, const struct storage_table *t, const struct tg_filter *f, size_t n,
                     const char *order_by, bool descending, int64_t limit, tg_row_fn fn, void *ud,
                     char **errmsg)
{
	struct sq_conn *c = conn;
	const struct shape sh = {
	    .kind = STMT_SELECT, .table = t, .filters = f, .n = n, .order = order_by, .descending = descending};
	struct tg_value room[ROW_INLINE], *row = room;
	sqlite3_stmt *stmt;
	int slot, rc, nparams;

	if (t->ncolumns > ROW_INLINE) {
		row = calloc(t->ncolumns, sizeof(*row));
		if (!row)
			return errmsg_set(errmsg, TG_ENOMEM, "out of memory");
	}
	rc = stmt_get_shape(c, &sh, &stmt, &slot, errmsg);
	if (rc < 0)
		goto free_row;
	rc = nparams = bind_filters(c, stmt, f, n, errmsg);
	if (rc < 0)
		goto put_stmt;
	rc = sqlite3_bind_int64(stmt, nparams + 1, limit);
	if (rc != SQLITE_OK) {
		rc = sq_fail(c, rc, "binding the limit", errmsg);
		goto put_stmt;
	}
	rc = step_rows(c, stmt, t, row, fn, ud, errmsg);
put_stmt:
	stmt_put(c, stmt, slot);
free_row:
	if (row != room)
		free(row);
	return rc;
}

/* ------------------------------------------------- pages for readers */

/* The WHERE clause of a page: the filters, then the substring match (LIKE
 * with its wildcards escaped, so the text is matched literally; SQLite's
 * LIKE ignores ASCII case). Returns the number of parameters used, or -1
 * when out of memory. */
static int sql_where_query(struct sql *b, const struct storage_table *t, const struct storage_query *q)
{
	const struct shape sh = {.kind = STMT_SELECT, .table = t, .filters = q->filters, .n = q->nfilters};
	struct shape_item *items;
	long order;
	int param;

	items = shape_items(&sh, &order);
	if (!items)
		return -1;
	param = sql_where(b, t, items, q->nfilters);
	free(items);

	if (q->match_column) {
		sql_add(b, q->nfilters ? " AND " : " WHERE ");
		sql_ident(b, q->match_column);
		sql_add(b, " LIKE ");
		sql_param(b, ++param);
		sql_add(b, " ESCAPE '\\'");
	}
	return param;
}

/* Prepare (or find cached by its text) the statement built in b. */
static int stmt_get_built(struct sq_conn *c, struct sql *b, sqlite3_stmt **out, int *slot, char **errmsg)
{
	int rc;

	if (dynbuf_error(&b->d)) {
		dynbuf_free(&b->d);
		return errmsg_set(errmsg, TG_ENOMEM, "out of memory building a statement");
	}
	rc = stmt_get(c, dynbuf_str(&b->d), out, slot, errmsg);
	dynbuf_free(&b->d);
	return rc;
}

/* "%text%" with \, % and _ escaped by a backslash. */
static char *like_pattern(const char *text)
{
	size_t n = strlen(text), o = 0;
	char *p = malloc(2 * n + 3);

	if (!p)
		return NULL;
	p[o++] = '%';
	for (const char *c = text; *c; c++) {
		if (*c == '\\' || *c == '%' || *c == '_')
			p[o++] = '\\';
		p[o++] = *c;
	}
	p[o++] = '%';
	p[o] = '\0';
	return p;
}

/* Bind the filters and the pattern of the match; *pattern is to be freed
 * after the statement ran. */
static int bind_query(struct sq_conn *c, sqlite3_stmt *stmt, const struct storage_query *q, int nparams,
                      char **pattern, char **errmsg)
{
	int rc = bind_filters(c, stmt, q->filters, q->nfilters, errmsg);

	*pattern = NULL;
	if (rc < 0)
		return rc;
	if (!q->match_column)
		return 0;
	*pattern = like_pattern(q->match_text);
	if (!*pattern)
		return errmsg_set(errmsg, TG_ENOMEM, "out of memory");
	rc = sqlite3_bind_text(stmt, nparams, *pattern, -1, SQLITE_STATIC);
	return rc == SQLITE_OK ? 0 : sq_fail(c, rc, "binding the search text", errmsg);
}

/* " ORDER BY col DESC, key1 DESC, ..." - the key columns break ties in the
 * same direction, which is the order of the index storage_index() makes. */
static void sql_order(struct sql *b, const struct storage_table *t, const char *order_by, bool descending)
{
	const char *dir = descending ? " DESC" : " ASC";
	bool first = true;

	sql_add(b, " ORDER BY ");
	if (order_by) {
		sql_ident(b, order_by);
		sql_add(b, dir);
		first = false;
	}
	for (unsigned k = 1; k <= t->nkeys; k++)
		for (size_t i = 0; i < t->ncolumns; i++)
			if (t->columns[i].key == k) {
				sql_add(b, first ? "" : ", ");
				sql_ident(b, t->columns[i].name);
				sql_add(b, dir);
				first = false;
			}
}

static int sq_query(void *conn, const struct storage_table *t, const struct storage_query *q,
                    const char *order_by, bool descending, tg_row_fn fn, void *ud, char **errmsg)
{
	struct sq_conn *c = conn;
	struct tg_value *row;
	struct sql b = SQL_INIT;
	sqlite3_stmt *stmt;
	char *pattern = NULL;
	int slot, rc, nparams;

	sql_add(&b, "SELECT ");
	for (size_t i = 0; i < t->ncolumns; i++) {
		sql_add(&b, i ? ", " : "");
		sql_ident(&b, t->columns[i].name);
	}
	sql_add(&b, " FROM ");
	sql_ident(&b, t->name);
	nparams = sql_where_query(&b, t, q);
	if (nparams < 0) {
		dynbuf_free(&b.d);
		return errmsg_set(errmsg, TG_ENOMEM, "out of memory");
	}
	sql_order(&b, t, order_by, descending);
	sql_add(&b, " LIMIT ");
	sql_param(&b, nparams + 1);
	sql_add(&b, " OFFSET ");
	sql_param(&b, nparams + 2);

	row = calloc(t->ncolumns, sizeof(*row));
	if (!row) {
		dynbuf_free(&b.d);
		return errmsg_set(errmsg, TG_ENOMEM, "out of memory");
	}
	rc = stmt_get_built(c, &b, &stmt, &slot, errmsg);
	if (rc < 0)
		goto free_row;
	rc = bind_query(c, stmt, q, nparams, &pattern, errmsg);
	if (rc < 0)
		goto put_stmt;
	if (sqlite3_bind_int64(stmt, nparams + 1, q->limit < 0 ? -1 : q->limit) != SQLITE_OK ||
	    sqlite3_bind_int64(stmt, nparams + 2, q->offset) != SQLITE_OK) {
		rc = sq_fail(c, SQLITE_RANGE, "binding the limit", errmsg);
		goto put_stmt;
	}
	rc = step_rows(c, stmt, t, row, fn, ud, errmsg);
put_stmt:
	stmt_put(c, stmt, slot);
	free(pattern);
free_row:
	free(row);
	return rc;
}

static int sq_count(void *conn, const struct storage_table *t, const struct storage_query *q, int64_t *count,
                    char **errmsg)
{
	struct sq_conn *c = conn;
	struct sql b = SQL_INIT;
	sqlite3_stmt *stmt;
	char *pattern = NULL;
	int slot, rc, nparams;

	sql_add(&b, "SELECT COUNT(*) FROM ");
	sql_ident(&b, t->name);
	nparams = sql_where_query(&b, t, q);
	if (nparams < 0) {
		dynbuf_free(&b.d);
		return errmsg_set(errmsg, TG_ENOMEM, "out of memory");
	}
	rc = stmt_get_built(c, &b, &stmt, &slot, errmsg);
	if (rc < 0)
		return rc;
	rc = bind_query(c, stmt, q, nparams, &pattern, errmsg);
	if (rc == 0) {
		rc = sqlite3_step(stmt);
		if (rc == SQLITE_ROW) {
			*count = sqlite3_column_int64(stmt, 0);
			rc = 0;
		} else {
			rc = sq_fail(c, rc, "counting rows", errmsg);
		}
	}
	stmt_put(c, stmt, slot);
	free(pattern);
	return rc;
}

static int sq_index(void *conn, const struct storage_table *t, const char *column, char **errmsg)
{
	struct sql b = SQL_INIT;
	const struct storage_column *col;
	char name[STORAGE_INDEX_NAME_SIZE];

	/* tg_ names are the host's: no plugin table or column can take them. */
	storage_index_name(t->name, column, name);
	sql_add(&b, "CREATE INDEX IF NOT EXISTS ");
	sql_ident(&b, name);
	sql_add(&b, " ON ");
	sql_ident(&b, t->name);
	for (size_t n = 0; (col = storage_index_column(t, column, n)); n++) {
		sql_add(&b, n ? ", " : " (");
		sql_ident(&b, col->name);
	}
	sql_add(&b, ")");
	return exec_built(conn, &b, "creating an index", errmsg);
}

/* --------------------------------------------------------------- state */

static int sq_state_get(void *conn, const char *task, const char *key, char **value, char **errmsg)
{
	struct sq_conn *c = conn;
	sqlite3_stmt *stmt;
	int slot, rc;

	*value = NULL;
	rc = stmt_get(c, "SELECT value FROM tg_state WHERE task = ?1 AND key = ?2", &stmt, &slot, errmsg);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(stmt, 1, task, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(stmt, 0);

		*value = strdup(v ? v : "");
		rc = *value ? 0 : errmsg_set(errmsg, TG_ENOMEM, "out of memory");
	} else if (rc == SQLITE_DONE) {
		rc = TG_ENOTFOUND;
	} else {
		rc = sq_fail(c, rc, "reading state", errmsg);
	}
	stmt_put(c, stmt, slot);
	return rc;
}

static int sq_state_set(void *conn, const char *task, const char *key, const char *value, int64_t updated_at,
                        char **errmsg)
{
	struct sq_conn *c = conn;
	sqlite3_stmt *stmt;
	int slot, rc;

	if (value)
		rc = stmt_get(c,
		              "INSERT INTO tg_state (task, key, value, updated_at) VALUES (?1, ?2, ?3, ?4) "
		              "ON CONFLICT (task, key) DO UPDATE SET value = excluded.value, "
		              "updated_at = excluded.updated_at",
		              &stmt, &slot, errmsg);
	else
		rc = stmt_get(c, "DELETE FROM tg_state WHERE task = ?1 AND key = ?2", &stmt, &slot, errmsg);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(stmt, 1, task, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, key, -1, SQLITE_STATIC);
	if (value) {
		sqlite3_bind_text(stmt, 3, value, -1, SQLITE_STATIC);
		sqlite3_bind_int64(stmt, 4, updated_at);
	}
	rc = sqlite3_step(stmt);
	rc = rc == SQLITE_DONE ? 0 : sq_fail(c, rc, "writing state", errmsg);
	stmt_put(c, stmt, slot);
	return rc;
}

const struct storage_backend_ops storage_sqlite_ops = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .connect = sq_connect,
    .disconnect = sq_disconnect,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .describe = sq_describe,
    .create_table = sq_create_table,
    .add_column = sq_add_column,
    .upsert = sq_upsert,
    .upsert_at = sq_upsert_at,
    .set_cache_kib = sq_set_cache_kib,
    .cache_kib = sq_cache_kib,
    .remove = sq_remove,
    .select = sq_select,
    .state_get = sq_state_get,
    .state_set = sq_state_set,
    .query = sq_query,
    .count = sq_count,
    .index = sq_index,
};
