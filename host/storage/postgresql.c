/*
 * storage/postgresql.c - the PostgreSQL backend of the storage service
 * (see storage.h for the contract of struct storage_backend_ops).
 *
 * Types. TG_INT is bigint (prices are integer cents and times integer Unix
 * seconds, as on SQLite: one meaning per column on both backends, no
 * time-zone conversions; readers wanting timestamptz write
 * to_timestamp(col)), TG_REAL is double precision, TG_TEXT is text. The
 * host table tg_state keeps updated_at as bigint Unix seconds too.
 *
 * Values are sent as parameters of prepared statements (text format, each
 * with an explicit cast in the statement: a column's type for what is
 * written, the value's type for comparisons, so 25.5 compares with a
 * bigint column as on SQLite). Statements are prepared once per connection
 * and named by a counter; the SQL text is the cache key.
 *
 * Where PostgreSQL differs from SQLite and the front's contract needs the
 * SQLite behaviour, it is asked for explicitly: NULLs sort first ascending
 * and last descending, text sorts and compares bytewise (COLLATE "C").
 * Transactions are serialised by a transaction-level advisory lock taken at
 * begin, as SQLite's BEGIN IMMEDIATE serialises them: no two chunks can
 * deadlock on rows they both write.
 *
 * What cannot be made the same: after a failed statement PostgreSQL
 * refuses everything until the transaction is rolled back (commit then
 * fails with that reason); the front has validated values, so only server
 * trouble fails a statement. A select's rows arrive whole before the first
 * row function runs (so the function may use the connection): selects are
 * bounded by their limit, not streamed.
 *
 * A connection lost outside a transaction is re-established at the next
 * call; inside one, the call fails and the transaction is gone.
 *
 * Fencing (hot standby, core/ha.c): once storage_fence() gave this process
 * an epoch, every commit first reads the lease row FOR SHARE and commits
 * only while the lease still carries that epoch; a write outside a
 * transaction becomes a transaction of its own to be checked the same way.
 * The row lock makes a takeover (which updates that row) wait for a commit
 * that passed the check, so no write of an old epoch can land after the
 * new epoch was set.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "observe/log.h"
#include "storage/index_def.h"
#include "storage/pg_conn.h"
#include "storage/sql_text.h"
#include "storage/storage.h"
#include "util/errmsg.h"

/* Taken at every begin, held to commit or rollback (see pq_begin). */
#define WRITE_LOCK_SQL "SELECT pg_advisory_xact_lock(" PG_LOCK_KEY_SQL("'write'") ")"

/* Prepared statements kept per connection. */
#define STMT_CACHE_MAX 64

struct pg_backend {
	char *conninfo;
};

/* The epoch this process's commits must find in the lease row: 0 no
 * fencing (no HA), < 0 nothing may commit (the lease was lost). */
static _Atomic int64_t fence_epoch;

void storage_fence(int64_t epoch)
{
	atomic_store(&fence_epoch, epoch);
}

struct stmt_slot {
	char *sql;
	char name[24];
	uint64_t used;
};

struct pg_conn {
	struct pg_backend *be;
	PGconn *db;
	struct stmt_slot cache[STMT_CACHE_MAX];
	size_t ncache;
	uint64_t tick, named;
	bool in_tx; /* between a successful begin and its commit or rollback */
};

static const char *pg_type(enum tg_type type)
{
	return type == TG_INT ? "bigint" : type == TG_REAL ? "double precision" : "text";
}

/* The short cast for a parameter of this type. */
static const char *pg_cast(enum tg_type type)
{
	return type == TG_INT ? "int8" : type == TG_REAL ? "float8" : "text";
}

/* ---------------------------------------------------- statement cache */

static void cache_clear(struct pg_conn *c)
{
	for (size_t i = 0; i < c->ncache; i++)
		free(c->cache[i].sql);
	c->ncache = 0;
}

/* A connection that broke while idle is re-established: the server (or
 * the network) was restarted under a running daemon. */
