/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The cluster inventory: deep copies of cluster records, their decoding
 * from the nvcf_clusters KV bucket, and the clusterGroups listing.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <limits.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/internal.h"
#include "routing/routing_internal.h"

#define ID_MAX 64

/* ---- helpers shared with place.c ------------------------------------- */

const nvcf_gpu_info *nvcf__routing_find_gpu(const nvcf_cluster_info *c,
					    const char *gpu)
{
	for (size_t i = 0; i < c->gpus_count; i++)
		if (strcasecmp(c->gpus[i].name, gpu) == 0)
			return &c->gpus[i];
	return NULL;
}

const nvcf_instance_type_info *
nvcf__routing_find_type(const nvcf_gpu_info *g, const char *name)
{
	for (size_t i = 0; i < g->instance_types_count; i++)
		if (strcasecmp(g->instance_types[i].name, name) == 0)
			return &g->instance_types[i];
	return NULL;
}

bool nvcf__routing_in_list(const char *const *list, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (list[i] != NULL && strcasecmp(list[i], s) == 0)
			return true;
	return false;
}

static bool id_valid(const char *s)
{
	size_t n = 0;

	if (s == NULL || *s == '\0')
		return false;
	for (; s[n] != '\0'; n++) {
		char c = s[n];

		if (n >= ID_MAX)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
	}
	return true;
}

/* ---- RFC 3339 --------------------------------------------------------- */

static bool digits(const char **p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		char c = (*p)[i];

		if (c < '0' || c > '9')
			return false;
		v = v * 10 + (c - '0');
	}
	*p += n;
	*out = v;
	return true;
}

static bool expect(const char **p, char c)
{
	if (**p != c)
		return false;
	(*p)++;
	return true;
}

/* Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
	static const int days[] = {31, 28, 31, 30, 31, 30,
				   31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : days[m - 1];
}

nvcf_status nvcf__routing_parse_rfc3339(const char *text, int64_t *ms_out)
{
	const char *p = text;
	int y, mo, d, h, mi, s, ms = 0, oh = 0, om = 0, sign = 0;

	if (text == NULL ||
	    !digits(&p, 4, &y) || !expect(&p, '-') || !digits(&p, 2, &mo) ||
	    !expect(&p, '-') || !digits(&p, 2, &d) ||
	    !(expect(&p, 'T') || expect(&p, 't') || expect(&p, ' ')) ||
	    !digits(&p, 2, &h) || !expect(&p, ':') || !digits(&p, 2, &mi) ||
	    !expect(&p, ':') || !digits(&p, 2, &s))
		goto bad;
	if (*p == '.') {
		int scale = 100, n = 0;

		for (p++; *p >= '0' && *p <= '9'; p++, n++) {
			ms += (*p - '0') * scale;
			scale /= 10;
		}
		if (n == 0)
			goto bad;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p == '-' ? -1 : 1;
		p++;
		if (!digits(&p, 2, &oh) || !expect(&p, ':') ||
		    !digits(&p, 2, &om) || oh > 23 || om > 59)
			goto bad;
	} else {
		goto bad;
	}
	/* A leap second (60) is allowed and lands on the next second. */
	if (*p != '\0' || mo < 1 || mo > 12 || d < 1 ||
	    d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 60)
		goto bad;
	*ms_out = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000 +
		  (int64_t)s * 1000 + ms -
		  (int64_t)sign * (oh * 60 + om) * 60000;
	return NVCF_OK;
bad:
	return nvcf__error_set(NVCF_EINVAL,
			       "'%s' is not an RFC 3339 time such as "
			       "2024-05-01T12:00:00.000Z",
			       text ? text : "(null)");
}

/* ---- copies ------------------------------------------------------------ */

static void cluster_clear(nvcf_cluster_info *c)
{
	for (size_t i = 0; c->gpus != NULL && i < c->gpus_count; i++) {
		nvcf_gpu_info *g = (nvcf_gpu_info *)&c->gpus[i];

		for (size_t j = 0; g->instance_types != NULL &&
				   j < g->instance_types_count; j++) {
			free((char *)g->instance_types[j].name);
			free((char *)g->instance_types[j].description);
		}
		free((void *)g->instance_types);
		free((char *)g->name);
	}
	free((void *)c->gpus);
	for (size_t i = 0; c->attributes != NULL && i < c->attributes_count;
	     i++)
		free((char *)c->attributes[i]);
	free((void *)c->attributes);
	free((char *)c->cluster_id);
	free((char *)c->name);
	free((char *)c->group);
	free((char *)c->region);
	memset(c, 0, sizeof(*c));
}

