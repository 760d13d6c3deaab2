/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nvcf-autoscaler: keeps every deployed version at the instance count its
 * scaling policy requests.
 *
 * Two KV watchers mirror nvcf_deployments and nvcf_instances into one
 * table of versions. A loop evaluates each version on every tick, and at
 * once when a gateway wakes it: it reads the queue from JetStream consumer
 * info, counts ready and starting instances (creation orders that have not
 * produced an instance record yet count as starting), asks the policy for
 * the desired count, and publishes the difference as creation or
 * termination orders. Workers report how many requests they hold on
 * nvcf.load.{versionId}.{instanceId}, so that scale-down picks idle
 * instances first.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "nvcf/autoscaler.h"
#include "nvcf/routing.h"
#include "nvcf/scaling.h"

#include "bus/bus_internal.h"
#include "core/internal.h"
#include "nvcf.pb-c.h"

#define SUB "autoscaler"
#define LEASE_BUCKET "nvcf_leases"
#define TABLE_SIZE 1024u
#define MAX_VICTIMS 256
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000
#define ORDERS_MAX 32
#define ORDER_CHECK_MS 1000     /* age before an order's fate is read */
#define TAKE_TIMEOUT_MS 5000    /* an order no agent took by then moves */
#define REFUSAL_COOLDOWN_MS 60000

typedef enum inst_state {
	I_OTHER = 0,
	I_STARTING,
	I_RUNNING,
	I_ERRORED,
	I_TERMINATED,
} inst_state;

typedef struct inst {
	struct inst *next;
	char id[96];
	char cluster[96];
	char icms[40];
	char spec[40];
	inst_state state;
	int load;                /* requests held, -1 when never reported */
	int64_t terminating_ms;  /* when we ordered it stopped, 0 if not */
} inst;

/* State of one creation order this replica published. */
typedef struct order_note {
	char icms[40];
	char cluster[96];
	uint64_t seq;            /* stream sequence, 0 when unknown */
	int count;               /* instances ordered */
	int64_t ordered_ms;      /* mono */
	int refused;             /* instances the cluster will not start */
	int64_t refused_at_ms;   /* mono; 0 while none refused */
	bool settled;            /* its fate is known: no more checks */
} order_note;

typedef struct version {
	struct version *next;
	char vid[NVCF_UUID_LEN + 1];
	char key[160];           /* {ncaId}.{functionId}.{versionId} */
	cJSON *dep;              /* NULL while not deployed */
	uint64_t dep_rev;
	inst *insts;
	nvcf_scaling_history *hist;
	uint64_t last_delivered;
	int64_t last_activity_ms;
	bool lease_held;
	uint64_t lease_rev;
	int64_t lease_renewed_ms;
	int64_t next_create_ms;
	int64_t backoff_ms;
	int errored;             /* ERRORED instances seen so far */
	int64_t desired;         /* last decision, -1 before the first */
	char *fn_json;           /* function record, read once */
	order_note orders[ORDERS_MAX];
	unsigned int next_order; /* ring index into orders */
	bool kicked;             /* evaluate before the next tick */
	bool woken;              /* a gateway saw a request at zero */
} version;

struct nvcf_autoscaler {
	nvcf_autoscaler_options opts;
	char replica[64];
	char region[64];
	nvcf_bus *bus;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	version *table[TABLE_SIZE];
	bool wake_pending;
	bool stopping;
	bool started;

	nvcf__kv_mirror dep_watch, inst_watch, cluster_watch;
	natsSubscription *wake_sub, *load_sub;
	pthread_t loop;
	bool loop_started;

	/* Cluster records by id, as the cluster watcher last saw them. */
	cJSON *clusters;

	atomic_ullong n_evaluations, n_wakes, n_created, n_terminated,
		n_errors, n_refused, n_lost;
};

/* ---- small helpers --------------------------------------------------- */

static int64_t mono_ms(void)
{
	return nvcf__mono_us() / 1000;
}

static const char *jstr(const cJSON *o, const char *name)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, name));
}

static int jint(const cJSON *o, const char *name, int dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsNumber(v) ? v->valueint : dflt;
}

static unsigned int hash_str(const char *s)
{
	unsigned int h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h % TABLE_SIZE;
}

/* Finds a version, creating it when @p create; the caller holds the lock. */
static version *version_get(nvcf_autoscaler *as, const char *vid,
			    bool create)
{
	unsigned int b = hash_str(vid);
	version *v;

	for (v = as->table[b]; v != NULL; v = v->next)
		if (strcmp(v->vid, vid) == 0)
			return v;
	if (!create || strlen(vid) != NVCF_UUID_LEN)
		return NULL;
	if ((v = calloc(1, sizeof(*v))) == NULL)
		return NULL;
	if (nvcf_scaling_history_new(&v->hist) != NVCF_OK) {
		free(v);
		return NULL;
	}
	memcpy(v->vid, vid, NVCF_UUID_LEN + 1);
	v->last_activity_ms = -1;
	v->desired = -1;
	v->next = as->table[b];
	as->table[b] = v;
	return v;
}

static void version_free(version *v)
{
	while (v->insts != NULL) {
		inst *i = v->insts;

		v->insts = i->next;
		free(i);
	}
	cJSON_Delete(v->dep);
	nvcf_free(v->fn_json);
	nvcf_scaling_history_free(v->hist);
	free(v);
}

static inst *inst_find(version *v, const char *id)
{
	for (inst *i = v->insts; i != NULL; i = i->next)
		if (strcmp(i->id, id) == 0)
			return i;
	return NULL;
}

static order_note *order_find(version *v, const char *icms)
{
	for (unsigned int k = 0; k < ORDERS_MAX; k++)
		if (v->orders[k].icms[0] && strcmp(v->orders[k].icms, icms) == 0)
			return &v->orders[k];
	return NULL;
}

static order_note *order_add(version *v, const char *icms,
			     const char *cluster, uint64_t seq, int count)
{
	order_note *o = &v->orders[v->next_order++ % ORDERS_MAX];

	memset(o, 0, sizeof(*o));
	snprintf(o->icms, sizeof(o->icms), "%s", icms);
	snprintf(o->cluster, sizeof(o->cluster), "%s", cluster);
	o->seq = seq;
	o->count = count;
	o->ordered_ms = mono_ms();
	return o;
}

static int inst_seen(const version *v, const char *icms)
{
	int n = 0;

	for (const inst *i = v->insts; i != NULL; i = i->next)
		if (strcmp(i->icms, icms) == 0)
			n++;
	return n;
}

static inst_state state_parse(const char *s)
{
	if (s == NULL)
		return I_OTHER;
	if (strcmp(s, "STARTING") == 0)
		return I_STARTING;
	if (strcmp(s, "RUNNING") == 0 || strcmp(s, "ACTIVE") == 0)
		return I_RUNNING;
	if (strcmp(s, "ERRORED") == 0)
		return I_ERRORED;
	if (strcmp(s, "TERMINATED") == 0)
		return I_TERMINATED;
	return I_OTHER;
}

static void copy(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src ? src : "");
}

/* ---- KV mirrors ------------------------------------------------------ */

