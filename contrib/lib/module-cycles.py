#!/usr/bin/env python3
"""Fails when modules of a crate import each other in a circle.

usage: module-cycles.py SRC_DIR...   (e.g. common/src sync/src fs/src)

Every module (a file, or a directory with its mod.rs) is checked against its siblings: an edge
A -> B is a `crate::`, `super::` or `self::` path in A's non-test code (or in a module below A)
that names sibling B or something below it. A module may use its parent's items and its parent
may use its children: that is how a module shares its vocabulary, not a circle. Prints each
circle found (with the parent module it is under) and exits 1 if there is one."""
import os
import re
import sys

PATH = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z_0-9]*)*)(::\{)?")


def module_of(root, path):
    parts = os.path.relpath(path, root)[: -len(".rs")].split(os.sep)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def is_test(root, path):
    parts = os.path.relpath(path, root).split(os.sep)
    return "tests" in parts[:-1] or parts[-1] in ("tests.rs", "reftest.rs")


def braced(text, start):
    """The names at the top level of the `{...}` that opens at text[start - 1]."""
    depth, names, cur = 1, [], ""
    for ch in text[start:]:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                break
        if depth == 1 and ch not in "{}":
            cur += ch
        if depth == 1 and ch == ",":
            names.append(cur.rstrip(","))
            cur = ""
    names.append(cur)
    return [n.strip().split("::")[0].split(" ")[0] for n in names if n.strip()]


def resolve(modules, base, segs):
    """The module a path names: the longest prefix of `segs` below `base` that is a module."""
    cur = base
    for s in segs:
        if cur + (s,) in modules:
            cur = cur + (s,)
        else:
            break
    return cur


def edges(root):
    files = []
    for dirpath, _, names in os.walk(root):
        for f in names:
            if f.endswith(".rs"):
                files.append(os.path.join(dirpath, f))
    modules = {module_of(root, f) for f in files}
    out = []
    for path in files:
        if is_test(root, path):
            continue
        me = module_of(root, path)
        text = re.split(r"#\[cfg\(test\)\]\s*mod tests", open(path).read())[0]
        for m in PATH.finditer(text):
            kind, rest = m.group(1), [s for s in m.group(2).split("::") if s]
            base = () if kind == "crate" else me
            while kind == "super" or (rest and rest[0] == "super"):
                base = base[:-1]
                if kind == "super":
                    kind = ""
                else:
                    rest = rest[1:]
            tails = [rest]
            if m.group(3):
                tails = [rest + [n] for n in braced(text, m.end())]
            for t in tails:
                target = resolve(modules, base, t)
                out.append((me, target))
    return out


def sibling_graphs(pairs):
    graphs = {}
    for src, dst in pairs:
        n = 0
        while n < min(len(src), len(dst)) and src[n] == dst[n]:
            n += 1
        if n == len(src) or n == len(dst):
            continue  # a parent and its descendant
        parent = src[:n]
        graphs.setdefault(parent, {}).setdefault(src[n], set()).add(dst[n])
    return graphs


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
    for parent, graph in sorted(sibling_graphs(edges(root)).items()):
        for c in cycles(graph):
            where = "::".join(parent) or "crate"
            print(
                f"{root}: modules under {where} import each other in a circle: {' -> '.join(c)}",
                file=sys.stderr,
            )
            status = 1
sys.exit(status)
