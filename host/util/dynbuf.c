/*
 * dynbuf.c - the growable, capped buffer (see dynbuf.h for the rules).
 */
#include "util/dynbuf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DYNBUF_FIRST_ALLOC 256

void dynbuf_init(struct dynbuf *b, size_t max)
{
	*b = DYNBUF_INIT(max);
}

void dynbuf_free(struct dynbuf *b)
{
	size_t max = b->max;

	free(b->data);
	*b = DYNBUF_INIT(max);
}

void dynbuf_reset(struct dynbuf *b)
{
	b->len = 0;
	b->error = 0;
	if (b->data)
		b->data[0] = '\0';
}

static int fail(struct dynbuf *b, int code)
{
	b->error = code;
	return code;
}

int dynbuf_reserve(struct dynbuf *b, size_t n)
{
	size_t need, alloc;
	char *p;

	if (b->error)
		return b->error;
	/* Written as a subtraction: len <= max always, so this cannot wrap. */
	if (n > b->max - b->len)
		return fail(b, TG_EOVERSIZE);
	need = b->len + n + 1;
	if (need <= b->alloc)
		return 0;
	alloc = b->alloc ? b->alloc : DYNBUF_FIRST_ALLOC;
	while (alloc < need)
		alloc = alloc > SIZE_MAX / 2 ? need : alloc * 2;
	/* Never more than the cap can use. */
	if (alloc > b->max + 1)
		alloc = b->max + 1;
	p = realloc(b->data, alloc);
	if (!p)
		return fail(b, TG_ENOMEM);
	if (!b->data)
		p[0] = '\0';
	b->data = p;
	b->alloc = alloc;
	return 0;
}

char *dynbuf_tail(struct dynbuf *b)
{
	return b->data ? b->data + b->len : NULL;
}

size_t dynbuf_room(const struct dynbuf *b)
{
	/* One byte stays for the NUL. */
	return b->alloc > b->len ? b->alloc - b->len - 1 : 0;
}

void dynbuf_grew(struct dynbuf *b, size_t n)
{
	if (n > dynbuf_room(b))
		n = dynbuf_room(b);
	b->len += n;
	if (b->data)
		b->data[b->len] = '\0';
}

int dynbuf_add(struct dynbuf *b, const void *mem, size_t len)
{
	int rc = dynbuf_reserve(b, len);

	if (rc)
		return rc;
	if (len)
		memcpy(b->data + b->len, mem, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int dynbuf_addstr(struct dynbuf *b, const char *s)
{
	return dynbuf_add(b, s ? s : "", s ? strlen(s) : 0);
}

int dynbuf_addc(struct dynbuf *b, char c)
{
	return dynbuf_add(b, &c, 1);
}

int dynbuf_vprintf(struct dynbuf *b, const char *fmt, va_list ap)
{
	va_list again;
	int n, rc;

	if (b->error)
		return b->error;
	va_copy(again, ap);
	n = vsnprintf(NULL, 0, fmt, again);
	va_end(again);
	if (n < 0)
		return fail(b, TG_EINVAL);
	if ((rc = dynbuf_reserve(b, (size_t)n)))
		return rc;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int dynbuf_printf(struct dynbuf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = dynbuf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

void dynbuf_truncate(struct dynbuf *b, size_t len)
{
	if (len < b->len) {
		b->len = len;
		b->data[len] = '\0';
	}
}

char *dynbuf_take(struct dynbuf *b)
{
	char *out;

	if (b->error) {
		dynbuf_free(b);
		return NULL;
	}
	out = b->data ? b->data : strdup("");
	b->data = NULL;
	b->len = b->alloc = 0;
	return out;
}
