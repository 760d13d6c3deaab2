/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Placement: the clusters that can take a deployment specification, their
 * rank and the instances each one gets. Also the check that reports why a
 * specification can never be placed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/internal.h"
#include "routing/routing_internal.h"

struct nvcf_route {
	nvcf_route_entry *entries;
	size_t count;
	nvcf_route_exclusion *excluded;
	size_t excluded_count;
	unsigned int unplaced;
	char *explanation;
};

static const char *const reason_names[] = {
	[NVCF_ROUTE_EXCLUDED_BY_CALLER] = "EXCLUDED_BY_CALLER",
	[NVCF_ROUTE_NOT_IN_CLUSTERS] = "NOT_IN_CLUSTERS",
	[NVCF_ROUTE_NOT_IN_BACKEND] = "NOT_IN_BACKEND",
	[NVCF_ROUTE_NOT_IN_REGIONS] = "NOT_IN_REGIONS",
	[NVCF_ROUTE_MISSING_ATTRIBUTE] = "MISSING_ATTRIBUTE",
	[NVCF_ROUTE_UNHEALTHY] = "UNHEALTHY",
	[NVCF_ROUTE_NO_SUCH_GPU] = "NO_SUCH_GPU",
	[NVCF_ROUTE_NO_SUCH_INSTANCE_TYPE] = "NO_SUCH_INSTANCE_TYPE",
	[NVCF_ROUTE_NO_CAPACITY] = "NO_CAPACITY",
};

const char *nvcf_route_reason_name(nvcf_route_reason reason)
{
	if ((int)reason < NVCF_ROUTE_EXCLUDED_BY_CALLER ||
	    (int)reason > NVCF_ROUTE_NO_CAPACITY)
		return "UNKNOWN";
	return reason_names[reason];
}

/* ---- text helpers ------------------------------------------------------ */

/*
 * Appends "[a, b]". When memory runs out the text comes out short, and
 * callers treat only a NULL buffer (nothing written at all) as failure.
 */
static void append_list(nvcf__buf *b, const char *const *list, size_t n)
{
	nvcf__buf_append(b, "[", 1);
	for (size_t i = 0; i < n; i++)
		nvcf__buf_printf(b, "%s%s", i ? ", " : "",
				 list[i] ? list[i] : "(null)");
	nvcf__buf_append(b, "]", 1);
}

/* Appends each distinct string once (case-insensitive) to a list. */
static void collect(const char **list, size_t *n, const char *s)
{
	if (!nvcf__routing_in_list(list, *n, s))
		list[(*n)++] = s;
}

/* ---- eligibility ------------------------------------------------------- */

/* What one cluster offers for a spec once the filters passed. */
typedef struct offer {
	const nvcf_gpu_info *gpu;
	const nvcf_instance_type_info *type;
	unsigned int free_gpus;
	unsigned int free_slots;
} offer;

static bool mentions(const char *const *list, size_t n,
		     const nvcf_cluster_info *c)
{
	return nvcf__routing_in_list(list, n, c->cluster_id) ||
	       nvcf__routing_in_list(list, n, c->name);
}

/*
 * Runs the checks of nvcf_routing_place() in their documented order and
 * returns the first that fails, or 0. With @p static_only, the caller's
 * exclusions, health and capacity are not checked. The reason text goes
 * to @p why when it is not NULL.
 */
