/*
 * pricewatch - an example third-party tollgate plugin.
 *
 * It watches a list of ASINs: every run it asks Keepa's /product for their
 * current price (stats only, no history: 1 token per ASIN), keeps the last
 * price of each in the table pricewatch_prices and records every change in
 * pricewatch_changes. A long list is walked in batches sized from the
 * scheduler's budget hint; the position in the list is the task's
 * checkpoint, written in the same transaction as the rows of its batch, so a
 * restart resumes where the last committed batch ended and never records a
 * change twice.
 *
 * It includes only <tollgate/tollgate.h>, system headers and cJSON, never a
 * host header, and exports only tollgate_plugin_v1 (built with
 * -fvisibility=hidden). Build it out of tree:
 *   meson setup build && ninja -C build && sudo ninja -C build install
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <tollgate/tollgate.h>

#define PW_NAME "pricewatch"
#define PW_MAX_BATCH 100 /* /product takes at most 100 ASINs */
#define PW_ASIN_MAX 20

/* The only kind of call this plugin makes, and its price: the scheduler
 * reserves 1 token per ASIN before sending (Keepa charges only for the
 * products it finds, and the host learns that from tokensConsumed). */
static const struct tg_cost costs[] = {
    {"product", "asin", 0, 1, "/product stats only, no history: 1 per ASIN"},
};

static const struct tg_setting settings[] = {
    {"asins", TG_SETTING_LIST, NULL, "the ASINs to watch, a list of strings (required)"},
    {"domain", TG_SETTING_INT, "1", "Amazon locale: 1 com, 2 co.uk, 3 de, ..."},
    {"price_type", TG_SETTING_INT, "1", "Keepa price type to watch: 0 Amazon, 1 New, 2 Used"},
};

static const struct tg_column price_columns[] = {
    {"domain", TG_INT, true},      {"asin", TG_TEXT, true},
    {"title", TG_TEXT, false},     {"price_cents", TG_INT, false}, /* NULL: no offer */
    {"checked_at", TG_INT, false}, {"changed_at", TG_INT, false},
};
static const struct tg_table prices_table = {"pricewatch_prices", price_columns,
                                             sizeof(price_columns) / sizeof(price_columns[0])};

static const struct tg_column change_columns[] = {
    {"domain", TG_INT, true},     {"asin", TG_TEXT, true},      {"at", TG_INT, true},
    {"old_cents", TG_INT, false}, {"new_cents", TG_INT, false},
};
static const struct tg_table changes_table = {"pricewatch_changes", change_columns,
                                              sizeof(change_columns) / sizeof(change_columns[0])};

struct pricewatch {
	struct tg_task *task;
	const struct tg_services *svc;
	char (*asins)[PW_ASIN_MAX + 1];
	size_t nasins;
	int64_t domain, price_type;
};

static int fail(char **errmsg, int code, const char *fmt, ...) TG_PRINTF(3, 4);

/* Set *errmsg (malloc'd, the host frees it) and return code. */
static int fail(char **errmsg, int code, const char *fmt, ...)
{
	va_list ap;
	char *msg = NULL;

	if (!errmsg)
		return code;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	free(*errmsg);
	*errmsg = msg;
	return code;
}

static int valid_asin(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (!((s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= '0' && s[n] <= '9')))
			return 0;
	return n >= 1 && n <= PW_ASIN_MAX;
}

static int load_asins(struct pricewatch *pw, char **errmsg)
{
	struct cJSON *list = NULL, *item;
	int rc, n;

	rc = pw->svc->setting_json(pw->task, "asins", &list);
	if (rc == TG_ENOTFOUND)
		return fail(errmsg, TG_EINVAL, "setting asins is required (a list of ASIN strings)");
	if (rc)
		return fail(errmsg, rc, "setting asins: cannot read a list (%d)", rc);
	n = cJSON_GetArraySize(list);
	if (n < 1) {
		rc = fail(errmsg, TG_EINVAL, "setting asins: the list is empty");
		goto free_list;
	}
	pw->asins = calloc((size_t)n, sizeof(*pw->asins));
	if (!pw->asins) {
		rc = fail(errmsg, TG_ENOMEM, "out of memory");
		goto free_list;
	}
	cJSON_ArrayForEach(item, list)
	{
		if (!cJSON_IsString(item) || !valid_asin(item->valuestring)) {
			rc = fail(errmsg, TG_EINVAL, "setting asins: item %zu is not an ASIN (1-20 A-Z/0-9)",
			          pw->nasins + 1);
			goto free_list;
		}
		snprintf(pw->asins[pw->nasins++], PW_ASIN_MAX + 1, "%s", item->valuestring);
	}
	rc = TG_OK;
free_list:
	cJSON_Delete(list);
	return rc;
}

