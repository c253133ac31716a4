/*
 * services.c - the services table: thin adapters from a plugin's
 * struct tg_task * to the host's subsystems (settings, clock, waits,
 * progress, locks, storage, checkpoint state, Keepa). Policy lives in the
 * subsystems; this file only translates and logs what a plugin could not
 * otherwise learn (storage errors carry SQLite's message here).
 */
#include "util/errmsg.h"
#include "core/services.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/contract.h"
#include "core/daemon.h"
#include "keepa/keepa.h"
#include "core/loader.h"
#include "storage/locks.h"
#include "observe/log.h"
#include "core/settings.h"
#include "core/storage_gate.h"
#include "storage/storage.h"
#include "core/task.h"
#include "tokens/tokens.h"

static void svc_log(struct tg_task *task, enum tg_log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (task->remote) {
		char line[8192];
		vsnprintf(line, sizeof(line), fmt, ap);
		task->remote->log(task, (int)level, line);
	} else {
		log_vmsg((int)level, task->cfg->name, fmt, ap);
	}
	va_end(ap);
}

/* The reason of a failed call, for services->last_error(): it stays until
 * another call of this task fails. */
static void note_failure(struct tg_task *task, const char *fmt, ...) TG_PRINTF(2, 3);
static void note_failure(struct tg_task *task, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(task->service_error, sizeof(task->service_error), fmt, ap);
	va_end(ap);
	log_redact(task->service_error);
}

static int svc_setting_int(struct tg_task *task, const char *name, int64_t *out)
{
	return settings_int(task->plugin.desc, task->cfg->settings, name, out);
}

static int svc_setting_real(struct tg_task *task, const char *name, double *out)
{
	return settings_real(task->plugin.desc, task->cfg->settings, name, out);
}

static int svc_setting_bool(struct tg_task *task, const char *name, bool *out)
{
	return settings_bool(task->plugin.desc, task->cfg->settings, name, out);
}

static int svc_setting_string(struct tg_task *task, const char *name, const char **out)
{
	return settings_string(task->plugin.desc, task->cfg->settings, name, out);
}

static int svc_setting_json(struct tg_task *task, const char *name, struct cJSON **out)
{
	return settings_json(task->plugin.desc, task->cfg->settings, name, out);
}

static int64_t svc_now_ms(struct tg_task *task)
{
	(void)task;
	return tg_wall_ms();
}

static int svc_sleep_ms(struct tg_task *task, int64_t ms)
{
	int rc;

	if (ms < 0)
		ms = 0;
	/* A plugin's "forever" (INT64_MAX) must not overflow the deadline:
	 * a year is forever enough, and still ends at shutdown. */
	if (ms > 366LL * 86400 * 1000)
		ms = 366LL * 86400 * 1000;
	task_set_state(task, TASK_SLEEPING, tg_wall_ms() + ms);
	rc = daemon_wait_until(task->daemon, tg_mono_ms() + ms);
	task_set_state(task, TASK_RUNNING, 0);
	return rc;
}

static bool svc_should_stop(struct tg_task *task)
{
	/* A worker's held-back progress report must not wait for ever on a
	 * plugin that calls nothing else (worker/remote.c). */
	if (task->remote)
		task->remote->flush(task);
	return atomic_load(&task->daemon->stopping);
}

static void svc_progress(struct tg_task *task, int64_t done, int64_t total, const char *unit)
{
	if (task->remote)
		task->remote->progress(task, done, total, unit);
	else
		task_note_progress(task, done, total, unit);
}

static int svc_lock(struct tg_task *task, const char *name, int64_t timeout_ms)
{
	char *err = NULL, *holder = NULL;
	int rc;

	if (!task->daemon->locks) /* a dry run (check) has none */
		return TG_ENOTSUP;
	rc = locks_acquire(task->daemon->locks, name, task->cfg->name, 0, &task->daemon->stopping, &err);

	if (rc == TG_EBUSY && timeout_ms != 0) {
		/* A wait, so it is shown: in status, and in the log with who holds
		 * the lock (when it is a task of this daemon) and for how long. */
		free(err);
		err = NULL;
		locks_holder(task->daemon->locks, name, &holder);
		log_info(task->cfg->name, "waiting for lock \"%s\" held by %s%s", name,
		         holder ? holder : "another process",
		         timeout_ms > 0 ? "" : " (until it is released or the daemon stops)");
		pthread_mutex_lock(&task->mu);
		snprintf(task->waiting_lock, sizeof(task->waiting_lock), "%s", name);
		pthread_mutex_unlock(&task->mu);
		task_set_state(task, TASK_LOCK_WAIT, timeout_ms > 0 ? tg_wall_ms() + timeout_ms : -1);
		rc = locks_acquire(task->daemon->locks, name, task->cfg->name, timeout_ms, &task->daemon->stopping,
		                   &err);
		task_set_state(task, TASK_RUNNING, 0);
		free(holder);
	}
	if (rc && rc != TG_EBUSY && rc != TG_ESTOPPED && rc != TG_ETIMEDOUT)
		log_warn(task->cfg->name, "lock \"%s\": %s", name, err ? err : "failed");
	if (rc)
		note_failure(task, "lock \"%s\": %s", name,
		             err                    ? err
		             : rc == TG_EBUSY       ? "held by another holder"
		             : rc == TG_ETIMEDOUT   ? "timed out"
		             : rc == TG_ESTOPPED    ? "the daemon is stopping"
		                                    : "failed");
	free(err);
	return rc;
}

