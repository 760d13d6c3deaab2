/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The C side of SetLogHandler: the library calls this with const strings,
 * while the exported Go function takes plain char pointers.
 */
#include <nvcf/common.h>

#include "_cgo_export.h"

void nvcfgo_log_trampoline(nvcf_log_level_t level, const char *subsystem,
			   const char *message, void *userdata);

void nvcfgo_log_trampoline(nvcf_log_level_t level, const char *subsystem,
			   const char *message, void *userdata)
{
	(void)userdata;
	nvcfgoLog((int)level, (char *)subsystem, (char *)message);
}
