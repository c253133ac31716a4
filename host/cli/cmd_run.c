/*
 * cmd_run.c - `tollgate run`: the foreground daemon.
 *
 * Signals are blocked in every thread and taken synchronously here with
 * sigtimedwait(), so a handler never runs in the middle of a task, and the
 * main thread has one place that turns SIGTERM/SIGINT into an orderly stop.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
		rc = web_server_start(&d, &web, &err);
	if (rc == 0)
		rc = runloop_run(&d, NULL, &err);
	if (rc == TG_ESTOPPED) {
		log_info(NULL, "stopped before every task had started");
		rc = 0;
	} else if (rc) {
		log_error(NULL, "cannot start: %s", err ? err : "unknown error");
		/* A bad key, plugin or setting is the configuration's fault (no
		 * restart can mend it); anything else (storage, network, another
		 * daemon on the socket) may pass by itself. */
		exit_code = rc == TG_EINVAL || rc == TG_ENOTFOUND || rc == TG_EKEEPA ? EXIT_CONFIG : EXIT_UNAVAILABLE;
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

int cmd_run(const struct cli_options *opts, int argc, char **argv)
{
	struct config cf;
	int rc, exit_code;

	(void)argc;
	(void)argv;
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
