/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <yaml.h>

#include "agent_internal.h"
#include "crd/crd_internal.h"
#include "helm.h"

#define SUB "helm"
#define CHILD_STACK (256 * 1024)
#define OUTPUT_MAX (8 * 1024 * 1024)
#define DEFAULT_POLL_MS 500

extern char **environ;

struct nvcf__helm {
	char *podman, *url, *helm, *dir, *cluster_id, *bucket;
	nvcf_bus *bus;
	nvcf_crd_options crd;
	int64_t poll_ms;
};

struct nvcf__helm_ms {
	nvcf__helm *h;
	char *name, *icms_name, *chart, *service, *values;
	bool is_task;
	/* A task's copy of its nvcf__helm_task. */
	char **task_env;
	char *results_dir;
	nvcf_crd_miniservice *obj;   /* the reconcile thread's */
	char *stored;                /* JSON last stored */
	int host_port;
	char manifest[512], log[512];

	pthread_mutex_t lock;
	pthread_cond_t cond;
	nvcf_crd_phase_t phase;      /* under lock: last phase */
	char *reason;                /* under lock: why it failed */
	bool started, stop, down;
	pthread_t thread;
};

/* ---- running podman and helm -------------------------------------------- */

typedef struct child {
	const char *path;
	char *const *argv;
	int out_fd, err_fd;
	/* Made by the agent: the middle process must not allocate. */
	posix_spawn_file_actions_t actions;
	posix_spawnattr_t attr;
} child;

/*
 * The middle process: a copy of the agent that never calls exec, so it
 * keeps its zero exit signal (exec would turn it into SIGCHLD). It starts
 * the command with posix_spawn, which takes no locks in glibc, and ends
 * with the command's exit code (128 + signal when killed). It allocates
 * nothing, because another thread of the agent may have held the malloc
 * lock when the copy was made.
 *
 * It runs on a stack of its own, which AddressSanitizer does not know:
 * the sanitizer's vfork interceptor and its no-return hook would clear
 * the shadow of the stack it believes in and can crash. So the function
 * is not instrumented, and posix_spawn, which glibc runs on a fresh
 * stack without calling vfork, replaces vfork.
 */
__attribute__((no_sanitize_address))
static int middle_main(void *arg)
{
	const child *c = arg;
	int status = 0;
	pid_t pid;

	if (posix_spawn(&pid, c->path, &c->actions, &c->attr, c->argv,
			environ) != 0)
		_exit(127);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			_exit(126);
	_exit(WIFEXITED(status) ? WEXITSTATUS(status) :
	      128 + WTERMSIG(status));
}

/*
 * Runs @p argv (argv[0] an absolute path) to its end and returns its exit
 * code (128 + signal when killed), or -1 when it could not start. Its
 * stdout goes to @p out when not NULL, its stderr to @p err_fd.
 *
 * The agent's reaper waits for any child and would take the status of a
 * child started here. So the command runs under a middle process whose
 * end delivers no signal, so only a wait with __WCLONE reaps it.
 */
/*
 * Prepares how the middle process starts the command: an empty signal
 * mask, SIGPIPE at its default, stdin from /dev/null, and stdout and
 * stderr to @p c's descriptors or /dev/null.
 */
static bool child_prepare(child *c)
{
	sigset_t none, pipe_only;
	bool ok;

	sigemptyset(&none);
	sigemptyset(&pipe_only);
	sigaddset(&pipe_only, SIGPIPE);
	if (posix_spawnattr_init(&c->attr) != 0)
		return false;
	if (posix_spawn_file_actions_init(&c->actions) != 0) {
		posix_spawnattr_destroy(&c->attr);
		return false;
	}
	ok = posix_spawnattr_setsigmask(&c->attr, &none) == 0 &&
	     posix_spawnattr_setsigdefault(&c->attr, &pipe_only) == 0 &&
	     posix_spawnattr_setflags(&c->attr, POSIX_SPAWN_SETSIGMASK |
				      POSIX_SPAWN_SETSIGDEF) == 0 &&
	     posix_spawn_file_actions_addopen(&c->actions, 0, "/dev/null",
					      O_RDWR, 0) == 0;
	if (ok && c->out_fd >= 0)
		ok = posix_spawn_file_actions_adddup2(&c->actions, c->out_fd,
						      1) == 0;
	else if (ok)
		ok = posix_spawn_file_actions_addopen(&c->actions, 1,
						      "/dev/null", O_RDWR,
						      0) == 0;
	if (ok && c->err_fd >= 0)
		ok = posix_spawn_file_actions_adddup2(&c->actions, c->err_fd,
						      2) == 0;
	else if (ok)
		ok = posix_spawn_file_actions_addopen(&c->actions, 2,
						      "/dev/null", O_RDWR,
						      0) == 0;
	if (!ok) {
		posix_spawn_file_actions_destroy(&c->actions);
		posix_spawnattr_destroy(&c->attr);
	}
	return ok;
}

static void child_release(child *c)
{
	posix_spawn_file_actions_destroy(&c->actions);
	posix_spawnattr_destroy(&c->attr);
}

