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

#include "cli.h"
#include "config.h"
#include "daemon.h"
#include "log.h"
#include "runloop.h"

int cmd_run(const struct cli_options *opts, int argc, char **argv)
{
	struct config cf;
	struct daemon d;
	char *err = NULL;
	int rc;

	(void)argc;
	(void)argv;
	if ((rc = cli_load_config(opts, &cf)))
		return rc;
	log_setup(cf.log_level, NULL);
	runloop_block_signals();
	log_info(NULL, "tollgate %s starting (plugin ABI %d.%d, config %s)", TG_VERSION, TG_ABI_MAJOR, TG_ABI_MINOR,
	         cf.path);
	rc = daemon_open(&d, &cf, NULL, &err);
	if (rc) {
		log_error(NULL, "cannot start: %s", err ? err : "unknown error");
		free(err);
		daemon_close(&d);
		config_release(&cf);
		/* A bad key or plugin is the configuration's fault; anything else
		 * (storage, network) may pass by itself. */
		return rc == TG_EINVAL || rc == TG_ENOTFOUND || rc == TG_EKEEPA ? EXIT_CONFIG : EXIT_UNAVAILABLE;
	}
	rc = runloop_run(&d, NULL, &err);
	if (rc) {
		log_error(NULL, "%s", err ? err : "the daemon failed");
		free(err);
	}
	daemon_close(&d);
	config_release(&cf);
	log_info(NULL, "tollgate stopped");
	return rc ? EXIT_SOFTWARE : 0;
}
