/*
 * config_parse.c - how long config_load() takes, by file shape: many tasks,
 * one big settings group (libconfig checks each new member against all
 * earlier ones), one long list; and how fast a 10 MB file is refused.
 * One line per file: shape, settings, bytes, seconds, microseconds per
 * setting (a constant means linear), and the outcome.
 *
 *   build/tests/bench/config_parse
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "core/config_file.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Write a file of n settings (or, for "list", n list elements) in shape;
 * returns its size. */
static long write_shape(const char *path, const char *shape, long n)
{
	FILE *f = fopen(path, "w");
	long size;

	if (!f) {
		perror(path);
		exit(1);
	}
	fputs("plugin_path = [\"/nonexistent\"];\n", f);
	if (strcmp(shape, "tasks") == 0) {
		fputs("tasks = (\n", f);
		for (long i = 0; i < n / 2; i++)
			fprintf(f, "%s{ name = \"t%ld\"; plugin = \"x\"; }\n", i ? "," : "", i);
		fputs(");\n", f);
	} else if (strcmp(shape, "group") == 0) {
		fputs("tasks = ( { name = \"t\"; plugin = \"x\"; settings = {\n", f);
		for (long i = 0; i < n; i++)
			fprintf(f, "  k%ld = %ld;\n", i, i);
		fputs("}; } );\n", f);
	} else {
		fputs("tasks = ( { name = \"t\"; plugin = \"x\"; settings = { l = [\n", f);
		for (long i = 0; i < n; i++)
			fprintf(f, "%s%ld\n", i ? "," : "", i);
		fputs("]; }; } );\n", f);
	}
	size = ftell(f);
	fclose(f);
	return size;
}

static void measure(const char *path, const char *shape, long n)
{
	struct config cf;
	char *err = NULL;
	long size = write_shape(path, shape, n);
	double t = now_s();
	int rc = config_load(&cf, path, &err);

	t = now_s() - t;
	printf("%-6s %9ld %10ld %9.4f %9.3f  %s\n", shape, n, size, t, t * 1e6 / (double)n,
	       rc == 0 ? "loaded" : err ? err + strlen(path) + 3 : "error");
	fflush(stdout);
	free(err);
	config_release(&cf);
}

int main(void)
{
	char path[] = "/tmp/tg-bench-config-XXXXXX";
	int fd = mkstemp(path);

	if (fd < 0)
		return 1;
	close(fd);
	printf("%-6s %9s %10s %9s %9s  %s\n", "shape", "settings", "bytes", "seconds", "us/each", "outcome");
	const long counts[] = {250, 500, 1000, CONFIG_MAX_SETTINGS - 10};

	for (size_t i = 0; i < 4; i++)
		measure(path, "tasks", counts[i]);
	for (size_t i = 0; i < 4; i++)
		measure(path, "group", counts[i]);
	for (long n = 25000; n <= 100000; n *= 2)
		measure(path, "list", n);
	/* Hostile: past the limits, refused before libconfig reads a byte. */
	measure(path, "group", CONFIG_MAX_SETTINGS * 2);
	measure(path, "tasks", 560000); /* about 10 MB */
	unlink(path);
	return 0;
}
