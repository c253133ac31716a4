/*
 * ha.c - hot standby: the standby loop, the active node's lease renewal,
 * and what status says about both (see ha.h; the lease itself is
 * storage/lease.c).
 */
#include "core/ha.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/config.h"
#include "core/daemon.h"
#include "core/runloop.h"
#include "keepa/keepa.h"
#include "observe/log.h"
#include "observe/notify.h"
#include "observe/status.h"
#include "storage/lease.h"
#include "storage/pg_conn.h"
#include "storage/storage.h"
#include "util/clock.h"
#include "util/errmsg.h"

/* sysexits' EX_UNAVAILABLE, as `tollgate run` uses it. */
#define HA_EXIT_UNAVAILABLE 69

struct ha {
	const struct config *cf;
	struct lease *lease;

	pthread_mutex_t mu; /* guards what status reads, below */
	bool active;
	struct lease_view view;
	int64_t view_at_ms; /* wall time of the view */
	int64_t takeovers;  /* by this node */
	atomic_bool lost;   /* the active run ended because the lease moved on */
	atomic_bool stop;   /* ... or because a stop signal arrived */
	char renew_error[256]; /* why the last renewal failed, "" when it worked */
	/* Monotonic ms at which the last successful renewal (or the takeover)
	 * was sent: the lease runs at least until this plus the lease, as
	 * the server stamped the heartbeat after it (ha_keepa_gate). */
	_Atomic int64_t confirmed_ms;
	bool gate_logged; /* guarded by mu */

	/* The renew thread of the active run. */
	struct daemon *d;
	pthread_t renewer;
	bool renewing;
	atomic_bool quit;
	pthread_mutex_t wait_mu;
	pthread_cond_t wait_cv; /* CLOCK_MONOTONIC */
};

static void set_view(struct ha *ha, const struct lease_view *v, bool active)
{
	pthread_mutex_lock(&ha->mu);
	ha->view = *v;
	ha->view_at_ms = tg_wall_ms();
	ha->active = active;
	pthread_mutex_unlock(&ha->mu);
}

cJSON *ha_status_json(struct ha *ha)
{
	cJSON *o = cJSON_CreateObject();

	if (!o)
		return NULL;
	pthread_mutex_lock(&ha->mu);
	cJSON_AddStringToObject(o, "role", ha->active ? "active" : "standby");
	cJSON_AddStringToObject(o, "node", ha->cf->ha_node);
	cJSON_AddStringToObject(o, "active_node", ha->view.node);
	cJSON_AddNumberToObject(o, "active_since_ms", (double)ha->view.since_ms);
	cJSON_AddNumberToObject(o, "epoch", (double)ha->view.epoch);
	/* The heartbeat's age when last seen, plus the time since. */
	cJSON_AddNumberToObject(o, "lease_age_s",
	                        (double)(ha->view.heartbeat_age_ms + tg_wall_ms() - ha->view_at_ms) / 1000.0);
	cJSON_AddNumberToObject(o, "lease_s", ha->cf->ha_lease_s);
	cJSON_AddNumberToObject(o, "takeovers", (double)ha->takeovers);
	/* While the database cannot be asked (a restart): why, until the
	 * lease is renewed again. */
	if (ha->active && ha->renew_error[0])
		cJSON_AddStringToObject(o, "lease_error", ha->renew_error);
	else
		cJSON_AddNullToObject(o, "lease_error");
	pthread_mutex_unlock(&ha->mu);
	return o;
}

/* -------------------------------------------------------------- standby */

/* Poll the lease until this node wins it (1) or is asked to stop (0).
 * Meanwhile status is served from a daemon without tasks, so `tollgate
 * status` says standby and who is active. */
