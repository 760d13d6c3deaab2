"""GPU discovery of nvca through nvidia-smi.

A stand-in nvidia-smi on PATH (in the stack's temporary directory) reports
two GPU models with non-contiguous device indices. An nvca whose backend
has `gpuDiscovery: dynamic` and no GPUs registers those models and counts,
and an instance's CUDA_VISIBLE_DEVICES names the devices nvidia-smi listed.
Static discovery keeps the file's list. Discovery that finds nothing for a
backend without GPUs stops nvca with a message that names the fix.
"""

import os
import subprocess
import sys

import pytest

import nvcfstack
from nvcfstack import http, wait_for

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "agent"))
sys.path.insert(0, os.path.dirname(__file__))
import natskv  # noqa: E402
from nvcaproc import Agent  # noqa: E402

# What `nvidia-smi --query-gpu=name,index --format=csv,noheader` prints on
# the pretend machine: H100s at 1 and 3, L40Ss at 0, 5 and 6.
SMI_OUTPUT = ("NVIDIA L40S, 0\n"
              "NVIDIA H100 80GB HBM3, 1\n"
              "NVIDIA H100 80GB HBM3, 3\n"
              "NVIDIA L40S, 5\n"
              "NVIDIA L40S, 6\n")
L40S = [0, 5, 6]
H100 = [1, 3]

HEAD = """apiVersion: nvcf.nvidia.io/v1
kind: NVCFBackend
metadata:
  name: %(id)s
spec:
  clusterId: %(id)s
  clusterName: %(id)s
  clusterGroup: %(id)s
  region: lab
  attributes: []
"""

DYNAMIC = HEAD % {"id": "gpuhost-1"} + "  gpuDiscovery: dynamic\n"

STATIC = HEAD % {"id": "static-1"} + """  gpuDiscovery: static
  gpus:
    - name: L40S
      capacity: 2
      instanceTypes:
        - {name: NCP.GPU.L40S_1x, description: "One L40S", gpuCount: 1, default: true}
"""

# No spec.gpus and no gpuDiscovery: discovery is the default.
BARE = HEAD % {"id": "bare-1"}


