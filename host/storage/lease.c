/*
 * lease.c - the hot-standby lease in PostgreSQL (see lease.h).
 */
#include "storage/lease.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/pg_conn.h"
#include "util/errmsg.h"

/* The server's clock in Unix milliseconds. */
#define NOW_MS "(extract(epoch from clock_timestamp()) * 1000)::bigint"
#define LEADER_KEY PG_LOCK_KEY_SQL("'leader'")

struct lease {
	char *conninfo;
	PGconn *db;
	char node[64];
	int64_t lease_ms;
	int64_t epoch; /* ours while active, else 0 */
	bool locked;   /* we hold the advisory lock */
};

static int reconnect(struct lease *l, char **errmsg)
{
	if (l->db && PQstatus(l->db) == CONNECTION_OK)
		return 0;
	/* A new session holds no lock. */
	l->locked = false;
	if (l->db)
		PQfinish(l->db);
	l->db = NULL;
	return pg_connect(l->conninfo, "lease", &l->db, errmsg);
}

int lease_open(struct lease **out, const char *conninfo, const char *node, int64_t lease_ms, char **errmsg)
{
	struct lease *l;
	int rc;

	*out = NULL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return errmsg_set(errmsg, TG_ENOMEM, "out of memory");
	snprintf(l->node, sizeof(l->node), "%s", node);
	l->lease_ms = lease_ms;
	l->conninfo = strdup(conninfo);
	rc = l->conninfo ? reconnect(l, errmsg) : errmsg_set(errmsg, TG_ENOMEM, "out of memory");
	if (rc == 0)
		rc = pg_create_host_tables(l->db, errmsg);
	if (rc < 0) {
		lease_close(l);
		return rc;
	}
	*out = l;
	return 0;
}

void lease_close(struct lease *l)
{
	if (!l)
		return;
	if (l->db)
		PQfinish(l->db); /* the server drops the advisory lock */
	free(l->conninfo);
	free(l);
}

/* Run a query of the lease session with text parameters; the result, or
 * NULL with *rc set. */
static PGresult *query(struct lease *l, const char *sql, int n, const char *const *params, const char *doing,
                       int *rc, char **errmsg)
{
	PGresult *res = PQexecParams(l->db, sql, n, NULL, params, NULL, NULL, 0);

	if (res && (PQresultStatus(res) == PGRES_TUPLES_OK || PQresultStatus(res) == PGRES_COMMAND_OK)) {
		*rc = 0;
		return res;
	}
	*rc = pg_fail(l->db, res, doing, errmsg);
	return NULL;
}

static int read_view(struct lease *l, struct lease_view *v, char **errmsg)
{
	PGresult *res;
	int rc;

	memset(v, 0, sizeof(*v)); /* read or not, never garbage in a log line */
	res = query(l,
	            "SELECT node, epoch, since_ms, " NOW_MS " - heartbeat_ms, "
	            "heartbeat_ms < (extract(epoch from pg_postmaster_start_time()) * 1000)::bigint "
	            "FROM tg_lease WHERE name = 'active'",
	            0, NULL, "reading the lease", &rc, errmsg);
	if (!res)
		return rc;
	if (PQntuples(res) == 1) {
		snprintf(v->node, sizeof(v->node), "%s", PQgetvalue(res, 0, 0));
		v->epoch = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
		v->since_ms = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
		v->heartbeat_age_ms = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
		v->beat_before_server_start = strcmp(PQgetvalue(res, 0, 4), "t") == 0;
	}
	PQclear(res);
	return 0;
}

/* End the sessions by which node still holds what the new active needs:
 * its lease session (the leader lock), its task locks ("tollgate <node>
 * lease", "tollgate <node> lock ..." in pg_stat_activity), and its storage
 * sessions inside a transaction (their row locks would make the new
 * active's writes, or the takeover itself, wait for a stopped process;
 * they could never commit anyway). Its idle storage sessions stay:
 * whatever they try to commit later is refused by the fence. Only ever
 * done to a node whose heartbeat is older than the lease or whose lease
 * session is gone: it is stopped, hung or cut off. */
static void end_sessions_of(struct lease *l, const char *node)
{
	char app[96], lease_app[96], lock_prefix[96];
	const char *params[] = {app, lease_app, lock_prefix};
	PGresult *res;
	int rc;

	snprintf(app, sizeof(app), "tollgate %s", node);
	snprintf(lease_app, sizeof(lease_app), "tollgate %s lease", node);
	snprintf(lock_prefix, sizeof(lock_prefix), "tollgate %s lock ", node);
	res = query(l,
	            "SELECT pg_terminate_backend(a.pid) FROM pg_stat_activity a WHERE a.pid <> pg_backend_pid() "
	            "AND (a.application_name = $2 OR left(a.application_name, length($3)) = $3 "
	            "OR (a.application_name = $1 AND a.xact_start IS NOT NULL))",
	            3, params, "ending the stale node's sessions", &rc, NULL);
	PQclear(res);
}

/* Try the leader lock once (l->locked says whether we have it). */
static int try_lock(struct lease *l, char **errmsg)
{
	PGresult *res;
	int rc;

	res = query(l, "SELECT pg_try_advisory_lock(" LEADER_KEY ")", 0, NULL, "trying the leader lock", &rc, errmsg);
	if (!res)
		return rc;
	l->locked = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return 0;
}

/* Give the leader lock back (we took it, but the lease is not ours). */
static void unlock(struct lease *l)
{
	if (l->locked && l->db && PQstatus(l->db) == CONNECTION_OK)
		PQclear(PQexec(l->db, "SELECT pg_advisory_unlock_all()"));
	l->locked = false;
}

/* The active's lease session is gone (the server restarted, or a standby
 * ended it): take the lock again in a new one and keep the lease if it is
 * still ours and running (lease_renew). */
