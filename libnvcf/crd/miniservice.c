/* SPDX-License-Identifier: Apache-2.0 */
/*
 * MiniService: a Helm function or task rendered to a group of pods. The
 * reconcile step follows NVCA's miniservice controller: install, then
 * follow the pods, with a short backoff before object failures become
 * terminal.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crd/crd_internal.h"

#define KIND "MiniService"

nvcf_crd_observed_t nvcf_crd_phase_observed(nvcf_crd_phase_t phase)
{
	switch (phase) {
	case NVCF_CRD_PHASE_RUNNING:
		return NVCF_CRD_OBSERVED_RUNNING;
	case NVCF_CRD_PHASE_COMPLETED:
		return NVCF_CRD_OBSERVED_SUCCEEDED;
	case NVCF_CRD_PHASE_INSTALL_FAILED:
	case NVCF_CRD_PHASE_FAILED:
		return NVCF_CRD_OBSERVED_FAILED;
	default:
		return NVCF_CRD_OBSERVED_STARTING;
	}
}

static void condition_clear(nvcf_crd_condition *c)
{
	free(c->type);
	free(c->status);
	free(c->reason);
	free(c->message);
}

void nvcf_crd_miniservice_free(nvcf_crd_miniservice *o)
{
	if (o == NULL)
		return;
	nvcf__crd_meta_clear(&o->metadata);
	free(o->spec.namespace_name);
	free(o->spec.icms_request_name);
	free(o->spec.chart_url);
	free(o->spec.service_name);
	free(o->spec.values);
	for (size_t i = 0; i < o->status.conditions_count; i++)
		condition_clear(&o->status.conditions[i]);
	free(o->status.conditions);
	free(o);
}

/* ---- decoding ---------------------------------------------------------- */

static nvcf_status decode_spec(const cJSON *root, nvcf_crd_miniservice_spec *sp)
{
	const cJSON *spec = NULL, *helm = NULL;
	nvcf_status st;

	if ((st = nvcf__crd_get_object(KIND, root, "spec", "spec",
				       CRD_REQUIRED, &spec)) != NVCF_OK ||
	    (st = nvcf__crd_get_string(KIND, spec, "namespace",
				       "spec.namespace", CRD_REQUIRED,
				       &sp->namespace_name)) != NVCF_OK ||
	    (st = nvcf__crd_get_string(KIND, spec, "icmsRequestName",
				       "spec.icmsRequestName", CRD_REQUIRED,
				       &sp->icms_request_name)) != NVCF_OK ||
	    (st = nvcf__crd_get_bool(KIND, spec, "isTask", "spec.isTask",
				     &sp->is_task)) != NVCF_OK ||
	    (st = nvcf__crd_get_object(KIND, spec, "helmChartConfig",
				       "spec.helmChartConfig", CRD_REQUIRED,
				       &helm)) != NVCF_OK ||
	    (st = nvcf__crd_get_string(KIND, helm, "url",
				       "spec.helmChartConfig.url",
				       CRD_REQUIRED, &sp->chart_url)) !=
		    NVCF_OK ||
	    (st = nvcf__crd_get_string(KIND, helm, "serviceName",
				       "spec.helmChartConfig.serviceName",
				       CRD_OPTIONAL, &sp->service_name)) !=
		    NVCF_OK ||
	    (st = nvcf__crd_get_uint(KIND, helm, "servicePort",
				     "spec.helmChartConfig.servicePort",
				     CRD_OPTIONAL, 1, &sp->service_port)) !=
		    NVCF_OK ||
	    (st = nvcf__crd_get_raw(KIND, helm, "values",
				    "spec.helmChartConfig.values",
				    &sp->values)) != NVCF_OK)
		return st;
	if (sp->service_port > 65535)
		return nvcf__error_set(NVCF_EINVAL,
				       KIND " spec.helmChartConfig.servicePort:"
				       " expected a port from 1 to 65535, got "
				       "%u", sp->service_port);
	return NVCF_OK;
}

