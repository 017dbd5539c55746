//! Protocol benchmarks: what decoding a Produce request costs, next to baselines measured
//! in the same run.
//!
//! `decode_produce_1mib/*`, one Produce v9 request frame with a single 1 MiB record set:
//!
//! - `sluice`: `RequestHeader::decode` + `Request::decode` from the frame's `Bytes`, the
//!   broker's path (shape walk, then kafka-protocol; the record set stays a view).
//! - `shape_walk`: the walk alone.
//! - `kafka_protocol_bytes`: kafka-protocol's decode from `Bytes` without the walk.
//! - `kafka_protocol_slice`: kafka-protocol's decode from a `&[u8]`, whose `ByteBuf`
//!   impl copies every byte and string field: what zero copy saves.
//! - `memcpy`: copying the 1 MiB record set into a fresh buffer, the cost of one copy.
//!
//! `cargo bench -p sluice-benches --bench protocol`. Under `cargo test --benches` each
//! benchmark runs once.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sluice_protocol::api_key::ApiKey;
use sluice_protocol::header::RequestHeader;
use sluice_protocol::kafka_protocol::messages::produce_request::{
    PartitionProduceData, TopicProduceData,
};
use sluice_protocol::kafka_protocol::messages::ProduceRequest;
use sluice_protocol::kafka_protocol::protocol::{Decodable, StrBytes};
use sluice_protocol::messages::{shape, Request};

const VERSION: i16 = 9;

/// A Produce v9 frame (header and body, no size prefix) carrying `records`.
fn produce_frame(records: Bytes) -> Bytes {
    let mut partition = PartitionProduceData::default();
    partition.index = 0;
    partition.records = Some(records);
    let mut topic = TopicProduceData::default();
    topic.name = StrBytes::from_static_str("bench").into();
    topic.partition_data = vec![partition];
    let mut produce = ProduceRequest::default();
    produce.acks = -1;
    produce.timeout_ms = 30_000;
    produce.topic_data = vec![topic];
    let header = RequestHeader::new(ApiKey::Produce, VERSION, 1, None);
    let mut out = BytesMut::new();
    header.encode(&mut out).expect("header encodes");
    Request::Produce(produce).encode(VERSION, &mut out).expect("body encodes");
    out.freeze()
}

fn decode_produce(c: &mut Criterion) {
    let records = Bytes::from(vec![0x5a_u8; 1 << 20]);
    let frame = produce_frame(records.clone());
    let (_, body) = RequestHeader::decode(frame.clone()).expect("valid header");

    let mut group = c.benchmark_group("decode_produce_1mib");
    group.throughput(Throughput::Bytes(frame.len() as u64));

    group.bench_function("sluice", |b| {
        b.iter(|| {
            let (header, body) = RequestHeader::decode(black_box(frame.clone())).expect("header");
            black_box(Request::decode(&header, body).expect("body"))
        })
    });
    group.bench_function("shape_walk", |b| {
        b.iter(|| shape::walk_request(ApiKey::Produce, VERSION, black_box(&body)))
    });
    group.bench_function("kafka_protocol_bytes", |b| {
        b.iter(|| {
            let mut buf = black_box(body.clone());
            black_box(ProduceRequest::decode(&mut buf, VERSION).expect("decodes"))
        })
    });
    group.bench_function("kafka_protocol_slice", |b| {
        b.iter(|| {
            let mut buf: &[u8] = black_box(&body[..]);
            black_box(ProduceRequest::decode(&mut buf, VERSION).expect("decodes"))
        })
    });
    group.bench_function("memcpy", |b| {
        b.iter(|| black_box(Bytes::copy_from_slice(black_box(&records[..]))))
    });
    group.finish();
}

criterion_group!(benches, decode_produce);
criterion_main!(benches);
