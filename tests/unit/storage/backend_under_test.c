/*
 * backend_under_test.c - the backend a storage test run exercises (see
 * backend_under_test.h).
 */
#include "backend_under_test.h"

#include <libpq-fe.h>
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

bool but_pg_exec(const char *locator, const char *sql)
{
	PGconn *c = PQconnectdb(locator);
	PGresult *r = NULL;
	bool ok = PQstatus(c) == CONNECTION_OK;

	if (ok) {
		r = PQexec(c, sql);
		ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
	}
	if (!ok)
		fprintf(stderr, "%s: %s", sql, r ? PQresultErrorMessage(r) : PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	return ok;
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
