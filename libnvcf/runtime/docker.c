/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Docker Engine API client over a unix socket (libcurl + cJSON). See
 * docker.h for the contract; this file keeps every request on a fresh
 * easy handle so that callers need no locking.
 */
#include "runtime/docker.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#define SUB "runtime"

/* Maximum length of an engine reply quoted in an error message. */
#define ENGINE_MESSAGE_MAX 400

struct nvcf__docker {
	char *socket_path;
	long timeout_ms;
};

/* ---- transport ---------------------------------------------------------- */

typedef struct reply {
	long http;
	nvcf__buf body;
} reply;

static size_t on_body(char *data, size_t size, size_t nmemb, void *user)
{
	nvcf__buf *buf = user;
	size_t n = size * nmemb;

	if (nvcf__buf_append(buf, data, n) != NVCF_OK)
		return 0; /* makes curl fail the transfer with a write error */
	return n;
}

/*
 * Sends one request. Only a transport failure is an error here; the HTTP
 * status is left for the caller, which decides which ones are fine.
 */
static nvcf_status request(nvcf__docker *c, const char *method,
			   const char *path, const char *json, long extra_ms,
			   const char *what, reply *out)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *headers = NULL;
	nvcf_status st = NVCF_OK;
	char *url;
	CURLcode rc;
	CURL *h;

	memset(out, 0, sizeof(*out));
	url = nvcf__asprintf("http://localhost" NVCF__DOCKER_API "%s", path);
	h = curl_easy_init();
	if (!url || !h) {
		free(url);
		if (h)
			curl_easy_cleanup(h);
		return nvcf__error_oom();
	}
	curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, c->socket_path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms + extra_ms);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &out->body);
	/* The engine never sends 100 Continue; waiting for it costs 1 s. */
	headers = curl_slist_append(headers, "Expect:");
	if (json) {
		headers = curl_slist_append(headers,
					    "Content-Type: application/json");
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, json);
	} else if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);

	nvcf_log_debug(SUB, "%s %s", method, path);
	rc = curl_easy_perform(h);
	if (rc != CURLE_OK) {
		nvcf_status code = rc == CURLE_OPERATION_TIMEDOUT ?
					   NVCF_ETIMEDOUT :
					   NVCF_EUNAVAILABLE;

		st = nvcf__error_set(code,
				     "%s: container engine at %s did not "
				     "answer: %s; check that the engine (for "
				     "example `podman system service`) "
				     "listens on that socket",
				     what, c->socket_path,
				     errbuf[0] ? errbuf : curl_easy_strerror(rc));
		nvcf__buf_free(&out->body);
	} else {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->http);
	}
	curl_slist_free_all(headers);
	curl_easy_cleanup(h);
	free(url);
	return st;
}

static void reply_free(reply *r)
{
	nvcf__buf_free(&r->body);
}

/* Copies the engine's "message" (or the raw body) into out[]. */
static void engine_message(const reply *r, char *out, size_t size)
{
	const char *text = r->body.data ? r->body.data : "";
	cJSON *doc = cJSON_ParseWithLength(text, r->body.len);
	const cJSON *msg = cJSON_GetObjectItemCaseSensitive(doc, "message");
	size_t n;

	if (cJSON_IsString(msg) && msg->valuestring[0])
		text = msg->valuestring;
	else if (!text[0])
		text = "(empty reply)";
	n = strlen(text);
	while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
		n--;
	if (n >= size)
		n = size - 1;
	memcpy(out, text, n);
	out[n] = '\0';
	cJSON_Delete(doc);
}

/* Turns a reply with an unexpected HTTP status into the recorded error. */
static nvcf_status engine_error(const reply *r, const char *what)
{
	char msg[ENGINE_MESSAGE_MAX];
	nvcf_status st;

	engine_message(r, msg, sizeof(msg));
	switch (r->http) {
	case 400:
		st = NVCF_EINVAL;
		break;
	case 404:
		st = NVCF_ENOTFOUND;
		break;
	case 409:
		st = NVCF_ECONFLICT;
		break;
	default:
		/* Podman returns 500 where Docker returns 409. */
		st = strstr(msg, "container state improper") ||
				     strstr(msg, "name is already in use") ?
			     NVCF_ECONFLICT :
			     NVCF_EIO;
		break;
	}
	return nvcf__error_set_ext(st, (int)r->http, 0, "%s: %ld %s", what,
				   r->http, msg);
}

