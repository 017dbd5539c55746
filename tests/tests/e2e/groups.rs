//! Consumer groups end to end: every group API over the wire at its lowest and highest
//! advertised version, interop with confluent-kafka and kafka-python consumer groups
//! (tests/interop/*group*.py), and committed offsets resuming exactly across consumer
//! restarts, a broker SIGTERM and a broker SIGKILL.

use std::collections::BTreeSet;

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::messages::{Request, Response};
use sluice_tests::{BrokerProcess, RawClient};

use crate::client::ensure_topic;

const NO_DELAY: &[&str] =
    &["--override", "group.initial.rebalance.delay.ms=0", "--num-partitions", "6"];

fn s(v: &str) -> StrBytes {
    StrBytes::from(v.to_owned())
}

fn group(v: &str) -> GroupId {
    GroupId(s(v))
}

/// Runs an interop script; returns its stdout.
fn python(broker: &BrokerProcess, script: &str, args: &[&str]) -> String {
    crate::interop::python_with_args(script, broker, args)
}

#[test]
fn group_membership_with_confluent_kafka_two_three_leave_and_sigkill() {
    let broker = BrokerProcess::start(NO_DELAY);
    let out = python(&broker, "confluent_group.py", &["membership", "members"]);
    assert!(out.contains("killed member expelled"), "{out}");
}

#[test]
fn group_membership_and_resume_with_kafka_python() {
    let broker = BrokerProcess::start(NO_DELAY);
    python(&broker, "kafka_python_group.py", &["kp-members"]);
}

/// Consumes with a fresh confluent-kafka consumer, committing each record; returns the
/// (partition, offset) pairs it consumed.
fn consume(broker: &BrokerProcess, n: usize) -> Vec<(i32, i64)> {
    let out =
        python(broker, "confluent_group.py", &["consume", "resume", "resume", &n.to_string()]);
    out.lines()
        .map(|l| {
            let (p, o) = l.split_once(' ').expect("partition offset");
            (p.parse().unwrap(), o.parse().unwrap())
        })
        .collect()
}

#[test]
fn group_offsets_resume_exactly_across_consumer_restart_sigterm_and_sigkill() {
    let mut args = NO_DELAY.to_vec();
    args.extend(["--override", "log.flush.interval.messages=1"]);
    let mut broker = BrokerProcess::start(&args);
    python(&broker, "confluent_group.py", &["produce", "resume", "600"]);
    let mut seen = Vec::new();
    seen.extend(consume(&broker, 150));
    seen.extend(consume(&broker, 100));
    broker.stop();
    broker.restart();
    seen.extend(consume(&broker, 150));
    broker.kill();
    broker.restart();
    seen.extend(consume(&broker, 1000));
    let unique: BTreeSet<_> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "a committed record was delivered again");
    let all: BTreeSet<_> = (0..6).flat_map(|p| (0..100).map(move |o| (p, o))).collect();
    assert_eq!(unique, all, "every record consumed exactly once");
}

/// Joins, retrying COORDINATOR_LOAD_IN_PROGRESS (a broker just started answers it until it
/// has read `__consumer_offsets`) as clients do.
fn join(c: &mut RawClient, version: i16, member: &str) -> JoinGroupResponse {
    loop {
        c.send(version, &join_request(version, member));
        match c.receive(ApiKey::JoinGroup, version) {
            Response::JoinGroup(r) if r.error_code == 14 => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            Response::JoinGroup(r) => return r,
            other => panic!("{other:?}"),
        }
    }
}

fn join_request(version: i16, member: &str) -> Request {
    let mut r = JoinGroupRequest::default();
    r.group_id = group("raw");
    r.session_timeout_ms = 10_000;
    if version >= 1 {
        r.rebalance_timeout_ms = 10_000;
    }
    r.member_id = s(member);
    r.protocol_type = s("consumer");
    let mut p = JoinGroupRequestProtocol::default();
    p.name = s("range");
    p.metadata = Bytes::from_static(b"subscription bytes");
    r.protocols = vec![p];
    Request::JoinGroup(r)
}

