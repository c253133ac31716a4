/*
 * keepa/envelope_scan.c - the envelope of a Keepa answer without its tree
 * (envelope.h, keepa_envelope_scan).
 *
 * In worker mode the host forwards an answer's bytes to the worker, which
 * parses them for the plugin; the host itself needs only the top-level
 * token fields and the error member. Building cJSON's tree of a 178 kB
 * /deal page (a node and a strtod per number) was most of the host's CPU
 * per call, so this checks the whole text's grammar in one pass without
 * allocating, and builds a tree of the few members it needs.
 *
 * What it accepts is never more than cJSON 1.7.15 accepts (the worker
 * parses the same bytes with it; an answer the host calls good must parse
 * there): strings, escapes and \u surrogate pairs as cJSON checks them (raw
 * control characters inside strings are let through, as cJSON does), the
 * nesting limit CJSON_NESTING_LIMIT, a UTF-8 byte order mark skipped, text
 * after the root value ignored. It is stricter where cJSON is lax: numbers
 * follow RFC 8259 (cJSON also takes 01, 1. and -.5), whitespace is the
 * RFC's four characters (cJSON skips every byte up to 0x20). Stricter only
 * ever makes an odd answer "garbage", which is retried.
 */
#include "keepa/envelope.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* The members keepa_envelope_parse() and keepa_envelope_error() read. */
static const char *const wanted[] = {"tokensLeft",        "refillRate", "refillIn", "timestamp", "tokenFlowReduction",
                                     "tokensConsumed", "processingTimeInMs", "error"};
#define NWANTED (sizeof(wanted) / sizeof(wanted[0]))

struct scan {
	const unsigned char *p, *end;
};

