/*
 * settings_text.h - a task's settings group carried to its worker as text.
 *
 * Settings run in the worker (plugins read them through the same accessors
 * as in the host), so the worker needs them with their libconfig types: an
 * integer must stay an integer and 60.0 a float. JSON would lose that, so
 * the host writes the group back as libconfig text and the worker parses it.
 */
#ifndef TG_WORKER_SETTINGS_TEXT_H
#define TG_WORKER_SETTINGS_TEXT_H

#include <libconfig.h>

/* "settings = { ... };" for group (which may be NULL: then ""), malloc()ed;
 * NULL when out of memory. */
char *settings_text(const config_setting_t *group);

/* Parse text into cf (config_init()ed by this; config_destroy() it) and
 * find the settings group: *group is NULL when the text had none. 0, or
 * TG_EINVAL with a message. */
int settings_text_parse(config_t *cf, const char *text, config_setting_t **group, char **errmsg);

#endif
