/*
 * test_keepa.c - the Keepa client against a scripted HTTP server on
 * 127.0.0.1 and the real token scheduler.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "keepa/keepa.h"
#include "keepa/envelope.h"
#include "observe/log.h"
#include "scripted_server.h"
#include "tokens/tokens.h"

#define MARKER "MARKERkey0123456789abcdef"

/* One client, its scheduler and a server, torn down by fx_down(). */
struct fx {
	struct ss *ss;
	struct keepa *k;
	struct tokens *t;
	struct keepa_conn *c;
	atomic_bool stop;
	int cls;
};

static void fx_up_opts(struct fx *f, struct keepa_options *o)
{
	char *err = NULL;
	struct tokens_config cfg;

	memset(f, 0, sizeof(*f));
	atomic_init(&f->stop, false);
	f->ss = ss_new();
	assert_non_null(f->ss);
	o->endpoint = ss_url(f->ss);
	if (!o->key)
		o->key = "testkey";
	o->stop = &f->stop;
	if (!o->backoff_base_ms)
		o->backoff_base_ms = 5;
	if (!o->backoff_cap_ms)
		o->backoff_cap_ms = 20;
	if (!o->max_retries)
		o->max_retries = 3;
	if (!o->timeout_s)
		o->timeout_s = 20;
	assert_int_equal(keepa_new(o, NULL, &f->k, &err), 0);
	tokens_config_default(&cfg);
	assert_int_equal(tokens_new(&cfg, NULL, keepa_sync, f->k, &f->t, &err), 0);
	keepa_set_tokens(f->k, f->t);
	f->cls = tokens_add_class(f->t, "test", 1.0);
	assert_true(f->cls >= 0);
	assert_int_equal(keepa_conn_new(f->k, &f->c, &err), 0);
	assert_null(err);
}

static void fx_up(struct fx *f)
{
	struct keepa_options o = {0};
	fx_up_opts(f, &o);
}

static void fx_down(struct fx *f)
{
	tokens_shutdown(f->t);
	keepa_conn_free(f->c);
	keepa_free(f->k);
	tokens_free(f->t);
	ss_free(f->ss);
	log_clear_secrets();
}

static const struct tg_keepa_param product_params[] = {{"asin", "B000TEST01"}, {"stats", "90"}};

static const struct tg_keepa_request product_req = {
    .kind = "product", .units = 1, .path = "/product", .params = product_params, .nparams = 2};

static int call(struct fx *f, const struct tg_keepa_request *req, cJSON **doc, char **err)
{
	return keepa_call(f->k, f->c, f->cls, 1.0, req, doc, err);
}

/* ---------------------------------------------------------------- envelope */

static void envelope_any_order(void **state)
{
	const char *text =
	    "{\"processingTimeInMs\":12,\"tokensConsumed\":7,\"refillRate\":20,\"products\":[],"
	    "\"refillIn\":1234,\"tokenFlowReduction\":0.5,\"tokensLeft\":93,\"timestamp\":1700000000000}";
	cJSON *doc = cJSON_Parse(text);
	struct tokens_envelope env;

	(void)state;
	assert_int_equal(keepa_envelope_parse(doc, 1, &env), KEEPA_ENVELOPE_READING);
	assert_int_equal(env.timestamp_ms, 1700000000000LL);
	assert_int_equal(env.tokens_left, 93);
	assert_int_equal(env.refill_in_ms, 1234);
	assert_int_equal(env.refill_rate, 20);
	assert_true(env.token_flow_reduction == 0.5);
	assert_int_equal(env.tokens_consumed, 7);
	assert_int_equal(env.processing_ms, 12);
	cJSON_Delete(doc);
}

static void envelope_missing_fields(void **state)
{
	struct tokens_envelope env;
	cJSON *doc = cJSON_Parse("{\"tokensLeft\":5,\"refillRate\":5}");

	(void)state;
	assert_int_equal(keepa_envelope_parse(doc, 42, &env), KEEPA_ENVELOPE_READING);
	assert_int_equal(env.timestamp_ms, 42);
	assert_int_equal(env.refill_in_ms, 60000); /* the latest tick keeps est a lower bound */
	assert_int_equal(env.tokens_consumed, 0);
	cJSON_Delete(doc);

	doc = cJSON_Parse("{\"refillRate\":5,\"refillIn\":100}");
	assert_int_equal(keepa_envelope_parse(doc, 42, &env), KEEPA_ENVELOPE_NONE);
	cJSON_Delete(doc);
	doc = cJSON_Parse("{\"tokensLeft\":\"5\",\"refillRate\":5}"); /* a string is not a number */
	assert_int_equal(keepa_envelope_parse(doc, 42, &env), KEEPA_ENVELOPE_NONE);
	cJSON_Delete(doc);
	doc = cJSON_Parse("[1,2]");
	assert_int_equal(keepa_envelope_parse(doc, 42, &env), KEEPA_ENVELOPE_NONE);
	cJSON_Delete(doc);
	assert_int_equal(keepa_envelope_parse(NULL, 42, &env), KEEPA_ENVELOPE_NONE);
}

