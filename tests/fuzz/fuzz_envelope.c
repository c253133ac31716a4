/*
 * fuzz_envelope.c - any bytes as a Keepa answer: parse the JSON, read the
 * token envelope and the in-body error as the client does. Must never crash,
 * leak or read out of bounds, whatever the server (or a proxy) sends.
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keepa/envelope.h"
#include "tokens/tokens.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tokens_envelope env;
	char msg[512];
	cJSON *root = cJSON_ParseWithLength((const char *)data, size);

	if (!root)
		return 0;
	keepa_envelope_parse(root, 1, &env);
	keepa_envelope_error(root, msg, sizeof(msg));
	cJSON_Delete(root);
	return 0;
}
