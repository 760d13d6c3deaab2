/* SPDX-License-Identifier: Apache-2.0 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent_internal.h"

/* ---- shell splitting ---------------------------------------------------- */

static void expect_split(const char *text, const char *const *want)
{
	char **argv = NULL;
	size_t argc = 0, n = 0;

	ck_assert_int_eq(nvcf__shell_split(text, "8123", &argv, &argc),
			 NVCF_OK);
	while (want[n] != NULL)
		n++;
	ck_assert_uint_eq(argc, n);
	for (size_t i = 0; i < n; i++)
		ck_assert_str_eq(argv[i], want[i]);
	ck_assert_ptr_null(argv[argc]);
	nvcf__shell_free(argv);
}

START_TEST(split_plain_words)
{
	const char *const want[] = {"serve", "--x", "1", NULL};

	expect_split("  serve\t--x   1 \n", want);
}
END_TEST

START_TEST(split_empty_text)
{
	const char *const want[] = {NULL};

	expect_split("", want);
	expect_split("   ", want);
}
END_TEST

START_TEST(split_single_quotes)
{
	const char *const want[] = {"a b", "$PORT", "x\\y", "", NULL};

	expect_split("'a b' '$PORT' 'x\\y' ''", want);
}
END_TEST

START_TEST(split_double_quotes)
{
	const char *const want[] = {"a b", "say \"hi\"", "8123/x", "\\n",
				    "$HOME", NULL};

	expect_split("\"a b\" \"say \\\"hi\\\"\" \"$PORT/x\" \"\\n\" "
		     "\"$HOME\"", want);
}
END_TEST

START_TEST(split_backslashes)
{
	const char *const want[] = {"a b", "c'd", "$PORT", "joined", NULL};

	expect_split("a\\ b c\\'d \\$PORT join\\\ned", want);
}
END_TEST

START_TEST(split_port_forms)
{
	const char *const want[] = {"--port=8123", "8123x", "$PORTS",
				    "-p8123", NULL};

	expect_split("--port=$PORT ${PORT}x $PORTS -p\"${PORT}\"", want);
}
END_TEST

START_TEST(split_adjacent_parts)
{
	const char *const want[] = {"abc def", NULL};

	expect_split("a'bc'\" d\"ef", want);
}
END_TEST

START_TEST(split_unterminated_single)
{
	char **argv = NULL;

	ck_assert_int_eq(nvcf__shell_split("run 'abc", "1", &argv, NULL),
			 NVCF_EINVAL);
	ck_assert_ptr_null(argv);
	ck_assert_ptr_nonnull(strstr(nvcf_error_last()->message,
				     "single quote at offset 4"));
}
END_TEST

START_TEST(split_unterminated_double)
{
	char **argv = NULL;

	ck_assert_int_eq(nvcf__shell_split("a \"b\\\"", "1", &argv, NULL),
			 NVCF_EINVAL);
	ck_assert_ptr_nonnull(strstr(nvcf_error_last()->message,
				     "double quote at offset 2"));
}
END_TEST

START_TEST(split_trailing_backslash)
{
	char **argv = NULL;

	ck_assert_int_eq(nvcf__shell_split("abc\\", "1", &argv, NULL),
			 NVCF_EINVAL);
	ck_assert_ptr_nonnull(strstr(nvcf_error_last()->message,
				     "offset 3"));
}
END_TEST

/* ---- backend files ------------------------------------------------------ */

static const char good_yaml[] =
	"apiVersion: nvcf.nvidia.io/v1\n"
	"kind: NVCFBackend\n"
	"metadata:\n"
	"  name: local\n"
	"spec:\n"
	"  clusterId: local-1\n"
	"  clusterName: local\n"
	"  clusterGroup: local\n"
	"  region: local\n"
	"  attributes: []\n"
	"  gpus:\n"
	"    - name: L40S\n"
	"      capacity: 8\n"
	"      instanceTypes:\n"
	"        - {name: NCP.GPU.L40S_1x, description: \"One L40S\", "
	"gpuCount: 1, default: true}\n"
	"        - {name: NCP.GPU.L40S_2x, description: \"Two L40S\", "
	"gpuCount: 2, default: false}\n"
	"    - name: H100\n"
	"      capacity: 2\n"
	"      instanceTypes:\n"
	"        - {name: NCP.GPU.H100_1x, description: \"One H100\", "
	"gpuCount: 1, default: true}\n";

static nvcf__backend *load_good(void)
{
	nvcf__backend *b = NULL;

	ck_assert_int_eq(nvcf__backend_parse(good_yaml, strlen(good_yaml),
					     "good.yaml", &b), NVCF_OK);
	return b;
}