static int ensure_connected(struct pg_conn *c, char **errmsg)
{
	if (PQstatus(c->db) == CONNECTION_OK)
		return 0;
	PQreset(c->db);
	if (PQstatus(c->db) != CONNECTION_OK)
		return pg_fail(c->db, NULL, "reconnecting", errmsg);
	/* A new session: its prepared statements are gone. */
	cache_clear(c);
	PQclear(PQexec(c->db, "SET lc_messages TO 'C'"));
	log_warn(NULL, "storage: reconnected to PostgreSQL");
	return 0;
}

/* The name of the prepared statement for sql, preparing it if needed. */
static int stmt_name(struct pg_conn *c, const char *sql, const char **name, char **errmsg)
{
	struct stmt_slot *slot = NULL;
	PGresult *res;
	char *copy;

	c->tick++;
	for (size_t i = 0; i < c->ncache; i++) {
		if (strcmp(c->cache[i].sql, sql) == 0) {
			c->cache[i].used = c->tick;
			*name = c->cache[i].name;
			return 0;
		}
	}
	copy = strdup(sql);
	if (!copy)
		return errmsg_set(errmsg, TG_ENOMEM, "out of memory");
	if (c->ncache < STMT_CACHE_MAX) {
		slot = &c->cache[c->ncache++];
	} else {
		char dealloc[48];

		slot = &c->cache[0];
		for (size_t i = 1; i < c->ncache; i++)
			if (c->cache[i].used < slot->used)
				slot = &c->cache[i];
		snprintf(dealloc, sizeof(dealloc), "DEALLOCATE %s", slot->name);
		/* A failure leaves a statement on the server until the session
		 * ends: harmless. */
		PQclear(PQexec(c->db, dealloc));
		free(slot->sql);
	}
	*slot = (struct stmt_slot){.sql = copy, .used = c->tick};
	snprintf(slot->name, sizeof(slot->name), "tg%" PRIu64, ++c->named);
	res = PQprepare(c->db, slot->name, sql, 0, NULL);
	if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
		free(slot->sql);
		*slot = c->cache[--c->ncache];
		return pg_fail(c->db, res, "preparing a statement", errmsg);
	}
	PQclear(res);
	*name = slot->name;
	return 0;
}

/* Run the statement sql with n text parameters (NULL entries are SQL
 * NULL). *out gets the result when rows are wanted (out not NULL). */
static int run_once(struct pg_conn *c, const char *sql, int n, const char *const *params, PGresult **out,
                    const char *doing, char **errmsg)
{
	const char *name = NULL;
	PGresult *res;
	int rc;

	rc = stmt_name(c, sql, &name, errmsg);
	if (rc < 0)
		return rc;
	res = PQexecPrepared(c->db, name, n, params, NULL, NULL, 0);
	if (!res || (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK))
		return pg_fail(c->db, res, doing, errmsg);
	if (out)
		*out = res;
	else
		PQclear(res);
	return 0;
}

/* Outside a transaction, a connection that died while idle (the server was
 * restarted) is only noticed when used: nothing is lost by connecting
 * again and asking once more (every write is an upsert or a delete, so a
 * statement that did land before the connection died lands the same). */
static bool retry_on_new_connection(struct pg_conn *c, int rc)
{
	return rc < 0 && !c->in_tx && PQstatus(c->db) == CONNECTION_BAD && ensure_connected(c, NULL) == 0;
}

/* Hand the message of the last attempt (may be NULL) to the caller,
 * replacing what was there, as errmsg_set does. */
static void keep_message(char **errmsg, char *msg)
{
	if (errmsg && msg) {
		free(*errmsg);
		*errmsg = msg;
	} else {
		free(msg);
	}
}

static int run(struct pg_conn *c, const char *sql, int n, const char *const *params, PGresult **out,
               const char *doing, char **errmsg)
{
	char *first = NULL;
	int rc;

	if (out)
		*out = NULL;
	if (!c->in_tx) {
		rc = ensure_connected(c, errmsg);
		if (rc < 0)
			return rc;
	}
	rc = run_once(c, sql, n, params, out, doing, &first);
	if (retry_on_new_connection(c, rc)) {
		free(first);
		first = NULL;
		rc = run_once(c, sql, n, params, out, doing, &first);
	}
	keep_message(errmsg, first);
	return rc;
}
static int pq_commit(void *conn, char **errmsg);