static nvcf_status decode_condition(const cJSON *item, size_t i,
				    nvcf_crd_condition *c)
{
	char path[96];
	nvcf_status st;

#define SUB(k) (snprintf(path, sizeof(path), "status.conditions[%zu].%s", \
			 i, k), path)
	if (!cJSON_IsObject(item)) {
		snprintf(path, sizeof(path), "status.conditions[%zu]", i);
		return nvcf__crd_wrong_type(KIND, path, "a mapping", item);
	}
	if ((st = nvcf__crd_get_string(KIND, item, "type", SUB("type"),
				       CRD_REQUIRED, &c->type)) != NVCF_OK ||
	    (st = nvcf__crd_get_string(KIND, item, "status", SUB("status"),
				       CRD_REQUIRED, &c->status)) != NVCF_OK ||
	    (st = nvcf__crd_get_string(KIND, item, "reason", SUB("reason"),
				       CRD_OPTIONAL, &c->reason)) != NVCF_OK ||
	    (st = nvcf__crd_get_string(KIND, item, "message", SUB("message"),
				       CRD_OPTIONAL, &c->message)) !=
		    NVCF_OK ||
	    (st = nvcf__crd_get_time(KIND, item, "lastTransitionTime",
				     SUB("lastTransitionTime"),
				     &c->last_transition_ms)) != NVCF_OK)
		return st;
#undef SUB
	return NVCF_OK;
}

static nvcf_status decode_status(const cJSON *root,
				 nvcf_crd_miniservice_status *s)
{
	const cJSON *status = NULL, *conds = NULL, *item;
	int phase = (int)s->phase;
	nvcf_status st;

	if ((st = nvcf__crd_get_object(KIND, root, "status", "status",
				       CRD_OPTIONAL, &status)) != NVCF_OK ||
	    status == NULL)
		return st;
	if ((st = nvcf__crd_get_enum(KIND, status, "phase", "status.phase",
				     CRD_OPTIONAL, &nvcf__crd_phases,
				     &phase)) != NVCF_OK)
		return st;
	s->phase = (nvcf_crd_phase_t)phase;
	if ((st = nvcf__crd_get_time(KIND, status, "lastPhaseTransitionTime",
				     "status.lastPhaseTransitionTime",
				     &s->last_phase_transition_ms)) !=
		    NVCF_OK ||
	    (st = nvcf__crd_get_uint(KIND, status, "revision",
				     "status.revision", CRD_OPTIONAL, 0,
				     &s->revision)) != NVCF_OK ||
	    (st = nvcf__crd_get_int64(KIND, status, "observedGeneration",
				      "status.observedGeneration",
				      &s->observed_generation)) != NVCF_OK ||
	    (st = nvcf__crd_get_array(KIND, status, "conditions",
				      "status.conditions", CRD_OPTIONAL,
				      &conds)) != NVCF_OK)
		return st;
	if (conds == NULL)
		return NVCF_OK;
	s->conditions = nvcf__crd_calloc_items(conds, sizeof(*s->conditions));
	if (s->conditions == NULL)
		return nvcf__error_oom();
	cJSON_ArrayForEach(item, conds) {
		st = decode_condition(item, s->conditions_count,
				      &s->conditions[s->conditions_count]);
		s->conditions_count++;
		if (st != NVCF_OK)
			return st;
	}
	return NVCF_OK;
}

static nvcf_status decode(const cJSON *root, void *obj)
{
	nvcf_crd_miniservice *o = obj;
	nvcf_status st = decode_spec(root, &o->spec);

	return st != NVCF_OK ? st : decode_status(root, &o->status);
}

/* ---- encoding ---------------------------------------------------------- */

