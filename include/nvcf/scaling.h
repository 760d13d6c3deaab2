/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file nvcf/scaling.h
 * @brief The scaling policy as pure functions: a version's load in, the
 *        number of instances it should have out.
 *
 * An autoscaler keeps one ::nvcf_scaling_history per function version and,
 * on every tick, hands nvcf_scaling_evaluate() the version's parameters
 * and the load it just measured. The call returns the total number of
 * instances (ready plus starting) the version should have and why; the
 * caller creates or terminates the difference.
 *
 * Two policies exist. Target tracking (the default) sizes the version so
 * that its request slots are busy at a target fraction, scales up at once
 * and scales down only after a stabilization window. The utilization
 * policy reproduces NVCF's function autoscaler: utilization samples
 * compared against thresholds (70 and 30 percent), a multiplicative step
 * (1.2 up, 0.8 down) and optional stickiness.
 *
 * The functions do no I/O, read no clock, keep no globals and do not
 * allocate in nvcf_scaling_evaluate(). Calls on distinct histories may run
 * on different threads at once; one history needs one caller at a time.
 */
#ifndef NVCF_SCALING_H
#define NVCF_SCALING_H

#include "common.h"

NVCF_BEGIN_DECLS

/** Rule that turns load into desired instances. */
typedef enum nvcf_scaling_policy_t {
	/** Proportional to work over a target utilization; the default. */
	NVCF_SCALING_TARGET_TRACKING = 0,
	/** NVCF-compatible thresholds, factors and stickiness. */
	NVCF_SCALING_UTILIZATION = 1
} nvcf_scaling_policy_t;

/** Cause of a decision. The numbers are ABI and are never renumbered. */
typedef enum nvcf_scaling_reason_t {
	/** Load fits the current instances. */
	NVCF_SCALING_STEADY = 0,
	/** Load needs more instances than the version has. */
	NVCF_SCALING_UP_LOAD = 1,
	/** Load fits fewer instances, and the policy lets it shrink. */
	NVCF_SCALING_DOWN_LOAD = 2,
	/** Requests arrived at a version with no instance. */
	NVCF_SCALING_WAKE_FROM_ZERO = 3,
	/** No request for the idle window and min_instances is 0. */
	NVCF_SCALING_IDLE_TO_ZERO = 4,
	/** The load needs fewer than min_instances. */
	NVCF_SCALING_AT_MIN = 5,
	/** The load needs more than max_instances. */
	NVCF_SCALING_AT_MAX = 6,
	/**
	 * The load would allow fewer instances (or a breach waits for its
	 * stickiness), but the policy waits for the load to stay there.
	 */
	NVCF_SCALING_STABILIZING = 7,
	/**
	 * Utilization policy: instances are starting and none is ready, so
	 * there is no utilization to act on yet.
	 */
	NVCF_SCALING_PENDING_START = 8
} nvcf_scaling_reason_t;

/** Samples of utilization a history keeps (utilization policy). */
#define NVCF_SCALING_SAMPLES_MAX 60

/** Largest max_request_concurrency, as the deployment API accepts. */
#define NVCF_SCALING_CONCURRENCY_MAX 16384

/**
 * Parameters of one version's scaling. Initialize with
 * NVCF_SCALING_PARAMS_INIT, then set what differs; a caller may change any
 * field between evaluations (a PATCHed deployment) and the next
 * evaluation applies it.
 */
