/*
 * storage.c - the backend-neutral front of the storage service (see
 * storage.h): validation, the registry of declared tables, transactions.
 */
#include "util/errmsg.h"
#include "storage/column_index.h"
#include "storage/storage.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "observe/log.h"

/* A registry entry: the table as backends are handed it, and the index of
 * its column names that keeps the checks of a row linear. t comes first, so
 * the entry is freed through it. */
struct table_entry {
	struct storage_table t;
	struct column_index columns;
};

struct storage {
	const struct storage_backend_ops *ops;
	void *backend;

	/* The registry: the current entry of each known table. Entries are
	 * immutable; a replaced entry moves to retired and lives until
	 * storage_free(), because another thread may be using it (and a
	 * backend may key its prepared statements by the entry's address). */
	pthread_mutex_t lock;
	struct table_entry **tables;
	size_t ntables;
	struct table_entry **retired;
	size_t nretired;
};

/* The columns of a row a connection checked lately. A task writes rows of
 * a few shapes over and over (the backfiller: a key to look up, then the
 * whole row), so the next row usually names the columns of one of them in
 * the same order: then one strcmp per column recognises them, with no
 * lookup and no duplicate check (the positions were found distinct). */
struct row_memo {
	const struct table_entry *table; /* NULL: nothing remembered */
	size_t n, cap;
	uint32_t *pos; /* position in the table of the i-th value's column */
	uint64_t used; /* tick of the last match, to replace the oldest */
};

/* Row shapes remembered per connection. */
#define ROW_MEMOS 4

struct storage_conn {
	struct storage *st;
	void *bconn;
	bool in_tx;
	struct row_memo memo[ROW_MEMOS];
	uint64_t memo_tick;
};

bool storage_ident_valid(const char *name)
{
	size_t n;

	if (!name || !((name[0] >= 'a' && name[0] <= 'z') || name[0] == '_'))
		return false;
	for (n = 1; name[n]; n++) {
		char c = name[n];

		if (n >= STORAGE_IDENT_MAX)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return strncmp(name, "tg_", 3) != 0 && strncmp(name, "sqlite_", 7) != 0;
}

/* A name for messages: identifiers may be garbage (even NULL) when refused. */
static const char *shown(const char *name)
{
	return name ? name : "(null)";
}

static int check_ident(const char *what, const char *name, char **errmsg)
{
	if (storage_ident_valid(name))
		return 0;
	if (name && (strncmp(name, "tg_", 3) == 0 || strncmp(name, "sqlite_", 7) == 0))
		return errmsg_set(errmsg, TG_EINVAL, "%s name '%.80s' is reserved for the host", what,
		                     name);
	return errmsg_set(errmsg, TG_EINVAL,
	                     "invalid %s name '%.80s': use [a-z_][a-z0-9_]*, at most %d characters", what,
	                     shown(name), STORAGE_IDENT_MAX);
}

static const char *type_name(enum tg_type type)
{
	switch (type) {
	case TG_NULL:
		return "NULL";
	case TG_INT:
		return "INTEGER";
	case TG_REAL:
		return "REAL";
	case TG_TEXT:
		return "TEXT";
	}
	return "unknown";
}

void storage_table_free(struct storage_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->ncolumns; i++)
		free(t->columns[i].name);
	free(t->columns);
	free(t->name);
	free(t);
}

static void entry_free(struct table_entry *e)
{
	if (!e)
		return;
	column_index_free(&e->columns);
	storage_table_free(&e->t);
}

/* ----------------------------------------------------------- open / close */

int storage_open(struct storage **out, const char *backend, const char *path, char **errmsg)
{
	struct storage *st;
	int rc;

	*out = NULL;
	if (!backend || !path || !*path)
		return errmsg_set(errmsg, TG_EINVAL, "storage: backend and path are required");
	if (strcmp(backend, "sqlite") != 0 && strcmp(backend, "postgresql") != 0)
		return errmsg_set(errmsg, TG_EINVAL,
		                  "unknown storage backend '%.40s' (known: sqlite, postgresql)", backend);

	st = calloc(1, sizeof(*st));
	if (!st)
		return errmsg_set(errmsg, TG_ENOMEM, "out of memory");
	st->ops = strcmp(backend, "postgresql") == 0 ? &storage_postgresql_ops : &storage_sqlite_ops;
	rc = st->ops->open(path, &st->backend, errmsg);
	if (rc < 0)
		goto free_st;
	pthread_mutex_init(&st->lock, NULL);
	*out = st;
	return 0;

free_st:
	free(st);
	return rc;
}

void storage_free(struct storage *st)
{
	if (!st)
		return;
	st->ops->close(st->backend);
	for (size_t i = 0; i < st->ntables; i++)
		entry_free(st->tables[i]);
	for (size_t i = 0; i < st->nretired; i++)
		entry_free(st->retired[i]);
	free(st->tables);
	free(st->retired);
	pthread_mutex_destroy(&st->lock);
	free(st);
}

