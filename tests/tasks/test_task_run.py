# SPDX-License-Identifier: Apache-2.0
"""NVCT tasks run by the cluster agent: nvcf-api places a task, nvca runs
examples/tasks/counter.py as its process and reports status, progress and
results back to the task record. With --docker-socket on a private podman,
nvca also runs container tasks (busybox echo image) and Helm tasks
(rendered manifests).
"""
import base64
import hashlib
import json
import os
import sys

import pytest

import nvcfstack
from nvcfstack import http, wait_for

pytestmark = pytest.mark.skipif(
    not os.path.exists(nvcfstack.binary("nvca")),
    reason="nvca binary is not built")

TASKS = "/v1/nvct/tasks"
COUNTER = os.path.join(nvcfstack.SOURCE, "examples", "tasks", "counter.py")
NCA = "acct-run"


@pytest.fixture(scope="module")
def stack():
    s = nvcfstack.Stack(api=True, gateway=False, nvca=True)
    s.start()
    s.key = s.create_key(NCA)
    yield s
    s.stop()


def create(stack, args, **over):
    b = {"name": "count", "containerImage": "file://" + COUNTER,
         "containerArgs": args,
         "gpuSpecification": {"gpu": "L40S",
                              "instanceType": "NCP.GPU.L40S_1x"},
         "resultHandlingStrategy": "UPLOAD",
         "resultsLocation": "acme/team/counter"}
    b.update(over)
    r = http("POST", stack.api_url + TASKS, key=stack.key,
             json_body={k: v for k, v in b.items() if v is not None})
    assert r.status == 200, r.body
    return r.json()["task"]


def task(stack, tid):
    r = http("GET", "%s%s/%s" % (stack.api_url, TASKS, tid), key=stack.key)
    assert r.status == 200, r.body
    return r.json()["task"]


def listing(stack, tid, what):
    r = http("GET", "%s%s/%s/%s?limit=100" % (stack.api_url, TASKS, tid,
                                              what), key=stack.key)
    assert r.status == 200, r.body
    return r.json()[what]


def wait_status(stack, tid, status, timeout=30):
    seen = {}

    def reached():
        seen["task"] = task(stack, tid)
        return seen["task"]["status"] == status
    try:
        wait_for(reached, timeout=timeout,
                 what="task %s to become %s" % (tid, status))
    except Exception:
        raise AssertionError("task is %s, not %s:\n%s\n%s" % (
            seen.get("task", {}).get("status"), status,
            json.dumps(seen.get("task"), indent=1),
            stack.log("nvca")[-3000:]))
    return seen["task"]


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def read_pid(path):
    wait_for(lambda: os.path.exists(path), timeout=20,
             what="the task to write its pid file")
    with open(path) as f:
        return int(f.read())


def gpus_allocated(stack):
    r = http("GET", "http://127.0.0.1:%d/metrics" % stack.ports["nvca"])
    assert r.status == 200
    for line in r.body.decode().splitlines():
        if line.startswith('nvca_gpus_allocated{gpu="L40S"}'):
            return int(line.split()[-1])
    raise AssertionError("no L40S gauge in:\n" + r.body.decode())


def messages(stack, tid):
    return [e["message"] for e in listing(stack, tid, "events")]


