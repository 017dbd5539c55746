//! Hostile input: decoders never panic, and never allocate much more than the frame.
//!
//! A counting global allocator measures, per thread, the largest single allocation and the
//! peak of live bytes while a decode runs. The bounds checked here:
//!
//! - a hostile array count (`i32::MAX`, or a compact count near `u32::MAX`) at any offset
//!   of any captured frame is rejected with no allocation larger than the frame;
//! - for any input, `Request::decode` peaks at no more than
//!   `AMPLIFICATION × frame length + SLACK` live bytes (decoding into structs costs more
//!   than the wire bytes: an empty 1-byte compact string becomes a 32-byte `Bytes`);
//! - without the shape walk, kafka-protocol 0.15.1 itself asks the allocator for more than
//!   100 GiB for the same 4-byte Metadata body (checked in a child process, since the
//!   allocation failure aborts it).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use sluice_protocol::api_key::{ApiKey, SUPPORTED_APIS};
use sluice_protocol::frame::FrameDecoder;
use sluice_protocol::header::RequestHeader;
use sluice_protocol::messages::{shape, Request, Response};

/// Peak live bytes allowed per byte of frame.
const AMPLIFICATION: usize = 64;
/// Fixed allowance: the tagged-field maps, error strings and small vectors of one decode.
const SLACK: usize = 16 * 1024;

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

struct Counting;

impl Counting {
    fn note(size: usize, sign: isize) {
        // `try_with`: the allocator also runs while thread-locals are being torn down.
        let _ = TRACKING.try_with(|tracking| {
            if tracking.get() {
                LIVE.with(|live| {
                    let now = live.get() + sign * size as isize;
                    live.set(now);
                    PEAK.with(|peak| peak.set(peak.get().max(now)));
                });
                if sign > 0 {
                    LARGEST.with(|l| l.set(l.get().max(size)));
                }
            }
        });
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; the bookkeeping only
// touches const-initialised thread-locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::note(layout.size(), 1);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        Self::note(layout.size(), -1);
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::note(layout.size(), -1);
        Self::note(new_size, 1);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// What one measured closure allocated.
#[derive(Debug, Clone, Copy)]
struct Usage {
    peak: usize,
    largest: usize,
}

fn measure<T>(f: impl FnOnce() -> T) -> (T, Usage) {
    LIVE.with(|c| c.set(0));
    PEAK.with(|c| c.set(0));
    LARGEST.with(|c| c.set(0));
    TRACKING.with(|t| t.set(true));
    let out = f();
    TRACKING.with(|t| t.set(false));
    let usage =
        Usage { peak: PEAK.with(Cell::get).max(0) as usize, largest: LARGEST.with(Cell::get) };
    (out, usage)
}

/// Decodes a whole frame (header, then body) the way the broker does, dropping the result
/// inside the measurement so only the peak counts.
fn decode_frame(frame: &Bytes) -> Usage {
    let frame = frame.clone();
    let ((), usage) = measure(move || {
        if let Ok((header, body)) = RequestHeader::decode(frame) {
            let _ = Request::decode(&header, body);
        }
    });
    usage
}

fn golden_frames() -> Vec<(String, Bytes)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .expect("fixtures dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "bin"))
        .filter(|p| !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("record")))
        .map(|p| (p.display().to_string(), Bytes::from(std::fs::read(&p).expect("readable"))))
        .collect();
    out.sort();
    assert!(!out.is_empty());
    out
}

fn assert_bounded(what: &str, frame_len: usize, usage: Usage) {
    let bound = AMPLIFICATION * frame_len + SLACK;
    assert!(usage.peak <= bound, "{what}: peak {} > {bound} for {frame_len} bytes", usage.peak);
}

#[test]
fn hostile_counts_at_every_offset_of_every_golden_frame() {
    let hostile: [&[u8]; 3] = [
        &[0x7f, 0xff, 0xff, 0xff],       // ARRAY count i32::MAX
        &[0xff, 0xff, 0xff, 0xff, 0x0f], // COMPACT_ARRAY count u32::MAX - 1
        &[0x80, 0x80, 0x80, 0x80, 0x08], // COMPACT_ARRAY count 2^31 - 1
    ];
    let mut tried = 0;
    for (name, frame) in golden_frames() {
        for at in 8..frame.len() {
            for (kind, count) in hostile.iter().enumerate() {
                // Overwrite in place, and insert: both shift what the decoder sees.
                for insert in [false, true] {
                    let mut bytes = frame.to_vec();
                    if insert {
                        bytes.splice(at..at, count.iter().copied());
                    } else {
                        let end = (at + count.len()).min(bytes.len());
                        bytes.splice(at..end, count.iter().copied());
                    }
                    let len = bytes.len();
                    let usage = decode_frame(&Bytes::from(bytes));
                    let what = format!("{name} count {kind} at {at} insert {insert}");
                    assert!(usage.largest <= len.max(SLACK), "{what}: {usage:?}");
                    assert_bounded(&what, len, usage);
                    tried += 1;
                }
            }
        }
    }
    assert!(tried > 10_000, "{tried}");
}

#[test]
fn hostile_counts_for_every_api_and_version() {
    // A body that is only a count: whatever the first field, no decoder may reserve for it.
    for s in &SUPPORTED_APIS {
        for version in s.advertised.min..=s.advertised.max {
            for body in [&[0x7f, 0xff, 0xff, 0xff][..], &[0xff, 0xff, 0xff, 0xff, 0x0f][..]] {
                for prefix in 0..12 {
                    let mut b = vec![0; prefix];
                    b.extend_from_slice(body);
                    let header = RequestHeader::new(s.key, version, 1, None);
                    let len = b.len();
                    let b = Bytes::from(b);
                    let (_, usage) = measure(|| Request::decode(&header, b));
                    assert!(usage.largest <= SLACK, "{:?} v{version}: {usage:?}", s.key);
                    let b = Bytes::from(vec![0xff; len]);
                    let (_, usage) = measure(|| Response::decode(s.key, version, b));
                    assert!(usage.largest <= SLACK, "{:?} v{version} response: {usage:?}", s.key);
                }
            }
        }
    }
}

const CHILD_ENV: &str = "SLUICE_HOSTILE_CHILD";

/// Runs in a child process: kafka-protocol alone on a 4-byte hostile Metadata v0 body.
#[test]
fn unguarded_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    use sluice_protocol::kafka_protocol::messages::MetadataRequest;
    use sluice_protocol::kafka_protocol::protocol::Decodable;
    let mut body = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff]);
    let (result, usage) = measure(|| MetadataRequest::decode(&mut body, 0));
    // Only reached if the system let the allocation through (overcommit).
    println!("largest allocation {} bytes, decode ok: {}", usage.largest, result.is_ok());
}

