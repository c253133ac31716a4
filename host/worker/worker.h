/*
 * worker.h - the worker side of a task's process (`tollgate worker`).
 *
 * The host starts one worker per task by re-executing its own binary with
 * the hidden subcommand `worker --fd N`, N being its end of a socketpair,
 * and an environment without KEEPA_API_KEY. The worker loads the task's
 * plugin, hands it the usual struct tg_services - settings, clock, sleep
 * and stop, locks and storage run here, on the worker's own storage
 * connection; Keepa calls, the budget hint, progress, log lines and state
 * changes cross the socket to the host - and runs init(), run() and
 * destroy() when the host says so. Messages: host/worker/PROTOCOL.md.
 */
#ifndef TG_WORKER_WORKER_H
#define TG_WORKER_WORKER_H

#include <pthread.h>
#include <stdbool.h>

#include <libconfig.h>

#include "core/config.h"
#include "core/daemon.h"
#include "core/task.h"
#include "worker/proto.h"

struct cJSON;

struct worker {
	int fd;
	struct proto_reader rd;
	pthread_t reader;
	bool reader_started;

	pthread_mutex_t send_mu;  /* one frame at a time, from any thread; guards held */
	/* The latest progress report, held back to go out with the next
	 * message (one system call and one wake-up of the host fewer per
	 * report): its frame's text, or NULL; since when, monotonic ms. */
	char *held;
	_Atomic int64_t held_since_ms;
	atomic_bool busy;         /* init or run under way (set by the reader) */
	pthread_mutex_t req_mu;   /* one request awaiting its reply at a time */
	pthread_mutex_t mu;       /* guards what follows */
	pthread_cond_t cv;
	struct cJSON *command;    /* "init" or "run" for the main thread */
	struct cJSON *reply;      /* the answer to the pending request */
	char *reply_body;         /* and the Keepa answer's text that followed it */
	size_t reply_body_len;
	bool host_gone;

	struct daemon d;          /* this process's stop flag and locks */
	struct task_config tc;
	config_t settings_cf;
	bool settings_parsed;
	struct tg_task task;
	struct storage *storage;
};

/* `tollgate worker --fd N`: returns the process's exit status. */
int worker_main(int argc, char **argv);

/* The task_remote table of a worker (remote.c), and its helpers. */
extern const struct task_remote worker_remote;
/* Send one message (any thread), after the progress report held back if
 * there is one: 0, or TG_EIO once the host is gone. */
int worker_send(struct worker *w, const struct cJSON *msg);
/* Hold a progress report back (it replaces the one held before: each says
 * all there is to say); it goes out with the next message, or on its own
 * once it has been held WORKER_HOLD_MS: the next progress or should_stop
 * call sees that, and the reader thread wakes for it while init or run is
 * under way (worker.c). */
#define WORKER_HOLD_MS 250
int worker_hold(struct worker *w, const struct cJSON *msg);
/* Send what is held if it has been held WORKER_HOLD_MS (or at all, when
 * force). */
void worker_flush(struct worker *w, bool force);
/* Send a request and wait for its reply (a new object in *reply, and when
 * body is not NULL the text of a Keepa answer that followed it, malloc()ed,
 * or NULL): 0, or TG_ESTOPPED when the host went away first. */
int worker_request(struct worker *w, const struct cJSON *msg, struct cJSON **reply, char **body,
                   size_t *body_len);

#endif
