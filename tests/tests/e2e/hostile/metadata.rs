//! Metadata: a repeated topic is answered once, and auto-creation is bounded per request
//! and written to the catalog once per request.

use std::time::Duration;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::MetadataRequest;
use sluice_protocol::error_code::ErrorCode;
use sluice_protocol::messages::{Request, Response};
use sluice_tests::hostile::{allowed_growth, attack, encode_frame, Probe};
use sluice_tests::{BrokerProcess, RawClient};

use crate::client::{create_request, name};

fn metadata(names: impl IntoIterator<Item = String>, allow_create: bool) -> MetadataRequest {
    let mut m = MetadataRequest::default();
    m.topics = Some(
        names
            .into_iter()
            .map(|n| {
                let mut t = MetadataRequestTopic::default();
                t.name = Some(name(&n));
                t
            })
            .collect(),
    );
    m.allow_auto_topic_creation = allow_create;
    m
}

/// Without deduplication the response held the topic's 500 partitions once per
/// repetition: about 3 GB for this 5.5 MB request.
#[test]
fn a_large_topic_named_a_quarter_million_times_is_described_once() {
    let mut b = BrokerProcess::start(&["--auto-create-topics", "false"]);
    let mut c = RawClient::connect(b.addr);
    let Response::CreateTopics(r) = c.call(7, Request::CreateTopics(create_request("wide", 500)))
    else {
        panic!("create topics")
    };
    assert_eq!(r.topics[0].error_code, 0);

    let request = metadata(std::iter::repeat_n("wide".to_owned(), 250_000), false);
    let frame = encode_frame(12, &Request::Metadata(request));
    let probe = Probe::start(b.addr);
    let cost = attack(&mut b, &frame, 4, true);
    let latencies = probe.finish();
    println!("{} byte frame x4: {cost:?}, probe p99 {:?}", frame.len(), latencies.quantile(0.99));
    assert!(
        cost.peak_growth <= allowed_growth(frame.len()),
        "peak RSS grew {} bytes for a {} byte frame",
        cost.peak_growth,
        frame.len()
    );
    assert!(cost.largest_response < 200_000, "one topic of 500 partitions: {cost:?}");
    assert!(latencies.quantile(0.99) < Duration::from_secs(2), "{:?}", latencies.quantile(0.99));

    let Response::Metadata(r) = c.call(
        12,
        Request::Metadata(metadata(
            ["wide".to_owned(), "wide".to_owned(), "gone".to_owned(), "wide".to_owned()],
            false,
        )),
    ) else {
        panic!("metadata")
    };
    let answered: Vec<(String, i16, usize)> = r
        .topics
        .iter()
        .map(|t| (t.name.as_ref().unwrap().0.to_string(), t.error_code, t.partitions.len()))
        .collect();
    let unknown = ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code();
    assert_eq!(answered, [("wide".into(), 0, 500), ("gone".into(), unknown, 0)]);
}

/// Auto-creation is held to CreateTopics' bound of 10,000 new partitions per request
/// (the rest are answered UNKNOWN_TOPIC_OR_PARTITION, which clients retry), and a request
/// creating many topics writes the catalog once, not once per topic.
#[test]
fn auto_creation_is_bounded_per_request_and_writes_the_catalog_once() {
    let b = BrokerProcess::start(&["--num-partitions", "5001"]);
    let mut c = RawClient::connect(b.addr);
    // Creating 5,001 partitions takes a while in a debug build on a loaded machine.
    c.stream.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let wanted = ["big-1".to_owned(), "big-2".to_owned()];
    let Response::Metadata(r) = c.call(12, Request::Metadata(metadata(wanted.clone(), true)))
    else {
        panic!("metadata")
    };
    let codes: Vec<(i16, usize)> =
        r.topics.iter().map(|t| (t.error_code, t.partitions.len())).collect();
    let unknown = ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code();
    assert_eq!(codes, [(0, 5001), (unknown, 0)], "5,001 + 5,001 would pass the bound");
    assert!(!b.data_dir.join("big-2-0").exists());
    drop(c);
    drop(b);

    let b = BrokerProcess::start(&[]);
    let mut c = RawClient::connect(b.addr);
    c.stream.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    // The group coordinator creates __consumer_offsets (a catalog write) in the background
    // at start: count from after it.
    while !all_topics(&mut c).iter().any(|t| t == "__consumer_offsets") {
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = b.metric("sluice_catalog_writes_total");
    let names: Vec<String> = (0..2000).map(|i| format!("many-{i}")).collect();
    let Response::Metadata(r) = c.call(12, Request::Metadata(metadata(names, true))) else {
        panic!("metadata")
    };
    assert_eq!(r.topics.len(), 2000);
    assert!(r.topics.iter().all(|t| t.error_code == 0 && t.partitions.len() == 1));
    assert_eq!(b.metric("sluice_catalog_writes_total") - before, 1, "one write for 2,000 topics");
    // Internal topics are the broker's to create.
    let Response::Metadata(r) =
        c.call(12, Request::Metadata(metadata(["__transaction_state".to_owned()], true)))
    else {
        panic!("metadata")
    };
    assert_eq!(r.topics[0].error_code, unknown);
}

fn all_topics(c: &mut RawClient) -> Vec<String> {
    let mut m = MetadataRequest::default();
    m.topics = None;
    let Response::Metadata(r) = c.call(12, Request::Metadata(m)) else { panic!("metadata") };
    r.topics.iter().filter_map(|t| t.name.as_ref().map(|n| n.0.to_string())).collect()
}
