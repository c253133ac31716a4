/*
 * status_server.c - serve the status snapshot on a UNIX socket.
 *
 * One JSON document per connection, then close: simple for `tollgate
 * status`, for scripts (socat) and for monitoring. The socket is mode 0660
 * so an operator group can read it; a stale socket file left by a crashed
 * daemon is replaced, a live one is refused (two daemons, one runtime dir).
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/errmsg.h"
#include "core/config.h"
#include "core/daemon.h"
#include "observe/log.h"
#include "observe/status.h"

struct status_server {
	struct daemon *d;
	int fd;
	char path[108];
	dev_t dev; /* the socket file this server bound, to remove only that */
	ino_t ino;
	pthread_t thread;
	int wake[2]; /* a pipe: writing to it ends the thread at once */
};

static void write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

static void *serve(void *arg)
{
	struct status_server *s = arg;

	for (;;) {
		struct pollfd pfd[2] = {{s->fd, POLLIN, 0}, {s->wake[0], POLLIN, 0}};
		int c;
		cJSON *snap;
		char *text;

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents)
			break;
		c = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		snap = status_snapshot(s->d);
		text = snap ? cJSON_PrintUnformatted(snap) : NULL;
		if (text) {
			write_all(c, text, strlen(text));
			write_all(c, "\n", 1);
		}
		free(text);
		cJSON_Delete(snap);
		close(c);
	}
	return NULL;
}

int status_server_start(struct daemon *d, const char *path, struct status_server **out, char **errmsg)
{
	struct status_server *s;
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct stat st;
	int probe, err;

	*out = NULL;
	if (strlen(path) >= sizeof(addr.sun_path)) {
		errmsg_set(errmsg, 0, "status.socket %s: path too long", path);
		return TG_EINVAL;
	}
	memcpy(addr.sun_path, path, strlen(path) + 1);
	/* A socket that answers belongs to a live daemon; one that does not is
	 * debris from a crash and may go. */
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe >= 0 && connect(probe, (struct sockaddr *)&addr, sizeof(addr)) == 0) {
		close(probe);
		errmsg_set(errmsg, 0, "status.socket %s: another daemon is answering there", path);
		return TG_EBUSY;
	}
	if (probe >= 0)
		close(probe);
	/* Debris of a crash is a socket; anything else at this path is not
	 * ours to delete (a typo in status.socket must not cost a file). */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return errmsg_set(errmsg, TG_EINVAL,
			                  "status.socket %s: the path exists and is not a socket; not removing it", path);
		unlink(path);
	}

	s = calloc(1, sizeof(*s));
	if (!s)
		return TG_ENOMEM;
	s->d = d;
	snprintf(s->path, sizeof(s->path), "%s", path);
	s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	/* errno is read at once: close() and unlink() below may change it. */
	if (s->fd < 0 || pipe2(s->wake, O_CLOEXEC) != 0) {
		err = errno;
		goto err_free;
	}
	if (bind(s->fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
		err = errno;
		goto err_close;
	}
	if (lstat(path, &st) == 0) {
		s->dev = st.st_dev;
		s->ino = st.st_ino;
	}
	if (chmod(path, 0660) != 0 || listen(s->fd, 16) != 0) {
		err = errno;
		goto err_unlink;
	}
	/* pthread_create() returns its error; it does not set errno. */
	if ((err = pthread_create(&s->thread, NULL, serve, s)) != 0)
		goto err_unlink;
	*out = s;
	return 0;

err_unlink:
	unlink(path);
err_close:
	errmsg_set(errmsg, 0, "status.socket %s: %s", path, strerror(err));
	close(s->fd);
	close(s->wake[0]);
	close(s->wake[1]);
	free(s);
	return TG_EIO;
err_free:
	errmsg_set(errmsg, 0, "status.socket %s: %s", path, strerror(err));
	if (s->fd >= 0)
		close(s->fd);
	free(s);
	return TG_EIO;
}

void status_server_stop(struct status_server *s)
{
	if (!s)
		return;
	write_all(s->wake[1], "x", 1);
	pthread_join(s->thread, NULL);
	close(s->fd);
	close(s->wake[0]);
	close(s->wake[1]);
	/* Only the socket this server made: another daemon may have taken the
	 * path over since. */
	{
		struct stat st;
		if (lstat(s->path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == s->dev && st.st_ino == s->ino)
			unlink(s->path);
	}
	free(s);
}