typedef struct nvcf_scaling_params {
	unsigned int version;   /**< NVCF_SCALING_PARAMS_VERSION */
	/** Policy; default NVCF_SCALING_TARGET_TRACKING. */
	nvcf_scaling_policy_t policy;
	/** Minimum instances, default 0; at most max_instances. */
	uint32_t min_instances;
	/** Maximum instances, default 1; at least 1. */
	uint32_t max_instances;
	/**
	 * Requests one instance serves at once, default 1, 1 to
	 * NVCF_SCALING_CONCURRENCY_MAX (16384).
	 */
	uint32_t max_request_concurrency;
	/**
	 * Target tracking: busy fraction of the slots to aim for, in
	 * (0, 1], default 0.75.
	 */
	double target_utilization;
	/**
	 * Target tracking: a scale-down goes no lower than the highest need
	 * seen during this window, in ms, >= 0, default 30000. 0 scales
	 * down at once.
	 */
	int64_t scale_down_window_ms;
	/**
	 * Both policies: with min_instances 0, a version that saw no request
	 * for this long, in ms, goes to zero; >= 0, default 300000.
	 */
	int64_t idle_to_zero_ms;
	/** Utilization policy: scale up above this, percent, default 70. */
	double scale_up_threshold;
	/**
	 * Utilization policy: scale down below this, percent, default 30;
	 * >= 0 and below scale_up_threshold.
	 */
	double scale_down_threshold;
	/** Utilization policy: step up, > 1, default 1.2. */
	double scale_up_factor;
	/** Utilization policy: step down, in (0, 1), default 0.8. */
	double scale_down_factor;
	/**
	 * Utilization policy: a scale-up needs breaching samples covering
	 * up_stickiness_required_ms among those of the last
	 * up_stickiness_window_ms (k of W samples, each duration divided by
	 * sample_interval_ms, truncated). In ms, default 0: the newest
	 * sample decides alone. Required must be below the window, and the
	 * window at most NVCF_SCALING_SAMPLES_MAX samples long.
	 */
	int64_t up_stickiness_window_ms;
	/** See up_stickiness_window_ms; in ms, default 0. */
	int64_t up_stickiness_required_ms;
	/** Same as the up pair, for scale-down; in ms, default 0. */
	int64_t down_stickiness_window_ms;
	/** See down_stickiness_window_ms; in ms, default 0. */
	int64_t down_stickiness_required_ms;
	/**
	 * Utilization policy: spacing of utilization samples, in ms, > 0,
	 * default 60000 (NVCF's one-minute step). A decision is taken when
	 * a sample is; evaluations in between hold it.
	 */
	int64_t sample_interval_ms;
} nvcf_scaling_params;

#define NVCF_SCALING_PARAMS_VERSION 1
/** Defaults of every field, as documented on ::nvcf_scaling_params. */
#define NVCF_SCALING_PARAMS_INIT                                              \
	{NVCF_SCALING_PARAMS_VERSION, NVCF_SCALING_TARGET_TRACKING, 0, 1, 1,  \
	 0.75, 30000, 300000, 70.0, 30.0, 1.2, 0.8, 0, 0, 0, 0, 60000}

/**
 * One measurement of a version's load. All times are in ms on the
 * caller's monotonic clock; the library never reads a clock.
 */
typedef struct nvcf_scaling_metrics {
	unsigned int version;    /**< NVCF_SCALING_METRICS_VERSION */
	/** Now; never below the previous evaluation's on one history. */
	int64_t now_ms;
	uint64_t queued;         /**< requests waiting in the version's queue */
	/** Requests that workers took and have not completed yet. */
	uint64_t in_flight;
	uint32_t ready;          /**< instances serving */
	uint32_t starting;       /**< instances asked for, not ready yet */
	/**
	 * Time of the newest request, same clock; negative when none was
	 * seen, which counts as idle since the history's first evaluation.
	 */
	int64_t last_request_ms;
} nvcf_scaling_metrics;

#define NVCF_SCALING_METRICS_VERSION 1
/** Zero load at time 0 with no request seen. */
#define NVCF_SCALING_METRICS_INIT                                             \
	{NVCF_SCALING_METRICS_VERSION, 0, 0, 0, 0, 0, -1}

/** Result of nvcf_scaling_evaluate(). */
typedef struct nvcf_scaling_decision {
	/** Total instances (ready plus starting) the version should have. */
	uint32_t desired;
	nvcf_scaling_reason_t reason;   /**< why */
	/**
	 * (in_flight + queued) / (max_request_concurrency * (ready +
	 * starting)), a fraction from 0; INFINITY when work waits and no
	 * instance exists.
	 */
	double utilization;
	/** One human-readable line explaining the numbers; NUL-terminated. */
	char detail[160];
} nvcf_scaling_decision;

/**
 * State of one version's scaling between evaluations: recent needs
 * (target tracking), utilization samples, the held decision (utilization
 * policy) and the first evaluation's time. Opaque, one per version.
 */
typedef struct nvcf_scaling_history nvcf_scaling_history;

/**
 * Allocates an empty history. This is the only allocation of the module.
 *
 * @param[out] out  the new history, released with nvcf_scaling_history_free()
 * @return NVCF_OK; NVCF_EINVAL for a NULL @p out; NVCF_ENOMEM
 */
NVCF_API nvcf_status nvcf_scaling_history_new(nvcf_scaling_history **out);

