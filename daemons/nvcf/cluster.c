/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nvcf cluster list: the clusters that agents registered in KV
 * nvcf_clusters, with their health and GPU use. It reads NATS directly,
 * like `nvcf key create`, so an operator sees clusters that the REST API
 * would hide for being stale.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "nvcf/bus.h"
#include "nvcf/routing.h"

static void cluster_usage(FILE *out)
{
	fputs("usage: nvcf cluster list [--nats URL | --state-dir DIR] "
	      "[--json]\n"
	      "                         [--cluster-stale-ms MS]\n"
	      "\n"
	      "Lists the clusters registered by cluster agents (nvca): id, "
	      "name,\ngroup, region, health and allocated/capacity per GPU "
	      "type.\n"
	      "\n"
	      "  --nats URL             NATS server (default $NATS_URL or\n"
	      "                         nats://127.0.0.1:4222)\n"
	      "  --state-dir DIR        read NATS_URL from DIR/env of 'nvcf "
	      "up'\n"
	      "  --json                 print JSON instead of a table\n"
	      "  --cluster-stale-ms MS  heartbeat age after which a cluster "
	      "is\n"
	      "                         unhealthy (default 30000)\n",
	      out);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Loads every record of KV nvcf_clusters; bad records are reported. */
static int load(nvcf_bus *bus, nvcf_inventory *inv)
{
	char **keys = NULL;
	size_t n = 0;

	if (nvcf_bus_kv_keys(bus, NVCF_BUCKET_CLUSTERS, NULL, &keys, &n) !=
	    NVCF_OK) {
		cli_err("cannot list KV %s: %s (has a cluster agent "
			"started against this NATS server?)",
			NVCF_BUCKET_CLUSTERS, nvcf_error_last()->message);
		return CLI_EXIT_ERROR;
	}
	for (size_t i = 0; i < n; i++) {
		char *text = NULL;
		nvcf_status st;

		st = nvcf_bus_kv_get(bus, NVCF_BUCKET_CLUSTERS, keys[i], &text,
				     NULL, NULL);
		if (st == NVCF_ENOTFOUND)
			continue; /* deleted since the listing */
		if (st == NVCF_OK)
			st = nvcf_inventory_add_cluster_json(inv, text);
		nvcf_free(text);
		if (st != NVCF_OK)
			cli_err("skipping cluster record '%s': %s", keys[i],
				nvcf_error_last()->message);
	}
	nvcf_strings_free(keys, n);
	return CLI_EXIT_OK;
}

/* Cluster indexes ordered by id, so that output is stable. */
static size_t *sorted(const nvcf_inventory *inv, size_t n)
{
	size_t *idx = calloc(n + 1, sizeof(*idx));

	for (size_t i = 0; idx != NULL && i < n; i++) {
		size_t j = i;

		while (j > 0 &&
		       strcmp(nvcf_inventory_cluster(inv, idx[j - 1])
				      ->cluster_id,
			      nvcf_inventory_cluster(inv, i)->cluster_id) >
			       0) {
			idx[j] = idx[j - 1];
			j--;
		}
		idx[j] = i;
	}
	return idx;
}

static void age_text(int64_t age_ms, char out[32])
{
	if (age_ms < 0)
		age_ms = 0;
	if (age_ms < 120000)
		snprintf(out, 32, "%llds", (long long)(age_ms / 1000));
	else if (age_ms < 7200000)
		snprintf(out, 32, "%lldm", (long long)(age_ms / 60000));
	else
		snprintf(out, 32, "%lldh", (long long)(age_ms / 3600000));
}

static void print_table(const nvcf_inventory *inv, const size_t *idx,
			size_t n, int64_t now, int64_t stale_ms)
{
	printf("%-20s %-16s %-12s %-12s %-20s %s\n", "ID", "NAME", "GROUP",
	       "REGION", "HEALTH", "GPUS (allocated/capacity)");
	for (size_t k = 0; k < n; k++) {
		const nvcf_cluster_info *c = nvcf_inventory_cluster(inv,
								    idx[k]);
		bool ok = nvcf_inventory_cluster_healthy(inv, idx[k], now,
							 stale_ms);
		char age[32], health[48];

		if (c->heartbeat_ms > 0) {
			age_text(now - c->heartbeat_ms, age);
			snprintf(health, sizeof(health), "%s (%s ago)",
				 ok ? "healthy" : "unhealthy", age);
		} else {
			snprintf(health, sizeof(health), "%s (never)",
				 ok ? "healthy" : "unhealthy");
		}
		printf("%-20s %-16s %-12s %-12s %-20s", c->cluster_id,
		       c->name, c->group, c->region, health);
		for (size_t g = 0; g < c->gpus_count; g++)
			printf("%s%s %u/%u", g ? ", " : " ", c->gpus[g].name,
			       c->gpus[g].allocated, c->gpus[g].capacity);
		putchar('\n');
	}
}

static cJSON *cluster_json(const nvcf_inventory *inv, size_t i, int64_t now,
			   int64_t stale_ms)
{
	const nvcf_cluster_info *c = nvcf_inventory_cluster(inv, i);
	cJSON *o = cJSON_CreateObject(), *gpus, *attrs;

	if (o == NULL)
		return NULL;
	cJSON_AddStringToObject(o, "id", c->cluster_id);
	cJSON_AddStringToObject(o, "name", c->name);
	cJSON_AddStringToObject(o, "group", c->group);
	cJSON_AddStringToObject(o, "region", c->region);
	attrs = cJSON_AddArrayToObject(o, "attributes");
	for (size_t a = 0; attrs && a < c->attributes_count; a++)
		cJSON_AddItemToArray(attrs,
				     cJSON_CreateString(c->attributes[a]));
	cJSON_AddStringToObject(o,
				"health",
				nvcf_inventory_cluster_healthy(inv, i, now,
							       stale_ms)
					? "healthy"
					: "unhealthy");
	cJSON_AddNumberToObject(o, "heartbeatAtMs", (double)c->heartbeat_ms);
	cJSON_AddNumberToObject(o, "heartbeatAgeMs",
				(double)(now - c->heartbeat_ms));
	gpus = cJSON_AddArrayToObject(o, "gpus");
	for (size_t g = 0; gpus && g < c->gpus_count; g++) {
		const nvcf_gpu_info *gi = &c->gpus[g];
		cJSON *go = cJSON_CreateObject();

		if (go == NULL)
			break;
		cJSON_AddStringToObject(go, "name", gi->name);
		cJSON_AddNumberToObject(go, "capacity", gi->capacity);
		cJSON_AddNumberToObject(go, "allocated", gi->allocated);
		cJSON_AddNumberToObject(go, "available",
					gi->allocated < gi->capacity
						? gi->capacity - gi->allocated
						: 0);
		cJSON_AddItemToArray(gpus, go);
	}
	return o;
}

static int print_json(const nvcf_inventory *inv, const size_t *idx,
		      size_t n, int64_t now, int64_t stale_ms)
{
	cJSON *root = cJSON_CreateObject();
	cJSON *arr = root ? cJSON_AddArrayToObject(root, "clusters") : NULL;
	char *text;

	for (size_t k = 0; arr && k < n; k++)
		cJSON_AddItemToArray(arr,
				     cluster_json(inv, idx[k], now, stale_ms));
	text = arr ? cJSON_Print(root) : NULL;
	cJSON_Delete(root);
	if (text == NULL) {
		cli_err("out of memory");
		return CLI_EXIT_ERROR;
	}
	puts(text);
	free(text);
	return CLI_EXIT_OK;
}

static int cluster_list(int argc, char **argv)
{
	nvcf_bus_options opts = NVCF_BUS_OPTIONS_INIT;
	const char *url = NULL, *state_dir = NULL, *stale_text = NULL;
	nvcf_inventory *inv = NULL;
	nvcf_bus *bus = NULL;
	bool json = false;
	long stale_ms = NVCF_HEARTBEAT_TIMEOUT_MS_DEFAULT;
	size_t *idx = NULL, n;
	int64_t now;
	int rc;

	for (int i = 1; i < argc; i++) {
		const char *v;

		if (cli_is_help(argv[i])) {
			cluster_usage(stdout);
			return CLI_EXIT_OK;
		} else if (strcmp(argv[i], "--json") == 0) {
			json = true;
		} else if (cli_flag(argc, argv, &i, "--nats", &v)) {
			if ((url = v) == NULL)
				return CLI_EXIT_USAGE;
		} else if (cli_flag(argc, argv, &i, "--state-dir", &v)) {
			if ((state_dir = v) == NULL)
				return CLI_EXIT_USAGE;
		} else if (cli_flag(argc, argv, &i, "--cluster-stale-ms", &v)) {
			if ((stale_text = v) == NULL)
				return CLI_EXIT_USAGE;
		} else {
			cli_err("cluster list: unknown argument '%s'",
				argv[i]);
			cluster_usage(stderr);
			return CLI_EXIT_USAGE;
		}
	}
	if (stale_text != NULL &&
	    (!cli_parse_int(stale_text, &stale_ms) || stale_ms < 1)) {
		cli_err("cluster list: --cluster-stale-ms '%s' is not a "
			"positive number of milliseconds", stale_text);
		return CLI_EXIT_USAGE;
	}
	if (url != NULL && state_dir != NULL) {
		cli_err("cluster list: give --nats or --state-dir, not both");
		return CLI_EXIT_USAGE;
	}
	if (state_dir != NULL && !cli_load_env(state_dir))
		return CLI_EXIT_USAGE;
	if (url == NULL)
		url = getenv("NATS_URL");
	opts.url = url;
	opts.name = "nvcf cluster";
	if (nvcf_bus_new(&bus, &opts) != NVCF_OK ||
	    nvcf_inventory_new(&inv) != NVCF_OK) {
		cli_err("cluster list: %s", nvcf_error_last()->message);
		nvcf_bus_free(bus);
		return CLI_EXIT_ERROR;
	}
	rc = load(bus, inv);
	nvcf_bus_free(bus);
	n = nvcf_inventory_count(inv);
	if (rc == CLI_EXIT_OK && (idx = sorted(inv, n)) == NULL) {
		cli_err("out of memory");
		rc = CLI_EXIT_ERROR;
	}
	now = now_ms();
	if (rc == CLI_EXIT_OK && json)
		rc = print_json(inv, idx, n, now, stale_ms);
	else if (rc == CLI_EXIT_OK)
		print_table(inv, idx, n, now, stale_ms);
	free(idx);
	nvcf_inventory_free(inv);
	return rc;
}

int cmd_cluster(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "list") == 0)
		return cluster_list(argc - 1, argv + 1);
	if (argc >= 2 && cli_is_help(argv[1])) {
		cluster_usage(stdout);
		return CLI_EXIT_OK;
	}
	if (argc >= 2)
		cli_err("cluster: unknown subcommand '%s'", argv[1]);
	cluster_usage(stderr);
	return CLI_EXIT_USAGE;
}
