/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Client commands over the REST API of nvcf-api and nvcf-invocation. The
 * base URLs and the key come from NVCF_API_URL, NVCF_INVOKE_URL and
 * NVCF_API_KEY, or from DIR/env with --state-dir DIR.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "cli.h"

typedef struct buf {
	char *data;
	size_t len;
} buf;

typedef struct response {
	long status;
	buf body;
	char reqid[128];
	char content_type[128];
} response;

typedef struct client {
	const char *api_url;
	const char *invoke_url;
	const char *key;
	bool raw;
} client;

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	buf *b = ud;
	char *grown = realloc(b->data, b->len + size * n + 1);

	if (grown == NULL)
		return 0;
	memcpy(grown + b->len, p, size * n);
	b->data = grown;
	b->len += size * n;
	b->data[b->len] = '\0';
	return size * n;
}

static void header_value(const char *line, size_t n, const char *name,
			 char *out, size_t out_size)
{
	size_t k = strlen(name), v;

	if (n <= k || strncasecmp(line, name, k) != 0 || line[k] != ':')
		return;
	line += k + 1;
	n -= k + 1;
	while (n > 0 && (*line == ' ' || *line == '\t')) {
		line++;
		n--;
	}
	while (n > 0 && isspace((unsigned char)line[n - 1]))
		n--;
	v = n < out_size - 1 ? n : out_size - 1;
	memcpy(out, line, v);
	out[v] = '\0';
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	response *r = ud;

	header_value(p, size * n, "NVCF-REQID", r->reqid, sizeof(r->reqid));
	header_value(p, size * n, "Content-Type", r->content_type,
		     sizeof(r->content_type));
	return size * n;
}

/*
 * Performs one HTTP exchange. Returns false, after printing the reason,
 * only when no response arrived. The caller checks the HTTP status.
 */
static bool http_call(const client *c, const char *method, const char *url,
		      const char *body, long poll_seconds, response *r)
{
	struct curl_slist *h = NULL;
	char auth[512], poll[64];
	CURLcode rc;
	CURL *curl;

	memset(r, 0, sizeof(*r));
	curl = curl_easy_init();
	if (curl == NULL) {
		cli_err("cannot initialise libcurl");
		return false;
	}
	if (c->key != NULL && *c->key != '\0') {
		cli_fmt(auth, sizeof(auth), "Authorization: Bearer %s",
			 c->key);
		h = curl_slist_append(h, auth);
	}
	if (poll_seconds > 0) {
		cli_fmt(poll, sizeof(poll), "NVCF-POLL-SECONDS: %ld",
			 poll_seconds);
		h = curl_slist_append(h, poll);
	}
	if (body != NULL) {
		h = curl_slist_append(h, "Content-Type: application/json");
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE,
				 (long)strlen(body));
	}
	h = curl_slist_append(h, "Accept: application/json");
	h = curl_slist_append(h, "Expect:");
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &r->body);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	/* the poll window plus the gateway's grace period before its 504 */
	curl_easy_setopt(curl, CURLOPT_TIMEOUT,
			 poll_seconds > 0 ? poll_seconds + 30 : 120L);
	rc = curl_easy_perform(curl);
	if (rc == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
	else
		cli_err("%s %s failed: %s (is the stack running? see 'nvcf "
			"status')", method, url, curl_easy_strerror(rc));
	curl_easy_cleanup(curl);
	curl_slist_free_all(h);
	return rc == CURLE_OK;
}

static void response_free(response *r)
{
	free(r->body.data);
	r->body.data = NULL;
}

/* Prints the problem `detail` (or the raw body) of a failed call. */
static int report_error(const char *command, const response *r)
{
	cJSON *j = r->body.len ? cJSON_Parse(r->body.data) : NULL;
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "detail");
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "title");

	if (cJSON_IsString(d) && d->valuestring[0] != '\0')
		cli_err("%s: HTTP %ld: %s", command, r->status, d->valuestring);
	else if (cJSON_IsString(t))
		cli_err("%s: HTTP %ld: %s", command, r->status, t->valuestring);
	else if (r->body.len > 0)
		cli_err("%s: HTTP %ld: %.*s", command, r->status,
			(int)(r->body.len > 500 ? 500 : r->body.len),
			r->body.data);
	else
		cli_err("%s: HTTP %ld", command, r->status);
	cJSON_Delete(j);
	return CLI_EXIT_ERROR;
}

