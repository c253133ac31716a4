/*
 * supervise.c - start, serve, watch and end a task's worker (supervise.h).
 */
#include "core/supervise.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/daemon.h"
#include "core/ha.h"
#include "core/loader.h"
#include "keepa/keepa.h"
#include "observe/log.h"
#include "observe/status.h"
#include "tokens/tokens.h"
#include "util/errmsg.h"
#include "worker/desc.h"
#include "worker/proto.h"
#include "worker/settings_text.h"

extern char **environ;

/* How often a running worker's memory and CPU are looked at. */
#define MONITOR_MS 1000
/* How long a worker that closed its socket gets to exit before SIGKILL. */
#define EXIT_GRACE_MS 2000
/* How long a send may wait for a worker to read. */
#define SEND_TIMEOUT_S 10

struct worker_link {
	pid_t pid;
	int sock;  /* the host's end: blocking sends, reads with MSG_DONTWAIT */
	int pidfd; /* readable when the worker has exited; -1 when the kernel has none */
	/* What await() waits on: sock, pidfd and, until the stop is sent, the
	 * daemon's and the task's stop_fd. One epoll set for the link's life:
	 * poll() set up and took down a wait on four descriptors per message. */
	int ep;
	bool stop_fds_watched;
	struct proto_reader rd;
	bool reaped;
	int wstatus;
	char killed_for[256]; /* why the host killed it ("" when it did not) */
	bool stop_sent;
	int64_t stop_deadline; /* monotonic ms */
	bool in_run;
	int64_t run_cpu_ms; /* the worker's CPU time when the run began */
};

/* ------------------------------------------------------------ processes */

static char exe_path[4096];

static void resolve_exe(void)
{
	ssize_t n = readlink("/proc/self/exe", exe_path, sizeof(exe_path) - 1);

	if (n <= 0 || (size_t)n >= sizeof(exe_path) - 1 || strstr(exe_path, " (deleted)"))
		snprintf(exe_path, sizeof(exe_path), "/proc/self/exe");
	else
		exe_path[n] = '\0';
}

const char *supervise_exe(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, resolve_exe);
	return exe_path;
}

/* The environment of a worker: the host's, without the Keepa key (the
 * host wiped it already; this holds even if someone set it again) and
 * without systemd's notify socket (only the host speaks for the service). */
static char **worker_environment(void)
{
	size_t n = 0, k = 0;
	char **env;

	while (environ && environ[n])
		n++;
	env = calloc(n + 1, sizeof(*env));
	if (!env)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "KEEPA_API_KEY=", 14) != 0 && strncmp(environ[i], "NOTIFY_SOCKET=", 14) != 0)
			env[k++] = environ[i];
	return env;
}

/* What an event in the link's epoll set is about. */
enum { WATCH_SOCK, WATCH_PIDFD, WATCH_STOP };

static int watch(struct worker_link *w, int fd, int what)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)what};

	return epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev);
}

static void reap(struct worker_link *w);

static int spawn(const char *exe, const char *task_name, struct worker_link **out, char **errmsg)
{
	struct worker_link *w = calloc(1, sizeof(*w));
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, defaults;
	char **env = worker_environment();
	char *argv[] = {"tollgate", "worker", "--fd", "3", "--task", (char *)(uintptr_t)task_name, NULL};
	struct timeval send_timeout = {SEND_TIMEOUT_S, 0};
	int sv[2], rc;

	if (!w || !env) {
		free(w);
		free(env);
		return TG_ENOMEM;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		int err = errno;
		free(w);
		free(env);
		return errmsg_set(errmsg, TG_EIO, "cannot make a socket for the worker: %s", strerror(err));
	}
	/* dup2 onto itself would keep close-on-exec: make sure it is not 3. */
	if (sv[1] == 3) {
		int moved = fcntl(sv[1], F_DUPFD_CLOEXEC, 4);
		close(sv[1]);
		sv[1] = moved;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, sv[1], 3);
	posix_spawn_file_actions_addclosefrom_np(&fa, 4);
	posix_spawnattr_init(&attr);
	/* The host blocks its signals in every thread; a worker starts clean.
	 * Its own process group: a terminal's ^C goes to the host, which then
	 * stops the workers in order. */
	sigemptyset(&none);
	sigemptyset(&defaults);
	sigaddset(&defaults, SIGPIPE);
	sigaddset(&defaults, SIGTERM);
	sigaddset(&defaults, SIGINT);
	sigaddset(&defaults, SIGHUP);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &defaults);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
	rc = posix_spawn(&w->pid, exe, &fa, &attr, argv, env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	free(env);
	close(sv[1]);
	if (rc != 0) {
		close(sv[0]);
		free(w);
		return errmsg_set(errmsg, TG_EIO, "cannot start a worker (%s): %s", exe, strerror(rc));
	}
	w->sock = sv[0];
	/* Sends block (a worker's reader thread always reads), but not for
	 * ever: a worker that stops reading fails the send and is a crash. */
	setsockopt(w->sock, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof(send_timeout));
	w->pidfd = (int)syscall(SYS_pidfd_open, w->pid, 0);
	w->ep = epoll_create1(EPOLL_CLOEXEC);
	if (w->ep < 0 || watch(w, w->sock, WATCH_SOCK) != 0 || (w->pidfd >= 0 && watch(w, w->pidfd, WATCH_PIDFD) != 0)) {
		int err = errno;
		kill(w->pid, SIGKILL);
		reap(w);
		close(w->sock);
		if (w->pidfd >= 0)
			close(w->pidfd);
		if (w->ep >= 0)
			close(w->ep);
		free(w);
		return errmsg_set(errmsg, TG_EIO, "cannot watch a worker's socket: %s", strerror(err));
	}
	proto_reader_init(&w->rd, PROTO_WORKER_FRAME_MAX);
	*out = w;
	return 0;
}

