/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/internal.h"
#include "nvcf/request.h"

const char *nvcf_request_state_name(nvcf_request_state_t state)
{
	switch (state) {
	case NVCF_REQUEST_QUEUED:
		return "queued";
	case NVCF_REQUEST_IN_PROGRESS:
		return "in-progress";
	case NVCF_REQUEST_FULFILLED:
		return "fulfilled";
	case NVCF_REQUEST_ERRORED:
		return "errored";
	case NVCF_REQUEST_TIMED_OUT:
		return "timed-out";
	case NVCF_REQUEST_CANCELED:
		return "canceled";
	}
	return "unknown";
}

nvcf_status nvcf_request_id_new(char out[37])
{
	if (out == NULL)
		return nvcf__error_set(NVCF_EINVAL, "output buffer is NULL");
	return nvcf__uuid_new(out);
}

bool nvcf_request_id_valid(const char *id)
{
	return nvcf__uuid_valid(id);
}

nvcf_status nvcf_request_poll_seconds(const char *value, int *seconds_out)
{
	const char *p = value;
	long long n = 0;

	if (seconds_out == NULL)
		return nvcf__error_set(NVCF_EINVAL, "seconds_out is NULL");
	if (value == NULL) {
		*seconds_out = NVCF_POLL_SECONDS_DEFAULT;
		return NVCF_OK;
	}
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0')
		goto invalid;
	for (; *p >= '0' && *p <= '9'; p++) {
		n = n * 10 + (*p - '0');
		if (n > NVCF_POLL_SECONDS_MAX)
			goto invalid;
	}
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p != '\0')
		goto invalid;
	*seconds_out = n < 1 ? 1 : (int)n;
	return NVCF_OK;

invalid:
	return nvcf__error_set_ext(NVCF_EINVAL, 400, 0,
				   "invalid NVCF-POLL-SECONDS '%.64s': expected "
				   "an integer from 1 to %d",
				   value, NVCF_POLL_SECONDS_MAX);
}

bool nvcf_request_header_forwardable(const char *name)
{
	static const char *const blocked[] = {
		"authorization",     "connection",       "keep-alive",
		"proxy-connection",  "proxy-authenticate",
		"proxy-authorization", "te",             "trailer",
		"transfer-encoding", "upgrade",          "host",
		"content-length",    "function-id",      "function-version-id",
		"nvcf-poll-seconds",
	};

	if (name == NULL || *name == '\0')
		return false;
	/* The worker sets the NVCF-* request headers; callers cannot. */
	if (strncasecmp(name, "nvcf-", 5) == 0)
		return false;
	for (size_t i = 0; i < sizeof(blocked) / sizeof(blocked[0]); i++)
		if (strcasecmp(name, blocked[i]) == 0)
			return false;
	return true;
}

const char *nvcf_request_status_header(int http_status)
{
	if (http_status == 202)
		return "in-progress";
	if (http_status >= 200 && http_status < 400)
		return "fulfilled";
	return "errored";
}
