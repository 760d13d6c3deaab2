"""nvca keeps one ICMSRequest per order in KV nvca_{clusterId} and
reconciles it: creation, refusal, termination, garbage collection, and a
restart that adopts the instances still running."""

import os
import signal
import sys
import time
import uuid

import pytest

import nvcfstack
from nvcfstack import http, wait_for

sys.path.insert(0, os.path.dirname(__file__))
import natskv  # noqa: E402

BUCKET = "nvca_local-1"
API_VERSION = "nvca.nvcf.nvidia.io/v2beta1"


@pytest.fixture(scope="module")
def stack():
    s = nvcfstack.Stack(api=True, gateway=True, nvca=True, ack_wait_ms=2000,
                        nvca_args=["--reconcile-ms", "200"])
    s.start()
    yield s
    s.stop()


@pytest.fixture
def kv(stack):
    c = natskv.Client(stack.nats_url)
    yield c
    c.close()


def instances(kv, vid):
    return kv.records("nvcf_instances", vid + ".")


def running(kv, vid, count):
    recs = [r for r in instances(kv, vid) if r["instanceStatus"] == "RUNNING"]
    return recs if len(recs) == count else None


def icms(kv, name):
    return kv.get(BUCKET, "icms." + name)


def icms_in(kv, name, *states):
    rec = icms(kv, name)
    if rec and rec.get("status", {}).get("requestStatus") in states:
        return rec
    return None


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open("/proc/%d/stat" % pid) as f:
        return f.read().split(")")[-1].split()[0] != "Z"


def allocated(kv, gpu):
    for g in kv.get("nvcf_clusters", "local-1")["gpus"]:
        if g["name"] == gpu:
            return g["allocated"]
    raise AssertionError("no GPU %s in the cluster record" % gpu)


def undeploy(s, fid, vid):
    r = http("DELETE", "%s/v2/nvcf/deployments/functions/%s/versions/%s" % (
        s.api_url, fid, vid), key=s.admin_key)
    assert r.status == 200, r


def all_terminated(kv, vid):
    recs = instances(kv, vid)
    return recs and all(r["instanceStatus"] in ("TERMINATED", "ERRORED")
                        for r in recs)


def test_creation_lifecycle_then_collected(stack, kv):
    fn = nvcfstack.create_function(stack, stack.admin_key, name="icms-life")
    fid, vid = fn["id"], fn["versionId"]
    nvcfstack.deploy(stack, stack.admin_key, fid, vid, min=2, max=2,
                     concurrency=3)
    recs = wait_for(lambda: running(kv, vid, 2), what="2 RUNNING")
    name = recs[0]["icmsRequestId"]
    assert {r["icmsRequestId"] for r in recs} == {name}
    assert sorted(r["instanceId"] for r in recs) == \
        ["0-" + name, "1-" + name]

    obj = wait_for(lambda: icms_in(kv, name, "RequestCompletionAcknowledged"),
                   what="RequestCompletionAcknowledged")
    assert obj["apiVersion"] == API_VERSION
    assert obj["kind"] == "ICMSRequest"
    assert obj["metadata"]["name"] == name
    spec = obj["spec"]
    assert spec["requestId"] == name
    assert spec["action"] == "RequestICMSInstances"
    assert spec["instanceCount"] == 2
    assert spec["gpu"] == "L40S"
    assert spec["instanceType"] == "NCP.GPU.L40S_1x"
    assert spec["functionId"] == fid
    assert spec["functionVersionId"] == vid
    assert spec["ncaId"] == "admin-acct"
    assert spec["functionLaunchSpecification"]["containerImage"] == \
        "file://" + nvcfstack.PYECHO
    assert spec["functionLaunchSpecification"]["maxRequestConcurrency"] == 3
    status = obj["status"]
    assert set(status["instances"]) == {"0-" + name, "1-" + name}
    for inst in status["instances"].values():
        assert inst["status"] == "running"
        assert inst["lastReportedStatus"] == "running"
        assert inst["instanceType"] == "Pod"
    assert "lastACKTimestamp" in status

    undeploy(stack, fid, vid)
    wait_for(lambda: all_terminated(kv, vid), what="instances TERMINATED")
    assert [r["instanceStatus"] for r in instances(kv, vid)] == \
        ["TERMINATED", "TERMINATED"]
    # Creation and termination requests are both done and deleted.
    wait_for(lambda: icms(kv, name) is None, what="creation request GC")
    wait_for(lambda: not kv.records(BUCKET, "icms.terminate-"),
             what="termination request GC")
    for r in recs:
        wait_for(lambda: not pid_alive(r["pid"]), what="function gone")


