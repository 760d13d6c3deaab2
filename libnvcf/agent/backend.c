/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

static const cyaml_schema_value_t device_schema = {
	CYAML_VALUE_UINT(CYAML_FLAG_DEFAULT, unsigned int),
};

static const cyaml_schema_field_t gpu_fields[] = {
	CYAML_FIELD_STRING_PTR("name", CYAML_FLAG_POINTER, nvcf__backend_gpu,
			       name, 1, CYAML_UNLIMITED),
	CYAML_FIELD_UINT("capacity", CYAML_FLAG_DEFAULT, nvcf__backend_gpu,
			 capacity),
	CYAML_FIELD_SEQUENCE("instanceTypes", CYAML_FLAG_POINTER,
			     nvcf__backend_gpu, instance_types,
			     &instance_type_schema, 1, CYAML_UNLIMITED),
	CYAML_FIELD_SEQUENCE("devices", CYAML_FLAG_POINTER |
			     CYAML_FLAG_OPTIONAL, nvcf__backend_gpu, devices,
			     &device_schema, 0, NVCF__GPU_CAPACITY_MAX),
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
	/* Optional because dynamic discovery can find them. */
	CYAML_FIELD_SEQUENCE("gpus", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
			     nvcf__backend_spec, gpus, &gpu_schema, 0,
			     CYAML_UNLIMITED),
	CYAML_FIELD_STRING_PTR("gpuDiscovery", CYAML_FLAG_POINTER |
			       CYAML_FLAG_OPTIONAL, nvcf__backend_spec,
			       gpu_discovery, 0, CYAML_UNLIMITED),
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
 * libcyaml reports the rejected key and its position only through its log
 * callback. The first error line becomes the message, and the backtrace
 * after it becomes a path such as spec.gpus[1].devices[0].
 */
#define YAML_FRAMES 16

typedef struct yaml_log {
	char first[256];
	char frames[YAML_FRAMES][80];
	unsigned int frame_count;
	unsigned int line, column;
	/* Whether the error is a missing field: its innermost backtrace frame
	 * names the last field present, not the missing one. */
	bool missing;
} yaml_log;

static void yaml_log_frame(yaml_log *log, const char *text)
{
	const char *at;
	char name[64];
	unsigned int entry = 0, line = 0, column = 0;
	char *frame;

	if (log->frame_count == YAML_FRAMES)
		return;
	frame = log->frames[log->frame_count];
	if ((at = strstr(text, "in mapping field '")) != NULL &&
	    sscanf(at, "in mapping field '%63[^']'", name) == 1) {
		if (log->missing) {
			log->missing = false;
			return;
		}
		snprintf(frame, sizeof(log->frames[0]), ".%s", name);
	}
	else if ((at = strstr(text, "in sequence entry '")) != NULL &&
		 sscanf(at, "in sequence entry '%u'", &entry) == 1 &&
		 entry > 0)
		/* libcyaml counts entries from 1, these messages from 0. */
		snprintf(frame, sizeof(log->frames[0]), "[%u]", entry - 1);
	else
		return;
	if (log->frame_count++ == 0 && (at = strstr(text, "(line: ")) != NULL &&
	    sscanf(at, "(line: %u, column: %u)", &line, &column) == 2) {
		log->line = line;
		log->column = column;
	}
}

static void yaml_log_fn(cyaml_log_t level, void *ctx, const char *fmt,
			va_list args)
{
	yaml_log *log = ctx;
	char text[256];
	const char *message = text;
	size_t n;

	if (level < CYAML_LOG_ERROR)
		return;
	vsnprintf(text, sizeof(text), fmt, args);
	n = strlen(text);
	while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' '))
		text[--n] = '\0';
	if (log->first[0] != '\0') {
		yaml_log_frame(log, text);
		return;
	}
	if (strncmp(message, "Load: ", 6) == 0)
		message += 6;
	snprintf(log->first, sizeof(log->first), "%s", message);
	log->missing = strncmp(message, "Missing required", 16) == 0;
}