void storage_set_cache_kib(struct storage *st, int64_t kib)
{
	if (st->ops->set_cache_kib && kib > 0)
		st->ops->set_cache_kib(st->backend, kib);
}

int storage_cache_kib(struct storage_conn *conn, int64_t *kib, char **errmsg)
{
	*kib = 0;
	if (!conn->st->ops->cache_kib)
		return errmsg_set(errmsg, TG_ENOTSUP, "the %s backend has no page cache", conn->st->ops->name);
	return conn->st->ops->cache_kib(conn->bconn, kib, errmsg);
}

int storage_connect(struct storage *st, struct storage_conn **out, char **errmsg)
{
	struct storage_conn *conn;
	int rc;

	*out = NULL;
	conn = calloc(1, sizeof(*conn));
	if (!conn)
		return errmsg_set(errmsg, TG_ENOMEM, "out of memory");
	conn->st = st;
	rc = st->ops->connect(st->backend, &conn->bconn, errmsg);
	if (rc < 0) {
		free(conn);
		return rc;
	}
	*out = conn;
	return 0;
}

void storage_conn_free(struct storage_conn *conn)
{
	if (!conn)
		return;
	if (conn->in_tx) {
		log_warn(NULL, "storage: connection closed inside a transaction: rolled back");
		conn->st->ops->rollback(conn->bconn, NULL);
	}
	conn->st->ops->disconnect(conn->bconn);
	for (size_t i = 0; i < ROW_MEMOS; i++)
		free(conn->memo[i].pos);
	free(conn);
}

/* --------------------------------------------------------------- registry */

static struct table_entry *registry_find(struct storage *st, const char *name)
{
	struct table_entry *t = NULL;

	pthread_mutex_lock(&st->lock);
	for (size_t i = 0; i < st->ntables; i++) {
		if (strcmp(st->tables[i]->t.name, name) == 0) {
			t = st->tables[i];
			break;
		}
	}
	pthread_mutex_unlock(&st->lock);
	return t;
}

static bool table_equal(const struct storage_table *a, const struct storage_table *b)
{
	if (a->ncolumns != b->ncolumns || a->nkeys != b->nkeys)
		return false;
	for (size_t i = 0; i < a->ncolumns; i++)
		if (strcmp(a->columns[i].name, b->columns[i].name) != 0 ||
		    a->columns[i].type != b->columns[i].type || a->columns[i].key != b->columns[i].key)
			return false;
	return true;
}

/* A backend's description as a registry entry (t itself is consumed). */
/* Appends e to the array *arr of *n entries, growing it by one: 0, or -1
 * without memory (the array is unchanged and e stays the caller's). */
static int entry_append(struct table_entry ***arr, size_t *n, struct table_entry *e)
{
	struct table_entry **grown = realloc(*arr, (*n + 1) * sizeof(*grown));

	if (!grown)
		return -1;
	*arr = grown;
	grown[(*n)++] = e;
	return 0;
}

static struct table_entry *entry_make(struct storage_table *t)
{
	struct table_entry *e = calloc(1, sizeof(*e));

	if (!e) {
		storage_table_free(t);
		return NULL;
	}
	e->t = *t;
	free(t);
	/* Without memory for the index, lookups are linear: still right. */
	column_index_build(&e->columns, &e->t);
	return e;
}

/* Publish t as the current entry of its table and store the entry in use in
 * *out. The registry owns t then (also on failure, when it is freed). An
 * unchanged table keeps its entry, so re-reading a table never grows the
 * retired list. */
static int registry_publish(struct storage *st, struct storage_table *t, struct table_entry **out,
                            char **errmsg)
{
	struct table_entry *e = NULL;
	size_t i;

	*out = NULL;
	pthread_mutex_lock(&st->lock);
	for (i = 0; i < st->ntables; i++)
		if (strcmp(st->tables[i]->t.name, t->name) == 0)
			break;
	if (i < st->ntables && table_equal(&st->tables[i]->t, t)) {
		storage_table_free(t);
		*out = st->tables[i];
	} else if (i < st->ntables) {
		/* The old entry is retired, not freed: connections may still hold
		 * statements and positions that point into it. */
		if (!(e = entry_make(t)))
			goto nomem;
		if (entry_append(&st->retired, &st->nretired, st->tables[i]) != 0) {
			entry_free(e);
			goto nomem;
		}
		st->tables[i] = e;
		*out = e;
	} else {
		if (!(e = entry_make(t)))
			goto nomem;
		if (entry_append(&st->tables, &st->ntables, e) != 0) {
			entry_free(e);
			goto nomem;
		}
		*out = e;
	}
	pthread_mutex_unlock(&st->lock);
	return 0;

nomem:
	pthread_mutex_unlock(&st->lock);
	return errmsg_set(errmsg, TG_ENOMEM, "out of memory");
}

/* Read the table's shape from the database into the registry. *out is NULL
 * when the table does not exist. */