static void envelope_zero_and_negative(void **state)
{
	struct tokens_envelope env;
	cJSON *doc =
	    cJSON_Parse("{\"timestamp\":1700000000000,\"tokensLeft\":0,\"refillIn\":0,\"refillRate\":0,"
	                "\"tokenFlowReduction\":0.0,\"tokensConsumed\":0,\"processingTimeInMs\":1}");

	(void)state;
	assert_int_equal(keepa_envelope_parse(doc, 0, &env), KEEPA_ENVELOPE_ZERO);
	cJSON_Delete(doc);
	/* A real empty bucket still has a rate: a reading. */
	doc = cJSON_Parse("{\"tokensLeft\":0,\"refillIn\":0,\"refillRate\":5,\"tokensConsumed\":0}");
	assert_int_equal(keepa_envelope_parse(doc, 0, &env), KEEPA_ENVELOPE_READING);
	cJSON_Delete(doc);
	doc = cJSON_Parse("{\"tokensLeft\":-42,\"refillIn\":59000,\"refillRate\":5,\"tokensConsumed\":150}");
	assert_int_equal(keepa_envelope_parse(doc, 0, &env), KEEPA_ENVELOPE_READING);
	assert_int_equal(env.tokens_left, -42);
	assert_int_equal(env.tokens_consumed, 150);
	cJSON_Delete(doc);
}

static void envelope_error_message(void **state)
{
	char buf[256];
	cJSON *doc =
	    cJSON_Parse("{\"tokensLeft\":1,\"refillRate\":5,\"error\":{\"details\":\"dateRange: 30\","
	                "\"message\":\"Invalid parameter\",\"type\":\"invalidParameter\"}}");

	(void)state;
	assert_int_equal(keepa_envelope_error(doc, buf, sizeof(buf)), 1);
	assert_string_equal(buf, "Invalid parameter (invalidParameter; dateRange: 30)");
	cJSON_Delete(doc);
	doc = cJSON_Parse("{\"tokensLeft\":1,\"error\":null}");
	assert_int_equal(keepa_envelope_error(doc, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	cJSON_Delete(doc);
	doc = cJSON_Parse("{\"error\":{\"type\":\"x\"}}");
	assert_int_equal(keepa_envelope_error(doc, buf, sizeof(buf)), 1);
	assert_string_equal(buf, "x");
	cJSON_Delete(doc);
}

/* ---------------------------------------------------------------- calls */

static void ok_reconciles_scheduler(void **state)
{
	struct fx f;
	struct ss_answer a = {.status = 200,
	                      .tokens_left = 93,
	                      .refill_in = 30000,
	                      .refill_rate = 20,
	                      .consumed = 7,
	                      .payload = "\"products\":[{\"asin\":\"B000TEST01\"}]"};
	struct tokens_status st = {0};
	const struct ss_request *r;
	cJSON *doc = NULL;
	char *err = NULL;

	(void)state;
	fx_up(&f);
	ss_push(f.ss, &a);
	assert_int_equal(call(&f, &product_req, &doc, &err), 0);
	assert_null(err);
	assert_non_null(doc);
	assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "products"), 0)->child->valuestring,
	                    "B000TEST01");
	assert_int_equal(cJSON_GetObjectItem(doc, "tokensLeft")->valueint, 93);
	cJSON_Delete(doc);

	/* The scheduler read /token once, then reconciled with the answer. */
	assert_int_equal(ss_token_count(f.ss), 1);
	tokens_snapshot(f.t, &st);
	assert_true(st.have_reading);
	assert_int_equal(st.last_left, 93);
	assert_true(st.est <= 93.0 && st.est >= 90.0);
	assert_int_equal(st.cls[f.cls].calls_ok, 1);
	assert_true(st.cls[f.cls].tokens_consumed == 7.0);
	assert_int_equal(st.cls[f.cls].in_flight, 0);

	assert_int_equal(ss_count(f.ss), 1);
	r = ss_request(f.ss, 0);
	assert_string_equal(r->method, "GET");
	assert_string_equal(r->path, "/product");
	assert_string_equal(r->query, "key=testkey&domain=1&asin=B000TEST01&stats=90");
	assert_non_null(r->user_agent);
	assert_string_equal(r->user_agent, "tollgate/" TG_VERSION);
	assert_non_null(r->accept_encoding);
	assert_non_null(strstr(r->accept_encoding, "gzip"));
	fx_down(&f);
	tokens_status_release(&st);
}

static void domain_param_and_encoding(void **state)
{
	static const struct tg_keepa_param params[] = {{"domain", "3"}, {"code", "a b&c=d"}};
	struct tg_keepa_request req = {
	    .kind = "product", .units = 1, .path = "/product", .params = params, .nparams = 2};
	static const struct tg_keepa_param bad[] = {{"key", "other"}};
	struct tg_keepa_request badreq = {
	    .kind = "product", .units = 1, .path = "/product", .params = bad, .nparams = 1};
	struct tg_keepa_request badpath = {.kind = "product", .units = 1, .path = "/product?x=1"};
	struct ss_answer a = {
	    .status = 200, .tokens_left = 90, .refill_in = 30000, .refill_rate = 20, .consumed = 1};
	struct fx f;
	cJSON *doc = NULL;
	char *err = NULL;

	(void)state;
	fx_up(&f);
	ss_push(f.ss, &a);
	assert_int_equal(call(&f, &req, &doc, &err), 0);
	cJSON_Delete(doc);
	/* The server decodes the arguments: they arrived intact, one domain. */
	assert_string_equal(ss_request(f.ss, 0)->query, "key=testkey&domain=3&code=a b&c=d");

	assert_int_equal(call(&f, &badreq, &doc, &err), TG_EINVAL);
	assert_non_null(err);
	free(err);
	err = NULL;
	assert_int_equal(call(&f, &badpath, &doc, &err), TG_EINVAL);
	free(err);
	assert_int_equal(ss_count(f.ss), 1);
	fx_down(&f);
}

