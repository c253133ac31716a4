/*
 * cmd_status.c - `tollgate status`: ask the running daemon over its socket.
 *
 * It follows the monitoring-plugin convention, so it is a Nagios/Icinga
 * check as it stands: the first stdout line is "TOLLGATE OK - summary |
 * perfdata", and the exit status is 0 ok, 1 warning, 2 critical (including
 * "no daemon answers"), 3 unknown (the check itself could not run: the
 * config unreadable, no permission on the socket, a garbled answer).
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
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
#include "observe/watch.h"

static char *read_status(const char *path, char **errmsg, int *error)
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
		*error = errno;
		if (errno == EACCES || errno == EPERM)
			errmsg_set(errmsg, 0, "permission denied on %s: only root and members of group tollgate may ask "
			           "(sudo adduser $USER tollgate, then log in again)",
			           path);
		else
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
			*error = errno;
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
	/* Up to the year 9999: gmtime_r's tm_year stays an int. */
	t = (time_t)(status_whole(ha, "active_since_ms", 0, 253402300799000LL) / 1000);
	if (t > 0 && gmtime_r(&t, &tm))
		strftime(since, sizeof(since), "%Y-%m-%d %H:%M:%S UTC", &tm);
	fprintf(out, "ha: %s (node %s); active: %s since %s, epoch %.0f, heartbeat %.1f s ago (lease %.0f s), "
	        "takeovers here %.0f\n",
	        status_str(ha, "role"), status_str(ha, "node"),
	        status_str(ha, "active_node")[0] ? status_str(ha, "active_node") : "none", since, status_num(ha, "epoch"),
	        status_num(ha, "lease_age_s"), status_num(ha, "lease_s"), status_num(ha, "takeovers"));
}

/* The Keepa client's counts: every request by what it ended as. */
static void status_print_keepa(FILE *out, const cJSON *k)
{
	const cJSON *by = cJSON_GetObjectItemCaseSensitive(k, "attempts_by_outcome");

	if (!k)
		return;
	fprintf(out,
	        "keepa: %.0f requests: ok %.0f, 429 %.0f, 4xx %.0f, 5xx %.0f, garbage %.0f, in-body errors %.0f, "
	        "network %.0f, other %.0f, stopped %.0f; retries %.0f, calls %.0f ok / %.0f failed (%.0f gave up)\n",
	        status_num(k, "attempts"), status_num(by, "ok"), status_num(by, "429"), status_num(by, "4xx"),
	        status_num(by, "5xx"), status_num(by, "garbage"), status_num(by, "keepa_error"), status_num(by, "network"),
	        status_num(by, "other"), status_num(by, "stopped"), status_num(k, "retries"), status_num(k, "calls_ok"),
	        status_num(k, "calls_failed"), status_num(k, "gave_up"));
}

