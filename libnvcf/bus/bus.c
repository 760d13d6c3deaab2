/* SPDX-License-Identifier: Apache-2.0 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/bus_internal.h"
#include "bus/chunks.h"
#include "core/internal.h"

#define BUS_MAX_BUCKETS 64
#define JS_ERR_STREAM_STORE_FAILED 10077 /* maximum messages exceeded */
#define JS_ERR_STREAM_NOT_FOUND 10059
#define JS_ERR_CONSUMER_NOT_FOUND 10014
#define NS_PER_MS INT64_C(1000000)

typedef struct bucket_slot {
	char *name;
	kvStore *kv;
} bucket_slot;

struct nvcf_bus {
	nvcf_bus_options opts;
	char *url;
	char *name;
	char *region;
	natsConnection *conn;
	jsCtx *js;
	pthread_mutex_t lock; /* guards buckets */
	bucket_slot buckets[BUS_MAX_BUCKETS];
	size_t bucket_count;
};

/* ---- names --------------------------------------------------------------- */

bool nvcf__token_valid(const char *s, size_t max_len)
{
	size_t n = 0;

	if (s == NULL || *s == '\0')
		return false;
	for (; s[n] != '\0'; n++) {
		char c = s[n];

		if (n >= max_len)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
	}
	return true;
}

void nvcf__queue_stream_name(char *out, size_t size, const char *region,
			     const char *version_id)
{
	snprintf(out, size, "rq_%s_%s", region, version_id);
}

void nvcf__queue_subject(char *out, size_t size, const char *region,
			 const char *version_id, const char *request_id)
{
	snprintf(out, size, "rq.%s.%s.%s", region, version_id, request_id);
}

void nvcf__queue_consumer_name(char *out, size_t size, const char *region,
			       const char *version_id)
{
	snprintf(out, size, "rq_%s_%s_workers", region, version_id);
}

void nvcf__result_subject(char *out, size_t size, const char *request_id)
{
	snprintf(out, size, "res.%s", request_id);
}

/* ---- errors -------------------------------------------------------------- */

nvcf_status nvcf__bus_error(natsStatus s, jsErrCode jerr, const char *what,
			    const char *name)
{
	const char *text = natsStatus_GetText(s);
	nvcf_status status = NVCF_ERROR;

	if (jerr == JS_ERR_STREAM_STORE_FAILED)
		status = NVCF_EQUOTA;
	else if (jerr == JS_ERR_STREAM_NOT_FOUND ||
		 jerr == JS_ERR_CONSUMER_NOT_FOUND || s == NATS_NOT_FOUND)
		status = NVCF_ENOTFOUND;
	else if (s == NATS_TIMEOUT)
		status = NVCF_ETIMEDOUT;
	else if (s == NATS_NO_SERVER || s == NATS_CONNECTION_CLOSED ||
		 s == NATS_NO_RESPONDERS || s == NATS_CONNECTION_DISCONNECTED)
		status = NVCF_EUNAVAILABLE;
	else if (s == NATS_NO_MEMORY)
		return nvcf__error_oom();

	if (jerr != 0)
		return nvcf__error_set_ext(status, 0, (int)jerr,
					   "%s '%s' failed: %s (JetStream "
					   "error %d: %s)",
					   what, name, text, (int)jerr,
					   nats_GetLastError(NULL));
	return nvcf__error_set(status, "%s '%s' failed: %s", what, name, text);
}

/* ---- lifecycle ----------------------------------------------------------- */

nvcf_status nvcf_bus_options_init(nvcf_bus_options *opts, unsigned int version)
{
	if (opts == NULL || version == 0 || version > NVCF_BUS_OPTIONS_VERSION)
		return nvcf__error_set(NVCF_EINVAL,
				       "unsupported nvcf_bus_options version %u "
				       "(this library knows 1 to %d)",
				       version, NVCF_BUS_OPTIONS_VERSION);
	memset(opts, 0, sizeof(*opts));
	opts->version = version;
	return NVCF_OK;
}

static void apply_defaults(nvcf_bus_options *o)
{
	if (o->replicas <= 0)
		o->replicas = 1;
	if (o->connect_timeout_ms <= 0)
		o->connect_timeout_ms = 5000;
	if (o->results_max_age_ms <= 0)
		o->results_max_age_ms = 3600 * 1000;
	if (o->results_max_bytes <= 0)
		o->results_max_bytes = INT64_C(1) << 30;
	if (o->request_ack_wait_ms <= 0)
		o->request_ack_wait_ms = 30000;
	if (o->max_msg_size <= 0)
		o->max_msg_size = 8 << 20;
}

