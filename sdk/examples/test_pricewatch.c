/*
 * test_pricewatch.c - unit tests of the pricewatch plugin with a fake
 * services table: no daemon, no network, no database.
 *
 * A plugin never links against the host, so a test links the plugin's
 * source with its own struct tg_services whose functions record what the
 * plugin asked for: a fake Keepa that answers /product from a price table
 * the test controls, and in-memory storage and checkpoint state that honour
 * begin/commit.
 *   meson test -C build
 */
/* The checks are the test: keep them in every build type. */
#undef NDEBUG
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <tollgate/tollgate.h>

#define NASIN 5

/* The host's view of a task is opaque to plugins: the test defines its own. */
struct tg_task {
	int unused;
};

static struct fake {
	/* settings */
	const char *asins[8];
	size_t nasins;
	int64_t price_type;
	/* the fake Keepa: the price of asin i is price[i] (-1: no offer) */
	const char *catalog[NASIN];
	int64_t price[NASIN];
	int64_t max_units; /* a call with more units is TG_EOVERSIZE */
	int64_t hint;
	int calls, oversize;
	int64_t units;
	/* storage: pricewatch_prices by catalog index, and the changes */
	int stored[NASIN];
	int64_t stored_price[NASIN];
	int changes, changed_at_writes;
	int64_t last_old, last_new;
	int in_tx;
	char state[64], pending[64];
	int stop_after_calls; /* should_stop() turns true after this many calls (0: never) */
} F;

static struct tg_task task;

static int catalog_index(const char *asin)
{
	int i;

	for (i = 0; i < NASIN; i++)
		if (!strcmp(F.catalog[i], asin))
			return i;
	return -1;
}

static void fake_log(struct tg_task *t, enum tg_log_level level, const char *fmt, ...)
{
	va_list ap;

	(void)t;
	(void)level;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int fake_setting_int(struct tg_task *t, const char *name, int64_t *out)
{
	(void)t;
	if (!strcmp(name, "domain"))
		*out = 1;
	else if (!strcmp(name, "price_type"))
		*out = F.price_type;
	else
		return TG_ENOTFOUND;
	return TG_OK;
}

static int fake_setting_json(struct tg_task *t, const char *name, struct cJSON **out)
{
	size_t i;

	(void)t;
	if (strcmp(name, "asins") || !F.nasins)
		return TG_ENOTFOUND;
	*out = cJSON_CreateArray();
	for (i = 0; i < F.nasins; i++)
		cJSON_AddItemToArray(*out, cJSON_CreateString(F.asins[i]));
	return TG_OK;
}

static int64_t fake_now_ms(struct tg_task *t)
{
	(void)t;
	return 1700000000000LL + F.calls * 1000LL;
}

static bool fake_should_stop(struct tg_task *t)
{
	(void)t;
	return F.stop_after_calls && F.calls >= F.stop_after_calls;
}

static void fake_progress(struct tg_task *t, int64_t done, int64_t total, const char *unit)
{
	(void)t;
	assert(done >= 0 && done <= total && !strcmp(unit, "asin"));
}

static int fake_table_declare(struct tg_task *t, const struct tg_table *table, char **errmsg)
{
	(void)t;
	(void)errmsg;
	assert(!strcmp(table->name, "pricewatch_prices") || !strcmp(table->name, "pricewatch_changes"));
	return TG_OK;
}

static int fake_begin(struct tg_task *t)
{
	(void)t;
	assert(!F.in_tx);
	F.in_tx = 1;
	F.pending[0] = '\0';
	return TG_OK;
}

static int fake_commit(struct tg_task *t)
{
	(void)t;
	assert(F.in_tx);
	F.in_tx = 0;
	if (F.pending[0])
		snprintf(F.state, sizeof(F.state), "%s", F.pending);
	return TG_OK;
}

static int fake_rollback(struct tg_task *t)
{
	(void)t;
	F.in_tx = 0;
	return TG_OK;
}

static const struct tg_value *value(const struct tg_value *v, size_t n, const char *column)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(v[i].column, column))
			return &v[i];
	return NULL;
}

static int64_t cents_of(const struct tg_value *v)
{
	assert(v);
	return v->type == TG_NULL ? -1 : v->v.i;
}

static int fake_upsert(struct tg_task *t, const char *table, const struct tg_value *v, size_t n)
{
	const struct tg_value *asin = value(v, n, "asin");
	int i;

	(void)t;
	assert(F.in_tx && asin && asin->type == TG_TEXT);
	i = catalog_index(asin->v.s);
	assert(i >= 0);
	if (!strcmp(table, "pricewatch_prices")) {
		F.stored[i] = 1;
		F.stored_price[i] = cents_of(value(v, n, "price_cents"));
		F.changed_at_writes += value(v, n, "changed_at") != NULL;
	} else {
		assert(!strcmp(table, "pricewatch_changes") && value(v, n, "at"));
		F.changes++;
		F.last_old = cents_of(value(v, n, "old_cents"));
		F.last_new = cents_of(value(v, n, "new_cents"));
	}
	return TG_OK;
}

