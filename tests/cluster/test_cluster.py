"""Cluster inventory across two cluster agents.

One stack (nats-server and nvcf-api) with two nvca processes started here,
each with its own backend file: different cluster ids, groups, regions and
GPU types. Checks the cluster records the agents write, GET
/v2/nvcf/clusterGroups, deployment validation against the inventory, and
`nvcf cluster list`, including a cluster that goes stale while its agent
is stopped with SIGSTOP.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

import nvcfstack
from nvcfstack import http, wait_for

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "agent"))
sys.path.insert(0, os.path.dirname(__file__))
import natskv  # noqa: E402
from nvcaproc import Agent  # noqa: E402

# Deployments that later tests reuse, by name.
SHARED = {}

# Agents here write a heartbeat every 500 ms (--heartbeat-ms), so a live
# one never looks stale at 2.5 s while a stopped one turns stale fast.
HEARTBEAT_MS = 500
STALE_MS = 2500

EAST = """apiVersion: nvcf.nvidia.io/v1
kind: NVCFBackend
metadata:
  name: east
spec:
  clusterId: east-1
  clusterName: east-one
  clusterGroup: east
  region: us-east
  attributes: [ssd]
  gpus:
    - name: L40S
      capacity: 4
      instanceTypes:
        - {name: NCP.GPU.L40S_1x, description: "One L40S", gpuCount: 1, default: true}
        - {name: NCP.GPU.L40S_2x, description: "Two L40S", gpuCount: 2, default: false}
"""

WEST = """apiVersion: nvcf.nvidia.io/v1
kind: NVCFBackend
metadata:
  name: west
spec:
  clusterId: west-1
  clusterName: west-one
  clusterGroup: west
  region: eu-west
  attributes: []
  gpus:
    - name: A100
      capacity: 2
      instanceTypes:
        - {name: NCP.GPU.A100_1x, description: "One A100", gpuCount: 1, default: true}