static int registry_refresh(struct storage_conn *conn, const char *name, struct table_entry **out,
                            char **errmsg)
{
	struct storage_table *t = NULL;
	int rc;

	*out = NULL;
	rc = conn->st->ops->describe(conn->bconn, name, &t, errmsg);
	if (rc < 0 || !t)
		return rc;
	return registry_publish(conn->st, t, out, errmsg);
}

/* The table a plugin names. A table that exists in the database but was not
 * declared by this process (another task owns it, or an earlier run made
 * it) is read from the database, so a janitor can work on the table of the
 * task that fills it. */
static int table_lookup(struct storage_conn *conn, const char *name, struct table_entry **out,
                        char **errmsg)
{
	int rc;

	*out = NULL;
	rc = check_ident("table", name, errmsg);
	if (rc < 0)
		return rc;
	*out = registry_find(conn->st, name);
	if (*out)
		return 0;
	rc = registry_refresh(conn, name, out, errmsg);
	if (rc < 0)
		return rc;
	if (!*out)
		return errmsg_set(errmsg, TG_EINVAL, "table '%s' is not declared", name);
	return 0;
}

/* A column of a description (linear: declarations only). */
static const struct storage_column *column_find(const struct storage_table *t, const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < t->ncolumns; i++)
		if (strcmp(t->columns[i].name, name) == 0)
			return &t->columns[i];
	return NULL;
}

/* The position of a column of a registry entry, or -1 (hashed: rows). */
static long entry_column(const struct table_entry *e, const char *name)
{
	return column_index_find(&e->columns, &e->t, name);
}

/* ---------------------------------------------------------------- declare */

static int declaration_check(const struct tg_table *decl, char **errmsg)
{
	size_t nkeys = 0;
	int rc;

	if (!decl)
		return errmsg_set(errmsg, TG_EINVAL, "no table given");
	rc = check_ident("table", decl->name, errmsg);
	if (rc < 0)
		return rc;
	if (!decl->columns || decl->ncolumns == 0 || decl->ncolumns > STORAGE_COLUMNS_MAX)
		return errmsg_set(errmsg, TG_EINVAL, "table '%s' must declare 1 to %d columns", decl->name,
		                     STORAGE_COLUMNS_MAX);
	for (size_t i = 0; i < decl->ncolumns; i++) {
		const struct tg_column *c = &decl->columns[i];

		rc = check_ident("column", c->name, errmsg);
		if (rc < 0)
			return rc;
		if (c->type != TG_INT && c->type != TG_REAL && c->type != TG_TEXT)
			return errmsg_set(
			    errmsg, TG_EINVAL,
			    "column '%s' of table '%s' needs a type: TG_INT, TG_REAL or TG_TEXT", c->name,
			    decl->name);
		for (size_t j = 0; j < i; j++)
			if (strcmp(decl->columns[j].name, c->name) == 0)
				return errmsg_set(errmsg, TG_EINVAL,
				                     "column '%s' of table '%s' is declared twice", c->name,
				                     decl->name);
		nkeys += c->key;
	}
	if (nkeys == 0)
		return errmsg_set(errmsg, TG_EINVAL, "table '%s' declares no key column", decl->name);
	return 0;
}

/* The declaration as a new struct storage_table (keys numbered in order). */
static struct storage_table *declaration_copy(const struct tg_table *decl)
{
	struct storage_table *t = calloc(1, sizeof(*t));
	unsigned key = 0;

	if (!t)
		return NULL;
	t->name = strdup(decl->name);
	t->columns = calloc(decl->ncolumns, sizeof(*t->columns));
	if (!t->name || !t->columns)
		goto free_t;
	for (size_t i = 0; i < decl->ncolumns; i++) {
		t->columns[i].name = strdup(decl->columns[i].name);
		if (!t->columns[i].name)
			goto free_t;
		t->columns[i].type = decl->columns[i].type;
		t->columns[i].key = decl->columns[i].key ? ++key : 0;
		t->ncolumns++;
	}
	t->nkeys = key;
	return t;

free_t:
	storage_table_free(t);
	return NULL;
}

/* Compare the declaration with the existing table and add the missing
 * columns. The key is compared as a set: the same columns in another order
 * identify the same rows. */
