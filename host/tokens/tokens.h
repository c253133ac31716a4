/*
 * tokens.h - the token scheduler (docs/token-scheduler.md).
 *
 * Two layers. The core (tokens_core_*) is pure: no threads, no sleeping,
 * time is an argument. One core per Keepa key; each task is a class with a
 * weight and a FIFO of calls. The blocking wrapper (tokens_*) puts a mutex
 * and a condition variable around one core, reads time from an injectable
 * clock, and is what the Keepa client calls from the task threads.
 *
 * The estimate `est` is a lower bound on the server's balance:
 *   est = min(cap, reading + ticks * (rate - outside)) - in flight - unconfirmed
 * with refill ticks aligned to the last reading's refillIn. A call is sent
 * when est reaches its target (never more than the cap: every target is
 * reachable), chosen by deficit round robin over the backlogged classes;
 * the chosen call is the sticky head until it is sent (no barging).
 */
#ifndef TG_HOST_TOKENS_H
#define TG_HOST_TOKENS_H

#include <stdbool.h>
#include <stdint.h>

#include "util/clock.h"

#define TOKENS_NAME_MAX 48
#define TOKENS_WAIT_BUCKETS 6

enum tokens_policy {
	/* target = min(cost, cap - reserve) + margin: pay before, and go into
	 * a deficit only when one call costs more than the cap allows. */
	TOKENS_POLICY_RESERVE = 0,
	/* target = deficit_threshold (the seed's controlled deficit), raised
	 * when needed so the deficit stays above the floor. */
	TOKENS_POLICY_DEFICIT = 1,
};

struct tokens_config {
	enum tokens_policy policy; /* default TOKENS_POLICY_RESERVE */
	double reserve;            /* tokens kept below the cap (default 1) */
	double margin;             /* tokens left after a call (default 1) */
	double deepest_deficit;    /* floor: how far below 0 we may go (default 150) */
	double deficit_threshold;  /* DEFICIT policy target (default 80) */
	double cap_minutes;        /* cap = cap_minutes * rate (default 60) */
	double latency_target_s;   /* for the budget hint (default 600) */
	/* Milliseconds in a Keepa minute (default 60000). Less only against a
	 * simulator with accelerated minutes: refill ticks, the cap's window
	 * and the learning windows all count in these minutes. */
	int64_t minute_ms;
};

/* Fill cfg with the defaults above: the one source of them (the config's
 * tokens group defaults to these too). */
void tokens_config_default(struct tokens_config *cfg);
/* Parse "reserve" / "deficit"; -1 when unknown. */
int tokens_policy_parse(const char *name);
const char *tokens_policy_name(enum tokens_policy policy);

/* The token fields every Keepa answer carries (429s and errors included). */
struct tokens_envelope {
	int64_t timestamp_ms;        /* server time, Unix ms: orders readings */
	int64_t tokens_left;         /* balance after the request, may be < 0 */
	int64_t refill_in_ms;        /* until the next refill tick (< 60000) */
	int64_t refill_rate;         /* tokens per minute */
	double token_flow_reduction; /* tokens per minute taken by trackings */
	int64_t tokens_consumed;     /* what this request cost (0 on a 429) */
	int64_t processing_ms;
};

/* ------------------------------------------------------------ status */

enum tokens_class_state {
	TOKENS_CLASS_IDLE = 0,  /* nothing queued, nothing in flight */
	TOKENS_CLASS_QUEUED,    /* calls queued behind another class's head */
	TOKENS_CLASS_WAITING,   /* its call is the head, waiting for tokens */
	TOKENS_CLASS_IN_FLIGHT, /* nothing queued, calls on the wire */
};

/* Upper bounds (seconds) of the wait histogram buckets; the last is open. */
extern const double tokens_wait_bucket_s[TOKENS_WAIT_BUCKETS - 1];

struct tokens_class_status {
	char name[TOKENS_NAME_MAX];
	double weight;
	int queued;    /* calls queued (the head included) */
	int in_flight; /* calls on the wire */
	enum tokens_class_state state;
	/* When WAITING: the head call; when QUEUED, its own first call (no
	 * ETA: that depends on the head). */
	char head_kind[TOKENS_NAME_MAX];
	double head_cost, head_target;
	int64_t head_eta_ms;  /* from now; -1 unknown (waiting for a reading) */
	int64_t head_wait_ms; /* waited so far */
	uint64_t calls_ok, calls_429, calls_error;
	double tokens_consumed;
	uint64_t wait_hist[TOKENS_WAIT_BUCKETS];
	double wait_p50_s; /* upper bound of the median's bucket */
	double wait_max_s;
	double wait_sum_s; /* sum of the waits counted in wait_hist */
	double cost_estimated, cost_actual; /* sums over completed calls */
	int64_t budget_hint;
	bool fresh;            /* latency-sensitive (tokens_core_set_fresh) */
	uint64_t passed_head;  /* its calls sent past another class's waiting head */
};

