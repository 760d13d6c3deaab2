"""Placement across three clusters by nvcf-autoscaler: eligibility, the
split the routing API gives, a refusal moving work to the next cluster,
and a dead cluster's instances replaced on another eligible one."""

import json
import os
import signal
import sys
import textwrap
import time

import pytest

import nvcfstack
from nvcfstack import http, wait_for

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "agent"))
import natskv  # noqa: E402

STALE_MS = 8000
ARGS = ["--tick-ms", "100", "--idle-to-zero-ms", "600000",
        "--cluster-stale-ms", str(STALE_MS)]

CLUSTERS = {
    # name: (cluster id, region, {gpu: capacity})
    "nvca-east-a": ("east-a", "us-east", {"L40S": 2}),
    "nvca-east-b": ("east-b", "us-east", {"L40S": 4}),
    "nvca-west": ("west", "us-west", {"L40S": 2, "H100": 2}),
}


def backend_yaml(cluster_id, region, gpus):
    lines = []
    for gpu, cap in gpus.items():
        lines.append(textwrap.dedent("""\
            - name: %s
              capacity: %d
              instanceTypes:
                - {name: NCP.GPU.%s_1x, description: "One %s", gpuCount: 1, default: true}
            """ % (gpu, cap, gpu, gpu)))
    return textwrap.dedent("""\
        apiVersion: nvcf.nvidia.io/v1
        kind: NVCFBackend
        metadata:
          name: %s
        spec:
          clusterId: %s
          clusterName: %s
          clusterGroup: %s-group
          region: %s
          attributes: []
          gpus:
        """ % (cluster_id, cluster_id, cluster_id, region, region)) + \
        textwrap.indent("".join(lines), "    ")


@pytest.fixture(scope="module")
def stack():
    s = nvcfstack.Stack(nvca=False, autoscalers=1, autoscaler_args=ARGS,
                        api_args=["--cluster-stale-ms", str(STALE_MS)])
    s.start()
    try:
        for name, (cid, region, gpus) in CLUSTERS.items():
            path = os.path.join(s.dir, cid + ".yaml")
            with open(path, "w") as f:
                f.write(backend_yaml(cid, region, gpus))
            s.add_agent(name, path)
        wait_for(lambda: len(cluster_records(s)) == 3, timeout=20,
                 what="three cluster records")
        yield s
    finally:
        s.stop()


def kv(s):
    return natskv.Client(s.nats_url)


def cluster_records(s):
    c = kv(s)
    try:
        return {r["clusterId"]: r for r in c.records("nvcf_clusters")}
    finally:
        c.close()


def instances(s, vid):
    c = kv(s)
    try:
        return c.records("nvcf_instances", vid + ".")
    finally:
        c.close()


def free_gpus(s, cluster_id):
    rec = cluster_records(s)[cluster_id]
    return sum(g["capacity"] - g["allocated"] for g in rec["gpus"])


def running_by_cluster(s, vid):
    out = {}
    for r in instances(s, vid):
        if r["instanceStatus"] == "RUNNING":
            out[r["clusterId"]] = out.get(r["clusterId"], 0) + 1
    return out


def deploy(s, name, gpu="L40S", count=1, **spec_extra):
    fn = nvcfstack.create_function(s, s.admin_key, name=name)
    spec = {"gpu": gpu, "instanceType": "NCP.GPU.%s_1x" % gpu,
            "minInstances": count, "maxInstances": count,
            "maxRequestConcurrency": 1}
    spec.update(spec_extra)
    r = http("POST", "%s/v2/nvcf/deployments/functions/%s/versions/%s" % (
        s.api_url, fn["id"], fn["versionId"]), key=s.admin_key,
        json_body={"deploymentSpecifications": [spec]})
    assert r.status == 200, r
    return fn


def function_status(s, fn):
    return http("GET", "%s/v2/nvcf/functions/%s/versions/%s" % (
        s.api_url, fn["id"], fn["versionId"]),
        key=s.admin_key).json()["function"]["status"]


def undeploy(s, fn):
    r = http("DELETE", "%s/v2/nvcf/deployments/functions/%s/versions/%s" % (
        s.api_url, fn["id"], fn["versionId"]), key=s.admin_key)
    assert r.status == 200, r
    wait_for(lambda: not running_by_cluster(s, fn["versionId"]), timeout=30,
             what="instances of %s stopped" % fn["name"])


def invoke(s, fid, body):
    return http("POST", "%s/v2/nvcf/pexec/functions/%s" % (s.invoke_url, fid),
                key=s.admin_key, json_body=body,
                headers={"NVCF-POLL-SECONDS": "60"}, timeout=90)


def test_only_eligible_clusters(stack):
    west = deploy(stack, "west-only", regions=["us-west"])
    h100 = deploy(stack, "h100", gpu="H100")
    assert wait_for(lambda: running_by_cluster(stack, west["versionId"]),
                    timeout=30, what="west-only running") == {"west": 1}
    assert wait_for(lambda: running_by_cluster(stack, h100["versionId"]),
                    timeout=30, what="h100 running") == {"west": 1}
    undeploy(stack, west)
    undeploy(stack, h100)


def test_split_follows_routing(stack):
    # PACK by free GPUs: east-b (4 free) first, then east-a (2 free).
    fn = deploy(stack, "split", count=5, regions=["us-east"])
    got = wait_for(lambda: (lambda m: m if sum(m.values()) == 5 else None)(
        running_by_cluster(stack, fn["versionId"])), timeout=40,
        what="five instances running")
    assert got == {"east-b": 4, "east-a": 1}
    undeploy(stack, fn)


