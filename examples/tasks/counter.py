#!/usr/bin/python3
"""Sample NVCT task for the process runtime: counts to 100.

Writes the progress file ($NVCT_PROGRESS_FILE_PATH) as NVCT reads it,
{"taskId", "percentComplete", "name", "metadata", "lastUpdatedAt"}, one
step at a time, then two result files into $NVCT_RESULTS_DIR
(numbers.txt and summary.json) and exits 0.

Options (all optional):
  --steps N         progress steps from 0 to 100 (default 5)
  --interval S      seconds between steps (default 0.1)
  --sleep S         seconds to wait before the last step (default 0)
  --exit-code C     exit with C after the results, before writing 100
  --no-results      write no result files
  --ignore-term     ignore SIGTERM (only SIGKILL stops it)
  --pid-file PATH   write the process id to PATH first
  --env-file PATH   write the environment as JSON to PATH first
  --big-result N    also write big.bin, N bytes of big_content(N)
"""

import argparse
import datetime
import json
import os
import signal
import sys
import time


def now_rfc3339():
    t = datetime.datetime.now(datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f000Z")


def write_atomic(path, text):
    # The agent may read at any moment: it must see old or new, never half.
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def progress(path, task_id, percent, name=None, metadata=None):
    doc = {"taskId": task_id, "percentComplete": percent,
           "lastUpdatedAt": now_rfc3339()}
    if name is not None:
        doc["name"] = name
        doc["metadata"] = metadata or {}
    write_atomic(path, json.dumps(doc))
    print("progress %d%%" % percent, flush=True)


def big_content(n):
    """N bytes that depend on their position, so a test can rebuild them."""
    block = bytes(range(256)) * 4096
    out = bytearray()
    i = 0
    while len(out) < n:
        out += bytes([i % 251]) + block
        i += 1
    return bytes(out[:n])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--interval", type=float, default=0.1)
    p.add_argument("--sleep", type=float, default=0.0)
    p.add_argument("--exit-code", type=int, default=0)
    p.add_argument("--no-results", action="store_true")
    p.add_argument("--ignore-term", action="store_true")
    p.add_argument("--pid-file")
    p.add_argument("--env-file")
    p.add_argument("--big-result", type=int, default=0)
    a = p.parse_args()

    if a.ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if a.pid_file:
        write_atomic(a.pid_file, str(os.getpid()))
    if a.env_file:
        write_atomic(a.env_file, json.dumps(dict(os.environ)))
    task_id = os.environ.get("NVCT_TASK_ID", "")
    path = os.environ.get("NVCT_PROGRESS_FILE_PATH")
    results = os.environ.get("NVCT_RESULTS_DIR")
    if not path or not results:
        print("NVCT_PROGRESS_FILE_PATH and NVCT_RESULTS_DIR must be set; "
              "run me as an NVCT task", file=sys.stderr)
        return 2
    steps = max(a.steps, 1)
    numbers = []
    for i in range(steps):
        percent = i * 100 // steps
        numbers.append(percent)
        progress(path, task_id, percent)
        time.sleep(a.interval)
    if a.sleep > 0:
        print("sleeping %.1f s" % a.sleep, flush=True)
        time.sleep(a.sleep)
    if not a.no_results:
        write_atomic(os.path.join(results, "numbers.txt"),
                     "".join("%d\n" % n for n in numbers))
        write_atomic(os.path.join(results, "summary.json"),
                     json.dumps({"taskId": task_id, "steps": steps}))
    if a.big_result > 0:
        tmp = os.path.join(results, "big.bin.tmp")
        with open(tmp, "wb") as f:
            f.write(big_content(a.big_result))
        os.replace(tmp, os.path.join(results, "big.bin"))
    if a.exit_code != 0:
        print("failing on request with status %d" % a.exit_code,
              file=sys.stderr, flush=True)
        return a.exit_code
    progress(path, task_id, 100, name="counter",
             metadata={"steps": steps, "last": numbers[-1]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
