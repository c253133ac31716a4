/*
 * sim_ground.c - the /_sim/ endpoints: ground truth for tests (the bucket,
 * the traffic, every deal a query matches) and control of the plan. No key,
 * no cost, never counted as API traffic.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_server.h"

/* ---------------------------------------------------------------- /_sim/ */

static cJSON *stats_json(struct sim *sim, int64_t elapsed)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	int64_t vms = virtual_unix_ms(sim, elapsed);
	cJSON_AddNumberToObject(o, "timestamp", (double)vms);
	cJSON_AddNumberToObject(o, "keepaMinute", keepa_minute(vms));
	cJSON_AddNumberToObject(o, "tokensLeft", (double)sim->bucket.balance);
	cJSON_AddNumberToObject(o, "refillIn", (double)sim_bucket_refill_in(&sim->bucket, elapsed));
	cJSON_AddNumberToObject(o, "rate", sim->bucket.rate);
	cJSON_AddNumberToObject(o, "cap", sim->bucket.cap);
	cJSON_AddNumberToObject(o, "minuteMs", sim->opt.minute_ms);
	cJSON_AddNumberToObject(o, "tokensConsumedTotal", (double)sim->bucket.consumed_total);
	cJSON_AddNumberToObject(o, "served429", (double)sim->bucket.served_429);
	cJSON_AddNumberToObject(o, "outsideConsumed", (double)sim->bucket.outside_consumed);
	cJSON_AddNumberToObject(o, "refills", (double)sim->bucket.refills);
	cJSON_AddNumberToObject(o, "requestsTotal", (double)sim->requests_total);
	cJSON *req = cJSON_AddObjectToObject(o, "requests");
	for (int p = 0; p < NPATHS; p++) {
		cJSON *po = NULL;
		for (int s = 0; s < NSTATUS; s++) {
			if (!sim->counts[p][s])
				continue;
			if (!po)
				po = cJSON_AddObjectToObject(req, sim_path_names[p]);
			char code[8];
			snprintf(code, sizeof(code), "%d", sim_statuses[s]);
			cJSON_AddNumberToObject(po, code, (double)sim->counts[p][s]);
		}
	}
	cJSON *f = cJSON_AddObjectToObject(o, "faults");
	for (int i = F_500; i < NFAULTS; i++)
		cJSON_AddNumberToObject(f, sim_fault_names[i], (double)sim->faults[i]);
	cJSON *dc = cJSON_AddObjectToObject(o, "dealCache");
	cJSON_AddNumberToObject(dc, "windowS", sim->opt.deal_cache_s);
	cJSON_AddNumberToObject(dc, "results", (double)sim->cache.results);
	cJSON_AddNumberToObject(dc, "hits", (double)sim->cache.hits);
	cJSON_AddNumberToObject(dc, "repeats", (double)sim->cache.repeats);
	return o;
}