#define TOKENS_HISTORY_MINUTES 60

struct tokens_status {
	bool have_reading;
	double est;             /* lower bound on the balance now */
	int64_t last_left;      /* last server reading */
	int64_t last_age_ms;    /* its age */
	double rate, cap;       /* tokens/min (net of flow reduction), bucket */
	double utilization;     /* tokens consumed in the last hour / generated */
	int64_t deepest_seen;   /* lowest tokensLeft read */
	double outside_per_min; /* learned consumption by others on the key */
	double wasted;          /* refill predicted lost to the cap */
	uint64_t n429;
	enum tokens_policy policy;
	/* Tokens consumed in each of the last TOKENS_HISTORY_MINUTES (Keepa)
	 * minutes, oldest first, the current minute last: the web's chart. */
	double used_per_min[TOKENS_HISTORY_MINUTES];
	/* One entry per class, as many as there are (no fixed limit): the
	 * snapshot grows the array. Start from a zeroed struct, pass it again
	 * for later snapshots if you like, end with tokens_status_release().
	 * When memory runs out, nclasses counts the entries that fit. */
	int nclasses;
	struct tokens_class_status *cls;
	int cls_cap;
};

/* Free what the snapshots allocated in st (not st itself). */
void tokens_status_release(struct tokens_status *st);

/* ------------------------------------------------------------ the core */

struct tokens_core;
/* One call, owned by the core from submit to complete/complete_unknown/cancel. */
struct tokens_ticket;

int tokens_core_new(const struct tokens_config *cfg, struct tokens_core **out, char **errmsg);
/* Frees the core and every ticket still in it. */
void tokens_core_free(struct tokens_core *core);

/* Add a class (a task); returns its id (>= 0), TG_EINVAL (bad weight or
 * name, duplicate name) or TG_ENOMEM: there is no other limit. */
int tokens_core_add_class(struct tokens_core *core, const char *name, double weight);
/* The id of a class by name, or TG_ENOTFOUND. */
int tokens_core_find_class(const struct tokens_core *core, const char *name);
/*
 * Mark class cls latency-sensitive (an interval task such as the upserter):
 * while the head of another class waits for tokens, the call of cls may
 * pass it when cls has at most one minute of refill queued (so the call is
 * small and cls is not backlogged) and the call is funded now (the estimate stays above the margin
 * after it). While one head waits, the calls passing it spend at most the
 * head's cost, so its wait stays bounded (at most as long again). The cost
 * is charged to the class's round-robin credit. TG_EINVAL for a bad class.
 */
int tokens_core_set_fresh(struct tokens_core *core, int cls, bool fresh);
/* A reload re-weighting a task (core/reload.c): > 0, else TG_EINVAL. */
int tokens_core_set_weight(struct tokens_core *core, int cls, double weight);

/* Queue a call of class cls at the tail of its FIFO. declared is the
 * plugin's estimate (fixed + per_unit * units); the cost used is the larger
 * of it and the learned cost of (cls, kind) for units. TG_EOVERSIZE (with a
 * message saying the largest affordable cost) when that cost exceeds
 * cap - reserve + deepest_deficit; TG_EINVAL for a bad class. */
int tokens_core_submit(struct tokens_core *core, int cls, const char *kind, int64_t units, double declared,
                       int64_t now, struct tokens_ticket **out, char **errmsg);

enum tokens_action {
	TOKENS_DISPATCH, /* send ticket now; its cost counts as in flight */
	TOKENS_WAIT,     /* nothing can change before until_ms (unless a call completes) */
	TOKENS_SYNC,     /* make a free /token call now, then observe() or sync_failed() */
	TOKENS_IDLE,     /* nothing queued */
};

struct tokens_poll {
	enum tokens_action action;
	struct tokens_ticket *ticket; /* DISPATCH */
	int64_t until_ms;             /* WAIT */
};

/* What to do now. After a DISPATCH, poll again: more may be sendable. */
void tokens_core_poll(struct tokens_core *core, int64_t now, struct tokens_poll *out);

/* The dispatched call got an answer with this envelope: reconcile, learn,
 * and free the ticket. */
void tokens_core_complete(struct tokens_core *core, struct tokens_ticket *t,
                          const struct tokens_envelope *env, int64_t now);
/* The dispatched call got a 429: reconcile, and put the ticket back as the
 * sticky head, held until the refill that makes the balance positive. */
