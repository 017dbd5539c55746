//! Golden bytes: request frames real clients sent, decoded through Sluice.
//!
//! The fixtures `protocol/tests/fixtures/<api>_v<version>_<client>.bin` are whole frames
//! without the size prefix, captured by `tests/interop/capture.py` from kafka-python 3.0.12
//! (also pinned to Kafka 0.10.0, 0.8.2 and 0.8.1: `*_kafka-python-old.bin`, the versions
//! Kafka 4.0 removed), confluent-kafka 2.16.1 (librdkafka 2.16.0) and kcat 1.7.1
//! (librdkafka 2.0.2) talking to a
//! fake broker that advertised Sluice's version table. Every fixture must decode (header
//! and body), and re-encoding the decoded request must give back the client's exact bytes.
//! Then the fields each client sent are checked one by one.

use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use sluice_protocol::api_key::{support, ApiKey};
use sluice_protocol::header::RequestHeader;
use sluice_protocol::kafka_protocol::protocol::StrBytes;
use sluice_protocol::messages::Request;
use sluice_protocol::record::RecordBatch;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Every captured request frame, with its file name.
fn captured() -> Vec<(String, Bytes)> {
    let mut out: Vec<_> = std::fs::read_dir(fixtures())
        .expect("fixtures dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "bin"))
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_string();
            // Record batch fixtures belong to record.rs's tests.
            (!name.starts_with("record"))
                .then(|| (name, Bytes::from(std::fs::read(&p).expect("readable"))))
        })
        .collect();
    out.sort();
    out
}

