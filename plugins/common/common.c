/*
 * common.c - settings, batch sizing and the guarded Keepa call.
 */
#include "common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

int err_set(char **errmsg, int code, const char *fmt, ...)
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

int storage_err(const struct pctx *p, char **errmsg, int code, const char *fmt, ...)
{
	const char *why = NULL;
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	/* Added in ABI 1.1: an older host has no such member (tollgate.h). */
	if (TG_SERVICES_HAS(p->svc, last_error) && p->svc->last_error)
		why = p->svc->last_error(p->task);
	if (why && *why)
		return err_set(errmsg, code, "%s: %s", what, why);
	return err_set(errmsg, code, "%s (%d)", what, code);
}

int services_check(const struct tg_services *svc, char **errmsg)
{
	if (!svc || !TG_SERVICES_HAS(svc, free))
		return err_set(errmsg, TG_ENOTSUP,
		               "the host's services table is older than this plugin (ABI 1.0)");
	return TG_OK;
}

int64_t now_s(struct pctx *p)
{
	int64_t ms = p->svc->now_ms(p->task);

	return ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
}

int setting_int_range(struct pctx *p, const char *name, int64_t min, int64_t max, int64_t *out, char **errmsg)
{
	int rc = p->svc->setting_int(p->task, name, out);

	if (rc < 0)
		return err_set(errmsg, rc, "setting %s: cannot read an integer (%d)", name, rc);
	if (*out < min || *out > max)
		return err_set(errmsg, TG_EINVAL, "setting %s = %lld: must be within %lld..%lld", name,
		               (long long)*out, (long long)min, (long long)max);
	return TG_OK;
}

int fees_load(struct pctx *p, struct fees *fees, char **errmsg)
{
	int rc;

	rc = p->svc->setting_real(p->task, "referral_pct", &fees->referral_pct);
	if (rc < 0)
		return err_set(errmsg, rc, "setting referral_pct: cannot read a number (%d)", rc);
	if (!(fees->referral_pct >= 0 && fees->referral_pct <= 100))
		return err_set(errmsg, TG_EINVAL, "setting referral_pct = %g: must be within 0..100",
		               fees->referral_pct);
	rc = setting_int_range(p, "fulfilment_fee_cents", 0, 100000000, &fees->fulfilment_cents, errmsg);
	if (!rc)
		rc = setting_int_range(p, "prep_fee_cents", 0, 100000000, &fees->prep_cents, errmsg);
	if (!rc)
		rc = setting_int_range(p, "shipping_cents", 0, 100000000, &fees->shipping_cents, errmsg);
	return rc;
}

int product_opts_load(struct pctx *p, char **errmsg)
{
	struct product_opts *o = &p->popts;
	int rc;

	rc = setting_int_range(p, "stats_days", 0, 3650, &o->stats_days, errmsg);
	if (rc)
		return rc;
	rc = p->svc->setting_bool(p->task, "history", &o->history);
	if (rc)
		return err_set(errmsg, rc, "setting history: cannot read a boolean (%d)", rc);
	rc = setting_int_range(p, "offers", 0, 100, &o->offers, errmsg);
	if (rc)
		return rc;
	if (o->offers > 0 && o->offers < 20)
		return err_set(errmsg, TG_EINVAL, "setting offers = %lld: Keepa takes 0 (none) or 20..100",
		               (long long)o->offers);
	if (o->offers > 0) {
		o->kind = KIND_PRODUCT_OFFERS;
		o->units_per_asin = (o->offers + 9) / 10;
		o->tokens_per_asin = 6 * o->units_per_asin;
	} else {
		o->kind = KIND_PRODUCT;
		o->units_per_asin = 1;
		o->tokens_per_asin = 1;
	}
	return TG_OK;
}

int change_opts_load(struct pctx *p, char **errmsg)
{
	const char *policy;
	int64_t h;
	int rc;

	rc = setting_int_range(p, "product_max_age_h", -1, 24 * 3650, &h, errmsg);
	if (rc)
		return rc;
	p->product_max_age_s = h < 0 ? -1 : h * 3600;
	rc = p->svc->setting_bool(p->task, "product_on_change", &p->product_on_change);
	if (rc)
		return err_set(errmsg, rc, "setting product_on_change: cannot read a boolean (%d)", rc);
	rc = p->svc->setting_string(p->task, "policy", &policy);
	if (rc)
		return err_set(errmsg, rc, "setting policy: cannot read a string (%d)", rc);
	if (strcmp(policy, "change") && strcmp(policy, "legacy"))
		return err_set(errmsg, TG_EINVAL, "setting policy = \"%s\": change or legacy", policy);
	p->legacy = !strcmp(policy, "legacy");
	return TG_OK;
}

void *array_grow(void *items, size_t *cap, size_t elem, size_t first)
{
	size_t n;
	void *p;

	if (*cap > SIZE_MAX / 2)
		return NULL;
	n = *cap ? 2 * *cap : first;
	if (!n || !elem || n > SIZE_MAX / elem)
		return NULL;
	p = realloc(items, n * elem);
	if (p)
		*cap = n;
	return p;
}

int page_keep(cJSON ***pages, size_t *n, cJSON *resp, char **errmsg)
{
	cJSON **p = realloc(*pages, (*n + 1) * sizeof(*p));

	if (!p) {
		cJSON_Delete(resp);
		return err_set(errmsg, TG_ENOMEM, "out of memory");
	}
	*pages = p;
	p[(*n)++] = resp;
	return TG_OK;
}

size_t product_batch_size(struct pctx *p)
{
	int64_t hint = p->svc->budget_hint(p->task);
	int64_t per = p->popts.tokens_per_asin > 0 ? p->popts.tokens_per_asin : 1;
	int64_t n;

	/* A host without a hint (0 or less) gets full batches: the scheduler
	 * still paces them. */
	if (hint <= 0)
		return PRODUCT_MAX_ASINS;
	n = hint / per;
	if (n < 1)
		n = 1;
	if (n > PRODUCT_MAX_ASINS)
		n = PRODUCT_MAX_ASINS;
	return (size_t)n;
}

int keepa_call(struct pctx *p, const struct tg_keepa_request *req, cJSON **resp, char **errmsg)
{
	char *msg = NULL;
	int rc;

	*resp = NULL;
	if (p->svc->should_stop(p->task))
		return err_set(errmsg, TG_ESTOPPED, "stopping: the daemon is shutting down");
	p->counts.keepa_calls++;
	rc = p->svc->keepa_call(p->task, req, resp, &msg);
	if (rc < 0) {
		err_set(errmsg, rc, "%s %s (%lld %s): %s", req->path, req->kind, (long long)req->units,
		        rc == TG_EKEEPA ? "Keepa refused" : "failed", msg ? msg : "no message");
		if (msg)
			p->svc->free(msg);
		if (*resp) {
			cJSON_Delete(*resp);
			*resp = NULL;
		}
		return rc;
	}
	if (msg)
		p->svc->free(msg);
	if (!*resp)
		return err_set(errmsg, TG_ENETWORK, "%s: the host returned no answer", req->path);
	return TG_OK;
}
