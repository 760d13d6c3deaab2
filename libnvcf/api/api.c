/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The control-plane REST service. Every request reads function and
 * deployment records from KV directly, with no cache, so that any number of
 * replicas agree (API keys alone are cached, for 3 s). Writes compare KV
 * revisions, so a replica's update never silently overwrites another's.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "nvcf/api.h"
#include "nvcf/bus.h"
#include "nvcf/routing.h"

#include "api/api_internal.h"
#include "api/tasks.h"
#include "auth/keys.h"
#include "bus/bus_internal.h"
#include "http/http.h"
#include "nvcf.pb-c.h"

#define SUB "api"
#define MAX_SEGS 8
#define KEY_CACHE_SIZE 64
#define KEY_CACHE_US (3 * 1000000LL)
#define RMW_TRIES 8

typedef struct key_cache_entry {
	char hash[65];
	nvcf__key_record rec;
	int64_t expires_us;
} key_cache_entry;

struct nvcf_api {
	nvcf_api_options opts;
	char *nats_url;
	char *listen_address;
	char *region;
	nvcf_bus *bus;
	nvcf__http_server *http;
	nvcf__tasks *tasks;
	pthread_t watcher;
	bool watching;
	atomic_bool stopping;
	atomic_uint_fast64_t by_code[600];
	pthread_mutex_t cache_lock;
	key_cache_entry cache[KEY_CACHE_SIZE];
};

/* One request being handled. */
typedef struct call {
	nvcf_api *api;
	nvcf__http_req *req;
	nvcf__key_record key;
	char *segs[MAX_SEGS];
	int nsegs;
	int task_route;
	char pathbuf[512];
} call;

/* ---- responses ------------------------------------------------------- */

static void count_status(nvcf_api *api, unsigned int status)
{
	if (status < 600)
		atomic_fetch_add(&api->by_code[status], 1);
}

unsigned int nvcf__api_send_json(nvcf__http_req *req, unsigned int status,
				 cJSON *body)
{
	char *text = body ? cJSON_PrintUnformatted(body) : NULL;

	cJSON_Delete(body);
	if (text == NULL) {
		nvcf__http_send_problem(req, 500, NULL, "out of memory");
		return 500;
	}
	nvcf__http_send_json(req, status, text);
	free(text);
	return status;
}

static void reply_json(call *c, unsigned int status, cJSON *body)
{
	count_status(c->api, nvcf__api_send_json(c->req, status, body));
}

/* Wraps @p item (taken) in {"name": item} and sends it with 200. */
static void reply_wrapped(call *c, const char *name, cJSON *item)
{
	cJSON *body = cJSON_CreateObject();

	if (body == NULL) {
		cJSON_Delete(item);
		reply_json(c, 500, NULL);
		return;
	}
	cJSON_AddItemToObject(body, name, item);
	reply_json(c, 200, body);
}

static void reply_problem_type(call *c, unsigned int status,
			       const char *type, const char *fmt, ...)
	NVCF_PRINTF(4, 5);

unsigned int nvcf__api_send_problemv(nvcf__http_req *req,
				     const char *subsystem,
				     unsigned int status, const char *type,
				     const char *fmt, va_list ap)
{
	char detail[1024];

	vsnprintf(detail, sizeof(detail), fmt, ap);
	if (status >= 500)
		nvcf_log_error(subsystem, "%s %s -> %u: %s",
			       nvcf__http_method(req), nvcf__http_path(req),
			       status, detail);
	else
		nvcf_log_info(subsystem, "%s %s -> %u: %s",
			      nvcf__http_method(req), nvcf__http_path(req),
			      status, detail);
	nvcf__http_send_problem(req, status, type, "%s", detail);
	return status;
}

static unsigned int send_problem(nvcf__http_req *req, const char *subsystem,
				 unsigned int status, const char *fmt, ...)
	NVCF_PRINTF(4, 5);

static unsigned int send_problem(nvcf__http_req *req, const char *subsystem,
				 unsigned int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	nvcf__api_send_problemv(req, subsystem, status, NULL, fmt, ap);
	va_end(ap);
	return status;
}

unsigned int nvcf__api_send_bus_error(nvcf__http_req *req,
				      const char *subsystem, nvcf_status st)
{
	const char *msg = nvcf_error_last()->message;

	if (st == NVCF_EUNAVAILABLE || st == NVCF_ETIMEDOUT)
		return send_problem(req, subsystem, 503,
				    "control-plane storage unavailable: %s",
				    msg);
	return send_problem(req, subsystem, 500, "%s", msg);
}

static void reply_problem_type(call *c, unsigned int status,
			       const char *type, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	count_status(c->api, nvcf__api_send_problemv(c->req, SUB, status,
						     type, fmt, ap));
	va_end(ap);
}

#define reply_problem(c, status, ...)                                         \
	reply_problem_type(c, status, NULL, __VA_ARGS__)

/* Sends the error of a failed bus call: 503 when NATS is down, else 500. */
static void reply_bus_error(call *c, nvcf_status st)
{
	count_status(c->api, nvcf__api_send_bus_error(c->req, SUB, st));
}

static void reply_401(call *c, const char *why)
{
	struct MHD_Response *r;

	nvcf_log_info(SUB, "%s %s -> 401: %s", nvcf__http_method(c->req),
		      nvcf__http_path(c->req), why);
	r = nvcf__http_problem_response(401, NULL, why,
					nvcf__http_path(c->req));
	if (r != NULL)
		MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
	count_status(c->api, 401);
	nvcf__http_send(c->req, 401, r);
}

/* ---- KV helpers ------------------------------------------------------ */

static nvcf_status kv_load(nvcf_api *api, const char *bucket,
			   const char *key, cJSON **out, uint64_t *rev)
{
	char *text = NULL;
	size_t len = 0;
	nvcf_status st;

	*out = NULL;
	st = nvcf_bus_kv_get(api->bus, bucket, key, &text, &len, rev);
	if (st != NVCF_OK)
		return st;
	*out = cJSON_ParseWithLength(text, len);
	nvcf_free(text);
	if (*out == NULL)
		return nvcf__error_set(NVCF_EPROTO,
				       "KV %s key '%s' holds no JSON object",
				       bucket, key);
	return NVCF_OK;
}

static nvcf_status kv_store(nvcf_api *api, const char *bucket,
			    const char *key, const cJSON *value, bool create,
			    uint64_t rev)
{
	char *text = cJSON_PrintUnformatted(value);
	nvcf_status st;

	if (text == NULL)
		return nvcf__error_oom();
	if (create)
		st = nvcf_bus_kv_create(api->bus, bucket, key, text,
					strlen(text), NULL);
	else if (rev != 0)
		st = nvcf_bus_kv_update(api->bus, bucket, key, text,
					strlen(text), rev, NULL);
	else
		st = nvcf_bus_kv_put(api->bus, bucket, key, text, strlen(text),
				     NULL);
	free(text);
	return st;
}

static const char *jstr(const cJSON *obj, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int jint(const cJSON *obj, const char *name, int dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

	return cJSON_IsNumber(v) ? v->valueint : dflt;
}

static void set_str(cJSON *obj, const char *name, const char *value)
{
	cJSON *v = cJSON_CreateString(value);

	if (v == NULL)
		return;
	if (cJSON_GetObjectItemCaseSensitive(obj, name))
		cJSON_ReplaceItemInObjectCaseSensitive(obj, name, v);
	else
		cJSON_AddItemToObject(obj, name, v);
}

static void set_num(cJSON *obj, const char *name, double value)
{
	cJSON *v = cJSON_CreateNumber(value);

	if (v == NULL)
		return;
	if (cJSON_GetObjectItemCaseSensitive(obj, name))
		cJSON_ReplaceItemInObjectCaseSensitive(obj, name, v);
	else
		cJSON_AddItemToObject(obj, name, v);
}

static void now_iso(char out[32])
{
	nvcf__iso8601(nvcf__now_us(), out);
}

/* Lists keys matching @p filter and loads their records, in key order. */
static nvcf_status kv_load_all(nvcf_api *api, const char *bucket,
			       const char *filter, cJSON **arr_out)
{
	char **keys = NULL;
	size_t n = 0;
	nvcf_status st;
	cJSON *arr;

	*arr_out = NULL;
	st = nvcf_bus_kv_keys(api->bus, bucket, filter, &keys, &n);
	if (st != NVCF_OK)
		return st;
	if ((arr = cJSON_CreateArray()) == NULL) {
		nvcf_strings_free(keys, n);
		return nvcf__error_oom();
	}
	for (size_t i = 0; i < n; i++) {
		cJSON *rec = NULL;

		st = kv_load(api, bucket, keys[i], &rec, NULL);
		if (st == NVCF_ENOTFOUND || st == NVCF_EPROTO)
			continue; /* deleted since the listing, or not JSON */
		if (st != NVCF_OK) {
			cJSON_Delete(arr);
			nvcf_strings_free(keys, n);
			return st;
		}
		cJSON_AddItemToArray(arr, rec);
	}
	nvcf_strings_free(keys, n);
	*arr_out = arr;
	return NVCF_OK;
}

static void fn_key(char out[256], const char *nca, const char *fid,
		   const char *vid)
{
	snprintf(out, 256, "%s.%s.%s", nca, fid, vid);
}

/*
 * Sets the status of a function record, read-modify-write. When
 * @p only_if is not NULL the record changes only while its status is
 * still that one, and when @p unless is not NULL never while it is that
 * one: the instance watcher passes "INACTIVE" so that a status computed
 * from a deployment read just before an undeploy cannot revive it.
 */
static nvcf_status fn_set_status(nvcf_api *api, const char *key,
				 const char *status, const char *only_if,
				 const char *unless)
{
	for (int i = 0; i < RMW_TRIES; i++) {
		cJSON *rec;
		uint64_t rev;
		nvcf_status st;
		const char *cur;

		st = kv_load(api, NVCF_BUCKET_FUNCTIONS, key, &rec, &rev);
		if (st != NVCF_OK)
			return st;
		cur = jstr(rec, "status");
		if ((cur && strcmp(cur, status) == 0) ||
		    (only_if && (!cur || strcmp(cur, only_if) != 0)) ||
		    (unless && cur && strcmp(cur, unless) == 0)) {
			cJSON_Delete(rec);
			return NVCF_OK;
		}
		set_str(rec, "status", status);
		st = kv_store(api, NVCF_BUCKET_FUNCTIONS, key, rec, false, rev);
		cJSON_Delete(rec);
		if (st != NVCF_ECONFLICT)
			return st;
	}
	return nvcf__error_set(NVCF_ECONFLICT,
			       "function record '%s' kept changing; retry",
			       key);
}

/* ---- clusters -------------------------------------------------------- */

static int64_t heartbeat_us(const cJSON *cluster)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(cluster,
							  "heartbeatAt");
	struct tm tm = {0};
	double frac = 0;
	int n;

	if (cJSON_IsNumber(v)) {
		double x = v->valuedouble;

		if (x > 1e14)
			return (int64_t)x;          /* microseconds */
		if (x > 1e11)
			return (int64_t)(x * 1000); /* milliseconds */
		return (int64_t)(x * 1000000);      /* seconds */
	}
	if (!cJSON_IsString(v))
		return 0;
	n = sscanf(v->valuestring, "%d-%d-%dT%d:%d:%d%lf", &tm.tm_year,
		   &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
		   &tm.tm_sec, &frac);
	if (n < 6)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	if (frac < 0 || frac >= 1)
		frac = 0;
	return (int64_t)timegm(&tm) * 1000000 + (int64_t)(frac * 1e6);
}

