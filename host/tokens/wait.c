/*
 * tokens/wait.c - the blocking, thread-safe face of the token scheduler.
 *
 * One mutex guards the core. A task thread that wants to send a call
 * queues it and then waits on one condition variable until some thread's
 * poll of the core dispatches it. Time comes from the injected clock; the
 * waiting itself uses the real monotonic clock, in slices of at most a
 * second, so a virtual clock that jumps is noticed and shutdown is prompt
 * (it also broadcasts).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "observe/log.h"
#include "util/errmsg.h"
#include "tokens/priv.h"

/* Longest single sleep: the clock may be virtual and jump. */
#define SLICE_MS 1000

struct tokens {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct tokens_core *core;
	struct tg_clock clock;
	tokens_sync_fn sync;
	void *sync_ctx;
	bool stopped;
};

int tokens_new(const struct tokens_config *cfg, const struct tg_clock *clock, tokens_sync_fn sync,
               void *sync_ctx, struct tokens **out, char **errmsg)
{
	struct tokens *t;
	pthread_condattr_t attr;
	int rc;

	t = calloc(1, sizeof(*t));
	if (!t) {
		errmsg_set(errmsg, 0, "token scheduler: out of memory");
		return TG_ENOMEM;
	}
	rc = tokens_core_new(cfg, &t->core, errmsg);
	if (rc < 0)
		goto free_t;
	rc = TG_EIO;
	if (pthread_mutex_init(&t->lock, NULL) != 0)
		goto free_core;
	if (pthread_condattr_init(&attr) != 0)
		goto destroy_lock;
	if (pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
	    pthread_cond_init(&t->cond, &attr) != 0) {
		pthread_condattr_destroy(&attr);
		goto destroy_lock;
	}
	pthread_condattr_destroy(&attr);
	t->clock = clock ? *clock : TG_CLOCK_REAL;
	t->sync = sync;
	t->sync_ctx = sync_ctx;
	*out = t;
	return 0;

destroy_lock:
	pthread_mutex_destroy(&t->lock);
	errmsg_set(errmsg, 0, "token scheduler: cannot set up its lock");
free_core:
	tokens_core_free(t->core);
free_t:
	free(t);
	return rc;
}

void tokens_free(struct tokens *t)
{
	if (!t)
		return;
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
	tokens_core_free(t->core);
	free(t);
}

int tokens_add_class(struct tokens *t, const char *name, double weight)
{
	int rc;

	pthread_mutex_lock(&t->lock);
	rc = tokens_core_add_class(t->core, name, weight);
	pthread_mutex_unlock(&t->lock);
	return rc;
}

int tokens_set_fresh(struct tokens *t, int cls, bool fresh)
{
	int rc;

	pthread_mutex_lock(&t->lock);
	rc = tokens_core_set_fresh(t->core, cls, fresh);
	pthread_mutex_unlock(&t->lock);
	return rc;
}

int tokens_set_weight(struct tokens *t, int cls, double weight)
{
	int rc;

	pthread_mutex_lock(&t->lock);
	rc = tokens_core_set_weight(t->core, cls, weight);
	pthread_mutex_unlock(&t->lock);
	return rc;
}

int tokens_find_class(struct tokens *t, const char *name)
{
	int rc;

	pthread_mutex_lock(&t->lock);
	rc = tokens_core_find_class(t->core, name);
	pthread_mutex_unlock(&t->lock);
	return rc;
}

static int64_t now_ms(struct tokens *t)
{
	return tg_clock_now(&t->clock);
}

static void wait_for(struct tokens *t, int64_t ms)
{
	if (ms > SLICE_MS)
		ms = SLICE_MS;
	if (ms < 1)
		ms = 1;
	tg_cond_wait_ms(&t->cond, &t->lock, ms);
}

/* Make the free /token call without the lock held. The core hands out one
 * sync at a time, so only this thread is in here. */
