/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Raw NATS access for the planes inside the library. The public header
 * keeps nats.c types out of the ABI; the daemons' modules need them for
 * subscriptions, pull consumers and watchers.
 */
#ifndef NVCF_BUS_INTERNAL_H
#define NVCF_BUS_INTERNAL_H

#include <pthread.h>

#include <nats/nats.h>

#include "nvcf/bus.h"

natsConnection *nvcf__bus_conn(nvcf_bus *bus);
jsCtx *nvcf__bus_js(nvcf_bus *bus);

/* Returns the KV handle of a bucket, opening it once. Owned by the bus. */
nvcf_status nvcf__bus_kv(nvcf_bus *bus, const char *bucket, kvStore **out);

/* Effective options after defaults were applied. */
const nvcf_bus_options *nvcf__bus_options(const nvcf_bus *bus);

/* Maps a nats.c status and JetStream code to an nvcf status with detail. */
nvcf_status nvcf__bus_error(natsStatus s, jsErrCode jerr, const char *what,
			    const char *name);

/* Name builders; each writes into a caller buffer of @p size bytes. */
void nvcf__queue_stream_name(char *out, size_t size, const char *region,
			     const char *version_id);
void nvcf__queue_subject(char *out, size_t size, const char *region,
			 const char *version_id, const char *request_id);
void nvcf__queue_consumer_name(char *out, size_t size, const char *region,
			       const char *version_id);
void nvcf__result_subject(char *out, size_t size, const char *request_id);

/* True for cluster ids and KV key tokens: letters, digits, '-' and '_'. */
bool nvcf__token_valid(const char *s, size_t max_len);

/*
 * A thread that applies every entry of a KV bucket, the current ones
 * first, to an in-memory copy. @p apply gets each entry (borrowed).
 * @p replayed, when not NULL, is called once the entries stored when
 * the watch started have all been applied.
 */
typedef void (*nvcf__kv_apply_fn)(void *userdata, kvEntry *entry);
typedef void (*nvcf__kv_replayed_fn)(void *userdata);

typedef struct nvcf__kv_mirror {
	kvWatcher *watcher;
	pthread_t thread;
	bool running;
	nvcf__kv_apply_fn apply;
	nvcf__kv_replayed_fn replayed;
	void *userdata;
} nvcf__kv_mirror;

/* Starts @p m on @p bucket; the message names the bucket on failure. */
nvcf_status nvcf__kv_mirror_start(nvcf__kv_mirror *m, nvcf_bus *bus,
				  const char *bucket, nvcf__kv_apply_fn apply,
				  nvcf__kv_replayed_fn replayed,
				  void *userdata);

/* Stops and joins the thread of a started mirror; a no-op otherwise. */
void nvcf__kv_mirror_stop(nvcf__kv_mirror *m);

#endif /* NVCF_BUS_INTERNAL_H */
