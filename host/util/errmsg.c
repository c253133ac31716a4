/*
 * errmsg.c - building error messages (see errmsg.h for the rules).
 */
#include "util/errmsg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	free(*errmsg);
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

void errmsg_prefix(char **errmsg, const char *fmt, ...)
{
	char *context = NULL, *joined;
	va_list ap;

	if (!errmsg)
		return;
	va_start(ap, fmt);
	if (vasprintf(&context, fmt, ap) < 0)
		context = NULL;
	va_end(ap);
	if (!context)
		return;
	if (!*errmsg) {
		*errmsg = context;
		return;
	}
	joined = str_printf("%s%s", context, *errmsg);
	free(context);
	if (joined) {
		free(*errmsg);
		*errmsg = joined;
	}
}
