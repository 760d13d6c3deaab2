/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Scaling policy: metrics in, desired instances out. Everything here is
 * arithmetic on the caller's numbers and the version's history. The only
 * allocation is the history itself, so an autoscaler can evaluate
 * thousands of versions per tick without touching the allocator.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "nvcf/scaling.h"

#define SUB "scaling"

/*
 * Needs are kept in buckets so that a window of any length fits a fixed
 * ring: each bucket spans 1/NEEDS_PER_WINDOW of the window and keeps the
 * highest need seen in it. A bucket that straddles the window's start
 * still counts, so a need can be held up to one bucket (1/32 of the
 * window) longer than the window. The error keeps instances longer; it
 * never drops them early.
 */
#define NEEDS_PER_WINDOW 32
#define NEEDS_MAX 64

/* NVCF averages ten minutes of one-minute samples before going to zero. */
#define AVERAGE_INTERVALS 10

/*
 * Decimal targets (0.7, 0.9) do not divide exactly in binary, so a
 * quotient this close above an integer counts as that integer rather than
 * as a need for one more instance.
 */
#define NEED_SLACK 1e-9

struct need_bucket {
	int64_t first_ms;
	int64_t last_ms;
	uint32_t need;
};

struct sample {
	int64_t t_ms;
	float pct;
	uint64_t base;	/* instances the sample was measured on */
};

struct nvcf_scaling_history {
	bool started;
	/* First evaluation: where idleness starts when no request was seen. */
	int64_t first_ms;
	int64_t last_now_ms;

	struct need_bucket needs[NEEDS_MAX];
	unsigned int needs_head;
	unsigned int needs_len;

	struct sample samples[NVCF_SCALING_SAMPLES_MAX];
	unsigned int samples_head;
	unsigned int samples_len;

	/* Utilization policy: the decision of the newest sample, held. */
	bool held;
	uint32_t held_desired;
	bool held_sticky;	/* a breach waits for its stickiness */

	/* The parameters of the last evaluation, to notice a PATCH. */
	bool have_params;
	nvcf_scaling_params params;
};

/* ---- names ------------------------------------------------------------ */

const char *nvcf_scaling_reason_name(nvcf_scaling_reason_t r)
{
	switch (r) {
	case NVCF_SCALING_STEADY:
		return "steady";
	case NVCF_SCALING_UP_LOAD:
		return "up-load";
	case NVCF_SCALING_DOWN_LOAD:
		return "down-load";
	case NVCF_SCALING_WAKE_FROM_ZERO:
		return "wake-from-zero";
	case NVCF_SCALING_IDLE_TO_ZERO:
		return "idle-to-zero";
	case NVCF_SCALING_AT_MIN:
		return "at-min";
	case NVCF_SCALING_AT_MAX:
		return "at-max";
	case NVCF_SCALING_STABILIZING:
		return "stabilizing";
	case NVCF_SCALING_PENDING_START:
		return "pending-start";
	}
	return "unknown";
}

const char *nvcf_scaling_policy_name(nvcf_scaling_policy_t p)
{
	switch (p) {
	case NVCF_SCALING_TARGET_TRACKING:
		return "target-tracking";
	case NVCF_SCALING_UTILIZATION:
		return "utilization";
	}
	return "unknown";
}

/* ---- history ---------------------------------------------------------- */

nvcf_status nvcf_scaling_history_new(nvcf_scaling_history **out)
{
	nvcf_scaling_history *h;

	if (out == NULL)
		return nvcf__error_set(NVCF_EINVAL,
				       "nvcf_scaling_history_new: out is NULL");
	*out = NULL;
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return nvcf__error_oom();
	*out = h;
	return NVCF_OK;
}

void nvcf_scaling_history_free(nvcf_scaling_history *h)
{
	free(h);
}

void nvcf_scaling_history_reset(nvcf_scaling_history *h)
{
	if (h != NULL)
		memset(h, 0, sizeof(*h));
}

/* ---- validation ------------------------------------------------------- */

