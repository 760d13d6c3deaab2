/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target of nvcf__shell_split(). tests/fuzz/fuzz_main.c replays the
 * seed corpus through it as a unit test; with -Dfuzzing=true it is also
 * built as a libFuzzer binary.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	char **argv = NULL;
	size_t argc = 0;

	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (nvcf__shell_split(text, "8000", &argv, &argc) == NVCF_OK) {
		/* Every word is set and the array ends with NULL. */
		for (size_t i = 0; i < argc; i++)
			if (argv[i] == NULL)
				abort();
		if (argv[argc] != NULL)
			abort();
		nvcf__shell_free(argv);
	}
	free(text);
	return 0;
}
