/*
 * locks.c - named locks that die with their holder (see locks.h).
 */
#include "util/clock.h"
#include "util/errmsg.h"
#include "storage/locks.h"
#include "storage/locks_pg.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* How often a waiter retries a lock held by another process, and so the
 * longest it takes to notice its stop flag. */
#define LOCKS_POLL_MS 50

struct locks_entry {
	struct locks_entry *next;
	char *name;
	char *holder;
	int fd;     /* the flock()ed lock file, or -1 */
	void *pg;   /* or the PostgreSQL session holding the advisory lock */
};

bool locks_name_valid(const char *name)
{
	size_t n;

	if (!name)
		return false;
	for (n = 0; name[n]; n++) {
		char c = name[n];

		if (n >= LOCKS_NAME_MAX)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return false;
	}
	return n > 0;
}

static bool holder_valid(const char *holder)
{
	return holder && *holder && strlen(holder) <= LOCKS_HOLDER_MAX && !strchr(holder, '\n');
}

static int make_dir(const char *path, char **errmsg)
{
	struct stat sb;

	if (mkdir(path, 0755) == 0 || (errno == EEXIST && stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)))
		return 0;
	return errmsg_set(errmsg, TG_EIO, "locks: cannot create directory %s: %s", path, strerror(errno));
}

int locks_init(struct locks *l, const char *runtime_dir, char **errmsg)
{
	pthread_condattr_t attr;
	int rc;

	memset(l, 0, sizeof(*l));
	if (!runtime_dir || !*runtime_dir)
		return errmsg_set(errmsg, TG_EINVAL, "locks: no runtime directory");
	rc = make_dir(runtime_dir, errmsg);
	if (rc < 0)
		return rc;
	if (asprintf(&l->dir, "%s/locks", runtime_dir) < 0) {
		l->dir = NULL;
		return errmsg_set(errmsg, TG_ENOMEM, "out of memory");
	}
	rc = make_dir(l->dir, errmsg);
	if (rc < 0)
		goto free_dir;
	/* Say it now rather than at the first lock a task takes. */
	if (access(l->dir, W_OK | X_OK) < 0) {
		rc = errmsg_set(errmsg, TG_EIO, "locks: cannot write in %s: %s", l->dir, strerror(errno));
		goto free_dir;
	}
	pthread_mutex_init(&l->mutex, NULL);
	/* Time-outs are measured on the monotonic clock: a clock step must not
	 * stretch or cut a wait. */
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&l->changed, &attr);
	pthread_condattr_destroy(&attr);
	return 0;

free_dir:
	free(l->dir);
	l->dir = NULL;
	return rc;
}

int locks_use_postgresql(struct locks *l, const char *conninfo, char **errmsg)
{
	struct locks_pg *pg;
	int rc = locks_pg_new(&pg, conninfo, errmsg);

	if (rc < 0)
		return rc;
	pthread_mutex_lock(&l->mutex);
	locks_pg_free(l->pg);
	l->pg = pg;
	pthread_mutex_unlock(&l->mutex);
	return 0;
}

static void entry_free(struct locks *l, struct locks_entry *e)
{
	if (e->pg) {
		locks_pg_release(l->pg, e->pg);
	} else if (e->fd >= 0) {
		/* Empty the file first so that a human never reads a stale
		 * holder; closing the descriptor releases the flock. */
		if (ftruncate(e->fd, 0) < 0) {
			/* Only the note for humans is stale; the lock goes anyway. */
		}
		close(e->fd);
	}
	free(e->name);
	free(e->holder);
	free(e);
}

void locks_release(struct locks *l)
{
	struct locks_entry *e, *next;

	if (!l->dir)
		return;
	for (e = l->held; e; e = next) {
		next = e->next;
		entry_free(l, e);
	}
	l->held = NULL;
	locks_pg_free(l->pg);
	l->pg = NULL;
	pthread_cond_destroy(&l->changed);
	pthread_mutex_destroy(&l->mutex);
	free(l->dir);
	l->dir = NULL;
}

static struct locks_entry *entry_find(struct locks *l, const char *name)
{
	for (struct locks_entry *e = l->held; e; e = e->next)
		if (strcmp(e->name, name) == 0)
			return e;
	return NULL;
}