def test_task_completes_with_progress_and_results(stack, tmp_path):
    env_file = tmp_path / "env.json"
    t = create(stack, "--steps 4 --interval 0.6 --env-file %s" % env_file,
               containerEnvironment=[{"key": "MODE", "value": "fast"}])
    done = wait_status(stack, t["id"], "COMPLETED")
    assert done["percentComplete"] == 100
    inst = done["instances"]
    assert len(inst) == 1
    assert inst[0]["instanceState"] == "TERMINATED"
    assert inst[0]["taskId"] == t["id"]
    assert inst[0]["gpu"] == "L40S"
    assert inst[0]["instanceType"] == "NCP.GPU.L40S_1x"
    assert inst[0]["location"] == "local"

    msgs = messages(stack, t["id"])
    order = ["Changing status from 'QUEUED' to 'LAUNCHED'",
             "Changing status from 'LAUNCHED' to 'RUNNING'",
             "Changing status from 'RUNNING' to 'COMPLETED'"]
    assert [m for m in msgs if m in order] == order, msgs
    progress = [int(m[len("Progress "):-1]) for m in msgs
                if m.startswith("Progress ")]
    assert progress == sorted(progress), msgs
    assert any(0 < p < 100 for p in progress), msgs
    assert progress[-1] == 100, msgs

    env = json.loads(env_file.read_text())
    assert env["NVCT_TASK_ID"] == t["id"]
    assert env["NVCT_TASK_NAME"] == "count"
    assert env["NVCT_NCA_ID"] == NCA
    assert env["NVCT_RESULTS_DIR"].endswith("/tasks/%s/results" % t["id"])
    assert env["NVCT_PROGRESS_FILE_PATH"] == \
        env["NVCT_RESULTS_DIR"] + "/progress"
    assert env["NVCT_RESULT_HANDLING_STRATEGY"] == "UPLOAD"
    assert env["MODE"] == "fast"
    assert env["CUDA_VISIBLE_DEVICES"].isdigit()
    assert env["NVCF_INSTANCETYPE"] == "NCP.GPU.L40S_1x"

    results = listing(stack, t["id"], "results")
    assert [r["name"] for r in results] == \
        ["counter", "numbers.txt", "summary.json"]
    assert results[0]["metadata"] == {"steps": 4, "last": 75}
    numbers = b"0\n25\n50\n75\n"
    meta = results[1]["metadata"]
    assert meta["file"] == "numbers.txt"
    assert meta["sizeBytes"] == len(numbers)
    assert meta["sha256"] == hashlib.sha256(numbers).hexdigest()
    # Small files travel in the result itself, served from JetStream.
    assert base64.b64decode(meta["contentBase64"]) == numbers
    assert meta["location"] == "file://%s/numbers.txt" % \
        env["NVCT_RESULTS_DIR"]
    for r in results:
        assert r["taskId"] == t["id"]
        assert r["ncaId"] == NCA
    wait_for(lambda: gpus_allocated(stack) == 0, timeout=10,
             what="the task's GPU to be free again")


sys.path.insert(0, os.path.join(nvcfstack.SOURCE, "examples", "tasks"))
import counter  # noqa: E402
import rawnats  # noqa: E402


def content(stack, tid, rid, key=None):
    return http("GET", "%s%s/%s/results/%s/content" % (
        stack.api_url, TASKS, tid, rid), key=key or stack.key)


def task_result_subjects(stack, tid):
    c = rawnats.Client(stack.nats_url)
    try:
        r = c.request("$JS.API.STREAM.INFO.NVCT_RESULTS",
                      {"subjects_filter": "nvct.res.%s.>" % tid})
    finally:
        c.close()
    assert "error" not in r, r
    return r["state"].get("subjects") or {}


def test_large_result_content_in_chunks(stack):
    size = 3000000
    t = create(stack, "--steps 1 --interval 0 --big-result %d" % size)
    wait_status(stack, t["id"], "COMPLETED")
    results = {r["name"]: r for r in listing(stack, t["id"], "results")}
    big = results["big.bin"]
    meta = big["metadata"]
    expected = counter.big_content(size)
    assert meta["sizeBytes"] == size
    assert meta["sha256"] == hashlib.sha256(expected).hexdigest()
    assert "contentBase64" not in meta
    assert meta["contentChunks"] >= 3
    # The listing shows results only, not the chunks stored beside them.
    assert sorted(results) == ["big.bin", "counter", "numbers.txt",
                               "summary.json"]

    r = content(stack, t["id"], big["resultId"])
    assert r.status == 200, r
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert len(r.body) == size
    assert r.body == expected

    small = content(stack, t["id"], results["numbers.txt"]["resultId"])
    assert small.status == 200, small
    assert small.body == b"0\n"

    # A result without stored content is a 404 with the reason.
    named = content(stack, t["id"], results["counter"]["resultId"])
    assert named.status == 404, named
    assert "keeps no content" in named.json()["detail"]

    assert content(stack, t["id"], "not-a-uuid").status == 400
    missing = content(stack, t["id"], "00000000-0000-4000-8000-000000000000")
    assert missing.status == 404, missing
    other = stack.create_key("acct-other")
    assert content(stack, t["id"], big["resultId"], key=other).status == 404

    chunks = [s for s in task_result_subjects(stack, t["id"])
              if s.count(".") == 4]
    assert len(chunks) == meta["contentChunks"], chunks
    r = http("DELETE", "%s%s/%s" % (stack.api_url, TASKS, t["id"]),
             key=stack.key)
    assert r.status == 204, r
    wait_for(lambda: not task_result_subjects(stack, t["id"]), timeout=10,
             what="results and their chunks purged with the task")


