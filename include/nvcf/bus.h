/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file nvcf/bus.h
 * @brief Connection to NATS JetStream, and the streams, consumers and KV
 *        buckets that every plane shares.
 *
 * A bus is one NATS connection with a JetStream context. It creates what
 * the bus contract names (streams, durable consumers, KV buckets) when it
 * is missing, publishes with every JetStream error handed back to the
 * caller, and reads and writes KV records. A bus is thread-safe: the
 * threads of one daemon share one.
 *
 * Besides the statuses each call lists, every call that talks to NATS may
 * return NVCF_EUNAVAILABLE (no connection), NVCF_ETIMEDOUT, NVCF_ENOMEM or
 * NVCF_ERROR, with the JetStream error code in nvcf_error_last().
 */
#ifndef NVCF_BUS_H
#define NVCF_BUS_H

#include "common.h"

NVCF_BEGIN_DECLS

/** One connection to NATS with JetStream. Opaque. */
typedef struct nvcf_bus nvcf_bus;

/** Names of the KV buckets of the control plane. */
#define NVCF_BUCKET_FUNCTIONS "nvcf_functions"
#define NVCF_BUCKET_DEPLOYMENTS "nvcf_deployments"
#define NVCF_BUCKET_CLUSTERS "nvcf_clusters"
#define NVCF_BUCKET_INSTANCES "nvcf_instances"
#define NVCF_BUCKET_TASKS "nvcf_tasks"
#define NVCF_BUCKET_KEYS "nvcf_keys"

/** Stream names of the bus contract. */
#define NVCF_STREAM_RESULTS "NVCF_RESULTS"
#define NVCF_STREAM_CREATION "CreateNvcaFunctionTaskStream"
#define NVCF_STREAM_TERMINATION "TerminateNvcaStream"

/** Default limit of queued requests per function version. */
#define NVCF_DEFAULT_QUEUE_MAX_MSGS 100000

/** Options of nvcf_bus_new(). */
typedef struct nvcf_bus_options {
	unsigned int version;     /**< NVCF_BUS_OPTIONS_VERSION */
	/** NATS URL; NULL means nats://127.0.0.1:4222. */
	const char *url;
	const char *name;         /**< connection name shown by the server */
	/** Region of request queues; NULL means "local". */
	const char *region;
	int replicas;             /**< stream and bucket replicas; 0 means 1 */
	int64_t connect_timeout_ms; /**< first connection; 0 means 5000 */
	/** Reconnect attempts after a lost connection; 0 means forever. */
	int max_reconnect;
	/** How long results stay pollable, in ms; 0 means one hour. */
	int64_t results_max_age_ms;
	/** Size limit of the results stream in bytes; 0 means 1 GiB. */
	int64_t results_max_bytes;
	/**
	 * How long a worker may hold a request without acknowledging it
	 * before JetStream redelivers it, in ms; 0 means 30000. Workers
	 * extend it with in-progress acks while the function runs.
	 */
	int64_t request_ack_wait_ms;
	/** Largest request or result message, in bytes; 0 means 8 MiB. */
	int32_t max_msg_size;
} nvcf_bus_options;

#define NVCF_BUS_OPTIONS_VERSION 1
/** Initializer with the version set and every field at its default. */
#define NVCF_BUS_OPTIONS_INIT                                                 \
	{NVCF_BUS_OPTIONS_VERSION, NULL, NULL, NULL, 0, 0, 0, 0, 0, 0, 0}

/**
 * Initializes @p opts to the defaults of options version @p version, for
 * bindings that cannot use NVCF_BUS_OPTIONS_INIT.
 *
 * @return NVCF_OK, or NVCF_EINVAL for a NULL @p opts or a version this
 *         library does not know
 */
NVCF_API nvcf_status nvcf_bus_options_init(nvcf_bus_options *opts,
					   unsigned int version);

/**
 * Connects to NATS and creates a JetStream context.
 *
 * @param[out] out  the new bus, released with nvcf_bus_free()
 * @param opts      may be NULL for defaults; copied, not kept
 * @return NVCF_OK; NVCF_EINVAL for a NULL @p out or an unknown options
 *         version; NVCF_EUNAVAILABLE when no server accepts the
 *         connection; NVCF_ENOMEM
 */
NVCF_API nvcf_status nvcf_bus_new(nvcf_bus **out, const nvcf_bus_options *opts);

/** Closes the connection. Accepts NULL. */
NVCF_API void nvcf_bus_free(nvcf_bus *bus);

/** Returns the region the bus was configured with. Borrowed. */
NVCF_API const char *nvcf_bus_region(const nvcf_bus *bus);

/**
 * Creates the results, request body, creation and termination streams
 * and the control plane KV buckets when they are missing. Idempotent.
 *
 * @return NVCF_OK, NVCF_EUNAVAILABLE, NVCF_ERROR with the JetStream code
 */
NVCF_API nvcf_status nvcf_bus_ensure_control(nvcf_bus *bus);

/**
 * Creates the request stream rq_{region}_{versionId} and its durable pull
 * consumer of workers, when missing. @p max_msgs of 0 means
 * NVCF_DEFAULT_QUEUE_MAX_MSGS. Publishing past it fails with NVCF_EQUOTA.
 *
 * @return NVCF_OK; NVCF_EINVAL for a NULL @p bus or a @p version_id that
 *         is not a well-formed id
 */
