/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the YAML decoders and encoders of nvcf/crd.h. */
#include <stdint.h>

#include "fuzz_crd_common.h"

FUZZ_KIND(icms, from_yaml, to_yaml)
FUZZ_KIND(miniservice, from_yaml, to_yaml)
FUZZ_KIND(backend, from_yaml, to_yaml)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;

	fuzz_icms(text, size);
	fuzz_miniservice(text, size);
	fuzz_backend(text, size);
	return 0;
}
