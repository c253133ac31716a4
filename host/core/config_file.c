/*
 * config_file.c - refuse configuration files libconfig must not read (see
 * config_file.h).
 */
#include "core/config_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/errmsg.h"

static const char *kind_of(mode_t mode)
{
	return S_ISFIFO(mode) ? "a FIFO" : S_ISDIR(mode) ? "a directory" : S_ISSOCK(mode) ? "a socket"
	       : S_ISCHR(mode) || S_ISBLK(mode)          ? "a device"
	                                                 : "not a regular file";
}

size_t config_count_settings(const char *s, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		switch (s[i]) {
		case '"': /* a string, with \" escapes */
			for (i++; i < len && s[i] != '"'; i++)
				if (s[i] == '\\')
					i++;
			break;
		case '#': /* a comment to the end of the line */
			while (i < len && s[i] != '\n')
				i++;
			break;
		case '/':
			if (i + 1 < len && s[i + 1] == '/') {
				while (i < len && s[i] != '\n')
					i++;
			} else if (i + 1 < len && s[i + 1] == '*') {
				for (i += 2; i + 1 < len && !(s[i] == '*' && s[i + 1] == '/'); i++)
					;
				i++;
			}
			break;
		case '=':
		case ':':
			n++;
			break;
		default: break;
		}
	}
	return n;
}

int config_file_open(const char *path, FILE **out, char **errmsg)
{
	struct stat st;
	char *text = NULL;
	size_t got = 0, n;
	FILE *f = NULL;
	int fd, rc = 0;

	*out = NULL;
	/* Non-blocking: opening a FIFO must not wait for a writer. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return errmsg_set(errmsg, errno == ENOENT ? TG_EINVAL : TG_EIO, "%s:0: cannot read: %s", path,
		                  strerror(errno));
	if (fstat(fd, &st) != 0) {
		rc = errmsg_set(errmsg, TG_EIO, "%s:0: cannot read: %s", path, strerror(errno));
	} else if (!S_ISREG(st.st_mode)) {
		rc = errmsg_set(errmsg, TG_EINVAL, "%s:0: refused: %s, not a regular file", path, kind_of(st.st_mode));
	} else if (st.st_size > CONFIG_MAX_FILE_BYTES) {
		rc = errmsg_set(errmsg, TG_EINVAL, "%s:0: refused: %lld bytes; a configuration file has at most %ld",
		                path, (long long)st.st_size, CONFIG_MAX_FILE_BYTES);
	} else if (fcntl(fd, F_SETFL, 0) != 0 || !(f = fdopen(fd, "r"))) {
		rc = errmsg_set(errmsg, TG_EIO, "%s:0: cannot read: %s", path, strerror(errno));
	}
	if (rc) {
		close(fd);
		return rc;
	}
	/* Read what libconfig will read (at most one byte past the limit: the
	 * file may have grown since fstat) and count its settings. */
	text = malloc((size_t)CONFIG_MAX_FILE_BYTES + 1);
	if (!text) {
		fclose(f);
		return errmsg_set(errmsg, TG_ENOMEM, "%s:0: out of memory", path);
	}
	while (got <= (size_t)CONFIG_MAX_FILE_BYTES &&
	       (n = fread(text + got, 1, (size_t)CONFIG_MAX_FILE_BYTES + 1 - got, f)) > 0)
		got += n;
	if (ferror(f))
		rc = errmsg_set(errmsg, TG_EIO, "%s:0: cannot read: %s", path, strerror(errno));
	else if (got > (size_t)CONFIG_MAX_FILE_BYTES)
		rc = errmsg_set(errmsg, TG_EINVAL, "%s:0: refused: more than %ld bytes; a configuration file has at "
		                "most %ld", path, CONFIG_MAX_FILE_BYTES, CONFIG_MAX_FILE_BYTES);
	else if ((n = config_count_settings(text, got)) > CONFIG_MAX_SETTINGS)
		rc = errmsg_set(errmsg, TG_EINVAL, "%s:0: refused: %zu settings; a configuration file has at most %d",
		                path, n, CONFIG_MAX_SETTINGS);
	free(text);
	if (rc == 0 && fseek(f, 0, SEEK_SET) != 0)
		rc = errmsg_set(errmsg, TG_EIO, "%s:0: cannot read: %s", path, strerror(errno));
	if (rc) {
		fclose(f);
		return rc;
	}
	*out = f;
	return 0;
}
