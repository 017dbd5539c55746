//! Pipelined requests on one connection: answered in request order, the waits of earlier
//! requests overlapping the next ones, at most `queued.max.requests` read ahead.

use std::io::Write;
use std::time::{Duration, Instant};

use sluice_protocol::api_key::ApiKey;
use sluice_protocol::messages::{Request, Response};
use sluice_protocol::record::Compression;
use sluice_tests::{BrokerProcess, RawClient};

use crate::client::{
    batch, ensure_topic, fetch_all, fetch_request, produce_request, split, values,
};

#[test]
fn a_produce_behind_a_long_polling_fetch_is_served_at_once() {
    let broker = BrokerProcess::start(&[]);
    let mut c = RawClient::connect(broker.addr);
    ensure_topic(&mut c, "pipe");
    let start = Instant::now();
    let fetch = c.send(12, &Request::Fetch(fetch_request("pipe", 0, 5_000, 1)));
    let records = batch("p", 1, Compression::None);
    let produce = c.send(9, &Request::Produce(produce_request("pipe", 0, records, 1)));
    // The produce request is read and appended while the fetch waits, and wakes it.
    let Response::Fetch(f) = c.receive_for(ApiKey::Fetch, 12, fetch) else { panic!("fetch") };
    assert!(start.elapsed() < Duration::from_secs(2), "fetch waited {:?}", start.elapsed());
    let (err, hw, records) = split(&f);
    assert_eq!((err, hw), (0, 1));
    assert_eq!(values(&records), vec![(0, "p-0".to_string())]);
    let Response::Produce(p) = c.receive_for(ApiKey::Produce, 9, produce) else { panic!() };
    let p = &p.responses[0].partition_responses[0];
    assert_eq!((p.error_code, p.base_offset), (0, 0));
}

#[test]
fn queued_max_requests_bounds_the_requests_read_ahead() {
    let broker = BrokerProcess::start(&["--override", "queued.max.requests=1"]);
    let mut c = RawClient::connect(broker.addr);
    ensure_topic(&mut c, "bounded");
    let start = Instant::now();
    let fetch = c.send(12, &Request::Fetch(fetch_request("bounded", 0, 1_000, 1)));
    let records = batch("b", 1, Compression::None);
    let produce = c.send(9, &Request::Produce(produce_request("bounded", 0, records, 1)));
    // With one request in flight the produce request stays unread until the fetch has
    // waited out max_wait_ms empty.
    let Response::Fetch(f) = c.receive_for(ApiKey::Fetch, 12, fetch) else { panic!("fetch") };
    assert!(start.elapsed() >= Duration::from_millis(950), "answered after {:?}", start.elapsed());
    assert!(split(&f).2.is_empty());
    let Response::Produce(p) = c.receive_for(ApiKey::Produce, 9, produce) else { panic!() };
    let p = &p.responses[0].partition_responses[0];
    assert_eq!((p.error_code, p.base_offset), (0, 0));
}

#[test]
fn pipelined_produce_requests_append_in_the_order_sent() {
    // Durable mode: each acknowledgement waits for a sync, so the waits overlap the
    // appends of the requests behind them.
    let broker = BrokerProcess::start(&["--override", "log.flush.interval.messages=1"]);
    let mut c = RawClient::connect(broker.addr);
    ensure_topic(&mut c, "ordered");
    let mut sent = Vec::new();
    for i in 0..100 {
        // Every tenth with acks=0: no response, and the next one still comes in order.
        let acks = if i % 10 == 9 { 0 } else { -1 };
        let records = batch(&format!("r{i}"), 2, Compression::Lz4);
        let id = c.send(9, &Request::Produce(produce_request("ordered", 0, records, acks)));
        sent.push((i, acks, id));
    }
    for (i, acks, id) in sent {
        if acks == 0 {
            continue;
        }
        let Response::Produce(r) = c.receive_for(ApiKey::Produce, 9, id) else { panic!() };
        let p = &r.responses[0].partition_responses[0];
        assert_eq!((p.error_code, p.base_offset), (0, 2 * i), "request {i}");
    }
    let got = fetch_all(&mut c, "ordered");
    let want: Vec<(i64, String)> = (0..200).map(|o| (o, format!("r{}-{}", o / 2, o % 2))).collect();
    assert_eq!(got, want);
}

