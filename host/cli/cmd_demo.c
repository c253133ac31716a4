/*
 * cmd_demo.c - `tollgate demo`: the whole system in one command.
 *
 * Starts the Keepa simulator on a free loopback port with accelerated
 * minutes, runs the daemon (backfiller, upserter, janitor) against it with
 * SQLite in a directory of its own, shows what happens live, and ends with a
 * summary and the ten best deals from the database. No Keepa key, no set-up.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "core/config.h"
#include "core/daemon.h"
#include "observe/log.h"
#include "core/runloop.h"
#include "sim/sim.h"
#include "observe/status.h"
#include "storage/storage.h"
#include "tokens/tokens.h"
#include "web/web.h"

#ifndef TG_DATADIR
#define TG_DATADIR "/usr/share/tollgate"
#endif
#ifndef TG_PLUGINDIR
#define TG_PLUGINDIR "/usr/lib/tollgate/plugins"
#endif

struct demo {
	struct storage_conn *db;
	int tty;
	int64_t start_mono, last_line;
	int64_t minute_ms;
	double consumed_at_start;
	int lines_drawn;
};

static int count_row(void *ud, const struct tg_value *row, size_t n)
{
	(void)row;
	(void)n;
	(*(int64_t *)ud)++;
	return 0;
}

static int64_t count_deals(struct demo *demo)
{
	int64_t n = 0;
	char *err = NULL;

	if (storage_select(demo->db, "deals", NULL, 0, NULL, -1, count_row, &n, &err) != 0)
		n = 0;
	free(err);
	return n;
}

static double total_consumed(const struct tokens_status *st)
{
	double sum = 0;
	for (int i = 0; i < st->nclasses; i++)
		sum += st->cls[i].tokens_consumed;
	return sum;
}

static void draw(struct daemon *d, void *ud)
{
	struct demo *demo = ud;
	struct tokens_status *st = calloc(1, sizeof(*st));
	int64_t now = tg_mono_ms(), deals;
	double elapsed_min, per_min;

	if (!st)
		return;
	if (!demo->tty && now - demo->last_line < 5000) {
		free(st);
		return;
	}
	demo->last_line = now;
	tokens_snapshot(d->tokens, st);
	deals = count_deals(demo);
	elapsed_min = (double)(now - demo->start_mono) / (double)demo->minute_ms;
	per_min = elapsed_min > 0 ? total_consumed(st) / elapsed_min : 0;
	if (demo->tty) {
		/* Redraw in place: move up over the previous frame. */
		if (demo->lines_drawn)
			printf("\033[%dA", demo->lines_drawn);
		demo->lines_drawn = 0;
		printf("\033[2K%5.1f s  tokens %.0f/min of %.0f/min plan  balance ~%.0f  429s %llu  deals stored %lld\n",
		       (double)(now - demo->start_mono) / 1000.0, per_min, st->rate, st->est, (unsigned long long)st->n429,
		       (long long)deals);
		demo->lines_drawn++;
		for (int i = 0; i < d->ntasks; i++) {
			struct tg_task *t = &d->tasks[i];
			const char *state;
			char extra[96] = "";
			pthread_mutex_lock(&t->mu);
			state = task_state_name(t->state);
			for (int c = 0; c < st->nclasses; c++)
				if (strcmp(st->cls[c].name, t->cfg->name) == 0 && st->cls[c].state == TOKENS_CLASS_WAITING &&
				    t->state == TASK_RUNNING) {
					state = "waiting for tokens";
					snprintf(extra, sizeof(extra), " (%s, cost %.0f, ETA %.1f s)", st->cls[c].head_kind,
					         st->cls[c].head_cost, (double)st->cls[c].head_eta_ms / 1000.0);
				}
			printf("\033[2K  %-11s %-19s %lld%s%lld %s%s\n", t->cfg->name, state, (long long)t->progress_done,
			       t->progress_total >= 0 ? "/" : "", t->progress_total >= 0 ? (long long)t->progress_total : 0LL,
			       t->progress_unit, extra);
			pthread_mutex_unlock(&t->mu);
			demo->lines_drawn++;
		}
	} else {
		printf("demo %5.1f s: tokens %.0f/min (plan %.0f/min), balance ~%.0f, 429s %llu, deals stored %lld",
		       (double)(now - demo->start_mono) / 1000.0, per_min, st->rate, st->est, (unsigned long long)st->n429,
		       (long long)deals);
		for (int i = 0; i < d->ntasks; i++) {
			struct tg_task *t = &d->tasks[i];
			pthread_mutex_lock(&t->mu);
			printf("; %s %s %lld %s", t->cfg->name, task_state_name(t->state), (long long)t->progress_done,
			       t->progress_unit);
			pthread_mutex_unlock(&t->mu);
		}
		printf("\n");
	}
	fflush(stdout);
	tokens_status_release(st);
	free(st);
}