static nvcf_status check_cluster(const nvcf_cluster_info *c)
{
	if (c->version != NVCF_CLUSTER_INFO_VERSION)
		return nvcf__error_set(NVCF_EINVAL,
				       "cluster info version %u is not "
				       "supported: use NVCF_CLUSTER_INFO_INIT",
				       c->version);
	if (!id_valid(c->cluster_id))
		return nvcf__error_set(NVCF_EINVAL,
				       "cluster id '%s' must be 1 to 64 letters, "
				       "digits, '-' or '_'",
				       c->cluster_id ? c->cluster_id : "(null)");
	if (c->attributes_count > 0 && c->attributes == NULL)
		return nvcf__error_set(NVCF_EINVAL,
				       "cluster %s: attributes is NULL but "
				       "attributes_count is %zu",
				       c->cluster_id, c->attributes_count);
	for (size_t i = 0; i < c->attributes_count; i++)
		if (c->attributes[i] == NULL)
			return nvcf__error_set(NVCF_EINVAL,
					       "cluster %s: attributes[%zu] is "
					       "NULL",
					       c->cluster_id, i);
	if (c->gpus_count > 0 && c->gpus == NULL)
		return nvcf__error_set(NVCF_EINVAL,
				       "cluster %s: gpus is NULL but gpus_count "
				       "is %zu",
				       c->cluster_id, c->gpus_count);
	for (size_t i = 0; i < c->gpus_count; i++) {
		const nvcf_gpu_info *g = &c->gpus[i];

		if (g->name == NULL || *g->name == '\0')
			return nvcf__error_set(NVCF_EINVAL,
					       "cluster %s: gpus[%zu] has no "
					       "name",
					       c->cluster_id, i);
		for (size_t k = 0; k < i; k++)
			if (strcasecmp(c->gpus[k].name, g->name) == 0)
				return nvcf__error_set(
					NVCF_EINVAL,
					"cluster %s: gpus[%zu] '%s' repeats "
					"gpus[%zu]; list each GPU type once",
					c->cluster_id, i, g->name, k);
		if (g->instance_types_count > 0 && g->instance_types == NULL)
			return nvcf__error_set(NVCF_EINVAL,
					       "cluster %s: gpus[%zu] has "
					       "instance_types NULL but "
					       "instance_types_count %zu",
					       c->cluster_id, i,
					       g->instance_types_count);
		for (size_t j = 0; j < g->instance_types_count; j++) {
			const nvcf_instance_type_info *t =
				&g->instance_types[j];

			if (t->name == NULL || *t->name == '\0')
				return nvcf__error_set(
					NVCF_EINVAL,
					"cluster %s: gpus[%zu].instanceTypes"
					"[%zu] has no name",
					c->cluster_id, i, j);
			if (t->gpu_count == 0)
				return nvcf__error_set(
					NVCF_EINVAL,
					"cluster %s: instance type %s has "
					"gpu_count 0; it must be at least 1",
					c->cluster_id, t->name);
		}
	}
	return NVCF_OK;
}

static nvcf_status dup_to(const char **dst, const char *src)
{
	*dst = nvcf__strdup(src);
	return *dst ? NVCF_OK : NVCF_ENOMEM;
}

