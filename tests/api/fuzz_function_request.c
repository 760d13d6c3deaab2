/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: arbitrary bytes as a create-function request body,
 * and as a deployment request body. The validators must reject anything
 * malformed with a detail, never crash, leak or read past @p size (the
 * input is not NUL-terminated).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int fuzz_expectation(const char *path, const char *name, const uint8_t *data,
		     size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char detail[NVCF_API_DETAIL_MAX];
	cJSON *out = NULL;
	bool framework = false;

	if (nvcf__api_validate_function((const char *)data, size, &out,
					detail, sizeof(detail),
					&framework) == NVCF_OK) {
		char *text = cJSON_PrintUnformatted(out);

		/* A valid request always yields the fields NVCF promises. */
		if (text == NULL || !cJSON_GetObjectItem(out, "name") ||
		    !cJSON_GetObjectItem(out, "health") ||
		    !cJSON_GetObjectItem(out, "description"))
			abort();
		free(text);
		cJSON_Delete(out);
	} else if (detail[0] == '\0') {
		abort(); /* a rejection without a detail is a bug */
	}
	if (nvcf__api_validate_deployment((const char *)data, size, &out,
					  detail, sizeof(detail)) == NVCF_OK)
		cJSON_Delete(out);
	return 0;
}

/*
 * Seeds double as regression cases: a file named "ok-*" must be accepted
 * by the create-function validator and one named "bad-*" rejected.
 */
int fuzz_expectation(const char *path, const char *name, const uint8_t *data,
		     size_t size)
{
	char detail[NVCF_API_DETAIL_MAX];
	nvcf_status st;

	detail[0] = '\0';
	st = nvcf__api_validate_function((const char *)data, size, NULL, detail,
					 sizeof(detail), NULL);
	if (strncmp(name, "ok-", 3) == 0 && st != NVCF_OK) {
		fprintf(stderr, "%s: rejected: %s\n", path, detail);
		return 1;
	}
	if (strncmp(name, "bad-", 4) == 0 && st == NVCF_OK) {
		fprintf(stderr, "%s: accepted, expected a rejection\n", path);
		return 1;
	}
	return 0;
}
