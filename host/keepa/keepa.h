/*
 * keepa.h - the host's Keepa client: the only code that speaks HTTP to Keepa.
 *
 * One call goes: tokens_acquire() (the scheduler decides when) -> HTTP over a
 * kept-alive libcurl handle (gzip, TLS verified, time-outs, size cap) ->
 * envelope parsed with cJSON -> tokens_release_ok/429/unknown() -> the whole
 * JSON answer or a typed error. A 429 re-queues the same ticket, so the call
 * keeps its place and is never reported as "no data"; 5xx, network errors and
 * unreadable bodies are retried with bounded exponential back-off and full
 * jitter; 4xx and in-body errors are reported with Keepa's message.
 *
 * The access key is a secret: it is registered with log_add_secret(), URLs
 * are logged in a redacted form, and no message, log line or statistic built
 * here contains it.
 *
 * Thread model: one struct keepa per key, shared by every task thread; one
 * struct keepa_conn (a CURL easy handle that keeps its connection alive) per
 * task thread. keepa_call() may run concurrently on different connections.
 *
 * Start-up: keepa_new(opts, NULL) -> tokens_new(..., keepa_sync, keepa) ->
 * keepa_set_tokens(). Shut-down: raise *stop and tokens_shutdown(), join the
 * task threads, keepa_conn_free() each connection, keepa_free(), tokens_free().
 */
#ifndef TG_HOST_KEEPA_H
#define TG_HOST_KEEPA_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <tollgate/tollgate.h>

#include "tokens/tokens.h"

struct cJSON;
struct keepa;
struct keepa_conn;

/* Defaults used when an option is 0. */
#define KEEPA_DEFAULT_CONNECT_TIMEOUT_S 30
#define KEEPA_DEFAULT_TIMEOUT_S 120
#define KEEPA_DEFAULT_MAX_RESPONSE_BYTES (64 * 1024 * 1024)
#define KEEPA_DEFAULT_MAX_RETRIES 5
#define KEEPA_DEFAULT_BACKOFF_BASE_MS 1000
#define KEEPA_DEFAULT_BACKOFF_CAP_MS 60000

struct keepa_options {
	/* "https://api.keepa.com"; plain http only for loopback hosts. */
	const char *endpoint;
	/* The access key (see keepa_load_key()); copied. */
	const char *key;
	/* Domain sent when the request's params do not name "domain". */
	int domain;
	int connect_timeout_s;      /* 0: default */
	int timeout_s;              /* whole transfer; 0: default */
	int64_t max_response_bytes; /* decoded body cap; 0: default */
	int max_retries;            /* retries after the first attempt; < 0: none, 0: default */
	/* Shutdown flag (may be NULL): aborts transfers and back-off waits
	 * within 50 ms. A call waiting in tokens_acquire() is released by
	 * tokens_shutdown(), not by this flag: set both at shutdown. */
	const atomic_bool *stop;
	/* Back-off for 5xx and network errors: the n-th retry waits a uniformly
	 * random time in [0, min(cap, base * 2^(n-1))]. 0: default. */
	int backoff_base_ms;
	int backoff_cap_ms;
};

/* What one attempt (one HTTP request) ended as: the server's status class,
 * or why the answer could not be used. Every request is exactly one of
 * these, so the counts add up to what the server served. */
enum keepa_outcome {
	KEEPA_OUT_OK,          /* 200 with a JSON object and no error */
	KEEPA_OUT_429,         /* 429 (waited out and resent) */
	KEEPA_OUT_4XX,         /* any other 4xx: Keepa refused */
	KEEPA_OUT_5XX,         /* 5xx: retried */
	KEEPA_OUT_GARBAGE,     /* 200 whose body is empty or not a JSON object: retried */
	KEEPA_OUT_KEEPA_ERROR, /* 200 with an in-body error: Keepa refused */
	KEEPA_OUT_NETWORK,     /* no HTTP answer: connect, time-out, reset: retried */
	KEEPA_OUT_OTHER,       /* another status (1xx, 3xx, 2xx but 200) or over the size cap */
	KEEPA_OUT_STOPPED,     /* abandoned at shutdown */
	KEEPA_NOUTCOMES
};

/* "ok", "429", "4xx", "5xx", "garbage", "keepa_error", "network", "other",
 * "stopped": the names status and metrics use. */
const char *keepa_outcome_name(enum keepa_outcome o);

/* Attempts and calls of one connection (one task), or of the whole client.
 * A call is what a plugin asked for; its attempts are the requests sent for
 * it (resends after a 429 and back-off retries included). */
struct keepa_counts {
	uint64_t attempts;
	uint64_t outcome[KEEPA_NOUTCOMES];
	uint64_t retries;     /* back-off retries after a retryable outcome */
	uint64_t resends_429; /* resends after a 429 */
	uint64_t calls_ok, calls_failed;
	uint64_t gave_up; /* calls failed after max_retries retries */
};

