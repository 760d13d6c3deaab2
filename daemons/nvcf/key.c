/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nvcf key create: mints an API key for an account by writing its hash
 * straight into KV nvcf_keys. It needs access to NATS, so it is an
 * operator's command, not a REST call.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/keys.h"
#include "cli.h"
#include "nvcf/bus.h"

static void key_usage(FILE *out)
{
	fprintf(out,
		"Usage: nvcf key create --nca-id ID [--scopes LIST] "
		"[--description TEXT] [--nats URL]\n"
		"\n"
		"Creates an API key for account ID and prints it once; only its\n"
		"SHA-256 is stored.\n"
		"\n"
		"  --nca-id ID         account the key belongs to (letters, digits,\n"
		"                      '-', '_'; 1 to 64 characters)\n"
		"  --scopes LIST       comma-separated scopes, or 'all' (default)\n"
		"  --description TEXT  shown to functions as NVCF-SUB\n"
		"  --nats URL          NATS server (default $NATS_URL or\n"
		"                      nats://127.0.0.1:4222)\n");
}

int cmd_key(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"nca-id", required_argument, NULL, 'n'},
		{"scopes", required_argument, NULL, 's'},
		{"description", required_argument, NULL, 'd'},
		{"nats", required_argument, NULL, 'u'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	nvcf_bus_options opts = NVCF_BUS_OPTIONS_INIT;
	const char *nca_id = NULL, *scopes_text = "all", *description = NULL;
	const char *url = getenv("NATS_URL");
	nvcf_bus *bus = NULL;
	uint32_t scopes = 0;
	char key[64];
	int c;

	if (argc < 2 || strcmp(argv[1], "create") != 0) {
		key_usage(argc >= 2 && strcmp(argv[1], "--help") == 0
				  ? stdout
				  : stderr);
		return argc >= 2 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
	}
	optind = 1;
	while ((c = getopt_long(argc - 1, argv + 1, "h", longopts, NULL)) !=
	       -1) {
		switch (c) {
		case 'n':
			nca_id = optarg;
			break;
		case 's':
			scopes_text = optarg;
			break;
		case 'd':
			description = optarg;
			break;
		case 'u':
			url = optarg;
			break;
		case 'h':
			key_usage(stdout);
			return 0;
		default:
			key_usage(stderr);
			return 2;
		}
	}
	if (nca_id == NULL) {
		fprintf(stderr, "nvcf key create: --nca-id is required\n");
		return 2;
	}
	if (!nvcf__nca_id_valid(nca_id)) {
		fprintf(stderr,
			"nvcf key create: invalid account id '%s': use 1 to 64 "
			"letters, digits, '-' or '_', starting with a letter "
			"or digit\n",
			nca_id);
		return 2;
	}
	if (nvcf__scopes_parse(scopes_text, &scopes) != NVCF_OK) {
		fprintf(stderr, "nvcf key create: %s\n",
			nvcf_error_last()->message);
		return 2;
	}

	opts.url = url;
	opts.name = "nvcf key";
	if (nvcf_bus_new(&bus, &opts) != NVCF_OK ||
	    nvcf_bus_ensure_control(bus) != NVCF_OK ||
	    nvcf__key_create(bus, nca_id, scopes, description, key) !=
		    NVCF_OK) {
		fprintf(stderr, "nvcf key create: %s\n",
			nvcf_error_last()->message);
		nvcf_bus_free(bus);
		return 1;
	}
	nvcf_bus_free(bus);
	printf("%s\n", key);
	return 0;
}
