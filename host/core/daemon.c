/*
 * daemon.c - build the running host from a config, start and stop it.
 */
#include "util/errmsg.h"
#include "core/daemon.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

#include "keepa/keepa.h"
#include "core/loader.h"
#include "core/preflight.h"
#include "storage/locks.h"
#include "observe/log.h"
#include "core/contract.h"
#include "core/services.h"
#include "core/supervise.h"
#include "storage/storage.h"
#include "tokens/tokens.h"

/* Wait on stop_cv until deadline, shutdown, or (when not NULL) also. */
static int wait_until(struct daemon *d, const atomic_bool *also, int64_t deadline)
{
	int rc = 0;

	pthread_mutex_lock(&d->stop_mu);
	while (!atomic_load(&d->stopping) && !(also && atomic_load(also))) {
		int64_t left = deadline - tg_mono_ms();
		if (left <= 0)
			break;
		/* Wake at least hourly so an unbounded wait needs no special case. */
		tg_cond_wait_ms(&d->stop_cv, &d->stop_mu, left > 3600 * 1000 ? 3600 * 1000 : left);
	}
	if (atomic_load(&d->stopping) || (also && atomic_load(also)))
		rc = TG_ESTOPPED;
	pthread_mutex_unlock(&d->stop_mu);
	return rc;
}

int daemon_wait_until(struct daemon *d, int64_t deadline)
{
	return wait_until(d, NULL, deadline);
}

bool task_stopping(struct tg_task *task)
{
	return atomic_load(&task->daemon->stopping) || atomic_load(&task->stop);
}

int task_wait_until(struct tg_task *task, int64_t deadline)
{
	return wait_until(task->daemon, &task->stop, deadline);
}

/* Raise a stop flag (the daemon's or one task's): under stop_mu, so a
 * waiter between its check and its wait cannot miss the broadcast; then
 * make its eventfd readable for poll(). Never read: it stays readable. */
static void raise_stop(struct daemon *d, atomic_bool *flag, int fd)
{
	pthread_mutex_lock(&d->stop_mu);
	atomic_store(flag, true);
	pthread_cond_broadcast(&d->stop_cv);
	pthread_mutex_unlock(&d->stop_mu);
	if (fd >= 0) {
		uint64_t one = 1;
		if (write(fd, &one, sizeof(one)) < 0) {
			/* Full counter: already readable. */
		}
	}
}

void task_request_stop(struct tg_task *task)
{
	raise_stop(task->daemon, &task->stop, task->stop_fd);
}

