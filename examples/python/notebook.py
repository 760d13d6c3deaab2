#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A notebook-style tour of the `nvcf` Python package.

Run after `make build`:

    /usr/bin/python3 examples/python/notebook.py [--calls N]

Each "cell" below is short and prints what it did, the way it would in a
Jupyter notebook: start a local stack, deploy the pyecho function, call it
a few hundred times, look at latency and status codes, shut down.
"""
# %% Cell 1: find the package and the build -------------------------------
import argparse
import collections
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SOURCE, "bindings", "python"))
# In a source checkout the library and the `nvcf` executable are in build/.
os.environ.setdefault("NVCF_BUILD_DIR", os.path.join(SOURCE, "build"))

import nvcf  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--calls", type=int, default=300,
                    help="invocations to measure (default 300)")
args = parser.parse_args()
if args.calls < 1:
    parser.error("--calls must be at least 1, got %d" % args.calls)

print("nvcf binding", nvcf.__version__, "- libnvcf", nvcf.version_string())

# %% Cell 2: start a whole local stack -------------------------------------
stack = nvcf.LocalStack()
stack.start()
print("stack up in", stack.state_dir)
print("  API    ", stack.api_url)
print("  gateway", stack.invoke_url)

try:
    # %% Cell 3: register the echo function (a local process) -------------
    image = "file://" + os.path.join(SOURCE, "examples", "functions",
                                     "pyecho", "server.py")
    fn = stack.api.create_function("notebook-echo", "/echo", image,
                                   health_uri="/health")
    fid, vid = fn["id"], fn["versionId"]
    print("function", fid, "version", vid, "status", fn["status"])

    # %% Cell 4: deploy it and wait until it is ACTIVE ----------------------
    t0 = time.monotonic()
    stack.api.deploy(fid, vid, gpu="L40S", instance_type="NCP.GPU.L40S_1x",
                     min_instances=1, max_instances=1,
                     max_request_concurrency=4, wait=True)
    print("ACTIVE after %.2f s" % (time.monotonic() - t0))

    # %% Cell 5: one call, to see what the function receives ----------------
    r = stack.gateway.invoke(fid, {"hello": "notebook"})
    print("status", r.status, "NVCF-STATUS", r.nvcf_status)
    print("headers the function saw:",
          sorted(k for k in r.json()["headers"] if k.startswith("NVCF-")))

    # %% Cell 6: call it many times -----------------------------------------
    latencies_ms = []
    codes = collections.Counter()
    t0 = time.monotonic()
    for i in range(args.calls):
        r = stack.gateway.invoke(fid, {"i": i})
        latencies_ms.append(r.elapsed * 1000.0)
        codes[r.status] += 1
    wall = time.monotonic() - t0
    print("%d calls in %.2f s (%.0f calls/s, one at a time)" % (
        args.calls, wall, args.calls / wall))

    # %% Cell 7: latency percentiles and status codes -----------------------
    def percentile(sorted_values, q):
        """Nearest-rank percentile of an ascending list."""
        rank = max(1, -(-len(sorted_values) * q // 100))
        return sorted_values[int(rank) - 1]

    ordered = sorted(latencies_ms)
    print()
    print("%-8s %10s" % ("latency", "ms"))
    print("%-8s %10s" % ("-" * 8, "-" * 10))
    for label, q in (("p50", 50), ("p90", 90), ("p99", 99)):
        print("%-8s %10.2f" % (label, percentile(ordered, q)))
    print("%-8s %10.2f" % ("max", ordered[-1]))
    print()
    print("%-8s %10s" % ("status", "count"))
    print("%-8s %10s" % ("-" * 8, "-" * 10))
    for code, count in sorted(codes.items()):
        print("%-8d %10d" % (code, count))

    # %% Cell 8: what the scaling policy would make of this load -----------
    if nvcf.load_library().has("scaling"):
        from nvcf import scaling
        params = scaling.Params(min_instances=1, max_instances=4,
                                max_request_concurrency=4)
        with scaling.History() as history:
            for queued in (0, 8, 40):
                d = history.evaluate(params, scaling.Metrics(
                    now_ms=1000, queued=queued, ready=1,
                    last_request_ms=1000))
                print("queued %-3d -> %d instances (%s)" % (
                    queued, d.desired, d.reason.label))
finally:
    # %% Cell 9: shut everything down ---------------------------------------
    stack.stop()
    print()
    print("stack stopped")
