/*
 * keepa/priv.h - what the Keepa client's files share (not an API: see
 * keepa.h). keepa.c runs calls; keepa/http.c does one HTTP exchange.
 */
#ifndef TG_HOST_KEEPA_PRIV_H
#define TG_HOST_KEEPA_PRIV_H

#include "util/dynbuf.h"
#include <curl/curl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "keepa/keepa.h"

/* How often waits look at the stop flag. */
#define KEEPA_STOP_POLL_MS 50

struct keepa {
	char *endpoint; /* without a trailing '/' */
	char *key;
	char *key_esc; /* URL-encoded, as it appears in URLs */
	bool https;
	int domain;
	long connect_timeout_s, timeout_s;
	int64_t max_bytes;
	int max_retries;
	int backoff_base_ms, backoff_cap_ms;
	const atomic_bool *stop;
	char user_agent[64];

	struct tokens *tokens;
	/* Asked before every request goes out (keepa_set_send_gate). */
	int (*send_gate)(void *ud, char **errmsg);
	void *send_gate_ud;

	pthread_mutex_t lock; /* guards stats */
	struct keepa_stats stats;

	pthread_mutex_t sync_lock; /* guards sync_conn */
	struct keepa_conn *sync_conn;
};

/* A response body, growing up to keepa.max_response_bytes. */
struct keepa_body {
	struct dynbuf buf;
	bool overflow; /* the server sent more than the cap */
};

struct keepa_conn {
	struct keepa *k;
	/* The multi handle owns the connection pool; driving the transfer
	 * through it lets us look at the stop flag every KEEPA_STOP_POLL_MS (an
	 * idle easy transfer calls its progress function only once a second). */
	CURLM *multi;
	CURL *curl;
	struct keepa_body body;
	char errbuf[CURL_ERROR_SIZE];
	char *name;
	uint64_t rng;
	/* Guarded by k->lock (status reads them from another thread). */
	struct keepa_counts counts;
	/* The rate-limited warning (keepa/attempts.c): when the last one was
	 * logged and the counts it reported. */
	int64_t warned_ms;
	struct keepa_counts warned;
	/* Worker mode (keepa_conn_forward): read only the envelope, and keep
	 * the last answer's text for the caller to forward. */
	bool forward;
};

/* What one HTTP exchange gave. */
struct keepa_http_result {
	long status;   /* 0: no HTTP answer */
	CURLcode cc;   /* CURLE_OK or why the transfer failed */
	bool stopped;  /* aborted by the stop flag */
	bool overflow; /* aborted by the size cap */
	int64_t ms;    /* wall time of the exchange */
	int sent;      /* request headers sent: > 1 when libcurl resent it */
	char cause[CURL_ERROR_SIZE + 64];
};

static inline bool keepa_stopping(const struct keepa *k)
{
	return k->stop && atomic_load(k->stop);
}

/* Set *errmsg (when errmsg is not NULL) to a new message, masked with
 * log_redact(). */
void keepa_set_err(char **errmsg, const char *fmt, ...) TG_PRINTF(2, 3);

/* Paths are fixed strings of the plugins ("/deal"), never data. */
bool keepa_path_ok(const char *path);
/* The URL for the wire (*url, with the key: free with keepa_free_url()) and
 * for logs (*shown, key masked). add_domain: append the default domain
 * unless a param names one. TG_EINVAL for a nameless or "key" param. */
int keepa_build_urls(struct keepa_conn *c, const char *path, const struct tg_keepa_param *params,
                     size_t nparams, bool add_domain, char **url, char **shown);
void keepa_free_url(char *url);
/* One HTTP exchange on c (GET, or POST json_body). Returns < 0 only for
 * local failures; what the network did is in *res, the body in c->body.
 * Counts the request in the stats. */
/* Give back a body buffer grown past KEEPA_BODY_KEEP once its text has been
 * parsed, so an idle task does not hold its largest answer ever. */
#define KEEPA_BODY_KEEP (64 * 1024)
void keepa_body_trim(struct keepa_body *b);
int keepa_http_exchange(struct keepa_conn *c, const char *url, const char *json_body,
                        struct keepa_http_result *res);

/* Count one attempt of c (and of the client) with its outcome. */
void keepa_note_attempt(struct keepa_conn *c, enum keepa_outcome o);
/* Count a back-off retry, a 429 resend, the end of a call. */
void keepa_note_retry(struct keepa_conn *c);
void keepa_note_resend_429(struct keepa_conn *c);
void keepa_note_call_end(struct keepa_conn *c, int rc, bool gave_up);
/* After an attempt that went wrong (not ok, 429 or stopped): a warning
 * with what happened and the counts since the last such warning, at most
 * one every KEEPA_WARN_EVERY_MS per connection; in between, the same line
 * at debug level, so nothing is lost for whoever wants every one. */
#define KEEPA_WARN_EVERY_MS 30000
void keepa_warn_attempt(struct keepa_conn *c, const char *what);

#endif
