/*
 * proto.c - frames and message checks of the worker protocol (proto.h,
 * PROTOCOL.md).
 */
#include "worker/proto.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <tollgate/tollgate.h>

static const char *const type_names[PROTO_NTYPES] = {
	[PROTO_HELLO] = "hello", [PROTO_DESC] = "desc",   [PROTO_INIT_DONE] = "init_done",
	[PROTO_RUN_DONE] = "run_done", [PROTO_LOG] = "log", [PROTO_PROGRESS] = "progress",
	[PROTO_STATE] = "state", [PROTO_KEEPA] = "keepa", [PROTO_BUDGET] = "budget",
};

const char *proto_type_name(enum proto_type type)
{
	return (unsigned)type < PROTO_NTYPES ? type_names[type] : "?";
}

void proto_reader_init(struct proto_reader *r, uint32_t max)
{
	memset(r, 0, sizeof(*r));
	r->max = max;
}

void proto_reader_release(struct proto_reader *r)
{
	free(r->buf);
	memset(r, 0, sizeof(*r));
}

int proto_reader_feed(struct proto_reader *r, const void *data, size_t n)
{
	if (n > r->cap - r->len) {
		size_t cap = r->cap ? r->cap : 4096;
		unsigned char *grown;
		while (cap - r->len < n)
			cap *= 2;
		grown = realloc(r->buf, cap);
		if (!grown)
			return TG_ENOMEM;
		r->buf = grown;
		r->cap = cap;
	}
	memcpy(r->buf + r->len, data, n);
	r->len += n;
	return 0;
}

/* The length of the complete frame at the front of r: > 0, 0 when more
 * bytes are needed, or TG_EINVAL. */
static int64_t frame_ready(const struct proto_reader *r, const char **why)
{
	uint32_t n;

	if (r->len < 4)
		return 0;
	n = (uint32_t)r->buf[0] << 24 | (uint32_t)r->buf[1] << 16 | (uint32_t)r->buf[2] << 8 | r->buf[3];
	/* Judged before the body arrives: a huge length is refused at once,
	 * not after the peer has made us buffer it. */
	if (n == 0) {
		*why = "an empty frame";
		return TG_EINVAL;
	}
	if (n > r->max) {
		*why = "a frame longer than the protocol allows";
		return TG_EINVAL;
	}
	return r->len - 4 < n ? 0 : (int64_t)n;
}

static void consume(struct proto_reader *r, size_t n)
{
	memmove(r->buf, r->buf + 4 + n, r->len - 4 - n);
	r->len -= 4 + n;
}

int proto_reader_next(struct proto_reader *r, cJSON **msg, const char **why)
{
	int64_t n = frame_ready(r, why);

	*msg = NULL;
	if (n <= 0)
		return (int)n;
	*msg = cJSON_ParseWithLength((const char *)r->buf + 4, (size_t)n);
	consume(r, (size_t)n);
	if (!*msg || !cJSON_IsObject(*msg)) {
		cJSON_Delete(*msg);
		*msg = NULL;
		*why = "a frame that is not one JSON object";
		return TG_EINVAL;
	}
	return 1;
}

int proto_reader_next_raw(struct proto_reader *r, char **data, size_t *len, const char **why)
{
	int64_t n = frame_ready(r, why);

	*data = NULL;
	if (n <= 0)
		return (int)n;
	*data = malloc((size_t)n);
	if (!*data)
		return TG_ENOMEM;
	memcpy(*data, r->buf + 4, (size_t)n);
	*len = (size_t)n;
	consume(r, (size_t)n);
	return 1;
}

/* Send every byte of iov[0..n) (one sendmsg() in the common case, so a
 * frame's length and body, or a reply and the answer after it, cost one
 * system call). */