static void rate_limited_429_waited_out(void **state)
{
	struct fx f;
	struct ss_answer busy = {
	    .status = 429, .tokens_left = 0, .refill_in = 50, .refill_rate = 20, .consumed = 0};
	struct ss_answer ok = {.status = 200,
	                       .tokens_left = 15,
	                       .refill_in = 59000,
	                       .refill_rate = 20,
	                       .consumed = 5,
	                       .payload = "\"deals\":{\"dr\":[]}"};
	struct tokens_status st = {0};
	struct keepa_stats ks;
	cJSON *doc = NULL;
	char *err = NULL;

	(void)state;
	fx_up(&f);
	/* An outside consumer on the key drained the bucket between the
	 * scheduler's reading (3 left) and the call: the call gets a 429. */
	ss_set_token(f.ss, &(struct ss_answer){
	                       .status = 200, .tokens_left = 3, .refill_in = 30000, .refill_rate = 20});
	ss_push(f.ss, &busy);
	ss_push(f.ss, &ok);
	assert_int_equal(call(&f, &product_req, &doc, &err), 0);
	assert_null(err);
	assert_non_null(cJSON_GetObjectItem(doc, "deals"));
	cJSON_Delete(doc);
	assert_int_equal(ss_count(f.ss), 2);
	tokens_snapshot(f.t, &st);
	assert_int_equal(st.n429, 1);
	assert_int_equal(st.cls[f.cls].calls_429, 1);
	assert_int_equal(st.cls[f.cls].calls_ok, 1);
	keepa_stats(f.k, &ks);
	assert_int_equal(ks.status_429, 1);
	assert_int_equal(ks.retries, 0); /* a 429 is a resend, not a back-off retry */
	assert_int_equal(ks.calls_ok, 1);
	fx_down(&f);
	tokens_status_release(&st);
}

/* Raise the stop flag later, and shut the scheduler down as the daemon does. */
struct stopper {
	atomic_bool *flag;
	int after_ms;
	struct tokens *tokens;
};

