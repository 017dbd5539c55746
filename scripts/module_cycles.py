#!/usr/bin/env python3
"""Prints each crate's module import graph and fails on a cycle between sibling modules.

A module's references (`use` trees and inline paths through `crate::`, `super::` and
`self::`) are lifted to siblings: an edge from a::b::c to a::d::e counts as a::b -> a::d,
the children of their lowest common ancestor. A child using its parent, or a parent its
child, is not an edge: that is how Rust modules nest. A cycle among siblings means neither
can be understood, tested or moved without the other.

Known cycles are listed in scripts/module_cycles.allow (one per line, the modules in the
order printed); the script fails on a cycle not listed, and on a listed one that is gone,
so the list can only shrink.

    python3 scripts/module_cycles.py [--graph | --self-test]
"""

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRATES = {"broker": "broker/src", "client": "client/src", "protocol": "protocol/src"}
ALLOW = os.path.join(ROOT, "scripts", "module_cycles.allow")


def modules_of(src):
    """Module path (tuple) -> file, for every .rs file under src (binaries left out)."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(src):
        rel = os.path.relpath(dirpath, src)
        if rel.split(os.sep)[0] == "bin":
            dirnames[:] = []
            continue
        parts = () if rel == "." else tuple(rel.split(os.sep))
        for name in filenames:
            if not name.endswith(".rs"):
                continue
            stem = name[:-3]
            if parts == () and stem in ("lib", "main"):
                path = ()
            elif stem == "mod":
                path = parts
            else:
                path = parts + (stem,)
            if any(p == "tests" or p.endswith("_tests") for p in path):
                continue  # test modules may reach anywhere
            found[path] = os.path.join(dirpath, name)
    return found


COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
STRING = re.compile(r'"(?:\\.|[^"\\])*"')
USE = re.compile(r"\buse\s+([^;]+);")
PATH = re.compile(r"\b(crate|super|self)((?:::\w+)+)")
TEST_DECL = re.compile(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+\w+\s*;")
TEST_MOD = re.compile(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{")


def use_paths(tree):
    """The paths named by a use tree, e.g. `a::{b, c::{d, e}}` -> a::b, a::c::d, a::c::e."""
    tree = re.sub(r"\s+", "", re.sub(r"\s+as\s+", "@", tree))
    out = []

    def walk(prefix, t):
        depth, start, items = 0, 0, []
        for i, ch in enumerate(t):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                items.append(t[start:i])
                start = i + 1
        items.append(t[start:])
        for item in filter(None, items):
            brace = item.find("{")
            if brace >= 0:
                walk(prefix + item[:brace].rstrip(":").split("::"), item[brace + 1 : -1])
            else:
                out.append(prefix + item.split("@")[0].split("::"))

    walk([], tree)
    return [[p for p in path if p] for path in out]


def resolve(current, path, modules):
    """The module a path names, from module `current`, or None when outside the crate."""
    head, rest = path[0], path[1:]
    if head == "crate":
        base = ()
    elif head in ("super", "self"):
        base = current
        # A file module's `self` is itself; `super` climbs one level per segment.
        while head == "super":
            base = base[:-1]
            if not rest or rest[0] != "super":
                break
            rest = rest[1:]
    else:
        # A bare path in a `use` resolves from the current module (2018 edition: a child
        # module, else an external crate).
        if (current + (head,)) in modules:
            base, rest = current + (head,), rest
        else:
            return None
    target = base
    for seg in rest:
        if target + (seg,) in modules:
            target = target + (seg,)
        else:
            break
    return target


def edges_of(modules):
    edges = {}
    for module, file in modules.items():
        with open(file, encoding="utf-8") as f:
            text = f.read()
        body = STRING.sub('""', COMMENT.sub("", text))
        # Tests may reach anywhere: an inline test module (last in its file) is left out.
        body = TEST_DECL.sub("", body)
        inline = TEST_MOD.search(body)
        body = body if inline is None else body[: inline.start()]
        refs = []
        for m in USE.finditer(body):
            line = body.count("\n", 0, m.start()) + 1
            refs += [(p, line) for p in use_paths(m.group(1)) if p]
        for m in PATH.finditer(body):
            line = body.count("\n", 0, m.start()) + 1
            refs.append(([m.group(1)] + m.group(2).split("::")[1:], line))
        for path, line in refs:
            target = resolve(module, path, modules)
            if target is None or target == module:
                continue
            common = 0
            while common < min(len(module), len(target)) and module[common] == target[common]:
                common += 1
            if common == len(module) or common == len(target):
                continue  # parent and child
            a, b = module[: common + 1], target[: common + 1]
            where = f"{os.path.relpath(file, ROOT)}:{line}"
            edges.setdefault((a, b), where)
    return edges


def cycles(edges):
    """Strongly connected components with more than one module (Tarjan)."""
    graph = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def name(crate, module):
    return "::".join((crate,) + module)


def self_test():
    """The detector on a made-up crate: a sibling cycle found, parent/child and tests not."""
    import tempfile

    files = {
        "lib.rs": "pub mod a; pub mod b; pub mod c;",
        "a.rs": "use crate::b::Thing; pub struct A;",
        "b.rs": "pub struct Thing; fn f() { let _ = super::a::A; }",
        "c.rs": "pub mod d; use d::D; pub struct C;",
        "c/d.rs": "use super::C; pub struct D; // use crate::a::A;",
        "tests.rs": "use crate::a::A; use crate::c::C;",
    }
    with tempfile.TemporaryDirectory() as src:
        for rel, text in files.items():
            os.makedirs(os.path.dirname(os.path.join(src, rel)), exist_ok=True)
            with open(os.path.join(src, rel), "w", encoding="utf-8") as f:
                f.write(text)
        found = cycles(edges_of(modules_of(src)))
    assert found == [[("a",), ("b",)]], found
    nested = use_paths("a::{b, c::{d, e as f}, assignor::{self, Base}}")
    assert nested == [
        ["a", "b"], ["a", "c", "d"], ["a", "c", "e"], ["a", "assignor", "self"],
        ["a", "assignor", "Base"],
    ], nested
    print("module_cycles self-test: ok")


def main():
    if "--self-test" in sys.argv:
        self_test()
        return 0
    show_graph = "--graph" in sys.argv
    found = []
    for crate, src in CRATES.items():
        modules = modules_of(os.path.join(ROOT, src))
        edges = edges_of(modules)
        if show_graph:
            for (a, b), where in sorted(edges.items()):
                print(f"{name(crate, a)} -> {name(crate, b)}  ({where})")
        for comp in cycles(edges):
            members = set(comp)
            label = " <-> ".join(name(crate, m) for m in comp)
            witnesses = [
                f"    {name(crate, a)} -> {name(crate, b)} at {w}"
                for (a, b), w in sorted(edges.items())
                if a in members and b in members
            ]
            found.append((label, witnesses))
    allowed = set()
    if os.path.exists(ALLOW):
        with open(ALLOW, encoding="utf-8") as f:
            allowed = {l.strip() for l in f if l.strip() and not l.startswith("#")}
    status = 0
    for label, witnesses in found:
        known = label in allowed
        print(("known cycle: " if known else "CYCLE: ") + label)
        print("\n".join(witnesses))
        if not known:
            status = 1
    gone = allowed - {label for label, _ in found}
    for label in sorted(gone):
        print(f"listed in {os.path.relpath(ALLOW, ROOT)} but gone (remove the line): {label}")
        status = 1
    if status == 0:
        print(f"module graph: {len(found)} known cycles, no new ones")
    return status


if __name__ == "__main__":
    sys.exit(main())