static void apply_deployment(void *userdata, kvEntry *e)
{
	nvcf_autoscaler *as = userdata;
	const char *key = kvEntry_Key(e), *vid;
	kvOperation op = kvEntry_Operation(e);
	version *v;

	if (strncmp(key, "_id.", 4) == 0)
		return; /* deployment id index */
	vid = strrchr(key, '.');
	if (vid == NULL || strlen(vid + 1) != NVCF_UUID_LEN)
		return;
	vid++;
	pthread_mutex_lock(&as->lock);
	if (op == kvOp_Delete || op == kvOp_Purge) {
		if ((v = version_get(as, vid, false)) != NULL) {
			cJSON_Delete(v->dep);
			v->dep = NULL;
			nvcf_scaling_history_reset(v->hist);
			v->desired = -1;
			v->last_activity_ms = -1;
		}
	} else if ((v = version_get(as, vid, true)) != NULL) {
		cJSON *dep = cJSON_ParseWithLength(kvEntry_ValueString(e),
						   (size_t)kvEntry_ValueLen(e));

		if (dep == NULL) {
			nvcf_log_warn(SUB, "deployment record '%s' is not "
				      "JSON; ignoring it", key);
		} else {
			if (v->dep == NULL) {
				/* A new deployment starts its idle clock now. */
				nvcf_scaling_history_reset(v->hist);
				v->desired = -1;
				v->errored = 0;
				v->backoff_ms = 0;
				v->next_create_ms = 0;
			}
			cJSON_Delete(v->dep);
			v->dep = dep;
			v->dep_rev = kvEntry_Revision(e);
			copy(v->key, sizeof(v->key), key);
			v->kicked = true;
			as->wake_pending = true;
			pthread_cond_signal(&as->cond);
		}
	}
	pthread_mutex_unlock(&as->lock);
}

static void apply_instance(void *userdata, kvEntry *e)
{
	nvcf_autoscaler *as = userdata;
	const char *key = kvEntry_Key(e);
	const char *dot = strchr(key, '.');
	kvOperation op = kvEntry_Operation(e);
	char vid[NVCF_UUID_LEN + 1];
	cJSON *rec;
	version *v;
	inst *i;

	if (dot == NULL || dot - key != NVCF_UUID_LEN)
		return;
	memcpy(vid, key, NVCF_UUID_LEN);
	vid[NVCF_UUID_LEN] = '\0';
	if (op == kvOp_Delete || op == kvOp_Purge) {
		pthread_mutex_lock(&as->lock);
		if ((v = version_get(as, vid, false)) != NULL) {
			for (inst **pp = &v->insts; *pp; pp = &(*pp)->next) {
				if (strcmp((*pp)->id, dot + 1) == 0) {
					i = *pp;
					*pp = i->next;
					free(i);
					break;
				}
			}
		}
		pthread_mutex_unlock(&as->lock);
		return;
	}
	rec = cJSON_ParseWithLength(kvEntry_ValueString(e),
				    (size_t)kvEntry_ValueLen(e));
	if (rec == NULL)
		return;
	pthread_mutex_lock(&as->lock);
	if ((v = version_get(as, vid, true)) != NULL) {
		inst_state was = I_OTHER;

		if ((i = inst_find(v, dot + 1)) == NULL &&
		    (i = calloc(1, sizeof(*i))) != NULL) {
			copy(i->id, sizeof(i->id), dot + 1);
			i->load = -1;
			i->next = v->insts;
			v->insts = i;
		} else if (i != NULL) {
			was = i->state;
		}
		if (i != NULL) {
			copy(i->cluster, sizeof(i->cluster),
			     jstr(rec, "clusterId"));
			copy(i->icms, sizeof(i->icms),
			     jstr(rec, "icmsRequestId"));
			copy(i->spec, sizeof(i->spec),
			     jstr(rec, "gpuSpecificationId"));
			i->state = state_parse(jstr(rec, "instanceStatus"));
			if (i->state == I_ERRORED && was != I_ERRORED)
				v->errored++;
			if (i->state == I_RUNNING && was != I_RUNNING)
				v->backoff_ms = 0;
			if (i->state != was) {
				/* A change may free or need capacity. */
				v->kicked = true;
				as->wake_pending = true;
				pthread_cond_signal(&as->cond);
			}
		}
	}
	pthread_mutex_unlock(&as->lock);
	cJSON_Delete(rec);
}

static void apply_cluster(void *userdata, kvEntry *e)
{
	nvcf_autoscaler *as = userdata;
	const char *key = kvEntry_Key(e);
	kvOperation op = kvEntry_Operation(e);
	cJSON *rec = NULL;

	if (op != kvOp_Delete && op != kvOp_Purge) {
		rec = cJSON_ParseWithLength(kvEntry_ValueString(e),
					    (size_t)kvEntry_ValueLen(e));
		if (rec == NULL)
			return;
	}
	pthread_mutex_lock(&as->lock);
	cJSON_DeleteItemFromObjectCaseSensitive(as->clusters, key);
	if (rec != NULL)
		cJSON_AddItemToObject(as->clusters, key, rec);
	pthread_mutex_unlock(&as->lock);
}

/* ---- wake-ups and load reports --------------------------------------- */

static void on_wake(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
		    void *closure)
{
	nvcf_autoscaler *as = closure;
	const char *vid = natsMsg_GetSubject(msg) + strlen("nvcf.wake.");
	version *v;

	pthread_mutex_lock(&as->lock);
	if ((v = version_get(as, vid, false)) != NULL && v->dep != NULL) {
		v->woken = true;
		as->wake_pending = true;
		atomic_fetch_add(&as->n_wakes, 1);
		pthread_cond_signal(&as->cond);
	}
	pthread_mutex_unlock(&as->lock);
	natsMsg_Destroy(msg);
}

/* nvcf.load.{versionId}.{instanceId}, payload the requests held. */
static void on_load(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
		    void *closure)
{
	nvcf_autoscaler *as = closure;
	const char *s = natsMsg_GetSubject(msg) + strlen("nvcf.load.");
	char vid[NVCF_UUID_LEN + 1], num[16];
	int len = natsMsg_GetDataLength(msg);
	version *v;
	inst *i;

	if (strlen(s) < NVCF_UUID_LEN + 2 || s[NVCF_UUID_LEN] != '.' ||
	    len <= 0 || len >= (int)sizeof(num)) {
		natsMsg_Destroy(msg);
		return;
	}
	memcpy(vid, s, NVCF_UUID_LEN);
	vid[NVCF_UUID_LEN] = '\0';
	memcpy(num, natsMsg_GetData(msg), (size_t)len);
	num[len] = '\0';
	pthread_mutex_lock(&as->lock);
	if ((v = version_get(as, vid, false)) != NULL &&
	    (i = inst_find(v, s + NVCF_UUID_LEN + 1)) != NULL)
		i->load = atoi(num);
	pthread_mutex_unlock(&as->lock);
	natsMsg_Destroy(msg);
}

/* ---- leases ---------------------------------------------------------- */

static nvcf_status ensure_lease_bucket(nvcf_autoscaler *as)
{
	jsCtx *js = nvcf__bus_js(as->bus);
	kvStore *kv = NULL;
	kvConfig cfg;
	natsStatus s;

	s = js_KeyValue(&kv, js, LEASE_BUCKET);
	if (s == NATS_OK) {
		kvStore_Destroy(kv);
		return NVCF_OK;
	}
	kvConfig_Init(&cfg);
	cfg.Bucket = LEASE_BUCKET;
	cfg.History = 1;
	cfg.TTL = as->opts.lease_ms * 1000000LL;
	cfg.StorageType = js_FileStorage;
	cfg.Replicas = nvcf__bus_options(as->bus)->replicas;
	s = js_CreateKeyValue(&kv, js, &cfg);
	if (s != NATS_OK && s != NATS_ERR)
		return nvcf__bus_error(s, 0, "creating KV bucket",
				       LEASE_BUCKET);
	kvStore_Destroy(kv);
	return NVCF_OK;
}

/*
 * Takes or renews the lease of @p vid. Renewal happens every third of the
 * lease, so a lease survives one missed renewal. Returns whether this
 * replica may act on the version now.
 */
