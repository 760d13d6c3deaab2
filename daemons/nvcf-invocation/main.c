/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nvcf-invocation: the invocation gateway daemon. It parses flags, starts
 * one nvcf_gateway and stops it gracefully on SIGTERM or SIGINT.
 */
#include <getopt.h>
#include <stdio.h>

#include "daemon.h"
#include "nvcf/gateway.h"

#define NAME "nvcf-invocation"
/* Largest value of the byte-count flags: 4 GiB. */

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: nvcf-invocation [OPTIONS]\n"
		"\n"
		"Serves the NVCF invocation API (pexec, status polling, "
		"header routing).\n"
		"\n"
		"  --nats URL          NATS server (default "
		"nats://127.0.0.1:4222)\n"
		"  --listen HOST:PORT  address to serve on (default "
		"127.0.0.1:8081; port 0 picks one)\n"
		"  --port-file PATH    write the bound port here once "
		"listening\n"
		"  --threads N         HTTP threads (default 2)\n"
		"  --region R          region of request queues (default "
		"local)\n"
		"  --max-body-bytes N  largest request body in bytes; larger "
		"ones get 413\n"
		"                      (default 67108864, 64 MiB)\n"
		"  --inline-body-bytes N  larger request bodies are stored as "
		"JetStream\n"
		"                      chunks (default 262144, capped by the "
		"NATS max_payload)\n"
		"  --log-level LEVEL   error, warn, info, debug or trace "
		"(default info)\n"
		"  --help              show this help\n"
		"  --version           show the version\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"nats", required_argument, NULL, 'n'},
		{"listen", required_argument, NULL, 'l'},
		{"port-file", required_argument, NULL, 'p'},
		{"threads", required_argument, NULL, 't'},
		{"region", required_argument, NULL, 'r'},
		{"max-body-bytes", required_argument, NULL, 'm'},
		{"inline-body-bytes", required_argument, NULL, 'I'},
		{"log-level", required_argument, NULL, 'L'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	nvcf_gateway_options opts = NVCF_GATEWAY_OPTIONS_INIT;
	nvcf_log_level_t level = NVCF_LOG_INFO;
	const char *listen = "127.0.0.1:8081";
	const char *port_file = NULL;
	nvcf_gateway *gw = NULL;
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
			if (!daemon_parse_num(optarg, 1, 1024, &n)) {
				fprintf(stderr, NAME ": --threads '%s' is "
					"not a number from 1 to 1024\n",
					optarg);
				return 2;
			}
			opts.threads = (unsigned int)n;
			break;
		case 'r':
			opts.region = optarg;
			break;
		case 'm':
			if (!daemon_flag_bytes(NAME, "--max-body-bytes", optarg,
					       &opts.max_body_bytes))
				return 2;
			break;
		case 'I':
			if (!daemon_flag_bytes(NAME, "--inline-body-bytes",
					       optarg, &opts.inline_body_bytes))
				return 2;
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
		fprintf(stderr, NAME ": unexpected argument '%s': "
			"every option starts with --\n",
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
	st = nvcf_gateway_new(&gw, &opts);
	if (st == NVCF_OK)
		st = nvcf_gateway_start(gw);
	if (st != NVCF_OK) {
		fprintf(stderr, NAME ": %s\n",
			nvcf_error_last()->message);
		nvcf_gateway_free(gw);
		return 1;
	}
	if (!daemon_port_file_publish(NAME, port_file,
				      nvcf_gateway_port(gw))) {
		nvcf_gateway_free(gw);
		return 1;
	}
	daemon_wait_stop(NAME);
	nvcf_gateway_free(gw);
	return 0;
}
