/*
 * test_args.c - the command-line parser against a table of argument vectors:
 * what each one must parse to, or which usage error (64) it must give and
 * which option that error must name.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"

static int ran;
static int handler(const struct cli_options *g, const struct cli_args *a)
{
	(void)g;
	(void)a;
	return ++ran;
}

static const struct cli_opt check_opts[] = {
    {"print", CLI_FLAG, NULL, 0, 0, "print", NULL},
};
static const struct cli_opt demo_opts[] = {
    {"seconds", CLI_INT, "N", 1, 100, "how long", NULL},
    {"dir", CLI_STRING, "DIR", 0, 0, "where", "dir"},
};
static const struct cli_command t_check = {"check", "check it", NULL, check_opts, 1, NULL, 0, NULL, handler};
static const struct cli_command t_demo = {"demo", "demo it", "Longer words.", demo_opts, 2, NULL, 0, NULL, handler};
static const struct cli_command t_comp = {"completion", "complete", NULL, NULL, 0, "SHELL", 1, "bash", handler};
static const struct cli_command *const table[] = {&t_check, &t_demo, &t_comp};

struct expect {
	const char *argv;    /* space-separated, without the program name */
	int rc;              /* -1: a command runs */
	const char *cmd;     /* the command chosen */
	const char *config;  /* the global --config seen */
	int nplugin_dirs;
	const char *opt, *value; /* one command option and its value */
	long long number;    /* for CLI_INT */
	const char *arg0;    /* first positional */
	const char *out;     /* substring of stdout */
	const char *err;     /* substring of stderr */
};

static const struct expect cases[] = {
    /* global options anywhere, both spellings */
    {"check", -1, "check", "default.cfg", 0, NULL, NULL, 0, NULL, NULL, NULL},
    {"--config F check", -1, "check", "F", 0, NULL, NULL, 0, NULL, NULL, NULL},
    {"check --config F", -1, "check", "F", 0, NULL, NULL, 0, NULL, NULL, NULL},
    {"check --config=F", -1, "check", "F", 0, NULL, NULL, 0, NULL, NULL, NULL},
    {"--config=A check --config B", -1, "check", "B", 0, NULL, NULL, 0, NULL, NULL, NULL},
    {"check --print --plugin-dir a --plugin-dir=b", -1, "check", "default.cfg", 2, "print", "1", 0, NULL, NULL, NULL},
    {"demo --seconds 5 --dir=/tmp/x", -1, "demo", "default.cfg", 0, "seconds", "5", 5, NULL, NULL, NULL},
    {"demo --dir /tmp/x --seconds=100", -1, "demo", "default.cfg", 0, "seconds", "100", 100, NULL, NULL, NULL},
    {"completion bash", -1, "completion", "default.cfg", 0, NULL, NULL, 0, "bash", NULL, NULL},
    {"completion -- bash", -1, "completion", "default.cfg", 0, NULL, NULL, 0, "bash", NULL, NULL},
    /* help and version print to stdout and run nothing */
    {"--help", 0, NULL, NULL, 0, NULL, NULL, 0, NULL, "commands:", NULL},
    {"-h", 0, NULL, NULL, 0, NULL, NULL, 0, NULL, "demo it", NULL},
    {"check --help", 0, NULL, NULL, 0, NULL, NULL, 0, NULL, "usage: tollgate check", NULL},
    {"demo --seconds 5 -h", 0, NULL, NULL, 0, NULL, NULL, 0, NULL, "Longer words.", NULL},
    {"demo --help --seconds 5", 0, NULL, NULL, 0, NULL, NULL, 0, NULL, "--seconds N", NULL},
    {"check --version", 0, NULL, NULL, 0, NULL, NULL, 0, NULL, "plugin ABI", NULL},
    /* usage errors name what is wrong */
    {"", 64, NULL, NULL, 0, NULL, NULL, 0, NULL, NULL, "no command given"},
    {"frobnicate", 64, NULL, NULL, 0, NULL, NULL, 0, NULL, NULL, "unknown command \"frobnicate\""},
    {"--bogus check", 64, NULL, NULL, 0, NULL, NULL, 0, NULL, NULL, "unknown option --bogus"},
    {"check --bogus", 64, NULL, NULL, 0, NULL, NULL, 0, NULL, NULL, "tollgate check: unknown option --bogus"},
    {"check --bogus=1", 64, NULL, NULL, 0, NULL, NULL, 0, NULL, NULL, "unknown option --bogus "},
    {"check -x", 64, NULL, NULL, 0, NULL, NULL, 0, NULL, NULL, "unknown option -x"},
    {"check --seconds 5", 64, NULL, NULL, 0, NULL, NULL, 0, NULL, NULL, "unknown option --seconds"},
    {"check --config", 64, NULL, NULL, 0, NULL, NULL, 0, NULL, NULL, "option --config needs a value"},
    {"check --config --print", 64, NULL, NULL, 0, NULL, NULL, 0, NULL, NULL, "option --config needs a value"},
    {"check --print=yes", 64, NULL, NULL, 0, NULL, NULL, 0, NULL, NULL, "option --print takes no value"},
    {"demo --seconds", 64, NULL, NULL, 0, NULL, NULL, 0, NULL, NULL, "option --seconds needs a value"},
    {"demo --seconds abc", 64, NULL, NULL, 0, NULL, NULL, 0, NULL, NULL, "--seconds: 'abc' is not an integer"},
    {"demo --seconds 0", 64, NULL, NULL, 0, NULL, NULL, 0, NULL, NULL, "from 1 to 100"},
    {"demo --seconds 101", 64, NULL, NULL, 0, NULL, NULL, 0, NULL, NULL, "from 1 to 100"},
    {"demo --seconds 5x", 64, NULL, NULL, 0, NULL, NULL, 0, NULL, NULL, "'5x'"},
    {"check extra", 64, NULL, NULL, 0, NULL, NULL, 0, NULL, NULL, "unexpected argument \"extra\""},
    {"completion bash zsh", 64, NULL, NULL, 0, NULL, NULL, 0, NULL, NULL, "unexpected argument \"zsh\""},
    {"check --help --bogus", 64, NULL, NULL, 0, NULL, NULL, 0, NULL, NULL, "unknown option --bogus"},
    {"--plugin-dir 1 --plugin-dir 2 --plugin-dir 3 --plugin-dir 4 --plugin-dir 5 --plugin-dir 6 --plugin-dir 7 "
     "--plugin-dir 8 --plugin-dir 9 check",
     64, NULL, NULL, 0, NULL, NULL, 0, NULL, NULL, "at most 8"},
};

