/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "container_rt.h"
#include "runtime/docker.h"
#include "runtime/instance.h"

#define SUB "agent"
#define MAX_GPUS 64
#define LOG_LINES 200
#define VERDICT_LOG_LINES 20
#define CHECK_EVERY_US INT64_C(500000)
#define WATCH_PROBE_MS 2000
#define NAME_MAX_LEN 100

struct nvcf__crt_ctr {
	/* Held through start and removal, so the two never interleave. */
	pthread_mutex_t lock;
	char *image, *name;
	char **cmd;
	size_t cmd_count;
	nvcf__docker_kv *env;
	size_t env_count;
	char gpu_ids[MAX_GPUS][12];
	unsigned int n_gpus;
	char *cluster_id, *function_id, *version_id, *instance_id;
	int container_port;
	char *health_path;
	long expected_status;
	char *log_path;
	void *ctx;
	char **binds;
	size_t bind_count;

	char *id;
	int host_port;
	nvcf__instance_track track;
	nvcf__instance_policy policy;
	int64_t last_check_us;
	bool removed; /* atomic: no start after it */
	bool gone;    /* atomic: the container is deleted */
	bool watched; /* under the runtime's lock */
	struct nvcf__crt_ctr *wnext;
};

struct nvcf__crt {
	nvcf__docker *d;
	/* For the create requests docker.h cannot express (bind mounts). */
	char *socket_path;
	char *cluster_id;
	int64_t poll_ms;
	nvcf__crt_fail_fn on_fail;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	nvcf__crt_ctr *watched;
	bool stop;
	bool started;
	pthread_t thread;
};

static bool load_flag(const bool *flag)
{
	return __atomic_load_n(flag, __ATOMIC_ACQUIRE);
}

static void store_flag(bool *flag)
{
	__atomic_store_n(flag, true, __ATOMIC_RELEASE);
}

/* ---- function record ---------------------------------------------------- */

int nvcf__crt_inference_port(const char *function_json)
{
	cJSON *fn = cJSON_Parse(function_json ? function_json : "");
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(fn, "inferencePort");
	int port = NVCF__CRT_DEFAULT_PORT;

	if (cJSON_IsNumber(p) && p->valueint > 0 && p->valueint < 65536)
		port = p->valueint;
	cJSON_Delete(fn);
	return port;
}

/* ---- handles ------------------------------------------------------------ */

void nvcf__crt_ctr_free(nvcf__crt_ctr *c)
{
	if (c == NULL)
		return;
	free(c->image);
	free(c->name);
	for (size_t i = 0; c->cmd && i < c->cmd_count; i++)
		free(c->cmd[i]);
	free(c->cmd);
	for (size_t i = 0; c->env && i < c->env_count; i++) {
		free((char *)c->env[i].key);
		free((char *)c->env[i].value);
	}
	free(c->env);
	free(c->cluster_id);
	free(c->function_id);
	free(c->version_id);
	free(c->instance_id);
	free(c->health_path);
	free(c->log_path);
	for (size_t i = 0; c->binds && i < c->bind_count; i++)
		free(c->binds[i]);
	free(c->binds);
	free(c->id);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* Container names allow [a-zA-Z0-9_.-]; anything else becomes '-'. */
static char *container_name(const char *instance_id)
{
	char *name = nvcf__asprintf("nvcf-%.*s", NAME_MAX_LEN, instance_id);

	for (char *p = name ? name + 5 : NULL; p && *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' ||
		      *p == '-'))
			*p = '-';
	return name;
}