static void reap(struct worker_link *w)
{
	if (w->reaped)
		return;
	while (waitpid(w->pid, &w->wstatus, 0) < 0 && errno == EINTR)
		;
	w->reaped = true;
}

/* Has it exited? (reaps when it has) */
static bool exited(struct worker_link *w)
{
	if (w->reaped)
		return true;
	if (waitpid(w->pid, &w->wstatus, WNOHANG) == w->pid)
		w->reaped = true;
	return w->reaped;
}

static void kill_worker(struct worker_link *w, const char *why)
{
	/* The first reason wins; a longer one is cut to what the link keeps. */
	if (!w->killed_for[0]) {
		size_t n = strnlen(why, sizeof(w->killed_for) - 1);

		memcpy(w->killed_for, why, n);
		w->killed_for[n] = '\0';
	}
	if (!w->reaped)
		kill(w->pid, SIGKILL);
	reap(w);
}

/* Wait up to ms for the worker to exit; kill it after that. */
static void wait_exit(struct worker_link *w, int64_t ms, const char *why_if_killed)
{
	int64_t end = tg_mono_ms() + ms;

	while (!exited(w)) {
		int64_t left = end - tg_mono_ms();
		if (left <= 0) {
			kill_worker(w, why_if_killed);
			return;
		}
		if (w->pidfd >= 0) {
			struct pollfd p = {.fd = w->pidfd, .events = POLLIN};
			poll(&p, 1, (int)(left > 50 ? 50 : left));
		} else {
			struct timespec ts = {0, 10 * 1000 * 1000};
			nanosleep(&ts, NULL);
		}
	}
}

static void free_link(struct worker_link *w)
{
	if (!w)
		return;
	if (!w->reaped)
		kill_worker(w, "its task was closed");
	close(w->sock);
	if (w->pidfd >= 0)
		close(w->pidfd);
	close(w->ep);
	proto_reader_release(&w->rd);
	free(w);
}

/* How the worker ended, for the log and status. */
static void describe_end(const struct worker_link *w, char *buf, size_t len)
{
	if (w->killed_for[0])
		snprintf(buf, len, "killed by the host: %s", w->killed_for);
	else if (!w->reaped)
		snprintf(buf, len, "closed its socket");
	else if (WIFSIGNALED(w->wstatus))
		snprintf(buf, len, "killed by signal SIG%s (%s)", sigabbrev_np(WTERMSIG(w->wstatus))
		                                                       ? sigabbrev_np(WTERMSIG(w->wstatus))
		                                                       : "?",
		         strsignal(WTERMSIG(w->wstatus)));
	else if (WIFEXITED(w->wstatus))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(w->wstatus));
	else
		snprintf(buf, len, "ended");
}

