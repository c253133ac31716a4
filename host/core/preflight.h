/*
 * preflight.h - the start-up rules that span settings or look at the
 * machine, which the config file's schema cannot express.
 *
 * daemon_open() applies them first, for `run` and `check` alike (check
 * opens the daemon in dry mode), so check refuses every configuration run
 * would refuse, with the same message.
 */
#ifndef TG_HOST_PREFLIGHT_H
#define TG_HOST_PREFLIGHT_H

#include <stddef.h>

struct config;

/* 0, or TG_EINVAL with a message naming the config file and the setting:
 *  - a plain-http endpoint only on loopback (the Keepa client's own rule);
 *  - tokens.minute_ms below 60000 only against such a loopback simulator. */
int preflight_check(const struct config *cf, char **errmsg);

/* Applied just before storage is opened (after the plugins are found):
 * storage.path not empty; for sqlite its directory exists and is writable
 * (tollgate never creates it: a typo must not start a new, empty database
 * that costs a re-backfill in tokens). */
int preflight_storage(const struct config *cf, char **errmsg);

/* A dry run's scratch database: a new directory under $TMPDIR (or /tmp)
 * holding "dry.db", its path in out. The plugins' init declare their
 * tables there, so check writes nothing near the real database. */
int preflight_scratch_db(char *out, size_t len, char **errmsg);
/* Remove the scratch database (and its WAL files) and its directory. */
void preflight_scratch_remove(const char *path);

#endif
