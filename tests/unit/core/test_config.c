/*
 * test_config.c - configuration: a good file, and broken ones that must each
 * fail with the right file:line and a message that says what is wrong.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "core/config.h"
#include "core/settings.h"

#ifndef CONFIGS_DIR
#error "CONFIGS_DIR must be defined by the build"
#endif

static void test_good_config(void **state)
{
	struct config cf;
	char *err = NULL;
	(void)state;

	assert_int_equal(config_load(&cf, CONFIGS_DIR "/good.cfg", &err), 0);
	assert_null(err);
	assert_string_equal(cf.keepa_endpoint, "http://127.0.0.1:8080");
	assert_string_equal(cf.keepa_key_file, "/etc/tollgate/keepa.key");
	assert_int_equal(cf.keepa_domain, 1);
	assert_string_equal(cf.tokens_policy, "deficit");
	assert_true(cf.tokens_reserve == 10);
	assert_true(cf.tokens_deepest_deficit == 150);
	assert_true(cf.tokens_latency_target_s == 300.5);
	assert_string_equal(cf.storage_path, "/tmp/x.db");
	assert_int_equal(cf.storage_sqlite_cache_mb, 16);
	assert_string_equal(cf.runtime_dir, "/tmp/tg-run");
	assert_int_equal(cf.nplugin_path, 2);
	assert_string_equal(cf.plugin_path[1], "/usr/local/lib/tollgate/plugins");
	assert_int_equal(cf.log_level, TG_LOG_DEBUG);
	assert_int_equal(cf.ntasks, 2);
	assert_string_equal(cf.tasks[0].name, "backfiller");
	assert_true(cf.tasks[0].required);
	assert_int_equal(cf.tasks[0].interval_s, 0);
	assert_non_null(cf.tasks[0].settings);
	assert_false(cf.tasks[1].required);
	assert_true(cf.tasks[1].weight == 3.5);
	assert_int_equal(cf.tasks[1].interval_s, 60);
	assert_null(cf.tasks[1].settings);
	assert_int_equal(cf.tasks[1].line, 16);
	config_release(&cf);
}

struct broken {
	const char *file;
	int line;           /* expected line, -1: do not check */
	const char *needle; /* expected in the message */
};

static const struct broken broken_files[] = {
	{"bad_syntax.cfg", -1, "syntax error"},
	{"unknown_root.cfg", 2, "unknown key 'bogus'"},
	{"unknown_keepa.cfg", 2, "unknown key 'keepa.secret'"},
	{"domain_string.cfg", 2, "'keepa.domain' must be an integer, not a string"},
	{"domain_range.cfg", 2, "'keepa.domain' = 99 is out of range"},
	{"policy_bad.cfg", 2, "must be \"reserve\" or \"deficit\", not \"greedy\""},
	{"reserve_negative.cfg", 2, "'tokens.reserve' = -5 is out of range"},
	{"backend_pg.cfg", 2, "\"postgres\" is not supported"},
	{"plugin_path_string.cfg", 1, "'plugin_path' must be a list of directories"},
	{"plugin_path_relative.cfg", 1, "must be an absolute path"},
	{"no_plugin_path.cfg", -1, "'plugin_path' is not set"},
	{"log_level_bad.cfg", 2, "'log.level' must be"},
	{"task_no_plugin.cfg", 2, "missing key 'plugin'"},
	{"task_dup_name.cfg", 3, "task name \"a\" is already used at"},
	{"task_bad_schedule.cfg", 2, "'schedule' must be \"continuous\" or an interval in seconds"},
	{"task_weight_zero.cfg", 2, "'tasks[0].weight' = 0 is out of range"},
	{"task_unknown_key.cfg", 2, "unknown key 'tasks[0].priority'"},
	{"task_required_int.cfg", 2, "'tasks[0].required' must be a boolean"},
	{"tasks_not_list.cfg", 2, "'tasks' must be a list of task groups"},
	{"task_bad_name.cfg", 2, "task name \"Bad Name\" must be"},
	{"endpoint_ftp.cfg", 2, "must start with https://"},
	{"metrics_listen_host.cfg", 2, "'metrics.listen' = \"localhost:9464\" must be [IPv4]:port"},
	{"status_socket_long.cfg", 2, "'status.socket' is 126 characters; a UNIX socket path has at most 107"},
	{"sqlite_cache_zero.cfg", 3, "'storage.sqlite_cache_mb' = 0 is out of range [1, 4096]"},
	{"sqlite_cache_string.cfg", 2, "'storage.sqlite_cache_mb' must be an integer, not a string"},
	{"does_not_exist.cfg", 0, "cannot read"},
};

