/* SPDX-License-Identifier: Apache-2.0 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "api/tasks.h"
#include "auth/keys.h"
#include "container_rt.h"
#include "helm.h"
#include "task.h"

#define SUB "agent"
#define MAX_TASK_GPUS 64
#define POLL_MS 1000
#define AGENT_STOP_GRACE_MS 5000
#define KILL_WAIT_MS 5000
#define NAK_DELAY_MS 2000
#define PROGRESS_MAX 65536
#define HASH_MAX ((off_t)64 << 20)
/*
 * Files up to this size travel inside their result message, base64 in
 * metadata.contentBase64, because encoded they stay well under NATS's
 * default max_payload of 1 MiB. Larger files up to HASH_MAX are stored as
 * chunks next to the result. GET .../results/{resultId}/content serves
 * both from JetStream.
 */
#define INLINE_MAX ((off_t)512 << 10)
#define TAIL_LINES 10
#define TAIL_BYTES 4096

typedef enum ending {
	END_EXITED,
	END_CANCELED,  /* termination order, or the record is terminal */
	END_RUNTIME,   /* maxRuntimeDuration elapsed */
	END_AGENT_STOP
} ending;

typedef struct rtask {
	struct rtask *next;
	nvcf__task_runner *r;
	char id[NVCF_UUID_LEN + 1];
	char *nca_id, *icms_id, *gpu, *instance_type, *record;
	char instance_id[160];
	unsigned int gpus[MAX_TASK_GPUS];
	unsigned int n_gpus;
	pid_t pid;
	/* The container or MiniService that runs the task instead. */
	nvcf__crt_ctr *ctr;
	nvcf__helm_ms *ms;
	bool exited;   /* under the runner's lock, set by the reaper */
	int wstatus;
	/* Exit description of a container or MiniService, set with exited. */
	bool failed;
	char *end_text;
	bool cancel;   /* under the runner's lock */
	char *dir, *results, *progress, *log;
	int64_t created_us, started_us;
	/* Result names published so far, so that none is sent twice. */
	char **published;
	size_t n_published;
} rtask;

struct nvcf__task_runner {
	nvcf_agent *agent;
	nvcf_bus *bus;
	char bucket[160];
	pthread_mutex_t lock;
	pthread_cond_t cond;
	rtask *tasks;
	int busy;      /* task threads running */
	bool stopping;
	/* Lent by the agent with --docker-socket, else NULL. */
	nvcf__crt *crt;
	nvcf__helm *helm;
};

/* ---- small helpers ------------------------------------------------------ */

static const char *jstr(const cJSON *obj, const char *name)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);

	return cJSON_IsString(item) ? item->valuestring : NULL;
}

static void add_time(cJSON *obj, const char *name, int64_t us)
{
	char stamp[32];

	nvcf__iso8601(us, stamp);
	cJSON_AddStringToObject(obj, name, stamp);
}

/* An icmsRequestId is one KV key token, as in the function orders. */
static bool token_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > 96)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(s[i] == '-' || s[i] == '_' ||
		      (s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= 'A' && s[i] <= 'Z')))
			return false;
	return true;
}

/* The rule of nvcf__task_add_result(), checked first to log a skip. */
static bool result_name_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > 190)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= 'A' && s[i] <= 'Z') ||
		      strchr("!-_.*'()", s[i]) != NULL))
			return false;
	return true;
}

static nvcf_status make_dir(const char *path)
{
	if (mkdir(path, 0755) != 0 && errno != EEXIST)
		return nvcf__error_set(NVCF_EIO, "cannot create task "
				       "directory '%s': %s; pass a writable "
				       "--state-dir", path, strerror(errno));
	return NVCF_OK;
}

