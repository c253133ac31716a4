/*
 * loader.c - plugin discovery, permission checks and descriptor validation.
 */
#include "util/errmsg.h"
#include "core/loader.h"

#include <ctype.h>
#include <stdbool.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "core/config.h"

/* The size of the descriptor as ABI 1.0 defined it: a plugin built against
 * 1.0 is never refused by a later 1.x host whose struct grew. */
#define TG_PLUGIN_SIZE_V1_0 (offsetof(struct tg_plugin, destroy) + sizeof(void (*)(void *)))

/* One file or directory's mode and owner, as sshd's StrictModes judges
 * them: nobody but root and this daemon's user may have written it. A
 * directory others may write to is safe only with the sticky bit (like
 * /tmp): then nobody can rename or delete what is not theirs in it. */
static int check_mode(const char *path, const struct stat *st, char **errmsg)
{
	bool sticky_dir = S_ISDIR(st->st_mode) && (st->st_mode & S_ISVTX);

	if ((st->st_mode & (S_IWGRP | S_IWOTH)) && !sticky_dir)
		return errmsg_set(errmsg, TG_EINVAL, "%s: refused: writable by %s (mode %04o); run chmod go-w", path,
		                  (st->st_mode & S_IWOTH) ? "others" : "group", (unsigned)(st->st_mode & 07777));
	if (st->st_uid != 0 && st->st_uid != geteuid())
		return errmsg_set(errmsg, TG_EINVAL, "%s: refused: owned by uid %u, neither root nor this daemon's user",
		                  path, (unsigned)st->st_uid);
	return 0;
}

int loader_check_path_safe(const char *path, char **errmsg)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return errmsg_set(errmsg, TG_EIO, "%s: %s", path, strerror(errno));
	return check_mode(path, &st, errmsg);
}

int loader_check_dirs_safe(const char *dir, char **errmsg)
{
	char *real = realpath(dir, NULL);
	int rc = 0;

	if (!real)
		return errmsg_set(errmsg, TG_EIO, "%s: %s", dir, strerror(errno));
	/* Every directory from the real one up to /: replacing any of them
	 * replaces the plugin. Symbolic links on the way (/lib -> usr/lib) are
	 * resolved, so what is checked is what is opened. */
	for (size_t len = strlen(real); rc == 0; ) {
		char saved = real[len];

		real[len] = '\0';
		rc = loader_check_path_safe(len ? real : "/", errmsg);
		real[len] = saved;
		if (len == 0)
			break;
		while (len > 0 && real[len - 1] != '/')
			len--;
		if (len > 0)
			len--; /* drop the slash; 0 stands for "/" */
	}
	free(real);
	return rc;
}

static int valid_plugin_name(const char *s)
{
	if (!s || !islower((unsigned char)*s))
		return 0;
	for (; *s; s++)
		if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && *s != '_' && *s != '-')
			return 0;
	return 1;
}

/* Tell "another ABI major" apart from "not a plugin at all". */
static int other_major(void *handle)
{
	char sym[32];

	for (int major = 0; major < 100; major++) {
		if (major == TG_ABI_MAJOR)
			continue;
		snprintf(sym, sizeof(sym), "tollgate_plugin_v%d", major);
		if (dlsym(handle, sym))
			return major;
	}
	return -1;
}

