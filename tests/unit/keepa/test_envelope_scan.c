/*
 * test_envelope_scan.c - keepa_envelope_scan() against cJSON.
 *
 * The scan is what the host reads of an answer in worker mode; the worker
 * parses the same bytes with cJSON. So: whatever the scan accepts, cJSON
 * must parse to an object whose envelope members are the scan's (the
 * envelope the scheduler sees cannot differ between the modes), and every
 * answer a real server sends must be accepted. Fixed cases for each rule,
 * then a differential run over mutations of realistic answers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keepa/envelope.h"

static const char *const members[] = {"tokensLeft",     "refillRate",         "refillIn", "timestamp", "tokenFlowReduction",
                                      "tokensConsumed", "processingTimeInMs", "error"};

/* cJSON_Compare, except that two numbers are the same double (cJSON's
 * tolerance makes inf differ from inf). */
static bool same(const cJSON *a, const cJSON *b)
{
	if (cJSON_IsNumber(a) && cJSON_IsNumber(b))
		return a->valuedouble == b->valuedouble || (isnan(a->valuedouble) && isnan(b->valuedouble));
	return cJSON_Compare(a, b, true);
}

/* The scan of text agrees with cJSON's parse of it (see the top). Returns
 * whether the scan accepted it. */
static bool agrees(const char *text, size_t len)
{
	cJSON *scan = keepa_envelope_scan(text, len);
	cJSON *full;
	bool ok = scan != NULL;

	if (!scan)
		return false;
	full = cJSON_ParseWithLength(text, len);
	if (!full || !cJSON_IsObject(full)) {
		fprintf(stderr, "the scan accepted what cJSON refuses: %.*s\n", (int)(len > 300 ? 300 : len), text);
		fail();
	}
	for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++) {
		const cJSON *a = cJSON_GetObjectItemCaseSensitive(scan, members[i]);
		const cJSON *b = cJSON_GetObjectItemCaseSensitive(full, members[i]);
		if (!a && !b)
			continue;
		if (!a || !b || !same(a, b)) {
			fprintf(stderr, "member %s differs in: %.*s\n", members[i], (int)(len > 300 ? 300 : len), text);
			fail();
		}
	}
	cJSON_Delete(full);
	cJSON_Delete(scan);
	return ok;
}

static bool accepted(const char *text)
{
	return agrees(text, strlen(text));
}

static void envelope_members_are_read(void **state)
{
	const char *t = "{\"timestamp\":1733000000000,\"tokensLeft\":-12,\"refillIn\":5300,\"refillRate\":20,"
	                "\"tokenFlowReduction\":0.5,\"tokensConsumed\":5,\"processingTimeInMs\":17,"
	                "\"deals\":{\"dr\":[{\"asin\":\"B0\",\"current\":[1,2,-1]}]},\"products\":null}";
	cJSON *e = keepa_envelope_scan(t, strlen(t));
	struct tokens_envelope env;

	(void)state;
	assert_non_null(e);
	assert_int_equal(keepa_envelope_parse(e, 0, &env), KEEPA_ENVELOPE_READING);
	assert_int_equal(env.tokens_left, -12);
	assert_int_equal(env.refill_in_ms, 5300);
	assert_int_equal(env.refill_rate, 20);
	assert_int_equal(env.timestamp_ms, 1733000000000LL);
	assert_int_equal(env.tokens_consumed, 5);
	assert_int_equal(env.processing_ms, 17);
	/* The payload is not in the scan's tree. */
	assert_null(cJSON_GetObjectItemCaseSensitive(e, "deals"));
	assert_int_equal(cJSON_GetArraySize(e), 7);
	cJSON_Delete(e);
	assert_true(accepted(t));
}

static void error_member_is_kept_whole(void **state)
{
	const char *t = "{\"error\":{\"type\":\"invalidParameter\",\"message\":\"bad \\\"domain\\\"\",\"details\":"
	                "\"x\\u00e9\"},\"tokensLeft\":0,\"refillRate\":0}";
	cJSON *e = keepa_envelope_scan(t, strlen(t));
	char msg[256];

	(void)state;
	assert_non_null(e);
	assert_int_equal(keepa_envelope_error(e, msg, sizeof(msg)), 1);
	assert_string_equal(msg, "bad \"domain\" (invalidParameter; x\xc3\xa9)");
	cJSON_Delete(e);
	assert_true(accepted(t));
	assert_true(accepted("{\"error\":null,\"tokensLeft\":3,\"refillRate\":1}"));
	assert_true(accepted("{\"error\":\"plain text\"}"));
}

