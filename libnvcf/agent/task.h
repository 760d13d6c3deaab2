/* SPDX-License-Identifier: Apache-2.0 */
/*
 * NVCT tasks on the cluster agent: runs the task orders nvca receives
 * (Create.NVCA.Task...) as local processes, containers or Helm
 * MiniServices, watches their progress file and runtime, and reports to
 * the task record through nvcf__task_report() and nvcf__task_add_result()
 * (api/tasks.h). docs/internals.md ("Tasks") is the contract.
 *
 * The order is recorded as a task record, not as an ICMSRequest: key
 * task.{taskId} in KV nvca_{clusterId} contains {"taskId","ncaId",
 * "icmsRequestId","gpu","instanceType","gpus","pid","state","directory",
 * "startedAt"} while the task runs on this agent, and is deleted when it
 * ends. An agent that starts finds the records of its predecessor, stops
 * what is left of those tasks and reports them ERRORED.
 */
#ifndef NVCF_AGENT_TASK_H
#define NVCF_AGENT_TASK_H

#include <stdbool.h>
#include <sys/types.h>

#include <nats/nats.h>

#include "agent_internal.h"
#include "container_rt.h"
#include "helm.h"
#include "nvcf.pb-c.h"
#include "nvcf/agent.h"
#include "nvcf/bus.h"

typedef struct nvcf__task_runner nvcf__task_runner;

/*
 * Creates the runner of agent @p agent and settles the task records an
 * earlier agent of the cluster left. Call it once the cluster's bucket
 * exists and before orders are consumed.
 */
nvcf_status nvcf__task_runner_new(nvcf__task_runner **out, nvcf_agent *agent);

/*
 * Lends the runner the agent's container runtime and Helm runtime (either
 * may be NULL), which nvca has with --docker-socket: a task with a
 * container image then runs as a container with its results directory
 * bind-mounted at NVCF__TASK_RESULTS_MOUNT, and a helmChart task as a task
 * MiniService whose containers get the same env and the same directory
 * as a hostPath volume. Without them such tasks are reported ERRORED with
 * the reason. Call it after nvcf__task_runner_new() and before orders are
 * consumed. Both runtimes must outlive nvcf__task_runner_stop().
 */
void nvcf__task_runner_use(nvcf__task_runner *r, nvcf__crt *crt,
			   nvcf__helm *helm);

/*
 * Stops every running task (SIGTERM, SIGKILL after at most 5 s), reports
 * each ERRORED and waits for their threads. The agent's reaper must still
 * run. Idempotent.
 */
void nvcf__task_runner_stop(nvcf__task_runner *r);

/* Stops the runner if needed and releases it. Accepts NULL. */
void nvcf__task_runner_free(nvcf__task_runner *r);

/*
 * Takes a task creation order: @p msg is taken (acked, nak'ed or
 * terminated here), @p m is borrowed. An order that does not fit the free
 * GPUs is nak'ed with a delay, so that it comes back when room appears.
 */
void nvcf__task_order(nvcf__task_runner *r, natsMsg *msg,
		      const Nvcf__CreateInstances *m);

/*
 * Stops the task @p task_id if it runs here; the API has set its status
 * already. Returns whether such a task was found.
 */
bool nvcf__task_cancel(nvcf__task_runner *r, const char *task_id,
		       const char *reason);

/*
 * The agent's reaper reaped @p pid with wait status @p status. Returns
 * true when it was a task process.
 */
bool nvcf__task_reaped(nvcf__task_runner *r, pid_t pid, int status);

/* ---- what agent.c lends the runner ------------------------------------ */

nvcf_bus *nvcf__agent_bus(nvcf_agent *a);
const nvcf__backend *nvcf__agent_backend(nvcf_agent *a);
const char *nvcf__agent_state_dir(nvcf_agent *a);

/* nvcf__gpu_alloc() and nvcf__gpu_release() under the agent's lock. */
nvcf_status nvcf__agent_gpu_take(nvcf_agent *a, const char *gpu,
				 unsigned int count, unsigned int *indices);
void nvcf__agent_gpu_give(nvcf_agent *a, const char *gpu,
			  const unsigned int *indices, unsigned int count);

/*
 * Starts @p path as the agent starts functions (own process group,
 * default signals, stdout and stderr appended to @p log_path) and counts
 * it for the reaper, which hands its end to nvcf__task_reaped(). Returns
 * 0 or an errno value.
 */
int nvcf__agent_spawn(nvcf_agent *a, const char *path, char *const argv[],
		      char *const envp[], const char *log_path, pid_t *pid);

#endif /* NVCF_AGENT_TASK_H */
