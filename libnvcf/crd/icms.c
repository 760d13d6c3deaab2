/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ICMSRequest: one per creation or termination order a cluster receives.
 * The reconcile step follows NVCA's syncICMSRequest with the ICMS service
 * replaced by the bus: "ACK to ICMS" is the ack of the order message, and
 * "post the instance status" is writing the instance record.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crd/crd_internal.h"

#define KIND "ICMSRequest"

/* ---- instances --------------------------------------------------------- */

static void instance_clear(nvcf_crd_icms_instance *in)
{
	free(in->id);
	free(in->status);
	free(in->last_reported_status);
	free(in->reason);
}

static nvcf_crd_icms_instance *instance_find(nvcf_crd_icms *o,
					     const char *id)
{
	for (size_t i = 0; i < o->status.instances_count; i++)
		if (strcmp(o->status.instances[i].id, id) == 0)
			return &o->status.instances[i];
	return NULL;
}

static nvcf_crd_icms_instance *instance_add(nvcf_crd_icms *o, const char *id,
					    nvcf_crd_instance_kind_t kind,
					    const char *status,
					    const char *reason)
{
	nvcf_crd_icms_status *s = &o->status;
	nvcf_crd_icms_instance *v, *in;

	v = nvcf__crd_grow(s->instances, s->instances_count, sizeof(*v));
	if (v == NULL)
		return NULL;
	s->instances = v;
	in = &v[s->instances_count];
	in->kind = kind;
	in->id = strdup(id);
	in->status = strdup(status);
	in->last_reported_status = strdup("");
	in->reason = nvcf__strdup(reason);
	if (!in->id || !in->status || !in->last_reported_status ||
	    (reason && !in->reason)) {
		instance_clear(in);
		return NULL;
	}
	s->instances_count++;
	return in;
}

/* ---- decoding ---------------------------------------------------------- */

static nvcf_status decode_spec(const cJSON *root, nvcf_crd_icms_spec *sp)
{
	const cJSON *spec = NULL, *term = NULL;
	bool creation, task;
	const char *ls_key, *other_key;
	nvcf_status st;
	int a = 0;

	if ((st = nvcf__crd_get_object(KIND, root, "spec", "spec",
				       CRD_REQUIRED, &spec)) != NVCF_OK ||
	    (st = nvcf__crd_get_string(KIND, spec, "requestId",
				       "spec.requestId", CRD_REQUIRED,
				       &sp->request_id)) != NVCF_OK)
		return st;
	if ((st = nvcf__crd_get_enum(KIND, spec, "action", "spec.action",
				     CRD_REQUIRED, &nvcf__crd_icms_actions,
				     &a)) != NVCF_OK)
		return st;
	sp->action = (nvcf_crd_icms_action_t)a;
	creation = sp->action != NVCF_CRD_ICMS_TERMINATE_INSTANCES;
	task = sp->action == NVCF_CRD_ICMS_REQUEST_INSTANCES_FOR_TASK;
	if ((st = nvcf__crd_get_string(KIND, spec, "ncaId", "spec.ncaId",
				       creation ? CRD_REQUIRED : CRD_OPTIONAL,
				       &sp->nca_id)) != NVCF_OK ||
	    (st = nvcf__crd_get_string(KIND, spec, "functionId",
				       "spec.functionId",
				       creation && !task ? CRD_REQUIRED
							 : CRD_OPTIONAL,
				       &sp->function_id)) != NVCF_OK ||
	    (st = nvcf__crd_get_string(KIND, spec, "functionVersionId",
				       "spec.functionVersionId",
				       creation && !task ? CRD_REQUIRED
							 : CRD_OPTIONAL,
				       &sp->function_version_id)) != NVCF_OK ||
	    (st = nvcf__crd_get_string(KIND, spec, "taskId", "spec.taskId",
				       task ? CRD_REQUIRED : CRD_OPTIONAL,
				       &sp->task_id)) != NVCF_OK ||
	    (st = nvcf__crd_get_string(KIND, spec, "gpu", "spec.gpu",
				       creation ? CRD_REQUIRED : CRD_OPTIONAL,
				       &sp->gpu)) != NVCF_OK ||
	    (st = nvcf__crd_get_string(KIND, spec, "instanceType",
				       "spec.instanceType",
				       creation ? CRD_REQUIRED : CRD_OPTIONAL,
				       &sp->instance_type)) != NVCF_OK ||
	    (st = nvcf__crd_get_uint(KIND, spec, "instanceCount",
				     "spec.instanceCount",
				     creation ? CRD_REQUIRED : CRD_OPTIONAL,
				     1, &sp->instance_count)) != NVCF_OK ||
	    (st = nvcf__crd_get_string(KIND, spec, "gpuSpecificationId",
				       "spec.gpuSpecificationId",
				       CRD_OPTIONAL,
				       &sp->gpu_specification_id)) != NVCF_OK ||
	    (st = nvcf__crd_get_string(KIND, spec, "deploymentId",
				       "spec.deploymentId", CRD_OPTIONAL,
				       &sp->deployment_id)) != NVCF_OK)
		return st;

	/* The launch specification's key names its kind (function or task). */
	ls_key = task ? "taskLaunchSpecification"
		      : "functionLaunchSpecification";
	other_key = task ? "functionLaunchSpecification"
			 : "taskLaunchSpecification";
	if (cJSON_GetObjectItemCaseSensitive(spec, other_key) != NULL)
		return nvcf__error_set(NVCF_EINVAL,
				       KIND " spec.%s: not allowed with "
				       "action %s: use spec.%s", other_key,
				       nvcf_crd_icms_action_name(sp->action),
				       ls_key);
	if (!creation && cJSON_GetObjectItemCaseSensitive(spec, ls_key))
		return nvcf__error_set(NVCF_EINVAL,
				       KIND " spec.%s: not allowed with "
				       "action TerminateInstances: remove it",
				       ls_key);
	st = creation ? nvcf__crd_get_raw(KIND, spec, ls_key, task
					  ? "spec.taskLaunchSpecification"
					  : "spec.functionLaunchSpecification",
					  &sp->launch_specification)
		      : NVCF_OK;
	if (st != NVCF_OK)
		return st;

	if (!creation) {
		if ((st = nvcf__crd_get_object(KIND, spec,
					       "terminationMsgInfo",
					       "spec.terminationMsgInfo",
					       CRD_REQUIRED, &term)) != NVCF_OK)
			return st;
		return nvcf__crd_get_strings(
			KIND, term, "instanceIds",
			"spec.terminationMsgInfo.instanceIds", CRD_REQUIRED,
			&sp->termination_instance_ids,
			&sp->termination_instance_ids_count);
	}
	if (cJSON_GetObjectItemCaseSensitive(spec, "terminationMsgInfo"))
		return nvcf__error_set(NVCF_EINVAL,
				       KIND " spec.terminationMsgInfo: only "
				       "allowed with action "
				       "TerminateInstances: remove it");
	return NVCF_OK;
}

