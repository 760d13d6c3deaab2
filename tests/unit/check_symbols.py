# SPDX-License-Identifier: Apache-2.0
"""Checks that three lists of public symbols agree.

The lists are the NVCF_API declarations in include/nvcf/*.h, the global
names in libnvcf/libnvcf.sym, and the dynamic symbols that libnvcf.so
exports. A symbol in one list but not another is reported by name.
"""
import glob
import os
import re
import subprocess
import sys


def header_symbols(source):
    names = set()
    decl = re.compile(r"NVCF_API\s+[^;(]*?\**\s*\b(nvcf_\w+)\s*\(", re.S)
    for path in glob.glob(os.path.join(source, "include", "nvcf", "*.h")):
        with open(path) as f:
            text = f.read()
        names.update(decl.findall(text))
    return names


def map_symbols(source):
    with open(os.path.join(source, "libnvcf", "libnvcf.sym")) as f:
        text = re.sub(r"/\*.*?\*/", "", f.read(), flags=re.S)
    return set(re.findall(r"^\s*(nvcf_\w+)\s*;", text, flags=re.M))


def library_symbols(build):
    lib = os.path.join(build, "libnvcf", "libnvcf.so")
    out = subprocess.run(["nm", "-D", "--defined-only", lib], check=True,
                         capture_output=True, text=True).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "TDBRV":
            names.add(parts[2].split("@")[0])
    return names


def main():
    source = os.environ["NVCF_SOURCE_DIR"]
    build = os.environ["NVCF_BUILD_DIR"]
    lists = {
        "headers (NVCF_API)": header_symbols(source),
        "libnvcf/libnvcf.sym": map_symbols(source),
        "libnvcf.so exports": library_symbols(build),
    }
    failed = False
    names = list(lists)
    for a in names:
        for b in names:
            if a == b:
                continue
            missing = sorted(lists[a] - lists[b])
            if missing:
                failed = True
                print("in %s but not in %s: %s" % (a, b, ", ".join(missing)))
    total = len(lists["libnvcf/libnvcf.sym"])
    print("%d passed, %d failed" % (0 if failed else 1, 1 if failed else 0))
    if not failed:
        print("all %d public symbols agree" % total)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
