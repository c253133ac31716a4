/*
 * sql_text.c - SQL text from words and quoted identifiers (see sql_text.h).
 */
#include "storage/sql_text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void add_n(struct sql_text *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void sql_text_add(struct sql_text *b, const char *s)
{
	add_n(b, s, strlen(s));
}

void sql_text_addf(struct sql_text *b, const char *fmt, ...)
{
	char small[64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(small)) {
		/* Only short fragments (parameter numbers, casts) go through here. */
		b->oom = true;
		return;
	}
	add_n(b, small, (size_t)n);
}

void sql_text_ident(struct sql_text *b, const char *name)
{
	add_n(b, "\"", 1);
	for (const char *c = name; *c; c++) {
		if (*c == '"')
			add_n(b, "\"\"", 2);
		else
			add_n(b, c, 1);
	}
	add_n(b, "\"", 1);
}

char *sql_text_take(struct sql_text *b)
{
	char *p = b->oom ? NULL : b->p;

	if (b->oom)
		free(b->p);
	*b = (struct sql_text){0};
	return p;
}