static nvcf_status check_stickiness(const char *name, int64_t window_ms,
				    int64_t required_ms, int64_t interval_ms)
{
	if (window_ms < 0)
		return nvcf__error_set(NVCF_EINVAL,
				       "%s_stickiness_window_ms (%lld) must be "
				       ">= 0 (0 turns stickiness off)",
				       name, (long long)window_ms);
	if (required_ms < 0)
		return nvcf__error_set(NVCF_EINVAL,
				       "%s_stickiness_required_ms (%lld) must "
				       "be >= 0",
				       name, (long long)required_ms);
	if (window_ms == 0) {
		if (required_ms != 0)
			return nvcf__error_set(
				NVCF_EINVAL,
				"%s_stickiness_required_ms (%lld) needs "
				"%s_stickiness_window_ms > 0; set both or "
				"neither",
				name, (long long)required_ms, name);
		return NVCF_OK;
	}
	if (required_ms >= window_ms)
		return nvcf__error_set(NVCF_EINVAL,
				       "%s_stickiness_required_ms (%lld) must "
				       "be < %s_stickiness_window_ms (%lld)",
				       name, (long long)required_ms, name,
				       (long long)window_ms);
	if (window_ms / interval_ms > NVCF_SCALING_SAMPLES_MAX)
		return nvcf__error_set(
			NVCF_EINVAL,
			"%s_stickiness_window_ms (%lld) spans %lld samples of "
			"sample_interval_ms (%lld), but a history keeps %d; "
			"shorten the window or raise sample_interval_ms",
			name, (long long)window_ms,
			(long long)(window_ms / interval_ms),
			(long long)interval_ms, NVCF_SCALING_SAMPLES_MAX);
	return NVCF_OK;
}

nvcf_status nvcf_scaling_params_validate(const nvcf_scaling_params *p)
{
	nvcf_status st;

	if (p == NULL)
		return nvcf__error_set(NVCF_EINVAL, "scaling params are NULL");
	if (p->version != NVCF_SCALING_PARAMS_VERSION)
		return nvcf__error_set(
			NVCF_EINVAL,
			"scaling params version (%u) must be %d; initialize "
			"with NVCF_SCALING_PARAMS_INIT",
			p->version, NVCF_SCALING_PARAMS_VERSION);
	if (p->policy != NVCF_SCALING_TARGET_TRACKING &&
	    p->policy != NVCF_SCALING_UTILIZATION)
		return nvcf__error_set(NVCF_EINVAL,
				       "policy (%d) must be "
				       "NVCF_SCALING_TARGET_TRACKING (0) or "
				       "NVCF_SCALING_UTILIZATION (1)",
				       (int)p->policy);
	if (p->max_instances < 1)
		return nvcf__error_set(NVCF_EINVAL,
				       "max_instances (%u) must be >= 1",
				       p->max_instances);
	if (p->min_instances > p->max_instances)
		return nvcf__error_set(NVCF_EINVAL,
				       "min_instances (%u) must be <= "
				       "max_instances (%u)",
				       p->min_instances, p->max_instances);
	if (p->max_request_concurrency < 1 ||
	    p->max_request_concurrency > NVCF_SCALING_CONCURRENCY_MAX)
		return nvcf__error_set(NVCF_EINVAL,
				       "max_request_concurrency (%u) must be "
				       "in 1..%d",
				       p->max_request_concurrency,
				       NVCF_SCALING_CONCURRENCY_MAX);
	if (!(p->target_utilization > 0.0 && p->target_utilization <= 1.0))
		return nvcf__error_set(NVCF_EINVAL,
				       "target_utilization (%g) must be in "
				       "(0, 1]",
				       p->target_utilization);
	if (p->scale_down_window_ms < 0)
		return nvcf__error_set(NVCF_EINVAL,
				       "scale_down_window_ms (%lld) must be "
				       ">= 0",
				       (long long)p->scale_down_window_ms);
	if (p->idle_to_zero_ms < 0)
		return nvcf__error_set(NVCF_EINVAL,
				       "idle_to_zero_ms (%lld) must be >= 0",
				       (long long)p->idle_to_zero_ms);
	if (!(p->scale_down_threshold >= 0.0 &&
	      isfinite(p->scale_down_threshold)))
		return nvcf__error_set(NVCF_EINVAL,
				       "scale_down_threshold (%g) must be a "
				       "percentage >= 0",
				       p->scale_down_threshold);
	if (!isfinite(p->scale_up_threshold) ||
	    !(p->scale_up_threshold > p->scale_down_threshold))
		return nvcf__error_set(NVCF_EINVAL,
				       "scale_up_threshold (%g) must be > "
				       "scale_down_threshold (%g)",
				       p->scale_up_threshold,
				       p->scale_down_threshold);
	if (!(p->scale_up_factor > 1.0 && isfinite(p->scale_up_factor)))
		return nvcf__error_set(NVCF_EINVAL,
				       "scale_up_factor (%g) must be > 1.0",
				       p->scale_up_factor);
	if (!(p->scale_down_factor < 1.0))
		return nvcf__error_set(NVCF_EINVAL,
				       "scale_down_factor (%g) must be < 1.0",
				       p->scale_down_factor);
	if (!(p->scale_down_factor > 0.0))
		return nvcf__error_set(NVCF_EINVAL,
				       "scale_down_factor (%g) must be > 0.0",
				       p->scale_down_factor);
	if (p->sample_interval_ms <= 0)
		return nvcf__error_set(NVCF_EINVAL,
				       "sample_interval_ms (%lld) must be > 0",
				       (long long)p->sample_interval_ms);
	st = check_stickiness("up", p->up_stickiness_window_ms,
			      p->up_stickiness_required_ms,
			      p->sample_interval_ms);
	if (st != NVCF_OK)
		return st;
	return check_stickiness("down", p->down_stickiness_window_ms,
				p->down_stickiness_required_ms,
				p->sample_interval_ms);
}

