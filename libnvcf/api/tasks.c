/* SPDX-License-Identifier: Apache-2.0 */
/*
 * NVCT tasks (reference nvcf-api.md section 3). A task is one KV record,
 * {ncaId}.{taskId} in nvcf_tasks, changed only by compare-and-set so that
 * API replicas, their timers and cluster agents never overwrite each
 * other. Events and results are JetStream messages rather than KV keys:
 * they only grow, and a stream pages them by sequence for free.
 */
#include <ctype.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>
#include <openssl/evp.h>

#include "nvcf/routing.h"

#include "api/api_internal.h"
#include "api/tasks.h"
#include "bus/bus_internal.h"
#include "bus/chunks.h"
#include "nvcf.pb-c.h"

#define SUB "tasks"

/* Short names for the validation helpers shared with validate.c. */
typedef nvcf__api_vctx vctx;
#define reject nvcf__api_reject
#define invalid nvcf__api_invalid
#define blank nvcf__api_blank
#define opt_string nvcf__api_opt_string
#define req_string nvcf__api_req_string
#define opt_array nvcf__api_opt_array
#define RMW_TRIES 8
#define DEFAULT_MAX_QUEUED "PT72H"
#define DEFAULT_GRACE_MS (3600 * 1000LL)
#define DEFAULT_LIMIT 10
#define MAX_LIMIT 1000
#define CURSOR_MAX 256
#define TAG_CHARS                                                             \
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_:="

struct nvcf__tasks {
	nvcf__tasks_config cfg;
	pthread_t timer;
	bool running;
	atomic_bool stopping;
};

/* ---- statuses -------------------------------------------------------- */

static const char *const terminal_statuses[] = {
	"CANCELED", "COMPLETED", "ERRORED", "EXCEEDED_MAX_RUNTIME_DURATION",
	"EXCEEDED_MAX_QUEUED_DURATION", NULL};

bool nvcf__task_status_terminal(const char *status)
{
	for (size_t i = 0; status && terminal_statuses[i]; i++)
		if (strcmp(status, terminal_statuses[i]) == 0)
			return true;
	return false;
}

/* Rank in the status machine: QUEUED 0, LAUNCHED 1, RUNNING 2, ends 3. */
static int status_rank(const char *s)
{
	if (s == NULL)
		return -1;
	if (strcmp(s, "QUEUED") == 0)
		return 0;
	if (strcmp(s, "LAUNCHED") == 0)
		return 1;
	if (strcmp(s, "RUNNING") == 0)
		return 2;
	return nvcf__task_status_terminal(s) ? 3 : -1;
}

bool nvcf__task_transition_allowed(const char *from, const char *to)
{
	int a = status_rank(from), b = status_rank(to);

	if (a < 0 || b < 0 || a == 3 || b <= a)
		return false;
	/* Only a task that never launched can overstay its queue time. */
	if (strcmp(to, "EXCEEDED_MAX_QUEUED_DURATION") == 0)
		return a == 0;
	if (strcmp(to, "EXCEEDED_MAX_RUNTIME_DURATION") == 0)
		return a > 0;
	return true;
}

/* ---- JSON and KV helpers --------------------------------------------- */