static void *stop_later(void *arg)
{
	struct stopper *s = arg;
	struct timespec ts = {s->after_ms / 1000, (long)(s->after_ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
	atomic_store(s->flag, true);
	if (s->tokens)
		tokens_shutdown(s->tokens);
	return NULL;
}

/* A 429 whose envelope the scheduler cannot use (older than its last
 * reading, here) leaves its estimate unchanged, so it would resend at once,
 * forever: the client slows the loop down. */
static void repeated_429_does_not_spin(void **state)
{
	struct fx f;
	struct ss_answer liar = {.status = 429,
	                         .body = "{\"timestamp\":1000,\"tokensLeft\":0,\"refillIn\":10,"
	                                 "\"refillRate\":20,\"tokensConsumed\":0}"};
	struct stopper s;
	pthread_t th;
	cJSON *doc = NULL;
	char *err = NULL;
	int n;

	(void)state;
	fx_up(&f);
	ss_set_default(f.ss, &liar);
	s = (struct stopper){&f.stop, 1500, f.t};
	pthread_create(&th, NULL, stop_later, &s);
	assert_int_equal(call(&f, &product_req, &doc, &err), TG_ESTOPPED);
	pthread_join(th, NULL);
	assert_non_null(strstr(err, "HTTP 429"));
	free(err);
	/* Three resends at once, then one more after a second; not hundreds. */
	n = ss_count(f.ss);
	if (n < 3 || n > 6)
		fail_msg("%d requests", n);
	fx_down(&f);
}

static void server_errors_then_ok(void **state)
{
	struct fx f;
	struct ss_answer bad = {.status = 500, .body = "Internal Server Error"};
	struct ss_answer bad_env = {.status = 503, .tokens_left = 50, .refill_in = 1000, .refill_rate = 20};
	struct ss_answer ok = {
	    .status = 200, .tokens_left = 40, .refill_in = 1000, .refill_rate = 20, .consumed = 1};
	struct keepa_stats ks;
	cJSON *doc = NULL;
	char *err = NULL;

	(void)state;
	fx_up(&f);
	ss_push(f.ss, &bad);
	ss_push(f.ss, &bad_env);
	ss_push(f.ss, &bad);
	ss_push(f.ss, &ok);
	assert_int_equal(call(&f, &product_req, &doc, &err), 0);
	assert_null(err);
	cJSON_Delete(doc);
	assert_int_equal(ss_count(f.ss), 4);
	keepa_stats(f.k, &ks);
	assert_int_equal(ks.retries, 3);
	assert_int_equal(ks.status_5xx, 3);
	assert_int_equal(ks.calls_ok, 1);
	fx_down(&f);
}

/* A gate that lets `open` requests through, then refuses (hot standby's
 * lease gate, core/ha.c), counting how often it was asked. */
struct gate {
	int open, asked;
};

static int count_gate(void *ud, char **errmsg)
{
	struct gate *g = ud;

	if (g->asked++ < g->open)
		return 0;
	*errmsg = strdup("gate: the lease is not confirmed");
	return TG_ESTOPPED;
}

/* The gate is asked before every request, retries included, and a refusal
 * ends the call before anything is sent. */
static void send_gate_before_every_request(void **state)
{
	struct fx f;
	struct gate g = {.open = 2};
	struct ss_answer bad = {.status = 500, .body = "Internal Server Error"};
	cJSON *doc = NULL;
	char *err = NULL;

	(void)state;
	fx_up(&f);
	keepa_set_send_gate(f.k, count_gate, &g);
	ss_set_default(f.ss, &bad);
	/* Two requests go out (the first and its retry), the third is refused. */
	assert_int_equal(call(&f, &product_req, &doc, &err), TG_ESTOPPED);
	assert_null(doc);
	assert_int_equal(g.asked, 3);
	assert_int_equal(ss_count(f.ss), 2);
	assert_non_null(err);
	assert_non_null(strstr(err, "the lease is not confirmed"));
	free(err);
	err = NULL;
	/* Closed from the start: nothing reaches the server. */
	g = (struct gate){.open = 0};
	assert_int_equal(call(&f, &product_req, &doc, &err), TG_ESTOPPED);
	assert_int_equal(ss_count(f.ss), 2);
	free(err);
	fx_down(&f);
}

/* The default answer repeats forever: the call gives up after max_retries. */
static void gives_up(const struct ss_answer *forever, const char *expect_in_msg)
{
	struct fx f;
	struct keepa_options o = {.max_retries = 2};
	struct tokens_status st = {0};
	cJSON *doc = NULL;
	char *err = NULL;

	fx_up_opts(&f, &o);
	ss_set_default(f.ss, forever);
	assert_int_equal(call(&f, &product_req, &doc, &err), TG_ENETWORK);
	assert_null(doc);
	assert_non_null(err);
	if (!strstr(err, expect_in_msg) || !strstr(err, "after 3 attempts"))
		fail_msg("unexpected message: %s", err);
	assert_int_equal(ss_count(f.ss), 3);
	free(err);
	/* Nothing is left in flight in the scheduler. */
	tokens_snapshot(f.t, &st);
	assert_int_equal(st.cls[f.cls].in_flight, 0);
	assert_int_equal(st.cls[f.cls].queued, 0);
	fx_down(&f);
	tokens_status_release(&st);
}

static void server_error_forever(void **state)
{
	struct ss_answer a = {.status = 500, .body = "oops"};
	(void)state;
	gives_up(&a, "HTTP 500");
}

static void garbage_body(void **state)
{
	struct ss_answer a = {.status = 200, .body = "<html>Bad gateway</html>"};
	(void)state;
	gives_up(&a, "not a JSON object");
}

static void truncated_body(void **state)
{
	struct ss_answer a = {.status = 200,
	                      .tokens_left = 1,
	                      .refill_rate = 5,
	                      .refill_in = 10,
	                      .truncate = true,
	                      .payload = "\"products\":[1,2,3,4,5,6,7,8,9]"};
	(void)state;
	gives_up(&a, "GET /product:");
}

static void truncated_gzip(void **state)
{
	struct ss_answer a = {.status = 200,
	                      .tokens_left = 1,
	                      .refill_rate = 5,
	                      .refill_in = 10,
	                      .gzip = true,
	                      .gzip_cut = true,
	                      .pad = 4000};
	(void)state;
	gives_up(&a, "GET /product:");
}

static void bad_key_400(void **state)
{
	struct fx f;
	struct ss_answer a = {.status = 400,
	                      .zero_envelope = true,
	                      .error_json =
	                          "{\"type\":\"invalidKey\",\"message\":\"Invalid or expired API key\"}"};
	struct tokens_status st = {0};
	cJSON *doc = NULL;
	char *err = NULL;

	(void)state;
	fx_up(&f);
	ss_set_default(f.ss, &a);
	assert_int_equal(call(&f, &product_req, &doc, &err), TG_EKEEPA);
	assert_null(doc);
	assert_string_equal(err, "HTTP 400: Invalid or expired API key (invalidKey)");
	assert_int_equal(ss_count(f.ss), 1); /* not retried */
	free(err);
	/* The all-zero envelope is not taken as a reading. */
	tokens_snapshot(f.t, &st);
	assert_int_equal(st.last_left, 100);
	fx_down(&f);
	tokens_status_release(&st);
}

static void other_4xx(void **state)
{
	static const int codes[] = {402, 404, 405};
	struct fx f;
	cJSON *doc = NULL;
	char *err = NULL;

	(void)state;
	fx_up(&f);
	for (size_t i = 0; i < 3; i++) {
		struct ss_answer a = {.status = codes[i],
		                      .tokens_left = 90,
		                      .refill_in = 1000,
		                      .refill_rate = 20,
		                      .error_json = "{\"message\":\"nope\"}"};
		char want[64];

		ss_push(f.ss, &a);
		assert_int_equal(call(&f, &product_req, &doc, &err), TG_EKEEPA);
		snprintf(want, sizeof(want), "HTTP %d: nope", codes[i]);
		assert_string_equal(err, want);
		free(err);
		err = NULL;
	}
	/* A 404 without any body still says what happened. */
	struct ss_answer bare = {.status = 404, .body = ""};
	ss_push(f.ss, &bare);
	assert_int_equal(call(&f, &product_req, &doc, &err), TG_EKEEPA);
	assert_string_equal(err, "HTTP 404: no JSON answer");
	free(err);
	assert_int_equal(ss_count(f.ss), 4);
	fx_down(&f);
}

static void in_body_error_on_200(void **state)
{
	struct fx f;
	struct ss_answer a = {.status = 200,
	                      .tokens_left = 80,
	                      .refill_in = 1000,
	                      .refill_rate = 20,
	                      .consumed = 0,
	                      .error_json =
	                          "{\"type\":\"invalidParameter\",\"message\":\"dateRange out of range\"}"};
	struct tokens_status st = {0};
	cJSON *doc = NULL;
	char *err = NULL;

	(void)state;
	fx_up(&f);
	ss_set_default(f.ss, &a);
	assert_int_equal(call(&f, &product_req, &doc, &err), TG_EKEEPA);
	assert_null(doc);
	assert_string_equal(err, "HTTP 200: dateRange out of range (invalidParameter)");
	assert_int_equal(ss_count(f.ss), 1);
	free(err);
	/* Its envelope still reconciled the scheduler. */
	tokens_snapshot(f.t, &st);
	assert_int_equal(st.last_left, 80);
	fx_down(&f);
	tokens_status_release(&st);
}

static void size_cap(void **state)
{
	struct fx f;
	struct keepa_options o = {.max_response_bytes = 4096};
	struct ss_answer big = {
	    .status = 200, .tokens_left = 80, .refill_in = 1000, .refill_rate = 20, .pad = 20000};
	/* Small on the wire, large once decoded: the cap is on decoded bytes. */
	struct ss_answer bomb = {.status = 200,
	                         .tokens_left = 80,
	                         .refill_in = 1000,
	                         .refill_rate = 20,
	                         .pad = 200000,
	                         .gzip = true};
	struct ss_answer fits = {
	    .status = 200, .tokens_left = 80, .refill_in = 1000, .refill_rate = 20, .pad = 3000};
	cJSON *doc = NULL;
	char *err = NULL;

	(void)state;
	fx_up_opts(&f, &o);
	ss_push(f.ss, &big);
	assert_int_equal(call(&f, &product_req, &doc, &err), TG_ENETWORK);
	assert_null(doc);
	assert_non_null(strstr(err, "larger than the cap of 4096 bytes"));
	free(err);
	err = NULL;
	assert_int_equal(ss_count(f.ss), 1); /* not retried: it would be as large again */
	ss_push(f.ss, &bomb);
	assert_int_equal(call(&f, &product_req, &doc, &err), TG_ENETWORK);
	assert_non_null(strstr(err, "larger than the cap"));
	free(err);
	err = NULL;
	ss_push(f.ss, &fits);
	assert_int_equal(call(&f, &product_req, &doc, &err), 0);
	cJSON_Delete(doc);
	fx_down(&f);
}

static void gzip_decoded(void **state)
{
	struct fx f;
	struct ss_answer a = {.status = 200,
	                      .tokens_left = 70,
	                      .refill_in = 1000,
	                      .refill_rate = 20,
	                      .consumed = 3,
	                      .gzip = true,
	                      .pad = 50000,
	                      .payload = "\"products\":[]"};
	cJSON *doc = NULL;
	char *err = NULL;

	(void)state;
	fx_up(&f);
	ss_push(f.ss, &a);
	assert_int_equal(call(&f, &product_req, &doc, &err), 0);
	assert_int_equal(strlen(cJSON_GetObjectItem(doc, "pad")->valuestring), 50000);
	assert_int_equal(cJSON_GetObjectItem(doc, "tokensConsumed")->valueint, 3);
	cJSON_Delete(doc);
	fx_down(&f);
}

/* Integers a double cannot hold reach the caller with their digits, also
 * through gzip (the text scanned is the decoded body). */
static void exact_integers_kept(void **state)
{
	struct fx f;
	struct ss_answer a = {.status = 200,
	                      .tokens_left = 70,
	                      .refill_in = 1000,
	                      .refill_rate = 20,
	                      .consumed = 1,
	                      .gzip = true,
	                      .payload = "\"deals\":{\"dr\":[{\"asin\":\"B000BIG001\",\"rootCat\":9223372036854775807},"
	                                 "{\"asin\":\"B000BIG002\",\"rootCat\":283155}]}"};
	const cJSON *dr, *big, *small;
	cJSON *doc = NULL;
	char *err = NULL;

	(void)state;
	fx_up(&f);
	ss_push(f.ss, &a);
	assert_int_equal(call(&f, &product_req, &doc, &err), 0);
	dr = cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "deals"), "dr");
	big = cJSON_GetObjectItem(cJSON_GetArrayItem(dr, 0), "rootCat");
	small = cJSON_GetObjectItem(cJSON_GetArrayItem(dr, 1), "rootCat");
	assert_true(cJSON_IsNumber(big));
	assert_non_null(big->valuestring);
	assert_string_equal(big->valuestring, "9223372036854775807");
	assert_null(small->valuestring);
	assert_int_equal(small->valueint, 283155);
	/* The envelope's numbers are small: doubles, no text. */
	assert_null(cJSON_GetObjectItem(doc, "tokensLeft")->valuestring);
	cJSON_Delete(doc);
	fx_down(&f);
}