nvcf_status nvcf__crt_ctr_new(nvcf__crt_ctr **out, const nvcf__crt_spec *s)
{
	nvcf__instance_policy policy = NVCF__INSTANCE_POLICY_INIT;
	nvcf__crt_ctr *c;
	size_t n_env = 0;
	bool ok;

	if (out == NULL || s == NULL || s->version != NVCF__CRT_SPEC_VERSION ||
	    s->image == NULL || s->instance_id == NULL)
		return nvcf__error_set(NVCF_EINVAL, "container spec: image and "
				       "instance_id are required; use "
				       "NVCF__CRT_SPEC_INIT");
	if (s->n_gpus > MAX_GPUS)
		return nvcf__error_set(NVCF_EINVAL, "container spec: %u GPUs "
				       "exceed the limit of %d", s->n_gpus,
				       MAX_GPUS);
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return nvcf__error_oom();
	pthread_mutex_init(&c->lock, NULL);
	c->policy = policy;
	c->image = nvcf__strdup(s->image);
	c->name = container_name(s->instance_id);
	c->cluster_id = nvcf__strdup(s->cluster_id ? s->cluster_id : "");
	c->function_id = nvcf__strdup(s->function_id ? s->function_id : "");
	c->version_id = nvcf__strdup(s->version_id ? s->version_id : "");
	c->instance_id = nvcf__strdup(s->instance_id);
	c->health_path = nvcf__asprintf("%s%s", s->health_path &&
					s->health_path[0] == '/' ? "" : "/",
					s->health_path ? s->health_path : "");
	c->log_path = s->log_path ? nvcf__strdup(s->log_path) : NULL;
	c->container_port = s->container_port > 0 ? s->container_port :
			    NVCF__CRT_DEFAULT_PORT;
	c->expected_status = s->expected_status > 0 ? s->expected_status :
			     200;
	c->ctx = s->ctx;
	c->n_gpus = s->n_gpus;
	for (unsigned int i = 0; i < s->n_gpus; i++)
		snprintf(c->gpu_ids[i], sizeof(c->gpu_ids[i]), "%u",
			 s->gpus[i]);
	ok = c->image && c->name && c->cluster_id && c->function_id &&
	     c->version_id && c->instance_id && c->health_path &&
	     (s->log_path == NULL || c->log_path);
	c->cmd = calloc(s->cmd_count + 1, sizeof(char *));
	ok = ok && c->cmd != NULL;
	for (size_t i = 0; ok && i < s->cmd_count; i++)
		ok = (c->cmd[c->cmd_count++] = nvcf__strdup(s->cmd[i])) !=
		     NULL;
	while (s->env && s->env[n_env])
		n_env++;
	c->env = calloc(n_env + 1, sizeof(*c->env));
	ok = ok && c->env != NULL;
	for (size_t i = 0; ok && i < n_env; i++) {
		const char *eq = strchr(s->env[i], '=');

		if (eq == NULL)
			continue;
		c->env[c->env_count].key =
			nvcf__strndup(s->env[i], (size_t)(eq - s->env[i]));
		c->env[c->env_count].value = nvcf__strdup(eq + 1);
		ok = c->env[c->env_count].key && c->env[c->env_count].value;
		c->env_count++;
	}
	c->binds = ok ? calloc(s->bind_count + 1, sizeof(char *)) : NULL;
	ok = ok && c->binds != NULL;
	for (size_t i = 0; ok && i < s->bind_count; i++)
		ok = (c->binds[c->bind_count++] = nvcf__strdup(s->binds[i])) !=
		     NULL;
	if (!ok) {
		nvcf__crt_ctr_free(c);
		return nvcf__error_oom();
	}
	*out = c;
	return NVCF_OK;
}

bool nvcf__crt_gone(const nvcf__crt_ctr *c)
{
	return c == NULL || load_flag(&c->gone);
}

void nvcf__crt_set_ctx(nvcf__crt_ctr *c, void *ctx)
{
	c->ctx = ctx;
}

const char *nvcf__crt_id(const nvcf__crt_ctr *c)
{
	return c ? c->id : NULL;
}

/* ---- engine operations ------------------------------------------------- */

static void write_file(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0) {
		nvcf_log_warn(SUB, "cannot write container log %s: %s", path,
			      strerror(errno));
		return;
	}
	while (len > 0) {
		ssize_t n = write(fd, data, len);

		if (n <= 0)
			break;
		data += n;
		len -= (size_t)n;
	}
	close(fd);
}

void nvcf__crt_save_logs(nvcf__crt *rt, nvcf__crt_ctr *c)
{
	char *logs = NULL;
	size_t len = 0;

	if (c == NULL || c->id == NULL || c->log_path == NULL)
		return;
	if (nvcf__docker_logs(rt->d, c->id, LOG_LINES, &logs, &len) !=
	    NVCF_OK) {
		nvcf_log_debug(SUB, "no logs of container %s: %s", c->id,
			       nvcf_error_last()->message);
		return;
	}
	write_file(c->log_path, logs, len);
	free(logs);
}

/*
 * Folds the inspect result that start or adoption read, so that a
 * container gone before the next poll counts as vanished.
 */
static void first_look(nvcf__crt_ctr *c, const nvcf__docker_state *s)
{
	nvcf__instance_obs o = {0};
	nvcf__instance_verdict v;

	o.now_us = nvcf__mono_us();
	o.state = s;
	nvcf__instance_observe(&c->track, &c->policy, &o, &v);
}

