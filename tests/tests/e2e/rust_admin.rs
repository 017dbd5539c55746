//! sluice-client's admin client against the real broker: topics created (with configs,
//! validate-only, per-topic errors), listed, described, grown and deleted; configs
//! described, replaced and altered key by key; group offsets committed, read and deleted;
//! groups listed, described (a live consumer's assignment decoded) and deleted; offsets
//! looked up by time and records deleted; log dirs and partition sizes described; the
//! cluster described; and a call that rides
//! out a broker that stops answering for a while.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{GroupId, JoinGroupRequest, SyncGroupRequest};
use kafka_protocol::protocol::StrBytes;
use sluice_client::admin::{
    Admin, AlterConfigOp, ConfigEntry, ConfigResource, ConfigSource, GroupState, MemberAssignment,
    NewTopic, OffsetAndMetadata, OffsetSpec,
};
use sluice_client::consumer::protocol::{Assignment, TopicPartitions};
use sluice_client::producer::{Producer, ProducerRecord};
use sluice_client::{ClientConfig, ClientError, TopicPartition};
use sluice_protocol::error_code::ErrorCode;
use sluice_protocol::messages::{Request, Response};
use sluice_tests::{BrokerProcess, RawClient};

use crate::rust_producer::runtime;

fn admin(broker: &BrokerProcess, extra: &[(&str, &str)]) -> Admin {
    let mut config = ClientConfig::new().with("bootstrap.servers", broker.bootstrap());
    for (k, v) in extra {
        config.set(*k, *v);
    }
    Admin::new(&config).unwrap()
}

/// The Kafka code of a failed outcome; `None` for success (or a non-Kafka error).
fn code<T>(outcome: &Result<T, ClientError>) -> Option<ErrorCode> {
    outcome.as_ref().err().and_then(ClientError::code)
}

fn codes<K: Clone, T>(outcomes: &[(K, Result<T, ClientError>)]) -> Vec<(K, Option<ErrorCode>)> {
    outcomes.iter().map(|(k, r)| (k.clone(), code(r))).collect()
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn config<'a>(entries: &'a [ConfigEntry], name: &str) -> &'a ConfigEntry {
    entries.iter().find(|e| e.name == name).unwrap_or_else(|| panic!("no config {name}"))
}