static int check_descriptor(const char *path, const struct tg_plugin *d, char **errmsg)
{
	if (d->abi_major != TG_ABI_MAJOR) {
		errmsg_set(errmsg, 0, "%s: descriptor says ABI major %u, entry says %d: rebuild the plugin", path,
		                         d->abi_major, TG_ABI_MAJOR);
		return TG_EINVAL;
	}
	/* Any minor of our major: a newer plugin checks with TG_SERVICES_HAS()
	 * what it uses of the services table (the rule in tollgate.h). */
	if (d->struct_size < TG_PLUGIN_SIZE_V1_0) {
		errmsg_set(errmsg, 0, "%s: descriptor struct_size %zu is shorter than ABI 1.0's %zu: rebuild the "
		                         "plugin",
		                         path, d->struct_size, (size_t)TG_PLUGIN_SIZE_V1_0);
		return TG_EINVAL;
	}
	if (!valid_plugin_name(d->name)) {
		errmsg_set(errmsg, 0, "%s: plugin name %s%s%s is not [a-z][a-z0-9_-]*", path, d->name ? "\"" : "",
		                         d->name ? d->name : "(null)", d->name ? "\"" : "");
		return TG_EINVAL;
	}
	if (!d->version || !*d->version) {
		errmsg_set(errmsg, 0, "%s: plugin \"%s\" declares no version", path, d->name);
		return TG_EINVAL;
	}
	if (!d->init || !d->run || !d->destroy) {
		errmsg_set(errmsg, 0, "%s: plugin \"%s\" lacks the %s callback", path, d->name,
		                         !d->init ? "init" : !d->run ? "run" : "destroy");
		return TG_EINVAL;
	}
	if (d->ncosts && !d->costs) {
		errmsg_set(errmsg, 0, "%s: plugin \"%s\" declares %zu costs but no table", path, d->name, d->ncosts);
		return TG_EINVAL;
	}
	for (size_t i = 0; i < d->ncosts; i++) {
		const struct tg_cost *c = &d->costs[i];
		if (!c->kind || !*c->kind || !(c->per_unit >= 0) || !(c->fixed >= 0) || c->per_unit + c->fixed <= 0) {
			errmsg_set(errmsg, 0, "%s: plugin \"%s\": cost #%zu needs a kind and a positive cost", path,
			                         d->name, i + 1);
			return TG_EINVAL;
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(d->costs[j].kind, c->kind) == 0) {
				errmsg_set(errmsg, 0, "%s: plugin \"%s\": call kind \"%s\" declared twice", path,
				                         d->name, c->kind);
				return TG_EINVAL;
			}
	}
	if (d->nsettings && !d->settings) {
		errmsg_set(errmsg, 0, "%s: plugin \"%s\" declares %zu settings but no table", path, d->name,
		                         d->nsettings);
		return TG_EINVAL;
	}
	for (size_t i = 0; i < d->nsettings; i++) {
		const struct tg_setting *s = &d->settings[i];
		if (!s->name || !*s->name || (unsigned)s->type > TG_SETTING_LIST) {
			errmsg_set(errmsg, 0, "%s: plugin \"%s\": setting #%zu has no name or an unknown type", path,
			                         d->name, i + 1);
			return TG_EINVAL;
		}
	}
	return 0;
}

/* Open path for loading, refusing what could have been swapped: a symbolic
 * link, a file in (or under) a directory others may write to, a file others
 * may write to. The checks are made on the open descriptor, and that same
 * descriptor is what dlopen() maps, so nothing can change in between. */
static int open_checked(const char *path, int *fd_out, char **errmsg)
{
	char *dir_copy, target[512];
	struct stat st;
	ssize_t n;
	int fd, rc;

	*fd_out = -1;
	if (lstat(path, &st) != 0)
		return errmsg_set(errmsg, TG_EIO, "%s: %s", path, strerror(errno));
	if (S_ISLNK(st.st_mode)) {
		n = readlink(path, target, sizeof(target) - 1);
		target[n > 0 ? n : 0] = '\0';
		return errmsg_set(errmsg, TG_EINVAL,
		                  "%s: refused: a symbolic link (to %s); install the plugin file itself", path,
		                  n > 0 ? target : "?");
	}
	dir_copy = strdup(path);
	if (!dir_copy)
		return errmsg_set(errmsg, TG_ENOMEM, "out of memory");
	rc = loader_check_dirs_safe(dirname(dir_copy), errmsg);
	free(dir_copy);
	if (rc)
		return rc;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return errmsg_set(errmsg, errno == ELOOP ? TG_EINVAL : TG_EIO, "%s: %s", path,
		                  errno == ELOOP ? "refused: became a symbolic link while being checked" : strerror(errno));
	if (fstat(fd, &st) != 0) {
		rc = errmsg_set(errmsg, TG_EIO, "%s: %s", path, strerror(errno));
	} else if (!S_ISREG(st.st_mode)) {
		rc = errmsg_set(errmsg, TG_EINVAL, "%s: refused: not a regular file", path);
	} else {
		rc = check_mode(path, &st, errmsg);
	}
	if (rc) {
		close(fd);
		return rc;
	}
	*fd_out = fd;
	return 0;
}

/* Whether the object of handle is mapped from the file st describes
 * (/proc/self/maps names the device and inode behind every mapping). */
static bool loaded_from(void *handle, const struct stat *st)
{
	struct link_map *lm = NULL;
	char line[4096];
	bool same = false;
	FILE *maps;

	if (dlinfo(handle, RTLD_DI_LINKMAP, &lm) != 0 || !lm)
		return false;
	maps = fopen("/proc/self/maps", "re");
	if (!maps)
		return false;
	while (fgets(line, sizeof(line), maps)) {
		unsigned long lo, hi, inode;
		unsigned major, minor;

		if (sscanf(line, "%lx-%lx %*s %*s %x:%x %lu", &lo, &hi, &major, &minor, &inode) != 5)
			continue;
		if ((uintptr_t)lm->l_ld >= lo && (uintptr_t)lm->l_ld < hi) {
			same = makedev(major, minor) == st->st_dev && (ino_t)inode == st->st_ino;
			break;
		}
	}
	fclose(maps);
	return same;
}

