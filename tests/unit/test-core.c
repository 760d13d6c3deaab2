/* SPDX-License-Identifier: Apache-2.0 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "auth/keys.h"
#include "bus/bus_internal.h"
#include "core/internal.h"
#include "nvcf/nvcf.h"

/* ---- status ----------------------------------------------------------- */

START_TEST(test_status_numbers_frozen)
{
	/* These numbers are ABI: a change here breaks every binding. */
	ck_assert_int_eq(NVCF_OK, 0);
	ck_assert_int_eq(NVCF_ERROR, -1);
	ck_assert_int_eq(NVCF_EINVAL, -2);
	ck_assert_int_eq(NVCF_ENOMEM, -3);
	ck_assert_int_eq(NVCF_ENOTFOUND, -4);
	ck_assert_int_eq(NVCF_EEXISTS, -5);
	ck_assert_int_eq(NVCF_ECONFLICT, -6);
	ck_assert_int_eq(NVCF_ETIMEDOUT, -7);
	ck_assert_int_eq(NVCF_EUNAVAILABLE, -8);
	ck_assert_int_eq(NVCF_EQUOTA, -9);
	ck_assert_int_eq(NVCF_EPERM, -10);
	ck_assert_int_eq(NVCF_EUNAUTHENTICATED, -11);
	ck_assert_int_eq(NVCF_EIO, -12);
	ck_assert_int_eq(NVCF_EUSER, -13);
	ck_assert_int_eq(NVCF_ECANCELED, -14);
	ck_assert_int_eq(NVCF_EPROTO, -15);
}
END_TEST

START_TEST(test_status_names)
{
	ck_assert_str_eq(nvcf_status_name(NVCF_ENOTFOUND), "NVCF_ENOTFOUND");
	ck_assert_str_eq(nvcf_status_str(NVCF_EQUOTA), "limit reached");
	ck_assert_str_eq(nvcf_status_name((nvcf_status)-999), "NVCF_UNKNOWN");
	ck_assert_str_eq(nvcf_status_str((nvcf_status)42), "unknown status");
}
END_TEST

START_TEST(test_error_last_thread_local)
{
	const nvcf_error *e;

	nvcf_error_clear();
	e = nvcf_error_last();
	ck_assert_int_eq(e->status, NVCF_OK);
	ck_assert_str_eq(e->message, "success");

	ck_assert_int_eq(nvcf__error_set_ext(NVCF_EQUOTA, 429, 10077,
					     "queue of %s is full", "v1"),
			 NVCF_EQUOTA);
	e = nvcf_error_last();
	ck_assert_int_eq(e->status, NVCF_EQUOTA);
	ck_assert_int_eq(e->http_status, 429);
	ck_assert_int_eq(e->jetstream_code, 10077);
	ck_assert_str_eq(e->message, "queue of v1 is full");
	ck_assert_uint_eq(e->version, NVCF_ERROR_VERSION);

	nvcf__error_oom();
	ck_assert_int_eq(nvcf_error_last()->status, NVCF_ENOMEM);
	ck_assert_str_eq(nvcf_error_last()->message, "out of memory");
}
END_TEST

START_TEST(test_version)
{
	ck_assert_int_eq(nvcf_version(), NVCF_VERSION_NUMBER);
	ck_assert_str_eq(nvcf_version_string(), NVCF_VERSION_STRING);
	ck_assert(NVCF_VERSION_CHECK(0, 1, 0));
	ck_assert(!NVCF_VERSION_CHECK(99, 0, 0));
}
END_TEST

/* ---- logging -------------------------------------------------------------- */

static int log_calls;
static char log_last[256];

static void record_log(nvcf_log_level_t level, const char *subsystem,
		       const char *message, void *userdata)
{
	log_calls++;
	snprintf(log_last, sizeof(log_last), "%s/%s/%s/%s",
		 nvcf_log_level_name(level), subsystem, message,
		 (const char *)userdata);
}

static int side_effects;

static int count_side_effect(void)
{
	return ++side_effects;
}