/* Reads at most @p max bytes of a file. Returns NULL when it cannot. */
static char *read_small(const char *path, size_t max, size_t *len_out)
{
	char *buf = malloc(max + 1);
	size_t len = 0;
	ssize_t n;
	int fd;

	if (buf == NULL)
		return NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		free(buf);
		return NULL;
	}
	while (len < max && (n = read(fd, buf + len, max - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = '\0';
	if (len_out != NULL)
		*len_out = len;
	return buf;
}

/* The last lines a task wrote, for the error of an ERRORED task. */
static char *log_tail(const char *path)
{
	char *buf = NULL, *start;
	struct stat sb;
	size_t len = 0;
	int seen = 0;
	int fd;

	if (stat(path, &sb) != 0 || sb.st_size == 0)
		return NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (sb.st_size > TAIL_BYTES)
		lseek(fd, sb.st_size - TAIL_BYTES, SEEK_SET);
	buf = calloc(TAIL_BYTES + 1, 1);
	if (buf != NULL) {
		ssize_t n = read(fd, buf, TAIL_BYTES);

		len = n > 0 ? (size_t)n : 0;
		buf[len] = '\0';
	}
	close(fd);
	if (buf == NULL)
		return NULL;
	while (len > 0 && buf[len - 1] == '\n')
		buf[--len] = '\0';
	start = buf + len;
	while (start > buf) {
		if (start[-1] == '\n' && ++seen == TAIL_LINES)
			break;
		start--;
	}
	memmove(buf, start, strlen(start) + 1);
	return buf;
}

static char *exit_text(int status)
{
	if (WIFEXITED(status))
		return nvcf__asprintf("task process exited with status %d",
				      WEXITSTATUS(status));
	if (WIFSIGNALED(status))
		return nvcf__asprintf("task process was killed by signal %d "
				      "(%s)", WTERMSIG(status),
				      strsignal(WTERMSIG(status)));
	return nvcf__asprintf("task process ended (wait status %d)", status);
}

/* True while @p pid runs and its environment contains @p entry. */
static bool proc_runs_with(pid_t pid, const char *entry)
{
	char path[64], *buf;
	size_t len = 0;
	bool found = false;

	if (pid <= 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	buf = read_small(path, 65536, &len);
	for (size_t i = 0; buf != NULL && i < len; i += strlen(buf + i) + 1)
		if (strcmp(buf + i, entry) == 0)
			found = true;
	free(buf);
	return found;
}

/* ---- environment -------------------------------------------------------- */

/*
 * The variables NVCT gives a task, plus the GPUs it holds: the one list
 * for processes, containers and the pods of Helm tasks. With @p container
 * the task runs in its own file system (a container or a pod), so the
 * paths are those of the results mount, NVCF__TASK_RESULTS_MOUNT.
 */
static void build_env(rtask *t, const cJSON *rec, nvcf__env *e, bool container)
{
	static const char *const inherited[] = {"PATH", "HOME", "LANG"};
	const nvcf__backend *b = nvcf__agent_backend(t->r->agent);
	const cJSON *item;
	char devices[MAX_TASK_GPUS * 4 + 1] = "";

	/* A container keeps the PATH and HOME its image sets. */
	for (size_t i = 0; !container &&
	     i < sizeof(inherited) / sizeof(inherited[0]); i++)
		if (getenv(inherited[i]) != NULL)
			nvcf__env_set(e, inherited[i], getenv(inherited[i]));
	cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(
				   rec, "containerEnvironment")) {
		const char *k = jstr(item, "key");

		if (k != NULL && k[0] != '\0' && strchr(k, '=') == NULL)
			nvcf__env_set(e, k, jstr(item, "value"));
	}
	for (unsigned int i = 0; i < t->n_gpus; i++) {
		size_t len = strlen(devices);

		snprintf(devices + len, sizeof(devices) - len, "%s%u",
			 i ? "," : "", t->gpus[i]);
	}
	nvcf__env_set(e, "NVCT_TASK_ID", t->id);
	nvcf__env_set(e, "NVCT_TASK_NAME", jstr(rec, "name"));
	nvcf__env_set(e, "NVCT_NCA_ID", t->nca_id);
	nvcf__env_set(e, "NVCT_INSTANCE_ID", t->instance_id);
	nvcf__env_set(e, "NVCT_PROGRESS_FILE_PATH", container ?
		NVCF__TASK_RESULTS_MOUNT "/progress" : t->progress);
	nvcf__env_set(e, "NVCT_RESULTS_DIR", container ? NVCF__TASK_RESULTS_MOUNT :
		t->results);
	if (jstr(rec, "maxRuntimeDuration") != NULL)
		nvcf__env_set(e, "NVCT_MAX_RUN_TIME_DURATION",
			jstr(rec, "maxRuntimeDuration"));
	nvcf__env_set(e, "NVCT_RESULT_HANDLING_STRATEGY",
		jstr(rec, "resultHandlingStrategy") ?
		jstr(rec, "resultHandlingStrategy") : "UPLOAD");
	nvcf__env_set(e, "NVCF_REGION", b->spec.region);
	nvcf__env_set(e, "NVCF_BACKEND", b->spec.cluster_group);
	nvcf__env_set(e, "NVCF_INSTANCETYPE", t->instance_type);
	nvcf__env_set(e, "NVCF_INSTANCETYPE_VALUE", t->instance_type);
	nvcf__env_set(e, "NVCF_ENV", "local");
	nvcf__env_set(e, "CUDA_VISIBLE_DEVICES", devices);
	nvcf__env_set(e, "NVIDIA_VISIBLE_DEVICES", devices);
}

/* ---- records and reports ------------------------------------------------ */

static void record_write(rtask *t, const char *state)
{
	nvcf__task_runner *r = t->r;
	cJSON *obj = cJSON_CreateObject(), *gpus;
	char key[64], *text;

	cJSON_AddStringToObject(obj, "taskId", t->id);
	cJSON_AddStringToObject(obj, "ncaId", t->nca_id);
	cJSON_AddStringToObject(obj, "icmsRequestId", t->icms_id);
	cJSON_AddStringToObject(obj, "gpu", t->gpu);
	cJSON_AddStringToObject(obj, "instanceType", t->instance_type);
	gpus = cJSON_AddArrayToObject(obj, "gpus");
	for (unsigned int i = 0; gpus != NULL && i < t->n_gpus; i++)
		cJSON_AddItemToArray(gpus, cJSON_CreateNumber(t->gpus[i]));
	if (t->pid > 0)
		cJSON_AddNumberToObject(obj, "pid", t->pid);
	cJSON_AddStringToObject(obj, "state", state);
	cJSON_AddStringToObject(obj, "directory", t->dir);
	add_time(obj, "startedAt", t->created_us);
	snprintf(key, sizeof(key), "task.%s", t->id);
	text = cJSON_PrintUnformatted(obj);
	cJSON_Delete(obj);
	if (text == NULL ||
	    nvcf_bus_kv_put(r->bus, r->bucket, key, text, strlen(text),
			    NULL) != NVCF_OK)
		nvcf_log_error(SUB, "writing %s/%s failed: %s", r->bucket, key,
			       text ? nvcf_error_last()->message :
			       "out of memory");
	free(text);
}

static void record_delete(nvcf__task_runner *r, const char *task_id)
{
	char key[64];

	snprintf(key, sizeof(key), "task.%s", task_id);
	if (nvcf_bus_kv_delete(r->bus, r->bucket, key) != NVCF_OK)
		nvcf_log_warn(SUB, "deleting %s/%s failed: %s", r->bucket, key,
			      nvcf_error_last()->message);
}

/* The instances[] entry of the TaskDto for this agent's instance. */
static char *instance_json(rtask *t, const char *state)
{
	const nvcf__backend *b = nvcf__agent_backend(t->r->agent);
	cJSON *obj = cJSON_CreateObject();
	char *text;

	cJSON_AddStringToObject(obj, "instanceId", t->instance_id);
	cJSON_AddStringToObject(obj, "taskId", t->id);
	cJSON_AddStringToObject(obj, "instanceType", t->instance_type);
	cJSON_AddStringToObject(obj, "instanceState", state);
	cJSON_AddStringToObject(obj, "icmsRequestId", t->icms_id);
	cJSON_AddStringToObject(obj, "ncaId", t->nca_id);
	cJSON_AddStringToObject(obj, "gpu", t->gpu);
	cJSON_AddStringToObject(obj, "backend", b->spec.cluster_group);
	cJSON_AddStringToObject(obj, "location", b->spec.region);
	add_time(obj, "instanceCreatedAt", t->created_us);
	add_time(obj, "instanceUpdatedAt", nvcf__now_us());
	text = cJSON_PrintUnformatted(obj);
	cJSON_Delete(obj);
	return text;
}

/*
 * Reports to the task record. NVCF_EPERM (the task is terminal, for
 * example cancelled) and NVCF_ENOTFOUND (deleted) tell the caller to stop
 * the task; they are not logged as failures.
 */
static nvcf_status report(rtask *t, const char *status, int percent,
			  const char *error, const char *state,
			  const char *message)
{
	nvcf__task_report_info info = NVCF__TASK_REPORT_INIT;
	char *inst = state ? instance_json(t, state) : NULL;
	nvcf_status st;

	info.status = status;
	info.percent_complete = percent;
	info.error = error;
	info.instance_json = inst;
	info.message = message;
	st = nvcf__task_report(t->r->bus, t->nca_id, t->id, &info);
	free(inst);
	if (st == NVCF_EPERM || st == NVCF_ENOTFOUND)
		nvcf_log_info(SUB, "task %s: %s", t->id,
			      nvcf_error_last()->message);
	else if (st != NVCF_OK)
		nvcf_log_warn(SUB, "reporting status %s, %d%% of task %s "
			      "failed: %s", status ? status : "(same)",
			      percent, t->id, nvcf_error_last()->message);
	return st;
}

static bool published(const rtask *t, const char *name)
{
	for (size_t i = 0; i < t->n_published; i++)
		if (strcmp(t->published[i], name) == 0)
			return true;
	return false;
}

static void publish_result(rtask *t, const char *name, const char *meta,
			   const void *content, size_t content_len)
{
	char **v;

	if (published(t, name))
		return;
	if (!result_name_valid(name)) {
		nvcf_log_warn(SUB, "task %s: result name '%.200s' skipped: it "
			      "must be 1 to 190 letters, digits or !-_.*'()",
			      t->id, name);
		return;
	}
	if (nvcf__task_add_result_content(t->r->bus, t->nca_id, t->id, name,
					  meta, content, content_len,
					  NULL) != NVCF_OK) {
		nvcf_log_warn(SUB, "task %s: storing result '%s' failed: %s",
			      t->id, name, nvcf_error_last()->message);
		return;
	}
	v = realloc(t->published, (t->n_published + 1) * sizeof(char *));
	if (v != NULL) {
		t->published = v;
		v[t->n_published] = nvcf__strdup(name);
		if (v[t->n_published] != NULL)
			t->n_published++;
	}
}

/* ---- progress file and results directory -------------------------------- */

/*
 * Reads the progress file. Returns the percentage (-1 when the file is
 * missing, unreadable or not for this task) and publishes the result it
 * names when @p upload.
 */
static int progress_poll(rtask *t, bool upload)
{
	char *text = read_small(t->progress, PROGRESS_MAX, NULL);
	cJSON *doc = text ? cJSON_Parse(text) : NULL;
	const cJSON *pc = cJSON_GetObjectItemCaseSensitive(doc,
							   "percentComplete");
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(doc, "metadata");
	const char *id = jstr(doc, "taskId"), *name = jstr(doc, "name");
	int percent = -1;

	free(text);
	if (!cJSON_IsObject(doc) || (id != NULL && strcmp(id, t->id) != 0)) {
		cJSON_Delete(doc);
		return -1;
	}
	if (cJSON_IsNumber(pc) && pc->valuedouble >= 0 &&
	    pc->valuedouble <= 100)
		percent = (int)pc->valuedouble;
	if (upload && name != NULL && !published(t, name)) {
		char *m = cJSON_IsObject(meta) ?
			  cJSON_PrintUnformatted(meta) : NULL;

		publish_result(t, name, m, NULL, 0);
		free(m);
	}
	cJSON_Delete(doc);
	return percent;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The result of one file: where it is, its size and its SHA-256. */
/*
 * Returns the metadata of result file @p path. A file too large to travel
 * inline but not over HASH_MAX is returned in @p content_out (malloc,
 * @p len_out bytes) to be stored as chunks; otherwise that is NULL.
 */
static char *file_metadata(const char *path, const char *name, off_t size,
			   char **content_out, size_t *len_out)
{
	cJSON *m = cJSON_CreateObject();
	char hex[65], *loc, *text;

	cJSON_AddStringToObject(m, "file", name);
	if (size <= HASH_MAX) {
		size_t len = 0;
		char *data = read_small(path, (size_t)size, &len);

		/* The bytes read, which a file still growing may change. */
		cJSON_AddNumberToObject(m, "sizeBytes",
					(double)(data ? (off_t)len : size));
		if (data != NULL && nvcf__sha256_hex(data, len, hex) == NVCF_OK)
			cJSON_AddStringToObject(m, "sha256", hex);
		if (data != NULL && (off_t)len <= INLINE_MAX) {
			char *b64 = malloc(4 * ((len + 2) / 3) + 1);

			if (b64 != NULL) {
				EVP_EncodeBlock((unsigned char *)b64,
						(const unsigned char *)data,
						(int)len);
				cJSON_AddStringToObject(m, "contentBase64",
							b64);
				free(b64);
			}
		} else if (data != NULL) {
			*content_out = data;
			*len_out = len;
			data = NULL;
		}
		free(data);
	} else {
		cJSON_AddNumberToObject(m, "sizeBytes", (double)size);
	}
	loc = nvcf__asprintf("file://%s", path);
	if (loc != NULL)
		cJSON_AddStringToObject(m, "location", loc);
	free(loc);
	text = cJSON_PrintUnformatted(m);
	cJSON_Delete(m);
	return text;
}

/*
 * Publishes every regular file at the top of the results directory,
 * except the progress file, in name order. A name that the progress file
 * already published is skipped.
 */
static void upload_results(rtask *t)
{
	const char *progress_name = strrchr(t->progress, '/') + 1;
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d = opendir(t->results);

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' ||
		    strcmp(de->d_name, progress_name) == 0)
			continue;
		if (n == cap) {
			char **v = realloc(names, (cap ? cap * 2 : 16) *
					   sizeof(char *));

			if (v == NULL)
				break;
			names = v;
			cap = cap ? cap * 2 : 16;
		}
		if ((names[n] = nvcf__strdup(de->d_name)) != NULL)
			n++;
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(char *), name_cmp);
	for (size_t i = 0; i < n; i++) {
		char *path = nvcf__asprintf("%s/%s", t->results, names[i]);
		struct stat sb;

		if (path != NULL && stat(path, &sb) == 0 &&
		    S_ISREG(sb.st_mode) && !published(t, names[i])) {
			char *content = NULL;
			size_t len = 0;
			char *meta = file_metadata(path, names[i], sb.st_size,
						   &content, &len);

			publish_result(t, names[i], meta, content, len);
			free(content);
			free(meta);
		}
		free(path);
		free(names[i]);
	}
	free(names);
}

/* Removes what an earlier run of the same task left in its results. */
static void clear_results(const char *dir)
{
	struct dirent *de;
	DIR *d = opendir(dir);

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		char *path;

		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		path = nvcf__asprintf("%s/%s", dir, de->d_name);
		if (path != NULL)
			unlink(path);
		free(path);
	}
	closedir(d);
}