/* Writes a body to stdout, pretty when it is JSON and --raw was not set. */
static void print_body(const client *c, const buf *b)
{
	cJSON *j = NULL;
	char *pretty;

	if (b->len == 0)
		return;
	if (!c->raw)
		j = cJSON_ParseWithLength(b->data, b->len);
	if (j == NULL) {
		fwrite(b->data, 1, b->len, stdout);
		if (b->data[b->len - 1] != '\n')
			fputc('\n', stdout);
		return;
	}
	pretty = cJSON_Print(j);
	if (pretty != NULL)
		printf("%s\n", pretty);
	free(pretty);
	cJSON_Delete(j);
}

/* Runs one call; prints the body on 2xx, the problem detail otherwise. */
static int simple_call(const client *c, const char *command,
		       const char *method, const char *url, const char *body)
{
	response r;
	int rc = CLI_EXIT_OK;

	if (!http_call(c, method, url, body, 0, &r))
		return CLI_EXIT_ERROR;
	if (r.status < 200 || r.status > 299)
		rc = report_error(command, &r);
	else
		print_body(c, &r.body);
	response_free(&r);
	return rc;
}

/*
 * Common options of every client command: --state-dir, --raw. Removes
 * them from argv and fills @p c from the environment.
 */
static int client_init(client *c, int *argc, char **argv)
{
	const char *dir = NULL, *v;
	int out = 0;

	memset(c, 0, sizeof(*c));
	for (int i = 0; i < *argc; i++) {
		if (cli_flag(*argc, argv, &i, "--state-dir", &v)) {
			if (v == NULL)
				return CLI_EXIT_USAGE;
			dir = v;
		} else if (strcmp(argv[i], "--raw") == 0) {
			c->raw = true;
		} else {
			argv[out++] = argv[i];
		}
	}
	*argc = out;
	argv[out] = NULL;
	if (dir != NULL && !cli_load_env(dir))
		return CLI_EXIT_ERROR;
	c->api_url = getenv("NVCF_API_URL");
	c->invoke_url = getenv("NVCF_INVOKE_URL");
	c->key = getenv("NVCF_API_KEY");
	return -1;
}

static bool need(const char *value, const char *name)
{
	if (value == NULL || *value == '\0') {
		cli_err("%s is not set: export it, source DIR/env, or pass "
			"--state-dir DIR", name);
		return false;
	}
	return true;
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	buf b = {0};
	char chunk[8192];
	size_t n;

	if (f == NULL) {
		cli_err("cannot read %s: %s", path, strerror(errno));
		return NULL;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (on_body(chunk, 1, n, &b) != n) {
			free(b.data);
			fclose(f);
			cli_err("out of memory reading %s", path);
			return NULL;
		}
	}
	fclose(f);
	if (b.data == NULL)
		b.data = calloc(1, 1);
	return b.data;
}

/* ---- nvcf function ---------------------------------------------------- */

static int usage_function(FILE *out)
{
	fputs("usage: nvcf function COMMAND ... [--state-dir DIR] [--raw]\n\n"
	      "  create --name N --image file:///path --inference-url /p "
	      "[--port P]\n"
	      "         [--health-uri /h] [--args \"...\"] [--env K=V]... "
	      "[--description D]\n"
	      "         [--json FILE] [--function-id FID]\n"
	      "         creates a function (or a new version of FID); --json "
	      "gives a\n"
	      "         CreateFunctionRequest that the other flags override\n"
	      "  list                   lists every function version\n"
	      "  get FID [VID]          shows the versions of FID, or one "
	      "version\n"
	      "  delete FID VID         deletes a version (undeploying it)\n\n"
	      "Reads NVCF_API_URL and NVCF_API_KEY, or DIR/env with "
	      "--state-dir.\n"
	      "--raw prints JSON as the server sent it instead of indented.\n",
	      out);
	return out == stdout ? CLI_EXIT_OK : CLI_EXIT_USAGE;
}