fn sync_request(
    version: i16,
    generation: i32,
    member: &str,
    assignments: &[(&str, &[u8])],
) -> Request {
    let mut r = SyncGroupRequest::default();
    r.group_id = group("raw");
    r.generation_id = generation;
    r.member_id = s(member);
    if version >= 5 {
        r.protocol_type = Some(s("consumer"));
        r.protocol_name = Some(s("range"));
    }
    r.assignments = assignments
        .iter()
        .map(|(m, a)| {
            let mut x = SyncGroupRequestAssignment::default();
            x.member_id = s(m);
            x.assignment = Bytes::copy_from_slice(a);
            x
        })
        .collect();
    Request::SyncGroup(r)
}

fn heartbeat(c: &mut RawClient, version: i16, generation: i32, member: &str) -> i16 {
    let mut r = HeartbeatRequest::default();
    r.group_id = group("raw");
    r.generation_id = generation;
    r.member_id = s(member);
    match c.call(version, Request::Heartbeat(r)) {
        Response::Heartbeat(r) => r.error_code,
        other => panic!("{other:?}"),
    }
}

fn commit(c: &mut RawClient, version: i16, generation: i32, member: &str, offset: i64) -> i16 {
    let mut p = OffsetCommitRequestPartition::default();
    p.partition_index = 1;
    p.committed_offset = offset;
    p.committed_metadata = Some(s("meta"));
    if version >= 6 {
        p.committed_leader_epoch = 0;
    }
    let mut t = OffsetCommitRequestTopic::default();
    t.name = TopicName(s("raw-topic"));
    t.partitions = vec![p];
    let mut r = OffsetCommitRequest::default();
    r.group_id = group("raw");
    r.generation_id_or_member_epoch = generation;
    r.member_id = s(member);
    r.topics = vec![t];
    match c.call(version, Request::OffsetCommit(r)) {
        Response::OffsetCommit(r) => r.topics[0].partitions[0].error_code,
        other => panic!("{other:?}"),
    }
}

