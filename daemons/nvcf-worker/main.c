/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nvcf-worker: the sidecar of one function instance. It pulls requests of
 * one function version from JetStream and calls the function over HTTP.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "daemon.h"
#include "nvcf/bus.h"
#include "nvcf/worker.h"

/* Largest value of the byte-count flags: 4 GiB. */
#define NAME "nvcf-worker"

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: nvcf-worker --nats URL --function-id ID --version-id ID\n"
		"         --instance-id ID --function-url http://127.0.0.1:PORT\n"
		"         [options]\n"
		"Calls one function instance with the requests of its version.\n"
		"\n"
		"  --nats URL            NATS server (default "
		"nats://127.0.0.1:4222)\n"
		"  --function-id ID      function id\n"
		"  --version-id ID       function version id (a UUID)\n"
		"  --instance-id ID      instance id\n"
		"  --nca-id ID           account of the function\n"
		"  --function-url URL    base URL of the function's HTTP server\n"
		"  --concurrency N       requests held at once, 1 to %d "
		"(default 1)\n"
		"  --function-name NAME  sent as NVCF-FUNCTION-NAME\n"
		"  --instance-type NAME  sent as NVCF-INSTANCETYPE\n"
		"  --backend NAME        sent as NVCF-BACKEND\n"
		"  --region NAME         sent as NVCF-REGION (default: the "
		"queue region)\n"
		"  --queue-region NAME   region of the request queue (default "
		"local)\n"
		"  --ack-wait-ms MS      ack wait when the consumer cannot be "
		"read (default 30000)\n"
		"  --grace-ms MS         time held requests get on SIGTERM "
		"(default 8000)\n"
		"  --max-response-bytes N  largest function response in "
		"bytes; larger ones\n"
		"                        become 502 (default 67108864, 64 "
		"MiB)\n"
		"  --inline-body-bytes N   larger responses are stored as "
		"JetStream chunks\n"
		"                        (default 262144, capped by the NATS "
		"max_payload)\n"
		"  --log-level LEVEL     error, warn, info, debug or trace\n"
		"  --help, --version\n",
		NVCF_WORKER_MAX_CONCURRENCY);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"nats", required_argument, NULL, 'n'},
		{"function-id", required_argument, NULL, 'f'},
		{"version-id", required_argument, NULL, 'v'},
		{"instance-id", required_argument, NULL, 'i'},
		{"nca-id", required_argument, NULL, 'a'},
		{"function-url", required_argument, NULL, 'u'},
		{"concurrency", required_argument, NULL, 'c'},
		{"function-name", required_argument, NULL, 'N'},
		{"instance-type", required_argument, NULL, 't'},
		{"backend", required_argument, NULL, 'b'},
		{"region", required_argument, NULL, 'r'},
		{"queue-region", required_argument, NULL, 'Q'},
		{"ack-wait-ms", required_argument, NULL, 'w'},
		{"grace-ms", required_argument, NULL, 'g'},
		{"max-response-bytes", required_argument, NULL, 'M'},
		{"inline-body-bytes", required_argument, NULL, 'I'},
		{"log-level", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0}};
	nvcf_worker_options wopts = NVCF_WORKER_OPTIONS_INIT;
	nvcf_bus_options bopts = NVCF_BUS_OPTIONS_INIT;
	nvcf_log_level_t level = NVCF_LOG_INFO;
	nvcf_worker *worker = NULL;
	nvcf_bus *bus = NULL;
	long long v;
	int opt, sig;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'n': bopts.url = optarg; break;
		case 'f': wopts.function_id = optarg; break;
		case 'v': wopts.version_id = optarg; break;
		case 'i': wopts.instance_id = optarg; break;
		case 'a': wopts.nca_id = optarg; break;
		case 'u': wopts.function_url = optarg; break;
		case 'N': wopts.function_name = optarg; break;
		case 't': wopts.instance_type = optarg; break;
		case 'b': wopts.backend = optarg; break;
		case 'r': wopts.region = optarg; break;
		case 'Q': bopts.region = optarg; break;
		case 'c':
			if (!daemon_parse_num(optarg, 1,
					      NVCF_WORKER_MAX_CONCURRENCY,
					      &v)) {
				fprintf(stderr, NAME ": invalid "
					"--concurrency '%s': use 1 to %d\n",
					optarg, NVCF_WORKER_MAX_CONCURRENCY);
				return 2;
			}
			wopts.concurrency = (int)v;
			break;
		case 'w':
			if (!daemon_flag_ms(NAME, "--ack-wait-ms", optarg,
					    &wopts.ack_wait_ms))
				return 2;
			break;
		case 'g':
			if (!daemon_flag_ms(NAME, "--grace-ms", optarg,
					    &wopts.grace_ms))
				return 2;
			break;
		case 'M':
			if (!daemon_flag_bytes(NAME, "--max-response-bytes",
					       optarg, &wopts.max_response_bytes))
				return 2;
			break;
		case 'I':
			if (!daemon_flag_bytes(NAME, "--inline-body-bytes",
					       optarg, &wopts.inline_body_bytes))
				return 2;
			break;
		case 'l':
			if (!daemon_log_level_parse(optarg, &level)) {
				fprintf(stderr, NAME ": invalid "
					"--log-level '%s': use error, warn, "
					"info, debug or trace\n", optarg);
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		case 'V': daemon_print_version(NAME);
			return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc || wopts.function_id == NULL ||
	    wopts.version_id == NULL || wopts.instance_id == NULL ||
	    wopts.function_url == NULL) {
		fprintf(stderr, NAME ": --function-id, --version-id, "
			"--instance-id and --function-url are required\n");
		usage(stderr);
		return 2;
	}

	daemon_log_init(NAME, level);
	daemon_signals_block();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	bopts.name = NAME;
	if (nvcf_bus_new(&bus, &bopts) != NVCF_OK) {
		fprintf(stderr, NAME ": %s\n",
			nvcf_error_last()->message);
		return 1;
	}
	wopts.bus = bus;
	if (nvcf_worker_new(&worker, &wopts) != NVCF_OK) {
		fprintf(stderr, NAME ": %s\n",
			nvcf_error_last()->message);
		nvcf_bus_free(bus);
		return 1;
	}
	sig = daemon_signals_wait();
	fprintf(stderr, NAME ": signal %d: stopping\n", sig);
	nvcf_worker_stop(worker);
	nvcf_worker_free(worker);
	nvcf_bus_free(bus);
	curl_global_cleanup();
	return 0;
}
