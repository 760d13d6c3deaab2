/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Request helpers that the gateway and the worker share but the public
 * API does not export.
 */
#ifndef NVCF_REQUEST_INTERNAL_H
#define NVCF_REQUEST_INTERNAL_H

#include <stdbool.h>

/*
 * True when the Accept header value @p accept lists the media type
 * text/event-stream (compared without case, parameters ignored) with a
 * quality above 0. The worker then streams the function's response.
 * Accepts NULL (no header).
 */
bool nvcf__accepts_event_stream(const char *accept);

/*
 * True when @p accept is exactly "text/event-stream" apart from case and
 * surrounding blanks. Only such a request gets the longer default poll
 * window of NVCF_SSE_POLL_SECONDS_DEFAULT, as NVCF does.
 */
bool nvcf__accept_is_event_stream(const char *accept);

/* Poll window of a streamed request that sends no NVCF-POLL-SECONDS. */
#define NVCF_SSE_POLL_SECONDS_DEFAULT 1200

#endif /* NVCF_REQUEST_INTERNAL_H */
