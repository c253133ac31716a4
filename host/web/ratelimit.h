/*
 * ratelimit.h - a token bucket per client address, so one client cannot
 * keep the single server thread (and its database connection) busy.
 */
#ifndef TG_HOST_WEB_RATELIMIT_H
#define TG_HOST_WEB_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

#define RATELIMIT_CLIENTS 64

struct ratelimit_client {
	unsigned char addr[16];
	double tokens;
	int64_t last_ms; /* 0: unused */
};

struct ratelimit {
	double per_s, burst;
	struct ratelimit_client clients[RATELIMIT_CLIENTS];
};

void ratelimit_init(struct ratelimit *rl, double per_s, double burst);
/* Take one request for addr (16 bytes: IPv6, or IPv4-mapped) at now_ms;
 * false when its bucket is empty. The least recently seen client gives its
 * slot to a new one. */
bool ratelimit_take(struct ratelimit *rl, const unsigned char addr[16], int64_t now_ms);

#endif
