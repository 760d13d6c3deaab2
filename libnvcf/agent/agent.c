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
#include "container_rt.h"
#include "helm.h"
#include "bus/bus_internal.h"
#include "nvcf.pb-c.h"
#include "nvcf/agent.h"
#include "nvcf/crd.h"
#include "task.h"

#define SUB "agent"
#define FETCH_EXPIRY_MS 1000
#define LAST_OUTPUT_LINES 20
#define MAX_GPUS_PER_INSTANCE 64
#define DEFAULT_HEALTH_URI "/v2/health/ready"
#define DEFAULT_PROBE_TIMEOUT_MS 10000
#define INSTANCE_ID_MAX 128
#define ADOPT_PROBE_MS 2000

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
	char *icms_id;
	char id[INSTANCE_ID_MAX];
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
	/* Started by an earlier agent. It is not our child, so /proc is
	 * polled for its end. */
	bool adopted;
	/* Its ICMSRequest deleted it, so an errored one counts as ended. */
	bool deleted;
	/* Its container when the function runs as one (container_rt.c). */
	nvcf__crt_ctr *ctr;
	/* Its MiniService when the function is a Helm chart (helm.c). */
	nvcf__helm_ms *helm;
	inst_state state;
	char *error, *last_output;
	int64_t created_us, updated_us;
	char log_path[512];
	/* Serialises KV writes so that the last write has the last state. */
	pthread_mutex_t write_lock;
} instance;

/* State of one creation or termination order, as an ICMSRequest. */
struct icms {
	struct icms *next;
	nvcf_crd_icms *obj;
	char *stored;          /* JSON last written, to skip equal writes */
	uint64_t rev;          /* its KV revision; 0 before the first write */
	natsMsg *msg;          /* the order, held until the ACK action */
	nvcf_crd_ack_t ack;    /* result of the last ACK action */
	char *error;           /* error met performing the last actions */
	bool error_terminal;
	bool collected;        /* garbage-collected */
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

	/* ICMSRequests; rlock is taken before lock, never after it. */
	pthread_mutex_t rlock;
	icms *requests;
	nvcf_crd_options crd_opts;
	int64_t reconcile_ms, retention_ms;
	bool kicked;               /* under lock: run the reconcile loop */
	pthread_t reconcile_thread;
	bool reconcile_started;
	/* Container runtime, with --docker-socket only. */
	nvcf__crt *crt;
	/* Helm runtime (podman kube play), with --docker-socket only. */
	nvcf__helm *helm;
	/* NVCT task orders (task.c). */
	nvcf__task_runner *tasks;
};

/* ---- small helpers ------------------------------------------------------ */

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

/* Writes the instance record; @p kick runs the reconcile loop after it. */
static void instance_write_ex(instance *in, bool kick)
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
	cJSON_AddStringToObject(obj, "icmsRequestId", in->icms_id);
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
	if (nvcf__crt_id(in->ctr) != NULL)
		cJSON_AddStringToObject(obj, "containerId",
					nvcf__crt_id(in->ctr));
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
	if (kick) {
		pthread_mutex_lock(&a->lock);
		a->kicked = true;
		pthread_cond_broadcast(&a->cond);
		pthread_mutex_unlock(&a->lock);
	}
}

static void instance_write(instance *in)
{
	instance_write_ex(in, true);
}

static void cluster_write(nvcf_agent *a)
{
	const nvcf__backend_spec *s = &a->backend->spec;
	cJSON *obj = cJSON_CreateObject();
	cJSON *attrs, *gpus;
	int64_t now;

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
		/* Counted from the pool, so they match the devices handed out. */
		cJSON_AddNumberToObject(go, "allocated",
					nvcf__gpu_allocated(a->pool, g->name));
		cJSON_AddNumberToObject(go, "available",
					nvcf__gpu_available(a->pool, g->name));
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
	now = nvcf__now_us();
	add_time(obj, "heartbeatAt", now);
	/* Readers compare ages in ms; an integer spares them a time parser. */
	cJSON_AddNumberToObject(obj, "heartbeatAtMs", (double)(now / 1000));
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
	bool fn_done = (in->pid == 0 || in->pid_exited) &&
		       nvcf__crt_gone(in->ctr);
	bool worker_done = in->worker_pid == 0 || in->worker_exited;

	if (in->gpus_held && fn_done && worker_done) {
		nvcf__gpu_release(a->pool, in->gpu, in->gpus, in->n_gpus);
		in->gpus_held = false;
	}
}