static int function_create(const client *c, int argc, char **argv)
{
	const char *name = NULL, *image = NULL, *url = NULL, *port = NULL;
	const char *health = NULL, *args = NULL, *json = NULL, *v;
	const char *desc = NULL, *fid = NULL;
	cJSON *req, *envs = NULL;
	char *body, target[1024];
	long port_n = 0;
	int rc;

	for (int i = 1; i < argc; i++) {
		v = "";
		if (cli_flag(argc, argv, &i, "--name", &v))
			name = v;
		else if (cli_flag(argc, argv, &i, "--image", &v))
			image = v;
		else if (cli_flag(argc, argv, &i, "--inference-url", &v))
			url = v;
		else if (cli_flag(argc, argv, &i, "--port", &v))
			port = v;
		else if (cli_flag(argc, argv, &i, "--health-uri", &v))
			health = v;
		else if (cli_flag(argc, argv, &i, "--args", &v))
			args = v;
		else if (cli_flag(argc, argv, &i, "--json", &v))
			json = v;
		else if (cli_flag(argc, argv, &i, "--description", &v))
			desc = v;
		else if (cli_flag(argc, argv, &i, "--function-id", &v))
			fid = v;
		else if (cli_flag(argc, argv, &i, "--env", &v)) {
			if (v != NULL && strchr(v, '=') == NULL) {
				cli_err("invalid --env '%s': use KEY=VALUE",
					v);
				return CLI_EXIT_USAGE;
			}
		} else {
			cli_err("unknown argument '%s'", argv[i]);
			return usage_function(stderr);
		}
		if (v == NULL)
			return CLI_EXIT_USAGE;
	}
	if (port != NULL && (!cli_parse_int(port, &port_n) || port_n < 1 ||
			     port_n > 65535)) {
		cli_err("invalid --port '%s': use 1 to 65535", port);
		return CLI_EXIT_USAGE;
	}
	if (json != NULL) {
		char *text = read_file(json);

		if (text == NULL)
			return CLI_EXIT_ERROR;
		req = cJSON_Parse(text);
		free(text);
		if (!cJSON_IsObject(req)) {
			cli_err("%s does not hold a JSON object", json);
			cJSON_Delete(req);
			return CLI_EXIT_USAGE;
		}
	} else {
		req = cJSON_CreateObject();
		if (name == NULL || image == NULL || url == NULL) {
			cli_err("function create needs --name, --image and "
				"--inference-url (or --json FILE)");
			cJSON_Delete(req);
			return CLI_EXIT_USAGE;
		}
	}
#define SET_STR(key, val)                                                     \
	do {                                                                  \
		if ((val) != NULL) {                                          \
			cJSON_DeleteItemFromObjectCaseSensitive(req, key);    \
			cJSON_AddStringToObject(req, key, val);               \
		}                                                             \
	} while (0)
	SET_STR("name", name);
	SET_STR("containerImage", image);
	SET_STR("inferenceUrl", url);
	SET_STR("healthUri", health);
	SET_STR("containerArgs", args);
	SET_STR("description", desc);
#undef SET_STR
	if (port != NULL) {
		cJSON_DeleteItemFromObjectCaseSensitive(req, "inferencePort");
		cJSON_AddNumberToObject(req, "inferencePort", (double)port_n);
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--env") != 0 &&
		    strncmp(argv[i], "--env=", 6) != 0)
			continue;
		if (!cli_flag(argc, argv, &i, "--env", &v))
			continue;
		if (envs == NULL) {
			cJSON_DeleteItemFromObjectCaseSensitive(
				req, "containerEnvironment");
			envs = cJSON_AddArrayToObject(req,
						      "containerEnvironment");
		}
		cJSON *e = cJSON_CreateObject();
		const char *eq = strchr(v, '=');
		char k[256];

		cli_fmt(k, sizeof(k), "%.*s", (int)(eq - v), v);
		cJSON_AddStringToObject(e, "key", k);
		cJSON_AddStringToObject(e, "value", eq + 1);
		cJSON_AddItemToArray(envs, e);
	}
	body = cJSON_PrintUnformatted(req);
	cJSON_Delete(req);
	if (fid != NULL)
		cli_fmt(target, sizeof(target), "%s/v2/nvcf/functions/%s/"
			 "versions", c->api_url, fid);
	else
		cli_fmt(target, sizeof(target), "%s/v2/nvcf/functions",
			 c->api_url);
	rc = simple_call(c, "function create", "POST", target, body);
	free(body);
	return rc;
}

