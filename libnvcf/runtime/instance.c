/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The instance state fold; see instance.h. Exits are counted from two
 * signals because neither is enough alone: an engine restart policy can
 * restart a container between two looks (only RestartCount moves), and an
 * agent-driven restart leaves RestartCount alone (only FinishedAt moves).
 */
#include "runtime/instance.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *nvcf__instance_phase_name(nvcf__instance_phase phase)
{
	switch (phase) {
	case NVCF__INSTANCE_RUNNING:
		return "running";
	case NVCF__INSTANCE_SUCCEEDED:
		return "succeeded";
	case NVCF__INSTANCE_FAILED:
		return "failed";
	default:
		return "starting";
	}
}

const char *nvcf__instance_reason_state(nvcf__instance_reason reason)
{
	switch (reason) {
	case NVCF__REASON_IMAGE_MISSING:
		return "image-pull-issues";
	case NVCF__REASON_CREATE_ERROR:
		return "create-container-error";
	case NVCF__REASON_EXITED:
		return "failed";
	case NVCF__REASON_CRASH_LOOP:
		return "container-restart-loop";
	case NVCF__REASON_HEALTH:
	case NVCF__REASON_DEGRADED:
		return "degraded-worker";
	case NVCF__REASON_NOT_FOUND:
		return "instance-not-found";
	default:
		return "";
	}
}

/*
 * Writes the verdict's message: one formatted line, then the tail of
 * @p logs that fits. A final phase is remembered in the tracker.
 */
static void verdict(nvcf__instance_track *t, nvcf__instance_verdict *v,
		    nvcf__instance_phase phase, nvcf__instance_reason reason,
		    const char *logs, const char *fmt, ...)
	NVCF_PRINTF(6, 7);

static void verdict(nvcf__instance_track *t, nvcf__instance_verdict *v,
		    nvcf__instance_phase phase, nvcf__instance_reason reason,
		    const char *logs, const char *fmt, ...)
{
	static const char sep[] = "; last log lines:\n";
	size_t used, room, n;
	va_list ap;
	int w;

	v->phase = phase;
	v->reason = reason;
	va_start(ap, fmt);
	w = vsnprintf(v->message, sizeof(v->message), fmt, ap);
	va_end(ap);
	used = w < 0 ? 0 : (size_t)w;
	if (used >= sizeof(v->message))
		used = sizeof(v->message) - 1;
	n = logs ? strlen(logs) : 0;
	while (n > 0 && logs[n - 1] == '\n')
		n--;
	room = sizeof(v->message) - used - 1;
	if (n > 0 && room > sizeof(sep) + 16) {
		const char *tail = logs;

		memcpy(v->message + used, sep, sizeof(sep) - 1);
		used += sizeof(sep) - 1;
		room -= sizeof(sep) - 1;
		/* The last lines matter most; drop from the front. */
		if (n > room) {
			tail = logs + (n - room);
			n = room;
		}
		memcpy(v->message + used, tail, n);
		used += n;
		v->message[used] = '\0';
	}
	if (phase == NVCF__INSTANCE_FAILED ||
	    phase == NVCF__INSTANCE_SUCCEEDED) {
		t->final_phase = phase;
		t->final_reason = reason;
		t->final_exit_code = v->exit_code;
		memcpy(t->final_message, v->message, sizeof(v->message));
	}
}

/* Exits whose time lies within the window ending at @p now. */
static unsigned int recent_exits(const nvcf__instance_track *t, int64_t now,
				 int64_t window)
{
	unsigned int kept = t->exits < NVCF__INSTANCE_EXITS_KEPT ?
				    t->exits :
				    NVCF__INSTANCE_EXITS_KEPT;
	unsigned int n = 0;

	for (unsigned int i = 0; i < kept; i++)
		if (now - t->exits_us[i] <= window)
			n++;
	return n;
}

static void note_exit(nvcf__instance_track *t, int64_t now)
{
	t->exits_us[t->exits % NVCF__INSTANCE_EXITS_KEPT] = now;
	t->exits++;
}

static const char *oom_note(const nvcf__instance_track *t)
{
	return t->last_oom ? " (killed: out of memory)" : "";
}

/* Counts the exits that happened since the previous look. */
static unsigned int count_exits(nvcf__instance_track *t,
				const nvcf__docker_state *s)
{
	bool exited = s->status == NVCF__DOCKER_EXITED ||
		      s->status == NVCF__DOCKER_DEAD ||
		      s->status == NVCF__DOCKER_RESTARTING;
	const char *fin = s->finished_at ? s->finished_at : "";
	bool moved = fin[0] && strncmp(fin, t->finished_at,
				       sizeof(t->finished_at) - 1) != 0;
	unsigned int delta = s->restart_count > t->restart_count ?
				     s->restart_count - t->restart_count :
				     0;
	unsigned int n = delta + (exited && moved ? 1 : 0);

	/* A restart of an exit already counted when it was seen exited. */
	if (t->last_exited && delta > 0)
		n--;
	/*
	 * Seen running again after an engine restart, the container may
	 * report exit code 0 (podman does): keep the status of the exit seen
	 * last, or none when no look caught the container exited.
	 */
	if (n > 0 && (exited || s->exit_code != 0)) {
		t->last_exit_code = s->exit_code;
		t->last_oom = s->oom_killed;
	}
	t->restart_count = s->restart_count;
	snprintf(t->finished_at, sizeof(t->finished_at), "%s", fin);
	t->last_exited = exited;
	return n;
}

