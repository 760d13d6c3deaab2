/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file nvcf/crd.h
 * @brief The compute plane's custom resources (ICMSRequest, MiniService,
 *        NVCFBackend): types, YAML and JSON forms, and one reconcile step
 *        per object.
 *
 * A cluster agent keeps one ICMSRequest per creation or termination order,
 * one MiniService per Helm workload and one NVCFBackend describing its
 * cluster. Everything here is pure: no I/O and no clock reads. A
 * reconcile step takes the object, the agent's observations (instance
 * states, the result of acking the order, the time now) and options. It
 * updates the object's status in place and returns the actions for the
 * agent to perform before it stores the object and calls the step again.
 *
 * Objects are library-allocated structs whose members the caller may read.
 * Every string and array in them is owned by the object; build new objects
 * from YAML or JSON rather than by editing members, and release them with
 * the matching _free function. Nothing here keeps global state, so
 * different objects may be used from different threads at once.
 */
#ifndef NVCF_CRD_H
#define NVCF_CRD_H

#include "common.h"

NVCF_BEGIN_DECLS

/** apiVersion of ICMSRequest objects. */
#define NVCF_CRD_ICMS_API_VERSION "nvca.nvcf.nvidia.io/v2beta1"
/** apiVersion of MiniService objects. */
#define NVCF_CRD_MINISERVICE_API_VERSION "nvca.nvcf.nvidia.io/v1alpha1"
/** apiVersion of NVCFBackend objects. */
#define NVCF_CRD_BACKEND_API_VERSION "nvcf.nvidia.io/v1"

/* ---- shared pieces ---------------------------------------------------- */

/** One metadata label. */
typedef struct nvcf_crd_label {
	char *key;   /**< label name */
	char *value; /**< label value, possibly empty */
} nvcf_crd_label;

/** Object metadata: the parts the compute plane uses. */
typedef struct nvcf_crd_meta {
	char *name;              /**< metadata.name; never NULL */
	char *namespace_name;    /**< metadata.namespace, or NULL */
	nvcf_crd_label *labels;  /**< metadata.labels in document order */
	size_t labels_count;     /**< number of labels */
	/** metadata.creationTimestamp in ms since the epoch; 0 when unset. */
	int64_t created_ms;
	/** metadata.generation; 0 when unset. */
	int64_t generation;
} nvcf_crd_meta;

/** State of one instance as the agent observed it in its runtime. */
typedef enum nvcf_crd_observed_t {
	NVCF_CRD_OBSERVED_ABSENT = 0,     /**< unknown to the runtime */
	NVCF_CRD_OBSERVED_STARTING = 1,   /**< created, not ready yet */
	NVCF_CRD_OBSERVED_RUNNING = 2,    /**< ready */
	NVCF_CRD_OBSERVED_SUCCEEDED = 3,  /**< exited 0 (tasks) */
	NVCF_CRD_OBSERVED_FAILED = 4,     /**< failed; see reason */
	NVCF_CRD_OBSERVED_TERMINATED = 5  /**< stopped on order */
} nvcf_crd_observed_t;

/** Returns "absent", "starting", "running", ... or "unknown". */
NVCF_API const char *nvcf_crd_observed_name(nvcf_crd_observed_t state);

/** One observed instance (or, for a MiniService, one workload pod). */
typedef struct nvcf_crd_observed_instance {
	const char *id;            /**< instance id; borrowed */
	nvcf_crd_observed_t state; /**< what the runtime reports */
	/** Failure cause for NVCF_CRD_OBSERVED_FAILED; may be NULL. */
	const char *reason;
} nvcf_crd_observed_instance;

/** Result of acking an ICMSRequest's order message on the bus. */
typedef enum nvcf_crd_ack_t {
	NVCF_CRD_ACK_NONE = 0,     /**< not attempted since the last step */
	NVCF_CRD_ACK_OK = 1,       /**< the message is acked */
	NVCF_CRD_ACK_RETRY = 2,    /**< transient failure; try again */
	NVCF_CRD_ACK_REJECTED = 3  /**< the bus refused it for good */
} nvcf_crd_ack_t;