struct top_ctx {
	int n;
};

static const struct tg_value *col(const struct tg_value *row, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(row[i].column, name) == 0)
			return &row[i];
	return NULL;
}

static void print_cents(const struct tg_value *v)
{
	if (v && v->type == TG_INT)
		printf(" %8.2f", (double)v->v.i / 100.0);
	else
		printf(" %8s", "-");
}

static int print_top_row(void *ud, const struct tg_value *row, size_t n)
{
	struct top_ctx *ctx = ud;
	const struct tg_value *asin = col(row, n, "asin"), *title = col(row, n, "title"),
	                      *drop = col(row, n, "drop_pct"), *rank = col(row, n, "sales_rank");
	char t[33];

	snprintf(t, sizeof(t), "%s", title && title->type == TG_TEXT ? title->v.s : "");
	printf("%2d %-10s %-32s", ++ctx->n, asin && asin->type == TG_TEXT ? asin->v.s : "?", t);
	print_cents(col(row, n, "current_cents"));
	print_cents(col(row, n, "avg_cents"));
	if (drop && drop->type == TG_INT)
		printf(" %5lld%%", (long long)drop->v.i);
	else if (drop && drop->type == TG_REAL)
		printf(" %5.0f%%", drop->v.r);
	else
		printf(" %6s", "-");
	if (rank && rank->type == TG_INT)
		printf(" %9lld", (long long)rank->v.i);
	else
		printf(" %9s", "-");
	print_cents(col(row, n, "est_profit_cents"));
	printf("\n");
	return 0;
}

static void summary(struct daemon *d, struct demo *demo, const char *dir, const char *db_path)
{
	struct tokens_status *st = calloc(1, sizeof(*st));
	struct top_ctx top = {0};
	char *err = NULL;
	double elapsed_min = (double)(tg_mono_ms() - demo->start_mono) / (double)demo->minute_ms;

	if (!st)
		return;
	tokens_snapshot(d->tokens, st);
	printf("\n== summary: %.0f Keepa minutes simulated in %.1f s ==\n", elapsed_min,
	       (double)(tg_mono_ms() - demo->start_mono) / 1000.0);
	printf("%-12s %7s %6s %6s %9s %10s %10s %s\n", "task", "calls", "429s", "errors", "tokens", "wait p50", "wait max",
	       "progress");
	for (int i = 0; i < d->ntasks; i++) {
		struct tg_task *t = &d->tasks[i];
		for (int c = 0; c < st->nclasses; c++) {
			const struct tokens_class_status *k = &st->cls[c];
			if (strcmp(k->name, t->cfg->name) != 0)
				continue;
			printf("%-12s %7llu %6llu %6llu %9.0f %9.1fs %9.1fs %lld %s\n", k->name,
			       (unsigned long long)(k->calls_ok + k->calls_429 + k->calls_error),
			       (unsigned long long)k->calls_429, (unsigned long long)k->calls_error, k->tokens_consumed,
			       k->wait_p50_s, k->wait_max_s, (long long)t->progress_done, t->progress_unit);
		}
	}
	printf("tokens: %.0f consumed at %.1f/min against a %.0f/min plan; utilization (last hour) %.2f; our 429s %llu; "
	       "deepest balance %lld\n",
	       total_consumed(st), elapsed_min > 0 ? total_consumed(st) / elapsed_min : 0, st->rate, st->utilization,
	       (unsigned long long)st->n429, (long long)st->deepest_seen);
	printf("deals stored: %lld\n\n", (long long)count_deals(demo));
	printf("the ten best deals by estimated profit:\n");
	printf("%2s %-10s %-32s %8s %8s %6s %9s %8s\n", "#", "ASIN", "title", "price", "avg", "drop", "rank", "profit");
	if (storage_select(demo->db, "deals", NULL, 0, "-est_profit_cents", 10, print_top_row, &top, &err) != 0)
		printf("(cannot read the deals table: %s)\n", err ? err : "?");
	if (top.n == 0)
		printf("(no deals stored)\n");
	free(err);
	printf("\ndatabase: %s (sqlite3 %s 'select count(*) from deals')\ndirectory: %s\n", db_path, db_path, dir);
	tokens_status_release(st);
	free(st);
}