static int run(char *const argv[], nvcf__buf *out, int err_fd)
{
	child c = {.path = argv[0], .argv = argv, .out_fd = -1,
		   .err_fd = err_fd};
	int pipefd[2] = {-1, -1}, status = 0;
	char *stack = malloc(CHILD_STACK), buf[4096];
	pid_t pid;
	ssize_t n;

	if (stack == NULL)
		return -1;
	if (out != NULL) {
		if (pipe2(pipefd, O_CLOEXEC) != 0) {
			free(stack);
			return -1;
		}
		c.out_fd = pipefd[1];
	}
	if (!child_prepare(&c)) {
		free(stack);
		if (pipefd[0] >= 0) {
			close(pipefd[0]);
			close(pipefd[1]);
		}
		return -1;
	}
	pid = clone(middle_main, stack + CHILD_STACK, 0, &c);
	free(stack);
	child_release(&c);
	if (pipefd[1] >= 0)
		close(pipefd[1]);
	if (pid < 0) {
		if (pipefd[0] >= 0)
			close(pipefd[0]);
		return -1;
	}
	while (pipefd[0] >= 0 &&
	       ((n = read(pipefd[0], buf, sizeof(buf))) > 0 ||
		(n < 0 && errno == EINTR)))
		if (n > 0 && out->len < OUTPUT_MAX)
			nvcf__buf_append(out, buf, (size_t)n);
	if (pipefd[0] >= 0)
		close(pipefd[0]);
	while (waitpid(pid, &status, __WCLONE) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static bool run_ok(int status)
{
	return status == 0;
}

/* Runs podman with @p args (NULL-terminated, at most 16). */
static int podman(nvcf__helm *h, nvcf__buf *out, int err_fd,
		  const char *const *args)
{
	char *argv[20];
	int n = 0;

	argv[n++] = h->podman;
	if (h->url != NULL) {
		argv[n++] = "--url";
		argv[n++] = h->url;
	}
	for (size_t i = 0; args[i] != NULL && n < 19; i++)
		argv[n++] = (char *)args[i];
	argv[n] = NULL;
	return run(argv, out, err_fd);
}

static char *find_on_path(const char *name)
{
	const char *path = getenv("PATH");
	char *copy, *save = NULL, *found = NULL;

	if (path == NULL || (copy = nvcf__strdup(path)) == NULL)
		return NULL;
	for (char *dir = strtok_r(copy, ":", &save); dir && !found;
	     dir = strtok_r(NULL, ":", &save)) {
		char *p = nvcf__asprintf("%s/%s", dir, name);

		if (p != NULL && access(p, X_OK) == 0)
			found = p;
		else
			free(p);
	}
	free(copy);
	return found;
}

/* ---- rendering ---------------------------------------------------------- */

static int emit_to_buf(void *data, unsigned char *bytes, size_t size)
{
	return nvcf__buf_append(data, bytes, size) == NVCF_OK;
}

/* Parses every document of a YAML (or JSON) stream into @p docs. */
static nvcf_status parse_docs(const char *text, size_t len,
			      const char *origin, cJSON *docs)
{
	yaml_parser_t parser;
	nvcf_status st = NVCF_OK;

	if (!yaml_parser_initialize(&parser))
		return nvcf__error_oom();
	yaml_parser_set_input_string(&parser, (const unsigned char *)text,
				     len);
	for (;;) {
		yaml_document_t doc;
		yaml_emitter_t em;
		nvcf__buf one = {0};
		cJSON *tree = NULL;

		if (!yaml_parser_load(&parser, &doc)) {
			st = nvcf__error_set(NVCF_EINVAL, "manifests %s: "
					     "invalid YAML at line %zu: %s: "
					     "fix the chart's output", origin,
					     parser.problem_mark.line + 1,
					     parser.problem ? parser.problem :
					     "parse error");
			break;
		}
		if (yaml_document_get_root_node(&doc) == NULL) {
			yaml_document_delete(&doc);
			break;  /* end of the stream */
		}
		/* The document goes back to text so that the CRD module's
		 * YAML reader, which takes one document, converts it. */
		if (!yaml_emitter_initialize(&em)) {
			yaml_document_delete(&doc);
			st = nvcf__error_oom();
			break;
		}
		yaml_emitter_set_output(&em, emit_to_buf, &one);
		yaml_emitter_set_unicode(&em, 1);
		if (!yaml_emitter_dump(&em, &doc) || !yaml_emitter_close(&em)) {
			yaml_emitter_delete(&em);
			nvcf__buf_free(&one);
			st = nvcf__error_oom();
			break;
		}
		yaml_emitter_delete(&em);
		st = nvcf__crd_yaml_parse(one.data ? one.data : "", one.len,
					  "manifest", &tree);
		nvcf__buf_free(&one);
		if (st != NVCF_OK)
			break;
		if (cJSON_IsObject(tree))
			cJSON_AddItemToArray(docs, tree);
		else
			cJSON_Delete(tree);
	}
	yaml_parser_delete(&parser);
	return st;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static nvcf_status read_file(const char *path, nvcf__buf *out)
{
	char buf[8192];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return nvcf__error_set(errno == ENOENT ? NVCF_ENOTFOUND :
				       NVCF_EIO, "cannot read helmChart file "
				       "%s: %s", path, strerror(errno));
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (nvcf__buf_append(out, buf, (size_t)n) != NVCF_OK) {
			close(fd);
			return nvcf__error_oom();
		}
	close(fd);
	return NVCF_OK;
}

/* Renders a chart that needs helm: `helm template RELEASE CHART`. */
static nvcf_status helm_template(nvcf__helm *h, const char *helm,
				 const char *release, const char *chart,
				 const char *values_json, nvcf__buf *out)
{
	char values_path[600];
	char *argv[8];
	int n = 0, fd, status;

	snprintf(values_path, sizeof(values_path), "%s/%s.values.json",
		 h->dir, release);
	fd = open(values_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		  0600);
	if (fd < 0)
		return nvcf__error_set(NVCF_EIO, "cannot write %s: %s",
				       values_path, strerror(errno));
	/* JSON is YAML, so helm reads the values as they are. */
	if (values_json == NULL)
		values_json = "{}";
	if (write(fd, values_json, strlen(values_json)) < 0) {
		close(fd);
		return nvcf__error_set(NVCF_EIO, "cannot write %s: %s",
				       values_path, strerror(errno));
	}
	close(fd);
	argv[n++] = (char *)helm;
	argv[n++] = "template";
	argv[n++] = (char *)release;
	argv[n++] = (char *)chart;
	argv[n++] = "--values";
	argv[n++] = values_path;
	argv[n] = NULL;
	status = run(argv, out, -1);
	if (!run_ok(status))
		return nvcf__error_set(NVCF_EINVAL, "helm template of %s "
				       "failed (exit status %d): check the "
				       "chart and its values", chart,
				       status);
	return NVCF_OK;
}

nvcf_status nvcf__helm_render(nvcf__helm *h, const char *release,
			      const char *chart_url, const char *values_json,
			      cJSON **docs_out)
{
	const char *path = NULL;
	nvcf__buf text = {0};
	char *helm = NULL;
	struct stat sb;
	nvcf_status st;
	cJSON *docs;

	if (h == NULL || release == NULL || chart_url == NULL ||
	    docs_out == NULL)
		return nvcf__error_set(NVCF_EINVAL, "helm render: NULL "
				       "argument");
	if (strncmp(chart_url, "file://", 7) == 0)
		path = chart_url + 7;
	if (path != NULL && stat(path, &sb) != 0)
		return nvcf__error_set(NVCF_ENOTFOUND, "helmChart %s: %s: "
				       "give the path of rendered manifests "
				       "on the agent's host", chart_url,
				       strerror(errno));
	if (path != NULL && S_ISREG(sb.st_mode) && !ends_with(path, ".tgz") &&
	    !ends_with(path, ".tar.gz")) {
		st = read_file(path, &text);
	} else {
		helm = h->helm ? nvcf__strdup(h->helm) : find_on_path("helm");
		if (helm != NULL && strchr(helm, '/') == NULL) {
			char *full = find_on_path(helm);

			free(helm);
			helm = full;
		}
		if (helm == NULL)
			return nvcf__error_set(NVCF_EINVAL,
				"helmChart %s needs rendering, and helm is not "
				"installed on cluster %s: install helm on the "
				"agent's PATH, or give a file:// URL of "
				"rendered manifests (YAML or JSON)", chart_url,
				h->cluster_id);
		st = helm_template(h, helm, release, path ? path : chart_url,
				   values_json, &text);
		free(helm);
	}
	if (st != NVCF_OK) {
		nvcf__buf_free(&text);
		return st;
	}
	if ((docs = cJSON_CreateArray()) == NULL) {
		nvcf__buf_free(&text);
		return nvcf__error_oom();
	}
	st = parse_docs(text.data ? text.data : "", text.len, chart_url, docs);
	nvcf__buf_free(&text);
	if (st == NVCF_OK && cJSON_GetArraySize(docs) == 0)
		st = nvcf__error_set(NVCF_EINVAL, "helmChart %s holds no "
				     "manifest: render the chart first",
				     chart_url);
	if (st != NVCF_OK) {
		cJSON_Delete(docs);
		return st;
	}
	*docs_out = docs;
	return NVCF_OK;
}

/* ---- preparing manifests for podman ------------------------------------- */

static const char *str_of(const cJSON *obj, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static cJSON *obj_of(cJSON *parent, const char *name)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(parent, name);

	if (cJSON_IsObject(v))
		return v;
	cJSON_DeleteItemFromObjectCaseSensitive(parent, name);
	return cJSON_AddObjectToObject(parent, name);
}

static void set_str(cJSON *obj, const char *name, const char *value)
{
	cJSON_DeleteItemFromObjectCaseSensitive(obj, name);
	cJSON_AddStringToObject(obj, name, value);
}

/* The pod template of a workload document, and its metadata. */
static cJSON *pod_spec(cJSON *doc, cJSON **meta_out)
{
	const char *kind = str_of(doc, "kind");
	cJSON *spec = cJSON_GetObjectItemCaseSensitive(doc, "spec");

	if (kind == NULL || !cJSON_IsObject(spec))
		return NULL;
	if (strcmp(kind, "Pod") == 0) {
		*meta_out = obj_of(doc, "metadata");
		return spec;
	}
	if (strcmp(kind, "Deployment") == 0) {
		cJSON *tpl = obj_of(spec, "template");

		*meta_out = obj_of(tpl, "metadata");
		return obj_of(tpl, "spec");
	}
	return NULL;
}

/* True when every selector label of the Service is on the pod. */
static bool selected(const cJSON *selector, const cJSON *meta)
{
	const cJSON *labels = cJSON_GetObjectItemCaseSensitive(meta, "labels");
	const cJSON *sel;

	cJSON_ArrayForEach(sel, selector) {
		const char *v = str_of(labels, sel->string);

		if (!cJSON_IsString(sel) || v == NULL ||
		    strcmp(v, sel->valuestring) != 0)
			return false;
	}
	return true;
}

/* Finds the container port @p target names (a number or a port name). */
static cJSON *find_port(cJSON *docs, const cJSON *selector,
			const cJSON *target, cJSON **container_out)
{
	cJSON *doc, *meta = NULL;

	cJSON_ArrayForEach(doc, docs) {
		cJSON *spec = pod_spec(doc, &meta), *c, *p;

		if (spec == NULL || !selected(selector, meta))
			continue;
		cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(
					      spec, "containers")) {
			if (*container_out == NULL)
				*container_out = c;
			cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(
						      c, "ports")) {
				const cJSON *cp =
					cJSON_GetObjectItemCaseSensitive(
						p, "containerPort");
				const char *name = str_of(p, "name");

				if ((cJSON_IsNumber(target) &&
				     cJSON_IsNumber(cp) &&
				     cp->valueint == target->valueint) ||
				    (cJSON_IsString(target) && name &&
				     strcmp(name, target->valuestring) == 0))
					return p;
			}
		}
	}
	return NULL;
}

static nvcf_status publish(cJSON *docs, const char *service, int host_port)
{
	const cJSON *svc = NULL, *ports, *port, *target;
	cJSON *doc, *p, *container = NULL;

	cJSON_ArrayForEach(doc, docs) {
		const char *kind = str_of(doc, "kind");
		const char *name = str_of(cJSON_GetObjectItemCaseSensitive(
						  doc, "metadata"), "name");

		if (kind && name && strcmp(kind, "Service") == 0 &&
		    strcmp(name, service) == 0)
			svc = doc;
	}
	if (svc == NULL)
		return nvcf__error_set(NVCF_EINVAL, "the chart has no Service "
				       "named '%s': set helmChartServiceName "
				       "to the Service that serves inference",
				       service);
	svc = cJSON_GetObjectItemCaseSensitive(svc, "spec");
	ports = cJSON_GetObjectItemCaseSensitive(svc, "ports");
	port = cJSON_GetArrayItem(ports, 0);
	if (port == NULL)
		return nvcf__error_set(NVCF_EINVAL, "Service '%s' of the chart "
				       "has no spec.ports: give it the "
				       "inference port", service);
	target = cJSON_GetObjectItemCaseSensitive(port, "targetPort");
	if (target == NULL)
		target = cJSON_GetObjectItemCaseSensitive(port, "port");
	if (!cJSON_IsNumber(target) && !cJSON_IsString(target))
		return nvcf__error_set(NVCF_EINVAL, "Service '%s' has no port "
				       "number: set spec.ports[0].port",
				       service);
	p = find_port(docs, cJSON_GetObjectItemCaseSensitive(svc, "selector"),
		      target, &container);
	if (p == NULL && cJSON_IsNumber(target) && container != NULL) {
		/* Kubernetes needs no declared port; podman does. */
		cJSON *list = cJSON_GetObjectItemCaseSensitive(container,
							       "ports");

		if (!cJSON_IsArray(list)) {
			cJSON_DeleteItemFromObjectCaseSensitive(container,
								"ports");
			list = cJSON_AddArrayToObject(container, "ports");
		}
		p = cJSON_CreateObject();
		if (p == NULL || list == NULL)
			return nvcf__error_oom();
		cJSON_AddNumberToObject(p, "containerPort", target->valueint);
		cJSON_AddItemToArray(list, p);
	}
	if (p == NULL)
		return nvcf__error_set(NVCF_EINVAL, "Service '%s' targets port "
				       "'%s', which no container it selects "
				       "declares: name that port in the "
				       "container's ports", service,
				       cJSON_IsString(target) ?
				       target->valuestring : "?");
	cJSON_DeleteItemFromObjectCaseSensitive(p, "hostPort");
	cJSON_AddNumberToObject(p, "hostPort", host_port);
	set_str(p, "hostIP", "127.0.0.1");
	return NVCF_OK;
}

/* ---- a task's env and results directory -------------------------------- */

/*
 * Returns the list @p name of @p obj, added when missing. A member that
 * is there but not a list is NVCF_EINVAL naming @p where.
 */
static nvcf_status list_of(cJSON *obj, const char *name, const char *where,
			   cJSON **out)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

	if (v == NULL || cJSON_IsNull(v)) {
		cJSON_DeleteItemFromObjectCaseSensitive(obj, name);
		v = cJSON_AddArrayToObject(obj, name);
		if (v == NULL)
			return nvcf__error_oom();
	}
	if (!cJSON_IsArray(v))
		return nvcf__error_set(NVCF_EINVAL, "%s: %s is not a list: "
				       "fix the chart's manifest", where,
				       name);
	*out = v;
	return NVCF_OK;
}