static nvcf_status copy_cluster(nvcf_cluster_info *dst,
				const nvcf_cluster_info *src)
{
	nvcf_gpu_info *gpus = NULL;
	const char **attrs = NULL;

	memset(dst, 0, sizeof(*dst));
	dst->version = NVCF_CLUSTER_INFO_VERSION;
	dst->healthy = src->healthy;
	dst->heartbeat_ms = src->heartbeat_ms;
	if (dup_to(&dst->cluster_id, src->cluster_id) ||
	    dup_to(&dst->name, src->name ? src->name : src->cluster_id) ||
	    dup_to(&dst->group, src->group ? src->group : src->cluster_id) ||
	    dup_to(&dst->region, src->region ? src->region : "local"))
		goto oom;
	if (src->attributes_count > 0) {
		attrs = calloc(src->attributes_count, sizeof(*attrs));
		if (attrs == NULL)
			goto oom;
		dst->attributes = attrs;
		dst->attributes_count = src->attributes_count;
		for (size_t i = 0; i < src->attributes_count; i++)
			if (dup_to(&attrs[i], src->attributes[i]))
				goto oom;
	}
	if (src->gpus_count > 0) {
		gpus = calloc(src->gpus_count, sizeof(*gpus));
		if (gpus == NULL)
			goto oom;
		dst->gpus = gpus;
		dst->gpus_count = src->gpus_count;
	}
	for (size_t i = 0; i < src->gpus_count; i++) {
		const nvcf_gpu_info *sg = &src->gpus[i];
		nvcf_gpu_info *g = &gpus[i];
		nvcf_instance_type_info *types;

		g->capacity = sg->capacity;
		g->allocated = sg->allocated;
		if (dup_to(&g->name, sg->name))
			goto oom;
		if (sg->instance_types_count == 0)
			continue;
		types = calloc(sg->instance_types_count, sizeof(*types));
		if (types == NULL)
			goto oom;
		g->instance_types = types;
		g->instance_types_count = sg->instance_types_count;
		for (size_t j = 0; j < sg->instance_types_count; j++) {
			const nvcf_instance_type_info *st =
				&sg->instance_types[j];

			types[j].is_default = st->is_default;
			types[j].gpu_count = st->gpu_count;
			if (dup_to(&types[j].name, st->name) ||
			    dup_to(&types[j].description,
				   st->description ? st->description : ""))
				goto oom;
		}
	}
	return NVCF_OK;
oom:
	cluster_clear(dst);
	return nvcf__error_oom();
}

/* ---- inventory --------------------------------------------------------- */

nvcf_status nvcf_inventory_new(nvcf_inventory **out)
{
	if (out == NULL)
		return nvcf__error_set(NVCF_EINVAL,
				       "nvcf_inventory_new: out is NULL");
	*out = calloc(1, sizeof(**out));
	return *out ? NVCF_OK : nvcf__error_oom();
}

void nvcf_inventory_free(nvcf_inventory *inv)
{
	if (inv == NULL)
		return;
	for (size_t i = 0; i < inv->count; i++)
		cluster_clear(&inv->clusters[i]);
	free(inv->clusters);
	free(inv);
}

static ssize_t index_of(const nvcf_inventory *inv, const char *id)
{
	for (size_t i = 0; i < inv->count; i++)
		if (strcmp(inv->clusters[i].cluster_id, id) == 0)
			return (ssize_t)i;
	return -1;
}

nvcf_status nvcf_inventory_add_cluster(nvcf_inventory *inv,
				       const nvcf_cluster_info *c)
{
	nvcf_cluster_info copy;
	nvcf_status st;
	ssize_t at;

	if (inv == NULL || c == NULL)
		return nvcf__error_set(NVCF_EINVAL,
				       "nvcf_inventory_add_cluster: %s is NULL",
				       inv ? "cluster" : "inventory");
	if ((st = check_cluster(c)) != NVCF_OK)
		return st;
	at = index_of(inv, c->cluster_id);
	if (at < 0 && inv->count == inv->cap) {
		size_t cap = inv->cap ? inv->cap * 2 : 8;
		nvcf_cluster_info *grown =
			realloc(inv->clusters, cap * sizeof(*grown));

		if (grown == NULL)
			return nvcf__error_oom();
		inv->clusters = grown;
		inv->cap = cap;
	}
	if ((st = copy_cluster(&copy, c)) != NVCF_OK)
		return st;
	if (at >= 0) {
		cluster_clear(&inv->clusters[at]);
		inv->clusters[at] = copy;
	} else {
		inv->clusters[inv->count++] = copy;
	}
	return NVCF_OK;
}

nvcf_status nvcf_inventory_remove(nvcf_inventory *inv, const char *cluster_id)
{
	ssize_t at;

	if (inv == NULL || cluster_id == NULL)
		return nvcf__error_set(NVCF_EINVAL,
				       "nvcf_inventory_remove: %s is NULL",
				       inv ? "cluster_id" : "inventory");
	at = index_of(inv, cluster_id);
	if (at < 0)
		return nvcf__error_set(NVCF_ENOTFOUND,
				       "no cluster with id '%s' in the "
				       "inventory",
				       cluster_id);
	cluster_clear(&inv->clusters[at]);
	memmove(&inv->clusters[at], &inv->clusters[at + 1],
		(inv->count - (size_t)at - 1) * sizeof(inv->clusters[0]));
	inv->count--;
	return NVCF_OK;
}

