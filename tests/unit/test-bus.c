/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Bus tests against a real nats-server with JetStream, started by
 * run_with_nats.py, which passes its URL in NVCF_TEST_NATS_URL.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/bus_internal.h"
#include "bus/chunks.h"
#include "core/internal.h"
#include "nvcf/nvcf.h"

static nvcf_bus *bus;

static void bus_setup(void)
{
	nvcf_bus_options o = NVCF_BUS_OPTIONS_INIT;

	o.url = getenv("NVCF_TEST_NATS_URL");
	ck_assert_ptr_nonnull(o.url);
	o.name = "test-bus";
	ck_assert_msg(nvcf_bus_new(&bus, &o) == NVCF_OK, "%s",
		      nvcf_error_last()->message);
	ck_assert_int_eq(nvcf_bus_ensure_control(bus), NVCF_OK);
}

static void bus_teardown(void)
{
	nvcf_bus_free(bus);
	bus = NULL;
}

START_TEST(test_bus_connect_refused)
{
	nvcf_bus_options o = NVCF_BUS_OPTIONS_INIT;
	char url[64];
	nvcf_bus *b = NULL;

	snprintf(url, sizeof(url), "nats://127.0.0.1:%s",
		 getenv("NVCF_TEST_CLOSED_PORT"));
	o.url = url;
	o.connect_timeout_ms = 500;
	ck_assert_int_eq(nvcf_bus_new(&b, &o), NVCF_EUNAVAILABLE);
	ck_assert_ptr_null(b);
	ck_assert(strstr(nvcf_error_last()->message, url) != NULL);
}
END_TEST

START_TEST(test_bus_ensure_control_idempotent)
{
	ck_assert_int_eq(nvcf_bus_ensure_control(bus), NVCF_OK);
	ck_assert_int_eq(nvcf_bus_ensure_control(bus), NVCF_OK);
	ck_assert_str_eq(nvcf_bus_region(bus), "local");
}
END_TEST

START_TEST(test_bus_queue_full_is_equota)
{
	const char *vid = "11111111-2222-4333-8444-555555555555";
	char subject[160];
	uint64_t queued = 99, in_flight = 99;

	ck_assert_int_eq(nvcf_bus_ensure_queue(bus, vid, 2), NVCF_OK);
	ck_assert_int_eq(nvcf_bus_ensure_queue(bus, vid, 2), NVCF_OK);
	ck_assert_int_eq(nvcf_bus_queue_depth(bus, vid, &queued, &in_flight),
			 NVCF_OK);
	ck_assert_uint_eq(queued, 0);
	ck_assert_uint_eq(in_flight, 0);

	for (int i = 0; i < 2; i++) {
		snprintf(subject, sizeof(subject), "rq.local.%s.r%d", vid, i);
		ck_assert_int_eq(nvcf_bus_publish(bus, subject, "x", 1, NULL),
				 NVCF_OK);
	}
	ck_assert_int_eq(nvcf_bus_queue_depth(bus, vid, &queued, NULL),
			 NVCF_OK);
	ck_assert_uint_eq(queued, 2);

	/* Discard-new: the third publish fails and nothing is dropped. */
	snprintf(subject, sizeof(subject), "rq.local.%s.r2", vid);
	ck_assert_int_eq(nvcf_bus_publish(bus, subject, "x", 1, NULL),
			 NVCF_EQUOTA);
	ck_assert_int_eq(nvcf_error_last()->jetstream_code, 10077);
	ck_assert_int_eq(nvcf_bus_queue_depth(bus, vid, &queued, NULL),
			 NVCF_OK);
	ck_assert_uint_eq(queued, 2);

	ck_assert_int_eq(nvcf_bus_delete_queue(bus, vid), NVCF_OK);
	ck_assert_int_eq(nvcf_bus_queue_depth(bus, vid, &queued, NULL),
			 NVCF_ENOTFOUND);
	ck_assert_int_eq(nvcf_bus_delete_queue(bus, vid), NVCF_OK);
}
END_TEST

