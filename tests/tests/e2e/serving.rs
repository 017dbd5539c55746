//! Produce and fetch over raw TCP: offsets, codecs, long polling, sendfile, errors.

use std::time::{Duration, Instant};

use sluice_protocol::messages::{Request, Response};
use sluice_protocol::record::Compression;
use sluice_tests::{BrokerProcess, RawClient};

use crate::client::{batch, ensure_topic, fetch, fetch_all, fetch_request, produce, split, values};

#[test]
fn produce_then_fetch_every_codec_with_offsets() {
    let broker = BrokerProcess::start(&[]);
    let mut c = RawClient::connect(broker.addr);
    ensure_topic(&mut c, "codecs");
    let codecs = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];
    let mut expected = vec![];
    for (i, codec) in codecs.into_iter().enumerate() {
        let (err, base) = produce(&mut c, "codecs", batch(&format!("{codec:?}"), 10, codec), 1);
        assert_eq!((err, base), (0, i as i64 * 10), "{codec:?}");
        expected.extend((0..10).map(|j| (i as i64 * 10 + j, format!("{codec:?}-{j}"))));
    }
    assert_eq!(fetch_all(&mut c, "codecs"), expected);
    // A fetch in the middle of a batch starts at the batch that holds the offset.
    let (_, _, records) = fetch(&mut c, "codecs", 15);
    assert_eq!(values(&records)[0].0, 10);
}

#[test]
fn fetched_record_bytes_go_out_with_sendfile() {
    let broker = BrokerProcess::start(&[]);
    let mut c = RawClient::connect(broker.addr);
    ensure_topic(&mut c, "zero-copy");
    for _ in 0..20 {
        produce(&mut c, "zero-copy", batch("x", 1000, Compression::None), 1);
    }
    let before_copied = broker.metric("sluice_response_copied_bytes_total");
    let mut fetched = 0u64;
    let mut offset = 0;
    while offset < 20_000 {
        let (_, _, records) = fetch(&mut c, "zero-copy", offset);
        fetched += records.len() as u64;
        offset = values(&records).last().unwrap().0 + 1;
    }
    let sent = broker.metric("sluice_fetch_sendfile_bytes_total");
    let copied = broker.metric("sluice_response_copied_bytes_total") - before_copied;
    assert!(sent >= fetched, "record bytes through sendfile: {sent} < {fetched}");
    assert!(copied < fetched / 50, "user-space copies {copied} bytes for {fetched} record bytes");
}

#[test]
fn a_long_polling_fetch_wakes_when_data_arrives() {
    let broker = BrokerProcess::start(&[]);
    let mut c = RawClient::connect(broker.addr);
    ensure_topic(&mut c, "poll");
    let addr = broker.addr;
    let producer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        let mut p = RawClient::connect(addr);
        produce(&mut p, "poll", batch("late", 1, Compression::None), 1);
        Instant::now()
    });
    let start = Instant::now();
    let Response::Fetch(r) = c.call(12, Request::Fetch(fetch_request("poll", 0, 10_000, 1))) else {
        panic!()
    };
    let woke = Instant::now();
    let produced = producer.join().unwrap();
    let (err, _, records) = split(&r);
    assert_eq!(err, 0);
    assert_eq!(values(&records), vec![(0, "late-0".to_string())]);
    assert!(woke.duration_since(start) < Duration::from_secs(1), "waited {:?}", woke - start);
    assert!(woke.saturating_duration_since(produced) < Duration::from_millis(200));
    // And with nothing to read it waits max_wait_ms, then answers empty.
    let start = Instant::now();
    let Response::Fetch(r) = c.call(12, Request::Fetch(fetch_request("poll", 1, 300, 1))) else {
        panic!()
    };
    assert!(start.elapsed() >= Duration::from_millis(290));
    assert!(split(&r).2.is_empty());
}