static void do_sync(struct tokens *t)
{
	struct tokens_envelope env;
	char *msg = NULL;
	int rc;

	if (!t->sync) {
		tokens_core_sync_failed(t->core, now_ms(t));
		return;
	}
	memset(&env, 0, sizeof(env));
	pthread_mutex_unlock(&t->lock);
	rc = t->sync(t->sync_ctx, &env, &msg);
	pthread_mutex_lock(&t->lock);
	if (rc == 0) {
		tokens_core_observe(t->core, &env, now_ms(t));
	} else {
		log_warn(NULL, "token scheduler: reading the token balance failed: %s",
		         msg ? msg : "unknown error");
		tokens_core_sync_failed(t->core, now_ms(t));
	}
	free(msg);
	pthread_cond_broadcast(&t->cond);
}

int tokens_acquire(struct tokens *t, int cls, const char *kind, int64_t units, double estimate,
                   struct tokens_ticket **ticket, char **errmsg)
{
	struct tokens_ticket *mine;
	struct tokens_poll p;
	int rc = 0;

	pthread_mutex_lock(&t->lock);
	if (!*ticket && !t->stopped) {
		rc = tokens_core_submit(t->core, cls, kind, units, estimate, now_ms(t), ticket, errmsg);
		if (rc < 0)
			goto unlock;
		pthread_cond_broadcast(&t->cond);
	}
	mine = *ticket;
	for (;;) {
		if (t->stopped) {
			if (mine)
				tokens_core_cancel(t->core, mine, now_ms(t));
			*ticket = NULL;
			errmsg_set(errmsg, 0, "the daemon is shutting down");
			rc = TG_ESTOPPED;
			break;
		}
		if (mine->state == TICKET_IN_FLIGHT)
			break;
		tokens_core_poll(t->core, now_ms(t), &p);
		switch (p.action) {
		case TOKENS_DISPATCH:
			/* Maybe another thread's call: wake it. */
			pthread_cond_broadcast(&t->cond);
			continue;
		case TOKENS_SYNC:
			do_sync(t);
			continue;
		case TOKENS_WAIT:
			wait_for(t, p.until_ms - now_ms(t));
			continue;
		case TOKENS_IDLE:
			wait_for(t, SLICE_MS);
			continue;
		}
	}
unlock:
	pthread_mutex_unlock(&t->lock);
	return rc;
}

void tokens_release_ok(struct tokens *t, struct tokens_ticket *ticket, const struct tokens_envelope *env)
{
	pthread_mutex_lock(&t->lock);
	tokens_core_complete(t->core, ticket, env, now_ms(t));
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

void tokens_release_429(struct tokens *t, struct tokens_ticket *ticket, const struct tokens_envelope *env)
{
	pthread_mutex_lock(&t->lock);
	tokens_core_complete_429(t->core, ticket, env, now_ms(t));
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

void tokens_release_unknown(struct tokens *t, struct tokens_ticket *ticket)
{
	pthread_mutex_lock(&t->lock);
	tokens_core_complete_unknown(t->core, ticket, now_ms(t));
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

void tokens_release_stopped(struct tokens *t, struct tokens_ticket *ticket)
{
	pthread_mutex_lock(&t->lock);
	tokens_core_complete_stopped(t->core, ticket, now_ms(t));
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

void tokens_observe(struct tokens *t, const struct tokens_envelope *env)
{
	pthread_mutex_lock(&t->lock);
	tokens_core_observe(t->core, env, now_ms(t));
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

void tokens_shutdown(struct tokens *t)
{
	pthread_mutex_lock(&t->lock);
	t->stopped = true;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

int64_t tokens_budget_hint(struct tokens *t, int cls)
{
	int64_t hint;

	pthread_mutex_lock(&t->lock);
	hint = tokens_core_budget_hint(t->core, cls, now_ms(t));
	pthread_mutex_unlock(&t->lock);
	return hint;
}

void tokens_snapshot(struct tokens *t, struct tokens_status *st)
{
	pthread_mutex_lock(&t->lock);
	tokens_core_status(t->core, now_ms(t), st);
	pthread_mutex_unlock(&t->lock);
}
