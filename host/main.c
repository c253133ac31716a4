/*
 * main.c - the tollgate command line: dispatches to the subcommands.
 */
#include <stdio.h>
#include <string.h>

#include "log.h"

static void usage(FILE *out)
{
	fprintf(out, "usage: tollgate [--config PATH] COMMAND [ARGS]\n"
	             "       tollgate --version | --help\n");
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--version") == 0) {
		printf("tollgate %s (plugin ABI %d.%d)\n", TG_VERSION, TG_ABI_MAJOR, TG_ABI_MINOR);
		return 0;
	}
	usage(argc > 1 && strcmp(argv[1], "--help") == 0 ? stdout : stderr);
	return argc > 1 && strcmp(argv[1], "--help") == 0 ? 0 : 64;
}
