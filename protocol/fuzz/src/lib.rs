//! Fuzz target bodies for sluice-protocol's decoders of untrusted bytes.
//!
//! Each function takes one fuzzer input, runs a decoder on it and asserts what must hold
//! for any input (a panic is a finding). The libFuzzer binaries in `fuzz_targets/` call
//! them, and so does `protocol/tests/fuzz_corpus.rs`, which replays `corpus/<target>/`
//! (seeds and `regression-*` inputs from past crashes) and any local `artifacts/<target>/`
//! on stable Rust in every `cargo test`:
//!
//! - [`frame`]: the frame decoder over an input split into random-sized socket reads;
//! - [`header`]: the request header decoder;
//! - [`request`]: a whole request frame through the broker's path (header, then
//!   `Request::decode` for whatever API key and version the frame names) plus
//!   `Response::decode` of the same body;
//! - [`batch`]: `RecordBatch::parse_verified` and record iteration;
//! - [`consumer_protocol`]: the consumer protocol's subscription and assignment decoders
//!   (the bytes inside JoinGroup and SyncGroup), with a round trip of what decodes.
//!
//! Allocation is bounded by running libFuzzer with `-malloc_limit_mb` (see the README in
//! this directory), which reports any single allocation above the limit as a crash.

use bytes::{Bytes, BytesMut};
use sluice_protocol::consumer_protocol::{
    Assignment, Subscription, LATEST_ASSIGNMENT_VERSION, LATEST_SUBSCRIPTION_VERSION,
};
use sluice_protocol::frame::FrameDecoder;
use sluice_protocol::header::RequestHeader;
use sluice_protocol::messages::{Request, Response};
use sluice_protocol::record::RecordBatch;

/// Frame target: `data[0]` picks the maximum frame size, `data[1]` the read size, the rest
/// is what the socket delivers.
pub fn frame(data: &[u8]) {
    let [max_sel, chunk_sel, stream @ ..] = data else {
        return;
    };
    let max = [0, 16, 4096, 1 << 20][usize::from(*max_sel) % 4];
    let chunk = 1 + usize::from(*chunk_sel) % 64;
    let decoder = FrameDecoder::new(max);
    let mut buf = BytesMut::new();
    let mut consumed = 0;
    for piece in stream.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => {
                    assert!(frame.len() <= max, "frame of {} over max {max}", frame.len());
                    let start = consumed + 4;
                    assert_eq!(&frame[..], &stream[start..start + frame.len()]);
                    consumed = start + frame.len();
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    assert_eq!(consumed + buf.len(), stream.len(), "bytes lost or duplicated");
}

/// Header target: decode a request header; what decodes re-encodes and decodes the same.
pub fn header(data: &[u8]) {
    let Ok((header, body)) = RequestHeader::decode(Bytes::copy_from_slice(data)) else {
        return;
    };
    assert!(body.len() + 8 <= data.len());
    assert_eq!(&body[..], &data[data.len() - body.len()..], "body is the frame's tail");
    let mut out = BytesMut::new();
    header.encode(&mut out).expect("a decoded header encodes");
    let (again, rest) = RequestHeader::decode(out.freeze()).expect("re-decodes");
    assert!(rest.is_empty());
    if header.header_version > 0 {
        assert_eq!(again, header);
    }
}

/// Request target: the broker's decode path on a whole frame (without the size prefix),
/// then the response decoder on the same body.
pub fn request(data: &[u8]) {
    let Ok((header, body)) = RequestHeader::decode(Bytes::copy_from_slice(data)) else {
        return;
    };
    if let Ok(request) = Request::decode(&header, body.clone()) {
        assert_eq!(request.api_key(), header.api_key);
        let mut out = BytesMut::new();
        request.encode(header.api_version, &mut out).expect("a decoded request encodes");
        let again = Request::decode(&header, out.freeze()).expect("an encoded request decodes");
        assert_eq!(again, request, "round trip changed the request");
    }
    if let Ok(response) = Response::decode(header.api_key, header.api_version, body) {
        let mut out = BytesMut::new();
        response.encode(header.api_version, &mut out).expect("a decoded response encodes");
    }
}

/// Batch target: parse and verify a record batch, then walk its records.
pub fn batch(data: &[u8]) {
    let Ok(batch) = RecordBatch::parse_verified(data) else {
        return;
    };
    assert!(batch.size() <= data.len());
    if let Ok(records) = batch.records(1 << 20) {
        for record in records.iter().take(100_000) {
            let Ok(record) = record else { break };
            let _ = (record.key(), record.value(), record.headers().count());
        }
    }
}

/// Consumer-protocol target: the input as a subscription and as an assignment. What
/// decodes encodes at its own version (clamped to the latest) and at the latest, and each
/// encoding decodes to the same value; a subscription's topics read alone are its topics.
pub fn consumer_protocol(data: &[u8]) {
    let bytes = Bytes::copy_from_slice(data);
    let topics = Subscription::decode_topics(&bytes);
    if let Ok(sub) = Subscription::decode(&bytes) {
        assert_eq!(topics.as_ref(), Ok(&sub.topics), "topics read alone differ");
        // It decoded, so the input has its two version bytes.
        let version = i16::from_be_bytes([data[0], data[1]]).min(LATEST_SUBSCRIPTION_VERSION);
        for v in [version, LATEST_SUBSCRIPTION_VERSION] {
            let out = sub.encode(v).expect("a decoded subscription encodes");
            let again = Subscription::decode(&out).expect("an encoded subscription decodes");
            assert_eq!(again, sub, "round trip at v{v} changed the subscription");
        }
    }
    if let Ok(assignment) = Assignment::decode(&bytes) {
        for v in [0, LATEST_ASSIGNMENT_VERSION] {
            let out = assignment.encode(v).expect("a decoded assignment encodes");
            let again = Assignment::decode(&out).expect("an encoded assignment decodes");
            assert_eq!(again, assignment, "round trip at v{v} changed the assignment");
        }
    }
}