/* Loads the clusters that are healthy now. */
static nvcf_status load_clusters(nvcf_api *api, cJSON **out)
{
	int64_t now = nvcf__now_us();
	cJSON *all, *c, *next;
	nvcf_status st;

	st = kv_load_all(api, NVCF_BUCKET_CLUSTERS, NULL, &all);
	if (st != NVCF_OK)
		return st;
	for (c = all->child; c != NULL; c = next) {
		const char *health = jstr(c, "health");
		int64_t age = now - heartbeat_us(c);

		next = c->next;
		if (!jstr(c, "clusterId") ||
		    (health && strcmp(health, "healthy") != 0) ||
		    age > api->opts.cluster_stale_ms * 1000)
			cJSON_Delete(cJSON_DetachItemViaPointer(all, c));
	}
	*out = all;
	return NVCF_OK;
}

/*
 * Loads every cluster record into an inventory, and with @p live_only
 * drops those whose heartbeat is older than cluster_stale_ms or that
 * report themselves unhealthy. A record the inventory rejects is skipped
 * with a warning, so one bad agent cannot hide the others.
 */
static nvcf_status load_inventory(nvcf_api *api, bool live_only,
				  nvcf_inventory **out)
{
	nvcf_inventory *inv = NULL;
	char **keys = NULL;
	size_t n = 0;
	nvcf_status st;

	*out = NULL;
	if ((st = nvcf_inventory_new(&inv)) != NVCF_OK)
		return st;
	st = nvcf_bus_kv_keys(api->bus, NVCF_BUCKET_CLUSTERS, NULL, &keys, &n);
	for (size_t i = 0; st == NVCF_OK && i < n; i++) {
		char *text = NULL;
		size_t len = 0;
		nvcf_status rs;

		rs = nvcf_bus_kv_get(api->bus, NVCF_BUCKET_CLUSTERS, keys[i],
				     &text, &len, NULL);
		if (rs == NVCF_ENOTFOUND)
			continue; /* deleted since the listing */
		if (rs != NVCF_OK) {
			st = rs;
			break;
		}
		rs = nvcf_inventory_add_cluster_json(inv, text);
		if (rs == NVCF_ENOMEM)
			st = rs;
		else if (rs != NVCF_OK)
			nvcf_log_warn(SUB, "skipping cluster record '%s': %s",
				      keys[i], nvcf_error_last()->message);
		nvcf_free(text);
	}
	nvcf_strings_free(keys, n);
	if (st == NVCF_OK && live_only)
		st = nvcf_inventory_remove_unhealthy(
			inv, nvcf__now_us() / 1000, api->opts.cluster_stale_ms,
			NULL);
	if (st != NVCF_OK) {
		nvcf_inventory_free(inv);
		return st;
	}
	*out = inv;
	return NVCF_OK;
}

static bool in_string_array(const cJSON *arr, const char *s)
{
	const cJSON *e;

	cJSON_ArrayForEach(e, arr) {
		if (cJSON_IsString(e) && strcasecmp(e->valuestring, s) == 0)
			return true;
	}
	return false;
}

static const cJSON *find_named(const cJSON *arr, const char *name)
{
	const cJSON *e;

	cJSON_ArrayForEach(e, arr) {
		const char *n = jstr(e, "name");

		if (n && strcasecmp(n, name) == 0)
			return e;
	}
	return NULL;
}

static void list_append(nvcf__buf *b, const char *s)
{
	if (s == NULL || (b->data && strstr(b->data, s)))
		return;
	if (b->len > 0)
		nvcf__buf_append(b, ", ", 2);
	nvcf__buf_append(b, s, strlen(s));
}

/*
 * Chooses the healthy cluster with the most free GPUs of the spec's type
 * among those that offer its GPU and instance type and pass its backend,
 * clusters and regions filters. Rewrites the spec's gpu and instanceType
 * in the cluster's spelling. On failure, writes into @p detail the
 * rejected value and the values that are offered.
 */
static const cJSON *choose_cluster(const cJSON *clusters, cJSON *spec,
				   char *detail, size_t size)
{
	const char *gpu = jstr(spec, "gpu"), *itype = jstr(spec, "instanceType");
	const char *backend = jstr(spec, "backend");
	const cJSON *want_clusters = cJSON_GetObjectItemCaseSensitive(
		spec, "clusters");
	const cJSON *regions = cJSON_GetObjectItemCaseSensitive(spec,
								"regions");
	const cJSON *c, *best = NULL, *best_gpu = NULL, *best_it = NULL;
	nvcf__buf gpus = {0}, types = {0};
	bool gpu_seen = false, type_seen = false;
	double best_free = -1e18;

	cJSON_ArrayForEach(c, clusters) {
		const cJSON *g, *gl = cJSON_GetObjectItemCaseSensitive(c,
								       "gpus");
		const cJSON *it;
		double free_gpus;

		cJSON_ArrayForEach(g, gl)
			list_append(&gpus, jstr(g, "name"));
		if ((g = find_named(gl, gpu)) == NULL)
			continue;
		gpu_seen = true;
		cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(
					       g, "instanceTypes"))
			list_append(&types, jstr(it, "name"));
		it = find_named(cJSON_GetObjectItemCaseSensitive(
					g, "instanceTypes"),
				itype);
		if (it == NULL)
			continue;
		type_seen = true;
		if (backend && (!jstr(c, "group") ||
				strcasecmp(jstr(c, "group"), backend) != 0))
			continue;
		if (cJSON_GetArraySize(want_clusters) > 0 &&
		    !in_string_array(want_clusters, jstr(c, "clusterId")) &&
		    !(jstr(c, "name") &&
		      in_string_array(want_clusters, jstr(c, "name"))))
			continue;
		if (cJSON_GetArraySize(regions) > 0 &&
		    !(jstr(c, "region") &&
		      in_string_array(regions, jstr(c, "region"))))
			continue;
		free_gpus = jint(g, "capacity", 0) - jint(g, "allocated", 0);
		if (best == NULL || free_gpus > best_free) {
			best = c;
			best_gpu = g;
			best_it = it;
			best_free = free_gpus;
		}
	}
	if (best != NULL) {
		set_str(spec, "gpu", jstr(best_gpu, "name"));
		set_str(spec, "instanceType", jstr(best_it, "name"));
	} else if (cJSON_GetArraySize(clusters) == 0) {
		snprintf(detail, size,
			 "Invalid request: no healthy cluster is registered, "
			 "so no GPU can be deployed; start a cluster agent "
			 "(nvca)");
	} else if (!gpu_seen) {
		snprintf(detail, size,
			 "Invalid request: gpu '%s' is not offered by any "
			 "healthy cluster; offered GPUs: %s",
			 gpu, gpus.data ? gpus.data : "none");
	} else if (!type_seen) {
		snprintf(detail, size,
			 "Invalid request: instanceType '%s' is not offered "
			 "for gpu '%s'; offered instance types: %s",
			 itype, gpu, types.data ? types.data : "none");
	} else {
		snprintf(detail, size,
			 "Invalid request: no healthy cluster offers gpu '%s' "
			 "with instanceType '%s' within the given backend, "
			 "clusters and regions",
			 gpu, itype);
	}
	nvcf__buf_free(&gpus);
	nvcf__buf_free(&types);
	return best;
}

/* ---- orders to cluster agents ---------------------------------------- */

static nvcf_status publish_create(nvcf_api *api, const cJSON *fn,
				  const cJSON *dep, const cJSON *spec,
				  const char *cluster_id, int count,
				  const char *icms_id)
{
	Nvcf__CreateInstances m = NVCF__CREATE_INSTANCES__INIT;
	char subject[512], *fn_json, *itype;
	uint8_t *buf;
	size_t len;
	nvcf_status st;

	fn_json = cJSON_PrintUnformatted(fn);
	itype = nvcf__strdup(jstr(spec, "instanceType"));
	if (fn_json == NULL || itype == NULL) {
		free(fn_json);
		free(itype);
		return nvcf__error_oom();
	}
	for (char *p = itype; *p; p++)
		if (*p == '.')
			*p = '|';
	snprintf(subject, sizeof(subject), "Create.NVCA.Function.%s.%s.%s",
		 cluster_id, jstr(spec, "gpu"), itype);
	m.icms_request_id = (char *)icms_id;
	m.kind = NVCF__WORKLOAD_KIND__WORKLOAD_KIND_FUNCTION;
	m.nca_id = (char *)jstr(fn, "ncaId");
	m.function_id = (char *)jstr(fn, "id");
	m.version_id = (char *)jstr(fn, "versionId");
	m.deployment_id = (char *)jstr(dep, "deploymentId");
	m.gpu_specification_id = (char *)jstr(spec, "gpuSpecificationId");
	m.cluster_id = (char *)cluster_id;
	m.gpu = (char *)jstr(spec, "gpu");
	m.instance_type = (char *)jstr(spec, "instanceType");
	m.instance_count = count;
	m.max_request_concurrency = jint(spec, "maxRequestConcurrency", 1);
	m.function_json = fn_json;
	m.region = api->region;
	m.time_us = nvcf__now_us();
	len = nvcf__create_instances__get_packed_size(&m);
	if ((buf = malloc(len ? len : 1)) == NULL) {
		st = nvcf__error_oom();
	} else {
		nvcf__create_instances__pack(&m, buf);
		st = nvcf_bus_publish(api->bus, subject, buf, len, icms_id);
		free(buf);
	}
	if (st == NVCF_OK)
		nvcf_log_info(SUB,
			      "ordered %d instance(s) of version %s on "
			      "cluster %s (%s)",
			      count, m.version_id, cluster_id, icms_id);
	free(fn_json);
	free(itype);
	return st;
}

