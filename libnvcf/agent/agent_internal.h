/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pieces of the cluster agent that are pure enough to test on their own:
 * the NVCFBackend configuration, the shell-like argument splitter and the
 * GPU device allocator.
 */
#ifndef NVCF_AGENT_INTERNAL_H
#define NVCF_AGENT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/internal.h"

/* ---- NVCFBackend configuration ---------------------------------------- */

typedef struct nvcf__instance_type {
	char *name;
	char *description;
	unsigned int gpu_count;
	bool is_default;
} nvcf__instance_type;

typedef struct nvcf__backend_gpu {
	char *name;
	unsigned int capacity;
	nvcf__instance_type *instance_types;
	unsigned int instance_types_count;
	/*
	 * The capacity device indices instances of this type get, ascending
	 * (spec.gpus[].devices, or what nvidia-smi reported); none means
	 * 0..capacity-1.
	 */
	unsigned int *devices;
	unsigned int devices_count;
} nvcf__backend_gpu;

typedef struct nvcf__backend_spec {
	char *cluster_id;
	char *cluster_name;
	char *cluster_group;
	char *region;
	char **attributes;
	unsigned int attributes_count;
	nvcf__backend_gpu *gpus;
	unsigned int gpus_count;
	/* spec.gpuDiscovery as written: "dynamic", "static" or NULL. */
	char *gpu_discovery;
} nvcf__backend_spec;

typedef struct nvcf__backend_meta {
	char *name;
} nvcf__backend_meta;

typedef struct nvcf__backend {
	char *api_version;
	char *kind;
	nvcf__backend_meta metadata;
	nvcf__backend_spec spec;
} nvcf__backend;

/*
 * Mount point of a task's results directory in a task container or a
 * Helm task pod: NVCT_RESULTS_DIR of the NVCT task container contract.
 * The progress file is "progress" in it.
 */
#define NVCF__TASK_RESULTS_MOUNT "/var/task/results"

/* Largest GPU capacity of one type that the agent accepts. */
#define NVCF__GPU_CAPACITY_MAX 1024

/*
 * Loads and validates an NVCFBackend YAML file. Unknown and missing fields,
 * a wrong apiVersion or kind, capacities or GPU counts out of range, a
 * spec.gpuDiscovery other than dynamic or static, and static discovery
 * with no spec.gpus are NVCF_EINVAL with a message naming the field and
 * the file. spec.gpus may be left out for dynamic discovery; call
 * nvcf__backend_discover() before using the GPU list.
 */
nvcf_status nvcf__backend_load(const char *path, nvcf__backend **out);

/* Same, from a YAML document in memory; @p origin names it in errors. */
nvcf_status nvcf__backend_parse(const char *yaml, size_t len,
				const char *origin, nvcf__backend **out);

void nvcf__backend_free(nvcf__backend *backend);

/*
 * Replaces the GPUs of @p backend with those nvidia-smi lists, device
 * indices included, when discovery is requested and nvidia-smi is on PATH.
 * Discovery is requested when @p mode (normally spec.gpuDiscovery) is
 * "dynamic" or when no GPU is listed. Otherwise the static list stays.
 * The agent calls it between loading the backend and building the pool
 * (it is defined in agent/discover.c).
 *
 * @return NVCF_OK, also when discovery was not requested, or when
 *         nvidia-smi is absent or fails and the backend lists GPUs;
 *         NVCF_ENOTFOUND, NVCF_EIO or NVCF_EINVAL (from running or
 *         parsing nvidia-smi) when the backend lists no GPUs and none
 *         were discovered, with a message that asks for spec.gpus;
 *         NVCF_ENOMEM
 */
nvcf_status nvcf__backend_discover(nvcf__backend *backend, const char *mode);

/* Finds an instance type of a GPU type; NULL when either is unknown. */
const nvcf__instance_type *
nvcf__backend_find_type(const nvcf__backend *backend, const char *gpu,
			const char *instance_type,
			const nvcf__backend_gpu **gpu_out);

/* ---- argument splitting ----------------------------------------------- */

/*
 * Splits @p text into words as a POSIX shell does: blanks separate words,
 * single quotes keep everything literal, double quotes keep everything but
 * \" \\ \$ \` and $PORT, and an unquoted backslash escapes the next
 * character. $PORT and ${PORT} become @p port; any other '$' stays as it
 * is. Nothing is globbed and no command runs.
 *
 * @param[out] argv_out  NULL-terminated array, released with
 *                       nvcf__shell_free()
 * @return NVCF_OK, NVCF_EINVAL for an unterminated quote or a trailing
 *         backslash (the message gives the offset), NVCF_ENOMEM
 */
nvcf_status nvcf__shell_split(const char *text, const char *port,
			      char ***argv_out, size_t *argc_out);

void nvcf__shell_free(char **argv);

/* ---- environments --------------------------------------------------------- */

/* An environment being built: "NAME=VALUE" entries, NULL-terminated. */
typedef struct nvcf__env {
	char **v;
	size_t n, cap;
} nvcf__env;

/*
 * Sets @p name to @p value (NULL means empty) in @p e, replacing an entry
 * of the same name. Out of memory leaves @p e without the entry.
 */
void nvcf__env_set(nvcf__env *e, const char *name, const char *value);

/* Releases the entries of @p e and resets it to empty. */
void nvcf__env_free(nvcf__env *e);

/* ---- GPU allocation ---------------------------------------------------- */

/* Device indices of every GPU type of a backend. Not thread-safe. */
typedef struct nvcf__gpu_pool nvcf__gpu_pool;

nvcf_status nvcf__gpu_pool_new(nvcf__gpu_pool **out,
			       const nvcf__backend *backend);
void nvcf__gpu_pool_free(nvcf__gpu_pool *pool);

/*
 * Takes @p count free device indices of GPU type @p gpu, lowest first,
 * into @p indices: entries of nvcf__backend_gpu.devices when the backend
 * has them, else of 0..capacity-1. NVCF_EQUOTA (nothing taken) when fewer are free,
 * NVCF_ENOTFOUND for an unknown type.
 */
nvcf_status nvcf__gpu_alloc(nvcf__gpu_pool *pool, const char *gpu,
			    unsigned int count, unsigned int *indices);

/*
 * Takes exactly the device indices @p indices of @p gpu, for instances a
 * restarted agent adopts. NVCF_EEXISTS (nothing taken) when one is not a
 * device of the type, repeated or held already; NVCF_ENOTFOUND for an
 * unknown type.
 */
nvcf_status nvcf__gpu_claim(nvcf__gpu_pool *pool, const char *gpu,
			    const unsigned int *indices, unsigned int count);

/* Returns device indices taken by nvcf__gpu_alloc(). */
void nvcf__gpu_release(nvcf__gpu_pool *pool, const char *gpu,
		       const unsigned int *indices, unsigned int count);

/* Number of devices of @p gpu in use; 0 for an unknown type. */
unsigned int nvcf__gpu_allocated(const nvcf__gpu_pool *pool, const char *gpu);

/* Number of free devices of @p gpu; 0 for an unknown type. */
unsigned int nvcf__gpu_available(const nvcf__gpu_pool *pool, const char *gpu);

#endif /* NVCF_AGENT_INTERNAL_H */