struct locks_waiter {
	struct locks_waiter *next;
	const char *name; /* the caller's string: valid while it waits */
	uint64_t ticket;
};

/* Is someone waiting for name who came before ticket (0: before anyone
 * not yet queued)? With the mutex held. */
static bool waiter_ahead(const struct locks *l, const char *name, uint64_t ticket)
{
	for (const struct locks_waiter *w = l->waiters; w; w = w->next)
		if ((ticket == 0 || w->ticket < ticket) && strcmp(w->name, name) == 0)
			return true;
	return false;
}

static void waiter_remove(struct locks *l, struct locks_waiter *me)
{
	for (struct locks_waiter **link = &l->waiters; *link; link = &(*link)->next)
		if (*link == me) {
			*link = me->next;
			/* The next in line may now be first. */
			pthread_cond_broadcast(&l->changed);
			return;
		}
}

/* A new entry for name and holder, not yet in the table (NULL: no memory). */
static struct locks_entry *entry_new(const char *name, const char *holder)
{
	struct locks_entry *e = calloc(1, sizeof(*e));

	if (e && (e->name = strdup(name)) && (e->holder = strdup(holder))) {
		e->fd = -1;
		return e;
	}
	if (e) {
		free(e->name);
		free(e);
	}
	return NULL;
}

static void entry_link(struct locks *l, struct locks_entry *e)
{
	e->next = l->held;
	l->held = e;
}

/* Try the advisory lock once (with the mutex held): as try_file. */
static int try_pg(struct locks *l, const char *name, const char *holder, char **errmsg)
{
	struct locks_entry *e = entry_new(name, holder);
	int rc;

	if (!e)
		return errmsg_set(errmsg, TG_ENOMEM, "out of memory");
	rc = locks_pg_try(l->pg, name, holder, &e->pg, errmsg);
	if (rc < 0) {
		entry_free(l, e);
		return rc;
	}
	entry_link(l, e);
	return 0;
}

/* Try to flock the lock file once (with the mutex held). 0 with a new entry
 * in the table, TG_EBUSY when another process holds it, TG_EIO. */
static int try_file(struct locks *l, const char *name, const char *holder, char **errmsg)
{
	struct locks_entry *e;
	char *path = NULL, note[LOCKS_HOLDER_MAX + 32];
	int fd, rc, n;

	if (asprintf(&path, "%s/%s.lock", l->dir, name) < 0)
		return errmsg_set(errmsg, TG_ENOMEM, "out of memory");
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		rc = errmsg_set(errmsg, TG_EIO, "locks: cannot open %s: %s", path, strerror(errno));
		goto free_path;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK)
			rc = TG_EBUSY;
		else
			rc = errmsg_set(errmsg, TG_EIO, "locks: cannot lock %s: %s", path, strerror(errno));
		goto close_fd;
	}
	e = entry_new(name, holder);
	if (!e) {
		rc = errmsg_set(errmsg, TG_ENOMEM, "out of memory");
		goto close_fd;
	}
	n = snprintf(note, sizeof(note), "%ld %s\n", (long)getpid(), holder);
	/* The note is for humans: failing to write it does not fail the lock. */
	if (ftruncate(fd, 0) < 0 || pwrite(fd, note, (size_t)n, 0) < 0) {
		/* Nothing to do. */
	}
	e->fd = fd;
	entry_link(l, e);
	free(path);
	return 0;

close_fd:
	close(fd);
free_path:
	free(path);
	return rc;
}