static nvcf_status publish_terminate(nvcf_api *api, const char *cluster_id,
				     const char *vid, char **ids, size_t n,
				     const char *reason)
{
	Nvcf__TerminateInstances m = NVCF__TERMINATE_INSTANCES__INIT;
	char subject[256];
	uint8_t *buf;
	size_t len;
	nvcf_status st;

	snprintf(subject, sizeof(subject), "Terminate.NVCA.%s", cluster_id);
	m.cluster_id = (char *)cluster_id;
	m.version_id = (char *)vid;
	m.n_instance_ids = n;
	m.instance_ids = ids;
	m.reason = (char *)reason;
	m.time_us = nvcf__now_us();
	len = nvcf__terminate_instances__get_packed_size(&m);
	if ((buf = malloc(len ? len : 1)) == NULL)
		return nvcf__error_oom();
	nvcf__terminate_instances__pack(&m, buf);
	st = nvcf_bus_publish(api->bus, subject, buf, len, NULL);
	free(buf);
	if (st == NVCF_OK)
		nvcf_log_info(SUB,
			      "ordered %s of %zu instance(s) of version %s on "
			      "cluster %s",
			      reason, n, vid, cluster_id);
	return st;
}

/* ---- status from instances ------------------------------------------- */

static bool placement_has(const cJSON *placements, const char *icms)
{
	const cJSON *p;

	cJSON_ArrayForEach(p, placements) {
		const char *id = jstr(p, "icmsRequestId");

		if (id && icms && strcmp(id, icms) == 0)
			return true;
	}
	return false;
}

/* Instances of a version that belong to its current deployment. */
static nvcf_status deployment_instances(nvcf_api *api, const cJSON *dep,
					const char *vid, cJSON **out)
{
	const char *since = jstr(dep, "createdAt");
	const cJSON *placements = cJSON_GetObjectItemCaseSensitive(
		dep, "placements");
	char filter[128];
	cJSON *all, *i, *next;
	nvcf_status st;

	snprintf(filter, sizeof(filter), "%s.*", vid);
	if ((st = kv_load_all(api, NVCF_BUCKET_INSTANCES, filter, &all)))
		return st;
	for (i = all->child; i != NULL; i = next) {
		const char *created = jstr(i, "instanceCreatedAt");

		next = i->next;
		if (placement_has(placements, jstr(i, "icmsRequestId")) ||
		    (since && created && strcmp(created, since) >= 0))
			continue;
		cJSON_Delete(cJSON_DetachItemViaPointer(all, i));
	}
	*out = all;
	return NVCF_OK;
}

static int spec_min_sum(const cJSON *dep)
{
	const cJSON *s;
	int sum = 0;

	cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(
				      dep, "deploymentSpecifications"))
		sum += jint(s, "minInstances", 0);
	return sum;
}

/* NVCF's lifecycle rules (docs/internals.md "Who writes what"). */
static const char *next_status(const char *cur, int min, int ready,
			       int errored, int live)
{
	int target = min > 0 ? min : 1;

	if (strcmp(cur, "DEPLOYING") == 0) {
		if (ready >= target)
			return "ACTIVE";
		if (live > 0 && errored == live)
			return "ERROR";
		return cur;
	}
	if (strcmp(cur, "ERROR") == 0)
		return ready >= target ? "ACTIVE" : cur;
	if (strcmp(cur, "ACTIVE") == 0 || strcmp(cur, "DEGRADING") == 0 ||
	    strcmp(cur, "DEGRADED") == 0) {
		if (min == 0 || ready >= min)
			return "ACTIVE";
		if (ready > 0)
			return "DEGRADING";
		return "DEGRADED";
	}
	return cur;
}

/*
 * healthInfo of a deployment: its errored instances, then the instances
 * a cluster refused, as the autoscaler notes them in its placements.
 */
static cJSON *health_info(const cJSON *instances, const cJSON *placements)
{
	cJSON *arr = NULL;
	const cJSON *i, *p;

	cJSON_ArrayForEach(p, placements) {
		cJSON *h;

		if (jstr(p, "error") == NULL)
			continue;
		if (arr == NULL && (arr = cJSON_CreateArray()) == NULL)
			return NULL;
		if ((h = cJSON_CreateObject()) == NULL)
			break;
		cJSON_AddItemToArray(arr, h);
		if (jstr(p, "icmsRequestId"))
			cJSON_AddStringToObject(h, "icmsRequestId",
						jstr(p, "icmsRequestId"));
		if (jstr(p, "clusterId"))
			cJSON_AddStringToObject(h, "backend",
						jstr(p, "clusterId"));
		cJSON_AddStringToObject(h, "error", jstr(p, "error"));
	}

	cJSON_ArrayForEach(i, instances) {
		const char *s = jstr(i, "instanceStatus");
		cJSON *h;

		if (!s || strcmp(s, "ERRORED") != 0)
			continue;
		if (arr == NULL && (arr = cJSON_CreateArray()) == NULL)
			return NULL;
		if ((h = cJSON_CreateObject()) == NULL)
			break;
		cJSON_AddItemToArray(arr, h);
		if (jstr(i, "icmsRequestId"))
			cJSON_AddStringToObject(h, "icmsRequestId",
						jstr(i, "icmsRequestId"));
		if (jstr(i, "gpu"))
			cJSON_AddStringToObject(h, "gpu", jstr(i, "gpu"));
		if (jstr(i, "clusterId"))
			cJSON_AddStringToObject(h, "backend",
						jstr(i, "clusterId"));
		if (jstr(i, "instanceType"))
			cJSON_AddStringToObject(h, "instanceType",
						jstr(i, "instanceType"));
		cJSON_AddStringToObject(h, "error",
					jstr(i, "error") ? jstr(i, "error")
							 : "instance failed");
	}
	return arr;
}

/* Recomputes one version's status from its instances and stores it. */
static void recompute(nvcf_api *api, const char *nca, const char *fid,
		      const char *vid)
{
	char key[256];

	fn_key(key, nca, fid, vid);
	for (int t = 0; t < RMW_TRIES; t++) {
		cJSON *dep = NULL, *inst = NULL, *hi, *old_hi, *i;
		int ready = 0, errored = 0, live = 0;
		const char *cur, *next;
		char *a = NULL, *b = NULL, stamp[32], status[16];
		bool same_hi;
		uint64_t rev;
		nvcf_status st;

		st = kv_load(api, NVCF_BUCKET_DEPLOYMENTS, key, &dep, &rev);
		if (st != NVCF_OK)
			return; /* undeployed, so there is no status to move */
		if (deployment_instances(api, dep, vid, &inst) != NVCF_OK) {
			cJSON_Delete(dep);
			return;
		}
		cJSON_ArrayForEach(i, inst) {
			const char *s = jstr(i, "instanceStatus");

			if (s == NULL || strcmp(s, "TERMINATED") == 0)
				continue;
			live++;
			if (strcmp(s, "RUNNING") == 0 ||
			    strcmp(s, "ACTIVE") == 0)
				ready++;
			else if (strcmp(s, "ERRORED") == 0)
				errored++;
		}
		cur = jstr(dep, "functionStatus");
		cur = cur ? cur : "DEPLOYING";
		next = next_status(cur, spec_min_sum(dep), ready, errored,
				   live);
		hi = health_info(inst, cJSON_GetObjectItemCaseSensitive(
						     dep, "placements"));
		cJSON_Delete(inst);
		old_hi = cJSON_GetObjectItemCaseSensitive(dep, "healthInfo");
		a = old_hi ? cJSON_PrintUnformatted(old_hi) : NULL;
		b = hi ? cJSON_PrintUnformatted(hi) : NULL;
		same_hi = (!a && !b) || (a && b && strcmp(a, b) == 0);
		free(a);
		free(b);
		/* cur and next may point into dep: copy before freeing it. */
		snprintf(status, sizeof(status), "%s", next);
		if (strcmp(cur, next) == 0 && same_hi) {
			cJSON_Delete(hi);
			cJSON_Delete(dep);
			fn_set_status(api, key, status, NULL, "INACTIVE");
			return;
		}
		nvcf_log_info(SUB,
			      "version %s: %s -> %s (%d ready, %d errored, "
			      "%d live)",
			      vid, cur, next, ready, errored, live);
		{
			set_str(dep, "functionStatus", status);
			cJSON_DeleteItemFromObjectCaseSensitive(dep,
								"healthInfo");
			if (hi != NULL)
				cJSON_AddItemToObject(dep, "healthInfo", hi);
			now_iso(stamp);
			set_str(dep, "lastUpdatedAt", stamp);
			st = kv_store(api, NVCF_BUCKET_DEPLOYMENTS, key, dep,
				      false, rev);
			cJSON_Delete(dep);
			if (st == NVCF_ECONFLICT)
				continue;
			if (st != NVCF_OK) {
				nvcf_log_warn(SUB,
					      "storing status of version %s: "
					      "%s",
					      vid, nvcf_error_last()->message);
				return;
			}
			if (fn_set_status(api, key, status, NULL,
					  "INACTIVE") != NVCF_OK)
				nvcf_log_warn(SUB,
					      "storing status of function "
					      "%s: %s",
					      key, nvcf_error_last()->message);
			return;
		}
	}
}

static void *watch_instances(void *arg)
{
	nvcf_api *api = arg;
	kvWatcher *w = NULL;

	while (!atomic_load(&api->stopping)) {
		kvEntry *e = NULL;
		natsStatus s;

		if (w == NULL) {
			kvWatchOptions o;
			kvStore *kv;

			kvWatchOptions_Init(&o);
			if (nvcf__bus_kv(api->bus, NVCF_BUCKET_INSTANCES,
					 &kv) != NVCF_OK ||
			    kvStore_WatchAll(&w, kv, &o) != NATS_OK) {
				nvcf_log_warn(SUB,
					      "cannot watch %s; retrying in "
					      "1 s",
					      NVCF_BUCKET_INSTANCES);
				w = NULL;
				usleep(1000000);
				continue;
			}
		}
		s = kvWatcher_Next(&e, w, 500);
		if (s == NATS_TIMEOUT)
			continue;
		if (s != NATS_OK) {
			nvcf_log_warn(SUB,
				      "watch of %s ended (%s); restarting it",
				      NVCF_BUCKET_INSTANCES,
				      natsStatus_GetText(s));
			kvWatcher_Destroy(w);
			w = NULL;
			usleep(200000);
			continue;
		}
		if (e == NULL)
			continue; /* end of the initial replay */
		if (kvEntry_Operation(e) == kvOp_Put) {
			cJSON *rec = cJSON_ParseWithLength(
				kvEntry_ValueString(e), kvEntry_ValueLen(e));
			const char *nca = jstr(rec, "ncaId"),
				   *fid = jstr(rec, "functionId"),
				   *vid = jstr(rec, "functionVersionId");

			if (nca && fid && vid && nvcf__uuid_valid(fid) &&
			    nvcf__uuid_valid(vid) && nvcf__nca_id_valid(nca))
				recompute(api, nca, fid, vid);
			cJSON_Delete(rec);
		}
		kvEntry_Destroy(e);
	}
	kvWatcher_Destroy(w);
	return NULL;
}

