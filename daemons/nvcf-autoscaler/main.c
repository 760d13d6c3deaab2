/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nvcf-autoscaler: the scaling daemon. It parses flags, starts one
 * nvcf_autoscaler, serves /health and /metrics, and stops gracefully on
 * SIGTERM or SIGINT, releasing its leases.
 */
#include <getopt.h>
#include <stdio.h>

#include "daemon.h"
#include "http/http.h"
#include "nvcf/autoscaler.h"
#include "nvcf/bus.h"

#define NAME "nvcf-autoscaler"

static void usage(FILE *out)
{
	fputs("Usage: " NAME " [OPTIONS]\n"
	      "Keeps every deployed function version at the instance count "
	      "its\nscaling policy asks for, from zero and back.\n"
	      "\n"
	      "  --nats URL              NATS server (default "
	      "nats://127.0.0.1:4222)\n"
	      "  --region R              region of request queues (default "
	      "local)\n"
	      "  --tick-ms MS            evaluation period (default 500)\n"
	      "  --lease-ms MS           lease of a version (default 3000)\n"
	      "  --idle-to-zero-ms MS    idle window before zero when "
	      "minInstances is 0\n"
	      "                          (default 300000)\n"
	      "  --scale-down-window-ms MS  scale-down stabilization "
	      "(default 30000)\n"
	      "  --order-timeout-ms MS   a creation order without instances "
	      "stops\n"
	      "                          counting as starting (default "
	      "30000)\n"
	      "  --cluster-stale-ms MS   ignore clusters whose heartbeat is "
	      "older\n"
	      "                          (default 15000)\n"
	      "  --replica-id ID         name in leases and logs (default "
	      "random)\n"
	      "  --listen HOST:PORT      /health and /metrics (default "
	      "127.0.0.1:0)\n"
	      "  --port-file PATH        file that receives the bound port\n"
	      "  --log-level LEVEL       error, warn, info, debug or trace "
	      "(default info)\n"
	      "  --help, --version\n", out);
}

static nvcf_status metrics(void *obj, char **text_out)
{
	return nvcf_autoscaler_metrics(obj, text_out);
}

static bool parse_ms(const char *flag, const char *text, int64_t *out)
{
	if (daemon_parse_ms(text, out))
		return true;
	fprintf(stderr, NAME ": %s '%s' is not a number of "
		"milliseconds from 1 to 86400000\n", flag, text);
	return false;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"nats", required_argument, NULL, 'n'},
		{"region", required_argument, NULL, 'r'},
		{"tick-ms", required_argument, NULL, 't'},
		{"lease-ms", required_argument, NULL, 'e'},
		{"idle-to-zero-ms", required_argument, NULL, 'i'},
		{"scale-down-window-ms", required_argument, NULL, 'w'},
		{"order-timeout-ms", required_argument, NULL, 'o'},
		{"cluster-stale-ms", required_argument, NULL, 's'},
		{"replica-id", required_argument, NULL, 'R'},
		{"listen", required_argument, NULL, 'L'},
		{"port-file", required_argument, NULL, 'p'},
		{"log-level", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0}};
	nvcf_autoscaler_options aopts = NVCF_AUTOSCALER_OPTIONS_INIT;
	nvcf_bus_options bopts = NVCF_BUS_OPTIONS_INIT;
	daemon_status status = {metrics, NULL};
	nvcf_log_level_t level = NVCF_LOG_INFO;
	const char *listen = "127.0.0.1:0", *port_file = NULL;
	nvcf__http_server *http = NULL;
	nvcf_autoscaler *as = NULL;
	nvcf_bus *bus = NULL;
	char host[64];
	uint16_t port;
	int opt, rc = 1;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			bopts.url = optarg;
			break;
		case 'r':
			bopts.region = optarg;
			break;
		case 't':
			if (!parse_ms("--tick-ms", optarg, &aopts.tick_ms))
				return 2;
			break;
		case 'e':
			if (!parse_ms("--lease-ms", optarg, &aopts.lease_ms))
				return 2;
			break;
		case 'i':
			if (!parse_ms("--idle-to-zero-ms", optarg,
				      &aopts.idle_to_zero_ms))
				return 2;
			break;
		case 'w':
			if (!parse_ms("--scale-down-window-ms", optarg,
				      &aopts.scale_down_window_ms))
				return 2;
			break;
		case 'o':
			if (!parse_ms("--order-timeout-ms", optarg,
				      &aopts.order_timeout_ms))
				return 2;
			break;
		case 's':
			if (!parse_ms("--cluster-stale-ms", optarg,
				      &aopts.cluster_stale_ms))
				return 2;
			break;
		case 'R':
			aopts.replica_id = optarg;
			break;
		case 'L':
			listen = optarg;
			break;
		case 'p':
			port_file = optarg;
			break;
		case 'l':
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
	daemon_log_init(NAME, level);
	daemon_signals_block();
	bopts.name = NAME;
	if (nvcf_bus_new(&bus, &bopts) != NVCF_OK)
		goto fail;
	aopts.bus = bus;
	if (nvcf_autoscaler_new(&as, &aopts) != NVCF_OK ||
	    nvcf_autoscaler_start(as) != NVCF_OK)
		goto fail;
	status.obj = as;
	if (daemon_status_serve(&http, host, port, &status) != NVCF_OK)
		goto fail;
	if (!daemon_port_file_publish(NAME, port_file,
				      nvcf__http_server_port(http)))
		goto out;
	fprintf(stderr, NAME ": replica %s listening on %s:%u\n",
		nvcf_autoscaler_replica_id(as), host,
		(unsigned int)nvcf__http_server_port(http));
	daemon_wait_stop(NAME);
	rc = 0;
	goto out;
fail:
	fprintf(stderr, NAME ": cannot start: %s\n",
		nvcf_error_last()->message);
out:
	nvcf__http_server_free(http);
	nvcf_autoscaler_free(as);
	nvcf_bus_free(bus);
	return rc;
}
