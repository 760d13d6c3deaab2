# SPDX-License-Identifier: Apache-2.0
"""Integration tests of nvcf-invocation against a whole local stack.

One stack serves the module: nats-server, nvcf-api, nvca and the gateway,
with the pyecho test function. When nvcf-api supports --queue-max-msgs,
queues are limited to 2 messages so that a full queue can be tested.
"""
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
import uuid

import pytest

import nvcfstack
from nvcfstack import http, wait_for

PEXEC = "/v2/nvcf/pexec/functions/"
STATUS = "/v2/nvcf/pexec/status/"


def api_has_flag(flag):
    exe = nvcfstack.binary("nvcf-api")
    if not os.path.exists(exe):
        return False
    out = subprocess.run([exe, "--help"], capture_output=True, text=True,
                         timeout=10)
    return flag in out.stdout + out.stderr


QUEUE_LIMIT = api_has_flag("--queue-max-msgs")


def seen_headers(resp):
    """Request headers the function saw, with lower-case names."""
    return {k.lower(): v for k, v in resp.json()["headers"].items()}


def is_uuid(text):
    try:
        return str(uuid.UUID(text)) == text
    except (TypeError, ValueError):
        return False


def assert_problem(resp, status):
    assert resp.status == status, resp
    assert resp.headers["Content-Type"] == "application/problem+json"
    doc = resp.json()
    assert doc["status"] == status
    assert "type" not in doc
    assert "NVCF-REQID" not in resp.headers
    return doc


@pytest.fixture(scope="module")
def s():
    args = ["--queue-max-msgs", "2"] if QUEUE_LIMIT else []
    with nvcfstack.Stack(api_args=args) as stack:
        yield stack


@pytest.fixture(scope="module")
def echo(s):
    fn = nvcfstack.create_function(s, s.admin_key, name="echo")
    nvcfstack.deploy(s, s.admin_key, fn["id"], fn["versionId"])
    return fn


def invoke(s, fid, key, body=None, headers=None, version=None, url=None):
    path = PEXEC + fid + ("/versions/" + version if version else "")
    return http("POST", (url or s.invoke_url) + path, key=key,
                json_body=body, headers=headers)


def poll_until_done(url, key, rid, timeout=30):
    """Polls until the status is not 202; returns that response."""
    def done():
        r = http("GET", url + STATUS + rid, key=key,
                 headers={"NVCF-POLL-SECONDS": "5"})
        return None if r.status == 202 else r
    return wait_for(done, timeout=timeout, interval=0.01,
                    what="request %s to finish" % rid)


def start_pending(s, echo, seconds=3, url=None):
    """Starts a call that outlives its 1 s window; returns its request id."""
    r = invoke(s, echo["id"], s.admin_key, body={"sleep": seconds},
               headers={"NVCF-POLL-SECONDS": "1"}, url=url)
    assert r.status == 202, r
    assert r.body == b""
    assert r.headers["NVCF-STATUS"] == "in-progress"
    rid = r.headers["NVCF-REQID"]
    assert is_uuid(rid)
    return rid


def test_health_and_metrics(s):
    r = http("GET", s.invoke_url + "/health")
    assert r.status == 200
    assert r.json() == {"status": "OK"}
    r = http("GET", s.invoke_url + "/metrics")
    assert r.status == 200
    text = r.body.decode()
    assert "nvcf_gateway_pending_requests " in text
    assert "nvcf_gateway_publish_errors_total " in text


