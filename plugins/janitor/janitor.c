/*
 * janitor - keeps the deals table honest without deleting deals the feeds
 * merely stopped returning: a stale row is refreshed with a light /product
 * call before anything is dropped.
 *
 * A row is stale when checked_at (set to now whenever a feed wrote the row
 * or a refresh found it still qualifying) is older than refresh_after_h. A
 * stale row is due for a refresh unless it was refreshed (refreshed_at)
 * within refresh_after_h, or when it is older than max_age_h. A refreshed
 * row qualifies when the product came back with usable stats, is still
 * offered at the deal's price type (stats.current of that type is not -1)
 * and, with require_drop, is still below the deal's average price. Then
 * the row's product columns are updated and checked_at moves to now. A row
 * that does not qualify is removed when checked_at is older than
 * max_age_h; otherwise only refreshed_at (and the product columns, when
 * usable) is written and it waits for the next refresh. Every removal thus
 * follows a refresh in the same run.
 *
 * Refresh with what the price type needs: Keepa serves some price types
 * (7, 9, 10, 18-22, 32, 33 in the official Java client) only with `offers`;
 * without it they read -1, which is not "no longer a deal". Rows of those
 * types are refreshed with offers=`extra_offers` (kind product_offers, at
 * most 20 ASINs a call), or, with extra_offers = 0, never judged by their
 * price: they are kept while the product exists and leave only when no feed
 * has seen them for max_age_h.
 *
 * The due rows are read with SQL limits, oldest first, each set from an
 * index (declared in init, ABI 1.3), so a run reads only the rows it
 * refreshes, however big the table:
 *   - past max_age_h: checked_at < now - max_age_h, by checked_at;
 *   - stale and not refreshed lately: touched_at (the later of checked_at
 *     and refreshed_at, deals.h) < now - refresh_after_h, by touched_at,
 *     leaving out the first set (checked_at >= now - max_age_h).
 * Rows written before touched_at existed get it once, without a token:
 * migrate_touched() before the first select.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <tollgate/tollgate.h>

#include "common.h"
#include "fetch.h"

struct janitor {
	struct pctx p;
	int64_t refresh_after_h, max_age_h, max_rows, extra_offers;
	bool require_drop;
};

/* At most this many ASINs a /product call with offers (the Java client's
 * javadoc; the current docs say 100 without a caveat). */
#define OFFERS_MAX_ASINS 20

static const struct tg_cost costs[] = {COST_REFRESH, COST_PRODUCT_OFFERS};

static const struct tg_setting settings[] = {
    {"refresh_after_h", TG_SETTING_INT, "24", "refresh rows not seen or refreshed for this many hours"},
    {"max_age_h", TG_SETTING_INT, "72",
     "remove rows not qualifying whose last sighting or good refresh is older than this"},
    {"max_rows_per_run", TG_SETTING_INT, "1000", "refresh at most this many rows per run"},
    {"require_drop", TG_SETTING_BOOL, "true", "a refreshed row qualifies only while below its deal average"},
    {"stats_days", TG_SETTING_INT, "90", "/product stats window in days (free)"},
    {"extra_offers", TG_SETTING_INT, "20",
     "offers=N for price types Keepa serves only with offers (7, 9, 10, 18-22, 32, 33); 0: do not judge them"},
    SETTINGS_FEES,
};

/* Price types Keepa fills only when offers are asked for. */
static bool needs_offers(int pt)
{
	return pt == 7 || pt == 9 || pt == 10 || (pt >= 18 && pt <= 22) || pt == 32 || pt == 33;
}

/* A row due for a refresh. */
struct due {
	int64_t domain;
	char asin[24];
	int price_type;
	int64_t avg; /* -1 when unknown */
	int64_t checked_at;
};

struct scan {
	struct due *rows;
	size_t n, cap, max;
	int64_t cutoff_refresh, cutoff_drop;
	int64_t malformed;
	int oom;
};

static const struct tg_value *col(const struct tg_value *row, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(row[i].column, name))
			return &row[i];
	return NULL;
}

static bool col_int(const struct tg_value *row, size_t n, const char *name, int64_t *out)
{
	const struct tg_value *v = col(row, n, name);

	if (!v || v->type != TG_INT)
		return false;
	*out = v->v.i;
	return true;
}