size_t nvcf_inventory_count(const nvcf_inventory *inv)
{
	return inv ? inv->count : 0;
}

const nvcf_cluster_info *nvcf_inventory_cluster(const nvcf_inventory *inv,
						size_t index)
{
	if (inv == NULL || index >= inv->count)
		return NULL;
	return &inv->clusters[index];
}

nvcf_status nvcf_inventory_find(const nvcf_inventory *inv,
				const char *id_or_name, size_t *index_out)
{
	ssize_t at;

	if (inv == NULL || id_or_name == NULL || index_out == NULL)
		return nvcf__error_set(NVCF_EINVAL,
				       "nvcf_inventory_find: an argument is "
				       "NULL");
	at = index_of(inv, id_or_name);
	for (size_t i = 0; at < 0 && i < inv->count; i++)
		if (strcasecmp(inv->clusters[i].cluster_id, id_or_name) == 0 ||
		    strcasecmp(inv->clusters[i].name, id_or_name) == 0)
			at = (ssize_t)i;
	if (at < 0)
		return nvcf__error_set(NVCF_ENOTFOUND,
				       "no cluster has id or name '%s'",
				       id_or_name);
	*index_out = (size_t)at;
	return NVCF_OK;
}

bool nvcf_inventory_cluster_healthy(const nvcf_inventory *inv, size_t index,
				    int64_t now_ms,
				    int64_t heartbeat_timeout_ms)
{
	const nvcf_cluster_info *c = nvcf_inventory_cluster(inv, index);

	if (c == NULL || !c->healthy || c->heartbeat_ms <= 0)
		return false;
	if (heartbeat_timeout_ms <= 0)
		heartbeat_timeout_ms = NVCF_HEARTBEAT_TIMEOUT_MS_DEFAULT;
	/* Subtracting in this order cannot overflow for positive times. */
	return now_ms <= c->heartbeat_ms ||
	       now_ms - c->heartbeat_ms <= heartbeat_timeout_ms;
}

nvcf_status nvcf_inventory_remove_unhealthy(nvcf_inventory *inv,
					    int64_t now_ms,
					    int64_t heartbeat_timeout_ms,
					    size_t *removed_out)
{
	size_t kept = 0, removed = 0;

	if (inv == NULL)
		return nvcf__error_set(NVCF_EINVAL,
				       "nvcf_inventory_remove_unhealthy: "
				       "inventory is NULL");
	for (size_t i = 0; i < inv->count; i++) {
		if (nvcf_inventory_cluster_healthy(inv, i, now_ms,
						   heartbeat_timeout_ms)) {
			inv->clusters[kept++] = inv->clusters[i];
		} else {
			cluster_clear(&inv->clusters[i]);
			removed++;
		}
	}
	inv->count = kept;
	if (removed_out != NULL)
		*removed_out = removed;
	return NVCF_OK;
}

/* ---- JSON records ------------------------------------------------------ */

#define RECORD "cluster record: "

static nvcf_status bad_field(const char *field, const char *rule)
{
	return nvcf__error_set(NVCF_EINVAL, RECORD "%s %s", field, rule);
}

/* Reads an optional string member; NVCF_EINVAL when it is not a string. */
static nvcf_status opt_string(const cJSON *obj, const char *key,
			      const char *path, const char **out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	*out = NULL;
	if (v == NULL || cJSON_IsNull(v))
		return NVCF_OK;
	if (!cJSON_IsString(v))
		return bad_field(path, "must be a string");
	*out = v->valuestring;
	return NVCF_OK;
}

static nvcf_status req_string(const cJSON *obj, const char *key,
			      const char *path, const char **out)
{
	nvcf_status st = opt_string(obj, key, path, out);

	if (st == NVCF_OK && (*out == NULL || **out == '\0'))
		return bad_field(path, "is required and must be a non-empty "
				       "string");
	return st;
}

/*
 * Reads an integer member from @p min to INT_MAX. A missing member gives
 * @p dflt, or is an error when @p dflt is negative.
 */