/* ---- authentication -------------------------------------------------- */

static nvcf_status authenticate(nvcf_api *api, const char *token,
				nvcf__key_record *out)
{
	char hash[65];
	int64_t now = nvcf__mono_us();
	size_t slot;
	nvcf_status st;

	if ((st = nvcf__key_hash(token, hash)) != NVCF_OK)
		return st;
	slot = strtoul(hash + 56, NULL, 16) % KEY_CACHE_SIZE;
	pthread_mutex_lock(&api->cache_lock);
	if (strcmp(api->cache[slot].hash, hash) == 0 &&
	    api->cache[slot].expires_us > now) {
		*out = api->cache[slot].rec;
		pthread_mutex_unlock(&api->cache_lock);
		return NVCF_OK;
	}
	pthread_mutex_unlock(&api->cache_lock);
	if ((st = nvcf__key_lookup(api->bus, token, out)) != NVCF_OK)
		return st;
	pthread_mutex_lock(&api->cache_lock);
	memcpy(api->cache[slot].hash, hash, sizeof(hash));
	api->cache[slot].rec = *out;
	api->cache[slot].expires_us = now + KEY_CACHE_US;
	pthread_mutex_unlock(&api->cache_lock);
	return NVCF_OK;
}

/* ---- function handlers ----------------------------------------------- */

static void reply_fn_not_found(call *c, const char *fid, const char *vid)
{
	if (vid)
		reply_problem(c, 404,
			      "Function id '%s', version '%s': Not found in "
			      "account '%s'",
			      fid, vid, c->key.nca_id);
	else
		reply_problem(c, 404,
			      "Function id '%s': Not found in account '%s'",
			      fid, c->key.nca_id);
}

/*
 * Reads the caller's function version into *fn_out and its KV key into
 * key[256]. On failure the 404 or bus error is already sent and the
 * caller only returns.
 */
static bool load_version_or_reply(call *c, const char *fid, const char *vid,
				  char key[256], cJSON **fn_out)
{
	nvcf_status st;

	fn_key(key, c->key.nca_id, fid, vid);
	st = kv_load(c->api, NVCF_BUCKET_FUNCTIONS, key, fn_out, NULL);
	if (st == NVCF_ENOTFOUND) {
		reply_fn_not_found(c, fid, vid);
		return false;
	}
	if (st != NVCF_OK) {
		reply_bus_error(c, st);
		return false;
	}
	return true;
}

/* Distinct function ids of the account; @p fids_out may be NULL. */
static nvcf_status account_functions(nvcf_api *api, const char *nca,
				     cJSON **fids_out, int *count_out)
{
	char filter[128], **keys = NULL;
	size_t n = 0;
	nvcf_status st;
	cJSON *ids = cJSON_CreateArray();

	if (ids == NULL)
		return nvcf__error_oom();
	snprintf(filter, sizeof(filter), "%s.>", nca);
	st = nvcf_bus_kv_keys(api->bus, NVCF_BUCKET_FUNCTIONS, filter, &keys,
			      &n);
	if (st != NVCF_OK) {
		cJSON_Delete(ids);
		return st;
	}
	for (size_t i = 0; i < n; i++) {
		char fid[NVCF_UUID_LEN + 1];
		const char *p = keys[i] + strlen(nca) + 1;

		if (strlen(p) < NVCF_UUID_LEN)
			continue;
		memcpy(fid, p, NVCF_UUID_LEN);
		fid[NVCF_UUID_LEN] = '\0';
		if (!in_string_array(ids, fid))
			cJSON_AddItemToArray(ids, cJSON_CreateString(fid));
	}
	nvcf_strings_free(keys, n);
	*count_out = cJSON_GetArraySize(ids);
	if (fids_out)
		*fids_out = ids;
	else
		cJSON_Delete(ids);
	return NVCF_OK;
}

static void create_function(call *c, const char *fid_in)
{
	char detail[NVCF_API_DETAIL_MAX], fid[NVCF_UUID_LEN + 1],
		vid[NVCF_UUID_LEN + 1], key[256], stamp[32];
	const char *body;
	size_t len;
	bool framework = false;
	cJSON *dto = NULL, *rec;
	nvcf_status st;
	int count;

	body = nvcf__http_body(c->req, &len);
	st = nvcf__api_validate_function(body, len, &dto, detail,
					 sizeof(detail), &framework);
	if (st == NVCF_ENOMEM) {
		reply_problem(c, 500, "out of memory");
		return;
	}
	if (st != NVCF_OK) {
		reply_problem_type(c, 400, framework ? "about:blank" : NULL,
				   "%s", detail);
		return;
	}
	if (fid_in != NULL) {
		char filter[128], **keys = NULL;
		size_t n = 0;

		snprintf(filter, sizeof(filter), "%s.%s.*", c->key.nca_id,
			 fid_in);
		st = nvcf_bus_kv_keys(c->api->bus, NVCF_BUCKET_FUNCTIONS,
				      filter, &keys, &n);
		nvcf_strings_free(keys, n);
		if (st != NVCF_OK || n == 0) {
			cJSON_Delete(dto);
			if (st != NVCF_OK)
				reply_bus_error(c, st);
			else
				reply_fn_not_found(c, fid_in, NULL);
			return;
		}
		snprintf(fid, sizeof(fid), "%s", fid_in);
	} else {
		st = account_functions(c->api, c->key.nca_id, NULL, &count);
		if (st != NVCF_OK) {
			cJSON_Delete(dto);
			reply_bus_error(c, st);
			return;
		}
		if (count >= c->api->opts.max_functions_per_account) {
			cJSON_Delete(dto);
			reply_problem(c, 400,
				      "Account '%s': Reached or exceeded the "
				      "max limit for the number of functions "
				      "allowed: %d; delete a function first",
				      c->key.nca_id,
				      c->api->opts.max_functions_per_account);
			return;
		}
		if ((st = nvcf__uuid_new(fid)) != NVCF_OK) {
			cJSON_Delete(dto);
			reply_problem(c, 500, "cannot make an id");
			return;
		}
	}
	if ((st = nvcf__uuid_new(vid)) != NVCF_OK ||
	    (rec = cJSON_CreateObject()) == NULL) {
		cJSON_Delete(dto);
		reply_problem(c, 500, "cannot make an id");
		return;
	}
	cJSON_AddStringToObject(rec, "id", fid);
	cJSON_AddStringToObject(rec, "ncaId", c->key.nca_id);
	cJSON_AddStringToObject(rec, "versionId", vid);
	while (dto->child != NULL)
		cJSON_AddItemToArray(rec, cJSON_DetachItemViaPointer(
						  dto, dto->child));
	cJSON_Delete(dto);
	cJSON_AddStringToObject(rec, "status", "INACTIVE");
	now_iso(stamp);
	cJSON_AddStringToObject(rec, "createdAt", stamp);
	fn_key(key, c->key.nca_id, fid, vid);
	st = kv_store(c->api, NVCF_BUCKET_FUNCTIONS, key, rec, true, 0);
	if (st != NVCF_OK) {
		cJSON_Delete(rec);
		reply_bus_error(c, st);
		return;
	}
	nvcf_log_info(SUB, "account %s created function %s version %s",
		      c->key.nca_id, fid, vid);
	reply_wrapped(c, "function", rec);
}

static void list_functions(call *c, const char *fid, bool ids_only)
{
	char filter[128];
	cJSON *arr, *f;
	nvcf_status st;
	int count;

	if (ids_only) {
		st = account_functions(c->api, c->key.nca_id, &arr, &count);
		if (st != NVCF_OK) {
			reply_bus_error(c, st);
			return;
		}
		reply_wrapped(c, "functionIds", arr);
		return;
	}
	if (fid)
		snprintf(filter, sizeof(filter), "%s.%s.*", c->key.nca_id,
			 fid);
	else
		snprintf(filter, sizeof(filter), "%s.>", c->key.nca_id);
	if ((st = kv_load_all(c->api, NVCF_BUCKET_FUNCTIONS, filter, &arr))) {
		reply_bus_error(c, st);
		return;
	}
	if (fid && cJSON_GetArraySize(arr) == 0) {
		cJSON_Delete(arr);
		reply_fn_not_found(c, fid, NULL);
		return;
	}
	cJSON_ArrayForEach(f, arr)
		cJSON_DeleteItemFromObjectCaseSensitive(f, "secrets");
	reply_wrapped(c, "functions", arr);
}

static cJSON *instance_dto(const cJSON *i)
{
	static const char *const fields[] = {
		"instanceId", "functionId", "functionVersionId",
		"instanceType", "instanceStatus", "icmsRequestId", "ncaId",
		"gpu", "location", "instanceCreatedAt", "instanceUpdatedAt",
		NULL};
	cJSON *o = cJSON_CreateObject();

	if (o == NULL)
		return NULL;
	for (size_t k = 0; fields[k] != NULL; k++)
		if (jstr(i, fields[k]))
			cJSON_AddStringToObject(o, fields[k],
						jstr(i, fields[k]));
	if (jstr(i, "clusterId"))
		cJSON_AddStringToObject(o, "backend", jstr(i, "clusterId"));
	return o;
}

static void get_version(call *c, const char *fid, const char *vid)
{
	char key[256], filter[128];
	cJSON *rec, *inst, *arr = NULL;
	const cJSON *i;

	if (!load_version_or_reply(c, fid, vid, key, &rec))
		return;
	snprintf(filter, sizeof(filter), "%s.*", vid);
	if (kv_load_all(c->api, NVCF_BUCKET_INSTANCES, filter, &inst) ==
	    NVCF_OK) {
		cJSON_ArrayForEach(i, inst) {
			const char *s = jstr(i, "instanceStatus");

			if (!s || strcmp(s, "TERMINATED") == 0 ||
			    !jstr(i, "ncaId") ||
			    strcmp(jstr(i, "ncaId"), c->key.nca_id) != 0)
				continue;
			if (arr == NULL)
				arr = cJSON_AddArrayToObject(rec,
							     "activeInstances");
			if (arr)
				cJSON_AddItemToArray(arr, instance_dto(i));
		}
		cJSON_Delete(inst);
	}
	reply_wrapped(c, "function", rec);
}