static int standby(struct ha *ha, struct config *cf)
{
	struct runloop_signals signals;
	struct status_server *status = NULL;
	struct daemon d;
	int64_t last_error_log = 0;
	int won = 0;

	daemon_init(&d);
	d.config = cf;
	d.started_ms = tg_wall_ms();
	d.ha = ha;
	if (runloop_signals_start(&signals, &d) != 0) {
		log_error(NULL, "ha: cannot start the signal thread");
		daemon_close(&d);
		return -1;
	}
	if (cf->status_socket && cf->status_socket[0]) {
		char *err = NULL, *dir = strdup(cf->status_socket);

		/* The daemon makes these when it opens; a standby is earlier. */
		mkdir(cf->runtime_dir, 0750);
		if (dir && strrchr(dir, '/') && strrchr(dir, '/') != dir) {
			*strrchr(dir, '/') = '\0';
			mkdir(dir, 0750);
		}
		free(dir);
		if (status_server_start(&d, cf->status_socket, &status, &err))
			log_warn(NULL, "ha: no status while standby: %s", err ? err : "?");
		free(err);
	}
	notify_systemd("READY=1\nSTATUS=standby");
	for (;;) {
		struct lease_view v = {0};
		char from[64] = "", *err = NULL;
		int64_t asked = tg_mono_ms();
		int rc = lease_try_acquire(ha->lease, &v, from, sizeof(from), &err);

		if (rc == 1) {
			atomic_store(&ha->confirmed_ms, asked);
			pthread_mutex_lock(&ha->mu);
			ha->takeovers++;
			pthread_mutex_unlock(&ha->mu);
			set_view(ha, &v, true);
			log_info(NULL, "ha: node %s is active, epoch %lld, taking over from %s", cf->ha_node,
			         (long long)v.epoch, from[0] ? from : "no one");
			won = 1;
		} else if (rc == 0) {
			set_view(ha, &v, false);
		} else if (tg_mono_ms() - last_error_log > 30000) {
			/* Logged every 30 s, not every poll, while it lasts. */
			log_warn(NULL, "ha: cannot ask for the lease: %s", err ? err : "?");
			last_error_log = tg_mono_ms();
		}
		free(err);
		if (won || daemon_wait_until(&d, tg_mono_ms() + HA_POLL_MS) == TG_ESTOPPED)
			break;
	}
	status_server_stop(status);
	runloop_signals_stop(&signals);
	daemon_close(&d);
	return won;
}

/* ------------------------------------------------------------- renewing */

static void set_renew_error(struct ha *ha, const char *err)
{
	pthread_mutex_lock(&ha->mu);
	snprintf(ha->renew_error, sizeof(ha->renew_error), "%s", err ? err : "");
	pthread_mutex_unlock(&ha->mu);
}

static void *renew_main(void *arg)
{
	struct ha *ha = arg;
	int64_t beat = (int64_t)ha->cf->ha_heartbeat_s * 1000, lease = (int64_t)ha->cf->ha_lease_s * 1000;
	int64_t last_ok = tg_mono_ms(), sent;

	pthread_mutex_lock(&ha->wait_mu);
	while (!atomic_load(&ha->quit)) {
		struct lease_view v = {0};
		char *err = NULL;
		int rc;

		tg_cond_wait_ms(&ha->wait_cv, &ha->wait_mu, beat);
		if (atomic_load(&ha->quit))
			break;
		pthread_mutex_unlock(&ha->wait_mu);
		sent = tg_mono_ms();
		rc = lease_renew(ha->lease, &v, &err);
		if (rc == 0) {
			last_ok = tg_mono_ms();
			atomic_store(&ha->confirmed_ms, sent);
			set_view(ha, &v, true);
			set_renew_error(ha, NULL);
			if (v.regained)
				log_info(NULL, "ha: node %s took its lease back after the database restarted: still "
				         "active, epoch %lld", ha->cf->ha_node, (long long)v.epoch);
		} else {
			set_renew_error(ha, err ? err : "renewing the lease failed");
		}
		/* Lost, or not renewed for a whole lease (a standby may have
		 * taken over since): nothing more commits; stop the tasks. */
		if (rc == TG_ESTOPPED || (rc < 0 && tg_mono_ms() - last_ok > lease)) {
			storage_fence(-1);
			atomic_store(&ha->lost, true);
			if (rc == TG_ESTOPPED) {
				set_view(ha, &v, false);
				log_warn(NULL, "ha: node %s lost the lease to %s (epoch %lld): stopping the tasks, "
				         "becoming standby", ha->cf->ha_node, v.node[0] ? v.node : "another node",
				         (long long)v.epoch);
			} else {
				pthread_mutex_lock(&ha->mu);
				ha->active = false;
				pthread_mutex_unlock(&ha->mu);
				log_warn(NULL, "ha: node %s could not renew its lease for %lld s (%s): stopping the "
				         "tasks, becoming standby", ha->cf->ha_node, (long long)(lease / 1000),
				         err ? err : "?");
			}
			free(err);
			daemon_signal_stop(ha->d);
			pthread_mutex_lock(&ha->wait_mu);
			break;
		}
		if (rc < 0)
			log_warn(NULL, "ha: renewing the lease failed (%s); retrying", err ? err : "?");
		free(err);
		pthread_mutex_lock(&ha->wait_mu);
	}
	pthread_mutex_unlock(&ha->wait_mu);
	return NULL;
}

int ha_attach(struct ha *ha, struct daemon *d)
{
	if (!ha)
		return 0;
	ha->d = d;
	d->ha = ha;
	atomic_store(&ha->quit, false);
	pthread_mutex_lock(&ha->mu);
	ha->gate_logged = false;
	ha->renew_error[0] = '\0';
	pthread_mutex_unlock(&ha->mu);
	if (pthread_create(&ha->renewer, NULL, renew_main, ha) != 0)
		return TG_EIO;
	ha->renewing = true;
	return 0;
}