static nvcf_status decode_instance(const cJSON *item, nvcf_crd_icms *o)
{
	nvcf_crd_icms_instance in = {0};
	const char *key = item->string;
	char path[160], *id = NULL;
	nvcf_status st;
	int kind = 0;

	snprintf(path, sizeof(path), "status.instances.%.64s", key);
	if (!cJSON_IsObject(item))
		return nvcf__crd_wrong_type(KIND, path, "a mapping", item);
	if (key[0] == '\0' || instance_find(o, key) != NULL)
		return nvcf__error_set(NVCF_EINVAL,
				       KIND " %s: empty or repeated instance "
				       "id: give each instance once", path);
#define SUB(k) (snprintf(path, sizeof(path), "status.instances.%.64s.%s", \
			 key, k), path)
	st = nvcf__crd_get_string(KIND, item, "id", SUB("id"), CRD_OPTIONAL,
				  &id);
	if (st == NVCF_OK && id != NULL && strcmp(id, key) != 0)
		st = nvcf__error_set(NVCF_EINVAL,
				     KIND " %s: \"%.64s\" differs from its "
				     "key: make them equal", path, id);
	free(id);
	if (st != NVCF_OK)
		return st;
	if ((st = nvcf__crd_get_enum(KIND, item, "instanceType",
				     SUB("instanceType"), CRD_OPTIONAL,
				     &nvcf__crd_instance_kinds, &kind)) !=
		    NVCF_OK)
		return st;
	if ((st = nvcf__crd_get_string(KIND, item, "status", SUB("status"),
				       CRD_OPTIONAL, &in.status)) != NVCF_OK ||
	    (st = nvcf__crd_get_string(KIND, item, "lastReportedStatus",
				       SUB("lastReportedStatus"),
				       CRD_OPTIONAL,
				       &in.last_reported_status)) != NVCF_OK ||
	    (st = nvcf__crd_get_time(KIND, item, "lastReportedTimestamp",
				     SUB("lastReportedTimestamp"),
				     &in.last_reported_ms)) != NVCF_OK ||
	    (st = nvcf__crd_get_string(KIND, item, "terminationCause",
				       SUB("terminationCause"), CRD_OPTIONAL,
				       &in.reason)) != NVCF_OK)
		goto fail;
