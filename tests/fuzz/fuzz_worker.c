/*
 * fuzz_worker.c - any bytes as what a worker process sends its host: split
 * into frames by the host's reader (fed in uneven pieces, as a socket
 * delivers them), each frame checked by proto_check_from_worker() and, when
 * it passes, read as the host reads it (a descriptor is copied). A worker is
 * a plugin's process and may send anything: the host must never crash, leak
 * or read out of bounds.
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "worker/desc.h"
#include "worker/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void read_as_host(const cJSON *msg, int type)
{
	switch (type) {
	case PROTO_DESC:
		if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(msg, "ok")))
			desc_free(desc_from_json(cJSON_GetObjectItemCaseSensitive(msg, "plugin")));
		break;
	case PROTO_KEEPA: {
		const cJSON *p;
		size_t n = 0;
		cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(msg, "params"))
		{
			n += strlen(cJSON_GetArrayItem(p, 0)->valuestring) + strlen(cJSON_GetArrayItem(p, 1)->valuestring);
		}
		(void)n;
		(void)proto_str(msg, "kind");
		(void)proto_int(msg, "units");
		break;
	}
	default: (void)proto_int(msg, "rc"); break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_reader r;
	size_t off = 0, piece = 1;

	proto_reader_init(&r, PROTO_WORKER_FRAME_MAX);
	while (off < size) {
		size_t n = size - off < piece ? size - off : piece;
		cJSON *msg;
		const char *why;
		int rc;

		if (proto_reader_feed(&r, data + off, n) != 0)
			break;
		off += n;
		piece = piece * 3 + 1; /* 1, 4, 13, 40 ... bytes: frames split anywhere */
		while ((rc = proto_reader_next(&r, &msg, &why)) == 1) {
			char reason[200];
			int type = proto_check_from_worker(msg, reason, sizeof(reason));
			if (type >= 0)
				read_as_host(msg, type);
			cJSON_Delete(msg);
		}
		if (rc < 0)
			break; /* the host kills such a worker: nothing more is read */
	}
	proto_reader_release(&r);
	return 0;
}