#[test]
fn topics_are_created_listed_described_grown_and_deleted() {
    let broker = BrokerProcess::start(&["--num-partitions", "2"]);
    let rt = runtime();
    let _enter = rt.enter();
    let admin = admin(&broker, &[]);
    rt.block_on(async {
        let created = admin
            .create_topics(
                &[
                    NewTopic::new("a")
                        .partitions(3)
                        .replication_factor(1)
                        .config("retention.ms", "12345"),
                    NewTopic::new("b"),
                ],
                false,
            )
            .await
            .unwrap();
        assert_eq!(codes(&created), vec![("a".to_string(), None), ("b".to_string(), None)]);

        let validated =
            admin.create_topics(&[NewTopic::new("v").partitions(4)], true).await.unwrap();
        assert_eq!(codes(&validated), vec![("v".to_string(), None)]);

        // One failure does not hide the others.
        let mixed = admin
            .create_topics(
                &[
                    NewTopic::new("a").partitions(1),
                    NewTopic::new("c"),
                    NewTopic::new("bad").config("segment.bytes", "14"),
                    NewTopic::new("worse").config("no.such.config", "1"),
                ],
                false,
            )
            .await
            .unwrap();
        assert_eq!(
            codes(&mixed),
            vec![
                ("a".to_string(), Some(ErrorCode::TOPIC_ALREADY_EXISTS)),
                ("c".to_string(), None),
                ("bad".to_string(), Some(ErrorCode::INVALID_CONFIG)),
                ("worse".to_string(), Some(ErrorCode::INVALID_CONFIG)),
            ]
        );
        let message = mixed[0].1.as_ref().unwrap_err().to_string();
        assert!(message.contains("create topic a"), "{message}");

        let listed = admin.list_topics(false).await.unwrap();
        let summary: Vec<(&str, usize, bool)> =
            listed.iter().map(|t| (t.name.as_str(), t.partitions, t.internal)).collect();
        assert_eq!(
            summary,
            vec![("a", 3, false), ("b", 2, false), ("c", 2, false)],
            "v was only validated"
        );
        assert!(listed.iter().all(|t| !t.id.is_nil()));

        let described = admin.describe_topics(&names(&["a"])).await.unwrap();
        let cluster = admin.describe_cluster().await.unwrap();
        let node = cluster.brokers[0].node_id;
        assert_eq!(described.len(), 1);
        let a = &described[0];
        assert_eq!((a.name.as_str(), a.id, a.internal), ("a", listed[0].id, false));
        let partitions: Vec<i32> = a.partitions.iter().map(|p| p.partition).collect();
        assert_eq!(partitions, vec![0, 1, 2]);
        for p in &a.partitions {
            assert_eq!((p.leader, &p.replicas, &p.isr), (Some(node), &vec![node], &vec![node]));
            assert!(p.leader_epoch.is_some_and(|e| e >= 0));
        }
        let missing = admin.describe_topics(&names(&["a", "nope"])).await.unwrap_err();
        assert_eq!(missing, ClientError::UnknownTopic { topic: "nope".into() });

        let grown = admin.create_partitions(&[("a".into(), 5)], false).await.unwrap();
        assert_eq!(codes(&grown), vec![("a".to_string(), None)]);
        let checked = admin
            .create_partitions(&[("a".into(), 7), ("b".into(), 1), ("nope".into(), 3)], true)
            .await
            .unwrap();
        assert_eq!(
            codes(&checked),
            vec![
                ("a".to_string(), None),
                ("b".to_string(), Some(ErrorCode::INVALID_PARTITIONS)),
                ("nope".to_string(), Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)),
            ]
        );
        let a = admin.describe_topics(&names(&["a"])).await.unwrap();
        assert_eq!(a[0].partitions.len(), 5, "grown to 5, and validate_only changed nothing");

        let deleted = admin.delete_topics(&names(&["b", "nope"])).await.unwrap();
        assert_eq!(
            codes(&deleted),
            vec![
                ("b".to_string(), None),
                ("nope".to_string(), Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION))
            ]
        );
        let left: Vec<String> =
            admin.list_topics(true).await.unwrap().into_iter().map(|t| t.name).collect();
        assert!(!left.contains(&"b".to_string()) && left.contains(&"a".to_string()), "{left:?}");
    });
}