/* dlopen() the checked descriptor. glibc knows a loaded object by the name
 * it was opened with: an object still mapped under the same
 * /proc/self/fd/N name (loaded earlier from a descriptor with the same
 * number, and never unloaded) would be handed back instead of ours. So the
 * result is checked against the file, and on a mismatch the descriptor
 * moves to another number. The same file loaded twice (two tasks of one
 * plugin) is one object, and that is right. */
static void *dlopen_fd(const char *path, int fd, const struct stat *st, char **errmsg)
{
	char name[64];
	int cur = fd;

	for (int tries = 0; tries < 64; tries++) {
		void *handle;
		int next, err;

		snprintf(name, sizeof(name), "/proc/self/fd/%d", cur);
		handle = dlopen(name, RTLD_NOW | RTLD_LOCAL);
		if (!handle) {
			const char *why = dlerror();

			errmsg_set(errmsg, TG_EINVAL, "%s: cannot load: %s%s", path, why ? why : "?",
			           access("/proc/self/fd", F_OK) != 0 ? " (is /proc mounted?)" : "");
			break;
		}
		if (loaded_from(handle, st)) {
			if (cur != fd)
				close(cur);
			return handle;
		}
		dlclose(handle);
		next = fcntl(cur, F_DUPFD_CLOEXEC, cur + 1);
		err = errno; /* before close() may change it */
		if (cur != fd)
			close(cur);
		cur = next;
		if (cur < 0) {
			errmsg_set(errmsg, TG_EIO, "%s: cannot load: %s", path, strerror(err));
			return NULL;
		}
	}
	if (cur != fd && cur >= 0)
		close(cur);
	if (errmsg && !*errmsg)
		errmsg_set(errmsg, TG_EIO, "%s: cannot load it as itself (another object keeps its name)", path);
	return NULL;
}

int loader_open_file(const char *path, struct plugin *out, char **errmsg)
{
	const struct tg_plugin *(*entry)(void);
	struct stat st;
	void *handle;
	int rc, major, fd;

	memset(out, 0, sizeof(*out));
	if ((rc = open_checked(path, &fd, errmsg)))
		return rc;
	/* The checked descriptor, not the path: what was checked is loaded. */
	if (fstat(fd, &st) != 0) {
		rc = errmsg_set(errmsg, TG_EIO, "%s: %s", path, strerror(errno));
		close(fd);
		return rc;
	}
	handle = dlopen_fd(path, fd, &st, errmsg);
	close(fd); /* the mapping stays */
	if (!handle)
		return TG_EINVAL;
	*(void **)(&entry) = dlsym(handle, TG_PLUGIN_ENTRY_NAME);
	if (!entry) {
		major = other_major(handle);
		if (major >= 0)
			errmsg_set(errmsg, 0, "%s: built for plugin ABI %d, this host speaks ABI %d: rebuild the "
			                         "plugin",
			                         path, major, TG_ABI_MAJOR);
		else
			errmsg_set(errmsg, 0, "%s: no entry symbol %s: not a tollgate plugin, or built for another "
			                         "ABI: rebuild the plugin",
			                         path, TG_PLUGIN_ENTRY_NAME);
		rc = TG_EINVAL;
		goto err_close;
	}
	out->desc = entry();
	if (!out->desc) {
		errmsg_set(errmsg, 0, "%s: %s() returned no descriptor", path, TG_PLUGIN_ENTRY_NAME);
		rc = TG_EINVAL;
		goto err_close;
	}
	if ((rc = check_descriptor(path, out->desc, errmsg)))
		goto err_close;
	out->path = strdup(path);
	if (!out->path) {
		rc = TG_ENOMEM;
		goto err_close;
	}
	out->handle = handle;
	return 0;

err_close:
	dlclose(handle);
	memset(out, 0, sizeof(*out));
	return rc;
}

