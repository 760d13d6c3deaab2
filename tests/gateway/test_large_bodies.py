# SPDX-License-Identifier: Apache-2.0
"""Request and response bodies larger than one NATS message.

The gateway stores a request body over its inline limit as chunks in
stream NVCF_BODIES (body.{requestId}.{n}); the worker reads them, calls
the function with the whole body and purges them after the result. A
response body over the worker's inline limit travels as chunks on
res.{requestId}.c.{n} in NVCF_RESULTS, which the gateway reads back.

The stack's gateway takes bodies up to 4 MiB, so a 5 MiB body shows the
413 without sending 64 MiB. The pyecho function's /raw route echoes the
body byte for byte.
"""
import base64
import hashlib
import os
import signal
import sys
import threading
import time
import uuid

import pytest

import nvcfstack
from nvcfstack import http, wait_for

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tasks"))
import rawnats  # noqa: E402

PEXEC = "/v2/nvcf/pexec/functions/"
STATUS = "/v2/nvcf/pexec/status/"
MAX_BODY = 4 << 20
BIG = 3 << 20


@pytest.fixture(scope="module")
def s():
    stack = nvcfstack.Stack(gateway_args=["--max-body-bytes", str(MAX_BODY)],
                            ack_wait_ms=2000)
    with stack:
        yield stack


@pytest.fixture(scope="module")
def nats(s):
    c = rawnats.Client(s.nats_url)
    yield c
    c.close()


@pytest.fixture(scope="module")
def raw(s):
    """A version of pyecho whose inference URL echoes bytes; 2 instances."""
    fn = nvcfstack.create_function(s, s.admin_key, name="raw",
                                   inference_url="/raw")
    nvcfstack.deploy(s, s.admin_key, fn["id"], fn["versionId"], min=2,
                     max=2)
    return fn


def big_body(size=BIG):
    return os.urandom(size)


def invoke(s, fn, body, headers=None, timeout=60):
    hdrs = {"Content-Type": "application/octet-stream"}
    hdrs.update(headers or {})
    return http("POST", s.invoke_url + PEXEC + fn["id"], key=s.admin_key,
                body=body, headers=hdrs, timeout=timeout)


def stream_subjects(nats, stream, filter_subject):
    """{subject: messages} of `stream` that match `filter_subject`."""
    r = nats.request("$JS.API.STREAM.INFO." + stream,
                     {"subjects_filter": filter_subject})
    assert "error" not in r, r
    return r["state"].get("subjects") or {}


def body_chunks(nats, rid=None):
    return stream_subjects(nats, "NVCF_BODIES",
                           "body.%s.>" % rid if rid else "body.>")


def result_chunks(nats, rid):
    return stream_subjects(nats, "NVCF_RESULTS", "res.%s.c.>" % rid)


def assert_echoed(r, body):
    assert r.status == 200, r
    assert len(r.body) == len(body)
    assert hashlib.sha256(r.body).digest() == hashlib.sha256(body).digest()
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert r.headers["NVCF-STATUS"] == "fulfilled"


def test_large_body_echoed_through_pexec(s, nats, raw):
    body = big_body()
    r = invoke(s, raw, body)
    assert_echoed(r, body)
    rid = r.headers["NVCF-REQID"]
    wait_for(lambda: not body_chunks(nats, rid),
             what="request body chunks purged after the result")
    # Like an inline result, a live response stays pollable once.
    assert result_chunks(nats, rid)
    again = http("GET", s.invoke_url + STATUS + rid, key=s.admin_key)
    assert_echoed(again, body)
    assert not result_chunks(nats, rid)


def test_small_body_stays_inline(s, nats, raw):
    r = invoke(s, raw, b"x" * 54)
    assert r.status == 200, r
    assert r.body == b"x" * 54
    assert not body_chunks(nats, r.headers["NVCF-REQID"])


def test_large_body_through_poll(s, nats, raw):
    body = big_body()
    r = invoke(s, raw, body, headers={"NVCF-POLL-SECONDS": "1",
                                      "X-Echo-Sleep": "3"})
    assert r.status == 202, r
    rid = r.headers["NVCF-REQID"]
    deadline = time.monotonic() + 30
    while r.status == 202 and time.monotonic() < deadline:
        r = http("GET", s.invoke_url + STATUS + rid, key=s.admin_key,
                 headers={"NVCF-POLL-SECONDS": "2"}, timeout=30)
    assert_echoed(r, body)
    assert r.headers["NVCF-REQID"] == rid
    wait_for(lambda: not body_chunks(nats, rid),
             what="request body chunks purged after the result")
    assert not result_chunks(nats, rid)
    # The poll that returned the result made it unpollable.
    again = http("GET", s.invoke_url + STATUS + rid, key=s.admin_key)
    assert again.status == 404, again


def test_body_over_maximum_gets_413(s, nats, raw):
    before = body_chunks(nats)
    r = invoke(s, raw, big_body(MAX_BODY + 1))
    assert r.status == 413, r
    assert r.headers["Content-Type"] == "application/problem+json"
    detail = r.json()["detail"]
    assert str(MAX_BODY + 1) in detail, detail
    assert str(MAX_BODY) in detail, detail
    assert body_chunks(nats) == before


