/*
 * fuzz_config.c - any bytes as tollgate.cfg: the loader must answer with a
 * file:line error or a config, never crash or leak.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	char path[64], *err = NULL;
	struct config cf;

	/* One in-memory file, rewritten for every input. */
	if (fd < 0)
		fd = memfd_create("fuzz.cfg", 0);
	if (fd < 0 || ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		return 0;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	/* include_dir in a fuzzed file could name any directory: that is
	 * allowed (it is the operator's file), and harmless to read. */
	config_load(&cf, path, &err);
	free(err);
	config_release(&cf);
	return 0;
}