/** Returns "none", "ok", "retry", "rejected" or "unknown". */
NVCF_API const char *nvcf_crd_ack_name(nvcf_crd_ack_t ack);

/** Allocated GPUs of one type, an input of the NVCFBackend step. */
typedef struct nvcf_crd_gpu_allocation {
	const char *gpu;     /**< GPU name as in spec.gpus; borrowed */
	uint32_t allocated;  /**< GPUs held by instances */
} nvcf_crd_gpu_allocation;

/**
 * Observations of the agent before a reconcile step. One struct serves
 * the three kinds, and each kind ignores the members it does not use.
 */
typedef struct nvcf_crd_observation {
	unsigned int version;  /**< NVCF_CRD_OBSERVATION_VERSION */
	int64_t now_ms;        /**< the time now, ms since the epoch */
	/** Instances of the object; an id missing here counts as absent. */
	const nvcf_crd_observed_instance *instances;
	size_t instances_count;  /**< number of observed instances */
	nvcf_crd_ack_t ack;      /**< ICMSRequest: result of the last ack */
	/**
	 * Error the agent met performing the previous step's actions, or
	 * NULL. ICMSRequest counts it in status.reconcileErrors; MiniService
	 * treats it as an install failure.
	 */
	const char *error;
	bool error_terminal;   /**< the error cannot go away by retrying */
	/** NVCFBackend: time of the agent's last heartbeat; 0 = never. */
	int64_t heartbeat_ms;
	/** NVCFBackend: allocated GPUs per type; absent types count 0. */
	const nvcf_crd_gpu_allocation *allocations;
	size_t allocations_count;  /**< number of allocations */
} nvcf_crd_observation;

#define NVCF_CRD_OBSERVATION_VERSION 1
#define NVCF_CRD_OBSERVATION_INIT                                             \
	{NVCF_CRD_OBSERVATION_VERSION, 0, NULL, 0, NVCF_CRD_ACK_NONE, NULL,    \
	 false, 0, NULL, 0}

/**
 * Time constants of the state machines. The defaults are the reference
 * values; tests shorten them. A member left 0 takes its default.
 */
typedef struct nvcf_crd_options {
	unsigned int version;  /**< NVCF_CRD_OPTIONS_VERSION */
	/** An instance still starting this long after the request was
	 *  created fails the request (MaxRunningTimeout, 180 min). */
	int64_t max_running_timeout_ms;
	/** A failed or stale pending request is cleaned up this long after
	 *  its last status change (FailedRequestCleanupWindow, 1 h). */
	int64_t cleanup_window_ms;
	/** Transient ack failures are retried this long after creation
	 *  (ICMSRequestAckRetryTimeout, 5 min). */
	int64_t ack_retry_timeout_ms;
	/** An unchanged instance state is reported again after this long
	 *  (periodic instance status update, 5 min). */
	int64_t report_interval_ms;
	/** Requeue delay of a step that is waiting on the world (15 s). */
	int64_t sync_interval_ms;
	/** MiniService object failures are tolerated this long before they
	 *  become terminal (FailingObjectsBackoffTimeout, 90 s). */
	int64_t failure_backoff_ms;
	/** Requeue delay while inside that backoff, and after a retryable
	 *  reconcile error (30 s). */
	int64_t failure_requeue_ms;
	/** NVCFBackend: heartbeat age after which the agent is Unhealthy
	 *  (cloud health TTL, 600 s). */
	int64_t heartbeat_timeout_ms;
} nvcf_crd_options;

#define NVCF_CRD_OPTIONS_VERSION 1
#define NVCF_CRD_OPTIONS_INIT                                                 \
	{NVCF_CRD_OPTIONS_VERSION, 180 * 60000LL, 3600000LL, 300000LL,       \
	 300000LL, 15000LL, 90000LL, 30000LL, 600000LL}

/**
 * Fills @p opts with the defaults of NVCF_CRD_OPTIONS_INIT, for bindings
 * that cannot use the macro.
 *
 * @param version  NVCF_CRD_OPTIONS_VERSION as the caller knows it
 * @return NVCF_OK, or NVCF_EINVAL for a NULL @p opts or a version this
 *         library does not know
 */
