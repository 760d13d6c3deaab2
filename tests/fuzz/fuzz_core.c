/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target for the small parsers of outside input in the core: the
 * first byte picks the parser, the rest is its input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/keys.h"
#include "core/internal.h"
#include "nvcf.pb-c.h"
#include "nvcf/request.h"
#include "request/request_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	nvcf__key_record rec;
	uint32_t scopes;
	int64_t ms;
	char *text;
	int seconds;

	if (size < 1)
		return 0;
	text = malloc(size);
	if (text == NULL)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';

	switch (data[0] % 6) {
	case 0:
		nvcf_request_poll_seconds(text, &seconds);
		break;
	case 1:
		nvcf__duration_parse(text, &ms);
		break;
	case 2:
		nvcf__key_record_parse(text, size - 1, &rec);
		break;
	case 3:
		nvcf__scopes_parse(text, &scopes);
		nvcf_request_header_forwardable(text);
		nvcf__uuid_valid(text);
		nvcf__bearer_token(text);
		nvcf__accepts_event_stream(text);
		nvcf__accept_is_event_stream(text);
		break;
	case 4: {
		Nvcf__InvokeRequest *r =
			nvcf__invoke_request__unpack(NULL, size - 1, data + 1);

		nvcf__invoke_request__free_unpacked(r, NULL);
		break;
	}
	case 5: {
		Nvcf__InvokeResult *r =
			nvcf__invoke_result__unpack(NULL, size - 1, data + 1);

		nvcf__invoke_result__free_unpacked(r, NULL);
		break;
	}
	}
	free(text);
	return 0;
}