static bool encode(cJSON *root, const void *obj)
{
	const nvcf_crd_miniservice *o = obj;
	const nvcf_crd_miniservice_spec *sp = &o->spec;
	const nvcf_crd_miniservice_status *s = &o->status;
	cJSON *spec, *helm, *status, *conds, *c;

	spec = nvcf__crd_add_object(root, "spec");
	if (spec == NULL ||
	    !nvcf__crd_add_string(spec, "namespace", sp->namespace_name) ||
	    !nvcf__crd_add_string(spec, "icmsRequestName",
				  sp->icms_request_name) ||
	    (sp->is_task && !cJSON_AddTrueToObject(spec, "isTask")) ||
	    (helm = nvcf__crd_add_object(spec, "helmChartConfig")) == NULL ||
	    !nvcf__crd_add_string(helm, "url", sp->chart_url) ||
	    !nvcf__crd_add_string(helm, "serviceName", sp->service_name) ||
	    (sp->service_port > 0 &&
	     !nvcf__crd_add_number(helm, "servicePort", sp->service_port)) ||
	    !nvcf__crd_add_raw(helm, "values", sp->values))
		return false;
	if (s->phase == NVCF_CRD_PHASE_NONE &&
	    s->last_phase_transition_ms == 0 && s->conditions_count == 0 &&
	    s->revision == 0 && s->observed_generation == 0)
		return true;
	status = nvcf__crd_add_object(root, "status");
	if (status == NULL ||
	    !nvcf__crd_add_string(status, "phase",
				  nvcf_crd_phase_name(s->phase)) ||
	    !nvcf__crd_add_time(status, "lastPhaseTransitionTime",
				s->last_phase_transition_ms) ||
	    !nvcf__crd_add_number(status, "revision", s->revision) ||
	    (s->observed_generation > 0 &&
	     !nvcf__crd_add_number(status, "observedGeneration",
				   (double)s->observed_generation)))
		return false;
	if (s->conditions_count == 0)
		return true;
	if ((conds = cJSON_AddArrayToObject(status, "conditions")) == NULL)
		return false;
	for (size_t i = 0; i < s->conditions_count; i++) {
		const nvcf_crd_condition *x = &s->conditions[i];

		if ((c = nvcf__crd_add_item(conds)) == NULL ||
		    !nvcf__crd_add_string(c, "type", x->type) ||
		    !nvcf__crd_add_string(c, "status", x->status) ||
		    !nvcf__crd_add_string(c, "reason", x->reason) ||
		    !nvcf__crd_add_string(c, "message", x->message) ||
		    !nvcf__crd_add_time(c, "lastTransitionTime",
					x->last_transition_ms))
			return false;
	}
	return true;
}

NVCF__CRD_CODEC_GLUE(nvcf_crd_miniservice)

static const crd_codec codec = {
	.kind = KIND,
	.api_version = NVCF_CRD_MINISERVICE_API_VERSION,
	.version = NVCF_CRD_MINISERVICE_VERSION,
	.size = sizeof(nvcf_crd_miniservice),
	.meta_offset = offsetof(nvcf_crd_miniservice, metadata),
	.decode = decode,
	.encode = encode,
	.free = crd_free,
	.store = crd_store,
	.encode_needs = "object or metadata.name",
	.encode_error = "out of memory, or helmChartConfig.values is not JSON",
	.reconcile_needs_name = true,
};

nvcf_status nvcf_crd_miniservice_from_json(nvcf_crd_miniservice **out,
					   const char *text, size_t len)
{
	return nvcf__crd_decode_text(&codec, out, CRD_JSON, text, len);
}

nvcf_status nvcf_crd_miniservice_from_yaml(nvcf_crd_miniservice **out,
					   const char *text, size_t len)
{
	return nvcf__crd_decode_text(&codec, out, CRD_YAML, text, len);
}

nvcf_status nvcf_crd_miniservice_to_json(char **out,
					 const nvcf_crd_miniservice *obj)
{
	return nvcf__crd_encode_text(&codec, out, CRD_JSON, obj);
}

nvcf_status nvcf_crd_miniservice_to_yaml(char **out,
					 const nvcf_crd_miniservice *obj)
{
	return nvcf__crd_encode_text(&codec, out, CRD_YAML, obj);
}

/* ---- reconcile --------------------------------------------------------- */

typedef struct ms_step {
	nvcf_crd_miniservice *o;
	const nvcf_crd_observation *obs;
	const nvcf_crd_options *opt;
	nvcf_crd_actions *acts;
	bool moved;
	bool sink;
	bool oom;
	int64_t requeue_ms;
} ms_step;

static void ms_move(ms_step *s, nvcf_crd_phase_t to)
{
	nvcf_log_debug("crd", "MiniService %s: %s -> %s",
		       s->o->metadata.name,
		       nvcf_crd_phase_name(s->o->status.phase),
		       nvcf_crd_phase_name(to));
	s->o->status.phase = to;
	s->o->status.last_phase_transition_ms = s->obs->now_ms;
	s->moved = true;
}