static bool lease_hold(nvcf_autoscaler *as, const char *vid,
		       bool *held, uint64_t *rev, int64_t *renewed,
		       int64_t now)
{
	size_t rlen = strlen(as->replica);
	char *value = NULL;
	uint64_t r = 0;
	nvcf_status st;

	if (*held && now - *renewed < as->opts.lease_ms / 3)
		return true;
	if (*held) {
		st = nvcf_bus_kv_update(as->bus, LEASE_BUCKET, vid,
					as->replica, rlen, *rev, &r);
		if (st == NVCF_OK) {
			*rev = r;
			*renewed = now;
			return true;
		}
		nvcf_log_warn(SUB, "lost the lease of version %s: %s", vid,
			      nvcf_error_last()->message);
		*held = false;
	}
	st = nvcf_bus_kv_create(as->bus, LEASE_BUCKET, vid, as->replica,
				rlen, &r);
	if (st == NVCF_EEXISTS &&
	    nvcf_bus_kv_get(as->bus, LEASE_BUCKET, vid, &value, NULL, &r) ==
		    NVCF_OK &&
	    strcmp(value, as->replica) == 0)
		st = nvcf_bus_kv_update(as->bus, LEASE_BUCKET, vid,
					as->replica, rlen, r, &r);
	nvcf_free(value);
	if (st != NVCF_OK)
		return false;
	nvcf_log_info(SUB, "replica %s took the lease of version %s",
		      as->replica, vid);
	*held = true;
	*rev = r;
	*renewed = now;
	return true;
}

/* ---- clusters and orders --------------------------------------------- */

static nvcf_status publish_create(nvcf_autoscaler *as, const char *fn_json,
				  const cJSON *dep, const cJSON *spec,
				  const nvcf_route_entry *e, int count,
				  const char *icms, uint64_t *seq_out)
{
	Nvcf__CreateInstances m = NVCF__CREATE_INSTANCES__INIT;
	char subject[NVCF_ROUTING_NAME_MAX];
	jsPubAck *ack = NULL;
	jsErrCode jerr = 0;
	jsPubOptions po;
	nvcf_status st;
	natsStatus s;
	uint8_t *buf;
	size_t len;

	st = nvcf_routing_create_subject(NVCF_WORKLOAD_FUNCTION, e->cluster_id,
					 e->gpu, e->instance_type, subject,
					 sizeof(subject));
	if (st != NVCF_OK)
		return st;
	m.icms_request_id = (char *)icms;
	m.kind = NVCF__WORKLOAD_KIND__WORKLOAD_KIND_FUNCTION;
	m.nca_id = (char *)jstr(dep, "ncaId");
	m.function_id = (char *)jstr(dep, "functionId");
	m.version_id = (char *)jstr(dep, "functionVersionId");
	m.deployment_id = (char *)jstr(dep, "deploymentId");
	m.gpu_specification_id = (char *)jstr(spec, "gpuSpecificationId");
	m.cluster_id = (char *)e->cluster_id;
	m.gpu = (char *)e->gpu;
	m.instance_type = (char *)e->instance_type;
	m.instance_count = count;
	m.max_request_concurrency = jint(spec, "maxRequestConcurrency", 1);
	m.function_json = (char *)fn_json;
	m.region = as->region;
	m.time_us = nvcf__now_us();
	len = nvcf__create_instances__get_packed_size(&m);
	if ((buf = malloc(len ? len : 1)) == NULL)
		return nvcf__error_oom();
	nvcf__create_instances__pack(&m, buf);
	jsPubOptions_Init(&po);
	po.MsgId = icms;
	s = js_Publish(&ack, nvcf__bus_js(as->bus), subject, buf, (int)len,
		       &po, &jerr);
	free(buf);
	if (s != NATS_OK)
		return nvcf__bus_error(s, jerr, "publishing creation order to",
				       subject);
	*seq_out = ack->Sequence;
	jsPubAck_Destroy(ack);
	return NVCF_OK;
}

static nvcf_status publish_terminate(nvcf_autoscaler *as, const char *cluster,
				     const char *vid, char **ids, size_t n)
{
	Nvcf__TerminateInstances m = NVCF__TERMINATE_INSTANCES__INIT;
	char subject[256];
	uint8_t *buf;
	size_t len;
	nvcf_status st;

	snprintf(subject, sizeof(subject), "Terminate.NVCA.%.128s", cluster);
	m.cluster_id = (char *)cluster;
	m.version_id = (char *)vid;
	m.n_instance_ids = n;
	m.instance_ids = ids;
	m.reason = "scale-down";
	m.time_us = nvcf__now_us();
	len = nvcf__terminate_instances__get_packed_size(&m);
	if ((buf = malloc(len ? len : 1)) == NULL)
		return nvcf__error_oom();
	nvcf__terminate_instances__pack(&m, buf);
	st = nvcf_bus_publish(as->bus, subject, buf, len, NULL);
	free(buf);
	return st;
}

/*
 * Records a creation order in the deployment's placements, so that the
 * API counts its instances and other replicas see it. Placements carry
 * orderedAtMs: until then plus the order timeout, instances the order has
 * not produced yet count as starting.
 */
static nvcf_status record_placement(nvcf_autoscaler *as, const char *key,
				    const char *sid, const char *cluster,
				    const char *icms, int count,
				    const char *why)
{
	for (int t = 0; t < 5; t++) {
		char *json = NULL, *out;
		size_t len = 0;
		uint64_t rev = 0;
		cJSON *dep, *pl, *p;
		nvcf_status st;

		st = nvcf_bus_kv_get(as->bus, NVCF_BUCKET_DEPLOYMENTS, key,
				     &json, &len, &rev);
		if (st != NVCF_OK)
			return st;
		dep = cJSON_ParseWithLength(json, len);
		nvcf_free(json);
		if (dep == NULL)
			return nvcf__error_set(NVCF_ERROR, "deployment record "
					       "'%s' is not JSON", key);
		pl = cJSON_GetObjectItemCaseSensitive(dep, "placements");
		if (pl == NULL)
			pl = cJSON_AddArrayToObject(dep, "placements");
		p = cJSON_CreateObject();
		cJSON_AddItemToArray(pl, p);
		cJSON_AddStringToObject(p, "gpuSpecificationId", sid);
		cJSON_AddStringToObject(p, "clusterId", cluster);
		cJSON_AddStringToObject(p, "icmsRequestId", icms);
		cJSON_AddNumberToObject(p, "instanceCount", count);
		cJSON_AddNumberToObject(p, "orderedAtMs",
					(double)(nvcf__now_us() / 1000));
		cJSON_AddStringToObject(p, "orderedBy", as->replica);
		if (why != NULL)
			cJSON_AddStringToObject(p, "explanation", why);
		out = cJSON_PrintUnformatted(dep);
		cJSON_Delete(dep);
		if (out == NULL)
			return nvcf__error_oom();
		st = nvcf_bus_kv_update(as->bus, NVCF_BUCKET_DEPLOYMENTS, key,
					out, strlen(out), rev, NULL);
		free(out);
		if (st != NVCF_ECONFLICT)
			return st;
	}
	return nvcf__error_set(NVCF_ECONFLICT, "deployment '%s' kept changing "
			       "while recording a placement", key);
}

/*
 * Marks the placement of order @p icms with what its cluster refused, so
 * that the API shows it in the deployment's healthInfo.
 */
static void note_refusal(nvcf_autoscaler *as, const char *key,
			 const char *icms, const char *cluster, int refused,
			 const char *err)
{
	for (int t = 0; t < 5; t++) {
		char *json = NULL, *out, text[768];
		size_t len = 0;
		uint64_t rev = 0;
		cJSON *dep, *p, *hit = NULL;
		nvcf_status st;

		if (nvcf_bus_kv_get(as->bus, NVCF_BUCKET_DEPLOYMENTS, key, &json,
				    &len, &rev) != NVCF_OK)
			return;
		dep = cJSON_ParseWithLength(json, len);
		nvcf_free(json);
		cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(
					      dep, "placements")) {
			if (jstr(p, "icmsRequestId") &&
			    strcmp(jstr(p, "icmsRequestId"), icms) == 0)
				hit = p;
		}
		if (hit == NULL) {
			cJSON_Delete(dep);
			return;
		}
		snprintf(text, sizeof(text), "cluster %s refused %d "
			 "instance(s): %s", cluster, refused, err);
		cJSON_DeleteItemFromObjectCaseSensitive(hit, "refused");
		cJSON_DeleteItemFromObjectCaseSensitive(hit, "error");
		cJSON_AddNumberToObject(hit, "refused", refused);
		cJSON_AddStringToObject(hit, "error", text);
		out = cJSON_PrintUnformatted(dep);
		cJSON_Delete(dep);
		if (out == NULL)
			return;
		st = nvcf_bus_kv_update(as->bus, NVCF_BUCKET_DEPLOYMENTS, key,
					out, strlen(out), rev, NULL);
		free(out);
		if (st != NVCF_ECONFLICT)
			return;
	}
}

