//! The broker out of file descriptors: the request that needs one fails with a Kafka
//! error, what is already open keeps working, and everything recovers once descriptors
//! are free again.

use kafka_protocol::messages::DeleteTopicsRequest;
use sluice_protocol::error_code::ErrorCode;
use sluice_protocol::messages::{Request, Response};
use sluice_protocol::record::Compression;
use sluice_tests::{BrokerProcess, RawClient};

use crate::client::{batch, create_request, ensure_topic, fetch_all, name, produce};

fn create(c: &mut RawClient, topic: &str, partitions: i32) -> (i16, String) {
    let Response::CreateTopics(r) =
        c.call(7, Request::CreateTopics(create_request(topic, partitions)))
    else {
        panic!("create topics")
    };
    (r.topics[0].error_code, r.topics[0].error_message.as_deref().unwrap_or("").to_owned())
}

fn topic_names(c: &mut RawClient) -> Vec<String> {
    let mut m = kafka_protocol::messages::MetadataRequest::default();
    m.topics = None;
    let Response::Metadata(r) = c.call(12, Request::Metadata(m)) else { panic!("metadata") };
    let mut names: Vec<String> =
        r.topics.iter().filter_map(|t| t.name.as_ref().map(|n| n.0.to_string())).collect();
    names.sort();
    names
}

#[test]
fn out_of_descriptors_a_create_fails_cleanly_and_the_broker_recovers() {
    // A bound on open segments above what the limit allows: partitions hold descriptors
    // until creating more runs out of them.
    let mut b = BrokerProcess::start_with_open_file_limit(
        &["--override", "sluice.log.open.segments.max=100000"],
        160,
    );
    let mut c = RawClient::connect(b.addr);
    ensure_topic(&mut c, "keep");
    assert_eq!(produce(&mut c, "keep", batch("before", 10, Compression::None), 1).0, 0);

    let mut filled = vec![];
    let message = loop {
        assert!(filled.len() < 100, "160 descriptors should run out well before this");
        let topic = format!("fill-{}", filled.len());
        match create(&mut c, &topic, 4) {
            (0, _) => filled.push(topic),
            (code, message) => {
                assert_eq!(code, ErrorCode::KAFKA_STORAGE_ERROR.code(), "{message}");
                break message;
            }
        }
    };
    assert!(message.contains("Too many open files"), "{message}");
    assert!(!filled.is_empty());
    assert!(topic_names(&mut c).contains(&filled[0]));
    let failed = format!("fill-{}", filled.len());
    assert!(!topic_names(&mut c).contains(&failed), "the failed topic was rolled back");
    assert!(!b.data_dir.join(format!("{failed}-0")).exists(), "and its directories removed");

    // What is open needs no new descriptor: appends and fetches go on.
    assert_eq!(produce(&mut c, "keep", batch("during", 10, Compression::None), 1).0, 0);
    assert_eq!(fetch_all(&mut c, "keep").len(), 20);

    let mut d = DeleteTopicsRequest::default();
    d.topic_names = filled.iter().map(|t| name(t)).collect();
    d.timeout_ms = 10_000;
    let Response::DeleteTopics(r) = c.call(4, Request::DeleteTopics(d)) else { panic!() };
    assert!(r.responses.iter().all(|t| t.error_code == 0), "{r:?}");

    // Descriptors are free again: new connections and new topics work.
    let mut fresh = RawClient::connect(b.addr);
    assert_eq!(create(&mut fresh, "after", 4).0, 0);
    assert_eq!(produce(&mut fresh, "after", batch("after", 5, Compression::None), 1).0, 0);
    assert!(b.is_running());

    b.stop();
    b.restart();
    let mut c = RawClient::connect(b.addr);
    assert_eq!(topic_names(&mut c), ["__consumer_offsets", "after", "keep"]);
    let keep: Vec<String> = fetch_all(&mut c, "keep").into_iter().map(|(_, v)| v).collect();
    let want: Vec<String> = (0..10)
        .map(|i| format!("before-{i}"))
        .chain((0..10).map(|i| format!("during-{i}")))
        .collect();
    assert_eq!(keep, want);
    assert_eq!(fetch_all(&mut c, "after").len(), 5);
}
