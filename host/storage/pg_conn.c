/*
 * pg_conn.c - libpq connections and errors shared by the PostgreSQL
 * backend and the advisory locks (see pg_conn.h).
 */
#include "storage/pg_conn.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/errmsg.h"

/* libpq's messages end in a newline and may carry DETAIL/HINT lines: the
 * host wants one line. The first line is copied, at most 300 bytes. */
static void first_line(const char *msg, char *out, size_t size)
{
	size_t n = 0;

	if (!msg)
		msg = "";
	while (msg[n] && msg[n] != '\n' && n + 1 < size)
		n++;
	memcpy(out, msg, n);
	out[n] = '\0';
}

int pg_conninfo_check(const char *conninfo, char **errmsg)
{
	PQconninfoOption *opts;
	char *perr = NULL, line[320];
	int rc = 0;

	if (!conninfo || !*conninfo)
		return errmsg_set(errmsg, TG_EINVAL, "the connection string is empty");
	opts = PQconninfoParse(conninfo, &perr);
	if (!opts) {
		first_line(perr ? perr : "out of memory", line, sizeof(line));
		PQfreemem(perr);
		return errmsg_set(errmsg, TG_EINVAL, "not a libpq connection string: %s", line);
	}
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (strcmp(o->keyword, "password") == 0 && o->val && *o->val)
			rc = errmsg_set(errmsg, TG_EINVAL,
			                "the connection string holds a password: put it in a password file "
			                "(passfile=..., $PGPASSFILE or ~/.pgpass) instead");
	PQconninfoFree(opts);
	return rc;
}

/* NOTICEs ("relation already exists, skipping") are the normal course of
 * IF NOT EXISTS; libpq would print them on stderr. */
static void quiet_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* "tollgate <node>" once a hot-standby node is named. */
static char process_name[80] = "tollgate";
static bool node_named;

void pg_conn_set_node(const char *node)
{
	snprintf(process_name, sizeof(process_name), "tollgate %s", node);
	node_named = true;
}

const char *pg_conn_process_name(void)
{
	return process_name;
}

int pg_connect(const char *conninfo, const char *what, PGconn **out, char **errmsg)
{
	char name[128];
	/* Later keywords override earlier ones, and dbname expands to the
	 * whole connection string: the operator's settings win over the
	 * encoding and the defaults below; the fallback name applies only when
	 * none is set.
	 * A server that vanishes without a word (a black-holed route, a
	 * powered-off host) must become an error, not a task blocked forever
	 * in a read: TCP keepalives probe an idle connection after 30 s and
	 * give up after 3 missed probes 10 s apart; tcp_user_timeout ends a
	 * write nobody acknowledges within 60 s; connect_timeout bounds the
	 * connection itself. (Unix sockets ignore them.) They are set here, so
	 * the PG* environment and a service file no longer supply them: only
	 * the connection string overrides them (README, PostgreSQL). */
	const char *const keys[] = {"client_encoding", "connect_timeout", "keepalives", "keepalives_idle",
	                            "keepalives_interval", "keepalives_count", "tcp_user_timeout", "dbname",
	                            node_named ? "application_name" : "fallback_application_name", NULL};
	const char *const values[] = {"UTF8", "10", "1", "30", "10", "3", "60000", conninfo, name, NULL};
	char line[320];
	PGconn *c;

	*out = NULL;
	snprintf(name, sizeof(name), "%s%s%s", process_name, what ? " " : "", what ? what : "");
	c = PQconnectdbParams(keys, values, 1);
	if (!c)
		return errmsg_set(errmsg, TG_ENOMEM, "out of memory");
	if (PQstatus(c) != CONNECTION_OK) {
		int rc;

		first_line(PQerrorMessage(c), line, sizeof(line));
		rc = errmsg_set(errmsg, TG_ESTORAGE, "postgresql: cannot connect: %s", line);
		PQfinish(c);
		return rc;
	}
	PQsetNoticeProcessor(c, quiet_notice, NULL);
	/* Messages from the server in the C locale, whatever the database's
	 * lc_messages: the logs stay greppable. Not fatal if refused. */
	PQclear(PQexec(c, "SET lc_messages TO 'C'"));
	*out = c;
	return 0;
}

int pg_fail(PGconn *conn, PGresult *res, const char *doing, char **errmsg)
{
	const char *msg = NULL, *state = NULL;
	char line[320];
	int code = TG_ESTORAGE;

	if (res) {
		msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	}
	if (!msg)
		msg = conn ? PQerrorMessage(conn) : "no connection";
	/* 53200: out_of_memory on the server. */
	if (state && strcmp(state, "53200") == 0)
		code = TG_ENOMEM;
	first_line(msg, line, sizeof(line));
	PQclear(res);
	return errmsg_set(errmsg, code, "postgresql: %s (%s)", line, doing);
}

int pg_exec(PGconn *conn, const char *sql, const char *doing, char **errmsg)
{
	PGresult *res = PQexec(conn, sql);
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		return pg_fail(conn, res, doing, errmsg);
	PQclear(res);
	return 0;
}

int pg_create_host_tables(PGconn *db, char **errmsg)
{
	static const char *const steps[] = {
	    "BEGIN",
	    DDL_LOCK_SQL,
	    "CREATE TABLE IF NOT EXISTS tg_state (task text NOT NULL, key text NOT NULL, value text NOT NULL, "
	    "updated_at bigint NOT NULL, PRIMARY KEY (task, key))",
	    "CREATE TABLE IF NOT EXISTS tg_lease (name text PRIMARY KEY, node text NOT NULL, epoch bigint NOT NULL, "
	    "since_ms bigint NOT NULL, heartbeat_ms bigint NOT NULL)",
	    "INSERT INTO tg_lease VALUES ('active', '', 0, 0, 0) ON CONFLICT DO NOTHING",
	    "COMMIT",
	};
	int rc = 0;

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]) && rc == 0; i++)
		rc = pg_exec(db, steps[i], "creating the host tables", errmsg);
	if (rc < 0)
		PQclear(PQexec(db, "ROLLBACK"));
	return rc;
}