static const char *jstr(const cJSON *obj, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void set_item(cJSON *obj, const char *name, cJSON *v)
{
	if (v == NULL)
		return;
	if (cJSON_GetObjectItemCaseSensitive(obj, name))
		cJSON_ReplaceItemInObjectCaseSensitive(obj, name, v);
	else
		cJSON_AddItemToObject(obj, name, v);
}

static void set_str(cJSON *obj, const char *name, const char *value)
{
	set_item(obj, name, cJSON_CreateString(value));
}

static void now_iso(char out[32])
{
	nvcf__iso8601(nvcf__now_us(), out);
}

/* Parses the ISO-8601 times this library writes; 0 when unparsable. */
static int64_t iso_us(const char *s)
{
	struct tm tm = {0};
	double frac = 0;

	if (s == NULL ||
	    sscanf(s, "%d-%d-%dT%d:%d:%d%lf", &tm.tm_year, &tm.tm_mon,
		   &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec,
		   &frac) < 6)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	if (frac < 0 || frac >= 1)
		frac = 0;
	return (int64_t)timegm(&tm) * 1000000 + (int64_t)(frac * 1e6);
}

static int64_t duration_ms(const char *text, int64_t dflt)
{
	int64_t ms;

	if (text == NULL || nvcf__duration_parse(text, &ms) != NVCF_OK)
		return dflt;
	return ms;
}

static nvcf_status kv_load(nvcf_bus *bus, const char *key, cJSON **out,
			   uint64_t *rev)
{
	char *text = NULL;
	size_t len = 0;
	nvcf_status st;

	*out = NULL;
	st = nvcf_bus_kv_get(bus, NVCF_BUCKET_TASKS, key, &text, &len, rev);
	if (st != NVCF_OK)
		return st;
	*out = cJSON_ParseWithLength(text, len);
	nvcf_free(text);
	if (!cJSON_IsObject(*out)) {
		cJSON_Delete(*out);
		*out = NULL;
		return nvcf__error_set(NVCF_EPROTO,
				       "KV %s key '%s' holds no JSON object",
				       NVCF_BUCKET_TASKS, key);
	}
	return NVCF_OK;
}

static nvcf_status kv_store(nvcf_bus *bus, const char *key,
			    const cJSON *value, bool create, uint64_t rev)
{
	char *text = cJSON_PrintUnformatted(value);
	nvcf_status st;

	if (text == NULL)
		return nvcf__error_oom();
	if (create)
		st = nvcf_bus_kv_create(bus, NVCF_BUCKET_TASKS, key, text,
					strlen(text), NULL);
	else
		st = nvcf_bus_kv_update(bus, NVCF_BUCKET_TASKS, key, text,
					strlen(text), rev, NULL);
	free(text);
	return st;
}

static void task_key(char out[160], const char *nca, const char *tid)
{
	snprintf(out, 160, "%s.%s", nca, tid);
}

/* ---- validation ------------------------------------------------------ */

/* ^[a-z0-9A-Z][a-z0-9A-Z<extra>]*$ with 1 to @p max characters. */
static bool word_valid(const char *s, size_t max, const char *extra)
{
	size_t n = strlen(s);

	if (n == 0 || n > max || !isalnum((unsigned char)s[0]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr(extra, s[i]))
			return false;
	return true;
}

static bool uri_valid(const char *s)
{
	return !blank(s) && strpbrk(s, " \t\r\n") == NULL;
}

/* <org>/<team>/<model> or <org>/<model>. */
static bool location_valid(const char *s)
{
	int parts = 0;

	for (const char *p = s;; p++) {
		const char *start = p;

		while (*p && *p != '/') {
			if (!isalnum((unsigned char)*p) && !strchr("-_.", *p))
				return false;
			p++;
		}
		if (p == start)
			return false;
		parts++;
		if (*p == '\0')
			break;
	}
	return parts == 2 || parts == 3;
}

static bool in_list(const char *name, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(name, *list) == 0)
			return true;
	return false;
}

/* Rejects members of @p obj outside @p known, naming them with @p prefix. */
static nvcf_status check_members(vctx *c, const cJSON *obj,
				 const char *prefix, const char *const *known,
				 const char *const *unsupported)
{
	const cJSON *m;
	char path[160];

	cJSON_ArrayForEach(m, obj) {
		if (in_list(m->string, known))
			continue;
		snprintf(path, sizeof(path), "%s%.100s", prefix, m->string);
		if (unsupported && in_list(m->string, unsupported))
			return reject(c, path, m,
				      "is not supported by this platform; "
				      "remove it");
		return reject(c, path, m, "unknown field; remove it");
	}
	return NVCF_OK;
}

/*
 * An optional ISO-8601 duration. @p ms_out is -1 when it is absent. Zero
 * is refused where @p positive, since a task that may not run or wait at
 * all can only fail.
 */
static nvcf_status opt_duration(vctx *c, const cJSON *req, const char *field,
				bool positive, int64_t *ms_out)
{
	const cJSON *v;
	nvcf_status st;

	*ms_out = -1;
	if ((st = opt_string(c, req, field, field, &v)) != NVCF_OK ||
	    v == NULL)
		return st;
	if (strchr(v->valuestring, '-') != NULL)
		return reject(c, field, v, "must not be negative");
	if (nvcf__duration_parse(v->valuestring, ms_out) != NVCF_OK)
		return reject(c, field, v,
			      "must be an ISO-8601 duration such as PT30M, "
			      "PT1H30M or P1DT2H");
	if (positive && *ms_out == 0)
		return reject(c, field, v, "must be greater than zero");
	return NVCF_OK;
}

static nvcf_status check_gpu_spec(vctx *c, const cJSON *spec, bool helm)
{
	static const char *const known[] = {
		"gpu", "instanceType", "backend", "clusters", "configuration",
		"helmValidationPolicy", NULL};
	static const char *const policies[] = {"Default", "Unrestricted",
					       NULL};
	const cJSON *v, *e;
	nvcf_status st;

	if (spec == NULL || cJSON_IsNull(spec))
		return reject(c, "gpuSpecification", NULL, "must not be null");
	if (!cJSON_IsObject(spec))
		return reject(c, "gpuSpecification", spec,
			      "must be an object");
	if ((st = check_members(c, spec, "gpuSpecification.", known,
				NULL)) ||
	    (st = req_string(c, spec, "gpu", "gpuSpecification.gpu", &v)) ||
	    (st = req_string(c, spec, "instanceType",
			     "gpuSpecification.instanceType", &v)) ||
	    (st = opt_string(c, spec, "backend", "gpuSpecification.backend",
			     &v)))
		return st;
	v = cJSON_GetObjectItemCaseSensitive(spec, "clusters");
	if (v != NULL && !cJSON_IsNull(v)) {
		if (!cJSON_IsArray(v))
			return reject(c, "gpuSpecification.clusters", v,
				      "must be an array of cluster ids or "
				      "names");
		cJSON_ArrayForEach(e, v) {
			if (!cJSON_IsString(e) || blank(e->valuestring))
				return reject(c, "gpuSpecification.clusters",
					      e,
					      "each entry must be a cluster id "
					      "or name");
		}
	}
	v = cJSON_GetObjectItemCaseSensitive(spec, "configuration");
	if (v != NULL && !cJSON_IsNull(v)) {
		if (!helm)
			return reject(c, "gpuSpecification.configuration", v,
				      "applies to helmChart tasks only");
		if (!cJSON_IsObject(v))
			return reject(c, "gpuSpecification.configuration", v,
				      "must be an object of Helm values");
	}
	if ((st = opt_string(c, spec, "helmValidationPolicy",
			     "gpuSpecification.helmValidationPolicy", &v)))
		return st;
	if (v != NULL) {
		bool ok = false;

		if (!helm)
			return reject(c,
				      "gpuSpecification.helmValidationPolicy",
				      v, "applies to helmChart tasks only");
		for (size_t i = 0; policies[i]; i++)
			ok = ok || strcasecmp(v->valuestring, policies[i]) == 0;
		if (!ok)
			return reject(c,
				      "gpuSpecification.helmValidationPolicy",
				      v, "must be one of Default, Unrestricted");
	}
	return NVCF_OK;
}

static nvcf_status check_env(vctx *c, const cJSON *env)
{
	static const char *const known[] = {"key", "value", NULL};
	const cJSON *e, *k, *v;
	nvcf_status st;

	cJSON_ArrayForEach(e, env) {
		if (!cJSON_IsObject(e))
			return reject(c, "containerEnvironment", e,
				      "each entry must be {\"key\",\"value\"}");
		if ((st = check_members(c, e, "containerEnvironment.", known,
					NULL)) ||
		    (st = req_string(c, e, "key", "containerEnvironment.key",
				     &k)) ||
		    (st = opt_string(c, e, "value",
				     "containerEnvironment.value", &v)))
			return st;
		if (!word_valid(k->valuestring, 256, "_"))
			return reject(c, "containerEnvironment.key", k,
				      "must match ^[a-z0-9A-Z][a-z0-9A-Z_]*$");
		if (v == NULL)
			return reject(c, "containerEnvironment.value", NULL,
				      "must not be null");
	}
	return NVCF_OK;
}

/* models and resources: [{"name","version","uri"}], names unique. */
static nvcf_status check_artifacts(vctx *c, const char *field,
				   const cJSON *arr)
{
	static const char *const known[] = {"name", "version", "uri", NULL};
	const cJSON *a, *b, *v;
	char prefix[32], path[48];
	nvcf_status st;

	snprintf(prefix, sizeof(prefix), "%s.", field);
	cJSON_ArrayForEach(a, arr) {
		if (!cJSON_IsObject(a))
			return reject(c, field, a,
				      "each entry must be {\"name\","
				      "\"version\",\"uri\"}");
		if ((st = check_members(c, a, prefix, known, NULL)))
			return st;
		for (size_t i = 0; known[i]; i++) {
			snprintf(path, sizeof(path), "%s.%s", field, known[i]);
			if ((st = req_string(c, a, known[i], path, &v)))
				return st;
		}
		v = cJSON_GetObjectItemCaseSensitive(a, "name");
		if (!word_valid(v->valuestring, 128, "-_."))
			return reject(c, field, v,
				      "name must be letters, digits, '-', "
				      "'_' or '.', starting with a letter or "
				      "digit (it names a directory)");
		for (b = a->next; b != NULL; b = b->next)
			if (strcmp(jstr(b, "name") ? jstr(b, "name") : "",
				   v->valuestring) == 0)
				return reject(c, field, v,
					      "names must be unique");
	}
	return NVCF_OK;
}

static nvcf_status check_tags(vctx *c, const cJSON *tags)
{
	const cJSON *t;

	if (cJSON_GetArraySize(tags) > 64)
		return reject(c, "tags", tags, "size must be at most 64");
	cJSON_ArrayForEach(t, tags) {
		size_t n = cJSON_IsString(t) ? strlen(t->valuestring) : 0;

		if (n == 0 || n > 128 ||
		    strspn(t->valuestring, TAG_CHARS) != n)
			return reject(c, "tags", t,
				      "each tag must match [a-zA-Z0-9\\-_:=]+ "
				      "and be at most 128 characters");
	}
	return NVCF_OK;
}

static void add_copy(cJSON *out, const char *name, const cJSON *v)
{
	cJSON *copy = cJSON_Duplicate(v, true);

	if (copy != NULL)
		cJSON_AddItemToObject(out, name, copy);
}

static void add_duration(cJSON *out, const char *name, int64_t ms)
{
	char text[48];

	nvcf__duration_format(ms, text);
	cJSON_AddStringToObject(out, name, text);
}

static nvcf_status check_task(vctx *c, const cJSON *req, cJSON *out)
{
	static const char *const known[] = {
		"name", "gpuSpecification", "containerImage", "helmChart",
		"containerArgs", "containerEnvironment", "models",
		"resources", "tags", "description", "maxRuntimeDuration",
		"maxQueuedDuration", "terminationGracePeriodDuration",
		"resultHandlingStrategy", "resultsLocation", NULL};
	/* Known to NVCT, but this platform has no secret or telemetry
	 * store: accepting them would drop what the caller relies on. */
	static const char *const unsupported[] = {"secrets", "telemetries",
						  NULL};
	const cJSON *name, *image, *helm, *args, *env, *models, *res, *tags,
		*desc, *strategy, *location, *spec;
	int64_t run_ms, queue_ms, grace_ms;
	const char *strategy_s = "UPLOAD";
	nvcf_status st;

	if (!cJSON_IsObject(req)) {
		c->framework = true;
		snprintf(c->detail, c->size,
			 "JSON parse error: the request body must be a JSON "
			 "object");
		return nvcf__error_set(NVCF_EINVAL, "%s", c->detail);
	}
	if ((st = check_members(c, req, "", known, unsupported)))
		return st;
	if ((st = req_string(c, req, "name", "name", &name)))
		return st;
	if (!word_valid(name->valuestring, 128, "-_"))
		return reject(c, "name", name,
			      "must match ^[a-z0-9A-Z][a-z0-9A-Z\\-_]*$ and "
			      "be 1 to 128 characters");
	if ((st = opt_string(c, req, "containerImage", "containerImage",
			     &image)) ||
	    (st = opt_string(c, req, "helmChart", "helmChart", &helm)) ||
	    (st = opt_string(c, req, "containerArgs", "containerArgs",
			     &args)) ||
	    (st = opt_string(c, req, "description", "description", &desc)) ||
	    (st = opt_string(c, req, "resultHandlingStrategy",
			     "resultHandlingStrategy", &strategy)) ||
	    (st = opt_string(c, req, "resultsLocation", "resultsLocation",
			     &location)) ||
	    (st = opt_array(c, req, "containerEnvironment", &env)) ||
	    (st = opt_array(c, req, "models", &models)) ||
	    (st = opt_array(c, req, "resources", &res)) ||
	    (st = opt_array(c, req, "tags", &tags)))
		return st;
	if (image != NULL && helm != NULL)
		return invalid(c, "containerImage and helmChart are both set; "
				  "a task runs one of them: remove the other");
	if (image == NULL && helm == NULL)
		return invalid(c, "one of containerImage or helmChart is "
				  "required");
	if (image != NULL && !uri_valid(image->valuestring))
		return reject(c, "containerImage", image,
			      "must be an image URI without spaces");
	if (helm != NULL && !uri_valid(helm->valuestring))
		return reject(c, "helmChart", helm,
			      "must be a chart URI without spaces");
	if (helm != NULL && (args != NULL || env != NULL))
		return invalid(c, "helmChart excludes containerArgs and "
				  "containerEnvironment: set them as Helm "
				  "values in gpuSpecification.configuration");
	spec = cJSON_GetObjectItemCaseSensitive(req, "gpuSpecification");
	if ((st = check_gpu_spec(c, spec, helm != NULL)))
		return st;
	if (env != NULL && (st = check_env(c, env)))
		return st;
	if (models != NULL && (st = check_artifacts(c, "models", models)))
		return st;
	if (res != NULL && (st = check_artifacts(c, "resources", res)))
		return st;
	if (tags != NULL && (st = check_tags(c, tags)))
		return st;
	if (desc != NULL && strlen(desc->valuestring) > 256)
		return reject(c, "description", desc,
			      "size must be at most 256");
	if ((st = opt_duration(c, req, "maxRuntimeDuration", true, &run_ms)) ||
	    (st = opt_duration(c, req, "maxQueuedDuration", true,
			       &queue_ms)) ||
	    (st = opt_duration(c, req, "terminationGracePeriodDuration",
			       false, &grace_ms)))
		return st;
	if (grace_ms >= 0 && run_ms >= 0 && grace_ms > run_ms)
		return reject(c, "terminationGracePeriodDuration",
			      cJSON_GetObjectItemCaseSensitive(
				      req, "terminationGracePeriodDuration"),
			      "must not exceed maxRuntimeDuration");
	if (strategy != NULL) {
		if (strcasecmp(strategy->valuestring, "UPLOAD") == 0)
			strategy_s = "UPLOAD";
		else if (strcasecmp(strategy->valuestring, "NONE") == 0)
			strategy_s = "NONE";
		else
			return reject(c, "resultHandlingStrategy", strategy,
				      "must be one of UPLOAD, NONE");
	}
	if (location != NULL && !location_valid(location->valuestring))
		return reject(c, "resultsLocation", location,
			      "must be <org>/<team>/<model> or <org>/<model>");
	if (strcmp(strategy_s, "UPLOAD") == 0 && location == NULL)
		return reject(c, "resultsLocation", NULL,
			      "is required when resultHandlingStrategy is "
			      "UPLOAD (the default); give "
			      "<org>/<team>/<model> or set "
			      "resultHandlingStrategy to NONE");

	/* The record, in TaskDto order; the caller adds identity fields. */
	cJSON_AddStringToObject(out, "name", name->valuestring);
	add_copy(out, "gpuSpecification", spec);
	if (image != NULL)
		add_copy(out, "containerImage", image);
	if (args != NULL)
		add_copy(out, "containerArgs", args);
	if (env != NULL && cJSON_GetArraySize(env) > 0)
		add_copy(out, "containerEnvironment", env);
	if (models != NULL && cJSON_GetArraySize(models) > 0)
		add_copy(out, "models", models);
	if (res != NULL && cJSON_GetArraySize(res) > 0)
		add_copy(out, "resources", res);
	if (tags != NULL && cJSON_GetArraySize(tags) > 0)
		add_copy(out, "tags", tags);
	if (desc != NULL)
		add_copy(out, "description", desc);
	cJSON_AddStringToObject(out, "resultHandlingStrategy", strategy_s);
	if (location != NULL)
		add_copy(out, "resultsLocation", location);
	if (run_ms >= 0)
		add_duration(out, "maxRuntimeDuration", run_ms);
	add_duration(out, "maxQueuedDuration",
		     queue_ms >= 0 ? queue_ms
				   : duration_ms(DEFAULT_MAX_QUEUED, 0));
	/* The default grace never exceeds the runtime it belongs to. */
	if (grace_ms < 0)
		grace_ms = run_ms >= 0 && run_ms < DEFAULT_GRACE_MS
				   ? run_ms
				   : DEFAULT_GRACE_MS;
	add_duration(out, "terminationGracePeriodDuration", grace_ms);
	if (helm != NULL)
		add_copy(out, "helmChart", helm);
	return NVCF_OK;
}

nvcf_status nvcf__task_validate(const char *json, size_t len, cJSON **out,
				char *detail, size_t detail_size,
				bool *framework_out)
{
	vctx c = {detail, detail_size, false};
	cJSON *req, *rec;
	nvcf_status st;

	if (out)
		*out = NULL;
	if (detail_size > 0)
		detail[0] = '\0';
	req = json ? cJSON_ParseWithLength(json, len) : NULL;
	if (req == NULL) {
		snprintf(detail, detail_size,
			 "JSON parse error: the request body is not valid "
			 "JSON");
		if (framework_out)
			*framework_out = true;
		return nvcf__error_set(NVCF_EINVAL, "%s", detail);
	}
	if ((rec = cJSON_CreateObject()) == NULL) {
		cJSON_Delete(req);
		return nvcf__error_oom();
	}
	st = check_task(&c, req, rec);
	cJSON_Delete(req);
	if (framework_out)
		*framework_out = c.framework;
	if (st != NVCF_OK || out == NULL)
		cJSON_Delete(rec);
	else
		*out = rec;
	return st;
}

/* ---- event and result streams ---------------------------------------- */

static nvcf_status ensure_stream(nvcf_bus *bus, const char *name,
				 const char *subject)
{
	const char *subjects[1] = {subject};
	jsStreamInfo *si = NULL;
	jsStreamConfig cfg;
	jsErrCode jerr = 0;
	natsStatus s;

	s = js_GetStreamInfo(&si, nvcf__bus_js(bus), name, NULL, &jerr);
	if (s == NATS_OK) {
		jsStreamInfo_Destroy(si);
		return NVCF_OK;
	}
	if (s != NATS_NOT_FOUND && jerr != JSStreamNotFoundErr)
		return nvcf__bus_error(s, jerr, "reading stream", name);
	jsStreamConfig_Init(&cfg);
	cfg.Name = name;
	cfg.Subjects = subjects;
	cfg.SubjectsLen = 1;
	cfg.Retention = js_LimitsPolicy;
	cfg.Storage = js_FileStorage;
	/* Paging reads by sequence from any replica. */
	cfg.AllowDirect = true;
	cfg.Replicas = nvcf__bus_options(bus)->replicas;
	jerr = 0;
	s = js_AddStream(&si, nvcf__bus_js(bus), &cfg, NULL, &jerr);
	if (s != NATS_OK && jerr != JSStreamNameExistErr)
		return nvcf__bus_error(s, jerr, "creating stream", name);
	jsStreamInfo_Destroy(si);
	nvcf_log_info(SUB, "created stream %s", name);
	return NVCF_OK;
}

static nvcf_status ensure_streams(nvcf_bus *bus)
{
	nvcf_status st;

	st = ensure_stream(bus, NVCF_STREAM_TASK_EVENTS, "nvct.evt.>");
	if (st == NVCF_OK)
		st = ensure_stream(bus, NVCF_STREAM_TASK_RESULTS,
				   "nvct.res.>");
	return st;
}

/* Publishes JSON, creating the task streams first when they are missing. */
static nvcf_status publish_json(nvcf_bus *bus, const char *subject,
				const cJSON *body)
{
	char *text = cJSON_PrintUnformatted(body);
	nvcf_status st;

	if (text == NULL)
		return nvcf__error_oom();
	st = nvcf_bus_publish(bus, subject, text, strlen(text), NULL);
	if (st == NVCF_ENOTFOUND && ensure_streams(bus) == NVCF_OK)
		st = nvcf_bus_publish(bus, subject, text, strlen(text), NULL);
	free(text);
	return st;
}

static void emit_event(nvcf_bus *bus, const char *nca, const char *tid,
		       const char *message)
{
	char subject[96], id[NVCF_UUID_LEN + 1], stamp[32];
	cJSON *e = cJSON_CreateObject();

	if (e == NULL)
		return;
	nvcf__uuid_new(id);
	now_iso(stamp);
	cJSON_AddStringToObject(e, "eventId", id);
	cJSON_AddStringToObject(e, "taskId", tid);
	cJSON_AddStringToObject(e, "ncaId", nca);
	cJSON_AddStringToObject(e, "message", message);
	cJSON_AddStringToObject(e, "createdAt", stamp);
	snprintf(subject, sizeof(subject), "nvct.evt.%s", tid);
	if (publish_json(bus, subject, e) != NVCF_OK)
		nvcf_log_warn(SUB, "task %s: event '%s' not stored: %s", tid,
			      message, nvcf_error_last()->message);
	cJSON_Delete(e);
}

static uint64_t msg_sequence(natsMsg *m)
{
	const char *v = NULL;

	if (natsMsgHeader_Get(m, "Nats-Sequence", &v) == NATS_OK && v)
		return strtoull(v, NULL, 10);
	return natsMsg_GetSequence(m);
}

/*
 * Reads up to @p limit JSON messages on @p filter from sequence @p seq
 * on, into @p items. *next_out is the sequence to continue from when more
 * messages exist, else 0.
 */
static nvcf_status stream_page(nvcf_bus *bus, const char *stream,
			       const char *filter, uint64_t seq, int limit,
			       cJSON *items, uint64_t *next_out)
{
	int n = 0;

	*next_out = 0;
	for (;;) {
		jsDirectGetMsgOptions o;
		natsMsg *m = NULL;
		natsStatus s;
		cJSON *item;

		jsDirectGetMsgOptions_Init(&o);
		o.Sequence = seq;
		o.NextBySubject = filter;
		s = js_DirectGetMsg(&m, nvcf__bus_js(bus), stream, NULL, &o);
		if (s == NATS_NOT_FOUND)
			return NVCF_OK;
		if (s != NATS_OK)
			return nvcf__bus_error(s, 0, "reading stream", stream);
		if (n == limit) {
			*next_out = msg_sequence(m);
			natsMsg_Destroy(m);
			return NVCF_OK;
		}
		seq = msg_sequence(m) + 1;
		item = cJSON_ParseWithLength(natsMsg_GetData(m),
					     (size_t)natsMsg_GetDataLength(m));
		natsMsg_Destroy(m);
		if (cJSON_IsObject(item)) {
			cJSON_AddItemToArray(items, item);
			n++;
		} else {
			cJSON_Delete(item);
		}
		if (seq <= 1)
			return NVCF_OK; /* no sequence header: stop, not loop */
	}
}

static void purge_subject(nvcf_bus *bus, const char *stream,
			  const char *subject)
{
	jsErrCode jerr = 0;
	jsOptions o;
	natsStatus s;

	jsOptions_Init(&o);
	o.Stream.Purge.Subject = subject;
	s = js_PurgeStream(nvcf__bus_js(bus), stream, &o, &jerr);
	if (s != NATS_OK && s != NATS_NOT_FOUND)
		nvcf_log_warn(SUB, "purging %s of stream %s failed: %s (%d)",
			      subject, stream, natsStatus_GetText(s),
			      (int)jerr);
}

/* ---- orders to cluster agents ---------------------------------------- */

static nvcf_status publish_create(nvcf_bus *bus, const cJSON *rec)
{
	Nvcf__CreateInstances m = NVCF__CREATE_INSTANCES__INIT;
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(rec, "placement");
	char subject[NVCF_ROUTING_NAME_MAX], *json;
	uint8_t *buf;
	size_t len;
	nvcf_status st;

	st = nvcf_routing_create_subject(NVCF_WORKLOAD_TASK,
					 jstr(p, "clusterId"), jstr(p, "gpu"),
					 jstr(p, "instanceType"), subject,
					 sizeof(subject));
	if (st != NVCF_OK)
		return st;
	if ((json = cJSON_PrintUnformatted(rec)) == NULL)
		return nvcf__error_oom();
	m.icms_request_id = (char *)jstr(p, "icmsRequestId");
	m.kind = NVCF__WORKLOAD_KIND__WORKLOAD_KIND_TASK;
	m.nca_id = (char *)jstr(rec, "ncaId");
	m.cluster_id = (char *)jstr(p, "clusterId");
	m.gpu = (char *)jstr(p, "gpu");
	m.instance_type = (char *)jstr(p, "instanceType");
	m.instance_count = 1;
	m.max_request_concurrency = 1;
	m.region = (char *)nvcf_bus_region(bus);
	m.time_us = nvcf__now_us();
	m.task_id = (char *)jstr(rec, "id");
	m.task_json = json;
	len = nvcf__create_instances__get_packed_size(&m);
	if ((buf = malloc(len ? len : 1)) == NULL) {
		free(json);
		return nvcf__error_oom();
	}
	nvcf__create_instances__pack(&m, buf);
	st = nvcf_bus_publish(bus, subject, buf, len, m.icms_request_id);
	free(buf);
	free(json);
	if (st == NVCF_OK)
		nvcf_log_info(SUB, "ordered task %s on cluster %s (%s)",
			      m.task_id, m.cluster_id, m.icms_request_id);
	return st;
}

static void publish_terminate(nvcf_bus *bus, const cJSON *rec,
			      const char *reason)
{
	Nvcf__TerminateInstances m = NVCF__TERMINATE_INSTANCES__INIT;
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(rec, "placement");
	char subject[NVCF_ROUTING_NAME_MAX];
	uint8_t *buf;
	size_t len;
	nvcf_status st;

	if (jstr(p, "clusterId") == NULL)
		return; /* never ordered anywhere: nothing runs */
	st = nvcf_routing_terminate_subject(jstr(p, "clusterId"), subject,
					    sizeof(subject));
	if (st != NVCF_OK)
		goto fail;
	m.cluster_id = (char *)jstr(p, "clusterId");
	m.task_id = (char *)jstr(rec, "id");
	m.reason = (char *)reason;
	m.time_us = nvcf__now_us();
	len = nvcf__terminate_instances__get_packed_size(&m);
	if ((buf = malloc(len ? len : 1)) == NULL) {
		st = nvcf__error_oom();
		goto fail;
	}
	nvcf__terminate_instances__pack(&m, buf);
	st = nvcf_bus_publish(bus, subject, buf, len, NULL);
	free(buf);
	if (st == NVCF_OK) {
		nvcf_log_info(SUB, "ordered %s of task %s on cluster %s",
			      reason, m.task_id, m.cluster_id);
		return;
	}
fail:
	nvcf_log_warn(SUB, "termination order (%s) of task %s not sent: %s",
		      reason, jstr(rec, "id") ? jstr(rec, "id") : "?",
		      nvcf_error_last()->message);
}

/* ---- read-modify-write of a task record ------------------------------ */

/*
 * Changes one record. @p fn edits @p rec and appends event texts to
 * @p events; it returns NVCF_OK to store, NVCF_EEXISTS to store nothing
 * (already as wanted), or an error. Events go out only after the store.
 */
typedef nvcf_status (*edit_fn)(cJSON *rec, cJSON *events, void *arg);

static nvcf_status task_edit(nvcf_bus *bus, const char *key, edit_fn fn,
			     void *arg, cJSON **rec_out)
{
	if (rec_out)
		*rec_out = NULL;
	for (int i = 0; i < RMW_TRIES; i++) {
		cJSON *rec, *events = cJSON_CreateArray(), *e;
		uint64_t rev;
		nvcf_status st;

		if (events == NULL)
			return nvcf__error_oom();
		if ((st = kv_load(bus, key, &rec, &rev)) != NVCF_OK) {
			cJSON_Delete(events);
			return st;
		}
		st = fn(rec, events, arg);
		if (st == NVCF_OK) {
			char stamp[32];

			now_iso(stamp);
			set_str(rec, "lastUpdatedAt", stamp);
			st = kv_store(bus, key, rec, false, rev);
			if (st == NVCF_ECONFLICT) {
				cJSON_Delete(rec);
				cJSON_Delete(events);
				continue;
			}
		}
		if (st == NVCF_OK)
			cJSON_ArrayForEach(e, events)
				emit_event(bus, jstr(rec, "ncaId"),
					   jstr(rec, "id"), e->valuestring);
		cJSON_Delete(events);
		if ((st == NVCF_OK || st == NVCF_EEXISTS) && rec_out)
			*rec_out = rec;
		else
			cJSON_Delete(rec);
		return st == NVCF_EEXISTS ? NVCF_OK : st;
	}
	return nvcf__error_set(NVCF_ECONFLICT,
			       "task record '%s' kept changing; retry", key);
}

static nvcf_status move_status(cJSON *rec, cJSON *events, const char *to)
{
	const char *from = jstr(rec, "status");
	char text[160];

	if (from && strcmp(from, to) == 0)
		return NVCF_EEXISTS;
	if (!nvcf__task_transition_allowed(from, to))
		return nvcf__error_set(NVCF_EINVAL,
				       "task status cannot change from '%s' "
				       "to '%s'",
				       from ? from : "(none)", to);
	snprintf(text, sizeof(text), "Changing status from '%s' to '%s'",
		 from ? from : "(none)", to);
	cJSON_AddItemToArray(events, cJSON_CreateString(text));
	if (status_rank(to) > 0 &&
	    !cJSON_GetObjectItemCaseSensitive(rec, "startedAt")) {
		char stamp[32];

		now_iso(stamp);
		set_str(rec, "startedAt", stamp);
	}
	set_str(rec, "status", to);
	return NVCF_OK;
}

typedef struct status_arg {
	const char *to;
	const char *only_from; /* NULL: any allowed status */
	char seen[48];         /* the status found */
} status_arg;

static nvcf_status edit_status(cJSON *rec, cJSON *events, void *arg)
{
	status_arg *a = arg;
	const char *cur = jstr(rec, "status");

	snprintf(a->seen, sizeof(a->seen), "%s", cur ? cur : "");
	if (nvcf__task_status_terminal(cur))
		return nvcf__error_set(NVCF_EPERM, "task is already %s", cur);
	if (a->only_from && (!cur || strcmp(cur, a->only_from) != 0))
		return NVCF_EEXISTS;
	return move_status(rec, events, a->to);
}

/* ---- placement ------------------------------------------------------- */

static nvcf_status load_inventory(nvcf_bus *bus, nvcf_inventory **out)
{
	char **keys = NULL;
	size_t n = 0;
	nvcf_status st;

	if ((st = nvcf_inventory_new(out)) != NVCF_OK)
		return st;
	st = nvcf_bus_kv_keys(bus, NVCF_BUCKET_CLUSTERS, NULL, &keys, &n);
	if (st != NVCF_OK) {
		nvcf_inventory_free(*out);
		*out = NULL;
		return st;
	}
	for (size_t i = 0; i < n; i++) {
		char *text = NULL;

		if (nvcf_bus_kv_get(bus, NVCF_BUCKET_CLUSTERS, keys[i], &text,
				    NULL, NULL) != NVCF_OK)
			continue;
		if (nvcf_inventory_add_cluster_json(*out, text) != NVCF_OK)
			nvcf_log_debug(SUB, "cluster record '%s' skipped: %s",
				       keys[i], nvcf_error_last()->message);
		nvcf_free(text);
	}
	nvcf_strings_free(keys, n);
	return NVCF_OK;
}

/* The placement spec of a record's gpuSpecification; clusters borrowed. */
static void placement_spec(const cJSON *gs, const char **clusters,
			   size_t max, nvcf_placement_spec *ps)
{
	const cJSON *e;
	size_t n = 0;

	ps->gpu = jstr(gs, "gpu");
	ps->instance_type = jstr(gs, "instanceType");
	ps->backend = jstr(gs, "backend");
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(gs, "clusters"))
		if (cJSON_IsString(e) && n < max)
			clusters[n++] = e->valuestring;
	ps->clusters = clusters;
	ps->clusters_count = n;
	ps->instance_count = 1;
}

