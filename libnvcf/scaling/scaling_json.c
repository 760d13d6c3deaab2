/* SPDX-License-Identifier: Apache-2.0 */
/*
 * NVCF's autoscalingConfiguration object, as a deployment's GPU
 * specification carries it, turned into scaling parameters. The rules
 * follow NVCF's deployment API (factor bounds, stickiness size at most an
 * hour and its threshold below the size).
 *
 * NOTE: the merged parameters must also pass
 * nvcf_scaling_params_validate(), which rejects a stickiness window longer
 * than NVCF_SCALING_SAMPLES_MAX samples. With sample_interval_ms below
 * 60000, a PT1H stickiness that NVCF accepts is rejected here.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "nvcf/scaling.h"

#define ROOT "autoscalingConfiguration"
#define STICKINESS_SIZE_MAX_MS 3600000

static const char *type_name(const cJSON *v)
{
	if (cJSON_IsString(v))
		return "a string";
	if (cJSON_IsNumber(v))
		return "a number";
	if (cJSON_IsBool(v))
		return "a boolean";
	if (cJSON_IsArray(v))
		return "an array";
	if (cJSON_IsObject(v))
		return "an object";
	return "null";
}

/* Java's mapper treats an explicit null as an absent field; so do we. */
static bool absent(const cJSON *v)
{
	return v == NULL || cJSON_IsNull(v);
}

static nvcf_status wrong_type(const char *path, const char *want,
			      const cJSON *v)
{
	return nvcf__error_set(NVCF_EINVAL, "%s must be %s, got %s", path,
			       want, type_name(v));
}

/* Rejects keys outside @p known, and a key given twice. */
static nvcf_status check_keys(const cJSON *obj, const char *path,
			      const char *const *known, const char *expected)
{
	const cJSON *a, *b;

	cJSON_ArrayForEach(a, obj) {
		const char *const *k;

		for (k = known; *k != NULL; k++)
			if (strcmp(a->string, *k) == 0)
				break;
		if (*k == NULL)
			return nvcf__error_set(NVCF_EINVAL,
					       "%s.%.64s is not a known key; "
					       "expected %s",
					       path, a->string, expected);
		for (b = a->next; b != NULL; b = b->next)
			if (strcmp(a->string, b->string) == 0)
				return nvcf__error_set(NVCF_EINVAL,
						       "%s.%s appears twice; "
						       "keep one",
						       path, a->string);
	}
	return NVCF_OK;
}

static nvcf_status get_duration(const cJSON *v, const char *path,
				int64_t *ms)
{
	if (!cJSON_IsString(v))
		return wrong_type(path, "an ISO-8601 duration string", v);
	if (nvcf__duration_parse(v->valuestring, ms) != NVCF_OK)
		return nvcf__error_set(NVCF_EINVAL,
				       "%s must be an ISO-8601 duration such "
				       "as \"PT5M\", got \"%.40s\"",
				       path, v->valuestring);
	return NVCF_OK;
}

static nvcf_status parse_stickiness(const cJSON *obj, const char *path,
				    int64_t *window_ms, int64_t *required_ms)
{
	static const char *const keys[] = {"size", "threshold", NULL};
	const cJSON *size, *thr;
	char p[128];
	nvcf_status st;

	if (!cJSON_IsObject(obj))
		return wrong_type(path, "an object", obj);
	st = check_keys(obj, path, keys, "size or threshold");
	if (st != NVCF_OK)
		return st;
	size = cJSON_GetObjectItemCaseSensitive(obj, "size");
	thr = cJSON_GetObjectItemCaseSensitive(obj, "threshold");
	if (absent(size) || absent(thr))
		return nvcf__error_set(NVCF_EINVAL,
				       "%s needs both size and threshold, as "
				       "durations such as \"PT5M\"",
				       path);
	snprintf(p, sizeof(p), "%s.size", path);
	st = get_duration(size, p, window_ms);
	if (st != NVCF_OK)
		return st;
	snprintf(p, sizeof(p), "%s.threshold", path);
	st = get_duration(thr, p, required_ms);
	if (st != NVCF_OK)
		return st;
	if (*window_ms > STICKINESS_SIZE_MAX_MS)
		return nvcf__error_set(NVCF_EINVAL,
				       "%s.size must be at most PT1H, got "
				       "\"%.40s\"",
				       path, size->valuestring);
	if (*required_ms >= *window_ms)
		return nvcf__error_set(NVCF_EINVAL,
				       "%s.threshold (\"%.40s\") must be "
				       "shorter than %s.size (\"%.40s\")",
				       path, thr->valuestring, path,
				       size->valuestring);
	return NVCF_OK;
}

