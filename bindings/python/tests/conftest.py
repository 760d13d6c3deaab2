# SPDX-License-Identifier: Apache-2.0
"""Fixtures of the binding's tests: the library, and a private nats-server.

Run by `meson test -C build --suite python`, which sets NVCF_BUILD_DIR,
NVCF_LIBRARY and PYTHONPATH; by hand:
    NVCF_BUILD_DIR=build PYTHONPATH=bindings/python \\
        /usr/bin/python3 -m pytest -q bindings/python/tests
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

import nvcf

# `make test-sanitize` preloads the AddressSanitizer runtime so that this
# interpreter can load the sanitized library. The compilers, pkg-config
# and daemons that tests start must not inherit it, so it moves to
# TEST_ASAN_PRELOAD, from which test_lib.py's child interpreters take it.
if os.environ.get("LD_PRELOAD"):
    os.environ["TEST_ASAN_PRELOAD"] = os.environ.pop("LD_PRELOAD")

SOURCE = os.environ.get("NVCF_SOURCE_DIR", os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", "..", "..")))
BUILD = os.environ.get("NVCF_BUILD_DIR", os.path.join(SOURCE, "build"))
PYECHO = os.path.join(SOURCE, "examples", "functions", "pyecho",
                      "server.py")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=20.0, interval=0.05, what="condition"):
    """Polls predicate() until it is true; returns its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError("timed out after %.1f s waiting for %s" % (timeout,
                                                                   what))


def _connects(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def lib():
    """The loaded libnvcf."""
    if "NVCF_BUILD_DIR" not in os.environ:
        os.environ["NVCF_BUILD_DIR"] = BUILD
    return nvcf.load_library()


@pytest.fixture(scope="session")
def nats_url():
    """A nats-server with JetStream on a free loopback port."""
    if shutil.which("nats-server") is None:
        pytest.skip("nats-server is not installed")
    store = tempfile.mkdtemp(prefix="nvcf-py-nats-")
    port = free_port()
    log = open(os.path.join(store, "nats.log"), "ab")
    proc = subprocess.Popen(
        ["nats-server", "-js", "-a", "127.0.0.1", "-p", str(port), "-sd",
         os.path.join(store, "js")], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: proc.poll() is not None or _connects(port),
                 timeout=15, what="nats-server on port %d" % port)
        assert proc.poll() is None, "nats-server exited: see %s" % store
        yield "nats://127.0.0.1:%d" % port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(store, ignore_errors=True)


@pytest.fixture
def bus(lib, nats_url):
    """A Bus with the control-plane streams and buckets in place.

    JetStream is ready a moment after the port opens, so the first
    ensure_control() is retried briefly.
    """
    b = nvcf.Bus(url=nats_url, name="py-binding-test")
    deadline = time.monotonic() + 10
    while True:
        try:
            b.ensure_control()
            break
        except nvcf.NvcfError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    yield b
    b.close()


@pytest.fixture
def no_log_handler(lib):
    """Removes any log handler after the test."""
    yield
    nvcf.set_log_handler(None)