void ha_detach(struct ha *ha)
{
	if (!ha || !ha->renewing)
		return;
	pthread_mutex_lock(&ha->wait_mu);
	atomic_store(&ha->quit, true);
	pthread_cond_broadcast(&ha->wait_cv);
	pthread_mutex_unlock(&ha->wait_mu);
	pthread_join(ha->renewer, NULL);
	ha->renewing = false;
	ha->d = NULL;
	/* Whether lost or stopping: the lock goes, a standby may go on at once.
	 * Nothing of this node commits until it is active again. */
	storage_fence(-1);
	lease_resign(ha->lease);
	pthread_mutex_lock(&ha->mu);
	ha->active = false;
	pthread_mutex_unlock(&ha->mu);
}

/* How often a held Keepa call looks again (the renewer decides within a
 * heartbeat). */
#define HA_GATE_POLL_MS 100

/* keepa_set_send_gate's gate: see ha_gate_keepa(). */
static int keepa_gate(void *ud, char **errmsg)
{
	struct ha *ha = ud;
	int64_t lease = (int64_t)ha->cf->ha_lease_s * 1000, since;
	bool first;

	for (;;) {
		if (atomic_load(&ha->lost))
			return errmsg_set(errmsg, TG_ESTOPPED, "ha: this node lost its lease: no Keepa call");
		since = tg_mono_ms() - atomic_load(&ha->confirmed_ms);
		if (since < lease)
			return 0;
		pthread_mutex_lock(&ha->mu);
		first = !ha->gate_logged;
		ha->gate_logged = true;
		pthread_mutex_unlock(&ha->mu);
		/* One line per lapse, not per task or poll. */
		if (first)
			log_warn(NULL, "ha: holding Keepa calls: the lease was last confirmed %lld ms ago (lease %lld "
			         "ms); waiting for the renewal", (long long)since, (long long)lease);
		if (daemon_wait_until(ha->d, tg_mono_ms() + HA_GATE_POLL_MS) == TG_ESTOPPED)
			return errmsg_set(errmsg, TG_ESTOPPED, "ha: stopping: no Keepa call");
		pthread_mutex_lock(&ha->mu);
		if (tg_mono_ms() - atomic_load(&ha->confirmed_ms) < lease)
			ha->gate_logged = false;
		pthread_mutex_unlock(&ha->mu);
	}
}

void ha_gate_keepa(struct ha *ha, struct keepa *k)
{
	if (ha && k)
		keepa_set_send_gate(k, keepa_gate, ha);
}

void ha_stop_signalled(struct ha *ha)
{
	if (ha)
		atomic_store(&ha->stop, true);
}

/* ------------------------------------------------------------------ run */

int ha_run(struct config *cf, int (*run_active)(struct config *cf, struct ha *ha, void *ud), void *ud)
{
	struct ha ha = {.cf = cf};
	pthread_condattr_t ca;
	char *err = NULL;
	int code = 0, rc;

	pthread_mutex_init(&ha.mu, NULL);
	pthread_mutex_init(&ha.wait_mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ha.wait_cv, &ca);
	pthread_condattr_destroy(&ca);
	/* Every connection of this process carries the node's name: a
	 * standby that finds this node stale ends its sessions by it. */
	pg_conn_set_node(cf->ha_node);
	storage_fence(-1);
	rc = lease_open(&ha.lease, cf->storage_conninfo, cf->ha_node, (int64_t)cf->ha_lease_s * 1000, &err);
	if (rc < 0) {
		log_error(NULL, "ha: cannot reach the lease: %s", err ? err : "?");
		free(err);
		code = HA_EXIT_UNAVAILABLE;
		goto out;
	}
	log_info(NULL, "ha: node %s starts as standby (lease %d s, heartbeat %d s)", cf->ha_node, cf->ha_lease_s,
	         cf->ha_heartbeat_s);
	for (;;) {
		rc = standby(&ha, cf);
		if (rc <= 0) {
			code = rc < 0 ? HA_EXIT_UNAVAILABLE : 0;
			break;
		}
		storage_fence(ha.view.epoch);
		atomic_store(&ha.lost, false);
		code = run_active(cf, &ha, ud);
		if (!atomic_load(&ha.lost) || atomic_load(&ha.stop))
			break;
		log_info(NULL, "ha: node %s is standby again", cf->ha_node);
	}
out:
	lease_close(ha.lease);
	pthread_cond_destroy(&ha.wait_cv);
	pthread_mutex_destroy(&ha.wait_mu);
	pthread_mutex_destroy(&ha.mu);
	return code;
}