static void post_deal_json(void **state)
{
	static const char *selection = "{\"domainId\":1,\"priceTypes\":[2],\"page\":0,\"dateRange\":1}";
	struct tg_keepa_request req = {.kind = "deal", .units = 1, .path = "/deal", .json_body = selection};
	struct ss_answer a = {.status = 200,
	                      .tokens_left = 70,
	                      .refill_in = 1000,
	                      .refill_rate = 20,
	                      .consumed = 5,
	                      .payload = "\"deals\":{\"dr\":[]}"};
	const struct ss_request *r;
	struct fx f;
	cJSON *doc = NULL;
	char *err = NULL;

	(void)state;
	fx_up(&f);
	ss_push(f.ss, &a);
	assert_int_equal(call(&f, &req, &doc, &err), 0);
	cJSON_Delete(doc);
	r = ss_request(f.ss, 0);
	assert_string_equal(r->method, "POST");
	assert_string_equal(r->path, "/deal");
	assert_non_null(r->content_type);
	assert_string_equal(r->content_type, "application/json");
	assert_string_equal(r->body, selection);
	assert_string_equal(r->query, "key=testkey&domain=1");
	/* The connection is reused for a GET afterwards: no body, no content type. */
	ss_push(f.ss, &a);
	assert_int_equal(call(&f, &product_req, &doc, &err), 0);
	cJSON_Delete(doc);
	r = ss_request(f.ss, 1);
	assert_string_equal(r->method, "GET");
	assert_null(r->content_type);
	assert_string_equal(r->body, "");
	fx_down(&f);
}

