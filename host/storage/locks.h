/*
 * locks.h - named locks that die with their holder.
 *
 * A lock is a file <runtime_dir>/locks/<name>.lock locked with
 * flock(LOCK_EX | LOCK_NB) on a descriptor opened for that one acquisition.
 * Why flock and not fcntl: a classic fcntl (F_SETLK) lock belongs to the
 * process, so two threads of the daemon would not exclude each other, and
 * closing any descriptor of the file (e.g. a status reader) would silently
 * drop it. flock belongs to the open file description, like an OFD lock
 * (F_OFD_SETLK), so separate opens conflict even inside one process, and the
 * kernel releases it when the last descriptor closes - when the holder
 * process dies, even by SIGKILL: no zombie locks. flock needs no byte
 * ranges and is as old as BSD; OFD locks would add nothing here. Descriptors
 * are O_CLOEXEC so a spawned program never inherits a lock.
 *
 * Inside the process a table of held locks records each holder (a task
 * name), lets waiters sleep on a condition variable that an unlock signals,
 * and answers locks_holder(). The file also gets "pid holder\n" for humans.
 * Lock files are never removed: unlinking a lock file races with a process
 * that has just opened it.
 *
 * Waiting for a lock held by another process polls every 50 ms; the stop
 * flag is looked at at least that often.
 *
 * With PostgreSQL storage (locks_use_postgresql), the same locks are
 * PostgreSQL advisory locks instead of files, so daemons on several hosts
 * sharing one database exclude each other (storage/locks_pg.h); everything
 * else here is unchanged.
 */
#ifndef TG_HOST_LOCKS_H
#define TG_HOST_LOCKS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <tollgate/tollgate.h>

/* Longest lock name and holder name, in bytes. */
#define LOCKS_NAME_MAX 64
#define LOCKS_HOLDER_MAX 128

struct locks_entry;
struct locks_waiter;
struct locks_pg;

struct locks {
	char *dir; /* <runtime_dir>/locks */
	pthread_mutex_t mutex;
	pthread_cond_t changed; /* signalled on every unlock (CLOCK_MONOTONIC) */
	struct locks_entry *held;
	/* Callers of this process waiting for a lock, in arrival order: a lock
	 * goes to the longest waiter, never to a caller who just released it
	 * and asks again (no barging, so no waiter starves). */
	struct locks_waiter *waiters;
	uint64_t next_ticket;
	struct locks_pg *pg; /* NULL: lock files */
};

/* Prepare l: create <runtime_dir> and <runtime_dir>/locks when missing
 * (mode 0755). TG_EIO with a message when they cannot be made. */
int locks_init(struct locks *l, const char *runtime_dir, char **errmsg);
/* Take locks as advisory locks in the PostgreSQL database of conninfo
 * from now on (call after locks_init, before the first lock). Connects
 * once to check: TG_ESTORAGE with the server's reason. */
int locks_use_postgresql(struct locks *l, const char *conninfo, char **errmsg);
/* Unlock everything still held and free l's contents. */
void locks_release(struct locks *l);

/* True when name matches [A-Za-z0-9_.-]{1,64}. */
bool locks_name_valid(const char *name);

/* Take the lock name for holder (a task name, at most LOCKS_HOLDER_MAX
 * bytes, no newline). timeout_ms 0 tries once, > 0 waits at most that long,
 * < 0 waits until stop becomes true. stop may be NULL (never stops).
 * Returns 0 (also when holder already holds it: locks do not count, one
 * unlock releases), TG_EBUSY (try found it held), TG_ETIMEDOUT, TG_ESTOPPED
 * (checked before every attempt, so a set flag fails even a free lock),
 * TG_EINVAL (bad name or holder), TG_EIO (the lock file), TG_ESTORAGE
 * (PostgreSQL could not be asked). */
int locks_acquire(struct locks *l, const char *name, const char *holder, int64_t timeout_ms,
                  const atomic_bool *stop, char **errmsg);

/* Release name if holder holds it: 0, or TG_ENOTFOUND when holder does not
 * hold it (the lock is then left alone). */
int locks_unlock(struct locks *l, const char *name, const char *holder);

/* Release every lock holder holds (the host calls this when a task ends).
 * Returns how many were released. */
int locks_release_all_of(struct locks *l, const char *holder);

/* Who holds name in this process: a malloc()ed copy of the holder in
 * *holder, or TG_ENOTFOUND (free, or held by another process). */
int locks_holder(struct locks *l, const char *name, char **holder);

/* Wake every waiter now so it looks at its stop flag (at shutdown) instead
 * of at its next poll. */
void locks_interrupt(struct locks *l);

#endif
