# SPDX-License-Identifier: Apache-2.0
"""The nvcf command-line client against a stack started by `nvcf up`.

One stack serves the whole module; the last test stops it with `nvcf down`
and checks that every process it started is gone.
"""
import json
import os
import re
import signal
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
import uuid

import pytest

import nvcfstack

NVCF = os.path.join(nvcfstack.BUILD, "daemons", "nvcf", "nvcf")
PYECHO = os.path.join(nvcfstack.SOURCE, "examples", "functions", "pyecho",
                      "server.py")
NAMES = ["nats", "nvcf-api", "nvcf-invocation", "nvca", "nvcf-autoscaler"]


def http_call(method, url, key=None, json_body=None):
    """Returns (status, body bytes). Uses urllib so that the test does not
    depend on the harness's HTTP client."""
    data = None if json_body is None else json.dumps(json_body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if key is not None:
        req.add_header("Authorization", "Bearer " + key)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def run(*args, env=None, timeout=120):
    """Runs nvcf with a clean client environment unless @env is given."""
    base = {k: v for k, v in os.environ.items()
            if not k.startswith("NVCF_") or k in ("NVCF_BUILD_DIR",
                                                  "NVCF_SOURCE_DIR")}
    base.update(env or {})
    return subprocess.run([NVCF] + list(args), env=base, timeout=timeout,
                          capture_output=True, text=True)


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


@pytest.fixture(scope="module")
def stack():
    d = tempfile.mkdtemp(prefix="nvcf-cli-")
    r = run("up", "--state-dir", d, timeout=90)
    if r.returncode != 0:
        logs = os.path.join(d, "logs")
        text = "".join(open(os.path.join(logs, f)).read()[-2000:]
                       for f in sorted(os.listdir(logs)))
        run("down", "--state-dir", d)
        shutil.rmtree(d, ignore_errors=True)
        pytest.fail("nvcf up failed (%d): %s\n%s\n%s" %
                    (r.returncode, r.stdout, r.stderr, text))
    pids = {n: int(open(os.path.join(d, n + ".pid")).read())
            for n in NAMES}
    yield {"dir": d, "up": r, "pids": pids}
    run("down", "--state-dir", d)
    shutil.rmtree(d, ignore_errors=True)


def read_env(d):
    env = {}
    with open(os.path.join(d, "env")) as f:
        for line in f:
            m = re.fullmatch(r"export ([A-Z_]+)=(\S+)\n", line)
            assert m, "unexpected line in env file: %r" % line
            env[m.group(1)] = m.group(2)
    return env


def client(stack, *args, **kw):
    return run(*args, "--state-dir", stack["dir"], **kw)


def test_up_writes_env_and_pids(stack):
    env = read_env(stack["dir"])
    assert sorted(env) == ["NATS_URL", "NVCF_API_KEY", "NVCF_API_URL",
                           "NVCF_INVOKE_URL"]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", env["NVCF_API_URL"])
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", env["NVCF_INVOKE_URL"])
    assert re.fullmatch(r"nats://127\.0\.0\.1:\d+", env["NATS_URL"])
    assert re.fullmatch(r"nvapi-[A-Za-z0-9_-]{43}", env["NVCF_API_KEY"])
    assert oct(os.stat(os.path.join(stack["dir"], "env")).st_mode)[-3:] \
        == "600"
    for url in (env["NVCF_API_URL"], env["NVCF_INVOKE_URL"]):
        assert http_call("GET", url + "/health")[0] == 200
    for name, pid in stack["pids"].items():
        assert pid_alive(pid), name
        assert os.path.exists(os.path.join(stack["dir"], "logs",
                                           name + ".log"))
    assert "nvcf down --state-dir" in stack["up"].stdout
    # the admin key works and reaches the cluster nvca registered
    status, body = http_call("GET", env["NVCF_API_URL"] +
                             "/v2/nvcf/clusterGroups", key=env["NVCF_API_KEY"])
    assert status == 200, body
    assert "L40S" in body.decode()


def test_up_again_reports_running_stack(stack):
    r = run("up", "--state-dir", stack["dir"])
    assert r.returncode == 0, r.stderr
    assert "already running" in r.stdout
    pids = {n: int(open(os.path.join(stack["dir"], n + ".pid")).read())
            for n in NAMES}
    assert pids == stack["pids"]


def test_status(stack):
    r = run("status", "--state-dir", stack["dir"])
    assert r.returncode == 0, r.stdout + r.stderr
    for name in NAMES:
        assert re.search(r"%s\s+pid %d\b.*running" %
                         (name, stack["pids"][name]), r.stdout), r.stdout


def test_help_and_usage_errors():
    r = run("--help")
    assert r.returncode == 0
    assert "invoke" in r.stdout
    for cmd in (["up"], ["down"], ["status"], ["function"], ["deploy"],
                ["invoke"], ["cluster-groups"], ["function", "create"]):
        r = run(*cmd, "--help")
        assert r.returncode == 0, cmd
        assert r.stdout.startswith("usage: nvcf"), (cmd, r.stdout)
    r = run("frobnicate")
    assert r.returncode == 2
    assert "unknown command 'frobnicate'" in r.stderr
    r = run("function", "list")
    assert r.returncode == 2
    assert "NVCF_API_URL is not set" in r.stderr
    r = run("up")
    assert r.returncode == 2
    assert "--state-dir DIR is required" in r.stderr


def test_function_deploy_invoke_cycle(stack):
    r = client(stack, "cluster-groups")
    assert r.returncode == 0, r.stderr
    groups = json.loads(r.stdout)["clusterGroups"]
    assert any(g["name"] == "local" for g in groups), groups

    r = client(stack, "function", "create", "--name", "cli-echo",
               "--image", "file://" + PYECHO, "--inference-url", "/echo",
               "--health-uri", "/health", "--env", "GREETING=hi there")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("{\n"), "JSON is pretty by default"
    fn = json.loads(r.stdout)["function"]
    fid, vid = fn["id"], fn["versionId"]
    assert fn["name"] == "cli-echo"
    assert fn["status"] == "INACTIVE"
    assert fn["containerEnvironment"] == [{"key": "GREETING",
                                           "value": "hi there"}]

    r = client(stack, "function", "list", "--raw")
    assert r.returncode == 0, r.stderr
    assert "\n" not in r.stdout.strip(), "--raw keeps the server's JSON"
    assert vid in [f["versionId"] for f in json.loads(r.stdout)["functions"]]

    r = client(stack, "function", "get", fid, vid)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["function"]["inferenceUrl"] == "/echo"
    r = client(stack, "function", "get", fid)
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["functions"]) == 1

    r = client(stack, "deploy", "create", fid, vid, "--gpu", "L40S",
               "--instance-type", "NCP.GPU.L40S_1x", "--min", "1",
               "--max", "1", "--concurrency", "4", "--wait",
               "--timeout", "60")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["deployment"]["functionStatus"] == "ACTIVE"
    assert "status ACTIVE" in r.stderr

    r = client(stack, "deploy", "get", fid, vid)
    assert r.returncode == 0, r.stderr
    spec = json.loads(r.stdout)["deployment"]["deploymentSpecifications"][0]
    assert (spec["gpu"], spec["instanceType"], spec["minInstances"],
            spec["maxInstances"], spec["maxRequestConcurrency"]) == \
        ("L40S", "NCP.GPU.L40S_1x", 1, 1, 4)

    r = client(stack, "invoke", fid, "--data", '{"hello": "world"}')
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert json.loads(out["body"]) == {"hello": "world"}
    m = re.search(r"request ([0-9a-f-]{36}): HTTP 200 after [0-9.]+ s "
                  r"\(0 polls\)", r.stderr)
    assert m, r.stderr
    assert out["headers"].get("NVCF-REQID",
                              out["headers"].get("Nvcf-Reqid")) == m.group(1)

    # with a pinned version, from a file
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        f.write('{"from": "file"}')
        f.flush()
        r = client(stack, "invoke", fid, "--version", vid, "--data-file",
                   f.name)
    assert r.returncode == 0, r.stderr
    assert json.loads(json.loads(r.stdout)["body"]) == {"from": "file"}

    # a slow call: the gateway returns 202 and the client polls
    r = client(stack, "invoke", fid, "--poll-seconds", "1", "--data",
               '{"sleep": 2.5}')
    assert r.returncode == 0, r.stderr
    assert re.search(r"request [0-9a-f-]{36}: 202 after", r.stderr), r.stderr
    m = re.search(r"HTTP 200 after ([0-9.]+) s \((\d+) polls?\)", r.stderr)
    assert m, r.stderr
    assert float(m.group(1)) >= 2.5
    assert int(m.group(2)) >= 1
    assert json.loads(json.loads(r.stdout)["body"]) == {"sleep": 2.5}

    r = client(stack, "deploy", "delete", fid, vid)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["function"]["status"] == "INACTIVE"
    r = client(stack, "function", "delete", fid, vid)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    r = client(stack, "function", "get", fid, vid)
    assert r.returncode == 1
    assert r.stderr.startswith("nvcf: function get: HTTP 404: "), r.stderr


