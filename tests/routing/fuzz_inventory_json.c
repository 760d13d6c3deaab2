/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target of nvcf_inventory_add_cluster_json(). tests/fuzz/fuzz_main.c
 * replays the seed corpus through it as a unit test; with -Dfuzzing=true
 * it is also built as a libFuzzer binary. Seeds whose file name starts
 * with "ok-" must decode, and seeds starting with "bad-" must be rejected.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "routing/routing_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int fuzz_expectation(const char *path, const char *name, const uint8_t *data,
		     size_t size);

static nvcf_status decode(const uint8_t *data, size_t size)
{
	nvcf_inventory *inv = NULL;
	char *text = malloc(size + 1), *json = NULL;
	nvcf_status st = NVCF_ENOMEM;

	if (text == NULL || nvcf_inventory_new(&inv) != NVCF_OK)
		goto out;
	memcpy(text, data, size);
	text[size] = '\0';
	st = nvcf_inventory_add_cluster_json(inv, text);
	if (st == NVCF_OK) {
		const nvcf_cluster_info *c = nvcf_inventory_cluster(inv, 0);
		nvcf_placement_spec spec = NVCF_PLACEMENT_SPEC_INIT;
		nvcf_route *route = NULL;

		/* A decoded record is one cluster with every string set. */
		if (nvcf_inventory_count(inv) != 1 || c == NULL ||
		    c->cluster_id == NULL || c->name == NULL ||
		    c->group == NULL || c->region == NULL)
			abort();
		if (nvcf_inventory_cluster_groups_json(inv, "acct", &json) !=
		    NVCF_OK)
			abort();
		/* Place on the record's first GPU to reach the arithmetic. */
		if (c->gpus_count > 0 && c->gpus[0].instance_types_count > 0) {
			spec.gpu = c->gpus[0].name;
			spec.instance_type = c->gpus[0].instance_types[0].name;
			spec.instance_count = 5;
			spec.now_ms = c->heartbeat_ms;
			if (nvcf_routing_place(inv, &spec, &route) != NVCF_OK)
				abort();
			for (size_t i = 0; i < nvcf_route_count(route); i++) {
				const nvcf_route_entry *e =
					nvcf_route_entry_at(route, i);

				if ((uint64_t)e->assigned * e->gpu_count >
				    e->free_gpus)
					abort();
			}
			nvcf_route_free(route);
		}
	}
out:
	nvcf_free(json);
	nvcf_inventory_free(inv);
	free(text);
	return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	decode(data, size);
	return 0;
}

int fuzz_expectation(const char *path, const char *name, const uint8_t *data,
		     size_t size)
{
	nvcf_status st = decode(data, size);

	if (strncmp(name, "ok-", 3) == 0 && st != NVCF_OK) {
		fprintf(stderr, "%s: expected NVCF_OK, got %s: %s\n", path,
			nvcf_status_name(st), nvcf_error_last()->message);
		return 1;
	}
	if (strncmp(name, "bad-", 4) == 0 && st != NVCF_EINVAL) {
		fprintf(stderr, "%s: expected NVCF_EINVAL, got %s\n", path,
			nvcf_status_name(st));
		return 1;
	}
	return 0;
}
