/*
 * reload_plan.c - compare two configurations for a reload (reload_plan.h).
 */
#include "core/reload_plan.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/errmsg.h"
#include "worker/settings_text.h"

/* Two optional strings: both absent, or both present and equal. */
static bool same_str(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

/* A listen address or socket path: absent and "" both mean off. */
static bool same_off_str(const char *a, const char *b)
{
	return same_str(a && a[0] ? a : NULL, b && b[0] ? b : NULL);
}

static bool same_settings(const config_setting_t *a, const config_setting_t *b)
{
	char *ta, *tb;
	bool same;

	if (!a || !b)
		return a == b;
	ta = settings_text(a);
	tb = settings_text(b);
	/* Out of memory: call them different, so the task is restarted
	 * rather than left running with settings it was not given. */
	same = ta && tb && strcmp(ta, tb) == 0;
	free(ta);
	free(tb);
	return same;
}

bool reload_task_same(const struct task_config *a, const struct task_config *b)
{
	return same_str(a->plugin, b->plugin) && a->required == b->required &&
	       a->weight == b->weight && a->interval_s == b->interval_s &&
	       a->memory_limit_mb == b->memory_limit_mb && a->cpu_limit_s == b->cpu_limit_s &&
	       same_settings(a->settings, b->settings);
}

static int find_task(const struct config *c, const char *name)
{
	for (int i = 0; i < c->ntasks; i++)
		if (strcmp(c->tasks[i].name, name) == 0)
			return i;
	return -1;
}

static void note_global(struct reload_plan *plan, bool differs, const char *name)
{
	if (differs && plan->nglobals < RELOAD_PLAN_MAX_GLOBALS)
		plan->globals[plan->nglobals++] = name;
}

static bool same_plugin_path(const struct config *a, const struct config *b)
{
	if (a->nplugin_path != b->nplugin_path)
		return false;
	for (int i = 0; i < a->nplugin_path; i++)
		if (!same_str(a->plugin_path[i], b->plugin_path[i]))
			return false;
	return true;
}

/* Every global that a running daemon has already acted on: a change needs
 * a restart. Kept in the order of struct config, one line per field, so a
 * new field is easy to add here too. */
static void diff_globals(struct reload_plan *plan, const struct config *a, const struct config *b)
{
	note_global(plan, !same_str(a->keepa_endpoint, b->keepa_endpoint), "keepa.endpoint");
	note_global(plan, !same_str(a->keepa_key_file, b->keepa_key_file), "keepa.key_file");
	note_global(plan, a->keepa_domain != b->keepa_domain, "keepa.domain");
	note_global(plan, a->keepa_connect_timeout_s != b->keepa_connect_timeout_s, "keepa.connect_timeout_s");
	note_global(plan, a->keepa_timeout_s != b->keepa_timeout_s, "keepa.timeout_s");
	note_global(plan, a->keepa_max_response_bytes != b->keepa_max_response_bytes, "keepa.max_response_bytes");
	note_global(plan, a->keepa_max_retries != b->keepa_max_retries, "keepa.max_retries");
	note_global(plan, !same_str(a->tokens_policy, b->tokens_policy), "tokens.policy");
	note_global(plan, a->tokens_reserve != b->tokens_reserve, "tokens.reserve");
	note_global(plan, a->tokens_margin != b->tokens_margin, "tokens.margin");
	note_global(plan, a->tokens_deepest_deficit != b->tokens_deepest_deficit, "tokens.deepest_deficit");
	note_global(plan, a->tokens_deficit_threshold != b->tokens_deficit_threshold, "tokens.deficit_threshold");
	note_global(plan, a->tokens_latency_target_s != b->tokens_latency_target_s, "tokens.latency_target_s");
	note_global(plan, a->tokens_cap_minutes != b->tokens_cap_minutes, "tokens.cap_minutes");
	note_global(plan, a->tokens_minute_ms != b->tokens_minute_ms, "tokens.minute_ms");
	note_global(plan, !same_str(a->storage_backend, b->storage_backend), "storage.backend");
	note_global(plan, !same_str(a->storage_path, b->storage_path), "storage.path");
	note_global(plan, !same_str(a->storage_conninfo, b->storage_conninfo), "storage.conninfo");
	note_global(plan, a->storage_sqlite_cache_mb != b->storage_sqlite_cache_mb, "storage.sqlite_cache_mb");
	note_global(plan, !same_str(a->ha_node, b->ha_node), "ha.node");
	note_global(plan, a->ha_lease_s != b->ha_lease_s, "ha.lease_s");
	note_global(plan, a->ha_heartbeat_s != b->ha_heartbeat_s, "ha.heartbeat_s");
	note_global(plan, !same_str(a->runtime_dir, b->runtime_dir), "runtime_dir");
	note_global(plan, !same_plugin_path(a, b), "plugin_path");
	note_global(plan, !same_str(a->include_dir, b->include_dir), "include_dir");
	note_global(plan, a->log_level != b->log_level, "log.level");
	note_global(plan, a->log_progress_interval_s != b->log_progress_interval_s, "log.progress_interval_s");
	note_global(plan, !same_off_str(a->status_socket, b->status_socket), "status.socket");
	note_global(plan, a->status_stall_after_s != b->status_stall_after_s, "status.stall_after_s");
	note_global(plan, !same_off_str(a->metrics_listen, b->metrics_listen), "metrics.listen");
	note_global(plan, !same_off_str(a->web_listen, b->web_listen), "web.listen");
	note_global(plan, !same_str(a->web_token_file, b->web_token_file), "web.token_file");
	note_global(plan, a->web_requests_per_s != b->web_requests_per_s, "web.requests_per_s");
	note_global(plan, a->workers != b->workers, "workers");
	note_global(plan, a->supervisor_stop_grace_ms != b->supervisor_stop_grace_ms, "supervisor.stop_grace_ms");
	note_global(plan, a->supervisor_crash_limit != b->supervisor_crash_limit, "supervisor.crash_limit");
	note_global(plan, a->supervisor_crash_window_s != b->supervisor_crash_window_s, "supervisor.crash_window_s");
}

int reload_plan_make(struct reload_plan *plan, const struct config *old, const struct config *new,
                     char **errmsg)
{
	size_t nold = old->ntasks > 0 ? (size_t)old->ntasks : 1;
	size_t nnew = new->ntasks > 0 ? (size_t)new->ntasks : 1;

	memset(plan, 0, sizeof(*plan));
	plan->unchanged = calloc(nold, sizeof(int));
	plan->changed = calloc(nold, sizeof(int));
	plan->changed_new = calloc(nold, sizeof(int));
	plan->removed = calloc(nold, sizeof(int));
	plan->added = calloc(nnew, sizeof(int));
	if (!plan->unchanged || !plan->changed || !plan->changed_new || !plan->removed || !plan->added)
		return errmsg_set(errmsg, TG_ENOMEM, "reload: out of memory");

	for (int i = 0; i < old->ntasks; i++) {
		int j = find_task(new, old->tasks[i].name);
		if (j < 0) {
			plan->removed[plan->nremoved++] = i;
		} else if (reload_task_same(&old->tasks[i], &new->tasks[j])) {
			plan->unchanged[plan->nunchanged++] = i;
		} else {
			plan->changed[plan->nchanged] = i;
			plan->changed_new[plan->nchanged++] = j;
		}
	}
	for (int j = 0; j < new->ntasks; j++)
		if (find_task(old, new->tasks[j].name) < 0)
			plan->added[plan->nadded++] = j;
	diff_globals(plan, old, new);
	return 0;
}

void reload_plan_release(struct reload_plan *plan)
{
	free(plan->unchanged);
	free(plan->changed);
	free(plan->changed_new);
	free(plan->removed);
	free(plan->added);
	memset(plan, 0, sizeof(*plan));
}
