# SPDX-License-Identifier: Apache-2.0
"""The custom resources binding (nvcf/crd.h)."""
import dataclasses
import glob
import json
import os
import re

import pytest

import nvcf
from nvcf import crd
from nvcf.crd import (Ack, ActionKind, AgentStatus, ICMSRequest,
                      MiniService, NVCFBackend, Observation,
                      ObservedInstance, ObservedState, Options, Phase,
                      RequestStatus)

from conftest import SOURCE

FIXTURES = os.path.join(SOURCE, "tests", "crd", "fixtures")

# 2024-05-01T12:00:00Z, the creation time of most fixtures.
T0 = 1714564800000
SEC = 1000
MIN = 60 * SEC

RUNNING = ObservedState.RUNNING
STARTING = ObservedState.STARTING


@pytest.fixture(autouse=True)
def need_crd(lib):
    if not lib.has("crd"):
        pytest.skip("this libnvcf does not export nvcf/crd.h")


def fixture_text(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as f:
        return f.read()


def load(cls, name):
    return cls.from_yaml(fixture_text(name))


def kinds(actions):
    return [a.kind for a in actions]


def step(obj, opts=None, **obs):
    """One reconcile step; returns the actions."""
    actions, status = crd.reconcile(obj, Observation(**obs), opts)
    assert status == obj.status
    return actions


def requeue_ms(actions):
    assert actions and actions[-1].kind == ActionKind.REQUEUE, actions
    return actions[-1].after_ms


_CLASSES = {"ICMSRequest": ICMSRequest, "MiniService": MiniService,
            "NVCFBackend": NVCFBackend}
_FIXTURES = sorted(os.path.basename(p)
                   for p in glob.glob(os.path.join(FIXTURES, "*.yaml")))


def test_fixtures_found():
    # an empty list would make the parametrized tests pass vacuously
    assert len(_FIXTURES) >= 12, FIXTURES


# ---- names and options -----------------------------------------------------

def test_names():
    assert [s.label for s in RequestStatus] == [
        "", "RequestPending", "RequestInProgress",
        "RequestCachingInProgress", "RequestInstancesInProgress",
        "RequestCompleted", "RequestCompletionAcknowledged",
        "RequestFailed", "RequestFailureAcknowledged"]
    assert [k.label for k in ActionKind] == [
        "ack-message", "create-instance", "delete-instance",
        "report-status", "garbage-collect", "requeue"]
    assert [s.label for s in ObservedState] == [
        "absent", "starting", "running", "succeeded", "failed",
        "terminated"]
    assert [a.label for a in Ack] == ["none", "ok", "retry", "rejected"]
    assert [p.label for p in Phase] == [
        "", "CachingInProgress", "Installing", "Installed", "Starting",
        "Running", "Completed", "InstallFailed", "Failed"]
    assert [s.label for s in AgentStatus] == ["Unknown", "Healthy",
                                              "Unhealthy"]
    assert [a.label for a in crd.IcmsAction] == [
        "RequestICMSInstances", "RequestICMSInstancesForTask",
        "TerminateInstances"]
    assert [k.label for k in crd.InstanceKind] == ["Pod", "MiniService"]
    for fn in (crd.action_name, crd.request_status_name, crd.phase_name,
               crd.agent_status_name, crd.observed_name, crd.ack_name,
               crd.icms_action_name, crd.instance_kind_name):
        assert fn(42) == "unknown"


def test_phase_observed():
    assert crd.phase_observed(Phase.INSTALLING) == STARTING
    assert crd.phase_observed(Phase.STARTING) == STARTING
    assert crd.phase_observed(Phase.RUNNING) == RUNNING
    assert crd.phase_observed(Phase.COMPLETED) == ObservedState.SUCCEEDED
    assert crd.phase_observed(Phase.INSTALL_FAILED) == ObservedState.FAILED
    assert crd.phase_observed(Phase.FAILED) == ObservedState.FAILED


def test_options_defaults_match_the_library():
    assert Options.defaults() == Options()
    assert Options().max_running_timeout_ms == 180 * MIN
    assert Options().heartbeat_timeout_ms == 600 * SEC
    with pytest.raises(ValueError,
                       match=r"invalid sync_interval_ms \(-1\)"):
        Options(sync_interval_ms=-1)._to_c()


# ---- decoding and encoding -------------------------------------------------

@pytest.mark.parametrize("name", _FIXTURES)
def test_fixture_round_trips(name):
    text = fixture_text(name)
    kind = re.search(r"^kind: (\w+)$", text, re.M).group(1)
    cls = _CLASSES[kind]
    with cls.from_yaml(text) as obj:
        assert obj.name
        assert obj.to_dict()["kind"] == kind
        first = obj.to_json()
        with cls.from_json(first) as again:
            assert again.to_json() == first
            assert again.status == obj.status
            assert again.spec == obj.spec
            assert again.metadata == obj.metadata
        with cls.from_yaml(obj.to_yaml()) as again:
            assert again.to_json() == first
            assert again.to_yaml() == obj.to_yaml()
        with cls.from_json(obj.to_dict()) as again:
            assert again.to_json() == first
    assert obj.closed


def test_icms_fields():
    with load(ICMSRequest, "icms-new.yaml") as r:
        m = r.metadata
        assert (m.name, m.namespace, m.created_ms) == ("sr-0b6e3c2a",
                                                        "nvcf-backend", T0)
        assert m.labels == {
            "icms-request-id": "5d1f0c2e-3a4b-4c5d-8e9f-0a1b2c3d4e5f",
            "nca-id": "nca-acct1-nca"}
        s = r.spec
        assert r.request_id == s.request_id == \
            "5d1f0c2e-3a4b-4c5d-8e9f-0a1b2c3d4e5f"
        assert r.action == s.action == crd.IcmsAction.REQUEST_INSTANCES
        assert (s.nca_id, s.gpu, s.instance_type, s.instance_count) == (
            "acct1", "L40S", "NCP.GPU.L40S_1x", 2)
        assert (s.gpu_specification_id, s.deployment_id, s.task_id) == (
            "gs-1", "d-1", None)
        assert s.launch_specification == {
            "containerImage": "file:///opt/echo", "inferenceUrl": "/echo",
            "inferencePort": 8000, "env": {"MODE": "fast"}}
        assert r.request_status == RequestStatus.NEW
        assert r.status.instances == []
    with load(ICMSRequest, "icms-terminate.yaml") as r:
        assert r.action == crd.IcmsAction.TERMINATE_INSTANCES
        assert r.spec.termination_instance_ids == ["0-sr-0b6e3c2a",
                                                   "1-sr-0b6e3c2a"]
        assert r.spec.nca_id is None
    with load(ICMSRequest, "icms-failure-acknowledged.yaml") as r:
        st = r.status
        assert st.request_status == RequestStatus.FAILURE_ACKNOWLEDGED
        assert st.label == "RequestFailureAcknowledged"
        assert (st.reconcile_errors, st.last_reconcile_error) == (
            1, "image not found")
        assert st.last_status_updated_ms == T0 + 5 * MIN
        assert st.instances == [crd.IcmsInstance(
            "0-sr-77aa", crd.InstanceKind.POD, "starting", "starting",
            T0 + 5 * MIN, None)]


def test_miniservice_and_backend_fields():
    with load(MiniService, "ms-new.yaml") as ms:
        assert ms.spec == crd.MiniServiceSpec(
            "sr-task1", "sr-task1", "https://charts.example/fn-0.1.0.tgz",
            "entry", 8000, {"replicas": 1, "image": {"tag": "1.0"}}, False)
        assert ms.phase == Phase.NONE
        assert ms.metadata.generation == 1
    with load(MiniService, "ms-running.yaml") as ms:
        st = ms.status
        assert (st.phase, st.label, st.observed_generation) == (
            Phase.RUNNING, "Running", 1)
        assert [c.type for c in ms.conditions] == ["InstallSuccessful",
                                                   "ObjectsHealthy"]
        assert st.condition("ObjectsHealthy").status == "True"
        assert st.condition("WorkersHealthy") is None
    with load(NVCFBackend, "backend-local.yaml") as b:
        assert b.validate() is b
        s = b.spec
        assert (b.cluster_id, s.cluster_name, s.cluster_group,
                s.region) == ("local-1", "local", "local", "local")
        assert [g.name for g in s.gpus] == ["L40S", "H100"]
        assert [g.capacity for g in s.gpus] == [8, 2]
        assert s.gpus[0].instance_types[1] == crd.InstanceType(
            "NCP.GPU.L40S_2x", "Two L40S", 2, False)
        assert b.agent_status == AgentStatus.UNKNOWN
    with load(NVCFBackend, "backend-status.yaml") as b:
        assert b.spec.attributes == ["ssd", "10"]
        assert b.status.usage("L40S") == crd.GpuUsage("L40S", 8, 3, 5)
        assert b.status.last_updated_agent_status_ms == T0


ICMS_HEAD = """apiVersion: nvca.nvcf.nvidia.io/v2beta1
kind: ICMSRequest
metadata: {name: a}
spec:
  ncaId: acct1
  action: RequestICMSInstances
  functionId: f
  functionVersionId: v
  gpu: L40S
  instanceType: NCP.GPU.L40S_1x
"""


@pytest.mark.parametrize("tail,expected", [
    ("  instanceCount: 1\n", "missing field spec.requestId"),
    ("  requestId: r\n  instanceCount: two\n",
     'ICMSRequest spec.instanceCount: expected a positive integer, '
     'got "two"'),
    ("  requestId: r\n  instanceCount: 0\n",
     "spec.instanceCount: expected a positive integer, got 0"),
    ("  requestId: r\n  instanceCount: 1\n"
     "status: {requestStatus: Done}\n", "status.requestStatus: expected"),
    ("  requestId: r\n  instanceCount: 1\n"
     "status: {lastStatusUpdated: yesterday}\n",
     "status.lastStatusUpdated: expected an RFC 3339"),
])
def test_malformed_icms_names_the_field(tail, expected):
    with pytest.raises(nvcf.InvalidArgument) as e:
        ICMSRequest.from_yaml(ICMS_HEAD + tail)
    assert expected in e.value.message
    assert e.value.status == nvcf.errors.EINVAL
    assert e.value.name == "NVCF_EINVAL"
    # the same document is fine once the field is right
    with ICMSRequest.from_yaml(ICMS_HEAD + "  requestId: r\n"
                               "  instanceCount: 1\n") as r:
        assert r.spec.instance_count == 1


def test_malformed_documents():
    with pytest.raises(nvcf.InvalidArgument) as e:
        ICMSRequest.from_yaml(fixture_text("ms-new.yaml"))
    assert e.value.message == ("wrong kind MiniService, expected "
                               "ICMSRequest")
    with pytest.raises(nvcf.InvalidArgument, match="empty YAML document"):
        MiniService.from_yaml("")
    with pytest.raises(nvcf.InvalidArgument):
        NVCFBackend.from_json("{")
    doc = fixture_text("backend-local.yaml").replace("gpuCount: 2",
                                                     "gpuCount: 9")
    with pytest.raises(nvcf.InvalidArgument) as e:
        NVCFBackend.from_yaml(doc)
    assert e.value.message.endswith(
        'spec.gpus[0].instanceTypes[1].gpuCount: expected 1 to the '
        'capacity 8 of GPU "L40S", got 9')
    with load(MiniService, "ms-new.yaml") as ms:
        d = ms.to_dict()
    del d["spec"]["helmChartConfig"]["url"]
    with pytest.raises(nvcf.InvalidArgument,
                       match=r"spec\.helmChartConfig\.url"):
        MiniService.from_json(d)


def test_object_lifetime():
    r = load(ICMSRequest, "icms-pending.yaml")
    copy = r.copy()
    r.close()
    r.close()
    assert r.closed and repr(r) == "<ICMSRequest closed>"
    with pytest.raises(ValueError, match="closed"):
        r.status
    with pytest.raises(ValueError, match="closed"):
        r.to_json()
    with pytest.raises(ValueError, match="closed"):
        step(r, now_ms=T0)
    assert copy.request_status == RequestStatus.PENDING
    assert repr(copy) == "<ICMSRequest sr-0b6e3c2a 'RequestPending'>"
    with pytest.raises(TypeError):
        ICMSRequest()
    with pytest.raises(TypeError):
        crd.reconcile("sr-0b6e3c2a", Observation(now_ms=T0))
    with pytest.raises(TypeError):
        copy.reconcile({"now_ms": T0})
    with pytest.raises(ValueError, match=r"missing instances\[0\]\.id"):
        step(copy, now_ms=T0, instances=[ObservedInstance(None)])
    copy.close()


# ---- ICMSRequest -----------------------------------------------------------

def test_icms_creation_lifecycle():
    r = load(ICMSRequest, "icms-new.yaml")
    ids = ["0-sr-0b6e3c2a", "1-sr-0b6e3c2a"]

    # "" requests the ack and waits for its result
    acts = step(r, now_ms=T0 + SEC)
    assert kinds(acts) == [ActionKind.ACK_MESSAGE, ActionKind.REQUEUE]
    assert acts[0].name == "ack-message"
    assert requeue_ms(acts) == 0
    assert r.request_status == RequestStatus.NEW

    acts = step(r, now_ms=T0 + 2 * SEC, ack=Ack.OK)
    assert kinds(acts) == [ActionKind.REQUEUE]
    assert requeue_ms(acts) == 0
    assert r.request_status == RequestStatus.PENDING
    assert r.status.last_ack_ms == T0 + 2 * SEC

    acts = step(r, now_ms=T0 + 3 * SEC)
    assert r.request_status == RequestStatus.IN_PROGRESS
    assert [(a.kind, a.instance_id, a.index, a.miniservice)
            for a in acts[:2]] == [
        (ActionKind.CREATE_INSTANCE, ids[0], 0, False),
        (ActionKind.CREATE_INSTANCE, ids[1], 1, False)]
    assert [(a.kind, a.instance_id, a.state) for a in acts[2:4]] == [
        (ActionKind.REPORT_STATUS, ids[0], "starting"),
        (ActionKind.REPORT_STATUS, ids[1], "starting")]
    assert len(acts) == 5
    assert requeue_ms(acts) == 0
    assert [(i.id, i.status, i.last_reported_status)
            for i in r.instances] == [(ids[0], "starting", "starting"),
                                      (ids[1], "starting", "starting")]

    # the agent stores the object between steps: continue from its JSON
    stored = r.to_json()
    r.close()
    r = ICMSRequest.from_json(stored)

    both = [ObservedInstance(i, STARTING) for i in ids]
    acts = step(r, now_ms=T0 + 4 * SEC, instances=both)
    assert kinds(acts) == [ActionKind.REQUEUE]
    assert r.request_status == RequestStatus.INSTANCES_IN_PROGRESS

    first_running = [ObservedInstance(ids[0], RUNNING),
                     ObservedInstance(ids[1], STARTING)]
    acts = step(r, now_ms=T0 + 5 * SEC, instances=first_running)
    assert r.request_status == RequestStatus.INSTANCES_IN_PROGRESS
    assert [(a.kind, a.instance_id, a.state) for a in acts] == [
        (ActionKind.REPORT_STATUS, ids[0], "running"),
        (ActionKind.REQUEUE, None, None)]
    assert requeue_ms(acts) == 15 * SEC

    both = [ObservedInstance(i, RUNNING) for i in ids]
    acts = step(r, now_ms=T0 + 6 * SEC, instances=both)
    assert r.request_status == RequestStatus.COMPLETED
    assert [(a.kind, a.instance_id, a.state) for a in acts] == [
        (ActionKind.REPORT_STATUS, ids[1], "running"),
        (ActionKind.REQUEUE, None, None)]
    assert r.status.last_status_updated_ms == T0 + 6 * SEC

    acts = step(r, now_ms=T0 + 7 * SEC, instances=both)
    assert r.request_status == RequestStatus.COMPLETION_ACKNOWLEDGED
    assert kinds(acts) == [ActionKind.REQUEUE]
    assert requeue_ms(acts) == 0

    # nothing changes while the instances run
    acts = step(r, now_ms=T0 + 8 * SEC, instances=both)
    assert kinds(acts) == [ActionKind.REQUEUE]
    assert requeue_ms(acts) == 15 * SEC

    # once terminated and reported, the object is garbage collected
    terminated = [ObservedInstance(i, ObservedState.TERMINATED)
                  for i in ids]
    acts = step(r, now_ms=T0 + 9 * SEC, instances=terminated)
    assert [(a.kind, a.state) for a in acts[:2]] == [
        (ActionKind.REPORT_STATUS, "terminated")] * 2
    acts = step(r, now_ms=T0 + 10 * SEC, instances=terminated)
    assert kinds(acts) == [ActionKind.GARBAGE_COLLECT]
    assert acts[0].name == "garbage-collect"
    r.close()


def test_icms_instance_failure_and_errors():
    opts = Options(failure_requeue_ms=5 * SEC)
    with load(ICMSRequest, "icms-in-progress.yaml") as r:
        ids = [i.id for i in r.instances]
        # a retryable error counts and requeues after failure_requeue_ms
        acts = step(r, opts, now_ms=T0 + MIN, error="runtime busy")
        assert kinds(acts) == [ActionKind.REQUEUE]
        assert requeue_ms(acts) == 5 * SEC
        assert (r.status.reconcile_errors,
                r.status.last_reconcile_error) == (1, "runtime busy")
        assert r.request_status == RequestStatus.IN_PROGRESS

        seen = [ObservedInstance(ids[0], RUNNING),
                ObservedInstance(ids[1], ObservedState.FAILED,
                                 "image pull failed")]
        acts = step(r, opts, now_ms=T0 + 2 * MIN, instances=seen)
        assert r.request_status == RequestStatus.FAILED
        assert r.status.last_reconcile_error == "an instance failed"
        assert (acts[0].kind, acts[0].instance_id, acts[0].reason) == (
            ActionKind.DELETE_INSTANCE, ids[1], "image pull failed")
        failed = r.instances[1]
        assert (failed.status, failed.reason) == ("terminated",
                                                  "image pull failed")
        acts = step(r, opts, now_ms=T0 + 3 * MIN, instances=seen)
        assert r.request_status == RequestStatus.FAILURE_ACKNOWLEDGED


def test_icms_terminal_error_fails_request():
    with load(ICMSRequest, "icms-task-helm.yaml") as r:
        acts = step(r, now_ms=T0, error="no such chart",
                    error_terminal=True)
        assert r.request_status == RequestStatus.FAILED
        # the owed MiniService instance is reported as a placeholder
        assert [(a.kind, a.instance_id) for a in acts[:-1]] == [
            (ActionKind.REPORT_STATUS, "sr-task1-miniservice")]
        assert r.instances[0].kind == crd.InstanceKind.MINISERVICE
        # a request without creationTimestamp takes the step's time
        assert r.metadata.created_ms == T0


def test_icms_termination():
    with load(ICMSRequest, "icms-terminate.yaml") as r:
        ids = r.spec.termination_instance_ids
        acts = step(r, now_ms=T0)
        assert kinds(acts) == [ActionKind.ACK_MESSAGE, ActionKind.REQUEUE]
        assert r.request_status == RequestStatus.PENDING
        acts = step(r, now_ms=T0 + SEC)
        assert r.request_status == RequestStatus.IN_PROGRESS
        assert [(a.kind, a.instance_id, a.reason) for a in acts[:2]] == [
            (ActionKind.DELETE_INSTANCE, i, "instance-terminated-by-user")
            for i in ids]
        assert [(a.kind, a.state) for a in acts[2:4]] == [
            (ActionKind.REPORT_STATUS, "terminated")] * 2
        step(r, now_ms=T0 + 2 * SEC)
        assert r.request_status == RequestStatus.COMPLETED
        step(r, now_ms=T0 + 3 * SEC)
        assert r.request_status == RequestStatus.COMPLETION_ACKNOWLEDGED
        acts = step(r, now_ms=T0 + 4 * SEC)
        assert kinds(acts) == [ActionKind.GARBAGE_COLLECT]


# ---- MiniService -----------------------------------------------------------

def test_miniservice_phases():
    opts = Options(failure_backoff_ms=10 * SEC, failure_requeue_ms=2 * SEC)
    pod = "entry-0"
    with load(MiniService, "ms-new.yaml") as ms:
        acts = step(ms, opts, now_ms=T0)
        assert [(a.kind, a.instance_id, a.miniservice) for a in acts] == [
            (ActionKind.CREATE_INSTANCE, "sr-task1-miniservice", True),
            (ActionKind.REQUEUE, None, False)]
        assert ms.phase == Phase.INSTALLING
        assert ms.status.observed_generation == 1

        # nothing observed yet: still installing
        acts = step(ms, opts, now_ms=T0 + SEC)
        assert ms.phase == Phase.INSTALLING
        assert requeue_ms(acts) == 15 * SEC

        starting = [ObservedInstance(pod, STARTING)]
        step(ms, opts, now_ms=T0 + 2 * SEC, instances=starting)
        assert ms.phase == Phase.INSTALLED
        assert ms.status.condition("InstallSuccessful").status == "True"

        step(ms, opts, now_ms=T0 + 3 * SEC, instances=starting)
        assert ms.phase == Phase.STARTING
        c = ms.status.condition("ObjectsHealthy")
        assert (c.status, c.reason) == ("False", "WaitingOnObjectReadiness")

        running = [ObservedInstance(pod, RUNNING)]
        acts = step(ms, opts, now_ms=T0 + 4 * SEC, instances=running)
        assert ms.phase == Phase.RUNNING
        assert requeue_ms(acts) == 0
        assert ms.status.last_phase_transition_ms == T0 + 4 * SEC
        assert ms.status.condition("ObjectsHealthy").status == "True"

        # a failed pod is tolerated for failure_backoff_ms ...
        failed = [ObservedInstance(pod, ObservedState.FAILED, "OOMKilled")]
        acts = step(ms, opts, now_ms=T0 + 5 * SEC, instances=failed)
        assert ms.phase == Phase.RUNNING
        assert requeue_ms(acts) == 2 * SEC
        c = ms.status.condition("ObjectsHealthy")
        assert (c.status, c.reason, c.message) == (
            "False", "ObjectsFailedWithinBackoffTimeout", "OOMKilled")
        assert c.last_transition_ms == T0 + 5 * SEC

        # ... then a service that ran has Failed, a sink
        acts = step(ms, opts, now_ms=T0 + 15 * SEC, instances=failed)
        assert ms.phase == Phase.FAILED
        assert acts == []
        c = ms.status.condition("WorkersHealthy")
        assert (c.status, c.reason) == ("False", "ObjectsFailed")
        assert step(ms, opts, now_ms=T0 + 20 * SEC, instances=running) == []
        assert ms.phase == Phase.FAILED


def test_miniservice_new_generation_reinstalls():
    with load(MiniService, "ms-running.yaml") as ms:
        doc = ms.to_dict()
    doc["metadata"]["generation"] = 2
    with MiniService.from_json(doc) as ms:
        acts = step(ms, now_ms=T0)
        assert ms.phase == Phase.INSTALLING
        assert (ms.status.revision, ms.status.observed_generation) == (1, 2)
        assert kinds(acts) == [ActionKind.CREATE_INSTANCE,
                               ActionKind.REQUEUE]


def test_miniservice_task_completes():
    with load(MiniService, "ms-new.yaml") as ms:
        doc = ms.to_dict()
    doc["spec"]["isTask"] = True
    with MiniService.from_json(json.dumps(doc)) as ms:
        assert ms.spec.is_task
        step(ms, now_ms=T0)
        done = [ObservedInstance("job-0", ObservedState.SUCCEEDED)]
        step(ms, now_ms=T0 + SEC, instances=done)
        assert ms.phase == Phase.INSTALLED
        acts = step(ms, now_ms=T0 + 2 * SEC, instances=done)
        assert ms.phase == Phase.COMPLETED
        assert acts == []
        assert crd.phase_observed(ms.phase) == ObservedState.SUCCEEDED


# ---- NVCFBackend -----------------------------------------------------------

def test_backend_health_from_heartbeat_age():
    with load(NVCFBackend, "backend-local.yaml") as b:
        acts = step(b, now_ms=T0)
        assert b.agent_status == AgentStatus.UNKNOWN
        assert kinds(acts) == [ActionKind.REPORT_STATUS, ActionKind.REQUEUE]
        assert requeue_ms(acts) == 15 * SEC
        assert [u.gpu for u in b.status.gpu_usage] == ["L40S", "H100"]

        alloc = {"L40S": 3, "H100": 5}
        acts, status = crd.reconcile(b, Observation(
            now_ms=T0, heartbeat_ms=T0 - 5 * SEC, allocations=alloc))
        assert status.agent_status == AgentStatus.HEALTHY
        assert status.label == "Healthy"
        assert status.last_updated_agent_status_ms == T0
        assert status.usage("L40S") == crd.GpuUsage("L40S", 8, 3, 5)
        # over-allocation never gives a negative availability
        assert status.usage("H100") == crd.GpuUsage("H100", 2, 5, 0)
        assert kinds(acts) == [ActionKind.REPORT_STATUS, ActionKind.REQUEUE]

        # unchanged: only the requeue; allocations as a list work too
        acts = step(b, now_ms=T0 + SEC, heartbeat_ms=T0,
                    allocations=[crd.GpuAllocation("L40S", 3),
                                 crd.GpuAllocation("H100", 5)])
        assert kinds(acts) == [ActionKind.REQUEUE]

        # the heartbeat ages past heartbeat_timeout_ms
        opts = Options(heartbeat_timeout_ms=30 * SEC)
        acts = step(b, opts, now_ms=T0 + 29 * SEC, heartbeat_ms=T0,
                    allocations=alloc)
        assert b.agent_status == AgentStatus.HEALTHY
        assert kinds(acts) == [ActionKind.REQUEUE]
        acts = step(b, opts, now_ms=T0 + 30 * SEC, heartbeat_ms=T0,
                    allocations=alloc)
        assert b.agent_status == AgentStatus.UNHEALTHY
        assert b.status.last_updated_agent_status_ms == T0 + 30 * SEC
        assert kinds(acts) == [ActionKind.REPORT_STATUS, ActionKind.REQUEUE]

        # a fresh heartbeat makes it healthy again
        step(b, opts, now_ms=T0 + 31 * SEC, heartbeat_ms=T0 + 31 * SEC,
             allocations=alloc)
        assert b.agent_status == AgentStatus.HEALTHY
        with pytest.raises(ValueError, match="invalid allocations"):
            step(b, now_ms=T0, allocations={"L40S": -1})


def test_status_is_a_copy():
    with load(NVCFBackend, "backend-local.yaml") as b:
        before = b.status
        step(b, now_ms=T0, heartbeat_ms=T0)
        assert before.agent_status == AgentStatus.UNKNOWN
        assert b.status.agent_status == AgentStatus.HEALTHY
        with pytest.raises(dataclasses.FrozenInstanceError):
            before.agent_status = AgentStatus.HEALTHY