def test_refusal_moves_work_to_next_cluster(stack):
    wait_for(lambda: free_gpus(stack, "east-a") == 2, timeout=20,
             what="east-a idle")
    # The agent of east-a sleeps while the inventory claims it has 8 free
    # GPUs, so that no heartbeat corrects the claim before the order.
    agent = stack.procs["nvca-east-a"]
    os.kill(agent.pid, signal.SIGSTOP)
    try:
        rec = cluster_records(stack)["east-a"]
        for g in rec["gpus"]:
            g["capacity"] = 8
            g["allocated"] = 0
            g["available"] = 8
        c = kv(stack)
        try:
            c.request("$KV.nvcf_clusters.east-a", rec)
        finally:
            c.close()
        fn = deploy(stack, "refused", count=3,
                    clusters=["east-a", "east-b"])
        wait_for(lambda: "ordered 3 instance(s) on cluster east-a" in
                 stack.log("autoscaler"), timeout=10,
                 what="three instances ordered on east-a")
    finally:
        os.kill(agent.pid, signal.SIGCONT)
    got = wait_for(lambda: (lambda m: m if sum(m.values()) == 3 else None)(
        running_by_cluster(stack, fn["versionId"])), timeout=40,
        what="three instances running")
    assert got == {"east-a": 2, "east-b": 1}
    log = stack.log("autoscaler")
    assert "cluster east-a refused 1 instance(s)" in log
    assert "insufficient capacity" in log

    def refusal_shown():
        dep = http("GET", "%s/v2/nvcf/deployments/functions/%s/versions/%s"
                   % (stack.api_url, fn["id"], fn["versionId"]),
                   key=stack.admin_key).json()["deployment"]
        return [h for h in dep.get("healthInfo") or []
                if "cluster east-a refused 1 instance(s)" in h["error"]]
    shown = wait_for(refusal_shown, timeout=10,
                     what="the refusal in healthInfo")
    assert shown[0]["backend"] == "east-a"
    assert "insufficient capacity" in shown[0]["error"]
    undeploy(stack, fn)


def true_capacity(s, cluster_id):
    """True once the agent has rewritten its record with its capacity."""
    rec = cluster_records(s)[cluster_id]
    caps = {g["name"]: g["capacity"] for g in rec["gpus"]}
    return caps == CLUSTERS["nvca-" + cluster_id][2]


def test_dead_cluster_is_replaced(stack):
    # The previous test's invented capacity is gone after a heartbeat.
    wait_for(lambda: true_capacity(stack, "east-a"), timeout=15,
             what="east-a reporting its own capacity")
    fn = deploy(stack, "survivor", count=1, regions=["us-east"])
    fid, vid = fn["id"], fn["versionId"]
    first = wait_for(lambda: running_by_cluster(stack, vid), timeout=30,
                     what="survivor running")
    assert first == {"east-b": 1}
    wait_for(lambda: function_status(stack, fn) == "ACTIVE", timeout=15,
             what="survivor ACTIVE")
    assert invoke(stack, fid, {"before": 1}).status == 200

    # The whole of east-b dies: its agent and the instances it ran.
    victims = [r for r in instances(stack, vid)
               if r["instanceStatus"] == "RUNNING"]
    stack.kill("nvca-east-b", signal.SIGKILL)
    for r in victims:
        for pid in (r.get("pid"), r.get("workerPid")):
            if pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
    started = time.monotonic()
    moved = wait_for(
        lambda: (lambda m: m if m.get("east-a") == 1 else None)(
            running_by_cluster(stack, vid)),
        timeout=STALE_MS / 1000 + 30, what="replacement on east-a")
    assert moved == {"east-a": 1}
    assert time.monotonic() - started >= STALE_MS / 1000 - 6
    lost = [r for r in instances(stack, vid)
            if r["instanceId"] == victims[0]["instanceId"]][0]
    assert lost["instanceStatus"] == "ERRORED"
    assert "cluster east-b stopped sending heartbeats" in lost["error"]
    r = invoke(stack, fid, {"after": 1})
    assert r.status == 200, r
    assert json.loads(r.json()["body"]) == {"after": 1}
    dep = http("GET", "%s/v2/nvcf/deployments/functions/%s/versions/%s" % (
        stack.api_url, fid, vid), key=stack.admin_key).json()["deployment"]
    assert any("east-b" in (h.get("error") or "")
               for h in dep.get("healthInfo") or []), dep


def test_agent_restart_duplicates_nothing(stack):
    fn = deploy(stack, "steady", count=2, regions=["us-west"])
    vid = fn["versionId"]
    wait_for(lambda: running_by_cluster(stack, vid) == {"west": 2},
             timeout=30, what="two instances on west")
    before = {r["instanceId"]: r["pid"] for r in instances(stack, vid)}

    def west_allocated():
        return {g["name"]: g["allocated"]
                for g in cluster_records(stack)["west"]["gpus"]}
    wait_for(lambda: west_allocated() == {"L40S": 2, "H100": 0},
             timeout=15, what="west reporting two L40S in use")
    stack.kill("nvca-west", signal.SIGKILL)
    stack.start_daemon("nvca-west")
    # Long enough for a reconcile pass, an autoscaler tick and a heartbeat.
    time.sleep(6)
    after = {r["instanceId"]: r for r in instances(stack, vid)}
    assert set(after) == set(before)
    for iid, pid in before.items():
        assert after[iid]["instanceStatus"] == "RUNNING"
        assert after[iid]["pid"] == pid
    assert west_allocated() == {"L40S": 2, "H100": 0}
    r = invoke(stack, fn["id"], {"again": 1})
    assert r.status == 200, r
    undeploy(stack, fn)
