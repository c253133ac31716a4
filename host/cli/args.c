/*
 * args.c - the table-driven argument parser, help and completion (args.h).
 */
#include "cli/args.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <tollgate/tollgate.h>

#ifndef TG_DEFAULT_CONFIG
#define TG_DEFAULT_CONFIG "/etc/tollgate/tollgate.cfg"
#endif

enum { G_CONFIG, G_PLUGIN_DIR, G_HELP, G_VERSION, G_COUNT };

/* The global options, accepted before or after the subcommand. */
static const struct cli_opt global_opts[G_COUNT] = {
    [G_CONFIG] = {"config", CLI_STRING, "PATH", 0, 0,
                  "configuration file (default " TG_DEFAULT_CONFIG ", or $TOLLGATE_CONFIG)", "file"},
    [G_PLUGIN_DIR] = {"plugin-dir", CLI_STRING, "DIR", 0, 0,
                      "load plugins from DIR instead of plugin_path (repeatable, at most 8)", "dir"},
    [G_HELP] = {"help", CLI_FLAG, NULL, 0, 0, "print this help and exit", NULL},
    [G_VERSION] = {"version", CLI_FLAG, NULL, 0, 0, "print the version and the plugin ABI and exit", NULL},
};

static int find_opt(const struct cli_opt *opts, int n, const char *name, size_t len)
{
	for (int i = 0; i < n; i++)
		if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0)
			return i;
	return -1;
}

static const struct cli_command *find_command(const struct cli_command *const *table, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(table[i]->name, name) == 0)
			return table[i];
	return NULL;
}

static int parse_int(const struct cli_opt *o, const char *s, long long *out, FILE *err, const char *where)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < o->min || v > o->max) {
		fprintf(err, "tollgate%s: option --%s: '%s' is not an integer from %lld to %lld\n", where, o->name, s,
		        o->min, o->max);
		return -1;
	}
	*out = v;
	return 0;
}

/* A separate value may not look like an option: `--config --print` is a
 * missing value, not a file named "--print". */
static bool looks_like_option(const char *s)
{
	return s[0] == '-' && s[1] == '-';
}

int cli_parse(const struct cli_command *const *table, int ntable, int argc, char **argv,
              struct cli_options *global, struct cli_args *args, FILE *out, FILE *err)
{
	const struct cli_command *cmd = NULL;
	bool help = false, version = false, options_done = false;
	char where[48] = "";

	memset(args, 0, sizeof(*args));
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!options_done && strcmp(a, "--") == 0) {
			options_done = true;
			continue;
		}
		if (options_done || a[0] != '-' || a[1] == '\0') {
			if (!cmd) {
				cmd = find_command(table, ntable, a);
				if (!cmd) {
					fprintf(err, "tollgate: unknown command \"%s\" (tollgate --help lists them)\n", a);
					return EXIT_USAGE;
				}
				args->cmd = cmd;
				snprintf(where, sizeof(where), " %s", cmd->name);
				continue;
			}
			if (args->nargs >= cmd->max_args || args->nargs >= CLI_MAX_ARGS) {
				fprintf(err, "tollgate %s: unexpected argument \"%s\" (tollgate %s --help)\n", cmd->name, a,
				        cmd->name);
				return EXIT_USAGE;
			}
			args->arg[args->nargs++] = a;
			continue;
		}
		if (strcmp(a, "-h") == 0) {
			help = true;
			continue;
		}
		if (a[1] != '-') {
			fprintf(err, "tollgate%s: unknown option %s (options are spelled --name)\n", where, a);
			return EXIT_USAGE;
		}

		/* --name or --name=value, looked up among the globals, then the command's. */
		const char *name = a + 2, *eq = strchr(name, '=');
		size_t len = eq ? (size_t)(eq - name) : strlen(name);
		const struct cli_opt *o;
		int gi = find_opt(global_opts, G_COUNT, name, len), ci = -1;
		const char *value = eq ? eq + 1 : NULL;

		if (gi >= 0) {
			o = &global_opts[gi];
		} else if (cmd && (ci = find_opt(cmd->opts, cmd->nopts, name, len)) >= 0) {
			o = &cmd->opts[ci];
		} else {
			fprintf(err, "tollgate%s: unknown option --%.*s (tollgate%s --help lists the options)\n", where,
			        (int)len, name, where);
			return EXIT_USAGE;
		}
		if (o->type == CLI_FLAG && value) {
			fprintf(err, "tollgate%s: option --%s takes no value\n", where, o->name);
			return EXIT_USAGE;
		}
		if (o->type != CLI_FLAG && !value) {
			if (i + 1 >= argc || looks_like_option(argv[i + 1])) {
				fprintf(err, "tollgate%s: option --%s needs a value (%s)\n", where, o->name, o->metavar);
				return EXIT_USAGE;
			}
			value = argv[++i];
		}
		if (gi >= 0) {
			switch (gi) {
			case G_CONFIG:
				global->config_path = value;
				global->config_given = 1;
				break;
			case G_PLUGIN_DIR:
				if (global->nplugin_dirs >= (int)(sizeof(global->plugin_dirs) / sizeof(global->plugin_dirs[0]))) {
					fprintf(err, "tollgate: option --plugin-dir: at most 8\n");
					return EXIT_USAGE;
				}
				global->plugin_dirs[global->nplugin_dirs++] = value;
				break;
			case G_HELP: help = true; break;
			case G_VERSION: version = true; break;
			}
			continue;
		}
		if (o->type == CLI_INT && parse_int(o, value, &args->number[ci], err, where) != 0)
			return EXIT_USAGE;
		if (args->ngiven >= CLI_MAX_GIVEN) {
			fprintf(err, "tollgate%s: more than %d options\n", where, CLI_MAX_GIVEN);
			return EXIT_USAGE;
		}
		args->given[args->ngiven] = o;
		args->given_value[args->ngiven++] = o->type == CLI_FLAG ? NULL : value;
		args->value[ci] = o->type == CLI_FLAG ? "1" : value;
		args->count[ci]++;
	}
	if (version) {
		fprintf(out, "tollgate %s (plugin ABI %d.%d)\n", TG_VERSION, TG_ABI_MAJOR, TG_ABI_MINOR);
		return 0;
	}
	if (help) {
		if (cmd)
			cli_command_help(out, cmd);
		else
			cli_usage(out, table, ntable);
		return 0;
	}
	if (!cmd) {
		fprintf(err, "tollgate: no command given\n\n");
		cli_usage(err, table, ntable);
		return EXIT_USAGE;
	}
	return -1;
}

