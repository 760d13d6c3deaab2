/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helm workloads of the cluster agent: one MiniService (nvcf/crd.h) per
 * Helm function or task instance, run as pods with `podman kube play`.
 *
 * A chart is rendered with `helm template` when helm is on PATH; without
 * helm only file:// URLs of rendered manifests (YAML or JSON, several
 * documents) are accepted. Pods get the label
 * nvcf.nvidia.io/miniservice={name} so that they can be found again, and
 * the Service named by helmChartServiceName is published on 127.0.0.1 by
 * giving the container port it targets a hostPort.
 *
 * podman runs as a child that delivers no SIGCHLD, so the agent's reaper
 * (waitpid(-1)) never takes its exit status.
 */
#ifndef NVCF_AGENT_HELM_H
#define NVCF_AGENT_HELM_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "core/internal.h"
#include "nvcf/bus.h"
#include "nvcf/crd.h"

/* Label that names the MiniService of a pod. */
#define NVCF__HELM_LABEL "nvcf.nvidia.io/miniservice"
/* Label that names the cluster whose agent started a pod. */
#define NVCF__HELM_CLUSTER_LABEL "nvcf.nvidia.io/cluster"

/* Volume that mounts a task's results directory in its pods. */
#define NVCF__HELM_RESULTS_VOLUME "nvct-task-results"

typedef struct nvcf__helm nvcf__helm;
typedef struct nvcf__helm_ms nvcf__helm_ms;

/*
 * What a Helm task gives every container of its pods, init containers
 * included.
 */
typedef struct nvcf__helm_task {
	/* NAME=VALUE entries, NULL-terminated; each replaces the chart's
	 * env entries of that name, and other names stay as they are. */
	char *const *env;
	/* Host directory mounted at NVCF__TASK_RESULTS_MOUNT with a
	 * hostPath volume named NVCF__HELM_RESULTS_VOLUME; required. */
	const char *results_dir;
} nvcf__helm_task;

typedef struct nvcf__helm_options {
	unsigned int version;      /* NVCF__HELM_OPTIONS_VERSION */
	/* podman executable (a wrapper that adds --root and such is
	 * fine); required. */
	const char *podman;
	/* URL of a podman service (unix:///path.sock) that podman is sent
	 * to with --url, or NULL to run podman on its local storage. */
	const char *url;
	/* helm executable, or NULL to look for "helm" on PATH. */
	const char *helm;
	/* Rendered manifests and podman output go to {state_dir}/helm. */
	const char *state_dir;
	const char *cluster_id;    /* required */
	/* MiniService records go to KV bucket (key miniservice.{name});
	 * NULL bus: not stored. Borrowed. */
	nvcf_bus *bus;
	const char *bucket;
	/* Time constants of the MiniService steps, or NULL for defaults. */
	const nvcf_crd_options *crd;
	/* Interval of pod observations in ms; 0 means 500. */
	int64_t poll_ms;
} nvcf__helm_options;

#define NVCF__HELM_OPTIONS_VERSION 1
#define NVCF__HELM_OPTIONS_INIT                                               \
	{NVCF__HELM_OPTIONS_VERSION, NULL, NULL, NULL, NULL, NULL, NULL,       \
	 NULL, NULL, 0}

/*
 * Creates the Helm runtime. Pods of @p cluster_id left by an earlier
 * agent are removed with their MiniService records, because their
 * instances are not adopted (they have no process to find).
 *
 * @return NVCF_OK; NVCF_EINVAL naming a missing option; NVCF_EIO when
 *         the state directory cannot be made; NVCF_ENOMEM
 */
nvcf_status nvcf__helm_new(nvcf__helm **out, const nvcf__helm_options *o);

/* Releases the runtime; every MiniService must be freed first. */
void nvcf__helm_free(nvcf__helm *h);

/*
 * Creates the MiniService @p name (the instance id) of ICMSRequest
 * @p icms_name from its launch specification: the function or task
 * record with helmChart, helmChartServiceName and, for Helm values,
 * configuration (or gpuSpecification.configuration of a task). @p task
 * is NULL for a function. A task's @p task is copied, and its pods get
 * the env entries and the results directory (see nvcf__helm_prepare()).
 * Nothing runs until nvcf__helm_ms_up().
 *
 * @return NVCF_OK; NVCF_EINVAL when the specification has no helmChart,
 *         a function has no helmChartServiceName, or @p task has no
 *         results_dir; NVCF_ENOMEM
 */
nvcf_status nvcf__helm_ms_new(nvcf__helm *h, nvcf__helm_ms **out,
			      const char *name, const char *icms_name,
			      const char *launch_json,
			      const nvcf__helm_task *task);

/*
 * Starts the MiniService's reconcile thread and waits until its phase is
 * Running (or Completed, for a task), a failed phase, or @p timeout_ms
 * passed. A function's Service is published on 127.0.0.1:@p host_port.
 *
 * @return NULL when Running or Completed, else the reason it is not, to
 *         be released with free()
 */
char *nvcf__helm_ms_up(nvcf__helm_ms *ms, int host_port, int64_t timeout_ms);

/*
 * The phase last observed, and in @p reason (may be NULL; released with
 * free()) why a failed phase failed. Never blocks on podman.
 */
nvcf_crd_phase_t nvcf__helm_ms_phase(nvcf__helm_ms *ms, char **reason);

/*
 * Stops the reconcile thread, removes the pods and the MiniService
 * record. Idempotent; blocks while podman removes the pods.
 */
void nvcf__helm_ms_down(nvcf__helm_ms *ms);

/* Calls nvcf__helm_ms_down() and releases @p ms. Accepts NULL. */
void nvcf__helm_ms_free(nvcf__helm_ms *ms);

/*
 * Renders @p chart_url with @p values_json (a JSON object, or NULL) into
 * a cJSON array of manifest objects. Exposed for tests.
 *
 * @return NVCF_OK; NVCF_EINVAL for a chart that needs helm while helm is
 *         missing, or manifests that do not parse (the message says
 *         which); NVCF_ENOTFOUND for a missing file; NVCF_ENOMEM
 */
nvcf_status nvcf__helm_render(nvcf__helm *h, const char *release,
			      const char *chart_url, const char *values_json,
			      cJSON **docs_out);

/*
 * Prepares rendered manifests for podman: labels every Pod (and Pod
 * template) with @p ms_name and @p cluster_id, prefixes workload names
 * with @p ms_name so that they are unique on the host, and, when
 * @p service is not NULL, finds the container port the Service targets
 * and publishes it on 127.0.0.1:@p host_port. When @p task is not NULL,
 * every container and init container gets the task's env entries and a
 * mount of its results directory at NVCF__TASK_RESULTS_MOUNT. Exposed for
 * tests.
 *
 * @return NVCF_OK; NVCF_EINVAL naming the missing Service, port or Pod.
 *         For a task also NVCF_EINVAL naming the pod and container that
 *         mount a volume at or below NVCF__TASK_RESULTS_MOUNT, the pod
 *         with a volume named NVCF__HELM_RESULTS_VOLUME, or the env,
 *         volumeMounts or volumes field that is not a list; NVCF_ENOMEM
 */
nvcf_status nvcf__helm_prepare(cJSON *docs, const char *ms_name,
			       const char *cluster_id, const char *service,
			       int host_port, const nvcf__helm_task *task);

#endif /* NVCF_AGENT_HELM_H */
