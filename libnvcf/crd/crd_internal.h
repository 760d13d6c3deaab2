/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers shared by the three custom resources: the YAML <-> cJSON bridge,
 * field decoders that name the failing field, metadata, action lists.
 */
#ifndef NVCF_CRD_INTERNAL_H
#define NVCF_CRD_INTERNAL_H

#include <cjson/cJSON.h>

#include "core/internal.h"
#include "nvcf/crd.h"

/* ---- documents --------------------------------------------------------- */

/*
 * Parses one YAML document into a cJSON tree. Plain scalars that read as
 * integers, floats, true/false or null become those; everything else is a
 * string. @p kind names the object in error messages.
 */
nvcf_status nvcf__crd_yaml_parse(const char *text, size_t len,
				 const char *kind, cJSON **out);

/* Parses JSON text into a cJSON tree. */
nvcf_status nvcf__crd_json_parse(const char *text, size_t len,
				 const char *kind, cJSON **out);

/* Prints @p tree as a YAML document into a new string. */
nvcf_status nvcf__crd_yaml_print(const cJSON *tree, char **out);

/* Prints @p tree as compact JSON into a new string. */
nvcf_status nvcf__crd_json_print(const cJSON *tree, char **out);

/* ---- decoding ---------------------------------------------------------- */

typedef enum crd_need {
	CRD_OPTIONAL = 0,
	CRD_REQUIRED = 1
} crd_need;

/* Checks apiVersion and kind of a document root. */
nvcf_status nvcf__crd_check_header(const cJSON *root, const char *kind,
				   const char *api_version);

/*
 * Each decoder looks up @p key in @p obj (a cJSON object, or NULL), names
 * the field as @p path in errors, and leaves the output untouched when
 * the key is absent or null and the field is optional.
 */
nvcf_status nvcf__crd_get_object(const char *kind, const cJSON *obj,
				 const char *key, const char *path,
				 crd_need need, const cJSON **out);
nvcf_status nvcf__crd_get_array(const char *kind, const cJSON *obj,
				const char *key, const char *path,
				crd_need need, const cJSON **out);
nvcf_status nvcf__crd_get_string(const char *kind, const cJSON *obj,
				 const char *key, const char *path,
				 crd_need need, char **out);
nvcf_status nvcf__crd_get_uint(const char *kind, const cJSON *obj,
			       const char *key, const char *path,
			       crd_need need, uint32_t min, uint32_t *out);
nvcf_status nvcf__crd_get_int64(const char *kind, const cJSON *obj,
				const char *key, const char *path,
				int64_t *out);
nvcf_status nvcf__crd_get_bool(const char *kind, const cJSON *obj,
			       const char *key, const char *path, bool *out);
nvcf_status nvcf__crd_get_time(const char *kind, const cJSON *obj,
			       const char *key, const char *path,
			       int64_t *ms_out);
/* Any JSON value, kept as compact JSON text. */
nvcf_status nvcf__crd_get_raw(const char *kind, const cJSON *obj,
			      const char *key, const char *path, char **out);
/* A sequence of strings. */
nvcf_status nvcf__crd_get_strings(const char *kind, const cJSON *obj,
				  const char *key, const char *path,
				  crd_need need, char ***out, size_t *count);

/* Describes @p item for an error message: its JSON text, shortened. */
void nvcf__crd_describe(const cJSON *item, char out[64]);

/* "missing field X" error. */
nvcf_status nvcf__crd_missing(const char *kind, const char *path,
			      const char *expected);

/* Parses an RFC 3339 time into ms since the epoch. */
nvcf_status nvcf__crd_time_parse(const char *text, int64_t *ms_out);

/* ---- metadata ---------------------------------------------------------- */

nvcf_status nvcf__crd_meta_decode(const char *kind, const cJSON *root,
				  nvcf_crd_meta *meta);
/* Adds "metadata" to @p root; false on allocation failure. */
bool nvcf__crd_meta_encode(cJSON *root, const nvcf_crd_meta *meta);
void nvcf__crd_meta_clear(nvcf_crd_meta *meta);

/* ---- encoding ---------------------------------------------------------- */

/* Adds a string member when @p value is not NULL. */
bool nvcf__crd_add_string(cJSON *obj, const char *key, const char *value);
/* Adds an RFC 3339 time member when @p ms is not 0. */
bool nvcf__crd_add_time(cJSON *obj, const char *key, int64_t ms);
/* Adds a number member. */
bool nvcf__crd_add_number(cJSON *obj, const char *key, double value);
/* Adds a member parsed from compact JSON when @p json is not NULL. */
bool nvcf__crd_add_raw(cJSON *obj, const char *key, const char *json);
/* Adds a sequence of strings. */
bool nvcf__crd_add_strings(cJSON *obj, const char *key, char *const *v,
			   size_t n);
/* Returns a new object under @p key, or NULL on allocation failure. */
cJSON *nvcf__crd_add_object(cJSON *obj, const char *key);

void nvcf__crd_strings_free(char **v, size_t n);

/* ---- reconcile support ------------------------------------------------- */

/* Resolved options: every member set, versions checked. */
nvcf_status nvcf__crd_options_resolve(const nvcf_crd_options *in,
				      nvcf_crd_options *out);
nvcf_status nvcf__crd_observation_check(const nvcf_crd_observation *obs);

nvcf_crd_actions *nvcf__crd_actions_new(void);
/* Appends an action; the strings are copied. NULL on allocation failure. */
nvcf_crd_action *nvcf__crd_actions_add(nvcf_crd_actions *list,
				       nvcf_crd_action_kind_t kind,
				       const char *instance_id,
				       const char *state, const char *reason);
bool nvcf__crd_requeue(nvcf_crd_actions *list, int64_t after_ms);

/* The observed entry of @p id, or NULL (absent). */
const nvcf_crd_observed_instance *
nvcf__crd_observed_find(const nvcf_crd_observation *obs, const char *id);

/* Replaces *dst with a copy of @p src; false on allocation failure. */
bool nvcf__crd_set_string(char **dst, const char *src);

#endif /* NVCF_CRD_INTERNAL_H */
