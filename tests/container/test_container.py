# SPDX-License-Identifier: Apache-2.0
"""The container runtime client against a real podman engine.

Every operation goes through the C client (libnvcf/runtime/docker.c) by
way of nvcf-docker-tool; podman's own CLI and raw API calls are used only
to set things up and to check what the client did.
"""
import http.client
import json
import os
import subprocess
import time

import pytest

import nvcfstack
import podmanenv

TOOL = os.environ.get("NVCF_DOCKER_TOOL", os.path.join(
    nvcfstack.BUILD, "tests", "container", "nvcf-docker-tool"))
MISSING = "localhost/nvcf-missing:1"

missing = podmanenv.missing_tools()
pytestmark = pytest.mark.skipif(
    bool(missing), reason="container tests need %s" % ", ".join(missing))


@pytest.fixture(scope="module")
def engine():
    pm = podmanenv.Podman()
    try:
        pm.start()
        pm.build_echo_image()
        yield pm
    finally:
        pm.stop()
    assert not os.path.exists(pm.socket)


class Tool:
    def __init__(self, socket_path):
        self.socket = socket_path

    def run(self, *args, timeout=90):
        return subprocess.run([TOOL, self.socket] + [str(a) for a in args],
                              capture_output=True, text=True,
                              timeout=timeout)

    def ok(self, *args, timeout=90):
        r = self.run(*args, timeout=timeout)
        assert r.returncode == 0, "%s failed: %s" % (args, r.stderr)
        return r.stdout

    def json(self, *args, timeout=90):
        return json.loads(self.ok(*args, timeout=timeout))

    def error(self, *args):
        r = self.run(*args)
        assert r.returncode == 1, "%s should fail: %r" % (args, r)
        assert r.stdout == ""
        return r.stderr


@pytest.fixture
def tool(engine):
    t = Tool(engine.socket)
    yield t
    engine.podman("rm", "--force", "--time", "0", "--filter",
                  "label=nvcf.test", check=False)


def get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def post(port, path, body, headers):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        c.request("POST", path, body=body, headers=headers)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def healthy(port):
    try:
        return get(port, "/health") == (200, b"ok")
    except OSError:
        return False


def wait_status(tool, cid, status, timeout=20):
    return nvcfstack.wait_for(
        lambda: (lambda s: s if s["status"] == status else None)(
            tool.json("inspect", cid)),
        timeout=timeout, what="container %s to be %s" % (cid, status))


def test_ping_and_image_present(engine, tool):
    tool.ok("ping")
    image_id = tool.ok("ensure", podmanenv.ECHO_TAG).strip()
    listed = engine.podman("image", "inspect", "--format", "{{.Id}}",
                           podmanenv.ECHO_TAG).stdout.strip()
    assert image_id in (listed, "sha256:" + listed)


def test_missing_image_is_a_clear_error(tool):
    err = tool.error("ensure", MISSING)
    assert err.startswith(
        "error: NVCF_ENOTFOUND (http 404): image %s is not present in the "
        "container engine and no registry pull was possible: " % MISSING)
    # The engine's reason for the failed pull is kept.
    assert "registry localhost is blocked" in err
    assert err.rstrip().endswith("load the image locally (podman load or "
                                 "import) or make its registry reachable")

    err = tool.error("create", "--name", "nvcf-missing-1", "--image",
                     MISSING, "--label", "nvcf.test=missing")
    assert err.startswith(
        "error: NVCF_ENOTFOUND (http 404): creating container "
        "nvcf-missing-1 for image %s: 404 " % MISSING), err
    assert MISSING in err[len("error: "):].split(": 404 ", 1)[1]


