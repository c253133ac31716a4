/*
 * errmsg.c - building error messages (see errmsg.h).
 */
#include "util/errmsg.h"

#include <stdio.h>
#include <stdlib.h>

char *str_printf(const char *fmt, ...)
{
	va_list ap;
	char *out = NULL;

	va_start(ap, fmt);
	if (vasprintf(&out, fmt, ap) < 0)
		out = NULL;
	va_end(ap);
	return out;
}

int errmsg_vset(char **errmsg, int code, const char *fmt, va_list ap)
{
	char *msg = NULL;

	if (!errmsg)
		return code;
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	*errmsg = msg;
	return code;
}

int errmsg_set(char **errmsg, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	errmsg_vset(errmsg, code, fmt, ap);
	va_end(ap);
	return code;
}