START_TEST(test_log_handler_levels)
{
	log_calls = 0;
	side_effects = 0;
	nvcf_log_info("test", "nothing installed %d", count_side_effect());
	ck_assert_int_eq(side_effects, 0);

	nvcf_log_set_handler(NVCF_LOG_INFO, record_log, "ud");
	nvcf_log_info("bus", "connected %d", 7);
	ck_assert_int_eq(log_calls, 1);
	ck_assert_str_eq(log_last, "info/bus/connected 7/ud");

	/* Above the level: not formatted, arguments not evaluated. */
	nvcf_log_debug("bus", "hidden %d", count_side_effect());
	ck_assert_int_eq(log_calls, 1);
	ck_assert_int_eq(side_effects, 0);

	nvcf_log_set_handler(NVCF_LOG_TRACE, NULL, NULL);
	nvcf_log_error("bus", "dropped");
	ck_assert_int_eq(log_calls, 1);
}
END_TEST

/* ---- identifiers and time --------------------------------------------------- */

START_TEST(test_uuid_new_valid)
{
	char a[37], b[37];

	ck_assert_int_eq(nvcf__uuid_new(a), NVCF_OK);
	ck_assert_int_eq(nvcf__uuid_new(b), NVCF_OK);
	ck_assert(nvcf__uuid_valid(a));
	ck_assert_str_ne(a, b);
	ck_assert_int_eq(a[14], '4');
	ck_assert(strchr("89ab", a[19]) != NULL);
}
END_TEST

START_TEST(test_uuid_valid_rejects)
{
	ck_assert(nvcf__uuid_valid("0b5d2a3e-6c1f-4e8a-9d2b-7f3c1a2b4c5d"));
	ck_assert(nvcf__uuid_valid("0B5D2A3E-6C1F-4E8A-9D2B-7F3C1A2B4C5D"));
	ck_assert(!nvcf__uuid_valid(NULL));
	ck_assert(!nvcf__uuid_valid(""));
	ck_assert(!nvcf__uuid_valid("not-a-uuid"));
	ck_assert(!nvcf__uuid_valid("0b5d2a3e-6c1f-4e8a-9d2b-7f3c1a2b4c5"));
	ck_assert(!nvcf__uuid_valid("0b5d2a3e-6c1f-4e8a-9d2b-7f3c1a2b4c5dd"));
	ck_assert(!nvcf__uuid_valid("0b5d2a3e06c1f-4e8a-9d2b-7f3c1a2b4c5d"));
	ck_assert(!nvcf__uuid_valid("zb5d2a3e-6c1f-4e8a-9d2b-7f3c1a2b4c5d"));
}
END_TEST

START_TEST(test_duration_parse)
{
	int64_t ms = 0;

	ck_assert_int_eq(nvcf__duration_parse("PT10S", &ms), NVCF_OK);
	ck_assert_int_eq(ms, 10000);
	ck_assert_int_eq(nvcf__duration_parse("PT1H30M", &ms), NVCF_OK);
	ck_assert_int_eq(ms, 5400000);
	ck_assert_int_eq(nvcf__duration_parse("P1DT2H", &ms), NVCF_OK);
	ck_assert_int_eq(ms, 93600000);
	ck_assert_int_eq(nvcf__duration_parse("PT0.5S", &ms), NVCF_OK);
	ck_assert_int_eq(ms, 500);
}
END_TEST

START_TEST(test_duration_parse_rejects)
{
	static const char *const bad[] = {
		"", "P", "PT", "10S", "PT10", "PTS", "PT1D", "P1H",
		"PT-1S", "PT1S2", "PTT1S", "PT1X", "PT1e400S"};
	int64_t ms = 0;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(nvcf__duration_parse(bad[i], &ms) == NVCF_EINVAL,
			      "accepted '%s'", bad[i]);
		ck_assert(strstr(nvcf_error_last()->message, bad[i]) != NULL);
	}
	ck_assert_int_eq(nvcf__duration_parse(NULL, &ms), NVCF_EINVAL);
}
END_TEST

