//! The client's view of the cluster, sans I/O: brokers by node id, and for each topic its
//! id and its partitions' leaders. [`crate::cluster::Cluster`] fills it from Metadata
//! responses and everything that routes a request reads it.
//!
//! Invariant: a partition's leader never moves back to an older leader epoch. A response
//! from a broker that has not yet heard of a leader change would otherwise undo a newer
//! one (Kafka's clients keep the same rule, KIP-320).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use sluice_protocol::error_code::ErrorCode;
use sluice_protocol::kafka_protocol::messages::MetadataResponse;
use uuid::Uuid;

/// A topic and partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
}

impl TopicPartition {
    /// `topic`-`partition`.
    pub fn new(topic: impl Into<Arc<str>>, partition: i32) -> Self {
        TopicPartition { topic: topic.into(), partition }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// A partition as metadata describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionInfo {
    /// The leader's node id; -1 while there is none.
    pub leader: i32,
    /// The leader epoch; -1 when the broker does not report one.
    pub leader_epoch: i32,
    /// The partition's error code (LEADER_NOT_AVAILABLE, ...).
    pub error: ErrorCode,
}

/// A topic as metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// The topic id (zero before Metadata v10 or from brokers without ids).
    pub id: Uuid,
    /// The topic's error code (UNKNOWN_TOPIC_OR_PARTITION, ...).
    pub error: ErrorCode,
    /// Whether the broker marks it internal.
    pub internal: bool,
    /// Partitions by index.
    pub partitions: Vec<PartitionInfo>,
}

/// A broker's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    /// `host:port`.
    pub addr: String,
    /// Its rack, if configured.
    pub rack: Option<String>,
}

/// Brokers and topics, as of the last Metadata response.
#[derive(Debug, Clone, Default)]
pub struct Metadata {
    brokers: HashMap<i32, BrokerInfo>,
    topics: HashMap<String, TopicInfo>,
    names_by_id: HashMap<Uuid, String>,
    cluster_id: Option<String>,
    controller: i32,
    updated: Option<Instant>,
}

impl Metadata {
    /// Applies a Metadata response received at `now`. Topics the response does not name
    /// are kept (a response may answer only some topics), unless it answered a request
    /// for every topic: then they no longer exist.
    pub fn apply(&mut self, response: &MetadataResponse, now: Instant) {
        self.apply_answer(response, now, false);
    }

    /// As [`Self::apply`], for the answer to a request for every topic.
    pub fn apply_all_topics(&mut self, response: &MetadataResponse, now: Instant) {
        self.apply_answer(response, now, true);
    }

    fn apply_answer(&mut self, response: &MetadataResponse, now: Instant, all_topics: bool) {
        if all_topics {
            let named: std::collections::HashSet<&str> = response
                .topics
                .iter()
                .filter_map(|t| t.name.as_ref().map(|n| n.0.as_str()))
                .collect();
            self.topics.retain(|name, _| named.contains(name.as_str()));
            let topics = &self.topics;
            self.names_by_id.retain(|_, name| topics.contains_key(name));
        }
        if !response.brokers.is_empty() {
            self.brokers = response
                .brokers
                .iter()
                .map(|b| {
                    let info = BrokerInfo {
                        addr: format!("{}:{}", b.host.as_str(), b.port),
                        rack: b.rack.as_ref().map(|r| r.to_string()),
                    };
                    (b.node_id.0, info)
                })
                .collect();
        }
        self.cluster_id =
            response.cluster_id.as_ref().map(|c| c.to_string()).or(self.cluster_id.take());
        self.controller = response.controller_id.0;
        for topic in &response.topics {
            let Some(name) = topic.name.as_ref().map(|n| n.0.to_string()) else { continue };
            let error = ErrorCode::from_code(topic.error_code);
            let old = self.topics.get(&name);
            let mut partitions = vec![
                PartitionInfo {
                    leader: -1,
                    leader_epoch: -1,
                    error: ErrorCode::LEADER_NOT_AVAILABLE
                };
                topic
                    .partitions
                    .iter()
                    .map(|p| p.partition_index.max(-1) + 1)
                    .max()
                    .unwrap_or(0)
                    .min(1 << 20) as usize
            ];
            for p in &topic.partitions {
                let Some(slot) =
                    usize::try_from(p.partition_index).ok().and_then(|i| partitions.get_mut(i))
                else {
                    continue;
                };
                let fresh = PartitionInfo {
                    leader: p.leader_id.0,
                    leader_epoch: p.leader_epoch,
                    error: ErrorCode::from_code(p.error_code),
                };
                let known = old.and_then(|t| t.partitions.get(p.partition_index as usize));
                *slot = match known {
                    Some(k) if k.leader_epoch > fresh.leader_epoch && fresh.leader_epoch >= 0 => *k,
                    _ => fresh,
                };
            }
            if topic.topic_id != Uuid::nil() {
                self.names_by_id.insert(topic.topic_id, name.clone());
            }
            if error == ErrorCode::UNKNOWN_TOPIC_OR_PARTITION {
                if let Some(old) = self.topics.remove(&name) {
                    self.names_by_id.remove(&old.id);
                }
            }
            self.topics.insert(
                name,
                TopicInfo { id: topic.topic_id, error, internal: topic.is_internal, partitions },
            );
        }
        self.updated = Some(now);
    }