/* True while @p pid exists and is not a zombie. */
static bool proc_alive(pid_t pid)
{
	char path[64], buf[512], *paren;
	ssize_t n;
	int fd;

	if (pid <= 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	paren = strrchr(buf, ')');
	return paren != NULL && paren[1] == ' ' && paren[2] != 'Z' &&
	       paren[2] != 'X';
}

/* True when /proc/{pid}/{file} holds @p needle as one NUL-ended entry
 * or, with @p next, holds the entries @p needle and @p next in a row. */
static bool proc_has(pid_t pid, const char *file, const char *needle,
		     const char *next)
{
	char path[64], buf[32768];
	size_t len = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	while (len < sizeof(buf) - 1 &&
	       (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = '\0';
	for (size_t i = 0; i < len; i += strlen(buf + i) + 1) {
		if (strcmp(buf + i, needle) != 0)
			continue;
		if (next == NULL)
			return true;
		i += strlen(buf + i) + 1;
		if (i < len && strcmp(buf + i, next) == 0)
			return true;
	}
	return false;
}

/* Called with the lock held: notes adopted processes that ended. */
static void adopted_check_locked(instance *in)
{
	if (!in->adopted)
		return;
	if (in->pid > 0 && !in->pid_exited && !proc_alive(in->pid))
		in->pid_exited = true;
	if (in->worker_pid > 0 && !in->worker_exited &&
	    !proc_alive(in->worker_pid))
		in->worker_exited = true;
}

/*
 * Called with the lock held. Returns false when it timed out. Adopted
 * processes are not our children, so the reaper never reports them:
 * their end is polled instead.
 */
static bool wait_exit(nvcf_agent *a, instance *in, const bool *exited,
		      int64_t ms)
{
	int64_t deadline = nvcf__mono_us() + ms * 1000;

	for (;;) {
		struct timespec ts;
		int64_t left;

		adopted_check_locked(in);
		if (*exited)
			return true;
		left = (deadline - nvcf__mono_us()) / 1000;
		if (left <= 0)
			return false;
		nvcf__deadline_after(&ts, in->adopted && left > 50 ? 50 : left);
		pthread_cond_timedwait(&a->cond, &a->lock, &ts);
	}
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
		if (!wait_exit(a, in, &in->worker_exited, a->grace_ms)) {
			nvcf_log_warn(SUB, "worker %d of instance %s ignored "
				      "SIGTERM for %lld ms; killing it",
				      (int)in->worker_pid, in->id,
				      (long long)a->grace_ms);
			kill(in->worker_pid, SIGKILL);
			wait_exit(a, in, &in->worker_exited, a->grace_ms);
		}
	}
	if (in->ctr != NULL && !nvcf__crt_gone(in->ctr)) {
		/* Engine calls take seconds; the agent must not wait. */
		pthread_mutex_unlock(&a->lock);
		nvcf__crt_remove(a->crt, in->ctr, a->grace_ms);
		pthread_mutex_lock(&a->lock);
	}
	if (in->helm != NULL) {
		pthread_mutex_unlock(&a->lock);
		nvcf__helm_ms_down(in->helm);
		pthread_mutex_lock(&a->lock);
	}
	if (in->pid > 0 && !in->pid_exited) {
		kill(-in->pid, SIGTERM);
		if (!wait_exit(a, in, &in->pid_exited, a->grace_ms)) {
			nvcf_log_warn(SUB, "instance %s (pid %d) ignored "
				      "SIGTERM for %lld ms; killing its "
				      "process group", in->id, (int)in->pid,
				      (long long)a->grace_ms);
			kill(-in->pid, SIGKILL);
			wait_exit(a, in, &in->pid_exited, a->grace_ms);
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
		if (hit == NULL && !nvcf__task_reaped(a->tasks, pid, status))
			nvcf_log_debug(SUB, "reaped unknown child %d",
				       (int)pid);
		if (write && hit->state == INST_ERRORED)
			instance_write(hit);
	}
	return NULL;
}

/* The container runtime found a watched container failed. */
static void container_failed(void *ctx, const char *message)
{
	instance *in = ctx;
	nvcf_agent *a;
	bool write;

	if (in == NULL)
		return;
	a = in->agent;
	pthread_mutex_lock(&a->lock);
	write = !in->stopping && (in->state == INST_STARTING ||
				  in->state == INST_RUNNING);
	if (write)
		fail_locked(a, in, nvcf__strdup(message));
	pthread_mutex_unlock(&a->lock);
	if (write)
		instance_write(in);
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
	bool container; /* image_path is an image reference */
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
static char *launch_parse(const char *function_json, launch *l,
			  bool containers)
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
	l->container = containers && image != NULL && image[0] != '\0' &&
		       strncmp(image, "file://", 7) != 0;
	if (!l->container && json_str(fn, "helmChart") == NULL &&
	    (image == NULL || strncmp(image, "file:///", 8) != 0)) {
		error = nvcf__asprintf("containerImage '%s' cannot run on the "
				       "process runtime: only file:// images "
				       "(file:///absolute/path/to/executable) "
				       "run here", image ? image : "");
		goto out;
	}
	l->image_path = nvcf__strdup(l->container ? image :
				     image ? image + 7 : "");
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

static bool build_env(nvcf_agent *a, instance *in, const launch *l,
		      nvcf__env *e)
{
	const nvcf__backend_spec *s = &a->backend->spec;
	static const char *const inherited[] = {"PATH", "HOME", "LANG"};
	char port[16], devices[MAX_GPUS_PER_INSTANCE * 4 + 1] = "";

	/* A container keeps its image's PATH and HOME. */
	for (size_t i = 0; i < sizeof(inherited) / sizeof(inherited[0]); i++)
		if (!l->container && getenv(inherited[i]) != NULL)
			nvcf__env_set(e, inherited[i], getenv(inherited[i]));
	for (size_t i = 0; i < l->n_env; i++) {
		char *eq = strchr(l->env[i], '=');

		*eq = '\0';
		nvcf__env_set(e, l->env[i], eq + 1);
		*eq = '=';
	}
	for (unsigned int i = 0; i < in->n_gpus; i++) {
		size_t len = strlen(devices);

		snprintf(devices + len, sizeof(devices) - len, "%s%u",
			 i ? "," : "", in->gpus[i]);
	}
	snprintf(port, sizeof(port), "%d", in->port);
	nvcf__env_set(e, "PORT", port);
	nvcf__env_set(e, "NVCF_INFERENCE_PORT", port);
	/* Lets a restarted agent tell this process from a reused pid. */
	nvcf__env_set(e, "NVCF_INSTANCE_ID", in->id);
	nvcf__env_set(e, "NVCF_FUNCTION_ID", in->function_id);
	nvcf__env_set(e, "NVCF_FUNCTION_VERSION_ID", in->version_id);
	nvcf__env_set(e, "NVCF_FUNCTION_NAME", l->function_name);
	nvcf__env_set(e, "NVCF_NCA_ID", in->nca_id);
	nvcf__env_set(e, "NVCF_INSTANCETYPE", in->instance_type);
	nvcf__env_set(e, "NVCF_BACKEND", s->cluster_group);
	nvcf__env_set(e, "NVCF_REGION", s->region);
	nvcf__env_set(e, "CUDA_VISIBLE_DEVICES", devices);
	nvcf__env_set(e, "NVIDIA_VISIBLE_DEVICES", devices);
	return e->v != NULL;
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

/* Starts the container of @p in; returns NULL or an error message. */
static char *container_start(nvcf_agent *a, instance *in, const launch *l,
			     char **args, size_t argc, char **envv)
{
	nvcf__crt_spec spec = NVCF__CRT_SPEC_INIT;
	nvcf__crt_ctr *c = NULL;
	int host_port = 0;
	char *error;

	spec.image = l->image_path;
	spec.cmd = args;
	spec.cmd_count = argc;
	spec.env = envv;
	spec.gpus = in->gpus;
	spec.n_gpus = in->n_gpus;
	spec.cluster_id = a->backend->spec.cluster_id;
	spec.function_id = in->function_id;
	spec.version_id = in->version_id;
	spec.instance_id = in->id;
	spec.container_port = in->port;
	spec.health_path = l->health_url_path;
	spec.expected_status = l->expected_status;
	spec.log_path = in->log_path;
	spec.ctx = in;
	if (nvcf__crt_ctr_new(&c, &spec) != NVCF_OK)
		return nvcf__strdup(nvcf_error_last()->message);
	pthread_mutex_lock(&a->lock);
	if (in->stopping) {
		pthread_mutex_unlock(&a->lock);
		nvcf__crt_ctr_free(c);
		return NULL;
	}
	/* Set first, so that a stop from now on removes the container. */
	in->ctr = c;
	pthread_mutex_unlock(&a->lock);
	error = nvcf__crt_start(a->crt, c, &host_port);
	if (error == NULL) {
		pthread_mutex_lock(&a->lock);
		in->port = host_port;
		pthread_mutex_unlock(&a->lock);
	}
	return error;
}

static void *start_main(void *arg)
{
	instance *in = arg;
	nvcf_agent *a = in->agent;
	const nvcf__backend_spec *s = &a->backend->spec;
	char port_text[16], url[256], concurrency[16], last_result[256] = "none";
	char **args = NULL, **argv = NULL, *error = NULL;
	nvcf__env env = {0};
	launch l;
	size_t argc = 0;
	bool healthy = false;
	CURL *curl = NULL;
	int64_t deadline;
	int rc;

	instance_write(in);
	error = launch_parse(in->function_json, &l, a->crt != NULL);
	if (error != NULL)
		goto failed;
	/* A container listens on its inferencePort; in->port becomes the
	 * host port the engine publishes it at. */
	in->port = l.container ? nvcf__crt_inference_port(in->function_json) :
		   free_port();
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
	if (l.container &&
	    (error = container_start(a, in, &l, args, argc, env.v)) != NULL)
		goto failed;
	if (in->helm != NULL &&
	    (error = nvcf__helm_ms_up(in->helm, in->port,
				      a->start_timeout_ms)) != NULL)
		goto failed;

	pthread_mutex_lock(&a->lock);
	if (in->stopping) {
		pthread_mutex_unlock(&a->lock);
		goto done;
	}
	rc = l.container || in->helm != NULL ? 0 :
	     spawn_locked(a, l.image_path, argv, env.v, in->log_path,
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
		if (in->ctr != NULL &&
		    (error = nvcf__crt_check(a->crt, in->ctr)) != NULL)
			goto failed;
		nvcf__deadline_after(&ts, 100);
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
		/* Queues belong to the control plane's region, not ours. */
		wargv[n++] = "--queue-region";
		wargv[n++] = (char *)nvcf_bus_region(a->bus);
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
	if (in->ctr != NULL)
		nvcf__crt_watch(a->crt, in->ctr);
	nvcf_log_info(SUB, "instance %s RUNNING (worker pid %d)", in->id,
		      (int)in->worker_pid);
	instance_write(in);
	goto done;

failed:
	if (in->ctr != NULL)
		nvcf__crt_save_logs(a->crt, in->ctr);
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
	nvcf__env_free(&env);
	launch_free(&l);
	pthread_mutex_lock(&a->lock);
	a->busy--;
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

/* ---- instances of ICMSRequests ------------------------------------------ */

static instance *instance_new(nvcf_agent *a, const nvcf_crd_icms *o,
			      const char *id)
{
	const nvcf_crd_icms_spec *sp = &o->spec;
	instance *in = calloc(1, sizeof(*in));
	cJSON *ls;

	if (in == NULL)
		return NULL;
	in->agent = a;
	pthread_mutex_init(&in->write_lock, NULL);
	snprintf(in->id, sizeof(in->id), "%s", id);
	in->icms_id = dup_str(o->metadata.name);
	in->function_id = dup_str(sp->function_id);
	in->version_id = dup_str(sp->function_version_id);
	in->nca_id = dup_str(sp->nca_id);
	in->gpu_spec_id = dup_str(sp->gpu_specification_id);
	in->gpu = dup_str(sp->gpu);
	in->instance_type = dup_str(sp->instance_type);
	in->function_json = dup_str(sp->launch_specification);
	ls = cJSON_Parse(sp->launch_specification ?
			 sp->launch_specification : "");
	if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(
		    ls, "maxRequestConcurrency")))
		in->concurrency = cJSON_GetObjectItemCaseSensitive(
			ls, "maxRequestConcurrency")->valueint;
	cJSON_Delete(ls);
	in->state = INST_STARTING;
	in->created_us = in->updated_us = nvcf__now_us();
	snprintf(in->log_path, sizeof(in->log_path), "%s/instances/%s.log",
		 a->state_dir, in->id);
	return in;
}

static void instance_free(instance *in)
{
	free(in->icms_id);
	free(in->function_id);
	free(in->version_id);
	free(in->nca_id);
	free(in->gpu_spec_id);
	free(in->gpu);
	free(in->instance_type);
	free(in->function_json);
	free(in->error);
	free(in->last_output);
	nvcf__crt_ctr_free(in->ctr);
	nvcf__helm_ms_free(in->helm);
	pthread_mutex_destroy(&in->write_lock);
	free(in);
}

/* Called with the lock held. */
static instance *instance_find_locked(nvcf_agent *a, const char *id)
{
	for (instance *in = a->instances; in != NULL; in = in->next)
		if (strcmp(in->id, id) == 0)
			return in;
	return NULL;
}

/* Called with the lock held: what an ICMSRequest step sees of @p in. */
static nvcf_crd_observed_t observe_locked(instance *in)
{
	bool ended;

	adopted_check_locked(in);
	ended = (in->pid == 0 || in->pid_exited) &&
		nvcf__crt_gone(in->ctr) &&
		(in->worker_pid == 0 || in->worker_exited);
	switch (in->state) {
	case INST_STARTING:
		return NVCF_CRD_OBSERVED_STARTING;
	case INST_RUNNING:
		return NVCF_CRD_OBSERVED_RUNNING;
	case INST_TERMINATED:
		return ended ? NVCF_CRD_OBSERVED_TERMINATED :
			       NVCF_CRD_OBSERVED_RUNNING;
	case INST_ERRORED:
	default:
		return in->deleted && ended ? NVCF_CRD_OBSERVED_TERMINATED :
					      NVCF_CRD_OBSERVED_FAILED;
	}
}

/* DELETE_INSTANCE: stops @p id if it still runs. Idempotent. */
static void instance_delete(nvcf_agent *a, const char *id,
			    const char *reason)
{
	instance *in;

	pthread_mutex_lock(&a->lock);
	in = instance_find_locked(a, id);
	if (in != NULL) {
		in->deleted = true;
		if (!in->stopping && (in->state == INST_STARTING ||
				      in->state == INST_RUNNING)) {
			nvcf_log_info(SUB, "stopping instance %s (%s)", id,
				      reason ? reason : "no reason given");
			in->stopping = true;
			run_detached_locked(a, stop_main, in);
		}
	}
	pthread_mutex_unlock(&a->lock);
}

/* REPORT_STATUS: writes the instance record as the runtime has it. */
static void instance_report(nvcf_agent *a, const char *id)
{
	instance *in;

	pthread_mutex_lock(&a->lock);
	in = instance_find_locked(a, id);
	pthread_mutex_unlock(&a->lock);
	/* Instances are freed only with the agent, so @p in stays valid. */
	if (in != NULL)
		instance_write_ex(in, false);
}

/* ---- ICMSRequests ------------------------------------------------------- */

static void icms_free(icms *r)
{
	if (r == NULL)
		return;
	if (r->msg != NULL)
		natsMsg_Destroy(r->msg);
	nvcf_crd_icms_free(r->obj);
	free(r->stored);
	free(r->error);
	free(r);
}

/* Called with rlock held. */
static icms *icms_find(nvcf_agent *a, const char *name)
{
	for (icms *r = a->requests; r != NULL; r = r->next)
		if (!r->collected && strcmp(r->obj->metadata.name, name) == 0)
			return r;
	return NULL;
}

static void icms_key(const icms *r, char *key, size_t size)
{
	snprintf(key, size, "icms.%s", r->obj->metadata.name);
}

/* Replaces the object with the stored one after a lost compare-and-set. */
static void icms_reload(nvcf_agent *a, icms *r)
{
	nvcf_crd_icms *obj = NULL;
	char key[192], *value = NULL;
	size_t len = 0;
	uint64_t rev = 0;

	icms_key(r, key, sizeof(key));
	if (nvcf_bus_kv_get(a->bus, a->bucket, key, &value, &len, &rev) !=
	    NVCF_OK)
		return;
	if (nvcf_crd_icms_from_json(&obj, value, len) == NVCF_OK) {
		nvcf_crd_icms_free(r->obj);
		r->obj = obj;
		free(r->stored);
		r->stored = nvcf__strdup(value);
		r->rev = rev;
	}
	nvcf_free(value);
}

/*
 * Stores the object with compare-and-set on the revision this agent last
 * wrote, so that a second agent of the same cluster cannot be overwritten
 * unseen. Returns NVCF_OK when stored or unchanged.
 */
static nvcf_status icms_store(nvcf_agent *a, icms *r)
{
	char key[192], *text = NULL;
	uint64_t rev = 0;
	nvcf_status st;

	if ((st = nvcf_crd_icms_to_json(&text, r->obj)) != NVCF_OK)
		return st;
	if (r->stored != NULL && strcmp(r->stored, text) == 0) {
		nvcf_free(text);
		return NVCF_OK;
	}
	icms_key(r, key, sizeof(key));
	st = r->rev == 0 ?
	     nvcf_bus_kv_create(a->bus, a->bucket, key, text, strlen(text),
				&rev) :
	     nvcf_bus_kv_update(a->bus, a->bucket, key, text, strlen(text),
				r->rev, &rev);
	if (st == NVCF_OK) {
		free(r->stored);
		r->stored = nvcf__strdup(text);
		r->rev = rev;
	} else if (st == NVCF_ECONFLICT) {
		nvcf_log_warn(SUB, "ICMSRequest %s changed in %s under this "
			      "agent; reloading it", r->obj->metadata.name,
			      a->bucket);
		icms_reload(a, r);
	} else {
		nvcf_log_error(SUB, "storing ICMSRequest %s failed: %s",
			       r->obj->metadata.name,
			       nvcf_error_last()->message);
	}
	nvcf_free(text);
	return st;
}

/* ACK_MESSAGE: acks the order if this agent has its message. */
static void icms_ack(icms *r)
{
	jsErrCode jerr = 0;

	if (r->msg == NULL) {
		/* The order is redelivered after its ack wait, and the
		 * consumer hands it to this request again. */
		r->ack = NVCF_CRD_ACK_RETRY;
		return;
	}
	if (natsMsg_AckSync(r->msg, NULL, &jerr) == NATS_OK) {
		r->ack = NVCF_CRD_ACK_OK;
	} else {
		nvcf_log_warn(SUB, "acknowledging order %s failed (%d); "
			      "waiting for its redelivery",
			      r->obj->metadata.name, (int)jerr);
		r->ack = NVCF_CRD_ACK_RETRY;
	}
	natsMsg_Destroy(r->msg);
	r->msg = NULL;
}

typedef enum refusal {
	REFUSED_NONE,
	REFUSED_NOT_OFFERED,
	REFUSED_CAPACITY,
	REFUSED_HELM,
	REFUSED_INTERNAL
} refusal;

/* CREATE_INSTANCE: starts one instance, or returns why it cannot. */
static refusal icms_create(nvcf_agent *a, icms *r, const nvcf_crd_action *act)
{
	const nvcf_crd_icms_spec *sp = &r->obj->spec;
	const nvcf__backend_gpu *g = NULL;
	const nvcf__instance_type *t;
	instance *in;

	if (act->miniservice && a->helm == NULL)
		return REFUSED_HELM;
	t = nvcf__backend_find_type(a->backend, sp->gpu, sp->instance_type,
				    &g);
	if (t == NULL)
		return REFUSED_NOT_OFFERED;
	pthread_mutex_lock(&a->lock);
	if (instance_find_locked(a, act->instance_id) != NULL) {
		pthread_mutex_unlock(&a->lock);
		return REFUSED_NONE;
	}
	if (a->stopping) {
		/* Not refused: the next agent finds it absent and reports it
		 * "instance-not-found", so placement orders it again. */
		pthread_mutex_unlock(&a->lock);
		return REFUSED_NONE;
	}
	if (nvcf__gpu_available(a->pool, sp->gpu) < t->gpu_count) {
		pthread_mutex_unlock(&a->lock);
		return REFUSED_CAPACITY;
	}
	in = instance_new(a, r->obj, act->instance_id);
	if (in == NULL || nvcf__gpu_alloc(a->pool, sp->gpu, t->gpu_count,
					  in->gpus) != NVCF_OK) {
		pthread_mutex_unlock(&a->lock);
		if (in != NULL)
			instance_free(in);
		return REFUSED_INTERNAL;
	}
	in->n_gpus = t->gpu_count;
	in->gpus_held = true;
	in->next = a->instances;
	a->instances = in;
	if (act->miniservice &&
	    nvcf__helm_ms_new(a->helm, &in->helm, in->id,
			      r->obj->metadata.name, sp->launch_specification,
			      NULL) != NVCF_OK) {
		in->state = INST_ERRORED;
		in->error = nvcf__strdup(nvcf_error_last()->message);
		release_if_done(a, in);
		pthread_mutex_unlock(&a->lock);
		instance_write(in);
		return REFUSED_NONE;
	}
	a->busy++;
	if (detach_thread(start_main, in) == NULL) {
		a->busy--;
		in->state = INST_ERRORED;
		in->error = nvcf__strdup("cannot start a thread");
		release_if_done(a, in);
	}
	pthread_mutex_unlock(&a->lock);
	return REFUSED_NONE;
}

/* Text of a refusal, naming the cluster's capacity and the fix. */
static char *refusal_text(nvcf_agent *a, const nvcf_crd_icms_spec *sp,
			  refusal why, uint32_t refused)
{
	const nvcf__backend_gpu *g = NULL;
	const nvcf__instance_type *t;
	unsigned int free_gpus;

	switch (why) {
	case REFUSED_NOT_OFFERED:
		return nvcf__asprintf("GPU '%s' with instance type '%s' is not "
				      "offered by cluster %s",
				      sp->gpu ? sp->gpu : "",
				      sp->instance_type ? sp->instance_type
							: "",
				      a->backend->spec.cluster_id);
	case REFUSED_HELM:
		return nvcf__asprintf("cluster %s runs processes only: a Helm "
				      "chart workload cannot run here",
				      a->backend->spec.cluster_id);
	case REFUSED_CAPACITY:
		t = nvcf__backend_find_type(a->backend, sp->gpu,
					    sp->instance_type, &g);
		pthread_mutex_lock(&a->lock);
		free_gpus = nvcf__gpu_available(a->pool, sp->gpu);
		pthread_mutex_unlock(&a->lock);
		return nvcf__asprintf("insufficient capacity: %u of %u "
				      "instances of %s did not fit (%u of %u "
				      "%s GPUs free, %u needed each)", refused,
				      sp->instance_count, t ? t->name : "",
				      free_gpus, g ? g->capacity : 0,
				      g ? g->name : "", t ? t->gpu_count : 0);
	default:
		return nvcf__strdup("out of memory or threads starting an "
				    "instance");
	}
}

/*
 * Records a refusal: the request fails with @p why, and status.instances
 * keeps only the instances really created, so that placement reads what
 * this cluster holds. The object is edited as JSON because its members
 * belong to the codec.
 */
static void icms_refuse(icms *r, char **refused, size_t n, const char *why)
{
	cJSON *root = NULL, *status, *map, *errors;
	nvcf_crd_icms *obj = NULL;
	char *text = NULL;

	nvcf_log_warn(SUB, "creation order %s refused: %s",
		      r->obj->metadata.name, why);
	if (nvcf_crd_icms_to_json(&text, r->obj) != NVCF_OK ||
	    (root = cJSON_Parse(text)) == NULL)
		goto out;
	status = cJSON_GetObjectItemCaseSensitive(root, "status");
	if (status == NULL)
		status = cJSON_AddObjectToObject(root, "status");
	map = cJSON_GetObjectItemCaseSensitive(status, "instances");
	for (size_t i = 0; map != NULL && i < n; i++)
		cJSON_DeleteItemFromObjectCaseSensitive(map, refused[i]);
	cJSON_DeleteItemFromObjectCaseSensitive(status, "requestStatus");
	cJSON_AddStringToObject(status, "requestStatus",
				nvcf_crd_request_status_name(
					NVCF_CRD_REQUEST_FAILED));
	cJSON_DeleteItemFromObjectCaseSensitive(status, "lastReconcileError");
	cJSON_AddStringToObject(status, "lastReconcileError", why);
	errors = cJSON_GetObjectItemCaseSensitive(status, "reconcileErrors");
	cJSON_DeleteItemFromObjectCaseSensitive(status, "reconcileErrors");
	cJSON_AddNumberToObject(status, "reconcileErrors",
				cJSON_IsNumber(errors) ?
				errors->valuedouble + 1 : 1);
	nvcf_free(text);
	text = cJSON_PrintUnformatted(root);
	if (text != NULL &&
	    nvcf_crd_icms_from_json(&obj, text, strlen(text)) == NVCF_OK) {
		nvcf_crd_icms_free(r->obj);
		r->obj = obj;
	}
out:
	if (obj == NULL)
		nvcf_log_error(SUB, "cannot record the refusal of %s",
			       r->obj->metadata.name);
	cJSON_Delete(root);
	free(text);
}

/*
 * Runs reconcile steps of one request until one requests a wait, performing
 * the actions of each and storing the object after each. Called with
 * rlock held.
 */
static void icms_run(nvcf_agent *a, icms *r)
{
	for (int n = 0; n < 16 && !r->collected && !a->stopping; n++) {
		nvcf_crd_observation obs = NVCF_CRD_OBSERVATION_INIT;
		nvcf_crd_icms_status *s = &r->obj->status;
		size_t count = s->instances_count, seen = 0, n_refused = 0;
		nvcf_crd_observed_instance *seen_v;
		char **reasons, **refused;
		refusal why = REFUSED_NONE;
		nvcf_crd_actions *acts = NULL;
		int64_t after = -1;
		bool gc = false;
		nvcf_status st;

		seen_v = calloc(count + 1, sizeof(*seen_v));
		reasons = calloc(count + 1, sizeof(*reasons));
		if (seen_v == NULL || reasons == NULL) {
			free(seen_v);
			free(reasons);
			return;
		}
		pthread_mutex_lock(&a->lock);
		for (size_t i = 0; i < count; i++) {
			instance *in = instance_find_locked(
				a, s->instances[i].id);

			if (in == NULL)
				continue;
			seen_v[seen].id = in->id;
			seen_v[seen].state = observe_locked(in);
			if (seen_v[seen].state == NVCF_CRD_OBSERVED_FAILED)
				seen_v[seen].reason = reasons[seen] =
					dup_str(in->error);
			seen++;
		}
		pthread_mutex_unlock(&a->lock);
		obs.now_ms = nvcf__now_us() / 1000;
		obs.instances = seen_v;
		obs.instances_count = seen;
		obs.ack = r->ack;
		obs.error = r->error;
		obs.error_terminal = r->error_terminal;
		st = nvcf_crd_icms_reconcile(&acts, r->obj, &obs,
					     &a->crd_opts);
		r->ack = NVCF_CRD_ACK_NONE;
		free(r->error);
		r->error = NULL;
		for (size_t i = 0; i < seen; i++)
			free(reasons[i]);
		free(reasons);
		free(seen_v);
		if (st != NVCF_OK) {
			nvcf_log_error(SUB, "reconciling ICMSRequest %s failed:"
				       " %s", r->obj->metadata.name,
				       nvcf_error_last()->message);
			return;
		}
		refused = calloc(acts->count + 1, sizeof(*refused));
		for (size_t i = 0; i < acts->count; i++) {
			const nvcf_crd_action *act = &acts->items[i];
			refusal no;

			switch (act->kind) {
			case NVCF_CRD_ACTION_ACK_MESSAGE:
				icms_ack(r);
				break;
			case NVCF_CRD_ACTION_CREATE_INSTANCE:
				no = icms_create(a, r, act);
				if (no == REFUSED_NONE)
					break;
				if (why == REFUSED_NONE)
					why = no;
				if (refused != NULL)
					refused[n_refused++] =
						act->instance_id;
				break;
			case NVCF_CRD_ACTION_DELETE_INSTANCE:
				instance_delete(a, act->instance_id,
						act->reason);
				break;
			case NVCF_CRD_ACTION_REPORT_STATUS:
				instance_report(a, act->instance_id);
				break;
			case NVCF_CRD_ACTION_GARBAGE_COLLECT:
				gc = true;
				break;
			case NVCF_CRD_ACTION_REQUEUE:
				after = act->after_ms;
				break;
			}
		}
		if (n_refused > 0) {
			char *text = refusal_text(a, &r->obj->spec, why,
						  (uint32_t)n_refused);

			icms_refuse(r, refused, n_refused,
				    text ? text : "refused");
			free(text);
			after = 0;
		}
		free(refused);
		nvcf_crd_actions_free(acts);
		s = &r->obj->status;
		if (gc && s->request_status ==
			  NVCF_CRD_REQUEST_FAILURE_ACKNOWLEDGED &&
		    obs.now_ms - s->last_status_updated_ms < a->retention_ms) {
			/* Kept so that placement can read why it failed. */
			icms_store(a, r);
			return;
		}
		if (gc) {
			char key[192];

			icms_key(r, key, sizeof(key));
			if (nvcf_bus_kv_delete(a->bus, a->bucket, key) !=
			    NVCF_OK) {
				nvcf_log_error(SUB, "deleting %s/%s failed: %s",
					       a->bucket, key,
					       nvcf_error_last()->message);
				return;
			}
			nvcf_log_info(SUB, "ICMSRequest %s done; deleted",
				      r->obj->metadata.name);
			r->collected = true;
			return;
		}
		if (icms_store(a, r) != NVCF_OK || after != 0)
			return;
	}
}

/* The reconcile loop: every request on each tick and instance change. */
static void *reconcile_main(void *arg)
{
	nvcf_agent *a = arg;

	for (;;) {
		instance *ended[64];
		struct timespec ts;
		size_t n_ended = 0;
		bool stop;

		nvcf__deadline_after(&ts, a->reconcile_ms);
		pthread_mutex_lock(&a->lock);
		while (!a->stopping && !a->kicked &&
		       pthread_cond_timedwait(&a->cond, &a->lock, &ts) !=
		       ETIMEDOUT)
			;
		a->kicked = false;
		stop = a->stopping;
		for (instance *in = a->instances; in != NULL && !stop;
		     in = in->next) {
			bool live = in->state == INST_STARTING ||
				    in->state == INST_RUNNING;
			char *why = NULL;

			/* A Helm pod has no process for the reaper to see. */
			if (in->helm != NULL && in->state == INST_RUNNING &&
			    !in->stopping &&
			    n_ended < sizeof(ended) / sizeof(ended[0]) &&
			    nvcf__helm_ms_phase(in->helm, &why) >=
			    NVCF_CRD_PHASE_INSTALL_FAILED) {
				fail_locked(a, in, why);
				ended[n_ended++] = in;
				continue;
			}
			free(why);
			if (!in->adopted)
				continue;
			adopted_check_locked(in);
			if (live && !in->stopping &&
			    (in->pid_exited || in->worker_exited) &&
			    n_ended < sizeof(ended) / sizeof(ended[0])) {
				fail_locked(a, in, nvcf__asprintf(
					"%s (pid %d) ended; it was adopted "
					"after an agent restart",
					in->pid_exited ? "function process" :
					"worker", in->pid_exited ?
					(int)in->pid : (int)in->worker_pid));
				ended[n_ended++] = in;
			}
			release_if_done(a, in);
		}
		pthread_mutex_unlock(&a->lock);
		if (stop)
			break;
		for (size_t i = 0; i < n_ended; i++)
			instance_write(ended[i]);

		pthread_mutex_lock(&a->rlock);
		for (icms **pp = &a->requests; *pp != NULL;) {
			icms *r = *pp;

			icms_run(a, r);
			if (r->collected) {
				*pp = r->next;
				icms_free(r);
			} else {
				pp = &r->next;
			}
		}
		pthread_mutex_unlock(&a->rlock);
	}
	return NULL;
}

static void kick(nvcf_agent *a)
{
	pthread_mutex_lock(&a->lock);
	a->kicked = true;
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->lock);
}

/* A request name must be one KV key token. */
static bool name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 96)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(name[i] == '-' || name[i] == '_' ||
		      (name[i] >= '0' && name[i] <= '9') ||
		      (name[i] >= 'a' && name[i] <= 'z') ||
		      (name[i] >= 'A' && name[i] <= 'Z')))
			return false;
	return true;
}

static cJSON *icms_doc(const char *name, cJSON **spec_out)
{
	cJSON *doc = cJSON_CreateObject(), *meta, *spec;

	cJSON_AddStringToObject(doc, "apiVersion", NVCF_CRD_ICMS_API_VERSION);
	cJSON_AddStringToObject(doc, "kind", "ICMSRequest");
	meta = cJSON_AddObjectToObject(doc, "metadata");
	cJSON_AddStringToObject(meta, "name", name);
	spec = cJSON_AddObjectToObject(doc, "spec");
	cJSON_AddStringToObject(spec, "requestId", name);
	*spec_out = spec;
	return doc;
}

static void add_nonempty(cJSON *obj, const char *key, const char *value)
{
	if (value != NULL && value[0] != '\0')
		cJSON_AddStringToObject(obj, key, value);
}

/*
 * Takes @p doc and @p msg: stores the new request before anything acks
 * the order, or hands a redelivered order to the request it made.
 */
static void icms_accept(nvcf_agent *a, cJSON *doc, natsMsg *msg)
{
	char *text = cJSON_PrintUnformatted(doc);
	nvcf_crd_icms *obj = NULL;
	jsErrCode jerr = 0;
	nvcf_status st;
	icms *r;

	cJSON_Delete(doc);
	if (text == NULL ||
	    nvcf_crd_icms_from_json(&obj, text, strlen(text)) != NVCF_OK) {
		nvcf_log_error(SUB, "order on '%s' makes no valid "
			       "ICMSRequest (%s); terminating it",
			       natsMsg_GetSubject(msg), text ?
			       nvcf_error_last()->message : "out of memory");
		natsMsg_Term(msg, NULL);
		natsMsg_Destroy(msg);
		free(text);
		return;
	}
	free(text);
	pthread_mutex_lock(&a->rlock);
	if ((r = icms_find(a, obj->metadata.name)) != NULL) {
		nvcf_crd_icms_free(obj);
		if (r->obj->status.request_status == NVCF_CRD_REQUEST_NEW &&
		    r->msg == NULL) {
			r->msg = msg;
			msg = NULL;
		}
		pthread_mutex_unlock(&a->rlock);
		if (msg != NULL) {
			nvcf_log_info(SUB, "order %s already handled; "
				      "acknowledging the redelivery",
				      r->obj->metadata.name);
			natsMsg_AckSync(msg, NULL, &jerr);
			natsMsg_Destroy(msg);
		}
		kick(a);
		return;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		pthread_mutex_unlock(&a->rlock);
		nvcf_crd_icms_free(obj);
		natsMsg_NakWithDelay(msg, 1000, NULL);
		natsMsg_Destroy(msg);
		return;
	}
	r->obj = obj;
	st = icms_store(a, r);
	if (st == NVCF_EEXISTS) {
		/* Recorded by a delivery this agent has not loaded. */
		r->rev = 1;
		icms_reload(a, r);
		st = NVCF_OK;
	}
	if (st != NVCF_OK) {
		pthread_mutex_unlock(&a->rlock);
		icms_free(r);
		natsMsg_NakWithDelay(msg, 1000, NULL);
		natsMsg_Destroy(msg);
		return;
	}
	r->msg = msg;
	r->next = a->requests;
	a->requests = r;
	nvcf_log_info(SUB, "order %s recorded (%s)", obj->metadata.name,
		      nvcf_crd_icms_action_name(obj->spec.action));
	pthread_mutex_unlock(&a->rlock);
	kick(a);
}

static void handle_create(nvcf_agent *a, natsMsg *msg)
{
	Nvcf__CreateInstances *m;
	cJSON *doc, *spec, *ls;

	m = nvcf__create_instances__unpack(
		NULL, (size_t)natsMsg_GetDataLength(msg),
		(const uint8_t *)natsMsg_GetData(msg));
	if (m != NULL && m->kind == NVCF__WORKLOAD_KIND__WORKLOAD_KIND_TASK) {
		nvcf__task_order(a->tasks, msg, m);
		nvcf__create_instances__free_unpacked(m, NULL);
		return;
	}
	if (m == NULL || !name_valid(m->icms_request_id) ||
	    !nvcf__uuid_valid(m->version_id) || m->instance_count < 1) {
		nvcf_log_error(SUB, "malformed creation order on '%s': %s; "
			       "terminating it", natsMsg_GetSubject(msg),
			       m == NULL ? "not a CreateInstances message" :
			       !name_valid(m->icms_request_id) ?
			       "icms_request_id is empty or not one KV key "
			       "token" :
			       !nvcf__uuid_valid(m->version_id) ?
			       "version_id is not a UUID" :
			       "instance_count is below 1");
		natsMsg_Term(msg, NULL);
		natsMsg_Destroy(msg);
		nvcf__create_instances__free_unpacked(m, NULL);
		return;
	}
	doc = icms_doc(m->icms_request_id, &spec);
	add_nonempty(spec, "ncaId", m->nca_id);
	cJSON_AddStringToObject(spec, "action", nvcf_crd_icms_action_name(
		NVCF_CRD_ICMS_REQUEST_INSTANCES));
	add_nonempty(spec, "functionId", m->function_id);
	add_nonempty(spec, "functionVersionId", m->version_id);
	add_nonempty(spec, "gpu", m->gpu);
	add_nonempty(spec, "instanceType", m->instance_type);
	cJSON_AddNumberToObject(spec, "instanceCount", m->instance_count);
	add_nonempty(spec, "gpuSpecificationId", m->gpu_specification_id);
	add_nonempty(spec, "deploymentId", m->deployment_id);
	/* The function record is the launch specification; the worker's
	 * concurrency travels in it because the spec has no field for it. */
	ls = cJSON_Parse(m->function_json ? m->function_json : "");
	if (!cJSON_IsObject(ls)) {
		cJSON_Delete(ls);
		ls = cJSON_CreateObject();
	}
	if (m->max_request_concurrency > 0)
		cJSON_AddNumberToObject(ls, "maxRequestConcurrency",
					m->max_request_concurrency);
	cJSON_AddItemToObject(spec, "functionLaunchSpecification", ls);
	nvcf_log_info(SUB, "creation order %s: %d x %s %s of version %s",
		      m->icms_request_id, m->instance_count, m->gpu,
		      m->instance_type, m->version_id);
	nvcf__create_instances__free_unpacked(m, NULL);
	icms_accept(a, doc, msg);
}

static void handle_terminate(nvcf_agent *a, natsMsg *msg)
{
	Nvcf__TerminateInstances *m;
	jsMsgMetaData *meta = NULL;
	cJSON *doc, *spec, *info, *ids;
	char name[64];
	jsErrCode jerr = 0;
	int count = 0;

	m = nvcf__terminate_instances__unpack(
		NULL, (size_t)natsMsg_GetDataLength(msg),
		(const uint8_t *)natsMsg_GetData(msg));
	if (m != NULL && m->task_id[0] != '\0') {
		nvcf__task_cancel(a->tasks, m->task_id, m->reason);
		natsMsg_AckSync(msg, NULL, &jerr);
		natsMsg_Destroy(msg);
		nvcf__terminate_instances__free_unpacked(m, NULL);
		return;
	}
	if (m == NULL || (m->version_id[0] == '\0' && m->n_instance_ids == 0)) {
		nvcf_log_error(SUB, "malformed termination order on '%s': %s; "
			       "terminating it", natsMsg_GetSubject(msg),
			       m == NULL ? "not a TerminateInstances message" :
			       "neither version_id nor instance_ids set");
		natsMsg_Term(msg, NULL);
		natsMsg_Destroy(msg);
		nvcf__terminate_instances__free_unpacked(m, NULL);
		return;
	}
	ids = cJSON_CreateArray();
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
		cJSON_AddItemToArray(ids, cJSON_CreateString(in->id));
		count++;
	}
	pthread_mutex_unlock(&a->lock);
	nvcf_log_info(SUB, "termination order for version %s (%s): %d "
		      "instances to stop", m->version_id,
		      m->reason[0] ? m->reason : "no reason given", count);
	/* The stream sequence names the request, so a redelivery finds it. */
	if (count == 0 || natsMsg_GetMetaData(&meta, msg) != NATS_OK) {
		cJSON_Delete(ids);
		jsMsgMetaData_Destroy(meta);
		natsMsg_AckSync(msg, NULL, &jerr);
		natsMsg_Destroy(msg);
		nvcf__terminate_instances__free_unpacked(m, NULL);
		return;
	}
	snprintf(name, sizeof(name), "terminate-%llu",
		 (unsigned long long)meta->Sequence.Stream);
	jsMsgMetaData_Destroy(meta);
	doc = icms_doc(name, &spec);
	cJSON_AddStringToObject(spec, "action", nvcf_crd_icms_action_name(
		NVCF_CRD_ICMS_TERMINATE_INSTANCES));
	add_nonempty(spec, "functionVersionId", m->version_id);
	info = cJSON_AddObjectToObject(spec, "terminationMsgInfo");
	cJSON_AddItemToObject(info, "instanceIds", ids);
	nvcf__terminate_instances__free_unpacked(m, NULL);
	icms_accept(a, doc, msg);
}