/* ---- helpers ---------------------------------------------------------- */

static uint32_t to_u32(double v)
{
	if (!(v > 0.0))
		return 0;
	if (v >= 4294967295.0)
		return UINT32_MAX;
	return (uint32_t)v;
}

static bool params_equal(const nvcf_scaling_params *a,
			 const nvcf_scaling_params *b)
{
	/* Field by field: padding of a caller's struct may hold anything. */
	return a->policy == b->policy &&
	       a->min_instances == b->min_instances &&
	       a->max_instances == b->max_instances &&
	       a->max_request_concurrency == b->max_request_concurrency &&
	       a->target_utilization == b->target_utilization &&
	       a->scale_down_window_ms == b->scale_down_window_ms &&
	       a->idle_to_zero_ms == b->idle_to_zero_ms &&
	       a->scale_up_threshold == b->scale_up_threshold &&
	       a->scale_down_threshold == b->scale_down_threshold &&
	       a->scale_up_factor == b->scale_up_factor &&
	       a->scale_down_factor == b->scale_down_factor &&
	       a->up_stickiness_window_ms == b->up_stickiness_window_ms &&
	       a->up_stickiness_required_ms == b->up_stickiness_required_ms &&
	       a->down_stickiness_window_ms == b->down_stickiness_window_ms &&
	       a->down_stickiness_required_ms ==
		       b->down_stickiness_required_ms &&
	       a->sample_interval_ms == b->sample_interval_ms;
}

/* Appends to the decision's detail line; a full line is cut, not an error. */
static void detail_add(nvcf_scaling_decision *out, const char *fmt, ...)
	NVCF_PRINTF(2, 3);

static void detail_add(nvcf_scaling_decision *out, const char *fmt, ...)
{
	size_t used = strlen(out->detail);
	va_list ap;

	if (used + 1 >= sizeof(out->detail))
		return;
	va_start(ap, fmt);
	vsnprintf(out->detail + used, sizeof(out->detail) - used, fmt, ap);
	va_end(ap);
}

/*
 * Writes a percentage with at most one decimal. Printing doubles with
 * %g costs more than the whole decision, and the detail line is built on
 * every evaluation.
 */
static const char *pct_text(char buf[32], double v)
{
	long long tenths;

	if (!(v < 1e15))
		return "inf";
	tenths = llround(v * 10.0);
	if (tenths % 10 == 0)
		snprintf(buf, 32, "%lld", tenths / 10);
	else
		snprintf(buf, 32, "%lld.%lld", tenths / 10, tenths % 10);
	return buf;
}

static nvcf_scaling_reason_t compare_reason(uint64_t desired,
					    uint64_t current)
{
	if (desired > current)
		return current == 0 ? NVCF_SCALING_WAKE_FROM_ZERO
				    : NVCF_SCALING_UP_LOAD;
	if (desired < current)
		return NVCF_SCALING_DOWN_LOAD;
	return NVCF_SCALING_STEADY;
}

/* ---- target tracking -------------------------------------------------- */

