/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Container functions of the cluster agent: a function whose
 * containerImage is not a file:// URL runs as a container of a Docker
 * Engine API (Docker, or `podman system service`) when nvca has
 * --docker-socket.
 *
 * agent.c keeps the instance bookkeeping (ports, GPUs, the worker, KV
 * records) and calls in here for the container: start it, check it while
 * the start-up health probe runs, watch it once RUNNING, remove it, and
 * adopt or sweep what an earlier agent left. Failures are folded with
 * nvcf__instance_observe() (libnvcf/runtime/instance.h), so an exit, a
 * crash loop or a health check that never passed carries the rule's
 * message and the container's last log lines.
 *
 * Containers carry the labels NVCF__CRT_LABEL_* so that a restarted agent
 * finds the ones of its cluster.
 */
#ifndef NVCF_AGENT_CONTAINER_RT_H
#define NVCF_AGENT_CONTAINER_RT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/internal.h"

#define NVCF__CRT_LABEL_CLUSTER "nvcf.cluster-id"
#define NVCF__CRT_LABEL_FUNCTION "nvcf.function-id"
#define NVCF__CRT_LABEL_VERSION "nvcf.function-version-id"
#define NVCF__CRT_LABEL_INSTANCE "nvcf.instance-id"

/* The port a function listens on inside its container by default. */
#define NVCF__CRT_DEFAULT_PORT 8000

/* The engine connection of one agent and its watcher thread. */
typedef struct nvcf__crt nvcf__crt;

/* The container of one instance. */
typedef struct nvcf__crt_ctr nvcf__crt_ctr;

/*
 * Called from the watcher thread when a watched container failed, with
 * the @p ctx of its spec and a message naming the rule and ending with
 * the last log lines. The logs are in the spec's log_path by then.
 */
typedef void (*nvcf__crt_fail_fn)(void *ctx, const char *message);

/*
 * Connects to the engine at @p socket_path (it must answer /_ping) and
 * starts the watcher, which polls watched containers every @p poll_ms
 * (0 means 1000). NVCF_EUNAVAILABLE when no engine answers, NVCF_EINVAL,
 * NVCF_ENOMEM, NVCF_ERROR when the thread cannot start.
 */
nvcf_status nvcf__crt_new(nvcf__crt **out, const char *socket_path,
			  const char *cluster_id, int64_t poll_ms,
			  nvcf__crt_fail_fn on_fail);

/* Stops the watcher; containers stay as they are. Idempotent. */
void nvcf__crt_shutdown(nvcf__crt *rt);

/* Shuts down and releases @p rt; NULL is allowed. */
void nvcf__crt_free(nvcf__crt *rt);

/* inferencePort of @p function_json, or NVCF__CRT_DEFAULT_PORT. */
int nvcf__crt_inference_port(const char *function_json);

typedef struct nvcf__crt_spec {
	unsigned int version;
	const char *image;
	/* Command words (containerArgs split); none keeps the image CMD. */
	char *const *cmd;
	size_t cmd_count;
	/* NULL-terminated "NAME=value" entries. */
	char *const *env;
	const unsigned int *gpus;
	unsigned int n_gpus;
	const char *cluster_id, *function_id, *version_id, *instance_id;
	/* Port inside the container, published on 127.0.0.1. */
	int container_port;
	/* Health probe path on the published port and its status. */
	const char *health_path;
	long expected_status;
	/* File that receives the container's log when it fails or goes. */
	const char *log_path;
	/* Handed to the fail callback. */
	void *ctx;
	/*
	 * Bind mounts "HOST:CONTAINER" or "HOST:CONTAINER:ro" of a
	 * run-to-completion container (nvcf__crt_run()).
	 */
	const char *const *binds;
	size_t bind_count;
} nvcf__crt_spec;

#define NVCF__CRT_SPEC_VERSION 1
#define NVCF__CRT_SPEC_INIT                                                   \
	{                                                                     \
		.version = NVCF__CRT_SPEC_VERSION                             \
	}

/* Copies @p spec into a new handle; nothing is sent to the engine. */
nvcf_status nvcf__crt_ctr_new(nvcf__crt_ctr **out, const nvcf__crt_spec *spec);

