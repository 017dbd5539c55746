//! Snapshots of the broker for the console: what `/api` serves as JSON, the page renders
//! and `/metrics` prints. They are read from counters, atomics the partition logs publish
//! (offsets, sizes) and the group coordinator's answers; never from the log itself.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Instant;

use serde_json::{json, Value};
use sluice_protocol::consumer_protocol::Assignment;

use crate::broker::Broker;
use crate::group::request::{GroupOffsets, ListFilter};
use crate::metrics::TopicTotals;

/// The broker itself.
#[derive(Debug, Clone)]
pub struct BrokerView {
    /// `node.id`.
    pub node_id: i32,
    /// Kafka's cluster id.
    pub cluster_id: String,
    /// The broker's version.
    pub version: &'static str,
    /// Milliseconds since the broker started.
    pub uptime_ms: u64,
    /// Where clients connect, and where they are told to.
    pub listeners: Vec<String>,
    /// The data directory.
    pub data_dir: String,
    /// Bytes of all partition logs.
    pub log_bytes: u64,
    /// Size and free space of the data directory's file system (for unprivileged users).
    pub disk_total_bytes: Option<u64>,
    /// Free space, as above.
    pub disk_free_bytes: Option<u64>,
    /// Client connections open.
    pub connections: u64,
    /// Partitions that refuse writes after a failed sync.
    pub poisoned_partitions: usize,
    /// Every topic's and unknown partitions' counters, summed (Kafka's all-topics figures).
    pub totals: TopicTotals,
}

/// One topic.
#[derive(Debug, Clone)]
pub struct TopicView {
    /// Name.
    pub name: String,
    /// Topic id.
    pub id: String,
    /// Whether it is internal (`__consumer_offsets`).
    pub internal: bool,
    /// `retention.ms`.
    pub retention_ms: i64,
    /// `retention.bytes`.
    pub retention_bytes: i64,
    /// `cleanup.policy`.
    pub cleanup_policy: String,
    /// Partitions, by index.
    pub partitions: Vec<PartitionView>,
    /// Its partitions' counters, summed.
    pub totals: TopicTotals,
}

impl TopicView {
    /// Bytes of all its partitions.
    pub fn size_bytes(&self) -> u64 {
        self.partitions.iter().map(|p| p.size_bytes).sum()
    }
    /// Records between log start and log end, all partitions.
    pub fn records(&self) -> i64 {
        self.partitions.iter().map(|p| p.log_end_offset - p.log_start_offset).sum()
    }
}

/// One partition.
#[derive(Debug, Clone)]
pub struct PartitionView {
    /// Index.
    pub partition: i32,
    /// Log start offset.
    pub log_start_offset: i64,
    /// Log end offset.
    pub log_end_offset: i64,
    /// High watermark (what consumers can read up to).
    pub high_watermark: i64,
    /// Bytes on disk.
    pub size_bytes: u64,
    /// Segments.
    pub segments: usize,
    /// Whether a failed sync poisoned it.
    pub poisoned: bool,
}

impl PartitionView {
    /// A partition whose log cannot be opened: no offsets, and no writes, as a poisoned
    /// one.
    fn unopenable(partition: i32) -> Self {
        PartitionView {
            partition,
            log_start_offset: -1,
            log_end_offset: -1,
            high_watermark: -1,
            size_bytes: 0,
            segments: 0,
            poisoned: true,
        }
    }
}

/// One consumer group.
#[derive(Debug, Clone)]
pub struct GroupView {
    /// Group id.
    pub group_id: String,
    /// State, as Kafka names it.
    pub state: &'static str,
    /// Protocol type (`consumer`, or empty for a group that only commits).
    pub protocol_type: String,
    /// The selected assignor.
    pub protocol: String,
    /// Members.
    pub members: Vec<MemberView>,
    /// Committed offsets and lag per partition, sorted by topic and partition.
    pub offsets: Vec<OffsetView>,
}

impl GroupView {
    /// Lag summed over partitions whose log end is known.
    pub fn lag(&self) -> i64 {
        self.offsets.iter().filter_map(|o| o.lag).sum()
    }
}

/// A group member.
#[derive(Debug, Clone)]
pub struct MemberView {
    /// Member id.
    pub member_id: String,
    /// Static membership id.
    pub instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Its partitions, by topic (decoded from a consumer-protocol assignment).
    pub assignment: Vec<(String, Vec<i32>)>,
}

/// A committed offset and the lag behind the log end.
#[derive(Debug, Clone)]
pub struct OffsetView {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Committed offset (next record to consume).
    pub committed: i64,
    /// The partition's high watermark, when it exists.
    pub log_end_offset: Option<i64>,
    /// Log end minus committed, at least 0, as `kafka-consumer-groups.sh` prints it.
    pub lag: Option<i64>,
    /// Member the partition is assigned to, if any.
    pub member_id: Option<String>,
}