static int send_all(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
		ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return TG_EIO;
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

static void put_length(unsigned char head[4], size_t n)
{
	head[0] = (unsigned char)(n >> 24);
	head[1] = (unsigned char)(n >> 16);
	head[2] = (unsigned char)(n >> 8);
	head[3] = (unsigned char)n;
}

int proto_send_frames(int fd, const struct proto_bytes *frames, int n)
{
	unsigned char heads[4][4];
	struct iovec iov[8];

	if (n < 1 || n > 4)
		return TG_EINVAL;
	for (int i = 0; i < n; i++) {
		if (frames[i].len == 0 || frames[i].len > 0xffffffffu)
			return TG_EINVAL;
		put_length(heads[i], frames[i].len);
		iov[2 * i] = (struct iovec){heads[i], 4};
		iov[2 * i + 1] = (struct iovec){(void *)(uintptr_t)frames[i].data, frames[i].len};
	}
	return send_all(fd, iov, 2 * n);
}

int proto_send_raw(int fd, const void *data, size_t n)
{
	struct proto_bytes f = {data, n};
	return proto_send_frames(fd, &f, 1);
}

int proto_send(int fd, const cJSON *msg)
{
	char *text = cJSON_PrintUnformatted(msg);
	int rc;

	if (!text)
		return TG_ENOMEM;
	rc = proto_send_raw(fd, text, strlen(text));
	free(text);
	return rc;
}

/* Read into r until next() has a frame (or end of file, or an error). */
typedef int (*next_fn)(struct proto_reader *r, void *out, const char **why);

static int recv_with(int fd, struct proto_reader *r, const char **why, next_fn next, void *out)
{
	char buf[65536];
	bool timed_out = false;

	for (;;) {
		int rc = next(r, out, why), ready, timeout;
		ssize_t got;
		if (rc != 0)
			return rc;
		timeout = r->wait_ms ? r->wait_ms(r->wait_arg, timed_out) : -1;
		/* Wait in poll() for input alone: a thread asleep in read() on a
		 * Unix stream socket is also woken each time the peer reads what
		 * this end wrote (the space it frees is announced on the same
		 * wait queue), once per message for nothing - and the peer, the
		 * host, pays for that wake-up. poll()'s wake-ups are keyed. */
		ready = poll(&(struct pollfd){.fd = fd, .events = POLLIN}, 1, timeout);
		if (ready < 0 && errno != EINTR) {
			*why = "the socket failed";
			return TG_EIO;
		}
		timed_out = ready == 0;
		if (ready <= 0)
			continue;
		got = read(fd, buf, sizeof(buf));
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			*why = "the socket failed";
			return TG_EIO;
		}
		if (got == 0)
			return 0;
		if (proto_reader_feed(r, buf, (size_t)got))
			return TG_ENOMEM;
	}
}

static int next_parsed(struct proto_reader *r, void *out, const char **why)
{
	return proto_reader_next(r, out, why);
}

struct raw_out {
	char **data;
	size_t *len;
};

static int next_raw(struct proto_reader *r, void *out, const char **why)
{
	struct raw_out *o = out;
	return proto_reader_next_raw(r, o->data, o->len, why);
}

int proto_recv(int fd, struct proto_reader *r, cJSON **msg, const char **why)
{
	return recv_with(fd, r, why, next_parsed, msg);
}

int proto_recv_raw(int fd, struct proto_reader *r, char **data, size_t *len, const char **why)
{
	struct raw_out o = {data, len};
	return recv_with(fd, r, why, next_raw, &o);
}

/* ------------------------------------------------------------ checks */

const char *proto_str(const cJSON *msg, const char *key)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(msg, key));
}

int64_t proto_int(const cJSON *msg, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(msg, key);
	return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

struct check {
	const cJSON *msg;
	char *why;
	size_t len;
};

static int bad(struct check *c, const char *fmt, const char *field)
{
	snprintf(c->why, c->len, fmt, field);
	return TG_EINVAL;
}

/* An integral number in [min, max] (JSON numbers are doubles: 2^53 is the
 * largest integer every value up to which is exact). */
static int want_int(struct check *c, const cJSON *o, const char *key, double min, double max, bool optional)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (!v && optional)
		return 0;
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble != floor(v->valuedouble) ||
	    v->valuedouble < min || v->valuedouble > max)
		return bad(c, "field \"%s\" is missing or not an integer in range", key);
	return 0;
}

