# SPDX-License-Identifier: Apache-2.0
"""nvcf_gateway_options.auth_cb cases that the C example does not reach.

The built libnvcf is loaded with ctypes, and a gateway runs in this
process with a Python callback that decides by the X-Case request header.
The cases are denials with other statuses, a misbehaving callback, and
callers that pass a version 1 options struct.
"""
import ctypes
import os

import pytest

import nvcfstack
from nvcfstack import http

PEXEC = "/v2/nvcf/pexec/functions/"
CONTINUE, ALLOW_AS, DENY = 0, 1, 2


class Verdict(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint),
                ("nca_id", ctypes.c_char * 65),
                ("subject", ctypes.c_char * 128),
                ("hide_header", ctypes.c_char * 64),
                ("http_status", ctypes.c_uint),
                ("message", ctypes.c_char * 256)]


AUTH_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p,
                           ctypes.c_void_p, ctypes.POINTER(Verdict),
                           ctypes.c_void_p)


class Options(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint),
                ("nats_url", ctypes.c_char_p),
                ("listen_address", ctypes.c_char_p),
                ("port", ctypes.c_uint16),
                ("threads", ctypes.c_uint),
                ("region", ctypes.c_char_p),
                ("max_body_bytes", ctypes.c_size_t),
                ("extra_wait_seconds", ctypes.c_int),
                ("auth_cb", AUTH_CB),
                ("auth_userdata", ctypes.c_void_p)]


class Error(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint), ("status", ctypes.c_int),
                ("http_status", ctypes.c_int),
                ("jetstream_code", ctypes.c_int),
                ("message", ctypes.c_char_p)]


def load():
    lib = ctypes.CDLL(os.path.join(nvcfstack.BUILD, "libnvcf",
                                   "libnvcf.so.0"))
    lib.nvcf_gateway_new.argtypes = [ctypes.POINTER(ctypes.c_void_p),
                                     ctypes.POINTER(Options)]
    lib.nvcf_gateway_start.argtypes = [ctypes.c_void_p]
    lib.nvcf_gateway_port.argtypes = [ctypes.c_void_p]
    lib.nvcf_gateway_port.restype = ctypes.c_uint16
    lib.nvcf_gateway_free.argtypes = [ctypes.c_void_p]
    lib.nvcf_gateway_free.restype = None
    lib.nvcf_gateway_request_header.argtypes = [ctypes.c_void_p,
                                                ctypes.c_char_p]
    lib.nvcf_gateway_request_header.restype = ctypes.c_char_p
    lib.nvcf_error_last.restype = ctypes.POINTER(Error)
    return lib


LIB = load()
SEEN = []


def decide(method, path, request, verdict, userdata):
    case = LIB.nvcf_gateway_request_header(request, b"x-case")
    SEEN.append((method, path, case))
    v = verdict.contents
    if case == b"deny-429":
        v.http_status = 429
        v.message = b"slow down, team"
        return DENY
    if case == b"deny-default":
        return DENY
    if case == b"deny-302":
        v.http_status = 302
        v.message = b"go elsewhere"
        return DENY
    if case == b"bad-account":
        v.nca_id = b"_team-a"
        return ALLOW_AS
    if case == b"bogus":
        return 7
    if case == b"as-team-a":
        v.nca_id = b"team-a"
        return ALLOW_AS
    return CONTINUE


CALLBACK = AUTH_CB(decide)


def start_gateway(nats_url, version):
    opts = Options(version, nats_url.encode(), b"127.0.0.1", 0, 2, None, 0,
                   -1, CALLBACK, None)
    gw = ctypes.c_void_p()
    st = LIB.nvcf_gateway_new(ctypes.byref(gw), ctypes.byref(opts))
    assert st == 0, LIB.nvcf_error_last().contents.message
    st = LIB.nvcf_gateway_start(gw)
    assert st == 0, LIB.nvcf_error_last().contents.message
    return gw, "http://127.0.0.1:%d" % LIB.nvcf_gateway_port(gw)


@pytest.fixture(scope="module")
def stack():
    s = nvcfstack.Stack(gateway=False)
    s.start()
    try:
        s.key_a = s.create_key("team-a")
        fn = nvcfstack.create_function(s, s.key_a, name="hook-echo")
        s.fid = fn["id"]
        nvcfstack.deploy(s, s.key_a, s.fid, fn["versionId"])
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def gateway(stack):
    gw, url = start_gateway(stack.nats_url, 2)
    yield url
    LIB.nvcf_gateway_free(gw)


def problem(resp):
    assert resp.headers["Content-Type"] == "application/problem+json"
    return resp.json()


def test_deny_sends_status_and_message(stack, gateway):
    r = http("POST", gateway + PEXEC + stack.fid, body="x",
             headers={"X-Case": "deny-429"})
    assert r.status == 429, r
    assert problem(r)["detail"] == "slow down, team"
    assert SEEN[-1] == (b"POST", (PEXEC + stack.fid).encode(), b"deny-429")


def test_deny_defaults_to_401_denied(stack, gateway):
    r = http("POST", gateway + PEXEC + stack.fid, body="x",
             headers={"X-Case": "deny-default"})
    assert r.status == 401, r
    assert problem(r)["detail"] == "denied"


@pytest.mark.parametrize("case,detail", [
    ("deny-302", "go elsewhere"),
    ("bad-account", "authentication failed"),
    ("bogus", "authentication failed"),
])
def test_callback_misuse_is_500(stack, gateway, case, detail):
    r = http("POST", gateway + PEXEC + stack.fid, body="x",
             headers={"X-Case": case})
    assert r.status == 500, r
    assert problem(r)["detail"] == detail


def test_allow_as_without_hide_forwards_header(stack, gateway):
    r = http("POST", gateway + PEXEC + stack.fid, body="as",
             headers={"X-Case": "as-team-a"})
    assert r.status == 200, r
    seen = {k.lower(): v for k, v in r.json()["headers"].items()}
    assert seen["x-case"] == "as-team-a"
    assert seen["nvcf-ncaid"] == "team-a"
    assert seen.get("nvcf-sub", "") == ""


def test_continue_keeps_builtin_key_check(stack, gateway):
    r = http("POST", gateway + PEXEC + stack.fid, body="x")
    assert r.status == 401, r
    assert r.body == b"Header of type `authorization` was missing"
    r = http("POST", gateway + PEXEC + stack.fid, key=stack.key_a,
             body="key")
    assert r.status == 200, r


def test_health_skips_the_callback(gateway):
    before = len(SEEN)
    r = http("GET", gateway + "/health", headers={"X-Case": "deny-429"})
    assert r.status == 200, r
    assert len(SEEN) == before


def test_version_1_options_ignore_auth_cb(stack):
    gw, url = start_gateway(stack.nats_url, 1)
    try:
        r = http("POST", url + PEXEC + stack.fid, body="x",
                 headers={"X-Case": "deny-429"})
        assert r.status == 401, r
        assert r.body == b"Header of type `authorization` was missing"
    finally:
        LIB.nvcf_gateway_free(gw)
