# SPDX-License-Identifier: Apache-2.0
"""Container functions end to end: nvca with --docker-socket on a private
podman, the busybox echo image, deployed, invoked and scaled through the
API, the gateway and the autoscaler; and the two start-up failures a
container adds (a health check that never passes, a crash loop).
"""
import os
import sys

import pytest

import nvcfstack
import podmanenv
from nvcfstack import http, wait_for

sys.path.insert(0, os.path.join(nvcfstack.SOURCE, "tests", "agent"))
import natskv  # noqa: E402

missing = podmanenv.missing_tools()
pytestmark = pytest.mark.skipif(
    bool(missing), reason="container tests need %s" % ", ".join(missing))

# Long enough for three container restarts on a loaded machine.
START_TIMEOUT_MS = 25000


@pytest.fixture(scope="module")
def engine():
    pm = podmanenv.Podman()
    try:
        pm.start()
        pm.build_echo_image()
        yield pm
    finally:
        pm.stop()


@pytest.fixture(scope="module")
def stack(engine):
    s = nvcfstack.Stack(
        nvca_args=["--docker-socket", engine.socket,
                   "--start-timeout-ms", str(START_TIMEOUT_MS),
                   "--grace-ms", "2000"],
        autoscalers=1)
    s.start()
    yield s
    s.stop()


def instances(s, vid):
    kv = natskv.Client(s.nats_url)
    try:
        return kv.records("nvcf_instances", vid + ".")
    finally:
        kv.close()


def with_status(s, vid, status, count=1):
    recs = [r for r in instances(s, vid) if r["instanceStatus"] == status]
    return recs if len(recs) >= count else None


def containers(engine, vid):
    """Ids of the containers of version @p vid, running or not."""
    out = engine.podman("ps", "-a", "--format", "{{.ID}}", "--filter",
                        "label=nvcf.function-version-id=" + vid).stdout
    return out.split()


def create(s, name, args=""):
    return nvcfstack.create_function(
        s, s.admin_key, name=name, image=podmanenv.ECHO_TAG, args=args,
        env={"GREETING": "hello"}, port=8000)


def undeploy(s, fid, vid):
    r = http("DELETE", "%s/v2/nvcf/deployments/functions/%s/versions/%s" % (
        s.api_url, fid, vid), key=s.admin_key)
    assert r.status == 200, r


def test_deploy_invoke_scale(stack, engine):
    fn = create(stack, "ctr-echo")
    fid, vid = fn["id"], fn["versionId"]
    dep = nvcfstack.deploy(stack, stack.admin_key, fid, vid, min=1, max=2,
                           timeout=90)
    patch = "%s/v2/nvcf/deployments/%s/gpu-specifications/%s" % (
        stack.api_url, dep["deploymentId"],
        dep["deploymentSpecifications"][0]["gpuSpecificationId"])
    rec = wait_for(lambda: with_status(stack, vid, "RUNNING"), timeout=30,
                   what="instance RUNNING")[0]
    assert rec["containerId"]
    assert rec["port"] > 0
    assert "pid" not in rec
    assert containers(engine, vid) == [rec["containerId"][:12]]
    inspect = engine.podman("inspect", "--format",
                            "{{range .Config.Env}}{{println .}}{{end}}",
                            rec["containerId"]).stdout.split("\n")
    assert "GREETING=hello" in inspect
    assert "PORT=8000" in inspect
    assert "NVCF_FUNCTION_ID=" + fid in inspect
    assert "NVCF_INSTANCE_ID=" + rec["instanceId"] in inspect

    r = http("POST", "%s/v2/nvcf/pexec/functions/%s" % (
        stack.invoke_url, fid), key=stack.admin_key,
        json_body={"x": 1}, timeout=30)
    assert r.status == 200, r
    echo = r.json()
    assert echo["body"] == '{"x": 1}' or echo["body"] == '{"x":1}'
    assert echo["path"] == "/echo"
    assert echo["method"] == "POST"
    headers = {k.upper(): v for k, v in echo["headers"].items()}
    assert headers["NVCF-FUNCTION-ID"] == fid
    assert headers["NVCF-FUNCTION-VERSION-ID"] == vid
    assert headers["NVCF-INSTANCETYPE"] == "NCP.GPU.L40S_1x"

    r = http("PATCH", patch, key=stack.admin_key,
             json_body={"minInstances": 2, "maxInstances": 2})
    assert r.status == 200, r
    two = wait_for(lambda: with_status(stack, vid, "RUNNING", 2),
                   timeout=60, what="two RUNNING instances")
    assert len({x["containerId"] for x in two}) == 2
    assert len({x["port"] for x in two}) == 2
    wait_for(lambda: len(containers(engine, vid)) == 2, timeout=10,
             what="two containers")

    r = http("PATCH", patch, key=stack.admin_key,
             json_body={"minInstances": 1, "maxInstances": 1})
    assert r.status == 200, r
    wait_for(lambda: len(with_status(stack, vid, "RUNNING") or []) == 1 and
             len(containers(engine, vid)) == 1, timeout=60,
             what="one RUNNING instance and one container again")

    undeploy(stack, fid, vid)
    wait_for(lambda: not containers(engine, vid), timeout=30,
             what="containers removed")
    wait_for(lambda: all(x["instanceStatus"] == "TERMINATED"
                         for x in instances(stack, vid)), timeout=30,
             what="instances TERMINATED")


