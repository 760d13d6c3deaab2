/* SPDX-License-Identifier: Apache-2.0 */
/*
 * API keys: "nvapi-" followed by 43 random base64url characters. Only the
 * SHA-256 of a key is stored, as the key of its record in KV nvcf_keys.
 * The record names the account (ncaId) and the scopes.
 */
#ifndef NVCF_AUTH_KEYS_H
#define NVCF_AUTH_KEYS_H

#include <stdint.h>

#include "nvcf/bus.h"

typedef enum nvcf__scope {
	NVCF_SCOPE_REGISTER_FUNCTION = 1u << 0,
	NVCF_SCOPE_LIST_FUNCTIONS = 1u << 1,
	NVCF_SCOPE_DEPLOY_FUNCTION = 1u << 2,
	NVCF_SCOPE_DELETE_FUNCTION = 1u << 3,
	NVCF_SCOPE_INVOKE_FUNCTION = 1u << 4,
	NVCF_SCOPE_QUEUE_DETAILS = 1u << 5,
	NVCF_SCOPE_LIST_CLUSTER_GROUPS = 1u << 6,
	/* NVCT task scopes */
	NVCF_SCOPE_LAUNCH_TASK = 1u << 7,
	NVCF_SCOPE_LIST_TASKS = 1u << 8,
	NVCF_SCOPE_TASK_DETAILS = 1u << 9,
	NVCF_SCOPE_CANCEL_TASK = 1u << 10,
	NVCF_SCOPE_DELETE_TASK = 1u << 11,
	NVCF_SCOPE_LIST_EVENTS = 1u << 12,
	NVCF_SCOPE_LIST_RESULTS = 1u << 13,
	NVCF_SCOPE_ALL = (1u << 14) - 1,
} nvcf__scope;

#define NVCF_KEY_PREFIX "nvapi-"
#define NVCF_NCA_ID_MAX 64

typedef struct nvcf__key_record {
	char nca_id[NVCF_NCA_ID_MAX + 1];
	char subject[128]; /* key description, sent to functions as NVCF-SUB */
	uint32_t scopes;
} nvcf__key_record;

/* Returns the scope bit of a name ("invoke_function"), or 0. */
uint32_t nvcf__scope_from_name(const char *name);
const char *nvcf__scope_name(uint32_t bit);

/*
 * Parses a comma- or space-separated scope list; "all" means every scope.
 * NVCF_EINVAL names the first unknown scope.
 */
nvcf_status nvcf__scopes_parse(const char *list, uint32_t *scopes_out);

/* True for an account id: 1 to 64 letters, digits, '-' or '_'. */
bool nvcf__nca_id_valid(const char *nca_id);

/*
 * Creates a key for @p nca_id with @p scopes and stores its hash.
 * The key itself is returned once, in key_out[64], and never stored.
 */
nvcf_status nvcf__key_create(nvcf_bus *bus, const char *nca_id,
			     uint32_t scopes, const char *description,
			     char key_out[64]);

/* Hashes a presented key into the KV key of its record, out[65]. */
nvcf_status nvcf__key_hash(const char *key, char out[65]);

/*
 * Checks the form of a presented key ("nvapi-...", at most 200 characters)
 * and hashes it into out[65]. NVCF_EUNAUTHENTICATED when it is malformed.
 */
nvcf_status nvcf__key_hash_presented(const char *key, char out[65]);

/*
 * Looks up a presented key. NVCF_EUNAUTHENTICATED when the key is
 * malformed or unknown.
 */
nvcf_status nvcf__key_lookup(nvcf_bus *bus, const char *key,
			     nvcf__key_record *out);

/* Parses a stored record (JSON) into @p out. */
nvcf_status nvcf__key_record_parse(const char *json, size_t len,
				   nvcf__key_record *out);

/*
 * Extracts the key from an Authorization header value. Returns NULL when
 * the value does not start with "Bearer ".
 */
const char *nvcf__bearer_token(const char *authorization);

#endif /* NVCF_AUTH_KEYS_H */
