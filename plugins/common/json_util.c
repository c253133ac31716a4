#include "json_util.h"

#include <math.h>

bool json_as_int(const cJSON *item, int64_t *out)
{
	double d;

	if (!cJSON_IsNumber(item))
		return false;
	d = item->valuedouble;
	/* Reject NaN, fractions and values outside the exact range of a double. */
	if (!(d >= -9007199254740992.0 && d <= 9007199254740992.0) || floor(d) != d)
		return false;
	*out = (int64_t)d;
	return true;
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