void status_print_human(FILE *out, const cJSON *snap);
void status_print_human(FILE *out, const cJSON *snap)
{
	const cJSON *tok = cJSON_GetObjectItemCaseSensitive(snap, "tokens");
	const cJSON *t, *p;
	long long up = status_whole(snap, "uptime_s", 0, LLONG_MAX);

	fprintf(out, "tollgate %s (pid %.0f), up %lldh%02lldm, verdict: %s\n", status_str(snap, "version"),
	        status_num(snap, "pid"), up / 3600, (up % 3600) / 60, status_str(snap, "verdict"));
	if (status_str(snap, "reason")[0])
		fprintf(out, "  %s\n", status_str(snap, "reason"));
	print_ha(out, cJSON_GetObjectItemCaseSensitive(snap, "ha"));
	fprintf(out,
	        "tokens: estimate %.0f (last reading %.0f, %.0f s ago), rate %.1f/min, cap %.0f, utilization %.2f "
	        "(1 h), our 429s %.0f, deepest %.0f, others %.1f/min, wasted %.0f, policy %s\n",
	        status_num(tok, "estimate"), status_num(tok, "last_reading"), status_num(tok, "last_reading_age_s"), status_num(tok, "rate_per_min"),
	        status_num(tok, "cap"), status_num(tok, "utilization_1h"), status_num(tok, "our_429"), status_num(tok, "deepest_deficit"),
	        status_num(tok, "outside_per_min"), status_num(tok, "wasted"), status_str(tok, "policy"));
	status_print_keepa(out, cJSON_GetObjectItemCaseSensitive(snap, "keepa"));
	fprintf(out, "plugins:");
	cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(snap, "plugins"))
		fprintf(out, " %s %s", status_str(p, "name"), status_str(p, "version"));
	fprintf(out, "\n\n%-12s %-19s %-20s %-13s %8s %-14s %-13s %s\n", "TASK", "STATE", "PROGRESS", "LAST PROGRESS",
	        "TOKENS", "CALLS ok/429/e", "WAIT p50/max", "VERDICT");
	cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(snap, "tasks"))
	{
		const cJSON *w = cJSON_GetObjectItemCaseSensitive(t, "tokens");
		const cJSON *h = cJSON_GetObjectItemCaseSensitive(t, "waiting");
		const cJSON *ka = cJSON_GetObjectItemCaseSensitive(t, "keepa");
		char progress[64], age[32], calls[48] = "-", wait[32] = "-";

		if (status_num(t, "progress_total") >= 0)
			snprintf(progress, sizeof(progress), "%.0f/%.0f %s", status_num(t, "progress_done"),
			         status_num(t, "progress_total"), status_str(t, "progress_unit"));
		else
			snprintf(progress, sizeof(progress), "%.0f %s", status_num(t, "progress_done"), status_str(t, "progress_unit"));
		format_age(status_num(t, "last_progress_age_s"), age, sizeof(age));
		if (ka) {
			/* Requests as the server answered them: ok, 429, and every
			 * other outcome (4xx, 5xx, garbage, in-body, network). */
			const cJSON *by = cJSON_GetObjectItemCaseSensitive(ka, "attempts_by_outcome");
			double ok = status_num(by, "ok"), n429 = status_num(by, "429");
			snprintf(calls, sizeof(calls), "%.0f/%.0f/%.0f", ok, n429,
			         status_num(ka, "attempts") - ok - n429 - status_num(by, "stopped"));
		}
		if (w) {
			snprintf(wait, sizeof(wait), "%.0fs/%.0fs", status_num(w, "wait_p50_s"), status_num(w, "wait_max_s"));
		}
		fprintf(out, "%-12s %-19s %-20s %-13s %8.0f %-14s %-13s %s\n", status_str(t, "name"), status_str(t, "state"), progress,
		        age, w ? status_num(w, "consumed") : 0, calls, wait, status_str(t, "verdict"));
		if (h) {
			char eta[32] = "unknown";
			const char *behind = status_str(h, "behind");

			if (status_num(h, "eta_s") >= 0)
				snprintf(eta, sizeof(eta), "%.0f s", status_num(h, "eta_s"));
			fprintf(out, "%12s waiting for tokens: %s costs %.0f, target %.0f, estimate %.0f, ETA %s "
			             "(waited %.0f s)%s%s\n",
			        "", status_str(h, "kind"), status_num(h, "cost"), status_num(h, "target"),
			        status_num(h, "estimate"), eta, status_num(h, "waited_s"), behind[0] ? ", behind " : "",
			        behind);
		}
		if (status_str(t, "reason")[0])
			fprintf(out, "%12s %s\n", "", status_str(t, "reason"));
		if (status_str(t, "last_error")[0])
			fprintf(out, "%12s last error: %s\n", "", status_str(t, "last_error"));
	}
}

