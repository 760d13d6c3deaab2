/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of nvcf/crd.h: the YAML and JSON forms of the three custom
 * resources, and every state and transition of their reconcile steps.
 */
#include <check.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nvcf/crd.h"

#ifndef CRD_FIXTURES
#error "CRD_FIXTURES must name the fixtures folder"
#endif

/* 2024-05-01T12:00:00Z, the creation time of most fixtures. */
#define T0 1714564800000LL
#define SEC 1000LL
#define MIN (60 * SEC)

static char *slurp(const char *name)
{
	char path[512];
	FILE *f;
	long n;
	char *buf;

	snprintf(path, sizeof(path), "%s/%s", CRD_FIXTURES, name);
	f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = calloc(1, (size_t)n + 1);
	ck_assert(buf != NULL);
	ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return buf;
}

/* Defines T_fixture(name): the fixture file decoded from YAML. */
#define FIXTURE(T)                                                            \
	static nvcf_crd_##T *T##_fixture(const char *name)                    \
	{                                                                     \
		char *text = slurp(name);                                     \
		nvcf_crd_##T *o = NULL;                                       \
		nvcf_status st = nvcf_crd_##T##_from_yaml(&o, text,           \
							  strlen(text));      \
                                                                              \
		ck_assert_msg(st == NVCF_OK, "%s: %s", name,                  \
			      nvcf_error_last()->message);                    \
		free(text);                                                   \
		return o;                                                     \
	}

FIXTURE(icms)
FIXTURE(miniservice)
FIXTURE(backend)

/* Checks that a decode failed with EINVAL and a message with @p expected. */
static void expect_einval(nvcf_status st, const char *expected)
{
	ck_assert_int_eq(st, NVCF_EINVAL);
	ck_assert_msg(strstr(nvcf_error_last()->message, expected) != NULL,
		      "message \"%s\" lacks \"%s\"",
		      nvcf_error_last()->message, expected);
}

/* ---- round trips ------------------------------------------------------- */

