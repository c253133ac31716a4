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

/* Fill *env from the fields of root, read by name in any order. A reading
 * needs tokensLeft and refillRate; a missing refillIn counts as 60000 ms (the
 * latest possible tick keeps the scheduler's estimate a lower bound), a
 * missing timestamp as fallback_ts_ms, every other missing field as 0. */
enum keepa_envelope_kind keepa_envelope_parse(const struct cJSON *root, int64_t fallback_ts_ms,
                                              struct tokens_envelope *env);

/* Write Keepa's in-body error (`error: {type, message, details}`) as one
 * line into buf: "message (type; details)" with whatever is present. Returns
 * 1 when root has an `error` member (an object, or anything non-null), 0
 * otherwise (buf is then ""). */
int keepa_envelope_error(const struct cJSON *root, char *buf, size_t size);

#endif
