/*
 * fake_services.c - see fake_services.h.
 */
#include "fake_services.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* ------------------------------------------------------------- the store */

struct ftable {
	char *name;
	struct tg_column *cols;
	size_t ncols;
	struct tg_value **rows; /* each ncols cells, aligned with cols */
	size_t nrows;
};

struct fstate {
	char *key, *value;
};

struct db {
	struct ftable *tables;
	size_t ntables;
	struct fstate *state;
	size_t nstate;
};

struct fsetting {
	char *name;
	enum tg_setting_type type;
	int64_t i;
	double r;
	bool b;
	char *s; /* string, or JSON text of a group/list */
};

struct fake {
	const struct tg_plugin *plugin;
	struct tg_services svc;
	struct fsetting *settings;
	size_t nsettings;
	struct db committed, *work; /* work: the open transaction */
	size_t commits;

	int64_t now_ms, budget, stop_after;
	cJSON *deals;    /* array */
	cJSON *products; /* object by asin */
	struct {
		int64_t n;
		int code;
		char *msg;
	} fails[16];
	size_t nfails;
	struct {
		int page;
		char *json;
	} raw[8];
	size_t nraw;
	double max_cost;
	int64_t upserts, fail_upsert;
	int fail_state_get;
	char storage_reason[256]; /* what last_error() says after a failed storage call */
	char last_error[256];
	int64_t not_before_ms; /* the last not_before_ms() asked, -1: none */
	char indexes[16][96];  /* "table.column" asked with table_index() */
	size_t nindexes;
	size_t unindexed_selects;
	char unindexed_last[160];
	bool index_unsupported; /* table_index() answers TG_ENOTSUP, as a backend without indexes */
	int64_t deal_call_ms;  /* how long each /deal call takes on the fake's clock */

	struct fake_call *calls;
	size_t ncalls;
	char pages[4096];
	char **logs;
	size_t nlogs;
	int64_t progress_done, progress_total;
};

static char *xstrdup(const char *s)
{
	char *d = s ? strdup(s) : NULL;

	assert_true(!s || d);
	return d;
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);

	assert_non_null(p);
	return p;
}

static void *xrealloc(void *p, size_t size)
{
	p = realloc(p, size ? size : 1);
	assert_non_null(p);
	return p;
}

static struct tg_value value_copy(struct tg_value v, const char *column)
{
	struct tg_value c = v;

	c.column = column;
	if (v.type == TG_TEXT)
		c.v.s = xstrdup(v.v.s);
	return c;
}

static void value_free(struct tg_value *v)
{
	if (v->type == TG_TEXT)
		free((char *)v->v.s);
	v->type = TG_NULL;
}

static void table_free_rows(struct ftable *t)
{
	size_t i, j;

	for (i = 0; i < t->nrows; i++) {
		for (j = 0; j < t->ncols; j++)
			value_free(&t->rows[i][j]);
		free(t->rows[i]);
	}
	free(t->rows);
	t->rows = NULL;
	t->nrows = 0;
}

static void db_release(struct db *db)
{
	size_t i, j;

	for (i = 0; i < db->ntables; i++) {
		struct ftable *t = &db->tables[i];

		table_free_rows(t);
		for (j = 0; j < t->ncols; j++)
			free((char *)t->cols[j].name);
		free(t->cols);
		free(t->name);
	}
	free(db->tables);
	for (i = 0; i < db->nstate; i++) {
		free(db->state[i].key);
		free(db->state[i].value);
	}
	free(db->state);
	memset(db, 0, sizeof(*db));
}

static void db_copy(struct db *dst, const struct db *src)
{
	size_t i, j, k;

	memset(dst, 0, sizeof(*dst));
	dst->tables = xcalloc(src->ntables, sizeof(*dst->tables));
	dst->ntables = src->ntables;
	for (i = 0; i < src->ntables; i++) {
		const struct ftable *s = &src->tables[i];
		struct ftable *d = &dst->tables[i];

		d->name = xstrdup(s->name);
		d->ncols = s->ncols;
		d->cols = xcalloc(s->ncols, sizeof(*d->cols));
		for (j = 0; j < s->ncols; j++) {
			d->cols[j] = s->cols[j];
			d->cols[j].name = xstrdup(s->cols[j].name);
		}
		d->nrows = s->nrows;
		d->rows = xcalloc(s->nrows, sizeof(*d->rows));
		for (k = 0; k < s->nrows; k++) {
			d->rows[k] = xcalloc(s->ncols, sizeof(**d->rows));
			for (j = 0; j < s->ncols; j++)
				d->rows[k][j] = value_copy(s->rows[k][j], d->cols[j].name);
		}
	}
	dst->state = xcalloc(src->nstate, sizeof(*dst->state));
	dst->nstate = src->nstate;
	for (i = 0; i < src->nstate; i++) {
		dst->state[i].key = xstrdup(src->state[i].key);
		dst->state[i].value = xstrdup(src->state[i].value);
	}
}

/* The view operations act on: the open transaction, else the committed data. */
static struct db *db_cur(struct fake *f)
{
	return f->work ? f->work : &f->committed;
}

static struct ftable *table_find(struct db *db, const char *name)
{
	size_t i;

	for (i = 0; i < db->ntables; i++)
		if (!strcmp(db->tables[i].name, name))
			return &db->tables[i];
	return NULL;
}

static int col_index(const struct ftable *t, const char *name)
{
	size_t i;

	for (i = 0; i < t->ncols; i++)
		if (!strcmp(t->cols[i].name, name))
			return (int)i;
	return -1;
}

static bool value_eq(const struct tg_value *a, const struct tg_value *b)
{
	if (a->type != b->type)
		return false;
	switch (a->type) {
	case TG_NULL:
		return true;
	case TG_INT:
		return a->v.i == b->v.i;
	case TG_REAL:
		return a->v.r == b->v.r;
	case TG_TEXT:
		return !strcmp(a->v.s, b->v.s);
	}
	return false;
}