static int scan_row(void *ud, const struct tg_value *row, size_t n)
{
	struct scan *s = ud;
	const struct tg_value *asin = col(row, n, COL_ASIN);
	int64_t domain, pt, checked, refreshed, avg;
	struct due *d;

	if (!asin || asin->type != TG_TEXT || strlen(asin->v.s) >= sizeof(d->asin) ||
	    !col_int(row, n, COL_DOMAIN, &domain) || !col_int(row, n, COL_PRICE_TYPE, &pt) ||
	    !col_int(row, n, COL_CHECKED, &checked)) {
		s->malformed++;
		return 0;
	}
	/* The selects' filters already hold only due rows; this is their
	 * guard, should a backend ever hand back more. */
	if (col_int(row, n, COL_REFRESHED, &refreshed) && refreshed >= s->cutoff_refresh &&
	    checked >= s->cutoff_drop)
		return 0;
	if (s->n >= s->max)
		return 0;
	if (s->n == s->cap) {
		struct due *r = array_grow(s->rows, &s->cap, sizeof(*r), 256);

		if (!r) {
			s->oom = 1;
			return 1;
		}
		s->rows = r;
	}
	d = &s->rows[s->n++];
	d->domain = domain;
	snprintf(d->asin, sizeof(d->asin), "%s", asin->v.s);
	d->price_type = (int)pt;
	d->avg = col_int(row, n, COL_AVG, &avg) && avg >= 0 ? avg : -1;
	d->checked_at = checked;
	return 0;
}

static int due_cmp(const void *a, const void *b)
{
	const struct due *x = a, *y = b;

	if (x->domain != y->domain)
		return x->domain < y->domain ? -1 : 1;
	if (needs_offers(x->price_type) != needs_offers(y->price_type))
		return needs_offers(x->price_type) ? 1 : -1;
	if (x->checked_at != y->checked_at)
		return x->checked_at < y->checked_at ? -1 : 1;
	return strcmp(x->asin, y->asin);
}

static int janitor_init(struct tg_task *task, const struct tg_services *svc, void **state, char **errmsg)
{
	struct janitor *j;
	int rc;

	rc = services_check(svc, errmsg);
	if (rc)
		return rc;
	j = calloc(1, sizeof(*j));
	if (!j)
		return err_set(errmsg, TG_ENOMEM, "out of memory");
	j->p.task = task;
	j->p.svc = svc;
	j->p.name = "janitor";
	j->p.popts = (struct product_opts){.kind = KIND_REFRESH, .units_per_asin = 1, .tokens_per_asin = 1};
	rc = setting_int_range(&j->p, "refresh_after_h", 1, 24 * 3650, &j->refresh_after_h, errmsg);
	if (!rc)
		rc = setting_int_range(&j->p, "max_age_h", 1, 24 * 3650, &j->max_age_h, errmsg);
	if (!rc && j->max_age_h < j->refresh_after_h)
		rc = err_set(errmsg, TG_EINVAL,
		             "setting max_age_h (%" PRId64 ") must be >= refresh_after_h (%" PRId64 ")",
		             j->max_age_h, j->refresh_after_h);
	if (!rc)
		rc = setting_int_range(&j->p, "max_rows_per_run", 1, 10000000, &j->max_rows, errmsg);
	if (!rc) {
		rc = svc->setting_bool(task, "require_drop", &j->require_drop);
		if (rc)
			err_set(errmsg, rc, "setting require_drop: cannot read a boolean (%d)", rc);
	}
	if (!rc)
		rc = setting_int_range(&j->p, "stats_days", 1, 3650, &j->p.popts.stats_days, errmsg);
	if (!rc)
		rc = setting_int_range(&j->p, "extra_offers", 0, 100, &j->extra_offers, errmsg);
	if (!rc && j->extra_offers > 0 && j->extra_offers < 20)
		rc = err_set(errmsg, TG_EINVAL, "setting extra_offers = %" PRId64 ": Keepa takes 0 (none) or 20..100",
		             j->extra_offers);
	if (!rc)
		rc = fees_load(&j->p, &j->p.fees, errmsg);
	/* The two ranges select_due() reads (and touched_at IS NULL, which
	 * migrate_touched() looks up in the second). */
	if (!rc)
		rc = deals_table_setup(task, svc, (const char *const[]){COL_CHECKED, COL_TOUCHED, NULL}, errmsg);
	if (rc) {
		free(j);
		return rc;
	}
	*state = j;
	return TG_OK;
}

