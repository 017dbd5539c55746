#!/usr/bin/env python3
"""Generate shape/requests{,/*}.rs and shape/responses{,/*}.rs from kafka-protocol's decoders.

Sluice decodes requests with the `kafka-protocol` crate (pinned at =0.15.1). Its array
decoders call `Vec::with_capacity(count)` with the count read off the wire, so a frame of
a few bytes can ask for hundreds of GiB and abort the process. `shape.rs` walks a body
first and rejects any array count larger than the bytes left. To walk exactly the fields
kafka-protocol will read, this script translates kafka-protocol's own `impl Decodable`
blocks, line by line, into walker functions: every `types::X.decode(buf)?` becomes the
matching `Visitor` call, defaults are dropped, everything else (version conditions, tagged
field loops) is kept as it is.

Run it again only when the kafka-protocol pin changes:

    KP=$(echo ~/.cargo/registry/src/*/kafka-protocol-0.15.1)
    for kind in request response; do
        python3 protocol/tools/generate_shape.py $KP $kind protocol/src/messages/shape
    done
    cargo fmt --all

The differential tests in protocol/tests/roundtrip.rs check that every walker consumes
exactly the bytes kafka-protocol's decoder consumes, for every supported version.
"""

import re
import sys
from pathlib import Path

# The APIs Sluice serves (file stem in kafka-protocol's src/messages/, minus the
# `_request` / `_response` suffix).
APIS = [
    "produce",
    "fetch",
    "list_offsets",
    "metadata",
    "offset_commit",
    "offset_fetch",
    "find_coordinator",
    "join_group",
    "heartbeat",
    "leave_group",
    "sync_group",
    "describe_groups",
    "list_groups",
    "sasl_handshake",
    "api_versions",
    "create_topics",
    "delete_topics",
    "delete_records",
    "init_producer_id",
    "describe_configs",
    "alter_configs",
    "describe_log_dirs",
    "sasl_authenticate",
    "create_partitions",
    "delete_groups",
    "incremental_alter_configs",
    "offset_delete",
    "describe_cluster",
    "add_partitions_to_txn",
    "add_offsets_to_txn",
    "end_txn",
    "txn_offset_commit",
    "describe_producers",
    "describe_transactions",
    "list_transactions",
]

FIXED = {
    "Int8": 1,
    "Int16": 2,
    "UInt16": 2,
    "Int32": 4,
    "UInt32": 4,
    "Float32": 4,
    "Int64": 8,
    "Float64": 8,
    "Uuid": 16,
}
VARIABLE = {
    "Boolean": "w.boolean()",
    "String": "w.string()",
    "CompactString": "w.compact_string()",
    "Bytes": "w.bytes()",
    "CompactBytes": "w.compact_bytes()",
    "UnsignedVarInt": "w.uvarint().map(drop)",
}


def snake(name):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def blocks(text, opener):
    """Yield (name, body lines) for every top-level `opener NAME {` block."""
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        m = re.match(opener + r" (\w+) \{$", lines[i])
        if m:
            j = i + 1
            while lines[j] != "}":
                j += 1
            yield m.group(1), lines[i + 1 : j]
            i = j
        i += 1


def field_types(text):
    """Map struct name -> {field name -> Rust type}."""
    out = {}
    for name, body in blocks(text, "pub struct"):
        fields = {}
        for line in body:
            m = re.match(r"\s+pub (\w+): (.+),$", line)
            if m:
                fields[m.group(1)] = m.group(2)
        out[name] = fields
    return out


def element_struct(rust_type):
    m = re.fullmatch(r"(?:Option<)?Vec<(\w+)>>?", rust_type) or re.fullmatch(r"(\w+)", rust_type)
    if not m:
        raise SystemExit(f"cannot find the struct in type {rust_type!r}")
    return snake(m.group(1))