void tokens_core_complete_429(struct tokens_core *core, struct tokens_ticket *t,
                              const struct tokens_envelope *env, int64_t now);
/* The dispatched call got no envelope (network error): assume its cost was
 * spent until a reading taken after it; frees the ticket. */
void tokens_core_complete_unknown(struct tokens_core *core, struct tokens_ticket *t, int64_t now);
/* The dispatched call was abandoned at shutdown: accounted like unknown
 * (its cost may have been spent), but not counted as a failed call. */
void tokens_core_complete_stopped(struct tokens_core *core, struct tokens_ticket *t, int64_t now);
/* Withdraw a queued (not dispatched) ticket and free it. */
void tokens_core_cancel(struct tokens_core *core, struct tokens_ticket *t, int64_t now);
/* A free reading (/token). */
void tokens_core_observe(struct tokens_core *core, const struct tokens_envelope *env, int64_t now);
/* The /token call asked for by TOKENS_SYNC failed: retry later. */
void tokens_core_sync_failed(struct tokens_core *core, int64_t now);

/* The lower-bound estimate now; false before the first reading. */
bool tokens_core_est(const struct tokens_core *core, int64_t now, double *est);
/* Largest cost per call keeping the others' wait under latency_target_s. */
int64_t tokens_core_budget_hint(const struct tokens_core *core, int cls, int64_t now);
void tokens_core_status(const struct tokens_core *core, int64_t now, struct tokens_status *st);

/* Ticket accessors (valid while the core owns the ticket). */
int tokens_ticket_class(const struct tokens_ticket *t);
double tokens_ticket_cost(const struct tokens_ticket *t);
int64_t tokens_ticket_units(const struct tokens_ticket *t);
void *tokens_ticket_user(const struct tokens_ticket *t);
void tokens_ticket_set_user(struct tokens_ticket *t, void *user);

/* ------------------------------------------------------------ the wrapper */

struct tokens;

/* Makes the free /token call; fills *env. Called without the lock held, by
 * one waiting thread at a time, at start-up and when a reading is needed. */
typedef int (*tokens_sync_fn)(void *ctx, struct tokens_envelope *env, char **errmsg);

/* clock: read for time (copied); NULL for the real clock. sync may be NULL
 * when the caller feeds readings itself with tokens_observe(). */
int tokens_new(const struct tokens_config *cfg, const struct tg_clock *clock, tokens_sync_fn sync,
               void *sync_ctx, struct tokens **out, char **errmsg);
/* Call after every thread has left tokens_acquire (after tokens_shutdown). */
void tokens_free(struct tokens *t);
int tokens_add_class(struct tokens *t, const char *name, double weight);
/* tokens_core_set_fresh, locked. */
int tokens_set_fresh(struct tokens *t, int cls, bool fresh);
/* tokens_core_set_weight, locked. */
int tokens_set_weight(struct tokens *t, int cls, double weight);
int tokens_find_class(struct tokens *t, const char *name);

/* Block until the call may be sent. *ticket NULL: a new call (class cls,
 * kind, units, declared estimate) is queued; *ticket set (after a 429):
 * the same call, still the head, waits again. On 0 the caller sends the
 * call and then calls exactly one tokens_release_*(). Errors: TG_ESTOPPED
 * at once after tokens_shutdown() (the ticket is withdrawn and *ticket set
 * to NULL), TG_EOVERSIZE with a message, TG_EINVAL. */
int tokens_acquire(struct tokens *t, int cls, const char *kind, int64_t units, double estimate,
                   struct tokens_ticket **ticket, char **errmsg);
/* The answer's envelope (2xx and other non-429 answers with an envelope). */
void tokens_release_ok(struct tokens *t, struct tokens_ticket *ticket, const struct tokens_envelope *env);
/* A 429: the ticket stays valid; call tokens_acquire() again with it. */
void tokens_release_429(struct tokens *t, struct tokens_ticket *ticket, const struct tokens_envelope *env);
/* No envelope (network error, garbage). Frees the ticket. */
void tokens_release_unknown(struct tokens *t, struct tokens_ticket *ticket);
/* The call was abandoned at shutdown (see tokens_core_complete_stopped). */
void tokens_release_stopped(struct tokens *t, struct tokens_ticket *ticket);
/* A free reading from elsewhere. */
void tokens_observe(struct tokens *t, const struct tokens_envelope *env);
/* Every waiter returns TG_ESTOPPED at once; later acquires too. */
void tokens_shutdown(struct tokens *t);
int64_t tokens_budget_hint(struct tokens *t, int cls);
void tokens_snapshot(struct tokens *t, struct tokens_status *st);

#endif