def fake_smi(directory, body):
    """Writes an nvidia-smi script into `directory`; returns an env."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "nvidia-smi")
    with open(path, "w") as f:
        f.write("#!/bin/sh\n"
                '[ "$1" = --query-gpu=name,index ] || exit 3\n'
                '[ "$2" = --format=csv,noheader ] || exit 4\n' + body)
    os.chmod(path, 0o755)
    return dict(os.environ, PATH=directory + ":" + os.environ["PATH"])


@pytest.fixture(scope="module")
def env():
    s = nvcfstack.Stack(api=True, gateway=False, nvca=False)
    agents = []
    with s:
        try:
            smi_env = fake_smi(os.path.join(s.dir, "bin"),
                               "printf '%s'\n" % SMI_OUTPUT.replace(
                                   "\n", "\\n"))
            agents.append(Agent(s, "gpuhost", DYNAMIC, env=smi_env))
            yield s, smi_env
        finally:
            for a in agents:
                a.stop()


def cluster(s, cid):
    kv = natskv.Client(s.nats_url)
    try:
        return kv.get("nvcf_clusters", cid)
    finally:
        kv.close()


def instances(s, vid):
    kv = natskv.Client(s.nats_url)
    try:
        return kv.records("nvcf_instances", vid + ".")
    finally:
        kv.close()


def running(s, vid):
    recs = [r for r in instances(s, vid) if r["instanceStatus"] == "RUNNING"]
    return recs[0] if recs else None


def test_dynamic_registers_discovered_gpus(env):
    s, _ = env
    rec = cluster(s, "gpuhost-1")
    gpus = {g["name"]: g for g in rec["gpus"]}
    assert sorted(gpus) == ["H100", "L40S"]
    assert (gpus["L40S"]["capacity"], gpus["L40S"]["allocated"]) == (3, 0)
    assert (gpus["H100"]["capacity"], gpus["H100"]["allocated"]) == (2, 0)
    assert [(t["name"], t["gpuCount"], t["default"], t["description"])
            for t in gpus["H100"]["instanceTypes"]] == [
        ("NCP.GPU.H100_1x", 1, True, "1 NVIDIA H100 80GB HBM3 (discovered)"),
        ("NCP.GPU.H100_2x", 2, False,
         "2 NVIDIA H100 80GB HBM3 (discovered)")]
    assert [t["name"] for t in gpus["L40S"]["instanceTypes"]] == [
        "NCP.GPU.L40S_1x", "NCP.GPU.L40S_2x"]
    r = http("GET", s.api_url + "/v2/nvcf/clusterGroups", key=s.admin_key)
    assert r.status == 200, r
    (group,) = [g for g in r.json()["clusterGroups"]
                if g["name"] == "gpuhost-1"]
    assert group["clusters"][0]["gpus"] == [
        {"name": "L40S", "capacity": 3, "allocated": 0, "available": 3},
        {"name": "H100", "capacity": 2, "allocated": 0, "available": 2}]


@pytest.mark.parametrize("gpu,itype,count,pool", [
    ("L40S", "NCP.GPU.L40S_2x", 2, L40S),
    ("H100", "NCP.GPU.H100_1x", 1, H100),
])
def test_instance_sees_discovered_devices(env, gpu, itype, count, pool):
    s, _ = env
    fn = nvcfstack.create_function(s, s.admin_key, name="devices")
    fid, vid = fn["id"], fn["versionId"]
    nvcfstack.deploy(s, s.admin_key, fid, vid, gpu=gpu, instance_type=itype)
    rec = wait_for(lambda: running(s, vid), timeout=30, what="RUNNING")
    # Lowest free first: the first `count` devices nvidia-smi named.
    assert rec["gpus"] == pool[:count], rec
    r = http("GET", "http://127.0.0.1:%d/env" % rec["port"])
    assert r.status == 200, r
    env_ = r.json()
    devices = ",".join(str(i) for i in pool[:count])
    assert env_["CUDA_VISIBLE_DEVICES"] == devices
    assert env_["NVIDIA_VISIBLE_DEVICES"] == devices
    assert env_["NVCF_INSTANCETYPE"] == itype
    g = wait_for(lambda: (lambda c: c if c["allocated"] == count else None)(
        {x["name"]: x for x in cluster(s, "gpuhost-1")["gpus"]}[gpu]),
        timeout=15, what="%s allocated %d in the cluster record" % (
            gpu, count))
    assert g["capacity"] == len(pool)
    r = http("DELETE", "%s/v2/nvcf/deployments/functions/%s/versions/%s" % (
        s.api_url, fid, vid), key=s.admin_key)
    assert r.status == 200, r
    wait_for(lambda: all(x["instanceStatus"] == "TERMINATED"
                         for x in instances(s, vid)),
             timeout=30, what="instance TERMINATED")


def test_static_keeps_the_file_list(env):
    s, smi_env = env
    agent = Agent(s, "static", STATIC, env=smi_env)
    try:
        rec = cluster(s, "static-1")
        assert [(g["name"], g["capacity"]) for g in rec["gpus"]] == [
            ("L40S", 2)]
        assert "GPU discovery" not in agent.log()
    finally:
        agent.stop()


def run_nvca(s, name, backend_text, args=(), env=None):
    """Runs an nvca that is expected to exit at once."""
    d = os.path.join(s.dir, name)
    os.makedirs(d)
    config = os.path.join(d, "backend.yaml")
    with open(config, "w") as f:
        f.write(backend_text)
    return subprocess.run(
        [nvcfstack.binary("nvca"), "--nats", s.nats_url, "--config", config,
         "--state-dir", os.path.join(d, "state"), "--listen", "127.0.0.1:0",
         *args],
        capture_output=True, text=True, timeout=30, env=env)


def test_failed_discovery_without_gpus_stops_nvca(env):
    s, _ = env
    bad_env = fake_smi(os.path.join(s.dir, "badbin"),
                       "echo 'NVIDIA-SMI has failed'; exit 9\n")
    r = run_nvca(s, "bare", BARE, env=bad_env)
    assert r.returncode == 1, r
    assert ("GPU discovery failed (nvidia-smi failed (exit status 9); is "
            "the NVIDIA driver loaded?) and the backend file lists no GPUs; "
            "list them under spec.gpus") in r.stderr, r.stderr
    # Without nvidia-smi at all (PATH holds only a directory without it).
    empty = os.path.join(s.dir, "empty")
    os.makedirs(empty)
    r = run_nvca(s, "bare2", BARE, env=dict(os.environ, PATH=empty))
    assert r.returncode == 1, r
    assert "nvidia-smi is not on PATH" in r.stderr, r.stderr
    assert "list them under spec.gpus" in r.stderr, r.stderr


def test_backend_errors_name_field_and_file(env):
    s, smi_env = env
    r = run_nvca(s, "static-empty",
                 HEAD % {"id": "x-1"} + "  gpuDiscovery: static\n",
                 env=smi_env)
    assert r.returncode == 1, r
    assert "backend.yaml: spec.gpuDiscovery is static but spec.gpus lists " \
           "no GPU: list them or use dynamic" in r.stderr, r.stderr
    r = run_nvca(s, "bad-mode",
                 HEAD % {"id": "x-2"} + "  gpuDiscovery: auto\n",
                 env=smi_env)
    assert r.returncode == 1, r
    assert "backend.yaml: invalid spec.gpuDiscovery 'auto': use dynamic " \
           "or static" in r.stderr, r.stderr


@pytest.mark.parametrize("value", ["0", "soon", "86400001"])
def test_heartbeat_flag_rejects_bad_values(env, value):
    s, _ = env
    r = run_nvca(s, "hb-" + value, DYNAMIC, ["--heartbeat-ms", value])
    assert r.returncode == 2, r
    assert r.stderr == ("nvca: invalid --heartbeat-ms '%s': use "
                        "milliseconds from 1 to 86400000\n" % value)
