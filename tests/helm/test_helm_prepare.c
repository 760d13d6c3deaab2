/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nvcf__helm_prepare() on manifests in memory: the env entries and the
 * results volume a task's pods get, none for a function, and the charts
 * that a task rejects. Needs no podman.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent_internal.h"
#include "agent/helm.h"

#define RESULTS "/state/tasks/t1/results"

static char *const task_env[] = {
	"NVCT_TASK_ID=6f1c1e9e-0000-4000-8000-000000000001",
	"NVCT_RESULTS_DIR=" NVCF__TASK_RESULTS_MOUNT,
	"NVCT_PROGRESS_FILE_PATH=" NVCF__TASK_RESULTS_MOUNT "/progress",
	"NVCT_NCA_ID=acct-1",
	NULL};

static const nvcf__helm_task task = {task_env, RESULTS};

/* A Pod with an init container and two containers, and a Service. */
static const char pod_json[] =
	"[{\"apiVersion\":\"v1\",\"kind\":\"Pod\","
	"\"metadata\":{\"name\":\"work\",\"labels\":{\"app\":\"w\"}},"
	"\"spec\":{\"restartPolicy\":\"Never\","
	"\"volumes\":[{\"name\":\"data\",\"emptyDir\":{}}],"
	"\"initContainers\":[{\"name\":\"fetch\",\"image\":\"i\"}],"
	"\"containers\":["
	"{\"name\":\"main\",\"image\":\"i\","
	"\"ports\":[{\"containerPort\":8000}],"
	"\"env\":[{\"name\":\"MODE\",\"value\":\"fast\"},"
	"{\"name\":\"NVCT_TASK_ID\",\"value\":\"from-chart\"}],"
	"\"volumeMounts\":[{\"name\":\"data\",\"mountPath\":\"/data\"}]},"
	"{\"name\":\"uploader\",\"image\":\"i\"}]}},"
	"{\"apiVersion\":\"v1\",\"kind\":\"Service\","
	"\"metadata\":{\"name\":\"svc\"},"
	"\"spec\":{\"selector\":{\"app\":\"w\"},"
	"\"ports\":[{\"port\":8000}]}}]";

static cJSON *parse(const char *text)
{
	cJSON *docs = cJSON_Parse(text);

	ck_assert_ptr_nonnull(docs);
	return docs;
}

static cJSON *pod_spec_of(cJSON *docs)
{
	return cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(docs, 0),
						"spec");
}

static cJSON *container(cJSON *spec, const char *list, int i)
{
	return cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(spec, list),
				  i);
}

/* The values of env entry @p name of container @p c, and their count. */
static int env_values(const cJSON *c, const char *name, const char **value)
{
	const cJSON *e;
	int n = 0;

	*value = NULL;
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(c, "env")) {
		const cJSON *k = cJSON_GetObjectItemCaseSensitive(e, "name");
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, "value");

		if (cJSON_IsString(k) && strcmp(k->valuestring, name) == 0) {
			n++;
			*value = cJSON_IsString(v) ? v->valuestring : NULL;
		}
	}
	return n;
}

/* The volume mounted at @p path in container @p c, or NULL. */
static const char *mount_at(const cJSON *c, const char *path)
{
	const cJSON *m;

	cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(
				   c, "volumeMounts")) {
		const cJSON *p = cJSON_GetObjectItemCaseSensitive(m,
								  "mountPath");
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(m, "name");

		if (cJSON_IsString(p) && strcmp(p->valuestring, path) == 0)
			return cJSON_IsString(n) ? n->valuestring : "";
	}
	return NULL;
}

static const cJSON *volume_named(cJSON *spec, const char *name)
{
	const cJSON *v;

	cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(spec,
							       "volumes")) {
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(v, "name");

		if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0)
			return v;
	}
	return NULL;
}

static void expect_task_container(const cJSON *c)
{
	const char *value;

	for (size_t i = 0; task_env[i] != NULL; i++) {
		const char *eq = strchr(task_env[i], '=');
		char name[64];

		snprintf(name, sizeof(name), "%.*s",
			 (int)(eq - task_env[i]), task_env[i]);
		ck_assert_int_eq(env_values(c, name, &value), 1);
		ck_assert_str_eq(value, eq + 1);
	}
	ck_assert_str_eq(mount_at(c, NVCF__TASK_RESULTS_MOUNT),
			 NVCF__HELM_RESULTS_VOLUME);
}

