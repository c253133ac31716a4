/*
 * db_guard.h - notice when the database file is deleted or replaced under a
 * running daemon.
 *
 * SQLite keeps writing to the file it opened: deleted, it writes to an
 * inode nobody will ever see again (every row lost at stop); replaced, it
 * writes to the old one while readers see the new one. Either way the
 * token-paid data goes nowhere, and status would still say ok. The main
 * loop asks every tick whether storage.path still names the file opened
 * at start-up, and stops the daemon with a clear error when it does not.
 */
#ifndef TG_HOST_DB_GUARD_H
#define TG_HOST_DB_GUARD_H

#include <stdbool.h>
#include <sys/types.h>

struct config;

struct db_guard {
	bool armed;
	dev_t dev;
	ino_t ino;
	const char *path;
};

/* Remember which file storage.path names now (sqlite files only; nothing
 * to guard for :memory: or other backends). Call after storage is open. */
void db_guard_arm(struct db_guard *g, const struct config *cf);

/* 0 while storage.path still names that file; else TG_ESTORAGE and a
 * message saying what happened and what to do. */
int db_guard_check(const struct db_guard *g, char **errmsg);

#endif