/* -1, 0, 1; NULL sorts first (as SQLite does in ascending order). */
static int value_cmp(const struct tg_value *a, const struct tg_value *b)
{
	double x, y;

	if (a->type == TG_NULL || b->type == TG_NULL)
		return (a->type != TG_NULL) - (b->type != TG_NULL);
	if (a->type == TG_TEXT || b->type == TG_TEXT) {
		assert_int_equal(a->type, b->type);
		return strcmp(a->v.s, b->v.s);
	}
	x = a->type == TG_INT ? (double)a->v.i : a->v.r;
	y = b->type == TG_INT ? (double)b->v.i : b->v.r;
	if (a->type == TG_INT && b->type == TG_INT)
		return (a->v.i > b->v.i) - (a->v.i < b->v.i);
	return (x > y) - (x < y);
}

/* The row whose key cells equal those in values[0..n), or -1. */
static long row_find(struct ftable *t, const struct tg_value *values, size_t n)
{
	size_t r, j, k;

	for (r = 0; r < t->nrows; r++) {
		bool match = true;

		for (j = 0; j < t->ncols && match; j++) {
			if (!t->cols[j].key)
				continue;
			for (k = 0; k < n; k++)
				if (!strcmp(values[k].column, t->cols[j].name))
					break;
			assert_true(k < n); /* every key column must be given */
			match = value_eq(&t->rows[r][j], &values[k]);
		}
		if (match)
			return (long)r;
	}
	return -1;
}

/* Check values against the declaration: known columns, matching types,
 * no column twice, key columns present and not NULL. */
static void values_check(const struct ftable *t, const struct tg_value *values, size_t n, bool key_only)
{
	size_t i, k;

	for (i = 0; i < n; i++) {
		int c = col_index(t, values[i].column);

		if (c < 0)
			fail_msg("table %s has no column %s", t->name, values[i].column);
		if (key_only && !t->cols[c].key)
			fail_msg("%s is not a key column of %s", values[i].column, t->name);
		for (k = 0; k < i; k++)
			if (!strcmp(values[k].column, values[i].column))
				fail_msg("column %s named twice", values[i].column);
		if (values[i].type != TG_NULL && values[i].type != t->cols[c].type &&
		    !(t->cols[c].type == TG_REAL && values[i].type == TG_INT))
			fail_msg("column %s.%s: type %d given for a column of type %d", t->name,
			         values[i].column, values[i].type, t->cols[c].type);
		if (t->cols[c].key && values[i].type == TG_NULL)
			fail_msg("key column %s.%s is NULL", t->name, values[i].column);
	}
	for (i = 0; i < t->ncols; i++) {
		if (!t->cols[i].key)
			continue;
		for (k = 0; k < n; k++)
			if (!strcmp(values[k].column, t->cols[i].name))
				break;
		if (k == n)
			fail_msg("key column %s.%s missing", t->name, t->cols[i].name);
	}
}

static void table_upsert(struct ftable *t, const struct tg_value *values, size_t n)
{
	long r;
	size_t i;

	values_check(t, values, n, false);
	r = row_find(t, values, n);
	if (r < 0) {
		t->rows = xrealloc(t->rows, (t->nrows + 1) * sizeof(*t->rows));
		t->rows[t->nrows] = xcalloc(t->ncols, sizeof(**t->rows));
		for (i = 0; i < t->ncols; i++)
			t->rows[t->nrows][i] = (struct tg_value){.column = t->cols[i].name, .type = TG_NULL};
		r = (long)t->nrows++;
	}
	for (i = 0; i < n; i++) {
		int c = col_index(t, values[i].column);

		value_free(&t->rows[r][c]);
		t->rows[r][c] = value_copy(values[i], t->cols[c].name);
	}
}

/* ---------------------------------------------------------- the services */

static struct fake *F(struct tg_task *task)
{
	assert_non_null(task);
	return (struct fake *)task;
}

static void svc_log(struct tg_task *task, enum tg_log_level level, const char *fmt, ...)
{
	struct fake *f = F(task);
	va_list ap;
	char *line = NULL;

	va_start(ap, fmt);
	assert_true(vasprintf(&line, fmt, ap) >= 0);
	va_end(ap);
	fprintf(stderr, "  [%s %d] %s\n", f->plugin->name, level, line);
	f->logs = xrealloc(f->logs, (f->nlogs + 1) * sizeof(*f->logs));
	f->logs[f->nlogs++] = line;
}

static const struct tg_setting *setting_decl(struct fake *f, const char *name, enum tg_setting_type type)
{
	size_t i;

	for (i = 0; i < f->plugin->nsettings; i++) {
		if (strcmp(f->plugin->settings[i].name, name))
			continue;
		if (f->plugin->settings[i].type != type)
			fail_msg("setting %s read with type %d, declared %d", name, type,
			         f->plugin->settings[i].type);
		return &f->plugin->settings[i];
	}
	fail_msg("plugin %s reads undeclared setting %s", f->plugin->name, name);
	return NULL;
}

static struct fsetting *setting_find(struct fake *f, const char *name)
{
	size_t i;

	for (i = 0; i < f->nsettings; i++)
		if (!strcmp(f->settings[i].name, name))
			return &f->settings[i];
	return NULL;
}

static int svc_setting_int(struct tg_task *task, const char *name, int64_t *out)
{
	struct fake *f = F(task);
	const struct tg_setting *d = setting_decl(f, name, TG_SETTING_INT);
	struct fsetting *s = setting_find(f, name);

	if (s) {
		assert_int_equal(s->type, TG_SETTING_INT);
		*out = s->i;
		return TG_OK;
	}
	if (!d->default_value)
		return TG_ENOTFOUND;
	*out = strtoll(d->default_value, NULL, 10);
	return TG_OK;
}

static int svc_setting_real(struct tg_task *task, const char *name, double *out)
{
	struct fake *f = F(task);
	const struct tg_setting *d = setting_decl(f, name, TG_SETTING_REAL);
	struct fsetting *s = setting_find(f, name);

	if (s) {
		*out = s->type == TG_SETTING_INT ? (double)s->i : s->r;
		return TG_OK;
	}
	if (!d->default_value)
		return TG_ENOTFOUND;
	*out = strtod(d->default_value, NULL);
	return TG_OK;
}