static int migrate(struct storage_conn *conn, const struct tg_table *decl, const struct storage_table *old,
                   char **errmsg)
{
	int rc;

	for (size_t i = 0; i < old->ncolumns; i++) {
		const struct storage_column *oc = &old->columns[i];
		bool declared_key = false;

		if (!oc->key)
			continue;
		for (size_t j = 0; j < decl->ncolumns; j++)
			if (decl->columns[j].key && strcmp(decl->columns[j].name, oc->name) == 0)
				declared_key = true;
		if (!declared_key)
			return errmsg_set(
			    errmsg, TG_EINVAL,
			    "table '%s' exists with key column '%s' that the declaration does not "
			    "have as key: changing a table's key is not supported",
			    decl->name, oc->name);
	}
	for (size_t i = 0; i < decl->ncolumns; i++) {
		const struct tg_column *dc = &decl->columns[i];
		const struct storage_column *oc = column_find(old, dc->name);

		if (oc && oc->type != dc->type)
			return errmsg_set(
			    errmsg, TG_EINVAL,
			    "column '%s' of table '%s' exists as %s but is declared %s: changing a "
			    "column's type is not supported",
			    dc->name, decl->name, type_name(oc->type), type_name(dc->type));
		if (dc->key && (!oc || !oc->key))
			return errmsg_set(
			    errmsg, TG_EINVAL,
			    "column '%s' is declared as a key of table '%s' but is not one in the "
			    "existing table: changing a table's key is not supported",
			    dc->name, decl->name);
	}
	/* Everything is checked before the first change, so a refused
	 * declaration changes nothing and logs no addition. */
	for (size_t i = 0; i < decl->ncolumns; i++) {
		const struct tg_column *dc = &decl->columns[i];
		struct storage_column add;

		if (column_find(old, dc->name))
			continue;
		add = (struct storage_column){.name = (char *)dc->name, .type = dc->type, .key = 0};
		rc = conn->st->ops->add_column(conn->bconn, decl->name, &add, errmsg);
		if (rc < 0)
			return rc;
		log_info(NULL, "storage: added column %s %s to table %s", dc->name, type_name(dc->type),
		         decl->name);
	}
	return 0;
}

int storage_declare(struct storage_conn *conn, const struct tg_table *decl, char **errmsg)
{
	const struct storage_backend_ops *ops = conn->st->ops;
	struct storage_table *old = NULL, *fresh = NULL;
	struct table_entry *published;
	int rc;

	rc = declaration_check(decl, errmsg);
	if (rc < 0)
		return rc;
	if (conn->in_tx)
		return errmsg_set(errmsg, TG_EINVAL, "declare table '%s' outside a transaction",
		                     decl->name);

	/* The write transaction makes describe-then-alter atomic against other
	 * threads and processes declaring the same table. */
	rc = ops->begin(conn->bconn, errmsg);
	if (rc < 0)
		return rc;
	rc = ops->describe(conn->bconn, decl->name, &old, errmsg);
	if (rc < 0)
		goto rollback;
	if (!old) {
		struct storage_table *t = declaration_copy(decl);

		if (!t) {
			rc = errmsg_set(errmsg, TG_ENOMEM, "out of memory");
			goto rollback;
		}
		rc = ops->create_table(conn->bconn, t, errmsg);
		storage_table_free(t);
		if (rc < 0)
			goto rollback;
	} else {
		rc = migrate(conn, decl, old, errmsg);
		if (rc < 0)
			goto free_old;
	}
	rc = ops->describe(conn->bconn, decl->name, &fresh, errmsg);
	if (rc < 0)
		goto free_old;
	if (!fresh) {
		rc = errmsg_set(errmsg, TG_ESTORAGE, "table '%s' vanished while being declared",
		                   decl->name);
		goto free_old;
	}
	rc = ops->commit(conn->bconn, errmsg);
	if (rc < 0)
		goto free_fresh;
	storage_table_free(old);
	return registry_publish(conn->st, fresh, &published, errmsg);

free_fresh:
	storage_table_free(fresh);
free_old:
	storage_table_free(old);
rollback:
	ops->rollback(conn->bconn, NULL);
	return rc;
}

/* ----------------------------------------------------------- transactions */

int storage_begin(struct storage_conn *conn, char **errmsg)
{
	int rc;

	if (conn->in_tx)
		return errmsg_set(errmsg, TG_EINVAL,
		                     "begin inside a transaction: transactions do not nest");
	rc = conn->st->ops->begin(conn->bconn, errmsg);
	if (rc == 0)
		conn->in_tx = true;
	return rc;
}

int storage_commit(struct storage_conn *conn, char **errmsg)
{
	int rc;

	if (!conn->in_tx)
		return errmsg_set(errmsg, TG_EINVAL, "commit without begin");
	rc = conn->st->ops->commit(conn->bconn, errmsg);
	if (rc < 0)
		conn->st->ops->rollback(conn->bconn, NULL);
	conn->in_tx = false;
	return rc;
}

int storage_rollback(struct storage_conn *conn, char **errmsg)
{
	if (!conn->in_tx)
		return errmsg_set(errmsg, TG_EINVAL, "rollback without begin");
	conn->in_tx = false;
	return conn->st->ops->rollback(conn->bconn, errmsg);
}

bool storage_in_transaction(const struct storage_conn *conn)
{
	return conn->in_tx;
}

/* ------------------------------------------------------------------- rows */

/* Whether a value of type vt may be written to or compared with a column
 * of type ct. Integers widen to reals; nothing else converts. */
static bool type_fits(enum tg_type ct, enum tg_type vt, bool compare)
{
	if (vt == ct)
		return true;
	if (vt == TG_INT && ct == TG_REAL)
		return true;
	return compare && vt == TG_REAL && ct == TG_INT;
}