static nvcf_status bad_json(const char *what, const reply *r)
{
	return nvcf__error_set_ext(NVCF_EPROTO, (int)r->http, 0,
				   "%s: the engine's reply is not the JSON "
				   "the Docker Engine API 1.41 defines (%zu "
				   "bytes); check the engine version",
				   what, r->body.len);
}

/* URL-escapes @p s; NULL on allocation failure. Released with free(). */
static char *esc(const char *s)
{
	char *e = curl_easy_escape(NULL, s, 0);
	char *copy;

	if (!e)
		return NULL;
	copy = nvcf__strdup(e);
	curl_free(e);
	return copy;
}

/*
 * Builds the request path PREFIX + URL-escaped VALUE + SUFFIX. Returns
 * NULL when @p value is NULL or memory runs out. Released with free().
 */
static char *esc_path(const char *prefix, const char *value,
		      const char *suffix)
{
	char *e = value ? esc(value) : NULL;
	char *path = e ? nvcf__asprintf("%s%s%s", prefix, e, suffix) : NULL;

	free(e);
	return path;
}

/*
 * GETs @p path and parses the 200 reply into @p doc_out (NULL when it is
 * not JSON). On NVCF_OK the caller checks the document, passing @p r to
 * bad_json(), and releases both; on failure nothing is left to release.
 */
static nvcf_status get_json(nvcf__docker *c, const char *path,
			    const char *what, reply *r, cJSON **doc_out)
{
	nvcf_status st = request(c, "GET", path, NULL, 0, what, r);

	*doc_out = NULL;
	if (st != NVCF_OK)
		return st;
	if (r->http != 200) {
		st = engine_error(r, what);
		reply_free(r);
		return st;
	}
	*doc_out = cJSON_ParseWithLength(r->body.data, r->body.len);
	return NVCF_OK;
}

/* ---- client ------------------------------------------------------------- */

nvcf_status nvcf__docker_new(nvcf__docker **out, const char *socket_path)
{
	nvcf__docker *c;

	if (!out)
		return nvcf__error_set(NVCF_EINVAL, "out is NULL; pass the "
				       "address of an nvcf__docker pointer");
	*out = NULL;
	if (!socket_path || !socket_path[0])
		return nvcf__error_set(NVCF_EINVAL,
				       "socket path is empty; pass the unix "
				       "socket the container engine serves "
				       "(e.g. /run/podman/podman.sock)");
	c = calloc(1, sizeof(*c));
	if (!c)
		return nvcf__error_oom();
	c->socket_path = nvcf__strdup(socket_path);
	if (!c->socket_path) {
		free(c);
		return nvcf__error_oom();
	}
	c->timeout_ms = 60000;
	*out = c;
	return NVCF_OK;
}

void nvcf__docker_free(nvcf__docker *c)
{
	if (!c)
		return;
	free(c->socket_path);
	free(c);
}

void nvcf__docker_set_timeout(nvcf__docker *c, long timeout_ms)
{
	if (c && timeout_ms > 0)
		c->timeout_ms = timeout_ms;
}

nvcf_status nvcf__docker_ping(nvcf__docker *c)
{
	nvcf_status st;
	reply r;

	st = request(c, "GET", "/_ping", NULL, 0, "pinging the engine", &r);
	if (st != NVCF_OK)
		return st;
	if (r.http != 200)
		st = engine_error(&r, "pinging the engine");
	reply_free(&r);
	return st;
}

/* ---- images ------------------------------------------------------------- */

nvcf_status nvcf__docker_image_inspect(nvcf__docker *c, const char *image,
				       char **id_out)
{
	char *what, *path;
	const cJSON *id;
	nvcf_status st;
	cJSON *doc;
	reply r;

	if (id_out)
		*id_out = NULL;
	if (!image || !image[0])
		return nvcf__error_set(NVCF_EINVAL, "image name is empty; pass "
				       "an image reference such as "
				       "localhost/echo:1");
	what = nvcf__asprintf("inspecting image %s", image);
	path = esc_path("/images/", image, "/json");
	if (!what || !path) {
		free(what);
		free(path);
		return nvcf__error_oom();
	}
	st = get_json(c, path, what, &r, &doc);
	free(path);
	if (st != NVCF_OK)
		goto out;
	id = cJSON_GetObjectItemCaseSensitive(doc, "Id");
	if (!cJSON_IsString(id)) {
		st = bad_json(what, &r);
	} else if (id_out) {
		*id_out = nvcf__strdup(id->valuestring);
		if (!*id_out)
			st = nvcf__error_oom();
	}
	cJSON_Delete(doc);
	reply_free(&r);
out:
	free(what);
	return st;
}