/* Resident memory and CPU time of a process (from /proc/PID/stat). */
static int proc_usage(pid_t pid, int64_t *rss_bytes, int64_t *cpu_ms)
{
	char path[64], buf[1024], *p;
	unsigned long long utime, stime;
	long long rss;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return TG_EIO;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return TG_EIO;
	buf[n] = '\0';
	/* The command name may hold spaces and parentheses: fields count from
	 * the last ')'. utime is field 14, stime 15, rss 24. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d %*u %*u %lld",
	                 &utime, &stime, &rss) != 3)
		return TG_EIO;
	*cpu_ms = (int64_t)((utime + stime) * 1000 / (unsigned long long)sysconf(_SC_CLK_TCK));
	*rss_bytes = (int64_t)rss * sysconf(_SC_PAGESIZE);
	return 0;
}

/* Over its memory or CPU limit? Then it is killed (and this says so). */
static bool over_limits(struct tg_task *task, struct worker_link *w)
{
	int64_t rss, cpu;
	char why[200];

	if (!task || proc_usage(w->pid, &rss, &cpu) != 0)
		return false;
	if (rss > task->cfg->memory_limit_mb * 1024 * 1024) {
		snprintf(why, sizeof(why), "resident memory %lld MB is over memory_limit_mb = %lld",
		         (long long)(rss >> 20), (long long)task->cfg->memory_limit_mb);
	} else if (w->in_run && cpu - w->run_cpu_ms > task->cfg->cpu_limit_s * 1000) {
		snprintf(why, sizeof(why), "one run used %lld s of CPU, over cpu_limit_s = %lld",
		         (long long)((cpu - w->run_cpu_ms) / 1000), (long long)task->cfg->cpu_limit_s);
	} else {
		return false;
	}
	kill_worker(w, why);
	return true;
}

/* ------------------------------------------------------------ messages */

static int send_type(struct worker_link *w, const char *t)
{
	cJSON *m = cJSON_CreateObject();
	int rc;

	cJSON_AddStringToObject(m, "t", t);
	rc = proto_send(w->sock, m);
	cJSON_Delete(m);
	return rc;
}

static const char *task_name(const struct tg_task *task)
{
	return task ? task->cfg->name : NULL;
}

static void reply_keepa(struct tg_task *task, struct worker_link *w, const cJSON *msg)
{
	/* The reply of every answered call: known text, not built and printed. */
	static const char answered[] = "{\"t\":\"keepa_reply\",\"rc\":0,\"body_follows\":true}";
	const cJSON *params = cJSON_GetObjectItemCaseSensitive(msg, "params"), *p;
	struct tg_keepa_param kp[PROTO_PARAMS_MAX];
	struct tg_keepa_request req = {0};
	struct daemon *d = task->daemon;
	cJSON *reply, *response = NULL;
	char *err = NULL, *head = NULL;
	const char *body = NULL;
	size_t len = 0;
	double estimate;
	int rc;

	req.kind = proto_str(msg, "kind");
	req.units = proto_int(msg, "units");
	req.path = proto_str(msg, "path");
	req.json_body = proto_str(msg, "body");
	cJSON_ArrayForEach(p, params)
	{
		kp[req.nparams].name = cJSON_GetArrayItem(p, 0)->valuestring;
		kp[req.nparams].value = cJSON_GetArrayItem(p, 1)->valuestring;
		req.nparams++;
	}
	req.params = kp;
	estimate = plugin_declared_cost(task->plugin.desc, req.kind, req.units);
	if (estimate < 0) {
		rc = TG_EINVAL;
		err = str_printf("call kind \"%s\" is not in plugin \"%s\"'s cost model", req.kind, task->plugin.desc->name);
	} else if (!d->keepa || d->dry_run) {
		rc = TG_ENOTSUP;
		err = strdup("no Keepa connection in this mode");
	} else {
		rc = keepa_call(d->keepa, task->keepa, task->tokens_class, estimate, &req, &response, &err);
	}
	/* The answer goes as the text Keepa sent, in a frame of its own: the
	 * host read only its envelope (keepa_conn_forward) - building and
	 * printing the tree would cost the host more than the call itself -
	 * and the worker parses the bytes for the plugin. If the worker died
	 * meanwhile the call's tokens are settled already (keepa_call
	 * released its ticket); the send fails, the death is seen next. */
	if (response)
		body = keepa_conn_body(task->keepa, &len);
	if (response && rc == 0 && !err) {
		struct proto_bytes frames[] = {{answered, sizeof(answered) - 1}, {body, len}};
		proto_send_frames(w->sock, frames, 2);
	} else if ((reply = cJSON_CreateObject())) {
		cJSON_AddStringToObject(reply, "t", "keepa_reply");
		cJSON_AddNumberToObject(reply, "rc", rc);
		if (err)
			cJSON_AddStringToObject(reply, "error", err);
		if (response)
			cJSON_AddBoolToObject(reply, "body_follows", 1);
		if (!response)
			proto_send(w->sock, reply);
		else if ((head = cJSON_PrintUnformatted(reply))) {
			struct proto_bytes frames[] = {{head, strlen(head)}, {body, len}};
			proto_send_frames(w->sock, frames, 2);
			free(head);
		}
		cJSON_Delete(reply);
	}
	free(err);
	if (response) {
		keepa_conn_trim(task->keepa);
		cJSON_Delete(response);
	}
}

static enum task_state state_named(const char *s)
{
	if (strcmp(s, "sleeping") == 0)
		return TASK_SLEEPING;
	if (strcmp(s, "waiting_for_lock") == 0)
		return TASK_LOCK_WAIT;
	if (strcmp(s, "waiting_for_storage") == 0)
		return TASK_STORAGE_WAIT;
	return TASK_RUNNING;
}

/* A state change, and with it what the worker's storage gate knows. */
static void note_state(struct tg_task *task, const cJSON *msg)
{
	const char *storage_error = proto_str(msg, "storage_error");

	pthread_mutex_lock(&task->mu);
	if (proto_str(msg, "lock"))
		snprintf(task->waiting_lock, sizeof(task->waiting_lock), "%s", proto_str(msg, "lock"));
	if (storage_error) {
		task->storage_failing = storage_error[0] != '\0';
		task->storage_failing_since_ms = proto_int(msg, "storage_since_ms");
		snprintf(task->storage_error, sizeof(task->storage_error), "%s", storage_error);
		log_redact(task->storage_error);
	}
	pthread_mutex_unlock(&task->mu);
	task_set_state(task, state_named(proto_str(msg, "state")), proto_int(msg, "until_ms"));
}

/* Serve one checked message that is not the one awaited. 0, or a reason
 * why the worker broke the protocol. */
static const char *serve(struct tg_task *task, struct worker_link *w, int type, const cJSON *msg)
{
	switch (type) {
	case PROTO_LOG:
		log_msg((int)proto_int(msg, "level"), task_name(task), "%s", proto_str(msg, "msg"));
		return NULL;
	case PROTO_PROGRESS:
		if (!task)
			break;
		task_note_progress(task, proto_int(msg, "done"), proto_int(msg, "total"), proto_str(msg, "unit"));
		return NULL;
	case PROTO_STATE:
		if (!task)
			break;
		note_state(task, msg);
		return NULL;
	case PROTO_KEEPA:
		if (!task || !w->in_run)
			break;
		reply_keepa(task, w, msg);
		return NULL;
	case PROTO_BUDGET:
		if (!task) {
			break;
		} else {
			cJSON *reply = cJSON_CreateObject();
			cJSON_AddStringToObject(reply, "t", "budget_reply");
			cJSON_AddNumberToObject(reply, "hint", task->daemon->tokens ? (double)tokens_budget_hint(
			                                                                    task->daemon->tokens, task->tokens_class)
			                                                              : 0);
			proto_send(w->sock, reply);
			cJSON_Delete(reply);
			return NULL;
		}
	default: break;
	}
	return "a message out of turn";
}

/* The worker broke the protocol: it is killed, never trusted again. */
static int violation(struct worker_link *w, const char *why, char **errmsg)
{
	char how[320];

	snprintf(how, sizeof(how), "sent %s", why);
	kill_worker(w, how);
	describe_end(w, how, sizeof(how));
	return errmsg_set(errmsg, SUPERVISE_DIED, "%s", how);
}

static int died(struct worker_link *w, char **errmsg)
{
	char how[320];

	wait_exit(w, EXIT_GRACE_MS, "it closed its socket but did not exit");
	describe_end(w, how, sizeof(how));
	return errmsg_set(errmsg, SUPERVISE_DIED, "%s", how);
}

/* Read what the socket has: 1 when there may be more, 0 at end of file,
 * -1 when nothing more is there now. */
static int read_some(struct worker_link *w)
{
	char buf[65536];
	ssize_t n = recv(w->sock, buf, sizeof(buf), MSG_DONTWAIT);

	if (n > 0) {
		if (proto_reader_feed(&w->rd, buf, (size_t)n) != 0)
			return 0;
		/* A short read emptied the socket: no need to ask again. */
		return (size_t)n < sizeof(buf) ? -1 : 1;
	}
	if (n == 0 || (errno != EAGAIN && errno != EINTR))
		return 0;
	return -1;
}

/* Wait for the next message of type want, serving every other one. 0 and
 * *out; SUPERVISE_DIED with *errmsg; TG_ESTOPPED when the worker had to be
 * killed at shutdown. */
static int await(struct tg_task *task, struct worker_link *w, enum proto_type want, cJSON **out, char **errmsg)
{
	struct daemon *d = task ? task->daemon : NULL;
	int64_t next_check = tg_mono_ms() + MONITOR_MS;
	bool eof = false;

	*out = NULL;
	for (;;) {
		struct epoll_event ev[4];
		bool sock_ready = false, pid_ready = false;
		cJSON *msg = NULL;
		const char *why = NULL;
		char reason[200];
		int n, rc, timeout = MONITOR_MS;
		int64_t now;

		rc = proto_reader_next(&w->rd, &msg, &why);
		if (rc < 0)
			return violation(w, why, errmsg);
		if (rc == 1) {
			int type = proto_check_from_worker(msg, reason, sizeof(reason));
			if (type < 0) {
				cJSON_Delete(msg);
				return violation(w, reason, errmsg);
			}
			if (type == (int)want) {
				*out = msg;
				return 0;
			}
			why = serve(task, w, type, msg);
			cJSON_Delete(msg);
			if (why)
				return violation(w, why, errmsg);
			continue;
		}
		if (eof)
			return died(w, errmsg);

		now = tg_mono_ms();
		if (w->stop_sent && now >= w->stop_deadline) {
			char line[160];
			snprintf(line, sizeof(line), "it did not stop within %d ms of the stop",
			         d->config->supervisor_stop_grace_ms);
			log_warn(task_name(task), "worker pid %d (plugin %s) %s: killed", (int)w->pid,
			         task->plugin.path ? task->plugin.path : task->cfg->plugin, line);
			kill_worker(w, line);
			return TG_ESTOPPED;
		}
		if (task && now >= next_check) {
			next_check = now + MONITOR_MS;
			if (over_limits(task, w))
				return died(w, errmsg);
		}
		/* The daemon's stop, and a reload stopping this task alone. */
		if (d && !w->stop_sent && !w->stop_fds_watched) {
			w->stop_fds_watched = true;
			if (d->stop_fd >= 0)
				watch(w, d->stop_fd, WATCH_STOP);
			if (task->stop_fd >= 0)
				watch(w, task->stop_fd, WATCH_STOP);
		}
		if (w->stop_sent && w->stop_deadline - now < timeout)
			timeout = (int)(w->stop_deadline - now);
		n = epoll_wait(w->ep, ev, 4, timeout < 0 ? 0 : timeout);
		if (n < 0 && errno != EINTR)
			return died(w, errmsg);
		for (int i = 0; i < n; i++) {
			sock_ready |= ev[i].data.u32 == WATCH_SOCK;
			pid_ready |= ev[i].data.u32 == WATCH_PIDFD;
		}
		if (d && !w->stop_sent && (atomic_load(&d->stopping) || atomic_load(&task->stop))) {
			w->stop_sent = true;
			w->stop_deadline = tg_mono_ms() + d->config->supervisor_stop_grace_ms;
			/* They stay readable: watched on, they would wake every wait. */
			if (d->stop_fd >= 0)
				epoll_ctl(w->ep, EPOLL_CTL_DEL, d->stop_fd, NULL);
			if (task->stop_fd >= 0)
				epoll_ctl(w->ep, EPOLL_CTL_DEL, task->stop_fd, NULL);
			send_type(w, "stop");
		}
		if (sock_ready) {
			/* Drain: a dying worker's last lines are worth reading. */
			while ((rc = read_some(w)) > 0)
				;
			if (rc == 0)
				eof = true;
		} else if (pid_ready) {
			while ((rc = read_some(w)) > 0)
				;
			eof = true;
		} else if (w->pidfd < 0 && exited(w)) {
			eof = true;
		}
	}
}

/* ------------------------------------------------------------ lifecycle */

static cJSON *setup_message(const struct config *cf, const struct task_config *tc, const char *mode)
{
	static const struct config none;
	cJSON *m = cJSON_CreateObject(), *dirs;
	char *settings = tc ? settings_text(tc->settings) : NULL;

	if (!cf)
		cf = &none;
	cJSON_AddStringToObject(m, "t", "setup");
	cJSON_AddNumberToObject(m, "v", PROTO_VERSION);
	cJSON_AddStringToObject(m, "mode", mode);
	cJSON_AddStringToObject(m, "task", tc ? tc->name : "");
	cJSON_AddStringToObject(m, "plugin", tc ? tc->plugin : "");
	dirs = cJSON_AddArrayToObject(m, "dirs");
	for (int i = 0; i < cf->nplugin_path; i++)
		cJSON_AddItemToArray(dirs, cJSON_CreateString(cf->plugin_path[i]));
	cJSON_AddStringToObject(m, "settings", settings ? settings : "");
	cJSON_AddStringToObject(m, "storage_backend", cf->storage_backend ? cf->storage_backend : "");
	/* PostgreSQL: the connection string (it names no password: libpq
	 * finds that in ~/.pgpass or the environment, as in the host). */
	if (cf->storage_backend && strcmp(cf->storage_backend, "postgresql") == 0)
		cJSON_AddStringToObject(m, "storage_path", cf->storage_conninfo ? cf->storage_conninfo : "");
	else
		cJSON_AddStringToObject(m, "storage_path", cf->storage_path ? cf->storage_path : "");
	if (cf->ha_node)
		cJSON_AddStringToObject(m, "ha_node", cf->ha_node);
	cJSON_AddStringToObject(m, "runtime_dir", cf->runtime_dir ? cf->runtime_dir : "");
	cJSON_AddNumberToObject(m, "log_level", log_get_level());
	free(settings);
	return m;
}

/* Hello (with the right version), then the plugin's descriptor. */
static int handshake(struct tg_task *task, struct worker_link *w, cJSON *setup, cJSON **desc, char **errmsg)
{
	cJSON *hello = NULL;
	int rc;

	if (proto_send(w->sock, setup) != 0)
		return died(w, errmsg);
	if ((rc = await(task, w, PROTO_HELLO, &hello, errmsg)))
		return rc;
	if (proto_int(hello, "v") != PROTO_VERSION) {
		char why[96];
		snprintf(why, sizeof(why), "protocol version %lld, not %d", (long long)proto_int(hello, "v"),
		         PROTO_VERSION);
		cJSON_Delete(hello);
		return violation(w, why, errmsg);
	}
	cJSON_Delete(hello);
	return await(task, w, PROTO_DESC, desc, errmsg);
}

/* The plugin file a task's plugin would be loaded from, for messages
 * about a worker that died before it could say. */
static const char *plugin_where(const struct tg_task *task, char *buf, size_t len)
{
	const struct config *cf = task->daemon->config;
	struct stat st;

	if (task->plugin.path)
		return task->plugin.path;
	for (int i = 0; i < cf->nplugin_path; i++) {
		snprintf(buf, len, "%s/%s.so", cf->plugin_path[i], task->cfg->plugin);
		if (stat(buf, &st) == 0)
			return buf;
	}
	snprintf(buf, len, "%s (not found in plugin_path)", task->cfg->plugin);
	return buf;
}

/* A worker's death while doing what: "... while loading plugin X: how". */
static int died_while(struct tg_task *task, const char *doing, char **errmsg)
{
	char where[600];

	/* errmsg_set() formats before it frees what *errmsg held. */
	return errmsg_set(errmsg, SUPERVISE_DIED, "worker died %s (plugin %s): %s", doing,
	                  plugin_where(task, where, sizeof(where)), *errmsg ? *errmsg : "no reason");
}

static int adopt_desc(struct tg_task *task, const cJSON *desc, char **errmsg)
{
	const struct task_config *tc = task->cfg;
	struct tg_plugin *copy;
	int rc;

	if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(desc, "ok")))
		return errmsg_set(errmsg, TG_ENOTFOUND, "%s:%d: task \"%s\": %s", tc->file, tc->line, tc->name,
		                  proto_str(desc, "error"));
	copy = desc_from_json(cJSON_GetObjectItemCaseSensitive(desc, "plugin"));
	if (!copy)
		return TG_ENOMEM;
	/* The first copy stays for the task's life (status reads it from its
	 * own thread): a restarted worker's copy only has its settings checked. */
	if (task->plugin.desc) {
		rc = config_validate_task_settings(tc, copy->settings, copy->nsettings, errmsg);
		desc_free(copy);
		return rc;
	}
	pthread_mutex_lock(&task->mu);
	task->plugin.path = strdup(proto_str(desc, "path"));
	task->plugin.desc = copy;
	task->plugin.free_desc = desc_free;
	pthread_mutex_unlock(&task->mu);
	return config_validate_task_settings(tc, copy->settings, copy->nsettings, errmsg);
}

