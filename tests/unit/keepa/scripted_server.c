/*
 * scripted_server.c - see scripted_server.h.
 */
#include "scripted_server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#define SS_MAX_QUEUE 64
#define SS_MAX_REQUESTS 256

struct ss {
	struct MHD_Daemon *daemon;
	char url[64];
	pthread_mutex_t lock;
	struct ss_answer queue[SS_MAX_QUEUE];
	int qhead, qlen;
	struct ss_answer def, token;
	struct ss_request reqs[SS_MAX_REQUESTS];
	int nreqs, ntoken;
	atomic_int hanging;
	atomic_bool closing;
};

/* Per-request state kept across the access handler's calls. */
struct pending {
	char *body;
	size_t len;
};

/* A truncated answer: half the bytes, then an error that closes the socket. */
struct partial {
	char *data;
	size_t len, sent;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *build_body(const struct ss_answer *a, size_t *len)
{
	char *out = NULL, *pad = NULL;
	size_t size = 0;
	FILE *f;

	if (a->body) {
		*len = strlen(a->body);
		out = malloc(*len + 1);
		memcpy(out, a->body, *len + 1);
		return out;
	}
	f = open_memstream(&out, &size);
	if (a->zero_envelope)
		fprintf(f,
		        "{\"timestamp\":%lld,\"tokensLeft\":0,\"refillIn\":0,\"refillRate\":0,"
		        "\"tokenFlowReduction\":0.0,\"tokensConsumed\":0,\"processingTimeInMs\":0",
		        (long long)now_ms());
	else
		fprintf(f,
		        "{\"timestamp\":%lld,\"tokensLeft\":%lld,\"refillIn\":%lld,\"refillRate\":%lld,"
		        "\"tokenFlowReduction\":0.0,\"tokensConsumed\":%lld,\"processingTimeInMs\":3",
		        (long long)now_ms(), (long long)a->tokens_left, (long long)a->refill_in,
		        (long long)a->refill_rate, (long long)a->consumed);
	if (a->error_json)
		fprintf(f, ",\"error\":%s", a->error_json);
	if (a->payload)
		fprintf(f, ",%s", a->payload);
	if (a->pad) {
		pad = malloc(a->pad + 1);
		memset(pad, 'a', a->pad);
		pad[a->pad] = '\0';
		fprintf(f, ",\"pad\":\"%s\"", pad);
		free(pad);
	}
	fputc('}', f);
	fclose(f);
	*len = size;
	return out;
}

static char *gzip_body(const char *in, size_t len, size_t *outlen)
{
	z_stream zs;
	size_t cap = compressBound(len) + 64;
	char *out = malloc(cap);

	memset(&zs, 0, sizeof(zs));
	deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)len;
	zs.next_out = (Bytef *)out;
	zs.avail_out = (uInt)cap;
	deflate(&zs, Z_FINISH);
	*outlen = zs.total_out;
	deflateEnd(&zs);
	return out;
}

static ssize_t partial_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct partial *p = cls;
	size_t half = p->len / 2, n;

	(void)pos;
	if (p->sent >= half)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	n = half - p->sent < max ? half - p->sent : max;
	memcpy(buf, p->data + p->sent, n);
	p->sent += n;
	return (ssize_t)n;
}

static void partial_free(void *cls)
{
	struct partial *p = cls;

	free(p->data);
	free(p);
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	FILE *f = cls;

	(void)kind;
	fprintf(f, "%s%s=%s", ftell(f) ? "&" : "", key, value ? value : "");
	return MHD_YES;
}

static void record(struct ss *s, struct MHD_Connection *conn, const char *url, const char *method,
                   struct pending *p)
{
	const union MHD_ConnectionInfo *ci;
	struct ss_request *r;
	char *query = NULL;
	size_t qsize = 0;
	FILE *f;

