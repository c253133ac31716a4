/*
 * keepa/http.c - one HTTP exchange with Keepa over a kept-alive libcurl
 * handle: the endpoint rules, the URLs (with and without the key), the
 * transfer with its time-outs, size cap and stop flag.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/clock.h"
#include "keepa/priv.h"
#include "observe/log.h"

/* ---------------------------------------------------------------- endpoint */

static bool host_is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;
	char buf[64];
	size_t len = strlen(host);

	if (strcasecmp(host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	/* curl returns IPv6 hosts in brackets. */
	if (len >= 2 && host[0] == '[' && host[len - 1] == ']' && len - 2 < sizeof(buf)) {
		memcpy(buf, host + 1, len - 2);
		buf[len - 2] = '\0';
		if (inet_pton(AF_INET6, buf, &a6) == 1)
			return IN6_IS_ADDR_LOOPBACK(&a6);
	}
	return false;
}

/* Accept https anywhere and http only to loopback; no credentials, query or
 * fragment. On success *https tells which. */
int keepa_check_endpoint(const char *endpoint, bool *https, char **errmsg)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *part = NULL;
	int rc = TG_EINVAL;

	if (!u) {
		keepa_set_err(errmsg, "out of memory");
		return TG_ENOMEM;
	}
	if (curl_url_set(u, CURLUPART_URL, endpoint, 0) != CURLUE_OK) {
		keepa_set_err(errmsg, "keepa.endpoint \"%s\" is not a URL", endpoint);
		goto out_url;
	}
	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		keepa_set_err(errmsg, "keepa.endpoint \"%s\" has no scheme or host", endpoint);
		goto out_parts;
	}
	if (curl_url_get(u, CURLUPART_USER, &part, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_QUERY, &part, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_FRAGMENT, &part, 0) == CURLUE_OK) {
		keepa_set_err(errmsg, "keepa.endpoint must not carry credentials, a query or a fragment");
		goto out_parts;
	}
	if (strcasecmp(scheme, "https") == 0) {
		*https = true;
		rc = 0;
	} else if (strcasecmp(scheme, "http") == 0) {
		if (!host_is_loopback(host)) {
			keepa_set_err(errmsg,
			              "keepa.endpoint: plain http is accepted only for loopback hosts "
			              "(127.0.0.0/8, ::1, localhost), not \"%s\"; use https",
			              host);
			goto out_parts;
		}
		*https = false;
		rc = 0;
	} else {
		keepa_set_err(errmsg, "keepa.endpoint: scheme \"%s\" is not http or https", scheme);
	}
out_parts:
	curl_free(part);
	curl_free(scheme);
	curl_free(host);
out_url:
	curl_url_cleanup(u);
	return rc;
}

/* ---------------------------------------------------------------- stats */

static void stats_note_status(struct keepa *k, const struct keepa_http_result *res, size_t bytes)
{
	pthread_mutex_lock(&k->lock);
	k->stats.requests++;
	k->stats.bytes_in += bytes;
	if (res->status == 0)
		k->stats.network_errors++;
	else if (res->status == 429)
		k->stats.status_429++;
	else if (res->status >= 200 && res->status < 300)
		k->stats.status_2xx++;
	else if (res->status >= 400 && res->status < 500)
		k->stats.status_4xx++;
	else if (res->status >= 500 && res->status < 600)
		k->stats.status_5xx++;
	else
		k->stats.status_other++;
	pthread_mutex_unlock(&k->lock);
}

/* ---------------------------------------------------------------- HTTP */

void keepa_body_trim(struct keepa_body *b)
{
	/* dynbuf_free() keeps the cap: the buffer grows again on the next call. */
	if (b->buf.alloc > KEEPA_BODY_KEEP)
		dynbuf_free(&b->buf);
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct keepa_body *b = ud;
	size_t n = size * nmemb;
	int rc = dynbuf_add(&b->buf, ptr, n);

	/* Returning short makes curl abort with CURLE_WRITE_ERROR. */
	if (rc == TG_EOVERSIZE)
		b->overflow = true;
	return rc ? 0 : n;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	const struct keepa *k = ud;

	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	return keepa_stopping(k) ? 1 : 0;
}

