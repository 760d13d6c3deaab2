/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file nvcf/routing.h
 * @brief Cluster inventory, placement of instances on clusters, and the
 *        subject and consumer names of a cluster's creation and
 *        termination queues.
 *
 * Everything here is a pure function: no I/O and no clock reads. The
 * caller loads cluster records (the `nvcf_clusters` KV bucket) into an
 * inventory and passes the current time explicitly. A placement returns
 * the clusters that can take a deployment specification in rank order,
 * the instances each one gets, and why every other cluster was left out.
 *
 * Names of GPUs, instance types, clusters, cluster groups, regions and
 * attributes match case-insensitively, as in NVCF.
 *
 * An inventory is not thread-safe: one thread changes it at a time. Any
 * number of threads may read it (place, validate, list) while nobody
 * changes it.
 */
#ifndef NVCF_ROUTING_H
#define NVCF_ROUTING_H

#include "common.h"

NVCF_BEGIN_DECLS

/* ---- inventory ------------------------------------------------------- */

/** The clusters known to a control-plane process. Opaque. */
typedef struct nvcf_inventory nvcf_inventory;

/** One instance type a cluster offers for one GPU type. */
typedef struct nvcf_instance_type_info {
	const char *name;        /**< e.g. "NCP.GPU.L40S_2x" */
	const char *description; /**< NULL means "" */
	bool is_default;         /**< the GPU's default instance type */
	unsigned int gpu_count;  /**< GPUs per instance, at least 1 */
} nvcf_instance_type_info;

/** One GPU type of a cluster and how many of its GPUs are in use. */
typedef struct nvcf_gpu_info {
	const char *name;       /**< e.g. "L40S" */
	unsigned int capacity;  /**< GPUs of this type in the cluster */
	/** GPUs in use; may exceed capacity while a cluster drains. */
	unsigned int allocated;
	const nvcf_instance_type_info *instance_types;
	size_t instance_types_count;
} nvcf_gpu_info;

/**
 * One cluster as its agent reports it. The version member governs the
 * layout of the nested GPU and instance type structs too.
 */
typedef struct nvcf_cluster_info {
	unsigned int version;   /**< NVCF_CLUSTER_INFO_VERSION */
	/** Single NATS subject token: letters, digits, '-', '_'. */
	const char *cluster_id;
	const char *name;       /**< NULL means the cluster id */
	const char *group;      /**< cluster group; NULL means the cluster id */
	const char *region;     /**< NULL means "local" */
	const char *const *attributes;
	size_t attributes_count;
	const nvcf_gpu_info *gpus;
	size_t gpus_count;
	/** The agent reported itself healthy on its last heartbeat. */
	bool healthy;
	/** Time of the last heartbeat, ms since the epoch; 0 means never. */
	int64_t heartbeat_ms;
} nvcf_cluster_info;

#define NVCF_CLUSTER_INFO_VERSION 1
/** Initializer with the version set and every field empty or 0. */
#define NVCF_CLUSTER_INFO_INIT                                                \
	{NVCF_CLUSTER_INFO_VERSION, NULL, NULL, NULL, NULL, NULL, 0, NULL, 0, \
	 false, 0}

/** Heartbeat age after which a cluster counts as unhealthy, by default. */
#define NVCF_HEARTBEAT_TIMEOUT_MS_DEFAULT 30000

/**
 * Creates an empty inventory.
 *
 * @param[out] out  the new inventory, released with nvcf_inventory_free()
 * @return NVCF_OK; NVCF_EINVAL for a NULL @p out; NVCF_ENOMEM
 */
NVCF_API nvcf_status nvcf_inventory_new(nvcf_inventory **out);

/** Releases @p inv and every string it copied. Accepts NULL. */
NVCF_API void nvcf_inventory_free(nvcf_inventory *inv);

/**
 * Adds one cluster, or replaces the cluster with the same id (ids compare
 * exactly, so a KV update replaces the cluster's earlier record).
 *
 * Every string and array of @p c is copied. Duplicate GPU names (compared
 * case-insensitively) and instance types without GPUs are rejected.
 *
 * @return NVCF_OK; NVCF_EINVAL, with a message naming the field, for a
 *         NULL argument, an unknown struct version, a cluster id that is
 *         not a single subject token, a GPU or instance type without a
 *         name, a repeated GPU name or a gpu_count of 0; NVCF_ENOMEM, and
 *         then the inventory is unchanged
 */