/* A write: outside a transaction and with fencing on, it becomes a
 * transaction of its own, so the fence is checked before it lands. */
static int write_stmt(struct pg_conn *c, const char *sql, int n, const char *const *params, const char *doing,
                      char **errmsg)
{
	int rc;

	if (c->in_tx || atomic_load(&fence_epoch) == 0)
		return run(c, sql, n, params, NULL, doing, errmsg);
	rc = ensure_connected(c, errmsg);
	if (rc == 0)
		rc = pg_exec(c->db, "BEGIN", doing, errmsg);
	if (rc < 0)
		return rc;
	c->in_tx = true;
	rc = run(c, sql, n, params, NULL, doing, errmsg);
	if (rc == 0)
		rc = pq_commit(c, errmsg);
	c->in_tx = false;
	if (rc < 0 && PQtransactionStatus(c->db) != PQTRANS_IDLE)
		PQclear(PQexec(c->db, "ROLLBACK"));
	return rc;
}

/* Parameters as text: numbers are printed into scratch (32 bytes each). */
static const char *param_text(const struct tg_value *v, char *scratch)
{
	switch (v->type) {
	case TG_INT:
		snprintf(scratch, 32, "%" PRId64, v->v.i);
		return scratch;
	case TG_REAL:
		/* 17 significant digits bring every double back exactly. */
		snprintf(scratch, 32, "%.17g", v->v.r);
		return scratch;
	case TG_TEXT:
		return v->v.s;
	default:
		return NULL;
	}
}

struct params {
	const char **text;
	char (*scratch)[32];
	int n;
};

static int params_alloc(struct params *p, size_t n, char **errmsg)
{
	p->n = 0;
	p->text = calloc(n + 1, sizeof(*p->text));
	p->scratch = calloc(n + 1, sizeof(*p->scratch));
	if (!p->text || !p->scratch) {
		free(p->text);
		free(p->scratch);
		return errmsg_set(errmsg, TG_ENOMEM, "out of memory");
	}
	return 0;
}

static void params_add(struct params *p, const struct tg_value *v)
{
	p->text[p->n] = param_text(v, p->scratch[p->n]);
	p->n++;
}

static void params_free(struct params *p)
{
	free(p->text);
	free(p->scratch);
}

/* ---------------------------------------------------- open and connect */

static int pq_open(const char *conninfo, void **backend, char **errmsg)
{
	struct pg_backend *be;
	PGconn *db;
	int rc;

	*backend = NULL;
	rc = pg_conninfo_check(conninfo, errmsg);
	if (rc < 0)
		return rc;
	be = calloc(1, sizeof(*be));
	if (!be || !(be->conninfo = strdup(conninfo))) {
		free(be);
		return errmsg_set(errmsg, TG_ENOMEM, "out of memory");
	}
	rc = pg_connect(conninfo, NULL, &db, errmsg);
	if (rc < 0)
		goto free_be;
	rc = pg_create_host_tables(db, errmsg);
	PQfinish(db);
	if (rc < 0)
		goto free_be;
	*backend = be;
	return 0;

free_be:
	free(be->conninfo);
	free(be);
	return rc;
}

static void pq_close(void *backend)
{
	struct pg_backend *be = backend;

	if (!be)
		return;
	free(be->conninfo);
	free(be);
}

static int pq_connect(void *backend, void **conn, char **errmsg)
{
	struct pg_conn *c;
	int rc;

	*conn = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return errmsg_set(errmsg, TG_ENOMEM, "out of memory");
	c->be = backend;
	rc = pg_connect(c->be->conninfo, NULL, &c->db, errmsg);
	if (rc < 0) {
		free(c);
		return rc;
	}
	*conn = c;
	return 0;
}

static void pq_disconnect(void *conn)
{
	struct pg_conn *c = conn;

	if (!c)
		return;
	cache_clear(c);
	PQfinish(c->db);
	free(c);
}

/* -------------------------------------------------------- transactions */

