# SPDX-License-Identifier: Apache-2.0
"""The embedding example, examples/custom-gateway, as a user would build it.

The module installs the built library into a temporary prefix. It then
compiles the example against that prefix with nothing but cc and
`pkg-config --cflags --libs libnvcf`, and runs it beside a stack that has
no nvcf-invocation. The pyecho function is invoked through it with team
tokens and with API keys.
"""
import glob
import os
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

import pytest

import nvcfstack
from nvcfstack import http, wait_for

EXAMPLE = os.path.join(nvcfstack.SOURCE, "examples", "custom-gateway",
                       "gateway.c")
PEXEC = "/v2/nvcf/pexec/functions/"
STATUS = "/v2/nvcf/pexec/status/"
TOKEN_A = "tok-a-7f3c9e1d2b"
TOKEN_B = "tok-b-0a4e8c6f5d"
NO_TOKEN = ("send your team token as 'X-Team-Token: <token>', or an NVCF "
            "API key as 'Authorization: Bearer <key>'")
BAD_TOKEN = ("unknown team token in X-Team-Token; ask the gateway's "
             "operator for one")


def pc_variable(text, name):
    for line in text.splitlines():
        if line.startswith(name + "="):
            return line[len(name) + 1:].strip()
    raise AssertionError("libnvcf.pc has no %s= line:\n%s" % (name, text))


@pytest.fixture(scope="module")
def workdir():
    d = tempfile.mkdtemp(prefix="nvcf-embed-")
    yield d
    if not os.environ.get("NVCF_KEEP_STATE"):
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def installed(workdir):
    """(pkg-config command, lib dir, include dir) of a DESTDIR install."""
    meson = shutil.which("meson")
    assert meson, "meson is not on PATH"
    dest = os.path.join(workdir, "dest")
    out = subprocess.run(
        [meson, "install", "-C", nvcfstack.BUILD, "--destdir", dest,
         "--no-rebuild", "--quiet"],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    pcs = glob.glob(os.path.join(dest, "**", "pkgconfig", "libnvcf.pc"),
                    recursive=True)
    assert len(pcs) == 1, pcs
    with open(pcs[0]) as f:
        text = f.read()
    # The .pc file names the final prefix, but the files are in DESTDIR.
    prefix = dest + pc_variable(text, "prefix")
    pkg = ["pkg-config", "--define-variable=prefix=" + prefix]
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.dirname(pcs[0]))
    libdir = subprocess.run(pkg + ["--variable=libdir", "libnvcf"],
                            env=env, capture_output=True, text=True,
                            check=True).stdout.strip()
    incdir = subprocess.run(pkg + ["--variable=includedir", "libnvcf"],
                            env=env, capture_output=True, text=True,
                            check=True).stdout.strip()
    assert libdir.startswith(dest), libdir
    assert os.path.exists(os.path.join(libdir, "libnvcf.so.0")), libdir
    assert os.path.exists(os.path.join(incdir, "nvcf", "gateway.h")), incdir
    return pkg, env, libdir, incdir