#undef SUB
	if (instance_add(o, key, (nvcf_crd_instance_kind_t)kind,
			 in.status ? in.status : "", in.reason) == NULL) {
		st = nvcf__error_oom();
		goto fail;
	}
	{
		nvcf_crd_icms_instance *added =
			&o->status.instances[o->status.instances_count - 1];

		added->last_reported_ms = in.last_reported_ms;
		if (in.last_reported_status != NULL) {
			free(added->last_reported_status);
			added->last_reported_status = in.last_reported_status;
			in.last_reported_status = NULL;
		}
	}
fail:
	free(in.status);
	free(in.last_reported_status);
	free(in.reason);
	return st;
}

static nvcf_status decode_status(const cJSON *root, nvcf_crd_icms_status *s,
				 nvcf_crd_icms *o)
{
	const cJSON *status = NULL, *instances = NULL, *item;
	int v = (int)s->request_status;
	nvcf_status st;

	if ((st = nvcf__crd_get_object(KIND, root, "status", "status",
				       CRD_OPTIONAL, &status)) != NVCF_OK ||
	    status == NULL)
		return st;
	if ((st = nvcf__crd_get_enum(KIND, status, "requestStatus",
				     "status.requestStatus", CRD_OPTIONAL,
				     &nvcf__crd_request_statuses, &v)) !=
		    NVCF_OK)
		return st;
	s->request_status = (nvcf_crd_request_status_t)v;
	if ((st = nvcf__crd_get_time(KIND, status, "lastStatusUpdated",
				     "status.lastStatusUpdated",
				     &s->last_status_updated_ms)) != NVCF_OK ||
	    (st = nvcf__crd_get_time(KIND, status, "lastACKTimestamp",
				     "status.lastACKTimestamp",
				     &s->last_ack_ms)) != NVCF_OK ||
	    (st = nvcf__crd_get_uint(KIND, status, "reconcileErrors",
				     "status.reconcileErrors", CRD_OPTIONAL,
				     0, &s->reconcile_errors)) != NVCF_OK ||
	    (st = nvcf__crd_get_string(KIND, status, "lastReconcileError",
				       "status.lastReconcileError",
				       CRD_OPTIONAL,
				       &s->last_reconcile_error)) != NVCF_OK ||
	    (st = nvcf__crd_get_object(KIND, status, "instances",
				       "status.instances", CRD_OPTIONAL,
				       &instances)) != NVCF_OK)
		return st;
	cJSON_ArrayForEach(item, instances) {
		if ((st = decode_instance(item, o)) != NVCF_OK)
			return st;
	}
	return NVCF_OK;
}

static nvcf_status decode(const cJSON *root, void *obj)
{
	nvcf_crd_icms *o = obj;
	nvcf_status st = decode_spec(root, &o->spec);

	return st != NVCF_OK ? st : decode_status(root, &o->status, o);
}

void nvcf_crd_icms_free(nvcf_crd_icms *o)
{
	if (o == NULL)
		return;
	nvcf__crd_meta_clear(&o->metadata);
	free(o->spec.request_id);
	free(o->spec.nca_id);
	free(o->spec.function_id);
	free(o->spec.function_version_id);
	free(o->spec.task_id);
	free(o->spec.gpu);
	free(o->spec.instance_type);
	free(o->spec.gpu_specification_id);
	free(o->spec.deployment_id);
	free(o->spec.launch_specification);
	nvcf__crd_strings_free(o->spec.termination_instance_ids,
			       o->spec.termination_instance_ids_count);
	free(o->status.last_reconcile_error);
	for (size_t i = 0; i < o->status.instances_count; i++)
		instance_clear(&o->status.instances[i]);
	free(o->status.instances);
	free(o);
}

/* ---- encoding ---------------------------------------------------------- */