def test_invoke_returns_function_response(s, echo):
    r = invoke(s, echo["id"], s.admin_key, body={"hello": "world"},
               headers={"X-Custom": "kept"})
    assert r.status == 200, r
    rid = r.headers["NVCF-REQID"]
    assert is_uuid(rid)
    assert r.headers["NVCF-STATUS"] == "fulfilled"
    assert "nvcf-reqid" in r.headers["Access-Control-Expose-Headers"]
    assert r.headers["Content-Type"] == "application/json"
    doc = r.json()
    assert json.loads(doc["body"]) == {"hello": "world"}
    assert doc["method"] == "POST"
    assert doc["path"] == "/echo"  # the version's inferenceUrl
    seen = seen_headers(r)
    assert seen["nvcf-reqid"] == rid
    assert seen["nvcf-ncaid"] == "admin-acct"
    assert seen["nvcf-function-id"] == echo["id"]
    assert seen["nvcf-function-version-id"] == echo["versionId"]
    assert seen["x-custom"] == "kept"
    assert "authorization" not in seen

    r = http("GET", s.invoke_url + "/metrics")
    assert 'nvcf_gateway_requests_total{code="200"}' in r.body.decode()


def test_body_over_max_payload_is_chunked(s, echo):
    # nats-server's default max_payload is 1 MiB; the body is just above,
    # so it travels as JetStream chunks and so does the response.
    body = b"x" * (1024 * 1024 + 1)
    r = http("POST", s.invoke_url + PEXEC + echo["id"], key=s.admin_key,
             body=body,
             headers={"Content-Type": "application/octet-stream"})
    assert r.status == 200, r
    assert r.json()["body"].encode() == body
    r = invoke(s, echo["id"], s.admin_key, body={"after": "large"})
    assert r.status == 200, r


def test_result_over_max_payload_is_chunked(s, echo):
    # pyecho returns the body JSON-escaped: each "é" becomes six bytes, so
    # a 400 kB request gets a 1.2 MB response, above the 1 MiB max_payload.
    text = "\u00e9" * 200000
    r = http("POST", s.invoke_url + PEXEC + echo["id"], key=s.admin_key,
             body=text.encode(),
             headers={"Content-Type": "text/plain; charset=utf-8",
                      "NVCF-POLL-SECONDS": "10"})
    assert r.status == 200, r
    assert len(r.body) > 1024 * 1024
    assert r.json()["body"] == text


def test_result_over_max_response_is_502(s, echo):
    # 11.5 M "é" are a 23 MB request and a 69 MB response, above the
    # worker's 64 MiB default limit.
    r = http("POST", s.invoke_url + PEXEC + echo["id"], key=s.admin_key,
             body=("\u00e9" * 11500000).encode(),
             headers={"Content-Type": "text/plain; charset=utf-8",
                      "NVCF-POLL-SECONDS": "30"}, timeout=120)
    assert r.status == 502, r
    assert r.headers["Content-Type"] == "application/problem+json"
    detail = r.json()["detail"]
    assert "exceeds the limit of 67108864 bytes" in detail, detail


def test_invoke_pinned_version(s, echo):
    r = invoke(s, echo["id"], s.admin_key, body={"v": 1},
               version=echo["versionId"])
    assert r.status == 200, r
    assert seen_headers(r)["nvcf-function-version-id"] == \
        echo["versionId"]


def test_path_mode_does_not_forward_query(s, echo):
    r = http("POST", s.invoke_url + PEXEC + echo["id"] + "?x=1",
             key=s.admin_key, json_body={})
    assert r.status == 200, r
    assert r.json()["path"] == "/echo"


def test_header_routing_passes_path_and_query(s, echo):
    r = http("GET", s.invoke_url + "/echo/sub?x=1&y=two%20words",
             key=s.admin_key, headers={"function-id": echo["id"]})
    assert r.status == 200, r
    doc = r.json()
    assert doc["method"] == "GET"
    assert doc["path"] == "/echo/sub?x=1&y=two%20words"
    assert r.headers["NVCF-STATUS"] == "fulfilled"
    seen = seen_headers(r)
    assert "function-id" not in seen
    assert "authorization" not in seen

    r = http("PUT", s.invoke_url + "/echo", key=s.admin_key,
             body=b"raw bytes",
             headers={"function-id": echo["id"],
                      "function-version-id": echo["versionId"]})
    assert r.status == 200, r
    assert r.json()["method"] == "PUT"
    assert r.json()["body"] == "raw bytes"

    r = http("GET", s.invoke_url + "/echo", key=s.admin_key,
             headers={"function-id": "not-a-uuid"})
    assert r.status == 400
    assert r.headers["Content-Type"].startswith("text/plain")