static int want_num(struct check *c, const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || fabs(v->valuedouble) > 1e12)
		return bad(c, "field \"%s\" is missing or not a finite number", key);
	return 0;
}

/* A string of at most max bytes; optional ones may also be null. */
static int want_str(struct check *c, const cJSON *o, const char *key, size_t max, bool optional)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (optional && (!v || cJSON_IsNull(v)))
		return 0;
	if (!cJSON_IsString(v) || strlen(v->valuestring) > max)
		return bad(c, "field \"%s\" is missing, not a string or too long", key);
	return 0;
}

#define INT53 9007199254740992.0

static int check_costs(struct check *c, const cJSON *plugin)
{
	const cJSON *costs = cJSON_GetObjectItemCaseSensitive(plugin, "costs"), *e;
	int rc = 0;

	if (!cJSON_IsArray(costs) || cJSON_GetArraySize(costs) > 256)
		return bad(c, "field \"%s\" is not an array of at most 256", "costs");
	cJSON_ArrayForEach(e, costs)
	{
		if (!cJSON_IsObject(e))
			return bad(c, "an element of \"%s\" is not an object", "costs");
		if ((rc = want_str(c, e, "kind", 64, false)) || (rc = want_str(c, e, "unit", 64, true)) ||
		    (rc = want_num(c, e, "fixed")) || (rc = want_num(c, e, "per_unit")) ||
		    (rc = want_str(c, e, "description", PROTO_TEXT_MAX, true)))
			return rc;
	}
	return 0;
}

static int check_settings(struct check *c, const cJSON *plugin)
{
	const cJSON *settings = cJSON_GetObjectItemCaseSensitive(plugin, "settings"), *e;
	int rc = 0;

	if (!cJSON_IsArray(settings) || cJSON_GetArraySize(settings) > 256)
		return bad(c, "field \"%s\" is not an array of at most 256", "settings");
	cJSON_ArrayForEach(e, settings)
	{
		if (!cJSON_IsObject(e))
			return bad(c, "an element of \"%s\" is not an object", "settings");
		if ((rc = want_str(c, e, "name", 64, false)) || (rc = want_int(c, e, "type", 0, 5, false)) ||
		    (rc = want_str(c, e, "default", PROTO_TEXT_MAX, true)) ||
		    (rc = want_str(c, e, "description", PROTO_TEXT_MAX, true)))
			return rc;
	}
	return 0;
}

static int check_desc(struct check *c)
{
	const cJSON *ok = cJSON_GetObjectItemCaseSensitive(c->msg, "ok"), *plugin;
	int rc;

	if (!cJSON_IsBool(ok))
		return bad(c, "field \"%s\" is missing or not a boolean", "ok");
	if (cJSON_IsFalse(ok))
		return want_str(c, c->msg, "error", PROTO_TEXT_MAX, false);
	plugin = cJSON_GetObjectItemCaseSensitive(c->msg, "plugin");
	if ((rc = want_str(c, c->msg, "path", 4096, false)))
		return rc;
	if (!cJSON_IsObject(plugin))
		return bad(c, "field \"%s\" is missing or not an object", "plugin");
	if ((rc = want_str(c, plugin, "name", 64, false)) || (rc = want_str(c, plugin, "version", 256, false)) ||
	    (rc = want_str(c, plugin, "description", PROTO_TEXT_MAX, true)) ||
	    (rc = want_int(c, plugin, "abi_major", 0, 0xffffffffu, false)) ||
	    (rc = want_int(c, plugin, "abi_minor", 0, 0xffffffffu, false)))
		return rc;
	if ((rc = check_costs(c, plugin)))
		return rc;
	return check_settings(c, plugin);
}