/* Removes a container and logs a warning when the engine fails to. */
static void remove_quietly(nvcf__crt *rt, const char *id)
{
	nvcf_status st = nvcf__docker_remove(rt->d, id);

	if (st != NVCF_OK && st != NVCF_ENOTFOUND)
		nvcf_log_warn(SUB, "removing container %s failed: %s", id,
			      nvcf_error_last()->message);
}

void nvcf__crt_remove_id(nvcf__crt *rt, const char *container_id)
{
	if (rt != NULL && container_id != NULL)
		remove_quietly(rt, container_id);
}

static nvcf_status create(nvcf__crt *rt, nvcf__crt_ctr *c, char **id)
{
	nvcf__docker_create_opts o = NVCF__DOCKER_CREATE_OPTS_INIT;
	const char *gpu_ids[MAX_GPUS];
	nvcf__docker_kv labels[4] = {
		{NVCF__CRT_LABEL_CLUSTER, c->cluster_id},
		{NVCF__CRT_LABEL_FUNCTION, c->function_id},
		{NVCF__CRT_LABEL_VERSION, c->version_id},
		{NVCF__CRT_LABEL_INSTANCE, c->instance_id},
	};
	nvcf_status st;

	for (unsigned int i = 0; i < c->n_gpus; i++)
		gpu_ids[i] = c->gpu_ids[i];
	o.name = c->name;
	o.image = c->image;
	o.cmd = c->cmd_count ? (const char *const *)c->cmd : NULL;
	o.cmd_count = c->cmd_count;
	o.env = c->env;
	o.env_count = c->env_count;
	o.labels = labels;
	o.labels_count = 4;
	o.container_port = (unsigned int)c->container_port;
	o.host_ip = "127.0.0.1";
	o.gpu_ids = c->n_gpus ? gpu_ids : NULL;
	o.gpu_count = c->n_gpus;
	/* The agent restarts it, so every exit is seen and counted. */
	o.restart_policy = "no";
	st = nvcf__docker_create(rt->d, &o, id);
	if (st == NVCF_ECONFLICT) {
		/* Left by an agent that died before recording it. */
		nvcf_log_warn(SUB, "container name %s is taken; removing the "
			      "old container", c->name);
		remove_quietly(rt, c->name);
		st = nvcf__docker_create(rt->d, &o, id);
	}
	return st;
}

char *nvcf__crt_start(nvcf__crt *rt, nvcf__crt_ctr *c, int *host_port)
{
	nvcf__docker_state s = {0};
	char *error = NULL, *id = NULL;
	nvcf_status st;

	pthread_mutex_lock(&c->lock);
	if (load_flag(&c->removed)) {
		error = nvcf__strdup("the instance was stopped before its "
				     "container started");
		goto out;
	}
	if ((st = nvcf__docker_image_ensure(rt->d, c->image, NULL)) !=
	    NVCF_OK) {
		error = nvcf__strdup(nvcf_error_last()->message);
		goto out;
	}
	if ((st = create(rt, c, &id)) != NVCF_OK) {
		error = nvcf__asprintf("container could not be created: %s",
				       nvcf_error_last()->message);
		goto out;
	}
	c->id = id;
	if ((st = nvcf__docker_start(rt->d, id)) != NVCF_OK) {
		error = nvcf__asprintf("container %s could not be started: %s",
				       c->name, nvcf_error_last()->message);
		goto failed;
	}
	if ((st = nvcf__docker_inspect(rt->d, id,
				       (unsigned int)c->container_port, &s)) !=
	    NVCF_OK) {
		error = nvcf__asprintf("inspecting container %s failed: %s",
				       c->name, nvcf_error_last()->message);
		goto failed;
	}
	if (s.host_port == 0) {
		error = nvcf__asprintf("container %s publishes no host port "
				       "for port %d; the engine ignored the "
				       "port binding", c->name,
				       c->container_port);
		goto failed;
	}
	c->host_port = (int)s.host_port;
	*host_port = c->host_port;
	c->last_check_us = nvcf__mono_us();
	first_look(c, &s);
	nvcf_log_info(SUB, "container %s (%.12s) of image %s started; port "
		      "%d published at 127.0.0.1:%d", c->name, id, c->image,
		      c->container_port, c->host_port);
	goto out;
failed:
	nvcf__crt_save_logs(rt, c);
	remove_quietly(rt, id);
	c->id = NULL;
	free(id);
out:
	nvcf__docker_state_clear(&s);
	pthread_mutex_unlock(&c->lock);
	return error;
}

/*
 * Inspects @p c once and folds it with @p probe into @p v; restarts an
 * exited container that is not failed yet. False when the inspect
 * failed, because nothing can be concluded from that.
 */