int supervise_start(struct tg_task *task, char **errmsg)
{
	const struct task_config *tc = task->cfg;
	struct worker_link *w = NULL;
	cJSON *setup, *desc = NULL, *done = NULL;
	int rc;

	*errmsg = NULL;
	if ((rc = spawn(task->daemon->worker_exe, tc->name, &w, errmsg)))
		return rc;
	setup = setup_message(task->daemon->config, tc, "run");
	/* check (a dry run): the daemon's scratch database, no locks, nothing
	 * of the real storage touched - as in-process. */
	if (task->daemon->dry_run) {
		cJSON_ReplaceItemInObjectCaseSensitive(setup, "storage_backend", cJSON_CreateString("sqlite"));
		cJSON_ReplaceItemInObjectCaseSensitive(setup, "storage_path", cJSON_CreateString(task->daemon->dry_db));
		cJSON_AddBoolToObject(setup, "dry_run", 1);
	}
	/* Hot standby: the worker's commits carry the lease epoch this node
	 * holds, so a node that lost the lease commits nothing, workers
	 * included (ha.h). */
	if (task->daemon->ha) {
		cJSON *ha = ha_status_json(task->daemon->ha);
		cJSON_AddNumberToObject(setup, "fence_epoch", status_num(ha, "epoch"));
		cJSON_Delete(ha);
	}
	rc = handshake(task, w, setup, &desc, errmsg);
	cJSON_Delete(setup);
	if (rc == SUPERVISE_DIED) {
		free_link(w);
		return died_while(task, "while loading the plugin", errmsg);
	}
	if (rc == 0)
		rc = adopt_desc(task, desc, errmsg);
	cJSON_Delete(desc);
	if (rc == 0 && (rc = send_type(w, "init")) == 0 && (rc = await(task, w, PROTO_INIT_DONE, &done, errmsg)) == 0) {
		rc = (int)proto_int(done, "rc");
		if (rc)
			errmsg_set(errmsg, rc, "%s:%d: task \"%s\" (%s): init failed: %s", tc->file, tc->line, tc->name,
			           task->plugin.path, proto_str(done, "error") ? proto_str(done, "error") : "no message");
	}
	cJSON_Delete(done);
	if (rc == SUPERVISE_DIED) {
		free_link(w);
		return died_while(task, "in init", errmsg);
	}
	if (rc) {
		/* An orderly failure: the worker is of no more use. */
		close(w->sock);
		w->sock = -1;
		wait_exit(w, EXIT_GRACE_MS, "it did not exit after a failed start");
		free_link(w);
		if (*errmsg)
			log_redact(*errmsg);
		return rc;
	}
	task->worker = w;
	return 0;
}

