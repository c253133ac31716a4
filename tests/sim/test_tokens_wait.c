/*
 * test_tokens_wait.c - the blocking wrapper: threads, 429, shutdown.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "observe/log.h"
#include "tokens/tokens.h"

struct fake {
	_Atomic int64_t now;
	int64_t left; /* what /token answers */
	int64_t rate;
	atomic_int syncs;
};

static int64_t fake_now(void *ctx)
{
	return atomic_load(&((struct fake *)ctx)->now);
}

static int fake_sync(void *ctx, struct tokens_envelope *env, char **errmsg)
{
	struct fake *f = ctx;

	(void)errmsg;
	atomic_fetch_add(&f->syncs, 1);
	env->timestamp_ms = atomic_load(&f->now);
	env->tokens_left = f->left;
	env->refill_in_ms = 59000;
	env->refill_rate = f->rate;
	return 0;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct tokens *new_tokens(struct fake *f)
{
	struct tokens *t = NULL;
	struct tg_clock clock = {fake_now, f};

	assert_int_equal(tokens_new(NULL, &clock, fake_sync, f, &t, NULL), 0);
	return t;
}

struct worker {
	struct tokens *t;
	struct fake *f;
	int cls, calls, rc;
	int64_t took_ms;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < w->calls; i++) {
		struct tokens_ticket *ticket = NULL;
		int64_t start = mono_ms();

		w->rc = tokens_acquire(w->t, w->cls, "deal", 1, 5, &ticket, NULL);
		w->took_ms = mono_ms() - start;
		if (w->rc < 0)
			return NULL;
		struct tokens_envelope e = {atomic_fetch_add(&w->f->now, 1), 1000000, 30000, 1000, 0, 5, 1};
		tokens_release_ok(w->t, ticket, &e);
	}
	return NULL;
}

static void test_threads_share_one_bucket(void **state)
{
	struct fake f = {.now = 1000, .left = 1000000, .rate = 1000};
	struct tokens *t = new_tokens(&f);
	struct worker w[4];
	pthread_t th[4];
	struct tokens_status st = {0};

	(void)state;
	for (int i = 0; i < 4; i++) {
		char name[8] = {'t', (char)('0' + i), 0};

		w[i] = (struct worker){t, &f, tokens_add_class(t, name, 1), 50, 0, 0};
		assert_true(w[i].cls >= 0);
		assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].rc, 0);
	}
	tokens_snapshot(t, &st);
	assert_int_equal(st.nclasses, 4);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(st.cls[i].calls_ok, 50);
		assert_int_equal(st.cls[i].state, TOKENS_CLASS_IDLE);
	}
	/* One /token reading at start-up, no more. */
	assert_int_equal(atomic_load(&f.syncs), 1);
	tokens_shutdown(t);
	tokens_free(t);
	tokens_status_release(&st);
}

static void test_shutdown_wakes_waiter(void **state)
{
	struct fake f = {.now = 1000, .left = 0, .rate = 5};
	struct tokens *t = new_tokens(&f);
	struct worker w;
	pthread_t th;
	struct tokens_status st = {0};

	(void)state;
	w = (struct worker){t, &f, tokens_add_class(t, "backfiller", 1), 1, 1, 0};
	assert_int_equal(pthread_create(&th, NULL, worker_main, &w), 0);
	/* Wait (really) until the call is visibly waiting for tokens. */
	for (int i = 0; i < 500; i++) {
		tokens_snapshot(t, &st);
		if (st.cls[0].state == TOKENS_CLASS_WAITING)
			break;
		nanosleep(&(struct timespec){0, 10000000}, NULL);
	}
	assert_int_equal(st.cls[0].state, TOKENS_CLASS_WAITING);
	assert_true(st.cls[0].head_target == 6);
	assert_true(st.cls[0].head_eta_ms > 0);
	tokens_shutdown(t);
	pthread_join(th, NULL);
	assert_int_equal(w.rc, TG_ESTOPPED);
	assert_true(w.took_ms < 1000); /* woken by shutdown, not by tokens (59 s away) */
	tokens_snapshot(t, &st);
	assert_int_equal(st.cls[0].queued, 0);
	/* Later acquires fail at once too. */
	struct tokens_ticket *ticket = NULL;
	assert_int_equal(tokens_acquire(t, 0, "deal", 1, 5, &ticket, NULL), TG_ESTOPPED);
	assert_null(ticket);
	tokens_free(t);
	tokens_status_release(&st);
}

struct advancer {
	struct fake *f;
	struct tokens *t;
	int64_t to;
};

static void *advance_main(void *arg)
{
	struct advancer *a = arg;

	nanosleep(&(struct timespec){0, 50000000}, NULL);
	atomic_store(&a->f->now, a->to);
	/* A reading wakes the waiters at once (they also re-poll each second). */
	struct tokens_envelope e = {a->to, 100, 30000, 5, 0, 0, 0};
	tokens_observe(a->t, &e);
	return NULL;
}

static void test_429_waits_and_keeps_ticket(void **state)
{
	struct fake f = {.now = 1000, .left = 100, .rate = 5};
	struct tokens *t = new_tokens(&f);
	struct tokens_ticket *ticket = NULL;
	struct tokens_status st = {0};
	struct advancer adv = {&f, t, 0};
	pthread_t th;
	char *msg = NULL;

	(void)state;
	int cls = tokens_add_class(t, "upserter", 1);
	assert_int_equal(tokens_acquire(t, cls, "product", 10, 10, &ticket, &msg), 0);
	assert_null(msg);
	struct tokens_envelope e = {2000, -3, 20000, 5, 0, 0, 5};
	tokens_release_429(t, ticket, &e);
	tokens_snapshot(t, &st);
	assert_int_equal(st.n429, 1);
	assert_int_equal(st.cls[cls].state, TOKENS_CLASS_WAITING);
	adv.to = 2000 + 20000 + 60000 + 1;
	assert_int_equal(pthread_create(&th, NULL, advance_main, &adv), 0);
	assert_int_equal(tokens_acquire(t, cls, "product", 10, 10, &ticket, &msg), 0);
	assert_true(atomic_load(&f.now) >= 2000 + 20000 + 60000);
	pthread_join(th, NULL);
	e = (struct tokens_envelope){adv.to + 10, 10, 30000, 5, 0, 10, 5};
	tokens_release_ok(t, ticket, &e);
	tokens_snapshot(t, &st);
	assert_int_equal(st.cls[cls].calls_ok, 1);
	assert_int_equal(st.cls[cls].calls_429, 1);
	/* Oversize is refused with a message. */
	ticket = NULL;
	assert_int_equal(tokens_acquire(t, cls, "product", 1000, 1000, &ticket, &msg), TG_EOVERSIZE);
	assert_non_null(msg);
	free(msg);
	tokens_shutdown(t);
	tokens_free(t);
	tokens_status_release(&st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_threads_share_one_bucket),
	    cmocka_unit_test(test_shutdown_wakes_waiter),
	    cmocka_unit_test(test_429_waits_and_keeps_ticket),
	};

	log_setup(TG_LOG_ERROR, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