NVCF_API nvcf_status nvcf_crd_options_init(nvcf_crd_options *opts,
					   unsigned int version);

/** Kind of action a reconcile step requests from the agent. */
typedef enum nvcf_crd_action_kind_t {
	/** Ack the object's order message on the bus, then call the step
	 *  again with the result in nvcf_crd_observation.ack. */
	NVCF_CRD_ACTION_ACK_MESSAGE = 0,
	/** Start instance instance_id (index @c index of the request; for a
	 *  MiniService, install the chart). */
	NVCF_CRD_ACTION_CREATE_INSTANCE = 1,
	/** Stop instance instance_id. Idempotent for the agent. */
	NVCF_CRD_ACTION_DELETE_INSTANCE = 2,
	/** Write the instance record of instance_id with state (an ICMS
	 *  instance state such as "running") and reason, or, for an
	 *  NVCFBackend, write the object's status. */
	NVCF_CRD_ACTION_REPORT_STATUS = 3,
	/** Delete the object from the store; nothing else remains to do. */
	NVCF_CRD_ACTION_GARBAGE_COLLECT = 4,
	/** Call the step again after after_ms (0: at once). */
	NVCF_CRD_ACTION_REQUEUE = 5
} nvcf_crd_action_kind_t;

/** Returns "ack-message", "create-instance", ... or "unknown". */
NVCF_API const char *nvcf_crd_action_name(nvcf_crd_action_kind_t kind);

/** One action of a reconcile step. Strings are owned by the list. */
typedef struct nvcf_crd_action {
	nvcf_crd_action_kind_t kind;  /**< what to do */
	char *instance_id;  /**< create, delete, report; else NULL */
	uint32_t index;     /**< create: the instance's index */
	/** create: 1 for a MiniService instance, 0 for a pod/process. */
	uint32_t miniservice;
	char *state;        /**< report: ICMS instance state; else NULL */
	char *reason;       /**< report or delete: cause, or NULL */
	int64_t after_ms;   /**< requeue: delay in ms */
} nvcf_crd_action;

/** Actions of one reconcile step, in the order to perform them. */
typedef struct nvcf_crd_actions {
	unsigned int version;     /**< NVCF_CRD_ACTIONS_VERSION */
	nvcf_crd_action *items;   /**< the actions */
	size_t count;             /**< number of actions */
} nvcf_crd_actions;

#define NVCF_CRD_ACTIONS_VERSION 1

/** Releases an action list. Accepts NULL. */
NVCF_API void nvcf_crd_actions_free(nvcf_crd_actions *actions);

/* ---- ICMSRequest ------------------------------------------------------- */

/** spec.action of an ICMSRequest. */
typedef enum nvcf_crd_icms_action_t {
	NVCF_CRD_ICMS_REQUEST_INSTANCES = 0,          /**< function */
	NVCF_CRD_ICMS_REQUEST_INSTANCES_FOR_TASK = 1, /**< task */
	NVCF_CRD_ICMS_TERMINATE_INSTANCES = 2         /**< termination */
} nvcf_crd_icms_action_t;

/** Returns "RequestICMSInstances", ... or "unknown". */
NVCF_API const char *nvcf_crd_icms_action_name(nvcf_crd_icms_action_t a);

/** status.requestStatus of an ICMSRequest. */
typedef enum nvcf_crd_request_status_t {
	NVCF_CRD_REQUEST_NEW = 0,                       /**< "" */
	NVCF_CRD_REQUEST_PENDING = 1,
	NVCF_CRD_REQUEST_IN_PROGRESS = 2,
	NVCF_CRD_REQUEST_CACHING_IN_PROGRESS = 3,
	NVCF_CRD_REQUEST_INSTANCES_IN_PROGRESS = 4,
	NVCF_CRD_REQUEST_COMPLETED = 5,
	NVCF_CRD_REQUEST_COMPLETION_ACKNOWLEDGED = 6,
	NVCF_CRD_REQUEST_FAILED = 7,
	NVCF_CRD_REQUEST_FAILURE_ACKNOWLEDGED = 8
} nvcf_crd_request_status_t;

