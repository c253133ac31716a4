/*
 * test_loader.c - the loader refuses every broken plugin with one clear line.
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
#include <unistd.h>

#include "core/loader.h"

#ifndef TESTPLUGIN_DIR
#error "TESTPLUGIN_DIR must be defined by the build"
#endif

static char root[64];
static char dir_a[128], dir_b[128];

/* Copy a built variant into dir as name.so with a safe mode. */
static void install(const char *variant, const char *dir, const char *name)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "install -m 0755 %s/testplugin_%s.so %s/%s.so", TESTPLUGIN_DIR, variant, dir,
	         name);
	assert_int_equal(system(cmd), 0);
}

static int setup(void **state)
{
	(void)state;
	snprintf(root, sizeof(root), "/tmp/tg-loader-XXXXXX");
	if (!mkdtemp(root))
		return -1;
	chmod(root, 0755);
	snprintf(dir_a, sizeof(dir_a), "%s/a", root);
	snprintf(dir_b, sizeof(dir_b), "%s/b", root);
	mkdir(dir_a, 0755);
	mkdir(dir_b, 0755);
	chmod(dir_a, 0755);
	chmod(dir_b, 0755);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	return system(cmd) == 0 ? 0 : -1;
}

/* Load dir_a/name.so with loader_find and expect an error containing needle. */
static void expect_refusal(const char *name, const char *needle)
{
	const char *dirs[] = {dir_a, dir_b};
	struct plugin p;
	char *err = NULL;

	assert_true(loader_find(dirs, 2, name, &p, &err) < 0);
	assert_non_null(err);
	print_message("%s -> %s\n", name, err);
	if (!strstr(err, needle))
		fail_msg("\"%s\" lacks \"%s\"", err, needle);
	assert_null(strchr(err, '\n'));
	assert_null(p.handle);
	free(err);
}

static void test_good_plugin(void **state)
{
	const char *dirs[] = {dir_a, dir_b};
	struct plugin p;
	char *err = NULL;
	(void)state;

	install("good", dir_b, "good");
	assert_int_equal(loader_find(dirs, 2, "good", &p, &err), 0);
	assert_null(err);
	assert_string_equal(p.desc->name, "good");
	assert_string_equal(p.desc->version, "1.2.3");
	assert_int_equal(p.desc->ncosts, 2);
	assert_true(plugin_declared_cost(p.desc, "deal", 3) == 5);
	assert_true(plugin_declared_cost(p.desc, "product", 40) == 40);
	assert_true(plugin_declared_cost(p.desc, "seller", 1) < 0);
	plugin_close(&p);
}

static void test_refusals(void **state)
{
	(void)state;
	install("noentry", dir_a, "noentry");
	expect_refusal("noentry", "no entry symbol tollgate_plugin_v1: not a tollgate plugin, or built for "
	                          "another ABI: rebuild the plugin");
	install("abi2", dir_a, "abi2");
	expect_refusal("abi2", "built for plugin ABI 2, this host speaks ABI 1: rebuild the plugin");
	install("shortsize", dir_a, "shortsize");
	expect_refusal("shortsize", "descriptor struct_size 16 is shorter than ABI 1.0's");
	install("norun", dir_a, "norun");
	expect_refusal("norun", "plugin \"norun\" lacks the run callback");
	expect_refusal("absent", "plugin \"absent\" not found: no absent.so in plugin_path");
	expect_refusal("Bad", "plugin name \"Bad\" is not");
}

static void test_duplicates_and_names(void **state)
{
	(void)state;
	/* The same plugin in two directories: which runs is not left to order. */
	install("good", dir_a, "twice");
	install("good", dir_b, "twice");
	expect_refusal("twice", "plugin \"twice\" is installed twice");
	/* A file whose descriptor declares another name. */
	install("good", dir_a, "renamed");
	expect_refusal("renamed", "declares plugin name \"good\", not \"renamed\"");
}

static void test_permissions(void **state)
{
	char path[256];
	(void)state;

	install("good", dir_a, "perm");
	snprintf(path, sizeof(path), "%s/perm.so", dir_a);
	chmod(path, 0666);
	expect_refusal("perm", "refused: writable by others (mode 0666); run chmod go-w");
	chmod(path, 0775);
	expect_refusal("perm", "refused: writable by group");
	chmod(path, 0755);
	chmod(dir_a, 0777);
	expect_refusal("perm", "/a: refused: writable by others");
	chmod(dir_a, 0755);
	if (geteuid() == 0) {
		/* Owned by a non-root user who is not us: refused. */
		assert_int_equal(chown(path, 4242, 4242), 0);
		expect_refusal("perm", "refused: owned by uid 4242");
	}
	unlink(path);
}

struct scan_result {
	int loaded, refused;
	char errors[8][512];
};

static void on_scan(void *ud, const char *path, const struct plugin *p, const char *error)
{
	struct scan_result *r = ud;
	(void)path;
	if (p)
		r->loaded++;
	else if (r->refused < 8)
		snprintf(r->errors[r->refused++], 512, "%s", error);
}

static void test_scan(void **state)
{
	const char *dirs[] = {dir_a, dir_b};
	struct scan_result r = {0};
	char cmd[512];
	int dup = 0;
	(void)state;

	snprintf(cmd, sizeof(cmd), "rm -f %s/*.so %s/*.so", dir_a, dir_b);
	assert_int_equal(system(cmd), 0);
	install("good", dir_a, "good");
	install("good", dir_b, "copy"); /* declares "good" again */
	install("initfails", dir_b, "initfails");
	install("abi2", dir_b, "abi2");
	loader_scan(dirs, 2, on_scan, &r);
	assert_int_equal(r.loaded, 2); /* good, initfails (init is not called by a scan) */
	assert_int_equal(r.refused, 2);
	for (int i = 0; i < r.refused; i++)
		if (strstr(r.errors[i], "duplicate plugin name \"good\""))
			dup = 1;
	assert_true(dup);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_plugin),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_duplicates_and_names),
		cmocka_unit_test(test_permissions),
		cmocka_unit_test(test_scan),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
