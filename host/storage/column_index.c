/*
 * column_index.c - open addressing over FNV-1a hashes of column names (see
 * column_index.h). At most half the slots are used, so probes stay short.
 */
#include "storage/column_index.h"

#include <stdlib.h>
#include <string.h>

static uint32_t name_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

int column_index_build(struct column_index *ix, const struct storage_table *t)
{
	size_t n = 8;

	*ix = (struct column_index){0};
	while (n < 2 * t->ncolumns)
		n *= 2;
	ix->slots = calloc(n, sizeof(*ix->slots));
	if (!ix->slots)
		return TG_ENOMEM;
	ix->mask = n - 1;
	for (size_t i = 0; i < t->ncolumns; i++) {
		size_t s = name_hash(t->columns[i].name) & ix->mask;

		while (ix->slots[s])
			s = (s + 1) & ix->mask;
		ix->slots[s] = (uint32_t)i + 1;
	}
	return 0;
}

void column_index_free(struct column_index *ix)
{
	free(ix->slots);
	*ix = (struct column_index){0};
}

long column_index_find(const struct column_index *ix, const struct storage_table *t, const char *name)
{
	if (!name)
		return -1;
	if (!ix->slots) {
		for (size_t i = 0; i < t->ncolumns; i++)
			if (strcmp(t->columns[i].name, name) == 0)
				return (long)i;
		return -1;
	}
	for (size_t s = name_hash(name) & ix->mask; ix->slots[s]; s = (s + 1) & ix->mask) {
		size_t i = ix->slots[s] - 1;

		if (strcmp(t->columns[i].name, name) == 0)
			return (long)i;
	}
	return -1;
}