/* Messages the host hands over are freed with services->free(); the ones
 * this plugin returns are malloc'd: copy, never pass one through. */
static int declare(struct pricewatch *pw, const struct tg_table *table, char **errmsg)
{
	char *msg = NULL;
	int rc = pw->svc->table_declare(pw->task, table, &msg);

	if (rc)
		fail(errmsg, rc, "table %s: %s", table->name, msg ? msg : "cannot declare it");
	pw->svc->free(msg);
	return rc;
}

static int pw_init(struct tg_task *task, const struct tg_services *svc, void **state, char **errmsg)
{
	struct pricewatch *pw;
	int rc;

	/* Every member used below exists since ABI 1.0; a newer member would
	 * be checked with TG_SERVICES_HAS() before use. */
	if (!svc || !TG_SERVICES_HAS(svc, free))
		return fail(errmsg, TG_ENOTSUP, "the host's services table is older than ABI 1.0");
	pw = calloc(1, sizeof(*pw));
	if (!pw)
		return fail(errmsg, TG_ENOMEM, "out of memory");
	pw->task = task;
	pw->svc = svc;
	rc = load_asins(pw, errmsg);
	if (rc)
		goto free_pw;
	rc = svc->setting_int(task, "domain", &pw->domain);
	if (!rc && (pw->domain < 1 || pw->domain > 12))
		rc =
		    fail(errmsg, TG_EINVAL, "setting domain = %" PRId64 ": must be within 1..12", pw->domain);
	else if (rc)
		rc = fail(errmsg, rc, "setting domain: cannot read an integer (%d)", rc);
	if (rc)
		goto free_pw;
	rc = svc->setting_int(task, "price_type", &pw->price_type);
	if (!rc && (pw->price_type < 0 || pw->price_type > 2))
		rc = fail(errmsg, TG_EINVAL, "setting price_type = %" PRId64 ": must be 0, 1 or 2",
		          pw->price_type);
	else if (rc)
		rc = fail(errmsg, rc, "setting price_type: cannot read an integer (%d)", rc);
	if (rc)
		goto free_pw;
	rc = declare(pw, &prices_table, errmsg);
	if (!rc)
		rc = declare(pw, &changes_table, errmsg);
	if (rc)
		goto free_pw;
	*state = pw;
	return TG_OK;

free_pw:
	free(pw->asins);
	free(pw);
	return rc;
}

/* The previous price of one ASIN, as read by get(). */
struct previous {
	int found;
	int64_t cents; /* -1 when stored as NULL (no offer) */
};

static int read_previous(void *ud, const struct tg_value *row, size_t n)
{
	struct previous *prev = ud;
	size_t i;

	prev->found = 1;
	prev->cents = -1;
	for (i = 0; i < n; i++)
		if (!strcmp(row[i].column, "price_cents") && row[i].type == TG_INT)
			prev->cents = row[i].v.i;
	return 0;
}

/* stats.current[price_type] of one product: cents, or -1 for no offer. */
static int64_t current_price(const cJSON *product, int64_t price_type)
{
	const cJSON *stats = cJSON_GetObjectItemCaseSensitive(product, "stats");
	const cJSON *cur = cJSON_GetObjectItemCaseSensitive(stats, "current");
	const cJSON *v = cJSON_GetArrayItem(cur, (int)price_type);

	/* Range-checked before the cast: converting a double beyond int64 (a
	 * 1e400 parses as inf) is undefined behaviour in C. */
	if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble < 9e15))
		return -1;
	return (int64_t)v->valuedouble;
}

