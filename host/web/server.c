/*
 * server.c - the web page's HTTP server (see web.h): libmicrohttpd on one
 * thread, routing, the security headers every answer carries, and the
 * limits on requests.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/daemon.h"
#include "observe/log.h"
#include "storage/export.h"
#include "storage/storage.h"
#include "util/clock.h"
#include "util/dynbuf.h"
#include "util/errmsg.h"
#include "util/secret.h"
#include "web/assets.h"
#include "web/params.h"
#include "web/priv.h"
#include "web/web.h"

#define URL_MAX 2048
#define BODY_MAX 2048
#define CONNECTIONS_MAX 64
#define CONNECTIONS_PER_CLIENT 16
#define CONNECTION_MEMORY (64 * 1024) /* headers past this are refused by libmicrohttpd */
#define CONNECTION_TIMEOUT_S 10

/* No inline script or style, nothing from another origin, no framing, and
 * forms post only here: a title that slipped into markup still could not
 * run. */
static const char csp[] = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                          "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const struct web_asset *web_asset_find(const char *url)
{
	for (const struct web_asset *a = web_assets; a->path; a++)
		if (strcmp(a->path, url) == 0)
			return a;
	return NULL;
}

void web_reply_text(struct web_reply *r, unsigned status, const char *content_type, const char *text)
{
	*r = (struct web_reply){.status = status, .content_type = content_type, .body = (char *)text,
	                        .len = strlen(text)};
}

void web_reply_owned(struct web_reply *r, unsigned status, const char *content_type, char *body, size_t len)
{
	const char *cookie = r->set_cookie;

	*r = (struct web_reply){.status = status, .content_type = content_type, .body = body, .len = len,
	                        .must_free = true, .no_store = true, .set_cookie = cookie};
}

void web_reply_error(struct web_reply *r, unsigned status, const char *message)
{
	struct dynbuf b = DYNBUF_INIT(64 * 1024);
	size_t len;
	char *body;

	dynbuf_addstr(&b, "{\"error\":");
	export_json_string(&b, message);
	dynbuf_addstr(&b, "}\n");
	len = dynbuf_len(&b);
	body = dynbuf_take(&b);
	if (!body) {
		web_reply_text(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "application/json", "{\"error\":\"out of memory\"}\n");
		return;
	}
	web_reply_owned(r, status, "application/json; charset=utf-8", body, len);
}

static enum MHD_Result queue(struct MHD_Connection *conn, struct web_reply *r)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(r->len, r->body,
	                                       r->must_free ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	if (!resp) {
		if (r->must_free)
			free(r->body);
		free((char *)r->set_cookie);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
	MHD_add_response_header(resp, "Content-Security-Policy", csp);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	/* Links to Amazon and Keepa must not tell them where they came from. */
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(resp, "Cache-Control", r->no_store ? "no-store" : "no-cache");
	if (r->disposition)
		MHD_add_response_header(resp, "Content-Disposition", r->disposition);
	if (r->location)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, r->location);
	if (r->set_cookie) {
		MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, r->set_cookie);
		secret_free((char *)r->set_cookie);
	}
	if (r->status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"tollgate\"");
	if (r->status == MHD_HTTP_TOO_MANY_REQUESTS)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
	if (r->status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	ret = MHD_queue_response(conn, r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* The client's address as 16 bytes (IPv4 mapped into IPv6). */
static void client_addr(struct MHD_Connection *conn, unsigned char out[16])
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

	memset(out, 0, 16);
	if (!ci || !ci->client_addr)
		return;
	if (ci->client_addr->sa_family == AF_INET) {
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &((const struct sockaddr_in *)ci->client_addr)->sin_addr, 4);
	} else if (ci->client_addr->sa_family == AF_INET6) {
		memcpy(out, &((const struct sockaddr_in6 *)ci->client_addr)->sin6_addr, 16);
	}
}

/* What a request carries between libmicrohttpd's calls: its body (POST
 * /login only), bounded. */
struct request {
	char body[BODY_MAX];
	size_t len;
	bool too_big;
};

static void route(struct web_server *w, struct MHD_Connection *conn, const char *url, const char *method,
                  struct request *req, struct web_reply *r)
{
	bool post = strcmp(method, "POST") == 0;
	bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
	const struct web_asset *asset;