struct tally {
	int64_t refreshed, dropped, waiting;
};

/* The /product options of a refresh with offers. */
static struct product_opts offers_opts(const struct janitor *j)
{
	struct product_opts o = j->p.popts;

	o.kind = KIND_PRODUCT_OFFERS;
	o.offers = j->extra_offers;
	o.units_per_asin = (j->extra_offers + 9) / 10;
	o.tokens_per_asin = 6 * o.units_per_asin;
	return o;
}

/* ASINs per refresh call: from the budget hint, and at most 20 with offers. */
static size_t offers_batch_size(struct janitor *j, bool offers)
{
	struct product_opts light = j->p.popts;
	size_t n;

	if (!offers)
		return product_batch_size(&j->p);
	j->p.popts = offers_opts(j);
	n = product_batch_size(&j->p);
	j->p.popts = light;
	return n < OFFERS_MAX_ASINS ? n : OFFERS_MAX_ASINS;
}

/* Read at most s->max due rows, oldest first, with SQL limits: past
 * max_age_h (by checked_at); then stale and not refreshed within
 * refresh_after_h (by touched_at). The two sets are disjoint, and each is
 * one range of an index. */
static int select_due(struct janitor *j, struct scan *s)
{
	const struct tg_filter past[] = {{TG_LT, TG_VINT(COL_CHECKED, s->cutoff_drop)}};
	const struct tg_filter stale[] = {{TG_LT, TG_VINT(COL_TOUCHED, s->cutoff_refresh)},
	                                  {TG_GE, TG_VINT(COL_CHECKED, s->cutoff_drop)}};
	int rc;

	rc = j->p.svc->select(j->p.task, deals_table.name, past, 1, COL_CHECKED, (int64_t)s->max, scan_row, s);
	if (!rc && s->n < s->max && !s->oom)
		rc = j->p.svc->select(j->p.task, deals_table.name, stale, 2, COL_TOUCHED, (int64_t)(s->max - s->n),
		                      scan_row, s);
	return rc;
}

/* Rows written before touched_at existed (tollgate <= 0.3) have it NULL,
 * and no select of select_due() would ever see them: give each the later of
 * its checked_at and refreshed_at (0 when it has neither, so it is never
 * read again), MIGRATE_BATCH rows a transaction. No Keepa call; runs once
 * on an upgraded database, and finds nothing after. */
#define MIGRATE_BATCH 2000

struct untouched {
	struct {
		int64_t domain;
		char asin[24];
		int64_t touched;
	} rows[MIGRATE_BATCH];
	size_t n, seen;
};

/* A row the batch cannot key (a foreign writer's asin longer than any
 * Amazon's) is left out; the loop below ends on a batch it wrote nothing
 * of, so it never spins on such rows. */
static int untouched_row(void *ud, const struct tg_value *row, size_t n)
{
	struct untouched *u = ud;
	const struct tg_value *asin = col(row, n, COL_ASIN);
	int64_t domain, checked = 0, refreshed = 0;

	u->seen++;
	if (!asin || asin->type != TG_TEXT || strlen(asin->v.s) >= sizeof(u->rows[0].asin) ||
	    !col_int(row, n, COL_DOMAIN, &domain))
		return 0;
	col_int(row, n, COL_CHECKED, &checked);
	col_int(row, n, COL_REFRESHED, &refreshed);
	u->rows[u->n].domain = domain;
	snprintf(u->rows[u->n].asin, sizeof(u->rows[u->n].asin), "%s", asin->v.s);
	u->rows[u->n].touched = checked > refreshed ? checked : refreshed;
	u->n++;
	return 0;
}