/* ---- deployments ----------------------------------------------------- */

/* Strips what only the control plane reads from a deployment record. */
static cJSON *deployment_dto(cJSON *dep)
{
	cJSON_DeleteItemFromObjectCaseSensitive(dep, "placements");
	return dep;
}

/*
 * Undeploys one version: orders every placement's instances stopped,
 * deletes the queue and the deployment, and sets the version INACTIVE.
 * NVCF_ENOTFOUND when the version has no deployment.
 */
static nvcf_status undeploy(nvcf_api *api, const char *nca, const char *fid,
			    const char *vid)
{
	char key[256], idx[128];
	cJSON *dep;
	const cJSON *p;
	nvcf_status st;
	uint64_t rev;

	fn_key(key, nca, fid, vid);
	if ((st = kv_load(api, NVCF_BUCKET_DEPLOYMENTS, key, &dep, &rev)))
		return st;
	cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(dep,
							       "placements")) {
		const char *cid = jstr(p, "clusterId");
		const cJSON *q;
		bool dup = false;

		for (q = cJSON_GetObjectItemCaseSensitive(dep, "placements")
				 ->child;
		     q != p; q = q->next)
			if (jstr(q, "clusterId") && cid &&
			    strcmp(jstr(q, "clusterId"), cid) == 0)
				dup = true;
		if (cid == NULL || dup)
			continue;
		st = publish_terminate(api, cid, vid, NULL, 0, "undeploy");
		if (st != NVCF_OK) {
			cJSON_Delete(dep);
			return st;
		}
	}
	st = nvcf_bus_delete_queue(api->bus, vid);
	if (st != NVCF_OK && st != NVCF_ENOTFOUND)
		nvcf_log_warn(SUB, "deleting the queue of version %s: %s", vid,
			      nvcf_error_last()->message);
	if (jstr(dep, "deploymentId")) {
		snprintf(idx, sizeof(idx), "_id.%s", jstr(dep, "deploymentId"));
		nvcf_bus_kv_delete(api->bus, NVCF_BUCKET_DEPLOYMENTS, idx);
	}
	cJSON_Delete(dep);
	if ((st = nvcf_bus_kv_delete(api->bus, NVCF_BUCKET_DEPLOYMENTS, key)))
		return st;
	nvcf_log_info(SUB, "undeployed version %s of function %s", vid, fid);
	st = fn_set_status(api, key, "INACTIVE", NULL, NULL);
	return st == NVCF_ENOTFOUND ? NVCF_OK : st;
}

static void delete_version(call *c, const char *fid, const char *vid)
{
	char key[256];
	cJSON *rec;
	nvcf_status st;

	if (!load_version_or_reply(c, fid, vid, key, &rec))
		return;
	cJSON_Delete(rec);
	st = undeploy(c->api, c->key.nca_id, fid, vid);
	if (st != NVCF_OK && st != NVCF_ENOTFOUND) {
		reply_bus_error(c, st);
		return;
	}
	if ((st = nvcf_bus_kv_delete(c->api->bus, NVCF_BUCKET_FUNCTIONS,
				     key))) {
		reply_bus_error(c, st);
		return;
	}
	nvcf_log_info(SUB, "account %s deleted function %s version %s",
		      c->key.nca_id, fid, vid);
	count_status(c->api, 204);
	nvcf__http_send(c->req, 204, nvcf__http_response(NULL, "", 0));
}

/*
 * Checks @p specs (one specification or an array of them) against the
 * live clusters. Replies 400 and returns false when one names a GPU,
 * instance type, cluster, group, region or attribute that no live
 * cluster offers, so that nothing is stored or ordered for it.
 */
static bool specs_placeable(call *c, const cJSON *specs)
{
	char detail[NVCF_API_DETAIL_MAX];
	nvcf_inventory *inv = NULL;
	const cJSON *spec;
	nvcf_status st;

	if ((st = load_inventory(c->api, true, &inv)) != NVCF_OK) {
		reply_bus_error(c, st);
		return false;
	}
	for (spec = cJSON_IsArray(specs) ? specs->child : specs;
	     spec != NULL; spec = cJSON_IsArray(specs) ? spec->next : NULL) {
		st = nvcf__api_validate_placement(inv, spec, detail,
						  sizeof(detail));
		if (st == NVCF_OK)
			continue;
		if (st == NVCF_EINVAL)
			reply_problem(c, 400, "%s", detail);
		else
			reply_bus_error(c, st);
		break;
	}
	nvcf_inventory_free(inv);
	return st == NVCF_OK;
}

static void create_deployment(call *c, const char *fid, const char *vid)
{
	char key[256], idx[128], detail[NVCF_API_DETAIL_MAX], did[37],
		stamp[32];
	const char *body, *status, *new_status;
	size_t len;
	cJSON *fn = NULL, *specs = NULL, *clusters = NULL, *dep = NULL,
	      *placements, *spec, *existing = NULL, *p;
	nvcf_status st;
	bool all_zero = true;

	if (!load_version_or_reply(c, fid, vid, key, &fn))
		return;
	body = nvcf__http_body(c->req, &len);
	if ((st = nvcf__api_validate_deployment(body, len, &specs, detail,
						sizeof(detail)))) {
		reply_problem_type(c, 400,
				   strncmp(detail, "Invalid request", 15)
					   ? "about:blank"
					   : NULL,
				   "%s", detail);
		goto out;
	}
	status = jstr(fn, "status");
	if (status && strcmp(status, "ERROR") == 0) {
		reply_problem(c, 400,
			      "Function already has a deployment with errors; "
			      "undeploy it first");
		goto out;
	}
	if (status && strcmp(status, "INACTIVE") != 0) {
		reply_problem(c, 400,
			      "Status %s, use PATCH endpoint to update "
			      "gpu-specification",
			      status);
		goto out;
	}
	if (kv_load(c->api, NVCF_BUCKET_DEPLOYMENTS, key, &existing, NULL) ==
	    NVCF_OK) {
		reply_problem(c, 400,
			      "Function version '%s' already has a deployment; "
			      "undeploy it first",
			      vid);
		goto out;
	}
	if ((st = load_clusters(c->api, &clusters))) {
		reply_bus_error(c, st);
		goto out;
	}
	if (!specs_placeable(c, specs))
		goto out;
	if ((st = nvcf__uuid_new(did)) ||
	    (dep = cJSON_CreateObject()) == NULL) {
		reply_problem(c, 500, "out of memory");
		goto out;
	}
	now_iso(stamp);
	cJSON_AddStringToObject(dep, "functionId", fid);
	cJSON_AddStringToObject(dep, "functionVersionId", vid);
	cJSON_AddStringToObject(dep, "deploymentId", did);
	cJSON_AddStringToObject(dep, "functionName", jstr(fn, "name"));
	cJSON_AddStringToObject(dep, "ncaId", c->key.nca_id);
	cJSON_AddStringToObject(dep, "functionStatus", "DEPLOYING");
	placements = cJSON_CreateArray();
	cJSON_ArrayForEach(spec, specs) {
		const cJSON *cl = choose_cluster(clusters, spec, detail,
						 sizeof(detail));
		char icms[37];

		if (cl == NULL) {
			cJSON_Delete(placements);
			reply_problem(c, 400, "%s", detail);
			goto out;
		}
		if (jint(spec, "minInstances", 0) > 0)
			all_zero = false;
		if (c->api->opts.external_scaling)
			continue; /* the autoscaler places every instance */
		nvcf__uuid_new(icms);
		p = cJSON_CreateObject();
		cJSON_AddItemToArray(placements, p);
		cJSON_AddStringToObject(p, "gpuSpecificationId",
					jstr(spec, "gpuSpecificationId"));
		cJSON_AddStringToObject(p, "clusterId", jstr(cl, "clusterId"));
		cJSON_AddStringToObject(p, "icmsRequestId", icms);
		cJSON_AddNumberToObject(
			p, "instanceCount",
			jint(spec, "minInstances", 0) > 0
				? jint(spec, "minInstances", 0)
				: 1);
	}
	new_status = all_zero ? "ACTIVE" : "DEPLOYING";
	set_str(dep, "functionStatus", new_status);
	cJSON_AddItemToObject(dep, "deploymentSpecifications", specs);
	specs = NULL;
	cJSON_AddStringToObject(dep, "createdAt", stamp);
	cJSON_AddStringToObject(dep, "lastUpdatedAt", stamp);
	cJSON_AddItemToObject(dep, "placements", placements);

	/* Nothing is stored before every check above passed. */
	st = kv_store(c->api, NVCF_BUCKET_DEPLOYMENTS, key, dep, true, 0);
	if (st == NVCF_EEXISTS) {
		reply_problem(c, 400,
			      "Function version '%s' already has a deployment; "
			      "undeploy it first",
			      vid);
		goto out;
	}
	if (st != NVCF_OK) {
		reply_bus_error(c, st);
		goto out;
	}
	snprintf(idx, sizeof(idx), "_id.%s", did);
	{
		cJSON *ix = cJSON_CreateObject();

		cJSON_AddStringToObject(ix, "key", key);
		st = kv_store(c->api, NVCF_BUCKET_DEPLOYMENTS, idx, ix, false,
			      0);
		cJSON_Delete(ix);
	}
	if (st == NVCF_OK)
		st = fn_set_status(c->api, key, new_status, NULL, NULL);
	if (st == NVCF_OK)
		st = nvcf_bus_ensure_queue(c->api->bus, vid,
					   c->api->opts.queue_max_msgs);
	if (st == NVCF_OK)
		set_str(fn, "status", new_status);
	cJSON_ArrayForEach(p, placements) {
		const cJSON *s;

		if (st != NVCF_OK)
			break;
		cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(
					      dep, "deploymentSpecifications")) {
			if (strcmp(jstr(s, "gpuSpecificationId"),
				   jstr(p, "gpuSpecificationId")) == 0)
				st = publish_create(
					c->api, fn, dep, s,
					jstr(p, "clusterId"),
					jint(p, "instanceCount", 1),
					jstr(p, "icmsRequestId"));
		}
	}
	if (st != NVCF_OK) {
		nvcf_status err = st;
		char msg[256];

		snprintf(msg, sizeof(msg), "%s", nvcf_error_last()->message);
		undeploy(c->api, c->key.nca_id, fid, vid);
		reply_bus_error(c, err);
		nvcf_log_error(SUB, "deploying version %s failed: %s", vid,
			       msg);
		goto out;
	}
	nvcf_log_info(SUB, "account %s deployed version %s (%s), status %s",
		      c->key.nca_id, vid, did, new_status);
	reply_wrapped(c, "deployment", deployment_dto(dep));
	dep = NULL;