static void needs_record(nvcf_scaling_history *h, int64_t now_ms,
			 int64_t window_ms, uint32_t need)
{
	int64_t width = window_ms / NEEDS_PER_WINDOW;
	struct need_bucket *b;

	if (width < 1)
		width = 1;
	if (h->needs_len > 0) {
		b = &h->needs[(h->needs_head + h->needs_len - 1) % NEEDS_MAX];
		if (now_ms - b->first_ms < width) {
			if (need > b->need)
				b->need = need;
			b->last_ms = now_ms;
			return;
		}
	}
	if (h->needs_len == NEEDS_MAX) {
		h->needs_head = (h->needs_head + 1) % NEEDS_MAX;
		h->needs_len--;
	}
	b = &h->needs[(h->needs_head + h->needs_len) % NEEDS_MAX];
	b->first_ms = now_ms;
	b->last_ms = now_ms;
	b->need = need;
	h->needs_len++;
}

static uint32_t needs_max(const nvcf_scaling_history *h, int64_t now_ms,
			  int64_t window_ms)
{
	uint32_t best = 0;
	unsigned int i;

	for (i = 0; i < h->needs_len; i++) {
		const struct need_bucket *b =
			&h->needs[(h->needs_head + i) % NEEDS_MAX];

		if (b->last_ms >= now_ms - window_ms && b->need > best)
			best = b->need;
	}
	return best;
}

static uint64_t target_tracking(const nvcf_scaling_params *p,
				const nvcf_scaling_metrics *m,
				nvcf_scaling_history *h, uint64_t current,
				uint64_t work, bool idle,
				nvcf_scaling_decision *out)
{
	double slots = (double)p->max_request_concurrency *
		       p->target_utilization;
	uint32_t need, hold;
	uint64_t desired;
	char target[32];

	if (work > 0) {
		double q = (double)work / slots;

		need = to_u32(ceil(q - q * NEED_SLACK));
		if (need < 1)
			need = 1;
	} else if (p->min_instances == 0 && idle) {
		need = 0;
	} else {
		/* Keep one instance warm until the idle window has passed. */
		need = current > 0 ? 1 : 0;
	}
	needs_record(h, m->now_ms, p->scale_down_window_ms, need);
	detail_add(out,
		   "queued %llu, in flight %llu, %u ready, %u starting: "
		   "need %u at %s%% of %u slots",
		   (unsigned long long)m->queued,
		   (unsigned long long)m->in_flight, m->ready, m->starting,
		   need, pct_text(target, p->target_utilization * 100.0),
		   p->max_request_concurrency);

	if (work == 0 && p->min_instances == 0 && idle) {
		/* Being idle for the whole window is itself stable. */
		out->reason = NVCF_SCALING_IDLE_TO_ZERO;
		detail_add(out, "; idle for %lld ms: to zero",
			   (long long)p->idle_to_zero_ms);
		return 0;
	}
	if (need >= current) {
		out->reason = compare_reason(need, current);
		return need;
	}
	hold = needs_max(h, m->now_ms, p->scale_down_window_ms);
	desired = hold < current ? hold : current;
	if (desired < need)
		desired = need;
	if (desired < current) {
		out->reason = NVCF_SCALING_DOWN_LOAD;
	} else {
		out->reason = NVCF_SCALING_STABILIZING;
		detail_add(out, "; holding %u (peak need %u in %lld ms)",
			   (unsigned int)desired, hold,
			   (long long)p->scale_down_window_ms);
	}
	return desired;
}

/* ---- utilization policy ----------------------------------------------- */

static const struct sample *sample_newest(const nvcf_scaling_history *h,
					  unsigned int age)
{
	unsigned int i = h->samples_head + h->samples_len - 1 - age;

	return &h->samples[i % NVCF_SCALING_SAMPLES_MAX];
}

static void sample_push(nvcf_scaling_history *h, int64_t t_ms, float pct,
			uint64_t base)
{
	struct sample *s;

	if (h->samples_len == NVCF_SCALING_SAMPLES_MAX) {
		h->samples_head =
			(h->samples_head + 1) % NVCF_SCALING_SAMPLES_MAX;
		h->samples_len--;
	}
	s = &h->samples[(h->samples_head + h->samples_len) %
			NVCF_SCALING_SAMPLES_MAX];
	s->t_ms = t_ms;
	s->pct = pct;
	s->base = base;
	h->samples_len++;
}