static int svc_setting_bool(struct tg_task *task, const char *name, bool *out)
{
	struct fake *f = F(task);
	const struct tg_setting *d = setting_decl(f, name, TG_SETTING_BOOL);
	struct fsetting *s = setting_find(f, name);

	if (s) {
		*out = s->b;
		return TG_OK;
	}
	if (!d->default_value)
		return TG_ENOTFOUND;
	*out = !strcmp(d->default_value, "true");
	return TG_OK;
}

static int svc_setting_string(struct tg_task *task, const char *name, const char **out)
{
	struct fake *f = F(task);
	const struct tg_setting *d = setting_decl(f, name, TG_SETTING_STRING);
	struct fsetting *s = setting_find(f, name);

	if (s) {
		*out = s->s;
		return TG_OK;
	}
	if (!d->default_value)
		return TG_ENOTFOUND;
	*out = d->default_value;
	return TG_OK;
}

static int svc_setting_json(struct tg_task *task, const char *name, struct cJSON **out)
{
	struct fake *f = F(task);
	struct fsetting *s = setting_find(f, name);
	size_t i;

	for (i = 0; i < f->plugin->nsettings; i++)
		if (!strcmp(f->plugin->settings[i].name, name))
			break;
	if (i == f->plugin->nsettings)
		fail_msg("plugin %s reads undeclared setting %s", f->plugin->name, name);
	assert_true(f->plugin->settings[i].type == TG_SETTING_GROUP ||
	            f->plugin->settings[i].type == TG_SETTING_LIST);
	if (!s)
		return TG_ENOTFOUND;
	*out = cJSON_Parse(s->s);
	assert_non_null(*out);
	return TG_OK;
}

static int64_t svc_now_ms(struct tg_task *task)
{
	return F(task)->now_ms;
}

static int svc_sleep_ms(struct tg_task *task, int64_t ms)
{
	(void)task;
	fail_msg("a plugin slept %lld ms: pacing is the scheduler's job", (long long)ms);
	return TG_EINVAL;
}

static bool svc_should_stop(struct tg_task *task)
{
	struct fake *f = F(task);

	return f->stop_after >= 0 && (int64_t)f->ncalls >= f->stop_after;
}

static void svc_progress(struct tg_task *task, int64_t done, int64_t total, const char *unit)
{
	struct fake *f = F(task);

	assert_non_null(unit);
	assert_true(done >= 0);
	assert_true(total < 0 || done <= total);
	f->progress_done = done;
	f->progress_total = total;
}

static int svc_lock(struct tg_task *task, const char *name, int64_t timeout_ms)
{
	(void)task;
	(void)name;
	(void)timeout_ms;
	return TG_OK;
}

static int svc_unlock(struct tg_task *task, const char *name)
{
	(void)task;
	(void)name;
	return TG_OK;
}