def test_auth_and_validation_errors(s, echo):
    fid = echo["id"]
    r = http("POST", s.invoke_url + PEXEC + fid, json_body={})
    assert r.status == 401
    assert r.headers["Content-Type"].startswith("text/plain")
    assert r.body == b"Header of type `authorization` was missing"

    assert_problem(invoke(s, fid, "nvapi-" + "x" * 43), 401)
    assert_problem(invoke(s, fid, "not-a-key"), 401)

    nokey = s.create_key("admin-acct", scopes="list_functions")
    assert_problem(invoke(s, fid, nokey), 403)

    r = invoke(s, "1234", s.admin_key)
    assert r.status == 400
    assert r.headers["Content-Type"].startswith("text/plain")
    r = invoke(s, fid, s.admin_key, version="nope")
    assert r.status == 400

    for bad in ("abc", "3601", "-1"):
        assert_problem(invoke(s, fid, s.admin_key,
                              headers={"NVCF-POLL-SECONDS": bad}), 400)

    assert_problem(invoke(s, str(uuid.uuid4()), s.admin_key), 404)
    assert_problem(invoke(s, fid, s.admin_key, version=str(uuid.uuid4())),
                   404)
    r = http("GET", s.invoke_url + STATUS + str(uuid.uuid4()),
             key=s.admin_key)
    assert_problem(r, 404)
    r = http("GET", s.invoke_url + STATUS + "xyz", key=s.admin_key)
    assert r.status == 400
    assert_problem(http("GET", s.invoke_url + "/v2/nvcf/nothing",
                        key=s.admin_key), 404)


def test_undeployed_function_is_404(s):
    fn = nvcfstack.create_function(s, s.admin_key, name="idle")
    doc = assert_problem(invoke(s, fn["id"], s.admin_key), 404)
    assert fn["id"] in doc["detail"]


def test_202_then_poll_returns_result(s, echo):
    rid = start_pending(s, echo)
    r = poll_until_done(s.invoke_url, s.admin_key, rid)
    assert r.status == 200, r
    assert r.headers["NVCF-REQID"] == rid
    assert r.headers["NVCF-STATUS"] == "fulfilled"
    assert json.loads(r.json()["body"]) == {"sleep": 3}
    assert seen_headers(r)["nvcf-reqid"] == rid
    # As in NVCF, a poll that returned the result purges it.
    assert_problem(http("GET", s.invoke_url + STATUS + rid,
                        key=s.admin_key), 404)


def test_cross_account_isolation(s, echo):
    other = s.create_key("other-acct")
    assert_problem(invoke(s, echo["id"], other, body={}), 404)
    assert_problem(invoke(s, echo["id"], other, body={},
                          version=echo["versionId"]), 404)
    r = http("GET", s.invoke_url + "/echo", key=other,
             headers={"function-id": echo["id"]})
    assert_problem(r, 404)

    rid = start_pending(s, echo, seconds=2)
    assert_problem(http("GET", s.invoke_url + STATUS + rid, key=other),
                   404)
    r = poll_until_done(s.invoke_url, s.admin_key, rid)
    assert r.status == 200, r


def test_poll_survives_gateway_restart(s, echo):
    rid = start_pending(s, echo)
    # A connection still waiting when the gateway stops gets 503.
    waiting = {}

    def long_call():
        waiting["r"] = invoke(s, echo["id"], s.admin_key,
                              body={"sleep": 0.5},
                              headers={"NVCF-POLL-SECONDS": "60"})

    t = threading.Thread(target=long_call)
    t.start()
    wait_for(lambda: "nvcf_gateway_pending_requests 1" in http(
        "GET", s.invoke_url + "/metrics").body.decode(), timeout=10,
        what="the long call to be waiting")
    s.restart("gateway")
    t.join(30)
    assert waiting["r"].status in (200, 503), waiting["r"]
    r = poll_until_done(s.invoke_url, s.admin_key, rid)
    assert r.status == 200, r
    assert r.headers["NVCF-REQID"] == rid