#[test]
fn group_apis_over_the_wire_at_lowest_and_highest_versions() {
    let broker = BrokerProcess::start(NO_DELAY);
    let mut a = RawClient::connect(broker.addr);
    let mut b = RawClient::connect(broker.addr);
    ensure_topic(&mut a, "raw-topic");

    for version in [0, 6] {
        let mut r = FindCoordinatorRequest::default();
        if version >= 4 {
            r.coordinator_keys = vec![s("raw")];
        } else {
            r.key = s("raw");
        }
        let Response::FindCoordinator(r) = a.call(version, Request::FindCoordinator(r)) else {
            panic!()
        };
        let port = r.coordinators.first().map_or(r.port, |c| c.port);
        assert_eq!(port, i32::from(broker.addr.port()), "v{version}");
    }

    // v0 joins get their member id at once; the first member leads.
    let ja = join(&mut a, 0, "");
    assert_eq!(ja.error_code, 0);
    let ma = ja.member_id.to_string();
    assert!(ma.starts_with("sluice-tests-"), "{ma}");
    assert_eq!((ja.leader.as_str(), ja.generation_id), (ma.as_str(), 1));
    let Response::SyncGroup(sa) = a.call(0, sync_request(0, 1, &ma, &[(&ma, b"\x00all\xff")]))
    else {
        panic!()
    };
    assert_eq!(sa.assignment.as_ref(), b"\x00all\xff");
    assert_eq!(heartbeat(&mut a, 0, 1, &ma), 0);

    // v9: MEMBER_ID_REQUIRED first, then the join waits until a rejoins.
    let first = join(&mut b, 9, "");
    assert_eq!(first.error_code, 79);
    let mb = first.member_id.to_string();
    b.send(9, &join_request(9, &mb));
    // b's join arrives on another connection: a learns of the rebalance once it did.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while heartbeat(&mut a, 4, 1, &ma) != 27 {
        assert!(std::time::Instant::now() < deadline, "no REBALANCE_IN_PROGRESS for a");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let ja = join(&mut a, 0, &ma);
    let Response::JoinGroup(jb) = b.receive(ApiKey::JoinGroup, 9) else { panic!() };
    assert_eq!((ja.generation_id, jb.generation_id), (2, 2));
    assert_eq!(ja.members.len(), 2, "the leader sees both members");
    assert_eq!(jb.protocol_type.as_deref(), Some("consumer"));
    assert!(ja.members.iter().all(|m| m.metadata.as_ref() == b"subscription bytes"));

    // The follower's SyncGroup waits for the leader's; each gets exactly its bytes.
    b.send(5, &sync_request(5, 2, &mb, &[]));
    let assignment: &[u8] = &[0, 0, 0, 1, 0x80, 0xff];
    let Response::SyncGroup(sa) =
        a.call(0, sync_request(0, 2, &ma, &[(&ma, b"a"), (&mb, assignment)]))
    else {
        panic!()
    };
    let Response::SyncGroup(sb) = b.receive(ApiKey::SyncGroup, 5) else { panic!() };
    assert_eq!((sa.assignment.as_ref(), sb.assignment.as_ref()), (&b"a"[..], assignment));
    assert_eq!(sb.protocol_name.as_deref(), Some("range"));

    assert_eq!(commit(&mut a, 2, 2, &ma, 17), 0);
    assert_eq!(commit(&mut b, 9, 2, &mb, 18), 0);
    assert_eq!(commit(&mut b, 9, 1, &mb, 19), 22, "ILLEGAL_GENERATION");

    let mut t = OffsetFetchRequestTopic::default();
    t.name = TopicName(s("raw-topic"));
    t.partition_indexes = vec![0, 1];
    let mut r = OffsetFetchRequest::default();
    r.group_id = group("raw");
    r.topics = Some(vec![t]);
    let Response::OffsetFetch(f) = a.call(1, Request::OffsetFetch(r)) else { panic!() };
    let offsets: Vec<i64> = f.topics[0].partitions.iter().map(|p| p.committed_offset).collect();
    assert_eq!(offsets, [-1, 18]);
    assert_eq!(f.topics[0].partitions[1].metadata.as_deref(), Some("meta"));
    let mut g = OffsetFetchRequestGroup::default();
    g.group_id = group("raw");
    g.topics = None; // all of the group's offsets
    let mut g2 = OffsetFetchRequestGroup::default();
    g2.group_id = group("nobody");
    let mut ts = OffsetFetchRequestTopics::default();
    ts.name = TopicName(s("raw-topic"));
    ts.partition_indexes = vec![1];
    g2.topics = Some(vec![ts]);
    let mut r = OffsetFetchRequest::default();
    r.groups = vec![g, g2];
    let Response::OffsetFetch(f) = a.call(9, Request::OffsetFetch(r)) else { panic!() };
    assert_eq!(f.groups[0].topics[0].partitions[0].committed_offset, 18);
    assert_eq!(f.groups[0].topics[0].partitions[0].committed_leader_epoch, 0);
    assert_eq!(f.groups[1].topics[0].partitions[0].committed_offset, -1);

    for version in [0, 5] {
        let mut r = ListGroupsRequest::default();
        if version >= 4 {
            r.states_filter = vec![s("stable")];
        }
        let Response::ListGroups(l) = a.call(version, Request::ListGroups(r)) else { panic!() };
        let raw = l.groups.iter().find(|g| g.group_id.0.as_str() == "raw").expect("listed");
        assert_eq!(raw.protocol_type.as_str(), "consumer");
        let mut r = DescribeGroupsRequest::default();
        r.groups = vec![group("raw")];
        let Response::DescribeGroups(d) = a.call(version, Request::DescribeGroups(r)) else {
            panic!()
        };
        assert_eq!(d.groups[0].group_state.as_str(), "Stable");
        let member_b = d.groups[0].members.iter().find(|m| m.member_id.as_str() == mb).unwrap();
        assert_eq!(member_b.member_assignment.as_ref(), assignment);
        assert_eq!(
            member_b.client_host.as_str(),
            "/127.0.0.1",
            "the member's address, as Kafka prints it"
        );
    }

    let mut r = DeleteGroupsRequest::default();
    r.groups_names = vec![group("raw")];
    let Response::DeleteGroups(d) = a.call(0, Request::DeleteGroups(r.clone())) else { panic!() };
    assert_eq!(d.results[0].error_code, 68, "NON_EMPTY_GROUP");

    let mut r0 = LeaveGroupRequest::default();
    r0.group_id = group("raw");
    r0.member_id = s(&ma);
    let Response::LeaveGroup(l) = a.call(0, Request::LeaveGroup(r0)) else { panic!() };
    assert_eq!(l.error_code, 0);
    let mut r5 = LeaveGroupRequest::default();
    r5.group_id = group("raw");
    let mut who = MemberIdentity::default();
    who.member_id = s(&mb);
    r5.members = vec![who];
    let Response::LeaveGroup(l) = b.call(5, Request::LeaveGroup(r5)) else { panic!() };
    assert_eq!((l.error_code, l.members[0].error_code), (0, 0));

    let mut p = OffsetDeleteRequestPartition::default();
    p.partition_index = 1;
    let mut t = OffsetDeleteRequestTopic::default();
    t.name = TopicName(s("raw-topic"));
    t.partitions = vec![p];
    let mut od = OffsetDeleteRequest::default();
    od.group_id = group("raw");
    od.topics = vec![t];
    let Response::OffsetDelete(o) = a.call(0, Request::OffsetDelete(od)) else { panic!() };
    assert_eq!((o.error_code, o.topics[0].partitions[0].error_code), (0, 0));

    for version in [0, 2] {
        let Response::DeleteGroups(d) = a.call(version, Request::DeleteGroups(r.clone())) else {
            panic!()
        };
        let want = if version == 0 { 0 } else { 69 };
        assert_eq!(d.results[0].error_code, want, "deleted, then GROUP_ID_NOT_FOUND");
    }
}