nvcf_status nvcf__docker_image_exists(nvcf__docker *c, const char *image,
				      bool *exists)
{
	nvcf_status st = nvcf__docker_image_inspect(c, image, NULL);

	*exists = st == NVCF_OK;
	return st == NVCF_ENOTFOUND ? NVCF_OK : st;
}

/*
 * The pull reply is a stream of JSON objects with HTTP 200 even when the
 * pull fails; the failure is an object with "error". Copies the last one.
 */
static void pull_error(const reply *r, char *out, size_t size)
{
	const char *p = r->body.data ? r->body.data : "";
	const char *end = p + r->body.len;

	out[0] = '\0';
	while (p < end) {
		const char *next = NULL;
		cJSON *doc = cJSON_ParseWithLengthOpts(p, (size_t)(end - p),
						       &next, 0);
		const cJSON *err;

		if (!doc)
			break;
		err = cJSON_GetObjectItemCaseSensitive(doc, "error");
		if (cJSON_IsString(err))
			snprintf(out, size, "%s", err->valuestring);
		cJSON_Delete(doc);
		if (!next || next <= p)
			break;
		p = next;
		while (p < end && (*p == '\n' || *p == '\r' || *p == ' '))
			p++;
	}
}

nvcf_status nvcf__docker_image_ensure(nvcf__docker *c, const char *image,
				      char **id_out)
{
	char why[ENGINE_MESSAGE_MAX] = "";
	char *path, *what;
	nvcf_status st;
	reply r;

	st = nvcf__docker_image_inspect(c, image, id_out);
	if (st != NVCF_ENOTFOUND)
		return st;

	nvcf_log_info(SUB, "image %s is not present; asking the engine to "
		      "pull it", image);
	what = nvcf__asprintf("pulling image %s", image);
	path = esc_path("/images/create?fromImage=", image, "");
	if (!what || !path) {
		free(what);
		free(path);
		return nvcf__error_oom();
	}
	/* A pull may take long; allow ten request timeouts. */
	st = request(c, "POST", path, NULL, 9 * c->timeout_ms, what, &r);
	free(path);
	free(what);
	if (st != NVCF_OK) {
		snprintf(why, sizeof(why), "%s", nvcf_error_last()->message);
	} else {
		if (r.http != 200)
			engine_message(&r, why, sizeof(why));
		else
			pull_error(&r, why, sizeof(why));
		reply_free(&r);
	}

	st = nvcf__docker_image_inspect(c, image, id_out);
	if (st != NVCF_ENOTFOUND)
		return st;
	return nvcf__error_set_ext(NVCF_ENOTFOUND, 404, 0,
				  "image %s is not present in the container "
				  "engine and no registry pull was possible: "
				  "%s; load the image locally (podman load or "
				  "import) or make its registry reachable",
				  image, why[0] ? why : "the pull ended "
				  "without the image");
}

/* ---- containers --------------------------------------------------------- */

static cJSON *string_array(const char *const *words, size_t count)
{
	cJSON *a = cJSON_CreateArray();

	for (size_t i = 0; a && i < count; i++) {
		cJSON *s = cJSON_CreateString(words[i] ? words[i] : "");

		if (!s || !cJSON_AddItemToArray(a, s)) {
			cJSON_Delete(s);
			cJSON_Delete(a);
			return NULL;
		}
	}
	return a;
}

static bool env_has(const nvcf__docker_create_opts *o, const char *key)
{
	for (size_t i = 0; i < o->env_count; i++)
		if (o->env[i].key && strcmp(o->env[i].key, key) == 0)
			return true;
	return false;
}

static bool add_env(cJSON *env, const char *key, const char *value)
{
	char *kv = nvcf__asprintf("%s=%s", key, value ? value : "");
	cJSON *s = kv ? cJSON_CreateString(kv) : NULL;

	free(kv);
	if (!s || !cJSON_AddItemToArray(env, s)) {
		cJSON_Delete(s);
		return false;
	}
	return true;
}