/* Parses good_yaml with @p from replaced by @p to; expects an error. */
static void expect_bad(const char *from, const char *to, const char *needle)
{
	char *text = malloc(sizeof(good_yaml) + strlen(to));
	const char *at = strstr(good_yaml, from);
	nvcf__backend *b = NULL;
	size_t head;

	ck_assert_ptr_nonnull(at);
	head = (size_t)(at - good_yaml);
	memcpy(text, good_yaml, head);
	strcpy(text + head, to);
	strcat(text, at + strlen(from));
	ck_assert_int_eq(nvcf__backend_parse(text, strlen(text), "bad.yaml",
					     &b), NVCF_EINVAL);
	ck_assert_ptr_null(b);
	ck_assert_ptr_nonnull(strstr(nvcf_error_last()->message, "bad.yaml"));
	ck_assert_msg(strstr(nvcf_error_last()->message, needle) != NULL,
		      "'%s' not in '%s'", needle, nvcf_error_last()->message);
	free(text);
}

START_TEST(backend_good_file)
{
	nvcf__backend *b = load_good();
	const nvcf__backend_gpu *g = NULL;
	const nvcf__instance_type *t;

	ck_assert_str_eq(b->spec.cluster_id, "local-1");
	ck_assert_str_eq(b->spec.cluster_group, "local");
	ck_assert_uint_eq(b->spec.gpus_count, 2);
	ck_assert_uint_eq(b->spec.attributes_count, 0);
	ck_assert_uint_eq(b->spec.gpus[0].capacity, 8);
	t = nvcf__backend_find_type(b, "L40S", "NCP.GPU.L40S_2x", &g);
	ck_assert_ptr_nonnull(t);
	ck_assert_uint_eq(t->gpu_count, 2);
	ck_assert(!t->is_default);
	ck_assert_str_eq(g->name, "L40S");
	ck_assert_ptr_null(nvcf__backend_find_type(b, "H100",
						   "NCP.GPU.L40S_1x", NULL));
	nvcf__backend_free(b);
}
END_TEST

START_TEST(backend_example_file)
{
	const char *src = getenv("NVCF_SOURCE_DIR");
	char path[4096];
	nvcf__backend *b = NULL;

	snprintf(path, sizeof(path), "%s/examples/backends/local.yaml",
		 src ? src : ".");
	ck_assert_int_eq(nvcf__backend_load(path, &b), NVCF_OK);
	ck_assert_str_eq(b->spec.region, "local");
	nvcf__backend_free(b);
}
END_TEST

START_TEST(backend_missing_field)
{
	expect_bad("  region: local\n", "", "region");
}
END_TEST

START_TEST(backend_unknown_field)
{
	expect_bad("  region: local\n", "  region: local\n  zone: x\n",
		   "zone");
}
END_TEST

START_TEST(backend_bad_capacity)
{
	expect_bad("capacity: 8", "capacity: 0", "capacity");
	expect_bad("capacity: 8", "capacity: lots", "lots");
	expect_bad("capacity: 8", "capacity: 1", "gpuCount");
}
END_TEST

START_TEST(backend_missing_file)
{
	nvcf__backend *b = NULL;

	ck_assert_int_eq(nvcf__backend_load("/nonexistent/backend.yaml", &b),
			 NVCF_ENOTFOUND);
	ck_assert_ptr_nonnull(strstr(nvcf_error_last()->message,
				     "/nonexistent/backend.yaml"));
}
END_TEST

/* good_yaml up to spec.gpus, followed by @p tail; the caller frees it. */
static char *without_gpus(const char *tail)
{
	size_t head = (size_t)(strstr(good_yaml, "  gpus:\n") - good_yaml);
	char *text = malloc(head + strlen(tail) + 1);

	ck_assert_ptr_nonnull(text);
	memcpy(text, good_yaml, head);
	strcpy(text + head, tail);
	return text;
}

START_TEST(backend_gpu_discovery)
{
	static const char *const ok[] = {"", "  gpuDiscovery: dynamic\n",
					 "  gpuDiscovery: Dynamic\n",
					 "  gpus: []\n"};
	nvcf__backend *b = NULL;
	char *text;

	/* No GPUs listed: left to discovery. */
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		text = without_gpus(ok[i]);
		ck_assert_int_eq(nvcf__backend_parse(text, strlen(text), "t",
						     &b), NVCF_OK);
		ck_assert_uint_eq(b->spec.gpus_count, 0);
		nvcf__backend_free(b);
		b = NULL;
		free(text);
	}
	text = without_gpus("  gpuDiscovery: static\n");
	ck_assert_int_eq(nvcf__backend_parse(text, strlen(text), "s.yaml",
					     &b), NVCF_EINVAL);
	ck_assert_ptr_null(b);
	ck_assert_str_eq(nvcf_error_last()->message,
			 "s.yaml: spec.gpuDiscovery is static but spec.gpus "
			 "lists no GPU: list them or use dynamic");
	free(text);
	expect_bad("  attributes: []\n",
		   "  attributes: []\n  gpuDiscovery: sometimes\n",
		   "invalid spec.gpuDiscovery 'sometimes': use dynamic or "
		   "static");
	/* Listed GPUs with static (or dynamic) discovery parse as before. */
	expect_bad("  attributes: []\n",
		   "  attributes: []\n  gpuDiscovery: [dynamic]\n",
		   "gpuDiscovery");
	text = malloc(sizeof(good_yaml) + 32);
	strcpy(text, good_yaml);
	strcat(text, "  gpuDiscovery: static\n");
	ck_assert_int_eq(nvcf__backend_parse(text, strlen(text), "t", &b),
			 NVCF_OK);
	ck_assert_str_eq(b->spec.gpu_discovery, "static");
	ck_assert_uint_eq(b->spec.gpus_count, 2);
	nvcf__backend_free(b);
	free(text);
}
END_TEST

