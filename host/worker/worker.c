/*
 * worker.c - `tollgate worker --fd N`: one task's process (worker.h).
 *
 * Two threads. The reader takes every message from the host: commands
 * ("init", "run") go to the main thread, replies to the request waiting for
 * them, "stop" raises the stop flag at once (so should_stop(), sleep_ms()
 * and lock waits see it while run() is busy). The main thread runs the
 * plugin. When the host closes the socket the worker finishes what it is
 * doing, calls destroy() and exits; if the host dies outright, the kernel
 * kills the worker (PR_SET_PDEATHSIG).
 */
#include "worker/worker.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "core/contract.h"
#include "core/loader.h"
#include "core/services.h"
#include "observe/log.h"
#include "storage/locks.h"
#include "storage/pg_conn.h"
#include "storage/storage.h"
#include "util/errmsg.h"
#include "worker/desc.h"
#include "worker/settings_text.h"

static cJSON *message(const char *t)
{
	cJSON *m = cJSON_CreateObject();
	cJSON_AddStringToObject(m, "t", t);
	return m;
}

static int send_and_free(struct worker *w, cJSON *m)
{
	int rc = m ? worker_send(w, m) : TG_ENOMEM;
	cJSON_Delete(m);
	return rc;
}

/* How long the reader may wait for the host: while init or run is
 * under way, no longer than a progress report may be held (remote.c) - a
 * plugin may report and then call nothing that would take the report
 * along - and on the timeout it sends that report. */
static int reader_wait_ms(void *arg, bool timed_out)
{
	struct worker *w = arg;

	if (timed_out)
		worker_flush(w, true);
	return atomic_load(&w->busy) ? WORKER_HOLD_MS : -1;
}

/* The reader thread (see the file's comment). */
static void *read_host(void *arg)
{
	struct worker *w = arg;

	for (;;) {
		cJSON *msg = NULL;
		const char *why = NULL, *t;
		int rc = proto_recv(w->fd, &w->rd, &msg, &why);

		if (rc <= 0)
			break;
		t = proto_str(msg, "t");
		if (t && strcmp(t, "stop") == 0) {
			daemon_request_stop(&w->d);
			cJSON_Delete(msg);
			continue;
		}
		pthread_mutex_lock(&w->mu);
		if (t && (strcmp(t, "init") == 0 || strcmp(t, "run") == 0) && !w->command) {
			w->command = msg;
			atomic_store(&w->busy, true);
		} else if (t && strstr(t, "_reply") && !w->reply) {
			/* A Keepa answer comes as the next frame, as Keepa sent it;
			 * the thread that asked parses it (the plugin's thread then
			 * frees what its own thread allocated). */
			if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(msg, "body_follows"))) {
				pthread_mutex_unlock(&w->mu);
				rc = proto_recv_raw(w->fd, &w->rd, &w->reply_body, &w->reply_body_len, &why);
				pthread_mutex_lock(&w->mu);
				if (rc != 1) {
					pthread_mutex_unlock(&w->mu);
					cJSON_Delete(msg);
					break;
				}
			}
			w->reply = msg;
		} else {
			pthread_mutex_unlock(&w->mu);
			log_error(w->tc.name, "worker: unexpected message \"%s\" from the host", t ? t : "?");
			cJSON_Delete(msg);
			break;
		}
		pthread_cond_broadcast(&w->cv);
		pthread_mutex_unlock(&w->mu);
	}
	/* The host closed the socket (or broke it): stop whatever runs. */
	pthread_mutex_lock(&w->mu);
	w->host_gone = true;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	daemon_request_stop(&w->d);
	return NULL;
}

/* Load the plugin the setup names and tell the host what it declares. */
static int load_plugin(struct worker *w, const cJSON *setup)
{
	const cJSON *dirs = cJSON_GetObjectItemCaseSensitive(setup, "dirs"), *e;
	const char *list[CONFIG_MAX_PLUGIN_DIRS];
	const char *name = proto_str(setup, "plugin"), *file = proto_str(setup, "file");
	cJSON *m = message("desc");
	char *err = NULL;
	int n = 0, rc;

	cJSON_ArrayForEach(e, dirs)
	{
		if (n < CONFIG_MAX_PLUGIN_DIRS && cJSON_IsString(e))
			list[n++] = e->valuestring;
	}
	if (file)
		rc = loader_open_file(file, &w->task.plugin, &err);
	else
		rc = loader_find(list, n, name ? name : "", &w->task.plugin, &err);
	if (rc) {
		cJSON_AddBoolToObject(m, "ok", 0);
		cJSON_AddStringToObject(m, "error", err ? err : "cannot load the plugin");
	} else {
		cJSON_AddBoolToObject(m, "ok", 1);
		cJSON_AddStringToObject(m, "path", w->task.plugin.path);
		cJSON_AddItemToObject(m, "plugin", desc_to_json(w->task.plugin.desc));
	}
	free(err);
	if (send_and_free(w, m) != 0)
		return TG_EIO;
	return rc;
}

