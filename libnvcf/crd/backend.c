/* SPDX-License-Identifier: Apache-2.0 */
/*
 * NVCFBackend: the cluster's own description. Its spec keeps the shape of
 * the agent's backend file. Its status records whether the agent is alive
 * and how many GPUs of each type are in use.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crd/crd_internal.h"

#define KIND "NVCFBackend"

static void gpu_clear(nvcf_crd_backend_gpu *g)
{
	free(g->name);
	for (size_t i = 0; i < g->instance_types_count; i++) {
		free(g->instance_types[i].name);
		free(g->instance_types[i].description);
	}
	free(g->instance_types);
}

static void usage_free(nvcf_crd_gpu_usage *u, size_t n)
{
	for (size_t i = 0; u != NULL && i < n; i++)
		free(u[i].gpu);
	free(u);
}

void nvcf_crd_backend_free(nvcf_crd_backend *o)
{
	if (o == NULL)
		return;
	nvcf__crd_meta_clear(&o->metadata);
	free(o->spec.cluster_id);
	free(o->spec.cluster_name);
	free(o->spec.cluster_group);
	free(o->spec.region);
	nvcf__crd_strings_free(o->spec.attributes, o->spec.attributes_count);
	for (size_t i = 0; i < o->spec.gpus_count; i++)
		gpu_clear(&o->spec.gpus[i]);
	free(o->spec.gpus);
	usage_free(o->status.gpu_usage, o->status.gpu_usage_count);
	free(o);
}

/* ---- validation -------------------------------------------------------- */

/* Cluster ids and GPU names become NATS subject tokens and KV keys. */
static bool token_ok(const char *s)
{
	size_t n = 0;

	for (; s != NULL && s[n] != '\0'; n++) {
		char c = s[n];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
	}
	return n > 0 && n <= 100;
}

nvcf_status nvcf_crd_backend_validate(const nvcf_crd_backend *o)
{
	const nvcf_crd_backend_spec *s;

	if (o == NULL)
		return nvcf__error_set(NVCF_EINVAL, KIND ": object is NULL");
	s = &o->spec;
	if (!token_ok(s->cluster_id))
		return nvcf__error_set(NVCF_EINVAL,
				       KIND " spec.clusterId: expected "
				       "letters, digits, '-' or '_' "
				       "(1 to 100), got \"%.100s\"",
				       s->cluster_id ? s->cluster_id : "");
	for (size_t i = 0; i < s->gpus_count; i++) {
		const nvcf_crd_backend_gpu *g = &s->gpus[i];

		if (!token_ok(g->name))
			return nvcf__error_set(NVCF_EINVAL,
					       KIND " spec.gpus[%zu].name: "
					       "expected letters, digits, '-' "
					       "or '_' (1 to 100), got "
					       "\"%.100s\"", i,
					       g->name ? g->name : "");
		for (size_t j = 0; j < i; j++)
			if (strcmp(s->gpus[j].name, g->name) == 0)
				return nvcf__error_set(
					NVCF_EINVAL,
					KIND " spec.gpus[%zu].name: GPU "
					"\"%s\" is listed twice: name each "
					"type once", i, g->name);
		for (size_t j = 0; j < g->instance_types_count; j++) {
			const nvcf_crd_instance_type *t =
				&g->instance_types[j];

			/* Capacity 0 (every node cordoned) keeps the GPU's
			 * instance types so that they come back with it. */
			if (t->gpu_count < 1 ||
			    (g->capacity > 0 && t->gpu_count > g->capacity))
				return nvcf__error_set(
					NVCF_EINVAL,
					KIND " spec.gpus[%zu].instanceTypes"
					"[%zu].gpuCount: expected 1 to the "
					"capacity %u of GPU \"%s\", got %u",
					i, j, g->capacity, g->name,
					t->gpu_count);
			for (size_t k = 0; k < s->gpus_count; k++)
				for (size_t m = 0;
				     m < s->gpus[k].instance_types_count;
				     m++) {
					if ((k == i && m == j) ||
					    (k > i || (k == i && m > j)))
						continue;
					if (strcmp(s->gpus[k].instance_types[m]
							   .name, t->name) == 0)
						return nvcf__error_set(
							NVCF_EINVAL,
							KIND " spec.gpus[%zu]."
							"instanceTypes[%zu]."
							"name: \"%s\" is "
							"listed twice: name "
							"each type once", i, j,
							t->name);
				}
		}
	}
	return NVCF_OK;
}

