/*
 * locks_pg.h - named locks as PostgreSQL advisory locks, for daemons whose
 * storage is PostgreSQL (so two daemons on two hosts exclude each other
 * through the database they share).
 *
 * Each held lock is a session-level advisory lock on a connection of its
 * own, as each flock is on a descriptor of its own: releasing one is
 * closing its session's lock, and a holder that dies (SIGKILL, power loss)
 * loses its session and so the lock - the server notices a dead client
 * when its socket closes, or after the TCP keepalive time when the host
 * vanished. The key is hashtextextended('tollgate:' || name) in the
 * database of the connection string; the session's application_name says
 * "tollgate[ <node>] lock NAME by HOLDER" in pg_stat_activity (so a
 * standby can end a stale node's locks, storage/lease.h).
 *
 * A free connection is kept for the next attempt, so a waiter polling
 * every 50 ms does not connect each time. Not fork-safe: a child forgets
 * its parent's spare connection rather than close it.
 *
 * What PostgreSQL does not give: pg_try_advisory_lock does not queue, so
 * between processes the lock goes to whichever poller asks first after a
 * release (inside one process, locks.c still serves waiters in order).
 */
#ifndef TG_HOST_LOCKS_PG_H
#define TG_HOST_LOCKS_PG_H

struct locks_pg;

/* Prepare PostgreSQL locks for conninfo: connects once to check it. */
int locks_pg_new(struct locks_pg **out, const char *conninfo, char **errmsg);
void locks_pg_free(struct locks_pg *p);

/* Try once: 0 with *held (the session holding the lock), TG_EBUSY when
 * another session holds it, TG_ESTORAGE when the server cannot be asked. */
int locks_pg_try(struct locks_pg *p, const char *name, const char *holder, void **held, char **errmsg);
/* Release a lock taken by locks_pg_try(). */
void locks_pg_release(struct locks_pg *p, void *held);

#endif
