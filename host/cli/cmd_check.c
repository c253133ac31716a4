/*
 * cmd_check.c - `tollgate check` and `tollgate plugins`: what would run, and
 * what is installed, without starting anything.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "core/config.h"
#include "core/daemon.h"
#include "keepa/keepa.h"
#include "core/loader.h"
#include "core/supervise.h"
#include "storage/storage.h"
#include "web/web.h"

static const char *setting_type_word(enum tg_setting_type t)
{
	static const char *const w[] = {"int", "real", "bool", "string", "group", "list"};
	return (unsigned)t < 6 ? w[t] : "?";
}

static void print_costs(FILE *out, const struct tg_plugin *p, const char *indent)
{
	for (size_t c = 0; c < p->ncosts; c++) {
		const struct tg_cost *k = &p->costs[c];
		fprintf(out, "%s%-10s ", indent, k->kind);
		if (k->fixed > 0)
			fprintf(out, "%g%s", k->fixed, k->per_unit > 0 ? " + " : " per call");
		if (k->per_unit > 0)
			fprintf(out, "%g per %s", k->per_unit, k->unit ? k->unit : "unit");
		fprintf(out, "%s%s\n", k->description ? "  - " : "", k->description ? k->description : "");
	}
}

/* The storage, without writing: 0, EXIT_UNAVAILABLE (nothing answers: may
 * pass later) or EXIT_CONFIG (refused, or no right to create tables). */
static int check_storage(const struct config *cf)
{
	bool pg = strcmp(cf->storage_backend, "postgresql") == 0;
	char *summary = NULL, *err = NULL;
	int rc = storage_check(cf->storage_backend, pg ? cf->storage_conninfo : cf->storage_path, &summary, &err);

	if (rc == 0)
		printf("storage: %s\n", summary ? summary : "ok");
	else
		cli_error("check failed: storage: %s", err ? err : "unusable");
	free(summary);
	free(err);
	return rc == 0 ? 0 : rc == TG_ENETWORK ? EXIT_UNAVAILABLE : EXIT_CONFIG;
}

static void print_task(const struct tg_task *t)
{
	const struct task_config *c = t->cfg;
	char sched[32];

	if (t->state == TASK_SKIPPED) {
		cli_warn("%s (optional: it would be skipped)", t->last_error);
		return;
	}
	if (c->interval_s)
		snprintf(sched, sizeof(sched), "every %llds", (long long)c->interval_s);
	else
		snprintf(sched, sizeof(sched), "continuous");
	printf("task %-12s plugin %s %s (%s), weight %g, %s%s: init ok\n", c->name, t->plugin.desc->name,
	       t->plugin.desc->version, t->plugin.path, c->weight, sched, c->required ? ", required" : "");
}

/* What run does up to the first Keepa reading, in the daemon's own dry mode
 * (daemon_open with check_only): the same code, hence the same refusals
 * with the same messages. Then the real storage, without writing. */
static int check(const struct cli_options *opts, const struct cli_args *args)
{
	struct config cf;
	struct daemon d;
	struct daemon_options dopts = {.check_only = true};
	const char *env = getenv("KEEPA_API_KEY");
	char *err = NULL;
	int rc, skipped = 0;
	bool pg;

	if ((rc = cli_load_config(opts, &cf)))
		return rc;
	printf("%s: syntax and keys ok\n", cf.path);
	pg = strcmp(cf.storage_backend, "postgresql") == 0;
	daemon_init(&d);
	rc = daemon_open(&d, &cf, &dopts, &err);
	if (rc) {
		cli_error("cannot start: %s", err ? err : "unknown error");
		cli_error("check failed (exit %d: %s)", cli_exit_status(rc),
		          cli_exit_status(rc) == EXIT_CONFIG ? "fix the configuration" : "a service is unavailable");
		free(err);
		daemon_close(&d);
		config_release(&cf);
		return cli_exit_status(rc);
	}
	printf("keepa: %s, domain %d, key %s; tokens: policy %s, minute %d ms; storage: %s %s%s\n", cf.keepa_endpoint,
	       cf.keepa_domain, env && strspn(env, " \t\r\n") < strlen(env) ? "from KEEPA_API_KEY" : cf.keepa_key_file,
	       cf.tokens_policy, cf.tokens_minute_ms, cf.storage_backend, pg ? cf.storage_conninfo : cf.storage_path,
	       pg ? "" : " (directory ok)");
	if (cf.ntasks == 0)
		printf("no tasks are configured: the daemon would run nothing\n");
	for (int i = 0; i < d.ntasks; i++) {
		print_task(&d.tasks[i]);
		skipped += d.tasks[i].state == TASK_SKIPPED;
	}
	rc = check_storage(&cf);
	if (rc == 0 && web_check(&cf, &err) != 0) {
		/* the web page's token file, read as `run` reads it */
		cli_error("%s: %s", cf.path, err ? err : "web.token_file is not usable");
		free(err);
		rc = EXIT_CONFIG;
	}
	if (rc == 0) {
		printf("check ok%s\n",
		       skipped ? " (with optional tasks that would be skipped: their plugin is not installed)" : "");
		if (cli_flag(args, "print"))
			cli_print_config(stdout, &cf, &d);
	}
	daemon_close(&d);
	config_release(&cf);
	return rc;
}

