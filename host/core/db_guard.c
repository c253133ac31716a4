/*
 * db_guard.c - the database file still being the one opened (db_guard.h).
 */
#include "core/db_guard.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "core/config.h"
#include "util/errmsg.h"

void db_guard_arm(struct db_guard *g, const struct config *cf)
{
	struct stat st;

	memset(g, 0, sizeof(*g));
	if (strcmp(cf->storage_backend, "sqlite") != 0 || strcmp(cf->storage_path, ":memory:") == 0 ||
	    stat(cf->storage_path, &st) != 0)
		return;
	g->armed = true;
	g->dev = st.st_dev;
	g->ino = st.st_ino;
	g->path = cf->storage_path;
}

int db_guard_check(const struct db_guard *g, char **errmsg)
{
	struct stat st;

	if (!g->armed)
		return 0;
	if (stat(g->path, &st) != 0) {
		if (errno != ENOENT)
			return 0; /* e.g. EACCES on a parent: not evidence of loss */
		return errmsg_set(errmsg, TG_ESTORAGE,
		                  "the database %s was deleted while the daemon ran: stopping, since every row "
		                  "written now would be lost. Restore it from a backup and start again (starting "
		                  "without it makes a new, empty database and a walk paid in tokens)",
		                  g->path);
	}
	if (st.st_dev != g->dev || st.st_ino != g->ino)
		return errmsg_set(errmsg, TG_ESTORAGE,
		                  "the database %s was replaced by another file while the daemon ran: stopping, "
		                  "since rows would go to the old file. Start again to use the new one",
		                  g->path);
	return 0;
}