static nvcf_status parse_details(const cJSON *obj, bool up,
				 nvcf_scaling_params *q)
{
	static const char *const keys[] = {"metric", "factor", "threshold",
					   "stickiness", NULL};
	const char *path = up ? ROOT ".scaleUpDetails"
			      : ROOT ".scaleDownDetails";
	const cJSON *v;
	char p[96];
	nvcf_status st;

	if (!cJSON_IsObject(obj))
		return wrong_type(path, "an object", obj);
	st = check_keys(obj, path, keys,
			"metric, factor, threshold or stickiness");
	if (st != NVCF_OK)
		return st;

	v = cJSON_GetObjectItemCaseSensitive(obj, "metric");
	if (!absent(v) && !cJSON_IsString(v)) {
		snprintf(p, sizeof(p), "%s.metric", path);
		return wrong_type(p, "a string", v);
	}

	v = cJSON_GetObjectItemCaseSensitive(obj, "factor");
	if (!absent(v)) {
		double f = v->valuedouble;

		snprintf(p, sizeof(p), "%s.factor", path);
		if (!cJSON_IsNumber(v))
			return wrong_type(p, "a number", v);
		if (up && !(f > 1.0))
			return nvcf__error_set(NVCF_EINVAL,
					       "%s must be > 1.0, got %g", p,
					       f);
		if (!up && !(f > 0.0 && f < 1.0))
			return nvcf__error_set(NVCF_EINVAL,
					       "%s must be > 0 and < 1.0, got "
					       "%g",
					       p, f);
		if (up)
			q->scale_up_factor = f;
		else
			q->scale_down_factor = f;
	}

	v = cJSON_GetObjectItemCaseSensitive(obj, "threshold");
	if (!absent(v)) {
		double t = v->valuedouble;

		snprintf(p, sizeof(p), "%s.threshold", path);
		if (!cJSON_IsNumber(v))
			return wrong_type(p, "an integer percentage", v);
		if (!(t >= 0.0 && t <= 100.0) || t != floor(t))
			return nvcf__error_set(NVCF_EINVAL,
					       "%s must be an integer from 0 "
					       "to 100, got %g",
					       p, t);
		if (up)
			q->scale_up_threshold = t;
		else
			q->scale_down_threshold = t;
	}

	v = cJSON_GetObjectItemCaseSensitive(obj, "stickiness");
	if (!absent(v)) {
		int64_t *w = up ? &q->up_stickiness_window_ms
				: &q->down_stickiness_window_ms;
		int64_t *r = up ? &q->up_stickiness_required_ms
				: &q->down_stickiness_required_ms;

		snprintf(p, sizeof(p), "%s.stickiness", path);
		st = parse_stickiness(v, p, w, r);
		if (st != NVCF_OK)
			return st;
	}
	return NVCF_OK;
}

