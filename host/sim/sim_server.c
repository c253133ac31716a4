/*
 * sim_server.c - the simulator's life cycle: options, start (catalog, bucket,
 * libmicrohttpd on 127.0.0.1) and stop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <tollgate/tollgate.h>

#include "sim_server.h"

/* ---------------------------------------------------------------- lifecycle */

struct sim_options sim_options_default(void)
{
	return (struct sim_options){
	    .port = 0,
	    .key = "simkey",
	    .rate = 20,
	    .minute_ms = 60000,
	    .cap = SIM_AUTO,
	    .start_tokens = SIM_AUTO,
	    .seed = 1,
	    .products = 2000,
	    .history_days = 365,
	    .latency_ms = 0,
	    .hang_ms = 120000,
	    .deal_cache_s = 120,
	    .deal_age = SIM_AGE_CREATION,
	};
}

static int bad_option(char **errmsg, const char *msg)
{
	if (errmsg)
		*errmsg = strdup(msg);
	return TG_EINVAL;
}

int sim_start(const struct sim_options *opts, struct sim **out, char **errmsg)
{
	int ret;
	const struct sim_options *o = opts;

	if (!o->key || !*o->key)
		return bad_option(errmsg, "the key must not be empty");
	if (o->rate < 0 || o->minute_ms < 1 || (o->cap != SIM_AUTO && o->cap < 1))
		return bad_option(errmsg, "rate must be >= 0, minute-ms >= 1 and cap >= 1");
	if (o->p500 < 0 || o->phang < 0 || o->pgarbage < 0 || o->perror < 0 ||
	    o->p500 + o->phang + o->pgarbage + o->perror > 1.0 + 1e-9)
		return bad_option(errmsg, "fault probabilities must be >= 0 and add up to at most 1");
	if (o->latency_ms < 0 || o->hang_ms < 0)
		return bad_option(errmsg, "latency and hang times must be >= 0");
	if (o->deal_cache_s < 0 || (o->deal_age != SIM_AGE_CREATION && o->deal_age != SIM_AGE_UPDATE))
		return bad_option(errmsg, "deal-cache-s must be >= 0 and deal-age creation or update");

	struct sim *sim = calloc(1, sizeof(*sim));
	if (!sim) {
		bad_option(errmsg, "out of memory");
		return TG_ENOMEM;
	}
	sim->opt = *o;
	sim->key = strdup(o->key);
	if (!sim->key) {
		ret = TG_ENOMEM;
		goto err_sim;
	}
	sim->opt.key = sim->key;
	if (sim->opt.start_unix_ms == 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		sim->opt.start_unix_ms = ((int64_t)ts.tv_sec / 60) * 60000;
	}
	int cap = o->cap == SIM_AUTO ? 60 * o->rate : o->cap;
	if (cap < 1)
		cap = 1;
	sim->auto_start = o->start_tokens == SIM_AUTO;
	sim->fault_rng.s = o->seed ^ 0xfa17fa17fa17ULL;
	/* The window is virtual seconds; the cache runs on the real clock. */
	sim->cache.window_ms = (int64_t)o->deal_cache_s * o->minute_ms / 60;
	ret = sim_catalog_init(&sim->cat, o->seed, o->products, o->history_days,
	                       keepa_minute(sim->opt.start_unix_ms), errmsg);
	if (ret)
		goto err_key;
	pthread_mutex_init(&sim->lock, NULL);
	sim->mono0 = mono_ms();
	sim_bucket_init(&sim->bucket, o->rate, cap, sim->auto_start ? cap : o->start_tokens, o->minute_ms, 0);

	struct sockaddr_in addr;
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons(o->port);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sim->daemon =
	    MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL,
	                     o->port, NULL, NULL, sim_http_on_request, sim, MHD_OPTION_SOCK_ADDR, &addr,
	                     MHD_OPTION_NOTIFY_COMPLETED, sim_http_on_completed, sim, MHD_OPTION_END);
	if (!sim->daemon) {
		ret = TG_EIO;
		if (errmsg) {
			char buf[128];
			snprintf(buf, sizeof(buf), "cannot listen on 127.0.0.1:%u", (unsigned)o->port);
			*errmsg = strdup(buf);
		}
		goto err_catalog;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(sim->daemon, MHD_DAEMON_INFO_BIND_PORT);
	sim->port = info ? info->port : o->port;
	*out = sim;
	return 0;

err_catalog:
	pthread_mutex_destroy(&sim->lock);
	sim_catalog_release(&sim->cat);
err_key:
	free(sim->key);
err_sim:
	free(sim);
	return ret;
}

uint16_t sim_port(const struct sim *sim)
{
	return sim->port;
}

void sim_stop(struct sim *sim)
{
	if (!sim)
		return;
	atomic_store(&sim->stopping, true);
	MHD_stop_daemon(sim->daemon);
	pthread_mutex_destroy(&sim->lock);
	sim_cache_release(&sim->cache);
	sim_catalog_release(&sim->cat);
	free(sim->key);
	free(sim);
}
