/*
 * plugin_host.h - a minimal host around plugins/common for the payload fuzz
 * targets: Keepa answers come from the fuzzed bytes, storage accepts every
 * row (reading each value, so a dangling text pointer in a row is caught by
 * the sanitizers), nothing sleeps, nothing is written anywhere.
 */
#ifndef FUZZ_PLUGIN_HOST_H
#define FUZZ_PLUGIN_HOST_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "selection.h"

/* Set up p for one input: every Keepa call is answered with a fresh parse of
 * data[0..size) (NULL answers when it is not JSON, as the host would refuse
 * it), the selection is a fixed, valid /deal query. */
void fuzz_plugin_begin(struct pctx *p, struct selection *sel, const uint8_t *data, size_t size);
void fuzz_plugin_end(struct pctx *p, struct selection *sel);

#endif
