/*
 * export.c - a table as CSV or JSON Lines (see export.h).
 */
#include "storage/export.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/storage.h"
#include "util/dynbuf.h"
#include "util/errmsg.h"

/* One row's text: a STORAGE_COLUMNS_MAX-column row of long titles fits. */
#define EXPORT_LINE_MAX ((size_t)16 << 20)

int export_format_parse(const char *name, enum export_format *out)
{
	if (name && strcmp(name, "csv") == 0) {
		*out = EXPORT_CSV;
		return 0;
	}
	if (name && (strcmp(name, "jsonl") == 0 || strcmp(name, "json-lines") == 0 || strcmp(name, "ndjson") == 0)) {
		*out = EXPORT_JSONL;
		return 0;
	}
	return TG_EINVAL;
}

const char *export_content_type(enum export_format format)
{
	return format == EXPORT_CSV ? "text/csv; charset=utf-8; header=present" : "application/x-ndjson; charset=utf-8";
}

int export_to_dynbuf(void *ud, const char *data, size_t len)
{
	return dynbuf_add(ud, data, len);
}

/* ------------------------------------------------------------- values */

static void add_number(struct dynbuf *b, const struct tg_value *v)
{
	char num[40];

	if (v->type == TG_INT)
		snprintf(num, sizeof(num), "%lld", (long long)v->v.i);
	else if (isfinite(v->v.r))
		snprintf(num, sizeof(num), "%.17g", v->v.r);
	else
		snprintf(num, sizeof(num), "%s", "");
	dynbuf_addstr(b, num);
}

void export_json_string(struct dynbuf *b, const char *s)
{
	char esc[8];

	dynbuf_addstr(b, "\"");
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c == '"' || *c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*c;
			dynbuf_add(b, esc, 2);
		} else if (*c < 0x20 || *c == '<' || *c == '>' || *c == '&') {
			snprintf(esc, sizeof(esc), "\\u%04x", *c);
			dynbuf_addstr(b, esc);
		} else if (c[0] == 0xe2 && c[1] == 0x80 && (c[2] == 0xa8 || c[2] == 0xa9)) {
			/* U+2028/U+2029 end a line in older JavaScript. */
			dynbuf_addstr(b, c[2] == 0xa8 ? "\\u2028" : "\\u2029");
			c += 2;
		} else {
			dynbuf_add(b, (const char *)c, 1);
		}
	}
	dynbuf_addstr(b, "\"");
}

void export_json_row(struct dynbuf *b, const struct tg_value *row, size_t n)
{
	dynbuf_addstr(b, "{");
	for (size_t i = 0; i < n; i++) {
		if (i)
			dynbuf_addstr(b, ",");
		export_json_string(b, row[i].column);
		dynbuf_addstr(b, ":");
		if (row[i].type == TG_TEXT)
			export_json_string(b, row[i].v.s);
		else if (row[i].type == TG_INT || (row[i].type == TG_REAL && isfinite(row[i].v.r)))
			add_number(b, &row[i]);
		else
			dynbuf_addstr(b, "null");
	}
	dynbuf_addstr(b, "}");
}

/* A CSV field: quoted when it holds a comma, quote, CR or LF (quotes
 * doubled). A text that a spreadsheet would run as a formula (=, +, -, @,
 * tab, CR first) gets a leading apostrophe, OWASP's advice against CSV
 * injection: Keepa titles are anyone's text. */
static void csv_text(struct dynbuf *b, const char *s)
{
	int quote = strpbrk(s, ",\"\r\n") != NULL;

	if (quote)
		dynbuf_addstr(b, "\"");
	if (strchr("=+-@\t\r", s[0]) && s[0])
		dynbuf_addstr(b, "'");
	for (const char *c = s; *c; c++)
		dynbuf_add(b, *c == '"' ? "\"\"" : c, *c == '"' ? 2 : 1);
	if (quote)
		dynbuf_addstr(b, "\"");
}