"""


@pytest.fixture(scope="module")
def env():
    s = nvcfstack.Stack(api=True, gateway=False, nvca=False,
                        api_args=["--cluster-stale-ms", str(STALE_MS)])
    agents = {}
    with s:
        try:
            beat = ["--heartbeat-ms", str(HEARTBEAT_MS)]
            agents["east"] = Agent(s, "east", EAST, beat)
            agents["west"] = Agent(s, "west", WEST, beat)
            yield s, agents
        finally:
            for a in agents.values():
                a.stop()


def groups(s):
    r = http("GET", s.api_url + "/v2/nvcf/clusterGroups", key=s.admin_key)
    assert r.status == 200, r
    return {g["name"]: g for g in r.json()["clusterGroups"]}


def cli(s, *args):
    return subprocess.run(
        [nvcfstack.binary("nvcf"), "cluster", *args], capture_output=True,
        text=True, timeout=30, env=dict(os.environ, NATS_URL=s.nats_url))


def cli_json(s):
    r = cli(s, "list", "--json", "--cluster-stale-ms", str(STALE_MS))
    assert r.returncode == 0, r.stderr
    return {c["id"]: c for c in json.loads(r.stdout)["clusters"]}


def deploy(s, fn, **spec):
    body = {"deploymentSpecifications": [dict(
        {"minInstances": 1, "maxInstances": 1}, **spec)]}
    return http("POST", s.api_url + "/v2/nvcf/deployments/functions/%s/"
                "versions/%s" % (fn["id"], fn["versionId"]),
                key=s.admin_key, json_body=body)


def assert_400(r, *fragments):
    assert r.status == 400, r
    detail = r.json()["detail"]
    for frag in fragments:
        assert frag in detail, (frag, detail)


def test_record_heartbeat_and_gpu_use(env):
    s, _ = env
    kv = natskv.Client(s.nats_url)
    try:
        rec = kv.get("nvcf_clusters", "east-1")
    finally:
        kv.close()
    assert rec["clusterId"] == "east-1"
    assert rec["name"] == "east-one"
    assert rec["group"] == "east"
    assert rec["region"] == "us-east"
    assert rec["attributes"] == ["ssd"]
    assert rec["health"] == "healthy"
    assert isinstance(rec["heartbeatAtMs"], int)
    assert abs(rec["heartbeatAtMs"] / 1000.0 - time.time()) < 30
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d.*Z",
                        rec["heartbeatAt"])

    # --heartbeat-ms 500: the record is rewritten well before the default
    # 5 s would have.
    def newer():
        kv = natskv.Client(s.nats_url)
        try:
            r = kv.get("nvcf_clusters", "east-1")
        finally:
            kv.close()
        return r["heartbeatAtMs"] > rec["heartbeatAtMs"]
    wait_for(newer, timeout=HEARTBEAT_MS * 4 / 1000.0,
             what="a second heartbeat within 2 s")
    (g,) = rec["gpus"]
    assert (g["name"], g["capacity"], g["allocated"], g["available"]) == (
        "L40S", 4, 0, 4)
    assert [(t["name"], t["gpuCount"], t["default"])
            for t in g["instanceTypes"]] == [
        ("NCP.GPU.L40S_1x", 1, True), ("NCP.GPU.L40S_2x", 2, False)]


def test_cluster_groups_list_both(env):
    s, _ = env
    gs = wait_for(lambda: (lambda g: g if {"east", "west"} <= set(g)
                           else None)(groups(s)),
                  what="both cluster groups listed")
    assert set(gs) == {"east", "west"}
    east, west = gs["east"], gs["west"]
    assert east["ncaId"] == "admin-acct"
    assert east["gpus"] == [{"name": "L40S", "instanceTypes": [
        {"name": "NCP.GPU.L40S_1x", "description": "One L40S",
         "default": True},
        {"name": "NCP.GPU.L40S_2x", "description": "Two L40S",
         "default": False}]}]
    assert east["clusters"] == [{
        "id": "east-1", "name": "east-one", "k8sVersion": "",
        "region": "us-east", "health": "healthy",
        "gpus": [{"name": "L40S", "capacity": 4, "allocated": 0,
                  "available": 4}]}]
    assert west["gpus"] == [{"name": "A100", "instanceTypes": [
        {"name": "NCP.GPU.A100_1x", "description": "One A100",
         "default": True}]}]
    assert [c["id"] for c in west["clusters"]] == ["west-1"]
    assert west["clusters"][0]["region"] == "eu-west"
    assert east["id"] != west["id"]


BAD_SPECS = [
    ({"gpu": "Z999", "instanceType": "NCP.GPU.Z999_1x"},
     ["gpu 'Z999' is not offered", "offered GPUs: ", "A100", "L40S"]),
    ({"gpu": "L40S", "instanceType": "NCP.GPU.L40S_9x"},
     ["instanceType 'NCP.GPU.L40S_9x' is not offered for gpu 'L40S'",
      "offered instance types: NCP.GPU.L40S_1x, NCP.GPU.L40S_2x"]),
    ({"gpu": "A100", "instanceType": "NCP.GPU.L40S_1x"},
     ["instanceType 'NCP.GPU.L40S_1x' is not offered for gpu 'A100'",
      "NCP.GPU.A100_1x"]),
    ({"gpu": "L40S", "instanceType": "NCP.GPU.L40S_1x",
      "clusters": ["nowhere"]},
     ["no healthy cluster offers",
      "clusters[0]: no cluster has id or name 'nowhere'"]),
    ({"gpu": "L40S", "instanceType": "NCP.GPU.L40S_1x",
      "backend": "nogroup"},
     ["backend: no cluster group is named 'nogroup'", "east", "west"]),
    ({"gpu": "L40S", "instanceType": "NCP.GPU.L40S_1x",
      "regions": ["mars"]},
     ["regions[0]: no cluster is in region 'mars'", "us-east"]),
    ({"gpu": "A100", "instanceType": "NCP.GPU.A100_1x",
      "clusters": ["east-1"]},
     ["no cluster matches every filter"]),
    ({"gpu": "A100", "instanceType": "NCP.GPU.A100_1x",
      "backend": "east"},
     ["no cluster matches every filter"]),
]


@pytest.mark.parametrize("spec,fragments", BAD_SPECS)
def test_deploy_unknown_name_400(env, spec, fragments):
    s, _ = env
    fn = nvcfstack.create_function(s, s.admin_key)
    assert_400(deploy(s, fn, **spec), *fragments)
    r = http("GET", s.api_url + "/v2/nvcf/deployments/functions/%s/"
             "versions/%s" % (fn["id"], fn["versionId"]), key=s.admin_key)
    assert r.status == 404, r


def test_deploy_allocates_named_cluster(env):
    s, agents = env
    fn = nvcfstack.create_function(s, s.admin_key)
    r = deploy(s, fn, gpu="a100", instanceType="ncp.gpu.a100_1x",
               clusters=["west-one"], maxInstances=2)
    assert r.status == 200, r
    spec = r.json()["deployment"]["deploymentSpecifications"][0]
    assert (spec["gpu"], spec["instanceType"]) == ("A100", "NCP.GPU.A100_1x")

    def allocated():
        c = groups(s)["west"]["clusters"][0]["gpus"][0]
        return c if c["allocated"] == 1 else None
    g = wait_for(allocated, timeout=30, what="west A100 allocated 1")
    assert (g["capacity"], g["available"]) == (2, 1)
    c = cli_json(s)["west-1"]
    assert c["gpus"] == [{"name": "A100", "capacity": 2, "allocated": 1,
                          "available": 1}]
    SHARED["west"] = r.json()["deployment"]


def test_cli_lists_both_healthy(env):
    s, _ = env
    r = cli(s, "list", "--cluster-stale-ms", str(STALE_MS))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:5] == ["ID", "NAME", "GROUP", "REGION",
                                    "HEALTH"]
    assert len(lines) == 3, r.stdout
    assert re.match(r"east-1\s+east-one\s+east\s+us-east\s+healthy "
                    r"\(\d+s ago\)\s+L40S 0/4$", lines[1]), lines[1]
    assert re.match(r"west-1\s+west-one\s+west\s+eu-west\s+healthy "
                    r"\(\d+s ago\)\s+A100 1/2$", lines[2]), lines[2]
    cs = cli_json(s)
    assert sorted(cs) == ["east-1", "west-1"]
    assert cs["east-1"]["health"] == "healthy"
    assert cs["east-1"]["attributes"] == ["ssd"]
    assert 0 <= cs["east-1"]["heartbeatAgeMs"] < STALE_MS


def test_cli_usage_errors(env):
    s, _ = env
    r = cli(s, "list", "--bogus")
    assert r.returncode == 2
    assert "unknown argument '--bogus'" in r.stderr
    r = cli(s, "list", "--cluster-stale-ms", "soon")
    assert r.returncode == 2
    assert "--cluster-stale-ms 'soon'" in r.stderr
    r = cli(s, "frob")
    assert r.returncode == 2
    assert "unknown subcommand 'frob'" in r.stderr
    r = cli(s, "--help")
    assert r.returncode == 0
    assert r.stdout.startswith("usage: nvcf cluster list")


def test_stopped_agent_turns_unhealthy(env):
    s, agents = env
    west = agents["west"]
    dep = SHARED.get("west")
    west.proc.send_signal(signal.SIGSTOP)
    try:
        cs = wait_for(lambda: (lambda c: c if c["west-1"]["health"] ==
                               "unhealthy" else None)(cli_json(s)),
                      timeout=STALE_MS / 1000.0 + 15,
                      what="west-1 unhealthy in nvcf cluster list")
        assert cs["east-1"]["health"] == "healthy"
        assert cs["west-1"]["heartbeatAgeMs"] > STALE_MS
        r = cli(s, "list", "--cluster-stale-ms", str(STALE_MS))
        assert re.search(r"^west-1\s.*\sunhealthy \(\d+s ago\)\s+A100 1/2$",
                         r.stdout, re.M), r.stdout
        assert re.search(r"^east-1\s.*\shealthy \(\d+s ago\)", r.stdout,
                         re.M), r.stdout
        # The API drops the stale cluster from listings and validation.
        assert set(groups(s)) == {"east"}
        fn = nvcfstack.create_function(s, s.admin_key)
        assert_400(deploy(s, fn, gpu="A100", instanceType="NCP.GPU.A100_1x"),
                   "gpu 'A100' is not offered by any healthy cluster",
                   "offered GPUs: L40S")
        if dep is not None:
            spec = dep["deploymentSpecifications"][0]
            path = "/v2/nvcf/deployments/%s/gpu-specifications/%s" % (
                dep["deploymentId"], spec["gpuSpecificationId"])
            assert_400(http("PATCH", s.api_url + path, key=s.admin_key,
                            json_body={"minInstances": 2}),
                       "no healthy cluster offers gpu 'A100'",
                       "clusters[0]: no cluster has id or name 'west-one'")
            # Lowering a bound needs no cluster.
            r = http("PATCH", s.api_url + path, key=s.admin_key,
                     json_body={"maxInstances": 1})
            assert r.status == 200, r
    finally:
        west.proc.send_signal(signal.SIGCONT)
    wait_for(lambda: cli_json(s)["west-1"]["health"] == "healthy",
             timeout=15, what="west-1 healthy again after SIGCONT")