/* Run the transfer set up on c->curl to its end, or until the stop flag
 * is raised (CURLE_ABORTED_BY_CALLBACK). */
static CURLcode perform(struct keepa_conn *c)
{
	CURLcode cc = CURLE_OK;
	CURLMcode mc;
	CURLMsg *msg;
	int running = 1, queued;
	bool done = false;

	mc = curl_multi_add_handle(c->multi, c->curl);
	if (mc != CURLM_OK) {
		snprintf(c->errbuf, sizeof(c->errbuf), "%s", curl_multi_strerror(mc));
		return CURLE_FAILED_INIT;
	}
	while (!done) {
		mc = curl_multi_perform(c->multi, &running);
		if (mc != CURLM_OK) {
			snprintf(c->errbuf, sizeof(c->errbuf), "%s", curl_multi_strerror(mc));
			cc = CURLE_FAILED_INIT;
			break;
		}
		while ((msg = curl_multi_info_read(c->multi, &queued)) != NULL) {
			if (msg->msg == CURLMSG_DONE && msg->easy_handle == c->curl) {
				cc = msg->data.result;
				done = true;
			}
		}
		if (done)
			break;
		if (!running) {
			/* Finished without a DONE message: should not happen. */
			cc = CURLE_RECV_ERROR;
			break;
		}
		if (keepa_stopping(c->k)) {
			cc = CURLE_ABORTED_BY_CALLBACK;
			break;
		}
		mc = curl_multi_poll(c->multi, NULL, 0, KEEPA_STOP_POLL_MS, NULL);
		if (mc != CURLM_OK) {
			snprintf(c->errbuf, sizeof(c->errbuf), "%s", curl_multi_strerror(mc));
			cc = CURLE_FAILED_INIT;
			break;
		}
	}
	/* Removing an unfinished transfer closes its connection; a finished
	 * one leaves it in the multi handle's pool for the next call. */
	curl_multi_remove_handle(c->multi, c->curl);
	return cc;
}

/* Append "&name=value" (URL-encoded) to f. */
static int put_param(FILE *f, CURL *curl, const char *name, const char *value)
{
	char *n = curl_easy_escape(curl, name, 0);
	char *v = curl_easy_escape(curl, value ? value : "", 0);
	int rc = 0;

	if (!n || !v)
		rc = TG_ENOMEM;
	else
		fprintf(f, "&%s=%s", n, v);
	curl_free(n);
	curl_free(v);
	return rc;
}

/* Paths are fixed strings of the plugins ("/deal"), never data: refuse
 * anything that could change the URL's meaning. */
bool keepa_path_ok(const char *path)
{
	if (!path || path[0] != '/')
		return false;
	for (const char *p = path; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '/' || *p == '_' || *p == '-' || *p == '.'))
			return false;
	return strstr(path, "..") == NULL;
}

/* Build the URL twice: for the wire, with the key, and for logs, with the
 * key masked. add_domain: append the default domain unless a param names
 * one. */
int keepa_build_urls(struct keepa_conn *c, const char *path, const struct tg_keepa_param *params,
                     size_t nparams, bool add_domain, char **url, char **shown)
{
	struct keepa *k = c->k;
	char *buf[2] = {NULL, NULL};
	size_t size[2];
	int rc = 0;

	*url = *shown = NULL;
	for (int i = 0; i < 2 && rc == 0; i++) {
		FILE *f = open_memstream(&buf[i], &size[i]);
		bool named_domain = false;

		if (!f) {
			rc = TG_ENOMEM;
			break;
		}
		fprintf(f, "%s%s?key=%s", k->endpoint, path, i == 0 ? k->key_esc : "***");
		for (size_t p = 0; p < nparams && rc == 0; p++) {
			if (!params[p].name || !*params[p].name) {
				rc = TG_EINVAL;
				break;
			}
			if (strcmp(params[p].name, "domain") == 0)
				named_domain = true;
			/* A plugin never sees the key and cannot set one. */
			if (strcmp(params[p].name, "key") == 0) {
				rc = TG_EINVAL;
				break;
			}
		}
		if (rc == 0 && add_domain && !named_domain)
			fprintf(f, "&domain=%d", k->domain);
		for (size_t p = 0; p < nparams && rc == 0; p++)
			rc = put_param(f, c->curl, params[p].name, params[p].value);
		if (fclose(f) != 0 && rc == 0)
			rc = TG_ENOMEM;
	}
	if (rc < 0) {
		if (buf[0])
			explicit_bzero(buf[0], strlen(buf[0]));
		free(buf[0]);
		free(buf[1]);
		return rc;
	}
	*url = buf[0];
	*shown = buf[1];
	return 0;
}

