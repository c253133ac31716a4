/*
 * sim_http.c - the simulator's API face: routing, the key, the token
 * envelope and the deficit rule, fault injection and gzip. One lock
 * serialises the bucket and the catalog, so the check of the balance and the
 * charge are one atomic step.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include <tollgate/tollgate.h>

#include "sim_server.h"

#define MAX_BODY (1 << 20)
#define MAX_ASINS 100

const char *const sim_path_names[NPATHS] = {"/token", "/deal", "/product", "/seller", "other"};
const int sim_statuses[NSTATUS] = {200, 400, 404, 405, 429, 500};
const char *const sim_fault_names[NFAULTS] = {"none", "500", "hang", "garbage", "error"};

/* One answer being built. */
struct reply {
	int status;
	cJSON *root;
	int64_t consumed;
	bool zero_envelope; /* the all-zero envelope (bad key, 404), not a reading */
	enum fault fault;
};

/* Sleep up to ms, returning early when the server stops. */
static void nap(struct sim *sim, int64_t ms)
{
	while (ms > 0 && !atomic_load(&sim->stopping)) {
		int64_t step = ms < 20 ? ms : 20;
		struct timespec ts = {.tv_sec = 0, .tv_nsec = step * 1000000};
		nanosleep(&ts, NULL);
		ms -= step;
	}
}

static void set_error(struct reply *r, int status, const char *type, const char *message)
{
	r->status = status;
	cJSON *e = cJSON_AddObjectToObject(r->root, "error");
	if (e) {
		cJSON_AddStringToObject(e, "type", type);
		cJSON_AddStringToObject(e, "message", message);
		cJSON_AddStringToObject(e, "details", "tollgate sim");
	}
}

/* Called with the lock held, after the bucket was brought up to date. */
static void add_envelope(struct sim *sim, struct reply *r, int64_t elapsed, int64_t t0)
{
	cJSON *o = r->root;
	bool zero = r->zero_envelope;
	cJSON_AddNumberToObject(o, "timestamp", (double)virtual_unix_ms(sim, elapsed));
	cJSON_AddNumberToObject(o, "tokensLeft", zero ? 0 : (double)sim->bucket.balance);
	cJSON_AddNumberToObject(o, "refillIn",
	                        zero ? 0 : (double)sim_bucket_refill_in(&sim->bucket, elapsed));
	cJSON_AddNumberToObject(o, "refillRate", zero ? 0 : sim->bucket.rate);
	cJSON_AddNumberToObject(o, "tokenFlowReduction", 0.0);
	cJSON_AddNumberToObject(o, "tokensConsumed", zero ? 0 : (double)r->consumed);
	cJSON_AddNumberToObject(o, "processingTimeInMs", zero ? 0 : (double)(mono_ms() - t0));
}

static void count(struct sim *sim, enum path_id p, int status)
{
	sim->requests_total++;
	for (int i = 0; i < NSTATUS; i++)
		if (sim_statuses[i] == status)
			sim->counts[p][i]++;
}

/* -------------------------------------------------------- parameter reading */

const char *sim_arg(struct MHD_Connection *c, const char *name)
{
	return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
}

/* Strict integer: 1 when present, 0 absent, -1 malformed or out of range. */
int sim_int_arg(struct MHD_Connection *c, const char *name, long long lo, long long hi, long long *out,
                char *msg, size_t msglen)
{
	const char *s = sim_arg(c, name);
	if (!s)
		return 0;
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (!*s || *end || errno || v < lo || v > hi) {
		snprintf(msg, msglen, "parameter '%s' must be an integer in %lld..%lld", name, lo, hi);
		return -1;
	}
	*out = v;
	return 1;
}

static bool valid_domain(long long d)
{
	return (d >= 1 && d <= 6) || (d >= 8 && d <= 12);
}

static int domain_arg(struct MHD_Connection *c, int *out, char *msg, size_t msglen)
{
	long long v;
	int r = sim_int_arg(c, "domain", 1, 12, &v, msg, msglen);
	if (r < 0)
		return -1;
	if (r == 0 || !valid_domain(v)) {
		snprintf(msg, msglen, "%s",
		         r == 0 ? "parameter 'domain' is required" : "'domain' is not a Keepa domain");
		return -1;
	}
	*out = (int)v;
	return 0;
}

/* Split a CSV list in place into at most max + 1 entries (so callers can
 * tell "too many"). Returns the count. */
