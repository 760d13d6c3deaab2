/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared body of the CRD fuzz targets: every decoded object must encode,
 * and what it encodes to must decode to an object that encodes the same.
 */
#ifndef FUZZ_CRD_COMMON_H
#define FUZZ_CRD_COMMON_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nvcf/crd.h"

#define FUZZ_KIND(T, from, to)                                                \
	static void fuzz_##T(const char *text, size_t len)                    \
	{                                                                     \
		nvcf_crd_##T *a = NULL, *b = NULL;                            \
		char *t1 = NULL, *t2 = NULL;                                  \
                                                                              \
		if (nvcf_crd_##T##_##from(&a, text, len) != NVCF_OK)          \
			return;                                               \
		if (nvcf_crd_##T##_##to(&t1, a) != NVCF_OK)                   \
			abort();                                              \
		if (nvcf_crd_##T##_##from(&b, t1, strlen(t1)) != NVCF_OK)     \
			abort();                                              \
		if (nvcf_crd_##T##_##to(&t2, b) != NVCF_OK ||                 \
		    strcmp(t1, t2) != 0)                                      \
			abort();                                              \
		nvcf_free(t1);                                                \
		nvcf_free(t2);                                                \
		nvcf_crd_##T##_free(a);                                       \
		nvcf_crd_##T##_free(b);                                       \
	}

/*
 * Defines the libFuzzer entry point over every kind, decoding with
 * nvcf_crd_<kind>_<from> and encoding with nvcf_crd_<kind>_<to>.
 */
#define FUZZ_CRD_TARGET(from, to)                                             \
	FUZZ_KIND(icms, from, to)                                             \
	FUZZ_KIND(miniservice, from, to)                                      \
	FUZZ_KIND(backend, from, to)                                          \
                                                                              \
	int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);         \
                                                                              \
	int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)          \
	{                                                                     \
		const char *text = (const char *)data;                        \
                                                                              \
		fuzz_icms(text, size);                                        \
		fuzz_miniservice(text, size);                                 \
		fuzz_backend(text, size);                                     \
		return 0;                                                     \
	}

#endif /* FUZZ_CRD_COMMON_H */
