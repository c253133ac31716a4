/*
 * export.h - a table as CSV or JSON Lines: the one export code behind
 * `tollgate export` and the web's "download CSV" and /api/deals rows.
 *
 * Rows come from storage_query() (filters, search, order, limit all
 * validated against the table's columns) and go to a write function, so
 * the same bytes reach stdout or an HTTP response (a struct dynbuf).
 */
#ifndef TG_HOST_EXPORT_H
#define TG_HOST_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include <tollgate/tollgate.h>

struct dynbuf;
struct storage_conn;
struct storage_query;
struct storage_table;

enum export_format {
	EXPORT_CSV,   /* RFC 4180, a header line of column names, CRLF line ends */
	EXPORT_JSONL, /* one JSON object per line, column: value, NULL as null */
};

/* "csv" or "jsonl" (also "json-lines", "ndjson"); TG_EINVAL otherwise. */
int export_format_parse(const char *name, enum export_format *out);
const char *export_content_type(enum export_format format);

/* Write len bytes; non-zero stops the export and is returned. */
typedef int (*export_write_fn)(void *ud, const char *data, size_t len);

/* Every row of q in format, the header (CSV) included. */
int export_rows(struct storage_conn *conn, const struct storage_query *q, enum export_format format,
                export_write_fn write, void *ud, char **errmsg);

/* An export_write_fn that appends to a struct dynbuf (util/dynbuf.h): the
 * buffer's cap bounds the document, and passing it stops the export. */
int export_to_dynbuf(void *dynbuf, const char *data, size_t len);

/* One row as a JSON object (no newline) appended to b. Text is escaped so
 * the result is also safe inside HTML: <, >, & and U+2028/9 as \uXXXX. */
void export_json_row(struct dynbuf *b, const struct tg_value *row, size_t n);
/* A JSON string literal of s appended to b (same escaping). */
void export_json_string(struct dynbuf *b, const char *s);

/* The text a user typed for a column's value, as a value of the column's
 * type (integers and reals strictly: "12x" is refused); "null" is NULL.
 * The value's text (if any) points into text. */
int export_value_parse(const struct storage_table *t, const char *column, const char *text, struct tg_value *out,
                       char **errmsg);

#endif
