/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "agent_internal.h"
#include "bus/bus_internal.h"
#include "nvcf.pb-c.h"
#include "nvcf/agent.h"

#define SUB "agent"
#define FETCH_EXPIRY_MS 1000
#define LAST_OUTPUT_LINES 20
#define MAX_GPUS_PER_INSTANCE 64
#define DEFAULT_HEALTH_URI "/v2/health/ready"
#define DEFAULT_PROBE_TIMEOUT_MS 10000

extern char **environ;

typedef enum inst_state {
	INST_STARTING,
	INST_RUNNING,
	INST_TERMINATED,
	INST_ERRORED
} inst_state;

static const char *const state_names[] = {"STARTING", "RUNNING",
					  "TERMINATED", "ERRORED"};

typedef struct icms icms;

typedef struct instance {
	struct instance *next;
	struct nvcf_agent *agent;
	icms *req;
	char id[NVCF_UUID_LEN + 1];
	char *function_id, *version_id, *nca_id, *gpu_spec_id;
	char *gpu, *instance_type, *function_json;
	int concurrency;
	unsigned int gpus[MAX_GPUS_PER_INSTANCE];
	unsigned int n_gpus;
	bool gpus_held;
	int port;
	pid_t pid, worker_pid;
	bool pid_exited, worker_exited;
	bool stopping;
	inst_state state;
	char *error, *last_output;
	int64_t created_us, updated_us;
	char log_path[512];
	/* Serialises KV writes so that the last write has the last state. */
	pthread_mutex_t write_lock;
} instance;

struct icms {
	char *id, *function_id, *version_id, *nca_id, *gpu, *instance_type;
	int count;
	int pending;   /* instances not yet RUNNING or failed */
	int failed;
	char *error;
	const char *status;
	cJSON *instance_ids;
	int64_t created_us;
	int refs;
	pthread_mutex_t write_lock;
};

struct nvcf_agent {
	nvcf_bus *bus;
	jsCtx *js;
	nvcf__backend *backend;
	nvcf__gpu_pool *pool;
	char *state_dir, *worker_path, *nats_url, *worker_log_level;
	char bucket[160];
	int64_t start_timeout_ms, grace_ms, heartbeat_ms;

	pthread_mutex_t lock;
	pthread_cond_t cond;       /* any state change; heartbeat sleeps */
	pthread_cond_t child_cond; /* a child was spawned */
	instance *instances;
	int children;              /* spawned and not yet reaped */
	int busy;                  /* start-up and stop threads running */
	bool stopping, stopped;
	bool reaper_stop;

	natsSubscription *create_sub, *terminate_sub;
	pthread_t create_thread, terminate_thread, heartbeat_thread, reaper;
	bool create_started, terminate_started, heartbeat_started;
	bool reaper_started;
};

/* ---- small helpers ------------------------------------------------------ */

static void deadline_after(struct timespec *ts, int64_t ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static char *dup_str(const char *s)
{
	return nvcf__strdup(s ? s : "");
}

static void add_time(cJSON *obj, const char *name, int64_t us)
{
	char stamp[32];

	nvcf__iso8601(us, stamp);
	cJSON_AddStringToObject(obj, name, stamp);
}

static void kv_put_json(nvcf_agent *a, const char *bucket, const char *key,
			cJSON *obj)
{
	char *text = obj ? cJSON_PrintUnformatted(obj) : NULL;

	if (text == NULL) {
		nvcf_log_error(SUB, "out of memory writing %s/%s", bucket,
			       key);
		return;
	}
	if (nvcf_bus_kv_put(a->bus, bucket, key, text, strlen(text), NULL) !=
	    NVCF_OK)
		nvcf_log_error(SUB, "writing %s/%s failed: %s", bucket, key,
			       nvcf_error_last()->message);
	free(text);
}

/* Picks a free loopback port; the function binds it moments later. */
static int free_port(void)
{
	struct sockaddr_in addr = {0};
	socklen_t len = sizeof(addr);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int port = -1;

	if (fd < 0)
		return -1;
	addr.sin_family = AF_INET;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&addr, &len) == 0)
		port = ntohs(addr.sin_port);
	close(fd);
	return port;
}

/* Returns the last @p lines lines of a file, or NULL. */
static char *tail_file(const char *path, int lines)
{
	char buf[65536];
	ssize_t n;
	off_t size;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t start;
	int seen = 0;

	if (fd < 0)
		return NULL;
	size = lseek(fd, 0, SEEK_END);
	if (size > (off_t)sizeof(buf) - 1)
		lseek(fd, size - (off_t)sizeof(buf) + 1, SEEK_SET);
	else
		lseek(fd, 0, SEEK_SET);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return nvcf__strdup("");
	buf[n] = '\0';
	start = (size_t)n;
	if (start > 0 && buf[start - 1] == '\n')
		start--;
	while (start > 0) {
		if (buf[start - 1] == '\n' && ++seen == lines)
			break;
		start--;
	}
	return nvcf__strdup(buf + start);
}

static char *exit_text(const char *what, int status)
{
	if (WIFEXITED(status))
		return nvcf__asprintf("%s exited with status %d", what,
				      WEXITSTATUS(status));
	if (WIFSIGNALED(status))
		return nvcf__asprintf("%s was killed by signal %d (%s)", what,
				      WTERMSIG(status),
				      strsignal(WTERMSIG(status)));
	return nvcf__asprintf("%s ended (wait status %d)", what, status);
}

/* ---- records ------------------------------------------------------------ */

static void instance_write(instance *in)
{
	nvcf_agent *a = in->agent;
	cJSON *obj, *gpus;
	char key[192];

	pthread_mutex_lock(&in->write_lock);
	obj = cJSON_CreateObject();
	pthread_mutex_lock(&a->lock);
	cJSON_AddStringToObject(obj, "instanceId", in->id);
	cJSON_AddStringToObject(obj, "functionId", in->function_id);
	cJSON_AddStringToObject(obj, "functionVersionId", in->version_id);
	cJSON_AddStringToObject(obj, "ncaId", in->nca_id);
	cJSON_AddStringToObject(obj, "clusterId",
				a->backend->spec.cluster_id);
	cJSON_AddStringToObject(obj, "icmsRequestId", in->req->id);
	cJSON_AddStringToObject(obj, "gpuSpecificationId", in->gpu_spec_id);
	cJSON_AddStringToObject(obj, "gpu", in->gpu);
	cJSON_AddStringToObject(obj, "instanceType", in->instance_type);
	cJSON_AddStringToObject(obj, "instanceStatus", state_names[in->state]);
	gpus = cJSON_AddArrayToObject(obj, "gpus");
	for (unsigned int i = 0; gpus && i < in->n_gpus; i++)
		cJSON_AddItemToArray(gpus, cJSON_CreateNumber(in->gpus[i]));
	if (in->port > 0)
		cJSON_AddNumberToObject(obj, "port", in->port);
	if (in->pid > 0)
		cJSON_AddNumberToObject(obj, "pid", in->pid);
	if (in->worker_pid > 0)
		cJSON_AddNumberToObject(obj, "workerPid", in->worker_pid);
	if (in->error != NULL)
		cJSON_AddStringToObject(obj, "error", in->error);
	if (in->last_output != NULL)
		cJSON_AddStringToObject(obj, "lastOutput", in->last_output);
	cJSON_AddStringToObject(obj, "location", a->backend->spec.region);
	add_time(obj, "instanceCreatedAt", in->created_us);
	add_time(obj, "instanceUpdatedAt", in->updated_us);
	pthread_mutex_unlock(&a->lock);
	snprintf(key, sizeof(key), "%s.%s", in->version_id, in->id);
	kv_put_json(a, NVCF_BUCKET_INSTANCES, key, obj);
	cJSON_Delete(obj);
	pthread_mutex_unlock(&in->write_lock);
}

