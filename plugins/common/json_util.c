#include "json_util.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

/* The exact text the host keeps for an integer beyond 2^53
 * (host/util/json_exact.h, sdk/GUIDE.md "Numbers"): true with *out when it
 * fits int64, false when it does not (or is not such a text). */
static bool exact_text_as_int(const char *s, int64_t *out)
{
	char *end;
	long long v;

	if (!(*s == '-' || (*s >= '0' && *s <= '9')))
		return false; /* strtoll would skip blanks and take '+' */
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno == ERANGE || end == s || *end != '\0')
		return false;
	*out = v;
	return true;
}

bool json_as_int(const cJSON *item, int64_t *out)
{
	double d;

	if (!cJSON_IsNumber(item))
		return false;
	if (item->valuestring)
		return exact_text_as_int(item->valuestring, out);
	d = item->valuedouble;
	/* Reject NaN, fractions and magnitudes of 2^53 or more: a double there
	 * may stand for several integers (2^53 + 1 parses to 2^53), and the
	 * host keeps the text of every such integer literal, so this is a tree
	 * the host did not parse, or a fraction or exponent that big. */
	if (!(d > -9007199254740992.0 && d < 9007199254740992.0) || floor(d) != d)
		return false;
	*out = (int64_t)d;
	return true;
}

bool json_int_refused(const cJSON *item)
{
	int64_t x;

	return cJSON_IsNumber(item) && !json_as_int(item, &x);
}

bool json_get_int(const cJSON *obj, const char *name, int64_t *out)
{
	if (!cJSON_IsObject(obj))
		return false;
	return json_as_int(cJSON_GetObjectItemCaseSensitive(obj, name), out);
}

bool json_index_int(const cJSON *arr, int i, int64_t *out)
{
	if (!cJSON_IsArray(arr) || i < 0)
		return false;
	return json_as_int(cJSON_GetArrayItem(arr, i), out);
}

bool json_index2_int(const cJSON *arr, int i, int j, int64_t *out)
{
	if (!cJSON_IsArray(arr) || i < 0)
		return false;
	return json_index_int(cJSON_GetArrayItem(arr, i), j, out);
}

const char *json_get_string(const cJSON *obj, const char *name)
{
	const cJSON *s;

	if (!cJSON_IsObject(obj))
		return NULL;
	s = cJSON_GetObjectItemCaseSensitive(obj, name);
	return cJSON_IsString(s) ? s->valuestring : NULL;
}
