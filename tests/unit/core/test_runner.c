/*
 * test_runner.c - task threads: interval tasks never overlap, continuous
 * tasks idle as asked, failures back off without stopping the others,
 * required and optional tasks at start-up, and shutdown that interrupts a
 * long wait at once.
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

#include "core/config.h"
#include "core/daemon.h"
#include "observe/log.h"

#ifndef TESTPLUGIN_DIR
#error "TESTPLUGIN_DIR must be defined by the build"
#endif

static char root[64];
static char plugdir[128];

static int setup(void **state)
{
	char cmd[512];
	(void)state;
	snprintf(root, sizeof(root), "/tmp/tg-runner-XXXXXX");
	if (!mkdtemp(root))
		return -1;
	chmod(root, 0755);
	snprintf(plugdir, sizeof(plugdir), "%s/plugins", root);
	mkdir(plugdir, 0755);
	/* storage.path's directory: the daemon never creates it */
	snprintf(cmd, sizeof(cmd), "%s/db", root);
	mkdir(cmd, 0755);
	chmod(plugdir, 0755);
	snprintf(cmd, sizeof(cmd),
	         "install -m 0755 %s/testplugin_good.so %s/good.so && install -m 0755 %s/testplugin_initfails.so "
	         "%s/initfails.so",
	         TESTPLUGIN_DIR, plugdir, TESTPLUGIN_DIR, plugdir);
	log_setup(TG_LOG_WARN, NULL);
	return system(cmd) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	return system(cmd) == 0 ? 0 : -1;
}

