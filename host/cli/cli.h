/*
 * cli.h - the subcommands of the tollgate binary.
 */
#ifndef TG_HOST_CLI_H
#define TG_HOST_CLI_H

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

/* Load the config named by the options (and apply --plugin-dir); prints
 * the file:line error and returns EXIT_CONFIG on failure. */
int cli_load_config(const struct cli_options *opts, struct config *config);

int cmd_run(const struct cli_options *opts, int argc, char **argv);
int cmd_check(const struct cli_options *opts, int argc, char **argv);
int cmd_plugins(const struct cli_options *opts, int argc, char **argv);
int cmd_status(const struct cli_options *opts, int argc, char **argv);
int cmd_demo(const struct cli_options *opts, int argc, char **argv);
int cmd_export(const struct cli_options *opts, int argc, char **argv);

#endif
