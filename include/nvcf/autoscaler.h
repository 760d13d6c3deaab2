/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file nvcf/autoscaler.h
 * @brief The scaling plane as an object: evaluates the scaling policy of
 *        every deployed function version and turns changes of the desired
 *        instance count into creation and termination orders.
 *
 * An autoscaler watches the deployments and instances in KV, reads each
 * version's queue depth and in-flight count from JetStream on every tick,
 * and also reacts at once to `nvcf.wake.{versionId}`, which a gateway
 * publishes when a request arrives for a version with no ready instance.
 * Several replicas may run: a replica acts on a version only while it holds
 * that version's lease in KV bucket `nvcf_leases`, and a crashed replica's
 * leases expire after @ref nvcf_autoscaler_options.lease_ms.
 */
#ifndef NVCF_AUTOSCALER_H
#define NVCF_AUTOSCALER_H

#include "bus.h"
#include "common.h"

NVCF_BEGIN_DECLS

/** Opaque autoscaler. */
typedef struct nvcf_autoscaler nvcf_autoscaler;

/** Version of @ref nvcf_autoscaler_options described by this header. */
#define NVCF_AUTOSCALER_OPTIONS_VERSION 1

/** Options of nvcf_autoscaler_new(). Zero means the default. */
typedef struct nvcf_autoscaler_options {
	unsigned int version; /**< NVCF_AUTOSCALER_OPTIONS_VERSION */
	nvcf_bus *bus;        /**< borrowed; must outlive the autoscaler */
	/** Evaluation period in ms; 0 means 500. */
	int64_t tick_ms;
	/** Lifetime of a version lease in ms; 0 means 3000. */
	int64_t lease_ms;
	/**
	 * Idle window before a version with minInstances 0 goes to zero, in
	 * ms; 0 keeps the policy default (300000). A deployment's
	 * autoscalingConfiguration still overrides it.
	 */
	int64_t idle_to_zero_ms;
	/** Scale-down stabilization window in ms; 0 keeps the default. */
	int64_t scale_down_window_ms;
	/**
	 * How long a creation order may go without any instance record
	 * before it no longer counts as starting, in ms; 0 means 30000.
	 */
	int64_t order_timeout_ms;
	/** A cluster whose heartbeat is older gets no work; 0 means 15000. */
	int64_t cluster_stale_ms;
	/** Name of this replica in leases and logs; NULL means random. */
	const char *replica_id;
} nvcf_autoscaler_options;

/** Initializer with the version set and every default. */
#define NVCF_AUTOSCALER_OPTIONS_INIT                                          \
	{ NVCF_AUTOSCALER_OPTIONS_VERSION, NULL, 0, 0, 0, 0, 0, 0, NULL }

/**
 * Creates an autoscaler; nothing runs before nvcf_autoscaler_start().
 *
 * @param[out] out  the new autoscaler, freed with nvcf_autoscaler_free()
 * @param opts      copied, strings included
 * @return NVCF_OK; NVCF_EINVAL for a NULL argument, a wrong options
 *         version or a negative period; NVCF_ENOMEM
 */
NVCF_API nvcf_status nvcf_autoscaler_new(nvcf_autoscaler **out,
					 const nvcf_autoscaler_options *opts);

/**
 * Creates the buckets it needs, starts its watchers and its loop.
 *
 * @return NVCF_OK; NVCF_EUNAVAILABLE or NVCF_ERROR from the bus (the
 *         message names the bucket or subject); NVCF_ENOMEM
 */
NVCF_API nvcf_status nvcf_autoscaler_start(nvcf_autoscaler *as);

/**
 * Stops the loop and releases the leases it holds, so that another
 * replica takes its versions over at once. Orders already published stay.
 */
NVCF_API void nvcf_autoscaler_stop(nvcf_autoscaler *as);

/** Stops the autoscaler when running and frees it. Accepts NULL. */
NVCF_API void nvcf_autoscaler_free(nvcf_autoscaler *as);

/** The replica id used in leases; valid until nvcf_autoscaler_free(). */
NVCF_API const char *nvcf_autoscaler_replica_id(const nvcf_autoscaler *as);

/**
 * Renders the autoscaler's counters in Prometheus text format.
 *
 * @param[out] text_out  NUL-terminated text, freed with nvcf_free()
 * @return NVCF_OK or NVCF_ENOMEM
 */
NVCF_API nvcf_status nvcf_autoscaler_metrics(nvcf_autoscaler *as,
					     char **text_out);

NVCF_END_DECLS

#endif /* NVCF_AUTOSCALER_H */
