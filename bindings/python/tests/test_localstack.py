# SPDX-License-Identifier: Apache-2.0
"""LocalStack and the HTTP clients: a whole stack started by `nvcf up`,
one function deployed and invoked, and `nvcf down` on the way out."""
import json
import os
import time

import pytest

import nvcf

from conftest import PYECHO, wait_for

MISSING = "00000000-0000-4000-8000-000000000000"


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


@pytest.fixture(scope="module")
def stack():
    s = nvcf.LocalStack()
    s.start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def echo(stack):
    fn = stack.api.create_function(
        "py-echo", "/echo", "file://" + PYECHO, health_uri="/health",
        description="LocalStack test")
    stack.api.deploy(fn["id"], fn["versionId"], "L40S", "NCP.GPU.L40S_1x",
                     min_instances=1, max_instances=1,
                     max_request_concurrency=4, wait=True, timeout=60)
    return fn


def test_stack_settings(stack):
    assert stack.running
    assert stack.api_url.startswith("http://127.0.0.1:")
    assert stack.invoke_url.startswith("http://127.0.0.1:")
    assert stack.nats_url.startswith("nats://127.0.0.1:")
    assert stack.admin_key
    procs = stack.processes()
    for name in ("nats", "nvcf-api", "nvcf-invocation", "nvca"):
        assert name in procs
    for name, pid in procs.items():
        assert pid_alive(pid), name
    assert stack.gateway.health()


def test_function_record(stack, echo):
    assert echo["name"] == "py-echo"
    assert nvcf.is_valid_id(echo["id"])
    assert nvcf.is_valid_id(echo["versionId"])
    got = stack.api.get_function(echo["id"], echo["versionId"])
    assert got["status"] == "ACTIVE"
    assert got["containerImage"] == "file://" + PYECHO
    ids = [f["versionId"] for f in stack.api.list_versions(echo["id"])]
    assert ids == [echo["versionId"]]
    assert echo["versionId"] in [f["versionId"]
                                 for f in stack.api.list_functions()]


def test_deployment_record(stack, echo):
    dep = stack.api.get_deployment(echo["id"], echo["versionId"])
    assert dep["functionId"] == echo["id"]
    assert dep["functionStatus"] == "ACTIVE"
    spec = dep["deploymentSpecifications"][0]
    assert (spec["gpu"], spec["instanceType"], spec["minInstances"],
            spec["maxInstances"]) == ("L40S", "NCP.GPU.L40S_1x", 1, 1)
    same = stack.api.get_deployment_by_id(dep["deploymentId"])
    assert same["functionVersionId"] == echo["versionId"]


def test_invoke(stack, echo):
    r = stack.gateway.invoke(echo["id"], {"hello": "world"},
                             headers={"X-Trace": "t1"})
    assert r.status == 200, r
    assert r.nvcf_status == "fulfilled"
    assert nvcf.is_valid_id(r.request_id)
    body = r.json()
    assert json.loads(body["body"]) == {"hello": "world"}
    assert body["path"] == "/echo"
    assert body["headers"]["NVCF-FUNCTION-ID"] == echo["id"]
    assert body["headers"]["NVCF-REQID"] == r.request_id
    assert body["headers"]["X-Trace"] == "t1"
    assert "Authorization" not in body["headers"]


def test_invoke_version_and_raw_body(stack, echo):
    r = stack.gateway.invoke(echo["id"], b"raw bytes",
                             version_id=echo["versionId"])
    assert r.status == 200, r
    assert r.json()["body"] == "raw bytes"


def test_202_then_poll(stack, echo):
    r = stack.gateway.invoke(echo["id"], {"sleep": 2.5}, poll_seconds=1)
    assert r.status == 202, r
    assert r.nvcf_status == "in-progress"
    request_id = r.request_id
    assert nvcf.is_valid_id(request_id)

    def done():
        p = stack.gateway.poll(request_id, poll_seconds=2)
        return p if p.status != 202 else None
    final = wait_for(done, timeout=30, interval=0, what="the polled result")
    assert final.status == 200
    assert json.loads(final.json()["body"]) == {"sleep": 2.5}


def test_call_follows_202(stack, echo):
    r = stack.gateway.call(echo["id"], {"sleep": 1.5, "n": 7},
                           poll_seconds=1)
    assert r.status == 200
    assert json.loads(r.json()["body"]) == {"sleep": 1.5, "n": 7}


