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
#include "http/http.h"
#include "nvcf/routing.h"

/* Size of the detail buffers the validators fill. */
#define NVCF_API_DETAIL_MAX 768

/* Validation state: where the rejection detail goes and how NVCF types it. */
typedef struct nvcf__api_vctx {
	char *detail;
	size_t size;
	bool framework; /* problem type "about:blank" rather than none */
} nvcf__api_vctx;

/*
 * Writes "Validation failed: field=F, rejected=V, message=RULE" (V cut at
 * 256 characters, "null" for NULL) into the detail, marks it a framework
 * rejection and returns NVCF_EINVAL with the same error text.
 */
nvcf_status nvcf__api_reject(nvcf__api_vctx *c, const char *field,
			     const cJSON *v, const char *rule);

/* Writes "Invalid request: WHAT" and returns NVCF_EINVAL. */
nvcf_status nvcf__api_invalid(nvcf__api_vctx *c, const char *what);

/* Returns true when @p s is empty or white space only. */
bool nvcf__api_blank(const char *s);

/*
 * Fetches member @p field of @p obj into @p out: NULL when absent or null,
 * a rejection naming @p path when it is not a string.
 */
nvcf_status nvcf__api_opt_string(nvcf__api_vctx *c, const cJSON *obj,
				 const char *field, const char *path,
				 const cJSON **out);

/* Like nvcf__api_opt_string() but also rejects a null or blank value. */
nvcf_status nvcf__api_req_string(nvcf__api_vctx *c, const cJSON *obj,
				 const char *field, const char *path,
				 const cJSON **out);

/* Fetches an optional array member; a rejection when it is not one. */
nvcf_status nvcf__api_opt_array(nvcf__api_vctx *c, const cJSON *obj,
				const char *field, const cJSON **out);

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

/*
 * Sends @p body (taken, may be NULL) as JSON with @p status, or a 500
 * problem when it cannot be printed. Returns the status sent, so that the
 * caller can count it.
 */
unsigned int nvcf__api_send_json(nvcf__http_req *req, unsigned int status,
				 cJSON *body);

/*
 * Logs "METHOD PATH -> STATUS: DETAIL" under @p subsystem (as an error
 * from 500 on) and sends the problem with @p type (NULL for none).
 * Returns @p status.
 */
unsigned int nvcf__api_send_problemv(nvcf__http_req *req,
				     const char *subsystem,
				     unsigned int status, const char *type,
				     const char *fmt, va_list ap)
	NVCF_PRINTF(5, 0);

/*
 * Sends the error of a failed bus call: 503 when NATS is unreachable or
 * timed out, else 500. Returns the status sent.
 */
unsigned int nvcf__api_send_bus_error(nvcf__http_req *req,
				      const char *subsystem, nvcf_status st);

#endif /* NVCF_API_INTERNAL_H */
