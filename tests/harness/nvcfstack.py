# SPDX-License-Identifier: Apache-2.0
"""Test harness: real nats-server and real daemons on free loopback ports.

Every test process starts what it needs and stops it afterwards; nothing
here assumes a server is already running. Binaries come from the meson
build directory (NVCF_BUILD_DIR, set by `meson test`).
"""
import http.client as httpclient
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse

SOURCE = os.environ.get(
    "NVCF_SOURCE_DIR",
    os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILD = os.environ.get("NVCF_BUILD_DIR", os.path.join(SOURCE, "build"))
DEFAULT_BACKEND = os.path.join(SOURCE, "examples", "backends", "local.yaml")
PYECHO = os.path.join(SOURCE, "examples", "functions", "pyecho", "server.py")

DAEMONS = {
    "api": "nvcf-api",
    "gateway": "nvcf-invocation",
    "nvca": "nvca",
    "autoscaler": "nvcf-autoscaler",
    "autoscaler-2": "nvcf-autoscaler",
}


def binary(name):
    """Path of a daemon executable in the build tree."""
    return os.path.join(BUILD, "daemons", name, name)


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=20.0, interval=0.05, what="condition"):
    """Polls predicate() until it returns a true value, which is returned."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - reported on timeout
            last_error = e
        time.sleep(interval)
    raise TimeoutError("timed out after %.1f s waiting for %s%s" % (
        timeout, what, "" if last_error is None else
        " (last error: %r)" % (last_error,)))


def kill_session(sid):
    """SIGKILLs every live process of session @p sid."""
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if fields[0] not in ("Z", "X") and int(fields[3]) == sid:
                os.kill(int(name), signal.SIGKILL)
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<Response %d %r>" % (self.status, self.body[:300])


class _Headers(dict):
    """Response headers with case-insensitive lookup."""

    def __init__(self, pairs):
        super().__init__()
        for k, v in pairs:
            lk = k.lower()
            if lk in self:
                super().__setitem__(lk, self[lk] + ", " + v)
            else:
                super().__setitem__(lk, v)

    def __getitem__(self, key):
        return super().__getitem__(key.lower())

    def get(self, key, default=None):
        return super().get(key.lower(), default)

    def __contains__(self, key):
        return super().__contains__(key.lower())


def http(method, url, key=None, json_body=None, body=None, headers=None,
         timeout=30):
    """One HTTP request over a fresh connection; returns a Response."""
    parts = urllib.parse.urlsplit(url)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    hdrs = dict(headers or {})
    if key is not None:
        hdrs["Authorization"] = "Bearer " + key
    if json_body is not None:
        body = json.dumps(json_body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    if isinstance(body, str):
        body = body.encode()
    conn = httpclient.HTTPConnection(parts.hostname, parts.port,
                                      timeout=timeout)
    try:
        conn.request(method, target, body=body, headers=hdrs)
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, _Headers(r.getheaders()), data)
    finally:
        conn.close()


class Nats:
    """nats-server with JetStream on a free port and a private store."""

    def __init__(self, store_dir=None, port=None):
        self._own_dir = store_dir is None
        self.dir = store_dir or tempfile.mkdtemp(prefix="nvcf-nats-")
        self.port = port or free_port()
        self.url = "nats://127.0.0.1:%d" % self.port
        self.proc = None
        self._log = None

    def start(self):
        self._log = open(os.path.join(self.dir, "nats.log"), "ab")
        self.proc = subprocess.Popen(
            ["nats-server", "-js", "-a", "127.0.0.1", "-p", str(self.port),
             "-sd", os.path.join(self.dir, "store")],
            stdout=self._log, stderr=subprocess.STDOUT)
        wait_for(lambda: self.proc.poll() is None and port_open(self.port),
                 timeout=15, what="nats-server on port %d" % self.port)
        # JetStream is ready a moment after the port opens.
        time.sleep(0.2)
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self._log:
            self._log.close()
            self._log = None

    def restart(self):
        self.stop()
        self.start()

    def cleanup(self):
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()


class Stack:
    """nats-server plus the chosen daemons, each on a free loopback port."""

    def __init__(self, api=True, gateway=True, nvca=True, backend=None,
                 api_args=(), gateway_args=(), nvca_args=(),
                 ack_wait_ms=None, log_level="debug", autoscalers=0,
                 autoscaler_args=()):
        self.dir = tempfile.mkdtemp(prefix="nvcf-stack-")
        self.nats = Nats(store_dir=os.path.join(self.dir, "nats"))
        os.makedirs(self.nats.dir, exist_ok=True)
        self.backend = backend or DEFAULT_BACKEND
        self.enabled = {"api": api, "gateway": gateway, "nvca": nvca,
                        "autoscaler": autoscalers >= 1,
                        "autoscaler-2": autoscalers >= 2}
        self.extra = {"api": list(api_args), "gateway": list(gateway_args),
                      "nvca": list(nvca_args),
                      "autoscaler": list(autoscaler_args),
                      "autoscaler-2": list(autoscaler_args)}
        if autoscalers:
            # The autoscaler places every instance, minimum included.
            self.extra["api"].append("--autoscaler")
        if ack_wait_ms is not None:
            self.extra["api"] += ["--ack-wait-ms", str(ack_wait_ms)]
        self.log_level = log_level
        self.backends = {}
        self.procs = {}
        self.ports = {}
        self.admin_key = None

    # -- URLs --------------------------------------------------------------
    @property
    def nats_url(self):
        return self.nats.url

    @property
    def api_url(self):
        return "http://127.0.0.1:%d" % self.ports["api"]

    @property
    def invoke_url(self):
        return "http://127.0.0.1:%d" % self.ports["gateway"]

    # -- processes ---------------------------------------------------------
    def _argv(self, name):
        exe = binary(DAEMONS[name])
        port_file = os.path.join(self.dir, name + ".port")
        argv = [exe, "--nats", self.nats.url, "--log-level", self.log_level,
                "--listen", "127.0.0.1:0", "--port-file", port_file]
        if name.startswith("autoscaler"):
            argv += ["--replica-id", name]
        if name.startswith("nvca"):
            argv += ["--config", self.backends.get(name, self.backend),
                     "--state-dir", os.path.join(self.dir, name),
                     "--worker", binary("nvcf-worker")]
        return argv + self.extra[name], port_file

    def start_daemon(self, name):
        argv, port_file = self._argv(name)
        if os.path.exists(port_file):
            os.unlink(port_file)
        log = open(os.path.join(self.dir, name + ".log"), "ab")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        log.close()
        self.procs[name] = proc

        def ready():
            if proc.poll() is not None:
                raise RuntimeError("%s exited with %s:\n%s" % (
                    name, proc.returncode, self.log(name)[-3000:]))
            if not os.path.exists(port_file):
                return False
            with open(port_file) as f:
                text = f.read().strip()
            if not text:
                return False
            port = int(text)
            r = http("GET", "http://127.0.0.1:%d/health" % port, timeout=2)
            if r.status == 200:
                self.ports[name] = port
                return True
            return False

        wait_for(ready, timeout=30, what="%s to become healthy" % name)

    def start(self):
        try:
            self.nats.start()
            for name in ("api", "nvca", "autoscaler", "autoscaler-2",
                         "gateway"):
                if self.enabled[name]:
                    self.start_daemon(name)
            self.admin_key = self.create_key("admin-acct")
        except BaseException:
            self.stop()
            raise
        return self

    def add_agent(self, name, backend):
        """Starts one more cluster agent, `name` starting with "nvca"."""
        assert name.startswith("nvca") and name not in self.procs
        DAEMONS.setdefault(name, "nvca")
        self.backends[name] = backend
        self.extra.setdefault(name, list(self.extra["nvca"]))
        self.start_daemon(name)

    def create_key(self, nca_id, scopes="all"):
        out = subprocess.run(
            [binary("nvcf"), "key", "create", "--nca-id", nca_id,
             "--scopes", scopes, "--nats", self.nats.url],
            check=True, capture_output=True, text=True, timeout=30)
        return out.stdout.strip()

    def kill(self, name, sig=signal.SIGKILL):
        proc = self.procs.get(name)
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, sig) if sig == signal.SIGKILL else \
                proc.send_signal(sig)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def restart(self, name):
        self.kill(name, signal.SIGTERM)
        self.start_daemon(name)

    def log(self, name):
        path = os.path.join(self.dir, name + ".log")
        if not os.path.exists(path):
            return ""
        with open(path, errors="replace") as f:
            return f.read()

    def stop(self):
        # The agent stops last, after the planes that send it work, and
        # stops the instances it started on the way out.
        agents = sorted(n for n in self.procs if n.startswith("nvca"))
        for name in ["gateway", "autoscaler", "autoscaler-2", "api"] + \
                agents:
            self.kill(name, signal.SIGTERM)
        # Instances of an agent a test killed keep the agent's session.
        for name in agents:
            kill_session(self.procs[name].pid)
        self.nats.stop()
        if os.environ.get("NVCF_KEEP_STATE"):
            return
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def create_function(s, key, name="echo", image=None, args="", env=None,
                    inference_url="/echo", port=None, health_uri="/health"):
    """Creates a function version through the API; returns its record."""
    body = {
        "name": name,
        "inferenceUrl": inference_url,
        "containerImage": image or ("file://" + PYECHO),
        "health": {"protocol": "HTTP", "uri": health_uri,
                   "port": port or 8000, "timeout": "PT10S",
                   "expectedStatusCode": 200},
    }
    if port is not None:
        body["inferencePort"] = port
    if args:
        body["containerArgs"] = args
    if env:
        body["containerEnvironment"] = [
            {"key": k, "value": v} for k, v in env.items()]
    r = http("POST", s.api_url + "/v2/nvcf/functions", key=key,
             json_body=body)
    assert r.status == 200, r
    return r.json()["function"]


def deploy(s, key, fid, vid, min=1, max=1, concurrency=1, gpu="L40S",
           instance_type="NCP.GPU.L40S_1x", wait_active=True, timeout=60):
    """Deploys a version; waits for ACTIVE unless wait_active is false."""
    spec = {"gpu": gpu, "instanceType": instance_type, "minInstances": min,
            "maxInstances": max, "maxRequestConcurrency": concurrency}
    r = http("POST", "%s/v2/nvcf/deployments/functions/%s/versions/%s" % (
        s.api_url, fid, vid), key=key,
        json_body={"deploymentSpecifications": [spec]})
    assert r.status == 200, r
    deployment = r.json()["deployment"]
    if wait_active:
        def active():
            g = http("GET", "%s/v2/nvcf/functions/%s/versions/%s" % (
                s.api_url, fid, vid), key=key)
            status = g.json()["function"]["status"]
            if status == "ERROR":
                raise AssertionError("deployment failed: %r" % g.json())
            return status == "ACTIVE"
        wait_for(active, timeout=timeout, interval=0.1,
                 what="function %s version %s to become ACTIVE" % (fid, vid))
    return deployment
