/*
 * main.c - the tollgate command line: the table of subcommands, then the
 * one parser (cli/args.c) and the chosen handler.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "core/config.h"
#include "sim/sim.h"
#include "worker/worker.h"

#ifndef TG_DEFAULT_CONFIG
#define TG_DEFAULT_CONFIG "/etc/tollgate/tollgate.cfg"
#endif

/* The order `tollgate --help` lists them in. */
static const struct cli_command export_command;
const struct cli_command *const cli_commands[] = {
    &cmd_run, &cmd_check, &cmd_plugins, &cmd_status, &export_command, &cmd_sim, &cmd_demo, &cmd_completion,
};
const int cli_ncommands = (int)(sizeof(cli_commands) / sizeof(cli_commands[0]));

int cli_load_config(const struct cli_options *opts, struct config *config)
{
	char *err = NULL;

	if (config_load(config, opts->config_path, &err) != 0) {
		cli_error("%s", err ? err : "cannot load the configuration");
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

int cli_exit_status(int rc)
{
	switch (rc) {
	case 0: return 0;
	/* The configuration's fault: no restart can mend it (systemd's
	 * RestartPreventExitStatus=78). */
	case TG_EINVAL:
	case TG_ETYPE:
	case TG_ENOTFOUND:
	case TG_EKEEPA:
	case TG_EOVERSIZE:
	case TG_ENOTSUP: return EXIT_CONFIG;
	/* May pass by itself: storage, network, a busy socket. */
	case TG_EIO:
	case TG_ENETWORK:
	case TG_ESTORAGE:
	case TG_ETIMEDOUT:
	case TG_EBUSY: return EXIT_UNAVAILABLE;
	default: return EXIT_SOFTWARE;
	}
}

/* ------------------------------------------------------------ sim */

/* The simulator keeps its own option parser (host/sim/sim_main.c); this
 * table declares the same options for the parser, help and completion, and
 * hands them on as given. tests/e2e/test_args.py starts the
 * simulator with every option of this table. */
static const struct cli_opt sim_opts[] = {
    {"port", CLI_INT, "PORT", 0, 65535, "port, 0 picks a free one (default 0); the URL is printed", NULL},
    {"key", CLI_STRING, "KEY", 0, 0, "the accepted access key (default simkey)", NULL},
    {"rate", CLI_INT, "N", 0, 10000000, "tokens per minute (default 20)", NULL},
    {"minute-ms", CLI_INT, "MS", 1, 86400000, "real ms per Keepa minute (default 60000; 200 = 300x faster)", NULL},
    {"cap", CLI_INT, "N", 1, 1000000000, "bucket cap (default 60 x rate)", NULL},
    {"start-tokens", CLI_INT, "N", -1000000000, 1000000000, "initial balance (default: the cap)", NULL},
    {"seed", CLI_INT, "N", 0, 9223372036854775807LL, "catalog and fault seed (default 1)", NULL},
    {"products", CLI_INT, "N", 1, 2000000, "catalog size (default 2000)", NULL},
    {"history-days", CLI_INT, "N", 1, 3650, "depth of the price histories (default 365)", NULL},
    {"start-unix-ms", CLI_INT, "MS", 1, 4611686018427387903LL, "virtual start time (default: now, floored to a minute)", NULL},
    {"p500", CLI_STRING, "P", 0, 0, "probability of an HTTP 500", NULL},
    {"phang", CLI_STRING, "P", 0, 0, "probability a request hangs (for --hang-ms, default 120000)", NULL},
    {"pgarbage", CLI_STRING, "P", 0, 0, "probability of a truncated body (charged)", NULL},
    {"perror", CLI_STRING, "P", 0, 0, "probability of a 200 with an in-body error", NULL},
    {"latency-ms", CLI_INT, "MS", 0, 600000, "added latency per answer", NULL},
    {"hang-ms", CLI_INT, "MS", 0, 3600000, "how long a hanging request hangs", NULL},
    {"deal-cache-s", CLI_INT, "S", 0, 86400, "deal-query cache window, virtual seconds (default 120; 0 none)", NULL},
    {"deal-age", CLI_STRING, "WHAT", 0, 0, "sortType 1 orders by creation (default) or update", NULL},
};

static int run_sim(const struct cli_options *global, const struct cli_args *args)
{
	char *argv[2 * CLI_MAX_GIVEN + CLI_MAX_ARGS + 2];

	(void)global;
	return sim_main(cli_handed_on(args, "sim", argv), argv);
}

const struct cli_command cmd_sim = {
    .name = "sim",
    .summary = "serve a simulator of the Keepa API on 127.0.0.1",
    .description = "Keepa's /token, /deal, /product and /seller with the documented token rules, for tests\n"
                   "and plugin authors; ground truth under /_sim/. Runs until SIGTERM or SIGINT.",
    .opts = sim_opts,
    .nopts = (int)(sizeof(sim_opts) / sizeof(sim_opts[0])),
    .run = run_sim,
};

/* ------------------------------------------------------------ export */

/* `tollgate export` (cmd_export.c) parses its own options too: declared
 * here for the parser, help and completion, handed on as given. */
static const struct cli_opt export_opts[] = {
    {"table", CLI_STRING, "NAME", 0, 0, "the table (default deals)", NULL},
    {"format", CLI_STRING, "F", 0, 0, "csv (RFC 4180, a header line) or jsonl (one JSON object a line); default csv",
     "csv jsonl"},
    {"where", CLI_STRING, "EXPR", 0, 0, "keep rows where COLUMN OP VALUE holds (OP = != < <= > >=); repeatable", NULL},
    {"search", CLI_STRING, "TEXT", 0, 0, "keep rows whose title contains TEXT (ASCII case ignored)", NULL},
    {"sort", CLI_STRING, "[-]COL", 0, 0, "order by COL (- descending); default the table's key", NULL},
    {"limit", CLI_INT, "N", 0, 1000000000, "at most N rows", NULL},
};

static int run_export(const struct cli_options *global, const struct cli_args *args)
{
	char *argv[2 * CLI_MAX_GIVEN + CLI_MAX_ARGS + 2];

	return cmd_export(global, cli_handed_on(args, "export", argv), argv);
}

static const struct cli_command export_command = {
    .name = "export",
    .summary = "a table of the database as CSV or JSON Lines on stdout",
    .description = "Exit status: 0 ok, 64 usage, 65 a bad filter, 66 no database, 74 a write failed,\n"
                   "78 configuration error.",
    .opts = export_opts,
    .nopts = (int)(sizeof(export_opts) / sizeof(export_opts[0])),
    .run = run_export,
};

/* ------------------------------------------------------------ completion */

static int run_completion(const struct cli_options *global, const struct cli_args *args)
{
	(void)global;
	if (args->nargs > 0 && strcmp(args->arg[0], "bash") != 0) {
		cli_error("completion: only bash is supported, not \"%s\"", args->arg[0]);
		return EXIT_USAGE;
	}
	cli_print_bash_completion(stdout, cli_commands, cli_ncommands);
	return 0;
}

const struct cli_command cmd_completion = {
    .name = "completion",
    .summary = "print a bash completion script (the package installs it)",
    .args_metavar = "bash",
    .max_args = 1,
    .args_complete = "bash",
    .run = run_completion,
};

int main(int argc, char **argv)
{
	struct cli_options global = {0};
	struct cli_args args;
	int rc;

	/* The hidden subcommand the daemon starts each task's worker with
	 * (host/worker/PROTOCOL.md): not a user's command, so not in the table. */
	if (argc > 1 && strcmp(argv[1], "worker") == 0)
		return worker_main(argc - 1, argv + 1);
	global.config_path = getenv("TOLLGATE_CONFIG") ? getenv("TOLLGATE_CONFIG") : TG_DEFAULT_CONFIG;
	global.config_given = getenv("TOLLGATE_CONFIG") != NULL;
	rc = cli_parse(cli_commands, cli_ncommands, argc, argv, &global, &args, stdout, stderr);
	if (rc >= 0)
		return rc;
	return args.cmd->run(&global, &args);
}