static int check_cluster(const nvcf_inventory *inv, size_t index,
			 const nvcf_placement_spec *spec, bool static_only,
			 nvcf__buf *why, offer *o)
{
	const nvcf_cluster_info *c = &inv->clusters[index];
	nvcf__buf scratch = {0};
	nvcf__buf *b = why ? why : &scratch;
	int reason = 0;

	memset(o, 0, sizeof(*o));
	nvcf__buf_printf(b, "cluster %s: ", c->cluster_id);
	if (!static_only && mentions(spec->exclude, spec->exclude_count, c)) {
		nvcf__buf_printf(b, "excluded by the caller, which had it "
				    "reject this work before");
		reason = NVCF_ROUTE_EXCLUDED_BY_CALLER;
		goto out;
	}
	if (spec->clusters_count > 0 &&
	    !mentions(spec->clusters, spec->clusters_count, c)) {
		nvcf__buf_printf(b, "id %s and name %s not in clusters ",
				 c->cluster_id, c->name);
		append_list(b, spec->clusters, spec->clusters_count);
		reason = NVCF_ROUTE_NOT_IN_CLUSTERS;
		goto out;
	}
	if (spec->backend != NULL && *spec->backend != '\0' &&
	    strcasecmp(spec->backend, c->group) != 0) {
		nvcf__buf_printf(b, "cluster group %s is not backend %s",
				 c->group, spec->backend);
		reason = NVCF_ROUTE_NOT_IN_BACKEND;
		goto out;
	}
	if (spec->regions_count > 0 &&
	    !nvcf__routing_in_list(spec->regions, spec->regions_count,
				   c->region)) {
		nvcf__buf_printf(b, "region %s not in regions ", c->region);
		append_list(b, spec->regions, spec->regions_count);
		reason = NVCF_ROUTE_NOT_IN_REGIONS;
		goto out;
	}
	for (size_t i = 0; i < spec->attributes_count; i++) {
		const char *want = spec->attributes[i];

		if (want != NULL &&
		    nvcf__routing_in_list(c->attributes, c->attributes_count,
					  want))
			continue;
		nvcf__buf_printf(b, "attribute %s missing; it has ",
				 want ? want : "(null)");
		append_list(b, c->attributes, c->attributes_count);
		reason = NVCF_ROUTE_MISSING_ATTRIBUTE;
		goto out;
	}
	if (!static_only &&
	    !nvcf_inventory_cluster_healthy(inv, index, spec->now_ms,
					    spec->heartbeat_timeout_ms)) {
		int64_t limit = spec->heartbeat_timeout_ms > 0
					? spec->heartbeat_timeout_ms
					: NVCF_HEARTBEAT_TIMEOUT_MS_DEFAULT;

		if (!c->healthy)
			nvcf__buf_printf(b, "unhealthy: its agent reported "
					    "itself unhealthy");
		else if (c->heartbeat_ms <= 0)
			nvcf__buf_printf(b, "unhealthy: no heartbeat yet");
		else
			nvcf__buf_printf(b,
					 "unhealthy: last heartbeat %lld ms "
					 "ago, over the %lld ms timeout",
					 (long long)(spec->now_ms -
						     c->heartbeat_ms),
					 (long long)limit);
		reason = NVCF_ROUTE_UNHEALTHY;
		goto out;
	}
	o->gpu = nvcf__routing_find_gpu(c, spec->gpu);
	if (o->gpu == NULL) {
		const char **names = calloc(c->gpus_count + 1, sizeof(*names));

		for (size_t i = 0; names && i < c->gpus_count; i++)
			names[i] = c->gpus[i].name;
		nvcf__buf_printf(b, "no GPU %s; it has ", spec->gpu);
		append_list(b, names, names ? c->gpus_count : 0);
		free(names);
		reason = NVCF_ROUTE_NO_SUCH_GPU;
		goto out;
	}
	o->type = nvcf__routing_find_type(o->gpu, spec->instance_type);
	if (o->type == NULL) {
		const nvcf_gpu_info *g = o->gpu;
		const char **names =
			calloc(g->instance_types_count + 1, sizeof(*names));

		for (size_t i = 0; names && i < g->instance_types_count; i++)
			names[i] = g->instance_types[i].name;
		nvcf__buf_printf(b, "GPU %s has no instance type %s; it has ",
				 g->name, spec->instance_type);
		append_list(b, names, names ? g->instance_types_count : 0);
		free(names);
		reason = NVCF_ROUTE_NO_SUCH_INSTANCE_TYPE;
		goto out;
	}
	o->free_gpus = o->gpu->allocated < o->gpu->capacity
			       ? o->gpu->capacity - o->gpu->allocated
			       : 0;
	o->free_slots = o->free_gpus / o->type->gpu_count;
	if (!static_only && o->free_slots == 0) {
		nvcf__buf_printf(b, "no capacity: %u of %u %s GPUs free, "
				    "instance type %s needs %u",
				 o->free_gpus, o->gpu->capacity, o->gpu->name,
				 o->type->name, o->type->gpu_count);
		reason = NVCF_ROUTE_NO_CAPACITY;
	}
out:
	nvcf__buf_free(&scratch);
	return reason;
}

