/*
 * keepa/envelope.h - reading the token envelope and the error object that
 * every Keepa JSON answer carries (docs/keepa-api.md). Pure functions, no
 * I/O: the client (keepa.c) and its tests use them.
 */
#ifndef TG_HOST_KEEPA_ENVELOPE_H
#define TG_HOST_KEEPA_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "tokens/tokens.h"

struct cJSON;

enum keepa_envelope_kind {
	/* No usable token fields (not an object, or tokensLeft/refillRate missing). */
	KEEPA_ENVELOPE_NONE = 0,
	/* Every token field is zero: the answer to an invalid key, not a
	 * reading of the bucket. */
	KEEPA_ENVELOPE_ZERO = 1,
	/* A reading the scheduler may reconcile with. */
	KEEPA_ENVELOPE_READING = 2,
};

/*
 * What a sane server can say. Every token field is clamped to these at the
 * envelope, so no later arithmetic (the scheduler multiplies deficits by
 * minutes) sees a number a real plan cannot produce: no Keepa plan refills
 * more than some thousands of tokens a minute, and a bucket holds an hour.
 */
#define KEEPA_TOKENS_MAX 1000000000LL          /* |tokensLeft|, tokensConsumed */
#define KEEPA_RATE_MAX 1000000.0               /* refillRate, tokenFlowReduction (per minute) */
#define KEEPA_REFILL_IN_MAX_MS 3600000LL       /* refillIn */
#define KEEPA_PROCESSING_MAX_MS 86400000LL     /* processingTimeInMs */

/* Fill *env from the fields of root, read by name in any order. A reading
 * needs tokensLeft and refillRate; a missing refillIn counts as 60000 ms (the
 * latest possible tick keeps the scheduler's estimate a lower bound), a
 * missing timestamp as fallback_ts_ms, every other missing field as 0. Values
 * outside the limits above are clamped to them. */
enum keepa_envelope_kind keepa_envelope_parse(const struct cJSON *root, int64_t fallback_ts_ms,
                                              struct tokens_envelope *env);

/* Write Keepa's in-body error (`error: {type, message, details}`) as one
 * line into buf: "message (type; details)" with whatever is present. Returns
 * 1 when root has an `error` member (an object, or anything non-null), 0
 * otherwise (buf is then ""). */
int keepa_envelope_error(const struct cJSON *root, char *buf, size_t size);

/* The envelope of the answer text[0..len) without parsing the rest
 * (envelope_scan.c): the whole text's grammar is checked, never accepting
 * what cJSON would refuse, and the result is an object holding only the
 * top-level members the two functions above read (the first of each,
 * parsed by cJSON). NULL when the text is not a JSON object (or out of
 * memory), where cJSON_ParseWithLength would give NULL or a non-object. */
struct cJSON *keepa_envelope_scan(const char *text, size_t len);

#endif
