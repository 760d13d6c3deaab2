# SPDX-License-Identifier: Apache-2.0
"""A private podman serving the Docker Engine API on a unix socket.

Storage, run state, configuration and the socket all live in one
temporary directory that stop() removes, so tests never touch the
machine's own containers or images. Pulls are refused by registries.conf
before any connection is made: no registry is reachable here, and a test
that makes the engine try a pull must send no traffic anywhere.

    pm = podmanenv.Podman(); pm.start(); pm.build_echo_image()
    pm.socket   # path for nvcf__docker_new()
    pm.podman("ps", "-a")
    pm.stop()
"""
import http.client
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD_IMAGE = os.path.join(HERE, "build-echo-image.sh")
ECHO_TAG = "localhost/nvcf-echo:test"

# Debian's podman 4.3 needs runc (crun rejects these hybrid cgroups) and
# explicit ulimits (TESTING.md, "Containers").
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
"""

BLOCKED = ["localhost", "docker.io", "quay.io", "ghcr.io", "gcr.io",
           "nvcr.io", "registry.fedoraproject.org",
           "registry.access.redhat.com"]
REGISTRIES_CONF = "unqualified-search-registries = []\n" + "".join(
    '[[registry]]\nlocation = "%s"\nblocked = true\n' % r for r in BLOCKED)


def missing_tools():
    """Names of what the container tests need and this machine lacks."""
    missing = [t for t in ("podman", "runc") if shutil.which(t) is None]
    if not os.access("/bin/busybox", os.X_OK):
        missing.append("busybox-static (/bin/busybox)")
    return missing


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=10):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class Podman:
    def __init__(self):
        self.dir = None
        self.proc = None
        self.socket = None
        self.env = None

    def podman_args(self):
        """Global flags that keep podman inside the temporary directory."""
        return ["--root", os.path.join(self.dir, "root"),
                "--runroot", os.path.join(self.dir, "run"),
                # vfs needs no mounts, so removing the directory is enough.
                "--storage-driver", "vfs"]

    def podman(self, *args, check=True, timeout=120):
        """Runs the podman CLI on the private storage."""
        return subprocess.run(["podman"] + self.podman_args() + list(args),
                              env=self.env, capture_output=True, text=True,
                              check=check, timeout=timeout)

    def start(self, timeout=30):
        self.dir = tempfile.mkdtemp(prefix="nvcf-podman-")
        conf = os.path.join(self.dir, "containers.conf")
        regs = os.path.join(self.dir, "registries.conf")
        with open(conf, "w") as f:
            f.write(CONTAINERS_CONF)
        with open(regs, "w") as f:
            f.write(REGISTRIES_CONF)
        self.env = dict(os.environ, CONTAINERS_CONF=conf,
                        CONTAINERS_REGISTRIES_CONF=regs)
        self.socket = os.path.join(self.dir, "api.sock")
        self.log_path = os.path.join(self.dir, "service.log")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                ["podman"] + self.podman_args() +
                ["system", "service", "--time=0", "unix://" + self.socket],
                env=self.env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("podman system service exited with %d: "
                                   "%s" % (self.proc.returncode, self.log()))
            try:
                if self.api("GET", "/_ping")[0] == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("podman system service did not answer "
                                   "on %s within %d s: %s" % (
                                       self.socket, timeout, self.log()))
            time.sleep(0.05)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-4000:]
        except OSError:
            return ""

    def api(self, method, path, body=None):
        """One Docker Engine API request; returns (status, body bytes)."""
        c = UnixHTTPConnection(self.socket)
        try:
            headers = {"Content-Type": "application/json"} if body else {}
            c.request(method, "/v1.41" + path, body=body, headers=headers)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def build_echo_image(self, tag=ECHO_TAG):
        subprocess.run([BUILD_IMAGE, tag] + self.podman_args(),
                       env=self.env, check=True, capture_output=True,
                       timeout=120)
        return tag

    def stop(self):
        if self.dir is None:
            return
        try:
            self.podman("rm", "--all", "--force", "--time", "0",
                        check=False)
        finally:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
            self.podman("rmi", "--all", "--force", check=False)
            self._unmount_leftovers()
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def _unmount_leftovers(self):
        """Unmounts what podman left under the directory (shm, netns)."""
        with open("/proc/self/mounts") as f:
            points = [line.split()[1] for line in f]
        for p in sorted((p for p in points if p.startswith(self.dir)),
                        reverse=True):
            subprocess.run(["umount", p], capture_output=True)
