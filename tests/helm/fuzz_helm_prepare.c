/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target of nvcf__helm_prepare() on chart manifests given as JSON:
 * an array of documents, or one document. Each input is prepared twice,
 * as a task (env entries and results volume) and as a function that
 * publishes Service "svc". tests/fuzz/fuzz_main.c replays the seed corpus
 * through it as a unit test; with -Dfuzzing=true it is also built as a
 * libFuzzer binary.
 */
#include <stdint.h>
#include <stdlib.h>

#include "agent/agent_internal.h"
#include "agent/helm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *const task_env[] = {
	"NVCT_TASK_ID=fuzz",
	"NVCT_RESULTS_DIR=" NVCF__TASK_RESULTS_MOUNT,
	"NVCT_PROGRESS_FILE_PATH=" NVCF__TASK_RESULTS_MOUNT "/progress",
	NULL};

static cJSON *as_docs(const uint8_t *data, size_t size)
{
	cJSON *doc = cJSON_ParseWithLength((const char *)data, size), *docs;

	if (doc == NULL || cJSON_IsArray(doc))
		return doc;
	docs = cJSON_CreateArray();
	if (docs == NULL) {
		cJSON_Delete(doc);
		return NULL;
	}
	cJSON_AddItemToArray(docs, doc);
	return docs;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const nvcf__helm_task task = {task_env, "/state/tasks/fuzz/results"};
	cJSON *docs = as_docs(data, size);

	if (docs == NULL)
		return 0;
	nvcf__helm_prepare(docs, "ms-fuzz", "cluster", NULL, 0, &task);
	/* A prepared result must print: no cycle or dangling item. */
	free(cJSON_PrintUnformatted(docs));
	cJSON_Delete(docs);
	docs = as_docs(data, size);
	if (docs == NULL)
		return 0;
	nvcf__helm_prepare(docs, "ms-fuzz", "cluster", "svc", 18000, NULL);
	free(cJSON_PrintUnformatted(docs));
	cJSON_Delete(docs);
	return 0;
}
