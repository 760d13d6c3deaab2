# SPDX-License-Identifier: Apache-2.0
"""Compares the ABI of a built libnvcf.so with the recorded baseline.

  abicheck.py dump LIB HEADERS_DIR OUT
      writes the abidw description of LIB, limited to the types that
      HEADERS_DIR declares, to OUT (this is how abi/libnvcf.abi is made);
  abicheck.py check BASELINE LIB HEADERS_DIR [SUPPRESSIONS] [--keep OUT]
      dumps LIB the same way and compares it with BASELINE.

The check passes when nothing changed or when the only changes are new
functions, new enumerators and fields appended to a versioned struct (one
whose first member is `unsigned int version`, found in HEADERS_DIR). It
fails on everything else: abidiff's exit bit 8 (a removed symbol) and
bit 4 (a changed function or type) both count as a break, because
abidiff reports a struct member inserted in the middle with bit 4 only.
The exit status is 0 for a compatible library, 1 for a break and 2 when
abidw or abidiff fails.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

import nvcfheaders

# Flags that keep the baseline small and identical across checkouts. They
# drop source locations, paths, the DT_NEEDED list and undefined symbols.
# --drop-private-types drops internal struct layouts and keeps opaque
# handles as declarations only. Hashed type ids do not depend on the
# order in which abidw reads the types.
ABIDW_FLAGS = ["--drop-private-types", "--no-show-locs", "--no-corpus-path",
               "--no-comp-dir-path", "--no-elf-needed",
               "--drop-undefined-syms", "--type-id-style", "hash"]

ABIDIFF_ERROR, ABIDIFF_USAGE, ABIDIFF_CHANGE, ABIDIFF_INCOMPATIBLE = 1, 2, 4, 8


def dump(lib, headers, out):
    # abidw writes to a temporary file so that a failure leaves an existing
    # baseline as it was.
    tmp = out + ".tmp"
    cmd = ["abidw", "--headers-dir", headers] + ABIDW_FLAGS + [
        "--out-file", tmp, lib]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write("abidw failed (exit %d): %s\n%s" %
                         (r.returncode, " ".join(cmd), r.stderr))
        if os.path.exists(tmp):
            os.unlink(tmp)
        return False
    with open(tmp) as f:
        text = f.read()
    os.unlink(tmp)

    # A build without debug information, or the wrong file, gives a dump
    # that every later comparison would accept or reject wholesale.
    if "<elf-function-symbols>" not in text:
        sys.stderr.write("%s exports no function; is it a libnvcf build?\n"
                         % lib)
        return False
    if "<function-decl" not in text:
        sys.stderr.write("%s has no debug information; build it with -g "
                         "(meson's default debugoptimized does)\n" % lib)
        return False

    # Source paths are relative to the build directory, so they differ
    # between checkouts. abidiff ignores them, but git diff would not.
    text = re.sub(r"(<abi-instr [^>]*path=')[^']*?"
                  r"(libnvcf/(?:\w+/)?[^/']+')",
                  r"\1\2", text)
    with open(out, "w") as f:
        f.write(text)
    return True


def appendable_structs(headers):
    names = []
    source = os.path.dirname(os.path.dirname(os.path.abspath(headers)))
    for path in nvcfheaders.public_headers(source):
        names += [n for n, _ in nvcfheaders.versioned_structs(path)]
    return sorted(set(names))


def write_suppressions(path, headers, extra):
    """The fixed suppressions plus one for the versioned structs."""
    with open(path, "w") as f:
        if extra:
            with open(extra) as e:
                f.write(e.read())
        names = appendable_structs(headers)
        if names:
            f.write("\n# Versioned structs of %s may grow at the end.\n"
                    "[suppress_type]\n"
                    "  type_kind = struct\n"
                    "  name_regexp = ^(%s)$\n"
                    "  has_data_member_inserted_at = end\n"
                    % (headers, "|".join(re.escape(n) for n in names)))
    return names


def abidiff(args):
    r = subprocess.run(["abidiff"] + args, capture_output=True, text=True)
    return r.returncode, (r.stdout + r.stderr).rstrip()


def check(baseline, lib, headers, extra, keep):
    if not os.path.isfile(baseline):
        print("no baseline at %s; record one with "
              "tests/abi/update_baseline.sh" % baseline)
        return 1
    with tempfile.TemporaryDirectory(prefix="nvcf-abi-") as tmp:
        new = os.path.join(tmp, "libnvcf.abi")
        if not dump(lib, headers, new):
            return 2
        if keep:
            shutil.copyfile(new, keep)
        suppr = os.path.join(tmp, "libnvcf.abignore")
        names = write_suppressions(suppr, headers, extra)
        print("baseline: %s\nlibrary:  %s\nstructs that may grow at the end: "
              "%s" % (baseline, lib, ", ".join(names) or "none"))

        rc, report = abidiff(["--suppressions", suppr, baseline, new])
        print("abidiff exit %d\n%s" % (rc, report))
        if rc & (ABIDIFF_ERROR | ABIDIFF_USAGE):
            print("ERROR: abidiff could not compare the two (exit %d)" % rc)
            return 2
        if rc & ABIDIFF_INCOMPATIBLE:
            print("INCOMPATIBLE: a public symbol was removed or changed "
                  "incompatibly (abidiff bit 8); restore it, or bump the "
                  "soname and regenerate the baseline as docs/ABI.md says")
            return 1
        if rc == 0:
            print("ABI unchanged")
            return 0

        # Bit 4 alone: additions, or a change of an existing function or
        # type. Without the additions, anything left is a break.
        rc2, strict = abidiff(["--no-added-syms", "--suppressions", suppr,
                               baseline, new])
        if rc2 & (ABIDIFF_ERROR | ABIDIFF_USAGE):
            print("ERROR: abidiff --no-added-syms failed (exit %d)\n%s"
                  % (rc2, strict))
            return 2
        if rc2 != 0:
            print("INCOMPATIBLE: existing functions or types changed "
                  "(abidiff bit 4 remains without the additions; see the "
                  "report above); only new functions, new enumerators and "
                  "fields appended to a versioned struct are compatible")
            return 1
        print("compatible: additions only; run tests/abi/update_baseline.sh "
              "when they are released")
        return 0


def main(argv):
    if len(argv) == 5 and argv[1] == "dump":
        return 0 if dump(argv[2], argv[3], argv[4]) else 2
    if len(argv) >= 5 and argv[1] == "check":
        args = argv[2:]
        keep = None
        if "--keep" in args:
            i = args.index("--keep")
            keep = args[i + 1]
            del args[i:i + 2]
        if len(args) in (3, 4):
            extra = args[3] if len(args) == 4 else None
            for tool in ("abidw", "abidiff"):
                if shutil.which(tool) is None:
                    print("%s is not installed (Debian package "
                          "abigail-tools); skipping" % tool)
                    return 77
            return check(args[0], args[1], args[2], extra, keep)
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
