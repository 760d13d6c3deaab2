/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "auth/keys.h"
#include "core/internal.h"

static const struct {
	uint32_t bit;
	const char *name;
} scope_names[] = {
	{NVCF_SCOPE_REGISTER_FUNCTION, "register_function"},
	{NVCF_SCOPE_LIST_FUNCTIONS, "list_functions"},
	{NVCF_SCOPE_DEPLOY_FUNCTION, "deploy_function"},
	{NVCF_SCOPE_DELETE_FUNCTION, "delete_function"},
	{NVCF_SCOPE_INVOKE_FUNCTION, "invoke_function"},
	{NVCF_SCOPE_QUEUE_DETAILS, "queue_details"},
	{NVCF_SCOPE_LIST_CLUSTER_GROUPS, "list_cluster_groups"},
	{NVCF_SCOPE_LAUNCH_TASK, "launch_task"},
	{NVCF_SCOPE_LIST_TASKS, "list_tasks"},
	{NVCF_SCOPE_TASK_DETAILS, "task_details"},
	{NVCF_SCOPE_CANCEL_TASK, "cancel_task"},
	{NVCF_SCOPE_DELETE_TASK, "delete_task"},
	{NVCF_SCOPE_LIST_EVENTS, "list_events"},
	{NVCF_SCOPE_LIST_RESULTS, "list_results"},
};

#define SCOPE_COUNT (sizeof(scope_names) / sizeof(scope_names[0]))

uint32_t nvcf__scope_from_name(const char *name)
{
	for (size_t i = 0; i < SCOPE_COUNT; i++)
		if (strcasecmp(name, scope_names[i].name) == 0)
			return scope_names[i].bit;
	return 0;
}

const char *nvcf__scope_name(uint32_t bit)
{
	for (size_t i = 0; i < SCOPE_COUNT; i++)
		if (scope_names[i].bit == bit)
			return scope_names[i].name;
	return NULL;
}

nvcf_status nvcf__scopes_parse(const char *list, uint32_t *scopes_out)
{
	uint32_t scopes = 0;
	const char *p = list;

	if (list == NULL)
		return nvcf__error_set(NVCF_EINVAL, "scope list is missing");
	while (*p != '\0') {
		char name[64];
		size_t n = strcspn(p, ", \t");
		uint32_t bit;

		if (n == 0) {
			p++;
			continue;
		}
		if (n >= sizeof(name))
			return nvcf__error_set(NVCF_EINVAL,
					       "unknown scope '%.*s'", (int)n,
					       p);
		memcpy(name, p, n);
		name[n] = '\0';
		if (strcasecmp(name, "all") == 0)
			bit = NVCF_SCOPE_ALL;
		else
			bit = nvcf__scope_from_name(name);
		if (bit == 0)
			return nvcf__error_set(
				NVCF_EINVAL,
				"unknown scope '%s': use register_function, "
				"list_functions, deploy_function, "
				"delete_function, invoke_function, "
				"queue_details, list_cluster_groups, "
				"launch_task, list_tasks, task_details, "
				"cancel_task, delete_task, list_events, "
				"list_results or all",
				name);
		scopes |= bit;
		p += n;
	}
	if (scopes == 0)
		return nvcf__error_set(NVCF_EINVAL, "scope list is empty");
	*scopes_out = scopes;
	return NVCF_OK;
}

bool nvcf__nca_id_valid(const char *nca_id)
{
	size_t n = 0;

	/* Rejecting a leading '_' keeps account keys apart from "_id." keys. */
	if (nca_id == NULL || nca_id[0] == '_' || nca_id[0] == '-')
		return false;
	for (; nca_id[n] != '\0'; n++) {
		char c = nca_id[n];

		if (n >= NVCF_NCA_ID_MAX ||
		    !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
	}
	return n > 0;
}

nvcf_status nvcf__key_hash(const char *key, char out[65])
{
	return nvcf__sha256_hex(key, strlen(key), out);
}

static void base64url(const unsigned char *in, size_t len, char *out)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				       "abcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;

	for (size_t i = 0; i < len; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = alphabet[(acc >> bits) & 0x3f];
		}
	}
	if (bits > 0)
		out[o++] = alphabet[(acc << (6 - bits)) & 0x3f];
	out[o] = '\0';
}

