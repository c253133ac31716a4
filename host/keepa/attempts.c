/*
 * attempts.c - the client's honest counts: every HTTP request is one
 * attempt with exactly one outcome (see enum keepa_outcome), counted per
 * connection (one task) and for the whole client, plus retries, 429 resends
 * and how calls ended; and the rate-limited warning that reports them.
 *
 * The scheduler counts tickets (a 500 that carries an envelope is a
 * "reading" there); these counts are what the server answered, so status
 * and metrics can be compared with the server's own.
 */
#include <inttypes.h>
#include <stdio.h>

#include "keepa/priv.h"
#include "observe/log.h"
#include "util/clock.h"

const char *keepa_outcome_name(enum keepa_outcome o)
{
	static const char *const names[KEEPA_NOUTCOMES] = {
	    "ok", "429", "4xx", "5xx", "garbage", "keepa_error", "network", "other", "stopped"};
	return (unsigned)o < KEEPA_NOUTCOMES ? names[o] : "unknown";
}

void keepa_note_attempt(struct keepa_conn *c, enum keepa_outcome o)
{
	struct keepa *k = c->k;

	pthread_mutex_lock(&k->lock);
	c->counts.attempts++;
	c->counts.outcome[o]++;
	k->stats.counts.attempts++;
	k->stats.counts.outcome[o]++;
	pthread_mutex_unlock(&k->lock);
}

void keepa_note_retry(struct keepa_conn *c)
{
	struct keepa *k = c->k;

	pthread_mutex_lock(&k->lock);
	c->counts.retries++;
	k->stats.counts.retries++;
	k->stats.retries++;
	pthread_mutex_unlock(&k->lock);
}

void keepa_note_resend_429(struct keepa_conn *c)
{
	struct keepa *k = c->k;

	pthread_mutex_lock(&k->lock);
	c->counts.resends_429++;
	k->stats.counts.resends_429++;
	pthread_mutex_unlock(&k->lock);
}

void keepa_note_call_end(struct keepa_conn *c, int rc, bool gave_up)
{
	struct keepa *k = c->k;

	pthread_mutex_lock(&k->lock);
	if (rc == 0) {
		c->counts.calls_ok++;
		k->stats.counts.calls_ok++;
	} else {
		c->counts.calls_failed++;
		k->stats.counts.calls_failed++;
	}
	if (gave_up) {
		c->counts.gave_up++;
		k->stats.counts.gave_up++;
	}
	pthread_mutex_unlock(&k->lock);
}

void keepa_conn_counts(struct keepa *k, const struct keepa_conn *c, struct keepa_counts *out)
{
	*out = (struct keepa_counts){0};
	if (!k || !c)
		return;
	pthread_mutex_lock(&k->lock);
	*out = c->counts;
	pthread_mutex_unlock(&k->lock);
}

#define SINCE(f) (now.f - c->warned.f)

void keepa_warn_attempt(struct keepa_conn *c, const char *what)
{
	struct keepa *k = c->k;
	struct keepa_counts now;
	int64_t t = tg_mono_ms();
	bool warn, first;
	char since[320];

	pthread_mutex_lock(&k->lock);
	now = c->counts;
	first = c->warned_ms == 0;
	warn = first || t - c->warned_ms >= KEEPA_WARN_EVERY_MS;
	if (warn) {
		snprintf(since, sizeof(since),
		         "%" PRIu64 " attempts since %s: %" PRIu64 " ok, %" PRIu64 " 429, %" PRIu64
		         " 4xx, %" PRIu64 " 5xx, %" PRIu64 " garbage, %" PRIu64 " in-body errors, %" PRIu64
		         " network, %" PRIu64 " other; %" PRIu64 " retries, %" PRIu64 " calls given up",
		         SINCE(attempts), first ? "start" : "the last such line", SINCE(outcome[KEEPA_OUT_OK]), SINCE(outcome[KEEPA_OUT_429]),
		         SINCE(outcome[KEEPA_OUT_4XX]), SINCE(outcome[KEEPA_OUT_5XX]),
		         SINCE(outcome[KEEPA_OUT_GARBAGE]), SINCE(outcome[KEEPA_OUT_KEEPA_ERROR]),
		         SINCE(outcome[KEEPA_OUT_NETWORK]), SINCE(outcome[KEEPA_OUT_OTHER]), SINCE(retries),
		         SINCE(gave_up));
		c->warned_ms = t;
		c->warned = now;
	}
	pthread_mutex_unlock(&k->lock);
	if (warn)
		log_warn(c->name, "%s (%s)", what, since);
	else
		log_debug(c->name, "%s", what);
}
