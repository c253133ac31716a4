/*
 * reload.c - SIGHUP / `systemctl reload tollgate`: apply a changed
 * configuration without restarting the tasks it leaves alone.
 *
 * Runs on the main thread (runloop.c), the one thread that fills task
 * slots; the signal thread only raises d->reload_requested. In order:
 *
 *  1. Refuse before touching anything: the new file must load (file:line),
 *     pass preflight, and every added or changed task's plugin must load in
 *     a short-lived worker with its settings accepted. On any refusal the
 *     running configuration stays as it is, and the log says why.
 *  2. Globals that differ are logged as needing a restart (the running
 *     values are kept: storage, Keepa, the scheduler, listeners are open).
 *  3. Tasks, matched by name (reload_plan.c): removed ones are stopped -
 *     their worker is sent `stop`, given supervisor.stop_grace_ms, then
 *     killed, as at shutdown; changed ones are stopped and started again in
 *     a new slot with their new settings (same scheduler class, new weight);
 *     added ones are started; unchanged ones are not touched (same thread,
 *     same worker). Checkpoints live in storage, so a restarted task goes on
 *     from where it was.
 *
 * Slots never move and are never freed before daemon_close: status, metrics
 * and the watch read them from other threads. A stopped slot is marked
 * removed (status skips it); a new slot is complete before d->ntasks grows.
 *
 * Worker mode only: in-process (`workers = false`) a plugin's code is in
 * this process and cannot be unloaded safely, so a reload is refused there.
 */
#include "core/daemon.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/preflight.h"
#include "core/reload_plan.h"
#include "core/supervise.h"
#include "observe/log.h"
#include "util/errmsg.h"

static void refuse(const char *why)
{
	log_error(NULL, "reload refused: %s; the running configuration is unchanged", why);
}

static struct tg_task *live_slot(struct daemon *d, const char *name)
{
	for (int i = 0; i < d->ntasks; i++)
		if (!atomic_load(&d->tasks[i].removed) && strcmp(d->tasks[i].cfg->name, name) == 0)
			return &d->tasks[i];
	return NULL;
}

static void scratch_release(struct tg_task *t)
{
	plugin_close(&t->plugin);
	pthread_mutex_destroy(&t->mu);
	if (t->stop_fd >= 0)
		close(t->stop_fd);
}

/* Load every added or changed task's plugin in a worker and check its
 * settings (scratch[k] for cfgs[k]); 0, or the first refusal in *errmsg. */
static int describe_new(struct daemon *d, struct tg_task *scratch, const struct task_config **cfgs, int n,
                        char **errmsg)
{
	for (int k = 0; k < n; k++) {
		char *err = NULL;
		int rc;

		daemon_task_slot_init(d, &scratch[k], cfgs[k]);
		rc = supervise_describe_task(&scratch[k], NULL, &err);
		if (rc == SUPERVISE_DIED) {
			errmsg_set(errmsg, TG_EINVAL, "%s:%d: task \"%s\": %s", cfgs[k]->file, cfgs[k]->line,
			           cfgs[k]->name, err ? err : "its worker died loading the plugin");
			free(err);
			return TG_EINVAL;
		}
		if (rc) {
			*errmsg = err ? err : str_printf("task \"%s\": cannot load its plugin", cfgs[k]->name);
			return rc;
		}
	}
	return 0;
}

/* Stop one task and hide its slot; why: "removed", "changed". */
static void stop_slot(struct tg_task *t, const char *why)
{
	task_request_stop(t);
	if (t->thread_started) {
		/* The runner ends its worker (stop, grace, kill) and returns. */
		pthread_join(t->thread, NULL);
		t->thread_started = false;
	}
	atomic_store(&t->removed, true);
	log_info(t->cfg->name, "reload: stopped (%s in the configuration)", why);
}

/* Fill the next slot with the task described in scratch (its plugin copy
 * moves to the slot), start its worker and thread, then publish it. */
static void start_slot(struct daemon *d, struct tg_task *scratch, const char *how)
{
	struct tg_task *t = &d->tasks[d->ntasks];
	char *err = NULL;
	int rc;

	daemon_task_slot_init(d, t, scratch->cfg);
	t->plugin = scratch->plugin;
	memset(&scratch->plugin, 0, sizeof(scratch->plugin));
	rc = daemon_open_worker_task(d, t, &err);
	if (rc == SUPERVISE_DIED) {
		/* As at start-up: a crash, restarted by the runner after its back-off. */
		t->failures = t->consecutive_failures = 1;
		supervise_note_crash(t, err);
		rc = 0;
	} else if (rc) {
		log_error(t->cfg->name, "reload: could not start: %s", err ? err : "no message");
		task_set_error(t, err);
		t->state = TASK_SKIPPED;
	}
	free(err);
	err = NULL;
	t->initialized = rc == 0;
	if (t->initialized && daemon_start_task(d, t, &err)) {
		log_error(t->cfg->name, "reload: %s", err);
		task_set_error(t, err);
		t->state = TASK_SKIPPED;
		supervise_stop(t);
		free(err);
	}
	/* Complete: now the readers may see it. */
	atomic_fetch_add(&d->ntasks, 1);
	if (t->thread_started)
		log_info(t->cfg->name, "reload: started (%s)", how);
}