out:
	cJSON_Delete(fn);
	cJSON_Delete(specs);
	cJSON_Delete(clusters);
	cJSON_Delete(dep);
	cJSON_Delete(existing);
}

/* Resolves a deployment id of the caller's account into its KV key. */
static bool deployment_key(call *c, const char *did, char key[256])
{
	char idx[128];
	cJSON *ix = NULL;
	const char *k;
	nvcf_status st;
	size_t nlen = strlen(c->key.nca_id);

	snprintf(idx, sizeof(idx), "_id.%s", did);
	st = kv_load(c->api, NVCF_BUCKET_DEPLOYMENTS, idx, &ix, NULL);
	k = jstr(ix, "key");
	if (st != NVCF_OK || k == NULL || strncmp(k, c->key.nca_id, nlen) ||
	    k[nlen] != '.') {
		cJSON_Delete(ix);
		if (st != NVCF_OK && st != NVCF_ENOTFOUND)
			reply_bus_error(c, st);
		else
			reply_problem(c, 404,
				      "Deployment '%s': Not found in account "
				      "'%s'",
				      did, c->key.nca_id);
		return false;
	}
	snprintf(key, 256, "%s", k);
	cJSON_Delete(ix);
	return true;
}

static void get_deployment(call *c, const char *fid, const char *vid,
			   const char *did)
{
	char key[256];
	cJSON *dep;
	nvcf_status st;

	if (did != NULL) {
		if (!deployment_key(c, did, key))
			return;
	} else {
		fn_key(key, c->key.nca_id, fid, vid);
	}
	st = kv_load(c->api, NVCF_BUCKET_DEPLOYMENTS, key, &dep, NULL);
	if (st == NVCF_ENOTFOUND) {
		if (did)
			reply_problem(c, 404,
				      "Deployment '%s': Not found in account "
				      "'%s'",
				      did, c->key.nca_id);
		else
			reply_problem(c, 404,
				      "Function version '%s': Deployment not "
				      "found",
				      vid);
		return;
	}
	if (st != NVCF_OK) {
		reply_bus_error(c, st);
		return;
	}
	reply_wrapped(c, "deployment", deployment_dto(dep));
}

static void delete_deployment(call *c, const char *fid, const char *vid)
{
	char key[256];
	cJSON *fn;
	nvcf_status st;

	if (!load_version_or_reply(c, fid, vid, key, &fn))
		return;
	cJSON_Delete(fn);
	st = undeploy(c->api, c->key.nca_id, fid, vid);
	if (st == NVCF_ENOTFOUND) {
		reply_problem(c, 404,
			      "Function version '%s': Deployment not found",
			      vid);
		return;
	}
	if (st != NVCF_OK) {
		reply_bus_error(c, st);
		return;
	}
	if ((st = kv_load(c->api, NVCF_BUCKET_FUNCTIONS, key, &fn, NULL))) {
		reply_bus_error(c, st);
		return;
	}
	reply_wrapped(c, "function", fn);
}

/* Live instance ids of one specification, newest first. */
static size_t spec_instances(nvcf_api *api, const cJSON *dep, const char *vid,
			     const char *sid, const char *cluster,
			     char **ids, size_t max)
{
	cJSON *inst = NULL;
	const cJSON *i;
	size_t n = 0;

	if (deployment_instances(api, dep, vid, &inst) != NVCF_OK)
		return 0;
	for (i = cJSON_GetArrayItem(inst, cJSON_GetArraySize(inst) - 1);
	     i != NULL && n < max; i = i->prev) {
		const char *s = jstr(i, "instanceStatus");
		const char *gs = jstr(i, "gpuSpecificationId");

		if (!s || strcmp(s, "TERMINATED") == 0 || !jstr(i, "instanceId"))
			continue;
		if (gs && strcmp(gs, sid) != 0)
			continue;
		if (!jstr(i, "clusterId") ||
		    strcmp(jstr(i, "clusterId"), cluster) != 0)
			continue;
		ids[n++] = nvcf__strdup(jstr(i, "instanceId"));
		if (i == inst->child)
			break;
	}
	cJSON_Delete(inst);
	return n;
}

/* Applies a new min/max to the placements of one spec (orders included). */
static nvcf_status rescale_spec(nvcf_api *api, const char *nca,
				const char *fid, const char *vid, cJSON *dep,
				cJSON *spec, int min, int max)
{
	const char *sid = jstr(spec, "gpuSpecificationId");
	cJSON *placements = cJSON_GetObjectItemCaseSensitive(dep, "placements");
	cJSON *p, *fn = NULL, *clusters = NULL;
	char key[256];
	int placed = 0;
	nvcf_status st = NVCF_OK;

	cJSON_ArrayForEach(p, placements) {
		if (jstr(p, "gpuSpecificationId") &&
		    strcmp(jstr(p, "gpuSpecificationId"), sid) == 0)
			placed += jint(p, "instanceCount", 0);
	}
	if (min > placed) {
		const cJSON *cl;
		char detail[NVCF_API_DETAIL_MAX], icms[37];

		fn_key(key, nca, fid, vid);
		if ((st = kv_load(api, NVCF_BUCKET_FUNCTIONS, key, &fn, NULL)) ||
		    (st = load_clusters(api, &clusters)))
			goto out;
		if ((cl = choose_cluster(clusters, spec, detail,
					 sizeof(detail))) == NULL) {
			st = nvcf__error_set(NVCF_EUNAVAILABLE, "%s", detail);
			goto out;
		}
		nvcf__uuid_new(icms);
		st = publish_create(api, fn, dep, spec, jstr(cl, "clusterId"),
				    min - placed, icms);
		if (st != NVCF_OK)
			goto out;
		p = cJSON_CreateObject();
		cJSON_AddItemToArray(placements, p);
		cJSON_AddStringToObject(p, "gpuSpecificationId", sid);
		cJSON_AddStringToObject(p, "clusterId", jstr(cl, "clusterId"));
		cJSON_AddStringToObject(p, "icmsRequestId", icms);
		cJSON_AddNumberToObject(p, "instanceCount", min - placed);
	} else if (max < placed) {
		int extra = placed - max;

		cJSON_ArrayForEach(p, placements) {
			int have = jint(p, "instanceCount", 0), take;
			char *ids[64];
			size_t n;

			if (extra <= 0)
				break;
			if (!jstr(p, "gpuSpecificationId") ||
			    strcmp(jstr(p, "gpuSpecificationId"), sid) != 0 ||
			    have <= 0 || !jstr(p, "clusterId"))
				continue;
			take = have < extra ? have : extra;
			if (take > 64)
				take = 64;
			n = spec_instances(api, dep, vid, sid,
					   jstr(p, "clusterId"), ids,
					   (size_t)take);
			if (n > 0)
				st = publish_terminate(api,
						       jstr(p, "clusterId"),
						       vid, ids, n, "scale-down");
			for (size_t k = 0; k < n; k++)
				free(ids[k]);
			if (st != NVCF_OK)
				goto out;
			set_num(p, "instanceCount", have - take);
			extra -= take;
		}
	}
out:
	cJSON_Delete(fn);
	cJSON_Delete(clusters);
	return st;
}

static void patch_spec(call *c, const char *did, const char *sid)
{
	char key[256], detail[NVCF_API_DETAIL_MAX], stamp[32];
	const char *body;
	size_t len;

	if (!deployment_key(c, did, key))
		return;
	body = nvcf__http_body(c->req, &len);
	for (int t = 0; t < RMW_TRIES; t++) {
		cJSON *dep, *spec = NULL, *s, *out;
		const char *status, *fid, *vid;
		uint64_t rev;
		nvcf_status st;
		int min, max;

		st = kv_load(c->api, NVCF_BUCKET_DEPLOYMENTS, key, &dep, &rev);
		if (st == NVCF_ENOTFOUND) {
			reply_problem(c, 404,
				      "Deployment '%s': Not found in account "
				      "'%s'",
				      did, c->key.nca_id);
			return;
		}
		if (st != NVCF_OK) {
			reply_bus_error(c, st);
			return;
		}
		cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(
					      dep, "deploymentSpecifications")) {
			if (jstr(s, "gpuSpecificationId") &&
			    strcmp(jstr(s, "gpuSpecificationId"), sid) == 0)
				spec = s;
		}
		if (spec == NULL) {
			cJSON_Delete(dep);
			reply_problem(c, 404,
				      "GPU specification '%s': Not found in "
				      "deployment '%s'",
				      sid, did);
			return;
		}
		st = nvcf__api_validate_patch(body, len, spec, &min, &max,
					      detail, sizeof(detail));
		if (st != NVCF_OK) {
			cJSON_Delete(dep);
			reply_problem_type(c, 400,
					   strncmp(detail, "Invalid request",
						   15)
						   ? "about:blank"
						   : NULL,
					   "%s", detail);
			return;
		}
		status = jstr(dep, "functionStatus");
		if (!status || (strcmp(status, "ACTIVE") &&
				strcmp(status, "DEPLOYING") &&
				strcmp(status, "DEGRADED") &&
				strcmp(status, "DEGRADING"))) {
			reply_problem(c, 400,
				      "Invalid status %s: only ACTIVE, "
				      "DEPLOYING, DEGRADING or DEGRADED "
				      "deployments can be updated",
				      status ? status : "unknown");
			cJSON_Delete(dep);
			return;
		}
		/* Lower bounds never need a cluster; higher ones may. */
		if ((min > jint(spec, "minInstances", 0) ||
		     max > jint(spec, "maxInstances", 0)) &&
		    !specs_placeable(c, spec)) {
			cJSON_Delete(dep);
			return;
		}
		fid = jstr(dep, "functionId");
		vid = jstr(dep, "functionVersionId");
		/* An autoscaler applies the new bounds on its next tick. */
		st = c->api->opts.external_scaling
			     ? NVCF_OK
			     : rescale_spec(c->api, c->key.nca_id, fid, vid,
					    dep, spec, min, max);
		if (st != NVCF_OK) {
			cJSON_Delete(dep);
			if (st == NVCF_EUNAVAILABLE)
				reply_problem(c, 400, "%s",
					      nvcf_error_last()->message);
			else
				reply_bus_error(c, st);
			return;
		}
		set_num(spec, "minInstances", min);
		set_num(spec, "maxInstances", max);
		{
			const cJSON *asc = NULL;
			cJSON *req = cJSON_ParseWithLength(body, len);

			asc = cJSON_GetObjectItemCaseSensitive(
				req, "autoscalingConfiguration");
			if (cJSON_IsObject(asc)) {
				cJSON_DeleteItemFromObjectCaseSensitive(
					spec, "autoscalingConfiguration");
				cJSON_AddItemToObject(
					spec, "autoscalingConfiguration",
					cJSON_Duplicate(asc, true));
			}
			cJSON_Delete(req);
		}
		now_iso(stamp);
		set_str(dep, "lastUpdatedAt", stamp);
		st = kv_store(c->api, NVCF_BUCKET_DEPLOYMENTS, key, dep, false,
			      rev);
		if (st == NVCF_ECONFLICT) {
			/*
			 * NOTE: orders sent in this round are not withdrawn.
			 * The retry starts from the stored placements, so it
			 * may order the same instances again.
			 */
			nvcf_log_warn(SUB,
				      "deployment %s changed during PATCH; "
				      "retrying",
				      did);
			cJSON_Delete(dep);
			continue;
		}
		if (st != NVCF_OK) {
			cJSON_Delete(dep);
			reply_bus_error(c, st);
			return;
		}
		nvcf_log_info(SUB, "deployment %s spec %s: min %d max %d", did,
			      sid, min, max);
		out = cJSON_Duplicate(spec, true);
		recompute(c->api, c->key.nca_id, fid, vid);
		cJSON_Delete(dep);
		reply_wrapped(c, "gpuSpecification", out);
		return;
	}
	reply_problem(c, 409, "deployment '%s' kept changing; retry", did);
}

