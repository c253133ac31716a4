/*
 * dynbuf.h - the host's one growable text/byte buffer, with a hard cap.
 *
 * Every string the host builds piece by piece (status reasons, metrics
 * pages, SQL, HTTP bodies, socket reads) goes through this, so there is one
 * place that does the arithmetic of "room left" - and none that can write
 * past an array.
 *
 * Rules (read these before using one):
 *
 *  - Ownership. The buffer owns `data`. Nothing else frees it, except a
 *    caller who took it with dynbuf_take(), who then owns it (free()).
 *  - Lifetime. Start with DYNBUF_INIT(max) or dynbuf_init(); end with
 *    dynbuf_free() (safe on a buffer that never grew, and twice in a row).
 *  - The cap. `max` bounds the length (bytes, without the NUL) the buffer
 *    will ever hold. Memory is never allocated beyond max + 1. Pick it from
 *    what the input can legitimately be, never "large enough".
 *  - Failure is sticky. An append that would pass the cap or cannot get
 *    memory leaves the content as it was, returns TG_EOVERSIZE or
 *    TG_ENOMEM, and marks the buffer failed: every later append fails the
 *    same way, so a caller may append many times and check once at the end
 *    (dynbuf_error()). Nothing is ever silently truncated.
 *  - Text. The content is always NUL-terminated: dynbuf_str() returns ""
 *    for an empty buffer, never NULL. Binary data (dynbuf_add) may contain
 *    NULs; then use dynbuf_len(), not strlen().
 *  - Pointers into the buffer (dynbuf_str()) are valid until the next
 *    append, reset, take or free.
 *  - Not thread-safe: one owner at a time, like any local variable.
 */
#ifndef TG_HOST_DYNBUF_H
#define TG_HOST_DYNBUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include <tollgate/tollgate.h>

struct dynbuf {
	char *data;   /* NULL until the first append */
	size_t len;   /* bytes held, without the terminating NUL */
	size_t alloc; /* bytes allocated at data */
	size_t max;   /* the cap on len */
	int error;    /* 0, or the sticky TG_EOVERSIZE / TG_ENOMEM */
};

#define DYNBUF_INIT(cap) ((struct dynbuf){.data = NULL, .len = 0, .alloc = 0, .max = (cap), .error = 0})

void dynbuf_init(struct dynbuf *b, size_t max);
/* Release the memory; the buffer is empty (and usable) afterwards. */
void dynbuf_free(struct dynbuf *b);
/* Empty the buffer, keep its memory and its cap, clear a failure. */
void dynbuf_reset(struct dynbuf *b);

/* Append; 0, or the (sticky) error. */
int dynbuf_add(struct dynbuf *b, const void *mem, size_t len);
int dynbuf_addstr(struct dynbuf *b, const char *s);
int dynbuf_addc(struct dynbuf *b, char c);
int dynbuf_printf(struct dynbuf *b, const char *fmt, ...) TG_PRINTF(2, 3);
int dynbuf_vprintf(struct dynbuf *b, const char *fmt, va_list ap) TG_PRINTF(2, 0);

/* Make room for n more bytes without appending (for read(2) into
 * dynbuf_tail()); 0 or the error. dynbuf_grew(b, got) then commits what
 * was written there. */
int dynbuf_reserve(struct dynbuf *b, size_t n);
char *dynbuf_tail(struct dynbuf *b);
size_t dynbuf_room(const struct dynbuf *b);
void dynbuf_grew(struct dynbuf *b, size_t n);

/* Shorten to len (no-op when already shorter). */
void dynbuf_truncate(struct dynbuf *b, size_t len);

static inline const char *dynbuf_str(const struct dynbuf *b)
{
	return b->data ? b->data : "";
}

static inline size_t dynbuf_len(const struct dynbuf *b)
{
	return b->len;
}

static inline int dynbuf_error(const struct dynbuf *b)
{
	return b->error;
}

/* Hand the content over: a malloc'd NUL-terminated string the caller
 * frees, or NULL when the buffer failed (its content is then dropped) or
 * memory ran out. The buffer is empty afterwards. */
char *dynbuf_take(struct dynbuf *b);

#endif
