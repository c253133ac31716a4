/*
 * test_status_reasons.c - the snapshot's summary reason holds every task's
 * reason, however many tasks and however long their names (#13 item 1: it
 * was a strcat into a 2048-byte stack array that left the name out of its
 * length check).
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

#define NTASKS 12

/* A config of NTASKS tasks whose names are name_len characters long. */
static int load_config(struct config *cf, size_t name_len, char *path, size_t path_len, char **err)
{
	FILE *f;
	int fd;

	snprintf(path, path_len, "/tmp/tg-reasons-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs("plugin_path = [\"/p\"];\ntasks = (\n", f);
	for (int i = 0; i < NTASKS; i++) {
		fprintf(f, "%s{ name = \"t%02d", i ? ", " : "", i);
		for (size_t k = 3; k < name_len; k++)
			fputc('x', f);
		fputs("\"; plugin = \"x\"; }\n", f);
	}
	fputs(");\n", f);
	fclose(f);
	return config_load(cf, path, err);
}

static void test_every_reason_is_kept(void **state)
{
	struct config cf;
	struct daemon d;
	char path[64], *err = NULL;
	int64_t now = tg_wall_ms();
	cJSON *snap;
	const char *all;
	(void)state;

	assert_int_equal(load_config(&cf, CONFIG_TASK_NAME_MAX, path, sizeof(path), &err), 0);
	memset(&d, 0, sizeof(d));
	d.config = &cf;
	d.ntasks = cf.ntasks;
	d.started_ms = now - 3600 * 1000;
	d.tasks = calloc((size_t)d.ntasks, sizeof(*d.tasks));
	for (int i = 0; i < d.ntasks; i++) {
		struct tg_task *t = &d.tasks[i];
		t->daemon = &d;
		t->cfg = &cf.tasks[i];
		pthread_mutex_init(&t->mu, NULL);
		t->state = TASK_BACKOFF;
		t->last_progress_ms = now;
		t->consecutive_failures = 1;
		/* As long as a last_error can be, so each reason is as long as
		 * the verdict allows. */
		memset(t->last_error, 'e', sizeof(t->last_error) - 1);
		t->last_error[sizeof(t->last_error) - 1] = '\0';
	}
	snap = status_snapshot(&d);
	assert_non_null(snap);
	all = status_str(snap, "reason");
	/* 12 long reasons are far more than the old 2048 bytes: each one is
	 * there, whole, in order. */
	for (int i = 0; i < d.ntasks; i++) {
		char want[CONFIG_TASK_NAME_MAX + 64];
		snprintf(want, sizeof(want), "%s: 1 failed run(s) in a row: eeee", cf.tasks[i].name);
		if (!strstr(all, want))
			fail_msg("task %d's reason is missing from the summary (%zu bytes)", i, strlen(all));
	}
	print_message("summary: %zu bytes for %d tasks\n", strlen(all), d.ntasks);
	assert_true(strlen(all) > 2048);
	cJSON_Delete(snap);
	for (int i = 0; i < d.ntasks; i++)
		pthread_mutex_destroy(&d.tasks[i].mu);
	free(d.tasks);
	config_release(&cf);
	unlink(path);
}

/* Names past the bound are refused where they are written. */
static void test_long_name_is_refused(void **state)
{
	struct config cf;
	char path[64], *err = NULL;
	(void)state;

	assert_int_equal(load_config(&cf, CONFIG_TASK_NAME_MAX + 1, path, sizeof(path), &err), TG_EINVAL);
	assert_non_null(err);
	print_message("%s\n", err);
	assert_non_null(strstr(err, ":3: task name \"t00xxxxxxxxxxxxxxxxx...\" is 65 characters long; at most 64"));
	free(err);
	config_release(&cf);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_reason_is_kept),
		cmocka_unit_test(test_long_name_is_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