def test_poll_from_second_replica(s, echo):
    d = tempfile.mkdtemp(prefix="nvcf-gw2-")
    port_file = os.path.join(d, "port")
    log = open(os.path.join(d, "log"), "wb")
    proc = subprocess.Popen(
        [nvcfstack.binary("nvcf-invocation"), "--nats", s.nats_url,
         "--listen", "127.0.0.1:0", "--port-file", port_file,
         "--threads", "2"], stdout=log, stderr=subprocess.STDOUT)
    try:
        def port():
            assert proc.poll() is None, "second gateway exited"
            if os.path.exists(port_file):
                with open(port_file) as f:
                    return f.read().strip()
            return None
        url = "http://127.0.0.1:%s" % wait_for(port, timeout=20,
                                               what="second gateway")
        r = invoke(s, echo["id"], s.admin_key, body={"r": 2}, url=url)
        assert r.status == 200, r

        rid = start_pending(s, echo, seconds=2)
        r = poll_until_done(url, s.admin_key, rid)
        assert r.status == 200, r
        assert json.loads(r.json()["body"]) == {"sleep": 2}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(15) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            log.close()


def worker_pids(version_id):
    out = subprocess.run(["pgrep", "-f", "nvcf-worker.*" + version_id],
                         capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


@pytest.fixture(scope="module")
def stalled(s):
    """A deployed version whose worker is stopped with SIGSTOP.

    A stopped worker stays alive, so the version stays ACTIVE, but it
    takes nothing: requests wait in the queue until their window ends.
    """
    fn = nvcfstack.create_function(s, s.admin_key, name="stalled")
    nvcfstack.deploy(s, s.admin_key, fn["id"], fn["versionId"])
    pids = wait_for(lambda: worker_pids(fn["versionId"]), timeout=10,
                    what="the worker of the stalled version")
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    yield fn
    for pid in pids:
        os.kill(pid, signal.SIGCONT)


def invoke_concurrently(s, fid, count):
    """Sends @p count invocations at once with a 1 s window."""
    results = []
    lock = threading.Lock()

    def call():
        r = invoke(s, fid, s.admin_key, body={},
                   headers={"NVCF-POLL-SECONDS": "1"})
        with lock:
            results.append(r)

    threads = [threading.Thread(target=call) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def assert_timed_out(r):
    assert r.status == 504, r
    assert r.body == b""
    assert r.headers["NVCF-STATUS"] == "errored"
    assert is_uuid(r.headers["NVCF-REQID"])


def test_no_worker_gives_504(s, stalled):
    started = time.monotonic()
    assert_timed_out(invoke(s, stalled["id"], s.admin_key, body={},
                            headers={"NVCF-POLL-SECONDS": "1"}))
    # The window (1 s) plus the 2 s NVCF gives a worker to take it.
    assert time.monotonic() - started >= 2.9
    # The 504 purged the request, so the queue has room for the next.
    assert_timed_out(invoke(s, stalled["id"], s.admin_key, body={},
                            headers={"NVCF-POLL-SECONDS": "1"}))
    m = http("GET", s.invoke_url + "/metrics").body.decode()
    assert 'nvcf_gateway_requests_total{code="504"}' in m


@pytest.mark.skipif(not QUEUE_LIMIT,
                    reason="nvcf-api has no --queue-max-msgs option yet")
def test_full_queue_gives_429(s, stalled):
    results = invoke_concurrently(s, stalled["id"], 3)
    codes = sorted(r.status for r in results)
    assert codes == [429, 504, 504], results
    full = [r for r in results if r.status == 429][0]
    assert full.headers["Retry-After"] == "1"
    assert "NVCF-REQID" not in full.headers
    for r in results:
        if r.status == 504:
            assert_timed_out(r)
    m = http("GET", s.invoke_url + "/metrics").body.decode()
    assert "nvcf_gateway_publish_errors_total 0" not in m