void keepa_free_url(char *url)
{
	if (url)
		explicit_bzero(url, strlen(url));
	free(url);
}

/* libcurl resends a request by itself when a reused connection closes
 * before any answer (it cannot tell a server that timed the idle connection
 * out from one that took the request and hung up). Such a request reached
 * the server and may have been charged: counting every request about to be
 * sent (libcurl calls this once per request, resends included) is the only
 * way to see it. */
static int on_prereq(void *ud, char *conn_primary_ip, char *conn_local_ip, int conn_primary_port,
                     int conn_local_port)
{
	(void)conn_primary_ip;
	(void)conn_local_ip;
	(void)conn_primary_port;
	(void)conn_local_port;
	((struct keepa_http_result *)ud)->sent++;
	return CURL_PREREQFUNC_OK;
}

/* One HTTP exchange on c. Returns < 0 only for local failures; whatever the
 * network did is in *res, and the body in c->body. */
int keepa_http_exchange(struct keepa_conn *c, const char *url, const char *json_body,
                        struct keepa_http_result *res)
{
	struct keepa *k = c->k;
	struct curl_slist *headers = NULL, *h;
	CURL *e = c->curl;
	int64_t t0;

	memset(res, 0, sizeof(*res));
	dynbuf_reset(&c->body.buf);
	c->body.overflow = false;
	c->errbuf[0] = '\0';

	/* Reset clears the previous request's options but keeps the live
	 * connection, the DNS cache and the TLS session: keep-alive reuse. */
	curl_easy_reset(e);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, k->https ? "https" : "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(e, CURLOPT_USERAGENT, k->user_agent);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, k->connect_timeout_s);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, k->timeout_s);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)k->max_bytes);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &c->body);
	curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(e, CURLOPT_XFERINFODATA, k);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf);
	curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_prereq);
	curl_easy_setopt(e, CURLOPT_PREREQDATA, res);
	if (json_body) {
		h = curl_slist_append(headers, "Content-Type: application/json");
		if (!h)
			return TG_ENOMEM;
		headers = h;
		/* No "Expect: 100-continue" round trip for larger bodies. */
		h = curl_slist_append(headers, "Expect:");
		if (!h) {
			curl_slist_free_all(headers);
			return TG_ENOMEM;
		}
		headers = h;
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, json_body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(json_body));
	} else {
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	}

	t0 = tg_mono_ms();
	res->cc = keepa_stopping(k) ? CURLE_ABORTED_BY_CALLBACK : perform(c);
	res->ms = tg_mono_ms() - t0;
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(headers);

	res->overflow = c->body.overflow || res->cc == CURLE_FILESIZE_EXCEEDED;
	res->stopped = res->cc == CURLE_ABORTED_BY_CALLBACK && keepa_stopping(k);
	if (res->cc == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &res->status);
	if (res->overflow)
		snprintf(res->cause, sizeof(res->cause), "answer larger than the cap of %lld bytes",
		         (long long)k->max_bytes);
	else if (res->stopped)
		snprintf(res->cause, sizeof(res->cause), "stopped");
	else if (res->cc != CURLE_OK)
		snprintf(res->cause, sizeof(res->cause), "%s%s%s", curl_easy_strerror(res->cc),
		         c->errbuf[0] ? ": " : "", c->errbuf);
	stats_note_status(k, res, dynbuf_len(&c->body.buf));
	return 0;
}
