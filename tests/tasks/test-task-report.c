/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent side of the task contract (nvcf__task_report and
 * nvcf__task_add_result) and the CreateTaskRequest validator, against the
 * nats-server that run_with_nats.py starts (NVCF_TEST_NATS_URL).
 */
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <cjson/cJSON.h>

#include "api/tasks.h"

#define NCA "acct-r"
#define TID "0b5c6f1e-1d2a-4c3b-9e8f-7a6b5c4d3e2f"
#define KEY NCA "." TID

static nvcf_bus *bus;

static void setup(void)
{
	nvcf_bus_options o = NVCF_BUS_OPTIONS_INIT;
	nvcf__tasks_config tc = {NULL, 0, 0, 0};
	nvcf__tasks *t = NULL;
	const char *rec = "{\"id\":\"" TID "\",\"ncaId\":\"" NCA "\","
			  "\"name\":\"r\",\"status\":\"QUEUED\"}";

	o.url = getenv("NVCF_TEST_NATS_URL");
	ck_assert_ptr_nonnull(o.url);
	ck_assert_int_eq(nvcf_bus_new(&bus, &o), NVCF_OK);
	ck_assert_int_eq(nvcf_bus_ensure_control(bus), NVCF_OK);
	tc.bus = bus;
	ck_assert_int_eq(nvcf__tasks_new(&t, &tc), NVCF_OK);
	nvcf__tasks_free(t);
	ck_assert_int_eq(nvcf_bus_kv_put(bus, NVCF_BUCKET_TASKS, KEY, rec,
					 strlen(rec), NULL),
			 NVCF_OK);
}

static void teardown(void)
{
	nvcf_bus_free(bus);
}

static cJSON *load(void)
{
	char *text = NULL;
	cJSON *rec;

	ck_assert_int_eq(nvcf_bus_kv_get(bus, NVCF_BUCKET_TASKS, KEY, &text,
					 NULL, NULL),
			 NVCF_OK);
	rec = cJSON_Parse(text);
	nvcf_free(text);
	return rec;
}

static const char *status_of(cJSON *rec)
{
	return cJSON_GetObjectItem(rec, "status")->valuestring;
}

START_TEST(report_moves_status_forward)
{
	nvcf__task_report_info r = NVCF__TASK_REPORT_INIT;
	cJSON *rec;

	r.status = "RUNNING";
	r.instance_json = "{\"instanceId\":\"i-1\",\"instanceState\":"
			  "\"RUNNING\"}";
	ck_assert_int_eq(nvcf__task_report(bus, NCA, TID, &r), NVCF_OK);
	r = (nvcf__task_report_info)NVCF__TASK_REPORT_INIT;
	r.percent_complete = 40;
	ck_assert_int_eq(nvcf__task_report(bus, NCA, TID, &r), NVCF_OK);
	rec = load();
	ck_assert_str_eq(status_of(rec), "RUNNING");
	ck_assert_int_eq(cJSON_GetObjectItem(rec, "percentComplete")->valueint,
			 40);
	ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(rec,
								"instances")),
			 1);
	ck_assert_ptr_nonnull(cJSON_GetObjectItem(rec, "lastHeartbeatAt"));
	cJSON_Delete(rec);

	/* Progress never goes down, and a status never goes back. */
	r.percent_complete = 30;
	ck_assert_int_eq(nvcf__task_report(bus, NCA, TID, &r), NVCF_EINVAL);
	r = (nvcf__task_report_info)NVCF__TASK_REPORT_INIT;
	r.status = "LAUNCHED";
	ck_assert_int_eq(nvcf__task_report(bus, NCA, TID, &r), NVCF_EINVAL);

	/* 100 % completes the task; later reports are refused. */
	r = (nvcf__task_report_info)NVCF__TASK_REPORT_INIT;
	r.percent_complete = 100;
	ck_assert_int_eq(nvcf__task_report(bus, NCA, TID, &r), NVCF_OK);
	rec = load();
	ck_assert_str_eq(status_of(rec), "COMPLETED");
	cJSON_Delete(rec);
	r.status = "RUNNING";
	ck_assert_int_eq(nvcf__task_report(bus, NCA, TID, &r), NVCF_EPERM);
}
END_TEST

