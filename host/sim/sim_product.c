/*
 * sim_product.c - /product and /seller answers built from the catalog at one
 * Keepa minute, with their token costs.
 */
#include <stdio.h>
#include <string.h>

#include "sim_int.h"

static cJSON *int_array(const int32_t *v, int n)
{
	cJSON *a = cJSON_CreateArray();
	for (int i = 0; a && i < n; i++)
		cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
	return a;
}

/* The csv of one series: the points of the last `days` days (all when 0),
 * preceded by the point in force at the window's start, so the curve is
 * defined over the whole window. With ship >= 0 it writes triples. */
static cJSON *csv_series(const struct sim_series *s, int32_t now, int days, int32_t ship)
{
	cJSON *a = cJSON_CreateArray();
	int64_t last = sim_series_at(s, now), first = 0;
	if (!a)
		return NULL;
	if (days > 0) {
		int32_t cut = now + 1 - days * SIM_DAY;
		first = sim_series_at(s, cut);
		if (first < 0)
			first = 0;
	}
	for (int64_t j = first; j <= last; j++) {
		cJSON_AddItemToArray(a, cJSON_CreateNumber(s->t[j]));
		cJSON_AddItemToArray(a, cJSON_CreateNumber(s->v[j]));
		if (ship >= 0)
			cJSON_AddItemToArray(a, cJSON_CreateNumber(s->v[j] < 0 ? -1 : ship));
	}
	return a;
}

/* The series behind csv type t for this request, or NULL. The buy box (18)
 * is extra data: served with buybox=1 or with offers, as Keepa's
 * Product.java marks it (CsvType.isExtraData). */
static const struct sim_series *type_series(const struct sim_product *p, int t, bool buybox)
{
	if (t == SIM_TYPE_BUYBOX)
		return buybox ? &p->s[SIM_S_NEW] : NULL;
	int k = sim_type_series(t);
	return k >= 0 ? &p->s[k] : NULL;
}

static cJSON *stats_json(const struct sim_product *p, const struct sim_product_req *req, int32_t now)
{
	static const struct {
		const char *name;
		int days;
	} avgs[] = {{"avg30", 30}, {"avg90", 90}, {"avg180", 180}, {"avg365", 365}};
	int32_t v[SIM_NTYPES];
	cJSON *st = cJSON_CreateObject();
	if (!st)
		return NULL;
	const struct sim_series *ser[SIM_NTYPES];
	for (int t = 0; t < SIM_NTYPES; t++)
		ser[t] = type_series(p, t, req->buybox || req->offers > 0);

	for (int t = 0; t < SIM_NTYPES; t++)
		v[t] = ser[t] ? sim_series_current(ser[t], now) : -1;
	cJSON_AddItemToObject(st, "current", int_array(v, SIM_NTYPES));
	for (int t = 0; t < SIM_NTYPES; t++)
		v[t] = ser[t] ? sim_series_avg(ser[t], now, req->stats_days) : -1;
	cJSON_AddItemToObject(st, "avg", int_array(v, SIM_NTYPES));
	for (size_t i = 0; i < sizeof(avgs) / sizeof(*avgs); i++) {
		for (int t = 0; t < SIM_NTYPES; t++)
			v[t] = ser[t] ? sim_series_avg(ser[t], now, avgs[i].days) : -1;
		cJSON_AddItemToObject(st, avgs[i].name, int_array(v, SIM_NTYPES));
	}
	cJSON *mn = cJSON_AddArrayToObject(st, "min"), *mx = cJSON_AddArrayToObject(st, "max");
	for (int t = 0; t < SIM_NTYPES; t++) {
		int32_t lo[2], hi[2];
		if (ser[t] && sim_series_minmax(ser[t], now, req->stats_days, lo, hi)) {
			cJSON_AddItemToArray(mn, int_array(lo, 2));
			cJSON_AddItemToArray(mx, int_array(hi, 2));
		} else {
			cJSON_AddItemToArray(mn, cJSON_CreateNull());
			cJSON_AddItemToArray(mx, cJSON_CreateNull());
		}
	}
	for (int days = 30; days <= 90; days += 60) {
		char name[32];
		snprintf(name, sizeof(name), "outOfStockPercentage%d", days);
		for (int t = 0; t < SIM_NTYPES; t++)
			v[t] = ser[t] ? sim_series_oos(ser[t], now, days) : -1;
		cJSON_AddItemToObject(st, name, int_array(v, SIM_NTYPES));
	}
	static const int drops[] = {30, 90, 180, 365};
	for (size_t i = 0; i < 4; i++) {
		char name[32];
		snprintf(name, sizeof(name), "salesRankDrops%d", drops[i]);
		cJSON_AddNumberToObject(st, name, sim_series_drops(&p->s[SIM_S_RANK], now, drops[i]));
	}
	return st;
}

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static cJSON *offers_json(const struct sim_catalog *cat, const struct sim_product *p, int n, int32_t now)
{
	cJSON *a = cJSON_CreateArray();
	if (!a)
		return NULL;
	struct sim_rng r = {hash_str(p->asin) ^ cat->seed};
	int32_t newp = sim_series_current(&p->s[SIM_S_NEW], now),
	        used = sim_series_current(&p->s[SIM_S_USED], now);
	for (int i = 0; i < n; i++) {
		cJSON *o = cJSON_CreateObject();
		if (!o)
			break;
		int cond = used > 0 && sim_rng_unit(&r) < 0.5 ? (int)sim_rng_range(&r, 2, 5) : 1;
		int32_t base = cond == 1 ? newp : used;
		if (base <= 0)
			base = p->base[1];
		int32_t price = base + (int32_t)sim_rng_range(&r, 0, base / 4 + 1);
		int32_t ship = sim_rng_unit(&r) < 0.5 ? 0 : 399;
		int32_t offer_csv[3] = {now - (int32_t)sim_rng_range(&r, 0, 3 * SIM_DAY), price, ship};
		bool fba = sim_rng_unit(&r) < 0.4;
		cJSON_AddNumberToObject(o, "offerId", i);
		cJSON_AddStringToObject(o, "sellerId", cat->sellers[sim_rng_range(&r, 0, cat->nsellers - 1)]);
		cJSON_AddNumberToObject(o, "condition", cond);
		cJSON_AddBoolToObject(o, "isFBA", fba);
		cJSON_AddBoolToObject(o, "isPrime", fba);
		cJSON_AddBoolToObject(o, "isShippable", 1);
		cJSON_AddNumberToObject(o, "lastSeen", now);
		cJSON_AddItemToObject(o, "offerCSV", int_array(offer_csv, 3));
		cJSON_AddItemToArray(a, o);
	}
	return a;
}