def test_refusal_is_recorded_with_its_reason(stack, kv):
    fn = nvcfstack.create_function(stack, stack.admin_key, name="icms-big")
    fid, vid = fn["id"], fn["versionId"]
    before = allocated(kv, "H100")
    assert before == 0
    nvcfstack.deploy(stack, stack.admin_key, fid, vid, min=3, max=3,
                     gpu="H100", instance_type="NCP.GPU.H100_1x",
                     wait_active=False)
    recs = wait_for(lambda: running(kv, vid, 2), what="2 RUNNING")
    name = recs[0]["icmsRequestId"]
    obj = wait_for(lambda: icms_in(kv, name, "RequestFailureAcknowledged"),
                   what="RequestFailureAcknowledged")
    status = obj["status"]
    assert status["lastReconcileError"] == (
        "insufficient capacity: 1 of 3 instances of NCP.GPU.H100_1x did "
        "not fit (0 of 2 H100 GPUs free, 1 needed each)")
    assert status["reconcileErrors"] == 1
    assert obj["spec"]["instanceCount"] == 3
    # Only the instances really created are listed.
    assert set(status["instances"]) == {"0-" + name, "1-" + name}
    assert len(instances(kv, vid)) == 2
    wait_for(lambda: allocated(kv, "H100") == 2, what="2 H100 allocated")

    undeploy(stack, fid, vid)
    wait_for(lambda: all_terminated(kv, vid), what="instances TERMINATED")
    wait_for(lambda: allocated(kv, "H100") == 0, what="H100 freed")
    # A refusal stays readable for the retention window.
    obj = icms(kv, name)
    assert obj is not None
    assert obj["status"]["requestStatus"] == "RequestFailureAcknowledged"
    assert obj["status"]["lastReconcileError"].startswith(
        "insufficient capacity: 1 of 3")


def test_kill_9_restart_adopts_running_instances(stack, kv):
    fn = nvcfstack.create_function(stack, stack.admin_key, name="icms-adopt")
    fid, vid = fn["id"], fn["versionId"]
    base = allocated(kv, "L40S")
    nvcfstack.deploy(stack, stack.admin_key, fid, vid, min=2, max=2,
                     instance_type="NCP.GPU.L40S_2x")
    recs = wait_for(lambda: running(kv, vid, 2), what="2 RUNNING")
    wait_for(lambda: allocated(kv, "L40S") == base + 4, what="4 allocated")
    by_id = {r["instanceId"]: r for r in recs}

    stack.kill("nvca", signal.SIGKILL)
    for r in recs:
        assert pid_alive(r["pid"])
        assert pid_alive(r["workerPid"])
    stack.start_daemon("nvca")
    wait_for(lambda: stack.log("nvca").count("adopted RUNNING instance") >= 2,
             what="2 instances adopted")
    now = instances(kv, vid)
    assert len(now) == 2
    for r in now:
        old = by_id[r["instanceId"]]
        assert r["instanceStatus"] == "RUNNING"
        assert (r["pid"], r["workerPid"], r["port"], r["gpus"]) == \
            (old["pid"], old["workerPid"], old["port"], old["gpus"])
    wait_for(lambda: allocated(kv, "L40S") == base + 4, what="4 allocated")
    r = http("POST", "%s/v2/nvcf/pexec/functions/%s" % (
        stack.invoke_url, fid), key=stack.admin_key, json_body={"x": 1})
    assert r.status == 200, r

    # Down again; one function dies meanwhile: it is reported, not kept.
    stack.kill("nvca", signal.SIGKILL)
    dead, kept = recs
    os.killpg(dead["pid"], signal.SIGKILL)
    wait_for(lambda: not pid_alive(dead["pid"]), what="function dead")
    stack.start_daemon("nvca")

    def dead_errored():
        rec = kv.get("nvcf_instances", vid + "." + dead["instanceId"])
        return rec if rec["instanceStatus"] == "ERRORED" else None
    rec = wait_for(dead_errored, what="dead instance ERRORED")
    assert rec["error"] == "function process ended while nvca was down"
    wait_for(lambda: not pid_alive(dead["workerPid"]),
             what="worker of the dead function stopped")
    wait_for(lambda: allocated(kv, "L40S") == base + 2, what="2 allocated")
    assert kv.get("nvcf_instances", vid + "." + kept["instanceId"])[
        "instanceStatus"] == "RUNNING"
    assert len(instances(kv, vid)) == 2

    # An adopted instance that dies while the agent runs is noticed too.
    os.killpg(kept["pid"], signal.SIGKILL)

    def kept_errored():
        rec = kv.get("nvcf_instances", vid + "." + kept["instanceId"])
        return rec if rec["instanceStatus"] == "ERRORED" else None
    rec = wait_for(kept_errored, what="adopted instance ERRORED")
    assert rec["error"].startswith("function process (pid %d) ended" %
                                   kept["pid"])
    wait_for(lambda: allocated(kv, "L40S") == base, what="GPUs freed")
    wait_for(lambda: not pid_alive(kept["workerPid"]), what="worker gone")
    undeploy(stack, fid, vid)


