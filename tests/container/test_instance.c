/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the instance state fold and the log demultiplexer. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/docker.h"
#include "runtime/instance.h"

#define SEC INT64_C(1000000)

static nvcf__docker_state st(nvcf__docker_status status, int code,
			     unsigned int restarts, const char *finished)
{
	nvcf__docker_state s = {0};

	s.status = status;
	s.exit_code = code;
	s.restart_count = restarts;
	s.finished_at = (char *)finished;
	return s;
}

static nvcf__instance_verdict look(nvcf__instance_track *t,
				   const nvcf__instance_policy *p, int64_t at,
				   const nvcf__docker_state *s,
				   nvcf__probe health, const char *logs)
{
	nvcf__instance_obs o = {.now_us = at, .state = s, .health = health,
				.logs = logs};
	nvcf__instance_verdict v;

	nvcf__instance_observe(t, p, &o, &v);
	return v;
}

START_TEST(test_demux_frames)
{
	char buf[64];
	size_t n = 0, out;

	memcpy(buf + n, "\1\0\0\0\0\0\0\6hello\n", 14);
	n += 14;
	memcpy(buf + n, "\2\0\0\0\0\0\0\4err\n", 12);
	n += 12;
	out = nvcf__docker_demux(buf, n);
	ck_assert_uint_eq(out, 10);
	ck_assert_str_eq(buf, "hello\nerr\n");
}
END_TEST

START_TEST(test_demux_leaves_raw_text)
{
	char raw[] = "plain log line\nanother\n";
	char cut[] = "\1\0\0\0\0\0\0\xffshort";

	ck_assert_uint_eq(nvcf__docker_demux(raw, strlen(raw)), strlen(raw));
	ck_assert_str_eq(raw, "plain log line\nanother\n");
	/* A frame longer than the data is not a frame sequence. */
	ck_assert_uint_eq(nvcf__docker_demux(cut, sizeof(cut) - 1),
			  sizeof(cut) - 1);
	ck_assert_uint_eq(nvcf__docker_demux(raw, 0), 0);
}
END_TEST

START_TEST(test_exit_without_restarts_fails_with_logs)
{
	nvcf__instance_policy p = NVCF__INSTANCE_POLICY_INIT;
	nvcf__instance_track t = {0};
	nvcf__docker_state run = st(NVCF__DOCKER_RUNNING, 0, 0, "");
	nvcf__docker_state ex = st(NVCF__DOCKER_EXITED, 3, 0, "T1");
	nvcf__instance_verdict v;

	p.restarts = false;
	v = look(&t, &p, 0, &run, NVCF__PROBE_FAILING, NULL);
	ck_assert_int_eq(v.phase, NVCF__INSTANCE_STARTING);
	ck_assert_int_eq(v.exit_code, -1);
	v = look(&t, &p, SEC, &ex, NVCF__PROBE_UNKNOWN, "one\nboom\n");
	ck_assert_int_eq(v.phase, NVCF__INSTANCE_FAILED);
	ck_assert_int_eq(v.reason, NVCF__REASON_EXITED);
	ck_assert_int_eq(v.exit_code, 3);
	ck_assert_str_eq(v.message, "container exited with status 3; last "
				    "log lines:\none\nboom");
	ck_assert_str_eq(nvcf__instance_reason_state(v.reason), "failed");
	/* Sticky, with the same message, even if it runs again. */
	v = look(&t, &p, 2 * SEC, &run, NVCF__PROBE_OK, NULL);
	ck_assert_int_eq(v.phase, NVCF__INSTANCE_FAILED);
	ck_assert_int_eq(v.exit_code, 3);
	ck_assert_ptr_nonnull(strstr(v.message, "boom"));
}
END_TEST

START_TEST(test_oom_is_named)
{
	nvcf__instance_policy p = NVCF__INSTANCE_POLICY_INIT;
	nvcf__instance_track t = {0};
	nvcf__docker_state ex = st(NVCF__DOCKER_EXITED, 137, 0, "T1");
	nvcf__instance_verdict v;

	p.restarts = false;
	ex.oom_killed = true;
	v = look(&t, &p, 0, &ex, NVCF__PROBE_UNKNOWN, NULL);
	ck_assert_str_eq(v.message, "container exited with status 137 "
				    "(killed: out of memory)");
}
END_TEST

