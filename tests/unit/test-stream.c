/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers of streamed responses: the Accept check that selects streaming
 * and the ordered, bounded queue of a stream's body bytes.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/stream_queue.h"
#include "request/request_internal.h"

START_TEST(test_accept_lists_event_stream)
{
	static const char *const yes[] = {
		"text/event-stream",
		"TEXT/Event-Stream",
		"  text/event-stream  ",
		"text/event-stream;charset=utf-8",
		"text/event-stream ; q=0.5",
		"application/json, text/event-stream",
		"text/html;q=0.9,text/event-stream;q=1",
		"text/event-stream;level=1;q=0.001",
	};
	static const char *const no[] = {
		"",
		"*/*",
		"text/*",
		"application/json",
		"text/event-streams",
		"text/event-strea",
		"xtext/event-stream",
		"text/event-stream;q=0",
		"text/event-stream; q = 0.000",
		"text/event-stream;Q=0.0, application/json",
		",,,",
	};

	ck_assert(!nvcf__accepts_event_stream(NULL));
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		ck_assert_msg(nvcf__accepts_event_stream(yes[i]),
			      "expected a match for '%s'", yes[i]);
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		ck_assert_msg(!nvcf__accepts_event_stream(no[i]),
			      "expected no match for '%s'", no[i]);
}
END_TEST

START_TEST(test_accept_exactly_event_stream)
{
	ck_assert(nvcf__accept_is_event_stream("text/event-stream"));
	ck_assert(nvcf__accept_is_event_stream(" Text/Event-Stream\t"));
	ck_assert(!nvcf__accept_is_event_stream(NULL));
	ck_assert(!nvcf__accept_is_event_stream(""));
	ck_assert(!nvcf__accept_is_event_stream("text/event-stream;q=1"));
	ck_assert(!nvcf__accept_is_event_stream(
		"application/json, text/event-stream"));
}
END_TEST

START_TEST(test_queue_keeps_order_across_reads)
{
	nvcf__stream_queue q;
	char out[16];

	nvcf__stream_queue_init(&q, 1, 100);
	ck_assert_int_eq(nvcf__stream_queue_push(&q, 1, "abc", 3), NVCF_OK);
	ck_assert_int_eq(nvcf__stream_queue_push(&q, 2, "", 0), NVCF_OK);
	ck_assert_int_eq(nvcf__stream_queue_push(&q, 3, "defgh", 5), NVCF_OK);
	ck_assert_uint_eq(q.buffered, 8);
	ck_assert_uint_eq(q.next_seq, 4);

	/* Reads may split a piece and span two. */
	ck_assert_uint_eq(nvcf__stream_queue_read(&q, out, 2), 2);
	ck_assert_int_eq(memcmp(out, "ab", 2), 0);
	ck_assert_uint_eq(nvcf__stream_queue_read(&q, out, 4), 4);
	ck_assert_int_eq(memcmp(out, "cdef", 4), 0);
	ck_assert_uint_eq(q.buffered, 2);
	ck_assert_uint_eq(nvcf__stream_queue_read(&q, out, sizeof(out)), 2);
	ck_assert_int_eq(memcmp(out, "gh", 2), 0);
	ck_assert_uint_eq(nvcf__stream_queue_read(&q, out, sizeof(out)), 0);
	ck_assert_uint_eq(q.buffered, 0);
	ck_assert_uint_eq(q.total_in, 8);
	nvcf__stream_queue_clear(&q);
}
END_TEST

START_TEST(test_queue_rejects_gap_and_repeat)
{
	nvcf__stream_queue q;
	char out[8];

	nvcf__stream_queue_init(&q, 1, 100);
	ck_assert_int_eq(nvcf__stream_queue_push(&q, 1, "a", 1), NVCF_OK);
	ck_assert_int_eq(nvcf__stream_queue_push(&q, 3, "c", 1), NVCF_EPROTO);
	ck_assert_str_eq(nvcf_error_last()->message,
			 "stream piece 3 arrived where piece 2 was expected");
	ck_assert_int_eq(nvcf__stream_queue_push(&q, 1, "a", 1), NVCF_EPROTO);
	ck_assert_int_eq(nvcf__stream_queue_push(&q, 0, "h", 1), NVCF_EPROTO);
	/* Rejected pieces leave the queue as it was. */
	ck_assert_uint_eq(q.next_seq, 2);
	ck_assert_uint_eq(nvcf__stream_queue_read(&q, out, sizeof(out)), 1);
	ck_assert_int_eq(out[0], 'a');
	nvcf__stream_queue_clear(&q);
}
END_TEST

START_TEST(test_queue_bounds_buffered_bytes)
{
	nvcf__stream_queue q;
	char big[64] = {0};
	char out[64];

	nvcf__stream_queue_init(&q, 1, 100);
	ck_assert_int_eq(nvcf__stream_queue_push(&q, 1, big, 60), NVCF_OK);
	ck_assert_int_eq(nvcf__stream_queue_push(&q, 2, big, 41), NVCF_EQUOTA);
	ck_assert_ptr_nonnull(strstr(nvcf_error_last()->message,
				     "limit of 100 bytes"));
	ck_assert_uint_eq(q.next_seq, 2);
	ck_assert_int_eq(nvcf__stream_queue_push(&q, 2, big, 40), NVCF_OK);
	ck_assert_uint_eq(q.buffered, 100);
	/* Reading makes room again. */
	ck_assert_uint_eq(nvcf__stream_queue_read(&q, out, 50), 50);
	ck_assert_int_eq(nvcf__stream_queue_push(&q, 3, big, 50), NVCF_OK);
	ck_assert_uint_eq(q.buffered, 100);
	nvcf__stream_queue_clear(&q);
	ck_assert_uint_eq(q.buffered, 0);
	ck_assert_uint_eq(nvcf__stream_queue_read(&q, out, sizeof(out)), 0);
	/* Clearing keeps the sequence. */
	ck_assert_int_eq(nvcf__stream_queue_push(&q, 4, "x", 1), NVCF_OK);
	nvcf__stream_queue_clear(&q);
}
END_TEST

static Suite *stream_suite(void)
{
	Suite *s = suite_create("stream");
	TCase *tc = tcase_create("helpers");

	tcase_add_test(tc, test_accept_lists_event_stream);
	tcase_add_test(tc, test_accept_exactly_event_stream);
	tcase_add_test(tc, test_queue_keeps_order_across_reads);
	tcase_add_test(tc, test_queue_rejects_gap_and_repeat);
	tcase_add_test(tc, test_queue_bounds_buffered_bytes);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(stream_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