static void run_case(const struct expect *e)
{
	char line[512], *argv[40], *save = NULL, *outbuf = NULL, *errbuf = NULL;
	size_t outlen = 0, errlen = 0;
	int argc = 0, rc;
	struct cli_options g = {.config_path = "default.cfg"};
	struct cli_args a;
	FILE *out = open_memstream(&outbuf, &outlen), *err = open_memstream(&errbuf, &errlen);

	snprintf(line, sizeof(line), "%s", e->argv);
	argv[argc++] = "tollgate";
	for (char *w = strtok_r(line, " ", &save); w; w = strtok_r(NULL, " ", &save))
		argv[argc++] = w;
	argv[argc] = NULL;
	rc = cli_parse(table, 3, argc, argv, &g, &a, out, err);
	fclose(out);
	fclose(err);
	print_message("argv: %s -> rc %d\n  stdout: %.200s\n  stderr: %s\n", e->argv, rc, outbuf, errbuf);
	assert_int_equal(rc, e->rc);
	if (e->rc == -1) {
		assert_non_null(a.cmd);
		assert_string_equal(a.cmd->name, e->cmd);
		assert_string_equal(g.config_path, e->config);
		assert_int_equal(g.nplugin_dirs, e->nplugin_dirs);
		assert_int_equal(errlen, 0);
		assert_int_equal(outlen, 0);
		if (e->opt) {
			assert_string_equal(cli_value(&a, e->opt), e->value);
			if (e->number)
				assert_int_equal(cli_number(&a, e->opt, -1), e->number);
		}
		if (e->arg0) {
			assert_int_equal(a.nargs, 1);
			assert_string_equal(a.arg[0], e->arg0);
		}
	}
	if (e->out)
		assert_non_null(strstr(outbuf, e->out));
	if (e->err)
		assert_non_null(strstr(errbuf, e->err));
	if (e->rc == 0)
		assert_int_equal(errlen, 0);
	if (e->rc == 64)
		assert_int_equal(outlen, 0);
	free(outbuf);
	free(errbuf);
}

static void test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(&cases[i]);
	/* No case reached a handler: parsing never runs a command. */
	assert_int_equal(ran, 0);
}

static void test_unset_values(void **state)
{
	struct cli_options g = {.config_path = "d"};
	struct cli_args a;
	char *argv[] = {"tollgate", "demo", NULL};

	(void)state;
	assert_int_equal(cli_parse(table, 3, 2, argv, &g, &a, stdout, stderr), -1);
	assert_null(cli_value(&a, "seconds"));
	assert_false(cli_flag(&a, "dir"));
	assert_int_equal(cli_number(&a, "seconds", 30), 30);
	assert_null(cli_value(&a, "not-an-option"));
}

/* The completion script names every command and option of the table. */
static void test_completion_covers_table(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	(void)state;
	cli_print_bash_completion(f, table, 3);
	fclose(f);
	for (int c = 0; c < 3; c++) {
		char pat[64];
		snprintf(pat, sizeof(pat), "    %s)\n", table[c]->name);
		assert_non_null(strstr(buf, pat));
		for (int o = 0; o < table[c]->nopts; o++) {
			snprintf(pat, sizeof(pat), "--%s", table[c]->opts[o].name);
			assert_non_null(strstr(buf, pat));
		}
	}
	assert_non_null(strstr(buf, "--seconds|--dir"));     /* options that take a value skip it */
	assert_non_null(strstr(buf, "--dir) COMPREPLY=($(compgen -d"));
	assert_non_null(strstr(buf, "complete -F _tollgate tollgate"));
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table),
	    cmocka_unit_test(test_unset_values),
	    cmocka_unit_test(test_completion_covers_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
