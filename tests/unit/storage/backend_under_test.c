/*
 * backend_under_test.c - the backend a storage test run exercises (see
 * backend_under_test.h).
 */
#include "backend_under_test.h"

#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *but_backend(void)
{
	const char *b = getenv("TG_TEST_STORAGE");

	return b && strcmp(b, "postgresql") == 0 ? "postgresql" : "sqlite";
}

bool but_is_postgresql(void)
{
	return strcmp(but_backend(), "postgresql") == 0;
}

static const char *cluster(void)
{
	const char *c = getenv("TG_TEST_PG_CONNINFO");

	if (!c || !*c) {
		fprintf(stderr, "TG_TEST_STORAGE=postgresql needs TG_TEST_PG_CONNINFO "
		                "(run the test through tests/pg/with-cluster)\n");
		exit(1);
	}
	return c;
}

/* Append one cell to out (rows and cells separated as the header says). */
static void add_cell(char *out, size_t size, size_t *len, int row, int col, const char *cell)
{
	const char *parts[] = {col ? "|" : row ? "\n" : "", cell ? cell : "NULL"};

	/* Copied by hand, cut at size - 1: snprintf into what is left of the
	 * buffer is a truncation warning at -O3 (release builds). */
	for (size_t p = 0; p < 2; p++)
		for (const char *c = parts[p]; *c && *len + 1 < size; c++)
			out[(*len)++] = *c;
	out[*len] = '\0';
}

static bool sqlite_query_text(const char *path, const char *sql, char *out, size_t size)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	size_t len = 0;
	int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);

	out[0] = '\0';
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	for (int row = 0; rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW; row++, rc = SQLITE_OK)
		for (int col = 0; col < sqlite3_column_count(st); col++)
			add_cell(out, size, &len, row, col, (const char *)sqlite3_column_text(st, col));
	if (rc != SQLITE_DONE)
		fprintf(stderr, "%s: %s\n", sql, db ? sqlite3_errmsg(db) : "out of memory");
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc == SQLITE_DONE;
}

static bool pg_query_text(const char *locator, const char *sql, char *out, size_t size)
{
	PGconn *c = PQconnectdb(locator);
	PGresult *r = NULL;
	size_t len = 0;
	bool ok = PQstatus(c) == CONNECTION_OK;

	out[0] = '\0';
	if (ok) {
		r = PQexec(c, sql);
		ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
	}
	for (int row = 0; ok && row < PQntuples(r); row++)
		for (int col = 0; col < PQnfields(r); col++)
			add_cell(out, size, &len, row, col, PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col));
	if (!ok)
		fprintf(stderr, "%s: %s", sql, r ? PQresultErrorMessage(r) : PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	return ok;
}

bool but_pg_exec(const char *locator, const char *sql)
{
	char rows[1];

	return pg_query_text(locator, sql, rows, sizeof(rows));
}

long but_pg_number(const char *locator, const char *sql)
{
	PGconn *c = PQconnectdb(locator);
	PGresult *r = PQstatus(c) == CONNECTION_OK ? PQexec(c, sql) : NULL;
	long n = -1;

	if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
		n = strtol(PQgetvalue(r, 0, 0), NULL, 10);
	else
		fprintf(stderr, "%s: %s", sql, r ? PQresultErrorMessage(r) : PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	return n;
}

bool but_query_text(const char *locator, const char *sql, char *out, size_t size)
{
	return but_is_postgresql() ? pg_query_text(locator, sql, out, size) : sqlite_query_text(locator, sql, out, size);
}

/* The database name a locator ends with (" dbname=NAME"). */
static const char *db_name(const char *locator)
{
	const char *d = strstr(locator, " dbname=tg_test_");

	return d ? d + strlen(" dbname=") : NULL;
}

void but_create(const char *dir, char *locator, size_t size)
{
	static int serial;
	char sql[128], name[64];

	if (!but_is_postgresql()) {
		snprintf(locator, size, "%s/tollgate.db", dir);
		return;
	}
	snprintf(name, sizeof(name), "tg_test_%ld_%d", (long)getpid(), ++serial);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
	if (!but_pg_exec(cluster(), sql))
		exit(1);
	/* A later keyword wins over an earlier one in a connection string. */
	snprintf(locator, size, "%s dbname=%s", cluster(), name);
}

void but_destroy(const char *locator)
{
	char sql[128], p[512];

	if (!but_is_postgresql()) {
		unlink(locator);
		snprintf(p, sizeof(p), "%s-wal", locator);
		unlink(p);
		snprintf(p, sizeof(p), "%s-shm", locator);
		unlink(p);
		return;
	}
	if (!db_name(locator))
		return;
	/* FORCE: a test that failed half-way may still have connections. */
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", db_name(locator));
	but_pg_exec(cluster(), sql);
}
