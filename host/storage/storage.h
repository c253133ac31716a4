/*
 * storage.h - the host's storage service: tables that plugins declare, rows
 * they upsert, read and delete, and the checkpoint state of each task, with
 * transactions that cover rows and state together.
 *
 * The front (storage.c) is backend-neutral: it validates identifiers, keeps
 * the registry of declared tables, checks every value against its column's
 * type and tracks transactions. A backend (storage/sqlite.c, later a
 * PostgreSQL one) only translates already-validated requests into its own
 * language through struct storage_backend_ops. Only backends speak SQL.
 *
 * Threads: one struct storage per daemon, shared by all threads; one
 * struct storage_conn per thread (each task thread connects on its own). A
 * connection must not be used by two threads at once.
 *
 * Every function returns 0 or a negative TG_E* code and, where errmsg is not
 * NULL, stores a malloc()ed message on failure (free() it).
 */
#ifndef TG_HOST_STORAGE_H
#define TG_HOST_STORAGE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tollgate/tollgate.h>

struct storage;
struct storage_conn;
struct storage_table;

/* Longest identifier (table or column name) and most columns per table. */
#define STORAGE_IDENT_MAX 63
#define STORAGE_COLUMNS_MAX 256
/* Bounds of checkpoint state keys and values, in bytes. */
#define STORAGE_STATE_KEY_MAX 255
#define STORAGE_STATE_VALUE_MAX (1024 * 1024)

/* Open the storage named by backend at path: for "sqlite" a file, created
 * when missing, put in WAL mode; for "postgresql" a libpq connection string
 * without a password (storage/postgresql.c). The host table tg_state is
 * created there. */
int storage_open(struct storage **out, const char *backend, const char *path, char **errmsg);
/* Can the daemon work with this storage? Asked without writing (for
 * `tollgate check`). PostgreSQL: TG_ENETWORK when nothing answers at the
 * address (or the server is a read-only standby), TG_EINVAL when the server
 * refuses (authentication, missing database) or the role may not create
 * tables in the first schema of its search path; the message is one line.
 * On success *summary (may be NULL) gets a malloc()ed line saying what was
 * checked. SQLite: nothing is checked. */
int storage_check(const char *backend, const char *locator, char **summary, char **errmsg);

/* Close the storage. Every connection must have been freed before. */
void storage_free(struct storage *st);

/* The page cache each connection opened from now on may fill, in KiB
 * (SQLite: cache_size; its own default is 2,000 KiB). Call it before the
 * connections are made (the daemon does, from storage.sqlite_cache_mb);
 * connections made before keep theirs. Backends without such a cache
 * ignore it. kib > 0. */
void storage_set_cache_kib(struct storage *st, int64_t kib);
/* The page cache limit of a connection in KiB, as its database reports it
 * (TG_ENOTSUP for a backend without one). */
int storage_cache_kib(struct storage_conn *conn, int64_t *kib, char **errmsg);

/* Open a connection for the calling thread (SQLite: WAL, busy time-out of
 * 5 s, synchronous=NORMAL, foreign keys off). */
int storage_connect(struct storage *st, struct storage_conn **out, char **errmsg);
/* Close a connection; an open transaction is rolled back (and logged). */
void storage_conn_free(struct storage_conn *conn);

/* Create the table, or add the declared columns it lacks (rows are kept).
 * Names must match [a-z_][a-z0-9_]{0,62} and not start with "tg_" (reserved
 * for the host) nor "sqlite_"; types are TG_INT, TG_REAL or TG_TEXT; at least
 * one column is a key. Changing the key or an existing column's type is
 * refused with TG_EINVAL and a message saying what differs. Columns the table
 * has but the declaration omits are kept (and stay visible). Not allowed
 * inside a transaction (TG_EINVAL). */
int storage_declare(struct storage_conn *conn, const struct tg_table *table, char **errmsg);

/* Transactions (SQLite: BEGIN IMMEDIATE, so two writers never deadlock on a
 * lock upgrade). Rows and checkpoint state written between begin and commit
 * are committed or rolled back together. A begin inside a transaction, or a
 * commit or rollback outside one, is TG_EINVAL. When commit fails, the
 * transaction is rolled back and the error returned. */
int storage_begin(struct storage_conn *conn, char **errmsg);
int storage_commit(struct storage_conn *conn, char **errmsg);
int storage_rollback(struct storage_conn *conn, char **errmsg);
/* True between a successful begin and its commit or rollback. */
bool storage_in_transaction(const struct storage_conn *conn);