/*
 * True when @p path is NVCF__TASK_RESULTS_MOUNT or a path below it,
 * ignoring repeated and trailing slashes.
 */
static bool in_results_mount(const char *path)
{
	const char *want = NVCF__TASK_RESULTS_MOUNT;

	while (*want != '\0') {
		if (*want == '/') {
			if (*path != '/')
				return false;
			while (*path == '/')
				path++;
			want++;
			continue;
		}
		if (*path++ != *want++)
			return false;
	}
	return *path == '\0' || *path == '/';
}

/* Replaces the env entries named like @p entry (NAME=VALUE) with it. */
static nvcf_status set_env(cJSON *env, const char *entry)
{
	const char *eq = strchr(entry, '=');
	size_t len = eq ? (size_t)(eq - entry) : 0;
	cJSON *item = env->child, *next, *added;
	char *name;

	if (len == 0)
		return NVCF_OK;
	while (item != NULL) {
		const char *have = str_of(item, "name");

		next = item->next;
		if (have != NULL && strlen(have) == len &&
		    strncmp(have, entry, len) == 0)
			cJSON_Delete(cJSON_DetachItemViaPointer(env, item));
		item = next;
	}
	name = nvcf__strndup(entry, len);
	added = cJSON_CreateObject();
	if (name == NULL || added == NULL ||
	    !cJSON_AddStringToObject(added, "name", name) ||
	    !cJSON_AddStringToObject(added, "value", eq + 1) ||
	    !cJSON_AddItemToArray(env, added)) {
		free(name);
		cJSON_Delete(added);
		return nvcf__error_oom();
	}
	free(name);
	return NVCF_OK;
}

