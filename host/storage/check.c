/*
 * check.c - `tollgate check`'s look at the storage: can the daemon work
 * with it, asked without writing anything (see storage_check in
 * storage.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/pg_conn.h"
#include "storage/storage.h"
#include "util/errmsg.h"

/* What the role may do where the daemon would create its tables (the first
 * schema of the search path), and whether the server takes writes at all. */
static const char pg_rights_sql[] =
    "SELECT current_user, current_database(), current_schema(), "
    "current_schema() IS NOT NULL AND has_schema_privilege(current_schema(), 'CREATE'), "
    "pg_is_in_recovery(), "
    "to_regclass('tg_state') IS NULL OR has_table_privilege('tg_state', 'SELECT, INSERT, UPDATE, DELETE')";

static int pg_check(const char *conninfo, char **summary, char **errmsg)
{
	PGconn *db;
	PGresult *res;
	const char *user, *dbname, *schema;
	int rc;

	rc = pg_conninfo_check(conninfo, errmsg);
	if (rc < 0)
		return rc;
	/* Unreachable (nothing answers, or the server is starting or
	 * stopping) is another failure than a refused connection: it may pass
	 * later by itself, a refusal needs the configuration fixed. */
	switch (PQping(conninfo)) {
	case PQPING_NO_RESPONSE:
	case PQPING_REJECT:
		rc = pg_connect(conninfo, "check", &db, errmsg);
		if (rc == 0) {
			PQfinish(db); /* it came up in between */
			break;
		}
		return TG_ENETWORK;
	default:
		break;
	}
	rc = pg_connect(conninfo, "check", &db, errmsg);
	if (rc < 0)
		return TG_EINVAL;
	res = PQexec(db, pg_rights_sql);
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		rc = pg_fail(db, res, "checking privileges", errmsg);
		PQfinish(db);
		return rc == TG_ENOMEM ? rc : TG_EINVAL;
	}
	user = PQgetvalue(res, 0, 0);
	dbname = PQgetvalue(res, 0, 1);
	schema = PQgetisnull(res, 0, 2) ? NULL : PQgetvalue(res, 0, 2);
	if (!schema)
		rc = errmsg_set(errmsg, TG_EINVAL,
		                "postgresql: database \"%s\" has no schema of role \"%s\"'s search_path to create "
		                "tables in",
		                dbname, user);
	else if (strcmp(PQgetvalue(res, 0, 3), "t") != 0)
		rc = errmsg_set(errmsg, TG_EINVAL,
		                "postgresql: role \"%s\" may not create tables in schema \"%s\" of database \"%s\" "
		                "(GRANT CREATE ON SCHEMA %s TO %s)",
		                user, schema, dbname, schema, user);
	else if (strcmp(PQgetvalue(res, 0, 4), "t") == 0)
		rc = errmsg_set(errmsg, TG_ENETWORK,
		                "postgresql: the server is a read-only standby (in recovery): connect to the primary");
	else if (strcmp(PQgetvalue(res, 0, 5), "t") != 0)
		rc = errmsg_set(errmsg, TG_EINVAL,
		                "postgresql: role \"%s\" may not read and write table tg_state in schema \"%s\"", user,
		                schema);
	else if (summary)
		*summary = str_printf("postgresql database \"%s\" reachable; role \"%s\" may create tables in schema "
		                      "\"%s\"",
		                      dbname, user, schema);
	PQclear(res);
	PQfinish(db);
	return rc;
}

int storage_check(const char *backend, const char *locator, char **summary, char **errmsg)
{
	if (summary)
		*summary = NULL;
	if (backend && strcmp(backend, "postgresql") == 0)
		return pg_check(locator, summary, errmsg);
	/* SQLite: opening creates the file, which a check must not do; the
	 * daemon's start says what is wrong with the path. */
	if (summary)
		*summary = str_printf("sqlite file %s", locator ? locator : "?");
	return 0;
}
