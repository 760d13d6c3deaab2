/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nvcf: the command-line client of libnvcf, and `nvcf up` / `nvcf down`
 * to run a whole local stack.
 */
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "cli.h"
#include "nvcf/version.h"

static const struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{"up", cmd_up, "start a local stack (nats-server and every daemon)"},
	{"down", cmd_down, "stop the local stack"},
	{"status", cmd_status, "show the processes of the local stack"},
	{"function", cmd_function, "create, list, get and delete functions"},
	{"deploy", cmd_deploy, "deploy and undeploy function versions"},
	{"cluster-groups", cmd_cluster_groups,
	 "list cluster groups, GPUs and instance types"},
	{"cluster", cmd_cluster,
	 "list registered clusters, their health and GPU use (reads NATS)"},
	{"invoke", cmd_invoke, "call a function through the gateway"},
	{"key", cmd_key, "create API keys (writes KV directly)"},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static int usage(FILE *out)
{
	fputs("usage: nvcf COMMAND [ARGS...]\n\ncommands:\n", out);
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(out, "  %-15s %s\n", commands[i].name,
			commands[i].summary);
	fputs("\n'nvcf COMMAND --help' describes each command. Client commands"
	      " read\nNVCF_API_URL, NVCF_INVOKE_URL and NVCF_API_KEY, or "
	      "DIR/env with --state-dir DIR.\n",
	      out);
	return out == stdout ? CLI_EXIT_OK : CLI_EXIT_USAGE;
}

int main(int argc, char **argv)
{
	int rc;

	if (argc < 2)
		return usage(stderr);
	if (cli_is_help(argv[1]) || strcmp(argv[1], "help") == 0)
		return usage(stdout);
	if (strcmp(argv[1], "--version") == 0 ||
	    strcmp(argv[1], "version") == 0) {
		printf("nvcf %s\n", NVCF_VERSION_STRING);
		return CLI_EXIT_OK;
	}
	for (size_t i = 0; i < N_COMMANDS; i++) {
		if (strcmp(argv[1], commands[i].name) != 0)
			continue;
		curl_global_init(CURL_GLOBAL_DEFAULT);
		rc = commands[i].run(argc - 1, argv + 1);
		curl_global_cleanup();
		return rc;
	}
	cli_err("unknown command '%s'", argv[1]);
	return usage(stderr);
}