/* ---- queues and cluster groups --------------------------------------- */

static void queue_details(call *c, const char *fid)
{
	char filter[128];
	cJSON *arr, *body, *queues;
	const cJSON *f;
	nvcf_status st;

	snprintf(filter, sizeof(filter), "%s.%s.*", c->key.nca_id, fid);
	if ((st = kv_load_all(c->api, NVCF_BUCKET_FUNCTIONS, filter, &arr))) {
		reply_bus_error(c, st);
		return;
	}
	if (cJSON_GetArraySize(arr) == 0) {
		cJSON_Delete(arr);
		reply_fn_not_found(c, fid, NULL);
		return;
	}
	body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "functionId", fid);
	queues = cJSON_AddArrayToObject(body, "queues");
	cJSON_ArrayForEach(f, arr) {
		cJSON *q = cJSON_CreateObject();
		uint64_t depth = 0;
		const char *vid = jstr(f, "versionId");

		if (q == NULL || vid == NULL) {
			cJSON_Delete(q);
			continue;
		}
		if (nvcf_bus_queue_depth(c->api->bus, vid, &depth, NULL) !=
		    NVCF_OK)
			depth = 0;
		cJSON_AddStringToObject(q, "functionVersionId", vid);
		if (jstr(f, "name"))
			cJSON_AddStringToObject(q, "functionName",
						jstr(f, "name"));
		if (jstr(f, "status"))
			cJSON_AddStringToObject(q, "functionStatus",
						jstr(f, "status"));
		cJSON_AddNumberToObject(q, "queueDepth", (double)depth);
		cJSON_AddItemToArray(queues, q);
	}
	cJSON_Delete(arr);
	reply_json(c, 200, body);
}

static void cluster_groups(call *c)
{
	nvcf_inventory *inv = NULL;
	char *json = NULL;
	nvcf_status st;

	st = load_inventory(c->api, true, &inv);
	if (st == NVCF_OK)
		st = nvcf_inventory_cluster_groups_json(inv, c->key.nca_id,
							&json);
	nvcf_inventory_free(inv);
	if (st != NVCF_OK) {
		reply_bus_error(c, st);
		return;
	}
	count_status(c->api, 200);
	nvcf__http_send_json(c->req, 200, json);
	nvcf_free(json);
}

/* ---- health and metrics ---------------------------------------------- */

static bool nats_connected(nvcf_api *api)
{
	return natsConnection_Status(nvcf__bus_conn(api->bus)) ==
	       NATS_CONN_STATUS_CONNECTED;
}

static void health(call *c)
{
	bool ok = nats_connected(c->api);

	count_status(c->api, ok ? 200 : 503);
	nvcf__http_send_json(c->req, ok ? 200 : 503,
			     ok ? "{\"status\":\"OK\"}"
				: "{\"status\":\"DOWN\",\"detail\":\"not "
				  "connected to NATS\"}");
}

static void metrics(call *c)
{
	nvcf__buf b = {0};
	struct MHD_Response *r;

	count_status(c->api, 200);
	nvcf__buf_printf(&b,
			 "# HELP nvcf_api_requests_total HTTP requests "
			 "answered, by status code.\n"
			 "# TYPE nvcf_api_requests_total counter\n");
	for (unsigned int s = 100; s < 600; s++) {
		uint64_t n = atomic_load(&c->api->by_code[s]);

		if (n > 0)
			nvcf__buf_printf(&b,
					 "nvcf_api_requests_total{code=\"%u\"} "
					 "%llu\n",
					 s, (unsigned long long)n);
	}
	nvcf__buf_printf(&b,
			 "# HELP nvcf_api_nats_connected 1 while the NATS "
			 "connection is up.\n"
			 "# TYPE nvcf_api_nats_connected gauge\n"
			 "nvcf_api_nats_connected %d\n",
			 nats_connected(c->api) ? 1 : 0);
	r = nvcf__http_response("text/plain; version=0.0.4", b.data ? b.data
								    : "",
				b.len);
	nvcf__buf_free(&b);
	nvcf__http_send(c->req, 200, r);
}

/* ---- routing --------------------------------------------------------- */

enum route {
	R_NONE,
	R_FUNCTIONS,
	R_IDS,
	R_VERSIONS,
	R_VERSION,
	R_DEPLOY_FV,
	R_DEPLOY_ID,
	R_SPEC,
	R_QUEUE,
	R_GROUPS,
	R_TASKS,
};

static bool seg_is(const call *c, int i, const char *s)
{
	return i < c->nsegs && strcmp(c->segs[i], s) == 0;
}

static enum route match(call *c)
{
	if ((c->task_route = nvcf__tasks_match(c->segs, c->nsegs)) != 0)
		return R_TASKS;
	if (c->nsegs < 3 || !seg_is(c, 0, "v2") || !seg_is(c, 1, "nvcf"))
		return R_NONE;
	if (seg_is(c, 2, "functions")) {
		if (c->nsegs == 3)
			return R_FUNCTIONS;
		if (c->nsegs == 4 && seg_is(c, 3, "ids"))
			return R_IDS;
		if (c->nsegs == 5 && seg_is(c, 4, "versions"))
			return R_VERSIONS;
		if (c->nsegs == 6 && seg_is(c, 4, "versions"))
			return R_VERSION;
	} else if (seg_is(c, 2, "deployments")) {
		if (c->nsegs == 7 && seg_is(c, 3, "functions") &&
		    seg_is(c, 5, "versions"))
			return R_DEPLOY_FV;
		if (c->nsegs == 4)
			return R_DEPLOY_ID;
		if (c->nsegs == 6 && seg_is(c, 4, "gpu-specifications"))
			return R_SPEC;
	} else if (seg_is(c, 2, "queues")) {
		if (c->nsegs == 5 && seg_is(c, 3, "functions"))
			return R_QUEUE;
	} else if (seg_is(c, 2, "clusterGroups") && c->nsegs == 3) {
		return R_GROUPS;
	}
	return R_NONE;
}

static const char *allowed(enum route r)
{
	switch (r) {
	case R_FUNCTIONS:
	case R_VERSIONS:
		return "GET, POST";
	case R_VERSION:
		return "GET, DELETE";
	case R_DEPLOY_FV:
		return "GET, POST, DELETE";
	case R_SPEC:
		return "PATCH";
	default:
		return "GET";
	}
}

/* The scope a method needs on a route. */
static uint32_t needed_scope(enum route r, const char *m)
{
	bool get = strcmp(m, "GET") == 0;

	switch (r) {
	case R_FUNCTIONS:
	case R_VERSIONS:
		return get ? NVCF_SCOPE_LIST_FUNCTIONS
			   : NVCF_SCOPE_REGISTER_FUNCTION;
	case R_IDS:
		return NVCF_SCOPE_LIST_FUNCTIONS;
	case R_VERSION:
		return get ? NVCF_SCOPE_LIST_FUNCTIONS
			   : NVCF_SCOPE_DELETE_FUNCTION;
	case R_DEPLOY_FV:
	case R_DEPLOY_ID:
	case R_SPEC:
		return NVCF_SCOPE_DEPLOY_FUNCTION;
	case R_QUEUE:
		return NVCF_SCOPE_QUEUE_DETAILS;
	case R_GROUPS:
		return NVCF_SCOPE_LIST_CLUSTER_GROUPS |
		       NVCF_SCOPE_LIST_FUNCTIONS;
	default:
		return 0;
	}
}

static const char *scope_names(uint32_t scopes, char out[96])
{
	out[0] = '\0';
	for (uint32_t bit = 1; bit < NVCF_SCOPE_ALL; bit <<= 1) {
		if (!(scopes & bit))
			continue;
		if (out[0])
			strncat(out, "' or '", 95 - strlen(out));
		strncat(out, nvcf__scope_name(bit), 95 - strlen(out));
	}
	return out;
}

/* Sends 400 and returns false when a path id is not a UUID. */
static bool ids_valid(call *c, const int *idx, const char *const *names,
		      size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!nvcf__uuid_valid(c->segs[idx[i]])) {
			reply_problem_type(c, 400, "about:blank",
					   "Invalid %s '%.64s': must be a UUID",
					   names[i], c->segs[idx[i]]);
			return false;
		}
	}
	return true;
}

