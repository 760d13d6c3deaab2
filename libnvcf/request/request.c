/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/internal.h"
#include "nvcf/request.h"
#include "request/request_internal.h"

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

#define EVENT_STREAM "text/event-stream"

static bool blank(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * True when the parameters in [p, end) of one Accept element contain a
 * quality of zero ("q=0", "q=0.000"), which HTTP quality values define
 * as "not acceptable" (RFC 7231).
 */
static bool quality_zero(const char *p, const char *end)
{
	while (p < end) {
		const char *param = memchr(p, ';', (size_t)(end - p));

		if (param == NULL)
			return false;
		p = param + 1;
		while (p < end && blank(*p))
			p++;
		if (p >= end || (*p != 'q' && *p != 'Q'))
			continue;
		p++;
		while (p < end && blank(*p))
			p++;
		if (p >= end || *p != '=')
			continue;
		p++;
		while (p < end && blank(*p))
			p++;
		if (p >= end || *p != '0')
			return false;
		while (p < end && (*p == '0' || *p == '.'))
			p++;
		while (p < end && blank(*p))
			p++;
		return p == end || *p == ';';
	}
	return false;
}

bool nvcf__accepts_event_stream(const char *accept)
{
	const size_t want = strlen(EVENT_STREAM);
	const char *p = accept;

	if (p == NULL)
		return false;
	for (;;) {
		const char *end = p + strcspn(p, ",");
		const char *type = p, *type_end;

		while (type < end && blank(*type))
			type++;
		type_end = type;
		while (type_end < end && *type_end != ';' && !blank(*type_end))
			type_end++;
		if ((size_t)(type_end - type) == want &&
		    strncasecmp(type, EVENT_STREAM, want) == 0 &&
		    !quality_zero(type_end, end))
			return true;
		if (*end == '\0')
			return false;
		p = end + 1;
	}
}

bool nvcf__accept_is_event_stream(const char *accept)
{
	const size_t want = strlen(EVENT_STREAM);
	size_t len;

	if (accept == NULL)
		return false;
	while (blank(*accept))
		accept++;
	len = strlen(accept);
	while (len > 0 && blank(accept[len - 1]))
		len--;
	return len == want && strncasecmp(accept, EVENT_STREAM, want) == 0;
}