/* Counters of one client, for status and metrics. */
struct keepa_stats {
	uint64_t requests; /* HTTP requests sent (retries and /token included) */
	uint64_t status_2xx;
	uint64_t status_4xx; /* 429 excluded */
	uint64_t status_429;
	uint64_t status_5xx;
	uint64_t status_other;
	uint64_t network_errors; /* no HTTP status: connect, time-out, truncated ... */
	uint64_t retries;        /* back-off retries (429 resends excluded) */
	uint64_t bytes_in;       /* decoded response bytes */
	uint64_t calls_ok, calls_failed;
	struct keepa_counts counts; /* every connection's, /token syncs included */
	char last_error[256];       /* redacted; "" when none */
};

/* Read the key: the KEEPA_API_KEY environment variable when set and not
 * blank, else key_file (may be NULL). The file must be a regular file that
 * others may neither read nor write and its group may not write (0600, or
 * 0640 for the daemon's group), holding one word; whitespace
 * around it is stripped. On 0, *key is malloc'd (the caller frees it).
 * Errors: TG_ENOTFOUND (no key anywhere), TG_EIO, TG_EINVAL (unsafe
 * permissions, empty or malformed). Messages never contain the key. */
int keepa_load_key(const char *key_file, char **key, char **errmsg);

/* Accept https anywhere and http only to loopback; no credentials, query or
 * fragment. On success *https tells which. keepa_new() applies it; the
 * start-up checks (core/preflight.c) too, before anything is opened. */
int keepa_check_endpoint(const char *endpoint, bool *https, char **errmsg);

/* Create a client. The endpoint must be https (TLS verification always on)
 * or http to a loopback host (127.0.0.0/8, ::1, localhost). tokens may be
 * NULL and attached later with keepa_set_tokens() (tokens_new() wants
 * keepa_sync as its sync function, so the scheduler is often made after the
 * client). Registers the key with log_add_secret(). */
int keepa_new(const struct keepa_options *opts, struct tokens *tokens, struct keepa **out, char **errmsg);
/* Attach the scheduler before the first keepa_call(). */
void keepa_set_tokens(struct keepa *k, struct tokens *tokens);
/* A check before every request of keepa_call() goes out, after the
 * scheduler granted it (so also before each retry and resend): 0 sends,
 * < 0 ends the call with that code and gate's *errmsg (hot standby: a node
 * whose lease is not confirmed sends nothing, core/ha.h). Set it before
 * the first keepa_call(); NULL: none. */
void keepa_set_send_gate(struct keepa *k, int (*gate)(void *ud, char **errmsg), void *ud);
/* Free the client; every connection must be freed before. */
void keepa_free(struct keepa *k);

/* One connection (a kept-alive CURL easy handle) for one thread at a time. */
int keepa_conn_new(struct keepa *k, struct keepa_conn **out, char **errmsg);
void keepa_conn_free(struct keepa_conn *c);
/* Worker mode forwards a Keepa answer to the task's process as the bytes
 * Keepa sent, and the worker parses them for the plugin. With forward set,
 * keepa_call() on c reads only the answer's envelope (keepa_envelope_scan:
 * the whole text is checked, but no tree of the payload is built, so the
 * *response it hands back holds the top-level token fields and error only)
 * and keeps the text after the call: keepa_conn_body() is that text (valid
 * until c's next call or keepa_conn_trim(), which gives a large buffer back
 * as keepa_call() otherwise does at once). */
void keepa_conn_forward(struct keepa_conn *c, bool forward);
const char *keepa_conn_body(const struct keepa_conn *c, size_t *len);
void keepa_conn_trim(struct keepa_conn *c);
/* Tag the connection's log lines with a task name (copied; NULL: host). */
void keepa_conn_set_name(struct keepa_conn *c, const char *name);

/* Make one Keepa call for scheduler class cls, with the plugin's declared
 * estimate (fixed + per_unit * units). Blocks until the scheduler sends it.
 * On 0, *response is the whole JSON answer (envelope and payload; with
 * keepa_conn_forward, the envelope only), freed by the caller with
 * cJSON_Delete(). Errors (message in *errmsg):
 *   TG_EKEEPA    4xx or an in-body error: "HTTP <status>: <Keepa's message>"
 *   TG_ENETWORK  5xx, network errors, unreadable bodies after max_retries,
 *                or an answer over the size cap (not retried)
 *   TG_ESTOPPED  *stop became true, or the scheduler shut down
 *   TG_EOVERSIZE the call costs more than the bucket can fund (scheduler)
 *   TG_EINVAL    bad request (path, class, no scheduler attached) */
int keepa_call(struct keepa *k, struct keepa_conn *c, int cls, double declared_estimate,
               const struct tg_keepa_request *req, struct cJSON **response, char **errmsg);

/* The free /token call, shaped as a tokens_sync_fn (ctx is the struct
 * keepa). Uses an internal connection; no retries (the scheduler retries a
 * failed sync). An all-zero envelope (bad key) is an error, not a reading. */
int keepa_sync(void *keepa, struct tokens_envelope *env, char **errmsg);

/* A copy of the counters. */
void keepa_stats(struct keepa *k, struct keepa_stats *out);
/* A copy of one connection's attempt and call counts (c may be NULL: zeros). */
void keepa_conn_counts(struct keepa *k, const struct keepa_conn *c, struct keepa_counts *out);

#endif
