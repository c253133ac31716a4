/*
 * test_status.c - the verdict rules of `tollgate status`, on a daemon built
 * by hand: "healthy" must be impossible without progress.
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
#include <unistd.h>

#include "core/config.h"
#include "core/daemon.h"
#include "observe/status.h"

static struct config cf;
static struct daemon d;
static char cfg_path[64];

/* Three tasks: a continuous one, an interval one (every 600 s, so its
 * stall window is 1800 s, longer than the 900 s default) and an optional one. */
static int setup(void **state)
{
	FILE *f;
	char *err = NULL;
	(void)state;

	snprintf(cfg_path, sizeof(cfg_path), "/tmp/tg-status-XXXXXX");
	int fd = mkstemp(cfg_path);
	if (fd < 0)
		return -1;
	f = fdopen(fd, "w");
	fputs("plugin_path = [\"/p\"];\n"
	      "tasks = ( { name = \"walker\"; plugin = \"x\"; required = true; },\n"
	      "          { name = \"minutely\"; plugin = \"x\"; required = true; schedule = 600; },\n"
	      "          { name = \"extra\"; plugin = \"x\"; required = false; } );\n",
	      f);
	fclose(f);
	if (config_load(&cf, cfg_path, &err) != 0)
		return -1;
	memset(&d, 0, sizeof(d));
	d.config = &cf;
	d.ntasks = cf.ntasks;
	d.tasks = calloc((size_t)d.ntasks, sizeof(*d.tasks));
	for (int i = 0; i < d.ntasks; i++) {
		d.tasks[i].daemon = &d;
		d.tasks[i].cfg = &cf.tasks[i];
		pthread_mutex_init(&d.tasks[i].mu, NULL);
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (int i = 0; i < d.ntasks; i++)
		pthread_mutex_destroy(&d.tasks[i].mu);
	free(d.tasks);
	config_release(&cf);
	unlink(cfg_path);
	return 0;
}

/* Every task healthy: running with recent progress. */
static void reset(int64_t now)
{
	d.started_ms = now - 4 * 3600 * 1000;
	for (int i = 0; i < d.ntasks; i++) {
		struct tg_task *t = &d.tasks[i];
		t->state = TASK_RUNNING;
		t->last_progress_ms = now - 5000;
		t->last_success_ms = now - 5000;
		t->consecutive_failures = 0;
		t->last_error[0] = '\0';
		t->last_run_start_ms = 0;
		t->last_run_end_ms = 0;
		t->state_until_ms = 0;
	}
}

static const char *verdict_of(cJSON *snap, const char *task)
{
	const cJSON *t;
	cJSON_ArrayForEach(t, cJSON_GetObjectItem(snap, "tasks"))
		if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(t, "name")), task) == 0)
			return cJSON_GetStringValue(cJSON_GetObjectItem(t, "verdict"));
	return "?";
}

static const char *reason_of(cJSON *snap, const char *task)
{
	const cJSON *t;
	cJSON_ArrayForEach(t, cJSON_GetObjectItem(snap, "tasks"))
		if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(t, "name")), task) == 0)
			return cJSON_GetStringValue(cJSON_GetObjectItem(t, "reason"));
	return "?";
}

static int exit_status(cJSON *snap)
{
	return cJSON_GetObjectItem(snap, "exit_status")->valueint;
}

static void test_healthy(void **state)
{
	cJSON *s;
	(void)state;

	reset(tg_wall_ms());
	s = status_snapshot(&d);
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(s, "verdict")), "ok");
	assert_int_equal(exit_status(s), 0);
	assert_int_equal(status_stall_after_ms(&d, 0), 900 * 1000);
	assert_int_equal(status_stall_after_ms(&d, 1), 1800 * 1000);
	cJSON_Delete(s);
}

static void test_no_progress_is_stalled(void **state)
{
	int64_t now = tg_wall_ms();
	cJSON *s;
	(void)state;

	/* Running, but nothing moved for 16 minutes: critical, whatever the
	 * thread's state says. */
	reset(now);
	d.tasks[0].last_progress_ms = now - 16 * 60 * 1000;
	s = status_snapshot(&d);
	assert_string_equal(verdict_of(s, "walker"), "critical");
	assert_non_null(strstr(reason_of(s, "walker"), "stalled: no progress for 960 s while running (allowed 900 s)"));
	assert_int_equal(exit_status(s), 2);
	cJSON_Delete(s);

	/* Never any progress since a start 4 hours ago: stalled too. */
	reset(now);
	d.tasks[0].last_progress_ms = 0;
	s = status_snapshot(&d);
	assert_string_equal(verdict_of(s, "walker"), "critical");
	cJSON_Delete(s);

	/* An interval task sleeping between successful runs is fine even when
	 * its last progress is older than the default window... */
	reset(now);
	d.tasks[1].state = TASK_SLEEPING;
	d.tasks[1].state_until_ms = now + 9 * 60 * 1000;
	d.tasks[1].last_progress_ms = now - 40 * 60 * 1000;
	d.tasks[1].last_success_ms = now - 60 * 1000;
	s = status_snapshot(&d);
	assert_string_equal(verdict_of(s, "minutely"), "ok");
	cJSON_Delete(s);
	/* ...but not once its next run is overdue by more than its window. */
	d.tasks[1].state_until_ms = now - 31 * 60 * 1000;
	d.tasks[1].last_run_end_ms = now - 41 * 60 * 1000;
	s = status_snapshot(&d);
	assert_string_equal(verdict_of(s, "minutely"), "critical");
	assert_non_null(strstr(reason_of(s, "minutely"), "stalled: sleeping since 2460 s, but its next run was due"));
	cJSON_Delete(s);
}

