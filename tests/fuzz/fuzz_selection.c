/*
 * fuzz_selection.c - any bytes as a /deal selection sent to the simulator:
 * validation answers 400 with a message, never crashes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sim_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sim_selection sel;
	char *json = malloc(size + 1), *err = NULL;

	if (!json)
		return 0;
	memcpy(json, data, size);
	json[size] = '\0';
	if (sim_selection_parse(&sel, json, &err) == 0)
		sim_selection_release(&sel);
	free(err);
	free(json);
	return 0;
}
