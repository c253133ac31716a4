/*
 * test_errmsg.c - the one message setter: it replaces (and frees) what was
 * there, tolerates a NULL errmsg, and puts context in front.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "util/errmsg.h"

static void test_set_replaces(void **state)
{
	char *err = NULL;
	(void)state;

	assert_int_equal(errmsg_set(&err, TG_EIO, "attempt %d failed", 1), TG_EIO);
	assert_string_equal(err, "attempt 1 failed");
	/* A retry loop sets one per attempt: the last one stays, the earlier
	 * ones are freed (the leak check of the sanitizer build sees it). */
	for (int i = 2; i <= 5; i++)
		errmsg_set(&err, TG_EIO, "attempt %d failed", i);
	assert_string_equal(err, "attempt 5 failed");
	/* The old message may be an argument of the new one. */
	errmsg_set(&err, TG_EIO, "gave up: %s", err);
	assert_string_equal(err, "gave up: attempt 5 failed");
	free(err);
	assert_int_equal(errmsg_set(NULL, TG_EINVAL, "nobody listens"), TG_EINVAL);
}

static void test_prefix(void **state)
{
	char *err = NULL;
	(void)state;

	errmsg_prefix(&err, "storage %s: ", "commit");
	assert_string_equal(err, "storage commit: ");
	free(err);
	err = NULL;
	errmsg_set(&err, TG_ESTORAGE, "database is locked");
	errmsg_prefix(&err, "storage %s: ", "commit");
	assert_string_equal(err, "storage commit: database is locked");
	free(err);
	errmsg_prefix(NULL, "ignored");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_set_replaces),
		cmocka_unit_test(test_prefix),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
