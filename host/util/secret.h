/*
 * secret.h - reading a one-word secret from a file: the Keepa key
 * (keepa/key.c) and the web page's token (web/auth.c).
 *
 * Like ssh with its private keys, a secret that others can read, or that
 * anyone but its owner could swap, is refused rather than used; the group
 * may read it (root:tollgate 0640 is how a daemon running as its own user
 * is handed a root-managed secret). No message ever contains the secret,
 * and the buffers that held it are wiped before they are freed.
 */
#ifndef TG_HOST_SECRET_H
#define TG_HOST_SECRET_H

#include <stddef.h>

/* A secret is one word of at most this many bytes. */
#define SECRET_MAX 1024

/* What the file holds, for messages: file "key file", value "Keepa key". */
struct secret_kind {
	const char *file;
	const char *value;
};

/* Read path into *out (malloc()ed; wipe with secret_free()). Errors, with
 * "path: why" in *errmsg (never the content): TG_ENOTFOUND when missing,
 * TG_EINVAL for a bad mode, an unreadable file, or content that is not
 * one word (empty, control characters, too long), TG_EIO otherwise. */
int secret_file_read(const char *path, const struct secret_kind *kind, char **out, char **errmsg);

/* Strip surrounding whitespace in place; returns the length of the one
 * printable word left (0 when empty, -1 when malformed) and where it
 * starts in *start. */
long secret_trim(char *text, char **start);

/* Wipe and free. */
void secret_free(char *secret);

/* Compare in time independent of where they differ (lengths may leak). */
int secret_equal(const char *a, const char *b);

#endif
