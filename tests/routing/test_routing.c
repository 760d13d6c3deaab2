/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of nvcf/routing.h: cluster records, placement, validation,
 * the clusterGroups listing and the subject names.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "routing/routing_internal.h"

#define NOW 1714564800000LL /* 2024-05-01T12:00:00Z */

/*
 * Five clusters: two GPU types, two regions, two groups, attributes,
 * c4 unhealthy because its heartbeat is a minute old, c5 full.
 *   c1 alpha g-east us-east [SOC2]              L40S 6 of 8 free, H100 2/2
 *   c2 beta  g-east eu-west [SOC2, Preemptible] L40S 4 of 4 free
 *   c3 gamma g-west us-east []                  L40S 3 of 4 free (1x only)
 *   c4 delta g-west us-east, stale              L40S 8 of 8 free
 *   c5 full  g-east us-east                     L40S 0 of 4 free
 */
static const char *const records[] = {
	"{\"clusterId\":\"c2\",\"name\":\"beta\",\"group\":\"g-east\","
	"\"region\":\"eu-west\",\"attributes\":[\"SOC2\",\"Preemptible\"],"
	"\"gpus\":[{\"name\":\"L40S\",\"capacity\":4,\"allocated\":0,"
	"\"instanceTypes\":[{\"name\":\"NCP.GPU.L40S_1x\",\"default\":true,"
	"\"gpuCount\":1},{\"name\":\"NCP.GPU.L40S_2x\",\"gpuCount\":2}]}],"
	"\"heartbeatAtMs\":1714564799000,\"health\":\"healthy\"}",
	"{\"clusterId\":\"c3\",\"name\":\"gamma\",\"group\":\"g-west\","
	"\"region\":\"us-east\",\"attributes\":[],"
	"\"gpus\":[{\"name\":\"L40S\",\"capacity\":4,\"allocated\":1,"
	"\"instanceTypes\":[{\"name\":\"NCP.GPU.L40S_1x\",\"default\":true,"
	"\"description\":\"One L40S\",\"gpuCount\":1}]}],"
	"\"heartbeatAt\":\"2024-05-01T11:59:58.000Z\",\"health\":\"healthy\"}",
	"{\"clusterId\":\"c4\",\"name\":\"delta\",\"group\":\"g-west\","
	"\"region\":\"us-east\",\"gpus\":[{\"name\":\"L40S\",\"capacity\":8,"
	"\"allocated\":0,\"instanceTypes\":[{\"name\":\"NCP.GPU.L40S_1x\","
	"\"gpuCount\":1}]}],\"heartbeatAtMs\":1714564740000}",
	"{\"clusterId\":\"c5\",\"name\":\"full\",\"group\":\"g-east\","
	"\"region\":\"us-east\",\"gpus\":[{\"name\":\"L40S\",\"capacity\":4,"
	"\"allocated\":4,\"instanceTypes\":[{\"name\":\"NCP.GPU.L40S_1x\","
	"\"gpuCount\":1},{\"name\":\"NCP.GPU.L40S_2x\",\"gpuCount\":2}]}],"
	"\"heartbeatAtMs\":1714564800000}",
};

static nvcf_inventory *inv;

/* c1 goes in through the struct API, the others as KV records. */
static void add_c1(nvcf_inventory *to)
{
	static const nvcf_instance_type_info l40s[] = {
		{"NCP.GPU.L40S_1x", "One L40S", true, 1},
		{"NCP.GPU.L40S_2x", NULL, false, 2},
	};
	static const nvcf_instance_type_info h100[] = {
		{"NCP.GPU.H100_1x", "One H100", true, 1},
	};
	static const nvcf_gpu_info gpus[] = {
		{"L40S", 8, 2, l40s, 2},
		{"H100", 2, 0, h100, 1},
	};
	static const char *const attrs[] = {"SOC2"};
	nvcf_cluster_info c = NVCF_CLUSTER_INFO_INIT;

	c.cluster_id = "c1";
	c.name = "alpha";
	c.group = "g-east";
	c.region = "us-east";
	c.attributes = attrs;
	c.attributes_count = 1;
	c.gpus = gpus;
	c.gpus_count = 2;
	c.healthy = true;
	c.heartbeat_ms = NOW - 1000;
	ck_assert_int_eq(nvcf_inventory_add_cluster(to, &c), NVCF_OK);
}

static void setup(void)
{
	ck_assert_int_eq(nvcf_inventory_new(&inv), NVCF_OK);
	add_c1(inv);
	for (size_t i = 0; i < sizeof(records) / sizeof(records[0]); i++)
		ck_assert_msg(nvcf_inventory_add_cluster_json(inv, records[i]) ==
				      NVCF_OK,
			      "record %zu: %s", i, nvcf_error_last()->message);
}

static void teardown(void)
{
	nvcf_inventory_free(inv);
	inv = NULL;
}

static nvcf_placement_spec l40s_spec(unsigned int count)
{
	nvcf_placement_spec s = NVCF_PLACEMENT_SPEC_INIT;

	s.gpu = "L40S";
	s.instance_type = "NCP.GPU.L40S_1x";
	s.instance_count = count;
	s.now_ms = NOW;
	return s;
}

static nvcf_route *place(const nvcf_placement_spec *spec)
{
	nvcf_route *route = NULL;

	ck_assert_msg(nvcf_routing_place(inv, spec, &route) == NVCF_OK, "%s",
		      nvcf_error_last()->message);
	ck_assert_ptr_nonnull(route);
	return route;
}

/* Checks the eligible clusters in order as "id:assigned/free_slots". */
static void expect_entries(const nvcf_route *route, const char *want)
{
	nvcf__buf b = {0};

	for (size_t i = 0; i < nvcf_route_count(route); i++) {
		const nvcf_route_entry *e = nvcf_route_entry_at(route, i);

		nvcf__buf_printf(&b, "%s%s:%u/%u", i ? " " : "", e->cluster_id,
				 e->assigned, e->free_slots);
	}
	ck_assert_str_eq(b.data ? b.data : "", want);
	nvcf__buf_free(&b);
}

/* The exclusion of @p id, which must exist. */
static const nvcf_route_exclusion *excluded(const nvcf_route *route,
					    const char *id)
{
	for (size_t i = 0; i < nvcf_route_excluded_count(route); i++) {
		const nvcf_route_exclusion *x = nvcf_route_excluded_at(route, i);

		if (strcmp(x->cluster_id, id) == 0)
			return x;
	}
	ck_abort_msg("cluster %s is not excluded", id);
	return NULL;
}

static void expect_excluded(const nvcf_route *route, const char *id,
			    nvcf_route_reason reason, const char *text)
{
	const nvcf_route_exclusion *x = excluded(route, id);

	ck_assert_str_eq(nvcf_route_reason_name(x->reason),
			 nvcf_route_reason_name(reason));
	if (text != NULL)
		ck_assert_str_eq(x->text, text);
}