static bool encode_spec(cJSON *root, const nvcf_crd_icms_spec *sp)
{
	cJSON *spec = nvcf__crd_add_object(root, "spec"), *term;
	bool task = sp->action == NVCF_CRD_ICMS_REQUEST_INSTANCES_FOR_TASK;

	if (spec == NULL ||
	    !nvcf__crd_add_string(spec, "requestId", sp->request_id) ||
	    !nvcf__crd_add_string(spec, "ncaId", sp->nca_id) ||
	    !nvcf__crd_add_string(spec, "action",
				  nvcf_crd_icms_action_name(sp->action)) ||
	    !nvcf__crd_add_string(spec, "functionId", sp->function_id) ||
	    !nvcf__crd_add_string(spec, "functionVersionId",
				  sp->function_version_id) ||
	    !nvcf__crd_add_string(spec, "taskId", sp->task_id) ||
	    !nvcf__crd_add_string(spec, "gpu", sp->gpu) ||
	    !nvcf__crd_add_string(spec, "instanceType", sp->instance_type) ||
	    (sp->instance_count > 0 &&
	     !nvcf__crd_add_number(spec, "instanceCount",
				   sp->instance_count)) ||
	    !nvcf__crd_add_string(spec, "gpuSpecificationId",
				  sp->gpu_specification_id) ||
	    !nvcf__crd_add_string(spec, "deploymentId", sp->deployment_id) ||
	    !nvcf__crd_add_raw(spec, task ? "taskLaunchSpecification"
				     : "functionLaunchSpecification",
			       sp->launch_specification))
		return false;
	if (sp->action != NVCF_CRD_ICMS_TERMINATE_INSTANCES)
		return true;
	term = nvcf__crd_add_object(spec, "terminationMsgInfo");
	return term != NULL &&
	       nvcf__crd_add_strings(term, "instanceIds",
				     sp->termination_instance_ids,
				     sp->termination_instance_ids_count);
}

static bool encode_status(cJSON *root, const nvcf_crd_icms_status *s)
{
	cJSON *status, *map, *in;

	if (s->request_status == NVCF_CRD_REQUEST_NEW &&
	    s->last_status_updated_ms == 0 && s->last_ack_ms == 0 &&
	    s->reconcile_errors == 0 && s->last_reconcile_error == NULL &&
	    s->instances_count == 0)
		return true;
	status = nvcf__crd_add_object(root, "status");
	if (status == NULL ||
	    !nvcf__crd_add_string(status, "requestStatus",
				  nvcf_crd_request_status_name(
					  s->request_status)) ||
	    !nvcf__crd_add_time(status, "lastStatusUpdated",
				s->last_status_updated_ms) ||
	    !nvcf__crd_add_time(status, "lastACKTimestamp", s->last_ack_ms) ||
	    (s->reconcile_errors > 0 &&
	     !nvcf__crd_add_number(status, "reconcileErrors",
				   s->reconcile_errors)) ||
	    !nvcf__crd_add_string(status, "lastReconcileError",
				  s->last_reconcile_error))
		return false;
	if (s->instances_count == 0)
		return true;
	if ((map = nvcf__crd_add_object(status, "instances")) == NULL)
		return false;
	for (size_t i = 0; i < s->instances_count; i++) {
		const nvcf_crd_icms_instance *x = &s->instances[i];

		in = nvcf__crd_add_object(map, x->id);
		if (in == NULL || !nvcf__crd_add_string(in, "id", x->id) ||
		    !nvcf__crd_add_string(in, "instanceType",
					  nvcf_crd_instance_kind_name(
						  x->kind)) ||
		    !nvcf__crd_add_string(in, "status", x->status) ||
		    !nvcf__crd_add_string(in, "lastReportedStatus",
					  x->last_reported_status) ||
		    !nvcf__crd_add_time(in, "lastReportedTimestamp",
					x->last_reported_ms) ||
		    !nvcf__crd_add_string(in, "terminationCause", x->reason))
			return false;
	}
	return true;
}

static bool encode(cJSON *root, const void *obj)
{
	const nvcf_crd_icms *o = obj;

	return encode_spec(root, &o->spec) && encode_status(root, &o->status);
}

static bool complete(const void *obj)
{
	return ((const nvcf_crd_icms *)obj)->spec.request_id != NULL;
}

NVCF__CRD_CODEC_GLUE(nvcf_crd_icms)

static const crd_codec codec = {
	.kind = KIND,
	.api_version = NVCF_CRD_ICMS_API_VERSION,
	.version = NVCF_CRD_ICMS_VERSION,
	.size = sizeof(nvcf_crd_icms),
	.meta_offset = offsetof(nvcf_crd_icms, metadata),
	.decode = decode,
	.encode = encode,
	.free = crd_free,
	.store = crd_store,
	.complete = complete,
	.encode_needs = "object, metadata.name or spec.requestId",
	.encode_error = "out of memory, or the launch specification is not "
			"JSON",
	.reconcile_needs_name = true,
};

nvcf_status nvcf_crd_icms_from_json(nvcf_crd_icms **out, const char *text,
				    size_t len)
{
	return nvcf__crd_decode_text(&codec, out, CRD_JSON, text, len);
}

nvcf_status nvcf_crd_icms_from_yaml(nvcf_crd_icms **out, const char *text,
				    size_t len)
{
	return nvcf__crd_decode_text(&codec, out, CRD_YAML, text, len);
}