def test_failing_task_is_errored_with_its_output(stack):
    t = create(stack, "--steps 2 --interval 0.1 --exit-code 3",
               resultHandlingStrategy="NONE", resultsLocation=None)
    done = wait_status(stack, t["id"], "ERRORED")
    error = done["healthInfo"]["error"]
    assert error.startswith("task process exited with status 3"), error
    assert "failing on request with status 3" in error
    assert done["healthInfo"]["gpu"] == "L40S"
    assert "Changing status from 'RUNNING' to 'ERRORED'" in \
        messages(stack, t["id"])
    # NONE: the files it wrote are not results.
    assert listing(stack, t["id"], "results") == []
    wait_for(lambda: gpus_allocated(stack) == 0, timeout=10,
             what="the task's GPU to be free again")


def test_cancel_stops_running_task(stack, tmp_path):
    pid_file = tmp_path / "pid"
    t = create(stack, "--steps 2 --interval 0.1 --sleep 120 --pid-file %s"
               % pid_file)
    wait_status(stack, t["id"], "RUNNING")
    pid = read_pid(str(pid_file))
    assert alive(pid)
    r = http("POST", "%s%s/%s/cancel" % (stack.api_url, TASKS, t["id"]),
             key=stack.key)
    assert r.status == 200, r.body
    assert r.json()["task"]["status"] == "CANCELED"
    wait_for(lambda: not alive(pid), timeout=10,
             what="the cancelled task's process to end")
    wait_for(lambda: gpus_allocated(stack) == 0, timeout=10,
             what="the task's GPU to be free again")
    assert task(stack, t["id"])["status"] == "CANCELED"
    assert "termination order for task %s" % t["id"] in stack.log("nvca")


def test_task_past_max_runtime_is_stopped(stack, tmp_path):
    pid_file = tmp_path / "pid"
    t = create(stack, "--steps 1 --sleep 120 --ignore-term --pid-file %s"
               % pid_file, maxRuntimeDuration="PT2S")
    assert t["terminationGracePeriodDuration"] == "PT2S"
    wait_status(stack, t["id"], "RUNNING")
    pid = read_pid(str(pid_file))
    done = wait_status(stack, t["id"], "EXCEEDED_MAX_RUNTIME_DURATION",
                       timeout=15)
    assert "maxRuntimeDuration PT2S elapsed; stopping the task" in \
        messages(stack, t["id"])
    assert done["instances"][0]["instanceState"] == "TERMINATED"
    # It ignores SIGTERM: SIGKILL follows after the 2 s grace period.
    wait_for(lambda: not alive(pid), timeout=10,
             what="the task's process to be killed")
    wait_for(lambda: gpus_allocated(stack) == 0, timeout=10,
             what="the task's GPU to be free again")


def test_container_task_without_runtime_is_errored(stack):
    t = create(stack, "", containerImage="nvcr.io/acme/train:1",
               resultHandlingStrategy="NONE", resultsLocation=None)
    done = wait_status(stack, t["id"], "ERRORED")
    assert "container tasks need --docker-socket" in \
        done["healthInfo"]["error"]


def test_agent_stop_ends_running_task(stack, tmp_path):
    pid_file = tmp_path / "pid"
    t = create(stack, "--steps 1 --sleep 120 --pid-file %s" % pid_file,
               resultHandlingStrategy="NONE", resultsLocation=None)
    wait_status(stack, t["id"], "RUNNING")
    pid = read_pid(str(pid_file))
    stack.restart("nvca")
    assert not alive(pid)
    done = wait_status(stack, t["id"], "ERRORED")
    assert done["healthInfo"]["error"] == "nvca stopped while the task ran"
    assert gpus_allocated(stack) == 0


