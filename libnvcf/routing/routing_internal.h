/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared between the files of the routing module and its unit tests.
 */
#ifndef NVCF_ROUTING_INTERNAL_H
#define NVCF_ROUTING_INTERNAL_H

#include "nvcf/routing.h"

struct nvcf_inventory {
	/*
	 * Deep copies, with the defaults of name, group, region and
	 * description filled in; the inventory owns every string and array.
	 */
	nvcf_cluster_info *clusters;
	size_t count;
	size_t cap;
};

/*
 * Parses an RFC 3339 time ("2024-05-01T12:00:00.250Z", "...+02:00") into
 * ms since the epoch. Fractions below a millisecond are dropped.
 */
nvcf_status nvcf__routing_parse_rfc3339(const char *text, int64_t *ms_out);

/* The cluster's GPU named @p gpu (case-insensitive), or NULL. */
const nvcf_gpu_info *nvcf__routing_find_gpu(const nvcf_cluster_info *c,
					    const char *gpu);

/* The GPU's instance type named @p name (case-insensitive), or NULL. */
const nvcf_instance_type_info *
nvcf__routing_find_type(const nvcf_gpu_info *g, const char *name);

/* True when @p s matches one of @p list case-insensitively. */
bool nvcf__routing_in_list(const char *const *list, size_t n, const char *s);

#endif /* NVCF_ROUTING_INTERNAL_H */
