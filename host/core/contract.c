/*
 * contract.c - which tables a task may write (contract.h).
 */
#include "core/contract.h"

#include <stdlib.h>
#include <string.h>

#include "core/task.h"
#include "observe/log.h"
#include "storage/storage.h"

int contract_note_declared(struct tg_task *task, const char *table)
{
	char **grown, *copy;

	if (contract_may_write(task, table))
		return 0;
	grown = realloc(task->declared, (task->ndeclared + 1) * sizeof(*grown));
	if (!grown)
		return TG_ENOMEM;
	task->declared = grown;
	copy = strdup(table);
	if (!copy)
		return TG_ENOMEM;
	task->declared[task->ndeclared++] = copy;
	return 0;
}

bool contract_may_write(const struct tg_task *task, const char *table)
{
	for (size_t i = 0; table && i < task->ndeclared; i++)
		if (strcmp(task->declared[i], table) == 0)
			return true;
	return false;
}

void contract_release(struct tg_task *task)
{
	for (size_t i = 0; i < task->ndeclared; i++)
		free(task->declared[i]);
	free(task->declared);
	task->declared = NULL;
	task->ndeclared = 0;
}

void contract_end_open_transaction(struct tg_task *task)
{
	char *err = NULL;

	if (!task->db || !storage_in_transaction(task->db))
		return;
	storage_rollback(task->db, &err);
	log_error(task->cfg->name,
	          "run() returned with a transaction still open: rolled back (a bug in plugin \"%s\": every begin "
	          "needs its commit or rollback)%s%s",
	          task->plugin.desc->name, err ? "; " : "", err ? err : "");
	free(err);
}