/* ---- decoding ---------------------------------------------------------- */

static nvcf_status decode_gpu(const cJSON *item, size_t i,
			      nvcf_crd_backend_gpu *g)
{
	const cJSON *types = NULL, *t;
	char path[128];
	nvcf_status st;
	size_t j = 0;

#define SUB(...) (snprintf(path, sizeof(path), __VA_ARGS__), path)
	if (!cJSON_IsObject(item))
		return nvcf__error_set(NVCF_EINVAL,
				       KIND " spec.gpus[%zu]: expected a "
				       "mapping", i);
	if ((st = nvcf__crd_get_string(KIND, item, "name",
				       SUB("spec.gpus[%zu].name", i),
				       CRD_REQUIRED, &g->name)) != NVCF_OK ||
	    (st = nvcf__crd_get_uint(KIND, item, "capacity",
				     SUB("spec.gpus[%zu].capacity", i),
				     CRD_REQUIRED, 0, &g->capacity)) !=
		    NVCF_OK ||
	    (st = nvcf__crd_get_array(KIND, item, "instanceTypes",
				      SUB("spec.gpus[%zu].instanceTypes", i),
				      CRD_REQUIRED, &types)) != NVCF_OK)
		return st;
	if (cJSON_GetArraySize(types) == 0)
		return nvcf__error_set(NVCF_EINVAL,
				       KIND " spec.gpus[%zu].instanceTypes: "
				       "expected at least one instance type, "
				       "got []", i);
	g->instance_types = nvcf__crd_calloc_items(types,
						   sizeof(*g->instance_types));
	if (g->instance_types == NULL)
		return nvcf__error_oom();
	cJSON_ArrayForEach(t, types) {
		nvcf_crd_instance_type *it = &g->instance_types[j];

		g->instance_types_count = j + 1;
		if (!cJSON_IsObject(t))
			return nvcf__error_set(
				NVCF_EINVAL,
				KIND " spec.gpus[%zu].instanceTypes[%zu]: "
				"expected a mapping", i, j);
		if ((st = nvcf__crd_get_string(
			     KIND, t, "name",
			     SUB("spec.gpus[%zu].instanceTypes[%zu].name", i,
				 j), CRD_REQUIRED, &it->name)) != NVCF_OK ||
		    (st = nvcf__crd_get_string(
			     KIND, t, "description",
			     SUB("spec.gpus[%zu].instanceTypes[%zu]."
				 "description", i, j), CRD_OPTIONAL,
			     &it->description)) != NVCF_OK ||
		    (st = nvcf__crd_get_uint(
			     KIND, t, "gpuCount",
			     SUB("spec.gpus[%zu].instanceTypes[%zu].gpuCount",
				 i, j), CRD_REQUIRED, 1, &it->gpu_count)) !=
			    NVCF_OK ||
		    (st = nvcf__crd_get_bool(
			     KIND, t, "default",
			     SUB("spec.gpus[%zu].instanceTypes[%zu].default",
				 i, j), &it->is_default)) != NVCF_OK)
			return st;
		j++;
	}
#undef SUB
	return NVCF_OK;
}