typedef struct place_arg {
	const nvcf_route_entry *entry;
} place_arg;

static nvcf_status edit_place(cJSON *rec, cJSON *events, void *arg)
{
	place_arg *a = arg;
	char icms[NVCF_UUID_LEN + 1], stamp[32], text[320];
	cJSON *p;

	if (strcmp(jstr(rec, "status") ? jstr(rec, "status") : "",
		   "QUEUED") != 0 ||
	    cJSON_GetObjectItemCaseSensitive(rec, "placement"))
		return NVCF_EEXISTS; /* another replica got here first */
	if ((p = cJSON_CreateObject()) == NULL)
		return nvcf__error_oom();
	nvcf__uuid_new(icms);
	now_iso(stamp);
	cJSON_AddStringToObject(p, "clusterId", a->entry->cluster_id);
	cJSON_AddStringToObject(p, "icmsRequestId", icms);
	cJSON_AddStringToObject(p, "gpu", a->entry->gpu);
	cJSON_AddStringToObject(p, "instanceType", a->entry->instance_type);
	cJSON_AddStringToObject(p, "placedAt", stamp);
	cJSON_AddItemToObject(rec, "placement", p);
	snprintf(text, sizeof(text),
		 "Placed on cluster '%s' (gpu %s, instance type %s)",
		 a->entry->cluster_id, a->entry->gpu, a->entry->instance_type);
	cJSON_AddItemToArray(events, cJSON_CreateString(text));
	return NVCF_OK;
}