static void keys_as_cjson_reads_them(void **state)
{
	(void)state;
	/* An escaped key is the same key; the first of duplicates counts. */
	assert_true(accepted("{\"tokens\\u004ceft\":7,\"refillRate\":1}"));
	assert_true(accepted("{\"tokensLeft\":7,\"tokensLeft\":9,\"refillRate\":1}"));
	assert_true(accepted("{\"tokensLeft\":\"7\",\"refillRate\":1}")); /* not a number: kept as it is */
	assert_true(accepted("{\"tokensleft\":7}"));                      /* case matters */
	assert_true(accepted("{\"\":1,\"a\\u00e9\":2,\"tokensLeftAndMore\":3}"));
	assert_true(accepted("{}"));
	assert_true(accepted(" \r\n\t{ } "));
}

static void grammar_refusals(void **state)
{
	static const char *const bad[] = {
	    "", "   ", "[]", "\"s\"", "12", "null", "{", "{\"a\"", "{\"a\":", "{\"a\":1", "{\"a\":1,}", "{,}",
	    "{\"a\" 1}", "{a:1}", "{\"a\":[1,]}", "{\"a\":[1 2]}", "{\"a\":tru}", "{\"a\":nul}", "{\"a\":\"x}",
	    "{\"a\":\"\\x\"}", "{\"a\":\"\\u12\"}", "{\"a\":\"\\u12G4\"}", "{\"a\":\"\\udc00\"}",
	    "{\"a\":\"\\ud800\"}", "{\"a\":\"\\ud800\\u0041\"}", "{\"a\":-}", "{\"a\":1e}", "{\"a\":1.e5}",
	    "{\"a\":.5}", "{\"a\":+1}", "{\"a\":0x10}", "{\"a\":{\"b\":1]}", "{\"a\":[}",
	    "{\"a\":1 \"b\":2}", "{\"a\":NaN}", "{\"a\":-Infinity}",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cJSON *e = keepa_envelope_scan(bad[i], strlen(bad[i]));
		if (e) {
			fprintf(stderr, "accepted: %s\n", bad[i]);
			fail();
		}
	}
	/* The root object ends before the junk: cJSON takes it, so does the scan. */
	assert_true(accepted("{\"a\":1}}x"));
	assert_true(accepted("{\"a\":1}garbage after the root"));
	assert_true(accepted("\xEF\xBB\xBF{\"tokensLeft\":1,\"refillRate\":2}"));
	assert_true(accepted("{\"a\":\"\\ud83d\\ude00 and raw \t tab\"}")); /* as cJSON: raw controls pass */
	assert_true(accepted("{\"a\":[-0,0.5,1e10,-2E-3,1.25e+2,true,false,null,{},[],\"\"]}"));
	/* Strings with a NUL inside a length-delimited text. */
	{
		static const char t[] = "{\"a\":\"x\0y\",\"tokensLeft\":1}";
		assert_true(agrees(t, sizeof(t) - 1));
	}
	/* A number longer than cJSON reads (63 bytes) is refused by both. */
	{
		char t[128];
		snprintf(t, sizeof(t), "{\"a\":1%070d}", 0);
		assert_null(keepa_envelope_scan(t, strlen(t)));
	}
	/* Truncated anywhere: never accepted (the root object is not closed). */
	{
		const char *t = "{\"tokensLeft\":1,\"deals\":{\"dr\":[{\"asin\":\"B0\\u00e9\",\"x\":[1,2.5,null]}]}}";
		for (size_t n = 0; n < strlen(t); n++)
			assert_false(agrees(t, n));
		assert_true(agrees(t, strlen(t)));
	}
}

/* cJSON's nesting limit, counted the same way: the root is depth 0. */
static void nesting_limit(void **state)
{
	size_t n = CJSON_NESTING_LIMIT;
	char *t = malloc(2 * n + 16);

	(void)state;
	for (size_t depth = n - 2; depth <= n + 1; depth++) {
		/* {"a": followed by depth-1 '[' and as many ']' and '}' */
		size_t len = 0;
		len += (size_t)sprintf(t, "{\"a\":");
		for (size_t i = 1; i < depth; i++)
			t[len++] = '[';
		for (size_t i = 1; i < depth; i++)
			t[len++] = ']';
		t[len++] = '}';
		{
			cJSON *full = cJSON_ParseWithLength(t, len);
			cJSON *scan = keepa_envelope_scan(t, len);
			assert_int_equal(full != NULL, scan != NULL);
			cJSON_Delete(full);
			cJSON_Delete(scan);
		}
	}
	free(t);
}