static nvcf_status check_create_opts(const nvcf__docker_create_opts *o)
{
	if (!o || o->version != NVCF__DOCKER_CREATE_OPTS_VERSION)
		return nvcf__error_set(NVCF_EINVAL, "create options are NULL "
				       "or of another version; initialise "
				       "them with NVCF__DOCKER_CREATE_OPTS_"
				       "INIT");
	if (!o->image || !o->image[0])
		return nvcf__error_set(NVCF_EINVAL, "create options name no "
				       "image; set .image to a reference "
				       "such as localhost/echo:1");
	if (o->container_port > 65535 || o->host_port > 65535)
		return nvcf__error_set(NVCF_EINVAL, "port %u or %u is out of "
				       "range; use 1..65535 (or 0)",
				       o->container_port, o->host_port);
	if (o->host_port && !o->container_port)
		return nvcf__error_set(NVCF_EINVAL, "host port %u is set "
				       "without a container port; set "
				       ".container_port too", o->host_port);
	for (size_t i = 0; i < o->env_count; i++)
		if (!o->env[i].key || !o->env[i].key[0] ||
		    strchr(o->env[i].key, '='))
			return nvcf__error_set(NVCF_EINVAL, "environment "
					       "entry %zu has an empty key "
					       "or one with '='; use a "
					       "plain variable name", i);
	for (size_t i = 0; i < o->labels_count; i++)
		if (!o->labels[i].key || !o->labels[i].key[0])
			return nvcf__error_set(NVCF_EINVAL, "label %zu has an "
					       "empty key; give every label "
					       "a key", i);
	return NVCF_OK;
}

static cJSON *create_body(const nvcf__docker_create_opts *o)
{
	cJSON *doc = cJSON_CreateObject();
	cJSON *env, *labels, *host;
	char port[16];
	bool ok = doc != NULL;

	ok = ok && cJSON_AddStringToObject(doc, "Image", o->image);
	if (ok && o->cmd)
		ok = cJSON_AddItemToObject(doc, "Cmd",
					   string_array(o->cmd, o->cmd_count));
	if (ok && o->entrypoint)
		ok = cJSON_AddItemToObject(doc, "Entrypoint",
					   string_array(o->entrypoint,
							o->entrypoint_count));
	env = ok ? cJSON_AddArrayToObject(doc, "Env") : NULL;
	ok = env != NULL;
	for (size_t i = 0; ok && i < o->env_count; i++)
		ok = add_env(env, o->env[i].key, o->env[i].value);
	if (ok && o->gpu_count) {
		/* Processes get the same variables (DESIGN.md section 6). */
		nvcf__buf ids = {0};

		for (size_t i = 0; ok && i < o->gpu_count; i++)
			ok = nvcf__buf_printf(&ids, "%s%s", i ? "," : "",
					      o->gpu_ids[i]) == NVCF_OK;
		if (ok && !env_has(o, "NVIDIA_VISIBLE_DEVICES"))
			ok = add_env(env, "NVIDIA_VISIBLE_DEVICES", ids.data);
		if (ok && !env_has(o, "CUDA_VISIBLE_DEVICES"))
			ok = add_env(env, "CUDA_VISIBLE_DEVICES", ids.data);
		nvcf__buf_free(&ids);
	}
	labels = ok ? cJSON_AddObjectToObject(doc, "Labels") : NULL;
	ok = labels != NULL;
	for (size_t i = 0; ok && i < o->labels_count; i++)
		ok = cJSON_AddStringToObject(labels, o->labels[i].key,
					     o->labels[i].value ?
						     o->labels[i].value : "");
	host = ok ? cJSON_AddObjectToObject(doc, "HostConfig") : NULL;
	ok = host != NULL;
	if (ok && o->container_port) {
		cJSON *exposed = cJSON_AddObjectToObject(doc, "ExposedPorts");
		cJSON *bindings = cJSON_AddObjectToObject(host,
							  "PortBindings");
		cJSON *list = NULL, *b = NULL;
		char hp[16] = "";

		snprintf(port, sizeof(port), "%u/tcp", o->container_port);
		if (o->host_port)
			snprintf(hp, sizeof(hp), "%u", o->host_port);
		if (exposed && bindings)
			list = cJSON_AddArrayToObject(bindings, port);
		if (list && (b = cJSON_CreateObject()) != NULL &&
		    !cJSON_AddItemToArray(list, b)) {
			cJSON_Delete(b);
			b = NULL;
		}
		ok = b && cJSON_AddObjectToObject(exposed, port) &&
		     cJSON_AddStringToObject(b, "HostIp",
					     o->host_ip ? o->host_ip :
							  "127.0.0.1") &&
		     cJSON_AddStringToObject(b, "HostPort", hp);
	}
	if (ok && o->gpu_count) {
		/*
		 * Docker with the NVIDIA runtime honours this. Podman 4.3
		 * accepts and ignores it because it maps GPUs through CDI
		 * devices, so the ids also travel in the environment.
		 */
		cJSON *reqs = cJSON_AddArrayToObject(host, "DeviceRequests");
		cJSON *req = reqs ? cJSON_CreateObject() : NULL;
		cJSON *caps;

		if (req && !cJSON_AddItemToArray(reqs, req)) {
			cJSON_Delete(req);
			req = NULL;
		}
		caps = req ? cJSON_AddArrayToObject(req, "Capabilities") :
			     NULL;
		ok = caps &&
		     cJSON_AddItemToArray(
			     caps, string_array((const char *const[]){"gpu"},
						1)) &&
		     cJSON_AddStringToObject(req, "Driver", "nvidia") &&
		     cJSON_AddNumberToObject(req, "Count", 0) &&
		     cJSON_AddItemToObject(req, "DeviceIDs",
					   string_array(o->gpu_ids,
							o->gpu_count));
	}
	if (ok && o->restart_policy) {
		cJSON *rp = cJSON_AddObjectToObject(host, "RestartPolicy");

		ok = rp && cJSON_AddStringToObject(rp, "Name",
						   o->restart_policy);
	}
	if (ok && o->memory_bytes > 0)
		ok = cJSON_AddNumberToObject(host, "Memory",
					     (double)o->memory_bytes);
	if (ok && o->init)
		ok = cJSON_AddBoolToObject(host, "Init", 1);
	if (!ok) {
		cJSON_Delete(doc);
		return NULL;
	}
	return doc;
}