/* Gives container @p c of @p workload the task's env and mount. */
static nvcf_status task_container(cJSON *c, const char *workload,
				  const nvcf__helm_task *task)
{
	const char *name = str_of(c, "name") ? str_of(c, "name") : "?";
	cJSON *mounts, *env, *m;
	char where[600];
	nvcf_status st;

	if (!cJSON_IsObject(c))
		return nvcf__error_set(NVCF_EINVAL, "%s: a container is not "
				       "an object: fix the chart's manifest",
				       workload);
	snprintf(where, sizeof(where), "%s, container '%s'", workload, name);
	if ((st = list_of(c, "volumeMounts", where, &mounts)) != NVCF_OK ||
	    (st = list_of(c, "env", where, &env)) != NVCF_OK)
		return st;
	cJSON_ArrayForEach(m, mounts) {
		const char *path = str_of(m, "mountPath");

		if (path != NULL && in_results_mount(path))
			return nvcf__error_set(NVCF_EINVAL, "%s mounts volume "
				"'%s' at %s, where nvca mounts the task's "
				"results directory (%s): remove that mount "
				"from the chart", where,
				str_of(m, "name") ? str_of(m, "name") : "?",
				path, NVCF__TASK_RESULTS_MOUNT);
	}
	for (char *const *e = task->env; e != NULL && *e != NULL; e++)
		if ((st = set_env(env, *e)) != NVCF_OK)
			return st;
	m = cJSON_CreateObject();
	if (m == NULL ||
	    !cJSON_AddStringToObject(m, "name", NVCF__HELM_RESULTS_VOLUME) ||
	    !cJSON_AddStringToObject(m, "mountPath",
				     NVCF__TASK_RESULTS_MOUNT) ||
	    !cJSON_AddItemToArray(mounts, m)) {
		cJSON_Delete(m);
		return nvcf__error_oom();
	}
	return NVCF_OK;
}

/*
 * Gives every container of pod spec @p spec the task's env entries and a
 * hostPath volume of its results directory.
 *
 * NOTE: the directory is created 0755 by the agent's user, as for
 * container tasks, so a container that runs as another user (for
 * example with securityContext.runAsUser) cannot write its results.
 */
static nvcf_status task_pod(cJSON *spec, const char *workload,
			    const nvcf__helm_task *task)
{
	static const char *const lists[] = {"initContainers", "containers"};
	cJSON *volumes, *v, *host;
	nvcf_status st;

	if ((st = list_of(spec, "volumes", workload, &volumes)) != NVCF_OK)
		return st;
	cJSON_ArrayForEach(v, volumes) {
		const char *name = str_of(v, "name");

		if (name != NULL && strcmp(name, NVCF__HELM_RESULTS_VOLUME) == 0)
			return nvcf__error_set(NVCF_EINVAL, "%s has a volume "
				"named '%s', the name nvca gives the task's "
				"results directory: rename that volume",
				workload, name);
	}
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		cJSON *list = cJSON_GetObjectItemCaseSensitive(spec, lists[i]);
		cJSON *c;

		if (list == NULL || cJSON_IsNull(list))
			continue;
		if (!cJSON_IsArray(list))
			return nvcf__error_set(NVCF_EINVAL, "%s: %s is not a "
					       "list: fix the chart's "
					       "manifest", workload, lists[i]);
		cJSON_ArrayForEach(c, list)
			if ((st = task_container(c, workload, task)) !=
			    NVCF_OK)
				return st;
	}
	v = cJSON_CreateObject();
	host = v ? cJSON_AddObjectToObject(v, "hostPath") : NULL;
	if (host == NULL ||
	    !cJSON_AddStringToObject(v, "name", NVCF__HELM_RESULTS_VOLUME) ||
	    !cJSON_AddStringToObject(host, "path", task->results_dir) ||
	    !cJSON_AddStringToObject(host, "type", "Directory") ||
	    !cJSON_AddItemToArray(volumes, v)) {
		cJSON_Delete(v);
		return nvcf__error_oom();
	}
	return NVCF_OK;
}

