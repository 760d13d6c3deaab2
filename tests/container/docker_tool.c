/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Drives the container runtime client from the command line so that the
 * pytest suite (and later end-to-end tests) exercise the real C code
 * against a real engine:
 *
 *   nvcf-docker-tool SOCKET ping
 *   nvcf-docker-tool SOCKET ensure IMAGE            -> image id
 *   nvcf-docker-tool SOCKET create [options] [-- CMD...]   -> container id
 *       --name N --image I --port P --host-port P --env K=V --label K=V
 *       --gpu ID --restart POLICY --init
 *   nvcf-docker-tool SOCKET start|rm ID
 *   nvcf-docker-tool SOCKET stop ID SECONDS
 *   nvcf-docker-tool SOCKET kill ID [SIGNAL]
 *   nvcf-docker-tool SOCKET inspect ID [PORT]       -> JSON
 *   nvcf-docker-tool SOCKET logs ID TAIL            -> the log text
 *   nvcf-docker-tool SOCKET list KEY [VALUE]        -> JSON array
 *   nvcf-docker-tool SOCKET watch ID [options]      -> verdict JSON
 *       --port P (probe GET 127.0.0.1:HOSTPORT/health) --task
 *       --no-restarts --crash-exits N --window-s S --startup-s S
 *       --timeout-s S --restart-on-exit (start it again after each exit,
 *       as an agent without an engine restart policy would)
 *
 * Failures print "error: STATUS (http N): message" on stderr and exit 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "runtime/docker.h"
#include "runtime/instance.h"

#define MAX_ITEMS 32

static int fail(void)
{
	const nvcf_error *e = nvcf_error_last();

	fprintf(stderr, "error: %s (http %d): %s\n",
		nvcf_status_name(e->status), e->http_status, e->message);
	return 1;
}

static int usage(void)
{
	fprintf(stderr, "usage: nvcf-docker-tool SOCKET COMMAND [ARGS]; "
			"see the comment at the top of docker_tool.c\n");
	return 2;
}

static void print_json(cJSON *doc)
{
	char *text = cJSON_PrintUnformatted(doc);

	if (text)
		puts(text);
	free(text);
	cJSON_Delete(doc);
}

static cJSON *state_json(const nvcf__docker_state *s)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "id", s->id ? s->id : "");
	cJSON_AddStringToObject(o, "name", s->name ? s->name : "");
	cJSON_AddStringToObject(o, "image", s->image ? s->image : "");
	cJSON_AddStringToObject(o, "status",
				nvcf__docker_status_name(s->status));
	cJSON_AddNumberToObject(o, "exit_code", s->exit_code);
	cJSON_AddBoolToObject(o, "oom_killed", s->oom_killed);
	cJSON_AddNumberToObject(o, "restart_count", s->restart_count);
	cJSON_AddNumberToObject(o, "health", s->health);
	cJSON_AddStringToObject(o, "error", s->error ? s->error : "");
	cJSON_AddStringToObject(o, "finished_at",
				s->finished_at ? s->finished_at : "");
	cJSON_AddNumberToObject(o, "host_port", s->host_port);
	return o;
}

/* Splits "K=V" into a key/value pair pointing into @p arg. */
static int split_kv(char *arg, nvcf__docker_kv *kv)
{
	char *eq = strchr(arg, '=');

	if (!eq)
		return -1;
	*eq = '\0';
	kv->key = arg;
	kv->value = eq + 1;
	return 0;
}

