/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target for nvcf_scaling_params_from_json(): whatever the input,
 * the call returns a status with a message, never leaves invalid
 * parameters behind, and parameters it accepts evaluate without error.
 * Seeds named ok-* must be accepted and bad-* rejected.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "nvcf/scaling.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int fuzz_expectation(const char *path, const char *name, const uint8_t *data,
		     size_t size);

static nvcf_status apply(const uint8_t *data, size_t size,
			 nvcf_scaling_params *p)
{
	nvcf_status st;
	char *text = malloc(size + 1);

	if (text == NULL)
		return NVCF_ENOMEM;
	memcpy(text, data, size);
	text[size] = '\0';
	st = nvcf_scaling_params_from_json(p, text);
	free(text);
	return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	nvcf_scaling_params p = NVCF_SCALING_PARAMS_INIT;
	nvcf_scaling_params before;
	nvcf_scaling_metrics m = NVCF_SCALING_METRICS_INIT;
	nvcf_scaling_decision d;
	nvcf_scaling_history *h = NULL;
	nvcf_status st;

	p.max_instances = 8;
	/* memcpy keeps padding bytes too, so memcmp below is exact. */
	memcpy(&before, &p, sizeof(p));
	st = apply(data, size, &p);
	if (st == NVCF_ENOMEM)
		return 0;
	if (st != NVCF_OK) {
		/* A rejection leaves the parameters untouched. */
		if (memcmp(&p, &before, sizeof(p)) != 0 ||
		    nvcf_error_last()->message[0] == '\0')
			abort();
		return 0;
	}
	if (nvcf_scaling_params_validate(&p) != NVCF_OK)
		abort();
	if (nvcf_scaling_history_new(&h) != NVCF_OK)
		return 0;
	m.queued = size;
	m.ready = 1;
	for (int i = 0; i < 4; i++) {
		m.now_ms = i * p.sample_interval_ms;
		if (nvcf_scaling_evaluate(&p, &m, h, &d) != NVCF_OK ||
		    d.desired > p.max_instances ||
		    d.desired < p.min_instances)
			abort();
		m.ready = d.desired;
	}
	nvcf_scaling_history_free(h);
	return 0;
}

int fuzz_expectation(const char *path, const char *name, const uint8_t *data,
		     size_t size)
{
	nvcf_scaling_params p = NVCF_SCALING_PARAMS_INIT;
	nvcf_status st = apply(data, size, &p);

	if (strncmp(name, "ok-", 3) == 0 && st != NVCF_OK) {
		fprintf(stderr, "%s: rejected: %s\n", path,
			nvcf_error_last()->message);
		return 1;
	}
	if (strncmp(name, "bad-", 4) == 0 && st == NVCF_OK) {
		fprintf(stderr, "%s: accepted, expected a rejection\n", path);
		return 1;
	}
	return 0;
}