START_TEST(task_pod_gets_env_and_volume)
{
	cJSON *docs = parse(pod_json), *spec;
	const cJSON *vol, *host;
	const char *value;

	ck_assert_int_eq(nvcf__helm_prepare(docs, "ms-1", "c1", NULL, 0,
					    &task), NVCF_OK);
	spec = pod_spec_of(docs);
	expect_task_container(container(spec, "initContainers", 0));
	expect_task_container(container(spec, "containers", 0));
	expect_task_container(container(spec, "containers", 1));

	/* The chart's own entries and mounts stay. */
	ck_assert_int_eq(env_values(container(spec, "containers", 0), "MODE",
				    &value), 1);
	ck_assert_str_eq(value, "fast");
	ck_assert_str_eq(mount_at(container(spec, "containers", 0), "/data"),
			 "data");
	ck_assert_ptr_nonnull(volume_named(spec, "data"));

	vol = volume_named(spec, NVCF__HELM_RESULTS_VOLUME);
	ck_assert_ptr_nonnull(vol);
	host = cJSON_GetObjectItemCaseSensitive(vol, "hostPath");
	ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(host,
							  "path")->valuestring,
			 RESULTS);
	ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(host,
							  "type")->valuestring,
			 "Directory");
	cJSON_Delete(docs);
}
END_TEST

START_TEST(function_pod_gets_neither)
{
	cJSON *docs = parse(pod_json), *spec, *c;
	const char *value;

	ck_assert_int_eq(nvcf__helm_prepare(docs, "ms-1", "c1", "svc", 18000,
					    NULL), NVCF_OK);
	spec = pod_spec_of(docs);
	ck_assert_ptr_null(volume_named(spec, NVCF__HELM_RESULTS_VOLUME));
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(spec,
							       "containers")) {
		ck_assert_ptr_null(mount_at(c, NVCF__TASK_RESULTS_MOUNT));
		ck_assert_int_eq(env_values(c, "NVCT_RESULTS_DIR", &value),
				 0);
		ck_assert_int_eq(env_values(c, "NVCT_PROGRESS_FILE_PATH",
					    &value), 0);
	}
	ck_assert_int_eq(env_values(container(spec, "containers", 0),
				    "NVCT_TASK_ID", &value), 1);
	ck_assert_str_eq(value, "from-chart");
	ck_assert_ptr_null(mount_at(container(spec, "initContainers", 0),
				    NVCF__TASK_RESULTS_MOUNT));
	cJSON_Delete(docs);
}
END_TEST

START_TEST(task_deployment_template_gets_them)
{
	cJSON *docs = parse(
		"[{\"kind\":\"Deployment\",\"metadata\":{\"name\":\"dep\"},"
		"\"spec\":{\"template\":{\"metadata\":{},\"spec\":{"
		"\"containers\":[{\"name\":\"main\",\"image\":\"i\"}]}}}}]");
	cJSON *spec = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(
			cJSON_GetObjectItemCaseSensitive(
				cJSON_GetArrayItem(docs, 0), "spec"),
			"template"), "spec");

	ck_assert_int_eq(nvcf__helm_prepare(docs, "ms-1", "c1", NULL, 0,
					    &task), NVCF_OK);
	expect_task_container(container(spec, "containers", 0));
	ck_assert_ptr_nonnull(volume_named(spec, NVCF__HELM_RESULTS_VOLUME));
	cJSON_Delete(docs);
}
END_TEST

/* Prepares a task Pod whose container "main" mounts "out" at @p path. */
static nvcf_status prepare_mount(const char *path)
{
	char text[1024];
	cJSON *docs;
	nvcf_status st;

	snprintf(text, sizeof(text),
		 "[{\"kind\":\"Pod\",\"metadata\":{\"name\":\"work\"},"
		 "\"spec\":{\"volumes\":[{\"name\":\"out\",\"emptyDir\":{}}],"
		 "\"containers\":[{\"name\":\"side\",\"image\":\"i\"},"
		 "{\"name\":\"main\",\"image\":\"i\",\"volumeMounts\":"
		 "[{\"name\":\"out\",\"mountPath\":\"%s\"}]}]}}]", path);
	docs = parse(text);
	st = nvcf__helm_prepare(docs, "ms-1", "c1", NULL, 0, &task);
	cJSON_Delete(docs);
	return st;
}