nvcf_status nvcf_crd_icms_to_json(char **out, const nvcf_crd_icms *obj)
{
	return nvcf__crd_encode_text(&codec, out, CRD_JSON, obj);
}

nvcf_status nvcf_crd_icms_to_yaml(char **out, const nvcf_crd_icms *obj)
{
	return nvcf__crd_encode_text(&codec, out, CRD_YAML, obj);
}

/* ---- reconcile --------------------------------------------------------- */

typedef struct step {
	nvcf_crd_icms *o;
	const nvcf_crd_observation *obs;
	const nvcf_crd_options *opt;
	nvcf_crd_actions *acts;
	bool moved;   /* requestStatus changed in this step */
	bool again;   /* call again at once, with the ack result */
	bool gc;      /* the object is to be deleted */
	bool oom;
} step;

static void move(step *s, nvcf_crd_request_status_t to)
{
	nvcf_log_debug("crd", "ICMSRequest %s: %s -> %s", s->o->metadata.name,
		       nvcf_crd_request_status_name(
			       s->o->status.request_status),
		       nvcf_crd_request_status_name(to));
	s->o->status.request_status = to;
	s->o->status.last_status_updated_ms = s->obs->now_ms;
	s->moved = true;
}

static nvcf_crd_action *act(step *s, nvcf_crd_action_kind_t kind,
			    const char *id, const char *state,
			    const char *reason)
{
	nvcf_crd_action *a = nvcf__crd_actions_add(s->acts, kind, id, state,
						   reason);

	if (a == NULL)
		s->oom = true;
	return a;
}

static void set_str(step *s, char **dst, const char *src)
{
	if (!nvcf__crd_set_string(dst, src))
		s->oom = true;
}

static nvcf_crd_observed_t observed(const step *s, const char *id)
{
	const nvcf_crd_observed_instance *ob =
		nvcf__crd_observed_find(s->obs, id);

	return ob ? ob->state : NVCF_CRD_OBSERVED_ABSENT;
}

static bool is_creation(const nvcf_crd_icms *o)
{
	return o->spec.action != NVCF_CRD_ICMS_TERMINATE_INSTANCES;
}

static bool is_terminated(const char *state)
{
	return strcmp(state, "terminated") == 0;
}

/* AllInstancesTerminatedAndReported; true when there are none. */
static bool all_done(const step *s)
{
	for (size_t i = 0; i < s->o->status.instances_count; i++) {
		const nvcf_crd_icms_instance *in = &s->o->status.instances[i];
		nvcf_crd_observed_t ob = observed(s, in->id);

		if (ob != NVCF_CRD_OBSERVED_ABSENT &&
		    ob != NVCF_CRD_OBSERVED_TERMINATED)
			return false;
		if (!is_terminated(in->last_reported_status))
			return false;
	}
	return true;
}

static void collect(step *s)
{
	act(s, NVCF_CRD_ACTION_GARBAGE_COLLECT, NULL, NULL, NULL);
	s->gc = true;
}

static bool wants_helm(const nvcf_crd_icms *o)
{
	cJSON *ls;
	bool helm;

	if (o->spec.launch_specification == NULL)
		return false;
	ls = cJSON_Parse(o->spec.launch_specification);
	helm = cJSON_IsObject(ls) &&
	       cJSON_GetObjectItemCaseSensitive(ls, "helmChart") != NULL &&
	       !cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(ls,
							     "helmChart"));
	cJSON_Delete(ls);
	return helm;
}

/* Folds the runtime's view into status.instances of a creation request. */
static void observe(step *s)
{
	bool task = s->o->spec.action ==
		    NVCF_CRD_ICMS_REQUEST_INSTANCES_FOR_TASK;

	for (size_t i = 0; i < s->o->status.instances_count && !s->oom; i++) {
		nvcf_crd_icms_instance *in = &s->o->status.instances[i];
		const nvcf_crd_observed_instance *ob =
			nvcf__crd_observed_find(s->obs, in->id);
		const char *reason = ob && ob->reason ? ob->reason : "failed";

		if (is_terminated(in->status))
			continue;
		switch (ob ? ob->state : NVCF_CRD_OBSERVED_ABSENT) {
		case NVCF_CRD_OBSERVED_STARTING:
			set_str(s, &in->status, "starting");
			break;
		case NVCF_CRD_OBSERVED_RUNNING:
			set_str(s, &in->status, "running");
			break;
		case NVCF_CRD_OBSERVED_SUCCEEDED:
			set_str(s, &in->status, task ? "succeeded"
						     : "running");
			break;
		case NVCF_CRD_OBSERVED_FAILED:
			/* A failed function instance is removed so that its
			 * GPUs return to the pool; a task keeps its result. */
			if (!task) {
				act(s, NVCF_CRD_ACTION_DELETE_INSTANCE,
				    in->id, NULL, reason);
				set_str(s, &in->status, "terminated");
			} else {
				set_str(s, &in->status, "failed");
			}
			set_str(s, &in->reason, reason);
			break;
		case NVCF_CRD_OBSERVED_TERMINATED:
			set_str(s, &in->status, "terminated");
			break;
		case NVCF_CRD_OBSERVED_ABSENT:
			set_str(s, &in->status, "terminated");
			set_str(s, &in->reason, "instance-not-found");
			break;
		}
	}
}

