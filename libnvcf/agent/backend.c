/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cyaml/cyaml.h>

#include "agent_internal.h"

#define BACKEND_API_VERSION "nvcf.nvidia.io/v1"
#define BACKEND_KIND "NVCFBackend"

static const cyaml_schema_field_t instance_type_fields[] = {
	CYAML_FIELD_STRING_PTR("name", CYAML_FLAG_POINTER, nvcf__instance_type,
			       name, 1, CYAML_UNLIMITED),
	CYAML_FIELD_STRING_PTR("description", CYAML_FLAG_POINTER,
			       nvcf__instance_type, description, 0,
			       CYAML_UNLIMITED),
	CYAML_FIELD_UINT("gpuCount", CYAML_FLAG_DEFAULT, nvcf__instance_type,
			 gpu_count),
	CYAML_FIELD_BOOL("default", CYAML_FLAG_DEFAULT, nvcf__instance_type,
			 is_default),
	CYAML_FIELD_END
};

static const cyaml_schema_value_t instance_type_schema = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, nvcf__instance_type,
			    instance_type_fields),
};

static const cyaml_schema_field_t gpu_fields[] = {
	CYAML_FIELD_STRING_PTR("name", CYAML_FLAG_POINTER, nvcf__backend_gpu,
			       name, 1, CYAML_UNLIMITED),
	CYAML_FIELD_UINT("capacity", CYAML_FLAG_DEFAULT, nvcf__backend_gpu,
			 capacity),
	CYAML_FIELD_SEQUENCE("instanceTypes", CYAML_FLAG_POINTER,
			     nvcf__backend_gpu, instance_types,
			     &instance_type_schema, 1, CYAML_UNLIMITED),
	CYAML_FIELD_END
};

static const cyaml_schema_value_t gpu_schema = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, nvcf__backend_gpu, gpu_fields),
};

static const cyaml_schema_value_t attribute_schema = {
	CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0, CYAML_UNLIMITED),
};

static const cyaml_schema_field_t spec_fields[] = {
	CYAML_FIELD_STRING_PTR("clusterId", CYAML_FLAG_POINTER,
			       nvcf__backend_spec, cluster_id, 1,
			       CYAML_UNLIMITED),
	CYAML_FIELD_STRING_PTR("clusterName", CYAML_FLAG_POINTER,
			       nvcf__backend_spec, cluster_name, 1,
			       CYAML_UNLIMITED),
	CYAML_FIELD_STRING_PTR("clusterGroup", CYAML_FLAG_POINTER,
			       nvcf__backend_spec, cluster_group, 1,
			       CYAML_UNLIMITED),
	CYAML_FIELD_STRING_PTR("region", CYAML_FLAG_POINTER,
			       nvcf__backend_spec, region, 1,
			       CYAML_UNLIMITED),
	CYAML_FIELD_SEQUENCE("attributes", CYAML_FLAG_POINTER,
			     nvcf__backend_spec, attributes,
			     &attribute_schema, 0, CYAML_UNLIMITED),
	CYAML_FIELD_SEQUENCE("gpus", CYAML_FLAG_POINTER, nvcf__backend_spec,
			     gpus, &gpu_schema, 1, CYAML_UNLIMITED),
	CYAML_FIELD_END
};

static const cyaml_schema_field_t meta_fields[] = {
	CYAML_FIELD_STRING_PTR("name", CYAML_FLAG_POINTER,
			       nvcf__backend_meta, name, 1, CYAML_UNLIMITED),
	CYAML_FIELD_END
};

static const cyaml_schema_field_t backend_fields[] = {
	CYAML_FIELD_STRING_PTR("apiVersion", CYAML_FLAG_POINTER,
			       nvcf__backend, api_version, 1,
			       CYAML_UNLIMITED),
	CYAML_FIELD_STRING_PTR("kind", CYAML_FLAG_POINTER, nvcf__backend,
			       kind, 1, CYAML_UNLIMITED),
	CYAML_FIELD_MAPPING("metadata", CYAML_FLAG_DEFAULT, nvcf__backend,
			    metadata, meta_fields),
	CYAML_FIELD_MAPPING("spec", CYAML_FLAG_DEFAULT, nvcf__backend, spec,
			    spec_fields),
	CYAML_FIELD_END
};

static const cyaml_schema_value_t backend_schema = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, nvcf__backend,
			    backend_fields),
};

/*
 * libcyaml reports which key it rejected only through its log callback,
 * so the first error line is kept for the returned message.
 */
typedef struct yaml_log {
	char first[256];
} yaml_log;

static void yaml_log_fn(cyaml_log_t level, void *ctx, const char *fmt,
			va_list args)
{
	yaml_log *log = ctx;
	size_t n;

	if (level < CYAML_LOG_ERROR || log->first[0] != '\0')
		return;
	vsnprintf(log->first, sizeof(log->first), fmt, args);
	n = strlen(log->first);
	while (n > 0 && (log->first[n - 1] == '\n' || log->first[n - 1] == ' '))
		log->first[--n] = '\0';
}

static cyaml_config_t yaml_config(yaml_log *log)
{
	cyaml_config_t cfg = {
		.log_fn = yaml_log_fn,
		.log_ctx = log,
		.mem_fn = cyaml_mem,
		.log_level = CYAML_LOG_ERROR,
		.flags = CYAML_CFG_DEFAULT,
	};

	return cfg;
}

void nvcf__backend_free(nvcf__backend *backend)
{
	yaml_log log = {{0}};
	cyaml_config_t cfg = yaml_config(&log);

	if (backend != NULL)
		cyaml_free(&cfg, &backend_schema, backend, 0);
}

