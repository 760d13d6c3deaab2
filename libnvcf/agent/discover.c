/* SPDX-License-Identifier: Apache-2.0 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/discover.h"

#define SUB "nvca"
#define RUN_TIMEOUT_MS 10000
#define OUTPUT_MAX (1024 * 1024)

extern char **environ;

void nvcf__gpu_discovered_free(nvcf__discovered_gpu *gpus, size_t count)
{
	if (gpus == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		free(gpus[i].name);
		free(gpus[i].model);
		free(gpus[i].indices);
	}
	free(gpus);
}

/* Trims blanks from both ends of [*s, *e). */
static void trim(const char **s, const char **e)
{
	while (*s < *e && isspace((unsigned char)**s))
		(*s)++;
	while (*e > *s && isspace((unsigned char)(*e)[-1]))
		(*e)--;
}

static bool starts_with(const char *s, size_t n, const char *prefix)
{
	size_t k = strlen(prefix);

	return n > k && strncasecmp(s, prefix, k) == 0;
}

/* Returns the short name of a model, as discover.h defines it. */
static char *short_name(const char *model, size_t n)
{
	size_t k = 0;
	char *out;

	if (starts_with(model, n, "NVIDIA ")) {
		model += 7;
		n -= 7;
	}
	if (starts_with(model, n, "Tesla ")) {
		model += 6;
		n -= 6;
	}
	while (k < n && model[k] != ' ' && model[k] != '-')
		k++;
	if (k == 0)
		k = n; /* "-x": keep it all rather than return "" */
	if ((out = malloc(k + 1)) == NULL)
		return NULL;
	for (size_t i = 0; i < k; i++) {
		unsigned char ch = (unsigned char)model[i];

		out[i] = (char)(isalnum(ch) || ch == '-' || ch == '_' ? ch
								      : '_');
	}
	out[k] = '\0';
	return out;
}

static nvcf_status parse_index(const char *s, const char *e, size_t line,
			       unsigned int *out)
{
	unsigned long v = 0;

	if (s == e)
		return nvcf__error_set(NVCF_EINVAL,
				       "nvidia-smi output line %zu: the index "
				       "after ',' is empty",
				       line);
	for (const char *p = s; p < e; p++) {
		if (!isdigit((unsigned char)*p) ||
		    (v = v * 10 + (unsigned long)(*p - '0')) >=
			    NVCF__GPU_CAPACITY_MAX)
			return nvcf__error_set(
				NVCF_EINVAL,
				"nvidia-smi output line %zu: index '%.*s' is "
				"not an integer below %d",
				line, (int)(e - s > 32 ? 32 : e - s), s,
				NVCF__GPU_CAPACITY_MAX);
	}
	*out = (unsigned int)v;
	return NVCF_OK;
}

/* Adds device @p index of model [m, m + mn) to the table. */
static nvcf_status add_device(nvcf__discovered_gpu **gpus, size_t *n,
			      const char *m, size_t mn, unsigned int index)
{
	nvcf__discovered_gpu *g = NULL, *grown;
	char *name = short_name(m, mn);
	unsigned int *idx;
	size_t at;

	if (name == NULL)
		return nvcf__error_oom();
	/* By short name: "H100 PCIe" and "H100 80GB HBM3" are one type. */
	for (size_t i = 0; i < *n && g == NULL; i++)
		if (strcasecmp((*gpus)[i].name, name) == 0)
			g = &(*gpus)[i];
	if (g != NULL) {
		free(name);
	} else {
		grown = realloc(*gpus, (*n + 1) * sizeof(**gpus));
		if (grown == NULL) {
			free(name);
			return nvcf__error_oom();
		}
		*gpus = grown;
		g = &grown[*n];
		memset(g, 0, sizeof(*g));
		g->name = name;
		g->model = malloc(mn + 1);
		(*n)++;
		if (g->model == NULL)
			return nvcf__error_oom();
		memcpy(g->model, m, mn);
		g->model[mn] = '\0';
	}
	idx = realloc(g->indices, (g->count + 1) * sizeof(*idx));
	if (idx == NULL)
		return nvcf__error_oom();
	g->indices = idx;
	/* Kept ascending: nvidia-smi lists by index, but need not. */
	at = g->count;
	while (at > 0 && idx[at - 1] > index) {
		idx[at] = idx[at - 1];
		at--;
	}
	idx[at] = index;
	g->count++;
	return NVCF_OK;
}