static void dispatch(call *c, enum route r, const char *m)
{
	static const int fv[] = {3, 5}, dfv[] = {4, 6}, did[] = {3},
			 spec[] = {3, 5}, f1[] = {3}, q[] = {4};
	static const char *const n_fv[] = {"functionId", "functionVersionId"};
	static const char *const n_f[] = {"functionId"};
	static const char *const n_d[] = {"deploymentId"};
	static const char *const n_s[] = {"deploymentId",
					  "gpuSpecificationId"};
	bool get = strcmp(m, "GET") == 0;

	switch (r) {
	case R_FUNCTIONS:
		if (get)
			list_functions(c, NULL, false);
		else
			create_function(c, NULL);
		break;
	case R_IDS:
		list_functions(c, NULL, true);
		break;
	case R_VERSIONS:
		if (!ids_valid(c, f1, n_f, 1))
			break;
		if (get)
			list_functions(c, c->segs[3], false);
		else
			create_function(c, c->segs[3]);
		break;
	case R_VERSION:
		if (!ids_valid(c, fv, n_fv, 2))
			break;
		if (get)
			get_version(c, c->segs[3], c->segs[5]);
		else
			delete_version(c, c->segs[3], c->segs[5]);
		break;
	case R_DEPLOY_FV:
		if (!ids_valid(c, dfv, n_fv, 2))
			break;
		if (get)
			get_deployment(c, c->segs[4], c->segs[6], NULL);
		else if (strcmp(m, "POST") == 0)
			create_deployment(c, c->segs[4], c->segs[6]);
		else
			delete_deployment(c, c->segs[4], c->segs[6]);
		break;
	case R_DEPLOY_ID:
		if (ids_valid(c, did, n_d, 1))
			get_deployment(c, NULL, NULL, c->segs[3]);
		break;
	case R_SPEC:
		if (ids_valid(c, spec, n_s, 2))
			patch_spec(c, c->segs[3], c->segs[5]);
		break;
	case R_QUEUE:
		if (ids_valid(c, q, n_f, 1))
			queue_details(c, c->segs[4]);
		break;
	case R_GROUPS:
		cluster_groups(c);
		break;
	case R_TASKS:
		count_status(c->api, nvcf__tasks_dispatch(c->api->tasks, c->req,
							  &c->key, c->task_route,
							  c->segs, c->nsegs));
		break;
	default:
		reply_problem(c, 404, "no route");
		break;
	}
}

/* True when @p method is one of the comma-separated names in @p allow. */
static bool method_allowed(const char *allow, const char *method)
{
	size_t n = strlen(method);

	for (const char *p = allow; (p = strstr(p, method)) != NULL; p += n)
		if ((p == allow || p[-1] == ' ') &&
		    (p[n] == '\0' || p[n] == ','))
			return true;
	return false;
}

static void handle(nvcf__http_req *req, void *userdata)
{
	call c = {.api = userdata, .req = req};
	const char *path = nvcf__http_path(req), *m = nvcf__http_method(req);
	const char *token, *allow;
	enum route r;
	uint32_t need;
	char *save = NULL, *tok, names[96];
	nvcf_status st;

	if (strcmp(path, "/health") == 0 && strcmp(m, "GET") == 0) {
		health(&c);
		return;
	}
	if (strcmp(path, "/metrics") == 0 && strcmp(m, "GET") == 0) {
		metrics(&c);
		return;
	}
	snprintf(c.pathbuf, sizeof(c.pathbuf), "%s", path);
	for (tok = strtok_r(c.pathbuf, "/", &save); tok != NULL;
	     tok = strtok_r(NULL, "/", &save)) {
		if (c.nsegs == MAX_SEGS) {
			c.nsegs = 0;
			break;
		}
		c.segs[c.nsegs++] = tok;
	}
	r = match(&c);
	if (r == R_NONE) {
		reply_problem(&c, 404, "No endpoint %s %s", m, path);
		return;
	}
	allow = r == R_TASKS ? nvcf__tasks_allowed(c.task_route) : allowed(r);
	if (!method_allowed(allow, m)) {
		struct MHD_Response *resp;

		nvcf_log_info(SUB, "%s %s -> 405", m, path);
		resp = nvcf__http_problem_response(405, "about:blank",
						   "Request method not "
						   "supported",
						   path);
		if (resp)
			MHD_add_response_header(resp, "Allow", allow);
		count_status(c.api, 405);
		nvcf__http_send(req, 405, resp);
		return;
	}
	token = nvcf__bearer_token(nvcf__http_header(req, "Authorization"));
	if (token == NULL) {
		reply_401(&c, "Missing 'Authorization: Bearer <key>' header");
		return;
	}
	st = authenticate(c.api, token, &c.key);
	if (st == NVCF_EUNAUTHENTICATED) {
		reply_401(&c, "Invalid API key");
		return;
	}
	if (st != NVCF_OK) {
		reply_bus_error(&c, st);
		return;
	}
	need = r == R_TASKS ? nvcf__tasks_scope(c.task_route, m)
			    : needed_scope(r, m);
	if ((c.key.scopes & need) == 0) {
		reply_problem(&c, 403,
			      "Access denied: the key of account '%s' lacks "
			      "scope '%s'",
			      c.key.nca_id, scope_names(need, names));
		return;
	}
	dispatch(&c, r, m);
}

/* ---- object ---------------------------------------------------------- */

nvcf_status nvcf_api_options_init(nvcf_api_options *opts,
				  unsigned int version)
{
	if (opts == NULL || version != NVCF_API_OPTIONS_VERSION)
		return nvcf__error_set(NVCF_EINVAL,
				       "nvcf_api_options_init: version %u is "
				       "not %u; rebuild against this header",
				       version, NVCF_API_OPTIONS_VERSION);
	memset(opts, 0, sizeof(*opts));
	opts->version = version;
	opts->threads = 4;
	opts->queue_max_msgs = NVCF_DEFAULT_QUEUE_MAX_MSGS;
	opts->max_functions_per_account = 50;
	opts->cluster_stale_ms = 30000;
	return NVCF_OK;
}

nvcf_status nvcf_api_new(nvcf_api **out, const nvcf_api_options *opts)
{
	nvcf_bus_options bo = NVCF_BUS_OPTIONS_INIT;
	nvcf_api *api;
	nvcf_status st;

	if (out == NULL)
		return nvcf__error_set(NVCF_EINVAL, "nvcf_api_new: NULL out");
	*out = NULL;
	if (opts != NULL && opts->version != NVCF_API_OPTIONS_VERSION)
		return nvcf__error_set(NVCF_EINVAL,
				       "nvcf_api_new: options version %u is "
				       "not %u; use NVCF_API_OPTIONS_INIT",
				       opts->version,
				       NVCF_API_OPTIONS_VERSION);
	if ((api = calloc(1, sizeof(*api))) == NULL)
		return nvcf__error_oom();
	nvcf_api_options_init(&api->opts, NVCF_API_OPTIONS_VERSION);
	if (opts != NULL) {
		nvcf_api_options d = api->opts;

		api->opts = *opts;
		if (api->opts.threads == 0)
			api->opts.threads = d.threads;
		if (api->opts.queue_max_msgs <= 0)
			api->opts.queue_max_msgs = d.queue_max_msgs;
		if (api->opts.max_functions_per_account <= 0)
			api->opts.max_functions_per_account =
				d.max_functions_per_account;
		if (api->opts.cluster_stale_ms <= 0)
			api->opts.cluster_stale_ms = d.cluster_stale_ms;
	}
	pthread_mutex_init(&api->cache_lock, NULL);
	api->nats_url = nvcf__strdup(api->opts.nats_url
					     ? api->opts.nats_url
					     : "nats://127.0.0.1:4222");
	api->listen_address = nvcf__strdup(api->opts.listen_address
						   ? api->opts.listen_address
						   : "127.0.0.1");
	api->region = nvcf__strdup(api->opts.region ? api->opts.region
						    : "local");
	if (!api->nats_url || !api->listen_address || !api->region) {
		nvcf_api_free(api);
		return nvcf__error_oom();
	}
	api->opts.nats_url = api->nats_url;
	api->opts.listen_address = api->listen_address;
	api->opts.region = api->region;
	bo.url = api->nats_url;
	bo.name = "nvcf-api";
	bo.region = api->region;
	bo.request_ack_wait_ms = api->opts.request_ack_wait_ms;
	if ((st = nvcf_bus_new(&api->bus, &bo)) != NVCF_OK ||
	    (st = nvcf_bus_ensure_control(api->bus)) != NVCF_OK) {
		nvcf_api_free(api);
		return st;
	}
	{
		nvcf__tasks_config tc = {api->bus, api->opts.cluster_stale_ms,
					 0, 0};

		if ((st = nvcf__tasks_new(&api->tasks, &tc)) != NVCF_OK) {
			nvcf_api_free(api);
			return st;
		}
	}
	*out = api;
	return NVCF_OK;
}

nvcf_status nvcf_api_start(nvcf_api *api)
{
	nvcf__http_config hc = {0};
	nvcf_status st;

	if (api == NULL || api->http != NULL)
		return nvcf__error_set(NVCF_EINVAL,
				       "nvcf_api_start: NULL or already "
				       "started; stop it first");
	hc.bind_address = api->listen_address;
	hc.port = api->opts.port;
	hc.threads = api->opts.threads;
	hc.handler = handle;
	hc.userdata = api;
	if ((st = nvcf__http_server_new(&api->http, &hc)) != NVCF_OK)
		return st;
	atomic_store(&api->stopping, false);
	if (pthread_create(&api->watcher, NULL, watch_instances, api) != 0) {
		nvcf__http_server_free(api->http);
		api->http = NULL;
		return nvcf__error_set(NVCF_ENOMEM,
				       "cannot start the instance watcher "
				       "thread");
	}
	api->watching = true;
	if ((st = nvcf__tasks_start(api->tasks)) != NVCF_OK)
		nvcf_log_warn(SUB, "task timer not started: %s; queued tasks "
			      "do not expire", nvcf_error_last()->message);
	nvcf_log_info(SUB, "listening on %s:%u (region %s, NATS %s)",
		      api->listen_address, nvcf__http_server_port(api->http),
		      api->region, api->nats_url);
	return NVCF_OK;
}

uint16_t nvcf_api_port(const nvcf_api *api)
{
	return api && api->http ? nvcf__http_server_port(api->http) : 0;
}

nvcf_status nvcf_api_stop(nvcf_api *api)
{
	if (api == NULL)
		return nvcf__error_set(NVCF_EINVAL, "nvcf_api_stop: NULL api");
	if (api->http != NULL) {
		nvcf__http_server_free(api->http);
		api->http = NULL;
		nvcf_log_info(SUB, "stopped listening");
	}
	if (api->watching) {
		atomic_store(&api->stopping, true);
		pthread_join(api->watcher, NULL);
		api->watching = false;
	}
	nvcf__tasks_stop(api->tasks);
	return NVCF_OK;
}

void nvcf_api_free(nvcf_api *api)
{
	if (api == NULL)
		return;
	nvcf_api_stop(api);
	nvcf__tasks_free(api->tasks);
	nvcf_bus_free(api->bus);
	pthread_mutex_destroy(&api->cache_lock);
	free(api->nats_url);
	free(api->listen_address);
	free(api->region);
	free(api);
}