static nvcf_status check_spec(const nvcf_placement_spec *spec,
			      const char *caller)
{
	if (spec->version != NVCF_PLACEMENT_SPEC_VERSION)
		return nvcf__error_set(NVCF_EINVAL,
				       "%s: placement spec version %u is not "
				       "supported; use NVCF_PLACEMENT_SPEC_INIT",
				       caller, spec->version);
	if (spec->gpu == NULL || *spec->gpu == '\0')
		return nvcf__error_set(NVCF_EINVAL,
				       "gpu is required, e.g. \"L40S\"");
	if (spec->instance_type == NULL || *spec->instance_type == '\0')
		return nvcf__error_set(NVCF_EINVAL,
				       "instanceType is required, e.g. "
				       "\"NCP.GPU.L40S_1x\"");
	if ((spec->clusters_count && spec->clusters == NULL) ||
	    (spec->regions_count && spec->regions == NULL) ||
	    (spec->attributes_count && spec->attributes == NULL) ||
	    (spec->exclude_count && spec->exclude == NULL))
		return nvcf__error_set(NVCF_EINVAL,
				       "%s: a list of the spec is NULL but its "
				       "count is not 0",
				       caller);
	return NVCF_OK;
}

/* ---- route ------------------------------------------------------------- */

void nvcf_route_free(nvcf_route *route)
{
	if (route == NULL)
		return;
	for (size_t i = 0; i < route->count; i++) {
		free((char *)route->entries[i].cluster_id);
		free((char *)route->entries[i].gpu);
		free((char *)route->entries[i].instance_type);
	}
	for (size_t i = 0; i < route->excluded_count; i++) {
		free((char *)route->excluded[i].cluster_id);
		free((char *)route->excluded[i].text);
	}
	free(route->entries);
	free(route->excluded);
	free(route->explanation);
	free(route);
}

size_t nvcf_route_count(const nvcf_route *route)
{
	return route ? route->count : 0;
}

const nvcf_route_entry *nvcf_route_entry_at(const nvcf_route *route,
					    size_t index)
{
	return route && index < route->count ? &route->entries[index] : NULL;
}

size_t nvcf_route_excluded_count(const nvcf_route *route)
{
	return route ? route->excluded_count : 0;
}

const nvcf_route_exclusion *nvcf_route_excluded_at(const nvcf_route *route,
						   size_t index)
{
	return route && index < route->excluded_count
		       ? &route->excluded[index]
		       : NULL;
}

unsigned int nvcf_route_unplaced(const nvcf_route *route)
{
	return route ? route->unplaced : 0;
}

const char *nvcf_route_explanation(const nvcf_route *route)
{
	return route && route->explanation ? route->explanation : "";
}

/* Rank key: lower sorts first. */
typedef struct ranked {
	nvcf_route_entry entry;
	size_t mention;  /* first position in spec->clusters */
} ranked;

static size_t first_mention(const nvcf_placement_spec *spec,
			    const nvcf_cluster_info *c)
{
	for (size_t i = 0; i < spec->clusters_count; i++)
		if (spec->clusters[i] != NULL &&
		    (strcasecmp(spec->clusters[i], c->cluster_id) == 0 ||
		     strcasecmp(spec->clusters[i], c->name) == 0))
			return i;
	return 0;
}

static bool ranks_before(const ranked *a, const ranked *b)
{
	if (a->mention != b->mention)
		return a->mention < b->mention;
	if (a->entry.free_gpus != b->entry.free_gpus)
		return a->entry.free_gpus > b->entry.free_gpus;
	return strcmp(a->entry.cluster_id, b->entry.cluster_id) < 0;
}

/*
 * Round-robin in rank order, one instance per cluster with room per
 * round, computed a level at a time so that a huge count costs no more
 * than a small one.
 */
static unsigned int spread(ranked *r, size_t n, unsigned int count)
{
	while (count > 0) {
		unsigned int room = 0, open = 0, level;

		for (size_t i = 0; i < n; i++) {
			unsigned int left = r[i].entry.free_slots -
					    r[i].entry.assigned;

			if (left == 0)
				continue;
			open++;
			room = room == 0 || left < room ? left : room;
		}
		if (open == 0)
			break;
		level = count / open < room ? count / open : room;
		for (size_t i = 0; i < n; i++) {
			nvcf_route_entry *e = &r[i].entry;

			if (e->assigned == e->free_slots)
				continue;
			if (level > 0) {
				e->assigned += level;
				count -= level;
			} else if (count > 0) {
				e->assigned++;
				count--;
			}
		}
	}
	return count;
}

