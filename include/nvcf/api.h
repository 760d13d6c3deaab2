/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file nvcf/api.h
 * @brief The control plane: NVCF's function and deployment REST API.
 *
 * An nvcf_api serves the `/v2/nvcf/functions`, `/v2/nvcf/deployments`,
 * `/v2/nvcf/queues` and `/v2/nvcf/clusterGroups` endpoints over HTTP. It
 * keeps function versions and deployments in the KV buckets of the bus and
 * orders instances from cluster agents when a version is deployed. It
 * watches the instance records those agents write to update each
 * version's status. It keeps no state of its own, so any number of
 * replicas can serve one bus.
 */
#ifndef NVCF_API_H
#define NVCF_API_H

#include "common.h"

NVCF_BEGIN_DECLS

/** One control-plane REST service. Opaque. */
typedef struct nvcf_api nvcf_api;

/** Options of nvcf_api_new(). */
typedef struct nvcf_api_options {
	unsigned int version;       /**< NVCF_API_OPTIONS_VERSION */
	const char *nats_url;       /**< NULL means nats://127.0.0.1:4222 */
	const char *listen_address; /**< NULL means 127.0.0.1 */
	uint16_t port;              /**< 0 picks a free port */
	unsigned int threads;       /**< HTTP threads; 0 means 4 */
	/** Region of request queues; NULL means "local". */
	const char *region;
	/** Limit of queued requests per version; 0 means 100000. */
	int64_t queue_max_msgs;
	/** Functions (not versions) an account may own; 0 means 50. */
	int max_functions_per_account;
	/**
	 * A cluster whose last heartbeat is older than this is not offered
	 * and not chosen, in ms; 0 means 30000.
	 */
	int64_t cluster_stale_ms;
	/**
	 * How long a worker may hold a request of a queue this service
	 * creates before JetStream redelivers it, in ms; 0 means 30000.
	 */
	int64_t request_ack_wait_ms;
	/**
	 * True when an nvcf-autoscaler places instances: deployments and
	 * PATCHed bounds are then only stored, and the autoscaler turns them
	 * into orders on its next tick. False places minInstances at once.
	 */
	bool external_scaling;
} nvcf_api_options;

#define NVCF_API_OPTIONS_VERSION 1
/** Initializer with the version set and every field at its default. */
#define NVCF_API_OPTIONS_INIT                                                 \
	{NVCF_API_OPTIONS_VERSION, NULL, NULL, 0, 0, NULL, 0, 0, 0, 0, false}

/**
 * Initializes @p opts to defaults.
 *
 * @return NVCF_OK, or NVCF_EINVAL when this library does not support
 *         @p version
 */
NVCF_API nvcf_status nvcf_api_options_init(nvcf_api_options *opts,
					   unsigned int version);

/**
 * Connects to NATS and creates the streams and buckets the control plane
 * needs. Serves nothing until nvcf_api_start().
 *
 * @param[out] out  the new service, released with nvcf_api_free()
 * @param opts      may be NULL for defaults; copied, not kept
 * @return NVCF_OK; NVCF_EINVAL for a NULL @p out or an unknown options
 *         version; NVCF_EUNAVAILABLE when the NATS server cannot be reached;
 *         NVCF_ENOMEM; NVCF_ERROR with the JetStream code when a stream
 *         or bucket cannot be created
 */
NVCF_API nvcf_status nvcf_api_new(nvcf_api **out, const nvcf_api_options *opts);

/**
 * Starts the HTTP listener and the thread that watches instance records.
 *
 * Returns once the port is bound; read it with nvcf_api_port().
 *
 * @return NVCF_OK; NVCF_EINVAL when already started; NVCF_EUNAVAILABLE when
 *         the address cannot be bound (the message names it); NVCF_ENOMEM
 *         when the watcher thread cannot be started
 */
NVCF_API nvcf_status nvcf_api_start(nvcf_api *api);

/** Returns the bound TCP port, or 0 when the service is not started. */
NVCF_API uint16_t nvcf_api_port(const nvcf_api *api);

/**
 * Stops taking requests, waits for the requests in progress and stops the
 * instance watcher. Stopping a service that is not started does nothing.
 *
 * @return NVCF_OK, or NVCF_EINVAL for a NULL @p api
 */
NVCF_API nvcf_status nvcf_api_stop(nvcf_api *api);

/** Stops the service if needed and releases it. Accepts NULL. */
NVCF_API void nvcf_api_free(nvcf_api *api);

NVCF_END_DECLS

#endif /* NVCF_API_H */