START_TEST(test_bus_queue_rejects_bad_id)
{
	uint64_t q;

	ck_assert_int_eq(nvcf_bus_ensure_queue(bus, "v.1", 0), NVCF_EINVAL);
	ck_assert(strstr(nvcf_error_last()->message, "'v.1'") != NULL);
	ck_assert_int_eq(nvcf_bus_queue_depth(bus, "x", &q, NULL),
			 NVCF_EINVAL);
}
END_TEST

START_TEST(test_bus_publish_without_stream)
{
	ck_assert_int_eq(nvcf_bus_publish(bus, "nobody.listens", "x", 1, NULL),
			 NVCF_ENOTFOUND);
}
END_TEST

START_TEST(test_bus_publish_too_large)
{
	size_t len = (size_t)nvcf__bus_options(bus)->max_msg_size + 1;
	char *big = calloc(1, len);

	ck_assert_int_eq(nvcf_bus_publish(bus, "res.big", big, len, NULL),
			 NVCF_EQUOTA);
	free(big);
}
END_TEST

START_TEST(test_bus_kv_roundtrip)
{
	uint64_t rev1 = 0, rev2 = 0, rev = 0;
	char *value = NULL;
	size_t len = 0;

	ck_assert_int_eq(nvcf_bus_kv_create(bus, NVCF_BUCKET_FUNCTIONS,
					    "acct.f.v", "{\"a\":1}", 7, &rev1),
			 NVCF_OK);
	ck_assert_int_eq(nvcf_bus_kv_create(bus, NVCF_BUCKET_FUNCTIONS,
					    "acct.f.v", "{}", 2, NULL),
			 NVCF_EEXISTS);
	ck_assert_int_eq(nvcf_bus_kv_get(bus, NVCF_BUCKET_FUNCTIONS,
					 "acct.f.v", &value, &len, &rev),
			 NVCF_OK);
	ck_assert_str_eq(value, "{\"a\":1}");
	ck_assert_uint_eq(len, 7);
	ck_assert_uint_eq(rev, rev1);
	nvcf_free(value);

	ck_assert_int_eq(nvcf_bus_kv_update(bus, NVCF_BUCKET_FUNCTIONS,
					    "acct.f.v", "{\"a\":2}", 7, rev1,
					    &rev2),
			 NVCF_OK);
	/* A writer holding the old revision must lose. */
	ck_assert_int_eq(nvcf_bus_kv_update(bus, NVCF_BUCKET_FUNCTIONS,
					    "acct.f.v", "{\"a\":3}", 7, rev1,
					    NULL),
			 NVCF_ECONFLICT);
	ck_assert_int_eq(nvcf_bus_kv_get(bus, NVCF_BUCKET_FUNCTIONS,
					 "acct.f.v", &value, NULL, NULL),
			 NVCF_OK);
	ck_assert_str_eq(value, "{\"a\":2}");
	nvcf_free(value);

	ck_assert_int_eq(nvcf_bus_kv_delete(bus, NVCF_BUCKET_FUNCTIONS,
					    "acct.f.v"),
			 NVCF_OK);
	ck_assert_int_eq(nvcf_bus_kv_get(bus, NVCF_BUCKET_FUNCTIONS,
					 "acct.f.v", &value, NULL, NULL),
			 NVCF_ENOTFOUND);
	ck_assert_ptr_null(value);
	ck_assert_int_eq(nvcf_bus_kv_delete(bus, NVCF_BUCKET_FUNCTIONS,
					    "acct.f.v"),
			 NVCF_OK);
}
END_TEST