nvcf_status nvcf__helm_prepare(cJSON *docs, const char *ms_name,
			       const char *cluster_id, const char *service,
			       int host_port, const nvcf__helm_task *task)
{
	size_t pods = 0;
	cJSON *doc;
	nvcf_status st;

	if (!cJSON_IsArray(docs) || ms_name == NULL || cluster_id == NULL ||
	    (task != NULL && task->results_dir == NULL))
		return nvcf__error_set(NVCF_EINVAL, "helm prepare: NULL "
				       "argument");
	/* The Service is found before names change. */
	if (service != NULL && (st = publish(docs, service, host_port)))
		return st;
	cJSON_ArrayForEach(doc, docs) {
		cJSON *meta = NULL, *labels, *top, *spec;
		const char *name;
		char *full;

		spec = pod_spec(doc, &meta);
		if (spec == NULL || meta == NULL)
			continue;
		pods++;
		top = obj_of(doc, "metadata");
		name = str_of(top, "name");
		if (task != NULL) {
			char workload[300];

			/* Messages name the workload as the chart does. */
			snprintf(workload, sizeof(workload), "%s '%s'",
				 str_of(doc, "kind"), name ? name : "");
			if ((st = task_pod(spec, workload, task)) != NVCF_OK)
				return st;
		}
		labels = obj_of(meta, "labels");
		set_str(labels, NVCF__HELM_LABEL, ms_name);
		set_str(labels, NVCF__HELM_CLUSTER_LABEL, cluster_id);
		if (top != meta) {
			labels = obj_of(top, "labels");
			set_str(labels, NVCF__HELM_LABEL, ms_name);
			set_str(labels, NVCF__HELM_CLUSTER_LABEL, cluster_id);
		}
		/* Pod names are global on the host, unlike in a namespace. */
		full = nvcf__asprintf("%s-%s", ms_name, name ? name : "pod");
		if (full == NULL)
			return nvcf__error_oom();
		set_str(top, "name", full);
		free(full);
	}
	if (pods == 0)
		return nvcf__error_set(NVCF_EINVAL, "the chart's manifests "
				       "hold no Pod or Deployment: nothing "
				       "would run");
	return NVCF_OK;
}

/* ---- the runtime -------------------------------------------------------- */

static char *label_filter(const char *key, const char *value)
{
	return nvcf__asprintf("label=%s=%s", key, value);
}

/* Removes the pods with label @p key = @p value. */
static void remove_pods(nvcf__helm *h, const char *key, const char *value,
			int err_fd)
{
	char *filter = label_filter(key, value);
	const char *ps[] = {"pod", "ps", "-q", "--filter", filter, NULL};
	nvcf__buf out = {0};
	char *save = NULL;

	if (filter == NULL)
		return;
	if (run_ok(podman(h, &out, err_fd, ps)) && out.data != NULL) {
		for (char *id = strtok_r(out.data, "\n", &save); id != NULL;
		     id = strtok_r(NULL, "\n", &save)) {
			const char *rm[] = {"pod", "rm", "--force", "--ignore",
					    "--time", "0", id, NULL};

			if (!run_ok(podman(h, NULL, err_fd, rm)))
				nvcf_log_warn(SUB, "podman pod rm %s failed",
					      id);
		}
	}
	nvcf__buf_free(&out);
	free(filter);
}

static void cleanup_earlier(nvcf__helm *h)
{
	char **keys = NULL;
	size_t n = 0;

	remove_pods(h, NVCF__HELM_CLUSTER_LABEL, h->cluster_id, -1);
	if (h->bus == NULL ||
	    nvcf_bus_kv_keys(h->bus, h->bucket, "miniservice.>", &keys, &n) !=
	    NVCF_OK)
		return;
	for (size_t i = 0; i < n; i++) {
		nvcf_log_info(SUB, "removing %s of an earlier agent: its "
			      "instance is not adopted", keys[i]);
		nvcf_bus_kv_delete(h->bus, h->bucket, keys[i]);
	}
	nvcf_strings_free(keys, n);
}

nvcf_status nvcf__helm_new(nvcf__helm **out, const nvcf__helm_options *o)
{
	nvcf__helm *h;

	if (out == NULL || o == NULL || o->version != 1 ||
	    o->podman == NULL || o->state_dir == NULL ||
	    o->cluster_id == NULL || (o->bus != NULL && o->bucket == NULL))
		return nvcf__error_set(NVCF_EINVAL, "helm runtime: podman, "
				       "state_dir and cluster_id are "
				       "required (and bucket with bus)");
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return nvcf__error_oom();
	h->podman = strchr(o->podman, '/') ? nvcf__strdup(o->podman) :
		    find_on_path(o->podman);
	if (h->podman == NULL) {
		nvcf__helm_free(h);
		return nvcf__error_set(NVCF_ENOTFOUND, "podman '%s' is not "
				       "on PATH: install podman for Helm "
				       "charts, or set NVCF_PODMAN to its "
				       "path", o->podman);
	}
	h->url = o->url ? nvcf__strdup(o->url) : NULL;
	h->helm = o->helm ? nvcf__strdup(o->helm) : NULL;
	h->dir = nvcf__asprintf("%s/helm", o->state_dir);
	h->cluster_id = nvcf__strdup(o->cluster_id);
	h->bucket = o->bucket ? nvcf__strdup(o->bucket) : NULL;
	h->bus = o->bus;
	h->poll_ms = o->poll_ms > 0 ? o->poll_ms : DEFAULT_POLL_MS;
	nvcf_crd_options_init(&h->crd, NVCF_CRD_OPTIONS_VERSION);
	if (o->crd != NULL)
		h->crd = *o->crd;
	if (h->podman == NULL || h->dir == NULL || h->cluster_id == NULL ||
	    (o->helm && h->helm == NULL) || (o->bucket && !h->bucket) ||
	    (o->url && h->url == NULL)) {
		nvcf__helm_free(h);
		return nvcf__error_oom();
	}
	if (mkdir(h->dir, 0755) != 0 && errno != EEXIST) {
		nvcf_status st = nvcf__error_set(NVCF_EIO, "cannot create %s: "
						 "%s", h->dir,
						 strerror(errno));

		nvcf__helm_free(h);
		return st;
	}
	cleanup_earlier(h);
	*out = h;
	return NVCF_OK;
}