nvcf_status nvcf__docker_create(nvcf__docker *c,
				const nvcf__docker_create_opts *opts,
				char **id_out)
{
	char *what = NULL, *path = NULL, *json = NULL;
	const cJSON *id;
	nvcf_status st;
	cJSON *doc;
	reply r;

	if (id_out)
		*id_out = NULL;
	st = check_create_opts(opts);
	if (st != NVCF_OK)
		return st;
	doc = create_body(opts);
	if (doc)
		json = cJSON_PrintUnformatted(doc);
	cJSON_Delete(doc);
	if (opts->name)
		what = nvcf__asprintf("creating container %s for image %s",
				      opts->name, opts->image);
	else
		what = nvcf__asprintf("creating container for image %s",
				      opts->image);
	if (opts->name)
		path = esc_path("/containers/create?name=", opts->name, "");
	else
		path = nvcf__strdup("/containers/create");
	if (!json || !what || !path) {
		st = nvcf__error_oom();
		goto out;
	}
	st = request(c, "POST", path, json, 0, what, &r);
	if (st != NVCF_OK)
		goto out;
	if (r.http != 201 && r.http != 200) {
		st = engine_error(&r, what);
	} else {
		doc = cJSON_ParseWithLength(r.body.data, r.body.len);
		id = cJSON_GetObjectItemCaseSensitive(doc, "Id");
		if (!cJSON_IsString(id))
			st = bad_json(what, &r);
		else if (id_out && !(*id_out = nvcf__strdup(id->valuestring)))
			st = nvcf__error_oom();
		if (st == NVCF_OK)
			nvcf_log_info(SUB, "created container %.12s (%s) for "
				      "image %s", id->valuestring,
				      opts->name ? opts->name : "-",
				      opts->image);
		cJSON_Delete(doc);
	}
	reply_free(&r);
out:
	free(json);
	free(what);
	free(path);
	return st;
}

/*
 * Runs a request on /containers/{id}{suffix} that succeeds with one of
 * the statuses in @p ok (0-terminated).
 */
static nvcf_status container_call(nvcf__docker *c, const char *method,
				  const char *id, const char *suffix,
				  long extra_ms, const long *ok,
				  const char *verb)
{
	char *what, *path;
	nvcf_status st;
	reply r;

	if (!id || !id[0])
		return nvcf__error_set(NVCF_EINVAL, "%s: container id is "
				       "empty; pass the id that "
				       "nvcf__docker_create() returned", verb);
	what = nvcf__asprintf("%s container %s", verb, id);
	path = esc_path("/containers/", id, suffix);
	if (!what || !path) {
		free(what);
		free(path);
		return nvcf__error_oom();
	}
	st = request(c, method, path, NULL, extra_ms, what, &r);
	free(path);
	if (st == NVCF_OK) {
		st = NVCF_ERROR;
		for (const long *s = ok; *s; s++)
			if (r.http == *s)
				st = NVCF_OK;
		if (st != NVCF_OK)
			st = engine_error(&r, what);
		else
			nvcf_log_debug(SUB, "%s: %ld", what, r.http);
		reply_free(&r);
	}
	free(what);
	return st;
}

nvcf_status nvcf__docker_start(nvcf__docker *c, const char *id)
{
	static const long ok[] = {204, 304, 200, 0};

	return container_call(c, "POST", id, "/start", 0, ok, "starting");
}

