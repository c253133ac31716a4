/*
 * ratelimit.c - per-client token buckets (see ratelimit.h).
 */
#include "web/ratelimit.h"

#include <string.h>

void ratelimit_init(struct ratelimit *rl, double per_s, double burst)
{
	memset(rl, 0, sizeof(*rl));
	rl->per_s = per_s;
	rl->burst = burst;
}

bool ratelimit_take(struct ratelimit *rl, const unsigned char addr[16], int64_t now_ms)
{
	struct ratelimit_client *c = NULL, *oldest = &rl->clients[0];

	for (int i = 0; i < RATELIMIT_CLIENTS; i++) {
		struct ratelimit_client *k = &rl->clients[i];
		if (k->last_ms && memcmp(k->addr, addr, 16) == 0) {
			c = k;
			break;
		}
		if (k->last_ms < oldest->last_ms)
			oldest = k;
	}
	if (!c) {
		c = oldest;
		memcpy(c->addr, addr, 16);
		c->tokens = rl->burst;
		c->last_ms = now_ms;
	}
	if (now_ms > c->last_ms) {
		c->tokens += (double)(now_ms - c->last_ms) * rl->per_s / 1000.0;
		if (c->tokens > rl->burst)
			c->tokens = rl->burst;
	}
	/* A slot in use is never 0, which marks a free one. */
	c->last_ms = now_ms > 0 ? now_ms : 1;
	if (c->tokens < 1)
		return false;
	c->tokens -= 1;
	return true;
}