static unsigned int pack(ranked *r, size_t n, unsigned int count)
{
	for (size_t i = 0; i < n && count > 0; i++) {
		unsigned int give = r[i].entry.free_slots < count
					    ? r[i].entry.free_slots
					    : count;

		r[i].entry.assigned = give;
		count -= give;
	}
	return count;
}

static void explain(nvcf__buf *b, const nvcf_placement_spec *spec,
		    const nvcf_route *route)
{
	unsigned int placed = spec->instance_count - route->unplaced;

	nvcf__buf_printf(b, "Placed %u of %u instance%s of GPU %s, instance "
			    "type %s (%s)",
			 placed, spec->instance_count,
			 spec->instance_count == 1 ? "" : "s", spec->gpu,
			 spec->instance_type,
			 spec->mode == NVCF_PLACEMENT_SPREAD ? "spread"
							     : "pack");
	if (route->count == 0) {
		nvcf__buf_printf(b, "; no cluster is eligible");
	} else {
		nvcf__buf_printf(b, ":");
		for (size_t i = 0; i < route->count; i++) {
			const nvcf_route_entry *e = &route->entries[i];

			nvcf__buf_printf(b, "%s %u on %s (%u free slot%s)",
					 i ? "," : "", e->assigned,
					 e->cluster_id, e->free_slots,
					 e->free_slots == 1 ? "" : "s");
		}
	}
	nvcf__buf_printf(b, ".");
	if (route->unplaced > 0)
		nvcf__buf_printf(b, " %u instance%s did not fit on any "
				    "cluster.",
				 route->unplaced,
				 route->unplaced == 1 ? "" : "s");
	if (route->excluded_count > 0) {
		nvcf__buf_printf(b, " Excluded:");
		for (size_t i = 0; i < route->excluded_count; i++)
			nvcf__buf_printf(b, "%s %s", i ? ";" : "",
					 route->excluded[i].text);
		nvcf__buf_printf(b, ".");
	}
}

nvcf_status nvcf_routing_place(const nvcf_inventory *inv,
			       const nvcf_placement_spec *spec,
			       nvcf_route **out)
{
	nvcf_route *route = NULL;
	ranked *r = NULL;
	size_t n = 0;
	nvcf__buf text = {0};
	nvcf_status st;

	if (out != NULL)
		*out = NULL;
	if (inv == NULL || spec == NULL || out == NULL)
		return nvcf__error_set(NVCF_EINVAL,
				       "nvcf_routing_place: an argument is "
				       "NULL");
	if ((st = check_spec(spec, "nvcf_routing_place")) != NVCF_OK)
		return st;
	if (spec->mode != NVCF_PLACEMENT_PACK &&
	    spec->mode != NVCF_PLACEMENT_SPREAD)
		return nvcf__error_set(NVCF_EINVAL,
				       "placement mode %d is unknown; use "
				       "NVCF_PLACEMENT_PACK or _SPREAD",
				       (int)spec->mode);
	route = calloc(1, sizeof(*route));
	r = calloc(inv->count + 1, sizeof(*r));
	if (route == NULL || r == NULL)
		goto oom;
	route->excluded = calloc(inv->count + 1, sizeof(*route->excluded));
	if (route->excluded == NULL)
		goto oom;
	for (size_t i = 0; i < inv->count; i++) {
		const nvcf_cluster_info *c = &inv->clusters[i];
		nvcf__buf why = {0};
		offer o;
		int reason = check_cluster(inv, i, spec, false, &why, &o);

		if (reason != 0) {
			nvcf_route_exclusion *x =
				&route->excluded[route->excluded_count];

			if (why.data == NULL)
				goto oom;
			x->reason = (nvcf_route_reason)reason;
			x->text = why.data;
			x->cluster_id = nvcf__strdup(c->cluster_id);
			route->excluded_count++;
			if (x->cluster_id == NULL)
				goto oom;
			continue;
		}
		nvcf__buf_free(&why);
		r[n].mention = first_mention(spec, c);
		r[n].entry.free_gpus = o.free_gpus;
		r[n].entry.free_slots = o.free_slots;
		r[n].entry.gpu_count = o.type->gpu_count;
		r[n].entry.cluster_id = nvcf__strdup(c->cluster_id);
		r[n].entry.gpu = nvcf__strdup(o.gpu->name);
		r[n].entry.instance_type = nvcf__strdup(o.type->name);
		n++;
		if (!r[n - 1].entry.cluster_id || !r[n - 1].entry.gpu ||
		    !r[n - 1].entry.instance_type)
			goto oom;
	}
	/* Insertion sort: stable, and n is the number of clusters. */
	for (size_t i = 1; i < n; i++) {
		ranked v = r[i];
		size_t j = i;

		while (j > 0 && ranks_before(&v, &r[j - 1])) {
			r[j] = r[j - 1];
			j--;
		}
		r[j] = v;
	}
	route->unplaced = spec->mode == NVCF_PLACEMENT_SPREAD
				  ? spread(r, n, spec->instance_count)
				  : pack(r, n, spec->instance_count);
	route->entries = calloc(n + 1, sizeof(*route->entries));
	if (route->entries == NULL)
		goto oom;
	for (size_t i = 0; i < n; i++)
		route->entries[i] = r[i].entry;
	route->count = n;
	free(r);
	r = NULL;
	explain(&text, spec, route);
	if (text.data == NULL)
		goto oom;
	route->explanation = text.data;
	*out = route;
	return NVCF_OK;
oom:
	nvcf__buf_free(&text);
	if (r != NULL && route != NULL && route->entries == NULL)
		for (size_t i = 0; i < n; i++) {
			free((char *)r[i].entry.cluster_id);
			free((char *)r[i].entry.gpu);
			free((char *)r[i].entry.instance_type);
		}
	free(r);
	nvcf_route_free(route);
	return nvcf__error_oom();
}