static int value_check(const struct storage_table *t, const struct storage_column *c,
                       const struct tg_value *v, bool compare, char **errmsg)
{
	if (v->type != TG_NULL && v->type != TG_INT && v->type != TG_REAL && v->type != TG_TEXT)
		return errmsg_set(errmsg, TG_EINVAL,
		                     "value for column '%s' of table '%s' has no valid type", c->name,
		                     t->name);
	if (v->type == TG_NULL)
		return 0;
	if (!type_fits(c->type, v->type, compare))
		return errmsg_set(errmsg, TG_ETYPE, "column '%s' of table '%s' is %s, the value is %s",
		                     c->name, t->name, type_name(c->type), type_name(v->type));
	if (v->type == TG_TEXT && !v->v.s)
		return errmsg_set(errmsg, TG_EINVAL,
		                     "text value for column '%s' of table '%s' is a NULL pointer", c->name,
		                     t->name);
	if (v->type == TG_REAL && isnan(v->v.r))
		return errmsg_set(errmsg, TG_EINVAL, "NaN for column '%s' of table '%s' cannot be stored",
		                     c->name, t->name);
	return 0;
}

/* Whether v is plainly right for column c: value_check() would pass it. */
static inline bool value_plain(const struct storage_column *c, const struct tg_value *v)
{
	switch (v->type) {
	case TG_INT:
		return c->type == TG_INT || c->type == TG_REAL;
	case TG_TEXT:
		return c->type == TG_TEXT && v->v.s;
	case TG_NULL:
		return !c->key;
	default:
		return false;
	}
}

/* Which columns a row names, one bit each: on the stack for the tables
 * plugins declare (at most STORAGE_COLUMNS_MAX columns), allocated for a
 * wider table made by someone else. */
struct column_set {
	uint64_t small[STORAGE_COLUMNS_MAX / 64];
	uint64_t *bits;
};

static bool column_set_init(struct column_set *cs, size_t ncolumns)
{
	memset(cs->small, 0, sizeof(cs->small));
	cs->bits = ncolumns <= STORAGE_COLUMNS_MAX ? cs->small : calloc((ncolumns + 63) / 64, sizeof(uint64_t));
	return cs->bits != NULL;
}

/* Add column i; false when it was there already. */
static bool column_set_add(struct column_set *cs, size_t i)
{
	uint64_t bit = (uint64_t)1 << (i % 64);

	if (cs->bits[i / 64] & bit)
		return false;
	cs->bits[i / 64] |= bit;
	return true;
}

static void column_set_release(struct column_set *cs)
{
	if (cs->bits != cs->small)
		free(cs->bits);
}

/* Whether values name the columns memo remembers, in the same order. */
static bool memo_matches(const struct row_memo *memo, const struct table_entry *e, const struct tg_value *values,
                         size_t n)
{
	if (memo->table != e || memo->n != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!values[i].column || strcmp(values[i].column, e->t.columns[memo->pos[i]].name) != 0)
			return false;
	return true;
}

/* The fast path of an upsert's check, one pass: the row names the columns
 * memo remembers, in the same order, each value is plain for its column and
 * the keys are all there. When false, the full check says why (or passes:
 * a real, a new shape). */
static bool memo_row_plain(const struct row_memo *memo, const struct table_entry *e, const struct tg_value *values,
                           size_t n)
{
	const struct storage_column *cols = e->t.columns;
	size_t nkeys = 0;

	if (memo->table != e || memo->n != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		const struct storage_column *c = &cols[memo->pos[i]];

		if (!values[i].column || strcmp(values[i].column, c->name) != 0 || !value_plain(c, &values[i]))
			return false;
		nkeys += c->key != 0;
	}
	return nkeys == e->t.nkeys;
}

/* Find the position of each value's column in e (distinct, known); they
 * are stored in memo, which is left empty when this fails. */
static int memo_learn(struct row_memo *memo, const struct table_entry *e, const struct tg_value *values,
                      size_t n, bool *unknown, char **errmsg)
{
	const struct storage_table *t = &e->t;
	struct column_set seen;
	int rc = 0;

	memo->table = NULL;
	if (n > memo->cap) {
		uint32_t *pos = realloc(memo->pos, n * sizeof(*pos));

		if (!pos)
			return errmsg_set(errmsg, TG_ENOMEM, "out of memory");
		memo->pos = pos;
		memo->cap = n;
	}
	if (!column_set_init(&seen, t->ncolumns))
		return errmsg_set(errmsg, TG_ENOMEM, "out of memory");
	for (size_t i = 0; i < n && rc == 0; i++) {
		long pos = entry_column(e, values[i].column);

		if (pos < 0) {
			*unknown = true;
			rc = errmsg_set(errmsg, TG_EINVAL, "table '%s' has no column '%.80s'", t->name,
			                shown(values[i].column));
		} else if (!column_set_add(&seen, (size_t)pos)) {
			rc = errmsg_set(errmsg, TG_EINVAL, "column '%s' is named twice", t->columns[pos].name);
		} else {
			memo->pos[i] = (uint32_t)pos;
		}
	}
	column_set_release(&seen);
	if (rc == 0) {
		memo->table = e;
		memo->n = n;
	}
	return rc;
}