void nvcf__instance_observe(nvcf__instance_track *t,
			    const nvcf__instance_policy *p,
			    const nvcf__instance_obs *o,
			    nvcf__instance_verdict *v)
{
	const nvcf__docker_state *s = o->state;
	int64_t now = o->now_us;
	unsigned int recent;
	nvcf__probe probe;

	memset(v, 0, sizeof(*v));
	if (!t->seen) {
		t->seen = true;
		t->first_us = now;
		t->last_exit_code = -1;
	}
	if (t->final_phase == NVCF__INSTANCE_FAILED ||
	    t->final_phase == NVCF__INSTANCE_SUCCEEDED) {
		v->phase = t->final_phase;
		v->reason = t->final_reason;
		v->exit_code = t->final_exit_code;
		memcpy(v->message, t->final_message, sizeof(v->message));
		return;
	}
	if (o->image_missing) {
		v->exit_code = t->last_exit_code;
		verdict(t, v, NVCF__INSTANCE_FAILED,
			NVCF__REASON_IMAGE_MISSING, NULL,
			"image not present and not pullable: %s",
			o->create_error ? o->create_error : "no detail");
		return;
	}
	if (o->create_failed) {
		v->exit_code = t->last_exit_code;
		verdict(t, v, NVCF__INSTANCE_FAILED,
			NVCF__REASON_CREATE_ERROR, NULL,
			"container could not be created: %s",
			o->create_error ? o->create_error : "no detail");
		return;
	}
	if (!s) {
		v->exit_code = t->last_exit_code;
		if (t->was_present)
			verdict(t, v, NVCF__INSTANCE_FAILED,
				NVCF__REASON_NOT_FOUND, o->logs,
				"container vanished; it was removed outside "
				"the agent");
		else
			verdict(t, v, NVCF__INSTANCE_STARTING,
				NVCF__REASON_NONE, NULL,
				"container not created yet");
		return;
	}
	t->was_present = true;

	for (unsigned int n = count_exits(t, s); n > 0; n--)
		note_exit(t, now);
	v->exit_code = t->last_exit_code;
	recent = recent_exits(t, now, p->crash_loop_window_us);
	v->recent_exits = recent;

	if (p->restarts && p->crash_loop_exits &&
	    recent >= p->crash_loop_exits) {
		char status[64];

		if (t->last_exit_code >= 0)
			snprintf(status, sizeof(status), "%d",
				 t->last_exit_code);
		else
			snprintf(status, sizeof(status), "unknown (the "
				 "engine restarted it between two looks)");
		verdict(t, v, NVCF__INSTANCE_FAILED, NVCF__REASON_CRASH_LOOP,
			o->logs,
			"crash loop: container exited %u times within %lld s; "
			"last exit status %s%s",
			recent, (long long)(p->crash_loop_window_us / 1000000),
			status, oom_note(t));
		return;
	}

	if (t->last_exited) {
		if (p->run_to_completion && t->last_exit_code == 0) {
			verdict(t, v, NVCF__INSTANCE_SUCCEEDED,
				NVCF__REASON_NONE, NULL,
				"container exited with status 0");
		} else if (!p->restarts) {
			verdict(t, v, NVCF__INSTANCE_FAILED,
				NVCF__REASON_EXITED, o->logs,
				"container exited with status %d%s",
				t->last_exit_code, oom_note(t));
		} else {
			verdict(t, v, NVCF__INSTANCE_STARTING,
				NVCF__REASON_NONE, NULL,
				"container exited with status %d%s; waiting "
				"for a restart (%u exits within the window)",
				t->last_exit_code, oom_note(t), recent);
		}
		return;
	}

	if (s->status != NVCF__DOCKER_RUNNING) {
		verdict(t, v, NVCF__INSTANCE_STARTING, NVCF__REASON_NONE, NULL,
			"container is %s",
			nvcf__docker_status_name(s->status));
		return;
	}

	probe = o->health;
	if (probe == NVCF__PROBE_UNKNOWN &&
	    s->health == NVCF__DOCKER_HEALTH_HEALTHY)
		probe = NVCF__PROBE_OK;
	else if (probe == NVCF__PROBE_UNKNOWN &&
		 s->health == NVCF__DOCKER_HEALTH_UNHEALTHY)
		probe = NVCF__PROBE_FAILING;
	/* A task has no endpoint; running is all it can show. */
	if (probe == NVCF__PROBE_UNKNOWN && p->run_to_completion)
		probe = NVCF__PROBE_OK;

	if (probe == NVCF__PROBE_OK) {
		t->was_running = true;
		t->healthy_us = now;
		t->unhealthy_us = 0;
		verdict(t, v, NVCF__INSTANCE_RUNNING, NVCF__REASON_NONE, NULL,
			"container running and healthy");
		return;
	}
	if (t->was_running) {
		if (!t->unhealthy_us)
			t->unhealthy_us = now;
		if (p->degraded_timeout_us &&
		    now - t->unhealthy_us >= p->degraded_timeout_us) {
			verdict(t, v, NVCF__INSTANCE_FAILED,
				NVCF__REASON_DEGRADED, o->logs,
				"health check failed for %lld s after the "
				"instance was running",
				(long long)((now - t->unhealthy_us) /
					    1000000));
			return;
		}
		/* Not ready is "starting" in the pod state table too. */
		verdict(t, v, NVCF__INSTANCE_STARTING, NVCF__REASON_NONE, NULL,
			"health check failing for %lld s",
			(long long)((now - t->unhealthy_us) / 1000000));
		return;
	}
	if (now - t->first_us >= p->startup_timeout_us) {
		verdict(t, v, NVCF__INSTANCE_FAILED, NVCF__REASON_HEALTH,
			o->logs,
			"health check failed for the whole start-up bound of "
			"%lld s",
			(long long)(p->startup_timeout_us / 1000000));
		return;
	}
	verdict(t, v, NVCF__INSTANCE_STARTING, NVCF__REASON_NONE, NULL,
		"container running, health check not passed yet");
}