def test_echo_container_lifecycle(engine, tool):
    cid = tool.ok("create", "--name", "nvcf-echo-1",
                  "--image", podmanenv.ECHO_TAG, "--port", 8000,
                  "--env", "PORT=8000", "--label", "nvcf.test=lifecycle",
                  "--label", "nvcf.instance=echo-1",
                  "--gpu", "0", "--gpu", "1").strip()
    assert len(cid) == 64
    created = tool.json("inspect", cid, 8000)
    assert created["status"] == "created"
    assert created["name"] == "nvcf-echo-1"
    assert created["image"] == podmanenv.ECHO_TAG

    tool.ok("start", cid)
    state = tool.json("inspect", "nvcf-echo-1", 8000)
    assert state["status"] == "running"
    port = state["host_port"]
    assert 0 < port < 65536
    nvcfstack.wait_for(lambda: healthy(port), timeout=20,
                       what="echo /health on 127.0.0.1:%d" % port)

    body = b'{"prompt": "hi \\"there\\"", "n": 1}\n'
    status, reply = post(port, "/echo", body,
                         {"Content-Type": "application/json",
                          "NVCF-REQID": "req-1",
                          "NVCF-FUNCTION-ID": "fn-1",
                          "Other": "not echoed"})
    assert status == 200
    assert json.loads(reply) == {
        "body": body.decode(),
        "headers": {"NVCF-REQID": "req-1", "NVCF-FUNCTION-ID": "fn-1"},
        "path": "/echo", "method": "POST"}
    assert post(port, "/fail", b"", {})[0] == 500

    # The GPU ids reach the container even where the engine ignores
    # DeviceRequests.
    code, raw = engine.api("GET", "/containers/%s/json" % cid)
    assert code == 200
    env = json.loads(raw)["Config"]["Env"]
    assert "NVIDIA_VISIBLE_DEVICES=0,1" in env
    assert "CUDA_VISIBLE_DEVICES=0,1" in env
    assert json.loads(raw)["Config"]["Labels"]["nvcf.instance"] == "echo-1"

    logs = tool.ok("logs", cid, 0)
    assert logs.startswith("echo: listening on port 8000\n")
    assert "echo: POST /echo %d bytes\n" % len(body) in logs
    assert "\x00" not in logs
    assert "\x01" not in logs
    assert tool.ok("logs", cid, 1) == "echo: POST /fail 0 bytes\n"

    watch = tool.json("watch", cid, "--port", 8000, "--timeout-s", 20)
    assert watch["phase"] == "running", watch
    assert watch["message"] == "container running and healthy"

    started = time.monotonic()
    tool.ok("stop", cid, 10)
    # start.sh stops on SIGTERM; no wait for the SIGKILL.
    assert time.monotonic() - started < 8
    state = tool.json("inspect", cid)
    assert state["status"] == "exited"
    assert state["exit_code"] == 0
    assert tool.ok("logs", cid, 1) == "echo: stopping\n"
    tool.ok("stop", cid, 1)  # stopping a stopped container is fine

    tool.ok("rm", cid)
    err = tool.error("inspect", cid)
    assert err.startswith("error: NVCF_ENOTFOUND (http 404): inspecting "
                          "container %s: 404 " % cid)
    err = tool.error("rm", cid)
    assert err.startswith("error: NVCF_ENOTFOUND (http 404): removing "
                          "container %s: 404 " % cid)


def test_host_port_chosen_by_caller(tool):
    want = nvcfstack.free_port()
    cid = tool.ok("create", "--image", podmanenv.ECHO_TAG, "--port", 9000,
                  "--host-port", want, "--env", "PORT=9000",
                  "--label", "nvcf.test=hostport").strip()
    tool.ok("start", cid)
    assert tool.json("inspect", cid, 9000)["host_port"] == want
    assert tool.json("inspect", cid)["host_port"] == want
    nvcfstack.wait_for(lambda: healthy(want), timeout=20,
                       what="echo on the chosen port %d" % want)
    tool.ok("rm", cid)  # removes a running container


def test_exit_status_and_last_log_line(tool):
    cid = tool.ok("create", "--image", podmanenv.ECHO_TAG,
                  "--label", "nvcf.test=exit3", "--",
                  "/bin/sh", "-c",
                  "echo first; echo 'last words' >&2; exit 3").strip()
    tool.ok("start", cid)
    state = wait_status(tool, cid, "exited")
    assert state["exit_code"] == 3
    assert state["oom_killed"] is False
    assert state["finished_at"] != ""
    assert tool.ok("logs", cid, 1) == "last words\n"
    assert tool.ok("logs", cid, 0) == "first\nlast words\n"

    verdict = tool.json("watch", cid, "--no-restarts", "--timeout-s", 10)
    assert verdict == {
        "phase": "failed", "state": "failed", "exit_code": 3,
        "recent_exits": 1,
        "message": "container exited with status 3; last log lines:\n"
                   "first\nlast words"}

    # Docker returns 409, podman 500 "container state improper".
    err = tool.error("kill", cid)
    assert err.startswith("error: NVCF_ECONFLICT (http "), err
    assert "killing container %s: " % cid in err


def test_crash_loop_with_engine_restart_policy(tool):
    cid = tool.ok("create", "--image", podmanenv.ECHO_TAG,
                  "--restart", "always", "--label", "nvcf.test=crash", "--",
                  "/bin/sh", "-c", "echo crashing; exit 4").strip()
    tool.ok("start", cid)
    verdict = tool.json("watch", cid, "--crash-exits", 3, "--window-s", 60,
                        "--timeout-s", 30)
    assert verdict["phase"] == "failed", verdict
    assert verdict["state"] == "container-restart-loop"
    # podman reports exit code 0 for the restarted container, so the
    # status is known only when a look caught it exited; never 0.
    assert verdict["exit_code"] in (4, -1), verdict
    status = "4" if verdict["exit_code"] == 4 else \
        "unknown (the engine restarted it between two looks)"
    assert verdict["recent_exits"] >= 3
    assert verdict["message"].startswith(
        "crash loop: container exited %d times within 60 s; last exit "
        "status %s; last log lines:\n" % (verdict["recent_exits"], status))
    assert verdict["message"].endswith("crashing")
    assert tool.json("inspect", cid)["restart_count"] >= 2


