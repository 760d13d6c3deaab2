# SPDX-License-Identifier: Apache-2.0
"""Checks that the three lists of public symbols agree.

The lists are the NVCF_API declarations in include/nvcf/*.h, the global
names of libnvcf/libnvcf.sym and the dynamic symbols libnvcf.so exports.
It also fails on a function declared in a public header without
NVCF_API, because a Windows build would not export it even when the map
lists it. It fails on a public declaration or export without the nvcf_
prefix, and on an export with no symbol version (the map was not
applied).

Usage: check_symbols.py [SOURCE_DIR [LIBRARY]]; the defaults come from
NVCF_SOURCE_DIR and NVCF_BUILD_DIR.
"""
import os
import re
import subprocess
import sys

import nvcfheaders


def header_symbols(source, problems):
    names = set()
    for path in nvcfheaders.public_headers(source):
        for d in nvcfheaders.function_declarations(path):
            if not d.exported:
                problems.append("%s: %s is declared without NVCF_API; mark "
                                "it NVCF_API or move it out of include/nvcf"
                                % (d.where(), d.name))
                continue
            if not d.name.startswith("nvcf_"):
                problems.append("%s: public function %s lacks the nvcf_ "
                                "prefix; rename it nvcf_<module>_<verb>"
                                % (d.where(), d.name))
            names.add(d.name)
    return names


def map_symbols(path, problems):
    with open(path) as f:
        text = re.sub(r"/\*.*?\*/", "", f.read(), flags=re.S)
    names = set()
    for name in re.findall(r"^\s*([A-Za-z_]\w*)\s*;", text, flags=re.M):
        if not name.startswith("nvcf_"):
            problems.append("%s lists %s, which lacks the nvcf_ prefix"
                            % (os.path.relpath(path), name))
        names.add(name)
    return names


def library_symbols(lib, problems):
    out = subprocess.run(["nm", "-D", "--defined-only", lib], check=True,
                         capture_output=True, text=True).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        # Type A is the version node itself (NVCF_0.1), not a symbol.
        if len(parts) != 3 or parts[1] == "A":
            continue
        name, _, version = parts[2].partition("@")
        if not name.startswith("nvcf_"):
            problems.append("%s exports %s, which lacks the nvcf_ prefix; "
                            "make it static or hidden"
                            % (os.path.basename(lib), name))
        if not version.lstrip("@").startswith("NVCF_"):
            problems.append("%s exports %s without an NVCF_ symbol version; "
                            "is libnvcf.sym passed to the linker?"
                            % (os.path.basename(lib), name))
        names.add(name)
    return names


def main(argv):
    source = argv[1] if len(argv) > 1 else os.environ["NVCF_SOURCE_DIR"]
    lib = argv[2] if len(argv) > 2 else os.path.join(
        os.environ["NVCF_BUILD_DIR"], "libnvcf", "libnvcf.so")
    sym = os.path.join(source, "libnvcf", "libnvcf.sym")
    problems = []
    lists = {
        "headers (NVCF_API)": header_symbols(source, problems),
        "libnvcf/libnvcf.sym": map_symbols(sym, problems),
        "libnvcf.so exports": library_symbols(lib, problems),
    }
    for a in lists:
        for b in lists:
            missing = sorted(lists[a] - lists[b])
            if a != b and missing:
                problems.append("in %s but not in %s: %s"
                                % (a, b, ", ".join(missing)))
    for p in problems:
        print("FAIL: " + p)
    if problems:
        print("%d problem(s) with the public symbols" % len(problems))
        return 1
    print("all %d public symbols agree" % len(lists["libnvcf/libnvcf.sym"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
