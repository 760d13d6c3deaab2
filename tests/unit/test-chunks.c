/* SPDX-License-Identifier: Apache-2.0 */
/* Size, name and digest helpers of chunked bodies; no server needed. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "bus/chunks.h"

START_TEST(test_chunk_size_leaves_headroom)
{
	ck_assert_uint_eq(nvcf__chunk_size(1 << 20),
			  (1 << 20) - NVCF__CHUNK_HEADROOM);
	/* A max_payload below the headroom still gives a usable size. */
	ck_assert_uint_eq(nvcf__chunk_size(1000), NVCF__MIN_CHUNK_BYTES);
	ck_assert_uint_eq(nvcf__chunk_size(0), NVCF__MIN_CHUNK_BYTES);
}
END_TEST

START_TEST(test_inline_limit_default_and_cap)
{
	ck_assert_uint_eq(nvcf__inline_limit(0, 1 << 20),
			  NVCF__DEFAULT_INLINE_BODY_BYTES);
	ck_assert_uint_eq(nvcf__inline_limit(1000, 1 << 20), 1000);
	/* Capped by max_payload minus headroom. */
	ck_assert_uint_eq(nvcf__inline_limit(8 << 20, 1 << 20),
			  (1 << 20) - NVCF__CHUNK_HEADROOM);
}
END_TEST

START_TEST(test_chunk_count_rounds_up)
{
	ck_assert_uint_eq(nvcf__chunk_count(0, 100), 0);
	ck_assert_uint_eq(nvcf__chunk_count(1, 100), 1);
	ck_assert_uint_eq(nvcf__chunk_count(100, 100), 1);
	ck_assert_uint_eq(nvcf__chunk_count(101, 100), 2);
	ck_assert_uint_eq(nvcf__chunk_count(3 << 20, 983040), 4);
	ck_assert_uint_eq(nvcf__chunk_count(100, 0), 0);
}
END_TEST

START_TEST(test_chunk_subject_format)
{
	char out[64];

	nvcf__chunk_subject(out, sizeof(out), "res.abc.c", 12);
	ck_assert_str_eq(out, "res.abc.c.12");
}
END_TEST

START_TEST(test_digest_known_value)
{
	/* SHA-256 of "abc" (FIPS 180-2, appendix B.1). */
	static const uint8_t expected[NVCF__SHA256_LEN] = {
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea,
		0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
		0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c,
		0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
	uint8_t got[NVCF__SHA256_LEN];

	ck_assert_int_eq(nvcf__body_digest("abc", 3, got), NVCF_OK);
	ck_assert_mem_eq(got, expected, sizeof(expected));
}
END_TEST

START_TEST(test_verify_split_body)
{
	const char *body = "hello, chunked world";
	const void *parts[3] = {body, body + 5, body + 12};
	size_t lens[3] = {5, 7, 8};
	uint8_t digest[NVCF__SHA256_LEN];

	ck_assert_int_eq(nvcf__body_digest(body, 20, digest), NVCF_OK);
	ck_assert_int_eq(nvcf__body_verify(parts, lens, 3, 20, digest,
					   sizeof(digest), "test body"),
			 NVCF_OK);
}
END_TEST

START_TEST(test_verify_size_mismatch)
{
	const char *body = "hello, chunked world";
	const void *parts[2] = {body, body + 5};
	size_t lens[2] = {5, 7};
	uint8_t digest[NVCF__SHA256_LEN];

	ck_assert_int_eq(nvcf__body_digest(body, 20, digest), NVCF_OK);
	ck_assert_int_eq(nvcf__body_verify(parts, lens, 2, 20, digest,
					   sizeof(digest), "test body"),
			 NVCF_EPROTO);
	ck_assert_ptr_nonnull(strstr(nvcf_error_last()->message,
				     "test body: chunks add up to 12 bytes"));
}
END_TEST

START_TEST(test_verify_digest_mismatch)
{
	const char *body = "hello, chunked world";
	const void *parts[1] = {"hello, chunked WORLD"};
	size_t lens[1] = {20};
	uint8_t digest[NVCF__SHA256_LEN];

	ck_assert_int_eq(nvcf__body_digest(body, 20, digest), NVCF_OK);
	ck_assert_int_eq(nvcf__body_verify(parts, lens, 1, 20, digest,
					   sizeof(digest), "test body"),
			 NVCF_EPROTO);
	ck_assert_ptr_nonnull(strstr(nvcf_error_last()->message, "digest"));
}
END_TEST

START_TEST(test_verify_short_digest)
{
	const void *parts[1] = {"x"};
	size_t lens[1] = {1};
	uint8_t digest[16] = {0};

	ck_assert_int_eq(nvcf__body_verify(parts, lens, 1, 1, digest,
					   sizeof(digest), "test body"),
			 NVCF_EINVAL);
}
END_TEST

START_TEST(test_envelope_check_cases)
{
	ck_assert_int_eq(nvcf__chunk_envelope_check(100, 2, 32, 1000, "b"),
			 NVCF_OK);
	ck_assert_int_eq(nvcf__chunk_envelope_check(0, 1, 32, 1000, "b"),
			 NVCF_EINVAL);
	ck_assert_int_eq(nvcf__chunk_envelope_check(100, 0, 32, 1000, "b"),
			 NVCF_EINVAL);
	ck_assert_int_eq(nvcf__chunk_envelope_check(2, 3, 32, 1000, "b"),
			 NVCF_EINVAL);
	ck_assert_int_eq(nvcf__chunk_envelope_check(2000, 2, 32, 1000, "b"),
			 NVCF_EINVAL);
	ck_assert_ptr_nonnull(strstr(nvcf_error_last()->message,
				     "2000 bytes exceeds the limit of 1000"));
	ck_assert_int_eq(nvcf__chunk_envelope_check(100, 2, 31, 1000, "b"),
			 NVCF_EINVAL);
}
END_TEST

static Suite *chunks_suite(void)
{
	Suite *s = suite_create("chunks");
	TCase *tc = tcase_create("helpers");

	tcase_add_test(tc, test_chunk_size_leaves_headroom);
	tcase_add_test(tc, test_inline_limit_default_and_cap);
	tcase_add_test(tc, test_chunk_count_rounds_up);
	tcase_add_test(tc, test_chunk_subject_format);
	tcase_add_test(tc, test_digest_known_value);
	tcase_add_test(tc, test_verify_split_body);
	tcase_add_test(tc, test_verify_size_mismatch);
	tcase_add_test(tc, test_verify_digest_mismatch);
	tcase_add_test(tc, test_verify_short_digest);
	tcase_add_test(tc, test_envelope_check_cases);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(chunks_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