#[test]
fn a_bad_frame_after_good_ones_closes_after_their_responses() {
    let broker = BrokerProcess::start(&[]);
    let mut c = RawClient::connect(broker.addr);
    ensure_topic(&mut c, "before-bad");
    let records = batch("ok", 1, Compression::None);
    let produce = c.send(9, &Request::Produce(produce_request("before-bad", 0, records, 1)));
    // A frame whose header names API key 32767, which no Kafka version has.
    c.stream.write_all(&[0, 0, 0, 8, 0x7f, 0xff, 0, 0, 0, 0, 0, 9]).unwrap();
    let Response::Produce(p) = c.receive_for(ApiKey::Produce, 9, produce) else { panic!() };
    assert_eq!(p.responses[0].partition_responses[0].error_code, 0);
    assert!(c.read_frame().is_none(), "then the connection is closed");
    let mut again = RawClient::connect(broker.addr);
    assert_eq!(fetch_all(&mut again, "before-bad"), vec![(0, "ok-0".to_string())]);
}

#[test]
fn a_client_that_does_not_read_its_responses_stops_being_read() {
    // No request cap to speak of: the bound under test is on response bytes held.
    let broker = BrokerProcess::start(&["--override", "queued.max.requests=100000"]);
    let mut c = RawClient::connect(broker.addr);
    let Response::CreateTopics(r) =
        c.call(7, Request::CreateTopics(crate::client::create_request("wide", 500)))
    else {
        panic!()
    };
    assert_eq!(r.topics[0].error_code, 0);
    // Each answer describes 500 partitions (~20 KB); 4,000 of them are ~80 MB, far more
    // than the broker's budget plus what the sockets buffer.
    let mut request = kafka_protocol::messages::MetadataRequest::default();
    let mut topic = kafka_protocol::messages::metadata_request::MetadataRequestTopic::default();
    topic.name = Some(crate::client::name("wide"));
    request.topics = Some(vec![topic]);
    let metadata = Request::Metadata(request);
    let handled = || broker.metric("sluice_requests_total{api_key=\"3\"}");
    let before = handled();
    let ids: Vec<i32> = (0..4000).map(|_| c.send(12, &metadata)).collect();
    // Wait until the broker stops handling them (or has handled them all).
    let mut read_ahead = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        let now = handled() - before;
        if now == read_ahead || now == 4000 {
            break;
        }
        read_ahead = now;
    }
    let read_ahead = handled() - before;
    assert!(read_ahead < 1500, "{read_ahead} requests handled while no response was read");
    for id in ids {
        let Response::Metadata(m) = c.receive_for(ApiKey::Metadata, 12, id) else { panic!() };
        assert_eq!(m.topics[0].partitions.len(), 500);
    }
    assert_eq!(handled() - before, 4000);
}

#[test]
fn a_client_that_leaves_during_a_long_poll_frees_its_connection_at_once() {
    let broker = BrokerProcess::start(&[]);
    let mut c = RawClient::connect(broker.addr);
    ensure_topic(&mut c, "left");
    let open = || broker.metric("sluice_connections_open");
    let before = open();
    let mut leaving = RawClient::connect(broker.addr);
    leaving.send(12, &Request::Fetch(fetch_request("left", 0, 30_000, 1)));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(open(), before + 1);
    drop(leaving);
    let start = Instant::now();
    while open() > before {
        assert!(start.elapsed() < Duration::from_secs(3), "the connection outlived its client");
        std::thread::sleep(Duration::from_millis(20));
    }
}
