# SPDX-License-Identifier: Apache-2.0
"""Compiles every public header alone, as a user of the library would.

For each include/nvcf/*.h a source file is generated that includes only
that header and initializes each versioned struct the header declares
with its _INIT macro, then compiled with -Wall -Wextra -Werror -pedantic
against include/ alone (no libnvcf/ internals). A header that needs
another one it does not include, uses a GNU extension, or whose _INIT
macro leaves fields out (-Wmissing-field-initializers) fails here.

Usage: check_headers.py LANG COMPILER... where LANG is c11, c++11 or
c++17; the source directory comes from NVCF_SOURCE_DIR.
"""
import os
import subprocess
import sys
import tempfile

import nvcfheaders

FLAGS = {
    "c11": ["-x", "c", "-std=c11", "-Wstrict-prototypes",
            "-Wmissing-prototypes", "-Wshadow", "-Wundef"],
    "c++11": ["-x", "c++", "-std=c++11", "-Wshadow", "-Wundef"],
    "c++17": ["-x", "c++", "-std=c++17", "-Wshadow", "-Wundef"],
}
COMMON = ["-Wall", "-Wextra", "-Werror", "-pedantic", "-fsyntax-only"]


def generated_source(path):
    name = os.path.basename(path)
    macros = nvcfheaders.macros(path)
    out = ["#include <nvcf/%s>" % name, ""]
    structs = [s for s, _ in nvcfheaders.versioned_structs(path)
               if s.upper() + "_INIT" in macros]
    if structs:
        out.append("void nvcf_header_test(void);")
        out.append("void nvcf_header_test(void)")
        out.append("{")
        for s in structs:
            out.append("\t%s %s_v = %s_INIT;" % (s, s, s.upper()))
            out.append("\t(void)%s_v;" % s)
        out.append("}")
    return "\n".join(out) + "\n", structs


def main(argv):
    if len(argv) < 3 or argv[1] not in FLAGS:
        print("usage: check_headers.py c11|c++11|c++17 COMPILER...")
        return 2
    lang, compiler = argv[1], argv[2:]
    source = os.environ["NVCF_SOURCE_DIR"]
    include = os.path.join(source, "include")
    failed = []
    headers = nvcfheaders.public_headers(source)
    with tempfile.TemporaryDirectory(prefix="nvcf-headers-") as tmp:
        for path in headers:
            text, structs = generated_source(path)
            name = os.path.basename(path)
            src = os.path.join(tmp, name[:-2] + ".c")
            with open(src, "w") as f:
                f.write(text)
            cmd = compiler + FLAGS[lang] + COMMON + ["-I", include, src]
            r = subprocess.run(cmd, capture_output=True, text=True)
            label = "nvcf/%s" % name
            if structs:
                label += " (initializes %s)" % ", ".join(structs)
            if r.returncode != 0:
                failed.append(name)
                print("FAIL %s as %s:\n  %s\n%s" % (label, lang,
                                                   " ".join(cmd),
                                                   r.stderr.rstrip()))
            else:
                print("ok   %s as %s" % (label, lang))
    if failed:
        print("%d of %d headers do not compile alone as %s: %s"
              % (len(failed), len(headers), lang, ", ".join(failed)))
        return 1
    print("all %d headers compile alone as %s" % (len(headers), lang))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