/* ApplyICMSRequestStatusChange over the observed instance states. */
static nvcf_crd_request_status_t aggregate(step *s)
{
	const nvcf_crd_icms *o = s->o;
	bool failed = false, pending = false;

	for (size_t i = 0; i < o->status.instances_count; i++) {
		switch (observed(s, o->status.instances[i].id)) {
		case NVCF_CRD_OBSERVED_FAILED:
			failed = true;
			break;
		case NVCF_CRD_OBSERVED_STARTING:
			pending = true;
			break;
		default:
			break;
		}
	}
	if (failed)
		return NVCF_CRD_REQUEST_FAILED;
	if (pending)
		return s->obs->now_ms - o->metadata.created_ms >=
				       s->opt->max_running_timeout_ms
			? NVCF_CRD_REQUEST_FAILED
			: NVCF_CRD_REQUEST_INSTANCES_IN_PROGRESS;
	return NVCF_CRD_REQUEST_COMPLETED;
}

static void aggregate_and_move(step *s)
{
	nvcf_crd_request_status_t to = aggregate(s);

	if (to == NVCF_CRD_REQUEST_FAILED) {
		bool timeout = true;

		for (size_t i = 0; i < s->o->status.instances_count; i++)
			if (observed(s, s->o->status.instances[i].id) ==
			    NVCF_CRD_OBSERVED_FAILED)
				timeout = false;
		set_str(s, &s->o->status.last_reconcile_error, timeout
			? "instances still starting after the maximum "
			  "running timeout"
			: "an instance failed");
	}
	if (to != s->o->status.request_status)
		move(s, to);
}

/* ApplyCreationMessage: create only the instances not recorded yet. */
static void apply_creation(step *s)
{
	nvcf_crd_icms *o = s->o;
	bool created = false;
	char *id;

	if (wants_helm(o)) {
		id = nvcf__asprintf("%s-miniservice", o->metadata.name);
		if (id != NULL && instance_find(o, id) == NULL) {
			nvcf_crd_action *a = act(
				s, NVCF_CRD_ACTION_CREATE_INSTANCE, id, NULL,
				NULL);

			if (a != NULL)
				a->miniservice = 1;
			if (instance_add(o, id, NVCF_CRD_INSTANCE_MINISERVICE,
					 "starting", NULL) == NULL)
				s->oom = true;
			created = true;
		}
		s->oom |= id == NULL;
		free(id);
	} else {
		for (uint32_t i = 0; i < o->spec.instance_count && !s->oom;
		     i++) {
			nvcf_crd_action *a;

			id = nvcf__asprintf("%u-%s", i, o->metadata.name);
			if (id == NULL) {
				s->oom = true;
				break;
			}
			if (instance_find(o, id) == NULL) {
				a = act(s, NVCF_CRD_ACTION_CREATE_INSTANCE, id,
					NULL, NULL);
				if (a != NULL)
					a->index = i;
				if (instance_add(o, id, NVCF_CRD_INSTANCE_POD,
						 "starting", NULL) == NULL)
					s->oom = true;
				created = true;
			}
			free(id);
		}
	}
	if (created || o->status.request_status == NVCF_CRD_REQUEST_PENDING) {
		move(s, NVCF_CRD_REQUEST_IN_PROGRESS);
		return;
	}
	aggregate_and_move(s);
}