#[test]
fn produce_errors_are_kafka_error_codes() {
    let broker = BrokerProcess::start(&["--auto-create-topics", "false"]);
    let mut c = RawClient::connect(broker.addr);
    // Unknown topic, no auto-creation.
    assert_eq!(produce(&mut c, "nope", batch("a", 1, Compression::None), 1).0, 3);
    // A corrupt batch: CORRUPT_MESSAGE, and nothing is stored.
    let created = crate::client::create_request("t", 1);
    let _ = c.call(7, Request::CreateTopics(created));
    let mut bad = batch("a", 3, Compression::None).to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 0x55;
    assert_eq!(produce(&mut c, "t", bad.into(), 1).0, 2);
    let (err, hw, _) = fetch(&mut c, "t", 0);
    assert_eq!((err, hw), (0, 0));
    // Offsets past the end: OFFSET_OUT_OF_RANGE.
    assert_eq!(fetch(&mut c, "t", 5).0, 1);
    // acks=0 gets no response at all: the next request's response is the next frame.
    let mut p = kafka_protocol::messages::ProduceRequest::default();
    p.acks = 0;
    let mut pd = kafka_protocol::messages::produce_request::PartitionProduceData::default();
    pd.records = Some(batch("z", 1, Compression::None));
    let mut td = kafka_protocol::messages::produce_request::TopicProduceData::default();
    td.name = crate::client::name("t");
    td.partition_data = vec![pd];
    p.topic_data = vec![td];
    c.send(9, &Request::Produce(p));
    let (err, hw, _) = fetch(&mut c, "t", 0);
    assert_eq!((err, hw), (0, 1));
    // Produce v2 (message format v1 era): UNSUPPORTED_VERSION per partition.
    let mut p = kafka_protocol::messages::ProduceRequest::default();
    p.acks = 1;
    let mut pd = kafka_protocol::messages::produce_request::PartitionProduceData::default();
    pd.records = Some(batch("old", 1, Compression::None));
    let mut td = kafka_protocol::messages::produce_request::TopicProduceData::default();
    td.name = crate::client::name("t");
    td.partition_data = vec![pd];
    p.topic_data = vec![td];
    let r = crate::client::produce_response(&mut c, 2, p);
    assert_eq!(r.responses[0].partition_responses[0].error_code, 35);
    // acks=0 to a partition that does not exist: as Kafka does, the broker closes the
    // connection, since a client that wants no response learns of a failure no other way.
    let records = batch("lost", 1, Compression::None);
    c.send(9, &Request::Produce(crate::client::produce_request("t", 7, records, 0)));
    assert!(c.read_frame().is_none(), "connection closed");
    let mut c = RawClient::connect(broker.addr);
    assert_eq!(fetch(&mut c, "t", 0).1, 1, "nothing more stored");
}

#[test]
fn topic_configs_log_append_time_and_max_message_bytes() {
    use kafka_protocol::messages::create_topics_request::CreatableTopicConfig;
    use kafka_protocol::protocol::StrBytes;
    let broker = BrokerProcess::start(&[]);
    let mut c = RawClient::connect(broker.addr);
    let mut req = crate::client::create_request("stamped", 1);
    let mut cfg = CreatableTopicConfig::default();
    cfg.name = StrBytes::from_static_str("message.timestamp.type");
    cfg.value = Some(StrBytes::from_static_str("LogAppendTime"));
    req.topics[0].configs = vec![cfg];
    let mut small = crate::client::create_request("small", 1).topics.remove(0);
    let mut cfg = CreatableTopicConfig::default();
    cfg.name = StrBytes::from_static_str("max.message.bytes");
    cfg.value = Some(StrBytes::from_static_str("1000"));
    small.configs = vec![cfg];
    req.topics.push(small);
    let Response::CreateTopics(r) = c.call(7, Request::CreateTopics(req)) else { panic!() };
    assert!(r.topics.iter().all(|t| t.error_code == 0), "{r:?}");

    let before =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
            as i64;
    assert_eq!(produce(&mut c, "stamped", batch("t", 3, Compression::Zstd), 1).0, 0);
    let (_, _, records) = fetch(&mut c, "stamped", 0);
    let b = sluice_protocol::record::RecordBatch::parse_verified(&records).expect("crc recomputed");
    assert!(b.is_log_append_time());
    assert!(
        b.max_timestamp() >= before && b.max_timestamp() < before + 60_000,
        "stamped by the broker"
    );
    assert_eq!(values(&records).len(), 3);

    assert_eq!(
        produce(&mut c, "small", batch("y", 200, Compression::None), 1).0,
        10,
        "MESSAGE_TOO_LARGE"
    );
    assert_eq!(produce(&mut c, "small", batch("y", 2, Compression::None), 1).0, 0);
}

#[test]
fn clients_cannot_produce_to_the_offsets_topic() {
    let broker = BrokerProcess::start(&[]);
    let mut c = RawClient::connect(broker.addr);
    // The coordinator creates __consumer_offsets when it starts.
    let mut tries = 0;
    while broker_topic_missing(&mut c, "__consumer_offsets") {
        tries += 1;
        assert!(tries < 100, "__consumer_offsets never appeared");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(produce(&mut c, "__consumer_offsets", batch("x", 1, Compression::None), 1).0, 17);
}

fn broker_topic_missing(c: &mut RawClient, topic: &str) -> bool {
    let mut m = kafka_protocol::messages::MetadataRequest::default();
    let mut t = kafka_protocol::messages::metadata_request::MetadataRequestTopic::default();
    t.name = Some(crate::client::name(topic));
    m.topics = Some(vec![t]);
    m.allow_auto_topic_creation = false;
    let Response::Metadata(r) = c.call(12, Request::Metadata(m)) else { panic!() };
    r.topics[0].error_code != 0
}

#[test]
fn socket_buffer_settings_apply_to_client_connections() {
    let broker = BrokerProcess::start(&[
        "--override",
        "socket.send.buffer.bytes=262144",
        "--override",
        "socket.receive.buffer.bytes=262144",
    ]);
    let mut c = RawClient::connect(broker.addr);
    ensure_topic(&mut c, "buffers");
    let records = batch("b", 2000, Compression::None);
    assert_eq!(produce(&mut c, "buffers", records, 1), (0, 0));
    assert_eq!(fetch_all(&mut c, "buffers").len(), 2000);
}