/* ---- restart ------------------------------------------------------------ */

/* Loads every stored ICMSRequest of the cluster. */
static void icms_load_all(nvcf_agent *a)
{
	char **keys = NULL;
	size_t n = 0, loaded = 0;

	if (nvcf_bus_kv_keys(a->bus, a->bucket, "icms.>", &keys, &n) !=
	    NVCF_OK) {
		nvcf_log_error(SUB, "listing %s failed: %s", a->bucket,
			       nvcf_error_last()->message);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		char *value = NULL;
		size_t len = 0;
		uint64_t rev = 0;
		nvcf_crd_icms *obj = NULL;
		icms *r;

		if (nvcf_bus_kv_get(a->bus, a->bucket, keys[i], &value, &len,
				    &rev) != NVCF_OK)
			continue;
		if (nvcf_crd_icms_from_json(&obj, value, len) != NVCF_OK) {
			nvcf_log_warn(SUB, "%s/%s is no ICMSRequest (%s); "
				      "leaving it alone", a->bucket, keys[i],
				      nvcf_error_last()->message);
			nvcf_free(value);
			continue;
		}
		r = calloc(1, sizeof(*r));
		if (r == NULL) {
			nvcf_crd_icms_free(obj);
			nvcf_free(value);
			continue;
		}
		r->obj = obj;
		r->stored = nvcf__strdup(value);
		r->rev = rev;
		r->next = a->requests;
		a->requests = r;
		loaded++;
		nvcf_free(value);
	}
	nvcf_strings_free(keys, n);
	nvcf_log_info(SUB, "loaded %zu stored ICMSRequests from %s", loaded,
		      a->bucket);
}

