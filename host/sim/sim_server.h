/*
 * sim_server.h - what the simulator's server files share: the server state,
 * the clocks, and the request helpers. Private to host/sim/.
 */
#ifndef TG_HOST_SIM_SERVER_H
#define TG_HOST_SIM_SERVER_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "sim.h"
#include "sim_int.h"

enum path_id { P_TOKEN, P_DEAL, P_PRODUCT, P_SELLER, P_OTHER, NPATHS };
#define NSTATUS 6
enum fault { F_NONE, F_500, F_HANG, F_GARBAGE, F_ERROR, NFAULTS };
/* Names for /_sim/stats, indexed like the enums above. */
extern const char *const sim_path_names[NPATHS];
extern const int sim_statuses[NSTATUS];
extern const char *const sim_fault_names[NFAULTS];

struct sim {
	struct sim_options opt;
	char *key;
	bool auto_start; /* start_tokens follows the cap */
	struct MHD_Daemon *daemon;
	uint16_t port;
	pthread_mutex_t lock;
	struct sim_catalog cat;
	struct sim_bucket bucket;
	struct sim_rng fault_rng;
	int64_t mono0;
	atomic_bool stopping;
	int64_t requests_total;
	int64_t counts[NPATHS][NSTATUS];
	int64_t faults[NFAULTS];
	struct sim_deal_cache cache;
};

struct conn {
	char *body;
	size_t len;
	bool too_big;
};

/* Real monotonic milliseconds. */
static inline int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Real milliseconds since the server started: the bucket's clock. */
static inline int64_t elapsed_ms(const struct sim *sim)
{
	return mono_ms() - sim->mono0;
}

/* Virtual server time (Unix ms) at a real elapsed time. */
static inline int64_t virtual_unix_ms(const struct sim *sim, int64_t elapsed)
{
	return sim->opt.start_unix_ms + elapsed * 60000 / sim->opt.minute_ms;
}

static inline int32_t keepa_minute(int64_t unix_ms)
{
	return (int32_t)(unix_ms / 60000 - SIM_KEEPA_EPOCH_MIN);
}

/* A query-string parameter (URL-decoded) or NULL. */
const char *sim_arg(struct MHD_Connection *c, const char *name);

/* A strict integer parameter: 1 when present, 0 when absent, -1 when
 * malformed or outside lo..hi (with a message in msg). */
int sim_int_arg(struct MHD_Connection *c, const char *name, long long lo, long long hi, long long *out,
                char *msg, size_t msglen);

/* Queue root as the JSON answer (gzip'd when the client accepts it). */
enum MHD_Result sim_send_json(struct MHD_Connection *c, int status, cJSON *root);

/* The /_sim/ ground-truth endpoints (sim_ground.c). */
enum MHD_Result sim_ground_handle(struct sim *sim, struct MHD_Connection *c, struct conn *cc,
                                  const char *path);

/* libmicrohttpd callbacks (sim_http.c); cls is the struct sim. */
enum MHD_Result sim_http_on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                    const char *version, const char *upload_data, size_t *upload_size,
                                    void **con_cls);
void sim_http_on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                           enum MHD_RequestTerminationCode toe);

#endif