static int svc_unlock(struct tg_task *task, const char *name)
{
	if (!task->daemon->locks)
		return TG_ENOTSUP;
	return locks_unlock(task->daemon->locks, name, task->cfg->name);
}

/* After a storage call: the backend's reason goes to the log, to
 * last_error() and (for writes) to the storage gate, which status shows. The
 * call must have run before this: its message exists only then. */
static int storage_result(struct tg_task *task, const char *what, bool write, int rc, char *err)
{
	if (rc && rc != TG_ENOTFOUND) {
		log_warn(task->cfg->name, "storage %s: %s", what, err ? err : "failed");
		note_failure(task, "storage %s: %s", what, err ? err : "failed");
	}
	if (write)
		storage_gate_note(task, what, rc, err);
	free(err);
	return rc;
}

/* A plugin's errmsg pointer may hold anything on entry (the SDK promises
 * only to write it): clear it before a host function that replaces. */
static char **sdk_errmsg(char **errmsg)
{
	if (errmsg)
		*errmsg = NULL;
	return errmsg;
}

static int svc_table_declare(struct tg_task *task, const struct tg_table *table, char **errmsg)
{
	int rc = storage_declare(task->db, table, sdk_errmsg(errmsg));

	if (rc)
		note_failure(task, "storage declare %s: %s", table && table->name ? table->name : "(null)",
		             errmsg && *errmsg ? *errmsg : "failed");
	else
		rc = contract_note_declared(task, table->name);
	return rc;
}

/* The storage contract (contract.h): a write to a table the plugin did not
 * declare is refused, and said so in the log and by last_error() - the
 * plugin sees TG_EINVAL. */
static int refused_write(struct tg_task *task, const char *what, const char *table)
{
	log_error(task->cfg->name,
	          "storage %s into table \"%s\" refused: plugin \"%s\" did not declare it (a plugin writes only "
	          "the tables it declared; reading others is allowed)",
	          what, table ? table : "(null)", task->plugin.desc->name);
	note_failure(task, "storage %s into table \"%s\" refused: this plugin did not declare it", what,
	             table ? table : "(null)");
	return TG_EINVAL;
}

/* An index belongs to a table the plugin declared (the contract's rule for
 * writes: building an index writes the database). */
static int svc_table_index(struct tg_task *task, const char *table, const char *column, char **errmsg)
{
	int rc;

	sdk_errmsg(errmsg);
	if (!contract_may_write(task, table)) {
		rc = refused_write(task, "index", table);
		return errmsg_set(errmsg, rc, "table not declared by this plugin");
	}
	rc = storage_index(task->db, table, column, errmsg);
	if (rc) {
		log_warn(task->cfg->name, "storage index %s.%s: %s", table, column ? column : "(null)",
		         errmsg && *errmsg ? *errmsg : "failed");
		note_failure(task, "storage index %s.%s: %s", table, column ? column : "(null)",
		             errmsg && *errmsg ? *errmsg : "failed");
	}
	return rc;
}

static int svc_begin(struct tg_task *task)
{
	char *err = NULL;
	int rc = storage_begin(task->db, &err);
	return storage_result(task, "begin", true, rc, err);
}

static int svc_commit(struct tg_task *task)
{
	char *err = NULL;
	int rc = storage_commit(task->db, &err);
	return storage_result(task, "commit", true, rc, err);
}

static int svc_rollback(struct tg_task *task)
{
	char *err = NULL;
	int rc = storage_rollback(task->db, &err);
	return storage_result(task, "rollback", false, rc, err);
}

static int svc_upsert(struct tg_task *task, const char *table, const struct tg_value *values, size_t n)
{
	char *err = NULL;
	int rc;

	if (!contract_may_write(task, table))
		return refused_write(task, "upsert", table);
	rc = storage_upsert(task->db, table, values, n, &err);
	return storage_result(task, "upsert", true, rc, err);
}

