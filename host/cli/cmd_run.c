/*
 * cmd_run.c - `tollgate run`: the foreground daemon.
 *
 * Signals are blocked in every thread and taken synchronously here with
 * sigtimedwait(), so a handler never runs in the middle of a task, and the
 * main thread has one place that turns SIGTERM/SIGINT into an orderly stop.
 */
#include <errno.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "core/config.h"
#include "core/daemon.h"
#include "core/ha.h"
#include "observe/log.h"
#include "core/runloop.h"
#include "web/web.h"
#include "util/malloc_tune.h"

/* One lifetime of the daemon, from start to stop: its exit code. With hot
 * standby (ha not NULL) this is the time the node is active. */
static int run_daemon(struct config *cf, struct ha *ha, void *ud)
{
	struct daemon d;
	struct runloop_signals signals;
	struct web_server *web = NULL;
	char *err = NULL;
	int rc, exit_code = 0;
	bool started;

	(void)ud;
	daemon_init(&d);
	if (runloop_signals_start(&signals, &d) != 0) {
		log_error(NULL, "cannot start the signal thread");
		return EXIT_SOFTWARE;
	}
	rc = ha_attach(ha, &d);
	if (rc == 0)
		rc = daemon_open(&d, cf, NULL, &err);
	if (rc == 0)
		ha_gate_keepa(ha, d.keepa);
	if (rc == 0)
		rc = web_server_start(&d, &web, &err);
	started = rc == 0;
	if (started)
		rc = runloop_run(&d, NULL, &err);
	if (rc == TG_ESTOPPED) {
		log_info(NULL, "stopped before every task had started");
		rc = 0;
	} else if (rc) {
		log_error(NULL, "%s: %s", started ? "stopping" : "cannot start", err ? err : "unknown error");
		/* Storage failing under a running daemon (its file deleted or
		 * replaced) is 74, which the unit does not restart on: a restart
		 * would create an empty database and pay for a new walk. */
		exit_code = started && rc == TG_ESTORAGE ? EXIT_IOERR : cli_exit_status(rc);
	}
	free(err);
	daemon_request_stop(&d);
	daemon_join(&d);
	web_server_stop(web);
	ha_detach(ha);
	runloop_signals_stop(&signals);
	if (atomic_load(&signals.stop_signalled))
		ha_stop_signalled(ha);
	daemon_close(&d);
	return exit_code;
}

static int run(const struct cli_options *opts, const struct cli_args *args)
{
	struct config cf;
	int rc, exit_code;

	(void)args;
	if ((rc = cli_load_config(opts, &cf)))
		return rc;
	log_setup(cf.log_level, NULL);
	malloc_tune(); /* before the first thread */
	runloop_block_signals();
	log_info(NULL, "tollgate %s starting (plugin ABI %d.%d, config %s)", TG_VERSION, TG_ABI_MAJOR, TG_ABI_MINOR,
	         cf.path);
	exit_code = cf.ha_node ? ha_run(&cf, run_daemon, NULL) : run_daemon(&cf, NULL, NULL);
	config_release(&cf);
	if (exit_code)
		return exit_code;
	log_info(NULL, "tollgate stopped");
	return 0;
}

const struct cli_command cmd_run = {
    .name = "run",
    .summary = "run the daemon in the foreground (for systemd)",
    .description = "Validates like `tollgate check`, takes a first token reading, starts every task and\n"
                   "serves status (and metrics when metrics.listen is set) until SIGTERM or SIGINT.",
    .run = run,
};