/* Releases @p c; NULL is allowed. The container must be unwatched. */
void nvcf__crt_ctr_free(nvcf__crt_ctr *c);

/*
 * Ensures the image, creates and starts the container and reads the host
 * port it is published at into *host_port. Returns NULL, or an error
 * message (free()) naming the image or the engine's reason; a container
 * that was created is removed again then. Nothing happens after
 * nvcf__crt_remove() ran for @p c.
 */
char *nvcf__crt_start(nvcf__crt *rt, nvcf__crt_ctr *c, int *host_port);

/*
 * One look during start-up, after a failed health probe: inspects the
 * container (at most every 500 ms), restarts it when it exited and
 * returns NULL, or an error message (free()) once the container failed
 * (a crash loop, vanished). The logs are saved to log_path then.
 */
char *nvcf__crt_check(nvcf__crt *rt, nvcf__crt_ctr *c);

/* Hands @p c to the watcher: it is inspected and probed every poll. */
void nvcf__crt_watch(nvcf__crt *rt, nvcf__crt_ctr *c);

/* Saves the last log lines of the container to the spec's log_path. */
void nvcf__crt_save_logs(nvcf__crt *rt, nvcf__crt_ctr *c);

/*
 * Unwatches, stops (SIGTERM, SIGKILL after @p grace_ms) and removes the
 * container, saving its logs first. Waits for a start in progress.
 * Idempotent.
 */
void nvcf__crt_remove(nvcf__crt *rt, nvcf__crt_ctr *c, int64_t grace_ms);

/* True once the container was removed; true for NULL. */
bool nvcf__crt_gone(const nvcf__crt_ctr *c);

/* Sets the @p ctx handed to the fail callback (after adoption). */
void nvcf__crt_set_ctx(nvcf__crt_ctr *c, void *ctx);

/* Container id, or NULL before it was created. */
const char *nvcf__crt_id(const nvcf__crt_ctr *c);

/*
 * Takes over container @p container_id of an earlier agent: it must
 * exist, run and carry @p spec's instance id as its label. Sets the
 * handle and the host port. NVCF_ENOTFOUND (with a message saying what
 * differed) otherwise, NVCF_EUNAVAILABLE when the engine is gone.
 */
nvcf_status nvcf__crt_adopt(nvcf__crt *rt, const nvcf__crt_spec *spec,
			    const char *container_id, nvcf__crt_ctr **out,
			    int *host_port);

/*
 * Removes every container of this cluster whose id @p keep does not
 * accept (those of adopted instances); returns how many it removed.
 */
size_t nvcf__crt_sweep(nvcf__crt *rt,
		       bool (*keep)(void *ctx, const char *container_id),
		       void *ctx);

/* Removes container @p container_id at once; a missing one is OK. */
void nvcf__crt_remove_id(nvcf__crt *rt, const char *container_id);

/* ---- run-to-completion containers (tasks) ------------------------------ */

/*
 * Ensures the image, creates the container with the spec's bind mounts
 * and no published port or health probe, and starts it. It is not
 * watched and never restarted: poll nvcf__crt_exit_status(). Returns NULL,
 * or an error message (free()) naming the image or the engine's reason;
 * a container that was created is removed again then. Nothing happens
 * after nvcf__crt_remove() ran for @p c.
 */
char *nvcf__crt_run(nvcf__crt *rt, nvcf__crt_ctr *c);

/*
 * Inspects @p c once. *done becomes true when the container exited or
 * is gone; *exit_code is then its State.ExitCode (-1 when it is gone) and
 * *oom_killed (may be NULL) whether the kernel killed it for memory.
 * NVCF_OK, also for a vanished container; NVCF_EINVAL before it was
 * created; the engine's status when the inspect failed (nothing is
 * known then).
 */
nvcf_status nvcf__crt_exit_status(nvcf__crt *rt, nvcf__crt_ctr *c,
				  bool *done, int *exit_code,
				  bool *oom_killed);

#endif /* NVCF_AGENT_CONTAINER_RT_H */
