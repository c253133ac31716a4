/*
 * auth.c - the token of web.token_file: who may see the page when it is
 * not on loopback only.
 *
 * A browser sends the token once, in the login form; the answer sets it as
 * an HttpOnly, SameSite=Strict cookie. Scripts send "Authorization: Bearer
 * TOKEN". The comparison takes the same time wherever the strings differ.
 */
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

#include "util/errmsg.h"
#include "util/secret.h"
#include "web/assets.h"
#include "web/priv.h"

#define COOKIE_NAME "tollgate_token"
/* A token shorter than this could be guessed at our request rate. */
#define TOKEN_MIN 16
#define LOGIN_BODY_MAX 2048

int web_auth_load(struct web_server *w, const char *token_file, char **errmsg)
{
	static const struct secret_kind kind = {.file = "token file", .value = "web token"};
	char *err = NULL;
	int rc = secret_file_read(token_file, &kind, &w->token, &err);

	if (rc) {
		errmsg_set(errmsg, rc == TG_EIO ? TG_EIO : TG_EINVAL, "web.token_file %s", err ? err : token_file);
		free(err);
		return rc == TG_EIO ? TG_EIO : TG_EINVAL;
	}
	/* The token goes into a cookie: only characters a cookie value may
	 * hold unquoted (base64 and hex tokens pass). */
	if (strlen(w->token) < TOKEN_MIN ||
	    strspn(w->token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/=") !=
	        strlen(w->token)) {
		secret_free(w->token);
		w->token = NULL;
		return errmsg_set(errmsg, TG_EINVAL,
		                  "web.token_file %s: the token must be at least %d characters of A-Z a-z 0-9 - . _ ~ + / = "
		                  "(e.g. head -c 32 /dev/urandom | base64)",
		                  token_file, TOKEN_MIN);
	}
	return 0;
}

bool web_auth_ok(const struct web_server *w, struct MHD_Connection *conn)
{
	const char *auth, *cookie;

	if (!w->token)
		return true;
	auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	if (auth && strncmp(auth, "Bearer ", 7) == 0 && secret_equal(auth + 7, w->token))
		return true;
	cookie = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, COOKIE_NAME);
	return cookie && secret_equal(cookie, w->token);
}

/* The value of field name in an application/x-www-form-urlencoded body,
 * decoded, in out (NUL-terminated); false when absent or too long. */
static bool form_field(const char *body, size_t len, const char *name, char *out, size_t outlen)
{
	size_t nlen = strlen(name);

	for (size_t i = 0; i < len;) {
		size_t end = i;
		while (end < len && body[end] != '&')
			end++;
		if (end - i > nlen && strncmp(body + i, name, nlen) == 0 && body[i + nlen] == '=') {
			size_t vlen = end - i - nlen - 1;
			if (vlen >= outlen)
				return false;
			memcpy(out, body + i + nlen + 1, vlen);
			out[vlen] = '\0';
			for (char *c = out; *c; c++)
				if (*c == '+')
					*c = ' ';
			MHD_http_unescape(out);
			return true;
		}
		i = end + 1;
	}
	return false;
}

void web_auth_login(struct web_server *w, const char *body, size_t len, struct web_reply *r)
{
	char given[LOGIN_BODY_MAX + 1];

	if (!w->token) {
		/* Nothing to log in to: the page is open on loopback. */
		web_reply_text(r, MHD_HTTP_SEE_OTHER, "text/plain; charset=utf-8", "no token needed\n");
		r->location = "/";
		return;
	}
	if (!form_field(body, len, "token", given, sizeof(given)) || !secret_equal(given, w->token)) {
		explicit_bzero(given, sizeof(given));
		web_auth_refuse("/login", true, r);
		return;
	}
	explicit_bzero(given, sizeof(given));
	r->status = MHD_HTTP_SEE_OTHER;
	r->content_type = "text/plain; charset=utf-8";
	r->body = str_printf(COOKIE_NAME "=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=2592000", w->token);
	/* The cookie line is the header; the body just says where to go. */
	r->set_cookie = r->body;
	r->body = strdup("signed in: go to /\n");
	r->len = r->body ? strlen(r->body) : 0;
	r->must_free = true;
	r->location = "/";
}

void web_auth_refuse(const char *url, bool failed_login, struct web_reply *r)
{
	const struct web_asset *login = web_asset_find("/login");

	if (strncmp(url, "/api/", 5) == 0 || strcmp(url, "/deals.csv") == 0 || strcmp(url, "/healthz") == 0 ||
	    !login) {
		web_reply_error(r, MHD_HTTP_UNAUTHORIZED, "this page needs the token of web.token_file: sign in at /login "
		                                          "or send Authorization: Bearer TOKEN");
		return;
	}
	/* Pages answer with the login form itself, still as a 401. */
	web_reply_text(r, MHD_HTTP_UNAUTHORIZED, login->content_type, (const char *)login->data);
	r->len = login->len;
	if (failed_login) {
		/* The same page with its "wrong token" line shown: the marker's
		 * " hidden" attribute is left out. */
		static const char marker[] = "<p id=\"login-failed\" hidden>";
		const char *page = (const char *)login->data, *at = strstr(page, marker);
		if (at) {
			size_t keep = (size_t)(at - page) + strlen(marker) - strlen(" hidden>");
			char *shown = str_printf("%.*s>%s", (int)keep, page, at + strlen(marker));
			if (shown)
				web_reply_owned(r, MHD_HTTP_UNAUTHORIZED, login->content_type, shown, strlen(shown));
		}
	}
}
