/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file nvcf/common.h
 * @brief Status codes, error details, logging and memory release.
 *
 * Every libnvcf call that can fail returns an ::nvcf_status, and a negative
 * value is an error. The thread that made the call then reads a one-line
 * message, and the HTTP status or JetStream error code where one exists,
 * through nvcf_error_last(). The library never prints: it hands log records
 * to the handler installed with nvcf_log_set_handler().
 */
#ifndef NVCF_COMMON_H
#define NVCF_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define NVCF_BEGIN_DECLS extern "C" {
#define NVCF_END_DECLS }
#else
#define NVCF_BEGIN_DECLS
#define NVCF_END_DECLS
#endif

#if defined(NVCF_STATIC)
#define NVCF_API
#elif defined(_WIN32)
#ifdef NVCF_BUILDING
#define NVCF_API __declspec(dllexport)
#else
#define NVCF_API __declspec(dllimport)
#endif
#elif defined(__GNUC__)
#define NVCF_API __attribute__((visibility("default")))
#else
#define NVCF_API
#endif

#if defined(__GNUC__)
#define NVCF_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define NVCF_PRINTF(fmt, args)
#endif

NVCF_BEGIN_DECLS

/**
 * Status table: name, number, message. The numbers are part of the ABI:
 * they are never renumbered or reused.
 */
#define NVCF_STATUS_MAP(X)                                                    \
	X(NVCF_OK, 0, "success")                                              \
	X(NVCF_ERROR, -1, "generic error")                                    \
	X(NVCF_EINVAL, -2, "invalid argument")                                \
	X(NVCF_ENOMEM, -3, "out of memory")                                   \
	X(NVCF_ENOTFOUND, -4, "not found")                                    \
	X(NVCF_EEXISTS, -5, "already exists")                                 \
	X(NVCF_ECONFLICT, -6, "conflicting update of a stale revision")       \
	X(NVCF_ETIMEDOUT, -7, "timed out")                                    \
	X(NVCF_EUNAVAILABLE, -8, "service unavailable")                       \
	X(NVCF_EQUOTA, -9, "limit reached")                                   \
	X(NVCF_EPERM, -10, "permission denied")                               \
	X(NVCF_EUNAUTHENTICATED, -11, "missing or invalid credentials")       \
	X(NVCF_EIO, -12, "input or output error")                             \
	X(NVCF_EUSER, -13, "stopped by a user callback")                      \
	X(NVCF_ECANCELED, -14, "canceled")                                    \
	X(NVCF_EPROTO, -15, "malformed message")

/** Result of every call that can fail. */
typedef enum nvcf_status {
#define NVCF__STATUS_ENUM(name, value, text) name = value,
	NVCF_STATUS_MAP(NVCF__STATUS_ENUM)
#undef NVCF__STATUS_ENUM
} nvcf_status;

/** Returns the constant's name ("NVCF_ENOTFOUND"), or "NVCF_UNKNOWN". */
NVCF_API const char *nvcf_status_name(nvcf_status status);

/** Returns a short description of @p status; never NULL. */
NVCF_API const char *nvcf_status_str(nvcf_status status);

/** Error detail of the last failed call on the calling thread. */
typedef struct nvcf_error {
	unsigned int version;  /**< NVCF_ERROR_VERSION of the library */
	nvcf_status status;    /**< the status the call returned */
	int http_status;       /**< HTTP status involved, or 0 */
	int jetstream_code;    /**< JetStream API error code, or 0 */
	const char *message;   /**< one line, never NULL */
} nvcf_error;

#define NVCF_ERROR_VERSION 1

/**
 * Returns the error detail of the last call that failed on this thread.
 *
 * Never NULL. The pointer stays valid until the next libnvcf call on the
 * same thread. A call that succeeds does not clear it; use
 * nvcf_error_clear() for that.
 *
 * @since 0.1
 */
NVCF_API const nvcf_error *nvcf_error_last(void);

/** Resets the calling thread's error detail to NVCF_OK. */
NVCF_API void nvcf_error_clear(void);

/** Log levels, most severe first. */
typedef enum nvcf_log_level_t {
	NVCF_LOG_ERROR = 0,
	NVCF_LOG_WARN = 1,
	NVCF_LOG_INFO = 2,
	NVCF_LOG_DEBUG = 3,
	NVCF_LOG_TRACE = 4
} nvcf_log_level_t;

/**
 * Receives one log record. @p subsystem is a short tag such as "bus",
 * "api", "gateway", "agent" or "worker". Called from library threads,
 * possibly several at once; the handler must be thread-safe.
 */
typedef void (*nvcf_log_cb)(nvcf_log_level_t level, const char *subsystem,
			    const char *message, void *userdata);

/**
 * Installs the process-wide log handler.
 *
 * Records above @p max_level are not formatted at all. Passing a NULL
 * @p cb removes the handler, after which the library formats nothing.
 */
NVCF_API void nvcf_log_set_handler(nvcf_log_level_t max_level, nvcf_log_cb cb,
				   void *userdata);

/** Returns the level name ("error", "warn", ...). */
NVCF_API const char *nvcf_log_level_name(nvcf_log_level_t level);

/** Releases memory that a libnvcf call returned to the caller. */
NVCF_API void nvcf_free(void *ptr);

NVCF_END_DECLS

#endif /* NVCF_COMMON_H */
