# SPDX-License-Identifier: Apache-2.0
"""LocalStack: a whole local stack from Python, the way `nvcf up` runs one.

    with nvcf.LocalStack() as stack:
        fn = stack.api.create_function("echo", "/echo", "file:///.../x.py")
        stack.api.deploy(fn["id"], fn["versionId"], "L40S",
                         "NCP.GPU.L40S_1x", wait=True)
        print(stack.gateway.invoke(fn["id"], {"hi": 1}).json())
"""
import os
import shutil
import subprocess
import tempfile
import weakref

from . import _lib
from .client import ApiClient, GatewayClient

# Processes `nvcf up` may start; builds before the autoscaler joined the
# stack start only the first four.
PROCESSES = ("nats", "nvcf-api", "nvcf-invocation", "nvca",
             "nvcf-autoscaler")


class LocalStackError(RuntimeError):
    """`nvcf up` or `nvcf down` failed; the message carries its output."""


def _executable(path):
    return path if path and os.path.isfile(path) and \
        os.access(path, os.X_OK) else None


def find_cli():
    """Path of the `nvcf` executable, or raises LocalStackError.

    Looked for next to libnvcf (a build tree's daemons/nvcf/nvcf, or
    ../bin/nvcf of an installed libdir), then in
    NVCF_BUILD_DIR/daemons/nvcf/nvcf, then on PATH.
    """
    tried = []
    try:
        libpath, _ = _lib.find_library()
    except ImportError as e:
        libpath = None
        tried.append("next to libnvcf (%s)" % e)
    if libpath and os.path.isabs(libpath):
        libdir = os.path.dirname(os.path.realpath(libpath))
        for rel in (("..", "daemons", "nvcf", "nvcf"), ("..", "bin", "nvcf"),
                    ("..", "..", "bin", "nvcf")):
            cand = os.path.normpath(os.path.join(libdir, *rel))
            if _executable(cand):
                return cand
            tried.append(cand)
    build = os.environ.get("NVCF_BUILD_DIR")
    if build:
        cand = os.path.join(build, "daemons", "nvcf", "nvcf")
        if _executable(cand):
            return cand
        tried.append(cand)
    else:
        tried.append("NVCF_BUILD_DIR (not set)")
    found = shutil.which("nvcf")
    if found:
        return found
    tried.append("PATH")
    raise LocalStackError(
        "cannot find the nvcf executable; tried: %s. Build it (make "
        "build) and set NVCF_BUILD_DIR, or pass nvcf=PATH" % "; ".join(
            tried))


def _read_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("export "):
                line = line[len("export "):]
            if "=" in line:
                k, v = line.split("=", 1)
                env[k] = v
    return env


def _down(cli, state_dir, remove_dir):
    """Stops the stack in @state_dir; run by __exit__ or the finalizer."""
    try:
        out = subprocess.run([cli, "down", "--state-dir", state_dir],
                             capture_output=True, text=True, timeout=60)
    finally:
        if remove_dir:
            shutil.rmtree(state_dir, ignore_errors=True)
    return out