def test_api_errors_carry_the_problem(stack, echo):
    with pytest.raises(nvcf.NvcfHttpError) as info:
        stack.api.get_function(echo["id"], MISSING)
    e = info.value
    assert isinstance(e, nvcf.NvcfError)
    assert (e.status, e.http_status, e.name) == (404, 404, "HTTP_404")
    assert e.title == "Not Found"
    assert e.type == "urn:nv-boot:problem-details:not-found"
    assert e.instance == "/v2/nvcf/functions/%s/versions/%s" % (
        echo["id"], MISSING)
    assert e.detail == e.message
    assert MISSING in e.detail
    assert e.problem["status"] == 404
    assert e.response.headers["Content-Type"] == "application/problem+json"

    with pytest.raises(nvcf.NvcfHttpError) as info:
        stack.api.get_function("not-a-uuid", MISSING)
    assert info.value.status == 400
    assert info.value.detail == ("Invalid functionId 'not-a-uuid': must be "
                                 "a UUID")


def test_wrong_key(stack, echo):
    api, gateway = stack.client("nvapi-not-a-key")
    with pytest.raises(nvcf.NvcfHttpError) as info:
        api.list_functions()
    assert info.value.status == 401
    r = gateway.invoke(echo["id"], {})
    assert r.status == 401
    with pytest.raises(nvcf.NvcfHttpError):
        r.raise_for_status()


def test_other_account_sees_nothing(stack, echo):
    key = stack.create_key("py-other")
    api, gateway = stack.client(key)
    assert api.list_functions() == []
    with pytest.raises(nvcf.NvcfHttpError) as info:
        api.get_function(echo["id"], echo["versionId"])
    assert info.value.status == 404
    assert gateway.invoke(echo["id"], {}).status == 404


def test_bus_of_the_stack(stack, echo):
    with stack.bus() as b:
        record, revision = b.kv_get(
            nvcf.bus.BUCKET_FUNCTIONS, "local-admin.%s.%s" % (
                echo["id"], echo["versionId"]))
        assert revision > 0
        assert json.loads(record)["status"] == "ACTIVE"
        assert b.kv_keys(nvcf.bus.BUCKET_CLUSTERS) == ["local-1"]
        assert b.queue_depth(echo["versionId"]) == (0, 0)


def test_undeploy_and_delete(stack):
    fn = stack.api.create_function("py-short", "/echo", "file://" + PYECHO,
                                   health_uri="/health")
    stack.api.deploy(fn["id"], fn["versionId"], "L40S", "NCP.GPU.L40S_1x",
                     wait=True)
    after = stack.api.delete_deployment(fn["id"], fn["versionId"])
    assert after["id"] == fn["id"]
    with pytest.raises(nvcf.NvcfHttpError) as info:
        stack.api.delete_deployment(fn["id"], fn["versionId"])
    assert info.value.status == 404
    stack.api.delete_version(fn["id"], fn["versionId"])
    with pytest.raises(nvcf.NvcfHttpError) as info:
        stack.api.get_function(fn["id"], fn["versionId"])
    assert info.value.status == 404


def test_deploy_needs_a_spec(stack, echo):
    with pytest.raises(ValueError, match="needs gpu and instance_type"):
        stack.api.deploy(echo["id"], echo["versionId"])


def test_exit_tears_down_even_on_error():
    with pytest.raises(RuntimeError, match="boom"):
        with nvcf.LocalStack() as s:
            pids = list(s.processes().values())
            assert len(pids) >= 4
            state = s.state_dir
            assert all(pid_alive(p) for p in pids)
            raise RuntimeError("boom")
    assert not s.running
    wait_for(lambda: not any(pid_alive(p) for p in pids), timeout=15,
             what="the stack's processes to exit")
    assert not os.path.exists(state)


def test_keep_state_and_logs(tmp_path):
    state = tmp_path / "state"
    with nvcf.LocalStack(state_dir=str(state), log_level="debug") as s:
        assert s.state_dir == str(state.resolve())
        assert s.log("nvcf-api") != ""
        assert s.log("no-such-process") == ""
    assert (state / "logs" / "nvca.log").exists()
    assert not (state / "env").exists()


def test_bad_backend_reports_the_failure(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("this: is not a backend\n")
    start = time.monotonic()
    with pytest.raises(nvcf.LocalStackError, match="nvcf up failed"):
        nvcf.LocalStack(backend=str(bad)).start()
    assert time.monotonic() - start < 60
