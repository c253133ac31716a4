/*
 * cmd_status.c - `tollgate status`: ask the running daemon over its socket.
 *
 * Exit status follows the monitoring-plugin convention: 0 ok, 1 warning,
 * 2 critical (including "no daemon answers"), so the command is a check as
 * it stands.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/dynbuf.h"
#include "util/errmsg.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "core/config.h"
#include "observe/status.h"

static char *read_status(const char *path, char **errmsg)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	/* A snapshot is a few KiB a task; anything past this is not one. */
	struct dynbuf buf = DYNBUF_INIT((size_t)16 << 20);
	int fd;

	/* An empty status.socket turns the server off (runloop.c): say so
	 * rather than try to connect to "". */
	if (!path || !path[0]) {
		errmsg_set(errmsg, 0, "the status socket is turned off (status.socket is empty)");
		return NULL;
	}
	if (strlen(path) >= sizeof(addr.sun_path)) {
		errmsg_set(errmsg, 0, "%s: path too long", path);
		return NULL;
	}
	memcpy(addr.sun_path, path, strlen(path) + 1); /* length checked above */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	/* A wedged daemon (stopped, stuck) still accepts connections: a check
	 * must answer CRITICAL in bounded time, not hang with it. */
	if (fd >= 0) {
		struct timeval tv = {5, 0};
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
		errmsg_set(errmsg, 0, "no daemon answers at %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	for (;;) {
		ssize_t n;
		int rc = dynbuf_reserve(&buf, 65536 < buf.max - buf.len ? 65536 : buf.max - buf.len);

		if (rc || dynbuf_room(&buf) == 0) {
			errmsg_set(errmsg, 0, "%s: %s", path,
			                     rc == TG_ENOMEM ? "out of memory" : "the answer is larger than 16 MiB");
			dynbuf_free(&buf);
			break;
		}
		n = read(fd, dynbuf_tail(&buf), dynbuf_room(&buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			errmsg_set(errmsg, 0, "%s: the daemon does not answer (%s)", path, strerror(errno));
			dynbuf_free(&buf);
			break;
		}
		if (n == 0) {
			close(fd);
			return dynbuf_take(&buf);
		}
		dynbuf_grew(&buf, (size_t)n);
	}
	close(fd);
	return NULL;
}

static void format_age(double s, char *out, size_t len)
{
	if (s < 120)
		snprintf(out, len, "%.0f s ago", s);
	else if (s < 7200)
		snprintf(out, len, "%.0f min ago", s / 60);
	else
		snprintf(out, len, "%.1f h ago", s / 3600);
}

/* Hot standby: this node's role, and who is active since when. */
static void print_ha(FILE *out, const cJSON *ha)
{
	char since[64] = "?";
	time_t t;
	struct tm tm;

	if (!ha)
		return;
	t = (time_t)(status_num(ha, "active_since_ms") / 1000);
	if (t > 0 && gmtime_r(&t, &tm))
		strftime(since, sizeof(since), "%Y-%m-%d %H:%M:%S UTC", &tm);
	fprintf(out, "ha: %s (node %s); active: %s since %s, epoch %.0f, heartbeat %.1f s ago (lease %.0f s), "
	        "takeovers here %.0f\n",
	        status_str(ha, "role"), status_str(ha, "node"),
	        status_str(ha, "active_node")[0] ? status_str(ha, "active_node") : "none", since, status_num(ha, "epoch"),
	        status_num(ha, "lease_age_s"), status_num(ha, "lease_s"), status_num(ha, "takeovers"));
}

void status_print_human(FILE *out, const cJSON *snap);
void status_print_human(FILE *out, const cJSON *snap)
{
	const cJSON *tok = cJSON_GetObjectItemCaseSensitive(snap, "tokens");
	const cJSON *t, *p;
	double up = status_num(snap, "uptime_s");

	fprintf(out, "tollgate %s (pid %.0f), up %ldh%02ldm, verdict: %s\n", status_str(snap, "version"), status_num(snap, "pid"),
	        (long)up / 3600, ((long)up % 3600) / 60, status_str(snap, "verdict"));
	if (status_str(snap, "reason")[0])
		fprintf(out, "  %s\n", status_str(snap, "reason"));
	print_ha(out, cJSON_GetObjectItemCaseSensitive(snap, "ha"));
	fprintf(out,
	        "tokens: estimate %.0f (last reading %.0f, %.0f s ago), rate %.1f/min, cap %.0f, utilization %.2f "
	        "(1 h), our 429s %.0f, deepest %.0f, others %.1f/min, wasted %.0f, policy %s\n",
	        status_num(tok, "estimate"), status_num(tok, "last_reading"), status_num(tok, "last_reading_age_s"), status_num(tok, "rate_per_min"),
	        status_num(tok, "cap"), status_num(tok, "utilization_1h"), status_num(tok, "our_429"), status_num(tok, "deepest_deficit"),
	        status_num(tok, "outside_per_min"), status_num(tok, "wasted"), status_str(tok, "policy"));
	fprintf(out, "plugins:");
	cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(snap, "plugins"))
		fprintf(out, " %s %s", status_str(p, "name"), status_str(p, "version"));
	fprintf(out, "\n\n%-12s %-19s %-20s %-13s %8s %-14s %-13s %s\n", "TASK", "STATE", "PROGRESS", "LAST PROGRESS",
	        "TOKENS", "CALLS ok/429/e", "WAIT p50/max", "VERDICT");
	cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(snap, "tasks"))
	{
		const cJSON *w = cJSON_GetObjectItemCaseSensitive(t, "tokens");
		const cJSON *h = cJSON_GetObjectItemCaseSensitive(t, "waiting");
		char progress[64], age[32], calls[48] = "-", wait[32] = "-";

		if (status_num(t, "progress_total") >= 0)
			snprintf(progress, sizeof(progress), "%.0f/%.0f %s", status_num(t, "progress_done"),
			         status_num(t, "progress_total"), status_str(t, "progress_unit"));
		else
			snprintf(progress, sizeof(progress), "%.0f %s", status_num(t, "progress_done"), status_str(t, "progress_unit"));
		format_age(status_num(t, "last_progress_age_s"), age, sizeof(age));
		if (w) {
			snprintf(calls, sizeof(calls), "%.0f/%.0f/%.0f", status_num(w, "calls_ok"), status_num(w, "calls_429"),
			         status_num(w, "calls_error"));
			snprintf(wait, sizeof(wait), "%.0fs/%.0fs", status_num(w, "wait_p50_s"), status_num(w, "wait_max_s"));
		}
		fprintf(out, "%-12s %-19s %-20s %-13s %8.0f %-14s %-13s %s\n", status_str(t, "name"), status_str(t, "state"), progress,
		        age, w ? status_num(w, "consumed") : 0, calls, wait, status_str(t, "verdict"));
		if (h)
			fprintf(out, "%12s waiting for tokens: %s costs %.0f, target %.0f, estimate %.0f, ETA %.0f s "
			             "(waited %.0f s)\n",
			        "", status_str(h, "kind"), status_num(h, "cost"), status_num(h, "target"), status_num(h, "estimate"), status_num(h, "eta_s"),
			        status_num(h, "waited_s"));
		if (status_str(t, "reason")[0])
			fprintf(out, "%12s %s\n", "", status_str(t, "reason"));
		if (status_str(t, "last_error")[0])
			fprintf(out, "%12s last error: %s\n", "", status_str(t, "last_error"));
	}
}