/* Cluster ids and GPU names become NATS subject tokens and KV keys. */
static bool token_ok(const char *s)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++) {
		char c = s[n];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
	}
	return n > 0 && n <= 100;
}

static nvcf_status validate(const nvcf__backend *b, const char *origin)
{
	const nvcf__backend_spec *s = &b->spec;

	if (strcmp(b->api_version, BACKEND_API_VERSION) != 0)
		return nvcf__error_set(NVCF_EINVAL,
				       "%s: invalid apiVersion '%s': use '%s'",
				       origin, b->api_version,
				       BACKEND_API_VERSION);
	if (strcmp(b->kind, BACKEND_KIND) != 0)
		return nvcf__error_set(NVCF_EINVAL,
				       "%s: invalid kind '%s': use '%s'",
				       origin, b->kind, BACKEND_KIND);
	if (!token_ok(s->cluster_id))
		return nvcf__error_set(NVCF_EINVAL,
				       "%s: invalid spec.clusterId '%s': use "
				       "letters, digits, '-' or '_'", origin,
				       s->cluster_id);
	for (unsigned int i = 0; i < s->gpus_count; i++) {
		const nvcf__backend_gpu *g = &s->gpus[i];

		if (!token_ok(g->name))
			return nvcf__error_set(NVCF_EINVAL,
					       "%s: invalid spec.gpus[%u].name "
					       "'%s': use letters, digits, '-' "
					       "or '_'", origin, i, g->name);
		if (g->capacity < 1 || g->capacity > NVCF__GPU_CAPACITY_MAX)
			return nvcf__error_set(NVCF_EINVAL,
					       "%s: invalid spec.gpus[%u]."
					       "capacity %u of GPU '%s': use 1 "
					       "to %u", origin, i, g->capacity,
					       g->name, NVCF__GPU_CAPACITY_MAX);
		for (unsigned int j = 0; j < i; j++)
			if (strcmp(s->gpus[j].name, g->name) == 0)
				return nvcf__error_set(NVCF_EINVAL,
					"%s: duplicate GPU name '%s' in "
					"spec.gpus: name each type once",
					origin, g->name);
		for (unsigned int j = 0; j < g->instance_types_count; j++) {
			const nvcf__instance_type *t = &g->instance_types[j];

			if (t->gpu_count < 1 || t->gpu_count > g->capacity)
				return nvcf__error_set(NVCF_EINVAL,
					"%s: invalid spec.gpus[%u]."
					"instanceTypes[%u].gpuCount %u of "
					"'%s': use 1 to the capacity %u",
					origin, i, j, t->gpu_count, t->name,
					g->capacity);
		}
	}
	return NVCF_OK;
}

nvcf_status nvcf__backend_parse(const char *yaml, size_t len,
				const char *origin, nvcf__backend **out)
{
	yaml_log log = {{0}};
	cyaml_config_t cfg = yaml_config(&log);
	nvcf__backend *backend = NULL;
	cyaml_err_t err;
	nvcf_status st;

	err = cyaml_load_data((const uint8_t *)yaml, len, &cfg,
			      &backend_schema, (cyaml_data_t **)&backend,
			      NULL);
	if (err != CYAML_OK)
		return nvcf__error_set(NVCF_EINVAL,
				       "%s: invalid NVCFBackend: %s (%s)",
				       origin, log.first[0] ? log.first :
				       cyaml_strerror(err),
				       cyaml_strerror(err));
	if (backend == NULL)
		return nvcf__error_set(NVCF_EINVAL,
				       "%s: empty NVCFBackend document",
				       origin);
	if ((st = validate(backend, origin)) != NVCF_OK) {
		nvcf__backend_free(backend);
		return st;
	}
	*out = backend;
	return NVCF_OK;
}

nvcf_status nvcf__backend_load(const char *path, nvcf__backend **out)
{
	nvcf__buf data = {0};
	char chunk[4096];
	nvcf_status st = NVCF_OK;
	size_t n;
	FILE *f;

	if (path == NULL || out == NULL)
		return nvcf__error_set(NVCF_EINVAL,
				       "nvcf__backend_load: NULL argument");
	f = fopen(path, "rb");
	if (f == NULL)
		return nvcf__error_set(NVCF_ENOTFOUND,
				       "cannot open backend file '%s': %s",
				       path, strerror(errno));
	while (st == NVCF_OK && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		st = nvcf__buf_append(&data, chunk, n);
	if (st == NVCF_OK && ferror(f))
		st = nvcf__error_set(NVCF_EIO, "cannot read backend file '%s'",
				     path);
	fclose(f);
	if (st == NVCF_OK)
		st = nvcf__backend_parse(data.data ? data.data : "", data.len,
					 path, out);
	nvcf__buf_free(&data);
	return st;
}

const nvcf__instance_type *
nvcf__backend_find_type(const nvcf__backend *backend, const char *gpu,
			const char *instance_type,
			const nvcf__backend_gpu **gpu_out)
{
	for (unsigned int i = 0; i < backend->spec.gpus_count; i++) {
		const nvcf__backend_gpu *g = &backend->spec.gpus[i];

		if (gpu == NULL || strcmp(g->name, gpu) != 0)
			continue;
		for (unsigned int j = 0; j < g->instance_types_count; j++) {
			if (instance_type != NULL &&
			    strcmp(g->instance_types[j].name,
				   instance_type) == 0) {
				if (gpu_out != NULL)
					*gpu_out = g;
				return &g->instance_types[j];
			}
		}
	}
	return NULL;
}
