/*
 * misbehave.c - a plugin that writes one row per run into its own table,
 * built in variants (-DVARIANT_*) that each misbehave in one way a
 * third-party plugin might: crash in run, in init or in a constructor,
 * ignore should_stop, leave a transaction open, write another plugin's
 * table, leak memory, spin on the CPU, return a positive init code, or
 * scribble on the worker's socket. The worker-mode tests (tests/e2e/
 * test_workers.py) prove each costs its own task only. VARIANT_WRITER is
 * the well-behaved one whose rows must keep coming meanwhile.
 */
#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <tollgate/tollgate.h>

#ifndef PLUGIN_NAME
#error "PLUGIN_NAME must be defined by the build"
#endif
#define TABLE PLUGIN_NAME "_rows"

struct state {
	struct tg_task *task;
	const struct tg_services *svc;
	int64_t runs;
	void *leaked; /* VARIANT_LEAK: a chain of 8 MB blocks, one per run */
};

static const struct tg_column columns[] = {
	{"id", TG_INT, true},
	{"written_at", TG_INT, false},
};
static const struct tg_table table = {TABLE, columns, 2};

#ifdef VARIANT_CTOR_CRASH
/* Runs at dlopen(), before the host could look at the descriptor. */
__attribute__((constructor)) static void crash_on_load(void)
{
	raise(SIGSEGV);
}
#endif

static int mb_init(struct tg_task *task, const struct tg_services *svc, void **out, char **errmsg)
{
	struct state *st;
	int rc;

#ifdef VARIANT_ABORT_INIT
	abort();
#endif
	st = calloc(1, sizeof(*st));
	if (!st)
		return TG_ENOMEM;
	st->task = task;
	st->svc = svc;
	if ((rc = svc->table_declare(task, &table, errmsg))) {
		free(st);
		return rc;
	}
	*out = st;
#ifdef VARIANT_INIT_POSITIVE
	return 1; /* "ok" in some other convention: not tollgate's */
#endif
	return 0;
}

static int write_row(struct state *st, const char *into, int64_t id)
{
	struct tg_value v[] = {TG_VINT("id", id), TG_VINT("written_at", st->svc->now_ms(st->task))};
	return st->svc->upsert(st->task, into, v, 2);
}

static int mb_run(void *state, int64_t *idle_s, char **errmsg)
{
	struct state *st = state;
	int rc;

	(void)errmsg;
	st->runs++;
	*idle_s = 1;
#ifdef VARIANT_SEGV_RUN
	if (st->runs >= 1)
		raise(SIGSEGV);
#endif
#ifdef VARIANT_IGNORE_STOP
	/* Never asks should_stop() and never returns: only a kill ends it. */
	st->svc->progress(st->task, 1, -1, "loops");
	for (;;) {
		struct timespec ts = {0, 50 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
#endif
#ifdef VARIANT_SPIN
	for (volatile unsigned long i = 0;; i++)
		;
#endif
#ifdef VARIANT_LEAK
	{
		char *lost = malloc(8 << 20);
		if (lost) {
			memset(lost, 0x5a, 8 << 20); /* touched, so it is resident */
			memcpy(lost, &st->leaked, sizeof(st->leaked));
			st->leaked = lost; /* kept, so no compiler can drop it */
		}
	}
#endif
#ifdef VARIANT_GARBAGE
	/* fd 3 is the worker's socket to the host: a frame claiming 4 GiB. */
	if (write(3, "\xff\xff\xff\xff{}", 6) < 0)
		return TG_EIO;
#endif
#ifdef VARIANT_FOREIGN_WRITE
	/* writer_rows belongs to the writer plugin: this must be refused. */
	rc = write_row(st, "writer_rows", -1);
	st->svc->log(st->task, TG_LOG_INFO, "upsert into writer_rows returned %d", rc);
	if (rc == 0)
		return 0;
	{
		struct tg_value key[] = {TG_VINT("id", 1)};
		rc = st->svc->remove(st->task, "writer_rows", key, 1);
		st->svc->log(st->task, TG_LOG_INFO, "remove from writer_rows returned %d", rc);
	}
	if (TG_SERVICES_HAS(st->svc, table_index)) {
		char *err = NULL;

		rc = st->svc->table_index(st->task, "writer_rows", "id", &err);
		st->svc->log(st->task, TG_LOG_INFO, "index on writer_rows returned %d (%s)", rc, err ? err : "-");
		st->svc->free(err);
	}
#endif
#if defined(VARIANT_CALLER) || defined(VARIANT_PINGER)
	/* For tests/bench/workers.py: nothing but Keepa calls as fast as the
	 * scheduler sends them - /deal pages of 150 deals each (caller), or the
	 * free /token, whose answer is a few bytes (pinger). */
	for (int i = 0; i < 20 && !st->svc->should_stop(st->task); i++) {
		char body[256];
#ifdef VARIANT_CALLER
		struct tg_keepa_request req = {.kind = "deal", .units = 1, .path = "/deal", .json_body = body};
#else
		struct tg_keepa_request req = {.kind = "token", .units = 1, .path = "/token"};
#endif
		cJSON *answer = NULL;
		snprintf(body, sizeof(body),
		         "{\"page\":%d,\"domainId\":1,\"priceTypes\":[2],\"dateRange\":3,\"isRangeEnabled\":true,"
		         "\"currentRange\":[100,100000]}",
		         i % 4);
		rc = st->svc->keepa_call(st->task, &req, &answer, NULL);
		cJSON_Delete(answer);
		if (rc)
			return rc;
		st->svc->progress(st->task, st->runs * 20 + i, -1, "calls");
	}
	*idle_s = 0;
	return 0;
#endif
#ifdef VARIANT_OPEN_TXN
	/* Begins, writes, and forgets to commit. */
	if ((rc = st->svc->begin(st->task)))
		return rc;
	return write_row(st, TABLE, st->runs);
#endif
	rc = write_row(st, TABLE, st->runs);
	st->svc->progress(st->task, st->runs, -1, "rows");
	return rc;
}

static void mb_destroy(void *state)
{
	struct state *st = state;

	while (st->leaked) {
		void *next;
		memcpy(&next, st->leaked, sizeof(next));
		free(st->leaked);
		st->leaked = next;
	}
	free(st);
}

#ifdef VARIANT_CALLER
static const struct tg_cost costs[] = {{"deal", "page", 0, 5, "a /deal page"}};
#elif defined(VARIANT_PINGER)
static const struct tg_cost costs[] = {{"token", "call", 1, 0, "/token: free, declared 1 (a cost must be positive)"}};
#endif

static const struct tg_plugin plugin = {
	.abi_major = TG_ABI_MAJOR,
	.abi_minor = TG_ABI_MINOR,
	.struct_size = sizeof(struct tg_plugin),
	.name = PLUGIN_NAME,
	.version = "0.1",
	.description = "writes a row per run; its variants misbehave",
#if defined(VARIANT_CALLER) || defined(VARIANT_PINGER)
	.costs = costs,
	.ncosts = 1,
#endif
	.init = mb_init,
	.run = mb_run,
	.destroy = mb_destroy,
};

TG_EXPORT const struct tg_plugin *TG_PLUGIN_ENTRY(void)
{
	return &plugin;
}
