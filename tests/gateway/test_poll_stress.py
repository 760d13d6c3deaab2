# SPDX-License-Identifier: Apache-2.0
"""Concurrent polls whose results arrive as their windows end.

Each call has a 1 s window and a function that takes about as long, so
results, window ends and polls race one another, while callers with an
unknown key are rejected in between. Every call must end in 200 (or 401
for the unknown key) and the gateway must stay up.
"""
import random
import threading
import time

import nvcfstack
from nvcfstack import http


def test_polls_racing_results():
    with nvcfstack.Stack(log_level="info") as s:
        fn = nvcfstack.create_function(s, s.admin_key, name="racer")
        nvcfstack.deploy(s, s.admin_key, fn["id"], fn["versionId"],
                         concurrency=16)
        url = s.invoke_url + "/v2/nvcf/pexec/functions/" + fn["id"]
        deadline = time.monotonic() + 15
        failures = []
        completed = []
        rng = random.Random(7)

        def caller():
            while time.monotonic() < deadline and not failures:
                try:
                    if rng.random() < 0.2:
                        r = http("POST", url, key="nvapi-unknown",
                                 json_body={})
                        assert r.status == 401, r
                        continue
                    sleep = rng.choice([0, 0.9, 1.0, 1.1, 2.0])
                    r = http("POST", url, key=s.admin_key,
                             json_body={"sleep": sleep},
                             headers={"NVCF-POLL-SECONDS": "1"})
                    while r.status == 202:
                        r = http("GET", s.invoke_url +
                                 "/v2/nvcf/pexec/status/" +
                                 r.headers["NVCF-REQID"],
                                 key=s.admin_key,
                                 headers={"NVCF-POLL-SECONDS": "1"})
                    assert r.status == 200, r
                    completed.append(1)
                except Exception as e:  # noqa: BLE001 - reported below
                    failures.append(repr(e))

        threads = [threading.Thread(target=caller) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert failures == []
        assert len(completed) > 20
        assert s.procs["gateway"].poll() is None, s.log("gateway")[-2000:]