static int pq_begin(void *conn, char **errmsg)
{
	struct pg_conn *c = conn;
	int rc = ensure_connected(c, errmsg);

	/* One writing transaction at a time per database, as SQLite's BEGIN
	 * IMMEDIATE: two chunks writing the same rows in another order (the
	 * backfiller's page and the upserter's) would otherwise deadlock, and
	 * PostgreSQL would abort one of them. Readers never wait for it. */
	if (rc == 0) {
		char *first = NULL;

		rc = pg_exec(c->db, "BEGIN; " WRITE_LOCK_SQL, "beginning a transaction", &first);
		if (retry_on_new_connection(c, rc)) {
			free(first);
			first = NULL;
			rc = pg_exec(c->db, "BEGIN; " WRITE_LOCK_SQL, "beginning a transaction", &first);
		}
		keep_message(errmsg, first);
	}
	if (rc < 0 && PQtransactionStatus(c->db) != PQTRANS_IDLE)
		PQclear(PQexec(c->db, "ROLLBACK"));
	c->in_tx = rc == 0;
	return rc;
}

/* Inside the transaction about to commit: is this process still the
 * active node? 0, or TG_ESTOPPED when the lease moved on (the caller rolls
 * back). */
static int fence_check(struct pg_conn *c, char **errmsg)
{
	int64_t mine = atomic_load(&fence_epoch), now;
	PGresult *res;
	int rc;

	if (mine == 0)
		return 0;
	if (mine < 0)
		return errmsg_set(errmsg, TG_ESTOPPED, "fenced: this node lost its lease; nothing is committed");
	rc = run(c, "SELECT epoch FROM tg_lease WHERE name = 'active' FOR SHARE", 0, NULL, &res, "checking the lease",
	         errmsg);
	if (rc < 0)
		return rc;
	now = PQntuples(res) == 1 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : -1;
	PQclear(res);
	if (now == mine)
		return 0;
	return errmsg_set(errmsg, TG_ESTOPPED,
	                  "fenced: the lease is at epoch %" PRId64 ", this node's was %" PRId64 "; nothing is committed",
	                  now, mine);
}

static int pq_commit(void *conn, char **errmsg)
{
	struct pg_conn *c = conn;
	PGresult *res;
	int ok;

	/* COMMIT of a failed transaction "succeeds" by rolling back. */
	if (PQtransactionStatus(c->db) == PQTRANS_INERROR) {
		c->in_tx = false;
		return errmsg_set(errmsg, TG_ESTORAGE,
		                  "postgresql: the transaction failed earlier and was rolled back (committing)");
	}
	ok = fence_check(c, errmsg);
	c->in_tx = false;
	if (ok < 0)
		return ok;
	res = PQexec(c->db, "COMMIT");
	if (!res || PQresultStatus(res) != PGRES_COMMAND_OK)
		return pg_fail(c->db, res, "committing", errmsg);
	ok = strcmp(PQcmdStatus(res), "COMMIT") == 0;
	PQclear(res);
	return ok ? 0 : errmsg_set(errmsg, TG_ESTORAGE, "postgresql: the server rolled back (committing)");
}

static int pq_rollback(void *conn, char **errmsg)
{
	struct pg_conn *c = conn;
	PGTransactionStatusType ts = PQtransactionStatus(c->db);

	c->in_tx = false;
	/* A lost connection took the transaction with it. */
	if (ts == PQTRANS_IDLE || ts == PQTRANS_UNKNOWN)
		return 0;
	return pg_exec(c->db, "ROLLBACK", "rolling back", errmsg);
}

/* -------------------------------------------------------------- schema */

static int column_type(const char *typname, enum tg_type *type)
{
	static const char *const ints[] = {"int8", "int4", "int2", NULL};
	static const char *const reals[] = {"float8", "float4", NULL};
	static const char *const texts[] = {"text", "varchar", "bpchar", NULL};

	for (int i = 0; ints[i]; i++)
		if (strcmp(typname, ints[i]) == 0)
			return *type = TG_INT, 0;
	for (int i = 0; reals[i]; i++)
		if (strcmp(typname, reals[i]) == 0)
			return *type = TG_REAL, 0;
	for (int i = 0; texts[i]; i++)
		if (strcmp(typname, texts[i]) == 0)
			return *type = TG_TEXT, 0;
	return -1;
}