#[test]
fn kafka_protocol_alone_asks_for_over_100_gib() {
    let exe = std::env::current_exe().expect("test binary");
    let out = std::process::Command::new(exe)
        .args(["--exact", "unguarded_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .output()
        .expect("child runs");
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // Rust's allocation-failure message, or the child's own report under overcommit.
    let asked = ["memory allocation of ", "largest allocation "]
        .iter()
        .find_map(|m| text.split(m).nth(1))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no allocation size in child output:\n{text}"));
    assert!(asked > 100 << 30, "asked for {asked} bytes:\n{text}");
    // Through Sluice, the same body is a shape error and allocates nothing large.
    let header = RequestHeader::new(ApiKey::Metadata, 0, 1, None);
    let body = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff]);
    let (result, usage) = measure(|| Request::decode(&header, body));
    assert!(result.is_err());
    assert!(usage.largest < 1024, "{usage:?}");
}

#[test]
fn largest_legit_amplification_is_within_the_bound() {
    // The worst legitimate case: Metadata v0 with many 2-byte (empty) topic names, each
    // a struct of tens of bytes, and flexible v9 with 2-byte topics (empty compact name,
    // no tagged fields).
    for (version, element) in [(0_i16, &[0, 0][..]), (9, &[1, 0][..])] {
        let n: i32 = 10_000;
        let mut body = Vec::new();
        if version >= 9 {
            body.extend_from_slice(&[0x91, 0x4e]); // uvarint 10_001
        } else {
            body.extend_from_slice(&n.to_be_bytes());
        }
        for _ in 0..n {
            body.extend_from_slice(element);
        }
        body.extend_from_slice(&[0; 4]);
        let header = RequestHeader::new(ApiKey::Metadata, version, 1, None);
        let len = body.len();
        let body = Bytes::from(body);
        let (result, usage) = measure(|| Request::decode(&header, body).map(drop));
        assert!(result.is_ok(), "v{version}: {result:?}");
        eprintln!(
            "metadata v{version}: {len} bytes -> peak {} ({}x)",
            usage.peak,
            usage.peak / len
        );
        assert_bounded(&format!("metadata v{version}"), len, usage);
    }
}