static int migrate_touched(struct janitor *j, int64_t *migrated, char **errmsg)
{
	const struct tg_filter untouched[] = {{TG_EQ, TG_VNULL(COL_TOUCHED)}};
	struct untouched *u = malloc(sizeof(*u));
	int rc = TG_OK;

	*migrated = 0;
	if (!u)
		return err_set(errmsg, TG_ENOMEM, "out of memory");
	for (;;) {
		u->n = u->seen = 0;
		rc = j->p.svc->select(j->p.task, deals_table.name, untouched, 1, NULL, MIGRATE_BATCH, untouched_row, u);
		if (rc < 0) {
			storage_err(&j->p, errmsg, rc, "storage: cannot select the rows without %s", COL_TOUCHED);
			break;
		}
		if (!u->n)
			break;
		/* Read again inside the transaction that writes: a feed writing
		 * a row in between (with its own touched_at) is then either
		 * before the read, and the row is not selected, or after the
		 * commit; never overwritten with the older time. */
		rc = j->p.svc->begin(j->p.task);
		if (!rc) {
			u->n = u->seen = 0;
			rc = j->p.svc->select(j->p.task, deals_table.name, untouched, 1, NULL, MIGRATE_BATCH,
			                      untouched_row, u);
		}
		for (size_t i = 0; i < u->n && !rc; i++) {
			struct tg_value v[3] = {TG_VINT(COL_DOMAIN, u->rows[i].domain), TG_VTEXT(COL_ASIN, u->rows[i].asin),
			                        TG_VINT(COL_TOUCHED, u->rows[i].touched)};

			rc = j->p.svc->upsert(j->p.task, deals_table.name, v, 3);
		}
		if (!rc)
			rc = j->p.svc->commit(j->p.task);
		if (rc) {
			j->p.svc->rollback(j->p.task);
			storage_err(&j->p, errmsg, rc, "storage: cannot write %s", COL_TOUCHED);
			break;
		}
		*migrated += (int64_t)u->n;
		if (u->seen < MIGRATE_BATCH || j->p.svc->should_stop(j->p.task))
			break;
	}
	free(u);
	if (*migrated)
		plog(&j->p, TG_LOG_INFO, "%" PRId64 " rows written before %s existed now have it", *migrated,
		     COL_TOUCHED);
	return rc;
}

/* Refresh rows[0..n) (one domain), then write the outcome in one transaction. */
static int refresh_batch(struct janitor *j, struct scan *s, const struct due *rows, size_t n, struct tally *t,
                         char **errmsg)
{
	struct product_set set = {0};
	const char **asins;
	int64_t now = now_s(&j->p);
	size_t i;
	int rc;

	bool offers = needs_offers(rows[0].price_type) && j->extra_offers > 0;
	struct product_opts light = j->p.popts;

	asins = malloc(n * sizeof(*asins));
	if (!asins)
		return err_set(errmsg, TG_ENOMEM, "out of memory");
	for (i = 0; i < n; i++)
		asins[i] = rows[i].asin;
	if (offers)
		j->p.popts = offers_opts(j);
	rc = products_fetch(&j->p, rows[0].domain, asins, n, &set, errmsg);
	j->p.popts = light;
	if (rc)
		goto free_set;
	rc = j->p.svc->begin(j->p.task);
	if (rc) {
		storage_err(&j->p, errmsg, rc, "storage: cannot begin");
		goto free_set;
	}
	for (i = 0; i < n && !rc; i++) {
		const struct due *d = &rows[i];
		const cJSON *prod = product_set_find(&set, d->asin);
		struct deal_ctx ctx = {.domain = d->domain,
		                       .price_type = d->price_type,
		                       .now_s = now,
		                       .written_by = j->p.name,
		                       .fees = &j->p.fees};
		struct tg_value key[4] = {TG_VINT(COL_DOMAIN, d->domain), TG_VTEXT(COL_ASIN, d->asin),
		                          TG_VINT(COL_REFRESHED, now), TG_VINT(COL_TOUCHED, now)};
		struct deal_row row;
		int64_t cur = prod ? product_current(prod, d->price_type) : -1;
		bool usable = prod && deal_row_refresh(&row, &ctx, d->asin, d->avg, prod, false) == TG_OK;
		/* Without offers Keepa has no value for this type: unknown, not
		 * "no longer a deal". */
		bool unjudged = needs_offers(d->price_type) && !offers;
		bool qualifies = usable && cur >= 0 && (!j->require_drop || d->avg < 0 || cur < d->avg);

		if (usable && unjudged && d->checked_at >= s->cutoff_drop) {
			/* Keep the row and its price: only the product columns. */
			deal_row_refresh_product(&row, &ctx, d->asin, prod);
			rc = j->p.svc->upsert(j->p.task, deals_table.name, row.v, row.n);
			t->waiting++;
		} else if (qualifies) {
			deal_row_refresh(&row, &ctx, d->asin, d->avg, prod, true);
			rc = j->p.svc->upsert(j->p.task, deals_table.name, row.v, row.n);
			t->refreshed++;
		} else if (d->checked_at < s->cutoff_drop) {
			rc = j->p.svc->remove(j->p.task, deals_table.name, key, 2);
			t->dropped++;
			j->p.svc->log(j->p.task, TG_LOG_DEBUG, "dropped %s: %s", d->asin,
			              !prod       ? "not returned by /product"
			              : !usable   ? "no usable stats"
			              : unjudged  ? "no feed has seen it for max_age_h (its price type needs offers)"
			                          : "no longer a deal");
		} else {
			rc = usable ? j->p.svc->upsert(j->p.task, deals_table.name, row.v, row.n)
			            : j->p.svc->upsert(j->p.task, deals_table.name, key, 4);
			t->waiting++;
		}
	}
	if (rc) {
		storage_err(&j->p, errmsg, rc, "storage: cannot write the refresh");
		goto rollback;
	}
	rc = j->p.svc->commit(j->p.task);
	if (rc) {
		storage_err(&j->p, errmsg, rc, "storage: commit failed");
		goto rollback;
	}
	goto free_set;

rollback:
	j->p.svc->rollback(j->p.task);
free_set:
	product_set_release(&set);
	free(asins);
	return rc;
}