int cmd_function(int argc, char **argv)
{
	char url[1024];
	client c;
	int rc;

	for (int i = 1; i < argc; i++)
		if (cli_is_help(argv[i]))
			return usage_function(stdout);
	rc = client_init(&c, &argc, argv);
	if (rc >= 0)
		return rc;
	if (argc < 2)
		return usage_function(stderr);
	if (!need(c.api_url, "NVCF_API_URL"))
		return CLI_EXIT_USAGE;
	if (strcmp(argv[1], "create") == 0)
		return function_create(&c, argc - 1, argv + 1);
	if (strcmp(argv[1], "list") == 0 && argc == 2) {
		cli_fmt(url, sizeof(url), "%s/v2/nvcf/functions", c.api_url);
		return simple_call(&c, "function list", "GET", url, NULL);
	}
	if (strcmp(argv[1], "get") == 0 && (argc == 3 || argc == 4)) {
		if (argc == 4)
			cli_fmt(url, sizeof(url),
				 "%s/v2/nvcf/functions/%s/versions/%s",
				 c.api_url, argv[2], argv[3]);
		else
			cli_fmt(url, sizeof(url),
				 "%s/v2/nvcf/functions/%s/versions",
				 c.api_url, argv[2]);
		return simple_call(&c, "function get", "GET", url, NULL);
	}
	if (strcmp(argv[1], "delete") == 0 && argc == 4) {
		cli_fmt(url, sizeof(url),
			 "%s/v2/nvcf/functions/%s/versions/%s", c.api_url,
			 argv[2], argv[3]);
		rc = simple_call(&c, "function delete", "DELETE", url, NULL);
		if (rc == CLI_EXIT_OK)
			fprintf(stderr, "deleted function %s version %s\n",
				argv[2], argv[3]);
		return rc;
	}
	cli_err("unknown or incomplete command 'function %s'", argv[1]);
	return usage_function(stderr);
}

/* ---- nvcf deploy ------------------------------------------------------ */

static int usage_deploy(FILE *out)
{
	fputs("usage: nvcf deploy COMMAND ... [--state-dir DIR] [--raw]\n\n"
	      "  create FID VID --gpu G --instance-type T --min N --max N\n"
	      "         [--concurrency C] [--cluster-group NAME] [--wait] "
	      "[--timeout S]\n"
	      "         deploys a version; --wait polls until it is ACTIVE "
	      "(exit 0)\n"
	      "         or ERROR (exit 1), at most --timeout seconds "
	      "(default 300)\n"
	      "  get FID VID            shows the deployment\n"
	      "  delete FID VID         undeploys the version\n",
	      out);
	return out == stdout ? CLI_EXIT_OK : CLI_EXIT_USAGE;
}

/* Reads the version's status from the deployment record. */
static const char *deployment_status(cJSON *j)
{
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "deployment");
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(d, "functionStatus");

	return cJSON_IsString(s) ? s->valuestring : NULL;
}

