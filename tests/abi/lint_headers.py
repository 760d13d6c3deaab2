# SPDX-License-Identifier: Apache-2.0
"""Lints the public headers against the ABI rules of docs/ABI.md.

- each header opens with an SPDX line and has an NVCF_<NAME>_H guard;
- each NVCF_API declaration has a doc comment right above it;
- each versioned struct (a typedef struct whose first member is
  `unsigned int version`) has a doc comment, an integer
  <NAME>_VERSION macro of at least 1 and, when callers pass it to the
  library, a <NAME>_INIT macro whose first element is <NAME>_VERSION;
- nvcf/version.h has the version macros and nvcf_version(), and its
  version string is the project version in meson.build.

Usage: lint_headers.py [SOURCE_DIR]; the default is NVCF_SOURCE_DIR.
"""
import os
import re
import sys

import nvcfheaders


def doc_comment_above(lines, line):
    """True when the lines above @line end a /** comment."""
    i = line - 2
    if i < 0 or not lines[i].rstrip().endswith("*/"):
        return False
    while i >= 0:
        if "/**" in lines[i]:
            return True
        if "/*" in lines[i]:
            return False
        i -= 1
    return False


def lint_header(path, all_macros, caller_types, problems):
    text = nvcfheaders.raw_text(path)
    lines = text.split("\n")
    short = nvcfheaders.short_path(path)
    guard = "NVCF_%s_H" % re.sub(r"\W", "_",
                                 os.path.basename(path)[:-2]).upper()
    if not lines[0].startswith("/* SPDX-License-Identifier:"):
        problems.append("%s:1: the first line is not the SPDX licence "
                        "comment" % short)
    if not re.search(r"^#ifndef %s\n#define %s$" % (guard, guard), text,
                     flags=re.M):
        problems.append("%s: no include guard %s; open the header with "
                        "#ifndef %s / #define %s" % (short, guard, guard,
                                                     guard))

    for d in nvcfheaders.function_declarations(path):
        if d.exported and not doc_comment_above(lines, d.line):
            problems.append("%s: %s has no doc comment; put a /** ... */ "
                            "block right above it" % (d.where(), d.name))

    for name, line in nvcfheaders.versioned_structs(path):
        upper = name.upper()
        where = "%s:%d" % (short, line)
        if not doc_comment_above(lines, line):
            problems.append("%s: struct %s has no doc comment" %
                            (where, name))
        version = all_macros.get(upper + "_VERSION")
        if version is None or not re.fullmatch(r"\(?\s*[1-9]\d*\s*\)?",
                                               version):
            problems.append("%s: %s needs `#define %s_VERSION N` with an "
                            "integer N >= 1" % (where, name, upper))
        if name not in caller_types:
            continue
        init = all_macros.get(upper + "_INIT")
        if init is None:
            problems.append("%s: callers pass %s to the library but no "
                            "%s_INIT macro exists; add one that sets the "
                            "version" % (where, name, upper))
        elif not re.match(r"\{\s*%s_VERSION\b" % upper, init):
            problems.append("%s: %s_INIT must start with {%s_VERSION, "
                            "not %s" % (where, upper, upper, init))


def lint_version(source, all_macros, problems):
    for m in ("NVCF_VERSION_MAJOR", "NVCF_VERSION_MINOR",
              "NVCF_VERSION_PATCH", "NVCF_VERSION_STRING",
              "NVCF_VERSION_NUMBER", "NVCF_VERSION_CHECK"):
        if m not in all_macros:
            problems.append("include/nvcf/version.h: %s is missing" % m)
    path = os.path.join(source, "include", "nvcf", "version.h")
    names = {d.name for d in nvcfheaders.function_declarations(path)}
    if "nvcf_version" not in names:
        problems.append("include/nvcf/version.h: nvcf_version() is not "
                        "declared")
    with open(os.path.join(source, "meson.build")) as f:
        project = re.search(r"\bversion:\s*'([^']+)'", f.read())
    header = all_macros.get("NVCF_VERSION_STRING", "").strip('"')
    parts = "%s.%s.%s" % (all_macros.get("NVCF_VERSION_MAJOR"),
                          all_macros.get("NVCF_VERSION_MINOR"),
                          all_macros.get("NVCF_VERSION_PATCH"))
    if project is None or header != project.group(1) or parts != header:
        problems.append("include/nvcf/version.h says %s (%s) but meson.build "
                        "says %s; change both together"
                        % (header, parts,
                           project.group(1) if project else "nothing"))


def main(argv):
    source = argv[1] if len(argv) > 1 else os.environ["NVCF_SOURCE_DIR"]
    headers = nvcfheaders.public_headers(source)
    problems = []
    all_macros = {}
    caller_types = set()
    library_types = set()
    for path in headers:
        all_macros.update(nvcfheaders.macros(path))
        for d in nvcfheaders.function_declarations(path):
            # A struct that appears in a parameter list is built by the
            # caller, so it needs an initializer. One the library hands
            # out, as a return value (nvcf_error) or through an X **
            # output it allocates (the CRD objects), does not.
            params = d.text[d.text.find("("):]
            caller_types.update(re.findall(r"\b(nvcf_\w+)\s*\*", params))
            library_types.update(re.findall(r"\b(nvcf_\w+)\s*\*\s*\*",
                                            params))
    caller_types -= library_types
    for path in headers:
        lint_header(path, all_macros, caller_types, problems)
    lint_version(source, all_macros, problems)
    for p in problems:
        print("FAIL: " + p)
    if problems:
        print("%d problem(s) in %d public headers" % (len(problems),
                                                       len(headers)))
        return 1
    print("%d public headers follow the ABI rules" % len(headers))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
