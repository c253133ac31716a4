/*
 * web.h - the deals and the daemon in a browser, served by the daemon
 * itself (libmicrohttpd) when web.listen is set.
 *
 * Pages: / (the deals), /status, /login; assets embedded at build time
 * (assets/, turned into C by embed.py); nothing is read from disk. API:
 * /api/deals, /api/status (the document of `tollgate status --json`),
 * /deals.csv (the code of `tollgate export`), /healthz. Read-only: no
 * request changes anything. On an address outside 127.0.0.0/8 every path
 * but the login form needs the token of web.token_file (bearer header or
 * the cookie the form sets); without it, 401.
 *
 * One server thread answers every request in turn with one storage
 * connection of its own, so requests never race each other on SQLite.
 */
#ifndef TG_HOST_WEB_H
#define TG_HOST_WEB_H

#include <stdint.h>

struct daemon;
struct web_server;

/* Start the page on d->config->web_listen (port 0: any free port), or do
 * nothing (*out NULL, 0) when it is off. Creates the indexes the sortable
 * columns need. Errors: TG_EINVAL for the configuration's mistakes (token
 * file), TG_EIO when the address cannot be bound. */
int web_server_start(struct daemon *d, struct web_server **out, char **errmsg);
/* web.listen: "a.b.c.d:port" or "port" (loopback) as config_parse_listen()
 * reads it, and port 0 besides: any free port, logged at start. */
struct sockaddr_in;
int web_parse_listen(const char *listen, struct sockaddr_in *sa);
/* What web_server_start() would refuse before it binds (the token file's
 * mode and content): 0 when the page is off or would start, else TG_EINVAL
 * with the reason - for `tollgate check`. */
struct config;
int web_check(const struct config *cf, char **errmsg);
/* The port it listens on (useful after port 0). */
uint16_t web_server_port(const struct web_server *w);
void web_server_stop(struct web_server *w);

#endif
