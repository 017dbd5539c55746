use sluice_protocol::kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use sluice_protocol::kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use sluice_protocol::kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use sluice_protocol::kafka_protocol::messages::{
    ListOffsetsResponse, OffsetCommitResponse, OffsetFetchResponse,
};

use super::*;

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition::new(topic, partition)
}

fn topic(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

#[test]
fn offset_fetch_asks_each_partition_once_in_the_versions_shape() {
    let asked = [tp("t", 1), tp("s", 0), tp("t", 1), tp("t", 0)];
    let Request::OffsetFetch(v7) = fetch_request("g", Some(&asked), true, 7).unwrap() else {
        panic!("not an OffsetFetch")
    };
    assert_eq!(v7.group_id.0.as_str(), "g");
    assert!(v7.require_stable);
    let topics: Vec<(&str, &[i32])> = v7
        .topics
        .iter()
        .flatten()
        .map(|t| (t.name.0.as_str(), t.partition_indexes.as_slice()))
        .collect();
    assert_eq!(topics, vec![("s", &[0][..]), ("t", &[0, 1][..])]);

    let Request::OffsetFetch(v8) = fetch_request("g", Some(&asked), false, 8).unwrap() else {
        panic!("not an OffsetFetch")
    };
    assert!(!v8.require_stable);
    assert!(v8.topics.iter().flatten().next().is_none(), "v8 names groups in their array");
    let g = &v8.groups[0];
    assert_eq!(g.group_id.0.as_str(), "g");
    let topics: Vec<(&str, &[i32])> = g
        .topics
        .iter()
        .flatten()
        .map(|t| (t.name.0.as_str(), t.partition_indexes.as_slice()))
        .collect();
    assert_eq!(topics, vec![("s", &[0][..]), ("t", &[0, 1][..])]);

    let Request::OffsetFetch(all) = fetch_request("g", None, false, 8).unwrap() else {
        panic!("not an OffsetFetch")
    };
    assert_eq!(all.groups[0].topics, None, "null topics: every partition");
    assert!(matches!(
        fetch_request("g", None, false, 1),
        Err(ClientError::UnsupportedVersion { .. })
    ));
}

#[test]
fn offset_fetch_answers_read_alike_in_both_shapes() {
    let v7 = OffsetFetchResponse::default().with_topics(vec![OffsetFetchResponseTopic::default()
        .with_name(topic("t"))
        .with_partitions(vec![
            OffsetFetchResponsePartition::default()
                .with_partition_index(0)
                .with_committed_offset(5)
                .with_committed_leader_epoch(3)
                .with_metadata(Some(StrBytes::from_static_str("m"))),
            OffsetFetchResponsePartition::default()
                .with_partition_index(1)
                .with_committed_offset(-1)
                .with_committed_leader_epoch(-1),
        ])]);
    let want = BTreeMap::from([(
        tp("t", 0),
        OffsetAndMetadata { offset: 5, leader_epoch: Some(3), metadata: "m".into() },
    )]);
    let got: BTreeMap<_, _> = fetched("b:1", "g", 7, Response::OffsetFetch(v7)).unwrap();
    assert_eq!(got, want, "nothing committed for t-1");

    let v8 = |group: &str, code: i16| {
        let partition = OffsetFetchResponsePartitions::default()
            .with_partition_index(0)
            .with_committed_offset(5)
            .with_committed_leader_epoch(3)
            .with_metadata(Some(StrBytes::from_static_str("m")))
            .with_error_code(code);
        let group =
            OffsetFetchResponseGroup::default().with_group_id(group_id(group)).with_topics(vec![
                OffsetFetchResponseTopics::default()
                    .with_name(topic("t"))
                    .with_partitions(vec![partition]),
            ]);
        Response::OffsetFetch(OffsetFetchResponse::default().with_groups(vec![group]))
    };
    let got: BTreeMap<_, _> = fetched("b:1", "g", 8, v8("g", 0)).unwrap();
    assert_eq!(got, want);
    let other = fetched::<BTreeMap<_, _>>("b:1", "g", 8, v8("h", 0)).unwrap_err();
    assert!(matches!(other, ClientError::Protocol { .. }), "{other}");
    let failed = fetched::<BTreeMap<_, _>>("b:1", "g", 8, v8("g", 27)).unwrap_err();
    assert_eq!(failed.code(), Some(ErrorCode::REBALANCE_IN_PROGRESS));
    assert!(failed.to_string().contains("t-0 in group g"), "{failed}");
}

#[test]
fn offset_commit_sends_each_partition_once_with_the_versions_fields() {
    let first = OffsetAndMetadata { offset: 7, leader_epoch: Some(2), metadata: "x".into() };
    let given = [(tp("t", 0), first), (tp("t", 0), OffsetAndMetadata::new(9))];
    let offsets = distinct(given.iter().map(|(tp, o)| (tp, o)));
    let who =
        Committer { generation: 4, member_id: "m".into(), group_instance_id: Some("i".into()) };
    let commit = |version| {
        let Request::OffsetCommit(r) = commit_request("g", &who, &offsets, version) else {
            panic!("not an OffsetCommit")
        };
        r
    };
    let v7 = commit(7);
    assert_eq!(
        (v7.group_id.0.as_str(), v7.generation_id_or_member_epoch, v7.member_id.as_str()),
        ("g", 4, "m")
    );
    assert_eq!(v7.group_instance_id.as_deref(), Some("i"));
    let p = &v7.topics[0].partitions;
    assert_eq!(p.len(), 1, "the first entry of a partition given twice");
    assert_eq!((p[0].committed_offset, p[0].committed_leader_epoch), (7, 2));
    assert_eq!(p[0].committed_metadata.as_deref(), Some("x"));

    let v5 = commit(5);
    assert_eq!(v5.group_instance_id, None, "static membership is v7+");
    assert_eq!(v5.topics[0].partitions[0].committed_leader_epoch, -1, "the epoch is v6+");
}

#[test]
fn offset_commit_answers_settle_each_partition() {
    let response = |codes: &[(i32, i16)]| {
        let partitions = codes
            .iter()
            .map(|&(p, code)| {
                OffsetCommitResponsePartition::default()
                    .with_partition_index(p)
                    .with_error_code(code)
            })
            .collect();
        Response::OffsetCommit(OffsetCommitResponse::default().with_topics(vec![
            OffsetCommitResponseTopic::default().with_name(topic("t")).with_partitions(partitions),
        ]))
    };
    let wanted = [tp("t", 0), tp("t", 1)];
    let out = commit_outcomes("b:1", "g", response(&[(1, 22), (0, 0)]), &wanted).unwrap();
    let codes: Vec<_> = out
        .iter()
        .map(|(tp, o)| (tp.clone(), o.as_ref().err().and_then(ClientError::code)))
        .collect();
    assert_eq!(codes, vec![(tp("t", 0), None), (tp("t", 1), Some(ErrorCode::ILLEGAL_GENERATION))]);
    let short = commit_outcomes("b:1", "g", response(&[(0, 0)]), &wanted).unwrap_err();
    assert!(matches!(short, ClientError::Protocol { .. }), "{short}");
}

#[test]
fn list_offsets_asks_as_a_consumer_with_the_versions_fields() {
    let (a, b) = (tp("t", 1), tp("s", 0));
    let lookups = [(&a, EARLIEST, 5), (&b, 1_000, 2)];
    let request = |version| {
        let Request::ListOffsets(r) = list_offsets_request(lookups, true, version) else {
            panic!("not a ListOffsets")
        };
        r
    };
    let v4 = request(4);
    assert_eq!((v4.replica_id, v4.isolation_level), (CONSUMER, 1));
    let asked: Vec<(&str, i32, i64, i32)> = v4
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (t.name.0.as_str(), p.partition_index, p.timestamp, p.current_leader_epoch)
            })
        })
        .collect();
    assert_eq!(asked, vec![("s", 0, 1_000, 2), ("t", 1, EARLIEST, 5)]);
    let v1 = request(1);
    assert_eq!(v1.isolation_level, 0, "the isolation level is v2+");
    assert_eq!(v1.topics[0].partitions[0].current_leader_epoch, -1, "the epoch is v4+");
}

#[test]
fn list_offsets_answers_settle_each_partition_in_the_order_asked() {
    let partition = |p: i32, code: i16, offset: i64, epoch: i32| {
        ListOffsetsPartitionResponse::default()
            .with_partition_index(p)
            .with_error_code(code)
            .with_offset(offset)
            .with_timestamp(-1)
            .with_leader_epoch(epoch)
    };
    let response = Response::ListOffsets(ListOffsetsResponse::default().with_topics(vec![
        ListOffsetsTopicResponse::default()
            .with_name(topic("t"))
            .with_partitions(vec![partition(1, 6, -1, -1), partition(0, 0, 42, 3)]),
    ]));
    let keys = [tp("t", 0), tp("t", 1), tp("t", 2)];
    let out = listed("b:1", response, &keys).unwrap();
    assert_eq!(out[0], Ok(ListedOffset { offset: 42, timestamp: -1, leader_epoch: Some(3) }));
    assert_eq!(out[1].as_ref().unwrap_err().code(), Some(ErrorCode::NOT_LEADER_OR_FOLLOWER));
    assert!(matches!(out[2], Err(ClientError::Protocol { .. })), "t-2 left out: {:?}", out[2]);
}