void nvcf__helm_free(nvcf__helm *h)
{
	if (h == NULL)
		return;
	free(h->podman);
	free(h->url);
	free(h->helm);
	free(h->dir);
	free(h->cluster_id);
	free(h->bucket);
	free(h);
}

/* ---- one MiniService ---------------------------------------------------- */

nvcf_status nvcf__helm_ms_new(nvcf__helm *h, nvcf__helm_ms **out,
			      const char *name, const char *icms_name,
			      const char *launch_json,
			      const nvcf__helm_task *task)
{
	cJSON *ls = cJSON_Parse(launch_json ? launch_json : "");
	cJSON *doc = NULL, *meta, *spec, *cfg, *values;
	const cJSON *gs;
	nvcf__helm_ms *ms = NULL;
	char *text = NULL;
	bool is_task = task != NULL;
	size_t n_env = 0;
	nvcf_status st;

	if (h == NULL || out == NULL || name == NULL || icms_name == NULL ||
	    (task != NULL && task->results_dir == NULL)) {
		cJSON_Delete(ls);
		return nvcf__error_set(NVCF_EINVAL, "helm MiniService: NULL "
				       "argument");
	}
	if (str_of(ls, "helmChart") == NULL) {
		cJSON_Delete(ls);
		return nvcf__error_set(NVCF_EINVAL, "MiniService %s: the "
				       "launch specification has no "
				       "helmChart", name);
	}
	if (!is_task && str_of(ls, "helmChartServiceName") == NULL) {
		cJSON_Delete(ls);
		return nvcf__error_set(NVCF_EINVAL, "MiniService %s: a Helm "
				       "function needs helmChartServiceName",
				       name);
	}
	values = cJSON_GetObjectItemCaseSensitive(ls, "configuration");
	gs = cJSON_GetObjectItemCaseSensitive(ls, "gpuSpecification");
	if (!cJSON_IsObject(values))
		values = cJSON_GetObjectItemCaseSensitive(gs, "configuration");
	if ((ms = calloc(1, sizeof(*ms))) == NULL)
		goto oom;
	pthread_mutex_init(&ms->lock, NULL);
	pthread_cond_init(&ms->cond, NULL);
	ms->h = h;
	ms->is_task = is_task;
	ms->name = nvcf__strdup(name);
	ms->icms_name = nvcf__strdup(icms_name);
	ms->chart = nvcf__strdup(str_of(ls, "helmChart"));
	ms->service = is_task ? NULL :
		      nvcf__strdup(str_of(ls, "helmChartServiceName"));
	ms->values = cJSON_IsObject(values) ?
		     cJSON_PrintUnformatted(values) : NULL;
	snprintf(ms->manifest, sizeof(ms->manifest), "%s/%s.json", h->dir,
		 name);
	snprintf(ms->log, sizeof(ms->log), "%s/%s.log", h->dir, name);
	if (!ms->name || !ms->icms_name || !ms->chart ||
	    (!is_task && !ms->service))
		goto oom;
	if (is_task) {
		while (task->env != NULL && task->env[n_env] != NULL)
			n_env++;
		ms->task_env = calloc(n_env + 1, sizeof(char *));
		ms->results_dir = nvcf__strdup(task->results_dir);
		if (ms->task_env == NULL || ms->results_dir == NULL)
			goto oom;
		for (size_t i = 0; i < n_env; i++)
			if ((ms->task_env[i] = nvcf__strdup(task->env[i])) ==
			    NULL)
				goto oom;
	}

	doc = cJSON_CreateObject();
	cJSON_AddStringToObject(doc, "apiVersion",
				NVCF_CRD_MINISERVICE_API_VERSION);
	cJSON_AddStringToObject(doc, "kind", "MiniService");
	meta = cJSON_AddObjectToObject(doc, "metadata");
	cJSON_AddStringToObject(meta, "name", name);
	spec = cJSON_AddObjectToObject(doc, "spec");
	cJSON_AddStringToObject(spec, "namespace", icms_name);
	cJSON_AddStringToObject(spec, "icmsRequestName", icms_name);
	if (is_task)
		cJSON_AddTrueToObject(spec, "isTask");
	cfg = cJSON_AddObjectToObject(spec, "helmChartConfig");
	cJSON_AddStringToObject(cfg, "url", ms->chart);
	if (ms->service != NULL)
		cJSON_AddStringToObject(cfg, "serviceName", ms->service);
	if (cJSON_IsObject(values))
		cJSON_AddItemToObject(cfg, "values",
				      cJSON_Duplicate(values, true));
	text = cJSON_PrintUnformatted(doc);
	if (text == NULL)
		goto oom;
	st = nvcf_crd_miniservice_from_json(&ms->obj, text, strlen(text));
	free(text);
	cJSON_Delete(doc);
	cJSON_Delete(ls);
	if (st != NVCF_OK) {
		nvcf__helm_ms_free(ms);
		return st;
	}
	*out = ms;
	return NVCF_OK;
oom:
	cJSON_Delete(doc);
	cJSON_Delete(ls);
	nvcf__helm_ms_free(ms);
	return nvcf__error_oom();
}