nvcf_status nvcf_bus_new(nvcf_bus **out, const nvcf_bus_options *opts)
{
	natsOptions *nopts = NULL;
	nvcf_bus *bus;
	natsStatus s;

	if (out == NULL)
		return nvcf__error_set(NVCF_EINVAL, "nvcf_bus_new: out is NULL");
	*out = NULL;
	if (opts != NULL &&
	    (opts->version == 0 || opts->version > NVCF_BUS_OPTIONS_VERSION))
		return nvcf__error_set(NVCF_EINVAL,
				       "unsupported nvcf_bus_options version %u",
				       opts->version);

	bus = calloc(1, sizeof(*bus));
	if (bus == NULL)
		return nvcf__error_oom();
	pthread_mutex_init(&bus->lock, NULL);
	bus->opts.version = NVCF_BUS_OPTIONS_VERSION;
	if (opts != NULL)
		memcpy(&bus->opts, opts, sizeof(*opts));
	bus->opts.version = NVCF_BUS_OPTIONS_VERSION;
	apply_defaults(&bus->opts);

	bus->url = strdup(opts && opts->url ? opts->url : "nats://127.0.0.1:4222");
	bus->name = strdup(opts && opts->name ? opts->name : "libnvcf");
	bus->region = strdup(opts && opts->region ? opts->region : "local");
	if (bus->url == NULL || bus->name == NULL || bus->region == NULL) {
		nvcf_bus_free(bus);
		return nvcf__error_oom();
	}
	bus->opts.url = bus->url;
	bus->opts.name = bus->name;
	bus->opts.region = bus->region;
	if (!nvcf__token_valid(bus->region, 64)) {
		nvcf_status st = nvcf__error_set(
			NVCF_EINVAL,
			"invalid region '%s': use letters, digits, '-' or '_'",
			bus->region);
		nvcf_bus_free(bus);
		return st;
	}

	/*
	 * SendAsap: nats.c otherwise batches outgoing messages in a flusher
	 * thread, which adds about a millisecond to every round trip.
	 */
	s = natsOptions_Create(&nopts);
	if (s == NATS_OK)
		s = natsOptions_SetURL(nopts, bus->url);
	if (s == NATS_OK)
		s = natsOptions_SetName(nopts, bus->name);
	if (s == NATS_OK)
		s = natsOptions_SetSendAsap(nopts, true);
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(nopts, bus->opts.connect_timeout_ms);
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(
			nopts, bus->opts.max_reconnect > 0
				       ? bus->opts.max_reconnect
				       : -1);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectWait(nopts, 250);
	if (s == NATS_OK)
		s = natsOptions_SetRetryOnFailedConnect(nopts, false, NULL,
							NULL);
	if (s == NATS_OK)
		s = natsConnection_Connect(&bus->conn, nopts);
	natsOptions_Destroy(nopts);
	if (s != NATS_OK) {
		nvcf_status st = nvcf__error_set(
			s == NATS_NO_MEMORY ? NVCF_ENOMEM : NVCF_EUNAVAILABLE,
			"cannot connect to NATS at %s: %s; start nats-server "
			"with -js or pass the right URL",
			bus->url, natsStatus_GetText(s));
		nvcf_bus_free(bus);
		return st;
	}

	s = natsConnection_JetStream(&bus->js, bus->conn, NULL);
	if (s != NATS_OK) {
		nvcf_status st = nvcf__bus_error(s, 0, "JetStream context for",
						 bus->url);
		nvcf_bus_free(bus);
		return st;
	}
	nvcf_log_info("bus", "connected to %s as '%s'", bus->url, bus->name);
	*out = bus;
	return NVCF_OK;
}

void nvcf_bus_free(nvcf_bus *bus)
{
	if (bus == NULL)
		return;
	for (size_t i = 0; i < bus->bucket_count; i++) {
		kvStore_Destroy(bus->buckets[i].kv);
		free(bus->buckets[i].name);
	}
	jsCtx_Destroy(bus->js);
	if (bus->conn != NULL) {
		natsConnection_FlushTimeout(bus->conn, 1000);
		natsConnection_Close(bus->conn);
		natsConnection_Destroy(bus->conn);
	}
	pthread_mutex_destroy(&bus->lock);
	free(bus->url);
	free(bus->name);
	free(bus->region);
	free(bus);
}