/** Returns "" for NEW, "RequestPending", ... or "unknown". */
NVCF_API const char *
nvcf_crd_request_status_name(nvcf_crd_request_status_t status);

/** status.instances[].instanceType. */
typedef enum nvcf_crd_instance_kind_t {
	NVCF_CRD_INSTANCE_POD = 0,         /**< "Pod": a process or container */
	NVCF_CRD_INSTANCE_MINISERVICE = 1  /**< "MiniService": Helm workload */
} nvcf_crd_instance_kind_t;

/** Returns "Pod", "MiniService" or "unknown". */
NVCF_API const char *nvcf_crd_instance_kind_name(nvcf_crd_instance_kind_t k);

/** One entry of status.instances. */
typedef struct nvcf_crd_icms_instance {
	char *id;                       /**< instance id, the map key */
	nvcf_crd_instance_kind_t kind;  /**< instanceType */
	char *status;                   /**< ICMS instance state; never NULL */
	char *last_reported_status;     /**< "" until first reported */
	int64_t last_reported_ms;       /**< 0 until first reported */
	char *reason;                   /**< termination cause, or NULL */
} nvcf_crd_icms_instance;

/** ICMSRequest spec. */
typedef struct nvcf_crd_icms_spec {
	char *request_id;                 /**< spec.requestId */
	char *nca_id;                     /**< spec.ncaId; NULL if absent */
	nvcf_crd_icms_action_t action;    /**< spec.action */
	char *function_id;                /**< spec.functionId, or NULL */
	char *function_version_id;        /**< functionVersionId, or NULL */
	char *task_id;                    /**< spec.taskId, or NULL */
	char *gpu;                        /**< spec.gpu, or NULL */
	char *instance_type;              /**< spec.instanceType, or NULL */
	uint32_t instance_count;          /**< instanceCount, 0 if absent */
	char *gpu_specification_id;       /**< or NULL */
	char *deployment_id;              /**< or NULL */
	/** spec.functionLaunchSpecification (functions) or
	 *  spec.taskLaunchSpecification (tasks) as compact JSON, or NULL. */
	char *launch_specification;
	/** spec.terminationMsgInfo.instanceIds (termination only). */
	char **termination_instance_ids;
	size_t termination_instance_ids_count;  /**< number of ids */
} nvcf_crd_icms_spec;

/** ICMSRequest status. */
typedef struct nvcf_crd_icms_status {
	nvcf_crd_request_status_t request_status;  /**< requestStatus */
	int64_t last_status_updated_ms;  /**< 0 when unset */
	int64_t last_ack_ms;             /**< lastACKTimestamp; 0 when unset */
	uint32_t reconcile_errors;       /**< reconcileErrors */
	char *last_reconcile_error;      /**< or NULL */
	nvcf_crd_icms_instance *instances;  /**< map in document order */
	size_t instances_count;             /**< number of instances */
} nvcf_crd_icms_status;

/** An ICMSRequest object. */
typedef struct nvcf_crd_icms {
	unsigned int version;        /**< NVCF_CRD_ICMS_VERSION */
	nvcf_crd_meta metadata;      /**< metadata */
	nvcf_crd_icms_spec spec;     /**< spec */
	nvcf_crd_icms_status status; /**< status */
} nvcf_crd_icms;

#define NVCF_CRD_ICMS_VERSION 1

/**
 * Decodes an ICMSRequest from JSON.
 *
 * Unknown fields are ignored. Every object needs apiVersion, kind,
 * metadata.name, spec.requestId and spec.action. Creation actions also
 * need spec.ncaId, spec.gpu, spec.instanceType and a positive
 * spec.instanceCount. Functions need spec.functionId and
 * spec.functionVersionId, tasks need spec.taskId, and terminations need
 * spec.terminationMsgInfo.instanceIds.
 *
 * @param[out] out  the object, released with nvcf_crd_icms_free()
 * @param text      the document; need not be NUL-terminated
 * @param len       bytes of @p text
 * @return NVCF_OK; NVCF_EINVAL for malformed or incomplete input, with a
 *         message naming the field and what it expects; NVCF_ENOMEM
 */
