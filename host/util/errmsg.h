/*
 * errmsg.h - the host's one way to hand a human message back to a caller.
 *
 * Functions that fail return a negative TG_E* code and, through an optional
 * `char **errmsg` (SQLite's pzErrMsg convention), a malloc'd message.
 *
 * Rules:
 *  - errmsg may be NULL: the caller does not want a message; nothing is built.
 *  - *errmsg starts as NULL, or holds a message an earlier call set. Setting
 *    a message frees the one that was there: a message always says what
 *    failed last, and a retry loop that sets one per attempt leaks nothing.
 *  - The caller owns the message and frees it with free() (a plugin: with
 *    services->free()), whether the call returned an error or not.
 *  - Out of memory leaves *errmsg NULL; the return code still says why.
 *  - Context goes in front: errmsg_prefix(errmsg, "storage %s: ", what) turns
 *    "database is locked" into "storage commit: database is locked".
 *
 * Every host function that sets a message goes through errmsg_set() (or a
 * wrapper that adds a file:line or redacts and then calls it); tests/checksrc
 * refuses a `*errmsg = ...` assignment anywhere else in host/core.
 */
#ifndef TG_HOST_ERRMSG_H
#define TG_HOST_ERRMSG_H

#include <stdarg.h>

#include <tollgate/tollgate.h>

/* A new string, printf-style; NULL when out of memory. */
char *str_printf(const char *fmt, ...) TG_PRINTF(1, 2);

/* When errmsg is not NULL, replace *errmsg (freeing it) with a new message.
 * Returns code, so a failing path can `return errmsg_set(errmsg, TG_EINVAL, "...")`. */
int errmsg_set(char **errmsg, int code, const char *fmt, ...) TG_PRINTF(3, 4);
int errmsg_vset(char **errmsg, int code, const char *fmt, va_list ap) TG_PRINTF(3, 0);

/* Put context in front of the message in *errmsg (or make the context the
 * message when there is none). */
void errmsg_prefix(char **errmsg, const char *fmt, ...) TG_PRINTF(2, 3);

#endif