static int keep_config(struct daemon *d, struct config *next)
{
	struct config **grown = realloc(d->reloaded, (size_t)(d->nreloaded + 1) * sizeof(*grown));

	if (!grown)
		return TG_ENOMEM;
	d->reloaded = grown;
	d->reloaded[d->nreloaded++] = next;
	return 0;
}

/* Everything is checked: stop, start, and keep next (the new slots' cfg
 * point into it). */
static void apply(struct daemon *d, struct config *next, const struct reload_plan *plan, struct tg_task *scratch)
{
	int k = 0;

	for (int i = 0; i < plan->nremoved; i++) {
		struct tg_task *t = live_slot(d, d->current->tasks[plan->removed[i]].name);
		if (t)
			stop_slot(t, "removed");
	}
	for (int i = 0; i < plan->nchanged; i++, k++) {
		struct tg_task *t = live_slot(d, d->current->tasks[plan->changed[i]].name);
		if (t)
			stop_slot(t, "changed");
		start_slot(d, &scratch[k], "restarted with its new configuration");
	}
	for (int i = 0; i < plan->nadded; i++, k++)
		start_slot(d, &scratch[k], "added");
	d->current = next;
}

void daemon_reload(struct daemon *d)
{
	struct config *next = NULL;
	struct reload_plan plan = {0}, globals = {0};
	struct tg_task *scratch = NULL;
	const struct task_config **cfgs = NULL;
	char *err = NULL;
	int n = 0, nscratch = 0;
	bool kept = false;

	log_info(NULL, "SIGHUP: reloading the configuration from %s", d->config->path);
	if (!d->config->workers) {
		refuse("reload needs worker mode (workers = true): a plugin loaded into this process cannot be "
		       "unloaded safely; restart to apply a changed configuration (systemctl restart tollgate)");
		return;
	}
	if (d->ha) {
		refuse("reload is not supported with ha (hot standby) yet; restart to apply a changed configuration");
		return;
	}
	next = calloc(1, sizeof(*next));
	if (!next) {
		refuse("out of memory");
		return;
	}
	if (config_load(next, d->config->path, &err) || preflight_check(next, &err) ||
	    reload_plan_make(&plan, d->current, next, &err) || reload_plan_make(&globals, d->config, next, &err))
		goto refused;
	/* The running plugin_path stays (it may come from --plugin-dir); a
	 * changed one in the file is among the globals logged below. */
	memcpy(next->plugin_path, d->config->plugin_path, sizeof(next->plugin_path));
	next->nplugin_path = d->config->nplugin_path;

	n = plan.nchanged + plan.nadded;
	if (d->ntasks + n > d->task_capacity) {
		err = str_printf("the reloads since the start have used all %d spare task slots; restart to apply it",
		                 DAEMON_RELOAD_SLOTS);
		goto refused;
	}
	scratch = calloc((size_t)(n > 0 ? n : 1), sizeof(*scratch));
	cfgs = calloc((size_t)(n > 0 ? n : 1), sizeof(*cfgs));
	if (!scratch || !cfgs) {
		err = str_printf("out of memory");
		goto refused;
	}
	for (int i = 0; i < plan.nchanged; i++)
		cfgs[nscratch++] = &next->tasks[plan.changed_new[i]];
	for (int i = 0; i < plan.nadded; i++)
		cfgs[nscratch++] = &next->tasks[plan.added[i]];
	if (describe_new(d, scratch, cfgs, nscratch, &err))
		goto refused;

	for (int i = 0; i < globals.nglobals; i++)
		log_warn(NULL, "reload: %s changed: needs a restart to apply (the running value is kept)",
		         globals.globals[i]);
	if (n == 0 && plan.nremoved == 0) {
		log_info(NULL, "reload: done; no task changed (%d unchanged)", plan.nunchanged);
	} else if (keep_config(d, next) != 0) {
		err = str_printf("out of memory");
		goto refused;
	} else {
		kept = true;
		apply(d, next, &plan, scratch);
		log_info(NULL, "reload: done; %d task(s) added, %d removed, %d restarted with a new configuration, "
		         "%d unchanged", plan.nadded, plan.nremoved, plan.nchanged, plan.nunchanged);
	}
	goto out;

refused:
	refuse(err ? err : "no reason given");
out:
	/* describe_new may have stopped part-way: only the scratch slots it
	 * set up (daemon set) have anything to release. */
	for (int k = 0; scratch && k < nscratch; k++)
		if (scratch[k].daemon)
			scratch_release(&scratch[k]);
	free(scratch);
	free(cfgs);
	free(err);
	reload_plan_release(&plan);
	reload_plan_release(&globals);
	if (!kept) {
		config_release(next);
		free(next);
	}
}
