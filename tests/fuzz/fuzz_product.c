/*
 * fuzz_product.c - any bytes as a /product answer, read as the shipped
 * plugins read it: products_fetch() indexes the products by ASIN, then each
 * product found is turned into a row twice, as the pipeline does (with a
 * deal, deal_row_build()) and as the janitor does (deal_row_refresh()), and
 * its current value read for every price type. Must never crash, leak or
 * read out of bounds.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "deals.h"
#include "fetch.h"
#include "plugin_host.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The ASINs to ask for: those the answer names (the fuzzer controls them)
 * and one it may not have. */
#define MAX_ASINS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *asins[MAX_ASINS];
	struct product_set set = {0};
	struct selection sel;
	struct pctx p;
	struct deal_row row;
	cJSON *peek, *prod;
	size_t n = 0;
	char *err = NULL;
	bool ok;

	fuzz_plugin_begin(&p, &sel, data, size);
	peek = cJSON_ParseWithLength((const char *)data, size);
	cJSON_ArrayForEach(prod, cJSON_GetObjectItemCaseSensitive(peek, "products"))
	{
		const char *a = json_asin(prod);
		if (a && n < MAX_ASINS - 1)
			asins[n++] = a;
	}
	asins[n++] = "B000000000";
	if (products_fetch(&p, sel.domain, asins, n, &set, &err) == 0) {
		struct deal_ctx ctx = {.domain = 1, .price_type = sel.price_type, .date_range = sel.date_range,
		                       .now_s = 1700000000, .written_by = "fuzz", .fees = &p.fees};
		for (size_t i = 0; i < n; i++) {
			const cJSON *product = product_set_find(&set, asins[i]);
			char deal_text[128];
			cJSON *deal;

			snprintf(deal_text, sizeof(deal_text),
			         "{\"asin\":\"%s\",\"current\":[1000,1000],\"avg\":[[2000,2000],[2000,2000]]}",
			         asins[i]);
			deal = cJSON_Parse(deal_text);
			if (deal_row_build(&row, &ctx, deal, product, true, &ok) == 0)
				p.svc->upsert(NULL, "deals", row.v, row.n);
			cJSON_Delete(deal);
			if (product && deal_row_refresh(&row, &ctx, asins[i], 2000, product, true) == 0)
				p.svc->upsert(NULL, "deals", row.v, row.n);
			for (int pt = -1; pt < 40; pt++)
				(void)product_current(product, pt);
		}
	}
	free(err);
	product_set_release(&set);
	cJSON_Delete(peek);
	fuzz_plugin_end(&p, &sel);
	return 0;
}