START_TEST(task_results_mount_conflict_rejected)
{
	static const char *const taken[] = {
		"/var/task/results", "/var/task/results/",
		"//var/task//results", "/var/task/results/sub"};
	char want[256];

	for (size_t i = 0; i < sizeof(taken) / sizeof(taken[0]); i++) {
		ck_assert_int_eq(prepare_mount(taken[i]), NVCF_EINVAL);
		snprintf(want, sizeof(want), "Pod 'work', container 'main' "
			 "mounts volume 'out' at %s, where nvca mounts the "
			 "task's results directory (/var/task/results): "
			 "remove that mount from the chart", taken[i]);
		ck_assert_str_eq(nvcf_error_last()->message, want);
	}
}
END_TEST

START_TEST(task_nearby_mounts_accepted)
{
	ck_assert_int_eq(prepare_mount("/var/task"), NVCF_OK);
	ck_assert_int_eq(prepare_mount("/var/task/resultsx"), NVCF_OK);
	ck_assert_int_eq(prepare_mount("/var/task/result"), NVCF_OK);
}
END_TEST

START_TEST(function_may_mount_results_path)
{
	cJSON *docs = parse(
		"[{\"kind\":\"Pod\",\"metadata\":{\"name\":\"work\"},"
		"\"spec\":{\"containers\":[{\"name\":\"main\",\"image\":\"i\","
		"\"volumeMounts\":[{\"name\":\"out\",\"mountPath\":"
		"\"/var/task/results\"}]}]}}]");

	ck_assert_int_eq(nvcf__helm_prepare(docs, "ms-1", "c1", NULL, 0,
					    NULL), NVCF_OK);
	cJSON_Delete(docs);
}
END_TEST

START_TEST(task_volume_name_taken_rejected)
{
	cJSON *docs = parse(
		"[{\"kind\":\"Pod\",\"metadata\":{\"name\":\"work\"},"
		"\"spec\":{\"volumes\":[{\"name\":\"nvct-task-results\"}],"
		"\"containers\":[{\"name\":\"main\",\"image\":\"i\"}]}}]");

	ck_assert_int_eq(nvcf__helm_prepare(docs, "ms-1", "c1", NULL, 0,
					    &task), NVCF_EINVAL);
	ck_assert_str_eq(nvcf_error_last()->message,
			 "Pod 'work' has a volume named 'nvct-task-results', "
			 "the name nvca gives the task's results directory: "
			 "rename that volume");
	cJSON_Delete(docs);
}
END_TEST

START_TEST(task_env_not_list_rejected)
{
	cJSON *docs = parse(
		"[{\"kind\":\"Pod\",\"metadata\":{\"name\":\"work\"},"
		"\"spec\":{\"containers\":[{\"name\":\"main\",\"image\":\"i\","
		"\"env\":{\"A\":\"1\"}}]}}]");

	ck_assert_int_eq(nvcf__helm_prepare(docs, "ms-1", "c1", NULL, 0,
					    &task), NVCF_EINVAL);
	ck_assert_str_eq(nvcf_error_last()->message,
			 "Pod 'work', container 'main': env is not a list: "
			 "fix the chart's manifest");
	cJSON_Delete(docs);
}
END_TEST

static Suite *prepare_suite(void)
{
	Suite *s = suite_create("helm-prepare");
	TCase *tc = tcase_create("prepare");

	tcase_add_test(tc, task_pod_gets_env_and_volume);
	tcase_add_test(tc, function_pod_gets_neither);
	tcase_add_test(tc, task_deployment_template_gets_them);
	tcase_add_test(tc, task_results_mount_conflict_rejected);
	tcase_add_test(tc, task_nearby_mounts_accepted);
	tcase_add_test(tc, function_may_mount_results_path);
	tcase_add_test(tc, task_volume_name_taken_rejected);
	tcase_add_test(tc, task_env_not_list_rejected);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(prepare_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
