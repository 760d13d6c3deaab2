/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Parts of the gateway shared between its files: the in-memory caches of
 * API keys and function versions that KV watchers keep fresh.
 */
#ifndef NVCF_GATEWAY_INTERNAL_H
#define NVCF_GATEWAY_INTERNAL_H

#include "auth/keys.h"
#include "bus/bus_internal.h"
#include "core/internal.h"

typedef struct nvcf__gw_cache nvcf__gw_cache;

/* What an invocation needs from the function version it resolved to. */
typedef struct nvcf__gw_target {
	char version_id[NVCF_UUID_LEN + 1];
	char name[256];
	char inference_url[1024];
} nvcf__gw_target;

nvcf_status nvcf__gw_cache_new(nvcf__gw_cache **out, nvcf_bus *bus);

/*
 * Starts one watcher thread per bucket and waits up to @p timeout_ms until
 * both caches hold what KV held when they started.
 */
nvcf_status nvcf__gw_cache_start(nvcf__gw_cache *cache, int64_t timeout_ms);

/* Stops the watchers and releases the caches. Accepts NULL. */
void nvcf__gw_cache_free(nvcf__gw_cache *cache);

/*
 * Looks up a presented API key: from memory, or from KV when the watcher
 * has not delivered it yet. NVCF_EUNAUTHENTICATED when malformed or
 * unknown.
 */
nvcf_status nvcf__gw_key_lookup(nvcf__gw_cache *cache, const char *key,
				nvcf__key_record *out);

/*
 * Picks the version of @p function_id that account @p nca_id may invoke:
 * @p version_id when given, else a random ACTIVE or DEGRADING one.
 * NVCF_ENOTFOUND when there is none; NVCF_EUNAVAILABLE when the only
 * candidates are DEGRADED. Falls back to KV when memory has no invocable
 * version, because the watcher may lag behind a status change.
 */
nvcf_status nvcf__gw_resolve(nvcf__gw_cache *cache, const char *nca_id,
			     const char *function_id, const char *version_id,
			     nvcf__gw_target *out);

/*
 * Number of RUNNING instances of @p version_id as the instance watcher
 * last saw them.
 */
int nvcf__gw_ready_instances(nvcf__gw_cache *cache, const char *version_id);

#endif /* NVCF_GATEWAY_INTERNAL_H */
