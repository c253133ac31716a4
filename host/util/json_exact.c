/*
 * json_exact.c - see json_exact.h.
 *
 * The scanner mirrors what cJSON 1.7's parser does with a number, so that
 * the n-th number token of the text is the n-th number node of the tree:
 *   - outside strings, a number starts at '-' or a digit (nothing else in
 *     JSON text holds a digit there; keys and string values are skipped,
 *     with cJSON's rule for the closing quote: a backslash escapes the next
 *     byte);
 *   - cJSON copies the run of [0-9+-eE.] and strtod()s it; the parse
 *     continues after what strtod() consumed. We do the same, with a fast
 *     path for plain integers (all of Keepa's numbers but a few). (Upstream
 *     1.7.15 copied at most 63 bytes; Debian 12's package carries the fix
 *     for CVE-2023-26819 that copies the whole run, as later releases do.
 *     Where the two differ, a number of more than 63 characters at the
 *     root, a capped parse fails the value check below: no annotation.)
 * Every token's value is compared with its node's double, so a text that is
 * not the tree's is detected instead of annotating the wrong numbers.
 */
#include "util/json_exact.h"

#include <locale.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* 2^53 - 1: every integer up to this magnitude is exact as a double and
 * the only integer its double can come from. 2^53 is exact too, but
 * 2^53 + 1 parses to the same double: from there on the text is kept. */
static const char max_safe[] = "9007199254740991";

struct scan {
	const char *p, *end;
};

/* One number token: where its digits start (after '-' and leading zeros),
 * how many there are, whether it is a plain integer and its value as cJSON
 * computed it. */
struct token {
	bool negative, integer;
	const char *digits;
	size_t ndigits;
	double value;
};

static bool is_number_char(char c)
{
	return (c >= '0' && c <= '9') || c == '+' || c == '-' || c == 'e' || c == 'E' || c == '.';
}

/* strtod() of the token at p (at most avail bytes), as cJSON calls it:
 * '.' replaced by the locale's decimal point. *consumed 0: no number (or
 * no memory for a token longer than the stack buffer). */
static double token_strtod(const char *p, size_t avail, size_t *consumed)
{
	char small[64], *buf = small, *after;
	char point = localeconv()->decimal_point[0];
	size_t n = 0;
	double d;

	while (n < avail && is_number_char(p[n]))
		n++;
	if (n >= sizeof(small) && !(buf = malloc(n + 1))) {
		*consumed = 0;
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		buf[i] = p[i] == '.' ? point : p[i];
	buf[n] = '\0';
	d = strtod(buf, &after);
	*consumed = (size_t)(after - buf);
	if (buf != small)
		free(buf);
	return d;
}

/* The next number token of the text; false when there is none. */
static bool next_token(struct scan *s, struct token *t)
{
	const char *p = s->p, *start, *q;
	size_t consumed;

	while (p < s->end && *p != '-' && !(*p >= '0' && *p <= '9')) {
		if (*p == '"') {
			/* Up to the closing quote; a backslash escapes the next byte. */
			p++;
			while (p < s->end && *p != '"')
				p += *p == '\\' && s->end - p > 1 ? 2 : 1;
			if (p == s->end)
				return false;
		}
		p++;
	}
	if (p == s->end)
		return false;
	start = p;
	q = start;
	t->negative = *q == '-';
	if (t->negative)
		q++;
	while (q + 1 < s->end && *q == '0' && q[1] >= '0' && q[1] <= '9')
		q++; /* leading zeros (cJSON accepts them): not significant */
	t->digits = q;
	while (q < s->end && *q >= '0' && *q <= '9')
		q++;
	t->ndigits = (size_t)(q - t->digits);
	t->integer = t->ndigits > 0 && !(q < s->end && (*q == '.' || *q == 'e' || *q == 'E'));
	if (t->integer && t->ndigits <= 15) {
		/* Exact in int64 and in a double: no strtod() needed. */
		int64_t v = 0;

		for (const char *d = t->digits; d < q; d++)
			v = v * 10 + (*d - '0');
		t->value = t->negative ? -(double)v : (double)v;
		consumed = (size_t)(q - start);
	} else {
		t->value = token_strtod(start, (size_t)(s->end - start), &consumed);
		if (consumed == 0)
			return false;
		/* "1e" or "1." at the root: strtod() took "1" or "1.", as cJSON did. */
		t->integer = t->ndigits > 0 && start + consumed == q;
	}
	s->p = start + consumed;
	return true;
}

/* True when the integer token's magnitude is 2^53 or more. */
static bool beyond_double(const struct token *t)
{
	size_t n = sizeof(max_safe) - 1;

	if (t->ndigits != n)
		return t->ndigits > n;
	return memcmp(t->digits, max_safe, n) > 0;
}

static int keep_text(cJSON *item, const struct token *t)
{
	char *s = cJSON_malloc(t->ndigits + 2);
	size_t n = 0;

	if (!s)
		return -1;
	if (t->negative)
		s[n++] = '-';
	memcpy(s + n, t->digits, t->ndigits);
	s[n + t->ndigits] = '\0';
	if (item->valuestring)
		cJSON_free(item->valuestring);
	item->valuestring = s;
	return 0;
}

/* The numbers of the list starting at item, depth first in document order;
 * how many got their text, or -1. */
static int walk(cJSON *item, struct scan *s)
{
	int kept = 0;

	for (; item; item = item->next) {
		if (cJSON_IsNumber(item)) {
			struct token t;

			if (!next_token(s, &t) || !(t.value == item->valuedouble))
				return -1;
			if (t.integer && beyond_double(&t)) {
				if (keep_text(item, &t))
					return -1;
				kept++;
			}
		} else if (cJSON_IsArray(item) || cJSON_IsObject(item)) {
			int n = walk(item->child, s);

			if (n < 0)
				return -1;
			kept += n;
		}
	}
	return kept;
}

/* Undo: no number of the list keeps a text (a fresh parse has none). */
static void clear(cJSON *item)
{
	for (; item; item = item->next) {
		if (cJSON_IsNumber(item) && item->valuestring) {
			cJSON_free(item->valuestring);
			item->valuestring = NULL;
		} else if (cJSON_IsArray(item) || cJSON_IsObject(item)) {
			clear(item->child);
		}
	}
}

int json_exact_ints(cJSON *doc, const char *text, size_t len)
{
	struct scan s = {text, text + len};
	int kept;

	if (!doc)
		return 0;
	if (!text)
		return -1;
	kept = walk(doc, &s);
	if (kept < 0)
		clear(doc);
	return kept;
}
