/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Instance state for the container runtime: folds what the agent sees of
 * one container over time (inspect results, its own health probe, the
 * last log lines) into starting / running / succeeded / failed(reason),
 * with the failure rules of the NVCF compute plane: an image that is not
 * present, an exit, a crash loop (N exits within a window), a health
 * check that never passed within the start-up bound, a container that
 * vanished or could not be created.
 *
 * No I/O, no clock, no globals: the caller passes the time in every
 * observation and owns the tracker, so the rules are testable alone.
 */
#ifndef NVCF_RUNTIME_INSTANCE_H
#define NVCF_RUNTIME_INSTANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/docker.h"

typedef enum nvcf__instance_phase {
	NVCF__INSTANCE_STARTING = 0,
	NVCF__INSTANCE_RUNNING,
	/* A run-to-completion container exited 0. */
	NVCF__INSTANCE_SUCCEEDED,
	NVCF__INSTANCE_FAILED
} nvcf__instance_phase;

typedef enum nvcf__instance_reason {
	NVCF__REASON_NONE = 0,
	NVCF__REASON_IMAGE_MISSING,
	NVCF__REASON_CREATE_ERROR,
	NVCF__REASON_EXITED,
	NVCF__REASON_CRASH_LOOP,
	NVCF__REASON_HEALTH,
	NVCF__REASON_DEGRADED,
	NVCF__REASON_NOT_FOUND
} nvcf__instance_reason;

typedef enum nvcf__probe {
	NVCF__PROBE_UNKNOWN = 0, /* not probed (yet) */
	NVCF__PROBE_OK,
	NVCF__PROBE_FAILING
} nvcf__probe;

typedef struct nvcf__instance_policy {
	unsigned int version;
	/*
	 * Whether an exit is followed by a restart (by the engine's restart
	 * policy or by the agent). When false, the first exit is final.
	 */
	bool restarts;
	/* A task: exit status 0 is success, not failure. */
	bool run_to_completion;
	/* Exits within crash_loop_window_us that make a crash loop. */
	unsigned int crash_loop_exits;
	int64_t crash_loop_window_us;
	/* Time from the first observation for the health check to pass. */
	int64_t startup_timeout_us;
	/* Time a failing health check is tolerated once the instance ran
	 * healthy; 0 disables this failure. */
	int64_t degraded_timeout_us;
} nvcf__instance_policy;

#define NVCF__INSTANCE_POLICY_VERSION 1
/* Functions: restarted, crash loop at 3 exits in 10 min, 2 h start-up. */
#define NVCF__INSTANCE_POLICY_INIT                                            \
	{                                                                     \
		.version = NVCF__INSTANCE_POLICY_VERSION, .restarts = true,   \
		.crash_loop_exits = 3,                                        \
		.crash_loop_window_us = INT64_C(600000000),                   \
		.startup_timeout_us = INT64_C(7200000000),                    \
		.degraded_timeout_us = INT64_C(1800000000)                    \
	}

/* One look at the instance. */
typedef struct nvcf__instance_obs {
	/* Monotonic time of the look, in microseconds. */
	int64_t now_us;
	/* Creating failed: the image is missing (ENOTFOUND from
	 * nvcf__docker_image_ensure) or another create error. */
	bool image_missing;
	bool create_failed;
	/* Engine message for either failure. */
	const char *create_error;
	/* The inspect result; NULL when the container does not exist. */
	const nvcf__docker_state *state;
	/* The agent's probe of the inference health endpoint. */
	nvcf__probe health;
	/* Last log lines, for failure messages; may be NULL. */
	const char *logs;
} nvcf__instance_obs;

#define NVCF__INSTANCE_EXITS_KEPT 16

/* What the fold remembers; zero it (= {0}) before the first look. */
typedef struct nvcf__instance_track {
	bool seen;
	bool was_present;
	bool was_running; /* healthy at least once */
	bool last_exited;
	int64_t first_us;
	int64_t healthy_us;   /* last time the probe passed */
	int64_t unhealthy_us; /* start of the current failing streak */
	unsigned int restart_count;
	char finished_at[48];
	/* Times of the most recent exits, a ring. */
	int64_t exits_us[NVCF__INSTANCE_EXITS_KEPT];
	unsigned int exits; /* total seen */
	int last_exit_code;
	bool last_oom;
	/* Sticky once failed or succeeded. */
	nvcf__instance_phase final_phase;
	nvcf__instance_reason final_reason;
	int final_exit_code;
	char final_message[2048];
} nvcf__instance_track;

typedef struct nvcf__instance_verdict {
	nvcf__instance_phase phase;
	nvcf__instance_reason reason;
	/* Exit status of the last exit, -1 when none seen. */
	int exit_code;
	/* Exits counted within the crash loop window. */
	unsigned int recent_exits;
	/* One line and then the last log lines when there are any. */
	char message[2048];
} nvcf__instance_verdict;

/*
 * Adds @p obs to @p track under @p policy and writes the instance's
 * state into @p out. Once an instance is failed or succeeded it stays so.
 * Observations must come in time order.
 */
void nvcf__instance_observe(nvcf__instance_track *track,
			    const nvcf__instance_policy *policy,
			    const nvcf__instance_obs *obs,
			    nvcf__instance_verdict *out);

/* "starting", "running", "succeeded", "failed". */
const char *nvcf__instance_phase_name(nvcf__instance_phase phase);

/*
 * The instanceState a failure is reported with (nvcf-compute.md 4.3):
 * image-pull-issues, create-container-error, failed,
 * container-restart-loop, degraded-worker, instance-not-found; "" for
 * NVCF__REASON_NONE.
 */
const char *nvcf__instance_reason_state(nvcf__instance_reason reason);

#endif /* NVCF_RUNTIME_INSTANCE_H */
