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
#include "util/errmsg.h"

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

/* ------------------------------------------------------------ buffers */

int export_buf_write(void *ud, const char *data, size_t len)
{
	struct export_buf *b = ud;

	if (b->oom)
		return 0;
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		char *p;

		while (cap < b->len + len + 1)
			cap *= 2;
		p = realloc(b->data, cap);
		if (!p) {
			b->oom = 1;
			return 0;
		}
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

void export_buf_add(struct export_buf *b, const char *s)
{
	export_buf_write(b, s, strlen(s));
}

void export_buf_free(struct export_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

/* ------------------------------------------------------------- values */

static void add_number(struct export_buf *b, const struct tg_value *v)
{
	char num[40];

	if (v->type == TG_INT)
		snprintf(num, sizeof(num), "%lld", (long long)v->v.i);
	else if (isfinite(v->v.r))
		snprintf(num, sizeof(num), "%.17g", v->v.r);
	else
		snprintf(num, sizeof(num), "%s", "");
	export_buf_add(b, num);
}

void export_json_string(struct export_buf *b, const char *s)
{
	char esc[8];

	export_buf_add(b, "\"");
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c == '"' || *c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*c;
			export_buf_write(b, esc, 2);
		} else if (*c < 0x20 || *c == '<' || *c == '>' || *c == '&') {
			snprintf(esc, sizeof(esc), "\\u%04x", *c);
			export_buf_add(b, esc);
		} else if (c[0] == 0xe2 && c[1] == 0x80 && (c[2] == 0xa8 || c[2] == 0xa9)) {
			/* U+2028/U+2029 end a line in older JavaScript. */
			export_buf_add(b, c[2] == 0xa8 ? "\\u2028" : "\\u2029");
			c += 2;
		} else {
			export_buf_write(b, (const char *)c, 1);
		}
	}
	export_buf_add(b, "\"");
}

void export_json_row(struct export_buf *b, const struct tg_value *row, size_t n)
{
	export_buf_add(b, "{");
	for (size_t i = 0; i < n; i++) {
		if (i)
			export_buf_add(b, ",");
		export_json_string(b, row[i].column);
		export_buf_add(b, ":");
		if (row[i].type == TG_TEXT)
			export_json_string(b, row[i].v.s);
		else if (row[i].type == TG_INT || (row[i].type == TG_REAL && isfinite(row[i].v.r)))
			add_number(b, &row[i]);
		else
			export_buf_add(b, "null");
	}
	export_buf_add(b, "}");
}

/* A CSV field: quoted when it holds a comma, quote, CR or LF (quotes
 * doubled). A text that a spreadsheet would run as a formula (=, +, -, @,
 * tab, CR first) gets a leading apostrophe, OWASP's advice against CSV
 * injection: Keepa titles are anyone's text. */
static void csv_text(struct export_buf *b, const char *s)
{
	int quote = strpbrk(s, ",\"\r\n") != NULL;

	if (quote)
		export_buf_add(b, "\"");
	if (strchr("=+-@\t\r", s[0]) && s[0])
		export_buf_add(b, "'");
	for (const char *c = s; *c; c++)
		export_buf_write(b, *c == '"' ? "\"\"" : c, *c == '"' ? 2 : 1);
	if (quote)
		export_buf_add(b, "\"");
}

static void csv_row(struct export_buf *b, const struct tg_value *row, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (i)
			export_buf_add(b, ",");
		if (row[i].type == TG_TEXT)
			csv_text(b, row[i].v.s);
		else if (row[i].type == TG_INT || row[i].type == TG_REAL)
			add_number(b, &row[i]);
	}
	export_buf_add(b, "\r\n");
}

/* -------------------------------------------------------------- rows */

struct export_ctx {
	enum export_format format;
	export_write_fn write;
	void *ud;
	struct export_buf line;
};

static int export_row(void *ud, const struct tg_value *row, size_t n)
{
	struct export_ctx *x = ud;

	x->line.len = 0;
	if (x->format == EXPORT_CSV) {
		csv_row(&x->line, row, n);
	} else {
		export_json_row(&x->line, row, n);
		export_buf_add(&x->line, "\n");
	}
	if (x->line.oom)
		return TG_ENOMEM;
	return x->write(x->ud, x->line.data, x->line.len);
}

int export_rows(struct storage_conn *conn, const struct storage_query *q, enum export_format format,
                export_write_fn write, void *ud, char **errmsg)
{
	struct export_ctx x = {.format = format, .write = write, .ud = ud};
	const struct storage_table *t;
	int rc;

	rc = storage_table_get(conn, q->table, &t, errmsg);
	if (rc < 0)
		return rc;
	if (format == EXPORT_CSV) {
		for (size_t i = 0; i < t->ncolumns; i++) {
			export_buf_add(&x.line, i ? "," : "");
			export_buf_add(&x.line, t->columns[i].name);
		}
		export_buf_add(&x.line, "\r\n");
		if (x.line.oom)
			rc = TG_ENOMEM;
		else
			rc = write(ud, x.line.data, x.line.len);
	}
	if (rc == 0)
		rc = storage_query(conn, q, export_row, &x, errmsg);
	if (rc == TG_ENOMEM && errmsg && !*errmsg)
		*errmsg = str_printf("out of memory");
	export_buf_free(&x.line);
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