START_TEST(test_task_exit_zero_succeeds)
{
	nvcf__instance_policy p = NVCF__INSTANCE_POLICY_INIT;
	nvcf__instance_track t = {0};
	nvcf__docker_state run = st(NVCF__DOCKER_RUNNING, 0, 0, "");
	nvcf__docker_state ex = st(NVCF__DOCKER_EXITED, 0, 0, "T1");
	nvcf__instance_verdict v;

	p.restarts = false;
	p.run_to_completion = true;
	v = look(&t, &p, 0, &run, NVCF__PROBE_UNKNOWN, NULL);
	ck_assert_int_eq(v.phase, NVCF__INSTANCE_RUNNING);
	v = look(&t, &p, SEC, &ex, NVCF__PROBE_UNKNOWN, NULL);
	ck_assert_int_eq(v.phase, NVCF__INSTANCE_SUCCEEDED);
	ck_assert_int_eq(v.exit_code, 0);
}
END_TEST

START_TEST(test_crash_loop_engine_restarts)
{
	nvcf__instance_policy p = NVCF__INSTANCE_POLICY_INIT;
	nvcf__instance_track t = {0};
	nvcf__docker_state a = st(NVCF__DOCKER_EXITED, 4, 0, "T1");
	nvcf__docker_state b = st(NVCF__DOCKER_RUNNING, 4, 1, "T1");
	/* Two more exits and restarts happened between looks. */
	nvcf__docker_state c = st(NVCF__DOCKER_RUNNING, 4, 3, "T3");
	nvcf__instance_verdict v;

	v = look(&t, &p, 0, &a, NVCF__PROBE_UNKNOWN, NULL);
	ck_assert_int_eq(v.phase, NVCF__INSTANCE_STARTING);
	ck_assert_uint_eq(v.recent_exits, 1);
	v = look(&t, &p, SEC, &b, NVCF__PROBE_FAILING, NULL);
	ck_assert_int_eq(v.phase, NVCF__INSTANCE_STARTING);
	ck_assert_uint_eq(v.recent_exits, 1);
	v = look(&t, &p, 2 * SEC, &c, NVCF__PROBE_FAILING, "boom\n");
	ck_assert_int_eq(v.phase, NVCF__INSTANCE_FAILED);
	ck_assert_int_eq(v.reason, NVCF__REASON_CRASH_LOOP);
	ck_assert_uint_eq(v.recent_exits, 3);
	ck_assert_str_eq(v.message, "crash loop: container exited 3 times "
				    "within 600 s; last exit status 4; last "
				    "log lines:\nboom");
	ck_assert_str_eq(nvcf__instance_reason_state(v.reason),
			 "container-restart-loop");
}
END_TEST

START_TEST(test_crash_loop_never_seen_exited)
{
	nvcf__instance_policy p = NVCF__INSTANCE_POLICY_INIT;
	nvcf__instance_track t = {0};
	nvcf__docker_state a = st(NVCF__DOCKER_RUNNING, 0, 0, "");
	/* Each look finds it running again, with podman's exit code 0. */
	nvcf__docker_state b = st(NVCF__DOCKER_RUNNING, 0, 3, "T3");
	nvcf__instance_verdict v;

	look(&t, &p, 0, &a, NVCF__PROBE_UNKNOWN, NULL);
	v = look(&t, &p, SEC, &b, NVCF__PROBE_FAILING, "boom\n");
	ck_assert_int_eq(v.phase, NVCF__INSTANCE_FAILED);
	ck_assert_int_eq(v.reason, NVCF__REASON_CRASH_LOOP);
	ck_assert_int_eq(v.exit_code, -1);
	ck_assert_str_eq(v.message, "crash loop: container exited 3 times "
				    "within 600 s; last exit status unknown "
				    "(the engine restarted it between two "
				    "looks); last log lines:\nboom");
}
END_TEST