/* ---- one evaluation -------------------------------------------------- */

/* Sums of the specifications' bounds; parameters from the first spec. */
static nvcf_status version_params(nvcf_autoscaler *as, const cJSON *dep,
				  nvcf_scaling_params *p)
{
	const cJSON *specs = cJSON_GetObjectItemCaseSensitive(
		dep, "deploymentSpecifications");
	const cJSON *s;
	const cJSON *cfg = NULL;
	uint32_t min = 0, max = 0, conc = 1;

	cJSON_ArrayForEach(s, specs) {
		const cJSON *c = cJSON_GetObjectItemCaseSensitive(
			s, "autoscalingConfiguration");

		min += (uint32_t)jint(s, "minInstances", 0);
		max += (uint32_t)jint(s, "maxInstances", 1);
		if (jint(s, "maxRequestConcurrency", 1) > (int)conc)
			conc = (uint32_t)jint(s, "maxRequestConcurrency", 1);
		if (cfg == NULL && cJSON_IsObject(c))
			cfg = c;
	}
	if (as->opts.idle_to_zero_ms > 0)
		p->idle_to_zero_ms = as->opts.idle_to_zero_ms;
	if (as->opts.scale_down_window_ms > 0)
		p->scale_down_window_ms = as->opts.scale_down_window_ms;
	if (cfg != NULL) {
		char *json = cJSON_PrintUnformatted(cfg);
		nvcf_status st;

		if (json == NULL)
			return nvcf__error_oom();
		st = nvcf_scaling_params_from_json(p, json);
		free(json);
		if (st != NVCF_OK)
			return st;
	}
	p->min_instances = min;
	p->max_instances = max > 0 ? max : 1;
	p->max_request_concurrency = conc;
	return nvcf_scaling_params_validate(p);
}

/* Queue metrics from the version's consumer; false when it has none. */
static bool queue_metrics(nvcf_autoscaler *as, const char *vid,
			  uint64_t *queued, uint64_t *in_flight,
			  uint64_t *delivered)
{
	char stream[96], durable[160];
	jsConsumerInfo *ci = NULL;
	jsErrCode jerr = 0;
	natsStatus s;

	nvcf__queue_stream_name(stream, sizeof(stream), as->region, vid);
	nvcf__queue_consumer_name(durable, sizeof(durable), as->region, vid);
	s = js_GetConsumerInfo(&ci, nvcf__bus_js(as->bus), stream, durable,
			       NULL, &jerr);
	if (s != NATS_OK)
		return false;
	*queued = ci->NumPending;
	*in_flight = (uint64_t)ci->NumAckPending;
	*delivered = ci->Delivered.Stream;
	jsConsumerInfo_Destroy(ci);
	return true;
}

/*
 * Instances ordered but not reported yet, of one specification or (with
 * a NULL @p sid) of all: an order counts until every instance it asked
 * for has a record, or until the order timeout. The caller holds the
 * lock.
 */
static uint32_t in_transit(nvcf_autoscaler *as, const version *v,
			   const char *sid, int64_t wall_ms)
{
	const cJSON *p;
	uint32_t n = 0;

	cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(v->dep,
							       "placements")) {
		const cJSON *at = cJSON_GetObjectItemCaseSensitive(p,
								   "orderedAtMs");
		const char *icms = jstr(p, "icmsRequestId");
		int seen = 0, count = jint(p, "instanceCount", 0);

		if (!cJSON_IsNumber(at) || icms == NULL ||
		    wall_ms - (int64_t)at->valuedouble >
			    as->opts.order_timeout_ms)
			continue;
		if (sid != NULL && (jstr(p, "gpuSpecificationId") == NULL ||
				    strcmp(jstr(p, "gpuSpecificationId"),
					   sid) != 0))
			continue;
		seen = inst_seen(v, icms);
		for (unsigned int k = 0; k < ORDERS_MAX; k++)
			if (strcmp(v->orders[k].icms, icms) == 0)
				seen += v->orders[k].refused;
		if (count > seen)
			n += (uint32_t)(count - seen);
	}
	return n;
}

static int victim_rank(const inst *i)
{
	if (i->state == I_STARTING)
		return 0;
	return i->load > 0 ? 2 + i->load : 1;
}

static int cmp_victims(const void *a, const void *b)
{
	const inst *x = *(inst *const *)a, *y = *(inst *const *)b;

	return victim_rank(x) - victim_rank(y);
}

/* ---- placement ------------------------------------------------------- */

#define LIST_MAX 32

/* Borrowed pointers to the strings of a JSON array, at most LIST_MAX. */
static size_t strings_of(const cJSON *arr, const char **out)
{
	const cJSON *e;
	size_t n = 0;

	cJSON_ArrayForEach(e, arr) {
		if (cJSON_IsString(e) && n < LIST_MAX)
			out[n++] = e->valuestring;
	}
	return n;
}

/* The clusters as the watcher last saw them; the caller holds the lock. */
static nvcf_inventory *inventory_locked(nvcf_autoscaler *as)
{
	nvcf_inventory *inv = NULL;
	const cJSON *c;

	if (nvcf_inventory_new(&inv) != NVCF_OK)
		return NULL;
	cJSON_ArrayForEach(c, as->clusters) {
		char *json = cJSON_PrintUnformatted(c);

		if (json != NULL &&
		    nvcf_inventory_add_cluster_json(inv, json) != NVCF_OK)
			nvcf_log_debug(SUB, "skipping cluster record '%s': %s",
				       c->string, nvcf_error_last()->message);
		free(json);
	}
	return inv;
}

/*
 * Places @p want more instances of a version: each specification in
 * order, up to its maxInstances, on the clusters nvcf_routing_place()
 * ranks first, leaving out clusters that refused this version lately.
 */