/* Check that values name distinct columns of e with fitting types, in time
 * linear in n (the memo, or a hashed lookup and a bit per column). When
 * key_only, they must be exactly the key columns. A column missing from the
 * registry sets *unknown (the caller may refresh the registry and retry). */
static int values_check(struct storage_conn *conn, const struct table_entry *e, const struct tg_value *values,
                        size_t n, bool key_only, bool *unknown, const uint32_t **positions, char **errmsg)
{
	const struct storage_table *t = &e->t;
	struct row_memo *memo = NULL, *oldest = &conn->memo[0];
	size_t nkeys = 0;
	int rc = 0;

	*unknown = false;
	if (n > 0 && !values)
		return errmsg_set(errmsg, TG_EINVAL, "no values given");
	if (n == 0 || n > t->ncolumns)
		return errmsg_set(errmsg, TG_EINVAL, "%zu values for table '%s' of %zu columns", n,
		                     t->name, t->ncolumns);
	for (size_t k = 0; k < ROW_MEMOS && !memo; k++) {
		struct row_memo *m = &conn->memo[k];

		if (m->used < oldest->used)
			oldest = m;
		if (m->table != e || m->n != n)
			continue;
		if (!key_only && memo_row_plain(m, e, values, n)) {
			m->used = ++conn->memo_tick;
			*positions = m->pos;
			return 0;
		}
		if (memo_matches(m, e, values, n))
			memo = m;
	}
	if (!memo) {
		memo = oldest;
		rc = memo_learn(memo, e, values, n, unknown, errmsg);
		if (rc < 0)
			return rc;
	}
	memo->used = ++conn->memo_tick;
	for (size_t i = 0; i < n && rc == 0; i++) {
		const struct storage_column *c = &t->columns[memo->pos[i]];

		/* The common case first: an integer for an integer column, a
		 * non-NULL string for a text column, a NULL for a plain column
		 * (reals go the long way, for the NaN check). */
		if (!key_only && value_plain(c, &values[i])) {
			nkeys += c->key != 0;
			continue;
		}
		if (key_only && !c->key) {
			rc = errmsg_set(errmsg, TG_EINVAL, "column '%s' is not a key of table '%s'", c->name,
			                t->name);
		} else if (c->key && values[i].type == TG_NULL) {
			rc = errmsg_set(errmsg, TG_EINVAL, "key column '%s' of table '%s' cannot be NULL",
			                c->name, t->name);
		} else {
			rc = value_check(t, c, &values[i], false, errmsg);
			nkeys += c->key != 0;
		}
	}
	if (rc == 0 && nkeys != t->nkeys)
		rc = errmsg_set(errmsg, TG_EINVAL, "table '%s' has %zu key columns, %zu are given", t->name,
		                t->nkeys, nkeys);
	if (rc == 0)
		*positions = memo->pos;
	return rc;
}

/* Look the table up and check values against it; *positions is then the
 * position in the table of each value's column (the connection's, valid
 * until its next check). A column unknown to the registry may have been
 * added by another process since: the table is read again once before the
 * call is refused. */
static int prepare_values(struct storage_conn *conn, const char *table, const struct tg_value *values,
                          size_t n, bool key_only, struct table_entry **e, const uint32_t **positions,
                          char **errmsg)
{
	bool unknown;
	int rc;

	rc = table_lookup(conn, table, e, errmsg);
	if (rc < 0)
		return rc;
	rc = values_check(conn, *e, values, n, key_only, &unknown, positions, NULL);
	if (rc == 0)
		return 0;
	if (unknown) {
		rc = registry_refresh(conn, table, e, errmsg);
		if (rc < 0)
			return rc;
		if (!*e)
			return errmsg_set(errmsg, TG_EINVAL, "table '%s' is not declared", table);
	}
	return values_check(conn, *e, values, n, key_only, &unknown, positions, errmsg);
}

int storage_upsert(struct storage_conn *conn, const char *table, const struct tg_value *values,
                   size_t nvalues, char **errmsg)
{
	struct table_entry *e;
	const uint32_t *pos;
	int rc;

	rc = prepare_values(conn, table, values, nvalues, false, &e, &pos, errmsg);
	if (rc < 0)
		return rc;
	if (conn->st->ops->upsert_at)
		return conn->st->ops->upsert_at(conn->bconn, &e->t, values, pos, nvalues, errmsg);
	return conn->st->ops->upsert(conn->bconn, &e->t, values, nvalues, errmsg);
}

/* Keys of up to this many columns are addressed without an allocation. */
#define KEY_FILTERS_INLINE 8

/* The key as TG_EQ filters (the backends' one way to address rows), in
 * room (KEY_FILTERS_INLINE entries) or allocated; free it when it is not
 * room. */
static struct tg_filter *key_filters(const struct tg_value *key, size_t nkey, struct tg_filter *room)
{
	struct tg_filter *f = nkey <= KEY_FILTERS_INLINE ? room : calloc(nkey, sizeof(*f));

