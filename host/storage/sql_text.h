/*
 * sql_text.h - building SQL text from fixed words and validated, quoted
 * identifiers. Values never go into the text: they are bound.
 *
 * An allocation failure is remembered and reported once at the end
 * (sql_text_take), so a builder is a run of calls without error checks.
 * (The SQLite backend still has its own copy; it can move here once its
 * statement rework has landed.)
 */
#ifndef TG_HOST_SQL_TEXT_H
#define TG_HOST_SQL_TEXT_H

#include <stdbool.h>
#include <stddef.h>

struct sql_text {
	char *p;
	size_t len, cap;
	bool oom;
};

void sql_text_add(struct sql_text *b, const char *s);
/* Append printf-style. */
void sql_text_addf(struct sql_text *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "name", with any quote doubled (none passes the front's validation;
 * this is the second wall). */
void sql_text_ident(struct sql_text *b, const char *name);
/* The text (the caller frees it), or NULL when an allocation failed (the
 * builder is emptied either way). */
char *sql_text_take(struct sql_text *b);

#endif
