/*
 * keepa.c - the Keepa client (see keepa.h): the only code that speaks HTTP to
 * Keepa. The key file is read in keepa/key.c, the envelope parsed in
 * keepa/envelope.c.
 */
#include "util/clock.h"
#include "util/errmsg.h"
#include "util/json_exact.h"
#include "keepa/priv.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keepa/envelope.h"
#include "observe/log.h"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init_once(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

void keepa_set_err(char **errmsg, const char *fmt, ...)
{
	va_list ap;

	if (!errmsg)
		return;
	va_start(ap, fmt);
	errmsg_vset(errmsg, 0, fmt, ap);
	va_end(ap);
	/* Belt and braces: nothing built here contains the key, but a message
	 * leaves the process by paths the log cannot mask (status, plugins). */
	if (*errmsg)
		log_redact(*errmsg);
}


/* ---------------------------------------------------------------- lifecycle */

int keepa_new(const struct keepa_options *opts, struct tokens *tokens, struct keepa **out, char **errmsg)
{
	struct keepa *k;
	size_t len;
	int rc;

	*out = NULL;
	pthread_once(&curl_once, curl_init_once);
	if (curl_init_rc != CURLE_OK) {
		keepa_set_err(errmsg, "libcurl initialisation failed: %s", curl_easy_strerror(curl_init_rc));
		return TG_EIO;
	}
	if (!opts || !opts->endpoint || !*opts->endpoint) {
		keepa_set_err(errmsg, "keepa.endpoint is not set");
		return TG_EINVAL;
	}
	if (!opts->key || !*opts->key) {
		keepa_set_err(errmsg, "no Keepa key");
		return TG_EINVAL;
	}
	k = calloc(1, sizeof(*k));
	if (!k) {
		keepa_set_err(errmsg, "out of memory");
		return TG_ENOMEM;
	}
	rc = keepa_check_endpoint(opts->endpoint, &k->https, errmsg);
	if (rc < 0)
		goto out_free;

	rc = TG_ENOMEM;
	k->endpoint = strdup(opts->endpoint);
	k->key = strdup(opts->key);
	k->key_esc = curl_easy_escape(NULL, opts->key, 0);
	if (!k->endpoint || !k->key || !k->key_esc) {
		keepa_set_err(errmsg, "out of memory");
		goto out_strings;
	}
	len = strlen(k->endpoint);
	while (len > 0 && k->endpoint[len - 1] == '/')
		k->endpoint[--len] = '\0';

	k->domain = opts->domain > 0 ? opts->domain : 1;
	k->connect_timeout_s =
	    opts->connect_timeout_s > 0 ? opts->connect_timeout_s : KEEPA_DEFAULT_CONNECT_TIMEOUT_S;
	k->timeout_s = opts->timeout_s > 0 ? opts->timeout_s : KEEPA_DEFAULT_TIMEOUT_S;
	k->max_bytes =
	    opts->max_response_bytes > 0 ? opts->max_response_bytes : KEEPA_DEFAULT_MAX_RESPONSE_BYTES;
	k->max_retries = opts->max_retries > 0   ? opts->max_retries
	                 : opts->max_retries < 0 ? 0
	                                         : KEEPA_DEFAULT_MAX_RETRIES;
	k->backoff_base_ms =
	    opts->backoff_base_ms > 0 ? opts->backoff_base_ms : KEEPA_DEFAULT_BACKOFF_BASE_MS;
	k->backoff_cap_ms = opts->backoff_cap_ms > 0 ? opts->backoff_cap_ms : KEEPA_DEFAULT_BACKOFF_CAP_MS;
	if (k->backoff_cap_ms < k->backoff_base_ms)
		k->backoff_cap_ms = k->backoff_base_ms;
	k->stop = opts->stop;
	k->tokens = tokens;
	snprintf(k->user_agent, sizeof(k->user_agent), "tollgate/%s", TG_VERSION);

	if (pthread_mutex_init(&k->lock, NULL) != 0) {
		keepa_set_err(errmsg, "pthread_mutex_init failed");
		rc = TG_EIO;
		goto out_strings;
	}
	if (pthread_mutex_init(&k->sync_lock, NULL) != 0) {
		keepa_set_err(errmsg, "pthread_mutex_init failed");
		rc = TG_EIO;
		goto out_lock;
	}
	log_add_secret(k->key);
	if (strcmp(k->key, k->key_esc) != 0)
		log_add_secret(k->key_esc);
	*out = k;
	return 0;

out_lock:
	pthread_mutex_destroy(&k->lock);
out_strings:
	free(k->endpoint);
	if (k->key)
		explicit_bzero(k->key, strlen(k->key));
	free(k->key);
	if (k->key_esc)
		explicit_bzero(k->key_esc, strlen(k->key_esc));
	curl_free(k->key_esc);
out_free:
	free(k);
	return rc;
}