static nvcf_status int_field(const cJSON *obj, const char *key,
			     const char *path, int min, int dflt,
			     unsigned int *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	const char *rule = min > 0 ? "must be a positive integer"
				   : "must be a non-negative integer";
	double x;

	if (v == NULL || cJSON_IsNull(v)) {
		if (dflt < 0)
			return bad_field(path, rule);
		*out = (unsigned int)dflt;
		return NVCF_OK;
	}
	if (!cJSON_IsNumber(v))
		return bad_field(path, rule);
	x = v->valuedouble;
	if (!isfinite(x) || x != floor(x) || x < min || x > INT_MAX)
		return bad_field(path, rule);
	*out = (unsigned int)x;
	return NVCF_OK;
}

typedef struct decoded {
	nvcf_cluster_info info;
	const char **attributes;
	nvcf_gpu_info *gpus;
} decoded;

static void decoded_free(decoded *d)
{
	for (size_t i = 0; d->gpus != NULL && i < d->info.gpus_count; i++)
		free((void *)d->gpus[i].instance_types);
	free(d->gpus);
	free(d->attributes);
}

static nvcf_status decode_types(const cJSON *arr, size_t gi, nvcf_gpu_info *g)
{
	nvcf_instance_type_info *types;
	const cJSON *t;
	char path[96];
	size_t j = 0, n;
	nvcf_status st;

	snprintf(path, sizeof(path), "gpus[%zu].instanceTypes", gi);
	if (!cJSON_IsArray(arr))
		return bad_field(path, "is required and must be an array");
	n = (size_t)cJSON_GetArraySize(arr);
	types = calloc(n ? n : 1, sizeof(*types));
	if (types == NULL)
		return nvcf__error_oom();
	g->instance_types = types;
	g->instance_types_count = n;
	cJSON_ArrayForEach(t, arr) {
		const cJSON *def;

		snprintf(path, sizeof(path), "gpus[%zu].instanceTypes[%zu]",
			 gi, j);
		if (!cJSON_IsObject(t))
			return bad_field(path, "must be an object");
		snprintf(path, sizeof(path),
			 "gpus[%zu].instanceTypes[%zu].name", gi, j);
		if ((st = req_string(t, "name", path, &types[j].name)))
			return st;
		snprintf(path, sizeof(path),
			 "gpus[%zu].instanceTypes[%zu].description", gi, j);
		if ((st = opt_string(t, "description", path,
				     &types[j].description)))
			return st;
		snprintf(path, sizeof(path),
			 "gpus[%zu].instanceTypes[%zu].gpuCount", gi, j);
		if ((st = int_field(t, "gpuCount", path, 1, -1,
				    &types[j].gpu_count)))
			return st;
		def = cJSON_GetObjectItemCaseSensitive(t, "default");
		if (def != NULL && !cJSON_IsBool(def) && !cJSON_IsNull(def)) {
			snprintf(path, sizeof(path),
				 "gpus[%zu].instanceTypes[%zu].default", gi,
				 j);
			return bad_field(path, "must be true or false");
		}
		types[j].is_default = cJSON_IsTrue(def);
		j++;
	}
	return NVCF_OK;
}

static nvcf_status decode_gpus(const cJSON *arr, decoded *d)
{
	const cJSON *g;
	char path[64];
	size_t i = 0, n;
	nvcf_status st;

	if (!cJSON_IsArray(arr))
		return bad_field("gpus", "is required and must be an array");
	n = (size_t)cJSON_GetArraySize(arr);
	d->gpus = calloc(n ? n : 1, sizeof(*d->gpus));
	if (d->gpus == NULL)
		return nvcf__error_oom();
	d->info.gpus = d->gpus;
	d->info.gpus_count = n;
	cJSON_ArrayForEach(g, arr) {
		nvcf_gpu_info *gi = &d->gpus[i];

		snprintf(path, sizeof(path), "gpus[%zu]", i);
		if (!cJSON_IsObject(g))
			return bad_field(path, "must be an object");
		snprintf(path, sizeof(path), "gpus[%zu].name", i);
		if ((st = req_string(g, "name", path, &gi->name)))
			return st;
		for (size_t k = 0; k < i; k++)
			if (strcasecmp(d->gpus[k].name, gi->name) == 0) {
				return nvcf__error_set(
					NVCF_EINVAL,
					RECORD "gpus[%zu].name '%s' repeats "
					"gpus[%zu]; list each GPU type once",
					i, gi->name, k);
			}
		snprintf(path, sizeof(path), "gpus[%zu].capacity", i);
		if ((st = int_field(g, "capacity", path, 0, -1,
				    &gi->capacity)))
			return st;
		snprintf(path, sizeof(path), "gpus[%zu].allocated", i);
		if ((st = int_field(g, "allocated", path, 0, 0,
				    &gi->allocated)))
			return st;
		if ((st = decode_types(cJSON_GetObjectItemCaseSensitive(
					       g, "instanceTypes"),
				       i, gi)))
			return st;
		i++;
	}
	return NVCF_OK;
}

