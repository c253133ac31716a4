/*
 * supervise.h - the host's side of a task's worker process.
 *
 * In worker mode (`workers = true`) every task runs in a process of its own
 * (host/worker/worker.h): a plugin that crashes, hangs or leaks costs its own
 * task only. The host keeps one thread per task, as in-process; that thread
 * starts the task's worker, asks it to init and to run, and while it runs
 * serves the worker's requests - Keepa calls through the one scheduler, the
 * budget hint, progress, log lines and state changes - and watches it:
 *
 *  - a worker that dies (signal or exit), or sends anything the protocol
 *    does not allow, is a crash: logged with the task, the plugin's path and
 *    the signal, and restarted with the task's back-off; crash_limit crashes
 *    within crash_window_s quarantine the task (not restarted, critical in
 *    status with the reason);
 *  - a worker over its task's memory_limit_mb (resident memory) or its
 *    cpu_limit_s (CPU in one run) is killed, reported, and restarted;
 *  - at shutdown a worker is asked to stop, and killed (and logged) if it
 *    is still alive stop_grace_ms later.
 *
 * A Keepa call is made by the host thread while the worker waits for it; if
 * the worker dies meanwhile, the call still completes and its reservation
 * is settled from Keepa's answer, or - when no answer came - counted as
 * possibly spent, exactly as for a call that failed in-process.
 */
#ifndef TG_HOST_SUPERVISE_H
#define TG_HOST_SUPERVISE_H

#include <stdbool.h>
#include <stdint.h>

struct tg_task;
struct daemon;
struct config;
struct task_config;
struct tg_plugin;
struct plugin;

/* What supervise_start() and supervise_run() return when the worker died or
 * was killed: *errmsg says how, and it counts as a crash. */
#define SUPERVISE_DIED (-1000)

/* Start task's worker: spawn it, let it load the plugin, check the task's
 * settings against the plugin's declarations, and call init. 0; or
 * SUPERVISE_DIED; or another negative code for an orderly failure (no such
 * plugin, a bad setting, init failed) with a message naming file:line. */
int supervise_start(struct tg_task *task, char **errmsg);

/* Before storage opens (daemon_open; a reload for a new or changed task):
 * load task's plugin in a short-lived worker, keep a copy of its descriptor
 * in task->plugin and check the task's settings against it, so that "no
 * such plugin" and "bad setting" come first, as in-process. same_plugin, if
 * not NULL, is a task already described with the same plugin: its copy is
 * used instead of loading the plugin again. 0; SUPERVISE_DIED when the
 * worker died loading it (*errmsg says how); or an orderly failure naming
 * file:line (TG_ENOTFOUND with task->plugin_absent when no file exists). */
int supervise_describe_task(struct tg_task *task, const struct tg_task *same_plugin, char **errmsg);

/* One run in the worker: run()'s result, *idle_s and its message; or
 * SUPERVISE_DIED; or TG_ESTOPPED when stopped at shutdown. */
int supervise_run(struct tg_task *task, int64_t *idle_s, char **errmsg);

/* End the task's worker: close its socket (it calls destroy and exits),
 * and kill it if it is still alive after the grace period. */
void supervise_stop(struct tg_task *task);

/* Count a crash described by how; logs it. True when the task is now
 * quarantined (its state and last_error say so). */
bool supervise_note_crash(struct tg_task *task, const char *how);

/* The binary a worker runs: this process's own, by the path it was started
 * from (read once from /proc/self/exe; a tool that runs tollgate under
 * itself, such as valgrind, reports the client's path there, while
 * executing /proc/self/exe would start the tool). */
const char *supervise_exe(void);

/* `tollgate check` and `tollgate plugins`: load a plugin in a worker
 * process and fill out with a copy of its descriptor (out->handle NULL,
 * plugin_close() frees the copy). A crash while loading (a constructor) is
 * a message naming the file and the signal. It has loader_open_fn's shape
 * for loader_scan_with() (ctx: the binary to run); `tollgate check` loads
 * its tasks' plugins through daemon_open(), in their workers. */
int supervise_open_file(void *exe, const char *path, struct plugin *out, char **errmsg);

#endif
