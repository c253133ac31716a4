/*
 * tokens/priv.h - the token scheduler's core state, shared by its files only
 * (tokens/core.c: estimate and dispatch, tokens/learn.c: cost and outside
 * learning, tokens/status.c: visibility, tokens/wait.c: the blocking wrapper).
 */
#ifndef TG_HOST_TOKENS_PRIV_H
#define TG_HOST_TOKENS_PRIV_H

#include "tokens/tokens.h"

#define TOKENS_MAX_KINDS 16
#define TOKENS_LEARN_WINDOW 32
#define TOKENS_MINUTES 60

/* "Not in any foreseeable time" (about 285 years), and small enough that a
 * clock plus a few of it never overflows. */
#define TOKENS_FAR_MS ((int64_t)1 << 53)

/*
 * base + n * step_ms, for a count n of refill ticks worked out from what the
 * server said (a deficit over a rate): n may be any double, huge or NaN.
 * Products of server numbers are formed only here, overflow-checked: the
 * result saturates at base + TOKENS_FAR_MS (a wait that long is what such a
 * reading means) instead of wrapping into the past.
 */
static inline int64_t tokens_ms_after(int64_t base, double n, int64_t step_ms)
{
	int64_t k, span, out;

	if (!(n > 0))
		return base;
	k = n < (double)TOKENS_FAR_MS ? (int64_t)n : TOKENS_FAR_MS;
	if (__builtin_mul_overflow(k, step_ms, &span) || span > TOKENS_FAR_MS)
		span = TOKENS_FAR_MS;
	if (__builtin_add_overflow(base, span, &out))
		out = INT64_MAX;
	return out;
}

enum ticket_state { TICKET_QUEUED, TICKET_HEAD, TICKET_IN_FLIGHT };

struct tokens_ticket {
	struct tokens_ticket *prev, *next; /* the class FIFO, or the in-flight list */
	int cls, kind;
	int64_t units;
	double declared;
	double cost; /* estimate used: fixed at dispatch */
	enum ticket_state state;
	bool charged; /* its DRR credit was taken (kept across a 429) */
	bool wait_logged;
	int64_t submit_ms, dispatch_ms;
	void *user;
};

struct learn_kind {
	char name[TOKENS_NAME_MAX];
	double window[TOKENS_LEARN_WINDOW]; /* observed cost per unit */
	int n, pos;
	double q90; /* 0 until observed */
};

struct tokens_class {
	char name[TOKENS_NAME_MAX];
	double weight;
	struct tokens_ticket *first, *last;
	int queued, in_flight;
	double dc; /* deficit round robin credit */
	bool in_ring;
	bool fresh;        /* latency-sensitive: may pass a waiting head */
	uint64_t bypassed; /* calls sent past a waiting head */
	struct learn_kind kinds[TOKENS_MAX_KINDS];
	int nkinds;
	uint64_t calls_ok, calls_429, calls_error;
	double consumed, cost_estimated, cost_actual;
	uint64_t wait_hist[TOKENS_WAIT_BUCKETS];
	double wait_max_s;
	double wait_sum_s; /* of every recorded wait: the histogram's _sum */
};

/* A call that ended without an envelope: its estimate counts as spent until
 * a reading from a call sent after it ended. */
struct unconfirmed {
	double cost;
	int64_t ended_ms;
};
#define TOKENS_MAX_UNCONFIRMED 64

struct tokens_core {
	struct tokens_config cfg;
	/* The classes, grown by tokens_core_add_class (ids are indices, so
	 * pointers into it do not outlive a call). */
	struct tokens_class *cls;
	int ncls, cls_cap;
	/* DRR ring of backlogged classes (room for every class); ring[cursor]
	 * is being visited when cursor_visited. */
	int *ring;
	int nring, cursor;
	bool cursor_visited;
	struct tokens_ticket *head;
	double head_bypassed; /* tokens fresh calls spent while this head waited */

	/* The last accepted reading. */
	bool have_reading;
	int64_t last_ts;    /* server timestamp */
	int64_t base_local; /* local time it was taken */
	double base_left;
	int64_t last_left; /* tokensLeft of that reading, as read */
	int64_t next_tick; /* local time of the first refill after it */
	double rate, cap;  /* net tokens/min, bucket */
	int completions_since_base;

	struct tokens_ticket *flight; /* tickets on the wire */
	double in_flight;             /* sum of their estimates */
	int n_in_flight;
	struct unconfirmed unconf[TOKENS_MAX_UNCONFIRMED];
	int nunconf;

	/* Sync (free /token) requests. */
	bool sync_outstanding;
	int64_t sync_not_before;
	int64_t last_sync_request;

	int64_t hold_until; /* after a 429 */

	/* Outside consumers and statistics. */
	double outside_min[TOKENS_MINUTES]; /* gap tokens per minute slot */
	int64_t outside_slot[TOKENS_MINUTES];
	int64_t first_reading_local;
	double outside_burst;
	int64_t outside_burst_ms;
	double used_min[TOKENS_MINUTES];
	int64_t used_slot[TOKENS_MINUTES];
	int64_t deepest_seen;
	double wasted;
	uint64_t n429;
};

/* tokens/learn.c */
struct learn_kind *learn_kind_get(struct tokens_class *c, const char *kind, bool create);
double learn_cost(const struct tokens_class *c, int kind, int64_t units, double declared);
void learn_record(struct tokens_class *c, int kind, int64_t units, double consumed);
double outside_per_min(const struct tokens_core *core, int64_t now);
void outside_record(struct tokens_core *core, double gap, int64_t now);
void used_record(struct tokens_core *core, double consumed, int64_t now);
double used_last_hour(const struct tokens_core *core, int64_t now);
void used_per_minute(const struct tokens_core *core, int64_t now, double out[TOKENS_HISTORY_MINUTES]);

/* tokens/core.c */
double core_target(const struct tokens_core *core, double cost, int64_t now);
int64_t core_eta(const struct tokens_core *core, double target, int64_t now);

#endif
