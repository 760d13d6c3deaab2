/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the scaling policy. Most scenarios are recorded metric
 * sequences in the fixtures folder (one file a scenario), a tick a line:
 *
 *   t_ms queued in_flight ready starting last_req desired reason
 *
 * where last_req is -1 for "none seen" and reason is the reason's name.
 * Other lines change the scenario between ticks, as a PATCH would:
 *
 *   set KEY VALUE...   one parameter (see set_param below)
 *   json {...}         nvcf_scaling_params_from_json, must succeed
 *   reset              nvcf_scaling_history_reset
 *   # comment
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "nvcf/scaling.h"

#ifndef FIXTURE_DIR
#error "FIXTURE_DIR must name tests/scaling/fixtures"
#endif

/* ---- fixture replay ------------------------------------------------- */

static void set_param(nvcf_scaling_params *p, const char *file, int line,
		      const char *args)
{
	char key[32];
	double a = 0, b = 0;
	int n = sscanf(args, "%31s %lf %lf", key, &a, &b);

	ck_assert_msg(n >= 2 || (n == 1 && strcmp(key, "policy") == 0),
		      "%s:%d: bad set line", file, line);
	if (strcmp(key, "policy") == 0) {
		char name[32];

		ck_assert_int_eq(sscanf(args, "%*s %31s", name), 1);
		if (strcmp(name, "utilization") == 0)
			p->policy = NVCF_SCALING_UTILIZATION;
		else
			p->policy = NVCF_SCALING_TARGET_TRACKING;
	} else if (strcmp(key, "min") == 0) {
		p->min_instances = (uint32_t)a;
	} else if (strcmp(key, "max") == 0) {
		p->max_instances = (uint32_t)a;
	} else if (strcmp(key, "concurrency") == 0) {
		p->max_request_concurrency = (uint32_t)a;
	} else if (strcmp(key, "target") == 0) {
		p->target_utilization = a;
	} else if (strcmp(key, "down_window") == 0) {
		p->scale_down_window_ms = (int64_t)a;
	} else if (strcmp(key, "idle") == 0) {
		p->idle_to_zero_ms = (int64_t)a;
	} else if (strcmp(key, "up_thr") == 0) {
		p->scale_up_threshold = a;
	} else if (strcmp(key, "down_thr") == 0) {
		p->scale_down_threshold = a;
	} else if (strcmp(key, "up_factor") == 0) {
		p->scale_up_factor = a;
	} else if (strcmp(key, "down_factor") == 0) {
		p->scale_down_factor = a;
	} else if (strcmp(key, "up_sticky") == 0) {
		p->up_stickiness_window_ms = (int64_t)a;
		p->up_stickiness_required_ms = (int64_t)b;
	} else if (strcmp(key, "down_sticky") == 0) {
		p->down_stickiness_window_ms = (int64_t)a;
		p->down_stickiness_required_ms = (int64_t)b;
	} else if (strcmp(key, "interval") == 0) {
		p->sample_interval_ms = (int64_t)a;
	} else {
		ck_abort_msg("%s:%d: unknown parameter %s", file, line, key);
	}
}

static const char *const fixtures[] = {
	"tt_bounds.txt",     "tt_idle_wake.txt",  "tt_burst.txt",
	"tt_no_flap.txt",    "tt_patch.txt",      "util_thresholds.txt",
	"util_sticky.txt",   "util_idle.txt",     "util_patch.txt",
};
#define N_FIXTURES (sizeof(fixtures) / sizeof(fixtures[0]))