fn any_supported() -> impl Strategy<Value = (ApiKey, i16)> {
    (0..SUPPORTED_APIS.len()).prop_flat_map(|i| {
        let s = SUPPORTED_APIS[i];
        (Just(s.key), s.advertised.min..=s.advertised.max)
    })
}

fn any_golden_frame() -> impl Strategy<Value = Vec<u8>> {
    let frames = golden_frames();
    (0..frames.len()).prop_map(move |i| frames[i].1.to_vec())
}

/// A golden frame with a few random edits: most stay close enough to valid to reach deep
/// into the decoders.
fn mutated_frame() -> impl Strategy<Value = Vec<u8>> {
    (any_golden_frame(), proptest::collection::vec((any::<usize>(), any::<u8>(), 0..3u8), 1..6))
        .prop_map(|(mut frame, edits)| {
            for (at, byte, op) in edits {
                let at = at % (frame.len() + 1);
                match op {
                    0 if at < frame.len() => frame[at] = byte,
                    1 => frame.insert(at, byte),
                    _ => frame.truncate(at.max(8)),
                }
            }
            frame
        })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2048,
        // Integration tests have no lib.rs for proptest's regression files.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn frame_decoder_never_panics(
        input in proptest::collection::vec(any::<u8>(), 0..256),
        chunk in 1usize..17,
        max in 0usize..128,
    ) {
        let decoder = FrameDecoder::new(max);
        let mut buf = BytesMut::new();
        for piece in input.chunks(chunk) {
            buf.extend_from_slice(piece);
            loop {
                match decoder.decode(&mut buf) {
                    Ok(Some(frame)) => prop_assert!(frame.len() <= max),
                    Ok(None) => break,
                    Err(_) => return Ok(()),
                }
            }
        }
    }

    #[test]
    fn header_decoder_never_panics(input in proptest::collection::vec(any::<u8>(), 0..64)) {
        let len = input.len();
        if let Ok((header, body)) = RequestHeader::decode(Bytes::from(input)) {
            prop_assert!(body.len() + 8 <= len);
            let _ = Request::decode(&header, body);
        }
    }

    #[test]
    fn request_decode_never_panics_on_random_bodies(
        (key, version) in any_supported(),
        body in proptest::collection::vec(any::<u8>(), 0..128),
    ) {
        let header = RequestHeader::new(key, version, 1, None);
        let len = body.len();
        let (_, usage) = measure(|| Request::decode(&header, Bytes::from(body)).map(drop));
        prop_assert!(usage.peak <= AMPLIFICATION * len + SLACK, "{:?}", usage);
    }

    #[test]
    fn response_decode_never_panics_on_random_bodies(
        (key, version) in any_supported(),
        body in proptest::collection::vec(any::<u8>(), 0..128),
    ) {
        let len = body.len();
        let (_, usage) = measure(|| Response::decode(key, version, Bytes::from(body)).map(drop));
        prop_assert!(usage.peak <= AMPLIFICATION * len + SLACK, "{:?}", usage);
    }

    #[test]
    fn mutated_golden_frames_decode_or_fail_cleanly(frame in mutated_frame()) {
        let len = frame.len();
        let frame = Bytes::from(frame);
        let usage = decode_frame(&frame);
        prop_assert!(usage.peak <= AMPLIFICATION * len + SLACK, "{:?}", usage);
        // Whatever decodes must encode again and decode to the same value.
        if let Ok((header, body)) = RequestHeader::decode(frame) {
            if let Ok(request) = Request::decode(&header, body) {
                let mut out = BytesMut::new();
                request.encode(header.api_version, &mut out).expect("decoded request encodes");
                let again = Request::decode(&header, out.freeze()).expect("re-decodes");
                prop_assert_eq!(again, request);
            }
        }
    }

    #[test]
    fn shape_walk_never_panics(
        (key, version) in any_supported(),
        body in proptest::collection::vec(any::<u8>(), 0..128),
    ) {
        if let Ok(n) = shape::walk_request(key, version, &body) {
            prop_assert!(n <= body.len());
        }
        if let Ok(n) = shape::walk_response(key, version, &body) {
            prop_assert!(n <= body.len());
        }
    }
}
