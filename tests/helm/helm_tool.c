/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Runs one MiniService of the agent's Helm runtime to its end, for the
 * pytest suite, without a bus:
 *
 *   helm-tool SOCKET STATE_DIR function|task CHART_URL [SERVICE PORT]
 *
 * Prints "phase=PHASE" and, when it failed, "reason=..." on stdout;
 * exits 0 when the phase is Running (functions) or Completed (tasks).
 * A task's results directory is STATE_DIR/results, and its containers get
 * NVCT_TASK_ID=tool-task and the NVCT results variables.
 * `helm-tool render CHART_URL` prints the render error or "ok".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent_internal.h"

#include "agent/helm.h"

int main(int argc, char **argv)
{
	nvcf__helm_options o = NVCF__HELM_OPTIONS_INIT;
	nvcf__helm *h = NULL;
	nvcf__helm_ms *ms = NULL;
	nvcf_crd_options crd = NVCF_CRD_OPTIONS_INIT;
	char *const task_env[] = {
		"NVCT_TASK_ID=tool-task",
		"NVCT_RESULTS_DIR=" NVCF__TASK_RESULTS_MOUNT,
		"NVCT_PROGRESS_FILE_PATH=" NVCF__TASK_RESULTS_MOUNT "/progress",
		NULL};
	nvcf__helm_task task_spec = {task_env, NULL};
	char url[512], results[512], *launch, *why, *reason = NULL;
	nvcf_crd_phase_t phase;
	bool task;
	int rc;

	if (argc == 4 && strcmp(argv[1], "render") == 0) {
		cJSON *docs = NULL;

		o.podman = "podman";
		o.state_dir = argv[3];
		o.cluster_id = "test";
		o.url = "unix:///nonexistent";
		if (nvcf__helm_new(&h, &o) != NVCF_OK)
			return 2;
		if (nvcf__helm_render(h, "r", argv[2], NULL, &docs) ==
		    NVCF_OK)
			printf("ok %d\n", cJSON_GetArraySize(docs));
		else
			printf("%s\n", nvcf_error_last()->message);
		cJSON_Delete(docs);
		nvcf__helm_free(h);
		return 0;
	}
	if (argc < 5) {
		fprintf(stderr, "usage: helm-tool SOCKET STATE_DIR "
			"function|task CHART_URL [SERVICE PORT]\n");
		return 2;
	}
	task = strcmp(argv[3], "task") == 0;
	snprintf(url, sizeof(url), "unix://%s", argv[1]);
	crd.failure_backoff_ms = 1000;
	o.podman = getenv("NVCF_PODMAN") ? getenv("NVCF_PODMAN") : "podman";
	o.url = url;
	o.state_dir = argv[2];
	o.cluster_id = "helm-test";
	o.crd = &crd;
	o.poll_ms = 200;
	if (nvcf__helm_new(&h, &o) != NVCF_OK) {
		fprintf(stderr, "%s\n", nvcf_error_last()->message);
		return 2;
	}
	snprintf(results, sizeof(results), "%s/results", argv[2]);
	if (task && mkdir(results, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "cannot create %s: %s\n", results,
			strerror(errno));
		return 2;
	}
	task_spec.results_dir = results;
	launch = nvcf__asprintf("{\"helmChart\":\"%s\",\"helmChartServiceName"
				"\":\"%s\"}", argv[4],
				argc > 5 ? argv[5] : "svc");
	if (nvcf__helm_ms_new(h, &ms, task ? "tool-task-miniservice" :
			      "tool-fn-miniservice", "tool", launch,
			      task ? &task_spec : NULL) !=
	    NVCF_OK) {
		fprintf(stderr, "%s\n", nvcf_error_last()->message);
		return 2;
	}
	why = nvcf__helm_ms_up(ms, argc > 6 ? atoi(argv[6]) : 0, 60000);
	/* A task runs on to its end. */
	for (int i = 0; task && why == NULL && i < 600; i++) {
		phase = nvcf__helm_ms_phase(ms, &reason);
		if (phase == NVCF_CRD_PHASE_COMPLETED)
			break;
		if (phase >= NVCF_CRD_PHASE_INSTALL_FAILED)
			why = reason ? reason : nvcf__strdup("failed");
		else
			free(reason);
		reason = NULL;
		usleep(100000);
	}
	phase = nvcf__helm_ms_phase(ms, &reason);
	printf("phase=%s\n", nvcf_crd_phase_name(phase));
	if (why != NULL)
		printf("reason=%s\n", why);
	rc = why == NULL ? 0 : 1;
	free(why);
	free(reason);
	free(launch);
	nvcf__helm_ms_free(ms);
	nvcf__helm_free(h);
	return rc;
}