START_TEST(test_fixture)
{
	nvcf_scaling_params p = NVCF_SCALING_PARAMS_INIT;
	nvcf_scaling_history *h = NULL;
	const char *name = fixtures[_i];
	char path[512], buf[512];
	int line = 0, ticks = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", FIXTURE_DIR, name);
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	ck_assert_int_eq(nvcf_scaling_history_new(&h), NVCF_OK);
	while (fgets(buf, sizeof(buf), f) != NULL) {
		nvcf_scaling_metrics m = NVCF_SCALING_METRICS_INIT;
		nvcf_scaling_decision d;
		long long t, last;
		unsigned long long q, fl;
		unsigned int ready, starting, want;
		char reason[32];
		char *s = buf;

		line++;
		buf[strcspn(buf, "\n")] = '\0';
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '#' || *s == '\0')
			continue;
		if (strncmp(s, "set ", 4) == 0) {
			set_param(&p, name, line, s + 4);
			continue;
		}
		if (strncmp(s, "json ", 5) == 0) {
			nvcf_status st;

			st = nvcf_scaling_params_from_json(&p, s + 5);
			ck_assert_msg(st == NVCF_OK, "%s:%d: %s", name, line,
				      nvcf_error_last()->message);
			continue;
		}
		if (strcmp(s, "reset") == 0) {
			nvcf_scaling_history_reset(h);
			continue;
		}
		ck_assert_msg(sscanf(s, "%lld %llu %llu %u %u %lld %u %31s", &t,
				     &q, &fl, &ready, &starting, &last, &want,
				     reason) == 8,
			      "%s:%d: malformed tick", name, line);
		m.now_ms = t;
		m.queued = q;
		m.in_flight = fl;
		m.ready = ready;
		m.starting = starting;
		m.last_request_ms = last;
		ck_assert_msg(nvcf_scaling_evaluate(&p, &m, h, &d) == NVCF_OK,
			      "%s:%d: %s", name, line,
			      nvcf_error_last()->message);
		ck_assert_msg(d.desired == want &&
				      strcmp(nvcf_scaling_reason_name(d.reason),
					     reason) == 0,
			      "%s:%d: t=%lld want %u %s, got %u %s (%s)", name,
			      line, t, want, reason, d.desired,
			      nvcf_scaling_reason_name(d.reason), d.detail);
		ck_assert_msg(d.detail[0] != '\0', "%s:%d: empty detail", name,
			      line);
		ticks++;
	}
	fclose(f);
	nvcf_scaling_history_free(h);
	ck_assert_msg(ticks > 0, "%s has no ticks", name);
}
END_TEST

/* ---- direct checks ---------------------------------------------------- */

static nvcf_scaling_decision eval1(const nvcf_scaling_params *p,
				   nvcf_scaling_metrics *m)
{
	nvcf_scaling_history *h = NULL;
	nvcf_scaling_decision d;

	ck_assert_int_eq(nvcf_scaling_history_new(&h), NVCF_OK);
	ck_assert_int_eq(nvcf_scaling_evaluate(p, m, h, &d), NVCF_OK);
	nvcf_scaling_history_free(h);
	return d;
}

START_TEST(test_utilization_field_and_detail)
{
	nvcf_scaling_params p = NVCF_SCALING_PARAMS_INIT;
	nvcf_scaling_metrics m = NVCF_SCALING_METRICS_INIT;
	nvcf_scaling_decision d;

	p.max_instances = 4;
	p.max_request_concurrency = 2;
	m.queued = 3;
	m.in_flight = 1;
	m.ready = 1;
	m.last_request_ms = 0;
	d = eval1(&p, &m);
	/* 4 requests over 2 slots: 200% busy; 4 / (2 * 0.75) -> 3. */
	ck_assert_double_eq_tol(d.utilization, 2.0, 1e-12);
	ck_assert_uint_eq(d.desired, 3);
	ck_assert_int_eq(d.reason, NVCF_SCALING_UP_LOAD);
	ck_assert_str_eq(d.detail, "queued 3, in flight 1, 1 ready, "
				   "0 starting: need 3 at 75% of 2 slots");

	m.ready = 0;
	d = eval1(&p, &m);
	ck_assert(isinf(d.utilization));
	ck_assert_int_eq(d.reason, NVCF_SCALING_WAKE_FROM_ZERO);
}
END_TEST

START_TEST(test_target_rounding)
{
	nvcf_scaling_params p = NVCF_SCALING_PARAMS_INIT;
	nvcf_scaling_metrics m = NVCF_SCALING_METRICS_INIT;

	/* 7 / 0.7 is 10.000000000000002 in binary; that is 10 instances. */
	p.max_instances = 100;
	p.target_utilization = 0.7;
	m.queued = 7;
	m.ready = 10;
	ck_assert_uint_eq(eval1(&p, &m).desired, 10);
	m.queued = 8;
	ck_assert_uint_eq(eval1(&p, &m).desired, 12);
}
END_TEST