static int check_state(struct check *c)
{
	static const char *const states[] = {"running", "sleeping", "waiting_for_lock", "waiting_for_storage"};
	const char *s = proto_str(c->msg, "state");
	int rc;

	if ((rc = want_str(c, c->msg, "state", 32, false)) ||
	    (rc = want_int(c, c->msg, "until_ms", -1, INT53, false)) || (rc = want_str(c, c->msg, "lock", 64, true)) ||
	    (rc = want_str(c, c->msg, "storage_error", 1024, true)) ||
	    (rc = want_int(c, c->msg, "storage_since_ms", 0, INT53, true)))
		return rc;
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
		if (strcmp(s, states[i]) == 0)
			return 0;
	return bad(c, "field \"%s\" names no state a worker may report", "state");
}

static int check_keepa(struct check *c)
{
	const cJSON *params = cJSON_GetObjectItemCaseSensitive(c->msg, "params"), *p;
	const char *path = proto_str(c->msg, "path");
	int rc;

	if ((rc = want_str(c, c->msg, "kind", 64, false)) || (rc = want_int(c, c->msg, "units", 0, 1e9, false)) ||
	    (rc = want_str(c, c->msg, "path", 256, false)) ||
	    (rc = want_str(c, c->msg, "body", PROTO_WORKER_FRAME_MAX, true)))
		return rc;
	if (path[0] != '/')
		return bad(c, "field \"%s\" does not start with /", "path");
	if (!cJSON_IsArray(params) || cJSON_GetArraySize(params) > PROTO_PARAMS_MAX)
		return bad(c, "field \"%s\" is not an array of at most 64", "params");
	cJSON_ArrayForEach(p, params)
	{
		const cJSON *name = cJSON_GetArrayItem(p, 0), *value = cJSON_GetArrayItem(p, 1);
		if (!cJSON_IsArray(p) || cJSON_GetArraySize(p) != 2 || !cJSON_IsString(name) || !cJSON_IsString(value) ||
		    strlen(name->valuestring) > 64 || strlen(value->valuestring) > PROTO_TEXT_MAX)
			return bad(c, "an element of \"%s\" is not a [name, value] pair of strings", "params");
	}
	return 0;
}

int proto_check_from_worker(const cJSON *msg, char *why, size_t len)
{
	struct check c = {.msg = msg, .why = why, .len = len};
	const char *t = proto_str(msg, "t");
	int type = -1, rc = 0;

	if (!cJSON_IsObject(msg))
		return bad(&c, "%s", "a message that is not an object");
	for (int i = 0; t && i < PROTO_NTYPES; i++)
		if (strcmp(t, type_names[i]) == 0)
			type = i;
	if (type < 0)
		return bad(&c, "%s", "a message of no known type");
	switch ((enum proto_type)type) {
	case PROTO_HELLO:
		rc = want_int(&c, msg, "v", 0, INT53, false);
		if (!rc)
			rc = want_int(&c, msg, "pid", 1, INT53, false);
		break;
	case PROTO_DESC: rc = check_desc(&c); break;
	case PROTO_INIT_DONE:
		if (!(rc = want_int(&c, msg, "rc", -1e9, 1e9, false)))
			rc = want_str(&c, msg, "error", PROTO_TEXT_MAX, true);
		break;
	case PROTO_RUN_DONE:
		if (!(rc = want_int(&c, msg, "rc", -1e9, 1e9, false)) &&
		    !(rc = want_int(&c, msg, "idle_s", -INT53, INT53, false)) &&
		    !(rc = want_int(&c, msg, "not_before_ms", 0, INT53, true)))
			rc = want_str(&c, msg, "error", PROTO_TEXT_MAX, true);
		break;
	case PROTO_LOG:
		if (!(rc = want_int(&c, msg, "level", 0, 3, false)))
			rc = want_str(&c, msg, "msg", PROTO_TEXT_MAX, false);
		break;
	case PROTO_PROGRESS:
		if (!(rc = want_int(&c, msg, "done", -INT53, INT53, false)) &&
		    !(rc = want_int(&c, msg, "total", -INT53, INT53, false)))
			rc = want_str(&c, msg, "unit", 64, true);
		break;
	case PROTO_STATE: rc = check_state(&c); break;
	case PROTO_KEEPA: rc = check_keepa(&c); break;
	case PROTO_BUDGET:
	case PROTO_NTYPES: break;
	}
	return rc ? rc : type;
}
