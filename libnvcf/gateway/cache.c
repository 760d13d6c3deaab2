/* SPDX-License-Identifier: Apache-2.0 */
/*
 * In-memory copies of KV nvcf_keys, nvcf_functions and nvcf_instances for
 * the gateway, so that authenticating and routing a request reads no KV
 * and the gateway knows when a version has no ready instance. One watcher
 * thread per bucket applies every change as it is stored.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "gateway/gateway_internal.h"

#define CACHE_BUCKETS 4096u

typedef enum fn_status {
	FN_OTHER = 0,
	FN_ACTIVE,
	FN_DEGRADING,
	FN_DEGRADED,
} fn_status;

typedef struct key_node {
	struct key_node *next;
	char hash[65];
	nvcf__key_record rec;
} key_node;

typedef struct fn_node {
	struct fn_node *next;
	char nca_id[NVCF_NCA_ID_MAX + 1];
	char function_id[NVCF_UUID_LEN + 1];
	char version_id[NVCF_UUID_LEN + 1];
	fn_status status;
	char name[256];
	char inference_url[1024];
} fn_node;

/* One instance record: enough to count a version's ready instances. */
typedef struct inst_node {
	struct inst_node *next;
	char version_id[NVCF_UUID_LEN + 1];
	char instance_id[96];
	bool ready;
	bool starting;
} inst_node;

typedef struct watch {
	nvcf__gw_cache *cache;
	const char *bucket;
	nvcf__kv_mirror mirror;
	bool initial_done;
} watch;

struct nvcf__gw_cache {
	nvcf_bus *bus;
	pthread_rwlock_t lock;
	key_node *keys[CACHE_BUCKETS];
	fn_node *fns[CACHE_BUCKETS]; /* chained by function id */
	inst_node *insts[CACHE_BUCKETS]; /* chained by version id */

	pthread_mutex_t ready_lock;
	pthread_cond_t ready_cond;
	watch key_watch;
	watch fn_watch;
	watch inst_watch;
};

static unsigned int hash_str(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % CACHE_BUCKETS;
}

/* ---- keys ------------------------------------------------------------- */

static void key_put(nvcf__gw_cache *c, const char *hash,
		    const nvcf__key_record *rec)
{
	unsigned int b = hash_str(hash);
	key_node *n;

	pthread_rwlock_wrlock(&c->lock);
	for (n = c->keys[b]; n != NULL; n = n->next)
		if (strcmp(n->hash, hash) == 0)
			break;
	if (n == NULL && (n = calloc(1, sizeof(*n))) != NULL) {
		snprintf(n->hash, sizeof(n->hash), "%s", hash);
		n->next = c->keys[b];
		c->keys[b] = n;
	}
	if (n != NULL)
		n->rec = *rec;
	pthread_rwlock_unlock(&c->lock);
}

static void key_del(nvcf__gw_cache *c, const char *hash)
{
	key_node **pp, *n;

	pthread_rwlock_wrlock(&c->lock);
	for (pp = &c->keys[hash_str(hash)]; (n = *pp) != NULL; pp = &n->next) {
		if (strcmp(n->hash, hash) == 0) {
			*pp = n->next;
			free(n);
			break;
		}
	}
	pthread_rwlock_unlock(&c->lock);
}

nvcf_status nvcf__gw_key_lookup(nvcf__gw_cache *c, const char *key,
				nvcf__key_record *out)
{
	char hash[65];
	key_node *n;
	nvcf_status st;

	if ((st = nvcf__key_hash_presented(key, hash)) != NVCF_OK)
		return st;
	pthread_rwlock_rdlock(&c->lock);
	for (n = c->keys[hash_str(hash)]; n != NULL; n = n->next) {
		if (strcmp(n->hash, hash) == 0) {
			*out = n->rec;
			pthread_rwlock_unlock(&c->lock);
			return NVCF_OK;
		}
	}
	pthread_rwlock_unlock(&c->lock);

	/* A key created a moment ago may not have reached the watcher. */
	st = nvcf__key_lookup(c->bus, key, out);
	if (st == NVCF_OK)
		key_put(c, hash, out);
	return st;
}

/* ---- function versions ------------------------------------------------ */

static fn_status status_parse(const char *s)
{
	if (s == NULL)
		return FN_OTHER;
	if (strcmp(s, "ACTIVE") == 0)
		return FN_ACTIVE;
	if (strcmp(s, "DEGRADING") == 0)
		return FN_DEGRADING;
	if (strcmp(s, "DEGRADED") == 0)
		return FN_DEGRADED;
	return FN_OTHER;
}