nvcf_status nvcf__docker_stop(nvcf__docker *c, const char *id,
			      unsigned int timeout_s)
{
	static const long ok[] = {204, 304, 200, 0};
	char suffix[32];

	snprintf(suffix, sizeof(suffix), "/stop?t=%u", timeout_s);
	return container_call(c, "POST", id, suffix,
			      (long)timeout_s * 1000, ok, "stopping");
}

nvcf_status nvcf__docker_kill(nvcf__docker *c, const char *id,
			      const char *signal)
{
	static const long ok[] = {204, 200, 0};
	char *suffix;
	nvcf_status st;

	suffix = esc_path("/kill?signal=", signal ? signal : "SIGKILL", "");
	if (!suffix)
		return nvcf__error_oom();
	st = container_call(c, "POST", id, suffix, 0, ok, "killing");
	free(suffix);
	return st;
}

nvcf_status nvcf__docker_remove(nvcf__docker *c, const char *id)
{
	static const long ok[] = {204, 200, 0};

	return container_call(c, "DELETE", id, "?force=true&v=true", 0, ok,
			      "removing");
}

/* ---- inspect ------------------------------------------------------------ */

const char *nvcf__docker_status_name(nvcf__docker_status status)
{
	switch (status) {
	case NVCF__DOCKER_CREATED:
		return "created";
	case NVCF__DOCKER_RUNNING:
		return "running";
	case NVCF__DOCKER_PAUSED:
		return "paused";
	case NVCF__DOCKER_RESTARTING:
		return "restarting";
	case NVCF__DOCKER_REMOVING:
		return "removing";
	case NVCF__DOCKER_EXITED:
		return "exited";
	case NVCF__DOCKER_DEAD:
		return "dead";
	default:
		return "unknown";
	}
}

static nvcf__docker_status parse_status(const char *s)
{
	static const struct {
		const char *name;
		nvcf__docker_status status;
	} map[] = {
		{"created", NVCF__DOCKER_CREATED},
		/* podman's own names for a container not started yet */
		{"configured", NVCF__DOCKER_CREATED},
		{"initialized", NVCF__DOCKER_CREATED},
		{"running", NVCF__DOCKER_RUNNING},
		{"paused", NVCF__DOCKER_PAUSED},
		{"restarting", NVCF__DOCKER_RESTARTING},
		{"removing", NVCF__DOCKER_REMOVING},
		{"exited", NVCF__DOCKER_EXITED},
		{"stopped", NVCF__DOCKER_EXITED},
		{"dead", NVCF__DOCKER_DEAD},
	};

	for (size_t i = 0; s && i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(s, map[i].name) == 0)
			return map[i].status;
	return NVCF__DOCKER_UNKNOWN;
}

static char *dup_item(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	const char *s = cJSON_IsString(v) ? v->valuestring : "";

	/* Go's zero time means "never". */
	if (strncmp(s, "0001-01-01T", 11) == 0)
		s = "";
	return nvcf__strdup(s);
}

static int int_item(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsNumber(v) ? v->valueint : 0;
}

/* Host port of one "P/tcp": [{"HostIp", "HostPort"}] entry, 0 if none. */
static unsigned int binding_port(const cJSON *list)
{
	const cJSON *b;

	cJSON_ArrayForEach(b, list)
	{
		const cJSON *hp = cJSON_GetObjectItemCaseSensitive(b,
								   "HostPort");
		char *end;
		long port;

		if (!cJSON_IsString(hp))
			continue;
		errno = 0;
		port = strtol(hp->valuestring, &end, 10);
		if (!errno && *end == '\0' && port > 0 && port <= 65535)
			return (unsigned int)port;
	}
	return 0;
}

static unsigned int published_port(const cJSON *doc, unsigned int cport)
{
	const cJSON *net = cJSON_GetObjectItemCaseSensitive(doc,
							    "NetworkSettings");
	const cJSON *ports = cJSON_GetObjectItemCaseSensitive(net, "Ports");
	const cJSON *p;

	if (cport) {
		char key[16];

		snprintf(key, sizeof(key), "%u/tcp", cport);
		return binding_port(cJSON_GetObjectItemCaseSensitive(ports,
								     key));
	}
	cJSON_ArrayForEach(p, ports)
	{
		unsigned int hp = binding_port(p);

		if (hp)
			return hp;
	}
	return 0;
}