const char *nvcf_bus_region(const nvcf_bus *bus)
{
	return bus ? bus->region : NULL;
}

natsConnection *nvcf__bus_conn(nvcf_bus *bus)
{
	return bus->conn;
}

jsCtx *nvcf__bus_js(nvcf_bus *bus)
{
	return bus->js;
}

const nvcf_bus_options *nvcf__bus_options(const nvcf_bus *bus)
{
	return &bus->opts;
}

/* ---- streams, consumers, buckets ------------------------------------------ */

/* Creates @p cfg's stream unless one of that name exists already. */
static nvcf_status ensure_stream(nvcf_bus *bus, jsStreamConfig *cfg)
{
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	natsStatus s;

	s = js_GetStreamInfo(&si, bus->js, cfg->Name, NULL, &jerr);
	if (s == NATS_OK) {
		jsStreamInfo_Destroy(si);
		return NVCF_OK;
	}
	if (s != NATS_NOT_FOUND && jerr != JS_ERR_STREAM_NOT_FOUND)
		return nvcf__bus_error(s, jerr, "reading stream", cfg->Name);

	jerr = 0;
	s = js_AddStream(&si, bus->js, cfg, NULL, &jerr);
	if (s != NATS_OK)
		return nvcf__bus_error(s, jerr, "creating stream", cfg->Name);
	jsStreamInfo_Destroy(si);
	nvcf_log_info("bus", "created stream %s", cfg->Name);
	return NVCF_OK;
}

static nvcf_status ensure_consumer(nvcf_bus *bus, const char *stream,
				   jsConsumerConfig *cfg)
{
	jsConsumerInfo *ci = NULL;
	jsErrCode jerr = 0;
	natsStatus s;

	s = js_GetConsumerInfo(&ci, bus->js, stream, cfg->Durable, NULL, &jerr);
	if (s == NATS_OK) {
		jsConsumerInfo_Destroy(ci);
		return NVCF_OK;
	}
	if (s != NATS_NOT_FOUND && jerr != JS_ERR_CONSUMER_NOT_FOUND)
		return nvcf__bus_error(s, jerr, "reading consumer",
				       cfg->Durable);
	jerr = 0;
	s = js_AddConsumer(&ci, bus->js, stream, cfg, NULL, &jerr);
	if (s != NATS_OK)
		return nvcf__bus_error(s, jerr, "creating consumer",
				       cfg->Durable);
	jsConsumerInfo_Destroy(ci);
	return NVCF_OK;
}

nvcf_status nvcf__bus_kv(nvcf_bus *bus, const char *bucket, kvStore **out)
{
	nvcf_status st = NVCF_OK;
	kvStore *kv = NULL;
	jsErrCode jerr = 0;
	natsStatus s;

	pthread_mutex_lock(&bus->lock);
	for (size_t i = 0; i < bus->bucket_count; i++) {
		if (strcmp(bus->buckets[i].name, bucket) == 0) {
			*out = bus->buckets[i].kv;
			pthread_mutex_unlock(&bus->lock);
			return NVCF_OK;
		}
	}

	s = js_KeyValue(&kv, bus->js, bucket);
	if (s == NATS_NOT_FOUND) {
		kvConfig cfg;

		kvConfig_Init(&cfg);
		cfg.Bucket = bucket;
		cfg.History = 1;
		cfg.StorageType = js_FileStorage;
		cfg.Replicas = bus->opts.replicas;
		s = js_CreateKeyValue(&kv, bus->js, &cfg);
		if (s == NATS_OK)
			nvcf_log_info("bus", "created KV bucket %s", bucket);
	}
	if (s != NATS_OK) {
		st = nvcf__bus_error(s, jerr, "opening KV bucket", bucket);
		goto out;
	}
	if (bus->bucket_count == BUS_MAX_BUCKETS) {
		kvStore_Destroy(kv);
		st = nvcf__error_set(NVCF_EQUOTA,
				     "too many KV buckets open on one bus "
				     "(limit %d)",
				     BUS_MAX_BUCKETS);
		goto out;
	}
	bus->buckets[bus->bucket_count].name = strdup(bucket);
	if (bus->buckets[bus->bucket_count].name == NULL) {
		kvStore_Destroy(kv);
		st = nvcf__error_oom();
		goto out;
	}
	bus->buckets[bus->bucket_count++].kv = kv;
	*out = kv;
out:
	pthread_mutex_unlock(&bus->lock);
	return st;
}