static void test_broken_configs(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(broken_files) / sizeof(broken_files[0]); i++) {
		const struct broken *b = &broken_files[i];
		struct config cf;
		char path[512], prefix[600];
		char *err = NULL;

		snprintf(path, sizeof(path), "%s/%s", CONFIGS_DIR, b->file);
		print_message("%s\n", b->file);
		assert_int_equal(config_load(&cf, path, &err), TG_EINVAL);
		assert_non_null(err);
		print_message("  -> %s\n", err);
		if (b->line >= 0) {
			snprintf(prefix, sizeof(prefix), "%s:%d: ", path, b->line);
			assert_memory_equal(err, prefix, strlen(prefix));
		} else {
			snprintf(prefix, sizeof(prefix), "%s:", path);
			assert_memory_equal(err, prefix, strlen(prefix));
		}
		if (!strstr(err, b->needle))
			fail_msg("message \"%s\" lacks \"%s\"", err, b->needle);
		free(err);
		config_release(&cf);
	}
}

static char tmpdir[64];

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_dropins(void **state)
{
	char main_cfg[128], dropdir[128], path[512];
	struct config cf;
	char *err = NULL;
	(void)state;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/tg-config-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	snprintf(dropdir, sizeof(dropdir), "%s/conf.d", tmpdir);
	assert_int_equal(mkdir(dropdir, 0755), 0);
	snprintf(main_cfg, sizeof(main_cfg), "%s/main.cfg", tmpdir);
	snprintf(path, sizeof(path), "plugin_path = [\"/p\"];\ninclude_dir = \"%s\";\n"
	                             "tasks = ( { name = \"a\"; plugin = \"x\"; } );\n",
	         dropdir);
	write_file(main_cfg, path);
	snprintf(path, sizeof(path), "%s/20-b.cfg", dropdir);
	write_file(path, "tasks = ( { name = \"c\"; plugin = \"z\"; } );\n");
	snprintf(path, sizeof(path), "%s/10-a.cfg", dropdir);
	write_file(path, "tasks = ( { name = \"b\"; plugin = \"y\"; schedule = 30; } );\n");
	snprintf(path, sizeof(path), "%s/README", dropdir);
	write_file(path, "not a config: ignored because it does not end in .cfg\n");

	assert_int_equal(config_load(&cf, main_cfg, &err), 0);
	assert_int_equal(cf.ntasks, 3);
	assert_int_equal(cf.storage_sqlite_cache_mb, 2); /* no storage group: the default */
	assert_string_equal(cf.tasks[1].name, "b"); /* drop-ins in name order */
	assert_int_equal(cf.tasks[1].interval_s, 30);
	assert_string_equal(cf.tasks[2].name, "c");
	assert_non_null(strstr(cf.tasks[2].file, "20-b.cfg"));
	config_release(&cf);

	/* A drop-in may only add tasks; its errors name the drop-in file. */
	snprintf(path, sizeof(path), "%s/30-bad.cfg", dropdir);
	write_file(path, "\nruntime_dir = \"/x\";\n");
	assert_int_equal(config_load(&cf, main_cfg, &err), TG_EINVAL);
	assert_non_null(strstr(err, "30-bad.cfg:2: unknown key 'runtime_dir'"));
	free(err);
	config_release(&cf);
	unlink(path);

	/* A task name used in the main file and a drop-in is refused. */
	snprintf(path, sizeof(path), "%s/40-dup.cfg", dropdir);
	write_file(path, "tasks = ( { name = \"a\"; plugin = \"q\"; } );\n");
	err = NULL;
	assert_int_equal(config_load(&cf, main_cfg, &err), TG_EINVAL);
	assert_non_null(strstr(err, "40-dup.cfg:1: task name \"a\" is already used at"));
	free(err);
	config_release(&cf);
	unlink(path);
	snprintf(path, sizeof(path), "rm -rf %s", tmpdir);
	assert_int_equal(system(path), 0);
}

static const struct tg_setting declared[] = {
	{"rewalk_after_s", TG_SETTING_INT, "3600", "idle time after a walk"},
	{"fee_pct", TG_SETTING_REAL, "15.0", "referral fee"},
	{"history", TG_SETTING_BOOL, "true", "fetch csv"},
	{"label", TG_SETTING_STRING, "deals", "a label"},
	{"query", TG_SETTING_GROUP, NULL, "the deal query"},
	{"asins", TG_SETTING_LIST, "[\"B000\"]", "watched ASINs"},
	{"no_default", TG_SETTING_INT, NULL, "required"},
};

static const struct tg_plugin fake_plugin = {
	.abi_major = 1, .name = "fake", .settings = declared, .nsettings = sizeof(declared) / sizeof(declared[0]),
};