static nvcf_status decode_spec(const cJSON *root, nvcf_crd_backend_spec *sp)
{
	const cJSON *spec = NULL, *gpus = NULL, *item;
	nvcf_status st;

	if ((st = nvcf__crd_get_object(KIND, root, "spec", "spec",
				       CRD_REQUIRED, &spec)) != NVCF_OK ||
	    (st = nvcf__crd_get_string(KIND, spec, "clusterId",
				       "spec.clusterId", CRD_REQUIRED,
				       &sp->cluster_id)) != NVCF_OK ||
	    (st = nvcf__crd_get_string(KIND, spec, "clusterName",
				       "spec.clusterName", CRD_REQUIRED,
				       &sp->cluster_name)) != NVCF_OK ||
	    (st = nvcf__crd_get_string(KIND, spec, "clusterGroup",
				       "spec.clusterGroup", CRD_REQUIRED,
				       &sp->cluster_group)) != NVCF_OK ||
	    (st = nvcf__crd_get_string(KIND, spec, "region", "spec.region",
				       CRD_REQUIRED, &sp->region)) !=
		    NVCF_OK ||
	    (st = nvcf__crd_get_strings(KIND, spec, "attributes",
					"spec.attributes", CRD_OPTIONAL,
					&sp->attributes,
					&sp->attributes_count)) != NVCF_OK ||
	    (st = nvcf__crd_get_array(KIND, spec, "gpus", "spec.gpus",
				      CRD_REQUIRED, &gpus)) != NVCF_OK)
		return st;
	if (cJSON_GetArraySize(gpus) == 0)
		return nvcf__error_set(NVCF_EINVAL,
				       KIND " spec.gpus: expected at least "
				       "one GPU type, got []");
	sp->gpus = nvcf__crd_calloc_items(gpus, sizeof(*sp->gpus));
	if (sp->gpus == NULL)
		return nvcf__error_oom();
	cJSON_ArrayForEach(item, gpus) {
		size_t i = sp->gpus_count++;

		if ((st = decode_gpu(item, i, &sp->gpus[i])) != NVCF_OK)
			return st;
	}
	return NVCF_OK;
}

static nvcf_status decode_status(const cJSON *root,
				 nvcf_crd_backend_status *s)
{
	const cJSON *status = NULL, *usage = NULL, *item;
	int agent = (int)s->agent_status;
	char path[128];
	nvcf_status st;

	if ((st = nvcf__crd_get_object(KIND, root, "status", "status",
				       CRD_OPTIONAL, &status)) != NVCF_OK ||
	    status == NULL)
		return st;
	if ((st = nvcf__crd_get_enum(KIND, status, "agentStatus",
				     "status.agentStatus", CRD_OPTIONAL,
				     &nvcf__crd_agent_statuses, &agent)) !=
		    NVCF_OK)
		return st;
	s->agent_status = (nvcf_crd_agent_status_t)agent;
	if ((st = nvcf__crd_get_time(KIND, status, "lastUpdatedAgentStatus",
				     "status.lastUpdatedAgentStatus",
				     &s->last_updated_agent_status_ms)) !=
		    NVCF_OK ||
	    (st = nvcf__crd_get_object(KIND, status, "gpuUsage",
				       "status.gpuUsage", CRD_OPTIONAL,
				       &usage)) != NVCF_OK ||
	    usage == NULL)
		return st;
	s->gpu_usage = nvcf__crd_calloc_items(usage, sizeof(*s->gpu_usage));
	if (s->gpu_usage == NULL)
		return nvcf__error_oom();
	cJSON_ArrayForEach(item, usage) {
		nvcf_crd_gpu_usage *u = &s->gpu_usage[s->gpu_usage_count++];

#define SUB(k) (snprintf(path, sizeof(path), "status.gpuUsage.%.64s.%s", \
			 item->string, k), path)
		if ((u->gpu = strdup(item->string)) == NULL)
			return nvcf__error_oom();
		if (!cJSON_IsObject(item))
			return nvcf__error_set(NVCF_EINVAL,
					       KIND " status.gpuUsage.%.64s: "
					       "expected a mapping",
					       item->string);
		if ((st = nvcf__crd_get_uint(KIND, item, "capacity",
					     SUB("capacity"), CRD_OPTIONAL, 0,
					     &u->capacity)) != NVCF_OK ||
		    (st = nvcf__crd_get_uint(KIND, item, "allocated",
					     SUB("allocated"), CRD_OPTIONAL,
					     0, &u->allocated)) != NVCF_OK ||
		    (st = nvcf__crd_get_uint(KIND, item, "available",
					     SUB("available"), CRD_OPTIONAL,
					     0, &u->available)) != NVCF_OK)
			return st;
#undef SUB
	}
	return NVCF_OK;
}