static void icms_write(nvcf_agent *a, icms *r)
{
	cJSON *obj;
	char key[192];

	pthread_mutex_lock(&r->write_lock);
	obj = cJSON_CreateObject();
	pthread_mutex_lock(&a->lock);
	cJSON_AddStringToObject(obj, "icmsRequestId", r->id);
	cJSON_AddStringToObject(obj, "status", r->status);
	cJSON_AddStringToObject(obj, "functionId", r->function_id);
	cJSON_AddStringToObject(obj, "functionVersionId", r->version_id);
	cJSON_AddStringToObject(obj, "ncaId", r->nca_id);
	cJSON_AddStringToObject(obj, "gpu", r->gpu);
	cJSON_AddStringToObject(obj, "instanceType", r->instance_type);
	cJSON_AddNumberToObject(obj, "instanceCount", r->count);
	cJSON_AddItemToObject(obj, "instanceIds",
			      cJSON_Duplicate(r->instance_ids, true));
	if (r->error != NULL)
		cJSON_AddStringToObject(obj, "error", r->error);
	add_time(obj, "createdAt", r->created_us);
	add_time(obj, "updatedAt", nvcf__now_us());
	pthread_mutex_unlock(&a->lock);
	snprintf(key, sizeof(key), "icms.%s", r->id);
	kv_put_json(a, a->bucket, key, obj);
	cJSON_Delete(obj);
	pthread_mutex_unlock(&r->write_lock);
}

static void icms_unref(icms *r)
{
	if (r == NULL || --r->refs > 0)
		return;
	free(r->id);
	free(r->function_id);
	free(r->version_id);
	free(r->nca_id);
	free(r->gpu);
	free(r->instance_type);
	free(r->error);
	cJSON_Delete(r->instance_ids);
	pthread_mutex_destroy(&r->write_lock);
	free(r);
}

/* Called with the agent lock held; appends @p error to the request's. */
static void icms_note_error(icms *r, const char *error)
{
	char *joined;

	if (error == NULL)
		return;
	joined = r->error ? nvcf__asprintf("%s; %s", r->error, error) :
			    nvcf__strdup(error);
	if (joined != NULL) {
		free(r->error);
		r->error = joined;
	}
}

/* Records that one instance of a request is RUNNING or has failed. */
static void icms_instance_done(nvcf_agent *a, instance *in, bool ok)
{
	icms *r = in->req;
	bool last;

	pthread_mutex_lock(&a->lock);
	if (!ok) {
		r->failed++;
		icms_note_error(r, in->error);
	}
	last = --r->pending == 0;
	if (last)
		r->status = r->failed ? "failed" : "completed";
	pthread_mutex_unlock(&a->lock);
	if (last)
		icms_write(a, r);
}

static void cluster_write(nvcf_agent *a)
{
	const nvcf__backend_spec *s = &a->backend->spec;
	cJSON *obj = cJSON_CreateObject();
	cJSON *attrs, *gpus;

	cJSON_AddStringToObject(obj, "clusterId", s->cluster_id);
	cJSON_AddStringToObject(obj, "name", s->cluster_name);
	cJSON_AddStringToObject(obj, "group", s->cluster_group);
	cJSON_AddStringToObject(obj, "region", s->region);
	attrs = cJSON_AddArrayToObject(obj, "attributes");
	for (unsigned int i = 0; attrs && i < s->attributes_count; i++)
		cJSON_AddItemToArray(attrs,
				     cJSON_CreateString(s->attributes[i]));
	gpus = cJSON_AddArrayToObject(obj, "gpus");
	pthread_mutex_lock(&a->lock);
	for (unsigned int i = 0; gpus && i < s->gpus_count; i++) {
		const nvcf__backend_gpu *g = &s->gpus[i];
		cJSON *go = cJSON_CreateObject(), *types;

		cJSON_AddStringToObject(go, "name", g->name);
		cJSON_AddNumberToObject(go, "capacity", g->capacity);
		cJSON_AddNumberToObject(go, "allocated",
					nvcf__gpu_allocated(a->pool, g->name));
		types = cJSON_AddArrayToObject(go, "instanceTypes");
		for (unsigned int j = 0; j < g->instance_types_count; j++) {
			const nvcf__instance_type *t = &g->instance_types[j];
			cJSON *to = cJSON_CreateObject();

			cJSON_AddStringToObject(to, "name", t->name);
			cJSON_AddStringToObject(to, "description",
						t->description ?
						t->description : "");
			cJSON_AddBoolToObject(to, "default", t->is_default);
			cJSON_AddNumberToObject(to, "gpuCount", t->gpu_count);
			cJSON_AddItemToArray(types, to);
		}
		cJSON_AddItemToArray(gpus, go);
	}
	pthread_mutex_unlock(&a->lock);
	add_time(obj, "heartbeatAt", nvcf__now_us());
	cJSON_AddStringToObject(obj, "health", "healthy");
	kv_put_json(a, NVCF_BUCKET_CLUSTERS, s->cluster_id, obj);
	cJSON_Delete(obj);
}

/* ---- processes ---------------------------------------------------------- */

/*
 * Starts @p path in its own process group with default signal handling
 * (the daemon blocks SIGTERM in every thread, and children inherit the
 * mask). Called with the agent lock held, so that the reaper cannot reap
 * the child before the caller has recorded its pid.
 */
