/*
 * test_locks.c - named locks across threads and processes: lock files, or
 * PostgreSQL advisory locks when TG_TEST_STORAGE=postgresql (the same
 * tests, run twice by meson: see backend_under_test.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backend_under_test.h"
#include "observe/log.h"
#include "storage/locks.h"

struct fixture {
	char dir[64];
	char db[512]; /* PostgreSQL: the test's database */
	struct locks locks;
};

/* The fixture's database, for child processes' own struct locks. */
static const char *the_db;

static int init_locks(struct locks *l, const char *runtime, char **err)
{
	int rc = locks_init(l, runtime, err);

	if (rc == 0 && but_is_postgresql())
		rc = locks_use_postgresql(l, the_db, err);
	return rc;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char *err = NULL;
	char runtime[96];

	strcpy(f->dir, "/tmp/tg-locks-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	/* A runtime directory that does not exist yet: init creates it. */
	snprintf(runtime, sizeof(runtime), "%s/run", f->dir);
	if (but_is_postgresql())
		but_create(f->dir, f->db, sizeof(f->db));
	the_db = f->db;
	assert_int_equal(init_locks(&f->locks, runtime, &err), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char path[160];
	DIR *d;
	struct dirent *de;

	locks_release(&f->locks);
	if (but_is_postgresql())
		but_destroy(f->db);
	snprintf(path, sizeof(path), "%s/run/locks", f->dir);
	d = opendir(path);
	while (d && (de = readdir(d))) {
		char file[512];

		if (de->d_name[0] == '.' && (!de->d_name[1] || de->d_name[1] == '.'))
			continue;
		snprintf(file, sizeof(file), "%s/%s", path, de->d_name);
		unlink(file);
	}
	if (d)
		closedir(d);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/run", f->dir);
	rmdir(path);
	assert_int_equal(rmdir(f->dir), 0);
	free(f);
	return 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct acquirer {
	struct locks *locks;
	const char *name;
	const char *holder;
	int64_t timeout_ms;
	atomic_bool *stop;
	int rc;
	int64_t returned_at;
	atomic_bool started;
};

static void *acquire_main(void *arg)
{
	struct acquirer *a = arg;

	atomic_store(&a->started, true);
	a->rc = locks_acquire(a->locks, a->name, a->holder, a->timeout_ms, a->stop, NULL);
	a->returned_at = now_ms();
	return NULL;
}

/* Run one acquisition in its own thread and wait for it. */
static int acquire_in_thread(struct locks *l, const char *name, const char *holder, int64_t timeout_ms)
{
	struct acquirer a = {.locks = l, .name = name, .holder = holder, .timeout_ms = timeout_ms};
	pthread_t th;

	assert_int_equal(pthread_create(&th, NULL, acquire_main, &a), 0);
	pthread_join(th, NULL);
	return a.rc;
}

static void test_try_conflict_threads(void **state)
{
	struct fixture *f = *state;
	char *holder = NULL, *err = NULL, path[160], note[64] = "", want[64];
	int fd;
	ssize_t n;

	assert_int_equal(acquire_in_thread(&f->locks, "deals", "backfiller", 0), 0);
	/* Another task (thread) of the same daemon is excluded. */
	assert_int_equal(acquire_in_thread(&f->locks, "deals", "upserter", 0), TG_EBUSY);
	assert_int_equal(locks_acquire(&f->locks, "deals", "upserter", 0, NULL, &err), TG_EBUSY);
	assert_non_null(strstr(err, "backfiller"));
	free(err);
	assert_int_equal(locks_holder(&f->locks, "deals", &holder), 0);
	assert_string_equal(holder, "backfiller");
	free(holder);
	assert_int_equal(locks_holder(&f->locks, "other", &holder), TG_ENOTFOUND);
	/* The holder again: at once, no count. */
	assert_int_equal(locks_acquire(&f->locks, "deals", "backfiller", 0, NULL, NULL), 0);

	if (but_is_postgresql()) {
		/* The server knows the lock, and pg_stat_activity who holds it. */
		assert_int_equal(but_pg_number(f->db, "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a "
		                                      "USING (pid) WHERE l.locktype = 'advisory' AND l.granted "
		                                      "AND a.application_name = 'tollgate lock deals by backfiller'"),
		                 1);
	} else {
		/* The file says who holds it. */
		snprintf(path, sizeof(path), "%s/run/locks/deals.lock", f->dir);
		fd = open(path, O_RDONLY);
		assert_true(fd >= 0);
		n = read(fd, note, sizeof(note) - 1);
		close(fd);
		assert_true(n > 0);
		snprintf(want, sizeof(want), "%ld backfiller\n", (long)getpid());
		assert_string_equal(note, want);
	}

	/* Only the holder unlocks. */
	assert_int_equal(locks_unlock(&f->locks, "deals", "upserter"), TG_ENOTFOUND);
	assert_int_equal(locks_acquire(&f->locks, "deals", "upserter", 0, NULL, NULL), TG_EBUSY);
	assert_int_equal(locks_unlock(&f->locks, "deals", "backfiller"), 0);
	assert_int_equal(locks_unlock(&f->locks, "deals", "backfiller"), TG_ENOTFOUND);
	assert_int_equal(acquire_in_thread(&f->locks, "deals", "upserter", 0), 0);
	assert_int_equal(locks_holder(&f->locks, "deals", &holder), 0);
	assert_string_equal(holder, "upserter");
	free(holder);
}

static void test_wait_then_get(void **state)
{
	struct fixture *f = *state;
	atomic_bool stop = false;
	struct acquirer a = {.locks = &f->locks, .name = "x", .holder = "b", .timeout_ms = -1, .stop = &stop};
	pthread_t th;
	char *holder;

	assert_int_equal(locks_acquire(&f->locks, "x", "a", 0, NULL, NULL), 0);
	assert_int_equal(pthread_create(&th, NULL, acquire_main, &a), 0);
	while (!atomic_load(&a.started))
		usleep(1000);
	usleep(20000);
	assert_int_equal(locks_unlock(&f->locks, "x", "a"), 0);
	pthread_join(th, NULL);
	assert_int_equal(a.rc, 0);
	assert_int_equal(locks_holder(&f->locks, "x", &holder), 0);
	assert_string_equal(holder, "b");
	free(holder);
}

static void test_timeout(void **state)
{
	struct fixture *f = *state;
	int64_t start;
	char *err = NULL;

	assert_int_equal(locks_acquire(&f->locks, "x", "a", 0, NULL, NULL), 0);
	start = now_ms();
	assert_int_equal(locks_acquire(&f->locks, "x", "b", 120, NULL, &err), TG_ETIMEDOUT);
	/* It did wait (a lower bound, never flaky). */
	assert_true(now_ms() - start >= 120);
	assert_non_null(strstr(err, "after 120 ms"));
	free(err);
	/* A time-out does not disturb the holder. */
	assert_int_equal(locks_unlock(&f->locks, "x", "a"), 0);
	assert_int_equal(locks_acquire(&f->locks, "x", "b", 120, NULL, NULL), 0);
}

static void test_stop_interrupts(void **state)
{
	struct fixture *f = *state;
	atomic_bool stop = false;
	struct acquirer a = {.locks = &f->locks, .name = "x", .holder = "b", .timeout_ms = -1, .stop = &stop};
	pthread_t th;
	int64_t stopped_at;
	char *holder;

	assert_int_equal(locks_acquire(&f->locks, "x", "a", 0, NULL, NULL), 0);
	assert_int_equal(pthread_create(&th, NULL, acquire_main, &a), 0);
	while (!atomic_load(&a.started))
		usleep(1000);
	usleep(30000);
	stopped_at = now_ms();
	atomic_store(&stop, true);
	pthread_join(th, NULL);
	assert_int_equal(a.rc, TG_ESTOPPED);
	/* Shutdown must complete within a second; the poll is 50 ms. */
	assert_true(a.returned_at - stopped_at < 1000);
	/* With a timeout too, and with the flag already set even a free lock
	 * is refused: the task must return. */
	assert_int_equal(locks_acquire(&f->locks, "x", "b", 5000, &stop, NULL), TG_ESTOPPED);
	assert_int_equal(locks_acquire(&f->locks, "free", "b", 0, &stop, NULL), TG_ESTOPPED);
	assert_int_equal(locks_holder(&f->locks, "x", &holder), 0);
	assert_string_equal(holder, "a");
	free(holder);
}

/* locks_interrupt() wakes a waiter at once; with a time-out longer than the
 * test's patience it must still end through the stop flag. */
static void test_interrupt_wakes(void **state)
{
	struct fixture *f = *state;
	atomic_bool stop = false;
	struct acquirer a = {
	    .locks = &f->locks, .name = "x", .holder = "b", .timeout_ms = 60000, .stop = &stop};
	pthread_t th;

	assert_int_equal(locks_acquire(&f->locks, "x", "a", 0, NULL, NULL), 0);
	assert_int_equal(pthread_create(&th, NULL, acquire_main, &a), 0);
	while (!atomic_load(&a.started))
		usleep(1000);
	atomic_store(&stop, true);
	locks_interrupt(&f->locks);
	pthread_join(th, NULL);
	assert_int_equal(a.rc, TG_ESTOPPED);
}

/* The child takes the lock with its own struct locks, tells the parent,
 * and waits to be killed. */
static pid_t spawn_holder(const char *runtime, const char *name, int *ready)
{
	int fds[2];
	pid_t pid;
	char c;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct locks l;

		close(fds[0]);
		if (init_locks(&l, runtime, NULL) != 0 ||
		    locks_acquire(&l, name, "child", 0, NULL, NULL) != 0)
			_exit(2);
		if (write(fds[1], "k", 1) != 1)
			_exit(3);
		pause();
		_exit(4);
	}
	close(fds[1]);
	*ready = read(fds[0], &c, 1) == 1;
	close(fds[0]);
	return pid;
}

static void test_across_processes_and_sigkill(void **state)
{
	struct fixture *f = *state;
	char runtime[96], *err = NULL;
	int ready, status;
	pid_t pid;

	snprintf(runtime, sizeof(runtime), "%s/run", f->dir);
	pid = spawn_holder(runtime, "feed", &ready);
	assert_true(ready);
	assert_int_equal(locks_acquire(&f->locks, "feed", "parent", 0, NULL, &err), TG_EBUSY);
	assert_non_null(strstr(err, "another process"));
	free(err);
	assert_int_equal(locks_acquire(&f->locks, "feed", "parent", 80, NULL, NULL), TG_ETIMEDOUT);
	assert_int_equal(locks_holder(&f->locks, "feed", &(char *){NULL}), TG_ENOTFOUND);

	/* The holder dies without a chance to unlock: the kernel releases the
	 * flock at once; PostgreSQL releases when its server process has seen
	 * the closed connection, a moment later - so there, wait for it. */
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	assert_int_equal(locks_acquire(&f->locks, "feed", "parent", but_is_postgresql() ? 60000 : 0, NULL, NULL),
	                 0);
	assert_int_equal(locks_unlock(&f->locks, "feed", "parent"), 0);
}

/* A parent that waits (no time-out) gets the lock when the holder dies. */
static void test_waiter_gets_lock_of_killed_process(void **state)
{
	struct fixture *f = *state;
	char runtime[96];
	atomic_bool stop = false;
	int ready, status;
	pid_t pid;

	snprintf(runtime, sizeof(runtime), "%s/run", f->dir);
	pid = spawn_holder(runtime, "feed", &ready);
	assert_true(ready);
	assert_int_equal(kill(pid, SIGKILL), 0);
	/* Still perhaps alive here: the acquisition polls until it is gone. */
	assert_int_equal(locks_acquire(&f->locks, "feed", "parent", -1, &stop, NULL), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
}

static void test_release_all_of(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(locks_acquire(&f->locks, "a", "t1", 0, NULL, NULL), 0);
	assert_int_equal(locks_acquire(&f->locks, "b", "t1", 0, NULL, NULL), 0);
	assert_int_equal(locks_acquire(&f->locks, "c", "t2", 0, NULL, NULL), 0);
	assert_int_equal(locks_acquire(&f->locks, "d", "t1", 0, NULL, NULL), 0);
	assert_int_equal(locks_release_all_of(&f->locks, "t1"), 3);
	assert_int_equal(locks_release_all_of(&f->locks, "t1"), 0);
	assert_int_equal(acquire_in_thread(&f->locks, "a", "t3", 0), 0);
	assert_int_equal(acquire_in_thread(&f->locks, "b", "t3", 0), 0);
	assert_int_equal(acquire_in_thread(&f->locks, "d", "t3", 0), 0);
	assert_int_equal(acquire_in_thread(&f->locks, "c", "t3", 0), TG_EBUSY);
}

static void test_names(void **state)
{
	struct fixture *f = *state;
	const char *bad[] = {"",
	                     "a/b",
	                     "../x",
	                     "a b",
	                     "x\n",
	                     "naïve",
	                     "01234567890123456789012345678901234567890123456789012345678901234"};
	char *err = NULL;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_false(locks_name_valid(bad[i]));
		assert_int_equal(locks_acquire(&f->locks, bad[i], "t", 0, NULL, NULL), TG_EINVAL);
	}
	assert_int_equal(locks_acquire(&f->locks, NULL, "t", 0, NULL, &err), TG_EINVAL);
	assert_non_null(err);
	free(err);
	assert_true(locks_name_valid("Deal-feed.v2_1"));
	assert_true(locks_name_valid("0123456789012345678901234567890123456789012345678901234567890123"));
	assert_int_equal(locks_acquire(&f->locks, "Deal-feed.v2_1", "t", 0, NULL, NULL), 0);
	assert_int_equal(locks_acquire(&f->locks, "ok", "two\nlines", 0, NULL, NULL), TG_EINVAL);
	assert_int_equal(locks_acquire(&f->locks, "ok", "", 0, NULL, NULL), TG_EINVAL);
	assert_int_equal(locks_acquire(&f->locks, "ok", NULL, 0, NULL, NULL), TG_EINVAL);
	assert_int_equal(locks_unlock(&f->locks, NULL, "t"), TG_EINVAL);
}

static void test_init_errors(void **state)
{
	struct fixture *f = *state;
	struct locks l;
	char path[160], *err = NULL;
	int fd;

	/* The runtime directory is a file. */
	snprintf(path, sizeof(path), "%s/run/locks/plain", f->dir);
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(locks_init(&l, path, &err), TG_EIO);
	assert_non_null(err);
	free(err);
	assert_int_equal(locks_init(&l, "", NULL), TG_EINVAL);
	locks_release(&l); /* harmless after a failed init */
	if (but_is_postgresql()) {
		char bad[640], run[96];

		snprintf(run, sizeof(run), "%s/run", f->dir);
		assert_int_equal(locks_init(&l, run, NULL), 0);
		snprintf(bad, sizeof(bad), "%s dbname=tg_no_such_db", getenv("TG_TEST_PG_CONNINFO"));
		err = NULL;
		assert_int_equal(locks_use_postgresql(&l, bad, &err), TG_ESTORAGE);
		assert_non_null(strstr(err, "\"tg_no_such_db\" does not exist"));
		free(err);
		err = NULL;
		assert_int_equal(locks_use_postgresql(&l, "host=/x password=pw", &err), TG_EINVAL);
		free(err);
		locks_release(&l);
	}
}

/* A released lock goes to the caller who waited longest, not back to the
 * caller who released it and asks again at once: no in-process barging, so
 * a task that re-locks in a loop cannot starve another. */
struct fair {
	struct locks *l;
	atomic_int got; /* 1 once B holds the lock */
};

static void *fair_waiter(void *arg)
{
	struct fair *f = arg;
	assert_int_equal(locks_acquire(f->l, "fair", "B", -1, NULL, NULL), 0);
	atomic_store(&f->got, 1);
	usleep(50 * 1000);
	assert_int_equal(locks_unlock(f->l, "fair", "B"), 0);
	return NULL;
}

static void test_no_barging(void **state)
{
	struct fixture *fx = *state;
	struct fair f = {.l = &fx->locks};
	int held[2], go[2], queued = 0, status;
	pthread_t b;
	char *err = NULL, c;
	pid_t child;

	/* Another process holds the lock: B (a thread here) waits in line,
	 * polling the lock file (or the advisory lock). */
	assert_int_equal(pipe(held), 0);
	assert_int_equal(pipe(go), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		if (locks_acquire(&fx->locks, "fair", "child", 0, NULL, NULL) != 0)
			_exit(1);
		if (write(held[1], "h", 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(1);
		_exit(0); /* the kernel releases the flock, the server the lock */
	}
	assert_int_equal(read(held[0], &c, 1), 1);
	assert_int_equal(pthread_create(&b, NULL, fair_waiter, &f), 0);
	for (int i = 0; i < 500 && !queued; i++) {
		pthread_mutex_lock(&fx->locks.mutex);
		queued = fx->locks.waiters != NULL;
		pthread_mutex_unlock(&fx->locks.mutex);
		usleep(2000);
	}
	assert_true(queued);
	/* The other process ends; B only notices at its next poll. A newcomer
	 * asking right now finds the lock free - and must still be refused,
	 * because B waited first. */
	assert_int_equal(write(go[1], "g", 1), 1);
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(locks_acquire(&fx->locks, "fair", "A", 0, NULL, &err), TG_EBUSY);
	assert_non_null(strstr(err, "'fair' is"));
	free(err);
	/* A wait gets it, after B had its turn. */
	assert_int_equal(locks_acquire(&fx->locks, "fair", "A", 5000, NULL, NULL), 0);
	assert_int_equal(atomic_load(&f.got), 1);
	pthread_join(b, NULL);
	assert_int_equal(locks_unlock(&fx->locks, "fair", "A"), 0);
	close(held[0]);
	close(held[1]);
	close(go[0]);
	close(go[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_try_conflict_threads, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wait_then_get, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stop_interrupts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_interrupt_wakes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_across_processes_and_sigkill, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_waiter_gets_lock_of_killed_process, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_release_all_of, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_names, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_init_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_barging, setup, teardown),
	};

	log_setup(TG_LOG_WARN, NULL);
	return cmocka_run_group_tests_name(but_is_postgresql() ? "locks-postgresql" : "locks", tests, NULL, NULL);
}
