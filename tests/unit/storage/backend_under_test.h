/*
 * backend_under_test.h - which storage backend a run of the storage and
 * lock suites exercises, and a fresh, empty database for each test.
 *
 * One suite, two runs (tests/unit/storage/meson.build): TG_TEST_STORAGE
 * unset or "sqlite" uses a file in the test's directory; "postgresql" a
 * new database on the cluster that tests/pg/with-cluster started
 * (TG_TEST_PG_CONNINFO), dropped again at teardown.
 */
#ifndef TG_TEST_BACKEND_UNDER_TEST_H
#define TG_TEST_BACKEND_UNDER_TEST_H

#include <stdbool.h>
#include <stddef.h>

/* "sqlite" or "postgresql". */
const char *but_backend(void);
bool but_is_postgresql(void);

/* Make an empty database for one test and write what storage_open() takes
 * (a file path in dir, or a connection string) into locator. */
void but_create(const char *dir, char *locator, size_t size);
/* Remove it again (the SQLite file and its -wal/-shm, or the database). */
void but_destroy(const char *locator);

/* Run sql on the database of locator as the cluster's superuser
 * (PostgreSQL only); false with a message on stderr when it fails. */
bool but_pg_exec(const char *locator, const char *sql);

/* The first cell of the first row of a query on that database, as a
 * number (-1 when it fails or returns nothing). */
long but_pg_number(const char *locator, const char *sql);

/* Run sql on the database of locator behind the storage service's back
 * (SQLite: its own connection to the file; PostgreSQL: as the cluster's
 * superuser) and write its rows to out: cells joined by "|", rows by "\n"
 * (NULL as "NULL"). false with a message on stderr when it fails. */
bool but_query_text(const char *locator, const char *sql, char *out, size_t size);

#endif