static int index_of(const struct cli_args *args, const char *name)
{
	if (!args->cmd)
		return -1;
	return find_opt(args->cmd->opts, args->cmd->nopts, name, strlen(name));
}

const char *cli_value(const struct cli_args *args, const char *name)
{
	int i = index_of(args, name);
	return i >= 0 ? args->value[i] : NULL;
}

bool cli_flag(const struct cli_args *args, const char *name)
{
	return cli_value(args, name) != NULL;
}

long long cli_number(const struct cli_args *args, const char *name, long long fallback)
{
	int i = index_of(args, name);
	return i >= 0 && args->value[i] ? args->number[i] : fallback;
}

static void print_opts(FILE *out, const struct cli_opt *opts, int n)
{
	for (int i = 0; i < n; i++) {
		char left[64];
		snprintf(left, sizeof(left), "--%s%s%s", opts[i].name, opts[i].metavar ? " " : "",
		         opts[i].metavar ? opts[i].metavar : "");
		fprintf(out, "  %-22s %s", left, opts[i].help);
		/* The range when it says something a reader can use. */
		if (opts[i].type == CLI_INT && opts[i].max <= 1000000000LL)
			fprintf(out, " (%lld..%lld)", opts[i].min, opts[i].max);
		fprintf(out, "\n");
	}
}

void cli_usage(FILE *out, const struct cli_command *const *table, int ntable)
{
	fprintf(out, "usage: tollgate [GLOBAL OPTIONS] COMMAND [OPTIONS]\n"
	             "\n"
	             "Collect Keepa deal data with plugin tasks under one shared token budget.\n"
	             "\n"
	             "commands:\n");
	for (int i = 0; i < ntable; i++)
		fprintf(out, "  %-10s %s\n", table[i]->name, table[i]->summary);
	fprintf(out, "\nglobal options (before or after the command):\n");
	print_opts(out, global_opts, G_COUNT);
	fprintf(out, "\n`tollgate COMMAND --help` describes a command and its options.\n"
	             "exit status follows sysexits(3): 0 ok, 64 usage, 65 a bad export filter, 66 no database\n"
	             "to export, 69 a service is unavailable, 70 internal error, 74 the database was deleted\n"
	             "or replaced under run, 78 configuration error; status: 0 ok, 1 warning, 2 critical,\n"
	             "3 unknown.\n");
}

void cli_command_help(FILE *out, const struct cli_command *cmd)
{
	fprintf(out, "usage: tollgate %s%s%s%s%s\n\n%s\n", cmd->name, cmd->nopts ? " [OPTIONS]" : "",
	        cmd->max_args ? " [" : "", cmd->max_args ? cmd->args_metavar : "", cmd->max_args ? "]" : "",
	        cmd->summary);
	if (cmd->description)
		fprintf(out, "\n%s\n", cmd->description);
	if (cmd->nopts) {
		fprintf(out, "\noptions:\n");
		print_opts(out, cmd->opts, cmd->nopts);
	}
	fprintf(out, "\nglobal options:\n");
	print_opts(out, global_opts, G_COUNT);
}