/* Splits a KV key "{ncaId}.{functionId}.{versionId}" into @p n's ids. */
static bool fn_key_parse(const char *key, fn_node *n)
{
	const char *d1 = strchr(key, '.'), *d2;

	if (d1 == NULL || (size_t)(d1 - key) > NVCF_NCA_ID_MAX)
		return false;
	d2 = strchr(d1 + 1, '.');
	if (d2 == NULL || d2 - d1 - 1 != NVCF_UUID_LEN ||
	    strlen(d2 + 1) != NVCF_UUID_LEN)
		return false;
	memcpy(n->nca_id, key, (size_t)(d1 - key));
	n->nca_id[d1 - key] = '\0';
	memcpy(n->function_id, d1 + 1, NVCF_UUID_LEN);
	n->function_id[NVCF_UUID_LEN] = '\0';
	memcpy(n->version_id, d2 + 1, NVCF_UUID_LEN);
	n->version_id[NVCF_UUID_LEN] = '\0';
	return true;
}

static void fn_del(nvcf__gw_cache *c, const fn_node *k)
{
	fn_node **pp, *n;

	pthread_rwlock_wrlock(&c->lock);
	for (pp = &c->fns[hash_str(k->function_id)]; (n = *pp) != NULL;
	     pp = &n->next) {
		if (strcmp(n->version_id, k->version_id) == 0 &&
		    strcmp(n->function_id, k->function_id) == 0 &&
		    strcmp(n->nca_id, k->nca_id) == 0) {
			*pp = n->next;
			free(n);
			break;
		}
	}
	pthread_rwlock_unlock(&c->lock);
}

/* Applies one stored function record (JSON) under KV key @p key. */
static void fn_put(nvcf__gw_cache *c, const char *key, const char *json,
		   size_t len)
{
	fn_node rec = {0}, *n;
	cJSON *doc;
	const char *s;
	unsigned int b;

	if (!fn_key_parse(key, &rec))
		return;
	doc = cJSON_ParseWithLength(json, len);
	if (doc == NULL) {
		nvcf_log_warn("gateway",
			      "invalid JSON in function record '%s'; "
			      "skipping it",
			      key);
		return;
	}
	rec.status = status_parse(
		cJSON_GetStringValue(cJSON_GetObjectItem(doc, "status")));
	s = cJSON_GetStringValue(cJSON_GetObjectItem(doc, "name"));
	snprintf(rec.name, sizeof(rec.name), "%s", s ? s : "");
	s = cJSON_GetStringValue(cJSON_GetObjectItem(doc, "inferenceUrl"));
	snprintf(rec.inference_url, sizeof(rec.inference_url), "%s%s",
		 s && s[0] == '/' ? "" : "/", s ? s : "");
	cJSON_Delete(doc);

	b = hash_str(rec.function_id);
	pthread_rwlock_wrlock(&c->lock);
	for (n = c->fns[b]; n != NULL; n = n->next)
		if (strcmp(n->version_id, rec.version_id) == 0 &&
		    strcmp(n->function_id, rec.function_id) == 0 &&
		    strcmp(n->nca_id, rec.nca_id) == 0)
			break;
	if (n == NULL && (n = malloc(sizeof(*n))) != NULL) {
		rec.next = c->fns[b];
		*n = rec;
		c->fns[b] = n;
	} else if (n != NULL) {
		rec.next = n->next;
		*n = rec;
	}
	pthread_rwlock_unlock(&c->lock);
}

static void target_fill(nvcf__gw_target *out, const fn_node *n)
{
	memcpy(out->version_id, n->version_id, sizeof(out->version_id));
	memcpy(out->name, n->name, sizeof(out->name));
	memcpy(out->inference_url, n->inference_url,
	       sizeof(out->inference_url));
}

/* Per-thread generator for the random pick among versions. */
static unsigned int pick_random(unsigned int n)
{
	static _Thread_local uint64_t x;

	if (x == 0)
		x = (uint64_t)nvcf__mono_us() | 1;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return (unsigned int)(x % n);
}