START_TEST(test_names)
{
	ck_assert_str_eq(nvcf_scaling_reason_name(NVCF_SCALING_STEADY),
			 "steady");
	ck_assert_str_eq(nvcf_scaling_reason_name(NVCF_SCALING_UP_LOAD),
			 "up-load");
	ck_assert_str_eq(nvcf_scaling_reason_name(NVCF_SCALING_DOWN_LOAD),
			 "down-load");
	ck_assert_str_eq(
		nvcf_scaling_reason_name(NVCF_SCALING_WAKE_FROM_ZERO),
		"wake-from-zero");
	ck_assert_str_eq(nvcf_scaling_reason_name(NVCF_SCALING_IDLE_TO_ZERO),
			 "idle-to-zero");
	ck_assert_str_eq(nvcf_scaling_reason_name(NVCF_SCALING_AT_MIN),
			 "at-min");
	ck_assert_str_eq(nvcf_scaling_reason_name(NVCF_SCALING_AT_MAX),
			 "at-max");
	ck_assert_str_eq(nvcf_scaling_reason_name(NVCF_SCALING_STABILIZING),
			 "stabilizing");
	ck_assert_str_eq(
		nvcf_scaling_reason_name(NVCF_SCALING_PENDING_START),
		"pending-start");
	ck_assert_str_eq(nvcf_scaling_reason_name((nvcf_scaling_reason_t)99),
			 "unknown");
	ck_assert_str_eq(
		nvcf_scaling_policy_name(NVCF_SCALING_TARGET_TRACKING),
		"target-tracking");
	ck_assert_str_eq(nvcf_scaling_policy_name(NVCF_SCALING_UTILIZATION),
			 "utilization");
	ck_assert_str_eq(nvcf_scaling_policy_name((nvcf_scaling_policy_t)7),
			 "unknown");
}
END_TEST

START_TEST(test_history_lifecycle)
{
	nvcf_scaling_params p = NVCF_SCALING_PARAMS_INIT;
	nvcf_scaling_metrics m = NVCF_SCALING_METRICS_INIT;
	nvcf_scaling_history *h = NULL;
	nvcf_scaling_decision d;

	ck_assert_int_eq(nvcf_scaling_history_new(NULL), NVCF_EINVAL);
	nvcf_scaling_history_free(NULL);
	nvcf_scaling_history_reset(NULL);
	ck_assert_int_eq(nvcf_scaling_history_new(&h), NVCF_OK);

	ck_assert_int_eq(nvcf_scaling_evaluate(NULL, &m, h, &d), NVCF_EINVAL);
	ck_assert_int_eq(nvcf_scaling_evaluate(&p, NULL, h, &d), NVCF_EINVAL);
	ck_assert_int_eq(nvcf_scaling_evaluate(&p, &m, NULL, &d), NVCF_EINVAL);
	ck_assert_int_eq(nvcf_scaling_evaluate(&p, &m, h, NULL), NVCF_EINVAL);

	m.version = 2;
	ck_assert_int_eq(nvcf_scaling_evaluate(&p, &m, h, &d), NVCF_EINVAL);
	ck_assert_str_eq(nvcf_error_last()->message,
			 "scaling metrics version (2) must be 1; initialize "
			 "with NVCF_SCALING_METRICS_INIT");
	m.version = NVCF_SCALING_METRICS_VERSION;

	p.max_instances = 0;
	ck_assert_int_eq(nvcf_scaling_evaluate(&p, &m, h, &d), NVCF_EINVAL);
	ck_assert_str_eq(nvcf_error_last()->message,
			 "max_instances (0) must be >= 1");
	p.max_instances = 1;

	m.now_ms = 5000;
	ck_assert_int_eq(nvcf_scaling_evaluate(&p, &m, h, &d), NVCF_OK);
	m.now_ms = 4999;
	ck_assert_int_eq(nvcf_scaling_evaluate(&p, &m, h, &d), NVCF_EINVAL);
	ck_assert_str_eq(nvcf_error_last()->message,
			 "now_ms (4999) is before the previous evaluation's "
			 "(5000); pass a monotonic clock or reset the history");
	nvcf_scaling_history_reset(h);
	ck_assert_int_eq(nvcf_scaling_evaluate(&p, &m, h, &d), NVCF_OK);

	/* Idle is counted from the first evaluation after a reset. */
	m.now_ms = 4999 + p.idle_to_zero_ms - 1;
	m.ready = 1;
	ck_assert_int_eq(nvcf_scaling_evaluate(&p, &m, h, &d), NVCF_OK);
	ck_assert_uint_eq(d.desired, 1);
	m.now_ms++;
	ck_assert_int_eq(nvcf_scaling_evaluate(&p, &m, h, &d), NVCF_OK);
	ck_assert_uint_eq(d.desired, 0);
	ck_assert_int_eq(d.reason, NVCF_SCALING_IDLE_TO_ZERO);
	nvcf_scaling_history_free(h);
}
END_TEST