int supervise_run(struct tg_task *task, int64_t *idle_s, char **errmsg)
{
	struct worker_link *w = task->worker;
	cJSON *done = NULL;
	int64_t rss;
	int rc;

	*errmsg = NULL;
	if (proc_usage(w->pid, &rss, &w->run_cpu_ms) != 0)
		w->run_cpu_ms = 0;
	w->in_run = true;
	if (send_type(w, "run") != 0)
		rc = died(w, errmsg);
	else
		rc = await(task, w, PROTO_RUN_DONE, &done, errmsg);
	w->in_run = false;
	if (rc == 0) {
		rc = (int)proto_int(done, "rc");
		*idle_s = proto_int(done, "idle_s");
		if (cJSON_GetObjectItemCaseSensitive(done, "not_before_ms")) {
			int64_t nb = proto_int(done, "not_before_ms");
			task->run_not_before_ms = nb > TASK_NOT_BEFORE_MAX_MS ? TASK_NOT_BEFORE_MAX_MS : nb;
		}
		if (proto_str(done, "error"))
			errmsg_set(errmsg, rc, "%s", proto_str(done, "error"));
		cJSON_Delete(done);
		/* A leak shows between runs: a short run may never meet a tick. */
		if (over_limits(task, w)) {
			free(*errmsg);
			*errmsg = NULL;
			rc = died(w, errmsg);
		}
	}
	if (rc == SUPERVISE_DIED)
		return died_while(task, "in run", errmsg);
	return rc;
}