static nvcf_status decode(const cJSON *root, void *obj)
{
	nvcf_crd_backend *o = obj;
	nvcf_status st;

	if ((st = decode_spec(root, &o->spec)) != NVCF_OK ||
	    (st = decode_status(root, &o->status)) != NVCF_OK)
		return st;
	return nvcf_crd_backend_validate(o);
}

/* ---- encoding ---------------------------------------------------------- */

static bool encode(cJSON *root, const void *obj)
{
	const nvcf_crd_backend *o = obj;
	const nvcf_crd_backend_spec *sp = &o->spec;
	const nvcf_crd_backend_status *s = &o->status;
	cJSON *spec, *gpus, *g, *types, *t, *status, *usage, *u;

	spec = nvcf__crd_add_object(root, "spec");
	if (spec == NULL ||
	    !nvcf__crd_add_string(spec, "clusterId", sp->cluster_id) ||
	    !nvcf__crd_add_string(spec, "clusterName", sp->cluster_name) ||
	    !nvcf__crd_add_string(spec, "clusterGroup", sp->cluster_group) ||
	    !nvcf__crd_add_string(spec, "region", sp->region) ||
	    !nvcf__crd_add_strings(spec, "attributes", sp->attributes,
				   sp->attributes_count) ||
	    (gpus = cJSON_AddArrayToObject(spec, "gpus")) == NULL)
		return false;
	for (size_t i = 0; i < sp->gpus_count; i++) {
		if ((g = nvcf__crd_add_item(gpus)) == NULL ||
		    !nvcf__crd_add_string(g, "name", sp->gpus[i].name) ||
		    !nvcf__crd_add_number(g, "capacity",
					  sp->gpus[i].capacity) ||
		    (types = cJSON_AddArrayToObject(g, "instanceTypes")) ==
			    NULL)
			return false;
		for (size_t j = 0; j < sp->gpus[i].instance_types_count; j++) {
			const nvcf_crd_instance_type *x =
				&sp->gpus[i].instance_types[j];

			if ((t = nvcf__crd_add_item(types)) == NULL ||
			    !nvcf__crd_add_string(t, "name", x->name) ||
			    !nvcf__crd_add_string(t, "description",
						  x->description) ||
			    !nvcf__crd_add_number(t, "gpuCount",
						  x->gpu_count) ||
			    !cJSON_AddBoolToObject(t, "default",
						   x->is_default))
				return false;
		}
	}
	if (s->agent_status == NVCF_CRD_AGENT_UNKNOWN &&
	    s->last_updated_agent_status_ms == 0 && s->gpu_usage_count == 0)
		return true;
	status = nvcf__crd_add_object(root, "status");
	if (status == NULL ||
	    !nvcf__crd_add_string(status, "agentStatus",
				  nvcf_crd_agent_status_name(
					  s->agent_status)) ||
	    !nvcf__crd_add_time(status, "lastUpdatedAgentStatus",
				s->last_updated_agent_status_ms))
		return false;
	if (s->gpu_usage_count == 0)
		return true;
	if ((usage = nvcf__crd_add_object(status, "gpuUsage")) == NULL)
		return false;
	for (size_t i = 0; i < s->gpu_usage_count; i++) {
		const nvcf_crd_gpu_usage *x = &s->gpu_usage[i];

		if ((u = nvcf__crd_add_object(usage, x->gpu)) == NULL ||
		    !nvcf__crd_add_number(u, "capacity", x->capacity) ||
		    !nvcf__crd_add_number(u, "allocated", x->allocated) ||
		    !nvcf__crd_add_number(u, "available", x->available))
			return false;
	}
	return true;
}

NVCF__CRD_CODEC_GLUE(nvcf_crd_backend)

static const crd_codec codec = {
	.kind = KIND,
	.api_version = NVCF_CRD_BACKEND_API_VERSION,
	.version = NVCF_CRD_BACKEND_VERSION,
	.size = sizeof(nvcf_crd_backend),
	.meta_offset = offsetof(nvcf_crd_backend, metadata),
	.decode = decode,
	.encode = encode,
	.free = crd_free,
	.store = crd_store,
	.encode_needs = "object or metadata.name",
};