static int split_csv(char *s, char **out, int max)
{
	int n = 0;
	char *save = NULL;
	/* strtok_r: connections are parsed in parallel, outside the lock. */
	for (char *tok = strtok_r(s, ",", &save); tok && n <= max; tok = strtok_r(NULL, ",", &save))
		if (*tok)
			out[n++] = tok;
	return n;
}

/* ---------------------------------------------------------------- routes */

static void answer_token(struct sim *sim, struct reply *r)
{
	(void)sim;
	r->status = 200;
}

static void answer_deal(struct sim *sim, struct reply *r, const char *json, const struct sim_selection *sel,
                        int64_t elapsed, int32_t now)
{
	const struct sim_deal_result *res;
	bool repeat;
	cJSON *deals = cJSON_AddObjectToObject(r->root, "deals");
	if (!deals ||
	    sim_cache_lookup(&sim->cache, &sim->cat, json, sel, sim->opt.deal_age, elapsed,
	                     now, &res, &repeat) ||
	    sim_deal_serve(&sim->cat, res, sel->page, deals)) {
		set_error(r, 500, "serverError", "out of memory");
		return;
	}
	r->status = 200;
	r->consumed = 5;
}

struct api_req {
	enum path_id path;
	struct sim_selection sel;
	const char *sel_json; /* the selection's text, the cache's key */
	bool has_sel;
	struct sim_product_req prod;
	char *list; /* the CSV buffer behind prod.asins or the seller ids */
	char *ids[MAX_ASINS + 1];
	int nids;
	int domain;
};

/* Validate the request before the balance is looked at; 0 or -1 with msg. */
static int api_parse(struct MHD_Connection *c, struct conn *cc, struct api_req *q, char *msg, size_t msglen)
{
	long long v;
	int r;
	char *err = NULL;
	const char *list;

	switch (q->path) {
	case P_TOKEN:
		return 0;
	case P_DEAL: {
		const char *json = cc->len ? cc->body : sim_arg(c, "selection");
		if (sim_selection_parse(&q->sel, json, &err)) {
			snprintf(msg, msglen, "invalid selection: %s", err ? err : "?");
			free(err);
			return -1;
		}
		q->has_sel = true;
		q->sel_json = json;
		return 0;
	}
	case P_PRODUCT:
		if (domain_arg(c, &q->prod.domain, msg, msglen))
			return -1;
		if (sim_arg(c, "code")) {
			snprintf(msg, msglen, "the simulator does not look up 'code'; use 'asin'");
			return -1;
		}
		list = sim_arg(c, "asin");
		break;
	case P_SELLER:
		if (domain_arg(c, &q->domain, msg, msglen))
			return -1;
		list = sim_arg(c, "seller");
		break;
	default:
		return -1;
	}
	if (!list || !(q->list = strdup(list)) || (q->nids = split_csv(q->list, q->ids, MAX_ASINS)) == 0) {
		snprintf(msg, msglen, "parameter '%s' is required", q->path == P_PRODUCT ? "asin" : "seller");
		return -1;
	}
	if (q->nids > MAX_ASINS) {
		snprintf(msg, msglen, "at most %d %s per request", MAX_ASINS,
		         q->path == P_PRODUCT ? "ASINs" : "sellers");
		return -1;
	}
	if (q->path == P_SELLER)
		return 0;
	struct sim_product_req *p = &q->prod;
	p->asins = q->ids;
	p->nasins = q->nids;
	p->history = true;
	p->update = INT32_MIN;
	if ((r = sim_int_arg(c, "stats", 1, 36500, &v, msg, msglen)) < 0)
		return -1;
	p->stats_days = r ? (int)v : 0;
	if ((r = sim_int_arg(c, "history", 0, 1, &v, msg, msglen)) < 0)
		return -1;
	if (r)
		p->history = v;
	if ((r = sim_int_arg(c, "days", 1, 36500, &v, msg, msglen)) < 0)
		return -1;
	p->days = r ? (int)v : 0;
	if ((r = sim_int_arg(c, "offers", 20, 100, &v, msg, msglen)) < 0)
		return -1;
	p->offers = r ? (int)v : 0;
	if ((r = sim_int_arg(c, "buybox", 0, 1, &v, msg, msglen)) < 0)
		return -1;
	p->buybox = r && v;
	if ((r = sim_int_arg(c, "stock", 0, 1, &v, msg, msglen)) < 0)
		return -1;
	p->stock = r && v;
	if ((r = sim_int_arg(c, "rating", 0, 1, &v, msg, msglen)) < 0)
		return -1;
	p->rating = r && v;
	if ((r = sim_int_arg(c, "update", -1, 1000000, &v, msg, msglen)) < 0)
		return -1;
	if (r)
		p->update = (int)v;
	return 0;
}