/* Write a config whose tasks are given as libconfig text and load it. */
static int load(struct config *cf, const char *tasks, char **err)
{
	char path[256], text[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/test.cfg", root);
	snprintf(text, sizeof(text),
	         "keepa: { endpoint = \"http://127.0.0.1:9\"; };\n"
	         "storage: { path = \"%s/db/test.db\"; };\n"
	         "runtime_dir = \"%s/run\";\n"
	         "plugin_path = [\"%s\"];\n"
	         "tasks = ( %s );\n"
	         /* These are the in-process task threads: a worker would be
	          * this test binary re-executed (e2e-workers tests worker mode).
	          * Last, so the tasks keep their line numbers. */
	         "workers = false;\n",
	         root, root, plugdir, tasks);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return config_load(cf, path, err);
}

static const struct daemon_options opts = {.keepa_key = "test-key"};

static int64_t progress_of(struct tg_task *t)
{
	int64_t v;
	pthread_mutex_lock(&t->mu);
	v = t->progress_done;
	pthread_mutex_unlock(&t->mu);
	return v;
}

static enum task_state state_of(struct tg_task *t)
{
	enum task_state v;
	pthread_mutex_lock(&t->mu);
	v = t->state;
	pthread_mutex_unlock(&t->mu);
	return v;
}

/* Poll (bounded) until cond holds for task t; returns whether it did. */
#define WAIT_FOR(cond, max_ms)                                                                                 \
	({                                                                                                     \
		int64_t _end = tg_mono_ms() + (max_ms);                                                    \
		while (!(cond) && tg_mono_ms() < _end)                                                     \
			usleep(10000);                                                                         \
		(cond);                                                                                        \
	})

static void test_interval_no_overlap(void **state)
{
	struct config cf;
	struct daemon d;
	char *err = NULL;
	(void)state;

	/* Each run lasts 1.2 s, longer than the 1 s interval: the runs must
	 * follow one another, never overlap (the plugin fails a run that
	 * starts while another is in progress). */
	assert_int_equal(load(&cf,
	                      "{ name = \"slow\"; plugin = \"good\"; schedule = 1; "
	                      "settings = { run_ms = 1200; }; }",
	                      &err),
	                 0);
	assert_int_equal((daemon_init(&d), daemon_open(&d, &cf, &opts, &err)), 0);
	assert_int_equal(daemon_start(&d, &err), 0);
	assert_true(WAIT_FOR(progress_of(&d.tasks[0]) >= 3, 10000));
	pthread_mutex_lock(&d.tasks[0].mu);
	assert_int_equal(d.tasks[0].failures, 0); /* no "overlap" failure */
	pthread_mutex_unlock(&d.tasks[0].mu);
	daemon_close(&d);
	config_release(&cf);
}

static void test_continuous_idle(void **state)
{
	struct config cf;
	struct daemon d;
	char *err = NULL;
	(void)state;

	/* idle_s = 0: run again at once; idle_s = 3600: one run, then idle. */
	assert_int_equal(load(&cf,
	                      "{ name = \"busy\"; plugin = \"good\"; settings = { idle_s = 0; }; },"
	                      "{ name = \"lazy\"; plugin = \"good\"; settings = { idle_s = 3600; }; }",
	                      &err),
	                 0);
	assert_int_equal((daemon_init(&d), daemon_open(&d, &cf, &opts, &err)), 0);
	assert_int_equal(daemon_start(&d, &err), 0);
	assert_true(WAIT_FOR(progress_of(&d.tasks[0]) >= 20, 10000));
	assert_true(WAIT_FOR(state_of(&d.tasks[1]) == TASK_IDLE, 30000));
	assert_int_equal(progress_of(&d.tasks[1]), 1);
	pthread_mutex_lock(&d.tasks[1].mu);
	assert_true(d.tasks[1].state_until_ms > tg_wall_ms() + 3500 * 1000);
	pthread_mutex_unlock(&d.tasks[1].mu);
	daemon_close(&d);
	config_release(&cf);
}

/* ABI 1.2: a run that asks services->not_before_ms() delays the next one
 * past the schedule (interval) or past *idle_s (continuous); a smaller
 * value than the schedule changes nothing. */
static void test_not_before_delays_next_run(void **state)
{
	struct config cf;
	struct daemon d;
	char *err = NULL;
	(void)state;

	assert_int_equal(load(&cf,
	                      "{ name = \"later\"; plugin = \"good\"; schedule = 1; "
	                      "settings = { not_before_ms = 3600000; }; },"
	                      "{ name = \"idle\"; plugin = \"good\"; settings = { idle_s = 0; not_before_ms = 3600000; }; },"
	                      "{ name = \"sooner\"; plugin = \"good\"; schedule = 3600; "
	                      "settings = { not_before_ms = 0; }; },"
	                      "{ name = \"failing\"; plugin = \"good\"; schedule = 1; "
	                      "settings = { fail = true; not_before_ms = 3600000; }; }",
	                      &err),
	                 0);
	assert_int_equal((daemon_init(&d), daemon_open(&d, &cf, &opts, &err)), 0);
	assert_int_equal(daemon_start(&d, &err), 0);
	assert_true(WAIT_FOR(state_of(&d.tasks[0]) == TASK_SLEEPING, 30000));
	assert_true(WAIT_FOR(state_of(&d.tasks[1]) == TASK_IDLE, 30000));
	assert_true(WAIT_FOR(state_of(&d.tasks[2]) == TASK_SLEEPING, 30000));
	/* A failed run's request holds too: its back-off lasts the hour, not
	 * the first 5 s, so a useless retry cannot reset the failure streak. */
	assert_true(WAIT_FOR(state_of(&d.tasks[3]) == TASK_BACKOFF, 30000));
	for (int i = 0; i < 4; i++) {
		pthread_mutex_lock(&d.tasks[i].mu);
		/* An hour away, not the 1 s schedule nor idle_s 0; and the
		 * hourly one keeps its hour. */
		assert_true(d.tasks[i].state_until_ms > tg_wall_ms() + 3500 * 1000);
		pthread_mutex_unlock(&d.tasks[i].mu);
		assert_int_equal(progress_of(&d.tasks[i]), 1);
	}
	daemon_close(&d);
	config_release(&cf);
}

static void test_failure_backoff_isolated(void **state)
{
	struct config cf;
	struct daemon d;
	char *err = NULL;
	(void)state;

	assert_int_equal(load(&cf,
	                      "{ name = \"broken\"; plugin = \"good\"; settings = { fail = true; }; },"
	                      "{ name = \"fine\"; plugin = \"good\"; settings = { idle_s = 0; }; }",
	                      &err),
	                 0);
	assert_int_equal((daemon_init(&d), daemon_open(&d, &cf, &opts, &err)), 0);
	assert_int_equal(daemon_start(&d, &err), 0);
	assert_true(WAIT_FOR(state_of(&d.tasks[0]) == TASK_BACKOFF, 30000));
	pthread_mutex_lock(&d.tasks[0].mu);
	assert_string_equal(d.tasks[0].last_error, "the test asked this run to fail");
	assert_int_equal(d.tasks[0].failures, 1);
	/* Back-off starts at 5 s (with up to 25% jitter), not a hot loop. */
	assert_true(d.tasks[0].state_until_ms >= tg_wall_ms() + 3000);
	pthread_mutex_unlock(&d.tasks[0].mu);
	/* The other task is unaffected. */
	int64_t before = progress_of(&d.tasks[1]);
	assert_true(WAIT_FOR(progress_of(&d.tasks[1]) > before + 10, 30000));
	daemon_close(&d);
	config_release(&cf);
}

static void test_required_and_optional(void **state)
{
	struct config cf;
	struct daemon d;
	char *err = NULL;
	(void)state;

	/* An optional task whose plugin is not installed is skipped; the rest run. */
	assert_int_equal(load(&cf,
	                      "{ name = \"ghost\"; plugin = \"absent\"; required = false; },"
	                      "{ name = \"fine\"; plugin = \"good\"; required = true; }",
	                      &err),
	                 0);
	assert_int_equal((daemon_init(&d), daemon_open(&d, &cf, &opts, &err)), 0);
	assert_int_equal(d.tasks[0].state, TASK_SKIPPED);
	assert_non_null(strstr(d.tasks[0].last_error, "plugin \"absent\" not found"));
	assert_int_equal(daemon_start(&d, &err), 0);
	assert_true(WAIT_FOR(progress_of(&d.tasks[1]) >= 1, 30000));
	daemon_close(&d);
	config_release(&cf);

	/* An optional task whose init fails is no reason to skip it: its
	 * plugin is there and refuses its settings, a configuration error. */
	assert_int_equal(load(&cf,
	                      "{ name = \"moon\"; plugin = \"initfails\"; required = false; },"
	                      "{ name = \"fine\"; plugin = \"good\"; required = true; }",
	                      &err),
	                 0);
	assert_true((daemon_init(&d), daemon_open(&d, &cf, &opts, &err)) < 0);
	assert_non_null(strstr(err, "init failed: cannot reach the moon"));
	free(err);
	err = NULL;
	daemon_close(&d);
	config_release(&cf);

	/* A required one stops the start, with the plugin's own message. */
	assert_int_equal(load(&cf, "{ name = \"moon\"; plugin = \"initfails\"; required = true; }", &err), 0);
	assert_true((daemon_init(&d), daemon_open(&d, &cf, &opts, &err)) < 0);
	assert_non_null(err);
	assert_non_null(strstr(err, "task \"moon\""));
	assert_non_null(strstr(err, "init failed: cannot reach the moon"));
	assert_non_null(strstr(err, "test.cfg:5:"));
	free(err);
	err = NULL;
	daemon_close(&d);
	config_release(&cf);

	assert_int_equal(load(&cf, "{ name = \"ghost\"; plugin = \"absent\"; required = true; }", &err), 0);
	assert_true((daemon_init(&d), daemon_open(&d, &cf, &opts, &err)) < 0);
	assert_non_null(strstr(err, "plugin \"absent\" not found"));
	free(err);
	daemon_close(&d);
	config_release(&cf);
}

static void test_shutdown_interrupts_wait(void **state)
{
	struct config cf;
	struct daemon d;
	char *err = NULL;
	int64_t t0, took;
	(void)state;

	/* A run that sleeps (visibly) for a minute, and an interval task
	 * waiting an hour for its next run: both end at once on stop. */
	assert_int_equal(load(&cf,
	                      "{ name = \"sleeper\"; plugin = \"good\"; settings = { run_ms = 60000; }; },"
	                      "{ name = \"hourly\"; plugin = \"good\"; schedule = 3600; }",
	                      &err),
	                 0);
	assert_int_equal((daemon_init(&d), daemon_open(&d, &cf, &opts, &err)), 0);
	assert_int_equal(daemon_start(&d, &err), 0);
	assert_true(WAIT_FOR(state_of(&d.tasks[0]) == TASK_SLEEPING && state_of(&d.tasks[1]) == TASK_SLEEPING, 30000));
	t0 = tg_mono_ms();
	daemon_request_stop(&d);
	daemon_join(&d);
	took = tg_mono_ms() - t0;
	print_message("stop took %lld ms\n", (long long)took);
	/* A minute's sleep and an hour's wait ended: seconds, not a speed figure. */
	assert_true(took < 10000);
	assert_int_equal(d.tasks[0].state, TASK_STOPPED);
	assert_int_equal(d.tasks[1].state, TASK_STOPPED);
	daemon_close(&d);
	config_release(&cf);
}

static void test_lock_wait_visible_and_interruptible(void **state)
{
	struct config cf;
	struct daemon d;
	char *err = NULL;
	int64_t t0;
	(void)state;

	/* "holder" keeps the lock for 1.5 s each run; "waiter" waits for it,
	 * visibly, then runs; then holder takes it for a minute and the
	 * waiter's second wait must end at once on stop. */
	assert_int_equal(load(&cf,
	                      "{ name = \"holder\"; plugin = \"good\"; "
	                      "settings = { lock = \"shared\"; run_ms = 1500; idle_s = 0; }; },"
	                      "{ name = \"waiter\"; plugin = \"good\"; settings = { lock = \"shared\"; idle_s = 0; }; }",
	                      &err),
	                 0);
	assert_int_equal((daemon_init(&d), daemon_open(&d, &cf, &opts, &err)), 0);
	assert_int_equal(daemon_start(&d, &err), 0);
	assert_true(WAIT_FOR(state_of(&d.tasks[1]) == TASK_LOCK_WAIT, 30000));
	pthread_mutex_lock(&d.tasks[1].mu);
	assert_string_equal(d.tasks[1].waiting_lock, "shared");
	assert_int_equal(d.tasks[1].state_until_ms, -1);
	pthread_mutex_unlock(&d.tasks[1].mu);
	assert_true(WAIT_FOR(progress_of(&d.tasks[1]) >= 1, 10000)); /* got it in the end */
	assert_true(WAIT_FOR(state_of(&d.tasks[1]) == TASK_LOCK_WAIT, 10000));
	t0 = tg_mono_ms();
	daemon_request_stop(&d);
	daemon_join(&d);
	assert_true(tg_mono_ms() - t0 < 1000);
	daemon_close(&d);
	config_release(&cf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_interval_no_overlap),
		cmocka_unit_test(test_continuous_idle),
		cmocka_unit_test(test_not_before_delays_next_run),
		cmocka_unit_test(test_failure_backoff_isolated),
		cmocka_unit_test(test_required_and_optional),
		cmocka_unit_test(test_shutdown_interrupts_wait),
		cmocka_unit_test(test_lock_wait_visible_and_interruptible),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