def test_body_at_maximum_accepted(s, raw):
    body = big_body(MAX_BODY)
    assert_echoed(invoke(s, raw, body), body)


def instances(nats, vid):
    """Instance records of `vid` from KV nvcf_instances."""
    r = nats.request("$JS.API.STREAM.INFO.KV_nvcf_instances",
                     {"subjects_filter": "$KV.nvcf_instances.%s.>" % vid})
    recs = []
    for subject in (r["state"].get("subjects") or {}):
        key = subject[len("$KV.nvcf_instances."):]
        rec = nats.kv_get("nvcf_instances", key)
        if rec is not None:
            recs.append(rec)
    return recs


def running(nats, vid, count):
    recs = [r for r in instances(nats, vid)
            if r["instanceStatus"] == "RUNNING"]
    return recs if len(recs) >= count else None


def started_count(s, rec):
    """Requests the function of instance `rec` has logged so far."""
    path = os.path.join(s.dir, "nvca", "instances",
                        rec["instanceId"] + ".log")
    with open(path) as f:
        return f.read().count("pyecho: started ")


def test_killed_worker_chunked_request_served_once(s, nats, raw):
    recs = wait_for(lambda: running(nats, raw["versionId"], 2),
                    what="2 RUNNING instances")
    before = {rec["instanceId"]: started_count(s, rec) for rec in recs}
    body = big_body()
    result = {}

    def call():
        result["r"] = invoke(s, raw, body, headers={"X-Echo-Sleep": "2"})
    t = threading.Thread(target=call)
    t.start()

    # The request reaches one function: find which through its log.
    def which():
        for rec in recs:
            if started_count(s, rec) > before[rec["instanceId"]]:
                return rec
        return None
    first = wait_for(which, what="request to reach a function")
    os.kill(first["workerPid"], signal.SIGKILL)
    t.join(60)
    r = result["r"]
    assert_echoed(r, body)
    other = [rec for rec in recs if rec is not first][0]
    assert int(r.headers["X-Echo-Pid"]) == other["pid"]
    rid = r.headers["NVCF-REQID"]
    seen = http("GET", "http://127.0.0.1:%d/seen?id=%s" % (
        other["port"], rid)).json()
    assert seen["count"] == 1
    wait_for(lambda: not body_chunks(nats, rid),
             what="request body chunks purged after the result")


# ---- requests published straight to the queue ----------------------------

def pb_varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def pb_field(number, value):
    if isinstance(value, int):
        return pb_varint(number << 3) + pb_varint(value)
    if isinstance(value, str):
        value = value.encode()
    return pb_varint(number << 3 | 2) + pb_varint(len(value)) + value


def queue_chunked_request(nats, fn, rid, size, chunks, digest):
    """Publishes an InvokeRequest that announces a chunked body."""
    msg = b"".join([
        pb_field(1, rid), pb_field(2, "admin-acct"), pb_field(3, fn["id"]),
        pb_field(4, fn["versionId"]), pb_field(6, "POST"),
        pb_field(7, "/raw"), pb_field(14, size), pb_field(15, chunks),
        pb_field(16, digest)])
    ack = nats.request("rq.local.%s.%s" % (fn["versionId"], rid), msg)
    assert "error" not in ack, ack


def final_result(nats, rid):
    r = nats.request("$JS.API.STREAM.MSG.GET.NVCF_RESULTS",
                     {"last_by_subj": "res." + rid})
    if "message" not in r:
        return None
    fields = rawnats.pb_decode(base64.b64decode(r["message"]["data"]))
    if fields.get(2, [0])[-1] != 4:  # RESULT_KIND_FINAL
        return None
    return fields


def test_missing_chunk_gives_502(s, nats, raw):
    rid = str(uuid.uuid4())
    queue_chunked_request(nats, raw, rid, 1000, 2, b"\0" * 32)
    fields = wait_for(lambda: final_result(nats, rid), timeout=30,
                      what="FINAL result of request %s" % rid)
    assert fields[3][-1] == 502
    detail = fields[5][-1].decode()
    assert rid in detail, detail
    assert "chunk 1 of 2" in detail, detail
    assert "not found" in detail, detail


def test_corrupt_chunk_gives_500(s, nats, raw):
    rid = str(uuid.uuid4())
    data = b"a" * 1000
    ack = nats.request("body.%s.0" % rid, b"b" * 1000)
    assert "error" not in ack, ack
    queue_chunked_request(nats, raw, rid, len(data), 1,
                          hashlib.sha256(data).digest())
    fields = wait_for(lambda: final_result(nats, rid), timeout=30,
                      what="FINAL result of request %s" % rid)
    assert fields[3][-1] == 500
    detail = fields[5][-1].decode()
    assert rid in detail, detail
    assert "digest" in detail, detail
    wait_for(lambda: not body_chunks(nats, rid),
             what="corrupt chunks purged after the result")


def test_no_chunks_left_behind(s, nats, raw):
    wait_for(lambda: not body_chunks(nats), what="NVCF_BODIES empty")
