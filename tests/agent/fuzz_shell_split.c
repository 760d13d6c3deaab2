/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target of nvcf__shell_split(). Built as LLVMFuzzerTestOneInput for
 * libFuzzer; the main below runs it on one file (or stdin) so that a
 * corpus can be replayed without a fuzzing toolchain.
 */
#include <stdint.h>
#include <stdio.h>
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
		/* Every word is shorter than the input plus the expansions. */
		for (size_t i = 0; i < argc; i++)
			if (argv[i] == NULL || argv[i + 1 == argc ? i : i] ==
			    NULL)
				abort();
		if (argv[argc] != NULL)
			abort();
		nvcf__shell_free(argv);
	}
	free(text);
	return 0;
}

#ifndef NVCF_LIBFUZZER
int main(int argc, char **argv)
{
	FILE *f = argc > 1 ? fopen(argv[1], "rb") : stdin;
	uint8_t buf[65536];
	size_t n;

	if (f == NULL) {
		perror(argv[1]);
		return 2;
	}
	n = fread(buf, 1, sizeof(buf), f);
	if (f != stdin)
		fclose(f);
	return LLVMFuzzerTestOneInput(buf, n);
}
#endif
