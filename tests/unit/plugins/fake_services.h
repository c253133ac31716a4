/*
 * fake_services.h - a strict, in-memory services table for plugin unit tests.
 *
 * One struct fake stands for the host around one task: settings (checked
 * against the plugin's declared settings, defaults applied), a store of
 * declared tables and checkpoint state with real transaction semantics
 * (fake_crash() drops everything uncommitted, as a killed process would), a
 * scripted Keepa (a world of deals and products served as /deal pages and
 * /product answers, errors injected by call number), a virtual clock, and
 * recorded logs, progress and calls.
 *
 * Strict: a Keepa call of an undeclared kind, with units <= 0, whose units
 * do not match the request, with numbers sent as strings, or made inside an
 * open transaction fails the test; so does any sleep_ms().
 */
#ifndef FAKE_SERVICES_H
#define FAKE_SERVICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <tollgate/tollgate.h>

struct fake;

struct fake *fake_new(const struct tg_plugin *plugin);
void fake_free(struct fake *f);
/* Switch the plugin whose declarations are checked (the store is kept). */
void fake_use_plugin(struct fake *f, const struct tg_plugin *plugin);
const struct tg_services *fake_services(struct fake *f);
struct tg_task *fake_task(struct fake *f);

/* Settings (before init). json is the text of a group or list. */
void fake_set_int(struct fake *f, const char *name, int64_t v);
void fake_set_real(struct fake *f, const char *name, double v);
void fake_set_bool(struct fake *f, const char *name, bool v);
void fake_set_string(struct fake *f, const char *name, const char *v);
void fake_set_json(struct fake *f, const char *name, const char *json);

/* Clock (Unix seconds) and budget hint. */
void fake_set_now(struct fake *f, int64_t unix_s);
void fake_advance(struct fake *f, int64_t seconds);
/* Each /deal call takes ms on the fake's clock (0 by default). */
void fake_set_deal_call_ms(struct fake *f, int64_t ms);
void fake_set_budget(struct fake *f, int64_t tokens);
/* should_stop() turns true once this many Keepa calls were answered (-1: never). */
void fake_stop_after_calls(struct fake *f, int64_t calls);

/* The Keepa world. A deal or product is given as JSON text. /deal serves the
 * deals in insertion order, or newest lastUpdate first when sortType is 1
 * (stable), 150 a page, at most 10,000. */
void fake_keepa_add_deal(struct fake *f, const char *json);
/* What sortType 1 orders by: "lastUpdate" (the default, reset by fake_new)
 * or "creationDate". */
void fake_keepa_deal_age(struct fake *f, const char *field);
void fake_keepa_clear_deals(struct fake *f);
void fake_keepa_set_product(struct fake *f, const char *asin, const char *json);
void fake_keepa_remove_product(struct fake *f, const char *asin);
/* Answer call number n (1-based, counting every call) with error code. */
void fake_keepa_fail_call(struct fake *f, int64_t n, int code, const char *msg);
/* Answer /deal page `page` with this raw JSON text instead (once). */
void fake_keepa_raw_page(struct fake *f, int page, const char *json);
/* Refuse calls of kind whose estimate (declared cost) exceeds max tokens. */
void fake_keepa_max_cost(struct fake *f, double max_tokens);

/* A Deal and a Product as the fake world wants them (malloc()ed JSON
 * text): price type `pt` current/avg in cents, lastUpdate in Keepa minutes. */
char *fake_deal_json(const char *asin, int pt, int64_t current, int64_t avg, int64_t last_update_km);
char *fake_product_json(const char *asin, int64_t amazon, int64_t new_, int64_t used, int64_t rank);

/* What the plugin did. */
struct fake_call {
	char *kind, *path;
	int64_t units;
	int page;    /* /deal: the page asked for, else -1 */
	int sort;    /* /deal: sortType, else 0 */
	char *asins; /* /product: the asin parameter, else NULL */
	int rc;      /* what the fake answered */
};
size_t fake_ncalls(struct fake *f);
const struct fake_call *fake_call(struct fake *f, size_t i);
size_t fake_count_calls(struct fake *f, const char *path);
/* How many /product calls carried asin. */
size_t fake_product_asks(struct fake *f, const char *asin);
/* The pages /deal was asked for, in order, as "0,1,2". */
const char *fake_pages(struct fake *f);

size_t fake_log_count(struct fake *f, const char *substring);
int64_t fake_progress_done(struct fake *f);
int64_t fake_progress_total(struct fake *f);
size_t fake_commits(struct fake *f);

/* The store (committed view when no transaction is open). */
size_t fake_nrows(struct fake *f, const char *table);
/* A cell of the row (domain, asin) of table: 0 with *out, 1 when NULL,
 * TG_ENOTFOUND without such a row. */
int fake_cell_int(struct fake *f, const char *table, int64_t domain, const char *asin, const char *column,
                  int64_t *out);
const char *fake_cell_text(struct fake *f, const char *table, int64_t domain, const char *asin,
                           const char *column);
bool fake_has_row(struct fake *f, const char *table, int64_t domain, const char *asin);
/* Insert or update a row directly (as if another task wrote it). */
void fake_put_row(struct fake *f, const char *table, const struct tg_value *values, size_t n);
/* The n-th upsert() (1-based, counting all) fails with TG_ESTORAGE. */
void fake_fail_upsert(struct fake *f, int64_t n);
/* The reason last_error() gives after a failed storage call (ABI 1.1). */
void fake_storage_reason(struct fake *f, const char *reason);
/* Hand the plugin the services table of an ABI 1.0 host (no last_error). */
void fake_services_abi_1_0(struct fake *f);
/* ... of an ABI 1.1 host (no not_before_ms). */
void fake_services_abi_1_1(struct fake *f);
/* ... of an ABI 1.2 host (no table_index). */
void fake_services_abi_1_2(struct fake *f);
/* Whether the plugin asked for an index on table.column (ABI 1.3). */
bool fake_has_index(struct fake *f, const char *table, const char *column);
/* How many select() calls no index asked for serves (see select_indexed in
 * fake_services.c); *last describes the last one. */
size_t fake_unindexed_selects(struct fake *f, const char **last);
/* table_index() answers TG_ENOTSUP from now on (a backend without indexes). */
void fake_index_unsupported(struct fake *f);
/* What the plugin last asked with not_before_ms() (ABI 1.2), -1 when
 * nothing since the last take; resets it to -1. */
int64_t fake_take_not_before_ms(struct fake *f);
/* The next state_get() fails with code. */
void fake_fail_state_get(struct fake *f, int code);
/* A committed state value, or NULL (borrowed). */
const char *fake_state(struct fake *f, const char *key);
void fake_set_state(struct fake *f, const char *key, const char *value);
/* The process dies: the open transaction is lost. */
void fake_crash(struct fake *f);
bool fake_in_transaction(struct fake *f);

#endif