static int cmd_create(nvcf__docker *c, int argc, char **argv)
{
	nvcf__docker_create_opts o = NVCF__DOCKER_CREATE_OPTS_INIT;
	nvcf__docker_kv env[MAX_ITEMS], labels[MAX_ITEMS];
	const char *gpus[MAX_ITEMS];
	char *id;
	int i;

	for (i = 0; i < argc; i++) {
		const char *a = argv[i];
		char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (strcmp(a, "--init") == 0) {
			o.init = true;
			continue;
		}
		if (!v)
			return usage();
		i++;
		if (strcmp(a, "--name") == 0)
			o.name = v;
		else if (strcmp(a, "--image") == 0)
			o.image = v;
		else if (strcmp(a, "--port") == 0)
			o.container_port = (unsigned int)atoi(v);
		else if (strcmp(a, "--host-port") == 0)
			o.host_port = (unsigned int)atoi(v);
		else if (strcmp(a, "--restart") == 0)
			o.restart_policy = v;
		else if (strcmp(a, "--env") == 0 && o.env_count < MAX_ITEMS &&
			 split_kv(v, &env[o.env_count]) == 0)
			o.env_count++;
		else if (strcmp(a, "--label") == 0 &&
			 o.labels_count < MAX_ITEMS &&
			 split_kv(v, &labels[o.labels_count]) == 0)
			o.labels_count++;
		else if (strcmp(a, "--gpu") == 0 && o.gpu_count < MAX_ITEMS)
			gpus[o.gpu_count++] = v;
		else
			return usage();
	}
	o.env = env;
	o.labels = labels;
	o.gpu_ids = gpus;
	if (i < argc) {
		o.cmd = (const char *const *)(argv + i);
		o.cmd_count = (size_t)(argc - i);
	}
	if (nvcf__docker_create(c, &o, &id) != NVCF_OK)
		return fail();
	puts(id);
	free(id);
	return 0;
}

static size_t discard(char *data, size_t size, size_t nmemb, void *user)
{
	return size * nmemb;
}

/* GET /health as the agent would probe it; the body is not needed. */
static nvcf__probe probe(unsigned int port)
{
	char url[64];
	long code = 0;
	CURL *h;

	if (!port)
		return NVCF__PROBE_FAILING;
	h = curl_easy_init();
	if (!h)
		return NVCF__PROBE_UNKNOWN;
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/health", port);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 1000L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	if (curl_easy_perform(h) == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(h);
	return code == 200 ? NVCF__PROBE_OK : NVCF__PROBE_FAILING;
}

static int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The loop an agent runs: inspect, probe, classify, until final. */
static int cmd_watch(nvcf__docker *c, const char *id, int argc, char **argv)
{
	nvcf__instance_policy p = NVCF__INSTANCE_POLICY_INIT;
	static nvcf__instance_track t;
	nvcf__instance_verdict v;
	unsigned int port = 0;
	bool restart_on_exit = false, use_probe = false;
	int64_t deadline_s = 60, deadline;
	cJSON *o;

	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		long n = i + 1 < argc ? atol(argv[i + 1]) : 0;

		if (strcmp(a, "--task") == 0) {
			p.run_to_completion = true;
			p.restarts = false;
			continue;
		}
		if (strcmp(a, "--no-restarts") == 0) {
			p.restarts = false;
			continue;
		}
		if (strcmp(a, "--restart-on-exit") == 0) {
			restart_on_exit = true;
			continue;
		}
		if (i + 1 >= argc)
			return usage();
		i++;
		if (strcmp(a, "--port") == 0) {
			port = (unsigned int)n;
			use_probe = true;
		} else if (strcmp(a, "--crash-exits") == 0) {
			p.crash_loop_exits = (unsigned int)n;
		} else if (strcmp(a, "--window-s") == 0) {
			p.crash_loop_window_us = n * 1000000;
		} else if (strcmp(a, "--startup-s") == 0) {
			p.startup_timeout_us = n * 1000000;
		} else if (strcmp(a, "--timeout-s") == 0) {
			deadline_s = n;
		} else {
			return usage();
		}
	}
	deadline = mono_us() + deadline_s * 1000000;
	for (;;) {
		nvcf__instance_obs obs = {.now_us = mono_us()};
		nvcf__docker_state s;
		nvcf_status st = nvcf__docker_inspect(c, id, port, &s);
		char *logs = NULL;

		if (st != NVCF_OK && st != NVCF_ENOTFOUND)
			return fail();
		obs.state = st == NVCF_OK ? &s : NULL;
		if (st == NVCF_OK && use_probe &&
		    s.status == NVCF__DOCKER_RUNNING)
			obs.health = probe(s.host_port);
		if (st == NVCF_OK)
			nvcf__docker_logs(c, id, 5, &logs, NULL);
		obs.logs = logs;
		nvcf__instance_observe(&t, &p, &obs, &v);
		if (restart_on_exit && st == NVCF_OK &&
		    v.phase == NVCF__INSTANCE_STARTING &&
		    s.status == NVCF__DOCKER_EXITED &&
		    nvcf__docker_start(c, id) != NVCF_OK) {
			free(logs);
			nvcf__docker_state_clear(&s);
			return fail();
		}
		free(logs);
		nvcf__docker_state_clear(&s);
		if (v.phase != NVCF__INSTANCE_STARTING ||
		    mono_us() > deadline)
			break;
		struct timespec pause = {0, 100 * 1000 * 1000};
		nanosleep(&pause, NULL);
	}
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "phase", nvcf__instance_phase_name(v.phase));
	cJSON_AddStringToObject(o, "state",
				nvcf__instance_reason_state(v.reason));
	cJSON_AddNumberToObject(o, "exit_code", v.exit_code);
	cJSON_AddNumberToObject(o, "recent_exits", v.recent_exits);
	cJSON_AddStringToObject(o, "message", v.message);
	print_json(o);
	return 0;
}