static int deploy_wait(const client *c, const char *fid, const char *vid,
		       long timeout_s)
{
	char url[1024], last[64] = "";
	double start = cli_now();
	response r;

	cli_fmt(url, sizeof(url),
		 "%s/v2/nvcf/deployments/functions/%s/versions/%s",
		 c->api_url, fid, vid);
	for (;;) {
		cJSON *j;
		const char *st;
		int rc = -1;

		if (!http_call(c, "GET", url, NULL, 0, &r))
			return CLI_EXIT_ERROR;
		if (r.status != 200) {
			rc = report_error("deploy get", &r);
			response_free(&r);
			return rc;
		}
		j = cJSON_ParseWithLength(r.body.data, r.body.len);
		st = deployment_status(j);
		if (st != NULL && strcmp(st, last) != 0) {
			fprintf(stderr, "status %s after %.1f s\n", st,
				cli_now() - start);
			cli_fmt(last, sizeof(last), "%s", st);
		}
		if (st != NULL && strcmp(st, "ACTIVE") == 0) {
			rc = CLI_EXIT_OK;
			print_body(c, &r.body);
		} else if (st != NULL && strcmp(st, "ERROR") == 0) {
			print_body(c, &r.body);
			cli_err("deployment of %s version %s failed: status "
				"ERROR (healthInfo above)", fid, vid);
			rc = CLI_EXIT_ERROR;
		} else if (cli_now() - start > (double)timeout_s) {
			cli_err("deployment of %s version %s not ACTIVE after "
				"%ld s (status %s)", fid, vid, timeout_s,
				st ? st : "unknown");
			rc = CLI_EXIT_ERROR;
		}
		cJSON_Delete(j);
		response_free(&r);
		if (rc >= 0)
			return rc;
		struct timespec ts = {0, 200 * 1000000L};

		nanosleep(&ts, NULL);
	}
}

static int deploy_create(const client *c, int argc, char **argv)
{
	const char *gpu = NULL, *type = NULL, *min = NULL, *max = NULL;
	const char *conc = NULL, *group = NULL, *timeout = NULL, *v;
	long minv, maxv, concv = 1, timeout_s = 300;
	bool wait = false;
	cJSON *req, *spec, *specs;
	char *body, url[1024];
	response r;
	int rc = CLI_EXIT_OK;

	if (argc < 3 || argv[1][0] == '-' || argv[2][0] == '-') {
		cli_err("deploy create needs FID and VID");
		return usage_deploy(stderr);
	}
	for (int i = 3; i < argc; i++) {
		v = "";
		if (cli_flag(argc, argv, &i, "--gpu", &v))
			gpu = v;
		else if (cli_flag(argc, argv, &i, "--instance-type", &v))
			type = v;
		else if (cli_flag(argc, argv, &i, "--min", &v))
			min = v;
		else if (cli_flag(argc, argv, &i, "--max", &v))
			max = v;
		else if (cli_flag(argc, argv, &i, "--concurrency", &v))
			conc = v;
		else if (cli_flag(argc, argv, &i, "--cluster-group", &v))
			group = v;
		else if (cli_flag(argc, argv, &i, "--timeout", &v))
			timeout = v;
		else if (strcmp(argv[i], "--wait") == 0)
			wait = true;
		else {
			cli_err("unknown argument '%s'", argv[i]);
			return usage_deploy(stderr);
		}
		if (v == NULL)
			return CLI_EXIT_USAGE;
	}
	if (gpu == NULL || type == NULL || min == NULL || max == NULL) {
		cli_err("deploy create needs --gpu, --instance-type, --min and "
			"--max");
		return CLI_EXIT_USAGE;
	}
	if (!cli_parse_int(min, &minv) || !cli_parse_int(max, &maxv) ||
	    (conc != NULL && !cli_parse_int(conc, &concv)) ||
	    (timeout != NULL && !cli_parse_int(timeout, &timeout_s))) {
		cli_err("--min, --max, --concurrency and --timeout take "
			"non-negative integers");
		return CLI_EXIT_USAGE;
	}
	req = cJSON_CreateObject();
	specs = cJSON_AddArrayToObject(req, "deploymentSpecifications");
	spec = cJSON_CreateObject();
	cJSON_AddStringToObject(spec, "gpu", gpu);
	cJSON_AddStringToObject(spec, "instanceType", type);
	if (group != NULL)
		cJSON_AddStringToObject(spec, "backend", group);
	cJSON_AddNumberToObject(spec, "minInstances", (double)minv);
	cJSON_AddNumberToObject(spec, "maxInstances", (double)maxv);
	cJSON_AddNumberToObject(spec, "maxRequestConcurrency", (double)concv);
	cJSON_AddItemToArray(specs, spec);
	body = cJSON_PrintUnformatted(req);
	cJSON_Delete(req);
	cli_fmt(url, sizeof(url),
		 "%s/v2/nvcf/deployments/functions/%s/versions/%s",
		 c->api_url, argv[1], argv[2]);
	if (!http_call(c, "POST", url, body, 0, &r)) {
		free(body);
		return CLI_EXIT_ERROR;
	}
	free(body);
	if (r.status != 200)
		rc = report_error("deploy create", &r);
	else if (!wait)
		print_body(c, &r.body);
	response_free(&r);
	if (rc == CLI_EXIT_OK && wait)
		rc = deploy_wait(c, argv[1], argv[2], timeout_s);
	return rc;
}