	if (!f)
		return NULL;
	for (size_t i = 0; i < nkey; i++)
		f[i] = (struct tg_filter){.op = TG_EQ, .value = key[i]};
	return f;
}

struct get_state {
	tg_row_fn fn;
	void *ud;
	bool found;
};

static int get_row(void *ud, const struct tg_value *row, size_t n)
{
	struct get_state *gs = ud;

	gs->found = true;
	return gs->fn ? gs->fn(gs->ud, row, n) : 0;
}

int storage_get(struct storage_conn *conn, const char *table, const struct tg_value *key, size_t nkey,
                tg_row_fn fn, void *ud, char **errmsg)
{
	struct get_state gs = {.fn = fn, .ud = ud};
	struct tg_filter room[KEY_FILTERS_INLINE], *f;
	struct table_entry *e;
	const uint32_t *pos;
	int rc;

	rc = prepare_values(conn, table, key, nkey, true, &e, &pos, errmsg);
	if (rc < 0)
		return rc;
	f = key_filters(key, nkey, room);
	if (!f)
		return errmsg_set(errmsg, TG_ENOMEM, "out of memory");
	rc = conn->st->ops->select(conn->bconn, &e->t, f, nkey, NULL, false, 1, get_row, &gs, errmsg);
	if (f != room)
		free(f);
	if (rc == 0 && !gs.found)
		return TG_ENOTFOUND;
	return rc;
}

int storage_remove(struct storage_conn *conn, const char *table, const struct tg_value *key, size_t nkey,
                   char **errmsg)
{
	struct tg_filter room[KEY_FILTERS_INLINE], *f;
	struct table_entry *e;
	const uint32_t *pos;
	int rc;

	rc = prepare_values(conn, table, key, nkey, true, &e, &pos, errmsg);
	if (rc < 0)
		return rc;
	f = key_filters(key, nkey, room);
	if (!f)
		return errmsg_set(errmsg, TG_ENOMEM, "out of memory");
	rc = conn->st->ops->remove(conn->bconn, &e->t, f, nkey, errmsg);
	if (f != room)
		free(f);
	return rc;
}