/* ---- one task ----------------------------------------------------------- */

static void rtask_free(rtask *t)
{
	if (t == NULL)
		return;
	free(t->nca_id);
	free(t->icms_id);
	free(t->gpu);
	free(t->instance_type);
	free(t->record);
	free(t->dir);
	free(t->results);
	free(t->progress);
	free(t->log);
	free(t->end_text);
	for (size_t i = 0; i < t->n_published; i++)
		free(t->published[i]);
	free(t->published);
	free(t);
}

/* Called with the runner's lock held. */
static rtask *find_locked(nvcf__task_runner *r, const char *task_id)
{
	for (rtask *t = r->tasks; t != NULL; t = t->next)
		if (strcmp(t->id, task_id) == 0)
			return t;
	return NULL;
}

/* Called with the lock held: waits until the process ended or @p ms. */
static bool wait_exit_locked(rtask *t, int64_t ms)
{
	int64_t until = nvcf__mono_us() + ms * 1000;

	while (!t->exited) {
		int64_t left = (until - nvcf__mono_us()) / 1000;
		struct timespec ts;

		if (left <= 0)
			return false;
		nvcf__deadline_after(&ts, left);
		pthread_cond_timedwait(&t->r->cond, &t->r->lock, &ts);
	}
	return true;
}

