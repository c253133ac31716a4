/*
 * cli.h - the subcommands of the tollgate binary.
 */
#ifndef TG_HOST_CLI_H
#define TG_HOST_CLI_H

#include <stdio.h>

/* sysexits.h values, spelled here so every command uses the same. */
#define EXIT_USAGE 64
#define EXIT_DATAERR 65
#define EXIT_UNAVAILABLE 69
#define EXIT_SOFTWARE 70
#define EXIT_IOERR 74
#define EXIT_CONFIG 78

struct cli_options {
	const char *config_path;
	int config_given; /* --config or $TOLLGATE_CONFIG was used */
	const char *plugin_dirs[8]; /* --plugin-dir: replaces plugin_path */
	int nplugin_dirs;
};

struct config;

/* A command's own message on stderr, "tollgate: ..." - with the journal's
 * priority prefix (<3> error, <4> warning, <6> info) when stderr is the
 * journal, so `journalctl -p err` shows why `tollgate check` refused a
 * start. The Keepa key is masked as in every log line. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Load the config named by the options (and apply --plugin-dir); prints
 * the file:line error and returns EXIT_CONFIG on failure. */
int cli_load_config(const struct cli_options *opts, struct config *config);

/* The exit status for a TG_E* code of a failed start: 78 when the cause is
 * the configuration (a bad setting, key, plugin or init refusing its
 * settings), 69 when a service is unavailable (storage, network), 70 else. */
int cli_exit_status(int rc);

/* `check --print`: the effective configuration of an opened (dry) daemon,
 * defaults and plugin setting defaults filled in, in libconfig syntax. */
struct daemon;
void cli_print_config(FILE *out, const struct config *cf, const struct daemon *d);

/* The subcommands, each declared (options, help, handler) in its own file
 * and listed in main.c's table (cli/args.h). */
struct cli_command;
extern const struct cli_command cmd_run;
extern const struct cli_command cmd_check;
extern const struct cli_command cmd_plugins;
extern const struct cli_command cmd_status;
extern const struct cli_command cmd_demo;
extern const struct cli_command cmd_sim;
extern const struct cli_command cmd_completion;

/* `tollgate export` (cmd_export.c) keeps its own parser; main.c declares its
 * options in the table and hands them on. */
int cmd_export(const struct cli_options *opts, int argc, char **argv);

#endif