void keepa_set_tokens(struct keepa *k, struct tokens *tokens)
{
	k->tokens = tokens;
}

void keepa_set_send_gate(struct keepa *k, int (*gate)(void *ud, char **errmsg), void *ud)
{
	k->send_gate = gate;
	k->send_gate_ud = ud;
}

void keepa_free(struct keepa *k)
{
	if (!k)
		return;
	keepa_conn_free(k->sync_conn);
	pthread_mutex_destroy(&k->sync_lock);
	pthread_mutex_destroy(&k->lock);
	free(k->endpoint);
	explicit_bzero(k->key, strlen(k->key));
	free(k->key);
	explicit_bzero(k->key_esc, strlen(k->key_esc));
	curl_free(k->key_esc);
	free(k);
}

int keepa_conn_new(struct keepa *k, struct keepa_conn **out, char **errmsg)
{
	struct keepa_conn *c;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c) {
		keepa_set_err(errmsg, "out of memory");
		return TG_ENOMEM;
	}
	c->multi = curl_multi_init();
	if (!c->multi) {
		free(c);
		keepa_set_err(errmsg, "curl_multi_init failed");
		return TG_ENOMEM;
	}
	c->curl = curl_easy_init();
	if (!c->curl) {
		curl_multi_cleanup(c->multi);
		free(c);
		keepa_set_err(errmsg, "curl_easy_init failed");
		return TG_ENOMEM;
	}
	c->k = k;
	dynbuf_init(&c->body.buf, (size_t)k->max_bytes);
	c->rng = (uint64_t)tg_wall_ms() ^ ((uint64_t)(uintptr_t)c * 0x9e3779b97f4a7c15ULL);
	if (!c->rng)
		c->rng = 1;
	*out = c;
	return 0;
}

void keepa_conn_free(struct keepa_conn *c)
{
	if (!c)
		return;
	curl_easy_cleanup(c->curl);
	curl_multi_cleanup(c->multi);
	dynbuf_free(&c->body.buf);
	free(c->name);
	free(c);
}

void keepa_conn_forward(struct keepa_conn *c, bool forward)
{
	c->forward = forward;
}

const char *keepa_conn_body(const struct keepa_conn *c, size_t *len)
{
	*len = dynbuf_len(&c->body.buf);
	return dynbuf_str(&c->body.buf);
}

void keepa_conn_trim(struct keepa_conn *c)
{
	keepa_body_trim(&c->body);
}

void keepa_conn_set_name(struct keepa_conn *c, const char *name)
{
	free(c->name);
	c->name = name ? strdup(name) : NULL;
}

static void stats_note_call(struct keepa *k, int rc, const char *errmsg)
{
	pthread_mutex_lock(&k->lock);
	if (rc == 0) {
		k->stats.calls_ok++;
	} else {
		k->stats.calls_failed++;
		snprintf(k->stats.last_error, sizeof(k->stats.last_error), "%s", errmsg ? errmsg : "");
		log_redact(k->stats.last_error);
	}
	pthread_mutex_unlock(&k->lock);
}

void keepa_stats(struct keepa *k, struct keepa_stats *out)
{
	pthread_mutex_lock(&k->lock);
	*out = k->stats;
	pthread_mutex_unlock(&k->lock);
}

/* ---------------------------------------------------------------- one call */

static uint64_t next_random(struct keepa_conn *c)
{
	/* xorshift64*: jitter needs spread, not cryptographic quality. */
	c->rng ^= c->rng >> 12;
	c->rng ^= c->rng << 25;
	c->rng ^= c->rng >> 27;
	return c->rng * 2685821657736338717ULL;
}