/* Storage, locks and settings: what the services need in this process. */
static int open_task(struct worker *w, const cJSON *setup, char **errmsg)
{
	const char *settings = proto_str(setup, "settings");
	const char *backend = proto_str(setup, "storage_backend");
	int rc;

	w->tc.plugin = proto_str(setup, "plugin");
	w->settings_parsed = true;
	if ((rc = settings_text_parse(&w->settings_cf, settings ? settings : "", &w->tc.settings, errmsg)))
		return rc;
	w->task.daemon = &w->d;
	w->task.cfg = &w->tc;
	w->task.remote = &worker_remote;
	/* check's dry run: the host's scratch database and no locks. */
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(setup, "dry_run")))
		return storage_open(&w->storage, backend, proto_str(setup, "storage_path"), errmsg) ||
		               storage_connect(w->storage, &w->task.db, errmsg)
		           ? TG_ESTORAGE
		           : 0;
	w->d.locks = calloc(1, sizeof(*w->d.locks));
	if (!w->d.locks)
		return TG_ENOMEM;
	if ((rc = locks_init(w->d.locks, proto_str(setup, "runtime_dir"), errmsg))) {
		free(w->d.locks);
		w->d.locks = NULL;
		return rc;
	}
	if (strcmp(backend, "postgresql") == 0) {
		/* As in the host: locks are the database's advisory locks, the
		 * connections carry the node's name, commits the lease's epoch. */
		if (proto_str(setup, "ha_node"))
			pg_conn_set_node(proto_str(setup, "ha_node"));
		if (proto_int(setup, "fence_epoch"))
			storage_fence(proto_int(setup, "fence_epoch"));
		if ((rc = locks_use_postgresql(w->d.locks, proto_str(setup, "storage_path"), errmsg)))
			return rc;
	}
	if ((rc = storage_open(&w->storage, backend, proto_str(setup, "storage_path"), errmsg)) ||
	    (rc = storage_connect(w->storage, &w->task.db, errmsg)))
		return rc;
	w->task.daemon = &w->d;
	w->task.cfg = &w->tc;
	w->task.remote = &worker_remote;
	return 0;
}

static void do_init(struct worker *w)
{
	const struct tg_plugin *p = w->task.plugin.desc;
	cJSON *m = message("init_done");
	char *err = NULL;
	int rc = p->init(&w->task, &services_table, &w->task.plugin_state, &err);

	if (rc > 0) {
		/* Not success: a plugin that returns 1 for "ok" would otherwise
		 * have run() called with a state it never set. */
		free(err);
		err = str_printf("init returned %d, which is neither 0 (success) nor a negative TG_E* code", rc);
		rc = TG_EINVAL;
	}
	w->task.initialized = rc == 0;
	cJSON_AddNumberToObject(m, "rc", rc);
	if (err)
		cJSON_AddStringToObject(m, "error", err);
	free(err);
	send_and_free(w, m);
}

static void do_run(struct worker *w)
{
	const struct tg_plugin *p = w->task.plugin.desc;
	cJSON *m = message("run_done");
	int64_t idle_s = 60;
	char *err = NULL;
	int rc;

	w->task.run_not_before_ms = -1;
	if (!w->task.initialized) {
		rc = TG_EINVAL;
		err = strdup("run before a successful init");
	} else {
		rc = p->run(w->task.plugin_state, &idle_s, &err);
	}
	contract_end_open_transaction(&w->task);
	cJSON_AddNumberToObject(m, "rc", rc);
	cJSON_AddNumberToObject(m, "idle_s", (double)idle_s);
	if (w->task.run_not_before_ms >= 0)
		cJSON_AddNumberToObject(m, "not_before_ms", (double)w->task.run_not_before_ms);
	if (err)
		cJSON_AddStringToObject(m, "error", err);
	free(err);
	send_and_free(w, m);
}