/* Probes the function's health URL once, to adopt it, not to start it. */
static bool adopt_probe(const char *launch_json, int port)
{
	char url[256], what[128];
	bool ok = false;
	CURL *c;
	launch l;
	char *error = launch_parse(launch_json, &l, true);

	if (error == NULL && (c = curl_easy_init()) != NULL) {
		snprintf(url, sizeof(url), "http://127.0.0.1:%d%s%s", port,
			 l.health_url_path[0] == '/' ? "" : "/",
			 l.health_url_path);
		ok = probe(c, url, l.expected_status, ADOPT_PROBE_MS, what,
			   sizeof(what));
		curl_easy_cleanup(c);
	}
	free(error);
	launch_free(&l);
	return ok;
}

/* The container of a RUNNING instance of an earlier agent, or NULL. */
static nvcf__crt_ctr *container_adopt(nvcf_agent *a, const icms *r,
				      const char *id, const char *cid,
				      int *port)
{
	nvcf__crt_spec spec = NVCF__CRT_SPEC_INIT;
	nvcf__crt_ctr *c = NULL;
	char log_path[512], *error;
	const char *ls;
	launch l;

	if (a->crt == NULL || r == NULL)
		return NULL;
	ls = r->obj->spec.launch_specification;
	error = launch_parse(ls, &l, true);
	snprintf(log_path, sizeof(log_path), "%s/instances/%s.log",
		 a->state_dir, id);
	if (error == NULL && l.container) {
		spec.image = l.image_path;
		spec.cluster_id = a->backend->spec.cluster_id;
		spec.function_id = r->obj->spec.function_id;
		spec.version_id = r->obj->spec.function_version_id;
		spec.instance_id = id;
		spec.container_port = nvcf__crt_inference_port(ls);
		spec.health_path = l.health_url_path;
		spec.expected_status = l.expected_status;
		spec.log_path = log_path;
		if (nvcf__crt_adopt(a->crt, &spec, cid, &c, port) != NVCF_OK)
			nvcf_log_warn(SUB, "instance %s: %s", id,
				      nvcf_error_last()->message);
	}
	free(error);
	launch_free(&l);
	return c;
}

