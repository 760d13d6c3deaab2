# SPDX-License-Identifier: Apache-2.0
"""Finding and loading libnvcf. Each case runs in a fresh interpreter,
because a process loads the library only once."""
import ctypes.util
import os
import subprocess
import sys

import pytest

import nvcf
from nvcf import _lib

from conftest import BUILD

BINDING = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD_LIB = os.path.join(BUILD, "libnvcf")


def run_python(code, env_overrides, tmp_path):
    """Runs @code with a clean NVCF environment and no libnvcf.pc."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("NVCF_") and not k.startswith("PKG_CONFIG")}
    empty = tmp_path / "no-pc"
    empty.mkdir(exist_ok=True)
    env["PKG_CONFIG_PATH"] = str(empty)
    env["PKG_CONFIG_LIBDIR"] = str(empty)
    env["PYTHONPATH"] = BINDING
    if os.environ.get("TEST_ASAN_PRELOAD"):
        env["LD_PRELOAD"] = os.environ["TEST_ASAN_PRELOAD"]
    env.update(env_overrides)
    return subprocess.run([sys.executable, "-c", code], env=env,
                          capture_output=True, text=True, timeout=60)


SHOW = "import nvcf; l = nvcf.load_library(); print(l.path); " \
       "print(nvcf.version_string())"


def test_nvcf_library_path_wins(tmp_path):
    path = os.path.join(BUILD_LIB, "libnvcf.so")
    out = run_python(SHOW, {"NVCF_LIBRARY": path,
                            "NVCF_BUILD_DIR": "/nonexistent"}, tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [path, "0.1.0"]


def test_nvcf_library_missing_names_the_value(tmp_path):
    out = run_python(SHOW, {"NVCF_LIBRARY": "/nonexistent/libnvcf.so"},
                     tmp_path)
    assert out.returncode != 0
    assert "LibraryNotFoundError: NVCF_LIBRARY is set to " \
           "'/nonexistent/libnvcf.so', which does not exist" in out.stderr


def test_build_dir(tmp_path):
    out = run_python(SHOW, {"NVCF_BUILD_DIR": BUILD}, tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        os.path.join(BUILD_LIB, "libnvcf.so.0"), "0.1.0"]


def test_pkg_config_comes_before_build_dir(tmp_path):
    pcdir = tmp_path / "pc"
    pcdir.mkdir()
    (pcdir / "libnvcf.pc").write_text(
        "libdir=%s\n\nName: libnvcf\nDescription: test\nVersion: 0.1.0\n"
        "Libs: -L${libdir} -lnvcf\n" % BUILD_LIB)
    out = run_python(SHOW, {"PKG_CONFIG_PATH": str(pcdir),
                            "NVCF_BUILD_DIR": "/nonexistent"}, tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == os.path.join(BUILD_LIB,
                                                      "libnvcf.so.0")


@pytest.mark.skipif(ctypes.util.find_library("nvcf") is not None,
                    reason="a libnvcf is installed system-wide")
def test_nothing_found_lists_every_try(tmp_path):
    out = run_python(SHOW, {}, tmp_path)
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("nvcf._lib.LibraryNotFoundError: cannot find "
                           "libnvcf; tried: NVCF_LIBRARY (not set); "
                           "pkg-config --variable=libdir libnvcf (no "
                           "libnvcf.pc); NVCF_BUILD_DIR (not set); "
                           "ctypes.util.find_library(\"nvcf\") (nothing)."), \
        last


def test_import_does_not_need_the_library(tmp_path):
    out = run_python("import nvcf; print(nvcf.LocalStack.__name__)",
                     {"NVCF_LIBRARY": "/nonexistent/libnvcf.so"}, tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "LocalStack\n"


def _fake_library(tmp_path, version_number, leave_out=()):
    """A shared library exporting every bound symbol as a stub, except
    those in @leave_out, whose nvcf_version() returns @version_number."""
    src = tmp_path / "fake.c"
    lines = ["int nvcf_version(void) { return %d; }" % version_number]
    for name, _, _ in _lib.PROTOTYPES:
        if name != "nvcf_version" and name not in leave_out:
            lines.append("int %s(void) { return 0; }" % name)
    src.write_text("\n".join(lines) + "\n")
    so = tmp_path / "libnvcf-fake.so"
    cc = subprocess.run(["cc", "-shared", "-fPIC", "-o", str(so), str(src)],
                        capture_output=True, text=True)
    if cc.returncode != 0:
        pytest.skip("no C compiler: %s" % cc.stderr)
    return str(so)


def test_library_missing_symbols_is_rejected(tmp_path):
    so = _fake_library(tmp_path, 100, leave_out=("nvcf_bus_kv_keys",
                                                 "nvcf_free"))
    out = run_python(SHOW, {"NVCF_LIBRARY": so}, tmp_path)
    assert out.returncode != 0
    assert ("LibraryVersionError: %s lacks nvcf_free, nvcf_bus_kv_keys: "
            "it is not a libnvcf this binding supports" % so) in out.stderr


@pytest.mark.parametrize("number,shown", [(10000, "1.0.0"),
                                          (99, "0.0.99")])
def test_version_outside_range_is_rejected(tmp_path, number, shown):
    so = _fake_library(tmp_path, number)
    out = run_python(SHOW, {"NVCF_LIBRARY": so}, tmp_path)
    assert out.returncode != 0
    assert ("LibraryVersionError: %s is libnvcf %s; this binding needs "
            "0.1.0 or a later 0.x release" % (so, shown)) in out.stderr


def test_loaded_library_matches_headers(lib):
    assert lib.version == (0, 1, 0)
    assert nvcf.version() == (0, 1, 0)
    assert nvcf.version_string() == "0.1.0"
    assert lib.nvcf_version() == 100


def test_every_prototype_is_declared(lib):
    for name, restype, argtypes in _lib.PROTOTYPES:
        fn = getattr(lib, name)
        assert fn.restype == restype, name
        assert list(fn.argtypes) == list(argtypes), name


def test_unknown_optional_module(lib):
    assert lib.has("no-such-module") is False
    with pytest.raises(NotImplementedError,
                       match="does not export the no-such-module module"):
        lib.require("no-such-module")