def test_bad_key_is_rejected(stack):
    env = read_env(stack["dir"])
    env["NVCF_API_KEY"] = "nvapi-" + "x" * 43
    r = run("function", "list", env=env)
    assert r.returncode == 1
    assert r.stderr.startswith("nvcf: function list: HTTP 401"), r.stderr
    r = run("invoke", str(uuid.uuid4()), env=env)
    assert r.returncode == 1
    assert "invoke: HTTP 401" in r.stderr, r.stderr


def test_missing_function(stack):
    fid = str(uuid.uuid4())
    r = client(stack, "invoke", fid, "--data", "{}")
    assert r.returncode == 1
    assert "invoke: HTTP 404" in r.stderr, r.stderr
    r = client(stack, "deploy", "create", fid, str(uuid.uuid4()), "--gpu",
               "L40S", "--instance-type", "NCP.GPU.L40S_1x", "--min", "1",
               "--max", "1")
    assert r.returncode == 1
    assert "deploy create: HTTP 404" in r.stderr, r.stderr
    r = client(stack, "function", "get", "not-a-uuid")
    assert r.returncode == 1
    assert "function get: HTTP 400" in r.stderr, r.stderr


def test_unreachable_stack():
    env = {"NVCF_API_URL": "http://127.0.0.1:%d" % nvcfstack.free_port(),
           "NVCF_API_KEY": "nvapi-x"}
    r = run("function", "list", env=env)
    assert r.returncode == 1
    assert "is the stack running?" in r.stderr