static void scale_up(nvcf_autoscaler *as, const char *vid, const char *key,
		     const cJSON *dep, int64_t want, int64_t wall_ms)
{
	const char *exclude[ORDERS_MAX];
	char excluded[ORDERS_MAX][96];
	size_t n_exclude = 0;
	nvcf_inventory *inv;
	const cJSON *spec;
	char *fn_json = NULL;
	size_t fn_len = 0;
	int64_t now = mono_ms();
	nvcf_status st;
	version *v;

	pthread_mutex_lock(&as->lock);
	if ((v = version_get(as, vid, false)) != NULL && v->fn_json)
		fn_json = nvcf__strdup(v->fn_json);
	pthread_mutex_unlock(&as->lock);
	if (fn_json == NULL &&
	    nvcf_bus_kv_get(as->bus, NVCF_BUCKET_FUNCTIONS, key, &fn_json,
			    &fn_len, NULL) != NVCF_OK) {
		nvcf_log_warn(SUB, "version %s: cannot read its function "
			      "record: %s", vid, nvcf_error_last()->message);
		return;
	}

	pthread_mutex_lock(&as->lock);
	/* What an instance runs does not change within a version. */
	if ((v = version_get(as, vid, false)) != NULL && v->fn_json == NULL)
		v->fn_json = nvcf__strdup(fn_json);
	for (unsigned int k = 0; v != NULL && k < ORDERS_MAX; k++) {
		const order_note *o = &v->orders[k];

		if (o->refused > 0 &&
		    now - o->refused_at_ms < REFUSAL_COOLDOWN_MS &&
		    n_exclude < ORDERS_MAX) {
			copy(excluded[n_exclude], sizeof(excluded[0]),
			     o->cluster);
			exclude[n_exclude] = excluded[n_exclude];
			n_exclude++;
		}
	}
	inv = inventory_locked(as);
	pthread_mutex_unlock(&as->lock);
	if (inv == NULL) {
		nvcf_free(fn_json);
		return;
	}

	cJSON_ArrayForEach(spec, cJSON_GetObjectItemCaseSensitive(
					 dep, "deploymentSpecifications")) {
		nvcf_placement_spec ps = NVCF_PLACEMENT_SPEC_INIT;
		const char *sid = jstr(spec, "gpuSpecificationId");
		const char *clusters[LIST_MAX], *regions[LIST_MAX];
		const char *attrs[LIST_MAX];
		nvcf_route *route = NULL;
		int have = 0, room;

		if (want <= 0 || sid == NULL)
			break;
		pthread_mutex_lock(&as->lock);
		if ((v = version_get(as, vid, false)) != NULL) {
			for (inst *i = v->insts; i; i = i->next)
				if ((i->state == I_RUNNING ||
				     i->state == I_STARTING) &&
				    i->terminating_ms == 0 &&
				    strcmp(i->spec, sid) == 0)
					have++;
			have += (int)in_transit(as, v, sid, wall_ms);
		}
		pthread_mutex_unlock(&as->lock);
		room = jint(spec, "maxInstances", 1) - have;
		if (room <= 0)
			continue;

		ps.gpu = jstr(spec, "gpu");
		ps.instance_type = jstr(spec, "instanceType");
		ps.clusters = clusters;
		ps.clusters_count = strings_of(
			cJSON_GetObjectItemCaseSensitive(spec, "clusters"),
			clusters);
		ps.backend = jstr(spec, "backend");
		ps.regions = regions;
		ps.regions_count = strings_of(
			cJSON_GetObjectItemCaseSensitive(spec, "regions"),
			regions);
		ps.attributes = attrs;
		ps.attributes_count = strings_of(
			cJSON_GetObjectItemCaseSensitive(spec, "attributes"),
			attrs);
		ps.instance_count = (unsigned int)(room < want ? room : want);
		ps.now_ms = wall_ms;
		ps.heartbeat_timeout_ms = as->opts.cluster_stale_ms;
		ps.exclude = exclude;
		ps.exclude_count = n_exclude;
		if (ps.gpu == NULL || ps.instance_type == NULL ||
		    nvcf_routing_place(inv, &ps, &route) != NVCF_OK) {
			nvcf_log_warn(SUB, "version %s: cannot place "
				      "specification %s: %s", vid, sid,
				      ps.gpu && ps.instance_type ?
				      nvcf_error_last()->message :
				      "gpu or instanceType missing");
			continue;
		}
		for (size_t k = 0; k < nvcf_route_count(route); k++) {
			const nvcf_route_entry *e = nvcf_route_entry_at(route,
									 k);
			char icms[NVCF_UUID_LEN + 1];
			uint64_t seq = 0;

			if (e->assigned == 0)
				continue;
			nvcf__uuid_new(icms);
			st = record_placement(as, key, sid, e->cluster_id, icms,
					      (int)e->assigned,
					      nvcf_route_explanation(route));
			if (st == NVCF_OK)
				st = publish_create(as, fn_json, dep, spec, e,
						    (int)e->assigned, icms,
						    &seq);
			if (st != NVCF_OK) {
				atomic_fetch_add(&as->n_errors, 1);
				nvcf_log_warn(SUB, "version %s: ordering %u "
					      "instance(s) on cluster %s: %s",
					      vid, e->assigned, e->cluster_id,
					      nvcf_error_last()->message);
				continue;
			}
			pthread_mutex_lock(&as->lock);
			if ((v = version_get(as, vid, false)) != NULL)
				order_add(v, icms, e->cluster_id, seq,
					  (int)e->assigned);
			pthread_mutex_unlock(&as->lock);
			atomic_fetch_add(&as->n_created, e->assigned);
			nvcf_log_info(SUB, "version %s: ordered %u instance(s) "
				      "on cluster %s (%s): %s", vid,
				      e->assigned, e->cluster_id, icms,
				      nvcf_route_explanation(route));
			want -= e->assigned;
		}
		if (nvcf_route_unplaced(route) > 0)
			nvcf_log_warn(SUB, "version %s: %u instance(s) fit on "
				      "no cluster: %s", vid,
				      nvcf_route_unplaced(route),
				      nvcf_route_explanation(route));
		nvcf_route_free(route);
	}
	nvcf_inventory_free(inv);
	nvcf_free(fn_json);
}

/* ---- refusals and lost clusters -------------------------------------- */

/*
 * Reads what a cluster agent recorded for an order: how many instances
 * it started and the error that stopped the rest. Handles both the
 * ICMSRequest custom resource and the flat record of older agents.
 */
static bool read_order_record(nvcf_autoscaler *as, const char *cluster,
			      const char *icms, int *created, char *err,
			      size_t errlen)
{
	char bucket[160], key[64], *json = NULL;
	const cJSON *status, *ids;
	size_t len = 0;
	cJSON *rec;

	snprintf(bucket, sizeof(bucket), "nvca_%s", cluster);
	snprintf(key, sizeof(key), "icms.%s", icms);
	if (nvcf_bus_kv_get(as->bus, bucket, key, &json, &len, NULL) !=
	    NVCF_OK)
		return false;
	rec = cJSON_ParseWithLength(json, len);
	nvcf_free(json);
	if (rec == NULL)
		return false;
	status = cJSON_GetObjectItemCaseSensitive(rec, "status");
	if (cJSON_IsObject(status)) {
		ids = cJSON_GetObjectItemCaseSensitive(status, "instances");
		copy(err, errlen, jstr(status, "lastReconcileError"));
	} else {
		ids = cJSON_GetObjectItemCaseSensitive(rec, "instanceIds");
		copy(err, errlen, jstr(rec, "error"));
	}
	*created = cJSON_GetArraySize(ids);
	cJSON_Delete(rec);
	return true;
}

/*
 * Settles the orders of a version whose instances have not all appeared:
 * a cluster that recorded an error for the rest refused them, and an
 * order no agent took within TAKE_TIMEOUT_MS is withdrawn from the
 * stream. Either way the missing instances stop counting as starting,
 * and the cluster gets no work of this version for a while.
 */
static void check_orders(nvcf_autoscaler *as, const char *vid)
{
	order_note todo[ORDERS_MAX];
	int seen[ORDERS_MAX];
	char key[160] = "";
	size_t n = 0;
	int64_t now = mono_ms();
	version *v;

	pthread_mutex_lock(&as->lock);
	if ((v = version_get(as, vid, false)) != NULL) {
		copy(key, sizeof(key), v->key);
		for (unsigned int k = 0; k < ORDERS_MAX; k++) {
			order_note *o = &v->orders[k];
			int got;

			if (o->icms[0] == '\0' || o->settled ||
			    now - o->ordered_ms < ORDER_CHECK_MS)
				continue;
			got = inst_seen(v, o->icms);
			if (got >= o->count) {
				o->settled = true;
				continue;
			}
			seen[n] = got;
			todo[n++] = *o;
		}
	}
	pthread_mutex_unlock(&as->lock);

	for (size_t k = 0; k < n; k++) {
		order_note *o = &todo[k];
		char err[512] = "";
		int created = 0, refused = 0;

		if (read_order_record(as, o->cluster, o->icms, &created, err,
				      sizeof(err))) {
			if (err[0] == '\0' || created >= o->count)
				continue; /* still starting them */
			refused = o->count - created;
		} else if (now - o->ordered_ms >= TAKE_TIMEOUT_MS &&
			   o->seq > 0) {
			jsErrCode jerr = 0;
			natsStatus s = js_DeleteMsg(nvcf__bus_js(as->bus),
						    NVCF_STREAM_CREATION,
						    o->seq, NULL, &jerr);

			if (s != NATS_OK) {
				/* Taken meanwhile: its record is coming. */
				o->seq = 0;
			} else {
				refused = o->count - seen[k];
				snprintf(err, sizeof(err), "no agent of cluster "
					 "%s took the order within %d ms",
					 o->cluster, TAKE_TIMEOUT_MS);
			}
		} else {
			continue;
		}
		pthread_mutex_lock(&as->lock);
		if ((v = version_get(as, vid, false)) != NULL) {
			order_note *live = order_find(v, o->icms);

			if (live != NULL) {
				live->seq = o->seq;
				if (refused > 0) {
					live->refused = refused;
					live->refused_at_ms = now;
					live->settled = true;
					v->kicked = true;
					as->wake_pending = true;
					pthread_cond_signal(&as->cond);
				}
			}
		}
		pthread_mutex_unlock(&as->lock);
		if (refused > 0) {
			note_refusal(as, key, o->icms, o->cluster, refused,
				     err);
			atomic_fetch_add(&as->n_refused, (unsigned)refused);
			nvcf_log_warn(SUB, "version %s: cluster %s refused %d "
				      "instance(s) of order %s (%s); placing "
				      "them elsewhere", vid, o->cluster,
				      refused, o->icms, err);
		}
	}
}