static int regain(struct lease *l, struct lease_view *view, char **errmsg)
{
	char epoch[32], lease_ms[32];
	const char *params[] = {epoch, l->node, lease_ms};
	PGresult *res;
	int rc, kept;

	if ((rc = reconnect(l, errmsg)) < 0)
		return rc;
	if ((rc = try_lock(l, errmsg)) < 0)
		return rc;
	if (!l->locked) {
		if ((rc = read_view(l, view, errmsg)) < 0)
			return rc;
		if (view->epoch == l->epoch && strcmp(view->node, l->node) == 0 && view->heartbeat_age_ms <= l->lease_ms)
			return errmsg_set(errmsg, TG_EBUSY,
			                  "postgresql: another session holds the leader lock; the lease (epoch %" PRId64
			                  ") is still this node's",
			                  l->epoch);
		l->epoch = 0;
		return TG_ESTOPPED;
	}
	snprintf(epoch, sizeof(epoch), "%" PRId64, l->epoch);
	snprintf(lease_ms, sizeof(lease_ms), "%" PRId64, l->lease_ms);
	res = query(l,
	            "UPDATE tg_lease SET heartbeat_ms = " NOW_MS " WHERE name = 'active' AND epoch = $1::int8 "
	            "AND node = $2 AND " NOW_MS " - heartbeat_ms <= $3::int8 RETURNING since_ms",
	            3, params, "taking the lease back", &rc, errmsg);
	if (!res) {
		unlock(l);
		return rc;
	}
	kept = PQntuples(res) == 1;
	PQclear(res);
	if (!kept) {
		/* Moved on, or ran out while we were away: not ours any more. */
		unlock(l);
		l->epoch = 0;
		read_view(l, view, NULL);
		return TG_ESTOPPED;
	}
	if ((rc = read_view(l, view, errmsg)) < 0)
		return 0; /* renewed: the view is only for status */
	view->regained = true;
	return 0;
}

int lease_try_acquire(struct lease *l, struct lease_view *view, char *took_from, size_t took_size, char **errmsg)
{
	const char *params[] = {l->node};
	PGresult *res;
	int rc;

	if ((rc = reconnect(l, errmsg)) < 0)
		return rc;
	if ((rc = read_view(l, view, errmsg)) < 0)
		return rc;
	/* The server restarted under a live active: its lock went with the
	 * server, its lease did not. Leave the lock to it until the lease
	 * runs out. */
	if (!l->locked && view->node[0] && strcmp(view->node, l->node) != 0 && view->beat_before_server_start &&
	    view->heartbeat_age_ms <= l->lease_ms)
		return 0;
	if (!l->locked && (rc = try_lock(l, errmsg)) < 0)
		return rc;
	if (!l->locked) {
		/* Alive but silent for longer than the lease: free its lock. */
		if (view->node[0] && view->heartbeat_age_ms > l->lease_ms)
			end_sessions_of(l, view->node);
		return 0;
	}
	/* The lock is ours, so the last holder's lease session is gone. A
	 * commit of it that is stopped inside its fence check would make this
	 * update wait: end it and try again at the next step. */
	snprintf(took_from, took_size, "%s", view->node);
	PQclear(PQexec(l->db, "SET lock_timeout = '2s'"));
	res = query(l,
	            "UPDATE tg_lease SET node = $1, epoch = epoch + 1, since_ms = " NOW_MS ", heartbeat_ms = " NOW_MS
	            " WHERE name = 'active' RETURNING epoch, since_ms",
	            1, params, "taking the lease", &rc, errmsg);
	if (!res) {
		if (view->node[0] && strcmp(view->node, l->node) != 0)
			end_sessions_of(l, view->node);
		return rc;
	}
	if (PQntuples(res) != 1) {
		PQclear(res);
		return errmsg_set(errmsg, TG_ESTORAGE, "postgresql: the lease row is missing (taking the lease)");
	}
	l->epoch = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	view->epoch = l->epoch;
	view->since_ms = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	view->heartbeat_age_ms = 0;
	snprintf(view->node, sizeof(view->node), "%s", l->node);
	PQclear(res);
	return 1;
}

int lease_renew(struct lease *l, struct lease_view *view, char **errmsg)
{
	char epoch[32];
	const char *params[] = {epoch, l->node};
	PGresult *res;
	int rc, renewed;

	if (l->epoch <= 0)
		return TG_ESTOPPED;
	/* Our lease session is gone (a server restart, or a standby that
	 * found us silent ended it): its lock went with it. */
	if (l->db && PQstatus(l->db) == CONNECTION_OK && l->locked)
		PQclear(PQexec(l->db, "SELECT 1")); /* lets libpq notice a closed socket */
	if (!l->db || PQstatus(l->db) != CONNECTION_OK || !l->locked)
		return regain(l, view, errmsg);
	snprintf(epoch, sizeof(epoch), "%" PRId64, l->epoch);
	res = query(l,
	            "UPDATE tg_lease SET heartbeat_ms = " NOW_MS
	            " WHERE name = 'active' AND epoch = $1::int8 AND node = $2 RETURNING since_ms",
	            2, params, "renewing the lease", &rc, errmsg);
	if (!res) {
		/* The session died under the update: the next step regains. */
		if (PQstatus(l->db) != CONNECTION_OK)
			l->locked = false;
		return rc;
	}
	renewed = PQntuples(res) == 1;
	PQclear(res);
	if ((rc = read_view(l, view, errmsg)) < 0)
		return renewed ? 0 : rc;
	if (renewed)
		return 0;
	l->epoch = 0;
	return TG_ESTOPPED;
}

void lease_resign(struct lease *l)
{
	l->epoch = 0;
	unlock(l);
}