nvcf_status nvcf__gpu_discover_parse(const char *text, size_t len,
				     nvcf__discovered_gpu **out,
				     size_t *count_out)
{
	nvcf__discovered_gpu *gpus = NULL;
	bool seen[NVCF__GPU_CAPACITY_MAX] = {false};
	const char *p = text, *end = text + len;
	size_t n = 0, line = 0;
	nvcf_status st = NVCF_OK;

	if (out == NULL || count_out == NULL || (text == NULL && len > 0))
		return nvcf__error_set(NVCF_EINVAL,
				       "nvcf__gpu_discover_parse: NULL "
				       "argument");
	*out = NULL;
	*count_out = 0;
	while (st == NVCF_OK && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end, *s = p, *e = le, *comma;
		unsigned int index = 0;

		line++;
		p = nl ? nl + 1 : end;
		trim(&s, &e);
		if (s == e)
			continue;
		comma = NULL;
		for (const char *q = e; q > s; q--)
			if (q[-1] == ',') {
				comma = q - 1;
				break;
			}
		if (comma == NULL) {
			st = nvcf__error_set(NVCF_EINVAL,
					     "nvidia-smi output line %zu: "
					     "expected 'model, index', got "
					     "'%.*s'",
					     line, (int)(e - s > 80 ? 80 : e - s),
					     s);
			break;
		}
		{
			const char *ms = s, *me = comma, *is = comma + 1;

			trim(&ms, &me);
			trim(&is, &e);
			if (ms == me) {
				st = nvcf__error_set(NVCF_EINVAL,
						     "nvidia-smi output line "
						     "%zu: the model before "
						     "',' is empty",
						     line);
				break;
			}
			if ((st = parse_index(is, e, line, &index)))
				break;
			if (seen[index]) {
				st = nvcf__error_set(NVCF_EINVAL,
						     "nvidia-smi output line "
						     "%zu: device index %u "
						     "appears twice",
						     line, index);
				break;
			}
			seen[index] = true;
			st = add_device(&gpus, &n, ms, (size_t)(me - ms),
					index);
		}
	}
	if (st != NVCF_OK) {
		nvcf__gpu_discovered_free(gpus, n);
		return st;
	}
	*out = gpus;
	*count_out = n;
	return NVCF_OK;
}

