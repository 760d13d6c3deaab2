/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nvca: the cluster agent. It starts function instances of one cluster as
 * local processes, each with an nvcf-worker beside it.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "daemon.h"
#include "http/http.h"
#include "nvcf/agent.h"
#include "nvcf/bus.h"

#define NAME "nvca"

static void usage(FILE *out)
{
	fputs("Usage: nvca --config FILE [options]\n"
	      "Runs the function instances of one cluster on this machine.\n"
	      "\n"
	      "  --nats URL          NATS server (default "
	      "nats://127.0.0.1:4222)\n"
	      "  --config FILE       NVCFBackend YAML file (required)\n"
	      "  --queue-region R    region of the control plane's request "
	      "queues\n                      (default local)\n"
	      "  --state-dir DIR     instance logs (default ./nvca-state)\n"
	      "  --worker PATH       nvcf-worker executable (default: next to "
	      "nvca)\n"
	      "  --start-timeout-ms MS  bound of an instance start-up "
	      "(default 60000)\n"
	      "  --grace-ms MS       SIGTERM to SIGKILL delay (default 10000)\n"
	      "  --reconcile-ms MS   ICMSRequest reconcile tick (default "
	      "1000)\n"
	      "  --heartbeat-ms MS   how often the cluster record is "
	      "rewritten\n"
	      "                      (default 5000)\n"
	      "  --failed-retention-ms MS  how long a failed ICMSRequest "
	      "stays\n"
	      "                      in KV before it is deleted (default "
	      "3600000)\n"
	      "  --docker-socket PATH  Docker Engine API socket (Docker or "
	      "`podman system\n"
	      "                      service`): run non-file:// images as "
	      "containers\n"
	      "  --listen HOST:PORT  /health and /metrics (default "
	      "127.0.0.1:0)\n"
	      "  --port-file PATH    file that receives the bound port\n"
	      "  --log-level LEVEL   error, warn, info, debug or trace\n"
	      "  --help, --version\n", out);
}

static nvcf_status metrics(void *obj, char **text_out)
{
	return nvcf_agent_metrics(obj, text_out);
}

/* The default worker is the nvcf-worker beside this executable. */
static char *default_worker(void)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n <= 0)
		return strdup("nvcf-worker");
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (slash != NULL)
		slash[1] = '\0';
	return nvcf__asprintf("%snvcf-worker", slash ? self : "");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"nats", required_argument, NULL, 'n'},
		{"queue-region", required_argument, NULL, 'Q'},
		{"config", required_argument, NULL, 'c'},
		{"state-dir", required_argument, NULL, 's'},
		{"worker", required_argument, NULL, 'w'},
		{"start-timeout-ms", required_argument, NULL, 'T'},
		{"grace-ms", required_argument, NULL, 'g'},
		{"reconcile-ms", required_argument, NULL, 'R'},
		{"heartbeat-ms", required_argument, NULL, 'H'},
		{"failed-retention-ms", required_argument, NULL, 'F'},
		{"docker-socket", required_argument, NULL, 'D'},
		{"listen", required_argument, NULL, 'L'},
		{"port-file", required_argument, NULL, 'p'},
		{"log-level", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0}};
	nvcf_agent_options aopts = NVCF_AGENT_OPTIONS_INIT;
	nvcf_bus_options bopts = NVCF_BUS_OPTIONS_INIT;
	daemon_status status = {metrics, NULL};
	nvcf_log_level_t level = NVCF_LOG_INFO;
	const char *listen = "127.0.0.1:0", *port_file = NULL;
	const char *level_name = "info";
	nvcf__http_server *http = NULL;
	nvcf_agent *agent = NULL;
	char host[64], *worker = NULL;
	nvcf_bus *bus = NULL;
	uint16_t port;
	int opt, sig, rc = 1;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'Q':
			bopts.region = optarg;
			break;
		case 'n':
			bopts.url = aopts.nats_url = optarg;
			break;
		case 'c':
			aopts.config_path = optarg;
			break;
		case 's':
			aopts.state_dir = optarg;
			break;
		case 'w':
			aopts.worker_path = optarg;
			break;
		case 'T':
			if (!daemon_flag_ms(NAME, "--start-timeout-ms", optarg,
					    &aopts.start_timeout_ms))
				return 2;
			break;
		case 'g':
			if (!daemon_flag_ms(NAME, "--grace-ms", optarg,
					    &aopts.grace_ms))
				return 2;
			break;
		case 'R':
			if (!daemon_flag_ms(NAME, "--reconcile-ms", optarg,
					    &aopts.reconcile_ms))
				return 2;
			break;
		case 'F':
			if (!daemon_flag_ms(NAME, "--failed-retention-ms",
					    optarg, &aopts.failed_retention_ms))
				return 2;
			break;
		case 'H':
			if (!daemon_flag_ms(NAME, "--heartbeat-ms", optarg,
					    &aopts.heartbeat_ms))
				return 2;
			break;
		case 'D':
			aopts.docker_socket = optarg;
			break;
		case 'L':
			listen = optarg;
			break;
		case 'p':
			port_file = optarg;
			break;
		case 'l':
			if (!daemon_log_level_parse(optarg, &level)) {
				fprintf(stderr, NAME ": invalid --log-level "
					"'%s': use error, warn, info, debug "
					"or trace\n", optarg);
				return 2;
			}
			level_name = optarg;
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
	if (optind < argc || aopts.config_path == NULL) {
		fprintf(stderr, NAME ": --config FILE is required\n");
		usage(stderr);
		return 2;
	}
	if (!daemon_listen_parse(listen, host, &port)) {
		fprintf(stderr, NAME ": invalid --listen '%s': use HOST:PORT\n",
			listen);
		return 2;
	}
	if (aopts.worker_path == NULL) {
		worker = default_worker();
		aopts.worker_path = worker;
	}
	aopts.worker_log_level = level_name;

	daemon_log_init(NAME, level);
	daemon_signals_block();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	bopts.name = NAME;
	if (nvcf_bus_new(&bus, &bopts) != NVCF_OK)
		goto fail;
	aopts.bus = bus;
	if (nvcf_agent_new(&agent, &aopts) != NVCF_OK)
		goto fail;
	status.obj = agent;
	if (daemon_status_serve(&http, host, port, &status) != NVCF_OK)
		goto fail;
	if (port_file != NULL &&
	    daemon_port_file_write(port_file,
				   nvcf__http_server_port(http)) != 0) {
		fprintf(stderr, NAME ": cannot write port file '%s'\n",
			port_file);
		goto out;
	}
	fprintf(stderr, NAME ": listening on %s:%u\n", host,
		(unsigned int)nvcf__http_server_port(http));
	sig = daemon_signals_wait();
	fprintf(stderr, NAME ": signal %d: stopping\n", sig);
	rc = 0;
	goto out;
fail:
	fprintf(stderr, NAME ": %s\n", nvcf_error_last()->message);
out:
	nvcf__http_server_free(http);
	nvcf_agent_free(agent);
	nvcf_bus_free(bus);
	curl_global_cleanup();
	free(worker);
	return rc;
}
