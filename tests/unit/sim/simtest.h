/*
 * simtest.h - a plain libcurl client for the simulator's tests: start an
 * in-process sim, GET/POST over real HTTP on 127.0.0.1, parse the JSON.
 */
#ifndef TG_TEST_SIMTEST_H
#define TG_TEST_SIMTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "sim.h"

#define KEEPA_EPOCH_MIN 21564000LL
/* 2026-01-01 00:00 UTC: a fixed virtual start keeps runs comparable. */
#define TEST_START_MS 1767225600000LL

struct http_res {
	long status;
	char *body;
	size_t len;
	bool gzip;   /* the answer carried Content-Encoding: gzip */
	int curl_rc; /* CURLcode */
	cJSON *json; /* NULL when the body is not JSON */
};

/* Options for tests: fixed start, frozen clock (10 min per Keepa minute). */
struct sim_options test_options(void);
struct sim *test_sim_start(const struct sim_options *o);
/* The bucket's balance now, from /_sim/stats. */
long long sim_balance(uint16_t port);

/* GET http://127.0.0.1:port<path>; gzip asks for Accept-Encoding: gzip. */
void http_get(uint16_t port, const char *path, bool gzip, long timeout_ms, struct http_res *res);
void http_post(uint16_t port, const char *path, const char *body, struct http_res *res);
void http_res_free(struct http_res *res);

/* GET that must answer `status` with JSON; returns the (owned) JSON. */
cJSON *get_json(uint16_t port, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* URL-encode (malloc'd). */
char *urlenc(const char *s);
/* /deal or /_sim/deals path for a selection (malloc'd). */
char *deal_path(const char *prefix, const char *selection);

long long jnum(const cJSON *o, const char *name);
/* o[name][i] and o[name][i][j] as integers. */
long long jidx(const cJSON *o, const char *name, int i);
long long jidx2(const cJSON *o, const char *name, int i, int j);
bool has_envelope(const cJSON *o);
/* Keepa minute of an envelope's timestamp. */
long long env_minute(const cJSON *o);

/* n known ASINs (from /_sim/deals, broad query), comma-joined, malloc'd. */
char *known_asins(uint16_t port, int n);
void sleep_ms(long ms);
/* The items of a JSON array as a malloc'd vector (cJSON_GetArrayItem is
 * linear, so loops over big arrays index this instead). */
const cJSON **items(const cJSON *a, int *n);

#endif