/* Insert the row whose key columns are among values, or update the named
 * non-key columns of the existing row; columns not named keep their value.
 * Every key column must be present and not TG_NULL. Unknown or repeated
 * column, or undeclared table: TG_EINVAL. A value of another type than its
 * column: TG_ETYPE (TG_INT is accepted into a TG_REAL column; a NaN is
 * refused). Values are always bound, never written into SQL. */
int storage_upsert(struct storage_conn *conn, const char *table, const struct tg_value *values,
                   size_t nvalues, char **errmsg);

/* Call fn once with the row whose key is given (exactly the key columns),
 * or return TG_ENOTFOUND. fn receives every column of the table, in table
 * order, with .column set and TG_NULL for NULL cells; the values are valid
 * during the call only. A non-zero return of fn is returned. fn may be NULL
 * to test whether the row exists. */
int storage_get(struct storage_conn *conn, const char *table, const struct tg_value *key, size_t nkey,
                tg_row_fn fn, void *ud, char **errmsg);

/* Delete the row with this key (0 when there was none). */
int storage_remove(struct storage_conn *conn, const char *table, const struct tg_value *key, size_t nkey,
                   char **errmsg);

/* Call fn for each row matching every filter, ordered by order_by ("col"
 * ascending, "-col" descending, NULL unordered; NULL cells sort first
 * ascending), at most limit rows (< 0: all). A TG_NULL filter value means
 * IS NULL with TG_EQ, IS NOT NULL with TG_NE, and is TG_EINVAL with other
 * operators. Numbers of either kind may be compared with numeric columns;
 * text only with text. Iteration stops when fn returns non-zero, and that
 * value is returned; otherwise 0. fn may use the same connection (e.g.
 * upsert the row it was handed). */
int storage_select(struct storage_conn *conn, const char *table, const struct tg_filter *filters,
                   size_t nfilters, const char *order_by, int64_t limit, tg_row_fn fn, void *ud,
                   char **errmsg);

/* Checkpoint state of a task: small text values per (task, key), in the host
 * table tg_state. get stores a malloc()ed copy in *value or returns
 * TG_ENOTFOUND. set with value NULL deletes the key. Inside a transaction,
 * they see and write the transaction's view and commit or roll back with the
 * rows. */
int storage_state_get(struct storage_conn *conn, const char *task, const char *key, char **value,
                      char **errmsg);
int storage_state_set(struct storage_conn *conn, const char *task, const char *key, const char *value,
                      char **errmsg);

/* Hot standby (core/ha.c), PostgreSQL only: from now on every commit of
 * this process checks, inside its transaction, that the lease row still
 * carries epoch (and fails with TG_ESTOPPED, rolled back, when not); a
 * negative epoch refuses every commit; 0 turns fencing off. */
void storage_fence(int64_t epoch);

/* True when name is a valid identifier for a plugin's table or column. */
bool storage_ident_valid(const char *name);

/* ------------------------------------------- reading pages (web, export) */

/* A page of rows for readers that show or export a table (the web's
 * /api/deals, `tollgate export`): filters as for storage_select, an
 * optional case-insensitive substring match on one text column, an order
 * with the key columns as tie-breakers (so pages do not overlap), and an
 * offset. Everything is validated against the table's columns; values are
 * bound, never written into SQL. */
struct storage_query {
	const char *table;
	const struct tg_filter *filters;
	size_t nfilters;
	const char *match_column; /* NULL: no substring match */
	const char *match_text;   /* matched literally: % and _ are not wildcards */
	const char *order_by;     /* "col" or "-col" (descending); NULL: key order */
	int64_t limit;            /* < 0: all */
	int64_t offset;           /* >= 0 */
};

/* The table as it exists (declared here or read from the database);
 * TG_EINVAL when there is none. The entry stays valid until storage_free(). */
int storage_table_get(struct storage_conn *conn, const char *table, const struct storage_table **out,
                      char **errmsg);
/* Call fn for each row of the page (fn as for storage_select). */
int storage_query(struct storage_conn *conn, const struct storage_query *q, tg_row_fn fn, void *ud,
                  char **errmsg);
