/*
 * remote.c - the worker's half of the services that belong to the host:
 * log lines, progress, state changes, Keepa calls and the budget hint go
 * over the socket (worker.h). A plugin calls them as it would in the host.
 */
#include "worker/worker.h"

#include "util/errmsg.h"
#include "util/json_exact.h"
#include "observe/log.h"
#include "util/clock.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static struct worker *worker_of(struct tg_task *task)
{
	return (struct worker *)(void *)((char *)task - offsetof(struct worker, task));
}

/* Send text as a frame, after the held report (send_mu held). */
static int send_locked(struct worker *w, const char *text)
{
	int rc;

	if (!w->held)
		return text ? proto_send_raw(w->fd, text, strlen(text)) : 0;
	if (text) {
		/* One sendmsg(): the host reads both with one wake-up. */
		struct proto_bytes frames[] = {{w->held, strlen(w->held)}, {text, strlen(text)}};
		rc = proto_send_frames(w->fd, frames, 2);
	} else {
		rc = proto_send_raw(w->fd, w->held, strlen(w->held));
	}
	free(w->held);
	w->held = NULL;
	atomic_store(&w->held_since_ms, 0);
	return rc;
}

int worker_send(struct worker *w, const cJSON *msg)
{
	char *text = cJSON_PrintUnformatted(msg);
	int rc;

	if (!text)
		return TG_ENOMEM;
	pthread_mutex_lock(&w->send_mu);
	rc = send_locked(w, text);
	pthread_mutex_unlock(&w->send_mu);
	free(text);
	return rc;
}

int worker_hold(struct worker *w, const cJSON *msg)
{
	char *text = cJSON_PrintUnformatted(msg);

	if (!text)
		return TG_ENOMEM;
	pthread_mutex_lock(&w->send_mu);
	free(w->held);
	w->held = text;
	if (!atomic_load(&w->held_since_ms))
		atomic_store(&w->held_since_ms, tg_mono_ms());
	pthread_mutex_unlock(&w->send_mu);
	worker_flush(w, false);
	return 0;
}

void worker_flush(struct worker *w, bool force)
{
	int64_t since = atomic_load(&w->held_since_ms);

	/* The common case, no report held or a fresh one, takes no lock. */
	if (!since || (!force && tg_mono_ms() - since < WORKER_HOLD_MS))
		return;
	pthread_mutex_lock(&w->send_mu);
	send_locked(w, NULL);
	pthread_mutex_unlock(&w->send_mu);
}

int worker_request(struct worker *w, const cJSON *msg, cJSON **reply, char **body, size_t *body_len)
{
	int rc;

	*reply = NULL;
	pthread_mutex_lock(&w->req_mu);
	rc = worker_send(w, msg);
	pthread_mutex_lock(&w->mu);
	while (rc == 0 && !w->reply && !w->host_gone)
		pthread_cond_wait(&w->cv, &w->mu);
	*reply = w->reply;
	w->reply = NULL;
	if (body) {
		*body = w->reply_body;
		*body_len = w->reply_body_len;
	} else {
		free(w->reply_body);
	}
	w->reply_body = NULL;
	pthread_mutex_unlock(&w->mu);
	pthread_mutex_unlock(&w->req_mu);
	return *reply ? 0 : TG_ESTOPPED;
}

/* A message of type t, or NULL when out of memory. */
static cJSON *message(const char *t)
{
	cJSON *m = cJSON_CreateObject();

	if (m && !cJSON_AddStringToObject(m, "t", t)) {
		cJSON_Delete(m);
		m = NULL;
	}
	return m;
}

static void send_and_free(struct worker *w, cJSON *m)
{
	if (m)
		worker_send(w, m);
	cJSON_Delete(m);
}

static void remote_log(struct tg_task *task, int level, const char *text)
{
	cJSON *m = message("log");

	if (m) {
		cJSON_AddNumberToObject(m, "level", level);
		cJSON_AddStringToObject(m, "msg", text);
	}
	send_and_free(worker_of(task), m);
}

/* Held back (worker_hold): a plugin reporting after each call would
 * otherwise cost the host a wake-up and a read of its own per report. */