#define ROUND_TRIP(T, file)                                                   \
	do {                                                                  \
		nvcf_crd_##T *a = T##_fixture(file), *b = NULL, *c = NULL;    \
		char *j1 = NULL, *j2 = NULL, *y1 = NULL, *y2 = NULL;          \
                                                                              \
		ck_assert_int_eq(nvcf_crd_##T##_to_json(&j1, a), NVCF_OK);    \
		ck_assert_int_eq(nvcf_crd_##T##_from_json(&b, j1,             \
							  strlen(j1)),        \
				 NVCF_OK);                                    \
		ck_assert_int_eq(nvcf_crd_##T##_to_yaml(&y1, b), NVCF_OK);    \
		ck_assert_int_eq(nvcf_crd_##T##_from_yaml(&c, y1,             \
							  strlen(y1)),        \
				 NVCF_OK);                                    \
		ck_assert_int_eq(nvcf_crd_##T##_to_json(&j2, c), NVCF_OK);    \
		ck_assert_int_eq(nvcf_crd_##T##_to_yaml(&y2, c), NVCF_OK);    \
		ck_assert_str_eq(j1, j2);                                     \
		ck_assert_str_eq(y1, y2);                                     \
		nvcf_free(j1);                                                \
		nvcf_free(j2);                                                \
		nvcf_free(y1);                                                \
		nvcf_free(y2);                                                \
		nvcf_crd_##T##_free(a);                                       \
		nvcf_crd_##T##_free(b);                                       \
		nvcf_crd_##T##_free(c);                                       \
	} while (0)

START_TEST(test_crd_round_trip_icms)
{
	static const char *const files[] = {
		"icms-new.yaml", "icms-pending.yaml", "icms-in-progress.yaml",
		"icms-partial.yaml", "icms-completion-acknowledged.yaml",
		"icms-failure-acknowledged.yaml", "icms-task-helm.yaml",
		"icms-terminate.yaml"};

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		ROUND_TRIP(icms, files[i]);
}
END_TEST

START_TEST(test_crd_round_trip_miniservice)
{
	ROUND_TRIP(miniservice, "ms-new.yaml");
	ROUND_TRIP(miniservice, "ms-running.yaml");
}
END_TEST

START_TEST(test_crd_round_trip_backend)
{
	ROUND_TRIP(backend, "backend-local.yaml");
	ROUND_TRIP(backend, "backend-status.yaml");
}
END_TEST

START_TEST(test_crd_decode_fields)
{
	nvcf_crd_icms *o = icms_fixture("icms-new.yaml");
	nvcf_crd_backend *b = backend_fixture("backend-status.yaml");

	ck_assert_str_eq(o->metadata.name, "sr-0b6e3c2a");
	ck_assert_int_eq(o->metadata.created_ms, T0);
	ck_assert_uint_eq(o->metadata.labels_count, 2);
	ck_assert_str_eq(o->metadata.labels[1].key, "nca-id");
	ck_assert_int_eq(o->spec.action, NVCF_CRD_ICMS_REQUEST_INSTANCES);
	ck_assert_uint_eq(o->spec.instance_count, 2);
	ck_assert_str_eq(o->spec.launch_specification,
			 "{\"containerImage\":\"file:///opt/echo\","
			 "\"inferenceUrl\":\"/echo\",\"inferencePort\":8000,"
			 "\"env\":{\"MODE\":\"fast\"}}");
	ck_assert_int_eq(o->status.request_status, NVCF_CRD_REQUEST_NEW);
	/* A quoted "10" stays a string. */
	ck_assert_str_eq(b->spec.attributes[1], "10");
	ck_assert_int_eq(b->status.agent_status, NVCF_CRD_AGENT_HEALTHY);
	ck_assert_uint_eq(b->status.gpu_usage[0].available, 5);
	nvcf_crd_icms_free(o);
	nvcf_crd_backend_free(b);
}
END_TEST

/* ---- decode errors ----------------------------------------------------- */

static const char *icms_base =
	"apiVersion: nvca.nvcf.nvidia.io/v2beta1\n"
	"kind: ICMSRequest\n"
	"metadata: {name: sr-1}\n"
	"spec:\n"
	"  action: RequestICMSInstances\n"
	"  ncaId: a\n"
	"  functionId: f\n"
	"  functionVersionId: v\n"
	"  gpu: L40S\n"
	"  instanceType: NCP.GPU.L40S_1x\n";

/* A text appended to icms_base, and part of the error it must give. */
typedef struct bad_doc {
	const char *extra;
	const char *expected;
} bad_doc;

static const bad_doc icms_errors[] = {
	{"  instanceCount: 1\n", "missing field spec.requestId"},
	{"  requestId: r\n",
	 "missing field spec.instanceCount"},
	{"  requestId: r\n  instanceCount: two\n",
	 "ICMSRequest spec.instanceCount: expected a positive "
	 "integer, got \"two\""},
	{"  requestId: r\n  instanceCount: -1\n",
	 "spec.instanceCount: expected a positive integer, got -1"},
	{"  requestId: r\n  instanceCount: 0\n",
	 "spec.instanceCount: expected a positive integer, got 0"},
	{"  requestId: r\n  instanceCount: 1.5\n",
	 "spec.instanceCount: expected a positive integer, got 1.5"},
	{"  requestId: 7\n  instanceCount: 1\n",
	 "spec.requestId: expected a non-empty string, got 7"},
	{"  requestId: r\n  instanceCount: 1\n"
	 "  functionLaunchSpecification: text\n",
	 "spec.functionLaunchSpecification: expected a mapping"},
	{"  requestId: r\n  instanceCount: 1\n"
	 "status: {requestStatus: Done}\n",
	 "status.requestStatus: expected"},
	{"  requestId: r\n  instanceCount: 1\n"
	 "status: {lastStatusUpdated: yesterday}\n",
	 "status.lastStatusUpdated: expected an RFC 3339"},
	{"  requestId: r\n  instanceCount: 1\n"
	 "status: {instances: {a: {id: b}}}\n",
	 "status.instances.a.id"},
	{"  requestId: r\n  instanceCount: 1\n"
	 "  terminationMsgInfo: {instanceIds: []}\n",
	 "spec.terminationMsgInfo: only allowed"},
	{"  requestId: r\n  instanceCount: 1\n  gpu: H100\n",
	 "duplicate key \"gpu\""},
};

START_TEST(test_crd_decode_errors_icms)
{
	for (size_t i = 0; i < sizeof(icms_errors) / sizeof(icms_errors[0]);
	     i++) {
		char doc[2048];
		nvcf_crd_icms *o = NULL;

		snprintf(doc, sizeof(doc), "%s%s", icms_base,
			 icms_errors[i].extra);
		expect_einval(nvcf_crd_icms_from_yaml(&o, doc, strlen(doc)),
			      icms_errors[i].expected);
		ck_assert_ptr_null(o);
	}
}
END_TEST

START_TEST(test_crd_decode_errors_header)
{
	nvcf_crd_icms *o = NULL;
	nvcf_crd_miniservice *m = NULL;
	const char *ms = "{\"apiVersion\":\"nvca.nvcf.nvidia.io/v1alpha1\","
			 "\"kind\":\"MiniService\",\"metadata\":{\"name\":"
			 "\"x\"},\"spec\":{}}";
	const char *badver = "apiVersion: v1\nkind: ICMSRequest\n";
	const char *action = "apiVersion: nvca.nvcf.nvidia.io/v2beta1\n"
			     "kind: ICMSRequest\nmetadata: {name: a}\n"
			     "spec: {requestId: r, action: Launch}\n";
	const char *term = "apiVersion: nvca.nvcf.nvidia.io/v2beta1\n"
			   "kind: ICMSRequest\nmetadata: {name: a}\n"
			   "spec: {requestId: r, action: TerminateInstances}"
			   "\n";

	ck_assert_int_eq(nvcf_crd_icms_from_json(&o, ms, strlen(ms)),
			 NVCF_EINVAL);
	ck_assert_str_eq(nvcf_error_last()->message,
			 "wrong kind MiniService, expected ICMSRequest");
	ck_assert_int_eq(nvcf_crd_icms_from_yaml(&o, badver, strlen(badver)),
			 NVCF_EINVAL);
	ck_assert_str_eq(nvcf_error_last()->message,
			 "ICMSRequest: wrong apiVersion v1, expected "
			 "nvca.nvcf.nvidia.io/v2beta1");
	expect_einval(nvcf_crd_icms_from_yaml(&o, action, strlen(action)),
		      "spec.action: expected RequestICMSInstances");
	expect_einval(nvcf_crd_icms_from_yaml(&o, term, strlen(term)),
		      "missing field spec.terminationMsgInfo");
	expect_einval(nvcf_crd_miniservice_from_json(&m, ms, strlen(ms)),
		      "missing field spec.namespace");
	ck_assert_int_eq(nvcf_crd_icms_from_json(&o, "{", 1), NVCF_EINVAL);
	expect_einval(nvcf_crd_icms_from_yaml(&o, "", 0),
		      "empty YAML document");
	ck_assert_int_eq(nvcf_crd_icms_from_yaml(&o, "a: [", 4),
			 NVCF_EINVAL);
	expect_einval(nvcf_crd_icms_from_yaml(&o, "a: 1\n---\nb: 2\n", 14),
		      "more than one YAML document");
	ck_assert_ptr_null(o);
	ck_assert_ptr_null(m);
}
END_TEST

/* A replacement in backend-local.yaml, and part of the error it gives. */
static const struct {
	const char *from;
	const char *to;
	const char *expected;
} backend_errors[] = {
	{"capacity: 8", "capacity: -1",
	 "spec.gpus[0].capacity: expected a non-negative integer, got -1"},
	{"gpuCount: 2", "gpuCount: 9",
	 "spec.gpus[0].instanceTypes[1].gpuCount: expected 1 to the capacity "
	 "8 of GPU \"L40S\", got 9"},
	{"gpuCount: 2", "gpuCount: 0",
	 "instanceTypes[1].gpuCount: expected a positive"},
	{"name: H100", "name: L40S", "listed twice"},
	{"NCP.GPU.L40S_2x", "NCP.GPU.L40S_1x", "listed twice"},
	{"clusterId: local-1", "clusterId: local.1",
	 "spec.clusterId: expected letters"},
	{"clusterId: local-1", "clusterID: local-1",
	 "missing field spec.clusterId"},
	{"name: H100", "name: \"H 100\"",
	 "spec.gpus[1].name: expected letters"},
	{"kind: NVCFBackend", "kind: ICMSRequest",
	 "wrong kind ICMSRequest, expected NVCFBackend"},
};

START_TEST(test_crd_decode_errors_backend)
{
	char *text = slurp("backend-local.yaml");

	for (size_t i = 0;
	     i < sizeof(backend_errors) / sizeof(backend_errors[0]); i++) {
		const char *from = backend_errors[i].from;
		char doc[4096], *at = strstr(text, from);
		nvcf_crd_backend *b = NULL;

		ck_assert_ptr_nonnull(at);
		snprintf(doc, sizeof(doc), "%.*s%s%s", (int)(at - text), text,
			 backend_errors[i].to, at + strlen(from));
		expect_einval(nvcf_crd_backend_from_yaml(&b, doc, strlen(doc)),
			      backend_errors[i].expected);
		ck_assert_ptr_null(b);
	}
	free(text);
}
END_TEST

START_TEST(test_crd_backend_capacity_zero)
{
	char *text = slurp("backend-local.yaml"), *at;
	nvcf_crd_backend *b = NULL;

	at = strstr(text, "capacity: 2");
	at[10] = '0';
	ck_assert_int_eq(nvcf_crd_backend_from_yaml(&b, text, strlen(text)),
			 NVCF_OK);
	ck_assert_uint_eq(b->spec.gpus[1].capacity, 0);
	nvcf_crd_backend_free(b);
	free(text);
}
END_TEST

/* ---- ICMSRequest reconcile --------------------------------------------- */

typedef struct run {
	nvcf_crd_observation obs;
	nvcf_crd_observed_instance inst[8];
	nvcf_crd_options opt;
	nvcf_crd_actions *acts;
} run;

static void run_init(run *r, int64_t now)
{
	nvcf_crd_observation obs = NVCF_CRD_OBSERVATION_INIT;
	nvcf_crd_options opt = NVCF_CRD_OPTIONS_INIT;

	memset(r, 0, sizeof(*r));
	r->obs = obs;
	r->opt = opt;
	r->obs.now_ms = now;
	r->obs.instances = r->inst;
}

static void observe(run *r, const char *id, nvcf_crd_observed_t state,
		    const char *reason)
{
	for (size_t i = 0; i < r->obs.instances_count; i++) {
		if (strcmp(r->inst[i].id, id) == 0) {
			r->inst[i].state = state;
			r->inst[i].reason = reason;
			return;
		}
	}
	r->inst[r->obs.instances_count].id = id;
	r->inst[r->obs.instances_count].state = state;
	r->inst[r->obs.instances_count].reason = reason;
	r->obs.instances_count++;
}

/* Frees the previous step's actions and returns where the next ones go. */
static nvcf_crd_actions **next_acts(run *r)
{
	nvcf_crd_actions_free(r->acts);
	r->acts = NULL;
	return &r->acts;
}

static void icms_step(run *r, nvcf_crd_icms *o)
{
	ck_assert_int_eq(nvcf_crd_icms_reconcile(next_acts(r), o, &r->obs,
						 &r->opt), NVCF_OK);
	r->obs.ack = NVCF_CRD_ACK_NONE;
	r->obs.error = NULL;
	r->obs.error_terminal = false;
}

static size_t count(const run *r, nvcf_crd_action_kind_t kind)
{
	size_t n = 0;

	for (size_t i = 0; i < r->acts->count; i++)
		n += r->acts->items[i].kind == kind;
	return n;
}

static const nvcf_crd_action *nth(const run *r, nvcf_crd_action_kind_t kind,
				  size_t k)
{
	for (size_t i = 0; i < r->acts->count; i++)
		if (r->acts->items[i].kind == kind && k-- == 0)
			return &r->acts->items[i];
	ck_abort_msg("no %s action", nvcf_crd_action_name(kind));
	return NULL;
}

static int64_t requeue(const run *r)
{
	ck_assert_uint_eq(count(r, NVCF_CRD_ACTION_REQUEUE), 1);
	ck_assert_int_eq(r->acts->items[r->acts->count - 1].kind,
			 NVCF_CRD_ACTION_REQUEUE);
	return r->acts->items[r->acts->count - 1].after_ms;
}

/*
 * Checks that the request is collected once @p id is gone from the
 * runtime, and not before.
 */
static void collected_once_gone(run *r, nvcf_crd_icms *o, const char *id)
{
	icms_step(r, o);
	ck_assert_uint_eq(count(r, NVCF_CRD_ACTION_GARBAGE_COLLECT), 0);
	observe(r, id, NVCF_CRD_OBSERVED_TERMINATED, NULL);
	icms_step(r, o);
	ck_assert_uint_eq(count(r, NVCF_CRD_ACTION_GARBAGE_COLLECT), 1);
}

static void run_done(run *r)
{
	nvcf_crd_actions_free(r->acts);
}

START_TEST(test_crd_icms_creation_lifecycle)
{
	nvcf_crd_icms *o = icms_fixture("icms-new.yaml");
	run r;

	run_init(&r, T0 + 1 * SEC);

	/* "" requests the ack and waits for its result. */
	icms_step(&r, o);
	ck_assert_int_eq(o->status.request_status, NVCF_CRD_REQUEST_NEW);
	ck_assert_uint_eq(count(&r, NVCF_CRD_ACTION_ACK_MESSAGE), 1);
	ck_assert_int_eq(requeue(&r), 0);

	r.obs.ack = NVCF_CRD_ACK_OK;
	icms_step(&r, o);
	ck_assert_int_eq(o->status.request_status, NVCF_CRD_REQUEST_PENDING);
	ck_assert_int_eq(o->status.last_ack_ms, T0 + 1 * SEC);
	ck_assert_int_eq(o->status.last_status_updated_ms, T0 + 1 * SEC);
	ck_assert_int_eq(requeue(&r), 0);

	/* Pending creates both instances and reports them starting. */
	icms_step(&r, o);
	ck_assert_int_eq(o->status.request_status,
			 NVCF_CRD_REQUEST_IN_PROGRESS);
	ck_assert_uint_eq(count(&r, NVCF_CRD_ACTION_CREATE_INSTANCE), 2);
	ck_assert_str_eq(nth(&r, NVCF_CRD_ACTION_CREATE_INSTANCE, 0)
				 ->instance_id, "0-sr-0b6e3c2a");
	ck_assert_uint_eq(nth(&r, NVCF_CRD_ACTION_CREATE_INSTANCE, 1)->index,
			  1);
	ck_assert_uint_eq(count(&r, NVCF_CRD_ACTION_REPORT_STATUS), 2);
	ck_assert_str_eq(nth(&r, NVCF_CRD_ACTION_REPORT_STATUS, 0)->state,
			 "starting");
	ck_assert_uint_eq(o->status.instances_count, 2);

	/* Starting instances: RequestInstancesInProgress. */
	observe(&r, "0-sr-0b6e3c2a", NVCF_CRD_OBSERVED_STARTING, NULL);
	observe(&r, "1-sr-0b6e3c2a", NVCF_CRD_OBSERVED_STARTING, NULL);
	icms_step(&r, o);
	ck_assert_int_eq(o->status.request_status,
			 NVCF_CRD_REQUEST_INSTANCES_IN_PROGRESS);
	ck_assert_uint_eq(count(&r, NVCF_CRD_ACTION_CREATE_INSTANCE), 0);
	ck_assert_uint_eq(count(&r, NVCF_CRD_ACTION_REPORT_STATUS), 0);

	/* Nothing new: wait a sync interval. */
	icms_step(&r, o);
	ck_assert_int_eq(requeue(&r), 15 * SEC);

	/* One ready is not enough; both ready completes the request. */
	observe(&r, "0-sr-0b6e3c2a", NVCF_CRD_OBSERVED_RUNNING, NULL);
	icms_step(&r, o);
	ck_assert_int_eq(o->status.request_status,
			 NVCF_CRD_REQUEST_INSTANCES_IN_PROGRESS);
	ck_assert_uint_eq(count(&r, NVCF_CRD_ACTION_REPORT_STATUS), 1);
	observe(&r, "1-sr-0b6e3c2a", NVCF_CRD_OBSERVED_RUNNING, NULL);
	icms_step(&r, o);
	ck_assert_int_eq(o->status.request_status,
			 NVCF_CRD_REQUEST_COMPLETED);
	ck_assert_str_eq(nth(&r, NVCF_CRD_ACTION_REPORT_STATUS, 0)->state,
			 "running");
	ck_assert_str_eq(o->status.instances[1].last_reported_status,
			 "running");

	icms_step(&r, o);
	ck_assert_int_eq(o->status.request_status,
			 NVCF_CRD_REQUEST_COMPLETION_ACKNOWLEDGED);

	/* Terminated elsewhere: report, then collect once reported. */
	observe(&r, "0-sr-0b6e3c2a", NVCF_CRD_OBSERVED_TERMINATED, NULL);
	observe(&r, "1-sr-0b6e3c2a", NVCF_CRD_OBSERVED_ABSENT, NULL);
	icms_step(&r, o);
	ck_assert_uint_eq(count(&r, NVCF_CRD_ACTION_REPORT_STATUS), 2);
	ck_assert_str_eq(nth(&r, NVCF_CRD_ACTION_REPORT_STATUS, 1)->state,
			 "terminated");
	ck_assert_str_eq(nth(&r, NVCF_CRD_ACTION_REPORT_STATUS, 1)->reason,
			 "instance-not-found");
	ck_assert_uint_eq(count(&r, NVCF_CRD_ACTION_GARBAGE_COLLECT), 0);
	icms_step(&r, o);
	ck_assert_uint_eq(r.acts->count, 1);
	ck_assert_int_eq(r.acts->items[0].kind,
			 NVCF_CRD_ACTION_GARBAGE_COLLECT);
	run_done(&r);
	nvcf_crd_icms_free(o);
}
END_TEST

START_TEST(test_crd_icms_periodic_report)
{
	nvcf_crd_icms *o = icms_fixture("icms-completion-acknowledged.yaml");
	run r;

	run_init(&r, T0 + 2 * MIN);
	observe(&r, "0-sr-0b6e3c2a", NVCF_CRD_OBSERVED_RUNNING, NULL);
	icms_step(&r, o);
	ck_assert_uint_eq(count(&r, NVCF_CRD_ACTION_REPORT_STATUS), 0);
	r.obs.now_ms = T0 + 6 * MIN;
	icms_step(&r, o);
	ck_assert_uint_eq(count(&r, NVCF_CRD_ACTION_REPORT_STATUS), 1);
	ck_assert_int_eq(o->status.instances[0].last_reported_ms,
			 T0 + 6 * MIN);
	run_done(&r);
	nvcf_crd_icms_free(o);
}
END_TEST

START_TEST(test_crd_icms_restart_creates_nothing)
{
	nvcf_crd_icms *o = icms_fixture("icms-in-progress.yaml");
	nvcf_crd_icms *p = icms_fixture("icms-partial.yaml");
	run r;

	run_init(&r, T0 + 30 * SEC);
	observe(&r, "0-sr-0b6e3c2a", NVCF_CRD_OBSERVED_STARTING, NULL);
	observe(&r, "1-sr-0b6e3c2a", NVCF_CRD_OBSERVED_STARTING, NULL);
	icms_step(&r, o);
	ck_assert_uint_eq(count(&r, NVCF_CRD_ACTION_CREATE_INSTANCE), 0);
	ck_assert_int_eq(o->status.request_status,
			 NVCF_CRD_REQUEST_INSTANCES_IN_PROGRESS);

	/* Only the instance missing from status.instances is created. */
	icms_step(&r, p);
	ck_assert_uint_eq(count(&r, NVCF_CRD_ACTION_CREATE_INSTANCE), 1);
	ck_assert_str_eq(nth(&r, NVCF_CRD_ACTION_CREATE_INSTANCE, 0)
				 ->instance_id, "1-sr-0b6e3c2a");
	ck_assert_uint_eq(p->status.instances_count, 2);
	icms_step(&r, p);
	ck_assert_uint_eq(count(&r, NVCF_CRD_ACTION_CREATE_INSTANCE), 0);
	run_done(&r);
	nvcf_crd_icms_free(o);
	nvcf_crd_icms_free(p);
}
END_TEST

START_TEST(test_crd_icms_instance_failed)
{
	nvcf_crd_icms *o = icms_fixture("icms-in-progress.yaml");
	run r;

	run_init(&r, T0 + 1 * MIN);
	observe(&r, "0-sr-0b6e3c2a", NVCF_CRD_OBSERVED_RUNNING, NULL);
	observe(&r, "1-sr-0b6e3c2a", NVCF_CRD_OBSERVED_FAILED,
		"image-pull-issues");
	icms_step(&r, o);
	ck_assert_int_eq(o->status.request_status, NVCF_CRD_REQUEST_FAILED);
	ck_assert_uint_eq(count(&r, NVCF_CRD_ACTION_DELETE_INSTANCE), 1);
	ck_assert_str_eq(nth(&r, NVCF_CRD_ACTION_DELETE_INSTANCE, 0)
				 ->instance_id, "1-sr-0b6e3c2a");
	ck_assert_str_eq(nth(&r, NVCF_CRD_ACTION_REPORT_STATUS, 1)->state,
			 "terminated");
	ck_assert_str_eq(nth(&r, NVCF_CRD_ACTION_REPORT_STATUS, 1)->reason,
			 "image-pull-issues");
	ck_assert_str_eq(o->status.last_reconcile_error,
			 "an instance failed");

	observe(&r, "1-sr-0b6e3c2a", NVCF_CRD_OBSERVED_ABSENT, NULL);
	icms_step(&r, o);
	ck_assert_int_eq(o->status.request_status,
			 NVCF_CRD_REQUEST_FAILURE_ACKNOWLEDGED);

	/* Inside the cleanup window the running instance stays. */
	r.obs.now_ms = T0 + 30 * MIN;
	icms_step(&r, o);
	ck_assert_uint_eq(count(&r, NVCF_CRD_ACTION_DELETE_INSTANCE), 0);
	ck_assert_int_eq(requeue(&r), 15 * SEC);

	/* After it, the rest is deleted and reported, then collected. */
	r.obs.now_ms = T0 + 62 * MIN;
	icms_step(&r, o);
	ck_assert_uint_eq(count(&r, NVCF_CRD_ACTION_DELETE_INSTANCE), 1);
	ck_assert_str_eq(nth(&r, NVCF_CRD_ACTION_DELETE_INSTANCE, 0)
				 ->instance_id, "0-sr-0b6e3c2a");
	ck_assert_str_eq(nth(&r, NVCF_CRD_ACTION_REPORT_STATUS, 0)->state,
			 "terminated");
	collected_once_gone(&r, o, "0-sr-0b6e3c2a");
	run_done(&r);
	nvcf_crd_icms_free(o);
}
END_TEST

START_TEST(test_crd_icms_pending_timeout)
{
	nvcf_crd_icms *o = icms_fixture("icms-in-progress.yaml");
	run r;

	run_init(&r, T0 + 179 * MIN);
	observe(&r, "0-sr-0b6e3c2a", NVCF_CRD_OBSERVED_RUNNING, NULL);
	observe(&r, "1-sr-0b6e3c2a", NVCF_CRD_OBSERVED_STARTING, NULL);
	icms_step(&r, o);
	ck_assert_int_eq(o->status.request_status,
			 NVCF_CRD_REQUEST_INSTANCES_IN_PROGRESS);
	r.obs.now_ms = T0 + 180 * MIN;
	icms_step(&r, o);
	ck_assert_int_eq(o->status.request_status, NVCF_CRD_REQUEST_FAILED);
	ck_assert_ptr_nonnull(strstr(o->status.last_reconcile_error,
				     "maximum running timeout"));

	/* A shortened timeout applies the same rule sooner. */
	nvcf_crd_icms_free(o);
	o = icms_fixture("icms-in-progress.yaml");
	r.opt.max_running_timeout_ms = 2 * MIN;
	r.obs.now_ms = T0 + 2 * MIN;
	icms_step(&r, o);
	ck_assert_int_eq(o->status.request_status, NVCF_CRD_REQUEST_FAILED);
	run_done(&r);
	nvcf_crd_icms_free(o);
}
END_TEST

START_TEST(test_crd_icms_ack_failures)
{
	nvcf_crd_icms *o = icms_fixture("icms-new.yaml");
	run r;

	run_init(&r, T0 + 1 * MIN);
	r.obs.ack = NVCF_CRD_ACK_RETRY;
	icms_step(&r, o);
	ck_assert_int_eq(o->status.request_status, NVCF_CRD_REQUEST_NEW);
	ck_assert_uint_eq(count(&r, NVCF_CRD_ACTION_ACK_MESSAGE), 1);
	ck_assert_int_eq(requeue(&r), 15 * SEC);

	r.obs.now_ms = T0 + 5 * MIN;
	r.obs.ack = NVCF_CRD_ACK_RETRY;
	icms_step(&r, o);
	ck_assert_int_eq(o->status.request_status,
			 NVCF_CRD_REQUEST_FAILURE_ACKNOWLEDGED);
	icms_step(&r, o);
	ck_assert_uint_eq(count(&r, NVCF_CRD_ACTION_GARBAGE_COLLECT), 1);
	nvcf_crd_icms_free(o);

	o = icms_fixture("icms-new.yaml");
	r.obs.ack = NVCF_CRD_ACK_REJECTED;
	icms_step(&r, o);
	ck_assert_int_eq(o->status.request_status,
			 NVCF_CRD_REQUEST_FAILURE_ACKNOWLEDGED);
	ck_assert_uint_eq(o->status.instances_count, 0);
	ck_assert_uint_eq(count(&r, NVCF_CRD_ACTION_CREATE_INSTANCE), 0);
	run_done(&r);
	nvcf_crd_icms_free(o);
}
END_TEST

START_TEST(test_crd_icms_pending_stale)
{
	nvcf_crd_icms *o = icms_fixture("icms-pending.yaml");
	run r;

	run_init(&r, T0 + 61 * MIN);
	icms_step(&r, o);
	ck_assert_uint_eq(r.acts->count, 1);
	ck_assert_int_eq(r.acts->items[0].kind,
			 NVCF_CRD_ACTION_GARBAGE_COLLECT);
	run_done(&r);
	nvcf_crd_icms_free(o);
}
END_TEST

START_TEST(test_crd_icms_reconcile_errors)
{
	nvcf_crd_icms *o = icms_fixture("icms-pending.yaml");
	run r;

	run_init(&r, T0 + 1 * MIN);
	r.obs.error = "runtime busy";
	icms_step(&r, o);
	ck_assert_uint_eq(o->status.reconcile_errors, 1);
	ck_assert_str_eq(o->status.last_reconcile_error, "runtime busy");
	ck_assert_int_eq(o->status.request_status, NVCF_CRD_REQUEST_PENDING);
	ck_assert_int_eq(requeue(&r), 30 * SEC);

	/* A terminal error fails the request with placeholders, so that
	 * the instances it owed are reported and later terminated. */
	r.obs.error = "image not found";
	r.obs.error_terminal = true;
	icms_step(&r, o);
	ck_assert_int_eq(o->status.request_status, NVCF_CRD_REQUEST_FAILED);
	ck_assert_uint_eq(o->status.reconcile_errors, 2);
	ck_assert_uint_eq(o->status.instances_count, 2);
	ck_assert_uint_eq(count(&r, NVCF_CRD_ACTION_CREATE_INSTANCE), 0);
	ck_assert_uint_eq(count(&r, NVCF_CRD_ACTION_REPORT_STATUS), 2);
	icms_step(&r, o);
	ck_assert_int_eq(o->status.request_status,
			 NVCF_CRD_REQUEST_FAILURE_ACKNOWLEDGED);
	run_done(&r);
	nvcf_crd_icms_free(o);
}
END_TEST

START_TEST(test_crd_icms_helm_task)
{
	nvcf_crd_icms *o = icms_fixture("icms-task-helm.yaml");
	run r;

	run_init(&r, T0);
	r.obs.ack = NVCF_CRD_ACK_OK;
	icms_step(&r, o);
	icms_step(&r, o);
	ck_assert_uint_eq(count(&r, NVCF_CRD_ACTION_CREATE_INSTANCE), 1);
	ck_assert_str_eq(nth(&r, NVCF_CRD_ACTION_CREATE_INSTANCE, 0)
				 ->instance_id, "sr-task1-miniservice");
	ck_assert_uint_eq(nth(&r, NVCF_CRD_ACTION_CREATE_INSTANCE, 0)
				  ->miniservice, 1);
	ck_assert_int_eq(o->status.instances[0].kind,
			 NVCF_CRD_INSTANCE_MINISERVICE);
	observe(&r, "sr-task1-miniservice",
		nvcf_crd_phase_observed(NVCF_CRD_PHASE_COMPLETED), NULL);
	icms_step(&r, o);
	ck_assert_int_eq(o->status.request_status,
			 NVCF_CRD_REQUEST_COMPLETED);
	ck_assert_str_eq(o->status.instances[0].status, "succeeded");
	run_done(&r);
	nvcf_crd_icms_free(o);
}
END_TEST

START_TEST(test_crd_icms_termination)
{
	nvcf_crd_icms *o = icms_fixture("icms-terminate.yaml");
	run r;

	run_init(&r, T0);
	icms_step(&r, o);
	ck_assert_uint_eq(count(&r, NVCF_CRD_ACTION_ACK_MESSAGE), 1);
	ck_assert_int_eq(o->status.request_status, NVCF_CRD_REQUEST_PENDING);

	icms_step(&r, o);
	ck_assert_int_eq(o->status.request_status,
			 NVCF_CRD_REQUEST_IN_PROGRESS);
	ck_assert_uint_eq(count(&r, NVCF_CRD_ACTION_DELETE_INSTANCE), 2);
	ck_assert_str_eq(nth(&r, NVCF_CRD_ACTION_DELETE_INSTANCE, 1)
				 ->instance_id, "1-sr-0b6e3c2a");
	ck_assert_str_eq(nth(&r, NVCF_CRD_ACTION_REPORT_STATUS, 0)->reason,
			 "instance-terminated-by-user");

	icms_step(&r, o);
	ck_assert_int_eq(o->status.request_status,
			 NVCF_CRD_REQUEST_COMPLETED);
	ck_assert_uint_eq(count(&r, NVCF_CRD_ACTION_DELETE_INSTANCE), 0);
	icms_step(&r, o);
	ck_assert_int_eq(o->status.request_status,
			 NVCF_CRD_REQUEST_COMPLETION_ACKNOWLEDGED);

	/* Still running in the runtime: wait until it is gone. */
	observe(&r, "0-sr-0b6e3c2a", NVCF_CRD_OBSERVED_RUNNING, NULL);
	collected_once_gone(&r, o, "0-sr-0b6e3c2a");
	run_done(&r);
	nvcf_crd_icms_free(o);
}
END_TEST

START_TEST(test_crd_icms_bad_arguments)
{
	nvcf_crd_icms *o = icms_fixture("icms-new.yaml");
	nvcf_crd_actions *a = NULL;
	nvcf_crd_observation obs = NVCF_CRD_OBSERVATION_INIT;
	nvcf_crd_options opt = NVCF_CRD_OPTIONS_INIT;

	ck_assert_int_eq(nvcf_crd_icms_reconcile(&a, o, NULL, NULL),
			 NVCF_EINVAL);
	obs.version = 99;
	ck_assert_int_eq(nvcf_crd_icms_reconcile(&a, o, &obs, NULL),
			 NVCF_EINVAL);
	obs.version = NVCF_CRD_OBSERVATION_VERSION;
	opt.version = 0;
	ck_assert_int_eq(nvcf_crd_icms_reconcile(&a, o, &obs, &opt),
			 NVCF_EINVAL);
	ck_assert_ptr_null(a);
	nvcf_crd_icms_free(o);
	nvcf_crd_icms_free(NULL);
	nvcf_crd_actions_free(NULL);
}
END_TEST

/* ---- MiniService reconcile --------------------------------------------- */

static void ms_step(run *r, nvcf_crd_miniservice *o)
{
	ck_assert_int_eq(nvcf_crd_miniservice_reconcile(next_acts(r), o,
							&r->obs, &r->opt),
			 NVCF_OK);
	r->obs.error = NULL;
	r->obs.error_terminal = false;
}

static const char *cond_reason(const nvcf_crd_miniservice *o,
			       const char *type)
{
	for (size_t i = 0; i < o->status.conditions_count; i++)
		if (strcmp(o->status.conditions[i].type, type) == 0)
			return o->status.conditions[i].reason
				? o->status.conditions[i].reason : "";
	return NULL;
}

START_TEST(test_crd_miniservice_lifecycle)
{
	nvcf_crd_miniservice *o = miniservice_fixture("ms-new.yaml");
	run r;

	run_init(&r, T0);
	ms_step(&r, o);
	ck_assert_int_eq(o->status.phase, NVCF_CRD_PHASE_INSTALLING);
	ck_assert_uint_eq(count(&r, NVCF_CRD_ACTION_CREATE_INSTANCE), 1);
	ck_assert_int_eq(requeue(&r), 0);

	ms_step(&r, o);
	ck_assert_int_eq(o->status.phase, NVCF_CRD_PHASE_INSTALLING);
	ck_assert_int_eq(requeue(&r), 15 * SEC);

	observe(&r, "utils", NVCF_CRD_OBSERVED_STARTING, NULL);
	observe(&r, "entry-0", NVCF_CRD_OBSERVED_STARTING, NULL);
	ms_step(&r, o);
	ck_assert_int_eq(o->status.phase, NVCF_CRD_PHASE_INSTALLED);
	ms_step(&r, o);
	ck_assert_int_eq(o->status.phase, NVCF_CRD_PHASE_STARTING);
	ck_assert_str_eq(cond_reason(o, "ObjectsHealthy"),
			 "WaitingOnObjectReadiness");
	observe(&r, "utils", NVCF_CRD_OBSERVED_RUNNING, NULL);
	observe(&r, "entry-0", NVCF_CRD_OBSERVED_RUNNING, NULL);
	r.obs.now_ms = T0 + 1 * MIN;
	ms_step(&r, o);
	ck_assert_int_eq(o->status.phase, NVCF_CRD_PHASE_RUNNING);
	ck_assert_int_eq(o->status.last_phase_transition_ms, T0 + 1 * MIN);
	ck_assert_int_eq(nvcf_crd_phase_observed(o->status.phase),
			 NVCF_CRD_OBSERVED_RUNNING);

	/* A new generation re-installs as the next revision. */
	o->metadata.generation = 2;
	ms_step(&r, o);
	ck_assert_int_eq(o->status.phase, NVCF_CRD_PHASE_INSTALLING);
	ck_assert_uint_eq(o->status.revision, 1);
	ck_assert_int_eq(o->status.observed_generation, 2);
	ck_assert_uint_eq(count(&r, NVCF_CRD_ACTION_CREATE_INSTANCE), 1);
	run_done(&r);
	nvcf_crd_miniservice_free(o);
}
END_TEST

START_TEST(test_crd_miniservice_failure_backoff)
{
	nvcf_crd_miniservice *o = miniservice_fixture("ms-running.yaml");
	run r;

	run_init(&r, T0 + 10 * MIN);
	observe(&r, "utils", NVCF_CRD_OBSERVED_RUNNING, NULL);
	observe(&r, "entry-0", NVCF_CRD_OBSERVED_FAILED, "CrashLoopBackOff");
	ms_step(&r, o);
	ck_assert_int_eq(o->status.phase, NVCF_CRD_PHASE_RUNNING);
	ck_assert_str_eq(cond_reason(o, "ObjectsHealthy"),
			 "ObjectsFailedWithinBackoffTimeout");
	ck_assert_int_eq(requeue(&r), 30 * SEC);

	/* Recovered inside the backoff: healthy again. */
	observe(&r, "entry-0", NVCF_CRD_OBSERVED_RUNNING, NULL);
	r.obs.now_ms += 30 * SEC;
	ms_step(&r, o);
	ck_assert_int_eq(o->status.phase, NVCF_CRD_PHASE_RUNNING);
	ck_assert_str_eq(cond_reason(o, "ObjectsHealthy"), "");

	/* Failing for 90 s turns terminal; a service that ran is Failed. */
	observe(&r, "entry-0", NVCF_CRD_OBSERVED_FAILED, NULL);
	r.obs.now_ms += 1 * SEC;
	ms_step(&r, o);
	r.obs.now_ms += 89 * SEC;
	ms_step(&r, o);
	ck_assert_int_eq(o->status.phase, NVCF_CRD_PHASE_RUNNING);
	r.obs.now_ms += 1 * SEC;
	ms_step(&r, o);
	ck_assert_int_eq(o->status.phase, NVCF_CRD_PHASE_FAILED);
	ck_assert_str_eq(cond_reason(o, "ObjectsHealthy"), "ObjectsFailed");
	ck_assert_uint_eq(count(&r, NVCF_CRD_ACTION_REQUEUE), 0);

	/* A sink does nothing more. */
	ms_step(&r, o);
	ck_assert_uint_eq(r.acts->count, 0);
	run_done(&r);
	nvcf_crd_miniservice_free(o);
}
END_TEST

START_TEST(test_crd_miniservice_install_failures)
{
	nvcf_crd_miniservice *o = miniservice_fixture("ms-new.yaml");
	run r;

	run_init(&r, T0);
	ms_step(&r, o);
	r.obs.error = "chart render failed";
	ms_step(&r, o);
	ck_assert_int_eq(requeue(&r), 30 * SEC);
	ck_assert_int_eq(o->status.phase, NVCF_CRD_PHASE_INSTALLING);
	r.obs.error = "chart render failed";
	r.obs.error_terminal = true;
	ms_step(&r, o);
	ck_assert_int_eq(o->status.phase, NVCF_CRD_PHASE_INSTALL_FAILED);
	ck_assert_str_eq(cond_reason(o, "InstallSuccessful"),
			 "UnexpectedInstallError");
	nvcf_crd_miniservice_free(o);

	/* Pending past the maximum running timeout in Starting. */
	o = miniservice_fixture("ms-new.yaml");
	r.opt.max_running_timeout_ms = 5 * MIN;
	r.obs.now_ms = T0;
	observe(&r, "utils", NVCF_CRD_OBSERVED_STARTING, NULL);
	ms_step(&r, o);
	ms_step(&r, o);
	ms_step(&r, o);
	ck_assert_int_eq(o->status.phase, NVCF_CRD_PHASE_STARTING);
	r.obs.now_ms = T0 + 5 * MIN;
	ms_step(&r, o);
	ck_assert_int_eq(o->status.phase, NVCF_CRD_PHASE_INSTALL_FAILED);
	ck_assert_str_eq(cond_reason(o, "ObjectsHealthy"),
			 "ObjectsTimedOutPending");
	run_done(&r);
	nvcf_crd_miniservice_free(o);
}
END_TEST

START_TEST(test_crd_miniservice_task)
{
	nvcf_crd_miniservice *o = miniservice_fixture("ms-new.yaml");
	run r;

	o->spec.is_task = true;
	run_init(&r, T0);
	observe(&r, "utils", NVCF_CRD_OBSERVED_RUNNING, NULL);
	ms_step(&r, o);
	ms_step(&r, o);
	ms_step(&r, o);
	ck_assert_int_eq(o->status.phase, NVCF_CRD_PHASE_RUNNING);
	observe(&r, "utils", NVCF_CRD_OBSERVED_SUCCEEDED, NULL);
	ms_step(&r, o);
	ck_assert_int_eq(o->status.phase, NVCF_CRD_PHASE_COMPLETED);
	ck_assert_int_eq(nvcf_crd_phase_observed(o->status.phase),
			 NVCF_CRD_OBSERVED_SUCCEEDED);
	nvcf_crd_miniservice_free(o);

	/* A task's failed pod is terminal at once. */
	o = miniservice_fixture("ms-new.yaml");
	o->spec.is_task = true;
	observe(&r, "utils", NVCF_CRD_OBSERVED_STARTING, NULL);
	ms_step(&r, o);
	ms_step(&r, o);
	observe(&r, "utils", NVCF_CRD_OBSERVED_FAILED, "exit code 3");
	ms_step(&r, o);
	ck_assert_int_eq(o->status.phase, NVCF_CRD_PHASE_INSTALL_FAILED);
	ck_assert_int_eq(nvcf_crd_phase_observed(o->status.phase),
			 NVCF_CRD_OBSERVED_FAILED);
	run_done(&r);
	nvcf_crd_miniservice_free(o);
}
END_TEST

/* ---- NVCFBackend reconcile --------------------------------------------- */

static void backend_step(run *r, nvcf_crd_backend *o, nvcf_status want)
{
	ck_assert_int_eq(nvcf_crd_backend_reconcile(next_acts(r), o, &r->obs,
						    &r->opt), want);
}

START_TEST(test_crd_backend_status)
{
	nvcf_crd_backend *o = backend_fixture("backend-local.yaml");
	nvcf_crd_gpu_allocation alloc[] = {{"L40S", 3}, {"H100", 5}};
	run r;

	run_init(&r, T0);
	backend_step(&r, o, NVCF_OK);
	ck_assert_int_eq(o->status.agent_status, NVCF_CRD_AGENT_UNKNOWN);
	ck_assert_uint_eq(o->status.gpu_usage_count, 2);
	ck_assert_uint_eq(count(&r, NVCF_CRD_ACTION_REPORT_STATUS), 1);

	r.obs.heartbeat_ms = T0 - 5 * SEC;
	r.obs.allocations = alloc;
	r.obs.allocations_count = 2;
	backend_step(&r, o, NVCF_OK);
	ck_assert_int_eq(o->status.agent_status, NVCF_CRD_AGENT_HEALTHY);
	ck_assert_int_eq(o->status.last_updated_agent_status_ms, T0);
	ck_assert_str_eq(o->status.gpu_usage[0].gpu, "L40S");
	ck_assert_uint_eq(o->status.gpu_usage[0].allocated, 3);
	ck_assert_uint_eq(o->status.gpu_usage[0].available, 5);
	/* Over-allocation never gives a negative availability. */
	ck_assert_uint_eq(o->status.gpu_usage[1].available, 0);

	/* Unchanged: no report, only the requeue. */
	backend_step(&r, o, NVCF_OK);
	ck_assert_uint_eq(r.acts->count, 1);
	ck_assert_int_eq(requeue(&r), 15 * SEC);

	r.opt.heartbeat_timeout_ms = 30 * SEC;
	r.obs.now_ms = T0 + 30 * SEC;
	backend_step(&r, o, NVCF_OK);
	ck_assert_int_eq(o->status.agent_status, NVCF_CRD_AGENT_UNHEALTHY);
	ck_assert_uint_eq(count(&r, NVCF_CRD_ACTION_REPORT_STATUS), 1);

	/* An invalid spec is refused and the status left alone. */
	o->spec.gpus[0].instance_types[0].gpu_count = 0;
	backend_step(&r, o, NVCF_EINVAL);
	ck_assert_ptr_null(r.acts);
	nvcf_crd_backend_free(o);
}
END_TEST

/* ---- names and options ------------------------------------------------- */

START_TEST(test_crd_names)
{
	ck_assert_str_eq(nvcf_crd_action_name(NVCF_CRD_ACTION_GARBAGE_COLLECT),
			 "garbage-collect");
	ck_assert_str_eq(nvcf_crd_action_name((nvcf_crd_action_kind_t)42),
			 "unknown");
	ck_assert_str_eq(nvcf_crd_request_status_name(
				 NVCF_CRD_REQUEST_COMPLETION_ACKNOWLEDGED),
			 "RequestCompletionAcknowledged");
	ck_assert_str_eq(nvcf_crd_request_status_name(NVCF_CRD_REQUEST_NEW),
			 "");
	ck_assert_str_eq(nvcf_crd_icms_action_name(
				 NVCF_CRD_ICMS_REQUEST_INSTANCES_FOR_TASK),
			 "RequestICMSInstancesForTask");
	ck_assert_str_eq(nvcf_crd_phase_name(NVCF_CRD_PHASE_INSTALL_FAILED),
			 "InstallFailed");
	ck_assert_str_eq(nvcf_crd_agent_status_name(NVCF_CRD_AGENT_HEALTHY),
			 "Healthy");
	ck_assert_str_eq(nvcf_crd_observed_name(NVCF_CRD_OBSERVED_SUCCEEDED),
			 "succeeded");
	ck_assert_str_eq(nvcf_crd_ack_name(NVCF_CRD_ACK_REJECTED), "rejected");
	ck_assert_str_eq(nvcf_crd_instance_kind_name(
				 NVCF_CRD_INSTANCE_MINISERVICE), "MiniService");
}
END_TEST

START_TEST(test_crd_options_init)
{
	nvcf_crd_options a = NVCF_CRD_OPTIONS_INIT, b;

	/* Compared member by member: the padding after version differs. */
	memset(&b, 0xff, sizeof(b));
	ck_assert_int_eq(nvcf_crd_options_init(&b, NVCF_CRD_OPTIONS_VERSION),
			 NVCF_OK);
	ck_assert_uint_eq(a.version, b.version);
	ck_assert_mem_eq(&a.max_running_timeout_ms, &b.max_running_timeout_ms,
			 sizeof(a) - offsetof(nvcf_crd_options,
					      max_running_timeout_ms));
	ck_assert_int_eq(a.max_running_timeout_ms, 180 * MIN);
	ck_assert_int_eq(nvcf_crd_options_init(&b, 0), NVCF_EINVAL);
	ck_assert_int_eq(nvcf_crd_options_init(NULL, 1), NVCF_EINVAL);
}
END_TEST

static Suite *crd_suite(void)
{
	Suite *s = suite_create("crd");
	TCase *codec = tcase_create("codec");
	TCase *icms = tcase_create("icms");
	TCase *ms = tcase_create("miniservice");
	TCase *backend = tcase_create("backend");

	tcase_add_test(codec, test_crd_round_trip_icms);
	tcase_add_test(codec, test_crd_round_trip_miniservice);
	tcase_add_test(codec, test_crd_round_trip_backend);
	tcase_add_test(codec, test_crd_decode_fields);
	tcase_add_test(codec, test_crd_decode_errors_icms);
	tcase_add_test(codec, test_crd_decode_errors_header);
	tcase_add_test(codec, test_crd_decode_errors_backend);
	tcase_add_test(codec, test_crd_backend_capacity_zero);
	tcase_add_test(codec, test_crd_names);
	tcase_add_test(codec, test_crd_options_init);
	tcase_add_test(icms, test_crd_icms_creation_lifecycle);
	tcase_add_test(icms, test_crd_icms_periodic_report);
	tcase_add_test(icms, test_crd_icms_restart_creates_nothing);
	tcase_add_test(icms, test_crd_icms_instance_failed);
	tcase_add_test(icms, test_crd_icms_pending_timeout);
	tcase_add_test(icms, test_crd_icms_ack_failures);
	tcase_add_test(icms, test_crd_icms_pending_stale);
	tcase_add_test(icms, test_crd_icms_reconcile_errors);
	tcase_add_test(icms, test_crd_icms_helm_task);
	tcase_add_test(icms, test_crd_icms_termination);
	tcase_add_test(icms, test_crd_icms_bad_arguments);
	tcase_add_test(ms, test_crd_miniservice_lifecycle);
	tcase_add_test(ms, test_crd_miniservice_failure_backoff);
	tcase_add_test(ms, test_crd_miniservice_install_failures);
	tcase_add_test(ms, test_crd_miniservice_task);
	tcase_add_test(backend, test_crd_backend_status);
	suite_add_tcase(s, codec);
	suite_add_tcase(s, icms);
	suite_add_tcase(s, ms);
	suite_add_tcase(s, backend);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(crd_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