static int janitor_run(void *state, int64_t *idle_s, char **errmsg)
{
	struct janitor *j = state;
	struct scan s = {0};
	struct tally t = {0};
	int64_t now = now_s(&j->p);
	size_t i, n, batch, end;
	int64_t migrated;
	int rc;

	(void)idle_s;
	memset(&j->p.counts, 0, sizeof(j->p.counts));
	s.cutoff_refresh = now - j->refresh_after_h * 3600;
	s.cutoff_drop = now - j->max_age_h * 3600;
	s.max = (size_t)j->max_rows;
	rc = migrate_touched(j, &migrated, errmsg);
	if (rc)
		return rc;
	rc = select_due(j, &s);
	if (s.oom)
		rc = err_set(errmsg, TG_ENOMEM, "out of memory");
	else if (rc < 0)
		storage_err(&j->p, errmsg, rc, "storage: cannot select stale rows");
	if (rc)
		goto free_rows;
	if (s.malformed)
		plog(&j->p, TG_LOG_WARN,
		     "%" PRId64 " stale rows without domain, asin, price_type or checked_at skipped",
		     s.malformed);
	/* The selects read the oldest due rows: group them by domain (one
	 * /product call serves one domain) and by what they need. */
	n = s.n;
	if (n)
		qsort(s.rows, n, sizeof(*s.rows), due_cmp);
	/* Oldest first within each domain; one /product call per batch. */
	for (i = 0; i < n && !rc; i = end) {
		bool offers = needs_offers(s.rows[i].price_type) && j->extra_offers > 0;

		batch = offers_batch_size(j, offers);
		for (end = i + 1; end < n && end - i < batch && s.rows[end].domain == s.rows[i].domain &&
		                  (needs_offers(s.rows[end].price_type) && j->extra_offers > 0) == offers;
		     end++)
			;
		rc = refresh_batch(j, &s, s.rows + i, end - i, &t, errmsg);
		j->p.svc->progress(j->p.task, (int64_t)(rc ? i : end), (int64_t)n, "rows");
	}
	plog(&j->p, rc ? TG_LOG_WARN : TG_LOG_INFO,
	     "%s: %zu stale rows due, %zu checked; %" PRId64 " refreshed, %" PRId64 " dropped, %" PRId64
	     " kept until max_age_h; %" PRId64 " Keepa calls",
	     rc ? "run interrupted" : "run done", s.n, n, t.refreshed, t.dropped, t.waiting,
	     j->p.counts.keepa_calls);
free_rows:
	free(s.rows);
	return rc;
}

static void janitor_destroy(void *state)
{
	free(state);
}

static const struct tg_plugin plugin = {
    .abi_major = TG_ABI_MAJOR,
    .abi_minor = TG_ABI_MINOR,
    .struct_size = sizeof(struct tg_plugin),
    .name = "janitor",
    .version = "1.2.0",
    .description = "refreshes stale deals with a light /product call and removes those no longer qualifying",
    .costs = costs,
    .ncosts = sizeof(costs) / sizeof(costs[0]),
    .settings = settings,
    .nsettings = sizeof(settings) / sizeof(settings[0]),
    .init = janitor_init,
    .run = janitor_run,
    .destroy = janitor_destroy,
};

TG_EXPORT const struct tg_plugin *TG_PLUGIN_ENTRY(void)
{
	return &plugin;
}
