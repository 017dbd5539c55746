//! OffsetFetch: committed offsets with their metadata and leader epoch, -1 where none is
//! committed. v2+ may ask for all of a group's offsets (null topics) and has a group
//! error; v8+ asks for several groups at once (KIP-709). v0 has v1's layout and reads
//! the same offsets (see `offset_commit` for why v0 commits and fetches share the
//! coordinator's store, where Kafka 3.9 kept them in ZooKeeper).
//!
//! `require_stable` (v7+): a partition with an offset pending in a transaction that has
//! not completed (sent by TxnOffsetCommit, kept by the transaction coordinator) is
//! answered UNSTABLE_OFFSET_COMMIT without an offset, as Kafka does; the client retries.
//! The check reads the coordinator's shared index ([`crate::txn::index::TxnIndex`]).
//!
//! Each group, and each partition of a group, is answered once, where it first appears:
//! Kafka answers a repeated one again, but then one request of a few bytes per repetition
//! could make the broker encode a group's whole set of offsets (or a partition's 4 KiB of
//! metadata) a million times. Clients key the answers by group and partition, and the
//! Java admin client and librdkafka send each once.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::group::request::GroupOffsets;
use crate::group::types::{CommittedOffset, TopicPartition};

/// Answers an OffsetFetch request.
pub async fn handle(
    broker: &Broker,
    request: OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    let groups: Vec<(String, Option<Vec<TopicPartition>>)> = if version >= 8 {
        let mut seen = HashSet::new();
        request
            .groups
            .into_iter()
            .filter(|g| seen.insert(g.group_id.0.clone()))
            .map(|g| {
                let partitions = g.topics.map(|ts| {
                    distinct(ts.iter().map(|t| (t.name.0.as_str(), &t.partition_indexes[..])))
                });
                (g.group_id.0.to_string(), partitions)
            })
            .collect()
    } else {
        let partitions = request
            .topics
            .map(|ts| distinct(ts.iter().map(|t| (t.name.0.as_str(), &t.partition_indexes[..]))));
        vec![(request.group_id.0.to_string(), partitions)]
    };
    let require_stable = version >= 7 && request.require_stable;
    let asked_group = (version < 8).then(|| request.group_id.0.to_string());
    let asked: Vec<String> = groups.iter().map(|(g, _)| g.clone()).collect();
    // Before the offsets are read: a transaction that completes in between is then seen
    // either as pending here or as committed there, never as neither.
    let pending = if require_stable {
        broker.txns.index().pending_offsets_of(asked.iter().map(String::as_str))
    } else {
        HashMap::new()
    };
    let answers = match broker.groups.fetch_offsets(groups).await {
        Ok(a) => a,
        Err(e) => asked
            .into_iter()
            .map(|group_id| GroupOffsets { group_id, error: e.error_code(), offsets: Vec::new() })
            .collect(),
    };
    let mut out = response(answers, version);
    if !pending.is_empty() {
        mark_unstable(&mut out, &pending, asked_group.as_deref());
    }
    out
}

/// Answers UNSTABLE_OFFSET_COMMIT for every partition with a transactional offset
/// pending; `single` is the group of a v7 request (v8+ name theirs).
fn mark_unstable(
    out: &mut OffsetFetchResponse,
    pending: &HashMap<String, HashSet<TopicPartition>>,
    single: Option<&str>,
) {
    let unstable = sluice_protocol::error_code::ErrorCode::UNSTABLE_OFFSET_COMMIT.code();
    let is_pending = |set: &HashSet<TopicPartition>, topic: &str, partition: i32| {
        set.contains(&TopicPartition { topic: Arc::from(topic), partition })
    };
    for g in &mut out.groups {
        let Some(set) = pending.get(g.group_id.0.as_str()) else { continue };
        for t in &mut g.topics {
            for p in &mut t.partitions {
                if is_pending(set, &t.name.0, p.partition_index) {
                    (p.error_code, p.committed_offset, p.metadata) = (unstable, -1, None);
                }
            }
        }
    }
    let Some(set) = single.and_then(|g| pending.get(g)) else { return };
    for t in &mut out.topics {
        for p in &mut t.partitions {
            if is_pending(set, &t.name.0, p.partition_index) {
                (p.error_code, p.committed_offset, p.metadata) = (unstable, -1, None);
            }
        }
    }
}