/* Write one product's price, and a change row when it moved. Inside begin(). */
static int record(struct pricewatch *pw, const cJSON *product, int64_t now, int *changed)
{
	const cJSON *asin = cJSON_GetObjectItemCaseSensitive(product, "asin");
	const cJSON *title = cJSON_GetObjectItemCaseSensitive(product, "title");
	struct tg_value key[2], row[6];
	struct previous prev = {0, -1};
	int64_t cents = current_price(product, pw->price_type);
	size_t n = 0;
	int rc;

	*changed = 0;
	if (!cJSON_IsString(asin) || !valid_asin(asin->valuestring))
		return TG_OK; /* not one of ours: skip it */
	key[0] = TG_VINT("domain", pw->domain);
	key[1] = TG_VTEXT("asin", asin->valuestring);
	rc = pw->svc->get(pw->task, prices_table.name, key, 2, read_previous, &prev);
	if (rc && rc != TG_ENOTFOUND)
		return rc;

	row[n++] = key[0];
	row[n++] = key[1];
	row[n++] = cents >= 0 ? TG_VINT("price_cents", cents) : TG_VNULL("price_cents");
	row[n++] = TG_VINT("checked_at", now);
	if (cJSON_IsString(title))
		row[n++] = TG_VTEXT("title", title->valuestring);
	if (!prev.found || prev.cents != cents)
		row[n++] = TG_VINT("changed_at", now);
	rc = pw->svc->upsert(pw->task, prices_table.name, row, n);
	if (rc || !prev.found || prev.cents == cents)
		return rc;

	/* A change of an ASIN seen before: keep it in the history. */
	{
		struct tg_value change[5] = {
		    key[0],
		    key[1],
		    TG_VINT("at", now),
		    prev.cents >= 0 ? TG_VINT("old_cents", prev.cents) : TG_VNULL("old_cents"),
		    cents >= 0 ? TG_VINT("new_cents", cents) : TG_VNULL("new_cents"),
		};

		rc = pw->svc->upsert(pw->task, changes_table.name, change, 5);
	}
	*changed = !rc;
	return rc;
}

/* One /product call for asins[from .. from+n) and its transaction: the rows
 * and the checkpoint `next` commit together. */
static int watch_batch(struct pricewatch *pw, size_t from, size_t n, size_t next, int64_t *changes,
                       char **errmsg)
{
	char *csv, *msg = NULL, dom[24], cursor[32];
	struct tg_keepa_param params[4];
	struct tg_keepa_request req = {.kind = "product", .path = "/product", .params = params, .nparams = 4};
	cJSON *resp = NULL;
	const cJSON *product, *products;
	int64_t now = pw->svc->now_ms(pw->task) / 1000;
	size_t i, len = 0, size;
	int rc, changed;

	size = n * (PW_ASIN_MAX + 1) + 1;
	csv = malloc(size);
	if (!csv)
		return fail(errmsg, TG_ENOMEM, "out of memory");
	for (i = 0; i < n; i++)
		len += (size_t)snprintf(csv + len, len < size ? size - len : 0, "%s%s", i ? "," : "",
		                        pw->asins[from + i]);
	snprintf(dom, sizeof(dom), "%" PRId64, pw->domain);
	params[0] = (struct tg_keepa_param){"domain", dom};
	params[1] = (struct tg_keepa_param){"asin", csv};
	params[2] = (struct tg_keepa_param){"stats", "1"};   /* stats.current is all we need */
	params[3] = (struct tg_keepa_param){"history", "0"}; /* csv arrays are free but large */
	req.units = (int64_t)n;

	/* Blocks in the scheduler's queue until the tokens are there. */
	rc = pw->svc->keepa_call(pw->task, &req, &resp, &msg);
	free(csv);
	if (rc) {
		fail(errmsg, rc, "/product: %s", msg ? msg : "the call failed");
		pw->svc->free(msg);
		return rc;
	}

	rc = pw->svc->begin(pw->task);
	if (rc) {
		fail(errmsg, rc, "storage: cannot begin (%d)", rc);
		goto free_resp;
	}
	products = cJSON_GetObjectItemCaseSensitive(resp, "products");
	cJSON_ArrayForEach(product, products)
	{
		rc = record(pw, product, now, &changed);
		if (rc) {
			fail(errmsg, rc, "storage: cannot record a price (%d)", rc);
			goto rollback;
		}
		*changes += changed;
	}
	snprintf(cursor, sizeof(cursor), "v1 %zu", next);
	rc = pw->svc->state_set(pw->task, "cursor", cursor);
	if (rc) {
		fail(errmsg, rc, "storage: cannot write the checkpoint (%d)", rc);
		goto rollback;
	}
	rc = pw->svc->commit(pw->task);
	if (rc) {
		fail(errmsg, rc, "storage: commit failed (%d)", rc);
		goto rollback;
	}
	goto free_resp;

rollback:
	pw->svc->rollback(pw->task);
free_resp:
	cJSON_Delete(resp);
	return rc;
}