	if (strlen(url) > URL_MAX) {
		web_reply_error(r, MHD_HTTP_URI_TOO_LONG, "the address is too long");
		return;
	}
	if (post && strcmp(url, "/login") == 0) {
		if (req->too_big)
			web_reply_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "the form is too large");
		else
			web_auth_login(w, req->body, req->len, r);
		return;
	}
	if (!get) {
		web_reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "the page is read-only: GET or HEAD");
		return;
	}
	/* The login form (and the stylesheet it uses) is all a stranger sees. */
	if (strcmp(url, "/login") != 0 && strcmp(url, "/style.css") != 0 && !web_auth_ok(w, conn)) {
		web_auth_refuse(url, false, r);
		return;
	}
	if (strcmp(url, "/api/deals") == 0) {
		web_api_deals(w, conn, false, r);
	} else if (strcmp(url, "/deals.csv") == 0) {
		web_api_deals(w, conn, true, r);
	} else if (strcmp(url, "/api/status") == 0) {
		web_api_status(w, r);
	} else if (strcmp(url, "/healthz") == 0) {
		web_reply_text(r, MHD_HTTP_OK, "text/plain; charset=utf-8", "ok\n");
		r->no_store = true;
	} else if ((asset = web_asset_find(url)) != NULL) {
		web_reply_text(r, MHD_HTTP_OK, asset->content_type, (const char *)asset->data);
		r->len = asset->len;
	} else {
		/* Only the embedded files exist: no directory, no file system. */
		web_reply_error(r, MHD_HTTP_NOT_FOUND, "no such page: try / or /status");
	}
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	struct web_server *w = cls;
	struct request *req = *con_cls;
	struct web_reply r = {0};
	unsigned char addr[16];
	(void)version;

	if (!req) {
		/* First call: headers only. The rate limit is taken here, once
		 * per request. */
		client_addr(conn, addr);
		if (!ratelimit_take(&w->limit, addr, tg_mono_ms())) {
			web_reply_error(&r, MHD_HTTP_TOO_MANY_REQUESTS, "too many requests: slow down");
			return queue(conn, &r);
		}
		req = calloc(1, sizeof(*req));
		if (!req)
			return MHD_NO;
		*con_cls = req;
		return MHD_YES;
	}
	if (*upload_size) {
		if (strcmp(method, "POST") != 0 || req->len + *upload_size > sizeof(req->body) - 1)
			req->too_big = true;
		else
			memcpy(req->body + req->len, upload, *upload_size);
		if (!req->too_big)
			req->len += *upload_size;
		*upload_size = 0;
		return MHD_YES;
	}
	route(w, conn, url, method, req, &r);
	return queue(conn, &r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	(void)toe;
	if (*con_cls) {
		explicit_bzero(*con_cls, sizeof(struct request)); /* it may hold a token */
		free(*con_cls);
	}
	*con_cls = NULL;
}

int web_parse_listen(const char *listen, struct sockaddr_in *sa)
{
	size_t len = strlen(listen);
	char buf[64];

	if (len >= 2 && strcmp(listen + len - 2, ":0") == 0 && len < sizeof(buf)) {
		snprintf(buf, sizeof(buf), "%.*s:1", (int)(len - 2), listen);
		if (config_parse_listen(buf, sa) != 0)
			return TG_EINVAL;
		sa->sin_port = 0;
		return 0;
	}
	return config_parse_listen(listen, sa);
}

/* The sortable columns are read from indexes; made once, kept. */
static void make_indexes(struct web_server *w)
{
	const struct storage_table *t;
	char *err = NULL;

	if (storage_table_get(w->db, "deals", &t, NULL) != 0)
		return;
	for (const char *const *c = web_sort_columns; *c; c++) {
		if (storage_index(w->db, "deals", *c, &err) != 0)
			log_warn(NULL, "web: no index on deals.%s (sorting by it scans the table): %s", *c,
			         err ? err : "?");
		free(err);
		err = NULL;
	}
}

int web_server_start(struct daemon *d, struct web_server **out, char **errmsg)
{
	const struct config *cf = d->config;
	struct web_server *w;
	struct sockaddr_in sa;
	const union MHD_DaemonInfo *info;
	bool loopback;
	int rc;

	*out = NULL;
	if (!cf->web_listen || !cf->web_listen[0])
		return 0;
	if (web_parse_listen(cf->web_listen, &sa) != 0)
		return errmsg_set(errmsg, TG_EINVAL, "web.listen \"%s\" must be [IPv4]:port", cf->web_listen);
	loopback = (ntohl(sa.sin_addr.s_addr) >> 24) == 127;
	if (!loopback && !cf->web_token_file)
		return errmsg_set(errmsg, TG_EINVAL, "web.listen %s is not loopback: web.token_file is required",
		                  cf->web_listen);
	w = calloc(1, sizeof(*w));
	if (!w)
		return errmsg_set(errmsg, TG_ENOMEM, "out of memory");
	w->d = d;
	ratelimit_init(&w->limit, cf->web_requests_per_s, 2.0 * cf->web_requests_per_s);
	if (cf->web_token_file && (rc = web_auth_load(w, cf->web_token_file, errmsg)))
		goto fail;
	if ((rc = storage_connect(d->storage, &w->db, errmsg)))
		goto fail;
	make_indexes(w);
	w->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, ntohs(sa.sin_port), NULL, NULL,
	                          on_request, w, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
	                          w, MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTIONS_MAX,
	                          MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)CONNECTIONS_PER_CLIENT,
	                          MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
	                          MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONNECTION_TIMEOUT_S, MHD_OPTION_END);
	if (!w->mhd) {
		rc = errmsg_set(errmsg, TG_EIO, "web.listen %s: cannot listen there", cf->web_listen);
		goto fail;
	}
	info = MHD_get_daemon_info(w->mhd, MHD_DAEMON_INFO_BIND_PORT);
	w->port = info ? info->port : ntohs(sa.sin_port);
	log_info(NULL, "web page on http://%s:%u/%s", inet_ntoa(sa.sin_addr), (unsigned)w->port,
	         w->token ? " (token required)" : "");
	*out = w;
	return 0;
fail:
	storage_conn_free(w->db);
	secret_free(w->token);
	free(w);
	return rc;
}

int web_check(const struct config *cf, char **errmsg)
{
	struct web_server w = {0};
	int rc;

	if (!cf->web_listen || !cf->web_listen[0] || !cf->web_token_file)
		return 0;
	rc = web_auth_load(&w, cf->web_token_file, errmsg);
	secret_free(w.token);
	return rc ? TG_EINVAL : 0;
}

uint16_t web_server_port(const struct web_server *w)
{
	return w ? w->port : 0;
}

void web_server_stop(struct web_server *w)
{
	if (!w)
		return;
	MHD_stop_daemon(w->mhd);
	storage_conn_free(w->db);
	secret_free(w->token);
	free(w);
}