def test_health_check_never_passes(stack, engine):
    # Runs, but nothing listens on the port.
    fn = create(stack, "ctr-deaf", args="sh -c 'echo deaf-start; "
                "exec sleep 600'")
    fid, vid = fn["id"], fn["versionId"]
    nvcfstack.deploy(stack, stack.admin_key, fid, vid, wait_active=False)
    rec = wait_for(lambda: with_status(stack, vid, "ERRORED"),
                   timeout=START_TIMEOUT_MS / 1000 + 30,
                   what="instance ERRORED")[0]
    assert "health check" in rec["error"], rec
    assert "did not return 200 within %d ms" % START_TIMEOUT_MS in \
        rec["error"], rec
    assert "deaf-start" in rec.get("lastOutput", ""), rec
    wait_for(lambda: rec["containerId"][:12] not in containers(engine, vid),
             timeout=30, what="the container removed")
    undeploy(stack, fid, vid)


def test_crash_loop(stack, engine):
    fn = create(stack, "ctr-crash",
                args="sh -c 'echo boom-$PORT; exit 3'")
    fid, vid = fn["id"], fn["versionId"]
    nvcfstack.deploy(stack, stack.admin_key, fid, vid, wait_active=False)
    rec = wait_for(lambda: with_status(stack, vid, "ERRORED"),
                   timeout=START_TIMEOUT_MS / 1000 + 30,
                   what="instance ERRORED")[0]
    assert rec["error"].startswith("crash loop: container exited 3 times"), \
        rec
    assert "last exit status 3" in rec["error"], rec
    assert "last log lines:\nboom-8000" in rec["error"], rec
    assert "boom-8000" in rec.get("lastOutput", ""), rec
    wait_for(lambda: not containers(engine, vid), timeout=30,
             what="the container removed")
    undeploy(stack, fid, vid)


def test_missing_image(stack):
    fn = nvcfstack.create_function(
        stack, stack.admin_key, name="ctr-missing",
        image="localhost/nvcf-missing:1", port=8000)
    fid, vid = fn["id"], fn["versionId"]
    nvcfstack.deploy(stack, stack.admin_key, fid, vid, wait_active=False)
    rec = wait_for(lambda: with_status(stack, vid, "ERRORED"),
                   timeout=30, what="instance ERRORED")[0]
    assert rec["error"].startswith(
        "image localhost/nvcf-missing:1 is not present in the container "
        "engine and no registry pull was possible"), rec
    undeploy(stack, fid, vid)


def test_restart_adopts_running_container_and_sweeps_strays(stack, engine):
    fn = create(stack, "ctr-adopt")
    fid, vid = fn["id"], fn["versionId"]
    nvcfstack.deploy(stack, stack.admin_key, fid, vid, timeout=90)
    rec = wait_for(lambda: with_status(stack, vid, "RUNNING"), timeout=30,
                   what="instance RUNNING")[0]
    # A container of this cluster that no instance record names.
    engine.podman("create", "--label", "nvcf.cluster-id=local-1",
                  "--name", "nvcf-stray", podmanenv.ECHO_TAG)

    stack.kill("nvca")
    stack.restart("nvca")
    wait_for(lambda: "nvcf-stray" not in engine.podman(
        "ps", "-a", "--format", "{{.Names}}").stdout.split(), timeout=30,
        what="the stray container removed")
    now = wait_for(lambda: with_status(stack, vid, "RUNNING"), timeout=30,
                   what="instance RUNNING")[0]
    assert now["instanceId"] == rec["instanceId"]
    assert now["containerId"] == rec["containerId"]
    assert containers(engine, vid) == [rec["containerId"][:12]]
    assert "adopted RUNNING instance %s" % rec["instanceId"] in \
        stack.log("nvca")
    r = http("POST", "%s/v2/nvcf/pexec/functions/%s" % (
        stack.invoke_url, fid), key=stack.admin_key,
        json_body={"after": "restart"}, timeout=30)
    assert r.status == 200, r

    # The watcher of the new agent sees the container end.
    engine.podman("rm", "--force", "--time", "0", rec["containerId"])
    try:
        failed = wait_for(lambda: with_status(stack, vid, "ERRORED"),
                          timeout=30, what="instance ERRORED")[0]
    except Exception:
        print(stack.log("nvca")[-6000:])
        print(instances(stack, vid))
        print("PS", engine.podman("ps", "-a").stdout)
        raise
    assert failed["error"].startswith("container vanished"), failed
    undeploy(stack, fid, vid)