	if (s->nreqs >= SS_MAX_REQUESTS)
		return;
	r = &s->reqs[s->nreqs++];
	snprintf(r->method, sizeof(r->method), "%s", method);
	snprintf(r->path, sizeof(r->path), "%s", url);
	f = open_memstream(&query, &qsize);
	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_arg, f);
	fclose(f);
	r->query = query;
	r->content_type = dup_or_null(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type"));
	r->accept_encoding =
	    dup_or_null(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept-Encoding"));
	r->user_agent = dup_or_null(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "User-Agent"));
	r->body = strdup(p->body ? p->body : "");
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET)
		r->client_port = ntohs(((const struct sockaddr_in *)ci->client_addr)->sin_port);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
	struct ss *s = cls;
	struct pending *p = *con_cls;
	struct ss_answer a;
	struct MHD_Response *resp;
	char *body;
	size_t len;
	enum MHD_Result ret;
	bool is_token;

	(void)version;
	if (!p) {
		p = calloc(1, sizeof(*p));
		*con_cls = p;
		return MHD_YES;
	}
	if (*upload_data_size) {
		p->body = realloc(p->body, p->len + *upload_data_size + 1);
		memcpy(p->body + p->len, upload_data, *upload_data_size);
		p->len += *upload_data_size;
		p->body[p->len] = '\0';
		*upload_data_size = 0;
		return MHD_YES;
	}

	is_token = strcmp(url, "/token") == 0;
	pthread_mutex_lock(&s->lock);
	if (is_token) {
		s->ntoken++;
		a = s->token;
	} else {
		record(s, conn, url, method, p);
		if (s->qlen) {
			a = s->queue[s->qhead];
			s->qhead = (s->qhead + 1) % SS_MAX_QUEUE;
			s->qlen--;
		} else {
			a = s->def;
		}
	}
	pthread_mutex_unlock(&s->lock);

	if (a.hang_ms > 0) {
		int64_t end = now_ms() + a.hang_ms;
		atomic_fetch_add(&s->hanging, 1);
		while (now_ms() < end && !atomic_load(&s->closing)) {
			struct timespec ts = {0, 10 * 1000000L};
			nanosleep(&ts, NULL);
		}
		atomic_fetch_sub(&s->hanging, 1);
	}

	body = build_body(&a, &len);
	if (a.gzip) {
		size_t zlen;
		char *z = gzip_body(body, len, &zlen);
		free(body);
		body = z;
		len = a.gzip_cut ? zlen / 2 : zlen;
	}
	if (a.truncate) {
		struct partial *part = calloc(1, sizeof(*part));
		part->data = body;
		part->len = len;
		resp = MHD_create_response_from_callback(len, 4096, partial_read, part, partial_free);
	} else {
		resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	}
	MHD_add_response_header(resp, "Content-Type", "application/json;charset=utf-8");
	if (a.gzip)
		MHD_add_response_header(resp, "Content-Encoding", "gzip");
	ret = MHD_queue_response(conn, (unsigned)a.status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct pending *p = *con_cls;

	(void)cls, (void)conn, (void)toe;
	if (p) {
		free(p->body);
		free(p);
	}
	*con_cls = NULL;
}

struct ss *ss_new(void)
{
	struct ss *s = calloc(1, sizeof(*s));
	struct sockaddr_in sa;
	const union MHD_DaemonInfo *info;

	pthread_mutex_init(&s->lock, NULL);
	s->def = (struct ss_answer){.status = 500, .body = "no answer scripted"};
	s->token =
	    (struct ss_answer){.status = 200, .tokens_left = 100, .refill_in = 30000, .refill_rate = 20};
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = 0;
	s->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL,
	                             NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
	                             MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_END);
	if (!s->daemon) {
		free(s);
		return NULL;
	}
	info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
	snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%u", (unsigned)info->port);
	return s;
}

void ss_free(struct ss *s)
{
	if (!s)
		return;
	atomic_store(&s->closing, true);
	MHD_stop_daemon(s->daemon);
	for (int i = 0; i < s->nreqs; i++) {
		free(s->reqs[i].query);
		free(s->reqs[i].content_type);
		free(s->reqs[i].accept_encoding);
		free(s->reqs[i].user_agent);
		free(s->reqs[i].body);
	}
	pthread_mutex_destroy(&s->lock);
	free(s);
}

const char *ss_url(struct ss *s)
{
	return s->url;
}

void ss_push(struct ss *s, const struct ss_answer *a)
{
	pthread_mutex_lock(&s->lock);
	if (s->qlen < SS_MAX_QUEUE) {
		s->queue[(s->qhead + s->qlen) % SS_MAX_QUEUE] = *a;
		s->qlen++;
	}
	pthread_mutex_unlock(&s->lock);
}

void ss_set_default(struct ss *s, const struct ss_answer *a)
{
	pthread_mutex_lock(&s->lock);
	s->def = *a;
	pthread_mutex_unlock(&s->lock);
}

void ss_set_token(struct ss *s, const struct ss_answer *a)
{
	pthread_mutex_lock(&s->lock);
	s->token = *a;
	pthread_mutex_unlock(&s->lock);
}

int ss_count(struct ss *s)
{
	int n;

	pthread_mutex_lock(&s->lock);
	n = s->nreqs;
	pthread_mutex_unlock(&s->lock);
	return n;
}

int ss_token_count(struct ss *s)
{
	int n;

	pthread_mutex_lock(&s->lock);
	n = s->ntoken;
	pthread_mutex_unlock(&s->lock);
	return n;
}

const struct ss_request *ss_request(struct ss *s, int i)
{
	const struct ss_request *r = NULL;

	pthread_mutex_lock(&s->lock);
	if (i >= 0 && i < s->nreqs)
		r = &s->reqs[i];
	pthread_mutex_unlock(&s->lock);
	return r;
}

bool ss_hanging(struct ss *s)
{
	return atomic_load(&s->hanging) > 0;
}