static bool ident_ok(const char *s)
{
	if (!s || !(*s == '_' || (*s >= 'a' && *s <= 'z')))
		return false;
	for (; *s; s++)
		if (!(*s == '_' || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')))
			return false;
	return true;
}

static int svc_table_declare(struct tg_task *task, const struct tg_table *table, char **errmsg)
{
	struct fake *f = F(task);
	struct db *db = db_cur(f);
	struct ftable *t;
	size_t i, nkeys = 0;

	(void)errmsg;
	assert_true(ident_ok(table->name));
	for (i = 0; i < table->ncolumns; i++) {
		assert_true(ident_ok(table->columns[i].name));
		assert_true(table->columns[i].type != TG_NULL);
		nkeys += table->columns[i].key;
	}
	assert_true(nkeys > 0);
	t = table_find(db, table->name);
	if (t) {
		/* Redeclared: the same columns (this fake does not migrate). */
		assert_int_equal(t->ncols, table->ncolumns);
		for (i = 0; i < t->ncols; i++)
			assert_string_equal(t->cols[i].name, table->columns[i].name);
		return TG_OK;
	}
	db->tables = xrealloc(db->tables, (db->ntables + 1) * sizeof(*db->tables));
	t = &db->tables[db->ntables++];
	memset(t, 0, sizeof(*t));
	t->name = xstrdup(table->name);
	t->ncols = table->ncolumns;
	t->cols = xcalloc(t->ncols, sizeof(*t->cols));
	for (i = 0; i < t->ncols; i++) {
		t->cols[i] = table->columns[i];
		t->cols[i].name = xstrdup(table->columns[i].name);
	}
	return TG_OK;
}

static int svc_begin(struct tg_task *task)
{
	struct fake *f = F(task);

	if (f->work)
		fail_msg("begin() inside an open transaction");
	f->work = xcalloc(1, sizeof(*f->work));
	db_copy(f->work, &f->committed);
	return TG_OK;
}

static int svc_commit(struct tg_task *task)
{
	struct fake *f = F(task);

	if (!f->work)
		fail_msg("commit() without begin()");
	db_release(&f->committed);
	f->committed = *f->work;
	free(f->work);
	f->work = NULL;
	f->commits++;
	return TG_OK;
}

static int svc_rollback(struct tg_task *task)
{
	struct fake *f = F(task);

	if (!f->work)
		fail_msg("rollback() without begin()");
	db_release(f->work);
	free(f->work);
	f->work = NULL;
	return TG_OK;
}

static struct ftable *table_need(struct fake *f, const char *name)
{
	struct ftable *t = table_find(db_cur(f), name);

	if (!t)
		fail_msg("table %s used before table_declare()", name);
	return t;
}

static int svc_upsert(struct tg_task *task, const char *table, const struct tg_value *values, size_t n)
{
	struct fake *f = F(task);

	if (++f->upserts == f->fail_upsert) {
		snprintf(f->last_error, sizeof(f->last_error), "%s", f->storage_reason);
		return TG_ESTORAGE;
	}
	table_upsert(table_need(f, table), values, n);
	return TG_OK;
}

static int svc_get(struct tg_task *task, const char *table, const struct tg_value *key, size_t nkey,
                   tg_row_fn fn, void *ud)
{
	struct ftable *t = table_need(F(task), table);
	long r;

	values_check(t, key, nkey, true);
	r = row_find(t, key, nkey);
	if (r < 0)
		return TG_ENOTFOUND;
	return fn(ud, t->rows[r], t->ncols);
}

static int svc_remove(struct tg_task *task, const char *table, const struct tg_value *key, size_t nkey)
{
	struct ftable *t = table_need(F(task), table);
	long r;
	size_t j;

	values_check(t, key, nkey, true);
	r = row_find(t, key, nkey);
	if (r < 0)
		return TG_OK;
	for (j = 0; j < t->ncols; j++)
		value_free(&t->rows[r][j]);
	free(t->rows[r]);
	memmove(&t->rows[r], &t->rows[r + 1], (t->nrows - (size_t)r - 1) * sizeof(*t->rows));
	t->nrows--;
	return TG_OK;
}

static bool filter_match(const struct ftable *t, struct tg_value *row, const struct tg_filter *flt)
{
	int c = col_index(t, flt->value.column);
	int cmp;

	if (c < 0)
		fail_msg("filter on unknown column %s", flt->value.column);
	/* As the host: a NULL operand is IS NULL / IS NOT NULL ... */
	if (flt->value.type == TG_NULL && (flt->op == TG_EQ || flt->op == TG_NE))
		return (row[c].type == TG_NULL) == (flt->op == TG_EQ);
	/* ... and SQL's other comparisons with NULL are never true. */
	if (row[c].type == TG_NULL || flt->value.type == TG_NULL)
		return false;
	cmp = value_cmp(&row[c], &flt->value);
	switch (flt->op) {
	case TG_EQ:
		return cmp == 0;
	case TG_NE:
		return cmp != 0;
	case TG_LT:
		return cmp < 0;
	case TG_LE:
		return cmp <= 0;
	case TG_GT:
		return cmp > 0;
	case TG_GE:
		return cmp >= 0;
	}
	return false;
}

static int sort_col;
static int sort_desc;

static int row_cmp(const void *a, const void *b)
{
	const struct tg_value *x = *(struct tg_value *const *)a, *y = *(struct tg_value *const *)b;
	int c = value_cmp(&x[sort_col], &y[sort_col]);

	return sort_desc ? -c : c;
}

bool fake_has_index(struct fake *f, const char *table, const char *column)
{
	char name[96];

	snprintf(name, sizeof(name), "%s.%s", table, column);
	for (size_t i = 0; i < f->nindexes; i++)
		if (!strcmp(f->indexes[i], name))
			return true;
	return false;
}

static int svc_table_index(struct tg_task *task, const char *table, const char *column, char **errmsg)
{
	struct fake *f = F(task);
	struct ftable *t = table_need(f, table);

	if (col_index(t, column) < 0)
		fail_msg("index on unknown column %s.%s", table, column);
	if (f->index_unsupported) {
		if (errmsg)
			*errmsg = xstrdup("storage backend 'fake' cannot create indexes");
		return TG_ENOTSUP;
	}
	if (!fake_has_index(f, table, column)) {
		assert_true(f->nindexes < sizeof(f->indexes) / sizeof(f->indexes[0]));
		snprintf(f->indexes[f->nindexes++], sizeof(f->indexes[0]), "%s.%s", table, column);
	}
	return TG_OK;
}

/* Whether an index as the host makes it (column, then the key columns)
 * serves the select: a filter on the column, and the order by that column,
 * by a key column behind column = value, or no order. */
static bool select_indexed(struct fake *f, const struct ftable *t, const struct tg_filter *filters,
                           size_t nfilters, const char *order_by)
{
	const char *by = order_by ? order_by + (order_by[0] == '-') : NULL;
	int by_col = by ? col_index(t, by) : -1;

	for (size_t k = 0; k < nfilters; k++) {
		const char *c = filters[k].value.column;

		if (!fake_has_index(f, t->name, c))
			continue;
		if (!by || !strcmp(by, c) || (filters[k].op == TG_EQ && by_col >= 0 && t->cols[by_col].key))
			return true;
	}
	return false;
}

void fake_index_unsupported(struct fake *f)
{
	f->index_unsupported = true;
}

size_t fake_unindexed_selects(struct fake *f, const char **last)
{
	if (last)
		*last = f->unindexed_last;
	return f->unindexed_selects;
}

static int svc_select(struct tg_task *task, const char *table, const struct tg_filter *filters,
                      size_t nfilters, const char *order_by, int64_t limit, tg_row_fn fn, void *ud)
{
	struct ftable *t = table_need(F(task), table);
	struct tg_value **sel = xcalloc(t->nrows, sizeof(*sel));
	size_t n = 0, i, k;
	int rc = 0;

	if (!select_indexed(F(task), t, filters, nfilters, order_by)) {
		F(task)->unindexed_selects++;
		snprintf(F(task)->unindexed_last, sizeof(F(task)->unindexed_last), "%s: %zu filters, first on %s, by %s",
		         table, nfilters, nfilters ? filters[0].value.column : "-", order_by ? order_by : "-");
	}

	for (i = 0; i < t->nrows; i++) {
		for (k = 0; k < nfilters; k++)
			if (!filter_match(t, t->rows[i], &filters[k]))
				break;
		if (k == nfilters)
			sel[n++] = t->rows[i];
	}
	if (order_by) {
		sort_desc = order_by[0] == '-';
		sort_col = col_index(t, order_by + sort_desc);
		if (sort_col < 0)
			fail_msg("order by unknown column %s", order_by);
		qsort(sel, n, sizeof(*sel), row_cmp);
	}
	for (i = 0; i < n && (limit < 0 || (int64_t)i < limit) && !rc; i++)
		rc = fn(ud, sel[i], t->ncols);
	free(sel);
	return rc;
}

static struct fstate *state_find(struct db *db, const char *key)
{
	size_t i;

	for (i = 0; i < db->nstate; i++)
		if (!strcmp(db->state[i].key, key))
			return &db->state[i];
	return NULL;
}

static int svc_state_get(struct tg_task *task, const char *key, char **value)
{
	struct fstate *s = state_find(db_cur(F(task)), key);

	if (F(task)->fail_state_get) {
		int rc = F(task)->fail_state_get;

		F(task)->fail_state_get = 0;
		return rc;
	}
	if (!s)
		return TG_ENOTFOUND;
	*value = xstrdup(s->value);
	return TG_OK;
}

static void db_state_set(struct db *db, const char *key, const char *value)
{
	struct fstate *s = state_find(db, key);

	assert_non_null(value);
	assert_true(strlen(value) < 65536); /* "small text values" */
	if (!s) {
		db->state = xrealloc(db->state, (db->nstate + 1) * sizeof(*db->state));
		s = &db->state[db->nstate++];
		s->key = xstrdup(key);
		s->value = NULL;
	}
	free(s->value);
	s->value = xstrdup(value);
}

static int svc_state_set(struct tg_task *task, const char *key, const char *value)
{
	db_state_set(db_cur(F(task)), key, value);
	return TG_OK;
}

static int64_t svc_budget_hint(struct tg_task *task)
{
	return F(task)->budget;
}

static void svc_free(void *p)
{
	free(p);
}

/* -------------------------------------------------------------- Keepa */

static const struct tg_cost *cost_decl(struct fake *f, const char *kind)
{
	size_t i;

	for (i = 0; i < f->plugin->ncosts; i++)
		if (!strcmp(f->plugin->costs[i].kind, kind))
			return &f->plugin->costs[i];
	fail_msg("plugin %s calls undeclared kind %s", f->plugin->name, kind ? kind : "(null)");
	return NULL;
}

static const char *param(const struct tg_keepa_request *req, const char *name)
{
	size_t i;

	for (i = 0; i < req->nparams; i++)
		if (!strcmp(req->params[i].name, name))
			return req->params[i].value;
	return NULL;
}

static cJSON *envelope(void)
{
	cJSON *r = cJSON_CreateObject();

	cJSON_AddNumberToObject(r, "timestamp", 1700000000000.0);
	cJSON_AddNumberToObject(r, "tokensLeft", 100);
	cJSON_AddNumberToObject(r, "refillIn", 30000);
	cJSON_AddNumberToObject(r, "refillRate", 5);
	cJSON_AddNumberToObject(r, "tokenFlowReduction", 0.0);
	cJSON_AddNumberToObject(r, "tokensConsumed", 5);
	return r;
}

/* What sortType 1 orders by (fake_keepa_deal_age). */
static const char *deal_age_field = "lastUpdate";

void fake_keepa_deal_age(struct fake *f, const char *field)
{
	(void)f;
	deal_age_field = field;
}

static int last_update_cmp(const void *a, const void *b)
{
	const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
	const cJSON *ux = cJSON_GetObjectItemCaseSensitive(x, deal_age_field);
	const cJSON *uy = cJSON_GetObjectItemCaseSensitive(y, deal_age_field);
	double dx = cJSON_IsNumber(ux) ? ux->valuedouble : -1e18,
	       dy = cJSON_IsNumber(uy) ? uy->valuedouble : -1e18;

	return (dx < dy) - (dx > dy);
}

static cJSON *answer_deals(struct fake *f, const cJSON *sel, int page, int sort)
{
	size_t n = (size_t)cJSON_GetArraySize(f->deals), i, from, to;
	const cJSON **order = xcalloc(n, sizeof(*order));
	cJSON *r = envelope(), *deals = cJSON_AddObjectToObject(r, "deals"),
	      *dr = cJSON_AddArrayToObject(deals, "dr");
	const cJSON *d;
	cJSON *counts;

	(void)sel;
	i = 0;
	cJSON_ArrayForEach(d, f->deals) order[i++] = d;
	if (sort == 1) {
		/* Stable: mergesort-free insertion sort keeps insertion order on ties. */
		for (i = 1; i < n; i++) {
			const cJSON *x = order[i];
			size_t j = i;

			while (j > 0 && last_update_cmp(&order[j - 1], &x) > 0) {
				order[j] = order[j - 1];
				j--;
			}
			order[j] = x;
		}
	}
	if (n > 10000)
		n = 10000;
	from = (size_t)page * 150;
	to = from + 150 < n ? from + 150 : n;
	for (i = from; i < to; i++)
		cJSON_AddItemToArray(dr, cJSON_Duplicate(order[i], true));
	counts = cJSON_AddArrayToObject(deals, "categoryCount");
	cJSON_AddItemToArray(counts, cJSON_CreateNumber((double)n));
	free(order);
	return r;
}

static bool numbers_only(const cJSON *item)
{
	const cJSON *c;

	if (cJSON_IsNumber(item))
		return true;
	if (!cJSON_IsArray(item))
		return false;
	cJSON_ArrayForEach(c, item) if (!numbers_only(c)) return false;
	return true;
}

static int svc_keepa_call(struct tg_task *task, const struct tg_keepa_request *req, struct cJSON **response,
                          char **errmsg)
{
	struct fake *f = F(task);
	const struct tg_cost *cost;
	struct fake_call *call;
	cJSON *sel = NULL;
	size_t i;

	assert_non_null(req);
	assert_non_null(response);
	cost = cost_decl(f, req->kind);
	if (req->units <= 0)
		fail_msg("keepa_call %s with units %lld", req->kind, (long long)req->units);
	if (f->work)
		fail_msg("keepa_call %s inside an open transaction", req->kind);
	for (i = 0; i < req->nparams; i++) {
		assert_non_null(req->params[i].name);
		assert_non_null(req->params[i].value);
		if (!strcmp(req->params[i].name, "key"))
			fail_msg("a plugin sent a key parameter");
	}

	f->calls = xrealloc(f->calls, (f->ncalls + 1) * sizeof(*f->calls));
	call = &f->calls[f->ncalls++];
	memset(call, 0, sizeof(*call));
	call->kind = xstrdup(req->kind);
	call->path = xstrdup(req->path);
	if (!strcmp(req->kind, "deal"))
		f->now_ms += f->deal_call_ms;
	call->units = req->units;
	call->page = -1;

	if (!strcmp(req->path, "/deal")) {
		const char *fields[] = {"domainId", "priceTypes", "dateRange", "sortType", "page"};

		assert_string_equal(req->kind, "deal");
		assert_int_equal(req->units, 1);
		assert_non_null(req->json_body);
		sel = cJSON_Parse(req->json_body);
		assert_non_null(sel);
		for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
			const cJSON *m = cJSON_GetObjectItemCaseSensitive(sel, fields[i]);

			if (m && !numbers_only(m))
				fail_msg("/deal selection: %s is not a number", fields[i]);
		}
		assert_true(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(sel, "domainId")));
		assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(sel, "priceTypes")), 1);
		assert_true(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(sel, "page")));
		call->page = cJSON_GetObjectItemCaseSensitive(sel, "page")->valueint;
		if (cJSON_GetObjectItemCaseSensitive(sel, "sortType"))
			call->sort = cJSON_GetObjectItemCaseSensitive(sel, "sortType")->valueint;
		assert_true(call->page >= 0 && call->page < 67);
		snprintf(f->pages + strlen(f->pages), sizeof(f->pages) - strlen(f->pages), "%s%d",
		         f->pages[0] ? "," : "", call->page);
	} else if (!strcmp(req->path, "/product")) {
		const char *asins = param(req, "asin"), *offers = param(req, "offers"), *p;
		int64_t n = 1, per = 1;

		assert_null(req->json_body);
		assert_non_null(param(req, "domain"));
		assert_non_null(asins);
		assert_true(*asins);
		for (p = asins; *p; p++)
			n += *p == ',';
		assert_true(n <= 100);
		if (offers) {
			long o = strtol(offers, NULL, 10);

			assert_true(o >= 20 && o <= 100);
			per = (o + 9) / 10;
		}
		if (req->units != n * per)
			fail_msg("/product of %lld ASINs (offers %s) declared %lld units", (long long)n,
			         offers ? offers : "none", (long long)req->units);
		call->asins = xstrdup(asins);
	} else {
		fail_msg("unexpected path %s", req->path);
	}

	*response = NULL;
	for (i = 0; i < f->nfails; i++) {
		if (f->fails[i].n == (int64_t)f->ncalls) {
			call->rc = f->fails[i].code;
			if (errmsg)
				*errmsg = xstrdup(f->fails[i].msg);
			cJSON_Delete(sel);
			return f->fails[i].code;
		}
	}
	if (f->max_cost > 0 && cost->fixed + cost->per_unit * (double)req->units > f->max_cost) {
		call->rc = TG_EOVERSIZE;
		if (errmsg)
			*errmsg = xstrdup("oversize");
		cJSON_Delete(sel);
		return TG_EOVERSIZE;
	}

	if (sel) {
		for (i = 0; i < f->nraw; i++) {
			if (f->raw[i].json && f->raw[i].page == call->page) {
				*response = cJSON_Parse(f->raw[i].json);
				assert_non_null(*response);
				free(f->raw[i].json);
				f->raw[i].json = NULL;
				cJSON_Delete(sel);
				return TG_OK;
			}
		}
		*response = answer_deals(f, sel, call->page, call->sort);
		cJSON_Delete(sel);
	} else {
		char *list = xstrdup(call->asins), *save = NULL, *tok;
		cJSON *r = envelope(), *products = cJSON_AddArrayToObject(r, "products");

		for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			const cJSON *p = cJSON_GetObjectItemCaseSensitive(f->products, tok);

			if (p)
				cJSON_AddItemToArray(products, cJSON_Duplicate(p, true));
		}
		free(list);
		*response = r;
	}
	return TG_OK;
}

