/*
 * lease.h - who is the active node: a lease in PostgreSQL for hot standby.
 *
 * Several daemons share one database; one is active. The lease is two
 * things built only on PostgreSQL's guarantees:
 *
 *  - the session-level advisory lock 'tollgate:leader', held by the active
 *    node's lease session. It dies with the session, so a killed active
 *    (kill -9, crash) frees it at once and a standby takes over without
 *    waiting for the lease to run out;
 *  - the row 'active' of tg_lease: node, epoch (the fencing token, + 1 per
 *    takeover), since_ms and heartbeat_ms (the server's clock, so the
 *    nodes' clocks never matter). The active renews the heartbeat; renewal
 *    succeeds only while the row still has its epoch.
 *
 * A standby takes over when it gets the advisory lock. When the holder is
 * alive but silent for longer than the lease (stopped, partitioned, hung),
 * the standby ends the holder's lease and lock sessions, and any of its
 * sessions stopped inside a transaction (pg_terminate_backend; sessions
 * are found by their names, "tollgate <node> ...", in pg_stat_activity), so
 * the locks come free and the takeover does not wait.
 * Every commit of the active checks the epoch inside its transaction
 * (storage_fence()), so a node that lost the lease cannot write.
 *
 * Needs: the role may call pg_terminate_backend on the other node's
 * sessions (the same role, or pg_signal_backend).
 */
#ifndef TG_HOST_LEASE_H
#define TG_HOST_LEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lease;

/* The lease as last seen. Times in Unix ms of the server's clock. */
struct lease_view {
	char node[64];         /* the active node ("" before the first one) */
	int64_t epoch;
	int64_t since_ms;      /* when it became active */
	int64_t heartbeat_age_ms;
	/* The last heartbeat is older than the server's start: the holder's
	 * lock died with the server's restart, not with the holder. */
	bool beat_before_server_start;
	/* lease_renew: this renewal re-established the lease session (after
	 * a server restart) and kept the epoch. */
	bool regained;
};

/* Connect for node (its name: [A-Za-z0-9_.-]{1,63}) and lease_ms. */
int lease_open(struct lease **out, const char *conninfo, const char *node, int64_t lease_ms, char **errmsg);
void lease_close(struct lease *l);

/* A standby's step: 1 when this node is now active (view says the new
 * epoch; *took_from gets the previous node, may be ""), 0 when another
 * node still holds the lease (view says which), < 0 when the database
 * cannot be asked. A holder whose lock died with a restart of the server
 * (its last heartbeat is older than the server's start) keeps the lease
 * until its heartbeat is older than the lease: the standby does not even
 * try the lock meanwhile, so the active can take it back (lease_renew). */
int lease_try_acquire(struct lease *l, struct lease_view *view, char *took_from, size_t took_size, char **errmsg);

/* The active's step: 0 renewed; TG_ESTOPPED when the lease has moved on
 * (view says to whom); < 0 other when the database cannot be asked (or the
 * lock is held by another session while the row still has our epoch: a
 * standby's step in between; asked again at the next heartbeat).
 * When the lease session is gone (the server restarted; or a standby ended
 * it), a new one takes the advisory lock again and renews only while the
 * row still has this node and epoch and its heartbeat is within the lease
 * (view->regained): a lease that ran out is never resumed, so a standby
 * that took over after it cannot meet this node again as active. */
int lease_renew(struct lease *l, struct lease_view *view, char **errmsg);

/* Give the lease up (an orderly stop, or it was lost): the advisory lock is
 * released, so a standby takes over at once. */
void lease_resign(struct lease *l);

#endif