START_TEST(test_bus_kv_keys_filter)
{
	char **keys = NULL;
	size_t count = 99;

	ck_assert_int_eq(nvcf_bus_kv_keys(bus, NVCF_BUCKET_DEPLOYMENTS, NULL,
					  &keys, &count),
			 NVCF_OK);
	ck_assert_uint_eq(count, 0);
	nvcf_strings_free(keys, count);

	nvcf_bus_kv_put(bus, NVCF_BUCKET_DEPLOYMENTS, "a1.f.v1", "1", 1, NULL);
	nvcf_bus_kv_put(bus, NVCF_BUCKET_DEPLOYMENTS, "a1.f.v2", "1", 1, NULL);
	nvcf_bus_kv_put(bus, NVCF_BUCKET_DEPLOYMENTS, "a2.f.v3", "1", 1, NULL);
	nvcf_bus_kv_put(bus, NVCF_BUCKET_DEPLOYMENTS, "a1.g.v4", "1", 1, NULL);
	nvcf_bus_kv_delete(bus, NVCF_BUCKET_DEPLOYMENTS, "a1.g.v4");

	ck_assert_int_eq(nvcf_bus_kv_keys(bus, NVCF_BUCKET_DEPLOYMENTS, "a1.>",
					  &keys, &count),
			 NVCF_OK);
	ck_assert_uint_eq(count, 2);
	ck_assert(strncmp(keys[0], "a1.f.", 5) == 0);
	ck_assert(strncmp(keys[1], "a1.f.", 5) == 0);
	nvcf_strings_free(keys, count);

	ck_assert_int_eq(nvcf_bus_kv_keys(bus, NVCF_BUCKET_DEPLOYMENTS, NULL,
					  &keys, &count),
			 NVCF_OK);
	ck_assert_uint_eq(count, 3);
	nvcf_strings_free(keys, count);
}
END_TEST

START_TEST(test_bus_ensure_cluster)
{
	ck_assert_int_eq(nvcf_bus_ensure_cluster(bus, "local-1"), NVCF_OK);
	ck_assert_int_eq(nvcf_bus_ensure_cluster(bus, "local-1"), NVCF_OK);
	ck_assert_int_eq(nvcf_bus_ensure_cluster(bus, "bad.id"), NVCF_EINVAL);
	ck_assert(strstr(nvcf_error_last()->message, "'bad.id'") != NULL);
	ck_assert_int_eq(nvcf_bus_publish(bus,
					  "Create.NVCA.Function.local-1.L40S."
					  "NCP|GPU|L40S_1x",
					  "x", 1, NULL),
			 NVCF_OK);
}
END_TEST

/* Number of messages of @p stream whose subjects match @p filter. */
static uint64_t stream_count(const char *stream, const char *filter)
{
	jsStreamInfo *si = NULL;
	jsOptions o;
	uint64_t n = 0;

	jsOptions_Init(&o);
	o.Stream.Info.SubjectsFilter = filter;
	ck_assert_int_eq(js_GetStreamInfo(&si, nvcf__bus_js(bus), stream, &o,
					  NULL),
			 NATS_OK);
	for (int i = 0; si->State.Subjects != NULL &&
			i < si->State.Subjects->Count; i++)
		n += si->State.Subjects->List[i].Msgs;
	jsStreamInfo_Destroy(si);
	return n;
}

START_TEST(test_chunks_store_fetch_purge)
{
	size_t len = 10000;
	uint8_t *body = malloc(len), *joined = NULL;
	uint8_t digest[NVCF__SHA256_LEN];
	natsMsg **msgs = NULL;
	uint32_t count = 0;

	for (size_t i = 0; i < len; i++)
		body[i] = (uint8_t)(i * 7);
	ck_assert_int_eq(nvcf__body_digest(body, len, digest), NVCF_OK);
	ck_assert_int_eq(nvcf__chunks_store(nvcf__bus_js(bus),
					    NVCF__STREAM_BODIES,
					    "body.unit-1", body, len, 4096,
					    &count),
			 NVCF_OK);
	ck_assert_uint_eq(count, 3);
	ck_assert_uint_eq(stream_count(NVCF__STREAM_BODIES, "body.unit-1.>"),
			  3);

	ck_assert_int_eq(nvcf__chunks_fetch(nvcf__bus_js(bus),
					    NVCF__STREAM_BODIES,
					    "body.unit-1", count, len, digest,
					    sizeof(digest), "unit body",
					    &msgs),
			 NVCF_OK);
	ck_assert_int_eq(nvcf__chunks_join(msgs, count, len, &joined),
			 NVCF_OK);
	ck_assert_mem_eq(joined, body, len);
	nvcf__chunks_free(msgs, count);
	free(joined);

	ck_assert_int_eq(nvcf__chunks_purge(nvcf__bus_js(bus),
					    NVCF__STREAM_BODIES,
					    "body.unit-1"),
			 NVCF_OK);
	ck_assert_uint_eq(stream_count(NVCF__STREAM_BODIES, "body.unit-1.>"),
			  0);
	free(body);
}
END_TEST

