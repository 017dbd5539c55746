//! The group APIs under hostile requests: as many elements as a request may hold, each
//! naming the same partition, group, protocol or state, or a topic name as long as Kafka
//! allows. The coordinator must answer each in memory proportional to the request (and to
//! the state it already holds, answered once), keep committed offsets, and keep serving
//! a normal client meanwhile.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::messages::{Request, Response};
use sluice_tests::hostile::{allowed_growth, attack, encode_frame, AttackCost, Probe};
use sluice_tests::{BrokerProcess, RawClient};

use crate::client::{create_request, name};

/// Elements a request may hold in all (the decoder's cap, 2^18), less a few for the
/// arrays around the repeated one.
const MANY: usize = (1 << 18) - 16;
/// The longest topic name Kafka allows.
const LONG_NAME_BYTES: usize = 249;
/// A normal client's round trip during an attack, at the 99th percentile (the machine is
/// shared and the broker is a debug build).
const PROBE_P99: Duration = Duration::from_secs(1);

fn s(v: &str) -> StrBytes {
    StrBytes::from(v.to_owned())
}

/// A broker whose coordinator has loaded `__consumer_offsets`.
fn broker() -> BrokerProcess {
    let b = BrokerProcess::start(&["--override", "group.initial.rebalance.delay.ms=0"]);
    let mut c = RawClient::connect(b.addr);
    let mut g = OffsetFetchRequestGroup::default();
    g.group_id = GroupId(s("-"));
    g.topics = None;
    let mut r = OffsetFetchRequest::default();
    r.groups = vec![g];
    loop {
        let Response::OffsetFetch(f) = c.call(9, Request::OffsetFetch(r.clone())) else {
            panic!("fetch")
        };
        if f.groups[0].error_code != LOADING {
            return b;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `frame` `times` times while a probe runs; asserts the memory bound and the
/// probe's latency, and prints what the attack cost.
fn assert_bounded(b: &mut BrokerProcess, what: &str, frame: &[u8], times: usize) -> AttackCost {
    let probe = Probe::start(b.addr);
    let cost = attack(b, frame, times, true);
    let latencies = probe.finish();
    let bound = allowed_growth(frame.len());
    let (p50, p99) = (latencies.quantile(0.5), latencies.quantile(0.99));
    eprintln!(
        "{what}: frame {} B, peak growth {} B ({:.2} of 4x frame + 64 MiB), largest response \
         {} B, {times} requests in {:?}, probe p50 {p50:?} p99 {p99:?} max {:?}",
        frame.len(),
        cost.peak_growth,
        cost.peak_growth as f64 / bound as f64,
        cost.largest_response,
        cost.elapsed,
        latencies.quantile(1.0),
    );
    assert!(cost.peak_growth <= bound, "{what}: grew {} > {bound} bytes", cost.peak_growth);
    assert!(p99 <= PROBE_P99, "{what}: probe p99 {p99:?}");
    cost
}

fn create_topic(c: &mut RawClient, topic: &str, partitions: i32) {
    let Response::CreateTopics(r) =
        c.call(5, Request::CreateTopics(create_request(topic, partitions)))
    else {
        panic!("create topics")
    };
    assert_eq!(r.topics[0].error_code, 0, "create {topic}");
}

fn commit_request(
    group: &str,
    topic: &str,
    partitions: Vec<OffsetCommitRequestPartition>,
) -> Request {
    let mut t = OffsetCommitRequestTopic::default();
    t.name = name(topic);
    t.partitions = partitions;
    let mut r = OffsetCommitRequest::default();
    r.group_id = GroupId(s(group));
    r.generation_id_or_member_epoch = -1;
    r.topics = vec![t];
    Request::OffsetCommit(r)
}

/// COORDINATOR_LOAD_IN_PROGRESS: a broker just started answers it until it has read
/// `__consumer_offsets`.
const LOADING: i16 = 14;

/// Commits, once the coordinator has loaded; asserts that every entry was committed.
fn commit(c: &mut RawClient, request: Request) {
    loop {
        let Response::OffsetCommit(r) = c.call(9, request.clone()) else { panic!("commit") };
        let errors: Vec<i16> =
            r.topics.iter().flat_map(|t| t.partitions.iter().map(|p| p.error_code)).collect();
        if errors.contains(&LOADING) {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        assert!(errors.iter().all(|e| *e == 0), "commit errors {errors:?}");
        return;
    }
}

fn entry(partition: i32, offset: i64, metadata: &str) -> OffsetCommitRequestPartition {
    let mut p = OffsetCommitRequestPartition::default();
    p.partition_index = partition;
    p.committed_offset = offset;
    p.committed_metadata = Some(s(metadata));
    p
}

/// The committed offsets of `group` for `topic`, by partition.
fn committed(
    c: &mut RawClient,
    group: &str,
    topic: &str,
    partitions: Vec<i32>,
) -> Vec<(i64, String)> {
    let mut t = OffsetFetchRequestTopics::default();
    t.name = name(topic);
    t.partition_indexes = partitions;
    let mut g = OffsetFetchRequestGroup::default();
    g.group_id = GroupId(s(group));
    g.topics = Some(vec![t]);
    let mut r = OffsetFetchRequest::default();
    r.groups = vec![g];
    let r = loop {
        let Response::OffsetFetch(r) = c.call(9, Request::OffsetFetch(r.clone())) else {
            panic!("fetch")
        };
        if r.groups[0].error_code != LOADING {
            break r;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(r.groups[0].error_code, 0);
    r.groups[0].topics[0]
        .partitions
        .iter()
        .map(|p| (p.committed_offset, p.metadata.as_deref().unwrap_or("").to_owned()))
        .collect()
}

/// Records in `__consumer_offsets` (its log end offset).
fn offsets_log_end(c: &mut RawClient) -> i64 {
    let mut p = ListOffsetsPartition::default();
    p.timestamp = -1;
    let mut t = ListOffsetsTopic::default();
    t.name = name("__consumer_offsets");
    t.partitions = vec![p];
    let mut r = ListOffsetsRequest::default();
    r.replica_id = BrokerId(-1);
    r.topics = vec![t];
    let Response::ListOffsets(r) = c.call(7, Request::ListOffsets(r)) else { panic!("list") };
    let p = &r.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    p.offset
}

#[test]
fn offset_commit_of_one_partition_named_a_quarter_million_times_is_one_record() {
    let mut b = broker();
    let mut c = RawClient::connect(b.addr);
    create_topic(&mut c, "t", 1);
    let log_before = offsets_log_end(&mut c);
    let entries: Vec<_> = (0..MANY as i64).map(|i| entry(0, i, "")).collect();
    let frame = encode_frame(9, &commit_request("g", "t", entries));
    assert_bounded(&mut b, "OffsetCommit of one partition repeated", &frame, 3);
    let last = MANY as i64 - 1;
    assert_eq!(committed(&mut c, "g", "t", vec![0]), [(last, String::new())]);
    // One record per request, not one per entry.
    assert!(offsets_log_end(&mut c) - log_before <= 3);
    b.stop();
    b.restart();
    let mut c = RawClient::connect(b.addr);
    assert_eq!(committed(&mut c, "g", "t", vec![0]), [(last, String::new())]);
}

#[test]
fn offset_commit_of_a_quarter_million_partitions_of_an_unknown_long_named_topic() {
    let mut b = broker();
    let topic = "x".repeat(LONG_NAME_BYTES);
    let entries: Vec<_> = (0..MANY as i32).map(|i| entry(i, 1, "")).collect();
    let frame = encode_frame(9, &commit_request("g", &topic, entries));
    assert_bounded(&mut b, "OffsetCommit of an unknown topic's partitions", &frame, 3);
}

#[test]
fn offset_fetch_of_one_group_or_one_partition_named_many_times_answers_it_once() {
    let mut b = broker();
    let mut c = RawClient::connect(b.addr);
    let partitions = 1000;
    create_topic(&mut c, "wide", partitions);
    // 4 MB of state: every partition with the most metadata a commit may carry.
    let metadata = "m".repeat(4096);
    let entries = (0..partitions).map(|p| entry(p, i64::from(p), &metadata)).collect();
    commit(&mut c, commit_request("g", "wide", entries));

    // The whole group (null topics), named as often as the request allows.
    let mut g = OffsetFetchRequestGroup::default();
    g.group_id = GroupId(s("g"));
    g.topics = None;
    let mut r = OffsetFetchRequest::default();
    r.groups = vec![g; MANY];
    let frame = encode_frame(9, &Request::OffsetFetch(r));
    let cost = assert_bounded(&mut b, "OffsetFetch of one group repeated", &frame, 3);
    let once = 4096 * partitions as usize;
    let size = cost.largest_response;
    assert!(size > once && size < 2 * once, "the group once: {size} B");

    // One partition with 4 KiB of metadata, named as often as the request allows.
    let mut t = OffsetFetchRequestTopics::default();
    t.name = name("wide");
    t.partition_indexes = vec![7; MANY];
    let mut g = OffsetFetchRequestGroup::default();
    g.group_id = GroupId(s("g"));
    g.topics = Some(vec![t]);
    let mut r = OffsetFetchRequest::default();
    r.groups = vec![g];
    let frame = encode_frame(9, &Request::OffsetFetch(r));
    let cost = assert_bounded(&mut b, "OffsetFetch of one partition repeated", &frame, 3);
    assert!(cost.largest_response < 8 << 10, "the partition once: {} B", cost.largest_response);
    assert_eq!(committed(&mut c, "g", "wide", vec![7]), [(7, metadata)]);
}

#[test]
fn offset_fetch_of_a_quarter_million_partitions_of_a_long_named_topic() {
    let mut b = broker();
    let mut t = OffsetFetchRequestTopics::default();
    t.name = name(&"x".repeat(LONG_NAME_BYTES));
    t.partition_indexes = (0..MANY as i32).collect();
    let mut g = OffsetFetchRequestGroup::default();
    g.group_id = GroupId(s("g"));
    g.topics = Some(vec![t]);
    let mut r = OffsetFetchRequest::default();
    r.groups = vec![g];
    let frame = encode_frame(9, &Request::OffsetFetch(r));
    assert_bounded(&mut b, "OffsetFetch of a long-named topic's partitions", &frame, 3);
}

#[test]
fn offset_delete_of_a_quarter_million_partitions_of_a_long_named_topic() {
    let mut b = broker();
    let mut c = RawClient::connect(b.addr);
    create_topic(&mut c, "t", 1);
    commit(&mut c, commit_request("g", "t", vec![entry(0, 5, "")]));
    let mut t = OffsetDeleteRequestTopic::default();
    t.name = name(&"x".repeat(LONG_NAME_BYTES));
    t.partitions = (0..MANY as i32)
        .map(|i| {
            let mut p = OffsetDeleteRequestPartition::default();
            p.partition_index = i;
            p
        })
        .collect();
    let mut r = OffsetDeleteRequest::default();
    r.group_id = GroupId(s("g"));
    r.topics = vec![t];
    let frame = encode_frame(0, &Request::OffsetDelete(r));
    assert_bounded(&mut b, "OffsetDelete of a long-named topic's partitions", &frame, 3);
    assert_eq!(committed(&mut c, "g", "t", vec![0]), [(5, String::new())]);
}

/// Makes `group` a stable group of one member whose subscription and assignment are
/// `bytes` long.
fn stable_group(c: &mut RawClient, group: &str, bytes: usize) {
    let mut p = JoinGroupRequestProtocol::default();
    p.name = s("range");
    p.metadata = Bytes::from(vec![1; bytes]);
    let mut r = JoinGroupRequest::default();
    r.group_id = GroupId(s(group));
    r.session_timeout_ms = 60_000;
    r.rebalance_timeout_ms = 60_000;
    r.protocol_type = s("consumer");
    r.protocols = vec![p];
    let Response::JoinGroup(j) = c.call(3, Request::JoinGroup(r)) else { panic!("join") };
    assert_eq!(j.error_code, 0);
    let mut a = SyncGroupRequestAssignment::default();
    a.member_id = j.member_id.clone();
    a.assignment = Bytes::from(vec![2; bytes]);
    let mut r = SyncGroupRequest::default();
    r.group_id = GroupId(s(group));
    r.generation_id = j.generation_id;
    r.member_id = j.member_id;
    r.assignments = vec![a];
    let Response::SyncGroup(sync) = c.call(3, Request::SyncGroup(r)) else { panic!("sync") };
    assert_eq!(sync.error_code, 0);
}

#[test]
fn describe_groups_of_one_group_named_a_quarter_million_times_describes_it_once() {
    let mut b = broker();
    let mut c = RawClient::connect(b.addr);
    stable_group(&mut c, "g", 256 << 10);
    let mut r = DescribeGroupsRequest::default();
    r.groups = vec![GroupId(s("g")); MANY];
    let frame = encode_frame(5, &Request::DescribeGroups(r));
    let cost = assert_bounded(&mut b, "DescribeGroups of one group repeated", &frame, 3);
    assert!(cost.largest_response < 1 << 20, "the group once: {} B", cost.largest_response);
}

#[test]
fn list_groups_filtering_on_a_state_named_a_quarter_million_times() {
    let mut b = broker();
    let mut c = RawClient::connect(b.addr);
    create_topic(&mut c, "t", 1);
    for i in 0..500 {
        commit(&mut c, commit_request(&format!("g{i}"), "t", vec![entry(0, 1, "")]));
    }
    let mut r = ListGroupsRequest::default();
    r.states_filter = vec![s("Empty"); MANY];
    let frame = encode_frame(4, &Request::ListGroups(r));
    let cost = assert_bounded(&mut b, "ListGroups with a state filter repeated", &frame, 3);
    assert!(cost.elapsed < Duration::from_secs(30), "{:?}", cost.elapsed);
}

#[test]
fn join_group_with_one_protocol_named_a_quarter_million_times() {
    let mut b = broker();
    let mut p = JoinGroupRequestProtocol::default();
    p.name = s("range");
    let mut r = JoinGroupRequest::default();
    r.group_id = GroupId(s("g"));
    r.session_timeout_ms = 60_000;
    // Each join rebalances the group, which waits this long for the members before.
    r.rebalance_timeout_ms = 200;
    r.protocol_type = s("consumer");
    r.protocols = vec![p; MANY];
    // v3: no MEMBER_ID_REQUIRED round, so each request adds a member.
    let frame = encode_frame(3, &Request::JoinGroup(r));
    assert_bounded(&mut b, "JoinGroup with a protocol repeated", &frame, 3);
}

#[test]
fn sync_group_with_a_quarter_million_assignments() {
    let mut b = broker();
    let mut c = RawClient::connect(b.addr);
    let mut p = JoinGroupRequestProtocol::default();
    p.name = s("range");
    let mut r = JoinGroupRequest::default();
    r.group_id = GroupId(s("g"));
    r.session_timeout_ms = 60_000;
    r.rebalance_timeout_ms = 60_000;
    r.protocol_type = s("consumer");
    r.protocols = vec![p];
    let Response::JoinGroup(j) = c.call(3, Request::JoinGroup(r)) else { panic!("join") };
    let mut a = SyncGroupRequestAssignment::default();
    a.member_id = s("not-a-member");
    let mut mine = SyncGroupRequestAssignment::default();
    mine.member_id = j.member_id.clone();
    mine.assignment = Bytes::from_static(b"mine");
    let mut assignments = vec![a; MANY - 1];
    assignments.push(mine);
    let mut r = SyncGroupRequest::default();
    r.group_id = GroupId(s("g"));
    r.generation_id = j.generation_id;
    r.member_id = j.member_id;
    r.assignments = assignments;
    let frame = encode_frame(3, &Request::SyncGroup(r));
    assert_bounded(&mut b, "SyncGroup with a quarter million assignments", &frame, 3);
}

#[test]
fn find_coordinator_of_a_quarter_million_keys() {
    let mut b = broker();
    let mut r = FindCoordinatorRequest::default();
    r.coordinator_keys = vec![s("g"); MANY];
    let frame = encode_frame(4, &Request::FindCoordinator(r.clone()));
    let cost = assert_bounded(&mut b, "FindCoordinator of one key repeated", &frame, 3);
    assert!(cost.largest_response < 1024, "the key once: {} B", cost.largest_response);
    r.coordinator_keys = (0..MANY).map(|i| s(&format!("g{i}"))).collect();
    let frame = encode_frame(4, &Request::FindCoordinator(r));
    assert_bounded(&mut b, "FindCoordinator of distinct keys", &frame, 3);
}

#[test]
fn delete_groups_of_one_group_named_a_quarter_million_times() {
    let mut b = broker();
    let mut c = RawClient::connect(b.addr);
    create_topic(&mut c, "t", 1);
    commit(&mut c, commit_request("keep", "t", vec![entry(0, 9, "")]));
    let mut r = DeleteGroupsRequest::default();
    r.groups_names = vec![GroupId(s("absent")); MANY];
    let frame = encode_frame(2, &Request::DeleteGroups(r));
    let cost = assert_bounded(&mut b, "DeleteGroups of one group repeated", &frame, 3);
    assert!(cost.largest_response < 1024, "the group once: {} B", cost.largest_response);
    assert_eq!(committed(&mut c, "keep", "t", vec![0]), [(9, String::new())]);
}

#[test]
fn clients_cannot_erase_committed_offsets_through_the_internal_topic() {
    use kafka_protocol::messages::delete_records_request::{
        DeleteRecordsPartition, DeleteRecordsTopic,
    };
    use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    let mut b = broker();
    let mut c = RawClient::connect(b.addr);
    create_topic(&mut c, "t", 1);
    commit(&mut c, commit_request("g", "t", vec![entry(0, 42, "m")]));
    let internal = "__consumer_offsets";

    let mut p = DeleteRecordsPartition::default();
    p.offset = -1;
    let mut t = DeleteRecordsTopic::default();
    t.name = name(internal);
    t.partitions = vec![p];
    let mut r = DeleteRecordsRequest::default();
    r.topics = vec![t];
    r.timeout_ms = 1000;
    let Response::DeleteRecords(r) = c.call(2, Request::DeleteRecords(r)) else { panic!() };
    assert_eq!(r.topics[0].partitions[0].error_code, 17, "INVALID_TOPIC_EXCEPTION");

    let mut r = DeleteTopicsRequest::default();
    r.topic_names = vec![name(internal)];
    r.timeout_ms = 1000;
    let Response::DeleteTopics(r) = c.call(4, Request::DeleteTopics(r)) else { panic!() };
    assert_eq!(r.responses[0].error_code, 17, "by name");

    let mut m = MetadataRequest::default();
    let mut mt = MetadataRequestTopic::default();
    mt.name = Some(name(internal));
    m.topics = Some(vec![mt]);
    let Response::Metadata(m) = c.call(12, Request::Metadata(m)) else { panic!() };
    let mut state = DeleteTopicState::default();
    state.topic_id = m.topics[0].topic_id;
    assert!(!state.topic_id.is_nil());
    let mut r = DeleteTopicsRequest::default();
    r.topics = vec![state];
    r.timeout_ms = 1000;
    let Response::DeleteTopics(r) = c.call(6, Request::DeleteTopics(r)) else { panic!() };
    assert_eq!(r.responses[0].error_code, 17, "by id");

    b.stop();
    b.restart();
    let mut c = RawClient::connect(b.addr);
    assert_eq!(committed(&mut c, "g", "t", vec![0]), [(42, "m".to_owned())]);
}
