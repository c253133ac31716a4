/*
 * test_storage_gate.c - storage errors through the real services table and
 * a real SQLite database that another connection keeps locked:
 *  - SQLite's reason reaches the log and services->last_error() (#13 item 2:
 *    the message was read before the call filled it, and leaked);
 *  - a task whose storage writes fail makes no Keepa call until a write
 *    works again, and shows it: state, status and log (#13 item 10).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/daemon.h"
#include "core/services.h"
#include "core/storage_gate.h"
#include "observe/log.h"
#include "observe/status.h"
#include "storage/storage.h"

static char dir[64], db_path[128], log_path[128], cfg_path[128];
static struct config cf;
static struct daemon d;
static struct tg_task task;
static struct storage *st;
static FILE *log_file;
static sqlite3 *locker;

static const struct tg_cost costs[] = {{"deal", "page", 5, 0, "a page"}};
static const struct tg_plugin desc = {.name = "t", .version = "1", .costs = costs, .ncosts = 1};

static int setup(void **state)
{
	FILE *f;
	char *err = NULL;
	(void)state;

	snprintf(dir, sizeof(dir), "/tmp/tg-gate-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(db_path, sizeof(db_path), "%s/test.db", dir);
	snprintf(log_path, sizeof(log_path), "%s/log", dir);
	snprintf(cfg_path, sizeof(cfg_path), "%s/test.cfg", dir);
	f = fopen(cfg_path, "w");
	fputs("plugin_path = [\"/p\"];\ntasks = ( { name = \"walker\"; plugin = \"t\"; } );\n", f);
	fclose(f);
	if (config_load(&cf, cfg_path, &err) != 0)
		return -1;
	log_file = fopen(log_path, "w+");
	log_setup(TG_LOG_INFO, log_file);
	daemon_init(&d);
	d.config = &cf;
	d.started_ms = tg_wall_ms();
	d.tasks = &task;
	d.ntasks = 1;
	memset(&task, 0, sizeof(task));
	task.daemon = &d;
	task.cfg = &cf.tasks[0];
	task.plugin.desc = &desc;
	pthread_mutex_init(&task.mu, NULL);
	task.state = TASK_RUNNING;
	if (storage_open(&st, "sqlite", db_path, &err) != 0 || storage_connect(st, &task.db, &err) != 0)
		return -1;
	return sqlite3_open(db_path, &locker) == SQLITE_OK ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];
	(void)state;

	sqlite3_close(locker);
	storage_conn_free(task.db);
	storage_free(st);
	pthread_mutex_destroy(&task.mu);
	log_setup(TG_LOG_INFO, stderr);
	fclose(log_file);
	config_release(&cf);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Whether the log so far holds needle. */
static bool logged(const char *needle)
{
	char line[2048];
	bool found = false;

	fflush(log_file);
	rewind(log_file);
	while (!found && fgets(line, sizeof(line), log_file))
		found = strstr(line, needle) != NULL;
	fseek(log_file, 0, SEEK_END);
	return found;
}

static enum task_state state_of(void)
{
	enum task_state s;

	pthread_mutex_lock(&task.mu);
	s = task.state;
	pthread_mutex_unlock(&task.mu);
	return s;
}

#define WAIT_FOR(cond, max_ms)                                                                                 \
	({                                                                                                     \
		int64_t _end = tg_mono_ms() + (max_ms);                                                    \
		while (!(cond) && tg_mono_ms() < _end)                                                     \
			usleep(10000);                                                                         \
		(cond);                                                                                        \
	})

static bool storage_error_has(const char *needle)
{
	bool has;

	pthread_mutex_lock(&task.mu);
	has = strstr(task.storage_error, needle) != NULL;
	pthread_mutex_unlock(&task.mu);
	return has;
}

struct call {
	pthread_t thread;
	atomic_bool done;
	int rc;
	char *err;
};

static void *keepa_call_thread(void *arg)
{
	struct call *c = arg;
	struct tg_keepa_param p = {"page", "0"};
	struct tg_keepa_request req = {.kind = "deal", .units = 1, .path = "/deal", .params = &p, .nparams = 1};
	cJSON *resp = NULL;

	c->rc = services_table.keepa_call(&task, &req, &resp, &c->err);
	cJSON_Delete(resp);
	atomic_store(&c->done, true);
	return NULL;
}