START_TEST(test_duration_format)
{
	char out[48];

	nvcf__duration_format(10000, out);
	ck_assert_str_eq(out, "PT10S");
	nvcf__duration_format(5400000, out);
	ck_assert_str_eq(out, "PT1H30M");
	nvcf__duration_format(90500, out);
	ck_assert_str_eq(out, "PT1M30.500S");
	nvcf__duration_format(0, out);
	ck_assert_str_eq(out, "PT0S");
}
END_TEST

START_TEST(test_iso8601)
{
	char out[32];

	nvcf__iso8601(INT64_C(1763590529533000), out);
	ck_assert_str_eq(out, "2025-11-19T22:15:29.533Z");
}
END_TEST

/* ---- request rules ------------------------------------------------------------ */

START_TEST(test_poll_seconds)
{
	int s = 0;

	ck_assert_int_eq(nvcf_request_poll_seconds(NULL, &s), NVCF_OK);
	ck_assert_int_eq(s, 60);
	ck_assert_int_eq(nvcf_request_poll_seconds("5", &s), NVCF_OK);
	ck_assert_int_eq(s, 5);
	ck_assert_int_eq(nvcf_request_poll_seconds("0", &s), NVCF_OK);
	ck_assert_int_eq(s, 1);
	ck_assert_int_eq(nvcf_request_poll_seconds("3600", &s), NVCF_OK);
	ck_assert_int_eq(s, 3600);
	ck_assert_int_eq(nvcf_request_poll_seconds(" 7 ", &s), NVCF_OK);
	ck_assert_int_eq(s, 7);
}
END_TEST

START_TEST(test_poll_seconds_rejects)
{
	static const char *const bad[] = {"3601", "-1", "1.5", "abc", "",
					  "99999999999999999999", "5s"};
	int s = 0;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(nvcf_request_poll_seconds(bad[i], &s) ==
				      NVCF_EINVAL,
			      "accepted '%s'", bad[i]);
		ck_assert_int_eq(nvcf_error_last()->http_status, 400);
		ck_assert(strstr(nvcf_error_last()->message,
				 "NVCF-POLL-SECONDS") != NULL);
	}
}
END_TEST

START_TEST(test_header_forwardable)
{
	ck_assert(nvcf_request_header_forwardable("Content-Type"));
	ck_assert(nvcf_request_header_forwardable("X-Custom"));
	ck_assert(nvcf_request_header_forwardable("Accept"));
	ck_assert(!nvcf_request_header_forwardable("Authorization"));
	ck_assert(!nvcf_request_header_forwardable("authorization"));
	ck_assert(!nvcf_request_header_forwardable("Connection"));
	ck_assert(!nvcf_request_header_forwardable("Transfer-Encoding"));
	ck_assert(!nvcf_request_header_forwardable("Proxy-Authorization"));
	ck_assert(!nvcf_request_header_forwardable("NVCF-REQID"));
	ck_assert(!nvcf_request_header_forwardable("nvcf-ncaid"));
	ck_assert(!nvcf_request_header_forwardable("function-id"));
	ck_assert(!nvcf_request_header_forwardable("Host"));
	ck_assert(!nvcf_request_header_forwardable(""));
	ck_assert(!nvcf_request_header_forwardable(NULL));
}
END_TEST

START_TEST(test_status_header)
{
	ck_assert_str_eq(nvcf_request_status_header(200), "fulfilled");
	ck_assert_str_eq(nvcf_request_status_header(302), "fulfilled");
	ck_assert_str_eq(nvcf_request_status_header(202), "in-progress");
	ck_assert_str_eq(nvcf_request_status_header(404), "errored");
	ck_assert_str_eq(nvcf_request_status_header(504), "errored");
	ck_assert_str_eq(nvcf_request_status_header(100), "errored");
}
END_TEST

START_TEST(test_request_state_names)
{
	ck_assert_str_eq(nvcf_request_state_name(NVCF_REQUEST_IN_PROGRESS),
			 "in-progress");
	ck_assert_str_eq(nvcf_request_state_name(NVCF_REQUEST_TIMED_OUT),
			 "timed-out");
}
END_TEST