fn fetch_committed(c: &mut RawClient) -> i64 {
    let mut t = OffsetFetchRequestTopic::default();
    t.name = TopicName(s("raw-topic"));
    t.partition_indexes = vec![1];
    let mut r = OffsetFetchRequest::default();
    r.group_id = group("raw");
    r.topics = Some(vec![t]);
    let Response::OffsetFetch(f) = c.call(1, Request::OffsetFetch(r)) else { panic!() };
    f.topics[0].partitions[0].committed_offset
}

#[test]
fn deleting_a_topic_removes_its_committed_offsets() {
    let mut broker = BrokerProcess::start(NO_DELAY);
    let mut c = RawClient::connect(broker.addr);
    ensure_topic(&mut c, "raw-topic");
    assert_eq!(commit(&mut c, 2, -1, "", 40), 0);
    assert_eq!(fetch_committed(&mut c), 40);
    let mut d = DeleteTopicsRequest::default();
    d.topic_names = vec![TopicName(s("raw-topic"))];
    d.timeout_ms = 10_000;
    let Response::DeleteTopics(r) = c.call(4, Request::DeleteTopics(d)) else { panic!() };
    assert_eq!(r.responses[0].error_code, 0);
    // Created again under the same name: a consumer of the group starts afresh, as in
    // Kafka, instead of at offset 40 of a log that no longer exists.
    ensure_topic(&mut c, "raw-topic");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while fetch_committed(&mut c) != -1 {
        assert!(std::time::Instant::now() < deadline, "the offset outlived its topic");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    broker.stop();
    broker.restart();
    let mut c = RawClient::connect(broker.addr);
    assert_eq!(fetch_committed(&mut c), -1, "the removal is in __consumer_offsets too");
}