static nvcf_status edit_unplace(cJSON *rec, cJSON *events, void *arg)
{
	const char *icms = arg;
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(rec, "placement");

	(void)events;
	if (jstr(p, "icmsRequestId") == NULL ||
	    strcmp(jstr(p, "icmsRequestId"), icms) != 0)
		return NVCF_EEXISTS;
	cJSON_DeleteItemFromObjectCaseSensitive(rec, "placement");
	return NVCF_OK;
}

/*
 * Places a queued task that has no placement yet: records the cluster
 * first and publishes the order second, so that two replicas never both
 * order it. A task with no room anywhere stays queued for the timer.
 */
static void place_task(nvcf__tasks *t, const char *key)
{
	nvcf_placement_spec ps = NVCF_PLACEMENT_SPEC_INIT;
	const char *clusters[64];
	nvcf_inventory *inv = NULL;
	nvcf_route *route = NULL;
	cJSON *rec = NULL;
	place_arg a = {NULL};
	const cJSON *p;
	char icms[NVCF_UUID_LEN + 1];

	if (kv_load(t->cfg.bus, key, &rec, NULL) != NVCF_OK)
		return;
	if (strcmp(jstr(rec, "status") ? jstr(rec, "status") : "",
		   "QUEUED") != 0 ||
	    cJSON_GetObjectItemCaseSensitive(rec, "placement"))
		goto out;
	if (load_inventory(t->cfg.bus, &inv) != NVCF_OK)
		goto out;
	placement_spec(cJSON_GetObjectItemCaseSensitive(rec,
							"gpuSpecification"),
		       clusters, 64, &ps);
	ps.now_ms = nvcf__now_us() / 1000;
	ps.heartbeat_timeout_ms = t->cfg.cluster_stale_ms;
	if (ps.gpu == NULL || ps.instance_type == NULL ||
	    nvcf_routing_place(inv, &ps, &route) != NVCF_OK ||
	    nvcf_route_unplaced(route) > 0 || nvcf_route_count(route) == 0) {
		nvcf_log_debug(SUB, "task %s stays queued: %s", key,
			       route ? nvcf_route_explanation(route)
				     : "no placement");
		goto out;
	}
	a.entry = nvcf_route_entry_at(route, 0);
	cJSON_Delete(rec);
	rec = NULL;
	if (task_edit(t->cfg.bus, key, edit_place, &a, &rec) != NVCF_OK ||
	    rec == NULL)
		goto out;
	p = cJSON_GetObjectItemCaseSensitive(rec, "placement");
	if (jstr(p, "clusterId") == NULL ||
	    strcmp(jstr(p, "clusterId"), a.entry->cluster_id) != 0)
		goto out;
	if (publish_create(t->cfg.bus, rec) != NVCF_OK) {
		nvcf_log_warn(SUB, "order of task %s not sent (%s); it stays "
			      "queued and is placed again",
			      key, nvcf_error_last()->message);
		snprintf(icms, sizeof(icms), "%s", jstr(p, "icmsRequestId"));
		task_edit(t->cfg.bus, key, edit_unplace, icms, NULL);
	}
out:
	cJSON_Delete(rec);
	nvcf_route_free(route);
	nvcf_inventory_free(inv);
}

/* ---- HTTP ------------------------------------------------------------ */