/*
 * Creates or updates a limits stream of one subject filter, with the max
 * age and max bytes of the results, file storage and direct get.
 */
static nvcf_status ensure_limits_stream(nvcf_bus *bus, const char *name,
					const char *subject,
					jsDiscardPolicy discard)
{
	const char *subjects[] = {subject};
	jsStreamConfig cfg;

	jsStreamConfig_Init(&cfg);
	cfg.Name = name;
	cfg.Subjects = subjects;
	cfg.SubjectsLen = 1;
	cfg.Retention = js_LimitsPolicy;
	cfg.Discard = discard;
	cfg.Storage = js_FileStorage;
	cfg.MaxAge = bus->opts.results_max_age_ms * NS_PER_MS;
	cfg.MaxBytes = bus->opts.results_max_bytes;
	cfg.MaxMsgSize = bus->opts.max_msg_size;
	cfg.AllowDirect = true;
	cfg.Replicas = bus->opts.replicas;
	return ensure_stream(bus, &cfg);
}

nvcf_status nvcf_bus_ensure_control(nvcf_bus *bus)
{
	static const char *buckets[] = {
		NVCF_BUCKET_FUNCTIONS, NVCF_BUCKET_DEPLOYMENTS,
		NVCF_BUCKET_CLUSTERS,  NVCF_BUCKET_INSTANCES,
		NVCF_BUCKET_TASKS,     NVCF_BUCKET_KEYS};
	const char *create_subjects[] = {"Create.NVCA.>"};
	const char *terminate_subjects[] = {"Terminate.NVCA.>"};
	jsStreamConfig cfg;
	nvcf_status st;
	kvStore *kv;

	if (bus == NULL)
		return nvcf__error_set(NVCF_EINVAL, "bus is NULL");

	/* Results: any gateway replica serves a poll from this stream. */
	st = ensure_limits_stream(bus, NVCF_STREAM_RESULTS, "res.>",
				  js_DiscardOld);
	if (st != NVCF_OK)
		return st;

	/*
	 * Request bodies too large to travel inline, as chunks that workers
	 * read with direct gets. Discard-new makes a store into a full
	 * stream fail (JetStream 10077), so the gateway responds 429 instead
	 * of dropping the chunks of requests still queued.
	 */
	st = ensure_limits_stream(bus, NVCF__STREAM_BODIES, "body.>",
				  js_DiscardNew);
	if (st != NVCF_OK)
		return st;

	jsStreamConfig_Init(&cfg);
	cfg.Name = NVCF_STREAM_CREATION;
	cfg.Subjects = create_subjects;
	cfg.SubjectsLen = 1;
	cfg.Retention = js_WorkQueuePolicy;
	cfg.Storage = js_FileStorage;
	cfg.Replicas = bus->opts.replicas;
	if ((st = ensure_stream(bus, &cfg)) != NVCF_OK)
		return st;

	jsStreamConfig_Init(&cfg);
	cfg.Name = NVCF_STREAM_TERMINATION;
	cfg.Subjects = terminate_subjects;
	cfg.SubjectsLen = 1;
	cfg.Retention = js_WorkQueuePolicy;
	cfg.Storage = js_FileStorage;
	cfg.Replicas = bus->opts.replicas;
	if ((st = ensure_stream(bus, &cfg)) != NVCF_OK)
		return st;

	for (size_t i = 0; i < sizeof(buckets) / sizeof(buckets[0]); i++)
		if ((st = nvcf__bus_kv(bus, buckets[i], &kv)) != NVCF_OK)
			return st;
	return NVCF_OK;
}

static nvcf_status check_version_id(const char *version_id)
{
	if (!nvcf__uuid_valid(version_id))
		return nvcf__error_set(NVCF_EINVAL,
				       "invalid function version id '%s': "
				       "expected a UUID",
				       version_id ? version_id : "(null)");
	return NVCF_OK;
}