static void test_task_settings(void **state)
{
	struct config cf;
	char *err = NULL;
	int64_t i = 0;
	double r = 0;
	bool b = false;
	const char *s = NULL;
	cJSON *j = NULL;
	(void)state;

	assert_int_equal(config_load(&cf, CONFIGS_DIR "/good.cfg", &err), 0);
	/* backfiller's settings: query (group) and rewalk_after_s (int). */
	assert_int_equal(config_validate_task_settings(&cf.tasks[0], declared, 7, &err), 0);
	config_setting_t *g = cf.tasks[0].settings;
	assert_int_equal(settings_int(&fake_plugin, g, "rewalk_after_s", &i), 0);
	assert_int_equal(i, 3600);
	assert_int_equal(settings_real(&fake_plugin, g, "fee_pct", &r), 0); /* default */
	assert_true(r == 15.0);
	assert_int_equal(settings_bool(&fake_plugin, g, "history", &b), 0);
	assert_true(b);
	assert_int_equal(settings_string(&fake_plugin, g, "label", &s), 0);
	assert_string_equal(s, "deals");
	assert_int_equal(settings_json(&fake_plugin, g, "query", &j), 0);
	/* numbers stay numbers */
	assert_true(cJSON_IsNumber(cJSON_GetObjectItem(j, "domainId")));
	assert_true(cJSON_IsArray(cJSON_GetObjectItem(j, "priceTypes")));
	assert_int_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "priceTypes"), 0)->valueint, 2);
	cJSON_Delete(j);
	assert_int_equal(settings_json(&fake_plugin, g, "asins", &j), 0);
	assert_string_equal(cJSON_GetArrayItem(j, 0)->valuestring, "B000");
	cJSON_Delete(j);
	assert_int_equal(settings_int(&fake_plugin, g, "no_default", &i), TG_ENOTFOUND);
	assert_int_equal(settings_int(&fake_plugin, g, "undeclared", &i), TG_EINVAL);
	assert_int_equal(settings_string(&fake_plugin, g, "rewalk_after_s", &s), TG_ETYPE);

	/* The upserter task has no settings group: every default applies. */
	assert_int_equal(config_validate_task_settings(&cf.tasks[1], declared, 7, &err), 0);
	assert_int_equal(settings_int(&fake_plugin, NULL, "rewalk_after_s", &i), 0);
	assert_int_equal(i, 3600);

	/* Undeclared settings and wrong types are file:line errors. */
	assert_int_equal(config_validate_task_settings(&cf.tasks[0], declared + 1, 6, &err), TG_EINVAL);
	assert_non_null(strstr(err, "good.cfg:15: task \"backfiller\": plugin \"backfiller\" has no setting "
	                            "'rewalk_after_s'"));
	free(err);
	err = NULL;
	struct tg_setting wrong[] = {{"query", TG_SETTING_STRING, NULL, ""}, {"rewalk_after_s", TG_SETTING_INT, NULL, ""}};
	assert_int_equal(config_validate_task_settings(&cf.tasks[0], wrong, 2, &err), TG_EINVAL);
	assert_non_null(strstr(err, "setting 'query' must be a string, not a group"));
	free(err);
	config_release(&cf);
}

/* One parser for metrics.listen serves the config check and the server. */
static void test_parse_listen(void **state)
{
	struct sockaddr_in sa;
	char text[INET_ADDRSTRLEN];
	(void)state;

	assert_int_equal(config_parse_listen("9464", &sa), 0); /* loopback by default */
	assert_string_equal(inet_ntop(AF_INET, &sa.sin_addr, text, sizeof(text)), "127.0.0.1");
	assert_int_equal(ntohs(sa.sin_port), 9464);
	assert_int_equal(config_parse_listen(":9465", &sa), 0);
	assert_string_equal(inet_ntop(AF_INET, &sa.sin_addr, text, sizeof(text)), "127.0.0.1");
	assert_int_equal(config_parse_listen("0.0.0.0:1", &sa), 0);
	assert_string_equal(inet_ntop(AF_INET, &sa.sin_addr, text, sizeof(text)), "0.0.0.0");
	assert_int_equal(ntohs(sa.sin_port), 1);
	assert_int_equal(config_parse_listen("localhost:9464", &sa), TG_EINVAL);
	assert_int_equal(config_parse_listen("1.2.3.4:0", &sa), TG_EINVAL);
	assert_int_equal(config_parse_listen("1.2.3.4:70000", &sa), TG_EINVAL);
	assert_int_equal(config_parse_listen("1.2.3.4:80x", &sa), TG_EINVAL);
	assert_int_equal(config_parse_listen("", &sa), TG_EINVAL);
	assert_int_equal(config_parse_listen(":", &sa), TG_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_config),
		cmocka_unit_test(test_broken_configs),
		cmocka_unit_test(test_dropins),
		cmocka_unit_test(test_task_settings),
		cmocka_unit_test(test_parse_listen),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
