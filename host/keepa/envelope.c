/*
 * keepa/envelope.c - the token envelope and error object of a Keepa answer.
 */
#include "keepa/envelope.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

/* A number member by name; false when absent or not a number. */
/* A field that is a number in a sane range. JSON numbers are doubles, and
 * converting one outside int64's range (1e400 parses as inf) is undefined
 * behaviour in C; no real token field comes near 2^53, so anything beyond
 * it, NaN or infinite, counts as missing. */
static int get_number(const cJSON *root, const char *name, double *out)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, name);
	const double limit = 9007199254740992.0; /* 2^53 */

	if (!cJSON_IsNumber(item) || !(item->valuedouble >= -limit && item->valuedouble <= limit))
		return 0;
	*out = item->valuedouble;
	return 1;
}

static double clamp(double v, double lo, double hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

enum keepa_envelope_kind keepa_envelope_parse(const struct cJSON *root, int64_t fallback_ts_ms,
                                              struct tokens_envelope *env)
{
	double left, rate, refill = 0, v;
	int have_refill;

	memset(env, 0, sizeof(*env));
	if (!cJSON_IsObject(root))
		return KEEPA_ENVELOPE_NONE;
	if (!get_number(root, "tokensLeft", &left) || !get_number(root, "refillRate", &rate))
		return KEEPA_ENVELOPE_NONE;
	/* Clamped here, once: see envelope.h. */
	env->tokens_left = (int64_t)clamp(left, (double)-KEEPA_TOKENS_MAX, (double)KEEPA_TOKENS_MAX);
	env->refill_rate = (int64_t)clamp(rate, 0, KEEPA_RATE_MAX);
	env->timestamp_ms = get_number(root, "timestamp", &v) ? (int64_t)v : fallback_ts_ms;
	have_refill = get_number(root, "refillIn", &refill);
	refill = clamp(refill, 0, (double)KEEPA_REFILL_IN_MAX_MS);
	env->refill_in_ms = have_refill ? (int64_t)refill : 60000;
	env->token_flow_reduction = get_number(root, "tokenFlowReduction", &v) ? clamp(v, 0, KEEPA_RATE_MAX) : 0.0;
	env->tokens_consumed =
	    get_number(root, "tokensConsumed", &v) ? (int64_t)clamp(v, 0, (double)KEEPA_TOKENS_MAX) : 0;
	env->processing_ms =
	    get_number(root, "processingTimeInMs", &v) ? (int64_t)clamp(v, 0, (double)KEEPA_PROCESSING_MAX_MS) : 0;

	/* The invalid-key answer zeroes the token fields but may still carry a
	 * timestamp and a processing time: those two do not count. */
	if (env->tokens_left == 0 && env->refill_rate == 0 && env->token_flow_reduction == 0.0 &&
	    env->tokens_consumed == 0 && refill == 0)
		return KEEPA_ENVELOPE_ZERO;
	return KEEPA_ENVELOPE_READING;
}

/* Append "s" to buf with a separator when buf already holds text. */
static void append(char *buf, size_t size, const char *sep, const char *s)
{
	size_t len = strlen(buf);

	if (!s || !*s || len + 1 >= size)
		return;
	snprintf(buf + len, size - len, "%s%s", len ? sep : "", s);
}

int keepa_envelope_error(const struct cJSON *root, char *buf, size_t size)
{
	const cJSON *err = cJSON_GetObjectItemCaseSensitive(root, "error");
	const cJSON *type, *message, *details;

	if (size)
		buf[0] = '\0';
	if (!err || cJSON_IsNull(err))
		return 0;
	if (!size)
		return 1;
	if (cJSON_IsString(err)) {
		append(buf, size, "", err->valuestring);
		return 1;
	}
	if (!cJSON_IsObject(err))
		return 1;
	type = cJSON_GetObjectItemCaseSensitive(err, "type");
	message = cJSON_GetObjectItemCaseSensitive(err, "message");
	details = cJSON_GetObjectItemCaseSensitive(err, "details");
	append(buf, size, "", cJSON_IsString(message) ? message->valuestring : NULL);
	if (cJSON_IsString(type) || cJSON_IsString(details)) {
		char extra[256] = "";

		append(extra, sizeof(extra), "", cJSON_IsString(type) ? type->valuestring : NULL);
		append(extra, sizeof(extra), "; ", cJSON_IsString(details) ? details->valuestring : NULL);
		if (*extra) {
			size_t len = strlen(buf);
			if (len)
				snprintf(buf + len, size - len, " (%s)", extra);
			else
				snprintf(buf, size, "%s", extra);
		}
	}
	return 1;
}
