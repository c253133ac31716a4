/*
 * test_dlopen.c - load a built plugin as the host will (RTLD_NOW |
 * RTLD_LOCAL), find its one entry and check its descriptor.
 * Usage: test_dlopen <plugin.so> <expected name>
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tollgate/tollgate.h>

#define CHECK(cond)                                                                                          \
	do {                                                                                                 \
		if (!(cond)) {                                                                               \
			fprintf(stderr, "%s: check failed: %s\n", path, #cond);                              \
			return 1;                                                                            \
		}                                                                                            \
	} while (0)

int main(int argc, char **argv)
{
	const struct tg_plugin *(*entry)(void);
	const struct tg_plugin *pl;
	const char *path;
	void *h;
	size_t i, k;

	if (argc != 3) {
		fprintf(stderr, "usage: %s plugin.so name\n", argv[0]);
		return 2;
	}
	path = argv[1];
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		fprintf(stderr, "dlopen: %s\n", dlerror());
		return 1;
	}
	*(void **)&entry = dlsym(h, TG_PLUGIN_ENTRY_NAME);
	CHECK(entry != NULL);
	/* Only the entry is exported: the shared code stays hidden. */
	CHECK(dlsym(h, "deals_table") == NULL);
	CHECK(dlsym(h, "chunk_commit") == NULL);
	pl = entry();
	CHECK(pl != NULL);
	CHECK(pl->abi_major == TG_ABI_MAJOR);
	CHECK(pl->abi_minor <= TG_ABI_MINOR);
	CHECK(pl->struct_size == sizeof(struct tg_plugin));
	CHECK(pl->name && !strcmp(pl->name, argv[2]));
	CHECK(pl->version && *pl->version);
	CHECK(pl->description && *pl->description);
	CHECK(pl->costs && pl->ncosts > 0);
	for (i = 0; i < pl->ncosts; i++) {
		CHECK(pl->costs[i].kind && *pl->costs[i].kind);
		CHECK(pl->costs[i].unit && *pl->costs[i].unit);
		CHECK(pl->costs[i].per_unit > 0 && pl->costs[i].fixed >= 0);
		CHECK(pl->costs[i].description != NULL);
		for (k = 0; k < i; k++)
			CHECK(strcmp(pl->costs[k].kind, pl->costs[i].kind) != 0);
	}
	CHECK(pl->settings && pl->nsettings > 0);
	for (i = 0; i < pl->nsettings; i++) {
		CHECK(pl->settings[i].name && pl->settings[i].description);
		for (k = 0; k < i; k++)
			CHECK(strcmp(pl->settings[k].name, pl->settings[i].name) != 0);
	}
	CHECK(pl->init && pl->run && pl->destroy);
	printf("%s %s: %zu cost kinds, %zu settings\n", pl->name, pl->version, pl->ncosts, pl->nsettings);
	dlclose(h);
	return 0;
}