void supervise_stop(struct tg_task *task)
{
	struct worker_link *w = task->worker;
	int64_t grace = task->daemon->config->supervisor_stop_grace_ms;

	if (!w)
		return;
	task->worker = NULL;
	if (!w->reaped) {
		/* Closing the socket says "destroy and exit"; whatever is left of
		 * the stop's grace period is what it gets for that. */
		shutdown(w->sock, SHUT_RDWR);
		if (w->stop_sent)
			grace = w->stop_deadline - tg_mono_ms();
		wait_exit(w, grace > 100 ? grace : 100, "it did not exit in its grace period");
		if (w->killed_for[0])
			log_warn(task->cfg->name, "worker pid %d (plugin %s) did not exit within %lld ms: killed",
			         (int)w->pid, task->plugin.path ? task->plugin.path : task->cfg->plugin,
			         (long long)(grace > 100 ? grace : 100));
	}
	free_link(w);
}

bool supervise_note_crash(struct tg_task *task, const char *how)
{
	const struct config *cf = task->daemon->config;
	int64_t now = tg_mono_ms(), window = (int64_t)cf->supervisor_crash_window_s * 1000;
	int ring = (int)(sizeof(task->crash_ms) / sizeof(task->crash_ms[0])), recent = 0;
	char line[900];

	task->crash_ms[task->ncrashes++ % ring] = now;
	for (int i = 0; i < ring && i < task->ncrashes; i++)
		if (now - task->crash_ms[i] <= window)
			recent++;
	if (recent >= cf->supervisor_crash_limit) {
		snprintf(line, sizeof(line),
		         "quarantined after %d crashes within %d s: %s; not restarted until the daemon restarts", recent,
		         cf->supervisor_crash_window_s, how);
		log_error(task->cfg->name, "%s", line);
		task_set_error(task, line);
		task_set_state(task, TASK_QUARANTINED, 0);
		return true;
	}
	log_error(task->cfg->name, "%s (crash %d of %d allowed within %d s)", how, recent, cf->supervisor_crash_limit,
	          cf->supervisor_crash_window_s);
	task_set_error(task, how);
	return false;
}

