#!/usr/bin/env python3
"""Prints every module of the workspace's crates with its job in one line, taken from the
first sentence of its `//!` doc, and keeps the README's copy of that map true.

The module docs are the one place a module's job is written; the README's "Workspace"
section holds the map between `<!-- module-map:start -->` and `<!-- module-map:end -->`.
Generated modules (whose doc says "generated, do not edit") are folded into one line per
directory. Test modules (`tests.rs`, `*_tests.rs`, anything under a `tests` directory)
are left out.

    python3 scripts/module_map.py            print the map
    python3 scripts/module_map.py --check    fail if the README's map differs
    python3 scripts/module_map.py --write    rewrite the README's map
"""

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRATES = [("sluice-protocol", "protocol/src"), ("sluice-broker", "broker/src"),
          ("sluice-client", "client/src")]
README = os.path.join(ROOT, "README.md")
START, END = "<!-- module-map:start -->", "<!-- module-map:end -->"
GENERATED = "generated, do not edit"
# Characters past which a first sentence is cut at its first semicolon.
LONG = 250


def is_test(rel):
    parts = rel[:-3].split(os.sep)
    return any(p == "tests" or p.endswith("_tests") for p in parts)


def doc_paragraph(path):
    """The first paragraph of the file's `//!` doc, joined into one line."""
    lines = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.startswith("//!"):
                break
            text = line[3:].strip()
            if not text:
                if lines:
                    break
                continue
            lines.append(text)
    return " ".join(lines)


def first_sentence(paragraph):
    """Up to the first full stop that ends a sentence (not inside `code`), before any list;
    a long one up to its first semicolon."""
    paragraph = paragraph.split(" - ")[0].rstrip(":")
    sentence, in_code = paragraph, False
    for i, c in enumerate(paragraph):
        if c == "`":
            in_code = not in_code
        elif (
            c == "."
            and not in_code
            and (i + 1 == len(paragraph) or paragraph[i + 1] == " ")
            and not paragraph[: i + 1].endswith(("e.g.", "i.e."))
        ):
            sentence = paragraph[: i + 1]
            break
    if len(sentence) > LONG and "; " in sentence:
        sentence = sentence.split("; ")[0] + "."
    return sentence


def plain(text):
    """Markdown links of rustdoc (`[`X`]`, `[x](y)`, `[x][y]`) as their text."""
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"\[([^\]]+)\]\[[^\]]*\]", r"\1", text)
    return re.sub(r"\[(`[^`]+`)\]", r"\1", text)


def module_name(rel):
    """`a/b.rs` -> `a::b`, `lib.rs` / `main.rs` / `mod.rs` -> their directory."""
    parts = rel[:-3].split(os.sep)
    if parts[0] == "bin":
        # A binary's modules: `bin/sluice/main.rs` is the binary `sluice`.
        return "::".join(["(binary " + parts[1] + ")"] + [p for p in parts[2:] if p != "main"])
    if parts == ["main"]:
        return "(binary)"
    if parts[-1] in ("lib", "mod"):
        parts = parts[:-1]
    return "::".join(parts)


def crate_map(src):
    """(module, job) for each module under `src`, in path order; generated ones folded."""
    rows, folded = [], {}
    base = os.path.join(ROOT, src)
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames.sort()
        for name in sorted(filenames):
            if not name.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, name), base)
            if is_test(rel):
                continue
            paragraph = doc_paragraph(os.path.join(dirpath, name))
            if GENERATED in paragraph:
                folded.setdefault(os.path.dirname(rel), []).append(rel)
                continue
            rows.append((module_name(rel), plain(first_sentence(paragraph)) or "(no module doc)"))
    for directory, files in folded.items():
        module = directory.replace(os.sep, "::")
        rows.append((module + "::*", f"{len(files)} generated modules (see their directory)"))
    return sorted(rows, key=lambda r: r[0].split("::"))


def render():
    out = []
    for crate, src in CRATES:
        out.append(f"`{crate}` ({src}):")
        out.append("")
        for module, job in crate_map(src):
            out.append(f"- `{module or '(crate root)'}`: {job}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def readme_parts():
    with open(README, encoding="utf-8") as f:
        text = f.read()
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        sys.exit(f"README.md has no {START} ... {END} section")
    return text[: start + len(START)], text[start + len(START):end], text[end:]


def main(argv):
    if argv == ["--check"]:
        _, current, _ = readme_parts()
        if current.strip("\n") != render().strip("\n"):
            sys.exit("README.md's module map is stale: run python3 scripts/module_map.py --write")
        print("module map: README up to date")
    elif argv == ["--write"]:
        head, _, tail = readme_parts()
        with open(README, "w", encoding="utf-8") as f:
            f.write(head + "\n" + render() + tail)
    elif not argv:
        sys.stdout.write(render())
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