nvcf_status nvcf_crd_backend_from_json(nvcf_crd_backend **out,
				       const char *text, size_t len)
{
	return nvcf__crd_decode_text(&codec, out, CRD_JSON, text, len);
}

nvcf_status nvcf_crd_backend_from_yaml(nvcf_crd_backend **out,
				       const char *text, size_t len)
{
	return nvcf__crd_decode_text(&codec, out, CRD_YAML, text, len);
}

nvcf_status nvcf_crd_backend_to_json(char **out, const nvcf_crd_backend *obj)
{
	return nvcf__crd_encode_text(&codec, out, CRD_JSON, obj);
}

nvcf_status nvcf_crd_backend_to_yaml(char **out, const nvcf_crd_backend *obj)
{
	return nvcf__crd_encode_text(&codec, out, CRD_YAML, obj);
}

/* ---- reconcile --------------------------------------------------------- */

nvcf_status nvcf_crd_backend_reconcile(nvcf_crd_actions **actions_out,
				       nvcf_crd_backend *obj,
				       const nvcf_crd_observation *obs,
				       const nvcf_crd_options *opts)
{
	nvcf_crd_backend_status *s;
	nvcf_crd_agent_status_t agent;
	nvcf_crd_gpu_usage *usage;
	nvcf_crd_actions *acts;
	nvcf_crd_options opt;
	bool changed;
	nvcf_status st;

	if ((st = nvcf__crd_reconcile_check(&codec, actions_out, obj, obs,
					    opts, &opt)) != NVCF_OK ||
	    (st = nvcf_crd_backend_validate(obj)) != NVCF_OK)
		return st;
	s = &obj->status;

	if (obs->heartbeat_ms == 0)
		agent = NVCF_CRD_AGENT_UNKNOWN;
	else if (obs->now_ms - obs->heartbeat_ms < opt.heartbeat_timeout_ms)
		agent = NVCF_CRD_AGENT_HEALTHY;
	else
		agent = NVCF_CRD_AGENT_UNHEALTHY;

	usage = calloc(obj->spec.gpus_count + 1, sizeof(*usage));
	if (usage == NULL)
		return nvcf__error_oom();
	for (size_t i = 0; i < obj->spec.gpus_count; i++) {
		const nvcf_crd_backend_gpu *g = &obj->spec.gpus[i];

		usage[i].capacity = g->capacity;
		for (size_t j = 0; j < obs->allocations_count; j++)
			if (obs->allocations[j].gpu != NULL &&
			    strcmp(obs->allocations[j].gpu, g->name) == 0)
				usage[i].allocated +=
					obs->allocations[j].allocated;
		usage[i].available = usage[i].allocated < g->capacity
			? g->capacity - usage[i].allocated : 0;
		if ((usage[i].gpu = strdup(g->name)) == NULL) {
			usage_free(usage, i);
			return nvcf__error_oom();
		}
	}

	changed = agent != s->agent_status ||
		  s->gpu_usage_count != obj->spec.gpus_count;
	for (size_t i = 0; !changed && i < s->gpu_usage_count; i++)
		changed = strcmp(usage[i].gpu, s->gpu_usage[i].gpu) != 0 ||
			  usage[i].capacity != s->gpu_usage[i].capacity ||
			  usage[i].allocated != s->gpu_usage[i].allocated ||
			  usage[i].available != s->gpu_usage[i].available;

	if ((acts = nvcf__crd_actions_new()) == NULL ||
	    (changed && !nvcf__crd_actions_add(acts,
					       NVCF_CRD_ACTION_REPORT_STATUS,
					       NULL, NULL, NULL)) ||
	    !nvcf__crd_requeue(acts, opt.sync_interval_ms)) {
		usage_free(usage, obj->spec.gpus_count);
		nvcf_crd_actions_free(acts);
		return nvcf__error_oom();
	}
	if (agent != s->agent_status)
		s->last_updated_agent_status_ms = obs->now_ms;
	s->agent_status = agent;
	usage_free(s->gpu_usage, s->gpu_usage_count);
	s->gpu_usage = usage;
	s->gpu_usage_count = obj->spec.gpus_count;
	*actions_out = acts;
	return NVCF_OK;
}