/* ---- invalid parameters ----------------------------------------------- */

struct bad_param {
	void (*mutate)(nvcf_scaling_params *p);
	const char *message;
};

#define BAD(name, stmt)                                                       \
	static void name(nvcf_scaling_params *p)                              \
	{                                                                     \
		stmt;                                                         \
	}
BAD(bad_version, p->version = 2)
BAD(bad_policy, p->policy = (nvcf_scaling_policy_t)5)
BAD(bad_max, p->max_instances = 0)
BAD(bad_min, (p->min_instances = 3, p->max_instances = 2))
BAD(bad_conc0, p->max_request_concurrency = 0)
BAD(bad_conc_big, p->max_request_concurrency = 16385)
BAD(bad_target_big, p->target_utilization = 1.5)
BAD(bad_target0, p->target_utilization = 0)
BAD(bad_target_nan, p->target_utilization = NAN)
BAD(bad_window, p->scale_down_window_ms = -1)
BAD(bad_idle, p->idle_to_zero_ms = -5)
BAD(bad_down_thr, p->scale_down_threshold = -1)
BAD(bad_thr_order, p->scale_up_threshold = 30)
BAD(bad_up_factor, p->scale_up_factor = 1.0)
BAD(bad_down_factor, p->scale_down_factor = 1.2)
BAD(bad_down_factor0, p->scale_down_factor = 0)
BAD(bad_interval, p->sample_interval_ms = 0)
BAD(bad_up_window, p->up_stickiness_window_ms = -1)
BAD(bad_up_required, (p->up_stickiness_window_ms = 300000,
		      p->up_stickiness_required_ms = -1))
BAD(bad_up_required_alone, p->up_stickiness_required_ms = 60000)
BAD(bad_up_required_long, (p->up_stickiness_window_ms = 180000,
			   p->up_stickiness_required_ms = 180000))
BAD(bad_down_span, (p->down_stickiness_window_ms = 3600000,
		    p->down_stickiness_required_ms = 60000,
		    p->sample_interval_ms = 30000))

static const struct bad_param bad_params[] = {
	{bad_version, "scaling params version (2) must be 1; initialize with "
		      "NVCF_SCALING_PARAMS_INIT"},
	{bad_policy, "policy (5) must be NVCF_SCALING_TARGET_TRACKING (0) or "
		     "NVCF_SCALING_UTILIZATION (1)"},
	{bad_max, "max_instances (0) must be >= 1"},
	{bad_min, "min_instances (3) must be <= max_instances (2)"},
	{bad_conc0, "max_request_concurrency (0) must be in 1..16384"},
	{bad_conc_big, "max_request_concurrency (16385) must be in 1..16384"},
	{bad_target_big, "target_utilization (1.5) must be in (0, 1]"},
	{bad_target0, "target_utilization (0) must be in (0, 1]"},
	{bad_target_nan, "target_utilization (nan) must be in (0, 1]"},
	{bad_window, "scale_down_window_ms (-1) must be >= 0"},
	{bad_idle, "idle_to_zero_ms (-5) must be >= 0"},
	{bad_down_thr, "scale_down_threshold (-1) must be a percentage >= 0"},
	{bad_thr_order, "scale_up_threshold (30) must be > "
			"scale_down_threshold (30)"},
	{bad_up_factor, "scale_up_factor (1) must be > 1.0"},
	{bad_down_factor, "scale_down_factor (1.2) must be < 1.0"},
	{bad_down_factor0, "scale_down_factor (0) must be > 0.0"},
	{bad_interval, "sample_interval_ms (0) must be > 0"},
	{bad_up_window, "up_stickiness_window_ms (-1) must be >= 0 (0 turns "
			"stickiness off)"},
	{bad_up_required, "up_stickiness_required_ms (-1) must be >= 0"},
	{bad_up_required_alone, "up_stickiness_required_ms (60000) needs "
				"up_stickiness_window_ms > 0; set both or "
				"neither"},
	{bad_up_required_long, "up_stickiness_required_ms (180000) must be < "
			       "up_stickiness_window_ms (180000)"},
	{bad_down_span, "down_stickiness_window_ms (3600000) spans 120 samples "
			"of sample_interval_ms (30000), but a history keeps "
			"60; shorten the window or raise sample_interval_ms"},
};
#define N_BAD (sizeof(bad_params) / sizeof(bad_params[0]))