/* Resolves from memory only; see nvcf__gw_resolve(). */
static nvcf_status resolve_cached(nvcf__gw_cache *c, const char *nca_id,
				  const char *function_id,
				  const char *version_id, nvcf__gw_target *out)
{
	unsigned int candidates = 0, pick;
	bool degraded = false;
	fn_node *n;

	pthread_rwlock_rdlock(&c->lock);
	for (n = c->fns[hash_str(function_id)]; n != NULL; n = n->next) {
		if (strcmp(n->function_id, function_id) != 0 ||
		    strcmp(n->nca_id, nca_id) != 0)
			continue;
		if (version_id != NULL &&
		    strcmp(n->version_id, version_id) != 0)
			continue;
		if (n->status == FN_ACTIVE || n->status == FN_DEGRADING)
			candidates++;
		else if (n->status == FN_DEGRADED)
			degraded = true;
	}
	if (candidates == 0) {
		pthread_rwlock_unlock(&c->lock);
		return degraded ? NVCF_EUNAVAILABLE : NVCF_ENOTFOUND;
	}
	pick = candidates > 1 ? pick_random(candidates) : 0;
	for (n = c->fns[hash_str(function_id)]; n != NULL; n = n->next) {
		if (strcmp(n->function_id, function_id) != 0 ||
		    strcmp(n->nca_id, nca_id) != 0 ||
		    (version_id != NULL &&
		     strcmp(n->version_id, version_id) != 0) ||
		    (n->status != FN_ACTIVE && n->status != FN_DEGRADING))
			continue;
		if (pick-- == 0) {
			target_fill(out, n);
			break;
		}
	}
	pthread_rwlock_unlock(&c->lock);
	return NVCF_OK;
}

/* Reads one version's record from KV into the cache. */
static void refresh_key(nvcf__gw_cache *c, const char *key)
{
	char *json = NULL;
	size_t len = 0;

	if (nvcf_bus_kv_get(c->bus, NVCF_BUCKET_FUNCTIONS, key, &json, &len,
			    NULL) == NVCF_OK)
		fn_put(c, key, json, len);
	nvcf_free(json);
}

nvcf_status nvcf__gw_resolve(nvcf__gw_cache *c, const char *nca_id,
			     const char *function_id, const char *version_id,
			     nvcf__gw_target *out)
{
	char key[160];
	char **keys = NULL;
	size_t count = 0;
	nvcf_status st;

	st = resolve_cached(c, nca_id, function_id, version_id, out);
	if (st == NVCF_OK)
		return st;

	/*
	 * The caller may have seen a status change through the API before
	 * the watcher delivered it; re-read KV before returning not found.
	 */
	if (version_id != NULL) {
		snprintf(key, sizeof(key), "%s.%s.%s", nca_id, function_id,
			 version_id);
		refresh_key(c, key);
	} else {
		snprintf(key, sizeof(key), "%s.%s.*", nca_id, function_id);
		if (nvcf_bus_kv_keys(c->bus, NVCF_BUCKET_FUNCTIONS, key, &keys,
				     &count) == NVCF_OK) {
			for (size_t i = 0; i < count; i++)
				refresh_key(c, keys[i]);
			nvcf_strings_free(keys, count);
		}
	}
	return resolve_cached(c, nca_id, function_id, version_id, out);
}

/* ---- instances ------------------------------------------------------- */

/* Applies one instance record under KV key "{versionId}.{instanceId}". */
static void inst_apply(nvcf__gw_cache *c, const char *key, const char *json,
		       size_t len, bool removed)
{
	const char *dot = strchr(key, '.');
	inst_node **pp, *n;
	const char *st = NULL;
	cJSON *doc = NULL;
	unsigned int b;

	if (dot == NULL || dot - key != NVCF_UUID_LEN ||
	    strlen(dot + 1) >= sizeof(n->instance_id))
		return;
	if (!removed) {
		doc = cJSON_ParseWithLength(json, len);
		st = cJSON_GetStringValue(cJSON_GetObjectItem(doc,
							      "instanceStatus"));
	}
	{
		char vid[NVCF_UUID_LEN + 1];

		memcpy(vid, key, NVCF_UUID_LEN);
		vid[NVCF_UUID_LEN] = '\0';
		b = hash_str(vid);
		pthread_rwlock_wrlock(&c->lock);
		for (pp = &c->insts[b]; (n = *pp) != NULL; pp = &n->next)
			if (strcmp(n->version_id, vid) == 0 &&
			    strcmp(n->instance_id, dot + 1) == 0)
				break;
		if (removed || st == NULL || strcmp(st, "TERMINATED") == 0 ||
		    strcmp(st, "ERRORED") == 0) {
			if (n != NULL) {
				*pp = n->next;
				free(n);
			}
		} else {
			if (n == NULL && (n = calloc(1, sizeof(*n))) != NULL) {
				memcpy(n->version_id, vid, sizeof(vid));
				snprintf(n->instance_id,
					 sizeof(n->instance_id), "%s",
					 dot + 1);
				n->next = c->insts[b];
				c->insts[b] = n;
			}
			if (n != NULL) {
				n->ready = strcmp(st, "RUNNING") == 0;
				n->starting = strcmp(st, "STARTING") == 0;
			}
		}
		pthread_rwlock_unlock(&c->lock);
	}
	cJSON_Delete(doc);
}

