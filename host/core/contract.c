/*
 * contract.c - which tables a task may write (contract.h).
 */
#include "core/contract.h"

#include <stdlib.h>
#include <string.h>

#include "core/task.h"

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
