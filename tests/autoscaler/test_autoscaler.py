"""End-to-end tests of nvcf-autoscaler: scale to zero and back, bursts,
leases across replicas, PATCHed bounds, and requests that wait at zero
across a nats-server restart."""

import base64
import glob
import json
import os
import signal
import sys
import threading
import time

import pytest

import nvcfstack
from nvcfstack import http, wait_for

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "agent"))
import natskv  # noqa: E402

IDLE_MS = 1500
ARGS = ["--tick-ms", "100", "--idle-to-zero-ms", str(IDLE_MS),
        "--scale-down-window-ms", "300", "--lease-ms", "1500"]


@pytest.fixture(scope="module")
def stack():
    s = nvcfstack.Stack(autoscalers=2, autoscaler_args=ARGS,
                        ack_wait_ms=5000)
    s.start()
    yield s
    s.stop()


def kv(s):
    return natskv.Client(s.nats_url)


def instances(s, vid):
    c = kv(s)
    try:
        return c.records("nvcf_instances", vid + ".")
    finally:
        c.close()


def count(s, vid, status):
    return sum(1 for r in instances(s, vid) if r["instanceStatus"] == status)


def live(s, vid):
    return sum(1 for r in instances(s, vid)
               if r["instanceStatus"] in ("STARTING", "RUNNING"))


def invoke(s, fid, body=None, poll=None, timeout=60):
    headers = {"NVCF-POLL-SECONDS": str(poll)} if poll else None
    return http("POST", "%s/v2/nvcf/pexec/functions/%s" % (s.invoke_url, fid),
                key=s.admin_key, json_body=body or {}, headers=headers,
                timeout=timeout)


def echoed(r):
    """The JSON body the echo function received, from its answer."""
    return json.loads(r.json()["body"])


def poll_until_done(s, reqid, timeout=60):
    def done():
        r = http("GET", "%s/v2/nvcf/pexec/status/%s" % (s.invoke_url, reqid),
                 key=s.admin_key, timeout=30)
        assert r.status in (200, 202), r
        return r if r.status == 200 else None
    return wait_for(done, timeout=timeout, interval=0.2,
                    what="result of request %s" % reqid)


def served_counts(s):
    """How many times each request id reached a function process."""
    seen = {}
    for path in glob.glob(os.path.join(s.dir, "nvca", "instances", "*.log")):
        with open(path, errors="replace") as f:
            for line in f:
                if line.startswith("pyecho: started ") and \
                        not line.startswith("pyecho: started -"):
                    rid = line.split()[2]
                    seen[rid] = seen.get(rid, 0) + 1
    return seen


def deploy_zero(s, name, max=1, concurrency=1):
    fn = nvcfstack.create_function(s, s.admin_key, name=name)
    dep = nvcfstack.deploy(s, s.admin_key, fn["id"], fn["versionId"], min=0,
                           max=max, concurrency=concurrency,
                           wait_active=False)
    # With minInstances 0 a deployment is ACTIVE at once, with nothing up.
    assert dep["functionStatus"] == "ACTIVE", dep
    return fn, dep


def lease_holder(s, vid):
    """The replica id stored in the version's lease, or None."""
    c = kv(s)
    try:
        r = c.request("$JS.API.STREAM.MSG.GET.KV_nvcf_leases",
                      {"last_by_subj": "$KV.nvcf_leases.%s" % vid})
    finally:
        c.close()
    msg = r.get("message")
    if not msg or not msg.get("data"):
        return None
    return base64.b64decode(msg["data"]).decode()