/// Reads the broker and its topics (cheap: atomics and small locks, no log reads, but it
/// opens the partitions not used since the start; run it on a blocking thread when the
/// broker holds many partitions).
pub fn broker_and_topics(broker: &Broker, started: Instant) -> (BrokerView, Vec<TopicView>) {
    let mut topics = Vec::new();
    let mut totals = TopicTotals::default();
    totals.add_requests(&broker.metrics.unattributed);
    let mut poisoned = 0;
    for t in broker.topics.list() {
        let config = &t.config;
        let mut view = TopicView {
            name: t.name.clone(),
            id: t.id.to_string(),
            internal: crate::topics::is_internal(&t.name),
            retention_ms: config.log.retention_ms,
            retention_bytes: config.log.retention_bytes,
            cleanup_policy: config.cleanup_policy.clone(),
            partitions: Vec::with_capacity(t.partitions.len()),
            totals: TopicTotals::default(),
        };
        for p in &t.partitions {
            view.totals.add(p.counters());
            let Ok(log) = p.log() else {
                // It cannot be opened: it takes no writes, as a poisoned one.
                poisoned += 1;
                view.partitions.push(PartitionView::unopenable(p.index()));
                continue;
            };
            let is_poisoned = log.is_poisoned();
            poisoned += usize::from(is_poisoned);
            view.partitions.push(PartitionView {
                partition: p.index(),
                log_start_offset: log.log_start_offset(),
                log_end_offset: log.log_end_offset(),
                high_watermark: log.high_watermark(),
                size_bytes: log.size_bytes(),
                segments: log.segment_base_offsets().len(),
                poisoned: is_poisoned,
            });
        }
        totals.merge(&view.totals);
        topics.push(view);
    }
    let config = &broker.config;
    let (disk_total_bytes, disk_free_bytes) = disk_space(&config.data_dir);
    let view = BrokerView {
        node_id: config.node_id,
        cluster_id: broker.cluster_id.clone(),
        version: env!("CARGO_PKG_VERSION"),
        uptime_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        listeners: vec![
            format!("PLAINTEXT://{}", config.listen),
            format!("advertised PLAINTEXT://{}:{}", config.advertised_host, config.advertised_port),
        ],
        data_dir: config.data_dir.display().to_string(),
        log_bytes: topics.iter().map(TopicView::size_bytes).sum(),
        disk_total_bytes,
        disk_free_bytes,
        connections: broker.metrics.connections_open.load(Ordering::Relaxed),
        poisoned_partitions: poisoned,
        totals,
    };
    (view, topics)
}

/// Size and space available to unprivileged users of the file system holding `dir`.
#[expect(clippy::unnecessary_cast, reason = "statvfs field types differ between targets")]
fn disk_space(dir: &std::path::Path) -> (Option<u64>, Option<u64>) {
    match nix::sys::statvfs::statvfs(dir) {
        Ok(s) => {
            let block = s.fragment_size() as u64;
            (Some(s.blocks() as u64 * block), Some(s.blocks_available() as u64 * block))
        }
        Err(_) => (None, None),
    }
}

/// Asks the coordinator for every group, its members and its committed offsets, and
/// computes the lag against the partitions' high watermarks. Empty when the coordinator
/// does not run.
pub async fn groups(broker: &Broker) -> Vec<GroupView> {
    let filter = ListFilter { states: None, classic: true };
    let Ok((_, listed)) = broker.groups.list(filter).await else {
        return Vec::new();
    };
    let mut ids: Vec<String> = listed.into_iter().map(|g| g.group_id).collect();
    ids.sort();
    if ids.is_empty() {
        return Vec::new();
    }
    let described = broker.groups.describe(ids.clone()).await.unwrap_or_default();
    let wanted = ids.iter().map(|id| (id.clone(), None)).collect();
    let offsets = broker.groups.fetch_offsets(wanted).await.unwrap_or_default();
    // By group id, and below each partition's owner by (topic, partition): linear in the
    // groups, members and partitions, not in their products.
    let mut offsets: HashMap<String, GroupOffsets> =
        offsets.into_iter().map(|o| (o.group_id.clone(), o)).collect();
    let mut views = Vec::with_capacity(described.len());
    for d in described {
        let members: Vec<MemberView> = d
            .members
            .iter()
            .map(|m| MemberView {
                member_id: m.member_id.clone(),
                instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                assignment: if d.protocol_type == "consumer" {
                    decode_assignment(&m.assignment)
                } else {
                    Vec::new()
                },
            })
            .collect();
        let mut owners: HashMap<(&str, i32), &str> = HashMap::new();
        for m in &members {
            for (topic, partitions) in &m.assignment {
                for &p in partitions {
                    owners.insert((topic.as_str(), p), m.member_id.as_str());
                }
            }
        }
        let mut group_offsets = Vec::new();
        if let Some(o) = offsets.remove(&d.group_id) {
            for (tp, committed) in &o.offsets {
                let Some(committed) = committed else { continue };
                let log_end_offset = broker.topics.get(&tp.topic).and_then(|t| {
                    t.partition(tp.partition)?.log().ok().map(|l| l.high_watermark())
                });
                group_offsets.push(OffsetView {
                    topic: tp.topic.to_string(),
                    partition: tp.partition,
                    committed: committed.offset,
                    log_end_offset,
                    lag: log_end_offset.map(|end| (end - committed.offset).max(0)),
                    member_id: owners.get(&(&*tp.topic, tp.partition)).map(|m| m.to_string()),
                });
            }
        }
        group_offsets.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        views.push(GroupView {
            group_id: d.group_id,
            state: d.state.name(),
            protocol_type: d.protocol_type,
            protocol: d.protocol,
            members,
            offsets: group_offsets,
        });
    }
    views
}

