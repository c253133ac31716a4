/*
 * storage_gate.c - hold a task's Keepa calls while its storage writes fail
 * (see storage_gate.h).
 */
#include "core/storage_gate.h"

#include <stdlib.h>
#include <string.h>

#include "core/daemon.h"
#include "observe/log.h"
#include "storage/storage.h"
#include "util/errmsg.h"

/* A key of the task's checkpoint state that only the probe uses; it is
 * written and deleted in one transaction, so nothing of it remains. */
#define PROBE_KEY "tollgate.storage_probe"

void storage_gate_note(struct tg_task *task, const char *what, int rc, const char *err)
{
	bool first = false;
	char line[sizeof(task->storage_error)];

	/* Only the backend failing counts: a plugin's bad argument (TG_EINVAL,
	 * TG_ETYPE) says nothing about the database. */
	if (rc != 0 && rc != TG_ESTORAGE)
		return;
	pthread_mutex_lock(&task->mu);
	if (rc == TG_ESTORAGE) {
		first = !task->storage_failing;
		if (first) {
			task->storage_failing = true;
			task->storage_failing_since_ms = tg_wall_ms();
		}
		snprintf(task->storage_error, sizeof(task->storage_error), "storage %s: %s", what,
		         err ? err : "failed");
		snprintf(line, sizeof(line), "%s", task->storage_error);
	} else if (strcmp(what, "commit") == 0 && task->storage_failing) {
		/* A commit that worked is storage working (a begin alone is not:
		 * a full disk fails only when pages are written). */
		task->storage_failing = false;
		task->storage_error[0] = '\0';
	}
	pthread_mutex_unlock(&task->mu);
	if (first)
		log_warn(task->cfg->name, "%s; this task makes no Keepa call until a storage write succeeds", line);
}

/* One real write, as small as can be: 0 when storage takes it. */
static int probe(struct tg_task *task, char **err)
{
	int rc = storage_begin(task->db, err);

	if (rc == 0)
		rc = storage_state_set(task->db, task->cfg->name, PROBE_KEY, "1", err);
	if (rc == 0)
		rc = storage_state_set(task->db, task->cfg->name, PROBE_KEY, NULL, err);
	if (rc == 0)
		return storage_commit(task->db, err); /* rolls back itself on failure */
	if (storage_in_transaction(task->db))
		storage_rollback(task->db, NULL);
	return rc;
}

int storage_gate_wait(struct tg_task *task, char **errmsg)
{
	int64_t pause = STORAGE_GATE_PROBE_MIN_MS, since;
	int probes = 0, rc;
	bool failing;
	char reason[sizeof(task->storage_error)];

	pthread_mutex_lock(&task->mu);
	failing = task->storage_failing;
	since = task->storage_failing_since_ms;
	snprintf(reason, sizeof(reason), "%s", task->storage_error);
	pthread_mutex_unlock(&task->mu);
	if (!failing)
		return 0;
	if (storage_in_transaction(task->db))
		return errmsg_set(errmsg, TG_ESTORAGE, "%s; not calling Keepa inside a transaction that cannot commit",
		                  reason);
	log_info(task->cfg->name, "waiting for storage (%s): probing every %d to %d s", reason,
	         STORAGE_GATE_PROBE_MIN_MS / 1000, STORAGE_GATE_PROBE_MAX_MS / 1000);
	for (;;) {
		char *err = NULL;

		task_set_state(task, TASK_STORAGE_WAIT, tg_wall_ms() + pause);
		rc = daemon_wait_until(task->daemon, tg_mono_ms() + pause);
		if (rc)
			break;
		probes++;
		rc = probe(task, &err);
		if (rc == 0) {
			pthread_mutex_lock(&task->mu);
			task->storage_failing = false;
			task->storage_error[0] = '\0';
			pthread_mutex_unlock(&task->mu);
			log_info(task->cfg->name, "storage works again after %lld s (%d probe%s); Keepa calls resume",
			         (long long)((tg_wall_ms() - since) / 1000), probes, probes == 1 ? "" : "s");
			break;
		}
		pthread_mutex_lock(&task->mu);
		snprintf(task->storage_error, sizeof(task->storage_error), "storage probe: %s",
		         err ? err : "failed");
		pthread_mutex_unlock(&task->mu);
		log_debug(task->cfg->name, "storage probe %d failed: %s", probes, err ? err : "failed");
		free(err);
		pause = pause * 2 < STORAGE_GATE_PROBE_MAX_MS ? pause * 2 : STORAGE_GATE_PROBE_MAX_MS;
	}
	task_set_state(task, TASK_RUNNING, 0);
	if (rc)
		return errmsg_set(errmsg, rc, "stopped while waiting for storage (%s)", reason);
	return 0;
}
