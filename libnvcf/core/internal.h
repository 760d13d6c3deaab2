/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers shared by every module of the library. Nothing here is exported
 * from the shared library; the daemons and tests reach it through the
 * static convenience library.
 */
#ifndef NVCF_CORE_INTERNAL_H
#define NVCF_CORE_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nvcf/common.h"

/* ---- errors ---------------------------------------------------------- */

/* Records the calling thread's error detail and returns @p status. */
nvcf_status nvcf__error_set(nvcf_status status, const char *fmt, ...)
	NVCF_PRINTF(2, 3);

/* Same, also recording an HTTP status and a JetStream error code. */
nvcf_status nvcf__error_set_ext(nvcf_status status, int http_status,
				int jetstream_code, const char *fmt, ...)
	NVCF_PRINTF(4, 5);

/* Records out-of-memory without allocating. */
nvcf_status nvcf__error_oom(void);

/* ---- logging --------------------------------------------------------- */

bool nvcf__log_enabled(nvcf_log_level_t level);
void nvcf__log(nvcf_log_level_t level, const char *subsystem, const char *fmt,
	       ...) NVCF_PRINTF(3, 4);

/* The level test happens before the arguments are evaluated. */
#define NVCF_LOG(level, subsystem, ...)                                       \
	do {                                                                  \
		if (nvcf__log_enabled(level))                                 \
			nvcf__log(level, subsystem, __VA_ARGS__);             \
	} while (0)
#define nvcf_log_error(sub, ...) NVCF_LOG(NVCF_LOG_ERROR, sub, __VA_ARGS__)
#define nvcf_log_warn(sub, ...) NVCF_LOG(NVCF_LOG_WARN, sub, __VA_ARGS__)
#define nvcf_log_info(sub, ...) NVCF_LOG(NVCF_LOG_INFO, sub, __VA_ARGS__)
#define nvcf_log_debug(sub, ...) NVCF_LOG(NVCF_LOG_DEBUG, sub, __VA_ARGS__)
#define nvcf_log_trace(sub, ...) NVCF_LOG(NVCF_LOG_TRACE, sub, __VA_ARGS__)

/* ---- identifiers, time, strings --------------------------------------- */

#define NVCF_UUID_LEN 36 /* characters, without the terminating NUL */

/* Writes a random (version 4) UUID, lower case, into out[37]. */
nvcf_status nvcf__uuid_new(char out[NVCF_UUID_LEN + 1]);

/* True when @p s is a UUID in 8-4-4-4-12 hexadecimal form. */
bool nvcf__uuid_valid(const char *s);

/* Wall-clock time in microseconds since the Unix epoch. */
int64_t nvcf__now_us(void);

/* Monotonic time in microseconds. */
int64_t nvcf__mono_us(void);

struct timespec;

/*
 * Sets @p ts to @p ms milliseconds from now on CLOCK_REALTIME, the clock
 * of a default pthread_cond_timedwait().
 */
void nvcf__deadline_after(struct timespec *ts, int64_t ms);

/* Formats @p epoch_us as ISO-8601 UTC with milliseconds into out[32]. */
void nvcf__iso8601(int64_t epoch_us, char out[32]);

/*
 * Parses an ISO-8601 duration made of days, hours, minutes and seconds
 * ("PT10S", "PT1H30M", "P1DT2H", "PT0.5S") into milliseconds.
 */
nvcf_status nvcf__duration_parse(const char *text, int64_t *ms_out);

/* Formats milliseconds as an ISO-8601 duration ("PT10S", "PT1M30.5S"). */
void nvcf__duration_format(int64_t ms, char out[48]);

char *nvcf__strdup(const char *s);
char *nvcf__strndup(const char *s, size_t n);
char *nvcf__asprintf(const char *fmt, ...) NVCF_PRINTF(1, 2);

/* Growable byte buffer; data is always NUL-terminated. */
typedef struct nvcf__buf {
	char *data;
	size_t len;
	size_t cap;
} nvcf__buf;

nvcf_status nvcf__buf_append(nvcf__buf *buf, const void *data, size_t len);
nvcf_status nvcf__buf_printf(nvcf__buf *buf, const char *fmt, ...)
	NVCF_PRINTF(2, 3);
void nvcf__buf_free(nvcf__buf *buf);

/* Lower-case hexadecimal SHA-256 of @p data into out[65]. */
nvcf_status nvcf__sha256_hex(const void *data, size_t len, char out[65]);

/* Fills @p out with @p len cryptographically random bytes. */
nvcf_status nvcf__random_bytes(void *out, size_t len);

#endif /* NVCF_CORE_INTERNAL_H */