static void keepalive_reused(void **state)
{
	struct fx f;
	struct ss_answer a = {
	    .status = 200, .tokens_left = 70, .refill_in = 30000, .refill_rate = 20, .consumed = 1};
	struct keepa_conn *other = NULL;
	cJSON *doc = NULL;
	char *err = NULL;

	(void)state;
	fx_up(&f);
	ss_set_default(f.ss, &a);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(call(&f, &product_req, &doc, &err), 0);
		cJSON_Delete(doc);
	}
	assert_int_equal(keepa_conn_new(f.k, &other, &err), 0);
	assert_int_equal(keepa_call(f.k, other, f.cls, 1.0, &product_req, &doc, &err), 0);
	cJSON_Delete(doc);
	/* One connection per keepa_conn, kept alive between calls. */
	assert_true(ss_request(f.ss, 0)->client_port > 0);
	assert_int_equal(ss_request(f.ss, 1)->client_port, ss_request(f.ss, 0)->client_port);
	assert_int_equal(ss_request(f.ss, 2)->client_port, ss_request(f.ss, 0)->client_port);
	assert_int_not_equal(ss_request(f.ss, 3)->client_port, ss_request(f.ss, 0)->client_port);
	keepa_conn_free(other);
	fx_down(&f);
}

static void slow_answer_times_out(void **state)
{
	struct fx f;
	struct keepa_options o = {.timeout_s = 1, .max_retries = -1};
	struct ss_answer slow = {
	    .status = 200, .tokens_left = 70, .refill_in = 1000, .refill_rate = 20, .hang_ms = 5000};
	cJSON *doc = NULL;
	char *err = NULL;

	(void)state;
	fx_up_opts(&f, &o);
	ss_push(f.ss, &slow);
	assert_int_equal(call(&f, &product_req, &doc, &err), TG_ENETWORK);
	if (!strstr(err, "Timeout") || !strstr(err, "after 1 attempt)"))
		fail_msg("unexpected message: %s", err);
	assert_int_equal(ss_count(f.ss), 1);
	free(err);
	fx_down(&f);
}

static void redirect_not_followed(void **state)
{
	struct fx f;
	struct ss_answer moved = {.status = 302, .body = ""};
	cJSON *doc = NULL;
	char *err = NULL;

	(void)state;
	fx_up(&f);
	ss_set_default(f.ss, &moved);
	assert_int_equal(call(&f, &product_req, &doc, &err), TG_ENETWORK);
	assert_non_null(strstr(err, "unexpected HTTP 302"));
	assert_int_equal(ss_count(f.ss), 1);
	free(err);
	fx_down(&f);
}

static void stop_before_call(void **state)
{
	struct fx f;
	cJSON *doc = NULL;
	char *err = NULL;

	(void)state;
	fx_up(&f);
	atomic_store(&f.stop, true);
	assert_int_equal(call(&f, &product_req, &doc, &err), TG_ESTOPPED);
	assert_int_equal(ss_count(f.ss), 0);
	assert_int_equal(ss_token_count(f.ss), 0);
	free(err);
	fx_down(&f);
}

static void stop_aborts_hanging_request(void **state)
{
	struct fx f;
	struct ss_answer hang = {
	    .status = 200, .tokens_left = 70, .refill_in = 1000, .refill_rate = 20, .hang_ms = 30000};
	struct stopper s;
	pthread_t th;
	cJSON *doc = NULL;
	char *err = NULL;

	(void)state;
	fx_up(&f);
	ss_push(f.ss, &hang);
	s = (struct stopper){&f.stop, 200, f.t};
	pthread_create(&th, NULL, stop_later, &s);
	assert_int_equal(call(&f, &product_req, &doc, &err), TG_ESTOPPED);
	/* The server was still holding the answer: the client gave up first. */
	assert_true(ss_hanging(f.ss));
	assert_null(doc);
	assert_non_null(err);
	free(err);
	pthread_join(th, NULL);
	fx_down(&f);
}

static void stop_aborts_backoff(void **state)
{
	struct fx f;
	/* A back-off of up to ten minutes: only the stop flag ends it in time. */
	struct keepa_options o = {.backoff_base_ms = 600000, .backoff_cap_ms = 600000, .max_retries = 1};
	struct ss_answer bad = {.status = 500, .body = "x"};
	struct stopper s;
	pthread_t th;
	cJSON *doc = NULL;
	char *err = NULL;

	(void)state;
	fx_up_opts(&f, &o);
	ss_set_default(f.ss, &bad);
	s = (struct stopper){&f.stop, 200, f.t};
	pthread_create(&th, NULL, stop_later, &s);
	assert_int_equal(call(&f, &product_req, &doc, &err), TG_ESTOPPED);
	assert_non_null(strstr(err, "stopped while backing off"));
	free(err);
	pthread_join(th, NULL);
	fx_down(&f);
}

/* ---------------------------------------------------------------- set-up */