static bool look(nvcf__crt *rt, nvcf__crt_ctr *c, nvcf__probe probe,
		 nvcf__instance_verdict *v)
{
	nvcf__docker_state s = {0};
	nvcf__instance_obs o = {0};
	char *logs = NULL;
	nvcf_status st;
	bool exited;

	st = nvcf__docker_inspect(rt->d, c->id,
				  (unsigned int)c->container_port, &s);
	if (st != NVCF_OK && st != NVCF_ENOTFOUND) {
		nvcf_log_warn(SUB, "inspecting container %s failed: %s",
			      c->name, nvcf_error_last()->message);
		return false;
	}
	/* Removed by the agent meanwhile: not the container's failure. */
	if (load_flag(&c->removed)) {
		nvcf__docker_state_clear(&s);
		return false;
	}
	exited = st == NVCF_OK && (s.status == NVCF__DOCKER_EXITED ||
				   s.status == NVCF__DOCKER_DEAD);
	if (exited && nvcf__docker_logs(rt->d, c->id, VERDICT_LOG_LINES,
					&logs, NULL) != NVCF_OK)
		logs = NULL;
	o.now_us = nvcf__mono_us();
	o.state = st == NVCF_OK ? &s : NULL;
	o.health = probe;
	o.logs = logs;
	nvcf__instance_observe(&c->track, &c->policy, &o, v);
	if (v->phase == NVCF__INSTANCE_STARTING && exited) {
		nvcf_log_info(SUB, "container %s exited with status %d; "
			      "restarting it (%u exits within the window)",
			      c->name, s.exit_code, v->recent_exits);
		if (nvcf__docker_start(rt->d, c->id) != NVCF_OK)
			nvcf_log_warn(SUB, "restarting container %s failed: "
				      "%s", c->name,
				      nvcf_error_last()->message);
	}
	free(logs);
	nvcf__docker_state_clear(&s);
	return true;
}

char *nvcf__crt_check(nvcf__crt *rt, nvcf__crt_ctr *c)
{
	nvcf__instance_verdict v;
	int64_t now = nvcf__mono_us();

	if (c->id == NULL || now - c->last_check_us < CHECK_EVERY_US)
		return NULL;
	c->last_check_us = now;
	if (!look(rt, c, NVCF__PROBE_FAILING, &v) ||
	    v.phase != NVCF__INSTANCE_FAILED)
		return NULL;
	nvcf__crt_save_logs(rt, c);
	return nvcf__strdup(v.message);
}

/* ---- watcher ------------------------------------------------------------ */

static size_t discard(char *data, size_t size, size_t n, void *userdata)
{
	(void)data;
	(void)userdata;
	return size * n;
}

static nvcf__probe probe(CURL *curl, const nvcf__crt_ctr *c)
{
	char url[512];
	long code = 0;

	if (curl == NULL)
		return NVCF__PROBE_UNKNOWN;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", c->host_port,
		 c->health_path);
	curl_easy_reset(curl);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)WATCH_PROBE_MS);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
	if (curl_easy_perform(curl) != CURLE_OK)
		return NVCF__PROBE_FAILING;
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
	return code == c->expected_status ? NVCF__PROBE_OK :
					    NVCF__PROBE_FAILING;
}

/* Called with the runtime's lock held. */
static void unwatch_locked(nvcf__crt *rt, nvcf__crt_ctr *c)
{
	for (nvcf__crt_ctr **pp = &rt->watched; *pp != NULL;
	     pp = &(*pp)->wnext) {
		if (*pp == c) {
			*pp = c->wnext;
			break;
		}
	}
	c->watched = false;
	c->wnext = NULL;
}