static nvcf_crd_condition *cond_find(nvcf_crd_miniservice *o,
				     const char *type)
{
	for (size_t i = 0; i < o->status.conditions_count; i++)
		if (strcmp(o->status.conditions[i].type, type) == 0)
			return &o->status.conditions[i];
	return NULL;
}

/* Sets a condition; its transition time moves only when status changes. */
static void cond_set(ms_step *s, const char *type, const char *status,
		     const char *reason, const char *message)
{
	nvcf_crd_miniservice_status *st = &s->o->status;
	nvcf_crd_condition *c = cond_find(s->o, type), *v;

	if (c == NULL) {
		v = nvcf__crd_grow(st->conditions, st->conditions_count,
				   sizeof(*v));
		if (v == NULL) {
			s->oom = true;
			return;
		}
		st->conditions = v;
		c = &v[st->conditions_count++];
		if ((c->type = strdup(type)) == NULL)
			s->oom = true;
	}
	if (c->status == NULL || strcmp(c->status, status) != 0)
		c->last_transition_ms = s->obs->now_ms;
	if (!nvcf__crd_set_string(&c->status, status) ||
	    !nvcf__crd_set_string(&c->reason, reason) ||
	    !nvcf__crd_set_string(&c->message, message))
		s->oom = true;
}

/* Terminal failure: a service that never ran failed its install. */
static void fail(ms_step *s, const char *reason, const char *message)
{
	bool ran = s->o->status.phase == NVCF_CRD_PHASE_RUNNING;

	cond_set(s, ran ? "WorkersHealthy" : "InstallSuccessful", "False",
		 reason, message);
	ms_move(s, ran ? NVCF_CRD_PHASE_FAILED
		       : NVCF_CRD_PHASE_INSTALL_FAILED);
	s->sink = true;
}

static void follow_pods(ms_step *s)
{
	nvcf_crd_miniservice *o = s->o;
	const nvcf_crd_observation *obs = s->obs;
	size_t present = 0, failed = 0, pending = 0, succeeded = 0;
	const char *why = NULL;
	nvcf_crd_condition *c;

	for (size_t i = 0; i < obs->instances_count; i++) {
		switch (obs->instances[i].state) {
		case NVCF_CRD_OBSERVED_ABSENT:
		case NVCF_CRD_OBSERVED_TERMINATED:
			continue;
		case NVCF_CRD_OBSERVED_FAILED:
			failed++;
			if (why == NULL)
				why = obs->instances[i].reason;
			break;
		case NVCF_CRD_OBSERVED_STARTING:
			pending++;
			break;
		case NVCF_CRD_OBSERVED_SUCCEEDED:
			succeeded++;
			break;
		case NVCF_CRD_OBSERVED_RUNNING:
			break;
		}
		present++;
	}
	if (why == NULL)
		why = "a workload object failed";

	if (failed > 0) {
		/* A task's pod that exited non-zero will not come back. */
		if (o->spec.is_task) {
			fail(s, "ObjectsFailed", why);
			return;
		}
		c = cond_find(o, "ObjectsHealthy");
		if (c == NULL || c->reason == NULL ||
		    strcmp(c->reason, "ObjectsFailedWithinBackoffTimeout"))
			cond_set(s, "ObjectsHealthy", "False",
				 "ObjectsFailedWithinBackoffTimeout", why);
		c = cond_find(o, "ObjectsHealthy");
		if (c != NULL && obs->now_ms - c->last_transition_ms >=
					 s->opt->failure_backoff_ms) {
			cond_set(s, "ObjectsHealthy", "False",
				 "ObjectsFailed", why);
			fail(s, "ObjectsFailed", why);
			return;
		}
		s->requeue_ms = s->opt->failure_requeue_ms;
		return;
	}
	if (o->spec.is_task && present > 0 && succeeded == present) {
		cond_set(s, "ObjectsHealthy", "True", NULL, NULL);
		ms_move(s, NVCF_CRD_PHASE_COMPLETED);
		s->sink = true;
		return;
	}
	if (pending > 0 || present == 0) {
		cond_set(s, "ObjectsHealthy", "False",
			 "WaitingOnObjectReadiness", NULL);
		if (o->status.phase != NVCF_CRD_PHASE_STARTING) {
			ms_move(s, NVCF_CRD_PHASE_STARTING);
		} else if (obs->now_ms - o->status.last_phase_transition_ms >=
			   s->opt->max_running_timeout_ms) {
			cond_set(s, "ObjectsHealthy", "False",
				 "ObjectsTimedOutPending", NULL);
			fail(s, "ObjectsTimedOutPending",
			     "workload objects still pending after the "
			     "maximum running timeout");
		}
		return;
	}
	cond_set(s, "ObjectsHealthy", "True", NULL, NULL);
	if (o->status.phase != NVCF_CRD_PHASE_RUNNING)
		ms_move(s, NVCF_CRD_PHASE_RUNNING);
}