/*
 * Stops the task: SIGTERM to its process group, SIGKILL after @p grace_ms.
 * A container gets the same through the engine, and a MiniService has its
 * pods removed.
 */
static void stop_process(rtask *t, int64_t grace_ms)
{
	nvcf__task_runner *r = t->r;

	if (t->ctr != NULL) {
		nvcf__crt_remove(r->crt, t->ctr, grace_ms);
		return;
	}
	if (t->ms != NULL) {
		nvcf__helm_ms_down(t->ms);
		return;
	}
	pthread_mutex_lock(&r->lock);
	if (t->pid > 0 && !t->exited) {
		kill(-t->pid, SIGTERM);
		if (!wait_exit_locked(t, grace_ms)) {
			nvcf_log_warn(SUB, "task %s (pid %d) ignored SIGTERM "
				      "for %lld ms; killing its process group",
				      t->id, (int)t->pid, (long long)grace_ms);
			kill(-t->pid, SIGKILL);
			if (!wait_exit_locked(t, KILL_WAIT_MS))
				nvcf_log_error(SUB, "task %s (pid %d) did not "
					       "end after SIGKILL", t->id,
					       (int)t->pid);
		}
	}
	pthread_mutex_unlock(&r->lock);
}

typedef enum run_kind {
	RUN_PROCESS,
	RUN_CONTAINER,
	RUN_HELM
} run_kind;

/*
 * Returns the reason the task cannot run on this agent, or NULL with
 * @p kind set and, for a process, @p path set to its executable.
 */
static char *check_image(nvcf__task_runner *r, const cJSON *rec,
			 const char **path, run_kind *kind)
{
	const char *image = jstr(rec, "containerImage");

	*path = NULL;
	*kind = RUN_PROCESS;
	if (jstr(rec, "helmChart") != NULL) {
		*kind = RUN_HELM;
		return r->helm != NULL ? NULL :
		       nvcf__strdup("this cluster runs processes only: Helm "
				    "chart tasks need --docker-socket on "
				    "nvca, whose podman runs the chart");
	}
	if (image == NULL)
		return nvcf__strdup("the task has no containerImage");
	if (strncmp(image, "file:///", 8) != 0) {
		*kind = RUN_CONTAINER;
		return r->crt != NULL ? NULL :
		       nvcf__asprintf("containerImage '%s' is a container "
				      "image: container tasks need "
				      "--docker-socket on nvca; start it "
				      "with one or use a "
				      "file:///path/to/executable image",
				      image);
	}
	*path = image + 7;
	return NULL;
}

static int64_t duration_of(const cJSON *rec, const char *name, int64_t dflt)
{
	int64_t ms;

	if (jstr(rec, name) == NULL ||
	    nvcf__duration_parse(jstr(rec, name), &ms) != NVCF_OK)
		return dflt;
	return ms;
}

/* Starts the process; returns the error that made it impossible. */
static char *start_process(rtask *t, const cJSON *rec, const char *path,
			   bool *skipped)
{
	nvcf__task_runner *r = t->r;
	const char *args = jstr(rec, "containerArgs");
	char **words = NULL, **argv = NULL, *error = NULL;
	nvcf__env env = {0};
	size_t argc = 0;
	int rc;

	*skipped = false;
	if (nvcf__shell_split(args ? args : "", "", &words, &argc) != NVCF_OK)
		return nvcf__asprintf("invalid containerArgs: %s",
				      nvcf_error_last()->message);
	argv = calloc(argc + 2, sizeof(char *));
	build_env(t, rec, &env, false);
	if (argv == NULL || env.v == NULL) {
		error = nvcf__strdup("out of memory starting the task");
		goto out;
	}
	argv[0] = (char *)path;
	for (size_t i = 0; i < argc; i++)
		argv[i + 1] = words[i];
	/* Held across the spawn, so that the reaper finds the pid. */
	pthread_mutex_lock(&r->lock);
	if (t->cancel || r->stopping) {
		*skipped = true;
		pthread_mutex_unlock(&r->lock);
		goto out;
	}
	rc = nvcf__agent_spawn(r->agent, path, argv, env.v, t->log, &t->pid);
	t->started_us = nvcf__mono_us();
	pthread_mutex_unlock(&r->lock);
	if (rc != 0) {
		t->pid = 0;
		error = nvcf__asprintf("cannot start '%s': %s", path,
				       strerror(rc));
	}
out:
	free(argv);
	nvcf__shell_free(words);
	nvcf__env_free(&env);
	return error;
}

/* True when the task must not start: cancelled or the agent stops. */
static bool start_skipped(rtask *t)
{
	bool skip;

	pthread_mutex_lock(&t->r->lock);
	skip = t->cancel || t->r->stopping;
	pthread_mutex_unlock(&t->r->lock);
	return skip;
}

/*
 * Starts the task's container with its results directory bind-mounted at
 * NVCF__TASK_RESULTS_MOUNT; returns the error that made it impossible.
 */
