"""One nvca process with its own backend file, flags and environment."""

import os
import signal
import subprocess

import nvcfstack
from nvcfstack import http, wait_for


class Agent:
    """Starts nvca for `backend_text` and waits for its /health.

    `args` are appended to the command line; `env` replaces the
    environment (default: this process's).
    """

    def __init__(self, stack, name, backend_text, args=(), env=None):
        self.name = name
        self.dir = os.path.join(stack.dir, name)
        os.makedirs(self.dir)
        self.config = os.path.join(self.dir, "backend.yaml")
        with open(self.config, "w") as f:
            f.write(backend_text)
        self.port_file = os.path.join(self.dir, "port")
        self.log_path = os.path.join(self.dir, "nvca.log")
        argv = [nvcfstack.binary("nvca"), "--nats", stack.nats_url,
                "--config", self.config, "--state-dir",
                os.path.join(self.dir, "state"), "--worker",
                nvcfstack.binary("nvcf-worker"), "--listen", "127.0.0.1:0",
                "--port-file", self.port_file, "--grace-ms", "2000",
                "--log-level", "debug"] + list(args)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log,
                                         stderr=subprocess.STDOUT,
                                         start_new_session=True, env=env)
        try:
            wait_for(self._healthy, timeout=30,
                     what="nvca %s healthy" % name)
        except BaseException:
            self.stop()
            raise

    def _healthy(self):
        if self.proc.poll() is not None:
            raise RuntimeError("nvca %s exited: %s" % (self.name, self.log()))
        if not os.path.exists(self.port_file):
            return False
        text = open(self.port_file).read().strip()
        return bool(text) and http(
            "GET", "http://127.0.0.1:%s/health" % text, timeout=2
        ).status == 200

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()[-3000:]

    def stop(self):
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGCONT)  # in case a test stopped it
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