NVCF_API nvcf_status nvcf_bus_ensure_queue(nvcf_bus *bus,
					   const char *version_id,
					   int64_t max_msgs);

/**
 * Deletes the request stream of @p version_id with what it holds. A
 * missing stream is not an error.
 *
 * @return NVCF_OK; NVCF_EINVAL for a NULL @p bus or a malformed id
 */
NVCF_API nvcf_status nvcf_bus_delete_queue(nvcf_bus *bus,
					   const char *version_id);

/**
 * Reads the depth of a version's request queue.
 *
 * @param[out] queued_out     requests no worker has taken yet
 * @param[out] in_flight_out  requests taken but not yet acknowledged;
 *                            may be NULL
 * @return NVCF_OK, NVCF_ENOTFOUND when the version has no queue
 */
NVCF_API nvcf_status nvcf_bus_queue_depth(nvcf_bus *bus, const char *version_id,
					  uint64_t *queued_out,
					  uint64_t *in_flight_out);

/**
 * Creates the creation and termination consumers of one cluster and its
 * KV bucket nvca_{clusterId}, when missing. @p cluster_id may contain
 * letters, digits, '-' and '_'.
 *
 * @return NVCF_OK; NVCF_EINVAL for a NULL @p bus or a @p cluster_id with
 *         other characters
 */
NVCF_API nvcf_status nvcf_bus_ensure_cluster(nvcf_bus *bus,
					     const char *cluster_id);

/**
 * Publishes @p data to a JetStream subject and waits for the store.
 *
 * @param msg_id  de-duplication id, may be NULL
 * @return NVCF_OK; NVCF_EQUOTA when the stream is full (JetStream 10077);
 *         NVCF_ENOTFOUND when no stream takes the subject; NVCF_ETIMEDOUT;
 *         NVCF_ERROR with the JetStream code otherwise
 */
NVCF_API nvcf_status nvcf_bus_publish(nvcf_bus *bus, const char *subject,
				      const void *data, size_t len,
				      const char *msg_id);

/**
 * Reads a KV value.
 *
 * @param[out] value_out     NUL-terminated copy, released with nvcf_free()
 * @param[out] len_out       may be NULL
 * @param[out] revision_out  may be NULL
 * @return NVCF_OK, NVCF_ENOTFOUND (also for a deleted key), NVCF_ERROR
 */
NVCF_API nvcf_status nvcf_bus_kv_get(nvcf_bus *bus, const char *bucket,
				     const char *key, char **value_out,
				     size_t *len_out, uint64_t *revision_out);

/**
 * Writes a KV value unconditionally.
 *
 * @param[out] revision_out  the new revision; may be NULL
 * @return NVCF_OK; NVCF_EINVAL for a NULL @p bus, @p bucket or @p key
 */
NVCF_API nvcf_status nvcf_bus_kv_put(nvcf_bus *bus, const char *bucket,
				     const char *key, const void *value,
				     size_t len, uint64_t *revision_out);

/**
 * Writes a KV value only if the key does not exist.
 *
 * @param[out] revision_out  the new revision; may be NULL
 * @return NVCF_OK; NVCF_EEXISTS when the key exists; NVCF_EINVAL for a
 *         NULL @p bus, @p bucket or @p key
 */
NVCF_API nvcf_status nvcf_bus_kv_create(nvcf_bus *bus, const char *bucket,
					const char *key, const void *value,
					size_t len, uint64_t *revision_out);

/**
 * Writes a KV value only if its revision is still @p last_revision:
 * NVCF_ECONFLICT otherwise, so that read-modify-write loops can retry.
 *
 * @param[out] revision_out  the new revision; may be NULL
 * @return NVCF_OK; NVCF_ECONFLICT; NVCF_EINVAL for a NULL @p bus,
 *         @p bucket or @p key
 */
NVCF_API nvcf_status nvcf_bus_kv_update(nvcf_bus *bus, const char *bucket,
					const char *key, const void *value,
					size_t len, uint64_t last_revision,
					uint64_t *revision_out);

/**
 * Deletes a KV key. Deleting a missing key is not an error.
 *
 * @return NVCF_OK; NVCF_EINVAL for a NULL @p bus, @p bucket or @p key
 */
NVCF_API nvcf_status nvcf_bus_kv_delete(nvcf_bus *bus, const char *bucket,
					const char *key);

/**
 * Lists the keys of @p bucket that match @p filter, a NATS subject
 * pattern such as "acct.>" or NULL for all keys.
 *
 * @param[out] keys_out   array of strings, released with nvcf_strings_free()
 * @param[out] count_out  number of keys
 * @return NVCF_OK (also for an empty bucket, with 0 keys); NVCF_EINVAL
 *         for a NULL argument
 */
NVCF_API nvcf_status nvcf_bus_kv_keys(nvcf_bus *bus, const char *bucket,
				      const char *filter, char ***keys_out,
				      size_t *count_out);

/**
 * Releases an array of @p count strings returned by the library, and
 * each string in it. Accepts NULL.
 */
NVCF_API void nvcf_strings_free(char **strings, size_t count);

NVCF_END_DECLS

#endif /* NVCF_BUS_H */