/* The monitoring-plugin line's perfdata: 'label'=value[UOM];warn;crit;min;max. */
static void perfdata(FILE *out, const cJSON *snap)
{
	const cJSON *tok = cJSON_GetObjectItemCaseSensitive(snap, "tokens"), *t;

	fprintf(out, " | tokens=%.0f;;;;%.0f rate_per_min=%.1f utilization=%.3f;;;0 our_429=%.0fc",
	        status_num(tok, "estimate"), status_num(tok, "cap"), status_num(tok, "rate_per_min"),
	        status_num(tok, "utilization_1h"), status_num(tok, "our_429"));
	cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(snap, "tasks"))
	{
		const cJSON *w = cJSON_GetObjectItemCaseSensitive(t, "tokens");
		const char *n = status_str(t, "name");
		fprintf(out, " '%s_progress_age'=%.0fs;;%.0f;0 '%s_progress'=%.0f '%s_tokens'=%.0fc", n,
		        status_num(t, "last_progress_age_s"), status_num(t, "stall_after_s"), n, status_num(t, "progress_done"),
		        n, w ? status_num(w, "consumed") : 0);
	}
}

/* The check could not tell (UNKNOWN) or found no daemon (CRITICAL): one
 * line on stdout, or one JSON document with --json. */
static int report_failure(bool json, enum status_verdict v, const char *why)
{
	if (json) {
		cJSON *o = cJSON_CreateObject();
		char *text;
		cJSON_AddStringToObject(o, "verdict", status_verdict_name(v));
		cJSON_AddNumberToObject(o, "exit_status", v);
		cJSON_AddStringToObject(o, "reason", why);
		cJSON_AddItemToObject(o, "tasks", cJSON_CreateArray());
		text = cJSON_PrintUnformatted(o);
		printf("%s\n", text ? text : "{}");
		free(text);
		cJSON_Delete(o);
	} else {
		printf("TOLLGATE %s - %s\n", v == STATUS_UNKNOWN ? "UNKNOWN" : "CRITICAL", why);
	}
	return v;
}

static int status(const struct cli_options *opts, const struct cli_args *args)
{
	struct config cf;
	const char *socket_path = cli_value(args, "socket");
	bool json = cli_flag(args, "json"), have_config = false;
	char *text, *err = NULL, line[1024], upper[16];
	int rc, error = 0;
	cJSON *snap;

	if (!socket_path) {
		if (config_load(&cf, opts->config_path, &err) != 0) {
			char why[1200];
			snprintf(why, sizeof(why), "cannot read the configuration to find the status socket: %s",
			         err ? err : "?");
			free(err);
			config_release(&cf);
			return report_failure(json, STATUS_UNKNOWN, why);
		}
		have_config = true;
		socket_path = cf.status_socket;
	}
	text = read_status(socket_path, &err, &error);
	if (have_config)
		config_release(&cf);
	if (!text) {
		/* No permission: the check cannot tell (UNKNOWN). No daemon, or one
		 * that does not answer: that is the finding (CRITICAL). */
		rc = report_failure(json, error == EACCES || error == EPERM ? STATUS_UNKNOWN : STATUS_CRITICAL,
		                    err ? err : "no answer");
		free(err);
		return rc;
	}
	snap = cJSON_Parse(text);
	if (!snap || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(snap, "verdict"))) {
		cJSON_Delete(snap);
		free(text);
		return report_failure(json, STATUS_UNKNOWN, "the daemon's answer is not a status document");
	}
	rc = (int)status_whole(snap, "exit_status", -1, STATUS_UNKNOWN + 1);
	if (rc < STATUS_OK || rc > STATUS_CRITICAL)
		rc = STATUS_UNKNOWN;
	if (json) {
		fputs(text, stdout);
	} else {
		status_summary(snap, line, sizeof(line));
		snprintf(upper, sizeof(upper), "%s", status_verdict_name((enum status_verdict)rc));
		for (char *c = upper; *c; c++)
			*c = (char)(*c - 'a' + 'A');
		/* "TOLLGATE OK - 3 tasks: ..." (the summary starts with the verdict word). */
		printf("TOLLGATE %s%s", upper, line + strcspn(line, " "));
		perfdata(stdout, snap);
		printf("\n");
		status_print_human(stdout, snap);
	}
	cJSON_Delete(snap);
	free(text);
	return rc;
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
