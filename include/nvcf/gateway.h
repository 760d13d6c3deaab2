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

/**
 * A request seen by an authentication callback. Opaque; valid only during
 * the callback. Read its headers with nvcf_gateway_request_header().
 */
typedef struct nvcf_gateway_request nvcf_gateway_request;

/** Decision of an authentication callback about one request. */
typedef enum nvcf_gateway_auth_action {
	/** Run the built-in API key check as if there were no callback. */
	NVCF_GATEWAY_AUTH_CONTINUE = 0,
	/**
	 * The callback authenticated the caller its own way: skip the key
	 * check and serve the request for the account in the verdict's
	 * nca_id, with every scope.
	 */
	NVCF_GATEWAY_AUTH_ALLOW_AS = 1,
	/** Respond with the verdict's http_status and message. */
	NVCF_GATEWAY_AUTH_DENY = 2
} nvcf_gateway_auth_action;

/** Maximum length of the account id (ncaId) a callback may return. */
#define NVCF_GATEWAY_NCA_ID_MAX 64

/**
 * Details of an authentication decision, written by the callback into
 * buffers the library owns. The library zeroes it and sets @c version
 * before each call. A callback built against a later header writes only
 * the fields that @c version has.
 */
typedef struct nvcf_gateway_auth_verdict {
	unsigned int version; /**< NVCF_GATEWAY_AUTH_VERDICT_VERSION */
	/**
	 * ALLOW_AS: the account to act for, 1 to 64 letters, digits, '-' or
	 * '_', not starting with '-' or '_'. Anything else makes the gateway
	 * respond 500.
	 */
	char nca_id[NVCF_GATEWAY_NCA_ID_MAX + 1];
	/**
	 * ALLOW_AS: who the caller is, sent to the function as the NVCF-SUB
	 * header (empty when left empty).
	 */
	char subject[128];
	/**
	 * ALLOW_AS: a request header that must not reach the function,
	 * normally the one that carried the credential. Empty forwards the
	 * usual headers, which never include Authorization.
	 */
	char hide_header[64];
	/** DENY: a status from 400 to 599; 0 means 401. */
	unsigned int http_status;
	/** DENY: the problem detail for the caller; empty means "denied". */
	char message[256];
} nvcf_gateway_auth_verdict;

#define NVCF_GATEWAY_AUTH_VERDICT_VERSION 1

/**
 * Decides how the gateway authenticates one request.
 *
 * Called for every invocation request (pexec, status polls, and requests
 * routed by the function-id header) after the route is recognised and
 * before the built-in API key check; GET /health, GET /metrics and
 * unknown routes do not reach it. It runs on the gateway's HTTP threads,
 * several at once, so it must be thread-safe, and it must not block long:
 * while it runs, its thread serves no other connection.
 *
 * @param method    HTTP method ("POST", "GET"); borrowed for the call
 * @param path      request path without the query; borrowed for the call
 * @param request   the request, for nvcf_gateway_request_header()
 * @param verdict   zeroed, library-owned; fill it for ALLOW_AS and DENY
 * @param userdata  nvcf_gateway_options.auth_userdata
 * @return what the gateway does next; an unknown value gets a 500
 */
typedef nvcf_gateway_auth_action (*nvcf_gateway_auth_cb)(
	const char *method, const char *path,
	const nvcf_gateway_request *request,
	nvcf_gateway_auth_verdict *verdict, void *userdata);

/**
 * Returns the value of request header @p name (compared without regard to
 * case), or NULL when the request has none, or when @p request or
 * @p name is NULL. The value is borrowed: it is valid until the
 * authentication callback returns. Call it only from that callback.
 */
NVCF_API const char *
nvcf_gateway_request_header(const nvcf_gateway_request *request,
			    const char *name);

/** Options of nvcf_gateway_new(). */
typedef struct nvcf_gateway_options {
	unsigned int version;       /**< NVCF_GATEWAY_OPTIONS_VERSION */
	const char *nats_url;       /**< NULL means nats://127.0.0.1:4222 */
	const char *listen_address; /**< IPv4 address; NULL means 127.0.0.1 */
	uint16_t port;              /**< 0 picks a free port */
	unsigned int threads;       /**< HTTP threads; 0 means 2 */
	const char *region;         /**< queue region; NULL means "local" */
	/** Larger request bodies get 413; 0 means 64 MiB. */
	size_t max_body_bytes;
	/**
	 * Seconds a worker gets past NVCF-POLL-SECONDS to take a request
	 * before the gateway responds 504; negative means 2, as NVCF does.
	 */
	int extra_wait_seconds;
	/* version 2 */
	/**
	 * NULL, or a rule that runs before the built-in API key check; see
	 * nvcf_gateway_auth_cb. Lets an embedder accept its own credentials
	 * (ALLOW_AS), reject requests (DENY), or leave them to API keys.
	 */
	nvcf_gateway_auth_cb auth_cb;
	/** Passed to @c auth_cb; the gateway never reads it. */
	void *auth_userdata;
	/* version 3 */
	/**
	 * Request bodies up to this many bytes travel inside the request
	 * message; larger ones are stored as chunks on JetStream first.
	 * 0 means 256 KiB. The NATS server's max_payload minus 64 KiB caps it.
	 */
	size_t inline_body_bytes;
} nvcf_gateway_options;

#define NVCF_GATEWAY_OPTIONS_VERSION 3
#define NVCF_GATEWAY_OPTIONS_INIT                                             \
	{NVCF_GATEWAY_OPTIONS_VERSION, NULL, NULL, 0, 0, NULL, 0, -1, NULL,   \
	 NULL, 0}

/**
 * Creates a gateway: connects to NATS, opens the key and function caches
 * and subscribes to its reply subject. It does not listen yet.
 *
 * @param[out] out  the new gateway, released with nvcf_gateway_free()
 * @param opts      may be NULL for defaults; copied, not kept. Versions 1
 *                  (no auth_cb) and 2 (no inline_body_bytes) are still
 *                  accepted.
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