/* Marks an instance record ERRORED with @p why, unless it already ended. */
static void instance_lost(nvcf_autoscaler *as, const char *vid,
			  const char *iid, const char *why)
{
	char key[160];

	snprintf(key, sizeof(key), "%.40s.%.96s", vid, iid);
	for (int t = 0; t < 5; t++) {
		char *json = NULL, *out, stamp[32];
		size_t len = 0;
		uint64_t rev = 0;
		const char *state;
		cJSON *rec;
		nvcf_status st;

		if (nvcf_bus_kv_get(as->bus, NVCF_BUCKET_INSTANCES, key, &json,
				    &len, &rev) != NVCF_OK)
			return;
		rec = cJSON_ParseWithLength(json, len);
		nvcf_free(json);
		state = jstr(rec, "instanceStatus");
		if (rec == NULL || state == NULL ||
		    strcmp(state, "TERMINATED") == 0 ||
		    strcmp(state, "ERRORED") == 0) {
			cJSON_Delete(rec);
			return;
		}
		nvcf__iso8601(nvcf__now_us(), stamp);
		cJSON_ReplaceItemInObjectCaseSensitive(
			rec, "instanceStatus", cJSON_CreateString("ERRORED"));
		cJSON_DeleteItemFromObjectCaseSensitive(rec, "error");
		cJSON_AddStringToObject(rec, "error", why);
		cJSON_DeleteItemFromObjectCaseSensitive(rec,
							"instanceUpdatedAt");
		cJSON_AddStringToObject(rec, "instanceUpdatedAt", stamp);
		out = cJSON_PrintUnformatted(rec);
		cJSON_Delete(rec);
		if (out == NULL)
			return;
		st = nvcf_bus_kv_update(as->bus, NVCF_BUCKET_INSTANCES, key, out,
					strlen(out), rev, NULL);
		free(out);
		if (st != NVCF_ECONFLICT)
			return;
	}
}

/*
 * Drops instances on a cluster whose heartbeat stopped from the count.
 * They are marked ERRORED, so that the API and gateways see them gone
 * and the policy replaces them elsewhere, and a termination order is
 * sent in case the cluster comes back.
 */
static void check_lost(nvcf_autoscaler *as, const char *vid)
{
	char ids[MAX_VICTIMS][96], clusters[MAX_VICTIMS][96];
	int64_t wall = nvcf__now_us() / 1000, now = mono_ms();
	nvcf_inventory *inv;
	size_t n = 0;
	version *v;

	pthread_mutex_lock(&as->lock);
	v = version_get(as, vid, false);
	inv = v != NULL ? inventory_locked(as) : NULL;
	for (inst *i = v ? v->insts : NULL; inv && i && n < MAX_VICTIMS;
	     i = i->next) {
		size_t idx;

		if ((i->state != I_RUNNING && i->state != I_STARTING) ||
		    i->terminating_ms != 0 || i->cluster[0] == '\0')
			continue;
		if (nvcf_inventory_find(inv, i->cluster, &idx) == NVCF_OK &&
		    nvcf_inventory_cluster_healthy(inv, idx, wall,
						   as->opts.cluster_stale_ms))
			continue;
		i->terminating_ms = now;
		copy(ids[n], sizeof(ids[0]), i->id);
		copy(clusters[n], sizeof(clusters[0]), i->cluster);
		n++;
	}
	pthread_mutex_unlock(&as->lock);
	nvcf_inventory_free(inv);

	for (size_t k = 0; k < n; k++) {
		char why[256], *one[1] = {ids[k]};

		snprintf(why, sizeof(why), "cluster %.96s stopped sending "
			 "heartbeats for %lld ms; instance replaced "
			 "elsewhere", clusters[k],
			 (long long)as->opts.cluster_stale_ms);
		nvcf_log_warn(SUB, "version %s: instance %s lost: %s", vid,
			      ids[k], why);
		instance_lost(as, vid, ids[k], why);
		/* Durable: stops it if the cluster comes back. */
		publish_terminate(as, clusters[k], vid, one, 1);
		atomic_fetch_add(&as->n_lost, 1);
	}
}

