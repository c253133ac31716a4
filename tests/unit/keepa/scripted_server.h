/*
 * scripted_server.h - a tiny HTTP server for the Keepa client's tests.
 *
 * libmicrohttpd on 127.0.0.1, port 0. Each request to a path other than
 * /token takes the next scripted answer from a FIFO (or the default answer
 * when the FIFO is empty); /token always gets its own answer. Every request
 * is recorded so a test can look at what the client really sent. This is
 * not a Keepa simulator: it answers exactly what a test tells it to.
 */
#ifndef TG_TEST_SCRIPTED_SERVER_H
#define TG_TEST_SCRIPTED_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ss_answer {
	int status;
	/* The raw body; NULL: an envelope built from the fields below, with
	 * the timestamp of the moment it is sent. */
	const char *body;
	int64_t tokens_left, refill_in, refill_rate, consumed;
	bool zero_envelope;     /* every token field 0 (the bad-key answer) */
	const char *error_json; /* the `error` member's value, NULL: none */
	const char *payload;    /* more members, e.g. "\"products\":[]" */
	size_t pad;             /* add a string member of this many bytes */
	bool gzip;              /* gzip the body (Content-Encoding: gzip) */
	bool gzip_cut;          /* with gzip: send only the first half of the stream, honestly sized */
	bool truncate;          /* declare the full length, send half, close */
	int hang_ms;            /* wait this long before answering (ss_free ends it) */
};

struct ss_request {
	char method[16];
	char path[128];
	char *query;        /* decoded "name=value&..." in arrival order */
	char *content_type; /* NULL when absent */
	char *accept_encoding;
	char *user_agent;
	char *body;      /* upload data, "" when none */
	int client_port; /* the source port of the client: same port, same connection */
};

struct ss;

struct ss *ss_new(void);
void ss_free(struct ss *s);
/* "http://127.0.0.1:<port>" (owned by s). */
const char *ss_url(struct ss *s);
void ss_push(struct ss *s, const struct ss_answer *a);
void ss_set_default(struct ss *s, const struct ss_answer *a);
void ss_set_token(struct ss *s, const struct ss_answer *a);
/* Requests other than /token so far, and /token requests. */
int ss_count(struct ss *s);
int ss_token_count(struct ss *s);
/* The i-th request other than /token (valid until ss_free). */
const struct ss_request *ss_request(struct ss *s, int i);
/* True while a request is being held by hang_ms. */
bool ss_hanging(struct ss *s);

#endif