nvcf_status nvcf_bus_ensure_queue(nvcf_bus *bus, const char *version_id,
				  int64_t max_msgs)
{
	char stream[128], subject[160], durable[160];
	const char *subjects[1] = {subject};
	jsConsumerConfig ccfg;
	jsStreamConfig cfg;
	nvcf_status st;

	if (bus == NULL || (st = check_version_id(version_id)) != NVCF_OK)
		return bus ? st : nvcf__error_set(NVCF_EINVAL, "bus is NULL");
	nvcf__queue_stream_name(stream, sizeof(stream), bus->region,
				version_id);
	snprintf(subject, sizeof(subject), "rq.%s.%s.*", bus->region,
		 version_id);
	nvcf__queue_consumer_name(durable, sizeof(durable), bus->region,
				  version_id);

	/*
	 * Work queue with discard-new: a full queue rejects the publish
	 * (JetStream 10077) so the gateway returns 429 instead of losing an
	 * older request. One message per subject: a request id is queued once.
	 */
	jsStreamConfig_Init(&cfg);
	cfg.Name = stream;
	cfg.Subjects = subjects;
	cfg.SubjectsLen = 1;
	cfg.Retention = js_WorkQueuePolicy;
	cfg.Discard = js_DiscardNew;
	cfg.Storage = js_FileStorage;
	cfg.MaxMsgs = max_msgs > 0 ? max_msgs : NVCF_DEFAULT_QUEUE_MAX_MSGS;
	cfg.MaxMsgsPerSubject = 1;
	cfg.MaxMsgSize = bus->opts.max_msg_size;
	cfg.Replicas = bus->opts.replicas;
	if ((st = ensure_stream(bus, &cfg)) != NVCF_OK)
		return st;

	jsConsumerConfig_Init(&ccfg);
	ccfg.Durable = durable;
	ccfg.AckPolicy = js_AckExplicit;
	ccfg.AckWait = bus->opts.request_ack_wait_ms * NS_PER_MS;
	ccfg.MaxAckPending = -1;
	ccfg.MaxWaiting = 4096;
	ccfg.DeliverPolicy = js_DeliverAll;
	return ensure_consumer(bus, stream, &ccfg);
}

nvcf_status nvcf_bus_delete_queue(nvcf_bus *bus, const char *version_id)
{
	char stream[128];
	jsErrCode jerr = 0;
	natsStatus s;
	nvcf_status st;

	if (bus == NULL || (st = check_version_id(version_id)) != NVCF_OK)
		return bus ? st : nvcf__error_set(NVCF_EINVAL, "bus is NULL");
	nvcf__queue_stream_name(stream, sizeof(stream), bus->region,
				version_id);
	s = js_DeleteStream(bus->js, stream, NULL, &jerr);
	if (s == NATS_OK || s == NATS_NOT_FOUND ||
	    jerr == JS_ERR_STREAM_NOT_FOUND)
		return NVCF_OK;
	return nvcf__bus_error(s, jerr, "deleting stream", stream);
}

nvcf_status nvcf_bus_queue_depth(nvcf_bus *bus, const char *version_id,
				 uint64_t *queued_out, uint64_t *in_flight_out)
{
	char stream[128], durable[160];
	jsConsumerInfo *ci = NULL;
	jsErrCode jerr = 0;
	natsStatus s;
	nvcf_status st;

	if (bus == NULL || queued_out == NULL)
		return nvcf__error_set(NVCF_EINVAL,
				       "nvcf_bus_queue_depth: NULL argument");
	if ((st = check_version_id(version_id)) != NVCF_OK)
		return st;
	nvcf__queue_stream_name(stream, sizeof(stream), bus->region,
				version_id);
	nvcf__queue_consumer_name(durable, sizeof(durable), bus->region,
				  version_id);
	s = js_GetConsumerInfo(&ci, bus->js, stream, durable, NULL, &jerr);
	if (s != NATS_OK)
		return nvcf__bus_error(s, jerr, "reading queue of version",
				       version_id);
	*queued_out = ci->NumPending;
	if (in_flight_out != NULL)
		*in_flight_out = (uint64_t)ci->NumAckPending;
	jsConsumerInfo_Destroy(ci);
	return NVCF_OK;
}