/* Spawn a worker in describe mode for the plugin named name (or the file
 * path): 0 and its desc message in *answer, or SUPERVISE_DIED (the worker
 * died loading it: *errmsg says how), or another failure to start it. The
 * worker has exited or been killed when this returns. */
static int describe_answer(const char *exe, struct tg_task *task, const struct config *cf, const char *name,
                           const char *path, cJSON **answer, char **errmsg)
{
	struct worker_link *w = NULL;
	cJSON *setup;
	int rc;

	*answer = NULL;
	if ((rc = spawn(exe, name ? name : path, &w, errmsg)))
		return rc;
	setup = setup_message(cf, NULL, "describe");
	cJSON_ReplaceItemInObjectCaseSensitive(setup, "plugin", cJSON_CreateString(name ? name : ""));
	if (path)
		cJSON_AddStringToObject(setup, "file", path);
	rc = handshake(task, w, setup, answer, errmsg);
	cJSON_Delete(setup);
	shutdown(w->sock, SHUT_RDWR);
	wait_exit(w, EXIT_GRACE_MS, "it did not exit after describing the plugin");
	free_link(w);
	return rc;
}

/* Is there a file for the plugin named name in plugin_path? (An absent
 * file is the one failure that lets an optional task be skipped.) */
static bool plugin_file_present(const struct config *cf, const char *name)
{
	char path[4096];

	for (int i = 0; i < cf->nplugin_path; i++) {
		snprintf(path, sizeof(path), "%s/%s.so", cf->plugin_path[i], name);
		if (access(path, F_OK) == 0)
			return true;
	}
	return false;
}

