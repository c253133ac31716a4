/*
 * storage_gate.h - don't buy what cannot be stored.
 *
 * While a task's storage writes fail (disk full, database locked, read-only
 * file), every Keepa call it makes spends tokens on data that will be thrown
 * away. The gate watches the result of each storage write of the task; once
 * one fails with TG_ESTORAGE, the task's next Keepa call waits - visibly, in
 * the state "waiting_for_storage" with the reason in status and one log line
 * - and probes storage with a real write, backing off, until one succeeds.
 * Then one line says how long storage failed, and the call goes out.
 */
#ifndef TG_HOST_STORAGE_GATE_H
#define TG_HOST_STORAGE_GATE_H

struct tg_task;

/* The first and the longest pause between two probes. */
#define STORAGE_GATE_PROBE_MIN_MS 1000
#define STORAGE_GATE_PROBE_MAX_MS 30000

/* A storage write of task ("begin", "commit", ...) returned rc; err is the
 * backend's reason when it failed. */
void storage_gate_note(struct tg_task *task, const char *what, int rc, const char *err);

/* Before a Keepa call of task: 0 at once while storage works; while it
 * fails, wait and probe until a write succeeds. TG_ESTOPPED at shutdown;
 * TG_ESTORAGE (with *errmsg) when the task is inside a transaction, which
 * cannot be probed without committing the plugin's half-done work. */
int storage_gate_wait(struct tg_task *task, char **errmsg);

#endif
