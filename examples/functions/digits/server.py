#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Handwritten-digit classifier served as an NVCF function.

At start-up it trains a scikit-learn SVC on the 8x8 digits data set that
ships with scikit-learn (no download), keeping a quarter of it aside as a
test split. It listens on 127.0.0.1:$PORT and serves:

  GET  /v2/health/ready   200 once the model is trained
  POST /predict           {"samples": [[64 numbers], ...], "delaySeconds": s}
                          -> {"predictions": [...], "model": {...}}
  GET  /samples?n=K       K held-out test samples with their labels

Run as `server.py --samples K` it prints those K samples and labels as JSON
and exits, so that a client can build requests without reaching /samples.
"""
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.svm import SVC

MAX_DELAY_S = 60.0


def train():
    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data, digits.target, test_size=0.25, random_state=7,
        stratify=digits.target)
    started = time.monotonic()
    model = SVC(gamma=0.001, C=10.0).fit(x_train, y_train)
    info = {
        "name": "digits-svc",
        "estimator": "sklearn.svm.SVC(gamma=0.001, C=10)",
        "trainSamples": int(len(x_train)),
        "testSamples": int(len(x_test)),
        "testAccuracy": round(float(model.score(x_test, y_test)), 4),
        "trainSeconds": round(time.monotonic() - started, 3),
    }
    return model, info, x_test, y_test


MODEL, INFO, X_TEST, Y_TEST = train()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "digits/1"

    def log_message(self, fmt, *args):
        sys.stderr.write("digits: " + (fmt % args) + "\n")

    def send_json(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def fail(self, status, message):
        self.send_json(status, {"error": message})

    def do_GET(self):
        url = urlparse(self.path)
        if url.path in ("/v2/health/ready", "/health"):
            self.send_json(200, {"status": "ready", "model": INFO["name"]})
        elif url.path == "/samples":
            try:
                n = int(parse_qs(url.query).get("n", ["10"])[0])
            except ValueError:
                return self.fail(400, "n must be an integer")
            self.send_json(200, held_out(n))
        else:
            self.fail(404, "no route for GET " + url.path)

    def do_POST(self):
        if urlparse(self.path).path != "/predict":
            return self.fail(404, "no route for POST " + self.path)
        length = int(self.headers.get("Content-Length") or 0)
        try:
            req = json.loads(self.rfile.read(length) or b"{}")
        except ValueError as e:
            return self.fail(400, "body is not JSON: %s" % e)
        if not isinstance(req, dict):
            return self.fail(400, "body must be a JSON object")
        samples = req.get("samples", [])
        if (not isinstance(samples, list) or
                any(not isinstance(s, list) or len(s) != 64
                    for s in samples)):
            return self.fail(400, "samples must be a list of lists of "
                             "64 numbers (8x8 pixels, 0 to 16)")
        delay = req.get("delaySeconds", 0)
        if not isinstance(delay, (int, float)) or not \
                0 <= delay <= MAX_DELAY_S:
            return self.fail(400, "delaySeconds must be a number from 0 "
                             "to %g" % MAX_DELAY_S)
        if delay:
            time.sleep(delay)
        try:
            predictions = MODEL.predict(samples).tolist() if samples else []
        except (TypeError, ValueError) as e:
            return self.fail(400, "cannot classify samples: %s" % e)
        self.send_json(200, {
            "predictions": [int(p) for p in predictions],
            "model": INFO,
            "requestId": self.headers.get("NVCF-REQID"),
        })


def held_out(n):
    n = max(0, min(n, len(X_TEST)))
    return {"samples": X_TEST[:n].tolist(), "labels": Y_TEST[:n].tolist()}


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--samples":
        json.dump(held_out(int(sys.argv[2])), sys.stdout)
        sys.stdout.write("\n")
        return
    port = int(os.environ.get("PORT", "8000"))
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    sys.stderr.write("digits: %s, test accuracy %.4f; listening on "
                     "127.0.0.1:%d\n" % (INFO["estimator"],
                                         INFO["testAccuracy"], port))
    sys.stderr.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
