/*
 * fuzz_envelope.c - any bytes as a Keepa answer: parse the JSON, keep the
 * exact integers, read the token envelope and the in-body error as the
 * client does. Must never crash, leak or read out of bounds, whatever the
 * server (or a proxy) sends; and the exact-integer pass must agree with
 * cJSON on every text cJSON accepts (checked below: abort() otherwise).
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keepa/envelope.h"
#include "tokens/tokens.h"
#include "util/json_exact.h"

/* Every kept text is an integer literal whose value is the node's double,
 * of magnitude 2^53 or more; recurse over the tree. */
static void check_texts(const cJSON *item)
{
	for (; item; item = item->next) {
		if (cJSON_IsNumber(item) && item->valuestring) {
			const char *s = item->valuestring, *d = s + (*s == '-');
			char *end;
			double v = strtod(s, &end);

			if (*end || !*d || (*d == '0' && d[1]) || strspn(d, "0123456789") != strlen(d) ||
			    !(v == item->valuedouble) || !(v >= 9007199254740992.0 || v <= -9007199254740992.0))
				abort();
		} else if (cJSON_IsArray(item) || cJSON_IsObject(item)) {
			check_texts(item->child);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tokens_envelope env;
	char msg[512];
	cJSON *root = cJSON_ParseWithLength((const char *)data, size);

	if (!root)
		return 0;
	/* -1 only without memory: a tree and its own text always agree. */
	if (json_exact_ints(root, (const char *)data, size) < 0)
		abort();
	check_texts(root);
	keepa_envelope_parse(root, 1, &env);
	keepa_envelope_error(root, msg, sizeof(msg));
	cJSON_Delete(root);
	return 0;
}