nvcf_status nvcf_bus_ensure_cluster(nvcf_bus *bus, const char *cluster_id)
{
	char durable[192], filter[192], bucket[160];
	jsConsumerConfig ccfg;
	nvcf_status st;
	kvStore *kv;

	if (bus == NULL || !nvcf__token_valid(cluster_id, 100))
		return nvcf__error_set(NVCF_EINVAL,
				       "invalid cluster id '%s': use 1 to 100 "
				       "letters, digits, '-' or '_'",
				       cluster_id ? cluster_id : "(null)");

	snprintf(durable, sizeof(durable), "%s-%s", NVCF_STREAM_CREATION,
		 cluster_id);
	snprintf(filter, sizeof(filter), "Create.NVCA.*.%s.*.*", cluster_id);
	jsConsumerConfig_Init(&ccfg);
	ccfg.Durable = durable;
	ccfg.FilterSubject = filter;
	ccfg.AckPolicy = js_AckExplicit;
	ccfg.AckWait = 30 * 1000 * NS_PER_MS;
	if ((st = ensure_consumer(bus, NVCF_STREAM_CREATION, &ccfg)) != NVCF_OK)
		return st;

	snprintf(durable, sizeof(durable), "%s-%s", NVCF_STREAM_TERMINATION,
		 cluster_id);
	snprintf(filter, sizeof(filter), "Terminate.NVCA.%s", cluster_id);
	jsConsumerConfig_Init(&ccfg);
	ccfg.Durable = durable;
	ccfg.FilterSubject = filter;
	ccfg.AckPolicy = js_AckExplicit;
	ccfg.AckWait = 30 * 1000 * NS_PER_MS;
	if ((st = ensure_consumer(bus, NVCF_STREAM_TERMINATION, &ccfg)) !=
	    NVCF_OK)
		return st;

	snprintf(bucket, sizeof(bucket), "nvca_%s", cluster_id);
	return nvcf__bus_kv(bus, bucket, &kv);
}

/* ---- publish --------------------------------------------------------------- */

nvcf_status nvcf_bus_publish(nvcf_bus *bus, const char *subject,
			     const void *data, size_t len, const char *msg_id)
{
	jsPubOptions popts;
	jsErrCode jerr = 0;
	jsPubAck *ack = NULL;
	natsStatus s;

	if (bus == NULL || subject == NULL || (data == NULL && len > 0))
		return nvcf__error_set(NVCF_EINVAL,
				       "nvcf_bus_publish: NULL argument");
	if (len > (size_t)bus->opts.max_msg_size)
		return nvcf__error_set(NVCF_EQUOTA,
				       "message of %zu bytes for '%s' exceeds "
				       "the limit of %d bytes",
				       len, subject, (int)bus->opts.max_msg_size);
	jsPubOptions_Init(&popts);
	popts.MsgId = msg_id;
	s = js_Publish(&ack, bus->js, subject, data, (int)len, &popts, &jerr);
	if (s != NATS_OK) {
		if (s == NATS_NO_RESPONDERS)
			return nvcf__error_set(NVCF_ENOTFOUND,
					       "no stream takes subject '%s'",
					       subject);
		return nvcf__bus_error(s, jerr, "publishing to", subject);
	}
	jsPubAck_Destroy(ack);
	return NVCF_OK;
}

/* ---- KV ---------------------------------------------------------------------- */

nvcf_status nvcf_bus_kv_get(nvcf_bus *bus, const char *bucket, const char *key,
			    char **value_out, size_t *len_out,
			    uint64_t *revision_out)
{
	kvEntry *e = NULL;
	kvStore *kv;
	nvcf_status st;
	natsStatus s;
	char *copy;
	int len;

	if (bus == NULL || bucket == NULL || key == NULL || value_out == NULL)
		return nvcf__error_set(NVCF_EINVAL,
				       "nvcf_bus_kv_get: NULL argument");
	*value_out = NULL;
	if ((st = nvcf__bus_kv(bus, bucket, &kv)) != NVCF_OK)
		return st;
	s = kvStore_Get(&e, kv, key);
	if (s == NATS_NOT_FOUND)
		return nvcf__error_set(NVCF_ENOTFOUND, "key '%s' not found in %s",
				       key, bucket);
	if (s != NATS_OK)
		return nvcf__bus_error(s, 0, "reading key", key);
	len = kvEntry_ValueLen(e);
	copy = malloc((size_t)len + 1);
	if (copy == NULL) {
		kvEntry_Destroy(e);
		return nvcf__error_oom();
	}
	memcpy(copy, kvEntry_Value(e), (size_t)len);
	copy[len] = '\0';
	if (len_out != NULL)
		*len_out = (size_t)len;
	if (revision_out != NULL)
		*revision_out = kvEntry_Revision(e);
	kvEntry_Destroy(e);
	*value_out = copy;
	return NVCF_OK;
}