static void *watch_main(void *arg)
{
	nvcf__crt *rt = arg;
	CURL *curl = curl_easy_init();
	nvcf__crt_ctr **batch = NULL;
	size_t cap = 0;

	for (;;) {
		struct timespec ts;
		size_t n = 0;

		nvcf__deadline_after(&ts, rt->poll_ms);
		pthread_mutex_lock(&rt->lock);
		while (!rt->stop &&
		       pthread_cond_timedwait(&rt->cond, &rt->lock, &ts) !=
		       ETIMEDOUT)
			;
		if (rt->stop) {
			pthread_mutex_unlock(&rt->lock);
			break;
		}
		/* Handles live as long as their instances, which outlive
		 * this thread, so a copy of the list is safe to walk. */
		for (nvcf__crt_ctr *c = rt->watched; c != NULL; c = c->wnext) {
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 16;
				void *p = realloc(batch, ncap *
						  sizeof(*batch));

				if (p == NULL)
					break;
				batch = p;
				cap = ncap;
			}
			batch[n++] = c;
		}
		pthread_mutex_unlock(&rt->lock);

		for (size_t i = 0; i < n; i++) {
			nvcf__crt_ctr *c = batch[i];
			nvcf__instance_verdict v;
			bool live;

			if (!look(rt, c, probe(curl, c), &v))
				continue;
			nvcf_log_trace(SUB, "container %s: %s (%s)", c->name,
				       nvcf__instance_phase_name(v.phase),
				       v.message);
			if (v.phase != NVCF__INSTANCE_FAILED)
				continue;
			pthread_mutex_lock(&rt->lock);
			live = c->watched;
			unwatch_locked(rt, c);
			pthread_mutex_unlock(&rt->lock);
			if (!live)
				continue;
			nvcf_log_warn(SUB, "container %s failed: %s", c->name,
				      v.message);
			nvcf__crt_save_logs(rt, c);
			if (rt->on_fail != NULL)
				rt->on_fail(c->ctx, v.message);
		}
	}
	free(batch);
	if (curl != NULL)
		curl_easy_cleanup(curl);
	return NULL;
}

void nvcf__crt_watch(nvcf__crt *rt, nvcf__crt_ctr *c)
{
	pthread_mutex_lock(&rt->lock);
	if (!c->watched && !load_flag(&c->removed)) {
		c->watched = true;
		c->wnext = rt->watched;
		rt->watched = c;
	}
	pthread_mutex_unlock(&rt->lock);
}

void nvcf__crt_remove(nvcf__crt *rt, nvcf__crt_ctr *c, int64_t grace_ms)
{
	nvcf_status st;

	if (rt == NULL || c == NULL)
		return;
	pthread_mutex_lock(&rt->lock);
	unwatch_locked(rt, c);
	pthread_mutex_unlock(&rt->lock);
	store_flag(&c->removed);
	pthread_mutex_lock(&c->lock);
	if (c->id != NULL && !load_flag(&c->gone)) {
		nvcf__crt_save_logs(rt, c);
		st = nvcf__docker_stop(rt->d, c->id,
				       (unsigned int)((grace_ms + 999) / 1000));
		if (st != NVCF_OK && st != NVCF_ENOTFOUND)
			nvcf_log_warn(SUB, "stopping container %s failed: %s",
				      c->name, nvcf_error_last()->message);
		remove_quietly(rt, c->id);
		nvcf_log_info(SUB, "container %s (%.12s) removed", c->name,
			      c->id);
	}
	store_flag(&c->gone);
	pthread_mutex_unlock(&c->lock);
}

/* ---- restart of the agent --------------------------------------------- */

nvcf_status nvcf__crt_adopt(nvcf__crt *rt, const nvcf__crt_spec *spec,
			    const char *container_id, nvcf__crt_ctr **out,
			    int *host_port)
{
	nvcf__docker_state *list = NULL, s = {0};
	nvcf__crt_ctr *c = NULL;
	size_t count = 0;
	bool labelled = false;
	nvcf_status st;

	st = nvcf__docker_list(rt->d, NVCF__CRT_LABEL_INSTANCE,
			       spec->instance_id, &list, &count);
	if (st != NVCF_OK)
		return st;
	for (size_t i = 0; i < count; i++)
		if (strcmp(list[i].id, container_id) == 0)
			labelled = true;
	nvcf__docker_list_free(list, count);
	if (!labelled)
		return nvcf__error_set(NVCF_ENOTFOUND, "container %.12s of "
				       "instance %s is gone", container_id,
				       spec->instance_id);
	st = nvcf__docker_inspect(rt->d, container_id,
				  (unsigned int)spec->container_port, &s);
	if (st != NVCF_OK)
		return st;
	if (s.status != NVCF__DOCKER_RUNNING || s.host_port == 0) {
		st = nvcf__error_set(NVCF_ENOTFOUND, "container %.12s of "
				     "instance %s is %s", container_id,
				     spec->instance_id,
				     nvcf__docker_status_name(s.status));
		nvcf__docker_state_clear(&s);
		return st;
	}
	if ((st = nvcf__crt_ctr_new(&c, spec)) == NVCF_OK &&
	    (c->id = nvcf__strdup(container_id)) == NULL)
		st = nvcf__error_oom();
	if (st != NVCF_OK) {
		nvcf__crt_ctr_free(c);
		nvcf__docker_state_clear(&s);
		return st;
	}
	c->host_port = (int)s.host_port;
	*host_port = c->host_port;
	first_look(c, &s);
	nvcf__docker_state_clear(&s);
	*out = c;
	return NVCF_OK;
}