/* ---- placement ----------------------------------------------------------- */

START_TEST(pack_ranks_by_free_gpus)
{
	nvcf_placement_spec s = l40s_spec(5);
	nvcf_route *r = place(&s);

	expect_entries(r, "c1:5/6 c2:0/4 c3:0/3");
	ck_assert_uint_eq(nvcf_route_unplaced(r), 0);
	ck_assert_uint_eq(nvcf_route_excluded_count(r), 2);
	expect_excluded(r, "c4", NVCF_ROUTE_UNHEALTHY,
			"cluster c4: unhealthy: last heartbeat 60000 ms ago, "
			"over the 30000 ms timeout");
	expect_excluded(r, "c5", NVCF_ROUTE_NO_CAPACITY,
			"cluster c5: no capacity: 0 of 4 L40S GPUs free, "
			"instance type NCP.GPU.L40S_1x needs 1");
	ck_assert_str_eq(nvcf_route_entry_at(r, 0)->gpu, "L40S");
	ck_assert_str_eq(nvcf_route_entry_at(r, 0)->instance_type,
			 "NCP.GPU.L40S_1x");
	nvcf_route_free(r);
}
END_TEST

START_TEST(pack_overflow_leaves_unplaced)
{
	nvcf_placement_spec s = l40s_spec(20);
	nvcf_route *r = place(&s);

	expect_entries(r, "c1:6/6 c2:4/4 c3:3/3");
	ck_assert_uint_eq(nvcf_route_unplaced(r), 7);
	ck_assert_ptr_nonnull(strstr(nvcf_route_explanation(r),
				     "Placed 13 of 20 instances of GPU L40S, "
				     "instance type NCP.GPU.L40S_1x (pack): "
				     "6 on c1 (6 free slots), 4 on c2 (4 free "
				     "slots), 3 on c3 (3 free slots). 7 "
				     "instances did not fit on any cluster. "
				     "Excluded: cluster c4: unhealthy"));
	nvcf_route_free(r);
}
END_TEST

START_TEST(spread_round_robin)
{
	nvcf_placement_spec s = l40s_spec(5);
	nvcf_route *r;

	s.mode = NVCF_PLACEMENT_SPREAD;
	r = place(&s);
	expect_entries(r, "c1:2/6 c2:2/4 c3:1/3");
	nvcf_route_free(r);

	s.instance_count = 11;
	r = place(&s);
	expect_entries(r, "c1:4/6 c2:4/4 c3:3/3");
	ck_assert_uint_eq(nvcf_route_unplaced(r), 0);
	nvcf_route_free(r);

	s.instance_count = 4000000000u;
	r = place(&s);
	expect_entries(r, "c1:6/6 c2:4/4 c3:3/3");
	ck_assert_uint_eq(nvcf_route_unplaced(r), 4000000000u - 13);
	ck_assert_ptr_nonnull(strstr(nvcf_route_explanation(r), "(spread)"));
	nvcf_route_free(r);
}
END_TEST

START_TEST(two_gpu_instances_use_two_slots)
{
	nvcf_placement_spec s = l40s_spec(4);
	nvcf_route *r;

	s.instance_type = "NCP.GPU.L40S_2x";
	r = place(&s);
	expect_entries(r, "c1:3/3 c2:1/2");
	ck_assert_uint_eq(nvcf_route_entry_at(r, 0)->gpu_count, 2);
	ck_assert_uint_eq(nvcf_route_entry_at(r, 0)->free_gpus, 6);
	expect_excluded(r, "c3", NVCF_ROUTE_NO_SUCH_INSTANCE_TYPE,
			"cluster c3: GPU L40S has no instance type "
			"NCP.GPU.L40S_2x; it has [NCP.GPU.L40S_1x]");
	expect_excluded(r, "c4", NVCF_ROUTE_UNHEALTHY, NULL);
	expect_excluded(r, "c5", NVCF_ROUTE_NO_CAPACITY, NULL);
	nvcf_route_free(r);
}
END_TEST

/* Every count and mode: no cluster goes over capacity, none is lost. */
START_TEST(capacity_never_exceeded)
{
	const char *types[] = {"NCP.GPU.L40S_1x", "NCP.GPU.L40S_2x"};

	for (int mode = 0; mode < 2; mode++)
		for (int t = 0; t < 2; t++)
			for (unsigned int n = 0; n <= 30; n++) {
				nvcf_placement_spec s = l40s_spec(n);
				unsigned int sum = 0;
				nvcf_route *r;

				s.mode = (nvcf_placement_mode)mode;
				s.instance_type = types[t];
				r = place(&s);
				for (size_t i = 0; i < nvcf_route_count(r);
				     i++) {
					const nvcf_route_entry *e =
						nvcf_route_entry_at(r, i);

					ck_assert_uint_le(e->assigned,
							  e->free_slots);
					ck_assert_uint_le(e->assigned *
								  e->gpu_count,
							  e->free_gpus);
					ck_assert_uint_ge(e->free_slots, 1);
					sum += e->assigned;
				}
				ck_assert_uint_eq(sum + nvcf_route_unplaced(r),
						  n);
				nvcf_route_free(r);
			}
}
END_TEST

START_TEST(excluded_by_caller_moves_work)
{
	const char *const exclude[] = {"ALPHA"};
	nvcf_placement_spec s = l40s_spec(3);
	nvcf_route *r;

	s.exclude = exclude;
	s.exclude_count = 1;
	r = place(&s);
	expect_entries(r, "c2:3/4 c3:0/3");
	expect_excluded(r, "c1", NVCF_ROUTE_EXCLUDED_BY_CALLER,
			"cluster c1: excluded by the caller, which had it "
			"reject this work before");
	nvcf_route_free(r);
}
END_TEST

START_TEST(regions_filter)
{
	const char *const regions[] = {"us-east"};
	nvcf_placement_spec s = l40s_spec(1);
	nvcf_route *r;

	s.regions = regions;
	s.regions_count = 1;
	r = place(&s);
	expect_entries(r, "c1:1/6 c3:0/3");
	expect_excluded(r, "c2", NVCF_ROUTE_NOT_IN_REGIONS,
			"cluster c2: region eu-west not in regions "
			"[us-east]");
	nvcf_route_free(r);
}
END_TEST