static nvcf__docker_health parse_health(const cJSON *state)
{
	const cJSON *h = cJSON_GetObjectItemCaseSensitive(state, "Health");
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(h, "Status");

	if (!cJSON_IsString(s))
		return NVCF__DOCKER_HEALTH_NONE;
	if (strcmp(s->valuestring, "starting") == 0)
		return NVCF__DOCKER_HEALTH_STARTING;
	if (strcmp(s->valuestring, "healthy") == 0)
		return NVCF__DOCKER_HEALTH_HEALTHY;
	if (strcmp(s->valuestring, "unhealthy") == 0)
		return NVCF__DOCKER_HEALTH_UNHEALTHY;
	return NVCF__DOCKER_HEALTH_NONE;
}

void nvcf__docker_state_clear(nvcf__docker_state *s)
{
	if (!s)
		return;
	free(s->id);
	free(s->name);
	free(s->image);
	free(s->error);
	free(s->started_at);
	free(s->finished_at);
	memset(s, 0, sizeof(*s));
}

/* Name without the leading '/' Docker puts there. */
static char *dup_name(const char *name)
{
	return nvcf__strdup(name[0] == '/' ? name + 1 : name);
}

nvcf_status nvcf__docker_inspect(nvcf__docker *c, const char *id,
				 unsigned int container_port,
				 nvcf__docker_state *out)
{
	const cJSON *state, *config, *name;
	char *what, *path;
	nvcf_status st;
	cJSON *doc;
	reply r;

	memset(out, 0, sizeof(*out));
	if (!id || !id[0])
		return nvcf__error_set(NVCF_EINVAL, "inspecting: container id "
				       "is empty; pass an id or a name");
	what = nvcf__asprintf("inspecting container %s", id);
	path = esc_path("/containers/", id, "/json");
	if (!what || !path) {
		free(what);
		free(path);
		return nvcf__error_oom();
	}
	st = get_json(c, path, what, &r, &doc);
	free(path);
	if (st != NVCF_OK)
		goto out;
	state = cJSON_GetObjectItemCaseSensitive(doc, "State");
	config = cJSON_GetObjectItemCaseSensitive(doc, "Config");
	name = cJSON_GetObjectItemCaseSensitive(doc, "Name");
	if (!cJSON_IsObject(state) ||
	    !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(doc, "Id"))) {
		st = bad_json(what, &r);
		cJSON_Delete(doc);
		goto done;
	}
	out->id = dup_item(doc, "Id");
	out->name = dup_name(cJSON_IsString(name) ? name->valuestring : "");
	out->image = dup_item(config, "Image");
	out->status = parse_status(cJSON_GetStringValue(
		cJSON_GetObjectItemCaseSensitive(state, "Status")));
	out->exit_code = int_item(state, "ExitCode");
	out->oom_killed = cJSON_IsTrue(
		cJSON_GetObjectItemCaseSensitive(state, "OOMKilled"));
	out->pid = int_item(state, "Pid");
	out->restart_count = (unsigned int)int_item(doc, "RestartCount");
	out->health = parse_health(state);
	out->error = dup_item(state, "Error");
	out->started_at = dup_item(state, "StartedAt");
	out->finished_at = dup_item(state, "FinishedAt");
	out->host_port = published_port(doc, container_port);
	cJSON_Delete(doc);
	if (!out->id || !out->name || !out->image || !out->error ||
	    !out->started_at || !out->finished_at) {
		nvcf__docker_state_clear(out);
		st = nvcf__error_oom();
	}
done:
	reply_free(&r);
out:
	free(what);
	return st;
}

/* ---- logs --------------------------------------------------------------- */

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

size_t nvcf__docker_demux(char *data, size_t len)
{
	const unsigned char *u = (const unsigned char *)data;
	size_t i = 0, o = 0;

	if (len == 0)
		return 0;
	/* First prove that the whole buffer is a frame sequence. */
	while (i < len) {
		uint32_t n;

		if (len - i < 8 || u[i] > 2 || u[i + 1] || u[i + 2] ||
		    u[i + 3])
			return len;
		n = be32(u + i + 4);
		if (n > len - i - 8)
			return len;
		i += 8 + (size_t)n;
	}
	for (i = 0; i < len;) {
		uint32_t n = be32(u + i + 4);

		memmove(data + o, data + i + 8, n);
		o += n;
		i += 8 + (size_t)n;
	}
	data[o] = '\0';
	return o;
}

