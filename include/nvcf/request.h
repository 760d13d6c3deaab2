/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file nvcf/request.h
 * @brief Invocation request rules shared by gateways and workers: request
 *        ids, the poll window, which headers cross to a function, and the
 *        NVCF-STATUS value of a response.
 *
 * These are pure functions with no I/O, so a custom gateway that embeds
 * libnvcf applies exactly the rules the reference gateway applies.
 */
#ifndef NVCF_REQUEST_H
#define NVCF_REQUEST_H

#include "common.h"

NVCF_BEGIN_DECLS

/** Default poll window in seconds when NVCF-POLL-SECONDS is absent. */
#define NVCF_POLL_SECONDS_DEFAULT 60
/** Largest accepted NVCF-POLL-SECONDS. */
#define NVCF_POLL_SECONDS_MAX 3600

/** Lifecycle of one invocation request. */
typedef enum nvcf_request_state_t {
	NVCF_REQUEST_QUEUED = 0,      /**< stored in the version's queue */
	NVCF_REQUEST_IN_PROGRESS = 1, /**< a worker is calling the function */
	NVCF_REQUEST_FULFILLED = 2,   /**< the function answered below 400 */
	NVCF_REQUEST_ERRORED = 3,     /**< the function or platform failed */
	NVCF_REQUEST_TIMED_OUT = 4,   /**< no worker took it in the window */
	NVCF_REQUEST_CANCELED = 5     /**< the caller went away */
} nvcf_request_state_t;

/** Returns the lower-case name of @p state ("in-progress", ...). */
NVCF_API const char *nvcf_request_state_name(nvcf_request_state_t state);

/**
 * Writes a new random request id (a UUID, 36 characters and a NUL).
 *
 * @return NVCF_OK, or NVCF_ERROR when no random bytes are available
 */
NVCF_API nvcf_status nvcf_request_id_new(char out[37]);

/** True when @p id is a well-formed request, function or version id. */
NVCF_API bool nvcf_request_id_valid(const char *id);

/**
 * Parses an NVCF-POLL-SECONDS header value.
 *
 * NULL gives the default of 60. The value must be a decimal integer; 0 is
 * raised to 1, and values above 3600, negative values or anything else
 * are rejected.
 *
 * @param[out] seconds_out  the window in seconds, 1 to 3600
 * @return NVCF_OK, or NVCF_EINVAL with a message naming the value
 */
NVCF_API nvcf_status nvcf_request_poll_seconds(const char *value,
					       int *seconds_out);

/**
 * True when a caller's request header may be forwarded to a function.
 *
 * Authorization, hop-by-hop headers (Connection, Keep-Alive, TE, Trailer,
 * Transfer-Encoding, Upgrade, Proxy-*), Host, Content-Length, routing
 * headers (function-id, function-version-id) and every NVCF-* header the
 * worker sets itself are not forwarded. Names compare case-insensitively.
 */
NVCF_API bool nvcf_request_header_forwardable(const char *name);

/**
 * Returns the NVCF-STATUS value of an HTTP status: "in-progress" for 202,
 * "fulfilled" for other codes from 200 to 399, "errored" otherwise.
 */
NVCF_API const char *nvcf_request_status_header(int http_status);

NVCF_END_DECLS

#endif /* NVCF_REQUEST_H */