# ---- container and Helm tasks on a private podman ------------------------

sys.path.insert(0, os.path.join(nvcfstack.SOURCE, "tests", "container"))
import podmanenv  # noqa: E402

HELM_OK = os.path.join(nvcfstack.SOURCE, "tests", "helm", "manifests",
                       "task-ok.yaml")
HELM_FAIL = os.path.join(nvcfstack.SOURCE, "tests", "helm", "manifests",
                         "task-fail.yaml")
HELM_RESULTS = os.path.join(nvcfstack.SOURCE, "tests", "helm", "manifests",
                            "task-results.yaml")
HELM_RESULTS_TAKEN = os.path.join(nvcfstack.SOURCE, "tests", "helm",
                                  "manifests", "task-results-taken.yaml")
needs_podman = pytest.mark.skipif(
    bool(podmanenv.missing_tools()),
    reason="container tasks need %s" % ", ".join(podmanenv.missing_tools()))

# Writes progress 25, 50 and 75 a poll apart, a result file, and exits 0.
STEPS = ("/bin/sh -c 'echo starting; for p in 25 50 75; do "
         "echo \"{\\\"percentComplete\\\": $p}\" > $NVCT_PROGRESS_FILE_PATH; "
         "sleep 1.3; done; "
         "echo hello-$MODE > $NVCT_RESULTS_DIR/out.txt; "
         "env > $NVCT_RESULTS_DIR/env.txt; echo finished'")


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
def cstack(engine):
    s = nvcfstack.Stack(api=True, gateway=False, nvca=True,
                        nvca_args=["--docker-socket", engine.socket,
                                   "--reconcile-ms", "200"])
    s.start()
    s.key = s.create_key(NCA)
    yield s
    s.stop()


def task_containers(engine):
    return engine.podman("ps", "-a", "--format", "{{.ID}}", "--filter",
                         "label=nvcf.cluster-id=local-1").stdout.split()


def create_ctr(stack, args, **over):
    over.setdefault("containerImage", podmanenv.ECHO_TAG)
    return create(stack, args, **over)


@needs_podman
def test_container_task_completes(cstack, engine):
    t = create_ctr(cstack, STEPS,
                   containerEnvironment=[{"key": "MODE", "value": "fast"}])
    done = wait_status(cstack, t["id"], "COMPLETED", timeout=60)
    assert done["percentComplete"] == 100
    assert done["instances"][0]["instanceState"] == "TERMINATED"
    msgs = messages(cstack, t["id"])
    order = ["Changing status from 'QUEUED' to 'LAUNCHED'",
             "Changing status from 'LAUNCHED' to 'RUNNING'",
             "Changing status from 'RUNNING' to 'COMPLETED'"]
    assert [m for m in msgs if m in order] == order, msgs
    progress = [int(m[len("Progress "):-1]) for m in msgs
                if m.startswith("Progress ")]
    assert progress == sorted(progress), msgs
    assert any(0 < p < 100 for p in progress), msgs
    assert progress[-1] == 100, msgs

    results = {r["name"]: r for r in listing(cstack, t["id"], "results")}
    assert sorted(results) == ["env.txt", "out.txt"], results
    out = results["out.txt"]["metadata"]
    assert out["sizeBytes"] == len(b"hello-fast\n")
    assert out["sha256"] == hashlib.sha256(b"hello-fast\n").hexdigest()
    assert base64.b64decode(out["contentBase64"]) == b"hello-fast\n"
    host_dir = out["location"][len("file://"):].rsplit("/", 1)[0]
    assert host_dir.endswith("/tasks/%s/results" % t["id"])
    with open(os.path.join(host_dir, "env.txt")) as f:
        env = dict(line.split("=", 1) for line in f.read().splitlines()
                   if "=" in line)
    assert env["NVCT_RESULTS_DIR"] == "/var/task/results"
    assert env["NVCT_PROGRESS_FILE_PATH"] == "/var/task/results/progress"
    assert env["NVCT_TASK_ID"] == t["id"]
    assert env["MODE"] == "fast"
    assert env["CUDA_VISIBLE_DEVICES"].isdigit()
    # The container is removed and its GPU given back.
    wait_for(lambda: not task_containers(engine), timeout=15,
             what="the task container to be removed")
    wait_for(lambda: gpus_allocated(cstack) == 0, timeout=10,
             what="the task's GPU to be free again")