enum MHD_Result sim_ground_handle(struct sim *sim, struct MHD_Connection *c, struct conn *cc,
                                  const char *path)
{
	char msg[512];
	cJSON *root = NULL;
	int status = 200;
	long long v;

	pthread_mutex_lock(&sim->lock);
	int64_t el = elapsed_ms(sim);
	sim_bucket_update(&sim->bucket, el);
	int32_t now = keepa_minute(virtual_unix_ms(sim, el));
	if (sim_catalog_advance(&sim->cat, now))
		goto err_unlock;
	if (strcmp(path, "/_sim/stats") == 0) {
		root = stats_json(sim, el);
	} else if (strcmp(path, "/_sim/control") == 0) {
		int r;
		msg[0] = '\0';
		if ((r = sim_int_arg(c, "rate", 0, 10000000, &v, msg, sizeof(msg))) > 0)
			sim_bucket_set_rate(&sim->bucket, (int)v, el);
		if (r >= 0 && (r = sim_int_arg(c, "cap", 1, 1000000000, &v, msg, sizeof(msg))) > 0) {
			sim->bucket.cap = (int)v;
			if (sim->auto_start)
				sim->bucket.start_tokens = (int)v;
		}
		if (r >= 0 &&
		    (r = sim_int_arg(c, "tokens", -1000000000, 1000000000, &v, msg, sizeof(msg))) > 0)
			sim->bucket.balance = v;
		if (r >= 0 && (r = sim_int_arg(c, "restart", 0, 1, &v, msg, sizeof(msg))) > 0 && v)
			sim_bucket_restart(&sim->bucket, el);
		/* Another client on the same key spends tokens we did not send. */
		if (r >= 0 && (r = sim_int_arg(c, "consume", 0, 1000000000, &v, msg, sizeof(msg))) > 0) {
			sim->bucket.balance -= v;
			sim->bucket.outside_consumed += v;
		}
		/* Make every later API request hang (percent), so tests can
		 * stall a daemon that started normally. */
		if (r >= 0 && (r = sim_int_arg(c, "hang_pct", 0, 100, &v, msg, sizeof(msg))) > 0) {
			if (sim->opt.p500 + sim->opt.pgarbage + sim->opt.perror + (double)v / 100.0 > 1.0 + 1e-9) {
				r = -1;
				snprintf(msg, sizeof(msg), "hang_pct: fault probabilities would exceed 1");
			} else {
				sim->opt.phang = (double)v / 100.0;
			}
		}
		if (r < 0) {
			status = 400;
			root = cJSON_CreateObject();
			cJSON_AddStringToObject(root, "error", msg);
		} else {
			root = stats_json(sim, el);
		}
	} else if (strcmp(path, "/_sim/deals") == 0) {
		struct sim_selection sel;
		struct sim_deal_result res;
		char *err = NULL;
		root = cJSON_CreateObject();
		if (!root)
			goto err_unlock;
		if (sim_selection_parse(&sel, cc->len ? cc->body : sim_arg(c, "selection"), &err)) {
			status = 400;
			cJSON_AddStringToObject(root, "error", err ? err : "invalid selection");
			free(err);
		} else {
			cJSON *deals = cJSON_CreateObject();
			/* The truth of this minute, never the cache. */
			int ok = deals && sim_deal_match(&sim->cat, &sel, sim->opt.deal_age, now,
			                                 &res) == 0;
			if (ok && sim_deal_serve(&sim->cat, &res, -1, deals))
				ok = 0;
			int64_t matched = ok ? res.matched : 0;
			sim_deal_result_release(&res);
			if (ok) {
				int64_t vms = virtual_unix_ms(sim, el);
				cJSON_AddNumberToObject(root, "timestamp", (double)vms);
				cJSON_AddNumberToObject(root, "keepaMinute", keepa_minute(vms));
				cJSON_AddNumberToObject(root, "totalMatched", (double)matched);
				cJSON_AddNumberToObject(root, "count",
				                        cJSON_GetArraySize(cJSON_GetObjectItem(deals, "dr")));
				/* summary=1 leaves the deals out, for big result sets. */
				const char *summary = sim_arg(c, "summary");
				if (summary && strcmp(summary, "1") == 0)
					cJSON_DeleteItemFromObject(deals, "dr");
				cJSON_AddItemToObject(root, "deals", deals);
			} else {
				cJSON_Delete(deals);
				status = 500;
			}
			sim_selection_release(&sel);
		}
	} else {
		status = 404;
		root = cJSON_CreateObject();
		cJSON_AddStringToObject(root, "error", "unknown /_sim/ endpoint");
	}
	pthread_mutex_unlock(&sim->lock);
	if (!root)
		return MHD_NO;
	enum MHD_Result ret = sim_send_json(c, status, root);
	cJSON_Delete(root);
	return ret;

err_unlock:
	pthread_mutex_unlock(&sim->lock);
	cJSON_Delete(root);
	return MHD_NO;
}