/* ---- validation -------------------------------------------------------- */

static nvcf_status reject(char *err, size_t errlen, nvcf__buf *b)
{
	nvcf_status st;

	if (b->data == NULL) {
		st = nvcf__error_oom();
	} else {
		st = nvcf__error_set(NVCF_EINVAL, "%s", b->data);
	}
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s", nvcf_error_last()->message);
	nvcf__buf_free(b);
	return st;
}

/* Distinct values of one field across the inventory, for messages. */
typedef enum field { GROUPS, REGIONS, GPUS } field;

static void append_known(nvcf__buf *b, const nvcf_inventory *inv, field f)
{
	size_t cap = 0, n = 0;
	const char **seen;

	for (size_t i = 0; i < inv->count; i++)
		cap += f == GPUS ? inv->clusters[i].gpus_count : 1;
	seen = calloc(cap + 1, sizeof(*seen));
	if (seen == NULL)
		return;
	for (size_t i = 0; i < inv->count; i++) {
		const nvcf_cluster_info *c = &inv->clusters[i];

		if (f == GROUPS)
			collect(seen, &n, c->group);
		else if (f == REGIONS)
			collect(seen, &n, c->region);
		else
			for (size_t j = 0; j < c->gpus_count; j++)
				collect(seen, &n, c->gpus[j].name);
	}
	append_list(b, seen, n);
	free(seen);
}

static void append_types(nvcf__buf *b, const nvcf_inventory *inv,
			 const char *gpu)
{
	size_t cap = 0, n = 0;
	const char **seen;

	for (size_t i = 0; i < inv->count; i++) {
		const nvcf_gpu_info *g =
			nvcf__routing_find_gpu(&inv->clusters[i], gpu);

		cap += g ? g->instance_types_count : 0;
	}
	seen = calloc(cap + 1, sizeof(*seen));
	if (seen == NULL)
		return;
	for (size_t i = 0; i < inv->count; i++) {
		const nvcf_gpu_info *g =
			nvcf__routing_find_gpu(&inv->clusters[i], gpu);

		for (size_t j = 0; g && j < g->instance_types_count; j++)
			collect(seen, &n, g->instance_types[j].name);
	}
	append_list(b, seen, n);
	free(seen);
}

