/*
 * json_exact.h - the exact digits of JSON integers a double cannot hold.
 *
 * cJSON stores every number as a double, so an integer literal beyond 2^53
 * (Keepa's 64-bit ids, a root category of 2^63-1) has lost digits before
 * anyone reads the tree: 9223372036854775807 reads back as
 * 9223372036854775808.0. json_exact_ints() puts the text back: after
 * cJSON_ParseWithLength(text, len) returned doc, it walks the text's number
 * tokens in document order alongside the tree (cJSON keeps object members
 * and array items in document order) and, for each integer literal of
 * magnitude 2^53 or more (from there on, two integers can share a double:
 * 2^53 + 1 parses to 2^53), stores the literal's digits in that number
 * node's `valuestring`.
 *
 * The contract a reader of the tree relies on (sdk/GUIDE.md, "Numbers"):
 *   - a cJSON_Number node whose valuestring is not NULL holds an integer
 *     literal of magnitude >= 2^53; valuestring is its exact decimal text: an
 *     optional '-' and digits without leading zeros ("-9223372036854775809"
 *     can be there: it is the text, not a promise that it fits int64);
 *   - valuedouble is untouched (the nearest double, as cJSON parsed it), so
 *     code that ignores valuestring behaves as before;
 *   - every other number keeps valuestring NULL: an integer below 2^53 in
 *     magnitude (its double is exact, and the only integer it can be), or a
 *     fraction or an exponent form (1e20), which stays a double.
 *
 * Ownership: the strings are allocated with cJSON_malloc() and belong to the
 * tree; cJSON_Delete() frees a node's valuestring whatever its type (unless
 * the node is a reference, which a parse never makes), and cJSON_Duplicate()
 * copies it (both checked in cJSON 1.7.15's source, the version Debian 12
 * ships). cJSON_Print() ignores it and prints the double.
 */
#ifndef TG_UTIL_JSON_EXACT_H
#define TG_UTIL_JSON_EXACT_H

#include <stddef.h>

#include <cjson/cJSON.h>

/*
 * Give the integer literals of doc that a double cannot hold their exact
 * text. doc must be the tree cJSON_ParseWithLength(text, len) (or
 * cJSON_Parse(text) with len = strlen(text)) just returned, unchanged; text
 * need not be NUL-terminated. Text after the root value (which cJSON's
 * parse ignores) is never read.
 *
 * Returns how many numbers got their text (0 for a body with no big
 * integers, the usual case), or -1 when out of memory or when text is not
 * what doc was parsed from (a number in the tree has no matching token):
 * then no valuestring of doc's numbers is set, and readers see the doubles,
 * as without this call. A NULL doc returns 0.
 */
int json_exact_ints(cJSON *doc, const char *text, size_t len);

#endif
