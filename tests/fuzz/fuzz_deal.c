/*
 * fuzz_deal.c - any bytes as a /deal answer, read as the shipped plugins
 * read it: the page (deals.dr, categoryCount), then the chunk of its deals
 * through products_fetch() and row derivation to upsert(). The /product
 * calls of the chunk get the same bytes as their answer, so one input can
 * carry both `deals` and `products` and reach deal_row_build() with both.
 * Must never crash, leak or read out of bounds.
 */
#include <stdint.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "fetch.h"
#include "plugin_host.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct selection sel;
	struct pctx p;
	cJSON *resp = NULL, *dr = NULL;
	int64_t expected;
	char *err = NULL;

	fuzz_plugin_begin(&p, &sel, data, size);
	if (deal_page_fetch(&p, &sel, 0, &resp, &dr, &expected, &err) == 0) {
		int n = cJSON_GetArraySize(dr);
		cJSON **deals = malloc((size_t)(n > 0 ? n : 1) * sizeof(*deals));
		int i = 0;
		cJSON *d;

		if (deals) {
			cJSON_ArrayForEach(d, dr)
			{
				deals[i++] = d;
			}
			free(err);
			err = NULL;
			chunk_commit(&p, &sel, deals, (size_t)i, "watermark", "1", &err);
			free(deals);
		}
	}
	free(err);
	cJSON_Delete(resp);
	fuzz_plugin_end(&p, &sel);
	return 0;
}
