/*
 * plugin_host.c - see plugin_host.h.
 */
#include "plugin_host.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "util/json_exact.h"

static const uint8_t *answer_data;
static size_t answer_size;
static volatile size_t sink; /* keeps the value reads below from being optimised away */

static void fz_log(struct tg_task *task, enum tg_log_level level, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	(void)task;
	(void)level;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap); /* formats every argument, as the host does */
	va_end(ap);
	sink += strlen(line);
}

static int64_t fz_now_ms(struct tg_task *task)
{
	(void)task;
	return 1700000000000LL;
}

static bool fz_should_stop(struct tg_task *task)
{
	(void)task;
	return false;
}

static int fz_ok(struct tg_task *task)
{
	(void)task;
	return 0;
}

static void read_values(const struct tg_value *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		sink += strlen(v[i].column);
		if (v[i].type == TG_TEXT && v[i].v.s)
			sink += strlen(v[i].v.s);
	}
}

static int fz_upsert(struct tg_task *task, const char *table, const struct tg_value *values, size_t n)
{
	(void)task;
	(void)table;
	read_values(values, n);
	return 0;
}

static int fz_get(struct tg_task *task, const char *table, const struct tg_value *key, size_t nkey,
                  tg_row_fn fn, void *ud)
{
	(void)task;
	(void)table;
	(void)fn;
	(void)ud;
	read_values(key, nkey);
	return TG_ENOTFOUND;
}

static int fz_state_set(struct tg_task *task, const char *key, const char *value)
{
	(void)task;
	sink += strlen(key) + strlen(value);
	return 0;
}

static int fz_keepa_call(struct tg_task *task, const struct tg_keepa_request *req, cJSON **response,
                         char **errmsg)
{
	(void)task;
	(void)req;
	*response = cJSON_ParseWithLength((const char *)answer_data, answer_size);
	if (*response && cJSON_IsObject(*response)) {
		/* As keepa/keepa.c does: big integers keep their digits. */
		json_exact_ints(*response, (const char *)answer_data, answer_size);
		return 0;
	}
	/* The host hands a plugin only JSON objects; anything else is its
	 * TG_ENETWORK with a message. */
	cJSON_Delete(*response);
	*response = NULL;
	if (errmsg)
		*errmsg = strdup("not a JSON object");
	return TG_ENETWORK;
}

static int64_t fz_budget_hint(struct tg_task *task)
{
	(void)task;
	return 1000;
}

static const struct tg_services fuzz_services = {
    .struct_size = sizeof(struct tg_services),
    .log = fz_log,
    .now_ms = fz_now_ms,
    .should_stop = fz_should_stop,
    .begin = fz_ok,
    .commit = fz_ok,
    .rollback = fz_ok,
    .upsert = fz_upsert,
    .get = fz_get,
    .state_set = fz_state_set,
    .keepa_call = fz_keepa_call,
    .budget_hint = fz_budget_hint,
    .free = free,
};

static const char query[] = "{\"domainId\":1,\"priceTypes\":[0],\"dateRange\":1,\"currentRange\":[100,90000]}";

void fuzz_plugin_begin(struct pctx *p, struct selection *sel, const uint8_t *data, size_t size)
{
	char *err = NULL;

	answer_data = data;
	answer_size = size;
	memset(p, 0, sizeof(*p));
	p->svc = &fuzz_services;
	p->name = "fuzz";
	p->popts = (struct product_opts){.kind = KIND_PRODUCT, .units_per_asin = 1, .tokens_per_asin = 1,
	                                 .stats_days = 90};
	p->fees = (struct fees){.referral_pct = 15, .fulfilment_cents = 350};
	if (selection_from_json(sel, cJSON_Parse(query), 0, &err) != 0)
		abort(); /* the fixed query is valid: anything else is a bug here */
	free(err);
}

void fuzz_plugin_end(struct pctx *p, struct selection *sel)
{
	(void)p;
	selection_release(sel);
}
