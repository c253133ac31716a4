/*
 * keepa/key.c - reading the Keepa access key (see keepa_load_key() in
 * keepa.h). The key is a secret: no message here ever contains it, and the
 * buffers that held it are wiped before they are freed.
 */
#include "keepa/priv.h"
#include "util/errmsg.h"
#include "keepa/keepa.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A key is one word of at most this many bytes (Keepa's are 64). */
#define KEY_MAX 1024


/* Strip surrounding whitespace from text (in place) and check that what is
 * left is one printable word. Returns its length, 0 when empty, -1 when
 * malformed. *start receives where it begins. */
static long trim_key(char *text, char **start)
{
	char *s = text, *e;

	while (*s && isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		e--;
	*e = '\0';
	*start = s;
	for (char *p = s; p < e; p++)
		if (!isgraph((unsigned char)*p))
			return -1;
	return e - s;
}

static int dup_key(const char *s, char **key, char **errmsg)
{
	*key = strdup(s);
	if (!*key) {
		keepa_set_err(errmsg, "out of memory");
		return TG_ENOMEM;
	}
	return 0;
}

static int key_from_env(char **key, char **errmsg, int *found)
{
	const char *env = getenv("KEEPA_API_KEY");
	char buf[KEY_MAX + 1], *start;
	long len;
	int rc;

	*found = 0;
	if (!env || strlen(env) > KEY_MAX)
		goto out_absent;
	snprintf(buf, sizeof(buf), "%s", env);
	len = trim_key(buf, &start);
	if (len == 0)
		goto out_absent;
	*found = 1;
	if (len < 0) {
		keepa_set_err(errmsg, "KEEPA_API_KEY holds more than one word or control characters");
		rc = TG_EINVAL;
		goto out_wipe;
	}
	rc = dup_key(start, key, errmsg);
out_wipe:
	explicit_bzero(buf, sizeof(buf));
	return rc;
out_absent:
	return 0;
}

int keepa_load_key(const char *key_file, char **key, char **errmsg)
{
	char buf[KEY_MAX + 2], *start;
	struct stat st;
	ssize_t n;
	long len;
	int fd, rc, found;

	*key = NULL;
	rc = key_from_env(key, errmsg, &found);
	if (found)
		return rc;
	if (!key_file || !*key_file) {
		keepa_set_err(errmsg, "no Keepa key: set KEEPA_API_KEY or keepa.key_file");
		return TG_ENOTFOUND;
	}

	fd = open(key_file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		int e = errno; /* before anything that may call malloc */
		keepa_set_err(errmsg, "%s: %s%s", key_file, strerror(e),
		              e == EACCES || e == EPERM ? " (the daemon's user must be able to read it: 0640 "
		                                          "root:<its group>)"
		                                        : "");
		/* Missing or unreadable: the configuration's to mend (78), not a
		 * passing fault to restart on. */
		return e == ENOENT ? TG_ENOTFOUND : (e == EACCES || e == EPERM) ? TG_EINVAL : TG_EIO;
	}
	if (fstat(fd, &st) != 0) {
		keepa_set_err(errmsg, "%s: %s", key_file, strerror(errno));
		rc = TG_EIO;
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		keepa_set_err(errmsg, "%s: not a regular file", key_file);
		rc = TG_EINVAL;
		goto out_close;
	}
	/* Like ssh with its private keys: a secret others can read, or that
	 * anyone but its owner could swap, is refused rather than used. The
	 * group may read it: root:tollgate 0640 is how a daemon that runs as
	 * its own user is handed a root-managed secret. */
	if (st.st_mode & (S_IWGRP | S_IROTH | S_IWOTH)) {
		keepa_set_err(errmsg,
		              "%s: the key file is %s (mode %03o); chmod 600 (or 640 for the daemon's group) it",
		              key_file, (st.st_mode & (S_IROTH | S_IWOTH)) ? "accessible by others" : "writable by its group",
		              (unsigned)(st.st_mode & 0777));
		rc = TG_EINVAL;
		goto out_close;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0) {
		keepa_set_err(errmsg, "%s: %s", key_file, strerror(errno));
		rc = TG_EIO;
		goto out_wipe;
	}
	buf[n] = '\0';
	if ((size_t)n > KEY_MAX) {
		keepa_set_err(errmsg, "%s: longer than %d bytes, not a Keepa key", key_file, KEY_MAX);
		rc = TG_EINVAL;
		goto out_wipe;
	}
	if (memchr(buf, '\0', (size_t)n)) {
		keepa_set_err(errmsg, "%s: holds a NUL byte, not a Keepa key", key_file);
		rc = TG_EINVAL;
		goto out_wipe;
	}
	len = trim_key(buf, &start);
	if (len == 0) {
		keepa_set_err(errmsg, "%s: the key file is empty", key_file);
		rc = TG_EINVAL;
		goto out_wipe;
	}
	if (len < 0) {
		keepa_set_err(errmsg, "%s: holds more than one word or control characters", key_file);
		rc = TG_EINVAL;
		goto out_wipe;
	}
	rc = dup_key(start, key, errmsg);
out_wipe:
	explicit_bzero(buf, sizeof(buf));
out_close:
	close(fd);
	return rc;
}