static int svc_get(struct tg_task *task, const char *table, const struct tg_value *key, size_t nkey, tg_row_fn fn,
                   void *ud)
{
	char *err = NULL;
	int rc = storage_get(task->db, table, key, nkey, fn, ud, &err);
	return storage_result(task, "get", false, rc, err);
}

static int svc_remove(struct tg_task *task, const char *table, const struct tg_value *key, size_t nkey)
{
	char *err = NULL;
	int rc;

	if (!contract_may_write(task, table))
		return refused_write(task, "remove", table);
	rc = storage_remove(task->db, table, key, nkey, &err);
	return storage_result(task, "remove", true, rc, err);
}

static int svc_select(struct tg_task *task, const char *table, const struct tg_filter *filters, size_t nfilters,
                      const char *order_by, int64_t limit, tg_row_fn fn, void *ud)
{
	char *err = NULL;
	int rc = storage_select(task->db, table, filters, nfilters, order_by, limit, fn, ud, &err);
	return storage_result(task, "select", false, rc, err);
}

static int svc_state_get(struct tg_task *task, const char *key, char **value)
{
	char *err = NULL;
	int rc = storage_state_get(task->db, task->cfg->name, key, value, &err);
	return storage_result(task, "state_get", false, rc, err);
}

static int svc_state_set(struct tg_task *task, const char *key, const char *value)
{
	char *err = NULL;
	int rc = storage_state_set(task->db, task->cfg->name, key, value, &err);
	return storage_result(task, "state_set", true, rc, err);
}

static const char *svc_last_error(struct tg_task *task)
{
	return task->service_error;
}

static int svc_keepa_call(struct tg_task *task, const struct tg_keepa_request *req, struct cJSON **response,
                          char **errmsg)
{
	double estimate;
	int rc;

	errmsg = sdk_errmsg(errmsg);
	*response = NULL;
	/* Don't buy what cannot be stored (storage_gate.h). */
	if ((rc = storage_gate_wait(task, errmsg)))
		return rc;
	if (!req || !req->kind || !req->path) {
		errmsg_set(errmsg, 0, "keepa_call needs a kind and a path");
		return TG_EINVAL;
	}
	estimate = plugin_declared_cost(task->plugin.desc, req->kind, req->units);
	if (estimate < 0) {
		errmsg_set(errmsg, 0, "call kind \"%s\" is not in plugin \"%s\"'s cost model", req->kind,
			                         task->plugin.desc->name);
		return TG_EINVAL;
	}
	if (task->remote)
		return task->remote->keepa_call(task, req, response, errmsg);
	if (!task->daemon->keepa || task->daemon->dry_run) {
		errmsg_set(errmsg, 0, "no Keepa connection in this mode");
		return TG_ENOTSUP;
	}
	return keepa_call(task->daemon->keepa, task->keepa, task->tokens_class, estimate, req, response, errmsg);
}

static int64_t svc_budget_hint(struct tg_task *task)
{
	if (task->remote)
		return task->remote->budget_hint(task);
	if (!task->daemon->tokens)
		return 0;
	return tokens_budget_hint(task->daemon->tokens, task->tokens_class);
}

/* Kept for the runner (runner.c), which applies it when the run returns;
 * in a worker, do_run sends it along with run_done. */
static void svc_not_before_ms(struct tg_task *task, int64_t ms)
{
	task->run_not_before_ms = ms < 0 ? 0 : ms > TASK_NOT_BEFORE_MAX_MS ? TASK_NOT_BEFORE_MAX_MS : ms;
}

static void svc_free(void *p)
{
	free(p);
}

const struct tg_services services_table = {
	.struct_size = sizeof(struct tg_services),
	.log = svc_log,
	.setting_int = svc_setting_int,
	.setting_real = svc_setting_real,
	.setting_bool = svc_setting_bool,
	.setting_string = svc_setting_string,
	.setting_json = svc_setting_json,
	.now_ms = svc_now_ms,
	.sleep_ms = svc_sleep_ms,
	.should_stop = svc_should_stop,
	.progress = svc_progress,
	.lock = svc_lock,
	.unlock = svc_unlock,
	.table_declare = svc_table_declare,
	.begin = svc_begin,
	.commit = svc_commit,
	.rollback = svc_rollback,
	.upsert = svc_upsert,
	.get = svc_get,
	.remove = svc_remove,
	.select = svc_select,
	.state_get = svc_state_get,
	.state_set = svc_state_set,
	.keepa_call = svc_keepa_call,
	.budget_hint = svc_budget_hint,
	.free = svc_free,
	/* ABI 1.1 */
	.last_error = svc_last_error,
	/* ABI 1.2 */
	.not_before_ms = svc_not_before_ms,
	/* ABI 1.3 */
	.table_index = svc_table_index,
};
