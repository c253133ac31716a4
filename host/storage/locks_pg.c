/*
 * locks_pg.c - named locks as PostgreSQL advisory locks (see locks_pg.h).
 */
#include "storage/locks_pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/pg_conn.h"
#include "util/errmsg.h"

/* A held lock: its session, and the process that opened it (a forked
 * child must not close its parent's session: that would unlock it). */
struct held {
	PGconn *c;
	pid_t pid;
};

struct locks_pg {
	char *conninfo;
	PGconn *spare; /* a connection holding nothing, for the next try */
	pid_t spare_pid;
};

/* The spare connection, connecting when there is none (or when it
 * belongs to the parent of a fork). */
static int spare_get(struct locks_pg *p, char **errmsg)
{
	if (p->spare && p->spare_pid != getpid())
		p->spare = NULL; /* the parent's session: not ours to close */
	if (p->spare && PQstatus(p->spare) != CONNECTION_OK) {
		PQfinish(p->spare);
		p->spare = NULL;
	}
	if (p->spare)
		return 0;
	p->spare_pid = getpid();
	return pg_connect(p->conninfo, "lock", &p->spare, errmsg);
}

int locks_pg_new(struct locks_pg **out, const char *conninfo, char **errmsg)
{
	struct locks_pg *p;
	int rc;

	*out = NULL;
	rc = pg_conninfo_check(conninfo, errmsg);
	if (rc < 0)
		return rc;
	p = calloc(1, sizeof(*p));
	if (!p || !(p->conninfo = strdup(conninfo))) {
		free(p);
		return errmsg_set(errmsg, TG_ENOMEM, "out of memory");
	}
	rc = spare_get(p, errmsg);
	if (rc < 0) {
		locks_pg_free(p);
		return rc;
	}
	*out = p;
	return 0;
}

void locks_pg_free(struct locks_pg *p)
{
	if (!p)
		return;
	if (p->spare && p->spare_pid == getpid())
		PQfinish(p->spare);
	free(p->conninfo);
	free(p);
}

int locks_pg_try(struct locks_pg *p, const char *name, const char *holder, void **held, char **errmsg)
{
	const char *params[] = {name};
	char app[128 + 64 + 32];
	const char *app_params[] = {app};
	struct held *h;
	PGresult *res;
	int rc;

	*held = NULL;
	rc = spare_get(p, errmsg);
	if (rc < 0)
		return rc;
	res = PQexecParams(p->spare, "SELECT pg_try_advisory_lock(" PG_LOCK_KEY_SQL("$1") ")", 1, NULL, params,
	                   NULL, NULL, 0);
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		return pg_fail(p->spare, res, "taking an advisory lock", errmsg);
	if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
		PQclear(res);
		return TG_EBUSY;
	}
	PQclear(res);
	h = malloc(sizeof(*h));
	if (!h) {
		/* Closing the session gives the lock back. */
		PQfinish(p->spare);
		p->spare = NULL;
		return errmsg_set(errmsg, TG_ENOMEM, "out of memory");
	}
	/* For humans reading pg_stat_activity; a failure changes nothing. */
	snprintf(app, sizeof(app), "%s lock %s by %s", pg_conn_process_name(), name, holder);
	PQclear(PQexecParams(p->spare, "SELECT set_config('application_name', $1, false)", 1, NULL, app_params,
	                     NULL, NULL, 0));
	*h = (struct held){.c = p->spare, .pid = p->spare_pid};
	*held = h;
	p->spare = NULL;
	return 0;
}

void locks_pg_release(struct locks_pg *p, void *held)
{
	struct held *h = held;
	PGconn *c;
	PGresult *res;

	if (!h)
		return;
	c = h->c;
	if (h->pid != getpid()) {
		free(h);
		return;
	}
	free(h);
	/* Unlock explicitly, so a waiter's next try succeeds at once rather
	 * than when the server has noticed the closed session. The session
	 * holds this one lock only. */
	res = PQexec(c, "SELECT pg_advisory_unlock_all()");
	if (res && PQresultStatus(res) == PGRES_TUPLES_OK && !p->spare && PQstatus(c) == CONNECTION_OK) {
		p->spare = c;
		p->spare_pid = getpid();
		c = NULL;
	}
	PQclear(res);
	if (c)
		PQfinish(c); /* the server drops the session and its lock */
}