static char *start_container(rtask *t, const cJSON *rec, bool *skipped)
{
	nvcf__crt_spec spec = NVCF__CRT_SPEC_INIT;
	const char *args = jstr(rec, "containerArgs");
	char **words = NULL, *bind = NULL, *error = NULL;
	const char *binds[1];
	nvcf__env env = {0};
	size_t argc = 0;

	*skipped = start_skipped(t);
	if (*skipped)
		return NULL;
	if (nvcf__shell_split(args ? args : "", "", &words, &argc) != NVCF_OK)
		return nvcf__asprintf("invalid containerArgs: %s",
				      nvcf_error_last()->message);
	build_env(t, rec, &env, true);
	bind = nvcf__asprintf("%s:%s", t->results, NVCF__TASK_RESULTS_MOUNT);
	if (env.v == NULL || bind == NULL) {
		error = nvcf__strdup("out of memory starting the task");
		goto out;
	}
	binds[0] = bind;
	spec.image = jstr(rec, "containerImage");
	spec.cmd = words;
	spec.cmd_count = argc;
	spec.env = env.v;
	spec.gpus = t->gpus;
	spec.n_gpus = t->n_gpus;
	spec.cluster_id = nvcf__agent_backend(t->r->agent)->spec.cluster_id;
	spec.function_id = "";
	spec.version_id = "";
	spec.instance_id = t->instance_id;
	spec.log_path = t->log;
	spec.binds = binds;
	spec.bind_count = 1;
	if (nvcf__crt_ctr_new(&t->ctr, &spec) != NVCF_OK) {
		error = nvcf__asprintf("cannot prepare the task container: %s",
				       nvcf_error_last()->message);
		goto out;
	}
	t->started_us = nvcf__mono_us();
	error = nvcf__crt_run(t->r->crt, t->ctr);
out:
	free(bind);
	nvcf__shell_free(words);
	nvcf__env_free(&env);
	return error;
}

/*
 * Starts the task's MiniService, whose pods get the env of a container
 * task and its results directory mounted at NVCF__TASK_RESULTS_MOUNT;
 * returns why it cannot run.
 */
static char *start_helm(rtask *t, const cJSON *rec, bool *skipped)
{
	nvcf__helm_task task = {NULL, t->results};
	nvcf__env env = {0};
	nvcf_status st;
	char *why;

	*skipped = start_skipped(t);
	if (*skipped)
		return NULL;
	build_env(t, rec, &env, true);
	if (env.v == NULL)
		return nvcf__strdup("out of memory starting the task");
	task.env = env.v;
	st = nvcf__helm_ms_new(t->r->helm, &t->ms, t->instance_id, t->icms_id,
			       t->record, &task);
	nvcf__env_free(&env);
	if (st != NVCF_OK)
		return nvcf__asprintf("cannot run the Helm chart task: %s",
				      nvcf_error_last()->message);
	t->started_us = nvcf__mono_us();
	/* A zero timeout starts the reconcile thread without waiting,
	 * because monitor() polls the phase. */
	why = nvcf__helm_ms_up(t->ms, 0, 0);
	free(why);
	return NULL;
}

/*
 * One look at a container or MiniService task; marks it exited, with
 * how it ended, once it finished.
 */
static void poll_end(rtask *t)
{
	char *text = NULL, *reason = NULL;
	bool done = false, failed = false;

	if (t->ctr != NULL) {
		bool oom = false;
		int code = -1;

		if (nvcf__crt_exit_status(t->r->crt, t->ctr, &done, &code,
					  &oom) != NVCF_OK) {
			nvcf_log_warn(SUB, "task %s: %s", t->id,
				      nvcf_error_last()->message);
			return;
		}
		if (!done)
			return;
		failed = code != 0;
		text = code < 0 ? nvcf__strdup("task container vanished") :
		       nvcf__asprintf("task container exited with status %d%s",
				      code, oom ? " (killed for lack of "
				      "memory)" : "");
	} else if (t->ms != NULL) {
		nvcf_crd_phase_t phase = nvcf__helm_ms_phase(t->ms, &reason);

		done = phase == NVCF_CRD_PHASE_COMPLETED ||
		       phase == NVCF_CRD_PHASE_FAILED ||
		       phase == NVCF_CRD_PHASE_INSTALL_FAILED;
		if (!done) {
			free(reason);
			return;
		}
		failed = phase != NVCF_CRD_PHASE_COMPLETED;
		text = nvcf__asprintf("Helm chart task %s%s%s",
				      nvcf_crd_phase_name(phase),
				      reason ? ": " : "",
				      reason ? reason : "");
		free(reason);
	} else {
		return;
	}
	pthread_mutex_lock(&t->r->lock);
	t->exited = true;
	t->failed = failed;
	free(t->end_text);
	t->end_text = text;
	pthread_mutex_unlock(&t->r->lock);
}

/*
 * Runs until the process ends or has to be stopped, reporting progress.
 * @p complete becomes true once the progress file reaches 100.
 */
static ending monitor(rtask *t, bool upload, int64_t run_ms,
		      int64_t grace_ms, bool *complete)
{
	nvcf__task_runner *r = t->r;
	int64_t deadline = run_ms >= 0 ? t->started_us + run_ms * 1000 :
			   INT64_MAX;
	int64_t done_by = 0;
	int reported = -1;

	for (;;) {
		int64_t now = nvcf__mono_us(), wait_ms = POLL_MS;
		struct timespec ts;
		bool exited, cancel, stop;
		int percent;

		if (deadline != INT64_MAX && (deadline - now) / 1000 < wait_ms)
			wait_ms = (deadline - now) / 1000 + 1;
		if (wait_ms < 1)
			wait_ms = 1;
		nvcf__deadline_after(&ts, wait_ms);
		pthread_mutex_lock(&r->lock);
		if (!t->exited && !t->cancel && !r->stopping)
			pthread_cond_timedwait(&r->cond, &r->lock, &ts);
		exited = t->exited;
		cancel = t->cancel;
		stop = r->stopping;
		pthread_mutex_unlock(&r->lock);
		if (!exited && !cancel && !stop &&
		    (t->ctr != NULL || t->ms != NULL)) {
			poll_end(t);
			pthread_mutex_lock(&r->lock);
			exited = t->exited;
			pthread_mutex_unlock(&r->lock);
		}
		if (exited)
			return END_EXITED;
		if (cancel)
			return END_CANCELED;
		if (stop)
			return END_AGENT_STOP;
		now = nvcf__mono_us();
		if (now >= deadline)
			return END_RUNTIME;
		percent = progress_poll(t, upload);
		if (percent == 100 && !*complete) {
			/* Writing 100 ends a task: it gets its grace period
			 * to exit, and the agent completes it after that. */
			*complete = true;
			done_by = now + (grace_ms > 0 ? grace_ms : 1000) * 1000;
		} else if (percent > reported && percent < 100) {
			nvcf_status st = report(t, NULL, percent, NULL, NULL,
						NULL);

			if (st == NVCF_EPERM || st == NVCF_ENOTFOUND)
				return END_CANCELED;
			reported = percent;
		}
		if (*complete && now >= done_by) {
			nvcf_log_info(SUB, "task %s wrote 100%% but still runs "
				      "after its grace period; stopping it",
				      t->id);
			stop_process(t, grace_ms);
			return END_EXITED;
		}
	}
}