size_t nvcf__crt_sweep(nvcf__crt *rt,
		       bool (*keep)(void *ctx, const char *container_id),
		       void *ctx)
{
	nvcf__docker_state *list = NULL;
	size_t count = 0, removed = 0;

	if (nvcf__docker_list(rt->d, NVCF__CRT_LABEL_CLUSTER, rt->cluster_id,
			      &list, &count) != NVCF_OK) {
		nvcf_log_warn(SUB, "listing the containers of cluster %s "
			      "failed: %s", rt->cluster_id,
			      nvcf_error_last()->message);
		return 0;
	}
	for (size_t i = 0; i < count; i++) {
		if (keep(ctx, list[i].id))
			continue;
		nvcf_log_info(SUB, "removing container %s (%.12s, %s) left by "
			      "an earlier nvca", list[i].name, list[i].id,
			      nvcf__docker_status_name(list[i].status));
		remove_quietly(rt, list[i].id);
		removed++;
	}
	nvcf__docker_list_free(list, count);
	return removed;
}

/* ---- lifecycle ---------------------------------------------------------- */

nvcf_status nvcf__crt_new(nvcf__crt **out, const char *socket_path,
			  const char *cluster_id, int64_t poll_ms,
			  nvcf__crt_fail_fn on_fail)
{
	nvcf__crt *rt;
	nvcf_status st;

	if (out == NULL || cluster_id == NULL)
		return nvcf__error_set(NVCF_EINVAL, "container runtime: NULL "
				       "argument");
	rt = calloc(1, sizeof(*rt));
	if (rt == NULL)
		return nvcf__error_oom();
	pthread_mutex_init(&rt->lock, NULL);
	pthread_cond_init(&rt->cond, NULL);
	rt->poll_ms = poll_ms > 0 ? poll_ms : 1000;
	rt->on_fail = on_fail;
	rt->cluster_id = nvcf__strdup(cluster_id);
	rt->socket_path = nvcf__strdup(socket_path ? socket_path : "");
	if (rt->cluster_id == NULL || rt->socket_path == NULL) {
		nvcf__crt_free(rt);
		return nvcf__error_oom();
	}
	if ((st = nvcf__docker_new(&rt->d, socket_path)) != NVCF_OK) {
		nvcf__crt_free(rt);
		return st;
	}
	if ((st = nvcf__docker_ping(rt->d)) != NVCF_OK) {
		st = nvcf__error_set(st, "no container engine answers on "
				     "--docker-socket %s: %s; start one (for "
				     "example `podman system service "
				     "unix://%s`) or drop the option",
				     socket_path, nvcf_error_last()->message,
				     socket_path);
		nvcf__crt_free(rt);
		return st;
	}
	rt->started = pthread_create(&rt->thread, NULL, watch_main, rt) == 0;
	if (!rt->started) {
		nvcf__crt_free(rt);
		return nvcf__error_set(NVCF_ERROR, "cannot start the "
				       "container watcher thread");
	}
	*out = rt;
	return NVCF_OK;
}

void nvcf__crt_shutdown(nvcf__crt *rt)
{
	if (rt == NULL)
		return;
	pthread_mutex_lock(&rt->lock);
	rt->stop = true;
	pthread_cond_broadcast(&rt->cond);
	pthread_mutex_unlock(&rt->lock);
	if (rt->started)
		pthread_join(rt->thread, NULL);
	rt->started = false;
}

void nvcf__crt_free(nvcf__crt *rt)
{
	if (rt == NULL)
		return;
	nvcf__crt_shutdown(rt);
	nvcf__docker_free(rt->d);
	free(rt->cluster_id);
	free(rt->socket_path);
	pthread_cond_destroy(&rt->cond);
	pthread_mutex_destroy(&rt->lock);
	free(rt);
}

/* ---- run-to-completion containers -------------------------------------- */

static size_t collect(char *data, size_t size, size_t n, void *userdata)
{
	if (nvcf__buf_append(userdata, data, size * n) != NVCF_OK)
		return 0;
	return size * n;
}

static bool add_strings(cJSON *obj, const char *name,
			const char *const *words, size_t count)
{
	cJSON *list = cJSON_CreateStringArray(words, (int)count);

	if (list == NULL || !cJSON_AddItemToObject(obj, name, list)) {
		cJSON_Delete(list);
		return false;
	}
	return true;
}