START_TEST(test_invalid_param)
{
	nvcf_scaling_params p = NVCF_SCALING_PARAMS_INIT;
	nvcf_scaling_metrics m = NVCF_SCALING_METRICS_INIT;
	nvcf_scaling_history *h = NULL;
	nvcf_scaling_decision d;

	ck_assert_int_eq(nvcf_scaling_params_validate(&p), NVCF_OK);
	bad_params[_i].mutate(&p);
	ck_assert_int_eq(nvcf_scaling_params_validate(&p), NVCF_EINVAL);
	ck_assert_str_eq(nvcf_error_last()->message, bad_params[_i].message);
	/* evaluate refuses the same parameters with the same words */
	ck_assert_int_eq(nvcf_scaling_history_new(&h), NVCF_OK);
	nvcf_error_clear();
	ck_assert_int_eq(nvcf_scaling_evaluate(&p, &m, h, &d), NVCF_EINVAL);
	ck_assert_str_eq(nvcf_error_last()->message, bad_params[_i].message);
	nvcf_scaling_history_free(h);
}
END_TEST

START_TEST(test_validate_null)
{
	ck_assert_int_eq(nvcf_scaling_params_validate(NULL), NVCF_EINVAL);
	ck_assert_str_eq(nvcf_error_last()->message,
			 "scaling params are NULL");
}
END_TEST

/* ---- from_json -------------------------------------------------------- */

START_TEST(test_json_nvcf)
{
	nvcf_scaling_params p = NVCF_SCALING_PARAMS_INIT;

	p.min_instances = 1;
	p.max_instances = 9;
	ck_assert_int_eq(
		nvcf_scaling_params_from_json(
			&p, "{\"scaleUpDetails\": {\"metric\": \"gpu\", "
			    "\"factor\": 1.5, \"threshold\": 80, "
			    "\"stickiness\": {\"size\": \"PT5M\", "
			    "\"threshold\": \"PT3M\"}}, "
			    "\"scaleDownDetails\": {\"factor\": 0.5, "
			    "\"threshold\": 20, \"stickiness\": {\"size\": "
			    "\"PT10M\", \"threshold\": \"PT9M\"}}}"),
		NVCF_OK);
	ck_assert_int_eq(p.policy, NVCF_SCALING_UTILIZATION);
	ck_assert_double_eq(p.scale_up_factor, 1.5);
	ck_assert_double_eq(p.scale_up_threshold, 80);
	ck_assert_double_eq(p.scale_down_factor, 0.5);
	ck_assert_double_eq(p.scale_down_threshold, 20);
	ck_assert_int_eq(p.up_stickiness_window_ms, 300000);
	ck_assert_int_eq(p.up_stickiness_required_ms, 180000);
	ck_assert_int_eq(p.down_stickiness_window_ms, 600000);
	ck_assert_int_eq(p.down_stickiness_required_ms, 540000);
	/* fields outside the object are left alone */
	ck_assert_uint_eq(p.min_instances, 1);
	ck_assert_uint_eq(p.max_instances, 9);
	ck_assert_double_eq(p.target_utilization, 0.75);

	/* one side only keeps the other side's values */
	ck_assert_int_eq(nvcf_scaling_params_from_json(
				 &p, "{\"scaleDownDetails\": {\"factor\": "
				     "0.9}, \"scaleUpDetails\": null}"),
			 NVCF_OK);
	ck_assert_double_eq(p.scale_up_factor, 1.5);
	ck_assert_double_eq(p.scale_down_factor, 0.9);
}
END_TEST