/* ApplyTerminationMessage: delete each listed id not recorded yet. */
static void apply_termination(step *s)
{
	nvcf_crd_icms *o = s->o;
	bool deleted = false;

	for (size_t i = 0; i < o->spec.termination_instance_ids_count; i++) {
		const char *id = o->spec.termination_instance_ids[i];
		size_t n = strlen(id);
		bool ms = n > 12 && strcmp(id + n - 12, "-miniservice") == 0;

		if (instance_find(o, id) != NULL)
			continue;
		act(s, NVCF_CRD_ACTION_DELETE_INSTANCE, id, NULL,
		    "instance-terminated-by-user");
		if (instance_add(o, id, ms ? NVCF_CRD_INSTANCE_MINISERVICE
					   : NVCF_CRD_INSTANCE_POD,
				 "terminated", "instance-terminated-by-user") ==
		    NULL)
			s->oom = true;
		deleted = true;
	}
	if (deleted || o->status.request_status == NVCF_CRD_REQUEST_PENDING)
		move(s, NVCF_CRD_REQUEST_IN_PROGRESS);
	else
		move(s, NVCF_CRD_REQUEST_COMPLETED);
}

/* Writes the record of every instance whose state the store lacks. */
static void report(step *s)
{
	int64_t now = s->obs->now_ms;

	for (size_t i = 0; i < s->o->status.instances_count && !s->oom; i++) {
		nvcf_crd_icms_instance *in = &s->o->status.instances[i];
		bool changed = strcmp(in->status,
				      in->last_reported_status) != 0;
		bool settled = is_terminated(in->status) && !changed;
		bool stale = now - in->last_reported_ms >=
			     s->opt->report_interval_ms;

		if (!changed && in->last_reported_ms != 0 &&
		    (settled || !stale))
			continue;
		act(s, NVCF_CRD_ACTION_REPORT_STATUS, in->id, in->status,
		    in->reason);
		set_str(s, &in->last_reported_status, in->status);
		in->last_reported_ms = now;
	}
}

/* Placeholders so that a request that failed early still reports the
 * instances it owed, as explicit terminations. */
static void add_placeholders(step *s)
{
	nvcf_crd_icms *o = s->o;
	char *id;

	if (!is_creation(o) || o->status.instances_count > 0)
		return;
	if (wants_helm(o)) {
		id = nvcf__asprintf("%s-miniservice", o->metadata.name);
		if (id == NULL ||
		    !instance_add(o, id, NVCF_CRD_INSTANCE_MINISERVICE,
				  "starting", NULL))
			s->oom = true;
		free(id);
		return;
	}
	for (uint32_t i = 0; i < o->spec.instance_count && !s->oom; i++) {
		id = nvcf__asprintf("%u-%s", i, o->metadata.name);
		if (id == NULL ||
		    !instance_add(o, id, NVCF_CRD_INSTANCE_POD, "starting",
				  NULL))
			s->oom = true;
		free(id);
	}
}

static void step_new(step *s)
{
	nvcf_crd_icms *o = s->o;
	int64_t age = s->obs->now_ms - o->metadata.created_ms;

	if (!is_creation(o)) {
		/* Terminations are acked at once; their result does not
		 * change what happens next. */
		act(s, NVCF_CRD_ACTION_ACK_MESSAGE, NULL, NULL, NULL);
		move(s, NVCF_CRD_REQUEST_PENDING);
		return;
	}
	switch (s->obs->ack) {
	case NVCF_CRD_ACK_OK:
		o->status.last_ack_ms = s->obs->now_ms;
		move(s, NVCF_CRD_REQUEST_PENDING);
		break;
	case NVCF_CRD_ACK_NONE:
		act(s, NVCF_CRD_ACTION_ACK_MESSAGE, NULL, NULL, NULL);
		s->again = true;
		break;
	case NVCF_CRD_ACK_RETRY:
		if (age < s->opt->ack_retry_timeout_ms) {
			act(s, NVCF_CRD_ACTION_ACK_MESSAGE, NULL, NULL, NULL);
			break;
		}
		set_str(s, &o->status.last_reconcile_error,
			"the order message could not be acked within the "
			"ack retry timeout");
		move(s, NVCF_CRD_REQUEST_FAILURE_ACKNOWLEDGED);
		break;
	case NVCF_CRD_ACK_REJECTED:
	default:
		set_str(s, &o->status.last_reconcile_error,
			"the bus rejected the ack of the order message");
		move(s, NVCF_CRD_REQUEST_FAILURE_ACKNOWLEDGED);
		break;
	}
}