static nvcf_status parse_root(const cJSON *root, nvcf_scaling_params *q)
{
	static const char *const keys[] = {
		"scaleUpDetails", "scaleDownDetails", "policy",
		"targetUtilization", "scaleDownWindow", "idleToZero", NULL};
	const cJSON *v;
	nvcf_status st;

	if (!cJSON_IsObject(root))
		return wrong_type(ROOT, "an object", root);
	st = check_keys(root, ROOT, keys,
			"scaleUpDetails, scaleDownDetails, policy, "
			"targetUtilization, scaleDownWindow or idleToZero");
	if (st != NVCF_OK)
		return st;

	q->policy = NVCF_SCALING_UTILIZATION;
	v = cJSON_GetObjectItemCaseSensitive(root, "policy");
	if (!absent(v)) {
		if (!cJSON_IsString(v))
			return wrong_type(ROOT ".policy", "a string", v);
		if (strcmp(v->valuestring, "TARGET_TRACKING") == 0)
			q->policy = NVCF_SCALING_TARGET_TRACKING;
		else if (strcmp(v->valuestring, "UTILIZATION") != 0)
			return nvcf__error_set(NVCF_EINVAL,
					       ROOT ".policy must be "
					       "\"TARGET_TRACKING\" or "
					       "\"UTILIZATION\", got \"%.40s\"",
					       v->valuestring);
	}
	v = cJSON_GetObjectItemCaseSensitive(root, "targetUtilization");
	if (!absent(v)) {
		if (!cJSON_IsNumber(v))
			return wrong_type(ROOT ".targetUtilization",
					  "a number", v);
		if (!(v->valuedouble > 0.0 && v->valuedouble <= 1.0))
			return nvcf__error_set(NVCF_EINVAL,
					       ROOT ".targetUtilization must "
					       "be in (0, 1], got %g",
					       v->valuedouble);
		q->target_utilization = v->valuedouble;
	}
	v = cJSON_GetObjectItemCaseSensitive(root, "scaleDownWindow");
	if (!absent(v)) {
		st = get_duration(v, ROOT ".scaleDownWindow",
				  &q->scale_down_window_ms);
		if (st != NVCF_OK)
			return st;
	}
	v = cJSON_GetObjectItemCaseSensitive(root, "idleToZero");
	if (!absent(v)) {
		st = get_duration(v, ROOT ".idleToZero", &q->idle_to_zero_ms);
		if (st != NVCF_OK)
			return st;
	}
	v = cJSON_GetObjectItemCaseSensitive(root, "scaleUpDetails");
	if (!absent(v) && (st = parse_details(v, true, q)) != NVCF_OK)
		return st;
	v = cJSON_GetObjectItemCaseSensitive(root, "scaleDownDetails");
	if (!absent(v) && (st = parse_details(v, false, q)) != NVCF_OK)
		return st;

	if (!(q->scale_up_threshold > q->scale_down_threshold))
		return nvcf__error_set(NVCF_EINVAL,
				       ROOT ".scaleUpDetails.threshold (%g) "
				       "must be greater than "
				       "scaleDownDetails.threshold (%g)",
				       q->scale_up_threshold,
				       q->scale_down_threshold);
	return NVCF_OK;
}

nvcf_status nvcf_scaling_params_from_json(nvcf_scaling_params *p,
					  const char *json)
{
	nvcf_scaling_params q;
	const char *end = NULL;
	cJSON *root;
	nvcf_status st;

	if (p == NULL || json == NULL)
		return nvcf__error_set(NVCF_EINVAL,
				       "nvcf_scaling_params_from_json: params "
				       "and json must not be NULL");
	if (p->version != NVCF_SCALING_PARAMS_VERSION)
		return nvcf_scaling_params_validate(p);
	q = *p;
	root = cJSON_ParseWithOpts(json, &end, true);
	if (root == NULL) {
		if (end == NULL)
			return nvcf__error_oom();
		return nvcf__error_set(NVCF_EINVAL,
				       ROOT " is not valid JSON (error at "
				       "byte %td)",
				       end - json);
	}
	st = parse_root(root, &q);
	cJSON_Delete(root);
	if (st != NVCF_OK)
		return st;
	if (nvcf_scaling_params_validate(&q) != NVCF_OK) {
		char msg[256];

		snprintf(msg, sizeof(msg), "%s", nvcf_error_last()->message);
		return nvcf__error_set(NVCF_EINVAL, ROOT ": %s", msg);
	}
	*p = q;
	return NVCF_OK;
}
