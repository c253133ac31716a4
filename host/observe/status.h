/*
 * status.h - what the daemon is doing, as one JSON document, with a verdict.
 *
 * The same snapshot feeds `tollgate status` (over the UNIX socket), the
 * Prometheus endpoint and the demo's display. The verdict makes "healthy"
 * impossible without progress: a task that has made no progress for longer
 * than its schedule allows, while not legitimately waiting, is "stalled".
 */
#ifndef TG_HOST_STATUS_H
#define TG_HOST_STATUS_H

#include <stdint.h>

struct daemon;
struct cJSON;

/* The longest reason one task's verdict carries (bytes with the NUL). */
#define STATUS_REASON_MAX 512

/* The monitoring-plugin states; UNKNOWN only from `tollgate status` itself
 * (it could not ask), never from the daemon. */
enum status_verdict { STATUS_OK = 0, STATUS_WARNING = 1, STATUS_CRITICAL = 2, STATUS_UNKNOWN = 3 };

const char *status_verdict_name(enum status_verdict v);

struct tg_task;
struct tokens_status;
struct tokens_class_status;

/* The scheduler's view of task t in st (NULL when it has no class). */
const struct tokens_class_status *status_task_class(const struct tg_task *t, const struct tokens_status *st);

/* The state a person sees for task t (called with t->mu held): a running
 * task whose call waits for tokens - its own call at the head, or queued
 * behind another task's head - is "waiting_for_tokens", never "running".
 * Status, metrics and the log's progress lines all show this one. */
const char *status_task_state(const struct tg_task *t, const struct tokens_class_status *cls);

/* A new JSON document describing d now (caller frees with cJSON_Delete). */
struct cJSON *status_snapshot(struct daemon *d);

/* Read a field of a snapshot (or of one of its objects): the number, or 0;
 * the string, or "". */
double status_num(const struct cJSON *o, const char *key);
const char *status_str(const struct cJSON *o, const char *key);
/* A field as a whole number in [lo, hi] (clamped; not a number: lo). The
 * snapshot may come from whatever listens on the socket, and converting a
 * double out of a type's range to that type is undefined behaviour. */
long long status_whole(const struct cJSON *o, const char *key, long long lo, long long hi);

/* How long a task may go without progress before it is stalled. */
int64_t status_stall_after_ms(const struct daemon *d, int task_index);

/* The UNIX-socket server: one JSON document per connection. */
struct status_server;
int status_server_start(struct daemon *d, const char *path, struct status_server **out, char **errmsg);
void status_server_stop(struct status_server *s);

/* The Prometheus text exposition of a snapshot (caller frees). */
char *status_prometheus(const struct cJSON *snapshot);

/* The metrics HTTP endpoint (libmicrohttpd) on "host:port". */
struct metrics_server;
int metrics_server_start(struct daemon *d, const char *listen, struct metrics_server **out, char **errmsg);
void metrics_server_stop(struct metrics_server *m);

#endif