def test_zero_wake_and_back_to_zero(stack):
    fn, _ = deploy_zero(stack, "zero")
    fid, vid = fn["id"], fn["versionId"]
    # Nothing starts while nothing is asked.
    time.sleep(IDLE_MS / 1000 + 0.5)
    assert live(stack, vid) == 0

    # The first request waits inside its window while an instance starts.
    started = time.monotonic()
    r = invoke(stack, fid, {"n": 1}, poll=30)
    assert r.status == 200, r
    assert echoed(r) == {"n": 1}
    assert time.monotonic() - started < 15
    assert count(stack, vid, "RUNNING") == 1

    # Idle for the window: back to zero, the instance terminated.
    wait_for(lambda: live(stack, vid) == 0, timeout=IDLE_MS / 1000 + 10,
             what="version back at zero instances")
    assert count(stack, vid, "TERMINATED") >= 1
    d = http("GET", "%s/v2/nvcf/functions/%s/versions/%s" % (
        stack.api_url, fid, vid), key=stack.admin_key).json()["function"]
    assert d["status"] == "ACTIVE"

    # Requests sent at zero all get their responses.
    results = []
    lock = threading.Lock()

    def call(i):
        res = invoke(stack, fid, {"i": i}, poll=30)
        with lock:
            results.append((i, res))
    threads = [threading.Thread(target=call, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(i for i, _ in results) == [0, 1, 2, 3]
    for i, res in results:
        assert res.status == 200, res
        assert echoed(res) == {"i": i}

    m = http("GET", "http://127.0.0.1:%d/metrics" %
             stack.ports["autoscaler"]).body.decode()
    m2 = http("GET", "http://127.0.0.1:%d/metrics" %
              stack.ports["autoscaler-2"]).body.decode()
    assert "nvcf_autoscaler_wakeups_total" in m + m2


def test_window_ends_at_zero_gives_202_then_result(stack):
    fn, _ = deploy_zero(stack, "slowstart")
    fid, vid = fn["id"], fn["versionId"]
    nvca = stack.procs["nvca"]
    # No agent can start an instance: the request waits in the stream.
    os.kill(nvca.pid, signal.SIGSTOP)
    try:
        r = invoke(stack, fid, {"late": True}, poll=1)
        assert r.status == 202, r
        assert r.headers["NVCF-STATUS"] == "in-progress"
        reqid = r.headers["NVCF-REQID"]
    finally:
        os.kill(nvca.pid, signal.SIGCONT)
    done = poll_until_done(stack, reqid)
    assert echoed(done) == {"late": True}


def test_requests_wait_at_zero_across_nats_restart(stack):
    fn, _ = deploy_zero(stack, "restart")
    fid, vid = fn["id"], fn["versionId"]
    nvca = stack.procs["nvca"]
    os.kill(nvca.pid, signal.SIGSTOP)
    try:
        reqids = []
        for i in range(3):
            r = invoke(stack, fid, {"k": i}, poll=1)
            assert r.status == 202, r
            reqids.append((i, r.headers["NVCF-REQID"]))
        # The queue, the creation order and the pending records are on
        # disk: a restart of nats-server loses none of them.
        stack.nats.restart()
    finally:
        os.kill(nvca.pid, signal.SIGCONT)
    for i, reqid in reqids:
        done = poll_until_done(stack, reqid, timeout=90)
        assert echoed(done) == {"k": i}
    seen = served_counts(stack)
    for _, reqid in reqids:
        assert seen.get(reqid) == 1, (reqid, seen.get(reqid))


def test_burst_scales_0_to_3_and_back(stack):
    fn, _ = deploy_zero(stack, "burst", max=3)
    fid, vid = fn["id"], fn["versionId"]
    peak = [0]
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            peak[0] = max(peak[0], count(stack, vid, "RUNNING"))
            time.sleep(0.1)
    watcher = threading.Thread(target=watch)
    watcher.start()

    results = []
    lock = threading.Lock()

    def call(i):
        res = invoke(stack, fid, {"i": i, "sleep": 1}, poll=60, timeout=90)
        with lock:
            results.append((i, res))
    threads = [threading.Thread(target=call, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    stop.set()
    watcher.join()

    assert len(results) == 12
    reqids = []
    for i, res in results:
        assert res.status == 200, res
        assert echoed(res)["i"] == i
        reqids.append(res.headers["NVCF-REQID"])
    assert len(set(reqids)) == 12
    assert peak[0] == 3
    assert live(stack, vid) <= 3
    seen = served_counts(stack)
    for reqid in reqids:
        assert seen.get(reqid) == 1, (reqid, seen.get(reqid))
    wait_for(lambda: live(stack, vid) == 0, timeout=IDLE_MS / 1000 + 15,
             what="burst version back at zero")


def test_patch_bounds_take_effect(stack):
    fn, dep = deploy_zero(stack, "patched", max=1)
    fid, vid = fn["id"], fn["versionId"]
    spec = dep["deploymentSpecifications"][0]
    url = "%s/v2/nvcf/deployments/%s/gpu-specifications/%s" % (
        stack.api_url, dep["deploymentId"], spec["gpuSpecificationId"])
    r = http("PATCH", url, key=stack.admin_key,
             json_body={"minInstances": 2, "maxInstances": 2})
    assert r.status == 200, r
    wait_for(lambda: count(stack, vid, "RUNNING") == 2, timeout=30,
             what="two RUNNING instances after PATCH")
    r = http("PATCH", url, key=stack.admin_key,
             json_body={"minInstances": 0, "maxInstances": 1})
    assert r.status == 200, r
    wait_for(lambda: live(stack, vid) <= 1, timeout=15,
             what="at most one instance after lowering max")
    wait_for(lambda: live(stack, vid) == 0, timeout=IDLE_MS / 1000 + 15,
             what="zero instances after lowering min")


def test_lease_moves_when_a_replica_dies(stack):
    fn, _ = deploy_zero(stack, "leased")
    fid, vid = fn["id"], fn["versionId"]
    holder = wait_for(lambda: lease_holder(stack, vid), timeout=10,
                      what="a lease holder")
    assert holder in ("autoscaler", "autoscaler-2")
    other = "autoscaler-2" if holder == "autoscaler" else "autoscaler"
    stack.kill(holder, signal.SIGKILL)
    try:
        # The survivor takes the version over once the lease expires.
        wait_for(lambda: lease_holder(stack, vid) == other, timeout=15,
                 what="lease taken over by %s" % other)
        r = invoke(stack, fid, {"after": holder}, poll=30)
        assert r.status == 200, r
    finally:
        stack.start_daemon(holder)
