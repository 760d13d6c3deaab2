# SPDX-License-Identifier: Apache-2.0
"""Proves that the ABI check fails when the ABI breaks.

The source tree is copied into a temporary directory and only the shared
library is built there. Its dump is the baseline. Then the copy is
patched, rebuilt and checked against it, once per kind of break:
(a) a public function removed from its header and from libnvcf.sym,
(b) a member inserted in the middle of an options struct.
Each time abicheck.py must exit 1 and name what broke. An addition (a
new exported function) must still pass.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("NVCF_SOURCE_DIR",
                        os.path.dirname(os.path.dirname(HERE)))
ABICHECK = os.path.join(HERE, "abicheck.py")

# Neither is used inside the library, so the patched copy still builds.
REMOVED = "nvcf_worker_stats_get"
REMOVED_FROM = "include/nvcf/worker.h"
INSERTED_IN = "nvcf_api_options"

pytestmark = pytest.mark.skipif(
    shutil.which("abidw") is None or shutil.which("abidiff") is None,
    reason="abigail-tools is not installed")


def copy_tree(dst):
    """Copies tracked and new untracked files, without build directories."""
    try:
        out = subprocess.run(["git", "-C", SOURCE, "ls-files", "-co",
                              "--exclude-standard", "-z"], check=True,
                             capture_output=True).stdout
        files = [f for f in out.decode().split("\0") if f]
    except (OSError, subprocess.CalledProcessError):
        files = None
    if files:
        for f in files:
            src = os.path.join(SOURCE, f)
            if os.path.isfile(src):
                os.makedirs(os.path.dirname(os.path.join(dst, f)),
                            exist_ok=True)
                shutil.copy2(src, os.path.join(dst, f))
        return
    def ignore(folder, names):
        skip = {n for n in names
                if n in (".git", "__pycache__", ".pytest_cache")}
        if os.path.samefile(folder, SOURCE):
            skip |= {n for n in names if n.startswith("build") or
                     n == "state"}
        return skip

    shutil.copytree(SOURCE, dst, dirs_exist_ok=True, ignore=ignore)


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    return r.returncode, r.stdout + r.stderr


class Copy:
    def __init__(self, root):
        self.root = root
        self.src = os.path.join(root, "src")
        self.build = os.path.join(root, "build")
        self.headers = os.path.join(self.src, "include", "nvcf")
        self.saved = {}

    def setup(self):
        copy_tree(self.src)
        rc, out = run(["meson", "setup", "-Dtests=false", self.build,
                       self.src])
        assert rc == 0, "meson setup of the copy failed:\n" + out
        rc, out = run(["ninja", "-C", self.build, "-t", "targets", "all"])
        m = re.search(r"^(libnvcf/libnvcf\.so\.[0-9.]+): c_LINKER$", out,
                      flags=re.M)
        assert m, "no libnvcf.so.* target in the copy:\n" + out
        self.target = m.group(1)
        self.lib = os.path.join(self.build, self.target)

    def make(self):
        rc, out = run(["ninja", "-C", self.build, self.target])
        assert rc == 0, "building the copy's library failed:\n" + out

    def edit(self, rel, fn):
        path = os.path.join(self.src, rel)
        with open(path) as f:
            text = f.read()
        self.saved.setdefault(rel, text)
        new = fn(text)
        assert new != text, "the patch of %s changed nothing" % rel
        with open(path, "w") as f:
            f.write(new)

    def restore(self):
        for rel, text in self.saved.items():
            with open(os.path.join(self.src, rel), "w") as f:
                f.write(text)
        self.saved = {}

    def check(self, baseline):
        return run([sys.executable, ABICHECK, "check", baseline, self.lib,
                    self.headers,
                    os.path.join(self.src, "abi", "libnvcf.abignore")])


@pytest.fixture(scope="module")
def copy():
    root = tempfile.mkdtemp(prefix="nvcf-abi-break-")
    try:
        c = Copy(root)
        c.setup()
        c.make()
        c.baseline = os.path.join(root, "baseline.abi")
        rc, out = run([sys.executable, ABICHECK, "dump", c.lib, c.headers,
                       c.baseline])
        assert rc == 0, out
        yield c
    finally:
        shutil.rmtree(root, ignore_errors=True)


def remove_declaration(name):
    """Drops the doc comment and declaration of function @name."""
    def fn(text):
        pattern = (r"/\*\*(?:(?!\*/).)*\*/\nNVCF_API[^;]*\b%s\s*\([^;]*;\n"
                   % re.escape(name))
        return re.sub(pattern, "", text, count=1, flags=re.S)
    return fn


def insert_member(struct):
    """Inserts a member before the last one of @struct, keeping the type
    of that last member so that the _INIT macro still compiles."""
    def fn(text):
        m = re.search(r"typedef struct %s \{(.*?)\n\} %s;"
                      % (struct, struct), text, flags=re.S)
        assert m, "struct %s not found" % struct
        body = m.group(1)
        members = list(re.finditer(r"^\t([^/*\n][^;\n]*?)\b(\w+);[^\n]*$",
                                   body, flags=re.M))
        assert len(members) >= 3, "struct %s is too small" % struct
        # Right after the line of the member before the last one, so that
        # the last member keeps its doc comment.
        at = members[-2].end()
        body = (body[:at] + "\n\t%sabi_test_inserted;" % members[-1].group(1)
                + body[at:])
        return text[:m.start(1)] + body + text[m.end(1):]
    return fn


def test_unchanged_library_passes(copy):
    rc, out = copy.check(copy.baseline)
    print(out)
    assert rc == 0, out
    assert "ABI unchanged" in out


def test_added_function_passes(copy):
    copy.edit("include/nvcf/request.h", lambda t: t.replace(
        "NVCF_END_DECLS",
        "/** Added by the ABI test. */\n"
        "NVCF_API int nvcf_request_abi_test_added(void);\n\n"
        "NVCF_END_DECLS"))
    copy.edit("libnvcf/request/request.c", lambda t: t +
              "\nint nvcf_request_abi_test_added(void)\n{\n\treturn 1;\n}\n")
    copy.edit("libnvcf/libnvcf.sym", lambda t: t.replace(
        "local:", "\tnvcf_request_abi_test_added;\nlocal:", 1))
    try:
        copy.make()
        rc, out = copy.check(copy.baseline)
    finally:
        copy.restore()
    print(out)
    assert rc == 0, out
    assert "nvcf_request_abi_test_added" in out
    assert "additions only" in out


def test_removed_function_is_incompatible(copy):
    copy.edit(REMOVED_FROM, remove_declaration(REMOVED))
    copy.edit("libnvcf/libnvcf.sym", lambda t: re.sub(
        r"^\s*%s;\n" % REMOVED, "", t, flags=re.M))
    try:
        copy.make()
        rc, out = copy.check(copy.baseline)
    finally:
        copy.restore()
    print(out)
    assert rc == 1, out
    assert "INCOMPATIBLE" in out
    assert REMOVED in out


def test_inserted_member_is_incompatible(copy):
    copy.edit("include/nvcf/api.h", insert_member(INSERTED_IN))
    try:
        copy.make()
        rc, out = copy.check(copy.baseline)
    finally:
        copy.restore()
    print(out)
    assert rc == 1, out
    assert "INCOMPATIBLE" in out
    assert INSERTED_IN in out
    assert "abi_test_inserted" in out
