/*
 * metrics.c - Prometheus text exposition of the status snapshot, served by
 * libmicrohttpd when metrics.listen is set (off by default).
 *
 * Names follow Prometheus conventions: a tollgate_ prefix, base units in the
 * name (_seconds, _bytes), _total for counters (which only grow), times as
 * _timestamp_seconds (Unix time, so "how long ago" is a query), waits as a
 * histogram, the task state as a state set, and the process_* family every
 * client library exports. One HELP and TYPE line per family.
 */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/dynbuf.h"
#include "util/errmsg.h"
#include "core/config.h"
#include "core/daemon.h"
#include "observe/status.h"

/* A page is a few hundred bytes a task; 16 MiB is far beyond any config. */
#define METRICS_PAGE_MAX ((size_t)16 << 20)

struct buf {
	struct dynbuf d;
};

static void bprintf(struct buf *b, const char *fmt, ...) TG_PRINTF(2, 3);
static void bprintf(struct buf *b, const char *fmt, ...)
{
	va_list ap;

	/* A failure is sticky in the dynbuf: status_prometheus() checks once. */
	va_start(ap, fmt);
	dynbuf_vprintf(&b->d, fmt, ap);
	va_end(ap);
}

/* A label value with \, " and newlines escaped as the format requires. */
static void escape_label(const char *in, char *out, size_t len)
{
	size_t o = 0;

	for (; in && *in && o + 3 < len; in++) {
		if (*in == '\\' || *in == '"') {
			out[o++] = '\\';
			out[o++] = *in;
		} else if (*in == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else {
			out[o++] = *in;
		}
	}
	out[o] = '\0';
}

static void family(struct buf *b, const char *name, const char *type, const char *help)
{
	bprintf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void global(struct buf *b, const char *name, const char *type, const char *help, double v)
{
	family(b, name, type, help);
	bprintf(b, "%s %.17g\n", name, v);
}

/* One family with one sample per task, read from tasks[i].<obj>.<key>. */
static void per_task(struct buf *b, const cJSON *tasks, const char *name, const char *type, const char *help,
                     const char *obj, const char *key)
{
	const cJSON *t;

	family(b, name, type, help);
	cJSON_ArrayForEach(t, tasks)
	{
		const cJSON *src = obj ? cJSON_GetObjectItemCaseSensitive(t, obj) : t;
		char label[256];
		if (!src)
			continue;
		escape_label(status_str(t, "name"), label, sizeof(label));
		bprintf(b, "%s{task=\"%s\"} %.17g\n", name, label, status_num(src, key));
	}
}

/* A task's state as a state set: one sample per possible state, 1 for the
 * current one, so `tollgate_task_state{state="backoff"} == 1` is a query. */
static const char *const task_states[] = {"starting", "running", "waiting_for_tokens", "waiting_for_lock",
                                          "sleeping", "idle",    "backoff",            "quarantined",
                                          "done",     "skipped", "stopped"};

static void state_set(struct buf *b, const cJSON *tasks)
{
	const cJSON *t;
	char label[256];

	family(b, "tollgate_task_state", "gauge", "The task's state as a state set: 1 for its current state, 0 for the others.");
	cJSON_ArrayForEach(t, tasks)
	{
		bool listed = false;
		escape_label(status_str(t, "name"), label, sizeof(label));
		for (size_t i = 0; i < sizeof(task_states) / sizeof(task_states[0]); i++) {
			bool on = strcmp(status_str(t, "state"), task_states[i]) == 0;
			listed |= on;
			bprintf(b, "tollgate_task_state{task=\"%s\",state=\"%s\"} %d\n", label, task_states[i], on);
		}
		/* A state this list does not know yet still shows as set. */
		if (!listed) {
			char state[64];
			escape_label(status_str(t, "state"), state, sizeof(state));
			bprintf(b, "tollgate_task_state{task=\"%s\",state=\"%s\"} 1\n", label, state);
		}
	}
}

/* Waits for tokens as a histogram: cumulative buckets with the scheduler's
 * bounds, then _sum and _count. */
static void wait_histogram(struct buf *b, const cJSON *snap, const cJSON *tasks)
{
	const cJSON *bounds = cJSON_GetObjectItemCaseSensitive(snap, "wait_buckets_s"), *t;
	char label[256];

	family(b, "tollgate_task_token_wait_seconds", "histogram", "Time calls waited in line for tokens, per task.");
	cJSON_ArrayForEach(t, tasks)
	{
		const cJSON *w = cJSON_GetObjectItemCaseSensitive(t, "tokens");
		const cJSON *h = cJSON_GetObjectItemCaseSensitive(w, "wait_hist");
		double cum = 0;
		int i = 0, nb = cJSON_GetArraySize(bounds);
		const cJSON *c;

		if (!h)
			continue;
		escape_label(status_str(t, "name"), label, sizeof(label));
		cJSON_ArrayForEach(c, h)
		{
			cum += c->valuedouble;
			if (i < nb)
				bprintf(b, "tollgate_task_token_wait_seconds_bucket{task=\"%s\",le=\"%g\"} %.17g\n", label,
				        cJSON_GetArrayItem(bounds, i)->valuedouble, cum);
			i++;
		}
		bprintf(b, "tollgate_task_token_wait_seconds_bucket{task=\"%s\",le=\"+Inf\"} %.17g\n", label, cum);
		bprintf(b, "tollgate_task_token_wait_seconds_sum{task=\"%s\"} %.17g\n", label, status_num(w, "wait_sum_s"));
		bprintf(b, "tollgate_task_token_wait_seconds_count{task=\"%s\"} %.17g\n", label, cum);
	}
}

static void process_metrics(struct buf *b, const cJSON *snap)
{
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(snap, "process");

	global(b, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.",
	       status_num(p, "cpu_seconds"));
	global(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
	       status_num(p, "resident_bytes"));
	global(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", status_num(p, "virtual_bytes"));
	global(b, "process_open_fds", "gauge", "Number of open file descriptors.", status_num(p, "open_fds"));
	if (status_num(p, "max_fds") > 0)
		global(b, "process_max_fds", "gauge", "Maximum number of open file descriptors.", status_num(p, "max_fds"));
	global(b, "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.",
	       status_num(p, "start_time_s"));
}

/* The Keepa client's counts (status "keepa"): every request by outcome, per
 * task and for the whole client (the host's /token syncs included). */
static void keepa_families(struct buf *b, const cJSON *snap, const cJSON *tasks)
{
	const cJSON *all = cJSON_GetObjectItemCaseSensitive(snap, "keepa"), *t, *o;
	char label[256];

	family(b, "tollgate_keepa_requests_total", "counter", "HTTP requests to Keepa by outcome (all tasks and the host).");
	cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(all, "attempts_by_outcome"))
	{
		escape_label(o->string ? o->string : "", label, sizeof(label));
		bprintf(b, "tollgate_keepa_requests_total{outcome=\"%s\"} %.17g\n", label, cJSON_IsNumber(o) ? o->valuedouble : 0);
	}
	family(b, "tollgate_keepa_attempts_total", "counter", "HTTP requests to Keepa by task and outcome.");
	cJSON_ArrayForEach(t, tasks)
	{
		const cJSON *k = cJSON_GetObjectItemCaseSensitive(t, "keepa");
		char outcome[64];

		escape_label(status_str(t, "name"), label, sizeof(label));
		cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(k, "attempts_by_outcome"))
		{
			escape_label(o->string ? o->string : "", outcome, sizeof(outcome));
			bprintf(b, "tollgate_keepa_attempts_total{task=\"%s\",outcome=\"%s\"} %.17g\n", label, outcome,
			        cJSON_IsNumber(o) ? o->valuedouble : 0);
		}
	}
	per_task(b, tasks, "tollgate_keepa_retries_total", "counter", "Back-off retries after a 5xx, garbage or network error.",
	         "keepa", "retries");
	per_task(b, tasks, "tollgate_keepa_calls_failed_total", "counter", "Keepa calls that ended in an error.", "keepa",
	         "calls_failed");
}

char *status_prometheus(const cJSON *snap)
{
	struct buf b = {DYNBUF_INIT(METRICS_PAGE_MAX)};
	const cJSON *tok = cJSON_GetObjectItemCaseSensitive(snap, "tokens");
	const cJSON *tasks = cJSON_GetObjectItemCaseSensitive(snap, "tasks");
	const cJSON *t;
	double now_s = status_num(snap, "now_ms") / 1000.0;
	char label[256];

	escape_label(status_str(snap, "version"), label, sizeof(label));
	family(&b, "tollgate_info", "gauge", "Version of the running daemon (always 1).");
	bprintf(&b, "tollgate_info{version=\"%s\"} 1\n", label);
	process_metrics(&b, snap);
	global(&b, "tollgate_verdict", "gauge", "Overall verdict: 0 ok, 1 warning, 2 critical.",
	       status_num(snap, "exit_status"));
	global(&b, "tollgate_tokens_estimate", "gauge", "Lower-bound estimate of the token balance.",
	       status_num(tok, "estimate"));
	global(&b, "tollgate_tokens_last_reading", "gauge", "tokensLeft of the last Keepa answer.",
	       status_num(tok, "last_reading"));
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(tok, "have_reading")))
		global(&b, "tollgate_tokens_last_reading_timestamp_seconds", "gauge",
		       "When the last Keepa answer was read (Unix seconds).", now_s - status_num(tok, "last_reading_age_s"));
	global(&b, "tollgate_tokens_refill_rate_per_minute", "gauge", "Net refill rate of the plan.",
	       status_num(tok, "rate_per_min"));
	global(&b, "tollgate_tokens_cap", "gauge", "Most tokens the bucket holds.", status_num(tok, "cap"));
	global(&b, "tollgate_tokens_utilization_ratio", "gauge", "Tokens spent over tokens generated, last hour.",
	       status_num(tok, "utilization_1h"));
	global(&b, "tollgate_tokens_deepest_deficit", "gauge", "Lowest balance read from Keepa.",
	       status_num(tok, "deepest_deficit"));
	global(&b, "tollgate_tokens_outside_consumption_per_minute", "gauge",
	       "Tokens per minute spent on the key by others.", status_num(tok, "outside_per_min"));
	global(&b, "tollgate_tokens_wasted_total", "counter", "Refill lost to the bucket's cap since start.",
	       status_num(tok, "wasted"));
	global(&b, "tollgate_keepa_429_total", "counter", "429 answers (no tokens left) received from Keepa.",
	       status_num(tok, "our_429"));
	/* Hot standby (core/ha.c), when configured. */
	const cJSON *ha = cJSON_GetObjectItemCaseSensitive(snap, "ha");
	if (ha) {
		global(&b, "tollgate_ha_active", "gauge", "1 while this node is the active one, 0 standby.",
		       strcmp(status_str(ha, "role"), "active") == 0);
		global(&b, "tollgate_ha_epoch", "gauge", "Fencing epoch of the lease (+1 per takeover).",
		       status_num(ha, "epoch"));
		global(&b, "tollgate_ha_lease_age_seconds", "gauge", "Age of the active node's last heartbeat.",
		       status_num(ha, "lease_age_s"));
		global(&b, "tollgate_ha_takeovers_total", "counter", "Times this node took the lease over.",
		       status_num(ha, "takeovers"));
	}

	per_task(&b, tasks, "tollgate_tokens_consumed_total", "counter", "Tokens consumed by the task.", "tokens",
	         "consumed");
	family(&b, "tollgate_calls_total", "counter", "Keepa calls by task and result.");
	cJSON_ArrayForEach(t, tasks)
	{
		const cJSON *w = cJSON_GetObjectItemCaseSensitive(t, "tokens");
		escape_label(status_str(t, "name"), label, sizeof(label));
		if (!w)
			continue;
		bprintf(&b, "tollgate_calls_total{task=\"%s\",result=\"ok\"} %.17g\n", label, status_num(w, "calls_ok"));
		bprintf(&b, "tollgate_calls_total{task=\"%s\",result=\"429\"} %.17g\n", label, status_num(w, "calls_429"));
		bprintf(&b, "tollgate_calls_total{task=\"%s\",result=\"error\"} %.17g\n", label, status_num(w, "calls_error"));
	}
	per_task(&b, tasks, "tollgate_task_queued_calls", "gauge", "Calls waiting in the task's line for tokens.", "tokens",
	         "queued");
	wait_histogram(&b, snap, tasks);
	keepa_families(&b, snap, tasks);
	per_task(&b, tasks, "tollgate_task_progress", "gauge", "Units of work done (its unit in status).", NULL,
	         "progress_done");
	family(&b, "tollgate_task_last_progress_timestamp_seconds", "gauge",
	       "When the task last made progress (Unix seconds; the daemon's start if never).");
	cJSON_ArrayForEach(t, tasks)
	{
		double at = status_num(t, "last_progress_ms");
		escape_label(status_str(t, "name"), label, sizeof(label));
		bprintf(&b, "tollgate_task_last_progress_timestamp_seconds{task=\"%s\"} %.17g\n", label,
		        (at > 0 ? at : status_num(snap, "started_ms")) / 1000.0);
	}
	per_task(&b, tasks, "tollgate_task_stall_after_seconds", "gauge",
	         "How long the task may go without progress while work is due.", NULL, "stall_after_s");
	per_task(&b, tasks, "tollgate_task_runs_total", "counter", "Runs started.", NULL, "runs");
	per_task(&b, tasks, "tollgate_task_failures_total", "counter", "Runs that failed.", NULL, "failures");
	per_task(&b, tasks, "tollgate_task_consecutive_failures", "gauge",
	         "Failed runs in a row (3 or more: critical, retried with back-off up to 10 min).", NULL,
	         "consecutive_failures");
	state_set(&b, tasks);
	family(&b, "tollgate_task_verdict", "gauge", "Task verdict: 0 ok, 1 warning, 2 critical.");
	cJSON_ArrayForEach(t, tasks)
	{
		const char *v = status_str(t, "verdict");
		escape_label(status_str(t, "name"), label, sizeof(label));
		bprintf(&b, "tollgate_task_verdict{task=\"%s\"} %d\n", label,
		        strcmp(v, "critical") == 0 ? 2 : strcmp(v, "warning") == 0 ? 1 : 0);
	}
	return dynbuf_take(&b.d); /* NULL when the page could not be built */
}