/* Idle by design is ok: the shipped backfiller walks, then idles for
 * rewalk_after_s (6 h). It used to be "stalled" for 5 h 45 min of every
 * cycle. */
static void test_idle_by_design_is_ok(void **state)
{
	int64_t now = tg_wall_ms();
	cJSON *s;
	(void)state;

	reset(now);
	d.tasks[0].state = TASK_IDLE;
	d.tasks[0].last_progress_ms = now - (5 * 3600 + 45 * 60) * 1000LL;
	d.tasks[0].last_run_start_ms = now - 6 * 3600 * 1000LL;
	d.tasks[0].last_run_end_ms = d.tasks[0].last_progress_ms;
	d.tasks[0].state_until_ms = now + 15 * 60 * 1000;
	s = status_snapshot(&d);
	assert_string_equal(verdict_of(s, "walker"), "ok");
	assert_int_equal(exit_status(s), 0);
	cJSON_Delete(s);

	/* Idle forever (its work is complete) is ok too. */
	d.tasks[0].state_until_ms = -1;
	s = status_snapshot(&d);
	assert_string_equal(verdict_of(s, "walker"), "ok");
	cJSON_Delete(s);

	/* Woken for the next walk a minute ago: the 6 h idle does not count. */
	d.tasks[0].state = TASK_RUNNING;
	d.tasks[0].last_run_start_ms = now - 60 * 1000;
	s = status_snapshot(&d);
	assert_string_equal(verdict_of(s, "walker"), "ok");
	cJSON_Delete(s);

	/* But a walk that has run for 16 min without progress is stalled. */
	d.tasks[0].last_run_start_ms = now - 16 * 60 * 1000;
	s = status_snapshot(&d);
	assert_string_equal(verdict_of(s, "walker"), "critical");
	assert_non_null(strstr(reason_of(s, "walker"), "no progress for 960 s while running"));
	cJSON_Delete(s);

	/* Waiting for a lock that long, too, and the reason names the lock. */
	d.tasks[0].state = TASK_LOCK_WAIT;
	snprintf(d.tasks[0].waiting_lock, sizeof(d.tasks[0].waiting_lock), "deals-writer");
	s = status_snapshot(&d);
	assert_string_equal(verdict_of(s, "walker"), "critical");
	assert_non_null(strstr(reason_of(s, "walker"), "waiting for lock \"deals-writer\""));
	cJSON_Delete(s);
}

static void test_failures_and_skips(void **state)
{
	int64_t now = tg_wall_ms();
	cJSON *s;
	(void)state;

	reset(now);
	d.tasks[0].state = TASK_BACKOFF;
	d.tasks[0].consecutive_failures = 1;
	snprintf(d.tasks[0].last_error, sizeof(d.tasks[0].last_error), "HTTP 402: payment required");
	s = status_snapshot(&d);
	assert_string_equal(verdict_of(s, "walker"), "warning");
	assert_non_null(strstr(reason_of(s, "walker"), "HTTP 402: payment required"));
	assert_int_equal(exit_status(s), 1);
	cJSON_Delete(s);
	d.tasks[0].consecutive_failures = 3;
	s = status_snapshot(&d);
	assert_string_equal(verdict_of(s, "walker"), "critical");
	cJSON_Delete(s);
	/* And while it tries again (running, recent progress): still critical. */
	d.tasks[0].state = TASK_RUNNING;
	s = status_snapshot(&d);
	assert_string_equal(verdict_of(s, "walker"), "critical");
	cJSON_Delete(s);

	/* A skipped optional task is a warning; done is ok. */
	reset(now);
	d.tasks[2].state = TASK_SKIPPED;
	snprintf(d.tasks[2].last_error, sizeof(d.tasks[2].last_error), "plugin \"x\" not found");
	d.tasks[0].state = TASK_DONE;
	d.tasks[0].last_progress_ms = now - 24 * 3600 * 1000;
	s = status_snapshot(&d);
	assert_string_equal(verdict_of(s, "extra"), "warning");
	assert_string_equal(verdict_of(s, "walker"), "ok");
	assert_int_equal(exit_status(s), 1);
	cJSON_Delete(s);
}

static void test_prometheus_follows(void **state)
{
	int64_t now = tg_wall_ms();
	cJSON *s;
	char *text;
	(void)state;

	reset(now);
	d.tasks[0].last_progress_ms = now - 3600 * 1000;
	s = status_snapshot(&d);
	text = status_prometheus(s);
	assert_non_null(strstr(text, "# TYPE tollgate_verdict gauge\ntollgate_verdict 2\n"));
	assert_non_null(strstr(text, "tollgate_task_verdict{task=\"walker\"} 2\n"));
	assert_non_null(strstr(text, "tollgate_task_verdict{task=\"minutely\"} 0\n"));
	assert_non_null(strstr(text, "tollgate_task_state{task=\"walker\",state=\"running\"} 1\n"));
	free(text);
	cJSON_Delete(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_healthy),
		cmocka_unit_test(test_no_progress_is_stalled),
		cmocka_unit_test(test_idle_by_design_is_ok),
		cmocka_unit_test(test_failures_and_skips),
		cmocka_unit_test(test_prometheus_follows),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