NVCF_API nvcf_status nvcf_crd_icms_from_json(nvcf_crd_icms **out,
					     const char *text, size_t len);

/**
 * Decodes an ICMSRequest from YAML (one document), with the rules of
 * nvcf_crd_icms_from_json(). Plain scalars that read as numbers, true,
 * false or null are those; quoted ones are strings.
 *
 * @return as nvcf_crd_icms_from_json()
 */
NVCF_API nvcf_status nvcf_crd_icms_from_yaml(nvcf_crd_icms **out,
					     const char *text, size_t len);

/**
 * Encodes @p obj as compact JSON. Decoding the result gives an equal
 * object. Unset members are left out.
 *
 * @param[out] out  NUL-terminated text, released with nvcf_free()
 * @return NVCF_OK; NVCF_EINVAL for NULL arguments or an object without a
 *         name or request id; NVCF_ENOMEM
 */
NVCF_API nvcf_status nvcf_crd_icms_to_json(char **out,
					   const nvcf_crd_icms *obj);

/** Encodes @p obj as a YAML document; see nvcf_crd_icms_to_json(). */
NVCF_API nvcf_status nvcf_crd_icms_to_yaml(char **out,
					   const nvcf_crd_icms *obj);

/** Releases an ICMSRequest. Accepts NULL. */
NVCF_API void nvcf_crd_icms_free(nvcf_crd_icms *obj);

/**
 * Runs one reconcile step of an ICMSRequest.
 *
 * At most one requestStatus transition happens per step, and a step that
 * made one ends with a requeue of 0 ms.
 *
 * Creation: "" requests the ack (ACK action) and moves to RequestPending
 * once @c ack is OK. RETRY is retried until ack_retry_timeout_ms after
 * creation, and REJECTED gives RequestFailureAcknowledged. RequestPending
 * and RequestInProgress create only the instances missing from
 * status.instances, with ids "{i}-{name}", or one "{name}-miniservice"
 * when the launch specification has a helmChart. The step then
 * aggregates the observed states. Any failed instance, or one still
 * starting past max_running_timeout_ms, gives RequestFailed. Any starting
 * instance gives RequestInstancesInProgress, and all running gives
 * RequestCompleted. RequestCompleted and RequestFailed move to their
 * Acknowledged states once every instance state is reported.
 *
 * A function instance observed failed is deleted and reported
 * "terminated" with the failure as reason. An instance missing from the
 * observation is reported "terminated" with reason "instance-not-found",
 * so the agent lists every instance it started, from the step after the
 * CREATE_INSTANCE action on. The object is garbage
 * collected once every instance is gone and reported terminated, or when
 * a failed request has none. A failed request's remaining instances are
 * deleted after cleanup_window_ms.
 *
 * Termination: "" acks and moves to RequestPending. RequestInProgress
 * deletes each listed id not yet in status.instances, RequestCompleted
 * follows once all are recorded, then RequestCompletionAcknowledged and
 * garbage collection.
 *
 * A terminal @c error fails the request. Any other error counts in
 * reconcileErrors and requeues after failure_requeue_ms.
 *
 * @param[out] actions_out  actions, released with nvcf_crd_actions_free()
 * @param obj   updated in place (status, and creationTimestamp when unset)
 * @param obs   what the agent observed; now_ms is required
 * @param opts  time constants, or NULL for the defaults
 * @return NVCF_OK; NVCF_EINVAL for NULL arguments or unknown struct
 *         versions; NVCF_ENOMEM (then @p obj may be partly updated and
 *         should be discarded)
 */
NVCF_API nvcf_status nvcf_crd_icms_reconcile(nvcf_crd_actions **actions_out,
					     nvcf_crd_icms *obj,
					     const nvcf_crd_observation *obs,
					     const nvcf_crd_options *opts);

/* ---- MiniService ------------------------------------------------------- */