/*
 * Builds the create body of a task container. nvcf__docker_create_opts
 * has no bind mounts, so this request is sent from here. The GPU ids go
 * into a DeviceRequests entry, as docker.c sends them.
 */
static char *run_body(const nvcf__crt_ctr *c)
{
	cJSON *doc = cJSON_CreateObject(), *env, *labels, *host, *rp;
	const char *gpus[MAX_GPUS];
	char *text = NULL;
	bool ok;

	for (unsigned int i = 0; i < c->n_gpus; i++)
		gpus[i] = c->gpu_ids[i];
	ok = doc && cJSON_AddStringToObject(doc, "Image", c->image);
	if (ok && c->cmd_count > 0)
		ok = add_strings(doc, "Cmd", (const char *const *)c->cmd,
				 c->cmd_count);
	env = ok ? cJSON_AddArrayToObject(doc, "Env") : NULL;
	ok = env != NULL;
	for (size_t i = 0; ok && i < c->env_count; i++) {
		char *e = nvcf__asprintf("%s=%s", c->env[i].key,
					 c->env[i].value);
		cJSON *item = e ? cJSON_CreateString(e) : NULL;

		ok = item != NULL && cJSON_AddItemToArray(env, item);
		if (!ok)
			cJSON_Delete(item);
		free(e);
	}
	labels = ok ? cJSON_AddObjectToObject(doc, "Labels") : NULL;
	ok = labels &&
	     cJSON_AddStringToObject(labels, NVCF__CRT_LABEL_CLUSTER,
				     c->cluster_id) &&
	     cJSON_AddStringToObject(labels, NVCF__CRT_LABEL_FUNCTION,
				     c->function_id) &&
	     cJSON_AddStringToObject(labels, NVCF__CRT_LABEL_VERSION,
				     c->version_id) &&
	     cJSON_AddStringToObject(labels, NVCF__CRT_LABEL_INSTANCE,
				     c->instance_id);
	host = ok ? cJSON_AddObjectToObject(doc, "HostConfig") : NULL;
	ok = host && add_strings(host, "Binds",
				 (const char *const *)c->binds, c->bind_count);
	rp = ok ? cJSON_AddObjectToObject(host, "RestartPolicy") : NULL;
	ok = rp && cJSON_AddStringToObject(rp, "Name", "no");
	if (ok && c->n_gpus > 0) {
		static const char *const gpu_cap[] = {"gpu"};
		cJSON *reqs = cJSON_AddArrayToObject(host, "DeviceRequests");
		cJSON *req = reqs ? cJSON_CreateObject() : NULL;
		cJSON *caps = req ? cJSON_AddArrayToObject(req, "Capabilities") :
				    NULL;
		cJSON *set = cJSON_CreateStringArray(gpu_cap, 1);

		if (req != NULL && !cJSON_AddItemToArray(reqs, req)) {
			cJSON_Delete(req);
			caps = NULL;
		}
		if (caps == NULL || set == NULL ||
		    !cJSON_AddItemToArray(caps, set)) {
			cJSON_Delete(set);
			ok = false;
		}
		ok = ok && cJSON_AddStringToObject(req, "Driver", "nvidia") &&
		     add_strings(req, "DeviceIDs", gpus, c->n_gpus);
	}
	if (ok)
		text = cJSON_PrintUnformatted(doc);
	cJSON_Delete(doc);
	return text;
}

/* Returns the engine's message from an error reply, or the status. */
static char *engine_words(long http, const nvcf__buf *body)
{
	cJSON *doc = body->data ? cJSON_ParseWithLength(body->data, body->len) :
				  NULL;
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(doc, "message");
	char *text = cJSON_IsString(m) ?
		     nvcf__asprintf("%ld %s", http, m->valuestring) :
		     nvcf__asprintf("HTTP status %ld", http);

	cJSON_Delete(doc);
	return text;
}

/*
 * POST /containers/create?name=NAME with bind mounts. Returns NVCF_OK
 * with *id set, NVCF_ECONFLICT when the name is taken, else an error
 * whose message names the container and the engine's reason.
 */
