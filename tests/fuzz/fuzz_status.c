/*
 * fuzz_status.c - any bytes as what answers on the status socket.
 *
 * The daemon's side of the socket reads no request at all (it writes one
 * snapshot per connection and closes), so the input that can be hostile is
 * the answer: `tollgate status --socket PATH` reads whatever listens there.
 * This target takes those bytes as cmd_status does (parse, then render for
 * people) and renders them as the metrics endpoint does (Prometheus text),
 * so a snapshot of any shape - wrong types, huge numbers, long or
 * control-laden strings - must print without a crash, a leak or an
 * out-of-bounds read.
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "observe/status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
void status_print_human(FILE *out, const cJSON *snap);

/* cmd_status.c is linked in for its renderer; its config loading is not
 * reached from here. */
int cli_load_config(const struct cli_options *opts, struct config *config)
{
	(void)opts;
	(void)config;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *devnull;
	cJSON *snap = cJSON_ParseWithLength((const char *)data, size);
	char *text;

	if (!snap)
		return 0;
	if (!devnull)
		devnull = fopen("/dev/null", "w");
	if (devnull)
		status_print_human(devnull, snap);
	text = status_prometheus(snap);
	free(text);
	cJSON_Delete(snap);
	return 0;
}