/** status.phase of a MiniService. */
typedef enum nvcf_crd_phase_t {
	NVCF_CRD_PHASE_NONE = 0,                /**< "" */
	NVCF_CRD_PHASE_CACHING_IN_PROGRESS = 1,
	NVCF_CRD_PHASE_INSTALLING = 2,
	NVCF_CRD_PHASE_INSTALLED = 3,
	NVCF_CRD_PHASE_STARTING = 4,
	NVCF_CRD_PHASE_RUNNING = 5,
	NVCF_CRD_PHASE_COMPLETED = 6,           /**< tasks; a sink */
	NVCF_CRD_PHASE_INSTALL_FAILED = 7,      /**< a sink */
	NVCF_CRD_PHASE_FAILED = 8               /**< a sink */
} nvcf_crd_phase_t;

/** Returns "" for NONE, "Installing", ... or "unknown". */
NVCF_API const char *nvcf_crd_phase_name(nvcf_crd_phase_t phase);

/**
 * The observed state an ICMSRequest step should be given for a
 * MiniService instance in @p phase: starting while installing or
 * starting, running when Running, succeeded when Completed, failed for
 * the failed phases.
 */
NVCF_API nvcf_crd_observed_t nvcf_crd_phase_observed(nvcf_crd_phase_t phase);

/** One status.conditions entry. */
typedef struct nvcf_crd_condition {
	char *type;     /**< "ObjectsHealthy", "InstallSuccessful", ... */
	char *status;   /**< "True", "False" or "Unknown" */
	char *reason;   /**< or NULL */
	char *message;  /**< or NULL */
	int64_t last_transition_ms;  /**< 0 when unset */
} nvcf_crd_condition;

/** MiniService spec. */
typedef struct nvcf_crd_miniservice_spec {
	char *namespace_name;     /**< spec.namespace */
	char *icms_request_name;  /**< spec.icmsRequestName */
	char *chart_url;          /**< spec.helmChartConfig.url */
	char *service_name;       /**< helmChartConfig.serviceName, or NULL */
	uint32_t service_port;    /**< helmChartConfig.servicePort; 0 unset */
	/** helmChartConfig.values as compact JSON, or NULL. */
	char *values;
	bool is_task;             /**< spec.isTask */
} nvcf_crd_miniservice_spec;

/** MiniService status. */
typedef struct nvcf_crd_miniservice_status {
	nvcf_crd_phase_t phase;                /**< status.phase */
	int64_t last_phase_transition_ms;      /**< 0 when unset */
	nvcf_crd_condition *conditions;        /**< status.conditions */
	size_t conditions_count;               /**< number of conditions */
	uint32_t revision;                     /**< status.revision */
	int64_t observed_generation;           /**< status.observedGeneration */
} nvcf_crd_miniservice_status;

/** A MiniService object. */
typedef struct nvcf_crd_miniservice {
	unsigned int version;            /**< NVCF_CRD_MINISERVICE_VERSION */
	nvcf_crd_meta metadata;              /**< metadata */
	nvcf_crd_miniservice_spec spec;      /**< spec */
	nvcf_crd_miniservice_status status;  /**< status */
} nvcf_crd_miniservice;

#define NVCF_CRD_MINISERVICE_VERSION 1

/**
 * Decodes a MiniService from JSON. Required: apiVersion, kind,
 * metadata.name, spec.namespace, spec.icmsRequestName and
 * spec.helmChartConfig.url.
 *
 * @param[out] out  released with nvcf_crd_miniservice_free()
 * @return NVCF_OK; NVCF_EINVAL naming the field; NVCF_ENOMEM
 */
NVCF_API nvcf_status nvcf_crd_miniservice_from_json(
	nvcf_crd_miniservice **out, const char *text, size_t len);

/** Decodes a MiniService from YAML; see nvcf_crd_miniservice_from_json(). */
NVCF_API nvcf_status nvcf_crd_miniservice_from_yaml(
	nvcf_crd_miniservice **out, const char *text, size_t len);

/**
 * Encodes a MiniService as compact JSON.
 *
 * @param[out] out  released with nvcf_free()
 * @return NVCF_OK; NVCF_EINVAL for NULL arguments or a missing name;
 *         NVCF_ENOMEM
 */