nvcf_status nvcf_inventory_validate_spec(const nvcf_inventory *inv,
					 const nvcf_placement_spec *spec,
					 char *err, size_t errlen)
{
	nvcf__buf b = {0};
	nvcf_status st;
	bool found;

	if (inv == NULL || spec == NULL) {
		nvcf__buf_printf(&b, "nvcf_inventory_validate_spec: %s is "
				     "NULL",
				 inv ? "spec" : "inventory");
		return reject(err, errlen, &b);
	}
	if ((st = check_spec(spec, "nvcf_inventory_validate_spec"))) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "%s",
				 nvcf_error_last()->message);
		return st;
	}
	if (inv->count == 0) {
		nvcf__buf_printf(&b, "no cluster is registered; start a "
				     "cluster agent (nvca) first");
		return reject(err, errlen, &b);
	}
	if (spec->backend != NULL && *spec->backend != '\0' &&
	    spec->clusters_count > 0) {
		nvcf__buf_printf(&b, "backend '%s' and clusters cannot both "
				     "be set; keep one of them",
				 spec->backend);
		return reject(err, errlen, &b);
	}
	if (spec->backend != NULL && *spec->backend != '\0') {
		found = false;
		for (size_t i = 0; i < inv->count && !found; i++)
			found = strcasecmp(inv->clusters[i].group,
					   spec->backend) == 0;
		if (!found) {
			nvcf__buf_printf(&b, "backend: no cluster group is "
					     "named '%s'; groups: ",
					 spec->backend);
			append_known(&b, inv, GROUPS);
			return reject(err, errlen, &b);
		}
	}
	for (size_t k = 0; k < spec->clusters_count; k++) {
		size_t at;

		if (spec->clusters[k] == NULL ||
		    nvcf_inventory_find(inv, spec->clusters[k], &at)) {
			nvcf__buf_printf(&b, "clusters[%zu]: no cluster has id "
					     "or name '%s'",
					 k, spec->clusters[k]
						    ? spec->clusters[k]
						    : "(null)");
			return reject(err, errlen, &b);
		}
	}
	for (size_t k = 0; k < spec->regions_count; k++) {
		found = false;
		for (size_t i = 0; i < inv->count && !found; i++)
			found = spec->regions[k] != NULL &&
				strcasecmp(inv->clusters[i].region,
					   spec->regions[k]) == 0;
		if (!found) {
			nvcf__buf_printf(&b, "regions[%zu]: no cluster is in "
					     "region '%s'; regions: ",
					 k, spec->regions[k]
						    ? spec->regions[k]
						    : "(null)");
			append_known(&b, inv, REGIONS);
			return reject(err, errlen, &b);
		}
	}
	for (size_t k = 0; k < spec->attributes_count; k++) {
		found = false;
		for (size_t i = 0; i < inv->count && !found; i++)
			found = spec->attributes[k] != NULL &&
				nvcf__routing_in_list(
					inv->clusters[i].attributes,
					inv->clusters[i].attributes_count,
					spec->attributes[k]);
		if (!found) {
			nvcf__buf_printf(&b, "attributes[%zu]: no cluster has "
					     "attribute '%s'",
					 k, spec->attributes[k]
						    ? spec->attributes[k]
						    : "(null)");
			return reject(err, errlen, &b);
		}
	}
	found = false;
	for (size_t i = 0; i < inv->count && !found; i++)
		found = nvcf__routing_find_gpu(&inv->clusters[i],
					       spec->gpu) != NULL;
	if (!found) {
		nvcf__buf_printf(&b, "gpu: no cluster offers GPU '%s'; GPUs: ",
				 spec->gpu);
		append_known(&b, inv, GPUS);
		return reject(err, errlen, &b);
	}
	found = false;
	for (size_t i = 0; i < inv->count && !found; i++) {
		const nvcf_gpu_info *g =
			nvcf__routing_find_gpu(&inv->clusters[i], spec->gpu);

		found = g && nvcf__routing_find_type(g, spec->instance_type);
	}
	if (!found) {
		nvcf__buf_printf(&b, "instanceType: no cluster offers instance "
				     "type '%s' for GPU '%s'; instance types: ",
				 spec->instance_type, spec->gpu);
		append_types(&b, inv, spec->gpu);
		return reject(err, errlen, &b);
	}
	/* Each filter matches some cluster; do they all match one? */
	nvcf__buf_printf(&b, "no cluster matches every filter of the "
			     "specification:");
	for (size_t i = 0; i < inv->count; i++) {
		nvcf__buf why = {0};
		offer o;

		if (check_cluster(inv, i, spec, true, &why, &o) == 0) {
			nvcf__buf_free(&why);
			nvcf__buf_free(&b);
			return NVCF_OK;
		}
		nvcf__buf_printf(&b, "%s %s", i ? ";" : "",
				 why.data ? why.data : "");
		nvcf__buf_free(&why);
	}
	return reject(err, errlen, &b);
}
