/*
 * main.c - the tollgate command line: global options, then a subcommand.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/config.h"
#include "observe/log.h"
#include "sim/sim.h"

#ifndef TG_DEFAULT_CONFIG
#define TG_DEFAULT_CONFIG "/etc/tollgate/tollgate.cfg"
#endif

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: tollgate [--config PATH] [--plugin-dir DIR]... COMMAND [ARGS]\n"
	        "\n"
	        "Collect Keepa deal data with plugin tasks under one shared token budget.\n"
	        "\n"
	        "commands:\n"
	        "  run        run the daemon in the foreground (for systemd)\n"
	        "  check      validate the config and every enabled plugin; print what would run\n"
	        "  plugins    list installed plugins: name, version, ABI, costs, settings, path\n"
	        "  status     ask a running daemon what it is doing (--json for machines)\n"
	        "  sim        serve a simulator of the Keepa API on loopback (sim --help)\n"
	        "  demo       simulator + daemon + SQLite in one command, no Keepa key needed\n"
	        "  export     a table of the database as CSV or JSON Lines (export --help)\n"
	        "\n"
	        "options:\n"
	        "  --config PATH     configuration file (default %s, or $TOLLGATE_CONFIG)\n"
	        "  --plugin-dir DIR  load plugins from DIR instead of plugin_path (repeatable)\n"
	        "  --version         print the version and the plugin ABI\n"
	        "  --help            this text\n"
	        "\n"
	        "exit status follows sysexits(3): 0 ok, 64 usage, 69 storage unreachable (check),\n"
	        "78 configuration error.\n",
	        TG_DEFAULT_CONFIG);
}

int cli_load_config(const struct cli_options *opts, struct config *config)
{
	char *err = NULL;

	if (config_load(config, opts->config_path, &err) != 0) {
		fprintf(stderr, "tollgate: %s\n", err ? err : "cannot load the configuration");
		free(err);
		config_release(config);
		return EXIT_CONFIG;
	}
	if (opts->nplugin_dirs > 0) {
		config->nplugin_path = opts->nplugin_dirs;
		for (int i = 0; i < opts->nplugin_dirs; i++)
			config->plugin_path[i] = opts->plugin_dirs[i];
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct cli_options opts = {0};
	int i;

	opts.config_path = getenv("TOLLGATE_CONFIG") ? getenv("TOLLGATE_CONFIG") : TG_DEFAULT_CONFIG;
	opts.config_given = getenv("TOLLGATE_CONFIG") != NULL;
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--version") == 0) {
			printf("tollgate %s (plugin ABI %d.%d)\n", TG_VERSION, TG_ABI_MAJOR, TG_ABI_MINOR);
			return 0;
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			opts.config_path = argv[++i];
			opts.config_given = 1;
		} else if (strcmp(argv[i], "--plugin-dir") == 0 && i + 1 < argc) {
			if (opts.nplugin_dirs >= 8) {
				fprintf(stderr, "tollgate: at most 8 --plugin-dir\n");
				return EXIT_USAGE;
			}
			opts.plugin_dirs[opts.nplugin_dirs++] = argv[++i];
		} else {
			fprintf(stderr, "tollgate: unknown option %s\n\n", argv[i]);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	const char *cmd = argv[i];
	int sub_argc = argc - i;
	char **sub_argv = argv + i;

	if (strcmp(cmd, "run") == 0)
		return cmd_run(&opts, sub_argc, sub_argv);
	if (strcmp(cmd, "check") == 0)
		return cmd_check(&opts, sub_argc, sub_argv);
	if (strcmp(cmd, "plugins") == 0)
		return cmd_plugins(&opts, sub_argc, sub_argv);
	if (strcmp(cmd, "status") == 0)
		return cmd_status(&opts, sub_argc, sub_argv);
	if (strcmp(cmd, "demo") == 0)
		return cmd_demo(&opts, sub_argc, sub_argv);
	if (strcmp(cmd, "export") == 0)
		return cmd_export(&opts, sub_argc, sub_argv);
	if (strcmp(cmd, "sim") == 0)
		return sim_main(sub_argc, sub_argv);
	fprintf(stderr, "tollgate: unknown command \"%s\"\n\n", cmd);
	usage(stderr);
	return EXIT_USAGE;
}