/*
 * k of W: among the newest W samples (fewer when the history is short),
 * at least R breach. Without stickiness W = R = 1, the newest decides.
 * The durations become sample counts by truncating division, as NVCF
 * turns them into whole minutes.
 */
static bool breached(const nvcf_scaling_history *h, int64_t window_ms,
		     int64_t required_ms, int64_t interval_ms, bool up,
		     float threshold)
{
	int64_t w = window_ms / interval_ms, r = required_ms / interval_ms;
	unsigned int i, n, count = 0;

	if (w <= 0 || r <= 0)
		w = r = 1;
	n = h->samples_len < w ? h->samples_len : (unsigned int)w;
	for (i = 0; i < n; i++) {
		float x = sample_newest(h, i)->pct;

		if (up ? x > threshold : x < threshold)
			count++;
	}
	return count >= r;
}

static double samples_mean(const nvcf_scaling_history *h, int64_t now_ms,
			   int64_t interval_ms, unsigned int *n_out)
{
	int64_t since = now_ms - AVERAGE_INTERVALS * interval_ms;
	double sum = 0;
	unsigned int i, n = 0;

	for (i = 0; i < h->samples_len; i++) {
		const struct sample *s = sample_newest(h, i);

		if (s->t_ms < since)
			break;
		sum += s->pct;
		n++;
	}
	*n_out = n;
	return n > 0 ? sum / n : 0.0;
}

/*
 * NVCF's get_desired_instances on the samples, in single precision like
 * the original so that 5 x 1.2 stays 6 rather than becoming 7. The step
 * starts from the count the newest sample was measured on, so deciding
 * again after a PATCH does not step twice on one sample.
 */
static void utilization_decide(const nvcf_scaling_params *p,
			       nvcf_scaling_history *h)
{
	uint64_t current = sample_newest(h, 0)->base;
	float base = current > 0 ? (float)current : 1.0f;
	float up_thr = (float)p->scale_up_threshold;
	float down_thr = (float)p->scale_down_threshold;
	float newest = sample_newest(h, 0)->pct;
	bool up, down;

	up = breached(h, p->up_stickiness_window_ms,
		      p->up_stickiness_required_ms, p->sample_interval_ms,
		      true, up_thr);
	down = breached(h, p->down_stickiness_window_ms,
			p->down_stickiness_required_ms, p->sample_interval_ms,
			false, down_thr);
	h->held_sticky = false;
	if (up) {
		float u = ceilf(base * (float)p->scale_up_factor);

		h->held_desired = to_u32(u);
	} else if (down) {
		float d = floorf(base * (float)p->scale_down_factor);

		h->held_desired = d < 1.0f ? 1 : to_u32(d);
	} else {
		h->held_desired = to_u32(base);
		h->held_sticky = newest > up_thr || newest < down_thr;
	}
	h->held = true;
}

static uint64_t utilization(const nvcf_scaling_params *p,
			    const nvcf_scaling_metrics *m,
			    nvcf_scaling_history *h, uint64_t current,
			    uint64_t work, bool idle, bool changed,
			    nvcf_scaling_decision *out)
{
	char newest[32], avg[32], up[32], down[32];
	uint64_t desired;
	unsigned int n;
	double mean;

	if (current == 0) {
		/* No instance, no utilization series: start afresh. */
		h->samples_len = 0;
		h->held = false;
	}
	if (m->ready > 0 &&
	    (h->samples_len == 0 ||
	     m->now_ms - sample_newest(h, 0)->t_ms >= p->sample_interval_ms)) {
		double cap = (double)current * p->max_request_concurrency;

		sample_push(h, m->now_ms, (float)(100.0 * (double)work / cap),
			    current);
		changed = true;
	}
	if (changed && h->samples_len > 0)
		utilization_decide(p, h);
	mean = samples_mean(h, m->now_ms, p->sample_interval_ms, &n);

	if (m->ready == 0 && m->starting > 0) {
		out->reason = NVCF_SCALING_PENDING_START;
		desired = current;
		detail_add(out, "%u starting, none ready: holding %u",
			   m->starting, m->starting);
	} else if (current == 0) {
		out->reason = NVCF_SCALING_STEADY;
		desired = 0;
		detail_add(out, "no instance");
	} else if (h->held) {
		desired = h->held_desired;
		out->reason = compare_reason(desired, current);
		if (desired == current && h->held_sticky)
			out->reason = NVCF_SCALING_STABILIZING;
		detail_add(out,
			   "sample %s%% (mean %s%% of %u) vs %s/%s%%: "
			   "%llu instances -> %llu",
			   pct_text(newest, sample_newest(h, 0)->pct),
			   pct_text(avg, mean), n,
			   pct_text(up, p->scale_up_threshold),
			   pct_text(down, p->scale_down_threshold),
			   (unsigned long long)current,
			   (unsigned long long)desired);
	} else {
		out->reason = NVCF_SCALING_STEADY;
		desired = current;
		detail_add(out, "no utilization sample yet");
	}

	if (work == 0 && p->min_instances == 0 && idle &&
	    (float)mean < (float)p->scale_down_threshold) {
		out->reason = NVCF_SCALING_IDLE_TO_ZERO;
		desired = 0;
		detail_add(out, "; idle for %lld ms, mean %s%%: to zero",
			   (long long)p->idle_to_zero_ms, pct_text(avg, mean));
	}
	return desired;
}