static int spawn_locked(nvcf_agent *a, const char *path, char *const argv[],
			char *const envp[], const char *log_path, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	int rc;

	sigemptyset(&none);
	sigfillset(&all);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP |
				 POSIX_SPAWN_SETSIGMASK |
				 POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (log_path != NULL) {
		posix_spawn_file_actions_addopen(&fa, 1, log_path,
						 O_WRONLY | O_CREAT | O_APPEND,
						 0644);
		posix_spawn_file_actions_adddup2(&fa, 1, 2);
	}
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	rc = posix_spawn(pid, path, &fa, &attr, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (rc == 0) {
		a->children++;
		pthread_cond_broadcast(&a->child_cond);
	}
	return rc;
}

static void *detach_thread(void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	pthread_t t;
	int rc;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&t, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	return rc == 0 ? arg : NULL;
}

/* Called with the lock held: frees the GPUs once both processes ended. */
static void release_if_done(nvcf_agent *a, instance *in)
{
	bool fn_done = in->pid == 0 || in->pid_exited;
	bool worker_done = in->worker_pid == 0 || in->worker_exited;

	if (in->gpus_held && fn_done && worker_done) {
		nvcf__gpu_release(a->pool, in->gpu, in->gpus, in->n_gpus);
		in->gpus_held = false;
	}
}

/* Called with the lock held. Returns false when it timed out. */
static bool wait_exit(nvcf_agent *a, const bool *exited, int64_t ms)
{
	struct timespec deadline;

	deadline_after(&deadline, ms);
	while (!*exited)
		if (pthread_cond_timedwait(&a->cond, &a->lock, &deadline) ==
		    ETIMEDOUT)
			return *exited;
	return true;
}

/*
 * Stops the worker first (it finishes what it holds), then the function's
 * process group, each with SIGTERM and SIGKILL after the grace period.
 * With @p terminate the instance ends TERMINATED unless it already failed.
 */
static void stop_instance(instance *in, bool terminate)
{
	nvcf_agent *a = in->agent;

	pthread_mutex_lock(&a->lock);
	in->stopping = true;
	if (in->worker_pid > 0 && !in->worker_exited) {
		kill(in->worker_pid, SIGTERM);
		if (!wait_exit(a, &in->worker_exited, a->grace_ms)) {
			nvcf_log_warn(SUB, "worker %d of instance %s ignored "
				      "SIGTERM for %lld ms; killing it",
				      (int)in->worker_pid, in->id,
				      (long long)a->grace_ms);
			kill(in->worker_pid, SIGKILL);
			wait_exit(a, &in->worker_exited, a->grace_ms);
		}
	}
	if (in->pid > 0 && !in->pid_exited) {
		kill(-in->pid, SIGTERM);
		if (!wait_exit(a, &in->pid_exited, a->grace_ms)) {
			nvcf_log_warn(SUB, "instance %s (pid %d) ignored "
				      "SIGTERM for %lld ms; killing its "
				      "process group", in->id, (int)in->pid,
				      (long long)a->grace_ms);
			kill(-in->pid, SIGKILL);
			wait_exit(a, &in->pid_exited, a->grace_ms);
		}
	}
	release_if_done(a, in);
	if (terminate && in->state != INST_ERRORED) {
		in->state = INST_TERMINATED;
		in->updated_us = nvcf__now_us();
	}
	pthread_mutex_unlock(&a->lock);
	instance_write(in);
}

static void *stop_main(void *arg)
{
	instance *in = arg;
	nvcf_agent *a = in->agent;

	stop_instance(in, true);
	pthread_mutex_lock(&a->lock);
	a->busy--;
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

static void *cleanup_main(void *arg)
{
	instance *in = arg;
	nvcf_agent *a = in->agent;

	stop_instance(in, false);
	pthread_mutex_lock(&a->lock);
	a->busy--;
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

/* Called with the lock held: runs @p fn on @p in in a detached thread. */
static void run_detached_locked(nvcf_agent *a, void *(*fn)(void *),
				instance *in)
{
	a->busy++;
	if (detach_thread(fn, in) == NULL) {
		a->busy--;
		nvcf_log_error(SUB, "cannot start a thread to stop instance "
			       "%s", in->id);
	}
}

/* Called with the lock held: the instance failed; stop what is left. */
static void fail_locked(nvcf_agent *a, instance *in, char *error)
{
	if (in->state == INST_ERRORED || in->state == INST_TERMINATED ||
	    in->stopping) {
		free(error);
		return;
	}
	nvcf_log_warn(SUB, "instance %s of version %s errored: %s", in->id,
		      in->version_id, error ? error : "unknown error");
	in->state = INST_ERRORED;
	free(in->error);
	in->error = error ? error : nvcf__strdup("unknown error");
	free(in->last_output);
	in->last_output = tail_file(in->log_path, LAST_OUTPUT_LINES);
	in->updated_us = nvcf__now_us();
	run_detached_locked(a, cleanup_main, in);
}

static void *reaper_main(void *arg)
{
	nvcf_agent *a = arg;

	for (;;) {
		instance *hit = NULL;
		bool write = false;
		int status = 0;
		pid_t pid;

		pthread_mutex_lock(&a->lock);
		while (a->children == 0 && !a->reaper_stop)
			pthread_cond_wait(&a->child_cond, &a->lock);
		if (a->children == 0 && a->reaper_stop) {
			pthread_mutex_unlock(&a->lock);
			break;
		}
		pthread_mutex_unlock(&a->lock);

		/*
		 * NOTE: waitpid(-1) also reaps children that an embedding
		 * program starts itself; nvca starts no others.
		 */
		pid = waitpid(-1, &status, 0);
		if (pid < 0) {
			if (errno != EINTR)
				usleep(10000);
			continue;
		}
		pthread_mutex_lock(&a->lock);
		a->children--;
		for (instance *in = a->instances; in != NULL; in = in->next) {
			if (in->pid == pid && !in->pid_exited) {
				in->pid_exited = true;
				hit = in;
				if (in->state == INST_STARTING ||
				    in->state == INST_RUNNING) {
					fail_locked(a, in, exit_text(
						"function process", status));
					write = true;
				}
				break;
			}
			if (in->worker_pid == pid && !in->worker_exited) {
				in->worker_exited = true;
				hit = in;
				if (in->state == INST_RUNNING) {
					fail_locked(a, in, exit_text(
						"worker", status));
					write = true;
				}
				break;
			}
		}
		if (hit != NULL)
			release_if_done(a, hit);
		pthread_cond_broadcast(&a->cond);
		pthread_mutex_unlock(&a->lock);
		if (hit == NULL)
			nvcf_log_debug(SUB, "reaped unknown child %d",
				       (int)pid);
		if (write && hit->state == INST_ERRORED)
			instance_write(hit);
	}
	return NULL;
}

/* ---- start-up of one instance ------------------------------------------ */

typedef struct launch {
	char *image_path;
	char *args;
	char *health_url_path;
	long expected_status;
	int64_t probe_timeout_ms;
	char *function_name;
	char **env;
	size_t n_env;
} launch;

static void launch_free(launch *l)
{
	free(l->image_path);
	free(l->args);
	free(l->health_url_path);
	free(l->function_name);
	for (size_t i = 0; i < l->n_env; i++)
		free(l->env[i]);
	free(l->env);
}

static const char *json_str(const cJSON *obj, const char *name)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);

	return cJSON_IsString(item) ? item->valuestring : NULL;
}

/* Reads what the process runtime needs from the function record. */
static char *launch_parse(const char *function_json, launch *l)
{
	cJSON *fn = cJSON_Parse(function_json ? function_json : "");
	const cJSON *health, *env, *item;
	const char *image, *uri = NULL, *timeout = NULL;
	char *error = NULL;

	memset(l, 0, sizeof(*l));
	l->expected_status = 200;
	l->probe_timeout_ms = DEFAULT_PROBE_TIMEOUT_MS;
	if (!cJSON_IsObject(fn)) {
		cJSON_Delete(fn);
		return nvcf__strdup("function record is not a JSON object");
	}
	image = json_str(fn, "containerImage");
	if (image == NULL || strncmp(image, "file:///", 8) != 0) {
		error = nvcf__asprintf("containerImage '%s' cannot run on the "
				       "process runtime: only file:// images "
				       "(file:///absolute/path/to/executable) "
				       "run here", image ? image : "");
		goto out;
	}
	l->image_path = nvcf__strdup(image + 7);
	l->args = dup_str(json_str(fn, "containerArgs"));
	l->function_name = dup_str(json_str(fn, "name"));
	health = cJSON_GetObjectItemCaseSensitive(fn, "health");
	if (cJSON_IsObject(health)) {
		uri = json_str(health, "uri");
		timeout = json_str(health, "timeout");
		item = cJSON_GetObjectItemCaseSensitive(health,
							"expectedStatusCode");
		if (cJSON_IsNumber(item) && item->valueint > 0)
			l->expected_status = item->valueint;
	}
	if (uri == NULL)
		uri = json_str(fn, "healthUri");
	l->health_url_path = dup_str(uri ? uri : DEFAULT_HEALTH_URI);
	if (timeout != NULL &&
	    nvcf__duration_parse(timeout, &l->probe_timeout_ms) != NVCF_OK) {
		error = nvcf__asprintf("invalid health.timeout '%s': use an "
				       "ISO-8601 duration such as PT10S",
				       timeout);
		goto out;
	}
	env = cJSON_GetObjectItemCaseSensitive(fn, "containerEnvironment");
	l->env = calloc((size_t)cJSON_GetArraySize(env) + 1, sizeof(char *));
	cJSON_ArrayForEach(item, env) {
		const char *k = json_str(item, "key");
		const char *v = json_str(item, "value");

		if (k != NULL && k[0] != '\0' && strchr(k, '=') == NULL &&
		    l->env != NULL)
			l->env[l->n_env++] = nvcf__asprintf("%s=%s", k,
							    v ? v : "");
	}
	if (l->image_path == NULL || l->args == NULL || l->env == NULL ||
	    l->health_url_path == NULL || l->function_name == NULL)
		error = nvcf__strdup("out of memory");
out:
	cJSON_Delete(fn);
	return error;
}

typedef struct envb {
	char **v;
	size_t n;
} envb;

static void env_set(envb *e, const char *name, const char *value)
{
	size_t nlen = strlen(name);
	char *entry = nvcf__asprintf("%s=%s", name, value ? value : "");

	if (entry == NULL)
		return;
	for (size_t i = 0; i < e->n; i++) {
		if (strncmp(e->v[i], name, nlen) == 0 && e->v[i][nlen] == '=') {
			free(e->v[i]);
			e->v[i] = entry;
			return;
		}
	}
	e->v[e->n++] = entry;
	e->v[e->n] = NULL;
}

static void env_free(envb *e)
{
	for (size_t i = 0; e->v && i < e->n; i++)
		free(e->v[i]);
	free(e->v);
}

static bool build_env(nvcf_agent *a, instance *in, const launch *l,
		      envb *e)
{
	const nvcf__backend_spec *s = &a->backend->spec;
	static const char *const inherited[] = {"PATH", "HOME", "LANG"};
	char port[16], devices[MAX_GPUS_PER_INSTANCE * 4 + 1] = "";

	e->n = 0;
	e->v = calloc(l->n_env + 32, sizeof(char *));
	if (e->v == NULL)
		return false;
	for (size_t i = 0; i < sizeof(inherited) / sizeof(inherited[0]); i++)
		if (getenv(inherited[i]) != NULL)
			env_set(e, inherited[i], getenv(inherited[i]));
	for (size_t i = 0; i < l->n_env; i++) {
		char *eq = strchr(l->env[i], '=');

		*eq = '\0';
		env_set(e, l->env[i], eq + 1);
		*eq = '=';
	}
	for (unsigned int i = 0; i < in->n_gpus; i++) {
		size_t len = strlen(devices);

		snprintf(devices + len, sizeof(devices) - len, "%s%u",
			 i ? "," : "", in->gpus[i]);
	}
	snprintf(port, sizeof(port), "%d", in->port);
	env_set(e, "PORT", port);
	env_set(e, "NVCF_INFERENCE_PORT", port);
	env_set(e, "NVCF_FUNCTION_ID", in->function_id);
	env_set(e, "NVCF_FUNCTION_VERSION_ID", in->version_id);
	env_set(e, "NVCF_FUNCTION_NAME", l->function_name);
	env_set(e, "NVCF_NCA_ID", in->nca_id);
	env_set(e, "NVCF_INSTANCETYPE", in->instance_type);
	env_set(e, "NVCF_BACKEND", s->cluster_group);
	env_set(e, "NVCF_REGION", s->region);
	env_set(e, "CUDA_VISIBLE_DEVICES", devices);
	env_set(e, "NVIDIA_VISIBLE_DEVICES", devices);
	return true;
}

static size_t discard(char *data, size_t size, size_t n, void *userdata)
{
	return size * n;
}

/* One health probe; writes what happened into @p what. */
static bool probe(CURL *c, const char *url, long expected, int64_t timeout_ms,
		  char *what, size_t size)
{
	CURLcode rc;
	long code = 0;

	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	rc = curl_easy_perform(c);
	if (rc != CURLE_OK) {
		snprintf(what, size, "%s", curl_easy_strerror(rc));
		return false;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	snprintf(what, size, "status %ld", code);
	return code == expected;
}

static void *start_main(void *arg)
{
	instance *in = arg;
	nvcf_agent *a = in->agent;
	const nvcf__backend_spec *s = &a->backend->spec;
	char port_text[16], url[256], concurrency[16], last_result[256] = "none";
	char **args = NULL, **argv = NULL, *error = NULL;
	envb env = {0};
	launch l;
	size_t argc = 0;
	bool healthy = false, ok = false;
	CURL *curl = NULL;
	int64_t deadline;
	int rc;

	instance_write(in);
	error = launch_parse(in->function_json, &l);
	if (error != NULL)
		goto failed;
	in->port = free_port();
	snprintf(port_text, sizeof(port_text), "%d", in->port);
	if (in->port <= 0) {
		error = nvcf__strdup("no free loopback port for the instance");
		goto failed;
	}
	if (nvcf__shell_split(l.args, port_text, &args, &argc) != NVCF_OK) {
		error = nvcf__asprintf("invalid containerArgs: %s",
				       nvcf_error_last()->message);
		goto failed;
	}
	argv = calloc(argc + 2, sizeof(char *));
	if (argv == NULL || !build_env(a, in, &l, &env)) {
		error = nvcf__strdup("out of memory");
		goto failed;
	}
	argv[0] = l.image_path;
	for (size_t i = 0; i < argc; i++)
		argv[i + 1] = args[i];

	pthread_mutex_lock(&a->lock);
	if (in->stopping) {
		pthread_mutex_unlock(&a->lock);
		goto done;
	}
	rc = spawn_locked(a, l.image_path, argv, env.v, in->log_path,
			  &in->pid);
	if (rc != 0) {
		pthread_mutex_unlock(&a->lock);
		error = nvcf__asprintf("cannot start '%s': %s", l.image_path,
				       strerror(rc));
		goto failed;
	}
	in->updated_us = nvcf__now_us();
	pthread_mutex_unlock(&a->lock);
	nvcf_log_info(SUB, "instance %s of version %s started: pid %d, port "
		      "%d, %u %s GPUs", in->id, in->version_id, (int)in->pid,
		      in->port, in->n_gpus, in->gpu);
	instance_write(in);

	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s%s", in->port,
		 l.health_url_path[0] == '/' ? "" : "/", l.health_url_path);
	curl = curl_easy_init();
	deadline = nvcf__mono_us() + a->start_timeout_ms * 1000;
	while (curl != NULL && nvcf__mono_us() < deadline) {
		int64_t left = (deadline - nvcf__mono_us()) / 1000;
		struct timespec ts;
		bool ended;

		pthread_mutex_lock(&a->lock);
		ended = in->pid_exited || in->stopping ||
		       in->state != INST_STARTING;
		pthread_mutex_unlock(&a->lock);
		if (ended)
			goto done;
		if (probe(curl, url, l.expected_status,
			  left < l.probe_timeout_ms ? (left > 1 ? left : 1) :
			  l.probe_timeout_ms, last_result,
			  sizeof(last_result))) {
			healthy = true;
			break;
		}
		deadline_after(&ts, 100);
		pthread_mutex_lock(&a->lock);
		if (!in->pid_exited && !in->stopping)
			pthread_cond_timedwait(&a->cond, &a->lock, &ts);
		pthread_mutex_unlock(&a->lock);
	}
	if (!healthy) {
		error = nvcf__asprintf("health check %s did not return %ld "
				       "within %lld ms (last result: %s)", url,
				       l.expected_status,
				       (long long)a->start_timeout_ms, last_result);
		goto failed;
	}

	{
		char *wargv[32];
		int n = 0;
		char fn_url[64];

		snprintf(fn_url, sizeof(fn_url), "http://127.0.0.1:%d",
			 in->port);
		snprintf(concurrency, sizeof(concurrency), "%d",
			 in->concurrency > 0 ? in->concurrency : 1);
		wargv[n++] = a->worker_path;
		wargv[n++] = "--nats";
		wargv[n++] = a->nats_url;
		wargv[n++] = "--function-id";
		wargv[n++] = in->function_id;
		wargv[n++] = "--version-id";
		wargv[n++] = in->version_id;
		wargv[n++] = "--instance-id";
		wargv[n++] = in->id;
		wargv[n++] = "--nca-id";
		wargv[n++] = in->nca_id;
		wargv[n++] = "--function-url";
		wargv[n++] = fn_url;
		wargv[n++] = "--concurrency";
		wargv[n++] = concurrency;
		wargv[n++] = "--function-name";
		wargv[n++] = l.function_name;
		wargv[n++] = "--instance-type";
		wargv[n++] = in->instance_type;
		wargv[n++] = "--backend";
		wargv[n++] = s->cluster_group;
		wargv[n++] = "--region";
		wargv[n++] = s->region;
		wargv[n++] = "--log-level";
		wargv[n++] = a->worker_log_level;
		wargv[n] = NULL;

		pthread_mutex_lock(&a->lock);
		if (in->stopping || in->pid_exited ||
		    in->state != INST_STARTING) {
			pthread_mutex_unlock(&a->lock);
			goto done;
		}
		/* The worker logs to the agent's stderr. */
		rc = spawn_locked(a, a->worker_path, wargv, environ, NULL,
				  &in->worker_pid);
		if (rc != 0) {
			pthread_mutex_unlock(&a->lock);
			error = nvcf__asprintf("cannot start worker '%s': %s",
					       a->worker_path, strerror(rc));
			goto failed;
		}
		in->state = INST_RUNNING;
		in->updated_us = nvcf__now_us();
		pthread_mutex_unlock(&a->lock);
	}
	nvcf_log_info(SUB, "instance %s RUNNING (worker pid %d)", in->id,
		      (int)in->worker_pid);
	instance_write(in);
	ok = true;
	goto done;

failed:
	pthread_mutex_lock(&a->lock);
	fail_locked(a, in, error);
	error = NULL;
	pthread_mutex_unlock(&a->lock);
	instance_write(in);
done:
	if (curl != NULL)
		curl_easy_cleanup(curl);
	free(error);
	free(argv);
	nvcf__shell_free(args);
	env_free(&env);
	launch_free(&l);
	icms_instance_done(a, in, ok);
	pthread_mutex_lock(&a->lock);
	a->busy--;
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

/* ---- orders -------------------------------------------------------------- */

static instance *instance_new(nvcf_agent *a, icms *r,
			      const Nvcf__CreateInstances *m)
{
	instance *in = calloc(1, sizeof(*in));

	if (in == NULL)
		return NULL;
	in->agent = a;
	in->req = r;
	pthread_mutex_init(&in->write_lock, NULL);
	nvcf__uuid_new(in->id);
	in->function_id = dup_str(m->function_id);
	in->version_id = dup_str(m->version_id);
	in->nca_id = dup_str(m->nca_id);
	in->gpu_spec_id = dup_str(m->gpu_specification_id);
	in->gpu = dup_str(m->gpu);
	in->instance_type = dup_str(m->instance_type);
	in->function_json = dup_str(m->function_json);
	in->concurrency = m->max_request_concurrency;
	in->state = INST_STARTING;
	in->created_us = in->updated_us = nvcf__now_us();
	snprintf(in->log_path, sizeof(in->log_path), "%s/instances/%s.log",
		 a->state_dir, in->id);
	return in;
}

static void instance_free(instance *in)
{
	free(in->function_id);
	free(in->version_id);
	free(in->nca_id);
	free(in->gpu_spec_id);
	free(in->gpu);
	free(in->instance_type);
	free(in->function_json);
	free(in->error);
	free(in->last_output);
	pthread_mutex_destroy(&in->write_lock);
	icms_unref(in->req);
	free(in);
}

/* True when an earlier delivery of this order was already handled. */
static bool icms_seen(nvcf_agent *a, const char *icms_id)
{
	char key[192], *value = NULL;
	cJSON *obj;
	bool seen = false;

	snprintf(key, sizeof(key), "icms.%s", icms_id);
	if (nvcf_bus_kv_get(a->bus, a->bucket, key, &value, NULL, NULL) !=
	    NVCF_OK)
		return false;
	obj = cJSON_Parse(value);
	seen = json_str(obj, "status") != NULL &&
	       strcmp(json_str(obj, "status"), "pending") != 0;
	cJSON_Delete(obj);
	nvcf_free(value);
	return seen;
}

static void handle_create(nvcf_agent *a, natsMsg *msg)
{
	const nvcf__backend_gpu *g = NULL;
	const nvcf__instance_type *t;
	Nvcf__CreateInstances *m;
	instance *started[256];
	int n_started = 0;
	jsErrCode jerr = 0;
	icms *r;

	m = nvcf__create_instances__unpack(
		NULL, (size_t)natsMsg_GetDataLength(msg),
		(const uint8_t *)natsMsg_GetData(msg));
	if (m == NULL || m->icms_request_id[0] == '\0' ||
	    !nvcf__uuid_valid(m->version_id) || m->instance_count < 1) {
		nvcf_log_error(SUB, "malformed creation order on '%s': %s; "
			       "terminating it", natsMsg_GetSubject(msg),
			       m == NULL ? "not a CreateInstances message" :
			       m->icms_request_id[0] == '\0' ?
			       "icms_request_id is empty" :
			       !nvcf__uuid_valid(m->version_id) ?
			       "version_id is not a UUID" :
			       "instance_count is below 1");
		natsMsg_Term(msg, NULL);
		nvcf__create_instances__free_unpacked(m, NULL);
		return;
	}
	if (icms_seen(a, m->icms_request_id)) {
		nvcf_log_info(SUB, "creation order %s already handled; "
			      "acknowledging the redelivery",
			      m->icms_request_id);
		natsMsg_AckSync(msg, NULL, &jerr);
		nvcf__create_instances__free_unpacked(m, NULL);
		return;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		natsMsg_NakWithDelay(msg, 1000, NULL);
		nvcf__create_instances__free_unpacked(m, NULL);
		return;
	}
	pthread_mutex_init(&r->write_lock, NULL);
	r->refs = 1;
	r->id = dup_str(m->icms_request_id);
	r->function_id = dup_str(m->function_id);
	r->version_id = dup_str(m->version_id);
	r->nca_id = dup_str(m->nca_id);
	r->gpu = dup_str(m->gpu);
	r->instance_type = dup_str(m->instance_type);
	r->count = m->instance_count;
	r->status = "pending";
	r->instance_ids = cJSON_CreateArray();
	r->created_us = nvcf__now_us();

	/* The record is stored before the ack, so no order is lost. */
	icms_write(a, r);
	if (natsMsg_AckSync(msg, NULL, &jerr) != NATS_OK)
		nvcf_log_warn(SUB, "acknowledging creation order %s failed "
			      "(%d)", r->id, (int)jerr);
	nvcf_log_info(SUB, "creation order %s: %d x %s %s of version %s",
		      r->id, r->count, r->gpu, r->instance_type,
		      r->version_id);

	t = nvcf__backend_find_type(a->backend, m->gpu, m->instance_type, &g);
	pthread_mutex_lock(&a->lock);
	r->status = "in-progress";
	if (t == NULL) {
		char *e = nvcf__asprintf("GPU '%s' with instance type '%s' "
					 "is not offered by cluster %s",
					 m->gpu, m->instance_type,
					 a->backend->spec.cluster_id);

		icms_note_error(r, e);
		free(e);
		r->failed = r->count;
	}
	for (int i = 0; t != NULL && i < r->count && !a->stopping; i++) {
		instance *in;

		if (n_started >= (int)(sizeof(started) / sizeof(started[0])) ||
		    nvcf__gpu_available(a->pool, m->gpu) < t->gpu_count) {
			char *e = nvcf__asprintf(
				"insufficient capacity: %d of %d instances "
				"of %s did not fit (%u of %u %s GPUs free, "
				"%u needed each)", r->count - i, r->count,
				t->name, nvcf__gpu_available(a->pool, m->gpu),
				g->capacity, g->name, t->gpu_count);

			icms_note_error(r, e);
			free(e);
			r->failed += r->count - i;
			break;
		}
		in = instance_new(a, r, m);
		if (in == NULL || nvcf__gpu_alloc(a->pool, m->gpu,
						  t->gpu_count,
						  in->gpus) != NVCF_OK) {
			if (in != NULL)
				instance_free(in);
			r->failed += r->count - i;
			icms_note_error(r, "out of memory");
			break;
		}
		r->refs++;
		in->n_gpus = t->gpu_count;
		in->gpus_held = true;
		in->next = a->instances;
		a->instances = in;
		cJSON_AddItemToArray(r->instance_ids,
				     cJSON_CreateString(in->id));
		started[n_started++] = in;
	}
	r->pending = n_started;
	if (n_started == 0)
		r->status = "failed";
	for (int i = 0; i < n_started; i++) {
		a->busy++;
		if (detach_thread(start_main, started[i]) == NULL) {
			a->busy--;
			started[i]->state = INST_ERRORED;
			started[i]->error = nvcf__strdup("cannot start a "
							 "thread");
			r->pending--;
			r->failed++;
		}
	}
	pthread_mutex_unlock(&a->lock);
	if (r->failed > 0)
		nvcf_log_warn(SUB, "creation order %s: %s", r->id,
			      r->error ? r->error : "instances failed");
	icms_write(a, r);
	cluster_write(a);
	pthread_mutex_lock(&a->lock);
	icms_unref(r);
	pthread_mutex_unlock(&a->lock);
	nvcf__create_instances__free_unpacked(m, NULL);
}

static void handle_terminate(nvcf_agent *a, natsMsg *msg)
{
	Nvcf__TerminateInstances *m;
	jsErrCode jerr = 0;
	int count = 0;

	m = nvcf__terminate_instances__unpack(
		NULL, (size_t)natsMsg_GetDataLength(msg),
		(const uint8_t *)natsMsg_GetData(msg));
	if (m == NULL || (m->version_id[0] == '\0' && m->n_instance_ids == 0)) {
		nvcf_log_error(SUB, "malformed termination order on '%s': %s; "
			       "terminating it", natsMsg_GetSubject(msg),
			       m == NULL ? "not a TerminateInstances message" :
			       "neither version_id nor instance_ids set");
		natsMsg_Term(msg, NULL);
		nvcf__terminate_instances__free_unpacked(m, NULL);
		return;
	}
	pthread_mutex_lock(&a->lock);
	for (instance *in = a->instances; in != NULL; in = in->next) {
		bool match = m->n_instance_ids == 0;

		if (m->version_id[0] != '\0' &&
		    strcmp(in->version_id, m->version_id) != 0)
			continue;
		for (size_t i = 0; i < m->n_instance_ids; i++)
			if (strcmp(m->instance_ids[i], in->id) == 0)
				match = true;
		if (!match || in->stopping || in->state == INST_TERMINATED ||
		    in->state == INST_ERRORED)
			continue;
		in->stopping = true;
		run_detached_locked(a, stop_main, in);
		count++;
	}
	pthread_mutex_unlock(&a->lock);
	nvcf_log_info(SUB, "termination order for version %s (%s): stopping "
		      "%d instances", m->version_id,
		      m->reason[0] ? m->reason : "no reason given", count);
	natsMsg_AckSync(msg, NULL, &jerr);
	nvcf__terminate_instances__free_unpacked(m, NULL);
}

static void consume(nvcf_agent *a, natsSubscription *sub,
		    void (*fn)(nvcf_agent *, natsMsg *), const char *name)
{
	while (!a->stopping) {
		natsMsgList list = {0};
		jsErrCode jerr = 0;
		natsStatus ns;

		ns = natsSubscription_Fetch(&list, sub, 1, FETCH_EXPIRY_MS,
					    &jerr);
		if (ns == NATS_TIMEOUT)
			continue;
		if (ns != NATS_OK) {
			nvcf_log_warn(SUB, "fetching %s orders failed: %s "
				      "(%d); retrying", name,
				      natsStatus_GetText(ns), (int)jerr);
			usleep(200000);
			continue;
		}
		for (int i = 0; i < list.Count; i++)
			fn(a, list.Msgs[i]);
		natsMsgList_Destroy(&list);
	}
}

static void *create_main(void *arg)
{
	nvcf_agent *a = arg;

	consume(a, a->create_sub, handle_create, "creation");
	return NULL;
}

static void *terminate_main(void *arg)
{
	nvcf_agent *a = arg;

	consume(a, a->terminate_sub, handle_terminate, "termination");
	return NULL;
}

static void *heartbeat_main(void *arg)
{
	nvcf_agent *a = arg;

	for (;;) {
		struct timespec ts;
		bool stop;

		deadline_after(&ts, a->heartbeat_ms);
		pthread_mutex_lock(&a->lock);
		while (!a->stopping &&
		       pthread_cond_timedwait(&a->cond, &a->lock, &ts) !=
		       ETIMEDOUT)
			;
		stop = a->stopping;
		pthread_mutex_unlock(&a->lock);
		if (stop)
			break;
		cluster_write(a);
	}
	return NULL;
}

/* ---- lifecycle ----------------------------------------------------------- */

static nvcf_status make_dirs(const char *dir)
{
	char *sub = nvcf__asprintf("%s/instances", dir);
	nvcf_status st = NVCF_OK;

	if (sub == NULL)
		return nvcf__error_oom();
	if ((mkdir(dir, 0755) != 0 && errno != EEXIST) ||
	    (mkdir(sub, 0755) != 0 && errno != EEXIST))
		st = nvcf__error_set(NVCF_EIO, "cannot create state directory "
				     "'%s': %s; pass a writable --state-dir",
				     sub, strerror(errno));
	free(sub);
	return st;
}

static nvcf_status bind_consumer(nvcf_agent *a, const char *stream,
				 const char *subject, natsSubscription **out)
{
	char durable[192];
	jsSubOptions so;
	jsErrCode jerr = 0;
	natsStatus ns;

	snprintf(durable, sizeof(durable), "%s-%s", stream,
		 a->backend->spec.cluster_id);
	jsSubOptions_Init(&so);
	so.Stream = stream;
	so.Consumer = durable;
	ns = js_PullSubscribe(out, a->js, subject, durable, NULL, &so, &jerr);
	if (ns != NATS_OK)
		return nvcf__bus_error(ns, jerr, "binding to consumer",
				       durable);
	return NVCF_OK;
}

nvcf_status nvcf_agent_new(nvcf_agent **out, const nvcf_agent_options *opts)
{
	char subject[192];
	nvcf_agent *a;
	nvcf_status st;

	if (out == NULL || opts == NULL ||
	    opts->version != NVCF_AGENT_OPTIONS_VERSION)
		return nvcf__error_set(NVCF_EINVAL,
				       "invalid agent options: use "
				       "NVCF_AGENT_OPTIONS_INIT");
	if (opts->bus == NULL || opts->config_path == NULL ||
	    opts->worker_path == NULL)
		return nvcf__error_set(NVCF_EINVAL,
				       "agent options: bus, config_path and "
				       "worker_path are required");
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return nvcf__error_oom();
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->cond, NULL);
	pthread_cond_init(&a->child_cond, NULL);
	a->stopped = true;
	a->bus = opts->bus;
	a->js = nvcf__bus_js(opts->bus);
	a->state_dir = dup_str(opts->state_dir ? opts->state_dir :
			       "./nvca-state");
	a->worker_path = dup_str(opts->worker_path);
	a->nats_url = dup_str(opts->nats_url ? opts->nats_url :
			      "nats://127.0.0.1:4222");
	a->worker_log_level = dup_str(opts->worker_log_level ?
				      opts->worker_log_level : "info");
	a->start_timeout_ms = opts->start_timeout_ms > 0 ?
			      opts->start_timeout_ms : 60000;
	a->grace_ms = opts->grace_ms > 0 ? opts->grace_ms : 10000;
	a->heartbeat_ms = opts->heartbeat_ms > 0 ? opts->heartbeat_ms : 5000;
	if (a->state_dir == NULL || a->worker_path == NULL ||
	    a->nats_url == NULL || a->worker_log_level == NULL) {
		nvcf_agent_free(a);
		return nvcf__error_oom();
	}
	if ((st = nvcf__backend_load(opts->config_path, &a->backend)) !=
		    NVCF_OK ||
	    (st = nvcf__gpu_pool_new(&a->pool, a->backend)) != NVCF_OK ||
	    (st = make_dirs(a->state_dir)) != NVCF_OK ||
	    (st = nvcf_bus_ensure_control(a->bus)) != NVCF_OK ||
	    (st = nvcf_bus_ensure_cluster(a->bus,
					  a->backend->spec.cluster_id)) !=
		    NVCF_OK) {
		nvcf_agent_free(a);
		return st;
	}
	snprintf(a->bucket, sizeof(a->bucket), "nvca_%s",
		 a->backend->spec.cluster_id);
	snprintf(subject, sizeof(subject), "Create.NVCA.*.%s.*.*",
		 a->backend->spec.cluster_id);
	if ((st = bind_consumer(a, NVCF_STREAM_CREATION, subject,
				&a->create_sub)) != NVCF_OK) {
		nvcf_agent_free(a);
		return st;
	}
	snprintf(subject, sizeof(subject), "Terminate.NVCA.%s",
		 a->backend->spec.cluster_id);
	if ((st = bind_consumer(a, NVCF_STREAM_TERMINATION, subject,
				&a->terminate_sub)) != NVCF_OK) {
		nvcf_agent_free(a);
		return st;
	}
	cluster_write(a);

	a->stopped = false;
	a->reaper_started =
		pthread_create(&a->reaper, NULL, reaper_main, a) == 0;
	a->heartbeat_started =
		pthread_create(&a->heartbeat_thread, NULL, heartbeat_main,
			       a) == 0;
	a->create_started =
		pthread_create(&a->create_thread, NULL, create_main, a) == 0;
	a->terminate_started =
		pthread_create(&a->terminate_thread, NULL, terminate_main,
			       a) == 0;
	if (!a->reaper_started || !a->heartbeat_started ||
	    !a->create_started || !a->terminate_started) {
		nvcf_agent_free(a);
		return nvcf__error_set(NVCF_ERROR,
				       "cannot start the agent's threads");
	}
	nvcf_log_info(SUB, "cluster %s (group %s, region %s) ready; state "
		      "in %s", a->backend->spec.cluster_id,
		      a->backend->spec.cluster_group,
		      a->backend->spec.region, a->state_dir);
	*out = a;
	return NVCF_OK;
}

void nvcf_agent_stop(nvcf_agent *a)
{
	int count = 0;

	if (a == NULL)
		return;
	pthread_mutex_lock(&a->lock);
	if (a->stopped) {
		pthread_mutex_unlock(&a->lock);
		return;
	}
	a->stopped = true;
	a->stopping = true;
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->lock);

	if (a->create_started)
		pthread_join(a->create_thread, NULL);
	if (a->terminate_started)
		pthread_join(a->terminate_thread, NULL);
	if (a->heartbeat_started)
		pthread_join(a->heartbeat_thread, NULL);
	a->create_started = a->terminate_started = false;
	a->heartbeat_started = false;

	pthread_mutex_lock(&a->lock);
	for (instance *in = a->instances; in != NULL; in = in->next) {
		if (in->stopping || in->state == INST_TERMINATED ||
		    in->state == INST_ERRORED)
			continue;
		in->stopping = true;
		run_detached_locked(a, stop_main, in);
		count++;
	}
	nvcf_log_info(SUB, "stopping %d instances", count);
	/* Start-up, stop and clean-up threads all end before the reaper. */
	while (a->busy > 0)
		pthread_cond_wait(&a->cond, &a->lock);
	a->reaper_stop = true;
	pthread_cond_broadcast(&a->child_cond);
	pthread_mutex_unlock(&a->lock);
	if (a->reaper_started)
		pthread_join(a->reaper, NULL);
	a->reaper_started = false;
}

