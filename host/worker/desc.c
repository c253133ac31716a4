/*
 * desc.c - plugin descriptors to JSON and back (desc.h).
 */
#include "worker/desc.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static void add_text(cJSON *o, const char *key, const char *v)
{
	if (v)
		cJSON_AddStringToObject(o, key, v);
	else
		cJSON_AddNullToObject(o, key);
}

cJSON *desc_to_json(const struct tg_plugin *p)
{
	cJSON *o = cJSON_CreateObject(), *costs, *settings;

	if (!o)
		return NULL;
	add_text(o, "name", p->name);
	add_text(o, "version", p->version);
	add_text(o, "description", p->description);
	cJSON_AddNumberToObject(o, "abi_major", p->abi_major);
	cJSON_AddNumberToObject(o, "abi_minor", p->abi_minor);
	costs = cJSON_AddArrayToObject(o, "costs");
	for (size_t i = 0; costs && i < p->ncosts; i++) {
		cJSON *c = cJSON_CreateObject();
		add_text(c, "kind", p->costs[i].kind);
		add_text(c, "unit", p->costs[i].unit);
		cJSON_AddNumberToObject(c, "fixed", p->costs[i].fixed);
		cJSON_AddNumberToObject(c, "per_unit", p->costs[i].per_unit);
		add_text(c, "description", p->costs[i].description);
		cJSON_AddItemToArray(costs, c);
	}
	settings = cJSON_AddArrayToObject(o, "settings");
	for (size_t i = 0; settings && i < p->nsettings; i++) {
		cJSON *s = cJSON_CreateObject();
		add_text(s, "name", p->settings[i].name);
		cJSON_AddNumberToObject(s, "type", p->settings[i].type);
		add_text(s, "default", p->settings[i].default_value);
		add_text(s, "description", p->settings[i].description);
		cJSON_AddItemToArray(settings, s);
	}
	return o;
}

/* A copy of a checked optional string member, NULL when absent or null.
 * *failed is set when a present string could not be copied. */
static const char *copy(const cJSON *o, const char *key, int *failed)
{
	const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
	char *c;

	if (!s)
		return NULL;
	c = strdup(s);
	if (!c)
		*failed = 1;
	return c;
}

struct tg_plugin *desc_from_json(const cJSON *o)
{
	const cJSON *costs = cJSON_GetObjectItemCaseSensitive(o, "costs");
	const cJSON *settings = cJSON_GetObjectItemCaseSensitive(o, "settings");
	struct tg_plugin *p = calloc(1, sizeof(*p));
	struct tg_cost *cv;
	struct tg_setting *sv;
	int failed = 0;

	if (!p)
		return NULL;
	p->struct_size = sizeof(*p);
	p->abi_major = (uint32_t)cJSON_GetObjectItemCaseSensitive(o, "abi_major")->valuedouble;
	p->abi_minor = (uint32_t)cJSON_GetObjectItemCaseSensitive(o, "abi_minor")->valuedouble;
	p->name = copy(o, "name", &failed);
	p->version = copy(o, "version", &failed);
	p->description = copy(o, "description", &failed);
	p->ncosts = (size_t)cJSON_GetArraySize(costs);
	p->costs = cv = calloc(p->ncosts + 1, sizeof(*cv));
	p->nsettings = (size_t)cJSON_GetArraySize(settings);
	p->settings = sv = calloc(p->nsettings + 1, sizeof(*sv));
	if (!cv || !sv) {
		desc_free(p);
		return NULL;
	}
	for (size_t i = 0; i < p->ncosts; i++) {
		const cJSON *c = cJSON_GetArrayItem(costs, (int)i);
		cv[i].kind = copy(c, "kind", &failed);
		cv[i].unit = copy(c, "unit", &failed);
		cv[i].fixed = cJSON_GetObjectItemCaseSensitive(c, "fixed")->valuedouble;
		cv[i].per_unit = cJSON_GetObjectItemCaseSensitive(c, "per_unit")->valuedouble;
		cv[i].description = copy(c, "description", &failed);
	}
	for (size_t i = 0; i < p->nsettings; i++) {
		const cJSON *s = cJSON_GetArrayItem(settings, (int)i);
		sv[i].name = copy(s, "name", &failed);
		sv[i].type = (enum tg_setting_type)cJSON_GetObjectItemCaseSensitive(s, "type")->valuedouble;
		sv[i].default_value = copy(s, "default", &failed);
		sv[i].description = copy(s, "description", &failed);
	}
	if (failed) {
		desc_free(p);
		return NULL;
	}
	return p;
}

/* The copy's strings are ours: the const in struct tg_plugin is for plugins. */
static void free_text(const char *s)
{
	free((void *)(uintptr_t)s);
}

void desc_free(struct tg_plugin *p)
{
	if (!p)
		return;
	for (size_t i = 0; p->costs && i < p->ncosts; i++) {
		free_text(p->costs[i].kind);
		free_text(p->costs[i].unit);
		free_text(p->costs[i].description);
	}
	for (size_t i = 0; p->settings && i < p->nsettings; i++) {
		free_text(p->settings[i].name);
		free_text(p->settings[i].default_value);
		free_text(p->settings[i].description);
	}
	free((void *)(uintptr_t)p->costs);
	free((void *)(uintptr_t)p->settings);
	free_text(p->name);
	free_text(p->version);
	free_text(p->description);
	free(p);
}
