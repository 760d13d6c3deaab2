/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file nvcf/worker.h
 * @brief The per-instance worker between a version's request queue and the
 *        function's HTTP server.
 *
 * A worker binds to the durable pull consumer of one function version,
 * never holds more requests than its concurrency, calls the function with
 * the NVCF request headers, stores each final result in the results stream
 * and only then acknowledges the request.
 */
#ifndef NVCF_WORKER_H
#define NVCF_WORKER_H

#include "bus.h"
#include "common.h"

NVCF_BEGIN_DECLS

/** A running worker. Opaque. */
typedef struct nvcf_worker nvcf_worker;

/** Largest concurrency of one worker: one thread per held request. */
#define NVCF_WORKER_MAX_CONCURRENCY 256

/** Options of nvcf_worker_new(). */
typedef struct nvcf_worker_options {
	unsigned int version;        /**< NVCF_WORKER_OPTIONS_VERSION */
	nvcf_bus *bus;               /**< borrowed; must outlive the worker */
	const char *function_id;     /**< required */
	const char *version_id;      /**< required, a UUID */
	const char *instance_id;     /**< required */
	const char *nca_id;          /**< account of the function */
	const char *function_name;   /**< sent as NVCF-FUNCTION-NAME */
	const char *function_url;    /**< required: http://127.0.0.1:PORT */
	const char *instance_type;   /**< sent as NVCF-INSTANCETYPE */
	const char *backend;         /**< sent as NVCF-BACKEND */
	/**
	 * Sent as NVCF-REGION; NULL means the bus region. The request queue
	 * is always the one of the bus region.
	 */
	const char *region;
	/**
	 * Requests held at once, from 1 to NVCF_WORKER_MAX_CONCURRENCY.
	 * 0 means 1.
	 */
	int concurrency;
	/**
	 * Ack wait of the consumer in ms, used when the consumer information
	 * cannot be read; 0 means 30000.
	 */
	int64_t ack_wait_ms;
	/** How long nvcf_worker_stop() lets held requests finish; 0: 8000. */
	int64_t grace_ms;
	/* version 2 */
	/**
	 * Largest function response in bytes, sent to the function as
	 * NVCF-MAX-RESPONSE-SIZE-BYTES; a larger one becomes a 502.
	 * 0 means 64 MiB.
	 */
	size_t max_response_bytes;
	/**
	 * Response bodies up to this many bytes travel inside the result
	 * message; larger ones are stored as chunks on JetStream first.
	 * 0 means 256 KiB. The NATS server's max_payload minus 64 KiB caps it.
	 */
	size_t inline_body_bytes;
} nvcf_worker_options;

#define NVCF_WORKER_OPTIONS_VERSION 2
/** Initializer with the version set and every field at its default. */
#define NVCF_WORKER_OPTIONS_INIT                                              \
	{NVCF_WORKER_OPTIONS_VERSION, NULL, NULL, NULL, NULL, NULL, NULL,      \
	 NULL, NULL, NULL, NULL, 0, 0, 0, 0, 0}

/**
 * Binds to the version's request consumer and starts fetching.
 *
 * @param[out] out  the new worker, released with nvcf_worker_free()
 * @param opts      copied; the strings are copied too. Version 1 (no
 *                  max_response_bytes, inline_body_bytes) is still
 *                  accepted.
 * @return NVCF_OK; NVCF_EINVAL for a missing or invalid option;
 *         NVCF_ENOTFOUND when the version has no request queue;
 *         NVCF_EUNAVAILABLE, NVCF_ERROR from the bus; NVCF_ENOMEM
 */
NVCF_API nvcf_status nvcf_worker_new(nvcf_worker **out,
				     const nvcf_worker_options *opts);

/**
 * Stops fetching and waits until the held requests finish or the grace
 * period ends; requests still running then are aborted and left
 * unacknowledged, so JetStream redelivers them. Idempotent.
 */
NVCF_API void nvcf_worker_stop(nvcf_worker *worker);

/** Stops the worker if needed and releases it. Accepts NULL. */
NVCF_API void nvcf_worker_free(nvcf_worker *worker);

/** Counters of a worker since it started. */
typedef struct nvcf_worker_stats {
	unsigned int version;   /**< NVCF_WORKER_STATS_VERSION */
	uint64_t completed;     /**< final results stored and acknowledged */
	uint64_t failed;        /**< function unreachable, handed back */
	uint64_t canceled;      /**< aborted by a cancel message */
	uint64_t duplicates;    /**< redeliveries already answered */
	int in_flight;          /**< requests held now */
} nvcf_worker_stats;

#define NVCF_WORKER_STATS_VERSION 1
/** Initializer of the struct nvcf_worker_stats_get() fills. */
#define NVCF_WORKER_STATS_INIT {NVCF_WORKER_STATS_VERSION, 0, 0, 0, 0, 0}

/**
 * Copies the counters into @p stats. Safe to call from any thread while
 * the worker runs.
 *
 * @param[out] stats  set its version with NVCF_WORKER_STATS_INIT
 * @return NVCF_OK, or NVCF_EINVAL on a NULL argument
 */
NVCF_API nvcf_status nvcf_worker_stats_get(nvcf_worker *worker,
					   nvcf_worker_stats *stats);

NVCF_END_DECLS

#endif /* NVCF_WORKER_H */
