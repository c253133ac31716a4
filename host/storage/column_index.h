/*
 * column_index.h - a table's column names hashed to their positions, so the
 * storage front checks a row of n values in O(n) rather than comparing each
 * name with every column.
 *
 * An index is built once for a registry entry (which never changes) and is
 * only read afterwards, by any thread. The index points at nothing: lookups
 * take the table it was built from.
 */
#ifndef TG_HOST_STORAGE_COLUMN_INDEX_H
#define TG_HOST_STORAGE_COLUMN_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "storage/storage.h"

struct column_index {
	uint32_t *slots; /* column position + 1; 0 is a free slot */
	size_t mask;     /* number of slots - 1 (a power of two - 1) */
};

/* Build the index of t's columns; on allocation failure the index stays
 * empty and lookups fall back to a linear search (returns TG_ENOMEM). */
int column_index_build(struct column_index *ix, const struct storage_table *t);
void column_index_free(struct column_index *ix);

/* The position of the column called name in t, or -1 (also for NULL). */
long column_index_find(const struct column_index *ix, const struct storage_table *t, const char *name);

#endif
