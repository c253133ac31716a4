/*
 * test_storage_reason.c - a storage failure's reason reaches the plugin's
 * errmsg through services->last_error() (ABI 1.1), and a plugin built for
 * 1.1 still runs on a 1.0 host, which has no such member (the ABI rule of
 * tollgate.h, the plugin's side).
 */
#include "plugin_test.h"

const struct tg_plugin *tollgate_plugin_v1(void);

static struct fake *world(void)
{
	struct fake *f = fake_new(tollgate_plugin_v1());

	fake_set_json(f, "query", QUERY_USED_BOOKS);
	fake_set_now(f, T0_S);
	fake_set_budget(f, 100);
	for (int i = 0; i < 10; i++)
		add_deal(f, i, T0_KM - i);
	return f;
}

static void test_reason_reaches_errmsg(void **st)
{
	struct fake *f = world();
	struct inst in = inst_start(f, tollgate_plugin_v1());
	char *err = NULL;

	(void)st;
	fake_storage_reason(f, "storage upsert: sqlite: database or disk is full (upserting a row)");
	fake_fail_upsert(f, 3);
	assert_int_equal(inst_run(&in, NULL, &err), TG_ESTORAGE);
	print_message("%s\n", err);
	assert_non_null(strstr(err, "storage: cannot write deal B000000002: storage upsert: sqlite: database or "
	                            "disk is full"));
	free(err);
	inst_stop(&in);
	fake_free(f);
}

static void test_older_host_without_last_error(void **st)
{
	struct fake *f = world();
	struct inst in;
	char *err = NULL;

	(void)st;
	fake_services_abi_1_0(f);
	in = inst_start(f, tollgate_plugin_v1()); /* 1.0 has all the plugin needs */
	fake_storage_reason(f, "never read");
	fake_fail_upsert(f, 3);
	assert_int_equal(inst_run(&in, NULL, &err), TG_ESTORAGE);
	print_message("%s\n", err);
	/* The code, and nothing read past the end of the 1.0 table. */
	assert_non_null(strstr(err, "storage: cannot write deal B000000002 (-11)"));
	assert_null(strstr(err, "never read"));
	free(err);
	/* Without the failure, the same plugin works on the old host. */
	assert_int_equal(inst_run(&in, NULL, NULL), TG_OK);
	inst_stop(&in);
	fake_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reason_reaches_errmsg),
		cmocka_unit_test(test_older_host_without_last_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