enum {
	TR_NONE,
	TR_TASKS,
	TR_BULK,
	TR_TASK,
	TR_CANCEL,
	TR_EVENTS,
	TR_RESULTS,
	TR_RESULT_CONTENT,
};

typedef struct tcall {
	nvcf__tasks *t;
	nvcf__http_req *req;
	const nvcf__key_record *key;
	const char *tid;
	unsigned int status;
} tcall;

static void reply_json(tcall *c, unsigned int status, cJSON *body)
{
	c->status = nvcf__api_send_json(c->req, status, body);
}

static void reply_problem(tcall *c, unsigned int status, const char *type,
			  const char *fmt, ...) NVCF_PRINTF(4, 5);

static void reply_problem(tcall *c, unsigned int status, const char *type,
			  const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	c->status = nvcf__api_send_problemv(c->req, SUB, status, type, fmt,
					    ap);
	va_end(ap);
}

static void reply_bus_error(tcall *c, nvcf_status st)
{
	c->status = nvcf__api_send_bus_error(c->req, SUB, st);
}

static void reply_not_found(tcall *c)
{
	reply_problem(c, 404, NULL, "Task id '%s': Not found in account '%s'",
		      c->tid, c->key->nca_id);
}

/* The TaskDto of a record: the record minus what only the platform uses. */
static cJSON *task_dto(const cJSON *rec)
{
	cJSON *dto = cJSON_Duplicate(rec, true);

	cJSON_DeleteItemFromObjectCaseSensitive(dto, "placement");
	cJSON_DeleteItemFromObjectCaseSensitive(dto, "startedAt");
	return dto;
}

static void reply_task(tcall *c, const cJSON *rec)
{
	cJSON *body = cJSON_CreateObject();

	if (body != NULL)
		cJSON_AddItemToObject(body, "task", task_dto(rec));
	reply_json(c, 200, body);
}

/* Loads the caller's task, or replies 404 or 5xx. */
static bool load_or_reply(tcall *c, char key[160], cJSON **rec)
{
	nvcf_status st;

	task_key(key, c->key->nca_id, c->tid);
	st = kv_load(c->t->cfg.bus, key, rec, NULL);
	if (st == NVCF_ENOTFOUND) {
		reply_not_found(c);
		return false;
	}
	if (st != NVCF_OK) {
		reply_bus_error(c, st);
		return false;
	}
	return true;
}

/* Reads ?limit=; replies 400 and returns false when it is malformed. */
static bool query_limit(tcall *c, int *limit)
{
	const char *v = nvcf__http_query(c->req, "limit");
	char *end;
	long n;

	*limit = DEFAULT_LIMIT;
	if (v == NULL)
		return true;
	n = strtol(v, &end, 10);
	if (*v == '\0' || *end != '\0' || !isdigit((unsigned char)*v) ||
	    n < 1 || n > MAX_LIMIT) {
		reply_problem(c, 400, NULL,
			      "Invalid limit: '%.64s': must be an integer "
			      "from 1 to %d",
			      v, MAX_LIMIT);
		return false;
	}
	*limit = (int)n;
	return true;
}

static void hex_encode(const char *s, char *out, size_t size)
{
	size_t n = 0;

	for (; *s && n + 3 <= size; s++, n += 2)
		snprintf(out + n, 3, "%02x", (unsigned char)*s);
	out[n] = '\0';
}

/* Decodes a hex cursor; false for odd length, non-hex or too long. */
static bool hex_decode(const char *hex, char *out, size_t size)
{
	size_t n = strlen(hex);

	if (n == 0 || n % 2 != 0 || n / 2 >= size)
		return false;
	for (size_t i = 0; i < n; i += 2) {
		unsigned int b;

		if (!isxdigit((unsigned char)hex[i]) ||
		    !isxdigit((unsigned char)hex[i + 1]) ||
		    sscanf(hex + i, "%2x", &b) != 1 || b == 0)
			return false;
		out[i / 2] = (char)b;
	}
	out[n / 2] = '\0';
	return true;
}

static void reply_bad_cursor(tcall *c, const char *cursor)
{
	reply_problem(c, 400, NULL, "Invalid cursor: '%.128s'", cursor);
}

/* Sort key of a task: creation time, then id, so paging is stable. */
static void order_key(const cJSON *rec, char *out, size_t size)
{
	snprintf(out, size, "%s/%s",
		 jstr(rec, "createdAt") ? jstr(rec, "createdAt") : "",
		 jstr(rec, "id") ? jstr(rec, "id") : "");
}

static int cmp_tasks(const void *a, const void *b)
{
	char ka[128], kb[128];

	order_key(*(cJSON *const *)a, ka, sizeof(ka));
	order_key(*(cJSON *const *)b, kb, sizeof(kb));
	return strcmp(ka, kb);
}

/* Every task of an account, in creation order (taken by the caller). */
static nvcf_status account_tasks(nvcf_bus *bus, const char *nca,
				 cJSON ***out, size_t *n_out)
{
	char filter[96], **keys = NULL;
	size_t n = 0, m = 0;
	cJSON **recs;
	nvcf_status st;

	*out = NULL;
	*n_out = 0;
	snprintf(filter, sizeof(filter), "%s.*", nca);
	st = nvcf_bus_kv_keys(bus, NVCF_BUCKET_TASKS, filter, &keys, &n);
	if (st != NVCF_OK)
		return st;
	if ((recs = calloc(n ? n : 1, sizeof(*recs))) == NULL) {
		nvcf_strings_free(keys, n);
		return nvcf__error_oom();
	}
	for (size_t i = 0; i < n; i++) {
		st = kv_load(bus, keys[i], &recs[m], NULL);
		if (st == NVCF_OK)
			m++;
		else if (st != NVCF_ENOTFOUND && st != NVCF_EPROTO)
			break;
		st = NVCF_OK; /* deleted since the listing, or not JSON */
	}
	nvcf_strings_free(keys, n);
	if (st != NVCF_OK) {
		for (size_t i = 0; i < m; i++)
			cJSON_Delete(recs[i]);
		free(recs);
		return st;
	}
	qsort(recs, m, sizeof(*recs), cmp_tasks);
	*out = recs;
	*n_out = m;
	return NVCF_OK;
}

static void free_recs(cJSON **recs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		cJSON_Delete(recs[i]);
	free(recs);
}

static void list_tasks(tcall *c)
{
	const char *cursor = nvcf__http_query(c->req, "cursor");
	const char *status = nvcf__http_query(c->req, "status");
	char after[CURSOR_MAX] = "", k[128], hex[2 * CURSOR_MAX];
	cJSON **recs = NULL, *body, *arr;
	size_t n = 0, i = 0;
	int limit, paged = 0;
	nvcf_status st;

	if (!query_limit(c, &limit))
		return;
	if (status != NULL && status_rank(status) < 0) {
		reply_problem(c, 400, NULL,
			      "Invalid status: '%.64s': use QUEUED, LAUNCHED, "
			      "RUNNING, COMPLETED, ERRORED, CANCELED, "
			      "EXCEEDED_MAX_RUNTIME_DURATION or "
			      "EXCEEDED_MAX_QUEUED_DURATION",
			      status);
		return;
	}
	if (cursor != NULL && (!hex_decode(cursor, after, sizeof(after)) ||
			       strchr(after, '/') == NULL)) {
		reply_bad_cursor(c, cursor);
		return;
	}
	st = account_tasks(c->t->cfg.bus, c->key->nca_id, &recs, &n);
	if (st != NVCF_OK) {
		reply_bus_error(c, st);
		return;
	}
	body = cJSON_CreateObject();
	arr = cJSON_AddArrayToObject(body, "tasks");
	if (after[0] != '\0')
		while (i < n) {
			order_key(recs[i], k, sizeof(k));
			if (strcmp(k, after) > 0)
				break;
			i++;
		}
	/* NVCT filters by status after paging, so a page may be short. */
	for (; i < n && paged < limit; i++, paged++)
		if (status == NULL || (jstr(recs[i], "status") &&
				       strcmp(jstr(recs[i], "status"),
					      status) == 0))
			cJSON_AddItemToArray(arr, task_dto(recs[i]));
	if (i < n) {
		order_key(recs[i - 1], k, sizeof(k));
		hex_encode(k, hex, sizeof(hex));
		cJSON_AddNumberToObject(body, "limit", limit);
		cJSON_AddStringToObject(body, "cursor", hex);
	}
	free_recs(recs, n);
	reply_json(c, 200, body);
}

