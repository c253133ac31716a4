/*
 * cmd_export.c - `tollgate export`: a table of the database as CSV or JSON
 * Lines on stdout, for spreadsheets and scripts.
 *
 *   tollgate export [--table deals] [--format csv|jsonl] [--where 'COL OP VALUE']...
 *                   [--search TEXT] [--sort [-]COL] [--limit N]
 *
 * The rows are written by export_rows(), the code behind the web page's
 * "download CSV" too, so both give the same bytes for the same filter.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "core/config.h"
#include "storage/export.h"
#include "storage/storage.h"

#define EXPORT_MAX_WHERE 16
#define EXIT_NOINPUT 66 /* sysexits.h: the database does not exist */

static void export_usage(FILE *out)
{
	fprintf(out,
	        "usage: tollgate export [--table NAME] [--format csv|jsonl] [--where 'COLUMN OP VALUE']...\n"
	        "                       [--search TEXT] [--sort [-]COLUMN] [--limit N]\n"
	        "\n"
	        "Write a table of the database (storage.path) to stdout.\n"
	        "  --table NAME     the table (default deals)\n"
	        "  --format F       csv (RFC 4180, a header line) or jsonl (one JSON object a line); default csv\n"
	        "  --where EXPR     keep rows where COLUMN OP VALUE holds; OP is = != < <= > >=, VALUE a\n"
	        "                   number for numeric columns or null (repeatable: all must hold)\n"
	        "  --search TEXT    keep rows whose title contains TEXT (ASCII case ignored)\n"
	        "  --sort [-]COL    order by COL (- descending); default the table's key\n"
	        "  --limit N        at most N rows\n"
	        "exit status: 0 ok, 64 usage, 65 a bad filter, 66 no database, 74 a write failed, 78 config.\n");
}

/* "drop_pct>=30" -> column, operator, value text (pointers into expr,
 * which is modified). */
static int split_where(char *expr, char **column, enum tg_op *op, char **value)
{
	static const struct {
		const char *text;
		enum tg_op op;
	} ops[] = {{">=", TG_GE}, {"<=", TG_LE}, {"!=", TG_NE}, {"=", TG_EQ}, {"<", TG_LT}, {">", TG_GT}};
	size_t n = strspn(expr, "abcdefghijklmnopqrstuvwxyz0123456789_");
	char *rest = expr + n;

	if (n == 0)
		return -1;
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		size_t len = strlen(ops[i].text);
		if (strncmp(rest, ops[i].text, len) == 0) {
			*op = ops[i].op;
			*value = rest + len;
			rest[0] = '\0';
			*column = expr;
			return **value ? 0 : -1;
		}
	}
	return -1;
}

static int write_stdout(void *ud, const char *data, size_t len)
{
	(void)ud;
	return fwrite(data, 1, len, stdout) == len ? 0 : TG_EIO;
}

int cmd_export(const struct cli_options *opts, int argc, char **argv)
{
	struct storage_query q = {.table = "deals", .limit = -1};
	struct tg_filter filters[EXPORT_MAX_WHERE];
	char *where[EXPORT_MAX_WHERE];
	int nwhere = 0, rc, exit_code = 0;
	enum export_format format = EXPORT_CSV;
	const struct storage_table *t;
	struct storage *st = NULL;
	struct storage_conn *conn = NULL;
	struct config cf;
	struct stat sb;
	char *err = NULL;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			export_usage(stdout);
			return 0;
		}
		if (!v) {
			fprintf(stderr, "tollgate export: %s needs a value\n\n", a);
			export_usage(stderr);
			return EXIT_USAGE;
		}
		i++;
		if (strcmp(a, "--table") == 0) {
			q.table = v;
		} else if (strcmp(a, "--format") == 0) {
			if (export_format_parse(v, &format) != 0) {
				fprintf(stderr, "tollgate export: --format must be csv or jsonl, not \"%s\"\n", v);
				return EXIT_USAGE;
			}
		} else if (strcmp(a, "--where") == 0) {
			if (nwhere >= EXPORT_MAX_WHERE) {
				fprintf(stderr, "tollgate export: at most %d --where\n", EXPORT_MAX_WHERE);
				return EXIT_USAGE;
			}
			where[nwhere++] = argv[i];
		} else if (strcmp(a, "--search") == 0) {
			q.match_column = "title";
			q.match_text = v;
		} else if (strcmp(a, "--sort") == 0) {
			q.order_by = v;
		} else if (strcmp(a, "--limit") == 0) {
			char *end;
			errno = 0;
			q.limit = strtoll(v, &end, 10);
			if (*end || errno || q.limit < 0) {
				fprintf(stderr, "tollgate export: --limit must be a number >= 0, not \"%s\"\n", v);
				return EXIT_USAGE;
			}
		} else {
			fprintf(stderr, "tollgate export: unknown option %s\n\n", a);
			export_usage(stderr);
			return EXIT_USAGE;
		}
	}

	if ((rc = cli_load_config(opts, &cf)))
		return rc;
	/* Reading must not create: a typo in storage.path would otherwise
	 * leave an empty database behind and print nothing. */
	if (stat(cf.storage_path, &sb) != 0) {
		fprintf(stderr, "tollgate export: no database at %s (storage.path): %s\n", cf.storage_path,
		        strerror(errno));
		config_release(&cf);
		return EXIT_NOINPUT;
	}
	if ((rc = storage_open(&st, cf.storage_backend, cf.storage_path, &err)) ||
	    (rc = storage_connect(st, &conn, &err)) || (rc = storage_table_get(conn, q.table, &t, &err))) {
		fprintf(stderr, "tollgate export: %s\n", err ? err : "cannot read the database");
		exit_code = rc == TG_EINVAL ? EXIT_DATAERR : EXIT_UNAVAILABLE;
		goto out;
	}
	for (int i = 0; i < nwhere; i++) {
		char *column, *value;
		enum tg_op op;
		if (split_where(where[i], &column, &op, &value) != 0) {
			fprintf(stderr, "tollgate export: --where \"%s\" is not COLUMN OP VALUE (OP: = != < <= > >=)\n",
			        where[i]);
			exit_code = EXIT_USAGE;
			goto out;
		}
		filters[i].op = op;
		if (export_value_parse(t, column, value, &filters[i].value, &err) != 0) {
			fprintf(stderr, "tollgate export: --where: %s\n", err);
			exit_code = EXIT_DATAERR;
			goto out;
		}
	}
	q.filters = filters;
	q.nfilters = (size_t)nwhere;
	rc = export_rows(conn, &q, format, write_stdout, NULL, &err);
	if (rc == 0 && fflush(stdout) != 0)
		rc = TG_EIO;
	if (rc) {
		fprintf(stderr, "tollgate export: %s\n", err ? err : rc == TG_EIO ? "cannot write to stdout" : "failed");
		exit_code = rc == TG_EIO ? EXIT_IOERR : rc == TG_EINVAL || rc == TG_ETYPE ? EXIT_DATAERR : EXIT_UNAVAILABLE;
	}
out:
	free(err);
	storage_conn_free(conn);
	storage_free(st);
	config_release(&cf);
	return exit_code;
}