/* The delay before retry n (1-based): full jitter over [0, min(cap, base * 2^(n-1))]. */
static int64_t backoff_ms(struct keepa_conn *c, int n)
{
	int64_t ceiling = c->k->backoff_base_ms;

	for (int i = 1; i < n && ceiling < c->k->backoff_cap_ms; i++)
		ceiling *= 2;
	if (ceiling > c->k->backoff_cap_ms)
		ceiling = c->k->backoff_cap_ms;
	return (int64_t)(next_random(c) % (uint64_t)(ceiling + 1));
}

/* Wait ms milliseconds, looking at the stop flag every KEEPA_STOP_POLL_MS.
 * TG_ESTOPPED when it was raised. */
static int wait_interruptible(struct keepa *k, int64_t ms)
{
	int64_t end = tg_mono_ms() + ms;

	for (;;) {
		int64_t left = end - tg_mono_ms();
		struct timespec ts;

		if (keepa_stopping(k))
			return TG_ESTOPPED;
		if (left <= 0)
			return 0;
		if (left > KEEPA_STOP_POLL_MS)
			left = KEEPA_STOP_POLL_MS;
		ts.tv_sec = left / 1000;
		ts.tv_nsec = (long)(left % 1000) * 1000000L;
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
	}
}

/* A guard, not pacing: the scheduler times every resend after a 429 from
 * the envelope. Should a server keep answering 429 at once anyway (an
 * envelope that promises tokens it does not grant), resends from the third
 * on wait one more second each, up to a minute, so the loop cannot spin. */
static int wait_after_429s(struct keepa_conn *c, int n429, const char *shown)
{
	int64_t ms = (int64_t)(n429 - 2) * 1000;

	if (ms > 60000)
		ms = 60000;
	log_warn(c->name,
	         "%s: HTTP 429 %d times in a row although the scheduler waited; resending in %lld ms", shown,
	         n429, (long long)ms);
	return wait_interruptible(c->k, ms);
}

/* How an exchange ended, as keepa_call acts on it. */
enum outcome {
	OUT_OK,      /* 200, JSON object, no error: the answer */
	OUT_429,     /* wait for tokens and resend the same ticket */
	OUT_KEEPA,   /* Keepa refused: report, no retry */
	OUT_RETRY,   /* 5xx, network, unreadable: back off and retry */
	OUT_FATAL,   /* size cap: report, no retry */
	OUT_STOPPED, /* shutdown */
};

/* Classify the exchange; *doc receives the parsed body when it is a JSON
 * object, *env and *kind its envelope, msg a description for errors. */
static enum outcome classify_exchange(struct keepa_conn *c, const struct keepa_http_result *res, cJSON **doc,
                                      struct tokens_envelope *env, enum keepa_envelope_kind *kind,
                                      enum keepa_outcome *att, char *msg, size_t msgsize)
{
	char kerr[512];
	int has_error;

	*doc = NULL;
	*kind = KEEPA_ENVELOPE_NONE;
	memset(env, 0, sizeof(*env));
	msg[0] = '\0';
	*att = KEEPA_OUT_STOPPED;
	if (res->stopped)
		return OUT_STOPPED;
	*att = KEEPA_OUT_OTHER;
	if (res->overflow) {
		snprintf(msg, msgsize, "%s", res->cause);
		return OUT_FATAL;
	}
	*att = KEEPA_OUT_NETWORK;
	if (res->cc != CURLE_OK) {
		snprintf(msg, msgsize, "%s", res->cause);
		return OUT_RETRY;
	}

	if (dynbuf_len(&c->body.buf) > 0 && c->forward) {
		/* The worker parses the payload: the envelope is all we read. */
		*doc = keepa_envelope_scan(dynbuf_str(&c->body.buf), dynbuf_len(&c->body.buf));
	} else if (dynbuf_len(&c->body.buf) > 0) {
		*doc = cJSON_ParseWithLength(dynbuf_str(&c->body.buf), dynbuf_len(&c->body.buf));
		if (*doc && !cJSON_IsObject(*doc)) {
			cJSON_Delete(*doc);
			*doc = NULL;
		}
		/* Integers beyond 2^53 keep their digits for the plugins
		 * (util/json_exact.h); without memory they read as doubles. */
		if (*doc && json_exact_ints(*doc, dynbuf_str(&c->body.buf), dynbuf_len(&c->body.buf)) < 0)
			log_warn(c->name, "out of memory keeping the exact digits of big integers in an answer");
	}
	if (*doc)
		*kind = keepa_envelope_parse(*doc, tg_wall_ms(), env);
	has_error = *doc ? keepa_envelope_error(*doc, kerr, sizeof(kerr)) : 0;
	if (has_error && !kerr[0])
		snprintf(kerr, sizeof(kerr), "error without a message");