static void create_task(tcall *c)
{
	char detail[768], key[160], tid[NVCF_UUID_LEN + 1], stamp[32];
	nvcf_placement_spec ps = NVCF_PLACEMENT_SPEC_INIT;
	const char *clusters[64], *body;
	nvcf_inventory *inv = NULL;
	cJSON *fields = NULL, *rec = NULL, *m, *recs_gs;
	cJSON **recs = NULL;
	size_t len = 0, n = 0;
	int in_flight = 0;
	bool framework = false;
	nvcf_status st;

	body = nvcf__http_body(c->req, &len);
	st = nvcf__task_validate(body, len, &fields, detail, sizeof(detail),
				 &framework);
	if (st == NVCF_EINVAL) {
		reply_problem(c, 400, framework ? "about:blank" : NULL, "%s",
			      detail);
		return;
	}
	if (st != NVCF_OK) {
		reply_bus_error(c, st);
		return;
	}
	/* Whether any cluster could ever run it, whatever its load. */
	if ((st = load_inventory(c->t->cfg.bus, &inv)) != NVCF_OK) {
		cJSON_Delete(fields);
		reply_bus_error(c, st);
		return;
	}
	recs_gs = cJSON_GetObjectItemCaseSensitive(fields, "gpuSpecification");
	placement_spec(recs_gs, clusters, 64, &ps);
	if (nvcf_inventory_count(inv) == 0) {
		reply_problem(c, 400, NULL,
			      "Invalid request: no cluster is registered, so "
			      "gpu '%s' cannot run; start a cluster agent "
			      "(nvca)",
			      ps.gpu);
		goto out;
	}
	if (nvcf_inventory_validate_spec(inv, &ps, detail, sizeof(detail)) !=
	    NVCF_OK) {
		reply_problem(c, 400, NULL,
			      "Invalid request: gpuSpecification: %s", detail);
		goto out;
	}
	st = account_tasks(c->t->cfg.bus, c->key->nca_id, &recs, &n);
	if (st != NVCF_OK) {
		reply_bus_error(c, st);
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (!nvcf__task_status_terminal(jstr(recs[i], "status")))
			in_flight++;
	free_recs(recs, n);
	if (in_flight >= c->t->cfg.max_in_flight) {
		reply_problem(c, 400, NULL,
			      "Reached or exceeded the limit for max number "
			      "of in-flight Tasks (%d in account '%s'); wait "
			      "for some to end or cancel them",
			      c->t->cfg.max_in_flight, c->key->nca_id);
		goto out;
	}

	nvcf__uuid_new(tid);
	now_iso(stamp);
	rec = cJSON_CreateObject();
	cJSON_AddStringToObject(rec, "id", tid);
	cJSON_AddStringToObject(rec, "ncaId", c->key->nca_id);
	m = cJSON_DetachItemFromObjectCaseSensitive(fields, "name");
	cJSON_AddItemToObject(rec, "name", m);
	cJSON_AddStringToObject(rec, "status", "QUEUED");
	while ((m = fields->child) != NULL) {
		char *name = m->string;

		m->string = NULL;
		cJSON_DetachItemViaPointer(fields, m);
		cJSON_AddItemToObject(rec, name, m);
		free(name);
	}
	cJSON_AddStringToObject(rec, "lastUpdatedAt", stamp);
	cJSON_AddStringToObject(rec, "createdAt", stamp);
	task_key(key, c->key->nca_id, tid);
	if ((st = kv_store(c->t->cfg.bus, key, rec, true, 0)) != NVCF_OK) {
		reply_bus_error(c, st);
		goto out;
	}
	nvcf_log_info(SUB, "task %s (%s) queued for account %s", tid,
		      jstr(rec, "name"), c->key->nca_id);
	emit_event(c->t->cfg.bus, c->key->nca_id, tid,
		   "Task created with status 'QUEUED'");
	place_task(c->t, key);
	/* Reply with what is stored now, placement stamps included. */
	{
		cJSON *now = NULL;

		if (kv_load(c->t->cfg.bus, key, &now, NULL) == NVCF_OK) {
			cJSON_Delete(rec);
			rec = now;
		}
	}
	reply_task(c, rec);
out:
	cJSON_Delete(rec);
	cJSON_Delete(fields);
	nvcf_inventory_free(inv);
}

static void bulk_tasks(tcall *c)
{
	const cJSON *ids, *e;
	cJSON *req, *body, *arr;
	const char *text;
	size_t len = 0;

	text = nvcf__http_body(c->req, &len);
	req = text ? cJSON_ParseWithLength(text, len) : NULL;
	ids = cJSON_GetObjectItemCaseSensitive(req, "taskIds");
	if (!cJSON_IsArray(ids) || cJSON_GetArraySize(ids) == 0 ||
	    cJSON_GetArraySize(ids) > MAX_LIMIT) {
		cJSON_Delete(req);
		reply_problem(c, 400, "about:blank",
			      "Validation failed: field=taskIds, message=must "
			      "be a non-empty array of at most %d task ids",
			      MAX_LIMIT);
		return;
	}
	cJSON_ArrayForEach(e, ids) {
		if (!cJSON_IsString(e) || !nvcf__uuid_valid(e->valuestring)) {
			char *p = cJSON_PrintUnformatted(e);

			reply_problem(c, 400, "about:blank",
				      "Validation failed: field=taskIds, "
				      "rejected=%.64s, message=must be a UUID",
				      p ? p : "?");
			free(p);
			cJSON_Delete(req);
			return;
		}
	}
	body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "ncaId", c->key->nca_id);
	arr = cJSON_AddArrayToObject(body, "tasks");
	cJSON_ArrayForEach(e, ids) {
		char key[160];
		cJSON *rec, *o;
		nvcf_status st;

		task_key(key, c->key->nca_id, e->valuestring);
		st = kv_load(c->t->cfg.bus, key, &rec, NULL);
		if (st == NVCF_ENOTFOUND || st == NVCF_EPROTO)
			continue;
		if (st != NVCF_OK) {
			cJSON_Delete(body);
			cJSON_Delete(req);
			reply_bus_error(c, st);
			return;
		}
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "id", e->valuestring);
		if (jstr(rec, "name"))
			cJSON_AddStringToObject(o, "name", jstr(rec, "name"));
		if (jstr(rec, "status"))
			cJSON_AddStringToObject(o, "status",
						jstr(rec, "status"));
		cJSON_AddItemToArray(arr, o);
		cJSON_Delete(rec);
	}
	cJSON_Delete(req);
	reply_json(c, 200, body);
}

static void get_task(tcall *c)
{
	char key[160];
	cJSON *rec;

	if (!load_or_reply(c, key, &rec))
		return;
	reply_task(c, rec);
	cJSON_Delete(rec);
}

static void cancel_task(tcall *c)
{
	status_arg a = {"CANCELED", NULL, ""};
	char key[160];
	cJSON *rec = NULL;
	nvcf_status st;

	task_key(key, c->key->nca_id, c->tid);
	st = task_edit(c->t->cfg.bus, key, edit_status, &a, &rec);
	if (st == NVCF_ENOTFOUND) {
		reply_not_found(c);
		return;
	}
	if (st == NVCF_EPERM) {
		reply_problem(c, 400, NULL,
			      "Cannot cancel a Task with '%s' terminal status",
			      a.seen);
		return;
	}
	if (st != NVCF_OK) {
		reply_bus_error(c, st);
		return;
	}
	nvcf_log_info(SUB, "task %s canceled (was %s)", c->tid, a.seen);
	publish_terminate(c->t->cfg.bus, rec, "cancel");
	reply_task(c, rec);
	cJSON_Delete(rec);
}

static void delete_task(tcall *c)
{
	char key[160], subject[96];
	cJSON *rec;
	nvcf_status st;

	if (!load_or_reply(c, key, &rec))
		return;
	/* NVCT deletes a live task too, stopping its instance first. */
	if (!nvcf__task_status_terminal(jstr(rec, "status")))
		publish_terminate(c->t->cfg.bus, rec, "delete");
	cJSON_Delete(rec);
	if ((st = nvcf_bus_kv_delete(c->t->cfg.bus, NVCF_BUCKET_TASKS,
				     key)) != NVCF_OK) {
		reply_bus_error(c, st);
		return;
	}
	snprintf(subject, sizeof(subject), "nvct.evt.%s", c->tid);
	purge_subject(c->t->cfg.bus, NVCF_STREAM_TASK_EVENTS, subject);
	/* The results and the chunks of their content. */
	snprintf(subject, sizeof(subject), "nvct.res.%s.>", c->tid);
	purge_subject(c->t->cfg.bus, NVCF_STREAM_TASK_RESULTS, subject);
	nvcf_log_info(SUB, "task %s deleted", c->tid);
	c->status = 204;
	nvcf__http_send(c->req, 204, nvcf__http_response(NULL, "", 0));
}

/* GET .../events and .../results: one stream page per call. */
static void list_stream(tcall *c, const char *stream, const char *filter,
			const char *name)
{
	const char *cursor = nvcf__http_query(c->req, "cursor");
	char key[160], dec[32], hex[64];
	uint64_t seq = 1, next = 0;
	cJSON *rec, *body, *arr;
	int limit;
	nvcf_status st;

	if (!query_limit(c, &limit))
		return;
	if (cursor != NULL) {
		char *end;

		if (!hex_decode(cursor, dec, sizeof(dec)) ||
		    (seq = strtoull(dec, &end, 10)) == 0 || *end != '\0' ||
		    !isdigit((unsigned char)dec[0])) {
			reply_bad_cursor(c, cursor);
			return;
		}
	}
	if (!load_or_reply(c, key, &rec))
		return;
	cJSON_Delete(rec);
	body = cJSON_CreateObject();
	arr = cJSON_AddArrayToObject(body, name);
	st = stream_page(c->t->cfg.bus, stream, filter, seq, limit, arr,
			 &next);
	if (st != NVCF_OK) {
		cJSON_Delete(body);
		reply_bus_error(c, st);
		return;
	}
	if (next != 0) {
		snprintf(dec, sizeof(dec), "%llu", (unsigned long long)next);
		hex_encode(dec, hex, sizeof(hex));
		cJSON_AddNumberToObject(body, "limit", limit);
		cJSON_AddStringToObject(body, "cursor", hex);
	}
	reply_json(c, 200, body);
}

/* Decodes the base64 of @p b64 into a new buffer; false when invalid. */
static bool base64_decode(const char *b64, uint8_t **out, size_t *len_out)
{
	size_t n = strlen(b64), pad = 0;
	uint8_t *buf;
	int len;

	if (n % 4 != 0)
		return false;
	if (n > 0 && b64[n - 1] == '=')
		pad++;
	if (n > 1 && b64[n - 2] == '=')
		pad++;
	if ((buf = malloc(n / 4 * 3 + 1)) == NULL)
		return false;
	len = EVP_DecodeBlock(buf, (const unsigned char *)b64, (int)n);
	if (len < 0 || (size_t)len < pad) {
		free(buf);
		return false;
	}
	*out = buf;
	*len_out = (size_t)len - pad;
	return true;
}

static bool hex_digest(const char *hex, uint8_t out[NVCF__SHA256_LEN])
{
	if (hex == NULL || strlen(hex) != 2 * NVCF__SHA256_LEN)
		return false;
	for (size_t i = 0; i < NVCF__SHA256_LEN; i++) {
		unsigned int v;

		if (!isxdigit((unsigned char)hex[2 * i]) ||
		    !isxdigit((unsigned char)hex[2 * i + 1]) ||
		    sscanf(hex + 2 * i, "%2x", &v) != 1)
			return false;
		out[i] = (uint8_t)v;
	}
	return true;
}

/*
 * Reads the stored content of result @p rid of the caller's task into
 * @p out. NVCF_ENOTFOUND when the result is unknown or keeps no content,
 * with the reason in the error.
 */