fn load(name: &str) -> (RequestHeader, Request) {
    let frame = Bytes::from(std::fs::read(fixtures().join(name)).expect(name));
    let (header, body) = RequestHeader::decode(frame).expect(name);
    let request = Request::decode(&header, body).expect(name);
    (header, request)
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

#[test]
fn every_fixture_decodes_and_re_encodes_to_the_same_bytes() {
    let all = captured();
    assert!(all.len() >= 30, "capture.py produced {} fixtures", all.len());
    for (name, frame) in all {
        let (header, body) = RequestHeader::decode(frame.clone()).expect(&name);
        let prefix =
            format!("{}_v{}_", snake(&format!("{:?}", header.api_key)), header.api_version);
        assert!(name.starts_with(&prefix), "{name} holds {prefix}");
        let supported = support(header.api_key).expect(&name);
        assert!(supported.is_advertised(header.api_version), "{name}");
        let request = Request::decode(&header, body.clone()).expect(&name);
        assert_eq!(request.api_key(), header.api_key);
        let mut again = BytesMut::new();
        request.encode(header.api_version, &mut again).expect(&name);
        assert_eq!(&again[..], &body[..], "{name}: re-encoded body differs");
        let mut whole = BytesMut::new();
        request.encode_frame(&header, &mut whole).expect(&name);
        assert_eq!(&whole[4..], &frame[..], "{name}: re-encoded frame differs");
    }
}

fn snake(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

#[test]
fn api_versions_from_three_clients() {
    for (file, version, client_id, software, software_version) in [
        (
            "api_versions_v3_librdkafka.bin",
            3,
            "golden-librdkafka",
            "confluent-kafka-python",
            "2.16.1-rdkafka-2.16.0",
        ),
        ("api_versions_v3_kcat.bin", 3, "golden-kcat", "librdkafka", "2.0.2"),
        ("api_versions_v4_kafka-python.bin", 4, "golden-kafka-python", "kafka-python", "3.0.12"),
    ] {
        let (header, request) = load(file);
        assert_eq!((header.api_key, header.api_version), (ApiKey::ApiVersions, version));
        assert_eq!(header.header_version, 2, "{file}: flexible request header");
        assert_eq!(header.correlation_id, 1, "{file}: first request on the connection");
        assert_eq!(header.client_id, Some(s(client_id)), "{file}");
        let Request::ApiVersions(r) = request else { panic!("{file}") };
        assert_eq!(r.client_software_name, s(software), "{file}");
        assert_eq!(r.client_software_version, s(software_version), "{file}");
    }
}

#[test]
fn metadata_requests() {
    let (header, Request::Metadata(r)) = load("metadata_v12_librdkafka.bin") else { panic!() };
    assert_eq!(header.header_version, 2);
    let topics = r.topics.expect("librdkafka names its topic");
    assert_eq!(topics.len(), 1);
    assert_eq!(topics[0].name, Some(s("golden").into()));
    assert!(topics[0].topic_id.is_nil(), "asked by name");
    assert!(r.allow_auto_topic_creation);

    // kafka-python asks for no topic at bootstrap: an empty (not null) array.
    let (_, Request::Metadata(r)) = load("metadata_v12_kafka-python.bin") else { panic!() };
    assert_eq!(r.topics, Some(vec![]));

    let (header, Request::Metadata(r)) = load("metadata_v4_kcat.bin") else { panic!() };
    assert_eq!(header.header_version, 1);
    assert_eq!(r.topics, Some(vec![]));
    assert!(!r.allow_auto_topic_creation, "kcat -L does not create topics");
}

#[test]
fn produce_requests_carry_one_verified_batch() {
    for (file, version, producer_id) in [
        ("produce_v10_librdkafka.bin", 10, 4000),
        ("produce_v9_kafka-python.bin", 9, 4000),
        ("produce_v7_kcat.bin", 7, -1),
    ] {
        let (header, Request::Produce(r)) = load(file) else { panic!("{file}") };
        assert_eq!(header.api_version, version);
        assert_eq!((r.acks, r.timeout_ms, r.transactional_id.is_none()), (-1, 30_000, true));
        assert_eq!(r.topic_data.len(), 1);
        let topic = &r.topic_data[0];
        assert_eq!(topic.name.0, s("golden"));
        assert_eq!(topic.partition_data.len(), 1);
        assert_eq!(topic.partition_data[0].index, 0);
        let records = topic.partition_data[0].records.as_ref().expect("records");
        let batch = RecordBatch::parse_verified(records).expect(file);
        assert_eq!(batch.size(), records.len(), "{file}: one batch");
        assert_eq!((batch.base_offset(), batch.records_count()), (0, 1), "{file}");
        // The idempotent producers used the fake broker's InitProducerId answer.
        assert_eq!(batch.producer_id(), producer_id, "{file}");
        let decoded = batch.records(1 << 20).expect(file);
        let record = decoded.iter().next().expect("one record").expect(file);
        assert_eq!((record.key(), record.value()), (Some(&b"key"[..]), Some(&b"value"[..])));
    }
}

#[test]
fn init_producer_id_requests() {
    for (file, timeout) in
        [("init_producer_id_v4_librdkafka.bin", -1), ("init_producer_id_v4_kafka-python.bin", 0)]
    {
        let (_, Request::InitProducerId(r)) = load(file) else { panic!("{file}") };
        assert_eq!(r.transactional_id, None, "{file}: idempotent, not transactional");
        assert_eq!(r.transaction_timeout_ms, timeout, "{file}");
        assert_eq!((r.producer_id.0, r.producer_epoch), (-1, -1), "{file}");
    }
}

#[test]
fn fetch_requests_by_name_and_by_topic_id() {
    let (_, Request::Fetch(r)) = load("fetch_v16_librdkafka.bin") else { panic!() };
    assert_eq!((r.max_wait_ms, r.min_bytes, r.max_bytes), (500, 1, 52_428_800));
    assert_eq!((r.isolation_level, r.session_id, r.session_epoch), (1, 0, -1));
    // v13+ names the topic by the id the (fake) broker returned in Metadata v12.
    assert_eq!(r.topics[0].topic_id.to_string(), "5a1c0e00-0000-4000-8000-000000000001");
    assert_eq!(r.topics[0].topic.0, s(""));
    let p = &r.topics[0].partitions[0];
    assert_eq!((p.partition, p.fetch_offset, p.partition_max_bytes), (0, 0, 1_048_576));

    for file in ["fetch_v12_kafka-python.bin", "fetch_v11_kcat.bin"] {
        let (_, Request::Fetch(r)) = load(file) else { panic!("{file}") };
        assert_eq!(r.topics[0].topic.0, s("golden"), "{file}");
        assert_eq!(r.topics[0].partitions[0].fetch_offset, 0, "{file}");
        assert!(r.forgotten_topics_data.is_empty(), "{file}");
    }
}

#[test]
fn list_offsets_ask_for_earliest() {
    for file in [
        "list_offsets_v7_librdkafka.bin",
        "list_offsets_v9_kafka-python.bin",
        "list_offsets_v2_kcat.bin",
    ] {
        let (_, Request::ListOffsets(r)) = load(file) else { panic!("{file}") };
        assert_eq!(r.replica_id.0, -1, "{file}");
        assert_eq!(r.topics[0].name.0, s("golden"), "{file}");
        assert_eq!(r.topics[0].partitions[0].timestamp, -2, "{file}: earliest");
    }
}

#[test]
fn consumer_group_requests() {
    let (_, Request::FindCoordinator(r)) = load("find_coordinator_v2_librdkafka.bin") else {
        panic!()
    };
    assert_eq!((r.key.clone(), r.key_type), (s("golden-group"), 0));
    let (_, Request::FindCoordinator(r)) = load("find_coordinator_v6_kafka-python.bin") else {
        panic!()
    };
    assert_eq!(r.coordinator_keys, vec![s("golden-group")], "v4+ batches keys");

    for (file, metadata_version) in
        [("join_group_v5_librdkafka.bin", 3), ("join_group_v7_kafka-python.bin", 0)]
    {
        let (_, Request::JoinGroup(r)) = load(file) else { panic!("{file}") };
        assert_eq!(r.group_id.0, s("golden-group"));
        assert_eq!((r.session_timeout_ms, r.rebalance_timeout_ms), (45_000, 300_000), "{file}");
        assert_eq!(r.member_id, s(""), "{file}: first join");
        assert_eq!(r.protocol_type, s("consumer"));
        let names: Vec<_> = r.protocols.iter().map(|p| p.name.to_string()).collect();
        assert_eq!(names, ["range", "roundrobin"], "{file}");
        // ConsumerProtocolSubscription: version i16, then topics ["golden"].
        let metadata = &r.protocols[0].metadata;
        assert_eq!(&metadata[..2], &i16::to_be_bytes(metadata_version), "{file}");
        assert_eq!(&metadata[2..14], b"\0\0\0\x01\0\x06golden", "{file}");
    }

    for (file, member) in [
        ("sync_group_v3_librdkafka.bin", "member-1"),
        ("sync_group_v5_kafka-python.bin", "member-0"),
    ] {
        let (_, Request::SyncGroup(r)) = load(file) else { panic!("{file}") };
        assert_eq!((r.generation_id, r.member_id.clone()), (1, s(member)), "{file}");
        assert_eq!(r.assignments.len(), 1, "{file}: the leader sends the assignment");
        assert_eq!(r.assignments[0].member_id, s(member));
        assert!(r.assignments[0].assignment.windows(6).any(|w| w == b"golden"), "{file}");
    }

    let (_, Request::Heartbeat(r)) = load("heartbeat_v4_kafka-python.bin") else { panic!() };
    assert_eq!((r.generation_id, r.member_id.clone()), (1, s("member-0")));

    let (_, Request::OffsetFetch(r)) = load("offset_fetch_v9_librdkafka.bin") else { panic!() };
    assert_eq!(r.groups[0].group_id.0, s("golden-group"));
    assert!(r.require_stable);
    let topics = r.groups[0].topics.as_ref().expect("topics");
    assert_eq!(topics[0].partition_indexes, vec![0]);

    let (_, Request::OffsetCommit(r)) = load("offset_commit_v8_kafka-python.bin") else { panic!() };
    assert_eq!(r.generation_id_or_member_epoch, 1);
    let p = &r.topics[0].partitions[0];
    assert_eq!((p.partition_index, p.committed_offset), (0, 0));

    let (_, Request::LeaveGroup(r)) = load("leave_group_v1_librdkafka.bin") else { panic!() };
    assert_eq!(r.member_id, s("member-1"), "v0–v2: one member id");
    let (_, Request::LeaveGroup(r)) = load("leave_group_v5_kafka-python.bin") else { panic!() };
    assert_eq!(r.members[0].member_id, s("member-0"), "v3+: a members array");
}

#[test]
fn kafka_2x_era_versions_from_kafka_python_pinned_to_old_brokers() {
    let file = "list_offsets_v0_kafka-python-old.bin";
    let (_, Request::ListOffsets(r)) = load(file) else { panic!() };
    let p = &r.topics[0].partitions[0];
    assert_eq!((r.replica_id.0, p.timestamp, p.max_num_offsets), (-1, -1, 1), "latest, one");

    let (_, Request::JoinGroup(r)) = load("join_group_v0_kafka-python-old.bin") else { panic!() };
    assert_eq!((r.session_timeout_ms, r.member_id.clone()), (30_000, s("")));
    assert_eq!(r.rebalance_timeout_ms, -1, "v0 has none: the broker takes the session timeout");
    let (_, Request::SyncGroup(r)) = load("sync_group_v0_kafka-python-old.bin") else { panic!() };
    assert_eq!(r.generation_id, 1);
    let (_, Request::Heartbeat(r)) = load("heartbeat_v0_kafka-python-old.bin") else { panic!() };
    assert_eq!(r.generation_id, 1);

    // Outside group management: generation -1 and no member (v1), or neither field (v0).
    for (file, version) in
        [("offset_commit_v1_kafka-python-old.bin", 1), ("offset_commit_v0_kafka-python-old.bin", 0)]
    {
        let (header, Request::OffsetCommit(r)) = load(file) else { panic!("{file}") };
        assert_eq!(header.api_version, version);
        assert_eq!((r.generation_id_or_member_epoch, r.member_id.clone()), (-1, s("")), "{file}");
        let p = &r.topics[0].partitions[0];
        assert_eq!((p.committed_offset, p.committed_metadata.clone()), (7, Some(s("old"))));
        assert_eq!(p.commit_timestamp, -1, "{file}: the broker's clock");
    }
    let (_, Request::OffsetFetch(r)) = load("offset_fetch_v0_kafka-python-old.bin") else {
        panic!()
    };
    assert_eq!(r.group_id.0, s("golden-group"));
    assert_eq!(r.topics.expect("v0 names its partitions")[0].partition_indexes, vec![0]);
}