	if (res->status == 429) {
		*att = KEEPA_OUT_429;
		if (*kind == KEEPA_ENVELOPE_READING)
			return OUT_429;
		/* Without a reading the scheduler cannot tell when to resend:
		 * treat it like a server error. */
		snprintf(msg, msgsize, "HTTP 429 without a token envelope");
		return OUT_RETRY;
	}
	if (res->status >= 500 || res->status == 408) {
		*att = res->status >= 500 && res->status < 600 ? KEEPA_OUT_5XX
		       : res->status == 408                  ? KEEPA_OUT_4XX
		                                             : KEEPA_OUT_OTHER;
		snprintf(msg, msgsize, "HTTP %ld%s%s", res->status, has_error ? ": " : "",
		         has_error ? kerr : "");
		return OUT_RETRY;
	}
	if (res->status != 200 && res->status < 400) {
		/* Keepa answers 200 or an error; a redirect (never followed)
		 * or another 2xx would come back the same on a retry. */
		*att = KEEPA_OUT_OTHER;
		snprintf(msg, msgsize, "unexpected HTTP %ld", res->status);
		return OUT_FATAL;
	}
	if (res->status >= 400) {
		*att = KEEPA_OUT_4XX;
		snprintf(msg, msgsize, "HTTP %ld: %s", res->status,
		         has_error ? kerr : (*doc ? "no error message" : "no JSON answer"));
		return OUT_KEEPA;
	}
	/* 200 */
	if (!*doc) {
		*att = KEEPA_OUT_GARBAGE;
		snprintf(msg, msgsize, "HTTP 200 with %s",
		         dynbuf_len(&c->body.buf) ? "a body that is not a JSON object" : "an empty body");
		return OUT_RETRY;
	}
	if (has_error) {
		*att = KEEPA_OUT_KEEPA_ERROR;
		snprintf(msg, msgsize, "HTTP 200: %s", kerr);
		return OUT_KEEPA;
	}
	*att = KEEPA_OUT_OK;
	return OUT_OK;
}

/* Classify the exchange and count it as one attempt with its outcome. */
static enum outcome classify(struct keepa_conn *c, const struct keepa_http_result *res, cJSON **doc,
                             struct tokens_envelope *env, enum keepa_envelope_kind *kind, char *msg,
                             size_t msgsize)
{
	enum keepa_outcome att;
	enum outcome out = classify_exchange(c, res, doc, env, kind, &att, msg, msgsize);

	/* Requests libcurl resent on its own got no answer (the connection
	 * closed first): each is a network failure and a retry not ours. */
	for (int i = 1; i < res->sent; i++) {
		keepa_note_attempt(c, KEEPA_OUT_NETWORK);
		keepa_note_retry(c);
	}
	keepa_note_attempt(c, att);
	if (res->sent > 1)
		keepa_warn_attempt(c, "the connection closed without an answer; libcurl sent the request again");
	return out;
}

/* Hand the ticket back to the scheduler with what the answer told. */
static void release_ticket(struct keepa *k, struct tokens_ticket *ticket, enum keepa_envelope_kind kind,
                           const struct tokens_envelope *env)
{
	if (kind == KEEPA_ENVELOPE_READING)
		tokens_release_ok(k->tokens, ticket, env);
	else
		tokens_release_unknown(k->tokens, ticket);
}