int64_t sim_product_answer(const struct sim_catalog *cat, const struct sim_product_req *req, int32_t now,
                           cJSON *products)
{
	int64_t cost = 0;
	for (int i = 0; i < req->nasins; i++) {
		const struct sim_product *p = sim_catalog_find(cat, req->asins[i]);
		if (!p)
			continue; /* Unknown ASINs are neither returned nor charged. */
		bool dup = false;
		for (int j = 0; j < i; j++)
			dup = dup || strcmp(req->asins[j], req->asins[i]) == 0;
		if (dup)
			continue;
		int32_t last_update = sim_product_last_update(p, now);
		int found = req->offers < p->noffers ? req->offers : p->noffers;
		if (req->offers > 0)
			cost += 6 * (found > 10 ? (found + 9) / 10 : 1);
		else
			cost += 1;
		cost += (req->buybox ? 2 : 0) + (req->stock ? 2 : 0) + (req->rating ? 1 : 0);
		if (req->update == 0 && last_update >= now - 60)
			cost += 1;

		cJSON *o = cJSON_CreateObject();
		if (!o)
			break;
		cJSON_AddStringToObject(o, "asin", p->asin);
		cJSON_AddNumberToObject(o, "domainId", req->domain);
		cJSON_AddStringToObject(o, "title", p->title);
		cJSON_AddNumberToObject(o, "productType", 0);
		cJSON_AddNullToObject(o, "parentAsin");
		cJSON_AddStringToObject(o, "imagesCSV", p->image);
		cJSON_AddNumberToObject(o, "rootCategory", p->root_cat);
		cJSON_AddItemToObject(o, "categories", int_array(p->cats, 2));
		cJSON_AddNumberToObject(o, "lastUpdate", last_update);
		cJSON_AddNumberToObject(o, "lastPriceChange", sim_product_last_price_change(p, now));
		if (req->history) {
			cJSON *csv = cJSON_AddArrayToObject(o, "csv");
			for (int t = 0; t < SIM_NTYPES; t++) {
				const struct sim_series *s = type_series(p, t, req->buybox || req->offers > 0);
				/* A type without any data is null, as on Keepa. */
				if (s && sim_series_at(s, now) < 0)
					s = NULL;
				cJSON_AddItemToArray(csv, s ? csv_series(s, now, req->days,
				                                         t == SIM_TYPE_BUYBOX ? p->ship : -1)
				                            : cJSON_CreateNull());
			}
		} else {
			cJSON_AddNullToObject(o, "csv");
		}
		if (req->stats_days > 0)
			cJSON_AddItemToObject(o, "stats", stats_json(p, req, now));
		if (req->offers > 0)
			cJSON_AddItemToObject(o, "offers", offers_json(cat, p, found, now));
		cJSON_AddItemToArray(products, o);
	}
	return cost;
}

int64_t sim_seller_answer(const struct sim_catalog *cat, int domain, char **ids, int nids, int32_t now,
                          cJSON *sellers)
{
	int64_t cost = 0;
	for (int i = 0; i < nids; i++) {
		int s = sim_catalog_find_seller(cat, ids[i]);
		if (s < 0 || cJSON_GetObjectItemCaseSensitive(sellers, ids[i]))
			continue;
		cost++;
		struct sim_rng r = {hash_str(ids[i]) ^ cat->seed};
		char name[32];
		snprintf(name, sizeof(name), "Sim Seller %d", s + 1);
		cJSON *o = cJSON_AddObjectToObject(sellers, ids[i]);
		if (!o)
			break;
		cJSON_AddStringToObject(o, "sellerId", ids[i]);
		cJSON_AddStringToObject(o, "sellerName", name);
		cJSON_AddNumberToObject(o, "domainId", domain);
		cJSON_AddNumberToObject(o, "currentRating", (double)sim_rng_range(&r, 60, 100));
		cJSON_AddNumberToObject(o, "currentRatingCount", (double)sim_rng_range(&r, 10, 90000));
		cJSON_AddNumberToObject(o, "trackedSince",
		                        cat->start_kmin - (int32_t)sim_rng_range(&r, 30, 3000) * SIM_DAY);
		cJSON_AddNumberToObject(o, "lastUpdate", now);
	}
	return cost;
}