/* The directory of the running binary, to find a build tree's files. */
static int exe_dir(char *out, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", out, len - 1);
	char *slash;

	if (n <= 0)
		return -1;
	out[n] = '\0';
	slash = strrchr(out, '/');
	if (!slash)
		return -1;
	*slash = '\0';
	return 0;
}

/* demo.cfg: $TOLLGATE_DEMO_CONFIG, else beside a build tree's binary
 * (build/conf/demo.cfg), else the installed copy. */
static const char *find_demo_config(void)
{
	static char path[4096];
	char dir[3000];

	if (getenv("TOLLGATE_DEMO_CONFIG"))
		return getenv("TOLLGATE_DEMO_CONFIG");
	if (exe_dir(dir, sizeof(dir)) == 0) {
		snprintf(path, sizeof(path), "%s/../conf/demo.cfg", dir);
		if (access(path, R_OK) == 0)
			return path;
	}
	snprintf(path, sizeof(path), "%s/demo.cfg", TG_DATADIR);
	return access(path, R_OK) == 0 ? path : NULL;
}

/* Plugins: a build tree's (build/plugins/ beside build/host/), else the
 * installed directory. */
static void demo_plugin_path(struct config *cf, char *storage, size_t len)
{
	char dir[3000], probe[3200];

	if (exe_dir(dir, sizeof(dir)) == 0) {
		snprintf(storage, len, "%s/../plugins", dir);
		snprintf(probe, sizeof(probe), "%s/backfiller.so", storage);
		if (access(probe, R_OK) == 0) {
			cf->plugin_path[0] = storage;
			cf->nplugin_path = 1;
			return;
		}
	}
	cf->plugin_path[0] = TG_PLUGINDIR;
	cf->nplugin_path = 1;
}

