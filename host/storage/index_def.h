/*
 * index_def.h - the index storage_index() makes, the same on every backend:
 * its name and its columns.
 *
 * Columns: the one asked for, then the key columns in key order (without
 * that one), so rows ordered by the column with ties broken by the key
 * come from the index in either direction.
 *
 * Name: "tg_ix_<table>_<column>" when that fits PostgreSQL's identifier limit
 * (63 bytes; SQLite databases made before this rule have exactly these
 * names). A longer one would be cut by PostgreSQL without an error, and two
 * columns whose names differ only past the cut would share one index name:
 * the second CREATE INDEX IF NOT EXISTS would find the first and create
 * nothing. So a longer name is "tg_ixh_<first 39 bytes of table_column>_<h>",
 * h the 16 hex digits of the 64-bit FNV-1a hash of table, a zero byte and
 * column: 63 bytes, stable across versions and machines, and never equal to
 * a short name (those have '_' where these have 'h').
 */
#ifndef TG_HOST_INDEX_DEF_H
#define TG_HOST_INDEX_DEF_H

#include <stddef.h>

#include "storage/storage.h"

/* 63 bytes and the terminating zero. */
#define STORAGE_INDEX_NAME_SIZE 64

/* Write the index name for table.column (both valid identifiers) to out. */
void storage_index_name(const char *table, const char *column, char out[STORAGE_INDEX_NAME_SIZE]);

/* The n-th column (from 0) of the index on table.column, NULL past the
 * last. */
const struct storage_column *storage_index_column(const struct storage_table *table, const char *column,
                                                  size_t n);

#endif