static void install(ms_step *s)
{
	nvcf_crd_action *a = nvcf__crd_actions_add(
		s->acts, NVCF_CRD_ACTION_CREATE_INSTANCE, s->o->metadata.name,
		NULL, NULL);

	if (a == NULL)
		s->oom = true;
	else
		a->miniservice = 1;
	s->o->status.observed_generation = s->o->metadata.generation;
	ms_move(s, NVCF_CRD_PHASE_INSTALLING);
}

static void ms_run(ms_step *s)
{
	nvcf_crd_miniservice *o = s->o;

	switch (o->status.phase) {
	case NVCF_CRD_PHASE_NONE:
	case NVCF_CRD_PHASE_CACHING_IN_PROGRESS:
		install(s);
		break;
	case NVCF_CRD_PHASE_INSTALLING:
		for (size_t i = 0; i < s->obs->instances_count; i++)
			if (s->obs->instances[i].state !=
			    NVCF_CRD_OBSERVED_ABSENT) {
				cond_set(s, "InstallSuccessful", "True", NULL,
					 NULL);
				ms_move(s, NVCF_CRD_PHASE_INSTALLED);
				break;
			}
		break;
	case NVCF_CRD_PHASE_INSTALLED:
	case NVCF_CRD_PHASE_STARTING:
	case NVCF_CRD_PHASE_RUNNING:
		/* New values re-render the chart as the next revision. */
		if (o->metadata.generation > o->status.observed_generation &&
		    o->status.observed_generation > 0) {
			o->status.revision++;
			install(s);
			break;
		}
		follow_pods(s);
		break;
	case NVCF_CRD_PHASE_COMPLETED:
	case NVCF_CRD_PHASE_INSTALL_FAILED:
	case NVCF_CRD_PHASE_FAILED:
		s->sink = true;
		break;
	}
}

nvcf_status nvcf_crd_miniservice_reconcile(nvcf_crd_actions **actions_out,
					   nvcf_crd_miniservice *obj,
					   const nvcf_crd_observation *obs,
					   const nvcf_crd_options *opts)
{
	nvcf_crd_options opt;
	ms_step s = {0};
	nvcf_status st;

	if ((st = nvcf__crd_reconcile_begin(&codec, actions_out, obj, obs,
					    opts, &opt, &s.acts)) != NVCF_OK)
		return st;
	s.o = obj;
	s.obs = obs;
	s.opt = &opt;
	s.requeue_ms = opt.sync_interval_ms;

	if (obs->error != NULL &&
	    obj->status.phase != NVCF_CRD_PHASE_COMPLETED &&
	    obj->status.phase != NVCF_CRD_PHASE_INSTALL_FAILED &&
	    obj->status.phase != NVCF_CRD_PHASE_FAILED) {
		if (obs->error_terminal)
			fail(&s, obj->status.phase == NVCF_CRD_PHASE_RUNNING
				 ? "UnexpectedRuntimeError"
				 : "UnexpectedInstallError", obs->error);
		else
			s.requeue_ms = opt.failure_requeue_ms;
	} else {
		ms_run(&s);
	}
	if (!s.sink && !s.oom &&
	    !nvcf__crd_requeue(s.acts, s.moved ? 0 : s.requeue_ms))
		s.oom = true;
	return nvcf__crd_reconcile_end(actions_out, s.acts, s.oom);
}