static const char *svc_last_error(struct tg_task *task)
{
	return F(task)->last_error;
}

static void svc_not_before_ms(struct tg_task *task, int64_t ms)
{
	F(task)->not_before_ms = ms;
}

int64_t fake_take_not_before_ms(struct fake *f)
{
	int64_t ms = f->not_before_ms;

	f->not_before_ms = -1;
	return ms;
}

/* ------------------------------------------------------------- set-up */

struct fake *fake_new(const struct tg_plugin *plugin)
{
	struct fake *f = xcalloc(1, sizeof(*f));

	f->not_before_ms = -1;
	deal_age_field = "lastUpdate";
	f->plugin = plugin;
	f->svc = (struct tg_services){
	    .struct_size = sizeof(struct tg_services),
	    .log = svc_log,
	    .setting_int = svc_setting_int,
	    .setting_real = svc_setting_real,
	    .setting_bool = svc_setting_bool,
	    .setting_string = svc_setting_string,
	    .setting_json = svc_setting_json,
	    .now_ms = svc_now_ms,
	    .sleep_ms = svc_sleep_ms,
	    .should_stop = svc_should_stop,
	    .progress = svc_progress,
	    .lock = svc_lock,
	    .unlock = svc_unlock,
	    .table_declare = svc_table_declare,
	    .begin = svc_begin,
	    .commit = svc_commit,
	    .rollback = svc_rollback,
	    .upsert = svc_upsert,
	    .get = svc_get,
	    .remove = svc_remove,
	    .select = svc_select,
	    .state_get = svc_state_get,
	    .state_set = svc_state_set,
	    .keepa_call = svc_keepa_call,
	    .budget_hint = svc_budget_hint,
	    .free = svc_free,
	    .last_error = svc_last_error,
	    .not_before_ms = svc_not_before_ms,
	    .table_index = svc_table_index,
	};
	f->now_ms = 1700000000000LL;
	f->budget = 100;
	f->stop_after = -1;
	f->deals = cJSON_CreateArray();
	f->products = cJSON_CreateObject();
	f->progress_total = -1;
	return f;
}

