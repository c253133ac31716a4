/*
 * contract.h - the storage contract between a plugin and the host, enforced
 * where the plugin's calls enter the host: a plugin writes (upserts into,
 * deletes from) only the tables it declared with table_declare(); it may
 * read any table, such as the shared `deals` table that another plugin also
 * declares. Several plugins may declare the same table (the shipped three
 * share `deals`): declaring is what makes a table a plugin's own.
 */
#ifndef TG_HOST_CONTRACT_H
#define TG_HOST_CONTRACT_H

#include <stdbool.h>

struct tg_task;

/* Remember that task declared table: 0, or TG_ENOMEM. */
int contract_note_declared(struct tg_task *task, const char *table);
/* May task write table? (Unknown names are for storage to refuse.) */
bool contract_may_write(const struct tg_task *task, const char *table);
/* After run(): a transaction the plugin left open would keep SQLite's
 * write lock and stop every other writer. Roll it back and log it as the
 * plugin's bug. */
void contract_end_open_transaction(struct tg_task *task);
/* Forget the declarations (when the task's plugin state goes). */
void contract_release(struct tg_task *task);

#endif