static void evaluate(nvcf_autoscaler *as, const char *vid, bool woken)
{
	nvcf_scaling_params params = NVCF_SCALING_PARAMS_INIT;
	nvcf_scaling_metrics m = NVCF_SCALING_METRICS_INIT;
	nvcf_scaling_decision d;
	uint64_t queued = 0, in_flight = 0, delivered = 0;
	int64_t now = mono_ms(), wall_ms = nvcf__now_us() / 1000;
	bool held, have_queue;
	uint64_t lrev;
	int64_t renewed;
	inst *victims[MAX_VICTIMS];
	size_t n_victims = 0;
	cJSON *dep = NULL;
	char key[160];
	uint32_t current;
	int64_t want = 0;
	nvcf_status st;
	version *v;

	pthread_mutex_lock(&as->lock);
	v = version_get(as, vid, false);
	if (v == NULL || v->dep == NULL) {
		pthread_mutex_unlock(&as->lock);
		return;
	}
	held = v->lease_held;
	lrev = v->lease_rev;
	renewed = v->lease_renewed_ms;
	pthread_mutex_unlock(&as->lock);

	/* I/O happens without the lock: the watchers keep applying. */
	held = lease_hold(as, vid, &held, &lrev, &renewed, now);
	have_queue = held &&
		     queue_metrics(as, vid, &queued, &in_flight, &delivered);

	pthread_mutex_lock(&as->lock);
	if ((v = version_get(as, vid, false)) == NULL || v->dep == NULL) {
		pthread_mutex_unlock(&as->lock);
		return;
	}
	v->lease_held = held;
	v->lease_rev = lrev;
	v->lease_renewed_ms = renewed;
	if (!held) {
		pthread_mutex_unlock(&as->lock);
		return;
	}
	pthread_mutex_unlock(&as->lock);
	check_orders(as, vid);
	check_lost(as, vid);
	pthread_mutex_lock(&as->lock);
	if ((v = version_get(as, vid, false)) == NULL || v->dep == NULL) {
		pthread_mutex_unlock(&as->lock);
		return;
	}
	atomic_fetch_add(&as->n_evaluations, 1);
	if (have_queue && (queued > 0 || in_flight > 0 ||
			   delivered != v->last_delivered))
		v->last_activity_ms = now;
	if (woken)
		v->last_activity_ms = now;
	v->last_delivered = delivered;

	st = version_params(as, v->dep, &params);
	if (st != NVCF_OK) {
		nvcf_log_warn(SUB, "version %s: %s; keeping its instances",
			      vid, nvcf_error_last()->message);
		pthread_mutex_unlock(&as->lock);
		return;
	}
	m.now_ms = now;
	m.queued = queued;
	m.in_flight = in_flight;
	m.last_request_ms = v->last_activity_ms;
	for (inst *i = v->insts; i != NULL; i = i->next) {
		/* A termination order that changed nothing is retried. */
		if (i->terminating_ms > 0 &&
		    now - i->terminating_ms > as->opts.order_timeout_ms)
			i->terminating_ms = 0;
		if (i->terminating_ms > 0)
			continue;
		if (i->state == I_RUNNING)
			m.ready++;
		else if (i->state == I_STARTING)
			m.starting++;
	}
	m.starting += in_transit(as, v, NULL, wall_ms);
	if (woken && m.queued == 0 && m.in_flight == 0 && m.ready == 0)
		m.queued = 1; /* the request that woke us is on its way */
	st = nvcf_scaling_evaluate(&params, &m, v->hist, &d);
	if (st != NVCF_OK) {
		nvcf_log_warn(SUB, "version %s: %s", vid,
			      nvcf_error_last()->message);
		pthread_mutex_unlock(&as->lock);
		return;
	}
	current = m.ready + m.starting;
	if ((int64_t)d.desired != v->desired)
		nvcf_log_info(SUB, "version %s: desired %u instance(s), "
			      "have %u ready and %u starting (%s: %s)", vid,
			      d.desired, m.ready, m.starting,
			      nvcf_scaling_reason_name(d.reason), d.detail);
	v->desired = d.desired;
	if (d.desired > current) {
		if (now < v->next_create_ms) {
			pthread_mutex_unlock(&as->lock);
			return;
		}
		want = (int64_t)d.desired - current;
		if (v->errored > 0) {
			/* Failed instances: back off before replacing them. */
			v->backoff_ms = v->backoff_ms ? v->backoff_ms * 2
						      : BACKOFF_MIN_MS;
			if (v->backoff_ms > BACKOFF_MAX_MS)
				v->backoff_ms = BACKOFF_MAX_MS;
			v->next_create_ms = now + v->backoff_ms;
			v->errored = 0;
		}
		dep = cJSON_Duplicate(v->dep, true);
		copy(key, sizeof(key), v->key);
	} else if (d.desired < current) {
		size_t excess = current - d.desired;

		for (inst *i = v->insts; i != NULL && n_victims < MAX_VICTIMS;
		     i = i->next)
			if (i->terminating_ms == 0 &&
			    (i->state == I_RUNNING || i->state == I_STARTING))
				victims[n_victims++] = i;
		qsort(victims, n_victims, sizeof(*victims), cmp_victims);
		if (n_victims > excess)
			n_victims = excess;
		for (size_t k = 0; k < n_victims; k++)
			victims[k]->terminating_ms = now;
	}
	{
		/* Copies, because the instances may go once we unlock. */
		char ids[MAX_VICTIMS][96], clusters[MAX_VICTIMS][96];

		for (size_t k = 0; k < n_victims; k++) {
			copy(ids[k], sizeof(ids[k]), victims[k]->id);
			copy(clusters[k], sizeof(clusters[k]),
			     victims[k]->cluster);
		}
		pthread_mutex_unlock(&as->lock);
		for (size_t k = 0; k < n_victims; k++) {
			char *one[1] = {ids[k]};

			st = publish_terminate(as, clusters[k], vid, one, 1);
			if (st != NVCF_OK) {
				atomic_fetch_add(&as->n_errors, 1);
				nvcf_log_warn(SUB, "terminating instance %s: "
					      "%s", ids[k],
					      nvcf_error_last()->message);
				continue;
			}
			atomic_fetch_add(&as->n_terminated, 1);
			nvcf_log_info(SUB, "version %s: terminating instance "
				      "%s on cluster %s", vid, ids[k],
				      clusters[k]);
		}
	}
	if (dep == NULL)
		return;

	scale_up(as, vid, key, dep, want, wall_ms);
	cJSON_Delete(dep);
}

/* ---- the loop -------------------------------------------------------- */

/*
 * Copies the ids of deployed versions, only those woken or kicked since
 * the last pass when @p woken_only, and whether a request woke each.
 */
static size_t collect(nvcf_autoscaler *as, bool woken_only,
		      char (**ids)[NVCF_UUID_LEN + 1], bool **woke)
{
	size_t n = 0, cap = 0;

	*ids = NULL;
	*woke = NULL;
	for (unsigned int b = 0; b < TABLE_SIZE; b++) {
		for (version *v = as->table[b]; v != NULL; v = v->next) {
			if (v->dep == NULL ||
			    (woken_only && !v->woken && !v->kicked))
				continue;
			if (n == cap) {
				size_t nc = cap ? cap * 2 : 64;
				void *a = realloc(*ids, nc * sizeof(**ids));
				void *w = a ? realloc(*woke, nc) : NULL;

				if (a)
					*ids = a;
				if (w == NULL)
					return n;
				*woke = w;
				cap = nc;
			}
			memcpy((*ids)[n], v->vid, NVCF_UUID_LEN + 1);
			(*woke)[n] = v->woken;
			v->woken = false;
			v->kicked = false;
			n++;
		}
	}
	return n;
}

/* Drops versions that are neither deployed nor hold instances. */
static void prune(nvcf_autoscaler *as)
{
	for (unsigned int b = 0; b < TABLE_SIZE; b++) {
		version **pp = &as->table[b];

		while (*pp != NULL) {
			version *v = *pp;
			bool live = v->dep != NULL;

			for (inst *i = v->insts; i && !live; i = i->next)
				live = i->state == I_STARTING ||
				       i->state == I_RUNNING;
			if (live) {
				pp = &v->next;
				continue;
			}
			if (v->lease_held)
				nvcf_bus_kv_delete(as->bus, LEASE_BUCKET, v->vid);
			*pp = v->next;
			version_free(v);
		}
	}
}

static void *loop_main(void *arg)
{
	nvcf_autoscaler *as = arg;
	int64_t next_tick = mono_ms();

	pthread_mutex_lock(&as->lock);
	while (!as->stopping) {
		char (*ids)[NVCF_UUID_LEN + 1];
		bool *woke, full;
		int64_t now = mono_ms();
		size_t n;

		if (!as->wake_pending && now < next_tick) {
			struct timespec ts;
			int64_t wait = next_tick - now;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += wait / 1000;
			ts.tv_nsec += (wait % 1000) * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&as->cond, &as->lock, &ts);
			continue;
		}
		full = now >= next_tick;
		if (full) {
			next_tick = now + as->opts.tick_ms;
			prune(as);
		}
		as->wake_pending = false;
		n = collect(as, !full, &ids, &woke);
		pthread_mutex_unlock(&as->lock);
		for (size_t i = 0; i < n; i++)
			evaluate(as, ids[i], woke[i]);
		free(ids);
		free(woke);
		pthread_mutex_lock(&as->lock);
	}
	pthread_mutex_unlock(&as->lock);
	return NULL;
}

/* ---- public API ------------------------------------------------------ */

nvcf_status nvcf_autoscaler_new(nvcf_autoscaler **out,
				const nvcf_autoscaler_options *opts)
{
	nvcf_autoscaler *as;

	if (out == NULL || opts == NULL || opts->bus == NULL)
		return nvcf__error_set(NVCF_EINVAL, "nvcf_autoscaler_new: "
				       "NULL argument or no bus");
	*out = NULL;
	if (opts->version != NVCF_AUTOSCALER_OPTIONS_VERSION)
		return nvcf__error_set(NVCF_EINVAL, "nvcf_autoscaler_options "
				       "version %u is not %d; initialize it "
				       "with NVCF_AUTOSCALER_OPTIONS_INIT",
				       opts->version,
				       NVCF_AUTOSCALER_OPTIONS_VERSION);
	if (opts->tick_ms < 0 || opts->lease_ms < 0 ||
	    opts->idle_to_zero_ms < 0 || opts->scale_down_window_ms < 0 ||
	    opts->order_timeout_ms < 0 || opts->cluster_stale_ms < 0)
		return nvcf__error_set(NVCF_EINVAL, "autoscaler periods must "
				       "not be negative");
	if ((as = calloc(1, sizeof(*as))) == NULL)
		return nvcf__error_oom();
	as->opts = *opts;
	as->bus = opts->bus;
	if (as->opts.tick_ms == 0)
		as->opts.tick_ms = 500;
	if (as->opts.lease_ms == 0)
		as->opts.lease_ms = 3000;
	if (as->opts.order_timeout_ms == 0)
		as->opts.order_timeout_ms = 30000;
	if (as->opts.cluster_stale_ms == 0)
		as->opts.cluster_stale_ms = 15000;
	if (opts->replica_id != NULL && opts->replica_id[0] != '\0') {
		copy(as->replica, sizeof(as->replica), opts->replica_id);
	} else {
		char id[NVCF_UUID_LEN + 1];

		nvcf__uuid_new(id);
		snprintf(as->replica, sizeof(as->replica), "as-%.8s", id);
	}
	as->opts.replica_id = as->replica;
	copy(as->region, sizeof(as->region), nvcf_bus_region(as->bus));
	pthread_mutex_init(&as->lock, NULL);
	pthread_cond_init(&as->cond, NULL);
	if ((as->clusters = cJSON_CreateObject()) == NULL) {
		pthread_mutex_destroy(&as->lock);
		pthread_cond_destroy(&as->cond);
		free(as);
		return nvcf__error_oom();
	}
	*out = as;
	return NVCF_OK;
}

