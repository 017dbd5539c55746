//! DescribeProducers (KIP-664) through the raw client: each partition's producers with
//! their epochs and last sequences, a repeated partition refused, an unknown one named.

use bytes::Bytes;
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::DescribeProducersRequest;
use sluice_protocol::messages::{Request, Response};
use sluice_protocol::record::{BatchBuilder, Compression};
use sluice_tests::{BrokerProcess, RawClient};

use crate::client::{ensure_topic, name, produce};

fn idempotent(pid: i64, epoch: i16, seq: i32, n: usize) -> Bytes {
    let mut b = BatchBuilder::new(Compression::Lz4).producer(pid, epoch, seq);
    for i in 0..n {
        b.append(1_700_000_000_000, None, Some(format!("v{i}").as_bytes()), &[]).unwrap();
    }
    Bytes::from(b.build().unwrap())
}

/// (producer id, epoch, last sequence, current transaction's first offset).
type Producer = (i64, i32, i32, i64);

fn describe(c: &mut RawClient, topic: &str, partitions: Vec<i32>) -> Vec<(i16, Vec<Producer>)> {
    let mut t = TopicRequest::default();
    t.name = name(topic);
    t.partition_indexes = partitions;
    let mut r = DescribeProducersRequest::default();
    r.topics = vec![t];
    let Response::DescribeProducers(resp) = c.call(0, Request::DescribeProducers(r)) else {
        panic!("not a DescribeProducers response")
    };
    resp.topics[0]
        .partitions
        .iter()
        .map(|p| {
            let producers = p
                .active_producers
                .iter()
                .map(|s| {
                    (s.producer_id.0, s.producer_epoch, s.last_sequence, s.current_txn_start_offset)
                })
                .collect();
            (p.error_code, producers)
        })
        .collect()
}

#[test]
fn describe_producers_lists_each_partitions_producers_once() {
    let broker = BrokerProcess::start(&[]);
    let mut c = RawClient::connect(broker.addr);
    ensure_topic(&mut c, "described");
    assert_eq!(produce(&mut c, "described", idempotent(4001, 2, 0, 5), -1).0, 0);
    assert_eq!(produce(&mut c, "described", idempotent(4001, 2, 5, 3), -1).0, 0);
    assert_eq!(produce(&mut c, "described", idempotent(4002, 0, 0, 1), -1).0, 0);
    let answer = describe(&mut c, "described", vec![0, 0, 77]);
    let (code, mut producers) = answer[0].clone();
    producers.sort_unstable();
    assert_eq!(code, 0);
    assert_eq!(producers, vec![(4001, 2, 7, -1), (4002, 0, 0, -1)]);
    assert_eq!(answer[1].0, 42, "a repeat is INVALID_REQUEST");
    assert!(answer[1].1.is_empty());
    assert_eq!(answer[2].0, 3, "UNKNOWN_TOPIC_OR_PARTITION");
}