START_TEST(backend_filter)
{
	nvcf_placement_spec s = l40s_spec(1);
	nvcf_route *r;

	s.backend = "G-WEST";
	r = place(&s);
	expect_entries(r, "c3:1/3");
	expect_excluded(r, "c1", NVCF_ROUTE_NOT_IN_BACKEND,
			"cluster c1: cluster group g-east is not backend "
			"G-WEST");
	expect_excluded(r, "c2", NVCF_ROUTE_NOT_IN_BACKEND, NULL);
	expect_excluded(r, "c5", NVCF_ROUTE_NOT_IN_BACKEND, NULL);
	/* c4 passes the backend filter and fails on health. */
	expect_excluded(r, "c4", NVCF_ROUTE_UNHEALTHY, NULL);
	nvcf_route_free(r);
}
END_TEST

START_TEST(clusters_keep_their_order)
{
	const char *const clusters[] = {"gamma", "c2", "c4"};
	nvcf_placement_spec s = l40s_spec(5);
	nvcf_route *r;

	s.clusters = clusters;
	s.clusters_count = 3;
	r = place(&s);
	/* gamma (c3) first although c2 has more free GPUs. */
	expect_entries(r, "c3:3/3 c2:2/4");
	expect_excluded(r, "c1", NVCF_ROUTE_NOT_IN_CLUSTERS,
			"cluster c1: id c1 and name alpha not in clusters "
			"[gamma, c2, c4]");
	expect_excluded(r, "c4", NVCF_ROUTE_UNHEALTHY, NULL);
	nvcf_route_free(r);
}
END_TEST

START_TEST(attributes_filter)
{
	const char *const attrs[] = {"soc2", "Preemptible"};
	nvcf_placement_spec s = l40s_spec(1);
	nvcf_route *r;

	s.attributes = attrs;
	s.attributes_count = 2;
	r = place(&s);
	expect_entries(r, "c2:1/4");
	expect_excluded(r, "c1", NVCF_ROUTE_MISSING_ATTRIBUTE,
			"cluster c1: attribute Preemptible missing; it has "
			"[SOC2]");
	expect_excluded(r, "c3", NVCF_ROUTE_MISSING_ATTRIBUTE,
			"cluster c3: attribute soc2 missing; it has []");
	nvcf_route_free(r);
}
END_TEST

START_TEST(gpu_filter_and_case)
{
	nvcf_placement_spec s = l40s_spec(2);
	nvcf_route *r;

	s.gpu = "h100";
	s.instance_type = "ncp.gpu.h100_1X";
	r = place(&s);
	expect_entries(r, "c1:2/2");
	ck_assert_str_eq(nvcf_route_entry_at(r, 0)->gpu, "H100");
	ck_assert_str_eq(nvcf_route_entry_at(r, 0)->instance_type,
			 "NCP.GPU.H100_1x");
	expect_excluded(r, "c2", NVCF_ROUTE_NO_SUCH_GPU,
			"cluster c2: no GPU h100; it has [L40S]");
	expect_excluded(r, "c3", NVCF_ROUTE_NO_SUCH_GPU, NULL);
	expect_excluded(r, "c4", NVCF_ROUTE_UNHEALTHY, NULL);
	expect_excluded(r, "c5", NVCF_ROUTE_NO_SUCH_GPU, NULL);
	nvcf_route_free(r);
}
END_TEST

START_TEST(heartbeat_timeout_and_reported_health)
{
	nvcf_placement_spec s = l40s_spec(1);
	nvcf_route *r;

	/* With a two-minute timeout c4 is healthy and the freest. */
	s.heartbeat_timeout_ms = 120000;
	r = place(&s);
	expect_entries(r, "c4:1/8 c1:0/6 c2:0/4 c3:0/3");
	nvcf_route_free(r);

	ck_assert_int_eq(nvcf_inventory_add_cluster_json(inv,
		"{\"clusterId\":\"c4\",\"gpus\":[],\"health\":\"degraded\","
		"\"heartbeatAtMs\":1714564800000}"), NVCF_OK);
	r = place(&s);
	expect_excluded(r, "c4", NVCF_ROUTE_UNHEALTHY,
			"cluster c4: unhealthy: its agent reported itself "
			"unhealthy");
	nvcf_route_free(r);

	/* A heartbeat ahead of now (clock skew) is fresh. */
	ck_assert(nvcf_inventory_cluster_healthy(inv, 0, NOW - 5000, 0));
	ck_assert(!nvcf_inventory_cluster_healthy(inv, 0, NOW + 29001, 0));
	ck_assert(nvcf_inventory_cluster_healthy(inv, 0, NOW + 29001, 30001));
	ck_assert(!nvcf_inventory_cluster_healthy(inv, 99, NOW, 0));
}
END_TEST

START_TEST(ties_break_by_cluster_id)
{
	nvcf_inventory *two;
	nvcf_placement_spec s = l40s_spec(3);
	nvcf_route *r = NULL;
#define TIE_RECORD                                                             \
	"{\"clusterId\":\"%s\",\"gpus\":[{\"name\":\"L40S\","              \
	"\"capacity\":2,\"instanceTypes\":[{\"name\":"                       \
	"\"NCP.GPU.L40S_1x\",\"gpuCount\":1}]}],"                             \
	"\"heartbeatAtMs\":1714564800000}"
	char buf[256];

	ck_assert_int_eq(nvcf_inventory_new(&two), NVCF_OK);
	snprintf(buf, sizeof(buf), TIE_RECORD, "zz");
	ck_assert_int_eq(nvcf_inventory_add_cluster_json(two, buf), NVCF_OK);
	snprintf(buf, sizeof(buf), TIE_RECORD, "aa");
	ck_assert_int_eq(nvcf_inventory_add_cluster_json(two, buf), NVCF_OK);
	ck_assert_int_eq(nvcf_routing_place(two, &s, &r), NVCF_OK);
	expect_entries(r, "aa:2/2 zz:1/2");
	nvcf_route_free(r);
	nvcf_inventory_free(two);
}
END_TEST

START_TEST(place_rejects_bad_specs)
{
	nvcf_placement_spec s = l40s_spec(1);
	nvcf_route *r = (nvcf_route *)&s;

	s.gpu = NULL;
	ck_assert_int_eq(nvcf_routing_place(inv, &s, &r), NVCF_EINVAL);
	ck_assert_ptr_null(r);
	ck_assert_str_eq(nvcf_error_last()->message,
			 "gpu is required, e.g. \"L40S\"");
	s = l40s_spec(1);
	s.instance_type = "";
	ck_assert_int_eq(nvcf_routing_place(inv, &s, &r), NVCF_EINVAL);
	s = l40s_spec(1);
	s.mode = (nvcf_placement_mode)7;
	ck_assert_int_eq(nvcf_routing_place(inv, &s, &r), NVCF_EINVAL);
	s = l40s_spec(1);
	s.version = 0;
	ck_assert_int_eq(nvcf_routing_place(inv, &s, &r), NVCF_EINVAL);
	s = l40s_spec(1);
	s.regions_count = 1;
	ck_assert_int_eq(nvcf_routing_place(inv, &s, &r), NVCF_EINVAL);
	ck_assert_int_eq(nvcf_routing_place(NULL, &s, &r), NVCF_EINVAL);
	ck_assert_int_eq(nvcf_routing_place(inv, NULL, &r), NVCF_EINVAL);
	ck_assert_int_eq(nvcf_routing_place(inv, &s, NULL), NVCF_EINVAL);
}
END_TEST

