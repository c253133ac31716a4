/*
 * first_reading.c - the first /token call after READY (first_reading.h).
 */
#include "core/first_reading.h"

#include <stdlib.h>

#include "core/daemon.h"
#include "keepa/keepa.h"
#include "observe/log.h"
#include "tokens/tokens.h"
#include "util/errmsg.h"

static void *reading_thread(void *arg)
{
	struct first_reading *r = arg;
	struct tokens_envelope env;
	char *err = NULL;
	int rc = keepa_sync(r->d->keepa, &env, &err);

	if (rc == 0) {
		tokens_observe(r->d->tokens, &env);
		log_info(NULL, "Keepa: %lld tokens, %lld per minute", (long long)env.tokens_left,
		         (long long)env.refill_rate);
	} else if (rc == TG_EKEEPA) {
		r->rc = rc;
		r->error = str_printf("Keepa refused the key: %s (check keepa.key_file or KEEPA_API_KEY, and the plan)",
		                      err ? err : "no message");
	} else if (!atomic_load(&r->d->stopping)) {
		log_warn(NULL, "Keepa is not answering yet (%s); tasks wait for it and the scheduler keeps asking",
		         err ? err : "no message");
	}
	free(err);
	atomic_store(&r->done, true);
	return NULL;
}

int first_reading_start(struct first_reading *r, struct daemon *d)
{
	r->d = d;
	r->rc = 0;
	r->error = NULL;
	atomic_init(&r->done, false);
	r->started = pthread_create(&r->thread, NULL, reading_thread, r) == 0;
	return r->started ? 0 : TG_EIO;
}

bool first_reading_done(struct first_reading *r)
{
	return atomic_load(&r->done);
}

void first_reading_join(struct first_reading *r)
{
	if (r->started)
		pthread_join(r->thread, NULL);
	r->started = false;
}
