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
#include "nvcf/version.h"

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
	      "  --failed-retention-ms MS  how long a failed ICMSRequest "
	      "stays\n"
	      "                      in KV before it is deleted (default "
	      "3600000)\n"
	      "  --listen HOST:PORT  /health and /metrics (default "
	      "127.0.0.1:0)\n"
	      "  --port-file PATH    file that receives the bound port\n"
	      "  --log-level LEVEL   error, warn, info, debug or trace\n"
	      "  --help, --version\n", out);
}

static void handler(nvcf__http_req *req, void *userdata)
{
	nvcf_agent *agent = userdata;
	const char *path = nvcf__http_path(req);
	char *text = NULL;

	if (strcmp(path, "/health") == 0) {
		nvcf__http_send_json(req, 200, "{\"status\":\"ok\"}");
	} else if (strcmp(path, "/metrics") == 0 &&
		   nvcf_agent_metrics(agent, &text) == NVCF_OK) {
		nvcf__http_send(req, 200,
				nvcf__http_response("text/plain; "
						    "version=0.0.4", text,
						    strlen(text)));
		nvcf_free(text);
	} else {
		nvcf__http_send_problem(req, 404, NULL, "no route for %s",
					path);
	}
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

static bool parse_ms(const char *text, int64_t *out)
{
	char *end;
	long long v = strtoll(text, &end, 10);

	if (*text == '\0' || *end != '\0' || v < 1 || v > 86400000)
		return false;
	*out = v;
	return true;
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
		{"failed-retention-ms", required_argument, NULL, 'F'},
		{"listen", required_argument, NULL, 'L'},
		{"port-file", required_argument, NULL, 'p'},
		{"log-level", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0}};
	nvcf_agent_options aopts = NVCF_AGENT_OPTIONS_INIT;
	nvcf_bus_options bopts = NVCF_BUS_OPTIONS_INIT;
	nvcf__http_config hcfg = {0};
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
		case 'g':
			if (!parse_ms(optarg, opt == 'T' ?
				      &aopts.start_timeout_ms :
				      &aopts.grace_ms)) {
				fprintf(stderr, "nvca: invalid %s '%s': use "
					"milliseconds from 1 to 86400000\n",
					opt == 'T' ? "--start-timeout-ms" :
					"--grace-ms", optarg);
				return 2;
			}
			break;
		case 'R':
		case 'F':
			if (!parse_ms(optarg, opt == 'R' ?
				      &aopts.reconcile_ms :
				      &aopts.failed_retention_ms)) {
				fprintf(stderr, "nvca: invalid %s '%s': use "
					"milliseconds from 1 to 86400000\n",
					opt == 'R' ? "--reconcile-ms" :
					"--failed-retention-ms", optarg);
				return 2;
			}
			break;
		case 'L':
			listen = optarg;
			break;
		case 'p':
			port_file = optarg;
			break;
		case 'l':
			if (!daemon_log_level_parse(optarg, &level)) {
				fprintf(stderr, "nvca: invalid --log-level "
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
			printf("nvca %s\n", nvcf_version_string());
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc || aopts.config_path == NULL) {
		fprintf(stderr, "nvca: --config FILE is required\n");
		usage(stderr);
		return 2;
	}
	if (!daemon_listen_parse(listen, host, &port)) {
		fprintf(stderr, "nvca: invalid --listen '%s': use HOST:PORT\n",
			listen);
		return 2;
	}
	if (aopts.worker_path == NULL) {
		worker = default_worker();
		aopts.worker_path = worker;
	}
	aopts.worker_log_level = level_name;

	daemon_log_init("nvca", level);
	daemon_signals_block();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	bopts.name = "nvca";
	if (nvcf_bus_new(&bus, &bopts) != NVCF_OK)
		goto fail;
	aopts.bus = bus;
	if (nvcf_agent_new(&agent, &aopts) != NVCF_OK)
		goto fail;
	hcfg.bind_address = host;
	hcfg.port = port;
	hcfg.handler = handler;
	hcfg.userdata = agent;
	if (nvcf__http_server_new(&http, &hcfg) != NVCF_OK)
		goto fail;
	if (port_file != NULL &&
	    daemon_port_file_write(port_file,
				   nvcf__http_server_port(http)) != 0) {
		fprintf(stderr, "nvca: cannot write port file '%s'\n",
			port_file);
		goto out;
	}
	fprintf(stderr, "nvca: listening on %s:%u\n", host,
		(unsigned int)nvcf__http_server_port(http));
	sig = daemon_signals_wait();
	fprintf(stderr, "nvca: signal %d: stopping\n", sig);
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "nvca: %s\n", nvcf_error_last()->message);
out:
	nvcf__http_server_free(http);
	nvcf_agent_free(agent);
	nvcf_bus_free(bus);
	curl_global_cleanup();
	free(worker);
	return rc;
}
