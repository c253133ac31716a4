/*
 * args.h - the one argument parser of the tollgate binary, driven by a table.
 *
 * Every subcommand declares its options in a struct cli_command (name,
 * value or flag, integer range, help, completion hint). The same table
 * gives the parser, each subcommand's --help and the bash completion
 * script, so the three cannot disagree.
 *
 * Global options (--config, --plugin-dir, --help, --version) are accepted
 * anywhere: `tollgate check --config F` and `tollgate --config F check`
 * mean the same. `--name=value` and `--name value` both work. An unknown
 * option, a missing value or a value out of range is a usage error (64)
 * that names the option; `--help` prints and exits 0 without side effects.
 */
#ifndef TG_HOST_CLI_ARGS_H
#define TG_HOST_CLI_ARGS_H

#include <stdbool.h>
#include <stdio.h>

#include "cli/cli.h"

#define CLI_MAX_OPTS 24
#define CLI_MAX_ARGS 4
#define CLI_MAX_GIVEN 64

enum cli_opt_type {
	CLI_FLAG,   /* no value */
	CLI_STRING, /* any value */
	CLI_INT,    /* an integer in [min, max] */
};

struct cli_opt {
	const char *name;    /* without the leading "--" */
	enum cli_opt_type type;
	const char *metavar; /* for help: "PATH", "N" */
	long long min, max;  /* CLI_INT */
	const char *help;
	/* Bash completion of the value: "file", "dir", or a list of words
	 * separated by spaces; NULL offers nothing. */
	const char *complete;
};

struct cli_args;

struct cli_command {
	const char *name;
	const char *summary;     /* one line for `tollgate --help` */
	const char *description; /* paragraph for `tollgate NAME --help` (may be NULL) */
	const struct cli_opt *opts;
	int nopts;
	/* Positional arguments: at most max_args, described by args_metavar. */
	const char *args_metavar;
	int max_args;
	const char *args_complete; /* bash completion words for them */
	int (*run)(const struct cli_options *global, const struct cli_args *args);
};

struct cli_args {
	const struct cli_command *cmd;
	const char *value[CLI_MAX_OPTS]; /* last value given (flags: "1"), or NULL */
	long long number[CLI_MAX_OPTS];  /* CLI_INT, parsed */
	int count[CLI_MAX_OPTS];
	const char *arg[CLI_MAX_ARGS];
	int nargs;
	/* Every command option as given, in order, repeats included: for the
	 * commands that hand their options on to a parser of their own (sim,
	 * export) once this one has checked them. */
	const struct cli_opt *given[CLI_MAX_GIVEN];
	const char *given_value[CLI_MAX_GIVEN]; /* NULL for a flag */
	int ngiven;
};

/* The subcommands in the order `tollgate --help` lists them. */
extern const struct cli_command *const cli_commands[];
extern const int cli_ncommands;

/* Parse argv against table. Returns -1 when a command should run (global
 * and args are filled), else the exit status: 0 after printing help or the
 * version to out, EXIT_USAGE after a message to err. */
int cli_parse(const struct cli_command *const *table, int ntable, int argc, char **argv,
              struct cli_options *global, struct cli_args *args, FILE *out, FILE *err);

/* The value of option name of the parsed command (NULL when not given). */
const char *cli_value(const struct cli_args *args, const char *name);
bool cli_flag(const struct cli_args *args, const char *name);
long long cli_number(const struct cli_args *args, const char *name, long long fallback);

/* `tollgate --help` and `tollgate NAME --help`. */
void cli_usage(FILE *out, const struct cli_command *const *table, int ntable);
void cli_command_help(FILE *out, const struct cli_command *cmd);

/* argv for a command's own parser: argv0, then every option as given
 * ("--name" and its value), then the positional arguments. out holds at
 * least 2 * CLI_MAX_GIVEN + CLI_MAX_ARGS + 2 pointers; returns argc. */
int cli_handed_on(const struct cli_args *args, const char *argv0, char **out);

/* A bash completion script for the table (tollgate completion bash). */
void cli_print_bash_completion(FILE *out, const struct cli_command *const *table, int ntable);

#endif