int cmd_deploy(int argc, char **argv)
{
	char url[1024];
	client c;
	int rc;

	for (int i = 1; i < argc; i++)
		if (cli_is_help(argv[i]))
			return usage_deploy(stdout);
	rc = client_init(&c, &argc, argv);
	if (rc >= 0)
		return rc;
	if (argc < 2)
		return usage_deploy(stderr);
	if (!need(c.api_url, "NVCF_API_URL"))
		return CLI_EXIT_USAGE;
	if (strcmp(argv[1], "create") == 0)
		return deploy_create(&c, argc - 1, argv + 1);
	if ((strcmp(argv[1], "get") == 0 || strcmp(argv[1], "delete") == 0) &&
	    argc == 4) {
		bool get = argv[1][0] == 'g';

		cli_fmt(url, sizeof(url),
			 "%s/v2/nvcf/deployments/functions/%s/versions/%s",
			 c.api_url, argv[2], argv[3]);
		return simple_call(&c, get ? "deploy get" : "deploy delete",
				   get ? "GET" : "DELETE", url, NULL);
	}
	cli_err("unknown or incomplete command 'deploy %s'", argv[1]);
	return usage_deploy(stderr);
}

/* ---- nvcf cluster-groups ---------------------------------------------- */

int cmd_cluster_groups(int argc, char **argv)
{
	char url[1024];
	client c;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (cli_is_help(argv[i])) {
			puts("usage: nvcf cluster-groups [--state-dir DIR] "
			     "[--raw]\n\nLists the cluster groups with their "
			     "GPUs and instance types.");
			return CLI_EXIT_OK;
		}
	}
	rc = client_init(&c, &argc, argv);
	if (rc >= 0)
		return rc;
	if (argc != 1) {
		cli_err("unknown argument '%s'", argv[1]);
		return CLI_EXIT_USAGE;
	}
	if (!need(c.api_url, "NVCF_API_URL"))
		return CLI_EXIT_USAGE;
	cli_fmt(url, sizeof(url), "%s/v2/nvcf/clusterGroups", c.api_url);
	return simple_call(&c, "cluster-groups", "GET", url, NULL);
}

/* ---- nvcf invoke ------------------------------------------------------ */

static int usage_invoke(FILE *out)
{
	fputs("usage: nvcf invoke FID [--version VID] [--data JSON | "
	      "--data-file F]\n"
	      "                   [--poll-seconds N] [--state-dir DIR] "
	      "[--raw]\n\n"
	      "Calls the function through the gateway (POST /v2/nvcf/pexec/"
	      "functions/...).\nWhen the gateway answers 202 the command polls "
	      "/v2/nvcf/pexec/status/REQID\nuntil the result is ready. The "
	      "request id and the time waited go to stderr,\nthe response "
	      "body to stdout. Exits 1 when the function or the gateway "
	      "reports\nan error.\n",
	      out);
	return out == stdout ? CLI_EXIT_OK : CLI_EXIT_USAGE;
}

