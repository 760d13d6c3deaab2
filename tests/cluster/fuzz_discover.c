/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target of nvcf__gpu_discover_parse(), the reader of nvidia-smi
 * output. tests/fuzz/fuzz_main.c replays the seed corpus through it as a
 * unit test; with -Dfuzzing=true it is also built as a libFuzzer binary.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agent/discover.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	nvcf__discovered_gpu *gpus = NULL;
	size_t n = 0, devices = 0;

	if (nvcf__gpu_discover_parse((const char *)data, size, &gpus, &n) !=
	    NVCF_OK) {
		if (gpus != NULL || n != 0)
			abort(); /* a failure returns nothing */
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		const nvcf__discovered_gpu *g = &gpus[i];

		/* Names are non-empty subject tokens; indices ascend. */
		if (g->name == NULL || g->name[0] == '\0' ||
		    g->model == NULL || g->count == 0)
			abort();
		for (const char *p = g->name; *p; p++)
			if (*p == '.' || *p == '*' || *p == '>' || *p == ' ')
				abort();
		for (unsigned int k = 1; k < g->count; k++)
			if (g->indices[k - 1] >= g->indices[k])
				abort();
		for (size_t j = 0; j < i; j++)
			if (strcasecmp(gpus[j].name, g->name) == 0)
				abort();
		devices += g->count;
	}
	if (devices > size)
		abort(); /* every device costs at least one line */
	nvcf__gpu_discovered_free(gpus, n);
	return 0;
}
