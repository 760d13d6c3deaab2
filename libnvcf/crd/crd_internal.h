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

/* The names of an enum's values, for printing and for decoding. */
typedef struct crd_enum {
	const char *const *names;  /* indexed by value */
	size_t count;
	const char *expected;      /* the accepted names, for error messages */
} crd_enum;

extern const crd_enum nvcf__crd_icms_actions;
extern const crd_enum nvcf__crd_request_statuses;
extern const crd_enum nvcf__crd_instance_kinds;
extern const crd_enum nvcf__crd_phases;
extern const crd_enum nvcf__crd_agent_statuses;

/* Decodes the value of @p key, named as in @p e, like the decoders above. */
nvcf_status nvcf__crd_get_enum(const char *kind, const cJSON *obj,
			       const char *key, const char *path,
			       crd_need need, const crd_enum *e, int *out);

/*
 * Allocates a zeroed array with room for every element of @p arr and one
 * more, so that an empty list still allocates.
 */
void *nvcf__crd_calloc_items(const cJSON *arr, size_t size);

/* Describes @p item for an error message: its JSON text, shortened. */
void nvcf__crd_describe(const cJSON *item, char out[64]);

/* "expected X, got Y" error. */
nvcf_status nvcf__crd_wrong_type(const char *kind, const char *path,
				 const char *expected, const cJSON *got);

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
/* Appends a new object to @p arr and returns it, or NULL when out of memory. */
cJSON *nvcf__crd_add_item(cJSON *arr);

void nvcf__crd_strings_free(char **v, size_t n);

/* ---- one codec for every kind ------------------------------------------ */

typedef enum crd_form {
	CRD_JSON = 0,
	CRD_YAML = 1
} crd_form;

/*
 * The parts of a kind that differ from the other kinds. Every object starts
 * with its version and metadata, which the shared code fills and checks.
 */
typedef struct crd_codec {
	const char *kind;         /* "ICMSRequest" */
	const char *api_version;  /* of the document */
	unsigned int version;     /* of the C object */
	size_t size;              /* sizeof the C object */
	size_t meta_offset;       /* offsetof its metadata */
	/* Decodes spec and status into @p obj and checks the result. */
	nvcf_status (*decode)(const cJSON *root, void *obj);
	/* Adds spec and status to @p root, or returns false on failure. */
	bool (*encode)(cJSON *root, const void *obj);
	void (*free)(void *obj);
	/* Stores @p obj into the caller's typed pointer @p out. */
	void (*store)(void *out, void *obj);
	/* Checks the members encoding needs besides metadata.name (or NULL). */
	bool (*complete)(const void *obj);
	const char *encode_needs;  /* what must not be NULL, for the error */
	const char *encode_error;  /* why encoding fails besides memory */
	bool reconcile_needs_name; /* reconcile requires metadata.name */
} crd_codec;

/*
 * Defines crd_free() and crd_store(), the free and store members of the
 * codec of @p type (a name such as nvcf_crd_icms).
 */
#define NVCF__CRD_CODEC_GLUE(type)                                            \
	static void crd_free(void *obj)                                       \
	{                                                                     \
		type##_free(obj);                                             \
	}                                                                     \
	static void crd_store(void *out, void *obj)                           \
	{                                                                     \
		*(type **)out = obj;                                          \
	}

/*
 * Parses @p text in @p form and decodes it. On success it stores the new
 * object through @p out, a pointer to the caller's object pointer.
 */
nvcf_status nvcf__crd_decode_text(const crd_codec *c, void *out,
				  crd_form form, const char *text,
				  size_t len);
/* Encodes @p obj in @p form into a new string. */
nvcf_status nvcf__crd_encode_text(const crd_codec *c, char **out,
				  crd_form form, const void *obj);

/* ---- reconcile support ------------------------------------------------- */

/*
 * Checks the arguments every reconcile step takes, then resolves @p opts
 * into @p opt.
 */
nvcf_status nvcf__crd_reconcile_check(const crd_codec *c,
				      const void *actions_out,
				      const void *obj,
				      const nvcf_crd_observation *obs,
				      const nvcf_crd_options *opts,
				      nvcf_crd_options *opt);
/*
 * Runs nvcf__crd_reconcile_check(), then creates the action list @p acts.
 * An object without a creation time is taken as created now.
 */
nvcf_status nvcf__crd_reconcile_begin(const crd_codec *c,
				      const void *actions_out, void *obj,
				      const nvcf_crd_observation *obs,
				      const nvcf_crd_options *opts,
				      nvcf_crd_options *opt,
				      nvcf_crd_actions **acts);
/* Hands @p acts to the caller, or frees them and fails when @p oom. */
nvcf_status nvcf__crd_reconcile_end(nvcf_crd_actions **actions_out,
				    nvcf_crd_actions *acts, bool oom);
/*
 * Grows @p items (@p count elements of @p size) by one zeroed element.
 * Returns the new array, or NULL with @p items untouched.
 */
void *nvcf__crd_grow(void *items, size_t count, size_t size);

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