START_TEST(test_crash_loop_agent_restarts_and_window)
{
	nvcf__instance_policy p = NVCF__INSTANCE_POLICY_INIT;
	nvcf__instance_track t = {0};
	nvcf__docker_state run1 = st(NVCF__DOCKER_RUNNING, 0, 0, "");
	nvcf__docker_state ex1 = st(NVCF__DOCKER_EXITED, 1, 0, "T1");
	nvcf__docker_state run2 = st(NVCF__DOCKER_RUNNING, 1, 0, "T1");
	nvcf__docker_state ex2 = st(NVCF__DOCKER_EXITED, 1, 0, "T2");
	nvcf__docker_state ex3 = st(NVCF__DOCKER_EXITED, 1, 0, "T3");
	nvcf__instance_verdict v;

	p.crash_loop_window_us = 60 * SEC;
	look(&t, &p, 0, &run1, NVCF__PROBE_FAILING, NULL);
	v = look(&t, &p, SEC, &ex1, NVCF__PROBE_UNKNOWN, NULL);
	ck_assert_uint_eq(v.recent_exits, 1);
	/* The same exit seen again is not a new one. */
	v = look(&t, &p, 2 * SEC, &ex1, NVCF__PROBE_UNKNOWN, NULL);
	ck_assert_uint_eq(v.recent_exits, 1);
	/* The agent started it again: RestartCount stays 0. */
	v = look(&t, &p, 3 * SEC, &run2, NVCF__PROBE_FAILING, NULL);
	ck_assert_uint_eq(v.recent_exits, 1);
	/* Outside the window the first exit no longer counts. */
	v = look(&t, &p, 100 * SEC, &ex2, NVCF__PROBE_UNKNOWN, NULL);
	ck_assert_int_eq(v.phase, NVCF__INSTANCE_STARTING);
	ck_assert_uint_eq(v.recent_exits, 1);
	v = look(&t, &p, 101 * SEC, &ex3, NVCF__PROBE_UNKNOWN, NULL);
	ck_assert_int_eq(v.phase, NVCF__INSTANCE_STARTING);
	ck_assert_uint_eq(v.recent_exits, 2);
	ck_assert_ptr_nonnull(strstr(v.message, "waiting for a restart"));
}
END_TEST

START_TEST(test_health_within_and_past_startup)
{
	nvcf__instance_policy p = NVCF__INSTANCE_POLICY_INIT;
	nvcf__instance_track t = {0};
	nvcf__docker_state run = st(NVCF__DOCKER_RUNNING, 0, 0, "");
	nvcf__instance_verdict v;

	p.startup_timeout_us = 10 * SEC;
	v = look(&t, &p, 5 * SEC, &run, NVCF__PROBE_FAILING, NULL);
	ck_assert_int_eq(v.phase, NVCF__INSTANCE_STARTING);
	v = look(&t, &p, 14 * SEC, &run, NVCF__PROBE_UNKNOWN, NULL);
	ck_assert_int_eq(v.phase, NVCF__INSTANCE_STARTING);
	v = look(&t, &p, 15 * SEC, &run, NVCF__PROBE_FAILING, "listening\n");
	ck_assert_int_eq(v.phase, NVCF__INSTANCE_FAILED);
	ck_assert_int_eq(v.reason, NVCF__REASON_HEALTH);
	ck_assert_str_eq(v.message, "health check failed for the whole "
				    "start-up bound of 10 s; last log "
				    "lines:\nlistening");
}
END_TEST

START_TEST(test_healthy_then_degraded)
{
	nvcf__instance_policy p = NVCF__INSTANCE_POLICY_INIT;
	nvcf__instance_track t = {0};
	nvcf__docker_state run = st(NVCF__DOCKER_RUNNING, 0, 0, "");
	nvcf__instance_verdict v;

	p.degraded_timeout_us = 30 * SEC;
	v = look(&t, &p, 0, &run, NVCF__PROBE_OK, NULL);
	ck_assert_int_eq(v.phase, NVCF__INSTANCE_RUNNING);
	v = look(&t, &p, 10 * SEC, &run, NVCF__PROBE_FAILING, NULL);
	ck_assert_int_eq(v.phase, NVCF__INSTANCE_STARTING);
	v = look(&t, &p, 20 * SEC, &run, NVCF__PROBE_OK, NULL);
	ck_assert_int_eq(v.phase, NVCF__INSTANCE_RUNNING);
	look(&t, &p, 30 * SEC, &run, NVCF__PROBE_FAILING, NULL);
	v = look(&t, &p, 59 * SEC, &run, NVCF__PROBE_FAILING, NULL);
	ck_assert_int_eq(v.phase, NVCF__INSTANCE_STARTING);
	v = look(&t, &p, 60 * SEC, &run, NVCF__PROBE_FAILING, NULL);
	ck_assert_int_eq(v.phase, NVCF__INSTANCE_FAILED);
	ck_assert_int_eq(v.reason, NVCF__REASON_DEGRADED);
}
END_TEST