static nvcf_status load_content(tcall *c, const char *rid, uint8_t **out,
				size_t *len_out)
{
	char subject[160], prefix[160], what[128];
	const cJSON *meta, *b64, *chunks;
	uint8_t digest[NVCF__SHA256_LEN];
	natsMsg *m = NULL, **msgs = NULL;
	jsDirectGetMsgOptions o;
	nvcf_status st;
	cJSON *res;
	natsStatus ns;
	double size;

	snprintf(subject, sizeof(subject), "nvct.res.%s.%s", c->tid, rid);
	jsDirectGetMsgOptions_Init(&o);
	o.LastBySubject = subject;
	ns = js_DirectGetMsg(&m, nvcf__bus_js(c->t->cfg.bus),
			     NVCF_STREAM_TASK_RESULTS, NULL, &o);
	if (ns == NATS_NOT_FOUND)
		return nvcf__error_set(NVCF_ENOTFOUND, "task %s has no result "
				       "%s", c->tid, rid);
	if (ns != NATS_OK)
		return nvcf__bus_error(ns, 0, "reading result", subject);
	res = cJSON_ParseWithLength(natsMsg_GetData(m),
				    (size_t)natsMsg_GetDataLength(m));
	natsMsg_Destroy(m);
	meta = cJSON_GetObjectItemCaseSensitive(res, "metadata");
	b64 = cJSON_GetObjectItemCaseSensitive(meta, "contentBase64");
	chunks = cJSON_GetObjectItemCaseSensitive(meta, "contentChunks");
	size = cJSON_GetNumberValue(
		cJSON_GetObjectItemCaseSensitive(meta, "sizeBytes"));
	if (cJSON_IsString(b64)) {
		st = base64_decode(b64->valuestring, out, len_out)
			     ? NVCF_OK
			     : nvcf__error_set(NVCF_EPROTO, "result %s has "
					       "invalid base64 content", rid);
	} else if (cJSON_IsNumber(chunks) && chunks->valuedouble >= 1 &&
		   chunks->valuedouble <= UINT32_MAX && size >= 0 &&
		   hex_digest(jstr(meta, "sha256"), digest)) {
		snprintf(prefix, sizeof(prefix), "nvct.res.%s.%s", c->tid,
			 rid);
		snprintf(what, sizeof(what), "content of result %s", rid);
		st = nvcf__chunks_fetch(nvcf__bus_js(c->t->cfg.bus),
					NVCF_STREAM_TASK_RESULTS, prefix,
					(uint32_t)chunks->valuedouble,
					(uint64_t)size, digest, sizeof(digest),
					what, &msgs);
		if (st == NVCF_OK)
			st = nvcf__chunks_join(msgs,
					       (uint32_t)chunks->valuedouble,
					       (uint64_t)size, out);
		if (st == NVCF_OK)
			*len_out = (size_t)size;
		nvcf__chunks_free(msgs, msgs ? (uint32_t)chunks->valuedouble
					     : 0);
	} else {
		st = nvcf__error_set(NVCF_ENOTFOUND, "result %s keeps no "
				     "content: its file is at %s on the "
				     "agent's host",
				     rid, jstr(meta, "location")
					     ? jstr(meta, "location")
					     : "(unknown)");
	}
	cJSON_Delete(res);
	return st;
}

/* GET .../results/{resultId}/content: the bytes of the result's file. */
static void result_content(tcall *c, const char *rid)
{
	uint8_t *data = NULL;
	size_t len = 0;
	char key[160];
	nvcf_status st;
	cJSON *rec;

	if (!nvcf__uuid_valid(rid)) {
		reply_problem(c, 400, "about:blank",
			      "Invalid resultId '%.64s': must be a UUID", rid);
		return;
	}
	if (!load_or_reply(c, key, &rec))
		return;
	cJSON_Delete(rec);
	st = load_content(c, rid, &data, &len);
	if (st == NVCF_ENOTFOUND) {
		reply_problem(c, 404, NULL, "%s", nvcf_error_last()->message);
		return;
	}
	if (st != NVCF_OK) {
		nvcf_log_warn(SUB, "task %s: %s", c->tid,
			      nvcf_error_last()->message);
		reply_bus_error(c, st);
		return;
	}
	c->status = 200;
	nvcf__http_send(c->req, 200,
			nvcf__http_response("application/octet-stream", data,
					    len));
	free(data);
}

int nvcf__tasks_match(char *const *segs, int nsegs)
{
	if (nsegs < 3 || strcmp(segs[0], "v1") != 0 ||
	    strcmp(segs[1], "nvct") != 0 || strcmp(segs[2], "tasks") != 0)
		return TR_NONE;
	if (nsegs == 3)
		return TR_TASKS;
	if (nsegs == 4)
		return strcmp(segs[3], "bulk") == 0 ? TR_BULK : TR_TASK;
	if (nsegs == 5 && strcmp(segs[4], "cancel") == 0)
		return TR_CANCEL;
	if (nsegs == 5 && strcmp(segs[4], "events") == 0)
		return TR_EVENTS;
	if (nsegs == 5 && strcmp(segs[4], "results") == 0)
		return TR_RESULTS;
	if (nsegs == 7 && strcmp(segs[4], "results") == 0 &&
	    strcmp(segs[6], "content") == 0)
		return TR_RESULT_CONTENT;
	return TR_NONE;
}

const char *nvcf__tasks_allowed(int route)
{
	switch (route) {
	case TR_TASKS:
		return "GET, POST";
	case TR_BULK:
	case TR_CANCEL:
		return "POST";
	case TR_TASK:
		return "GET, DELETE";
	default:
		return "GET";
	}
}

uint32_t nvcf__tasks_scope(int route, const char *method)
{
	bool get = strcmp(method, "GET") == 0;

	switch (route) {
	case TR_TASKS:
		return get ? NVCF_SCOPE_LIST_TASKS : NVCF_SCOPE_LAUNCH_TASK;
	case TR_BULK:
		return NVCF_SCOPE_LIST_TASKS;
	case TR_TASK:
		return get ? NVCF_SCOPE_TASK_DETAILS : NVCF_SCOPE_DELETE_TASK;
	case TR_CANCEL:
		return NVCF_SCOPE_CANCEL_TASK;
	case TR_EVENTS:
		return NVCF_SCOPE_LIST_EVENTS;
	case TR_RESULTS:
	case TR_RESULT_CONTENT:
		return NVCF_SCOPE_LIST_RESULTS;
	default:
		return 0;
	}
}

unsigned int nvcf__tasks_dispatch(nvcf__tasks *t, nvcf__http_req *req,
				  const nvcf__key_record *key, int route,
				  char *const *segs, int nsegs)
{
	tcall c = {t, req, key, nsegs > 3 ? segs[3] : NULL, 0};
	bool get = strcmp(nvcf__http_method(req), "GET") == 0;
	char filter[96];

	if (route != TR_TASKS && route != TR_BULK &&
	    !nvcf__uuid_valid(c.tid)) {
		reply_problem(&c, 400, "about:blank",
			      "Invalid taskId '%.64s': must be a UUID",
			      c.tid ? c.tid : "");
		return c.status;
	}
	switch (route) {
	case TR_TASKS:
		if (get)
			list_tasks(&c);
		else
			create_task(&c);
		break;
	case TR_BULK:
		bulk_tasks(&c);
		break;
	case TR_TASK:
		if (get)
			get_task(&c);
		else
			delete_task(&c);
		break;
	case TR_CANCEL:
		cancel_task(&c);
		break;
	case TR_EVENTS:
		snprintf(filter, sizeof(filter), "nvct.evt.%s", c.tid);
		list_stream(&c, NVCF_STREAM_TASK_EVENTS, filter, "events");
		break;
	case TR_RESULTS:
		snprintf(filter, sizeof(filter), "nvct.res.%s.*", c.tid);
		list_stream(&c, NVCF_STREAM_TASK_RESULTS, filter, "results");
		break;
	case TR_RESULT_CONTENT:
		result_content(&c, segs[5]);
		break;
	default:
		reply_problem(&c, 404, NULL, "No endpoint %s %s",
			      nvcf__http_method(req), nvcf__http_path(req));
		break;
	}
	return c.status;
}

/* ---- timer ----------------------------------------------------------- */

static void expire(nvcf__tasks *t, const char *key, const char *to,
		   const char *only_from, const char *why)
{
	status_arg a = {to, only_from, ""};
	cJSON *rec = NULL;

	if (task_edit(t->cfg.bus, key, edit_status, &a, &rec) != NVCF_OK ||
	    rec == NULL)
		return;
	if (jstr(rec, "status") && strcmp(jstr(rec, "status"), to) == 0) {
		nvcf_log_info(SUB, "task %s: %s -> %s (%s)", key, a.seen, to,
			      why);
		publish_terminate(t->cfg.bus, rec, why);
	}
	cJSON_Delete(rec);
}

static void sweep_one(nvcf__tasks *t, const char *key, int64_t now)
{
	const char *status;
	cJSON *rec;

	if (kv_load(t->cfg.bus, key, &rec, NULL) != NVCF_OK)
		return;
	status = jstr(rec, "status");
	if (status && strcmp(status, "QUEUED") == 0) {
		int64_t created = iso_us(jstr(rec, "createdAt"));
		int64_t max_ms = duration_ms(
			jstr(rec, "maxQueuedDuration"),
			duration_ms(DEFAULT_MAX_QUEUED, 0));

		if (created > 0 && now >= created + max_ms * 1000)
			expire(t, key, "EXCEEDED_MAX_QUEUED_DURATION",
			       "QUEUED", "maxQueuedDuration elapsed");
		else if (!cJSON_GetObjectItemCaseSensitive(rec, "placement"))
			place_task(t, key);
	} else if (status && status_rank(status) > 0 &&
		   status_rank(status) < 3 &&
		   jstr(rec, "maxRuntimeDuration")) {
		/* A backstop: the agent stops the task itself on time. */
		int64_t started = iso_us(jstr(rec, "startedAt"));
		int64_t run = duration_ms(jstr(rec, "maxRuntimeDuration"), 0);
		int64_t grace = duration_ms(
			jstr(rec, "terminationGracePeriodDuration"), 0);

		if (started > 0 && now >= started + (run + grace) * 1000)
			expire(t, key, "EXCEEDED_MAX_RUNTIME_DURATION", NULL,
			       "maxRuntimeDuration elapsed");
	}
	cJSON_Delete(rec);
}

void nvcf__tasks_sweep(nvcf__tasks *t)
{
	char **keys = NULL;
	size_t n = 0;

	if (t == NULL ||
	    nvcf_bus_kv_keys(t->cfg.bus, NVCF_BUCKET_TASKS, NULL, &keys, &n) !=
		    NVCF_OK)
		return;
	for (size_t i = 0; i < n && !atomic_load(&t->stopping); i++)
		sweep_one(t, keys[i], nvcf__now_us());
	nvcf_strings_free(keys, n);
}

static void *timer_main(void *arg)
{
	nvcf__tasks *t = arg;

	while (!atomic_load(&t->stopping)) {
		int64_t until = nvcf__mono_us() + t->cfg.tick_ms * 1000;

		nvcf__tasks_sweep(t);
		while (!atomic_load(&t->stopping) && nvcf__mono_us() < until)
			usleep(50000);
	}
	return NULL;
}