#[test]
fn configs_are_described_replaced_and_altered_key_by_key() {
    let broker = BrokerProcess::start(&[]);
    let rt = runtime();
    let _enter = rt.enter();
    let admin = admin(&broker, &[]);
    rt.block_on(async {
        let created = admin
            .create_topics(
                &[NewTopic::new("cfg").partitions(1).config("retention.ms", "12345")],
                false,
            )
            .await
            .unwrap();
        assert!(created[0].1.is_ok());
        let node = admin.describe_cluster().await.unwrap().brokers[0].node_id;
        let topic = ConfigResource::topic("cfg");
        let describe = || async {
            let mut out = admin.describe_configs(std::slice::from_ref(&topic)).await.unwrap();
            out.pop().unwrap().1.unwrap()
        };

        let out = admin
            .describe_configs(&[
                topic.clone(),
                ConfigResource::broker(node),
                ConfigResource::topic("nope"),
            ])
            .await
            .unwrap();
        assert_eq!(out.len(), 3);
        let entries = out[0].1.as_ref().unwrap();
        let retention = config(entries, "retention.ms");
        assert_eq!(retention.value.as_deref(), Some("12345"));
        assert_eq!(retention.source, ConfigSource::DynamicTopic);
        assert!(!retention.is_default && !retention.read_only && !retention.sensitive);
        let segment = config(entries, "segment.bytes");
        assert_eq!((segment.source, segment.is_default), (ConfigSource::Default, true));
        let broker_entries = out[1].1.as_ref().unwrap();
        assert_eq!(config(broker_entries, "node.id").value, Some(node.to_string()));
        assert_eq!(code(&out[2].1), Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION));

        // AlterConfigs replaces the whole set: retention.ms loses its override.
        admin.alter_configs(&topic, &[("cleanup.policy".into(), "compact".into())]).await.unwrap();
        let entries = describe().await;
        let policy = config(&entries, "cleanup.policy");
        assert_eq!(
            (policy.value.as_deref(), policy.source),
            (Some("compact"), ConfigSource::DynamicTopic)
        );
        let retention = config(&entries, "retention.ms");
        assert_ne!(retention.value.as_deref(), Some("12345"));
        assert_ne!(retention.source, ConfigSource::DynamicTopic);

        // IncrementalAlterConfigs changes only the keys named.
        let ops = [
            AlterConfigOp::set("retention.ms", "999"),
            AlterConfigOp::append("cleanup.policy", "delete"),
        ];
        admin.incremental_alter_configs(&topic, &ops).await.unwrap();
        let entries = describe().await;
        assert_eq!(config(&entries, "retention.ms").value.as_deref(), Some("999"));
        assert_eq!(config(&entries, "cleanup.policy").value.as_deref(), Some("compact,delete"));
        let ops = [
            AlterConfigOp::delete("retention.ms"),
            AlterConfigOp::subtract("cleanup.policy", "compact"),
        ];
        admin.incremental_alter_configs(&topic, &ops).await.unwrap();
        let entries = describe().await;
        assert_eq!(config(&entries, "retention.ms").source, ConfigSource::Default);
        assert_eq!(config(&entries, "cleanup.policy").value.as_deref(), Some("delete"));

        // The broker's bound (KIP-1030: at least 1 MiB) is refused by every path.
        let small = admin
            .incremental_alter_configs(&topic, &[AlterConfigOp::set("segment.bytes", "14")])
            .await;
        assert_eq!(code(&small), Some(ErrorCode::INVALID_CONFIG), "{small:?}");
        let small = admin.alter_configs(&topic, &[("segment.bytes".into(), "14".into())]).await;
        assert_eq!(code(&small), Some(ErrorCode::INVALID_CONFIG), "{small:?}");
        let entries = describe().await;
        assert_eq!(
            config(&entries, "cleanup.policy").value.as_deref(),
            Some("delete"),
            "refused changes change nothing"
        );
        let gone = admin
            .incremental_alter_configs(
                &ConfigResource::topic("nope"),
                &[AlterConfigOp::set("retention.ms", "1")],
            )
            .await;
        assert_eq!(code(&gone), Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION));
        // A broker resource reaches that broker, which has no dynamic configs.
        let dynamic = admin
            .incremental_alter_configs(
                &ConfigResource::broker(node),
                &[AlterConfigOp::set("num.partitions", "3")],
            )
            .await;
        assert_eq!(code(&dynamic), Some(ErrorCode::INVALID_REQUEST), "{dynamic:?}");
    });
}

