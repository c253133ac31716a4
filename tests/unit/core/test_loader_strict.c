/*
 * test_loader_strict.c - what the loader may load (#13 items 4 and 5):
 * never a symbolic link, nothing under a directory others may write to (up
 * to /), nothing but a regular file; the checked descriptor is what is
 * loaded; and any minor of our ABI major, older or newer.
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

static void sh(const char *fmt, ...) TG_PRINTF(1, 2);
static void sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	assert_int_equal(system(cmd), 0);
}

/* root/<dir> with mode, and the built variant in it as <name>.so. */
static void put(const char *variant, const char *dir, int mode, const char *name)
{
	sh("mkdir -p %s/%s && chmod %o %s/%s", root, dir, mode, root, dir);
	if (variant)
		sh("install -m 0755 %s/testplugin_%s.so %s/%s/%s.so", TESTPLUGIN_DIR, variant, root, dir, name);
}

static void expect_refused(const char *rel, const char *needle)
{
	struct plugin p;
	char path[256], *err = NULL;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	assert_true(loader_open_file(path, &p, &err) < 0);
	assert_non_null(err);
	print_message("%s -> %s\n", rel, err);
	if (!strstr(err, needle))
		fail_msg("\"%s\" lacks \"%s\"", err, needle);
	assert_null(p.handle);
	free(err);
}

static void expect_loaded(const char *rel, const char *name, struct plugin *p)
{
	char path[256], *err = NULL;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	if (loader_open_file(path, p, &err) != 0)
		fail_msg("%s refused: %s", rel, err);
	assert_string_equal(p->desc->name, name);
}

static int setup(void **state)
{
	(void)state;
	snprintf(root, sizeof(root), "/tmp/tg-strict-XXXXXX");
	if (!mkdtemp(root))
		return -1;
	return chmod(root, 0755);
}

static int teardown(void **state)
{
	(void)state;
	sh("rm -rf %s", root);
	return 0;
}

/* The case: a plugin symlinked into a world-writable directory. */
static void test_symlink_into_world_writable_dir(void **state)
{
	(void)state;
	put("good", "safe", 0755, "good");
	put(NULL, "ww", 0777, NULL);
	sh("ln -s %s/safe/good.so %s/ww/good.so", root, root);
	expect_refused("ww/good.so", "refused: a symbolic link (to ");
	/* Even in a safe directory, a link is refused: what it points at can
	 * change after the check. */
	sh("ln -s good.so %s/safe/alias.so", root);
	expect_refused("safe/alias.so", "safe/alias.so: refused: a symbolic link (to good.so)");
}

/* A directory above the plugin's is as good as the plugin's own: whoever
 * may write it can rename the whole subtree away and put another in. */
static void test_every_directory_up_to_root(void **state)
{
	struct plugin p;
	(void)state;

	put(NULL, "open", 0777, NULL);
	put("good", "open/deep/er", 0755, "good");
	sh("chmod 0755 %s/open/deep", root);
	expect_refused("open/deep/er/good.so", "/open: refused: writable by others (mode 0777)");
	put(NULL, "grp", 0775, NULL);
	put("good", "grp/sub", 0755, "good");
	expect_refused("grp/sub/good.so", "/grp: refused: writable by group");
	/* A sticky directory (like /tmp) is fine: nobody can rename what is
	 * not theirs in it. */
	put(NULL, "sticky", 01777, NULL);
	put("good", "sticky/sub", 0755, "good");
	expect_loaded("sticky/sub/good.so", "good", &p);
	plugin_close(&p);
	/* ...but a plugin file right in it is still refused when writable. */
	sh("chmod 0777 %s/sticky/sub/good.so", root);
	expect_refused("sticky/sub/good.so", "good.so: refused: writable by others");
}

static void test_not_a_regular_file(void **state)
{
	(void)state;
	put(NULL, "odd", 0755, NULL);
	sh("mkfifo -m 0644 %s/odd/fifo.so && mkdir -m 0755 %s/odd/dir.so", root, root);
	/* A FIFO must not block the loader (opened non-blocking, then refused). */
	expect_refused("odd/fifo.so", "fifo.so: refused: not a regular file");
	expect_refused("odd/dir.so", "dir.so: refused: not a regular file");
}

/* Loaded by descriptor: two plugins opened one after the other may get the
 * same descriptor number, and each must still be itself. */
static void test_each_plugin_is_itself(void **state)
{
	struct plugin a, b, c;
	(void)state;

	put("good", "one", 0755, "good");
	put("initfails", "two", 0755, "initfails");
	put("norun", "three", 0755, "norun");
	expect_loaded("one/good.so", "good", &a);
	expect_loaded("two/initfails.so", "initfails", &b);
	plugin_close(&a);
	expect_loaded("one/good.so", "good", &c);
	plugin_close(&b);
	plugin_close(&c);
	expect_refused("three/norun.so", "lacks the run callback");
}

/* The ABI rule of tollgate.h: any minor of our major loads, older and
 * newer (a newer plugin checks what it uses with TG_SERVICES_HAS). */
static void test_any_minor_of_our_major(void **state)
{
	struct plugin p;
	(void)state;

	put("newerminor", "abi", 0755, "newerminor");
	put("oldminor", "abi", 0755, "oldminor");
	expect_loaded("abi/newerminor.so", "newerminor", &p);
	assert_int_equal(p.desc->abi_minor, TG_ABI_MINOR + 1);
	plugin_close(&p);
	expect_loaded("abi/oldminor.so", "oldminor", &p);
	assert_int_equal(p.desc->abi_minor, 0);
	plugin_close(&p);
	put("abi2", "abi", 0755, "abi2");
	expect_refused("abi/abi2.so", "built for plugin ABI 2, this host speaks ABI 1: rebuild the plugin");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_symlink_into_world_writable_dir),
		cmocka_unit_test(test_every_directory_up_to_root),
		cmocka_unit_test(test_not_a_regular_file),
		cmocka_unit_test(test_each_plugin_is_itself),
		cmocka_unit_test(test_any_minor_of_our_major),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