static int filters_check(const struct table_entry *e, const struct tg_filter *filters, size_t n,
                         char **errmsg)
{
	const struct storage_table *t = &e->t;

	if (n > 0 && !filters)
		return errmsg_set(errmsg, TG_EINVAL, "no filters given");
	for (size_t i = 0; i < n; i++) {
		const struct tg_filter *f = &filters[i];
		long pos = entry_column(e, f->value.column);
		const struct storage_column *c = pos >= 0 ? &t->columns[pos] : NULL;
		int rc;

		if (!c)
			return errmsg_set(errmsg, TG_EINVAL, "table '%s' has no column '%.80s'", t->name,
			                     shown(f->value.column));
		if (f->op < TG_EQ || f->op > TG_GE)
			return errmsg_set(errmsg, TG_EINVAL,
			                     "filter on column '%s' has an unknown operator", c->name);
		if (f->value.type == TG_NULL && f->op != TG_EQ && f->op != TG_NE)
			return errmsg_set(errmsg, TG_EINVAL,
			                     "filter on column '%s': NULL compares only with TG_EQ or TG_NE",
			                     c->name);
		rc = value_check(t, c, &f->value, true, errmsg);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int storage_select(struct storage_conn *conn, const char *table, const struct tg_filter *filters,
                   size_t nfilters, const char *order_by, int64_t limit, tg_row_fn fn, void *ud,
                   char **errmsg)
{
	struct table_entry *e;
	const char *order = NULL;
	bool descending = false;
	int rc;

	if (!fn)
		return errmsg_set(errmsg, TG_EINVAL, "select needs a row function");
	rc = table_lookup(conn, table, &e, errmsg);
	if (rc < 0)
		return rc;
	rc = filters_check(e, filters, nfilters, errmsg);
	if (rc < 0)
		return rc;
	if (order_by) {
		long pos;

		descending = order_by[0] == '-';
		pos = entry_column(e, order_by + descending);
		if (pos < 0)
			return errmsg_set(errmsg, TG_EINVAL,
			                     "cannot order table '%s' by unknown column '%.80s'", e->t.name,
			                     order_by);
		order = e->t.columns[pos].name;
	}
	return conn->st->ops->select(conn->bconn, &e->t, filters, nfilters, order, descending,
	                             limit < 0 ? -1 : limit, fn, ud, errmsg);
}

/* ------------------------------------------------------------------ state */

static int state_args_check(const char *task, const char *key, char **errmsg)
{
	if (!task || !*task)
		return errmsg_set(errmsg, TG_EINVAL, "state needs a task name");
	if (!key || !*key || strlen(key) > STORAGE_STATE_KEY_MAX)
		return errmsg_set(errmsg, TG_EINVAL, "state key must have 1 to %d bytes",
		                     STORAGE_STATE_KEY_MAX);
	return 0;
}

int storage_state_get(struct storage_conn *conn, const char *task, const char *key, char **value,
                      char **errmsg)
{
	int rc;

	if (!value)
		return errmsg_set(errmsg, TG_EINVAL, "state get needs a place for the value");
	*value = NULL;
	rc = state_args_check(task, key, errmsg);
	if (rc < 0)
		return rc;
	return conn->st->ops->state_get(conn->bconn, task, key, value, errmsg);
}

int storage_state_set(struct storage_conn *conn, const char *task, const char *key, const char *value,
                      char **errmsg)
{
	int rc;

	rc = state_args_check(task, key, errmsg);
	if (rc < 0)
		return rc;
	if (value && strlen(value) > STORAGE_STATE_VALUE_MAX)
		return errmsg_set(errmsg, TG_EINVAL, "state value for key '%.80s' is larger than %d bytes",
		                     key, STORAGE_STATE_VALUE_MAX);
	return conn->st->ops->state_set(conn->bconn, task, key, value, (int64_t)time(NULL), errmsg);
}

/* ------------------------------------------------- pages for readers */

int storage_table_get(struct storage_conn *conn, const char *table, const struct storage_table **out,
                      char **errmsg)
{
	struct table_entry *e;
	int rc;

	*out = NULL;
	rc = table_lookup(conn, table, &e, errmsg);
	if (rc == 0)
		*out = &e->t;
	return rc;
}

/* Check q against its table; *order is the column to order by (NULL: key
 * order) and *descending its direction. */
static int query_check(struct storage_conn *conn, const struct storage_query *q, struct table_entry **e,
                       const char **order, bool *descending, char **errmsg)
{
	int rc;

	*order = NULL;
	*descending = false;
	if (!q)
		return errmsg_set(errmsg, TG_EINVAL, "no query given");
	rc = table_lookup(conn, q->table, e, errmsg);
	if (rc < 0)
		return rc;
	rc = filters_check(*e, q->filters, q->nfilters, errmsg);
	if (rc < 0)
		return rc;
	if (q->match_column) {
		long pos = entry_column(*e, q->match_column);

		if (pos < 0 || (*e)->t.columns[pos].type != TG_TEXT)
			return errmsg_set(errmsg, TG_EINVAL, "table '%s' has no text column '%.80s' to search",
			                  (*e)->t.name, q->match_column);
		if (!q->match_text)
			return errmsg_set(errmsg, TG_EINVAL, "a search on '%s' needs a text", q->match_column);
	}
	if (q->offset < 0)
		return errmsg_set(errmsg, TG_EINVAL, "offset %lld is negative", (long long)q->offset);
	if (q->order_by) {
		long pos;

		*descending = q->order_by[0] == '-';
		pos = entry_column(*e, q->order_by + *descending);
		if (pos < 0)
			return errmsg_set(errmsg, TG_EINVAL, "cannot order table '%s' by unknown column '%.80s'",
			                  (*e)->t.name, q->order_by);
		*order = (*e)->t.columns[pos].name;
	}
	if (!conn->st->ops->query || !conn->st->ops->count || !conn->st->ops->index)
		return errmsg_set(errmsg, TG_ENOTSUP, "storage backend '%s' cannot read pages",
		                  conn->st->ops->name);
	return 0;
}

int storage_query(struct storage_conn *conn, const struct storage_query *q, tg_row_fn fn, void *ud,
                  char **errmsg)
{
	struct table_entry *e;
	const char *order;
	bool descending;
	int rc;

	if (!fn)
		return errmsg_set(errmsg, TG_EINVAL, "query needs a row function");
	rc = query_check(conn, q, &e, &order, &descending, errmsg);
	if (rc < 0)
		return rc;
	return conn->st->ops->query(conn->bconn, &e->t, q, order, descending, fn, ud, errmsg);
}

int storage_count(struct storage_conn *conn, const struct storage_query *q, int64_t *count, char **errmsg)
{
	struct table_entry *e;
	const char *order;
	bool descending;
	int rc;

	*count = 0;
	rc = query_check(conn, q, &e, &order, &descending, errmsg);
	if (rc < 0)
		return rc;
	return conn->st->ops->count(conn->bconn, &e->t, q, count, errmsg);
}

int storage_index(struct storage_conn *conn, const char *table, const char *column, char **errmsg)
{
	struct table_entry *e;
	long pos;
	int rc;

	rc = table_lookup(conn, table, &e, errmsg);
	if (rc < 0)
		return rc;
	pos = column ? entry_column(e, column) : -1;
	if (pos < 0)
		return errmsg_set(errmsg, TG_EINVAL, "table '%s' has no column '%.80s' to index", e->t.name,
		                  shown(column));
	if (!conn->st->ops->index)
		return errmsg_set(errmsg, TG_ENOTSUP, "storage backend '%s' cannot create indexes",
		                  conn->st->ops->name);
	return conn->st->ops->index(conn->bconn, &e->t, e->t.columns[pos].name, errmsg);
}