NVCF_API nvcf_status nvcf_inventory_add_cluster(nvcf_inventory *inv,
						const nvcf_cluster_info *c);

/**
 * Decodes one `nvcf_clusters` KV record and adds it like
 * nvcf_inventory_add_cluster().
 *
 * The record is `{"clusterId", "name", "group", "region", "attributes":
 * [...], "gpus": [{"name", "capacity", "allocated", "instanceTypes":
 * [{"name", "description", "default", "gpuCount"}]}], "heartbeatAt",
 * "health"}`. Required: clusterId, gpus with name, capacity and
 * instanceTypes, and each instance type with name and gpuCount. The
 * heartbeat is heartbeatAtMs (integer ms since the epoch) or else
 * heartbeatAt (RFC 3339 time); one of them is required. Missing name and group mean the
 * cluster id, a missing region means "local", missing allocated means 0,
 * and a missing health means healthy; any other health than "healthy"
 * means unhealthy. Unknown members are ignored.
 *
 * @param json  the record, NUL-terminated
 * @return NVCF_OK; NVCF_EINVAL for a NULL argument, text that is not a
 *         JSON object, or a missing or mistyped field, with a message
 *         naming it ("cluster record: gpus[1].capacity must be a
 *         non-negative integer"); NVCF_ENOMEM (the inventory is unchanged)
 */
NVCF_API nvcf_status nvcf_inventory_add_cluster_json(nvcf_inventory *inv,
						     const char *json);

/**
 * Removes the cluster with id @p cluster_id (a KV delete).
 *
 * Indexes of the clusters after it move down by one.
 *
 * @return NVCF_OK; NVCF_EINVAL for a NULL argument; NVCF_ENOTFOUND when no
 *         cluster has that id
 */
NVCF_API nvcf_status nvcf_inventory_remove(nvcf_inventory *inv,
					   const char *cluster_id);

/** Returns the number of clusters; 0 for NULL. */
NVCF_API size_t nvcf_inventory_count(const nvcf_inventory *inv);

/**
 * Returns cluster @p index, in the order the clusters were first added.
 *
 * The struct and every pointer in it are owned by the inventory and stay
 * valid until the cluster is replaced or removed, or the inventory freed.
 * Its version is NVCF_CLUSTER_INFO_VERSION of this library.
 *
 * @return the cluster, or NULL for a NULL @p inv or an index out of range
 */
NVCF_API const nvcf_cluster_info *
nvcf_inventory_cluster(const nvcf_inventory *inv, size_t index);

/**
 * Finds a cluster by id, or else by name (case-insensitive).
 *
 * @param[out] index_out  its index for nvcf_inventory_cluster()
 * @return NVCF_OK; NVCF_EINVAL for a NULL argument; NVCF_ENOTFOUND
 */
NVCF_API nvcf_status nvcf_inventory_find(const nvcf_inventory *inv,
					 const char *id_or_name,
					 size_t *index_out);

/**
 * Tells whether cluster @p index may take work at @p now_ms.
 *
 * A cluster is healthy when its agent reported itself healthy and its
 * last heartbeat is at most @p heartbeat_timeout_ms old. A heartbeat in
 * the future (clock skew between hosts) counts as fresh.
 *
 * @param heartbeat_timeout_ms  0 or less means
 *                              NVCF_HEARTBEAT_TIMEOUT_MS_DEFAULT
 * @return true when healthy; false when not, or for a NULL @p inv or an
 *         index out of range
 */
NVCF_API bool nvcf_inventory_cluster_healthy(const nvcf_inventory *inv,
					     size_t index, int64_t now_ms,
					     int64_t heartbeat_timeout_ms);

/**
 * Removes every cluster that nvcf_inventory_cluster_healthy() rejects, so
 * that listings offer only clusters that can take work.
 *
 * @param[out] removed_out  may be NULL; the number of clusters removed
 * @return NVCF_OK; NVCF_EINVAL for a NULL @p inv
 */