NVCF_API nvcf_status nvcf_crd_miniservice_to_json(
	char **out, const nvcf_crd_miniservice *obj);

/** Encodes a MiniService as YAML; see nvcf_crd_miniservice_to_json(). */
NVCF_API nvcf_status nvcf_crd_miniservice_to_yaml(
	char **out, const nvcf_crd_miniservice *obj);

/** Releases a MiniService. Accepts NULL. */
NVCF_API void nvcf_crd_miniservice_free(nvcf_crd_miniservice *obj);

/**
 * Runs one reconcile step of a MiniService. The observed instances are
 * its workload pods.
 *
 * "" requests the install (CREATE_INSTANCE) and moves to Installing.
 * Installing becomes Installed once a pod is observed, or InstallFailed
 * on a terminal @c error. Installed, Starting and Running follow the pods:
 * any starting pod gives Starting (terminal past max_running_timeout_ms
 * in Starting), all running gives Running, and all succeeded gives
 * Completed for a task.
 *
 * A failed pod is tolerated for failure_backoff_ms (condition
 * ObjectsHealthy False, reason ObjectsFailedWithinBackoffTimeout). After
 * that the phase becomes Failed if the service was Running, else
 * InstallFailed. A task's failed pod is terminal at once. A newer
 * metadata.generation than status.observedGeneration moves a running
 * service back to Installing with revision + 1. Completed, InstallFailed
 * and Failed are sinks.
 *
 * @param[out] actions_out  released with nvcf_crd_actions_free()
 * @return NVCF_OK; NVCF_EINVAL for NULL arguments or unknown versions;
 *         NVCF_ENOMEM
 */
NVCF_API nvcf_status nvcf_crd_miniservice_reconcile(
	nvcf_crd_actions **actions_out, nvcf_crd_miniservice *obj,
	const nvcf_crd_observation *obs, const nvcf_crd_options *opts);

/* ---- NVCFBackend ------------------------------------------------------- */

/** One instance type of a GPU. */
typedef struct nvcf_crd_instance_type {
	char *name;          /**< e.g. "NCP.GPU.L40S_1x" */
	char *description;   /**< or NULL */
	uint32_t gpu_count;  /**< GPUs per instance */
	bool is_default;     /**< default */
} nvcf_crd_instance_type;

/** One GPU type of spec.gpus. */
typedef struct nvcf_crd_backend_gpu {
	char *name;                              /**< e.g. "L40S" */
	uint32_t capacity;                       /**< GPUs of this type */
	nvcf_crd_instance_type *instance_types;  /**< instanceTypes */
	size_t instance_types_count;             /**< number of types */
} nvcf_crd_backend_gpu;

/** status.agentStatus of an NVCFBackend. */
typedef enum nvcf_crd_agent_status_t {
	NVCF_CRD_AGENT_UNKNOWN = 0,
	NVCF_CRD_AGENT_HEALTHY = 1,
	NVCF_CRD_AGENT_UNHEALTHY = 2
} nvcf_crd_agent_status_t;

/** Returns "Unknown", "Healthy", "Unhealthy" or "unknown". */
NVCF_API const char *
nvcf_crd_agent_status_name(nvcf_crd_agent_status_t status);

/** One entry of status.gpuUsage. */
typedef struct nvcf_crd_gpu_usage {
	char *gpu;           /**< the map key */
	uint32_t capacity;   /**< capacity */
	uint32_t allocated;  /**< allocated */
	uint32_t available;  /**< capacity - allocated, at least 0 */
} nvcf_crd_gpu_usage;

/** NVCFBackend spec, as the agent's backend file has it. */
typedef struct nvcf_crd_backend_spec {
	char *cluster_id;     /**< spec.clusterId */
	char *cluster_name;   /**< spec.clusterName */
	char *cluster_group;  /**< spec.clusterGroup */
	char *region;         /**< spec.region */
	char **attributes;    /**< spec.attributes */
	size_t attributes_count;     /**< number of attributes */
	nvcf_crd_backend_gpu *gpus;  /**< spec.gpus */
	size_t gpus_count;           /**< number of GPU types */
} nvcf_crd_backend_spec;