START_TEST(backend_gpu_devices)
{
	expect_bad("capacity: 2\n", "capacity: 2\n      devices: [1]\n",
		   "spec.gpus[1].devices of GPU 'H100' lists 1 indices for "
		   "capacity 2");
	expect_bad("capacity: 2\n", "capacity: 2\n      devices: [4, 4]\n",
		   "invalid spec.gpus[1].devices[1] 4 of GPU 'H100': use "
		   "distinct indices below 1024");
	expect_bad("capacity: 2\n",
		   "capacity: 2\n      devices: [1, 1024]\n",
		   "devices[1] 1024");
	expect_bad("capacity: 2\n", "capacity: 2\n      devices: [a, b]\n",
		   "a");
}
END_TEST

/* ---- GPU allocation ----------------------------------------------------- */

START_TEST(gpu_distinct_indices)
{
	nvcf__backend *b = load_good();
	nvcf__gpu_pool *pool = NULL;
	unsigned int a[2], c[2];

	ck_assert_int_eq(nvcf__gpu_pool_new(&pool, b), NVCF_OK);
	ck_assert_int_eq(nvcf__gpu_alloc(pool, "L40S", 2, a), NVCF_OK);
	ck_assert_int_eq(nvcf__gpu_alloc(pool, "L40S", 2, c), NVCF_OK);
	ck_assert_uint_eq(a[0], 0);
	ck_assert_uint_eq(a[1], 1);
	ck_assert_uint_eq(c[0], 2);
	ck_assert_uint_eq(c[1], 3);
	ck_assert_uint_eq(nvcf__gpu_allocated(pool, "L40S"), 4);
	nvcf__gpu_pool_free(pool);
	nvcf__backend_free(b);
}
END_TEST

START_TEST(gpu_never_over_capacity)
{
	nvcf__backend *b = load_good();
	nvcf__gpu_pool *pool = NULL;
	unsigned int idx[8];

	ck_assert_int_eq(nvcf__gpu_pool_new(&pool, b), NVCF_OK);
	ck_assert_int_eq(nvcf__gpu_alloc(pool, "H100", 1, idx), NVCF_OK);
	ck_assert_int_eq(nvcf__gpu_alloc(pool, "H100", 2, idx), NVCF_EQUOTA);
	ck_assert_ptr_nonnull(strstr(nvcf_error_last()->message,
				     "insufficient capacity"));
	ck_assert_uint_eq(nvcf__gpu_allocated(pool, "H100"), 1);
	ck_assert_int_eq(nvcf__gpu_alloc(pool, "H100", 1, idx), NVCF_OK);
	ck_assert_uint_eq(nvcf__gpu_available(pool, "H100"), 0);
	ck_assert_int_eq(nvcf__gpu_alloc(pool, "H100", 1, idx), NVCF_EQUOTA);
	ck_assert_int_eq(nvcf__gpu_alloc(pool, "A100", 1, idx),
			 NVCF_ENOTFOUND);
	nvcf__gpu_pool_free(pool);
	nvcf__backend_free(b);
}
END_TEST

START_TEST(gpu_release_reuses_indices)
{
	nvcf__backend *b = load_good();
	nvcf__gpu_pool *pool = NULL;
	unsigned int a[3], c[1];

	ck_assert_int_eq(nvcf__gpu_pool_new(&pool, b), NVCF_OK);
	ck_assert_int_eq(nvcf__gpu_alloc(pool, "L40S", 3, a), NVCF_OK);
	nvcf__gpu_release(pool, "L40S", &a[1], 1);
	ck_assert_uint_eq(nvcf__gpu_allocated(pool, "L40S"), 2);
	/* Releasing twice changes nothing. */
	nvcf__gpu_release(pool, "L40S", &a[1], 1);
	ck_assert_uint_eq(nvcf__gpu_allocated(pool, "L40S"), 2);
	ck_assert_int_eq(nvcf__gpu_alloc(pool, "L40S", 1, c), NVCF_OK);
	ck_assert_uint_eq(c[0], 1);
	nvcf__gpu_pool_free(pool);
	nvcf__backend_free(b);
}
END_TEST