static void endpoint_rules(void **state)
{
	static const char *ok[] = {"https://api.keepa.com", "https://api.keepa.com/", "http://127.0.0.1:8080",
	                           "http://127.3.4.5",      "http://localhost:1234/", "http://[::1]:9000"};
	static const char *refused[] = {"http://api.keepa.com",
	                                "http://10.0.0.1",
	                                "http://127.example.com",
	                                "http://[::2]:80",
	                                "ftp://127.0.0.1",
	                                "https://u:p@api.keepa.com",
	                                "https://api.keepa.com/?x=1",
	                                "not a url",
	                                ""};
	struct keepa *k;
	char *err = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct keepa_options o = {.endpoint = ok[i], .key = "endpointkey"};
		if (keepa_new(&o, NULL, &k, &err) != 0)
			fail_msg("%s refused: %s", ok[i], err);
		keepa_free(k);
		log_clear_secrets();
	}
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		struct keepa_options o = {.endpoint = refused[i], .key = "endpointkey"};
		if (keepa_new(&o, NULL, &k, &err) != TG_EINVAL)
			fail_msg("%s accepted", refused[i]);
		assert_null(k);
		assert_non_null(err);
		free(err);
		err = NULL;
	}
	struct keepa_options o = {.endpoint = "http://api.keepa.com", .key = "endpointkey"};
	assert_int_equal(keepa_new(&o, NULL, &k, &err), TG_EINVAL);
	assert_non_null(strstr(err, "loopback"));
	free(err);
}

static char *write_key_file(const char *content, mode_t mode)
{
	char *path = strdup("/tmp/tg-keepa-key-XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
	return path;
}

static void key_loading(void **state)
{
	char *key = NULL, *err = NULL, *path;

	(void)state;
	unsetenv("KEEPA_API_KEY");
	path = write_key_file("  " MARKER " \n", 0600);
	assert_int_equal(keepa_load_key(path, &key, &err), 0);
	assert_string_equal(key, MARKER);
	free(key);
	key = NULL;

	assert_int_equal(chmod(path, 0640), 0); /* readable by the daemon's group: fine */
	assert_int_equal(keepa_load_key(path, &key, &err), 0);
	free(key);
	key = NULL;
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(keepa_load_key(path, &key, &err), TG_EINVAL);
	assert_null(key);
	assert_non_null(strstr(err, "accessible by others"));
	assert_null(strstr(err, MARKER));
	free(err);
	err = NULL;
	assert_int_equal(chmod(path, 0620), 0); /* writable by the group: refused too */
	assert_int_equal(keepa_load_key(path, &key, &err), TG_EINVAL);
	assert_non_null(strstr(err, "writable by its group"));
	free(err);
	err = NULL;

	/* The environment wins over the file. */
	setenv("KEEPA_API_KEY", " fromenv\n", 1);
	assert_int_equal(keepa_load_key(path, &key, &err), 0);
	assert_string_equal(key, "fromenv");
	free(key);
	key = NULL;
	setenv("KEEPA_API_KEY", "   ", 1); /* blank: as if unset */
	assert_int_equal(keepa_load_key(NULL, &key, &err), TG_ENOTFOUND);
	free(err);
	err = NULL;
	unsetenv("KEEPA_API_KEY");
	unlink(path);
	free(path);

	path = write_key_file(" \n\t", 0600);
	assert_int_equal(keepa_load_key(path, &key, &err), TG_EINVAL);
	assert_non_null(strstr(err, "empty"));
	free(err);
	err = NULL;
	unlink(path);
	free(path);

	path = write_key_file(MARKER " second\n", 0600);
	assert_int_equal(keepa_load_key(path, &key, &err), TG_EINVAL);
	assert_null(strstr(err, MARKER));
	free(err);
	err = NULL;
	unlink(path);
	assert_int_equal(keepa_load_key(path, &key, &err), TG_ENOTFOUND);
	free(err);
	free(path);
}

static void sync_reads_token(void **state)
{
	struct fx f;
	struct tokens_envelope env;
	struct ss_answer zero = {
	    .status = 400, .zero_envelope = true, .error_json = "{\"message\":\"bad key\"}"};
	struct ss_answer down = {.status = 500, .body = "down"};
	char *err = NULL;

	(void)state;
	fx_up(&f);
	assert_int_equal(keepa_sync(f.k, &env, &err), 0);
	assert_int_equal(env.tokens_left, 100);
	assert_int_equal(env.refill_rate, 20);
	ss_set_token(f.ss, &zero);
	assert_int_equal(keepa_sync(f.k, &env, &err), TG_EKEEPA);
	assert_string_equal(err, "GET /token: HTTP 400: bad key");
	free(err);
	err = NULL;
	ss_set_token(f.ss, &down);
	assert_int_equal(keepa_sync(f.k, &env, &err), TG_ENETWORK);
	free(err);
	assert_int_equal(ss_count(f.ss), 0); /* /token is not a paid call */
	fx_down(&f);
}

/* ---------------------------------------------------------------- threads */

struct worker {
	struct fx *f;
	int ok;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	struct keepa_conn *c = NULL;
	char *err = NULL;

	if (keepa_conn_new(w->f->k, &c, &err) != 0)
		return NULL;
	for (int i = 0; i < 5; i++) {
		cJSON *doc = NULL;
		if (keepa_call(w->f->k, c, w->f->cls, 1.0, &product_req, &doc, &err) == 0)
			w->ok++;
		cJSON_Delete(doc);
		free(err);
		err = NULL;
	}
	keepa_conn_free(c);
	return NULL;
}

static void concurrent_calls(void **state)
{
	struct fx f;
	struct ss_answer a = {
	    .status = 200, .tokens_left = 500, .refill_in = 30000, .refill_rate = 20, .consumed = 1};
	struct ss_answer t = {.status = 200, .tokens_left = 500, .refill_in = 30000, .refill_rate = 20};
	struct worker w[4];
	pthread_t th[4];
	struct keepa_stats ks;

	(void)state;
	fx_up(&f);
	ss_set_token(f.ss, &t);
	ss_set_default(f.ss, &a);
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){&f, 0};
		pthread_create(&th[i], NULL, work, &w[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].ok, 5);
	}
	keepa_stats(f.k, &ks);
	assert_int_equal(ks.calls_ok, 20);
	assert_int_equal(ss_count(f.ss), 20);
	fx_down(&f);
}

