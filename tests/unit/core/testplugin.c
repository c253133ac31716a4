/*
 * testplugin.c - one small plugin, built in variants (-DVARIANT_*) that each
 * break the contract in one way, to prove the loader refuses each with its
 * own clear line. VARIANT_GOOD is a correct plugin the runner tests drive.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <tollgate/tollgate.h>

struct state {
	struct tg_task *task;
	const struct tg_services *svc;
	int64_t runs;
	/* Runs of this task in progress: a host that overlapped runs of one
	 * task would make it exceed 1. */
	atomic_int in_run;
};

static int tp_init(struct tg_task *task, const struct tg_services *svc, void **out, char **errmsg)
{
#ifdef VARIANT_INIT_FAILS
	(void)task;
	(void)svc;
	(void)out;
	*errmsg = strdup("cannot reach the moon");
	return TG_EINVAL;
#else
	struct state *st;
	(void)errmsg;
	st = calloc(1, sizeof(*st));
	if (!st)
		return TG_ENOMEM;
	st->task = task;
	st->svc = svc;
	*out = st;
	return 0;
#endif
}

__attribute__((unused)) /* VARIANT_NO_RUN leaves it out */
/* Each run reports progress, so a test can count runs through the host. */
static int tp_run(void *state, int64_t *idle_s, char **errmsg)
{
	struct state *st = state;
	int64_t run_ms = 0;
	bool fail = false;
	const char *lock = "";

	if (atomic_fetch_add(&st->in_run, 1) != 0) {
		atomic_fetch_sub(&st->in_run, 1);
		*errmsg = strdup("overlap: run() entered while another run was in progress");
		return TG_EINVAL;
	}
	st->svc->setting_string(st->task, "lock", &lock);
	if (lock[0] && st->svc->lock(st->task, lock, -1) != 0) {
		atomic_fetch_sub(&st->in_run, 1);
		return TG_ESTOPPED;
	}
	st->runs++;
	st->svc->progress(st->task, st->runs, -1, "runs");
	st->svc->setting_int(st->task, "run_ms", &run_ms);
	if (run_ms > 0 && st->svc->sleep_ms(st->task, run_ms) == TG_ESTOPPED) {
		atomic_fetch_sub(&st->in_run, 1);
		return TG_ESTOPPED;
	}
	if (lock[0])
		st->svc->unlock(st->task, lock);
	st->svc->setting_int(st->task, "idle_s", idle_s);
	{
		int64_t not_before = -1;
		st->svc->setting_int(st->task, "not_before_ms", &not_before);
		if (not_before >= 0 && TG_SERVICES_HAS(st->svc, not_before_ms))
			st->svc->not_before_ms(st->task, not_before);
	}
	st->svc->setting_bool(st->task, "fail", &fail);
	atomic_fetch_sub(&st->in_run, 1);
	if (fail) {
		*errmsg = strdup("the test asked this run to fail");
		return TG_EIO;
	}
	return 0;
}

static void tp_destroy(void *state)
{
	free(state);
}

static const struct tg_cost costs[] = {
	{"deal", "page", 5, 0, "one /deal page"},
	{"product", "asin", 0, 1, "one product"},
};

static const struct tg_setting settings[] = {
	{"run_ms", TG_SETTING_INT, "0", "how long each run lasts (a visible sleep)"},
	{"idle_s", TG_SETTING_INT, "60", "idle time asked after a run"},
	{"fail", TG_SETTING_BOOL, "false", "every run fails with a message"},
	{"not_before_ms", TG_SETTING_INT, "-1", "ask services->not_before_ms() for this (ABI 1.2; -1: don't)"},
	{"lock", TG_SETTING_STRING, "", "hold this named lock during each run"},
};

static const struct tg_plugin descriptor = {
	.abi_major = TG_ABI_MAJOR,
#if defined(VARIANT_NEWER_MINOR)
	.abi_minor = TG_ABI_MINOR + 1,
#elif defined(VARIANT_OLD_MINOR)
	.abi_minor = 0,
#else
	.abi_minor = TG_ABI_MINOR,
#endif
#ifdef VARIANT_SHORT_SIZE
	.struct_size = 16,
#else
	.struct_size = sizeof(struct tg_plugin),
#endif
	.name = PLUGIN_NAME,
	.version = "1.2.3",
	.description = "a test plugin",
	.costs = costs,
	.ncosts = 2,
	.settings = settings,
	.nsettings = sizeof(settings) / sizeof(settings[0]),
	.init = tp_init,
#ifndef VARIANT_NO_RUN
	.run = tp_run,
#endif
	.destroy = tp_destroy,
};

#if defined(VARIANT_NO_ENTRY)
TG_EXPORT const struct tg_plugin *not_the_entry(void);
TG_EXPORT const struct tg_plugin *not_the_entry(void)
#elif defined(VARIANT_ABI2)
TG_EXPORT const struct tg_plugin *tollgate_plugin_v2(void);
TG_EXPORT const struct tg_plugin *tollgate_plugin_v2(void)
#else
TG_EXPORT const struct tg_plugin *TG_PLUGIN_ENTRY(void)
#endif
{
	return &descriptor;
}
