/* SPDX-License-Identifier: Apache-2.0 */
#include <stdlib.h>
#include <string.h>

#include "agent_internal.h"

typedef struct gpu_type {
	char *name;
	unsigned int capacity;
	unsigned int allocated;
	unsigned int *devices; /* capacity device indices, ascending */
	bool *used;            /* one flag per entry of devices */
} gpu_type;

struct nvcf__gpu_pool {
	gpu_type *types;
	unsigned int count;
};

void nvcf__gpu_pool_free(nvcf__gpu_pool *pool)
{
	if (pool == NULL)
		return;
	for (unsigned int i = 0; i < pool->count; i++) {
		free(pool->types[i].name);
		free(pool->types[i].devices);
		free(pool->types[i].used);
	}
	free(pool->types);
	free(pool);
}

nvcf_status nvcf__gpu_pool_new(nvcf__gpu_pool **out,
			       const nvcf__backend *backend)
{
	nvcf__gpu_pool *pool;
	unsigned int n = backend->spec.gpus_count;

	pool = calloc(1, sizeof(*pool));
	if (pool == NULL)
		return nvcf__error_oom();
	pool->types = calloc(n ? n : 1, sizeof(*pool->types));
	if (pool->types == NULL) {
		free(pool);
		return nvcf__error_oom();
	}
	for (unsigned int i = 0; i < n; i++) {
		const nvcf__backend_gpu *g = &backend->spec.gpus[i];
		gpu_type *t = &pool->types[i];

		pool->count++;
		t->name = nvcf__strdup(g->name);
		t->capacity = g->capacity;
		t->used = calloc(g->capacity ? g->capacity : 1, sizeof(bool));
		t->devices = calloc(g->capacity ? g->capacity : 1,
				    sizeof(*t->devices));
		if (t->name == NULL || t->used == NULL || t->devices == NULL) {
			nvcf__gpu_pool_free(pool);
			return nvcf__error_oom();
		}
		/* The discovered or listed indices, else 0..capacity-1. */
		for (unsigned int k = 0; k < g->capacity; k++)
			t->devices[k] = g->devices_count == g->capacity ?
					g->devices[k] : k;
	}
	*out = pool;
	return NVCF_OK;
}

static gpu_type *find_type(const nvcf__gpu_pool *pool, const char *gpu)
{
	for (unsigned int i = 0; gpu != NULL && i < pool->count; i++)
		if (strcmp(pool->types[i].name, gpu) == 0)
			return &pool->types[i];
	return NULL;
}

/* Returns the slot of device @p index in @p t, or capacity if absent. */
static unsigned int slot_of(const gpu_type *t, unsigned int index)
{
	unsigned int slot = 0;

	while (slot < t->capacity && t->devices[slot] != index)
		slot++;
	return slot;
}

nvcf_status nvcf__gpu_alloc(nvcf__gpu_pool *pool, const char *gpu,
			    unsigned int count, unsigned int *indices)
{
	gpu_type *t = find_type(pool, gpu);
	unsigned int taken = 0;

	if (t == NULL)
		return nvcf__error_set(NVCF_ENOTFOUND,
				       "unknown GPU type '%s': use one the "
				       "backend declares", gpu ? gpu : "");
	if (count > t->capacity - t->allocated)
		return nvcf__error_set(NVCF_EQUOTA,
				       "insufficient capacity: %u %s GPUs "
				       "requested, %u of %u free", count, gpu,
				       t->capacity - t->allocated,
				       t->capacity);
	for (unsigned int i = 0; i < t->capacity && taken < count; i++) {
		if (!t->used[i]) {
			t->used[i] = true;
			indices[taken++] = t->devices[i];
		}
	}
	t->allocated += taken;
	return NVCF_OK;
}

void nvcf__gpu_release(nvcf__gpu_pool *pool, const char *gpu,
		       const unsigned int *indices, unsigned int count)
{
	gpu_type *t = find_type(pool, gpu);

	if (t == NULL)
		return;
	for (unsigned int i = 0; i < count; i++) {
		unsigned int slot = slot_of(t, indices[i]);

		if (slot < t->capacity && t->used[slot]) {
			t->used[slot] = false;
			t->allocated--;
		}
	}
}

unsigned int nvcf__gpu_allocated(const nvcf__gpu_pool *pool, const char *gpu)
{
	gpu_type *t = find_type(pool, gpu);

	return t ? t->allocated : 0;
}

unsigned int nvcf__gpu_available(const nvcf__gpu_pool *pool, const char *gpu)
{
	gpu_type *t = find_type(pool, gpu);

	return t ? t->capacity - t->allocated : 0;
}

nvcf_status nvcf__gpu_claim(nvcf__gpu_pool *pool, const char *gpu,
			    const unsigned int *indices, unsigned int count)
{
	gpu_type *t = find_type(pool, gpu);

	if (t == NULL)
		return nvcf__error_set(NVCF_ENOTFOUND,
				       "unknown GPU type '%s': use one the "
				       "backend declares", gpu ? gpu : "");
	for (unsigned int i = 0; i < count; i++) {
		unsigned int slot = slot_of(t, indices[i]);
		bool twice = false;

		for (unsigned int j = 0; j < i; j++)
			twice |= indices[j] == indices[i];
		if (slot >= t->capacity || t->used[slot] || twice)
			return nvcf__error_set(NVCF_EEXISTS,
					       "%s device %u is not in this "
					       "agent's pool or is already "
					       "held: stop the instance that "
					       "holds it", gpu, indices[i]);
	}
	for (unsigned int i = 0; i < count; i++)
		t->used[slot_of(t, indices[i])] = true;
	t->allocated += count;
	return NVCF_OK;
}
