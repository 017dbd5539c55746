//! ListOffsets by timestamp: a batch that inflates far past its size (a gzip bomb, which
//! Produce accepts as Kafka does) costs a bounded amount per request, however often a
//! request names its partition.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::ListOffsetsRequest;
use sluice_protocol::error_code::ErrorCode;
use sluice_protocol::messages::{Request, Response};
use sluice_protocol::record::{BatchBuilder, Compression};
use sluice_tests::hostile::{allowed_growth, attack, encode_frame, Probe};
use sluice_tests::{BrokerProcess, RawClient};

use crate::client::{create_request, name, produce_request, produce_response};

const T0: i64 = 1_700_000_000_000;
const PARTITIONS: i32 = 24;

/// 16 MiB of zeros in 16,384 records, gzip: about 140 KB on the wire.
fn bomb() -> Bytes {
    let mut b = BatchBuilder::new(Compression::Gzip);
    let zeros = vec![0u8; 1024];
    for i in 0..16_384 {
        b.append(T0 + i, None, Some(&zeros), &[]).unwrap();
    }
    Bytes::from(b.build().unwrap())
}

fn request(entries: impl Iterator<Item = (i32, i64)>) -> ListOffsetsRequest {
    let mut t = ListOffsetsTopic::default();
    t.name = name("bombs");
    t.partitions = entries
        .map(|(partition, timestamp)| {
            let mut p = ListOffsetsPartition::default();
            p.partition_index = partition;
            p.timestamp = timestamp;
            p
        })
        .collect();
    let mut r = ListOffsetsRequest::default();
    r.topics = vec![t];
    r
}

#[test]
fn gzip_bombs_cost_a_bounded_amount_per_request() {
    let mut b = BrokerProcess::start(&[]);
    let mut c = RawClient::connect(b.addr);
    c.stream.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let Response::CreateTopics(r) =
        c.call(7, Request::CreateTopics(create_request("bombs", PARTITIONS)))
    else {
        panic!("create topics")
    };
    assert_eq!(r.topics[0].error_code, 0);
    let bomb = bomb();
    println!("bomb: {} bytes on the wire, 16 MiB inflated", bomb.len());
    for p in 0..PARTITIONS {
        let r = produce_response(&mut c, 9, produce_request("bombs", p, bomb.clone(), 1));
        assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    }

    // One partition named 200,000 times, each with another timestamp: every entry is a
    // duplicate, refused without reading anything.
    let repeated = request((0..200_000).map(|i| (0, T0 + i % 16_384)));
    let frame = encode_frame(7, &Request::ListOffsets(repeated));
    let probe = Probe::start(b.addr);
    let cost = attack(&mut b, &frame, 3, true);
    println!("repeated partition, {} byte frame x3: {cost:?}", frame.len());
    assert!(cost.peak_growth <= allowed_growth(frame.len()), "{cost:?}");
    assert!(cost.elapsed < Duration::from_secs(60), "{cost:?}");

    // Every partition once, each with its own bomb: 384 MiB to inflate, past the
    // request's budget of 256 MiB; the rest answer the batch's start.
    let each = request((0..PARTITIONS).map(|p| (p, T0 + 10_000)));
    let frame = encode_frame(7, &Request::ListOffsets(each.clone()));
    let cost = attack(&mut b, &frame, 3, true);
    let latencies = probe.finish();
    println!("every bomb once, x3: {cost:?}; probe p99 {:?}", latencies.quantile(0.99));
    assert!(cost.peak_growth <= allowed_growth(frame.len()), "{cost:?}");
    assert!(latencies.quantile(0.99) < Duration::from_secs(2), "{:?}", latencies.quantile(0.99));

    let Response::ListOffsets(r) = c.call(7, Request::ListOffsets(each)) else {
        panic!("list offsets")
    };
    let offsets: Vec<(i16, i64)> =
        r.topics[0].partitions.iter().map(|p| (p.error_code, p.offset)).collect();
    assert_eq!(offsets.len(), PARTITIONS as usize);
    // Each bomb inflates to a little over 16 MiB (records have headers), so 256 MiB of
    // budget is 15 of them, answered exactly; the rest get the batch start, never later.
    let exact = offsets.iter().filter(|o| **o == (0, 10_000)).count();
    let start = offsets.iter().filter(|o| **o == (0, 0)).count();
    assert_eq!((exact, start), (15, 9), "{offsets:?}");
    let Response::ListOffsets(r) = c.call(7, Request::ListOffsets(request([(0, T0)].into_iter())))
    else {
        panic!("list offsets")
    };
    assert_eq!(r.topics[0].partitions[0].error_code, ErrorCode::NONE.code());
}
