/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file nvcf/agent.h
 * @brief The cluster agent: starts and stops function instances of one
 *        cluster on the process runtime.
 *
 * An agent reads an NVCFBackend file, announces its cluster in KV,
 * keeps one ICMSRequest (nvcf/crd.h) per creation and termination order
 * in KV nvca_{clusterId}, and reconciles each: it starts each instance as
 * a local process with its own port and GPUs, health-checks it, starts an
 * nvcf-worker beside it and reports every state change to KV
 * nvcf_instances. A restarted agent reloads its ICMSRequests and adopts
 * the instances of the previous agent that still run.
 */
#ifndef NVCF_AGENT_H
#define NVCF_AGENT_H

#include "bus.h"
#include "common.h"

NVCF_BEGIN_DECLS

/** A running cluster agent. Opaque. */
typedef struct nvcf_agent nvcf_agent;

/** Options of nvcf_agent_new(). */
typedef struct nvcf_agent_options {
	unsigned int version;     /**< NVCF_AGENT_OPTIONS_VERSION */
	nvcf_bus *bus;            /**< borrowed; must outlive the agent */
	const char *config_path;  /**< NVCFBackend YAML file; required */
	/** Directory of instance logs; NULL means "./nvca-state". */
	const char *state_dir;
	const char *worker_path;  /**< nvcf-worker executable; required */
	/** NATS URL handed to workers; NULL means nats://127.0.0.1:4222. */
	const char *nats_url;
	/** Log level name handed to workers; NULL means "info". */
	const char *worker_log_level;
	/** Bound of an instance's whole start-up in ms; 0 means 60000. */
	int64_t start_timeout_ms;
	/** Time between SIGTERM and SIGKILL when stopping; 0 means 10000. */
	int64_t grace_ms;
	/** Interval of cluster heartbeats in ms; 0 means 5000. */
	int64_t heartbeat_ms;
	/**
	 * Interval of the ICMSRequest reconcile loop in ms; 0 means 1000.
	 * Instance state changes also run it at once.
	 */
	int64_t reconcile_ms;
	/**
	 * How long a failed ICMSRequest (a refusal or a failed instance)
	 * stays in KV nvca_{clusterId} after its last status change before
	 * it is garbage-collected, so that placement can read why; 0 means
	 * 3600000 (one hour).
	 */
	int64_t failed_retention_ms;
	/**
	 * Unix socket of a Docker Engine API (Docker, or `podman system
	 * service`); NULL runs file:// images only. When set, a function
	 * whose containerImage is not a file:// URL runs as a container with
	 * its inferencePort published on 127.0.0.1, and nvcf_agent_new()
	 * fails with NVCF_EUNAVAILABLE when no engine answers there.
	 */
	const char *docker_socket;
} nvcf_agent_options;

#define NVCF_AGENT_OPTIONS_VERSION 1
/**
 * Initializer with the version set and every field zero or NULL, which
 * means its default. It names every field so that callers building with
 * -Wextra get no missing-initializer warning.
 */
#define NVCF_AGENT_OPTIONS_INIT                                               \
	{NVCF_AGENT_OPTIONS_VERSION, NULL, NULL, NULL, NULL, NULL, NULL,       \
	 0, 0, 0, 0, 0, NULL}

/**
 * Loads the backend file, ensures the cluster's consumers and bucket,
 * writes the cluster record and starts consuming orders.
 *
 * @param[out] out  the new agent, released with nvcf_agent_free()
 * @param opts      copied; the strings are copied too
 * @return NVCF_OK; NVCF_EINVAL for invalid options or backend file (the
 *         message names the field and the file); NVCF_ENOTFOUND for a
 *         missing file; NVCF_EUNAVAILABLE, NVCF_ERROR from the bus;
 *         NVCF_EIO when the state directory cannot be created; NVCF_ENOMEM
 */
NVCF_API nvcf_status nvcf_agent_new(nvcf_agent **out,
				    const nvcf_agent_options *opts);

/**
 * Stops consuming orders, stops every instance the agent started (worker
 * first, then the function's process group) and marks them TERMINATED.
 * Blocks for up to the grace period. Idempotent.
 */
NVCF_API void nvcf_agent_stop(nvcf_agent *agent);

/** Stops the agent if needed and releases it. Accepts NULL. */
NVCF_API void nvcf_agent_free(nvcf_agent *agent);

/** Returns the cluster id of the backend file. Borrowed. */
NVCF_API const char *nvcf_agent_cluster_id(const nvcf_agent *agent);

/**
 * Writes Prometheus metrics of the agent (instances by state, GPUs
 * allocated per type) into a new string.
 *
 * @param[out] text_out  released with nvcf_free()
 * @return NVCF_OK, NVCF_EINVAL, NVCF_ENOMEM
 */
NVCF_API nvcf_status nvcf_agent_metrics(nvcf_agent *agent, char **text_out);

NVCF_END_DECLS

#endif /* NVCF_AGENT_H */