static void skip_space(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static int hex4(const unsigned char *p, const unsigned char *end, unsigned *out)
{
	unsigned v = 0;

	if (end - p < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		unsigned char c = p[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

/* A \u escape at p (pointing at the 'u'), as cJSON checks it: a lone low
 * surrogate, or a high one not followed by \u and a low one, is refused.
 * Returns the bytes after the escape, or NULL. *cp gets the code point. */
static const unsigned char *unicode_escape(const unsigned char *p, const unsigned char *end, unsigned *cp)
{
	unsigned first, second;

	if (hex4(p + 1, end, &first) != 0 || (first >= 0xDC00 && first <= 0xDFFF))
		return NULL;
	p += 5;
	if (first >= 0xD800 && first <= 0xDBFF) {
		if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, end, &second) != 0 || second < 0xDC00 ||
		    second > 0xDFFF)
			return NULL;
		*cp = 0x10000 + (((first & 0x3FF) << 10) | (second & 0x3FF));
		return p + 6;
	}
	*cp = first;
	return p;
}

/* A string at s->p (its opening quote). On success s->p is past the closing
 * quote; if key is not NULL it receives the decoded text when that is short
 * ASCII (keysize bytes with the NUL), else "" - an envelope key never is. */
static int scan_string(struct scan *s, char *key, size_t keysize)
{
	const unsigned char *p = s->p + 1;
	size_t n = 0;
	bool fits = key != NULL;

	while (p < s->end && *p != '"') {
		unsigned cp = *p;
		if (*p == '\\') {
			if (p + 1 >= s->end)
				return -1;
			switch (p[1]) {
			case 'b': cp = '\b'; p += 2; break;
			case 'f': cp = '\f'; p += 2; break;
			case 'n': cp = '\n'; p += 2; break;
			case 'r': cp = '\r'; p += 2; break;
			case 't': cp = '\t'; p += 2; break;
			case '"': case '\\': case '/': cp = p[1]; p += 2; break;
			case 'u':
				if (!(p = unicode_escape(p + 1, s->end, &cp)))
					return -1;
				break;
			default: return -1;
			}
		} else {
			p++;
		}
		if (fits && (cp == 0 || cp > 0x7F || n + 1 >= keysize))
			fits = false;
		else if (fits)
			key[n++] = (char)cp;
	}
	if (p >= s->end)
		return -1;
	if (key)
		key[fits ? n : 0] = '\0';
	s->p = p + 1;
	return 0;
}

static bool digit(const struct scan *s, const unsigned char *p)
{
	return p < s->end && *p >= '0' && *p <= '9';
}

/* An RFC 8259 number, and no longer than cJSON reads one (63 bytes: it
 * stops there, and refuses what follows). */
static int scan_number(struct scan *s)
{
	const unsigned char *p = s->p;

	if (p < s->end && *p == '-')
		p++;
	if (!digit(s, p))
		return -1;
	if (*p == '0')
		p++;
	else
		while (digit(s, p))
			p++;
	if (p < s->end && *p == '.') {
		if (!digit(s, ++p))
			return -1;
		while (digit(s, p))
			p++;
	}
	if (p < s->end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < s->end && (*p == '+' || *p == '-'))
			p++;
		if (!digit(s, p))
			return -1;
		while (digit(s, p))
			p++;
	}
	if (p - s->p > 63)
		return -1;
	s->p = p;
	return 0;
}

static int scan_literal(struct scan *s, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
		return -1;
	s->p += n;
	return 0;
}

/* A member's key and its colon, and the space after it: at s->p (after
 * any space before the key). key as for scan_string(). */
static int scan_key(struct scan *s, char *key, size_t keysize)
{
	if (s->p >= s->end || *s->p != '"' || scan_string(s, key, keysize) != 0)
		return -1;
	skip_space(s);
	if (s->p >= s->end || *s->p++ != ':')
		return -1;
	skip_space(s);
	return 0;
}

/* One value of any kind at s->p (no leading space), containers included,
 * iteratively: stack[depth] says whether each open container is an object.
 * depth0 is the depth of the value itself (cJSON counts from the root). */
static int scan_value(struct scan *s, int depth0)
{
	bool stack[CJSON_NESTING_LIMIT];
	int depth = 0;

	for (;;) {
		/* A value. */
		if (s->p >= s->end)
			return -1;
		switch (*s->p) {
		case '{':
		case '[':
			if (depth0 + depth >= CJSON_NESTING_LIMIT)
				return -1;
			stack[depth++] = *s->p == '{';
			s->p++;
			skip_space(s);
			if (s->p < s->end && *s->p == (stack[depth - 1] ? '}' : ']')) {
				s->p++;
				depth--;
				break;
			}
			/* An object's first member: its key. */
			if (stack[depth - 1] && scan_key(s, NULL, 0) != 0)
				return -1;
			continue;
		case '"':
			if (scan_string(s, NULL, 0) != 0)
				return -1;
			break;
		case 't':
			if (scan_literal(s, "true") != 0)
				return -1;
			break;
		case 'f':
			if (scan_literal(s, "false") != 0)
				return -1;
			break;
		case 'n':
			if (scan_literal(s, "null") != 0)
				return -1;
			break;
		default:
			if (scan_number(s) != 0)
				return -1;
			break;
		}
		/* After a value: close containers, or go on to the next item. */
		for (;;) {
			if (depth == 0)
				return 0;
			skip_space(s);
			if (s->p >= s->end)
				return -1;
			if (*s->p == (stack[depth - 1] ? '}' : ']')) {
				s->p++;
				depth--;
				continue;
			}
			if (*s->p++ != ',')
				return -1;
			skip_space(s);
			if (stack[depth - 1] && scan_key(s, NULL, 0) != 0)
				return -1;
			break;
		}
	}
}

/* Keep the member key = [start, s->p) in out, if it is one the envelope
 * needs and not already there (cJSON finds the first of duplicates). */
static int keep_member(cJSON *out, const char *key, const unsigned char *start, const struct scan *s)
{
	cJSON *v;
	size_t i;

	for (i = 0; i < NWANTED && strcmp(key, wanted[i]) != 0; i++)
		;
	if (i == NWANTED || cJSON_GetObjectItemCaseSensitive(out, key))
		return 0;
	/* Checked already: cJSON reads it as the worker's parse will. Only the
	 * error object and a handful of numbers ever come through here. */
	v = cJSON_ParseWithLength((const char *)start, (size_t)(s->p - start));
	if (!v)
		return -1;
	cJSON_AddItemToObject(out, key, v);
	return 0;
}

cJSON *keepa_envelope_scan(const char *text, size_t len)
{
	struct scan s = {(const unsigned char *)text, (const unsigned char *)text + len};
	cJSON *out;
	char key[32];

	if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
		s.p += 3;
	skip_space(&s);
	if (s.p >= s.end || *s.p != '{')
		return NULL;
	out = cJSON_CreateObject();
	if (!out)
		return NULL;
	s.p++;
	skip_space(&s);
	if (s.p < s.end && *s.p == '}')
		return out;
	for (;;) {
		const unsigned char *start;
		if (scan_key(&s, key, sizeof(key)) != 0)
			goto bad;
		start = s.p;
		if (scan_value(&s, 1) != 0 || (key[0] && keep_member(out, key, start, &s) != 0))
			goto bad;
		skip_space(&s);
		if (s.p < s.end && *s.p == '}')
			return out; /* what follows the root is ignored, as by cJSON */
		if (s.p >= s.end || *s.p++ != ',')
			goto bad;
		skip_space(&s);
	}
bad:
	cJSON_Delete(out);
	return NULL;
}
