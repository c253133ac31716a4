/*
 * test_reload_plan.c - a reload's plan: tasks sorted by name into unchanged,
 * changed, removed and added; every differing global named.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/reload_plan.h"

static const char *globals_a =
	"keepa: { endpoint = \"http://127.0.0.1:8080\"; };\n"
	"storage: { backend = \"sqlite\"; path = \"/tmp/x.db\"; };\n"
	"plugin_path = [\"/usr/lib/tollgate/plugins\"];\n";
static const char *globals_b =
	"keepa: { endpoint = \"http://127.0.0.1:9090\"; };\n"
	"storage: { backend = \"sqlite\"; path = \"/tmp/x.db\"; };\n"
	"plugin_path = [\"/usr/lib/tollgate/plugins\"];\n"
	"log: { level = \"debug\"; };\n";

/* Load globals + tasks from a scratch file. */
static void load(struct config *cf, const char *globals, const char *tasks)
{
	char path[] = "/tmp/test_reload_plan_XXXXXX";
	char *err = NULL;
	int fd = mkstemp(path);
	FILE *f;

	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fprintf(f, "%stasks = (\n%s\n);\n", globals, tasks);
	assert_int_equal(fclose(f), 0);
	if (config_load(cf, path, &err) != 0)
		fail_msg("config_load: %s", err);
	unlink(path);
}

static bool has(const int *v, int n, int x)
{
	for (int i = 0; i < n; i++)
		if (v[i] == x)
			return true;
	return false;
}

static void test_tasks_sorted_by_name(void **state)
{
	struct config old, new;
	struct reload_plan plan;
	char *err = NULL;
	(void)state;

	load(&old, globals_a,
	     "{ name = \"a\"; plugin = \"writer\"; settings = { rows = 5; }; },\n"
	     "{ name = \"b\"; plugin = \"writer\"; },\n"
	     "{ name = \"c\"; plugin = \"writer\"; settings = { rows = 5; }; },\n"
	     "{ name = \"w\"; plugin = \"writer\"; weight = 1; },\n"
	     "{ name = \"p\"; plugin = \"writer\"; }");
	/* a: same but declared elsewhere (a later line); b removed; c's
	 * setting's type changed (5 -> 5.0); w re-weighted; p's plugin
	 * changed; d added. */
	load(&new, globals_a,
	     "{ name = \"d\"; plugin = \"writer\"; },\n"
	     "{ name = \"c\"; plugin = \"writer\"; settings = { rows = 5.0; }; },\n"
	     "{ name = \"w\"; plugin = \"writer\"; weight = 2; },\n"
	     "{ name = \"p\"; plugin = \"janitor\"; },\n"
	     "\n"
	     "{ name = \"a\"; plugin = \"writer\"; settings = { rows = 5; }; }");
	assert_int_equal(reload_plan_make(&plan, &old, &new, &err), 0);

	assert_int_equal(plan.nunchanged, 1);
	assert_int_equal(plan.unchanged[0], 0); /* a */
	assert_int_equal(plan.nremoved, 1);
	assert_int_equal(plan.removed[0], 1); /* b */
	assert_int_equal(plan.nadded, 1);
	assert_int_equal(plan.added[0], 0); /* d, in the new config */
	assert_int_equal(plan.nchanged, 3);
	assert_true(has(plan.changed, plan.nchanged, 2)); /* c */
	assert_true(has(plan.changed, plan.nchanged, 3)); /* w */
	assert_true(has(plan.changed, plan.nchanged, 4)); /* p */
	for (int k = 0; k < plan.nchanged; k++)
		assert_string_equal(old.tasks[plan.changed[k]].name, new.tasks[plan.changed_new[k]].name);
	assert_int_equal(plan.nglobals, 0);

	reload_plan_release(&plan);
	config_release(&old);
	config_release(&new);
}

static void test_task_fields_each_count(void **state)
{
	struct config old, new;
	(void)state;

	load(&old, globals_a,
	     "{ name = \"t\"; plugin = \"writer\"; }, { name = \"u\"; plugin = \"writer\"; }");
	load(&new, globals_a,
	     "{ name = \"t\"; plugin = \"writer\"; required = true; },"
	     "{ name = \"u\"; plugin = \"writer\"; schedule = 60; }");
	assert_true(reload_task_same(&old.tasks[0], &old.tasks[0]));
	assert_false(reload_task_same(&old.tasks[0], &new.tasks[0]));
	assert_false(reload_task_same(&old.tasks[1], &new.tasks[1]));
	/* Settings against none. */
	config_release(&new);
	load(&new, globals_a, "{ name = \"t\"; plugin = \"writer\"; settings = { rows = 1; }; }");
	assert_false(reload_task_same(&old.tasks[0], &new.tasks[0]));
	config_release(&old);
	config_release(&new);
}

static void test_globals_named(void **state)
{
	struct config old, new;
	struct reload_plan plan;
	char *err = NULL;
	(void)state;

	load(&old, globals_a, "{ name = \"t\"; plugin = \"writer\"; }");
	load(&new, globals_b, "{ name = \"t\"; plugin = \"writer\"; }");
	assert_int_equal(reload_plan_make(&plan, &old, &new, &err), 0);
	assert_int_equal(plan.nunchanged, 1);
	assert_int_equal(plan.nglobals, 2);
	assert_string_equal(plan.globals[0], "keepa.endpoint");
	assert_string_equal(plan.globals[1], "log.level");
	reload_plan_release(&plan);
	config_release(&old);
	config_release(&new);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tasks_sorted_by_name),
		cmocka_unit_test(test_task_fields_each_count),
		cmocka_unit_test(test_globals_named),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