static void csv_row(struct dynbuf *b, const struct tg_value *row, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (i)
			dynbuf_addstr(b, ",");
		if (row[i].type == TG_TEXT)
			csv_text(b, row[i].v.s);
		else if (row[i].type == TG_INT || row[i].type == TG_REAL)
			add_number(b, &row[i]);
	}
	dynbuf_addstr(b, "\r\n");
}

/* -------------------------------------------------------------- rows */

struct export_ctx {
	enum export_format format;
	export_write_fn write;
	void *ud;
	struct dynbuf line;
};

static int export_row(void *ud, const struct tg_value *row, size_t n)
{
	struct export_ctx *x = ud;

	dynbuf_reset(&x->line);
	if (x->format == EXPORT_CSV) {
		csv_row(&x->line, row, n);
	} else {
		export_json_row(&x->line, row, n);
		dynbuf_addstr(&x->line, "\n");
	}
	if (dynbuf_error(&x->line))
		return dynbuf_error(&x->line);
	return x->write(x->ud, dynbuf_str(&x->line), dynbuf_len(&x->line));
}

int export_rows(struct storage_conn *conn, const struct storage_query *q, enum export_format format,
                export_write_fn write, void *ud, char **errmsg)
{
	struct export_ctx x = {.format = format, .write = write, .ud = ud, .line = DYNBUF_INIT(EXPORT_LINE_MAX)};
	const struct storage_table *t;
	int rc;

	rc = storage_table_get(conn, q->table, &t, errmsg);
	if (rc < 0)
		return rc;
	if (format == EXPORT_CSV) {
		for (size_t i = 0; i < t->ncolumns; i++) {
			dynbuf_addstr(&x.line, i ? "," : "");
			dynbuf_addstr(&x.line, t->columns[i].name);
		}
		dynbuf_addstr(&x.line, "\r\n");
		rc = dynbuf_error(&x.line) ? dynbuf_error(&x.line) : write(ud, dynbuf_str(&x.line), dynbuf_len(&x.line));
	}
	if (rc == 0)
		rc = storage_query(conn, q, export_row, &x, errmsg);
	/* The row writers' own failures have no message yet. */
	if (rc == TG_ENOMEM && errmsg && !*errmsg)
		errmsg_set(errmsg, rc, "out of memory");
	if (rc == TG_EOVERSIZE && errmsg && !*errmsg)
		errmsg_set(errmsg, rc, "the export is larger than its buffer allows");
	dynbuf_free(&x.line);
	return rc;
}

/* ------------------------------------------------------ typed values */

int export_value_parse(const struct storage_table *t, const char *column, const char *text, struct tg_value *out,
                       char **errmsg)
{
	const struct storage_column *c = NULL;
	char *end;

	for (size_t i = 0; i < t->ncolumns; i++)
		if (column && strcmp(t->columns[i].name, column) == 0)
			c = &t->columns[i];
	if (!c)
		return errmsg_set(errmsg, TG_EINVAL, "table '%s' has no column '%.80s'", t->name,
		                  column ? column : "(null)");
	memset(out, 0, sizeof(*out));
	out->column = c->name;
	if (strcmp(text, "null") == 0) {
		out->type = TG_NULL;
		return 0;
	}
	errno = 0;
	switch (c->type) {
	case TG_INT:
		out->type = TG_INT;
		out->v.i = strtoll(text, &end, 10);
		if (!*text || *end || errno)
			return errmsg_set(errmsg, TG_EINVAL, "column '%s' holds integers; \"%.40s\" is not one", c->name,
			                  text);
		return 0;
	case TG_REAL:
		out->type = TG_REAL;
		out->v.r = strtod(text, &end);
		if (!*text || *end || errno || !isfinite(out->v.r))
			return errmsg_set(errmsg, TG_EINVAL, "column '%s' holds numbers; \"%.40s\" is not one", c->name,
			                  text);
		return 0;
	default:
		out->type = TG_TEXT;
		out->v.s = text;
		return 0;
	}
}