static int run(nvcf__docker *c, const char *cmd, int argc, char **argv)
{
	nvcf__docker_state s, *list;
	size_t count, len;
	char *text;

	if (strcmp(cmd, "ping") == 0)
		return nvcf__docker_ping(c) == NVCF_OK ? 0 : fail();
	if (strcmp(cmd, "create") == 0)
		return cmd_create(c, argc, argv);
	if (argc < 1)
		return usage();
	if (strcmp(cmd, "ensure") == 0) {
		if (nvcf__docker_image_ensure(c, argv[0], &text) != NVCF_OK)
			return fail();
		puts(text);
		free(text);
		return 0;
	}
	if (strcmp(cmd, "start") == 0)
		return nvcf__docker_start(c, argv[0]) == NVCF_OK ? 0 : fail();
	if (strcmp(cmd, "rm") == 0)
		return nvcf__docker_remove(c, argv[0]) == NVCF_OK ? 0 : fail();
	if (strcmp(cmd, "stop") == 0 && argc == 2)
		return nvcf__docker_stop(c, argv[0],
					 (unsigned int)atoi(argv[1])) ==
				       NVCF_OK ?
			       0 :
			       fail();
	if (strcmp(cmd, "kill") == 0)
		return nvcf__docker_kill(c, argv[0],
					 argc > 1 ? argv[1] : NULL) ==
				       NVCF_OK ?
			       0 :
			       fail();
	if (strcmp(cmd, "inspect") == 0) {
		unsigned int port = argc > 1 ? (unsigned int)atoi(argv[1]) : 0;

		if (nvcf__docker_inspect(c, argv[0], port, &s) != NVCF_OK)
			return fail();
		print_json(state_json(&s));
		nvcf__docker_state_clear(&s);
		return 0;
	}
	if (strcmp(cmd, "logs") == 0 && argc == 2) {
		if (nvcf__docker_logs(c, argv[0], (unsigned int)atoi(argv[1]),
				      &text, &len) != NVCF_OK)
			return fail();
		fwrite(text, 1, len, stdout);
		free(text);
		return 0;
	}
	if (strcmp(cmd, "list") == 0) {
		cJSON *a;

		if (nvcf__docker_list(c, argv[0], argc > 1 ? argv[1] : NULL,
				      &list, &count) != NVCF_OK)
			return fail();
		a = cJSON_CreateArray();
		for (size_t i = 0; i < count; i++)
			cJSON_AddItemToArray(a, state_json(&list[i]));
		nvcf__docker_list_free(list, count);
		print_json(a);
		return 0;
	}
	if (strcmp(cmd, "watch") == 0)
		return cmd_watch(c, argv[0], argc - 1, argv + 1);
	return usage();
}

int main(int argc, char **argv)
{
	nvcf__docker *c;
	int rc;

	if (argc < 3)
		return usage();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (nvcf__docker_new(&c, argv[1]) != NVCF_OK)
		return fail();
	rc = run(c, argv[2], argc - 3, argv + 3);
	nvcf__docker_free(c);
	curl_global_cleanup();
	return rc;
}