int loader_find(const char *const *dirs, int ndirs, const char *name, struct plugin *out, char **errmsg)
{
	char path[4096];
	const char *found = NULL;
	char first[4096];
	int rc;

	memset(out, 0, sizeof(*out));
	if (!valid_plugin_name(name)) {
		errmsg_set(errmsg, 0, "plugin name \"%s\" is not [a-z][a-z0-9_-]*", name);
		return TG_EINVAL;
	}
	for (int i = 0; i < ndirs; i++) {
		snprintf(path, sizeof(path), "%s/%s.so", dirs[i], name);
		if (access(path, F_OK) != 0)
			continue;
		if (found) {
			errmsg_set(errmsg, 0, "plugin \"%s\" is installed twice: %s and %s; remove one", name, first,
			                         path);
			return TG_EINVAL;
		}
		snprintf(first, sizeof(first), "%s", path);
		found = first;
	}
	if (!found) {
		size_t len = 0;
		char where[1024] = "";
		for (int i = 0; i < ndirs; i++)
			len += (size_t)snprintf(where + len, len < sizeof(where) ? sizeof(where) - len : 0, "%s%s",
			                        i ? ", " : "", dirs[i]);
		errmsg_set(errmsg, 0, "plugin \"%s\" not found: no %s.so in plugin_path (%s)", name, name, where);
		return TG_ENOTFOUND;
	}
	if ((rc = loader_open_file(found, out, errmsg)))
		return rc;
	if (strcmp(out->desc->name, name) != 0) {
		errmsg_set(errmsg, 0, "%s: declares plugin name \"%s\", not \"%s\" as its file name says", found,
		                         out->desc->name, name);
		plugin_close(out);
		return TG_EINVAL;
	}
	return 0;
}

static int path_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int open_here(void *ctx, const char *path, struct plugin *out, char **errmsg)
{
	(void)ctx;
	return loader_open_file(path, out, errmsg);
}

void loader_scan(const char *const *dirs, int ndirs, loader_scan_fn fn, void *ud)
{
	loader_scan_with(dirs, ndirs, open_here, NULL, fn, ud);
}

void loader_scan_with(const char *const *dirs, int ndirs, loader_open_fn open, void *ctx, loader_scan_fn fn,
                      void *ud)
{
	struct seen {
		char *name;
		char *path;
	} *seen = NULL;
	size_t nseen = 0;

	for (int i = 0; i < ndirs; i++) {
		DIR *dir = opendir(dirs[i]);
		struct dirent *de;
		char **paths = NULL;
		size_t npaths = 0;

		if (!dir)
			continue;
		while ((de = readdir(dir)) != NULL) {
			size_t len = strlen(de->d_name);
			char **grown;
			if (len < 4 || strcmp(de->d_name + len - 3, ".so") != 0)
				continue;
			grown = realloc(paths, sizeof(*paths) * (npaths + 1));
			if (!grown)
				break;
			paths = grown;
			paths[npaths] = str_printf("%s/%s", dirs[i], de->d_name);
			if (paths[npaths])
				npaths++;
		}
		closedir(dir);
		qsort(paths, npaths, sizeof(*paths), path_cmp);
		for (size_t k = 0; k < npaths; k++) {
			struct plugin p;
			char *err = NULL;
			int dup = -1;

			if (open(ctx, paths[k], &p, &err) != 0) {
				fn(ud, paths[k], NULL, err ? err : "cannot load");
				free(err);
				free(paths[k]);
				continue;
			}
			for (size_t s = 0; s < nseen; s++)
				if (strcmp(seen[s].name, p.desc->name) == 0)
					dup = (int)s;
			if (dup >= 0) {
				err = str_printf("%s: duplicate plugin name \"%s\", already provided by %s", paths[k],
				                     p.desc->name, seen[dup].path);
				fn(ud, paths[k], NULL, err ? err : "duplicate plugin name");
				free(err);
			} else {
				struct seen *grown = realloc(seen, sizeof(*seen) * (nseen + 1));
				if (grown) {
					seen = grown;
					seen[nseen].name = strdup(p.desc->name);
					seen[nseen].path = strdup(paths[k]);
					nseen++;
				}
				fn(ud, paths[k], &p, NULL);
			}
			plugin_close(&p);
			free(paths[k]);
		}
		free(paths);
	}
	for (size_t s = 0; s < nseen; s++) {
		free(seen[s].name);
		free(seen[s].path);
	}
	free(seen);
}

void plugin_close(struct plugin *p)
{
	if (p->handle)
		dlclose(p->handle);
	if (p->free_desc)
		p->free_desc((struct tg_plugin *)(uintptr_t)p->desc);
	free(p->path);
	memset(p, 0, sizeof(*p));
}

const struct tg_cost *plugin_cost(const struct tg_plugin *desc, const char *kind)
{
	for (size_t i = 0; kind && i < desc->ncosts; i++)
		if (strcmp(desc->costs[i].kind, kind) == 0)
			return &desc->costs[i];
	return NULL;
}

double plugin_declared_cost(const struct tg_plugin *desc, const char *kind, int64_t units)
{
	const struct tg_cost *c = plugin_cost(desc, kind);

	if (!c)
		return -1;
	return c->fixed + c->per_unit * (double)(units > 0 ? units : 0);
}