def walk_call(expr, struct_fields, field):
    """Translate a kafka-protocol decoder expression into a Visitor call."""
    m = re.fullmatch(r"types::(\w+)", expr)
    if m and m.group(1) in FIXED:
        return f"w.fixed({FIXED[m.group(1)]})"
    if m and m.group(1) in VARIABLE:
        return VARIABLE[m.group(1)]
    m = re.fullmatch(r"types::Struct \{ version \}", expr)
    if m:
        return f"{element_struct(struct_fields[field])}(w, version)"
    m = re.fullmatch(r"types::(Array|CompactArray)\((.+)\)", expr)
    if m:
        method = "array" if m.group(1) == "Array" else "compact_array"
        inner = m.group(2)
        if inner == "types::Struct { version }":
            elem = f"{element_struct(struct_fields[field])}(w, version)"
        else:
            elem = walk_call(inner, struct_fields, field)
        return f"w.{method}(|w| {elem})"
    raise SystemExit(f"unknown decoder expression {expr!r} for field {field}")


def condition(cond):
    """Rewrite range conditions the way clippy prefers them."""
    m = re.fullmatch(r"version < 0 \|\| version > (\d+)", cond)
    if m:
        return f"!(0..={m.group(1)}).contains(&version)"
    m = re.fullmatch(r"version >= (\d+) && version <= (\d+)", cond)
    if m:
        return f"({m.group(1)}..={m.group(2)}).contains(&version)"
    return cond


def block_end(lines, start):
    """Index of the line closing the block opened on lines[start]."""
    depth = 0
    for k in range(start, len(lines)):
        s = lines[k].strip()
        depth += s.count("{") - s.count("}")
        if depth <= 0 and k > start:
            return k
        if k == start and s.startswith("}") and s.endswith("{"):
            depth = 1
    raise SystemExit("unbalanced block")


def translate(struct, body, struct_fields):
    # body[0] is the `fn decode` line and body[-1] its closing brace.
    lines = body[1:-1]
    out = []
    fields = []  # stack of `let NAME = if ...` being translated
    i = 0
    while i < len(lines):
        line = lines[i]
        indent = line[: len(line) - len(line.lstrip())]
        s = line.strip()
        if s.startswith("let mut "):
            pass  # defaults of tagged fields and the unknown-tag map
        elif s == "} else {":
            end = block_end(lines, i)
            inner = lines[i + 1 : end]
            if any("types::" in x or "bail!" in x for x in inner):
                out.append(line)
            else:
                # The else branch only produces a default value: drop it.
                closing = lines[end].strip()
                out.append(indent + "}")
                if closing == "};":
                    fields.pop()
                i = end
        elif s == "let num_tagged_fields = types::UnsignedVarInt.decode(buf)?;":
            end = block_end(lines, i + 1)
            loop = lines[i + 1 : end + 1]
            if any("match tag" in x for x in loop):
                out.append(f"{indent}let num_tagged_fields = w.uvarint()?;")
            else:
                out.append(f"{indent}w.unknown_tagged_fields()?;")
                i = end
        elif m := re.fullmatch(r"let (\w+) = if (.+) \{", s):
            fields.append(m.group(1))
            out.append(f"{indent}if {condition(m.group(2))} {{")
        elif m := re.fullmatch(r"let (\w+) = (types::.+)\.decode\(buf\)\?;", s):
            out.append(f"{indent}{walk_call(m.group(2), struct_fields, m.group(1))}?; // {m.group(1)}")
        elif m := re.fullmatch(r"(types::.+)\.decode\(buf\)\?", s):
            out.append(f"{indent}{walk_call(m.group(1), struct_fields, fields[-1])}?; // {fields[-1]}")
        elif m := re.fullmatch(r"(\w+) = (types::.+)\.decode\(buf\)\?;", s):
            out.append(f"{indent}{walk_call(m.group(2), struct_fields, m.group(1))}?; // {m.group(1)}")
        elif m := re.fullmatch(r"(\w+) =", s):
            # rustfmt split `field =` from a long decoder expression on the next line.
            i += 1
            m2 = re.fullmatch(r"(types::.+)\.decode\(buf\)\?;", lines[i].strip())
            if not m2:
                raise SystemExit(f"{struct}: cannot join {s!r} with {lines[i]!r}")
            out.append(f"{indent}{walk_call(m2.group(1), struct_fields, m.group(1))}?; // {m.group(1)}")
        elif s == "};":
            fields.pop()
            out.append(indent + "}")
        elif s.startswith("bail!("):
            out.append(f"{indent}return Err(w.invalid(version));")
        elif s == "let tag: u32 = types::UnsignedVarInt.decode(buf)?;":
            out.append(f"{indent}let tag = w.tag()?;")
        elif s == "let size: u32 = types::UnsignedVarInt.decode(buf)?;":
            out.append(f"{indent}let size = w.uvarint()?;")
        elif s == "let unknown_value = buf.try_get_bytes(size as usize)?;":
            out.append(f"{indent}w.skip(size as usize)?;")
        elif s.startswith("unknown_tagged_fields.insert("):
            pass
        elif s == "Ok(Self {":
            while lines[i].strip() != "})":
                i += 1
            out.append(indent + "Ok(())")
        elif s.startswith("Ok(Self {") and s.endswith("})"):
            out.append(indent + "Ok(())")
        elif s.startswith("if ") and s.endswith("{"):
            out.append(f"{indent}if {condition(s[3:-2])} {{")
        elif "types::" in s or "buf" in s:
            raise SystemExit(f"{struct}: untranslated line {s!r}")
        else:
            out.append(line)
        i += 1
    name = snake(struct)
    header = f"    pub(super) fn {name}<W: Visitor>(w: &mut W, version: i16) -> Walked {{"
    body = [x[4:] if x.startswith("    ") else x for x in out]
    return "\n".join([f"    /// Walks `{struct}`.", header] + body + ["    }"])