static int fake_get(struct tg_task *t, const char *table, const struct tg_value *key, size_t nkey,
                    tg_row_fn fn, void *ud)
{
	const struct tg_value *asin = value(key, nkey, "asin");
	struct tg_value row[3];
	int i;

	(void)t;
	assert(!strcmp(table, "pricewatch_prices") && asin);
	i = catalog_index(asin->v.s);
	if (i < 0 || !F.stored[i])
		return TG_ENOTFOUND;
	row[0] = TG_VINT("domain", 1);
	row[1] = TG_VTEXT("asin", F.catalog[i]);
	row[2] = F.stored_price[i] < 0 ? TG_VNULL("price_cents") : TG_VINT("price_cents", F.stored_price[i]);
	fn(ud, row, 3);
	return TG_OK;
}

static int fake_state_get(struct tg_task *t, const char *key, char **out)
{
	(void)t;
	assert(!strcmp(key, "cursor"));
	if (!F.state[0])
		return TG_ENOTFOUND;
	*out = strdup(F.state);
	return *out ? TG_OK : TG_ENOMEM;
}

static int fake_state_set(struct tg_task *t, const char *key, const char *v)
{
	(void)t;
	assert(F.in_tx && !strcmp(key, "cursor")); /* the checkpoint commits with the rows */
	snprintf(F.pending, sizeof(F.pending), "%s", v);
	return TG_OK;
}

static const char *param(const struct tg_keepa_request *req, const char *name)
{
	size_t i;

	for (i = 0; i < req->nparams; i++)
		if (!strcmp(req->params[i].name, name))
			return req->params[i].value;
	return NULL;
}

/* Answers /product like Keepa: the products found, stats.current per type. */
static int fake_keepa_call(struct tg_task *t, const struct tg_keepa_request *req, struct cJSON **response,
                           char **errmsg)
{
	char csv[512], *save = NULL, *a;
	cJSON *products;

	(void)t;
	(void)errmsg;
	assert(!F.in_tx); /* never hold a transaction while waiting for tokens */
	assert(!strcmp(req->kind, "product") && !strcmp(req->path, "/product"));
	assert(!strcmp(param(req, "history"), "0"));
	if (req->units > F.max_units) {
		F.oversize++;
		return TG_EOVERSIZE;
	}
	F.calls++;
	F.units += req->units;
	*response = cJSON_CreateObject();
	products = cJSON_AddArrayToObject(*response, "products");
	snprintf(csv, sizeof(csv), "%s", param(req, "asin"));
	for (a = strtok_r(csv, ",", &save); a; a = strtok_r(NULL, ",", &save)) {
		int i = catalog_index(a);
		cJSON *p, *stats, *cur;

		if (i < 0)
			continue; /* Keepa returns (and charges) only what it knows */
		p = cJSON_CreateObject();
		cJSON_AddStringToObject(p, "asin", a);
		cJSON_AddStringToObject(p, "title", "a title");
		stats = cJSON_AddObjectToObject(p, "stats");
		cur = cJSON_AddArrayToObject(stats, "current");
		cJSON_AddItemToArray(cur, cJSON_CreateNumber(-1));
		cJSON_AddItemToArray(cur, cJSON_CreateNumber((double)F.price[i]));
		cJSON_AddItemToArray(cur, cJSON_CreateNumber(-1));
		cJSON_AddItemToArray(products, p);
	}
	return TG_OK;
}

static int64_t fake_budget_hint(struct tg_task *t)
{
	(void)t;
	return F.hint;
}

static const struct tg_services svc = {
    .struct_size = sizeof(struct tg_services),
    .log = fake_log,
    .setting_int = fake_setting_int,
    .setting_json = fake_setting_json,
    .now_ms = fake_now_ms,
    .should_stop = fake_should_stop,
    .progress = fake_progress,
    .table_declare = fake_table_declare,
    .begin = fake_begin,
    .commit = fake_commit,
    .rollback = fake_rollback,
    .upsert = fake_upsert,
    .get = fake_get,
    .state_get = fake_state_get,
    .state_set = fake_state_set,
    .keepa_call = fake_keepa_call,
    .budget_hint = fake_budget_hint,
    .free = free,
};