static int status(const struct cli_options *opts, const struct cli_args *args)
{
	struct config cf;
	const char *socket_path = cli_value(args, "socket");
	int json = cli_flag(args, "json"), rc, have_config = 0;
	char *text, *err = NULL;
	cJSON *snap;

	if (!socket_path) {
		if ((rc = cli_load_config(opts, &cf)))
			return STATUS_CRITICAL;
		have_config = 1;
		socket_path = cf.status_socket;
	}
	text = read_status(socket_path, &err);
	if (have_config)
		config_release(&cf);
	if (!text) {
		if (json)
			printf("{\"verdict\":\"critical\",\"reason\":\"%s\"}\n", err ? "no daemon answers" : "");
		fprintf(stderr, "tollgate status: CRITICAL: %s\n", err ? err : "no answer");
		free(err);
		return STATUS_CRITICAL;
	}
	snap = cJSON_Parse(text);
	if (!snap) {
		fprintf(stderr, "tollgate status: CRITICAL: the daemon's answer is not JSON\n");
		free(text);
		return STATUS_CRITICAL;
	}
	if (json)
		fputs(text, stdout);
	else
		status_print_human(stdout, snap);
	rc = (int)status_num(snap, "exit_status");
	cJSON_Delete(snap);
	free(text);
	return rc >= 0 && rc <= 2 ? rc : STATUS_CRITICAL;
}

static const struct cli_opt status_opts[] = {
    {"json", CLI_FLAG, NULL, 0, 0, "print the daemon's snapshot as one JSON document (errors too)", NULL},
    {"socket", CLI_STRING, "PATH", 0, 0, "ask the daemon at PATH instead of the config's status.socket", "file"},
};

const struct cli_command cmd_status = {
    .name = "status",
    .summary = "ask the running daemon what it is doing (a monitoring-plugin check)",
    .description = "One line `TOLLGATE OK|WARNING|CRITICAL|UNKNOWN - ...` with perfdata, then the details.\n"
                   "Exit status 0 ok, 1 warning, 2 critical, 3 unknown (the check itself could not run).",
    .opts = status_opts,
    .nopts = (int)(sizeof(status_opts) / sizeof(status_opts[0])),
    .run = status,
};