START_TEST(test_json_target_tracking)
{
	nvcf_scaling_params p = NVCF_SCALING_PARAMS_INIT;

	p.policy = NVCF_SCALING_UTILIZATION;
	ck_assert_int_eq(nvcf_scaling_params_from_json(
				 &p, "{\"policy\": \"TARGET_TRACKING\", "
				     "\"targetUtilization\": 0.6, "
				     "\"scaleDownWindow\": \"PT1M30S\", "
				     "\"idleToZero\": \"PT10M\"}"),
			 NVCF_OK);
	ck_assert_int_eq(p.policy, NVCF_SCALING_TARGET_TRACKING);
	ck_assert_double_eq(p.target_utilization, 0.6);
	ck_assert_int_eq(p.scale_down_window_ms, 90000);
	ck_assert_int_eq(p.idle_to_zero_ms, 600000);

	ck_assert_int_eq(nvcf_scaling_params_from_json(&p, "{}"), NVCF_OK);
	ck_assert_int_eq(p.policy, NVCF_SCALING_UTILIZATION);
	ck_assert_int_eq(nvcf_scaling_params_from_json(
				 &p, "{\"policy\": \"UTILIZATION\"}"),
			 NVCF_OK);
	ck_assert_int_eq(p.policy, NVCF_SCALING_UTILIZATION);
}
END_TEST

