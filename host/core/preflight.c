/*
 * preflight.c - start-up rules across settings and the machine (preflight.h).
 */
#include "core/preflight.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "keepa/keepa.h"
#include "util/errmsg.h"

int preflight_storage(const struct config *cf, char **errmsg)
{
	struct stat st;
	char *copy, *dir;
	int rc = 0;

	if (strcmp(cf->storage_backend, "sqlite") != 0) /* PostgreSQL: storage.conninfo */
		return 0;
	if (!cf->storage_path || !cf->storage_path[0])
		return errmsg_set(errmsg, TG_EINVAL,
		                  "%s: storage.path is empty: name the database file, e.g. /var/lib/tollgate/tollgate.db",
		                  cf->path);
	if (strcmp(cf->storage_path, ":memory:") == 0)
		return 0;
	copy = strdup(cf->storage_path);
	if (!copy)
		return TG_ENOMEM;
	dir = dirname(copy);
	if (stat(dir, &st) != 0)
		rc = errmsg_set(errmsg, TG_EINVAL,
		                "%s: storage.path %s: its directory %s %s; tollgate never creates it (the package "
		                "makes /var/lib/tollgate), so that a typo cannot start an empty database: fix the path "
		                "or create the directory",
		                cf->path, cf->storage_path, dir, errno == ENOENT ? "does not exist" : strerror(errno));
	else if (!S_ISDIR(st.st_mode))
		rc = errmsg_set(errmsg, TG_EINVAL, "%s: storage.path %s: %s is not a directory", cf->path,
		                cf->storage_path, dir);
	else if (access(dir, W_OK | X_OK) != 0)
		rc = errmsg_set(errmsg, TG_EINVAL,
		                "%s: storage.path %s: this user (uid %u) cannot write in %s (%s): the database and "
		                "its journal live there",
		                cf->path, cf->storage_path, (unsigned)geteuid(), dir, strerror(errno));
	free(copy);
	return rc;
}

int preflight_check(const struct config *cf, char **errmsg)
{
	bool https = true;
	int rc;

	if ((rc = keepa_check_endpoint(cf->keepa_endpoint, &https, errmsg))) {
		char *inner = *errmsg; /* the client's rule, prefixed with the file */
		*errmsg = NULL;
		errmsg_set(errmsg, rc, "%s: %s", cf->path, inner ? inner : "keepa.endpoint is not usable");
		free(inner);
		return rc;
	}
	/* Only a plain-http (hence loopback) simulator runs accelerated
	 * minutes: against Keepa a short minute would plan refills that never
	 * come, and every call would meet a 429. */
	if (cf->tokens_minute_ms != 60000 && https)
		return errmsg_set(errmsg, TG_EINVAL,
		                  "%s: tokens.minute_ms = %d is only for a simulator on loopback (plain http); "
		                  "against %s it must be 60000, Keepa's real minute",
		                  cf->path, cf->tokens_minute_ms, cf->keepa_endpoint);
	return 0;
}

int preflight_scratch_db(char *out, size_t len, char **errmsg)
{
	const char *tmp = getenv("TMPDIR");
	char dir[4096];

	snprintf(dir, sizeof(dir), "%s/tollgate-check-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir))
		return errmsg_set(errmsg, TG_EIO, "check: cannot make a scratch directory in %s: %s",
		                  tmp && *tmp ? tmp : "/tmp", strerror(errno));
	if ((size_t)snprintf(out, len, "%s/dry.db", dir) >= len) {
		rmdir(dir);
		return errmsg_set(errmsg, TG_EIO, "check: $TMPDIR is too long");
	}
	return 0;
}

void preflight_scratch_remove(const char *path)
{
	static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
	char buf[4200];

	if (!path || !path[0])
		return;
	for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		snprintf(buf, sizeof(buf), "%s%s", path, suffix[i]);
		unlink(buf);
	}
	snprintf(buf, sizeof(buf), "%s", path);
	rmdir(dirname(buf));
}
