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

/* Connect (blocking) with conninfo; role names this connection for
 * pg_stat_activity ("tollgate" unless conninfo sets application_name).
 * The client encoding is UTF8. 0 with *out, or TG_ESTORAGE with the
 * server's or libpq's reason. */
int pg_connect(const char *conninfo, const char *role, PGconn **out, char **errmsg);

/* Map a failed result (or NULL: the connection's error) to TG_ESTORAGE or
 * TG_ENOMEM with "postgresql: <server message> (<doing>)". Clears res. */
int pg_fail(PGconn *conn, PGresult *res, const char *doing, char **errmsg);

/* Run sql (no parameters, no rows wanted). 0 or pg_fail(). */
int pg_exec(PGconn *conn, const char *sql, const char *doing, char **errmsg);

/* The key of an advisory lock for name in tollgate's namespace, computed
 * by the server so every client agrees (hashtextextended, 64 bits). */
#define PG_LOCK_KEY_SQL(param) "hashtextextended('tollgate:' || " param ", 0)"

#endif
