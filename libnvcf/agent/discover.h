/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GPU discovery for the cluster agent: the GPUs of the machine, as
 * `nvidia-smi --query-gpu=name,index --format=csv,noheader` lists them,
 * grouped by short name, so that a backend file may leave its GPUs out
 * (or set `gpuDiscovery: dynamic`) on a real GPU host.
 *
 * The parser is a pure function so that it can be tested and fuzzed on
 * sample output; running nvidia-smi and applying the result to a backend
 * are separate steps.
 */
#ifndef NVCF_AGENT_DISCOVER_H
#define NVCF_AGENT_DISCOVER_H

#include <stdbool.h>
#include <stddef.h>

#include "agent/agent_internal.h"

/* One GPU model of the machine and the device indices it has. */
typedef struct nvcf__discovered_gpu {
	char *name;            /* short model name, e.g. "H100" */
	char *model;           /* as nvidia-smi spells it */
	unsigned int count;
	unsigned int *indices; /* count device indices, ascending */
} nvcf__discovered_gpu;

/*
 * Parses nvidia-smi CSV output (@p len bytes, not necessarily
 * NUL-terminated): one "model, index" line per device. Blank lines are
 * skipped. Devices group by short name (below, compared
 * case-insensitively) in the order the names first appear; model keeps
 * the first model of the group.
 *
 * The short name drops a leading "NVIDIA " or "Tesla " and keeps the first
 * word up to a blank or '-' ("NVIDIA H100 80GB HBM3" -> "H100",
 * "NVIDIA A100-SXM4-80GB" -> "A100"); characters other than letters,
 * digits, '-' and '_' become '_', so that the name is a NATS subject token
 * as GPU names must be.
 *
 * @param[out] out        array of *count_out models, released with
 *                        nvcf__gpu_discovered_free(); NULL when empty
 * @return NVCF_OK (also for no devices); NVCF_EINVAL naming the line for a
 *         line without ", index", an index that is not an integer below
 *         NVCF__GPU_CAPACITY_MAX, a repeated index, or an empty model
 *         (nvidia-smi prints its errors on stdout); NVCF_ENOMEM
 */
nvcf_status nvcf__gpu_discover_parse(const char *text, size_t len,
				     nvcf__discovered_gpu **out,
				     size_t *count_out);

void nvcf__gpu_discovered_free(nvcf__discovered_gpu *gpus, size_t count);

/*
 * Runs @p program (NULL means "nvidia-smi", looked up on PATH) with the
 * query above and parses its output; gives it 10 s.
 *
 * @return as nvcf__gpu_discover_parse(); NVCF_ENOTFOUND when the program
 *         is not on PATH; NVCF_EIO when it cannot start, exits non-zero
 *         or times out (the message names the cause)
 */
nvcf_status nvcf__gpu_discover_run(const char *program,
				   nvcf__discovered_gpu **out,
				   size_t *count_out);

/*
 * Tells whether a backend asks for discovery: @p mode is "dynamic"
 * (case-insensitive), or no GPU is listed.
 */
bool nvcf__gpu_discovery_requested(const char *mode, unsigned int gpus_count);

/*
 * Replaces the GPUs of @p backend with the @p count discovered ones, each
 * with its device indices (nvcf__backend_gpu.devices) so that instances
 * get the devices nvidia-smi named.
 *
 * A model the backend already lists (same name, case-insensitive) keeps
 * its spelling and the instance types that fit the discovered capacity.
 * If the listed default does not fit, the first type kept becomes the
 * default. A model with no type that fits, or one the backend does not
 * list, gets "NCP.GPU.{name}_1x" (the default) and "_2x", "_4x", "_8x" as
 * far as the count allows. On failure the backend is unchanged.
 *
 * @return NVCF_OK; NVCF_EINVAL for no GPUs; NVCF_ENOMEM
 */
nvcf_status nvcf__backend_apply_gpus(nvcf__backend *backend,
				     const nvcf__discovered_gpu *gpus,
				     size_t count);

/*
 * nvcf__backend_discover(), the agent's one call into this file, is
 * declared in agent_internal.h so that agent.c needs no other header.
 */

#endif /* NVCF_AGENT_DISCOVER_H */
