/*
 * desc.h - a plugin's descriptor as it crosses from a worker to the host.
 *
 * In worker mode the host never loads a plugin itself: the worker loads it
 * and sends what the host needs to know - name, version, costs, settings -
 * and the host keeps its own copy (init, run and destroy stay NULL there:
 * only the worker calls them).
 */
#ifndef TG_WORKER_DESC_H
#define TG_WORKER_DESC_H

#include <tollgate/tollgate.h>

struct cJSON;

/* The descriptor as a JSON object (NULL when out of memory). */
struct cJSON *desc_to_json(const struct tg_plugin *p);
/* A copy the caller owns (free with desc_free) of a descriptor that passed
 * proto_check_from_worker(); NULL when out of memory. */
struct tg_plugin *desc_from_json(const struct cJSON *plugin);
void desc_free(struct tg_plugin *p);

#endif