/* Where the last committed batch ended (0 without a checkpoint). */
static size_t cursor_load(struct pricewatch *pw)
{
	char *value = NULL;
	size_t at = 0;

	if (pw->svc->state_get(pw->task, "cursor", &value) == TG_OK && value) {
		if (sscanf(value, "v1 %zu", &at) != 1 || at >= pw->nasins)
			at = 0; /* the list changed or the format is unknown: start over */
		free(value);
	}
	return at;
}

/* One run visits every ASIN once, starting at the checkpoint. */
static int pw_run(void *state, int64_t *idle_s, char **errmsg)
{
	struct pricewatch *pw = state;
	size_t at = cursor_load(pw), done = 0, batch, n;
	int64_t hint, changes = 0;
	int rc = TG_OK;

	(void)idle_s; /* an interval task: the schedule decides the next run */
	hint = pw->svc->budget_hint(pw->task);
	batch = hint < 1 ? 1 : hint > PW_MAX_BATCH ? PW_MAX_BATCH : (size_t)hint;
	while (done < pw->nasins) {
		if (pw->svc->should_stop(pw->task))
			return TG_ESTOPPED;
		n = batch;
		if (n > pw->nasins - at)
			n = pw->nasins - at; /* one call never wraps around the list */
		if (n > pw->nasins - done)
			n = pw->nasins - done;
		rc = watch_batch(pw, at, n, (at + n) % pw->nasins, &changes, errmsg);
		if (rc == TG_EOVERSIZE && n > 1) {
			/* More than the bucket can ever fund: split the call. */
			batch = n / 2;
			if (errmsg) {
				free(*errmsg);
				*errmsg = NULL;
			}
			continue;
		}
		if (rc)
			return rc;
		at = (at + n) % pw->nasins;
		done += n;
		pw->svc->progress(pw->task, (int64_t)done, (int64_t)pw->nasins, "asin");
	}
	pw->svc->log(pw->task, TG_LOG_INFO, "checked %zu ASIN(s), %" PRId64 " price change(s)", done,
	             changes);
	return TG_OK;
}

static void pw_destroy(void *state)
{
	struct pricewatch *pw = state;

	if (!pw)
		return;
	free(pw->asins);
	free(pw);
}

static const struct tg_plugin descriptor = {
    .abi_major = TG_ABI_MAJOR,
    .abi_minor = TG_ABI_MINOR,
    .struct_size = sizeof(struct tg_plugin),
    .name = PW_NAME,
    .version = "1.0.0",
    .description = "watches a list of ASINs and records their price changes",
    .costs = costs,
    .ncosts = sizeof(costs) / sizeof(costs[0]),
    .settings = settings,
    .nsettings = sizeof(settings) / sizeof(settings[0]),
    .init = pw_init,
    .run = pw_run,
    .destroy = pw_destroy,
};

TG_EXPORT const struct tg_plugin *TG_PLUGIN_ENTRY(void)
{
	return &descriptor;
}