void nvcf_agent_free(nvcf_agent *a)
{
	if (a == NULL)
		return;
	nvcf_agent_stop(a);
	if (a->create_sub != NULL) {
		natsSubscription_Unsubscribe(a->create_sub);
		natsSubscription_Destroy(a->create_sub);
	}
	if (a->terminate_sub != NULL) {
		natsSubscription_Unsubscribe(a->terminate_sub);
		natsSubscription_Destroy(a->terminate_sub);
	}
	while (a->instances != NULL) {
		instance *next = a->instances->next;

		instance_free(a->instances);
		a->instances = next;
	}
	nvcf__gpu_pool_free(a->pool);
	nvcf__backend_free(a->backend);
	free(a->state_dir);
	free(a->worker_path);
	free(a->nats_url);
	free(a->worker_log_level);
	pthread_cond_destroy(&a->child_cond);
	pthread_cond_destroy(&a->cond);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

const char *nvcf_agent_cluster_id(const nvcf_agent *a)
{
	return a && a->backend ? a->backend->spec.cluster_id : NULL;
}

nvcf_status nvcf_agent_metrics(nvcf_agent *a, char **text_out)
{
	nvcf__buf out = {0};
	int counts[4] = {0};
	nvcf_status st = NVCF_OK;

	if (a == NULL || text_out == NULL)
		return nvcf__error_set(NVCF_EINVAL,
				       "nvcf_agent_metrics: NULL argument");
	pthread_mutex_lock(&a->lock);
	for (instance *in = a->instances; in != NULL; in = in->next)
		counts[in->state]++;
	st = nvcf__buf_printf(&out, "# TYPE nvca_instances gauge\n");
	for (int i = 0; st == NVCF_OK && i < 4; i++)
		st = nvcf__buf_printf(&out,
				      "nvca_instances{state=\"%s\"} %d\n",
				      state_names[i], counts[i]);
	if (st == NVCF_OK)
		st = nvcf__buf_printf(&out, "# TYPE nvca_gpus_allocated "
				      "gauge\n# TYPE nvca_gpus_capacity "
				      "gauge\n");
	for (unsigned int i = 0; st == NVCF_OK &&
	     i < a->backend->spec.gpus_count; i++) {
		const nvcf__backend_gpu *g = &a->backend->spec.gpus[i];

		st = nvcf__buf_printf(&out,
				      "nvca_gpus_allocated{gpu=\"%s\"} %u\n"
				      "nvca_gpus_capacity{gpu=\"%s\"} %u\n",
				      g->name,
				      nvcf__gpu_allocated(a->pool, g->name),
				      g->name, g->capacity);
	}
	pthread_mutex_unlock(&a->lock);
	if (st != NVCF_OK) {
		nvcf__buf_free(&out);
		return nvcf__error_oom();
	}
	*text_out = out.data;
	return NVCF_OK;
}