void fake_free(struct fake *f)
{
	size_t i;

	if (!f)
		return;
	if (f->work) {
		db_release(f->work);
		free(f->work);
	}
	db_release(&f->committed);
	for (i = 0; i < f->nsettings; i++) {
		free(f->settings[i].name);
		free(f->settings[i].s);
	}
	free(f->settings);
	cJSON_Delete(f->deals);
	cJSON_Delete(f->products);
	for (i = 0; i < f->nfails; i++)
		free(f->fails[i].msg);
	for (i = 0; i < f->nraw; i++)
		free(f->raw[i].json);
	for (i = 0; i < f->ncalls; i++) {
		free(f->calls[i].kind);
		free(f->calls[i].path);
		free(f->calls[i].asins);
	}
	free(f->calls);
	for (i = 0; i < f->nlogs; i++)
		free(f->logs[i]);
	free(f->logs);
	free(f);
}

void fake_use_plugin(struct fake *f, const struct tg_plugin *plugin)
{
	f->plugin = plugin;
}

const struct tg_services *fake_services(struct fake *f)
{
	return &f->svc;
}

struct tg_task *fake_task(struct fake *f)
{
	return (struct tg_task *)f;
}

static struct fsetting *setting_put(struct fake *f, const char *name, enum tg_setting_type type)
{
	struct fsetting *s = setting_find(f, name);