int nvcf__gw_ready_instances(nvcf__gw_cache *c, const char *version_id)
{
	int ready = 0;

	pthread_rwlock_rdlock(&c->lock);
	for (inst_node *n = c->insts[hash_str(version_id)]; n != NULL;
	     n = n->next)
		if (n->ready && strcmp(n->version_id, version_id) == 0)
			ready++;
	pthread_rwlock_unlock(&c->lock);
	return ready;
}

/* ---- watchers --------------------------------------------------------- */

static void apply_entry(void *userdata, kvEntry *e)
{
	watch *w = userdata;
	nvcf__gw_cache *c = w->cache;
	const char *key = kvEntry_Key(e);
	kvOperation op = kvEntry_Operation(e);
	bool removed = op == kvOp_Delete || op == kvOp_Purge;

	if (w == &c->key_watch) {
		nvcf__key_record rec;

		if (removed)
			key_del(c, key);
		else if (nvcf__key_record_parse(kvEntry_Value(e),
						(size_t)kvEntry_ValueLen(e),
						&rec) == NVCF_OK)
			key_put(c, key, &rec);
	} else if (w == &c->inst_watch) {
		inst_apply(c, key, kvEntry_Value(e),
			   (size_t)kvEntry_ValueLen(e), removed);
	} else if (removed) {
		fn_node k;

		if (fn_key_parse(key, &k))
			fn_del(c, &k);
	} else {
		fn_put(c, key, kvEntry_Value(e),
		       (size_t)kvEntry_ValueLen(e));
	}
}

static void mark_ready(void *userdata)
{
	watch *w = userdata;

	pthread_mutex_lock(&w->cache->ready_lock);
	w->initial_done = true;
	pthread_cond_broadcast(&w->cache->ready_cond);
	pthread_mutex_unlock(&w->cache->ready_lock);
}

nvcf_status nvcf__gw_cache_new(nvcf__gw_cache **out, nvcf_bus *bus)
{
	nvcf__gw_cache *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (c == NULL)
		return nvcf__error_oom();
	c->bus = bus;
	pthread_rwlock_init(&c->lock, NULL);
	pthread_mutex_init(&c->ready_lock, NULL);
	pthread_cond_init(&c->ready_cond, NULL);
	c->key_watch.cache = c;
	c->key_watch.bucket = NVCF_BUCKET_KEYS;
	c->fn_watch.cache = c;
	c->fn_watch.bucket = NVCF_BUCKET_FUNCTIONS;
	c->inst_watch.cache = c;
	c->inst_watch.bucket = NVCF_BUCKET_INSTANCES;
	*out = c;
	return NVCF_OK;
}

static nvcf_status watch_start(watch *w)
{
	return nvcf__kv_mirror_start(&w->mirror, w->cache->bus, w->bucket,
				     apply_entry, mark_ready, w);
}

nvcf_status nvcf__gw_cache_start(nvcf__gw_cache *c, int64_t timeout_ms)
{
	struct timespec ts;
	nvcf_status st;
	int rc = 0;

	if ((st = watch_start(&c->key_watch)) != NVCF_OK ||
	    (st = watch_start(&c->fn_watch)) != NVCF_OK ||
	    (st = watch_start(&c->inst_watch)) != NVCF_OK)
		return st;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (timeout_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&c->ready_lock);
	while (rc == 0 &&
	       !(c->key_watch.initial_done && c->fn_watch.initial_done &&
		 c->inst_watch.initial_done))
		rc = pthread_cond_timedwait(&c->ready_cond, &c->ready_lock,
					    &ts);
	pthread_mutex_unlock(&c->ready_lock);
	if (rc != 0)
		nvcf_log_warn("gateway", "caches not filled after %lld ms; "
			      "reading KV on cache misses until they are",
			      (long long)timeout_ms);
	return NVCF_OK;
}

void nvcf__gw_cache_free(nvcf__gw_cache *c)
{
	if (c == NULL)
		return;
	nvcf__kv_mirror_stop(&c->key_watch.mirror);
	nvcf__kv_mirror_stop(&c->fn_watch.mirror);
	nvcf__kv_mirror_stop(&c->inst_watch.mirror);
	for (unsigned int i = 0; i < CACHE_BUCKETS; i++) {
		while (c->keys[i] != NULL) {
			key_node *n = c->keys[i];

			c->keys[i] = n->next;
			free(n);
		}
		while (c->fns[i] != NULL) {
			fn_node *n = c->fns[i];

			c->fns[i] = n->next;
			free(n);
		}
		while (c->insts[i] != NULL) {
			inst_node *n = c->insts[i];

			c->insts[i] = n->next;
			free(n);
		}
	}
	pthread_rwlock_destroy(&c->lock);
	pthread_mutex_destroy(&c->ready_lock);
	pthread_cond_destroy(&c->ready_cond);
	free(c);
}