/* Reports how the process ended, after publishing its results. */
static void finish_exited(rtask *t, bool upload, bool complete)
{
	char *reason, *tail, *error;
	int percent = progress_poll(t, upload);

	bool ok;

	if (percent == 100)
		complete = true;
	if (upload)
		upload_results(t);
	if (t->ctr != NULL) {
		/* The log lines are read from the engine before removal. */
		nvcf__crt_save_logs(t->r->crt, t->ctr);
		ok = t->exited && !t->failed;
	} else if (t->ms != NULL) {
		ok = t->exited && !t->failed;
	} else {
		ok = WIFEXITED(t->wstatus) && WEXITSTATUS(t->wstatus) == 0;
	}
	if (complete || ok) {
		nvcf_log_info(SUB, "task %s completed", t->id);
		report(t, "COMPLETED", 100, NULL, "TERMINATED", NULL);
		return;
	}
	reason = t->ctr != NULL || t->ms != NULL ?
		 nvcf__strdup(t->end_text ? t->end_text :
			      "task container ended") :
		 exit_text(t->wstatus);
	tail = t->ms != NULL ? NULL : log_tail(t->log);
	error = tail && tail[0] ?
		nvcf__asprintf("%s; last output:\n%s", reason ? reason : "",
			       tail) :
		NULL;
	nvcf_log_warn(SUB, "task %s errored: %s", t->id, reason ? reason : "");
	report(t, "ERRORED", -1, error ? error : reason, "TERMINATED", NULL);
	free(error);
	free(tail);
	free(reason);
}

static void *task_main(void *arg)
{
	rtask *t = arg;
	nvcf__task_runner *r = t->r;
	cJSON *rec = cJSON_Parse(t->record);
	const char *strategy = jstr(rec, "resultHandlingStrategy");
	bool upload = strategy == NULL || strcmp(strategy, "NONE") != 0;
	int64_t run_ms = duration_of(rec, "maxRuntimeDuration", -1);
	int64_t grace_ms = duration_of(rec, "terminationGracePeriodDuration",
				       run_ms >= 0 && run_ms < 3600000 ?
				       run_ms : 3600000);
	const char *path = NULL;
	char *error = NULL, msg[160];
	bool complete = false, skipped = false;
	run_kind kind = RUN_PROCESS;
	nvcf_status st;
	ending end;

	st = report(t, "LAUNCHED", -1, NULL, "STARTING", NULL);
	if (st == NVCF_EPERM || st == NVCF_ENOTFOUND)
		goto done;
	if ((error = check_image(r, rec, &path, &kind)) == NULL)
		error = kind == RUN_CONTAINER ?
			start_container(t, rec, &skipped) :
			kind == RUN_HELM ? start_helm(t, rec, &skipped) :
			start_process(t, rec, path, &skipped);
	if (error != NULL) {
		nvcf_log_warn(SUB, "task %s cannot run: %s", t->id, error);
		report(t, "ERRORED", -1, error, "TERMINATED", NULL);
		goto done;
	}
	if (skipped) {
		bool cancelled;

		pthread_mutex_lock(&r->lock);
		cancelled = t->cancel;
		pthread_mutex_unlock(&r->lock);
		if (!cancelled)
			report(t, "ERRORED", -1, "nvca stopped before the task "
			       "started", "TERMINATED", NULL);
		goto done;
	}
	if (kind == RUN_PROCESS)
		snprintf(msg, sizeof(msg), "pid %d", (int)t->pid);
	else if (kind == RUN_CONTAINER)
		snprintf(msg, sizeof(msg), "container %.12s",
			 nvcf__crt_id(t->ctr));
	else
		snprintf(msg, sizeof(msg), "MiniService %.140s",
			 t->instance_id);
	nvcf_log_info(SUB, "task %s started: %s, %u %s GPUs, directory %s",
		      t->id, msg, t->n_gpus, t->gpu, t->dir);
	record_write(t, "RUNNING");
	st = report(t, "RUNNING", -1, NULL, "RUNNING", NULL);
	if (st == NVCF_EPERM || st == NVCF_ENOTFOUND)
		end = END_CANCELED;
	else
		end = monitor(t, upload, run_ms, grace_ms, &complete);

	switch (end) {
	case END_EXITED:
		finish_exited(t, upload, complete);
		break;
	case END_CANCELED:
		nvcf_log_info(SUB, "task %s cancelled; stopping it", t->id);
		stop_process(t, grace_ms);
		break;
	case END_RUNTIME:
		snprintf(msg, sizeof(msg), "maxRuntimeDuration %s elapsed; "
			 "stopping the task", jstr(rec, "maxRuntimeDuration"));
		nvcf_log_info(SUB, "task %s: %s", t->id, msg);
		report(t, "EXCEEDED_MAX_RUNTIME_DURATION", -1, NULL,
		       "TERMINATED", msg);
		stop_process(t, grace_ms);
		break;
	case END_AGENT_STOP:
		stop_process(t, grace_ms < AGENT_STOP_GRACE_MS ? grace_ms :
			     AGENT_STOP_GRACE_MS);
		report(t, "ERRORED", -1, "nvca stopped while the task ran",
		       "TERMINATED", NULL);
		break;
	}
done:
	if (t->ctr != NULL) {
		/* Its logs are in t->log by now; the container can go. */
		nvcf__crt_remove(r->crt, t->ctr, 0);
		nvcf__crt_ctr_free(t->ctr);
		t->ctr = NULL;
	}
	nvcf__helm_ms_free(t->ms);
	t->ms = NULL;
	free(error);
	cJSON_Delete(rec);
	nvcf__agent_gpu_give(r->agent, t->gpu, t->gpus, t->n_gpus);
	record_delete(r, t->id);
	pthread_mutex_lock(&r->lock);
	for (rtask **pp = &r->tasks; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	}
	r->busy--;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	rtask_free(t);
	return NULL;
}

/* ---- orders ------------------------------------------------------------- */

static void msg_ack(natsMsg *msg)
{
	jsErrCode jerr = 0;

	if (natsMsg_AckSync(msg, NULL, &jerr) != NATS_OK)
		nvcf_log_warn(SUB, "acknowledging task order on '%s' failed "
			      "(%d); a redelivery finds the task known",
			      natsMsg_GetSubject(msg), (int)jerr);
	natsMsg_Destroy(msg);
}