/* Serve commands until the host closes the socket. */
static void serve(struct worker *w)
{
	for (;;) {
		cJSON *cmd;
		const char *t;

		pthread_mutex_lock(&w->mu);
		while (!w->command && !w->host_gone)
			pthread_cond_wait(&w->cv, &w->mu);
		cmd = w->command;
		w->command = NULL;
		pthread_mutex_unlock(&w->mu);
		if (!cmd)
			return;
		t = proto_str(cmd, "t");
		if (strcmp(t, "init") == 0)
			do_init(w);
		else
			do_run(w);
		/* Unless the reader took the next command meanwhile. */
		pthread_mutex_lock(&w->mu);
		if (!w->command)
			atomic_store(&w->busy, false);
		pthread_mutex_unlock(&w->mu);
		cJSON_Delete(cmd);
	}
}

static void close_task(struct worker *w)
{
	if (w->task.initialized)
		w->task.plugin.desc->destroy(w->task.plugin_state);
	w->task.initialized = false;
	contract_release(&w->task);
	if (w->task.db)
		storage_conn_free(w->task.db);
	if (w->storage)
		storage_free(w->storage);
	if (w->d.locks) {
		locks_release(w->d.locks);
		free(w->d.locks);
		w->d.locks = NULL;
	}
	if (w->settings_parsed)
		config_destroy(&w->settings_cf);
}

static int parse_fd(int argc, char **argv)
{
	for (int i = 1; i + 1 < argc; i++) {
		char *end;
		long fd;
		if (strcmp(argv[i], "--fd") != 0)
			continue;
		fd = strtol(argv[i + 1], &end, 10);
		return end != argv[i + 1] && *end == '\0' && fd >= 0 && fd < 1024 ? (int)fd : -1;
	}
	return -1;
}

int worker_main(int argc, char **argv)
{
	struct worker *w = calloc(1, sizeof(*w));
	cJSON *hello, *setup = NULL;
	const char *why = NULL, *mode;
	char *err = NULL;
	int rc;

	if (!w)
		return 70;
	w->fd = parse_fd(argc, argv);
	if (w->fd < 0) {
		fprintf(stderr, "tollgate worker: this subcommand is started by the daemon, not by hand\n");
		free(w);
		return 64;
	}
	/* If the host dies without closing the socket in order, so does this. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGPIPE, SIG_IGN);
	/* SCHED_BATCH: the same share of the CPU, but a worker woken by the
	 * host's reply does not preempt the host thread that sent it, which
	 * otherwise ran its next steps after a detour through the worker. */
	sched_setscheduler(0, SCHED_BATCH, &(struct sched_param){0});
	pthread_mutex_init(&w->send_mu, NULL);
	pthread_mutex_init(&w->req_mu, NULL);
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	daemon_init(&w->d);
	proto_reader_init(&w->rd, PROTO_HOST_FRAME_MAX);
	/* The reader sends a held progress report on time when the plugin
	 * calls nothing that would take it along (remote.c). */
	w->rd.wait_ms = reader_wait_ms;
	w->rd.wait_arg = w;

	hello = message("hello");
	cJSON_AddNumberToObject(hello, "v", PROTO_VERSION);
	cJSON_AddNumberToObject(hello, "pid", getpid());
	if (send_and_free(w, hello) != 0 || proto_recv(w->fd, &w->rd, &setup, &why) != 1) {
		rc = 0; /* the host went away before saying anything */
		goto out;
	}
	if (proto_int(setup, "v") != PROTO_VERSION) {
		fprintf(stderr, "tollgate worker: the host speaks protocol %lld, this worker %d\n",
		        (long long)proto_int(setup, "v"), PROTO_VERSION);
		rc = 76; /* EX_PROTOCOL */
		goto out;
	}
	log_setup((int)proto_int(setup, "log_level"), NULL);
	w->tc.name = proto_str(setup, "task");
	mode = proto_str(setup, "mode");
	if (load_plugin(w, setup) != 0 || (mode && strcmp(mode, "describe") == 0)) {
		rc = 0;
		goto out;
	}
	if ((rc = open_task(w, setup, &err))) {
		/* The host learns it from init_done: the worker cannot be used. */
		cJSON *m = message("init_done");
		cJSON_AddNumberToObject(m, "rc", rc);
		cJSON_AddStringToObject(m, "error", err ? err : "cannot open storage or locks");
		send_and_free(w, m);
		free(err);
		rc = 0;
		goto out;
	}
	if (pthread_create(&w->reader, NULL, read_host, w) == 0) {
		w->reader_started = true;
		serve(w);
	}
	rc = 0;
out:
	if (w->reader_started)
		pthread_join(w->reader, NULL);
	close_task(w);
	plugin_close(&w->task.plugin);
	cJSON_Delete(setup);
	cJSON_Delete(w->command);
	cJSON_Delete(w->reply);
	free(w->reply_body);
	free(w->held);
	proto_reader_release(&w->rd);
	close(w->fd);
	daemon_close(&w->d);
	free(w);
	return rc;
}