@needs_podman
def test_container_exit_3_errored(cstack, engine):
    t = create_ctr(cstack, "/bin/sh -c 'echo preparing; "
                   "echo fatal: no input here >&2; exit 3'",
                   resultHandlingStrategy="NONE", resultsLocation=None)
    done = wait_status(cstack, t["id"], "ERRORED", timeout=60)
    error = done["healthInfo"]["error"]
    assert error.startswith("task container exited with status 3; "
                            "last output:\n"), error
    assert error.endswith("fatal: no input here"), error
    assert "preparing" in error
    assert "Changing status from 'RUNNING' to 'ERRORED'" in \
        messages(cstack, t["id"])
    wait_for(lambda: not task_containers(engine), timeout=15,
             what="the task container to be removed")


@needs_podman
def test_container_cancel_removes(cstack, engine):
    t = create_ctr(cstack, "/bin/sh -c 'trap \"exit 0\" TERM; "
                   "sleep 60 & wait'",
                   resultHandlingStrategy="NONE", resultsLocation=None)
    wait_status(cstack, t["id"], "RUNNING", timeout=60)
    wait_for(lambda: len(task_containers(engine)) == 1, timeout=10,
             what="the task container to exist")
    r = http("POST", "%s%s/%s/cancel" % (cstack.api_url, TASKS, t["id"]),
             key=cstack.key)
    assert r.status == 200, r.body
    wait_for(lambda: not task_containers(engine), timeout=20,
             what="the cancelled task's container to be removed")
    wait_for(lambda: gpus_allocated(cstack) == 0, timeout=10,
             what="the task's GPU to be free again")
    assert task(cstack, t["id"])["status"] == "CANCELED"


@needs_podman
def test_container_max_runtime(cstack, engine):
    # sleep as PID 1 has no SIGTERM handler, so the signal is ignored and
    # the engine kills it after the grace period (maxRuntimeDuration).
    t = create_ctr(cstack, "sleep 60", maxRuntimeDuration="PT2S",
                   resultHandlingStrategy="NONE", resultsLocation=None)
    done = wait_status(cstack, t["id"], "EXCEEDED_MAX_RUNTIME_DURATION",
                       timeout=60)
    assert done["instances"][0]["instanceState"] == "TERMINATED"
    assert "maxRuntimeDuration PT2S elapsed; stopping the task" in \
        messages(cstack, t["id"])
    wait_for(lambda: not task_containers(engine), timeout=20,
             what="the task container to be removed")
    wait_for(lambda: gpus_allocated(cstack) == 0, timeout=10,
             what="the task's GPU to be free again")


@needs_podman
def test_container_missing_image(cstack):
    t = create_ctr(cstack, "", containerImage="localhost/absent:1",
                   resultHandlingStrategy="NONE", resultsLocation=None)
    done = wait_status(cstack, t["id"], "ERRORED", timeout=60)
    assert "localhost/absent:1" in done["healthInfo"]["error"]


def create_helm(stack, manifest, upload=False):
    body = {"name": "helm-task", "helmChart": "file://" + manifest,
            "gpuSpecification": {"gpu": "L40S",
                                 "instanceType": "NCP.GPU.L40S_1x"},
            "resultHandlingStrategy": "NONE"}
    if upload:
        body.update(resultHandlingStrategy="UPLOAD",
                    resultsLocation="acme/team/helm")
    r = http("POST", stack.api_url + TASKS, key=stack.key, json_body=body)
    assert r.status == 200, r.body
    return r.json()["task"]


def helm_pods(engine):
    return engine.podman("pod", "ps", "--format", "{{.Name}}").stdout.split()