void daemon_task_slot_init(struct daemon *d, struct tg_task *t, const struct task_config *cfg)
{
	t->daemon = d;
	t->cfg = cfg;
	t->tokens_class = -1;
	pthread_mutex_init(&t->mu, NULL);
	t->state = TASK_STARTING;
	atomic_init(&t->stop, false);
	atomic_init(&t->removed, false);
	t->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

void daemon_request_stop(struct daemon *d)
{
	daemon_signal_stop(d);
	if (d->tokens)
		tokens_shutdown(d->tokens);
	if (d->locks)
		locks_interrupt(d->locks);
}

static int make_dirs(const char *dir, mode_t mode)
{
	char buf[4096];

	snprintf(buf, sizeof(buf), "%s", dir);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return (mkdir(buf, mode) != 0 && errno != EEXIST) ? -1 : 0;
}

/* The key now lives in the Keepa client only. Wipe it from the process's
 * environment too - the value in place, since /proc/PID/environ shows the
 * original block whatever unsetenv() does to the pointers - so no worker,
 * child or reader of /proc finds it there. */
static void drop_key_from_environment(void)
{
	char *value = getenv("KEEPA_API_KEY");

	if (!value)
		return;
	memset(value, 'x', strlen(value));
	unsetenv("KEEPA_API_KEY");
}

static int open_services(struct daemon *d, const struct daemon_options *opts, char **errmsg)
{
	struct config *cf = d->config;
	struct tokens_config tc;
	struct keepa_options ko = {0};
	char *key = NULL;
	int rc;

	bool pg = strcmp(cf->storage_backend, "postgresql") == 0;

	/* The directory of storage.path exists (preflight_storage): it is never
	 * created here. A dry run (check) gives the plugins' init a scratch
	 * SQLite database, so declaring tables writes nothing near the real
	 * one (check validates the real storage with storage_check()). */
	if ((rc = preflight_storage(cf, errmsg)))
		return rc;
	if (d->dry_run && (rc = preflight_scratch_db(d->dry_db, sizeof(d->dry_db), errmsg)))
		return rc;
	if ((rc = storage_open(&d->storage, d->dry_run ? "sqlite" : cf->storage_backend,
	                       d->dry_run ? d->dry_db : pg ? cf->storage_conninfo : cf->storage_path, errmsg)))
		return rc;
	storage_set_cache_kib(d->storage, (int64_t)cf->storage_sqlite_cache_mb * 1024);
	if (d->dry_run) {
		/* no runtime_dir, no locks: check leaves no trace */
	} else if (make_dirs(cf->runtime_dir, 0750) != 0) {
		errmsg_set(errmsg, 0, "cannot create runtime_dir %s: %s", cf->runtime_dir, strerror(errno));
		return TG_EIO;
	}
	d->locks = d->dry_run ? NULL : calloc(1, sizeof(*d->locks));
	if (!d->locks && !d->dry_run)
		return TG_ENOMEM;
	if (d->locks && (rc = locks_init(d->locks, cf->runtime_dir, errmsg))) {
		free(d->locks);
		d->locks = NULL;
		return rc;
	}
	/* Daemons sharing a PostgreSQL database share its locks. */
	if (pg && d->locks && (rc = locks_use_postgresql(d->locks, cf->storage_conninfo, errmsg)))
		return rc;

	if (opts && opts->keepa_key) {
		key = strdup(opts->keepa_key);
		if (!key)
			return TG_ENOMEM;
	} else if ((rc = keepa_load_key(cf->keepa_key_file, &key, errmsg))) {
		return rc;
	}
	drop_key_from_environment();
	ko.endpoint = cf->keepa_endpoint;
	ko.key = key;
	ko.domain = cf->keepa_domain;
	ko.connect_timeout_s = cf->keepa_connect_timeout_s;
	ko.timeout_s = cf->keepa_timeout_s;
	ko.max_response_bytes = cf->keepa_max_response_bytes;
	ko.max_retries = cf->keepa_max_retries;
	ko.stop = &d->stopping;
	rc = keepa_new(&ko, NULL, &d->keepa, errmsg);
	/* keepa_new keeps its own copy; wipe ours. */
	memset(key, 0, strlen(key));
	free(key);
	if (rc)
		return rc;

	tokens_config_default(&tc);
	tc.policy = (enum tokens_policy)tokens_policy_parse(cf->tokens_policy);
	tc.reserve = cf->tokens_reserve;
	tc.margin = cf->tokens_margin;
	tc.deepest_deficit = cf->tokens_deepest_deficit;
	tc.deficit_threshold = cf->tokens_deficit_threshold;
	tc.cap_minutes = cf->tokens_cap_minutes;
	tc.latency_target_s = cf->tokens_latency_target_s;
	tc.minute_ms = cf->tokens_minute_ms;
	if ((rc = tokens_new(&tc, NULL, keepa_sync, d->keepa, &d->tokens, errmsg)))
		return rc;
	keepa_set_tokens(d->keepa, d->tokens);
	return 0;
}

/* After loading task's plugin (rc and the loader's message err, which this
 * takes): name the task in a failure, and check the task's settings
 * against what the plugin declares. */
static int checked_load(const struct task_config *task, int rc, char *err, struct plugin *out, char **errmsg)
{
	if (rc) {
		/* The loader names the file; say which task asked for it. */
		errmsg_set(errmsg, 0, "%s:%d: task \"%s\": %s", task->file, task->line, task->name,
		           err ? err : "cannot load");
		free(err);
		return rc;
	}
	/* Settings errors already carry file:line and the task. */
	rc = config_validate_task_settings(task, out->desc->settings, out->desc->nsettings, errmsg);
	if (rc)
		plugin_close(out);
	return rc;
}

int task_plugin_load(const struct config *cf, const struct task_config *task, struct plugin *out, char **errmsg)
{
	char *err = NULL;
	int rc = loader_find(cf->plugin_path, cf->nplugin_path, task->plugin, out, &err);

	return checked_load(task, rc, err, out, errmsg);
}

static int load_task(struct daemon *d, struct tg_task *task, char **errmsg)
{
	int rc = task_plugin_load(d->config, task->cfg, &task->plugin, errmsg);
	task->plugin_absent = rc == TG_ENOTFOUND && !task->plugin.handle;
	return rc;
}

/* The task's scheduler class, in-process and in a worker alike. A task a
 * reload restarts keeps its class: its share history stays, and the
 * scheduler has no removal. Interval tasks (the upserter) are
 * latency-sensitive: their small funded calls may pass a waiting head
 * (tokens_core_set_fresh). */
static int task_claim_class(struct daemon *d, struct tg_task *task, char **errmsg)
{
	int rc = tokens_find_class(d->tokens, task->cfg->name);

	if (rc < 0 || tokens_set_weight(d->tokens, rc, task->cfg->weight) != 0)
		rc = tokens_add_class(d->tokens, task->cfg->name, task->cfg->weight);
	if (rc < 0)
		return errmsg_set(errmsg, rc, "task \"%s\": cannot add a scheduler class", task->cfg->name);
	task->tokens_class = rc;
	tokens_set_fresh(d->tokens, rc, task->cfg->interval_s > 0);
	return 0;
}

/* Give the task its class, connections, and call its plugin's init. */
static int init_task(struct daemon *d, struct tg_task *task, char **errmsg)
{
	char *err = NULL;
	int rc;

	if ((rc = task_claim_class(d, task, errmsg)))
		return rc;
	if ((rc = storage_connect(d->storage, &task->db, &err)) || (rc = keepa_conn_new(d->keepa, &task->keepa, &err)))
		goto fail;
	keepa_conn_set_name(task->keepa, task->cfg->name);
	rc = task->plugin.desc->init(task, &services_table, &task->plugin_state, &err);
	if (rc > 0) {
		/* Not success: run() would get a state init never set. */
		free(err);
		err = str_printf("init returned %d, which is neither 0 (success) nor a negative TG_E* code", rc);
		rc = TG_EINVAL;
	}
	if (rc < 0)
		goto fail;
	task->initialized = true;
	return 0;
fail:
	errmsg_set(errmsg, 0, "%s:%d: task \"%s\" (%s): init failed: %s", task->cfg->file, task->cfg->line,
	                         task->cfg->name, task->plugin.path ? task->plugin.path : task->cfg->plugin,
	                         err ? err : "no message");
	log_redact(*errmsg);
	free(err);
	return rc < 0 ? rc : TG_EINVAL;
}

/* A task that could not be set up (rc < 0, message err, which this takes):
 * a required one stops the start (its message goes to *errmsg), an optional
 * one is skipped with its reason and the rest go on. */
static int skip_unless_required(struct tg_task *t, int rc, char *err, char **errmsg)
{
	if (rc == 0)
		return 0;
	/* Only an absent plugin file lets an optional task be skipped (its
	 * package may not be installed): a wrong setting or a plugin refusing
	 * its settings is a configuration error whichever task has it. */
	if (t->cfg->required || rc != TG_ENOTFOUND || !t->plugin_absent) {
		*errmsg = err;
		return rc;
	}
	log_warn(NULL, "optional task skipped: %s", err ? err : "no message");
	task_set_error(t, err);
	t->state = TASK_SKIPPED;
	free(err);
	return 0;
}

void daemon_init(struct daemon *d)
{
	pthread_condattr_t ca;

	memset(d, 0, sizeof(*d));
	atomic_init(&d->stopping, false);
	atomic_init(&d->reload_requested, false);
	pthread_mutex_init(&d->stop_mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d->stop_cv, &ca);
	pthread_condattr_destroy(&ca);
	d->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	d->worker_exe = supervise_exe();
}

void daemon_signal_stop(struct daemon *d)
{
	raise_stop(d, &d->stopping, d->stop_fd);
}

/* A stop asked for while starting: say so, and let the caller exit 0. */
static int stopped_while_starting(struct daemon *d, char **errmsg)
{
	if (!atomic_load(&d->stopping))
		return 0;
	free(*errmsg);
	errmsg_set(errmsg, 0, "stopped while starting");
	return TG_ESTOPPED;
}

/* Worker mode, before storage opens: each task's plugin is described in a
 * worker (once per plugin), so a missing plugin or a bad setting is refused
 * first, as in-process. A worker crashing while loading it refuses a dry
 * run (check); at a real start the task's own worker meets the same crash
 * in open_workers(), where it is supervised like any crash. */
static int describe_plugins(struct daemon *d, char **errmsg)
{
	for (int i = 0; i < d->ntasks; i++) {
		struct tg_task *t = &d->tasks[i];
		const struct tg_task *same = NULL;
		char *err = NULL;
		int rc;

		if ((rc = stopped_while_starting(d, errmsg)))
			return rc;
		for (int j = 0; j < i && !same; j++)
			if (d->tasks[j].plugin.desc && strcmp(d->tasks[j].cfg->plugin, t->cfg->plugin) == 0)
				same = &d->tasks[j];
		rc = supervise_describe_task(t, same, &err);
		if (rc == SUPERVISE_DIED && d->dry_run) {
			errmsg_set(&err, TG_EINVAL, "%s:%d: task \"%s\": %s", t->cfg->file, t->cfg->line, t->cfg->name,
			           err ? err : "its worker died");
			rc = TG_EINVAL;
		} else if (rc == SUPERVISE_DIED) {
			free(err);
			continue;
		}
		if ((rc = skip_unless_required(t, rc, err, errmsg)))
			return rc;
	}
	return 0;
}

int daemon_open_worker_task(struct daemon *d, struct tg_task *t, char **err)
{
	int rc;

	if ((rc = task_claim_class(d, t, err)))
		return rc;
	if ((rc = keepa_conn_new(d->keepa, &t->keepa, err)))
		return rc;
	keepa_conn_set_name(t->keepa, t->cfg->name);
	keepa_conn_forward(t->keepa, true); /* the worker parses the answers (supervise.c) */
	return supervise_start(t, err);
}

/* Worker mode: the host loads no plugin. Each task's worker loads it,
 * and a worker that crashes doing so (a constructor, init) is a crash of
 * that task, supervised like one in a run; an orderly failure (no such
 * plugin, a bad setting, init refused) is what it is in-process. */
static int open_workers(struct daemon *d, char **errmsg)
{
	for (int i = 0; i < d->ntasks; i++) {
		struct tg_task *t = &d->tasks[i];
		char *err = NULL;
		int rc;

		if ((rc = stopped_while_starting(d, errmsg)))
			return rc;
		if (t->state == TASK_SKIPPED)
			continue;
		rc = daemon_open_worker_task(d, t, &err);
		if (rc == SUPERVISE_DIED && d->dry_run) {
			/* check: a crash is a refusal naming the task, not a restart. */
			errmsg_set(&err, TG_EINVAL, "%s:%d: task \"%s\": %s", t->cfg->file, t->cfg->line, t->cfg->name,
			           err ? err : "its worker died");
			rc = TG_EINVAL;
		}
		if (rc == SUPERVISE_DIED) {
			t->failures = t->consecutive_failures = 1;
			supervise_note_crash(t, err);
			free(err);
			rc = 0;
		} else if ((rc = skip_unless_required(t, rc, err, errmsg))) {
			return rc;
		}
		t->initialized = t->state != TASK_SKIPPED;
	}
	return 0;
}

int daemon_open(struct daemon *d, struct config *config, const struct daemon_options *opts, char **errmsg)
{
	int rc;

	d->config = config;
	d->started_ms = tg_wall_ms();
	d->dry_run = opts && opts->check_only;
	if ((rc = preflight_check(config, errmsg)))
		return rc;

	/* Room for the tasks reloads may add (or restart: a changed task gets a
	 * new slot), so the array never moves under a reader. */
	d->task_capacity = config->ntasks + DAEMON_RELOAD_SLOTS;
	d->tasks = calloc((size_t)d->task_capacity, sizeof(*d->tasks));
	if (!d->tasks)
		return TG_ENOMEM;
	d->current = config;
	for (int i = 0; i < config->ntasks; i++)
		daemon_task_slot_init(d, &d->tasks[i], &config->tasks[i]);
	d->ntasks = config->ntasks;

	/* Worker mode, `tollgate check` included: plugins load in workers. */
	if (config->workers) {
		if ((rc = describe_plugins(d, errmsg)))
			return rc;
		if ((rc = open_services(d, opts, errmsg)))
			return stopped_while_starting(d, errmsg) ? TG_ESTOPPED : rc;
		return open_workers(d, errmsg);
	}
	/* Plugins first: a config naming a missing plugin fails before any
	 * file or socket is touched. */
	for (int i = 0; i < d->ntasks; i++) {
		char *err = NULL;
		rc = load_task(d, &d->tasks[i], &err);
		if ((rc = skip_unless_required(&d->tasks[i], rc, err, errmsg)))
			return rc;
	}
	/* The first Keepa reading comes after READY (core/first_reading.c), so
	 * a slow Keepa cannot hold the start past systemd's timeout; a dry run
	 * makes no Keepa call at all. */
	if ((rc = open_services(d, opts, errmsg)))
		return stopped_while_starting(d, errmsg) ? TG_ESTOPPED : rc;
	for (int i = 0; i < d->ntasks; i++) {
		char *err = NULL;
		if ((rc = stopped_while_starting(d, errmsg)))
			return rc;
		if (d->tasks[i].state == TASK_SKIPPED)
			continue;
		rc = init_task(d, &d->tasks[i], &err);
		if ((rc = skip_unless_required(&d->tasks[i], rc, err, errmsg)))
			return rc;
	}
	return 0;
}

int daemon_start_task(struct daemon *d, struct tg_task *t, char **errmsg)
{
	int rc = pthread_create(&t->thread, NULL, runner_thread, t);

	(void)d;
	if (rc)
		return errmsg_set(errmsg, TG_EIO, "task \"%s\": cannot start its thread: %s", t->cfg->name,
		                  strerror(rc));
	t->thread_started = true;
	return 0;
}

int daemon_start(struct daemon *d, char **errmsg)
{
	int started = 0;

	if (stopped_while_starting(d, errmsg))
		return TG_ESTOPPED;
	for (int i = 0; i < d->ntasks; i++) {
		struct tg_task *t = &d->tasks[i];
		if (!t->initialized)
			continue;
		if (daemon_start_task(d, t, errmsg)) {
			daemon_request_stop(d);
			return TG_EIO;
		}
		started++;
	}
	if (started == 0 && d->ntasks > 0) {
		errmsg_set(errmsg, 0, "no task could start");
		return TG_EINVAL;
	}
	return 0;
}

void daemon_join(struct daemon *d)
{
	daemon_request_stop(d);
	for (int i = 0; i < d->ntasks; i++) {
		if (d->tasks[i].thread_started) {
			pthread_join(d->tasks[i].thread, NULL);
			d->tasks[i].thread_started = false;
		}
	}
}

void daemon_close(struct daemon *d)
{
	daemon_join(d);
	for (int i = 0; i < d->ntasks; i++) {
		struct tg_task *t = &d->tasks[i];
		supervise_stop(t);
		if (t->initialized && t->plugin.handle)
			t->plugin.desc->destroy(t->plugin_state);
		contract_release(t);
		if (t->keepa)
			keepa_conn_free(t->keepa);
		if (t->db)
			storage_conn_free(t->db);
		plugin_close(&t->plugin);
		pthread_mutex_destroy(&t->mu);
		if (t->stop_fd >= 0)
			close(t->stop_fd);
	}
	free(d->tasks);
	for (int i = 0; i < d->nreloaded; i++) {
		config_release(d->reloaded[i]);
		free(d->reloaded[i]);
	}
	free(d->reloaded);
	if (d->keepa)
		keepa_free(d->keepa);
	if (d->tokens)
		tokens_free(d->tokens);
	if (d->locks) {
		locks_release(d->locks);
		free(d->locks);
	}
	if (d->storage)
		storage_free(d->storage);
	preflight_scratch_remove(d->dry_db);
	pthread_cond_destroy(&d->stop_cv);
	pthread_mutex_destroy(&d->stop_mu);
	if (d->stop_fd >= 0)
		close(d->stop_fd);
	memset(d, 0, sizeof(*d));
	d->stop_fd = -1;
}