nvcf_status nvcf_autoscaler_start(nvcf_autoscaler *as)
{
	natsConnection *nc;
	nvcf_status st;
	natsStatus s;

	if (as == NULL)
		return nvcf__error_set(NVCF_EINVAL,
				       "nvcf_autoscaler_start: NULL argument");
	if (as->started)
		return NVCF_OK;
	nc = nvcf__bus_conn(as->bus);
	if ((st = nvcf_bus_ensure_control(as->bus)) != NVCF_OK ||
	    (st = ensure_lease_bucket(as)) != NVCF_OK)
		return st;
	s = natsConnection_Subscribe(&as->wake_sub, nc, "nvcf.wake.*",
				     on_wake, as);
	if (s == NATS_OK)
		s = natsConnection_Subscribe(&as->load_sub, nc, "nvcf.load.>",
					     on_load, as);
	if (s == NATS_OK)
		s = natsConnection_Flush(nc);
	if (s != NATS_OK) {
		st = nvcf__bus_error(s, 0, "subscribing to", "nvcf.wake.*");
		goto fail;
	}
	if ((st = nvcf__kv_mirror_start(&as->cluster_watch, as->bus,
					NVCF_BUCKET_CLUSTERS, apply_cluster,
					NULL, as)) != NVCF_OK ||
	    (st = nvcf__kv_mirror_start(&as->inst_watch, as->bus,
					NVCF_BUCKET_INSTANCES, apply_instance,
					NULL, as)) != NVCF_OK ||
	    (st = nvcf__kv_mirror_start(&as->dep_watch, as->bus,
					NVCF_BUCKET_DEPLOYMENTS,
					apply_deployment, NULL, as)) != NVCF_OK)
		goto fail;
	if (pthread_create(&as->loop, NULL, loop_main, as) != 0) {
		st = nvcf__error_set(NVCF_ENOMEM, "cannot start the "
				     "autoscaler loop thread");
		goto fail;
	}
	as->loop_started = true;
	as->started = true;
	nvcf_log_info(SUB, "replica %s started: tick %lld ms, lease %lld ms",
		      as->replica, (long long)as->opts.tick_ms,
		      (long long)as->opts.lease_ms);
	return NVCF_OK;

fail:
	nvcf_autoscaler_stop(as);
	return st;
}

void nvcf_autoscaler_stop(nvcf_autoscaler *as)
{
	if (as == NULL)
		return;
	pthread_mutex_lock(&as->lock);
	as->stopping = true;
	pthread_cond_broadcast(&as->cond);
	pthread_mutex_unlock(&as->lock);
	if (as->loop_started)
		pthread_join(as->loop, NULL);
	as->loop_started = false;
	if (as->wake_sub != NULL) {
		natsSubscription_Unsubscribe(as->wake_sub);
		natsSubscription_Destroy(as->wake_sub);
		as->wake_sub = NULL;
	}
	if (as->load_sub != NULL) {
		natsSubscription_Unsubscribe(as->load_sub);
		natsSubscription_Destroy(as->load_sub);
		as->load_sub = NULL;
	}
	nvcf__kv_mirror_stop(&as->dep_watch);
	nvcf__kv_mirror_stop(&as->inst_watch);
	nvcf__kv_mirror_stop(&as->cluster_watch);
	/* Hand the versions over at once rather than after the lease. */
	for (unsigned int b = 0; b < TABLE_SIZE; b++)
		for (version *v = as->table[b]; v != NULL; v = v->next)
			if (v->lease_held) {
				nvcf_bus_kv_delete(as->bus, LEASE_BUCKET,
						   v->vid);
				v->lease_held = false;
			}
	if (as->started)
		nvcf_log_info(SUB, "replica %s stopped", as->replica);
	as->started = false;
}

void nvcf_autoscaler_free(nvcf_autoscaler *as)
{
	if (as == NULL)
		return;
	nvcf_autoscaler_stop(as);
	for (unsigned int b = 0; b < TABLE_SIZE; b++) {
		while (as->table[b] != NULL) {
			version *v = as->table[b];

			as->table[b] = v->next;
			version_free(v);
		}
	}
	cJSON_Delete(as->clusters);
	pthread_mutex_destroy(&as->lock);
	pthread_cond_destroy(&as->cond);
	free(as);
}

const char *nvcf_autoscaler_replica_id(const nvcf_autoscaler *as)
{
	return as ? as->replica : NULL;
}

nvcf_status nvcf_autoscaler_metrics(nvcf_autoscaler *as, char **text_out)
{
	unsigned long long held = 0, versions = 0;
	char *t;

	if (as == NULL || text_out == NULL)
		return nvcf__error_set(NVCF_EINVAL, "nvcf_autoscaler_metrics: "
				       "NULL argument");
	pthread_mutex_lock(&as->lock);
	for (unsigned int b = 0; b < TABLE_SIZE; b++)
		for (version *v = as->table[b]; v != NULL; v = v->next) {
			versions += v->dep != NULL;
			held += v->lease_held;
		}
	pthread_mutex_unlock(&as->lock);
	t = nvcf__asprintf(
		"# TYPE nvcf_autoscaler_versions gauge\n"
		"nvcf_autoscaler_versions %llu\n"
		"# TYPE nvcf_autoscaler_leases_held gauge\n"
		"nvcf_autoscaler_leases_held %llu\n"
		"# TYPE nvcf_autoscaler_evaluations_total counter\n"
		"nvcf_autoscaler_evaluations_total %llu\n"
		"# TYPE nvcf_autoscaler_wakeups_total counter\n"
		"nvcf_autoscaler_wakeups_total %llu\n"
		"# TYPE nvcf_autoscaler_instances_ordered_total counter\n"
		"nvcf_autoscaler_instances_ordered_total %llu\n"
		"# TYPE nvcf_autoscaler_instances_terminated_total counter\n"
		"nvcf_autoscaler_instances_terminated_total %llu\n"
		"# TYPE nvcf_autoscaler_errors_total counter\n"
		"nvcf_autoscaler_errors_total %llu\n"
		"# TYPE nvcf_autoscaler_instances_refused_total counter\n"
		"nvcf_autoscaler_instances_refused_total %llu\n"
		"# TYPE nvcf_autoscaler_instances_lost_total counter\n"
		"nvcf_autoscaler_instances_lost_total %llu\n",
		versions, held, (unsigned long long)as->n_evaluations,
		(unsigned long long)as->n_wakes,
		(unsigned long long)as->n_created,
		(unsigned long long)as->n_terminated,
		(unsigned long long)as->n_errors,
		(unsigned long long)as->n_refused,
		(unsigned long long)as->n_lost);
	if (t == NULL)
		return nvcf__error_oom();
	*text_out = t;
	return NVCF_OK;
}