/* The columns of the table in the first schema of the search path, with
 * each key column's 1-based position in the primary key. */
static const char describe_sql[] =
    "SELECT a.attname, t.typname, "
    "COALESCE((SELECT k.n FROM pg_index i, unnest(i.indkey::int2[]) WITH ORDINALITY AS k(att, n) "
    "WHERE i.indrelid = c.oid AND i.indisprimary AND k.att = a.attnum), 0) "
    "FROM pg_class c "
    "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
    "JOIN pg_type t ON t.oid = a.atttypid "
    "WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = $1 "
    "AND c.relkind IN ('r', 'p') ORDER BY a.attnum";

static int pq_describe(void *conn, const char *table, struct storage_table **out, char **errmsg)
{
	struct pg_conn *c = conn;
	struct storage_table *t;
	PGresult *res;
	int rc, rows;

	*out = NULL;
	rc = run(c, describe_sql, 1, &table, &res, "describing a table", errmsg);
	if (rc < 0)
		return rc;
	rows = PQntuples(res);
	if (rows == 0) {
		PQclear(res);
		return 0;
	}
	t = calloc(1, sizeof(*t));
	if (!t || !(t->name = strdup(table)) || !(t->columns = calloc((size_t)rows, sizeof(*t->columns)))) {
		rc = errmsg_set(errmsg, TG_ENOMEM, "out of memory");
		goto fail;
	}
	for (int r = 0; r < rows; r++) {
		struct storage_column *col = &t->columns[r];
		const char *name = PQgetvalue(res, r, 0), *typname = PQgetvalue(res, r, 1);

		if (column_type(typname, &col->type) < 0) {
			rc = errmsg_set(errmsg, TG_ESTORAGE,
			                "table '%s' has column '%s' of type '%s' that tollgate does not handle",
			                table, name, typname);
			goto fail;
		}
		col->name = strdup(name);
		if (!col->name) {
			rc = errmsg_set(errmsg, TG_ENOMEM, "out of memory");
			goto fail;
		}
		col->key = (unsigned)strtoul(PQgetvalue(res, r, 2), NULL, 10);
		t->nkeys += col->key != 0;
		t->ncolumns++;
	}
	PQclear(res);
	*out = t;
	return 0;

fail:
	PQclear(res);
	storage_table_free(t);
	return rc;
}

/* Run DDL built in b, under the schema lock (the front is inside a
 * transaction: the lock is held until it ends). */
static int exec_ddl(struct pg_conn *c, struct sql_text *b, const char *doing, char **errmsg)
{
	char *sql = sql_text_take(b);
	int rc;

	if (!sql)
		return errmsg_set(errmsg, TG_ENOMEM, "out of memory");
	rc = pg_exec(c->db, DDL_LOCK_SQL, doing, errmsg);
	/* DDL runs once: it does not go through the statement cache. */
	if (rc == 0)
		rc = pg_exec(c->db, sql, doing, errmsg);
	free(sql);
	return rc;
}

static int pq_create_table(void *conn, const struct storage_table *t, char **errmsg)
{
	struct sql_text b = {0};
	bool first = true;

	sql_text_add(&b, "CREATE TABLE IF NOT EXISTS ");
	sql_text_ident(&b, t->name);
	sql_text_add(&b, " (");
	for (size_t i = 0; i < t->ncolumns; i++) {
		sql_text_ident(&b, t->columns[i].name);
		sql_text_add(&b, " ");
		sql_text_add(&b, pg_type(t->columns[i].type));
		sql_text_add(&b, t->columns[i].key ? " NOT NULL, " : ", ");
	}
	sql_text_add(&b, "PRIMARY KEY (");
	for (unsigned k = 1; k <= t->nkeys; k++) {
		for (size_t i = 0; i < t->ncolumns; i++) {
			if (t->columns[i].key != k)
				continue;
			sql_text_add(&b, first ? "" : ", ");
			sql_text_ident(&b, t->columns[i].name);
			first = false;
		}
	}
	sql_text_add(&b, "))");
	return exec_ddl(conn, &b, "creating a table", errmsg);
}