int locks_acquire(struct locks *l, const char *name, const char *holder, int64_t timeout_ms,
                  const atomic_bool *stop, char **errmsg)
{
	int64_t deadline = timeout_ms > 0 ? tg_mono_ms() + timeout_ms : 0;
	struct locks_waiter me = {.name = name};
	bool queued = false;
	int rc;

	if (!locks_name_valid(name))
		return errmsg_set(errmsg, TG_EINVAL,
		                   "invalid lock name '%.80s': use [A-Za-z0-9_.-], 1 to %d characters",
		                   name ? name : "(null)", LOCKS_NAME_MAX);
	if (!holder_valid(holder))
		return errmsg_set(errmsg, TG_EINVAL, "invalid lock holder for lock '%s'", name);

	pthread_mutex_lock(&l->mutex);
	for (;;) {
		struct locks_entry *e;
		int64_t left = LOCKS_POLL_MS;

		if (stop && atomic_load(stop)) {
			rc = TG_ESTOPPED;
			break;
		}
		e = entry_find(l, name);
		if (e && strcmp(e->holder, holder) == 0) {
			rc = 0;
			break;
		}
		/* Held in this process: no need to touch the file. Free, but
		 * others of this process waited first: their turn. */
		bool behind = !e && waiter_ahead(l, name, queued ? me.ticket : 0);
		rc = e || behind ? TG_EBUSY
		     : l->pg     ? try_pg(l, name, holder, errmsg)
		                 : try_file(l, name, holder, errmsg);
		if (rc != TG_EBUSY)
			break;
		if (timeout_ms == 0) {
			rc = errmsg_set(errmsg, TG_EBUSY, "lock '%s' is %s%s", name, e ? "held by " : "",
			                e ? e->holder : behind ? "waited for by an earlier caller" : "held by another process");
			break;
		}
		if (!queued) {
			me.ticket = ++l->next_ticket;
			me.next = NULL;
			struct locks_waiter **tail = &l->waiters;
			while (*tail)
				tail = &(*tail)->next;
			*tail = &me;
			queued = true;
		}
		if (timeout_ms > 0) {
			int64_t now = tg_mono_ms();

			if (now >= deadline) {
				rc = errmsg_set(errmsg, TG_ETIMEDOUT,
				                 "lock '%s' still held by %s after %lld ms", name,
				                 e ? e->holder : "another process", (long long)timeout_ms);
				break;
			}
			if (deadline - now < left)
				left = deadline - now;
		}
		/* An unlock in this process wakes us at once; another process's
		 * unlock is noticed at the next poll. */
		tg_cond_wait_ms(&l->changed, &l->mutex, left);
	}
	if (queued)
		waiter_remove(l, &me);
	pthread_mutex_unlock(&l->mutex);
	return rc;
}

/* Unlink the entry (with the mutex held) and wake the waiters. */
static void entry_drop(struct locks *l, struct locks_entry **link)
{
	struct locks_entry *e = *link;

	*link = e->next;
	entry_free(l, e);
	pthread_cond_broadcast(&l->changed);
}

int locks_unlock(struct locks *l, const char *name, const char *holder)
{
	int rc = TG_ENOTFOUND;

	if (!name || !holder)
		return TG_EINVAL;
	pthread_mutex_lock(&l->mutex);
	for (struct locks_entry **link = &l->held; *link; link = &(*link)->next) {
		if (strcmp((*link)->name, name) == 0) {
			if (strcmp((*link)->holder, holder) == 0) {
				entry_drop(l, link);
				rc = 0;
			}
			break;
		}
	}
	pthread_mutex_unlock(&l->mutex);
	return rc;
}

int locks_release_all_of(struct locks *l, const char *holder)
{
	struct locks_entry **link = &l->held;
	int n = 0;

	if (!holder)
		return 0;
	pthread_mutex_lock(&l->mutex);
	while (*link) {
		if (strcmp((*link)->holder, holder) == 0) {
			entry_drop(l, link);
			n++;
		} else {
			link = &(*link)->next;
		}
	}
	pthread_mutex_unlock(&l->mutex);
	return n;
}

int locks_holder(struct locks *l, const char *name, char **holder)
{
	struct locks_entry *e;
	int rc = TG_ENOTFOUND;

	*holder = NULL;
	if (!name)
		return TG_EINVAL;
	pthread_mutex_lock(&l->mutex);
	e = entry_find(l, name);
	if (e) {
		*holder = strdup(e->holder);
		rc = *holder ? 0 : TG_ENOMEM;
	}
	pthread_mutex_unlock(&l->mutex);
	return rc;
}

void locks_interrupt(struct locks *l)
{
	pthread_mutex_lock(&l->mutex);
	pthread_cond_broadcast(&l->changed);
	pthread_mutex_unlock(&l->mutex);
}