/* ---- keys and names ------------------------------------------------------------- */

START_TEST(test_scopes_parse)
{
	uint32_t s = 0;

	ck_assert_int_eq(nvcf__scopes_parse("all", &s), NVCF_OK);
	ck_assert_uint_eq(s, NVCF_SCOPE_ALL);
	ck_assert_int_eq(nvcf__scopes_parse("invoke_function, list_functions",
					    &s),
			 NVCF_OK);
	ck_assert_uint_eq(s, NVCF_SCOPE_INVOKE_FUNCTION |
				     NVCF_SCOPE_LIST_FUNCTIONS);
	ck_assert_int_eq(nvcf__scopes_parse("invoke_function,fly", &s),
			 NVCF_EINVAL);
	ck_assert(strstr(nvcf_error_last()->message, "'fly'") != NULL);
	ck_assert_int_eq(nvcf__scopes_parse(" , ", &s), NVCF_EINVAL);
}
END_TEST

START_TEST(test_nca_id_valid)
{
	char long_id[80];

	ck_assert(nvcf__nca_id_valid("acct-1"));
	ck_assert(nvcf__nca_id_valid("A_b"));
	ck_assert(!nvcf__nca_id_valid(""));
	ck_assert(!nvcf__nca_id_valid(NULL));
	ck_assert(!nvcf__nca_id_valid("_id"));
	ck_assert(!nvcf__nca_id_valid("a.b"));
	ck_assert(!nvcf__nca_id_valid("a b"));
	ck_assert(!nvcf__nca_id_valid("a>"));
	memset(long_id, 'a', 65);
	long_id[65] = '\0';
	ck_assert(!nvcf__nca_id_valid(long_id));
	long_id[64] = '\0';
	ck_assert(nvcf__nca_id_valid(long_id));
}
END_TEST

START_TEST(test_bearer_token)
{
	ck_assert_str_eq(nvcf__bearer_token("Bearer nvapi-x"), "nvapi-x");
	ck_assert_str_eq(nvcf__bearer_token("bearer   nvapi-y"), "nvapi-y");
	ck_assert_ptr_null(nvcf__bearer_token("Basic abc"));
	ck_assert_ptr_null(nvcf__bearer_token("Bearer "));
	ck_assert_ptr_null(nvcf__bearer_token(NULL));
}
END_TEST

START_TEST(test_key_record_parse)
{
	const char *good = "{\"ncaId\":\"acct\",\"description\":\"ci\","
			   "\"scopes\":[\"invoke_function\",\"bogus\"]}";
	nvcf__key_record rec;

	ck_assert_int_eq(nvcf__key_record_parse(good, strlen(good), &rec),
			 NVCF_OK);
	ck_assert_str_eq(rec.nca_id, "acct");
	ck_assert_str_eq(rec.subject, "ci");
	ck_assert_uint_eq(rec.scopes, NVCF_SCOPE_INVOKE_FUNCTION);
	ck_assert_int_eq(nvcf__key_record_parse("{", 1, &rec), NVCF_EPROTO);
	ck_assert_int_eq(nvcf__key_record_parse("{\"ncaId\":\"a.b\"}", 15,
						&rec),
			 NVCF_EPROTO);
}
END_TEST

START_TEST(test_token_valid_and_names)
{
	char out[160];

	ck_assert(nvcf__token_valid("local-1", 100));
	ck_assert(!nvcf__token_valid("a.b", 100));
	ck_assert(!nvcf__token_valid("a*", 100));
	ck_assert(!nvcf__token_valid("", 100));
	ck_assert(!nvcf__token_valid("abcd", 3));
	nvcf__queue_subject(out, sizeof(out), "local", "v", "r");
	ck_assert_str_eq(out, "rq.local.v.r");
	nvcf__queue_stream_name(out, sizeof(out), "local", "v");
	ck_assert_str_eq(out, "rq_local_v");
	nvcf__queue_consumer_name(out, sizeof(out), "local", "v");
	ck_assert_str_eq(out, "rq_local_v_workers");
	nvcf__result_subject(out, sizeof(out), "r");
	ck_assert_str_eq(out, "res.r");
}
END_TEST