/*
 * Takes over one instance an earlier agent started, or stops what is left
 * of it and records it ERRORED so that placement replaces it. Only RUNNING
 * instances whose function and worker still run (checked by pid, by the
 * instance id in /proc and by the health URL) are adopted: a STARTING one
 * lost the thread that was bringing it up.
 */
static void adopt_one(nvcf_agent *a, cJSON *rec, const char *key)
{
	const char *id = json_str(rec, "instanceId");
	const char *status = json_str(rec, "instanceStatus");
	const cJSON *g, *gpus = cJSON_GetObjectItemCaseSensitive(rec, "gpus");
	cJSON *num;
	pid_t pid = 0, wpid = 0;
	int port = 0;
	char env[INSTANCE_ID_MAX + 32], *why = NULL;
	const char *cid = json_str(rec, "containerId");
	nvcf__crt_ctr *ctr = NULL;
	bool fn_ours, w_ours;
	instance *in = NULL;
	icms *r;

	if (id == NULL || strlen(id) >= INSTANCE_ID_MAX)
		return;
	num = cJSON_GetObjectItemCaseSensitive(rec, "pid");
	pid = cJSON_IsNumber(num) ? (pid_t)num->valueint : 0;
	num = cJSON_GetObjectItemCaseSensitive(rec, "workerPid");
	wpid = cJSON_IsNumber(num) ? (pid_t)num->valueint : 0;
	num = cJSON_GetObjectItemCaseSensitive(rec, "port");
	port = cJSON_IsNumber(num) ? num->valueint : 0;
	snprintf(env, sizeof(env), "NVCF_INSTANCE_ID=%s", id);
	fn_ours = pid > 0 && proc_alive(pid) &&
		  proc_has(pid, "environ", env, NULL);
	w_ours = wpid > 0 && proc_alive(wpid) &&
		 proc_has(wpid, "cmdline", "--instance-id", id);
	r = json_str(rec, "icmsRequestId") ?
	    icms_find(a, json_str(rec, "icmsRequestId")) : NULL;
	if (cid != NULL)
		fn_ours = (ctr = container_adopt(a, r, id, cid, &port)) !=
			  NULL;

	if (strcmp(status, "RUNNING") != 0)
		why = nvcf__strdup("nvca restarted while the instance was "
				   "starting; stopped it");
	else if (r == NULL)
		why = nvcf__strdup("nvca restarted and found no ICMSRequest "
				   "of the instance; stopped it");
	else if (!fn_ours || !w_ours)
		why = nvcf__asprintf("%s ended while nvca was down",
				     !fn_ours ? (cid ? "container" :
						 "function process") :
				     "worker");
	else if (!adopt_probe(r->obj->spec.launch_specification, port))
		why = nvcf__strdup("health check failed when nvca restarted; "
				   "stopped it");
	if (why == NULL && (in = instance_new(a, r->obj, id)) != NULL) {
		cJSON_ArrayForEach(g, gpus)
			if (cJSON_IsNumber(g) &&
			    in->n_gpus < MAX_GPUS_PER_INSTANCE)
				in->gpus[in->n_gpus++] =
					(unsigned int)g->valueint;
		pthread_mutex_lock(&a->lock);
		if (nvcf__gpu_claim(a->pool, in->gpu, in->gpus, in->n_gpus) !=
		    NVCF_OK)
			why = nvcf__asprintf("its GPUs cannot be claimed again "
					     "(%s); stopped it",
					     nvcf_error_last()->message);
		pthread_mutex_unlock(&a->lock);
	}
	if (why == NULL && in != NULL) {
		in->gpus_held = true;
		in->adopted = true;
		in->port = port;
		in->pid = pid;
		in->worker_pid = wpid;
		in->state = INST_RUNNING;
		in->ctr = ctr;
		pthread_mutex_lock(&a->lock);
		in->next = a->instances;
		a->instances = in;
		pthread_mutex_unlock(&a->lock);
		if (ctr != NULL) {
			nvcf__crt_set_ctx(ctr, in);
			nvcf__crt_watch(a->crt, ctr);
		}
		nvcf_log_info(SUB, "adopted RUNNING instance %s (pid %d, "
			      "worker pid %d, port %d)", id, (int)pid,
			      (int)wpid, port);
		instance_write_ex(in, false);
		return;
	}
	if (in != NULL)
		instance_free(in);
	if (why == NULL)
		why = nvcf__strdup("out of memory adopting it");
	nvcf_log_warn(SUB, "instance %s of an earlier nvca: %s", id, why);
	/* A container has no pid: kill(-0) would hit nvca's own group. */
	if (fn_ours && cid == NULL)
		kill(-pid, SIGKILL);
	if (cid != NULL && a->crt != NULL)
		nvcf__crt_remove_id(a->crt, cid);
	nvcf__crt_ctr_free(ctr);
	if (w_ours)
		kill(wpid, SIGKILL);
	cJSON_DeleteItemFromObjectCaseSensitive(rec, "instanceStatus");
	cJSON_AddStringToObject(rec, "instanceStatus", "ERRORED");
	cJSON_DeleteItemFromObjectCaseSensitive(rec, "error");
	cJSON_AddStringToObject(rec, "error", why ? why : "");
	cJSON_DeleteItemFromObjectCaseSensitive(rec, "instanceUpdatedAt");
	add_time(rec, "instanceUpdatedAt", nvcf__now_us());
	kv_put_json(a, NVCF_BUCKET_INSTANCES, key, rec);
	free(why);
}