static void lock_database(void)
{
	assert_int_equal(sqlite3_exec(locker, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
}

static void unlock_database(void)
{
	assert_int_equal(sqlite3_exec(locker, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
}

static void test_reason_reaches_log_and_last_error(void **state)
{
	(void)state;
	assert_true(TG_SERVICES_HAS(&services_table, last_error));
	assert_string_equal(services_table.last_error(&task), "");
	lock_database();
	/* SQLite waits out its busy time-out (5 s), then says why. */
	assert_int_equal(services_table.begin(&task), TG_ESTORAGE);
	print_message("last_error: %s\n", services_table.last_error(&task));
	assert_non_null(strstr(services_table.last_error(&task), "storage begin: sqlite: database is locked"));
	assert_true(logged("storage begin: sqlite: database is locked"));
	/* The reason stays until another call fails; a read does not clear it. */
	assert_int_equal(services_table.state_get(&task, "nothing", &(char *){NULL}), TG_ENOTFOUND);
	assert_non_null(strstr(services_table.last_error(&task), "database is locked"));
	/* A failed write is a storage failure: visible in status. */
	{
		cJSON *snap = status_snapshot(&d);
		const cJSON *t = cJSON_GetArrayItem(cJSON_GetObjectItem(snap, "tasks"), 0);
		assert_non_null(strstr(status_str(t, "storage_error"), "database is locked"));
		cJSON_Delete(snap);
	}
	assert_true(logged("this task makes no Keepa call until a storage write succeeds"));
	unlock_database();
}

static void test_no_keepa_call_while_storage_fails(void **state)
{
	struct call c = {.done = false};
	cJSON *snap;
	const cJSON *t;
	(void)state;

	/* The previous test left storage failing (its last write failed). */
	pthread_mutex_lock(&task.mu);
	assert_true(task.storage_failing);
	pthread_mutex_unlock(&task.mu);
	lock_database();
	assert_int_equal(pthread_create(&c.thread, NULL, keepa_call_thread, &c), 0);
	/* Held at the gate, visibly. */
	assert_true(WAIT_FOR(state_of() == TASK_STORAGE_WAIT, 10000));
	snap = status_snapshot(&d);
	t = cJSON_GetArrayItem(cJSON_GetObjectItem(snap, "tasks"), 0);
	assert_string_equal(status_str(t, "state"), "waiting_for_storage");
	assert_string_equal(status_str(t, "verdict"), "warning");
	assert_non_null(strstr(status_str(t, "reason"), "storage failing for "));
	assert_non_null(strstr(status_str(t, "storage_error"), "database is locked"));
	cJSON_Delete(snap);
	assert_true(WAIT_FOR(logged("waiting for storage (storage begin: sqlite: database is locked"), 10000));
	/* Probes fail while the lock is held (each waits SQLite's 5 s), with
	 * the reason in status: the call stays held. */
	assert_true(WAIT_FOR(storage_error_has("storage probe: sqlite: database is locked"), 30000));
	assert_false(atomic_load(&c.done));
	assert_int_equal(state_of(), TASK_STORAGE_WAIT);
	unlock_database();
	/* The next probe writes; the call goes on to the Keepa layer, which in
	 * this test is absent: TG_ENOTSUP says it got past the gate. */
	assert_true(WAIT_FOR(atomic_load(&c.done), 60000));
	pthread_join(c.thread, NULL);
	assert_int_equal(c.rc, TG_ENOTSUP);
	assert_string_equal(c.err, "no Keepa connection in this mode");
	free(c.err);
	assert_true(logged("storage works again after"));
	assert_int_equal(state_of(), TASK_RUNNING);
	pthread_mutex_lock(&task.mu);
	assert_false(task.storage_failing);
	pthread_mutex_unlock(&task.mu);
	/* Storage works: no wait at all now. */
	c = (struct call){.done = false};
	keepa_call_thread(&c);
	assert_int_equal(c.rc, TG_ENOTSUP);
	free(c.err);
}

static void test_stop_ends_the_wait(void **state)
{
	struct call c = {.done = false};
	(void)state;

	storage_gate_note(&task, "commit", TG_ESTORAGE, "sqlite: database or disk is full");
	assert_int_equal(pthread_create(&c.thread, NULL, keepa_call_thread, &c), 0);
	assert_true(WAIT_FOR(state_of() == TASK_STORAGE_WAIT, 10000));
	daemon_signal_stop(&d);
	assert_true(WAIT_FOR(atomic_load(&c.done), 10000));
	pthread_join(c.thread, NULL);
	assert_int_equal(c.rc, TG_ESTOPPED);
	assert_non_null(strstr(c.err, "stopped while waiting for storage (storage commit: sqlite: database or disk is full)"));
	free(c.err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reason_reaches_log_and_last_error),
		cmocka_unit_test(test_no_keepa_call_while_storage_fails),
		cmocka_unit_test(test_stop_ends_the_wait),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
