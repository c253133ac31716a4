/*
 * assets.h - the page's files, embedded at build time by embed.py.
 */
#ifndef TG_HOST_WEB_ASSETS_H
#define TG_HOST_WEB_ASSETS_H

#include <stddef.h>

struct web_asset {
	const char *path;         /* the URL path it is served at */
	const char *content_type;
	const unsigned char *data;
	size_t len;
};

/* Ends with an entry whose path is NULL. */
extern const struct web_asset web_assets[];

#endif
