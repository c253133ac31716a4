/*
 * simtest.c - see simtest.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "simtest.h"

struct sim_options test_options(void)
{
	struct sim_options o = sim_options_default();
	o.start_unix_ms = TEST_START_MS;
	o.minute_ms = 600000;
	o.products = 1500;
	o.history_days = 200;
	return o;
}

struct sim *test_sim_start(const struct sim_options *o)
{
	struct sim *sim = NULL;
	char *err = NULL;
	int ret = sim_start(o, &sim, &err);
	if (ret)
		fprintf(stderr, "sim_start: %s\n", err ? err : "?");
	free(err);
	assert_int_equal(ret, 0);
	assert_non_null(sim);
	assert_true(sim_port(sim) > 0);
	return sim;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct http_res *res = userdata;
	size_t n = size * nmemb;
	char *nb = realloc(res->body, res->len + n + 1);
	if (!nb)
		return 0;
	memcpy(nb + res->len, ptr, n);
	res->body = nb;
	res->len += n;
	res->body[res->len] = '\0';
	return n;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct http_res *res = userdata;
	size_t n = size * nmemb;
	if (n >= 17 && strncasecmp(ptr, "Content-Encoding:", 17) == 0 && memmem(ptr, n, "gzip", 4))
		res->gzip = true;
	return n;
}

static void perform(uint16_t port, const char *path, const char *post, bool gzip, long timeout_ms,
                    struct http_res *res)
{
	static bool inited;
	if (!inited) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		inited = true;
	}
	memset(res, 0, sizeof(*res));
	char url[16384];
	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", (unsigned)port, path);
	CURL *h = curl_easy_init();
	assert_non_null(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, res);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, res);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 60000L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	struct curl_slist *hdrs = NULL;
	if (gzip)
		curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "gzip"); /* decodes for us */
	if (post) {
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, post);
	}
	res->curl_rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &res->status);
	curl_easy_cleanup(h);
	curl_slist_free_all(hdrs);
	if (res->body)
		res->json = cJSON_Parse(res->body);
}

void http_get(uint16_t port, const char *path, bool gzip, long timeout_ms, struct http_res *res)
{
	perform(port, path, NULL, gzip, timeout_ms, res);
}

void http_post(uint16_t port, const char *path, const char *body, struct http_res *res)
{
	perform(port, path, body, false, 0, res);
}

void http_res_free(struct http_res *res)
{
	free(res->body);
	cJSON_Delete(res->json);
	memset(res, 0, sizeof(*res));
}

cJSON *get_json(uint16_t port, int status, const char *fmt, ...)
{
	char path[16384];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	struct http_res res;
	http_get(port, path, false, 0, &res);
	if (res.status != status)
		fprintf(stderr, "GET %s -> %ld: %.300s\n", path, res.status, res.body ? res.body : "");
	assert_int_equal(res.status, status);
	assert_non_null(res.json);
	cJSON *j = res.json;
	res.json = NULL;
	http_res_free(&res);
	return j;
}

char *urlenc(const char *s)
{
	char *out = malloc(strlen(s) * 3 + 1), *o = out;
	assert_non_null(out);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    strchr("-_.~", c))
			*o++ = (char)c;
		else
			o += sprintf(o, "%%%02X", c);
	}
	*o = '\0';
	return out;
}

char *deal_path(const char *prefix, const char *selection)
{
	char *enc = urlenc(selection);
	size_t n = strlen(prefix) + strlen(enc) + 64;
	char *p = malloc(n);
	assert_non_null(p);
	snprintf(p, n, "%s%sselection=%s", prefix, strchr(prefix, '?') ? "&" : "?", enc);
	free(enc);
	return p;
}

long long jnum(const cJSON *o, const char *name)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);
	if (!cJSON_IsNumber(it))
		fprintf(stderr, "missing number '%s'\n", name);
	assert_true(cJSON_IsNumber(it));
	return (long long)it->valuedouble;
}

long long jidx(const cJSON *o, const char *name, int i)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, name);
	assert_true(cJSON_IsArray(a));
	const cJSON *it = cJSON_GetArrayItem(a, i);
	assert_true(cJSON_IsNumber(it));
	return (long long)it->valuedouble;
}

long long jidx2(const cJSON *o, const char *name, int i, int j)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, name);
	assert_true(cJSON_IsArray(a));
	const cJSON *it = cJSON_GetArrayItem(cJSON_GetArrayItem(a, i), j);
	assert_true(cJSON_IsNumber(it));
	return (long long)it->valuedouble;
}

bool has_envelope(const cJSON *o)
{
	static const char *const f[] = {"timestamp",         "tokensLeft",         "refillIn",
	                                "refillRate",        "tokenFlowReduction", "tokensConsumed",
	                                "processingTimeInMs"};
	for (size_t i = 0; i < sizeof(f) / sizeof(*f); i++)
		if (!cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, f[i])))
			return false;
	return true;
}

long long env_minute(const cJSON *o)
{
	return jnum(o, "timestamp") / 60000 - KEEPA_EPOCH_MIN;
}

char *known_asins(uint16_t port, int n)
{
	char *p = deal_path("/_sim/deals", "{\"domainId\":1,\"priceTypes\":[3],\"dateRange\":3}");
	cJSON *j = get_json(port, 200, "%s", p);
	free(p);
	const cJSON *dr = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "deals"), "dr");
	assert_true(cJSON_GetArraySize(dr) >= n);
	char *out = calloc((size_t)n, 12);
	assert_non_null(out);
	for (int i = 0; i < n; i++) {
		if (i)
			strcat(out, ",");
		strcat(out, cJSON_GetObjectItem(cJSON_GetArrayItem(dr, i), "asin")->valuestring);
	}
	cJSON_Delete(j);
	return out;
}

void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

const cJSON **items(const cJSON *a, int *n)
{
	*n = cJSON_GetArraySize(a);
	const cJSON **v = calloc((size_t)*n + 1, sizeof(*v));
	assert_non_null(v);
	int i = 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, a)
	{
		v[i++] = it;
	}
	return v;
}

long long sim_balance(uint16_t port)
{
	cJSON *j = get_json(port, 200, "/_sim/stats");
	long long b = jnum(j, "tokensLeft");
	cJSON_Delete(j);
	return b;
}
