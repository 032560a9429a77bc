#!/usr/bin/env python3
"""Fails when the top-level modules of a crate import each other in a circle.

usage: module-cycles.py SRC_DIR...   (e.g. common/src sync/src fs/src)

A module is a file or directory directly below SRC_DIR; an edge A -> B is a `crate::B` path
anywhere in A's non-test code. Prints each cycle found and exits 1 if there is one."""
import os
import re
import sys


def edges(root):
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(dirpath, f)
            parts = os.path.relpath(path, root).split(os.sep)
            top = parts[0].removesuffix(".rs")
            if top in ("lib", "main") or "tests" in parts or f in ("tests.rs", "reftest.rs"):
                continue
            text = re.split(r"#\[cfg\(test\)\]\s*mod tests", open(path).read())[0]
            for m in re.findall(r"crate::([a-z_]+)", text):
                if m != top:
                    out.setdefault(top, set()).add(m)
    return out


def cycles(graph):
    found, state = [], {}

    def visit(u, stack):
        state[u] = 1
        stack.append(u)
        for v in sorted(graph.get(u, ())):
            if state.get(v) == 1:
                found.append(stack[stack.index(v):] + [v])
            elif v not in state:
                visit(v, stack)
        stack.pop()
        state[u] = 2

    for u in sorted(graph):
        if u not in state:
            visit(u, [])
    return found


status = 0
for root in sys.argv[1:]:
    for c in cycles(edges(root)):
        print(f"{root}: modules import each other in a circle: {' -> '.join(c)}", file=sys.stderr)
        status = 1
sys.exit(status)