START_TEST(empty_inventory_places_nothing)
{
	nvcf_inventory *none;
	nvcf_placement_spec s = l40s_spec(2);
	nvcf_route *r = NULL;

	ck_assert_int_eq(nvcf_inventory_new(&none), NVCF_OK);
	ck_assert_int_eq(nvcf_routing_place(none, &s, &r), NVCF_OK);
	ck_assert_uint_eq(nvcf_route_count(r), 0);
	ck_assert_uint_eq(nvcf_route_unplaced(r), 2);
	ck_assert_str_eq(nvcf_route_explanation(r),
			 "Placed 0 of 2 instances of GPU L40S, instance type "
			 "NCP.GPU.L40S_1x (pack); no cluster is eligible. 2 "
			 "instances did not fit on any cluster.");
	nvcf_route_free(r);
	nvcf_inventory_free(none);
	ck_assert_ptr_null(nvcf_route_entry_at(NULL, 0));
	ck_assert_str_eq(nvcf_route_explanation(NULL), "");
	ck_assert_str_eq(nvcf_route_reason_name(NVCF_ROUTE_NO_CAPACITY),
			 "NO_CAPACITY");
	ck_assert_str_eq(nvcf_route_reason_name((nvcf_route_reason)0),
			 "UNKNOWN");
	nvcf_route_free(NULL);
}
END_TEST

/* ---- validation ---------------------------------------------------------- */

static void expect_invalid(const nvcf_placement_spec *s, const char *want)
{
	char err[512] = "unset";

	ck_assert_int_eq(nvcf_inventory_validate_spec(inv, s, err,
						      sizeof(err)),
			 NVCF_EINVAL);
	ck_assert_str_eq(err, want);
	ck_assert_str_eq(nvcf_error_last()->message, want);
}

START_TEST(validate_names_the_field)
{
	const char *const clusters[] = {"c1", "zeta"};
	const char *const regions[] = {"ap-south"};
	const char *const attrs[] = {"HIPAA"};
	nvcf_placement_spec s = l40s_spec(1);

	s.gpu = "A999";
	expect_invalid(&s, "gpu: no cluster offers GPU 'A999'; GPUs: "
			   "[L40S, H100]");
	s = l40s_spec(1);
	s.instance_type = "NCP.GPU.L40S_8x";
	expect_invalid(&s, "instanceType: no cluster offers instance type "
			   "'NCP.GPU.L40S_8x' for GPU 'L40S'; instance types: "
			   "[NCP.GPU.L40S_1x, NCP.GPU.L40S_2x]");
	s = l40s_spec(1);
	s.clusters = clusters;
	s.clusters_count = 2;
	expect_invalid(&s, "clusters[1]: no cluster has id or name 'zeta'");
	s = l40s_spec(1);
	s.backend = "g-north";
	expect_invalid(&s, "backend: no cluster group is named 'g-north'; "
			   "groups: [g-east, g-west]");
	s.clusters = clusters;
	s.clusters_count = 1;
	s.backend = "g-east";
	expect_invalid(&s, "backend 'g-east' and clusters cannot both be "
			   "set; keep one of them");
	s = l40s_spec(1);
	s.regions = regions;
	s.regions_count = 1;
	expect_invalid(&s, "regions[0]: no cluster is in region 'ap-south'; "
			   "regions: [us-east, eu-west]");
	s = l40s_spec(1);
	s.attributes = attrs;
	s.attributes_count = 1;
	expect_invalid(&s, "attributes[0]: no cluster has attribute 'HIPAA'");
	s = l40s_spec(1);
	s.gpu = NULL;
	expect_invalid(&s, "gpu is required, e.g. \"L40S\"");
}
END_TEST

START_TEST(validate_combined_filters)
{
	const char *const regions[] = {"eu-west"};
	nvcf_placement_spec s = l40s_spec(1);
	char err[1024];

	/* H100 exists, eu-west exists, but not together. */
	s.gpu = "H100";
	s.instance_type = "NCP.GPU.H100_1x";
	s.regions = regions;
	s.regions_count = 1;
	ck_assert_int_eq(nvcf_inventory_validate_spec(inv, &s, err,
						      sizeof(err)),
			 NVCF_EINVAL);
	ck_assert_str_eq(err,
			 "no cluster matches every filter of the "
			 "specification: cluster c1: region us-east not in "
			 "regions [eu-west]; cluster c2: no GPU H100; it has "
			 "[L40S]; cluster c3: region us-east not in regions "
			 "[eu-west]; cluster c4: region us-east not in "
			 "regions [eu-west]; cluster c5: region us-east not "
			 "in regions [eu-west]");
	/* A short buffer gets a truncated, terminated message. */
	ck_assert_int_eq(nvcf_inventory_validate_spec(inv, &s, err, 10),
			 NVCF_EINVAL);
	ck_assert_str_eq(err, "no cluste");
}
END_TEST

START_TEST(validate_accepts_placeable_specs)
{
	const char *const regions[] = {"US-EAST"};
	const char *const stale[] = {"delta"};
	const char *const full[] = {"full"};
	nvcf_placement_spec s = l40s_spec(1000);

	ck_assert_int_eq(nvcf_inventory_validate_spec(inv, &s, NULL, 0),
			 NVCF_OK);
	s.regions = regions;
	s.regions_count = 1;
	s.backend = "g-west";
	ck_assert_int_eq(nvcf_inventory_validate_spec(inv, &s, NULL, 0),
			 NVCF_OK);
	/* Health and capacity do not matter: c4 is stale, c5 is full. */
	s = l40s_spec(1);
	s.clusters = stale;
	s.clusters_count = 1;
	ck_assert_int_eq(nvcf_inventory_validate_spec(inv, &s, NULL, 0),
			 NVCF_OK);
	s.clusters = full;
	ck_assert_int_eq(nvcf_inventory_validate_spec(inv, &s, NULL, 0),
			 NVCF_OK);
}
END_TEST

START_TEST(validate_empty_inventory)
{
	nvcf_inventory *none;
	nvcf_placement_spec s = l40s_spec(1);
	char err[128];

	ck_assert_int_eq(nvcf_inventory_new(&none), NVCF_OK);
	ck_assert_int_eq(nvcf_inventory_validate_spec(none, &s, err,
						      sizeof(err)),
			 NVCF_EINVAL);
	ck_assert_str_eq(err, "no cluster is registered; start a cluster "
			      "agent (nvca) first");
	nvcf_inventory_free(none);
}
END_TEST

