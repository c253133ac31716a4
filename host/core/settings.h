/*
 * settings.h - typed access to a task's settings for plugins.
 *
 * Plugins never see libconfig: they ask for a declared setting by name and
 * type, and get the configured value or the declared default.
 */
#ifndef TG_HOST_SETTINGS_H
#define TG_HOST_SETTINGS_H

#include <stdbool.h>
#include <stdint.h>

#include <libconfig.h>
#include <tollgate/tollgate.h>

struct cJSON;

/* The declaration of name in the plugin, or NULL. */
const struct tg_setting *settings_declared(const struct tg_plugin *desc, const char *name);

int settings_int(const struct tg_plugin *desc, config_setting_t *group, const char *name, int64_t *out);
int settings_real(const struct tg_plugin *desc, config_setting_t *group, const char *name, double *out);
int settings_bool(const struct tg_plugin *desc, config_setting_t *group, const char *name, bool *out);
int settings_string(const struct tg_plugin *desc, config_setting_t *group, const char *name, const char **out);
int settings_json(const struct tg_plugin *desc, config_setting_t *group, const char *name, struct cJSON **out);

/* A libconfig setting as a new cJSON tree (groups become objects, lists and
 * arrays become arrays, numbers stay numbers). NULL on allocation failure. */
struct cJSON *settings_to_json(const config_setting_t *setting);

#endif
