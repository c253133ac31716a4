/*
 * pg_conn.h - what the PostgreSQL backend and the advisory locks share:
 * checking a libpq connection string, connecting with it, and turning the
 * server's answers into the host's errors.
 *
 * The connection string (storage.conninfo) is a libpq string ("host=...
 * dbname=... user=..."). It must not hold a password: libpq reads that from
 * the file named by its passfile keyword, from $PGPASSFILE or from
 * ~/.pgpass, so a password never reaches the configuration, the logs or
 * `tollgate status`. Messages never repeat the connection string.
 */
#ifndef TG_HOST_PG_CONN_H
#define TG_HOST_PG_CONN_H

#include <libpq-fe.h>

/* 0 when conninfo parses and names no password; otherwise TG_EINVAL with
 * libpq's reason (one line) in *errmsg. */
int pg_conninfo_check(const char *conninfo, char **errmsg);

/* Connect (blocking) with conninfo. The connection's application_name in
 * pg_stat_activity is the process's name ("tollgate", or with hot standby
 * "tollgate <node>"), followed by " <what>" when what is not NULL. With hot
 * standby it overrides the connection string's: a standby finds a stale
 * node's sessions by it. The client encoding is UTF8. 0 with *out, or
 * TG_ESTORAGE with the server's or libpq's reason. */
int pg_connect(const char *conninfo, const char *what, PGconn **out, char **errmsg);

/* Name this process's connections after its hot-standby node (before the
 * first connection), and the name in use. */
void pg_conn_set_node(const char *node);
const char *pg_conn_process_name(void);

/* Map a failed result (or NULL: the connection's error) to TG_ESTORAGE or
 * TG_ENOMEM with "postgresql: <server message> (<doing>)". Clears res. */
int pg_fail(PGconn *conn, PGresult *res, const char *doing, char **errmsg);

/* Run sql (no parameters, no rows wanted). 0 or pg_fail(). */
int pg_exec(PGconn *conn, const char *sql, const char *doing, char **errmsg);

/* The key of an advisory lock for name in tollgate's namespace, computed
 * by the server so every client agrees (hashtextextended, 64 bits). */
#define PG_LOCK_KEY_SQL(param) "hashtextextended('tollgate:' || " param ", 0)"

/* The advisory lock that serialises schema changes of all tollgates on a
 * database (CREATE TABLE IF NOT EXISTS is not safe against a concurrent
 * twin). Held to the end of the declaring transaction. */
#define DDL_LOCK_SQL "SELECT pg_advisory_xact_lock(" PG_LOCK_KEY_SQL("'ddl'") ")"

/* Create the host's tables when missing, in one transaction: tg_state
 * (checkpoints) and tg_lease (hot standby: one row, epoch 0 until a node
 * is first active; times the server's, in ms). */
int pg_create_host_tables(PGconn *db, char **errmsg);

#endif
