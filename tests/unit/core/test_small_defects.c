/*
 * test_small_defects.c - the smaller defects of #13 item 7, one test each:
 * back-off jitter that differs between daemons, one source of scheduler
 * defaults, a status socket path that is not a socket, control bytes in
 * log lines, and sd_notify's error code.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/backoff.h"
#include "core/config.h"
#include "core/daemon.h"
#include "observe/log.h"
#include "observe/notify.h"
#include "observe/status.h"
#include "tokens/tokens.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/tg-small-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* The first back-off waits of a fresh process (as a daemon would draw). */
static void waits_of_a_process(int64_t out[8])
{
	int fds[2];
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int64_t w[8];
		for (int i = 0; i < 8; i++)
			w[i] = backoff_ms(i + 1);
		_exit(write(fds[1], w, sizeof(w)) == (ssize_t)sizeof(w) ? 0 : 1);
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], out, 8 * sizeof(int64_t)), 8 * sizeof(int64_t));
	close(fds[0]);
	waitpid(pid, NULL, 0);
}

/* random() was never seeded: two daemons drew the very same jitter, so
 * their failing tasks retried in step. */
static void test_jitter_differs_between_processes(void **state)
{
	int64_t a[8], b[8];
	(void)state;

	waits_of_a_process(a);
	waits_of_a_process(b);
	for (int i = 0; i < 8; i++) {
		int64_t base = (int64_t)BACKOFF_MIN_S * 1000 << i;
		if (base > BACKOFF_MAX_S * 1000)
			base = BACKOFF_MAX_S * 1000;
		assert_true(a[i] >= base && a[i] <= base + base / 4);
	}
	/* Eight draws of at least 1251 values each: equal only by a miracle. */
	assert_memory_not_equal(a, b, sizeof(a));
}

static int load_text(struct config *cf, const char *text, char **err)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/t.cfg", dir);
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	return config_load(cf, path, err);
}

/* The config's tokens defaults and the scheduler's were different numbers
 * (reserve 0/1, margin 0/1, deepest deficit 100/150). */
static void test_one_source_of_defaults(void **state)
{
	struct tokens_config tc;
	struct config cf;
	char *err = NULL;
	(void)state;

	tokens_config_default(&tc);
	assert_int_equal(load_text(&cf, "plugin_path = [\"/p\"];\n", &err), 0);
	assert_true(cf.tokens_reserve == tc.reserve);
	assert_true(cf.tokens_margin == tc.margin);
	assert_true(cf.tokens_deepest_deficit == tc.deepest_deficit);
	assert_true(cf.tokens_deficit_threshold == tc.deficit_threshold);
	assert_true(cf.tokens_latency_target_s == tc.latency_target_s);
	assert_true(cf.tokens_cap_minutes == tc.cap_minutes);
	assert_true(cf.tokens_minute_ms == tc.minute_ms);
	assert_int_equal(tokens_policy_parse(cf.tokens_policy), tc.policy);
	config_release(&cf);
	/* What the scheduler would refuse at start is refused at file:line. */
	assert_int_equal(load_text(&cf, "plugin_path = [\"/p\"];\ntokens: { reserve = 0; margin = 2; };\n", &err),
	                 TG_EINVAL);
	print_message("%s\n", err);
	assert_non_null(strstr(err, "t.cfg:2: 'tokens.margin' = 2 must not exceed 'tokens.reserve' = 0"));
	free(err);
	config_release(&cf);
}

/* status.socket pointing at a file that is not a socket: refused, and the
 * file is still there (it was unlink()ed). */
static void test_status_socket_removes_only_sockets(void **state)
{
	struct daemon d;
	struct status_server *s = NULL;
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	char path[128], *err = NULL;
	struct stat st;
	FILE *f;
	int fd;
	(void)state;

	memset(&d, 0, sizeof(d));
	snprintf(path, sizeof(path), "%s/precious", dir);
	f = fopen(path, "w");
	fputs("keep me\n", f);
	fclose(f);
	assert_int_equal(status_server_start(&d, path, &s, &err), TG_EINVAL);
	print_message("%s\n", err);
	assert_non_null(strstr(err, "the path exists and is not a socket; not removing it"));
	free(err);
	err = NULL;
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));

	/* A dead socket (a crash's debris) is replaced... */
	snprintf(path, sizeof(path), "%s/status.sock", dir);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(strlen(path) < sizeof(addr.sun_path));
	memcpy(addr.sun_path, path, strlen(path) + 1);
	assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	close(fd);
	assert_int_equal(status_server_start(&d, path, &s, &err), 0);
	/* ...and at stop only our own socket goes: here something else has
	 * taken the path meanwhile. */
	unlink(path);
	f = fopen(path, "w");
	fclose(f);
	status_server_stop(s);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	unlink(path);
	assert_int_equal(status_server_start(&d, path, &s, &err), 0);
	status_server_stop(s);
	assert_int_equal(stat(path, &st), -1);
}

/* A plugin's (or a server's) text must not drive the operator's terminal. */
static void test_log_escapes_control_bytes(void **state)
{
	char path[128], line[1024];
	FILE *f;
	(void)state;

	snprintf(path, sizeof(path), "%s/log", dir);
	f = fopen(path, "w+");
	log_setup(TG_LOG_INFO, f);
	log_msg(TG_LOG_WARN, "walker", "evil: %s", "\x1b[2J\x1b]0;owned\x07 bell\r\nnext \x7f \xc2\x9b" "31m ok: \xc3\xa9");
	log_setup(TG_LOG_INFO, stderr);
	rewind(f);
	assert_non_null(fgets(line, sizeof(line), f));
	fclose(f);
	print_message("%s", line);
	assert_non_null(strstr(line, "evil: \\x1b[2J\\x1b]0;owned\\x07 bell  next \\x7f \\x9b31m ok: \xc3\xa9\n"));
	for (const char *p = line; *p; p++)
		assert_true((unsigned char)*p >= 0x20 || *p == '\n');
}

/* sd_notify's error is the send's, read before close() can change errno. */
static void test_notify_reports_the_send_error(void **state)
{
	char path[128];
	(void)state;

	snprintf(path, sizeof(path), "%s/no-such-socket", dir);
	setenv("NOTIFY_SOCKET", path, 1);
	assert_int_equal(notify_systemd("READY=1"), -ENOENT);
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(notify_systemd("READY=1"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_jitter_differs_between_processes),
		cmocka_unit_test(test_one_source_of_defaults),
		cmocka_unit_test(test_status_socket_removes_only_sockets),
		cmocka_unit_test(test_log_escapes_control_bytes),
		cmocka_unit_test(test_notify_reports_the_send_error),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