/* ---- evaluate --------------------------------------------------------- */

nvcf_status nvcf_scaling_evaluate(const nvcf_scaling_params *p,
				  const nvcf_scaling_metrics *m,
				  nvcf_scaling_history *h,
				  nvcf_scaling_decision *out)
{
	uint64_t current, work, desired;
	int64_t since;
	bool idle, changed;
	nvcf_status st;

	if (p == NULL || m == NULL || h == NULL || out == NULL)
		return nvcf__error_set(NVCF_EINVAL,
				       "nvcf_scaling_evaluate: params, "
				       "metrics, history and decision must "
				       "not be NULL");
	st = nvcf_scaling_params_validate(p);
	if (st != NVCF_OK)
		return st;
	if (m->version != NVCF_SCALING_METRICS_VERSION)
		return nvcf__error_set(NVCF_EINVAL,
				       "scaling metrics version (%u) must be "
				       "%d; initialize with "
				       "NVCF_SCALING_METRICS_INIT",
				       m->version,
				       NVCF_SCALING_METRICS_VERSION);
	if (h->started && m->now_ms < h->last_now_ms)
		return nvcf__error_set(NVCF_EINVAL,
				       "now_ms (%lld) is before the previous "
				       "evaluation's (%lld); pass a monotonic "
				       "clock or reset the history",
				       (long long)m->now_ms,
				       (long long)h->last_now_ms);
	if (!h->started) {
		h->started = true;
		h->first_ms = m->now_ms;
	}
	h->last_now_ms = m->now_ms;
	changed = !h->have_params || !params_equal(&h->params, p);
	h->params = *p;
	h->have_params = true;

	memset(out, 0, sizeof(*out));
	current = (uint64_t)m->ready + m->starting;
	work = m->queued + m->in_flight;
	if (work < m->queued)
		work = UINT64_MAX;
	since = m->last_request_ms >= 0 ? m->last_request_ms : h->first_ms;
	idle = work == 0 && m->now_ms - since >= p->idle_to_zero_ms;
	if (current > 0)
		out->utilization =
			(double)work /
			((double)current * p->max_request_concurrency);
	else
		out->utilization = work > 0 ? INFINITY : 0.0;

	if (p->policy == NVCF_SCALING_UTILIZATION)
		desired = utilization(p, m, h, current, work, idle, changed,
				      out);
	else
		desired = target_tracking(p, m, h, current, work, idle, out);

	if (work > 0 && desired == 0) {
		desired = 1;
		out->reason = NVCF_SCALING_WAKE_FROM_ZERO;
		detail_add(out, "; %llu requests waiting: wake",
			   (unsigned long long)work);
	}
	if (desired < p->min_instances) {
		desired = p->min_instances;
		out->reason = NVCF_SCALING_AT_MIN;
		detail_add(out, "; raised to min %u", p->min_instances);
	} else if (desired > p->max_instances) {
		desired = p->max_instances;
		out->reason = NVCF_SCALING_AT_MAX;
		detail_add(out, "; capped at max %u", p->max_instances);
	}
	out->desired = (uint32_t)desired;
	return NVCF_OK;
}