struct plugins_ctx {
	int loaded, refused;
};

static void on_plugin(void *ud, const char *path, const struct plugin *pl, const char *error)
{
	struct plugins_ctx *ctx = ud;
	const struct tg_plugin *p;

	if (!pl) {
		cli_warn("refused: %s", error);
		ctx->refused++;
		(void)path;
		return;
	}
	p = pl->desc;
	ctx->loaded++;
	printf("%s %s (ABI %u.%u)  %s\n", p->name, p->version, p->abi_major, p->abi_minor, pl->path);
	if (p->description)
		printf("  %s\n", p->description);
	printf("  costs:\n");
	print_costs(stdout, p, "    ");
	if (p->nsettings)
		printf("  settings:\n");
	for (size_t s = 0; s < p->nsettings; s++) {
		const struct tg_setting *st = &p->settings[s];
		printf("    %-22s %-6s %s%s%s%s\n", st->name, setting_type_word(st->type),
		       st->default_value ? "default " : "", st->default_value ? st->default_value : "",
		       st->default_value ? ": " : "", st->description ? st->description : "");
	}
}

static int plugins(const struct cli_options *opts, const struct cli_args *args)
{
	struct config cf;
	struct plugins_ctx ctx = {0};
	const char *const *dirs;
	int ndirs, rc;

	(void)args;
	if (opts->nplugin_dirs > 0) {
		dirs = opts->plugin_dirs;
		ndirs = opts->nplugin_dirs;
		memset(&cf, 0, sizeof(cf));
	} else {
		if ((rc = cli_load_config(opts, &cf)))
			return rc;
		dirs = cf.plugin_path;
		ndirs = cf.nplugin_path;
	}
	for (int i = 0; i < ndirs; i++)
		printf("# %s\n", dirs[i]);
	/* Each file in a worker process, for the same reason as in check. */
	loader_scan_with(dirs, ndirs, supervise_open_file, (void *)(uintptr_t)supervise_exe(), on_plugin, &ctx);
	printf("%d plugin(s)%s", ctx.loaded, ctx.refused ? "" : "\n");
	if (ctx.refused)
		printf(", %d refused (see above)\n", ctx.refused);
	if (opts->nplugin_dirs == 0)
		config_release(&cf);
	return ctx.refused ? 1 : 0;
}

const struct cli_command cmd_plugins = {
    .name = "plugins",
    .summary = "list installed plugins: name, version, ABI, costs, settings, path",
    .run = plugins,
};

static const struct cli_opt check_opts[] = {
    {"print", CLI_FLAG, NULL, 0, 0, "print the effective configuration, defaults included, after checking", NULL},
};

const struct cli_command cmd_check = {
    .name = "check",
    .summary = "validate everything `run` validates, short of spending tokens; print what would run",
    .description = "The config and its drop-ins, the key, the endpoint rules, storage (its directory must\n"
                   "exist; the database is never created here), every task's plugin and its init in a dry\n"
                   "mode that makes no Keepa call. Exit 0 ok, 78 configuration error, 69 a service is\n"
                   "unavailable. Only an absent plugin file lets an optional task be skipped.",
    .opts = check_opts,
    .nopts = (int)(sizeof(check_opts) / sizeof(check_opts[0])),
    .run = check,
};
