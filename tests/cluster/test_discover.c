/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GPU discovery of the cluster agent: the nvidia-smi output parser, the
 * runner (against a stand-in nvidia-smi script on PATH) and how the
 * result replaces a backend's GPUs.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/discover.h"

static nvcf__discovered_gpu *parse_ok(const char *text, size_t *n)
{
	nvcf__discovered_gpu *g = NULL;

	ck_assert_int_eq(nvcf__gpu_discover_parse(text, strlen(text), &g, n),
			 NVCF_OK);
	return g;
}

static void parse_fails(const char *text, const char *fragment)
{
	nvcf__discovered_gpu *g = (nvcf__discovered_gpu *)1;
	size_t n = 7;

	ck_assert_int_eq(nvcf__gpu_discover_parse(text, strlen(text), &g, &n),
			 NVCF_EINVAL);
	ck_assert_ptr_null(g);
	ck_assert_uint_eq(n, 0);
	ck_assert_msg(strstr(nvcf_error_last()->message, fragment) != NULL,
		      "'%s' lacks '%s'", nvcf_error_last()->message,
		      fragment);
}

START_TEST(parse_groups_by_short_name)
{
	size_t n = 0;
	nvcf__discovered_gpu *g = parse_ok("NVIDIA H100 80GB HBM3, 0\n"
					   "NVIDIA L40S, 1\n"
					   "NVIDIA H100 PCIe, 3\n"
					   "NVIDIA H100 80GB HBM3, 2\n",
					   &n);

	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(g[0].name, "H100");
	ck_assert_str_eq(g[0].model, "NVIDIA H100 80GB HBM3");
	ck_assert_uint_eq(g[0].count, 3);
	ck_assert_uint_eq(g[0].indices[0], 0);
	ck_assert_uint_eq(g[0].indices[1], 2);
	ck_assert_uint_eq(g[0].indices[2], 3);
	ck_assert_str_eq(g[1].name, "L40S");
	ck_assert_uint_eq(g[1].count, 1);
	ck_assert_uint_eq(g[1].indices[0], 1);
	nvcf__gpu_discovered_free(g, n);
}
END_TEST

