/*
 * say.c - a subcommand's own messages on stderr (cli_error, cli_warn).
 */
#include <stdarg.h>
#include <stdio.h>

#include "cli/cli.h"
#include "observe/log.h"

static void say(int priority, const char *fmt, va_list ap)
{
	char line[4096];

	vsnprintf(line, sizeof(line), fmt, ap);
	log_redact(line);
	if (log_is_journal(stderr))
		fprintf(stderr, "<%d>tollgate: %s\n", priority, line);
	else
		fprintf(stderr, "tollgate: %s\n", line);
}

void cli_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	say(3, fmt, ap);
	va_end(ap);
}

void cli_warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	say(4, fmt, ap);
	va_end(ap);
}