	if (!s) {
		f->settings = xrealloc(f->settings, (f->nsettings + 1) * sizeof(*f->settings));
		s = &f->settings[f->nsettings++];
		memset(s, 0, sizeof(*s));
		s->name = xstrdup(name);
	}
	free(s->s);
	s->s = NULL;
	s->type = type;
	return s;
}

void fake_set_int(struct fake *f, const char *name, int64_t v)
{
	setting_put(f, name, TG_SETTING_INT)->i = v;
}

void fake_set_real(struct fake *f, const char *name, double v)
{
	setting_put(f, name, TG_SETTING_REAL)->r = v;
}

void fake_set_bool(struct fake *f, const char *name, bool v)
{
	setting_put(f, name, TG_SETTING_BOOL)->b = v;
}

void fake_set_string(struct fake *f, const char *name, const char *v)
{
	setting_put(f, name, TG_SETTING_STRING)->s = xstrdup(v);
}

void fake_set_json(struct fake *f, const char *name, const char *json)
{
	cJSON *check = cJSON_Parse(json);

	assert_non_null(check);
	cJSON_Delete(check);
	setting_put(f, name, TG_SETTING_GROUP)->s = xstrdup(json);
}

void fake_set_now(struct fake *f, int64_t unix_s)
{
	f->now_ms = unix_s * 1000;
}

void fake_advance(struct fake *f, int64_t seconds)
{
	f->now_ms += seconds * 1000;
}

void fake_set_deal_call_ms(struct fake *f, int64_t ms)
{
	f->deal_call_ms = ms;
}

void fake_set_budget(struct fake *f, int64_t tokens)
{
	f->budget = tokens;
}

void fake_stop_after_calls(struct fake *f, int64_t calls)
{
	f->stop_after = calls;
}

void fake_keepa_add_deal(struct fake *f, const char *json)
{
	cJSON *d = cJSON_Parse(json);

	assert_non_null(d);
	cJSON_AddItemToArray(f->deals, d);
}

void fake_keepa_clear_deals(struct fake *f)
{
	cJSON_Delete(f->deals);
	f->deals = cJSON_CreateArray();
}

void fake_keepa_set_product(struct fake *f, const char *asin, const char *json)
{
	cJSON *p = cJSON_Parse(json);

	assert_non_null(p);
	cJSON_DeleteItemFromObjectCaseSensitive(f->products, asin);
	cJSON_AddItemToObject(f->products, asin, p);
}

void fake_keepa_remove_product(struct fake *f, const char *asin)
{
	cJSON_DeleteItemFromObjectCaseSensitive(f->products, asin);
}

void fake_keepa_fail_call(struct fake *f, int64_t n, int code, const char *msg)
{
	assert_true(f->nfails < sizeof(f->fails) / sizeof(f->fails[0]));
	f->fails[f->nfails].n = n;
	f->fails[f->nfails].code = code;
	f->fails[f->nfails].msg = xstrdup(msg);
	f->nfails++;
}

void fake_keepa_raw_page(struct fake *f, int page, const char *json)
{
	assert_true(f->nraw < sizeof(f->raw) / sizeof(f->raw[0]));
	f->raw[f->nraw].page = page;
	f->raw[f->nraw].json = xstrdup(json);
	f->nraw++;
}

void fake_fail_upsert(struct fake *f, int64_t n)
{
	f->fail_upsert = n;
}

void fake_storage_reason(struct fake *f, const char *reason)
{
	snprintf(f->storage_reason, sizeof(f->storage_reason), "%s", reason);
}

void fake_services_abi_1_0(struct fake *f)
{
	fake_services_abi_1_1(f);
	f->svc.struct_size = offsetof(struct tg_services, last_error);
	f->svc.last_error = NULL;
}

void fake_services_abi_1_1(struct fake *f)
{
	fake_services_abi_1_2(f);
	f->svc.struct_size = offsetof(struct tg_services, not_before_ms);
	f->svc.not_before_ms = NULL;
}

void fake_services_abi_1_2(struct fake *f)
{
	f->svc.struct_size = offsetof(struct tg_services, table_index);
	f->svc.table_index = NULL;
}

void fake_fail_state_get(struct fake *f, int code)
{
	f->fail_state_get = code;
}

void fake_keepa_max_cost(struct fake *f, double max_tokens)
{
	f->max_cost = max_tokens;
}