/* Writes the backtrace as "spec.gpus[0].name (line 9, column 5)". */
static void yaml_log_where(const yaml_log *log, char *out, size_t size)
{
	size_t len = 0;

	out[0] = '\0';
	for (unsigned int i = log->frame_count; i-- > 0 && len + 1 < size;) {
		const char *frame = log->frames[i];

		if (len == 0 && frame[0] == '.')
			frame++;
		snprintf(out + len, size - len, "%s", frame);
		len = strlen(out);
	}
	if (log->line > 0 && len + 1 < size)
		snprintf(out + len, size - len, "%s(line %u, column %u)",
			 len ? " " : "", log->line, log->column);
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

static nvcf_status validate_devices(const nvcf__backend_gpu *g,
				    unsigned int i, const char *origin)
{
	bool seen[NVCF__GPU_CAPACITY_MAX] = {false};

	if (g->devices_count == 0)
		return NVCF_OK;
	if (g->devices_count != g->capacity)
		return nvcf__error_set(NVCF_EINVAL,
				       "%s: spec.gpus[%u].devices of GPU '%s' "
				       "lists %u indices for capacity %u: "
				       "list one per device", origin, i,
				       g->name, g->devices_count, g->capacity);
	for (unsigned int j = 0; j < g->devices_count; j++) {
		unsigned int device = g->devices[j];

		if (device >= NVCF__GPU_CAPACITY_MAX || seen[device])
			return nvcf__error_set(NVCF_EINVAL,
					       "%s: invalid spec.gpus[%u]."
					       "devices[%u] %u of GPU '%s': "
					       "use distinct indices below %d",
					       origin, i, j, device, g->name,
					       NVCF__GPU_CAPACITY_MAX);
		seen[device] = true;
	}
	return NVCF_OK;
}

static nvcf_status validate(const nvcf__backend *b, const char *origin)
{
	const nvcf__backend_spec *s = &b->spec;
	const char *mode = s->gpu_discovery;
	nvcf_status st;

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
	if (mode != NULL && strcasecmp(mode, "dynamic") != 0 &&
	    strcasecmp(mode, "static") != 0)
		return nvcf__error_set(NVCF_EINVAL,
				       "%s: invalid spec.gpuDiscovery '%s': "
				       "use dynamic or static", origin, mode);
	if (mode != NULL && strcasecmp(mode, "static") == 0 &&
	    s->gpus_count == 0)
		return nvcf__error_set(NVCF_EINVAL,
				       "%s: spec.gpuDiscovery is static but "
				       "spec.gpus lists no GPU: list them or "
				       "use dynamic", origin);
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
		if ((st = validate_devices(g, i, origin)) != NVCF_OK)
			return st;
	}
	return NVCF_OK;
}

static int uint_cmp(const void *a, const void *b)
{
	unsigned int x = *(const unsigned int *)a, y = *(const unsigned int *)b;

	return (x > y) - (x < y);
}

nvcf_status nvcf__backend_parse(const char *yaml, size_t len,
				const char *origin, nvcf__backend **out)
{
	yaml_log log = {{0}};
	cyaml_config_t cfg = yaml_config(&log);
	nvcf__backend *backend = NULL;
	char where[512];
	cyaml_err_t err;
	nvcf_status st;

	err = cyaml_load_data((const uint8_t *)yaml, len, &cfg,
			      &backend_schema, (cyaml_data_t **)&backend,
			      NULL);
	if (err != CYAML_OK) {
		yaml_log_where(&log, where, sizeof(where));
		return nvcf__error_set(NVCF_EINVAL,
				       "%s: invalid NVCFBackend%s%s: %s (%s)",
				       origin, where[0] ? " at " : "", where,
				       log.first[0] ? log.first :
				       cyaml_strerror(err),
				       cyaml_strerror(err));
	}
	if (backend == NULL)
		return nvcf__error_set(NVCF_EINVAL,
				       "%s: empty NVCFBackend document",
				       origin);
	if ((st = validate(backend, origin)) != NVCF_OK) {
		nvcf__backend_free(backend);
		return st;
	}
	/* Sorted because the pool hands out the lowest free index first. */
	for (unsigned int i = 0; i < backend->spec.gpus_count; i++) {
		nvcf__backend_gpu *g = &backend->spec.gpus[i];

		if (g->devices_count > 0)
			qsort(g->devices, g->devices_count,
			      sizeof(*g->devices), uint_cmp);
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