START_TEST(report_errored_sets_health_info)
{
	nvcf__task_report_info r = NVCF__TASK_REPORT_INIT;
	cJSON *rec, *hi;

	r.status = "ERRORED";
	r.error = "exit status 3";
	ck_assert_int_eq(nvcf__task_report(bus, NCA, TID, &r), NVCF_OK);
	rec = load();
	ck_assert_str_eq(status_of(rec), "ERRORED");
	hi = cJSON_GetObjectItem(rec, "healthInfo");
	ck_assert_str_eq(cJSON_GetObjectItem(hi, "error")->valuestring,
			 "exit status 3");
	cJSON_Delete(rec);
	ck_assert_int_eq(nvcf__task_report(bus, NCA,
					   "1b5c6f1e-1d2a-4c3b-9e8f-7a6b5c4d3e2f",
					   &r),
			 NVCF_ENOTFOUND);
}
END_TEST

START_TEST(add_result_checks_name_and_metadata)
{
	char id[NVCF_UUID_LEN + 1] = "";

	ck_assert_int_eq(nvcf__task_add_result(bus, NCA, TID, "out.tar",
					       "{\"score\":1}", id),
			 NVCF_OK);
	ck_assert(nvcf__uuid_valid(id));
	ck_assert_int_eq(nvcf__task_add_result(bus, NCA, TID, "a/b", NULL,
					       NULL),
			 NVCF_EINVAL);
	ck_assert_int_eq(nvcf__task_add_result(bus, NCA, TID, "ok", "[1]",
					       NULL),
			 NVCF_EINVAL);
}
END_TEST

START_TEST(transitions_follow_the_machine)
{
	ck_assert(nvcf__task_transition_allowed("QUEUED", "RUNNING"));
	ck_assert(nvcf__task_transition_allowed(
		"QUEUED", "EXCEEDED_MAX_QUEUED_DURATION"));
	ck_assert(!nvcf__task_transition_allowed(
		"RUNNING", "EXCEEDED_MAX_QUEUED_DURATION"));
	ck_assert(!nvcf__task_transition_allowed(
		"QUEUED", "EXCEEDED_MAX_RUNTIME_DURATION"));
	ck_assert(!nvcf__task_transition_allowed("CANCELED", "RUNNING"));
	ck_assert(!nvcf__task_transition_allowed("RUNNING", "QUEUED"));
}
END_TEST

START_TEST(validate_names_the_field)
{
	char detail[768];
	bool framework = false;
	cJSON *out = NULL;
	const char *ok = "{\"name\":\"t\",\"containerImage\":\"img\","
			 "\"resultHandlingStrategy\":\"none\","
			 "\"gpuSpecification\":{\"gpu\":\"L40S\","
			 "\"instanceType\":\"X\"}}";
	const char *bad = "{\"name\":\"t\",\"containerImage\":\"img\","
			  "\"maxRuntimeDuration\":\"-PT1S\","
			  "\"gpuSpecification\":{\"gpu\":\"L40S\","
			  "\"instanceType\":\"X\"}}";

	ck_assert_int_eq(nvcf__task_validate(ok, strlen(ok), &out, detail,
					     sizeof(detail), &framework),
			 NVCF_OK);
	ck_assert_str_eq(cJSON_GetObjectItem(out,
					     "resultHandlingStrategy")
				 ->valuestring,
			 "NONE");
	cJSON_Delete(out);
	ck_assert_int_eq(nvcf__task_validate(bad, strlen(bad), NULL, detail,
					     sizeof(detail), &framework),
			 NVCF_EINVAL);
	ck_assert_ptr_nonnull(strstr(detail, "field=maxRuntimeDuration"));
	ck_assert(framework);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("tasks");
	TCase *bus_case = tcase_create("bus");
	TCase *pure = tcase_create("pure");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(bus_case, setup, teardown);
	tcase_set_timeout(bus_case, 30);
	tcase_add_test(bus_case, report_moves_status_forward);
	tcase_add_test(bus_case, report_errored_sets_health_info);
	tcase_add_test(bus_case, add_result_checks_name_and_metadata);
	tcase_add_test(pure, transitions_follow_the_machine);
	tcase_add_test(pure, validate_names_the_field);
	suite_add_tcase(s, bus_case);
	suite_add_tcase(s, pure);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