NVCF_API nvcf_status nvcf_inventory_remove_unhealthy(
	nvcf_inventory *inv, int64_t now_ms, int64_t heartbeat_timeout_ms,
	size_t *removed_out);

/**
 * Writes the body of `GET /v2/nvcf/clusterGroups` for account @p nca_id.
 *
 * `{"clusterGroups": [{"id", "name", "ncaId", "authorizedNcaIds", "gpus":
 * [{"name", "instanceTypes": [{"name", "description", "default"}]}],
 * "clusters": [{"id", "name", "k8sVersion": "", "region", "health",
 * "gpus": [{"name", "capacity", "allocated", "available"}]}]}]}`.
 * Groups are ordered by name and clusters by id. Group names that differ
 * only in case are one group (spelled as its first cluster in id order
 * spells it). A group's gpus merge those of its clusters. The group id is
 * a name-based UUID (RFC 9562 version 8, from SHA-256 of the lower-case
 * group name), so it stays the same across processes and restarts.
 * `region`, `health` ("healthy" or "unhealthy", as reported, without
 * heartbeat age) and the clusters' `gpus` are extensions to NVCF's
 * shape. Every cluster of the inventory is listed; use
 * nvcf_inventory_remove_unhealthy() first to list only live ones.
 *
 * @param[out] json_out  NUL-terminated JSON, released with nvcf_free()
 * @return NVCF_OK; NVCF_EINVAL for a NULL argument; NVCF_ENOMEM
 */
NVCF_API nvcf_status nvcf_inventory_cluster_groups_json(
	const nvcf_inventory *inv, const char *nca_id, char **json_out);

/* ---- placement ------------------------------------------------------- */

/** Split of a placement's instances across eligible clusters. */
typedef enum nvcf_placement_mode {
	/** Fill the first cluster in rank order, then the next. */
	NVCF_PLACEMENT_PACK = 0,
	/** One instance per cluster in rank order, round and round. */
	NVCF_PLACEMENT_SPREAD = 1
} nvcf_placement_mode;

/**
 * Input of a placement: one deployment specification, the current time
 * and the clusters that already rejected this work.
 */
typedef struct nvcf_placement_spec {
	unsigned int version;        /**< NVCF_PLACEMENT_SPEC_VERSION */
	const char *gpu;             /**< required, e.g. "L40S" */
	const char *instance_type;   /**< required, e.g. "NCP.GPU.L40S_1x" */
	/** Cluster ids or names; empty means any cluster. */
	const char *const *clusters;
	size_t clusters_count;
	/** Cluster group; NULL or "" means any group. */
	const char *backend;
	/** Regions; empty means any region. */
	const char *const *regions;
	size_t regions_count;
	/** Attributes that every chosen cluster must have. */
	const char *const *attributes;
	size_t attributes_count;
	/** Instances to place. */
	unsigned int instance_count;
	/** The current time, ms since the epoch. */
	int64_t now_ms;
	/** 0 or less means NVCF_HEARTBEAT_TIMEOUT_MS_DEFAULT. */
	int64_t heartbeat_timeout_ms;
	/** Cluster ids or names that must not get this work. */
	const char *const *exclude;
	size_t exclude_count;
	nvcf_placement_mode mode;    /**< PACK by default */
} nvcf_placement_spec;

#define NVCF_PLACEMENT_SPEC_VERSION 1
/** Initializer with the version set and every field empty or 0. */
#define NVCF_PLACEMENT_SPEC_INIT                                              \
	{NVCF_PLACEMENT_SPEC_VERSION, NULL, NULL, NULL, 0, NULL, NULL, 0,      \
	 NULL, 0, 0, 0, 0, NULL, 0, NVCF_PLACEMENT_PACK}