int cmd_invoke(int argc, char **argv)
{
	const char *fid = NULL, *vid = NULL, *data = NULL, *file = NULL;
	const char *poll = NULL, *v;
	char url[1024], *body = NULL;
	long poll_s = 0;
	int polls = 0, rc;
	double start;
	response r;
	client c;

	for (int i = 1; i < argc; i++)
		if (cli_is_help(argv[i]))
			return usage_invoke(stdout);
	rc = client_init(&c, &argc, argv);
	if (rc >= 0)
		return rc;
	for (int i = 1; i < argc; i++) {
		v = "";
		if (cli_flag(argc, argv, &i, "--version", &v))
			vid = v;
		else if (cli_flag(argc, argv, &i, "--data", &v))
			data = v;
		else if (cli_flag(argc, argv, &i, "--data-file", &v))
			file = v;
		else if (cli_flag(argc, argv, &i, "--poll-seconds", &v))
			poll = v;
		else if (argv[i][0] != '-' && fid == NULL)
			fid = argv[i];
		else {
			cli_err("unknown argument '%s'", argv[i]);
			return usage_invoke(stderr);
		}
		if (v == NULL)
			return CLI_EXIT_USAGE;
	}
	if (fid == NULL) {
		cli_err("invoke needs a function id");
		return usage_invoke(stderr);
	}
	if (data != NULL && file != NULL) {
		cli_err("give --data or --data-file, not both");
		return CLI_EXIT_USAGE;
	}
	if (poll != NULL && (!cli_parse_int(poll, &poll_s) || poll_s < 1)) {
		cli_err("invalid --poll-seconds '%s': use a positive integer",
			poll);
		return CLI_EXIT_USAGE;
	}
	if (!need(c.invoke_url, "NVCF_INVOKE_URL"))
		return CLI_EXIT_USAGE;
	if (file != NULL && (body = read_file(file)) == NULL)
		return CLI_EXIT_ERROR;
	if (body == NULL)
		body = strdup(data != NULL ? data : "{}");
	if (vid != NULL)
		cli_fmt(url, sizeof(url),
			 "%s/v2/nvcf/pexec/functions/%s/versions/%s",
			 c.invoke_url, fid, vid);
	else
		cli_fmt(url, sizeof(url), "%s/v2/nvcf/pexec/functions/%s",
			 c.invoke_url, fid);
	start = cli_now();
	if (!http_call(&c, "POST", url, body, poll_s, &r)) {
		free(body);
		return CLI_EXIT_ERROR;
	}
	free(body);
	while (r.status == 202 && r.reqid[0] != '\0') {
		char reqid[128];

		polls++;
		fprintf(stderr, "request %s: 202 after %.3f s, polling\n",
			r.reqid, cli_now() - start);
		cli_fmt(reqid, sizeof(reqid), "%s", r.reqid);
		response_free(&r);
		cli_fmt(url, sizeof(url), "%s/v2/nvcf/pexec/status/%s",
			 c.invoke_url, reqid);
		if (!http_call(&c, "GET", url, NULL, poll_s, &r))
			return CLI_EXIT_ERROR;
		if (r.reqid[0] == '\0')
			cli_fmt(r.reqid, sizeof(r.reqid), "%s", reqid);
	}
	fprintf(stderr, "request %s: HTTP %ld after %.3f s (%d poll%s)\n",
		r.reqid[0] ? r.reqid : "-", r.status, cli_now() - start, polls,
		polls == 1 ? "" : "s");
	if (r.status >= 200 && r.status <= 299 && r.status != 202) {
		print_body(&c, &r.body);
		rc = CLI_EXIT_OK;
	} else if (r.status == 202) {
		cli_err("invoke: HTTP 202 without an NVCF-REQID header: "
			"cannot poll");
		rc = CLI_EXIT_ERROR;
	} else {
		rc = report_error("invoke", &r);
	}
	response_free(&r);
	return rc;
}