def session_members(sid):
    """Pids of live processes in session @p sid."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if fields[0] not in ("Z", "X") and int(fields[3]) == sid:
            out.append(int(name))
    return out


def test_down_kills_instances_of_a_stuck_agent(stack):
    r = client(stack, "function", "create", "--name", "cli-stuck",
               "--image", "file://" + PYECHO, "--inference-url", "/echo",
               "--health-uri", "/health")
    assert r.returncode == 0, r.stderr
    fn = json.loads(r.stdout)["function"]
    r = client(stack, "deploy", "create", fn["id"], fn["versionId"],
               "--gpu", "L40S", "--instance-type", "NCP.GPU.L40S_1x",
               "--min", "1", "--max", "1", "--wait", "--timeout", "60")
    assert r.returncode == 0, r.stderr
    nvca = stack["pids"]["nvca"]
    # The function and its worker: nvca's session, nvca itself aside.
    members = [p for p in session_members(nvca) if p != nvca]
    assert len(members) >= 2, members
    # A stopped agent ignores SIGTERM until down sends SIGKILL.
    os.kill(nvca, signal.SIGSTOP)
    r = run("down", "--state-dir", stack["dir"], timeout=90)
    assert r.returncode == 0, r.stderr
    assert "ignored SIGTERM" in r.stderr
    assert re.search(r"killed \d+ instance process\(es\) nvca left "
                     r"behind", r.stderr), r.stderr
    nvcfstack.wait_for(lambda: not any(pid_alive(p) for p in members),
                       timeout=10, what="the instance processes to exit")


def test_down_stops_everything(stack):
    d = stack["dir"]
    r = run("down", "--state-dir", d, timeout=60)
    assert r.returncode == 0, r.stderr
    nvcfstack.wait_for(
        lambda: not any(pid_alive(p) for p in stack["pids"].values()),
        timeout=15, what="every process of the stack to exit")
    for name in NAMES:
        assert not os.path.exists(os.path.join(d, name + ".pid"))
    assert not os.path.exists(os.path.join(d, "env"))
    r = run("status", "--state-dir", d)
    assert r.returncode == 1
    assert r.stdout.count("not running") == len(NAMES)
    r = run("down", "--state-dir", d)
    assert r.returncode == 0
    assert "nothing is running" in r.stdout