static void api_req_release(struct api_req *q)
{
	if (q->has_sel)
		sim_selection_release(&q->sel);
	free(q->list);
}

/* -------------------------------------------------------------- responses */

static bool accepts_gzip(struct MHD_Connection *c)
{
	const char *ae = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING);
	return ae && strcasestr(ae, "gzip");
}

static char *gzip_buf(const char *in, size_t len, size_t *outlen)
{
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return NULL;
	size_t cap = deflateBound(&zs, len) + 32;
	char *out = malloc(cap);
	if (!out)
		goto err_deflate;
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)len;
	zs.next_out = (Bytef *)out;
	zs.avail_out = (uInt)cap;
	if (deflate(&zs, Z_FINISH) != Z_STREAM_END)
		goto err_out;
	*outlen = zs.total_out;
	deflateEnd(&zs);
	return out;

err_out:
	free(out);
err_deflate:
	deflateEnd(&zs);
	return NULL;
}

/* Queue body (malloc'd, owned from here) with status. */
static enum MHD_Result send_body(struct MHD_Connection *c, int status, char *body, size_t len, bool json)
{
	bool gz = accepts_gzip(c);
	if (gz) {
		size_t zlen;
		char *z = gzip_buf(body, len, &zlen);
		if (z) {
			free(body);
			body = z;
			len = zlen;
		} else {
			gz = false;
		}
	}
	struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	                        json ? "application/json;charset=UTF-8" : "text/plain");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Accept-Encoding");
	if (gz)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
	enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return ret;
}

enum MHD_Result sim_send_json(struct MHD_Connection *c, int status, cJSON *root)
{
	char *body = cJSON_PrintUnformatted(root);
	if (!body)
		return MHD_NO;
	return send_body(c, status, body, strlen(body), true);
}

/* ------------------------------------------------------------ the API side */

static enum path_id route(const char *path)
{
	for (int p = 0; p < P_OTHER; p++)
		if (strcmp(path, sim_path_names[p]) == 0)
			return (enum path_id)p;
	return P_OTHER;
}

static enum fault draw_fault(struct sim *sim)
{
	const struct sim_options *o = &sim->opt;
	if (o->p500 <= 0 && o->phang <= 0 && o->pgarbage <= 0 && o->perror <= 0)
		return F_NONE;
	double u = sim_rng_unit(&sim->fault_rng);
	if (u < o->p500)
		return F_500;
	if (u < o->p500 + o->phang)
		return F_HANG;
	if (u < o->p500 + o->phang + o->pgarbage)
		return F_GARBAGE;
	if (u < o->p500 + o->phang + o->pgarbage + o->perror)
		return F_ERROR;
	return F_NONE;
}