/* Installs the chart. Returns NULL, or the error (terminal). */
static char *install(nvcf__helm_ms *ms)
{
	nvcf__helm *h = ms->h;
	const char *play[] = {"kube", "play", "--replace", ms->manifest, NULL};
	nvcf__helm_task task = {ms->task_env, ms->results_dir};
	cJSON *docs = NULL, *doc;
	nvcf__buf text = {0};
	char *error = NULL;
	int fd, status;

	if (nvcf__helm_render(h, ms->name, ms->chart, ms->values, &docs) ||
	    nvcf__helm_prepare(docs, ms->name, h->cluster_id, ms->service,
			       ms->host_port, ms->is_task ? &task : NULL)) {
		cJSON_Delete(docs);
		return nvcf__strdup(nvcf_error_last()->message);
	}
	cJSON_ArrayForEach(doc, docs) {
		char *one = cJSON_PrintUnformatted(doc);

		if (one == NULL ||
		    nvcf__buf_printf(&text, "---\n%s\n", one) != NVCF_OK)
			error = nvcf__strdup("out of memory");
		free(one);
	}
	cJSON_Delete(docs);
	fd = error ? -1 : open(ms->manifest, O_WRONLY | O_CREAT | O_TRUNC |
			       O_CLOEXEC, 0644);
	if (error == NULL && (fd < 0 || write(fd, text.data, text.len) !=
				(ssize_t)text.len))
		error = nvcf__asprintf("cannot write %s: %s", ms->manifest,
				       strerror(errno));
	if (fd >= 0)
		close(fd);
	nvcf__buf_free(&text);
	if (error != NULL)
		return error;
	fd = open(ms->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	status = podman(h, NULL, fd, play);
	if (fd >= 0)
		close(fd);
	if (!run_ok(status)) {
		nvcf__buf out = {0};
		char *tail;

		read_file(ms->log, &out);
		tail = out.data ? out.data : "";
		if (out.len > 400)
			tail += out.len - 400;
		error = nvcf__asprintf("podman kube play %s failed (exit "
				       "status %d): %s", ms->manifest, status,
				       tail);
		nvcf__buf_free(&out);
		return error;
	}
	nvcf_log_info(SUB, "MiniService %s installed from %s", ms->name,
		      ms->chart);
	return NULL;
}

typedef struct pod_obs {
	char *id;
	nvcf_crd_observed_t state;
	char *reason;
} pod_obs;

/* Reads the state of one container into its pod's observation. */
static void observe_container(pod_obs *p, const cJSON *c, bool is_task)
{
	const char *state = str_of(c, "State");
	const cJSON *names = cJSON_GetObjectItemCaseSensitive(c, "Names");
	const cJSON *code = cJSON_GetObjectItemCaseSensitive(c, "ExitCode");
	const char *name = cJSON_IsArray(names) &&
			   cJSON_IsString(cJSON_GetArrayItem(names, 0)) ?
			   cJSON_GetArrayItem(names, 0)->valuestring : "?";
	int exit_code = cJSON_IsNumber(code) ? code->valueint : -1;
	nvcf_crd_observed_t s;

	if (state == NULL)
		state = "unknown";
	if (strcmp(state, "running") == 0)
		s = NVCF_CRD_OBSERVED_RUNNING;
	else if (strcmp(state, "exited") == 0 || strcmp(state, "stopped") == 0)
		s = is_task && exit_code == 0 ? NVCF_CRD_OBSERVED_SUCCEEDED :
						NVCF_CRD_OBSERVED_FAILED;
	else
		s = NVCF_CRD_OBSERVED_STARTING;
	/* podman calls a finished container "exited" or "stopped". */
	if (s == NVCF_CRD_OBSERVED_FAILED && p->reason == NULL)
		p->reason = nvcf__asprintf("container %s exited with status %d",
					   name, exit_code);
	/* failed > starting > running > succeeded: the worst one wins. */
	if (p->state == NVCF_CRD_OBSERVED_FAILED)
		return;
	if (s == NVCF_CRD_OBSERVED_FAILED ||
	    (s == NVCF_CRD_OBSERVED_STARTING) ||
	    (s == NVCF_CRD_OBSERVED_RUNNING &&
	     p->state != NVCF_CRD_OBSERVED_STARTING) ||
	    p->state == NVCF_CRD_OBSERVED_ABSENT)
		p->state = s;
}

/* Lists the MiniService's pods as podman reports them. */
static size_t observe(nvcf__helm_ms *ms, pod_obs *pods, size_t max)
{
	char *filter = label_filter(NVCF__HELM_LABEL, ms->name);
	const char *ps[] = {"ps", "--all", "--filter", filter, "--format",
			    "json", NULL};
	nvcf__buf out = {0};
	cJSON *list = NULL, *c;
	size_t n = 0;
	int fd;

	if (filter == NULL)
		return 0;
	fd = open(ms->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (run_ok(podman(ms->h, &out, fd, ps)) && out.data != NULL)
		list = cJSON_Parse(out.data);
	if (fd >= 0)
		close(fd);
	cJSON_ArrayForEach(c, list) {
		const char *pod = str_of(c, "Pod");
		const cJSON *infra = cJSON_GetObjectItemCaseSensitive(c,
								      "IsInfra");
		size_t i;

		if (pod == NULL || cJSON_IsTrue(infra))
			continue;
		for (i = 0; i < n && strcmp(pods[i].id, pod) != 0; i++)
			;
		if (i == n) {
			if (n == max || (pods[n].id = nvcf__strdup(pod)) ==
			    NULL)
				continue;
			pods[n].state = NVCF_CRD_OBSERVED_ABSENT;
			pods[n].reason = NULL;
			n++;
		}
		observe_container(&pods[i], c, ms->is_task);
	}
	cJSON_Delete(list);
	nvcf__buf_free(&out);
	free(filter);
	return n;
}

static void store(nvcf__helm_ms *ms)
{
	nvcf__helm *h = ms->h;
	char key[192], *text = NULL;

	if (h->bus == NULL ||
	    nvcf_crd_miniservice_to_json(&text, ms->obj) != NVCF_OK)
		return;
	if (ms->stored == NULL || strcmp(ms->stored, text) != 0) {
		snprintf(key, sizeof(key), "miniservice.%s", ms->name);
		if (nvcf_bus_kv_put(h->bus, h->bucket, key, text, strlen(text),
				    NULL) == NVCF_OK) {
			free(ms->stored);
			ms->stored = nvcf__strdup(text);
		} else {
			nvcf_log_warn(SUB, "storing MiniService %s failed: %s",
				      ms->name, nvcf_error_last()->message);
		}
	}
	nvcf_free(text);
}

/* The message of the condition that failed the MiniService. */
static char *failure_of(const nvcf_crd_miniservice *o)
{
	for (size_t i = 0; i < o->status.conditions_count; i++) {
		const nvcf_crd_condition *c = &o->status.conditions[i];

		if (c->status && strcmp(c->status, "False") == 0 &&
		    (strcmp(c->type, "InstallSuccessful") == 0 ||
		     strcmp(c->type, "WorkersHealthy") == 0))
			return nvcf__asprintf("MiniService %s: %s: %s",
					      o->metadata.name,
					      c->reason ? c->reason : "failed",
					      c->message ? c->message : "");
	}
	return nvcf__asprintf("MiniService %s is %s", o->metadata.name,
			      nvcf_crd_phase_name(o->status.phase));
}

static bool is_sink(nvcf_crd_phase_t p)
{
	return p == NVCF_CRD_PHASE_COMPLETED ||
	       p == NVCF_CRD_PHASE_INSTALL_FAILED ||
	       p == NVCF_CRD_PHASE_FAILED;
}

static void *ms_main(void *arg)
{
	nvcf__helm_ms *ms = arg;
	char *error = NULL;

	for (;;) {
		nvcf_crd_observation obs = NVCF_CRD_OBSERVATION_INIT;
		nvcf_crd_observed_instance seen[16];
		pod_obs pods[16];
		nvcf_crd_actions *acts = NULL;
		nvcf_crd_phase_t phase = ms->obj->status.phase;
		size_t n = 0;
		int64_t after = ms->h->poll_ms;
		struct timespec ts;

		if (phase != NVCF_CRD_PHASE_NONE && !is_sink(phase))
			n = observe(ms, pods, 16);
		for (size_t i = 0; i < n; i++) {
			seen[i].id = pods[i].id;
			seen[i].state = pods[i].state;
			seen[i].reason = pods[i].reason;
		}
		obs.now_ms = nvcf__now_us() / 1000;
		obs.instances = seen;
		obs.instances_count = n;
		obs.error = error;
		obs.error_terminal = error != NULL;
		if (!is_sink(phase) &&
		    nvcf_crd_miniservice_reconcile(&acts, ms->obj, &obs,
						   &ms->h->crd) == NVCF_OK) {
			free(error);
			error = NULL;
			for (size_t i = 0; i < acts->count; i++) {
				const nvcf_crd_action *a = &acts->items[i];

				if (a->kind == NVCF_CRD_ACTION_CREATE_INSTANCE)
					error = install(ms);
				else if (a->kind == NVCF_CRD_ACTION_REQUEUE &&
					 a->after_ms < after)
					after = a->after_ms;
			}
			if (error != NULL) {
				nvcf_log_warn(SUB, "installing MiniService %s "
					      "failed: %s", ms->name, error);
				after = 0;
			}
		}
		nvcf_crd_actions_free(acts);
		for (size_t i = 0; i < n; i++) {
			free(pods[i].id);
			free(pods[i].reason);
		}
		store(ms);
		pthread_mutex_lock(&ms->lock);
		if (ms->obj->status.phase != ms->phase) {
			nvcf_log_info(SUB, "MiniService %s: phase %s",
				      ms->name, nvcf_crd_phase_name(
					      ms->obj->status.phase));
			ms->phase = ms->obj->status.phase;
			if (ms->phase == NVCF_CRD_PHASE_INSTALL_FAILED ||
			    ms->phase == NVCF_CRD_PHASE_FAILED) {
				free(ms->reason);
				ms->reason = failure_of(ms->obj);
			}
			pthread_cond_broadcast(&ms->cond);
		}
		/* A sink needs no more steps; wait for the stop. */
		if (is_sink(ms->phase))
			after = 3600000;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += after / 1000;
		ts.tv_nsec += (after % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		while (!ms->stop && after > 0 &&
		       pthread_cond_timedwait(&ms->cond, &ms->lock, &ts) !=
		       ETIMEDOUT)
			;
		if (ms->stop) {
			pthread_mutex_unlock(&ms->lock);
			break;
		}
		pthread_mutex_unlock(&ms->lock);
	}
	free(error);
	return NULL;
}

char *nvcf__helm_ms_up(nvcf__helm_ms *ms, int host_port, int64_t timeout_ms)
{
	int64_t deadline = nvcf__mono_us() + timeout_ms * 1000;
	char *why = NULL;

	pthread_mutex_lock(&ms->lock);
	if (!ms->started && !ms->stop) {
		ms->host_port = host_port;
		ms->started = pthread_create(&ms->thread, NULL, ms_main,
					     ms) == 0;
		if (!ms->started) {
			pthread_mutex_unlock(&ms->lock);
			return nvcf__strdup("cannot start a thread for the "
					    "MiniService");
		}
	}
	for (;;) {
		struct timespec ts;

		if (ms->phase == NVCF_CRD_PHASE_RUNNING ||
		    ms->phase == NVCF_CRD_PHASE_COMPLETED)
			break;
		if (ms->phase == NVCF_CRD_PHASE_INSTALL_FAILED ||
		    ms->phase == NVCF_CRD_PHASE_FAILED) {
			why = nvcf__strdup(ms->reason ? ms->reason : "failed");
			break;
		}
		if (ms->stop) {
			why = nvcf__strdup("stopped while starting");
			break;
		}
		if (nvcf__mono_us() >= deadline) {
			why = nvcf__asprintf("MiniService %s is still %s after "
					     "%lld ms", ms->name,
					     nvcf_crd_phase_name(ms->phase),
					     (long long)timeout_ms);
			break;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&ms->cond, &ms->lock, &ts);
	}
	pthread_mutex_unlock(&ms->lock);
	return why;
}

nvcf_crd_phase_t nvcf__helm_ms_phase(nvcf__helm_ms *ms, char **reason)
{
	nvcf_crd_phase_t phase;

	pthread_mutex_lock(&ms->lock);
	phase = ms->phase;
	if (reason != NULL)
		*reason = ms->reason ? nvcf__strdup(ms->reason) : NULL;
	pthread_mutex_unlock(&ms->lock);
	return phase;
}

void nvcf__helm_ms_down(nvcf__helm_ms *ms)
{
	char key[192];
	bool join;
	int fd;

	if (ms == NULL)
		return;
	pthread_mutex_lock(&ms->lock);
	if (ms->down) {
		pthread_mutex_unlock(&ms->lock);
		return;
	}
	ms->down = ms->stop = true;
	join = ms->started;
	pthread_cond_broadcast(&ms->cond);
	pthread_mutex_unlock(&ms->lock);
	if (join)
		pthread_join(ms->thread, NULL);
	fd = open(ms->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	remove_pods(ms->h, NVCF__HELM_LABEL, ms->name, fd);
	if (fd >= 0)
		close(fd);
	if (ms->h->bus != NULL) {
		snprintf(key, sizeof(key), "miniservice.%s", ms->name);
		nvcf_bus_kv_delete(ms->h->bus, ms->h->bucket, key);
	}
	nvcf_log_info(SUB, "MiniService %s removed", ms->name);
}

void nvcf__helm_ms_free(nvcf__helm_ms *ms)
{
	if (ms == NULL)
		return;
	if (ms->started)
		nvcf__helm_ms_down(ms);
	nvcf_crd_miniservice_free(ms->obj);
	pthread_mutex_destroy(&ms->lock);
	pthread_cond_destroy(&ms->cond);
	free(ms->name);
	free(ms->icms_name);
	free(ms->chart);
	free(ms->service);
	free(ms->values);
	for (size_t i = 0; ms->task_env != NULL && ms->task_env[i] != NULL;
	     i++)
		free(ms->task_env[i]);
	free(ms->task_env);
	free(ms->results_dir);
	free(ms->stored);
	free(ms->reason);
	free(ms);
}