static nvcf_status decode_heartbeat(const cJSON *obj, int64_t *ms_out)
{
	const cJSON *ms = cJSON_GetObjectItemCaseSensitive(obj,
							   "heartbeatAtMs");
	const cJSON *at = cJSON_GetObjectItemCaseSensitive(obj,
							   "heartbeatAt");

	if (ms != NULL && !cJSON_IsNull(ms)) {
		double x = ms->valuedouble;

		/* Above 2^53 a double cannot represent every integer. */
		if (!cJSON_IsNumber(ms) || !isfinite(x) || x != floor(x) ||
		    x < 0 || x > 9007199254740992.0)
			return bad_field("heartbeatAtMs",
					 "must be a non-negative integer of "
					 "ms since the epoch");
		*ms_out = (int64_t)x;
		return NVCF_OK;
	}
	if (at == NULL || cJSON_IsNull(at))
		return bad_field("heartbeatAt",
				 "or heartbeatAtMs is required");
	if (!cJSON_IsString(at) ||
	    nvcf__routing_parse_rfc3339(at->valuestring, ms_out) != NVCF_OK)
		return bad_field("heartbeatAt",
				 "must be an RFC 3339 time such as "
				 "2024-05-01T12:00:00.000Z");
	return NVCF_OK;
}

static nvcf_status decode_record(const cJSON *obj, decoded *d)
{
	const cJSON *attrs;
	const char *health;
	nvcf_status st;

	d->info.version = NVCF_CLUSTER_INFO_VERSION;
	if (!cJSON_IsObject(obj))
		return nvcf__error_set(NVCF_EINVAL,
				       RECORD "must be a JSON object");
	if ((st = req_string(obj, "clusterId", "clusterId",
			     &d->info.cluster_id)))
		return st;
	if (!id_valid(d->info.cluster_id))
		return nvcf__error_set(NVCF_EINVAL,
				       RECORD "clusterId '%s' must be 1 to 64 "
				       "letters, digits, '-' or '_'",
				       d->info.cluster_id);
	if ((st = opt_string(obj, "name", "name", &d->info.name)) ||
	    (st = opt_string(obj, "group", "group", &d->info.group)) ||
	    (st = opt_string(obj, "region", "region", &d->info.region)) ||
	    (st = opt_string(obj, "health", "health", &health)))
		return st;
	d->info.healthy = health == NULL || strcmp(health, "healthy") == 0;
	attrs = cJSON_GetObjectItemCaseSensitive(obj, "attributes");
	if (attrs != NULL && !cJSON_IsNull(attrs)) {
		const cJSON *a;
		size_t i = 0, n;

		if (!cJSON_IsArray(attrs))
			return bad_field("attributes",
					 "must be an array of strings");
		n = (size_t)cJSON_GetArraySize(attrs);
		d->attributes = calloc(n ? n : 1, sizeof(*d->attributes));
		if (d->attributes == NULL)
			return nvcf__error_oom();
		d->info.attributes = d->attributes;
		d->info.attributes_count = n;
		cJSON_ArrayForEach(a, attrs) {
			if (!cJSON_IsString(a))
				return nvcf__error_set(
					NVCF_EINVAL,
					RECORD "attributes[%zu] must be a "
					"string",
					i);
			d->attributes[i++] = a->valuestring;
		}
	}
	if ((st = decode_gpus(cJSON_GetObjectItemCaseSensitive(obj, "gpus"),
			      d)))
		return st;
	return decode_heartbeat(obj, &d->info.heartbeat_ms);
}