typedef enum kv_write { KV_PUT, KV_CREATE, KV_UPDATE } kv_write;

static nvcf_status kv_write_value(nvcf_bus *bus, kv_write mode,
				  const char *bucket, const char *key,
				  const void *value, size_t len,
				  uint64_t last_revision, uint64_t *revision_out)
{
	uint64_t rev = 0;
	kvStore *kv;
	nvcf_status st;
	natsStatus s;

	if (bus == NULL || bucket == NULL || key == NULL ||
	    (value == NULL && len > 0) || len > INT32_MAX)
		return nvcf__error_set(NVCF_EINVAL,
				       "KV write: invalid argument");
	if ((st = nvcf__bus_kv(bus, bucket, &kv)) != NVCF_OK)
		return st;
	switch (mode) {
	case KV_PUT:
		s = kvStore_Put(&rev, kv, key, value, (int)len);
		break;
	case KV_CREATE:
		s = kvStore_Create(&rev, kv, key, value, (int)len);
		if (s == NATS_ERR) {
			return nvcf__error_set(NVCF_EEXISTS,
					       "key '%s' already exists in %s",
					       key, bucket);
		}
		break;
	case KV_UPDATE:
	default:
		s = kvStore_Update(&rev, kv, key, value, (int)len,
				   last_revision);
		if (s == NATS_ERR) {
			return nvcf__error_set(NVCF_ECONFLICT,
					       "key '%s' in %s changed since "
					       "revision %llu",
					       key, bucket,
					       (unsigned long long)last_revision);
		}
		break;
	}
	if (s != NATS_OK)
		return nvcf__bus_error(s, 0, "writing key", key);
	if (revision_out != NULL)
		*revision_out = rev;
	return NVCF_OK;
}

nvcf_status nvcf_bus_kv_put(nvcf_bus *bus, const char *bucket, const char *key,
			    const void *value, size_t len,
			    uint64_t *revision_out)
{
	return kv_write_value(bus, KV_PUT, bucket, key, value, len, 0,
			      revision_out);
}

nvcf_status nvcf_bus_kv_create(nvcf_bus *bus, const char *bucket,
			       const char *key, const void *value, size_t len,
			       uint64_t *revision_out)
{
	return kv_write_value(bus, KV_CREATE, bucket, key, value, len, 0,
			      revision_out);
}

nvcf_status nvcf_bus_kv_update(nvcf_bus *bus, const char *bucket,
			       const char *key, const void *value, size_t len,
			       uint64_t last_revision, uint64_t *revision_out)
{
	return kv_write_value(bus, KV_UPDATE, bucket, key, value, len,
			      last_revision, revision_out);
}

nvcf_status nvcf_bus_kv_delete(nvcf_bus *bus, const char *bucket,
			       const char *key)
{
	kvStore *kv;
	nvcf_status st;
	natsStatus s;

	if (bus == NULL || bucket == NULL || key == NULL)
		return nvcf__error_set(NVCF_EINVAL,
				       "nvcf_bus_kv_delete: NULL argument");
	if ((st = nvcf__bus_kv(bus, bucket, &kv)) != NVCF_OK)
		return st;
	s = kvStore_Purge(kv, key, NULL);
	if (s != NATS_OK && s != NATS_NOT_FOUND)
		return nvcf__bus_error(s, 0, "deleting key", key);
	return NVCF_OK;
}

