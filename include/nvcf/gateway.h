/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file nvcf/gateway.h
 * @brief The invocation plane: an HTTP gateway that authenticates callers,
 *        queues their requests for a function's workers and returns the
 *        function's response, or 202 and a request id to poll.
 *
 * The gateway serves NVCF's pass-through invocation API
 * (`POST /v2/nvcf/pexec/functions/{id}[/versions/{vid}]`,
 * `GET /v2/nvcf/pexec/status/{requestId}`, header routing with
 * `function-id`), `GET /health` and Prometheus `GET /metrics`. It keeps API
 * keys and function records in memory, fed by KV watchers, so a request
 * costs one JetStream publish. Waiting requests hold no thread: their
 * connections are suspended until a result or the end of the poll window.
 */
#ifndef NVCF_GATEWAY_H
#define NVCF_GATEWAY_H

#include "common.h"

NVCF_BEGIN_DECLS

/** A running invocation gateway. Opaque. */
typedef struct nvcf_gateway nvcf_gateway;

/** Options of nvcf_gateway_new(). */
typedef struct nvcf_gateway_options {
	unsigned int version;       /**< NVCF_GATEWAY_OPTIONS_VERSION */
	const char *nats_url;       /**< NULL means nats://127.0.0.1:4222 */
	const char *listen_address; /**< IPv4 address; NULL means 127.0.0.1 */
	uint16_t port;              /**< 0 picks a free port */
	unsigned int threads;       /**< HTTP threads; 0 means 2 */
	const char *region;         /**< queue region; NULL means "local" */
	size_t max_body_bytes;      /**< larger bodies get 413; 0 means 8 MiB */
	/**
	 * Seconds a worker gets past NVCF-POLL-SECONDS to take a request
	 * before the gateway responds 504; negative means 2, as NVCF does.
	 */
	int extra_wait_seconds;
} nvcf_gateway_options;

#define NVCF_GATEWAY_OPTIONS_VERSION 1
#define NVCF_GATEWAY_OPTIONS_INIT                                             \
	{NVCF_GATEWAY_OPTIONS_VERSION, NULL, NULL, 0, 0, NULL, 0, -1}

/**
 * Creates a gateway: connects to NATS, opens the key and function caches
 * and subscribes to its reply subject. It does not listen yet.
 *
 * @param[out] out  the new gateway, released with nvcf_gateway_free()
 * @param opts      may be NULL for defaults; copied, not kept
 * @return NVCF_OK; NVCF_EINVAL for a bad option (unknown version, region
 *         with characters other than letters, digits, '-' or '_');
 *         NVCF_EUNAVAILABLE when NATS does not respond; NVCF_ENOMEM;
 *         NVCF_ERROR with the JetStream code when the KV buckets cannot
 *         be opened
 */
NVCF_API nvcf_status nvcf_gateway_new(nvcf_gateway **out,
				      const nvcf_gateway_options *opts);

/**
 * Starts listening. Returns once the caches hold what KV held at the
 * time and the HTTP server accepts connections.
 *
 * @return NVCF_OK; NVCF_EINVAL when already started or the listen address
 *         is not an IPv4 address; NVCF_EUNAVAILABLE when the port cannot
 *         be bound; NVCF_ENOMEM
 */
NVCF_API nvcf_status nvcf_gateway_start(nvcf_gateway *gw);

/** Returns the bound port once started, else 0. */
NVCF_API uint16_t nvcf_gateway_port(const nvcf_gateway *gw);

/**
 * Stops serving: responds 503 to every waiting request, then closes the
 * HTTP server. Requests already queued stay in JetStream and their results
 * remain pollable from any gateway. Safe to call twice.
 *
 * @return NVCF_OK, or NVCF_EINVAL when @p gw is NULL
 */
NVCF_API nvcf_status nvcf_gateway_stop(nvcf_gateway *gw);

/** Stops the gateway if needed and releases it. Accepts NULL. */
NVCF_API void nvcf_gateway_free(nvcf_gateway *gw);

NVCF_END_DECLS

#endif /* NVCF_GATEWAY_H */
