/*
 * test_config_hostile.c - configuration files libconfig must never read
 * (#13 item 6): a FIFO (it blocked `check` forever), a directory, a device,
 * a file past the size limit, a file with more settings than the limit (a
 * big group is quadratic in libconfig); each refused at once with
 * "file:0: refused: why". And finding a duplicate task name stays linear.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "core/config_file.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/tg-hostile-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void expect_refused(const char *path, const char *needle)
{
	struct config cf;
	char *err = NULL, prefix[256];

	assert_int_equal(config_load(&cf, path, &err), TG_EINVAL);
	assert_non_null(err);
	print_message("%s\n", err);
	snprintf(prefix, sizeof(prefix), "%s:0: ", path);
	assert_memory_equal(err, prefix, strlen(prefix));
	if (!strstr(err, needle))
		fail_msg("\"%s\" lacks \"%s\"", err, needle);
	free(err);
	config_release(&cf);
}

static void test_not_regular_files(void **state)
{
	char path[128];
	(void)state;

	/* With no writer, reading a FIFO blocks forever: it must not be read. */
	snprintf(path, sizeof(path), "%s/fifo.cfg", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	expect_refused(path, "refused: a FIFO, not a regular file");
	snprintf(path, sizeof(path), "%s/dir.cfg", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	expect_refused(path, "refused: a directory, not a regular file");
	expect_refused("/dev/zero", "refused: a device, not a regular file");
}

static void test_size_and_settings_limits(void **state)
{
	char path[128];
	FILE *f;
	(void)state;

	snprintf(path, sizeof(path), "%s/big.cfg", dir);
	f = fopen(path, "w");
	fputs("plugin_path = [\"/p\"];\n# ", f);
	for (long i = 0; i < CONFIG_MAX_FILE_BYTES; i++)
		fputc('x', f);
	fputc('\n', f);
	fclose(f);
	expect_refused(path, "bytes; a configuration file has at most 1048576");

	snprintf(path, sizeof(path), "%s/many.cfg", dir);
	f = fopen(path, "w");
	fputs("plugin_path = [\"/p\"];\ntasks = ( { name = \"t\"; plugin = \"x\"; settings = {\n", f);
	for (int i = 0; i < CONFIG_MAX_SETTINGS; i++)
		fprintf(f, "k%d = %d;\n", i, i);
	fputs("}; } );\n", f);
	fclose(f);
	expect_refused(path, "refused: 2005 settings; a configuration file has at most 2000");
}

/* Only real assignments count: not the = and : of strings and comments. */
static void test_counting_settings(void **state)
{
	const char *text = "a = 1; # b = 2\n"
	                   "c : \"d = e : f \\\" g = h\";\n"
	                   "// i = j\n"
	                   "/* k = l\n m = n */ o = [1, 2, 3];\n"
	                   "p = { q = 1; r = 2; };\n";
	(void)state;
	assert_int_equal(config_count_settings(text, strlen(text)), 6);
}

/* 900 tasks with the last one repeating the first's name: found, where it
 * is written, and quickly (the old check compared every name with all the
 * earlier ones). */
static void test_duplicate_among_many_tasks(void **state)
{
	char path[128], *err = NULL;
	struct config cf;
	FILE *f;
	(void)state;

	snprintf(path, sizeof(path), "%s/dup.cfg", dir);
	f = fopen(path, "w");
	fputs("plugin_path = [\"/p\"];\ntasks = (\n", f);
	for (int i = 0; i < 900; i++)
		fprintf(f, "{ name = \"t%d\"; plugin = \"x\"; },\n", i);
	fputs("{ name = \"t0\"; plugin = \"x\"; } );\n", f);
	fclose(f);
	assert_int_equal(config_load(&cf, path, &err), TG_EINVAL);
	print_message("%s\n", err);
	assert_non_null(strstr(err, ":903: task name \"t0\" is already used at"));
	assert_non_null(strstr(err, "dup.cfg:3"));
	free(err);
	config_release(&cf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_not_regular_files),
		cmocka_unit_test(test_size_and_settings_limits),
		cmocka_unit_test(test_counting_settings),
		cmocka_unit_test(test_duplicate_among_many_tasks),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