/* ---- records ------------------------------------------------------------- */

static void expect_record_error(const char *json, const char *want)
{
	nvcf_inventory *one;

	ck_assert_int_eq(nvcf_inventory_new(&one), NVCF_OK);
	ck_assert_int_eq(nvcf_inventory_add_cluster_json(one, json),
			 NVCF_EINVAL);
	ck_assert_str_eq(nvcf_error_last()->message, want);
	ck_assert_uint_eq(nvcf_inventory_count(one), 0);
	nvcf_inventory_free(one);
}

#define GPU_OK "{\"name\":\"L40S\",\"capacity\":1,\"instanceTypes\":[]}"

START_TEST(record_errors_name_the_field)
{
	expect_record_error("{\"clusterId\":\"c1\",\"gpus\":[" GPU_OK ","
			    "{\"name\":\"H100\",\"capacity\":-2,"
			    "\"instanceTypes\":[]}],\"heartbeatAtMs\":1}",
			    "cluster record: gpus[1].capacity must be a "
			    "non-negative integer");
	expect_record_error("{\"clusterId\":\"c1\",\"gpus\":[{\"name\":"
			    "\"H100\",\"capacity\":\"2\",\"instanceTypes\":"
			    "[]}],\"heartbeatAtMs\":1}",
			    "cluster record: gpus[0].capacity must be a "
			    "non-negative integer");
	expect_record_error("{\"clusterId\":\"c1\",\"gpus\":[{\"name\":"
			    "\"H100\",\"capacity\":2,\"allocated\":0.5,"
			    "\"instanceTypes\":[]}],\"heartbeatAtMs\":1}",
			    "cluster record: gpus[0].allocated must be a "
			    "non-negative integer");
	expect_record_error("{\"clusterId\":\"c1\",\"gpus\":[{\"capacity\":"
			    "2,\"instanceTypes\":[]}],\"heartbeatAtMs\":1}",
			    "cluster record: gpus[0].name is required and "
			    "must be a non-empty string");
	expect_record_error("{\"clusterId\":\"c1\",\"gpus\":[{\"name\":"
			    "\"H100\",\"capacity\":2}],\"heartbeatAtMs\":1}",
			    "cluster record: gpus[0].instanceTypes is "
			    "required and must be an array");
	expect_record_error("{\"clusterId\":\"c1\",\"gpus\":[{\"name\":"
			    "\"H100\",\"capacity\":2,\"instanceTypes\":[{"
			    "\"name\":\"t\",\"gpuCount\":0}]}],"
			    "\"heartbeatAtMs\":1}",
			    "cluster record: gpus[0].instanceTypes[0]."
			    "gpuCount must be a positive integer");
	expect_record_error("{\"clusterId\":\"c1\",\"gpus\":[{\"name\":"
			    "\"H100\",\"capacity\":2,\"instanceTypes\":[{"
			    "\"gpuCount\":1}]}],\"heartbeatAtMs\":1}",
			    "cluster record: gpus[0].instanceTypes[0].name "
			    "is required and must be a non-empty string");
	expect_record_error("{\"clusterId\":\"c1\",\"gpus\":[{\"name\":"
			    "\"H100\",\"capacity\":2,\"instanceTypes\":[{"
			    "\"name\":\"t\",\"gpuCount\":1,\"default\":1}]}],"
			    "\"heartbeatAtMs\":1}",
			    "cluster record: gpus[0].instanceTypes[0].default "
			    "must be true or false");
	expect_record_error("{\"clusterId\":\"c1\",\"gpus\":[" GPU_OK ","
			    GPU_OK "],\"heartbeatAtMs\":1}",
			    "cluster record: gpus[1].name 'L40S' repeats "
			    "gpus[0]; list each GPU type once");
	expect_record_error("{\"gpus\":[],\"heartbeatAtMs\":1}",
			    "cluster record: clusterId is required and must "
			    "be a non-empty string");
	expect_record_error("{\"clusterId\":\"a.b\",\"gpus\":[],"
			    "\"heartbeatAtMs\":1}",
			    "cluster record: clusterId 'a.b' must be 1 to 64 "
			    "letters, digits, '-' or '_'");
	expect_record_error("{\"clusterId\":\"c1\",\"heartbeatAtMs\":1}",
			    "cluster record: gpus is required and must be an "
			    "array");
	expect_record_error("{\"clusterId\":\"c1\",\"gpus\":[]}",
			    "cluster record: heartbeatAt or heartbeatAtMs is "
			    "required");
	expect_record_error("{\"clusterId\":\"c1\",\"gpus\":[],"
			    "\"heartbeatAt\":\"yesterday\"}",
			    "cluster record: heartbeatAt must be an RFC 3339 "
			    "time such as 2024-05-01T12:00:00.000Z");
	expect_record_error("{\"clusterId\":\"c1\",\"gpus\":[],"
			    "\"heartbeatAtMs\":-5}",
			    "cluster record: heartbeatAtMs must be a "
			    "non-negative integer of ms since the epoch");
	expect_record_error("{\"clusterId\":\"c1\",\"gpus\":[],"
			    "\"heartbeatAtMs\":1,\"region\":7}",
			    "cluster record: region must be a string");
	expect_record_error("{\"clusterId\":\"c1\",\"gpus\":[],"
			    "\"heartbeatAtMs\":1,\"attributes\":[\"a\",2]}",
			    "cluster record: attributes[1] must be a string");
	expect_record_error("[]", "cluster record: must be a JSON object");
	expect_record_error("{\"clusterId\":", "cluster record: not valid "
			    "JSON near offset 13");
}
END_TEST