/* Returns the status of the task record, or NULL and sets @p deleted. */
static char *record_status(nvcf__task_runner *r, const char *nca_id,
			   const char *task_id, bool *deleted)
{
	char key[160], *value = NULL, *status = NULL;
	nvcf_status st;
	cJSON *rec;

	snprintf(key, sizeof(key), "%s.%s", nca_id, task_id);
	st = nvcf_bus_kv_get(r->bus, NVCF_BUCKET_TASKS, key, &value, NULL,
			     NULL);
	*deleted = st == NVCF_ENOTFOUND;
	if (st != NVCF_OK)
		return NULL;
	rec = cJSON_Parse(value);
	nvcf_free(value);
	status = jstr(rec, "status") ? nvcf__strdup(jstr(rec, "status")) :
		 NULL;
	cJSON_Delete(rec);
	return status;
}

static rtask *rtask_new(nvcf__task_runner *r, const Nvcf__CreateInstances *m)
{
	const char *state = nvcf__agent_state_dir(r->agent);
	rtask *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->r = r;
	snprintf(t->id, sizeof(t->id), "%s", m->task_id);
	snprintf(t->instance_id, sizeof(t->instance_id), "0-%s",
		 m->icms_request_id);
	t->nca_id = nvcf__strdup(m->nca_id);
	t->icms_id = nvcf__strdup(m->icms_request_id);
	t->gpu = nvcf__strdup(m->gpu);
	t->instance_type = nvcf__strdup(m->instance_type);
	t->record = nvcf__strdup(m->task_json);
	t->dir = nvcf__asprintf("%s/tasks/%s", state, m->task_id);
	t->results = nvcf__asprintf("%s/results", t->dir ? t->dir : "");
	t->progress = nvcf__asprintf("%s/progress", t->results ?
				     t->results : "");
	t->log = nvcf__asprintf("%s/output.log", t->dir ? t->dir : "");
	t->created_us = nvcf__now_us();
	if (t->nca_id == NULL || t->icms_id == NULL || t->gpu == NULL ||
	    t->instance_type == NULL || t->record == NULL || t->dir == NULL ||
	    t->results == NULL || t->progress == NULL || t->log == NULL) {
		rtask_free(t);
		return NULL;
	}
	return t;
}

static nvcf_status task_dirs(nvcf__task_runner *r, rtask *t)
{
	char *top = nvcf__asprintf("%s/tasks",
				   nvcf__agent_state_dir(r->agent));
	nvcf_status st;

	if (top == NULL)
		return nvcf__error_oom();
	st = make_dir(top);
	free(top);
	if (st == NVCF_OK && (st = make_dir(t->dir)) == NVCF_OK &&
	    (st = make_dir(t->results)) == NVCF_OK)
		clear_results(t->results);
	return st;
}

/* Reports a task that cannot run here and drops its order. */
static void reject_order(nvcf__task_runner *r, natsMsg *msg,
		   const Nvcf__CreateInstances *m, const char *reason)
{
	nvcf__task_report_info info = NVCF__TASK_REPORT_INIT;

	nvcf_log_warn(SUB, "task order %s for task %s rejected: %s",
		      m->icms_request_id, m->task_id, reason);
	info.status = "ERRORED";
	info.error = reason;
	if (nvcf__task_report(r->bus, m->nca_id, m->task_id, &info) !=
	    NVCF_OK)
		nvcf_log_info(SUB, "task %s: %s", m->task_id,
			      nvcf_error_last()->message);
	msg_ack(msg);
}

void nvcf__task_order(nvcf__task_runner *r, natsMsg *msg,
		      const Nvcf__CreateInstances *m)
{
	const nvcf__backend_gpu *g = NULL;
	const nvcf__instance_type *type;
	char *status, *reason;
	cJSON *rec;
	rtask *t;
	bool known, deleted = false;

	rec = cJSON_Parse(m->task_json ? m->task_json : "");
	if (!token_valid(m->icms_request_id) ||
	    !nvcf__uuid_valid(m->task_id) || !nvcf__nca_id_valid(m->nca_id) ||
	    !cJSON_IsObject(rec)) {
		nvcf_log_error(SUB, "malformed task order on '%s': %s; "
			       "terminating it", natsMsg_GetSubject(msg),
			       !token_valid(m->icms_request_id) ?
			       "icms_request_id is empty or not one KV key "
			       "token" :
			       !nvcf__uuid_valid(m->task_id) ?
			       "task_id is not a UUID" :
			       !nvcf__nca_id_valid(m->nca_id) ?
			       "nca_id is not an account id" :
			       "task_json is not a JSON object");
		cJSON_Delete(rec);
		natsMsg_Term(msg, NULL);
		natsMsg_Destroy(msg);
		return;
	}
	cJSON_Delete(rec);
	pthread_mutex_lock(&r->lock);
	known = find_locked(r, m->task_id) != NULL;
	if (!known && r->stopping) {
		pthread_mutex_unlock(&r->lock);
		natsMsg_NakWithDelay(msg, NAK_DELAY_MS, NULL);
		natsMsg_Destroy(msg);
		return;
	}
	pthread_mutex_unlock(&r->lock);
	if (known) {
		nvcf_log_info(SUB, "task order %s: task %s runs already; "
			      "acknowledging the redelivery",
			      m->icms_request_id, m->task_id);
		msg_ack(msg);
		return;
	}
	/* A task cancelled or deleted while its order waited is dropped. */
	status = record_status(r, m->nca_id, m->task_id, &deleted);
	if (deleted || (status != NULL && nvcf__task_status_terminal(status))) {
		nvcf_log_info(SUB, "task order %s: task %s is %s; dropping "
			      "it", m->icms_request_id, m->task_id,
			      deleted ? "deleted" : status);
		free(status);
		msg_ack(msg);
		return;
	}
	free(status);
	type = nvcf__backend_find_type(nvcf__agent_backend(r->agent), m->gpu,
				       m->instance_type, &g);
	if (type == NULL || type->gpu_count > MAX_TASK_GPUS) {
		reason = nvcf__asprintf("GPU '%s' with instance type '%s' is "
					"not offered by cluster %s", m->gpu,
					m->instance_type, m->cluster_id);
		reject_order(r, msg, m,
			     reason ? reason : "instance type not offered");
		free(reason);
		return;
	}
	t = rtask_new(r, m);
	if (t == NULL) {
		natsMsg_NakWithDelay(msg, NAK_DELAY_MS, NULL);
		natsMsg_Destroy(msg);
		return;
	}
	if (nvcf__agent_gpu_take(r->agent, m->gpu, type->gpu_count,
				 t->gpus) != NVCF_OK) {
		/* Placement saw room that another order took: the order
		 * comes back until GPUs free up or the task is deleted. */
		nvcf_log_info(SUB, "task order %s: %u %s GPUs are not free; "
			      "retrying in %d ms", m->icms_request_id,
			      type->gpu_count, m->gpu, NAK_DELAY_MS);
		rtask_free(t);
		natsMsg_NakWithDelay(msg, NAK_DELAY_MS, NULL);
		natsMsg_Destroy(msg);
		return;
	}
	t->n_gpus = type->gpu_count;
	if (task_dirs(r, t) != NVCF_OK) {
		reason = nvcf__strdup(nvcf_error_last()->message);
		nvcf__agent_gpu_give(r->agent, t->gpu, t->gpus, t->n_gpus);
		rtask_free(t);
		reject_order(r, msg, m,
			     reason ? reason : "cannot create its directory");
		free(reason);
		return;
	}
	record_write(t, "LAUNCHED");
	pthread_mutex_lock(&r->lock);
	t->next = r->tasks;
	r->tasks = t;
	r->busy++;
	pthread_mutex_unlock(&r->lock);
	nvcf_log_info(SUB, "task order %s: task %s on %u %s GPUs",
		      m->icms_request_id, m->task_id, t->n_gpus, m->gpu);
	msg_ack(msg);

	{
		pthread_attr_t attr;
		pthread_t thread;
		int rc;

		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		rc = pthread_create(&thread, &attr, task_main, t);
		pthread_attr_destroy(&attr);
		if (rc != 0) {
			nvcf_log_error(SUB, "cannot start a thread for task "
				       "%s: %s", t->id, strerror(rc));
			report(t, "ERRORED", -1, "nvca could not start a "
			       "thread for the task", NULL, NULL);
			nvcf__agent_gpu_give(r->agent, t->gpu, t->gpus,
					     t->n_gpus);
			record_delete(r, t->id);
			pthread_mutex_lock(&r->lock);
			r->tasks = t->next;
			r->busy--;
			pthread_mutex_unlock(&r->lock);
			rtask_free(t);
		}
	}
}