#[test]
fn group_offsets_are_committed_read_and_deleted_and_the_group_listed_described_deleted() {
    let broker = BrokerProcess::start(&[]);
    let rt = runtime();
    let _enter = rt.enter();
    let admin = admin(&broker, &[]);
    rt.block_on(async {
        admin.create_topics(&[NewTopic::new("gt").partitions(2)], false).await.unwrap();
        let tp = |p: i32| TopicPartition::new("gt", p);
        let committed = admin
            .alter_consumer_group_offsets(
                "ag",
                &[
                    (tp(0), OffsetAndMetadata::new(5).with_metadata("first")),
                    (
                        tp(1),
                        OffsetAndMetadata {
                            offset: 7,
                            leader_epoch: Some(0),
                            metadata: String::new(),
                        },
                    ),
                    (TopicPartition::new("missing", 0), OffsetAndMetadata::new(1)),
                ],
            )
            .await
            .unwrap();
        let outcome: Vec<_> = committed.iter().map(|(k, r)| (k.clone(), code(r))).collect();
        assert_eq!(
            outcome,
            vec![
                (tp(0), None),
                (tp(1), None),
                (TopicPartition::new("missing", 0), Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)),
            ]
        );

        let all = admin.list_consumer_group_offsets("ag", None).await.unwrap();
        let want = BTreeMap::from([
            (tp(0), OffsetAndMetadata::new(5).with_metadata("first")),
            (
                tp(1),
                OffsetAndMetadata { offset: 7, leader_epoch: Some(0), metadata: String::new() },
            ),
        ]);
        assert_eq!(all, want);
        let one = admin.list_consumer_group_offsets("ag", Some(&[tp(1), tp(9)])).await.unwrap();
        assert_eq!(
            one.keys().collect::<Vec<_>>(),
            vec![&tp(1)],
            "nothing committed for partition 9"
        );

        let groups = admin.list_groups().await.unwrap();
        let ag = groups.iter().find(|g| g.group_id == "ag").expect("ag is listed");
        assert_eq!(ag.state, Some(GroupState::Empty));

        let described = admin.describe_groups(&names(&["ag", "never"])).await.unwrap();
        let ag = described[0].1.as_ref().unwrap();
        assert_eq!(
            (ag.group_id.as_str(), ag.state, ag.members.len()),
            ("ag", GroupState::Empty, 0)
        );
        assert_eq!(described[1].1.as_ref().unwrap().state, GroupState::Dead);

        let removed = admin.delete_consumer_group_offsets("ag", &[tp(0)]).await.unwrap();
        assert_eq!(
            removed.into_iter().map(|(k, r)| (k, code(&r))).collect::<Vec<_>>(),
            vec![(tp(0), None)]
        );
        let left = admin.list_consumer_group_offsets("ag", None).await.unwrap();
        assert_eq!(left.keys().collect::<Vec<_>>(), vec![&tp(1)]);
        let none = admin.delete_consumer_group_offsets("never", &[tp(0)]).await;
        assert_eq!(code(&none), Some(ErrorCode::GROUP_ID_NOT_FOUND));

        let deleted = admin.delete_groups(&names(&["ag", "never"])).await.unwrap();
        assert_eq!(
            codes(&deleted),
            vec![
                ("ag".to_string(), None),
                ("never".to_string(), Some(ErrorCode::GROUP_ID_NOT_FOUND))
            ]
        );
        assert!(admin.list_groups().await.unwrap().iter().all(|g| g.group_id != "ag"));
        assert!(admin.list_consumer_group_offsets("ag", None).await.unwrap().is_empty());
    });
}

/// Kafka's ConsumerProtocol bytes: an assignment, or (with `topics` only) a subscription.
fn consumer_protocol(topics: &[(&str, &[i32])], user_data: Option<&[u8]>) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(0);
    b.put_i32(topics.len() as i32);
    for (topic, partitions) in topics {
        b.put_i16(topic.len() as i16);
        b.put_slice(topic.as_bytes());
        b.put_i32(partitions.len() as i32);
        for p in *partitions {
            b.put_i32(*p);
        }
    }
    match user_data {
        Some(d) => {
            b.put_i32(d.len() as i32);
            b.put_slice(d);
        }
        None => b.put_i32(-1),
    }
    b.freeze()
}