START_TEST(record_defaults_and_times)
{
	nvcf_inventory *one;
	const nvcf_cluster_info *c;
	size_t at = 99;

	ck_assert_int_eq(nvcf_inventory_new(&one), NVCF_OK);
	ck_assert_int_eq(nvcf_inventory_add_cluster_json(one,
		"{\"clusterId\":\"c9\",\"gpus\":[{\"name\":\"L40S\","
		"\"capacity\":3,\"instanceTypes\":[{\"name\":\"T\","
		"\"gpuCount\":1}]}],\"heartbeatAt\":"
		"\"2024-05-01T14:00:00.250+02:00\",\"extra\":{}}"), NVCF_OK);
	c = nvcf_inventory_cluster(one, 0);
	ck_assert_str_eq(c->name, "c9");
	ck_assert_str_eq(c->group, "c9");
	ck_assert_str_eq(c->region, "local");
	ck_assert(c->healthy);
	ck_assert_int_eq(c->heartbeat_ms, NOW + 250);
	ck_assert_uint_eq(c->gpus[0].allocated, 0);
	ck_assert_str_eq(c->gpus[0].instance_types[0].description, "");
	ck_assert(!c->gpus[0].instance_types[0].is_default);

	/* heartbeatAtMs wins over heartbeatAt. */
	ck_assert_int_eq(nvcf_inventory_add_cluster_json(one,
		"{\"clusterId\":\"c9\",\"name\":\"Nine\",\"gpus\":[],"
		"\"heartbeatAt\":\"1999-01-01T00:00:00Z\","
		"\"heartbeatAtMs\":1714564800123}"), NVCF_OK);
	ck_assert_uint_eq(nvcf_inventory_count(one), 1);
	c = nvcf_inventory_cluster(one, 0);
	ck_assert_int_eq(c->heartbeat_ms, NOW + 123);
	ck_assert_uint_eq(c->gpus_count, 0);
	ck_assert_int_eq(nvcf_inventory_find(one, "nine", &at), NVCF_OK);
	ck_assert_uint_eq(at, 0);
	ck_assert_int_eq(nvcf_inventory_find(one, "ten", &at), NVCF_ENOTFOUND);
	ck_assert_int_eq(nvcf_inventory_remove(one, "c8"), NVCF_ENOTFOUND);
	ck_assert_int_eq(nvcf_inventory_remove(one, "c9"), NVCF_OK);
	ck_assert_uint_eq(nvcf_inventory_count(one), 0);
	ck_assert_ptr_null(nvcf_inventory_cluster(one, 0));
	nvcf_inventory_free(one);
	nvcf_inventory_free(NULL);
}
END_TEST

START_TEST(rfc3339_parsing)
{
	int64_t ms = 0;

	ck_assert_int_eq(nvcf__routing_parse_rfc3339("1970-01-01T00:00:00Z",
						     &ms), NVCF_OK);
	ck_assert_int_eq(ms, 0);
	ck_assert_int_eq(nvcf__routing_parse_rfc3339(
				 "2024-02-29t23:59:59.9999z", &ms), NVCF_OK);
	ck_assert_int_eq(ms, 1709251199999LL);
	ck_assert_int_eq(nvcf__routing_parse_rfc3339(
				 "2024-05-01T07:30:00-04:30", &ms), NVCF_OK);
	ck_assert_int_eq(ms, NOW);
	ck_assert_int_eq(nvcf__routing_parse_rfc3339("2023-02-29T00:00:00Z",
						     &ms), NVCF_EINVAL);
	ck_assert_int_eq(nvcf__routing_parse_rfc3339("2024-05-01T24:00:00Z",
						     &ms), NVCF_EINVAL);
	ck_assert_int_eq(nvcf__routing_parse_rfc3339("2024-05-01T12:00:00.Z",
						     &ms), NVCF_EINVAL);
	ck_assert_int_eq(nvcf__routing_parse_rfc3339("2024-05-01T12:00:00Zx",
						     &ms), NVCF_EINVAL);
	ck_assert_int_eq(nvcf__routing_parse_rfc3339("2024-5-01T12:00:00Z",
						     &ms), NVCF_EINVAL);
}
END_TEST

START_TEST(struct_errors)
{
	nvcf_instance_type_info bad_type = {"t", NULL, false, 0};
	nvcf_gpu_info gpu = {"L40S", 1, 0, &bad_type, 1};
	nvcf_cluster_info c = NVCF_CLUSTER_INFO_INIT;

	c.cluster_id = "c1";
	c.gpus = &gpu;
	c.gpus_count = 1;
	ck_assert_int_eq(nvcf_inventory_add_cluster(inv, &c), NVCF_EINVAL);
	ck_assert_str_eq(nvcf_error_last()->message,
			 "cluster c1: instance type t has gpu_count 0; it "
			 "must be at least 1");
	c.gpus_count = 0;
	c.cluster_id = "c 1";
	ck_assert_int_eq(nvcf_inventory_add_cluster(inv, &c), NVCF_EINVAL);
	c.cluster_id = "c1";
	c.version = 2;
	ck_assert_int_eq(nvcf_inventory_add_cluster(inv, &c), NVCF_EINVAL);
	/* A rejected replacement leaves the earlier record in place. */
	ck_assert_str_eq(nvcf_inventory_cluster(inv, 0)->name, "alpha");
	ck_assert_uint_eq(nvcf_inventory_count(inv), 5);
	ck_assert_int_eq(nvcf_inventory_new(NULL), NVCF_EINVAL);
	ck_assert_int_eq(nvcf_inventory_add_cluster_json(inv, NULL),
			 NVCF_EINVAL);
}
END_TEST

START_TEST(remove_unhealthy_clusters)
{
	size_t removed = 0;

	ck_assert_int_eq(nvcf_inventory_remove_unhealthy(inv, NOW, 0,
							 &removed),
			 NVCF_OK);
	ck_assert_uint_eq(removed, 1);
	ck_assert_uint_eq(nvcf_inventory_count(inv), 4);
	for (size_t i = 0; i < nvcf_inventory_count(inv); i++)
		ck_assert_str_ne(nvcf_inventory_cluster(inv, i)->cluster_id,
				 "c4");
	/* Order of the rest is kept. */
	ck_assert_str_eq(nvcf_inventory_cluster(inv, 3)->cluster_id, "c5");
}
END_TEST

/* ---- clusterGroups ------------------------------------------------------- */

static const cJSON *member(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	ck_assert_msg(v != NULL, "member %s missing", key);
	return v;
}

static const char *str_member(const cJSON *obj, const char *key)
{
	const cJSON *v = member(obj, key);

	ck_assert(cJSON_IsString(v));
	return v->valuestring;
}