nvcf_status nvcf_inventory_add_cluster_json(nvcf_inventory *inv,
					    const char *json)
{
	decoded d;
	cJSON *obj;
	nvcf_status st;

	if (inv == NULL || json == NULL)
		return nvcf__error_set(NVCF_EINVAL,
				       "nvcf_inventory_add_cluster_json: %s is "
				       "NULL",
				       inv ? "json" : "inventory");
	obj = cJSON_Parse(json);
	if (obj == NULL)
		return nvcf__error_set(NVCF_EINVAL,
				       RECORD "not valid JSON near offset %td",
				       cJSON_GetErrorPtr()
					       ? cJSON_GetErrorPtr() - json
					       : (ptrdiff_t)0);
	memset(&d, 0, sizeof(d));
	st = decode_record(obj, &d);
	if (st == NVCF_OK)
		st = nvcf_inventory_add_cluster(inv, &d.info);
	decoded_free(&d);
	cJSON_Delete(obj);
	return st;
}

/* ---- clusterGroups ----------------------------------------------------- */

/* Name-based UUID, RFC 9562 version 8, from SHA-256 of the lower name. */
static void group_uuid(const char *name, char out[37])
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	char *lower = nvcf__strdup(name);
	size_t n = strlen(name);

	if (lower != NULL)
		for (size_t i = 0; i < n; i++)
			if (lower[i] >= 'A' && lower[i] <= 'Z')
				lower[i] = (char)(lower[i] - 'A' + 'a');
	SHA256((const unsigned char *)(lower ? lower : name), n, md);
	free(lower);
	md[6] = (unsigned char)((md[6] & 0x0f) | 0x80);
	md[8] = (unsigned char)((md[8] & 0x3f) | 0x80);
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x",
		 md[0], md[1], md[2], md[3], md[4], md[5], md[6], md[7], md[8],
		 md[9], md[10], md[11], md[12], md[13], md[14], md[15]);
}

static int by_group_name(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	int c = strcasecmp(x, y);

	return c ? c : strcmp(x, y);
}

static cJSON *find_named(cJSON *arr, const char *name)
{
	cJSON *e;

	cJSON_ArrayForEach(e, arr) {
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(e, "name");

		if (cJSON_IsString(n) && strcasecmp(n->valuestring, name) == 0)
			return e;
	}
	return NULL;
}

/* Adds the cluster's GPUs and instance types to the group's list. */
static bool merge_gpus(cJSON *into, const nvcf_cluster_info *c)
{
	for (size_t i = 0; i < c->gpus_count; i++) {
		const nvcf_gpu_info *g = &c->gpus[i];
		cJSON *mine = find_named(into, g->name), *types;

		if (mine == NULL) {
			mine = cJSON_CreateObject();
			if (mine == NULL || !cJSON_AddItemToArray(into, mine) ||
			    !cJSON_AddStringToObject(mine, "name", g->name) ||
			    !cJSON_AddArrayToObject(mine, "instanceTypes"))
				return false;
		}
		types = cJSON_GetObjectItemCaseSensitive(mine, "instanceTypes");
		for (size_t j = 0; j < g->instance_types_count; j++) {
			const nvcf_instance_type_info *t =
				&g->instance_types[j];
			cJSON *to;

			if (find_named(types, t->name) != NULL)
				continue;
			to = cJSON_CreateObject();
			if (to == NULL || !cJSON_AddItemToArray(types, to) ||
			    !cJSON_AddStringToObject(to, "name", t->name) ||
			    !cJSON_AddStringToObject(to, "description",
						     t->description) ||
			    !cJSON_AddBoolToObject(to, "default",
						   t->is_default))
				return false;
		}
	}
	return true;
}

