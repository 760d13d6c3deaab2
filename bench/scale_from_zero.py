#!/usr/bin/python3
"""Measures scale from zero: the time from a request arriving at the
gateway for a version with no instance to its instance process being
started (the platform's part, not the function's own start-up).

It brings up a local stack (nats-server, nvcf-api, nvcf-invocation,
nvca, nvcf-autoscaler) on free loopback ports, deploys the C echo
function (build/examples/echo-c, which prints its start time first
thing) with minInstances 0, and repeats: wait until the version is at
zero, send one request, read the instance's start time from its log.

Usage: bench/scale_from_zero.py [ROUNDS]   (default 10)
"""
import glob
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "harness"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "agent"))
import nvcfstack  # noqa: E402
from nvcfstack import http, wait_for  # noqa: E402
import natskv  # noqa: E402


def live(s, vid):
    c = natskv.Client(s.nats_url)
    try:
        recs = c.records("nvcf_instances", vid + ".")
    finally:
        c.close()
    return [r for r in recs if r["instanceStatus"] in ("STARTING", "RUNNING")]


def started_at(s, iid):
    path = os.path.join(s.dir, "nvca", "instances", iid + ".log")
    with open(path) as f:
        for line in f:
            if line.startswith("echo-c: started at "):
                return float(line.split()[3])
    return None


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    echo = os.path.join(nvcfstack.BUILD, "examples", "echo-c")
    args = ["--tick-ms", "500", "--idle-to-zero-ms", "300",
            "--scale-down-window-ms", "100"]
    with nvcfstack.Stack(autoscalers=1, autoscaler_args=args,
                         log_level="info") as s:
        fn = nvcfstack.create_function(s, s.admin_key, name="bench-zero",
                                       image="file://" + echo)
        fid, vid = fn["id"], fn["versionId"]
        nvcfstack.deploy(s, s.admin_key, fid, vid, min=0, max=1,
                         wait_active=False)
        samples, seen = [], set()
        for _ in range(rounds):
            wait_for(lambda: not live(s, vid), timeout=30,
                     what="version at zero")
            time.sleep(0.2)
            t0 = time.time()
            r = http("POST", "%s/v2/nvcf/pexec/functions/%s" % (
                s.invoke_url, fid), key=s.admin_key, body=b"x",
                headers={"Content-Type": "application/octet-stream",
                         "NVCF-POLL-SECONDS": "30"}, timeout=60)
            if r.status != 200:
                raise SystemExit("request failed: %r" % r)
            new = [i for i in live(s, vid) if i["instanceId"] not in seen]
            if len(new) != 1:
                raise SystemExit("expected one new instance, got %r" % new)
            iid = new[0]["instanceId"]
            seen.add(iid)
            t1 = started_at(s, iid)
            samples.append((t1 - t0) * 1000)
        samples.sort()
        p90 = samples[min(len(samples) - 1, int(len(samples) * 0.9))]
        print("scale from zero, request to instance process started "
              "(%d rounds): min %.1f ms, median %.1f ms, p90 %.1f ms, "
              "max %.1f ms" % (len(samples), samples[0],
                               statistics.median(samples), p90,
                               samples[-1]))


if __name__ == "__main__":
    main()