int keepa_call(struct keepa *k, struct keepa_conn *c, int cls, double declared_estimate,
               const struct tg_keepa_request *req, struct cJSON **response, char **errmsg)
{
	struct tokens_ticket *ticket = NULL;
	const char *method;
	char *url = NULL, *shown = NULL;
	char msg[1024];
	char *err = NULL;
	int attempt = 0, n429 = 0, rc;
	bool sent = false, gave_up = false;

	*response = NULL;
	if (!req || !keepa_path_ok(req->path) || !req->kind || (req->nparams && !req->params)) {
		keepa_set_err(&err, "bad Keepa request: the path must be like \"/product\"");
		rc = TG_EINVAL;
		goto out_stats;
	}
	if (keepa_stopping(k)) {
		keepa_set_err(&err, "%s: stopped", req->path);
		rc = TG_ESTOPPED;
		goto out_stats;
	}
	if (!k->tokens) {
		keepa_set_err(&err, "keepa_call: no token scheduler attached");
		rc = TG_EINVAL;
		goto out_stats;
	}
	method = req->json_body ? "POST" : "GET";
	rc = keepa_build_urls(c, req->path, req->params, req->nparams, true, &url, &shown);
	if (rc < 0) {
		keepa_set_err(&err, rc == TG_EINVAL
		                        ? "bad Keepa request: a parameter has no name or is \"key\""
		                        : "out of memory");
		goto out_stats;
	}

	for (;;) {
		struct keepa_http_result res;
		struct tokens_envelope env;
		enum keepa_envelope_kind kind;
		enum outcome out;
		cJSON *doc;
		int64_t delay;

		rc = tokens_acquire(k->tokens, cls, req->kind, req->units, declared_estimate, &ticket, &err);
		if (rc < 0) {
			if (err)
				log_redact(err);
			goto out_urls;
		}
		if (k->send_gate && (rc = k->send_gate(k->send_gate_ud, &err)) < 0) {
			tokens_release_stopped(k->tokens, ticket);
			goto out_urls;
		}
		rc = keepa_http_exchange(c, url, req->json_body, &res);
		sent = true;
		if (rc < 0) {
			tokens_release_unknown(k->tokens, ticket);
			keepa_set_err(&err, "%s %s: out of memory", method, req->path);
			goto out_urls;
		}
		out = classify(c, &res, &doc, &env, &kind, msg, sizeof(msg));
		/* Parsed (or refused): the text is not needed any more - unless
		 * the caller forwards it (keepa_conn_forward). */
		if (!c->forward)
			keepa_body_trim(&c->body);
		log_redact(msg);
		log_debug(c->name, "%s %s -> %ld%s%s, consumed %lld, left %lld, %lld ms", method, shown,
		          res.status, msg[0] ? " " : "", msg, (long long)env.tokens_consumed,
		          (long long)env.tokens_left, (long long)res.ms);

		switch (out) {
		case OUT_OK:
			release_ticket(k, ticket, kind, &env);
			*response = doc;
			rc = 0;
			goto out_urls;
		case OUT_429:
			/* The ticket goes back as the sticky head: acquire waits
			 * for the refill and sends the same call again. */
			cJSON_Delete(doc);
			if ((++n429 > 2 && wait_after_429s(c, n429, shown) < 0) || keepa_stopping(k)) {
				/* Shutting down: close the call instead of queueing
				 * it again (a queued ticket could only be withdrawn
				 * by a tokens_acquire() that might block). */
				tokens_release_stopped(k->tokens, ticket);
				keepa_set_err(&err, "%s %s: stopped while waiting after HTTP 429", method,
				              req->path);
				rc = TG_ESTOPPED;
				goto out_urls;
			}
			tokens_release_429(k->tokens, ticket, &env);
			keepa_note_resend_429(c);
			continue;
		case OUT_KEEPA:
			release_ticket(k, ticket, kind, &env);
			cJSON_Delete(doc);
			keepa_set_err(&err, "%s", msg);
			keepa_warn_attempt(c, err);
			rc = TG_EKEEPA;
			goto out_urls;
		case OUT_FATAL:
			release_ticket(k, ticket, kind, &env);
			cJSON_Delete(doc);
			keepa_set_err(&err, "%s %s: %s", method, req->path, msg);
			keepa_warn_attempt(c, err);
			rc = TG_ENETWORK;
			goto out_urls;
		case OUT_STOPPED:
			/* Abandoned at shutdown: not a failed call. */
			if (kind == KEEPA_ENVELOPE_READING)
				tokens_release_ok(k->tokens, ticket, &env);
			else
				tokens_release_stopped(k->tokens, ticket);
			cJSON_Delete(doc);
			keepa_set_err(&err, "%s %s: stopped", method, req->path);
			rc = TG_ESTOPPED;
			goto out_urls;
		case OUT_RETRY:
			release_ticket(k, ticket, kind, &env);
			cJSON_Delete(doc);
			ticket = NULL;
			break;
		}

		if (attempt >= k->max_retries) {
			keepa_set_err(&err, "%s %s: %s (after %d attempt%s)", method, req->path, msg,
			              attempt + 1, attempt ? "s" : "");
			keepa_warn_attempt(c, err);
			gave_up = true;
			rc = TG_ENETWORK;
			goto out_urls;
		}
		attempt++;
		delay = backoff_ms(c, attempt);
		keepa_note_retry(c);
		{
			char what[1200];
			snprintf(what, sizeof(what), "%s %s: %s; retry %d of %d in %lld ms", method, req->path,
			         msg, attempt, k->max_retries, (long long)delay);
			keepa_warn_attempt(c, what);
		}
		if (wait_interruptible(k, delay) < 0) {
			keepa_set_err(&err, "%s %s: stopped while backing off after %s", method, req->path,
			              msg);
			rc = TG_ESTOPPED;
			goto out_urls;
		}
	}

out_urls:
	keepa_free_url(url);
	free(shown);
out_stats:
	stats_note_call(k, rc, err);
	/* A call refused before any request (bad request, stopping) is no
	 * attempt; one that sent something is a call, whatever it ended as. */
	if (sent)
		keepa_note_call_end(c, rc, gave_up);
	if (errmsg) {
		free(*errmsg);
		*errmsg = err;
	} else {
		free(err);
	}
	return rc;
}