def test_crash_loop_with_agent_restarts(tool):
    cid = tool.ok("create", "--image", podmanenv.ECHO_TAG,
                  "--label", "nvcf.test=crash2", "--",
                  "/bin/sh", "-c", "echo down; exit 7").strip()
    tool.ok("start", cid)
    verdict = tool.json("watch", cid, "--restart-on-exit",
                        "--crash-exits", 3, "--window-s", 60,
                        "--timeout-s", 30)
    assert verdict["phase"] == "failed", verdict
    assert verdict["state"] == "container-restart-loop"
    assert verdict["exit_code"] == 7
    assert verdict["recent_exits"] == 3
    assert verdict["message"].endswith("last log lines:\ndown\ndown\ndown")


def test_health_never_passing_fails_after_startup_bound(tool):
    cid = tool.ok("create", "--image", podmanenv.ECHO_TAG, "--port", 8000,
                  "--label", "nvcf.test=health", "--",
                  "/bin/sh", "-c", "echo not serving; exec sleep 300").strip()
    tool.ok("start", cid)
    started = time.monotonic()
    verdict = tool.json("watch", cid, "--port", 8000, "--startup-s", 2,
                        "--timeout-s", 20)
    assert time.monotonic() - started >= 2
    assert verdict == {
        "phase": "failed", "state": "degraded-worker", "exit_code": -1,
        "recent_exits": 0,
        "message": "health check failed for the whole start-up bound of "
                   "2 s; last log lines:\nnot serving"}
    tool.ok("kill", cid, "SIGKILL")
    state = wait_status(tool, cid, "exited")
    assert state["exit_code"] == 137


def test_list_by_label(tool):
    ids = {}
    for name, group in (("nvcf-list-a1", "a"), ("nvcf-list-a2", "a"),
                        ("nvcf-list-b1", "b")):
        ids[name] = tool.ok("create", "--name", name,
                            "--image", podmanenv.ECHO_TAG,
                            "--label", "nvcf.test=list",
                            "--label", "nvcf.group=" + group).strip()
    tool.ok("start", ids["nvcf-list-a1"])

    a = tool.json("list", "nvcf.group", "a")
    assert sorted(c["name"] for c in a) == ["nvcf-list-a1", "nvcf-list-a2"]
    by_name = {c["name"]: c for c in a}
    assert by_name["nvcf-list-a1"]["id"] == ids["nvcf-list-a1"]
    assert by_name["nvcf-list-a1"]["status"] == "running"
    assert by_name["nvcf-list-a2"]["status"] == "created"
    assert by_name["nvcf-list-a2"]["image"] == podmanenv.ECHO_TAG

    every = tool.json("list", "nvcf.group")
    assert sorted(c["name"] for c in every) == [
        "nvcf-list-a1", "nvcf-list-a2", "nvcf-list-b1"]
    assert tool.json("list", "nvcf.group", "none") == []


def test_engine_errors_carry_status_and_message(engine, tool):
    tool.ok("create", "--name", "nvcf-dup", "--image", podmanenv.ECHO_TAG,
            "--label", "nvcf.test=dup")
    err = tool.error("create", "--name", "nvcf-dup",
                     "--image", podmanenv.ECHO_TAG,
                     "--label", "nvcf.test=dup")
    # Docker returns 409, podman 500 "name is already in use".
    assert err.startswith("error: NVCF_ECONFLICT (http "), err
    assert ": creating container nvcf-dup for image %s: " % (
        podmanenv.ECHO_TAG) in err
    assert "already in use" in err

    err = tool.error("start", "nvcf-nope")
    assert err.startswith("error: NVCF_ENOTFOUND (http 404): starting "
                          "container nvcf-nope: 404 "), err
    assert tool.error("logs", "nvcf-nope", 5).startswith(
        "error: NVCF_ENOTFOUND (http 404): reading logs of container "
        "nvcf-nope: 404 ")

    dead = Tool(os.path.join(engine.dir, "no-such.sock"))
    err = dead.error("ping")
    assert err.startswith("error: NVCF_EUNAVAILABLE (http 0): pinging the "
                          "engine: container engine at %s did not answer"
                          % dead.socket), err