nvcf_status nvcf__key_create(nvcf_bus *bus, const char *nca_id,
			     uint32_t scopes, const char *description,
			     char key_out[64])
{
	unsigned char random[32];
	char hash[65], created[32];
	cJSON *rec = NULL, *arr;
	nvcf_status st;
	char *json;

	if (!nvcf__nca_id_valid(nca_id))
		return nvcf__error_set(NVCF_EINVAL,
				       "invalid account id '%s': use 1 to 64 "
				       "letters, digits, '-' or '_'",
				       nca_id ? nca_id : "(null)");
	if (scopes == 0 || (scopes & ~(uint32_t)NVCF_SCOPE_ALL) != 0)
		return nvcf__error_set(NVCF_EINVAL,
				       "invalid scope set 0x%x", scopes);
	if ((st = nvcf__random_bytes(random, sizeof(random))) != NVCF_OK)
		return st;
	memcpy(key_out, NVCF_KEY_PREFIX, strlen(NVCF_KEY_PREFIX));
	base64url(random, sizeof(random), key_out + strlen(NVCF_KEY_PREFIX));
	if ((st = nvcf__key_hash(key_out, hash)) != NVCF_OK)
		return st;

	nvcf__iso8601(nvcf__now_us(), created);
	rec = cJSON_CreateObject();
	if (rec == NULL)
		return nvcf__error_oom();
	cJSON_AddStringToObject(rec, "ncaId", nca_id);
	cJSON_AddStringToObject(rec, "description",
				description ? description : nca_id);
	arr = cJSON_AddArrayToObject(rec, "scopes");
	for (size_t i = 0; i < SCOPE_COUNT; i++)
		if (scopes & scope_names[i].bit)
			cJSON_AddItemToArray(
				arr, cJSON_CreateString(scope_names[i].name));
	cJSON_AddStringToObject(rec, "createdAt", created);
	json = cJSON_PrintUnformatted(rec);
	cJSON_Delete(rec);
	if (json == NULL)
		return nvcf__error_oom();
	st = nvcf_bus_kv_create(bus, NVCF_BUCKET_KEYS, hash, json, strlen(json),
				NULL);
	cJSON_free(json);
	return st;
}

nvcf_status nvcf__key_record_parse(const char *json, size_t len,
				   nvcf__key_record *out)
{
	cJSON *rec = cJSON_ParseWithLength(json, len), *item;
	const char *nca, *desc;

	memset(out, 0, sizeof(*out));
	if (rec == NULL)
		return nvcf__error_set(NVCF_EPROTO, "key record is not JSON");
	nca = cJSON_GetStringValue(cJSON_GetObjectItem(rec, "ncaId"));
	desc = cJSON_GetStringValue(cJSON_GetObjectItem(rec, "description"));
	if (!nvcf__nca_id_valid(nca)) {
		cJSON_Delete(rec);
		return nvcf__error_set(NVCF_EPROTO,
				       "key record has no valid ncaId");
	}
	snprintf(out->nca_id, sizeof(out->nca_id), "%s", nca);
	snprintf(out->subject, sizeof(out->subject), "%s", desc ? desc : nca);
	cJSON_ArrayForEach(item, cJSON_GetObjectItem(rec, "scopes"))
	{
		const char *name = cJSON_GetStringValue(item);

		if (name != NULL)
			out->scopes |= nvcf__scope_from_name(name);
	}
	cJSON_Delete(rec);
	return NVCF_OK;
}

nvcf_status nvcf__key_hash_presented(const char *key, char out[65])
{
	if (key == NULL ||
	    strncmp(key, NVCF_KEY_PREFIX, strlen(NVCF_KEY_PREFIX)) != 0 ||
	    strlen(key) > 200)
		return nvcf__error_set(NVCF_EUNAUTHENTICATED,
				       "API key is malformed: expected "
				       "'nvapi-...'");
	return nvcf__key_hash(key, out);
}

nvcf_status nvcf__key_lookup(nvcf_bus *bus, const char *key,
			     nvcf__key_record *out)
{
	char hash[65];
	char *json = NULL;
	size_t len = 0;
	nvcf_status st;

	if ((st = nvcf__key_hash_presented(key, hash)) != NVCF_OK)
		return st;
	st = nvcf_bus_kv_get(bus, NVCF_BUCKET_KEYS, hash, &json, &len, NULL);
	if (st == NVCF_ENOTFOUND)
		return nvcf__error_set(NVCF_EUNAUTHENTICATED,
				       "API key is not known");
	if (st != NVCF_OK)
		return st;
	st = nvcf__key_record_parse(json, len, out);
	nvcf_free(json);
	return st;
}

const char *nvcf__bearer_token(const char *authorization)
{
	if (authorization == NULL || strncasecmp(authorization, "Bearer ", 7))
		return NULL;
	authorization += 7;
	while (*authorization == ' ')
		authorization++;
	return *authorization ? authorization : NULL;
}