START_TEST(test_chunks_fetch_names_missing_chunk)
{
	uint8_t digest[NVCF__SHA256_LEN] = {0};
	natsMsg **msgs = NULL;
	uint32_t count = 0;

	ck_assert_int_eq(nvcf__chunks_store(nvcf__bus_js(bus),
					    NVCF__STREAM_BODIES,
					    "body.unit-2", "abcdef", 6, 4096,
					    &count),
			 NVCF_OK);
	ck_assert_int_eq(nvcf__chunks_fetch(nvcf__bus_js(bus),
					    NVCF__STREAM_BODIES,
					    "body.unit-2", 2, 6, digest,
					    sizeof(digest), "unit body",
					    &msgs),
			 NVCF_ENOTFOUND);
	ck_assert_ptr_null(msgs);
	ck_assert_ptr_nonnull(strstr(nvcf_error_last()->message,
				     "unit body: chunk 2 of 2 "
				     "(body.unit-2.1 in NVCF_BODIES) not "
				     "found"));
	nvcf__chunks_purge(nvcf__bus_js(bus), NVCF__STREAM_BODIES,
			   "body.unit-2");
}
END_TEST

START_TEST(test_chunks_fetch_detects_corruption)
{
	uint8_t digest[NVCF__SHA256_LEN];
	natsMsg **msgs = NULL;
	uint32_t count = 0;

	ck_assert_int_eq(nvcf__body_digest("abcdef", 6, digest), NVCF_OK);
	ck_assert_int_eq(nvcf__chunks_store(nvcf__bus_js(bus),
					    NVCF__STREAM_BODIES,
					    "body.unit-3", "abcdeX", 6, 4,
					    &count),
			 NVCF_OK);
	ck_assert_uint_eq(count, 2);
	ck_assert_int_eq(nvcf__chunks_fetch(nvcf__bus_js(bus),
					    NVCF__STREAM_BODIES,
					    "body.unit-3", count, 6, digest,
					    sizeof(digest), "unit body",
					    &msgs),
			 NVCF_EPROTO);
	ck_assert_ptr_null(msgs);
	nvcf__chunks_purge(nvcf__bus_js(bus), NVCF__STREAM_BODIES,
			   "body.unit-3");
}
END_TEST

START_TEST(test_chunks_store_without_stream)
{
	uint32_t count = 7;

	ck_assert_int_eq(nvcf__chunks_store(nvcf__bus_js(bus), "NO_STREAM",
					    "nostream.unit", "abc", 3, 4096,
					    &count),
			 NVCF_ENOTFOUND);
	ck_assert_uint_eq(count, 0);
	ck_assert_ptr_nonnull(strstr(nvcf_error_last()->message,
				     "nostream.unit.0"));
}
END_TEST

static Suite *bus_suite(void)
{
	Suite *s = suite_create("bus");
	TCase *tc = tcase_create("jetstream");

	tcase_add_checked_fixture(tc, bus_setup, bus_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_bus_connect_refused);
	tcase_add_test(tc, test_bus_ensure_control_idempotent);
	tcase_add_test(tc, test_bus_queue_full_is_equota);
	tcase_add_test(tc, test_bus_queue_rejects_bad_id);
	tcase_add_test(tc, test_bus_publish_without_stream);
	tcase_add_test(tc, test_bus_publish_too_large);
	tcase_add_test(tc, test_bus_kv_roundtrip);
	tcase_add_test(tc, test_bus_kv_keys_filter);
	tcase_add_test(tc, test_bus_ensure_cluster);
	tcase_add_test(tc, test_chunks_store_fetch_purge);
	tcase_add_test(tc, test_chunks_fetch_names_missing_chunk);
	tcase_add_test(tc, test_chunks_fetch_detects_corruption);
	tcase_add_test(tc, test_chunks_store_without_stream);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(bus_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