static int demo_main(const struct cli_options *cli, const struct cli_args *args)
{
	struct cli_options opts = *cli;
	struct sim_options so = sim_options_default();
	struct sim *sim = NULL;
	struct config cf;
	struct daemon d;
	struct demo demo = {0};
	struct daemon_options dopts = {.keepa_key = "demo-key"};
	struct runloop_options ro = {0};
	struct runloop_signals signals;
	struct web_server *web = NULL;
	char dir[512] = "", endpoint[64], db_path[600], run_dir[600], sock[700], *err = NULL;
	const char *config_path = NULL;
	static char plugin_dir[3100];
	int seconds = 30, rc = EXIT_SOFTWARE, verbose = 0;

	/* A catalog large enough that the walk outlasts the demo, and a bucket
	 * that starts nearly empty: the scheduler has to share a scarce budget
	 * between a backlogged backfiller and a punctual upserter, which is
	 * the whole point of the exercise. */
	so.key = "demo-key";
	so.rate = 60;
	so.minute_ms = 500;
	so.products = 20000;
	so.start_tokens = 100;
	seconds = (int)cli_number(args, "seconds", seconds);
	if (cli_value(args, "dir"))
		snprintf(dir, sizeof(dir), "%s", cli_value(args, "dir"));
	so.rate = (int)cli_number(args, "rate", so.rate);
	so.minute_ms = (int)cli_number(args, "minute-ms", so.minute_ms);
	so.seed = (uint64_t)cli_number(args, "seed", (long long)so.seed);
	so.products = (int)cli_number(args, "products", so.products);
	verbose = cli_flag(args, "verbose");
	if (seconds < 1 || so.rate < 1 || so.minute_ms < 10) {
		cli_error("demo: --seconds, --rate and --minute-ms must be positive (minute-ms >= 10)");
		return EXIT_USAGE;
	}
	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "%s/tollgate-demo-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
		if (!mkdtemp(dir)) {
			cli_error("demo: cannot create a directory: %s", strerror(errno));
			return EXIT_IOERR;
		}
	} else if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
		cli_error("demo: cannot create %s: %s", dir, strerror(errno));
		return EXIT_IOERR;
	}
	config_path = cli->config_given ? cli->config_path : find_demo_config();
	if (!config_path) {
		cli_error("demo: no demo.cfg found (beside the binary or in %s; set TOLLGATE_DEMO_CONFIG or --config)",
		          TG_DATADIR);
		return EXIT_CONFIG;
	}
	opts.config_path = config_path;
	if ((rc = cli_load_config(&opts, &cf)))
		return rc;

	/* The demo's own places replace the template's. */
	if (sim_start(&so, &sim, &err) != 0) {
		cli_error("demo: cannot start the simulator: %s", err ? err : "?");
		free(err);
		config_release(&cf);
		return EXIT_SOFTWARE;
	}
	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%u", (unsigned)sim_port(sim));
	snprintf(db_path, sizeof(db_path), "%s/tollgate.db", dir);
	snprintf(run_dir, sizeof(run_dir), "%s/run", dir);
	snprintf(sock, sizeof(sock), "%s/status.sock", run_dir);
	cf.keepa_endpoint = endpoint;
	cf.storage_path = db_path;
	cf.runtime_dir = run_dir;
	cf.status_socket = sock;
	cf.tokens_minute_ms = so.minute_ms;
	cf.web_listen = "127.0.0.1:0"; /* the page, on a free loopback port */
	if (cli->nplugin_dirs == 0)
		demo_plugin_path(&cf, plugin_dir, sizeof(plugin_dir));
	log_setup(verbose ? TG_LOG_INFO : TG_LOG_WARN, NULL);
	printf("tollgate %s demo: simulator on %s (%d tokens/min, one Keepa minute = %d ms), %d s, data in %s\n",
	       TG_VERSION, endpoint, so.rate, so.minute_ms, seconds, dir);
	fflush(stdout);

	runloop_block_signals();
	daemon_init(&d);
	if (runloop_signals_start(&signals, &d) != 0) {
		cli_error("demo: cannot start the signal thread");
		sim_stop(sim);
		config_release(&cf);
		return EXIT_SOFTWARE;
	}
	rc = daemon_open(&d, &cf, &dopts, &err);
	if (rc == 0)
		rc = storage_connect(d.storage, &demo.db, &err);
	if (rc == 0 && (rc = web_server_start(&d, &web, &err)) == 0) {
		printf("the page: http://127.0.0.1:%u/ (deals) and /status, live while the demo runs\n",
		       (unsigned)web_server_port(web));
		fflush(stdout);
	}
	if (rc) {
		cli_error("demo: %s: %s", rc == TG_ESTOPPED ? "stopped" : "cannot start",
		        err ? err : "?");
		free(err);
		storage_conn_free(demo.db);
		daemon_request_stop(&d);
		runloop_signals_stop(&signals);
		daemon_close(&d);
		sim_stop(sim);
		config_release(&cf);
		return rc == TG_ESTOPPED ? 0 : EXIT_SOFTWARE;
	}
	demo.tty = isatty(STDOUT_FILENO);
	demo.start_mono = tg_mono_ms();
	demo.minute_ms = so.minute_ms;
	ro.max_ms = (int64_t)seconds * 1000;
	ro.tick_ms = demo.tty ? 500 : 1000;
	ro.tick = draw;
	ro.ud = &demo;
	rc = runloop_run(&d, &ro, &err);
	if (rc) {
		cli_error("demo: %s", err ? err : "failed");
		free(err);
	}
	summary(&d, &demo, dir, db_path);
	web_server_stop(web);
	storage_conn_free(demo.db);
	runloop_signals_stop(&signals);
	daemon_close(&d);
	sim_stop(sim);
	config_release(&cf);
	return rc ? EXIT_SOFTWARE : 0;
}

static const struct cli_opt demo_opts[] = {
    {"seconds", CLI_INT, "N", 1, 86400, "how long to run (default 30)", NULL},
    {"dir", CLI_STRING, "DIR", 0, 0, "directory for the database and runtime files (default: a new one in $TMPDIR)",
     "dir"},
    {"rate", CLI_INT, "N", 1, 10000000, "the simulated plan's tokens per minute (default 60)", NULL},
    {"minute-ms", CLI_INT, "MS", 10, 60000, "length of a simulated minute (default 500)", NULL},
    {"seed", CLI_INT, "N", 0, 9223372036854775807LL, "the simulator's catalog seed", NULL},
    {"products", CLI_INT, "N", 1, 2000000, "products in the simulated catalog (default 20000)", NULL},
    {"verbose", CLI_FLAG, NULL, 0, 0, "show the daemon's log lines too", NULL},
};

const struct cli_command cmd_demo = {
    .name = "demo",
    .summary = "simulator + daemon + SQLite in one command, no Keepa key needed",
    .description = "Starts `tollgate sim` on a free loopback port, runs the shipped tasks against it with\n"
                   "SQLite in a directory of its own, shows live progress, then a summary and the best deals.",
    .opts = demo_opts,
    .nopts = (int)(sizeof(demo_opts) / sizeof(demo_opts[0])),
    .run = demo_main,
};