int keepa_sync(void *keepa, struct tokens_envelope *env, char **errmsg)
{
	struct keepa *k = keepa;
	struct keepa_http_result res;
	enum keepa_envelope_kind kind;
	enum outcome out;
	char *url = NULL, *shown = NULL;
	char msg[1024];
	cJSON *doc = NULL;
	char *err = NULL;
	int rc;

	memset(env, 0, sizeof(*env));
	pthread_mutex_lock(&k->sync_lock);
	if (!k->sync_conn) {
		rc = keepa_conn_new(k, &k->sync_conn, &err);
		if (rc < 0)
			goto out_unlock;
	}
	rc = keepa_build_urls(k->sync_conn, "/token", NULL, 0, false, &url, &shown);
	if (rc < 0) {
		keepa_set_err(&err, "out of memory");
		goto out_unlock;
	}
	rc = keepa_http_exchange(k->sync_conn, url, NULL, &res);
	if (rc < 0) {
		keepa_set_err(&err, "GET /token: out of memory");
		goto out_urls;
	}
	out = classify(k->sync_conn, &res, &doc, env, &kind, msg, sizeof(msg));
	log_redact(msg);
	log_debug(NULL, "GET %s -> %ld%s%s, left %lld, rate %lld, %lld ms", shown, res.status,
	          msg[0] ? " " : "", msg, (long long)env->tokens_left, (long long)env->refill_rate,
	          (long long)res.ms);
	switch (out) {
	case OUT_OK:
	case OUT_429:
		/* A 429 to /token still carries a reading of the bucket. */
		if (kind == KEEPA_ENVELOPE_READING) {
			rc = 0;
		} else if (kind == KEEPA_ENVELOPE_ZERO) {
			/* Keepa's answer to a key it does not know. */
			keepa_set_err(&err, "GET /token: HTTP %ld with all-zero token fields (is the key valid?)",
			              res.status);
			rc = TG_EKEEPA;
		} else {
			/* Not Keepa's shape at all (a proxy's page, a captive portal):
			 * a passing fault, not a verdict on the key. */
			keepa_set_err(&err, "GET /token: HTTP %ld without token fields", res.status);
			rc = TG_ENETWORK;
		}
		break;
	case OUT_KEEPA:
		keepa_set_err(&err, "GET /token: %s", msg);
		rc = TG_EKEEPA;
		break;
	case OUT_STOPPED:
		keepa_set_err(&err, "GET /token: stopped");
		rc = TG_ESTOPPED;
		break;
	case OUT_RETRY:
	case OUT_FATAL:
		keepa_set_err(&err, "GET /token: %s", msg);
		rc = TG_ENETWORK;
		break;
	}
	if (rc < 0)
		memset(env, 0, sizeof(*env));
	keepa_note_call_end(k->sync_conn, rc, false);
	cJSON_Delete(doc);
out_urls:
	keepa_free_url(url);
	free(shown);
out_unlock:
	pthread_mutex_unlock(&k->sync_lock);
	if (rc < 0) {
		pthread_mutex_lock(&k->lock);
		snprintf(k->stats.last_error, sizeof(k->stats.last_error), "%s", err ? err : "");
		pthread_mutex_unlock(&k->lock);
	}
	if (errmsg) {
		free(*errmsg);
		*errmsg = err;
	} else {
		free(err);
	}
	return rc;
}