START_TEST(parse_names_and_blanks)
{
	size_t n = 0;
	nvcf__discovered_gpu *g = parse_ok("\r\nTesla T4, 0\r\n\n"
					   "  NVIDIA A100-SXM4-80GB ,  1  \n"
					   "NVIDIA GeForce RTX 4090, 2",
					   &n);

	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(g[0].name, "T4");
	ck_assert_str_eq(g[1].name, "A100");
	ck_assert_str_eq(g[1].model, "NVIDIA A100-SXM4-80GB");
	ck_assert_str_eq(g[2].name, "GeForce");
	nvcf__gpu_discovered_free(g, n);

	g = parse_ok("Odd/Model.X, 0\n", &n);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(g[0].name, "Odd_Model_X");
	nvcf__gpu_discovered_free(g, n);

	g = parse_ok("", &n);
	ck_assert_ptr_null(g);
	ck_assert_uint_eq(n, 0);
	g = parse_ok(" \n\n", &n);
	ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(parse_rejects_bad_lines)
{
	parse_fails("NVIDIA-SMI has failed because it could not communicate "
		    "with the NVIDIA driver.\n",
		    "line 1: expected 'model, index'");
	parse_fails("NVIDIA L40S, 0\nNVIDIA L40S, 0\n",
		    "line 2: device index 0 appears twice");
	parse_fails("NVIDIA L40S, 0\n\nNVIDIA L40S, x1\n",
		    "line 3: index 'x1' is not an integer");
	parse_fails("NVIDIA L40S, 1024\n", "below 1024");
	parse_fails(", 0\n", "line 1: the model before ',' is empty");
	parse_fails("NVIDIA L40S,\n", "line 1: the index after ',' is empty");
}
END_TEST

START_TEST(discovery_requested)
{
	ck_assert(nvcf__gpu_discovery_requested("dynamic", 2));
	ck_assert(nvcf__gpu_discovery_requested("Dynamic", 2));
	ck_assert(nvcf__gpu_discovery_requested(NULL, 0));
	ck_assert(nvcf__gpu_discovery_requested("static", 0));
	ck_assert(!nvcf__gpu_discovery_requested("static", 1));
	ck_assert(!nvcf__gpu_discovery_requested(NULL, 1));
}
END_TEST

static const char backend_yaml[] =
	"apiVersion: nvcf.nvidia.io/v1\n"
	"kind: NVCFBackend\n"
	"metadata: {name: t}\n"
	"spec:\n"
	"  clusterId: c1\n"
	"  clusterName: c1\n"
	"  clusterGroup: g\n"
	"  region: r\n"
	"  attributes: []\n"
	"  gpus:\n"
	"    - name: L40S\n"
	"      capacity: 8\n"
	"      instanceTypes:\n"
	"        - {name: NCP.GPU.L40S_1x, description: one, gpuCount: 1,"
	" default: true}\n";

START_TEST(apply_keeps_known_types)
{
	nvcf__backend *b = NULL;
	nvcf__discovered_gpu *g;
	size_t n = 0;

	ck_assert_int_eq(nvcf__backend_parse(backend_yaml,
					     sizeof(backend_yaml) - 1, "test",
					     &b),
			 NVCF_OK);
	g = parse_ok("NVIDIA l40s, 0\nNVIDIA L40S, 1\nNVIDIA H100 PCIe, 2\n"
		     "NVIDIA H100 PCIe, 3\nNVIDIA H100 PCIe, 4\n",
		     &n);
	ck_assert_int_eq(nvcf__backend_apply_gpus(b, g, n), NVCF_OK);
	ck_assert_uint_eq(b->spec.gpus_count, 2);
	/* Known: the backend's spelling and types, discovered capacity. */
	ck_assert_str_eq(b->spec.gpus[0].name, "L40S");
	ck_assert_uint_eq(b->spec.gpus[0].capacity, 2);
	ck_assert_uint_eq(b->spec.gpus[0].instance_types_count, 1);
	ck_assert_str_eq(b->spec.gpus[0].instance_types[0].description,
			 "one");
	/* New: 1x (default) and 2x, as 3 devices allow. */
	ck_assert_str_eq(b->spec.gpus[1].name, "H100");
	ck_assert_uint_eq(b->spec.gpus[1].capacity, 3);
	ck_assert_uint_eq(b->spec.gpus[1].instance_types_count, 2);
	ck_assert_str_eq(b->spec.gpus[1].instance_types[0].name,
			 "NCP.GPU.H100_1x");
	ck_assert(b->spec.gpus[1].instance_types[0].is_default);
	ck_assert_str_eq(b->spec.gpus[1].instance_types[1].name,
			 "NCP.GPU.H100_2x");
	ck_assert_uint_eq(b->spec.gpus[1].instance_types[1].gpu_count, 2);
	ck_assert(!b->spec.gpus[1].instance_types[1].is_default);
	/* The devices nvidia-smi named go with each type. */
	ck_assert_uint_eq(b->spec.gpus[0].devices_count, 2);
	ck_assert_uint_eq(b->spec.gpus[0].devices[1], 1);
	ck_assert_uint_eq(b->spec.gpus[1].devices_count, 3);
	ck_assert_uint_eq(b->spec.gpus[1].devices[0], 2);
	ck_assert_uint_eq(b->spec.gpus[1].devices[2], 4);
	ck_assert_int_eq(nvcf__backend_apply_gpus(b, g, 0), NVCF_EINVAL);
	nvcf__gpu_discovered_free(g, n);
	nvcf__backend_free(b);
}
END_TEST

static const char big_yaml[] =
	"apiVersion: nvcf.nvidia.io/v1\n"
	"kind: NVCFBackend\n"
	"metadata: {name: t}\n"
	"spec:\n"
	"  clusterId: c1\n"
	"  clusterName: c1\n"
	"  clusterGroup: g\n"
	"  region: r\n"
	"  attributes: []\n"
	"  gpuDiscovery: dynamic\n"
	"  gpus:\n"
	"    - name: A100\n"
	"      capacity: 8\n"
	"      instanceTypes:\n"
	"        - {name: A_8x, description: a, gpuCount: 8, default: true}\n"
	"        - {name: A_2x, description: b, gpuCount: 2,"
	" default: false}\n"
	"        - {name: A_4x, description: c, gpuCount: 4,"
	" default: false}\n"
	"    - name: T4\n"
	"      capacity: 8\n"
	"      instanceTypes:\n"
	"        - {name: T_8x, description: d, gpuCount: 8, default: true}\n";

/* Listed types the machine cannot fit are dropped, never offered. */
START_TEST(apply_drops_types_that_do_not_fit)
{
	nvcf__backend *b = NULL;
	nvcf__gpu_pool *pool = NULL;
	nvcf__discovered_gpu *g;
	unsigned int idx[3];
	size_t n = 0;

	ck_assert_int_eq(nvcf__backend_parse(big_yaml, sizeof(big_yaml) - 1,
					     "test", &b),
			 NVCF_OK);
	ck_assert_str_eq(b->spec.gpu_discovery, "dynamic");
	g = parse_ok("NVIDIA A100-SXM4-80GB, 5\nNVIDIA A100-SXM4-80GB, 2\n"
		     "NVIDIA A100-SXM4-80GB, 7\nTesla T4, 0\n",
		     &n);
	ck_assert_int_eq(nvcf__backend_apply_gpus(b, g, n), NVCF_OK);
	nvcf__gpu_discovered_free(g, n);
	ck_assert_uint_eq(b->spec.gpus[0].capacity, 3);
	ck_assert_uint_eq(b->spec.gpus[0].instance_types_count, 1);
	ck_assert_str_eq(b->spec.gpus[0].instance_types[0].name, "A_2x");
	/* The listed default did not fit: the first left takes its place. */
	ck_assert(b->spec.gpus[0].instance_types[0].is_default);
	/* None fits: the generated ones, named after the listed GPU. */
	ck_assert_str_eq(b->spec.gpus[1].name, "T4");
	ck_assert_uint_eq(b->spec.gpus[1].instance_types_count, 1);
	ck_assert_str_eq(b->spec.gpus[1].instance_types[0].name,
			 "NCP.GPU.T4_1x");
	/* The pool hands out the discovered indices, lowest first. */
	ck_assert_int_eq(nvcf__gpu_pool_new(&pool, b), NVCF_OK);
	ck_assert_int_eq(nvcf__gpu_alloc(pool, "A100", 2, idx), NVCF_OK);
	ck_assert_uint_eq(idx[0], 2);
	ck_assert_uint_eq(idx[1], 5);
	ck_assert_int_eq(nvcf__gpu_alloc(pool, "A100", 1, idx + 2), NVCF_OK);
	ck_assert_uint_eq(idx[2], 7);
	ck_assert_int_eq(nvcf__gpu_alloc(pool, "T4", 1, idx), NVCF_OK);
	ck_assert_uint_eq(idx[0], 0);
	nvcf__gpu_pool_free(pool);
	nvcf__backend_free(b);
}
END_TEST

/* A directory on PATH holding a stand-in nvidia-smi with @p body. */
static char fake_dir[64];

static void fake_smi(const char *body)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/nvidia-smi", fake_dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "#!/bin/sh\n%s\n", body);
	fclose(f);
	ck_assert_int_eq(chmod(path, 0755), 0);
}