/* ---------------------------------------------------------------- secrecy */

static void check_clean(const char *what, const char *text)
{
	if (text && strstr(text, MARKER))
		fail_msg("the key leaked into %s: %s", what, text);
}

static void key_never_leaks(void **state)
{
	struct fx f;
	struct keepa_options o = {.key = MARKER, .max_retries = 1};
	struct ss_answer ok = {
	    .status = 200, .tokens_left = 90, .refill_in = 1000, .refill_rate = 20, .consumed = 1};
	struct ss_answer busy = {.status = 429, .tokens_left = 0, .refill_in = 30, .refill_rate = 20};
	struct ss_answer e500 = {.status = 500, .body = "err"};
	struct ss_answer garbage = {.status = 200, .body = "<<<"};
	struct ss_answer e400 = {
	    .status = 400, .zero_envelope = true, .error_json = "{\"message\":\"bad key\"}"};
	struct ss_answer inbody = {.status = 200,
	                           .tokens_left = 90,
	                           .refill_in = 1000,
	                           .refill_rate = 20,
	                           .error_json = "{\"message\":\"no\"}"};
	struct ss_answer trunc = {
	    .status = 200, .tokens_left = 1, .refill_rate = 5, .truncate = true, .pad = 100};
	struct ss_answer big = {.status = 200, .tokens_left = 1, .refill_rate = 5, .pad = 100000};
	const struct ss_answer *script[] = {&busy, &ok,     &e500,  &e500,  &garbage, &garbage,
	                                    &e400, &inbody, &trunc, &trunc, &big};
	struct tokens_envelope env;
	struct keepa_stats ks;
	char *logbuf = NULL;
	size_t logsize = 0;
	FILE *logf = open_memstream(&logbuf, &logsize);
	int calls = 0;

	(void)state;
	log_setup(TG_LOG_DEBUG, logf);
	log_set_repeat_window(0);
	o.max_response_bytes = 50000;
	fx_up_opts(&f, &o);
	ss_set_token(f.ss, &(struct ss_answer){
	                       .status = 200, .tokens_left = 3, .refill_in = 30000, .refill_rate = 20});
	/* Forget the log's own mask: what is tested is that the client never
	 * builds a message with the key, not that the log hides it. */
	log_clear_secrets();
	for (size_t i = 0; i < sizeof(script) / sizeof(script[0]); i++)
		ss_push(f.ss, script[i]);
	while (ss_count(f.ss) < (int)(sizeof(script) / sizeof(script[0])) && calls < 20) {
		cJSON *doc = NULL;
		char *err = NULL;
		keepa_call(f.k, f.c, f.cls, 1.0, &product_req, &doc, &err);
		check_clean("an error message", err);
		free(err);
		cJSON_Delete(doc);
		calls++;
	}
	{
		char *err = NULL;
		struct ss_answer zero = {
		    .status = 400, .zero_envelope = true, .error_json = "{\"message\":\"bad\"}"};
		ss_set_token(f.ss, &zero);
		keepa_sync(f.k, &env, &err);
		check_clean("the sync error", err);
		free(err);
	}
	keepa_stats(f.k, &ks);
	check_clean("the stats", ks.last_error);
	/* The key did go over the wire: the test can fail. */
	assert_non_null(strstr(ss_request(f.ss, 0)->query, "key=" MARKER));
	fx_down(&f);
	log_setup(TG_LOG_INFO, NULL);
	fclose(logf);

	/* The log shows the calls, with the key masked. */
	check_clean("the log", logbuf);
	assert_non_null(strstr(logbuf, "key=***"));
	assert_non_null(strstr(logbuf, "HTTP 500"));
	free(logbuf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(envelope_any_order),
	    cmocka_unit_test(envelope_missing_fields),
	    cmocka_unit_test(envelope_zero_and_negative),
	    cmocka_unit_test(envelope_error_message),
	    cmocka_unit_test(ok_reconciles_scheduler),
	    cmocka_unit_test(domain_param_and_encoding),
	    cmocka_unit_test(rate_limited_429_waited_out),
	    cmocka_unit_test(repeated_429_does_not_spin),
	    cmocka_unit_test(server_errors_then_ok),
	    cmocka_unit_test(server_error_forever),
	    cmocka_unit_test(garbage_body),
	    cmocka_unit_test(truncated_body),
	    cmocka_unit_test(truncated_gzip),
	    cmocka_unit_test(bad_key_400),
	    cmocka_unit_test(other_4xx),
	    cmocka_unit_test(in_body_error_on_200),
	    cmocka_unit_test(size_cap),
	    cmocka_unit_test(gzip_decoded),
	    cmocka_unit_test(post_deal_json),
	    cmocka_unit_test(keepalive_reused),
	    cmocka_unit_test(slow_answer_times_out),
	    cmocka_unit_test(redirect_not_followed),
	    cmocka_unit_test(stop_before_call),
	    cmocka_unit_test(stop_aborts_hanging_request),
	    cmocka_unit_test(stop_aborts_backoff),
	    cmocka_unit_test(endpoint_rules),
	    cmocka_unit_test(key_loading),
	    cmocka_unit_test(sync_reads_token),
	    cmocka_unit_test(concurrent_calls),
	    cmocka_unit_test(key_never_leaks),
	    cmocka_unit_test(exact_integers_kept),
	    cmocka_unit_test(send_gate_before_every_request),
	};

	return cmocka_run_group_tests_name("keepa", tests, NULL, NULL);
}