/* Listed (or discovered) device indices are what instances get. */
START_TEST(gpu_listed_devices)
{
	const char *at = strstr(good_yaml, "capacity: 2\n") +
			 strlen("capacity: 2\n");
	size_t head = (size_t)(at - good_yaml);
	char *text = malloc(sizeof(good_yaml) + 64);
	nvcf__backend *b = NULL;
	nvcf__gpu_pool *pool = NULL;
	unsigned int idx[2], held[2] = {3, 7};

	memcpy(text, good_yaml, head);
	strcpy(text + head, "      devices: [7, 3]\n");
	strcat(text, at);
	ck_assert_int_eq(nvcf__backend_parse(text, strlen(text), "t", &b),
			 NVCF_OK);
	ck_assert_uint_eq(b->spec.gpus[1].devices_count, 2);
	ck_assert_uint_eq(b->spec.gpus[1].devices[0], 3);
	ck_assert_uint_eq(b->spec.gpus[1].devices[1], 7);
	ck_assert_int_eq(nvcf__gpu_pool_new(&pool, b), NVCF_OK);
	ck_assert_int_eq(nvcf__gpu_alloc(pool, "H100", 1, idx), NVCF_OK);
	ck_assert_uint_eq(idx[0], 3);
	ck_assert_int_eq(nvcf__gpu_alloc(pool, "H100", 1, idx + 1), NVCF_OK);
	ck_assert_uint_eq(idx[1], 7);
	ck_assert_int_eq(nvcf__gpu_alloc(pool, "H100", 1, idx), NVCF_EQUOTA);
	nvcf__gpu_release(pool, "H100", &held[1], 1);
	/* Not a device of the pool: nothing changes. */
	nvcf__gpu_release(pool, "H100", (const unsigned int[]){0}, 1);
	ck_assert_uint_eq(nvcf__gpu_allocated(pool, "H100"), 1);
	ck_assert_int_eq(nvcf__gpu_claim(pool, "H100",
					 (const unsigned int[]){0}, 1),
			 NVCF_EEXISTS);
	ck_assert_ptr_nonnull(strstr(nvcf_error_last()->message,
				     "H100 device 0 is not in this agent's "
				     "pool"));
	ck_assert_int_eq(nvcf__gpu_claim(pool, "H100", held, 1),
			 NVCF_EEXISTS);
	ck_assert_int_eq(nvcf__gpu_claim(pool, "H100", &held[1], 1),
			 NVCF_OK);
	ck_assert_uint_eq(nvcf__gpu_available(pool, "H100"), 0);
	nvcf__gpu_release(pool, "H100", held, 2);
	ck_assert_uint_eq(nvcf__gpu_available(pool, "H100"), 2);
	/* L40S lists none: 0..capacity-1 as before. */
	ck_assert_int_eq(nvcf__gpu_alloc(pool, "L40S", 1, idx), NVCF_OK);
	ck_assert_uint_eq(idx[0], 0);
	nvcf__gpu_pool_free(pool);
	nvcf__backend_free(b);
	free(text);
}
END_TEST

static Suite *agent_suite(void)
{
	Suite *s = suite_create("agent");
	TCase *split = tcase_create("shell_split");
	TCase *backend = tcase_create("backend");
	TCase *gpu = tcase_create("gpu");

	tcase_add_test(split, split_plain_words);
	tcase_add_test(split, split_empty_text);
	tcase_add_test(split, split_single_quotes);
	tcase_add_test(split, split_double_quotes);
	tcase_add_test(split, split_backslashes);
	tcase_add_test(split, split_port_forms);
	tcase_add_test(split, split_adjacent_parts);
	tcase_add_test(split, split_unterminated_single);
	tcase_add_test(split, split_unterminated_double);
	tcase_add_test(split, split_trailing_backslash);
	tcase_add_test(backend, backend_good_file);
	tcase_add_test(backend, backend_example_file);
	tcase_add_test(backend, backend_missing_field);
	tcase_add_test(backend, backend_unknown_field);
	tcase_add_test(backend, backend_gpu_discovery);
	tcase_add_test(backend, backend_gpu_devices);
	tcase_add_test(backend, backend_bad_capacity);
	tcase_add_test(backend, backend_missing_file);
	tcase_add_test(gpu, gpu_distinct_indices);
	tcase_add_test(gpu, gpu_never_over_capacity);
	tcase_add_test(gpu, gpu_release_reuses_indices);
	tcase_add_test(gpu, gpu_listed_devices);
	suite_add_tcase(s, split);
	suite_add_tcase(s, backend);
	suite_add_tcase(s, gpu);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(agent_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
