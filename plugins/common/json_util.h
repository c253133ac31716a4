/*
 * json_util.h - tolerant readers for Keepa JSON: each says whether the value
 * was there with the right type instead of crashing or guessing.
 */
#ifndef TG_PLUGINS_JSON_UTIL_H
#define TG_PLUGINS_JSON_UTIL_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* An integral JSON number that fits int64 (Keepa sends only integers where
 * we read them); false for any other type, a fraction or NULL. From 2^53
 * on the value comes from the exact text the host keeps in the number's
 * valuestring (sdk/GUIDE.md, "Numbers"), so 9223372036854775807 reads
 * exactly and 9223372036854775808 is refused; without that text (a tree the
 * host did not parse) such a number is refused, never rounded. */
bool json_as_int(const cJSON *item, int64_t *out);

/* A JSON number json_as_int() refuses (a fraction, or beyond int64): a
 * value that was there but is malformed, as opposed to absent. */
bool json_int_refused(const cJSON *item);

/* The integer member name of obj. */
bool json_get_int(const cJSON *obj, const char *name, int64_t *out);

/* Element i of array arr as an integer. */
bool json_index_int(const cJSON *arr, int i, int64_t *out);

/* arr[i][j] as an integer (Keepa's avg[dateRange][priceType]). */
bool json_index2_int(const cJSON *arr, int i, int j, int64_t *out);

/* The string member name of obj, or NULL. */
const char *json_get_string(const cJSON *obj, const char *name);

#endif