/** NVCFBackend status. */
typedef struct nvcf_crd_backend_status {
	nvcf_crd_agent_status_t agent_status;   /**< agentStatus */
	int64_t last_updated_agent_status_ms;   /**< 0 when unset */
	nvcf_crd_gpu_usage *gpu_usage;          /**< gpuUsage, spec order */
	size_t gpu_usage_count;                 /**< number of entries */
} nvcf_crd_backend_status;

/** An NVCFBackend object. */
typedef struct nvcf_crd_backend {
	unsigned int version;            /**< NVCF_CRD_BACKEND_VERSION */
	nvcf_crd_meta metadata;          /**< metadata */
	nvcf_crd_backend_spec spec;      /**< spec */
	nvcf_crd_backend_status status;  /**< status */
} nvcf_crd_backend;

#define NVCF_CRD_BACKEND_VERSION 1

/**
 * Checks an NVCFBackend spec. clusterId and every GPU name must be single
 * NATS subject tokens (letters, digits, '-', '_', 1 to 100 characters).
 * GPU and instance type names must be unique. Every instance type needs a
 * gpuCount from 1 to the GPU's capacity, except that a GPU type with
 * capacity 0 keeps its instance types.
 *
 * @return NVCF_OK, or NVCF_EINVAL with a message naming the field
 */
NVCF_API nvcf_status nvcf_crd_backend_validate(const nvcf_crd_backend *obj);

/**
 * Decodes an NVCFBackend from JSON and validates it with
 * nvcf_crd_backend_validate(). Required: apiVersion, kind, metadata.name,
 * spec.clusterId, clusterName, clusterGroup, region, and spec.gpus with
 * at least one GPU, each with a name and at least one instance type.
 *
 * @param[out] out  released with nvcf_crd_backend_free()
 * @return NVCF_OK; NVCF_EINVAL naming the field; NVCF_ENOMEM
 */
NVCF_API nvcf_status nvcf_crd_backend_from_json(nvcf_crd_backend **out,
						const char *text, size_t len);

/**
 * Decodes an NVCFBackend from YAML; the agent's backend files are
 * accepted. See nvcf_crd_backend_from_json().
 */
NVCF_API nvcf_status nvcf_crd_backend_from_yaml(nvcf_crd_backend **out,
						const char *text, size_t len);

/**
 * Encodes an NVCFBackend as compact JSON.
 *
 * @param[out] out  released with nvcf_free()
 * @return NVCF_OK; NVCF_EINVAL for NULL arguments; NVCF_ENOMEM
 */
NVCF_API nvcf_status nvcf_crd_backend_to_json(char **out,
					      const nvcf_crd_backend *obj);

/** Encodes an NVCFBackend as YAML; see nvcf_crd_backend_to_json(). */
NVCF_API nvcf_status nvcf_crd_backend_to_yaml(char **out,
					      const nvcf_crd_backend *obj);

/** Releases an NVCFBackend. Accepts NULL. */
NVCF_API void nvcf_crd_backend_free(nvcf_crd_backend *obj);

/**
 * Runs one reconcile step of an NVCFBackend: validates the spec, sets
 * agentStatus (Unknown without a heartbeat, Healthy while the heartbeat
 * is younger than heartbeat_timeout_ms, else Unhealthy) and gpuUsage
 * (one entry per GPU type, from the observed allocations). When the
 * status changed the actions hold REPORT_STATUS; they always end with a
 * requeue after sync_interval_ms.
 *
 * @param[out] actions_out  released with nvcf_crd_actions_free()
 * @return NVCF_OK; NVCF_EINVAL for NULL arguments, unknown versions or an
 *         invalid spec (the object is left unchanged); NVCF_ENOMEM
 */
NVCF_API nvcf_status nvcf_crd_backend_reconcile(
	nvcf_crd_actions **actions_out, nvcf_crd_backend *obj,
	const nvcf_crd_observation *obs, const nvcf_crd_options *opts);

NVCF_END_DECLS

#endif /* NVCF_CRD_H */