int supervise_describe_task(struct tg_task *task, const struct tg_task *same_plugin, char **errmsg)
{
	const struct config *cf = task->daemon->config;
	cJSON *answer = NULL;
	int rc;

	*errmsg = NULL;
	if (same_plugin && same_plugin->plugin.desc) {
		/* Loaded once per plugin, not once per task: the answer is
		 * rebuilt from the first task's copy. */
		answer = cJSON_CreateObject();
		cJSON_AddBoolToObject(answer, "ok", 1);
		cJSON_AddStringToObject(answer, "path", same_plugin->plugin.path);
		cJSON_AddItemToObject(answer, "plugin", desc_to_json(same_plugin->plugin.desc));
	} else if ((rc = describe_answer(task->daemon->worker_exe, task, cf, task->cfg->plugin, NULL, &answer,
	                                 errmsg))) {
		return rc == SUPERVISE_DIED ? died_while(task, "while loading the plugin", errmsg) : rc;
	}
	rc = adopt_desc(task, answer, errmsg);
	if (rc == TG_ENOTFOUND)
		task->plugin_absent = !plugin_file_present(cf, task->cfg->plugin);
	cJSON_Delete(answer);
	return rc;
}

static int describe(const char *exe, const char *path, struct plugin *out, char **errmsg)
{
	cJSON *answer = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = describe_answer(exe, NULL, NULL, NULL, path, &answer, errmsg);
	if (rc == SUPERVISE_DIED) {
		errmsg_set(errmsg, rc, "%s: loading the plugin crashed its worker: %s", path,
		           *errmsg ? *errmsg : "no reason");
	} else if (rc == 0 && !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(answer, "ok"))) {
		rc = errmsg_set(errmsg, TG_EINVAL, "%s", proto_str(answer, "error"));
	} else if (rc == 0) {
		out->desc = desc_from_json(cJSON_GetObjectItemCaseSensitive(answer, "plugin"));
		out->free_desc = desc_free;
		out->path = strdup(proto_str(answer, "path"));
		if (!out->desc || !out->path) {
			plugin_close(out);
			rc = TG_ENOMEM;
		}
	}
	cJSON_Delete(answer);
	return rc;
}

int supervise_open_file(void *exe, const char *path, struct plugin *out, char **errmsg)
{
	return describe(exe, path, out, errmsg);
}
