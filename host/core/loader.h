/*
 * loader.h - find, check and dlopen plugins.
 *
 * Plugins are loaded only from the configured directories, and only when
 * nobody but root and this daemon's user can have written them, like sshd's
 * StrictModes: the file is not a symbolic link, neither it nor any directory
 * from its own up to / is writable by group or others (a sticky directory
 * such as /tmp excepted) or owned by another non-root user. The file is
 * opened once, checked through its descriptor and loaded from that same
 * descriptor (/proc/self/fd/N), so it cannot be swapped between check and
 * load. Then, with RTLD_NOW|RTLD_LOCAL, the descriptor must pass every
 * check: right ABI major (the entry symbol's name), any minor (tollgate.h's
 * rule), a large enough struct, a valid name and all callbacks. Every
 * refusal is one clear line that names the file and says why.
 */
#ifndef TG_HOST_LOADER_H
#define TG_HOST_LOADER_H

#include <tollgate/tollgate.h>

struct plugin {
	char *path;
	void *handle;
	const struct tg_plugin *desc;
	/* Set when desc is a copy the host owns (the plugin was loaded in a
	 * worker process, handle is NULL): plugin_close() frees it with this. */
	void (*free_desc)(struct tg_plugin *desc);
};

/* Refuse a file or directory that others could have written. */
int loader_check_path_safe(const char *path, char **errmsg);
/* The same for dir and every directory above it, up to / (symbolic links
 * on the way resolved). */
int loader_check_dirs_safe(const char *dir, char **errmsg);

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
/* The same, opening each file with open (loader_open_file's contract; ctx is
 * its first argument): supervise.c opens them in a worker process. */
typedef int (*loader_open_fn)(void *ctx, const char *path, struct plugin *out, char **errmsg);
void loader_scan_with(const char *const *dirs, int ndirs, loader_open_fn open, void *ctx, loader_scan_fn fn,
                      void *ud);

void plugin_close(struct plugin *plugin);

/* Estimated token cost of units of kind per the plugin's cost model; < 0 when
 * the plugin declares no such kind. */
double plugin_declared_cost(const struct tg_plugin *desc, const char *kind, int64_t units);
const struct tg_cost *plugin_cost(const struct tg_plugin *desc, const char *kind);

#endif
