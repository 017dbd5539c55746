//! The request versions Kafka 4.0 removed (KIP-896) and Kafka 3.9 still serves, each sent
//! at its own version through the raw client and checked against Kafka 3.9's answers:
//! a Kafka 2.x-era group member (JoinGroup v0, OffsetCommit v1 and v0, OffsetFetch v0)
//! that resumes exactly, also after a restart; ListOffsets v0's offset lists; OffsetCommit
//! v1's commit timestamp dating the offset's expiry; CreateTopics v0/v1, DeleteTopics v0
//! and DescribeConfigs v0; ApiVersions with the new minimums while Produce < 3 and
//! Fetch < 4 stay refused; kafka-python pinned to `api_version=(0, 10, 0)`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::api_key::ApiKey;
use sluice_protocol::messages::{Request, Response};
use sluice_protocol::record::Compression;
use sluice_tests::{BrokerProcess, RawClient};

use crate::client::{batch, ensure_topic, name, produce};

const NO_DELAY: &[&str] =
    &["--override", "group.initial.rebalance.delay.ms=0", "--num-partitions", "3"];
const TOPIC: &str = "old-topic";
const UNKNOWN_MEMBER_ID: i16 = 25;
const ILLEGAL_GENERATION: i16 = 22;

fn s(v: &str) -> StrBytes {
    StrBytes::from(v.to_owned())
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// JoinGroup v0 (no rebalance timeout: Kafka takes the session timeout for it), retrying
/// COORDINATOR_LOAD_IN_PROGRESS as clients do.
fn join_v0(c: &mut RawClient, group: &str, member: &str) -> JoinGroupResponse {
    let mut r = JoinGroupRequest::default();
    r.group_id = GroupId(s(group));
    r.session_timeout_ms = 10_000;
    r.member_id = s(member);
    r.protocol_type = s("consumer");
    let mut p = JoinGroupRequestProtocol::default();
    p.name = s("range");
    p.metadata = Bytes::from_static(b"subscription");
    r.protocols = vec![p];
    loop {
        match c.call(0, Request::JoinGroup(r.clone())) {
            Response::JoinGroup(j) if j.error_code == 14 => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Response::JoinGroup(j) => return j,
            other => panic!("{other:?}"),
        }
    }
}

fn sync_v0(c: &mut RawClient, group: &str, generation: i32, member: &str) -> SyncGroupResponse {
    let mut r = SyncGroupRequest::default();
    r.group_id = GroupId(s(group));
    r.generation_id = generation;
    r.member_id = s(member);
    let mut a = SyncGroupRequestAssignment::default();
    a.member_id = s(member);
    a.assignment = Bytes::from_static(b"all three partitions");
    r.assignments = vec![a];
    let Response::SyncGroup(r) = c.call(0, Request::SyncGroup(r)) else { panic!("sync") };
    r
}

/// One OffsetCommit of `(partition, offset, metadata, commit_timestamp)` entries at
/// `version`; the error codes in request order.
fn commit(
    c: &mut RawClient,
    version: i16,
    group: &str,
    generation: i32,
    member: &str,
    entries: &[(i32, i64, &str, i64)],
) -> Vec<i16> {
    let mut t = OffsetCommitRequestTopic::default();
    t.name = name(TOPIC);
    t.partitions = entries
        .iter()
        .map(|&(partition, offset, metadata, timestamp)| {
            let mut p = OffsetCommitRequestPartition::default();
            p.partition_index = partition;
            p.committed_offset = offset;
            p.committed_metadata = Some(s(metadata));
            if version == 1 {
                p.commit_timestamp = timestamp;
            }
            p
        })
        .collect();
    let mut r = OffsetCommitRequest::default();
    r.group_id = GroupId(s(group));
    if version >= 1 {
        r.generation_id_or_member_epoch = generation;
        r.member_id = s(member);
    }
    r.topics = vec![t];
    let Response::OffsetCommit(r) = c.call(version, Request::OffsetCommit(r)) else {
        panic!("commit")
    };
    r.topics[0].partitions.iter().map(|p| p.error_code).collect()
}

/// OffsetFetch of partitions 0..3 at `version`: (error, offset, metadata) for each.
fn fetch_offsets(c: &mut RawClient, version: i16, group: &str) -> Vec<(i16, i64, String)> {
    let mut t = OffsetFetchRequestTopic::default();
    t.name = name(TOPIC);
    t.partition_indexes = vec![0, 1, 2];
    let mut r = OffsetFetchRequest::default();
    r.group_id = GroupId(s(group));
    r.topics = Some(vec![t]);
    let Response::OffsetFetch(r) = c.call(version, Request::OffsetFetch(r)) else {
        panic!("offset fetch")
    };
    assert_eq!(r.topics.len(), 1, "{r:?}");
    r.topics[0]
        .partitions
        .iter()
        .map(|p| {
            let metadata = p.metadata.as_deref().unwrap_or("<null>").to_owned();
            (p.error_code, p.committed_offset, metadata)
        })
        .collect()
}

#[test]
fn a_kafka_2x_member_joins_v0_commits_v1_and_v0_and_resumes_with_offset_fetch_v0() {
    let mut broker = BrokerProcess::start(NO_DELAY);
    let mut c = RawClient::connect(broker.addr);
    ensure_topic(&mut c, TOPIC);

    // JoinGroup v0 gets its member id in the same round (no MEMBER_ID_REQUIRED before v4).
    let j = join_v0(&mut c, "legacy", "");
    assert_eq!(j.error_code, 0, "{j:?}");
    let member = j.member_id.to_string();
    assert_eq!((j.leader.as_str(), j.generation_id), (member.as_str(), 1));
    let sync = sync_v0(&mut c, "legacy", 1, &member);
    assert_eq!((sync.error_code, sync.assignment.as_ref()), (0, &b"all three partitions"[..]));

    // v1 commits carry the generation and the member: checked as from v2 on. Partition 0
    // takes the coordinator's clock (-1), partition 1 an explicit commit time; metadata is
    // bytes as sent, a NUL included (as confluent-kafka sends it).
    let codes =
        commit(&mut c, 1, "legacy", 1, &member, &[(0, 42, "m0", -1), (1, 7, "m1\0", now_ms())]);
    assert_eq!(codes, [0, 0]);
    assert_eq!(commit(&mut c, 1, "legacy", 2, &member, &[(0, 43, "x", -1)]), [ILLEGAL_GENERATION]);
    assert_eq!(
        commit(&mut c, 1, "legacy", 1, "stranger", &[(0, 44, "x", -1)]),
        [UNKNOWN_MEMBER_ID]
    );
    // v0 has no member id: refused while the group has members, as Kafka's coordinator
    // refuses a commit without one.
    assert_eq!(commit(&mut c, 0, "legacy", -1, "", &[(2, 99, "v0", -1)]), [UNKNOWN_MEMBER_ID]);

    let expected_v1 =
        vec![(0, 42, "m0".to_owned()), (0, 7, "m1\0".to_owned()), (0, -1, String::new())];
    assert_eq!(fetch_offsets(&mut c, 0, "legacy"), expected_v1, "OffsetFetch v0");

    // The member leaves; an empty group takes v0 commits.
    let mut leave = LeaveGroupRequest::default();
    leave.group_id = GroupId(s("legacy"));
    leave.member_id = s(&member);
    let Response::LeaveGroup(l) = c.call(0, Request::LeaveGroup(leave)) else { panic!() };
    assert_eq!(l.error_code, 0);
    assert_eq!(commit(&mut c, 0, "legacy", -1, "", &[(2, 99, "v0 meta", -1)]), [0]);
    let expected =
        vec![(0, 42, "m0".to_owned()), (0, 7, "m1\0".to_owned()), (0, 99, "v0 meta".to_owned())];
    assert_eq!(fetch_offsets(&mut c, 0, "legacy"), expected, "OffsetFetch v0 after v0 commit");
    // One store: the newest OffsetFetch sees the same offsets, v0's included.
    assert_eq!(fetch_offsets(&mut c, 7, "legacy"), expected, "OffsetFetch v7");

    // A new member of the group resumes exactly where the last one committed, and so
    // does one after a graceful restart and after a SIGKILL.
    drop(c);
    for restart in ["none", "sigterm", "sigkill"] {
        match restart {
            "sigterm" => {
                broker.stop();
                broker.restart();
            }
            "sigkill" => {
                broker.kill();
                broker.restart();
            }
            _ => {}
        }
        let mut c = RawClient::connect(broker.addr);
        let j = join_v0(&mut c, "legacy", "");
        assert_eq!(j.error_code, 0, "after {restart}: {j:?}");
        let m = j.member_id.to_string();
        assert_eq!(sync_v0(&mut c, "legacy", j.generation_id, &m).error_code, 0);
        assert_eq!(fetch_offsets(&mut c, 0, "legacy"), expected, "after {restart}");
        let mut leave = LeaveGroupRequest::default();
        leave.group_id = GroupId(s("legacy"));
        leave.member_id = s(&m);
        let Response::LeaveGroup(l) = c.call(0, Request::LeaveGroup(leave)) else { panic!() };
        assert_eq!(l.error_code, 0);
    }
}

#[test]
fn offset_commit_v1_commit_timestamp_dates_the_offsets_expiry() {
    let broker = BrokerProcess::start(&[
        "--override",
        "offsets.retention.minutes=1",
        "--override",
        "offsets.retention.check.interval.ms=100",
        "--num-partitions",
        "3",
    ]);
    let mut c = RawClient::connect(broker.addr);
    ensure_topic(&mut c, TOPIC);
    // A consumer outside group management (generation -1): its offsets expire a retention
    // after their commit time. Partition 0 says it committed two minutes ago, partition 1
    // takes the coordinator's clock, partition 2 says now.
    let two_minutes_ago = now_ms() - 120_000;
    let entries = [(0, 5, "old", two_minutes_ago), (1, 6, "now", -1), (2, 7, "explicit", now_ms())];
    loop {
        let codes = commit(&mut c, 1, "stamped", -1, "", &entries);
        if codes.iter().all(|&e| e == 14) {
            std::thread::sleep(Duration::from_millis(20)); // still loading
            continue;
        }
        assert_eq!(codes, [0, 0, 0]);
        break;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let offsets = fetch_offsets(&mut c, 1, "stamped");
        if offsets[0].1 == -1 {
            assert_eq!(
                offsets[1..],
                [(0, 6, "now".to_owned()), (0, 7, "explicit".to_owned())],
                "only the offset dated two minutes back expired"
            );
            break;
        }
        assert!(Instant::now() < deadline, "the offset committed 2 minutes back never expired");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn list_offsets_v0(
    c: &mut RawClient,
    topic: &str,
    partition: i32,
    timestamp: i64,
    max: i32,
) -> (i16, Vec<i64>) {
    let mut p = ListOffsetsPartition::default();
    p.partition_index = partition;
    p.timestamp = timestamp;
    p.max_num_offsets = max;
    let mut t = ListOffsetsTopic::default();
    t.name = name(topic);
    t.partitions = vec![p];
    let mut r = ListOffsetsRequest::default();
    r.replica_id = BrokerId(-1);
    r.topics = vec![t];
    let Response::ListOffsets(r) = c.call(0, Request::ListOffsets(r)) else { panic!() };
    let p = &r.topics[0].partitions[0];
    assert_eq!((p.offset, p.timestamp), (-1, -1), "v0 has no single offset");
    (p.error_code, p.old_style_offsets.clone())
}

#[test]
fn list_offsets_v0_answers_old_style_offset_lists() {
    // Every batch rolls a segment, so the log is segments at 0, 3 and 6 and its end at 9.
    let broker = BrokerProcess::start(&["--override", "sluice.internal.log.segment.bytes=150"]);
    let mut c = RawClient::connect(broker.addr);
    ensure_topic(&mut c, "segmented");
    assert_eq!(list_offsets_v0(&mut c, "segmented", 0, -1, 10), (0, vec![0]), "empty log");
    let mut between = 0;
    for i in 0..3 {
        assert_eq!(produce(&mut c, "segmented", batch("v", 3, Compression::None), 1), (0, i * 3));
        if i == 0 {
            // A time after the first segment's last write and before the others'.
            std::thread::sleep(Duration::from_millis(50));
            between = now_ms();
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    // Latest: the log end first, then each segment's start, newest first.
    assert_eq!(list_offsets_v0(&mut c, "segmented", 0, -1, 1), (0, vec![9]));
    assert_eq!(list_offsets_v0(&mut c, "segmented", 0, -1, 2), (0, vec![9, 6]));
    assert_eq!(list_offsets_v0(&mut c, "segmented", 0, -1, 10), (0, vec![9, 6, 3, 0]));
    // Earliest: the log start alone, whatever the maximum.
    assert_eq!(list_offsets_v0(&mut c, "segmented", 0, -2, 10), (0, vec![0]));
    assert_eq!(list_offsets_v0(&mut c, "segmented", 0, -2, 0), (0, vec![]));
    // By time: the segments last written at or before it, newest first.
    assert_eq!(list_offsets_v0(&mut c, "segmented", 0, between, 10), (0, vec![0]));
    assert_eq!(list_offsets_v0(&mut c, "segmented", 0, 1, 10), (0, vec![]), "before all");
    let later = now_ms() + 3_600_000;
    assert_eq!(list_offsets_v0(&mut c, "segmented", 0, later, 3), (0, vec![9, 6, 3]));
    // Errors are Kafka's.
    assert_eq!(list_offsets_v0(&mut c, "segmented", 9, -1, 1), (3, vec![]), "no partition 9");
    assert_eq!(list_offsets_v0(&mut c, "segmented", 0, -1, -1), (-1, vec![]), "negative max");
    // After DeleteRecords the log start leads the earliest answer.
    assert_eq!(crate::client::delete_records(&mut c, "segmented", 4), (0, 4));
    assert_eq!(list_offsets_v0(&mut c, "segmented", 0, -2, 10), (0, vec![4]));
}

fn create_topic(name_: &str, config: Option<(&str, &str)>, partitions: i32) -> CreatableTopic {
    let mut t = CreatableTopic::default();
    t.name = name(name_);
    t.num_partitions = partitions;
    t.replication_factor = 1;
    if let Some((k, v)) = config {
        let mut cfg = CreatableTopicConfig::default();
        cfg.name = s(k);
        cfg.value = Some(s(v));
        t.configs = vec![cfg];
    }
    t
}

fn create(
    c: &mut RawClient,
    version: i16,
    topics: Vec<CreatableTopic>,
    validate: bool,
) -> Vec<(i16, Option<String>)> {
    let mut r = CreateTopicsRequest::default();
    r.topics = topics;
    r.timeout_ms = 10_000;
    r.validate_only = validate;
    let Response::CreateTopics(r) = c.call(version, Request::CreateTopics(r)) else { panic!() };
    r.topics.iter().map(|t| (t.error_code, t.error_message.as_deref().map(str::to_owned))).collect()
}

fn describe_v0(
    c: &mut RawClient,
    topic: &str,
) -> kafka_protocol::messages::describe_configs_response::DescribeConfigsResult {
    let mut res = DescribeConfigsResource::default();
    res.resource_type = 2;
    res.resource_name = s(topic);
    res.configuration_keys = Some(vec![s("retention.ms"), s("segment.bytes")]);
    let mut r = DescribeConfigsRequest::default();
    r.resources = vec![res];
    let Response::DescribeConfigs(r) = c.call(0, Request::DescribeConfigs(r)) else { panic!() };
    r.results.into_iter().next().expect("one result")
}

fn delete_v0(c: &mut RawClient, topic: &str) -> i16 {
    let mut r = DeleteTopicsRequest::default();
    r.topic_names = vec![name(topic)];
    r.timeout_ms = 10_000;
    let Response::DeleteTopics(r) = c.call(0, Request::DeleteTopics(r)) else { panic!() };
    r.responses[0].error_code
}

#[test]
fn create_topics_v0_v1_describe_configs_v0_and_delete_topics_v0() {
    let broker = BrokerProcess::start(&["--auto-create-topics", "false"]);
    let mut c = RawClient::connect(broker.addr);
    // v1: validate_only checks without creating, and errors come with a message.
    let r = create(
        &mut c,
        1,
        vec![create_topic("checked", None, 2), create_topic("bad", None, 0)],
        true,
    );
    assert_eq!(r[0], (0, None));
    assert_eq!(r[1].0, 37, "INVALID_PARTITIONS");
    assert!(r[1].1.as_deref().is_some_and(|m| !m.is_empty()), "v1 carries a message: {r:?}");
    assert_eq!(describe_v0(&mut c, "checked").error_code, 3, "validate_only created nothing");
    // v0 has no validate_only: it creates.
    let r = create(&mut c, 0, vec![create_topic("made", Some(("retention.ms", "1234")), 2)], false);
    assert_eq!(r[0].0, 0, "{r:?}");
    assert_eq!(create(&mut c, 0, vec![create_topic("made", None, 1)], false)[0].0, 36, "exists");

    // DescribeConfigs v0 tells is_default instead of a source.
    let d = describe_v0(&mut c, "made");
    assert_eq!(d.error_code, 0);
    let entry = |n: &str| d.configs.iter().find(|e| e.name.as_str() == n).expect(n).clone();
    let retention = entry("retention.ms");
    assert_eq!((retention.value.as_deref(), retention.is_default), (Some("1234"), false));
    let segment = entry("segment.bytes");
    assert_eq!((segment.value.as_deref(), segment.is_default), (Some("1073741824"), true));
    assert!(retention.synonyms.is_empty() && !retention.read_only);

    // DeleteTopics v0.
    assert_eq!(delete_v0(&mut c, "made"), 0);
    assert_eq!(delete_v0(&mut c, "made"), 3, "UNKNOWN_TOPIC_OR_PARTITION");
    assert_eq!(describe_v0(&mut c, "made").error_code, 3);
}

#[test]
fn api_versions_advertises_kafka_39_minimums_and_message_formats_v0_v1_stay_refused() {
    let broker = BrokerProcess::start(&[]);
    let mut c = RawClient::connect(broker.addr);
    let Response::ApiVersions(v) = c.call(3, Request::ApiVersions(ApiVersionsRequest::default()))
    else {
        panic!()
    };
    let range = |key: ApiKey| {
        let k = v.api_keys.iter().find(|k| k.api_key == key as i16).expect("listed");
        (k.min_version, k.max_version)
    };
    assert_eq!(range(ApiKey::ListOffsets), (0, 9));
    assert_eq!(range(ApiKey::OffsetCommit), (0, 9));
    assert_eq!(range(ApiKey::OffsetFetch), (0, 9));
    assert_eq!(range(ApiKey::CreateTopics), (0, 7));
    assert_eq!(range(ApiKey::DeleteTopics), (0, 6));
    assert_eq!(range(ApiKey::DescribeConfigs), (0, 4));
    assert_eq!(range(ApiKey::Produce), (0, 11), "advertised from v0 for old librdkafka");
    assert_eq!(range(ApiKey::Fetch), (4, 17));

    // Produce v2 (message format v1): UNSUPPORTED_VERSION per partition.
    ensure_topic(&mut c, "t");
    let req = crate::client::produce_request("t", 0, batch("old", 1, Compression::None), 1);
    let r = crate::client::produce_response(&mut c, 2, req);
    assert_eq!(r.responses[0].partition_responses[0].error_code, 35);
    // Fetch v3 is not advertised: the connection is closed, as Kafka 4.0 does.
    let f = crate::client::fetch_request("t", 0, 0, 0);
    c.send(3, &Request::Fetch(f));
    assert!(c.read_frame().is_none(), "Fetch v3 closes the connection");
}

#[test]
fn kafka_python_pinned_to_old_brokers_lists_offsets_commits_and_administers() {
    let broker = BrokerProcess::start(&["--override", "sluice.internal.log.segment.bytes=150"]);
    let mut c = RawClient::connect(broker.addr);
    ensure_topic(&mut c, "pinned");
    for i in 0..4 {
        assert_eq!(produce(&mut c, "pinned", batch("p", 5, Compression::None), 1), (0, i * 5));
    }
    let stdout = crate::interop::python_with_args("kafka_python_old.py", &broker, &["pinned"]);
    assert!(stdout.contains("beginning 0 end 20"), "{stdout}");
    // The pinned clients sent the old versions (none of which Kafka 4.0 serves).
    for sent in [
        "sent ListOffsetsRequest v0",
        "sent OffsetCommitRequest v0",
        "sent OffsetCommitRequest v1",
        "sent OffsetFetchRequest v0",
        "sent CreateTopicsRequest v0",
        "sent DeleteTopicsRequest v0",
        "sent DescribeConfigsRequest v0",
    ] {
        assert!(stdout.contains(sent), "{sent} missing:\n{stdout}");
    }
}
