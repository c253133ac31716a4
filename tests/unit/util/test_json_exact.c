/*
 * test_json_exact.c - integers a double cannot hold keep their digits in
 * the number node's valuestring, every other number keeps NULL, and a text
 * that is not the tree's changes nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json_exact.h"

/* Parse text, annotate, check the count. */
static cJSON *parse(const char *text, int expect_kept)
{
	cJSON *doc = cJSON_ParseWithLength(text, strlen(text));

	assert_non_null(doc);
	assert_int_equal(json_exact_ints(doc, text, strlen(text)), expect_kept);
	return doc;
}

static const char *text_of(const cJSON *obj, const char *name)
{
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(obj, name);

	assert_true(cJSON_IsNumber(n));
	return n->valuestring;
}

static const char *item_text(const cJSON *arr, int i)
{
	const cJSON *n = cJSON_GetArrayItem(arr, i);

	assert_true(cJSON_IsNumber(n));
	return n->valuestring;
}

static void test_big_integers_keep_their_digits(void **st)
{
	cJSON *doc = parse("{\"a\":9223372036854775807,\"b\":[1,-9223372036854775808,9007199254740993],"
	                   "\"d\":9007199254740992,\"e\":-9007199254740992,\"f\":-9007199254740993,"
	                   "\"g\":123456789012345678901234567890,\"h\":9007199254740991,\"i\":-9007199254740991}",
	                   7);
	const cJSON *b = cJSON_GetObjectItemCaseSensitive(doc, "b");

	(void)st;
	assert_string_equal(text_of(doc, "a"), "9223372036854775807");
	/* The double is what cJSON made of it (2^63): untouched. */
	assert_true(cJSON_GetObjectItemCaseSensitive(doc, "a")->valuedouble == 9223372036854775808.0);
	assert_null(item_text(b, 0));
	assert_string_equal(item_text(b, 1), "-9223372036854775808");
	assert_string_equal(item_text(b, 2), "9007199254740993");
	/* 2^53 is exact as a double, but 2^53 + 1 parses to the same one: the
	 * text is kept from 2^53 on, below it the double says it all. */
	assert_string_equal(text_of(doc, "d"), "9007199254740992");
	assert_string_equal(text_of(doc, "e"), "-9007199254740992");
	assert_null(text_of(doc, "h"));
	assert_null(text_of(doc, "i"));
	assert_string_equal(text_of(doc, "f"), "-9007199254740993");
	/* Beyond int64: the text is there; refusing it is the reader's job. */
	assert_string_equal(text_of(doc, "g"), "123456789012345678901234567890");
	cJSON_Delete(doc); /* frees the texts: the leak check of the sanitizer build sees it */
}

static void test_other_numbers_stay_doubles(void **st)
{
	cJSON *doc = parse("[0,-0,1,-1,4503599627370496,12345678901234567890.5,1e20,12345678901234567890e0,"
	                   "-1.5E+300,1.0,99999999999999999999.]",
	                   0);
	const cJSON *n;

	(void)st;
	cJSON_ArrayForEach(n, doc)
	{
		assert_true(cJSON_IsNumber(n));
		assert_null(n->valuestring);
	}
	assert_int_equal(cJSON_GetArraySize(doc), 11);
	cJSON_Delete(doc);
}

static void test_strings_and_keys_are_skipped(void **st)
{
	/* Digits, quotes and backslashes inside keys and strings are no tokens. */
	cJSON *doc = parse("{\"12345678901234567890\":\"99999999999999999999\",\"q\\\"1\":\"a\\\\\\\"-88888888888888888888\","
	                   "\"x\\\\\":12345678901234567890, \"t\":[true,false,null,\"e1\"],\"y\":-12345678901234567891}",
	                   2);

	(void)st;
	assert_true(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(doc, "12345678901234567890")));
	assert_string_equal(text_of(doc, "x\\"), "12345678901234567890");
	assert_string_equal(text_of(doc, "y"), "-12345678901234567891");
	cJSON_Delete(doc);
}

static void test_leading_zeros_are_dropped(void **st)
{
	/* cJSON accepts leading zeros; the text is the canonical form. */
	cJSON *doc = parse("[00012345678901234567890,-0009223372036854775809,000000000000000000001]", 2);

	(void)st;
	assert_string_equal(item_text(doc, 0), "12345678901234567890");
	assert_string_equal(item_text(doc, 1), "-9223372036854775809");
	assert_null(item_text(doc, 2));
	cJSON_Delete(doc);
}

static void test_nesting_and_document_order(void **st)
{
	cJSON *doc =
	    parse("{\"p\":[{\"id\":10000000000000001,\"c\":[[1,20000000000000002],[3]]},{\"id\":30000000000000003}],"
	          "\"z\":{\"deep\":[[[[40000000000000004]]]]},\"after\":50000000000000005}",
	          5);
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(doc, "p");
	const cJSON *z = cJSON_GetObjectItemCaseSensitive(doc, "z");
	const cJSON *deep = cJSON_GetObjectItemCaseSensitive(z, "deep");

	(void)st;
	assert_string_equal(text_of(cJSON_GetArrayItem(p, 0), "id"), "10000000000000001");
	assert_string_equal(
	    item_text(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(p, 0), "c"), 0), 1),
	    "20000000000000002");
	assert_string_equal(text_of(cJSON_GetArrayItem(p, 1), "id"), "30000000000000003");
	assert_string_equal(item_text(deep->child->child->child, 0), "40000000000000004");
	assert_string_equal(text_of(doc, "after"), "50000000000000005");
	cJSON_Delete(doc);
}