START_TEST(test_engine_health_is_used)
{
	nvcf__instance_policy p = NVCF__INSTANCE_POLICY_INIT;
	nvcf__instance_track t = {0};
	nvcf__docker_state run = st(NVCF__DOCKER_RUNNING, 0, 0, "");
	nvcf__instance_verdict v;

	run.health = NVCF__DOCKER_HEALTH_HEALTHY;
	v = look(&t, &p, 0, &run, NVCF__PROBE_UNKNOWN, NULL);
	ck_assert_int_eq(v.phase, NVCF__INSTANCE_RUNNING);
}
END_TEST

START_TEST(test_image_missing_create_error_vanished)
{
	nvcf__instance_policy p = NVCF__INSTANCE_POLICY_INIT;
	nvcf__instance_track t = {0}, u = {0}, w = {0};
	nvcf__docker_state run = st(NVCF__DOCKER_CREATED, 0, 0, "");
	nvcf__instance_obs o = {.image_missing = true,
				.create_error = "image x is not present"};
	nvcf__instance_verdict v;

	nvcf__instance_observe(&t, &p, &o, &v);
	ck_assert_int_eq(v.phase, NVCF__INSTANCE_FAILED);
	ck_assert_int_eq(v.reason, NVCF__REASON_IMAGE_MISSING);
	ck_assert_str_eq(nvcf__instance_reason_state(v.reason),
			 "image-pull-issues");
	ck_assert_ptr_nonnull(strstr(v.message, "image x is not present"));

	o.image_missing = false;
	o.create_failed = true;
	nvcf__instance_observe(&u, &p, &o, &v);
	ck_assert_int_eq(v.reason, NVCF__REASON_CREATE_ERROR);

	v = look(&w, &p, 0, NULL, NVCF__PROBE_UNKNOWN, NULL);
	ck_assert_int_eq(v.phase, NVCF__INSTANCE_STARTING);
	v = look(&w, &p, SEC, &run, NVCF__PROBE_UNKNOWN, NULL);
	ck_assert_int_eq(v.phase, NVCF__INSTANCE_STARTING);
	ck_assert_str_eq(v.message, "container is created");
	v = look(&w, &p, 2 * SEC, NULL, NVCF__PROBE_UNKNOWN, NULL);
	ck_assert_int_eq(v.phase, NVCF__INSTANCE_FAILED);
	ck_assert_int_eq(v.reason, NVCF__REASON_NOT_FOUND);
}
END_TEST

START_TEST(test_long_logs_keep_their_end)
{
	nvcf__instance_policy p = NVCF__INSTANCE_POLICY_INIT;
	nvcf__instance_track t = {0};
	nvcf__docker_state ex = st(NVCF__DOCKER_EXITED, 2, 0, "T1");
	nvcf__instance_verdict v;
	char *logs = malloc(10000);

	ck_assert_ptr_nonnull(logs);
	memset(logs, 'a', 9990);
	strcpy(logs + 9990, "last line");
	p.restarts = false;
	v = look(&t, &p, 0, &ex, NVCF__PROBE_UNKNOWN, logs);
	ck_assert_uint_eq(strlen(v.message), sizeof(v.message) - 1);
	ck_assert_str_eq(v.message + strlen(v.message) - 9, "last line");
	free(logs);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("container-runtime");
	TCase *tc = tcase_create("unit");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_demux_frames);
	tcase_add_test(tc, test_demux_leaves_raw_text);
	tcase_add_test(tc, test_exit_without_restarts_fails_with_logs);
	tcase_add_test(tc, test_oom_is_named);
	tcase_add_test(tc, test_task_exit_zero_succeeds);
	tcase_add_test(tc, test_crash_loop_engine_restarts);
	tcase_add_test(tc, test_crash_loop_never_seen_exited);
	tcase_add_test(tc, test_crash_loop_agent_restarts_and_window);
	tcase_add_test(tc, test_health_within_and_past_startup);
	tcase_add_test(tc, test_healthy_then_degraded);
	tcase_add_test(tc, test_engine_health_is_used);
	tcase_add_test(tc, test_image_missing_create_error_vanished);
	tcase_add_test(tc, test_long_logs_keep_their_end);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