/* Whether container @p container_id belongs to an adopted instance. */
static bool container_kept(void *ctx, const char *container_id)
{
	nvcf_agent *a = ctx;
	bool kept = false;

	pthread_mutex_lock(&a->lock);
	for (instance *in = a->instances; in != NULL && !kept; in = in->next)
		kept = nvcf__crt_id(in->ctr) != NULL &&
		       strcmp(nvcf__crt_id(in->ctr), container_id) == 0;
	pthread_mutex_unlock(&a->lock);
	return kept;
}

/* Adopts or stops every live instance the cluster's records name. */
static void adopt_all(nvcf_agent *a)
{
	char **keys = NULL;
	size_t n = 0;

	if (nvcf_bus_kv_keys(a->bus, NVCF_BUCKET_INSTANCES, NULL, &keys, &n) !=
	    NVCF_OK) {
		nvcf_log_error(SUB, "listing %s failed: %s",
			       NVCF_BUCKET_INSTANCES,
			       nvcf_error_last()->message);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		char *value = NULL;
		const char *cluster, *status;
		cJSON *rec;

		if (nvcf_bus_kv_get(a->bus, NVCF_BUCKET_INSTANCES, keys[i],
				    &value, NULL, NULL) != NVCF_OK)
			continue;
		rec = cJSON_Parse(value);
		nvcf_free(value);
		cluster = json_str(rec, "clusterId");
		status = json_str(rec, "instanceStatus");
		if (cluster != NULL && status != NULL &&
		    strcmp(cluster, a->backend->spec.cluster_id) == 0 &&
		    (strcmp(status, "RUNNING") == 0 ||
		     strcmp(status, "STARTING") == 0))
			adopt_one(a, rec, keys[i]);
		cJSON_Delete(rec);
	}
	nvcf_strings_free(keys, n);
	if (a->crt != NULL)
		nvcf__crt_sweep(a->crt, container_kept, a);
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
		/* Each handler takes its message and destroys it. */
		for (int i = 0; i < list.Count; i++) {
			fn(a, list.Msgs[i]);
			list.Msgs[i] = NULL;
		}
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

		nvcf__deadline_after(&ts, a->heartbeat_ms);
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

/*
 * Helm charts run through the podman CLI sent to the same podman service
 * (NVCF_PODMAN names the podman executable; default "podman" on PATH).
 */
static nvcf_status helm_start(nvcf_agent *a, const char *socket_path)
{
	nvcf__helm_options ho = NVCF__HELM_OPTIONS_INIT;
	char *url = nvcf__asprintf("unix://%s", socket_path);
	nvcf_status st;

	if (url == NULL)
		return nvcf__error_oom();
	ho.podman = getenv("NVCF_PODMAN") ? getenv("NVCF_PODMAN") : "podman";
	ho.url = url;
	ho.state_dir = a->state_dir;
	ho.cluster_id = a->backend->spec.cluster_id;
	ho.bus = a->bus;
	ho.bucket = a->bucket;
	ho.crd = &a->crd_opts;
	st = nvcf__helm_new(&a->helm, &ho);
	free(url);
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
	pthread_mutex_init(&a->rlock, NULL);
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
	a->reconcile_ms = opts->reconcile_ms > 0 ? opts->reconcile_ms : 1000;
	a->retention_ms = opts->failed_retention_ms > 0 ?
			  opts->failed_retention_ms : 3600000;
	nvcf_crd_options_init(&a->crd_opts, NVCF_CRD_OPTIONS_VERSION);
	/* The loop also runs on every instance change, so a step waiting on
	 * the world is due again at the next tick. */
	a->crd_opts.sync_interval_ms = a->reconcile_ms;
	a->crd_opts.failure_requeue_ms = a->reconcile_ms;
	a->crd_opts.max_running_timeout_ms = a->start_timeout_ms * 2;
	if (a->state_dir == NULL || a->worker_path == NULL ||
	    a->nats_url == NULL || a->worker_log_level == NULL) {
		nvcf_agent_free(a);
		return nvcf__error_oom();
	}
	if ((st = nvcf__backend_load(opts->config_path, &a->backend)) !=
		    NVCF_OK ||
	    (st = nvcf__backend_discover(a->backend,
					 a->backend->spec.gpu_discovery)) !=
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
	if (opts->docker_socket != NULL &&
	    (st = nvcf__crt_new(&a->crt, opts->docker_socket,
				a->backend->spec.cluster_id, 1000,
				container_failed)) != NVCF_OK) {
		nvcf_agent_free(a);
		return st;
	}
	if (opts->docker_socket != NULL &&
	    (st = helm_start(a, opts->docker_socket)) != NVCF_OK) {
		nvcf_agent_free(a);
		return st;
	}
	/* Before any order is taken: what an earlier agent left running is
	 * adopted, so its GPUs are held before new work can claim them. */
	icms_load_all(a);
	adopt_all(a);
	if ((st = nvcf__task_runner_new(&a->tasks, a)) != NVCF_OK) {
		nvcf_agent_free(a);
		return st;
	}
	/* Container and Helm tasks run on the function runtimes. */
	nvcf__task_runner_use(a->tasks, a->crt, a->helm);
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
	a->reconcile_started =
		pthread_create(&a->reconcile_thread, NULL, reconcile_main,
			       a) == 0;
	if (!a->reaper_started || !a->heartbeat_started ||
	    !a->create_started || !a->terminate_started ||
	    !a->reconcile_started) {
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
	/* Requests keep their stored state: a restarted agent resumes them. */
	if (a->reconcile_started)
		pthread_join(a->reconcile_thread, NULL);
	a->create_started = a->terminate_started = false;
	a->heartbeat_started = a->reconcile_started = false;
	/* No container failure may start a clean-up after the wait below. */
	nvcf__crt_shutdown(a->crt);
	/* Tasks end while the reaper still runs: it reaps their processes. */
	nvcf__task_runner_stop(a->tasks);

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
	nvcf__task_runner_free(a->tasks);
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
	while (a->requests != NULL) {
		icms *next = a->requests->next;

		icms_free(a->requests);
		a->requests = next;
	}
	nvcf__crt_free(a->crt);
	nvcf__helm_free(a->helm);
	nvcf__gpu_pool_free(a->pool);
	nvcf__backend_free(a->backend);
	free(a->state_dir);
	free(a->worker_path);
	free(a->nats_url);
	free(a->worker_log_level);
	pthread_cond_destroy(&a->child_cond);
	pthread_cond_destroy(&a->cond);
	pthread_mutex_destroy(&a->rlock);
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

/* ---- what the task runner borrows (task.h) ------------------------------ */

nvcf_bus *nvcf__agent_bus(nvcf_agent *a)
{
	return a->bus;
}

const nvcf__backend *nvcf__agent_backend(nvcf_agent *a)
{
	return a->backend;
}

const char *nvcf__agent_state_dir(nvcf_agent *a)
{
	return a->state_dir;
}

nvcf_status nvcf__agent_gpu_take(nvcf_agent *a, const char *gpu,
				 unsigned int count, unsigned int *indices)
{
	nvcf_status st;

	pthread_mutex_lock(&a->lock);
	st = nvcf__gpu_alloc(a->pool, gpu, count, indices);
	pthread_mutex_unlock(&a->lock);
	return st;
}

void nvcf__agent_gpu_give(nvcf_agent *a, const char *gpu,
			  const unsigned int *indices, unsigned int count)
{
	if (count == 0)
		return;
	pthread_mutex_lock(&a->lock);
	nvcf__gpu_release(a->pool, gpu, indices, count);
	pthread_mutex_unlock(&a->lock);
}

int nvcf__agent_spawn(nvcf_agent *a, const char *path, char *const argv[],
		      char *const envp[], const char *log_path, pid_t *pid)
{
	int rc;

	pthread_mutex_lock(&a->lock);
	rc = spawn_locked(a, path, argv, envp, log_path, pid);
	pthread_mutex_unlock(&a->lock);
	return rc;
}