/// Joins `group` as its only member (JoinGroup v3 hands out the member id at once) and
/// gives itself `assignment`; returns the member id.
fn join_alone(c: &mut RawClient, group: &str, assignment: Bytes) -> String {
    let s = |v: &str| StrBytes::from_string(v.to_string());
    let mut p = JoinGroupRequestProtocol::default();
    p.name = s("range");
    p.metadata = consumer_protocol(&[("gt", &[])], None);
    let mut j = JoinGroupRequest::default();
    j.group_id = GroupId(s(group));
    j.session_timeout_ms = 30_000;
    j.rebalance_timeout_ms = 30_000;
    j.protocol_type = s("consumer");
    j.protocols = vec![p];
    // Until the coordinator has loaded the offsets topic (a slow start on a busy machine)
    // it answers COORDINATOR_LOAD_IN_PROGRESS, which clients retry.
    let deadline = Instant::now() + Duration::from_secs(30);
    let joined = loop {
        let Response::JoinGroup(joined) = c.call(3, Request::JoinGroup(j.clone())) else {
            panic!("join")
        };
        if joined.error_code != ErrorCode::COORDINATOR_LOAD_IN_PROGRESS.code()
            || Instant::now() > deadline
        {
            break joined;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(joined.error_code, 0);
    let member = joined.member_id.to_string();
    let mut a = SyncGroupRequestAssignment::default();
    a.member_id = s(&member);
    a.assignment = assignment;
    let mut sync = SyncGroupRequest::default();
    sync.group_id = GroupId(s(group));
    sync.generation_id = joined.generation_id;
    sync.member_id = s(&member);
    sync.assignments = vec![a];
    let Response::SyncGroup(synced) = c.call(3, Request::SyncGroup(sync)) else { panic!("sync") };
    assert_eq!(synced.error_code, 0);
    member
}

#[test]
fn a_live_members_assignment_is_decoded_and_the_admin_cannot_overwrite_its_group() {
    let broker = BrokerProcess::start(&["--override", "group.initial.rebalance.delay.ms=0"]);
    let mut raw = RawClient::connect(broker.addr);
    let rt = runtime();
    let _enter = rt.enter();
    let admin = admin(&broker, &[]);
    rt.block_on(admin.create_topics(&[NewTopic::new("gt").partitions(3)], false)).unwrap();
    let member = join_alone(&mut raw, "live", consumer_protocol(&[("gt", &[0, 2])], Some(b"ud")));
    let garbage = Bytes::from_static(&[0, 0, 0x7f, 0xff, 0xff, 0xff]);
    join_alone(&mut raw, "odd", garbage.clone());
    rt.block_on(async {
        let described = admin.describe_groups(&names(&["live", "odd"])).await.unwrap();
        let live = described[0].1.as_ref().unwrap();
        assert_eq!(
            (live.state, live.protocol_type.as_str(), live.protocol.as_str()),
            (GroupState::Stable, "consumer", "range")
        );
        assert_eq!(live.members.len(), 1);
        let m = &live.members[0];
        assert_eq!((m.member_id.as_str(), m.client_id.as_str()), (member.as_str(), "sluice-tests"));
        assert!(!m.client_host.is_empty());
        let want = Assignment {
            assigned_partitions: vec![TopicPartitions {
                topic: "gt".into(),
                partitions: vec![0, 2],
            }],
            user_data: Some(Bytes::from_static(b"ud")),
        };
        assert_eq!(m.assignment, MemberAssignment::Consumer(want));
        let odd = described[1].1.as_ref().unwrap();
        assert_eq!(odd.members[0].assignment, MemberAssignment::Raw(garbage), "kept as sent");

        let listed = admin.list_groups().await.unwrap();
        let live = listed.iter().find(|g| g.group_id == "live").unwrap();
        assert_eq!(
            (live.protocol_type.as_str(), live.state),
            ("consumer", Some(GroupState::Stable))
        );

        let deleted = admin.delete_groups(&names(&["live"])).await.unwrap();
        assert_eq!(code(&deleted[0].1), Some(ErrorCode::NON_EMPTY_GROUP));
        let commit = admin
            .alter_consumer_group_offsets(
                "live",
                &[(TopicPartition::new("gt", 0), OffsetAndMetadata::new(1))],
            )
            .await
            .unwrap();
        assert_eq!(
            code(&commit[&TopicPartition::new("gt", 0)]),
            Some(ErrorCode::UNKNOWN_MEMBER_ID)
        );
    });
}

#[test]
fn offsets_are_listed_by_time_and_records_deleted() {
    let broker = BrokerProcess::start(&[]);
    let rt = runtime();
    let _enter = rt.enter();
    let admin = admin(&broker, &[]);
    let bootstrap = ClientConfig::new().with("bootstrap.servers", broker.bootstrap());
    rt.block_on(async {
        admin.create_topics(&[NewTopic::new("log").partitions(2)], false).await.unwrap();
        let producer = Producer::new(&bootstrap.clone().with("linger.ms", "0")).unwrap();
        for i in 0..10 {
            let record = ProducerRecord::new("log", format!("v{i}"))
                .partition(0)
                .timestamp(1_000_000 + i * 1000);
            producer.send_and_wait(record).await.unwrap();
        }
        producer.close(Duration::from_secs(5)).await.unwrap();

        let p0 = TopicPartition::new("log", 0);
        let p1 = TopicPartition::new("log", 1);
        let found = admin
            .list_offsets(&[
                (p0.clone(), OffsetSpec::Timestamp(1_003_500)),
                (p1.clone(), OffsetSpec::Latest),
            ])
            .await
            .unwrap();
        assert_eq!(
            (found[&p0].offset, found[&p0].timestamp),
            (4, 1_004_000),
            "first record at or after"
        );
        assert_eq!((found[&p1].offset, found[&p1].timestamp), (0, -1), "an empty partition");
        let offset = |spec: OffsetSpec| {
            let p0 = p0.clone();
            let admin = &admin;
            async move { admin.list_offsets(&[(p0.clone(), spec)]).await.unwrap()[&p0].offset }
        };
        assert_eq!(offset(OffsetSpec::Earliest).await, 0);
        assert_eq!(offset(OffsetSpec::Latest).await, 10);
        assert_eq!(offset(OffsetSpec::Timestamp(2_000_000)).await, -1, "no record that late");
        assert_eq!(offset(OffsetSpec::Timestamp(0)).await, 0);

        let unknown =
            admin.list_offsets(&[(TopicPartition::new("nope", 0), OffsetSpec::Latest)]).await;
        assert_eq!(unknown.unwrap_err(), ClientError::UnknownTopic { topic: "nope".into() });
        let past = admin.list_offsets(&[(TopicPartition::new("log", 7), OffsetSpec::Latest)]).await;
        assert!(
            matches!(past, Err(ClientError::UnknownPartition { partition: 7, partitions: 2, .. })),
            "{past:?}"
        );

        let deleted = admin.delete_records(&[(p0.clone(), 4), (p1.clone(), 100)]).await.unwrap();
        assert_eq!(deleted[&p0], Ok(4));
        assert_eq!(
            code(&deleted[&p1]),
            Some(ErrorCode::OFFSET_OUT_OF_RANGE),
            "past the high watermark"
        );
        assert_eq!(offset(OffsetSpec::Earliest).await, 4);
        assert_eq!(offset(OffsetSpec::Timestamp(1_005_000)).await, 5);
        let all = admin.delete_records(&[(p0.clone(), -1)]).await.unwrap();
        assert_eq!(all[&p0], Ok(10), "-1 deletes up to the high watermark");
    });
}

#[test]
fn log_dirs_are_described_with_the_partitions_sizes() {
    let mut broker = BrokerProcess::start(&[]);
    let rt = runtime();
    let _enter = rt.enter();
    let admin = admin(&broker, &[]);
    let bootstrap = ClientConfig::new().with("bootstrap.servers", broker.bootstrap());
    let p0 = TopicPartition::new("sizes", 0);
    let p1 = TopicPartition::new("sizes", 1);
    let (named, all) = rt.block_on(async {
        admin.create_topics(&[NewTopic::new("sizes").partitions(2)], false).await.unwrap();
        let producer = Producer::new(&bootstrap.clone().with("linger.ms", "0")).unwrap();
        for i in 0..100 {
            producer
                .send_and_wait(ProducerRecord::new("sizes", format!("v{i}")).partition(0))
                .await
                .unwrap();
        }
        producer.close(Duration::from_secs(5)).await.unwrap();
        let node = admin.describe_cluster().await.unwrap().brokers[0].node_id;
        let asked = [
            p0.clone(),
            TopicPartition::new("sizes", 9),
            TopicPartition::new("nope", 0),
            p1.clone(),
            p0.clone(),
        ];
        let named = admin.describe_log_dirs(&[node, node], Some(&asked)).await.unwrap();
        let all = admin.describe_log_dirs(&[node], None).await.unwrap();
        let quick = self::admin(&broker, &[("default.api.timeout.ms", "300")]);
        let absent = quick.describe_log_dirs(&[node + 1], None).await.unwrap();
        assert!(matches!(absent[&(node + 1)], Err(ClientError::Network { .. })), "{absent:?}");
        (named.into_iter().map(|(n, dirs)| (n, dirs.unwrap())).collect::<Vec<_>>(), all)
    });
    assert_eq!(named.len(), 1, "a broker named twice is asked once");
    let (_, dirs) = &named[0];
    assert_eq!(dirs.len(), 1);
    let dir = &dirs[0];
    assert_eq!(dir.path, broker.data_dir.display().to_string());
    assert_eq!(dir.error, None);
    let (total, usable) = (dir.total_bytes.unwrap(), dir.usable_bytes.unwrap());
    assert!(usable <= total && total > 0, "{total} {usable}");
    let keys: Vec<&TopicPartition> = dir.replicas.keys().collect();
    assert_eq!(keys, [&p0, &p1], "what the broker lacks is left out");
    assert!(dir.replicas.values().all(|r| r.offset_lag == 0 && !r.is_future));
    let all = all.into_values().next().unwrap().unwrap();
    assert_eq!(all[0].replicas[&p0], dir.replicas[&p0], "the same size when all are asked for");

    rt.block_on(admin.close());
    broker.stop();
    let on_disk = |p: i32| -> u64 {
        std::fs::read_dir(broker.data_dir.join(format!("sizes-{p}")))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|f| f.extension().is_some_and(|x| x == "log"))
            .map(|f| f.metadata().unwrap().len())
            .sum()
    };
    assert!(on_disk(0) > 100 * 60, "100 records in their batches: {}", on_disk(0));
    assert_eq!(dir.replicas[&p0].size, on_disk(0));
    assert_eq!(dir.replicas[&p1].size, on_disk(1));
}

#[test]
fn the_cluster_is_described() {
    let broker = BrokerProcess::start(&[]);
    let rt = runtime();
    let _enter = rt.enter();
    let admin = admin(&broker, &[]);
    let cluster = rt.block_on(admin.describe_cluster()).unwrap();
    assert!(cluster.cluster_id.as_deref().is_some_and(|id| !id.is_empty()), "{cluster:?}");
    assert_eq!(cluster.brokers.len(), 1);
    assert_eq!(cluster.brokers[0].addr, broker.bootstrap());
    assert_eq!(cluster.controller, Some(cluster.brokers[0].node_id));
    rt.block_on(admin.close());
    assert_eq!(rt.block_on(admin.list_topics(false)), Err(ClientError::Closed));
}

#[test]
fn a_call_rides_out_a_broker_that_stops_answering_for_a_while() {
    let broker = BrokerProcess::start(&[]);
    let rt = runtime();
    let _enter = rt.enter();
    let quick = [("request.timeout.ms", "300"), ("socket.connection.setup.timeout.ms", "300")];
    let admin = admin(&broker, &[quick[0], quick[1], ("default.api.timeout.ms", "20000")]);
    rt.block_on(admin.create_topics(&[NewTopic::new("t")], false)).unwrap();
    broker.pause();
    let start = Instant::now();
    let call = rt.spawn(async move { admin.list_topics(false).await });
    std::thread::sleep(Duration::from_millis(1500));
    broker.resume();
    let topics = rt.block_on(call).unwrap().expect("retried until the broker answered");
    assert_eq!(topics.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), vec!["t"]);
    assert!(start.elapsed() >= Duration::from_millis(1400), "{:?}", start.elapsed());

    // With the broker gone for good the call ends at default.api.timeout.ms, not before.
    let admin = self::admin(&broker, &[quick[0], quick[1], ("default.api.timeout.ms", "1500")]);
    broker.pause();
    let start = Instant::now();
    let out = rt.block_on(admin.describe_topics(&names(&["t"])));
    broker.resume();
    assert!(
        matches!(out, Err(ClientError::RequestTimeout { .. } | ClientError::Network { .. })),
        "{out:?}"
    );
    let waited = start.elapsed();
    // One attempt takes 300 ms; giving up at the first failure would be that quick.
    assert!(waited >= Duration::from_millis(900) && waited < Duration::from_secs(5), "{waited:?}");
}