nvcf_status nvcf__docker_logs(nvcf__docker *c, const char *id,
			      unsigned int tail, char **out, size_t *len_out)
{
	char *what, *path, *suffix;
	char count[16] = "all";
	nvcf_status st;
	reply r;

	*out = NULL;
	if (len_out)
		*len_out = 0;
	if (!id || !id[0])
		return nvcf__error_set(NVCF_EINVAL, "reading logs: container "
				       "id is empty; pass an id or a name");
	if (tail)
		snprintf(count, sizeof(count), "%u", tail);
	what = nvcf__asprintf("reading logs of container %s", id);
	suffix = nvcf__asprintf("/logs?stdout=true&stderr=true&tail=%s",
				count);
	path = suffix ? esc_path("/containers/", id, suffix) : NULL;
	free(suffix);
	if (!what || !path) {
		free(what);
		free(path);
		return nvcf__error_oom();
	}
	st = request(c, "GET", path, NULL, 0, what, &r);
	free(path);
	if (st != NVCF_OK)
		goto out;
	if (r.http != 200) {
		st = engine_error(&r, what);
		reply_free(&r);
		goto out;
	}
	if (!r.body.data && nvcf__buf_append(&r.body, "", 0) != NVCF_OK) {
		st = nvcf__error_oom();
		goto out;
	}
	r.body.len = nvcf__docker_demux(r.body.data, r.body.len);
	*out = r.body.data;
	if (len_out)
		*len_out = r.body.len;
out:
	free(what);
	return st;
}

/* ---- list --------------------------------------------------------------- */

void nvcf__docker_list_free(nvcf__docker_state *list, size_t count)
{
	if (!list)
		return;
	for (size_t i = 0; i < count; i++)
		nvcf__docker_state_clear(&list[i]);
	free(list);
}

nvcf_status nvcf__docker_list(nvcf__docker *c, const char *key,
			      const char *value, nvcf__docker_state **out,
			      size_t *count)
{
	char *what = NULL, *filter = NULL, *path = NULL;
	nvcf__docker_state *list = NULL;
	const cJSON *item;
	nvcf_status st;
	size_t n = 0;
	cJSON *doc = NULL, *f, *labels;
	reply r;

	*out = NULL;
	*count = 0;
	if (!key || !key[0])
		return nvcf__error_set(NVCF_EINVAL, "listing containers: label "
				       "key is empty; pass the label the "
				       "containers were created with");
	what = value ? nvcf__asprintf("listing containers with label %s=%s",
				      key, value) :
		       nvcf__asprintf("listing containers with label %s", key);
	f = cJSON_CreateObject();
	labels = f ? cJSON_AddArrayToObject(f, "label") : NULL;
	if (labels) {
		char *l = value ? nvcf__asprintf("%s=%s", key, value) :
				  nvcf__strdup(key);
		cJSON *s = l ? cJSON_CreateString(l) : NULL;

		free(l);
		if (s && cJSON_AddItemToArray(labels, s))
			filter = cJSON_PrintUnformatted(f);
		else
			cJSON_Delete(s);
	}
	cJSON_Delete(f);
	if (filter)
		path = esc_path("/containers/json?all=true&filters=", filter,
				"");
	free(filter);
	if (!what || !path) {
		st = nvcf__error_oom();
		goto out;
	}
	st = get_json(c, path, what, &r, &doc);
	if (st != NVCF_OK)
		goto out;
	if (!cJSON_IsArray(doc)) {
		st = bad_json(what, &r);
		goto done;
	}
	list = calloc((size_t)cJSON_GetArraySize(doc) + 1, sizeof(*list));
	if (!list) {
		st = nvcf__error_oom();
		goto done;
	}
	cJSON_ArrayForEach(item, doc)
	{
		const cJSON *names = cJSON_GetObjectItemCaseSensitive(item,
								      "Names");
		const cJSON *first = cJSON_GetArrayItem(names, 0);
		nvcf__docker_state *s = &list[n++];

		s->id = dup_item(item, "Id");
		s->name = dup_name(cJSON_IsString(first) ? first->valuestring :
							   "");
		s->image = dup_item(item, "Image");
		s->status = parse_status(cJSON_GetStringValue(
			cJSON_GetObjectItemCaseSensitive(item, "State")));
		s->error = nvcf__strdup("");
		s->started_at = nvcf__strdup("");
		s->finished_at = nvcf__strdup("");
		if (!s->id || !s->name || !s->image || !s->error ||
		    !s->started_at || !s->finished_at) {
			st = nvcf__error_oom();
			break;
		}
	}
	if (st != NVCF_OK) {
		nvcf__docker_list_free(list, n);
	} else {
		*out = list;
		*count = n;
	}
done:
	cJSON_Delete(doc);
	reply_free(&r);
out:
	free(what);
	free(path);
	return st;
}