static void step_failure_acknowledged(step *s)
{
	nvcf_crd_icms *o = s->o;
	bool recovering = false;

	if (all_done(s)) {
		collect(s);
		return;
	}
	for (size_t i = 0; i < o->status.instances_count; i++) {
		const nvcf_crd_icms_instance *in = &o->status.instances[i];

		if (in->kind == NVCF_CRD_INSTANCE_MINISERVICE &&
		    strcmp(in->status, "running") == 0 &&
		    strcmp(in->last_reported_status, "running") == 0)
			recovering = true;
	}
	/* A Helm workload may recover on its own; a request whose instances
	 * all run again is complete after all. */
	if (recovering && is_creation(o) &&
	    aggregate(s) == NVCF_CRD_REQUEST_COMPLETED) {
		move(s, NVCF_CRD_REQUEST_COMPLETED);
		return;
	}
	if (s->obs->now_ms - o->status.last_status_updated_ms <
	    s->opt->cleanup_window_ms)
		return;
	for (size_t i = 0; i < o->status.instances_count && !s->oom; i++) {
		nvcf_crd_icms_instance *in = &o->status.instances[i];

		if (is_terminated(in->status))
			continue;
		act(s, NVCF_CRD_ACTION_DELETE_INSTANCE, in->id, NULL,
		    "instance-terminated-by-service");
		set_str(s, &in->status, "terminated");
		set_str(s, &in->reason, "instance-terminated-by-service");
	}
}

static void run_state(step *s)
{
	nvcf_crd_icms *o = s->o;
	bool creation = is_creation(o);
	int64_t since = s->obs->now_ms - o->status.last_status_updated_ms;

	switch (o->status.request_status) {
	case NVCF_CRD_REQUEST_NEW:
		step_new(s);
		break;
	case NVCF_CRD_REQUEST_PENDING:
		if (o->status.instances_count == 0 &&
		    since >= s->opt->cleanup_window_ms) {
			collect(s);
			break;
		}
		if (creation)
			apply_creation(s);
		else
			apply_termination(s);
		break;
	case NVCF_CRD_REQUEST_IN_PROGRESS:
	/* NOTE: no step enters RequestCachingInProgress (there is no model
	 * cache yet); a decoded object in it is treated as in progress. */
	case NVCF_CRD_REQUEST_CACHING_IN_PROGRESS:
		if (creation && o->status.instances_count > 0 && all_done(s))
			collect(s);
		else if (creation)
			apply_creation(s);
		else
			apply_termination(s);
		break;
	case NVCF_CRD_REQUEST_INSTANCES_IN_PROGRESS:
		if (all_done(s))
			collect(s);
		else
			aggregate_and_move(s);
		break;
	case NVCF_CRD_REQUEST_COMPLETED:
		move(s, NVCF_CRD_REQUEST_COMPLETION_ACKNOWLEDGED);
		break;
	case NVCF_CRD_REQUEST_FAILED:
		move(s, NVCF_CRD_REQUEST_FAILURE_ACKNOWLEDGED);
		break;
	case NVCF_CRD_REQUEST_COMPLETION_ACKNOWLEDGED:
		if (all_done(s))
			collect(s);
		break;
	case NVCF_CRD_REQUEST_FAILURE_ACKNOWLEDGED:
		step_failure_acknowledged(s);
		break;
	}
}

nvcf_status nvcf_crd_icms_reconcile(nvcf_crd_actions **actions_out,
				    nvcf_crd_icms *obj,
				    const nvcf_crd_observation *obs,
				    const nvcf_crd_options *opts)
{
	nvcf_crd_options opt;
	step s = {0};
	nvcf_status st;

	if ((st = nvcf__crd_reconcile_begin(&codec, actions_out, obj, obs,
					    opts, &opt, &s.acts)) != NVCF_OK)
		return st;
	s.o = obj;
	s.obs = obs;
	s.opt = &opt;

	/* Errors met applying the previous step come first. */
	if (obs->error != NULL) {
		obj->status.reconcile_errors++;
		set_str(&s, &obj->status.last_reconcile_error, obs->error);
		if (!obs->error_terminal) {
			if (!nvcf__crd_requeue(s.acts, opt.failure_requeue_ms))
				s.oom = true;
			goto done;
		}
		if (obj->status.request_status !=
			    NVCF_CRD_REQUEST_FAILURE_ACKNOWLEDGED &&
		    obj->status.request_status != NVCF_CRD_REQUEST_FAILED) {
			add_placeholders(&s);
			move(&s, NVCF_CRD_REQUEST_FAILED);
			report(&s);
			if (!nvcf__crd_requeue(s.acts, 0))
				s.oom = true;
			goto done;
		}
	}

	if (is_creation(obj) &&
	    obj->status.request_status != NVCF_CRD_REQUEST_NEW)
		observe(&s);
	run_state(&s);
	if (!s.gc) {
		report(&s);
		if (!nvcf__crd_requeue(s.acts, s.moved || s.again
					       ? 0 : opt.sync_interval_ms))
			s.oom = true;
	}
done:
	return nvcf__crd_reconcile_end(actions_out, s.acts, s.oom);
}