static const struct {
	const char *json;
	const char *message;
} bad_json[] = {
	{"{\"scaleUpDetails\": {\"factr\": 1.2}}",
	 "autoscalingConfiguration.scaleUpDetails.factr is not a known key; "
	 "expected metric, factor, threshold or stickiness"},
	{"{\"scaleupdetails\": {}}",
	 "autoscalingConfiguration.scaleupdetails is not a known key; "
	 "expected scaleUpDetails, scaleDownDetails, policy, "
	 "targetUtilization, scaleDownWindow or idleToZero"},
	{"{\"scaleUpDetails\": {\"factor\": 1.2, \"factor\": 1.3}}",
	 "autoscalingConfiguration.scaleUpDetails.factor appears twice; "
	 "keep one"},
	{"{\"scaleUpDetails\": {\"factor\": 0.9}}",
	 "autoscalingConfiguration.scaleUpDetails.factor must be > 1.0, "
	 "got 0.9"},
	{"{\"scaleUpDetails\": {\"factor\": 1}}",
	 "autoscalingConfiguration.scaleUpDetails.factor must be > 1.0, "
	 "got 1"},
	{"{\"scaleDownDetails\": {\"factor\": 1.2}}",
	 "autoscalingConfiguration.scaleDownDetails.factor must be > 0 and "
	 "< 1.0, got 1.2"},
	{"{\"scaleDownDetails\": {\"factor\": 0}}",
	 "autoscalingConfiguration.scaleDownDetails.factor must be > 0 and "
	 "< 1.0, got 0"},
	{"{\"scaleUpDetails\": {\"factor\": \"1.5\"}}",
	 "autoscalingConfiguration.scaleUpDetails.factor must be a number, "
	 "got a string"},
	{"{\"scaleUpDetails\": {\"threshold\": \"70\"}}",
	 "autoscalingConfiguration.scaleUpDetails.threshold must be an "
	 "integer percentage, got a string"},
	{"{\"scaleUpDetails\": {\"threshold\": 101}}",
	 "autoscalingConfiguration.scaleUpDetails.threshold must be an "
	 "integer from 0 to 100, got 101"},
	{"{\"scaleDownDetails\": {\"threshold\": 12.5}}",
	 "autoscalingConfiguration.scaleDownDetails.threshold must be an "
	 "integer from 0 to 100, got 12.5"},
	{"{\"scaleUpDetails\": {\"metric\": 5}}",
	 "autoscalingConfiguration.scaleUpDetails.metric must be a string, "
	 "got a number"},
	{"{\"scaleUpDetails\": [1]}",
	 "autoscalingConfiguration.scaleUpDetails must be an object, got an "
	 "array"},
	{"{\"scaleUpDetails\": {\"stickiness\": {\"size\": \"PT2H\", "
	 "\"threshold\": \"PT1M\"}}}",
	 "autoscalingConfiguration.scaleUpDetails.stickiness.size must be at "
	 "most PT1H, got \"PT2H\""},
	{"{\"scaleUpDetails\": {\"stickiness\": {\"size\": \"PT3M\", "
	 "\"threshold\": \"PT3M\"}}}",
	 "autoscalingConfiguration.scaleUpDetails.stickiness.threshold "
	 "(\"PT3M\") must be shorter than "
	 "autoscalingConfiguration.scaleUpDetails.stickiness.size "
	 "(\"PT3M\")"},
	{"{\"scaleDownDetails\": {\"stickiness\": {\"size\": \"PT3M\", "
	 "\"threshold\": \"PT5M\"}}}",
	 "autoscalingConfiguration.scaleDownDetails.stickiness.threshold "
	 "(\"PT5M\") must be shorter than "
	 "autoscalingConfiguration.scaleDownDetails.stickiness.size "
	 "(\"PT3M\")"},
	{"{\"scaleUpDetails\": {\"stickiness\": {\"size\": \"PT3M\"}}}",
	 "autoscalingConfiguration.scaleUpDetails.stickiness needs both size "
	 "and threshold, as durations such as \"PT5M\""},
	{"{\"scaleUpDetails\": {\"stickiness\": {\"size\": \"3m\", "
	 "\"threshold\": \"PT1M\"}}}",
	 "autoscalingConfiguration.scaleUpDetails.stickiness.size must be an "
	 "ISO-8601 duration such as \"PT5M\", got \"3m\""},
	{"{\"scaleUpDetails\": {\"stickiness\": {\"size\": 300, "
	 "\"threshold\": \"PT1M\"}}}",
	 "autoscalingConfiguration.scaleUpDetails.stickiness.size must be an "
	 "ISO-8601 duration string, got a number"},
	{"{\"scaleUpDetails\": {\"threshold\": 20}, "
	 "\"scaleDownDetails\": {\"threshold\": 40}}",
	 "autoscalingConfiguration.scaleUpDetails.threshold (20) must be "
	 "greater than scaleDownDetails.threshold (40)"},
	{"{\"policy\": \"HPA\"}",
	 "autoscalingConfiguration.policy must be \"TARGET_TRACKING\" or "
	 "\"UTILIZATION\", got \"HPA\""},
	{"{\"policy\": 1}",
	 "autoscalingConfiguration.policy must be a string, got a number"},
	{"{\"targetUtilization\": 1.5}",
	 "autoscalingConfiguration.targetUtilization must be in (0, 1], "
	 "got 1.5"},
	{"{\"targetUtilization\": true}",
	 "autoscalingConfiguration.targetUtilization must be a number, got "
	 "a boolean"},
	{"{\"idleToZero\": \"5m\"}",
	 "autoscalingConfiguration.idleToZero must be an ISO-8601 duration "
	 "such as \"PT5M\", got \"5m\""},
	{"[1, 2]",
	 "autoscalingConfiguration must be an object, got an array"},
	{"{\"scaleUpDetails\": {\"factor\": 1.2}",
	 "autoscalingConfiguration is not valid JSON (error at byte 34)"},
	{"{} x",
	 "autoscalingConfiguration is not valid JSON (error at byte 3)"},
};
#define N_BAD_JSON (sizeof(bad_json) / sizeof(bad_json[0]))

