/* SPDX-License-Identifier: Apache-2.0 */
#include <stdatomic.h>
#include <stdio.h>

#include "core/internal.h"

/*
 * The handler is set once at start-up by the embedder, but log records come
 * from many threads, so the three fields are read atomically. -1 as the
 * level means "no handler": nothing is formatted.
 */
static _Atomic int log_max_level = -1;
static _Atomic(nvcf_log_cb) log_cb;
static _Atomic(void *) log_userdata;

void nvcf_log_set_handler(nvcf_log_level_t max_level, nvcf_log_cb cb,
			  void *userdata)
{
	atomic_store(&log_max_level, -1);
	atomic_store(&log_userdata, userdata);
	atomic_store(&log_cb, cb);
	if (cb != NULL)
		atomic_store(&log_max_level, (int)max_level);
}

const char *nvcf_log_level_name(nvcf_log_level_t level)
{
	switch (level) {
	case NVCF_LOG_ERROR:
		return "error";
	case NVCF_LOG_WARN:
		return "warn";
	case NVCF_LOG_INFO:
		return "info";
	case NVCF_LOG_DEBUG:
		return "debug";
	case NVCF_LOG_TRACE:
		return "trace";
	}
	return "unknown";
}

bool nvcf__log_enabled(nvcf_log_level_t level)
{
	return (int)level <= atomic_load(&log_max_level);
}

void nvcf__log(nvcf_log_level_t level, const char *subsystem, const char *fmt,
	       ...)
{
	nvcf_log_cb cb = atomic_load(&log_cb);
	char message[1024];
	va_list ap;

	if (cb == NULL || !nvcf__log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	cb(level, subsystem, message, atomic_load(&log_userdata));
}