static int pq_add_column(void *conn, const char *table, const struct storage_column *col, char **errmsg)
{
	struct sql_text b = {0};

	sql_text_add(&b, "ALTER TABLE ");
	sql_text_ident(&b, table);
	/* IF NOT EXISTS: a twin may have added it while we waited for the lock. */
	sql_text_add(&b, " ADD COLUMN IF NOT EXISTS ");
	sql_text_ident(&b, col->name);
	sql_text_add(&b, " ");
	sql_text_add(&b, pg_type(col->type));
	return exec_ddl(conn, &b, "adding a column", errmsg);
}

/* ---------------------------------------------------------------- rows */

static const struct storage_column *column_of(const struct storage_table *t, const char *name)
{
	for (size_t i = 0; i < t->ncolumns; i++)
		if (strcmp(t->columns[i].name, name) == 0)
			return &t->columns[i];
	return NULL;
}

/* Run the statement built in b: a read when out is given, else a write. */
static int run_built(struct pg_conn *c, struct sql_text *b, struct params *p, PGresult **out,
                     const char *doing, char **errmsg)
{
	char *sql = sql_text_take(b);
	int rc;

	if (!sql)
		return errmsg_set(errmsg, TG_ENOMEM, "out of memory");
	rc = out ? run(c, sql, p->n, p->text, out, doing, errmsg)
	         : write_stmt(c, sql, p->n, p->text, doing, errmsg);
	free(sql);
	return rc;
}

static int pq_upsert(void *conn, const struct storage_table *t, const struct tg_value *values, size_t n,
                     char **errmsg)
{
	struct sql_text b = {0};
	struct params p;
	bool first = true;
	int rc;

	rc = params_alloc(&p, n, errmsg);
	if (rc < 0)
		return rc;
	sql_text_add(&b, "INSERT INTO ");
	sql_text_ident(&b, t->name);
	sql_text_add(&b, " (");
	for (size_t i = 0; i < n; i++) {
		sql_text_add(&b, i ? ", " : "");
		sql_text_ident(&b, values[i].column);
	}
	sql_text_add(&b, ") VALUES (");
	for (size_t i = 0; i < n; i++) {
		/* Cast to the column's type: an integer written to a double
		 * column, or a NULL, needs no other guess from the server. */
		sql_text_addf(&b, "%s$%zu::%s", i ? ", " : "", i + 1,
		              pg_cast(column_of(t, values[i].column)->type));
		params_add(&p, &values[i]);
	}
	sql_text_add(&b, ") ON CONFLICT (");
	for (size_t i = 0; i < t->ncolumns; i++) {
		if (!t->columns[i].key)
			continue;
		sql_text_add(&b, first ? "" : ", ");
		sql_text_ident(&b, t->columns[i].name);
		first = false;
	}
	sql_text_add(&b, ") DO ");
	first = true;
	/* Only the named non-key columns are updated: the others keep their
	 * value, which is the point of naming columns in an upsert. */
	for (size_t i = 0; i < n; i++) {
		if (column_of(t, values[i].column)->key)
			continue;
		sql_text_add(&b, first ? "UPDATE SET " : ", ");
		sql_text_ident(&b, values[i].column);
		sql_text_add(&b, " = excluded.");
		sql_text_ident(&b, values[i].column);
		first = false;
	}
	if (first)
		sql_text_add(&b, "NOTHING");
	rc = run_built(conn, &b, &p, NULL, "upserting a row", errmsg);
	params_free(&p);
	return rc;
}

static const char *const op_text[] = {
    [TG_EQ] = " = ", [TG_NE] = " <> ", [TG_LT] = " < ", [TG_LE] = " <= ", [TG_GT] = " > ", [TG_GE] = " >= ",
};

/* " WHERE a = $1::int8 AND b IS NULL ...", adding the parameters to p.
 * Parameters take the value's type (25.5 against a bigint column compares
 * as numbers); text orders bytewise, as SQLite's BINARY does. */
