/*
 * proto.h - the messages between the host and a task's worker process.
 *
 * The whole protocol is described in host/worker/PROTOCOL.md. In short: a
 * stream socket (socketpair) carries frames, each a 4-byte big-endian length
 * followed by that many bytes of one JSON object whose "t" member names the
 * message. The first message each way carries the protocol version ("v");
 * a peer of another version is refused.
 *
 * Trust runs one way. The host trusts nothing a worker sends: every frame is
 * bounded (PROTO_WORKER_FRAME_MAX), every message is checked against its
 * type's fields by proto_check_from_worker() before anything reads it, and a
 * worker that fails the check is killed and reported. The worker trusts the
 * host (it is the host's own binary, started by it).
 */
#ifndef TG_WORKER_PROTO_H
#define TG_WORKER_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cJSON;

#define PROTO_VERSION 1

/* Largest frame the host accepts from a worker: requests and logs are small;
 * a Keepa request body (a /deal selection) is a few kilobytes. */
#define PROTO_WORKER_FRAME_MAX (1u << 20)
/* Largest frame a worker accepts from the host: Keepa answers are capped by
 * keepa.max_response_bytes (at most 4 GiB), the JSON around them is small. */
#define PROTO_HOST_FRAME_MAX 0xffffffffu

/* Longest log line and string field a worker may send. */
#define PROTO_TEXT_MAX 8192
/* Most parameters of one Keepa request. */
#define PROTO_PARAMS_MAX 64

/* What a worker may send. */
enum proto_type {
	PROTO_HELLO,     /* {v, pid}: first message, before the plugin is loaded */
	PROTO_DESC,      /* {ok, error | path, plugin{...}}: the loaded plugin's descriptor */
	PROTO_INIT_DONE, /* {rc, error}: init() returned */
	PROTO_RUN_DONE,  /* {rc, idle_s, error}: run() returned */
	PROTO_LOG,       /* {level, msg} */
	PROTO_PROGRESS,  /* {done, total, unit} */
	PROTO_STATE,     /* {state, until_ms, lock} */
	PROTO_KEEPA,     /* {kind, units, path, params[[name, value]...], body}: wants a KEEPA_REPLY */
	PROTO_BUDGET,    /* {}: wants a BUDGET_REPLY */
	PROTO_NTYPES
};

const char *proto_type_name(enum proto_type type);

/* Incremental reader of frames from a non-blocking descriptor. */
struct proto_reader {
	unsigned char *buf;
	size_t len, cap;
	uint32_t max; /* largest frame accepted */
	/* proto_recv(): when wait_ms is set, it says before each wait how
	 * long to wait (ms; -1 for as long as it takes), and is called again
	 * with timed_out when that passed without a byte from the peer. */
	int (*wait_ms)(void *arg, bool timed_out);
	void *wait_arg;
};

void proto_reader_init(struct proto_reader *r, uint32_t max);
void proto_reader_release(struct proto_reader *r);

/* Append n bytes (as read from the socket). TG_ENOMEM when they cannot be
 * kept. */
int proto_reader_feed(struct proto_reader *r, const void *data, size_t n);
/* The next complete frame: 1 and a new JSON object in *msg; 0 when more
 * bytes are needed; TG_EINVAL with a reason in *why (a static string) for a
 * frame over the maximum, an empty frame, or a body that is not one JSON
 * object. */
int proto_reader_next(struct proto_reader *r, struct cJSON **msg, const char **why);

/* The next complete frame as bytes, not parsed: 1 and a malloc()ed copy in
 * *data (*len bytes); 0 when more bytes are needed; TG_EINVAL (*why). */
int proto_reader_next_raw(struct proto_reader *r, char **data, size_t *len, const char **why);

/* Write msg as one frame, all of it (blocking; EINTR retried; never
 * SIGPIPE). 0, or TG_EIO when the peer is gone. */
int proto_send(int fd, const struct cJSON *msg);
/* Write bytes that are already one JSON object's text as one frame (a Keepa
 * answer the host parsed, forwarded as it came). */
int proto_send_raw(int fd, const void *data, size_t n);
/* Write up to 4 such frames back to back, in one system call when the
 * socket has room. */
struct proto_bytes {
	const void *data;
	size_t len;
};
int proto_send_frames(int fd, const struct proto_bytes *frames, int n);
/* Read one whole frame (blocking): 1 and *msg, 0 at end of file, < 0 on an
 * error or garbage (*why). */
int proto_recv(int fd, struct proto_reader *r, struct cJSON **msg, const char **why);

/* proto_recv(), for a frame taken as bytes (proto_reader_next_raw). */
int proto_recv_raw(int fd, struct proto_reader *r, char **data, size_t *len, const char **why);

/* Check a message from a worker: its type, and every field that type
 * carries with the right JSON type and within bounds. Returns the type, or
 * TG_EINVAL with a reason in why (len bytes). The host reads no message
 * this did not pass. */
int proto_check_from_worker(const struct cJSON *msg, char *why, size_t len);

/* Field readers for checked messages (no checks of their own). */
const char *proto_str(const struct cJSON *msg, const char *key);
int64_t proto_int(const struct cJSON *msg, const char *key);

#endif