START_TEST(test_bus_options_init)
{
	nvcf_bus_options a = NVCF_BUS_OPTIONS_INIT, b;

	memset(&b, 0xff, sizeof(b));
	ck_assert_int_eq(nvcf_bus_options_init(&b, NVCF_BUS_OPTIONS_VERSION),
			 NVCF_OK);
	ck_assert_int_eq(memcmp(&a, &b, sizeof(a)), 0);
	ck_assert_int_eq(nvcf_bus_options_init(&b, 0), NVCF_EINVAL);
	ck_assert_int_eq(nvcf_bus_options_init(&b, 99), NVCF_EINVAL);
}
END_TEST

START_TEST(test_bus_new_rejects)
{
	nvcf_bus_options o = NVCF_BUS_OPTIONS_INIT;
	nvcf_bus *bus = (nvcf_bus *)1;

	ck_assert_int_eq(nvcf_bus_new(NULL, NULL), NVCF_EINVAL);
	o.version = 42;
	ck_assert_int_eq(nvcf_bus_new(&bus, &o), NVCF_EINVAL);
	ck_assert_ptr_null(bus);
	nvcf_bus_free(NULL);
}
END_TEST

START_TEST(test_buf)
{
	nvcf__buf b = {0};

	ck_assert_int_eq(nvcf__buf_append(&b, "ab", 2), NVCF_OK);
	for (int i = 0; i < 200; i++)
		ck_assert_int_eq(nvcf__buf_printf(&b, "%03d", i), NVCF_OK);
	ck_assert_uint_eq(b.len, 602);
	ck_assert_int_eq(b.data[b.len], '\0');
	ck_assert(strncmp(b.data, "ab000001", 8) == 0);
	nvcf__buf_free(&b);
	ck_assert_ptr_null(b.data);
}
END_TEST

START_TEST(test_sha256)
{
	char hex[65];

	ck_assert_int_eq(nvcf__sha256_hex("abc", 3, hex), NVCF_OK);
	ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223"
			      "b00361a396177a9cb410ff61f20015ad");
}
END_TEST

static Suite *core_suite(void)
{
	Suite *s = suite_create("core");
	TCase *tc;

	tc = tcase_create("status");
	tcase_add_test(tc, test_status_numbers_frozen);
	tcase_add_test(tc, test_status_names);
	tcase_add_test(tc, test_error_last_thread_local);
	tcase_add_test(tc, test_version);
	suite_add_tcase(s, tc);

	tc = tcase_create("log");
	tcase_add_test(tc, test_log_handler_levels);
	suite_add_tcase(s, tc);

	tc = tcase_create("util");
	tcase_add_test(tc, test_uuid_new_valid);
	tcase_add_test(tc, test_uuid_valid_rejects);
	tcase_add_test(tc, test_duration_parse);
	tcase_add_test(tc, test_duration_parse_rejects);
	tcase_add_test(tc, test_duration_format);
	tcase_add_test(tc, test_iso8601);
	tcase_add_test(tc, test_buf);
	tcase_add_test(tc, test_sha256);
	suite_add_tcase(s, tc);

	tc = tcase_create("request");
	tcase_add_test(tc, test_poll_seconds);
	tcase_add_test(tc, test_poll_seconds_rejects);
	tcase_add_test(tc, test_header_forwardable);
	tcase_add_test(tc, test_status_header);
	tcase_add_test(tc, test_request_state_names);
	suite_add_tcase(s, tc);

	tc = tcase_create("keys");
	tcase_add_test(tc, test_scopes_parse);
	tcase_add_test(tc, test_nca_id_valid);
	tcase_add_test(tc, test_bearer_token);
	tcase_add_test(tc, test_key_record_parse);
	suite_add_tcase(s, tc);

	tc = tcase_create("bus");
	tcase_add_test(tc, test_token_valid_and_names);
	tcase_add_test(tc, test_bus_options_init);
	tcase_add_test(tc, test_bus_new_rejects);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(core_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