/* How many rows match q's filters and match (limit and offset ignored). */
int storage_count(struct storage_conn *conn, const struct storage_query *q, int64_t *count, char **errmsg);
/* Create, when missing, an index on (column, key columns...) so a page
 * ordered by column in either direction is read from the index. Its name is
 * the same on every backend (storage/index_def.h: "tg_ix_<table>_<column>",
 * shortened with a hash past 63 bytes). Inside a transaction it is part of
 * it; outside, a transaction of its own. Writers wait while it is built.
 * On PostgreSQL it runs under the schema lock, so twins asking at once both
 * succeed. */
int storage_index(struct storage_conn *conn, const char *table, const char *column, char **errmsg);

/* ------------------------------------------------ for backends only */

/* A table as it exists (the registry keeps one per declared table; an entry
 * never changes once published and lives until storage_free(), so a backend
 * may keep pointers to it for the length of a call). */
struct storage_column {
	char *name;
	enum tg_type type; /* TG_INT, TG_REAL or TG_TEXT */
	unsigned key;      /* 1-based position in the primary key, 0 if not a key */
};

struct storage_table {
	char *name;
	struct storage_column *columns;
	size_t ncolumns;
	size_t nkeys;
};

void storage_table_free(struct storage_table *t);

/*
 * What a backend implements. Every argument has been validated by the
 * front: identifiers are valid, every value names a column of the table and
 * has a compatible type, keys are complete, transactions are well nested.
 * conn is what connect() returned. Errors: TG_ESTORAGE with the backend's
 * message, TG_ENOMEM; row callbacks' non-zero returns are passed through.
 */
struct storage_backend_ops {
	const char *name;

	/* Open the database at path, create the host tables; *backend is passed
	 * to connect() and close(). */
	int (*open)(const char *path, void **backend, char **errmsg);
	void (*close)(void *backend);
	int (*connect)(void *backend, void **conn, char **errmsg);
	void (*disconnect)(void *conn);

	int (*begin)(void *conn, char **errmsg);
	int (*commit)(void *conn, char **errmsg);
	int (*rollback)(void *conn, char **errmsg);

	/* The table as it exists, a new struct in *out (NULL when there is no
	 * such table). */
	int (*describe)(void *conn, const char *table, struct storage_table **out, char **errmsg);
	int (*create_table)(void *conn, const struct storage_table *table, char **errmsg);
	int (*add_column)(void *conn, const char *table, const struct storage_column *column, char **errmsg);

	int (*upsert)(void *conn, const struct storage_table *table, const struct tg_value *values,
	              size_t nvalues, char **errmsg);
	/* Optional: upsert, with pos[i] the position in table of values[i]'s
	 * column as the front has just checked it, so a backend need not look
	 * the names up again. NULL: upsert is called. */
	int (*upsert_at)(void *conn, const struct storage_table *table, const struct tg_value *values,
	                 const uint32_t *pos, size_t nvalues, char **errmsg);
	/* Delete the rows where every filter holds (all TG_EQ on the key). */
	int (*remove)(void *conn, const struct storage_table *table, const struct tg_filter *filters,
	              size_t nfilters, char **errmsg);
	/* order_by is a column of table or NULL. fn receives table->ncolumns
	 * values whose .column points at table's names. */
	int (*select)(void *conn, const struct storage_table *table, const struct tg_filter *filters,
	              size_t nfilters, const char *order_by, bool descending, int64_t limit, tg_row_fn fn,
	              void *ud, char **errmsg);

	int (*state_get)(void *conn, const char *task, const char *key, char **value, char **errmsg);
	/* value NULL deletes; updated_at is Unix seconds. */
	int (*state_set)(void *conn, const char *task, const char *key, const char *value, int64_t updated_at,
	                 char **errmsg);

	/* Pages for readers (see struct storage_query; validated, order_by a
	 * column name or NULL). Optional: NULL means TG_ENOTSUP. */
	int (*query)(void *conn, const struct storage_table *table, const struct storage_query *q,
	             const char *order_by, bool descending, tg_row_fn fn, void *ud, char **errmsg);
	int (*count)(void *conn, const struct storage_table *table, const struct storage_query *q, int64_t *count,
	             char **errmsg);
	int (*index)(void *conn, const struct storage_table *table, const char *column, char **errmsg);

	/* Optional (NULL: no page cache to size): the cache of connections made
	 * from now on, and a connection's, in KiB. */
	void (*set_cache_kib)(void *backend, int64_t kib);
	int (*cache_kib)(void *conn, int64_t *kib, char **errmsg);
};

extern const struct storage_backend_ops storage_sqlite_ops;
extern const struct storage_backend_ops storage_postgresql_ops;

#endif
