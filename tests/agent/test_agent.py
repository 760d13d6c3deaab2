"""Integration tests of nvca and nvcf-worker on the process runtime."""

import json
import os
import signal
import sys
import threading

import pytest

import nvcfstack
from nvcfstack import http, wait_for

sys.path.insert(0, os.path.dirname(__file__))
import natskv  # noqa: E402


@pytest.fixture(scope="module")
def stack():
    s = nvcfstack.Stack(api=True, gateway=True, nvca=True, ack_wait_ms=2000)
    s.start()
    yield s
    s.stop()


def instances(s, vid):
    kv = natskv.Client(s.nats_url)
    try:
        return kv.records("nvcf_instances", vid + ".")
    finally:
        kv.close()


def running(s, vid, count):
    recs = [r for r in instances(s, vid) if r["instanceStatus"] == "RUNNING"]
    return recs if len(recs) >= count else None


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open("/proc/%d/stat" % pid) as f:
        return f.read().split(")")[-1].split()[0] != "Z"


def invoke(s, fid, body, path="", timeout=30):
    return http("POST", "%s/v2/nvcf/pexec/functions/%s%s" % (
        s.invoke_url, fid, path), key=s.admin_key, json_body=body,
        timeout=timeout)


def undeploy(s, fid, vid):
    r = http("DELETE", "%s/v2/nvcf/deployments/functions/%s/versions/%s" % (
        s.api_url, fid, vid), key=s.admin_key)
    assert r.status == 200, r


def test_instance_gets_port_and_gpus(stack):
    fn = nvcfstack.create_function(stack, stack.admin_key, name="envcheck",
                                   env={"GREETING": "hello"})
    fid, vid = fn["id"], fn["versionId"]
    nvcfstack.deploy(stack, stack.admin_key, fid, vid,
                     instance_type="NCP.GPU.L40S_2x")
    rec = wait_for(lambda: running(stack, vid, 1), what="RUNNING")[0]
    r = http("GET", "http://127.0.0.1:%d/env" % rec["port"])
    assert r.status == 200
    env = r.json()
    assert env["PORT"] == str(rec["port"])
    assert env["NVCF_INFERENCE_PORT"] == str(rec["port"])
    assert env["GREETING"] == "hello"
    assert env["NVCF_FUNCTION_ID"] == fid
    assert env["NVCF_FUNCTION_VERSION_ID"] == vid
    assert env["NVCF_INSTANCETYPE"] == "NCP.GPU.L40S_2x"
    assert env["NVCF_BACKEND"] == "local"
    assert env["NVCF_REGION"] == "local"
    assert len(rec["gpus"]) == 2
    assert len(set(rec["gpus"])) == 2
    devices = ",".join(str(g) for g in rec["gpus"])
    assert env["CUDA_VISIBLE_DEVICES"] == devices
    assert env["NVIDIA_VISIBLE_DEVICES"] == devices

    r = invoke(stack, fid, {"x": 1})
    assert r.status == 200, r
    echo = r.json()
    assert echo["pid"] == rec["pid"]
    assert echo["headers"]["NVCF-FUNCTION-ID"] == fid
    assert echo["headers"]["NVCF-INSTANCETYPE"] == "NCP.GPU.L40S_2x"
    assert "Authorization" not in echo["headers"]

    undeploy(stack, fid, vid)
    wait_for(lambda: not pid_alive(rec["pid"]), what="function pid gone")
    wait_for(lambda: not pid_alive(rec["workerPid"]), what="worker gone")
    wait_for(lambda: all(r["instanceStatus"] == "TERMINATED"
                         for r in instances(stack, vid)),
             what="instance TERMINATED")


def test_function_exiting_at_once_is_errored(stack):
    fn = nvcfstack.create_function(stack, stack.admin_key, name="crash",
                                   image="file:///bin/sh",
                                   args="-c 'echo boom-$PORT; exit 3'")
    fid, vid = fn["id"], fn["versionId"]
    nvcfstack.deploy(stack, stack.admin_key, fid, vid, wait_active=False)

    def errored():
        recs = [r for r in instances(stack, vid)
                if r["instanceStatus"] == "ERRORED"]
        return recs[0] if recs else None
    rec = wait_for(errored, what="instance ERRORED")
    assert rec["error"] == "function process exited with status 3"
    assert rec["lastOutput"].strip() == "boom-%d" % rec["port"]
    undeploy(stack, fid, vid)


def test_non_file_image_is_errored(stack):
    fn = nvcfstack.create_function(stack, stack.admin_key, name="oci",
                                   image="nvcr.io/org/echo:1")
    fid, vid = fn["id"], fn["versionId"]
    nvcfstack.deploy(stack, stack.admin_key, fid, vid, wait_active=False)

    def errored():
        recs = [r for r in instances(stack, vid)
                if r["instanceStatus"] == "ERRORED"]
        return recs[0] if recs else None
    rec = wait_for(errored, what="instance ERRORED")
    assert "only file:// images" in rec["error"]
    undeploy(stack, fid, vid)


def test_killed_worker_request_served_once(stack):
    fn = nvcfstack.create_function(stack, stack.admin_key, name="twice")
    fid, vid = fn["id"], fn["versionId"]
    nvcfstack.deploy(stack, stack.admin_key, fid, vid, min=2, max=2)
    recs = wait_for(lambda: running(stack, vid, 2), what="2 RUNNING")
    result = {}

    def call():
        result["r"] = invoke(stack, fid, {"sleep": 2}, timeout=60)
    t = threading.Thread(target=call)
    t.start()

    # The request reaches one function: find which through its log.
    def which():
        for rec in recs:
            path = os.path.join(stack.dir, "nvca", "instances",
                                rec["instanceId"] + ".log")
            with open(path) as f:
                if "pyecho: started " in f.read():
                    return rec
        return None
    first = wait_for(which, what="request to reach a function")
    os.kill(first["workerPid"], signal.SIGKILL)
    t.join(60)
    r = result["r"]
    assert r.status == 200, r
    other = [rec for rec in recs if rec is not first][0]
    assert r.json()["pid"] == other["pid"]
    request_id = r.json()["headers"]["NVCF-REQID"]
    seen = http("GET", "http://127.0.0.1:%d/seen?id=%s" % (
        other["port"], request_id)).json()
    assert seen["count"] == 1

    def first_errored():
        for rec in instances(stack, vid):
            if rec["instanceId"] == first["instanceId"]:
                return rec["instanceStatus"] == "ERRORED"
        return False
    wait_for(first_errored, what="instance with killed worker ERRORED")
    wait_for(lambda: not pid_alive(first["pid"]),
             what="function of killed worker stopped")
    undeploy(stack, fid, vid)
    wait_for(lambda: not pid_alive(other["pid"]), what="function pid gone")
