/*
 * settings.c - typed settings for plugins (see settings.h).
 */
#include "core/settings.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

const struct tg_setting *settings_declared(const struct tg_plugin *desc, const char *name)
{
	for (size_t i = 0; name && i < desc->nsettings; i++)
		if (strcmp(desc->settings[i].name, name) == 0)
			return &desc->settings[i];
	return NULL;
}

/* The configured setting of name, after checking it is declared as type.
 * *s is NULL when not configured (the default then applies). */
static int lookup(const struct tg_plugin *desc, config_setting_t *group, const char *name,
                  enum tg_setting_type type, const struct tg_setting **decl, config_setting_t **s)
{
	*decl = settings_declared(desc, name);
	if (!*decl)
		return TG_EINVAL;
	if ((*decl)->type != type && !((*decl)->type == TG_SETTING_INT && type == TG_SETTING_REAL))
		return TG_ETYPE;
	*s = group ? config_setting_get_member(group, name) : NULL;
	if (!*s && !(*decl)->default_value)
		return TG_ENOTFOUND;
	return 0;
}

int settings_int(const struct tg_plugin *desc, config_setting_t *group, const char *name, int64_t *out)
{
	const struct tg_setting *d;
	config_setting_t *s;
	char *end;
	int rc = lookup(desc, group, name, TG_SETTING_INT, &d, &s);

	if (rc)
		return rc;
	if (s) {
		if (config_setting_type(s) != CONFIG_TYPE_INT && config_setting_type(s) != CONFIG_TYPE_INT64)
			return TG_ETYPE;
		*out = config_setting_get_int64(s);
		return 0;
	}
	errno = 0;
	*out = strtoll(d->default_value, &end, 10);
	return (errno || *end) ? TG_ETYPE : 0;
}

int settings_real(const struct tg_plugin *desc, config_setting_t *group, const char *name, double *out)
{
	const struct tg_setting *d;
	config_setting_t *s;
	char *end;
	int rc = lookup(desc, group, name, TG_SETTING_REAL, &d, &s);

	if (rc)
		return rc;
	if (s) {
		switch (config_setting_type(s)) {
		case CONFIG_TYPE_INT:
		case CONFIG_TYPE_INT64: *out = (double)config_setting_get_int64(s); return 0;
		case CONFIG_TYPE_FLOAT: *out = config_setting_get_float(s); return 0;
		default: return TG_ETYPE;
		}
	}
	*out = strtod(d->default_value, &end);
	return *end ? TG_ETYPE : 0;
}

int settings_bool(const struct tg_plugin *desc, config_setting_t *group, const char *name, bool *out)
{
	const struct tg_setting *d;
	config_setting_t *s;
	int rc = lookup(desc, group, name, TG_SETTING_BOOL, &d, &s);

	if (rc)
		return rc;
	if (s) {
		if (config_setting_type(s) != CONFIG_TYPE_BOOL)
			return TG_ETYPE;
		*out = config_setting_get_bool(s) != 0;
		return 0;
	}
	if (strcmp(d->default_value, "true") == 0)
		*out = true;
	else if (strcmp(d->default_value, "false") == 0)
		*out = false;
	else
		return TG_ETYPE;
	return 0;
}

int settings_string(const struct tg_plugin *desc, config_setting_t *group, const char *name, const char **out)
{
	const struct tg_setting *d;
	config_setting_t *s;
	int rc = lookup(desc, group, name, TG_SETTING_STRING, &d, &s);

	if (rc)
		return rc;
	if (s) {
		if (config_setting_type(s) != CONFIG_TYPE_STRING)
			return TG_ETYPE;
		*out = config_setting_get_string(s);
		return 0;
	}
	*out = d->default_value;
	return 0;
}

cJSON *settings_to_json(const config_setting_t *s)
{
	cJSON *out = NULL;
	int n;

	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64: return cJSON_CreateNumber((double)config_setting_get_int64(s));
	case CONFIG_TYPE_FLOAT: return cJSON_CreateNumber(config_setting_get_float(s));
	case CONFIG_TYPE_BOOL: return cJSON_CreateBool(config_setting_get_bool(s));
	case CONFIG_TYPE_STRING: return cJSON_CreateString(config_setting_get_string(s));
	case CONFIG_TYPE_GROUP: out = cJSON_CreateObject(); break;
	case CONFIG_TYPE_ARRAY:
	case CONFIG_TYPE_LIST: out = cJSON_CreateArray(); break;
	default: return cJSON_CreateNull();
	}
	if (!out)
		return NULL;
	n = config_setting_length(s);
	for (int i = 0; i < n; i++) {
		const config_setting_t *child = config_setting_get_elem(s, (unsigned)i);
		cJSON *item = settings_to_json(child);
		if (!item) {
			cJSON_Delete(out);
			return NULL;
		}
		if (config_setting_type(s) == CONFIG_TYPE_GROUP)
			cJSON_AddItemToObject(out, config_setting_name(child), item);
		else
			cJSON_AddItemToArray(out, item);
	}
	return out;
}

int settings_json(const struct tg_plugin *desc, config_setting_t *group, const char *name, cJSON **out)
{
	const struct tg_setting *d = settings_declared(desc, name);
	config_setting_t *s;

	*out = NULL;
	if (!d)
		return TG_EINVAL;
	s = group ? config_setting_get_member(group, name) : NULL;
	if (s) {
		*out = settings_to_json(s);
		return *out ? 0 : TG_ENOMEM;
	}
	if (!d->default_value)
		return TG_ENOTFOUND;
	*out = cJSON_Parse(d->default_value);
	return *out ? 0 : TG_ETYPE;
}
