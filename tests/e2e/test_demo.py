# SPDX-License-Identifier: Apache-2.0
"""The whole demo (examples/demo.sh, what `make demo` runs) end to end:
nvcf up, the digits classifier created, deployed and called through the
gateway with held-out images, one call answered 202 and polled, then
nvcf down."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request

import nvcfstack

NVCF = os.path.join(nvcfstack.BUILD, "daemons", "nvcf", "nvcf")
DEMO = os.path.join(nvcfstack.SOURCE, "examples", "demo.sh")
NAMES = ["nats", "nvcf-api", "nvcf-invocation", "nvca"]


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


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def test_demo_classifies_digits_through_the_gateway():
    state = tempfile.mkdtemp(prefix="nvcf-e2e-")
    env = dict(os.environ, STATE_DIR=state, NVCF=NVCF, SAMPLES="60")
    env = {k: v for k, v in env.items() if k not in
           ("NVCF_API_URL", "NVCF_INVOKE_URL", "NVCF_API_KEY")}
    pids = {}
    try:
        r = subprocess.run(["bash", DEMO], env=env, capture_output=True,
                           text=True, timeout=240)
        pids = {n: int(open(os.path.join(state, n + ".pid")).read())
                for n in NAMES if os.path.exists(os.path.join(
                    state, n + ".pid"))}
        assert r.returncode == 0, r.stdout + r.stderr
        out = r.stdout

        m = re.search(r"^accuracy: ([0-9.]+) \((\d+) of (\d+)\)$", out,
                      re.M)
        assert m, out
        assert int(m.group(3)) == 60
        assert float(m.group(1)) > 0.9, out
        # one table row per image, label then prediction
        rows = re.findall(r"^\s+\d+\s+(\d)\s+(\d)\s", out, re.M)
        assert len(rows) == 60, out
        right = sum(1 for y, p in rows if y == p)
        assert right == int(m.group(2))

        # the slow call returned 202 first, then the client polled
        assert re.search(r"request [0-9a-f-]{36}: 202 after", r.stderr), \
            r.stderr
        assert re.search(r"HTTP 200 after [0-9.]+ s \([1-9]\d* polls?\)",
                         r.stderr), r.stderr
        assert re.search(r"^polled result: predictions \[\d\]$", out,
                         re.M), out
        assert "curl -s -X POST" in out
        assert "down --state-dir " + state in out

        # the stack keeps running and serves the curl call the demo printed
        assert pids and all(pid_alive(p) for p in pids.values()), pids
        fid = re.search(r"^function id ([0-9a-f-]{36})", out, re.M).group(1)
        envf = dict(re.findall(r"export (\w+)=(\S+)",
                               open(os.path.join(state, "env")).read()))
        sample = [0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3,
                  15, 2, 0, 11, 8, 0, 0, 4, 12, 0, 0, 8, 8, 0, 0, 5, 8, 0,
                  0, 9, 8, 0, 0, 4, 11, 0, 1, 12, 7, 0, 0, 2, 14, 5, 10,
                  12, 0, 0, 0, 0, 6, 13, 10, 0, 0, 0]
        status, body = http_call(
            "POST", envf["NVCF_INVOKE_URL"] + "/v2/nvcf/pexec/functions/" +
            fid, key=envf["NVCF_API_KEY"], json_body={"samples": [sample]})
        assert status == 200, body
        assert json.loads(body)["predictions"] == [0]
    finally:
        d = subprocess.run([NVCF, "down", "--state-dir", state],
                           capture_output=True, text=True, timeout=60)
        shutil.rmtree(state, ignore_errors=True)
    assert d.returncode == 0, d.stderr
    nvcfstack.wait_for(lambda: not any(pid_alive(p) for p in pids.values()),
                       timeout=15, what="the demo stack to stop")