def stored(name, status, action="RequestICMSInstances", spec=None,
           created="2024-05-01T12:00:00Z"):
    obj = {"apiVersion": API_VERSION, "kind": "ICMSRequest",
           "metadata": {"name": name, "creationTimestamp": created},
           "spec": {"requestId": name, "action": action}}
    if action == "RequestICMSInstances":
        obj["spec"].update({
            "ncaId": "admin-acct", "functionId": str(uuid.uuid4()),
            "functionVersionId": str(uuid.uuid4()), "gpu": "L40S",
            "instanceType": "NCP.GPU.L40S_1x", "instanceCount": 1})
    obj["spec"].update(spec or {})
    if status is not None:
        obj["status"] = status
    return obj


def test_stored_objects_are_picked_up_at_start(stack, kv):
    fn = nvcfstack.create_function(stack, stack.admin_key, name="icms-load")
    fid, vid = fn["id"], fn["versionId"]
    nvcfstack.deploy(stack, stack.admin_key, fid, vid)
    first = wait_for(lambda: running(kv, vid, 1), what="RUNNING")[0]
    launch = http("GET", "%s/v2/nvcf/functions/%s/versions/%s" % (
        stack.api_url, fid, vid), key=stack.admin_key).json()["function"]
    # A graceful stop ends the instances, so none is adopted below.
    stack.kill("nvca", signal.SIGTERM)
    assert running(kv, vid, 0) is not None

    old = "2024-05-01T12:05:00Z"
    recent = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    objs = {
        "load-new": stored("load-new", None),
        "load-pending": stored(
            "load-pending", {"requestStatus": "RequestPending",
                             "lastStatusUpdated": recent},
            spec={"functionId": fid, "functionVersionId": vid,
                  "functionLaunchSpecification": launch},
            created=recent),
        "load-done": stored(
            "load-done", {"requestStatus": "RequestCompletionAcknowledged",
                          "lastStatusUpdated": old,
                          "instances": {"0-load-done": {
                              "id": "0-load-done", "instanceType": "Pod",
                              "status": "running",
                              "lastReportedStatus": "running",
                              "lastReportedTimestamp": old}}}),
        "load-failed": stored(
            "load-failed", {"requestStatus": "RequestFailureAcknowledged",
                            "lastStatusUpdated": old,
                            "lastReconcileError": "image not found"}),
        "load-term": stored(
            "load-term", {"requestStatus": "RequestPending",
                          "lastStatusUpdated": old},
            action="TerminateInstances",
            spec={"terminationMsgInfo": {"instanceIds": ["gone-1"]}}),
    }
    for name, obj in objs.items():
        kv.put(BUCKET, "icms." + name, obj)
    kv.put(BUCKET, "icms.load-bad", {"kind": "Nothing"})
    stack.start_daemon("nvca")

    # Never acked and older than the ack retry timeout: it fails.
    obj = wait_for(lambda: icms_in(kv, "load-new",
                                   "RequestFailureAcknowledged"),
                   what="load-new failed")
    assert obj["status"]["lastReconcileError"] == (
        "the order message could not be acked within the ack retry "
        "timeout")
    # Acked before the restart: its instance is created now.
    rec = wait_for(lambda: running(kv, vid, 1),
                   what="load-pending RUNNING")[0]
    assert rec["instanceId"] == "0-load-pending"
    assert rec["icmsRequestId"] == "load-pending"
    assert kv.get("nvcf_instances", vid + "." + first["instanceId"])[
        "instanceStatus"] == "TERMINATED"
    wait_for(lambda: icms_in(kv, "load-pending",
                             "RequestCompletionAcknowledged"),
             what="load-pending complete")
    # Its instance is gone: reported terminated, then collected.
    wait_for(lambda: icms(kv, "load-done") is None, what="load-done GC")
    # Failed long ago: past the retention window, collected.
    wait_for(lambda: icms(kv, "load-failed") is None, what="load-failed GC")
    wait_for(lambda: icms(kv, "load-term") is None, what="load-term GC")
    # Not an ICMSRequest: left alone.
    assert icms(kv, "load-bad") == {"kind": "Nothing"}
    assert "is no ICMSRequest" in stack.log("nvca")

    undeploy(stack, fid, vid)
    wait_for(lambda: all_terminated(kv, vid), what="instance TERMINATED")
    wait_for(lambda: icms(kv, "load-pending") is None,
             what="load-pending GC")