/** Reason a cluster cannot take a placement. The numbers are frozen. */
typedef enum nvcf_route_reason {
	NVCF_ROUTE_EXCLUDED_BY_CALLER = 1,  /**< listed in exclude */
	NVCF_ROUTE_NOT_IN_CLUSTERS = 2,     /**< not named in clusters */
	NVCF_ROUTE_NOT_IN_BACKEND = 3,      /**< another cluster group */
	NVCF_ROUTE_NOT_IN_REGIONS = 4,      /**< region not in regions */
	NVCF_ROUTE_MISSING_ATTRIBUTE = 5,   /**< lacks a requested attribute */
	NVCF_ROUTE_UNHEALTHY = 6,           /**< reported or stale heartbeat */
	NVCF_ROUTE_NO_SUCH_GPU = 7,         /**< does not have the GPU type */
	NVCF_ROUTE_NO_SUCH_INSTANCE_TYPE = 8, /**< GPU lacks the type */
	NVCF_ROUTE_NO_CAPACITY = 9          /**< not one instance fits */
} nvcf_route_reason;

/** Returns the reason's name ("UNHEALTHY", ...), or "UNKNOWN". */
NVCF_API const char *nvcf_route_reason_name(nvcf_route_reason reason);

/** Result of nvcf_routing_place(). Opaque. */
typedef struct nvcf_route nvcf_route;

/** A cluster that can take the placement. */
typedef struct nvcf_route_entry {
	const char *cluster_id;
	const char *gpu;           /**< the GPU name as the cluster spells it */
	const char *instance_type; /**< as the cluster spells it */
	unsigned int gpu_count;    /**< GPUs per instance on this cluster */
	unsigned int free_gpus;    /**< capacity - allocated, at least 0 */
	/** Instances that fit: free_gpus / gpu_count, at least 1. */
	unsigned int free_slots;
	/** Instances given to this cluster, at most free_slots. */
	unsigned int assigned;
} nvcf_route_entry;

/** A cluster that cannot take the placement, and why. */
typedef struct nvcf_route_exclusion {
	const char *cluster_id;
	nvcf_route_reason reason;
	/** One line naming the value: "cluster c2: region eu-west not in
	 *  regions [us-east]". */
	const char *text;
} nvcf_route_exclusion;

/**
 * Chooses clusters for @p spec and splits its instances across them.
 *
 * Each cluster is checked in this order and excluded for the first check
 * it fails: excluded by the caller, not in clusters, not in backend, not
 * in regions, missing an attribute, unhealthy (see
 * nvcf_inventory_cluster_healthy()), no such GPU, no such instance type
 * for that GPU, no room for one instance. The others are eligible.
 *
 * Ranking: when @p spec names clusters, eligible clusters keep the order
 * of their first mention there. Otherwise the cluster with the most free
 * GPUs of the type comes first, ties broken by cluster id (byte order).
 *
 * Split: PACK gives each cluster in rank order as many instances as fit
 * until none remain; SPREAD gives one instance to each cluster with room,
 * in rank order, and repeats. Either way a cluster never gets more than
 * free_slots instances, so assigned * gpu_count never exceeds its free
 * GPUs. What fits nowhere is counted by nvcf_route_unplaced().
 *
 * The same inventory and spec always give the same route.
 *
 * @param[out] out  the route, released with nvcf_route_free()
 * @return NVCF_OK, also when some or all instances could not be placed;
 *         NVCF_EINVAL for a NULL argument, an unknown spec version or
 *         mode, or an empty gpu or instance_type; NVCF_ENOMEM
 */
NVCF_API nvcf_status nvcf_routing_place(const nvcf_inventory *inv,
					const nvcf_placement_spec *spec,
					nvcf_route **out);

/** Releases @p route and everything it returned. Accepts NULL. */
NVCF_API void nvcf_route_free(nvcf_route *route);

/** Returns the number of eligible clusters; 0 for NULL. */
NVCF_API size_t nvcf_route_count(const nvcf_route *route);

/**
 * Returns eligible cluster @p index in rank order, owned by the route;
 * NULL for a NULL @p route or an index out of range.
 */
NVCF_API const nvcf_route_entry *nvcf_route_entry_at(const nvcf_route *route,
						     size_t index);

/** Returns the number of excluded clusters; 0 for NULL. */
NVCF_API size_t nvcf_route_excluded_count(const nvcf_route *route);

/**
 * Returns excluded cluster @p index, in inventory order, owned by the
 * route; NULL for a NULL @p route or an index out of range.
 */