struct metrics_server {
	struct daemon *d;
	struct MHD_Daemon *mhd;
};

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	struct metrics_server *m = cls;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	char *text = NULL;
	unsigned status = MHD_HTTP_OK;
	(void)version;
	(void)upload;
	(void)upload_size;
	(void)con_cls;

	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		status = MHD_HTTP_METHOD_NOT_ALLOWED;
		text = strdup("method not allowed\n");
	} else if (strcmp(url, "/metrics") == 0) {
		cJSON *snap = status_snapshot(m->d);
		text = snap ? status_prometheus(snap) : NULL;
		cJSON_Delete(snap);
	} else {
		status = MHD_HTTP_NOT_FOUND;
		text = strdup("not found: try /metrics\n");
	}
	if (!text)
		return MHD_NO;
	resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(resp, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

int metrics_server_start(struct daemon *d, const char *listen, struct metrics_server **out, char **errmsg)
{
	struct sockaddr_in sa;
	struct metrics_server *m;

	*out = NULL;
	if (config_parse_listen(listen, &sa) != 0) {
		errmsg_set(errmsg, 0, "metrics.listen \"%s\" must be [IPv4]:port, e.g. 127.0.0.1:9464", listen);
		return TG_EINVAL;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return TG_ENOMEM;
	m->d = d;
	m->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, m,
	                          MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
	if (!m->mhd) {
		errmsg_set(errmsg, 0, "metrics.listen %s: cannot listen there", listen);
		free(m);
		return TG_EIO;
	}
	*out = m;
	return 0;
}

void metrics_server_stop(struct metrics_server *m)
{
	if (!m)
		return;
	MHD_stop_daemon(m->mhd);
	free(m);
}
