/*
 * secret.c - one-word secrets in files (see secret.h).
 */
#include "util/secret.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/errmsg.h"

long secret_trim(char *text, char **start)
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

void secret_free(char *secret)
{
	if (!secret)
		return;
	explicit_bzero(secret, strlen(secret));
	free(secret);
}

int secret_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char diff = la != lb;

	for (size_t i = 0; i < la; i++)
		diff |= (unsigned char)(a[i] ^ b[lb ? i % lb : 0]);
	return diff == 0;
}

/* Open path and check that it is a regular file only its owner can change
 * and others cannot read. */
static int open_checked(const char *path, const struct secret_kind *kind, int *fd_out, char **errmsg)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	*fd_out = -1;
	if (fd < 0) {
		int e = errno; /* before anything that may call malloc */
		errmsg_set(errmsg, 0, "%s: %s%s", path, strerror(e),
		           e == EACCES || e == EPERM ? " (the daemon's user must be able to read it: 0640 root:<its group>)"
		                                     : "");
		/* Missing or unreadable: the configuration's to mend (78), not a
		 * passing fault to restart on. */
		return e == ENOENT ? TG_ENOTFOUND : (e == EACCES || e == EPERM) ? TG_EINVAL : TG_EIO;
	}
	if (fstat(fd, &st) != 0) {
		errmsg_set(errmsg, 0, "%s: %s", path, strerror(errno));
		close(fd);
		return TG_EIO;
	}
	if (!S_ISREG(st.st_mode)) {
		errmsg_set(errmsg, 0, "%s: not a regular file", path);
		close(fd);
		return TG_EINVAL;
	}
	if (st.st_mode & (S_IWGRP | S_IROTH | S_IWOTH)) {
		errmsg_set(errmsg, 0, "%s: the %s is %s (mode %03o); chmod 600 (or 640 for the daemon's group) it", path,
		           kind->file, (st.st_mode & (S_IROTH | S_IWOTH)) ? "accessible by others" : "writable by its group",
		           (unsigned)(st.st_mode & 0777));
		close(fd);
		return TG_EINVAL;
	}
	*fd_out = fd;
	return 0;
}

int secret_file_read(const char *path, const struct secret_kind *kind, char **out, char **errmsg)
{
	char buf[SECRET_MAX + 2], *start;
	ssize_t n;
	long len;
	int fd, rc;

	*out = NULL;
	if ((rc = open_checked(path, kind, &fd, errmsg)))
		return rc;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0) {
		rc = errmsg_set(errmsg, TG_EIO, "%s: %s", path, strerror(errno));
		goto out_wipe;
	}
	buf[n] = '\0';
	if ((size_t)n > SECRET_MAX) {
		rc = errmsg_set(errmsg, TG_EINVAL, "%s: longer than %d bytes, not a %s", path, SECRET_MAX, kind->value);
		goto out_wipe;
	}
	if (memchr(buf, '\0', (size_t)n)) {
		rc = errmsg_set(errmsg, TG_EINVAL, "%s: holds a NUL byte, not a %s", path, kind->value);
		goto out_wipe;
	}
	len = secret_trim(buf, &start);
	if (len == 0) {
		rc = errmsg_set(errmsg, TG_EINVAL, "%s: the %s is empty", path, kind->file);
		goto out_wipe;
	}
	if (len < 0) {
		rc = errmsg_set(errmsg, TG_EINVAL, "%s: holds more than one word or control characters", path);
		goto out_wipe;
	}
	*out = strdup(start);
	rc = *out ? 0 : errmsg_set(errmsg, TG_ENOMEM, "out of memory");
out_wipe:
	explicit_bzero(buf, sizeof(buf));
	return rc;
}