/* A /deal-like answer of some size, the kind every call brings. */
static char *deal_page(size_t deals)
{
	size_t cap = 256 + deals * 200, len = 0;
	char *t = malloc(cap);

	len += (size_t)snprintf(t + len, cap - len,
	                        "{\"timestamp\":1733000000000,\"tokensLeft\":95,\"refillIn\":41000,\"refillRate\":20,"
	                        "\"tokenFlowReduction\":0.0,\"tokensConsumed\":5,\"processingTimeInMs\":3,\"deals\":{\"dr\":[");
	for (size_t i = 0; i < deals; i++)
		len += (size_t)snprintf(t + len, cap - len,
		                        "%s{\"asin\":\"B0%08zu\",\"title\":\"Caf\\u00e9 \\\"%zu\\\"\",\"current\":[%zu,-1,%zu.5],"
		                        "\"deltaPercent\":[[-%zu,3]],\"categories\":[9223372036854775807]}",
		                        i ? "," : "", i, i, i, i * 7, i);
	snprintf(t + len, cap - len, "],\"categoryIds\":[1,2]}}");
	return t;
}

static uint64_t rng = 0x9E3779B97F4A7C15ULL;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Mutations of real answers: a byte changed, removed or inserted (from the
 * characters that matter to the grammar), a cut. Whatever the scan
 * accepts, cJSON must parse with the same envelope (agrees() fails
 * otherwise); and the scan must not refuse everything - the unchanged
 * answers and many mutations (inside strings, digits) stay valid. */
static void differential_against_cjson(void **state)
{
	static const char alphabet[] = "{}[]\":,\\u0123456789.eE+-tfnlrsa \t\r\n\x01\xc3\xa9";
	char *seeds[3] = {deal_page(1), deal_page(20),
	                  strdup("{\"error\":{\"type\":\"x\",\"message\":\"m\"},\"tokensLeft\":-5,\"refillRate\":5,"
	                         "\"refillIn\":100,\"timestamp\":1}")};
	int runs = 0, kept = 0, stricter = 0;

	(void)state;
	for (int s = 0; s < 3; s++)
		assert_true(accepted(seeds[s]));
	for (int i = 0; i < 60000; i++) {
		const char *seed = seeds[i % 3];
		size_t len = strlen(seed), pos;
		char *t = malloc(len + 8);
		int edits = 1 + (int)(next() % 3);
		memcpy(t, seed, len + 1);
		for (int e = 0; e < edits && len > 0; e++) {
			pos = (size_t)(next() % len);
			switch (next() % 4) {
			case 0: t[pos] = alphabet[next() % (sizeof(alphabet) - 1)]; break;
			case 1: memmove(t + pos, t + pos + 1, len - pos); len--; break;
			case 2:
				if (e == 0) {
					memmove(t + pos + 1, t + pos, len - pos + 1);
					t[pos] = alphabet[next() % (sizeof(alphabet) - 1)];
					len++;
				}
				break;
			default: len = pos; t[len] = '\0'; break;
			}
		}
		if (agrees(t, len)) {
			kept++;
		} else {
			/* Where the scan is stricter than cJSON (see envelope_scan.c). */
			cJSON *full = cJSON_ParseWithLength(t, len);
			stricter += full && cJSON_IsObject(full);
			cJSON_Delete(full);
		}
		runs++;
		free(t);
	}
	printf("differential: %d mutated answers, %d accepted by the scan (and parsed alike by cJSON), "
	       "%d refused by the scan only\n", runs, kept, stricter);
	assert_true(kept > runs / 10);
	for (int s = 0; s < 3; s++)
		free(seeds[s]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(envelope_members_are_read), cmocka_unit_test(error_member_is_kept_whole),
	    cmocka_unit_test(keys_as_cjson_reads_them),  cmocka_unit_test(grammar_refusals),
	    cmocka_unit_test(nesting_limit),             cmocka_unit_test(differential_against_cjson),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
