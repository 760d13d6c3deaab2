/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nvcf-api: the control-plane REST daemon. It parses flags, starts one
 * nvcf_api and stops it gracefully on SIGTERM or SIGINT.
 */
#include <getopt.h>
#include <stdio.h>

#include "daemon.h"
#include "nvcf/api.h"

#define NAME "nvcf-api"

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: " NAME " [OPTIONS]\n"
		"\n"
		"Serves the NVCF control-plane API (functions, versions, "
		"deployments,\nqueues, cluster groups).\n"
		"\n"
		"  --nats URL             NATS server (default "
		"nats://127.0.0.1:4222)\n"
		"  --listen HOST:PORT     address to serve on (default "
		"127.0.0.1:8080; port 0 picks one)\n"
		"  --port-file PATH       write the bound port here once "
		"listening\n"
		"  --threads N            HTTP threads (default 4)\n"
		"  --region R             region of request queues (default "
		"local)\n"
		"  --queue-max-msgs N     queued requests per version "
		"(default 100000)\n"
		"  --max-functions N      functions per account (default 50)\n"
		"  --cluster-stale-ms MS  ignore clusters whose heartbeat is "
		"older (default 30000)\n"
		"  --ack-wait-ms MS       redelivery delay of unacknowledged "
		"requests (default 30000)\n"
		"  --autoscaler           leave placing instances to "
		"nvcf-autoscaler\n"
		"  --log-level LEVEL      error, warn, info, debug or trace "
		"(default info)\n"
		"  --help                 show this help\n"
		"  --version              show the version\n");
}

static bool parse_num(const char *flag, const char *text, long long lo,
		      long long hi, long long *out)
{
	if (daemon_parse_num(text, lo, hi, out))
		return true;
	fprintf(stderr, NAME ": %s '%s' is not a number from %lld to %lld\n",
		flag, text, lo, hi);
	return false;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"nats", required_argument, NULL, 'n'},
		{"listen", required_argument, NULL, 'l'},
		{"port-file", required_argument, NULL, 'p'},
		{"threads", required_argument, NULL, 't'},
		{"region", required_argument, NULL, 'r'},
		{"queue-max-msgs", required_argument, NULL, 'q'},
		{"max-functions", required_argument, NULL, 'm'},
		{"cluster-stale-ms", required_argument, NULL, 's'},
		{"ack-wait-ms", required_argument, NULL, 'a'},
		{"autoscaler", no_argument, NULL, 'A'},
		{"log-level", required_argument, NULL, 'L'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	nvcf_api_options opts = NVCF_API_OPTIONS_INIT;
	nvcf_log_level_t level = NVCF_LOG_INFO;
	const char *listen = "127.0.0.1:8080";
	const char *port_file = NULL;
	nvcf_api *api = NULL;
	char host[64];
	uint16_t port;
	nvcf_status st;
	long long n;
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'n':
			opts.nats_url = optarg;
			break;
		case 'l':
			listen = optarg;
			break;
		case 'p':
			port_file = optarg;
			break;
		case 't':
			if (!parse_num("--threads", optarg, 1, 1024, &n))
				return 2;
			opts.threads = (unsigned int)n;
			break;
		case 'r':
			opts.region = optarg;
			break;
		case 'q':
			if (!parse_num("--queue-max-msgs", optarg, 1,
				       1000000000, &n))
				return 2;
			opts.queue_max_msgs = n;
			break;
		case 'm':
			if (!parse_num("--max-functions", optarg, 1, 1000000,
				       &n))
				return 2;
			opts.max_functions_per_account = (int)n;
			break;
		case 's':
			if (!parse_num("--cluster-stale-ms", optarg, 1,
				       86400000, &n))
				return 2;
			opts.cluster_stale_ms = n;
			break;
		case 'a':
			if (!parse_num("--ack-wait-ms", optarg, 1, 86400000,
				       &n))
				return 2;
			opts.request_ack_wait_ms = n;
			break;
		case 'A':
			opts.external_scaling = true;
			break;
		case 'L':
			if (!daemon_flag_log_level(NAME, optarg, &level))
				return 2;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			daemon_print_version(NAME);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, NAME ": unexpected argument '%s'\n",
			argv[optind]);
		usage(stderr);
		return 2;
	}
	if (!daemon_flag_listen(NAME, listen, host, &port))
		return 2;
	opts.listen_address = host;
	opts.port = port;

	daemon_log_init(NAME, level);
	daemon_signals_block();
	st = nvcf_api_new(&api, &opts);
	if (st == NVCF_OK)
		st = nvcf_api_start(api);
	if (st != NVCF_OK) {
		fprintf(stderr, NAME ": cannot start: %s\n",
			nvcf_error_last()->message);
		nvcf_api_free(api);
		return 1;
	}
	if (!daemon_port_file_publish(NAME, port_file, nvcf_api_port(api))) {
		nvcf_api_free(api);
		return 1;
	}
	fprintf(stderr, NAME ": started on %s:%u\n", host,
		(unsigned int)nvcf_api_port(api));
	daemon_wait_stop(NAME);
	nvcf_api_free(api);
	fprintf(stderr, NAME ": stopped\n");
	return 0;
}