/// The partitions of `topics`, each once, where it first appears. A topic name is hashed
/// once per topic entry and shared by its partitions, which are hashed as integers.
fn distinct<'a>(topics: impl Iterator<Item = (&'a str, &'a [i32])>) -> Vec<TopicPartition> {
    let mut seen: HashMap<&str, (Arc<str>, HashSet<i32>)> = HashMap::new();
    let mut out = Vec::new();
    for (name, indexes) in topics {
        let (topic, taken) = seen.entry(name).or_insert_with(|| (Arc::from(name), HashSet::new()));
        for &partition in indexes {
            if taken.insert(partition) {
                out.push(TopicPartition { topic: Arc::clone(topic), partition });
            }
        }
    }
    out
}

/// The response in `version`.
pub fn response(answers: Vec<GroupOffsets>, version: i16) -> OffsetFetchResponse {
    let mut out = OffsetFetchResponse::default();
    if version >= 8 {
        out.groups = answers
            .into_iter()
            .map(|g| {
                let mut group = OffsetFetchResponseGroup::default();
                group.group_id = GroupId(StrBytes::from(g.group_id));
                group.error_code = g.error.code();
                for (tp, o) in g.offsets {
                    if group.topics.last().is_none_or(|t| t.name.0.as_str() != &*tp.topic) {
                        let mut t = OffsetFetchResponseTopics::default();
                        t.name = TopicName(StrBytes::from(tp.topic.to_string()));
                        group.topics.push(t);
                    }
                    let (offset, epoch, metadata) = committed(o);
                    let mut p = OffsetFetchResponsePartitions::default();
                    p.partition_index = tp.partition;
                    (p.committed_offset, p.committed_leader_epoch, p.metadata) =
                        (offset, epoch, metadata);
                    group.topics.last_mut().expect("invariant: pushed above").partitions.push(p);
                }
                group
            })
            .collect();
        return out;
    }
    let Some(g) = answers.into_iter().next() else { return out };
    if version >= 2 {
        out.error_code = g.error.code();
    }
    for (tp, o) in g.offsets {
        if out.topics.last().is_none_or(|t| t.name.0.as_str() != &*tp.topic) {
            let mut t = OffsetFetchResponseTopic::default();
            t.name = TopicName(StrBytes::from(tp.topic.to_string()));
            out.topics.push(t);
        }
        let (offset, epoch, metadata) = committed(o);
        let mut p = OffsetFetchResponsePartition::default();
        p.partition_index = tp.partition;
        p.committed_offset = offset;
        if version >= 5 {
            p.committed_leader_epoch = epoch;
        }
        p.metadata = metadata;
        // v1 has no group error: it goes on every partition.
        if version < 2 {
            p.error_code = g.error.code();
        }
        out.topics.last_mut().expect("invariant: pushed above").partitions.push(p);
    }
    out
}

/// Offset, leader epoch and metadata as the response carries them (-1, -1, "" for none).
fn committed(o: Option<Box<CommittedOffset>>) -> (i64, i32, Option<StrBytes>) {
    match o {
        Some(o) => (o.offset, o.leader_epoch, Some(o.metadata.into())),
        None => (-1, -1, Some(StrBytes::default())),
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use sluice_protocol::api_key::{support, ApiKey};
    use sluice_protocol::messages::Response;

    use sluice_protocol::error_code::ErrorCode;

    use super::*;

    #[test]
    fn responses_encode_at_every_advertised_version() {
        let tp = |t: &str, p| TopicPartition { topic: t.into(), partition: p };
        let offset = CommittedOffset {
            offset: 42,
            leader_epoch: 3,
            metadata: "m".into(),
            commit_timestamp: 0,
            expire_timestamp: None,
        };
        let range = support(ApiKey::OffsetFetch).unwrap().advertised;
        for version in range.min..=range.max {
            let answers = vec![GroupOffsets {
                group_id: "g".into(),
                error: ErrorCode::NONE,
                offsets: vec![
                    (tp("a", 0), Some(Box::new(offset.clone()))),
                    (tp("a", 1), None),
                    (tp("b", 0), None),
                ],
            }];
            let r = response(answers, version);
            let topics = if version >= 8 { r.groups[0].topics.len() } else { r.topics.len() };
            assert_eq!(topics, 2, "v{version}");
            Response::OffsetFetch(r).encode(version, &mut BytesMut::new()).unwrap();
        }
    }
}