int cli_handed_on(const struct cli_args *args, const char *argv0, char **out)
{
	static char names[CLI_MAX_GIVEN][64];
	int argc = 0;

	out[argc++] = (char *)argv0;
	for (int i = 0; i < args->ngiven; i++) {
		snprintf(names[i], sizeof(names[i]), "--%s", args->given[i]->name);
		out[argc++] = names[i];
		if (args->given_value[i])
			out[argc++] = (char *)args->given_value[i];
	}
	for (int i = 0; i < args->nargs; i++)
		out[argc++] = (char *)args->arg[i];
	out[argc] = NULL;
	return argc;
}

/* ---------------------------------------------------------------- bash */

static void bash_words(FILE *out, const struct cli_opt *opts, int n)
{
	for (int i = 0; i < n; i++)
		fprintf(out, " --%s", opts[i].name);
}

/* Options whose next word is their value, and how to complete it. */
static void bash_value_cases(FILE *out, const struct cli_opt *opts, int n)
{
	for (int i = 0; i < n; i++) {
		const char *c = opts[i].complete;
		if (opts[i].type == CLI_FLAG)
			continue;
		fprintf(out, "        --%s) ", opts[i].name);
		if (c && strcmp(c, "file") == 0)
			fprintf(out, "COMPREPLY=($(compgen -f -- \"$cur\"))");
		else if (c && strcmp(c, "dir") == 0)
			fprintf(out, "COMPREPLY=($(compgen -d -- \"$cur\"))");
		else if (c)
			fprintf(out, "COMPREPLY=($(compgen -W \"%s\" -- \"$cur\"))", c);
		else
			fprintf(out, "COMPREPLY=()");
		fprintf(out, "; return ;;\n");
	}
}

void cli_print_bash_completion(FILE *out, const struct cli_command *const *table, int ntable)
{
	fprintf(out, "# bash completion for tollgate - generated by `tollgate completion bash`\n"
	             "# from the same table as the parser; do not edit.\n"
	             "_tollgate()\n{\n"
	             "    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} cmd= i w\n"
	             "    # The command is the first word that is neither an option nor an option's value.\n"
	             "    for ((i = 1; i < COMP_CWORD; i++)); do\n"
	             "        w=${COMP_WORDS[i]}\n"
	             "        case $w in\n"
	             "        --*=*) ;;\n");
	/* Words that consume the next one, global and per command. */
	fprintf(out, "        ");
	{
		int first = 1;
		for (int g = 0; g < G_COUNT; g++)
			if (global_opts[g].type != CLI_FLAG) {
				fprintf(out, "%s--%s", first ? "" : "|", global_opts[g].name);
				first = 0;
			}
		for (int c = 0; c < ntable; c++)
			for (int o = 0; o < table[c]->nopts; o++)
				if (table[c]->opts[o].type != CLI_FLAG) {
					fprintf(out, "|--%s", table[c]->opts[o].name);
				}
	}
	fprintf(out, ") ((i++)) ;;\n"
	             "        -*) ;;\n"
	             "        *) cmd=$w; break ;;\n"
	             "        esac\n"
	             "    done\n"
	             "    case $prev in\n");
	bash_value_cases(out, global_opts, G_COUNT);
	fprintf(out, "    esac\n"
	             "    case $cmd in\n");
	for (int c = 0; c < ntable; c++) {
		const struct cli_command *k = table[c];
		fprintf(out, "    %s)\n        case $prev in\n", k->name);
		bash_value_cases(out, k->opts, k->nopts);
		fprintf(out, "        esac\n"
		             "        if [[ $cur == -* ]]; then\n"
		             "            COMPREPLY=($(compgen -W \"");
		bash_words(out, k->opts, k->nopts);
		bash_words(out, global_opts, G_COUNT);
		fprintf(out, "\" -- \"$cur\"))\n");
		if (k->args_complete)
			fprintf(out, "        else\n            COMPREPLY=($(compgen -W \"%s\" -- \"$cur\"))\n",
			        k->args_complete);
		fprintf(out, "        fi\n        return ;;\n");
	}
	fprintf(out, "    esac\n"
	             "    if [[ $cur == -* ]]; then\n"
	             "        COMPREPLY=($(compgen -W \"");
	bash_words(out, global_opts, G_COUNT);
	fprintf(out, "\" -- \"$cur\"))\n"
	             "    else\n"
	             "        COMPREPLY=($(compgen -W \"");
	for (int c = 0; c < ntable; c++)
		fprintf(out, "%s%s", c ? " " : "", table[c]->name);
	fprintf(out, "\" -- \"$cur\"))\n"
	             "    fi\n"
	             "}\n"
	             "complete -F _tollgate tollgate\n");
}