/* ---- agent side ------------------------------------------------------ */

static nvcf_status upsert_instance(cJSON *rec, const char *json)
{
	cJSON *inst = cJSON_Parse(json), *arr, *e;
	const char *id = jstr(inst, "instanceId");

	if (id == NULL) {
		cJSON_Delete(inst);
		return nvcf__error_set(NVCF_EINVAL,
				       "instance report is not a JSON object "
				       "with instanceId: %.80s",
				       json);
	}
	arr = cJSON_GetObjectItemCaseSensitive(rec, "instances");
	if (!cJSON_IsArray(arr)) {
		cJSON_DeleteItemFromObjectCaseSensitive(rec, "instances");
		arr = cJSON_AddArrayToObject(rec, "instances");
	}
	cJSON_ArrayForEach(e, arr) {
		const char *eid = jstr(e, "instanceId");

		if (eid && strcmp(eid, id) == 0) {
			cJSON_ReplaceItemViaPointer(arr, e, inst);
			return NVCF_OK;
		}
	}
	cJSON_AddItemToArray(arr, inst);
	return NVCF_OK;
}

static nvcf_status edit_report(cJSON *rec, cJSON *events, void *arg)
{
	const nvcf__task_report_info *r = arg;
	const char *cur = jstr(rec, "status"), *to = r->status;
	const cJSON *pc = cJSON_GetObjectItemCaseSensitive(rec,
							   "percentComplete");
	char stamp[32], text[320];
	nvcf_status st;

	if (nvcf__task_status_terminal(cur))
		return nvcf__error_set(NVCF_EPERM,
				       "task %s is already %s; stop it",
				       jstr(rec, "id"), cur);
	if (r->percent_complete >= 0) {
		if (r->percent_complete > 100 ||
		    (cJSON_IsNumber(pc) &&
		     r->percent_complete < pc->valueint))
			return nvcf__error_set(
				NVCF_EINVAL,
				"percentComplete %d of task %s must be 0 to "
				"100 and never go down (it is %d)",
				r->percent_complete, jstr(rec, "id"),
				cJSON_IsNumber(pc) ? pc->valueint : 0);
		if (!cJSON_IsNumber(pc) || pc->valueint != r->percent_complete) {
			snprintf(text, sizeof(text), "Progress %d%%",
				 r->percent_complete);
			cJSON_AddItemToArray(events, cJSON_CreateString(text));
		}
		set_item(rec, "percentComplete",
			 cJSON_CreateNumber(r->percent_complete));
		/* The progress file at 100 is what completes a task. */
		if (r->percent_complete == 100 && to == NULL)
			to = "COMPLETED";
	}
	if (r->instance_json &&
	    (st = upsert_instance(rec, r->instance_json)) != NVCF_OK)
		return st;
	if (r->message)
		cJSON_AddItemToArray(events, cJSON_CreateString(r->message));
	if (to != NULL && (!cur || strcmp(cur, to) != 0)) {
		if ((st = move_status(rec, events, to)) != NVCF_OK)
			return st;
		if (strcmp(to, "ERRORED") == 0) {
			const cJSON *p = cJSON_GetObjectItemCaseSensitive(
				rec, "placement");
			cJSON *hi = cJSON_CreateObject();

			if (jstr(p, "gpu"))
				cJSON_AddStringToObject(hi, "gpu",
							jstr(p, "gpu"));
			if (jstr(p, "clusterId"))
				cJSON_AddStringToObject(hi, "backend",
							jstr(p, "clusterId"));
			if (jstr(p, "instanceType"))
				cJSON_AddStringToObject(hi, "instanceType",
							jstr(p,
							     "instanceType"));
			cJSON_AddStringToObject(hi, "error",
						r->error ? r->error
							 : "task failed");
			set_item(rec, "healthInfo", hi);
		}
	}
	now_iso(stamp);
	set_str(rec, "lastHeartbeatAt", stamp);
	return NVCF_OK;
}

nvcf_status nvcf__task_report(nvcf_bus *bus, const char *nca_id,
			      const char *task_id,
			      const nvcf__task_report_info *info)
{
	char key[160];

	if (bus == NULL || info == NULL || !nvcf__nca_id_valid(nca_id) ||
	    !nvcf__uuid_valid(task_id))
		return nvcf__error_set(NVCF_EINVAL,
				       "task report needs a bus, an info, an "
				       "account id and a task UUID (got "
				       "'%.64s')",
				       task_id ? task_id : "(null)");
	if (info->status && status_rank(info->status) < 0)
		return nvcf__error_set(NVCF_EINVAL,
				       "task status '%.64s' is unknown; use "
				       "LAUNCHED, RUNNING or a terminal status",
				       info->status);
	task_key(key, nca_id, task_id);
	return task_edit(bus, key, edit_report, (void *)info, NULL);
}

static bool result_name_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > 190)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("!-_.*'()", s[i]))
			return false;
	return true;
}

nvcf_status nvcf__task_add_result(nvcf_bus *bus, const char *nca_id,
				  const char *task_id, const char *name,
				  const char *metadata_json,
				  char result_id_out[NVCF_UUID_LEN + 1])
{
	return nvcf__task_add_result_content(bus, nca_id, task_id, name,
					     metadata_json, NULL, 0,
					     result_id_out);
}

/*
 * Stores @p len bytes of @p content as chunks on "{prefix}.{n}" of the
 * results stream and records their count in @p meta.
 */
static nvcf_status store_content(nvcf_bus *bus, const char *prefix,
				 const void *content, size_t len,
				 cJSON *meta)
{
	natsConnection *nc = nvcf__bus_conn(bus);
	uint32_t count = 0;
	nvcf_status st;

	if ((st = ensure_streams(bus)) != NVCF_OK)
		return st;
	st = nvcf__chunks_store(nvcf__bus_js(bus), NVCF_STREAM_TASK_RESULTS,
				prefix, content, len,
				nvcf__chunk_size(natsConnection_GetMaxPayload(
					nc)),
				&count);
	if (st == NVCF_OK)
		cJSON_AddNumberToObject(meta, "contentChunks", count);
	return st;
}

nvcf_status nvcf__task_add_result_content(
	nvcf_bus *bus, const char *nca_id, const char *task_id,
	const char *name, const char *metadata_json, const void *content,
	size_t content_len, char result_id_out[NVCF_UUID_LEN + 1])
{
	char subject[128], id[NVCF_UUID_LEN + 1], stamp[32];
	cJSON *r, *meta = NULL;
	nvcf_status st;

	if (bus == NULL || !nvcf__nca_id_valid(nca_id) ||
	    !nvcf__uuid_valid(task_id))
		return nvcf__error_set(NVCF_EINVAL,
				       "task result needs a bus, an account id "
				       "and a task UUID (got '%.64s')",
				       task_id ? task_id : "(null)");
	if (!result_name_valid(name))
		return nvcf__error_set(NVCF_EINVAL,
				       "result name '%.200s' must be 1 to 190 "
				       "letters, digits or !-_.*'()",
				       name ? name : "(null)");
	if (metadata_json != NULL &&
	    !cJSON_IsObject(meta = cJSON_Parse(metadata_json))) {
		cJSON_Delete(meta);
		return nvcf__error_set(NVCF_EINVAL,
				       "metadata of result '%s' must be a JSON "
				       "object",
				       name);
	}
	if ((meta == NULL && (meta = cJSON_CreateObject()) == NULL) ||
	    (r = cJSON_CreateObject()) == NULL) {
		cJSON_Delete(meta);
		return nvcf__error_oom();
	}
	nvcf__uuid_new(id);
	now_iso(stamp);
	snprintf(subject, sizeof(subject), "nvct.res.%s.%s", task_id, id);
	if (content != NULL && content_len > 0 &&
	    (st = store_content(bus, subject, content, content_len, meta))) {
		cJSON_Delete(meta);
		cJSON_Delete(r);
		return st;
	}
	cJSON_AddStringToObject(r, "resultId", id);
	cJSON_AddStringToObject(r, "taskId", task_id);
	cJSON_AddStringToObject(r, "ncaId", nca_id);
	cJSON_AddStringToObject(r, "name", name);
	cJSON_AddItemToObject(r, "metadata", meta);
	cJSON_AddStringToObject(r, "createdAt", stamp);
	st = publish_json(bus, subject, r);
	cJSON_Delete(r);
	if (st != NVCF_OK && content != NULL && content_len > 0)
		nvcf__chunks_purge(nvcf__bus_js(bus), NVCF_STREAM_TASK_RESULTS,
				   subject);
	if (st == NVCF_OK && result_id_out)
		memcpy(result_id_out, id, sizeof(id));
	return st;
}

/* ---- object ---------------------------------------------------------- */

nvcf_status nvcf__tasks_new(nvcf__tasks **out, const nvcf__tasks_config *cfg)
{
	nvcf__tasks *t;
	nvcf_status st;

	if (out == NULL || cfg == NULL || cfg->bus == NULL)
		return nvcf__error_set(NVCF_EINVAL,
				       "nvcf__tasks_new: NULL out, config or "
				       "bus");
	*out = NULL;
	if ((st = ensure_streams(cfg->bus)) != NVCF_OK)
		return st;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return nvcf__error_oom();
	t->cfg = *cfg;
	if (t->cfg.tick_ms <= 0)
		t->cfg.tick_ms = 1000;
	if (t->cfg.max_in_flight <= 0)
		t->cfg.max_in_flight = 50;
	if (t->cfg.cluster_stale_ms <= 0)
		t->cfg.cluster_stale_ms = NVCF_HEARTBEAT_TIMEOUT_MS_DEFAULT;
	*out = t;
	return NVCF_OK;
}

nvcf_status nvcf__tasks_start(nvcf__tasks *t)
{
	if (t == NULL || t->running)
		return NVCF_OK;
	atomic_store(&t->stopping, false);
	if (pthread_create(&t->timer, NULL, timer_main, t) != 0)
		return nvcf__error_set(NVCF_ENOMEM,
				       "cannot start the task timer thread");
	t->running = true;
	return NVCF_OK;
}

void nvcf__tasks_stop(nvcf__tasks *t)
{
	if (t == NULL || !t->running)
		return;
	atomic_store(&t->stopping, true);
	pthread_join(t->timer, NULL);
	t->running = false;
}

void nvcf__tasks_free(nvcf__tasks *t)
{
	if (t == NULL)
		return;
	nvcf__tasks_stop(t);
	free(t);
}