/// A consumer-protocol assignment's partitions by topic; empty if it does not decode.
fn decode_assignment(bytes: &bytes::Bytes) -> Vec<(String, Vec<i32>)> {
    match Assignment::decode(bytes) {
        Ok(a) => a.assigned_partitions.into_iter().map(|t| (t.topic, t.partitions)).collect(),
        Err(_) => Vec::new(),
    }
}

/// The broker as `/api/broker` serves it.
pub fn broker_json(b: &BrokerView) -> Value {
    json!({
        "node_id": b.node_id,
        "cluster_id": b.cluster_id,
        "version": b.version,
        "uptime_ms": b.uptime_ms,
        "listeners": b.listeners,
        "connections": b.connections,
        "poisoned_partitions": b.poisoned_partitions,
        "data_dirs": [{
            "path": b.data_dir,
            "log_bytes": b.log_bytes,
            "total_bytes": b.disk_total_bytes,
            "free_bytes": b.disk_free_bytes,
        }],
        "totals": totals_json(&b.totals),
    })
}

/// BrokerTopicMetrics counters as JSON.
fn totals_json(t: &TopicTotals) -> Value {
    json!({
        "messages_in": t.messages_in,
        "bytes_in": t.bytes_in,
        "bytes_out": t.bytes_out,
        "produce_requests": t.produce_requests,
        "failed_produce_requests": t.failed_produce_requests,
        "fetch_requests": t.fetch_requests,
        "failed_fetch_requests": t.failed_fetch_requests,
    })
}

/// A topic as `/api/topics` lists it.
pub fn topic_json(t: &TopicView) -> Value {
    let partitions: Vec<Value> = t
        .partitions
        .iter()
        .map(|p| {
            json!({
                "partition": p.partition,
                "log_start_offset": p.log_start_offset,
                "log_end_offset": p.log_end_offset,
                "high_watermark": p.high_watermark,
                "size_bytes": p.size_bytes,
                "segments": p.segments,
                "poisoned": p.poisoned,
            })
        })
        .collect();
    json!({
        "name": t.name,
        "topic_id": t.id,
        "internal": t.internal,
        "config": {
            "retention.ms": t.retention_ms,
            "retention.bytes": t.retention_bytes,
            "cleanup.policy": t.cleanup_policy,
        },
        "size_bytes": t.size_bytes(),
        "partitions": partitions,
        "totals": totals_json(&t.totals),
    })
}

/// A group as `/api/groups` lists it.
pub fn group_json(g: &GroupView) -> Value {
    let members: Vec<Value> = g
        .members
        .iter()
        .map(|m| {
            let assignment: Vec<Value> = m
                .assignment
                .iter()
                .map(|(t, ps)| json!({ "topic": t, "partitions": ps }))
                .collect();
            json!({
                "member_id": m.member_id,
                "group_instance_id": m.instance_id,
                "client_id": m.client_id,
                "client_host": m.client_host,
                "assignment": assignment,
            })
        })
        .collect();
    let offsets: Vec<Value> = g
        .offsets
        .iter()
        .map(|o| {
            json!({
                "topic": o.topic,
                "partition": o.partition,
                "committed_offset": o.committed,
                "log_end_offset": o.log_end_offset,
                "lag": o.lag,
                "member_id": o.member_id,
            })
        })
        .collect();
    json!({
        "group_id": g.group_id,
        "state": g.state,
        "protocol_type": g.protocol_type,
        "protocol": g.protocol,
        "members": members,
        "offsets": offsets,
        "lag": g.lag(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
    use kafka_protocol::messages::ConsumerProtocolAssignment;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    #[test]
    fn consumer_assignments_decode_by_topic_and_garbage_decodes_to_nothing() {
        let mut a = ConsumerProtocolAssignment::default();
        let mut tp = TopicPartition::default();
        tp.topic = StrBytes::from_static_str("orders").into();
        tp.partitions = vec![0, 2];
        a.assigned_partitions.push(tp);
        let mut buf = bytes::BytesMut::new();
        buf.extend_from_slice(&1i16.to_be_bytes());
        a.encode(&mut buf, 1).unwrap();
        let decoded = decode_assignment(&buf.freeze());
        assert_eq!(decoded, vec![("orders".to_string(), vec![0, 2])]);
        assert!(decode_assignment(&bytes::Bytes::from_static(b"\x00\x01\xff")).is_empty());
        assert!(decode_assignment(&bytes::Bytes::new()).is_empty());
    }
}
