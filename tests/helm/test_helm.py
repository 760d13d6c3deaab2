"""Helm functions and tasks run as MiniServices on `podman kube play`:
a two-container chart deployed and invoked through its Service, the
MiniService record's phases, a chart that needs helm refused, and Helm
task manifests that run to completion or fail, or write to the task's
results directory."""

import os
import re
import subprocess
import sys
import threading
import time

import pytest

import nvcfstack
from nvcfstack import http, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "container"))
sys.path.insert(0, os.path.join(HERE, "..", "agent"))
import natskv  # noqa: E402
import podmanenv  # noqa: E402

BUCKET = "nvca_local-1"
ECHO_CHART = os.path.join(nvcfstack.SOURCE, "examples", "helm", "echo.yaml")
MANIFESTS = os.path.join(HERE, "manifests")
TOOL = os.path.join(nvcfstack.BUILD, "tests", "helm", "helm-tool")

pytestmark = pytest.mark.skipif(
    bool(podmanenv.missing_tools()),
    reason="needs %s" % ", ".join(podmanenv.missing_tools()))


@pytest.fixture(scope="module")
def engine():
    pm = podmanenv.Podman()
    pm.start()
    try:
        pm.build_echo_image()
        yield pm
    finally:
        pm.stop()


@pytest.fixture(scope="module")
def stack(engine):
    s = nvcfstack.Stack(nvca_args=["--docker-socket", engine.socket,
                                   "--reconcile-ms", "200"])
    s.start()
    yield s
    s.stop()


@pytest.fixture
def kv(stack):
    c = natskv.Client(stack.nats_url)
    yield c
    c.close()


def helm_function(stack, key, chart, service="echo"):
    r = http("POST", stack.api_url + "/v2/nvcf/functions", key=key,
             json_body={"name": "helm-echo", "inferenceUrl": "/echo",
                        "helmChart": "file://" + chart,
                        "helmChartServiceName": service,
                        "health": {"protocol": "HTTP", "uri": "/health",
                                   "port": 8000, "timeout": "PT5S",
                                   "expectedStatusCode": 200}})
    assert r.status == 200, r.body
    return r.json()["function"]


def test_function_needs_service_name(stack):
    r = http("POST", stack.api_url + "/v2/nvcf/functions",
             key=stack.admin_key,
             json_body={"name": "h", "inferenceUrl": "/echo",
                        "helmChart": "file:///x.yaml"})
    assert r.status == 400, r.body
    assert "helmChartServiceName is required with helmChart" in \
        r.json()["detail"]
    r = http("POST", stack.api_url + "/v2/nvcf/functions",
             key=stack.admin_key,
             json_body={"name": "h", "inferenceUrl": "/echo",
                        "helmChart": "file:///x.yaml",
                        "helmChartServiceName": "echo",
                        "containerImage": "file:///bin/true"})
    assert r.status == 400, r.body
    assert "helmChart excludes containerImage" in r.json()["detail"]


def test_helm_function_runs_and_answers(stack):
    key = stack.admin_key
    fn = helm_function(stack, key, ECHO_CHART)
    fid, vid = fn["id"], fn["versionId"]
    phases, records, done = [], [], threading.Event()

    def watch():
        c = natskv.Client(stack.nats_url)
        try:
            while not done.is_set():
                for rec in c.records(BUCKET, "miniservice."):
                    p = rec.get("status", {}).get("phase")
                    if p and (not phases or phases[-1] != p):
                        phases.append(p)
                        records.append(rec)
                time.sleep(0.05)
        finally:
            c.close()

    kv = natskv.Client(stack.nats_url)
    t = threading.Thread(target=watch, daemon=True)
    t.start()
    try:
        nvcfstack.deploy(stack, key, fid, vid)
        # ACTIVE can come before the watcher's next look at the record.
        wait_for(lambda: phases and phases[-1] == "Running", timeout=15,
                 what="the MiniService record in phase Running")
    finally:
        done.set()
        t.join(5)
    assert phases[-1] == "Running", phases
    # A 50 ms poll of KV can miss a short phase; nvca logs every one.
    name = records[-1]["metadata"]["name"]
    logged = re.findall(r"MiniService %s: phase (\w+)" % re.escape(name),
                        stack.log("nvca"))
    assert logged[0] == "Installing", logged
    assert logged[-1] == "Running", logged
    assert "Failed" not in logged
    assert "InstallFailed" not in logged

    assert records[-1]["kind"] == "MiniService"
    assert records[-1]["spec"]["helmChartConfig"]["serviceName"] == "echo"

    r = http("POST", "%s/v2/nvcf/pexec/functions/%s" % (stack.invoke_url,
                                                        fid),
             key=key, json_body={"hello": "helm"}, timeout=60)
    assert r.status == 200, r.body
    assert r.json()["body"] == '{"hello": "helm"}' or \
        r.json()["body"] == '{"hello":"helm"}'
    assert r.json()["path"] == "/echo"

    r = http("DELETE", "%s/v2/nvcf/deployments/functions/%s/versions/%s" % (
        stack.api_url, fid, vid), key=key)
    assert r.status == 200, r.body
    wait_for(lambda: not kv.records(BUCKET, "miniservice."), timeout=60,
             what="the MiniService record to be deleted")
    kv.close()


def run_tool(engine, tmp_path, *args):
    env = dict(engine.env)
    return subprocess.run([TOOL, engine.socket, str(tmp_path)] +
                          list(args), env=env, capture_output=True,
                          text=True, timeout=120)


def test_chart_needing_render_is_refused(tmp_path):
    out = subprocess.run([TOOL, "render", "file://" + os.path.join(
        MANIFESTS, "chart"), str(tmp_path)], capture_output=True,
        text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "needs rendering, and helm is not installed" in out.stdout


def test_helm_task_completes(engine, tmp_path):
    out = run_tool(engine, tmp_path, "task",
                   "file://" + os.path.join(MANIFESTS, "task-ok.yaml"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines()[0] == "phase=Completed"


def test_helm_task_failure(engine, tmp_path):
    out = run_tool(engine, tmp_path, "task",
                   "file://" + os.path.join(MANIFESTS, "task-fail.yaml"))
    assert out.returncode == 1, out.stdout + out.stderr
    assert "phase=InstallFailed" in out.stdout
    assert "exited with status 3" in out.stdout


def test_helm_task_writes_results_dir(engine, tmp_path):
    out = run_tool(engine, tmp_path, "task",
                   "file://" + os.path.join(MANIFESTS, "task-results.yaml"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines()[0] == "phase=Completed"
    results = tmp_path / "results"
    assert (results / "out.txt").read_text() == "hello-helm\n"
    assert '"percentComplete": 100' in (results / "progress").read_text()
    env = dict(line.split("=", 1) for line in
               (results / "env.txt").read_text().splitlines() if "=" in line)
    assert env["NVCT_TASK_ID"] == "tool-task"
    assert env["NVCT_RESULTS_DIR"] == "/var/task/results"