def main():
    root = Path(sys.argv[1]) / "src" / "messages"
    kind = sys.argv[2]
    out_dir = Path(sys.argv[3])
    assert kind in ("request", "response"), "second argument: request or response"
    header = [
        f"//! Generated by `protocol/tools/generate_shape.py` from kafka-protocol 0.15.1's {kind}",
        "//! decoders: do not edit by hand. Each function walks the fields of one struct in the",
        "//! order, and under the version conditions, that kafka-protocol's `Decodable::decode`",
        "//! reads them.",
    ]
    top = header + [
        "",
        "use super::{Visitor, Walked};",
        "use crate::api_key::ApiKey;",
        "",
    ]
    for api in APIS:
        top.append(f"mod {api}_{kind};")
    top += [
        "",
        f"/// The walker for the top-level {kind} struct of `api_key`, if Sluice serves it.",
        "pub(super) fn walker<W: Visitor>(api_key: ApiKey) -> Option<fn(&mut W, i16) -> Walked> {",
        "    Some(match api_key {",
    ]
    for api in APIS:
        camel = "".join(part.capitalize() for part in api.split("_"))
        top.append(f"        ApiKey::{camel} => {api}_{kind}::{api}_{kind},")
    top += ["        _ => return None,", "    })", "}", ""]
    (out_dir / f"{kind}s.rs").write_text("\n".join(top))
    (out_dir / f"{kind}s").mkdir(exist_ok=True)
    for api in APIS:
        module = f"{api}_{kind}"
        text = (root / f"{module}.rs").read_text()
        struct_fields = field_types(text)
        fns = []
        for struct, body in blocks(text, "impl Decodable for"):
            fns.append(translate(struct, body, struct_fields[struct]))
        lines = [f"//! Walker for kafka-protocol's `{module}.rs`; generated, do not edit by hand.", ""]
        lines.append("use super::super::{Visitor, Walked};")
        lines.append("")
        # The translated functions are indented for a module block; dedent them.
        body = "\n\n".join(fns)
        body = "\n".join(x[4:] if x.startswith("    ") else x for x in body.split("\n"))
        body = body.replace("pub(super) fn", "pub(in super::super) fn")
        lines.append(body)
        lines.append("")
        (out_dir / f"{kind}s" / f"{module}.rs").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
