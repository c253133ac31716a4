/*
 * web/priv.h - what the web server's files share (not for other code).
 */
#ifndef TG_HOST_WEB_PRIV_H
#define TG_HOST_WEB_PRIV_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "web/ratelimit.h"

struct daemon;
struct storage_conn;

/* A remembered count of matching rows (api.c). */
#define WEB_TOTALS 8
#define TOTAL_KEY_MAX 512
struct total_memo {
	char key[TOTAL_KEY_MAX];
	int64_t total, at_ms; /* at_ms 0: unused */
};

struct web_server {
	struct daemon *d;
	struct MHD_Daemon *mhd;
	struct storage_conn *db; /* used by the server thread only */
	char *token;             /* NULL: no token needed (loopback, none configured) */
	struct ratelimit limit;
	uint16_t port;
	struct total_memo totals[WEB_TOTALS]; /* the server thread's own */
};

/* A response to queue: the body is copied by libmicrohttpd or owned
 * (must_free) and freed by it. */
struct web_reply {
	unsigned status;
	const char *content_type;
	char *body;
	size_t len;
	bool must_free;
	const char *disposition;  /* Content-Disposition, or NULL */
	const char *set_cookie;   /* Set-Cookie, or NULL */
	const char *location;     /* Location (redirects), or NULL */
	bool no_store;            /* Cache-Control: no-store (data, not assets) */
};

/* A reply with a body that the caller allocated (must_free) or a constant. */
void web_reply_text(struct web_reply *r, unsigned status, const char *content_type, const char *text);
void web_reply_owned(struct web_reply *r, unsigned status, const char *content_type, char *body, size_t len);
/* {"error": message} with status. */
void web_reply_error(struct web_reply *r, unsigned status, const char *message);

/* api.c: GET /api/deals, /deals.csv, /api/status, /healthz. */
void web_api_deals(struct web_server *w, struct MHD_Connection *conn, bool csv, struct web_reply *r);
void web_api_status(struct web_server *w, struct web_reply *r);

/* auth.c */
int web_auth_load(struct web_server *w, const char *token_file, char **errmsg);
/* Whether the request carries the token (bearer header or cookie). */
bool web_auth_ok(const struct web_server *w, struct MHD_Connection *conn);
/* POST /login with body "token=...": a redirect with the cookie, or 401. */
void web_auth_login(struct web_server *w, const char *body, size_t len, struct web_reply *r);
/* The reply to a request without the token: the login form for pages,
 * JSON for the API. */
void web_auth_refuse(const char *url, bool failed_login, struct web_reply *r);

/* The embedded asset at url, or NULL. */
const struct web_asset *web_asset_find(const char *url);

#endif
