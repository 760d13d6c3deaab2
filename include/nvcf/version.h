/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file nvcf/version.h
 * @brief Compile-time and run-time version of libnvcf.
 */
#ifndef NVCF_VERSION_H
#define NVCF_VERSION_H

#include "common.h"

#define NVCF_VERSION_MAJOR 0
#define NVCF_VERSION_MINOR 1
#define NVCF_VERSION_PATCH 0
#define NVCF_VERSION_STRING "0.1.0"

/** One comparable number: major * 10000 + minor * 100 + patch. */
#define NVCF_VERSION_NUMBER                                                   \
	(NVCF_VERSION_MAJOR * 10000 + NVCF_VERSION_MINOR * 100 +              \
	 NVCF_VERSION_PATCH)

/** True when the headers are at least version a.b.c. */
#define NVCF_VERSION_CHECK(a, b, c)                                           \
	(NVCF_VERSION_NUMBER >= ((a) * 10000 + (b) * 100 + (c)))

NVCF_BEGIN_DECLS

/** Returns the version number of the library that is loaded. */
NVCF_API int nvcf_version(void);

/** Returns the version of the library that is loaded, as "X.Y.Z". */
NVCF_API const char *nvcf_version_string(void);

NVCF_END_DECLS

#endif /* NVCF_VERSION_H */