NVCF_API const nvcf_route_exclusion *
nvcf_route_excluded_at(const nvcf_route *route, size_t index);

/** Returns how many instances fit on no cluster; 0 for NULL. */
NVCF_API unsigned int nvcf_route_unplaced(const nvcf_route *route);

/**
 * Returns one paragraph saying what was placed where and why the other
 * clusters were left out, for a deployment's healthInfo and for logs.
 * Owned by the route; "" for NULL.
 */
NVCF_API const char *nvcf_route_explanation(const nvcf_route *route);

/**
 * Checks whether @p spec could ever be placed, whatever the health and
 * load of the clusters, so that an API can reject it with 400.
 *
 * Rejected: an empty gpu or instance type; backend together with
 * clusters; a backend that is no cluster group; a cluster, region or
 * attribute that no cluster has; a GPU that no cluster offers; an
 * instance type that no cluster offers for that GPU; filters that each
 * match some cluster but together match none. Health, capacity, exclude,
 * instance_count and the time are ignored.
 *
 * @param err     may be NULL; receives the message, also kept as the
 *                thread's error detail ("clusters[1]: no cluster has id
 *                or name 'c9'")
 * @param errlen  size of @p err in bytes; the message is truncated to fit
 * @return NVCF_OK when some cluster could take the spec once healthy and
 *         free; NVCF_EINVAL with the offending field and value named
 */
NVCF_API nvcf_status nvcf_inventory_validate_spec(
	const nvcf_inventory *inv, const nvcf_placement_spec *spec, char *err,
	size_t errlen);

/* ---- subjects and consumers ------------------------------------------- */

/** Buffer size that fits every name below when its inputs are valid. */
#define NVCF_ROUTING_NAME_MAX 320

/** Kind of workload a creation message starts. */
typedef enum nvcf_workload_kind {
	NVCF_WORKLOAD_FUNCTION = 0,
	NVCF_WORKLOAD_TASK = 1
} nvcf_workload_kind;

/**
 * Writes the creation subject
 * `Create.NVCA.{Function|Task}.{clusterId}.{gpu}.{instanceType}` with
 * every '.' of the instance type replaced by '|'.
 *
 * The cluster id and GPU must be 1 to 64 letters, digits, '-' or '_'; the
 * instance type 1 to 128 of those or '.'.
 *
 * @param buf  receives the NUL-terminated subject
 * @param len  size of @p buf; NVCF_ROUTING_NAME_MAX always fits
 * @return NVCF_OK; NVCF_EINVAL for an unknown kind, a NULL or malformed
 *         name (the message names it), or a buffer too small (the message
 *         gives the size needed)
 */
NVCF_API nvcf_status nvcf_routing_create_subject(nvcf_workload_kind kind,
						 const char *cluster_id,
						 const char *gpu,
						 const char *instance_type,
						 char *buf, size_t len);

/**
 * Writes the durable consumer name of a cluster's creation queue,
 * `CreateNvcaFunctionTaskStream-{clusterId}`.
 *
 * @return as nvcf_routing_create_subject()
 */
NVCF_API nvcf_status nvcf_routing_create_consumer(const char *cluster_id,
						  char *buf, size_t len);

/**
 * Writes the filter subject of that consumer,
 * `Create.NVCA.*.{clusterId}.*.*`.
 *
 * @return as nvcf_routing_create_subject()
 */
NVCF_API nvcf_status nvcf_routing_create_filter(const char *cluster_id,
						char *buf, size_t len);

/**
 * Writes the termination subject `Terminate.NVCA.{clusterId}`.
 *
 * @return as nvcf_routing_create_subject()
 */
NVCF_API nvcf_status nvcf_routing_terminate_subject(const char *cluster_id,
						    char *buf, size_t len);

/**
 * Writes the durable consumer name of a cluster's termination queue,
 * `TerminateNvcaStream-{clusterId}`.
 *
 * @return as nvcf_routing_create_subject()
 */
NVCF_API nvcf_status nvcf_routing_terminate_consumer(const char *cluster_id,
						     char *buf, size_t len);

NVCF_END_DECLS

#endif /* NVCF_ROUTING_H */