static void test_root_number_and_trailing_text(void **st)
{
	/* cJSON_ParseWithLength ignores what follows the root value; so do we. */
	const char *t1 = "12345678901234567890 garbage 99999999999999999999";
	const char *t2 = "{\"a\":1} 99999999999999999999";
	const char *t3 = "1234567890123456789012345678901234567890123456789012345678901234567890";
	cJSON *d1 = parse(t1, 1), *d2 = parse(t2, 0), *d3;

	(void)st;
	assert_string_equal(d1->valuestring, "12345678901234567890");
	cJSON_Delete(d1);
	cJSON_Delete(d2);
	/* 70 digits (Debian's cJSON reads them all since CVE-2023-26819's fix). */
	d3 = cJSON_ParseWithLength(t3, strlen(t3));
	assert_non_null(d3);
	assert_int_equal(json_exact_ints(d3, t3, strlen(t3)), 1);
	assert_string_equal(d3->valuestring, t3);
	cJSON_Delete(d3);
}

static void test_text_without_nul(void **st)
{
	/* The body buffer of an answer: len bytes, and other bytes after them. */
	char buf[64];
	const char *json = "[12345678901234567890]";
	size_t len = strlen(json);
	cJSON *doc;

	(void)st;
	memset(buf, '7', sizeof(buf));
	memcpy(buf, json, len);
	doc = cJSON_ParseWithLength(buf, len);
	assert_non_null(doc);
	assert_int_equal(json_exact_ints(doc, buf, len), 1);
	assert_string_equal(item_text(doc, 0), "12345678901234567890");
	cJSON_Delete(doc);
}

static void test_wrong_text_changes_nothing(void **st)
{
	const char *text = "[12345678901234567890,22222222222222222222,3]";
	const char *other = "[12345678901234567890,22222222222222222222,4]";
	const char *shorter = "[12345678901234567890,22222222222222222222]";
	cJSON *doc = cJSON_Parse(text);
	const cJSON *n;

	(void)st;
	assert_int_equal(json_exact_ints(doc, other, strlen(other)), -1);
	assert_int_equal(json_exact_ints(doc, shorter, strlen(shorter)), -1);
	assert_int_equal(json_exact_ints(doc, text, 10), -1);
	assert_int_equal(json_exact_ints(doc, NULL, 0), -1);
	cJSON_ArrayForEach(n, doc)
	{
		assert_null(n->valuestring); /* the first two had been set, then undone */
	}
	assert_int_equal(json_exact_ints(NULL, text, strlen(text)), 0);
	/* Twice over the same text: the texts are replaced, not leaked. */
	assert_int_equal(json_exact_ints(doc, text, strlen(text)), 2);
	assert_int_equal(json_exact_ints(doc, text, strlen(text)), 2);
	assert_string_equal(item_text(doc, 1), "22222222222222222222");
	cJSON_Delete(doc);
}

static void test_duplicate_copies_the_text(void **st)
{
	cJSON *doc = parse("{\"a\":[9223372036854775807]}", 1);
	cJSON *copy = cJSON_Duplicate(doc, 1);
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(copy, "a");

	(void)st;
	cJSON_Delete(doc);
	assert_string_equal(item_text(a, 0), "9223372036854775807");
	cJSON_Delete(copy);
}

/* Every int64 printed, parsed and annotated comes back exactly: from the
 * text from 2^53 on, from the double below. */
static void test_every_int64_round_trips(void **st)
{
	uint64_t x = 0x9E3779B97F4A7C15ULL;
	char text[64 * 1024];
	int64_t vals[2000];
	size_t len = 0;
	cJSON *doc, *n;
	int i = 0, big = 0;

	(void)st;
	text[len++] = '[';
	for (i = 0; i < 2000; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		/* Every magnitude: shift by 0..63 bits. */
		vals[i] = (int64_t)(x >> (x % 64));
		if (i % 3 == 0)
			vals[i] = -vals[i];
		if (i == 0)
			vals[i] = INT64_MIN;
		if (i == 1)
			vals[i] = INT64_MAX;
		big += vals[i] >= 9007199254740992LL || vals[i] <= -9007199254740992LL;
		len += (size_t)snprintf(text + len, sizeof(text) - len, "%s%" PRId64, i ? "," : "", vals[i]);
	}
	text[len++] = ']';
	doc = cJSON_ParseWithLength(text, len);
	assert_non_null(doc);
	assert_true(big > 100);
	assert_int_equal(json_exact_ints(doc, text, len), big);
	i = 0;
	cJSON_ArrayForEach(n, doc)
	{
		int64_t got = n->valuestring ? strtoll(n->valuestring, NULL, 10) : (int64_t)n->valuedouble;

		assert_int_equal(got, vals[i]);
		i++;
	}
	cJSON_Delete(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_big_integers_keep_their_digits),
	    cmocka_unit_test(test_other_numbers_stay_doubles),
	    cmocka_unit_test(test_strings_and_keys_are_skipped),
	    cmocka_unit_test(test_leading_zeros_are_dropped),
	    cmocka_unit_test(test_nesting_and_document_order),
	    cmocka_unit_test(test_root_number_and_trailing_text),
	    cmocka_unit_test(test_text_without_nul),
	    cmocka_unit_test(test_wrong_text_changes_nothing),
	    cmocka_unit_test(test_duplicate_copies_the_text),
	    cmocka_unit_test(test_every_int64_round_trips),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