START_TEST(cluster_groups_shape)
{
	char *json = NULL, *again = NULL;
	const cJSON *groups, *east, *west, *gpus, *types, *clusters, *cl;
	cJSON *doc;

	ck_assert_int_eq(nvcf_inventory_cluster_groups_json(inv, "acct-1",
							    &json),
			 NVCF_OK);
	doc = cJSON_Parse(json);
	ck_assert_ptr_nonnull(doc);
	groups = member(doc, "clusterGroups");
	ck_assert_int_eq(cJSON_GetArraySize(groups), 2);
	east = cJSON_GetArrayItem(groups, 0);
	west = cJSON_GetArrayItem(groups, 1);
	ck_assert_str_eq(str_member(east, "name"), "g-east");
	ck_assert_str_eq(str_member(west, "name"), "g-west");
	ck_assert(nvcf__uuid_valid(str_member(east, "id")));
	/* Version 8 and the RFC variant. */
	ck_assert_int_eq(str_member(east, "id")[14], '8');
	ck_assert_ptr_nonnull(strchr("89ab", str_member(east, "id")[19]));
	ck_assert_str_ne(str_member(east, "id"), str_member(west, "id"));
	ck_assert_str_eq(str_member(east, "ncaId"), "acct-1");
	ck_assert_int_eq(cJSON_GetArraySize(member(east, "authorizedNcaIds")),
			 1);
	ck_assert_str_eq(cJSON_GetArrayItem(member(east, "authorizedNcaIds"),
					    0)->valuestring,
			 "acct-1");

	gpus = member(east, "gpus");
	ck_assert_int_eq(cJSON_GetArraySize(gpus), 2);
	ck_assert_str_eq(str_member(cJSON_GetArrayItem(gpus, 0), "name"),
			 "L40S");
	ck_assert_str_eq(str_member(cJSON_GetArrayItem(gpus, 1), "name"),
			 "H100");
	types = member(cJSON_GetArrayItem(gpus, 0), "instanceTypes");
	ck_assert_int_eq(cJSON_GetArraySize(types), 2);
	ck_assert_str_eq(str_member(cJSON_GetArrayItem(types, 0), "name"),
			 "NCP.GPU.L40S_1x");
	ck_assert_str_eq(str_member(cJSON_GetArrayItem(types, 0),
				    "description"),
			 "One L40S");
	ck_assert(cJSON_IsTrue(member(cJSON_GetArrayItem(types, 0),
				      "default")));
	ck_assert(cJSON_IsFalse(member(cJSON_GetArrayItem(types, 1),
				       "default")));
	/* NVCF's instance type shape, nothing more. */
	ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetArrayItem(types, 0)), 3);

	clusters = member(east, "clusters");
	ck_assert_int_eq(cJSON_GetArraySize(clusters), 3);
	ck_assert_str_eq(str_member(cJSON_GetArrayItem(clusters, 0), "id"),
			 "c1");
	ck_assert_str_eq(str_member(cJSON_GetArrayItem(clusters, 1), "id"),
			 "c2");
	ck_assert_str_eq(str_member(cJSON_GetArrayItem(clusters, 2), "id"),
			 "c5");
	cl = cJSON_GetArrayItem(clusters, 0);
	ck_assert_str_eq(str_member(cl, "name"), "alpha");
	ck_assert_str_eq(str_member(cl, "k8sVersion"), "");
	ck_assert_str_eq(str_member(cl, "region"), "us-east");
	ck_assert_str_eq(str_member(cl, "health"), "healthy");
	cl = cJSON_GetArrayItem(member(cl, "gpus"), 0);
	ck_assert_str_eq(str_member(cl, "name"), "L40S");
	ck_assert_int_eq(member(cl, "capacity")->valueint, 8);
	ck_assert_int_eq(member(cl, "allocated")->valueint, 2);
	ck_assert_int_eq(member(cl, "available")->valueint, 6);
	cJSON_Delete(doc);

	/* The same bytes every time. */
	ck_assert_int_eq(nvcf_inventory_cluster_groups_json(inv, "acct-1",
							    &again),
			 NVCF_OK);
	ck_assert_str_eq(json, again);
	nvcf_free(json);
	nvcf_free(again);
}
END_TEST

START_TEST(cluster_groups_merge_case)
{
	nvcf_inventory *two;
	char *json = NULL, *json2 = NULL;
	cJSON *doc;
	const cJSON *groups;
	char id[37];

	ck_assert_int_eq(nvcf_inventory_new(&two), NVCF_OK);
	ck_assert_int_eq(nvcf_inventory_cluster_groups_json(two, "a", &json),
			 NVCF_OK);
	ck_assert_str_eq(json, "{\"clusterGroups\":[]}");
	nvcf_free(json);
	ck_assert_int_eq(nvcf_inventory_add_cluster_json(two,
		"{\"clusterId\":\"b\",\"group\":\"Lab\",\"gpus\":[],"
		"\"heartbeatAtMs\":1}"), NVCF_OK);
	ck_assert_int_eq(nvcf_inventory_add_cluster_json(two,
		"{\"clusterId\":\"a\",\"group\":\"lab\",\"gpus\":[],"
		"\"heartbeatAtMs\":1}"), NVCF_OK);
	ck_assert_int_eq(nvcf_inventory_cluster_groups_json(two, "a", &json),
			 NVCF_OK);
	doc = cJSON_Parse(json);
	groups = cJSON_GetObjectItemCaseSensitive(doc, "clusterGroups");
	ck_assert_int_eq(cJSON_GetArraySize(groups), 1);
	/* Cluster a comes first by id, so its spelling names the group. */
	ck_assert_str_eq(str_member(cJSON_GetArrayItem(groups, 0), "name"),
			 "lab");
	ck_assert_int_eq(cJSON_GetArraySize(member(
				 cJSON_GetArrayItem(groups, 0), "clusters")),
			 2);
	snprintf(id, sizeof(id), "%s",
		 str_member(cJSON_GetArrayItem(groups, 0), "id"));
	cJSON_Delete(doc);

	/* Renaming the group's spelling keeps its id. */
	ck_assert_int_eq(nvcf_inventory_remove(two, "a"), NVCF_OK);
	ck_assert_int_eq(nvcf_inventory_cluster_groups_json(two, "a", &json2),
			 NVCF_OK);
	ck_assert_ptr_nonnull(strstr(json2, "\"name\":\"Lab\""));
	ck_assert_ptr_nonnull(strstr(json2, id));
	nvcf_free(json);
	nvcf_free(json2);
	nvcf_inventory_free(two);
}
END_TEST

/* ---- names --------------------------------------------------------------- */

START_TEST(subject_names)
{
	char buf[NVCF_ROUTING_NAME_MAX];

	ck_assert_int_eq(nvcf_routing_create_subject(NVCF_WORKLOAD_FUNCTION,
						     "local-1", "L40S",
						     "NCP.GPU.L40S_1x", buf,
						     sizeof(buf)),
			 NVCF_OK);
	ck_assert_str_eq(buf, "Create.NVCA.Function.local-1.L40S."
			      "NCP|GPU|L40S_1x");
	ck_assert_int_eq(nvcf_routing_create_subject(NVCF_WORKLOAD_TASK, "c_2",
						     "H100", "H100", buf,
						     sizeof(buf)),
			 NVCF_OK);
	ck_assert_str_eq(buf, "Create.NVCA.Task.c_2.H100.H100");
	ck_assert_int_eq(nvcf_routing_create_consumer("local-1", buf,
						      sizeof(buf)),
			 NVCF_OK);
	ck_assert_str_eq(buf, "CreateNvcaFunctionTaskStream-local-1");
	ck_assert_int_eq(nvcf_routing_create_filter("local-1", buf,
						    sizeof(buf)),
			 NVCF_OK);
	ck_assert_str_eq(buf, "Create.NVCA.*.local-1.*.*");
	ck_assert_int_eq(nvcf_routing_terminate_subject("local-1", buf,
							sizeof(buf)),
			 NVCF_OK);
	ck_assert_str_eq(buf, "Terminate.NVCA.local-1");
	ck_assert_int_eq(nvcf_routing_terminate_consumer("local-1", buf,
							 sizeof(buf)),
			 NVCF_OK);
	ck_assert_str_eq(buf, "TerminateNvcaStream-local-1");
}
END_TEST