@needs_podman
def test_helm_task_completes(cstack, engine):
    t = create_helm(cstack, HELM_OK)
    done = wait_status(cstack, t["id"], "COMPLETED", timeout=90)
    assert done["percentComplete"] == 100
    msgs = messages(cstack, t["id"])
    assert "Changing status from 'RUNNING' to 'COMPLETED'" in msgs, msgs
    wait_for(lambda: not helm_pods(engine), timeout=30,
             what="the Helm task's pods to be removed")
    wait_for(lambda: gpus_allocated(cstack) == 0, timeout=10,
             what="the task's GPU to be free again")


@needs_podman
def test_helm_task_failure_errored(cstack, engine):
    t = create_helm(cstack, HELM_FAIL)
    done = wait_status(cstack, t["id"], "ERRORED", timeout=90)
    error = done["healthInfo"]["error"]
    assert error.startswith("Helm chart task InstallFailed: "), error
    assert error.endswith("-work-main exited with status 3"), error
    wait_for(lambda: not helm_pods(engine), timeout=30,
             what="the Helm task's pods to be removed")


@needs_podman
def test_helm_task_progress_and_results(cstack, engine):
    t = create_helm(cstack, HELM_RESULTS, upload=True)
    done = wait_status(cstack, t["id"], "COMPLETED", timeout=90)
    assert done["percentComplete"] == 100
    msgs = messages(cstack, t["id"])
    progress = [int(m[len("Progress "):-1]) for m in msgs
                if m.startswith("Progress ")]
    # Progress 50 stays in the file for 2.5 s, so the 1 s poll reports it.
    assert 50 in progress, msgs
    assert progress[-1] == 100, msgs
    assert "Changing status from 'RUNNING' to 'COMPLETED'" in msgs, msgs

    results = {r["name"]: r for r in listing(cstack, t["id"], "results")}
    assert sorted(results) == ["env.txt", "helm-run", "out.txt"], results
    assert results["helm-run"]["metadata"] == {"rows": 2}
    out = results["out.txt"]["metadata"]
    assert out["file"] == "out.txt"
    assert base64.b64decode(out["contentBase64"]) == b"hello-helm\n"
    assert out["sha256"] == hashlib.sha256(b"hello-helm\n").hexdigest()
    host_dir = out["location"][len("file://"):].rsplit("/", 1)[0]
    assert host_dir.endswith("/tasks/%s/results" % t["id"])

    text = base64.b64decode(
        results["env.txt"]["metadata"]["contentBase64"]).decode()
    env = dict(line.split("=", 1) for line in text.splitlines()
               if "=" in line)
    # nvca's value replaces the one the chart sets for the same name.
    assert env["NVCT_TASK_ID"] == t["id"]
    assert env["NVCT_TASK_NAME"] == "helm-task"
    assert env["NVCT_NCA_ID"] == NCA
    assert env["NVCT_RESULTS_DIR"] == "/var/task/results"
    assert env["NVCT_PROGRESS_FILE_PATH"] == "/var/task/results/progress"
    assert env["NVCT_RESULT_HANDLING_STRATEGY"] == "UPLOAD"
    assert env["NVCT_INSTANCE_ID"] == done["instances"][0]["instanceId"]
    assert env["NVCF_INSTANCETYPE"] == "NCP.GPU.L40S_1x"
    assert env["CUDA_VISIBLE_DEVICES"].isdigit()
    wait_for(lambda: not helm_pods(engine), timeout=30,
             what="the Helm task's pods to be removed")
    wait_for(lambda: gpus_allocated(cstack) == 0, timeout=10,
             what="the task's GPU to be free again")


@needs_podman
def test_helm_task_results_mount_taken(cstack, engine):
    t = create_helm(cstack, HELM_RESULTS_TAKEN)
    done = wait_status(cstack, t["id"], "ERRORED", timeout=90)
    error = done["healthInfo"]["error"]
    assert error.startswith("Helm chart task InstallFailed: "), error
    assert "Pod 'work', container 'main' mounts volume 'scratch' at " \
        "/var/task/results, where nvca mounts the task's results " \
        "directory (/var/task/results): remove that mount from the " \
        "chart" in error, error
    assert not helm_pods(engine)
    wait_for(lambda: gpus_allocated(cstack) == 0, timeout=10,
             what="the task's GPU to be free again")