/** Releases @p h. Accepts NULL. */
NVCF_API void nvcf_scaling_history_free(nvcf_scaling_history *h);

/**
 * Forgets everything @p h remembers, as if it were new; the next
 * evaluation starts the idle clock again. Accepts NULL.
 */
NVCF_API void nvcf_scaling_history_reset(nvcf_scaling_history *h);

/**
 * Checks every field of @p p against the ranges documented on
 * ::nvcf_scaling_params, including the fields of the policy not in use.
 *
 * @return NVCF_OK; NVCF_EINVAL for a NULL @p p, an unknown version or
 *         policy, or a value out of range, with a message naming the field
 *         and its value ("max_instances (0) must be >= 1")
 */
NVCF_API nvcf_status
nvcf_scaling_params_validate(const nvcf_scaling_params *p);

/**
 * Applies an NVCF `autoscalingConfiguration` JSON object to @p p.
 *
 * The object is {"scaleUpDetails": S, "scaleDownDetails": S} with
 * S = {"metric": string (ignored), "factor": number, "threshold": integer
 * 0-100, "stickiness": {"size": duration, "threshold": duration}}. Every
 * key is optional; a missing one leaves the field as it was. A stickiness
 * needs both durations, a size of at most PT1H and a threshold below the
 * size. The call sets the policy to NVCF_SCALING_UTILIZATION unless the
 * extension key "policy" is "TARGET_TRACKING". The other extension keys
 * are "targetUtilization" (number), "scaleDownWindow" and "idleToZero"
 * (ISO-8601 durations such as "PT30S"). The result must then pass
 * nvcf_scaling_params_validate().
 *
 * @param p     initialized parameters; changed only on success
 * @param json  NUL-terminated JSON text; not kept
 * @return NVCF_OK; NVCF_EINVAL for NULL arguments, text that is not a
 *         JSON object, an unknown key, a wrong type or a value out of
 *         range, with a message naming the JSON path and the value
 *         ("autoscalingConfiguration.scaleUpDetails.factor must be > 1.0,
 *         got 0.9"); NVCF_ENOMEM
 */
NVCF_API nvcf_status nvcf_scaling_params_from_json(nvcf_scaling_params *p,
						   const char *json);

/**
 * Decides how many instances a version should have now.
 *
 * Target tracking: need = ceil(work / (max_request_concurrency *
 * target_utilization)) with work = queued + in_flight. A larger need is
 * taken at once; a smaller one only down to the highest need recorded over
 * scale_down_window_ms.
 *
 * Utilization policy: every sample_interval_ms, while an instance is
 * ready, the call takes a sample of 100 * work / (max_request_concurrency
 * * (ready + starting)) percent and applies the NVCF rule. When the newest
 * sample (or enough of the recent ones, with stickiness) is above the up
 * threshold, the result is ceil(current * up factor). Otherwise, when
 * below the down threshold, it is max(1, floor(current * down factor)),
 * and else current. The result holds until the next sample, or until the
 * parameters change. While instances start and none is ready, the count
 * holds.
 *
 * Both: with min_instances 0, no work and no request for idle_to_zero_ms
 * (utilization policy: also a mean of the samples of the last ten
 * intervals below the down threshold), the result is 0. Any queued or in
 * flight request makes it at least 1. Last, it is clamped to
 * [min_instances, max_instances].
 *
 * @param p    parameters; checked like nvcf_scaling_params_validate()
 * @param m    the load now
 * @param h    the version's history; updated
 * @param out  filled on success
 * @return NVCF_OK; NVCF_EINVAL for a NULL argument, invalid @p p, an
 *         unknown metrics version or a now_ms before the previous
 *         evaluation's on @p h (the message names the values)
 */
NVCF_API nvcf_status nvcf_scaling_evaluate(const nvcf_scaling_params *p,
					   const nvcf_scaling_metrics *m,
					   nvcf_scaling_history *h,
					   nvcf_scaling_decision *out);

/** Returns the reason's name ("wake-from-zero", ...), or "unknown". */
NVCF_API const char *nvcf_scaling_reason_name(nvcf_scaling_reason_t r);

/** Returns the policy's name ("target-tracking", ...), or "unknown". */
NVCF_API const char *nvcf_scaling_policy_name(nvcf_scaling_policy_t p);

NVCF_END_DECLS

#endif /* NVCF_SCALING_H */