START_TEST(subject_names_reject)
{
	char buf[NVCF_ROUTING_NAME_MAX], small[23];
	char long_id[66];
	const char *bad_ids[] = {"a.b", "a*", ">", "", "a b", "a|b", NULL};

	for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
		ck_assert_int_eq(nvcf_routing_terminate_subject(bad_ids[i], buf,
								sizeof(buf)),
				 NVCF_EINVAL);
		ck_assert_int_eq(nvcf_routing_create_consumer(bad_ids[i], buf,
							      sizeof(buf)),
				 NVCF_EINVAL);
	}
	ck_assert_int_eq(nvcf_routing_terminate_subject("a.b", buf,
							sizeof(buf)),
			 NVCF_EINVAL);
	ck_assert_str_eq(nvcf_error_last()->message,
			 "cluster id 'a.b' must be 1 to 64 letters, digits, "
			 "'-' or '_'");
	memset(long_id, 'x', 65);
	long_id[65] = '\0';
	ck_assert_int_eq(nvcf_routing_create_filter(long_id, buf, sizeof(buf)),
			 NVCF_EINVAL);
	long_id[64] = '\0';
	ck_assert_int_eq(nvcf_routing_create_filter(long_id, buf, sizeof(buf)),
			 NVCF_OK);
	ck_assert_int_eq(nvcf_routing_create_subject(NVCF_WORKLOAD_FUNCTION,
						     "c1", "L40S.x", "t", buf,
						     sizeof(buf)),
			 NVCF_EINVAL);
	ck_assert_str_eq(nvcf_error_last()->message,
			 "GPU name 'L40S.x' must be 1 to 64 letters, digits, "
			 "'-' or '_'");
	ck_assert_int_eq(nvcf_routing_create_subject(NVCF_WORKLOAD_FUNCTION,
						     "c1", "L40S", "a|b", buf,
						     sizeof(buf)),
			 NVCF_EINVAL);
	ck_assert_str_eq(nvcf_error_last()->message,
			 "instance type 'a|b' must be 1 to 128 letters, "
			 "digits, '-' or '_' or '.'");
	ck_assert_int_eq(nvcf_routing_create_subject((nvcf_workload_kind)3,
						     "c1", "L40S", "t", buf,
						     sizeof(buf)),
			 NVCF_EINVAL);
	/* "Terminate.NVCA.local-1" is 22 bytes plus the NUL. */
	ck_assert_int_eq(nvcf_routing_terminate_subject("local-1", small, 22),
			 NVCF_EINVAL);
	ck_assert_str_eq(nvcf_error_last()->message,
			 "name buffer of 22 bytes is too small; it needs 23 "
			 "(NVCF_ROUTING_NAME_MAX always fits)");
	ck_assert_str_eq(small, "");
	ck_assert_int_eq(nvcf_routing_terminate_subject("local-1", small, 23),
			 NVCF_OK);
	ck_assert_str_eq(small, "Terminate.NVCA.local-1");
	ck_assert_int_eq(nvcf_routing_terminate_subject("local-1", NULL, 0),
			 NVCF_EINVAL);
}
END_TEST

START_TEST(longest_names_fit)
{
	char id[65], gpu[65], type[129], buf[NVCF_ROUTING_NAME_MAX];

	memset(id, 'c', 64);
	id[64] = '\0';
	memset(gpu, 'g', 64);
	gpu[64] = '\0';
	memset(type, '.', 128);
	type[128] = '\0';
	ck_assert_int_eq(nvcf_routing_create_subject(NVCF_WORKLOAD_FUNCTION,
						     id, gpu, type, buf,
						     sizeof(buf)),
			 NVCF_OK);
	ck_assert_uint_eq(strlen(buf), 21 + 64 + 1 + 64 + 1 + 128);
}
END_TEST

static Suite *routing_suite(void)
{
	Suite *s = suite_create("routing");
	TCase *place_tc = tcase_create("place");
	TCase *validate_tc = tcase_create("validate");
	TCase *records_tc = tcase_create("records");
	TCase *groups_tc = tcase_create("groups");
	TCase *names_tc = tcase_create("names");

	tcase_add_checked_fixture(place_tc, setup, teardown);
	tcase_add_test(place_tc, pack_ranks_by_free_gpus);
	tcase_add_test(place_tc, pack_overflow_leaves_unplaced);
	tcase_add_test(place_tc, spread_round_robin);
	tcase_add_test(place_tc, two_gpu_instances_use_two_slots);
	tcase_add_test(place_tc, capacity_never_exceeded);
	tcase_add_test(place_tc, excluded_by_caller_moves_work);
	tcase_add_test(place_tc, regions_filter);
	tcase_add_test(place_tc, backend_filter);
	tcase_add_test(place_tc, clusters_keep_their_order);
	tcase_add_test(place_tc, attributes_filter);
	tcase_add_test(place_tc, gpu_filter_and_case);
	tcase_add_test(place_tc, heartbeat_timeout_and_reported_health);
	tcase_add_test(place_tc, ties_break_by_cluster_id);
	tcase_add_test(place_tc, place_rejects_bad_specs);
	tcase_add_test(place_tc, empty_inventory_places_nothing);
	suite_add_tcase(s, place_tc);

	tcase_add_checked_fixture(validate_tc, setup, teardown);
	tcase_add_test(validate_tc, validate_names_the_field);
	tcase_add_test(validate_tc, validate_combined_filters);
	tcase_add_test(validate_tc, validate_accepts_placeable_specs);
	tcase_add_test(validate_tc, validate_empty_inventory);
	suite_add_tcase(s, validate_tc);

	tcase_add_checked_fixture(records_tc, setup, teardown);
	tcase_add_test(records_tc, record_errors_name_the_field);
	tcase_add_test(records_tc, record_defaults_and_times);
	tcase_add_test(records_tc, rfc3339_parsing);
	tcase_add_test(records_tc, struct_errors);
	tcase_add_test(records_tc, remove_unhealthy_clusters);
	suite_add_tcase(s, records_tc);

	tcase_add_checked_fixture(groups_tc, setup, teardown);
	tcase_add_test(groups_tc, cluster_groups_shape);
	tcase_add_test(groups_tc, cluster_groups_merge_case);
	suite_add_tcase(s, groups_tc);

	tcase_add_test(names_tc, subject_names);
	tcase_add_test(names_tc, subject_names_reject);
	tcase_add_test(names_tc, longest_names_fit);
	suite_add_tcase(s, names_tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(routing_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