static void sql_where(struct sql_text *b, const struct tg_filter *f, size_t n, struct params *p)
{
	for (size_t i = 0; i < n; i++) {
		sql_text_add(b, i ? " AND " : " WHERE ");
		sql_text_ident(b, f[i].value.column);
		if (f[i].value.type == TG_NULL) {
			sql_text_add(b, f[i].op == TG_EQ ? " IS NULL" : " IS NOT NULL");
			continue;
		}
		sql_text_add(b, op_text[f[i].op]);
		params_add(p, &f[i].value);
		sql_text_addf(b, "$%d::%s", p->n, pg_cast(f[i].value.type));
		if (f[i].value.type == TG_TEXT && f[i].op != TG_EQ && f[i].op != TG_NE)
			sql_text_add(b, " COLLATE \"C\"");
	}
}

static int pq_remove(void *conn, const struct storage_table *t, const struct tg_filter *f, size_t n,
                     char **errmsg)
{
	struct sql_text b = {0};
	struct params p;
	int rc;

	rc = params_alloc(&p, n, errmsg);
	if (rc < 0)
		return rc;
	sql_text_add(&b, "DELETE FROM ");
	sql_text_ident(&b, t->name);
	sql_where(&b, f, n, &p);
	rc = run_built(conn, &b, &p, NULL, "deleting a row", errmsg);
	params_free(&p);
	return rc;
}

static void read_cell(PGresult *res, int r, int i, const struct storage_column *col, struct tg_value *v)
{
	const char *text = PQgetvalue(res, r, i);

	v->column = col->name;
	if (PQgetisnull(res, r, i)) {
		v->type = TG_NULL;
		return;
	}
	v->type = col->type;
	switch (col->type) {
	case TG_INT:
		v->v.i = strtoll(text, NULL, 10);
		break;
	case TG_REAL:
		/* "Infinity" and "-Infinity" parse too. */
		v->v.r = strtod(text, NULL);
		break;
	default:
		v->v.s = text;
		break;
	}
}

static int pq_select(void *conn, const struct storage_table *t, const struct tg_filter *f, size_t n,
                     const char *order_by, bool descending, int64_t limit, tg_row_fn fn, void *ud,
                     char **errmsg)
{
	struct tg_value *row = NULL;
	struct tg_value lim = {.column = "", .type = TG_INT, .v.i = limit};
	struct sql_text b = {0};
	PGresult *res = NULL;
	struct params p;
	int rc;

	rc = params_alloc(&p, n + 1, errmsg);
	if (rc < 0)
		return rc;
	sql_text_add(&b, "SELECT ");
	for (size_t i = 0; i < t->ncolumns; i++) {
		sql_text_add(&b, i ? ", " : "");
		sql_text_ident(&b, t->columns[i].name);
	}
	sql_text_add(&b, " FROM ");
	sql_text_ident(&b, t->name);
	sql_where(&b, f, n, &p);
	if (order_by) {
		sql_text_add(&b, " ORDER BY ");
		sql_text_ident(&b, order_by);
		if (column_of(t, order_by)->type == TG_TEXT)
			sql_text_add(&b, " COLLATE \"C\"");
		/* SQLite's order: NULL is the smallest value. */
		sql_text_add(&b, descending ? " DESC NULLS LAST" : " ASC NULLS FIRST");
	}
	/* LIMIT NULL is no limit. */
	if (limit < 0)
		lim.type = TG_NULL;
	params_add(&p, &lim);
	sql_text_addf(&b, " LIMIT $%d::int8", p.n);

	row = calloc(t->ncolumns, sizeof(*row));
	if (!row) {
		free(sql_text_take(&b));
		rc = errmsg_set(errmsg, TG_ENOMEM, "out of memory");
		goto out;
	}
	rc = run_built(conn, &b, &p, &res, "reading rows", errmsg);
	if (rc < 0)
		goto out;
	for (int r = 0; r < PQntuples(res) && rc == 0; r++) {
		for (size_t i = 0; i < t->ncolumns; i++)
			read_cell(res, r, (int)i, &t->columns[i], &row[i]);
		rc = fn(ud, row, t->ncolumns);
	}
out:
	PQclear(res);
	free(row);
	params_free(&p);
	return rc;
}

/* ------------------------------------------------------------- indexes */