static void remote_progress(struct tg_task *task, int64_t done, int64_t total, const char *unit)
{
	cJSON *m = message("progress");

	if (m) {
		cJSON_AddNumberToObject(m, "done", (double)done);
		cJSON_AddNumberToObject(m, "total", (double)total);
		if (unit)
			cJSON_AddStringToObject(m, "unit", unit);
		worker_hold(worker_of(task), m);
	}
	cJSON_Delete(m);
}

static void remote_flush(struct tg_task *task)
{
	worker_flush(worker_of(task), false);
}

static void remote_state(struct tg_task *task, enum task_state state, int64_t until_ms)
{
	cJSON *m = message("state");

	if (m) {
		cJSON_AddStringToObject(m, "state", task_state_name(state));
		cJSON_AddNumberToObject(m, "until_ms", (double)(until_ms < -1 ? -1 : until_ms));
		if (state == TASK_LOCK_WAIT)
			cJSON_AddStringToObject(m, "lock", task->waiting_lock);
		/* Storage health as this worker's writes found it (storage_gate.c):
		 * status shows it from the host. */
		pthread_mutex_lock(&task->mu);
		cJSON_AddStringToObject(m, "storage_error", task->storage_failing ? task->storage_error : "");
		cJSON_AddNumberToObject(m, "storage_since_ms", (double)task->storage_failing_since_ms);
		pthread_mutex_unlock(&task->mu);
	}
	send_and_free(worker_of(task), m);
}

static int remote_keepa_call(struct tg_task *task, const struct tg_keepa_request *req, cJSON **response,
                             char **errmsg)
{
	cJSON *m = message("keepa"), *params, *reply = NULL;
	const char *err;
	char *body = NULL;
	size_t len = 0;
	int rc;

	if (!m || !(params = cJSON_AddArrayToObject(m, "params"))) {
		cJSON_Delete(m);
		return TG_ENOMEM;
	}
	cJSON_AddStringToObject(m, "kind", req->kind);
	cJSON_AddNumberToObject(m, "units", (double)(req->units > 0 ? req->units : 0));
	cJSON_AddStringToObject(m, "path", req->path);
	for (size_t i = 0; i < req->nparams; i++) {
		cJSON *pair = cJSON_CreateArray();
		cJSON_AddItemToArray(pair, cJSON_CreateString(req->params[i].name ? req->params[i].name : ""));
		cJSON_AddItemToArray(pair, cJSON_CreateString(req->params[i].value ? req->params[i].value : ""));
		cJSON_AddItemToArray(params, pair);
	}
	if (req->json_body)
		cJSON_AddStringToObject(m, "body", req->json_body);
	rc = worker_request(worker_of(task), m, &reply, &body, &len);
	cJSON_Delete(m);
	if (rc)
		return rc;
	rc = (int)proto_int(reply, "rc");
	err = proto_str(reply, "error");
	/* The host checked the text and read its envelope only: the tree is
	 * built here, as keepa.c builds it in-process - big integers keeping
	 * their digits too (util/json_exact.h). */
	if (rc == 0 && body) {
		*response = cJSON_ParseWithLength(body, len);
		if (*response && json_exact_ints(*response, body, len) < 0)
			log_warn(task->cfg->name, "out of memory keeping the exact digits of big integers in an answer");
	} else if (rc && err)
		errmsg_set(errmsg, rc, "%s", err);
	if (rc == 0 && !*response)
		rc = errmsg_set(errmsg, TG_ENETWORK, "the host forwarded an answer that does not parse");
	free(body);
	cJSON_Delete(reply);
	return rc;
}

static int64_t remote_budget_hint(struct tg_task *task)
{
	cJSON *m = message("budget"), *reply = NULL;
	int64_t hint = 0;

	if (m && worker_request(worker_of(task), m, &reply, NULL, NULL) == 0)
		hint = proto_int(reply, "hint");
	cJSON_Delete(m);
	cJSON_Delete(reply);
	return hint;
}

const struct task_remote worker_remote = {
	.log = remote_log,
	.progress = remote_progress,
	.state = remote_state,
	.keepa_call = remote_keepa_call,
	.budget_hint = remote_budget_hint,
	.flush = remote_flush,
};