    /// When the last response was applied.
    pub fn updated(&self) -> Option<Instant> {
        self.updated
    }

    /// Forgets when it was updated, so the next check refreshes it.
    pub fn invalidate(&mut self) {
        self.updated = None;
    }

    /// A topic, if the cluster has it (an errored topic counts as unknown).
    pub fn topic(&self, name: &str) -> Option<&TopicInfo> {
        self.topics.get(name).filter(|t| t.error.is_none())
    }

    /// A topic's error as last reported, if any.
    pub fn topic_error(&self, name: &str) -> Option<ErrorCode> {
        self.topics.get(name).map(|t| t.error).filter(|e| !e.is_none())
    }

    /// The name of the topic with `id`.
    pub fn topic_name(&self, id: Uuid) -> Option<&str> {
        self.names_by_id.get(&id).map(String::as_str)
    }

    /// How many partitions a topic has.
    pub fn partition_count(&self, topic: &str) -> Option<u32> {
        self.topic(topic).map(|t| t.partitions.len() as u32).filter(|&n| n > 0)
    }

    /// The leader of a partition, if it has one.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<i32> {
        let info = self.topic(topic)?.partitions.get(usize::try_from(partition).ok()?)?;
        (info.leader >= 0).then_some(info.leader)
    }

    /// A partition's leader epoch (-1 when unknown).
    pub fn leader_epoch(&self, topic: &str, partition: i32) -> i32 {
        self.topic(topic)
            .and_then(|t| t.partitions.get(usize::try_from(partition).ok()?))
            .map_or(-1, |p| p.leader_epoch)
    }

    /// The address of broker `node`.
    pub fn broker(&self, node: i32) -> Option<&BrokerInfo> {
        self.brokers.get(&node)
    }

    /// Every broker, by node id.
    pub fn brokers(&self) -> impl Iterator<Item = (i32, &BrokerInfo)> {
        self.brokers.iter().map(|(id, b)| (*id, b))
    }

    /// The cluster id, if reported.
    pub fn cluster_id(&self) -> Option<&str> {
        self.cluster_id.as_deref()
    }

    /// The controller's node id.
    pub fn controller(&self) -> i32 {
        self.controller
    }

    /// Every known topic's name.
    pub fn topic_names(&self) -> impl Iterator<Item = &str> {
        self.topics.iter().filter(|(_, t)| t.error.is_none()).map(|(n, _)| n.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_protocol::kafka_protocol::messages::metadata_response::*;
    use sluice_protocol::kafka_protocol::messages::{BrokerId, TopicName};
    use sluice_protocol::kafka_protocol::protocol::StrBytes;

    fn response(epoch: i32, leader: i32) -> MetadataResponse {
        let partition = |i: i32| {
            MetadataResponsePartition::default()
                .with_partition_index(i)
                .with_leader_id(BrokerId(leader))
                .with_leader_epoch(epoch)
        };
        MetadataResponse::default()
            .with_brokers(vec![MetadataResponseBroker::default()
                .with_node_id(BrokerId(leader))
                .with_host(StrBytes::from_static_str("127.0.0.1"))
                .with_port(9092)])
            .with_topics(vec![MetadataResponseTopic::default()
                .with_name(Some(TopicName(StrBytes::from_static_str("t"))))
                .with_topic_id(Uuid::from_u128(7))
                .with_partitions(vec![partition(1), partition(0)])])
    }

    #[test]
    fn routes_partitions_to_leaders() {
        let mut m = Metadata::default();
        m.apply(&response(3, 1), Instant::now());
        assert_eq!(m.partition_count("t"), Some(2));
        assert_eq!(m.leader("t", 1), Some(1));
        assert_eq!(m.leader("t", 2), None);
        assert_eq!(m.broker(1).unwrap().addr, "127.0.0.1:9092");
        assert_eq!(m.topic_name(Uuid::from_u128(7)), Some("t"));
    }

    #[test]
    fn an_answer_for_every_topic_forgets_deleted_ones() {
        let mut m = Metadata::default();
        m.apply(&response(1, 1), Instant::now());
        let other = MetadataResponse::default();
        m.apply(&other, Instant::now());
        assert_eq!(m.partition_count("t"), Some(2), "a partial answer keeps what it does not name");
        m.apply_all_topics(&other, Instant::now());
        assert_eq!(m.partition_count("t"), None);
        assert_eq!(m.topic_name(Uuid::from_u128(7)), None);
    }

    #[test]
    fn an_older_leader_epoch_does_not_win() {
        let mut m = Metadata::default();
        m.apply(&response(5, 1), Instant::now());
        m.apply(&response(4, 2), Instant::now());
        assert_eq!(m.leader("t", 0), Some(1));
        m.apply(&response(6, 2), Instant::now());
        assert_eq!(m.leader("t", 0), Some(2));
    }
}