/* One column of an index, in the order pq_select reads it: text bytewise,
 * NULL first ascending (so last descending, read backwards). */
static void index_column(struct sql_text *b, const struct storage_column *col)
{
	sql_text_ident(b, col->name);
	if (col->type == TG_TEXT)
		sql_text_add(b, " COLLATE \"C\"");
	sql_text_add(b, " NULLS FIRST");
}

/* CREATE INDEX IF NOT EXISTS is not safe against a twin creating the same
 * index at that moment (both insert its name into pg_class: one fails with
 * a unique violation), so it runs under the schema lock as all DDL does.
 * Outside a transaction it is a transaction of its own: begin takes the
 * write lock first, as every transaction does (one lock order, no
 * deadlock), and commit checks the fence. While the index is built, writers
 * wait, as they do on SQLite. */
static int pq_index(void *conn, const struct storage_table *t, const char *column, char **errmsg)
{
	struct pg_conn *c = conn;
	struct sql_text b = {0};
	const struct storage_column *col;
	char name[STORAGE_INDEX_NAME_SIZE];
	bool own_tx = !c->in_tx;
	int rc;

	if (own_tx && (rc = pq_begin(c, errmsg)) < 0)
		return rc;
	storage_index_name(t->name, column, name);
	sql_text_add(&b, "CREATE INDEX IF NOT EXISTS ");
	sql_text_ident(&b, name);
	sql_text_add(&b, " ON ");
	sql_text_ident(&b, t->name);
	for (size_t n = 0; (col = storage_index_column(t, column, n)); n++) {
		sql_text_add(&b, n ? ", " : " (");
		index_column(&b, col);
	}
	sql_text_add(&b, ")");
	rc = exec_ddl(c, &b, "creating an index", errmsg);
	if (!own_tx)
		return rc;
	if (rc == 0)
		rc = pq_commit(c, errmsg);
	/* A refused commit (fenced) leaves the transaction open. */
	if (rc < 0)
		pq_rollback(c, NULL);
	return rc;
}

/* --------------------------------------------------------------- state */

static int pq_state_get(void *conn, const char *task, const char *key, char **value, char **errmsg)
{
	const char *params[] = {task, key};
	PGresult *res;
	int rc;

	*value = NULL;
	rc = run(conn, "SELECT value FROM tg_state WHERE task = $1 AND key = $2", 2, params, &res,
	         "reading state", errmsg);
	if (rc < 0)
		return rc;
	if (PQntuples(res) == 0) {
		rc = TG_ENOTFOUND;
	} else {
		*value = strdup(PQgetvalue(res, 0, 0));
		rc = *value ? 0 : errmsg_set(errmsg, TG_ENOMEM, "out of memory");
	}
	PQclear(res);
	return rc;
}

static int pq_state_set(void *conn, const char *task, const char *key, const char *value, int64_t updated_at,
                        char **errmsg)
{
	char at[32];
	const char *params[] = {task, key, value, at};

	if (!value)
		return write_stmt(conn, "DELETE FROM tg_state WHERE task = $1 AND key = $2", 2, params,
		                  "writing state", errmsg);
	snprintf(at, sizeof(at), "%" PRId64, updated_at);
	return write_stmt(conn,
	                  "INSERT INTO tg_state (task, key, value, updated_at) VALUES ($1, $2, $3, $4::int8) "
	                  "ON CONFLICT (task, key) DO UPDATE SET value = excluded.value, "
	                  "updated_at = excluded.updated_at",
	                  4, params, "writing state", errmsg);
}

const struct storage_backend_ops storage_postgresql_ops = {
    .name = "postgresql",
    .open = pq_open,
    .close = pq_close,
    .connect = pq_connect,
    .disconnect = pq_disconnect,
    .begin = pq_begin,
    .commit = pq_commit,
    .rollback = pq_rollback,
    .describe = pq_describe,
    .create_table = pq_create_table,
    .add_column = pq_add_column,
    .upsert = pq_upsert,
    .remove = pq_remove,
    .select = pq_select,
    .state_get = pq_state_get,
    .state_set = pq_state_set,
    .index = pq_index,
};
