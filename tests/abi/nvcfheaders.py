# SPDX-License-Identifier: Apache-2.0
"""Reads the public headers include/nvcf/*.h the way the ABI checks need.

No C parser is used: the headers follow one house style (see
docs/ABI.md), so comments, preprocessor lines and brace bodies can be
removed and what remains split at semicolons into top-level declarations.
A header that leaves the style badly enough to confuse this module also
fails the checks, which is the intended outcome.
"""
import glob
import os
import re


def public_headers(source):
    """Every public header, so that new ones are covered without edits."""
    return sorted(glob.glob(os.path.join(source, "include", "nvcf", "*.h")))


def short_path(path):
    """include/nvcf/x.h, whatever the checkout's location."""
    return "/".join(os.path.abspath(path).split(os.sep)[-3:])


def _strip_comments(text):
    # Comments become spaces of equal length so that offsets stay valid.
    return re.sub(r"/\*.*?\*/|//[^\n]*",
                  lambda m: re.sub(r"[^\n]", " ", m.group(0)), text,
                  flags=re.S)


def _strip_preprocessor(text):
    out = []
    continued = False
    for line in text.split("\n"):
        if continued or line.lstrip().startswith("#"):
            continued = line.rstrip().endswith("\\")
            out.append(" " * len(line))
        else:
            out.append(line)
    return "\n".join(out)


def _strip_braces(text):
    # Struct and enum bodies contain no function declarations. Blanking
    # them keeps their semicolons from splitting the enclosing typedef.
    while True:
        new = re.sub(r"\{[^{}]*\}",
                     lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
        if new == text:
            return text
        text = new


# Upper-case NVCF_ macros (NVCF_API, NVCF_PRINTF(1, 2), a future
# NVCF_DEPRECATED(...)) and GCC attributes, removed before the declared
# name is looked for.
_MARKERS = re.compile(
    r"\bNVCF_[A-Z0-9_]+\b(\s*\((?:[^()]|\([^()]*\))*\))?"
    r"|\b__attribute__\s*\(\((?:[^()]|\([^()]*\))*\)\)")


class Declaration:
    """One top-level declaration of a header."""

    def __init__(self, path, line, text, name, exported):
        self.path = path
        self.line = line
        self.text = text
        self.name = name
        self.exported = exported

    def where(self):
        return "%s:%d" % (short_path(self.path), self.line)


def function_declarations(path):
    """Top-level function declarations of @path, marked or not."""
    with open(path) as f:
        raw = f.read()
    text = _strip_braces(_strip_preprocessor(_strip_comments(raw)))
    text = re.sub(r"\bNVCF_(BEGIN|END)_DECLS\b",
                  lambda m: " " * len(m.group(0)), text)
    decls = []
    start = 0
    for m in re.finditer(r";", text):
        stmt = text[start:m.start()]
        offset = start
        start = m.end()
        body = stmt.strip()
        if not body or re.match(r"typedef\b", body):
            continue
        plain = _MARKERS.sub(" ", body)
        # The declared name is the first identifier followed by '(' that
        # is not a '(*name)' pointer declarator.
        name = re.search(r"\b([A-Za-z_]\w*)\s*\(", plain)
        if name is None:
            continue
        lead = offset + len(stmt) - len(stmt.lstrip())
        line = raw.count("\n", 0, lead) + 1
        decls.append(Declaration(path, line, body, name.group(1),
                                 re.search(r"\bNVCF_API\b", body)
                                 is not None))
    return decls


def raw_text(path):
    with open(path) as f:
        return f.read()


def versioned_structs(path):
    """(name, line) of each typedef struct whose first member is a version."""
    text = _strip_comments(raw_text(path))
    found = []
    for m in re.finditer(r"typedef\s+struct\s+\w*\s*\{\s*unsigned\s+int\s+"
                         r"version\s*;[^{}]*\}\s*(\w+)\s*;", text):
        found.append((m.group(1), text.count("\n", 0, m.start()) + 1))
    return found


def macros(path):
    """Map of macro name to its body, continuation lines joined."""
    text = _strip_comments(raw_text(path)).replace("\\\n", " ")
    out = {}
    for m in re.finditer(r"^\s*#\s*define\s+(\w+)(\([^)]*\))?[ \t]*(.*)$",
                         text, flags=re.M):
        out[m.group(1)] = m.group(3).strip()
    return out
