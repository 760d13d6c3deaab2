/* SPDX-License-Identifier: Apache-2.0 */
/*
 * NVCT tasks on the control plane: the /v1/nvct/... routes of nvcf-api,
 * the timer that expires queued tasks and places tasks that found no
 * room, and the calls through which a cluster agent reports a task's
 * progress and results. docs/internals.md ("Tasks") is the contract.
 */
#ifndef NVCF_API_TASKS_H
#define NVCF_API_TASKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "auth/keys.h"
#include "core/internal.h"
#include "http/http.h"
#include "nvcf/bus.h"

/* Streams of task events and task results (subjects nvct.evt.>, nvct.res.>). */
#define NVCF_STREAM_TASK_EVENTS "NVCT_EVENTS"
#define NVCF_STREAM_TASK_RESULTS "NVCT_RESULTS"

typedef struct nvcf__tasks nvcf__tasks;

typedef struct nvcf__tasks_config {
	nvcf_bus *bus;             /* borrowed; outlives the object */
	int64_t cluster_stale_ms;  /* heartbeat age of a dead cluster */
	int64_t tick_ms;           /* timer period; 0 means 1000 */
	int max_in_flight;         /* per account; 0 means 50 */
} nvcf__tasks_config;

/* Creates the service and the two task streams when they are missing. */
nvcf_status nvcf__tasks_new(nvcf__tasks **out, const nvcf__tasks_config *cfg);
void nvcf__tasks_free(nvcf__tasks *t);

/* Starts and stops the timer thread; stop is idempotent. */
nvcf_status nvcf__tasks_start(nvcf__tasks *t);
void nvcf__tasks_stop(nvcf__tasks *t);

/* Runs one timer pass at once (tests and embedders without the thread). */
void nvcf__tasks_sweep(nvcf__tasks *t);

/*
 * Routing, for the HTTP handler of nvcf-api. match returns 0 when the
 * path segments ("v1", "nvct", ...) name no task route, else a route id
 * for allowed (the Allow header value), scope (the scope bit a method
 * needs) and dispatch. dispatch answers the request and returns the HTTP
 * status it sent.
 */
int nvcf__tasks_match(char *const *segs, int nsegs);
const char *nvcf__tasks_allowed(int route);
uint32_t nvcf__tasks_scope(int route, const char *method);
unsigned int nvcf__tasks_dispatch(nvcf__tasks *t, nvcf__http_req *req,
				  const nvcf__key_record *key, int route,
				  char *const *segs, int nsegs);

/*
 * Validates a CreateTaskRequest (JSON text of @p len bytes). On success
 * @p out (may be NULL) receives the TaskDto fields the request defines,
 * with defaults applied. On NVCF_EINVAL @p detail names the field and the
 * rule, and @p framework_out (may be NULL) tells whether NVCF reports it
 * with problem type "about:blank".
 */
nvcf_status nvcf__task_validate(const char *json, size_t len, cJSON **out,
				char *detail, size_t detail_size,
				bool *framework_out);

/* True for the five terminal statuses. */
bool nvcf__task_status_terminal(const char *status);

/* True when the status machine allows @p from -> @p to. */
bool nvcf__task_transition_allowed(const char *from, const char *to);

/* What a cluster agent reports about one task; see nvcf__task_report. */
typedef struct nvcf__task_report_info {
	const char *status;       /* new status; NULL keeps it */
	int percent_complete;     /* 0..100; -1 keeps it */
	const char *error;        /* healthInfo.error on ERRORED; may be NULL */
	/* One instances[] entry (JSON object) upserted by instanceId. */
	const char *instance_json;
	const char *message;      /* extra event text; may be NULL */
} nvcf__task_report_info;

#define NVCF__TASK_REPORT_INIT {NULL, -1, NULL, NULL, NULL}

/*
 * Applies an agent's report to the record {ncaId}.{taskId} of KV
 * nvcf_tasks with compare-and-set, stamps lastHeartbeatAt, and appends an
 * event per status change. percentComplete 100 completes a task that is
 * not terminal. Returns NVCF_ENOTFOUND for an unknown task, NVCF_EPERM
 * when the task is already terminal (the agent stops it then), NVCF_EINVAL
 * for a transition the status machine forbids or a percentage that goes
 * down.
 */
nvcf_status nvcf__task_report(nvcf_bus *bus, const char *nca_id,
			      const char *task_id,
			      const nvcf__task_report_info *info);

/*
 * Stores one result of a task on nvct.res.{taskId}.{resultId} (stream
 * NVCT_RESULTS). @p metadata_json is a JSON object or NULL; @p name
 * follows the progress-file rules (1 to 190 of letters, digits and
 * !-_.*'()). The result id is written to @p result_id_out (may be NULL).
 */
nvcf_status nvcf__task_add_result(nvcf_bus *bus, const char *nca_id,
				  const char *task_id, const char *name,
				  const char *metadata_json,
				  char result_id_out[NVCF_UUID_LEN + 1]);

/*
 * Like nvcf__task_add_result(), and stores @p content_len bytes of
 * @p content as chunks on nvct.res.{taskId}.{resultId}.{n} first, with
 * their count in metadata.contentChunks. The metadata must hold the
 * content's sizeBytes and hex sha256, which GET
 * .../results/{resultId}/content checks.
 */
nvcf_status nvcf__task_add_result_content(
	nvcf_bus *bus, const char *nca_id, const char *task_id,
	const char *name, const char *metadata_json, const void *content,
	size_t content_len, char result_id_out[NVCF_UUID_LEN + 1]);

#endif /* NVCF_API_TASKS_H */