static void reset(void)
{
	static const char *catalog[NASIN] = {"B000000001", "B000000002", "B000000003", "B000000004",
	                                     "B000000005"};
	size_t i;

	memset(&F, 0, sizeof(F));
	for (i = 0; i < NASIN; i++) {
		F.catalog[i] = catalog[i];
		F.asins[i] = catalog[i];
		F.price[i] = 1000 + 100 * (int64_t)i;
	}
	F.nasins = NASIN;
	F.price_type = 1;
	F.max_units = 100;
	F.hint = 2;
}

static void *start(const struct tg_plugin *pl)
{
	void *state = NULL;
	char *err = NULL;
	int rc = pl->init(&task, &svc, &state, &err);

	if (rc)
		fprintf(stderr, "init: %s\n", err ? err : "?");
	assert(rc == TG_OK && state && !err);
	return state;
}

static int run(const struct tg_plugin *pl, void *state)
{
	int64_t idle = 60;
	char *err = NULL;
	int rc = pl->run(state, &idle, &err);

	free(err);
	return rc;
}

static void test_descriptor(const struct tg_plugin *pl)
{
	assert(pl->abi_major == TG_ABI_MAJOR && pl->abi_minor <= TG_ABI_MINOR);
	assert(pl->struct_size == sizeof(struct tg_plugin));
	assert(!strcmp(pl->name, "pricewatch"));
	assert(pl->ncosts == 1 && !strcmp(pl->costs[0].kind, "product") && pl->costs[0].per_unit == 1);
}

/* One run visits every ASIN in batches of budget_hint, then a price moves. */
static void test_watch_and_change(const struct tg_plugin *pl)
{
	void *state;
	int i;

	reset();
	state = start(pl);
	assert(run(pl, state) == TG_OK);
	assert(F.calls == 3 && F.units == NASIN); /* 2 + 2 + 1 */
	for (i = 0; i < NASIN; i++)
		assert(F.stored[i] && F.stored_price[i] == F.price[i]);
	assert(F.changes == 0); /* a first sighting is not a change */
	assert(F.changed_at_writes == NASIN);
	assert(!strcmp(F.state, "v1 0"));

	F.price[3] = 777;
	F.price[4] = -1; /* out of stock */
	assert(run(pl, state) == TG_OK);
	assert(F.changes == 2 && F.stored_price[3] == 777 && F.stored_price[4] == -1);
	assert(F.last_old == 1400 && F.last_new == -1 && F.changed_at_writes == NASIN + 2);
	assert(run(pl, state) == TG_OK);
	assert(F.changes == 2 && F.changed_at_writes == NASIN + 2); /* nothing moved */
	pl->destroy(state);
	printf("ok - watch, change, no change\n");
}

/* TG_EOVERSIZE halves the batch instead of failing the run. */
static void test_oversize_splits(const struct tg_plugin *pl)
{
	void *state;

	reset();
	F.hint = 100;
	F.max_units = 2;
	state = start(pl);
	assert(run(pl, state) == TG_OK);
	assert(F.oversize >= 1 && F.units == NASIN);
	pl->destroy(state);
	printf("ok - oversize splits\n");
}

/* A stop between batches returns TG_ESTOPPED; the next run resumes at the
 * committed checkpoint. */
static void test_stop_and_resume(const struct tg_plugin *pl)
{
	void *state;

	reset();
	F.stop_after_calls = 1;
	state = start(pl);
	assert(run(pl, state) == TG_ESTOPPED);
	assert(F.calls == 1 && !strcmp(F.state, "v1 2"));
	assert(F.stored[0] && F.stored[1] && !F.stored[2]);
	F.stop_after_calls = 0;
	assert(run(pl, state) == TG_OK);
	assert(F.calls == 4 && F.stored[2] && F.stored[4] && !strcmp(F.state, "v1 2"));
	pl->destroy(state);
	printf("ok - stop and resume\n");
}

static void test_bad_settings(const struct tg_plugin *pl)
{
	void *state = NULL;
	char *err = NULL;

	reset();
	F.asins[1] = "not-an-asin";
	assert(pl->init(&task, &svc, &state, &err) == TG_EINVAL && err && strstr(err, "item 2"));
	free(err);
	err = NULL;
	reset();
	F.nasins = 0;
	assert(pl->init(&task, &svc, &state, &err) == TG_EINVAL && err && strstr(err, "required"));
	free(err);
	err = NULL;
	reset();
	F.price_type = 7;
	assert(pl->init(&task, &svc, &state, &err) == TG_EINVAL && err && strstr(err, "price_type"));
	free(err);
	printf("ok - bad settings are refused with a message\n");
}

int main(void)
{
	const struct tg_plugin *pl = TG_PLUGIN_ENTRY();

	test_descriptor(pl);
	test_watch_and_change(pl);
	test_oversize_splits(pl);
	test_stop_and_resume(pl);
	test_bad_settings(pl);
	return 0;
}