@pytest.fixture(scope="module")
def binary(workdir, installed):
    pkg, env, libdir, incdir = installed
    flags = subprocess.run(pkg + ["--cflags", "--libs", "libnvcf"],
                           env=env, capture_output=True, text=True,
                           check=True).stdout.split()
    # Only the temporary prefix may provide libnvcf, not the trees.
    assert "-I" + incdir in flags, flags
    assert "-L" + libdir in flags, flags
    for f in flags:
        assert nvcfstack.SOURCE not in f, f
        assert nvcfstack.BUILD not in f, f
    exe = os.path.join(workdir, "custom-gateway")
    out = subprocess.run(
        ["cc", "-Wall", "-Wextra", "-Werror", "-o", exe, EXAMPLE] + flags,
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    ldd = subprocess.run(["ldd", exe], capture_output=True, text=True,
                         env=dict(os.environ, LD_LIBRARY_PATH=libdir))
    assert os.path.join(libdir, "libnvcf.so.0") in ldd.stdout, ldd.stdout
    return exe


@pytest.fixture(scope="module")
def stack():
    s = nvcfstack.Stack(gateway=False)
    s.start()
    try:
        s.key_a = s.create_key("team-a")
        s.key_b = s.create_key("team-b")
        fn = nvcfstack.create_function(s, s.key_a, name="embed-echo")
        s.fid, s.vid = fn["id"], fn["versionId"]
        nvcfstack.deploy(s, s.key_a, s.fid, s.vid)
        # team-b owns a function too, so its token is a working one.
        fb = nvcfstack.create_function(s, s.key_b, name="embed-echo-b")
        s.fid_b = fb["id"]
        yield s
    finally:
        s.stop()


class Gateway:
    def __init__(self, exe, libdir, nats_url, token_file, log_path):
        self.log_path = log_path
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [exe, "--nats", nats_url, "--listen", "127.0.0.1:0",
             "--token-file", token_file, "--log-level", "debug"],
            stdout=subprocess.PIPE, stderr=self.log,
            env=dict(os.environ, LD_LIBRARY_PATH=libdir))
        line = self._read_line(30)
        assert line.startswith("listening on 127.0.0.1:"), \
            (line, self.text())
        self.port = int(line.rsplit(":", 1)[1])
        self.url = "http://127.0.0.1:%d" % self.port
        wait_for(lambda: http("GET", self.url + "/health",
                              timeout=2).status == 200,
                 timeout=20, what="custom-gateway /health")

    def _read_line(self, timeout):
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        data = b""
        deadline = time.monotonic() + timeout
        while not data.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                raise AssertionError("custom-gateway printed no port:\n" +
                                     self.text())
            chunk = os.read(self.proc.stdout.fileno(), 256)
            if not chunk:
                raise AssertionError("custom-gateway exited with %s:\n%s"
                                     % (self.proc.wait(5), self.text()))
            data += chunk
        sel.close()
        return data.decode().strip()

    def text(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.log.close()
        return self.proc.returncode


@pytest.fixture(scope="module")
def gateway(workdir, installed, binary, stack):
    tokens = os.path.join(workdir, "teams.txt")
    with open(tokens, "w") as f:
        f.write("# token  ncaId  subject\n"
                "%s team-a alice@team-a\n"
                "\n"
                "%s team-b   # no subject: team:team-b\n" % (TOKEN_A, TOKEN_B))
    gw = Gateway(binary, installed[2], stack.nats_url, tokens,
                 os.path.join(workdir, "custom-gateway.log"))
    yield gw
    gw.stop()


def seen_headers(resp):
    return {k.lower(): v for k, v in resp.json()["headers"].items()}


def assert_problem(resp, status, detail):
    assert resp.status == status, resp
    assert resp.headers["Content-Type"] == "application/problem+json"
    doc = resp.json()
    assert doc["status"] == status, doc
    assert doc["detail"] == detail, doc
    return doc


def test_team_token_invokes_its_account_function(stack, gateway):
    r = http("POST", gateway.url + PEXEC + stack.fid,
             json_body={"hello": "team-a"},
             headers={"X-Team-Token": TOKEN_A, "X-Trace": "t-1"})
    assert r.status == 200, (r, gateway.text()[-2000:])
    doc = r.json()
    assert doc["body"] == '{"hello": "team-a"}'
    assert doc["path"] == "/echo"
    seen = seen_headers(r)
    assert seen["nvcf-ncaid"] == "team-a"
    assert seen["nvcf-sub"] == "alice@team-a"
    assert seen["nvcf-function-id"] == stack.fid
    assert seen["x-trace"] == "t-1"
    # The caller's secret stays in the gateway.
    assert "x-team-token" not in seen
    assert r.headers["NVCF-STATUS"] == "fulfilled"


def test_team_token_version_and_header_routes(stack, gateway):
    r = http("POST", gateway.url + PEXEC + stack.fid + "/versions/" +
             stack.vid, body="plain",
             headers={"X-Team-Token": TOKEN_A})
    assert r.status == 200, r
    assert r.json()["body"] == "plain"
    r = http("POST", gateway.url + "/echo/routed?q=1", body="by header",
             headers={"X-Team-Token": TOKEN_A, "function-id": stack.fid})
    assert r.status == 200, r
    assert r.json()["path"] == "/echo/routed?q=1"
    assert r.json()["body"] == "by header"


def test_no_credentials_gets_rule_401(stack, gateway):
    assert_problem(http("POST", gateway.url + PEXEC + stack.fid,
                        body="x"), 401, NO_TOKEN)
    # The rule runs before URL validation and on status polls too.
    assert_problem(http("POST", gateway.url + PEXEC + "not-a-uuid",
                        body="x"), 401, NO_TOKEN)
    assert_problem(http("GET", gateway.url + STATUS + str(uuid.uuid4())),
                   401, NO_TOKEN)


def test_unknown_team_token_is_401(stack, gateway):
    for token in ("tok-a-7f3c9e1d2c", TOKEN_A[:-1], TOKEN_A + "x",
                  TOKEN_A.upper()):
        assert_problem(http("POST", gateway.url + PEXEC + stack.fid,
                            body="x", headers={"X-Team-Token": token}),
                       401, BAD_TOKEN)


def test_other_accounts_token_gets_404(stack, gateway):
    r = http("POST", gateway.url + PEXEC + stack.fid, body="x",
             headers={"X-Team-Token": TOKEN_B})
    assert_problem(r, 404, "Function id '%s' not found or has no ACTIVE "
                   "version" % stack.fid)
    # And team-a cannot reach team-b's function.
    r = http("POST", gateway.url + PEXEC + stack.fid_b, body="x",
             headers={"X-Team-Token": TOKEN_A})
    assert_problem(r, 404, "Function id '%s' not found or has no ACTIVE "
                   "version" % stack.fid_b)


def test_team_token_poll_unknown_request(stack, gateway):
    r = http("GET", gateway.url + STATUS + str(uuid.uuid4()),
             headers={"X-Team-Token": TOKEN_A, "NVCF-POLL-SECONDS": "1"})
    assert_problem(r, 404, "request id not found")


def test_api_keys_still_work(stack, gateway):
    r = http("POST", gateway.url + PEXEC + stack.fid, key=stack.key_a,
             body="by key")
    assert r.status == 200, r
    assert r.json()["body"] == "by key"
    assert seen_headers(r)["nvcf-ncaid"] == "team-a"
    r = http("POST", gateway.url + PEXEC + stack.fid, key=stack.key_b,
             body="x")
    assert r.status == 404, r
    r = http("POST", gateway.url + PEXEC + stack.fid,
             key="nvapi-stg-not-a-real-key", body="x")
    assert r.status == 401, r


def test_sigterm_stops_cleanly(gateway):
    assert gateway.stop() == 0, gateway.text()[-2000:]
    assert "stopping" in gateway.text()
