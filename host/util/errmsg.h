/*
 * errmsg.h - the host's one way to hand a human message back to a caller.
 *
 * Functions that fail return a negative TG_E* code and, through an optional
 * `char **errmsg` (SQLite's pzErrMsg convention), a malloc'd message the
 * caller frees. These helpers build such messages.
 */
#ifndef TG_HOST_ERRMSG_H
#define TG_HOST_ERRMSG_H

#include <stdarg.h>

#include <tollgate/tollgate.h>

/* A new string, printf-style; NULL when out of memory. */
char *str_printf(const char *fmt, ...) TG_PRINTF(1, 2);

/* When errmsg is not NULL, store a new message in *errmsg (overwriting the
 * pointer without freeing it: callers start from NULL). Returns code, so a
 * failing path can `return errmsg_set(errmsg, TG_EINVAL, "...")`. */
int errmsg_set(char **errmsg, int code, const char *fmt, ...) TG_PRINTF(3, 4);
int errmsg_vset(char **errmsg, int code, const char *fmt, va_list ap) TG_PRINTF(3, 0);

#endif