static bool add_cluster_entry(cJSON *arr, const nvcf_cluster_info *c)
{
	cJSON *e = cJSON_CreateObject(), *gpus;

	if (e == NULL || !cJSON_AddItemToArray(arr, e) ||
	    !cJSON_AddStringToObject(e, "id", c->cluster_id) ||
	    !cJSON_AddStringToObject(e, "name", c->name) ||
	    !cJSON_AddStringToObject(e, "k8sVersion", "") ||
	    !cJSON_AddStringToObject(e, "region", c->region) ||
	    !cJSON_AddStringToObject(e, "health",
				     c->healthy ? "healthy" : "unhealthy") ||
	    (gpus = cJSON_AddArrayToObject(e, "gpus")) == NULL)
		return false;
	for (size_t i = 0; i < c->gpus_count; i++) {
		const nvcf_gpu_info *g = &c->gpus[i];
		cJSON *go = cJSON_CreateObject();
		unsigned int free_gpus = g->allocated < g->capacity
						 ? g->capacity - g->allocated
						 : 0;

		if (go == NULL || !cJSON_AddItemToArray(gpus, go) ||
		    !cJSON_AddStringToObject(go, "name", g->name) ||
		    !cJSON_AddNumberToObject(go, "capacity", g->capacity) ||
		    !cJSON_AddNumberToObject(go, "allocated", g->allocated) ||
		    !cJSON_AddNumberToObject(go, "available", free_gpus))
			return false;
	}
	return true;
}

static bool add_group(cJSON *groups, const nvcf_inventory *inv,
		      const size_t *order, const char *gname,
		      const char *nca_id)
{
	cJSON *g = cJSON_CreateObject(), *ids, *gpus, *clusters;
	char id[37];

	group_uuid(gname, id);
	if (g == NULL || !cJSON_AddItemToArray(groups, g) ||
	    !cJSON_AddStringToObject(g, "id", id) ||
	    !cJSON_AddStringToObject(g, "name", gname) ||
	    !cJSON_AddStringToObject(g, "ncaId", nca_id) ||
	    (ids = cJSON_AddArrayToObject(g, "authorizedNcaIds")) == NULL ||
	    !cJSON_AddItemToArray(ids, cJSON_CreateString(nca_id)) ||
	    (gpus = cJSON_AddArrayToObject(g, "gpus")) == NULL ||
	    (clusters = cJSON_AddArrayToObject(g, "clusters")) == NULL)
		return false;
	for (size_t k = 0; k < inv->count; k++) {
		const nvcf_cluster_info *c = &inv->clusters[order[k]];

		if (strcasecmp(c->group, gname) != 0)
			continue;
		if (!merge_gpus(gpus, c) || !add_cluster_entry(clusters, c))
			return false;
	}
	return true;
}

nvcf_status nvcf_inventory_cluster_groups_json(const nvcf_inventory *inv,
					       const char *nca_id,
					       char **json_out)
{
	size_t *order = NULL, ngroups = 0;
	const char **names = NULL;
	cJSON *body = NULL, *groups;
	bool ok = false;

	if (inv == NULL || nca_id == NULL || json_out == NULL)
		return nvcf__error_set(NVCF_EINVAL,
				       "nvcf_inventory_cluster_groups_json: an "
				       "argument is NULL");
	*json_out = NULL;
	order = calloc(inv->count ? inv->count : 1, sizeof(*order));
	names = calloc(inv->count ? inv->count : 1, sizeof(*names));
	body = cJSON_CreateObject();
	if (order == NULL || names == NULL || body == NULL)
		goto out;
	for (size_t i = 0; i < inv->count; i++)
		order[i] = i;
	/*
	 * qsort has no context argument in C11, and a static pointer to
	 * the inventory would race between threads that list at once.
	 */
	for (size_t i = 1; i < inv->count; i++) {
		size_t v = order[i], j = i;

		while (j > 0 && strcmp(inv->clusters[order[j - 1]].cluster_id,
				       inv->clusters[v].cluster_id) > 0) {
			order[j] = order[j - 1];
			j--;
		}
		order[j] = v;
	}
	/* The first spelling in cluster id order names the group. */
	for (size_t k = 0; k < inv->count; k++) {
		const char *gname = inv->clusters[order[k]].group;
		bool seen = false;

		for (size_t j = 0; j < ngroups && !seen; j++)
			seen = strcasecmp(names[j], gname) == 0;
		if (!seen)
			names[ngroups++] = gname;
	}
	qsort(names, ngroups, sizeof(*names), by_group_name);
	groups = cJSON_AddArrayToObject(body, "clusterGroups");
	if (groups == NULL)
		goto out;
	for (size_t j = 0; j < ngroups; j++)
		if (!add_group(groups, inv, order, names[j], nca_id))
			goto out;
	*json_out = cJSON_PrintUnformatted(body);
	ok = *json_out != NULL;
out:
	cJSON_Delete(body);
	free(order);
	free(names);
	return ok ? NVCF_OK : nvcf__error_oom();
}
