/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Request validation of the control plane, kept apart from the service so
 * that fuzz targets and unit tests can drive it without a bus.
 */
#ifndef NVCF_API_INTERNAL_H
#define NVCF_API_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "core/internal.h"
#include "nvcf/routing.h"

/* Size of the detail buffers the validators fill. */
#define NVCF_API_DETAIL_MAX 768

/*
 * Validates a CreateFunctionRequest (JSON text of @p len bytes, not
 * necessarily NUL-terminated) as NVCF does.
 *
 * On success returns NVCF_OK and, when @p out is not NULL, a new object
 * holding the FunctionDto fields that the request defines, with NVCF's
 * defaults applied (health, description, functionType, apiBodyFormat);
 * the caller adds the identity fields and frees it with cJSON_Delete().
 * On a rejected request returns NVCF_EINVAL and writes into @p detail a
 * message naming the field and the rule; @p framework_out (may be NULL)
 * is set when NVCF reports that rule with problem type "about:blank".
 */
nvcf_status nvcf__api_validate_function(const char *json, size_t len,
					cJSON **out, char *detail,
					size_t detail_size,
					bool *framework_out);

/*
 * Validates the shape of a FunctionDeploymentRequest: a non-empty
 * deploymentSpecifications array whose entries have gpu, instanceType,
 * minInstances <= maxInstances, maxInstances >= 1, maxRequestConcurrency
 * in 1..16384 and not both backend and clusters. Whether a cluster offers
 * the GPU is the caller's check. On success @p specs_out (may be NULL)
 * receives a normalised copy of the specifications, each with a new
 * gpuSpecificationId and maxRequestConcurrency filled in.
 */
nvcf_status nvcf__api_validate_deployment(const char *json, size_t len,
					  cJSON **specs_out, char *detail,
					  size_t detail_size);

/*
 * Validates a gpu-specification PATCH body against the current
 * specification @p spec: returns the new minimum and maximum.
 */
nvcf_status nvcf__api_validate_patch(const char *json, size_t len,
				     const cJSON *spec, int *min_out,
				     int *max_out, char *detail,
				     size_t detail_size);

/*
 * Checks one normalised deployment specification (from
 * nvcf__api_validate_deployment()) against the clusters of @p inv with
 * nvcf_inventory_validate_spec(): NVCF_EINVAL with @p detail naming the
 * GPU, instance type, cluster, group, region or attribute that no
 * cluster offers; NVCF_ENOMEM. Health and capacity are the caller's
 * choice of inventory.
 */
nvcf_status nvcf__api_validate_placement(const nvcf_inventory *inv,
					 const cJSON *spec, char *detail,
					 size_t detail_size);

#endif /* NVCF_API_INTERNAL_H */
