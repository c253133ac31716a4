/*
 * index_def.c - the name and columns of the index on table.column (see
 * index_def.h).
 */
#include "storage/index_def.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define SHORT_PREFIX "tg_ix_"
#define LONG_PREFIX "tg_ixh_"
/* What is left of the 63 bytes for the readable part of a long name:
 * the prefix, '_' and 16 hex digits take the rest. */
#define LONG_READABLE (STORAGE_INDEX_NAME_SIZE - 1 - (sizeof(LONG_PREFIX) - 1) - 1 - 16)

static uint64_t fnv1a(uint64_t h, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

void storage_index_name(const char *table, const char *column, char out[STORAGE_INDEX_NAME_SIZE])
{
	char readable[2 * STORAGE_INDEX_NAME_SIZE];
	uint64_t h = UINT64_C(0xcbf29ce484222325);
	int n = snprintf(out, STORAGE_INDEX_NAME_SIZE, SHORT_PREFIX "%s_%s", table, column);

	if (n >= 0 && n < STORAGE_INDEX_NAME_SIZE)
		return;
	/* The zero byte keeps ("a_b", "c") and ("a", "b_c") apart. */
	h = fnv1a(h, table, strlen(table) + 1);
	h = fnv1a(h, column, strlen(column));
	snprintf(readable, sizeof(readable), "%s_%s", table, column);
	snprintf(out, STORAGE_INDEX_NAME_SIZE, LONG_PREFIX "%.*s_%016" PRIx64, (int)LONG_READABLE, readable, h);
}

const struct storage_column *storage_index_column(const struct storage_table *t, const char *column, size_t n)
{
	size_t pos = 1;

	for (size_t i = 0; n == 0 && i < t->ncolumns; i++)
		if (strcmp(t->columns[i].name, column) == 0)
			return &t->columns[i];
	for (unsigned k = 1; n > 0 && k <= t->nkeys; k++)
		for (size_t i = 0; i < t->ncolumns; i++)
			if (t->columns[i].key == k && strcmp(t->columns[i].name, column) != 0 && pos++ == n)
				return &t->columns[i];
	return NULL;
}
