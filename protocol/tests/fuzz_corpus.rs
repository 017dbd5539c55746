//! Replays the fuzz corpus (and any local crash artifacts) through the fuzz target bodies,
//! on stable Rust, in every `cargo test`.
//!
//! The bodies live in `protocol/fuzz/src/lib.rs` (the cargo-fuzz project, outside the
//! workspace) and are included here by path, so the libFuzzer binaries and this test run
//! the same assertions. Seeds come from `tests/interop/capture.py`. libFuzzer writes
//! crashes to `artifacts/<target>/` (git-ignored; replayed here while they exist); once
//! fixed, a crash input is committed as `corpus/<target>/regression-<what>` so it stays
//! a regression test.

#[path = "../fuzz/src/lib.rs"]
mod targets;

use std::path::Path;

fn replay(target: &str, body: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut count = 0;
    for dir in ["corpus", "artifacts"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else { continue };
        let mut paths: Vec<_> = entries.map(|e| e.expect("dir entry").path()).collect();
        paths.sort();
        for path in paths {
            let data = std::fs::read(&path).expect("readable");
            let outcome = std::panic::catch_unwind(|| body(&data));
            assert!(outcome.is_ok(), "{target}: {} fails", path.display());
            count += 1;
        }
    }
    count
}

#[test]
fn frame_corpus() {
    assert!(replay("frame", targets::frame) >= 30);
}

#[test]
fn header_corpus() {
    assert!(replay("header", targets::header) >= 30);
}

#[test]
fn request_corpus() {
    assert!(replay("request", targets::request) >= 30);
}

#[test]
fn batch_corpus() {
    assert!(replay("batch", targets::batch) >= 3);
}

#[test]
fn consumer_protocol_corpus() {
    assert!(replay("consumer_protocol", targets::consumer_protocol) >= 5);
}