class LocalStack:
    """nats-server, nvcf-api, nvcf-invocation and nvca on free loopback
    ports, in a temporary state directory, started by `nvcf up`.

    Entering (or start()) returns the stack with `api` (ApiClient) and
    `gateway` (GatewayClient) already holding an admin key of account
    "local-admin" with every scope. Leaving (or stop()) always runs
    `nvcf down` and removes the state directory unless keep_state is
    true or state_dir was given.

    Arguments: backend (an NVCFBackend YAML; the default is the one
    `nvcf up` picks), log_level (passed to each daemon), nats_port,
    state_dir, keep_state, nvcf (path of the executable).
    """

    def __init__(self, backend=None, log_level=None, nats_port=None,
                 state_dir=None, keep_state=False, nvcf=None,
                 start_timeout=120):
        self.cli = nvcf or find_cli()
        self.backend = backend
        self.log_level = log_level
        self.nats_port = nats_port
        self._given_dir = state_dir
        self.keep_state = keep_state or state_dir is not None
        self.start_timeout = start_timeout
        self.state_dir = None
        self.env = {}
        self.api = None
        self.gateway = None
        self._finalizer = None

    # -- lifecycle ---------------------------------------------------------
    def start(self):
        """Runs `nvcf up`; raises LocalStackError with its output."""
        if self._finalizer is not None and self._finalizer.alive:
            raise LocalStackError("this LocalStack is already running in "
                                  "%s: stop() it first" % self.state_dir)
        if self._given_dir:
            os.makedirs(self._given_dir, exist_ok=True)
            self.state_dir = os.path.realpath(self._given_dir)
        else:
            self.state_dir = tempfile.mkdtemp(prefix="nvcf-local-")
        self._finalizer = weakref.finalize(
            self, _down, self.cli, self.state_dir, not self.keep_state)
        argv = [self.cli, "up", "--state-dir", self.state_dir]
        if self.backend:
            argv += ["--backend", os.path.abspath(self.backend)]
        if self.log_level:
            argv += ["--log-level", self.log_level]
        if self.nats_port:
            argv += ["--nats-port", str(self.nats_port)]
        try:
            out = subprocess.run(argv, capture_output=True, text=True,
                                 timeout=self.start_timeout)
        except subprocess.TimeoutExpired:
            self._stop_quietly()
            raise LocalStackError("nvcf up did not finish within %d s" %
                                  self.start_timeout) from None
        env_path = os.path.join(self.state_dir, "env")
        if out.returncode != 0 or not os.path.exists(env_path):
            logs = self.logs_text()
            self._stop_quietly()
            raise LocalStackError(
                "nvcf up failed with exit status %d:\n%s%s%s" % (
                    out.returncode, out.stdout, out.stderr, logs))
        self.env = _read_env(env_path)
        self.api = ApiClient(self.api_url, self.admin_key)
        self.gateway = GatewayClient(self.invoke_url, self.admin_key)
        return self

    def _stop_quietly(self):
        try:
            self.stop()
        except Exception:  # noqa: BLE001 - the first error is reported
            pass

    def stop(self):
        """Runs `nvcf down`; raises LocalStackError if it fails."""
        if self._finalizer is None or not self._finalizer.alive:
            return
        out = self._finalizer()
        if out is not None and out.returncode != 0:
            raise LocalStackError("nvcf down failed with exit status %d:\n"
                                  "%s%s" % (out.returncode, out.stdout,
                                            out.stderr))

    @property
    def running(self):
        return self._finalizer is not None and self._finalizer.alive

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- settings ----------------------------------------------------------
    @property
    def api_url(self):
        return self.env.get("NVCF_API_URL")

    @property
    def invoke_url(self):
        return self.env.get("NVCF_INVOKE_URL")

    @property
    def nats_url(self):
        return self.env.get("NATS_URL")

    @property
    def admin_key(self):
        return self.env.get("NVCF_API_KEY")

    def pid(self, name):
        """Pid of one process ("nats", "nvcf-api", ...), or None."""
        try:
            with open(os.path.join(self.state_dir, name + ".pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError, TypeError):
            return None

    def processes(self):
        """Returns {name: pid} of every process with a pid file."""
        found = {}
        for name in PROCESSES:
            pid = self.pid(name)
            if pid is not None:
                found[name] = pid
        return found

    def log(self, name):
        """Returns the log of one process of PROCESSES ("" if none)."""
        if not self.state_dir:
            return ""
        path = os.path.join(self.state_dir, "logs", name + ".log")
        try:
            with open(path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def logs_text(self, tail=2000):
        """Returns the last @tail characters of every process's log."""
        parts = []
        for name in PROCESSES:
            text = self.log(name)
            if text:
                parts.append("--- %s ---\n%s" % (name, text[-tail:]))
        return "\n".join(parts)

    # -- helpers -----------------------------------------------------------
    def create_key(self, nca_id, scopes="all"):
        """Creates an API key of another account; returns the key."""
        out = subprocess.run(
            [self.cli, "key", "create", "--nca-id", nca_id, "--scopes",
             scopes, "--nats", self.nats_url],
            capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            raise LocalStackError("nvcf key create failed: %s" %
                                  out.stderr.strip())
        return out.stdout.strip()

    def client(self, key):
        """(ApiClient, GatewayClient) that use @key."""
        return ApiClient(self.api_url, key), GatewayClient(self.invoke_url,
                                                           key)

    def bus(self, **kw):
        """Connects a Bus to this stack's nats-server (needs libnvcf)."""
        from .bus import Bus
        return Bus(url=self.nats_url, **kw)
