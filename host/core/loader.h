/*
 * loader.h - find, check and dlopen plugins.
 *
 * Plugins are loaded only from the configured directories, only when neither
 * the file nor its directory is writable by group or others or owned by
 * another non-root user (like sshd's StrictModes), with RTLD_NOW|RTLD_LOCAL,
 * and only after the descriptor passed every check: right ABI major (the
 * entry symbol's name), a minor not newer than ours, a large enough struct,
 * a valid name and all callbacks. Every refusal is one clear line that names
 * the file and says why.
 */
#ifndef TG_HOST_LOADER_H
#define TG_HOST_LOADER_H

#include <tollgate/tollgate.h>

struct plugin {
	char *path;
	void *handle;
	const struct tg_plugin *desc;
};

/* Refuse a file or directory that others could have written. */
int loader_check_path_safe(const char *path, char **errmsg);

/* Load and check the plugin at path (its directory is checked too). */
int loader_open_file(const char *path, struct plugin *out, char **errmsg);

/* Load the plugin called name: the file <dir>/<name>.so in the first of
 * dirs that has one. A second copy in a later directory is an error (which
 * one would run is then a matter of order, not of intent), and so is a file
 * whose descriptor declares another name. */
int loader_find(const char *const *dirs, int ndirs, const char *name, struct plugin *out, char **errmsg);

/* Call fn for every *.so in dirs, in order: with the loaded plugin, or with
 * the error that refused it (plugin then NULL). Duplicate names are
 * reported as errors for the later file. */
typedef void (*loader_scan_fn)(void *ud, const char *path, const struct plugin *plugin, const char *error);
void loader_scan(const char *const *dirs, int ndirs, loader_scan_fn fn, void *ud);

void plugin_close(struct plugin *plugin);

/* Estimated token cost of units of kind per the plugin's cost model; < 0 when
 * the plugin declares no such kind. */
double plugin_declared_cost(const struct tg_plugin *desc, const char *kind, int64_t units);
const struct tg_cost *plugin_cost(const struct tg_plugin *desc, const char *kind);

#endif