static enum MHD_Result handle_api(struct sim *sim, struct MHD_Connection *c, struct conn *cc,
                                  const char *path, const char *method)
{
	int64_t t0 = mono_ms();
	struct reply r = {.status = 200};
	struct api_req q = {.path = route(path)};
	char msg[512];

	r.root = cJSON_CreateObject();
	if (!r.root)
		return MHD_NO;
	pthread_mutex_lock(&sim->lock);
	if (q.path == P_OTHER) {
		r.zero_envelope = true;
		set_error(&r, 404, "notFound", "unknown path");
		goto answer;
	}
	const char *key = sim_arg(c, "key");
	if (!key || strcmp(key, sim->key) != 0) {
		/* The key is never echoed, right or wrong. */
		r.zero_envelope = true;
		set_error(&r, 400, "invalidKey", key ? "invalid access key" : "missing access key");
		goto answer;
	}
	if (strcmp(method, "GET") != 0 && !(strcmp(method, "POST") == 0 && q.path == P_DEAL)) {
		set_error(&r, 400, "invalidParameter", "method not supported on this path");
		goto answer;
	}
	if (cc->too_big) {
		set_error(&r, 400, "invalidParameter", "request body too large");
		goto answer;
	}
	r.fault = draw_fault(sim);
	if (r.fault == F_500) {
		set_error(&r, 500, "serverError", "simulated server error");
		goto answer;
	}
	if (r.fault == F_HANG) {
		sim->faults[F_HANG]++;
		sim->requests_total++;
		pthread_mutex_unlock(&sim->lock);
		cJSON_Delete(r.root);
		nap(sim, sim->opt.hang_ms);
		return MHD_NO;
	}
	if (r.fault == F_ERROR) {
		set_error(&r, 200, "simulatedError", "simulated in-body error: no payload");
		goto answer;
	}
	pthread_mutex_unlock(&sim->lock);
	int bad = api_parse(c, cc, &q, msg, sizeof(msg));
	pthread_mutex_lock(&sim->lock);
	if (bad) {
		set_error(&r, 400, "invalidParameter", msg);
		goto answer;
	}

	int64_t el = elapsed_ms(sim);
	sim_bucket_update(&sim->bucket, el);
	int32_t now = keepa_minute(virtual_unix_ms(sim, el));
	if (sim_catalog_advance(&sim->cat, now)) {
		set_error(&r, 500, "serverError", "out of memory");
		goto answer;
	}
	if (q.path != P_TOKEN && sim->bucket.balance <= 0) {
		r.status = 429;
		sim->bucket.served_429++;
		goto answer;
	}
	switch (q.path) {
	case P_TOKEN:
		answer_token(sim, &r);
		break;
	case P_DEAL:
		answer_deal(sim, &r, q.sel_json, &q.sel, el, now);
		break;
	case P_PRODUCT: {
		cJSON *products = cJSON_AddArrayToObject(r.root, "products");
		r.consumed = sim_product_answer(&sim->cat, &q.prod, now, products);
		break;
	}
	case P_SELLER: {
		cJSON *sellers = cJSON_AddObjectToObject(r.root, "sellers");
		r.consumed = sim_seller_answer(&sim->cat, q.domain, q.ids, q.nids, now, sellers);
		break;
	}
	default:
		break;
	}
	sim->bucket.balance -= r.consumed;
	sim->bucket.consumed_total += r.consumed;

answer:
	el = elapsed_ms(sim);
	sim_bucket_update(&sim->bucket, el);
	add_envelope(sim, &r, el, t0);
	count(sim, q.path, r.status);
	if (r.fault == F_500 || r.fault == F_ERROR || r.fault == F_GARBAGE)
		sim->faults[r.fault]++;
	pthread_mutex_unlock(&sim->lock);
	api_req_release(&q);

	if (sim->opt.latency_ms > 0)
		nap(sim, sim->opt.latency_ms);
	char *body = cJSON_PrintUnformatted(r.root);
	cJSON_Delete(r.root);
	if (!body)
		return MHD_NO;
	size_t len = strlen(body);
	if (r.fault == F_GARBAGE) {
		/* The work was done and charged, but the answer is cut in half:
		 * the client must survive a body it cannot parse. */
		len /= 2;
		body[len] = '\0';
	}
	return send_body(c, r.status, body, len, true);
}

enum MHD_Result sim_http_on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                    const char *version, const char *upload_data, size_t *upload_size,
                                    void **con_cls)
{
	struct sim *sim = cls;
	struct conn *cc = *con_cls;
	(void)version;

	if (!cc) {
		cc = calloc(1, sizeof(*cc));
		if (!cc)
			return MHD_NO;
		*con_cls = cc;
		return MHD_YES;
	}
	if (*upload_size) {
		if (cc->len + *upload_size > MAX_BODY) {
			cc->too_big = true;
		} else {
			char *nb = realloc(cc->body, cc->len + *upload_size + 1);
			if (!nb)
				return MHD_NO;
			memcpy(nb + cc->len, upload_data, *upload_size);
			cc->body = nb;
			cc->len += *upload_size;
			cc->body[cc->len] = '\0';
		}
		*upload_size = 0;
		return MHD_YES;
	}

	/* Both /product and /product/ are accepted. */
	char path[256];
	snprintf(path, sizeof(path), "%s", url);
	size_t n = strlen(path);
	while (n > 1 && path[n - 1] == '/')
		path[--n] = '\0';
	if (strncmp(path, "/_sim/", 6) == 0)
		return sim_ground_handle(sim, c, cc, path);
	return handle_api(sim, c, cc, path, method);
}

void sim_http_on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                           enum MHD_RequestTerminationCode toe)
{
	struct conn *cc = *con_cls;
	(void)cls;
	(void)c;
	(void)toe;
	if (cc) {
		free(cc->body);
		free(cc);
		*con_cls = NULL;
	}
}