void nvcf_strings_free(char **strings, size_t count)
{
	if (strings == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		free(strings[i]);
	free(strings);
}

/*
 * One pass of a key listing. *timed_out tells the caller that the
 * watcher stopped delivering before its end-of-snapshot marker: on a
 * loaded server the ordered consumer behind it is sometimes reset, and
 * a fresh watcher lists the keys at once.
 */
static nvcf_status bus_kv_keys_once(kvStore *kv, const char *bucket,
				    const char *filter, char ***keys_out,
				    size_t *count_out, bool *timed_out)
{
	kvWatchOptions wopts;
	kvWatcher *w = NULL;
	char **keys = NULL;
	size_t count = 0, cap = 0;
	nvcf_status st;
	natsStatus s;

	*timed_out = false;
	/* A watcher delivers every current key, then a NULL entry. */
	kvWatchOptions_Init(&wopts);
	wopts.IgnoreDeletes = true;
	wopts.MetaOnly = true;
	s = kvStore_Watch(&w, kv, filter ? filter : ">", &wopts);
	if (s != NATS_OK) {
		*timed_out = s == NATS_TIMEOUT;
		return nvcf__bus_error(s, 0, "listing keys of", bucket);
	}
	for (;;) {
		kvEntry *e = NULL;

		s = kvWatcher_Next(&e, w, 5000);
		if (s != NATS_OK) {
			*timed_out = s == NATS_TIMEOUT;
			st = nvcf__bus_error(s, 0, "listing keys of", bucket);
			goto fail;
		}
		if (e == NULL)
			break;
		if (count == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			char **n = realloc(keys, ncap * sizeof(*keys));

			if (n == NULL) {
				kvEntry_Destroy(e);
				st = nvcf__error_oom();
				goto fail;
			}
			keys = n;
			cap = ncap;
		}
		keys[count] = strdup(kvEntry_Key(e));
		kvEntry_Destroy(e);
		if (keys[count] == NULL) {
			st = nvcf__error_oom();
			goto fail;
		}
		count++;
	}
	kvWatcher_Destroy(w);
	*keys_out = keys;
	*count_out = count;
	return NVCF_OK;

fail:
	kvWatcher_Destroy(w);
	nvcf_strings_free(keys, count);
	return st;
}

nvcf_status nvcf_bus_kv_keys(nvcf_bus *bus, const char *bucket,
			     const char *filter, char ***keys_out,
			     size_t *count_out)
{
	kvStore *kv;
	nvcf_status st;
	bool timed_out;

	if (bus == NULL || bucket == NULL || keys_out == NULL ||
	    count_out == NULL)
		return nvcf__error_set(NVCF_EINVAL,
				       "nvcf_bus_kv_keys: NULL argument");
	*keys_out = NULL;
	*count_out = 0;
	if ((st = nvcf__bus_kv(bus, bucket, &kv)) != NVCF_OK)
		return st;
	for (int attempt = 1;; attempt++) {
		st = bus_kv_keys_once(kv, bucket, filter, keys_out, count_out,
				      &timed_out);
		if (st == NVCF_OK || !timed_out || attempt == 3)
			return st;
		nvcf_log_warn("bus", "listing keys of '%s' timed out "
			      "(attempt %d of 3); retrying", bucket, attempt);
	}
}

/* ---- KV mirrors ------------------------------------------------------- */

static void *kv_mirror_main(void *arg)
{
	nvcf__kv_mirror *m = arg;

	for (;;) {
		kvEntry *e = NULL;
		natsStatus s = kvWatcher_Next(&e, m->watcher, 1000);

		if (s == NATS_TIMEOUT)
			continue;
		if (s != NATS_OK)
			break; /* stopped */
		if (e == NULL) {
			if (m->replayed != NULL)
				m->replayed(m->userdata);
			continue;
		}
		m->apply(m->userdata, e);
		kvEntry_Destroy(e);
	}
	return NULL;
}

nvcf_status nvcf__kv_mirror_start(nvcf__kv_mirror *m, nvcf_bus *bus,
				  const char *bucket, nvcf__kv_apply_fn apply,
				  nvcf__kv_replayed_fn replayed,
				  void *userdata)
{
	kvStore *kv = NULL;
	nvcf_status st;
	natsStatus s;

	if ((st = nvcf__bus_kv(bus, bucket, &kv)) != NVCF_OK)
		return st;
	m->apply = apply;
	m->replayed = replayed;
	m->userdata = userdata;
	s = kvStore_WatchAll(&m->watcher, kv, NULL);
	if (s != NATS_OK)
		return nvcf__bus_error(s, 0, "watching bucket", bucket);
	if (pthread_create(&m->thread, NULL, kv_mirror_main, m) != 0) {
		kvWatcher_Destroy(m->watcher);
		m->watcher = NULL;
		return nvcf__error_set(NVCF_ENOMEM, "cannot start the watcher "
				       "thread of %s", bucket);
	}
	m->running = true;
	return NVCF_OK;
}

void nvcf__kv_mirror_stop(nvcf__kv_mirror *m)
{
	if (!m->running)
		return;
	kvWatcher_Stop(m->watcher);
	pthread_join(m->thread, NULL);
	kvWatcher_Destroy(m->watcher);
	m->watcher = NULL;
	m->running = false;
}