static nvcf_status run_create(nvcf__crt *rt, nvcf__crt_ctr *c, char **id)
{
	char *body = run_body(c), *url, *words;
	struct curl_slist *headers = NULL;
	nvcf__buf reply = {0};
	nvcf_status st = NVCF_OK;
	long http = 0;
	CURLcode rc;
	CURL *h;

	*id = NULL;
	/* container_name() allows [a-zA-Z0-9_.-] only, so no escaping. */
	url = nvcf__asprintf("http://localhost" NVCF__DOCKER_API
			     "/containers/create?name=%s", c->name);
	h = curl_easy_init();
	if (body == NULL || url == NULL || h == NULL) {
		st = nvcf__error_oom();
		goto out;
	}
	headers = curl_slist_append(headers, "Expect:");
	headers = curl_slist_append(headers, "Content-Type: application/json");
	curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, rt->socket_path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 60000L);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &reply);
	rc = curl_easy_perform(h);
	if (rc != CURLE_OK) {
		st = nvcf__error_set(NVCF_EUNAVAILABLE, "creating container "
				     "%s: the engine at %s did not answer: %s",
				     c->name, rt->socket_path,
				     curl_easy_strerror(rc));
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &http);
	if (http == 200 || http == 201) {
		cJSON *doc = cJSON_ParseWithLength(reply.data ? reply.data : "",
						   reply.len);
		const cJSON *cid = cJSON_GetObjectItemCaseSensitive(doc, "Id");

		if (cJSON_IsString(cid))
			*id = nvcf__strdup(cid->valuestring);
		else
			st = nvcf__error_set(NVCF_EPROTO, "creating container "
					     "%s: the engine's reply has no "
					     "Id", c->name);
		if (st == NVCF_OK && *id == NULL)
			st = nvcf__error_oom();
		cJSON_Delete(doc);
		goto out;
	}
	words = engine_words(http, &reply);
	st = nvcf__error_set(http == 409 || (words && strstr(words,
				"already in use")) ? NVCF_ECONFLICT :
			     http == 404 ? NVCF_ENOTFOUND : NVCF_EIO,
			     "creating container %s for image %s: %s",
			     c->name, c->image, words ? words : "failed");
	free(words);
out:
	nvcf__buf_free(&reply);
	curl_slist_free_all(headers);
	if (h != NULL)
		curl_easy_cleanup(h);
	free(url);
	free(body);
	return st;
}

char *nvcf__crt_run(nvcf__crt *rt, nvcf__crt_ctr *c)
{
	char *error = NULL, *id = NULL;
	nvcf_status st;

	pthread_mutex_lock(&c->lock);
	if (load_flag(&c->removed)) {
		error = nvcf__strdup("the task was stopped before its "
				     "container started");
		goto out;
	}
	if (nvcf__docker_image_ensure(rt->d, c->image, NULL) != NVCF_OK) {
		error = nvcf__strdup(nvcf_error_last()->message);
		goto out;
	}
	st = run_create(rt, c, &id);
	if (st == NVCF_ECONFLICT) {
		nvcf_log_warn(SUB, "container name %s is taken; removing the "
			      "old container", c->name);
		remove_quietly(rt, c->name);
		st = run_create(rt, c, &id);
	}
	if (st != NVCF_OK) {
		error = nvcf__asprintf("container could not be created: %s",
				       nvcf_error_last()->message);
		goto out;
	}
	c->id = id;
	if (nvcf__docker_start(rt->d, id) != NVCF_OK) {
		error = nvcf__asprintf("container %s could not be started: %s",
				       c->name, nvcf_error_last()->message);
		nvcf__crt_save_logs(rt, c);
		remove_quietly(rt, id);
		c->id = NULL;
		free(id);
		goto out;
	}
	nvcf_log_info(SUB, "container %s (%.12s) of image %s started with "
		      "%zu bind mounts", c->name, id, c->image, c->bind_count);
out:
	pthread_mutex_unlock(&c->lock);
	return error;
}

nvcf_status nvcf__crt_exit_status(nvcf__crt *rt, nvcf__crt_ctr *c,
				  bool *done, int *exit_code, bool *oom_killed)
{
	nvcf__docker_state s = {0};
	nvcf_status st;

	*done = false;
	*exit_code = -1;
	if (oom_killed != NULL)
		*oom_killed = false;
	if (rt == NULL || c == NULL || c->id == NULL)
		return nvcf__error_set(NVCF_EINVAL, "container exit status: "
				       "the container was not created; call "
				       "nvcf__crt_run() first");
	st = nvcf__docker_inspect(rt->d, c->id, 0, &s);
	if (st == NVCF_ENOTFOUND) {
		*done = true;
		return NVCF_OK;
	}
	if (st != NVCF_OK)
		return st;
	if (s.status == NVCF__DOCKER_EXITED || s.status == NVCF__DOCKER_DEAD) {
		*done = true;
		*exit_code = s.exit_code;
		if (oom_killed != NULL)
			*oom_killed = s.oom_killed;
	}
	nvcf__docker_state_clear(&s);
	return NVCF_OK;
}