char *fake_deal_json(const char *asin, int pt, int64_t current, int64_t avg, int64_t last_update_km)
{
	cJSON *d = cJSON_CreateObject(), *cur = cJSON_CreateArray(), *av = cJSON_CreateArray(),
	      *dp = cJSON_CreateArray();
	char *text;
	int r, i;

	cJSON_AddStringToObject(d, "asin", asin);
	cJSON_AddStringToObject(d, "title", "A title");
	cJSON_AddNumberToObject(d, "rootCat", 283155);
	for (i = 0; i <= pt; i++)
		cJSON_AddItemToArray(cur, cJSON_CreateNumber(i == pt ? (double)current : -1));
	for (r = 0; r < 4; r++) {
		cJSON *a = cJSON_CreateArray(), *p = cJSON_CreateArray();

		for (i = 0; i <= pt; i++) {
			cJSON_AddItemToArray(a, cJSON_CreateNumber(i == pt ? (double)avg : -1));
			cJSON_AddItemToArray(p, cJSON_CreateNumber(i == pt && avg > 0
			                                               ? (double)((avg - current) * 100 / avg)
			                                               : -1));
		}
		cJSON_AddItemToArray(av, a);
		cJSON_AddItemToArray(dp, p);
	}
	cJSON_AddItemToObject(d, "current", cur);
	cJSON_AddItemToObject(d, "avg", av);
	cJSON_AddItemToObject(d, "deltaPercent", dp);
	cJSON_AddNumberToObject(d, "creationDate", (double)(last_update_km - 100));
	cJSON_AddNumberToObject(d, "lastUpdate", (double)last_update_km);
	text = cJSON_PrintUnformatted(d);
	cJSON_Delete(d);
	return text;
}

char *fake_product_json(const char *asin, int64_t amazon, int64_t new_, int64_t used, int64_t rank)
{
	char *text = NULL;

	assert_true(asprintf(&text,
	                     "{\"asin\":\"%s\",\"title\":\"P %s\",\"rootCategory\":283155,\"stats\":{"
	                     "\"current\":[%lld,%lld,%lld,%lld,-1,-1,-1,-1,-1,-1,-1,7,12],"
	                     "\"avg90\":[-1,-1,-1,%lld],\"salesRankDrops30\":4,\"salesRankDrops90\":11}}",
	                     asin, asin, (long long)amazon, (long long)new_, (long long)used, (long long)rank,
	                     (long long)(rank * 2)) > 0);
	return text;
}

/* --------------------------------------------------------- inspection */

size_t fake_ncalls(struct fake *f)
{
	return f->ncalls;
}

const struct fake_call *fake_call(struct fake *f, size_t i)
{
	assert_true(i < f->ncalls);
	return &f->calls[i];
}

size_t fake_count_calls(struct fake *f, const char *path)
{
	size_t i, n = 0;

	for (i = 0; i < f->ncalls; i++)
		n += !strcmp(f->calls[i].path, path);
	return n;
}

size_t fake_product_asks(struct fake *f, const char *asin)
{
	size_t i, n = 0, len = strlen(asin);

	for (i = 0; i < f->ncalls; i++) {
		const char *p = f->calls[i].asins;

		/* Only answered calls count: a refused call fetched nothing. */
		if (!p || f->calls[i].rc)
			continue;
		while ((p = strstr(p, asin))) {
			bool start = p == f->calls[i].asins || p[-1] == ',';
			bool end = p[len] == ',' || p[len] == '\0';

			n += start && end;
			p += len;
		}
	}
	return n;
}

const char *fake_pages(struct fake *f)
{
	return f->pages;
}

size_t fake_log_count(struct fake *f, const char *substring)
{
	size_t i, n = 0;

	for (i = 0; i < f->nlogs; i++)
		n += strstr(f->logs[i], substring) != NULL;
	return n;
}

int64_t fake_progress_done(struct fake *f)
{
	return f->progress_done;
}

int64_t fake_progress_total(struct fake *f)
{
	return f->progress_total;
}

size_t fake_commits(struct fake *f)
{
	return f->commits;
}

size_t fake_nrows(struct fake *f, const char *table)
{
	struct ftable *t = table_find(db_cur(f), table);

	return t ? t->nrows : 0;
}

static struct tg_value *cell(struct fake *f, const char *table, int64_t domain, const char *asin,
                             const char *column)
{
	struct ftable *t = table_find(db_cur(f), table);
	struct tg_value key[2] = {TG_VINT("domain", domain), TG_VTEXT("asin", asin)};
	long r;
	int c;

	if (!t)
		return NULL;
	r = row_find(t, key, 2);
	if (r < 0)
		return NULL;
	c = col_index(t, column);
	if (c < 0)
		fail_msg("no column %s", column);
	return &t->rows[r][c];
}

int fake_cell_int(struct fake *f, const char *table, int64_t domain, const char *asin, const char *column,
                  int64_t *out)
{
	struct tg_value *v = cell(f, table, domain, asin, column);

	if (!v)
		return TG_ENOTFOUND;
	if (v->type == TG_NULL)
		return 1;
	assert_int_equal(v->type, TG_INT);
	*out = v->v.i;
	return 0;
}

const char *fake_cell_text(struct fake *f, const char *table, int64_t domain, const char *asin,
                           const char *column)
{
	struct tg_value *v = cell(f, table, domain, asin, column);

	if (!v || v->type == TG_NULL)
		return NULL;
	assert_int_equal(v->type, TG_TEXT);
	return v->v.s;
}

bool fake_has_row(struct fake *f, const char *table, int64_t domain, const char *asin)
{
	struct ftable *t = table_find(db_cur(f), table);
	struct tg_value key[2] = {TG_VINT("domain", domain), TG_VTEXT("asin", asin)};

	return t && row_find(t, key, 2) >= 0;
}

void fake_put_row(struct fake *f, const char *table, const struct tg_value *values, size_t n)
{
	struct ftable *t = table_find(db_cur(f), table);

	assert_non_null(t);
	table_upsert(t, values, n);
}

const char *fake_state(struct fake *f, const char *key)
{
	struct fstate *s = state_find(&f->committed, key);

	return s ? s->value : NULL;
}

void fake_set_state(struct fake *f, const char *key, const char *value)
{
	db_state_set(&f->committed, key, value);
}

void fake_crash(struct fake *f)
{
	if (f->work) {
		db_release(f->work);
		free(f->work);
		f->work = NULL;
	}
}

bool fake_in_transaction(struct fake *f)
{
	return f->work != NULL;
}
