/*
 * plugin_test.h - small helpers shared by the plugin tests.
 */
#ifndef PLUGIN_TEST_H
#define PLUGIN_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake_services.h"

/* The seed operator's query (used books, a week's range). */
#define QUERY_USED_BOOKS                                                                                     \
	"{\"domainId\":1,\"priceTypes\":[2],\"dateRange\":1,\"includeCategories\":[283155],"                 \
	"\"salesRankRange\":[10000,10000000],\"currentRange\":[2000,45100],"                                 \
	"\"deltaPercentRange\":[10,100],\"isRangeEnabled\":true}"

/* 2023-11-14 22:13:20 UTC, a whole number of minutes after Keepa's epoch. */
#define T0_S 1699999980LL
#define T0_KM ((T0_S / 60) - 21564000LL)

static inline void asin_of(char *buf, int i)
{
	snprintf(buf, 16, "B%09d", i);
}

/* Add deal i (price type 2, used) with lastUpdate km and its product. */
static inline void add_deal(struct fake *f, int i, int64_t km)
{
	char asin[16], *d, *p;

	asin_of(asin, i);
	d = fake_deal_json(asin, 2, 2500 + i, 4000 + i, km);
	p = fake_product_json(asin, -1, 3000 + i, 2500 + i, 50000 + i);
	fake_keepa_add_deal(f, d);
	fake_keepa_set_product(f, asin, p);
	free(d);
	free(p);
}

struct inst {
	const struct tg_plugin *pl;
	void *state;
};

static inline struct inst inst_start(struct fake *f, const struct tg_plugin *pl)
{
	struct inst in = {pl, NULL};
	char *err = NULL;
	int rc;

	fake_use_plugin(f, pl);
	rc = pl->init(fake_task(f), fake_services(f), &in.state, &err);
	if (rc)
		fail_msg("init: %d %s", rc, err ? err : "");
	assert_null(err);
	return in;
}

/* One run; returns its code, the message (to free) in *err when asked. */
static inline int inst_run(struct inst *in, int64_t *idle, char **err)
{
	int64_t idle_local = 60;
	char *msg = NULL;
	int rc = in->pl->run(in->state, idle ? idle : &idle_local, &msg);

	if (rc)
		assert_non_null(msg); /* a failed run says why */
	if (err)
		*err = msg;
	else
		free(msg);
	return rc;
}

static inline void inst_stop(struct inst *in)
{
	in->pl->destroy(in->state);
	in->state = NULL;
}

static inline int64_t cell_int(struct fake *f, const char *asin, const char *col)
{
	int64_t v = -999;
	int rc = fake_cell_int(f, "deals", 1, asin, col, &v);

	if (rc < 0)
		fail_msg("no row %s", asin);
	return rc == 1 ? -777 : v; /* -777: NULL */
}

#define CELL_NULL (-777)

#endif