START_TEST(test_json_invalid)
{
	nvcf_scaling_params p = NVCF_SCALING_PARAMS_INIT;
	nvcf_scaling_params before;

	memcpy(&before, &p, sizeof(p));
	ck_assert_int_eq(nvcf_scaling_params_from_json(&p, bad_json[_i].json),
			 NVCF_EINVAL);
	ck_assert_str_eq(nvcf_error_last()->message, bad_json[_i].message);
	ck_assert_msg(memcmp(&p, &before, sizeof(p)) == 0,
		      "a rejected configuration changed the parameters");
}
END_TEST

START_TEST(test_json_args)
{
	nvcf_scaling_params p = NVCF_SCALING_PARAMS_INIT;

	ck_assert_int_eq(nvcf_scaling_params_from_json(NULL, "{}"),
			 NVCF_EINVAL);
	ck_assert_int_eq(nvcf_scaling_params_from_json(&p, NULL), NVCF_EINVAL);
	/* The stickiness span check runs on the merged parameters. */
	p.sample_interval_ms = 30000;
	ck_assert_int_eq(
		nvcf_scaling_params_from_json(
			&p, "{\"scaleUpDetails\": {\"stickiness\": {\"size\": "
			    "\"PT1H\", \"threshold\": \"PT5M\"}}}"),
		NVCF_EINVAL);
	ck_assert_str_eq(nvcf_error_last()->message,
			 "autoscalingConfiguration: up_stickiness_window_ms "
			 "(3600000) spans 120 samples of sample_interval_ms "
			 "(30000), but a history keeps 60; shorten the window "
			 "or raise sample_interval_ms");
}
END_TEST

/* ---- an hour of ticks ------------------------------------------------- */

START_TEST(test_hour_replay)
{
	nvcf_scaling_params p = NVCF_SCALING_PARAMS_INIT;
	nvcf_scaling_metrics m = NVCF_SCALING_METRICS_INIT;
	nvcf_scaling_history *h = NULL;
	nvcf_scaling_decision d;
	uint32_t starting = 0;
	unsigned int changes = 0, prev = 0;

	p.policy = _i == 0 ? NVCF_SCALING_TARGET_TRACKING
			   : NVCF_SCALING_UTILIZATION;
	p.max_instances = 20;
	p.max_request_concurrency = 4;
	ck_assert_int_eq(nvcf_scaling_history_new(&h), NVCF_OK);
	for (int64_t s = 0; s < 3600; s++) {
		/* A daily shape squeezed into an hour, with quiet gaps. */
		double load = 30.0 * (1.0 + sin((double)s / 300.0));
		bool quiet = (s / 600) % 3 == 2;

		m.now_ms = s * 1000;
		m.in_flight = quiet ? 0 : (uint64_t)(load / 2);
		m.queued = quiet ? 0 : (uint64_t)(load / 2);
		if (!quiet)
			m.last_request_ms = m.now_ms;
		ck_assert_int_eq(nvcf_scaling_evaluate(&p, &m, h, &d), NVCF_OK);
		ck_assert_uint_le(d.desired, p.max_instances);
		if (m.queued + m.in_flight > 0)
			ck_assert_uint_ge(d.desired, 1);
		/* The caller follows: new instances become ready next tick. */
		m.ready = m.ready + starting;
		if (d.desired > m.ready) {
			starting = d.desired - m.ready;
		} else {
			starting = 0;
			m.ready = d.desired;
		}
		m.starting = starting;
		if (d.desired != prev)
			changes++;
		prev = d.desired;
	}
	ck_assert_uint_gt(changes, 2);
	nvcf_scaling_history_free(h);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("scaling");
	TCase *tc = tcase_create("scaling");
	SRunner *sr;
	int failed;

	tcase_add_loop_test(tc, test_fixture, 0, (int)N_FIXTURES);
	tcase_add_test(tc, test_utilization_field_and_detail);
	tcase_add_test(tc, test_target_rounding);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_history_lifecycle);
	tcase_add_loop_test(tc, test_invalid_param, 0, (int)N_BAD);
	tcase_add_test(tc, test_validate_null);
	tcase_add_test(tc, test_json_nvcf);
	tcase_add_test(tc, test_json_target_tracking);
	tcase_add_loop_test(tc, test_json_invalid, 0, (int)N_BAD_JSON);
	tcase_add_test(tc, test_json_args);
	tcase_add_loop_test(tc, test_hour_replay, 0, 2);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