/* Finds @p program on PATH, or as given when it contains a '/'. */
static bool on_path(const char *program)
{
	const char *path = getenv("PATH"), *p;

	if (strchr(program, '/') != NULL)
		return access(program, X_OK) == 0;
	for (p = path; p != NULL && *p != '\0';) {
		const char *colon = strchr(p, ':');
		size_t n = colon ? (size_t)(colon - p) : strlen(p);
		char *full = nvcf__asprintf("%.*s/%s", (int)n, p, program);
		bool ok = full != NULL && n > 0 && access(full, X_OK) == 0;

		free(full);
		if (ok)
			return true;
		p = colon ? colon + 1 : NULL;
	}
	return false;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads the child's stdout until EOF or the deadline. */
static nvcf_status read_all(int fd, nvcf__buf *b, const char *program)
{
	int64_t deadline = now_ms() + RUN_TIMEOUT_MS;
	char chunk[4096];

	for (;;) {
		struct pollfd pfd = {fd, POLLIN, 0};
		int64_t left = deadline - now_ms();
		ssize_t got;
		int r;

		if (left <= 0)
			return nvcf__error_set(NVCF_EIO,
					       "%s did not finish within %d "
					       "ms; list the GPUs in the "
					       "backend file instead",
					       program, RUN_TIMEOUT_MS);
		r = poll(&pfd, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return nvcf__error_set(NVCF_EIO,
					       "reading %s output: %s",
					       program, strerror(errno));
		if (r == 0)
			continue;
		got = read(fd, chunk, sizeof(chunk));
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return nvcf__error_set(NVCF_EIO,
					       "reading %s output: %s",
					       program, strerror(errno));
		if (got == 0)
			return NVCF_OK;
		if (b->len + (size_t)got > OUTPUT_MAX)
			return nvcf__error_set(NVCF_EIO,
					       "%s wrote more than %d bytes; "
					       "is it really nvidia-smi?",
					       program, OUTPUT_MAX);
		if (nvcf__buf_append(b, chunk, (size_t)got) != NVCF_OK)
			return nvcf__error_oom();
	}
}

nvcf_status nvcf__gpu_discover_run(const char *program,
				   nvcf__discovered_gpu **out,
				   size_t *count_out)
{
	char *const argv[] = {(char *)(program ? program : "nvidia-smi"),
			      (char *)"--query-gpu=name,index",
			      (char *)"--format=csv,noheader", NULL};
	posix_spawn_file_actions_t fa;
	nvcf__buf b = {0};
	nvcf_status st;
	int fds[2], status = 0, rc;
	pid_t pid;

	if (out == NULL || count_out == NULL)
		return nvcf__error_set(NVCF_EINVAL,
				       "nvcf__gpu_discover_run: NULL argument");
	if (!on_path(argv[0]))
		return nvcf__error_set(NVCF_ENOTFOUND,
				       "%s is not on PATH", argv[0]);
	if (pipe2(fds, O_CLOEXEC) != 0)
		return nvcf__error_set(NVCF_EIO, "pipe for %s: %s", argv[0],
				       strerror(errno));
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
	posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null",
					 O_WRONLY, 0);
	rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	if (rc != 0) {
		close(fds[0]);
		return nvcf__error_set(NVCF_EIO, "cannot start %s: %s",
				       argv[0], strerror(rc));
	}
	st = read_all(fds[0], &b, argv[0]);
	close(fds[0]);
	if (st != NVCF_OK)
		kill(pid, SIGKILL); /* our own child, hung or too verbose */
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (st == NVCF_OK && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		st = nvcf__error_set(NVCF_EIO,
				     "%s failed (%s %d); is the NVIDIA driver "
				     "loaded?",
				     argv[0],
				     WIFEXITED(status) ? "exit status"
						       : "signal",
				     WIFEXITED(status) ? WEXITSTATUS(status)
						       : WTERMSIG(status));
	if (st == NVCF_OK)
		st = nvcf__gpu_discover_parse(b.data, b.len, out, count_out);
	nvcf__buf_free(&b);
	return st;
}

bool nvcf__gpu_discovery_requested(const char *mode, unsigned int gpus_count)
{
	return gpus_count == 0 ||
	       (mode != NULL && strcasecmp(mode, "dynamic") == 0);
}

static const nvcf__backend_gpu *find_static(const nvcf__backend *b,
					    const char *name)
{
	for (unsigned int i = 0; i < b->spec.gpus_count; i++)
		if (b->spec.gpus[i].name != NULL &&
		    strcasecmp(b->spec.gpus[i].name, name) == 0)
			return &b->spec.gpus[i];
	return NULL;
}

static void gpus_free(nvcf__backend_gpu *gpus, size_t n)
{
	for (size_t i = 0; gpus != NULL && i < n; i++) {
		for (unsigned int j = 0; j < gpus[i].instance_types_count;
		     j++) {
			free(gpus[i].instance_types[j].name);
			free(gpus[i].instance_types[j].description);
		}
		free(gpus[i].instance_types);
		free(gpus[i].devices);
		free(gpus[i].name);
	}
	free(gpus);
}

/* Fills @p g for discovered model @p d, as discover.h describes. */
static nvcf_status make_gpu(nvcf__backend_gpu *g,
			    const nvcf__discovered_gpu *d,
			    const nvcf__backend_gpu *known)
{
	static const unsigned int sizes[] = {1, 2, 4, 8};
	unsigned int n = 0, fits = 0;
	bool has_default = false;

	g->capacity = d->count;
	g->name = nvcf__strdup(known ? known->name : d->name);
	g->devices = calloc(d->count ? d->count : 1, sizeof(*g->devices));
	if (g->name == NULL || g->devices == NULL)
		return nvcf__error_oom();
	/* So that CUDA_VISIBLE_DEVICES names the devices nvidia-smi lists. */
	if (d->count > 0)
		memcpy(g->devices, d->indices,
		       d->count * sizeof(*g->devices));
	g->devices_count = d->count;
	for (unsigned int j = 0; known && j < known->instance_types_count; j++)
		if (known->instance_types[j].gpu_count <= d->count)
			fits++;
	/* A listed type needing more GPUs than found could never start. */
	if (fits > 0) {
		g->instance_types = calloc(fits, sizeof(*g->instance_types));
		if (g->instance_types == NULL)
			return nvcf__error_oom();
		for (unsigned int j = 0; j < known->instance_types_count;
		     j++) {
			const nvcf__instance_type *t =
				&known->instance_types[j];
			nvcf__instance_type *o =
				&g->instance_types[g->instance_types_count];

			if (t->gpu_count > d->count)
				continue;
			g->instance_types_count++;
			*o = *t;
			has_default |= t->is_default;
			o->name = nvcf__strdup(t->name);
			o->description = t->description
						 ? nvcf__strdup(t->description)
						 : NULL;
			if (o->name == NULL ||
			    (t->description && o->description == NULL))
				return nvcf__error_oom();
		}
		if (!has_default)
			g->instance_types[0].is_default = true;
		return NVCF_OK;
	}
	g->instance_types = calloc(4, sizeof(*g->instance_types));
	if (g->instance_types == NULL)
		return nvcf__error_oom();
	for (size_t k = 0; k < 4 && sizes[k] <= d->count; k++) {
		nvcf__instance_type *o = &g->instance_types[n];

		g->instance_types_count = ++n;
		o->gpu_count = sizes[k];
		o->is_default = k == 0;
		o->name = nvcf__asprintf("NCP.GPU.%s_%ux", g->name, sizes[k]);
		o->description = nvcf__asprintf("%u %s (discovered)",
						 sizes[k], d->model);
		if (o->name == NULL || o->description == NULL)
			return nvcf__error_oom();
	}
	return NVCF_OK;
}

nvcf_status nvcf__backend_apply_gpus(nvcf__backend *backend,
				     const nvcf__discovered_gpu *gpus,
				     size_t count)
{
	nvcf__backend_gpu *list;
	nvcf_status st = NVCF_OK;

	if (backend == NULL || gpus == NULL || count == 0)
		return nvcf__error_set(NVCF_EINVAL,
				       "no GPUs to apply to the backend");
	list = calloc(count, sizeof(*list));
	if (list == NULL)
		return nvcf__error_oom();
	for (size_t i = 0; i < count && st == NVCF_OK; i++)
		st = make_gpu(&list[i], &gpus[i],
			      find_static(backend, gpus[i].name));
	if (st != NVCF_OK) {
		gpus_free(list, count);
		return st;
	}
	/* libcyaml allocated the old list with malloc, like this one. */
	gpus_free(backend->spec.gpus, backend->spec.gpus_count);
	backend->spec.gpus = list;
	backend->spec.gpus_count = (unsigned int)count;
	return NVCF_OK;
}

nvcf_status nvcf__backend_discover(nvcf__backend *backend, const char *mode)
{
	nvcf__discovered_gpu *found = NULL;
	char why[256];
	size_t n = 0;
	nvcf_status st;

	if (backend == NULL)
		return nvcf__error_set(NVCF_EINVAL,
				       "nvcf__backend_discover: NULL backend");
	if (!nvcf__gpu_discovery_requested(mode, backend->spec.gpus_count))
		return NVCF_OK;
	st = nvcf__gpu_discover_run(NULL, &found, &n);
	if (st == NVCF_ENOTFOUND && backend->spec.gpus_count > 0) {
		nvcf_log_info(SUB, "GPU discovery: nvidia-smi is not on PATH; "
			      "using the %u GPU types of the backend file",
			      backend->spec.gpus_count);
		return NVCF_OK;
	}
	if (st == NVCF_OK && n == 0)
		st = nvcf__error_set(NVCF_EINVAL, "nvidia-smi lists no GPU");
	if (st == NVCF_OK)
		st = nvcf__backend_apply_gpus(backend, found, n);
	for (size_t i = 0; st == NVCF_OK && i < n; i++)
		nvcf_log_info(SUB, "GPU discovery: %u x %s (%s)",
			      found[i].count, found[i].name, found[i].model);
	nvcf__gpu_discovered_free(found, n);
	if (st == NVCF_OK || st == NVCF_ENOMEM)
		return st;
	snprintf(why, sizeof(why), "%s", nvcf_error_last()->message);
	if (backend->spec.gpus_count == 0)
		return nvcf__error_set(st,
				       "GPU discovery failed (%s) and the "
				       "backend file lists no GPUs; list them "
				       "under spec.gpus",
				       why);
	nvcf_log_warn(SUB, "GPU discovery failed: %s; using the GPU types of "
		      "the backend file", why);
	return NVCF_OK;
}