static void fake_setup(void)
{
	snprintf(fake_dir, sizeof(fake_dir), "/tmp/nvcf-discover-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(fake_dir));
	setenv("PATH", fake_dir, 1);
}

static void fake_teardown(void)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/nvidia-smi", fake_dir);
	unlink(path);
	rmdir(fake_dir);
}

START_TEST(run_reads_fake_nvidia_smi)
{
	nvcf__discovered_gpu *g = NULL;
	size_t n = 0;

	fake_smi("[ \"$1\" = --query-gpu=name,index ] || exit 3\n"
		 "[ \"$2\" = --format=csv,noheader ] || exit 4\n"
		 "printf 'NVIDIA B200, 0\\nNVIDIA B200, 1\\n'");
	ck_assert_int_eq(nvcf__gpu_discover_run(NULL, &g, &n), NVCF_OK);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(g[0].name, "B200");
	ck_assert_uint_eq(g[0].count, 2);
	nvcf__gpu_discovered_free(g, n);

	fake_smi("echo 'No devices were found'; exit 6");
	ck_assert_int_eq(nvcf__gpu_discover_run(NULL, &g, &n), NVCF_EIO);
	ck_assert(strstr(nvcf_error_last()->message, "exit status 6"));
}
END_TEST

START_TEST(run_without_nvidia_smi)
{
	nvcf__backend *b = NULL;
	nvcf__discovered_gpu *g = NULL;
	size_t n = 0;

	ck_assert_int_eq(nvcf__gpu_discover_run(NULL, &g, &n),
			 NVCF_ENOTFOUND);
	ck_assert(strstr(nvcf_error_last()->message, "not on PATH"));
	/* Dynamic without nvidia-smi keeps the static list. */
	ck_assert_int_eq(nvcf__backend_parse(backend_yaml,
					     sizeof(backend_yaml) - 1, "test",
					     &b),
			 NVCF_OK);
	ck_assert_int_eq(nvcf__backend_discover(b, "dynamic"), NVCF_OK);
	ck_assert_uint_eq(b->spec.gpus_count, 1);
	ck_assert_uint_eq(b->spec.gpus[0].capacity, 8);
	/* With it, the machine's GPUs replace the list. */
	fake_smi("printf 'NVIDIA L40S, 0\\n'");
	ck_assert_int_eq(nvcf__backend_discover(b, "dynamic"), NVCF_OK);
	ck_assert_uint_eq(b->spec.gpus[0].capacity, 1);
	/* Static keeps the file's list even with nvidia-smi present. */
	fake_smi("printf 'NVIDIA L40S, 0\\nNVIDIA L40S, 1\\n'");
	ck_assert_int_eq(nvcf__backend_discover(b, "static"), NVCF_OK);
	ck_assert_uint_eq(b->spec.gpus[0].capacity, 1);
	nvcf__backend_free(b);
}
END_TEST

static Suite *discover_suite(void)
{
	Suite *s = suite_create("discover");
	TCase *parse = tcase_create("parse");
	TCase *run = tcase_create("run");

	tcase_add_test(parse, parse_groups_by_short_name);
	tcase_add_test(parse, parse_names_and_blanks);
	tcase_add_test(parse, parse_rejects_bad_lines);
	tcase_add_test(parse, discovery_requested);
	tcase_add_test(parse, apply_keeps_known_types);
	tcase_add_test(parse, apply_drops_types_that_do_not_fit);
	tcase_add_checked_fixture(run, fake_setup, fake_teardown);
	tcase_add_test(run, run_reads_fake_nvidia_smi);
	tcase_add_test(run, run_without_nvidia_smi);
	suite_add_tcase(s, parse);
	suite_add_tcase(s, run);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(discover_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