bool nvcf__task_cancel(nvcf__task_runner *r, const char *task_id,
		       const char *reason)
{
	rtask *t;

	if (r == NULL || task_id == NULL)
		return false;
	pthread_mutex_lock(&r->lock);
	t = find_locked(r, task_id);
	if (t != NULL) {
		t->cancel = true;
		pthread_cond_broadcast(&r->cond);
	}
	pthread_mutex_unlock(&r->lock);
	nvcf_log_info(SUB, "termination order for task %s (%s): %s", task_id,
		      reason && reason[0] ? reason : "no reason given",
		      t ? "stopping it" : "it does not run here");
	return t != NULL;
}

bool nvcf__task_reaped(nvcf__task_runner *r, pid_t pid, int status)
{
	bool hit = false;

	if (r == NULL)
		return false;
	pthread_mutex_lock(&r->lock);
	for (rtask *t = r->tasks; t != NULL; t = t->next) {
		if (t->pid == pid && !t->exited) {
			t->exited = true;
			t->wstatus = status;
			hit = true;
			break;
		}
	}
	if (hit)
		pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	return hit;
}

/* ---- runner ------------------------------------------------------------- */

/* Stops and reports the tasks an earlier agent of the cluster ran. */
static void settle_leftovers(nvcf__task_runner *r)
{
	char **keys = NULL;
	size_t n = 0;

	if (nvcf_bus_kv_keys(r->bus, r->bucket, "task.>", &keys, &n) !=
	    NVCF_OK) {
		nvcf_log_warn(SUB, "listing task records of %s failed: %s",
			      r->bucket, nvcf_error_last()->message);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		nvcf__task_report_info info = NVCF__TASK_REPORT_INIT;
		const char *id, *nca;
		char *value = NULL, entry[64];
		const cJSON *pid;
		cJSON *rec;

		if (nvcf_bus_kv_get(r->bus, r->bucket, keys[i], &value, NULL,
				    NULL) != NVCF_OK)
			continue;
		rec = cJSON_Parse(value);
		nvcf_free(value);
		id = jstr(rec, "taskId");
		nca = jstr(rec, "ncaId");
		pid = cJSON_GetObjectItemCaseSensitive(rec, "pid");
		if (id != NULL && cJSON_IsNumber(pid)) {
			snprintf(entry, sizeof(entry), "NVCT_TASK_ID=%s", id);
			if (proc_runs_with((pid_t)pid->valueint, entry))
				kill(-(pid_t)pid->valueint, SIGKILL);
		}
		if (id != NULL && nca != NULL) {
			info.status = "ERRORED";
			info.error = "nvca restarted while the task ran; "
				     "stopped it";
			if (nvcf__task_report(r->bus, nca, id, &info) ==
			    NVCF_OK)
				nvcf_log_warn(SUB, "task %s of an earlier nvca:"
					      " %s", id, info.error);
		}
		nvcf_bus_kv_delete(r->bus, r->bucket, keys[i]);
		cJSON_Delete(rec);
	}
	nvcf_strings_free(keys, n);
}

nvcf_status nvcf__task_runner_new(nvcf__task_runner **out, nvcf_agent *agent)
{
	nvcf__task_runner *r;

	if (out == NULL || agent == NULL)
		return nvcf__error_set(NVCF_EINVAL, "nvcf__task_runner_new: "
				       "NULL out or agent");
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return nvcf__error_oom();
	r->agent = agent;
	r->bus = nvcf__agent_bus(agent);
	snprintf(r->bucket, sizeof(r->bucket), "nvca_%s",
		 nvcf__agent_backend(agent)->spec.cluster_id);
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	settle_leftovers(r);
	*out = r;
	return NVCF_OK;
}

void nvcf__task_runner_use(nvcf__task_runner *r, nvcf__crt *crt,
			   nvcf__helm *helm)
{
	if (r == NULL)
		return;
	pthread_mutex_lock(&r->lock);
	r->crt = crt;
	r->helm = helm;
	pthread_mutex_unlock(&r->lock);
}

void nvcf__task_runner_stop(nvcf__task_runner *r)
{
	if (r == NULL)
		return;
	pthread_mutex_lock(&r->lock);
	r->stopping = true;
	pthread_cond_broadcast(&r->cond);
	while (r->busy > 0)
		pthread_cond_wait(&r->cond, &r->lock);
	pthread_mutex_unlock(&r->lock);
}

void nvcf__task_runner_free(nvcf__task_runner *r)
{
	if (r == NULL)
		return;
	nvcf__task_runner_stop(r);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	free(r);
}
